/* flash.c — (being written) */
