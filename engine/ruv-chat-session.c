/* ruv-chat-session.c — one chat bound to a backend, the store and a learner.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "ruv-chat-session.h"
#include "ruv-error.h"
#include "ruv-forward.h"

struct _RuvChatSession
{
  GObject             parent_instance;

  RuvCpuBackend      *backend;
  RuvStore           *store;
  RuvLearner         *learner;       /* nullable */
  RuvContext         *capture_ctx;   /* nullable: made when a rating needs it */
  RuvSonaTrace       *trace;         /* nullable: the last answer's, from generation */
  gint64              trace_message; /* the message `trace` belongs to */
  char               *model_name;
  RuvGenerateParams  *params;
  char               *params_json;
  char               *system_prompt; /* nullable */
  gint64              id;            /* 0 until create / open */
  GPtrArray          *history;       /* RuvStoreMessage, root .. leaf */
  guint               save_interval_ms;
  guint               save_every_tokens;
  guint               n_applied;
  char               *kv_dir;        /* nullable: where chats' KV states are kept */
};

G_DEFINE_FINAL_TYPE (RuvChatSession, ruv_chat_session, G_TYPE_OBJECT)

static void
ruv_chat_session_finalize (GObject *object)
{
  RuvChatSession *self = RUV_CHAT_SESSION (object);

  if (self->learner != NULL)
    ruv_cpu_backend_set_learning (self->backend, NULL);
  g_clear_pointer (&self->trace, ruv_sona_trace_free);
  g_clear_object (&self->backend);
  g_clear_object (&self->store);
  g_clear_object (&self->learner);
  g_clear_pointer (&self->capture_ctx, ruv_context_free);
  g_free (self->model_name);
  g_clear_pointer (&self->params, ruv_generate_params_free);
  g_free (self->params_json);
  g_free (self->system_prompt);
  g_clear_pointer (&self->history, g_ptr_array_unref);
  g_free (self->kv_dir);
  G_OBJECT_CLASS (ruv_chat_session_parent_class)->finalize (object);
}

static void
ruv_chat_session_class_init (RuvChatSessionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ruv_chat_session_finalize;
}

static void
ruv_chat_session_init (RuvChatSession *self)
{
  self->params = ruv_generate_params_new ();
  self->history = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_message_free);
  self->save_interval_ms = 250;
  self->save_every_tokens = 32;
  self->kv_dir = g_build_filename (g_get_user_cache_dir (), "ruvllm", "kv", NULL);
}

void
ruv_chat_session_set_kv_dir (RuvChatSession *self,
                             const char     *dir)
{
  g_return_if_fail (RUV_IS_CHAT_SESSION (self));
  g_free (self->kv_dir);
  self->kv_dir = g_strdup (dir);
}

char *
ruv_chat_session_get_kv_path (RuvChatSession *self)
{
  g_autofree char *name = NULL;

  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), NULL);
  if (self->kv_dir == NULL || self->id <= 0)
    return NULL;
  name = g_strdup_printf ("%" G_GINT64_FORMAT ".kv", self->id);
  return g_build_filename (self->kv_dir, name, NULL);
}

/* Gives the backend's KV cache to this chat (saving the previous chat's,
 * restoring this one's saved state): the prompt of a chat returned to is not
 * evaluated again. */
static void
claim_kv (RuvChatSession *self)
{
  g_autofree char *path = ruv_chat_session_get_kv_path (self);

  if (path != NULL)
    ruv_cpu_backend_switch_kv (self->backend, path);
}

RuvChatSession *
ruv_chat_session_new (RuvCpuBackend *backend,
                      RuvStore      *store,
                      const char    *model_name)
{
  RuvChatSession *self;

  g_return_val_if_fail (RUV_IS_CPU_BACKEND (backend), NULL);
  g_return_val_if_fail (RUV_IS_STORE (store), NULL);
  self = g_object_new (RUV_TYPE_CHAT_SESSION, NULL);
  self->backend = g_object_ref (backend);
  self->store = g_object_ref (store);
  self->model_name = g_strdup (model_name);
  return self;
}

