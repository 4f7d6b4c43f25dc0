/* q5_0-neon.c — (being written) */
