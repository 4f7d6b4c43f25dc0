/* topk-avx2.c — argmax, AVX2.
 * SPDX-License-Identifier: MIT
 *
 * Two passes: the maximum with vmaxps, then the first index that holds it
 * (compare and movemask), which gives first-on-ties like the reference.
 */
#include "rk-ops.h"
#include "simd-avx2.h"

int
rk_argmax_avx2 (const float *x,
                int          n)
{
  __m256 vmax = _mm256_set1_ps (x[0]), vm;
  float max;
  int i = 0;

  for (; i + 8 <= n; i += 8)
    vmax = _mm256_max_ps (vmax, _mm256_loadu_ps (x + i));
  max = rk_hmax_ps_avx2 (vmax);
  for (; i < n; i++)
    if (x[i] > max)
      max = x[i];

  vm = _mm256_set1_ps (max);
  for (i = 0; i + 8 <= n; i += 8)
    {
      int mask = _mm256_movemask_ps (_mm256_cmp_ps (_mm256_loadu_ps (x + i), vm, _CMP_EQ_OQ));

      if (mask != 0)
        return i + __builtin_ctz ((unsigned) mask);
    }
  for (; i < n; i++)
    if (x[i] == max)
      return i;
  return 0;
}
