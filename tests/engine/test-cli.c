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
 *
 * "chain-rand" is the same model with pseudo-random attention and FFN
 * matrices, so LoRA adapters on them (O, DOWN) see non-zero inputs and
 * learning from ratings has gradients: used by generate --lora and
 * adapt --store.
 */
#include <math.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "ruv-error.h"
#include "ruv-generate-params.h"
#include "ruv-lora-gguf.h"
#include "ruv-model.h"
#include "ruv-store.h"
#include "ruv-test-util.h"


#define N_VOCAB 32

static char *tmp_dir;
static char *model_path;
static char *rand_path;
static const char *cli;

static char *
write_model (const char       *file_name,
             RuvTestChainFlags flags)
{
  char *path = g_build_filename (tmp_dir, file_name, NULL);

  ruv_test_write_chain_model (path, "chain", 64, flags);
  return path;
}

/* Runs ruvllm-cli with the arguments (XDG_DATA_HOME set to xdg unless NULL);
 * returns stdout, and stderr in *err_out unless NULL. */
static char *
run_cli_va (int         expect_status,
            const char *input,
            const char *xdg,
            char      **err_out,
            va_list     ap)
{
  g_auto(GStrv) envp = NULL;

  if (xdg != NULL)
    envp = g_environ_setenv (g_get_environ (), "XDG_DATA_HOME", xdg, TRUE);
  return ruv_test_run_cli_va (cli, expect_status, (const char * const *) envp, input, err_out,
                              ap);
}

/* Runs ruvllm-cli with the NULL-terminated arguments; returns stdout. */
static char *
run_cli (int         expect_status,
         const char *input,
         ...)
{
  va_list ap;
  char *out;

  va_start (ap, input);
  out = run_cli_va (expect_status, input, NULL, NULL, ap);
  va_end (ap);
  return out;
}

/* The same, with XDG_DATA_HOME = xdg and stderr returned in *err. */
static char *
run_cli_env (int          expect_status,
             const char  *xdg,
             char       **err,
             ...)
{
  va_list ap;
  char *out;

  va_start (ap, err);
  out = run_cli_va (expect_status, NULL, xdg, err, ap);
  va_end (ap);
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
  JsonObject *ft = json_object_get_object_member (o, "ttft_ms");

  g_assert_cmpint (json_object_get_int_member (pp, "n"), ==, 8);
  /* time to first token: a pp run plus the first sample, so never below the
   * fastest pp run's time (printed to 3 decimals) */
  g_assert_cmpint (json_object_get_int_member (ft, "n_prompt"), ==, 8);
  g_assert_cmpfloat (json_object_get_double_member (ft, "min"), <=,
                     json_object_get_double_member (ft, "median"));
  g_assert_cmpfloat (json_object_get_double_member (ft, "median"), <=,
                     json_object_get_double_member (ft, "max"));
  g_assert_cmpfloat (json_object_get_double_member (ft, "min"), >=,
                     8000.0 / json_object_get_double_member (pp, "max") * 0.999 - 0.002);
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
  g_autofree char *q4 = g_build_filename (tmp_dir, "chain-q4_k_m.gguf", NULL);
  /* The input as output; an already quantized input without the flag. */
  g_autofree char *same = run_cli (1, NULL, "quantize", model_path, model_path, "q8_0", NULL);
  g_autofree char *requant = run_cli (1, NULL, "quantize", q8, q4, "q4_k_m", NULL);
  g_autofree char *allowed = run_cli (0, NULL, "quantize", "--allow-requantize", "-t", "2", q8,
                                      q4, "q4_k_m", NULL);
  g_autoptr(JsonObject) o = parse_object (info);

  g_assert_cmpstr (json_object_get_string_member (o, "quantization"), ==, "Q8_0");
  g_assert_cmpstr (gen, ==, "lmnop\n");
  g_assert_true (g_file_test (q4, G_FILE_TEST_IS_REGULAR));
  g_unlink (q4);
  g_unlink (q8);
}

/* The "top" array of a generate --json token line as (id, logit) pairs. */
static void
top_of (const char *line,
        gint64     *ids,
        double     *logits)
{
  g_autoptr(JsonObject) o = parse_object (line);
  JsonArray *top = json_object_get_array_member (o, "top");
  guint j;

  g_assert_cmpuint (json_array_get_length (top), ==, 5);
  for (j = 0; j < 5; j++)
    {
      JsonArray *e = json_array_get_array_element (top, j);

      ids[j] = json_array_get_int_element (e, 0);
      logits[j] = json_array_get_double_element (e, 1);
    }
}

