/* ruv-chat-session.h — one chat bound to a backend, the store and (optionally)
 * a learner: what the app's chat view and `ruvllm-cli chat` both drive.
 * SPDX-License-Identifier: MIT
 *
 * A RuvChatSession is a stored session (RuvStore) plus the branch on screen
 * (root .. leaf, reloaded from the store after every change). Sending a
 * message stores the user message, then an incomplete assistant message
 * whose text is saved while it streams (every save_interval_ms or
 * save_every_tokens text pieces, whichever comes first, so a crash loses at
 * most that much), then completes it with the statistics (n_prompt, n_gen,
 * time to first token, tokens/s, finish reason) and the model and parameters
 * it was made with. A generation that fails removes what it added, so the
 * chat stays as it was.
 *
 * Tree operations: regenerate (a new assistant sibling of the last answer),
 * edit the last user message (a new user sibling and its answer), branches
 * (the alternatives at the deepest fork of the shown branch) and switch.
 *
 * Learning: with a learner, the backend applies its adapters to every answer
 * (ruv_cpu_backend_set_learning; effective when the learner was made on
 * ruv_cpu_backend_get_model's object) and keeps the last answer's
 * activations. rate_last() stores the rating (one per message, re-rating
 * replaces it), then runs SONA's instant loop on those activations (for a
 * re-rating, or when there are none, they are captured again with
 * ruv_sona_llm_capture on a context of its own), and the learner records the
 * outcome (applied / skipped, latency, loss before / after) in the store; a
 * cleared rating takes back the earlier reward (quality 0.5, reward 0, same
 * key). Without a learner, or when the exchange cannot be captured, the
 * outcome is recorded as skipped.
 *
 * Threads: the calls are synchronous; the app runs send/regenerate/edit in a
 * worker thread (RuvStore and RuvCpuBackend are thread-safe); func is called
 * on that thread.
 */
#pragma once

#include <gio/gio.h>

#include "ruv-cpu-backend.h"
#include "ruv-learner.h"
#include "ruv-store.h"

G_BEGIN_DECLS

#define RUV_TYPE_CHAT_SESSION (ruv_chat_session_get_type ())
G_DECLARE_FINAL_TYPE (RuvChatSession, ruv_chat_session, RUV, CHAT_SESSION, GObject)

/* backend: a loaded model. model_name: what the store records as the model
 * (e.g. the GGUF file name). */
RuvChatSession *ruv_chat_session_new          (RuvCpuBackend            *backend,
                                               RuvStore                 *store,
                                               const char               *model_name);
/* Learning from ratings (NULL: none). The learner's model must be the
 * backend's model file. */
void            ruv_chat_session_set_learner  (RuvChatSession           *self,
                                               RuvLearner               *learner);
/* Incremental saves while streaming (defaults 250 ms, 32 pieces). */
void            ruv_chat_session_set_save_policy (RuvChatSession        *self,
                                                  guint                  interval_ms,
                                                  guint                  every_tokens);

/* Instant chat switching: the backend's KV cache belongs to one chat at a
 * time. Opening a chat (or answering in it) saves the cache of the chat that
 * had it to dir/<its id>.kv and restores this chat's saved state, so its
 * prompt is not evaluated again (ruv_cpu_backend_switch_kv: a state made for
 * another model or context size, or corrupt, is ignored with a logged
 * reason). dir defaults to g_get_user_cache_dir()/ruvllm/kv; NULL turns
 * saving off. */
void            ruv_chat_session_set_kv_dir   (RuvChatSession           *self,
                                               const char               *dir);
/* This chat's state file (NULL without a dir or before create / open). */
char           *ruv_chat_session_get_kv_path  (RuvChatSession           *self);

/* A new stored session with a system prompt (may be NULL) and parameters
 * (NULL: the defaults). */
gboolean        ruv_chat_session_create       (RuvChatSession           *self,
                                               const char               *system_prompt,
                                               const RuvGenerateParams  *params,
                                               GError                  **error);
/* Continues a stored session: its shown branch, system prompt and
 * parameters (parameters that do not validate are refused with
 * RUV_ERROR_CONFIG). */
gboolean        ruv_chat_session_open         (RuvChatSession           *self,
                                               gint64                    session_id,
                                               GError                  **error);
gint64          ruv_chat_session_get_id       (RuvChatSession           *self);
const char     *ruv_chat_session_get_system_prompt (RuvChatSession      *self);
const RuvGenerateParams *ruv_chat_session_get_params (RuvChatSession    *self);
/* Replaces the parameters and stores them with the session. */
gboolean        ruv_chat_session_set_params   (RuvChatSession           *self,
                                               const RuvGenerateParams  *params,
                                               GError                  **error);
/* The shown branch, root first (RuvStoreMessage, transfer none: valid until
 * the next call that changes the session). */
GPtrArray      *ruv_chat_session_get_history  (RuvChatSession           *self);

/* Sends a user message and answers it. func (may be NULL) gets the text as
 * it is produced. Returns the result (cancellation is not an error: the
 * partial answer is stored with finish reason "cancelled"). */
RuvGenerateResult *ruv_chat_session_send      (RuvChatSession           *self,
                                               const char               *text,
                                               RuvTokenFunc              func,
                                               gpointer                  user_data,
                                               GCancellable             *cancellable,
                                               GError                  **error);
/* A new answer beside the last one (RUV_ERROR_INVALID_OPERATION when the
 * shown branch does not end in an answer to a user message). */
RuvGenerateResult *ruv_chat_session_regenerate (RuvChatSession          *self,
                                                RuvTokenFunc             func,
                                                gpointer                 user_data,
                                                GCancellable            *cancellable,
                                                GError                 **error);
/* Edit-and-resend of the last user message: a new branch and its answer. */
RuvGenerateResult *ruv_chat_session_edit_last (RuvChatSession           *self,
                                               const char               *text,
                                               RuvTokenFunc              func,
                                               gpointer                  user_data,
                                               GCancellable             *cancellable,
                                               GError                  **error);

/* The alternatives at the deepest fork of the shown branch (RuvStoreMessage,
 * oldest first; a single message when there is no fork; empty for an empty
 * chat). *shown receives the index of the one on screen. */
GPtrArray      *ruv_chat_session_list_branches (RuvChatSession          *self,
                                                guint                   *shown,
                                                GError                 **error);
/* Shows the branch through message_id (one of this session's). */
gboolean        ruv_chat_session_switch_branch (RuvChatSession          *self,
                                                gint64                   message_id,
                                                GError                 **error);
gboolean        ruv_chat_session_set_title    (RuvChatSession           *self,
                                               const char               *title,
                                               GError                  **error);

/* Rates the last answer of the shown branch (see above). result (may be
 * NULL) receives what the instant loop did (zeros and skipped = TRUE when it
 * did not run). The rating is stored even when adaptation fails; the error
 * then says why adaptation did not run. */
gboolean        ruv_chat_session_rate_last    (RuvChatSession           *self,
                                               RuvRating                 rating,
                                               RuvAdaptationResult      *result,
                                               GError                  **error);
/* How many instant updates this session applied (for a snapshot at exit). */
guint           ruv_chat_session_get_n_applied (RuvChatSession          *self);

/* Parameters as the JSON object stored with sessions and messages, and back
 * (unknown members ignored; wrong types or values refused). */
char           *ruv_generate_params_to_json   (const RuvGenerateParams  *params);
RuvGenerateParams *ruv_generate_params_from_json (const char            *json,
                                                  GError               **error);

G_END_DECLS
