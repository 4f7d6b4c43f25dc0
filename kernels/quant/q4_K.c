/* q4_K.c — (being written) */
