/* q8_1-avx2.c — Q8_1 with AVX2: quantize (activations of Q4_1/Q5_1) and dequantize.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>

#include "quant-legacy-avx2.h"

#define QS offsetof (rk_block_q8_1, qs)

/* Byte-identical to rk_quantize_row_q8_1_ref (s from the exact integer sum). */
void
rk_quantize_row_q8_1_avx2 (const float *x, void *vy, int64_t k)
{
  uint8_t *y = vy;
  const int64_t nb = k / RK_QK8_1;

  for (int64_t i = 0; i < nb; i++)
    {
      const float *xb = x + i * RK_QK8_1;
      uint8_t *b = y + i * sizeof (rk_block_q8_1);
      const float d = rk_amax_32_avx2 (xb) / 127;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      rk_fp16 h[2];
      int sum;
      const __m256i q = rk_quantize_32_q8_avx2 (xb, id, &sum);

      h[0] = rk_fp32_to_fp16 (d);
      h[1] = rk_fp32_to_fp16 (sum * d);
      memcpy (b, h, sizeof h);
      _mm256_storeu_si256 ((__m256i *) (void *) (b + QS), q);
    }
}

void
rk_dequantize_row_q8_1_avx2 (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK8_1;

  for (int64_t i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q8_1);

      rk_store_i8_scaled_avx2 (rk_loadu_256 (b + QS), _mm256_set1_ps (rk_load_fp16_avx2 (b)),
                               y + i * RK_QK8_1);
    }
}
