/* kv-quant-neon.c — quantized KV rows with baseline ARMv8 NEON.
 * SPDX-License-Identifier: MIT
 *
 * Eight values at a time as two float32x4: codes widen int8 -> int16 -> int32
 * and convert, then fused multiply-adds. Groups that are not a multiple of 8
 * (Q8) or 16 (Q4) take the reference path; the F16 loops end with the
 * reference's scalar tail.
 *
 * The group step scores four keys at a time per query row and accumulates
 * values four dims at a time for up to eight rows at once; Q4 group scores
 * multiply the 4-bit codes with the int8 queries in 16-bit lanes (at most
 * 8 * 15 * 127 per lane) and sum them widening. A head_dim that is not a
 * multiple of 4, or a Q4 group other than 64, takes the reference path.
 */
#include <arm_neon.h>

#include <math.h>

#include "rk-kvquant.h"
#include "rk-ops.h"
#include "ops/simd-neon.h"

static inline void
widen_s8 (int8x8_t c, float32x4_t *lo, float32x4_t *hi)
{
  int16x8_t w = vmovl_s8 (c);

  *lo = vcvtq_f32_s32 (vmovl_s16 (vget_low_s16 (w)));
  *hi = vcvtq_f32_s32 (vmovl_s16 (vget_high_s16 (w)));
}

static inline void
widen_u8 (uint8x8_t c, float32x4_t *lo, float32x4_t *hi)
{
  uint16x8_t w = vmovl_u8 (c);

  *lo = vcvtq_f32_u32 (vmovl_u16 (vget_low_u16 (w)));
  *hi = vcvtq_f32_u32 (vmovl_u16 (vget_high_u16 (w)));
}

static inline float32x4_t
load_f16x4 (const rk_fp16 *x)
{
  return vcvt_f32_f16 (vreinterpret_f16_u16 (vld1_u16 (x)));
}

float
rk_kvq8_dot_neon (int            n,
                  int            group,
                  const int8_t  *codes,
                  const rk_fp16 *d,
                  const float   *q)
{
  float32x4_t tot = vdupq_n_f32 (0.0f);
  int g, j;

  if (group % 8 != 0)
    return rk_kvq8_dot_ref (n, group, codes, d, q);
  for (g = 0; g < n / group; g++)
    {
      float32x4_t acc = vdupq_n_f32 (0.0f);

      for (j = g * group; j < (g + 1) * group; j += 8)
        {
          float32x4_t c0, c1;

          widen_s8 (vld1_s8 (codes + j), &c0, &c1);
          acc = vfmaq_f32 (acc, c0, vld1q_f32 (q + j));
          acc = vfmaq_f32 (acc, c1, vld1q_f32 (q + j + 4));
        }
      tot = vfmaq_n_f32 (tot, acc, rk_fp16_to_fp32 (d[g]));
    }
  return vaddvq_f32 (tot);
}

float
rk_kvq4_dot_neon (int            n,
                  int            group,
                  const uint8_t *codes,
                  const rk_fp16 *d,
                  const int8_t  *z,
                  const float   *q)
{
  int half = group / 2;
  float32x4_t tot = vdupq_n_f32 (0.0f);
  int g, j;

  if (group % 16 != 0)
    return rk_kvq4_dot_ref (n, group, codes, d, z, q);
  for (g = 0; g < n / group; g++)
    {
      const uint8_t *c = codes + g * half;
      const float *qg = q + g * group;
      float32x4_t acc = vdupq_n_f32 (0.0f), sq = vdupq_n_f32 (0.0f);

      for (j = 0; j < half; j += 8)
        {
          uint8x8_t b = vld1_u8 (c + j);
          float32x4_t l0, l1, h0, h1;
          float32x4_t q0 = vld1q_f32 (qg + j), q1 = vld1q_f32 (qg + j + 4);
          float32x4_t q2 = vld1q_f32 (qg + j + half), q3 = vld1q_f32 (qg + j + half + 4);

          widen_u8 (vand_u8 (b, vdup_n_u8 (0x0F)), &l0, &l1);
          widen_u8 (vshr_n_u8 (b, 4), &h0, &h1);
          acc = vfmaq_f32 (acc, l0, q0);
          acc = vfmaq_f32 (acc, l1, q1);
          acc = vfmaq_f32 (acc, h0, q2);
          acc = vfmaq_f32 (acc, h1, q3);
          sq = vaddq_f32 (sq, vaddq_f32 (vaddq_f32 (q0, q1), vaddq_f32 (q2, q3)));
        }
      acc = vfmaq_n_f32 (acc, sq, (float) z[g]);
      tot = vfmaq_n_f32 (tot, acc, rk_fp16_to_fp32 (d[g]));
    }
  return vaddvq_f32 (tot);
}

