/* quant-util.c — (being written) */
