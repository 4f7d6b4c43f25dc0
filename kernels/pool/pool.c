/* pool.c — (being written) */
