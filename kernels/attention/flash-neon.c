/* flash-neon.c — flash attention step with NEON: 4-wide dots, exp and value
 * accumulation. SPDX-License-Identifier: MIT
 *
 * Same tiles and the same online softmax as rk_attn_step_ref; only the inner
 * loops are vectorised, each ending with the reference's scalar tail.
 * Baseline ARMv8.0 Advanced SIMD only.
 */
#include <arm_neon.h>
#include <math.h>

#include "attention-private.h"
#include "ops/simd-neon.h"

void
rk_attn_step_neon (const float   *q,
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
          float32x4_t a0 = vdupq_n_f32 (0.0f);
          float32x4_t a1 = vdupq_n_f32 (0.0f);
          float dot;

          /* Two accumulators hide the fma latency. */
          for (d = 0; d + 8 <= head_dim; d += 8)
            {
              a0 = vfmaq_f32 (a0, vld1q_f32 (q + d), vld1q_f32 (kj + d));
              a1 = vfmaq_f32 (a1, vld1q_f32 (q + d + 4), vld1q_f32 (kj + d + 4));
            }
          for (; d + 4 <= head_dim; d += 4)
            a0 = vfmaq_f32 (a0, vld1q_f32 (q + d), vld1q_f32 (kj + d));
          dot = vaddvq_f32 (vaddq_f32 (a0, a1));
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
          st->l *= alpha;
          for (d = 0; d + 4 <= head_dim; d += 4)
            vst1q_f32 (acc + d, vmulq_n_f32 (vld1q_f32 (acc + d), alpha));
          for (; d < head_dim; d++)
            acc[d] *= alpha;
        }
      st->m = m_new;

      /* Scores become weights in place: s[j] = exp (s[j] - m). */
      {
        float32x4_t vm = vdupq_n_f32 (m_new);

        for (j = 0; j + 4 <= nt; j += 4)
          vst1q_f32 (s + j, expf_neon (vsubq_f32 (vld1q_f32 (s + j), vm)));
        for (; j < nt; j++)
          s[j] = expf (s[j] - m_new);
      }

      l_tile = 0.0f;
      for (j = 0; j < nt; j++)
        {
          const float *vj = v + (j0 + j) * stride;
          float p = s[j];

          l_tile += p;
          for (d = 0; d + 4 <= head_dim; d += 4)
            vst1q_f32 (acc + d, vfmaq_n_f32 (vld1q_f32 (acc + d), vld1q_f32 (vj + d), p));
          for (; d < head_dim; d++)
            acc[d] += p * vj[d];
        }
      st->l += l_tile;
    }
}

void
rk_flash_attention_neon (const float *q,
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
  rk_attn_flash_run (rk_attn_step_neon, q, n_q, q_pos0, k, v, kv_len, kv_stride,
                     head_dim, scale, causal, out);
}
