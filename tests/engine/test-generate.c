/* test-generate.c — RuvCpuBackend: generation, streaming, stops, cancellation.
 * SPDX-License-Identifier: MIT
 *
 * Two models are built here with a 32-token byte-level vocabulary
 * (<|endoftext|> <|im_start|> <|im_end|> a..z Ġ Ċ !) and no merges, so text
 * tokenizes one character per token:
 *  - "chain": one layer whose attention and FFN matrices are zero, so the
 *    residual stream is the embedding and logits = output . norm (embedding).
 *    Embeddings are one-hot and output row next(i) has a 1 at column i, so
 *    the greedy successor of every token is fixed: a->b->...->z-><|im_end|>,
 *    Ċ (newline) -> h, everything else -> a. Logits: sqrt (32) for the
 *    successor, 0 elsewhere, so even with the repetition penalty and a
 *    temperature the successor is by far the most likely token.
 *  - "random": the same shapes with pseudo-random weights everywhere, so the
 *    output depends on the whole context (for the KV reuse and seed checks).
 */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "ruv-cpu-backend.h"
#include "ruv-error.h"
#include "ruv-gguf-writer.h"

#define N_EMBD  32
#define N_VOCAB 32
#define N_FF    32
#define HEAD_DIM 16

enum
{
  TOK_EOT = 0,
  TOK_IM_START = 1,
  TOK_IM_END = 2,
  TOK_A = 3,
  TOK_Z = 28,
  TOK_SPACE = 29,
  TOK_NL = 30,
  TOK_BANG = 31,
};

static char *tmp_dir;
static char *chain_path;
static char *random_path;
static char *long_path;          /* the random model with a 4,096-token context */
static guint32 model_n_ctx = 64; /* llama.context_length of the next write_model */

static gint32
successor (gint32 i)
{
  if (i >= TOK_A && i < TOK_Z)
    return i + 1;
  if (i == TOK_Z)
    return TOK_IM_END;
  if (i == TOK_NL)
    return TOK_A + ('h' - 'a');
  return TOK_A;
}

static float
pseudo (gint64 i,
        guint  salt)
{
  return (float) sin ((double) (i * 7919 + salt * 104729) * 0.001 + salt);
}

static void
add_tensor (RuvGgufWriter *w,
            const char    *name,
            gint64         ne0,
            gint64         ne1,
            gboolean       random,
            guint          salt)
{
  g_autoptr(GError) error = NULL;
  g_autofree float *v = g_new0 (float, ne0 * ne1);
  gint64 ne[2] = { ne0, ne1 };
  gint64 i, j;

  if (g_str_has_suffix (name, "norm.weight"))
    for (i = 0; i < ne0; i++)
      v[i] = 1.0f;
  else if (random)
    for (i = 0; i < ne0 * ne1; i++)
      v[i] = pseudo (i, salt) * 0.5f;
  else if (g_str_equal (name, "token_embd.weight"))
    for (i = 0; i < ne1; i++)
      v[i * ne0 + i] = 1.0f;
  else if (g_str_equal (name, "output.weight"))
    for (j = 0; j < ne1; j++)
      for (i = 0; i < ne0; i++)
        v[j * ne0 + i] = successor ((gint32) i) == j ? 1.0f : 0.0f;

  if (!ruv_gguf_writer_add_tensor (w, name, RK_TYPE_F32, ne1 > 1 ? 2 : 1, ne, v,
                                   (gsize) (ne0 * ne1) * sizeof (float), &error))
    g_error ("%s", error->message);
}

