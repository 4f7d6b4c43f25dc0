/* gemm-avx512.c — prefill block products of the Q8_0 family with AVX-512 VNNI.
 * SPDX-License-Identifier: MIT
 *
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni (plus AVX2, FMA,
 * F16C) and used only where rk_cpu_use_avx512_vnni (). The vectors stay
 * 256 bits wide (one block of 32 values each; Zen 4 splits 512-bit ops in
 * two anyway): what AVX-512 adds is vpdpbusd, which multiplies unsigned by
 * signed bytes and adds groups of 4 into int32 lanes in one instruction,
 * and 32 vector registers. The weights are packed 8 rows at a time first
 * (gemm-packed-avx512.h says why and how); the K formats are in
 * gemm-k-avx512.c. On Zen 4, 4864x1024 by 128 tokens, one thread: Q8_0
 * 107 -> 266 GFLOP/s against the unpacked tiles this replaced.
 *
 * Bias trick: every weight format is turned into unsigned codes u = q + B
 * (Q8_0: q ^ 0x80 = q + 128; Q4_0: the nibble = q + 8; Q5_0: the 5-bit code
 * = q + 16), the activations stay signed, and
 *
 *   sum q * x = dpbusd (-B * sum x, u, x)
 *
 * where -B * sum (x) of each token's block is computed once per call
 * (pk_prepare) and starts the integer sums. All integer sums are exact
 * (|sum| <= 32 * 255 * 128 plus 32 * 128 * 128), so results differ from
 * _ref only by float rounding.
 */
#include <immintrin.h>
#include <stddef.h>

#include "rk-gemm.h"
#include "gemm-packed-avx512.h"
#include "../quant/quant-legacy-avx2.h"

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

/* Blocks per chunk of the row: the panels and the per-token sums of one
 * chunk stay in L1/L2 (2 panels of 64 blocks: 36 KiB). */
#define PK_KC 64
/* Tokens per register tile. */
#define PK_NT 4

typedef struct
{
  uint8_t u[8][32];  /* step k: bytes 4k..4k+3 of rows 0..7 */
  float   d[8];      /* the rows' block scales */
} pk_block;

/* Arrays of packed blocks are 32-byte aligned: each block must stay so for
 * the aligned loads and stores of its fields. */
static_assert (sizeof (pk_block) % 32 == 0, "pk_block keeps 32-byte alignment");

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
  __m256 acc[PK_G][PK_TILE_MAX_NT];
  int g, j, b, k;

  PK_ACC_LOAD (acc, ng, nt, nr_last, first, y, ys);
  for (b = 0; b < nbc; b++)
    {
      __m256i isum[PK_G][PK_TILE_MAX_NT];

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
  PK_ACC_STORE (acc, ng, nt, nr_last, y, ys);
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
                PK_TILE_NT (pk_tile, ng, nt - j < PK_NT ? nt - j : PK_NT, nr - 8 * (ng - 1),
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

