/* norm.c — (being written) */