static char *
write_model (const char *file,
             gboolean    random,
             const char *chat_template)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  const char *tokens[N_VOCAB];
  gint32 types[N_VOCAB];
  char letters[26][2];
  char *path = g_build_filename (tmp_dir, file, NULL);
  int i;

  tokens[TOK_EOT] = "<|endoftext|>";
  tokens[TOK_IM_START] = "<|im_start|>";
  tokens[TOK_IM_END] = "<|im_end|>";
  for (i = 0; i < 26; i++)
    {
      letters[i][0] = (char) ('a' + i);
      letters[i][1] = '\0';
      tokens[TOK_A + i] = letters[i];
    }
  tokens[TOK_SPACE] = "\xc4\xa0";   /* Ġ: GPT-2's byte for ' ' */
  tokens[TOK_NL] = "\xc4\x8a";      /* Ċ: '\n' */
  tokens[TOK_BANG] = "!";
  for (i = 0; i < N_VOCAB; i++)
    types[i] = i <= TOK_IM_END ? 3 : 1;

  ruv_gguf_writer_set_string (w, "general.architecture", "llama");
  ruv_gguf_writer_set_string (w, "general.name", random ? "random" : "chain");
  ruv_gguf_writer_set_uint32 (w, "llama.context_length", model_n_ctx);
  ruv_gguf_writer_set_uint32 (w, "llama.embedding_length", N_EMBD);
  ruv_gguf_writer_set_uint32 (w, "llama.block_count", 1);
  ruv_gguf_writer_set_uint32 (w, "llama.feed_forward_length", N_FF);
  ruv_gguf_writer_set_uint32 (w, "llama.attention.head_count", 2);
  ruv_gguf_writer_set_uint32 (w, "llama.attention.head_count_kv", 1);
  ruv_gguf_writer_set_float32 (w, "llama.attention.layer_norm_rms_epsilon", 1e-6f);
  ruv_gguf_writer_set_float32 (w, "llama.rope.freq_base", 10000.0f);
  ruv_gguf_writer_set_string (w, "tokenizer.ggml.model", "gpt2");
  ruv_gguf_writer_set_string (w, "tokenizer.ggml.pre", "default");
  ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.tokens", tokens, N_VOCAB);
  ruv_gguf_writer_set_array_int32 (w, "tokenizer.ggml.token_type", types, N_VOCAB);
  ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.merges", NULL, 0);
  ruv_gguf_writer_set_uint32 (w, "tokenizer.ggml.bos_token_id", TOK_EOT);
  ruv_gguf_writer_set_uint32 (w, "tokenizer.ggml.eos_token_id", TOK_EOT);
  ruv_gguf_writer_set_bool (w, "tokenizer.ggml.add_bos_token", FALSE);
  if (chat_template != NULL)
    ruv_gguf_writer_set_string (w, "tokenizer.chat_template", chat_template);

  add_tensor (w, "token_embd.weight", N_EMBD, N_VOCAB, random, 1);
  add_tensor (w, "output_norm.weight", N_EMBD, 1, random, 2);
  add_tensor (w, "output.weight", N_EMBD, N_VOCAB, random, 3);
  add_tensor (w, "blk.0.attn_norm.weight", N_EMBD, 1, random, 4);
  add_tensor (w, "blk.0.attn_q.weight", N_EMBD, 2 * HEAD_DIM, random, 5);
  add_tensor (w, "blk.0.attn_k.weight", N_EMBD, HEAD_DIM, random, 6);
  add_tensor (w, "blk.0.attn_v.weight", N_EMBD, HEAD_DIM, random, 7);
  add_tensor (w, "blk.0.attn_output.weight", 2 * HEAD_DIM, N_EMBD, random, 8);
  add_tensor (w, "blk.0.ffn_norm.weight", N_EMBD, 1, random, 9);
  add_tensor (w, "blk.0.ffn_gate.weight", N_EMBD, N_FF, random, 10);
  add_tensor (w, "blk.0.ffn_up.weight", N_EMBD, N_FF, random, 11);
  add_tensor (w, "blk.0.ffn_down.weight", N_FF, N_EMBD, random, 12);
  if (!ruv_gguf_writer_write_file (w, path, &error))
    g_error ("%s", error->message);
  return path;
}

static RuvCpuBackend *
load (const char *path,
      guint       max_context)
{
  g_autoptr(RuvModelConfig) config = ruv_model_config_new ();
  g_autoptr(GError) error = NULL;
  RuvCpuBackend *b = ruv_cpu_backend_new ();

  config->max_context = max_context;
  config->n_threads = 1;
  g_assert_true (ruv_cpu_backend_load_model (b, path, config, NULL, &error));
  g_assert_no_error (error);
  return b;
}

static RuvGenerateParams *
greedy (guint max_tokens)
{
  RuvGenerateParams *p = ruv_generate_params_new ();

  p->temperature = 0.0f;
  p->max_tokens = max_tokens;
  return p;
}

typedef struct
{
  GString      *text;
  guint         calls;
  guint         stop_after;     /* return FALSE at this call (0: never) */
  GCancellable *cancel_at_first;
  gboolean      completed;      /* async: set by the GAsyncReadyCallback */
  gboolean      destroyed;
  gboolean      late;           /* text arrived after completion */
} Collect;

static gboolean
collect (const char *text,
         gpointer    user_data)
{
  Collect *c = user_data;

  g_assert_true (g_utf8_validate (text, -1, NULL));
  g_assert_cmpuint (strlen (text), >, 0);
  if (c->completed)
    c->late = TRUE;
  g_string_append (c->text, text);
  c->calls++;
  if (c->cancel_at_first != NULL)
    g_cancellable_cancel (c->cancel_at_first);
  return c->stop_after == 0 || c->calls < c->stop_after;
}

