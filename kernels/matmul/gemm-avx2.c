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
/* Tile shapes (rows x tokens), the fastest of those measured on Zen 4 with
 * kernels-bench-like shapes (16 ymm registers; wide in tokens because the
 * weight decode costs more than an activation load). */
#define Q0_MR 2
#define Q0_NR 8
#define K_MR 2
#define K_NR 6
#define F_MR 4
#define F_NR 3

#include "gemm-tiles-x86.h"
#include "gemm-pack-k-x86.h"

#define QX_BYTES sizeof (rk_block_q8_0)

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

/* --- K formats with Q8_K activations: the Q6_K tile is in gemm-tiles-x86.h */

/* maddubs to 16 bits, madd by the scales to int32, add. */
static ALWAYS_INLINE __m256i
k_dot_acc (__m256i acc,
           __m256i q,
           __m256i q8,
           __m256i sc)
{
  return _mm256_add_epi32 (acc, _mm256_madd_epi16 (sc, _mm256_maddubs_epi16 (q, q8)));
}

/* Bits 2s and 2s+1 of qh[l] are the fifth bits (16): bit 4 of the nibble
 * codes is clear, so or-ing 16 adds it. */
static ALWAYS_INLINE void
k5_fifth_bits (__m256i  qh,
               int      s,
               __m256i *ql,
               __m256i *qhi)
{
  const __m256i bl = _mm256_set1_epi8 ((char) (1 << (2 * s)));
  const __m256i bh = _mm256_set1_epi8 ((char) (1 << (2 * s + 1)));
  const __m256i v16 = _mm256_set1_epi8 (16);
  const __m256i hl = _mm256_cmpeq_epi8 (_mm256_and_si256 (qh, bl), bl);
  const __m256i hh = _mm256_cmpeq_epi8 (_mm256_and_si256 (qh, bh), bh);

  *ql = _mm256_or_si256 (*ql, _mm256_and_si256 (hl, v16));
  *qhi = _mm256_or_si256 (*qhi, _mm256_and_si256 (hh, v16));
}

/* --- Packed panels of Q4_K / Q5_K (AVX2) ----------------------------------
 *
 * The packing of gemm-k-avx512.c (gemm-packed-avx512.h says why) without
 * VNNI: a step is maddubs of the 8 rows' 4 codes with the token's 4
 * broadcast activations (two int16 pair sums per row), added up in int16
 * over the sub-block's steps, then one madd with the rows' scale, copied
 * into both halves of each lane, gives the scaled int32 sums. The int16
 * sums stay exact: a step adds at most 2 * 15 * 128 = 3,840 in magnitude
 * for Q4_K, so all 8 steps fit (30,720); Q5_K codes reach 31 (7,936), so
 * its sub-blocks are summed in two halves of 4 steps. Per 8 rows, token and
 * 32 values: 8 maddubs, 7 adds, 1 madd, 1 add (the unpacked tiles: 8 rows'
 * maddubs, madd and add, plus decoding). 16 registers: 1 panel by 4 tokens. */

#define PKA_KC 8
#define PKA_NT 4

