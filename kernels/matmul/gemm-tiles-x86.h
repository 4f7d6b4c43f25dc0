/* gemm-tiles-x86.h — tile bodies shared by gemm-avx2.c and gemm-avx512.c (private).
 * SPDX-License-Identifier: MIT
 *
 * Included by both x86 tiers, each compiled with its own flags. The tile
 * code of the K formats is the same in both; only the integer
 * multiply-accumulate step and the Q5_K fifth-bit step differ, and each
 * including file supplies them (defined after the include):
 *
 *   k_dot_acc (acc, q, q8, sc): acc + the int32 pairs of sc * (q . q8), where
 *     q holds unsigned bytes, q8 signed bytes and sc 16-bit scales per lane
 *     pair (madd + add on AVX2, one vpdpwssd on AVX-512 VNNI);
 *   k5_fifth_bits (qh, s, &ql, &qhi): adds 16 to the codes of ql (qhi) whose
 *     bit 2s (2s + 1) of qh is set.
 *
 * The file also defines K_MR and K_NR (tile rows x tokens for the K
 * formats) before including. Integer sums are exact, so both tiers give the
 * same int32 per (row, token, block) whichever step they use.
 */
#ifndef RK_GEMM_TILES_X86_H
#define RK_GEMM_TILES_X86_H

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "rk-gemm.h"
#include "../quant/quant-legacy-avx2.h"

#if !defined(K_MR) || !defined(K_NR)
#error "define K_MR and K_NR before including gemm-tiles-x86.h"
#endif

#define ALWAYS_INLINE inline __attribute__ ((always_inline))
/* Loops over the rows and tokens of a tile must unroll completely (-O2 does
 * not always), or the accumulators live in memory instead of registers. */
#define UNROLL _Pragma ("GCC unroll 8")

#define QK_BYTES sizeof (rk_block_q8_K)

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
static ALWAYS_INLINE void k5_fifth_bits (__m256i qh, int s, __m256i *ql, __m256i *qhi);

/* --- K formats with Q8_K activations ---------------------------------- */

static ALWAYS_INLINE float
load_f32 (const uint8_t *p)
{
  float f;

  memcpy (&f, p, sizeof f);
  return f;
}

/* Q4_K/Q5_K packed 6-bit scales and mins -> 16 x s16: the 8 scales in the low
 * 128 bits, the 8 mins in the high 128 bits (layout in rk-quant.h). */
static ALWAYS_INLINE __m256i
k4_scales_mins (const uint8_t *packed)
{
  uint32_t u[3], s0, s1, m0, m1;

  memcpy (u, packed, 12);
  s0 = u[0] & 0x3f3f3f3f;
  s1 = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
  m0 = u[1] & 0x3f3f3f3f;
  m1 = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
  return _mm256_cvtepu8_epi16 (_mm_set_epi32 ((int) m1, (int) m0, (int) s1, (int) s0));
}

/* pshufb mask that broadcasts 16-bit lane s (0..7) of each 128-bit half. */
static ALWAYS_INLINE __m256i
lane16_shuffle (int s)
{
  return _mm256_set1_epi16 ((short) (((2 * s + 1) << 8) | (2 * s)));
}

/* The pairwise sums of a Q8_K block's bsums (8 x s16, one per 32 values) in
 * the high 128 bits next to zeros: madd with k4_scales_mins () gives the
 * mins term in the high half and zeros in the low half. */
static ALWAYS_INLINE __m256i
q8_K_pair_sums_hi (const uint8_t *by)
{
  const __m256i bs = _mm256_loadu_si256 ((const __m256i *) (by + offsetof (rk_block_q8_K, bsums)));
  const __m128i s = _mm_hadd_epi16 (_mm256_castsi256_si128 (bs), _mm256_extracti128_si256 (bs, 1));

  return _mm256_inserti128_si256 (_mm256_setzero_si256 (), s, 1);
}