float
rk_kvf16_dot_neon (int            n,
                   const rk_fp16 *x,
                   const float   *q)
{
  float32x4_t acc = vdupq_n_f32 (0.0f);
  float sum;
  int i;

  for (i = 0; i + 4 <= n; i += 4)
    acc = vfmaq_f32 (acc, load_f16x4 (x + i), vld1q_f32 (q + i));
  sum = vaddvq_f32 (acc);
  for (; i < n; i++)
    sum += q[i] * rk_fp16_to_fp32 (x[i]);
  return sum;
}

void
rk_kvq8_axpy_neon (int            n,
                   int            group,
                   const int8_t  *codes,
                   const rk_fp16 *d,
                   float          w,
                   float         *y)
{
  int g, j;

  if (group % 8 != 0)
    {
      rk_kvq8_axpy_ref (n, group, codes, d, w, y);
      return;
    }
  for (g = 0; g < n / group; g++)
    {
      float wd = w * rk_fp16_to_fp32 (d[g]);

      for (j = g * group; j < (g + 1) * group; j += 8)
        {
          float32x4_t c0, c1;

          widen_s8 (vld1_s8 (codes + j), &c0, &c1);
          vst1q_f32 (y + j, vfmaq_n_f32 (vld1q_f32 (y + j), c0, wd));
          vst1q_f32 (y + j + 4, vfmaq_n_f32 (vld1q_f32 (y + j + 4), c1, wd));
        }
    }
}

void
rk_kvq4_axpy_neon (int            n,
                   int            group,
                   const uint8_t *codes,
                   const rk_fp16 *d,
                   const int8_t  *z,
                   float          w,
                   float         *y)
{
  int half = group / 2;
  int g, j;

  if (group % 16 != 0)
    {
      rk_kvq4_axpy_ref (n, group, codes, d, z, w, y);
      return;
    }
  for (g = 0; g < n / group; g++)
    {
      const uint8_t *c = codes + g * half;
      float *yg = y + g * group;
      float wd = w * rk_fp16_to_fp32 (d[g]);
      float32x4_t wm = vdupq_n_f32 (wd * (float) z[g]);

      for (j = 0; j < half; j += 8)
        {
          uint8x8_t b = vld1_u8 (c + j);
          float32x4_t l0, l1, h0, h1;

          widen_u8 (vand_u8 (b, vdup_n_u8 (0x0F)), &l0, &l1);
          widen_u8 (vshr_n_u8 (b, 4), &h0, &h1);
          vst1q_f32 (yg + j, vaddq_f32 (vld1q_f32 (yg + j), vfmaq_n_f32 (wm, l0, wd)));
          vst1q_f32 (yg + j + 4, vaddq_f32 (vld1q_f32 (yg + j + 4), vfmaq_n_f32 (wm, l1, wd)));
          vst1q_f32 (yg + j + half, vaddq_f32 (vld1q_f32 (yg + j + half),
                                               vfmaq_n_f32 (wm, h0, wd)));
          vst1q_f32 (yg + j + half + 4, vaddq_f32 (vld1q_f32 (yg + j + half + 4),
                                                   vfmaq_n_f32 (wm, h1, wd)));
        }
    }
}

