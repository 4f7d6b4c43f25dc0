/* paged.c — (being written) */
