/* ruv-cpu-backend.c — RuvCpuBackend: tokenize, prefill, sample, stream.
 * SPDX-License-Identifier: MIT
 *
 * Locking: `lock` is held for a whole request or model load, so requests run
 * one at a time and a load waits for a running request. `info_lock` guards
 * the model/tokenizer/context pointers for the short readers (is_loaded,
 * model info, memory stats) so they never wait for a request; the pointers
 * change only with both held.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "ruv-cpu-backend.h"
#include "ruv-error.h"
#include "ruv-forward.h"
#include "ruv-model.h"
#include "ruv-sampler.h"
#include "ruv-sona.h"
#include "ruv-stop-matcher.h"

/* Prompt tokens per forward call: the cancellable is checked between them. */
#define PREFILL_CHUNK 512
/* Response tokens a generation keeps activations of, for rating (learning). */
#define TRACE_MAX_TOKENS 256

struct _RuvCpuBackend
{
  GObject        parent_instance;

  RuvDeviceType  device;
  GMutex         lock;
  GMutex         info_lock;

  RuvModel      *model;
  RuvTokenizer  *tokenizer;
  RuvContext    *ctx;
  GArray        *kv_tokens;     /* gint32: the tokens cached at positions 0 .. n - 1 */
  /* The conversation the cache window belongs to is kv_tokens[0..drop_at) ++
   * dropped ++ kv_tokens[drop_at..]: `dropped` are the tokens a context shift
   * took out of the window (contiguous, oldest after the kept prefix). */
  GArray        *dropped;       /* gint32 */
  gint64         drop_at;
  char          *fingerprint;   /* model identity + context, for saved KV states */
  char          *kv_owner;      /* the state file of the chat the cache holds, or NULL */
  float         *logits;        /* n_vocab */
  float         *raw_logits;    /* n_vocab: a copy before sampling, for RuvTokenInfo */
  gint64         n_vocab;
  RuvSonaLlm    *sona;          /* learning: adapters + generation capture, or NULL */
  RuvMicroLora  *lora;          /* a fixed adapter set (no learning), or NULL */
  RuvSonaTrace  *last_trace;    /* the last generation's response trace */

  /* Properties: written by the thread driving the API (see the header). */
  guint          n_active;
  double         tokens_per_second;
  gint64         n_past;
};

static void ruv_cpu_backend_iface_init (RuvBackendInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (RuvCpuBackend, ruv_cpu_backend, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (RUV_TYPE_BACKEND,
                                                      ruv_cpu_backend_iface_init))

enum
{
  PROP_0,
  PROP_DEVICE,
  PROP_BUSY,
  PROP_TOKENS_PER_SECOND,
  PROP_N_PAST,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ---- properties ---------------------------------------------------------- */

static void
set_busy (RuvCpuBackend *self,
          gboolean       start)
{
  gboolean was = self->n_active > 0;

  if (start)
    self->n_active++;
  else if (self->n_active > 0)
    self->n_active--;
  if (was != (self->n_active > 0))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BUSY]);
}

static void
set_live_stats (RuvCpuBackend *self,
                double         tps,
                gint64         n_past)
{
  if (self->tokens_per_second != tps)
    {
      self->tokens_per_second = tps;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TOKENS_PER_SECOND]);
    }
  if (self->n_past != n_past)
    {
      self->n_past = n_past;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_PAST]);
    }
}

static void
ruv_cpu_backend_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  RuvCpuBackend *self = RUV_CPU_BACKEND (object);

  switch (prop_id)
    {
    case PROP_DEVICE:
      g_value_set_enum (value, self->device);
      break;
    case PROP_BUSY:
      g_value_set_boolean (value, self->n_active > 0);
      break;
    case PROP_TOKENS_PER_SECOND:
      g_value_set_double (value, self->tokens_per_second);
      break;
    case PROP_N_PAST:
      g_value_set_int64 (value, self->n_past);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
ruv_cpu_backend_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  RuvCpuBackend *self = RUV_CPU_BACKEND (object);

  switch (prop_id)
    {
    case PROP_DEVICE:
      self->device = g_value_get_enum (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
drop_model (RuvCpuBackend *self)
{
  g_mutex_lock (&self->info_lock);
  g_clear_pointer (&self->ctx, ruv_context_free);
  g_clear_object (&self->tokenizer);
  g_clear_object (&self->model);
  g_mutex_unlock (&self->info_lock);
  g_array_set_size (self->kv_tokens, 0);
  g_array_set_size (self->dropped, 0);
  g_clear_pointer (&self->fingerprint, g_free);
  g_clear_pointer (&self->kv_owner, g_free);
  g_clear_pointer (&self->logits, g_free);
  g_clear_pointer (&self->raw_logits, g_free);
  self->n_vocab = 0;
}

static void
ruv_cpu_backend_finalize (GObject *object)
{
  RuvCpuBackend *self = RUV_CPU_BACKEND (object);

  drop_model (self);
  g_clear_object (&self->sona);
  g_clear_object (&self->lora);
  g_clear_pointer (&self->last_trace, ruv_sona_trace_free);
  g_array_unref (self->kv_tokens);
  g_array_unref (self->dropped);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->info_lock);
  G_OBJECT_CLASS (ruv_cpu_backend_parent_class)->finalize (object);
}

static void
ruv_cpu_backend_class_init (RuvCpuBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = ruv_cpu_backend_get_property;
  object_class->set_property = ruv_cpu_backend_set_property;
  object_class->finalize = ruv_cpu_backend_finalize;

  properties[PROP_DEVICE] =
    g_param_spec_enum ("device", NULL, NULL, RUV_TYPE_DEVICE_TYPE, RUV_DEVICE_TYPE_CPU,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_BUSY] =
    g_param_spec_boolean ("busy", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_TOKENS_PER_SECOND] =
    g_param_spec_double ("tokens-per-second", NULL, NULL, 0.0, G_MAXDOUBLE, 0.0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_N_PAST] =
    g_param_spec_int64 ("n-past", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
ruv_cpu_backend_init (RuvCpuBackend *self)
{
  g_mutex_init (&self->lock);
  g_mutex_init (&self->info_lock);
  self->device = RUV_DEVICE_TYPE_CPU;
  self->kv_tokens = g_array_new (FALSE, FALSE, sizeof (gint32));
  self->dropped = g_array_new (FALSE, FALSE, sizeof (gint32));
}

RuvCpuBackend *
ruv_cpu_backend_new (void)
{
  return g_object_new (RUV_TYPE_CPU_BACKEND, NULL);
}

RuvCpuBackend *
ruv_cpu_backend_new_with_device (RuvDeviceType   device,
                                 GError        **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!ruv_device_type_is_available (device))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_BACKEND,
                   "the %s device is not built into this version of RuvLLM; use the CPU",
                   ruv_device_type_name (device));
      return NULL;
    }
  return g_object_new (RUV_TYPE_CPU_BACKEND, "device", device, NULL);
}

RuvDeviceType
ruv_cpu_backend_get_device (RuvCpuBackend *self)
{
  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), RUV_DEVICE_TYPE_CPU);
  return self->device;
}

gboolean
ruv_cpu_backend_get_busy (RuvCpuBackend *self)
{
  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), FALSE);
  return self->n_active > 0;
}

double
ruv_cpu_backend_get_tokens_per_second (RuvCpuBackend *self)
{
  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), 0.0);
  return self->tokens_per_second;
}

gint64
ruv_cpu_backend_get_n_past (RuvCpuBackend *self)
{
  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), 0);
  return self->n_past;
}

void
ruv_cpu_backend_get_memory_stats (RuvCpuBackend  *self,
                                  RuvMemoryStats *stats)
{
  g_return_if_fail (RUV_IS_CPU_BACKEND (self));
  g_return_if_fail (stats != NULL);

  g_mutex_lock (&self->info_lock);
  if (self->ctx != NULL)
    ruv_context_get_memory_stats (self->ctx, stats);
  else
    {
      memset (stats, 0, sizeof *stats);
      stats->rss_bytes = ruv_process_rss_bytes ();
    }
  g_mutex_unlock (&self->info_lock);
}

