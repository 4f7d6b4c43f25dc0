/* q8_1.c — Q8_1 blocks (w = d * q, s = d * sum q): the activations of Q4_1/Q5_1.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy.h"

/* As Q8_0, plus s = fp16 (d * sum (q)) so a dot with Q4_1/Q5_1 gets the
 * min term m * sum (y) for free. */
void
rk_quantize_row_q8_1_ref (const float *x, void *vy, int64_t k)
{
  uint8_t *y = vy;
  const int64_t nb = k / RK_QK8_1;

  assert (k % RK_QK8_1 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      const float *xb = x + i * RK_QK8_1;
      rk_block_q8_1 b;
      float amax = 0.0f;
      int sum = 0;
      float d, id;

      for (int j = 0; j < RK_QK8_1; j++)
        amax = RK_MAX (amax, fabsf (xb[j]));
      d = amax / 127;
      id = d != 0.0f ? 1.0f / d : 0.0f;
      b.d = rk_fp32_to_fp16 (d);
      for (int j = 0; j < RK_QK8_1; j++)
        {
          b.qs[j] = (int8_t) roundf (xb[j] * id);
          sum += b.qs[j];
        }
      b.s = rk_fp32_to_fp16 (sum * d);
      memcpy (y + i * sizeof b, &b, sizeof b);
    }
}

void
rk_dequantize_row_q8_1_ref (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK8_1;

  assert (k % RK_QK8_1 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      rk_block_q8_1 b;
      float d;

      memcpy (&b, x + i * sizeof b, sizeof b);
      d = rk_fp16_to_fp32 (b.d);
      for (int j = 0; j < RK_QK8_1; j++)
        y[i * RK_QK8_1 + j] = b.qs[j] * d;
    }
}
