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
 *   Q4 (asymmetric): x = d[g] * (c + z[g]),   c in 0..15, z int8
 *                    codes: n/2 bytes; in group g (group/2 bytes from
 *                    codes + g*group/2) byte j holds value j of the group in
 *                    its low nibble and value j + group/2 in its high nibble
 *                    (the Q4_0 packing), so group must be even. The offset
 *                    z is the group's minimum in steps of d (a zero point on
 *                    the same grid as the codes), so a 64-value group costs
 *                    32 + 2 + 1 = 35 bytes; where the minimum is more than
 *                    ~127 steps from 0 the step grows to reach it.
 *   Q7 (symmetric):  Q8 with codes in -63..63, stored in 7 bits (the
 *                    first layer of a Q4 store where Q8 would not fit the
 *                    store's memory budget): n * 7 / 8 bytes per row, in
 *                    chunks of 64 values (the last one may be shorter, m
 *                    values, m % 8 == 0), each as three planes of u = c + 64:
 *                    m/2 bytes of low nibbles (byte j: value j low, value
 *                    j + m/2 high, as Q4), m/4 bytes of bits 4-5 (byte j:
 *                    value j + k m/4 at bit 2k) and m/8 bytes of bit 6
 *                    (byte j: value j + k m/8 at bit k). Unpacked to int8
 *                    codes, every Q8 kernel reads it.
 *   Q10 (symmetric): codes in -511..511 (the first layer of a Q8 store
 *                    where its memory budget leaves room), n * 10 / 8 bytes
 *                    per row in chunks of 64 values (m in the last one,
 *                    m % 4 == 0): m low bytes of u = c + 512, then m/4
 *                    bytes of bits 8-9 (byte j: value j + k m/4 at bit 2k).
 *                    Unpacked to int16 codes (rk_kvq10_unpack) for the
 *                    rk_kvq16_* kernels.
 *   F16:             plain IEEE halves (the high-precision tail).
 *
 * The quantizers keep every value within d/2 of the original: the scale is
 * rounded to half first, then nudged so that no code is clamped, and the
 * codes (and Q4's z) are computed from the stored (rounded) scale.
 */
#pragma once

#include <stddef.h>
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
                                     const rk_fp16 *d, const int8_t *z, const float *q))
RK_DECLARE_KVQ (float, rk_kvf16_dot, (int n, const rk_fp16 *x, const float *q))

/* y[i] += w * x[i] over one row. */
RK_DECLARE_KVQ (void, rk_kvq8_axpy, (int n, int group, const int8_t *codes,
                                     const rk_fp16 *d, float w, float *y))
RK_DECLARE_KVQ (void, rk_kvq4_axpy, (int n, int group, const uint8_t *codes,
                                     const rk_fp16 *d, const int8_t *z, float w, float *y))
RK_DECLARE_KVQ (void, rk_kvf16_axpy, (int n, const rk_fp16 *x, float w, float *y))

/* Scores of `rows` query rows against cnt Q4 keys, straight from the codes
 * with integer products: key t's codes at codes + t * code_stride bytes, its
 * d and z at d + t * scale_stride and z + t * scale_stride; the queries
 * quantized by rk_kvq_quantize_query (q8, qd, qsum). Writes
 *   s[r * cnt + t] = scale * q'_r . k_t
 * where q'_r is the int8 query (qd[r] * q8). */
RK_DECLARE_KVQ (void, rk_kvq4_group_scores, (int rows, int cnt, int n, int group,
                                             const int8_t *q8, const float *qd,
                                             const int32_t *qsum, const uint8_t *codes,
                                             size_t code_stride, const rk_fp16 *d,
                                             const int8_t *z, size_t scale_stride,
                                             float scale, float *s))

