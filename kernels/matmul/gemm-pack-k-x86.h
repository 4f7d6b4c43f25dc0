/* gemm-pack-k-x86.h — Q4_K/Q5_K weight panels for the packed block products (private).
 * SPDX-License-Identifier: MIT
 *
 * Included by gemm-avx2.c and gemm-k-avx512.c, each of which defines its
 * own k5_fifth_bits (prototype below) after the include; both tiers
 * pack the same way (gemm-packed-avx512.h says why). Per 256-value block:
 * each sub-block's codes as 8 steps of 4 codes of each of 8 rows (row r in
 * lane r), the rows' scales, mins and d, dmin beside them. The scales are
 * stored times sc_mul: 1 for a vpmulld of int32 sums (VNNI), 0x10001 (the
 * scale in both 16-bit halves of a lane) for a madd of int16 pair sums
 * (AVX2).
 */
#ifndef RK_GEMM_PACK_K_X86_H
#define RK_GEMM_PACK_K_X86_H

#include <assert.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "gemm-pack-x86.h"
#include "../quant/k-quants.h"
#include "../quant/quant-legacy-avx2.h"

/* Bytes of a Q8_K activation block. */
#define QK_BYTES sizeof (rk_block_q8_K)

/* The including tier's step: adds 16 to the codes of ql (qhi) whose bit 2s
 * (2s + 1) of qh is set (Q5_K's fifth bits). */
static ALWAYS_INLINE void k5_fifth_bits (__m256i qh, int s, __m256i *ql, __m256i *qhi);

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


typedef struct
{
  uint8_t u[8][8][32];   /* sub-block s, step k: codes 4k..4k+3 of rows 0..7 */
  int32_t sc[8][8];      /* sub-block s: the rows' scales, times sc_mul */
  int16_t mn[4][8][2];   /* pair p: the rows' mins of sub-blocks 2p, 2p + 1 */
  float   d[8];
  float   dmin[8];
} pk45_block;

static_assert (sizeof (pk45_block) % 32 == 0, "pk45_block keeps 32-byte alignment");

/* Packs rows [0, nr) (nr <= 8; the others get codes, scales and mins 0) of
 * blocks [b0, b0 + nbc) of the Q4_K (q5 = 0) or Q5_K weights w. */
static ALWAYS_INLINE void
pk45_pack (int            q5,
           int32_t        sc_mul,
           const uint8_t *w,
           size_t         rs,
           int            nr,
           int            b0,
           int            nbc,
           pk45_block    *out)
{
  const size_t wbs = q5 ? sizeof (rk_block_q5_K) : sizeof (rk_block_q4_K);
  const size_t off_qs = q5 ? offsetof (rk_block_q5_K, qs) : offsetof (rk_block_q4_K, qs);
  const __m256i m4 = _mm256_set1_epi8 (0xF);
  int b, r, i;

  for (b = 0; b < nbc; b++)
    {
      pk45_block *o = out + b;
      const uint8_t *bw[8];

      for (r = 0; r < 8; r++)
        {
          int16_t sm[16] = { 0 };

          bw[r] = r < nr ? w + (size_t) r * rs + (size_t) (b0 + b) * wbs : NULL;
          if (bw[r] != NULL)
            _mm256_storeu_si256 ((__m256i *) sm,
                                 k4_scales_mins (bw[r] + offsetof (rk_block_q4_K, scales)));
          for (i = 0; i < 8; i++)
            o->sc[i][r] = sm[i] * sc_mul;
          for (i = 0; i < 4; i++)
            {
              o->mn[i][r][0] = sm[8 + 2 * i];
              o->mn[i][r][1] = sm[8 + 2 * i + 1];
            }
          o->d[r] = bw[r] != NULL ? rk_load_fp16_avx2 (bw[r] + offsetof (rk_block_q4_K, d)) : 0.0f;
          o->dmin[r] = bw[r] != NULL ? rk_load_fp16_avx2 (bw[r] + offsetof (rk_block_q4_K, dmin))
                                     : 0.0f;
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

#endif /* RK_GEMM_PACK_K_X86_H */