void
rk_kvf16_axpy_neon (int            n,
                    const rk_fp16 *x,
                    float          w,
                    float         *y)
{
  int i;

  for (i = 0; i + 4 <= n; i += 4)
    vst1q_f32 (y + i, vfmaq_n_f32 (vld1q_f32 (y + i), load_f16x4 (x + i), w));
  for (; i < n; i++)
    y[i] += w * rk_fp16_to_fp32 (x[i]);
}

/* acc rows r0 .. r0 + NR - 1 += their weights s (row stride cnt) times the
 * values v (cnt, n); NR a constant after inlining. */
static inline __attribute__ ((always_inline)) void
group_pv (const int    NR,
          int          r0,
          int          cnt,
          int          n,
          const float *v,
          const float *s,
          float       *acc)
{
  int i, t, j;

  for (i = 0; i < n; i += 4)
    {
      float32x4_t c[8];

      for (j = 0; j < NR; j++)
        c[j] = vld1q_f32 (acc + (size_t) (r0 + j) * n + i);
      for (t = 0; t < cnt; t++)
        {
          float32x4_t x = vld1q_f32 (v + (size_t) t * n + i);

          for (j = 0; j < NR; j++)
            c[j] = vfmaq_n_f32 (c[j], x, s[(size_t) (r0 + j) * cnt + t]);
        }
      for (j = 0; j < NR; j++)
        vst1q_f32 (acc + (size_t) (r0 + j) * n + i, c[j]);
    }
}

void
rk_kv_group_step_neon (int          rows,
                       int          cnt,
                       int          n,
                       const float *q,
                       const float *k,
                       const float *v,
                       float        scale,
                       float       *m,
                       float       *l,
                       float       *acc,
                       float       *s)
{
  int r, t, i;

  if (n % 4 != 0)
    {
      rk_kv_group_step_ref (rows, cnt, n, q, k, v, scale, m, l, acc, s);
      return;
    }
  if (cnt <= 0)
    return;
  for (r = 0; r < rows; r++)
    {
      const float *qr = q + (size_t) r * n;
      float *sr = s + (size_t) r * cnt, bm = -INFINITY;

      /* scores, four keys at a time (unless given) */
      for (t = 0; k != NULL && t + 4 <= cnt; t += 4)
        {
          const float *k0 = k + (size_t) t * n;
          float32x4_t a0 = vdupq_n_f32 (0.0f), a1 = a0, a2 = a0, a3 = a0;

          for (i = 0; i < n; i += 4)
            {
              float32x4_t x = vld1q_f32 (qr + i);

              a0 = vfmaq_f32 (a0, vld1q_f32 (k0 + i), x);
              a1 = vfmaq_f32 (a1, vld1q_f32 (k0 + n + i), x);
              a2 = vfmaq_f32 (a2, vld1q_f32 (k0 + 2 * n + i), x);
              a3 = vfmaq_f32 (a3, vld1q_f32 (k0 + 3 * n + i), x);
            }
          vst1q_f32 (sr + t, vmulq_n_f32 (vpaddq_f32 (vpaddq_f32 (a0, a1), vpaddq_f32 (a2, a3)),
                                          scale));
        }
      for (; k != NULL && t < cnt; t++)
        {
          float32x4_t a = vdupq_n_f32 (0.0f);

          for (i = 0; i < n; i += 4)
            a = vfmaq_f32 (a, vld1q_f32 (k + (size_t) t * n + i), vld1q_f32 (qr + i));
          sr[t] = scale * vaddvq_f32 (a);
        }
      /* the new maximum, then the weights */
      for (t = 0; t < cnt; t++)
        bm = fmaxf (bm, sr[t]);
      if (bm > m[r])
        {
          float rr = m[r] == -INFINITY ? 0.0f : expf (m[r] - bm);

          rk_scale_neon (acc + (size_t) r * n, acc + (size_t) r * n, rr, n);
          l[r] *= rr;
          m[r] = bm;
        }
      l[r] += rk_exp_sum_neon (sr, cnt, m[r]);
    }
  /* values: up to eight rows per pass over v */
  for (r = 0; r < rows; r += 8)
    switch (rows - r >= 8 ? 8 : rows - r)
      {
      case 8:
        group_pv (8, r, cnt, n, v, s, acc);
        break;
      case 7:
        group_pv (7, r, cnt, n, v, s, acc);
        break;
      case 6:
        group_pv (6, r, cnt, n, v, s, acc);
        break;
      case 5:
        group_pv (5, r, cnt, n, v, s, acc);
        break;
      case 4:
        group_pv (4, r, cnt, n, v, s, acc);
        break;
      case 3:
        group_pv (3, r, cnt, n, v, s, acc);
        break;
      case 2:
        group_pv (2, r, cnt, n, v, s, acc);
        break;
      default:
        group_pv (1, r, cnt, n, v, s, acc);
        break;
      }
}