void
ruv_chat_session_set_learner (RuvChatSession *self,
                              RuvLearner     *learner)
{
  g_return_if_fail (RUV_IS_CHAT_SESSION (self));
  if (learner == NULL && self->learner == NULL)
    return;
  g_set_object (&self->learner, learner);
  g_clear_pointer (&self->capture_ctx, ruv_context_free);
  g_clear_pointer (&self->trace, ruv_sona_trace_free);
  /* The backend applies the adapters to every answer and keeps each
   * answer's activations (only when the learner is on the backend's own
   * model object; otherwise ratings capture them afresh). */
  ruv_cpu_backend_set_learning (self->backend,
                                learner != NULL ? ruv_learner_get_sona (learner) : NULL);
}

void
ruv_chat_session_set_save_policy (RuvChatSession *self,
                                  guint           interval_ms,
                                  guint           every_tokens)
{
  g_return_if_fail (RUV_IS_CHAT_SESSION (self));
  self->save_interval_ms = interval_ms;
  self->save_every_tokens = MAX (every_tokens, 1);
}

/* ---- parameters as JSON ------------------------------------------------- */

char *
ruv_generate_params_to_json (const RuvGenerateParams *params)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  guint i;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "max_tokens");
  json_builder_add_int_value (b, params->max_tokens);
  json_builder_set_member_name (b, "temperature");
  json_builder_add_double_value (b, params->temperature);
  json_builder_set_member_name (b, "top_p");
  json_builder_add_double_value (b, params->top_p);
  json_builder_set_member_name (b, "top_k");
  json_builder_add_int_value (b, params->top_k);
  json_builder_set_member_name (b, "min_p");
  json_builder_add_double_value (b, params->min_p);
  json_builder_set_member_name (b, "repetition_penalty");
  json_builder_add_double_value (b, params->repetition_penalty);
  json_builder_set_member_name (b, "repeat_last_n");
  json_builder_add_int_value (b, params->repeat_last_n);
  if (params->has_seed)
    {
      /* JSON numbers are doubles to many readers: a seed above 2^53 would
       * change, so it is written as a decimal string. */
      g_autofree char *seed = g_strdup_printf ("%" G_GUINT64_FORMAT, params->seed);

      json_builder_set_member_name (b, "seed");
      json_builder_add_string_value (b, seed);
    }
  if (params->stop_sequences != NULL && params->stop_sequences[0] != NULL)
    {
      json_builder_set_member_name (b, "stop");
      json_builder_begin_array (b);
      for (i = 0; params->stop_sequences[i] != NULL; i++)
        json_builder_add_string_value (b, params->stop_sequences[i]);
      json_builder_end_array (b);
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static gboolean
member_number (JsonObject  *o,
               const char  *name,
               double       lo,
               double       hi,
               double      *out,
               GError     **error)
{
  JsonNode *n = json_object_get_member (o, name);
  GType t;

  if (n == NULL)
    return TRUE;
  t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "stored parameter \"%s\" is not a number", name);
      return FALSE;
    }
  *out = t == G_TYPE_INT64 ? (double) json_node_get_int (n) : json_node_get_double (n);
  if (!isfinite (*out) || *out < lo || *out > hi)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "stored parameter \"%s\" is out of range", name);
      return FALSE;
    }
  return TRUE;
}

RuvGenerateParams *
ruv_generate_params_from_json (const char  *json,
                               GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  g_autoptr(GError) local = NULL;
  JsonNode *root, *n;
  JsonObject *o;
  double v;

  if (!json_parser_load_from_data (parser, json, -1, &local))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "stored parameters are not JSON: %s",
                   local->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "stored parameters are not an object");
      return NULL;
    }
  o = json_node_get_object (root);

#define NUMBER(name, lo, hi, field, type)                              \
  v = (double) p->field;                                               \
  if (!member_number (o, name, lo, hi, &v, error))                     \
    return NULL;                                                       \
  p->field = (type) v;

  NUMBER ("max_tokens", 1, G_MAXINT32, max_tokens, guint)
  NUMBER ("temperature", 0, 1e6, temperature, float)
  NUMBER ("top_p", 0, 1, top_p, float)
  NUMBER ("top_k", 0, G_MAXINT32, top_k, guint)
  NUMBER ("min_p", 0, 1, min_p, float)
  NUMBER ("repetition_penalty", 0, 1e6, repetition_penalty, float)
  NUMBER ("repeat_last_n", 0, G_MAXINT32, repeat_last_n, guint)
