/* gemm-k-avx512.c — prefill block products of the K formats with AVX-512 VNNI.
 * SPDX-License-Identifier: MIT
 *
 * Compiled with the flags of gemm-avx512.c and used where it is. The weights
 * are packed 8 rows at a time (gemm-packed-avx512.h); per 256-value block
 * each sub-block is packed as the Q8_0 family's blocks are, its integer
 * sums are scaled by the rows' sub-block scales, and the mins (Q6_K: the
 * -32 offset) come off once per block. Q8_K activations. On Zen 4,
 * 4864x1024 by 128 tokens, one thread: Q4_K 123 -> 286, Q5_K 111 -> 259,
 * Q6_K 112 -> 242 GFLOP/s against the unpacked tiles this replaced. All
 * integer sums are exact, as in _ref (bounds in the sections below).
 */
#include <immintrin.h>
#include <stddef.h>

#include "gemm-packed-avx512.h"
#include "gemm-pack-k-x86.h"

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

/* --- Packed panels of Q4_K / Q5_K ------------------------------------------
 *
 * As for the Q8_0 family, 8 rows at a time: per 256-value block, each of
 * the 8 sub-blocks is 8 steps of (4 codes of each row), then one dpbusd per
 * step leaves the 8 rows' integer sums of that sub-block, which are scaled
 * by the rows' 6-bit sub-block scales (one vpmulld) and summed over the
 * block. The mins term, sum_s m_s * bsum_s, is 4 vpdpwssd of the rows'
 * (m_2p, m_2p+1) pairs with the token's pair of sub-block sums. Per 8 rows,
 * token and 32 values: 8 dpbusd, a multiply and an add (16 ops unpacked).
 * Codes are 0..15 (31 for Q5_K), unsigned as dpbusd wants them; all integer
 * sums are exact as in _ref. */

/* Blocks of 256 per chunk: 2 panels of 8 blocks = 39 KiB. */
#define PKK_KC 8
/* Tokens per register tile (3 x 8 accumulators per panel). */
#define PKK_NT 3

/* Per token and block: the scale and the 8 sub-block sums (pairs of
 * bsums), as 4 dwords of two int16 each. */
typedef struct
{
  float   d;
  int32_t bs[4];
} pkk_act;

static ALWAYS_INLINE void
pkk_prepare (const uint8_t *x,
             size_t         xr,
             int            nt,
             int            b0,
             int            nbc,
             pkk_act       *a)
{
  int t, b;

  for (t = 0; t < nt; t++)
    for (b = 0; b < nbc; b++)
      {
        const uint8_t *by = x + (size_t) t * xr + (size_t) (b0 + b) * QK_BYTES;
        const __m256i bs = _mm256_loadu_si256 ((const __m256i *) (by + offsetof (rk_block_q8_K, bsums)));
        const __m128i s = _mm_hadd_epi16 (_mm256_castsi256_si128 (bs), _mm256_extracti128_si256 (bs, 1));

        a[t * PKK_KC + b].d = rk_k_load_f32 (by + offsetof (rk_block_q8_K, d));
        _mm_storeu_si128 ((__m128i *) a[t * PKK_KC + b].bs, s);
      }
}

/* One sub-block of ng panels by nt tokens: sum[g][j] += the rows' scales *
 * the integer dot of `steps` packed steps (u[g]: step 0 of panel g, 32
 * bytes a step) with token j's activations from q8[j], 4 bytes a step. */
static ALWAYS_INLINE void
pk_subblock (int             ng,
             int             nt,
             int             steps,
             const uint8_t  *u[PK_G],
             const int32_t  *sc[PK_G],
             const uint8_t  *q8[PK_TILE_MAX_NT],
             __m256i         sum[PK_G][PK_TILE_MAX_NT])
{
  __m256i isum[PK_G][PK_TILE_MAX_NT];
  int g, j, k;

  UNROLL
  for (g = 0; g < ng; g++)
    UNROLL
    for (j = 0; j < nt; j++)
      isum[g][j] = _mm256_setzero_si256 ();
  UNROLL
  for (k = 0; k < steps; k++)
    {
      __m256i wu[PK_G];

      UNROLL
      for (g = 0; g < ng; g++)
        wu[g] = _mm256_load_si256 ((const __m256i *) (u[g] + 32 * k));
      UNROLL
      for (j = 0; j < nt; j++)
        {
          const __m256i xb = _mm256_set1_epi32 ((int) rk_load_u32 (q8[j] + 4 * k));

          UNROLL
          for (g = 0; g < ng; g++)
            isum[g][j] = _mm256_dpbusd_epi32 (isum[g][j], wu[g], xb);
        }
    }
  UNROLL
  for (g = 0; g < ng; g++)
    {
      const __m256i scv = _mm256_load_si256 ((const __m256i *) sc[g]);

      UNROLL
      for (j = 0; j < nt; j++)
        sum[g][j] = _mm256_add_epi32 (sum[g][j], _mm256_mullo_epi32 (isum[g][j], scv));
    }
}

