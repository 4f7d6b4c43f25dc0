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

/* Unpacks a block's codes for the shared loops (rk_k4_codes_fn in k-quants.h). */
static void
q5_K_codes (const uint8_t *block,
            uint8_t        q[RK_QK_K])
{
  const uint8_t *qs = block + offsetof (rk_block_q5_K, qs);
  const uint8_t *qh = block + offsetof (rk_block_q5_K, qh);
  int j, l;

  for (j = 0; j < RK_QK_K / 32; j++)
    for (l = 0; l < 32; l++)
      q[32 * j + l] = (uint8_t) (((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF)
                                 | (((qh[l] >> j) & 1) << 4));
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
  rk_k4_dequantize_row_ref (vx, sizeof (rk_block_q5_K), q5_K_codes, y, k);
}

float
rk_vec_dot_q5_K_q8_K_ref (int         n,
                          const void *vx,
                          const void *vy)
{
  return rk_k4_vec_dot_q8_K_ref (vx, sizeof (rk_block_q5_K), q5_K_codes, vy, n);
}
