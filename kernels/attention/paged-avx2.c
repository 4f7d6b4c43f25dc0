/* paged-avx2.c — (being written) */
