/* kv-quant-avx2.c — quantized KV rows with AVX2 + FMA + F16C.
 * SPDX-License-Identifier: MIT
 *
 * Eight values at a time: codes widen to int32 and convert to float, then
 * one FMA with the query (dot) or into the accumulator (axpy). Groups that
 * are not a multiple of 8 (Q8) or 16 (Q4) take the reference path; the F16
 * loops end with the reference's scalar tail.
 *
 * The group step scores four keys at a time per query row (one horizontal-add
 * tree for the four sums) and accumulates values eight dims at a time for up
 * to eight rows at once (one load of a value vector, one FMA per row); a
 * head_dim that is not a multiple of 8 takes the reference path.
 */
#include <math.h>
#include <immintrin.h>
#include <string.h>

#include "rk-kvquant.h"
#include "rk-ops.h"
#include "ops/simd-avx2.h"
#include "rk-avx2.h"

static inline __m256
load_i8x8 (const int8_t *p)
{
  return _mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (_mm_loadl_epi64 ((const __m128i *) p)));
}

float
rk_kvq8_dot_avx2 (int            n,
                  int            group,
                  const int8_t  *codes,
                  const rk_fp16 *d,
                  const float   *q)
{
  __m256 tot = _mm256_setzero_ps ();
  int g, j;

  if (group % 8 != 0)
    return rk_kvq8_dot_ref (n, group, codes, d, q);
  for (g = 0; g < n / group; g++)
    {
      __m256 acc = _mm256_setzero_ps ();

      for (j = g * group; j < (g + 1) * group; j += 8)
        acc = _mm256_fmadd_ps (load_i8x8 (codes + j), _mm256_loadu_ps (q + j), acc);
      tot = _mm256_fmadd_ps (acc, _mm256_set1_ps (rk_fp16_to_fp32 (d[g])), tot);
    }
  return rk_hsum_ps_avx2 (tot);
}

float
rk_kvq4_dot_avx2 (int            n,
                  int            group,
                  const uint8_t *codes,
                  const rk_fp16 *d,
                  const int8_t  *z,
                  const float   *q)
{
  const __m256i low = _mm256_set1_epi32 (0x0F);
  int half = group / 2;
  __m256 tot = _mm256_setzero_ps ();
  int g, j;

  if (group % 16 != 0)
    return rk_kvq4_dot_ref (n, group, codes, d, z, q);
  for (g = 0; g < n / group; g++)
    {
      const uint8_t *c = codes + g * half;
      const float *qg = q + g * group;
      __m256 acc = _mm256_setzero_ps (), sq = _mm256_setzero_ps ();

      for (j = 0; j < half; j += 8)
        {
          __m256i b = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) (c + j)));
          __m256 lo = _mm256_cvtepi32_ps (_mm256_and_si256 (b, low));
          __m256 hi = _mm256_cvtepi32_ps (_mm256_srli_epi32 (b, 4));
          __m256 q0 = _mm256_loadu_ps (qg + j), q1 = _mm256_loadu_ps (qg + j + half);

          acc = _mm256_fmadd_ps (lo, q0, acc);
          acc = _mm256_fmadd_ps (hi, q1, acc);
          sq = _mm256_add_ps (sq, _mm256_add_ps (q0, q1));
        }
      acc = _mm256_fmadd_ps (sq, _mm256_set1_ps ((float) z[g]), acc);
      tot = _mm256_fmadd_ps (acc, _mm256_set1_ps (rk_fp16_to_fp32 (d[g])), tot);
    }
  return rk_hsum_ps_avx2 (tot);
}

float
rk_kvf16_dot_avx2 (int            n,
                   const rk_fp16 *x,
                   const float   *q)
{
  __m256 acc = _mm256_setzero_ps ();
  float sum;
  int i;

  for (i = 0; i + 8 <= n; i += 8)
    acc = _mm256_fmadd_ps (_mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (x + i))),
                           _mm256_loadu_ps (q + i), acc);
  sum = rk_hsum_ps_avx2 (acc);
  for (; i < n; i++)
    sum += q[i] * rk_fp16_to_fp32 (x[i]);
  return sum;
}

