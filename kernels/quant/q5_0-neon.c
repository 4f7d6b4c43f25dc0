/* q5_0-neon.c — Q5_0 with NEON: dequantize and the dot with Q8_0.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>

#include "quant-legacy-neon.h"

#define QH offsetof (rk_block_q5_0, qh)
#define QS offsetof (rk_block_q5_0, qs)

/* Values q - 16: nibble | (bit ? 0 : 0xF0) read as int8. */
static inline void
q5_0_values (const uint8_t *b, int8x16_t *lo, int8x16_t *hi)
{
  const uint32_t qh = rk_load_u32 (b + QH);
  const uint8x16_t v = vld1q_u8 (b + QS);
  const uint8x16_t f0 = vdupq_n_u8 (0xF0);
  const uint8x16_t hl = vbicq_u8 (f0, rk_bits_to_bytes_neon (qh));
  const uint8x16_t hh = vbicq_u8 (f0, rk_bits_to_bytes_neon (qh >> 16));

  *lo = vreinterpretq_s8_u8 (vorrq_u8 (vandq_u8 (v, vdupq_n_u8 (0x0F)), hl));
  *hi = vreinterpretq_s8_u8 (vorrq_u8 (vshrq_n_u8 (v, 4), hh));
}

/* Weights are quantized offline (rk-quantize, model conversion), where being
 * byte-identical to llama-quantize matters more than speed: use the reference. */
void
rk_quantize_row_q5_0_neon (const float *x, void *y, int64_t k)
{
  rk_quantize_row_q5_0_ref (x, y, k);
}

void
rk_dequantize_row_q5_0_neon (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK5_0;

  for (int64_t i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q5_0);
      const float d = rk_load_fp16_neon (b);
      int8x16_t lo, hi;

      q5_0_values (b, &lo, &hi);
      rk_store_i8_scaled_neon (lo, d, y + i * RK_QK5_0);
      rk_store_i8_scaled_neon (hi, d, y + i * RK_QK5_0 + 16);
    }
}

float
rk_vec_dot_q5_0_q8_0_neon (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_0;
  float32x4_t acc = vdupq_n_f32 (0);

  for (int i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + i * sizeof (rk_block_q5_0);
      const uint8_t *by = y + i * sizeof (rk_block_q8_0);
      const int8_t *qy = (const int8_t *) (by + offsetof (rk_block_q8_0, qs));
      int8x16_t lo, hi;
      int32x4_t p;

      q5_0_values (bx, &lo, &hi);
      p = rk_dot_i8x32_neon (lo, hi, vld1q_s8 (qy), vld1q_s8 (qy + 16));
      acc = vfmaq_n_f32 (acc, vcvtq_f32_s32 (p), rk_load_fp16_neon (bx) * rk_load_fp16_neon (by));
    }
  return vaddvq_f32 (acc);
}
