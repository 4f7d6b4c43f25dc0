/* f16-avx2.c — IEEE half rows with F16C: conversion both ways and the dot.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy-avx2.h"

static inline __m256
load8_f16 (const rk_fp16 *p)
{
  return _mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (const void *) p));
}

/* vcvtps2ph with round-to-nearest-even: equal to rk_fp32_to_fp16 for every
 * non-NaN input (a NaN stays a NaN, payload aside). */
void
rk_quantize_row_f16_avx2 (const float *x, void *vy, int64_t k)
{
  rk_fp16 *y = vy;
  int64_t i = 0;

  for (; i + 8 <= k; i += 8)
    _mm_storeu_si128 ((__m128i *) (void *) (y + i),
                      _mm256_cvtps_ph (_mm256_loadu_ps (x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < k; i++)
    y[i] = rk_fp32_to_fp16 (x[i]);
}

void
rk_dequantize_row_f16_avx2 (const void *vx, float *y, int64_t k)
{
  const rk_fp16 *x = vx;
  int64_t i = 0;

  for (; i + 8 <= k; i += 8)
    _mm256_storeu_ps (y + i, load8_f16 (x + i));
  for (; i < k; i++)
    y[i] = rk_fp16_to_fp32 (x[i]);
}

float
rk_vec_dot_f16_f16_avx2 (int n, const void *vx, const void *vy)
{
  const rk_fp16 *x = vx;
  const rk_fp16 *y = vy;
  __m256 acc[4] = { _mm256_setzero_ps (), _mm256_setzero_ps (),
                    _mm256_setzero_ps (), _mm256_setzero_ps () };
  float sum;
  int i = 0;

  for (; i + 32 <= n; i += 32)
    for (int a = 0; a < 4; a++)
      acc[a] = _mm256_fmadd_ps (load8_f16 (x + i + 8 * a), load8_f16 (y + i + 8 * a), acc[a]);
  for (; i + 8 <= n; i += 8)
    acc[0] = _mm256_fmadd_ps (load8_f16 (x + i), load8_f16 (y + i), acc[0]);
  sum = rk_hsum_ps_avx2 (_mm256_add_ps (_mm256_add_ps (acc[0], acc[1]),
                                        _mm256_add_ps (acc[2], acc[3])));
  for (; i < n; i++)
    sum += rk_fp16_to_fp32 (x[i]) * rk_fp16_to_fp32 (y[i]);
  return sum;
}
