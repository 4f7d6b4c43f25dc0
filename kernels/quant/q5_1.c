/* q5_1.c — (being written) */
