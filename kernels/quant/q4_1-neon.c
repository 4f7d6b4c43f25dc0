/* q4_1-neon.c — (being written) */
