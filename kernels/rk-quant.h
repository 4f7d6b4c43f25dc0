/* rk-quant.h — GGUF block layouts, byte for byte, and every per-format kernel.
 * SPDX-License-Identifier: MIT
 *
 * Each block stores `QK` weights. Scales are IEEE halves (rk_fp16) unless noted.
 * Per format there are three kernels, each with a scalar `_ref` definition and
 * SIMD variants (`_avx2`, `_neon`) with identical signatures and results within
 * float rounding:
 *
 *   quantize_row_X   (const float *x, void *y, int64_t k)  k % QK == 0
 *   dequantize_row_X (const void *x, float *y, int64_t k)
 *   vec_dot_X_Y      (int n, const void *x, const void *y) -> float
 *
 * where Y is the activation format X pairs with (rk_type_traits.vec_dot_type).
 * quantize_row_*_ref is reference quality: the same rounding and search as
 * ggml's quantizers, so a row we quantize is byte-identical to llama-quantize's.
 */
#pragma once

#include <assert.h>
#include <stdint.h>

#include "rk-fp16.h"
#include "rk-types.h"

#define RK_QK4_0 32
#define RK_QK4_1 32
#define RK_QK5_0 32
#define RK_QK5_1 32
#define RK_QK8_0 32
#define RK_QK8_1 32
#define RK_QK_K 256
#define RK_K_SCALE_SIZE 12

/* Q4_0 (type 2): w = d * (q - 8), q in 0..15. qs[j] holds element j in the low
 * nibble and element j + 16 in the high nibble. */
typedef struct
{
  rk_fp16 d;
  uint8_t qs[RK_QK4_0 / 2];
} rk_block_q4_0;
static_assert (sizeof (rk_block_q4_0) == 2 + 16, "q4_0 block size");

/* Q4_1 (type 3): w = d * q + m, q in 0..15; nibble order as Q4_0. */
typedef struct
{
  rk_fp16 d;
  rk_fp16 m;
  uint8_t qs[RK_QK4_1 / 2];
} rk_block_q4_1;
static_assert (sizeof (rk_block_q4_1) == 4 + 16, "q4_1 block size");

/* Q5_0 (type 6): w = d * (q - 16), q in 0..31; low 4 bits as Q4_0, bit 4 of
 * element j is bit j of the little-endian uint32 qh. */
typedef struct
{
  rk_fp16 d;
  uint8_t qh[4];
  uint8_t qs[RK_QK5_0 / 2];
} rk_block_q5_0;
static_assert (sizeof (rk_block_q5_0) == 2 + 4 + 16, "q5_0 block size");

/* Q5_1 (type 7): w = d * q + m, q in 0..31; bits as Q5_0. */
typedef struct
{
  rk_fp16 d;
  rk_fp16 m;
  uint8_t qh[4];
  uint8_t qs[RK_QK5_1 / 2];
} rk_block_q5_1;
static_assert (sizeof (rk_block_q5_1) == 4 + 4 + 16, "q5_1 block size");

/* Q8_0 (type 8): w = d * q, q in -127..127. */
typedef struct
{
  rk_fp16 d;
  int8_t  qs[RK_QK8_0];
} rk_block_q8_0;
static_assert (sizeof (rk_block_q8_0) == 2 + 32, "q8_0 block size");

/* Q8_1 (type 9, activations for Q4_1/Q5_1): w = d * q; s = d * sum(q). */
typedef struct
{
  rk_fp16 d;
  rk_fp16 s;
  int8_t  qs[RK_QK8_1];
} rk_block_q8_1;
static_assert (sizeof (rk_block_q8_1) == 4 + 32, "q8_1 block size");

/* Q4_K (type 12): 8 sub-blocks of 32. w = d * sc[i] * q - dmin * m[i], with
 * 6-bit sc/m packed in `scales` (get_scale_min_k4 layout). qs: for each 64
 * elements, 32 bytes; low nibbles are the first 32, high nibbles the next 32. */
typedef struct
{
  rk_fp16 d;
  rk_fp16 dmin;
  uint8_t scales[RK_K_SCALE_SIZE];
  uint8_t qs[RK_QK_K / 2];
} rk_block_q4_K;
static_assert (sizeof (rk_block_q4_K) == 4 + 12 + 128, "q4_K block size");

/* Q5_K (type 13): as Q4_K plus a fifth bit per element in qh: for the 64-element
 * group g, low-nibble elements take bit 2g of qh[l], high-nibble ones bit 2g+1. */
typedef struct
{
  rk_fp16 d;
  rk_fp16 dmin;
  uint8_t scales[RK_K_SCALE_SIZE];
  uint8_t qh[RK_QK_K / 8];
  uint8_t qs[RK_QK_K / 2];
} rk_block_q5_K;
static_assert (sizeof (rk_block_q5_K) == 4 + 12 + 32 + 128, "q5_K block size");