static RuvGenerateResult *
run (RuvCpuBackend     *b,
     const char        *prompt,
     RuvGenerateParams *p,
     Collect           *c)
{
  g_autoptr(GError) error = NULL;
  RuvGenerateResult *res;

  res = ruv_cpu_backend_generate (b, prompt, p, collect, c, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (res);
  g_assert_cmpstr (c->text->str, ==, res->text);
  return res;
}

static void
test_length (void)
{
  g_autoptr(RuvCpuBackend) b = load (chain_path, 64);
  g_autoptr(RuvGenerateParams) p = greedy (5);
  g_autoptr(RuvGenerateResult) res = NULL;
  Collect c = { g_string_new (NULL) };

  res = run (b, "a", p, &c);
  g_assert_cmpstr (res->text, ==, "bcdef");
  g_assert_cmpint (res->finish_reason, ==, RUV_FINISH_REASON_LENGTH);
  g_assert_cmpint (res->n_prompt, ==, 1);
  g_assert_cmpint (res->n_gen, ==, 5);
  g_assert_cmpuint (c.calls, ==, 5);
  /* The prompt and four generated tokens were evaluated. */
  g_assert_cmpint (ruv_cpu_backend_get_n_past (b), ==, 5);
  g_assert_false (ruv_cpu_backend_get_busy (b));
  g_string_free (c.text, TRUE);
}

static void
test_end_of_turn (void)
{
  g_autoptr(RuvCpuBackend) b = load (chain_path, 64);
  g_autoptr(RuvGenerateParams) p = greedy (10);
  g_autoptr(RuvGenerateResult) res = NULL;
  g_autoptr(RuvGenerateResult) res2 = NULL;
  Collect c = { g_string_new (NULL) };

  res = run (b, "z", p, &c);
  g_assert_cmpstr (res->text, ==, "");
  g_assert_cmpint (res->finish_reason, ==, RUV_FINISH_REASON_END_OF_TURN);
  g_assert_cmpint (res->n_gen, ==, 0);
  g_assert_cmpuint (c.calls, ==, 0);

  g_string_truncate (c.text, 0);
  res2 = run (b, "w", p, &c);
  g_assert_cmpstr (res2->text, ==, "xyz");
  g_assert_cmpint (res2->finish_reason, ==, RUV_FINISH_REASON_END_OF_TURN);
  g_assert_cmpint (res2->n_gen, ==, 3);
  g_string_free (c.text, TRUE);
}

static void
test_stop (void)
{
  g_autoptr(RuvCpuBackend) b = load (chain_path, 64);
  g_autoptr(RuvGenerateParams) p = greedy (20);
  const char *stops[] = { "xyz", "de", NULL };
  const char *never[] = { "dq", NULL };
  g_autoptr(RuvGenerateResult) res = NULL;
  g_autoptr(RuvGenerateResult) res2 = NULL;
  Collect c = { g_string_new (NULL) };

  /* "de" spans two tokens; "d" is held back and never streamed. */
  ruv_generate_params_set_stop_sequences (p, stops);
  res = run (b, "a", p, &c);
  g_assert_cmpstr (res->text, ==, "bc");
  g_assert_cmpstr (c.text->str, ==, "bc");
  g_assert_cmpint (res->finish_reason, ==, RUV_FINISH_REASON_STOP);
  g_assert_cmpint (res->n_gen, ==, 4);

  /* A held-back prefix that never completes is flushed at the end. */
  g_string_truncate (c.text, 0);
  c.calls = 0;
  ruv_generate_params_set_stop_sequences (p, never);
  p->max_tokens = 3;
  res2 = run (b, "a", p, &c);
  g_assert_cmpstr (res2->text, ==, "bcd");
  g_assert_cmpstr (c.text->str, ==, "bcd");
  g_assert_cmpint (res2->finish_reason, ==, RUV_FINISH_REASON_LENGTH);
  /* "b", "c", then "d" only at the flush. */
  g_assert_cmpuint (c.calls, ==, 3);
  g_string_free (c.text, TRUE);
}

static void
test_cancel (void)
{
  g_autoptr(RuvCpuBackend) b = load (chain_path, 64);
  g_autoptr(RuvGenerateParams) p = greedy (10);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGenerateResult) res = NULL;
  g_autoptr(RuvGenerateResult) res2 = NULL;
  g_autoptr(RuvGenerateResult) res3 = NULL;
  g_autoptr(RuvGenerateResult) res4 = NULL;
  Collect c = { g_string_new (NULL), 0, 1 };
  Collect c2 = { g_string_new (NULL), 0, 0, cancellable };

  /* The callback says stop after the first token. */
  res = run (b, "a", p, &c);
  g_assert_cmpstr (res->text, ==, "b");
  g_assert_cmpint (res->finish_reason, ==, RUV_FINISH_REASON_CANCELLED);
  g_assert_cmpint (res->n_gen, ==, 1);

  /* The cancellable fires during the first token. */
  res2 = ruv_cpu_backend_generate (b, "a", p, collect, &c2, cancellable, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res2->text, ==, "b");
  g_assert_cmpint (res2->finish_reason, ==, RUV_FINISH_REASON_CANCELLED);
  g_assert_cmpint (res2->n_gen, ==, 1);

  /* Already cancelled: nothing is generated, and that is not an error. */
  res3 = ruv_cpu_backend_generate (b, "abc", p, NULL, NULL, cancellable, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res3->text, ==, "");
  g_assert_cmpint (res3->finish_reason, ==, RUV_FINISH_REASON_CANCELLED);
  g_assert_cmpint (res3->n_gen, ==, 0);

  /* The backend is usable afterwards. */
  res4 = ruv_cpu_backend_generate (b, "a", p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res4->text, ==, "bcdefghijk");
  g_string_free (c.text, TRUE);
  g_string_free (c2.text, TRUE);
}

