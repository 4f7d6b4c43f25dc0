/* q8_K.c — (being written) */
