/* q4_1-avx2.c — Q4_1 with AVX2: dequantize and the dot with Q8_1.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>

#include "quant-legacy-avx2.h"

#define QS offsetof (rk_block_q4_1, qs)

/* Weights are quantized offline (rk-quantize, model conversion), where being
 * byte-identical to llama-quantize matters more than speed: use the reference. */
void
rk_quantize_row_q4_1_avx2 (const float *x, void *y, int64_t k)
{
  rk_quantize_row_q4_1_ref (x, y, k);
}

void
rk_dequantize_row_q4_1_avx2 (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK4_1;

  for (int64_t i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q4_1);

      rk_store_u8_affine_avx2 (rk_nibbles_avx2 (b + QS),
                               _mm256_set1_ps (rk_load_fp16_avx2 (b)),
                               _mm256_set1_ps (rk_load_fp16_avx2 (b + 2)), y + i * RK_QK4_1);
    }
}

/* Codes are unsigned (0..15), so maddubs takes them directly; the min term
 * m_x * s_y is summed in a scalar beside the vector accumulator. */
float
rk_vec_dot_q4_1_q8_1_avx2 (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_1;
  __m256 acc = _mm256_setzero_ps ();
  float summs = 0.0f;

  for (int i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + i * sizeof (rk_block_q4_1);
      const uint8_t *by = y + i * sizeof (rk_block_q8_1);
      const __m256 d = _mm256_set1_ps (rk_load_fp16_avx2 (bx) * rk_load_fp16_avx2 (by));
      const __m256i qy = rk_loadu_256 (by + offsetof (rk_block_q8_1, qs));

      summs += rk_load_fp16_avx2 (bx + 2) * rk_load_fp16_avx2 (by + 2);
      acc = _mm256_fmadd_ps (d, rk_dot_u8_i8_avx2 (rk_nibbles_avx2 (bx + QS), qy), acc);
    }
  return rk_hsum_ps_avx2 (acc) + summs;
}
