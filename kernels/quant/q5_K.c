/* q5_K.c — (being written) */
