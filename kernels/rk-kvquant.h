/* rk-kvquant.h — row kernels for a quantized KV cache: dot of a float query
 * with a packed key row, and value rows added into a float accumulator,
 * read straight from the packed codes (nothing is dequantized to a copy).
 * SPDX-License-Identifier: MIT
 *
 * A row is one token of one KV head: n values (head_dim) in groups of `group`
 * values (n % group == 0), each group with its own IEEE-half scale.
 *
 *   Q8 (symmetric):  x = d[g] * c,           c = codes[i] in -127..127
 *                    codes: n int8, one per value.
 *   Q4 (asymmetric): x = m[g] + d[g] * c,    c in 0..15
 *                    codes: n/2 bytes; in group g (group/2 bytes from
 *                    codes + g*group/2) byte j holds value j of the group in
 *                    its low nibble and value j + group/2 in its high nibble
 *                    (the Q4_0 packing), so group must be even.
 *   F16:             plain IEEE halves (the high-precision tail).
 *
 * The quantizers keep every value within d/2 of the original: the scale (and
 * for Q4 the minimum) are rounded to half first, then nudged so that no code
 * is clamped, and the codes are computed from the stored (rounded) scale.
 */
#pragma once

#include <stdint.h>

#include "rk-cpu.h"
#include "rk-fp16.h"

#define RK_DECLARE_KVQ(ret, name, args) \
  ret name          args;               \
  ret name##_ref    args;               \
  ret name##_avx2   args;               \
  ret name##_neon   args;

/* sum_i q[i] * x[i] over one row. */
RK_DECLARE_KVQ (float, rk_kvq8_dot, (int n, int group, const int8_t *codes,
                                     const rk_fp16 *d, const float *q))
RK_DECLARE_KVQ (float, rk_kvq4_dot, (int n, int group, const uint8_t *codes,
                                     const rk_fp16 *d, const rk_fp16 *m, const float *q))
RK_DECLARE_KVQ (float, rk_kvf16_dot, (int n, const rk_fp16 *x, const float *q))

/* y[i] += w * x[i] over one row. */
RK_DECLARE_KVQ (void, rk_kvq8_axpy, (int n, int group, const int8_t *codes,
                                     const rk_fp16 *d, float w, float *y))
RK_DECLARE_KVQ (void, rk_kvq4_axpy, (int n, int group, const uint8_t *codes,
                                     const rk_fp16 *d, const rk_fp16 *m, float w, float *y))
RK_DECLARE_KVQ (void, rk_kvf16_axpy, (int n, const rk_fp16 *x, float w, float *y))

/* The six kernels of one ISA, for callers that pick once and call per row. */
typedef struct
{
  float (*q8_dot)   (int n, int group, const int8_t *codes, const rk_fp16 *d, const float *q);
  float (*q4_dot)   (int n, int group, const uint8_t *codes, const rk_fp16 *d,
                     const rk_fp16 *m, const float *q);
  float (*f16_dot)  (int n, const rk_fp16 *x, const float *q);
  void  (*q8_axpy)  (int n, int group, const int8_t *codes, const rk_fp16 *d, float w,
                     float *y);
  void  (*q4_axpy)  (int n, int group, const uint8_t *codes, const rk_fp16 *d,
                     const rk_fp16 *m, float w, float *y);
  void  (*f16_axpy) (int n, const rk_fp16 *x, float w, float *y);
} rk_kvq_kernels;

/* The kernels of `isa` (the reference ones where this build lacks it). */
rk_kvq_kernels rk_kvq_kernels_for_isa (rk_isa isa);
/* The kernels of rk_cpu_isa(). */
rk_kvq_kernels rk_kvq_kernels_get     (void);

/* Quantizers and dequantizers of one row (not hot: once per token when it
 * migrates to the store). */
void rk_kvq8_quantize   (int n, int group, const float *x, int8_t *codes, rk_fp16 *d);
void rk_kvq4_quantize   (int n, int group, const float *x, uint8_t *codes, rk_fp16 *d,
                         rk_fp16 *m);
void rk_kvq8_dequantize (int n, int group, const int8_t *codes, const rk_fp16 *d, float *x);
void rk_kvq4_dequantize (int n, int group, const uint8_t *codes, const rk_fp16 *d,
                         const rk_fp16 *m, float *x);