gboolean
ruv_cpu_backend_get_kv_stats (RuvCpuBackend   *self,
                              RuvKvCacheStats *stats)
{
  gboolean loaded;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), FALSE);
  g_return_val_if_fail (stats != NULL, FALSE);

  /* the cache's own lock makes this safe while a request decodes */
  g_mutex_lock (&self->info_lock);
  loaded = self->ctx != NULL;
  if (loaded)
    ruv_context_get_kv_stats (self->ctx, stats);
  else
    memset (stats, 0, sizeof *stats);
  g_mutex_unlock (&self->info_lock);
  return loaded;
}

gboolean
ruv_cpu_backend_is_loaded (RuvCpuBackend *self)
{
  gboolean loaded;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), FALSE);

  g_mutex_lock (&self->info_lock);
  loaded = self->ctx != NULL;
  g_mutex_unlock (&self->info_lock);
  return loaded;
}

RuvTokenizer *
ruv_cpu_backend_get_tokenizer (RuvCpuBackend *self)
{
  RuvTokenizer *tok;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), NULL);

  g_mutex_lock (&self->info_lock);
  tok = self->tokenizer;
  g_mutex_unlock (&self->info_lock);
  return tok;
}

RuvModel *
ruv_cpu_backend_get_model (RuvCpuBackend *self)
{
  RuvModel *model;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), NULL);

  g_mutex_lock (&self->info_lock);
  model = self->model;
  g_mutex_unlock (&self->info_lock);
  return model;
}

gint64
ruv_cpu_backend_get_n_ctx (RuvCpuBackend *self)
{
  gint64 n;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), 0);

  g_mutex_lock (&self->info_lock);
  n = self->ctx != NULL ? ruv_context_get_n_ctx (self->ctx) : 0;
  g_mutex_unlock (&self->info_lock);
  return n;
}

RuvModelInfo *
ruv_cpu_backend_get_model_info (RuvCpuBackend *self)
{
  RuvModelInfo *info = NULL;
  RuvModel *m;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), NULL);

  g_mutex_lock (&self->info_lock);
  m = self->model;
  if (m != NULL && self->ctx != NULL)
    {
      info = g_new0 (RuvModelInfo, 1);
      info->path = g_strdup (ruv_model_get_path (m));
      info->name = g_strdup (ruv_model_get_name (m));
      info->architecture = g_strdup (ruv_model_get_architecture (m));
      info->n_params = ruv_model_get_n_params (m);
      info->size_class = ruv_model_get_size_class (m);
      info->quantization = g_strdup (ruv_model_get_quantization (m));
      info->precision = ruv_model_get_precision (m);
      info->context_length = ruv_model_get_context_length (m);
      info->n_ctx = ruv_context_get_n_ctx (self->ctx);
      info->vocab_size = ruv_model_get_vocab_size (m);
      info->chat_template = g_strdup (ruv_model_get_chat_template (m));
      info->file_size = ruv_model_get_file_size (m);
    }
  g_mutex_unlock (&self->info_lock);
  return info;
}

/* ---- loading ------------------------------------------------------------- */

/* What a saved KV state must have been made with: the model file (its size
 * and SHA-256 over its first and last 4 MiB: the GGUF header, metadata and
 * the tensors there) and the context size. The cache layout (layers, heads,
 * precisions) is checked by the state file itself. */
static char *
model_fingerprint (const char  *path,
                   gint64       n_ctx,
                   GError     **error)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GMappedFile) mf = NULL;
  GError *local = NULL;
  const guint8 *data;
  gsize len, span = 4 << 20;

  mf = g_mapped_file_new (path, FALSE, &local);
  if (mf == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: %s", path, local->message);
      g_error_free (local);
      return NULL;
    }
  data = (const guint8 *) g_mapped_file_get_contents (mf);
  len = g_mapped_file_get_length (mf);
  if (data != NULL && len > 0)
    {
      g_checksum_update (sum, data, MIN (len, span));
      if (len > span)
        g_checksum_update (sum, data + len - MIN (len - span, span), MIN (len - span, span));
    }
  return g_strdup_printf ("ruvllm-kv model-sha256-head-tail=%s size=%" G_GSIZE_FORMAT
                          " n_ctx=%" G_GINT64_FORMAT, g_checksum_get_string (sum), len, n_ctx);
}

static gboolean
load_locked (RuvCpuBackend         *self,
             const char            *path,
             const RuvModelConfig  *config,
             GCancellable          *cancellable,
             GError               **error)
{
  g_autoptr(RuvModelConfig) defaults = NULL;
  g_autoptr(RuvModel) model = NULL;
  g_autoptr(RuvTokenizer) tokenizer = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  g_autofree char *fingerprint = NULL;
  RuvContextParams cp;
  gint64 n_train, n_vocab;

  if (config == NULL)
    config = defaults = ruv_model_config_new ();
  if (!ruv_model_config_validate (config, error))
    return FALSE;
  if (self->device != RUV_DEVICE_TYPE_CPU)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_BACKEND,
                   "the %s device is not built into this version of RuvLLM; use the CPU",
                   ruv_device_type_name (self->device));
      return FALSE;
    }
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                   "%s: no such model file (give the path of a local GGUF file)", path);
      return FALSE;
    }
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  model = ruv_model_new_from_file (path, error);
  if (model == NULL)
    return FALSE;
  tokenizer = ruv_tokenizer_new_from_gguf (ruv_model_get_gguf (model), error);
  if (tokenizer == NULL)
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  n_vocab = ruv_model_get_vocab_size (model);
  if (n_vocab < 1 || n_vocab > G_MAXINT32)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL, "%s: vocabulary size %" G_GINT64_FORMAT
                   " is out of range", path, n_vocab);
      return FALSE;
    }

  ruv_context_params_init (&cp);
  n_train = ruv_model_get_context_length (model);
  cp.n_ctx = n_train > 0 ? MIN ((gint64) config->max_context, n_train)
                         : (gint64) config->max_context;
  cp.n_threads = (gint) config->n_threads;
  cp.kv_cache = config->kv_cache_config;
  ctx = ruv_context_new (model, &cp, error);
  if (ctx == NULL)
    return FALSE;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  fingerprint = model_fingerprint (path, ruv_context_get_n_ctx (ctx), error);
  if (fingerprint == NULL)
    return FALSE;

  drop_model (self);
  self->fingerprint = g_steal_pointer (&fingerprint);
  g_mutex_lock (&self->info_lock);
  self->model = g_steal_pointer (&model);
  self->tokenizer = g_steal_pointer (&tokenizer);
  self->ctx = g_steal_pointer (&ctx);
  g_mutex_unlock (&self->info_lock);
  self->n_vocab = n_vocab;
  self->logits = g_new (float, n_vocab);
  self->raw_logits = g_new (float, n_vocab);
  return TRUE;
}

gboolean
ruv_cpu_backend_load_model (RuvCpuBackend         *self,
                            const char            *path,
                            const RuvModelConfig  *config,
                            GCancellable          *cancellable,
                            GError               **error)
{
  gboolean ok;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_mutex_lock (&self->lock);
  ok = load_locked (self, path, config, cancellable, error);
  g_mutex_unlock (&self->lock);
  set_live_stats (self, 0.0, 0);
  return ok;
}

typedef struct
{
  char           *path;
  RuvModelConfig *config;
} LoadData;

static void
load_data_free (LoadData *d)
{
  g_free (d->path);
  ruv_model_config_free (d->config);
  g_free (d);
}

static void
load_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  RuvCpuBackend *self = source_object;
  LoadData *d = task_data;
  GError *error = NULL;
  gboolean ok;

  g_mutex_lock (&self->lock);
  ok = load_locked (self, d->path, d->config, cancellable, &error);
  g_mutex_unlock (&self->lock);
  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/* Runs on the caller's context: resets the live numbers there, then
 * completes the caller's task. */
