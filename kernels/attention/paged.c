/* paged.c — attention over a paged KV cache (keys in fixed-size blocks).
 * SPDX-License-Identifier: MIT
 *
 * The same online softmax as flash.c, but a query row walks the block table:
 * block i of the sequence (tokens i*block_size ..) is pool block
 * block_table[i], anywhere in the pool, and each block is one run of keys
 * (rows n_kv_heads * head_dim floats apart) folded into the running state.
 * The last block may be partly filled (kv_len ends mid-block).
 */
#include <string.h>

#include "rk-cpu.h"
#include "attention-private.h"

typedef struct
{
  rk_attn_step_fn    step;
  const rk_paged_kv *kv;
  const float       *q;
  float             *out;
  int64_t            q_pos0;
  int64_t            kv_len;       /* clamped to what the table covers */
  int                num_heads;
  int                ratio;
  int                head_dim;
  int                n_kv_heads;
  float              scale;
  bool               causal;
} paged_job;

static void
paged_rows (void   *ctx,
            int64_t begin,
            int64_t end,
            int     thread_index)
{
  const paged_job *job = ctx;
  const rk_paged_kv *kv = job->kv;
  int64_t hd = job->head_dim;
  int64_t token_stride = (int64_t) job->n_kv_heads * job->head_dim;
  int64_t r;

  for (r = begin; r < end; r++)
    {
      int64_t t = r / job->num_heads;
      int64_t kvh = (r % job->num_heads) / job->ratio;
      int64_t n = rk_attn_visible (job->kv_len, job->q_pos0, t, job->causal);
      int64_t pos, b;
      rk_attn_state st;

      rk_attn_state_init (&st, job->out + r * hd, job->head_dim);
      for (b = 0, pos = 0; pos < n; b++, pos += kv->block_size)
        {
          int64_t base = (int64_t) kv->block_table[b] * kv->block_stride + kvh * hd;
          int64_t cnt = n - pos < kv->block_size ? n - pos : kv->block_size;

          job->step (job->q + r * hd, kv->k_pool + base, kv->v_pool + base,
                     cnt, token_stride, job->head_dim, job->scale, &st);
        }
      rk_attn_state_finish (&st, job->head_dim);
    }
}

void
rk_attn_paged_run (rk_attn_step_fn            step,
                   rk_pool                   *pool,
                   const rk_attention_config *cfg,
                   const float               *q,
                   int                        n_q,
                   int64_t                    q_pos0,
                   const rk_paged_kv         *kv,
                   float                     *out)
{
  paged_job job;
  int64_t n_rows, kv_len, b, work;

  if (n_q <= 0 || cfg->num_heads <= 0 || cfg->head_dim <= 0)
    return;
  n_rows = (int64_t) n_q * cfg->num_heads;
  if (!rk_attn_config_valid (cfg) || kv->block_size <= 0 || kv->n_blocks < 0)
    {
      memset (out, 0, (size_t) (n_rows * cfg->head_dim) * sizeof (float));
      return;
    }

  /* Never read past the table: keys from the first block it does not name
   * (an entry < 0, or past n_blocks) on are not there. */
  kv_len = kv->kv_len;
  for (b = 0; b < kv->n_blocks && b * kv->block_size < kv_len; b++)
    if (kv->block_table[b] < 0)
      break;
  if (kv_len > b * kv->block_size)
    kv_len = b * kv->block_size;

  job.step = step;
  job.kv = kv;
  job.q = q;
  job.out = out;
  job.q_pos0 = q_pos0;
  job.kv_len = kv_len;
  job.num_heads = cfg->num_heads;
  job.ratio = rk_attention_gqa_ratio (cfg);
  job.head_dim = cfg->head_dim;
  job.n_kv_heads = cfg->num_kv_heads;
  job.scale = rk_attention_effective_scale (cfg);
  job.causal = cfg->causal;

  work = (kv_len > 0 ? kv_len : 1) * cfg->head_dim;
  rk_pool_parallel_for (pool, n_rows, 1 + 65536 / work, paged_rows, &job);
}

void
rk_paged_attention_ref (rk_pool                   *pool,
                        const rk_attention_config *cfg,
                        const float               *q,
                        int                        n_q,
                        int64_t                    q_pos0,
                        const rk_paged_kv         *kv,
                        float                     *out)
{
  rk_attn_paged_run (rk_attn_step_ref, pool, cfg, q, n_q, q_pos0, kv, out);
}

void
rk_paged_attention (rk_pool                   *pool,
                    const rk_attention_config *cfg,
                    const float               *q,
                    int                        n_q,
                    int64_t                    q_pos0,
                    const rk_paged_kv         *kv,
                    float                     *out)
{
  switch (rk_cpu_isa ())
    {
    case RK_ISA_AVX2:
#if defined(RK_HAVE_AVX2)
      rk_paged_attention_avx2 (pool, cfg, q, n_q, q_pos0, kv, out);
      return;
#else
      break;
#endif
    case RK_ISA_NEON:
#if defined(RK_HAVE_NEON)
      rk_paged_attention_neon (pool, cfg, q, n_q, q_pos0, kv, out);
      return;
#else
      break;
#endif
    case RK_ISA_REF:
    default:
      break;
    }
  rk_paged_attention_ref (pool, cfg, q, n_q, q_pos0, kv, out);
}
