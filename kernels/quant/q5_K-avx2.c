/* q5_K-avx2.c — Q5_K with AVX2: dequantize and the dot with Q8_K.
 * SPDX-License-Identifier: MIT
 */
#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "k-quants.h"
#include "rk-avx2.h"

/* Weights are quantized offline: the reference search is the quantizer. */
void
rk_quantize_row_q5_K_avx2 (const float *x,
                           void        *vy,
                           int64_t      k)
{
  rk_quantize_row_q5_K_ref (x, vy, k);
}

/* pshufb mask that broadcasts 16-bit lane s (0..7) of each 128-bit half. */
static inline __m256i
scale_shuffle (int s)
{
  return _mm256_set1_epi16 ((short) (((2 * s + 1) << 8) | (2 * s)));
}

/* The 32 values (0..31) of sub-block j: nibbles plus bit j of qh[0..31] as 16. */
static inline __m256i
q5_K_sub_block (const uint8_t *qs,
                __m256i        qh,
                int            j)
{
  const __m256i m4 = _mm256_set1_epi8 (0xF);
  const __m256i bit = _mm256_set1_epi8 ((char) (1 << j));
  __m256i raw = _mm256_loadu_si256 ((const __m256i *) (qs + 32 * (j / 2)));
  __m256i lo = j % 2 ? _mm256_and_si256 (_mm256_srli_epi16 (raw, 4), m4)
                     : _mm256_and_si256 (raw, m4);
  __m256i hi = _mm256_and_si256 (_mm256_cmpeq_epi8 (_mm256_and_si256 (qh, bit), bit),
                                 _mm256_set1_epi8 (16));

  return _mm256_or_si256 (lo, hi);
}

void
rk_dequantize_row_q5_K_avx2 (const void *vx,
                             float      *y,
                             int64_t     k)
{
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q5_K);
      const uint8_t *qs = b + offsetof (rk_block_q5_K, qs);
      const __m256i qh = _mm256_loadu_si256 ((const __m256i *) (b + offsetof (rk_block_q5_K, qh)));
      const float d = rk_k_load_fp16 (b + offsetof (rk_block_q5_K, d));
      const float dmin = rk_k_load_fp16 (b + offsetof (rk_block_q5_K, dmin));
      uint8_t sm[16];
      int j, h;

      rk_k4_unpack_scales (b + offsetof (rk_block_q5_K, scales), sm);
      for (j = 0; j < RK_QK_K / 32; j++, y += 32)
        {
          /* Same two roundings as _ref: (d * sc) * q - dmin * m. */
          const __m256 vd = _mm256_set1_ps (d * sm[j]);
          const __m256 vm = _mm256_set1_ps (dmin * sm[8 + j]);
          __m256i q = q5_K_sub_block (qs, qh, j);

          for (h = 0; h < 4; h++)
            {
              __m128i q16 = h < 2 ? _mm256_castsi256_si128 (q) : _mm256_extracti128_si256 (q, 1);
              __m128i half = h % 2 ? _mm_srli_si128 (q16, 8) : q16;
              __m256 f = _mm256_cvtepi32_ps (_mm256_cvtepu8_epi32 (half));

              _mm256_storeu_ps (y + 8 * h, _mm256_sub_ps (_mm256_mul_ps (vd, f), vm));
            }
        }
    }
}

/* Half at an arbitrary address, with the F16C instruction. */
static inline float
load_fp16_f16c (const uint8_t *p)
{
  uint16_t h;

  memcpy (&h, p, sizeof h);
  return _cvtsh_ss (h);
}

/* As Q4_K's dot with 5-bit values (maddubs pairs: 2 * 31 * 127 fits s16). */
float
rk_vec_dot_q5_K_q8_K_avx2 (int         n,
                           const void *vx,
                           const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  __m256 acc = _mm256_setzero_ps ();
  __m128 acc_m = _mm_setzero_ps ();
  int nb = n / RK_QK_K, i, j;

  assert (n % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + (size_t) i * sizeof (rk_block_q5_K);
      const uint8_t *by = y + (size_t) i * sizeof (rk_block_q8_K);
      const uint8_t *qs = bx + offsetof (rk_block_q5_K, qs);
      const uint8_t *q8 = by + offsetof (rk_block_q8_K, qs);
      const __m256i qh = _mm256_loadu_si256 ((const __m256i *) (bx + offsetof (rk_block_q5_K, qh)));
      const float dy = rk_k_load_f32 (by + offsetof (rk_block_q8_K, d));
      const float d = dy * load_fp16_f16c (bx + offsetof (rk_block_q5_K, d));
      const float dmin = -dy * load_fp16_f16c (bx + offsetof (rk_block_q5_K, dmin));
      uint8_t sm[16];
      __m256i mins_and_scales, q8sums, scales, sumi = _mm256_setzero_si256 ();
      __m128i q8s, prod, sc128;

      rk_k4_unpack_scales (bx + offsetof (rk_block_q5_K, scales), sm);
      mins_and_scales = _mm256_cvtepu8_epi16 (_mm_loadu_si128 ((const __m128i *) sm));

      q8sums = _mm256_loadu_si256 ((const __m256i *) (by + offsetof (rk_block_q8_K, bsums)));
      q8s = _mm_hadd_epi16 (_mm256_castsi256_si128 (q8sums), _mm256_extracti128_si256 (q8sums, 1));
      prod = _mm_madd_epi16 (_mm256_extracti128_si256 (mins_and_scales, 1), q8s);
      acc_m = _mm_fmadd_ps (_mm_set1_ps (dmin), _mm_cvtepi32_ps (prod), acc_m);

      sc128 = _mm256_castsi256_si128 (mins_and_scales);
      scales = _mm256_set_m128i (sc128, sc128);

#pragma GCC unroll 8
      for (j = 0; j < RK_QK_K / 32; j++)
        {
          const __m256i scale = _mm256_shuffle_epi8 (scales, scale_shuffle (j));
          const __m256i q5 = q5_K_sub_block (qs, qh, j);
          const __m256i q8v = _mm256_loadu_si256 ((const __m256i *) (q8 + 32 * j));

          sumi = _mm256_add_epi32 (sumi, _mm256_madd_epi16 (scale, _mm256_maddubs_epi16 (q5, q8v)));
        }
      acc = _mm256_fmadd_ps (_mm256_set1_ps (d), _mm256_cvtepi32_ps (sumi), acc);
    }
  acc_m = _mm_add_ps (acc_m, _mm_movehl_ps (acc_m, acc_m));
  acc_m = _mm_add_ss (acc_m, _mm_movehdup_ps (acc_m));
  return rk_hsum_ps_avx2 (acc) + _mm_cvtss_f32 (acc_m);
}
