/* f16-neon.c — IEEE half rows with NEON: conversion both ways and the dot.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy-neon.h"

static inline float32x4_t
load4_f16 (const rk_fp16 *p)
{
  return vcvt_f32_f16 (vreinterpret_f16_u16 (vld1_u16 (p)));
}

/* fcvtn rounds to nearest even under the default FPCR: equal to
 * rk_fp32_to_fp16 for every non-NaN input. */
void
rk_quantize_row_f16_neon (const float *x, void *vy, int64_t k)
{
  rk_fp16 *y = vy;
  int64_t i = 0;

  for (; i + 4 <= k; i += 4)
    vst1_u16 (y + i, vreinterpret_u16_f16 (vcvt_f16_f32 (vld1q_f32 (x + i))));
  for (; i < k; i++)
    y[i] = rk_fp32_to_fp16 (x[i]);
}

void
rk_dequantize_row_f16_neon (const void *vx, float *y, int64_t k)
{
  const rk_fp16 *x = vx;
  int64_t i = 0;

  for (; i + 4 <= k; i += 4)
    vst1q_f32 (y + i, load4_f16 (x + i));
  for (; i < k; i++)
    y[i] = rk_fp16_to_fp32 (x[i]);
}

float
rk_vec_dot_f16_f16_neon (int n, const void *vx, const void *vy)
{
  const rk_fp16 *x = vx;
  const rk_fp16 *y = vy;
  float32x4_t acc[4] = { vdupq_n_f32 (0), vdupq_n_f32 (0), vdupq_n_f32 (0), vdupq_n_f32 (0) };
  float sum;
  int i = 0;

  for (; i + 16 <= n; i += 16)
    for (int a = 0; a < 4; a++)
      acc[a] = vfmaq_f32 (acc[a], load4_f16 (x + i + 4 * a), load4_f16 (y + i + 4 * a));
  for (; i + 4 <= n; i += 4)
    acc[0] = vfmaq_f32 (acc[0], load4_f16 (x + i), load4_f16 (y + i));
  sum = vaddvq_f32 (vaddq_f32 (vaddq_f32 (acc[0], acc[1]), vaddq_f32 (acc[2], acc[3])));
  for (; i < n; i++)
    sum += rk_fp16_to_fp32 (x[i]) * rk_fp16_to_fp32 (y[i]);
  return sum;
}
