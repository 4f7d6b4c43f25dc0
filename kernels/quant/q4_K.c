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

/* Unpacks a block's codes for the shared loops (rk_k4_codes_fn in k-quants.h). */
static void
q4_K_codes (const uint8_t *block,
            uint8_t        q[RK_QK_K])
{
  const uint8_t *qs = block + offsetof (rk_block_q4_K, qs);
  int j, l;

  for (j = 0; j < RK_QK_K / 32; j++)
    for (l = 0; l < 32; l++)
      q[32 * j + l] = (uint8_t) ((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF);
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
  rk_k4_dequantize_row_ref (vx, sizeof (rk_block_q4_K), q4_K_codes, y, k);
}

float
rk_vec_dot_q4_K_q8_K_ref (int         n,
                          const void *vx,
                          const void *vy)
{
  return rk_k4_vec_dot_q8_K_ref (vx, sizeof (rk_block_q4_K), q4_K_codes, vy, n);
}
