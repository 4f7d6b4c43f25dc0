/* q8_1.c — (being written) */
