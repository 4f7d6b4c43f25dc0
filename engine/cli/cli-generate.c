/* cli-generate.c — `ruvllm-cli generate`: text from a prompt or token ids.
 * SPDX-License-Identifier: MIT
 *
 *   ruvllm-cli generate -m MODEL (-p TEXT | -f FILE | --tokens 1,2,3) [-n N] [--temp T]
 *     [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S]
 *     [--stop STR]... [-t THREADS] [-c CTX] [--lora A.gguf] [--json]
 *
 * --lora applies a GGUF LoRA adapter (ours or llama.cpp's layout, see
 * ruv-lora-gguf.h) to every forward pass, as `logits --lora` does, through
 * ruv_cpu_backend_set_lora (no learning, so no activation capture).
 * Prompt text is checked (size cap, UTF-8) before the model is loaded.
 *
 * Text mode streams the answer to stdout and a summary to stderr. --json
 * prints one line per generated token,
 *   {"i":0,"id":123,"text":"...","top":[[id,logit],...]}
 * with the 5 best raw logits before penalties and sampling, then
 *   {"done":true,"reason":"length|stop|end_of_turn|cancelled","n_prompt":..,
 *    "n_gen":..,"pp_tps":..,"tg_tps":..}
 * An end-of-generation token ends the output without a line of its own.
 */
#include <stdio.h>

#include <glib/gstdio.h>

#include "rk.h"
#include "ruv-cpu-backend.h"
#include "ruv-error.h"
#include "ruv-lora-gguf.h"
#include "cli-kv.h"
#include "ruvllm-cli.h"

#define TOP_N 5

static void
print_json_string (const char *s)
{
  const unsigned char *p;

  putchar ('"');
  for (p = (const unsigned char *) s; *p != '\0'; p++)
    {
      switch (*p)
        {
        case '"':
          fputs ("\\\"", stdout);
          break;
        case '\\':
          fputs ("\\\\", stdout);
          break;
        case '\n':
          fputs ("\\n", stdout);
          break;
        case '\r':
          fputs ("\\r", stdout);
          break;
        case '\t':
          fputs ("\\t", stdout);
          break;
        default:
          if (*p < 0x20)
            printf ("\\u%04x", *p);
          else
            putchar (*p);
        }
    }
  putchar ('"');
}

static gboolean
print_token_json (const RuvTokenInfo *info,
                  gpointer            user_data)
{
  gint32 idx[TOP_N];
  float val[TOP_N];
  int k = (int) MIN (TOP_N, info->n_vocab), j;

  rk_top_k (info->logits, (int) info->n_vocab, k, idx, val);
  printf ("{\"i\":%" G_GINT64_FORMAT ",\"id\":%d,\"text\":", info->index, info->id);
  print_json_string (info->text);
  printf (",\"top\":[");
  for (j = 0; j < k; j++)
    printf ("%s[%d,%.9g]", j > 0 ? "," : "", idx[j], (double) val[j]);
  printf ("]}\n");
  fflush (stdout);
  return TRUE;
}

/* The prompt text of -f FILE, checked as -p TEXT is; a file over the cap is
 * refused from its size, without reading it. */
