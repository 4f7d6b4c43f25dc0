/* ruv-test-util.h — helpers shared by the engine tests: small GGUF models
 * built in memory with hand-chosen weights, and running the built ruvllm-cli.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <stdarg.h>

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

/* Removes path and everything below it (directories made writable first:
 * some tests take write permission away). */
void    ruv_test_rm_rf           (const char             *path);

/* The ruvllm-cli to run: $RUVLLM_CLI when set and not empty, else the path
 * the test was built with (RUVLLM_CLI_PATH); NULL when that is not an
 * executable file (the CLI tests then skip). */
char   *ruv_test_cli_path        (void);

/* The "chain" model of the CLI tests: a 32-token byte-level vocabulary
 * (<|endoftext|> <|im_start|> <|im_end|> a..z Ġ Ċ !), one layer (d32 h2/1
 * ffn 32) with zero attention and FFN matrices, one-hot embeddings and an
 * output matrix that makes the greedy successor of a..y the next letter, of
 * z <|im_end|>, of a newline h. */
typedef enum
{
  RUV_TEST_CHAIN_CYCLE  = 1 << 0, /* z is followed by a: it never stops */
  RUV_TEST_CHAIN_RANDOM = 1 << 1, /* pseudo-random attention and FFN matrices */
} RuvTestChainFlags;

void    ruv_test_write_chain_model (const char             *path,
                                    const char             *name,
                                    guint32                 n_ctx,
                                    RuvTestChainFlags       flags);

/* Runs program with the NULL-terminated arguments in ap, the environment envp
 * (NULL: this one's) and input on stdin (NULL: this one's stdin); returns the
 * exit status (-1 when killed by a signal), stdout in *out, stderr in *err. */
int     ruv_test_spawn_va          (const char             *program,
                                    const char *const      *envp,
                                    const char             *input,
                                    char                  **out,
                                    char                  **err,
                                    va_list                 ap);

/* Runs ruvllm-cli (path cli) like ruv_test_spawn_va; aborts unless it exits
 * with expect_status; returns stdout (valid UTF-8), and stderr in *err_out
 * unless NULL. */
char   *ruv_test_run_cli_va        (const char             *cli,
                                    int                     expect_status,
                                    const char *const      *envp,
                                    const char             *input,
                                    char                  **err_out,
                                    va_list                 ap);

G_END_DECLS
