/* f32-avx2.c — float dot product, AVX2 + FMA.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy-avx2.h"

/* Four independent accumulators hide the FMA latency. */
float
rk_vec_dot_f32_f32_avx2 (int n, const void *vx, const void *vy)
{
  const float *x = vx;
  const float *y = vy;
  __m256 acc[4] = { _mm256_setzero_ps (), _mm256_setzero_ps (),
                    _mm256_setzero_ps (), _mm256_setzero_ps () };
  float sum;
  int i = 0;

  for (; i + 32 <= n; i += 32)
    for (int a = 0; a < 4; a++)
      acc[a] = _mm256_fmadd_ps (_mm256_loadu_ps (x + i + 8 * a),
                                _mm256_loadu_ps (y + i + 8 * a), acc[a]);
  for (; i + 8 <= n; i += 8)
    acc[0] = _mm256_fmadd_ps (_mm256_loadu_ps (x + i), _mm256_loadu_ps (y + i), acc[0]);
  sum = rk_hsum_ps_avx2 (_mm256_add_ps (_mm256_add_ps (acc[0], acc[1]),
                                        _mm256_add_ps (acc[2], acc[3])));
  for (; i < n; i++)
    sum += x[i] * y[i];
  return sum;
}
