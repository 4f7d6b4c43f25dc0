/* kv-quant-neon.c — quantized KV rows with baseline ARMv8 NEON.
 * SPDX-License-Identifier: MIT
 *
 * Eight values at a time as two float32x4: codes widen int8 -> int16 -> int32
 * and convert, then fused multiply-adds. Groups that are not a multiple of 8
 * (Q8) or 16 (Q4) take the reference path; the F16 loops end with the
 * reference's scalar tail.
 */
#include <arm_neon.h>

#include "rk-kvquant.h"

static inline void
widen_s8 (int8x8_t c, float32x4_t *lo, float32x4_t *hi)
{
  int16x8_t w = vmovl_s8 (c);

  *lo = vcvtq_f32_s32 (vmovl_s16 (vget_low_s16 (w)));
  *hi = vcvtq_f32_s32 (vmovl_s16 (vget_high_s16 (w)));
}

static inline void
widen_u8 (uint8x8_t c, float32x4_t *lo, float32x4_t *hi)
{
  uint16x8_t w = vmovl_u8 (c);

  *lo = vcvtq_f32_u32 (vmovl_u16 (vget_low_u16 (w)));
  *hi = vcvtq_f32_u32 (vmovl_u16 (vget_high_u16 (w)));
}

static inline float32x4_t
load_f16x4 (const rk_fp16 *x)
{
  return vcvt_f32_f16 (vreinterpret_f16_u16 (vld1_u16 (x)));
}

float
rk_kvq8_dot_neon (int            n,
                  int            group,
                  const int8_t  *codes,
                  const rk_fp16 *d,
                  const float   *q)
{
  float32x4_t tot = vdupq_n_f32 (0.0f);
  int g, j;

  if (group % 8 != 0)
    return rk_kvq8_dot_ref (n, group, codes, d, q);
  for (g = 0; g < n / group; g++)
    {
      float32x4_t acc = vdupq_n_f32 (0.0f);

      for (j = g * group; j < (g + 1) * group; j += 8)
        {
          float32x4_t c0, c1;

          widen_s8 (vld1_s8 (codes + j), &c0, &c1);
          acc = vfmaq_f32 (acc, c0, vld1q_f32 (q + j));
          acc = vfmaq_f32 (acc, c1, vld1q_f32 (q + j + 4));
        }
      tot = vfmaq_n_f32 (tot, acc, rk_fp16_to_fp32 (d[g]));
    }
  return vaddvq_f32 (tot);
}

float
rk_kvq4_dot_neon (int            n,
                  int            group,
                  const uint8_t *codes,
                  const rk_fp16 *d,
                  const rk_fp16 *m,
                  const float   *q)
{
  int half = group / 2;
  float32x4_t tot = vdupq_n_f32 (0.0f);
  int g, j;

  if (group % 16 != 0)
    return rk_kvq4_dot_ref (n, group, codes, d, m, q);
  for (g = 0; g < n / group; g++)
    {
      const uint8_t *c = codes + g * half;
      const float *qg = q + g * group;
      float32x4_t acc = vdupq_n_f32 (0.0f), sq = vdupq_n_f32 (0.0f);

      for (j = 0; j < half; j += 8)
        {
          uint8x8_t b = vld1_u8 (c + j);
          float32x4_t l0, l1, h0, h1;
          float32x4_t q0 = vld1q_f32 (qg + j), q1 = vld1q_f32 (qg + j + 4);
          float32x4_t q2 = vld1q_f32 (qg + j + half), q3 = vld1q_f32 (qg + j + half + 4);

          widen_u8 (vand_u8 (b, vdup_n_u8 (0x0F)), &l0, &l1);
          widen_u8 (vshr_n_u8 (b, 4), &h0, &h1);
          acc = vfmaq_f32 (acc, l0, q0);
          acc = vfmaq_f32 (acc, l1, q1);
          acc = vfmaq_f32 (acc, h0, q2);
          acc = vfmaq_f32 (acc, h1, q3);
          sq = vaddq_f32 (sq, vaddq_f32 (vaddq_f32 (q0, q1), vaddq_f32 (q2, q3)));
        }
      tot = vfmaq_n_f32 (tot, acc, rk_fp16_to_fp32 (d[g]));
      tot = vfmaq_n_f32 (tot, sq, rk_fp16_to_fp32 (m[g]));
    }
  return vaddvq_f32 (tot);
}

