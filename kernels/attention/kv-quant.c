/* kv-quant.c — quantized KV rows: the reference kernels, the quantizers and
 * the per-ISA kernel table. SPDX-License-Identifier: MIT
 *
 * See rk-kvquant.h for the formats. The quantizers guarantee |x - x'| <= d/2
 * for every value (up to float rounding of the division), which the tests
 * check element by element, for K and V separately.
 */
#include <math.h>
#include <string.h>

#include "rk-kvquant.h"
#include "rk-ops.h"

float
rk_kvq8_dot_ref (int            n,
                 int            group,
                 const int8_t  *codes,
                 const rk_fp16 *d,
                 const float   *q)
{
  float sum = 0.0f;
  int g, j;

  for (g = 0; g < n / group; g++)
    {
      float s = 0.0f;

      for (j = 0; j < group; j++)
        s += q[g * group + j] * (float) codes[g * group + j];
      sum += s * rk_fp16_to_fp32 (d[g]);
    }
  return sum;
}

float
rk_kvq4_dot_ref (int            n,
                 int            group,
                 const uint8_t *codes,
                 const rk_fp16 *d,
                 const int8_t  *z,
                 const float   *q)
{
  int half = group / 2;
  float sum = 0.0f;
  int g, j;

  /* sum q d (c + z) = d * (sum q c + z * sum q), per group. */
  for (g = 0; g < n / group; g++)
    {
      const uint8_t *c = codes + g * half;
      const float *qg = q + g * group;
      float sqc = 0.0f, sq = 0.0f;

      for (j = 0; j < half; j++)
        {
          sqc += qg[j] * (float) (c[j] & 0x0F) + qg[j + half] * (float) (c[j] >> 4);
          sq += qg[j] + qg[j + half];
        }
      sum += (sqc + (float) z[g] * sq) * rk_fp16_to_fp32 (d[g]);
    }
  return sum;
}

float
rk_kvf16_dot_ref (int            n,
                  const rk_fp16 *x,
                  const float   *q)
{
  float sum = 0.0f;
  int i;

  for (i = 0; i < n; i++)
    sum += q[i] * rk_fp16_to_fp32 (x[i]);
  return sum;
}

void
rk_kvq8_axpy_ref (int            n,
                  int            group,
                  const int8_t  *codes,
                  const rk_fp16 *d,
                  float          w,
                  float         *y)
{
  int g, j;

  for (g = 0; g < n / group; g++)
    {
      float wd = w * rk_fp16_to_fp32 (d[g]);

      for (j = 0; j < group; j++)
        y[g * group + j] += wd * (float) codes[g * group + j];
    }
}

void
rk_kvq4_axpy_ref (int            n,
                  int            group,
                  const uint8_t *codes,
                  const rk_fp16 *d,
                  const int8_t  *z,
                  float          w,
                  float         *y)
{
  int half = group / 2;
  int g, j;

  for (g = 0; g < n / group; g++)
    {
      const uint8_t *c = codes + g * half;
      float *yg = y + g * group;
      float wd = w * rk_fp16_to_fp32 (d[g]);
      float wm = wd * (float) z[g];

      for (j = 0; j < half; j++)
        {
          yg[j] += wm + wd * (float) (c[j] & 0x0F);
          yg[j + half] += wm + wd * (float) (c[j] >> 4);
        }
    }
}

void
rk_kvf16_axpy_ref (int            n,
                   const rk_fp16 *x,
                   float          w,
                   float         *y)
{
  int i;

  for (i = 0; i < n; i++)
    y[i] += w * rk_fp16_to_fp32 (x[i]);
}

/* A query row's step for codes up to qmax: max |q| / qmax, and in *inv
 * qmax / max |q| (0 for a zero row). */
static float
query_step (const float *qr, int n, float qmax, float *inv)
{
  float amax = 0.0f;
  int i;

  for (i = 0; i < n; i++)
    amax = fmaxf (amax, fabsf (qr[i]));
  *inv = amax > 0.0f ? qmax / amax : 0.0f;
  return amax / qmax;
}

void
rk_kvq_quantize_query_ref (int          rows,
                           int          n,
                           int          group,
                           const float *q,
                           int8_t      *q8,
                           float       *qd,
                           int32_t     *qsum)
{
  int r, i;

  for (r = 0; r < rows; r++)
    {
      const float *qr = q + (size_t) r * n;
      float inv;

      qd[r] = query_step (qr, n, 127.0f, &inv);
      for (i = 0; i < n / group; i++)
        qsum[(size_t) r * (n / group) + i] = 0;
      for (i = 0; i < n; i++)
        {
          int c = (int) lrintf (qr[i] * inv);

          c = c > 127 ? 127 : c < -127 ? -127 : c;
          q8[(size_t) r * n + i] = (int8_t) c;
          qsum[(size_t) r * (n / group) + i / group] += c;
        }
    }
}