#undef NUMBER

  n = json_object_get_member (o, "seed");
  if (n != NULL)
    {
      const char *s = JSON_NODE_HOLDS_VALUE (n) &&
                      json_node_get_value_type (n) == G_TYPE_STRING
                      ? json_node_get_string (n) : NULL;
      guint64 seed;

      if (s == NULL || !g_ascii_string_to_unsigned (s, 10, 0, G_MAXUINT64, &seed, NULL))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "stored seed is not valid");
          return NULL;
        }
      p->has_seed = TRUE;
      p->seed = seed;
    }
  n = json_object_get_member (o, "stop");
  if (n != NULL)
    {
      g_autoptr(GPtrArray) stops = g_ptr_array_new ();
      JsonArray *a = JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
      guint i, len = a != NULL ? json_array_get_length (a) : 0;

      if (a == NULL || len > 64)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "stored stop sequences are not valid");
          return NULL;
        }
      for (i = 0; i < len; i++)
        {
          JsonNode *e = json_array_get_element (a, i);

          if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
            {
              g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                           "stored stop sequences are not valid");
              return NULL;
            }
          g_ptr_array_add (stops, (gpointer) json_node_get_string (e));
        }
      g_ptr_array_add (stops, NULL);
      ruv_generate_params_set_stop_sequences (p, (const char * const *) stops->pdata);
    }
  if (!ruv_generate_params_validate (p, error))
    return NULL;
  return g_steal_pointer (&p);
}

/* ---- session ------------------------------------------------------------ */

static gboolean
reload (RuvChatSession  *self,
        GError         **error)
{
  GPtrArray *h = ruv_store_load_chat (self->store, self->id, error);

  if (h == NULL)
    return FALSE;
  g_ptr_array_unref (self->history);
  self->history = h;
  return TRUE;
}

static void
take_params (RuvChatSession          *self,
             const RuvGenerateParams *params)
{
  RuvGenerateParams *copy = params != NULL ? ruv_generate_params_copy (params)
                                           : ruv_generate_params_new ();

  ruv_generate_params_free (self->params);
  self->params = copy;
  g_free (self->params_json);
  self->params_json = ruv_generate_params_to_json (self->params);
}

gboolean
ruv_chat_session_create (RuvChatSession           *self,
                         const char               *system_prompt,
                         const RuvGenerateParams  *params,
                         GError                  **error)
{
  gint64 id;

  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), FALSE);
  if (params != NULL && !ruv_generate_params_validate (params, error))
    return FALSE;
  take_params (self, params);
  id = ruv_store_create_session (self->store, NULL, self->model_name, system_prompt,
                                 self->params_json, error);
  if (id <= 0)
    return FALSE;
  self->id = id;
  g_free (self->system_prompt);
  self->system_prompt = g_strdup (system_prompt);
  g_ptr_array_set_size (self->history, 0);
  return TRUE;
}

gboolean
ruv_chat_session_open (RuvChatSession  *self,
                       gint64           session_id,
                       GError         **error)
{
  g_autoptr(RuvStoreSession) s = NULL;
  g_autoptr(RuvGenerateParams) p = NULL;

  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), FALSE);
  s = ruv_store_get_session (self->store, session_id, error);
  if (s == NULL)
    return FALSE;
  if (s->params_json != NULL)
    {
      p = ruv_generate_params_from_json (s->params_json, error);
      if (p == NULL)
        return FALSE;
    }
  self->id = session_id;
  if (!reload (self, error))
    {
      self->id = 0;
      return FALSE;
    }
  take_params (self, p);
  g_free (self->system_prompt);
  self->system_prompt = g_strdup (s->system_prompt);
  claim_kv (self);
  return TRUE;
}

gint64
ruv_chat_session_get_id (RuvChatSession *self)
{
  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), 0);
  return self->id;
}

const char *
ruv_chat_session_get_system_prompt (RuvChatSession *self)
{
  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), NULL);
  return self->system_prompt;
}

const RuvGenerateParams *
ruv_chat_session_get_params (RuvChatSession *self)
{
  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), NULL);
  return self->params;
}

gboolean
ruv_chat_session_set_params (RuvChatSession           *self,
                             const RuvGenerateParams  *params,
                             GError                  **error)
{
  g_autoptr(RuvStoreSession) s = NULL;

  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), FALSE);
  g_return_val_if_fail (params != NULL, FALSE);
  if (!ruv_generate_params_validate (params, error))
    return FALSE;
  take_params (self, params);
  if (self->id == 0)
    return TRUE;
  s = ruv_store_get_session (self->store, self->id, error);
  return s != NULL &&
         ruv_store_set_session_settings (self->store, self->id, self->model_name,
                                         s->system_prompt, self->params_json, error);
}

