/* ruv-test-util.c — small GGUF models built in memory for the engine tests,
 * and running the built ruvllm-cli.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "ruv-test-util.h"

void
ruv_test_model_spec_init (RuvTestModelSpec *spec)
{
  memset (spec, 0, sizeof *spec);
  spec->arch = "llama";
  spec->n_embd = 32;
  spec->n_layer = 1;
  spec->n_head = 2;
  spec->n_head_kv = 1;
  spec->head_dim = 16;
  spec->n_ff = 32;
  spec->n_vocab = 8;
  spec->n_ctx = 64;
  spec->vocab = TRUE;
  spec->matrix_type = RK_TYPE_F32;
}

static void
add_tensor (RuvGgufWriter          *w,
            const RuvTestModelSpec *spec,
            const char             *name,
            gint64                  ne0,
            gint64                  ne1,
            RuvTestFillFunc         fill,
            gpointer                user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree float *values = NULL;
  g_autofree guint8 *data = NULL;
  gboolean matrix = ne1 > 1 || strcmp (name, "token_embd.weight") == 0;
  rk_type type = matrix ? spec->matrix_type : RK_TYPE_F32;
  gint64 ne[2], i;
  gsize row;

  if (spec->omit_tensor != NULL && strcmp (name, spec->omit_tensor) == 0)
    return;
  if (spec->grow_tensor != NULL && strcmp (name, spec->grow_tensor) == 0)
    ne1++;

  values = g_new (float, ne0 * ne1);
  if (fill != NULL)
    fill (name, values, ne0, ne1, user_data);
  else
    for (i = 0; i < ne0 * ne1; i++)
      values[i] = 0.5f;

  if (spec->retype_tensor != NULL && strcmp (name, spec->retype_tensor) == 0)
    {
      type = spec->retype;
      row = rk_row_size (type, ne0);
      data = g_malloc0 (row * ne1);
    }
  else
    {
      const rk_type_traits *tr = rk_get_traits (type);

      row = rk_row_size (type, ne0);
      data = g_malloc0 (row * ne1);
      for (i = 0; i < ne1; i++)
        tr->from_float_ref (values + i * ne0, data + i * row, ne0);
    }
  ne[0] = ne0;
  ne[1] = ne1;
  if (!ruv_gguf_writer_add_tensor (w, name, type, ne1 > 1 || matrix ? 2 : 1, ne, data,
                                   row * ne1, &error))
    g_error ("test model: %s", error->message);
}

GBytes *
ruv_test_model_build (const RuvTestModelSpec *spec,
                      RuvTestFillFunc         fill,
                      gpointer                user_data)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  const char *a = spec->arch;
  gint64 n_q = spec->n_head * spec->head_dim, n_kv = spec->n_head_kv * spec->head_dim;
  gint64 il;
  GBytes *bytes;

#define KEY(suffix) (g_snprintf (key, sizeof key, "%s." suffix, a), key)
  char key[128];

  ruv_gguf_writer_set_string (w, "general.architecture", a);
  ruv_gguf_writer_set_string (w, "general.name", "ruv-test-model");
  ruv_gguf_writer_set_uint32 (w, KEY ("context_length"), (guint32) spec->n_ctx);
  ruv_gguf_writer_set_uint32 (w, KEY ("embedding_length"), (guint32) spec->n_embd);
  ruv_gguf_writer_set_uint32 (w, KEY ("block_count"), (guint32) spec->n_layer);
  ruv_gguf_writer_set_uint32 (w, KEY ("feed_forward_length"), (guint32) spec->n_ff);
  ruv_gguf_writer_set_uint32 (w, KEY ("attention.head_count"), (guint32) spec->n_head);
  ruv_gguf_writer_set_uint32 (w, KEY ("attention.head_count_kv"), (guint32) spec->n_head_kv);
  ruv_gguf_writer_set_float32 (w, KEY ("attention.layer_norm_rms_epsilon"), 1e-6f);
  ruv_gguf_writer_set_float32 (w, KEY ("rope.freq_base"), 10000.0f);
  if (spec->head_dim * spec->n_head != spec->n_embd)
    {
      ruv_gguf_writer_set_uint32 (w, KEY ("attention.key_length"), (guint32) spec->head_dim);
      ruv_gguf_writer_set_uint32 (w, KEY ("attention.value_length"), (guint32) spec->head_dim);
    }
#undef KEY
  if (spec->vocab)
    {
      gint64 n = spec->n_vocab + spec->vocab_delta, i;
      g_autoptr(GPtrArray) toks = g_ptr_array_new_with_free_func (g_free);

      for (i = 0; i < n; i++)
        g_ptr_array_add (toks, g_strdup_printf ("t%" G_GINT64_FORMAT, i));
      ruv_gguf_writer_set_string (w, "tokenizer.ggml.model", "gpt2");
      ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.tokens",
                                        (const char *const *) toks->pdata, toks->len);
    }

  add_tensor (w, spec, "token_embd.weight", spec->n_embd, spec->n_vocab, fill, user_data);
  add_tensor (w, spec, "output_norm.weight", spec->n_embd, 1, fill, user_data);
  if (!spec->tied)
    add_tensor (w, spec, "output.weight", spec->n_embd, spec->n_vocab, fill, user_data);
  for (il = 0; il < spec->n_layer; il++)
    {
      char name[64];

#define T(suffix, ne0, ne1) \
      (g_snprintf (name, sizeof name, "blk.%" G_GINT64_FORMAT "." suffix, il), \
       add_tensor (w, spec, name, ne0, ne1, fill, user_data))
      T ("attn_norm.weight", spec->n_embd, 1);
      T ("attn_q.weight", spec->n_embd, n_q);
      T ("attn_k.weight", spec->n_embd, n_kv);
      T ("attn_v.weight", spec->n_embd, n_kv);
      T ("attn_output.weight", n_q, spec->n_embd);
      if (spec->qkv_bias)
        {
          T ("attn_q.bias", n_q, 1);
          T ("attn_k.bias", n_kv, 1);
          T ("attn_v.bias", n_kv, 1);
        }
      if (spec->qk_norm)
        {
          T ("attn_q_norm.weight", spec->head_dim, 1);
          T ("attn_k_norm.weight", spec->head_dim, 1);
        }
      T ("ffn_norm.weight", spec->n_embd, 1);
      T ("ffn_gate.weight", spec->n_embd, spec->n_ff);
      T ("ffn_up.weight", spec->n_embd, spec->n_ff);
      T ("ffn_down.weight", spec->n_ff, spec->n_embd);
#undef T
    }

  bytes = ruv_gguf_writer_to_bytes (w, &error);
  if (bytes == NULL)
    g_error ("test model: %s", error->message);
  return bytes;
}

void
ruv_test_rm_rf (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir == NULL)
    {
      g_unlink (path);
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      ruv_test_rm_rf (child);
    }
  g_dir_close (dir);
  g_chmod (path, 0755);
  g_rmdir (path);
}

char *
ruv_test_cli_path (void)
{
  const char *env = g_getenv ("RUVLLM_CLI");
  const char *cli = NULL;

  if (env != NULL && *env != '\0')
    cli = env;
#ifdef RUVLLM_CLI_PATH
  else
    cli = RUVLLM_CLI_PATH;
#endif
  if (cli == NULL || !g_file_test (cli, G_FILE_TEST_IS_EXECUTABLE))
    return NULL;
  return g_strdup (cli);
}

char *
ruv_test_data_path (const char *name)
{
  return g_build_filename (TEST_DATA_DIR, name, NULL);
}

/* ---- the "chain" model and the built ruvllm-cli ------------------------- */

