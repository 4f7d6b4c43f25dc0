/* q6_K-neon.c — (being written) */
