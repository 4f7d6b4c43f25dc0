/* gqa.c — grouped-query (and multi-query) attention over all heads.
 * SPDX-License-Identifier: MIT
 *
 * Work item r = t * num_heads + h is query token t, head h: one flash call
 * with one query row against KV head h / (num_heads / num_kv_heads). Items
 * write disjoint output rows, so they run on the pool in any order and the
 * result does not depend on the number of threads.
 */
#include <math.h>
#include <string.h>

#include "rk-cpu.h"
#include "attention-private.h"

int
rk_attention_gqa_ratio (const rk_attention_config *cfg)
{
  if (cfg->num_kv_heads <= 0)
    return 0;
  return cfg->num_heads / cfg->num_kv_heads;
}

float
rk_attention_effective_scale (const rk_attention_config *cfg)
{
  if (cfg->scale != 0.0f)
    return cfg->scale;
  if (cfg->head_dim <= 0)
    return 1.0f;
  return 1.0f / sqrtf ((float) cfg->head_dim);
}

bool
rk_attn_config_valid (const rk_attention_config *cfg)
{
  return cfg->num_heads > 0 && cfg->num_kv_heads > 0 && cfg->head_dim > 0
         && cfg->num_heads % cfg->num_kv_heads == 0;
}

typedef struct
{
  rk_attn_flash_fn flash;
  const float     *q;
  const float     *k;
  const float     *v;
  float           *out;
  int64_t          q_pos0;
  int64_t          kv_len;
  int64_t          kv_stride;
  int              num_heads;
  int              ratio;
  int              head_dim;
  float            scale;
  bool             causal;
} gqa_job;

static void
gqa_rows (void   *ctx,
          int64_t begin,
          int64_t end,
          int     thread_index)
{
  const gqa_job *job = ctx;
  int64_t hd = job->head_dim;
  int64_t r;

  for (r = begin; r < end; r++)
    {
      int64_t t = r / job->num_heads;
      int64_t kvh = (r % job->num_heads) / job->ratio;

      job->flash (job->q + r * hd, 1, job->q_pos0 + t,
                  job->k + kvh * hd, job->v + kvh * hd, job->kv_len, job->kv_stride,
                  job->head_dim, job->scale, job->causal, job->out + r * hd);
    }
}

void
rk_attn_gqa_run (rk_attn_flash_fn           flash,
                 rk_pool                   *pool,
                 const rk_attention_config *cfg,
                 const float               *q,
                 int                        n_q,
                 int64_t                    q_pos0,
                 const float               *k,
                 const float               *v,
                 int64_t                    kv_len,
                 int64_t                    kv_stride,
                 float                     *out)
{
  gqa_job job;
  int64_t n_rows, work;

  if (n_q <= 0 || cfg->num_heads <= 0 || cfg->head_dim <= 0)
    return;
  n_rows = (int64_t) n_q * cfg->num_heads;
  if (!rk_attn_config_valid (cfg)
      || kv_stride < (int64_t) cfg->num_kv_heads * cfg->head_dim)
    {
      memset (out, 0, (size_t) (n_rows * cfg->head_dim) * sizeof (float));
      return;
    }

  job.flash = flash;
  job.q = q;
  job.k = k;
  job.v = v;
  job.out = out;
  job.q_pos0 = q_pos0;
  job.kv_len = kv_len;
  job.kv_stride = kv_stride;
  job.num_heads = cfg->num_heads;
  job.ratio = rk_attention_gqa_ratio (cfg);
  job.head_dim = cfg->head_dim;
  job.scale = rk_attention_effective_scale (cfg);
  job.causal = cfg->causal;

  /* A chunk should be worth a thread hand-off: about 64k multiply-adds. */
  work = (kv_len > 0 ? kv_len : 1) * cfg->head_dim;
  rk_pool_parallel_for (pool, n_rows, 1 + 65536 / work, gqa_rows, &job);
}

void
rk_grouped_query_attention_ref (rk_pool                   *pool,
                                const rk_attention_config *cfg,
                                const float               *q,
                                int                        n_q,
                                int64_t                    q_pos0,
                                const float               *k,
                                const float               *v,
                                int64_t                    kv_len,
                                int64_t                    kv_stride,
                                float                     *out)
{
  rk_attn_gqa_run (rk_flash_attention_ref, pool, cfg, q, n_q, q_pos0,
                   k, v, kv_len, kv_stride, out);
}

void
rk_grouped_query_attention (rk_pool                   *pool,
                            const rk_attention_config *cfg,
                            const float               *q,
                            int                        n_q,
                            int64_t                    q_pos0,
                            const float               *k,
                            const float               *v,
                            int64_t                    kv_len,
                            int64_t                    kv_stride,
                            float                     *out)
{
  switch (rk_cpu_isa ())
    {
    case RK_ISA_AVX2:
#if defined(RK_HAVE_AVX2)
      rk_grouped_query_attention_avx2 (pool, cfg, q, n_q, q_pos0, k, v, kv_len, kv_stride,
                                       out);
      return;
#else
      break;
#endif
    case RK_ISA_NEON:
#if defined(RK_HAVE_NEON)
      rk_grouped_query_attention_neon (pool, cfg, q, n_q, q_pos0, k, v, kv_len, kv_stride,
                                       out);
      return;
#else
      break;
#endif
    case RK_ISA_REF:
    default:
      break;
    }
  rk_grouped_query_attention_ref (pool, cfg, q, n_q, q_pos0, k, v, kv_len, kv_stride, out);
}

void
rk_multi_query_attention (rk_pool                   *pool,
                          const rk_attention_config *cfg,
                          const float               *q,
                          int                        n_q,
                          int64_t                    q_pos0,
                          const float               *k,
                          const float               *v,
                          int64_t                    kv_len,
                          float                     *out)
{
  rk_attention_config one = *cfg;

  /* One KV head: k and v rows are head_dim floats, packed. */
  one.num_kv_heads = 1;
  rk_grouped_query_attention (pool, &one, q, n_q, q_pos0, k, v, kv_len, cfg->head_dim, out);
}
