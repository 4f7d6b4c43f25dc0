/* q4_1.c — Q4_1 blocks (w = d * q + m): quantize, dequantize, dot with Q8_1.
 * SPDX-License-Identifier: MIT
 */
#include <float.h>

#include "quant-legacy.h"

/* ggml rounds x * id and then adds the offset as two float operations. GCC
 * contracts across statements by default (and aarch64 always has FMA), which
 * would change a few codes; keep the two roundings so rows stay byte-identical. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("fp-contract=off")
#endif

/* Per block of 32: m = min, d = (max - min) / 15, q = min (15, (int8) ((x - m) / d + 0.5)). */
void
rk_quantize_row_q4_1_ref (const float *x, void *vy, int64_t k)
{
  uint8_t *y = vy;
  const int64_t nb = k / RK_QK4_1;

  assert (k % RK_QK4_1 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      const float *xb = x + i * RK_QK4_1;
      rk_block_q4_1 b;
      float min = FLT_MAX;
      float max = -FLT_MAX;
      float d, id;

      for (int j = 0; j < RK_QK4_1; j++)
        {
          if (xb[j] < min)
            min = xb[j];
          if (xb[j] > max)
            max = xb[j];
        }
      d = (max - min) / 15;
      id = d != 0.0f ? 1.0f / d : 0.0f;
      b.d = rk_fp32_to_fp16 (d);
      b.m = rk_fp32_to_fp16 (min);
      for (int j = 0; j < RK_QK4_1 / 2; j++)
        {
          const float x0 = (xb[j] - min) * id;
          const float x1 = (xb[j + RK_QK4_1 / 2] - min) * id;
          const uint8_t q0 = RK_MIN (15, (int8_t) (x0 + 0.5f));
          const uint8_t q1 = RK_MIN (15, (int8_t) (x1 + 0.5f));

          b.qs[j] = (uint8_t) (q0 | (q1 << 4));
        }
      memcpy (y + i * sizeof b, &b, sizeof b);
    }
}

void
rk_dequantize_row_q4_1_ref (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK4_1;

  assert (k % RK_QK4_1 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      rk_block_q4_1 b;
      float d, m;

      memcpy (&b, x + i * sizeof b, sizeof b);
      d = rk_fp16_to_fp32 (b.d);
      m = rk_fp16_to_fp32 (b.m);
      for (int j = 0; j < RK_QK4_1 / 2; j++)
        {
          y[i * RK_QK4_1 + j] = (b.qs[j] & 0x0F) * d + m;
          y[i * RK_QK4_1 + j + RK_QK4_1 / 2] = (b.qs[j] >> 4) * d + m;
        }
    }
}

/* sum_j (d_x q_j + m)(d_y p_j) = d_x d_y sum q_j p_j + m * s_y, with s_y = d_y sum p_j. */
float
rk_vec_dot_q4_1_q8_1_ref (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_1;
  float sumf = 0.0f;

  assert (n % RK_QK8_1 == 0);
  for (int i = 0; i < nb; i++)
    {
      rk_block_q4_1 bx;
      rk_block_q8_1 by;
      int sumi = 0;

      memcpy (&bx, x + i * sizeof bx, sizeof bx);
      memcpy (&by, y + i * sizeof by, sizeof by);
      for (int j = 0; j < RK_QK4_1 / 2; j++)
        {
          sumi += (bx.qs[j] & 0x0F) * by.qs[j];
          sumi += (bx.qs[j] >> 4) * by.qs[j + RK_QK4_1 / 2];
        }
      sumf += (rk_fp16_to_fp32 (bx.d) * rk_fp16_to_fp32 (by.d)) * sumi
              + rk_fp16_to_fp32 (bx.m) * rk_fp16_to_fp32 (by.s);
    }
  return sumf;
}
