/* q4_0-neon.c — (being written) */