void
rk_kvq4_group_scores_neon (int            rows,
                           int            cnt,
                           int            n,
                           int            group,
                           const int8_t  *q8,
                           const float   *qd,
                           const int32_t *qsum,
                           const uint8_t *codes,
                           size_t         code_stride,
                           const rk_fp16 *d,
                           const int8_t  *z,
                           size_t         scale_stride,
                           float          scale,
                           float         *s)
{
  const uint8x16_t low = vdupq_n_u8 (0x0F);
  int ng = n / group, r, t, g;

  if (group != 64)
    {
      rk_kvq4_group_scores_ref (rows, cnt, n, group, q8, qd, qsum, codes, code_stride, d, z,
                                scale_stride, scale, s);
      return;
    }
  for (r = 0; r < rows; r++)
    for (t = 0; t < cnt; t++)
      {
        const uint8_t *ct = codes + (size_t) t * code_stride;
        float sum = 0.0f;

        for (g = 0; g < ng; g++)
          {
            const int8_t *qg = q8 + (size_t) r * n + g * 64;
            uint8x16_t b0 = vld1q_u8 (ct + g * 32), b1 = vld1q_u8 (ct + g * 32 + 16);
            int8x16_t l0 = vreinterpretq_s8_u8 (vandq_u8 (b0, low));
            int8x16_t l1 = vreinterpretq_s8_u8 (vandq_u8 (b1, low));
            int8x16_t h0 = vreinterpretq_s8_u8 (vshrq_n_u8 (b0, 4));
            int8x16_t h1 = vreinterpretq_s8_u8 (vshrq_n_u8 (b1, 4));
            int8x16_t qa = vld1q_s8 (qg), qb = vld1q_s8 (qg + 16);
            int8x16_t qc = vld1q_s8 (qg + 32), qe = vld1q_s8 (qg + 48);
            int16x8_t p = vmull_s8 (vget_low_s8 (l0), vget_low_s8 (qa));

            p = vmlal_s8 (p, vget_high_s8 (l0), vget_high_s8 (qa));
            p = vmlal_s8 (p, vget_low_s8 (l1), vget_low_s8 (qb));
            p = vmlal_s8 (p, vget_high_s8 (l1), vget_high_s8 (qb));
            p = vmlal_s8 (p, vget_low_s8 (h0), vget_low_s8 (qc));
            p = vmlal_s8 (p, vget_high_s8 (h0), vget_high_s8 (qc));
            p = vmlal_s8 (p, vget_low_s8 (h1), vget_low_s8 (qe));
            p = vmlal_s8 (p, vget_high_s8 (h1), vget_high_s8 (qe));
            sum += (float) (vaddlvq_s16 (p) +
                            qsum[(size_t) r * ng + g] * z[(size_t) t * scale_stride + g]) *
                   rk_fp16_to_fp32 (d[(size_t) t * scale_stride + g]);
          }
        s[(size_t) r * cnt + t] = scale * qd[r] * sum;
      }
}

