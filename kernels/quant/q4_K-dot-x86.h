/* q4_K-dot-x86.h — the Q4_K x Q8_K dot shared by q4_K-avx2.c and q4_K-avx512.c (private).
 * SPDX-License-Identifier: MIT
 *
 * Each includer compiles it with its own flags. The only difference is the
 * step that multiplies the maddubs pairs by the sub-block scales and adds
 * them to an int32 sum: madd then add with AVX2, one vpdpwssd with AVX-512
 * VNNI (__AVX512VNNI__). Integer sums are exact, so both give the same bits.
 */
#ifndef RK_Q4_K_DOT_X86_H
#define RK_Q4_K_DOT_X86_H

#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "k-quants.h"
#include "rk-avx2.h"

/* pshufb mask that broadcasts 16-bit lane s (0..7) of each 128-bit half. */
static inline __m256i
q4_K_scale_shuffle (int s)
{
  return _mm256_set1_epi16 ((short) (((2 * s + 1) << 8) | (2 * s)));
}

/* acc + the int32 pairs of sc * p (p: maddubs pairs, sc: 16-bit scales). */
static inline __m256i
q4_K_scale_acc (__m256i acc,
                __m256i sc,
                __m256i p)
{
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpwssd_epi32 (acc, sc, p);
#else
  return _mm256_add_epi32 (acc, _mm256_madd_epi16 (sc, p));
#endif
}

/* 4 bytes at an arbitrary address. */
static inline uint32_t
q4_K_load_u32 (const uint8_t *p)
{
  uint32_t v;

  memcpy (&v, p, sizeof v);
  return v;
}

/* Per block: 32 nibbles x 32 activations per sub-block with maddubs (u8 x s8
 * -> pairs summed in s16: 2 * 15 * 127 fits), madd with the sub-block's
 * scale broadcast into 16-bit lanes (-> s32), one float fma per block. The
 * mins term is madd of each min (duplicated into both 16-bit halves of a
 * pair) with the 16 bsums, accumulated apart. The 6-bit scales and mins are
 * unpacked in a vector register (four 32-bit words of 4 bytes: scales 0-3,
 * scales 4-7, mins 0-3, mins 4-7; the same bit moves as rk_k4_unpack_scales)
 * and d, dmin converted together with F16C; the four 64-value steps are
 * unrolled with two integer accumulators so the loop has no long dependency
 * chain. About 71 instructions per 144-byte block (100 with the scales
 * unpacked in general registers): a few percent faster from cache, the same
 * from memory, bit for bit the same result. */
/* d and dmin are loaded as one 32-bit word */
static_assert (offsetof (rk_block_q4_K, dmin) == offsetof (rk_block_q4_K, d) + 2,
               "rk_block_q4_K: dmin follows d");

