/* q8_1-neon.c — (being written) */
