/* q8_0-neon.c — Q8_0 with NEON: quantize (activations, every matmul),
 * dequantize, and the dot with Q8_0.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>

#include "quant-legacy-neon.h"

#define QS offsetof (rk_block_q8_0, qs)

/* Byte-identical to rk_quantize_row_q8_0_ref. */
void
rk_quantize_row_q8_0_neon (const float *x, void *vy, int64_t k)
{
  uint8_t *y = vy;
  const int64_t nb = k / RK_QK8_0;

  for (int64_t i = 0; i < nb; i++)
    {
      const float *xb = x + i * RK_QK8_0;
      uint8_t *b = y + i * sizeof (rk_block_q8_0);
      const float d = rk_amax_32_neon (xb) / 127;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const rk_fp16 dh = rk_fp32_to_fp16 (d);

      memcpy (b, &dh, sizeof dh);
      rk_quantize_32_q8_neon (xb, id, (int8_t *) (b + QS));
    }
}

void
rk_dequantize_row_q8_0_neon (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK8_0;

  for (int64_t i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q8_0);
      const int8_t *q = (const int8_t *) (b + QS);
      const float d = rk_load_fp16_neon (b);

      rk_store_i8_scaled_neon (vld1q_s8 (q), d, y + i * RK_QK8_0);
      rk_store_i8_scaled_neon (vld1q_s8 (q + 16), d, y + i * RK_QK8_0 + 16);
    }
}

float
rk_vec_dot_q8_0_q8_0_neon (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_0;
  float32x4_t acc = vdupq_n_f32 (0);

  for (int i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + i * sizeof (rk_block_q8_0);
      const uint8_t *by = y + i * sizeof (rk_block_q8_0);
      const int8_t *qx = (const int8_t *) (bx + QS);
      const int8_t *qy = (const int8_t *) (by + QS);
      const int32x4_t p = rk_dot_i8x32_neon (vld1q_s8 (qx), vld1q_s8 (qx + 16),
                                             vld1q_s8 (qy), vld1q_s8 (qy + 16));

      acc = vfmaq_n_f32 (acc, vcvtq_f32_s32 (p), rk_load_fp16_neon (bx) * rk_load_fp16_neon (by));
    }
  return vaddvq_f32 (acc);
}
