/* q4_0-neon.c — Q4_0 with NEON: dequantize and the dot with Q8_0.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>

#include "quant-legacy-neon.h"

#define QS offsetof (rk_block_q4_0, qs)

/* Elements 0..15 (low nibbles) and 16..31 (high nibbles), minus 8. */
static inline void
q4_0_values (const uint8_t *b, int8x16_t *lo, int8x16_t *hi)
{
  const uint8x16_t v = vld1q_u8 (b + QS);

  *lo = vsubq_s8 (vreinterpretq_s8_u8 (vandq_u8 (v, vdupq_n_u8 (0x0F))), vdupq_n_s8 (8));
  *hi = vsubq_s8 (vreinterpretq_s8_u8 (vshrq_n_u8 (v, 4)), vdupq_n_s8 (8));
}

/* Weights are quantized offline (rk-quantize, model conversion), where being
 * byte-identical to llama-quantize matters more than speed: use the reference. */
void
rk_quantize_row_q4_0_neon (const float *x, void *y, int64_t k)
{
  rk_quantize_row_q4_0_ref (x, y, k);
}

void
rk_dequantize_row_q4_0_neon (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK4_0;

  for (int64_t i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q4_0);
      const float d = rk_load_fp16_neon (b);
      int8x16_t lo, hi;

      q4_0_values (b, &lo, &hi);
      rk_store_i8_scaled_neon (lo, d, y + i * RK_QK4_0);
      rk_store_i8_scaled_neon (hi, d, y + i * RK_QK4_0 + 16);
    }
}

float
rk_vec_dot_q4_0_q8_0_neon (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_0;
  float32x4_t acc = vdupq_n_f32 (0);

  for (int i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + i * sizeof (rk_block_q4_0);
      const uint8_t *by = y + i * sizeof (rk_block_q8_0);
      const int8_t *qy = (const int8_t *) (by + offsetof (rk_block_q8_0, qs));
      const float d = rk_load_fp16_neon (bx) * rk_load_fp16_neon (by);
      int8x16_t lo, hi;
      int32x4_t p;

      q4_0_values (bx, &lo, &hi);
      p = rk_dot_i8x32_neon (lo, hi, vld1q_s8 (qy), vld1q_s8 (qy + 16));
      acc = vfmaq_n_f32 (acc, vcvtq_f32_s32 (p), d);
    }
  return vaddvq_f32 (acc);
}
