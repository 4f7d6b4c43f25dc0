/* quant-legacy-neon.h — NEON building blocks of the legacy quant kernels
 * (included only by *-neon.c; baseline ARMv8.0 Advanced SIMD, dotprod optional).
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <arm_neon.h>

#include "quant-legacy.h"

/* Half at an arbitrary address, as float (one fcvt). */
static inline float
rk_load_fp16_neon (const uint8_t *p)
{
  __fp16 h;

  memcpy (&h, p, sizeof h);
  return (float) h;
}

/* Lane-wise partial sums of x0 * y0 + x1 * y1 (32 int8 products). Without
 * dotprod: widening multiplies to int16 (|x y| <= 128 * 127 fits) and pairwise
 * widening adds to int32. */
static inline int32x4_t
rk_dot_i8x32_neon (int8x16_t x0, int8x16_t x1, int8x16_t y0, int8x16_t y1)
{
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32 (vdotq_s32 (vdupq_n_s32 (0), x0, y0), x1, y1);
#else
  int32x4_t a = vpaddlq_s16 (vmull_s8 (vget_low_s8 (x0), vget_low_s8 (y0)));

  a = vpadalq_s16 (a, vmull_s8 (vget_high_s8 (x0), vget_high_s8 (y0)));
  a = vpadalq_s16 (a, vmull_s8 (vget_low_s8 (x1), vget_low_s8 (y1)));
  a = vpadalq_s16 (a, vmull_s8 (vget_high_s8 (x1), vget_high_s8 (y1)));
  return a;
#endif
}

/* 16 bits (from bit 0 of `bits`) -> 16 bytes, 0xFF where the bit is set. */
static inline uint8x16_t
rk_bits_to_bytes_neon (uint32_t bits)
{
  static const uint8_t sel[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
  const uint8x16_t b = vcombine_u8 (vdup_n_u8 ((uint8_t) bits), vdup_n_u8 ((uint8_t) (bits >> 8)));

  return vtstq_u8 (b, vld1q_u8 (sel));
}

/* 16 signed bytes times d -> y[0..15]. */
static inline void
rk_store_i8_scaled_neon (int8x16_t q, float d, float *y)
{
  const int16x8_t lo = vmovl_s8 (vget_low_s8 (q));
  const int16x8_t hi = vmovl_s8 (vget_high_s8 (q));

  vst1q_f32 (y + 0, vmulq_n_f32 (vcvtq_f32_s32 (vmovl_s16 (vget_low_s16 (lo))), d));
  vst1q_f32 (y + 4, vmulq_n_f32 (vcvtq_f32_s32 (vmovl_s16 (vget_high_s16 (lo))), d));
  vst1q_f32 (y + 8, vmulq_n_f32 (vcvtq_f32_s32 (vmovl_s16 (vget_low_s16 (hi))), d));
  vst1q_f32 (y + 12, vmulq_n_f32 (vcvtq_f32_s32 (vmovl_s16 (vget_high_s16 (hi))), d));
}

/* 16 unsigned codes -> q * d + m (multiply, then add: the reference's two roundings). */
static inline void
rk_store_u8_affine_neon (uint8x16_t q, float d, float m, float *y)
{
  const uint16x8_t lo = vmovl_u8 (vget_low_u8 (q));
  const uint16x8_t hi = vmovl_u8 (vget_high_u8 (q));
  const uint16x4_t parts[4] = { vget_low_u16 (lo), vget_high_u16 (lo),
                                vget_low_u16 (hi), vget_high_u16 (hi) };

  for (int p = 0; p < 4; p++)
    {
      const float32x4_t f = vcvtq_f32_u32 (vmovl_u16 (parts[p]));

      vst1q_f32 (y + 4 * p, vaddq_f32 (vmulq_n_f32 (f, d), vdupq_n_f32 (m)));
    }
}

static inline float
rk_amax_32_neon (const float *x)
{
  float32x4_t m = vabsq_f32 (vld1q_f32 (x));

  for (int p = 1; p < 8; p++)
    m = vmaxq_f32 (m, vabsq_f32 (vld1q_f32 (x + 4 * p)));
  return vmaxvq_f32 (m);
}

/* q = roundf (x * id) for 32 floats, byte-identical to the reference: fcvtas
 * rounds to nearest with ties away from zero, exactly as roundf. */
static inline int
rk_quantize_32_q8_neon (const float *x, float id, int8_t *q)
{
  int32x4_t sum = vdupq_n_s32 (0);

  for (int p = 0; p < 4; p++)
    {
      const int32x4_t a = vcvtaq_s32_f32 (vmulq_n_f32 (vld1q_f32 (x + 8 * p), id));
      const int32x4_t b = vcvtaq_s32_f32 (vmulq_n_f32 (vld1q_f32 (x + 8 * p + 4), id));
      const int16x8_t h = vcombine_s16 (vmovn_s32 (a), vmovn_s32 (b));

      sum = vaddq_s32 (sum, vaddq_s32 (a, b));
      vst1_s8 (q + 8 * p, vmovn_s16 (h));
    }
  return vaddvq_s32 (sum);
}
