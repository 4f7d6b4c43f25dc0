/* q5_0-avx2.c — (being written) */