void
rk_kvq_quantize_query16_ref (int          rows,
                             int          n,
                             const float *q,
                             int16_t     *q16,
                             float       *qd)
{
  int r, i;

  for (r = 0; r < rows; r++)
    {
      const float *qr = q + (size_t) r * n;
      float inv;

      qd[r] = query_step (qr, n, 32767.0f, &inv);
      for (i = 0; i < n; i++)
        {
          int c = (int) lrintf (qr[i] * inv);

          q16[(size_t) r * n + i] = (int16_t) (c > 32767 ? 32767 : c < -32767 ? -32767 : c);
        }
    }
}

void
rk_kvq4_group_scores_ref (int            rows,
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
  int half = group / 2, ng = n / group;
  int r, t, g, j;

  for (r = 0; r < rows; r++)
    for (t = 0; t < cnt; t++)
      {
        const uint8_t *ct = codes + (size_t) t * code_stride;
        const int8_t *qr = q8 + (size_t) r * n;
        float sum = 0.0f;

        for (g = 0; g < ng; g++)
          {
            const uint8_t *c = ct + (size_t) g * half;
            const int8_t *qg = qr + (size_t) g * group;
            int32_t isum = 0;

            for (j = 0; j < half; j++)
              isum += qg[j] * (c[j] & 0x0F) + qg[j + half] * (c[j] >> 4);
            isum += qsum[(size_t) r * ng + g] * z[(size_t) t * scale_stride + g];
            sum += (float) isum * rk_fp16_to_fp32 (d[(size_t) t * scale_stride + g]);
          }
        s[(size_t) r * cnt + t] = scale * qd[r] * sum;
      }
}

/* The body of both int16-query references: codes int8 (Q8, Q7 unpacked) or
 * int16 (Q10 unpacked, wide), key t's at element t * code_stride; int64
 * sums, exact for any group. */
static void
i16_group_scores_ref (int            rows,
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
  int ng = n / group;
  int r, t, g, j;

  for (r = 0; r < rows; r++)
    for (t = 0; t < cnt; t++)
      {
        const int16_t *qr = q16 + (size_t) r * n;
        size_t c0 = (size_t) t * code_stride;
        float sum = 0.0f;

        for (g = 0; g < ng; g++)
          {
            int64_t isum = 0;

            for (j = g * group; j < (g + 1) * group; j++)
              isum += qr[j] * (wide ? ((const int16_t *) codes)[c0 + j]
                                    : ((const int8_t *) codes)[c0 + j]);
            sum += (float) isum * rk_fp16_to_fp32 (d[(size_t) t * scale_stride + g]);
          }
        s[(size_t) r * cnt + t] = scale * qd[r] * sum;
      }
}

void
rk_kvq8_group_scores_ref (int            rows,
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
  i16_group_scores_ref (rows, cnt, n, group, q16, qd, codes, 0, code_stride, d, scale_stride,
                        scale, s);
}

/* Rescales row r's state for a new maximum bm (when it is larger). */
static void
group_rescale (int r, int n, float bm, float *m, float *l, float *acc)
{
  float rr;

  if (!(bm > m[r]))
    return;
  rr = m[r] == -INFINITY ? 0.0f : expf (m[r] - bm);
  rk_scale_ref (acc + (size_t) r * n, acc + (size_t) r * n, rr, n);
  l[r] *= rr;
  m[r] = bm;
}

void
rk_kv_group_step_ref (int          rows,
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

  if (cnt <= 0)
    return;
  for (r = 0; r < rows; r++)
    {
      float *sr = s + (size_t) r * cnt, bm = -INFINITY;

      for (t = 0; t < cnt; t++)
        {
          float d = 0.0f;

          if (k != NULL)
            {
              for (i = 0; i < n; i++)
                d += q[(size_t) r * n + i] * k[(size_t) t * n + i];
              sr[t] = scale * d;
            }
          bm = fmaxf (bm, sr[t]);
        }
      group_rescale (r, n, bm, m, l, acc);
      l[r] += rk_exp_sum_ref (sr, cnt, m[r]);
    }
  for (r = 0; r < rows; r++)
    for (t = 0; t < cnt; t++)
      for (i = 0; i < n; i++)
        acc[(size_t) r * n + i] += s[(size_t) r * cnt + t] * v[(size_t) t * n + i];
}