static ALWAYS_INLINE void
pkk_tile (int              ng,
          int              nt,
          int              nr_last,
          const pk45_block *pk,
          int              nbc,
          const uint8_t   *x,
          size_t           xr,
          int              b0,
          const pkk_act   *a,
          int              first,
          float           *y,
          int64_t          ys)
{
  __m256 acc[PK_G][PK_TILE_MAX_NT];
  int g, j, b, s, p;

  PK_ACC_LOAD (acc, ng, nt, nr_last, first, y, ys);
  for (b = 0; b < nbc; b++)
    {
      __m256i sum[PK_G][PK_TILE_MAX_NT], mins[PK_G][PK_TILE_MAX_NT];

      UNROLL
      for (g = 0; g < ng; g++)
        UNROLL
        for (j = 0; j < nt; j++)
          sum[g][j] = mins[g][j] = _mm256_setzero_si256 ();
      for (s = 0; s < 8; s++)
        {
          const uint8_t *u[PK_G], *q8[PK_TILE_MAX_NT];
          const int32_t *sc[PK_G];

          UNROLL
          for (g = 0; g < ng; g++)
            {
              u[g] = pk[g * PKK_KC + b].u[s][0];
              sc[g] = pk[g * PKK_KC + b].sc[s];
            }
          UNROLL
          for (j = 0; j < nt; j++)
            q8[j] = x + (size_t) j * xr + (size_t) (b0 + b) * QK_BYTES
                    + offsetof (rk_block_q8_K, qs) + 32 * s;
          pk_subblock (ng, nt, 8, u, sc, q8, sum);
        }
      UNROLL
      for (p = 0; p < 4; p++)
        UNROLL
        for (g = 0; g < ng; g++)
          {
            const __m256i mv = _mm256_load_si256 ((const __m256i *) pk[g * PKK_KC + b].mn[p]);

            UNROLL
            for (j = 0; j < nt; j++)
              mins[g][j] = _mm256_dpwssd_epi32 (mins[g][j], mv,
                                                _mm256_set1_epi32 (a[j * PKK_KC + b].bs[p]));
          }
      UNROLL
      for (g = 0; g < ng; g++)
        {
          const __m256 dw = _mm256_load_ps (pk[g * PKK_KC + b].d);
          const __m256 dm = _mm256_load_ps (pk[g * PKK_KC + b].dmin);

          UNROLL
          for (j = 0; j < nt; j++)
            {
              const __m256 v = _mm256_fnmadd_ps (_mm256_cvtepi32_ps (mins[g][j]), dm,
                                                 _mm256_mul_ps (_mm256_cvtepi32_ps (sum[g][j]), dw));

              acc[g][j] = _mm256_fmadd_ps (v, _mm256_set1_ps (a[j * PKK_KC + b].d), acc[g][j]);
            }
        }
    }
  PK_ACC_STORE (acc, ng, nt, nr_last, y, ys);
}

static ALWAYS_INLINE void
k45_gemm_packed (int            q5,
                 int            n,
                 const uint8_t *w,
                 size_t         rs,
                 int            n_rows,
                 const uint8_t *x,
                 size_t         xr,
                 int            n_toks,
                 float         *y,
                 int64_t        ys)
{
  const int nb = n / RK_QK_K;
  pk45_block pk[PK_G * PKK_KC] __attribute__ ((aligned (32)));
  pkk_act a[PK_TOKS * PKK_KC];
  int t0, b0, r0, g, j;

  if (nb == 0)
    pk_zero (n_rows, n_toks, y, ys);
  for (t0 = 0; t0 < n_toks; t0 += PK_TOKS)
    {
      const int nt = n_toks - t0 < PK_TOKS ? n_toks - t0 : PK_TOKS;
      const uint8_t *xt = x + (size_t) t0 * xr;

      for (b0 = 0; b0 < nb; b0 += PKK_KC)
        {
          const int nbc = nb - b0 < PKK_KC ? nb - b0 : PKK_KC;

          pkk_prepare (xt, xr, nt, b0, nbc, a);
          for (r0 = 0; r0 < n_rows; r0 += 8 * PK_G)
            {
              const int nr = n_rows - r0 < 8 * PK_G ? n_rows - r0 : 8 * PK_G;
              const int ng = (nr + 7) / 8;

              for (g = 0; g < ng; g++)
                pk45_pack (q5, 1, w + (size_t) (r0 + 8 * g) * rs, rs, nr - 8 * g < 8 ? nr - 8 * g : 8,
                          b0, nbc, pk + g * PKK_KC);
              for (j = 0; j < nt; j += PKK_NT)
                PK_TILE_NT (pkk_tile, ng, nt - j < PKK_NT ? nt - j : PKK_NT, nr - 8 * (ng - 1), pk, nbc,
                             xt + (size_t) j * xr, xr, b0, a + j * PKK_KC, b0 == 0,
                             y + (int64_t) (t0 + j) * ys + r0, ys);
            }
        }
    }
}

