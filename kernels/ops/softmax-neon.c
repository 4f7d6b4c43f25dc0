/* softmax-neon.c — in-place softmax, NEON (ARMv8.0).
 * SPDX-License-Identifier: MIT
 *
 * As softmax-avx2.c: max, exp and sum with the polynomial expf of
 * simd-neon.h (within 2 ulp of expf), scale; libm expf on the tail.
 */
#include <math.h>

#include "rk-ops.h"
#include "simd-neon.h"

float
rk_softmax_neon (float *x,
                 int    n)
{
  float32x4_t vmax = vdupq_n_f32 (-INFINITY), acc = vdupq_n_f32 (0.0f), vm, vinv;
  float max;
  double sum;
  float inv;
  int i = 0;

  for (; i + 4 <= n; i += 4)
    vmax = vmaxq_f32 (vmax, vld1q_f32 (x + i));
  max = vmaxvq_f32 (vmax);
  for (; i < n; i++)
    if (x[i] > max)
      max = x[i];

  if (max == -INFINITY)
    {
      for (i = 0; i < n; i++)
        x[i] = 0.0f;
      return 0.0f;
    }

  vm = vdupq_n_f32 (max);
  for (i = 0; i + 4 <= n; i += 4)
    {
      float32x4_t e = expf_neon (vsubq_f32 (vld1q_f32 (x + i), vm));

      vst1q_f32 (x + i, e);
      acc = vaddq_f32 (acc, e);
    }
  sum = vaddvq_f32 (acc);
  for (; i < n; i++)
    {
      x[i] = expf (x[i] - max);
      sum += x[i];
    }

  inv = (float) (1.0 / sum);
  vinv = vdupq_n_f32 (inv);
  for (i = 0; i + 4 <= n; i += 4)
    vst1q_f32 (x + i, vmulq_f32 (vld1q_f32 (x + i), vinv));
  for (; i < n; i++)
    x[i] *= inv;
  return (float) sum;
}

float
rk_exp_sum_neon (float *x,
                 int    n,
                 float  m)
{
  float32x4_t acc = vdupq_n_f32 (0.0f), vm = vdupq_n_f32 (m);
  float sum;
  int i = 0;

  for (; i + 4 <= n; i += 4)
    {
      float32x4_t e = expf_neon (vsubq_f32 (vld1q_f32 (x + i), vm));

      vst1q_f32 (x + i, e);
      acc = vaddq_f32 (acc, e);
    }
  sum = vaddvq_f32 (acc);
  for (; i < n; i++)
    {
      x[i] = expf (x[i] - m);
      sum += x[i];
    }
  return sum;
}
