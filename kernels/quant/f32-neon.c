/* f32-neon.c — (being written) */
