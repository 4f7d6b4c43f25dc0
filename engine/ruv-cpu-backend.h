/* ruv-cpu-backend.h — RuvCpuBackend: generation on the CPU with librk.
 * SPDX-License-Identifier: MIT
 *
 * Implements RuvBackend. One model, one context (KV cache) and one request
 * at a time: a second request waits until the first has finished. The KV
 * cache is kept between requests and its longest common prefix with the next
 * prompt is reused, so a chat turn evaluates only the new tokens.
 *
 * Context full: generation does not fail. The first n_keep tokens (BOS, or
 * the system prompt of a chat) stay, the older half of the rest is dropped
 * and the cache is shifted: the kept keys are re-rotated to their new
 * positions (ruv_context_kv_shift), much cheaper than evaluating them again
 * (which is the fallback when the shift cannot get memory). A conversation
 * longer than the context works the same way: its oldest tokens after the
 * system prompt leave the window, the window's cache is reused by the next
 * turn, and RuvGenerateResult.n_discarded says how many tokens are out.
 *
 * Properties "busy", "tokens-per-second" and "n-past" change while
 * generating: with the _async API on the caller's main context (from the
 * same flush that delivers text), with the sync API on the calling thread.
 */
#pragma once

#include <gio/gio.h>

#include "ruv-backend.h"
#include "ruv-chat-template.h"
#include "ruv-kv-cache.h"
#include "ruv-model.h"

G_BEGIN_DECLS

#define RUV_TYPE_CPU_BACKEND (ruv_cpu_backend_get_type ())
G_DECLARE_FINAL_TYPE (RuvCpuBackend, ruv_cpu_backend, RUV, CPU_BACKEND, GObject)

/* What a generated token looked like, for tools (ruvllm-cli generate --json). */
typedef struct
{
  gint64        index;     /* 0 for the first generated token */
  gint32        id;
  const char   *text;      /* its text, complete UTF-8 (may be "" while a
                            * character is incomplete); NUL-terminated */
  const float  *logits;    /* raw logits before penalties and sampling */
  gint64        n_vocab;
} RuvTokenInfo;

/* Returning FALSE stops generation (finish reason CANCELLED). */
typedef gboolean (*RuvTokenInfoFunc) (const RuvTokenInfo *info,
                                      gpointer            user_data);

RuvCpuBackend     *ruv_cpu_backend_new              (void) G_GNUC_WARN_UNUSED_RESULT;
/* RUV_ERROR_BACKEND for a device that is not built in (Metal, CUDA). */
RuvCpuBackend     *ruv_cpu_backend_new_with_device  (RuvDeviceType   device,
                                                     GError        **error)
                                                     G_GNUC_WARN_UNUSED_RESULT;
RuvDeviceType      ruv_cpu_backend_get_device       (RuvCpuBackend  *self);
void               ruv_cpu_backend_get_memory_stats (RuvCpuBackend  *self,
                                                     RuvMemoryStats *stats);
/* Live KV cache statistics (callable from any thread while a request runs);
 * FALSE and zeros when no model is loaded. */
gboolean           ruv_cpu_backend_get_kv_stats     (RuvCpuBackend   *self,
                                                     RuvKvCacheStats *stats);

/* Loads a local GGUF file (RUV_ERROR_NOT_FOUND when it does not exist),
 * replacing any loaded model once no request is running. */
gboolean           ruv_cpu_backend_load_model       (RuvCpuBackend         *self,
                                                     const char            *path,
                                                     const RuvModelConfig  *config,
                                                     GCancellable          *cancellable,
                                                     GError               **error);
void               ruv_cpu_backend_load_model_async (RuvCpuBackend         *self,
                                                     const char            *path,
                                                     const RuvModelConfig  *config,
                                                     GCancellable          *cancellable,
                                                     GAsyncReadyCallback    callback,
                                                     gpointer               user_data);
gboolean           ruv_cpu_backend_load_model_finish (RuvCpuBackend        *self,
                                                      GAsyncResult         *result,
                                                      GError              **error);
/* Drops the model (waits for a running request). */
void               ruv_cpu_backend_unload           (RuvCpuBackend  *self);
/* Learning from ratings (ruv-sona.h): with a SONA for the loaded model, its
 * adapters are applied to every request and each generation keeps the
 * activations of its response (at most 256 tokens), so a rating needs no
 * re-run; NULL detaches. Waits for a running request. */
struct _RuvSonaLlm;
struct _RuvSonaTrace;
struct _RuvMicroLora;
void               ruv_cpu_backend_set_learning     (RuvCpuBackend       *self,
                                                     struct _RuvSonaLlm  *sona);
/* Applies a fixed adapter set (e.g. an imported GGUF LoRA) to every forward
 * pass, without the activation capture of learning; NULL removes it. A
 * learning SONA, when attached, takes precedence. */
void               ruv_cpu_backend_set_lora         (RuvCpuBackend       *self,
                                                     struct _RuvMicroLora *lora);
/* The trace of the last completed generation (transfer full; NULL if none):
 * hand it to ruv_sona_llm_instant_adapt / ruv_learner_rate when the user
 * rates that answer. */
struct _RuvSonaTrace *ruv_cpu_backend_steal_trace   (RuvCpuBackend       *self);
gboolean           ruv_cpu_backend_is_loaded        (RuvCpuBackend  *self);
/* Transfer none; valid while the model stays loaded. */
RuvTokenizer      *ruv_cpu_backend_get_tokenizer    (RuvCpuBackend  *self);
/* Transfer none; valid while the model stays loaded (for a RuvSonaLlm /
 * RuvLearner on the same model object, as ruv_cpu_backend_set_learning needs). */
