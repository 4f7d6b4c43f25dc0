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

/* Half at an arbitrary address, with the F16C instruction. */
static inline float
load_fp16_f16c (const uint8_t *p)
{
  uint16_t h;

  memcpy (&h, p, sizeof h);
  return _cvtsh_ss (h);
}

/* Per block: 32 nibbles x 32 activations per sub-block with maddubs (u8 x s8
 * -> pairs summed in s16: 2 * 15 * 127 fits), madd with the sub-block's
 * scale broadcast into 16-bit lanes (-> s32), one float fma per block. The
 * mins term is madd of each min (duplicated into both 16-bit halves of a
 * pair) with the 16 bsums, accumulated apart. The 6-bit scales are unpacked
 * in general registers and moved in with one insert each (no store/reload),
 * the halves converted with F16C; the four 64-value steps are unrolled with
 * two integer accumulators so the loop has no long dependency chain. */
float
rk_vec_dot_q4_K_q8_K_avx2 (int         n,
                           const void *vx,
                           const void *vy)
{
  const __m256i m4 = _mm256_set1_epi8 (0xF);
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
      const float dy = rk_k_load_f32 (by + offsetof (rk_block_q8_K, d));
      const float d = dy * load_fp16_f16c (bx + offsetof (rk_block_q4_K, d));
      const float dmin = dy * load_fp16_f16c (bx + offsetof (rk_block_q4_K, dmin));
      uint32_t u[3], s0, s1, m0, m1;
      __m256i scales, mins, bsums, sum0 = _mm256_setzero_si256 (), sum1 = _mm256_setzero_si256 ();
      __m128i mb;

      memcpy (u, bx + offsetof (rk_block_q4_K, scales), 12);
      s0 = u[0] & 0x3f3f3f3f;
      s1 = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
      m0 = u[1] & 0x3f3f3f3f;
      m1 = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
      /* 16 x s16: the 8 scales in each 128-bit half, for per-lane shuffles. */
      scales = _mm256_cvtepu8_epi16 (_mm_set_epi32 ((int) s1, (int) s0, (int) s1, (int) s0));
      /* m0 m0 m1 m1 ... m7 m7: min k meets bsums 2k and 2k + 1. */
      mb = _mm_set_epi32 (0, 0, (int) m1, (int) m0);
      mins = _mm256_cvtepu8_epi16 (_mm_unpacklo_epi8 (mb, mb));
      bsums = _mm256_loadu_si256 ((const __m256i *) (by + offsetof (rk_block_q8_K, bsums)));
      acc_m = _mm256_fmadd_ps (_mm256_set1_ps (dmin),
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
      acc = _mm256_fmadd_ps (_mm256_set1_ps (d), _mm256_cvtepi32_ps (_mm256_add_epi32 (sum0, sum1)),
                             acc);
    }
  return rk_hsum_ps_avx2 (_mm256_sub_ps (acc, acc_m));
}
