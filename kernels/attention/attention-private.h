/* attention-private.h — the online-softmax step shared by the attention kernels.
 * SPDX-License-Identifier: MIT
 *
 * Every attention kernel is the same loop: for one query row, visit runs of keys
 * and fold them into a running state (m, l, acc), then write acc / l. Flash
 * visits one contiguous run; paged visits one run per block. Only the step
 * (dots, exp, fma into acc) differs per ISA, so the drivers here take it as a
 * function pointer and the _avx2 / _neon kernels pass their own step.
 */
#pragma once

#include <stdint.h>

#include "rk-attention.h"

/* Keys scored at once: the scores of one tile live on the stack. */
#define RK_ATTN_TILE 64

/* The running state of one query row:
 *   m   the largest scaled score seen so far (-inf before any key),
 *   l   sum over seen keys of exp (score - m),
 *   acc (head_dim) sum over seen keys of exp (score - m) * v. */
typedef struct
{
  float  m;
  float  l;
  float *acc;
} rk_attn_state;

/* Folds n keys into st: key j is k[j * stride .. + head_dim), its value
 * v[j * stride .. + head_dim). n may be any count >= 0 (tiled inside). */
typedef void (*rk_attn_step_fn) (const float *q, const float *k, const float *v,
                                 int64_t n, int64_t stride, int head_dim, float scale,
                                 rk_attn_state *st);

void rk_attn_step_ref  (const float *q, const float *k, const float *v,
                        int64_t n, int64_t stride, int head_dim, float scale,
                        rk_attn_state *st);
void rk_attn_step_avx2 (const float *q, const float *k, const float *v,
                        int64_t n, int64_t stride, int head_dim, float scale,
                        rk_attn_state *st);
void rk_attn_step_neon (const float *q, const float *k, const float *v,
                        int64_t n, int64_t stride, int head_dim, float scale,
                        rk_attn_state *st);

/* Starts a row: st->acc = out (zeroed), m = -inf, l = 0. */
void rk_attn_state_init   (rk_attn_state *st, float *out, int head_dim);
/* Ends a row: acc /= l in place (zeros when no key was seen). */
void rk_attn_state_finish (rk_attn_state *st, int head_dim);

/* Number of keys query i sees: kv_len, or with causal masking
 * min (kv_len, q_pos0 + i + 1), never below 0. */
int64_t rk_attn_visible (int64_t kv_len, int64_t q_pos0, int64_t i, bool causal);

/* The drivers, one per kernel family, parameterised by the step. */
void rk_attn_flash_run (rk_attn_step_fn step,
                        const float *q, int n_q, int64_t q_pos0,
                        const float *k, const float *v, int64_t kv_len, int64_t kv_stride,
                        int head_dim, float scale, bool causal, float *out);
void rk_attn_paged_run (rk_attn_step_fn step,
                        rk_pool *pool, const rk_attention_config *cfg,
                        const float *q, int n_q, int64_t q_pos0,
                        const rk_paged_kv *kv, float *out);

typedef void (*rk_attn_flash_fn) (const float *q, int n_q, int64_t q_pos0,
                                  const float *k, const float *v,
                                  int64_t kv_len, int64_t kv_stride,
                                  int head_dim, float scale, bool causal, float *out);

void rk_attn_gqa_run (rk_attn_flash_fn flash,
                      rk_pool *pool, const rk_attention_config *cfg,
                      const float *q, int n_q, int64_t q_pos0,
                      const float *k, const float *v, int64_t kv_len, int64_t kv_stride,
                      float *out);

/* true when cfg describes a usable layout (positive sizes, kv heads divide
 * heads). Kernels given anything else zero what they can of out. */
bool rk_attn_config_valid (const rk_attention_config *cfg);
