/* rk-attention.h — attention kernels: flash (tiled, online softmax), GQA, MQA,
 * paged. SPDX-License-Identifier: MIT
 *
 * Layouts (row-major floats):
 *   q: (n_q, n_heads, head_dim)        n_q query tokens at positions
 *                                      q_pos0 .. q_pos0 + n_q - 1
 *   k, v: (kv_len, n_kv_heads, head_dim) rows kv_stride floats apart
 *                                      (kv_stride >= n_kv_heads * head_dim)
 *   out: (n_q, n_heads, head_dim)
 * Query head h reads KV head h / (n_heads / n_kv_heads). With causal masking,
 * query i (absolute position q_pos0 + i) sees keys 0 .. q_pos0 + i; key j is at
 * absolute position j. Memory is O(head_dim) per query: keys are visited in
 * tiles with a running max and sum (online softmax), never an n x n matrix.
 * Every kernel has `_ref`, `_avx2`, `_neon` variants and a dispatched name.
 * out must not overlap q, k or v. A query that sees no key (kv_len 0) gets a
 * zero row; a config whose kv heads do not divide its heads gives zeros.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "rk-pool.h"

typedef struct
{
  int   num_heads;
  int   num_kv_heads;
  int   head_dim;
  bool  causal;
  float scale;        /* 0 means 1/sqrt(head_dim) (the reference's None) */
} rk_attention_config;

/* num_heads / num_kv_heads (the reference's gqa_ratio). */
int   rk_attention_gqa_ratio       (const rk_attention_config *cfg);
/* scale, or 1/sqrt(head_dim) when scale is 0. */
float rk_attention_effective_scale (const rk_attention_config *cfg);

#define RK_DECLARE_ATTN(ret, name, args) \
  ret name          args;                \
  ret name##_ref    args;                \
  ret name##_avx2   args;                \
  ret name##_neon   args;

/* One head, one or more queries (the reference's flash_attention):
 * q (n_q, head_dim), k/v (kv_len, head_dim) with rows kv_stride floats apart,
 * out (n_q, head_dim). */
RK_DECLARE_ATTN (void, rk_flash_attention,
                 (const float *q, int n_q, int64_t q_pos0,
                  const float *k, const float *v, int64_t kv_len, int64_t kv_stride,
                  int head_dim, float scale, bool causal, float *out))

/* All heads, GQA (num_kv_heads divides num_heads; MQA is num_kv_heads == 1).
 * Parallel over (query, head) on the pool (NULL: inline). */
RK_DECLARE_ATTN (void, rk_grouped_query_attention,
                 (rk_pool *pool, const rk_attention_config *cfg,
                  const float *q, int n_q, int64_t q_pos0,
                  const float *k, const float *v, int64_t kv_len, int64_t kv_stride,
                  float *out))

/* MQA: one KV head shared by all query heads; same as GQA with num_kv_heads 1
 * (cfg->num_kv_heads is not read) and k, v packed as (kv_len, head_dim). */
void rk_multi_query_attention (rk_pool *pool, const rk_attention_config *cfg,
                               const float *q, int n_q, int64_t q_pos0,
                               const float *k, const float *v, int64_t kv_len,
                               float *out);

/* Paged KV: fixed-size blocks of block_size tokens in a pool of blocks.
 * Block b of the pool holds K at k_pool + b * block_stride and V at
 * v_pool + b * block_stride, each (block_size, n_kv_heads, head_dim) floats.
 * block_table[i] is the pool block holding tokens i*block_size .. +block_size-1
 * of this sequence; kv_len tokens are valid. Only the first n_blocks entries
 * are read, and an entry < 0 ends the sequence there: kv_len is cut to the
 * tokens the table actually names. */
typedef struct
{
  const float   *k_pool;
  const float   *v_pool;
  int64_t        block_stride;   /* floats between consecutive pool blocks */
  int            block_size;     /* tokens per block */
  const int32_t *block_table;
  int64_t        n_blocks;       /* entries in block_table */
  int64_t        kv_len;
} rk_paged_kv;

RK_DECLARE_ATTN (void, rk_paged_attention,
                 (rk_pool *pool, const rk_attention_config *cfg,
                  const float *q, int n_q, int64_t q_pos0,
                  const rk_paged_kv *kv, float *out))
