/* paged-neon.c — paged attention on the NEON online-softmax step.
 * SPDX-License-Identifier: MIT
 *
 * The block walk and the pool split live in paged.c; this variant only
 * supplies its step (flash-neon.c) for each run of keys inside a block.
 */
#include "attention-private.h"

void
rk_paged_attention_neon (rk_pool                   *pool,
                         const rk_attention_config *cfg,
                         const float               *q,
                         int                        n_q,
                         int64_t                    q_pos0,
                         const rk_paged_kv         *kv,
                         float                     *out)
{
  rk_attn_paged_run (rk_attn_step_neon, pool, cfg, q, n_q, q_pos0, kv, out);
}
