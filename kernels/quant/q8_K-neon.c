/* q8_K-neon.c — (being written) */
