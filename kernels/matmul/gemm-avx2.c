/* gemm-avx2.c — register-blocked block products for prefill, AVX2 + FMA + F16C.
 * SPDX-License-Identifier: MIT
 *
 * A block of n_rows x n_toks outputs is cut into tiles of MR weight rows by
 * NR tokens. A tile keeps its MR * NR accumulators in registers for the whole
 * row: each weight block is decoded once and used for NR tokens, each
 * activation block is loaded once and used for MR rows. Edges use the same
 * tile code with 1 row and/or 1 token (every size is a compile-time constant
 * of an always-inlined body, so the loops over rows and tokens unroll).
 *
 * Per pair of blocks the integer work is the vec_dot's (maddubs of unsigned
 * by signed bytes, madd to int32); the float scale d_w * d_x multiplies one
 * cvt per block as in the vec_dot kernels.
 */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "rk-gemm.h"
#include "../quant/quant-legacy-avx2.h"

#define ALWAYS_INLINE inline __attribute__ ((always_inline))
/* Loops over the rows and tokens of a tile must unroll completely (-O2 does
 * not always), or the accumulators live in memory instead of registers. */
#define UNROLL _Pragma ("GCC unroll 8")

/* Tile shapes (rows x tokens), the fastest of those measured on Zen 4 with
 * kernels-bench-like shapes (16 ymm registers; wide in tokens because the
 * weight decode costs more than an activation load). */
#define Q0_MR 2
#define Q0_NR 8
#define K_MR 2
#define K_NR 6
#define F_MR 4
#define F_NR 3

#define QX_BYTES sizeof (rk_block_q8_0)
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

/* --- Q8_0, Q4_0, Q5_0 weights with Q8_0 activations ------------------- */

enum
{
  KIND_Q8_0,
  KIND_Q4_0,
  KIND_Q5_0,
};

/* The 32 signed weights of a block. */
static ALWAYS_INLINE __m256i
q0_values (int            kind,
           const uint8_t *b)
{
  if (kind == KIND_Q8_0)
    return rk_loadu_256 (b + offsetof (rk_block_q8_0, qs));
  if (kind == KIND_Q4_0)
    return _mm256_sub_epi8 (rk_nibbles_avx2 (b + offsetof (rk_block_q4_0, qs)),
                            _mm256_set1_epi8 (8));
  /* Q5_0: nibble | (fifth bit clear ? 0xF0 : 0) read as int8 is q - 16. */
  return _mm256_or_si256 (rk_nibbles_avx2 (b + offsetof (rk_block_q5_0, qs)),
                          _mm256_andnot_si256 (rk_bits_to_bytes_avx2 (
                                                 rk_load_u32 (b + offsetof (rk_block_q5_0, qh))),
                                               _mm256_set1_epi8 ((char) 0xF0)));
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
  const __m256i ones = _mm256_set1_epi16 (1);
  __m256 acc[Q0_MR][Q0_NR];
  int i, j, b;

  UNROLL
  for (i = 0; i < nr; i++)
    UNROLL
    for (j = 0; j < nt; j++)
      acc[i][j] = _mm256_setzero_ps ();
  for (b = 0; b < nb; b++)
    {
      __m256i xv[Q0_NR];
      float dx[Q0_NR];

      UNROLL
      for (j = 0; j < nt; j++)
        {
          const uint8_t *bx = x + (size_t) j * xr + (size_t) b * QX_BYTES;

          dx[j] = rk_load_fp16_avx2 (bx);
          xv[j] = rk_loadu_256 (bx + offsetof (rk_block_q8_0, qs));
        }
      UNROLL
      for (i = 0; i < nr; i++)
        {
          const uint8_t *bw = w + (size_t) i * rs + (size_t) b * wbs;
          const __m256i wv = q0_values (kind, bw);
          /* maddubs wants the unsigned operand first: |w|, and w's sign on x. */
          const __m256i aw = _mm256_sign_epi8 (wv, wv);
          const float dw = rk_load_fp16_avx2 (bw);

          UNROLL
          for (j = 0; j < nt; j++)
            {
              const __m256i p16 = _mm256_maddubs_epi16 (aw, _mm256_sign_epi8 (xv[j], wv));
              const __m256 p = _mm256_cvtepi32_ps (_mm256_madd_epi16 (p16, ones));

              acc[i][j] = _mm256_fmadd_ps (_mm256_set1_ps (dw * dx[j]), p, acc[i][j]);
            }
        }
    }
  UNROLL
  for (i = 0; i < nr; i++)
    UNROLL
    for (j = 0; j < nt; j++)
      y[j * ys + i] = rk_hsum_ps_avx2 (acc[i][j]);
}

