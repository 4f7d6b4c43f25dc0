/* q4_0.c — (being written) */
