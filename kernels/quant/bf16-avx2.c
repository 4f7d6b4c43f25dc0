/* bf16-avx2.c — bfloat16 rows with AVX2: conversion both ways and the dot.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy-avx2.h"

static inline __m256
load8_bf16 (const rk_bf16 *p)
{
  const __m128i h = _mm_loadu_si128 ((const __m128i *) (const void *) p);

  return _mm256_castsi256_ps (_mm256_slli_epi32 (_mm256_cvtepu16_epi32 (h), 16));
}

/* rk_fp32_to_bf16 on 8 lanes, bit for bit (NaN included): the result is in the
 * low 16 bits of each 32-bit lane. */
static inline __m256i
round8_bf16 (__m256 v)
{
  const __m256i u = _mm256_castps_si256 (v);
  const __m256i lsb = _mm256_and_si256 (_mm256_srli_epi32 (u, 16), _mm256_set1_epi32 (1));
  const __m256i bias = _mm256_add_epi32 (lsb, _mm256_set1_epi32 (0x7fff));
  const __m256i rounded = _mm256_srli_epi32 (_mm256_add_epi32 (u, bias), 16);
  const __m256i quiet = _mm256_or_si256 (_mm256_srli_epi32 (u, 16), _mm256_set1_epi32 (64));
  const __m256i is_nan = _mm256_cmpgt_epi32 (_mm256_and_si256 (u, _mm256_set1_epi32 (0x7fffffff)),
                                             _mm256_set1_epi32 (0x7f800000));

  return _mm256_blendv_epi8 (rounded, quiet, is_nan);
}

void
rk_quantize_row_bf16_avx2 (const float *x, void *vy, int64_t k)
{
  rk_bf16 *y = vy;
  int64_t i = 0;

  for (; i + 16 <= k; i += 16)
    {
      const __m256i a = round8_bf16 (_mm256_loadu_ps (x + i));
      const __m256i b = round8_bf16 (_mm256_loadu_ps (x + i + 8));
      /* packus interleaves the 128-bit lanes of a and b; the permute undoes it. */
      const __m256i p = _mm256_permute4x64_epi64 (_mm256_packus_epi32 (a, b),
                                                  _MM_SHUFFLE (3, 1, 2, 0));

      _mm256_storeu_si256 ((__m256i *) (void *) (y + i), p);
    }
  for (; i < k; i++)
    y[i] = rk_fp32_to_bf16 (x[i]);
}

void
rk_dequantize_row_bf16_avx2 (const void *vx, float *y, int64_t k)
{
  const rk_bf16 *x = vx;
  int64_t i = 0;

  for (; i + 8 <= k; i += 8)
    _mm256_storeu_ps (y + i, load8_bf16 (x + i));
  for (; i < k; i++)
    y[i] = rk_bf16_to_fp32 (x[i]);
}

float
rk_vec_dot_bf16_bf16_avx2 (int n, const void *vx, const void *vy)
{
  const rk_bf16 *x = vx;
  const rk_bf16 *y = vy;
  __m256 acc[4] = { _mm256_setzero_ps (), _mm256_setzero_ps (),
                    _mm256_setzero_ps (), _mm256_setzero_ps () };
  float sum;
  int i = 0;

  for (; i + 32 <= n; i += 32)
    for (int a = 0; a < 4; a++)
      acc[a] = _mm256_fmadd_ps (load8_bf16 (x + i + 8 * a), load8_bf16 (y + i + 8 * a), acc[a]);
  for (; i + 8 <= n; i += 8)
    acc[0] = _mm256_fmadd_ps (load8_bf16 (x + i), load8_bf16 (y + i), acc[0]);
  sum = rk_hsum_ps_avx2 (_mm256_add_ps (_mm256_add_ps (acc[0], acc[1]),
                                        _mm256_add_ps (acc[2], acc[3])));
  for (; i < n; i++)
    sum += rk_bf16_to_fp32 (x[i]) * rk_bf16_to_fp32 (y[i]);
  return sum;
}
