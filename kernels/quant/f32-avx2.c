/* f32-avx2.c — (being written) */
