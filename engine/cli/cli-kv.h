/* cli-kv.h — the KV cache options shared by generate, logits and bench:
 * --kv-store f16|q8|q4|f32, --kv-tail N, --kv-max N, --kv-q8-layers N, and the JSON "kv"
 * summary object. SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

#include "ruv-forward.h"
#include "ruv-model-config.h"

G_BEGIN_DECLS

typedef struct
{
  char  *store;   /* "f16", "q8", "q4" (default), "f32" (the simple cache) */
  gint   tail;    /* tokens in the FP16 tail; -1: the default (256) */
  gint64 max;     /* KV capacity in tokens (the context size); 0: default */
  gint   q8_layers; /* first layers of a Q4 store kept in Q8; -1: the default (1) */
} RuvCliKvOptions;

/* Adds the options to context's main group; opts starts zeroed except
 * tail = q8_layers = -1 (ruv_cli_kv_options_init). */
void     ruv_cli_kv_options_init  (RuvCliKvOptions        *opts);
void     ruv_cli_kv_options_add   (GOptionContext         *context,
                                   RuvCliKvOptions        *opts);
void     ruv_cli_kv_options_clear (RuvCliKvOptions        *opts);
/* Writes the options into params (kv_cache, and n_ctx for --kv-max).
 * RUV_ERROR_CONFIG for an unknown store or a negative count. */
gboolean ruv_cli_kv_options_apply (const RuvCliKvOptions  *opts,
                                   RuvContextParams       *params,
                                   GError                **error);
/* The same for a model configuration (--kv-max sets max_context). */
gboolean ruv_cli_kv_options_apply_config (const RuvCliKvOptions *opts,
                                          RuvModelConfig        *config,
                                          GError               **error);
/* Appends "kv":{"store":"Q4","total_tokens":…,"tail_tokens":…,
 * "store_tokens":…,"tail_bytes":…,"store_bytes":…,"compression_ratio":…}
 * (no leading comma). */
void     ruv_cli_kv_json          (GString                *out,
                                   RuvContext             *ctx);
void     ruv_cli_kv_json_stats    (GString                *out,
                                   const RuvKvCacheStats  *stats,
                                   RuvPrecision            store);

G_END_DECLS
