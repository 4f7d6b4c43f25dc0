/* q4_K-avx2.c — Q4_K with AVX2: the dot with Q8_K is the decode hot path of Q4_K_M models.
 * SPDX-License-Identifier: MIT
 */
#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "k-quants.h"
#include "q4_K-dot-x86.h"
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

float
rk_vec_dot_q4_K_q8_K_avx2 (int         n,
                           const void *vx,
                           const void *vy)
{
  return q4_K_dot_x86 (n, vx, vy);
}