#define CHAIN_N_EMBD  32
#define CHAIN_N_VOCAB 32

/* Greedy successor of token i: a..y → next letter, z → <|im_end|> (or a
 * with CYCLE), newline → h, anything else → a. */
static gint32
chain_successor (gint32            i,
                 RuvTestChainFlags flags)
{
  if (i >= 3 && i < 28)
    return i + 1;
  if (i == 28)
    return (flags & RUV_TEST_CHAIN_CYCLE) ? 3 : 2;
  if (i == 30)
    return 3 + ('h' - 'a');
  return 3;
}

static void
chain_add_tensor (RuvGgufWriter     *w,
                  const char        *name,
                  gint64             ne0,
                  gint64             ne1,
                  RuvTestChainFlags  flags)
{
  g_autoptr(GError) error = NULL;
  g_autofree float *v = g_new0 (float, ne0 * ne1);
  gint64 ne[2] = { ne0, ne1 };
  gint64 i, j;
  guint32 state = g_str_hash (name) | 1u;

  if ((flags & RUV_TEST_CHAIN_RANDOM) && g_str_has_prefix (name, "blk.") && ne1 > 1)
    for (i = 0; i < ne0 * ne1; i++)
      {
        /* xorshift32 in [-0.25, 0.25) */
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        v[i] = (float) ((double) state / 4294967296.0 - 0.5) * 0.5f;
      }
  else if (g_str_has_suffix (name, "norm.weight"))
    for (i = 0; i < ne0; i++)
      v[i] = 1.0f;
  else if (g_str_equal (name, "token_embd.weight"))
    for (i = 0; i < ne1; i++)
      v[i * ne0 + i] = 1.0f;
  else if (g_str_equal (name, "output.weight"))
    for (j = 0; j < ne1; j++)
      for (i = 0; i < ne0; i++)
        v[j * ne0 + i] = chain_successor ((gint32) i, flags) == j ? 1.0f : 0.0f;
  if (!ruv_gguf_writer_add_tensor (w, name, RK_TYPE_F32, ne1 > 1 ? 2 : 1, ne, v,
                                   (gsize) (ne0 * ne1) * sizeof (float), &error))
    g_error ("%s", error->message);
}

