/* bf16-neon.c — (being written) */
