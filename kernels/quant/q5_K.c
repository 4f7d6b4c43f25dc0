/* q5_K.c — Q5_K reference kernels: quantize (as llama-quantize), dequantize, dot with Q8_K.
 * SPDX-License-Identifier: MIT
 *
 * Block (176 bytes, 256 values): d, dmin (fp16), 12 bytes of packed 6-bit
 * scales/mins (as Q4_K), qh[32], qs[128]. Value w = d * sc[j] * q - dmin * m[j],
 * q in 0..31: the low 4 bits are laid out as Q4_K's nibbles, bit 4 of value l
 * of sub-block j is bit j of qh[l].
 */
#include <assert.h>

#include "k-quants.h"

/* Value l (0..31) of sub-block j (0..7). */
static inline int
q5_K_value (const rk_block_q5_K *b,
            int                  j,
            int                  l)
{
  return ((b->qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF) | (((b->qh[l] >> j) & 1) << 4);
}

void
rk_quantize_row_q5_K_ref (const float *x,
                          void        *vy,
                          int64_t      k)
{
  uint8_t *y = vy;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      rk_block_q5_K b;
      uint8_t L[RK_QK_K];
      int j, l;

      rk_k_quantize_scale_min (x + i * RK_QK_K, 31, -0.5f, 0.1f, 15, L, b.scales, &b.d, &b.dmin);
      memset (b.qh, 0, sizeof b.qh);
      for (j = 0; j < RK_QK_K / 64; j++)
        for (l = 0; l < 32; l++)
          {
            int lo = L[64 * j + l], hi = L[64 * j + 32 + l];

            b.qh[l] |= (uint8_t) (((lo >> 4) << (2 * j)) | ((hi >> 4) << (2 * j + 1)));
            b.qs[32 * j + l] = (uint8_t) ((lo & 0xF) | ((hi & 0xF) << 4));
          }
      memcpy (y + i * sizeof b, &b, sizeof b);
    }
}

void
rk_dequantize_row_q5_K_ref (const void *vx,
                            float      *y,
                            int64_t     k)
{
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      rk_block_q5_K b;
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
            *y++ = dj * q5_K_value (&b, j, l) - mj;
        }
    }
}

/* As Q4_K: exact integer sums per sub-block, mins through q8_K's bsums. */
float
rk_vec_dot_q5_K_q8_K_ref (int         n,
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
      rk_block_q5_K bx;
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
            s += q5_K_value (&bx, j, l) * by.qs[32 * j + l];
          sumi += sc * s;
          summ += m * (by.bsums[2 * j] + by.bsums[2 * j + 1]);
        }
      sumf += rk_fp16_to_fp32 (bx.d) * by.d * (float) sumi
              - rk_fp16_to_fp32 (bx.dmin) * by.d * (float) summ;
    }
  return sumf;
}
