/* cli-bench.c — `ruvllm-cli bench -m MODEL [-p 512] [-n 128] [-t 2] [-r 3] [--json]`.
 * SPDX-License-Identifier: MIT
 *
 * llama-bench's method, so the numbers compare with `llama-bench` / `lref
 * bench` on the same file: a context of p + n tokens; a warm-up (one prompt
 * batch, one generated token); then per repetition, with the cache cleared,
 *   pp: p random tokens (BOS first when the model adds one) in one batch of
 *       up to 512, logits of the last only;
 *   tg: n single-token decodes of random tokens, each with its logits.
 * tokens/s = tokens / wall time of that part; we print the median, min and
 * max over the repetitions (llama-bench prints mean and stddev), and the
 * process's peak RSS (getrusage ru_maxrss) at the end.
 *
 * Time to first token (ttft_ms): the pp run above, from an empty cache with
 * the model loaded and the pool started (load excluded), plus picking the
 * first token from the last position's logits with the default sampling
 * parameters (temperature 0.7, top_p 0.9, repetition penalty 1.1 over the
 * prompt): the moment generate would stream its first token, as
 * RuvGenerateResult's ttft_ms counts it. It is not part of the pp rate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "ruv-forward.h"
#include "ruv-generate-params.h"
#include "ruv-model.h"
#include "ruv-sampler.h"
#include "ruv-tokenizer.h"
#include "cli-kv.h"
#include "ruvllm-cli.h"

#define BATCH 512

typedef struct
{
  double median, min, max;
} Stat;

static int
cmp_double (const void *a,
            const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static Stat
stat_of (double *v,
         int     n)
{
  Stat s;

  qsort (v, (size_t) n, sizeof (double), cmp_double);
  s.min = v[0];
  s.max = v[n - 1];
  s.median = n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return s;
}

static gboolean
run_pp (RuvContext  *ctx,
        gint32      *tokens,
        int          n,
        gint32       bos,
        gint64       n_vocab,
        float       *logits,
        GError     **error)
{
  int i, done;

  for (i = 0; i < n; i++)
    tokens[i] = (gint32) g_random_int_range (0, (gint32) n_vocab);
  if (bos != RUV_TOKEN_NULL)
    tokens[0] = bos;
  for (done = 0; done < n; done += BATCH)
    {
      int m = MIN (BATCH, n - done);

      if (!ruv_context_decode (ctx, tokens + done, m, done, done + m == n ? logits : NULL,
                               FALSE, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
run_tg (RuvContext  *ctx,
        int          n,
        int          pos0,
        gint64       n_vocab,
        float       *logits,
        GError     **error)
{
  gint32 token = (gint32) g_random_int_range (0, (gint32) n_vocab);
  int i;

  for (i = 0; i < n; i++)
    {
      if (!ruv_context_decode (ctx, &token, 1, pos0 + i, logits, FALSE, error))
        return FALSE;
      token = (gint32) g_random_int_range (0, (gint32) n_vocab);
    }
  return TRUE;
}

static double
now (void)
{
  return (double) g_get_monotonic_time () / G_USEC_PER_SEC;
}

int
ruv_cli_bench (int    argc,
               char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvModel) model = NULL;
  g_autoptr(RuvTokenizer) tok = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  g_autofree char *model_path = NULL;
  g_autofree float *logits = NULL;
  g_autofree gint32 *tokens = NULL;
  g_autofree double *pp_tps = NULL;
  g_autofree double *tg_tps = NULL;
  g_autofree double *ttft = NULL;
  g_autoptr(RuvGenerateParams) gen_params = NULL;
  RuvContextParams cp;
  RuvCliKvOptions kv_opts;
  gboolean json = FALSE;
  int p = 512, n = 128, threads = 2, reps = 3, depth = 0, r;
  gint64 n_vocab;
  gint32 bos = RUV_TOKEN_NULL;
  struct rusage ru;
  Stat pp = { 0 }, tg = { 0 }, ft = { 0 };
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL" },
    { "n-prompt", 'p', 0, G_OPTION_ARG_INT, &p, "Prompt tokens (512; 0 skips)", "P" },
    { "n-gen", 'n', 0, G_OPTION_ARG_INT, &n, "Generated tokens (128; 0 skips)", "N" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (2)", "T" },
    { "repetitions", 'r', 0, G_OPTION_ARG_INT, &reps, "Repetitions (3)", "R" },
    { "depth", 'd', 0, G_OPTION_ARG_INT, &depth,
      "Tokens in the cache before each tg run (llama-bench -d; 0)", "D" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "One JSON object", NULL },
    { NULL }
  };

  g_option_context_set_summary (context,
                                "Prompt processing and generation speed, measured as "
                                "llama-bench measures them.");
  g_option_context_add_main_entries (context, entries, NULL);
  ruv_cli_kv_options_init (&kv_opts);
  ruv_cli_kv_options_add (context, &kv_opts);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    {
      ruv_cli_kv_options_clear (&kv_opts);
      return RUV_CLI_EXIT_USAGE;
    }
  if (model_path == NULL || argc != 1 || p < 0 || n < 0 || p + n < 1 || threads < 1 ||
      reps < 1 || p > 1 << 20 || n > 1 << 20 || reps > 1000 || depth < 0 || depth > 1 << 20)
    {
      fprintf (stderr, "ruvllm-cli bench: -m MODEL is required; -p and -n >= 0 (not both 0), "
               "-t >= 1, -r in 1 .. 1000\n");
      return RUV_CLI_EXIT_USAGE;
    }

  model = ruv_model_new_from_file (model_path, &error);
  if (model == NULL)
    return ruv_cli_fail (error);
  tok = ruv_tokenizer_new_from_gguf (ruv_model_get_gguf (model), &error);
  if (tok == NULL)
    return ruv_cli_fail (error);
  if (ruv_tokenizer_get_add_bos (tok))
    bos = ruv_tokenizer_get_bos (tok);
  n_vocab = ruv_model_get_vocab_size (model);
  ruv_context_params_init (&cp);
  cp.n_ctx = p + n + depth;
  cp.n_batch = BATCH;
  cp.n_threads = threads;
  if (!ruv_cli_kv_options_apply (&kv_opts, &cp, &error))
    {
      ruv_cli_kv_options_clear (&kv_opts);
      return ruv_cli_fail (error);
    }
  ruv_cli_kv_options_clear (&kv_opts);
  ctx = ruv_context_new (model, &cp, &error);
  if (ctx == NULL)
    return ruv_cli_fail (error);
  logits = g_new (float, n_vocab);
  tokens = g_new (gint32, MAX (MAX (p, depth), 1));
  pp_tps = g_new0 (double, reps);
  tg_tps = g_new0 (double, reps);
  ttft = g_new0 (double, reps);
  gen_params = ruv_generate_params_new ();

  /* Warm-up: page the weights in, start the pool. */
  if ((p > 0 && !run_pp (ctx, tokens, MIN (p, BATCH), bos, n_vocab, logits, &error)) ||
      (n > 0 && (ruv_context_kv_clear (ctx), !run_tg (ctx, 1, 0, n_vocab, logits, &error))))
    return ruv_cli_fail (error);

  for (r = 0; r < reps; r++)
    {
      double t0;

      if (p > 0)
        {
          g_autoptr(RuvSampler) sampler = ruv_sampler_new (gen_params, (int) n_vocab);
          double t1;
          int i;

          ruv_context_kv_clear (ctx);
          t0 = now ();
          if (!run_pp (ctx, tokens, p, bos, n_vocab, logits, &error))
            return ruv_cli_fail (error);
          t1 = now ();
          pp_tps[r] = p / (t1 - t0);
          for (i = 0; i < p; i++)
            ruv_sampler_accept (sampler, tokens[i]);
          (void) ruv_sampler_sample (sampler, logits);
          ttft[r] = (now () - t0) * 1000.0;
        }
      if (n > 0)
        {
          ruv_context_kv_clear (ctx);
          /* the depth is filled outside the timing */
          if (depth > 0 && !run_pp (ctx, tokens, depth, bos, n_vocab, NULL, &error))
            return ruv_cli_fail (error);
          t0 = now ();
          if (!run_tg (ctx, n, depth, n_vocab, logits, &error))
            return ruv_cli_fail (error);
          tg_tps[r] = n / (now () - t0);
        }
    }
  if (p > 0)
    {
      pp = stat_of (pp_tps, reps);
      ft = stat_of (ttft, reps);
    }
  if (n > 0)
    tg = stat_of (tg_tps, reps);
  getrusage (RUSAGE_SELF, &ru);

  if (json)
    {
      printf ("{\"model\":\"%s\",\"quantization\":\"%s\",\"threads\":%d,\"reps\":%d",
              ruv_model_get_path (model), ruv_model_get_quantization (model), threads, reps);
      if (p > 0)
        printf (",\"pp\":{\"n\":%d,\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}"
                ",\"ttft_ms\":{\"n_prompt\":%d,\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}",
                p, pp.median, pp.min, pp.max, p, ft.median, ft.min, ft.max);
      if (n > 0)
        printf (",\"tg\":{\"n\":%d,\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}", n, tg.median,
                tg.min, tg.max);
      {
        g_autoptr(GString) kv = g_string_new (NULL);

        ruv_cli_kv_json (kv, ctx);
        printf (",\"depth\":%d,%s", depth, kv->str);
      }
      printf (",\"peak_rss_bytes\":%lld}\n", (long long) ru.ru_maxrss * 1024);
    }
  else
    {
      printf ("model %s (%s), %d threads, %d repetitions\n", ruv_model_get_path (model),
              ruv_model_get_quantization (model), threads, reps);
      if (p > 0)
        {
          printf ("pp%-5d %10.2f t/s  (min %.2f, max %.2f)\n", p, pp.median, pp.min, pp.max);
          printf ("ttft    %10.2f ms   (min %.2f, max %.2f; %d-token prompt + first sample)\n",
                  ft.median, ft.min, ft.max, p);
        }
      if (n > 0)
        printf ("tg%-5d %10.2f t/s  (min %.2f, max %.2f)\n", n, tg.median, tg.min, tg.max);
      {
        RuvKvCacheStats st;

        ruv_context_get_kv_stats (ctx, &st);
        printf ("kv %s: %" G_GINT64_FORMAT " tokens (tail %" G_GINT64_FORMAT ", store %"
                G_GINT64_FORMAT "), %.1f MiB, %.2fx smaller than FP16; tg depth %d\n",
                ruv_precision_name (ruv_context_get_kv_store_precision (ctx)), st.total_tokens,
                st.tail_tokens, st.store_tokens,
                (double) (st.tail_bytes + st.store_bytes) / (1 << 20), st.compression_ratio,
                depth);
      }
      printf ("peak RSS %.1f MiB\n", (double) ru.ru_maxrss / 1024.0);
    }
  return RUV_CLI_EXIT_OK;
}