void
rk_gemm_q4_K_q8_K_avx512 (int n, const void *w, size_t row_stride, int n_rows, const void *x,
                          size_t x_row, int n_toks, float *y, int64_t y_stride)
{
  k45_gemm_packed (0, n, w, row_stride, n_rows, x, x_row, n_toks, y, y_stride);
}

void
rk_gemm_q5_K_q8_K_avx512 (int n, const void *w, size_t row_stride, int n_rows, const void *x,
                          size_t x_row, int n_toks, float *y, int64_t y_stride)
{
  k45_gemm_packed (1, n, w, row_stride, n_rows, x, x_row, n_toks, y, y_stride);
}

/* --- Packed panels of Q6_K -------------------------------------------------
 *
 * The same for Q6_K's 16 sub-blocks of 16 values (4 steps each): codes
 * 0..63 stay unsigned, their -32 offset comes off once per block as
 * 32 * sum_k scale_k * bsum_k, 8 vpdpwssd of the rows' scale pairs with the
 * token's bsum pairs (read straight from the Q8_K block). Per 8 rows, token
 * and 32 values: 8 dpbusd, 2 multiplies and 2 adds (16 ops unpacked). */

typedef struct
{
  uint8_t u[16][4][32];  /* sub-block k, step i: codes 4i..4i+3 of rows 0..7 */
  int32_t sc[16][8];     /* sub-block k: the rows' scales */
  int16_t scp[8][8][2];  /* pair p: the rows' scales of sub-blocks 2p, 2p + 1 */
  float   d[8];
} pk6_block;

static_assert (sizeof (pk6_block) % 32 == 0, "pk6_block keeps 32-byte alignment");

static ALWAYS_INLINE void
pk6_pack (const uint8_t *w,
          size_t         rs,
          int            nr,
          int            b0,
          int            nbc,
          pk6_block     *out)
{
  const __m256i m4 = _mm256_set1_epi8 (0xF);
  const __m256i m2 = _mm256_set1_epi8 (3);
  int b, r, k, h, t;

  for (b = 0; b < nbc; b++)
    {
      pk6_block *o = out + b;
      const uint8_t *bw[8];

      for (r = 0; r < 8; r++)
        {
          bw[r] = r < nr ? w + (size_t) r * rs + (size_t) (b0 + b) * sizeof (rk_block_q6_K) : NULL;
          for (k = 0; k < 16; k++)
            {
              const int v = bw[r] != NULL ? ((const int8_t *) (bw[r] + offsetof (rk_block_q6_K, scales)))[k] : 0;

              o->sc[k][r] = v;
              o->scp[k / 2][r][k % 2] = (int16_t) v;
            }
          o->d[r] = bw[r] != NULL ? rk_load_fp16_avx2 (bw[r] + offsetof (rk_block_q6_K, d)) : 0.0f;
        }
      /* Quarter t of half h: 32 values, sub-blocks 8h + 2t and 8h + 2t + 1. */
      for (h = 0; h < 2; h++)
        for (t = 0; t < 4; t++)
          {
            __m256i q[8];

            for (r = 0; r < 8; r++)
              {
                if (bw[r] == NULL)
                  {
                    q[r] = _mm256_setzero_si256 ();
                    continue;
                  }
                {
                  const uint8_t *ql = bw[r] + offsetof (rk_block_q6_K, ql) + 64 * h + 32 * (t & 1);
                  const uint8_t *qhp = bw[r] + offsetof (rk_block_q6_K, qh) + 32 * h;
                  const __m256i l = _mm256_loadu_si256 ((const __m256i *) ql);
                  const __m256i hb = _mm256_loadu_si256 ((const __m256i *) qhp);
                  const __m256i lo = t < 2 ? _mm256_and_si256 (l, m4)
                                           : _mm256_and_si256 (_mm256_srli_epi16 (l, 4), m4);
                  const __m256i hi = _mm256_and_si256 (_mm256_srli_epi16 (hb, 2 * t), m2);

                  q[r] = _mm256_or_si256 (lo, _mm256_slli_epi16 (hi, 4));
                }
              }
            transpose_8x8_epi32 (q);
            for (r = 0; r < 8; r++)
              _mm256_store_si256 ((__m256i *) o->u[8 * h + 2 * t + r / 4][r % 4], q[r]);
          }
    }
}