static void
test_generate_lora (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvModel) model = ruv_model_new_from_file (rand_path, &error);
  g_autoptr(RuvMicroLora) lora = NULL;
  g_autofree char *zero = g_build_filename (tmp_dir, "zero-lora.gguf", NULL);
  g_autofree char *live = g_build_filename (tmp_dir, "live-lora.gguf", NULL);
  g_autofree char *base = NULL;
  g_autofree char *with_zero = NULL;
  g_autofree char *with_live = NULL;
  g_autofree char *logits = NULL;
  g_autofree char *bad = NULL;
  g_autofree float *p = NULL;
  g_auto(GStrv) lb = NULL;
  g_auto(GStrv) lz = NULL;
  g_auto(GStrv) ll = NULL;
  g_auto(GStrv) lg = NULL;
  g_autoptr(JsonObject) pos1 = NULL;
  RuvMicroLoraConfig cfg;
  gint64 ib[5], il[5];
  double vb[5], vl[5], diff = 0.0;
  guint64 s = 12345;
  gsize n, i;

  g_assert_no_error (error);
  ruv_micro_lora_config_for_model (&cfg, model);
  lora = ruv_micro_lora_new_for_model (model, &cfg, &error);
  g_assert_no_error (error);
  /* B starts at zero: a no-op adapter. */
  g_assert_true (ruv_lora_gguf_export (lora, model, zero, &error));
  g_assert_no_error (error);
  n = ruv_micro_lora_get_n_params (lora);
  p = g_new (float, n);
  for (i = 0; i < n; i++)
    {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      p[i] = (float) ((double) (s >> 40) / 16777216.0 - 0.5);
    }
  g_assert_true (ruv_micro_lora_set_params (lora, p));
  g_assert_true (ruv_lora_gguf_export (lora, model, live, &error));
  g_assert_no_error (error);

  base = run_cli (0, NULL, "generate", "-m", rand_path, "--tokens", "3,4", "-n", "3", "--temp",
                  "0", "-t", "1", "--json", NULL);
  with_zero = run_cli (0, NULL, "generate", "-m", rand_path, "--tokens", "3,4", "-n", "3",
                       "--temp", "0", "-t", "1", "--json", "--lora", zero, NULL);
  with_live = run_cli (0, NULL, "generate", "-m", rand_path, "--tokens", "3,4", "-n", "3",
                       "--temp", "0", "-t", "1", "--json", "--lora", live, NULL);
  logits = run_cli (0, NULL, "logits", "-m", rand_path, "--tokens", "3,4", "-t", "1", "--json",
                    "--lora", live, NULL);
  lb = g_strsplit (base, "\n", -1);
  lz = g_strsplit (with_zero, "\n", -1);
  ll = g_strsplit (with_live, "\n", -1);
  lg = g_strsplit (logits, "\n", -1);
  g_assert_cmpuint (g_strv_length (lb), >=, 2);
  g_assert_cmpuint (g_strv_length (lz), ==, g_strv_length (lb));

  /* A no-op adapter: every token line byte for byte the base model's. */
  for (i = 0; lb[i] != NULL && strstr (lb[i], "\"done\"") == NULL && lb[i][0] != '\0'; i++)
    g_assert_cmpstr (lz[i], ==, lb[i]);

  /* A live adapter changes the first token's logits ... */
  top_of (lb[0], ib, vb);
  top_of (ll[0], il, vl);
  for (i = 0; i < 5; i++)
    diff = MAX (diff, fabs (vl[i] - vb[i]));
  g_test_message ("largest top-5 logit change with the adapter: %g", diff);
  g_assert_cmpfloat (diff, >, 1e-3);
  /* ... to what `logits --lora` gives at the last prompt position. */
  pos1 = parse_object (lg[1]);
  g_assert_cmpint (json_object_get_int_member (pos1, "pos"), ==, 1);
  {
    JsonArray *top = json_object_get_array_member (pos1, "top");

    for (i = 0; i < 5; i++)
      {
        JsonArray *e = json_array_get_array_element (top, (guint) i);

        g_assert_cmpint (json_array_get_int_element (e, 0), ==, il[i]);
        g_assert_cmpfloat_with_epsilon (json_array_get_double_element (e, 1), vl[i], 1e-4);
      }
  }

  /* A file that is not an adapter: an error, nothing generated. */
  bad = run_cli (1, NULL, "generate", "-m", rand_path, "--tokens", "3,4", "-n", "2", "--json",
                 "--lora", rand_path, NULL);
  g_assert_cmpstr (bad, ==, "");
  g_unlink (zero);
  g_unlink (live);
}