/* Q6_K (type 14): 16 sub-blocks of 16. w = d * scales[i] * (q - 32), q in 0..63:
 * low 4 bits in ql, high 2 bits in qh. */
typedef struct
{
  uint8_t ql[RK_QK_K / 2];
  uint8_t qh[RK_QK_K / 4];
  int8_t  scales[RK_QK_K / 16];
  rk_fp16 d;
} rk_block_q6_K;
static_assert (sizeof (rk_block_q6_K) == 128 + 64 + 16 + 2, "q6_K block size");

/* Q8_K (type 15, activations for K-quants): w = d * q with a float scale;
 * bsums[i] = sum of qs[16 i .. 16 i + 15]. */
typedef struct
{
  float   d;
  int8_t  qs[RK_QK_K];
  int16_t bsums[RK_QK_K / 16];
} rk_block_q8_K;
static_assert (sizeof (rk_block_q8_K) == 4 + 256 + 32, "q8_K block size");

/* One macro declares the three variants of a kernel. */
#define RK_DECLARE_VARIANTS(ret, name, args) \
  ret name##_ref  args;                        \
  ret name##_avx2 args;                        \
  ret name##_neon args;

#define RK_DECLARE_FORMAT(t)                                                     \
  RK_DECLARE_VARIANTS (void, rk_quantize_row_##t, (const float *x, void *y, int64_t k)) \
  RK_DECLARE_VARIANTS (void, rk_dequantize_row_##t, (const void *x, float *y, int64_t k))

/* Float formats: "quantize" is conversion. */
RK_DECLARE_FORMAT (f16)
RK_DECLARE_FORMAT (bf16)
RK_DECLARE_FORMAT (q4_0)
RK_DECLARE_FORMAT (q4_1)
RK_DECLARE_FORMAT (q5_0)
RK_DECLARE_FORMAT (q5_1)
RK_DECLARE_FORMAT (q8_0)
RK_DECLARE_FORMAT (q8_1)
RK_DECLARE_FORMAT (q4_K)
RK_DECLARE_FORMAT (q5_K)
RK_DECLARE_FORMAT (q6_K)
RK_DECLARE_FORMAT (q8_K)

/* Dot products: x is the weight row (its own format), y the activations. */
RK_DECLARE_VARIANTS (float, rk_vec_dot_f32_f32,   (int n, const void *x, const void *y))
RK_DECLARE_VARIANTS (float, rk_vec_dot_f16_f16,   (int n, const void *x, const void *y))
RK_DECLARE_VARIANTS (float, rk_vec_dot_bf16_bf16, (int n, const void *x, const void *y))
RK_DECLARE_VARIANTS (float, rk_vec_dot_q4_0_q8_0, (int n, const void *x, const void *y))
RK_DECLARE_VARIANTS (float, rk_vec_dot_q4_1_q8_1, (int n, const void *x, const void *y))
RK_DECLARE_VARIANTS (float, rk_vec_dot_q5_0_q8_0, (int n, const void *x, const void *y))
RK_DECLARE_VARIANTS (float, rk_vec_dot_q5_1_q8_1, (int n, const void *x, const void *y))
RK_DECLARE_VARIANTS (float, rk_vec_dot_q8_0_q8_0, (int n, const void *x, const void *y))
RK_DECLARE_VARIANTS (float, rk_vec_dot_q4_K_q8_K, (int n, const void *x, const void *y))
RK_DECLARE_VARIANTS (float, rk_vec_dot_q5_K_q8_K, (int n, const void *x, const void *y))
RK_DECLARE_VARIANTS (float, rk_vec_dot_q6_K_q8_K, (int n, const void *x, const void *y))
/* AVX-512 VNNI (quant/q4_K-avx512.c, x86-64 only): the AVX2 traits carry it
 * in place of rk_vec_dot_q4_K_q8_K_avx2 where rk_cpu_use_avx512_vnni (). */
float rk_vec_dot_q4_K_q8_K_avx512 (int n, const void *x, const void *y);

/* Shared helpers of the reference quantizers (quant/quant-util.c), the same
 * searches ggml's quantizers use so that output is byte-identical. */
int   rk_nearest_int   (float fval);
float rk_make_qx_quants (int n, int nmax, const float *x, int8_t *L, int rmse_type,
                         const float *qw);
float rk_make_qkx2_quants (int n, int nmax, const float *x, const float *weights,
                           uint8_t *L, float *the_min, uint8_t *Laux, float rmin,
                           float rdelta, int nstep, bool use_mad);