RuvModel          *ruv_cpu_backend_get_model        (RuvCpuBackend  *self);
RuvModelInfo      *ruv_cpu_backend_get_model_info   (RuvCpuBackend  *self);
gint64             ruv_cpu_backend_get_n_ctx        (RuvCpuBackend  *self);
gboolean           ruv_cpu_backend_get_busy         (RuvCpuBackend  *self);
double             ruv_cpu_backend_get_tokens_per_second (RuvCpuBackend *self);
gint64             ruv_cpu_backend_get_n_past       (RuvCpuBackend  *self);
/* Tokens of the cached conversation no longer in the window (as the last
 * result's n_discarded). Waits for a running request. */
gint64             ruv_cpu_backend_get_n_discarded  (RuvCpuBackend  *self);

/* Saved KV states, so returning to a chat does not evaluate its prompt again.
 * save writes the cache, the token ids it holds, a fingerprint of the model
 * file and the context size, the cache layout, a version and a SHA-256
 * checksum (creating the folder). restore refuses (RUV_ERROR_KV_CACHE /
 * RUV_ERROR_IO) a state made for another model, context size or cache
 * layout, or one that is corrupt, leaving the cache as it was; an accepted
 * state's tokens count as cached for the next request's prefix reuse. Both
 * refuse (RUV_ERROR_INVALID_OPERATION) while learning adapters are applied.
 * Both wait for a running request. */
gboolean           ruv_cpu_backend_save_kv_state    (RuvCpuBackend  *self,
                                                     const char     *path,
                                                     GError        **error);
gboolean           ruv_cpu_backend_restore_kv_state (RuvCpuBackend  *self,
                                                     const char     *path,
                                                     GError        **error);
/* Gives the cache to the chat whose state file is path (NULL: none). If it
 * holds another chat's tokens (the path of the previous switch), they are
 * saved to that file first; then path's state is restored if it exists and
 * is accepted. A state that cannot be saved or is refused is logged with the
 * reason (g_message) and otherwise ignored: the prompt is evaluated as usual.
 * Returns the tokens the cache now holds for path (0: nothing restored).
 * Nothing happens for the chat that already has the cache, or while
 * learning adapters are applied. */
gint64             ruv_cpu_backend_switch_kv        (RuvCpuBackend  *self,
                                                     const char     *path);

/* Tokenizes `prompt` (BOS as the model's metadata says, special tokens
 * written in the text recognised) and generates. func (may be NULL) receives
 * the text as it is produced. params NULL: the defaults. Errors: no model
 * (RUV_ERROR_INVALID_OPERATION), bad params or a prompt longer than the
 * context (RUV_ERROR_CONFIG), a failing forward pass (RUV_ERROR_GENERATION).
 * Cancellation is not an error: the result says CANCELLED. */
RuvGenerateResult *ruv_cpu_backend_generate         (RuvCpuBackend            *self,
                                                     const char               *prompt,
                                                     const RuvGenerateParams  *params,
                                                     RuvTokenFunc              func,
                                                     gpointer                  user_data,
                                                     GCancellable             *cancellable,
                                                     GError                  **error);
/* The same from token ids (used verbatim, no BOS added); info_func (may be
 * NULL) sees every generated token with its raw logits. */
RuvGenerateResult *ruv_cpu_backend_generate_tokens  (RuvCpuBackend            *self,
                                                     const gint32             *tokens,
                                                     gsize                     n_tokens,
                                                     const RuvGenerateParams  *params,
                                                     RuvTokenFunc              func,
                                                     gpointer                  user_data,
                                                     RuvTokenInfoFunc          info_func,
                                                     gpointer                  info_data,
                                                     GCancellable             *cancellable,
                                                     GError                  **error);
/* The prompt of a conversation in the model's chat template (ChatML when it
 * has none or one we do not recognise), with the assistant's turn opened. */
char              *ruv_cpu_backend_format_chat      (RuvCpuBackend            *self,
                                                     const RuvChatMessage     *messages,
                                                     gsize                     n_messages);
/* Answers the last message of a conversation. The system message (if first)
 * is kept when the context fills. */
RuvGenerateResult *ruv_cpu_backend_chat             (RuvCpuBackend            *self,
                                                     const RuvChatMessage     *messages,
                                                     gsize                     n_messages,
                                                     const RuvGenerateParams  *params,
                                                     RuvTokenFunc              func,
                                                     gpointer                  user_data,
                                                     GCancellable             *cancellable,
                                                     GError                  **error);

/* Generates in a worker thread. token_func runs on the thread-default main
 * context of the caller with coalesced text (at most one idle source in
 * flight) and may return FALSE to stop; all text has been delivered before
 * callback runs; token_data_destroy runs on that context too. */
void               ruv_cpu_backend_generate_async   (RuvCpuBackend            *self,
                                                     const char               *prompt,
                                                     const RuvGenerateParams  *params,
                                                     RuvTokenFunc              token_func,
                                                     gpointer                  token_data,
                                                     GDestroyNotify            token_data_destroy,
                                                     GCancellable             *cancellable,
                                                     GAsyncReadyCallback       callback,
                                                     gpointer                  user_data);
void               ruv_cpu_backend_chat_async       (RuvCpuBackend            *self,
                                                     const RuvChatMessage     *messages,
                                                     gsize                     n_messages,
                                                     const RuvGenerateParams  *params,
                                                     RuvTokenFunc              token_func,
                                                     gpointer                  token_data,
                                                     GDestroyNotify            token_data_destroy,
                                                     GCancellable             *cancellable,
                                                     GAsyncReadyCallback       callback,
                                                     gpointer                  user_data);
/* For both generate_async and chat_async. */
RuvGenerateResult *ruv_cpu_backend_generate_finish  (RuvCpuBackend            *self,
                                                     GAsyncResult             *result,
                                                     GError                  **error);

G_END_DECLS
