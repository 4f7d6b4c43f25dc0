/* bf16-avx2.c — (being written) */
