/* ruv-forward.h — the forward pass: a context with its KV cache, scratch
 * buffers and thread pool, batched prefill and single-token decode.
 * SPDX-License-Identifier: MIT
 *
 * A context belongs to one thread at a time; several contexts may share one
 * RuvModel. Positions are contiguous: decoding at pos0 keeps the first pos0
 * cached tokens and drops the rest.
 */
#pragma once

#include <glib.h>

#include "ruv-kv-cache.h"
#include "ruv-model-config.h"
#include "ruv-model.h"
#include "ruv-types.h"

G_BEGIN_DECLS

typedef struct _RuvContext RuvContext;

typedef struct
{
  gint64 n_ctx;       /* KV capacity in tokens; 0: min (context_length, 4096) */
  gint   n_batch;     /* most tokens per forward step (longer inputs are split);
                       * 0: 512 */
  gint   n_threads;   /* threads incl. the caller; 0: the online CPUs */
  /* The KV cache: by default the two-tier cache (FP16 tail of 256 tokens,
   * Q4 store). num_kv_heads and head_dim 0 (or the model's) take the model's;
   * the capacity is n_ctx (max_tokens is not read) and tail_length is cut to
   * n_ctx. store_precision FP16 with an FP16 tail is a plain FP16 cache;
   * store_precision FP32 selects the simple f32 cache (kept for comparison). */
  RuvKvCacheConfig kv_cache;
} RuvContextParams;

void        ruv_context_params_init      (RuvContextParams       *params);

RuvContext *ruv_context_new              (RuvModel               *model,
                                          const RuvContextParams *params,
                                          GError                **error);
void        ruv_context_free             (RuvContext             *ctx);

RuvModel   *ruv_context_get_model        (RuvContext             *ctx);
gint64      ruv_context_get_n_ctx        (RuvContext             *ctx);
gint        ruv_context_get_n_threads    (RuvContext             *ctx);
/* Tokens held in the KV cache (positions 0 .. n_past - 1). */
gint64      ruv_context_get_n_past       (RuvContext             *ctx);

/* Runs tokens[0..n) at positions pos0 .. pos0 + n - 1 (pos0 <= n_past; the
 * cache is first cut to pos0). With logits != NULL writes the raw logits of
 * the last token (n_vocab floats), or of every token when want_all_logits
 * (n * n_vocab floats, row i for position pos0 + i). Errors: RUV_ERROR_CONFIG
 * for positions past the context, a gap after n_past, a token id outside the
 * vocabulary or n < 1. */
gboolean    ruv_context_decode           (RuvContext             *ctx,
                                          const gint32           *tokens,
                                          gint64                  n,
                                          gint64                  pos0,
                                          float                  *logits,
                                          gboolean                want_all_logits,
                                          GError                **error);

/* Forget every cached token / keep only the first n_keep. */
void        ruv_context_kv_clear         (RuvContext             *ctx);
void        ruv_context_kv_truncate      (RuvContext             *ctx,
                                          gint64                  n_keep);

/* Context shift: drops cached positions [begin, end); later tokens move to
 * begin.. with their keys re-rotated (RoPE) by begin - end, so decoding can
 * go on at n_past - (end - begin). RUV_ERROR_KV_CACHE for a bad range,
 * RUV_ERROR_OUT_OF_MEMORY when the pool cannot hold the moved tokens; on
 * error the cache and n_past are unchanged. */
gboolean    ruv_context_kv_shift         (RuvContext             *ctx,
                                          gint64                  begin,
                                          gint64                  end,
                                          GError                **error);

/* Saves the KV cache (two-tier only) with the caller's bytes under one
 * checksum / restores it, n_past becoming the restored token count; a state
 * refused (other fingerprint or layout, corrupt) leaves the cache as it was.
 * See ruv_two_tier_kv_cache_save_with_data. RUV_ERROR_KV_CACHE / RUV_ERROR_IO. */
gboolean    ruv_context_kv_save          (RuvContext             *ctx,
                                          const char             *path,
                                          const char             *fingerprint,
                                          const void             *data,
                                          gsize                   data_len,
                                          GError                **error);
gboolean    ruv_context_kv_restore       (RuvContext             *ctx,
                                          const char             *path,
                                          const char             *fingerprint,
                                          GBytes                **data,
                                          GError                **error);

/* Live KV statistics (any thread may call this while another decodes). */
void        ruv_context_get_kv_stats     (RuvContext             *ctx,
                                          RuvKvCacheStats        *stats);
/* The cache's precisions ("Q4", "FP16", ...; "FP32" for the simple cache). */
RuvPrecision ruv_context_get_kv_store_precision (RuvContext      *ctx);

/* Mapped weights, KV cache, scratch and process RSS. */
void        ruv_context_get_memory_stats (RuvContext             *ctx,
                                          RuvMemoryStats         *stats);

/* MicroLoRA adapters (ruv-lora.h) applied on every token, prefill and decode
 * (NULL: none; the context keeps a reference). A disabled adapter leaves the
 * base logits bit-identical. */
struct _RuvMicroLora;
void        ruv_context_set_lora         (RuvContext             *ctx,
                                          struct _RuvMicroLora   *lora);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvContext, ruv_context_free)

G_END_DECLS
