/* q8_0-neon.c — (being written) */
