/* f16-neon.c — (being written) */