static void
load_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) outer = user_data;
  RuvCpuBackend *self = RUV_CPU_BACKEND (source);
  GError *error = NULL;

  set_busy (self, FALSE);
  if (g_task_propagate_boolean (G_TASK (result), &error))
    {
      set_live_stats (self, 0.0, 0);
      g_task_return_boolean (outer, TRUE);
    }
  else
    g_task_return_error (outer, error);
}

void
ruv_cpu_backend_load_model_async (RuvCpuBackend         *self,
                                  const char            *path,
                                  const RuvModelConfig  *config,
                                  GCancellable          *cancellable,
                                  GAsyncReadyCallback    callback,
                                  gpointer               user_data)
{
  g_autoptr(GTask) outer = NULL;
  g_autoptr(GTask) inner = NULL;
  LoadData *d;

  g_return_if_fail (RUV_IS_CPU_BACKEND (self));
  g_return_if_fail (path != NULL);

  outer = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (outer, ruv_cpu_backend_load_model_async);
  d = g_new0 (LoadData, 1);
  d->path = g_strdup (path);
  d->config = config != NULL ? ruv_model_config_copy (config) : NULL;
  inner = g_task_new (self, cancellable, load_done, g_steal_pointer (&outer));
  g_task_set_task_data (inner, d, (GDestroyNotify) load_data_free);
  set_busy (self, TRUE);
  g_task_run_in_thread (inner, load_thread);
}

gboolean
ruv_cpu_backend_load_model_finish (RuvCpuBackend  *self,
                                   GAsyncResult   *result,
                                   GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, ruv_cpu_backend_load_model_async),
                        FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* The adapters the forward pass applies: the learning SONA's when one is
 * attached (and made for this model object), else the fixed set. Lock held. */
static void
apply_adapters_locked (RuvCpuBackend *self)
{
  RuvMicroLora *lora = self->lora;

  if (self->ctx == NULL)
    return;
  if (self->sona != NULL)
    lora = ruv_sona_llm_get_model (self->sona) == self->model
           ? ruv_sona_llm_get_lora (self->sona) : NULL;
  ruv_context_set_lora (self->ctx, lora);
}

void
ruv_cpu_backend_set_learning (RuvCpuBackend *self,
                              RuvSonaLlm    *sona)
{
  g_return_if_fail (RUV_IS_CPU_BACKEND (self));
  g_mutex_lock (&self->lock);
  if (self->sona != NULL)
    ruv_sona_llm_generation_abort (self->sona);
  g_set_object (&self->sona, sona);
  g_clear_pointer (&self->last_trace, ruv_sona_trace_free);
  apply_adapters_locked (self);
  g_mutex_unlock (&self->lock);
}

void
ruv_cpu_backend_set_lora (RuvCpuBackend *self,
                          RuvMicroLora  *lora)
{
  g_return_if_fail (RUV_IS_CPU_BACKEND (self));
  g_return_if_fail (lora == NULL || RUV_IS_MICRO_LORA (lora));
  g_mutex_lock (&self->lock);
  g_set_object (&self->lora, lora);
  apply_adapters_locked (self);
  g_mutex_unlock (&self->lock);
}

RuvSonaTrace *
ruv_cpu_backend_steal_trace (RuvCpuBackend *self)
{
  RuvSonaTrace *tr;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), NULL);
  g_mutex_lock (&self->lock);
  tr = g_steal_pointer (&self->last_trace);
  g_mutex_unlock (&self->lock);
  return tr;
}

void
ruv_cpu_backend_unload (RuvCpuBackend *self)
{
  g_return_if_fail (RUV_IS_CPU_BACKEND (self));

  g_mutex_lock (&self->lock);
  drop_model (self);
  g_mutex_unlock (&self->lock);
  set_live_stats (self, 0.0, 0);
}

/* ---- generation ---------------------------------------------------------- */

/* Where a request's output goes. */
typedef struct
{
  RuvTokenFunc     text_func;
  gpointer         text_data;
  RuvTokenInfoFunc info_func;
  gpointer         info_data;
  void           (*stats_func) (gpointer data, double tps, gint64 n_past);
  gpointer         stats_data;
} Sink;

/* A request: a prompt, token ids, or a conversation. */
typedef struct
{
  const char           *prompt;
  const gint32         *tokens;
  gsize                 n_tokens;
  const RuvChatMessage *messages;
  gsize                 n_messages;
} Request;

static gboolean
require_loaded (RuvCpuBackend  *self,
                GError        **error)
{
  if (self->ctx == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "no model is loaded; load a GGUF model before generating");
      return FALSE;
    }
  return TRUE;
}

static char *
format_chat_locked (RuvCpuBackend        *self,
                    const RuvChatMessage *messages,
                    gsize                 n_messages,
                    gboolean              add_generation_prompt)
{
  RuvChatTemplate kind = ruv_chat_template_detect (ruv_model_get_chat_template (self->model));

  return ruv_chat_template_apply (kind, messages, n_messages, add_generation_prompt);
}

char *
ruv_cpu_backend_format_chat (RuvCpuBackend        *self,
                             const RuvChatMessage *messages,
                             gsize                 n_messages)
{
  char *text = NULL;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), NULL);
  g_return_val_if_fail (messages != NULL || n_messages == 0, NULL);

  g_mutex_lock (&self->info_lock);
  if (self->model != NULL)
    text = format_chat_locked (self, messages, n_messages, TRUE);
  else
    text = ruv_chat_template_apply (RUV_CHAT_TEMPLATE_CHATML, messages, n_messages, TRUE);
  g_mutex_unlock (&self->info_lock);
  return text;
}

/* The request's tokens and how many leading ones survive a context shift. */
static GArray *
request_tokens (RuvCpuBackend  *self,
                const Request  *req,
                gint64         *n_keep,
                gint64         *n_last,
                GError        **error)
{
  g_autoptr(GArray) ids = NULL;
  gint32 bos = ruv_tokenizer_get_bos (self->tokenizer);
  gsize i;

  if (req->tokens != NULL)
    {
      ids = g_array_sized_new (FALSE, FALSE, sizeof (gint32), (guint) req->n_tokens);
      for (i = 0; i < req->n_tokens; i++)
        {
          if (req->tokens[i] < 0 || req->tokens[i] >= self->n_vocab)
            {
              g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                           "token %d at position %" G_GSIZE_FORMAT " is outside the "
                           "vocabulary (0 to %" G_GINT64_FORMAT ")", req->tokens[i], i,
                           self->n_vocab - 1);
              return NULL;
            }
        }
      g_array_append_vals (ids, req->tokens, (guint) req->n_tokens);
    }
  else
    {
      g_autofree char *chat = NULL;
      const char *text = req->prompt;

      if (req->messages != NULL)
        {
          if (req->n_messages == 0)
            {
              g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "the conversation is empty");
              return NULL;
            }
          for (i = 0; i < req->n_messages; i++)
            if (req->messages[i].role == NULL || req->messages[i].content == NULL ||
                !g_utf8_validate (req->messages[i].content, -1, NULL))
              {
                g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                             "message %" G_GSIZE_FORMAT " has no role, no content or text "
                             "that is not valid UTF-8", i + 1);
                return NULL;
              }
          text = chat = format_chat_locked (self, req->messages, req->n_messages, TRUE);
        }
      if (!g_utf8_validate (text, -1, NULL))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "the prompt is not valid UTF-8 text");
          return NULL;
        }
      ids = ruv_tokenizer_encode (self->tokenizer, text, -1, TRUE, TRUE, error);
      if (ids == NULL)
        return NULL;
    }
  if (ids->len == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "the prompt is empty");
      return NULL;
    }

  *n_keep = (bos != RUV_TOKEN_NULL && g_array_index (ids, gint32, 0) == bos) ? 1 : 0;
  if (req->messages != NULL && g_str_equal (req->messages[0].role, "system"))
    {
      /* Keep the whole system turn when it is a prefix of the prompt's tokens. */
      g_autofree char *sys = format_chat_locked (self, req->messages, 1, FALSE);
      g_autoptr(GArray) sys_ids = ruv_tokenizer_encode (self->tokenizer, sys, -1, TRUE, TRUE,
                                                         NULL);

      if (sys_ids != NULL && sys_ids->len < ids->len &&
          memcmp (sys_ids->data, ids->data, sys_ids->len * sizeof (gint32)) == 0)
        *n_keep = sys_ids->len;
    }
  *n_last = 0;
  if (req->messages != NULL && req->n_messages > 1)
    {
      /* the tokens of the message being answered (with the assistant's
       * opening): they may not leave the window */
      g_autofree char *before = format_chat_locked (self, req->messages, req->n_messages - 1,
                                                     FALSE);
      g_autoptr(GArray) before_ids = ruv_tokenizer_encode (self->tokenizer, before, -1, TRUE,
                                                            TRUE, NULL);

      if (before_ids != NULL && before_ids->len < ids->len &&
          memcmp (before_ids->data, ids->data, before_ids->len * sizeof (gint32)) == 0)
        *n_last = ids->len - before_ids->len;
    }
  else if (req->messages != NULL)
    *n_last = ids->len - *n_keep;
  return g_steal_pointer (&ids);
}

