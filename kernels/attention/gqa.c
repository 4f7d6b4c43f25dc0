/* gqa.c — (being written) */
