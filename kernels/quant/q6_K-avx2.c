/* q6_K-avx2.c — (being written) */
