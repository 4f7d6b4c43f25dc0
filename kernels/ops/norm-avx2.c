/* norm-avx2.c — (being written) */