/* One panel by nt tokens over one chunk; rows past nr are not stored. */
static ALWAYS_INLINE void
pka_tile (int              nt,
          int              q5,
          int              nr,
          const pk45_block *pk,
          int              nbc,
          const uint8_t   *x,
          size_t           xr,
          int              b0,
          int              first,
          float           *y,
          int64_t          ys)
{
  const __m256i rows = _mm256_cmpgt_epi32 (_mm256_set1_epi32 (nr),
                                           _mm256_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7));
  const int half = q5 ? 4 : 8;
  __m256 acc[PKA_NT];
  int j, b, s, k, p;

  UNROLL
  for (j = 0; j < nt; j++)
    acc[j] = first ? _mm256_setzero_ps () : _mm256_maskload_ps (y + j * ys, rows);
  for (b = 0; b < nbc; b++)
    {
      const pk45_block *o = pk + b;
      const uint8_t *q8[PKA_NT];
      __m256i sum[PKA_NT];

      UNROLL
      for (j = 0; j < nt; j++)
        {
          q8[j] = x + (size_t) j * xr + (size_t) (b0 + b) * QK_BYTES;
          sum[j] = _mm256_setzero_si256 ();
        }
      for (s = 0; s < 8; s++)
        {
          const __m256i sc = _mm256_load_si256 ((const __m256i *) o->sc[s]);
          int h;

          for (h = 0; h < 8; h += half)
            {
              __m256i p16[PKA_NT];

              UNROLL
              for (j = 0; j < nt; j++)
                p16[j] = _mm256_setzero_si256 ();
              UNROLL
              for (k = h; k < h + half; k++)
                {
                  const __m256i wu = _mm256_load_si256 ((const __m256i *) o->u[s][k]);

                  UNROLL
                  for (j = 0; j < nt; j++)
                    p16[j] = _mm256_add_epi16 (p16[j], _mm256_maddubs_epi16 (
                      wu, _mm256_set1_epi32 ((int) rk_load_u32 (q8[j] + offsetof (rk_block_q8_K, qs)
                                                                + 32 * s + 4 * k))));
                }
              UNROLL
              for (j = 0; j < nt; j++)
                sum[j] = _mm256_add_epi32 (sum[j], _mm256_madd_epi16 (p16[j], sc));
            }
        }
      {
        const __m256 dw = _mm256_load_ps (o->d);
        const __m256 dm = _mm256_load_ps (o->dmin);

        UNROLL
        for (j = 0; j < nt; j++)
          {
            /* The token's 8 sub-block sums (pairs of bsums), met with the
             * rows' (min 2p, min 2p + 1) pairs. */
            const __m256i bs = _mm256_loadu_si256 ((const __m256i *) (q8[j] + offsetof (rk_block_q8_K,
                                                                                     bsums)));
            const __m128i s8 = _mm_hadd_epi16 (_mm256_castsi256_si128 (bs),
                                               _mm256_extracti128_si256 (bs, 1));
            __m256i mins = _mm256_madd_epi16 (_mm256_load_si256 ((const __m256i *) o->mn[0]),
                                              _mm256_broadcastd_epi32 (s8));

            UNROLL
            for (p = 1; p < 4; p++)
              mins = _mm256_add_epi32 (mins, _mm256_madd_epi16 (
                _mm256_load_si256 ((const __m256i *) o->mn[p]),
                _mm256_set1_epi32 (p == 1 ? _mm_extract_epi32 (s8, 1)
                                   : p == 2 ? _mm_extract_epi32 (s8, 2) : _mm_extract_epi32 (s8, 3))));
            acc[j] = _mm256_fmadd_ps (_mm256_fnmadd_ps (_mm256_cvtepi32_ps (mins), dm,
                                                        _mm256_mul_ps (_mm256_cvtepi32_ps (sum[j]), dw)),
                                      _mm256_set1_ps (rk_k_load_f32 (q8[j] + offsetof (rk_block_q8_K, d))),
                                      acc[j]);
          }
      }
    }
  UNROLL
  for (j = 0; j < nt; j++)
    _mm256_maskstore_ps (y + j * ys, rows, acc[j]);
}

/* PK_TILE_NT's tile: one panel, so the panel count is not needed. */
#define PKA_TILE(G, T, ...) pka_tile ((T), __VA_ARGS__)

/* Chunks of PKA_KC blocks, panels of 8 rows, tiles of PKA_NT tokens. */
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
  pk45_block pk[PKA_KC] __attribute__ ((aligned (32)));
  int b0, r0, j;

  if (nb == 0)
    pk_zero (n_rows, n_toks, y, ys);
  for (b0 = 0; b0 < nb; b0 += PKA_KC)
    {
      const int nbc = nb - b0 < PKA_KC ? nb - b0 : PKA_KC;

      for (r0 = 0; r0 < n_rows; r0 += 8)
        {
          const int nr = n_rows - r0 < 8 ? n_rows - r0 : 8;

          pk45_pack (q5, 0x10001, w + (size_t) r0 * rs, rs, nr, b0, nbc, pk);
          for (j = 0; j < n_toks; j += PKA_NT)
            PK_TILE_NT (PKA_TILE, 1, n_toks - j < PKA_NT ? n_toks - j : PKA_NT, q5, nr, pk, nbc,
                         x + (size_t) j * xr, xr, b0, b0 == 0, y + (int64_t) j * ys + r0, ys);
        }
    }
}

void
rk_gemm_q4_K_q8_K_avx2 (int n, const void *w, size_t row_stride, int n_rows, const void *x,
                        size_t x_row, int n_toks, float *y, int64_t y_stride)
{
  k45_gemm_packed (0, n, w, row_stride, n_rows, x, x_row, n_toks, y, y_stride);
}

void
rk_gemm_q5_K_q8_K_avx2 (int n, const void *w, size_t row_stride, int n_rows, const void *x,
                        size_t x_row, int n_toks, float *y, int64_t y_stride)
{
  k45_gemm_packed (1, n, w, row_stride, n_rows, x, x_row, n_toks, y, y_stride);
}

DEFINE_GEMM_K (rk_gemm_q6_K_q8_K_avx2, K_TILE_Q6_K)

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