GPtrArray *
ruv_chat_session_get_history (RuvChatSession *self)
{
  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), NULL);
  return self->history;
}

static gboolean
check_open (RuvChatSession  *self,
            GError         **error)
{
  if (self->id > 0)
    return TRUE;
  g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION, "no chat is open");
  return FALSE;
}

/* ---- answering ---------------------------------------------------------- */

typedef struct
{
  RuvChatSession *self;
  gint64          message_id;
  GString        *text;
  gint64          last_save_us;
  guint           pieces;       /* since the last save */
  RuvTokenFunc    func;
  gpointer        user_data;
} Stream;

static gboolean
on_text (const char *text,
         gpointer    user_data)
{
  Stream *s = user_data;
  gint64 now = g_get_monotonic_time ();

  g_string_append (s->text, text);
  s->pieces++;
  if (s->pieces >= s->self->save_every_tokens ||
      now - s->last_save_us >= (gint64) s->self->save_interval_ms * 1000)
    {
      g_autoptr(GError) error = NULL;

      /* A failed save (disk full) loses nothing stored and is retried at the
       * next interval and at completion; the answer goes on. */
      if (!ruv_store_update_message_text (s->self->store, s->message_id, s->text->str, &error))
        g_debug ("chat: streaming save failed: %s", error->message);
      s->last_save_us = now;
      s->pieces = 0;
    }
  return s->func == NULL || s->func (text, s->user_data);
}

/* Answers the conversation root .. the parent of assistant message
 * `message_id` (the shown branch's leaf, just added, incomplete). On failure
 * the message is deleted and the history reloaded. */
static RuvGenerateResult *
answer (RuvChatSession  *self,
        gint64           message_id,
        RuvTokenFunc     func,
        gpointer         user_data,
        GCancellable    *cancellable,
        GError         **error)
{
  g_autofree RuvChatMessage *msgs = NULL;
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GError) local = NULL;
  RuvGenerateResult *res;
  RuvMessageStats stats;
  Stream s;
  guint i, n = 0;

  if (!reload (self, error))
    return NULL;
  g_assert (self->history->len > 0);
  msgs = g_new0 (RuvChatMessage, self->history->len + 1);
  if (self->system_prompt != NULL && self->system_prompt[0] != '\0')
    {
      msgs[n].role = "system";
      msgs[n++].content = self->system_prompt;
    }
  for (i = 0; i + 1 < self->history->len; i++)
    {
      RuvStoreMessage *m = g_ptr_array_index (self->history, i);

      msgs[n].role = m->role;
      msgs[n++].content = m->content;
    }

  s.self = self;
  s.message_id = message_id;
  s.text = text;
  s.last_save_us = g_get_monotonic_time ();
  s.pieces = 0;
  s.func = func;
  s.user_data = user_data;
  claim_kv (self);
  res = ruv_cpu_backend_chat (self->backend, msgs, n, self->params, on_text, &s, cancellable,
                              error);
  if (res == NULL)
    {
      if (!ruv_store_delete_message (self->store, message_id, &local))
        g_debug ("chat: could not remove the failed answer: %s", local->message);
      g_clear_error (&local);
      if (!reload (self, &local))
        g_debug ("chat: %s", local->message);
      return NULL;
    }
  stats.n_prompt = (gint) CLAMP (res->n_prompt, 0, G_MAXINT);
  stats.n_gen = (gint) CLAMP (res->n_gen, 0, G_MAXINT);
  stats.ttft_ms = res->ttft_ms;
  stats.tokens_per_s = res->gen_tps;
  stats.finish_reason = ruv_finish_reason_name (res->finish_reason);
  if (self->learner != NULL)
    {
      g_clear_pointer (&self->trace, ruv_sona_trace_free);
      self->trace = ruv_cpu_backend_steal_trace (self->backend);
      self->trace_message = message_id;
    }
  if (!ruv_store_complete_message (self->store, message_id, res->text, &stats, error) ||
      !reload (self, error))
    {
      ruv_generate_result_free (res);
      return NULL;
    }
  return res;
}

