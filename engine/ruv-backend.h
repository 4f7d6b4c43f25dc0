/* ruv-backend.h — RuvBackend, the inference backend interface (the
 * reference's LlmBackend), and the values it hands out.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "ruv-generate-params.h"
#include "ruv-model-config.h"
#include "ruv-tokenizer.h"
#include "ruv-types.h"

G_BEGIN_DECLS

/* Why generation ended. */
typedef enum
{
  RUV_FINISH_REASON_LENGTH,        /* max_tokens reached */
  RUV_FINISH_REASON_STOP,          /* a stop sequence matched */
  RUV_FINISH_REASON_END_OF_TURN,   /* the model produced an end-of-generation token */
  RUV_FINISH_REASON_CANCELLED,     /* GCancellable, or a callback returned FALSE */
} RuvFinishReason;

#define RUV_TYPE_FINISH_REASON (ruv_finish_reason_get_type ())
GType       ruv_finish_reason_get_type (void) G_GNUC_CONST;
/* "length", "stop", "end_of_turn", "cancelled". */
const char *ruv_finish_reason_name     (RuvFinishReason reason);

/**
 * RuvModelInfo:
 * A loaded model's description (the reference's ModelInfo); boxed.
 */
typedef struct
{
  char         *path;
  char         *name;            /* general.name or NULL */
  char         *architecture;    /* "llama", "qwen2", "qwen3" */
  guint64       n_params;
  RuvModelSize  size_class;
  char         *quantization;    /* "Q4_K_M", "Q8_0", ... */
  RuvPrecision  precision;
  gint64        context_length;  /* trained context */
  gint64        n_ctx;           /* context of the loaded backend */
  gint64        vocab_size;
  char         *chat_template;   /* tokenizer.chat_template or NULL */
  guint64       file_size;
} RuvModelInfo;

#define RUV_TYPE_MODEL_INFO (ruv_model_info_get_type ())
GType         ruv_model_info_get_type (void) G_GNUC_CONST;
RuvModelInfo *ruv_model_info_copy     (const RuvModelInfo *self);
void          ruv_model_info_free     (RuvModelInfo       *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvModelInfo, ruv_model_info_free)

/**
 * RuvGenerateResult:
 * @text: the generated text (never any part of a stop sequence)
 * @finish_reason: why it ended
 * @n_prompt: prompt tokens
 * @n_cached: prompt tokens whose KV entries were reused from the previous request
 * @n_gen: generated tokens (an end-of-generation token is not counted)
 * @ttft_ms: milliseconds from the request to the first sampled token
 * @prompt_tps: prompt tokens evaluated per second (the reused ones excluded)
 * @gen_tps: generated tokens evaluated per second (single-token decodes)
 * @seed: the sampler's seed (the one drawn when the params had none)
 * @n_discarded: tokens of the conversation that are no longer in the context
 *   window (the oldest after the system prompt, dropped when it filled);
 *   0 while everything fits
 */
typedef struct
{
  char            *text;
  RuvFinishReason  finish_reason;
  gint64           n_prompt;
  gint64           n_cached;
  gint64           n_gen;
  double           ttft_ms;
  double           prompt_tps;
  double           gen_tps;
  guint64          seed;
  gint64           n_discarded;
} RuvGenerateResult;

#define RUV_TYPE_GENERATE_RESULT (ruv_generate_result_get_type ())
GType              ruv_generate_result_get_type (void) G_GNUC_CONST;
RuvGenerateResult *ruv_generate_result_copy     (const RuvGenerateResult *self);
void               ruv_generate_result_free     (RuvGenerateResult       *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvGenerateResult, ruv_generate_result_free)

/* Receives streamed text: complete UTF-8, never part of a stop sequence.
 * Returning FALSE stops generation (finish reason CANCELLED). */
typedef gboolean (*RuvTokenFunc) (const char *text,
                                  gpointer    user_data);

#define RUV_TYPE_BACKEND (ruv_backend_get_type ())
G_DECLARE_INTERFACE (RuvBackend, ruv_backend, RUV, BACKEND, GObject)

struct _RuvBackendInterface
{
  GTypeInterface parent_iface;

  gboolean       (*load_model)      (RuvBackend              *self,
                                     const char              *model_id,
                                     const RuvModelConfig    *config,
                                     GCancellable            *cancellable,
                                     GError                 **error);
  char          *(*generate)        (RuvBackend              *self,
                                     const char              *prompt,
                                     const RuvGenerateParams *params,
                                     GCancellable            *cancellable,
                                     GError                 **error);
  gboolean       (*generate_stream) (RuvBackend              *self,
                                     const char              *prompt,
                                     const RuvGenerateParams *params,
                                     RuvTokenFunc             func,
                                     gpointer                 user_data,
                                     GCancellable            *cancellable,
                                     GError                 **error);
  RuvTokenizer  *(*get_tokenizer)   (RuvBackend              *self);
  RuvModelInfo  *(*get_model_info)  (RuvBackend              *self);
  gboolean       (*is_loaded)       (RuvBackend              *self);
};

/* Loads a model: a local GGUF path (model ids of the Hub come with the
 * downloads). config NULL: the defaults. */
gboolean       ruv_backend_load_model      (RuvBackend              *self,
                                            const char              *model_id,
                                            const RuvModelConfig    *config,
                                            GCancellable            *cancellable,
                                            GError                 **error);
/* The generated text; an error with no model loaded. params NULL: defaults. */
char          *ruv_backend_generate        (RuvBackend              *self,
                                            const char              *prompt,
                                            const RuvGenerateParams *params,
                                            GCancellable            *cancellable,
                                            GError                 **error);
gboolean       ruv_backend_generate_stream (RuvBackend              *self,
                                            const char              *prompt,
                                            const RuvGenerateParams *params,
                                            RuvTokenFunc             func,
                                            gpointer                 user_data,
                                            GCancellable            *cancellable,
                                            GError                 **error);
/* The tokenizer (transfer none) or NULL when no model is loaded. */
RuvTokenizer  *ruv_backend_get_tokenizer   (RuvBackend              *self);
/* A new RuvModelInfo, or NULL when no model is loaded. */
RuvModelInfo  *ruv_backend_get_model_info  (RuvBackend              *self);
gboolean       ruv_backend_is_loaded       (RuvBackend              *self);

G_END_DECLS
