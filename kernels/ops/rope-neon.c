/* rope-neon.c — (being written) */