static char *
read_prompt_file (const char  *path,
                  GError     **error)
{
  g_autofree char *text = NULL;
  GStatBuf st;
  gsize len = 0;

  if (g_stat (path, &st) == 0 && S_ISREG (st.st_mode) &&
      (guint64) st.st_size > RUV_GENERATE_MAX_PROMPT_BYTES)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "%s is %.1f MiB; the prompt limit is %.0f MiB, far more than any model's "
                   "context holds: shorten it", path, (double) st.st_size / 1048576.0,
                   (double) RUV_GENERATE_MAX_PROMPT_BYTES / 1048576.0);
      return NULL;
    }
  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  if (!ruv_generate_check_prompt_text (text, (gssize) len, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  return g_steal_pointer (&text);
}

static gboolean
print_text (const char *text,
            gpointer    user_data)
{
  fputs (text, stdout);
  fflush (stdout);
  return TRUE;
}

int
ruv_cli_generate (int    argc,
                  char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvCpuBackend) backend = NULL;
  g_autoptr(RuvModelConfig) config = ruv_model_config_new ();
  g_autoptr(RuvGenerateParams) params = ruv_generate_params_new ();
  g_autoptr(RuvGenerateResult) res = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autofree char *model_path = NULL;
  g_autofree char *prompt = NULL;
  g_autofree char *tokens_text = NULL;
  g_autofree char *prompt_file = NULL;
  g_autofree char *lora_path = NULL;
  g_autoptr(RuvMicroLora) lora = NULL;
  g_auto(GStrv) stops = NULL;
  RuvCliKvOptions kv_opts;
  gboolean json = FALSE;
  int n = 256, top_k = 0, threads = 0, ctx_size = 0;
  double temp = params->temperature, top_p = params->top_p, min_p = params->min_p;
  double repeat_penalty = params->repetition_penalty;
  gint64 seed = -1;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL" },
    { "prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "Prompt text", "TEXT" },
    { "file", 'f', 0, G_OPTION_ARG_FILENAME, &prompt_file, "Read the prompt text from FILE",
      "FILE" },
    { "tokens", 0, 0, G_OPTION_ARG_STRING, &tokens_text, "Prompt as token ids (verbatim)",
      "1,2,3" },
    { "n-predict", 'n', 0, G_OPTION_ARG_INT, &n, "Tokens to generate at most (256)", "N" },
    { "temp", 0, 0, G_OPTION_ARG_DOUBLE, &temp, "Temperature, 0 greedy (0.7)", "T" },
    { "top-k", 0, 0, G_OPTION_ARG_INT, &top_k, "Top-k, 0 off (0)", "K" },
    { "top-p", 0, 0, G_OPTION_ARG_DOUBLE, &top_p, "Top-p in (0, 1] (0.9)", "P" },
    { "min-p", 0, 0, G_OPTION_ARG_DOUBLE, &min_p, "Min-p, 0 off (0)", "P" },
    { "repeat-penalty", 0, 0, G_OPTION_ARG_DOUBLE, &repeat_penalty,
      "Repetition penalty, 1 off (1.1)", "R" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "RNG seed (default: random)", "S" },
    { "stop", 0, 0, G_OPTION_ARG_STRING_ARRAY, &stops, "Stop sequence (repeatable)", "STR" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (default: all CPUs)", "N" },
    { "ctx-size", 'c', 0, G_OPTION_ARG_INT, &ctx_size,
      "Context size (default: 4096 or the model's, if smaller)", "CTX" },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME, &lora_path, "Apply this GGUF LoRA adapter",
      "A.gguf" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "One JSON line per token, then a summary", NULL },
    { NULL }
  };

  g_option_context_set_summary (context, "Generate text from a prompt.");
  g_option_context_add_main_entries (context, entries, NULL);
  ruv_cli_kv_options_init (&kv_opts);
  ruv_cli_kv_options_add (context, &kv_opts);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    {
      ruv_cli_kv_options_clear (&kv_opts);
      return RUV_CLI_EXIT_USAGE;
    }
  if (model_path == NULL || argc != 1 ||
      (prompt != NULL) + (prompt_file != NULL) + (tokens_text != NULL) != 1)
    {
      fprintf (stderr, "ruvllm-cli generate: -m MODEL and one of -p TEXT, -f FILE or --tokens "
               "are required\n");
      return RUV_CLI_EXIT_USAGE;
    }
  if (n < 1 || top_k < 0 || threads < 0 || ctx_size < 0)
    {
      fprintf (stderr, "ruvllm-cli generate: -n must be at least 1; --top-k, -t and -c "
               "cannot be negative\n");
      return RUV_CLI_EXIT_USAGE;
    }
  if (tokens_text != NULL && (ids = ruv_cli_parse_tokens (tokens_text, &error)) == NULL)
    return ruv_cli_fail (error);
  /* Before the model is loaded: a 10 MB paste fails at once. */
  if (prompt_file != NULL && (prompt = read_prompt_file (prompt_file, &error)) == NULL)
    return ruv_cli_fail (error);
  if (prompt != NULL && !ruv_generate_check_prompt_text (prompt, -1, &error))
    return ruv_cli_fail (error);

  params->max_tokens = (guint) n;
  params->temperature = (float) temp;
  params->top_k = (guint) top_k;
  params->top_p = (float) top_p;
  params->min_p = (float) min_p;
  params->repetition_penalty = (float) repeat_penalty;
  if (seed >= 0)
    {
      params->has_seed = TRUE;
      params->seed = (guint64) seed;
    }
  ruv_generate_params_set_stop_sequences (params, (const char * const *) stops);
  if (!ruv_generate_params_validate (params, &error))
    return ruv_cli_fail (error);

  if (ctx_size > 0)
    config->max_context = (guint) ctx_size;
  config->n_threads = (guint) threads;
  if (!ruv_cli_kv_options_apply_config (&kv_opts, config, &error))
    {
      ruv_cli_kv_options_clear (&kv_opts);
      return ruv_cli_fail (error);
    }
  ruv_cli_kv_options_clear (&kv_opts);
  backend = ruv_cpu_backend_new ();
  if (!ruv_cpu_backend_load_model (backend, model_path, config, NULL, &error))
    return ruv_cli_fail (error);
  if (lora_path != NULL)
    {
      RuvModel *model = ruv_cpu_backend_get_model (backend);

      lora = ruv_lora_gguf_import (model, lora_path, NULL, &error);
      if (lora == NULL)
        return ruv_cli_fail (error);
      ruv_cpu_backend_set_lora (backend, lora);
    }

  if (ids == NULL && json)
    {
      /* Tokenized as generate() would (BOS per metadata, special tokens
       * parsed), so the per-token lines come from the token path. */
      ids = ruv_tokenizer_encode (ruv_cpu_backend_get_tokenizer (backend), prompt, -1, TRUE,
                                  TRUE, &error);
      if (ids == NULL)
        return ruv_cli_fail (error);
    }
  if (ids != NULL)
    res = ruv_cpu_backend_generate_tokens (backend, (const gint32 *) ids->data, ids->len,
                                           params, json ? NULL : print_text, NULL,
                                           json ? print_token_json : NULL, NULL, NULL, &error);
  else
    res = ruv_cpu_backend_generate (backend, prompt, params, print_text, NULL, NULL, &error);
  if (res == NULL)
    return ruv_cli_fail (error);

  if (json)
    {
      g_autoptr(GString) kv = g_string_new (NULL);
      RuvKvCacheStats st;

      ruv_cpu_backend_get_kv_stats (backend, &st);
      ruv_cli_kv_json_stats (kv, &st, config->kv_cache_config.store_precision);
      printf ("{\"done\":true,\"reason\":\"%s\",\"n_prompt\":%" G_GINT64_FORMAT
              ",\"n_gen\":%" G_GINT64_FORMAT ",\"pp_tps\":%.3f,\"tg_tps\":%.3f,%s}\n",
              ruv_finish_reason_name (res->finish_reason), res->n_prompt, res->n_gen,
              res->prompt_tps, res->gen_tps, kv->str);
    }
  else
    {
      printf ("\n");
      fprintf (stderr, "[%s: %" G_GINT64_FORMAT " prompt tokens (%.1f t/s), %" G_GINT64_FORMAT
               " generated (%.1f t/s), first token after %.0f ms, seed %" G_GUINT64_FORMAT "]\n",
               ruv_finish_reason_name (res->finish_reason), res->n_prompt, res->prompt_tps,
               res->n_gen, res->gen_tps, res->ttft_ms, res->seed);
    }
  return RUV_CLI_EXIT_OK;
}
