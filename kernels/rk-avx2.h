/* rk-avx2.h — the AVX2 helpers every *-avx2.c kernel shares.
 * SPDX-License-Identifier: MIT
 *
 * Included only from files compiled with -mavx2 -mfma -mf16c.
 */
#pragma once

#include <immintrin.h>

/* Sum of 8 floats (pairwise: high + low half, then within the half). */
static inline float
rk_hsum_ps_avx2 (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));

  s = _mm_add_ps (s, _mm_movehl_ps (s, s));
  s = _mm_add_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

/* Maximum of 8 floats. */
static inline float
rk_hmax_ps_avx2 (__m256 v)
{
  __m128 s = _mm_max_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));

  s = _mm_max_ps (s, _mm_movehl_ps (s, s));
  s = _mm_max_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}
