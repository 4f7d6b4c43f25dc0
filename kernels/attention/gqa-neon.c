/* gqa-neon.c — (being written) */
