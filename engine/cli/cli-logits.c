/* cli-logits.c — `ruvllm-cli logits -m MODEL --tokens 1,2,3 [--top K] --json`:
 * teacher-forced raw logits at every position, the basis of comparisons with
 * other engines (lref score prints the same quantities).
 * SPDX-License-Identifier: MIT
 *
 * One line per position i (JSON):
 *   {"pos":i,"id":tokens[i],"argmax":a,"lse":log-sum-exp,
 *    "next":tokens[i+1],"next_logit":x,           (absent at the last position)
 *    "top":[[id,logit],...]}                     (K best, descending)
 * --dump FILE writes every position's n_vocab logits as little-endian float32
 * (as lref score --dump does) for element-wise comparison.
 */
#include <math.h>
#include <stdio.h>

#include "rk.h"
#include "ruv-forward.h"
#include "ruv-lora-gguf.h"
#include "ruv-model.h"
#include "cli-kv.h"
#include "ruvllm-cli.h"

/* Positions per forward call: bounds the logits buffer (rows x n_vocab). */
#define CHUNK 128

static double
log_sum_exp (const float *x,
             gint64       n,
             float        max)
{
  double s = 0.0;
  gint64 i;

  for (i = 0; i < n; i++)
    s += exp ((double) x[i] - max);
  return max + log (s);
}

static void
print_position (const gint32 *tokens,
                gint64        n_tokens,
                gint64        pos,
                const float  *row,
                gint64        n_vocab,
                int           top,
                gboolean      json,
                gint32       *idx,
                float        *val)
{
  double lse;
  int j;

  rk_top_k (row, (int) n_vocab, top, idx, val);
  lse = log_sum_exp (row, n_vocab, val[0]);
  if (json)
    {
      printf ("{\"pos\":%" G_GINT64_FORMAT ",\"id\":%d,\"argmax\":%d,\"lse\":%.9g",
              pos, tokens[pos], idx[0], lse);
      if (pos + 1 < n_tokens)
        printf (",\"next\":%d,\"next_logit\":%.9g", tokens[pos + 1], row[tokens[pos + 1]]);
      printf (",\"top\":[");
      for (j = 0; j < top; j++)
        printf ("%s[%d,%.9g]", j > 0 ? "," : "", idx[j], val[j]);
      printf ("]}\n");
    }
  else
    {
      printf ("pos %4" G_GINT64_FORMAT "  id %6d  argmax %6d", pos, tokens[pos], idx[0]);
      if (pos + 1 < n_tokens)
        printf ("  next %6d logprob %8.4f", tokens[pos + 1],
                (double) row[tokens[pos + 1]] - lse);
      printf ("  top");
      for (j = 0; j < top; j++)
        printf (" %d:%.4f", idx[j], val[j]);
      printf ("\n");
    }
}

