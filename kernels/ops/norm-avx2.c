/* norm-avx2.c — RMS norm and layer norm, AVX2 + FMA.
 * SPDX-License-Identifier: MIT
 *
 * Sums of squares live in float lanes (fused multiply-add); the tail and the
 * final reduction are in double, as in the reference.
 */
#include <math.h>
#include <stddef.h>

#include "rk-ops.h"
#include "simd-avx2.h"

void
rk_rmsnorm_avx2 (float       *out,
                 const float *x,
                 const float *w,
                 int          n,
                 float        eps)
{
  __m256 acc0 = _mm256_setzero_ps (), acc1 = _mm256_setzero_ps (), vs;
  double sum;
  float scale;
  int i = 0;

  for (; i + 16 <= n; i += 16)
    {
      __m256 v0 = _mm256_loadu_ps (x + i), v1 = _mm256_loadu_ps (x + i + 8);

      acc0 = _mm256_fmadd_ps (v0, v0, acc0);
      acc1 = _mm256_fmadd_ps (v1, v1, acc1);
    }
  for (; i + 8 <= n; i += 8)
    {
      __m256 v = _mm256_loadu_ps (x + i);

      acc0 = _mm256_fmadd_ps (v, v, acc0);
    }
  sum = rk_hsum_ps_avx2 (_mm256_add_ps (acc0, acc1));
  for (; i < n; i++)
    sum += (double) x[i] * (double) x[i];
  scale = (float) (1.0 / sqrt (sum / n + (double) eps));

  vs = _mm256_set1_ps (scale);
  for (i = 0; i + 8 <= n; i += 8)
    {
      __m256 v = _mm256_mul_ps (_mm256_loadu_ps (x + i), vs);

      if (w != NULL)
        v = _mm256_mul_ps (v, _mm256_loadu_ps (w + i));
      _mm256_storeu_ps (out + i, v);
    }
  for (; i < n; i++)
    out[i] = w != NULL ? x[i] * scale * w[i] : x[i] * scale;
}

void
rk_layernorm_avx2 (float       *out,
                   const float *x,
                   const float *w,
                   const float *b,
                   int          n,
                   float        eps)
{
  __m256d sum4 = _mm256_setzero_pd ();
  __m256 acc = _mm256_setzero_ps (), vm, vd, vs;
  double sum, var, mean;
  float m, delta, scale;
  int i = 0;

  /* The mean is summed in double lanes: float lanes lose ~1e-5 of it for
   * rows with a large mean. It is then split into a float m plus a small
   * float delta, so x - m is exact (or nearly) and subtracting delta gives
   * x - mean to about float precision of the difference. */
  for (; i + 8 <= n; i += 8)
    {
      __m256 v = _mm256_loadu_ps (x + i);

      sum4 = _mm256_add_pd (sum4, _mm256_cvtps_pd (_mm256_castps256_ps128 (v)));
      sum4 = _mm256_add_pd (sum4, _mm256_cvtps_pd (_mm256_extractf128_ps (v, 1)));
    }
  {
    __m128d s2 = _mm_add_pd (_mm256_castpd256_pd128 (sum4), _mm256_extractf128_pd (sum4, 1));

    sum = _mm_cvtsd_f64 (_mm_add_sd (s2, _mm_unpackhi_pd (s2, s2)));
  }
  for (; i < n; i++)
    sum += x[i];
  mean = sum / n;
  m = (float) mean;
  delta = (float) (mean - m);

  vm = _mm256_set1_ps (m);
  vd = _mm256_set1_ps (delta);
  for (i = 0; i + 8 <= n; i += 8)
    {
      __m256 d = _mm256_sub_ps (_mm256_sub_ps (_mm256_loadu_ps (x + i), vm), vd);

      acc = _mm256_fmadd_ps (d, d, acc);
    }
  var = rk_hsum_ps_avx2 (acc);
  for (; i < n; i++)
    var += ((double) x[i] - mean) * ((double) x[i] - mean);
  scale = (float) (1.0 / sqrt (var / n + (double) eps));

  vs = _mm256_set1_ps (scale);
  for (i = 0; i + 8 <= n; i += 8)
    {
      __m256 d = _mm256_sub_ps (_mm256_sub_ps (_mm256_loadu_ps (x + i), vm), vd);
      __m256 v = _mm256_mul_ps (d, vs);

      if (w != NULL)
        v = _mm256_mul_ps (v, _mm256_loadu_ps (w + i));
      if (b != NULL)
        v = _mm256_add_ps (v, _mm256_loadu_ps (b + i));
      _mm256_storeu_ps (out + i, v);
    }
  for (; i < n; i++)
    {
      float v = (float) (((double) x[i] - mean) * scale);

      if (w != NULL)
        v *= w[i];
      if (b != NULL)
        v += b[i];
      out[i] = v;
    }
}
