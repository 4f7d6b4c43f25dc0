/* q5_1.c — Q5_1 blocks (w = d * q + m): quantize, dequantize, dot with Q8_1.
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

static inline int
q5_code (const uint8_t *qs, uint32_t qh, int j)
{
  const int lo = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);

  return lo | (int) (((qh >> j) & 1) << 4);
}

/* As Q4_1 with 5 bits: d = (max - min) / 31, q = (uint8) ((x - m) / d + 0.5)
 * (ggml clamps nothing here: the largest code is 31 by construction). */
void
rk_quantize_row_q5_1_ref (const float *x, void *vy, int64_t k)
{
  uint8_t *y = vy;
  const int64_t nb = k / RK_QK5_1;

  assert (k % RK_QK5_1 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      const float *xb = x + i * RK_QK5_1;
      rk_block_q5_1 b;
      float min = FLT_MAX;
      float max = -FLT_MAX;
      uint32_t qh = 0;
      float d, id;

      for (int j = 0; j < RK_QK5_1; j++)
        {
          if (xb[j] < min)
            min = xb[j];
          if (xb[j] > max)
            max = xb[j];
        }
      d = (max - min) / 31;
      id = d != 0.0f ? 1.0f / d : 0.0f;
      b.d = rk_fp32_to_fp16 (d);
      b.m = rk_fp32_to_fp16 (min);
      for (int j = 0; j < RK_QK5_1 / 2; j++)
        {
          const float x0 = (xb[j] - min) * id;
          const float x1 = (xb[j + RK_QK5_1 / 2] - min) * id;
          const uint8_t q0 = (uint8_t) (x0 + 0.5f);
          const uint8_t q1 = (uint8_t) (x1 + 0.5f);

          b.qs[j] = (uint8_t) ((q0 & 0x0F) | ((q1 & 0x0F) << 4));
          qh |= (uint32_t) ((q0 & 0x10) >> 4) << j;
          qh |= (uint32_t) ((q1 & 0x10) >> 4) << (j + RK_QK5_1 / 2);
        }
      memcpy (b.qh, &qh, sizeof qh);
      memcpy (y + i * sizeof b, &b, sizeof b);
    }
}

void
rk_dequantize_row_q5_1_ref (const void *vx, float *y, int64_t k)
{
  const uint8_t *x = vx;
  const int64_t nb = k / RK_QK5_1;

  assert (k % RK_QK5_1 == 0);
  for (int64_t i = 0; i < nb; i++)
    {
      rk_block_q5_1 b;
      uint32_t qh;
      float d, m;

      memcpy (&b, x + i * sizeof b, sizeof b);
      memcpy (&qh, b.qh, sizeof qh);
      d = rk_fp16_to_fp32 (b.d);
      m = rk_fp16_to_fp32 (b.m);
      for (int j = 0; j < RK_QK5_1; j++)
        y[i * RK_QK5_1 + j] = q5_code (b.qs, qh, j) * d + m;
    }
}

float
rk_vec_dot_q5_1_q8_1_ref (int n, const void *vx, const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  const int nb = n / RK_QK8_1;
  float sumf = 0.0f;

  assert (n % RK_QK8_1 == 0);
  for (int i = 0; i < nb; i++)
    {
      rk_block_q5_1 bx;
      rk_block_q8_1 by;
      uint32_t qh;
      int sumi = 0;

      memcpy (&bx, x + i * sizeof bx, sizeof bx);
      memcpy (&by, y + i * sizeof by, sizeof by);
      memcpy (&qh, bx.qh, sizeof qh);
      for (int j = 0; j < RK_QK5_1; j++)
        sumi += q5_code (bx.qs, qh, j) * by.qs[j];
      sumf += (rk_fp16_to_fp32 (bx.d) * rk_fp16_to_fp32 (by.d)) * sumi
              + rk_fp16_to_fp32 (bx.m) * rk_fp16_to_fp32 (by.s);
    }
  return sumf;
}
