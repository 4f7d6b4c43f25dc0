/* simd-avx2.h — AVX2 helpers shared by the ops and attention kernels: expf, silu.
 * SPDX-License-Identifier: MIT
 *
 * Included only from *-avx2.c files (compiled with -mavx2 -mfma -mf16c).
 */
#pragma once

#include <immintrin.h>
#include "rk-avx2.h"

/* expf for 8 lanes: the algorithm of Arm's optimized-routines (also used by
 * ggml as ggml_v_expf). exp(x) = 2^n * (1 + p(r)) with n = round(x / ln 2),
 * r = x - n ln 2 (ln 2 split in two so r is exact), p a degree-5 minimax
 * polynomial for exp(r) - 1 on |r| <= ln2/2. Max error 1.45 ulp + 0.5 ulp
 * rounding; x > 88.38 gives +inf, x < -103.97 (and -inf) gives 0, NaN stays
 * NaN. Lanes with |n| > 126 cannot build 2^n in one float, so they scale
 * twice (s1 * s2) on a slow path. */
static inline __m256
expf_avx2 (__m256 x)
{
  const __m256 shift = _mm256_set1_ps (0x1.8p23f);   /* rounds to integer */
  const __m256 abs_mask = _mm256_castsi256_ps (_mm256_set1_epi32 (0x7fffffff));
  __m256 z, n, r, r2, p, k, s1, s2, slow, big;
  __m256i e, g;

  z = _mm256_fmadd_ps (x, _mm256_set1_ps (0x1.715476p+0f), shift);   /* x log2(e) */
  n = _mm256_sub_ps (z, shift);
  r = _mm256_fnmadd_ps (n, _mm256_set1_ps (0x1.62e4p-1f), x);        /* ln2, high */
  r = _mm256_fnmadd_ps (n, _mm256_set1_ps (0x1.7f7d1cp-20f), r);     /* ln2, low */

  /* n sits in z's low mantissa bits; shifting by 23 moves it to the exponent
   * field, and adding the bits of 1.0f gives 2^n. */
  e = _mm256_slli_epi32 (_mm256_castps_si256 (z), 23);
  k = _mm256_castsi256_ps (_mm256_add_epi32 (e, _mm256_castps_si256 (_mm256_set1_ps (1.0f))));

  /* p(r) = c1 r + (c2 + c3 r) r^2 + (c4 + c5 r) r^4 */
  r2 = _mm256_mul_ps (r, r);
  p = _mm256_fmadd_ps (_mm256_fmadd_ps (_mm256_set1_ps (0x1.0e4020p-7f), r,
                                        _mm256_set1_ps (0x1.573e2ep-5f)),
                       r2,
                       _mm256_fmadd_ps (_mm256_set1_ps (0x1.555e66p-3f), r,
                                        _mm256_set1_ps (0x1.fffdb6p-2f)));
  p = _mm256_fmadd_ps (p, r2, _mm256_mul_ps (_mm256_set1_ps (0x1.ffffecp-1f), r));

  big = _mm256_cmp_ps (_mm256_and_ps (n, abs_mask), _mm256_set1_ps (126.0f), _CMP_GT_OQ);
  if (_mm256_movemask_ps (big) == 0)
    return _mm256_fmadd_ps (p, k, k);

  /* Slow path: 2^n = s1 * s2 with s1 = 2^127 (n > 0) or 2^-125 (n <= 0). */
  g = _mm256_and_si256 (_mm256_castps_si256 (_mm256_cmp_ps (n, _mm256_setzero_ps (), _CMP_LE_OQ)),
                        _mm256_set1_epi32 ((int) 0x82000000u));
  s1 = _mm256_castsi256_ps (_mm256_add_epi32 (g, _mm256_set1_epi32 (0x7f000000)));
  s2 = _mm256_castsi256_ps (_mm256_sub_epi32 (e, g));
  slow = _mm256_mul_ps (_mm256_fmadd_ps (s2, p, s2), s1);
  slow = _mm256_blendv_ps (slow, _mm256_mul_ps (s1, s1),   /* |n| > 192: inf or 0 */
                           _mm256_cmp_ps (_mm256_and_ps (n, abs_mask),
                                          _mm256_set1_ps (192.0f), _CMP_GT_OQ));
  return _mm256_blendv_ps (_mm256_fmadd_ps (p, k, k), slow, big);
}

/* silu(x) = x / (1 + exp(-x)) */
static inline __m256
silu_avx2 (__m256 x)
{
  __m256 en = expf_avx2 (_mm256_sub_ps (_mm256_setzero_ps (), x));

  return _mm256_div_ps (x, _mm256_add_ps (_mm256_set1_ps (1.0f), en));
}
