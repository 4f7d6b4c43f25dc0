/* q5_0-avx2.c — Q5_0 with AVX2: dequantize and the dot with Q8_0.
 * SPDX-License-Identifier: MIT
 */
#include <stddef.h>

#include "quant-legacy-avx2.h"

#define QH offsetof (rk_block_q5_0, qh)
#define QS offsetof (rk_block_q5_0, qs)

/* The 32 signed values q - 16 of a block: nibble | (bit ? 0 : 0xF0) read as
 * int8 is nibble - 16 when the fifth bit is clear and the nibble + 0 when set. */
static inline __m256i
q5_0_values (const uint8_t *b)
{
  const __m256i hi = _mm256_andnot_si256 (rk_bits_to_bytes_avx2 (rk_load_u32 (b + QH)),
                                          _mm256_set1_epi8 ((char) 0xF0));

  return _mm256_or_si256 (rk_nibbles_avx2 (b + QS), hi);
}

/* Weights are quantized offline (rk-quantize, model conversion), where being
 * byte-identical to llama-quantize matters more than speed: use the reference. */
void
rk_quantize_row_q5_0_avx2 (const float *x, void *y, int64_t k)
{
  rk_quantize_row_q5_0_ref (x, y, k);
}

void
rk_dequantize_row_q5_0_avx2 (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK5_0;

  for (int64_t i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q5_0);

      rk_store_i8_scaled_avx2 (q5_0_values (b), _mm256_set1_ps (rk_load_fp16_avx2 (b)),
                               y + i * RK_QK5_0);
    }
}

/* Two blocks per step into two accumulators: one chain of dependent FMAs
 * would hold the loop to one block per FMA latency. */
static inline __m256
dot_block_q5_0 (const uint8_t *bx,
                   const uint8_t *by,
                   __m256         acc)
{
  const __m256 d = _mm256_set1_ps (rk_load_fp16_avx2 (bx) * rk_load_fp16_avx2 (by));
  const __m256i qx = q5_0_values (bx);
  const __m256i qy = rk_loadu_256 (by + offsetof (rk_block_q8_0, qs));

  return _mm256_fmadd_ps (d, rk_dot_i8_avx2 (qx, qy), acc);
}

float
rk_vec_dot_q5_0_q8_0_avx2 (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_0;
  const size_t xs = sizeof (rk_block_q5_0), ys = sizeof (rk_block_q8_0);
  __m256 acc0 = _mm256_setzero_ps (), acc1 = _mm256_setzero_ps ();
  int i = 0;

  for (; i + 2 <= nb; i += 2)
    {
      acc0 = dot_block_q5_0 (x + (size_t) i * xs, y + (size_t) i * ys, acc0);
      acc1 = dot_block_q5_0 (x + (size_t) (i + 1) * xs, y + (size_t) (i + 1) * ys, acc1);
    }
  if (i < nb)
    acc0 = dot_block_q5_0 (x + (size_t) i * xs, y + (size_t) i * ys, acc0);
  return rk_hsum_ps_avx2 (_mm256_add_ps (acc0, acc1));
}
