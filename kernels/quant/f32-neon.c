/* f32-neon.c — float dot product, NEON.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy-neon.h"

float
rk_vec_dot_f32_f32_neon (int n, const void *vx, const void *vy)
{
  const float *x = vx;
  const float *y = vy;
  float32x4_t acc[4] = { vdupq_n_f32 (0), vdupq_n_f32 (0), vdupq_n_f32 (0), vdupq_n_f32 (0) };
  float sum;
  int i = 0;

  for (; i + 16 <= n; i += 16)
    for (int a = 0; a < 4; a++)
      acc[a] = vfmaq_f32 (acc[a], vld1q_f32 (x + i + 4 * a), vld1q_f32 (y + i + 4 * a));
  for (; i + 4 <= n; i += 4)
    acc[0] = vfmaq_f32 (acc[0], vld1q_f32 (x + i), vld1q_f32 (y + i));
  sum = vaddvq_f32 (vaddq_f32 (vaddq_f32 (acc[0], acc[1]), vaddq_f32 (acc[2], acc[3])));
  for (; i < n; i++)
    sum += x[i] * y[i];
  return sum;
}
