/* q4_K-avx2.c — (being written) */
