/* q5_0.c — Q5_0 blocks (w = d * (q - 16)): quantize, dequantize, dot with Q8_0.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy.h"

/* ggml rounds x * id and then adds the offset as two float operations. GCC
 * contracts across statements by default (and aarch64 always has FMA), which
 * would change a few codes; keep the two roundings so rows stay byte-identical. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("fp-contract=off")
#endif

/* 5-bit code of element j (0..31) of a block: low nibble from qs, bit 4 from qh. */
static inline int
q5_code (const uint8_t *qs, uint32_t qh, int j)
{
  const int lo = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);

  return lo | (int) (((qh >> j) & 1) << 4);
}

/* As Q4_0 with 5 bits: d = max / -16, q = min (31, (int8) (x / d + 16.5)). */
void
rk_quantize_row_q5_0_ref (const float *x, void *vy, int64_t k)
{
  uint8_t *y = vy;
  const int64_t nb = k / RK_QK5_0;

  assert (k % RK_QK5_0 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      const float *xb = x + i * RK_QK5_0;
      rk_block_q5_0 b;
      float amax = 0.0f;
      float max = 0.0f;
      uint32_t qh = 0;
      float d, id;

      for (int j = 0; j < RK_QK5_0; j++)
        if (amax < fabsf (xb[j]))
          {
            amax = fabsf (xb[j]);
            max = xb[j];
          }
      d = max / -16;
      id = d != 0.0f ? 1.0f / d : 0.0f;
      b.d = rk_fp32_to_fp16 (d);
      for (int j = 0; j < RK_QK5_0 / 2; j++)
        {
          const float x0 = xb[j] * id;
          const float x1 = xb[j + RK_QK5_0 / 2] * id;
          const uint8_t q0 = RK_MIN (31, (int8_t) (x0 + 16.5f));
          const uint8_t q1 = RK_MIN (31, (int8_t) (x1 + 16.5f));

          b.qs[j] = (uint8_t) ((q0 & 0x0F) | ((q1 & 0x0F) << 4));
          qh |= (uint32_t) (q0 >> 4) << j;
          qh |= (uint32_t) (q1 >> 4) << (j + RK_QK5_0 / 2);
        }
      memcpy (b.qh, &qh, sizeof qh);
      memcpy (y + i * sizeof b, &b, sizeof b);
    }
}

void
rk_dequantize_row_q5_0_ref (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK5_0;

  assert (k % RK_QK5_0 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      rk_block_q5_0 b;
      uint32_t qh;
      float d;

      memcpy (&b, x + i * sizeof b, sizeof b);
      memcpy (&qh, b.qh, sizeof qh);
      d = rk_fp16_to_fp32 (b.d);
      for (int j = 0; j < RK_QK5_0; j++)
        y[i * RK_QK5_0 + j] = (q5_code (b.qs, qh, j) - 16) * d;
    }
}

float
rk_vec_dot_q5_0_q8_0_ref (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_0;
  float sumf = 0.0f;

  assert (n % RK_QK8_0 == 0);
  for (int i = 0; i < nb; i++)
    {
      rk_block_q5_0 bx;
      rk_block_q8_0 by;
      uint32_t qh;
      int sumi = 0;

      memcpy (&bx, x + i * sizeof bx, sizeof bx);
      memcpy (&by, y + i * sizeof by, sizeof by);
      memcpy (&qh, bx.qh, sizeof qh);
      for (int j = 0; j < RK_QK5_0; j++)
        sumi += (q5_code (bx.qs, qh, j) - 16) * by.qs[j];
      sumf += (rk_fp16_to_fp32 (bx.d) * rk_fp16_to_fp32 (by.d)) * sumi;
    }
  return sumf;
}