/* The same for Q8 keys (no offsets), against the query rounded to int16
 * (rk_kvq_quantize_query16: q16, qd): a Q8 key's own rounding is about as
 * large as an int8 query's, which would double its error; int16 products
 * with the int8 codes cost no more (one madd per 16 values). Integer sums
 * are exact for any group (the SIMD variants sum in int32 up to groups of
 * 512 and leave larger ones to the reference, which sums in int64). */
RK_DECLARE_KVQ (void, rk_kvq8_group_scores, (int rows, int cnt, int n, int group,
                                             const int16_t *q16, const float *qd,
                                             const int8_t *codes, size_t code_stride,
                                             const rk_fp16 *d, size_t scale_stride,
                                             float scale, float *s))

/* One run of cnt cached tokens folded into the online softmax of `rows`
 * query rows that all see the whole run (a decode step's GQA group):
 * q (rows, n) queries, k and v (cnt, n) the run's keys and values as floats;
 * per row r the running state m[r] (largest scaled score so far, -inf at
 * first), l[r] (sum of exp (score - m[r])) and acc (rows, n) (the same
 * weighted sum of values) is updated as attention's online softmax does:
 *   s = scale q_r . k_t;  m' = max (m, max_t s);  acc = acc e^(m - m') +
 *   sum_t e^(s_t - m') v_t;  l likewise.
 * s is scratch for rows * cnt floats; k NULL means s already holds the
 * scaled scores (from rk_kvq4_group_scores or rk_kvq8_group_scores). Scores
 * come from one product and the values from another, so each key and value
 * is read once per run for all rows (not once per row). */
RK_DECLARE_KVQ (void, rk_kv_group_step, (int rows, int cnt, int n, const float *q,
                                         const float *k, const float *v, float scale,
                                         float *m, float *l, float *acc, float *s))

/* The kernels of one ISA, for callers that pick once and call per row. */
typedef struct
{
  float (*q8_dot)   (int n, int group, const int8_t *codes, const rk_fp16 *d, const float *q);
  float (*q4_dot)   (int n, int group, const uint8_t *codes, const rk_fp16 *d,
                     const int8_t *z, const float *q);
  float (*f16_dot)  (int n, const rk_fp16 *x, const float *q);
  void  (*q8_axpy)  (int n, int group, const int8_t *codes, const rk_fp16 *d, float w,
                     float *y);
  void  (*q4_axpy)  (int n, int group, const uint8_t *codes, const rk_fp16 *d,
                     const int8_t *z, float w, float *y);
  void  (*f16_axpy) (int n, const rk_fp16 *x, float w, float *y);
  void  (*q4_group_scores) (int rows, int cnt, int n, int group, const int8_t *q8,
                            const float *qd, const int32_t *qsum, const uint8_t *codes,
                            size_t code_stride, const rk_fp16 *d, const int8_t *z,
                            size_t scale_stride, float scale, float *s);
  void  (*q8_group_scores) (int rows, int cnt, int n, int group, const int16_t *q16,
                            const float *qd, const int8_t *codes, size_t code_stride,
                            const rk_fp16 *d, size_t scale_stride, float scale, float *s);
  void  (*group_step) (int rows, int cnt, int n, const float *q, const float *k,
                       const float *v, float scale, float *m, float *l, float *acc,
                       float *s);
  void  (*quantize_query) (int rows, int n, int group, const float *q, int8_t *q8,
                           float *qd, int32_t *qsum);
  void  (*quantize_query16) (int rows, int n, const float *q, int16_t *q16, float *qd);
  void  (*q7_unpack) (int n, const uint8_t *packed, int8_t *codes);
  void  (*q10_unpack) (int n, const uint8_t *packed, int16_t *codes);
  void  (*q16_dequantize) (int n, int group, const int16_t *codes, const rk_fp16 *d,
                           float *x);
  void  (*q16_group_scores) (int rows, int cnt, int n, int group, const int16_t *q16,
                             const float *qd, const int16_t *codes, size_t code_stride,
                             const rk_fp16 *d, size_t scale_stride, float scale, float *s);
} rk_kvq_kernels;

