/* quant-legacy-avx2.h — AVX2 building blocks of the legacy quant kernels
 * (included only by *-avx2.c, which are compiled with -mavx2 -mfma -mf16c).
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <immintrin.h>

#include "quant-legacy.h"
#include "rk-avx2.h"

static inline int
rk_hsum_epi32_avx2 (__m256i v)
{
  __m128i s = _mm_add_epi32 (_mm256_castsi256_si128 (v), _mm256_extracti128_si256 (v, 1));

  s = _mm_add_epi32 (s, _mm_shuffle_epi32 (s, _MM_SHUFFLE (1, 0, 3, 2)));
  s = _mm_add_epi32 (s, _mm_shuffle_epi32 (s, _MM_SHUFFLE (2, 3, 0, 1)));
  return _mm_cvtsi128_si32 (s);
}

/* 16 bytes of nibbles -> 32 bytes 0..15: the low nibbles (elements 0..15)
 * in the low lane, the high nibbles (elements 16..31) in the high lane. The
 * 16 bytes are loaded into both lanes (a broadcast load, no shuffle) and
 * only the high lane is shifted (a per-element shift count of 0 or 4). */
static inline __m256i
rk_nibbles_avx2 (const uint8_t *qs)
{
  const __m256i b = _mm256_broadcastsi128_si256 (_mm_loadu_si128 ((const __m128i *) (const void *) qs));

  return _mm256_and_si256 (_mm256_srlv_epi64 (b, _mm256_set_epi64x (4, 4, 0, 0)),
                           _mm256_set1_epi8 (0x0F));
}

/* 32 bits (little-endian) -> 32 bytes, 0xFF where the bit is set, else 0. */
static inline __m256i
rk_bits_to_bytes_avx2 (uint32_t bits)
{
  const __m256i shuf = _mm256_set_epi64x (0x0303030303030303, 0x0202020202020202,
                                          0x0101010101010101, 0x0000000000000000);
  /* Byte j of each group of 8 has every bit set except bit j. */
  const __m256i mask = _mm256_set1_epi64x (0x7fbfdfeff7fbfdfe);
  __m256i b = _mm256_shuffle_epi8 (_mm256_set1_epi32 ((int) bits), shuf);

  b = _mm256_or_si256 (b, mask);
  return _mm256_cmpeq_epi8 (b, _mm256_set1_epi64x (-1));
}

/* Sum of x[i] * y[i] over pairs, as 8 floats; x and y signed bytes. maddubs wants
 * an unsigned first operand, so take |x| and move x's sign onto y. Exact while no
 * pair of products exceeds 32767: true for |x| <= 128 and y in -127..127, which
 * every quantizer here produces (y = -128 never comes out of roundf (x / d)). */
static inline __m256
rk_dot_i8_avx2 (__m256i x, __m256i y)
{
  const __m256i ax = _mm256_sign_epi8 (x, x);
  const __m256i sy = _mm256_sign_epi8 (y, x);
  const __m256i p16 = _mm256_maddubs_epi16 (ax, sy);
  const __m256i p32 = _mm256_madd_epi16 (p16, _mm256_set1_epi16 (1));

  return _mm256_cvtepi32_ps (p32);
}

/* As above with x unsigned 0..31 (Q4_1/Q5_1 codes): no sign trick needed. */
static inline __m256
rk_dot_u8_i8_avx2 (__m256i x, __m256i y)
{
  const __m256i p16 = _mm256_maddubs_epi16 (x, y);
  const __m256i p32 = _mm256_madd_epi16 (p16, _mm256_set1_epi16 (1));

  return _mm256_cvtepi32_ps (p32);
}

/* Signed bytes -> 4 x 8 floats times d, stored to y[0..31]. */
static inline void
rk_store_i8_scaled_avx2 (__m256i q, __m256 d, float *y)
{
  const __m128i lo = _mm256_castsi256_si128 (q);
  const __m128i hi = _mm256_extracti128_si256 (q, 1);

  _mm256_storeu_ps (y + 0, _mm256_mul_ps (_mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (lo)), d));
  _mm256_storeu_ps (y + 8, _mm256_mul_ps (_mm256_cvtepi32_ps (
                                            _mm256_cvtepi8_epi32 (_mm_srli_si128 (lo, 8))), d));
  _mm256_storeu_ps (y + 16, _mm256_mul_ps (_mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (hi)), d));
  _mm256_storeu_ps (y + 24, _mm256_mul_ps (_mm256_cvtepi32_ps (
                                             _mm256_cvtepi8_epi32 (_mm_srli_si128 (hi, 8))), d));
}