/* Evaluates tokens[0..n) at pos0.., in chunks, keeping kv_tokens in step with
 * the cache. With want_logits, self->logits gets the last token's logits.
 * Returns FALSE with *cancelled set when the cancellable fired between
 * chunks (the cache then holds what was evaluated), or with an error. */
static gboolean
eval_tokens (RuvCpuBackend  *self,
             const gint32   *tokens,
             gint64          n,
             gint64          pos0,
             gboolean        want_logits,
             GCancellable   *cancellable,
             gboolean       *cancelled,
             GError        **error)
{
  gint64 done = 0;

  g_assert (pos0 <= (gint64) self->kv_tokens->len);
  g_array_set_size (self->kv_tokens, (guint) pos0);
  ruv_context_kv_truncate (self->ctx, pos0);
  while (done < n)
    {
      gint64 m = MIN (PREFILL_CHUNK, n - done);
      gboolean last = done + m == n;

      if (g_cancellable_is_cancelled (cancellable))
        {
          *cancelled = TRUE;
          return FALSE;
        }
      if (!ruv_context_decode (self->ctx, tokens + done, m, pos0 + done,
                               last && want_logits ? self->logits : NULL, FALSE, error))
        {
          /* A failed step leaves the tokens every layer held before it (the
           * forward pass cuts back to them): keep those. */
          g_array_set_size (self->kv_tokens,
                            (guint) MIN (ruv_context_get_n_past (self->ctx),
                                         (gint64) self->kv_tokens->len));
          ruv_context_kv_truncate (self->ctx, self->kv_tokens->len);
          if ((gint64) self->kv_tokens->len < self->drop_at)
            g_array_set_size (self->dropped, 0);
          return FALSE;
        }
      g_array_append_vals (self->kv_tokens, tokens + done, (guint) m);
      done += m;
    }
  return TRUE;
}

/* Drops cached positions [n_keep, n_keep + n) from the window, remembering
 * them as the conversation's dropped tokens. The cache is shifted: the kept
 * keys are re-rotated to their new positions (ruv_context_kv_shift), which
 * costs a fraction of evaluating them again (see the README's context-shift
 * measurement). When the shift cannot be done (the pool cannot hold the
 * moved tokens beside the old ones), they are evaluated again instead. */
static gboolean
drop_window (RuvCpuBackend  *self,
             gint64          n_keep,
             gint64          n,
             GCancellable   *cancellable,
             gboolean       *cancelled,
             GError        **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree gint32 *tail = NULL;
  gint64 n_past = self->kv_tokens->len, n_tail = n_past - n_keep - n;

  g_assert (n_keep >= 0 && n >= 0 && n_tail >= 0);
  if (n == 0)
    return TRUE;
  if (self->dropped->len > 0 && self->drop_at != n_keep)
    g_array_set_size (self->dropped, 0);   /* another split: no longer one conversation */
  g_array_append_vals (self->dropped, &g_array_index (self->kv_tokens, gint32, n_keep),
                       (guint) n);
  self->drop_at = n_keep;
  if (ruv_context_kv_shift (self->ctx, n_keep, n_keep + n, &local))
    {
      g_array_remove_range (self->kv_tokens, (guint) n_keep, (guint) n);
      return TRUE;
    }
  g_debug ("context shift failed (%s); evaluating %" G_GINT64_FORMAT " tokens again",
           local->message, n_tail);
  tail = g_memdup2 (&g_array_index (self->kv_tokens, gint32, n_keep + n),
                    (gsize) n_tail * sizeof (gint32));
  if (n_tail == 0)
    {
      g_array_set_size (self->kv_tokens, (guint) n_keep);
      ruv_context_kv_truncate (self->ctx, n_keep);
      return TRUE;
    }
  return eval_tokens (self, tail, n_tail, n_keep, FALSE, cancellable, cancelled, error);
}

/* Context full while generating: keep the first n_keep tokens, drop the
 * older half of the rest (as llama.cpp's context shift does). */
static gboolean
shift_context (RuvCpuBackend  *self,
               gint64          n_keep,
               gint64         *n_discarded,
               GCancellable   *cancellable,
               gboolean       *cancelled,
               GError        **error)
{
  gint64 n_past = self->kv_tokens->len;
  gint64 n_ctx = ruv_context_get_n_ctx (self->ctx);
  gint64 n_discard;

  n_keep = CLAMP (n_keep, 0, n_ctx / 2);
  n_discard = MAX ((n_past - n_keep) / 2, 1);
  g_debug ("context full (%" G_GINT64_FORMAT " tokens): keeping %" G_GINT64_FORMAT
           ", dropping %" G_GINT64_FORMAT, n_past, n_keep, n_discard);
  *n_discarded += n_discard;
  return drop_window (self, n_keep, n_discard, cancellable, cancelled, error);
}

/* Token i of the conversation the cache belongs to (see `dropped`). */
static gint32
logical_token (RuvCpuBackend *self,
               gint64         i)
{
  gint64 nd = self->dropped->len;

  if (i < self->drop_at || nd == 0)
    return g_array_index (self->kv_tokens, gint32, i);
  if (i < self->drop_at + nd)
    return g_array_index (self->dropped, gint32, i - self->drop_at);
  return g_array_index (self->kv_tokens, gint32, i - nd);
}

static gboolean
logits_finite (const float *x,
               gint64       n)
{
  float sum = 0.0f;
  gint64 i;

  for (i = 0; i < n; i++)
    sum += x[i] * 0.0f;
  /* x * 0 is 0 for finite x and NaN for NaN or inf. */
  return sum == 0.0f;
}

static void
emit_text (const Sink *sink,
           const char *text,
           gsize       len,
           gboolean   *stop)
{
  g_autofree char *copy = NULL;

  if (len == 0 || sink->text_func == NULL || *stop)
    return;
  copy = g_strndup (text, len);
  if (!sink->text_func (copy, sink->text_data))
    *stop = TRUE;
}

static double
seconds_since (gint64 t0)
{
  return (double) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
}

/* Absurd or invalid prompt text is refused before it is tokenized
 * (RELIABILITY.md E11), for a raw prompt and for every chat message. */
static gboolean
check_request_text (const Request  *req,
                    GError        **error)
{
  gsize i;

  if (req->prompt != NULL && !ruv_generate_check_prompt_text (req->prompt, -1, error))
    return FALSE;
  for (i = 0; req->messages != NULL && i < req->n_messages; i++)
    if (req->messages[i].content != NULL
        && !ruv_generate_check_prompt_text (req->messages[i].content, -1, error))
      {
        g_prefix_error (error, "message %" G_GSIZE_FORMAT ": ", i + 1);
        return FALSE;
      }
  return TRUE;
}