static void
test_errors (void)
{
  g_autoptr(RuvCpuBackend) empty = ruv_cpu_backend_new ();
  g_autoptr(RuvCpuBackend) b = load (chain_path, 8);
  g_autoptr(RuvGenerateParams) p = greedy (4);
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename (tmp_dir, "missing.gguf", NULL);
  RuvGenerateResult *res;
  RuvCpuBackend *metal;
  char *text;

  /* No model: an error, never made-up text. */
  g_assert_false (ruv_cpu_backend_is_loaded (empty));
  g_assert_null (ruv_cpu_backend_get_model_info (empty));
  res = ruv_cpu_backend_generate (empty, "a", p, NULL, NULL, NULL, &error);
  g_assert_null (res);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  text = ruv_backend_generate (RUV_BACKEND (empty), "a", NULL, NULL, &error);
  g_assert_null (text);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);

  g_assert_false (ruv_cpu_backend_load_model (empty, missing, NULL, NULL, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_clear_error (&error);

  metal = ruv_cpu_backend_new_with_device (RUV_DEVICE_TYPE_METAL, &error);
  g_assert_null (metal);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_BACKEND);
  g_clear_error (&error);

  /* Invalid parameters. */
  p->temperature = -1.0f;
  res = ruv_cpu_backend_generate (b, "a", p, NULL, NULL, NULL, &error);
  g_assert_null (res);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  p->temperature = 0.0f;
  p->max_tokens = 0;
  res = ruv_cpu_backend_generate (b, "a", p, NULL, NULL, NULL, &error);
  g_assert_null (res);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  p->max_tokens = 4;

  /* Prompt longer than the context (8), with the numbers in the message. */
  res = ruv_cpu_backend_generate (b, "abcdefghi", p, NULL, NULL, NULL, &error);
  g_assert_null (res);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "9 tokens"));
  g_assert_nonnull (strstr (error->message, "8"));
  g_clear_error (&error);

  /* Empty prompt (no BOS in this vocabulary), invalid UTF-8. */
  res = ruv_cpu_backend_generate (b, "", p, NULL, NULL, NULL, &error);
  g_assert_null (res);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  res = ruv_cpu_backend_generate (b, "a\xff", p, NULL, NULL, NULL, &error);
  g_assert_null (res);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  {
    /* Every chat message is checked too, and the message is named. */
    const RuvChatMessage bad[] = { { "user", "ok" }, { "user", "b\xc3" } };

    res = ruv_cpu_backend_chat (b, bad, G_N_ELEMENTS (bad), p, NULL, NULL, NULL, &error);
    g_assert_null (res);
    g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
    g_assert_nonnull (strstr (error->message, "message 2"));
    g_clear_error (&error);
  }
  res = ruv_cpu_backend_generate_tokens (b, (gint32[]) { 3, 99 }, 2, p, NULL, NULL, NULL,
                                         NULL, NULL, &error);
  g_assert_null (res);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
}

static void
test_context_shift (void)
{
  g_autoptr(RuvCpuBackend) b = load (chain_path, 8);
  g_autoptr(RuvGenerateParams) p = greedy (20);
  g_autoptr(RuvGenerateResult) res = NULL;
  Collect c = { g_string_new (NULL) };

  /* 1 + 20 tokens through a context of 8: shifted, not failed. */
  g_assert_cmpint (ruv_cpu_backend_get_n_ctx (b), ==, 8);
  res = run (b, "a", p, &c);
  g_assert_cmpstr (res->text, ==, "bcdefghijklmnopqrstu");
  g_assert_cmpint (res->finish_reason, ==, RUV_FINISH_REASON_LENGTH);
  g_assert_cmpint (ruv_cpu_backend_get_n_past (b), <=, 8);
  g_string_free (c.text, TRUE);
}

