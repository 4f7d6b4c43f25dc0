/* gemm-avx512.c — prefill block products with AVX-512 VNNI (Q8_0 family, K formats).
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
 * All integer sums are exact (|sum| <= 32 * 255 * 128 plus 32 * 128 * 128),
 * so results differ from _ref only by float rounding. All six formats'
 * weights are packed 8 rows at a time first (see "Packed panels"): on
 * Zen 4, 4864x1024 by 128 tokens, one thread, that took Q8_0 from ~75 to
 * ~150-250 GFLOP/s and Q4_K from ~86 to ~145-160.
 */

/* The unpacked K tiles of gemm-tiles-x86.h, which this file includes for
 * its helpers but no longer calls: 3 rows fit in the extra registers. */
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

/* --- Packed panels -------------------------------------------------------
 *
 * A weight block is 32 codes of one row, so a dpbusd of it with an
 * activation block leaves 8 partial sums of one (row, token) pair, and each
 * pair then needs its own conversion, scale multiply and FMA: 4 vector ops
 * per row, token and block, which is what bounded the old tiles (Zen 4 runs
 * dpbusd, cvt, mul and FMA on the same two pipes).
 *
 * So the weights are first packed, a panel of 8 rows at a time: step k of a
 * packed block holds bytes 4k..4k+3 of each of the 8 rows (row r in lane r),
 * with the 8 rows' scales beside them. Step k is then one dpbusd with
 * activation bytes 4k..4k+3 broadcast to every lane, and after the 8 steps
 * lane r holds row r's whole integer block sum for that token: 8 dpbusd plus
 * one conversion, multiply and FMA for 8 rows. Packing is done per call and
 * reused by all its tokens (matmul.c passes up to RK_GEMM_PACKED_TOKS).
 *
 * The codes are packed unsigned (q + B, see q0_codes), the activations stay
 * signed, and the int32 sums start at -B * sum (x) of the token's block,
 * which is computed once per call for each token and block (pk_prepare). */

/* Blocks per chunk of the row: the panels and the per-token sums of one
 * chunk stay in L1/L2 (2 panels of 64 blocks: 36 KiB). */
#define PK_KC 64
/* Tokens per call this code prepares sums for (matmul.c keeps to it). */
#define PK_TOKS RK_GEMM_PACKED_TOKS
/* Panels per pass (8 rows each) and tokens per register tile. */
#define PK_G (RK_GEMM_PACKED_ROWS / 8)
#define PK_NT 4

typedef struct
{
  uint8_t u[8][32];  /* step k: bytes 4k..4k+3 of rows 0..7 */
  float   d[8];      /* the rows' block scales */
} pk_block;

/* The *_tile_nt dispatchers below know passes of 1 or 2 panels only; any
 * other count would make them silently compute nothing. */
static_assert (RK_GEMM_PACKED_ROWS == 16, "pk*_tile_nt handle 1 or 2 panels");
/* Arrays of packed blocks are 32-byte aligned: each block must stay so for
 * the aligned loads and stores of its fields. */
static_assert (sizeof (pk_block) % 32 == 0, "pk_block keeps 32-byte alignment");

/* n = 0: every output is the empty dot product, 0, but the packed drivers
 * below store only from within a chunk of blocks, and there is none. */
static void
pk_zero (int      n_rows,
         int      n_toks,
         float   *y,
         int64_t  ys)
{
  int r, t;

  for (t = 0; t < n_toks; t++)
    for (r = 0; r < n_rows; r++)
      y[t * ys + r] = 0.0f;
}