int
ruv_cli_logits (int    argc,
                char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvModel) model = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autofree char *model_path = NULL;
  g_autofree char *tokens_text = NULL;
  g_autofree char *dump_path = NULL;
  g_autofree char *lora_path = NULL;
  g_autoptr(RuvMicroLora) lora = NULL;
  FILE *dump = NULL;
  g_autofree float *logits = NULL;
  g_autofree gint32 *idx = NULL;
  g_autofree float *val = NULL;
  RuvContextParams params;
  RuvCliKvOptions kv_opts;
  gboolean json = FALSE;
  int top = 5, threads = 0;
  gint64 n_ctx = 0, n, n_vocab, start, i;
  const gint32 *tokens;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL" },
    { "tokens", 0, 0, G_OPTION_ARG_STRING, &tokens_text, "Token ids", "1,2,3" },
    { "top", 0, 0, G_OPTION_ARG_INT, &top, "Logits to print per position (5)", "K" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (default: all CPUs)", "N" },
    { "ctx-size", 'c', 0, G_OPTION_ARG_INT64, &n_ctx, "Context size (default: the tokens)",
      "CTX" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "One JSON object per position", NULL },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME, &lora_path, "Apply this GGUF LoRA adapter",
      "A.gguf" },
    { "dump", 0, 0, G_OPTION_ARG_FILENAME, &dump_path,
      "Write all logits as raw float32 to FILE", "FILE" },
    { NULL }
  };

  g_option_context_set_summary (context,
                                "Teacher-forced raw logits at every position of a token list.");
  g_option_context_add_main_entries (context, entries, NULL);
  ruv_cli_kv_options_init (&kv_opts);
  ruv_cli_kv_options_add (context, &kv_opts);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    {
      ruv_cli_kv_options_clear (&kv_opts);
      return RUV_CLI_EXIT_USAGE;
    }
  if (model_path == NULL || tokens_text == NULL || argc != 1)
    {
      fprintf (stderr, "ruvllm-cli logits: -m MODEL and --tokens are required\n");
      return RUV_CLI_EXIT_USAGE;
    }
  ids = ruv_cli_parse_tokens (tokens_text, &error);
  if (ids == NULL)
    return ruv_cli_fail (error);
  n = ids->len;
  tokens = (const gint32 *) ids->data;

  model = ruv_model_new_from_file (model_path, &error);
  if (model == NULL)
    return ruv_cli_fail (error);
  n_vocab = ruv_model_get_vocab_size (model);
  if (top < 1 || top > n_vocab)
    {
      fprintf (stderr, "ruvllm-cli logits: --top must be in 1 .. %" G_GINT64_FORMAT "\n",
               n_vocab);
      return RUV_CLI_EXIT_USAGE;
    }

  ruv_context_params_init (&params);
  params.n_ctx = n_ctx > 0 ? n_ctx : MIN (n, ruv_model_get_context_length (model));
  params.n_threads = threads;
  if (!ruv_cli_kv_options_apply (&kv_opts, &params, &error))
    {
      ruv_cli_kv_options_clear (&kv_opts);
      return ruv_cli_fail (error);
    }
  ruv_cli_kv_options_clear (&kv_opts);
  ctx = ruv_context_new (model, &params, &error);
  if (ctx == NULL)
    return ruv_cli_fail (error);
  if (lora_path != NULL)
    {
      lora = ruv_lora_gguf_import (model, lora_path, NULL, &error);
      if (lora == NULL)
        return ruv_cli_fail (error);
      ruv_context_set_lora (ctx, lora);
    }

  logits = g_try_new (float, (gsize) MIN (n, CHUNK) * n_vocab);
  idx = g_new (gint32, top);
  val = g_new (float, top);
  if (logits == NULL)
    {
      fprintf (stderr, "ruvllm-cli logits: out of memory\n");
      return RUV_CLI_EXIT_ERROR;
    }
  if (dump_path != NULL && (dump = fopen (dump_path, "wb")) == NULL)
    {
      fprintf (stderr, "ruvllm-cli logits: cannot write %s\n", dump_path);
      return RUV_CLI_EXIT_ERROR;
    }
  for (start = 0; start < n; start += CHUNK)
    {
      gint64 m = MIN (CHUNK, n - start);

      if (!ruv_context_decode (ctx, tokens + start, m, start, logits, TRUE, &error))
        {
          if (dump != NULL)
            fclose (dump);
          return ruv_cli_fail (error);
        }
      for (i = 0; i < m; i++)
        print_position (tokens, n, start + i, logits + i * n_vocab, n_vocab, top, json,
                        idx, val);
      /* Host order is little-endian on every platform we build for. */
      if (dump != NULL)
        fwrite (logits, sizeof (float), (gsize) (m * n_vocab), dump);
    }
  if (dump != NULL && fclose (dump) != 0)
    {
      fprintf (stderr, "ruvllm-cli logits: error writing %s\n", dump_path);
      return RUV_CLI_EXIT_ERROR;
    }
  if (json)
    {
      /* a summary line after the positions */
      g_autoptr(GString) line = g_string_new ("{\"positions\":");

      g_string_append_printf (line, "%" G_GINT64_FORMAT ",", n);
      ruv_cli_kv_json (line, ctx);
      printf ("%s}\n", line->str);
    }
  return RUV_CLI_EXIT_OK;
}
