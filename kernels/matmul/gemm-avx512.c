/* gemm-avx512.c — prefill block products of the Q8_0 family with AVX-512 VNNI.
 * SPDX-License-Identifier: MIT
 *
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni (plus AVX2, FMA,
 * F16C) and used only where rk_cpu_use_avx512_vnni (). The vectors stay
 * 256 bits wide (one block of 32 values each; Zen 4 splits 512-bit ops in
 * two anyway): what AVX-512 adds is vpdpbusd, which multiplies unsigned by
 * signed bytes and adds groups of 4 into int32 lanes in one instruction,
 * and 32 vector registers, which allow bigger tiles than gemm-avx2.c.
 *
 * Bias trick: every weight format is turned into unsigned codes u = q + B
 * (Q8_0: q ^ 0x80 = q + 128; Q4_0: the nibble = q + 8; Q5_0: the 5-bit code
 * = q + 16), so that
 *
 *   sum q * x = dpbusd (-B * sum x, u, x)
 *
 * where the lane sums -B * sum x are computed once per activation block
 * (one dpbusd of the constant B with x, negated) and then start the
 * accumulation of every weight row of the tile. Per (row, token, block):
 * one dpbusd, one int->float conversion, one multiply for the scale
 * d_w * d_x and one FMA. All integer sums are exact (|lane| <= 4 * 255 * 128
 * plus 4 * 128 * 128), so results differ from _ref only by float rounding.
 *
 * Tiles walk the block as in gemm-avx2.c: MR weight rows by NR tokens, with
 * 1-row and 1-token edges.
 */

/* MR * NR float accumulators plus NR bias vectors have to fit in the 32
 * ymm registers with room for the decoded weights and temporaries. Shapes
 * measured on Zen 4 (kernels-bench 4864x1024 x 128 tokens, 1 thread): Q8_0
 * weights are cheap to decode, so more rows; nibble formats cost more to
 * decode, so more tokens share each decoded block. */
#define Q8_MR 6
#define Q8_NR 4
#define Q4_MR 4
#define Q4_NR 6
#define MAX_MR 6
#define MAX_NR 6

/* K formats: the extra registers allow 3-row tiles (see below). */
#define K_MR 3
#define K_NR 6

#include "gemm-tiles-x86.h"

#define QX_BYTES sizeof (rk_block_q8_0)

enum
{
  KIND_Q8_0,
  KIND_Q4_0,
  KIND_Q5_0,
};

/* The bias B of each format's unsigned codes. */
static ALWAYS_INLINE int
q0_bias (int kind)
{
  return kind == KIND_Q8_0 ? 128 : kind == KIND_Q4_0 ? 8 : 16;
}

/* The 32 unsigned codes q + B of a weight block. */
static ALWAYS_INLINE __m256i
q0_codes (int            kind,
          const uint8_t *b)
{
  if (kind == KIND_Q8_0)
    return _mm256_xor_si256 (rk_loadu_256 (b + offsetof (rk_block_q8_0, qs)),
                             _mm256_set1_epi8 ((char) 0x80));
  if (kind == KIND_Q4_0)
    return rk_nibbles_avx2 (b + offsetof (rk_block_q4_0, qs));
  {
    /* Q5_0: bit i of qh adds 16 to code i. */
    const __m256i nib = rk_nibbles_avx2 (b + offsetof (rk_block_q5_0, qs));
    const __mmask32 hi = _cvtu32_mask32 (rk_load_u32 (b + offsetof (rk_block_q5_0, qh)));

    return _mm256_mask_add_epi8 (nib, hi, nib, _mm256_set1_epi8 (16));
  }
}

static ALWAYS_INLINE void
q0_tile (int            kind,
         size_t         wbs,
         int            nr,
         int            nt,
         int            nb,
         const uint8_t *w,
         size_t         rs,
         const uint8_t *x,
         size_t         xr,
         float         *y,
         int64_t        ys)
{
  const __m256i bias = _mm256_set1_epi8 ((char) q0_bias (kind));
  __m256 acc[MAX_MR][MAX_NR];
  int i, j, b;

  UNROLL
  for (i = 0; i < nr; i++)
    UNROLL
    for (j = 0; j < nt; j++)
      acc[i][j] = _mm256_setzero_ps ();
  for (b = 0; b < nb; b++)
    {
      __m256i xv[MAX_NR], nbx[MAX_NR];
      __m256 dx[MAX_NR];

      UNROLL
      for (j = 0; j < nt; j++)
        {
          const uint8_t *bx = x + (size_t) j * xr + (size_t) b * QX_BYTES;

          dx[j] = _mm256_set1_ps (rk_load_fp16_avx2 (bx));
          xv[j] = rk_loadu_256 (bx + offsetof (rk_block_q8_0, qs));
          nbx[j] = _mm256_sub_epi32 (_mm256_setzero_si256 (),
                                     _mm256_dpbusd_epi32 (_mm256_setzero_si256 (), bias, xv[j]));
        }
      UNROLL
      for (i = 0; i < nr; i++)
        {
          const uint8_t *bw = w + (size_t) i * rs + (size_t) b * wbs;
          const __m256i u = q0_codes (kind, bw);
          const __m256 dw = _mm256_set1_ps (rk_load_fp16_avx2 (bw));

          UNROLL
          for (j = 0; j < nt; j++)
            {
              const __m256 p = _mm256_cvtepi32_ps (_mm256_dpbusd_epi32 (nbx[j], u, xv[j]));

              acc[i][j] = _mm256_fmadd_ps (_mm256_mul_ps (dw, dx[j]), p, acc[i][j]);
            }
        }
    }
  UNROLL
  for (i = 0; i < nr; i++)
    UNROLL
    for (j = 0; j < nt; j++)
      y[j * ys + i] = rk_hsum_ps_avx2 (acc[i][j]);
}

