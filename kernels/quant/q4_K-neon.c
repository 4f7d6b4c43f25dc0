/* q4_K-neon.c — (being written) */