static void
test_kv_reuse (void)
{
  g_autoptr(RuvCpuBackend) b = load (random_path, 64);
  g_autoptr(RuvGenerateParams) p = greedy (12);
  g_autoptr(GError) error = NULL;
  const char *prompts[] = { "hello world", "hello world and more", "hello there", "hello" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (prompts); i++)
    {
      g_autoptr(RuvCpuBackend) fresh = load (random_path, 64);
      g_autoptr(RuvGenerateResult) a = NULL;
      g_autoptr(RuvGenerateResult) f = NULL;

      a = ruv_cpu_backend_generate (b, prompts[i], p, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      f = ruv_cpu_backend_generate (fresh, prompts[i], p, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (a->text, ==, f->text);
      g_assert_cmpint (a->n_gen, ==, f->n_gen);
      g_assert_cmpint (a->finish_reason, ==, f->finish_reason);
      g_assert_cmpint (f->n_cached, ==, 0);
      if (i > 0)
        g_assert_cmpint (a->n_cached, >=, 4);   /* "hello" at least, less the last token */
      g_test_message ("%s -> \"%s\" (%" G_GINT64_FORMAT " cached)", prompts[i], a->text,
                      a->n_cached);
    }
}

static void
test_seed (void)
{
  g_autoptr(RuvCpuBackend) b = load (random_path, 64);
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGenerateResult) r1 = NULL;
  g_autoptr(RuvGenerateResult) r2 = NULL;
  g_autoptr(RuvGenerateResult) r3 = NULL;

  p->temperature = 1.5f;
  p->top_p = 1.0f;
  p->max_tokens = 24;
  p->has_seed = TRUE;
  p->seed = 1234;
  r1 = ruv_cpu_backend_generate (b, "abc", p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  r2 = ruv_cpu_backend_generate (b, "abc", p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (r1->text, ==, r2->text);
  g_assert_cmpint (r1->n_gen, ==, r2->n_gen);
  g_assert_cmpuint (r1->seed, ==, 1234);
  /* Another seed is allowed to give the same text, but with 24 tokens at
   * temperature 1.5 over 32 tokens it practically never does. */
  p->seed = 99;
  r3 = ruv_cpu_backend_generate (b, "abc", p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("seed 1234: \"%s\"  seed 99: \"%s\"", r1->text, r3->text);
}

static void
test_chat (void)
{
  g_autoptr(RuvCpuBackend) b = load (chain_path, 64);
  g_autoptr(RuvGenerateParams) p = greedy (3);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGenerateResult) res = NULL;
  g_autoptr(RuvGenerateResult) res2 = NULL;
  g_autofree char *prompt = NULL;
  RuvChatMessage msgs[] = {
    { "system", "x" },
    { "user", "hi" },
    { "assistant", "hij" },
    { "user", "y" },
  };

  /* No template in the file: ChatML. The prompt ends with "\n", whose
   * successor is h. */
  prompt = ruv_cpu_backend_format_chat (b, msgs, 2);
  g_assert_cmpstr (prompt, ==, "<|im_start|>system\nx<|im_end|>\n"
                   "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  res = ruv_cpu_backend_chat (b, msgs, 2, p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->text, ==, "hij");
  /* The next turn re-uses the history's KV entries. */
  res2 = ruv_cpu_backend_chat (b, msgs, 4, p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res2->text, ==, "hij");
  g_assert_cmpint (res2->n_cached, >=, res->n_prompt);

  res = (ruv_generate_result_free (res), NULL);
  res = ruv_cpu_backend_chat (b, msgs, 0, p, NULL, NULL, NULL, &error);
  g_assert_null (res);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
}

static void
test_interface (void)
{
  g_autoptr(RuvCpuBackend) b = ruv_cpu_backend_new ();
  RuvBackend *iface = RUV_BACKEND (b);
  g_autoptr(RuvGenerateParams) p = greedy (4);
  g_autoptr(RuvModelInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  RuvMemoryStats stats;
  Collect c = { g_string_new (NULL) };

  g_assert_true (ruv_backend_load_model (iface, chain_path, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (ruv_backend_is_loaded (iface));
  g_assert_nonnull (ruv_backend_get_tokenizer (iface));
  info = ruv_backend_get_model_info (iface);
  g_assert_cmpstr (info->architecture, ==, "llama");
  g_assert_cmpstr (info->name, ==, "chain");
  g_assert_cmpint (info->vocab_size, ==, N_VOCAB);
  g_assert_cmpint (info->context_length, ==, 64);
  g_assert_cmpint (info->n_ctx, ==, 64);
  g_assert_cmpint (info->size_class, ==, RUV_MODEL_SIZE_TINY);
  g_assert_cmpuint (info->file_size, >, 0);
  g_assert_null (info->chat_template);

  text = ruv_backend_generate (iface, "k", p, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "lmno");
  g_assert_true (ruv_backend_generate_stream (iface, "p", p, collect, &c, NULL, &error));
  g_assert_cmpstr (c.text->str, ==, "qrst");

  ruv_cpu_backend_get_memory_stats (b, &stats);
  g_assert_cmpuint (stats.mapped_bytes, >, 0);
  g_assert_cmpuint (stats.kv_bytes, >, 0);
  g_assert_cmpint (ruv_cpu_backend_get_device (b), ==, RUV_DEVICE_TYPE_CPU);
  g_string_free (c.text, TRUE);
}

/* ---- async ---- */

typedef struct
{
  GMainLoop         *loop;
  Collect           *collect;
  RuvGenerateResult *result;
  GError            *error;
  guint              busy_notifies;
} AsyncRun;

static void
collect_destroy (gpointer data)
{
  Collect *c = data;

  g_assert_false (c->completed);
  c->destroyed = TRUE;
}

static void
async_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  AsyncRun *r = user_data;

  /* Everything was delivered, and token_data released, before this. */
  g_assert_true (r->collect->destroyed);
  r->collect->completed = TRUE;
  g_assert_false (ruv_cpu_backend_get_busy (RUV_CPU_BACKEND (source)));
  r->result = ruv_cpu_backend_generate_finish (RUV_CPU_BACKEND (source), result, &r->error);
  g_main_loop_quit (r->loop);
}

static void
on_busy (GObject    *object,
         GParamSpec *pspec,
         gpointer    user_data)
{
  AsyncRun *r = user_data;

  r->busy_notifies++;
}

static void
test_async (void)
{
  g_autoptr(RuvCpuBackend) b = load (chain_path, 64);
  g_autoptr(RuvGenerateParams) p = greedy (8);
  g_autoptr(GMainContext) context = g_main_context_new ();
  const char *stops[] = { "gh", NULL };
  Collect c = { g_string_new (NULL) };
  AsyncRun r = { 0 };
  RuvChatMessage msgs[] = { { "user", "x" } };

  g_main_context_push_thread_default (context);
  r.loop = g_main_loop_new (context, FALSE);
  r.collect = &c;
  g_signal_connect (b, "notify::busy", G_CALLBACK (on_busy), &r);

  ruv_cpu_backend_generate_async (b, "a", p, collect, &c, collect_destroy, NULL,
                                  async_done, &r);
  g_assert_true (ruv_cpu_backend_get_busy (b));
  g_main_loop_run (r.loop);
  g_assert_no_error (r.error);
  g_assert_cmpstr (r.result->text, ==, "bcdefghi");
  g_assert_cmpstr (c.text->str, ==, "bcdefghi");
  g_assert_false (c.late);
  g_assert_cmpuint (r.busy_notifies, ==, 2);
  g_assert_cmpint (ruv_cpu_backend_get_n_past (b), ==, 8);
  g_assert_cmpfloat (ruv_cpu_backend_get_tokens_per_second (b), >, 0.0);
  g_clear_pointer (&r.result, ruv_generate_result_free);

  /* A stop sequence: nothing of it reaches the main context. */
  g_string_truncate (c.text, 0);
  c.completed = c.destroyed = FALSE;
  ruv_generate_params_set_stop_sequences (p, stops);
  ruv_cpu_backend_generate_async (b, "a", p, collect, &c, collect_destroy, NULL,
                                  async_done, &r);
  g_main_loop_run (r.loop);
  g_assert_no_error (r.error);
  g_assert_cmpstr (r.result->text, ==, "bcdef");
  g_assert_cmpstr (c.text->str, ==, "bcdef");
  g_assert_cmpint (r.result->finish_reason, ==, RUV_FINISH_REASON_STOP);
  g_clear_pointer (&r.result, ruv_generate_result_free);

  /* Chat, and token_func returning FALSE. */
  g_string_truncate (c.text, 0);
  c.completed = c.destroyed = FALSE;
  c.calls = 0;
  c.stop_after = 1;
  p->max_tokens = 100;
  ruv_generate_params_set_stop_sequences (p, NULL);
  ruv_cpu_backend_chat_async (b, msgs, 1, p, collect, &c, collect_destroy, NULL,
                              async_done, &r);
  g_main_loop_run (r.loop);
  g_assert_no_error (r.error);
  /* The worker may reach the end of the turn before the main context runs
   * the first flush; either way nothing is delivered after FALSE. */
  g_assert_true (r.result->finish_reason == RUV_FINISH_REASON_CANCELLED ||
                 r.result->finish_reason == RUV_FINISH_REASON_END_OF_TURN);
  g_assert_true (g_str_has_prefix (r.result->text, "h"));
  g_assert_true (g_str_has_prefix (r.result->text, c.text->str));
  g_assert_cmpuint (c.calls, ==, 1);
  g_clear_pointer (&r.result, ruv_generate_result_free);

  /* Errors arrive through _finish. */
  c.completed = c.destroyed = FALSE;
  p->top_p = 2.0f;
  ruv_cpu_backend_generate_async (b, "a", p, collect, &c, collect_destroy, NULL,
                                  async_done, &r);
  g_main_loop_run (r.loop);
  g_assert_null (r.result);
  g_assert_error (r.error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&r.error);

  g_signal_handlers_disconnect_by_data (b, &r);
  g_main_loop_unref (r.loop);
  g_main_context_pop_thread_default (context);
  g_string_free (c.text, TRUE);
}

static void
load_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  AsyncRun *r = user_data;

  g_assert_true (ruv_cpu_backend_load_model_finish (RUV_CPU_BACKEND (source), result,
                                                    &r->error));
  g_main_loop_quit (r->loop);
}

static void
test_load_async (void)
{
  g_autoptr(RuvCpuBackend) b = ruv_cpu_backend_new ();
  g_autoptr(GMainContext) context = g_main_context_new ();
  AsyncRun r = { 0 };

  g_main_context_push_thread_default (context);
  r.loop = g_main_loop_new (context, FALSE);
  ruv_cpu_backend_load_model_async (b, chain_path, NULL, NULL, load_done, &r);
  g_assert_true (ruv_cpu_backend_get_busy (b));
  g_main_loop_run (r.loop);
  g_assert_no_error (r.error);
  g_assert_true (ruv_cpu_backend_is_loaded (b));
  g_assert_false (ruv_cpu_backend_get_busy (b));
  g_main_loop_unref (r.loop);
  g_main_context_pop_thread_default (context);
}

/* ---- endless conversations and saved KV states --------------------------- */

static gboolean
note_token (const RuvTokenInfo *info,
            gpointer            user_data)
{
  g_array_append_val ((GArray *) user_data, info->id);
  return TRUE;
}

/* The next user turn of the long conversation: n letters and spaces. */
static void
add_user_turn (GArray *conv,
               guint   turn,
               guint   n)
{
  gint32 t = TOK_IM_START;
  guint i;

  g_array_append_val (conv, t);
  for (i = 0; i < n; i++)
    {
      t = (i * 7 + turn * 13) % 5 == 0 ? TOK_SPACE : TOK_A + (gint32) ((i * 11 + turn) % 26);
      g_array_append_val (conv, t);
    }
  t = TOK_IM_END;
  g_array_append_val (conv, t);
}

/* A 20,000-token conversation through a 4,096-token context: every turn is
 * the whole conversation so far; it runs to the end without an error, the
 * oldest tokens leave the window (n_discarded) while the window's cache is
 * reused (n_cached), and the KV memory stays flat once the window is full. */
static void
test_long_conversation (void)
{
  g_autoptr(RuvCpuBackend) b = NULL;
  g_autoptr(RuvGenerateParams) p = greedy (120);
  g_autoptr(GArray) conv = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GError) error = NULL;
  RuvKvCacheStats st;
  guint64 full_bytes = 0, max_after = 0;
  gint64 last_discarded = 0;
  guint turn = 0;

  b = load (long_path, 4096);
  g_assert_cmpint (ruv_cpu_backend_get_n_ctx (b), ==, 4096);
  while (conv->len < 20000)
    {
      g_autoptr(RuvGenerateResult) res = NULL;
      g_autoptr(GArray) gen = g_array_new (FALSE, FALSE, sizeof (gint32));
      gint64 before = conv->len;

      add_user_turn (conv, turn, 300);
      res = ruv_cpu_backend_generate_tokens (b, (const gint32 *) conv->data, conv->len, p,
                                             NULL, NULL, note_token, gen, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (res);
      g_assert_cmpint (res->n_prompt, ==, conv->len);
      g_assert_cmpint (res->n_discarded, >=, last_discarded);
      /* every token is either in the window or counted as discarded */
      g_assert_cmpint (ruv_cpu_backend_get_n_past (b) + res->n_discarded, >=,
                       before + (res->n_gen > 0 ? res->n_gen - 1 : 0));
      g_assert_cmpint (ruv_cpu_backend_get_n_discarded (b), ==, res->n_discarded);
      /* the window's cache is reused, not evaluated again (after a shift
       * the window holds at least half of the context) */
      if (turn > 0)
        g_assert_cmpint (res->n_cached, >=, MIN (before - 1, 2000));
      g_array_append_vals (conv, gen->data, gen->len);
      if (res->finish_reason == RUV_FINISH_REASON_END_OF_TURN)
        {
          gint32 end = TOK_IM_END;

          g_array_append_val (conv, end);
        }

      g_assert_true (ruv_cpu_backend_get_kv_stats (b, &st));
      g_test_message ("turn %u: prompt %" G_GINT64_FORMAT " cached %" G_GINT64_FORMAT
                      " gen %" G_GINT64_FORMAT " discarded %" G_GINT64_FORMAT " tokens %"
                      G_GINT64_FORMAT " blocks %" G_GUINT64_FORMAT, turn, res->n_prompt,
                      res->n_cached, res->n_gen, res->n_discarded, st.total_tokens,
                      st.block_bytes);
      g_assert_cmpint (st.total_tokens, <=, 4096);
      if (res->n_discarded > 0 && conv->len < 10000)
        full_bytes = MAX (full_bytes, st.block_bytes);
      else if (res->n_discarded > 0)
        max_after = MAX (max_after, st.block_bytes);
      last_discarded = res->n_discarded;
      turn++;
    }
  g_test_message ("%u turns, %u tokens, %" G_GINT64_FORMAT " discarded; KV blocks at most %"
                  G_GUINT64_FORMAT " bytes up to 10,000 tokens, at most %" G_GUINT64_FORMAT
                  " after", turn, conv->len, last_discarded, full_bytes, max_after);
  g_assert_cmpint (last_discarded, >=, 20000 - 4096);
  /* memory is flat once the window is full: the second half of the
   * conversation takes no more than the first */
  g_assert_cmpuint (full_bytes, >, 0);
  g_assert_cmpuint (max_after, >, 0);
  g_assert_cmpuint (max_after, <=, full_bytes);
}

/* A chat's KV state saved and restored into a fresh backend: the restored
 * tokens count as cached and generation equals a fresh one. */
static void
test_kv_state_round_trip (void)
{
  g_autoptr(RuvCpuBackend) a = load (random_path, 64);
  g_autoptr(RuvCpuBackend) b = load (random_path, 64);
  g_autoptr(RuvCpuBackend) fresh = load (random_path, 64);
  g_autoptr(RuvGenerateParams) p = greedy (8);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGenerateResult) r1 = NULL, r2 = NULL, r3 = NULL;
  g_autofree char *dir = g_build_filename (tmp_dir, "kv", NULL);
  g_autofree char *path = g_build_filename (dir, "1.kv", NULL);
  gint64 n_a, n_b;

  r1 = ruv_cpu_backend_generate (a, "hello world", p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (ruv_cpu_backend_save_kv_state (a, path, &error));
  g_assert_no_error (error);
  g_assert_true (ruv_cpu_backend_restore_kv_state (b, path, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ruv_cpu_backend_get_n_past (b), ==, ruv_cpu_backend_get_n_past (a));

  r2 = ruv_cpu_backend_generate (b, "hello world and more", p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  r3 = ruv_cpu_backend_generate (fresh, "hello world and more", p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (r2->text, ==, r3->text);
  g_assert_cmpint (r3->n_cached, ==, 0);
  g_assert_cmpint (r2->n_cached, >=, 10);   /* "hello world" was not evaluated again */

  /* switching: the chat's state is restored when switching to it, saved on
   * the way out, and restored back */
  n_a = ruv_cpu_backend_get_n_past (a);
  g_assert_cmpint (ruv_cpu_backend_switch_kv (b, path), ==, n_a);
  g_clear_pointer (&r2, ruv_generate_result_free);
  r2 = ruv_cpu_backend_generate (b, "hello world and more", p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (r2->text, ==, r3->text);
  g_assert_cmpint (r2->n_cached, >=, 10);
  n_b = ruv_cpu_backend_get_n_past (b);
  g_assert_cmpint (n_b, >, n_a);
  g_assert_cmpint (ruv_cpu_backend_switch_kv (b, NULL), ==, 0);
  g_assert_cmpint (ruv_cpu_backend_switch_kv (b, path), ==, n_b);
  g_assert_cmpint (ruv_cpu_backend_get_n_past (b), ==, n_b);
  g_unlink (path);
  g_rmdir (dir);
}

/* Corrupt, other model, other context size: refused with a reason, the
 * cache left as it was, and generation is still right (re-prefill). */
static void
test_kv_state_refused (void)
{
  g_autoptr(RuvCpuBackend) a = load (random_path, 64);
  g_autoptr(RuvCpuBackend) other_model = load (chain_path, 64);
  g_autoptr(RuvCpuBackend) other_ctx = load (random_path, 32);
  g_autoptr(RuvCpuBackend) b = load (random_path, 64);
  g_autoptr(RuvGenerateParams) p = greedy (8);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGenerateResult) r1 = NULL, r2 = NULL;
  g_autofree char *path = g_build_filename (tmp_dir, "2.kv", NULL);
  g_autofree char *bad = g_build_filename (tmp_dir, "bad.kv", NULL);
  g_autofree char *bytes = NULL;
  gsize len;

  r1 = ruv_cpu_backend_generate (a, "hello world", p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (ruv_cpu_backend_save_kv_state (a, path, &error));
  g_assert_no_error (error);

  g_assert_false (ruv_cpu_backend_restore_kv_state (other_model, path, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE);
  g_assert_nonnull (strstr (error->message, "another model or context"));
  g_clear_error (&error);
  g_assert_false (ruv_cpu_backend_restore_kv_state (other_ctx, path, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE);
  g_clear_error (&error);
  g_assert_cmpint (ruv_cpu_backend_get_n_past (other_ctx), ==, 0);

  g_assert_true (g_file_get_contents (path, &bytes, &len, NULL));
  bytes[len - 40] ^= 0x01;   /* one bit of the cache data */
  g_assert_true (g_file_set_contents (bad, bytes, len, NULL));
  g_assert_false (ruv_cpu_backend_restore_kv_state (b, bad, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE);
  g_assert_nonnull (strstr (error->message, "checksum"));
  g_clear_error (&error);
  g_assert_cmpint (ruv_cpu_backend_get_n_past (b), ==, 0);
  /* switching to it: ignored, logged, and the prompt is evaluated */
  g_assert_cmpint (ruv_cpu_backend_switch_kv (b, bad), ==, 0);
  r2 = ruv_cpu_backend_generate (b, "hello world", p, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r2->n_cached, ==, 0);
  g_assert_cmpstr (r2->text, ==, r1->text);
  g_unlink (path);
  g_unlink (bad);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("ruv-test-generate-XXXXXX", &error);
  g_assert_no_error (error);
  chain_path = write_model ("chain.gguf", FALSE, NULL);
  random_path = write_model ("random.gguf", TRUE, NULL);
  model_n_ctx = 4096;
  long_path = write_model ("long.gguf", TRUE, NULL);
  model_n_ctx = 64;

  g_test_add_func ("/engine/generate/length", test_length);
  g_test_add_func ("/engine/generate/end-of-turn", test_end_of_turn);
  g_test_add_func ("/engine/generate/stop", test_stop);
  g_test_add_func ("/engine/generate/cancel", test_cancel);
  g_test_add_func ("/engine/generate/errors", test_errors);
  g_test_add_func ("/engine/generate/context-shift", test_context_shift);
  g_test_add_func ("/engine/generate/kv-reuse", test_kv_reuse);
  g_test_add_func ("/engine/generate/seed", test_seed);
  g_test_add_func ("/engine/generate/chat", test_chat);
  g_test_add_func ("/engine/generate/interface", test_interface);
  g_test_add_func ("/engine/generate/async", test_async);
  g_test_add_func ("/engine/generate/load-async", test_load_async);
  g_test_add_func ("/engine/generate/long-conversation", test_long_conversation);
  g_test_add_func ("/engine/generate/kv-state/round-trip", test_kv_state_round_trip);
  g_test_add_func ("/engine/generate/kv-state/refused", test_kv_state_refused);
  ret = g_test_run ();

  g_unlink (chain_path);
  g_unlink (random_path);
  g_unlink (long_path);
  g_free (long_path);
  g_rmdir (tmp_dir);
  g_free (chain_path);
  g_free (random_path);
  g_free (tmp_dir);
  return ret;
}
