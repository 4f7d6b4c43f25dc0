/* act-neon.c — activations and element-wise arithmetic, NEON (ARMv8.0).
 * SPDX-License-Identifier: MIT
 *
 * As act-avx2.c: silu and swiglu through the polynomial expf of simd-neon.h;
 * gelu as v / (1 + exp(-2u)), equal to 0.5 v (1 + tanh(u)).
 */
#include <math.h>

#include "rk-ops.h"
#include "simd-neon.h"
#include "act-private.h"

void
rk_silu_neon (float       *out,
              const float *x,
              int          n)
{
  int i = 0;

  for (; i + 4 <= n; i += 4)
    vst1q_f32 (out + i, silu_neon (vld1q_f32 (x + i)));
  for (; i < n; i++)
    out[i] = x[i] / (1.0f + expf (-x[i]));
}

void
rk_swiglu_neon (float       *out,
                const float *gate,
                const float *up,
                int          n)
{
  int i = 0;

  for (; i + 4 <= n; i += 4)
    vst1q_f32 (out + i, vmulq_f32 (silu_neon (vld1q_f32 (gate + i)), vld1q_f32 (up + i)));
  for (; i < n; i++)
    out[i] = gate[i] / (1.0f + expf (-gate[i])) * up[i];
}

void
rk_gelu_neon (float       *out,
              const float *x,
              int          n)
{
  const float32x4_t one = vdupq_n_f32 (1.0f);
  const float32x4_t a = vdupq_n_f32 (GELU_COEF_A);
  const float32x4_t m2k = vdupq_n_f32 (-2.0f * SQRT_2_OVER_PI);
  int i = 0;

  for (; i + 4 <= n; i += 4)
    {
      float32x4_t v = vld1q_f32 (x + i);
      float32x4_t m2u = vmulq_f32 (vmulq_f32 (m2k, v), vfmaq_f32 (one, vmulq_f32 (a, v), v));

      vst1q_f32 (out + i, vdivq_f32 (v, vaddq_f32 (one, expf_neon (m2u))));
    }
  for (; i < n; i++)
    {
      float v = x[i];

      out[i] = 0.5f * v * (1.0f + tanhf (SQRT_2_OVER_PI * v * (1.0f + GELU_COEF_A * v * v)));
    }
}

void
rk_add_neon (float       *out,
             const float *a,
             const float *b,
             int          n)
{
  int i = 0;

  for (; i + 4 <= n; i += 4)
    vst1q_f32 (out + i, vaddq_f32 (vld1q_f32 (a + i), vld1q_f32 (b + i)));
  for (; i < n; i++)
    out[i] = a[i] + b[i];
}

void
rk_mul_neon (float       *out,
             const float *a,
             const float *b,
             int          n)
{
  int i = 0;

  for (; i + 4 <= n; i += 4)
    vst1q_f32 (out + i, vmulq_f32 (vld1q_f32 (a + i), vld1q_f32 (b + i)));
  for (; i < n; i++)
    out[i] = a[i] * b[i];
}

void
rk_scale_neon (float       *out,
               const float *a,
               float        s,
               int          n)
{
  int i = 0;

  for (; i + 4 <= n; i += 4)
    vst1q_f32 (out + i, vmulq_n_f32 (vld1q_f32 (a + i), s));
  for (; i < n; i++)
    out[i] = a[i] * s;
}

void
rk_axpy_neon (float       *y,
              float        a,
              const float *x,
              int          n)
{
  int i = 0;

  for (; i + 4 <= n; i += 4)
    vst1q_f32 (y + i, vfmaq_n_f32 (vld1q_f32 (y + i), vld1q_f32 (x + i), a));
  for (; i < n; i++)
    y[i] += a * x[i];
}