void
rk_kvq8_axpy_avx2 (int            n,
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
      __m256 wd = _mm256_set1_ps (w * rk_fp16_to_fp32 (d[g]));

      for (j = g * group; j < (g + 1) * group; j += 8)
        _mm256_storeu_ps (y + j, _mm256_fmadd_ps (load_i8x8 (codes + j), wd,
                                                  _mm256_loadu_ps (y + j)));
    }
}

void
rk_kvq4_axpy_avx2 (int            n,
                   int            group,
                   const uint8_t *codes,
                   const rk_fp16 *d,
                   const int8_t  *z,
                   float          w,
                   float         *y)
{
  const __m256i low = _mm256_set1_epi32 (0x0F);
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
      float wdf = w * rk_fp16_to_fp32 (d[g]);
      __m256 wd = _mm256_set1_ps (wdf);
      __m256 wm = _mm256_set1_ps (wdf * (float) z[g]);

      for (j = 0; j < half; j += 8)
        {
          __m256i b = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) (c + j)));
          __m256 lo = _mm256_cvtepi32_ps (_mm256_and_si256 (b, low));
          __m256 hi = _mm256_cvtepi32_ps (_mm256_srli_epi32 (b, 4));

          _mm256_storeu_ps (yg + j, _mm256_add_ps (_mm256_loadu_ps (yg + j),
                                                   _mm256_fmadd_ps (lo, wd, wm)));
          _mm256_storeu_ps (yg + j + half, _mm256_add_ps (_mm256_loadu_ps (yg + j + half),
                                                          _mm256_fmadd_ps (hi, wd, wm)));
        }
    }
}

void
rk_kvf16_axpy_avx2 (int            n,
                    const rk_fp16 *x,
                    float          w,
                    float         *y)
{
  __m256 wv = _mm256_set1_ps (w);
  int i;

  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps (y + i,
                      _mm256_fmadd_ps (_mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (x + i))),
                                       wv, _mm256_loadu_ps (y + i)));
  for (; i < n; i++)
    y[i] += w * rk_fp16_to_fp32 (x[i]);
}

/* acc rows r0 .. r0 + NR - 1 += their weights s (row stride cnt) times the
 * values v (cnt, n); NR a constant after inlining, so c[] stays in registers. */
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

  for (i = 0; i < n; i += 8)
    {
      __m256 c[8];

      for (j = 0; j < NR; j++)
        c[j] = _mm256_loadu_ps (acc + (size_t) (r0 + j) * n + i);
      for (t = 0; t < cnt; t++)
        {
          __m256 x = _mm256_loadu_ps (v + (size_t) t * n + i);

          for (j = 0; j < NR; j++)
            c[j] = _mm256_fmadd_ps (_mm256_broadcast_ss (s + (size_t) (r0 + j) * cnt + t), x,
                                    c[j]);
        }
      for (j = 0; j < NR; j++)
        _mm256_storeu_ps (acc + (size_t) (r0 + j) * n + i, c[j]);
    }
}

