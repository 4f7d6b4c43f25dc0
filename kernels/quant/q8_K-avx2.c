/* q8_K-avx2.c — (being written) */
