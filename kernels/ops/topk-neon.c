/* topk-neon.c — argmax, NEON (ARMv8.0).
 * SPDX-License-Identifier: MIT
 *
 * Two passes: the maximum with vmaxq, then the first 4-lane group holding it
 * (first-on-ties like the reference).
 */
#include "rk-ops.h"
#include "simd-neon.h"

int
rk_argmax_neon (const float *x,
                int          n)
{
  float32x4_t vmax = vdupq_n_f32 (x[0]), vm;
  float max;
  int i = 0, j;

  for (; i + 4 <= n; i += 4)
    vmax = vmaxq_f32 (vmax, vld1q_f32 (x + i));
  max = vmaxvq_f32 (vmax);
  for (; i < n; i++)
    if (x[i] > max)
      max = x[i];

  vm = vdupq_n_f32 (max);
  for (i = 0; i + 4 <= n; i += 4)
    {
      if (vmaxvq_u32 (vceqq_f32 (vld1q_f32 (x + i), vm)) == 0)
        continue;
      for (j = i; j < i + 4; j++)
        if (x[j] == max)
          return j;
    }
  for (; i < n; i++)
    if (x[i] == max)
      return i;
  return 0;
}
