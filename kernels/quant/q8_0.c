/* q8_0.c — (being written) */
