/* q4_1.c — (being written) */
