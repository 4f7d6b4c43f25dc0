/* ruv-model-config.c — model loading configuration and its defaults.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-error.h"
#include "ruv-model-config.h"

G_DEFINE_BOXED_TYPE (RuvModelConfig, ruv_model_config,
                     ruv_model_config_copy, ruv_model_config_free)

/* Upper bound for max_context: 2^20 tokens; a bigger value is a typo, and
 * the KV cache for it would not fit any machine this runs on. */
#define MAX_CONTEXT (1u << 20)
#define MAX_THREADS 1024u

void
ruv_kv_cache_config_init (RuvKvCacheConfig *config)
{
  g_return_if_fail (config != NULL);

  config->tail_length = 256;
  config->tail_precision = RUV_PRECISION_FP16;
  config->store_precision = RUV_PRECISION_Q4;
  config->max_tokens = 4096;
  config->num_kv_heads = 0;
  config->head_dim = 0;
  config->migration_batch = 64;
  config->q8_layers = 1;
}

RuvModelConfig *
ruv_model_config_new (void)
{
  RuvModelConfig *self = g_new0 (RuvModelConfig, 1);

  self->max_context = 4096;
  self->use_flash_attention = TRUE;
  self->quantization = RUV_PRECISION_Q4K;
  ruv_kv_cache_config_init (&self->kv_cache_config);
  self->device = RUV_DEVICE_TYPE_CPU;
  self->hf_token = NULL;
  self->n_threads = 0;
  return self;
}

RuvModelConfig *
ruv_model_config_copy (const RuvModelConfig *self)
{
  RuvModelConfig *copy;

  g_return_val_if_fail (self != NULL, NULL);

  copy = g_memdup2 (self, sizeof *self);
  copy->hf_token = g_strdup (self->hf_token);
  return copy;
}

void
ruv_model_config_free (RuvModelConfig *self)
{
  if (self == NULL)
    return;
  g_free (self->hf_token);
  g_free (self);
}

void
ruv_model_config_set_hf_token (RuvModelConfig *self,
                               const char     *token)
{
  g_return_if_fail (self != NULL);

  g_free (self->hf_token);
  self->hf_token = g_strdup (token);
}

gboolean
ruv_model_config_validate (const RuvModelConfig  *self,
                           GError               **error)
{
  g_return_val_if_fail (self != NULL, FALSE);

  if (self->max_context < 1 || self->max_context > MAX_CONTEXT)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "context size %u is out of range (1 to %u tokens)",
                   self->max_context, MAX_CONTEXT);
      return FALSE;
    }
  if (self->n_threads > MAX_THREADS)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "thread count %u is out of range (0 for all CPUs, up to %u)",
                   self->n_threads, MAX_THREADS);
      return FALSE;
    }
  if (ruv_precision_bits_per_element (self->quantization) == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "unknown quantization %d",
                   (int) self->quantization);
      return FALSE;
    }
  if (!ruv_device_type_is_available (self->device))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_BACKEND,
                   "the %s device is not built into this version of RuvLLM; use the CPU",
                   ruv_device_type_name (self->device));
      return FALSE;
    }
  return TRUE;
}
