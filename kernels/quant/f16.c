/* f16.c — (being written) */
