/* q5_1-neon.c — (being written) */