/* ---- quantizers --------------------------------------------------------- */

/* The next half above h (h finite). */
static rk_fp16
half_up (rk_fp16 h)
{
  if (h == 0x8000)
    return 0x0001;
  return (h & 0x8000) ? (rk_fp16) (h - 1) : (rk_fp16) (h + 1);
}

/* Symmetric codes in -qmax..qmax (Q8: 127, Q7: 63, Q10: 511), into c8 or
 * (Q10) c16. */
static void
quantize_sym (int          n,
              int          group,
              const float *x,
              int8_t      *c8,
              int16_t     *c16,
              rk_fp16     *d,
              int          qmax)
{
  int g, j;

  for (g = 0; g < n / group; g++)
    {
      const float *xg = x + g * group;
      float amax = 0.0f, df;
      rk_fp16 dh;

      for (j = 0; j < group; j++)
        amax = fmaxf (amax, fabsf (xg[j]));
      if (amax == 0.0f)
        {
          d[g] = 0;
          for (j = 0; j < group; j++)
            if (c8 != NULL)
              c8[g * group + j] = 0;
            else
              c16[g * group + j] = 0;
          continue;
        }
      /* Round the scale to half, then make sure qmax * d still covers amax
       * so that no code clamps (an error of at most d/2 everywhere). */
      dh = rk_fp32_to_fp16 (amax / (float) qmax);
      while (rk_fp16_to_fp32 (dh) * (float) qmax < amax && (dh & 0x7C00) != 0x7C00)
        dh = half_up (dh);
      d[g] = dh;
      df = rk_fp16_to_fp32 (dh);
      for (j = 0; j < group; j++)
        {
          float c = roundf (xg[j] / df);
          int ci = (int) (c > qmax ? qmax : c < -qmax ? -qmax : c);

          if (c8 != NULL)
            c8[g * group + j] = (int8_t) ci;
          else
            c16[g * group + j] = (int16_t) ci;
        }
    }
}

void
rk_kvq8_quantize (int          n,
                  int          group,
                  const float *x,
                  int8_t      *codes,
                  rk_fp16     *d)
{
  quantize_sym (n, group, x, codes, NULL, d, 127);
}

/* The planes of one chunk of m values (m % 8 == 0, m <= 64). */
static void
q7_pack_chunk (int m, const int8_t *c, uint8_t *p)
{
  uint8_t *p2 = p + m / 2, *p1 = p2 + m / 4;
  int i;

  memset (p, 0, (size_t) m * 7 / 8);
  for (i = 0; i < m; i++)
    {
      unsigned u = (unsigned) (c[i] + 64);

      p[i % (m / 2)] |= (uint8_t) ((u & 15) << (4 * (i / (m / 2))));
      p2[i % (m / 4)] |= (uint8_t) (((u >> 4) & 3) << (2 * (i / (m / 4))));
      p1[i % (m / 8)] |= (uint8_t) (((u >> 6) & 1) << (i / (m / 8)));
    }
}

static void
q7_unpack_chunk (int m, const uint8_t *p, int8_t *c)
{
  const uint8_t *p2 = p + m / 2, *p1 = p2 + m / 4;
  int i;

  for (i = 0; i < m; i++)
    {
      unsigned u = ((p[i % (m / 2)] >> (4 * (i / (m / 2)))) & 15) |
                   ((p2[i % (m / 4)] >> (2 * (i / (m / 4)))) & 3) << 4 |
                   ((p1[i % (m / 8)] >> (i / (m / 8))) & 1) << 6;

      c[i] = (int8_t) ((int) u - 64);
    }
}

void
rk_kvq7_pack (int           n,
              const int8_t *codes,
              uint8_t      *packed)
{
  int i;

  for (i = 0; i < n; i += 64)
    q7_pack_chunk (n - i < 64 ? n - i : 64, codes + i, packed + (size_t) i * 7 / 8);
}

void
rk_kvq7_unpack_ref (int            n,
                    const uint8_t *packed,
                    int8_t        *codes)
{
  int i;

  for (i = 0; i < n; i += 64)
    q7_unpack_chunk (n - i < 64 ? n - i : 64, packed + (size_t) i * 7 / 8, codes + i);
}