static void
test_prompt_cap (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *big_path = g_build_filename (tmp_dir, "big-prompt.txt", NULL);
  g_autofree char *bin_path = g_build_filename (tmp_dir, "binary-prompt.txt", NULL);
  g_autofree char *ok_path = g_build_filename (tmp_dir, "prompt.txt", NULL);
  g_autofree char *big = g_malloc (RUV_GENERATE_MAX_PROMPT_BYTES + 2);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  /* The engine's check: size cap (with and without a length), UTF-8. */
  memset (big, 'a', RUV_GENERATE_MAX_PROMPT_BYTES + 1);
  big[RUV_GENERATE_MAX_PROMPT_BYTES + 1] = '\0';
  g_assert_true (ruv_generate_check_prompt_text (big, RUV_GENERATE_MAX_PROMPT_BYTES, &error));
  g_assert_false (ruv_generate_check_prompt_text (big, RUV_GENERATE_MAX_PROMPT_BYTES + 1,
                                                  &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  g_assert_false (ruv_generate_check_prompt_text (big, -1, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "MiB"));
  g_clear_error (&error);
  g_assert_false (ruv_generate_check_prompt_text ("ab\xff" "c", -1, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "offset 2"));
  g_clear_error (&error);
  g_assert_false (ruv_generate_check_prompt_text ("ab\0c", 4, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  g_assert_true (ruv_generate_check_prompt_text ("", -1, &error));
  g_assert_true (ruv_generate_check_prompt_text ("h\xc3\xa9llo", -1, &error));

  /* The CLI: refused before the model loads (a missing model is not even
   * looked at), with the reason on stderr. */
  g_assert_true (g_file_set_contents (big_path, big, RUV_GENERATE_MAX_PROMPT_BYTES + 1, &error));
  out = run_cli_env (1, NULL, &err, "generate", "-m", "/nonexistent/model.gguf", "-f", big_path,
                     NULL);
  g_assert_nonnull (strstr (err, "limit"));
  g_clear_pointer (&err, g_free);
  g_clear_pointer (&out, g_free);
  g_assert_true (g_file_set_contents (bin_path, "a\xff\xfe b", -1, &error));
  out = run_cli_env (1, NULL, &err, "generate", "-m", model_path, "-f", bin_path, NULL);
  g_assert_nonnull (strstr (err, "UTF-8"));
  g_clear_pointer (&err, g_free);
  g_clear_pointer (&out, g_free);
  /* -f reads the prompt as -p would take it. */
  g_assert_true (g_file_set_contents (ok_path, "k", -1, &error));
  out = run_cli (0, NULL, "generate", "-m", model_path, "-f", ok_path, "-n", "3", "--temp", "0",
                 NULL);
  g_assert_cmpstr (out, ==, "lmn\n");
  g_unlink (big_path);
  g_unlink (bin_path);
  g_unlink (ok_path);
}

static void
test_adapt_store (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *xdg = g_build_filename (tmp_dir, "xdg", NULL);
  g_autofree char *db = g_build_filename (xdg, "ruvllm", "ruvllm.db", NULL);
  g_autofree char *ratings = g_build_filename (tmp_dir, "ratings.jsonl", NULL);
  g_autofree char *lora_out = g_build_filename (tmp_dir, "adapted.gguf", NULL);
  g_autofree char *out1 = NULL;
  g_autofree char *out2 = NULL;
  g_autofree char *err = NULL;
  g_autofree char *usage = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(GPtrArray) history = NULL;
  g_autoptr(GPtrArray) adaptations = NULL;
  g_autoptr(GPtrArray) snaps1 = NULL;
  g_autoptr(GPtrArray) snaps2 = NULL;
  g_autoptr(JsonObject) summary1 = NULL;
  g_autoptr(JsonObject) summary2 = NULL;
  g_auto(GStrv) lines = NULL;
  gint64 head1, head2;
  guint i, applied = 0, up = 0, down = 0;
  gboolean chained = FALSE;
  const char *text =
    "{\"prompt\":\"abc\",\"response\":\"def\",\"rating\":1}\n"
    "{\"prompt\":\"xyz\",\"response\":\"abc\",\"rating\":-1}\n"
    "\n"
    "{\"prompt\":\"hello\",\"response\":\"world\",\"rating\":0.75}\n";

  g_assert_true (g_file_set_contents (ratings, text, -1, &error));
  /* Without --store and --lora-out there is nowhere to put the result. */
  usage = run_cli_env (2, xdg, NULL, "adapt", "-m", rand_path, "--ratings", ratings, NULL);

  out1 = run_cli_env (0, xdg, &err, "adapt", "-m", rand_path, "--ratings", ratings, "--store",
                      "-t", "1", "--json", NULL);
  g_test_message ("adapt --store: %s", out1);
  lines = g_strsplit (out1, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 5);   /* 3 ratings, summary, "" */
  summary1 = parse_object (lines[3]);
  g_assert_true (json_object_has_member (summary1, "store"));
  head1 = json_object_get_int_member (json_object_get_object_member (summary1, "store"), "head");
  g_assert_cmpint (head1, >, 0);

  /* The app's records: three rated answers with their outcomes, and the
   * snapshots of the consolidations, newest = the head. */
  store = ruv_store_new_for_path (db, &error);
  g_assert_no_error (error);
  history = ruv_store_rating_history (store, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (history->len, ==, 3);
  for (i = 0; i < history->len; i++)
    {
      const RuvStoreRatingRecord *r = g_ptr_array_index (history, i);

      g_assert_cmpint (r->outcome, !=, RUV_ADAPTATION_NONE);
      applied += r->outcome == RUV_ADAPTATION_APPLIED;
      up += r->rating == RUV_RATING_UP;
      down += r->rating == RUV_RATING_DOWN;
    }
  g_assert_cmpuint (applied, >=, 1);
  g_assert_cmpuint (up, ==, 2);
  g_assert_cmpuint (down, ==, 1);
  adaptations = ruv_store_list_adaptations (store, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (adaptations->len, ==, 3);
  snaps1 = ruv_store_list_snapshots (store, "chain-rand.gguf", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snaps1->len, >=, 1);
  g_assert_cmpint (((RuvStoreSnapshot *) g_ptr_array_index (snaps1, 0))->id, ==, head1);
  g_clear_object (&store);

  /* A second run starts from that head: its first snapshot's parent. */
  out2 = run_cli_env (0, xdg, NULL, "adapt", "-m", rand_path, "--ratings", ratings, "--store",
                      "-t", "1", "--json", "--lora-out", lora_out, NULL);
  g_strfreev (lines);
  lines = g_strsplit (out2, "\n", -1);
  summary2 = parse_object (lines[3]);
  head2 = json_object_get_int_member (json_object_get_object_member (summary2, "store"), "head");
  g_assert_cmpint (head2, >, head1);
  g_assert_true (g_file_test (lora_out, G_FILE_TEST_IS_REGULAR));
  store = ruv_store_new_for_path (db, &error);
  g_assert_no_error (error);
  snaps2 = ruv_store_list_snapshots (store, "chain-rand.gguf", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snaps2->len, >, snaps1->len);
  for (i = 0; i < snaps2->len; i++)
    {
      const RuvStoreSnapshot *sn = g_ptr_array_index (snaps2, i);

      if (sn->id > head1 && sn->parent_id == head1)
        chained = TRUE;
    }
  g_assert_true (chained);
  g_clear_pointer (&history, g_ptr_array_unref);
  history = ruv_store_rating_history (store, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (history->len, ==, 6);
  g_clear_object (&store);
  g_unlink (ratings);
  g_unlink (lora_out);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  cli = ruv_test_cli_path ();
  if (cli == NULL)
    {
      g_test_skip ("ruvllm-cli is not built (set RUVLLM_CLI)");
      return g_test_run ();
    }
  tmp_dir = g_dir_make_tmp ("ruv-test-cli-XXXXXX", &error);
  g_assert_no_error (error);
  model_path = write_model ("chain.gguf", 0);
  rand_path = write_model ("chain-rand.gguf", RUV_TEST_CHAIN_RANDOM);

  g_test_add_func ("/engine/cli/info", test_info);
  g_test_add_func ("/engine/cli/tokenize", test_tokenize);
  g_test_add_func ("/engine/cli/generate-json", test_generate_json);
  g_test_add_func ("/engine/cli/generate", test_generate_more);
  g_test_add_func ("/engine/cli/logits", test_logits);
  g_test_add_func ("/engine/cli/chat", test_chat);
  g_test_add_func ("/engine/cli/bench", test_bench);
  g_test_add_func ("/engine/cli/quantize", test_quantize);
  g_test_add_func ("/engine/cli/generate-lora", test_generate_lora);
  g_test_add_func ("/engine/cli/prompt-cap", test_prompt_cap);
  g_test_add_func ("/engine/cli/adapt-store", test_adapt_store);
  ret = g_test_run ();

  g_unlink (model_path);
  g_unlink (rand_path);
  g_free (rand_path);
  g_rmdir (tmp_dir);
  g_free (model_path);
  g_free (tmp_dir);
  return ret;
}
