/* q8_0.c — Q8_0 blocks (w = d * q): quantize, dequantize, dot with Q8_0.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy.h"

/* d = amax / 127, q = roundf (x / d) (ties away from zero), so q is in -127..127. */
void
rk_quantize_row_q8_0_ref (const float *x, void *vy, int64_t k)
{
  uint8_t *y = vy;
  const int64_t nb = k / RK_QK8_0;

  assert (k % RK_QK8_0 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      const float *xb = x + i * RK_QK8_0;
      rk_block_q8_0 b;
      float amax = 0.0f;
      float d, id;

      for (int j = 0; j < RK_QK8_0; j++)
        amax = RK_MAX (amax, fabsf (xb[j]));
      d = amax / 127;
      id = d != 0.0f ? 1.0f / d : 0.0f;
      b.d = rk_fp32_to_fp16 (d);
      for (int j = 0; j < RK_QK8_0; j++)
        b.qs[j] = (int8_t) roundf (xb[j] * id);
      memcpy (y + i * sizeof b, &b, sizeof b);
    }
}

void
rk_dequantize_row_q8_0_ref (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK8_0;

  assert (k % RK_QK8_0 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      rk_block_q8_0 b;
      float d;

      memcpy (&b, x + i * sizeof b, sizeof b);
      d = rk_fp16_to_fp32 (b.d);
      for (int j = 0; j < RK_QK8_0; j++)
        y[i * RK_QK8_0 + j] = b.qs[j] * d;
    }
}

float
rk_vec_dot_q8_0_q8_0_ref (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_0;
  float sumf = 0.0f;

  assert (n % RK_QK8_0 == 0);
  for (int i = 0; i < nb; i++)
    {
      rk_block_q8_0 bx;
      rk_block_q8_0 by;
      int sumi = 0;

      memcpy (&bx, x + i * sizeof bx, sizeof bx);
      memcpy (&by, y + i * sizeof by, sizeof by);
      for (int j = 0; j < RK_QK8_0; j++)
        sumi += bx.qs[j] * by.qs[j];
      sumf += sumi * (rk_fp16_to_fp32 (bx.d) * rk_fp16_to_fp32 (by.d));
    }
  return sumf;
}
