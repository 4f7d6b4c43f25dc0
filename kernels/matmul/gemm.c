/* gemm.c — block products for prefill: the scalar definition and the dispatch.
 * SPDX-License-Identifier: MIT
 *
 * rk_gemm_X_Y_ref is, by definition, one rk_vec_dot_X_Y_ref per output: the
 * SIMD variants (gemm-avx2.c, gemm-avx512.c, gemm-neon.c) are checked
 * against it. The AVX-512 VNNI tiles are not an rk_isa: they stand in for
 * the AVX2 ones of the same types when rk_cpu_use_avx512_vnni ().
 */
#include "rk-cpu.h"
#include "rk-gemm.h"
#include "rk-quant.h"

/* Every output of the block, one reference dot product each. */
static void
gemm_pairs (rk_vec_dot_fn vec_dot,
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

  for (t = 0; t < n_toks; t++)
    for (r = 0; r < n_rows; r++)
      y[t * y_stride + r] = vec_dot (n, (const uint8_t *) w + (size_t) r * row_stride,
                                     (const uint8_t *) x + (size_t) t * x_row);
}

#define DEFINE_GEMM_REF(wt, at)                                                        \
  void                                                                                 \
  rk_gemm_##wt##_##at##_ref (int n, const void *w, size_t row_stride, int n_rows,      \
                             const void *x, size_t x_row, int n_toks, float *y,        \
                             int64_t y_stride)                                         \
  {                                                                                    \
    gemm_pairs (rk_vec_dot_##wt##_##at##_ref, n, w, row_stride, n_rows, x, x_row,      \
                n_toks, y, y_stride);                                                  \
  }

DEFINE_GEMM_REF (f32, f32)
DEFINE_GEMM_REF (f16, f16)
DEFINE_GEMM_REF (bf16, bf16)
DEFINE_GEMM_REF (q8_0, q8_0)
DEFINE_GEMM_REF (q4_0, q8_0)
DEFINE_GEMM_REF (q5_0, q8_0)
DEFINE_GEMM_REF (q4_K, q8_K)
DEFINE_GEMM_REF (q5_K, q8_K)
DEFINE_GEMM_REF (q6_K, q8_K)

#define GEMM_CASE(T, wt, at, sfx) \
  case T:                         \
    return rk_gemm_##wt##_##at##sfx;

#define GEMM_TABLE(sfx)                          \
  switch ((int) type)                            \
    {                                            \
      GEMM_CASE (RK_TYPE_F32, f32, f32, sfx)     \
      GEMM_CASE (RK_TYPE_F16, f16, f16, sfx)     \
      GEMM_CASE (RK_TYPE_BF16, bf16, bf16, sfx)  \
      GEMM_CASE (RK_TYPE_Q8_0, q8_0, q8_0, sfx)  \
      GEMM_CASE (RK_TYPE_Q4_0, q4_0, q8_0, sfx)  \
      GEMM_CASE (RK_TYPE_Q5_0, q5_0, q8_0, sfx)  \
      GEMM_CASE (RK_TYPE_Q4_K, q4_K, q8_K, sfx)  \
      GEMM_CASE (RK_TYPE_Q5_K, q5_K, q8_K, sfx)  \
      GEMM_CASE (RK_TYPE_Q6_K, q6_K, q8_K, sfx)  \
    default:                                     \
      return NULL;                               \
    }

/* The AVX-512 VNNI block product that stands in for the AVX2 one of `type`,
 * or NULL (none, or not enabled: rk_cpu_use_avx512_vnni ()). All of them
 * pack their rows per call (RK_GEMM_PACKED_TOKS). */
static rk_gemm_fn
gemm_avx512 (rk_type type)
{
#if defined(RK_HAVE_AVX512)
  if (rk_cpu_use_avx512_vnni ())
    switch ((int) type)
      {
        GEMM_CASE (RK_TYPE_Q8_0, q8_0, q8_0, _avx512)
        GEMM_CASE (RK_TYPE_Q4_0, q4_0, q8_0, _avx512)
        GEMM_CASE (RK_TYPE_Q5_0, q5_0, q8_0, _avx512)
        GEMM_CASE (RK_TYPE_Q4_K, q4_K, q8_K, _avx512)
        GEMM_CASE (RK_TYPE_Q5_K, q5_K, q8_K, _avx512)
        GEMM_CASE (RK_TYPE_Q6_K, q6_K, q8_K, _avx512)
      default:
        break;
      }
#endif
  (void) type;
  return NULL;
}

rk_gemm_fn
rk_gemm_get_isa (rk_type type,
                 rk_isa  isa)
{
  switch ((int) isa)
    {
#if defined(RK_HAVE_AVX2)
    case RK_ISA_AVX2:
      if (gemm_avx512 (type) != NULL)
        return gemm_avx512 (type);
      GEMM_TABLE (_avx2)
#endif
#if defined(RK_HAVE_NEON)
    case RK_ISA_NEON:
      GEMM_TABLE (_neon)
#endif
    case RK_ISA_REF:
    default:
      GEMM_TABLE (_ref)
    }
}

rk_gemm_fn
rk_gemm_get (rk_type type)
{
  rk_cpu_init ();
  return rk_gemm_get_isa (type, rk_cpu_isa ());
}

int
rk_gemm_tok_block (rk_type type)
{
  rk_cpu_init ();
  if (rk_cpu_isa () == RK_ISA_AVX2
      && (gemm_avx512 (type) != NULL || type == RK_TYPE_Q4_K || type == RK_TYPE_Q5_K))
    return RK_GEMM_PACKED_TOKS;   /* the AVX2 Q4_K/Q5_K products pack too */
  /* The tiles are 3 to 8 tokens wide; 24 is a multiple of each. */
  return 24;
}
