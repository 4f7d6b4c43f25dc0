/* attn-exp.h — the vector e^x of the attention kernels (flash and the KV
 * cache's group step), one per ISA, for files compiled for that ISA.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>

/* e^x for x in [-87.33, 88]: x = n ln2 + r with |r| <= ln2/2, e^r by the
 * Cephes degree-6 polynomial, 2^n built in the exponent bits. Relative error
 * about 2 ulp (< 3e-7) over that range; x below ln (FLT_MIN) gives 0 (the
 * softmax weights that far below the max do not matter), above 88 it clamps. */
static inline __m256
exp_avx2 (__m256 x)
{
  const __m256 hi = _mm256_set1_ps (88.0f);
  const __m256 lo = _mm256_set1_ps (-87.33654f);
  __m256 keep = _mm256_cmp_ps (x, lo, _CMP_GE_OQ);
  __m256 fx, r, y;
  __m256i n;

  x = _mm256_min_ps (_mm256_max_ps (x, lo), hi);
  fx = _mm256_round_ps (_mm256_mul_ps (x, _mm256_set1_ps (1.44269504088896341f)),
                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  /* r = x - n ln2 with ln2 split in two so that n * ln2_hi is exact. */
  r = _mm256_fnmadd_ps (fx, _mm256_set1_ps (0.693359375f), x);
  r = _mm256_fnmadd_ps (fx, _mm256_set1_ps (-2.12194440e-4f), r);

  y = _mm256_set1_ps (1.9875691500e-4f);
  y = _mm256_fmadd_ps (y, r, _mm256_set1_ps (1.3981999507e-3f));
  y = _mm256_fmadd_ps (y, r, _mm256_set1_ps (8.3334519073e-3f));
  y = _mm256_fmadd_ps (y, r, _mm256_set1_ps (4.1665795894e-2f));
  y = _mm256_fmadd_ps (y, r, _mm256_set1_ps (1.6666665459e-1f));
  y = _mm256_fmadd_ps (y, r, _mm256_set1_ps (5.0000001201e-1f));
  y = _mm256_fmadd_ps (y, _mm256_mul_ps (r, r), _mm256_add_ps (r, _mm256_set1_ps (1.0f)));

  n = _mm256_add_epi32 (_mm256_cvtps_epi32 (fx), _mm256_set1_epi32 (127));
  y = _mm256_mul_ps (y, _mm256_castsi256_ps (_mm256_slli_epi32 (n, 23)));
  return _mm256_and_ps (y, keep);
}
#endif

#if defined(__ARM_NEON)
#include <arm_neon.h>

/* e^x for x in [-87.33, 88]: x = n ln2 + r with |r| <= ln2/2, e^r by the
 * Cephes degree-6 polynomial, 2^n built in the exponent bits. Relative error
 * about 2 ulp (< 3e-7) over that range; x below ln (FLT_MIN) gives 0 (the
 * softmax weights that far below the max do not matter), above 88 it clamps. */
static inline float32x4_t
exp_neon (float32x4_t x)
{
  const float32x4_t hi = vdupq_n_f32 (88.0f);
  const float32x4_t lo = vdupq_n_f32 (-87.33654f);
  uint32x4_t keep = vcgeq_f32 (x, lo);
  float32x4_t fx, r, y;
  int32x4_t n;

  x = vminq_f32 (vmaxq_f32 (x, lo), hi);
  fx = vrndnq_f32 (vmulq_n_f32 (x, 1.44269504088896341f));
  /* r = x - n ln2 with ln2 split in two so that n * ln2_hi is exact. */
  r = vfmsq_f32 (x, fx, vdupq_n_f32 (0.693359375f));
  r = vfmsq_f32 (r, fx, vdupq_n_f32 (-2.12194440e-4f));

  y = vdupq_n_f32 (1.9875691500e-4f);
  y = vfmaq_f32 (vdupq_n_f32 (1.3981999507e-3f), y, r);
  y = vfmaq_f32 (vdupq_n_f32 (8.3334519073e-3f), y, r);
  y = vfmaq_f32 (vdupq_n_f32 (4.1665795894e-2f), y, r);
  y = vfmaq_f32 (vdupq_n_f32 (1.6666665459e-1f), y, r);
  y = vfmaq_f32 (vdupq_n_f32 (5.0000001201e-1f), y, r);
  y = vfmaq_f32 (vaddq_f32 (r, vdupq_n_f32 (1.0f)), y, vmulq_f32 (r, r));

  n = vaddq_s32 (vcvtq_s32_f32 (fx), vdupq_n_s32 (127));
  y = vmulq_f32 (y, vreinterpretq_f32_s32 (vshlq_n_s32 (n, 23)));
  return vreinterpretq_f32_u32 (vandq_u32 (vreinterpretq_u32_f32 (y), keep));
}
#endif