static ALWAYS_INLINE void
pk6_tile (int              ng,
          int              nt,
          int              nr_last,
          const pk6_block *pk,
          int              nbc,
          const uint8_t   *x,
          size_t           xr,
          int              b0,
          int              first,
          float           *y,
          int64_t          ys)
{
  __m256 acc[PK_G][PK_TILE_MAX_NT];
  int g, j, b, k, p;

  PK_ACC_LOAD (acc, ng, nt, nr_last, first, y, ys);
  for (b = 0; b < nbc; b++)
    {
      __m256i sum[PK_G][PK_TILE_MAX_NT], off[PK_G][PK_TILE_MAX_NT];
      const uint8_t *bx[PK_TILE_MAX_NT];

      UNROLL
      for (j = 0; j < nt; j++)
        bx[j] = x + (size_t) j * xr + (size_t) (b0 + b) * QK_BYTES;
      UNROLL
      for (g = 0; g < ng; g++)
        UNROLL
        for (j = 0; j < nt; j++)
          sum[g][j] = off[g][j] = _mm256_setzero_si256 ();
      for (k = 0; k < 16; k++)
        {
          const uint8_t *u[PK_G], *q8[PK_TILE_MAX_NT];
          const int32_t *sc[PK_G];

          UNROLL
          for (g = 0; g < ng; g++)
            {
              u[g] = pk[g * PKK_KC + b].u[k][0];
              sc[g] = pk[g * PKK_KC + b].sc[k];
            }
          UNROLL
          for (j = 0; j < nt; j++)
            q8[j] = bx[j] + offsetof (rk_block_q8_K, qs) + 16 * k;
          pk_subblock (ng, nt, 4, u, sc, q8, sum);
        }
      UNROLL
      for (p = 0; p < 8; p++)
        UNROLL
        for (g = 0; g < ng; g++)
          {
            const __m256i sv = _mm256_load_si256 ((const __m256i *) pk[g * PKK_KC + b].scp[p]);

            UNROLL
            for (j = 0; j < nt; j++)
              off[g][j] = _mm256_dpwssd_epi32 (off[g][j], sv, _mm256_set1_epi32 ((int) rk_load_u32 (
                                                 bx[j] + offsetof (rk_block_q8_K, bsums) + 4 * p)));
          }
      UNROLL
      for (g = 0; g < ng; g++)
        {
          const __m256 dw = _mm256_load_ps (pk[g * PKK_KC + b].d);

          UNROLL
          for (j = 0; j < nt; j++)
            {
              const __m256i q = _mm256_sub_epi32 (sum[g][j], _mm256_slli_epi32 (off[g][j], 5));

              acc[g][j] = _mm256_fmadd_ps (_mm256_mul_ps (_mm256_cvtepi32_ps (q), dw),
                                           _mm256_set1_ps (rk_k_load_f32 (bx[j] + offsetof (rk_block_q8_K, d))),
                                           acc[g][j]);
            }
        }
    }
  PK_ACC_STORE (acc, ng, nt, nr_last, y, ys);
}

void
rk_gemm_q6_K_q8_K_avx512 (int n, const void *w, size_t row_stride, int n_rows, const void *x,
                          size_t x_row, int n_toks, float *y, int64_t y_stride)
{
  const uint8_t *w8 = w;
  const uint8_t *x8 = x;
  const int nb = n / RK_QK_K;
  pk6_block pk[PK_G * PKK_KC] __attribute__ ((aligned (32)));
  int b0, r0, g, j;

  if (nb == 0)
    pk_zero (n_rows, n_toks, y, y_stride);
  /* No per-token preparation here, so the whole call is one run of tokens. */
  for (b0 = 0; b0 < nb; b0 += PKK_KC)
    {
      const int nbc = nb - b0 < PKK_KC ? nb - b0 : PKK_KC;

      for (r0 = 0; r0 < n_rows; r0 += 8 * PK_G)
        {
          const int nr = n_rows - r0 < 8 * PK_G ? n_rows - r0 : 8 * PK_G;
          const int ng = (nr + 7) / 8;

          for (g = 0; g < ng; g++)
            pk6_pack (w8 + (size_t) (r0 + 8 * g) * row_stride, row_stride,
                      nr - 8 * g < 8 ? nr - 8 * g : 8, b0, nbc, pk + g * PKK_KC);
          for (j = 0; j < n_toks; j += PKK_NT)
            PK_TILE_NT (pk6_tile, ng, n_toks - j < PKK_NT ? n_toks - j : PKK_NT, nr - 8 * (ng - 1), pk, nbc,
                         x8 + (size_t) j * x_row, x_row, b0, b0 == 0,
                         y + (int64_t) j * y_stride + r0, y_stride);
        }
    }
}