/* q5: 0 = Q4_K, 1 = Q5_K (same scales, one more bit per value from qh). */
static ALWAYS_INLINE void
q45_K_tile (int            q5,
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
  const size_t wbs = q5 ? sizeof (rk_block_q5_K) : sizeof (rk_block_q4_K);
  const size_t off_qs = q5 ? offsetof (rk_block_q5_K, qs) : offsetof (rk_block_q4_K, qs);
  const __m256i m4 = _mm256_set1_epi8 (0xF);
  __m256 acc[K_MR][K_NR];
  int i, j, b, s;

  UNROLL
  for (i = 0; i < nr; i++)
    UNROLL
    for (j = 0; j < nt; j++)
      acc[i][j] = _mm256_setzero_ps ();
  for (b = 0; b < nb; b++)
    {
      const uint8_t *q8[K_NR];
      const uint8_t *bw[K_MR];
      __m256i sm[K_MR], scales[K_MR], qh[K_MR], sumi[K_MR][K_NR];
      float dy[K_NR];

      UNROLL
      for (j = 0; j < nt; j++)
        {
          const uint8_t *by = x + (size_t) j * xr + (size_t) b * QK_BYTES;

          dy[j] = load_f32 (by + offsetof (rk_block_q8_K, d));
          q8[j] = by + offsetof (rk_block_q8_K, qs);
        }
      UNROLL
      for (i = 0; i < nr; i++)
        {
          bw[i] = w + (size_t) i * rs + (size_t) b * wbs;
          sm[i] = k4_scales_mins (bw[i] + offsetof (rk_block_q4_K, scales));
          scales[i] = _mm256_permute2x128_si256 (sm[i], sm[i], 0x00);
          if (q5)
            qh[i] = _mm256_loadu_si256 ((const __m256i *) (bw[i] + offsetof (rk_block_q5_K, qh)));
          UNROLL
          for (j = 0; j < nt; j++)
            sumi[i][j] = _mm256_setzero_si256 ();
        }
      /* 64 values per step: the low nibbles are sub-block 2s, the high 2s+1. */
      for (s = 0; s < RK_QK_K / 64; s++)
        {
          __m256i q8l[K_NR], q8h[K_NR];

          UNROLL
          for (j = 0; j < nt; j++)
            {
              q8l[j] = _mm256_loadu_si256 ((const __m256i *) (q8[j] + 64 * s));
              q8h[j] = _mm256_loadu_si256 ((const __m256i *) (q8[j] + 64 * s + 32));
            }
          UNROLL
          for (i = 0; i < nr; i++)
            {
              const __m256i raw = _mm256_loadu_si256 ((const __m256i *) (bw[i] + off_qs + 32 * s));
              const __m256i sc_l = _mm256_shuffle_epi8 (scales[i], lane16_shuffle (2 * s));
              const __m256i sc_h = _mm256_shuffle_epi8 (scales[i], lane16_shuffle (2 * s + 1));
              __m256i ql = _mm256_and_si256 (raw, m4);
              __m256i qhi = _mm256_and_si256 (_mm256_srli_epi16 (raw, 4), m4);

              if (q5)
                k5_fifth_bits (qh[i], s, &ql, &qhi);
              UNROLL
              for (j = 0; j < nt; j++)
                sumi[i][j] = k_dot_acc (k_dot_acc (sumi[i][j], ql, q8l[j], sc_l), qhi, q8h[j],
                                        sc_h);
            }
        }
      UNROLL
      for (j = 0; j < nt; j++)
        {
          const uint8_t *by = x + (size_t) j * xr + (size_t) b * QK_BYTES;
          const __m256i ps = q8_K_pair_sums_hi (by);

          UNROLL
          for (i = 0; i < nr; i++)
            {
              const float d = dy[j] * rk_load_fp16_avx2 (bw[i] + offsetof (rk_block_q4_K, d));
              const float dmin = dy[j] * rk_load_fp16_avx2 (bw[i] + offsetof (rk_block_q4_K, dmin));
              /* Only the high half is non-zero: sum of min_k * (bsum pair k). */
              const __m256 mins = _mm256_cvtepi32_ps (_mm256_madd_epi16 (sm[i], ps));

              acc[i][j] = _mm256_fmadd_ps (_mm256_set1_ps (d), _mm256_cvtepi32_ps (sumi[i][j]),
                                           acc[i][j]);
              acc[i][j] = _mm256_fnmadd_ps (_mm256_set1_ps (dmin), mins, acc[i][j]);
            }
        }
    }
  UNROLL
  for (i = 0; i < nr; i++)
    UNROLL
    for (j = 0; j < nt; j++)
      y[j * ys + i] = rk_hsum_ps_avx2 (acc[i][j]);
}

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
          const float dy = load_f32 (by + offsetof (rk_block_q8_K, d));
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
#define K_TILE_Q4_K(nr, nt, r, t) q45_K_tile (0, (nr), (nt), K_TILE_ARGS (r, t))
#define K_TILE_Q5_K(nr, nt, r, t) q45_K_tile (1, (nr), (nt), K_TILE_ARGS (r, t))
#define K_TILE_Q6_K(nr, nt, r, t) q6_K_tile ((nr), (nt), K_TILE_ARGS (r, t))

#endif /* RK_GEMM_TILES_X86_H */
