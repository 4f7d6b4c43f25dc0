/* flash.c — flash attention for one head: keys in tiles, online softmax.
 * SPDX-License-Identifier: MIT
 *
 * For one query row q (head_dim) and keys k_0 .. k_{n-1}, the output is
 *   sum_j softmax_j (scale * q.k_j) * v_j.
 * Instead of the whole row of scores we keep a running max m, a running sum
 * l = sum exp (s_j - m) and acc = sum exp (s_j - m) v_j. A tile of keys with a
 * larger max m' rescales l and acc by exp (m - m') before adding its own
 * terms, so the memory is one tile of scores plus acc (which is the output
 * row itself) whatever kv_len is.
 */
#include <math.h>
#include <string.h>

#include "rk-cpu.h"
#include "attention-private.h"

void
rk_attn_state_init (rk_attn_state *st,
                    float         *out,
                    int            head_dim)
{
  st->m = -INFINITY;
  st->l = 0.0f;
  st->acc = out;
  memset (out, 0, (size_t) head_dim * sizeof (float));
}

void
rk_attn_state_finish (rk_attn_state *st,
                      int            head_dim)
{
  float inv;
  int d;

  /* l == 0: no key was visible (kv_len 0, or masked); the output stays zero. */
  if (st->l == 0.0f)
    return;
  inv = 1.0f / st->l;
  for (d = 0; d < head_dim; d++)
    st->acc[d] *= inv;
}

int64_t
rk_attn_visible (int64_t kv_len,
                 int64_t q_pos0,
                 int64_t i,
                 bool    causal)
{
  int64_t last;

  if (kv_len <= 0)
    return 0;
  if (!causal)
    return kv_len;
  /* Query i is at absolute position q_pos0 + i and sees keys 0 .. that. */
  last = q_pos0 + i + 1;
  if (last <= 0)
    return 0;
  return last < kv_len ? last : kv_len;
}

void
rk_attn_step_ref (const float   *q,
                  const float   *k,
                  const float   *v,
                  int64_t        n,
                  int64_t        stride,
                  int            head_dim,
                  float          scale,
                  rk_attn_state *st)
{
  float s[RK_ATTN_TILE];
  int64_t j0;

  for (j0 = 0; j0 < n; j0 += RK_ATTN_TILE)
    {
      int nt = (int) (n - j0 < RK_ATTN_TILE ? n - j0 : RK_ATTN_TILE);
      float m_tile = -INFINITY;
      float m_new, alpha;
      int j, d;

      /* Scores of this tile and their max. */
      for (j = 0; j < nt; j++)
        {
          const float *kj = k + (j0 + j) * stride;
          float dot = 0.0f;

          for (d = 0; d < head_dim; d++)
            dot += q[d] * kj[d];
          s[j] = dot * scale;
          if (s[j] > m_tile)
            m_tile = s[j];
        }
      /* Every score -inf: these keys have weight 0. */
      if (m_tile == -INFINITY)
        continue;

      /* Move the running state to the new max. exp (-inf) is 0 on the first
       * tile, where acc and l are still 0 anyway. */
      m_new = m_tile > st->m ? m_tile : st->m;
      alpha = expf (st->m - m_new);
      if (alpha != 1.0f)
        {
          st->l *= alpha;
          for (d = 0; d < head_dim; d++)
            st->acc[d] *= alpha;
        }
      st->m = m_new;

      for (j = 0; j < nt; j++)
        {
          const float *vj = v + (j0 + j) * stride;
          float p = expf (s[j] - m_new);

          st->l += p;
          for (d = 0; d < head_dim; d++)
            st->acc[d] += p * vj[d];
        }
    }
}

void
rk_attn_flash_run (rk_attn_step_fn step,
                   const float    *q,
                   int             n_q,
                   int64_t         q_pos0,
                   const float    *k,
                   const float    *v,
                   int64_t         kv_len,
                   int64_t         kv_stride,
                   int             head_dim,
                   float           scale,
                   bool            causal,
                   float          *out)
{
  int i;

  if (head_dim <= 0)
    return;
  for (i = 0; i < n_q; i++)
    {
      rk_attn_state st;
      int64_t n = rk_attn_visible (kv_len, q_pos0, i, causal);

      rk_attn_state_init (&st, out + (int64_t) i * head_dim, head_dim);
      step (q + (int64_t) i * head_dim, k, v, n, kv_stride, head_dim, scale, &st);
      rk_attn_state_finish (&st, head_dim);
    }
}

void
rk_flash_attention_ref (const float *q,
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
  rk_attn_flash_run (rk_attn_step_ref, q, n_q, q_pos0, k, v, kv_len, kv_stride,
                     head_dim, scale, causal, out);
}

void
rk_flash_attention (const float *q,
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
  switch (rk_cpu_isa ())
    {
    case RK_ISA_AVX2:
#if defined(RK_HAVE_AVX2)
      rk_flash_attention_avx2 (q, n_q, q_pos0, k, v, kv_len, kv_stride,
                               head_dim, scale, causal, out);
      return;
#else
      break;
#endif
    case RK_ISA_NEON:
#if defined(RK_HAVE_NEON)
      rk_flash_attention_neon (q, n_q, q_pos0, k, v, kv_len, kv_stride,
                               head_dim, scale, causal, out);
      return;
#else
      break;
#endif
    case RK_ISA_REF:
    default:
      break;
    }
  rk_flash_attention_ref (q, n_q, q_pos0, k, v, kv_len, kv_stride,
                          head_dim, scale, causal, out);
}
