/* ruv-test-util.h — helpers shared by the engine tests: small GGUF models
 * built in memory with hand-chosen weights.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

#include "rk.h"
#include "ruv-gguf-writer.h"

G_BEGIN_DECLS

/* Fills n values of the tensor called `name` (row-major, ne[0] fastest). */
typedef void (*RuvTestFillFunc) (const char *name,
                                 float      *values,
                                 gint64      ne0,
                                 gint64      ne1,
                                 gpointer    user_data);

typedef struct
{
  const char *arch;          /* general.architecture: "llama", "qwen2", "qwen3", ... */
  gint64      n_embd;
  gint64      n_layer;
  gint64      n_head;
  gint64      n_head_kv;
  gint64      head_dim;      /* written as attention.key_length when != n_embd / n_head */
  gint64      n_ff;
  gint64      n_vocab;
  gint64      n_ctx;
  gboolean    tied;          /* no output.weight */
  gboolean    qkv_bias;      /* attn_{q,k,v}.bias */
  gboolean    qk_norm;       /* attn_{q,k}_norm.weight (qwen3) */
  gboolean    vocab;         /* write tokenizer.ggml.tokens with n_vocab entries */
  rk_type     matrix_type;   /* type of every 2-D weight (F32 when 0) */
  /* Mutations for error tests (NULL: none). */
  const char *omit_tensor;   /* leave this tensor out */
  const char *grow_tensor;   /* write this tensor with one more row (ne[1] + 1) */
  const char *retype_tensor; /* write this tensor as retype (raw zero bytes) */
  rk_type     retype;
  gint64      vocab_delta;   /* tokenizer.ggml.tokens gets n_vocab + vocab_delta entries */
} RuvTestModelSpec;

/* A spec of a small llama model (d32 L1 h2/1 head_dim 16 ffn 32 vocab 8). */
void    ruv_test_model_spec_init (RuvTestModelSpec       *spec);

/* The model's GGUF bytes. fill gives every tensor's values (NULL: all 0.5). */
GBytes *ruv_test_model_build     (const RuvTestModelSpec *spec,
                                  RuvTestFillFunc         fill,
                                  gpointer                user_data);

/* Path of a file in tests/data. */
char   *ruv_test_data_path       (const char             *name);

G_END_DECLS
