/* cli-kv.c — the KV cache options shared by generate, logits and bench.
 * SPDX-License-Identifier: MIT
 */
#include "cli-kv.h"
#include "ruv-error.h"

void
ruv_cli_kv_options_init (RuvCliKvOptions *opts)
{
  opts->store = NULL;
  opts->tail = -1;
  opts->q8_layers = -1;
  opts->max = 0;
}

void
ruv_cli_kv_options_clear (RuvCliKvOptions *opts)
{
  g_clear_pointer (&opts->store, g_free);
}

void
ruv_cli_kv_options_add (GOptionContext  *context,
                        RuvCliKvOptions *opts)
{
  GOptionEntry entries[] = {
    { "kv-store", 0, 0, G_OPTION_ARG_STRING, &opts->store,
      "KV store precision: q4 (default), q8, f16 (a plain FP16 cache) or f32 (the simple "
      "f32 cache)", "f16|q8|q4|f32" },
    { "kv-tail", 0, 0, G_OPTION_ARG_INT, &opts->tail,
      "Recent tokens kept in the FP16 tail (default 256)", "N" },
    { "kv-max", 0, 0, G_OPTION_ARG_INT64, &opts->max,
      "KV cache capacity in tokens (sets the context size)", "N" },
    { "kv-q8-layers", 0, 0, G_OPTION_ARG_INT, &opts->q8_layers,
      "The first N layers store more bits: Q8 in a q4 store, Q10 in a q8 store (default 1)",
      "N" },
    { NULL }
  };

  g_option_context_add_main_entries (context, entries, NULL);
}

static gboolean
parse (const RuvCliKvOptions *opts,
       RuvKvCacheConfig      *kv,
       GError               **error)
{
  if (opts->store != NULL)
    {
      if (g_ascii_strcasecmp (opts->store, "q4") == 0)
        kv->store_precision = RUV_PRECISION_Q4;
      else if (g_ascii_strcasecmp (opts->store, "q8") == 0)
        kv->store_precision = RUV_PRECISION_Q8;
      else if (g_ascii_strcasecmp (opts->store, "f16") == 0)
        kv->store_precision = RUV_PRECISION_FP16;
      else if (g_ascii_strcasecmp (opts->store, "f32") == 0)
        kv->store_precision = RUV_PRECISION_FP32;
      else
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                       "--kv-store must be f16, q8, q4 or f32, not \"%s\"", opts->store);
          return FALSE;
        }
    }
  if (opts->tail < -1 || opts->max < 0 || opts->max > G_MAXINT32)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "--kv-tail and --kv-max must be 0 .. 2^31");
      return FALSE;
    }
  if (opts->q8_layers < -1)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "--kv-q8-layers must be 0 or more");
      return FALSE;
    }
  if (opts->tail >= 0)
    kv->tail_length = (guint) opts->tail;
  if (opts->q8_layers >= 0)
    kv->q8_layers = (guint) opts->q8_layers;
  return TRUE;
}

gboolean
ruv_cli_kv_options_apply (const RuvCliKvOptions *opts,
                          RuvContextParams      *params,
                          GError               **error)
{
  if (!parse (opts, &params->kv_cache, error))
    return FALSE;
  if (opts->max > 0)
    params->n_ctx = opts->max;
  return TRUE;
}

gboolean
ruv_cli_kv_options_apply_config (const RuvCliKvOptions *opts,
                                 RuvModelConfig        *config,
                                 GError               **error)
{
  if (!parse (opts, &config->kv_cache_config, error))
    return FALSE;
  if (opts->max > 0)
    config->max_context = (guint) opts->max;
  return TRUE;
}

void
ruv_cli_kv_json_stats (GString               *out,
                       const RuvKvCacheStats *st,
                       RuvPrecision           store)
{
  char ratio[G_ASCII_DTOSTR_BUF_SIZE];

  g_ascii_formatd (ratio, sizeof ratio, "%.4f", st->compression_ratio);
  g_string_append_printf (out,
                          "\"kv\":{\"store\":\"%s\",\"total_tokens\":%" G_GINT64_FORMAT
                          ",\"tail_tokens\":%" G_GINT64_FORMAT ",\"store_tokens\":%"
                          G_GINT64_FORMAT ",\"tail_bytes\":%" G_GUINT64_FORMAT
                          ",\"store_bytes\":%" G_GUINT64_FORMAT ",\"compression_ratio\":%s"
                          ",\"block_bytes\":%" G_GUINT64_FORMAT "}",
                          ruv_precision_name (store), st->total_tokens, st->tail_tokens,
                          st->store_tokens, st->tail_bytes, st->store_bytes, ratio,
                          st->block_bytes);
}

void
ruv_cli_kv_json (GString    *out,
                 RuvContext *ctx)
{
  RuvKvCacheStats st;

  ruv_context_get_kv_stats (ctx, &st);
  ruv_cli_kv_json_stats (out, &st, ruv_context_get_kv_store_precision (ctx));
}