static inline float
q4_K_dot_x86 (int         n,
              const void *vx,
              const void *vy)
{
  const __m256i m4 = _mm256_set1_epi8 (0xF);
  const __m128i m3f = _mm_set1_epi8 (0x3f);
  const __m128i m0f = _mm_set1_epi8 (0x0f);
  const __m128i m30 = _mm_set1_epi8 (0x30);
  /* word 0 of the high part takes byte nibbles 0-3 of word 2, word 1 4-7 */
  const __m128i hi_shift = _mm_set_epi32 (0, 0, 4, 0);
  const uint8_t *x = vx;
  const uint8_t *y = vy;
  __m256 acc = _mm256_setzero_ps ();
  __m256 acc_m = _mm256_setzero_ps ();
  int nb = n / RK_QK_K, i, j;

  assert (n % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *bx = x + (size_t) i * sizeof (rk_block_q4_K);
      const uint8_t *by = y + (size_t) i * sizeof (rk_block_q8_K);
      const uint8_t *q4 = bx + offsetof (rk_block_q4_K, qs);
      const uint8_t *q8 = by + offsetof (rk_block_q8_K, qs);
      /* (d, dmin) * dy: the same single roundings as dy * d, dy * dmin */
      const __m128 dd = _mm_mul_ps (_mm_cvtph_ps (_mm_cvtsi32_si128 ((int) q4_K_load_u32 (
                                      bx + offsetof (rk_block_q4_K, d)))),
                                    _mm_set1_ps (rk_k_load_f32 (by + offsetof (rk_block_q8_K,
                                                                               d))));
      /* words u0 u1 u2 of the 12 packed bytes (the 4 after them, qs, unused) */
      const __m128i u = _mm_loadu_si128 ((const __m128i *) (bx + offsetof (rk_block_q4_K,
                                                                           scales)));
      /* words: scales 0-3, mins 0-3 */
      const __m128i lo = _mm_and_si128 (u, m3f);
      /* words: scales 4-7, mins 4-7 (low nibbles from u2, top bits from u0, u1) */
      const __m128i hi = _mm_or_si128 (
        _mm_and_si128 (_mm_srlv_epi32 (_mm_shuffle_epi32 (u, _MM_SHUFFLE (2, 2, 2, 2)), hi_shift),
                       m0f),
        _mm_and_si128 (_mm_srli_epi32 (u, 2), m30));
      /* bytes: scales 0-7, mins 0-7 */
      const __m128i sm = _mm_unpacklo_epi32 (lo, hi);
      /* 16 x s16: the 8 scales in each 128-bit half, for per-lane shuffles. */
      const __m256i scales = _mm256_cvtepu8_epi16 (_mm_unpacklo_epi64 (sm, sm));
      /* m0 m0 m1 m1 ... m7 m7: min k meets bsums 2k and 2k + 1. */
      const __m128i mb = _mm_unpackhi_epi64 (sm, sm);
      const __m256i mins = _mm256_cvtepu8_epi16 (_mm_unpacklo_epi8 (mb, mb));
      const __m256i bsums = _mm256_loadu_si256 ((const __m256i *) (by + offsetof (rk_block_q8_K,
                                                                                  bsums)));
      __m256i sum0 = _mm256_setzero_si256 (), sum1 = _mm256_setzero_si256 ();

      acc_m = _mm256_fmadd_ps (_mm256_broadcastss_ps (_mm_movehdup_ps (dd)),
                               _mm256_cvtepi32_ps (_mm256_madd_epi16 (mins, bsums)), acc_m);

      for (j = 0; j < RK_QK_K / 64; j += 2)
        {
          const __m256i b0 = _mm256_loadu_si256 ((const __m256i *) (q4 + 32 * j));
          const __m256i b1 = _mm256_loadu_si256 ((const __m256i *) (q4 + 32 * j + 32));

          sum0 = q4_K_scale_acc (sum0, _mm256_shuffle_epi8 (scales, q4_K_scale_shuffle (2 * j)),
                                 _mm256_maddubs_epi16 (_mm256_and_si256 (b0, m4),
                                                       _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j))));
          sum1 = q4_K_scale_acc (sum1, _mm256_shuffle_epi8 (scales, q4_K_scale_shuffle (2 * j + 1)),
                                 _mm256_maddubs_epi16 (_mm256_and_si256 (_mm256_srli_epi16 (b0, 4), m4),
                                                       _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j + 32))));
          sum0 = q4_K_scale_acc (sum0, _mm256_shuffle_epi8 (scales, q4_K_scale_shuffle (2 * j + 2)),
                                 _mm256_maddubs_epi16 (_mm256_and_si256 (b1, m4),
                                                       _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j + 64))));
          sum1 = q4_K_scale_acc (sum1, _mm256_shuffle_epi8 (scales, q4_K_scale_shuffle (2 * j + 3)),
                                 _mm256_maddubs_epi16 (_mm256_and_si256 (_mm256_srli_epi16 (b1, 4), m4),
                                                       _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j + 96))));
        }
      acc = _mm256_fmadd_ps (_mm256_broadcastss_ps (dd),
                             _mm256_cvtepi32_ps (_mm256_add_epi32 (sum0, sum1)), acc);
    }
  return rk_hsum_ps_avx2 (_mm256_sub_ps (acc, acc_m));
}

#endif /* RK_Q4_K_DOT_X86_H */