RuvGenerateResult *
ruv_chat_session_send (RuvChatSession  *self,
                       const char      *text,
                       RuvTokenFunc     func,
                       gpointer         user_data,
                       GCancellable    *cancellable,
                       GError         **error)
{
  g_autoptr(GError) local = NULL;
  RuvGenerateResult *res;
  gint64 parent, user_id, asst_id;

  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), NULL);
  g_return_val_if_fail (text != NULL, NULL);
  if (!check_open (self, error))
    return NULL;
  parent = self->history->len > 0
           ? ((RuvStoreMessage *) g_ptr_array_index (self->history, self->history->len - 1))->id
           : 0;
  user_id = ruv_store_add_message (self->store, self->id, parent, "user", text, NULL, NULL,
                                   TRUE, error);
  if (user_id <= 0)
    return NULL;
  asst_id = ruv_store_add_message (self->store, self->id, user_id, "assistant", "",
                                   self->model_name, self->params_json, FALSE, error);
  if (asst_id <= 0)
    {
      if (!ruv_store_delete_message (self->store, user_id, &local))
        g_debug ("chat: %s", local->message);
      return NULL;
    }
  res = answer (self, asst_id, func, user_data, cancellable, error);
  if (res == NULL)
    {
      /* The turn failed (e.g. too long for the context): take the question
       * back too, so the next one follows the last answer. */
      if (!ruv_store_delete_message (self->store, user_id, &local) || !reload (self, &local))
        g_debug ("chat: %s", local->message);
    }
  return res;
}

/* The last message of the shown branch if it has `role`, else NULL. */
static RuvStoreMessage *
last_with_role (RuvChatSession *self,
                const char     *role)
{
  RuvStoreMessage *m;

  if (self->history->len == 0)
    return NULL;
  m = g_ptr_array_index (self->history, self->history->len - 1);
  return g_str_equal (m->role, role) ? m : NULL;
}

RuvGenerateResult *
ruv_chat_session_regenerate (RuvChatSession  *self,
                             RuvTokenFunc     func,
                             gpointer         user_data,
                             GCancellable    *cancellable,
                             GError         **error)
{
  RuvStoreMessage *last;
  gint64 id;

  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), NULL);
  if (!check_open (self, error))
    return NULL;
  last = last_with_role (self, "assistant");
  if (last == NULL || last->parent_id == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "there is no answer to regenerate");
      return NULL;
    }
  id = ruv_store_regenerate (self->store, last->id, self->model_name, self->params_json, error);
  if (id <= 0)
    return NULL;
  return answer (self, id, func, user_data, cancellable, error);
}

RuvGenerateResult *
ruv_chat_session_edit_last (RuvChatSession  *self,
                            const char      *text,
                            RuvTokenFunc     func,
                            gpointer         user_data,
                            GCancellable    *cancellable,
                            GError         **error)
{
  g_autoptr(GError) local = NULL;
  RuvGenerateResult *res;
  RuvStoreMessage *user = NULL;
  gint64 user_id, asst_id;
  guint i;

  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), NULL);
  g_return_val_if_fail (text != NULL, NULL);
  if (!check_open (self, error))
    return NULL;
  for (i = self->history->len; i > 0 && user == NULL; i--)
    {
      RuvStoreMessage *m = g_ptr_array_index (self->history, i - 1);

      if (g_str_equal (m->role, "user"))
        user = m;
    }
  if (user == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "there is no message of yours to edit");
      return NULL;
    }
  user_id = ruv_store_edit_message (self->store, user->id, text, error);
  if (user_id <= 0)
    return NULL;
  asst_id = ruv_store_add_message (self->store, self->id, user_id, "assistant", "",
                                   self->model_name, self->params_json, FALSE, error);
  if (asst_id <= 0)
    {
      if (!ruv_store_delete_message (self->store, user_id, &local) || !reload (self, &local))
        g_debug ("chat: %s", local->message);
      return NULL;
    }
  res = answer (self, asst_id, func, user_data, cancellable, error);
  if (res == NULL)
    {
      /* Back to the branch that was shown before the edit. */
      if (!ruv_store_delete_message (self->store, user_id, &local) || !reload (self, &local))
        g_debug ("chat: %s", local->message);
    }
  return res;
}

/* ---- branches ----------------------------------------------------------- */

