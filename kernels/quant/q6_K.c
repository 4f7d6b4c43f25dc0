/* q6_K.c — (being written) */