/* The body of both int16-query kernels: codes int8 (Q8, Q7 unpacked) or
 * int16 (Q10 unpacked, wide), key t's at element t * code_stride; group a
 * multiple of 8, small enough for int32 sums. */
static inline void
i16_group_scores (int            rows,
                  int            cnt,
                  int            n,
                  int            group,
                  const int16_t *q16,
                  const float   *qd,
                  const void    *codes,
                  int            wide,
                  size_t         code_stride,
                  const rk_fp16 *d,
                  size_t         scale_stride,
                  float          scale,
                  float         *s)
{
  int ng = n / group, r, t, g, i;

  for (r = 0; r < rows; r++)
    for (t = 0; t < cnt; t++)
      {
        size_t c0 = (size_t) t * code_stride;
        const int16_t *qr = q16 + (size_t) r * n;
        float sum = 0.0f;

        for (g = 0; g < ng; g++)
          {
            int32x4_t acc = vdupq_n_s32 (0);

            /* int8 codes widened to int16, products accumulated in int32 */
            for (i = g * group; i < (g + 1) * group; i += 8)
              {
                int16x8_t c = wide ? vld1q_s16 ((const int16_t *) codes + c0 + i)
                                   : vmovl_s8 (vld1_s8 ((const int8_t *) codes + c0 + i));
                int16x8_t q = vld1q_s16 (qr + i);

                acc = vmlal_s16 (acc, vget_low_s16 (c), vget_low_s16 (q));
                acc = vmlal_high_s16 (acc, c, q);
              }
            sum += (float) vaddvq_s32 (acc) * rk_fp16_to_fp32 (d[(size_t) t * scale_stride + g]);
          }
        s[(size_t) r * cnt + t] = scale * qd[r] * sum;
      }
}

void
rk_kvq8_group_scores_neon (int            rows,
                           int            cnt,
                           int            n,
                           int            group,
                           const int16_t *q16,
                           const float   *qd,
                           const int8_t  *codes,
                           size_t         code_stride,
                           const rk_fp16 *d,
                           size_t         scale_stride,
                           float          scale,
                           float         *s)
{
  /* int32 sums: exact up to groups of 512 */
  if (group % 8 != 0 || group > 512)
    rk_kvq8_group_scores_ref (rows, cnt, n, group, q16, qd, codes, code_stride, d,
                              scale_stride, scale, s);
  else
    i16_group_scores (rows, cnt, n, group, q16, qd, codes, 0, code_stride, d, scale_stride,
                      scale, s);
}

/* max |q| of a row (n % 4 == 0); vmaxnm skips a NaN as fmaxf does. */
static inline float
query_amax (const float *qr, int n)
{
  float32x4_t vmax = vdupq_n_f32 (0.0f);
  int i;

  for (i = 0; i < n; i += 4)
    vmax = vmaxnmq_f32 (vmax, vabsq_f32 (vld1q_f32 (qr + i)));
  return vmaxnmvq_f32 (vmax);
}

/* The reference's operations four at a time: the same maximum (vmaxnm skips
 * a NaN as fmaxf does), product and round-to-nearest-even conversion. */
void
rk_kvq_quantize_query_neon (int          rows,
                            int          n,
                            int          group,
                            const float *q,
                            int8_t      *q8,
                            float       *qd,
                            int32_t     *qsum)
{
  const int32x4_t lo_clamp = vdupq_n_s32 (-127);
  int r, g, i;

  if (n % 8 != 0 || group % 8 != 0)
    {
      rk_kvq_quantize_query_ref (rows, n, group, q, q8, qd, qsum);
      return;
    }
  for (r = 0; r < rows; r++)
    {
      const float *qr = q + (size_t) r * n;
      int8_t *cr = q8 + (size_t) r * n;
      float amax = query_amax (qr, n), inv;
      qd[r] = amax / 127.0f;
      inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      for (g = 0; g < n / group; g++)
        {
          int32x4_t sum = vdupq_n_s32 (0);

          for (i = g * group; i < (g + 1) * group; i += 8)
            {
              int32x4_t c0 = vcvtnq_s32_f32 (vmulq_n_f32 (vld1q_f32 (qr + i), inv));
              int32x4_t c1 = vcvtnq_s32_f32 (vmulq_n_f32 (vld1q_f32 (qr + i + 4), inv));

              c0 = vmaxq_s32 (c0, lo_clamp);
              c1 = vmaxq_s32 (c1, lo_clamp);
              sum = vaddq_s32 (sum, vaddq_s32 (c0, c1));
              vst1_s8 (cr + i, vqmovn_s16 (vcombine_s16 (vqmovn_s32 (c0), vqmovn_s32 (c1))));
            }
          qsum[(size_t) r * (n / group) + g] = vaddvq_s32 (sum);
        }
    }
}

