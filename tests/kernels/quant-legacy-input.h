/* quant-legacy-input.h — the fixed input row whose quantized bytes
 * test-quant-legacy.c checks against ggml (shared with gen-quant-legacy-ggml.c).
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <stdint.h>

#define QL_INPUT_BLOCKS 256
#define QL_INPUT_N (QL_INPUT_BLOCKS * 32)

/* 64-bit LCG (Knuth's MMIX constants); each value is a multiple of 2^-23 in
 * [-1, 1), so the float arithmetic below is the same on every machine. */
static inline float
ql_lcg_next (uint64_t *state)
{
  *state = *state * UINT64_C (6364136223846793005) + UINT64_C (1442695040888963407);
  return (float) ((int32_t) (*state >> 40) - (1 << 23)) * 0x1p-23f;
}

/* Blocks of very different magnitude (fp16-subnormal scales at 3e-6,
 * q8_1 sums that overflow fp16 at 1e5), an all-zero block, a constant block
 * (max == min) and a block of signed zeros with one outlier. */
static inline void
ql_fill_input (float *x)
{
  static const float scales[9] = { 1.0f, 0.01f, 250.0f, 3.0e-6f, 0.0f, 1.0e-3f, 7.5f, 0.5f,
                                   1.0e5f };
  uint64_t state = 42;
  int i;

  for (i = 0; i < QL_INPUT_N; i++)
    x[i] = ql_lcg_next (&state) * scales[(i / 32) % 9];
  for (i = 0; i < 32; i++)
    {
      x[12 * 32 + i] = 0.3f;
      x[13 * 32 + i] = (i & 1) ? -0.0f : 0.0f;
    }
  x[13 * 32 + 5] = -2.0f;
}
