/* q5_0.c — (being written) */
