/* gqa-neon.c — grouped-query attention on the NEON flash kernel.
 * SPDX-License-Identifier: MIT
 *
 * The head-to-KV-head mapping and the pool split live in gqa.c; this variant
 * only supplies its flash kernel (flash-neon.c) for each (query, head) item.
 */
#include "attention-private.h"

void
rk_grouped_query_attention_neon (rk_pool                   *pool,
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
  rk_attn_gqa_run (rk_flash_attention_neon, pool, cfg, q, n_q, q_pos0,
                   k, v, kv_len, kv_stride, out);
}