float
rk_kvf16_dot_neon (int            n,
                   const rk_fp16 *x,
                   const float   *q)
{
  float32x4_t acc = vdupq_n_f32 (0.0f);
  float sum;
  int i;

  for (i = 0; i + 4 <= n; i += 4)
    acc = vfmaq_f32 (acc, load_f16x4 (x + i), vld1q_f32 (q + i));
  sum = vaddvq_f32 (acc);
  for (; i < n; i++)
    sum += q[i] * rk_fp16_to_fp32 (x[i]);
  return sum;
}

void
rk_kvq8_axpy_neon (int            n,
                   int            group,
                   const int8_t  *codes,
                   const rk_fp16 *d,
                   float          w,
                   float         *y)
{
  int g, j;

  if (group % 8 != 0)
    {
      rk_kvq8_axpy_ref (n, group, codes, d, w, y);
      return;
    }
  for (g = 0; g < n / group; g++)
    {
      float wd = w * rk_fp16_to_fp32 (d[g]);

      for (j = g * group; j < (g + 1) * group; j += 8)
        {
          float32x4_t c0, c1;

          widen_s8 (vld1_s8 (codes + j), &c0, &c1);
          vst1q_f32 (y + j, vfmaq_n_f32 (vld1q_f32 (y + j), c0, wd));
          vst1q_f32 (y + j + 4, vfmaq_n_f32 (vld1q_f32 (y + j + 4), c1, wd));
        }
    }
}

void
rk_kvq4_axpy_neon (int            n,
                   int            group,
                   const uint8_t *codes,
                   const rk_fp16 *d,
                   const rk_fp16 *m,
                   float          w,
                   float         *y)
{
  int half = group / 2;
  int g, j;

  if (group % 16 != 0)
    {
      rk_kvq4_axpy_ref (n, group, codes, d, m, w, y);
      return;
    }
  for (g = 0; g < n / group; g++)
    {
      const uint8_t *c = codes + g * half;
      float *yg = y + g * group;
      float wd = w * rk_fp16_to_fp32 (d[g]);
      float32x4_t wm = vdupq_n_f32 (w * rk_fp16_to_fp32 (m[g]));

      for (j = 0; j < half; j += 8)
        {
          uint8x8_t b = vld1_u8 (c + j);
          float32x4_t l0, l1, h0, h1;

          widen_u8 (vand_u8 (b, vdup_n_u8 (0x0F)), &l0, &l1);
          widen_u8 (vshr_n_u8 (b, 4), &h0, &h1);
          vst1q_f32 (yg + j, vaddq_f32 (vld1q_f32 (yg + j), vfmaq_n_f32 (wm, l0, wd)));
          vst1q_f32 (yg + j + 4, vaddq_f32 (vld1q_f32 (yg + j + 4), vfmaq_n_f32 (wm, l1, wd)));
          vst1q_f32 (yg + j + half, vaddq_f32 (vld1q_f32 (yg + j + half),
                                               vfmaq_n_f32 (wm, h0, wd)));
          vst1q_f32 (yg + j + half + 4, vaddq_f32 (vld1q_f32 (yg + j + half + 4),
                                                   vfmaq_n_f32 (wm, h1, wd)));
        }
    }
}

void
rk_kvf16_axpy_neon (int            n,
                    const rk_fp16 *x,
                    float          w,
                    float         *y)
{
  int i;

  for (i = 0; i + 4 <= n; i += 4)
    vst1q_f32 (y + i, vfmaq_n_f32 (vld1q_f32 (y + i), load_f16x4 (x + i), w));
  for (; i < n; i++)
    y[i] += w * rk_fp16_to_fp32 (x[i]);
}
