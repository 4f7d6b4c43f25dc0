/* q4_1-neon.c — Q4_1 with NEON: dequantize and the dot with Q8_1.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>

#include "quant-legacy-neon.h"

#define QS offsetof (rk_block_q4_1, qs)

/* Weights are quantized offline (rk-quantize, model conversion), where being
 * byte-identical to llama-quantize matters more than speed: use the reference. */
void
rk_quantize_row_q4_1_neon (const float *x, void *y, int64_t k)
{
  rk_quantize_row_q4_1_ref (x, y, k);
}

void
rk_dequantize_row_q4_1_neon (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK4_1;

  for (int64_t i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q4_1);
      const uint8x16_t v = vld1q_u8 (b + QS);
      const float d = rk_load_fp16_neon (b);
      const float m = rk_load_fp16_neon (b + 2);

      rk_store_u8_affine_neon (vandq_u8 (v, vdupq_n_u8 (0x0F)), d, m, y + i * RK_QK4_1);
      rk_store_u8_affine_neon (vshrq_n_u8 (v, 4), d, m, y + i * RK_QK4_1 + 16);
    }
}

float
rk_vec_dot_q4_1_q8_1_neon (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_1;
  float32x4_t acc = vdupq_n_f32 (0);
  float summs = 0.0f;

  for (int i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + i * sizeof (rk_block_q4_1);
      const uint8_t *by = y + i * sizeof (rk_block_q8_1);
      const int8_t *qy = (const int8_t *) (by + offsetof (rk_block_q8_1, qs));
      const uint8x16_t v = vld1q_u8 (bx + QS);
      const int8x16_t lo = vreinterpretq_s8_u8 (vandq_u8 (v, vdupq_n_u8 (0x0F)));
      const int8x16_t hi = vreinterpretq_s8_u8 (vshrq_n_u8 (v, 4));
      const int32x4_t p = rk_dot_i8x32_neon (lo, hi, vld1q_s8 (qy), vld1q_s8 (qy + 16));

      summs += rk_load_fp16_neon (bx + 2) * rk_load_fp16_neon (by + 2);
      acc = vfmaq_n_f32 (acc, vcvtq_f32_s32 (p), rk_load_fp16_neon (bx) * rk_load_fp16_neon (by));
    }
  return vaddvq_f32 (acc) + summs;
}