static RuvGenerateResult *
generate_locked (RuvCpuBackend            *self,
                 const Request            *req,
                 const RuvGenerateParams  *params,
                 const Sink               *sink,
                 GCancellable             *cancellable,
                 GError                  **error)
{
  g_autoptr(RuvGenerateParams) defaults = NULL;
  g_autoptr(GArray) prompt = NULL;
  g_autoptr(RuvSampler) sampler = NULL;
  g_autoptr(RuvTokenStream) stream = NULL;
  g_autoptr(RuvStopMatcher) matcher = NULL;
  g_autoptr(RuvGenerateResult) res = NULL;
  gint64 t_start = g_get_monotonic_time (), t0;
  gint64 n_prompt, n_ctx, n_keep = 0, common, i;
  gint64 n_dec = 0, n_log, nd, win_drop = 0, n_eff, n_last = 0;
  double t_dec = 0.0, t_prefill;
  gboolean cancelled = FALSE, user_stop = FALSE, stopped = FALSE;
  const char *emit;
  gsize emit_len;

  if (!require_loaded (self, error))
    return NULL;
  if (params == NULL)
    params = defaults = ruv_generate_params_new ();
  if (!ruv_generate_params_validate (params, error))
    return NULL;
  if (!check_request_text (req, error))
    return NULL;
  prompt = request_tokens (self, req, &n_keep, &n_last, error);
  if (prompt == NULL)
    return NULL;

  n_prompt = prompt->len;
  n_ctx = ruv_context_get_n_ctx (self->ctx);
  n_keep = CLAMP (n_keep, 0, n_ctx / 2);

  /* How much of the prompt the cache holds. The cache window belongs to a
   * conversation whose oldest tokens after n_keep may have been dropped: when
   * the prompt goes on from that whole conversation, the same tokens stay
   * dropped and the window is reused. */
  nd = self->dropped->len;
  n_log = (gint64) self->kv_tokens->len + nd;
  common = 0;
  while (common < n_prompt && common < n_log &&
         logical_token (self, common) == g_array_index (prompt, gint32, common))
    common++;
  if (nd > 0 && self->drop_at == n_keep && common >= n_keep + nd)
    {
      win_drop = nd;
      common -= nd;
      g_array_remove_range (prompt, (guint) n_keep, (guint) nd);
    }
  else if (nd > 0)
    {
      /* another conversation, or an edit inside the dropped part */
      common = MIN (common, self->drop_at);
      g_array_set_size (self->dropped, 0);
    }
  n_eff = prompt->len;

  if (n_eff > n_ctx)
    {
      gint64 room = MIN ((gint64) params->max_tokens, n_ctx / 4), x, s;
      gboolean extends = win_drop > 0 || (common == n_log && common > n_keep);

      /* A chat, or a prompt continuing the cached conversation, never hits
       * the wall: the oldest tokens after n_keep leave the window, leaving
       * room for the answer (shifting what the cache holds of the rest). */
      x = n_eff - (n_ctx - room);
      if ((req->messages == NULL && !extends) || n_keep + x > n_eff - n_last)
        {
          if (req->messages != NULL)
            g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                         "the message is %" G_GINT64_FORMAT " tokens but the context holds %"
                         G_GINT64_FORMAT " (%" G_GINT64_FORMAT " kept for the system prompt "
                         "and the answer); shorten it", n_last, n_ctx, n_keep + room);
          else
            g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                         "the prompt is %" G_GINT64_FORMAT " tokens but the context holds %"
                         G_GINT64_FORMAT "; shorten it or start a new conversation",
                         n_prompt, n_ctx);
          return NULL;
        }
      g_array_set_size (self->kv_tokens, (guint) MIN (common, (gint64) self->kv_tokens->len));
      ruv_context_kv_truncate (self->ctx, self->kv_tokens->len);
      if (win_drop == 0)
        g_array_set_size (self->dropped, 0);
      s = MAX (MIN (x, common - n_keep), 0);
      if (s > 0 && !drop_window (self, n_keep, s, cancellable, &cancelled, error))
        {
          if (!cancelled)
            return NULL;
          res = g_new0 (RuvGenerateResult, 1);
          res->n_prompt = n_prompt;
          res->finish_reason = RUV_FINISH_REASON_CANCELLED;
          res->text = g_strdup ("");
          return g_steal_pointer (&res);
        }
      common -= s;
      if (x > s)
        {
          /* dropped before they were ever evaluated */
          g_array_set_size (self->kv_tokens, (guint) MIN (common, n_keep));
          ruv_context_kv_truncate (self->ctx, self->kv_tokens->len);
          common = self->kv_tokens->len;
          g_array_set_size (self->dropped, (guint) (win_drop + s));
          g_array_append_vals (self->dropped, &g_array_index (prompt, gint32, n_keep + s),
                               (guint) (x - s));
          self->drop_at = n_keep;
        }
      g_array_remove_range (prompt, (guint) n_keep, (guint) x);
      win_drop += x;
      n_eff = prompt->len;
    }

  res = g_new0 (RuvGenerateResult, 1);
  res->n_prompt = n_prompt;
  res->n_discarded = win_drop;

  /* The last prompt token is always evaluated, for its logits. */
  if (common >= n_eff)
    common = n_eff - 1;
  res->n_cached = common;

  g_clear_pointer (&self->last_trace, ruv_sona_trace_free);
  if (self->sona != NULL)
    ruv_sona_llm_generation_begin (self->sona, self->ctx, n_eff - 1,
                                   MIN ((gint64) params->max_tokens, TRACE_MAX_TOKENS));
  t0 = g_get_monotonic_time ();
  if (!eval_tokens (self, &g_array_index (prompt, gint32, common), n_eff - common, common,
                    TRUE, cancellable, &cancelled, error))
    {
      if (!cancelled)
        return NULL;
      res->finish_reason = RUV_FINISH_REASON_CANCELLED;
      res->text = g_strdup ("");
      res->ttft_ms = seconds_since (t_start) * 1000.0;
      return g_steal_pointer (&res);
    }
  t_prefill = seconds_since (t0);
  res->prompt_tps = t_prefill > 0.0 ? (double) (n_eff - common) / t_prefill : 0.0;

  sampler = ruv_sampler_new (params, (int) self->n_vocab);
  res->seed = ruv_sampler_get_seed (sampler);
  /* The penalty window covers the prompt too (llama.cpp accepts it). */
  for (i = MAX (0, n_eff - (gint64) params->repeat_last_n); i < n_eff; i++)
    ruv_sampler_accept (sampler, g_array_index (prompt, gint32, i));
  stream = ruv_token_stream_new (self->tokenizer, FALSE);
  matcher = ruv_stop_matcher_new ((const char * const *) params->stop_sequences);
  if (sink->stats_func != NULL)
    sink->stats_func (sink->stats_data, 0.0, self->kv_tokens->len);

  res->finish_reason = RUV_FINISH_REASON_LENGTH;
  for (;;)
    {
      g_autofree char *piece = NULL;
      gint32 id;

      if (!logits_finite (self->logits, self->n_vocab))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_GENERATION,
                       "the model produced invalid numbers (NaN or infinity) after %"
                       G_GINT64_FORMAT " tokens; the file may be damaged", res->n_gen);
          ruv_context_kv_clear (self->ctx);
          g_array_set_size (self->kv_tokens, 0);
          return NULL;
        }
      if (sink->info_func != NULL || self->sona != NULL)
        memcpy (self->raw_logits, self->logits, (gsize) self->n_vocab * sizeof (float));
      id = ruv_sampler_sample (sampler, self->logits);
      if (res->n_gen == 0)
        res->ttft_ms = seconds_since (t_start) * 1000.0;
      if (ruv_tokenizer_is_eog (self->tokenizer, id))
        {
          res->finish_reason = RUV_FINISH_REASON_END_OF_TURN;
          break;
        }
      ruv_sampler_accept (sampler, id);
      res->n_gen++;
      if (self->sona != NULL)
        ruv_sona_llm_generation_token (self->sona, self->raw_logits, id);

      piece = ruv_token_stream_push (stream, id);
      stopped = ruv_stop_matcher_push (matcher, piece, strlen (piece), &emit, &emit_len);
      emit_text (sink, emit, emit_len, &user_stop);
      if (sink->info_func != NULL && !user_stop)
        {
          RuvTokenInfo info = { res->n_gen - 1, id, piece, self->raw_logits, self->n_vocab };

          if (!sink->info_func (&info, sink->info_data))
            user_stop = TRUE;
        }
      if (stopped)
        {
          res->finish_reason = RUV_FINISH_REASON_STOP;
          break;
        }
      if (user_stop || g_cancellable_is_cancelled (cancellable))
        {
          res->finish_reason = RUV_FINISH_REASON_CANCELLED;
          break;
        }
      if (res->n_gen >= (gint64) params->max_tokens)
        break;

      if ((gint64) self->kv_tokens->len >= n_ctx && self->sona != NULL)
        ruv_sona_llm_generation_abort (self->sona);   /* positions move */
      if ((gint64) self->kv_tokens->len >= n_ctx &&
          !shift_context (self, n_keep, &res->n_discarded, cancellable, &cancelled, error))
        {
          if (!cancelled)
            return NULL;
          res->finish_reason = RUV_FINISH_REASON_CANCELLED;
          break;
        }
      t0 = g_get_monotonic_time ();
      if (!eval_tokens (self, &id, 1, self->kv_tokens->len, TRUE, NULL, &cancelled, error))
        return NULL;
      t_dec += seconds_since (t0);
      n_dec++;
      if (sink->stats_func != NULL)
        sink->stats_func (sink->stats_data, t_dec > 0.0 ? n_dec / t_dec : 0.0,
                          self->kv_tokens->len);
    }

  if (res->finish_reason != RUV_FINISH_REASON_STOP)
    {
      g_autofree char *rest = ruv_token_stream_flush (stream);

      if (ruv_stop_matcher_push (matcher, rest, strlen (rest), &emit, &emit_len))
        res->finish_reason = RUV_FINISH_REASON_STOP;
      emit_text (sink, emit, emit_len, &user_stop);
      ruv_stop_matcher_flush (matcher, &emit, &emit_len);
      emit_text (sink, emit, emit_len, &user_stop);
    }
  res->text = g_strdup (ruv_stop_matcher_get_text (matcher, NULL));
  if (self->sona != NULL)
    self->last_trace = ruv_sona_llm_generation_end (self->sona, NULL);
  res->gen_tps = t_dec > 0.0 ? n_dec / t_dec : 0.0;
  if (sink->stats_func != NULL)
    sink->stats_func (sink->stats_data, res->gen_tps, self->kv_tokens->len);
  return g_steal_pointer (&res);
}

