/* ruv-store-async.c — the _async/_finish pairs: each runs the sync call in a
 * worker thread.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-store.h"

/* ------------------------------------------------------------------------ */
/* Async: each runs the sync call in a worker thread. */

typedef struct
{
  gint64           session_id;
  gint64           parent_id;
  gint64           message_id;
  char            *role;
  char            *content;
  char            *model;
  char            *params_json;
  gboolean         complete;
  RuvMessageStats  stats;
  char            *finish_reason;
  gboolean         has_stats;
  guint            limit;
  RuvRating        rating;
} AsyncData;

static void
async_data_free (AsyncData *d)
{
  g_free (d->role);
  g_free (d->content);
  g_free (d->model);
  g_free (d->params_json);
  g_free (d->finish_reason);
  g_free (d);
}

static GTask *
new_task (RuvStore            *self,
          gpointer             tag,
          GCancellable        *cancellable,
          GAsyncReadyCallback  callback,
          gpointer             user_data,
          AsyncData          **data_out)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  AsyncData *d = g_new0 (AsyncData, 1);

  g_task_set_source_tag (task, tag);
  g_task_set_task_data (task, d, (GDestroyNotify) async_data_free);
  *data_out = d;
  return task;
}

static void
add_message_thread (GTask        *task,
                    gpointer      source,
                    gpointer      task_data,
                    GCancellable *cancellable)
{
  AsyncData *d = task_data;
  GError *error = NULL;
  gint64 id = ruv_store_add_message (source, d->session_id, d->parent_id, d->role, d->content,
                                     d->model, d->params_json, d->complete, &error);

  if (id > 0)
    g_task_return_int (task, (gssize) id);
  else
    g_task_return_error (task, error);
}

void
ruv_store_add_message_async (RuvStore            *self,
                             gint64               session_id,
                             gint64               parent_id,
                             const char          *role,
                             const char          *content,
                             const char          *model,
                             const char          *params_json,
                             gboolean             complete,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  AsyncData *d;
  g_autoptr(GTask) task = new_task (self, ruv_store_add_message_async, cancellable, callback,
                                    user_data, &d);

  d->session_id = session_id;
  d->parent_id = parent_id;
  d->role = g_strdup (role);
  d->content = g_strdup (content);
  d->model = g_strdup (model);
  d->params_json = g_strdup (params_json);
  d->complete = complete;
  g_task_run_in_thread (task, add_message_thread);
}

gint64
ruv_store_add_message_finish (RuvStore      *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), 0);
  return (gint64) g_task_propagate_int (G_TASK (result), error);
}

static void
update_text_thread (GTask        *task,
                    gpointer      source,
                    gpointer      task_data,
                    GCancellable *cancellable)
{
  AsyncData *d = task_data;
  GError *error = NULL;

  if (ruv_store_update_message_text (source, d->message_id, d->content, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

void
ruv_store_update_message_text_async (RuvStore            *self,
                                     gint64               message_id,
                                     const char          *text,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  AsyncData *d;
  g_autoptr(GTask) task = new_task (self, ruv_store_update_message_text_async, cancellable,
                                    callback, user_data, &d);

  d->message_id = message_id;
  d->content = g_strdup (text);
  g_task_run_in_thread (task, update_text_thread);
}

gboolean
ruv_store_update_message_text_finish (RuvStore      *self,
                                      GAsyncResult  *result,
                                      GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
complete_thread (GTask        *task,
                 gpointer      source,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  AsyncData *d = task_data;
  GError *error = NULL;

  d->stats.finish_reason = d->finish_reason;
  if (ruv_store_complete_message (source, d->message_id, d->content,
                                  d->has_stats ? &d->stats : NULL, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

void
ruv_store_complete_message_async (RuvStore               *self,
                                  gint64                  message_id,
                                  const char             *text,
                                  const RuvMessageStats  *stats,
                                  GCancellable           *cancellable,
                                  GAsyncReadyCallback     callback,
                                  gpointer                user_data)
{
  AsyncData *d;
  g_autoptr(GTask) task = new_task (self, ruv_store_complete_message_async, cancellable,
                                    callback, user_data, &d);

  d->message_id = message_id;
  d->content = g_strdup (text);
  if (stats != NULL)
    {
      d->stats = *stats;
      d->finish_reason = g_strdup (stats->finish_reason);
      d->has_stats = TRUE;
    }
  g_task_run_in_thread (task, complete_thread);
}

gboolean
ruv_store_complete_message_finish (RuvStore      *self,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
load_chat_thread (GTask        *task,
                  gpointer      source,
                  gpointer      task_data,
                  GCancellable *cancellable)
{
  AsyncData *d = task_data;
  GError *error = NULL;
  GPtrArray *out = ruv_store_load_chat (source, d->session_id, &error);

  if (out != NULL)
    g_task_return_pointer (task, out, (GDestroyNotify) g_ptr_array_unref);
  else
    g_task_return_error (task, error);
}

void
ruv_store_load_chat_async (RuvStore            *self,
                           gint64               session_id,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  AsyncData *d;
  g_autoptr(GTask) task = new_task (self, ruv_store_load_chat_async, cancellable, callback,
                                    user_data, &d);

  d->session_id = session_id;
  g_task_run_in_thread (task, load_chat_thread);
}

GPtrArray *
ruv_store_load_chat_finish (RuvStore      *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
search_thread (GTask        *task,
               gpointer      source,
               gpointer      task_data,
               GCancellable *cancellable)
{
  AsyncData *d = task_data;
  GError *error = NULL;
  GPtrArray *out = ruv_store_search (source, d->content, d->limit, &error);

  if (out != NULL)
    g_task_return_pointer (task, out, (GDestroyNotify) g_ptr_array_unref);
  else
    g_task_return_error (task, error);
}

void
ruv_store_search_async (RuvStore            *self,
                        const char          *text,
                        guint                limit,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  AsyncData *d;
  g_autoptr(GTask) task = new_task (self, ruv_store_search_async, cancellable, callback,
                                    user_data, &d);

  d->content = g_strdup (text);
  d->limit = limit;
  g_task_run_in_thread (task, search_thread);
}

GPtrArray *
ruv_store_search_finish (RuvStore      *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
rate_thread (GTask        *task,
             gpointer      source,
             gpointer      task_data,
             GCancellable *cancellable)
{
  AsyncData *d = task_data;
  GError *error = NULL;

  if (ruv_store_rate_message (source, d->message_id, d->rating, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

void
ruv_store_rate_message_async (RuvStore            *self,
                              gint64               message_id,
                              RuvRating            rating,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  AsyncData *d;
  g_autoptr(GTask) task = new_task (self, ruv_store_rate_message_async, cancellable, callback,
                                    user_data, &d);

  d->message_id = message_id;
  d->rating = rating;
  g_task_run_in_thread (task, rate_thread);
}

gboolean
ruv_store_rate_message_finish (RuvStore      *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
