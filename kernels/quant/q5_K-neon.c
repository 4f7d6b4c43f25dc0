/* q5_K-neon.c — Q5_K with NEON (ARMv8.0, vdotq with dotprod): dequantize, dot with Q8_K.
 * SPDX-License-Identifier: MIT
 */
#include <assert.h>
#include <arm_neon.h>

#include "k-quants.h"

/* Weights are quantized offline: the reference search is the quantizer. */
void
rk_quantize_row_q5_K_neon (const float *x,
                           void        *vy,
                           int64_t      k)
{
  rk_quantize_row_q5_K_ref (x, vy, k);
}

/* Values 16 h .. 16 h + 15 (0..31) of sub-block j: nibble plus bit j of qh as 16. */
static inline uint8x16_t
q5_K_values (const uint8_t *qs,
             const uint8_t *qh,
             int            j,
             int            h)
{
  uint8x16_t raw = vld1q_u8 (qs + 32 * (j / 2) + 16 * h);
  uint8x16_t lo = j % 2 ? vshrq_n_u8 (raw, 4) : vandq_u8 (raw, vdupq_n_u8 (0xF));
  uint8x16_t hi = vandq_u8 (vtstq_u8 (vld1q_u8 (qh + 16 * h), vdupq_n_u8 ((uint8_t) (1 << j))),
                            vdupq_n_u8 (16));

  return vorrq_u8 (lo, hi);
}

void
rk_dequantize_row_q5_K_neon (const void *vx,
                             float      *y,
                             int64_t     k)
{
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q5_K);
      const uint8_t *qs = b + offsetof (rk_block_q5_K, qs);
      const uint8_t *qh = b + offsetof (rk_block_q5_K, qh);
      const float d = rk_k_load_fp16 (b + offsetof (rk_block_q5_K, d));
      const float dmin = rk_k_load_fp16 (b + offsetof (rk_block_q5_K, dmin));
      uint8_t sm[16];
      int j, h, p;

      rk_k4_unpack_scales (b + offsetof (rk_block_q5_K, scales), sm);
      for (j = 0; j < RK_QK_K / 32; j++, y += 32)
        {
          /* Same two roundings as _ref: (d * sc) * q - dmin * m. */
          const float32x4_t vd = vdupq_n_f32 (d * sm[j]);
          const float32x4_t vm = vdupq_n_f32 (dmin * sm[8 + j]);

          for (h = 0; h < 2; h++)
            {
              uint8x16_t q = q5_K_values (qs, qh, j, h);
              uint16x8_t w[2] = { vmovl_u8 (vget_low_u8 (q)), vmovl_high_u8 (q) };

              for (p = 0; p < 4; p++)
                {
                  uint32x4_t u = p % 2 ? vmovl_high_u16 (w[p / 2])
                                       : vmovl_u16 (vget_low_u16 (w[p / 2]));
                  vst1q_f32 (y + 16 * h + 4 * p, vsubq_f32 (vmulq_f32 (vd, vcvtq_f32_u32 (u)), vm));
                }
            }
        }
    }
}

/* As Q4_K's dot with 5-bit values. */
float
rk_vec_dot_q5_K_q8_K_neon (int         n,
                           const void *vx,
                           const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  float sumf = 0;
  int nb = n / RK_QK_K, i, j;

  assert (n % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + (size_t) i * sizeof (rk_block_q5_K);
      const uint8_t *by = y + (size_t) i * sizeof (rk_block_q8_K);
      const uint8_t *qs = bx + offsetof (rk_block_q5_K, qs);
      const uint8_t *qh = bx + offsetof (rk_block_q5_K, qh);
      const int8_t *q8 = (const int8_t *) (by + offsetof (rk_block_q8_K, qs));
      const uint8_t *bs = by + offsetof (rk_block_q8_K, bsums);
      const float dy = rk_k_load_f32 (by + offsetof (rk_block_q8_K, d));
      const float d = dy * rk_k_load_fp16 (bx + offsetof (rk_block_q5_K, d));
      const float dmin = dy * rk_k_load_fp16 (bx + offsetof (rk_block_q5_K, dmin));
      uint8_t sm[16];
      int16x8_t q8sums, mins;
      int32x4_t prod;
      int32_t sumi = 0;

      rk_k4_unpack_scales (bx + offsetof (rk_block_q5_K, scales), sm);
      q8sums = vpaddq_s16 (vreinterpretq_s16_u8 (vld1q_u8 (bs)),
                           vreinterpretq_s16_u8 (vld1q_u8 (bs + 16)));
      mins = vreinterpretq_s16_u16 (vmovl_u8 (vld1_u8 (sm + 8)));
      prod = vaddq_s32 (vmull_s16 (vget_low_s16 (q8sums), vget_low_s16 (mins)),
                        vmull_high_s16 (q8sums, mins));
      sumf -= dmin * (float) vaddvq_s32 (prod);

      for (j = 0; j < RK_QK_K / 32; j++, q8 += 32)
        {
          int32x4_t s = vdupq_n_s32 (0);

          s = rk_k_vdotq (s, vreinterpretq_s8_u8 (q5_K_values (qs, qh, j, 0)), vld1q_s8 (q8));
          s = rk_k_vdotq (s, vreinterpretq_s8_u8 (q5_K_values (qs, qh, j, 1)), vld1q_s8 (q8 + 16));
          sumi += vaddvq_s32 (s) * sm[j];
        }
      sumf += d * (float) sumi;
    }
  return sumf;
}