/* Sync API: live numbers go straight to the properties on this thread. */
static void
sync_stats (gpointer data,
            double   tps,
            gint64   n_past)
{
  set_live_stats (RUV_CPU_BACKEND (data), tps, n_past);
}

static RuvGenerateResult *
generate_sync (RuvCpuBackend            *self,
               const Request            *req,
               const RuvGenerateParams  *params,
               RuvTokenFunc              func,
               gpointer                  user_data,
               RuvTokenInfoFunc          info_func,
               gpointer                  info_data,
               GCancellable             *cancellable,
               GError                  **error)
{
  Sink sink = { func, user_data, info_func, info_data, sync_stats, self };
  RuvGenerateResult *res;

  set_busy (self, TRUE);
  g_mutex_lock (&self->lock);
  res = generate_locked (self, req, params, &sink, cancellable, error);
  g_mutex_unlock (&self->lock);
  set_busy (self, FALSE);
  return res;
}

RuvGenerateResult *
ruv_cpu_backend_generate (RuvCpuBackend            *self,
                          const char               *prompt,
                          const RuvGenerateParams  *params,
                          RuvTokenFunc              func,
                          gpointer                  user_data,
                          GCancellable             *cancellable,
                          GError                  **error)
{
  Request req = { prompt, NULL, 0, NULL, 0 };

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), NULL);
  g_return_val_if_fail (prompt != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return generate_sync (self, &req, params, func, user_data, NULL, NULL, cancellable, error);
}

RuvGenerateResult *
ruv_cpu_backend_generate_tokens (RuvCpuBackend            *self,
                                 const gint32             *tokens,
                                 gsize                     n_tokens,
                                 const RuvGenerateParams  *params,
                                 RuvTokenFunc              func,
                                 gpointer                  user_data,
                                 RuvTokenInfoFunc          info_func,
                                 gpointer                  info_data,
                                 GCancellable             *cancellable,
                                 GError                  **error)
{
  Request req = { NULL, tokens, n_tokens, NULL, 0 };

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), NULL);
  g_return_val_if_fail (tokens != NULL || n_tokens == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (n_tokens == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "the prompt is empty");
      return NULL;
    }
  req.tokens = tokens;
  return generate_sync (self, &req, params, func, user_data, info_func, info_data,
                        cancellable, error);
}

RuvGenerateResult *
ruv_cpu_backend_chat (RuvCpuBackend            *self,
                      const RuvChatMessage     *messages,
                      gsize                     n_messages,
                      const RuvGenerateParams  *params,
                      RuvTokenFunc              func,
                      gpointer                  user_data,
                      GCancellable             *cancellable,
                      GError                  **error)
{
  static const RuvChatMessage none[1] = { { NULL, NULL } };
  Request req = { NULL, NULL, 0, messages != NULL ? messages : none, n_messages };

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), NULL);
  g_return_val_if_fail (messages != NULL || n_messages == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return generate_sync (self, &req, params, func, user_data, NULL, NULL, cancellable, error);
}

/* ---- saved KV states (chat switching) ------------------------------------- */

/* The caller's bytes of a state file: what the cache holds and the dropped
 * part of its conversation, "RUVKVTK1", then u64 n_kv, drop_at, n_dropped,
 * then n_kv + n_dropped int32 token ids, all little-endian. */
#define TOKENS_MAGIC "RUVKVTK1"

static gboolean
save_state_locked (RuvCpuBackend  *self,
                   const char     *path,
                   GError        **error)
{
  g_autoptr(GByteArray) b = g_byte_array_new ();
  g_autofree char *dir = g_path_get_dirname (path);
  guint64 head[3];
  guint i;

  if (self->sona != NULL || self->lora != NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "the KV cache is not saved while adapters are applied "
                   "(they change as the model learns)");
      return FALSE;
    }
  g_byte_array_append (b, (const guint8 *) TOKENS_MAGIC, 8);
  head[0] = GUINT64_TO_LE ((guint64) self->kv_tokens->len);
  head[1] = GUINT64_TO_LE ((guint64) (self->dropped->len > 0 ? self->drop_at : 0));
  head[2] = GUINT64_TO_LE ((guint64) self->dropped->len);
  g_byte_array_append (b, (const guint8 *) head, sizeof head);
  for (i = 0; i < self->kv_tokens->len; i++)
    {
      guint32 le = GUINT32_TO_LE ((guint32) g_array_index (self->kv_tokens, gint32, i));

      g_byte_array_append (b, (const guint8 *) &le, 4);
    }
  for (i = 0; i < self->dropped->len; i++)
    {
      guint32 le = GUINT32_TO_LE ((guint32) g_array_index (self->dropped, gint32, i));

      g_byte_array_append (b, (const guint8 *) &le, 4);
    }
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot create %s: %s", dir,
                   g_strerror (errno));
      return FALSE;
    }
  return ruv_context_kv_save (self->ctx, path, self->fingerprint, b->data, b->len, error);
}

/* Reads the token part of a restored state into the backend; FALSE when it
 * does not describe the restored cache. */
