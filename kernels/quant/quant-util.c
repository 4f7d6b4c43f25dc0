/* quant-util.c — the scale searches behind the reference K-quantizers.
 * SPDX-License-Identifier: MIT
 *
 * Same algorithms and the same float operation order as ggml's
 * ggml-quants.c (nearest_int, make_qx_quants, make_qkx2_quants), so a row we
 * quantize is byte-identical to llama-quantize's (checked in
 * tests/kernels/test-quant-k.c against hashes made by an independent port).
 */
#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "k-quants.h"

#define GROUP_MAX_EPS 1e-15f

#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* Round to nearest, ties to even, for |fval| <= 2^22: adding 1.5 * 2^23 puts
 * the integer part in the low mantissa bits. Larger inputs give garbage, as
 * in ggml (which asserts); callers keep values in range. */
int
rk_nearest_int (float fval)
{
  float val = fval + 12582912.f;
  int32_t i;

  memcpy (&i, &val, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

/* Weight of element x in the rmse_type search when no qw is given. */
static float
qx_weight (int rmse_type, float x)
{
  switch (rmse_type)
    {
    case 1: return x * x;
    case 2: return 1;
    case 3: return fabsf (x);
    default: return sqrtf (fabsf (x));
    }
}

/* Symmetric quantization of n values to L in 0..2*nmax-1 (value L - nmax),
 * returns the scale. rmse_type 0: plain max scaling; otherwise a weighted
 * least-squares scale, trying 18 scales around nmax/max (negative rmse_type:
 * one try, averaged with the plain scale). */
float
rk_make_qx_quants (int          n,
                   int          nmax,
                   const float *x,
                   int8_t      *L,
                   int          rmse_type,
                   const float *qw)
{
  float max = 0, amax = 0, iscale, sumlx, suml2, scale, best;
  bool return_early = false;
  int i, is;

  for (i = 0; i < n; i++)
    {
      float ax = fabsf (x[i]);
      if (ax > amax)
        {
          amax = ax;
          max = x[i];
        }
    }
  if (amax < GROUP_MAX_EPS)
    {
      memset (L, 0, (size_t) n);
      return 0.f;
    }
  iscale = -nmax / max;
  if (rmse_type == 0)
    {
      for (i = 0; i < n; i++)
        {
          int l = rk_nearest_int (iscale * x[i]);
          L[i] = (int8_t) (nmax + MAX (-nmax, MIN (nmax - 1, l)));
        }
      return 1 / iscale;
    }
  if (rmse_type < 0)
    {
      rmse_type = -rmse_type;
      return_early = true;
    }
  sumlx = 0;
  suml2 = 0;
  for (i = 0; i < n; i++)
    {
      int l = rk_nearest_int (iscale * x[i]);
      float w;

      l = MAX (-nmax, MIN (nmax - 1, l));
      L[i] = (int8_t) (l + nmax);
      w = qw ? qw[i] : qx_weight (rmse_type, x[i]);
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
  scale = suml2 ? sumlx / suml2 : 0.0f;
  if (return_early)
    return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
  best = scale * sumlx;
  for (is = -9; is <= 9; is++)
    {
      if (is == 0)
        continue;
      iscale = -(nmax + 0.1f * is) / max;
      sumlx = suml2 = 0;
      for (i = 0; i < n; i++)
        {
          int l = rk_nearest_int (iscale * x[i]);
          float w;

          l = MAX (-nmax, MIN (nmax - 1, l));
          w = qw ? qw[i] : qx_weight (rmse_type, x[i]);
          sumlx += w * x[i] * l;
          suml2 += w * l * l;
        }
      if (suml2 > 0 && sumlx * sumlx > best * suml2)
        {
          for (i = 0; i < n; i++)
            {
              int l = rk_nearest_int (iscale * x[i]);
              L[i] = (int8_t) (nmax + MAX (-nmax, MIN (nmax - 1, l)));
            }
          scale = sumlx / suml2;
          best = scale * sumlx;
        }
    }
  return scale;
}

/* Asymmetric quantization x ~ scale * L - the_min, L in 0..nmax, min <= 0
 * kept in the range: start from (max - min) / nmax, then nstep + 1 trial
 * inverse scales (rmin + rdelta * is + nmax) / (max - min), each refit by
 * weighted least squares for scale and min; keep the lowest weighted error
 * (absolute if use_mad, else squared). Returns scale; *the_min = -min. */
float
rk_make_qkx2_quants (int          n,
                     int          nmax,
                     const float *x,
                     const float *weights,
                     uint8_t     *L,
                     float       *the_min,
                     uint8_t     *Laux,
                     float        rmin,
                     float        rdelta,
                     int          nstep,
                     bool         use_mad)
{
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  float iscale, scale, best_error;
  int i, is;

  for (i = 1; i < n; i++)
    {
      float w = weights[i];
      if (x[i] < min)
        min = x[i];
      if (x[i] > max)
        max = x[i];
      sum_w += w;
      sum_x += w * x[i];
    }
  if (min > 0)
    min = 0;
  if (max == min)
    {
      memset (L, 0, (size_t) n);
      *the_min = -min;
      return 0.f;
    }
  iscale = nmax / (max - min);
  scale = 1 / iscale;
  best_error = 0;
  for (i = 0; i < n; i++)
    {
      int l = rk_nearest_int (iscale * (x[i] - min));
      float diff;

      L[i] = (uint8_t) MAX (0, MIN (nmax, l));
      diff = scale * L[i] + min - x[i];
      diff = use_mad ? fabsf (diff) : diff * diff;
      best_error += weights[i] * diff;
    }
  if (nstep < 1)
    {
      *the_min = -min;
      return scale;
    }
  for (is = 0; is <= nstep; is++)
    {
      float sum_l = 0, sum_l2 = 0, sum_xl = 0, D;

      iscale = (rmin + rdelta * is + nmax) / (max - min);
      for (i = 0; i < n; i++)
        {
          int l = rk_nearest_int (iscale * (x[i] - min));
          float w = weights[i];

          l = MAX (0, MIN (nmax, l));
          Laux[i] = (uint8_t) l;
          sum_l += w * l;
          sum_l2 += w * l * l;
          sum_xl += w * l * x[i];
        }
      D = sum_w * sum_l2 - sum_l * sum_l;
      if (D > 0)
        {
          float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
          float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
          float cur_error = 0;

          if (this_min > 0)
            {
              this_min = 0;
              this_scale = sum_xl / sum_l2;
            }
          for (i = 0; i < n; i++)
            {
              float diff = this_scale * Laux[i] + this_min - x[i];
              diff = use_mad ? fabsf (diff) : diff * diff;
              cur_error += weights[i] * diff;
            }
          if (cur_error < best_error)
            {
              memcpy (L, Laux, (size_t) n);
              best_error = cur_error;
              scale = this_scale;
              min = this_min;
            }
        }
    }
  *the_min = -min;
  return scale;
}

void
rk_k_quantize_scale_min (const float *x,
                         int          nmax,
                         float        rmin,
                         float        rdelta,
                         int          nstep,
                         uint8_t      L[RK_QK_K],
                         uint8_t      scales[RK_K_SCALE_SIZE],
                         rk_fp16     *d,
                         rk_fp16     *dmin)
{
  uint8_t Laux[32];
  float weights[32], mins[RK_QK_K / 32], sc[RK_QK_K / 32];
  float max_scale = 0, max_min = 0, inv_scale, inv_min, df, dminf;
  int j, l;

  /* 8 sub-blocks of 32, each weighted by av_x + |x| (rms of the sub-block). */
  for (j = 0; j < RK_QK_K / 32; j++)
    {
      const float *xs = x + 32 * j;
      float sum_x2 = 0, av_x;

      for (l = 0; l < 32; l++)
        sum_x2 += xs[l] * xs[l];
      av_x = sqrtf (sum_x2 / 32);
      for (l = 0; l < 32; l++)
        weights[l] = av_x + fabsf (xs[l]);
      sc[j] = rk_make_qkx2_quants (32, nmax, xs, weights, L + 32 * j, &mins[j], Laux,
                                   rmin, rdelta, nstep, false);
      if (sc[j] > max_scale)
        max_scale = sc[j];
      if (mins[j] > max_min)
        max_min = mins[j];
    }

  /* 6-bit scales and mins, packed as rk_k4_scale_min reads them. */
  inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (j = 0; j < RK_QK_K / 32; j++)
    {
      uint8_t ls = (uint8_t) rk_nearest_int (inv_scale * sc[j]);
      uint8_t lm = (uint8_t) rk_nearest_int (inv_min * mins[j]);

      ls = MIN (63, ls);
      lm = MIN (63, lm);
      if (j < 4)
        {
          scales[j] = ls;
          scales[j + 4] = lm;
        }
      else
        {
          scales[j + 4] = (uint8_t) ((ls & 0xF) | ((lm & 0xF) << 4));
          scales[j - 4] |= (uint8_t) ((ls >> 4) << 6);
          scales[j] |= (uint8_t) ((lm >> 4) << 6);
        }
    }
  *d = rk_fp32_to_fp16 (max_scale / 63.f);
  *dmin = rk_fp32_to_fp16 (max_min / 63.f);

  /* Requantize against the scales actually stored. A sub-block whose scale
   * rounded to 0 keeps the levels of its search (they decode to -min). */
  df = rk_fp16_to_fp32 (*d);
  dminf = rk_fp16_to_fp32 (*dmin);
  for (j = 0; j < RK_QK_K / 32; j++)
    {
      uint8_t s, m;
      float dj, dm;

      rk_k4_scale_min (j, scales, &s, &m);
      dj = df * s;
      if (!dj)
        continue;
      dm = dminf * m;
      for (l = 0; l < 32; l++)
        {
          int q = rk_nearest_int ((x[32 * j + l] + dm) / dj);
          L[32 * j + l] = (uint8_t) MAX (0, MIN (nmax, q));
        }
    }
}

static_assert (offsetof (rk_block_q4_K, d) == offsetof (rk_block_q5_K, d)
               && offsetof (rk_block_q4_K, dmin) == offsetof (rk_block_q5_K, dmin)
               && offsetof (rk_block_q4_K, scales) == offsetof (rk_block_q5_K, scales),
               "Q4_K and Q5_K share their block header");

void
rk_k4_dequantize_row_ref (const uint8_t *x,
                          size_t         block_size,
                          rk_k4_codes_fn codes,
                          float         *y,
                          int64_t        k)
{
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *b = x + (size_t) i * block_size;
      const float d = rk_k_load_fp16 (b + offsetof (rk_block_q4_K, d));
      const float dmin = rk_k_load_fp16 (b + offsetof (rk_block_q4_K, dmin));
      uint8_t q[RK_QK_K];
      int j, l;

      codes (b, q);
      for (j = 0; j < RK_QK_K / 32; j++)
        {
          uint8_t sc, m;
          float dj, mj;

          rk_k4_scale_min (j, b + offsetof (rk_block_q4_K, scales), &sc, &m);
          dj = d * sc;
          mj = dmin * m;
          for (l = 0; l < 32; l++)
            *y++ = dj * q[32 * j + l] - mj;
        }
    }
}

float
rk_k4_vec_dot_q8_K_ref (const uint8_t *x,
                        size_t         block_size,
                        rk_k4_codes_fn codes,
                        const uint8_t *y,
                        int            n)
{
  int nb = n / RK_QK_K, i;
  float sumf = 0;

  assert (n % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + (size_t) i * block_size;
      rk_block_q8_K by;
      uint8_t q[RK_QK_K];
      int32_t sumi = 0, summ = 0;
      int j, l;

      memcpy (&by, y + (size_t) i * sizeof by, sizeof by);
      codes (bx, q);
      for (j = 0; j < RK_QK_K / 32; j++)
        {
          uint8_t sc, m;
          int32_t s = 0;

          rk_k4_scale_min (j, bx + offsetof (rk_block_q4_K, scales), &sc, &m);
          for (l = 0; l < 32; l++)
            s += q[32 * j + l] * by.qs[32 * j + l];
          sumi += sc * s;
          summ += m * (by.bsums[2 * j] + by.bsums[2 * j + 1]);
        }
      sumf += rk_k_load_fp16 (bx + offsetof (rk_block_q4_K, d)) * by.d * (float) sumi
              - rk_k_load_fp16 (bx + offsetof (rk_block_q4_K, dmin)) * by.d * (float) summ;
    }
  return sumf;
}