GPtrArray *
ruv_chat_session_list_branches (RuvChatSession  *self,
                                guint           *shown,
                                GError         **error)
{
  g_autoptr(GPtrArray) last = NULL;
  guint i, j, last_shown = 0;

  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), NULL);
  if (shown != NULL)
    *shown = 0;
  if (!check_open (self, error))
    return NULL;
  for (i = self->history->len; i > 0; i--)
    {
      RuvStoreMessage *m = g_ptr_array_index (self->history, i - 1);
      g_autoptr(GPtrArray) sib = ruv_store_list_siblings (self->store, m->id, error);
      guint at = 0;

      if (sib == NULL)
        return NULL;
      for (j = 0; j < sib->len; j++)
        if (((RuvStoreMessage *) g_ptr_array_index (sib, j))->id == m->id)
          at = j;
      if (sib->len > 1)
        {
          if (shown != NULL)
            *shown = at;
          return g_steal_pointer (&sib);
        }
      if (last == NULL)
        {
          last = g_steal_pointer (&sib);
          last_shown = at;
        }
    }
  if (last == NULL)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_message_free);
  if (shown != NULL)
    *shown = last_shown;
  return g_steal_pointer (&last);
}

gboolean
ruv_chat_session_switch_branch (RuvChatSession  *self,
                                gint64           message_id,
                                GError         **error)
{
  g_autoptr(RuvStoreMessage) m = NULL;

  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), FALSE);
  if (!check_open (self, error))
    return FALSE;
  m = ruv_store_get_message (self->store, message_id, error);
  if (m == NULL)
    return FALSE;
  if (m->session_id != self->id)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                   "message %" G_GINT64_FORMAT " is not in this chat", message_id);
      return FALSE;
    }
  return ruv_store_switch_branch (self->store, message_id, error) && reload (self, error);
}

gboolean
ruv_chat_session_set_title (RuvChatSession  *self,
                            const char      *title,
                            GError         **error)
{
  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), FALSE);
  return check_open (self, error) &&
         ruv_store_rename_session (self->store, self->id, title, error);
}

/* ---- ratings ------------------------------------------------------------ */

/* The exchange ending at history[idx] as tokens: the prompt exactly as
 * generation built it (system prompt and the branch before the answer, in
 * the chat template, assistant turn opened), then the answer's tokens. */
static GArray *
exchange_tokens (RuvChatSession  *self,
                 guint            idx,
                 gint64          *n_prompt,
                 GError         **error)
{
  g_autofree RuvChatMessage *msgs = g_new0 (RuvChatMessage, idx + 2);
  g_autofree char *prompt = NULL;
  g_autoptr(GArray) toks = NULL;
  g_autoptr(GArray) resp = NULL;
  RuvTokenizer *tok = ruv_cpu_backend_get_tokenizer (self->backend);
  RuvStoreMessage *answer_msg = g_ptr_array_index (self->history, idx);
  guint i, n = 0;

  if (tok == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION, "no model is loaded");
      return NULL;
    }
  if (self->system_prompt != NULL && self->system_prompt[0] != '\0')
    {
      msgs[n].role = "system";
      msgs[n++].content = self->system_prompt;
    }
  for (i = 0; i < idx; i++)
    {
      RuvStoreMessage *m = g_ptr_array_index (self->history, i);

      msgs[n].role = m->role;
      msgs[n++].content = m->content;
    }
  prompt = ruv_cpu_backend_format_chat (self->backend, msgs, n);
  toks = ruv_tokenizer_encode (tok, prompt, -1, TRUE, TRUE, error);
  if (toks == NULL)
    return NULL;
  resp = ruv_tokenizer_encode (tok, answer_msg->content, -1, FALSE, FALSE, error);
  if (resp == NULL)
    return NULL;
  if (toks->len == 0 || resp->len == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA, "the answer is empty");
      return NULL;
    }
  *n_prompt = toks->len;
  g_array_append_vals (toks, resp->data, resp->len);
  return g_steal_pointer (&toks);
}

/* Runs the exchange ending at history[idx] through a context of the
 * learner's model, keeping what the backward pass needs. */