void
rk_kv_group_step_avx2 (int          rows,
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
  const __m256 vs = _mm256_set1_ps (scale);
  int r, t, i;

  if (n % 8 != 0)
    {
      rk_kv_group_step_ref (rows, cnt, n, q, k, v, scale, m, l, acc, s);
      return;
    }
  if (cnt <= 0)
    return;
  for (r = 0; r < rows; r++)
    {
      const float *qr = q + (size_t) r * n;
      float *sr = s + (size_t) r * cnt, bm;
      __m256 vm = _mm256_set1_ps (-INFINITY);

      /* scores, four keys at a time (unless given) */
      for (t = 0; k != NULL && t + 4 <= cnt; t += 4)
        {
          const float *k0 = k + (size_t) t * n;
          __m256 a0 = _mm256_setzero_ps (), a1 = a0, a2 = a0, a3 = a0, h;
          __m128 h4;

          for (i = 0; i < n; i += 8)
            {
              __m256 x = _mm256_loadu_ps (qr + i);

              a0 = _mm256_fmadd_ps (_mm256_loadu_ps (k0 + i), x, a0);
              a1 = _mm256_fmadd_ps (_mm256_loadu_ps (k0 + n + i), x, a1);
              a2 = _mm256_fmadd_ps (_mm256_loadu_ps (k0 + 2 * n + i), x, a2);
              a3 = _mm256_fmadd_ps (_mm256_loadu_ps (k0 + 3 * n + i), x, a3);
            }
          h = _mm256_hadd_ps (_mm256_hadd_ps (a0, a1), _mm256_hadd_ps (a2, a3));
          h4 = _mm_add_ps (_mm256_castps256_ps128 (h), _mm256_extractf128_ps (h, 1));
          _mm_storeu_ps (sr + t, _mm_mul_ps (h4, _mm256_castps256_ps128 (vs)));
        }
      for (; k != NULL && t < cnt; t++)
        {
          __m256 a = _mm256_setzero_ps ();

          for (i = 0; i < n; i += 8)
            a = _mm256_fmadd_ps (_mm256_loadu_ps (k + (size_t) t * n + i),
                                 _mm256_loadu_ps (qr + i), a);
          sr[t] = scale * rk_hsum_ps_avx2 (a);
        }
      /* the new maximum, then the weights */
      for (t = 0; t + 8 <= cnt; t += 8)
        vm = _mm256_max_ps (vm, _mm256_loadu_ps (sr + t));
      bm = rk_hmax_ps_avx2 (vm);
      for (; t < cnt; t++)
        bm = fmaxf (bm, sr[t]);
      if (bm > m[r])
        {
          float rr = m[r] == -INFINITY ? 0.0f : expf (m[r] - bm);

          rk_scale_avx2 (acc + (size_t) r * n, acc + (size_t) r * n, rr, n);
          l[r] *= rr;
          m[r] = bm;
        }
      l[r] += rk_exp_sum_avx2 (sr, cnt, m[r]);
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

/* Integer products of one group of 64 (32 code bytes, 64 int8 query values):
 * eight int32 partial sums. */
static inline __m256i
q4_group_dot64 (const uint8_t *c, __m256i q0, __m256i q1)
{
  const __m256i low = _mm256_set1_epi8 (0x0F);
  __m256i b = _mm256_loadu_si256 ((const __m256i *) c);
  __m256i lo = _mm256_and_si256 (b, low);
  __m256i hi = _mm256_and_si256 (_mm256_srli_epi16 (b, 4), low);
  /* codes <= 15 and |q| <= 127: the 16-bit pair sums stay below 2^13 */
  __m256i x = _mm256_add_epi16 (_mm256_maddubs_epi16 (lo, q0), _mm256_maddubs_epi16 (hi, q1));

  return _mm256_madd_epi16 (x, _mm256_set1_epi16 (1));
}

static inline __m128
load_h4 (const rk_fp16 *x, size_t stride)
{
  return _mm_cvtph_ps (_mm_setr_epi16 ((short) x[0], (short) x[stride], (short) x[2 * stride],
                                       (short) x[3 * stride], 0, 0, 0, 0));
}

void
rk_kvq4_group_scores_avx2 (int            rows,
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
  int ng = n / group, r, t, g;

  if (group != 64)
    {
      rk_kvq4_group_scores_ref (rows, cnt, n, group, q8, qd, qsum, codes, code_stride, d, z,
                                scale_stride, scale, s);
      return;
    }
  for (r = 0; r < rows; r++)
    {
      const int8_t *qr = q8 + (size_t) r * n;
      float *sr = s + (size_t) r * cnt, f = scale * qd[r];

      /* four keys at a time: one horizontal-add tree for their four sums */
      for (t = 0; t + 4 <= cnt; t += 4)
        {
          const uint8_t *c0 = codes + (size_t) t * code_stride;
          __m128 acc = _mm_setzero_ps ();

          for (g = 0; g < ng; g++)
            {
              __m256i q0 = _mm256_loadu_si256 ((const __m256i *) (qr + g * 64));
              __m256i q1 = _mm256_loadu_si256 ((const __m256i *) (qr + g * 64 + 32));
              __m256i p0 = q4_group_dot64 (c0 + g * 32, q0, q1);
              __m256i p1 = q4_group_dot64 (c0 + code_stride + g * 32, q0, q1);
              __m256i p2 = q4_group_dot64 (c0 + 2 * code_stride + g * 32, q0, q1);
              __m256i p3 = q4_group_dot64 (c0 + 3 * code_stride + g * 32, q0, q1);
              __m256i h = _mm256_hadd_epi32 (_mm256_hadd_epi32 (p0, p1),
                                             _mm256_hadd_epi32 (p2, p3));
              __m128i i4 = _mm_add_epi32 (_mm256_castsi256_si128 (h),
                                          _mm256_extracti128_si256 (h, 1));
              const rk_fp16 *dt = d + (size_t) t * scale_stride + g;
              const int8_t *zt = z + (size_t) t * scale_stride + g;
              __m128i z4 = _mm_setr_epi32 (zt[0], zt[scale_stride], zt[2 * scale_stride],
                                           zt[3 * scale_stride]);

              /* d (sum q c + z sum q): the offset in integers too */
              i4 = _mm_add_epi32 (i4, _mm_mullo_epi32 (z4, _mm_set1_epi32 (qsum[(size_t) r * ng
                                                                                   + g])));
              acc = _mm_fmadd_ps (_mm_cvtepi32_ps (i4), load_h4 (dt, scale_stride), acc);
            }
          _mm_storeu_ps (sr + t, _mm_mul_ps (acc, _mm_set1_ps (f)));
        }
      for (; t < cnt; t++)
        {
          const uint8_t *ct = codes + (size_t) t * code_stride;
          float sum = 0.0f;

          for (g = 0; g < ng; g++)
            {
              __m256i q0 = _mm256_loadu_si256 ((const __m256i *) (qr + g * 64));
              __m256i q1 = _mm256_loadu_si256 ((const __m256i *) (qr + g * 64 + 32));
              __m256i p = q4_group_dot64 (ct + g * 32, q0, q1);
              __m128i p4 = _mm_add_epi32 (_mm256_castsi256_si128 (p),
                                          _mm256_extracti128_si256 (p, 1));
              int32_t isum;

              p4 = _mm_add_epi32 (p4, _mm_shuffle_epi32 (p4, 0x4E));
              p4 = _mm_add_epi32 (p4, _mm_shuffle_epi32 (p4, 0xB1));
              isum = _mm_cvtsi128_si32 (p4) +
                     qsum[(size_t) r * ng + g] * z[(size_t) t * scale_stride + g];
              sum += (float) isum * rk_fp16_to_fp32 (d[(size_t) t * scale_stride + g]);
            }
          sr[t] = f * sum;
        }
    }
}

/* Integer products of 16 codes (int8, or int16 where wide) with 16 int16
 * query values: eight int32 partial sums (pairs at most 2 * 32767 * 511). */
static inline __m256i
i16_dot16 (const void *codes, size_t i, int wide, __m256i q)
{
  __m256i c = wide ? _mm256_loadu_si256 ((const __m256i *) ((const int16_t *) codes + i))
                   : _mm256_cvtepi8_epi16 (_mm_loadu_si128 ((const __m128i *)
                                                            ((const int8_t *) codes + i)));

  return _mm256_madd_epi16 (c, q);
}

/* The body of both int16-query kernels: codes int8 (Q8, Q7 unpacked) or
 * int16 (Q10 unpacked, wide), key t's at element t * code_stride; group a
 * multiple of 16, small enough for int32 sums. Four keys at a time: one
 * horizontal-add tree for their four sums. */
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
    {
      const int16_t *qr = q16 + (size_t) r * n;
      float *sr = s + (size_t) r * cnt, f = scale * qd[r];

      for (t = 0; t + 4 <= cnt; t += 4)
        {
          size_t c0 = (size_t) t * code_stride;
          __m128 acc = _mm_setzero_ps ();

          for (g = 0; g < ng; g++)
            {
              __m256i p0 = _mm256_setzero_si256 (), p1 = p0, p2 = p0, p3 = p0, h;
              __m128i i4;

              for (i = g * group; i < (g + 1) * group; i += 16)
                {
                  __m256i q = _mm256_loadu_si256 ((const __m256i *) (qr + i));

                  p0 = _mm256_add_epi32 (p0, i16_dot16 (codes, c0 + i, wide, q));
                  p1 = _mm256_add_epi32 (p1, i16_dot16 (codes, c0 + code_stride + i, wide, q));
                  p2 = _mm256_add_epi32 (p2, i16_dot16 (codes, c0 + 2 * code_stride + i, wide,
                                                        q));
                  p3 = _mm256_add_epi32 (p3, i16_dot16 (codes, c0 + 3 * code_stride + i, wide,
                                                        q));
                }
              h = _mm256_hadd_epi32 (_mm256_hadd_epi32 (p0, p1), _mm256_hadd_epi32 (p2, p3));
              i4 = _mm_add_epi32 (_mm256_castsi256_si128 (h), _mm256_extracti128_si256 (h, 1));
              acc = _mm_fmadd_ps (_mm_cvtepi32_ps (i4),
                                  load_h4 (d + (size_t) t * scale_stride + g, scale_stride), acc);
            }
          _mm_storeu_ps (sr + t, _mm_mul_ps (acc, _mm_set1_ps (f)));
        }
      for (; t < cnt; t++)
        {
          float sum = 0.0f;

          for (g = 0; g < ng; g++)
            {
              __m256i p = _mm256_setzero_si256 ();
              __m128i p4;

              for (i = g * group; i < (g + 1) * group; i += 16)
                p = _mm256_add_epi32 (p, i16_dot16 (codes, (size_t) t * code_stride + i, wide,
                                                    _mm256_loadu_si256 ((const __m256i *)
                                                                        (qr + i))));
              p4 = _mm_add_epi32 (_mm256_castsi256_si128 (p), _mm256_extracti128_si256 (p, 1));
              p4 = _mm_add_epi32 (p4, _mm_shuffle_epi32 (p4, 0x4E));
              p4 = _mm_add_epi32 (p4, _mm_shuffle_epi32 (p4, 0xB1));
              sum += (float) _mm_cvtsi128_si32 (p4) *
                     rk_fp16_to_fp32 (d[(size_t) t * scale_stride + g]);
            }
          sr[t] = f * sum;
        }
    }
}

void
rk_kvq8_group_scores_avx2 (int            rows,
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
  if (group % 16 != 0 || group > 512)
    rk_kvq8_group_scores_ref (rows, cnt, n, group, q16, qd, codes, code_stride, d,
                              scale_stride, scale, s);
  else
    i16_group_scores (rows, cnt, n, group, q16, qd, codes, 0, code_stride, d, scale_stride,
                      scale, s);
}

/* max |q| of a row (n % 8 == 0); max_ps returns its second operand for a
 * NaN, as fmaxf skips it. */
static inline float
query_amax (const float *qr, int n)
{
  const __m256 sign = _mm256_set1_ps (-0.0f);
  __m256 vmax = _mm256_setzero_ps ();
  int i;

  for (i = 0; i < n; i += 8)
    vmax = _mm256_max_ps (_mm256_andnot_ps (sign, _mm256_loadu_ps (qr + i)), vmax);
  return rk_hmax_ps_avx2 (vmax);
}

/* The reference's operations eight at a time: the same maximum, product and
 * round-to-nearest-even conversion, so the same bits. */
void
rk_kvq_quantize_query_avx2 (int          rows,
                            int          n,
                            int          group,
                            const float *q,
                            int8_t      *q8,
                            float       *qd,
                            int32_t     *qsum)
{
  const __m256i lo_clamp = _mm256_set1_epi32 (-127);
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
      float amax = query_amax (qr, n);
      __m256 vinv;

      qd[r] = amax / 127.0f;
      vinv = _mm256_set1_ps (amax > 0.0f ? 127.0f / amax : 0.0f);
      for (g = 0; g < n / group; g++)
        {
          __m256i sum = _mm256_setzero_si256 ();
          __m128i s4;

          for (i = g * group; i < (g + 1) * group; i += 8)
            {
              __m256i c = _mm256_cvtps_epi32 (_mm256_mul_ps (_mm256_loadu_ps (qr + i), vinv));
              __m128i c16;

              c = _mm256_max_epi32 (c, lo_clamp);
              sum = _mm256_add_epi32 (sum, c);
              c16 = _mm_packs_epi32 (_mm256_castsi256_si128 (c), _mm256_extracti128_si256 (c, 1));
              _mm_storel_epi64 ((__m128i *) (void *) (cr + i), _mm_packs_epi16 (c16, c16));
            }
          s4 = _mm_add_epi32 (_mm256_castsi256_si128 (sum), _mm256_extracti128_si256 (sum, 1));
          s4 = _mm_add_epi32 (s4, _mm_shuffle_epi32 (s4, 0x4E));
          s4 = _mm_add_epi32 (s4, _mm_shuffle_epi32 (s4, 0xB1));
          qsum[(size_t) r * (n / group) + g] = _mm_cvtsi128_si32 (s4);
        }
    }
}

