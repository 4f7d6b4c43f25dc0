/* q4_K.c — Q4_K reference kernels: quantize (as llama-quantize), dequantize, dot with Q8_K.
 * SPDX-License-Identifier: MIT
 *
 * Block (144 bytes, 256 values): d, dmin (fp16), 12 bytes of packed 6-bit
 * scales/mins for 8 sub-blocks of 32, 128 bytes of nibbles. Value
 * w = d * sc[j] * q - dmin * m[j], q in 0..15. In every 64 values, the first
 * 32 are the low nibbles of 32 bytes and the next 32 their high nibbles.
 */
#include <assert.h>

#include "k-quants.h"

/* Nibble l (0..31) of sub-block j (0..7). */
static inline int
q4_K_value (const rk_block_q4_K *b,
            int                  j,
            int                  l)
{
  return (b->qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF;
}

void
rk_quantize_row_q4_K_ref (const float *x,
                          void        *vy,
                          int64_t      k)
{
  uint8_t *y = vy;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      rk_block_q4_K b;
      uint8_t L[RK_QK_K];
      int j, l;

      rk_k_quantize_scale_min (x + i * RK_QK_K, 15, -1.f, 0.1f, 20, L, b.scales, &b.d, &b.dmin);
      for (j = 0; j < RK_QK_K / 64; j++)
        for (l = 0; l < 32; l++)
          b.qs[32 * j + l] = (uint8_t) (L[64 * j + l] | (L[64 * j + 32 + l] << 4));
      memcpy (y + i * sizeof b, &b, sizeof b);
    }
}

void
rk_dequantize_row_q4_K_ref (const void *vx,
                            float      *y,
                            int64_t     k)
{
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      rk_block_q4_K b;
      float d, dmin;
      int j, l;

      memcpy (&b, x + i * sizeof b, sizeof b);
      d = rk_fp16_to_fp32 (b.d);
      dmin = rk_fp16_to_fp32 (b.dmin);
      for (j = 0; j < RK_QK_K / 32; j++)
        {
          uint8_t sc, m;
          float dj, mj;

          rk_k4_scale_min (j, b.scales, &sc, &m);
          dj = d * sc;
          mj = dmin * m;
          for (l = 0; l < 32; l++)
            *y++ = dj * q4_K_value (&b, j, l) - mj;
        }
    }
}

/* Per block: an exact integer sum per sub-block times its 6-bit scale, and
 * the mins folded in through q8_K's bsums (sum of 16 activations each):
 * dot = d*dy * sum_j sc_j * (q . q8)_j  -  dmin*dy * sum_j m_j * (bsum_2j + bsum_2j+1). */
float
rk_vec_dot_q4_K_q8_K_ref (int         n,
                          const void *vx,
                          const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  int nb = n / RK_QK_K, i;
  float sumf = 0;

  assert (n % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      rk_block_q4_K bx;
      rk_block_q8_K by;
      int32_t sumi = 0, summ = 0;
      int j, l;

      memcpy (&bx, x + (size_t) i * sizeof bx, sizeof bx);
      memcpy (&by, y + (size_t) i * sizeof by, sizeof by);
      for (j = 0; j < RK_QK_K / 32; j++)
        {
          uint8_t sc, m;
          int32_t s = 0;

          rk_k4_scale_min (j, bx.scales, &sc, &m);
          for (l = 0; l < 32; l++)
            s += q4_K_value (&bx, j, l) * by.qs[32 * j + l];
          sumi += sc * s;
          summ += m * (by.bsums[2 * j] + by.bsums[2 * j + 1]);
        }
      sumf += rk_fp16_to_fp32 (bx.d) * by.d * (float) sumi
              - rk_fp16_to_fp32 (bx.dmin) * by.d * (float) summ;
    }
  return sumf;
}
