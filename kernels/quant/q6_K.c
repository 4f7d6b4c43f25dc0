/* q6_K.c — Q6_K reference kernels: quantize (as llama-quantize), dequantize, dot with Q8_K.
 * SPDX-License-Identifier: MIT
 *
 * Block (210 bytes, 256 values): ql[128], qh[64], int8 scales[16], d (fp16).
 * Value w = d * scales[e / 16] * (q - 32), q in 0..63. In each half of 128
 * values, quarter t (0..3) value l (0..31) has its low 4 bits in
 * ql[64 h + l + 32 (t & 1)] (low nibble for t < 2, high for t >= 2) and its
 * high 2 bits at bits 2t..2t+1 of qh[32 h + l].
 */
#include <assert.h>
#include <math.h>

#include "k-quants.h"

#define GROUP_MAX_EPS 1e-15f

/* Signed value (q - 32) of element e (0..255). */
static inline int
q6_K_value (const rk_block_q6_K *b,
            int                  e)
{
  int h = e / 128, t = (e % 128) / 32, l = e % 32;
  int lo = (b->ql[64 * h + l + 32 * (t & 1)] >> (4 * (t >> 1))) & 0xF;
  int hi = (b->qh[32 * h + l] >> (2 * t)) & 3;

  return (lo | (hi << 4)) - 32;
}

void
rk_quantize_row_q6_K_ref (const float *x,
                          void        *vy,
                          int64_t      k)
{
  uint8_t *y = vy;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++, x += RK_QK_K)
    {
      rk_block_q6_K b;
      int8_t L[RK_QK_K];
      float scales[RK_QK_K / 16];
      float max_scale = 0, max_abs_scale = 0, iscale, d;
      int j, l, h;

      /* 16 sub-blocks of 16: weighted (x^2) least-squares symmetric scales. */
      for (j = 0; j < RK_QK_K / 16; j++)
        {
          float abs_scale;

          scales[j] = rk_make_qx_quants (16, 32, x + 16 * j, L + 16 * j, 1, NULL);
          abs_scale = fabsf (scales[j]);
          if (abs_scale > max_abs_scale)
            {
              max_abs_scale = abs_scale;
              max_scale = scales[j];
            }
        }
      memset (&b, 0, sizeof b);
      if (max_abs_scale < GROUP_MAX_EPS)
        {
          memcpy (y + i * sizeof b, &b, sizeof b);
          continue;
        }

      /* 8-bit sub-block scales against d = max_scale / -128. */
      iscale = -128.f / max_scale;
      b.d = rk_fp32_to_fp16 (1 / iscale);
      for (j = 0; j < RK_QK_K / 16; j++)
        {
          int s = rk_nearest_int (iscale * scales[j]);
          b.scales[j] = (int8_t) (s < 127 ? s : 127);
        }

      /* Requantize against the stored scales. */
      d = rk_fp16_to_fp32 (b.d);
      for (j = 0; j < RK_QK_K / 16; j++)
        {
          float dj = d * b.scales[j];

          if (!dj)
            continue;
          for (l = 0; l < 16; l++)
            {
              int q = rk_nearest_int (x[16 * j + l] / dj);
              q = q < -32 ? -32 : q > 31 ? 31 : q;
              L[16 * j + l] = (int8_t) (q + 32);
            }
        }

      for (h = 0; h < 2; h++)
        for (l = 0; l < 32; l++)
          {
            const int8_t *Lh = L + 128 * h;

            b.ql[64 * h + l] = (uint8_t) ((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
            b.ql[64 * h + l + 32] = (uint8_t) ((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
            b.qh[32 * h + l] = (uint8_t) ((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2)
                                          | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
          }
      memcpy (y + i * sizeof b, &b, sizeof b);
    }
}

void
rk_dequantize_row_q6_K_ref (const void *vx,
                            float      *y,
                            int64_t     k)
{
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      rk_block_q6_K b;
      float d;
      int e;

      memcpy (&b, x + i * sizeof b, sizeof b);
      d = rk_fp16_to_fp32 (b.d);
      for (e = 0; e < RK_QK_K; e++)
        *y++ = d * b.scales[e / 16] * q6_K_value (&b, e);
    }
}

/* dot = d * dy * sum_j scales[j] * (q - 32 . q8)_j, integer inside a block. */
float
rk_vec_dot_q6_K_q8_K_ref (int         n,
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
      rk_block_q6_K bx;
      rk_block_q8_K by;
      int32_t sumi = 0;
      int j, l;

      memcpy (&bx, x + (size_t) i * sizeof bx, sizeof bx);
      memcpy (&by, y + (size_t) i * sizeof by, sizeof by);
      for (j = 0; j < RK_QK_K / 16; j++)
        {
          int32_t s = 0;

          for (l = 0; l < 16; l++)
            s += q6_K_value (&bx, 16 * j + l) * by.qs[16 * j + l];
          sumi += bx.scales[j] * s;
        }
      sumf += rk_fp16_to_fp32 (bx.d) * by.d * (float) sumi;
    }
  return sumf;
}
