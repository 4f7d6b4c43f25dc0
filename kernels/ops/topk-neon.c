/* topk-neon.c — (being written) */
