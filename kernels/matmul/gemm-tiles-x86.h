/* gemm-tiles-x86.h — the unpacked tiles of gemm-avx2.c (private).
 * SPDX-License-Identifier: MIT
 *
 * The tile walk and the Q6_K tile of the AVX2 block products (the AVX-512
 * VNNI products and the AVX2 Q4_K/Q5_K ones pack their rows instead, see
 * gemm-packed-avx512.h). The including file supplies the integer step,
 * defined after the include:
 *
 *   k_dot_acc (acc, q, q8, sc): acc + the int32 pairs of sc * (q . q8), where
 *     q holds unsigned bytes, q8 signed bytes and sc 16-bit scales per lane
 *     pair (madd + add on AVX2);
 *
 * and defines K_MR and K_NR (tile rows x tokens for the K formats) before
 * including.
 */
#ifndef RK_GEMM_TILES_X86_H
#define RK_GEMM_TILES_X86_H

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "rk-gemm.h"
#include "gemm-pack-k-x86.h"
#include "../quant/quant-legacy-avx2.h"

#if !defined(K_MR) || !defined(K_NR)
#error "define K_MR and K_NR before including gemm-tiles-x86.h"
#endif

#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE inline __attribute__ ((always_inline))
#endif
/* Loops over the rows and tokens of a tile must unroll completely (-O2 does
 * not always), or the accumulators live in memory instead of registers. */
#ifndef UNROLL
#define UNROLL _Pragma ("GCC unroll 8")
#endif

/* Walks the block in tiles: full MR-row groups with NR-token tiles and a
 * 1-token tail, then leftover rows one at a time. TILE(nr, nt, r, t) must
 * compute rows r..r+nr-1 by tokens t..t+nt-1. */
#define WALK_TILES(MR, NR, TILE)                    \
  do                                                \
    {                                               \
      int r_, t_;                                   \
      for (r_ = 0; r_ + (MR) <= n_rows; r_ += (MR)) \
        {                                           \
          for (t_ = 0; t_ + (NR) <= n_toks; t_ += (NR)) \
            TILE ((MR), (NR), r_, t_);              \
          for (; t_ < n_toks; t_++)                 \
            TILE ((MR), 1, r_, t_);                 \
        }                                           \
      for (; r_ < n_rows; r_++)                     \
        {                                           \
          for (t_ = 0; t_ + (NR) <= n_toks; t_ += (NR)) \
            TILE (1, (NR), r_, t_);                 \
          for (; t_ < n_toks; t_++)                 \
            TILE (1, 1, r_, t_);                    \
        }                                           \
    }                                               \
  while (0)

/* The including file's steps (see above). */
static ALWAYS_INLINE __m256i k_dot_acc (__m256i acc, __m256i q, __m256i q8, __m256i sc);

/* --- K formats with Q8_K activations ---------------------------------- */

/* Q6_K: values 0..63 stay unsigned for maddubs; the -32 offset comes off once
 * per block as 32 * sum_k scale_k * bsum_k (16 sub-blocks of 16). */
