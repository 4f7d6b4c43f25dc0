/* gen-quant-legacy-ggml.c — prints the SHA-256 of ggml's own quantization of
 * the fixed input in quant-legacy-input.h; test-quant-legacy.c asserts them.
 * SPDX-License-Identifier: MIT
 *
 * Not built by meson: it links the libggml-base.so that the reference harness
 * ships (node-llama-cpp 3.21.1, llama.cpp release v0.4.0, commit 5b4ebc5):
 *
 *   L=~/.cache/ruvllm-refharness/llamacpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
 *   cc -O0 -o /tmp/gen-ql tests/kernels/gen-quant-legacy-ggml.c \
 *      $(pkg-config --cflags --libs glib-2.0) -L$L -lggml-base -Wl,-rpath,$L
 *   /tmp/gen-ql
 */
#include <glib.h>
#include <stdio.h>

#include "quant-legacy-input.h"

/* ggml's exported reference quantizers (ggml-quants.h / ggml.h). */
void quantize_row_q4_0_ref (const float *x, void *y, int64_t k);
void quantize_row_q4_1_ref (const float *x, void *y, int64_t k);
void quantize_row_q5_0_ref (const float *x, void *y, int64_t k);
void quantize_row_q5_1_ref (const float *x, void *y, int64_t k);
void quantize_row_q8_0_ref (const float *x, void *y, int64_t k);
void quantize_row_q8_1_ref (const float *x, void *y, int64_t k);
void ggml_fp32_to_fp16_row (const float *x, uint16_t *y, int64_t n);
void ggml_fp32_to_bf16_row_ref (const float *x, uint16_t *y, int64_t n);

static void
print_sha (const char *name, const void *data, size_t size)
{
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, size);

  printf ("%-5s %s\n", name, sum);
}

int
main (void)
{
  static float x[QL_INPUT_N];
  static uint8_t y[QL_INPUT_BLOCKS * 36];
  static uint16_t h[QL_INPUT_N];

  ql_fill_input (x);
  quantize_row_q4_0_ref (x, y, QL_INPUT_N);
  print_sha ("q4_0", y, QL_INPUT_BLOCKS * 18);
  quantize_row_q4_1_ref (x, y, QL_INPUT_N);
  print_sha ("q4_1", y, QL_INPUT_BLOCKS * 20);
  quantize_row_q5_0_ref (x, y, QL_INPUT_N);
  print_sha ("q5_0", y, QL_INPUT_BLOCKS * 22);
  quantize_row_q5_1_ref (x, y, QL_INPUT_N);
  print_sha ("q5_1", y, QL_INPUT_BLOCKS * 24);
  quantize_row_q8_0_ref (x, y, QL_INPUT_N);
  print_sha ("q8_0", y, QL_INPUT_BLOCKS * 34);
  quantize_row_q8_1_ref (x, y, QL_INPUT_N);
  print_sha ("q8_1", y, QL_INPUT_BLOCKS * 36);
  ggml_fp32_to_fp16_row (x, h, QL_INPUT_N);
  print_sha ("f16", h, sizeof h);
  ggml_fp32_to_bf16_row_ref (x, h, QL_INPUT_N);
  print_sha ("bf16", h, sizeof h);
  return 0;
}
