/* f32.c — (being written) */
