/* rope-avx2.c — (being written) */
