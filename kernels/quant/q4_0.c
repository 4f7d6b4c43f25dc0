/* q4_0.c — Q4_0 blocks (w = d * (q - 8)): quantize, dequantize, dot with Q8_0.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy.h"

/* ggml rounds x * id and then adds the offset as two float operations. GCC
 * contracts across statements by default (and aarch64 always has FMA), which
 * would change a few codes; keep the two roundings so rows stay byte-identical. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("fp-contract=off")
#endif

/* Per block of 32: the value of largest magnitude, with its sign, maps to -8,
 * so d = max / -8 and q = min (15, (int8) (x / d + 8.5)). */
void
rk_quantize_row_q4_0_ref (const float *x, void *vy, int64_t k)
{
  uint8_t *y = vy;
  const int64_t nb = k / RK_QK4_0;

  assert (k % RK_QK4_0 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      const float *xb = x + i * RK_QK4_0;
      rk_block_q4_0 b;
      float amax = 0.0f;
      float max = 0.0f;
      float d, id;

      for (int j = 0; j < RK_QK4_0; j++)
        if (amax < fabsf (xb[j]))
          {
            amax = fabsf (xb[j]);
            max = xb[j];
          }
      d = max / -8;
      id = d != 0.0f ? 1.0f / d : 0.0f;
      b.d = rk_fp32_to_fp16 (d);
      for (int j = 0; j < RK_QK4_0 / 2; j++)
        {
          const float x0 = xb[j] * id;
          const float x1 = xb[j + RK_QK4_0 / 2] * id;
          const uint8_t q0 = RK_MIN (15, (int8_t) (x0 + 8.5f));
          const uint8_t q1 = RK_MIN (15, (int8_t) (x1 + 8.5f));

          b.qs[j] = (uint8_t) (q0 | (q1 << 4));
        }
      memcpy (y + i * sizeof b, &b, sizeof b);
    }
}

void
rk_dequantize_row_q4_0_ref (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK4_0;

  assert (k % RK_QK4_0 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      rk_block_q4_0 b;
      float d;

      memcpy (&b, x + i * sizeof b, sizeof b);
      d = rk_fp16_to_fp32 (b.d);
      for (int j = 0; j < RK_QK4_0 / 2; j++)
        {
          y[i * RK_QK4_0 + j] = ((b.qs[j] & 0x0F) - 8) * d;
          y[i * RK_QK4_0 + j + RK_QK4_0 / 2] = ((b.qs[j] >> 4) - 8) * d;
        }
    }
}

/* Exact integer dot per block, scaled by d_x * d_y; float sum over blocks. */
float
rk_vec_dot_q4_0_q8_0_ref (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_0;
  float sumf = 0.0f;

  assert (n % RK_QK8_0 == 0);
  for (int i = 0; i < nb; i++)
    {
      rk_block_q4_0 bx;
      rk_block_q8_0 by;
      int sumi = 0;

      memcpy (&bx, x + i * sizeof bx, sizeof bx);
      memcpy (&by, y + i * sizeof by, sizeof by);
      for (int j = 0; j < RK_QK4_0 / 2; j++)
        {
          sumi += ((bx.qs[j] & 0x0F) - 8) * by.qs[j];
          sumi += ((bx.qs[j] >> 4) - 8) * by.qs[j + RK_QK4_0 / 2];
        }
      sumf += sumi * (rk_fp16_to_fp32 (bx.d) * rk_fp16_to_fp32 (by.d));
    }
  return sumf;
}
