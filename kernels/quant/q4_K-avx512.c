/* q4_K-avx512.c — the Q4_K dot with AVX-512 VNNI (decode on Q4_K_M models).
 * SPDX-License-Identifier: MIT
 *
 * rk_vec_dot_q4_K_q8_K_avx2 with one instruction less per 32 values: the
 * scale multiply and the add into the int32 sums are one vpdpwssd (AVX2:
 * madd, then add). Decode streams the weights, but on a 2-thread Zen 4 with
 * ~50 GB/s of read bandwidth the AVX2 dot (~71 instructions per 144-byte
 * block) is what limits Q4_K matvec, not memory. Integer sums are exact and
 * the float steps are the AVX2 variant's, so the result is bit for bit
 * that of rk_vec_dot_q4_K_q8_K_avx2. Used in its place where
 * rk_cpu_use_avx512_vnni () (rk-cpu.c); 256-bit vectors only.
 */
#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "k-quants.h"
#include "rk-avx2.h"

static inline __m256i
scale_shuffle (int s)
{
  return _mm256_set1_epi16 ((short) (((2 * s + 1) << 8) | (2 * s)));
}

static inline uint32_t
load_u32 (const uint8_t *p)
{
  uint32_t v;

  memcpy (&v, p, sizeof v);
  return v;
}

float
rk_vec_dot_q4_K_q8_K_avx512 (int         n,
                             const void *vx,
                             const void *vy)
{
  const __m256i m4 = _mm256_set1_epi8 (0xF);
  const __m128i m3f = _mm_set1_epi8 (0x3f);
  const __m128i m0f = _mm_set1_epi8 (0x0f);
  const __m128i m30 = _mm_set1_epi8 (0x30);
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
      const __m128 dd = _mm_mul_ps (_mm_cvtph_ps (_mm_cvtsi32_si128 ((int) load_u32 (
                                      bx + offsetof (rk_block_q4_K, d)))),
                                    _mm_set1_ps (rk_k_load_f32 (by + offsetof (rk_block_q8_K,
                                                                               d))));
      /* The scales and mins as in the AVX2 variant (see there). */
      const __m128i u = _mm_loadu_si128 ((const __m128i *) (bx + offsetof (rk_block_q4_K,
                                                                           scales)));
      const __m128i lo = _mm_and_si128 (u, m3f);
      const __m128i hi = _mm_or_si128 (
        _mm_and_si128 (_mm_srlv_epi32 (_mm_shuffle_epi32 (u, _MM_SHUFFLE (2, 2, 2, 2)), hi_shift),
                       m0f),
        _mm_and_si128 (_mm_srli_epi32 (u, 2), m30));
      const __m128i sm = _mm_unpacklo_epi32 (lo, hi);
      const __m256i scales = _mm256_cvtepu8_epi16 (_mm_unpacklo_epi64 (sm, sm));
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

          sum0 = _mm256_dpwssd_epi32 (sum0, _mm256_shuffle_epi8 (scales, scale_shuffle (2 * j)),
                                      _mm256_maddubs_epi16 (_mm256_and_si256 (b0, m4),
                                                            _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j))));
          sum1 = _mm256_dpwssd_epi32 (sum1, _mm256_shuffle_epi8 (scales, scale_shuffle (2 * j + 1)),
                                      _mm256_maddubs_epi16 (_mm256_and_si256 (_mm256_srli_epi16 (b0, 4), m4),
                                                            _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j + 32))));
          sum0 = _mm256_dpwssd_epi32 (sum0, _mm256_shuffle_epi8 (scales, scale_shuffle (2 * j + 2)),
                                      _mm256_maddubs_epi16 (_mm256_and_si256 (b1, m4),
                                                            _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j + 64))));
          sum1 = _mm256_dpwssd_epi32 (sum1, _mm256_shuffle_epi8 (scales, scale_shuffle (2 * j + 3)),
                                      _mm256_maddubs_epi16 (_mm256_and_si256 (_mm256_srli_epi16 (b1, 4), m4),
                                                            _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j + 96))));
        }
      acc = _mm256_fmadd_ps (_mm256_broadcastss_ps (dd),
                             _mm256_cvtepi32_ps (_mm256_add_epi32 (sum0, sum1)), acc);
    }
  return rk_hsum_ps_avx2 (_mm256_sub_ps (acc, acc_m));
}
