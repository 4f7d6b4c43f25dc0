/* act-avx2.c — activations and element-wise arithmetic, AVX2 + FMA.
 * SPDX-License-Identifier: MIT
 *
 * silu and swiglu use the polynomial expf of simd-avx2.h. gelu uses the
 * identity 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)), so it needs only expf and
 * stays accurate where 1 + tanh(u) cancels; it agrees with the tanhf form of
 * the reference to about 1e-6 absolute.
 */
#include <math.h>

#include "rk-ops.h"
#include "simd-avx2.h"
#include "act-private.h"

void
rk_silu_avx2 (float       *out,
              const float *x,
              int          n)
{
  int i = 0;

  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (out + i, silu_avx2 (_mm256_loadu_ps (x + i)));
  for (; i < n; i++)
    out[i] = x[i] / (1.0f + expf (-x[i]));
}

void
rk_swiglu_avx2 (float       *out,
                const float *gate,
                const float *up,
                int          n)
{
  int i = 0;

  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (out + i, _mm256_mul_ps (silu_avx2 (_mm256_loadu_ps (gate + i)),
                                              _mm256_loadu_ps (up + i)));
  for (; i < n; i++)
    out[i] = gate[i] / (1.0f + expf (-gate[i])) * up[i];
}

void
rk_gelu_avx2 (float       *out,
              const float *x,
              int          n)
{
  const __m256 one = _mm256_set1_ps (1.0f);
  const __m256 a = _mm256_set1_ps (GELU_COEF_A);
  const __m256 m2k = _mm256_set1_ps (-2.0f * SQRT_2_OVER_PI);
  int i = 0;

  for (; i + 8 <= n; i += 8)
    {
      __m256 v = _mm256_loadu_ps (x + i);
      /* -2u = -2 sqrt(2/pi) v (1 + a v^2) */
      __m256 m2u = _mm256_mul_ps (_mm256_mul_ps (m2k, v),
                                  _mm256_fmadd_ps (_mm256_mul_ps (a, v), v, one));

      _mm256_storeu_ps (out + i, _mm256_div_ps (v, _mm256_add_ps (one, expf_avx2 (m2u))));
    }
  for (; i < n; i++)
    {
      float v = x[i];

      out[i] = 0.5f * v * (1.0f + tanhf (SQRT_2_OVER_PI * v * (1.0f + GELU_COEF_A * v * v)));
    }
}

void
rk_add_avx2 (float       *out,
             const float *a,
             const float *b,
             int          n)
{
  int i = 0;

  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (out + i, _mm256_add_ps (_mm256_loadu_ps (a + i), _mm256_loadu_ps (b + i)));
  for (; i < n; i++)
    out[i] = a[i] + b[i];
}

void
rk_mul_avx2 (float       *out,
             const float *a,
             const float *b,
             int          n)
{
  int i = 0;

  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (out + i, _mm256_mul_ps (_mm256_loadu_ps (a + i), _mm256_loadu_ps (b + i)));
  for (; i < n; i++)
    out[i] = a[i] * b[i];
}

void
rk_scale_avx2 (float       *out,
               const float *a,
               float        s,
               int          n)
{
  __m256 vs = _mm256_set1_ps (s);
  int i = 0;

  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (out + i, _mm256_mul_ps (_mm256_loadu_ps (a + i), vs));
  for (; i < n; i++)
    out[i] = a[i] * s;
}

void
rk_axpy_avx2 (float       *y,
              float        a,
              const float *x,
              int          n)
{
  __m256 va = _mm256_set1_ps (a);
  int i = 0;

  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (y + i, _mm256_fmadd_ps (va, _mm256_loadu_ps (x + i),
                                              _mm256_loadu_ps (y + i)));
  for (; i < n; i++)
    y[i] += a * x[i];
}
