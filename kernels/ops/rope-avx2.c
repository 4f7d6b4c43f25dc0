/* rope-avx2.c — RoPE rotation, AVX2 + FMA.
 * SPDX-License-Identifier: MIT
 *
 * Normal mode: x and cs are both interleaved pairs, so 4 pairs per vector:
 * out = x * (c c ..) -/+ swap(x) * (s s ..) with one fmaddsub.
 * NEOX mode: halves x[0..half) and x[half..n_rot) are contiguous, so the
 * (cos, sin) cache is de-interleaved into 8 cosines and 8 sines.
 */
#include "rk-ops.h"
#include "simd-avx2.h"

static void
rope_normal_avx2 (float       *v,
                  int          half,
                  const float *cs)
{
  int i = 0;

  for (; i + 4 <= half; i += 4)
    {
      __m256 x = _mm256_loadu_ps (v + 2 * i);
      __m256 t = _mm256_loadu_ps (cs + 2 * i);
      __m256 c = _mm256_moveldup_ps (t);                 /* c0 c0 c1 c1 .. */
      __m256 s = _mm256_movehdup_ps (t);                 /* s0 s0 s1 s1 .. */
      __m256 xs = _mm256_permute_ps (x, 0xb1);           /* x1 x0 x1' x0' .. */

      /* even lanes: x0 c - x1 s; odd lanes: x1 c + x0 s */
      _mm256_storeu_ps (v + 2 * i, _mm256_fmaddsub_ps (x, c, _mm256_mul_ps (xs, s)));
    }
  for (; i < half; i++)
    {
      float c = cs[2 * i], s = cs[2 * i + 1];
      float x0 = v[2 * i], x1 = v[2 * i + 1];

      v[2 * i] = x0 * c - x1 * s;
      v[2 * i + 1] = x0 * s + x1 * c;
    }
}

static void
rope_neox_avx2 (float       *v,
                int          half,
                const float *cs)
{
  int i = 0;

  for (; i + 8 <= half; i += 8)
    {
      __m256 a = _mm256_loadu_ps (cs + 2 * i);           /* c0 s0 .. c3 s3 */
      __m256 b = _mm256_loadu_ps (cs + 2 * i + 8);       /* c4 s4 .. c7 s7 */
      /* shuffle gives c0 c1 c4 c5 | c2 c3 c6 c7; the permute restores order */
      __m256 c = _mm256_castpd_ps (_mm256_permute4x64_pd (
        _mm256_castps_pd (_mm256_shuffle_ps (a, b, 0x88)), 0xd8));
      __m256 s = _mm256_castpd_ps (_mm256_permute4x64_pd (
        _mm256_castps_pd (_mm256_shuffle_ps (a, b, 0xdd)), 0xd8));
      __m256 x0 = _mm256_loadu_ps (v + i);
      __m256 x1 = _mm256_loadu_ps (v + i + half);

      _mm256_storeu_ps (v + i, _mm256_fmsub_ps (x0, c, _mm256_mul_ps (x1, s)));
      _mm256_storeu_ps (v + i + half, _mm256_fmadd_ps (x0, s, _mm256_mul_ps (x1, c)));
    }
  for (; i < half; i++)
    {
      float c = cs[2 * i], s = cs[2 * i + 1];
      float x0 = v[i], x1 = v[i + half];

      v[i] = x0 * c - x1 * s;
      v[i + half] = x0 * s + x1 * c;
    }
}

void
rk_rope_apply_avx2 (float                *x,
                    int                   n_heads,
                    int                   head_dim,
                    const float          *cs,
                    const rk_rope_params *p)
{
  int h;

  for (h = 0; h < n_heads; h++)
    {
      float *v = x + (int64_t) h * head_dim;

      if (p->neox)
        rope_neox_avx2 (v, p->n_rot / 2, cs);
      else
        rope_normal_avx2 (v, p->n_rot / 2, cs);
    }
}
