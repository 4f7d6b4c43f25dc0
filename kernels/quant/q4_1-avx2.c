/* q4_1-avx2.c — (being written) */
