/* softmax-neon.c — (being written) */
