/* gqa-avx2.c — (being written) */
