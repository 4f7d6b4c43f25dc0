/* test-cli.c — runs the built ruvllm-cli on a generated model and checks
 * the output contract of info, tokenize, generate, logits, chat, bench and
 * quantize.
 * SPDX-License-Identifier: MIT
 *
 * The model is test-generate.c's "chain": a 32-token byte-level vocabulary
 * (<|endoftext|> <|im_start|> <|im_end|> a..z Ġ Ċ !), one layer with zero
 * attention and FFN matrices, one-hot embeddings and an output matrix that
 * makes the greedy successor of a..y the next letter, of z <|im_end|>, of a
 * newline h. Its logits are exactly sqrt (32) (rmsnorm of a one-hot vector of
 * 32, eps 1e-6) for the successor and 0 for every other token.
 */
#include <math.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "ruv-gguf-writer.h"

#ifndef RUVLLM_CLI_PATH
#define RUVLLM_CLI_PATH NULL
#endif

#define N_EMBD  32
#define N_VOCAB 32

static char *tmp_dir;
static char *model_path;
static const char *cli;

static gint32
successor (gint32 i)
{
  if (i >= 3 && i < 28)
    return i + 1;
  if (i == 28)
    return 2;
  if (i == 30)
    return 3 + ('h' - 'a');
  return 3;
}

static void
add_tensor (RuvGgufWriter *w,
            const char    *name,
            gint64         ne0,
            gint64         ne1)
{
  g_autoptr(GError) error = NULL;
  g_autofree float *v = g_new0 (float, ne0 * ne1);
  gint64 ne[2] = { ne0, ne1 };
  gint64 i, j;

  if (g_str_has_suffix (name, "norm.weight"))
    for (i = 0; i < ne0; i++)
      v[i] = 1.0f;
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
write_model (void)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  const char *tokens[N_VOCAB];
  gint32 types[N_VOCAB];
  char letters[26][2];
  char *path = g_build_filename (tmp_dir, "chain.gguf", NULL);
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
  for (i = 0; i < N_VOCAB; i++)
    types[i] = i <= 2 ? 3 : 1;

  ruv_gguf_writer_set_string (w, "general.architecture", "llama");
  ruv_gguf_writer_set_string (w, "general.name", "chain");
  ruv_gguf_writer_set_uint32 (w, "llama.context_length", 64);
  ruv_gguf_writer_set_uint32 (w, "llama.embedding_length", N_EMBD);
  ruv_gguf_writer_set_uint32 (w, "llama.block_count", 1);
  ruv_gguf_writer_set_uint32 (w, "llama.feed_forward_length", 32);
  ruv_gguf_writer_set_uint32 (w, "llama.attention.head_count", 2);
  ruv_gguf_writer_set_uint32 (w, "llama.attention.head_count_kv", 1);
  ruv_gguf_writer_set_float32 (w, "llama.attention.layer_norm_rms_epsilon", 1e-6f);
  ruv_gguf_writer_set_float32 (w, "llama.rope.freq_base", 10000.0f);
  ruv_gguf_writer_set_string (w, "tokenizer.ggml.model", "gpt2");
  ruv_gguf_writer_set_string (w, "tokenizer.ggml.pre", "default");
  ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.tokens", tokens, N_VOCAB);
  ruv_gguf_writer_set_array_int32 (w, "tokenizer.ggml.token_type", types, N_VOCAB);
  ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.merges", NULL, 0);
  ruv_gguf_writer_set_uint32 (w, "tokenizer.ggml.bos_token_id", 0);
  ruv_gguf_writer_set_uint32 (w, "tokenizer.ggml.eos_token_id", 0);
  ruv_gguf_writer_set_bool (w, "tokenizer.ggml.add_bos_token", FALSE);

  add_tensor (w, "token_embd.weight", N_EMBD, N_VOCAB);
  add_tensor (w, "output_norm.weight", N_EMBD, 1);
  add_tensor (w, "output.weight", N_EMBD, N_VOCAB);
  add_tensor (w, "blk.0.attn_norm.weight", N_EMBD, 1);
  add_tensor (w, "blk.0.attn_q.weight", N_EMBD, 32);
  add_tensor (w, "blk.0.attn_k.weight", N_EMBD, 16);
  add_tensor (w, "blk.0.attn_v.weight", N_EMBD, 16);
  add_tensor (w, "blk.0.attn_output.weight", 32, N_EMBD);
  add_tensor (w, "blk.0.ffn_norm.weight", N_EMBD, 1);
  add_tensor (w, "blk.0.ffn_gate.weight", N_EMBD, 32);
  add_tensor (w, "blk.0.ffn_up.weight", N_EMBD, 32);
  add_tensor (w, "blk.0.ffn_down.weight", 32, N_EMBD);
  if (!ruv_gguf_writer_write_file (w, path, &error))
    g_error ("%s", error->message);
  return path;
}