static ALWAYS_INLINE void
q6_K_tile (int            nr,
           int            nt,
           int            nb,
           const uint8_t *w,
           size_t         rs,
           const uint8_t *x,
           size_t         xr,
           float         *y,
           int64_t        ys)
{
  const __m256i m4 = _mm256_set1_epi8 (0xF);
  const __m256i m2 = _mm256_set1_epi8 (3);
  __m256 acc[K_MR][K_NR];
  int i, j, b, h, t;

  UNROLL
  for (i = 0; i < nr; i++)
    UNROLL
    for (j = 0; j < nt; j++)
      acc[i][j] = _mm256_setzero_ps ();
  for (b = 0; b < nb; b++)
    {
      const uint8_t *q8[K_NR];
      const uint8_t *bw[K_MR];
      __m128i sc8[K_MR];
      __m256i sumi[K_MR][K_NR];

      UNROLL
      for (j = 0; j < nt; j++)
        q8[j] = x + (size_t) j * xr + (size_t) b * QK_BYTES + offsetof (rk_block_q8_K, qs);
      UNROLL
      for (i = 0; i < nr; i++)
        {
          bw[i] = w + (size_t) i * rs + (size_t) b * sizeof (rk_block_q6_K);
          sc8[i] = _mm_loadu_si128 ((const __m128i *) (bw[i] + offsetof (rk_block_q6_K, scales)));
          UNROLL
          for (j = 0; j < nt; j++)
            sumi[i][j] = _mm256_setzero_si256 ();
        }
      for (h = 0; h < 2; h++)
        for (t = 0; t < 4; t++)
          {
            /* Quarter t of half h: 32 values, sub-blocks k and k + 1. */
            const int k = 8 * h + 2 * t;
            const __m128i shuf = _mm_set_epi64x (0x0101010101010101LL * (k + 1),
                                                 0x0101010101010101LL * k);
            __m256i q8v[K_NR];

            UNROLL
            for (j = 0; j < nt; j++)
              q8v[j] = _mm256_loadu_si256 ((const __m256i *) (q8[j] + 128 * h + 32 * t));
            UNROLL
            for (i = 0; i < nr; i++)
              {
                const uint8_t *ql = bw[i] + offsetof (rk_block_q6_K, ql) + 64 * h + 32 * (t & 1);
                const uint8_t *qhp = bw[i] + offsetof (rk_block_q6_K, qh) + 32 * h;
                const __m256i l = _mm256_loadu_si256 ((const __m256i *) ql);
                const __m256i hb = _mm256_loadu_si256 ((const __m256i *) qhp);
                const __m256i lo = t < 2 ? _mm256_and_si256 (l, m4)
                                         : _mm256_and_si256 (_mm256_srli_epi16 (l, 4), m4);
                const __m256i hi = _mm256_and_si256 (_mm256_srli_epi16 (hb, 2 * t), m2);
                const __m256i q = _mm256_or_si256 (lo, _mm256_slli_epi16 (hi, 4));
                const __m256i sc = _mm256_cvtepi8_epi16 (_mm_shuffle_epi8 (sc8[i], shuf));

                UNROLL
                for (j = 0; j < nt; j++)
                  sumi[i][j] = k_dot_acc (sumi[i][j], q, q8v[j], sc);
              }
          }
      UNROLL
      for (j = 0; j < nt; j++)
        {
          const uint8_t *by = x + (size_t) j * xr + (size_t) b * QK_BYTES;
          const float dy = rk_k_load_f32 (by + offsetof (rk_block_q8_K, d));
          const __m256i bs = _mm256_loadu_si256 ((const __m256i *) (by + offsetof (rk_block_q8_K,
                                                                                   bsums)));

          UNROLL
          for (i = 0; i < nr; i++)
            {
              const float d = dy * rk_load_fp16_avx2 (bw[i] + offsetof (rk_block_q6_K, d));
              const __m256i sc16 = _mm256_cvtepi8_epi16 (sc8[i]);
              const __m256i off = _mm256_slli_epi32 (_mm256_madd_epi16 (sc16, bs), 5);

              acc[i][j] = _mm256_fmadd_ps (_mm256_set1_ps (d),
                                           _mm256_cvtepi32_ps (_mm256_sub_epi32 (sumi[i][j], off)),
                                           acc[i][j]);
            }
        }
    }
  UNROLL
  for (i = 0; i < nr; i++)
    UNROLL
    for (j = 0; j < nt; j++)
      y[j * ys + i] = rk_hsum_ps_avx2 (acc[i][j]);
}

#define K_TILE_ARGS(r, t) \
  nb, w8 + (size_t) (r) * row_stride, row_stride, x8 + (size_t) (t) * x_row, x_row, \
  y + (int64_t) (t) * y_stride + (r), y_stride

/* The public entry point NAME of a K-format gemm over TILE (one of below). */
#define DEFINE_GEMM_K(name, TILE)                                                          \
  void                                                                                     \
  name (int n, const void *w, size_t row_stride, int n_rows, const void *x, size_t x_row,  \
        int n_toks, float *y, int64_t y_stride)                                            \
  {                                                                                        \
    const uint8_t *w8 = w;                                                                 \
    const uint8_t *x8 = x;                                                                 \
    const int nb = n / RK_QK_K;                                                            \
                                                                                           \
    WALK_TILES (K_MR, K_NR, TILE);                                                         \
  }
#define K_TILE_Q6_K(nr, nt, r, t) q6_K_tile ((nr), (nt), K_TILE_ARGS (r, t))

#endif /* RK_GEMM_TILES_X86_H */
