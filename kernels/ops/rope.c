/* rope.c — (being written) */
