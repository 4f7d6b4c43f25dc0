/* softmax-avx2.c — in-place softmax, AVX2 + FMA.
 * SPDX-License-Identifier: MIT
 *
 * Three passes (max, exp and sum, scale) with the polynomial expf of
 * simd-avx2.h (within 2 ulp of expf); the tail uses libm's expf as the
 * reference does. exp(-inf) is exactly 0 in both.
 */
#include <math.h>

#include "rk-ops.h"
#include "simd-avx2.h"

float
rk_softmax_avx2 (float *x,
                 int    n)
{
  __m256 vmax = _mm256_set1_ps (-INFINITY), acc = _mm256_setzero_ps (), vm, vinv;
  float max;
  double sum;
  float inv;
  int i = 0;

  for (; i + 8 <= n; i += 8)
    vmax = _mm256_max_ps (vmax, _mm256_loadu_ps (x + i));
  max = rk_hmax_ps_avx2 (vmax);
  for (; i < n; i++)
    if (x[i] > max)
      max = x[i];

  if (max == -INFINITY)
    {
      for (i = 0; i < n; i++)
        x[i] = 0.0f;
      return 0.0f;
    }

  vm = _mm256_set1_ps (max);
  for (i = 0; i + 8 <= n; i += 8)
    {
      __m256 e = expf_avx2 (_mm256_sub_ps (_mm256_loadu_ps (x + i), vm));

      _mm256_storeu_ps (x + i, e);
      acc = _mm256_add_ps (acc, e);
    }
  sum = rk_hsum_ps_avx2 (acc);
  for (; i < n; i++)
    {
      x[i] = expf (x[i] - max);
      sum += x[i];
    }

  inv = (float) (1.0 / sum);
  vinv = _mm256_set1_ps (inv);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps (x + i, _mm256_mul_ps (_mm256_loadu_ps (x + i), vinv));
  for (; i < n; i++)
    x[i] *= inv;
  return (float) sum;
}

float
rk_exp_sum_avx2 (float *x,
                 int    n,
                 float  m)
{
  __m256 acc = _mm256_setzero_ps (), vm = _mm256_set1_ps (m);
  float sum;
  int i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 e = expf_avx2 (_mm256_sub_ps (_mm256_loadu_ps (x + i), vm));

      _mm256_storeu_ps (x + i, e);
      acc = _mm256_add_ps (acc, e);
    }
  sum = rk_hsum_ps_avx2 (acc);
  for (; i < n; i++)
    {
      x[i] = expf (x[i] - m);
      sum += x[i];
    }
  return sum;
}
