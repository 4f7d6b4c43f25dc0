/* norm-neon.c — RMS norm and layer norm, NEON (ARMv8.0).
 * SPDX-License-Identifier: MIT
 *
 * Sums of squares live in float lanes (fused multiply-add); the tail and the
 * final reduction are in double, as in the reference.
 */
#include <math.h>
#include <stddef.h>

#include "rk-ops.h"
#include "simd-neon.h"

void
rk_rmsnorm_neon (float       *out,
                 const float *x,
                 const float *w,
                 int          n,
                 float        eps)
{
  float32x4_t acc0 = vdupq_n_f32 (0.0f), acc1 = vdupq_n_f32 (0.0f), vs;
  double sum;
  float scale;
  int i = 0;

  for (; i + 8 <= n; i += 8)
    {
      float32x4_t v0 = vld1q_f32 (x + i), v1 = vld1q_f32 (x + i + 4);

      acc0 = vfmaq_f32 (acc0, v0, v0);
      acc1 = vfmaq_f32 (acc1, v1, v1);
    }
  for (; i + 4 <= n; i += 4)
    {
      float32x4_t v = vld1q_f32 (x + i);

      acc0 = vfmaq_f32 (acc0, v, v);
    }
  sum = vaddvq_f32 (vaddq_f32 (acc0, acc1));
  for (; i < n; i++)
    sum += (double) x[i] * (double) x[i];
  scale = (float) (1.0 / sqrt (sum / n + (double) eps));

  vs = vdupq_n_f32 (scale);
  for (i = 0; i + 4 <= n; i += 4)
    {
      float32x4_t v = vmulq_f32 (vld1q_f32 (x + i), vs);

      if (w != NULL)
        v = vmulq_f32 (v, vld1q_f32 (w + i));
      vst1q_f32 (out + i, v);
    }
  for (; i < n; i++)
    out[i] = w != NULL ? x[i] * scale * w[i] : x[i] * scale;
}

void
rk_layernorm_neon (float       *out,
                   const float *x,
                   const float *w,
                   const float *b,
                   int          n,
                   float        eps)
{
  float64x2_t sum2 = vdupq_n_f64 (0.0);
  float32x4_t acc = vdupq_n_f32 (0.0f), vm, vd, vs;
  double sum, var, mean;
  float m, delta, scale;
  int i = 0;

  /* As in norm-avx2.c: the mean in double lanes, then split into float
   * m + delta so that (x - m) - delta keeps float precision. */
  for (; i + 4 <= n; i += 4)
    {
      float32x4_t v = vld1q_f32 (x + i);

      sum2 = vaddq_f64 (sum2, vcvt_f64_f32 (vget_low_f32 (v)));
      sum2 = vaddq_f64 (sum2, vcvt_high_f64_f32 (v));
    }
  sum = vaddvq_f64 (sum2);
  for (; i < n; i++)
    sum += x[i];
  mean = sum / n;
  m = (float) mean;
  delta = (float) (mean - m);

  vm = vdupq_n_f32 (m);
  vd = vdupq_n_f32 (delta);
  for (i = 0; i + 4 <= n; i += 4)
    {
      float32x4_t d = vsubq_f32 (vsubq_f32 (vld1q_f32 (x + i), vm), vd);

      acc = vfmaq_f32 (acc, d, d);
    }
  var = vaddvq_f32 (acc);
  for (; i < n; i++)
    var += ((double) x[i] - mean) * ((double) x[i] - mean);
  scale = (float) (1.0 / sqrt (var / n + (double) eps));

  vs = vdupq_n_f32 (scale);
  for (i = 0; i + 4 <= n; i += 4)
    {
      float32x4_t d = vsubq_f32 (vsubq_f32 (vld1q_f32 (x + i), vm), vd);
      float32x4_t v = vmulq_f32 (d, vs);

      if (w != NULL)
        v = vmulq_f32 (v, vld1q_f32 (w + i));
      if (b != NULL)
        v = vaddq_f32 (v, vld1q_f32 (b + i));
      vst1q_f32 (out + i, v);
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
