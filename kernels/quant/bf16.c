/* bf16.c — (being written) */
