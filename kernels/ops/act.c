/* act.c — (being written) */
