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

/* Two blocks per step into two accumulators: one chain of dependent FMAs
 * would hold the loop to one block per FMA latency. */
static inline __m256
dot_block_q8_0 (const uint8_t *bx,
                   const uint8_t *by,
                   __m256         acc)
{
  const __m256 d = _mm256_set1_ps (rk_load_fp16_avx2 (bx) * rk_load_fp16_avx2 (by));
  const __m256i qx = rk_loadu_256 (bx + QS);
  const __m256i qy = rk_loadu_256 (by + QS);

  return _mm256_fmadd_ps (d, rk_dot_i8_avx2 (qx, qy), acc);
}

float
rk_vec_dot_q8_0_q8_0_avx2 (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_0;
  const size_t xs = sizeof (rk_block_q8_0), ys = sizeof (rk_block_q8_0);
  __m256 acc0 = _mm256_setzero_ps (), acc1 = _mm256_setzero_ps ();
  int i = 0;

  for (; i + 2 <= nb; i += 2)
    {
      acc0 = dot_block_q8_0 (x + (size_t) i * xs, y + (size_t) i * ys, acc0);
      acc1 = dot_block_q8_0 (x + (size_t) (i + 1) * xs, y + (size_t) (i + 1) * ys, acc1);
    }
  if (i < nb)
    acc0 = dot_block_q8_0 (x + (size_t) i * xs, y + (size_t) i * ys, acc0);
  return rk_hsum_ps_avx2 (_mm256_add_ps (acc0, acc1));
}
