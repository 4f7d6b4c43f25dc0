/* q6_K-avx2.c — Q6_K with AVX2: dequantize and the dot with Q8_K (output and ffn_down of Q4_K_M).
 * SPDX-License-Identifier: MIT
 */
#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "k-quants.h"

/* Weights are quantized offline: the reference search is the quantizer. */
void
rk_quantize_row_q6_K_avx2 (const float *x,
                           void        *vy,
                           int64_t      k)
{
  rk_quantize_row_q6_K_ref (x, vy, k);
}

static inline float
hsum_ps (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_extractf128_ps (v, 1), _mm256_castps256_ps128 (v));

  s = _mm_add_ps (s, _mm_movehl_ps (s, s));
  s = _mm_add_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

/* The 4 x 32 unsigned values (0..63) of half h: quarter t in q[t]. The two
 * high bits of quarter t are bits 2t, 2t + 1 of qh, moved to bits 4, 5 by
 * one shift (none for t = 2) and a mask; a 16-bit shift only carries bits
 * between the bytes of a lane into positions the mask clears. */
static inline void
q6_K_half (const uint8_t *ql,
           const uint8_t *qh,
           __m256i        q[4])
{
  const __m256i m4 = _mm256_set1_epi8 (0xF);
  const __m256i m30 = _mm256_set1_epi8 (0x30);
  const __m256i l0 = _mm256_loadu_si256 ((const __m256i *) ql);
  const __m256i l1 = _mm256_loadu_si256 ((const __m256i *) (ql + 32));
  const __m256i h = _mm256_loadu_si256 ((const __m256i *) qh);

  q[0] = _mm256_or_si256 (_mm256_and_si256 (l0, m4),
                          _mm256_and_si256 (_mm256_slli_epi16 (h, 4), m30));
  q[1] = _mm256_or_si256 (_mm256_and_si256 (l1, m4),
                          _mm256_and_si256 (_mm256_slli_epi16 (h, 2), m30));
  q[2] = _mm256_or_si256 (_mm256_and_si256 (_mm256_srli_epi16 (l0, 4), m4),
                          _mm256_and_si256 (h, m30));
  q[3] = _mm256_or_si256 (_mm256_and_si256 (_mm256_srli_epi16 (l1, 4), m4),
                          _mm256_and_si256 (_mm256_srli_epi16 (h, 2), m30));
}

void
rk_dequantize_row_q6_K_avx2 (const void *vx,
                             float      *y,
                             int64_t     k)
{
  const __m256i m32 = _mm256_set1_epi8 (32);
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q6_K);
      const int8_t *sc = (const int8_t *) (b + offsetof (rk_block_q6_K, scales));
      const float d = rk_k_load_fp16 (b + offsetof (rk_block_q6_K, d));
      int h, t, s;

      for (h = 0; h < 2; h++)
        {
          __m256i q[4];

          q6_K_half (b + offsetof (rk_block_q6_K, ql) + 64 * h,
                     b + offsetof (rk_block_q6_K, qh) + 32 * h, q);
          for (t = 0; t < 4; t++, y += 32)
            {
              __m256i v = _mm256_sub_epi8 (q[t], m32);

              for (s = 0; s < 2; s++)
                {
                  /* Same roundings as _ref: (d * scale) * q. */
                  const __m256 vd = _mm256_set1_ps (d * sc[8 * h + 2 * t + s]);
                  __m128i v16 = s ? _mm256_extracti128_si256 (v, 1) : _mm256_castsi256_si128 (v);
                  __m256 f0 = _mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (v16));
                  __m256 f1 = _mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (_mm_srli_si128 (v16, 8)));

                  _mm256_storeu_ps (y + 16 * s, _mm256_mul_ps (vd, f0));
                  _mm256_storeu_ps (y + 16 * s + 8, _mm256_mul_ps (vd, f1));
                }
            }
        }
    }
}

/* maddubs needs an unsigned operand, so the values stay 0..63; the -32
 * offset comes off once per block as 32 * sum_k scale_k * bsum_k (madd of
 * the 16 scales with the 16 bsums). Each 32-value quarter spans two 16-value
 * sub-blocks: the block's 16 scales are widened to s16 once, each half's 8
 * copied to both 128-bit lanes, and one shuffle per quarter spreads scale k
 * over the low lane and k + 1 over the high one for madd. The loops
 * unroll, so every shuffle mask is a constant. */
float
rk_vec_dot_q6_K_q8_K_avx2 (int         n,
                           const void *vx,
                           const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  __m256 acc = _mm256_setzero_ps ();
  int nb = n / RK_QK_K, i, h, t;

  assert (n % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + (size_t) i * sizeof (rk_block_q6_K);
      const uint8_t *by = y + (size_t) i * sizeof (rk_block_q8_K);
      const uint8_t *q8 = by + offsetof (rk_block_q8_K, qs);
      uint16_t dh;
      float d;
      const __m256i sc16 = _mm256_cvtepi8_epi16 (
        _mm_loadu_si128 ((const __m128i *) (bx + offsetof (rk_block_q6_K, scales))));
      const __m256i bsums =
        _mm256_loadu_si256 ((const __m256i *) (by + offsetof (rk_block_q8_K, bsums)));
      __m256i sum0 = _mm256_setzero_si256 (), sum1 = _mm256_setzero_si256 ();
      __m256i off;

      memcpy (&dh, bx + offsetof (rk_block_q6_K, d), sizeof dh);
      d = rk_k_load_f32 (by + offsetof (rk_block_q8_K, d)) * _cvtsh_ss (dh);
      off = _mm256_slli_epi32 (_mm256_madd_epi16 (sc16, bsums), 5);
#pragma GCC unroll 2
      for (h = 0; h < 2; h++)
        {
          /* scales 8h .. 8h + 7 (s16) in both lanes */
          const __m256i sch = h ? _mm256_permute2x128_si256 (sc16, sc16, 0x11)
                                : _mm256_permute2x128_si256 (sc16, sc16, 0x00);
          __m256i q[4];

          q6_K_half (bx + offsetof (rk_block_q6_K, ql) + 64 * h,
                     bx + offsetof (rk_block_q6_K, qh) + 32 * h, q);
#pragma GCC unroll 4
          for (t = 0; t < 4; t++, q8 += 32)
            {
              /* s16 2t of the lane in the low lane, 2t + 1 in the high one */
              const char lo = (char) (4 * t), hi = (char) (4 * t + 2);
              const __m256i shuf = _mm256_setr_epi8 (lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1,
                                                     lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1,
                                                     hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1,
                                                     hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1);
              const __m256i scale = _mm256_shuffle_epi8 (sch, shuf);
              const __m256i q8v = _mm256_loadu_si256 ((const __m256i *) q8);
              const __m256i p = _mm256_madd_epi16 (scale, _mm256_maddubs_epi16 (q[t], q8v));

              if (t % 2)
                sum1 = _mm256_add_epi32 (sum1, p);
              else
                sum0 = _mm256_add_epi32 (sum0, p);
            }
        }
      acc = _mm256_fmadd_ps (_mm256_set1_ps (d),
                             _mm256_cvtepi32_ps (_mm256_sub_epi32 (_mm256_add_epi32 (sum0, sum1),
                                                                   off)),
                             acc);
    }
  return hsum_ps (acc);
}
