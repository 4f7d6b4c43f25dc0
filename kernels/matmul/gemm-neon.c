/* gemm-neon.c — block products for prefill on aarch64.
 * SPDX-License-Identifier: MIT
 *
 * No register-blocked NEON tiles yet: each output is one NEON vec_dot (the
 * same kernels the decode path uses), so prefill on aarch64 runs exactly as
 * fast as it did before the AVX2 tiles existed, and results equal the
 * per-pair products bit for bit.
 */
#include "rk-gemm.h"
#include "rk-quant.h"

static void
gemm_pairs (float       (*vec_dot) (int, const void *, const void *),
            int           n,
            const void   *w,
            size_t        row_stride,
            int           n_rows,
            const void   *x,
            size_t        x_row,
            int           n_toks,
            float        *y,
            int64_t       y_stride)
{
  int r, t;

  for (r = 0; r < n_rows; r++)
    for (t = 0; t < n_toks; t++)
      y[t * y_stride + r] = vec_dot (n, (const uint8_t *) w + (size_t) r * row_stride,
                                     (const uint8_t *) x + (size_t) t * x_row);
}

#define DEFINE_GEMM_NEON(wt, at)                                                       \
  void                                                                                 \
  rk_gemm_##wt##_##at##_neon (int n, const void *w, size_t row_stride, int n_rows,     \
                              const void *x, size_t x_row, int n_toks, float *y,       \
                              int64_t y_stride)                                        \
  {                                                                                    \
    gemm_pairs (rk_vec_dot_##wt##_##at##_neon, n, w, row_stride, n_rows, x, x_row,     \
                n_toks, y, y_stride);                                                  \
  }

DEFINE_GEMM_NEON (f32, f32)
DEFINE_GEMM_NEON (f16, f16)
DEFINE_GEMM_NEON (bf16, bf16)
DEFINE_GEMM_NEON (q8_0, q8_0)
DEFINE_GEMM_NEON (q4_0, q8_0)
DEFINE_GEMM_NEON (q5_0, q8_0)
DEFINE_GEMM_NEON (q4_K, q8_K)
DEFINE_GEMM_NEON (q5_K, q8_K)
DEFINE_GEMM_NEON (q6_K, q8_K)
