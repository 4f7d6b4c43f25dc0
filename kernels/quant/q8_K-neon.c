/* q8_K-neon.c — Q8_K with NEON: the activation quantizer run before every K-quant matmul.
 * SPDX-License-Identifier: MIT
 *
 * Byte-identical to rk_quantize_row_q8_K_ref: x * iscale is one rounding in
 * both and vcvtnq_s32_f32 rounds to nearest even as rk_nearest_int does.
 */
#include <assert.h>
#include <arm_neon.h>

#include "k-quants.h"

void
rk_quantize_row_q8_K_neon (const float *x,
                           void        *vy,
                           int64_t      k)
{
  uint8_t *y = vy;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++, x += RK_QK_K)
    {
      uint8_t *b = y + i * sizeof (rk_block_q8_K);
      int8_t *qs = (int8_t *) (b + offsetof (rk_block_q8_K, qs));
      int16_t bsums[RK_QK_K / 16];
      float32x4_t vmax = vdupq_n_f32 (0);
      float amax, max = 0, iscale, d;
      int j;

      for (j = 0; j < RK_QK_K; j += 4)
        vmax = vmaxq_f32 (vmax, vabsq_f32 (vld1q_f32 (x + j)));
      amax = vmaxvq_f32 (vmax);
      if (!amax)
        {
          memset (b, 0, sizeof (rk_block_q8_K));
          continue;
        }
      /* The first value of largest magnitude decides the sign of d. */
      for (j = 0; j < RK_QK_K; j++)
        if (x[j] == amax || x[j] == -amax)
          {
            max = x[j];
            break;
          }
      iscale = -127.f / max;

      for (j = 0; j < RK_QK_K; j += 16)
        {
          int32x4_t i0 = vcvtnq_s32_f32 (vmulq_n_f32 (vld1q_f32 (x + j), iscale));
          int32x4_t i1 = vcvtnq_s32_f32 (vmulq_n_f32 (vld1q_f32 (x + j + 4), iscale));
          int32x4_t i2 = vcvtnq_s32_f32 (vmulq_n_f32 (vld1q_f32 (x + j + 8), iscale));
          int32x4_t i3 = vcvtnq_s32_f32 (vmulq_n_f32 (vld1q_f32 (x + j + 12), iscale));
          int16x8_t h0 = vcombine_s16 (vqmovn_s32 (i0), vqmovn_s32 (i1));
          int16x8_t h1 = vcombine_s16 (vqmovn_s32 (i2), vqmovn_s32 (i3));
          int8x16_t q = vcombine_s8 (vqmovn_s16 (h0), vqmovn_s16 (h1));

          vst1q_s8 (qs + j, q);
          bsums[j / 16] = vaddlvq_s8 (q);
        }
      d = 1 / iscale;
      memcpy (b + offsetof (rk_block_q8_K, d), &d, sizeof d);
      memcpy (b + offsetof (rk_block_q8_K, bsums), bsums, sizeof bsums);
    }
}

void
rk_dequantize_row_q8_K_neon (const void *vx,
                             float      *y,
                             int64_t     k)
{
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++, y += RK_QK_K)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q8_K);
      const int8_t *qs = (const int8_t *) (b + offsetof (rk_block_q8_K, qs));
      const float d = rk_k_load_f32 (b + offsetof (rk_block_q8_K, d));
      int j;

      for (j = 0; j < RK_QK_K; j += 8)
        {
          int16x8_t q = vmovl_s8 (vld1_s8 (qs + j));

          vst1q_f32 (y + j, vmulq_n_f32 (vcvtq_f32_s32 (vmovl_s16 (vget_low_s16 (q))), d));
          vst1q_f32 (y + j + 4, vmulq_n_f32 (vcvtq_f32_s32 (vmovl_high_s16 (q)), d));
        }
    }
}