/* The int16 query: the reference's maximum, product and rounding, four at a
 * time. */
void
rk_kvq_quantize_query16_neon (int          rows,
                              int          n,
                              const float *q,
                              int16_t     *q16,
                              float       *qd)
{
  const int32x4_t lo_clamp = vdupq_n_s32 (-32767);
  int r, i;

  if (n % 8 != 0)
    {
      rk_kvq_quantize_query16_ref (rows, n, q, q16, qd);
      return;
    }
  for (r = 0; r < rows; r++)
    {
      const float *qr = q + (size_t) r * n;
      float amax = query_amax (qr, n), inv;
      qd[r] = amax / 32767.0f;
      inv = amax > 0.0f ? 32767.0f / amax : 0.0f;
      for (i = 0; i < n; i += 8)
        {
          int32x4_t c0 = vcvtnq_s32_f32 (vmulq_n_f32 (vld1q_f32 (qr + i), inv));
          int32x4_t c1 = vcvtnq_s32_f32 (vmulq_n_f32 (vld1q_f32 (qr + i + 4), inv));

          /* vqmovn saturates at +32767 as the reference clamps */
          c0 = vmaxq_s32 (c0, lo_clamp);
          c1 = vmaxq_s32 (c1, lo_clamp);
          vst1q_s16 (q16 + (size_t) r * n + i, vcombine_s16 (vqmovn_s32 (c0), vqmovn_s32 (c1)));
        }
    }
}

/* Q7: 64 values at a time from their three planes (see rk-kvquant.h). */
void
rk_kvq7_unpack_neon (int            n,
                     const uint8_t *packed,
                     int8_t        *codes)
{
  const uint8x16_t m4 = vdupq_n_u8 (0x0F), m2 = vdupq_n_u8 (3), off = vdupq_n_u8 (64);
  const uint8x8_t m1 = vdup_n_u8 (1);
  int i;

  for (i = 0; i + 64 <= n; i += 64)
    {
      const uint8_t *p = packed + (size_t) i * 7 / 8;
      uint8x16_t n0 = vld1q_u8 (p), n1 = vld1q_u8 (p + 16), p2 = vld1q_u8 (p + 32);
      uint8x8_t p1 = vld1_u8 (p + 48);
      uint8x16_t lo[4], b2[4], b1[4];
      int k;

      lo[0] = vandq_u8 (n0, m4);
      lo[1] = vandq_u8 (n1, m4);
      lo[2] = vshrq_n_u8 (n0, 4);
      lo[3] = vshrq_n_u8 (n1, 4);
      b2[0] = vandq_u8 (p2, m2);
      b2[1] = vandq_u8 (vshrq_n_u8 (p2, 2), m2);
      b2[2] = vandq_u8 (vshrq_n_u8 (p2, 4), m2);
      b2[3] = vshrq_n_u8 (p2, 6);
      b1[0] = vcombine_u8 (vand_u8 (p1, m1), vand_u8 (vshr_n_u8 (p1, 1), m1));
      b1[1] = vcombine_u8 (vand_u8 (vshr_n_u8 (p1, 2), m1), vand_u8 (vshr_n_u8 (p1, 3), m1));
      b1[2] = vcombine_u8 (vand_u8 (vshr_n_u8 (p1, 4), m1), vand_u8 (vshr_n_u8 (p1, 5), m1));
      b1[3] = vcombine_u8 (vand_u8 (vshr_n_u8 (p1, 6), m1), vshr_n_u8 (p1, 7));
      for (k = 0; k < 4; k++)
        {
          uint8x16_t u = vorrq_u8 (lo[k], vorrq_u8 (vshlq_n_u8 (b2[k], 4), vshlq_n_u8 (b1[k], 6)));

          vst1q_s8 (codes + i + 16 * k, vreinterpretq_s8_u8 (vsubq_u8 (u, off)));
        }
    }
  if (i < n)
    rk_kvq7_unpack_ref (n - i, packed + (size_t) i * 7 / 8, codes + i);
}

