/* ruv-model-config.h — how a model is loaded (the reference's ModelConfig).
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

#include "ruv-types.h"

G_BEGIN_DECLS

/**
 * RuvKvCacheConfig:
 * @tail_length: tokens kept in the high-precision tail (default 256)
 * @tail_precision: precision of the tail (default FP16)
 * @store_precision: precision of the quantized store (default Q4)
 * @max_tokens: most tokens held (default 4096)
 * @num_kv_heads: KV heads; 0 takes the model's
 * @head_dim: head dimension; 0 takes the model's
 * @migration_batch: tokens moved from tail to store at once (default 64)
 * @q8_layers: the first this many layers store more bits: Q8 (or Q7) in a Q4
 *   store, Q10 in a Q8 store, within the store's memory target (default 1:
 *   layer 0's keys and values carry most of a store's error; not in the
 *   reference)
 *
 * The reference's KvCacheConfig, held by value in RuvModelConfig. The simple
 * KV cache of ruv-forward.c keeps every token in F32 and reads none of these
 * yet; the two-tier cache (ruv-kv-cache.c) is configured from them.
 */
typedef struct
{
  guint        tail_length;
  RuvPrecision tail_precision;
  RuvPrecision store_precision;
  guint        max_tokens;
  guint        num_kv_heads;
  guint        head_dim;
  guint        migration_batch;
  guint        q8_layers;
} RuvKvCacheConfig;

void ruv_kv_cache_config_init (RuvKvCacheConfig *config);

#define RUV_TYPE_MODEL_CONFIG (ruv_model_config_get_type ())

/**
 * RuvModelConfig:
 * @max_context: context size in tokens (default 4096; capped at the model's
 *   training context when loading)
 * @use_flash_attention: use the tiled attention kernel (default TRUE)
 * @quantization: weight precision wanted when downloading (default Q4K); a
 *   local GGUF file is used as it is
 * @kv_cache_config: the KV cache's configuration
 * @device: compute device (default CPU; only CPU is built in)
 * @hf_token: Hugging Face token for gated models, or NULL
 * @n_threads: compute threads incl. the caller, 0 for all online CPUs
 *
 * A boxed, copyable value; fields are public as in a C struct. The reference
 * defaults to Metal; a Linux C app defaults to the CPU.
 */
typedef struct
{
  guint            max_context;
  gboolean         use_flash_attention;
  RuvPrecision     quantization;
  RuvKvCacheConfig kv_cache_config;
  RuvDeviceType    device;
  char            *hf_token;
  guint            n_threads;
} RuvModelConfig;

GType           ruv_model_config_get_type (void) G_GNUC_CONST;
RuvModelConfig *ruv_model_config_new      (void) G_GNUC_WARN_UNUSED_RESULT;
RuvModelConfig *ruv_model_config_copy     (const RuvModelConfig *self);
void            ruv_model_config_free     (RuvModelConfig       *self);
void            ruv_model_config_set_hf_token (RuvModelConfig   *self,
                                               const char       *token);
/* RUV_ERROR_CONFIG for values out of range, RUV_ERROR_BACKEND for a device
 * this build does not compute on. */
gboolean        ruv_model_config_validate (const RuvModelConfig *self,
                                           GError              **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvModelConfig, ruv_model_config_free)

G_END_DECLS