/* 8 rows of 8 dwords each -> 8 vectors of dword k of every row. */
static ALWAYS_INLINE void
transpose_8x8_epi32 (__m256i r[8])
{
  __m256i t[8], v[8];
  int i;

  for (i = 0; i < 4; i++)
    {
      t[2 * i] = _mm256_unpacklo_epi32 (r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_epi32 (r[2 * i], r[2 * i + 1]);
    }
  for (i = 0; i < 2; i++)
    {
      v[4 * i + 0] = _mm256_unpacklo_epi64 (t[4 * i + 0], t[4 * i + 2]);
      v[4 * i + 1] = _mm256_unpackhi_epi64 (t[4 * i + 0], t[4 * i + 2]);
      v[4 * i + 2] = _mm256_unpacklo_epi64 (t[4 * i + 1], t[4 * i + 3]);
      v[4 * i + 3] = _mm256_unpackhi_epi64 (t[4 * i + 1], t[4 * i + 3]);
    }
  for (i = 0; i < 4; i++)
    {
      r[i] = _mm256_permute2x128_si256 (v[i], v[i + 4], 0x20);
      r[i + 4] = _mm256_permute2x128_si256 (v[i], v[i + 4], 0x31);
    }
}

/* Packs rows [0, nr) (nr <= 8; the others get code B and scale 0, so they
 * add nothing) of blocks [b0, b0 + nbc) of the weights w. */
static ALWAYS_INLINE void
pk_pack (int            kind,
         size_t         wbs,
         const uint8_t *w,
         size_t         rs,
         int            nr,
         int            b0,
         int            nbc,
         pk_block      *out)
{
  const __m256i pad = _mm256_set1_epi8 ((char) q0_bias (kind));
  int b, r;

  for (b = 0; b < nbc; b++)
    {
      __m256i u[8];

      for (r = 0; r < 8; r++)
        {
          const uint8_t *bw = w + (size_t) r * rs + (size_t) (b0 + b) * wbs;

          if (r < nr)
            {
              u[r] = q0_codes (kind, bw);
              out[b].d[r] = rk_load_fp16_avx2 (bw);
            }
          else
            {
              u[r] = pad;
              out[b].d[r] = 0.0f;
            }
        }
      transpose_8x8_epi32 (u);
      for (r = 0; r < 8; r++)
        _mm256_store_si256 ((__m256i *) out[b].u[r], u[r]);
    }
}

/* For tokens [0, nt) and blocks [b0, b0 + nbc): the start of each integer
 * sum, -B * sum (x), and the activation scale. */
static ALWAYS_INLINE void
pk_prepare (int            kind,
            const uint8_t *x,
            size_t         xr,
            int            nt,
            int            b0,
            int            nbc,
            int32_t       *s0,
            float         *dx)
{
  const __m256i ones = _mm256_set1_epi8 (1);
  const int32_t bias = q0_bias (kind);
  int t, b;

  for (t = 0; t < nt; t++)
    for (b = 0; b < nbc; b++)
      {
        const uint8_t *bx = x + (size_t) t * xr + (size_t) (b0 + b) * QX_BYTES;
        const __m256i sum = _mm256_dpbusd_epi32 (_mm256_setzero_si256 (), ones,
                                                 rk_loadu_256 (bx + offsetof (rk_block_q8_0, qs)));
        __m128i h = _mm_add_epi32 (_mm256_castsi256_si128 (sum),
                                   _mm256_extracti128_si256 (sum, 1));

        h = _mm_add_epi32 (h, _mm_shuffle_epi32 (h, _MM_SHUFFLE (1, 0, 3, 2)));
        h = _mm_add_epi32 (h, _mm_shuffle_epi32 (h, _MM_SHUFFLE (2, 3, 0, 1)));
        s0[t * PK_KC + b] = -bias * _mm_cvtsi128_si32 (h);
        dx[t * PK_KC + b] = rk_load_fp16_avx2 (bx);
      }
}

/* ng panels (8 rows each) by nt tokens over one chunk of nbc blocks:
 * y[j * ys + 8 g + r] (+)= the chunk's dot products; rows of the last panel
 * past nr_last are not stored. */
static ALWAYS_INLINE void
pk_tile (int             ng,
         int             nt,
         int             nr_last,
         const pk_block *pk,
         int             nbc,
         const uint8_t  *x,
         size_t          xr,
         int             b0,
         const int32_t  *s0,
         const float    *dx,
         int             first,
         float          *y,
         int64_t         ys)
{
  const __mmask8 last = (__mmask8) ((1u << nr_last) - 1);
  __m256 acc[PK_G][PK_NT];
  int g, j, b, k;

  UNROLL
  for (g = 0; g < ng; g++)
    UNROLL
    for (j = 0; j < nt; j++)
      acc[g][j] = first ? _mm256_setzero_ps ()
                        : _mm256_maskz_loadu_ps (g == ng - 1 ? last : 0xff, y + j * ys + 8 * g);
  for (b = 0; b < nbc; b++)
    {
      __m256i isum[PK_G][PK_NT];

      UNROLL
      for (j = 0; j < nt; j++)
        {
          const __m256i s = _mm256_set1_epi32 (s0[j * PK_KC + b]);

          UNROLL
          for (g = 0; g < ng; g++)
            isum[g][j] = s;
        }
      UNROLL
      for (k = 0; k < 8; k++)
        {
          __m256i wu[PK_G];

          UNROLL
          for (g = 0; g < ng; g++)
            wu[g] = _mm256_load_si256 ((const __m256i *) pk[g * PK_KC + b].u[k]);
          UNROLL
          for (j = 0; j < nt; j++)
            {
              const __m256i xb = _mm256_set1_epi32 ((int) rk_load_u32 (x + (size_t) j * xr + (size_t) (b0 + b) * QX_BYTES
                                                                  + offsetof (rk_block_q8_0, qs) + 4 * k));

              UNROLL
              for (g = 0; g < ng; g++)
                isum[g][j] = _mm256_dpbusd_epi32 (isum[g][j], wu[g], xb);
            }
        }
      UNROLL
      for (g = 0; g < ng; g++)
        {
          const __m256 dw = _mm256_load_ps (pk[g * PK_KC + b].d);

          UNROLL
          for (j = 0; j < nt; j++)
            acc[g][j] = _mm256_fmadd_ps (_mm256_cvtepi32_ps (isum[g][j]),
                                         _mm256_mul_ps (dw, _mm256_set1_ps (dx[j * PK_KC + b])),
                                         acc[g][j]);
        }
    }
  UNROLL
  for (g = 0; g < ng; g++)
    UNROLL
    for (j = 0; j < nt; j++)
      _mm256_mask_storeu_ps (y + j * ys + 8 * g, g == ng - 1 ? last : 0xff, acc[g][j]);
}

/* The tile with ng and nt as constants (the loops above must unroll). */
static ALWAYS_INLINE void
pk_tile_nt (int             ng,
            int             nt,
            int             nr_last,
            const pk_block *pk,
            int             nbc,
            const uint8_t  *x,
            size_t          xr,
            int             b0,
            const int32_t  *s0,
            const float    *dx,
            int             first,
            float          *y,
            int64_t         ys)
{
#define PK_CASE(G, T)                                                              \
  if (ng == (G) && nt == (T))                                                      \
    {                                                                              \
      pk_tile ((G), (T), nr_last, pk, nbc, x, xr, b0, s0, dx, first, y, ys);       \
      return;                                                                      \
    }
  PK_CASE (2, 4) PK_CASE (2, 3) PK_CASE (2, 2) PK_CASE (2, 1)
  PK_CASE (1, 4) PK_CASE (1, 3) PK_CASE (1, 2) PK_CASE (1, 1)
#undef PK_CASE
}

static ALWAYS_INLINE void
q0_gemm_packed (int            kind,
                size_t         wbs,
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
  const int nb = n / RK_QK8_0;
  pk_block pk[PK_G * PK_KC] __attribute__ ((aligned (32)));
  int32_t s0[PK_TOKS * PK_KC];
  float dx[PK_TOKS * PK_KC];
  int t0, b0, r0, g, j;

  if (nb == 0)
    pk_zero (n_rows, n_toks, y, ys);
  for (t0 = 0; t0 < n_toks; t0 += PK_TOKS)
    {
      const int nt = n_toks - t0 < PK_TOKS ? n_toks - t0 : PK_TOKS;
      const uint8_t *xt = x + (size_t) t0 * xr;

      for (b0 = 0; b0 < nb; b0 += PK_KC)
        {
          const int nbc = nb - b0 < PK_KC ? nb - b0 : PK_KC;

          pk_prepare (kind, xt, xr, nt, b0, nbc, s0, dx);
          for (r0 = 0; r0 < n_rows; r0 += 8 * PK_G)
            {
              const int nr = n_rows - r0 < 8 * PK_G ? n_rows - r0 : 8 * PK_G;
              const int ng = (nr + 7) / 8;

              for (g = 0; g < ng; g++)
                pk_pack (kind, wbs, w + (size_t) (r0 + 8 * g) * rs, rs,
                         nr - 8 * g < 8 ? nr - 8 * g : 8, b0, nbc, pk + g * PK_KC);
              for (j = 0; j < nt; j += PK_NT)
                pk_tile_nt (ng, nt - j < PK_NT ? nt - j : PK_NT, nr - 8 * (ng - 1),
                            pk, nbc, xt + (size_t) j * xr, xr, b0, s0 + j * PK_KC,
                            dx + j * PK_KC, b0 == 0, y + (int64_t) (t0 + j) * ys + r0, ys);
            }
        }
    }
}

#define DEFINE_GEMM_Q0(name, kind, block)                                                  \
  void                                                                                     \
  name (int n, const void *w, size_t row_stride, int n_rows, const void *x, size_t x_row,  \
        int n_toks, float *y, int64_t y_stride)                                            \
  {                                                                                        \
    q0_gemm_packed ((kind), sizeof (block), n, w, row_stride, n_rows, x, x_row, n_toks,    \
                    y, y_stride);                                                          \
  }

DEFINE_GEMM_Q0 (rk_gemm_q8_0_q8_0_avx512, KIND_Q8_0, rk_block_q8_0)
DEFINE_GEMM_Q0 (rk_gemm_q4_0_q8_0_avx512, KIND_Q4_0, rk_block_q4_0)
DEFINE_GEMM_Q0 (rk_gemm_q5_0_q8_0_avx512, KIND_Q5_0, rk_block_q5_0)

/* --- K formats with Q8_K activations ------------------------------------
 *
 * The unpacked tiles of gemm-tiles-x86.h (no longer called here): the
 * integer work of gemm-avx2.c, with one instruction less per 32 values and pair: maddubs
 * (unsigned codes by signed activations, to 16 bits) and then vpdpwssd,
 * which multiplies by the 16-bit sub-block scales and adds the pairs into
 * the int32 sums in one go (AVX2 needs madd and add). The extra registers
 * allow 3-row tiles. Q4_K, Q5_K and Q6_K are packed (below). */

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
/* Panels per pass and tokens per register tile (3 x 8 accumulators). */
#define PKK_G (RK_GEMM_PACKED_ROWS / 8)
#define PKK_NT 3

typedef struct
{
  uint8_t u[8][8][32];   /* sub-block s, step k: codes 4k..4k+3 of rows 0..7 */
  int32_t sc[8][8];      /* sub-block s: the rows' scales */
  int16_t mn[4][8][2];   /* pair p: the rows' mins of sub-blocks 2p, 2p + 1 */
  float   d[8];
  float   dmin[8];
} pkk_block;

static_assert (sizeof (pkk_block) % 32 == 0, "pkk_block keeps 32-byte alignment");

static ALWAYS_INLINE void
pkk_pack (int            q5,
          const uint8_t *w,
          size_t         rs,
          int            nr,
          int            b0,
          int            nbc,
          pkk_block     *out)
{
  const size_t wbs = q5 ? sizeof (rk_block_q5_K) : sizeof (rk_block_q4_K);
  const size_t off_qs = q5 ? offsetof (rk_block_q5_K, qs) : offsetof (rk_block_q4_K, qs);
  const __m256i m4 = _mm256_set1_epi8 (0xF);
  int b, r, i;

  for (b = 0; b < nbc; b++)
    {
      pkk_block *o = out + b;
      const uint8_t *bw[8];

      for (r = 0; r < 8; r++)
        {
          bw[r] = r < nr ? w + (size_t) r * rs + (size_t) (b0 + b) * wbs : NULL;
          if (bw[r] != NULL)
            {
              int16_t sm[16];

              _mm256_storeu_si256 ((__m256i *) sm,
                                   k4_scales_mins (bw[r] + offsetof (rk_block_q4_K, scales)));
              for (i = 0; i < 8; i++)
                o->sc[i][r] = sm[i];
              for (i = 0; i < 4; i++)
                {
                  o->mn[i][r][0] = sm[8 + 2 * i];
                  o->mn[i][r][1] = sm[8 + 2 * i + 1];
                }
              o->d[r] = rk_load_fp16_avx2 (bw[r] + offsetof (rk_block_q4_K, d));
              o->dmin[r] = rk_load_fp16_avx2 (bw[r] + offsetof (rk_block_q4_K, dmin));
            }
          else
            {
              for (i = 0; i < 8; i++)
                o->sc[i][r] = 0;
              for (i = 0; i < 4; i++)
                o->mn[i][r][0] = o->mn[i][r][1] = 0;
              o->d[r] = o->dmin[r] = 0.0f;
            }
        }
      /* 64 values per step: the low nibbles are sub-block 2i, the high 2i+1. */
      for (i = 0; i < 4; i++)
        {
          __m256i lo[8], hi[8];

          for (r = 0; r < 8; r++)
            {
              if (bw[r] == NULL)
                {
                  lo[r] = hi[r] = _mm256_setzero_si256 ();
                  continue;
                }
              {
                const __m256i raw = _mm256_loadu_si256 ((const __m256i *) (bw[r] + off_qs + 32 * i));

                lo[r] = _mm256_and_si256 (raw, m4);
                hi[r] = _mm256_and_si256 (_mm256_srli_epi16 (raw, 4), m4);
                if (q5)
                  k5_fifth_bits (_mm256_loadu_si256 ((const __m256i *) (bw[r] + offsetof (rk_block_q5_K, qh))),
                                 i, &lo[r], &hi[r]);
              }
            }
          transpose_8x8_epi32 (lo);
          transpose_8x8_epi32 (hi);
          for (r = 0; r < 8; r++)
            {
              _mm256_store_si256 ((__m256i *) o->u[2 * i][r], lo[r]);
              _mm256_store_si256 ((__m256i *) o->u[2 * i + 1][r], hi[r]);
            }
        }
    }
}

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

        a[t * PKK_KC + b].d = load_f32 (by + offsetof (rk_block_q8_K, d));
        _mm_storeu_si128 ((__m128i *) a[t * PKK_KC + b].bs, s);
      }
}

