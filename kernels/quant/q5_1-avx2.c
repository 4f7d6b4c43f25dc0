/* q5_1-avx2.c — Q5_1 with AVX2: dequantize and the dot with Q8_1.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>

#include "quant-legacy-avx2.h"

#define QH offsetof (rk_block_q5_1, qh)
#define QS offsetof (rk_block_q5_1, qs)

/* The 32 unsigned codes 0..31 of a block: nibble | (bit ? 0x10 : 0). */
static inline __m256i
q5_1_codes (const uint8_t *b)
{
  const __m256i hi = _mm256_and_si256 (rk_bits_to_bytes_avx2 (rk_load_u32 (b + QH)),
                                       _mm256_set1_epi8 (0x10));

  return _mm256_or_si256 (rk_nibbles_avx2 (b + QS), hi);
}

/* Weights are quantized offline (rk-quantize, model conversion), where being
 * byte-identical to llama-quantize matters more than speed: use the reference. */
void
rk_quantize_row_q5_1_avx2 (const float *x, void *y, int64_t k)
{
  rk_quantize_row_q5_1_ref (x, y, k);
}

void
rk_dequantize_row_q5_1_avx2 (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK5_1;

  for (int64_t i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q5_1);

      rk_store_u8_affine_avx2 (q5_1_codes (b), _mm256_set1_ps (rk_load_fp16_avx2 (b)),
                               _mm256_set1_ps (rk_load_fp16_avx2 (b + 2)), y + i * RK_QK5_1);
    }
}

float
rk_vec_dot_q5_1_q8_1_avx2 (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_1;
  __m256 acc = _mm256_setzero_ps ();
  float summs = 0.0f;

  for (int i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + i * sizeof (rk_block_q5_1);
      const uint8_t *by = y + i * sizeof (rk_block_q8_1);
      const __m256 d = _mm256_set1_ps (rk_load_fp16_avx2 (bx) * rk_load_fp16_avx2 (by));
      const __m256i qy = rk_loadu_256 (by + offsetof (rk_block_q8_1, qs));

      summs += rk_load_fp16_avx2 (bx + 2) * rk_load_fp16_avx2 (by + 2);
      acc = _mm256_fmadd_ps (d, rk_dot_u8_i8_avx2 (q5_1_codes (bx), qy), acc);
    }
  return rk_hsum_ps_avx2 (acc) + summs;
}