void
ruv_test_write_chain_model (const char        *path,
                            const char        *name,
                            guint32            n_ctx,
                            RuvTestChainFlags  flags)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  const char *tokens[CHAIN_N_VOCAB];
  gint32 types[CHAIN_N_VOCAB];
  char letters[26][2];
  int i;

  tokens[0] = "<|endoftext|>";
  tokens[1] = "<|im_start|>";
  tokens[2] = "<|im_end|>";
  for (i = 0; i < 26; i++)
    {
      letters[i][0] = (char) ('a' + i);
      letters[i][1] = '\0';
      tokens[3 + i] = letters[i];
    }
  tokens[29] = "\xc4\xa0";
  tokens[30] = "\xc4\x8a";
  tokens[31] = "!";
  for (i = 0; i < CHAIN_N_VOCAB; i++)
    types[i] = i <= 2 ? 3 : 1;

  ruv_gguf_writer_set_string (w, "general.architecture", "llama");
  ruv_gguf_writer_set_string (w, "general.name", name);
  ruv_gguf_writer_set_uint32 (w, "llama.context_length", n_ctx);
  ruv_gguf_writer_set_uint32 (w, "llama.embedding_length", CHAIN_N_EMBD);
  ruv_gguf_writer_set_uint32 (w, "llama.block_count", 1);
  ruv_gguf_writer_set_uint32 (w, "llama.feed_forward_length", 32);
  ruv_gguf_writer_set_uint32 (w, "llama.attention.head_count", 2);
  ruv_gguf_writer_set_uint32 (w, "llama.attention.head_count_kv", 1);
  ruv_gguf_writer_set_float32 (w, "llama.attention.layer_norm_rms_epsilon", 1e-6f);
  ruv_gguf_writer_set_float32 (w, "llama.rope.freq_base", 10000.0f);
  ruv_gguf_writer_set_string (w, "tokenizer.ggml.model", "gpt2");
  ruv_gguf_writer_set_string (w, "tokenizer.ggml.pre", "default");
  ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.tokens", tokens, CHAIN_N_VOCAB);
  ruv_gguf_writer_set_array_int32 (w, "tokenizer.ggml.token_type", types, CHAIN_N_VOCAB);
  ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.merges", NULL, 0);
  ruv_gguf_writer_set_uint32 (w, "tokenizer.ggml.bos_token_id", 0);
  ruv_gguf_writer_set_uint32 (w, "tokenizer.ggml.eos_token_id", 0);
  ruv_gguf_writer_set_bool (w, "tokenizer.ggml.add_bos_token", FALSE);

  chain_add_tensor (w, "token_embd.weight", CHAIN_N_EMBD, CHAIN_N_VOCAB, flags);
  chain_add_tensor (w, "output_norm.weight", CHAIN_N_EMBD, 1, flags);
  chain_add_tensor (w, "output.weight", CHAIN_N_EMBD, CHAIN_N_VOCAB, flags);
  chain_add_tensor (w, "blk.0.attn_norm.weight", CHAIN_N_EMBD, 1, flags);
  chain_add_tensor (w, "blk.0.attn_q.weight", CHAIN_N_EMBD, 32, flags);
  chain_add_tensor (w, "blk.0.attn_k.weight", CHAIN_N_EMBD, 16, flags);
  chain_add_tensor (w, "blk.0.attn_v.weight", CHAIN_N_EMBD, 16, flags);
  chain_add_tensor (w, "blk.0.attn_output.weight", 32, CHAIN_N_EMBD, flags);
  chain_add_tensor (w, "blk.0.ffn_norm.weight", CHAIN_N_EMBD, 1, flags);
  chain_add_tensor (w, "blk.0.ffn_gate.weight", CHAIN_N_EMBD, 32, flags);
  chain_add_tensor (w, "blk.0.ffn_up.weight", CHAIN_N_EMBD, 32, flags);
  chain_add_tensor (w, "blk.0.ffn_down.weight", 32, CHAIN_N_EMBD, flags);
  if (!ruv_gguf_writer_write_file (w, path, &error))
    g_error ("%s", error->message);
}

