/* q8_K-avx2.c — Q8_K with AVX2: the activation quantizer run before every K-quant matmul.
 * SPDX-License-Identifier: MIT
 *
 * Byte-identical to rk_quantize_row_q8_K_ref: x * iscale is one rounding in
 * both, and _mm256_cvtps_epi32 rounds to nearest even (default MXCSR) as
 * rk_nearest_int does; saturating packs equal the reference's MIN(127).
 */
#include <assert.h>
#include <immintrin.h>

#include "k-quants.h"

static inline float
hmax_ps (__m256 v)
{
  __m128 m = _mm_max_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));

  m = _mm_max_ps (m, _mm_movehl_ps (m, m));
  m = _mm_max_ss (m, _mm_movehdup_ps (m));
  return _mm_cvtss_f32 (m);
}

void
rk_quantize_row_q8_K_avx2 (const float *x,
                           void        *vy,
                           int64_t      k)
{
  const __m256 abs_mask = _mm256_castsi256_ps (_mm256_set1_epi32 (0x7fffffff));
  const __m256i order = _mm256_setr_epi32 (0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i ones8 = _mm256_set1_epi8 (1);
  const __m256i ones16 = _mm256_set1_epi16 (1);
  uint8_t *y = vy;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++, x += RK_QK_K)
    {
      uint8_t *b = y + i * sizeof (rk_block_q8_K);
      int8_t *qs = (int8_t *) (b + offsetof (rk_block_q8_K, qs));
      int16_t bsums[RK_QK_K / 16];
      __m256 vmax = _mm256_setzero_ps (), vamax, vis;
      float amax, max = 0, iscale, d;
      int j;

      for (j = 0; j < RK_QK_K; j += 8)
        vmax = _mm256_max_ps (vmax, _mm256_and_ps (_mm256_loadu_ps (x + j), abs_mask));
      amax = hmax_ps (vmax);
      if (!amax)
        {
          memset (b, 0, sizeof (rk_block_q8_K));
          continue;
        }

      /* The reference keeps the first value of largest magnitude: its sign
       * decides the sign of d. */
      vamax = _mm256_set1_ps (amax);
      for (j = 0; j < RK_QK_K; j += 8)
        {
          __m256 ax = _mm256_and_ps (_mm256_loadu_ps (x + j), abs_mask);
          int hit = _mm256_movemask_ps (_mm256_cmp_ps (ax, vamax, _CMP_EQ_OQ));
          if (hit)
            {
              max = x[j + __builtin_ctz ((unsigned) hit)];
              break;
            }
        }
      iscale = -127.f / max;
      vis = _mm256_set1_ps (iscale);

      for (j = 0; j < RK_QK_K; j += 32)
        {
          __m256i i0 = _mm256_cvtps_epi32 (_mm256_mul_ps (_mm256_loadu_ps (x + j), vis));
          __m256i i1 = _mm256_cvtps_epi32 (_mm256_mul_ps (_mm256_loadu_ps (x + j + 8), vis));
          __m256i i2 = _mm256_cvtps_epi32 (_mm256_mul_ps (_mm256_loadu_ps (x + j + 16), vis));
          __m256i i3 = _mm256_cvtps_epi32 (_mm256_mul_ps (_mm256_loadu_ps (x + j + 24), vis));
          /* packs work per 128-bit lane; the permute restores element order. */
          __m256i q = _mm256_packs_epi16 (_mm256_packs_epi32 (i0, i1), _mm256_packs_epi32 (i2, i3));
          __m256i s;

          q = _mm256_permutevar8x32_epi32 (q, order);
          _mm256_storeu_si256 ((__m256i *) (qs + j), q);
          /* Sums of 4 bytes in 8 int32 lanes, then of 16: lanes 0 and 4. */
          s = _mm256_madd_epi16 (_mm256_maddubs_epi16 (ones8, q), ones16);
          s = _mm256_hadd_epi32 (s, s);
          s = _mm256_hadd_epi32 (s, s);
          bsums[j / 16] = (int16_t) _mm256_cvtsi256_si32 (s);
          bsums[j / 16 + 1] = (int16_t) _mm256_extract_epi32 (s, 4);
        }
      d = 1 / iscale;
      memcpy (b + offsetof (rk_block_q8_K, d), &d, sizeof d);
      memcpy (b + offsetof (rk_block_q8_K, bsums), bsums, sizeof bsums);
    }
}

void
rk_dequantize_row_q8_K_avx2 (const void *vx,
                             float      *y,
                             int64_t     k)
{
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++, y += RK_QK_K)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q8_K);
      const uint8_t *qs = b + offsetof (rk_block_q8_K, qs);
      const __m256 vd = _mm256_set1_ps (rk_k_load_f32 (b + offsetof (rk_block_q8_K, d)));
      int j;

      for (j = 0; j < RK_QK_K; j += 8)
        {
          __m256i q = _mm256_cvtepi8_epi32 (_mm_loadl_epi64 ((const __m128i *) (qs + j)));
          _mm256_storeu_ps (y + j, _mm256_mul_ps (vd, _mm256_cvtepi32_ps (q)));
        }
    }
}
