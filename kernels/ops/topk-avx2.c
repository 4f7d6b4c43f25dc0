/* topk-avx2.c — (being written) */