/* Q10: 64 values at a time, 16 per step. */
void
rk_kvq10_unpack_neon (int            n,
                      const uint8_t *packed,
                      int16_t       *codes)
{
  const uint8x16_t m2 = vdupq_n_u8 (3);
  const int16x8_t off = vdupq_n_s16 (512);
  int i, k;

  for (i = 0; i + 64 <= n; i += 64)
    {
      const uint8_t *p = packed + (size_t) i * 10 / 8;
      uint8x16_t p2 = vld1q_u8 (p + 64), hk[4];

      hk[0] = vandq_u8 (p2, m2);
      hk[1] = vandq_u8 (vshrq_n_u8 (p2, 2), m2);
      hk[2] = vandq_u8 (vshrq_n_u8 (p2, 4), m2);
      hk[3] = vshrq_n_u8 (p2, 6);
      for (k = 0; k < 4; k++)
        {
          uint8x16_t lo = vld1q_u8 (p + 16 * k);
          uint16x8_t a = vorrq_u16 (vmovl_u8 (vget_low_u8 (lo)),
                                    vshlq_n_u16 (vmovl_u8 (vget_low_u8 (hk[k])), 8));
          uint16x8_t b = vorrq_u16 (vmovl_u8 (vget_high_u8 (lo)),
                                    vshlq_n_u16 (vmovl_u8 (vget_high_u8 (hk[k])), 8));

          vst1q_s16 (codes + i + 16 * k, vsubq_s16 (vreinterpretq_s16_u16 (a), off));
          vst1q_s16 (codes + i + 16 * k + 8, vsubq_s16 (vreinterpretq_s16_u16 (b), off));
        }
    }
  if (i < n)
    rk_kvq10_unpack_ref (n - i, packed + (size_t) i * 10 / 8, codes + i);
}

void
rk_kvq16_dequantize_neon (int            n,
                          int            group,
                          const int16_t *codes,
                          const rk_fp16 *d,
                          float         *x)
{
  int i;

  if (group % 4 != 0)
    {
      rk_kvq16_dequantize_ref (n, group, codes, d, x);
      return;
    }
  for (i = 0; i < n; i += 4)
    vst1q_f32 (x + i, vmulq_n_f32 (vcvtq_f32_s32 (vmovl_s16 (vld1_s16 (codes + i))),
                                   rk_fp16_to_fp32 (d[i / group])));
}

void
rk_kvq16_group_scores_neon (int            rows,
                            int            cnt,
                            int            n,
                            int            group,
                            const int16_t *q16,
                            const float   *qd,
                            const int16_t *codes,
                            size_t         code_stride,
                            const rk_fp16 *d,
                            size_t         scale_stride,
                            float          scale,
                            float         *s)
{
  /* int32 sums: exact up to groups of 128 */
  if (group % 8 != 0 || group > 128)
    rk_kvq16_group_scores_ref (rows, cnt, n, group, q16, qd, codes, code_stride, d,
                               scale_stride, scale, s);
  else
    i16_group_scores (rows, cnt, n, group, q16, qd, codes, 1, code_stride, d, scale_stride,
                      scale, s);
}