#define DEFINE_GEMM_Q0(name)                                                               \
  void                                                                                     \
  name (int n, const void *w, size_t row_stride, int n_rows, const void *x, size_t x_row,  \
        int n_toks, float *y, int64_t y_stride)                                            \
  {                                                                                        \
    const uint8_t *w8 = w;                                                                 \
    const uint8_t *x8 = x;                                                                 \
    const int nb = n / RK_QK8_0;                                                           \
                                                                                           \
    WALK_TILES (Q0_MR, Q0_NR, Q0_TILE);                                                    \
  }
#define Q0_TILE_FOR(kind, block, nr, nt, r, t)                                          \
  q0_tile ((kind), sizeof (block), (nr), (nt), nb, w8 + (size_t) (r) * row_stride,      \
           row_stride, x8 + (size_t) (t) * x_row, x_row, y + (int64_t) (t) * y_stride + (r), \
           y_stride)

#define Q0_TILE(nr, nt, r, t) Q0_TILE_FOR (KIND_Q8_0, rk_block_q8_0, nr, nt, r, t)
DEFINE_GEMM_Q0 (rk_gemm_q8_0_q8_0_avx2)
#undef Q0_TILE
#define Q0_TILE(nr, nt, r, t) Q0_TILE_FOR (KIND_Q4_0, rk_block_q4_0, nr, nt, r, t)
DEFINE_GEMM_Q0 (rk_gemm_q4_0_q8_0_avx2)
#undef Q0_TILE
#define Q0_TILE(nr, nt, r, t) Q0_TILE_FOR (KIND_Q5_0, rk_block_q5_0, nr, nt, r, t)
DEFINE_GEMM_Q0 (rk_gemm_q5_0_q8_0_avx2)
#undef Q0_TILE

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
                {
                  /* Bits 2s and 2s+1 of qh[l] are the fifth bits (16). */
                  const __m256i bl = _mm256_set1_epi8 ((char) (1 << (2 * s)));
                  const __m256i bh = _mm256_set1_epi8 ((char) (1 << (2 * s + 1)));
                  const __m256i v16 = _mm256_set1_epi8 (16);
                  const __m256i hl = _mm256_cmpeq_epi8 (_mm256_and_si256 (qh[i], bl), bl);
                  const __m256i hh = _mm256_cmpeq_epi8 (_mm256_and_si256 (qh[i], bh), bh);

                  ql = _mm256_or_si256 (ql, _mm256_and_si256 (hl, v16));
                  qhi = _mm256_or_si256 (qhi, _mm256_and_si256 (hh, v16));
                }
              UNROLL
              for (j = 0; j < nt; j++)
                {
                  const __m256i pl = _mm256_madd_epi16 (sc_l, _mm256_maddubs_epi16 (ql, q8l[j]));
                  const __m256i ph = _mm256_madd_epi16 (sc_h, _mm256_maddubs_epi16 (qhi, q8h[j]));

                  sumi[i][j] = _mm256_add_epi32 (sumi[i][j], _mm256_add_epi32 (pl, ph));
                }
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

#define K_TILE_ARGS(r, t) \
  nb, w8 + (size_t) (r) * row_stride, row_stride, x8 + (size_t) (t) * x_row, x_row, \
  y + (int64_t) (t) * y_stride + (r), y_stride

void
rk_gemm_q4_K_q8_K_avx2 (int n, const void *w, size_t row_stride, int n_rows, const void *x,
                        size_t x_row, int n_toks, float *y, int64_t y_stride)
{
  const uint8_t *w8 = w;
  const uint8_t *x8 = x;
  const int nb = n / RK_QK_K;

#define TILE(nr, nt, r, t) q45_K_tile (0, (nr), (nt), K_TILE_ARGS (r, t))
  WALK_TILES (K_MR, K_NR, TILE);
#undef TILE
}