/* The int16 query: the reference's maximum, product and rounding, eight at
 * a time. */
void
rk_kvq_quantize_query16_avx2 (int          rows,
                              int          n,
                              const float *q,
                              int16_t     *q16,
                              float       *qd)
{
  const __m256i lo_clamp = _mm256_set1_epi32 (-32767);
  int r, i;

  if (n % 8 != 0)
    {
      rk_kvq_quantize_query16_ref (rows, n, q, q16, qd);
      return;
    }
  for (r = 0; r < rows; r++)
    {
      const float *qr = q + (size_t) r * n;
      int16_t *cr = q16 + (size_t) r * n;
      float amax = query_amax (qr, n);
      __m256 vinv;

      qd[r] = amax / 32767.0f;
      vinv = _mm256_set1_ps (amax > 0.0f ? 32767.0f / amax : 0.0f);
      for (i = 0; i < n; i += 8)
        {
          __m256i c = _mm256_cvtps_epi32 (_mm256_mul_ps (_mm256_loadu_ps (qr + i), vinv));

          /* packs saturates at +32767 as the reference clamps */
          c = _mm256_max_epi32 (c, lo_clamp);
          _mm_storeu_si128 ((__m128i *) (void *) (cr + i),
                            _mm_packs_epi32 (_mm256_castsi256_si128 (c),
                                             _mm256_extracti128_si256 (c, 1)));
        }
    }
}

