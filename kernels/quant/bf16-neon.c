/* bf16-neon.c — bfloat16 rows with NEON (integer conversions: ARMv8.0 has no
 * bf16 instructions): conversion both ways and the dot.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy-neon.h"

static inline float32x4_t
load4_bf16 (const rk_bf16 *p)
{
  return vreinterpretq_f32_u32 (vshll_n_u16 (vld1_u16 (p), 16));
}

/* rk_fp32_to_bf16 on 4 lanes, bit for bit (NaN included). */
static inline uint16x4_t
round4_bf16 (float32x4_t v)
{
  const uint32x4_t u = vreinterpretq_u32_f32 (v);
  const uint32x4_t lsb = vandq_u32 (vshrq_n_u32 (u, 16), vdupq_n_u32 (1));
  const uint32x4_t rounded = vshrq_n_u32 (vaddq_u32 (u, vaddq_u32 (lsb, vdupq_n_u32 (0x7fff))), 16);
  const uint32x4_t quiet = vorrq_u32 (vshrq_n_u32 (u, 16), vdupq_n_u32 (64));
  const uint32x4_t is_nan = vcgtq_u32 (vandq_u32 (u, vdupq_n_u32 (0x7fffffff)),
                                       vdupq_n_u32 (0x7f800000));

  return vmovn_u32 (vbslq_u32 (is_nan, quiet, rounded));
}

void
rk_quantize_row_bf16_neon (const float *x, void *vy, int64_t k)
{
  rk_bf16 *y = vy;
  int64_t i = 0;

  for (; i + 4 <= k; i += 4)
    vst1_u16 (y + i, round4_bf16 (vld1q_f32 (x + i)));
  for (; i < k; i++)
    y[i] = rk_fp32_to_bf16 (x[i]);
}

void
rk_dequantize_row_bf16_neon (const void *vx, float *y, int64_t k)
{
  const rk_bf16 *x = vx;
  int64_t i = 0;

  for (; i + 4 <= k; i += 4)
    vst1q_f32 (y + i, load4_bf16 (x + i));
  for (; i < k; i++)
    y[i] = rk_bf16_to_fp32 (x[i]);
}

float
rk_vec_dot_bf16_bf16_neon (int n, const void *vx, const void *vy)
{
  const rk_bf16 *x = vx;
  const rk_bf16 *y = vy;
  float32x4_t acc[4] = { vdupq_n_f32 (0), vdupq_n_f32 (0), vdupq_n_f32 (0), vdupq_n_f32 (0) };
  float sum;
  int i = 0;

  for (; i + 16 <= n; i += 16)
    for (int a = 0; a < 4; a++)
      acc[a] = vfmaq_f32 (acc[a], load4_bf16 (x + i + 4 * a), load4_bf16 (y + i + 4 * a));
  for (; i + 4 <= n; i += 4)
    acc[0] = vfmaq_f32 (acc[0], load4_bf16 (x + i), load4_bf16 (y + i));
  sum = vaddvq_f32 (vaddq_f32 (vaddq_f32 (acc[0], acc[1]), vaddq_f32 (acc[2], acc[3])));
  for (; i < n; i++)
    sum += rk_bf16_to_fp32 (x[i]) * rk_bf16_to_fp32 (y[i]);
  return sum;
}