static ALWAYS_INLINE void
pkk_tile (int              ng,
          int              nt,
          int              nr_last,
          const pkk_block *pk,
          int              nbc,
          const uint8_t   *x,
          size_t           xr,
          int              b0,
          const pkk_act   *a,
          int              first,
          float           *y,
          int64_t          ys)
{
  const __mmask8 last = (__mmask8) ((1u << nr_last) - 1);
  __m256 acc[PKK_G][PKK_NT];
  int g, j, b, s, k, p;

  UNROLL
  for (g = 0; g < ng; g++)
    UNROLL
    for (j = 0; j < nt; j++)
      acc[g][j] = first ? _mm256_setzero_ps ()
                        : _mm256_maskz_loadu_ps (g == ng - 1 ? last : 0xff, y + j * ys + 8 * g);
  for (b = 0; b < nbc; b++)
    {
      __m256i sum[PKK_G][PKK_NT], mins[PKK_G][PKK_NT];

      UNROLL
      for (g = 0; g < ng; g++)
        UNROLL
        for (j = 0; j < nt; j++)
          sum[g][j] = mins[g][j] = _mm256_setzero_si256 ();
      for (s = 0; s < 8; s++)
        {
          __m256i isum[PKK_G][PKK_NT];

          UNROLL
          for (g = 0; g < ng; g++)
            UNROLL
            for (j = 0; j < nt; j++)
              isum[g][j] = _mm256_setzero_si256 ();
          UNROLL
          for (k = 0; k < 8; k++)
            {
              __m256i wu[PKK_G];

              UNROLL
              for (g = 0; g < ng; g++)
                wu[g] = _mm256_load_si256 ((const __m256i *) pk[g * PKK_KC + b].u[s][k]);
              UNROLL
              for (j = 0; j < nt; j++)
                {
                  const __m256i xb = _mm256_set1_epi32 ((int) rk_load_u32 (x + (size_t) j * xr + (size_t) (b0 + b) * QK_BYTES
                                                                      + offsetof (rk_block_q8_K, qs) + 32 * s + 4 * k));

                  UNROLL
                  for (g = 0; g < ng; g++)
                    isum[g][j] = _mm256_dpbusd_epi32 (isum[g][j], wu[g], xb);
                }
            }
          UNROLL
          for (g = 0; g < ng; g++)
            {
              const __m256i sc = _mm256_load_si256 ((const __m256i *) pk[g * PKK_KC + b].sc[s]);

              UNROLL
              for (j = 0; j < nt; j++)
                sum[g][j] = _mm256_add_epi32 (sum[g][j], _mm256_mullo_epi32 (isum[g][j], sc));
            }
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
  UNROLL
  for (g = 0; g < ng; g++)
    UNROLL
    for (j = 0; j < nt; j++)
      _mm256_mask_storeu_ps (y + j * ys + 8 * g, g == ng - 1 ? last : 0xff, acc[g][j]);
}

static ALWAYS_INLINE void
pkk_tile_nt (int              ng,
             int              nt,
             int              nr_last,
             const pkk_block *pk,
             int              nbc,
             const uint8_t   *x,
             size_t           xr,
             int              b0,
             const pkk_act   *a,
             int              first,
             float           *y,
             int64_t          ys)
{
#define PKK_CASE(G, T)                                                             \
  if (ng == (G) && nt == (T))                                                      \
    {                                                                              \
      pkk_tile ((G), (T), nr_last, pk, nbc, x, xr, b0, a, first, y, ys);           \
      return;                                                                      \
    }
  PKK_CASE (2, 3) PKK_CASE (2, 2) PKK_CASE (2, 1)
  PKK_CASE (1, 3) PKK_CASE (1, 2) PKK_CASE (1, 1)
#undef PKK_CASE
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
  pkk_block pk[PKK_G * PKK_KC] __attribute__ ((aligned (32)));
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
          for (r0 = 0; r0 < n_rows; r0 += 8 * PKK_G)
            {
              const int nr = n_rows - r0 < 8 * PKK_G ? n_rows - r0 : 8 * PKK_G;
              const int ng = (nr + 7) / 8;

              for (g = 0; g < ng; g++)
                pkk_pack (q5, w + (size_t) (r0 + 8 * g) * rs, rs, nr - 8 * g < 8 ? nr - 8 * g : 8,
                          b0, nbc, pk + g * PKK_KC);
              for (j = 0; j < nt; j += PKK_NT)
                pkk_tile_nt (ng, nt - j < PKK_NT ? nt - j : PKK_NT, nr - 8 * (ng - 1), pk, nbc,
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
  const __mmask8 last = (__mmask8) ((1u << nr_last) - 1);
  __m256 acc[PKK_G][PKK_NT];
  int g, j, b, k, i, p;

  UNROLL
  for (g = 0; g < ng; g++)
    UNROLL
    for (j = 0; j < nt; j++)
      acc[g][j] = first ? _mm256_setzero_ps ()
                        : _mm256_maskz_loadu_ps (g == ng - 1 ? last : 0xff, y + j * ys + 8 * g);
  for (b = 0; b < nbc; b++)
    {
      __m256i sum[PKK_G][PKK_NT], off[PKK_G][PKK_NT];
      const uint8_t *bx[PKK_NT];

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
          __m256i isum[PKK_G][PKK_NT];

          UNROLL
          for (g = 0; g < ng; g++)
            UNROLL
            for (j = 0; j < nt; j++)
              isum[g][j] = _mm256_setzero_si256 ();
          UNROLL
          for (i = 0; i < 4; i++)
            {
              __m256i wu[PKK_G];

              UNROLL
              for (g = 0; g < ng; g++)
                wu[g] = _mm256_load_si256 ((const __m256i *) pk[g * PKK_KC + b].u[k][i]);
              UNROLL
              for (j = 0; j < nt; j++)
                {
                  const __m256i xb = _mm256_set1_epi32 ((int) rk_load_u32 (bx[j] + offsetof (rk_block_q8_K, qs)
                                                                      + 16 * k + 4 * i));

                  UNROLL
                  for (g = 0; g < ng; g++)
                    isum[g][j] = _mm256_dpbusd_epi32 (isum[g][j], wu[g], xb);
                }
            }
          UNROLL
          for (g = 0; g < ng; g++)
            {
              const __m256i sc = _mm256_load_si256 ((const __m256i *) pk[g * PKK_KC + b].sc[k]);

              UNROLL
              for (j = 0; j < nt; j++)
                sum[g][j] = _mm256_add_epi32 (sum[g][j], _mm256_mullo_epi32 (isum[g][j], sc));
            }
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
                                           _mm256_set1_ps (load_f32 (bx[j] + offsetof (rk_block_q8_K, d))),
                                           acc[g][j]);
            }
        }
    }
  UNROLL
  for (g = 0; g < ng; g++)
    UNROLL
    for (j = 0; j < nt; j++)
      _mm256_mask_storeu_ps (y + j * ys + 8 * g, g == ng - 1 ? last : 0xff, acc[g][j]);
}

static ALWAYS_INLINE void
pk6_tile_nt (int              ng,
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
#define PK6_CASE(G, T)                                                             \
  if (ng == (G) && nt == (T))                                                      \
    {                                                                              \
      pk6_tile ((G), (T), nr_last, pk, nbc, x, xr, b0, first, y, ys);              \
      return;                                                                      \
    }
  PK6_CASE (2, 3) PK6_CASE (2, 2) PK6_CASE (2, 1)
  PK6_CASE (1, 3) PK6_CASE (1, 2) PK6_CASE (1, 1)
#undef PK6_CASE
}

void
rk_gemm_q6_K_q8_K_avx512 (int n, const void *w, size_t row_stride, int n_rows, const void *x,
                          size_t x_row, int n_toks, float *y, int64_t y_stride)
{
  const uint8_t *w8 = w;
  const uint8_t *x8 = x;
  const int nb = n / RK_QK_K;
  pk6_block pk[PKK_G * PKK_KC] __attribute__ ((aligned (32)));
  int b0, r0, g, j;

  if (nb == 0)
    pk_zero (n_rows, n_toks, y, y_stride);
  /* No per-token preparation here, so the whole call is one run of tokens. */
  for (b0 = 0; b0 < nb; b0 += PKK_KC)
    {
      const int nbc = nb - b0 < PKK_KC ? nb - b0 : PKK_KC;

      for (r0 = 0; r0 < n_rows; r0 += 8 * PKK_G)
        {
          const int nr = n_rows - r0 < 8 * PKK_G ? n_rows - r0 : 8 * PKK_G;
          const int ng = (nr + 7) / 8;

          for (g = 0; g < ng; g++)
            pk6_pack (w8 + (size_t) (r0 + 8 * g) * row_stride, row_stride,
                      nr - 8 * g < 8 ? nr - 8 * g : 8, b0, nbc, pk + g * PKK_KC);
          for (j = 0; j < n_toks; j += PKK_NT)
            pk6_tile_nt (ng, n_toks - j < PKK_NT ? n_toks - j : PKK_NT, nr - 8 * (ng - 1), pk, nbc,
                         x8 + (size_t) j * x_row, x_row, b0, b0 == 0,
                         y + (int64_t) j * y_stride + r0, y_stride);
        }
    }
}
