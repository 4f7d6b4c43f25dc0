/* flash-avx2.c — flash attention step with AVX2 + FMA: 8-wide dots, exp and
 * value accumulation. SPDX-License-Identifier: MIT
 *
 * Same tiles and the same online softmax as rk_attn_step_ref; only the inner
 * loops are vectorised, each ending with the reference's scalar tail.
 */
#include <immintrin.h>
#include <math.h>

#include "attention-private.h"
#include "ops/simd-avx2.h"
#include "rk-avx2.h"

void
rk_attn_step_avx2 (const float   *q,
                   const float   *k,
                   const float   *v,
                   int64_t        n,
                   int64_t        stride,
                   int            head_dim,
                   float          scale,
                   rk_attn_state *st)
{
  float s[RK_ATTN_TILE];
  float *acc = st->acc;
  int64_t j0;

  for (j0 = 0; j0 < n; j0 += RK_ATTN_TILE)
    {
      int nt = (int) (n - j0 < RK_ATTN_TILE ? n - j0 : RK_ATTN_TILE);
      float m_tile = -INFINITY;
      float m_new, alpha, l_tile;
      int j, d;

      for (j = 0; j < nt; j++)
        {
          const float *kj = k + (j0 + j) * stride;
          __m256 a0 = _mm256_setzero_ps ();
          __m256 a1 = _mm256_setzero_ps ();
          float dot;

          /* Two accumulators hide the fma latency. */
          for (d = 0; d + 16 <= head_dim; d += 16)
            {
              a0 = _mm256_fmadd_ps (_mm256_loadu_ps (q + d), _mm256_loadu_ps (kj + d), a0);
              a1 = _mm256_fmadd_ps (_mm256_loadu_ps (q + d + 8),
                                    _mm256_loadu_ps (kj + d + 8), a1);
            }
          for (; d + 8 <= head_dim; d += 8)
            a0 = _mm256_fmadd_ps (_mm256_loadu_ps (q + d), _mm256_loadu_ps (kj + d), a0);
          dot = rk_hsum_ps_avx2 (_mm256_add_ps (a0, a1));
          for (; d < head_dim; d++)
            dot += q[d] * kj[d];
          s[j] = dot * scale;
          if (s[j] > m_tile)
            m_tile = s[j];
        }
      if (m_tile == -INFINITY)
        continue;

      m_new = m_tile > st->m ? m_tile : st->m;
      alpha = expf (st->m - m_new);
      if (alpha != 1.0f)
        {
          __m256 va = _mm256_set1_ps (alpha);

          st->l *= alpha;
          for (d = 0; d + 8 <= head_dim; d += 8)
            _mm256_storeu_ps (acc + d, _mm256_mul_ps (_mm256_loadu_ps (acc + d), va));
          for (; d < head_dim; d++)
            acc[d] *= alpha;
        }
      st->m = m_new;

      /* Scores become weights in place: s[j] = exp (s[j] - m). */
      {
        __m256 vm = _mm256_set1_ps (m_new);

        for (j = 0; j + 8 <= nt; j += 8)
          _mm256_storeu_ps (s + j, expf_avx2 (_mm256_sub_ps (_mm256_loadu_ps (s + j), vm)));
        for (; j < nt; j++)
          s[j] = expf (s[j] - m_new);
      }

      l_tile = 0.0f;
      for (j = 0; j < nt; j++)
        {
          const float *vj = v + (j0 + j) * stride;
          __m256 vp = _mm256_set1_ps (s[j]);

          l_tile += s[j];
          for (d = 0; d + 8 <= head_dim; d += 8)
            _mm256_storeu_ps (acc + d, _mm256_fmadd_ps (vp, _mm256_loadu_ps (vj + d),
                                                        _mm256_loadu_ps (acc + d)));
          for (; d < head_dim; d++)
            acc[d] += s[j] * vj[d];
        }
      st->l += l_tile;
    }
}

void
rk_flash_attention_avx2 (const float *q,
                         int          n_q,
                         int64_t      q_pos0,
                         const float *k,
                         const float *v,
                         int64_t      kv_len,
                         int64_t      kv_stride,
                         int          head_dim,
                         float        scale,
                         bool         causal,
                         float       *out)
{
  rk_attn_flash_run (rk_attn_step_avx2, q, n_q, q_pos0, k, v, kv_len, kv_stride,
                     head_dim, scale, causal, out);
}