void
rk_gemm_q5_K_q8_K_avx2 (int n, const void *w, size_t row_stride, int n_rows, const void *x,
                        size_t x_row, int n_toks, float *y, int64_t y_stride)
{
  const uint8_t *w8 = w;
  const uint8_t *x8 = x;
  const int nb = n / RK_QK_K;

#define TILE(nr, nt, r, t) q45_K_tile (1, (nr), (nt), K_TILE_ARGS (r, t))
  WALK_TILES (K_MR, K_NR, TILE);
#undef TILE
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
                  sumi[i][j] = _mm256_add_epi32 (sumi[i][j], _mm256_madd_epi16 (
                                                   sc, _mm256_maddubs_epi16 (q, q8v[j])));
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

void
rk_gemm_q6_K_q8_K_avx2 (int n, const void *w, size_t row_stride, int n_rows, const void *x,
                        size_t x_row, int n_toks, float *y, int64_t y_stride)
{
  const uint8_t *w8 = w;
  const uint8_t *x8 = x;
  const int nb = n / RK_QK_K;

#define TILE(nr, nt, r, t) q6_K_tile ((nr), (nt), K_TILE_ARGS (r, t))
  WALK_TILES (K_MR, K_NR, TILE);
#undef TILE
}

/* --- float formats ------------------------------------------------------ */

enum
{
  KIND_F32,
  KIND_F16,
  KIND_BF16,
};

static ALWAYS_INLINE __m256
load8 (int            kind,
       const uint8_t *p)
{
  if (kind == KIND_F32)
    return _mm256_loadu_ps ((const float *) (const void *) p);
  if (kind == KIND_F16)
    return _mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (const void *) p));
  {
    const __m128i h = _mm_loadu_si128 ((const __m128i *) (const void *) p);

    return _mm256_castsi256_ps (_mm256_slli_epi32 (_mm256_cvtepu16_epi32 (h), 16));
  }
}

static ALWAYS_INLINE float
load1 (int            kind,
       const uint8_t *p)
{
  float f;
  uint16_t h;

  if (kind == KIND_F32)
    {
      memcpy (&f, p, sizeof f);
      return f;
    }
  memcpy (&h, p, sizeof h);
  if (kind == KIND_F16)
    return _cvtsh_ss (h);
  {
    uint32_t u = (uint32_t) h << 16;

    memcpy (&f, &u, sizeof f);
    return f;
  }
}

static ALWAYS_INLINE void
f_tile (int            kind,
        int            nr,
        int            nt,
        int            n,
        const uint8_t *w,
        size_t         rs,
        const uint8_t *x,
        size_t         xr,
        float         *y,
        int64_t        ys)
{
  const size_t es = kind == KIND_F32 ? 4 : 2;
  __m256 acc[F_MR][F_NR];
  int i, j, k;

  UNROLL
  for (i = 0; i < nr; i++)
    UNROLL
    for (j = 0; j < nt; j++)
      acc[i][j] = _mm256_setzero_ps ();
  for (k = 0; k + 8 <= n; k += 8)
    {
      __m256 xv[F_NR];

      UNROLL
      for (j = 0; j < nt; j++)
        xv[j] = load8 (kind, x + (size_t) j * xr + (size_t) k * es);
      UNROLL
      for (i = 0; i < nr; i++)
        {
          const __m256 wv = load8 (kind, w + (size_t) i * rs + (size_t) k * es);

          UNROLL
          for (j = 0; j < nt; j++)
            acc[i][j] = _mm256_fmadd_ps (wv, xv[j], acc[i][j]);
        }
    }
  UNROLL
  for (i = 0; i < nr; i++)
    UNROLL
    for (j = 0; j < nt; j++)
      {
        float sum = rk_hsum_ps_avx2 (acc[i][j]);
        int kk;

        for (kk = k; kk < n; kk++)
          sum += load1 (kind, w + (size_t) i * rs + (size_t) kk * es)
                 * load1 (kind, x + (size_t) j * xr + (size_t) kk * es);
        y[j * ys + i] = sum;
      }
}

#define DEFINE_GEMM_F(name, kind)                                                          \
  void                                                                                     \
  name (int n, const void *w, size_t row_stride, int n_rows, const void *x, size_t x_row,  \
        int n_toks, float *y, int64_t y_stride)                                            \
  {                                                                                        \
    const uint8_t *w8 = w;                                                                 \
    const uint8_t *x8 = x;                                                                 \
                                                                                           \
    WALK_TILES (F_MR, F_NR, F_TILE_##kind);                                                \
  }
#define F_TILE_ARGS(r, t) \
  n, w8 + (size_t) (r) * row_stride, row_stride, x8 + (size_t) (t) * x_row, x_row, \
  y + (int64_t) (t) * y_stride + (r), y_stride
#define F_TILE_KIND_F32(nr, nt, r, t) f_tile (KIND_F32, (nr), (nt), F_TILE_ARGS (r, t))
#define F_TILE_KIND_F16(nr, nt, r, t) f_tile (KIND_F16, (nr), (nt), F_TILE_ARGS (r, t))
#define F_TILE_KIND_BF16(nr, nt, r, t) f_tile (KIND_BF16, (nr), (nt), F_TILE_ARGS (r, t))

DEFINE_GEMM_F (rk_gemm_f32_f32_avx2, KIND_F32)
DEFINE_GEMM_F (rk_gemm_f16_f16_avx2, KIND_F16)
DEFINE_GEMM_F (rk_gemm_bf16_bf16_avx2, KIND_BF16)