static gboolean
take_state_tokens (RuvCpuBackend *self,
                   GBytes        *data,
                   const char   **why)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (data, &len);
  guint64 head[3], n_kv, drop_at, n_dropped, i;

  if (len < 8 + sizeof head || memcmp (p, TOKENS_MAGIC, 8) != 0)
    {
      *why = "it holds no token ids";
      return FALSE;
    }
  memcpy (head, p + 8, sizeof head);
  n_kv = GUINT64_FROM_LE (head[0]);
  drop_at = GUINT64_FROM_LE (head[1]);
  n_dropped = GUINT64_FROM_LE (head[2]);
  p += 8 + sizeof head;
  len -= 8 + sizeof head;
  if (n_kv != (guint64) ruv_context_get_n_past (self->ctx) || drop_at > n_kv ||
      n_dropped > G_MAXUINT32 || n_kv + n_dropped != len / 4 || len % 4 != 0)
    {
      *why = "its token ids do not match its cache";
      return FALSE;
    }
  g_array_set_size (self->kv_tokens, 0);
  g_array_set_size (self->dropped, 0);
  for (i = 0; i < n_kv + n_dropped; i++)
    {
      guint32 le;
      gint32 id;

      memcpy (&le, p + 4 * i, 4);
      id = (gint32) GUINT32_FROM_LE (le);
      if (id < 0 || id >= self->n_vocab)
        {
          g_array_set_size (self->kv_tokens, 0);
          g_array_set_size (self->dropped, 0);
          *why = "a token id is outside the vocabulary";
          return FALSE;
        }
      g_array_append_val (i < n_kv ? self->kv_tokens : self->dropped, id);
    }
  self->drop_at = (gint64) drop_at;
  return TRUE;
}

static gboolean
restore_state_locked (RuvCpuBackend  *self,
                      const char     *path,
                      GError        **error)
{
  g_autoptr(GBytes) data = NULL;
  const char *why = NULL;

  if (self->sona != NULL || self->lora != NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "a saved KV cache is not used while adapters are applied");
      return FALSE;
    }
  if (!ruv_context_kv_restore (self->ctx, path, self->fingerprint, &data, error))
    return FALSE;
  if (!take_state_tokens (self, data, &why))
    {
      /* the cache was replaced: never keep what cannot be trusted */
      ruv_context_kv_clear (self->ctx);
      g_array_set_size (self->kv_tokens, 0);
      g_array_set_size (self->dropped, 0);
      g_set_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE, "KV cache state %s refused: %s",
                   path, why);
      return FALSE;
    }
  return TRUE;
}

gboolean
ruv_cpu_backend_save_kv_state (RuvCpuBackend  *self,
                               const char     *path,
                               GError        **error)
{
  gboolean ok;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_mutex_lock (&self->lock);
  ok = require_loaded (self, error) && save_state_locked (self, path, error);
  g_mutex_unlock (&self->lock);
  return ok;
}

gboolean
ruv_cpu_backend_restore_kv_state (RuvCpuBackend  *self,
                                  const char     *path,
                                  GError        **error)
{
  gboolean ok;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_mutex_lock (&self->lock);
  ok = require_loaded (self, error) && restore_state_locked (self, path, error);
  if (ok)
    set_live_stats (self, self->tokens_per_second, self->kv_tokens->len);
  g_mutex_unlock (&self->lock);
  return ok;
}

gint64
ruv_cpu_backend_switch_kv (RuvCpuBackend *self,
                           const char    *path)
{
  g_autoptr(GError) error = NULL;
  gint64 restored = 0;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), 0);

  g_mutex_lock (&self->lock);
  if (self->ctx == NULL || self->sona != NULL || self->lora != NULL
      || g_strcmp0 (path, self->kv_owner) == 0)
    {
      restored = self->ctx != NULL && path != NULL ? (gint64) self->kv_tokens->len : 0;
      g_mutex_unlock (&self->lock);
      return restored;
    }
  if (self->kv_owner != NULL && self->kv_tokens->len > 0 &&
      !save_state_locked (self, self->kv_owner, &error))
    {
      g_message ("KV cache of %s not saved: %s", self->kv_owner, error->message);
      g_clear_error (&error);
    }
  g_free (self->kv_owner);
  self->kv_owner = g_strdup (path);
  if (path != NULL && g_file_test (path, G_FILE_TEST_EXISTS))
    {
      if (restore_state_locked (self, path, &error))
        {
          restored = self->kv_tokens->len;
          set_live_stats (self, self->tokens_per_second, restored);
        }
      else
        {
          g_message ("KV cache state ignored, the prompt will be evaluated: %s",
                     error->message);
          g_clear_error (&error);
        }
    }
  if (restored == 0 && path != NULL)
    {
      /* the other chat's tokens are saved; start this one clean */
      ruv_context_kv_clear (self->ctx);
      g_array_set_size (self->kv_tokens, 0);
      g_array_set_size (self->dropped, 0);
    }
  g_mutex_unlock (&self->lock);
  return restored;
}

gint64
ruv_cpu_backend_get_n_discarded (RuvCpuBackend *self)
{
  gint64 n;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (self), 0);
  g_mutex_lock (&self->lock);
  n = self->dropped->len;
  g_mutex_unlock (&self->lock);
  return n;
}

/* ---- async generation ---------------------------------------------------- */

/* Shared by the worker thread and the caller's main context; `lock` guards
 * pending, idle_queued, tps, n_past and finished. */
typedef struct
{
  RuvCpuBackend     *self;
  char              *prompt;
  RuvChatMessage    *messages;      /* with owned strings */
  gsize              n_messages;
  RuvGenerateParams *params;
  RuvTokenFunc       token_func;
  gpointer           token_data;
  GDestroyNotify     token_data_destroy;
  GMainContext      *context;

  GMutex             lock;
  GString           *pending;
  gboolean           idle_queued;
  gboolean           finished;
  double             tps;
  gint64             n_past;
  gint               stop_requested;  /* atomic: token_func returned FALSE */

  RuvGenerateResult *result;
  GError            *error;
} AsyncGen;

static void
async_gen_free (AsyncGen *ag)
{
  gsize i;

  /* token_data was released on the main context already. */
  g_clear_object (&ag->self);
  g_free (ag->prompt);
  for (i = 0; i < ag->n_messages; i++)
    {
      g_free ((char *) ag->messages[i].role);
      g_free ((char *) ag->messages[i].content);
    }
  g_free (ag->messages);
  ruv_generate_params_free (ag->params);
  g_main_context_unref (ag->context);
  g_mutex_clear (&ag->lock);
  g_string_free (ag->pending, TRUE);
  ruv_generate_result_free (ag->result);
  g_clear_error (&ag->error);
  g_free (ag);
}

/* On the caller's context: deliver what has accumulated. */
static void
deliver_pending (AsyncGen *ag)
{
  g_autofree char *text = NULL;
  double tps;
  gint64 n_past;

  g_mutex_lock (&ag->lock);
  ag->idle_queued = FALSE;
  if (ag->pending->len > 0)
    {
      text = g_strndup (ag->pending->str, ag->pending->len);
      g_string_truncate (ag->pending, 0);
    }
  tps = ag->tps;
  n_past = ag->n_past;
  g_mutex_unlock (&ag->lock);

  if (text != NULL && ag->token_func != NULL && !g_atomic_int_get (&ag->stop_requested))
    if (!ag->token_func (text, ag->token_data))
      g_atomic_int_set (&ag->stop_requested, 1);
  set_live_stats (ag->self, tps, n_past);
}

static gboolean
flush_idle (gpointer user_data)
{
  GTask *task = user_data;
  AsyncGen *ag = g_task_get_task_data (task);
  gboolean finished;

  g_mutex_lock (&ag->lock);
  finished = ag->finished;
  g_mutex_unlock (&ag->lock);
  /* After the final flush token_data is gone. */
  if (!finished)
    deliver_pending (ag);
  return G_SOURCE_REMOVE;
}

static void
queue_flush_locked (AsyncGen *ag,
                    GTask    *task)
{
  GSource *source;

  if (ag->idle_queued)
    return;
  ag->idle_queued = TRUE;
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, flush_idle, g_object_ref (task), g_object_unref);
  g_source_set_name (source, "[ruvllm] generation flush");
  g_source_attach (source, ag->context);
  g_source_unref (source);
}

typedef struct
{
  AsyncGen *ag;
  GTask    *task;
} WorkerSink;

static gboolean
async_text (const char *text,
            gpointer    user_data)
{
  WorkerSink *ws = user_data;

  g_mutex_lock (&ws->ag->lock);
  g_string_append (ws->ag->pending, text);
  queue_flush_locked (ws->ag, ws->task);
  g_mutex_unlock (&ws->ag->lock);
  return !g_atomic_int_get (&ws->ag->stop_requested);
}

