/* rk-gemm.h — register-blocked block products for prefill (many tokens).
 * SPDX-License-Identifier: MIT
 *
 * One call computes a block of outputs
 *
 *   y[t * y_stride + r] = vec_dot (n, W[r], X[t])   r < n_rows, t < n_toks
 *
 * with W[r] = w + r * row_stride (weights in their own format) and X[t] =
 * x + t * x_row (activations already in the weight's vec_dot_type). The
 * _ref variant defines the result: exactly the per-pair vec_dot_*_ref. SIMD
 * variants compute small tiles (a few rows times a few tokens) at once, so
 * each weight block is decoded once for several tokens and each activation
 * block is loaded once for several rows; they match _ref within float
 * rounding (the order of the per-block sums may differ).
 *
 * n is the row length in elements (a multiple of the format's block size);
 * any n_rows, n_toks >= 0 are allowed, tiles at the edges are handled inside.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "rk-cpu.h"
#include "rk-types.h"

typedef void (*rk_gemm_fn) (int         n,
                            const void *w,
                            size_t      row_stride,
                            int         n_rows,
                            const void *x,
                            size_t      x_row,
                            int         n_toks,
                            float      *y,
                            int64_t     y_stride);

#define RK_DECLARE_GEMM(name)                                                       \
  void name##_ref  (int n, const void *w, size_t row_stride, int n_rows,           \
                    const void *x, size_t x_row, int n_toks, float *y, int64_t y_stride); \
  void name##_avx2 (int n, const void *w, size_t row_stride, int n_rows,           \
                    const void *x, size_t x_row, int n_toks, float *y, int64_t y_stride); \
  void name##_neon (int n, const void *w, size_t row_stride, int n_rows,           \
                    const void *x, size_t x_row, int n_toks, float *y, int64_t y_stride);

RK_DECLARE_GEMM (rk_gemm_f32_f32)
RK_DECLARE_GEMM (rk_gemm_f16_f16)
RK_DECLARE_GEMM (rk_gemm_bf16_bf16)
RK_DECLARE_GEMM (rk_gemm_q8_0_q8_0)
RK_DECLARE_GEMM (rk_gemm_q4_0_q8_0)
RK_DECLARE_GEMM (rk_gemm_q5_0_q8_0)
RK_DECLARE_GEMM (rk_gemm_q4_K_q8_K)
RK_DECLARE_GEMM (rk_gemm_q5_K_q8_K)
RK_DECLARE_GEMM (rk_gemm_q6_K_q8_K)

/* AVX-512 VNNI tiles (matmul/gemm-avx512.c, x86-64 only): rk_gemm_get_isa
 * (type, RK_ISA_AVX2) returns these instead of the _avx2 ones when
 * rk_cpu_use_avx512_vnni (). Same contract as the other variants. */
#define RK_DECLARE_GEMM_AVX512(name)                                               \
  void name##_avx512 (int n, const void *w, size_t row_stride, int n_rows,         \
                      const void *x, size_t x_row, int n_toks, float *y,           \
                      int64_t y_stride);

RK_DECLARE_GEMM_AVX512 (rk_gemm_q8_0_q8_0)
RK_DECLARE_GEMM_AVX512 (rk_gemm_q4_0_q8_0)
RK_DECLARE_GEMM_AVX512 (rk_gemm_q5_0_q8_0)
RK_DECLARE_GEMM_AVX512 (rk_gemm_q4_K_q8_K)
RK_DECLARE_GEMM_AVX512 (rk_gemm_q5_K_q8_K)
RK_DECLARE_GEMM_AVX512 (rk_gemm_q6_K_q8_K)

/* The VNNI variants of the six types above and the AVX2 Q4_K/Q5_K ones pack
 * their rows per call (gemm-avx512.c, gemm-k-avx512.c, gemm-avx2.c): callers
 * that pass up to this many tokens per call amortise the packing best, and
 * the VNNI ones cut calls with more into runs of it. */
#define RK_GEMM_PACKED_TOKS 64
/* ... and rows in passes of this many (two 8-row panels). */
#define RK_GEMM_PACKED_ROWS 16
/* Tokens per call that suits the block product of `type` on the ISA in
 * use (RK_GEMM_PACKED_TOKS for the packed ones, else 24). */
int        rk_gemm_tok_block (rk_type type);

/* The block product for weights of `type` with the ISA rk_cpu_isa() chose,
 * or NULL for a type without one (callers then loop over vec_dot). */
rk_gemm_fn rk_gemm_get       (rk_type type);
/* The same for a given ISA (tests, benchmarks); NULL where none. */
rk_gemm_fn rk_gemm_get_isa   (rk_type type,
                              rk_isa  isa);