static char *
bytes_to_string (GBytes *b)
{
  gsize n = 0;
  const char *data = b != NULL ? g_bytes_get_data (b, &n) : NULL;

  return g_strndup (data != NULL ? data : "", n);
}

int
ruv_test_spawn_va (const char         *program,
                   const char *const  *envp,
                   const char         *input,
                   char              **out,
                   char              **err,
                   va_list             ap)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GBytes) stdin_bytes = NULL;
  g_autoptr(GBytes) stdout_bytes = NULL;
  g_autoptr(GBytes) stderr_bytes = NULL;
  g_autoptr(GError) error = NULL;
  const char *arg;

  g_ptr_array_add (argv, (char *) program);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE |
                                        (input != NULL ? G_SUBPROCESS_FLAGS_STDIN_PIPE : 0));
  if (envp != NULL)
    g_subprocess_launcher_set_environ (launcher, (char **) envp);
  proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  if (input != NULL)
    stdin_bytes = g_bytes_new_static (input, strlen (input));
  g_subprocess_communicate (proc, stdin_bytes, NULL, &stdout_bytes, &stderr_bytes, &error);
  g_assert_no_error (error);
  *out = bytes_to_string (stdout_bytes);
  *err = bytes_to_string (stderr_bytes);
  return g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
}

char *
ruv_test_run_cli_va (const char         *cli,
                     int                 expect_status,
                     const char *const  *envp,
                     const char         *input,
                     char              **err_out,
                     va_list             ap)
{
  g_autofree char *err = NULL;
  char *out = NULL;
  const char *command;
  va_list copy;
  int status;

  /* The sub-command (first argument) names the run in a failure. */
  va_copy (copy, ap);
  command = va_arg (copy, const char *);
  va_end (copy);
  status = ruv_test_spawn_va (cli, envp, input, &out, &err, ap);
  if (status != expect_status)
    g_error ("ruvllm-cli %s: status %d, stderr: %s", command, status, err);
  g_assert_true (g_utf8_validate (out, -1, NULL));
  if (err_out != NULL)
    *err_out = g_steal_pointer (&err);
  return out;
}