void
rk_kvq7_quantize (int          n,
                  int          group,
                  const float *x,
                  uint8_t     *packed,
                  rk_fp16     *d)
{
  int8_t codes[512];

  quantize_sym (n, group, x, codes, NULL, d, 63);
  rk_kvq7_pack (n, codes, packed);
}

/* Q10: per chunk of m <= 64 values (m % 4 == 0), m low bytes of u = c + 512,
 * then m/4 bytes of bits 8-9 (byte j: value j + k m/4 at bit 2k). */
void
rk_kvq10_pack (int            n,
               const int16_t *codes,
               uint8_t       *packed)
{
  int i, k;

  for (i = 0; i < n; i += 64)
    {
      int m = n - i < 64 ? n - i : 64;
      uint8_t *p = packed + (size_t) i * 10 / 8, *p2 = p + m;

      memset (p2, 0, (size_t) m / 4);
      for (k = 0; k < m; k++)
        {
          unsigned u = (unsigned) (codes[i + k] + 512);

          p[k] = (uint8_t) (u & 0xFF);
          p2[k % (m / 4)] |= (uint8_t) ((u >> 8) << (2 * (k / (m / 4))));
        }
    }
}

void
rk_kvq10_unpack_ref (int            n,
                     const uint8_t *packed,
                     int16_t       *codes)
{
  int i, k;

  for (i = 0; i < n; i += 64)
    {
      int m = n - i < 64 ? n - i : 64;
      const uint8_t *p = packed + (size_t) i * 10 / 8, *p2 = p + m;

      for (k = 0; k < m; k++)
        codes[i + k] = (int16_t) ((int) (p[k] | ((p2[k % (m / 4)] >> (2 * (k / (m / 4)))) & 3)
                                               << 8) - 512);
    }
}

void
rk_kvq10_quantize (int          n,
                   int          group,
                   const float *x,
                   uint8_t     *packed,
                   rk_fp16     *d)
{
  int16_t codes[512];

  quantize_sym (n, group, x, NULL, codes, d, 511);
  rk_kvq10_pack (n, codes, packed);
}

void
rk_kvq16_dequantize_ref (int            n,
                         int            group,
                         const int16_t *codes,
                         const rk_fp16 *d,
                         float         *x)
{
  int i;

  for (i = 0; i < n; i++)
    x[i] = rk_fp16_to_fp32 (d[i / group]) * (float) codes[i];
}

void
rk_kvq16_group_scores_ref (int            rows,
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
  i16_group_scores_ref (rows, cnt, n, group, q16, qd, codes, 1, code_stride, d, scale_stride,
                        scale, s);
}

void
rk_kvq4_quantize (int          n,
                  int          group,
                  const float *x,
                  uint8_t     *codes,
                  rk_fp16     *d,
                  int8_t      *z)
{
  int half = group / 2;
  int g, j;

  for (g = 0; g < n / group; g++)
    {
      const float *xg = x + g * group;
      uint8_t *c = codes + g * half;
      float mn = xg[0], mx = xg[0], df, zf;
      int zi;
      rk_fp16 dh;

      for (j = 1; j < group; j++)
        {
          mn = fminf (mn, xg[j]);
          mx = fmaxf (mx, xg[j]);
        }
      if (mn == 0.0f && mx == 0.0f)
        {
          d[g] = 0;
          z[g] = 0;
          memset (c, 0, (size_t) half);
          continue;
        }
      /* Values round to the grid d * k; z = round (mn / d) and the group's
       * 16 codes k - z must reach round (mx / d), with z in int8. Start at
       * the smallest step that allows both, then step up the halves until
       * they hold after rounding, so no code clamps and every value is
       * within d/2. */
      df = fmaxf ((mx - mn) / 15.0f, fmaxf (-mn / 128.0f, mn / 127.0f));
      dh = rk_fp32_to_fp16 (df);
      if ((dh & 0x7FFF) == 0)
        dh = 0x0001;
      else if (!(dh <= 0x7BFF))   /* beyond the halves (or NaN): the largest */
        dh = 0x7BFF;
      for (;;)
        {
          float lo, hi;

          df = rk_fp16_to_fp32 (dh);
          lo = floorf (mn / df + 0.5f);
          hi = floorf (mx / df + 0.5f);
          if ((lo >= -128.0f && lo <= 127.0f && hi - lo <= 15.0f) || dh >= 0x7BFF)
            break;
          dh = half_up (dh);
        }
      /* clamped before the casts with comparisons a NaN fails (a NaN or an
       * infinity in the group gives garbage, never undefined behaviour) */
      zf = floorf (mn / df + 0.5f);
      zi = !(zf >= -128.0f) ? -128 : !(zf <= 127.0f) ? 127 : (int) zf;
      d[g] = dh;
      z[g] = (int8_t) zi;
      for (j = 0; j < half; j++)
        {
          float lo = floorf (xg[j] / df + 0.5f) - (float) zi;
          float hi = floorf (xg[j + half] / df + 0.5f) - (float) zi;

          lo = !(lo >= 0.0f) ? 0.0f : lo > 15.0f ? 15.0f : lo;
          hi = !(hi >= 0.0f) ? 0.0f : hi > 15.0f ? 15.0f : hi;
          c[j] = (uint8_t) ((int) lo | ((int) hi << 4));
        }
    }
}