/* The kernels of `isa` (the reference ones where this build lacks it). */
rk_kvq_kernels rk_kvq_kernels_for_isa (rk_isa isa);
/* The kernels of rk_cpu_isa(). */
rk_kvq_kernels rk_kvq_kernels_get     (void);

/* Queries q (rows, n) as int8 for rk_kvq4_group_scores: per row one scale
 * qd[r] = max |q_r| / 127 and q8 = round-to-nearest-even (q * (127 / max
 * |q_r|)); qsum[r * (n / group) + g] the sum of row r's codes in group g.
 * Every variant gives the same bits for finite queries (a NaN or infinity
 * makes the row's codes garbage, differently per ISA). */
RK_DECLARE_KVQ (void, rk_kvq_quantize_query, (int rows, int n, int group, const float *q,
                                              int8_t *q8, float *qd, int32_t *qsum))

/* Queries q (rows, n) as int16 for rk_kvq8_group_scores: per row
 * qd[r] = max |q_r| / 32767 and q16 = round-to-nearest-even (q * (32767 /
 * max |q_r|)), the same bits from every variant for finite queries. */
RK_DECLARE_KVQ (void, rk_kvq_quantize_query16, (int rows, int n, const float *q, int16_t *q16,
                                                float *qd))

/* Q7: the row's 7-bit codes as int8 codes (-63..63) for the Q8 kernels;
 * n % 8 == 0. */
RK_DECLARE_KVQ (void, rk_kvq7_unpack, (int n, const uint8_t *packed, int8_t *codes))

/* Q10: the row's codes as int16 (-511..511); n % 4 == 0. */
RK_DECLARE_KVQ (void, rk_kvq10_unpack, (int n, const uint8_t *packed, int16_t *codes))
/* x = d[g] * c from int16 codes (a Q10 row unpacked). */
RK_DECLARE_KVQ (void, rk_kvq16_dequantize, (int n, int group, const int16_t *codes,
                                            const rk_fp16 *d, float *x))
/* rk_kvq8_group_scores for int16 codes (Q10 keys unpacked, code_stride in
 * codes); integer sums exact for any group (SIMD in int32 up to groups of
 * 128, the reference in int64 beyond). */
RK_DECLARE_KVQ (void, rk_kvq16_group_scores, (int rows, int cnt, int n, int group,
                                              const int16_t *q16, const float *qd,
                                              const int16_t *codes, size_t code_stride,
                                              const rk_fp16 *d, size_t scale_stride,
                                              float scale, float *s))

/* Quantizers and dequantizers of one row (not hot: once per token when it
 * migrates to the store). */
void rk_kvq8_quantize   (int n, int group, const float *x, int8_t *codes, rk_fp16 *d);
/* Q7: n % 8 == 0, n <= 512; packed gets n * 7 / 8 bytes. */
void rk_kvq7_quantize   (int n, int group, const float *x, uint8_t *packed, rk_fp16 *d);
/* Q7 codes in -63..63 into packed (n * 7 / 8 bytes; n % 8 == 0). */
void rk_kvq7_pack       (int n, const int8_t *codes, uint8_t *packed);
/* Q10: n % 4 == 0, n <= 512; packed gets n * 10 / 8 bytes. */
void rk_kvq10_quantize  (int n, int group, const float *x, uint8_t *packed, rk_fp16 *d);
void rk_kvq10_pack      (int n, const int16_t *codes, uint8_t *packed);
void rk_kvq4_quantize   (int n, int group, const float *x, uint8_t *codes, rk_fp16 *d,
                         int8_t *z);
void rk_kvq8_dequantize (int n, int group, const int8_t *codes, const rk_fp16 *d, float *x);
void rk_kvq4_dequantize (int n, int group, const uint8_t *codes, const rk_fp16 *d,
                         const int8_t *z, float *x);