static RuvSonaTrace *
capture (RuvChatSession  *self,
         guint            idx,
         GError         **error)
{
  g_autoptr(GArray) toks = NULL;
  RuvSonaLlm *sona = ruv_learner_get_sona (self->learner);
  gint64 n_prompt = 0;

  toks = exchange_tokens (self, idx, &n_prompt, error);
  if (toks == NULL)
    return NULL;
  if (self->capture_ctx == NULL || ruv_context_get_n_ctx (self->capture_ctx) < (gint64) toks->len)
    {
      RuvModel *model = ruv_sona_llm_get_model (sona);
      RuvContextParams cp;
      gint64 limit = ruv_model_get_context_length (model);

      if (limit > 0 && (gint64) toks->len > limit)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_SONA,
                       "the exchange (%u tokens) is longer than the model's context",
                       toks->len);
          return NULL;
        }
      g_clear_pointer (&self->capture_ctx, ruv_context_free);
      ruv_context_params_init (&cp);
      /* Room for a few more turns before it has to grow again. */
      cp.n_ctx = (gint64) toks->len * 2;
      if (limit > 0)
        cp.n_ctx = MIN (cp.n_ctx, limit);
      self->capture_ctx = ruv_context_new (model, &cp, error);
      if (self->capture_ctx == NULL)
        return NULL;
    }
  return ruv_sona_llm_capture (sona, self->capture_ctx, (const gint32 *) toks->data, n_prompt,
                               toks->len, NULL, error);
}

/* Runs the instant loop on history[idx] (already rated in the store); the
 * learner records the outcome. FALSE: it did not run (nothing recorded). */
static gboolean
adapt (RuvChatSession      *self,
       guint                idx,
       double               rating,
       RuvAdaptationResult *result,
       GError             **error)
{
  g_autofree char *key = NULL;
  RuvStoreMessage *m = g_ptr_array_index (self->history, idx);
  RuvSonaTrace *trace;

  /* The activations kept while the answer was generated serve its first
   * rating (the learner takes them); a re-rating captures them again. */
  if (self->trace != NULL && self->trace_message == m->id)
    {
      g_debug ("chat: rating message %" G_GINT64_FORMAT " with its generation's activations",
               m->id);
      trace = g_steal_pointer (&self->trace);
    }
  else
    {
      g_debug ("chat: capturing the activations of message %" G_GINT64_FORMAT, m->id);
      trace = capture (self, idx, error);
    }
  if (trace == NULL)
    return FALSE;
  key = g_strdup_printf ("message:%" G_GINT64_FORMAT, m->id);
  /* A refusal (non-finite values) is recorded as skipped by the learner. */
  if (!ruv_learner_rate (self->learner, trace, m->id, key, rating, result, NULL, error))
    {
      result->skipped = TRUE;
      result->applied = FALSE;
    }
  return TRUE;
}

gboolean
ruv_chat_session_rate_last (RuvChatSession       *self,
                            RuvRating             rating,
                            RuvAdaptationResult  *result,
                            GError              **error)
{
  g_autoptr(GError) why = NULL;
  RuvAdaptationResult res;
  RuvStoreMessage *m;
  gboolean ran = FALSE;

  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), FALSE);
  memset (&res, 0, sizeof res);
  res.loss = NAN;
  res.loss_after = NAN;
  res.grad_norm = NAN;
  res.skipped = TRUE;
  if (!check_open (self, error))
    return FALSE;
  m = last_with_role (self, "assistant");
  if (m == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "there is no answer to rate");
      return FALSE;
    }
  if (!ruv_store_rate_message (self->store, m->id, rating, error))
    return FALSE;
  if (self->learner != NULL)
    {
      double r = rating == RUV_RATING_UP ? 1.0 : rating == RUV_RATING_DOWN ? -1.0 : 0.5;

      ran = adapt (self, self->history->len - 1, r, &res, &why);
      if (!ran)
        g_debug ("chat: no adaptation for message %" G_GINT64_FORMAT ": %s", m->id,
                 why->message);
    }
  if (!ran)
    {
      g_autoptr(GError) local = NULL;

      res.skipped = TRUE;
      res.applied = FALSE;
      if (!ruv_store_record_adaptation (self->store, m->id, RUV_ADAPTATION_SKIPPED, -1, NAN,
                                        NAN, 0, &local))
        g_debug ("chat: outcome not recorded: %s", local->message);
    }
  if (res.applied)
    self->n_applied++;
  if (result != NULL)
    *result = res;
  return reload (self, error);
}

guint
ruv_chat_session_get_n_applied (RuvChatSession *self)
{
  g_return_val_if_fail (RUV_IS_CHAT_SESSION (self), 0);
  return self->n_applied;
}
