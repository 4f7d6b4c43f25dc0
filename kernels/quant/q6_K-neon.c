/* q6_K-neon.c — Q6_K with NEON (ARMv8.0, vdotq with dotprod): dequantize, dot with Q8_K.
 * SPDX-License-Identifier: MIT
 */
#include <assert.h>
#include <arm_neon.h>

#include "k-quants.h"

/* Weights are quantized offline: the reference search is the quantizer. */
void
rk_quantize_row_q6_K_neon (const float *x,
                           void        *vy,
                           int64_t      k)
{
  rk_quantize_row_q6_K_ref (x, vy, k);
}

/* Signed values (-32..31) of elements 16 p .. 16 p + 15 of quarter t of the
 * half whose ql/qh start at ql, qh (p = 0, 1: the two 16-value sub-blocks). */
static inline int8x16_t
q6_K_values (const uint8_t *ql,
             const uint8_t *qh,
             int            t,
             int            p)
{
  uint8x16_t l = vld1q_u8 (ql + 32 * (t & 1) + 16 * p);
  uint8x16_t h = vld1q_u8 (qh + 16 * p);
  /* Variable right shifts are left shifts by a negative count. */
  uint8x16_t lo = vandq_u8 (vshlq_u8 (l, vdupq_n_s8 ((int8_t) (-4 * (t >> 1)))), vdupq_n_u8 (0xF));
  uint8x16_t hi = vandq_u8 (vshlq_u8 (h, vdupq_n_s8 ((int8_t) (-2 * t))), vdupq_n_u8 (3));

  return vsubq_s8 (vreinterpretq_s8_u8 (vorrq_u8 (lo, vshlq_n_u8 (hi, 4))), vdupq_n_s8 (32));
}

void
rk_dequantize_row_q6_K_neon (const void *vx,
                             float      *y,
                             int64_t     k)
{
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q6_K);
      const int8_t *sc = (const int8_t *) (b + offsetof (rk_block_q6_K, scales));
      const float d = rk_k_load_fp16 (b + offsetof (rk_block_q6_K, d));
      int h, t, p, r;

      for (h = 0; h < 2; h++)
        for (t = 0; t < 4; t++)
          for (p = 0; p < 2; p++, y += 16)
            {
              const int8x16_t q = q6_K_values (b + offsetof (rk_block_q6_K, ql) + 64 * h,
                                               b + offsetof (rk_block_q6_K, qh) + 32 * h, t, p);
              /* Same roundings as _ref: (d * scale) * q. */
              const float32x4_t vd = vdupq_n_f32 (d * sc[8 * h + 2 * t + p]);
              int16x8_t w[2] = { vmovl_s8 (vget_low_s8 (q)), vmovl_high_s8 (q) };

              for (r = 0; r < 4; r++)
                {
                  int32x4_t v = r % 2 ? vmovl_high_s16 (w[r / 2])
                                      : vmovl_s16 (vget_low_s16 (w[r / 2]));
                  vst1q_f32 (y + 4 * r, vmulq_f32 (vd, vcvtq_f32_s32 (v)));
                }
            }
    }
}

/* Integer dot per 16-value sub-block (|q| <= 32, |q8| <= 127: products fit
 * int16), times its int8 scale; one float multiply per block. */
float
rk_vec_dot_q6_K_q8_K_neon (int         n,
                           const void *vx,
                           const void *vy)
{
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  float sumf = 0;
  int nb = n / RK_QK_K, i, h, t, p;

  assert (n % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + (size_t) i * sizeof (rk_block_q6_K);
      const uint8_t *by = y + (size_t) i * sizeof (rk_block_q8_K);
      const int8_t *sc = (const int8_t *) (bx + offsetof (rk_block_q6_K, scales));
      const int8_t *q8 = (const int8_t *) (by + offsetof (rk_block_q8_K, qs));
      const float d = rk_k_load_f32 (by + offsetof (rk_block_q8_K, d))
                      * rk_k_load_fp16 (bx + offsetof (rk_block_q6_K, d));
      int32_t sumi = 0;

      for (h = 0; h < 2; h++)
        for (t = 0; t < 4; t++)
          for (p = 0; p < 2; p++, q8 += 16)
            {
              const int8x16_t q = q6_K_values (bx + offsetof (rk_block_q6_K, ql) + 64 * h,
                                               bx + offsetof (rk_block_q6_K, qh) + 32 * h, t, p);
              int32x4_t s = rk_k_vdotq (vdupq_n_s32 (0), q, vld1q_s8 (q8));

              sumi += vaddvq_s32 (s) * sc[8 * h + 2 * t + p];
            }
      sumf += d * (float) sumi;
    }
  return sumf;
}