/* Unsigned bytes -> 32 floats q * d + m, stored to y[0..31]. */
static inline void
rk_store_u8_affine_avx2 (__m256i q, __m256 d, __m256 m, float *y)
{
  const __m128i lo = _mm256_castsi256_si128 (q);
  const __m128i hi = _mm256_extracti128_si256 (q, 1);
  const __m128i parts[4] = { lo, _mm_srli_si128 (lo, 8), hi, _mm_srli_si128 (hi, 8) };

  for (int p = 0; p < 4; p++)
    {
      const __m256 f = _mm256_cvtepi32_ps (_mm256_cvtepu8_epi32 (parts[p]));

      _mm256_storeu_ps (y + 8 * p, _mm256_fmadd_ps (f, d, m));
    }
}

/* Quantizes 32 floats as the Q8 reference does, byte for byte: q = roundf (x * id).
 * roundf rounds ties away from zero, which no AVX rounding mode does, so truncate
 * and add the sign where |x * id| >= |trunc| + 0.5. (The comparison avoids
 * computing x * id - trunc, which the compiler could fuse into one rounding.)
 * Returns the 32 codes; *sum gets their sum. */
static inline __m256i
rk_quantize_32_q8_avx2 (const float *x, float id, int *sum)
{
  const __m256 mul = _mm256_set1_ps (id);
  const __m256 sign = _mm256_set1_ps (-0.0f);
  __m256i q[4];
  __m256i packed, s32;

  for (int p = 0; p < 4; p++)
    {
      const __m256 v = _mm256_mul_ps (_mm256_loadu_ps (x + 8 * p), mul);
      const __m256 t = _mm256_round_ps (v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 half = _mm256_add_ps (_mm256_andnot_ps (sign, t), _mm256_set1_ps (0.5f));
      const __m256 up = _mm256_cmp_ps (_mm256_andnot_ps (sign, v), half, _CMP_GE_OQ);
      const __m256 one = _mm256_or_ps (_mm256_and_ps (v, sign), _mm256_set1_ps (1.0f));

      q[p] = _mm256_cvtps_epi32 (_mm256_add_ps (t, _mm256_and_ps (up, one)));
    }
  s32 = _mm256_add_epi32 (_mm256_add_epi32 (q[0], q[1]), _mm256_add_epi32 (q[2], q[3]));
  *sum = rk_hsum_epi32_avx2 (s32);
  /* packs works within 128-bit lanes; the permute puts the 32 bytes back in order. */
  packed = _mm256_packs_epi16 (_mm256_packs_epi32 (q[0], q[1]), _mm256_packs_epi32 (q[2], q[3]));
  return _mm256_permutevar8x32_epi32 (packed, _mm256_setr_epi32 (0, 4, 1, 5, 2, 6, 3, 7));
}

/* Largest |x| of 32 floats. */
static inline float
rk_amax_32_avx2 (const float *x)
{
  const __m256 sign = _mm256_set1_ps (-0.0f);
  __m256 m = _mm256_andnot_ps (sign, _mm256_loadu_ps (x));
  __m128 s;

  for (int p = 1; p < 4; p++)
    m = _mm256_max_ps (m, _mm256_andnot_ps (sign, _mm256_loadu_ps (x + 8 * p)));
  s = _mm_max_ps (_mm256_castps256_ps128 (m), _mm256_extractf128_ps (m, 1));
  s = _mm_max_ps (s, _mm_movehl_ps (s, s));
  s = _mm_max_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

/* Half at an arbitrary address, as float, with the F16C instruction. */
static inline float
rk_load_fp16_avx2 (const uint8_t *p)
{
  uint16_t h;

  memcpy (&h, p, sizeof h);
  return _cvtsh_ss (h);
}

static inline __m256i
rk_loadu_256 (const uint8_t *p)
{
  return _mm256_loadu_si256 ((const __m256i *) (const void *) p);
}
