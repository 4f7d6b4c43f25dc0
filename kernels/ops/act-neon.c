/* act-neon.c — (being written) */