/* Runs ruvllm-cli with the NULL-terminated arguments; returns stdout. */
static char *
run_cli (int         expect_status,
         const char *input,
         ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  char *out = NULL;
  const char *arg;
  va_list ap;

  g_ptr_array_add (argv, (char *) cli);
  va_start (ap, input);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  proc = g_subprocess_newv ((const char * const *) argv->pdata,
                            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE |
                            (input != NULL ? G_SUBPROCESS_FLAGS_STDIN_PIPE : 0), &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, input, NULL, &out, &err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (proc) ||
      g_subprocess_get_exit_status (proc) != expect_status)
    g_error ("ruvllm-cli %s: status %d, stderr: %s", (char *) argv->pdata[1],
             g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1, err);
  return out;
}

static JsonObject *
parse_object (const char *line)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonNode *root;

  json_parser_load_from_data (parser, line, -1, &error);
  g_assert_no_error (error);
  root = json_parser_get_root (parser);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  return json_object_ref (json_node_get_object (root));
}

static void
test_info (void)
{
  g_autofree char *out = run_cli (0, NULL, "info", model_path, "--json", NULL);
  g_autoptr(JsonObject) o = parse_object (out);

  g_assert_cmpstr (json_object_get_string_member (o, "architecture"), ==, "llama");
  g_assert_cmpint (json_object_get_int_member (o, "vocab_size"), ==, N_VOCAB);
  g_assert_cmpint (json_object_get_int_member (o, "context_length"), ==, 64);
}

static void
check_ids (const char   *out,
           const gint32 *expect,
           guint         n)
{
  g_autoptr(JsonObject) o = parse_object (out);
  JsonArray *ids = json_object_get_array_member (o, "ids");
  guint i;

  g_assert_cmpuint (json_array_get_length (ids), ==, n);
  for (i = 0; i < n; i++)
    g_assert_cmpint (json_array_get_int_element (ids, i), ==, expect[i]);
}

static void
test_tokenize (void)
{
  g_autofree char *a = run_cli (0, NULL, "tokenize", "-m", model_path, "--text", "abc", "--json",
                                NULL);
  g_autofree char *b = run_cli (0, NULL, "tokenize", "-m", model_path, "--text",
                                "<|im_start|>a\n", "--json", NULL);
  g_autofree char *c = run_cli (0, NULL, "tokenize", "-m", model_path, "--text", "z a",
                                "--no-special", "--json", NULL);

  check_ids (a, (gint32[]) { 3, 4, 5 }, 3);
  check_ids (b, (gint32[]) { 1, 3, 30 }, 3);
  check_ids (c, (gint32[]) { 28, 29, 3 }, 3);
}

static void
test_generate_json (void)
{
  g_autofree char *out = run_cli (0, NULL, "generate", "-m", model_path, "-p", "a", "-n", "4",
                                  "--temp", "0", "--json", NULL);
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  const char *texts[] = { "b", "c", "d", "e" };
  guint i;

  g_assert_cmpuint (g_strv_length (lines), ==, 6);   /* 4 tokens, done, "" */
  g_assert_cmpstr (lines[5], ==, "");
  for (i = 0; i < 4; i++)
    {
      g_autoptr(JsonObject) o = parse_object (lines[i]);
      JsonArray *top = json_object_get_array_member (o, "top");
      JsonArray *best, *second;

      g_assert_cmpint (json_object_get_int_member (o, "i"), ==, i);
      g_assert_cmpint (json_object_get_int_member (o, "id"), ==, 4 + i);
      g_assert_cmpstr (json_object_get_string_member (o, "text"), ==, texts[i]);
      g_assert_cmpuint (json_array_get_length (top), ==, 5);
      best = json_array_get_array_element (top, 0);
      second = json_array_get_array_element (top, 1);
      g_assert_cmpint (json_array_get_int_element (best, 0), ==, 4 + i);
      /* Raw logits: sqrt (32) / sqrt (1 + 32e-6), not penalised. */
      g_assert_cmpfloat_with_epsilon (json_array_get_double_element (best, 1),
                                      sqrt (32.0 / (1.0 + 32e-6)), 1e-4);
      g_assert_cmpfloat_with_epsilon (json_array_get_double_element (second, 1), 0.0, 1e-6);
    }
  {
    g_autoptr(JsonObject) done = parse_object (lines[4]);

    g_assert_true (json_object_get_boolean_member (done, "done"));
    g_assert_cmpstr (json_object_get_string_member (done, "reason"), ==, "length");
    g_assert_cmpint (json_object_get_int_member (done, "n_prompt"), ==, 1);
    g_assert_cmpint (json_object_get_int_member (done, "n_gen"), ==, 4);
    g_assert_true (json_object_has_member (done, "pp_tps"));
    g_assert_true (json_object_has_member (done, "tg_tps"));
  }
}

