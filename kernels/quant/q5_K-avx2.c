/* q5_K-avx2.c — (being written) */