/* Q7: 64 values at a time from their three planes (see rk-kvquant.h); the
 * 2-bit and 1-bit planes are broadcast and shifted per 64-bit lane, so each
 * byte lands under the values it holds bits of. */
void
rk_kvq7_unpack_avx2 (int            n,
                     const uint8_t *packed,
                     int8_t        *codes)
{
  const __m256i m4 = _mm256_set1_epi8 (0x0F), m2 = _mm256_set1_epi8 (3);
  const __m256i m1 = _mm256_set1_epi8 (1), off = _mm256_set1_epi8 (64);
  int i;

  for (i = 0; i + 64 <= n; i += 64)
    {
      const uint8_t *p = packed + (size_t) i * 7 / 8;
      __m256i nib = _mm256_loadu_si256 ((const __m256i *) p);
      __m256i p2 = _mm256_broadcastsi128_si256 (_mm_loadu_si128 ((const __m128i *) (p + 32)));
      int64_t w;
      __m256i p1, lo, hi, b2lo, b2hi, b1lo, b1hi;

      memcpy (&w, p + 48, sizeof w);
      p1 = _mm256_set1_epi64x (w);
      lo = _mm256_and_si256 (nib, m4);
      hi = _mm256_and_si256 (_mm256_srli_epi16 (nib, 4), m4);
      b2lo = _mm256_and_si256 (_mm256_srlv_epi64 (p2, _mm256_setr_epi64x (0, 0, 2, 2)), m2);
      b2hi = _mm256_and_si256 (_mm256_srlv_epi64 (p2, _mm256_setr_epi64x (4, 4, 6, 6)), m2);
      b1lo = _mm256_and_si256 (_mm256_srlv_epi64 (p1, _mm256_setr_epi64x (0, 1, 2, 3)), m1);
      b1hi = _mm256_and_si256 (_mm256_srlv_epi64 (p1, _mm256_setr_epi64x (4, 5, 6, 7)), m1);
      /* bytes of at most 3 and 1: the 16-bit shifts carry nothing across */
      lo = _mm256_or_si256 (lo, _mm256_or_si256 (_mm256_slli_epi16 (b2lo, 4),
                                                 _mm256_slli_epi16 (b1lo, 6)));
      hi = _mm256_or_si256 (hi, _mm256_or_si256 (_mm256_slli_epi16 (b2hi, 4),
                                                 _mm256_slli_epi16 (b1hi, 6)));
      _mm256_storeu_si256 ((__m256i *) (void *) (codes + i), _mm256_sub_epi8 (lo, off));
      _mm256_storeu_si256 ((__m256i *) (void *) (codes + i + 32), _mm256_sub_epi8 (hi, off));
    }
  if (i < n)
    rk_kvq7_unpack_ref (n - i, packed + (size_t) i * 7 / 8, codes + i);
}

