/* softmax-avx2.c — (being written) */
