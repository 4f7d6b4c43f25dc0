/* q4_K-avx2.c — Q4_K with AVX2: the dot with Q8_K is the decode hot path of Q4_K_M models.
 * SPDX-License-Identifier: MIT
 */
#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "k-quants.h"
#include "rk-avx2.h"

/* Weights are quantized offline (llama-quantize, our quantize tool): the
 * reference search is the quantizer, there is nothing to speed up. */
void
rk_quantize_row_q4_K_avx2 (const float *x,
                           void        *vy,
                           int64_t      k)
{
  rk_quantize_row_q4_K_ref (x, vy, k);
}

/* pshufb mask that broadcasts 16-bit lane s (0..7) of each 128-bit half. */
static inline __m256i
scale_shuffle (int s)
{
  return _mm256_set1_epi16 ((short) (((2 * s + 1) << 8) | (2 * s)));
}

void
rk_dequantize_row_q4_K_avx2 (const void *vx,
                             float      *y,
                             int64_t     k)
{
  const __m128i m4 = _mm_set1_epi8 (0xF);
  const uint8_t *x = vx;
  int64_t nb = k / RK_QK_K, i;

  assert (k % RK_QK_K == 0);
  for (i = 0; i < nb; i++)
    {
      const uint8_t *b = x + i * sizeof (rk_block_q4_K);
      const uint8_t *qs = b + offsetof (rk_block_q4_K, qs);
      const float d = rk_k_load_fp16 (b + offsetof (rk_block_q4_K, d));
      const float dmin = rk_k_load_fp16 (b + offsetof (rk_block_q4_K, dmin));
      uint8_t sm[16];
      int j, h;

      rk_k4_unpack_scales (b + offsetof (rk_block_q4_K, scales), sm);
      for (j = 0; j < RK_QK_K / 32; j++, y += 32)
        {
          /* Same two roundings as _ref: (d * sc) * q - dmin * m. */
          const __m256 vd = _mm256_set1_ps (d * sm[j]);
          const __m256 vm = _mm256_set1_ps (dmin * sm[8 + j]);

          for (h = 0; h < 2; h++)
            {
              __m128i raw = _mm_loadu_si128 ((const __m128i *) (qs + 32 * (j / 2) + 16 * h));
              __m128i q = j % 2 ? _mm_and_si128 (_mm_srli_epi16 (raw, 4), m4)
                                : _mm_and_si128 (raw, m4);
              __m256 f0 = _mm256_cvtepi32_ps (_mm256_cvtepu8_epi32 (q));
              __m256 f1 = _mm256_cvtepi32_ps (_mm256_cvtepu8_epi32 (_mm_srli_si128 (q, 8)));

              _mm256_storeu_ps (y + 16 * h, _mm256_sub_ps (_mm256_mul_ps (vd, f0), vm));
              _mm256_storeu_ps (y + 16 * h + 8, _mm256_sub_ps (_mm256_mul_ps (vd, f1), vm));
            }
        }
    }
}

/* 4 bytes at an arbitrary address. */
static inline uint32_t
load_u32 (const uint8_t *p)
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

float
rk_vec_dot_q4_K_q8_K_avx2 (int         n,
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
      const __m128 dd = _mm_mul_ps (_mm_cvtph_ps (_mm_cvtsi32_si128 ((int) load_u32 (
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
          const __m256i p0 = _mm256_madd_epi16 (
            _mm256_shuffle_epi8 (scales, scale_shuffle (2 * j)),
            _mm256_maddubs_epi16 (_mm256_and_si256 (b0, m4),
                                  _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j))));
          const __m256i p1 = _mm256_madd_epi16 (
            _mm256_shuffle_epi8 (scales, scale_shuffle (2 * j + 1)),
            _mm256_maddubs_epi16 (_mm256_and_si256 (_mm256_srli_epi16 (b0, 4), m4),
                                  _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j + 32))));
          const __m256i p2 = _mm256_madd_epi16 (
            _mm256_shuffle_epi8 (scales, scale_shuffle (2 * j + 2)),
            _mm256_maddubs_epi16 (_mm256_and_si256 (b1, m4),
                                  _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j + 64))));
          const __m256i p3 = _mm256_madd_epi16 (
            _mm256_shuffle_epi8 (scales, scale_shuffle (2 * j + 3)),
            _mm256_maddubs_epi16 (_mm256_and_si256 (_mm256_srli_epi16 (b1, 4), m4),
                                  _mm256_loadu_si256 ((const __m256i *) (q8 + 64 * j + 96))));

          sum0 = _mm256_add_epi32 (sum0, _mm256_add_epi32 (p0, p1));
          sum1 = _mm256_add_epi32 (sum1, _mm256_add_epi32 (p2, p3));
        }
      acc = _mm256_fmadd_ps (_mm256_broadcastss_ps (dd),
                             _mm256_cvtepi32_ps (_mm256_add_epi32 (sum0, sum1)), acc);
    }
  return rk_hsum_ps_avx2 (_mm256_sub_ps (acc, acc_m));
}
