/* paged-neon.c — (being written) */
