/* q8_1-avx2.c — (being written) */
