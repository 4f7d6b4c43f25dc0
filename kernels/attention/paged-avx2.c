/* paged-avx2.c — paged attention on the AVX2 + FMA online-softmax step.
 * SPDX-License-Identifier: MIT
 *
 * The block walk and the pool split live in paged.c; this variant only
 * supplies its step (flash-avx2.c) for each run of keys inside a block.
 */
#include "attention-private.h"

void
rk_paged_attention_avx2 (rk_pool                   *pool,
                         const rk_attention_config *cfg,
                         const float               *q,
                         int                        n_q,
                         int64_t                    q_pos0,
                         const rk_paged_kv         *kv,
                         float                     *out)
{
  rk_attn_paged_run (rk_attn_step_avx2, pool, cfg, q, n_q, q_pos0, kv, out);
}
