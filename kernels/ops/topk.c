/* topk.c — (being written) */
