/* act-avx2.c — (being written) */