static void
async_stats (gpointer data,
             double   tps,
             gint64   n_past)
{
  WorkerSink *ws = data;

  g_mutex_lock (&ws->ag->lock);
  ws->ag->tps = tps;
  ws->ag->n_past = n_past;
  queue_flush_locked (ws->ag, ws->task);
  g_mutex_unlock (&ws->ag->lock);
}

/* The final flush, on the caller's context: remaining text, live numbers,
 * token_data released, busy cleared, and only then the task completes. */
static gboolean
complete_idle (gpointer user_data)
{
  GTask *task = user_data;
  AsyncGen *ag = g_task_get_task_data (task);

  deliver_pending (ag);
  g_mutex_lock (&ag->lock);
  ag->finished = TRUE;
  g_mutex_unlock (&ag->lock);
  if (ag->token_data_destroy != NULL)
    g_clear_pointer (&ag->token_data, ag->token_data_destroy);
  set_busy (ag->self, FALSE);
  if (ag->result != NULL)
    g_task_return_pointer (task, g_steal_pointer (&ag->result),
                           (GDestroyNotify) ruv_generate_result_free);
  else
    g_task_return_error (task, g_steal_pointer (&ag->error));
  return G_SOURCE_REMOVE;
}

static gpointer
generate_thread (gpointer user_data)
{
  GTask *task = user_data;
  AsyncGen *ag = g_task_get_task_data (task);
  WorkerSink ws = { ag, task };
  Sink sink = { async_text, &ws, NULL, NULL, async_stats, &ws };
  Request req = { ag->prompt, NULL, 0, ag->messages, ag->n_messages };
  GSource *source;

  g_mutex_lock (&ag->self->lock);
  ag->result = generate_locked (ag->self, &req, ag->params, &sink,
                                g_task_get_cancellable (task), &ag->error);
  g_mutex_unlock (&ag->self->lock);

  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  /* The source takes over this thread's task reference. */
  g_source_set_callback (source, complete_idle, task, g_object_unref);
  g_source_set_name (source, "[ruvllm] generation complete");
  g_source_attach (source, ag->context);
  g_source_unref (source);
  return NULL;
}

static void
start_async (RuvCpuBackend            *self,
             char                     *prompt,
             RuvChatMessage           *messages,
             gsize                     n_messages,
             const RuvGenerateParams  *params,
             RuvTokenFunc              token_func,
             gpointer                  token_data,
             GDestroyNotify            token_data_destroy,
             GCancellable             *cancellable,
             GAsyncReadyCallback       callback,
             gpointer                  user_data)
{
  GTask *task;
  AsyncGen *ag;
  GThread *thread;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, ruv_cpu_backend_generate_async);
  /* Cancelling is not an error: the partial result says CANCELLED. */
  g_task_set_check_cancellable (task, FALSE);

  ag = g_new0 (AsyncGen, 1);
  ag->self = g_object_ref (self);
  ag->prompt = prompt;
  ag->messages = messages;
  ag->n_messages = n_messages;
  ag->params = params != NULL ? ruv_generate_params_copy (params) : NULL;
  ag->token_func = token_func;
  ag->token_data = token_data;
  ag->token_data_destroy = token_data_destroy;
  ag->context = g_main_context_ref_thread_default ();
  g_mutex_init (&ag->lock);
  ag->pending = g_string_new (NULL);
  g_task_set_task_data (task, ag, (GDestroyNotify) async_gen_free);

  set_busy (self, TRUE);
  /* A dedicated thread, not the GTask pool (which also serves file I/O); it
   * owns the task reference until complete_idle takes it. */
  thread = g_thread_new ("ruv-generate", generate_thread, task);
  g_thread_unref (thread);
}

void
ruv_cpu_backend_generate_async (RuvCpuBackend            *self,
                                const char               *prompt,
                                const RuvGenerateParams  *params,
                                RuvTokenFunc              token_func,
                                gpointer                  token_data,
                                GDestroyNotify            token_data_destroy,
                                GCancellable             *cancellable,
                                GAsyncReadyCallback       callback,
                                gpointer                  user_data)
{
  g_return_if_fail (RUV_IS_CPU_BACKEND (self));
  g_return_if_fail (prompt != NULL);

  start_async (self, g_strdup (prompt), NULL, 0, params, token_func, token_data,
               token_data_destroy, cancellable, callback, user_data);
}

void
ruv_cpu_backend_chat_async (RuvCpuBackend            *self,
                            const RuvChatMessage     *messages,
                            gsize                     n_messages,
                            const RuvGenerateParams  *params,
                            RuvTokenFunc              token_func,
                            gpointer                  token_data,
                            GDestroyNotify            token_data_destroy,
                            GCancellable             *cancellable,
                            GAsyncReadyCallback       callback,
                            gpointer                  user_data)
{
  RuvChatMessage *copy;
  gsize i;

  g_return_if_fail (RUV_IS_CPU_BACKEND (self));
  g_return_if_fail (messages != NULL || n_messages == 0);

  /* One extra (empty) entry so an empty conversation still has an array. */
  copy = g_new0 (RuvChatMessage, n_messages + 1);
  for (i = 0; i < n_messages; i++)
    {
      copy[i].role = g_strdup (messages[i].role);
      copy[i].content = g_strdup (messages[i].content);
    }
  start_async (self, NULL, copy, n_messages, params, token_func, token_data,
               token_data_destroy, cancellable, callback, user_data);
}

RuvGenerateResult *
ruv_cpu_backend_generate_finish (RuvCpuBackend  *self,
                                 GAsyncResult   *result,
                                 GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, ruv_cpu_backend_generate_async),
                        NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- RuvBackend ---------------------------------------------------------- */

static gboolean
iface_load_model (RuvBackend            *backend,
                  const char            *model_id,
                  const RuvModelConfig  *config,
                  GCancellable          *cancellable,
                  GError               **error)
{
  return ruv_cpu_backend_load_model (RUV_CPU_BACKEND (backend), model_id, config,
                                     cancellable, error);
}

static char *
iface_generate (RuvBackend               *backend,
                const char               *prompt,
                const RuvGenerateParams  *params,
                GCancellable             *cancellable,
                GError                  **error)
{
  g_autoptr(RuvGenerateResult) res = NULL;

  res = ruv_cpu_backend_generate (RUV_CPU_BACKEND (backend), prompt, params, NULL, NULL,
                                  cancellable, error);
  return res != NULL ? g_steal_pointer (&res->text) : NULL;
}

static gboolean
iface_generate_stream (RuvBackend               *backend,
                       const char               *prompt,
                       const RuvGenerateParams  *params,
                       RuvTokenFunc              func,
                       gpointer                  user_data,
                       GCancellable             *cancellable,
                       GError                  **error)
{
  g_autoptr(RuvGenerateResult) res = NULL;

  res = ruv_cpu_backend_generate (RUV_CPU_BACKEND (backend), prompt, params, func, user_data,
                                  cancellable, error);
  return res != NULL;
}

static RuvTokenizer *
iface_get_tokenizer (RuvBackend *backend)
{
  return ruv_cpu_backend_get_tokenizer (RUV_CPU_BACKEND (backend));
}

static RuvModelInfo *
iface_get_model_info (RuvBackend *backend)
{
  return ruv_cpu_backend_get_model_info (RUV_CPU_BACKEND (backend));
}

static gboolean
iface_is_loaded (RuvBackend *backend)
{
  return ruv_cpu_backend_is_loaded (RUV_CPU_BACKEND (backend));
}

static void
ruv_cpu_backend_iface_init (RuvBackendInterface *iface)
{
  iface->load_model = iface_load_model;
  iface->generate = iface_generate;
  iface->generate_stream = iface_generate_stream;
  iface->get_tokenizer = iface_get_tokenizer;
  iface->get_model_info = iface_get_model_info;
  iface->is_loaded = iface_is_loaded;
}
