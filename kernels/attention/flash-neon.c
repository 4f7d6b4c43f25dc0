/* flash-neon.c — (being written) */
