/* q8_0-avx2.c — (being written) */
