/* ruv-model-private.h — the bound weights and hyper-parameters, for the
 * forward pass and other engine internals.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "ruv-model.h"
#include "rk.h"

G_BEGIN_DECLS

typedef enum
{
  RUV_ARCH_LLAMA,
  RUV_ARCH_QWEN2,
  RUV_ARCH_QWEN3,
} RuvArch;

typedef struct
{
  RuvArch  arch;
  gint64   n_ctx_train;   /* <arch>.context_length */
  gint64   n_embd;        /* <arch>.embedding_length */
  gint64   n_layer;       /* <arch>.block_count */
  gint64   n_ff;          /* <arch>.feed_forward_length */
  gint64   n_head;        /* <arch>.attention.head_count */
  gint64   n_head_kv;     /* <arch>.attention.head_count_kv */
  gint64   head_dim;      /* <arch>.attention.key_length (= value_length) */
  gint64   n_rot;         /* <arch>.rope.dimension_count */
  gint64   n_vocab;       /* rows of token_embd (= tokenizer.ggml.tokens) */
  float    rms_eps;
  float    rope_freq_base;
  float    rope_freq_scale;
  gboolean rope_neox;     /* qwen2, qwen3: (i, i + n_rot/2) pairs */
} RuvHParams;

/* A weight matrix of n_out rows by n_in columns as mapped from the file
 * (GGUF ne[0] = n_in, ne[1] = n_out). */
typedef struct
{
  const char *name;
  rk_type     type;
  const void *data;
  gsize       row_stride;
  gint64      n_in;
  gint64      n_out;
} RuvWeight;

typedef struct
{
  float    *attn_norm;      /* (n_embd) */
  RuvWeight wq;             /* (n_head * head_dim) x n_embd */
  RuvWeight wk;             /* (n_head_kv * head_dim) x n_embd */
  RuvWeight wv;             /* (n_head_kv * head_dim) x n_embd */
  RuvWeight wo;             /* n_embd x (n_head * head_dim) */
  float    *bq, *bk, *bv;   /* biases or NULL (qwen2) */
  float    *q_norm, *k_norm;/* (head_dim) per-head RMSNorm weights or NULL (qwen3) */
  float    *ffn_norm;       /* (n_embd) */
  RuvWeight w_gate;         /* n_ff x n_embd */
  RuvWeight w_up;           /* n_ff x n_embd */
  RuvWeight w_down;         /* n_embd x n_ff */
} RuvLayer;

typedef struct
{
  RuvHParams  hp;
  RuvWeight   token_embd;   /* n_vocab x n_embd */
  RuvWeight   output;       /* n_vocab x n_embd (token_embd when tied) */
  float      *output_norm;  /* (n_embd) */
  float      *rope_factors; /* (n_rot / 2) llama3 freq_factors or NULL */
  RuvLayer   *layers;       /* n_layer */
} RuvWeights;

const RuvWeights *ruv_model_get_weights (RuvModel *self);

G_END_DECLS