#define DEFINE_GEMM_Q0(name, kind, MR, NR)                                                  \
  void                                                                                     \
  name (int n, const void *w, size_t row_stride, int n_rows, const void *x, size_t x_row,  \
        int n_toks, float *y, int64_t y_stride)                                            \
  {                                                                                        \
    const uint8_t *w8 = w;                                                                 \
    const uint8_t *x8 = x;                                                                 \
    const int nb = n / RK_QK8_0;                                                           \
                                                                                           \
    WALK_TILES ((MR), (NR), Q0_TILE_##kind);                                               \
  }
#define Q0_TILE_FOR(kind, block, nr, nt, r, t)                                          \
  q0_tile ((kind), sizeof (block), (nr), (nt), nb, w8 + (size_t) (r) * row_stride,      \
           row_stride, x8 + (size_t) (t) * x_row, x_row, y + (int64_t) (t) * y_stride + (r), \
           y_stride)
#define Q0_TILE_KIND_Q8_0(nr, nt, r, t) Q0_TILE_FOR (KIND_Q8_0, rk_block_q8_0, nr, nt, r, t)
#define Q0_TILE_KIND_Q4_0(nr, nt, r, t) Q0_TILE_FOR (KIND_Q4_0, rk_block_q4_0, nr, nt, r, t)
#define Q0_TILE_KIND_Q5_0(nr, nt, r, t) Q0_TILE_FOR (KIND_Q5_0, rk_block_q5_0, nr, nt, r, t)

DEFINE_GEMM_Q0 (rk_gemm_q8_0_q8_0_avx512, KIND_Q8_0, Q8_MR, Q8_NR)
DEFINE_GEMM_Q0 (rk_gemm_q4_0_q8_0_avx512, KIND_Q4_0, Q4_MR, Q4_NR)
DEFINE_GEMM_Q0 (rk_gemm_q5_0_q8_0_avx512, KIND_Q5_0, Q4_MR, Q4_NR)

/* --- K formats with Q8_K activations ------------------------------------
 *
 * The integer work of gemm-avx2.c, with one instruction less per 32 values
 * and pair: maddubs (unsigned codes by signed activations, to 16 bits) and
 * then vpdpwssd, which multiplies by the 16-bit sub-block scales and adds
 * the pairs into the int32 sums in one go (AVX2 needs madd and add). The
 * extra registers allow 3-row tiles. */

/* maddubs to 16 bits, then one vpdpwssd multiplies by the scales and adds. */
static ALWAYS_INLINE __m256i
k_dot_acc (__m256i acc,
           __m256i q,
           __m256i q8,
           __m256i sc)
{
  return _mm256_dpwssd_epi32 (acc, _mm256_maddubs_epi16 (q, q8), sc);
}

/* Bits 2s and 2s+1 of qh[l] are the fifth bits (16): masked adds. */
static ALWAYS_INLINE void
k5_fifth_bits (__m256i  qh,
               int      s,
               __m256i *ql,
               __m256i *qhi)
{
  const __m256i v16 = _mm256_set1_epi8 (16);
  const __mmask32 hl = _mm256_test_epi8_mask (qh, _mm256_set1_epi8 ((char) (1 << (2 * s))));
  const __mmask32 hh = _mm256_test_epi8_mask (qh, _mm256_set1_epi8 ((char) (1 << (2 * s + 1))));

  *ql = _mm256_mask_add_epi8 (*ql, hl, *ql, v16);
  *qhi = _mm256_mask_add_epi8 (*qhi, hh, *qhi, v16);
}

DEFINE_GEMM_K (rk_gemm_q4_K_q8_K_avx512, K_TILE_Q4_K)
DEFINE_GEMM_K (rk_gemm_q5_K_q8_K_avx512, K_TILE_Q5_K)
DEFINE_GEMM_K (rk_gemm_q6_K_q8_K_avx512, K_TILE_Q6_K)
