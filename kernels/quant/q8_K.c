/* q8_K.c — Q8_K reference kernels: the activation format the K-quants multiply with.
 * SPDX-License-Identifier: MIT
 *
 * Block (292 bytes, 256 values): float d, int8 qs[256], int16 bsums[16]
 * (bsums[i] = sum of qs[16 i .. 16 i + 15], so the K-quant dots can apply
 * their per-sub-block mins without touching qs). w = d * q, q in -127..127.
 */
#include <assert.h>
#include <math.h>

#include "k-quants.h"

/* As ggml's quantize_row_q8_K_ref: max = the first value of largest
 * magnitude, q = round(-127 / max * x) (ties to even), d = max / -127. The
 * sign of d follows max, so q(max) = -127. */
void
rk_quantize_row_q8_K_ref (const float *x,
                          void        *vy,
                          int64_t      k)
{
  uint8_t *y = vy;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++, x += RK_QK_K)
    {
      rk_block_q8_K b;
      float max = 0, amax = 0, iscale;
      int j, l;

      for (j = 0; j < RK_QK_K; j++)
        {
          float ax = fabsf (x[j]);
          if (ax > amax)
            {
              amax = ax;
              max = x[j];
            }
        }
      memset (&b, 0, sizeof b);
      if (!amax)
        {
          memcpy (y + i * sizeof b, &b, sizeof b);
          continue;
        }
      iscale = -127.f / max;
      for (j = 0; j < RK_QK_K; j++)
        {
          int v = rk_nearest_int (iscale * x[j]);
          b.qs[j] = (int8_t) (v < 127 ? v : 127);
        }
      for (j = 0; j < RK_QK_K / 16; j++)
        {
          int sum = 0;
          for (l = 0; l < 16; l++)
            sum += b.qs[16 * j + l];
          b.bsums[j] = (int16_t) sum;
        }
      b.d = 1 / iscale;
      memcpy (y + i * sizeof b, &b, sizeof b);
    }
}

void
rk_dequantize_row_q8_K_ref (const void *vx,
                            float      *y,
                            int64_t     k)
{
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q8_K);
      float d = rk_k_load_f32 (b + offsetof (rk_block_q8_K, d));
      const int8_t *qs = (const int8_t *) (b + offsetof (rk_block_q8_K, qs));
      int j;

      for (j = 0; j < RK_QK_K; j++)
        *y++ = d * qs[j];
    }
}
