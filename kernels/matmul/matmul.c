/* matmul.c — (being written) */
