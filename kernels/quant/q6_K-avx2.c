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

/* The 4 x 32 unsigned values (0..63) of half h: quarter t in q[t]. */
static inline void
q6_K_half (const uint8_t *ql,
           const uint8_t *qh,
           __m256i        q[4])
{
  const __m256i m4 = _mm256_set1_epi8 (0xF);
  const __m256i m2 = _mm256_set1_epi8 (3);
  const __m256i l0 = _mm256_loadu_si256 ((const __m256i *) ql);
  const __m256i l1 = _mm256_loadu_si256 ((const __m256i *) (ql + 32));
  const __m256i h = _mm256_loadu_si256 ((const __m256i *) qh);

  q[0] = _mm256_or_si256 (_mm256_and_si256 (l0, m4),
                          _mm256_slli_epi16 (_mm256_and_si256 (h, m2), 4));
  q[1] = _mm256_or_si256 (_mm256_and_si256 (l1, m4),
                          _mm256_slli_epi16 (_mm256_and_si256 (_mm256_srli_epi16 (h, 2), m2), 4));
  q[2] = _mm256_or_si256 (_mm256_and_si256 (_mm256_srli_epi16 (l0, 4), m4),
                          _mm256_slli_epi16 (_mm256_and_si256 (_mm256_srli_epi16 (h, 4), m2), 4));
  q[3] = _mm256_or_si256 (_mm256_and_si256 (_mm256_srli_epi16 (l1, 4), m4),
                          _mm256_slli_epi16 (_mm256_and_si256 (_mm256_srli_epi16 (h, 6), m2), 4));
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
 * sub-blocks: their int8 scales are widened to 8 + 8 lanes of s16 and
 * applied with madd. The loops unroll, so every shuffle mask is a constant. */
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
      const __m128i scales =
        _mm_loadu_si128 ((const __m128i *) (bx + offsetof (rk_block_q6_K, scales)));
      const __m256i bsums =
        _mm256_loadu_si256 ((const __m256i *) (by + offsetof (rk_block_q8_K, bsums)));
      __m256i sum0 = _mm256_setzero_si256 (), sum1 = _mm256_setzero_si256 ();
      __m256i off;

      memcpy (&dh, bx + offsetof (rk_block_q6_K, d), sizeof dh);
      d = rk_k_load_f32 (by + offsetof (rk_block_q8_K, d)) * _cvtsh_ss (dh);
      off = _mm256_slli_epi32 (_mm256_madd_epi16 (_mm256_cvtepi8_epi16 (scales), bsums), 5);
#pragma GCC unroll 2
      for (h = 0; h < 2; h++)
        {
          __m256i q[4];

          q6_K_half (bx + offsetof (rk_block_q6_K, ql) + 64 * h,
                     bx + offsetof (rk_block_q6_K, qh) + 32 * h, q);
#pragma GCC unroll 4
          for (t = 0; t < 4; t++, q8 += 32)
            {
              const int s = 8 * h + 2 * t;
              /* bytes s x 8 then s + 1 x 8 */
              const __m128i shuf = _mm_set_epi64x (0x0101010101010101LL * (s + 1),
                                                   0x0101010101010101LL * s);
              const __m256i scale = _mm256_cvtepi8_epi16 (_mm_shuffle_epi8 (scales, shuf));
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
