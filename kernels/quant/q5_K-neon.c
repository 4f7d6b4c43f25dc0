/* q5_K-neon.c — (being written) */
