/* softmax.c — (being written) */
