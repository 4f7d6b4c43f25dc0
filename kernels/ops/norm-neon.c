/* norm-neon.c — (being written) */
