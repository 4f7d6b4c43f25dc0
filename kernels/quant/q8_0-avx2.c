/* q8_0-avx2.c — Q8_0 with AVX2: quantize (activations, every matmul),
 * dequantize, and the dot with Q8_0.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>

#include "quant-legacy-avx2.h"

#define QS offsetof (rk_block_q8_0, qs)

/* Byte-identical to rk_quantize_row_q8_0_ref: the same amax, d, id and roundf. */
void
rk_quantize_row_q8_0_avx2 (const float *x, void *vy, int64_t k)
{
  uint8_t *y = vy;
  const int64_t nb = k / RK_QK8_0;

  for (int64_t i = 0; i < nb; i++)
    {
      const float *xb = x + i * RK_QK8_0;
      uint8_t *b = y + i * sizeof (rk_block_q8_0);
      const float d = rk_amax_32_avx2 (xb) / 127;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const rk_fp16 dh = rk_fp32_to_fp16 (d);
      int sum;
      const __m256i q = rk_quantize_32_q8_avx2 (xb, id, &sum);

      memcpy (b, &dh, sizeof dh);
      _mm256_storeu_si256 ((__m256i *) (void *) (b + QS), q);
    }
}

void
rk_dequantize_row_q8_0_avx2 (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK8_0;

  for (int64_t i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q8_0);

      rk_store_i8_scaled_avx2 (rk_loadu_256 (b + QS), _mm256_set1_ps (rk_load_fp16_avx2 (b)),
                               y + i * RK_QK8_0);
    }
}

float
rk_vec_dot_q8_0_q8_0_avx2 (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_0;
  __m256 acc = _mm256_setzero_ps ();

  for (int i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + i * sizeof (rk_block_q8_0);
      const uint8_t *by = y + i * sizeof (rk_block_q8_0);
      const __m256 d = _mm256_set1_ps (rk_load_fp16_avx2 (bx) * rk_load_fp16_avx2 (by));

      acc = _mm256_fmadd_ps (d, rk_dot_i8_avx2 (rk_loadu_256 (bx + QS), rk_loadu_256 (by + QS)),
                             acc);
    }
  return rk_hsum_ps_avx2 (acc);
}
