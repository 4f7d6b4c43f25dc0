/* kv-quant-avx2.c — quantized KV rows with AVX2 + FMA + F16C.
 * SPDX-License-Identifier: MIT
 *
 * Eight values at a time: codes widen to int32 and convert to float, then
 * one FMA with the query (dot) or into the accumulator (axpy). Groups that
 * are not a multiple of 8 (Q8) or 16 (Q4) take the reference path; the F16
 * loops end with the reference's scalar tail.
 */
#include <immintrin.h>

#include "rk-kvquant.h"

static inline float
hsum8 (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));

  s = _mm_add_ps (s, _mm_movehl_ps (s, s));
  s = _mm_add_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

static inline __m256
load_i8x8 (const int8_t *p)
{
  return _mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (_mm_loadl_epi64 ((const __m128i *) p)));
}

float
rk_kvq8_dot_avx2 (int            n,
                  int            group,
                  const int8_t  *codes,
                  const rk_fp16 *d,
                  const float   *q)
{
  __m256 tot = _mm256_setzero_ps ();
  int g, j;

  if (group % 8 != 0)
    return rk_kvq8_dot_ref (n, group, codes, d, q);
  for (g = 0; g < n / group; g++)
    {
      __m256 acc = _mm256_setzero_ps ();

      for (j = g * group; j < (g + 1) * group; j += 8)
        acc = _mm256_fmadd_ps (load_i8x8 (codes + j), _mm256_loadu_ps (q + j), acc);
      tot = _mm256_fmadd_ps (acc, _mm256_set1_ps (rk_fp16_to_fp32 (d[g])), tot);
    }
  return hsum8 (tot);
}

float
rk_kvq4_dot_avx2 (int            n,
                  int            group,
                  const uint8_t *codes,
                  const rk_fp16 *d,
                  const rk_fp16 *m,
                  const float   *q)
{
  const __m256i low = _mm256_set1_epi32 (0x0F);
  int half = group / 2;
  __m256 tot = _mm256_setzero_ps ();
  int g, j;

  if (group % 16 != 0)
    return rk_kvq4_dot_ref (n, group, codes, d, m, q);
  for (g = 0; g < n / group; g++)
    {
      const uint8_t *c = codes + g * half;
      const float *qg = q + g * group;
      __m256 acc = _mm256_setzero_ps (), sq = _mm256_setzero_ps ();

      for (j = 0; j < half; j += 8)
        {
          __m256i b = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) (c + j)));
          __m256 lo = _mm256_cvtepi32_ps (_mm256_and_si256 (b, low));
          __m256 hi = _mm256_cvtepi32_ps (_mm256_srli_epi32 (b, 4));
          __m256 q0 = _mm256_loadu_ps (qg + j), q1 = _mm256_loadu_ps (qg + j + half);

          acc = _mm256_fmadd_ps (lo, q0, acc);
          acc = _mm256_fmadd_ps (hi, q1, acc);
          sq = _mm256_add_ps (sq, _mm256_add_ps (q0, q1));
        }
      tot = _mm256_fmadd_ps (acc, _mm256_set1_ps (rk_fp16_to_fp32 (d[g])), tot);
      tot = _mm256_fmadd_ps (sq, _mm256_set1_ps (rk_fp16_to_fp32 (m[g])), tot);
    }
  return hsum8 (tot);
}

float
rk_kvf16_dot_avx2 (int            n,
                   const rk_fp16 *x,
                   const float   *q)
{
  __m256 acc = _mm256_setzero_ps ();
  float sum;
  int i;

  for (i = 0; i + 8 <= n; i += 8)
    acc = _mm256_fmadd_ps (_mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (x + i))),
                           _mm256_loadu_ps (q + i), acc);
  sum = hsum8 (acc);
  for (; i < n; i++)
    sum += q[i] * rk_fp16_to_fp32 (x[i]);
  return sum;
}

void
rk_kvq8_axpy_avx2 (int            n,
                   int            group,
                   const int8_t  *codes,
                   const rk_fp16 *d,
                   float          w,
                   float         *y)
{
  int g, j;

  if (group % 8 != 0)
    {
      rk_kvq8_axpy_ref (n, group, codes, d, w, y);
      return;
    }
  for (g = 0; g < n / group; g++)
    {
      __m256 wd = _mm256_set1_ps (w * rk_fp16_to_fp32 (d[g]));

      for (j = g * group; j < (g + 1) * group; j += 8)
        _mm256_storeu_ps (y + j, _mm256_fmadd_ps (load_i8x8 (codes + j), wd,
                                                  _mm256_loadu_ps (y + j)));
    }
}

void
rk_kvq4_axpy_avx2 (int            n,
                   int            group,
                   const uint8_t *codes,
                   const rk_fp16 *d,
                   const rk_fp16 *m,
                   float          w,
                   float         *y)
{
  const __m256i low = _mm256_set1_epi32 (0x0F);
  int half = group / 2;
  int g, j;

  if (group % 16 != 0)
    {
      rk_kvq4_axpy_ref (n, group, codes, d, m, w, y);
      return;
    }
  for (g = 0; g < n / group; g++)
    {
      const uint8_t *c = codes + g * half;
      float *yg = y + g * group;
      __m256 wd = _mm256_set1_ps (w * rk_fp16_to_fp32 (d[g]));
      __m256 wm = _mm256_set1_ps (w * rk_fp16_to_fp32 (m[g]));

      for (j = 0; j < half; j += 8)
        {
          __m256i b = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) (c + j)));
          __m256 lo = _mm256_cvtepi32_ps (_mm256_and_si256 (b, low));
          __m256 hi = _mm256_cvtepi32_ps (_mm256_srli_epi32 (b, 4));

          _mm256_storeu_ps (yg + j, _mm256_add_ps (_mm256_loadu_ps (yg + j),
                                                   _mm256_fmadd_ps (lo, wd, wm)));
          _mm256_storeu_ps (yg + j + half, _mm256_add_ps (_mm256_loadu_ps (yg + j + half),
                                                          _mm256_fmadd_ps (hi, wd, wm)));
        }
    }
}

void
rk_kvf16_axpy_avx2 (int            n,
                    const rk_fp16 *x,
                    float          w,
                    float         *y)
{
  __m256 wv = _mm256_set1_ps (w);
  int i;

  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps (y + i,
                      _mm256_fmadd_ps (_mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (x + i))),
                                       wv, _mm256_loadu_ps (y + i)));
  for (; i < n; i++)
    y[i] += w * rk_fp16_to_fp32 (x[i]);
}