/* Q10: 64 values at a time, 16 per step: the low bytes widened, bits 8-9
 * from the 2-bit plane (the 16-bit shifts leave each byte's own bits in its
 * low two after the mask). */
void
rk_kvq10_unpack_avx2 (int            n,
                      const uint8_t *packed,
                      int16_t       *codes)
{
  const __m128i m2 = _mm_set1_epi8 (3);
  const __m256i off = _mm256_set1_epi16 (512);
  int i, k;

  for (i = 0; i + 64 <= n; i += 64)
    {
      const uint8_t *p = packed + (size_t) i * 10 / 8;
      __m128i p2 = _mm_loadu_si128 ((const __m128i *) (p + 64)), hk[4];

      hk[0] = _mm_and_si128 (p2, m2);
      hk[1] = _mm_and_si128 (_mm_srli_epi16 (p2, 2), m2);
      hk[2] = _mm_and_si128 (_mm_srli_epi16 (p2, 4), m2);
      hk[3] = _mm_and_si128 (_mm_srli_epi16 (p2, 6), m2);
      for (k = 0; k < 4; k++)
        {
          __m256i lo = _mm256_cvtepu8_epi16 (_mm_loadu_si128 ((const __m128i *) (p + 16 * k)));
          __m256i hi = _mm256_slli_epi16 (_mm256_cvtepu8_epi16 (hk[k]), 8);

          _mm256_storeu_si256 ((__m256i *) (void *) (codes + i + 16 * k),
                               _mm256_sub_epi16 (_mm256_or_si256 (lo, hi), off));
        }
    }
  if (i < n)
    rk_kvq10_unpack_ref (n - i, packed + (size_t) i * 10 / 8, codes + i);
}

void
rk_kvq16_dequantize_avx2 (int            n,
                          int            group,
                          const int16_t *codes,
                          const rk_fp16 *d,
                          float         *x)
{
  int i;

  if (group % 8 != 0)
    {
      rk_kvq16_dequantize_ref (n, group, codes, d, x);
      return;
    }
  for (i = 0; i < n; i += 8)
    {
      __m256 c = _mm256_cvtepi32_ps (_mm256_cvtepi16_epi32 (_mm_loadu_si128 ((const __m128i *)
                                                                             (codes + i))));

      _mm256_storeu_ps (x + i, _mm256_mul_ps (c, _mm256_set1_ps (rk_fp16_to_fp32 (d[i / group]))));
    }
}

void
rk_kvq16_group_scores_avx2 (int            rows,
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
  if (group % 16 != 0 || group > 128)
    rk_kvq16_group_scores_ref (rows, cnt, n, group, q16, qd, codes, code_stride, d,
                               scale_stride, scale, s);
  else
    i16_group_scores (rows, cnt, n, group, q16, qd, codes, 1, code_stride, d, scale_stride,
                      scale, s);
}