void
rk_kvq8_dequantize (int            n,
                    int            group,
                    const int8_t  *codes,
                    const rk_fp16 *d,
                    float         *x)
{
  int i;

  for (i = 0; i < n; i++)
    x[i] = rk_fp16_to_fp32 (d[i / group]) * (float) codes[i];
}

void
rk_kvq4_dequantize (int            n,
                    int            group,
                    const uint8_t *codes,
                    const rk_fp16 *d,
                    const int8_t  *z,
                    float         *x)
{
  int half = group / 2;
  int g, j;

  for (g = 0; g < n / group; g++)
    {
      const uint8_t *c = codes + g * half;
      float df = rk_fp16_to_fp32 (d[g]);

      for (j = 0; j < half; j++)
        {
          x[g * group + j] = df * (float) ((c[j] & 0x0F) + z[g]);
          x[g * group + j + half] = df * (float) ((c[j] >> 4) + z[g]);
        }
    }
}

/* ---- dispatch ----------------------------------------------------------- */

rk_kvq_kernels
rk_kvq_kernels_for_isa (rk_isa isa)
{
  rk_kvq_kernels k = {
    rk_kvq8_dot_ref, rk_kvq4_dot_ref, rk_kvf16_dot_ref,
    rk_kvq8_axpy_ref, rk_kvq4_axpy_ref, rk_kvf16_axpy_ref, rk_kvq4_group_scores_ref,
    rk_kvq8_group_scores_ref, rk_kv_group_step_ref, rk_kvq_quantize_query_ref,
    rk_kvq_quantize_query16_ref, rk_kvq7_unpack_ref, rk_kvq10_unpack_ref,
    rk_kvq16_dequantize_ref, rk_kvq16_group_scores_ref,
  };

#if defined(RK_HAVE_AVX2)
  if (isa == RK_ISA_AVX2 && rk_cpu_has_isa (RK_ISA_AVX2))
    {
      k.q8_dot = rk_kvq8_dot_avx2;
      k.q4_dot = rk_kvq4_dot_avx2;
      k.f16_dot = rk_kvf16_dot_avx2;
      k.q8_axpy = rk_kvq8_axpy_avx2;
      k.q4_axpy = rk_kvq4_axpy_avx2;
      k.f16_axpy = rk_kvf16_axpy_avx2;
      k.q4_group_scores = rk_kvq4_group_scores_avx2;
      k.q8_group_scores = rk_kvq8_group_scores_avx2;
      k.group_step = rk_kv_group_step_avx2;
      k.quantize_query = rk_kvq_quantize_query_avx2;
      k.quantize_query16 = rk_kvq_quantize_query16_avx2;
      k.q7_unpack = rk_kvq7_unpack_avx2;
      k.q10_unpack = rk_kvq10_unpack_avx2;
      k.q16_dequantize = rk_kvq16_dequantize_avx2;
      k.q16_group_scores = rk_kvq16_group_scores_avx2;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (isa == RK_ISA_NEON && rk_cpu_has_isa (RK_ISA_NEON))
    {
      k.q8_dot = rk_kvq8_dot_neon;
      k.q4_dot = rk_kvq4_dot_neon;
      k.f16_dot = rk_kvf16_dot_neon;
      k.q8_axpy = rk_kvq8_axpy_neon;
      k.q4_axpy = rk_kvq4_axpy_neon;
      k.f16_axpy = rk_kvf16_axpy_neon;
      k.q4_group_scores = rk_kvq4_group_scores_neon;
      k.q8_group_scores = rk_kvq8_group_scores_neon;
      k.group_step = rk_kv_group_step_neon;
      k.quantize_query = rk_kvq_quantize_query_neon;
      k.quantize_query16 = rk_kvq_quantize_query16_neon;
      k.q7_unpack = rk_kvq7_unpack_neon;
      k.q10_unpack = rk_kvq10_unpack_neon;
      k.q16_dequantize = rk_kvq16_dequantize_neon;
      k.q16_group_scores = rk_kvq16_group_scores_neon;
    }
#endif
  (void) isa;
  return k;
}

rk_kvq_kernels
rk_kvq_kernels_get (void)
{
  rk_cpu_init ();
  return rk_kvq_kernels_for_isa (rk_cpu_isa ());
}

/* Dispatched names, for callers that make one call. */
void
rk_kvq_quantize_query (int rows, int n, int group, const float *q, int8_t *q8, float *qd,
                       int32_t *qsum)
{
  rk_kvq_kernels_get ().quantize_query (rows, n, group, q, q8, qd, qsum);
}

void
rk_kvq7_unpack (int n, const uint8_t *packed, int8_t *codes)
{
  rk_kvq_kernels_get ().q7_unpack (n, packed, codes);
}

void
rk_kvq10_unpack (int n, const uint8_t *packed, int16_t *codes)
{
  rk_kvq_kernels_get ().q10_unpack (n, packed, codes);
}

void
rk_kvq16_dequantize (int n, int group, const int16_t *codes, const rk_fp16 *d, float *x)
{
  rk_kvq_kernels_get ().q16_dequantize (n, group, codes, d, x);
}

void
rk_kvq16_group_scores (int rows, int cnt, int n, int group, const int16_t *q16, const float *qd,
                       const int16_t *codes, size_t code_stride, const rk_fp16 *d,
                       size_t scale_stride, float scale, float *s)
{
  rk_kvq_kernels_get ().q16_group_scores (rows, cnt, n, group, q16, qd, codes, code_stride, d,
                                          scale_stride, scale, s);
}

void
rk_kvq_quantize_query16 (int rows, int n, const float *q, int16_t *q16, float *qd)
{
  rk_kvq_kernels_get ().quantize_query16 (rows, n, q, q16, qd);
}

float
rk_kvq8_dot (int n, int group, const int8_t *codes, const rk_fp16 *d, const float *q)
{
  return rk_kvq_kernels_get ().q8_dot (n, group, codes, d, q);
}

float
rk_kvq4_dot (int n, int group, const uint8_t *codes, const rk_fp16 *d, const int8_t *z,
             const float *q)
{
  return rk_kvq_kernels_get ().q4_dot (n, group, codes, d, z, q);
}

float
rk_kvf16_dot (int n, const rk_fp16 *x, const float *q)
{
  return rk_kvq_kernels_get ().f16_dot (n, x, q);
}

void
rk_kvq8_axpy (int n, int group, const int8_t *codes, const rk_fp16 *d, float w, float *y)
{
  rk_kvq_kernels_get ().q8_axpy (n, group, codes, d, w, y);
}

void
rk_kvq4_axpy (int n, int group, const uint8_t *codes, const rk_fp16 *d, const int8_t *z,
              float w, float *y)
{
  rk_kvq_kernels_get ().q4_axpy (n, group, codes, d, z, w, y);
}

void
rk_kvf16_axpy (int n, const rk_fp16 *x, float w, float *y)
{
  rk_kvq_kernels_get ().f16_axpy (n, x, w, y);
}

void
rk_kv_group_step (int rows, int cnt, int n, const float *q, const float *k, const float *v,
                  float scale, float *m, float *l, float *acc, float *s)
{
  rk_kvq_kernels_get ().group_step (rows, cnt, n, q, k, v, scale, m, l, acc, s);
}

void
rk_kvq4_group_scores (int rows, int cnt, int n, int group, const int8_t *q8, const float *qd,
                      const int32_t *qsum, const uint8_t *codes, size_t code_stride,
                      const rk_fp16 *d, const int8_t *z, size_t scale_stride, float scale,
                      float *s)
{
  rk_kvq_kernels_get ().q4_group_scores (rows, cnt, n, group, q8, qd, qsum, codes, code_stride,
                                         d, z, scale_stride, scale, s);
}

void
rk_kvq8_group_scores (int rows, int cnt, int n, int group, const int16_t *q16, const float *qd,
                      const int8_t *codes, size_t code_stride, const rk_fp16 *d,
                      size_t scale_stride, float scale, float *s)
{
  rk_kvq_kernels_get ().q8_group_scores (rows, cnt, n, group, q16, qd, codes, code_stride, d,
                                         scale_stride, scale, s);
}
