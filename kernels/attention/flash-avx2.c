/* flash-avx2.c — (being written) */