static void
test_generate_more (void)
{
  /* End of turn from token ids: z -> <|im_end|>, no token lines. */
  g_autofree char *eot = run_cli (0, NULL, "generate", "-m", model_path, "--tokens", "27",
                                  "--temp", "0", "--json", NULL);
  g_autofree char *text = run_cli (0, NULL, "generate", "-m", model_path, "-p", "a", "-n", "10",
                                   "--temp", "0", "--stop", "xx", "--stop", "de", NULL);
  g_autofree char *bad = run_cli (1, NULL, "generate", "-m", model_path, "-p", "a",
                                  "--top-p", "2", NULL);
  g_autofree char *usage = run_cli (2, NULL, "generate", "-m", model_path, NULL);
  g_auto(GStrv) lines = g_strsplit (eot, "\n", -1);
  g_autoptr(JsonObject) o = NULL;
  g_autoptr(JsonObject) done = NULL;

  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  o = parse_object (lines[0]);
  g_assert_cmpint (json_object_get_int_member (o, "id"), ==, 28);
  done = parse_object (lines[1]);
  g_assert_cmpstr (json_object_get_string_member (done, "reason"), ==, "end_of_turn");
  g_assert_cmpint (json_object_get_int_member (done, "n_gen"), ==, 1);
  /* Text mode streams the answer; the stop sequence never appears. */
  g_assert_cmpstr (text, ==, "bc\n");
}

static void
test_logits (void)
{
  g_autofree char *out = run_cli (0, NULL, "logits", "-m", model_path, "--tokens", "3,4",
                                  "--json", NULL);
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  g_autoptr(JsonObject) p0 = NULL;
  g_autoptr(JsonObject) p1 = NULL;

  /* One line per position first (a summary line may follow). */
  g_assert_cmpuint (g_strv_length (lines), >=, 3);
  p0 = parse_object (lines[0]);
  p1 = parse_object (lines[1]);
  g_assert_cmpint (json_object_get_int_member (p0, "pos"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (p1, "pos"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (p0, "argmax"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (p0, "next"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (p1, "argmax"), ==, 5);
}

static void
test_chat (void)
{
  /* Scripted: one message, then /exit. The ChatML prompt ends with a
   * newline, whose successor is h; the answer runs to z, then <|im_end|>.
   * --no-store: the stored chat is test-chat-session.c's subject. */
  g_autofree char *out = run_cli (0, "hi\n/exit\nnot read\n", "chat", "-m", model_path, "--temp",
                                  "0", "--system", "x", "--no-store", NULL);

  g_assert_cmpstr (out, ==, "hijklmnopqrstuvwxyz\n");
}

static void
test_bench (void)
{
  g_autofree char *out = run_cli (0, NULL, "bench", "-m", model_path, "-p", "8", "-n", "4",
                                  "-t", "1", "-r", "2", "--json", NULL);
  g_autoptr(JsonObject) o = parse_object (out);
  JsonObject *pp = json_object_get_object_member (o, "pp");
  JsonObject *tg = json_object_get_object_member (o, "tg");

  g_assert_cmpint (json_object_get_int_member (pp, "n"), ==, 8);
  g_assert_cmpint (json_object_get_int_member (tg, "n"), ==, 4);
  g_assert_cmpfloat (json_object_get_double_member (pp, "min"), >, 0.0);
  g_assert_cmpfloat (json_object_get_double_member (pp, "min"), <=,
                     json_object_get_double_member (pp, "median"));
  g_assert_cmpfloat (json_object_get_double_member (tg, "median"), <=,
                     json_object_get_double_member (tg, "max"));
  g_assert_cmpint (json_object_get_int_member (o, "peak_rss_bytes"), >, 0);
}

static void
test_quantize (void)
{
  g_autofree char *q8 = g_build_filename (tmp_dir, "chain-q8_0.gguf", NULL);
  g_autofree char *q = run_cli (0, NULL, "quantize", model_path, q8, "q8_0", NULL);
  g_autofree char *info = run_cli (0, NULL, "info", q8, "--json", NULL);
  g_autofree char *gen = run_cli (0, NULL, "generate", "-m", q8, "-p", "k", "-n", "5", "--temp",
                                  "0", NULL);
  g_autofree char *bad = run_cli (2, NULL, "quantize", model_path, q8, "q3_k_xl", NULL);
  g_autoptr(JsonObject) o = parse_object (info);

  g_assert_cmpstr (json_object_get_string_member (o, "quantization"), ==, "Q8_0");
  g_assert_cmpstr (gen, ==, "lmnop\n");
  g_unlink (q8);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  cli = g_getenv ("RUVLLM_CLI");
  if (cli == NULL)
    cli = RUVLLM_CLI_PATH;
  if (cli == NULL || !g_file_test (cli, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("ruvllm-cli is not built (set RUVLLM_CLI)");
      return g_test_run ();
    }
  tmp_dir = g_dir_make_tmp ("ruv-test-cli-XXXXXX", &error);
  g_assert_no_error (error);
  model_path = write_model ();

  g_test_add_func ("/engine/cli/info", test_info);
  g_test_add_func ("/engine/cli/tokenize", test_tokenize);
  g_test_add_func ("/engine/cli/generate-json", test_generate_json);
  g_test_add_func ("/engine/cli/generate", test_generate_more);
  g_test_add_func ("/engine/cli/logits", test_logits);
  g_test_add_func ("/engine/cli/chat", test_chat);
  g_test_add_func ("/engine/cli/bench", test_bench);
  g_test_add_func ("/engine/cli/quantize", test_quantize);
  ret = g_test_run ();

  g_unlink (model_path);
  g_rmdir (tmp_dir);
  g_free (model_path);
  g_free (tmp_dir);
  return ret;
}
