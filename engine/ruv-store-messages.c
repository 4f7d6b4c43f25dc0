/* ruv-store-messages.c — messages as a tree: adding, streaming updates,
 * completion, branches (edit, regenerate, switch, copy), deletion, and search.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include <glib/gi18n-lib.h>
#include <sqlite3.h>

#include "ruv-error.h"
#include "ruv-store-private.h"

/* ------------------------------------------------------------------------ */
/* Messages */

#define MAX_TREE_DEPTH       10000000              /* guard on recursive walks */

/* Columns of a message row, as read by message_from_row (). */
#define MESSAGE_COLS \
  "m.id, m.session_id, m.parent_id, m.role, m.content, m.created_us, m.model, " \
  "m.params_json, m.n_prompt, m.n_gen, m.ttft_ms, m.tokens_per_s, m.finish_reason, " \
  "m.complete, COALESCE(r.rating, 0)"

static RuvStoreMessage *
message_from_row (sqlite3_stmt *st)
{
  RuvStoreMessage *m = g_new0 (RuvStoreMessage, 1);

  m->id = sqlite3_column_int64 (st, 0);
  m->session_id = sqlite3_column_int64 (st, 1);
  m->parent_id = sqlite3_column_int64 (st, 2);
  m->role = _ruv_store_col_strdup (st, 3);
  m->content = _ruv_store_col_strdup (st, 4);
  if (m->content == NULL)
    m->content = g_strdup ("");
  m->created_us = sqlite3_column_int64 (st, 5);
  m->model = _ruv_store_col_strdup (st, 6);
  m->params_json = _ruv_store_col_strdup (st, 7);
  m->n_prompt = sqlite3_column_type (st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int (st, 8);
  m->n_gen = sqlite3_column_type (st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int (st, 9);
  m->ttft_ms = sqlite3_column_type (st, 10) == SQLITE_NULL ? -1 : sqlite3_column_double (st, 10);
  m->tokens_per_s = sqlite3_column_type (st, 11) == SQLITE_NULL ? -1
                                                                : sqlite3_column_double (st, 11);
  m->finish_reason = _ruv_store_col_strdup (st, 12);
  m->complete = sqlite3_column_int (st, 13) != 0;
  m->rating = (RuvRating) CLAMP (sqlite3_column_int (st, 14), -1, 1);
  return m;
}

RuvStoreMessage *
_ruv_store_get_message_locked (RuvStore  *self,
                               gint64     message_id,
                               GError   **error)
{
  g_autoptr(sqlite3_stmt) st = _ruv_store_prepare (self, "SELECT " MESSAGE_COLS " FROM messages m"
                                                   " LEFT JOIN ratings r ON r.message_id = m.id"
                                                   " WHERE m.id = ?1", error);
  int rc;

  if (st == NULL)
    return NULL;
  sqlite3_bind_int64 (st, 1, message_id);
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    return message_from_row (st);
  if (rc == SQLITE_DONE)
    g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                 _("No message with id %" G_GINT64_FORMAT), message_id);
  else
    _ruv_store_error (self, error, rc, _("Could not read the chat history"));
  return NULL;
}

RuvStoreMessage *
ruv_store_get_message (RuvStore  *self,
                       gint64     message_id,
                       GError   **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    return _ruv_store_get_message_locked (self, message_id, error);
  }
}

static gboolean
set_leaf (RuvStore  *self,
          gint64     session_id,
          gint64     leaf_id,
          GError   **error)
{
  g_autoptr(sqlite3_stmt) st = _ruv_store_prepare (self,
    "UPDATE sessions SET leaf_id = ?2,"
    " updated_us = max(updated_us, ?3) WHERE id = ?1", error);

  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, session_id);
  _ruv_store_bind_id (st, 2, leaf_id);
  sqlite3_bind_int64 (st, 3, g_get_real_time ());
  return _ruv_store_step_done (self, st, _("Could not save the chat"), error);
}

/* The automatic title: the first line of the first user message, at most
 * 48 characters, cut at a character boundary. */
static char *
auto_title (const char *content)
{
  g_autofree char *line = g_strstrip (g_strdup (content));
  char *nl = strchr (line, '\n');
  glong n;

  if (nl != NULL)
    *nl = '\0';
  g_strstrip (line);
  n = g_utf8_strlen (line, -1);
  if (n > 48)
    {
      g_autofree char *cut = g_utf8_substring (line, 0, 47);
      char *space = strrchr (cut, ' ');

      /* End on a whole word when one ends in the second half. */
      if (space != NULL && g_utf8_strlen (cut, space - cut) >= 24)
        *space = '\0';
      return g_strconcat (g_strchomp (cut), "…", NULL);
    }
  return g_steal_pointer (&line);
}

/* The insert itself (lock held, transaction open). created_us < 0: now. */
static gint64
insert_message (RuvStore    *self,
                gint64       session_id,
                gint64       parent_id,
                const char  *role,
                const char  *content,
                gint64       created_us,
                const char  *model,
                const char  *params_json,
                gboolean     complete,
                GError     **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  gint64 id;

  if (parent_id > 0)
    {
      g_autoptr(RuvStoreMessage) parent = _ruv_store_get_message_locked (self, parent_id, error);

      if (parent == NULL)
        return 0;
      if (parent->session_id != session_id)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                       "message %" G_GINT64_FORMAT " belongs to another chat", parent_id);
          return 0;
        }
    }
  else if (!_ruv_store_session_exists (self, session_id, error))
    return 0;

  st = _ruv_store_prepare (self,
    "INSERT INTO messages (session_id, parent_id, role, content, created_us,"
    " model, params_json, complete) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", error);
  if (st == NULL)
    return 0;
  sqlite3_bind_int64 (st, 1, session_id);
  _ruv_store_bind_id (st, 2, parent_id);
  _ruv_store_bind_text (st, 3, role);
  _ruv_store_bind_text (st, 4, content != NULL ? content : "");
  sqlite3_bind_int64 (st, 5, created_us >= 0 ? created_us : g_get_real_time ());
  _ruv_store_bind_text (st, 6, model);
  _ruv_store_bind_text (st, 7, params_json);
  sqlite3_bind_int (st, 8, complete ? 1 : 0);
  if (!_ruv_store_step_done (self, st, _("Could not save the message"), error))
    return 0;
  id = sqlite3_last_insert_rowid (self->db);
  return id;
}

static gboolean
maybe_auto_title (RuvStore    *self,
                  gint64       session_id,
                  const char  *role,
                  const char  *content,
                  GError     **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  g_autofree char *title = NULL;

  if (!g_str_equal (role, "user") || content == NULL || *content == '\0')
    return TRUE;
  title = auto_title (content);
  if (*title == '\0')
    return TRUE;
  st = _ruv_store_prepare (self, "UPDATE sessions SET title = ?2 WHERE id = ?1 AND title_auto = 1"
                           " AND title = ''", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, session_id);
  _ruv_store_bind_text (st, 2, title);
  return _ruv_store_step_done (self, st, _("Could not save the chat"), error);
}

gint64
ruv_store_add_message (RuvStore    *self,
                       gint64       session_id,
                       gint64       parent_id,
                       const char  *role,
                       const char  *content,
                       const char  *model,
                       const char  *params_json,
                       gboolean     complete,
                       GError     **error)
{
  gint64 id;

  g_return_val_if_fail (RUV_IS_STORE (self), 0);
  if (!_ruv_store_role_ok (role, error) ||
      !_ruv_store_text_ok (content, MAX_CONTENT_BYTES, "message", error) ||
      !_ruv_store_text_ok (model, MAX_SHORT_TEXT, "model", error) ||
      !_ruv_store_json_text_ok (params_json, error))
    return 0;
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return 0;
    id = insert_message (self, session_id, parent_id, role, content, -1, model, params_json,
                         complete, error);
    if (!_ruv_store_finish_write (self, id > 0 && set_leaf (self, session_id, id, error) &&
                                  maybe_auto_title (self, session_id, role, content, error), error))
      return 0;
  }
  return id;
}

gboolean
ruv_store_update_message_text (RuvStore    *self,
                               gint64       message_id,
                               const char  *text,
                               GError     **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  gboolean ok;

  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  g_return_val_if_fail (text != NULL, FALSE);
  if (!_ruv_store_text_ok (text, MAX_CONTENT_BYTES, "message", error))
    return FALSE;
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return FALSE;
    st = _ruv_store_prepare (self, "UPDATE messages SET content = ?2 WHERE id = ?1 AND complete = 0"
                             " AND content IS NOT ?2", error);
    ok = st != NULL;
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, message_id);
        _ruv_store_bind_text (st, 2, text);
        ok = _ruv_store_step_done (self, st, _("Could not save the message"), error);
      }
    if (ok && sqlite3_changes (self->db) == 0)
      {
        g_autoptr(RuvStoreMessage) m = _ruv_store_get_message_locked (self, message_id, error);

        if (m == NULL)
          ok = FALSE;
        else if (m->complete)
          {
            g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                         "message %" G_GINT64_FORMAT " is complete and cannot be streamed to",
                         message_id);
            ok = FALSE;
          }
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return _ruv_store_finish_write (self, ok, error);
  }
}

gboolean
ruv_store_complete_message (RuvStore               *self,
                            gint64                  message_id,
                            const char             *text,
                            const RuvMessageStats  *stats,
                            GError                **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  gboolean ok;

  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  if (!_ruv_store_text_ok (text, MAX_CONTENT_BYTES, "message", error) ||
      (stats != NULL &&
       !_ruv_store_text_ok (stats->finish_reason, MAX_SHORT_TEXT, "finish reason", error)))
    return FALSE;
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return FALSE;
    st = _ruv_store_prepare (self,
      "UPDATE messages SET content = COALESCE(?2, content), complete = 1,"
      " n_prompt = ?3, n_gen = ?4, ttft_ms = ?5, tokens_per_s = ?6,"
      " finish_reason = ?7 WHERE id = ?1", error);
    ok = st != NULL;
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, message_id);
        _ruv_store_bind_text (st, 2, text);
        if (stats != NULL && stats->n_prompt >= 0)
          sqlite3_bind_int (st, 3, stats->n_prompt);
        if (stats != NULL && stats->n_gen >= 0)
          sqlite3_bind_int (st, 4, stats->n_gen);
        if (stats != NULL && stats->ttft_ms >= 0 && isfinite (stats->ttft_ms))
          sqlite3_bind_double (st, 5, stats->ttft_ms);
        if (stats != NULL && stats->tokens_per_s >= 0 && isfinite (stats->tokens_per_s))
          sqlite3_bind_double (st, 6, stats->tokens_per_s);
        _ruv_store_bind_text (st, 7, stats != NULL && stats->finish_reason != NULL
                                     ? stats->finish_reason : "stop");
        ok = _ruv_store_step_done (self, st, _("Could not save the message"), error);
      }
    if (ok && sqlite3_changes (self->db) == 0)
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                     _("No message with id %" G_GINT64_FORMAT), message_id);
        ok = FALSE;
      }
    if (ok)
      {
        g_clear_pointer (&st, sqlite3_finalize);
        st = _ruv_store_prepare (self, "UPDATE sessions SET updated_us = ?2 WHERE id ="
                                 " (SELECT session_id FROM messages WHERE id = ?1)", error);
        ok = st != NULL;
        if (ok)
          {
            sqlite3_bind_int64 (st, 1, message_id);
            sqlite3_bind_int64 (st, 2, g_get_real_time ());
            ok = _ruv_store_step_done (self, st, _("Could not save the chat"), error);
          }
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return _ruv_store_finish_write (self, ok, error);
  }
}

static GPtrArray *
collect_messages (RuvStore      *self,
                  sqlite3_stmt  *st,
                  GError       **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_message_free);
  int rc;

  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (out, message_from_row (st));
  if (rc != SQLITE_DONE)
    {
      _ruv_store_error (self, error, rc, _("Could not read the chat history"));
      return NULL;
    }
  return g_steal_pointer (&out);
}

/* Root first, ending at `leaf_id`. */
GPtrArray *
_ruv_store_load_path_locked (RuvStore  *self,
                             gint64     leaf_id,
                             GError   **error)
{
  g_autoptr(sqlite3_stmt) st = _ruv_store_prepare (self,
    "WITH RECURSIVE path(id, depth) AS ("
    "  SELECT ?1, 0"
    "  UNION ALL SELECT m.parent_id, path.depth + 1 FROM messages m JOIN path ON m.id = path.id"
    "    WHERE m.parent_id IS NOT NULL AND path.depth < ?2"
    ") SELECT " MESSAGE_COLS " FROM path JOIN messages m ON m.id = path.id"
    "  LEFT JOIN ratings r ON r.message_id = m.id ORDER BY path.depth DESC", error);

  if (st == NULL)
    return NULL;
  sqlite3_bind_int64 (st, 1, leaf_id);
  sqlite3_bind_int64 (st, 2, MAX_TREE_DEPTH);
  return collect_messages (self, st, error);
}

GPtrArray *
ruv_store_load_chat (RuvStore  *self,
                     gint64     session_id,
                     GError   **error)
{
  g_autoptr(RuvStoreSession) s = NULL;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    s = _ruv_store_get_session_locked (self, session_id, error);
    if (s == NULL)
      return NULL;
    return _ruv_store_load_path_locked (self, s->leaf_id, error);
  }
}

GPtrArray *
ruv_store_list_children (RuvStore  *self,
                         gint64     session_id,
                         gint64     parent_id,
                         GError   **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    st = _ruv_store_prepare (self, "SELECT " MESSAGE_COLS " FROM messages m"
                             " LEFT JOIN ratings r ON r.message_id = m.id"
                             " WHERE m.session_id = ?1 AND m.parent_id IS ?2 ORDER BY m.id", error);
    if (st == NULL)
      return NULL;
    sqlite3_bind_int64 (st, 1, session_id);
    _ruv_store_bind_id (st, 2, parent_id);
    return collect_messages (self, st, error);
  }
}

GPtrArray *
ruv_store_list_siblings (RuvStore  *self,
                         gint64     message_id,
                         GError   **error)
{
  g_autoptr(RuvStoreMessage) m = NULL;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  m = ruv_store_get_message (self, message_id, error);
  if (m == NULL)
    return NULL;
  return ruv_store_list_children (self, m->session_id, m->parent_id, error);
}

/* A sibling of `message_id` (same parent), made the leaf. */
static gint64
add_sibling (RuvStore    *self,
             gint64       message_id,
             gboolean     regenerate,
             const char  *content,
             const char  *model,
             const char  *params_json,
             GError     **error)
{
  g_autoptr(RuvStoreMessage) m = NULL;
  gint64 id;

  if (!_ruv_store_text_ok (content, MAX_CONTENT_BYTES, "message", error) ||
      !_ruv_store_text_ok (model, MAX_SHORT_TEXT, "model", error) ||
      !_ruv_store_json_text_ok (params_json, error))
    return 0;
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return 0;
    m = _ruv_store_get_message_locked (self, message_id, error);
    if (m == NULL)
      {
        _ruv_store_rollback (self);
        return 0;
      }
    if (regenerate && !g_str_equal (m->role, "assistant"))
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                     "only an assistant message can be regenerated (message %" G_GINT64_FORMAT
                     " is a %s message)", message_id, m->role);
        _ruv_store_rollback (self);
        return 0;
      }
    id = insert_message (self, m->session_id, m->parent_id, m->role,
                         regenerate ? "" : content, -1,
                         regenerate ? (model != NULL ? model : m->model) : m->model,
                         regenerate ? (params_json != NULL ? params_json : m->params_json)
                                    : m->params_json,
                         !regenerate, error);
    if (!_ruv_store_finish_write (self, id > 0 && set_leaf (self, m->session_id, id, error), error))
      return 0;
  }
  return id;
}

gint64
ruv_store_edit_message (RuvStore    *self,
                        gint64       message_id,
                        const char  *new_content,
                        GError     **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), 0);
  g_return_val_if_fail (new_content != NULL, 0);
  return add_sibling (self, message_id, FALSE, new_content, NULL, NULL, error);
}

gint64
ruv_store_regenerate (RuvStore    *self,
                      gint64       message_id,
                      const char  *model,
                      const char  *params_json,
                      GError     **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), 0);
  return add_sibling (self, message_id, TRUE, NULL, model, params_json, error);
}

gboolean
ruv_store_switch_branch (RuvStore  *self,
                         gint64     message_id,
                         GError   **error)
{
  g_autoptr(RuvStoreMessage) m = NULL;
  g_autoptr(sqlite3_stmt) st = NULL;
  gboolean ok;
  int rc;

  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return FALSE;
    m = _ruv_store_get_message_locked (self, message_id, error);
    ok = m != NULL;
    if (ok)
      {
        /* Follow the newest child down to a leaf. */
        st = _ruv_store_prepare (self,
          "WITH RECURSIVE down(id, depth) AS ("
          "  SELECT ?1, 0"
          "  UNION ALL SELECT (SELECT max(c.id) FROM messages c WHERE c.parent_id = down.id),"
          "    depth + 1 FROM down WHERE down.id IS NOT NULL AND depth < ?2"
          ") SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1", error);
        ok = st != NULL;
      }
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, message_id);
        sqlite3_bind_int64 (st, 2, MAX_TREE_DEPTH);
        rc = sqlite3_step (st);
        if (rc != SQLITE_ROW)
          {
            _ruv_store_error (self, error, rc, _("Could not read the chat history"));
            ok = FALSE;
          }
        else
          ok = set_leaf (self, m->session_id, sqlite3_column_int64 (st, 0), error);
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return _ruv_store_finish_write (self, ok, error);
  }
}

static gboolean
copy_rating (RuvStore  *self,
             gint64     from_id,
             gint64     to_id,
             GError   **error)
{
  g_autoptr(sqlite3_stmt) st = _ruv_store_prepare (self,
    "INSERT INTO ratings (message_id, rating, rated_us, outcome, latency_us, loss_before,"
    " loss_after, snapshot_id) SELECT ?2, rating, rated_us, outcome, latency_us, loss_before,"
    " loss_after, snapshot_id FROM ratings WHERE message_id = ?1", error);

  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, from_id);
  sqlite3_bind_int64 (st, 2, to_id);
  return _ruv_store_step_done (self, st, _("Could not save the rating"), error);
}

static gboolean
copy_message_stats (RuvStore  *self,
                    gint64     from_id,
                    gint64     to_id,
                    GError   **error)
{
  g_autoptr(sqlite3_stmt) st = _ruv_store_prepare (self,
    "UPDATE messages SET (n_prompt, n_gen, ttft_ms, tokens_per_s, finish_reason, complete) ="
    " (SELECT n_prompt, n_gen, ttft_ms, tokens_per_s, finish_reason, complete FROM messages"
    "  WHERE id = ?1) WHERE id = ?2", error);

  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, from_id);
  sqlite3_bind_int64 (st, 2, to_id);
  return _ruv_store_step_done (self, st, _("Could not save the message"), error);
}

gint64
ruv_store_copy_branch (RuvStore    *self,
                       gint64       message_id,
                       const char  *title,
                       GError     **error)
{
  g_autoptr(RuvStoreMessage) m = NULL;
  g_autoptr(RuvStoreSession) s = NULL;
  g_autoptr(GPtrArray) path = NULL;
  gint64 session_id = 0, parent = 0, now = g_get_real_time ();
  gboolean ok;
  guint i;

  g_return_val_if_fail (RUV_IS_STORE (self), 0);
  if (!_ruv_store_text_ok (title, MAX_SHORT_TEXT, "title", error))
    return 0;
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return 0;
    ok = (m = _ruv_store_get_message_locked (self, message_id, error)) != NULL &&
         (s = _ruv_store_get_session_locked (self, m->session_id, error)) != NULL &&
         (path = _ruv_store_load_path_locked (self, message_id, error)) != NULL;
    if (ok)
      {
        g_autofree char *copy_title = title != NULL ? g_strdup (title)
                                      : g_strdup_printf (_("%s (copy)"), s->title);

        session_id = _ruv_store_insert_session (self, copy_title, FALSE, now, now, FALSE, FALSE,
                                                s->model, s->system_prompt, s->params_json,
                                                error);
        ok = session_id > 0;
      }
    for (i = 0; ok && i < path->len; i++)
      {
        RuvStoreMessage *pm = g_ptr_array_index (path, i);
        gint64 id = insert_message (self, session_id, parent, pm->role, pm->content,
                                    pm->created_us, pm->model, pm->params_json, TRUE, error);

        ok = id > 0 && copy_message_stats (self, pm->id, id, error) &&
             copy_rating (self, pm->id, id, error);
        parent = id;
      }
    ok = ok && set_leaf (self, session_id, parent, error);
    if (!_ruv_store_finish_write (self, ok, error))
      return 0;
  }
  return session_id;
}

gboolean
ruv_store_delete_message (RuvStore  *self,
                          gint64     message_id,
                          GError   **error)
{
  static const char subtree[] =
    "WITH RECURSIVE d(id, depth) AS (SELECT ?1, 0 UNION ALL"
    " SELECT m.id, d.depth + 1 FROM messages m JOIN d ON m.parent_id = d.id"
    " WHERE d.depth < 10000000) SELECT id FROM d";
  g_autoptr(RuvStoreMessage) m = NULL;
  g_autoptr(sqlite3_stmt) st = NULL;
  g_autofree char *leaf_sql = NULL, *del_sql = NULL;
  gboolean ok;

  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  leaf_sql = g_strconcat ("UPDATE sessions SET leaf_id = ?2 WHERE id = ?3 AND leaf_id IN (",
                          subtree, ")", NULL);
  del_sql = g_strconcat ("DELETE FROM messages WHERE id IN (", subtree, ")", NULL);
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return FALSE;
    m = _ruv_store_get_message_locked (self, message_id, error);
    ok = m != NULL;
    if (ok)
      {
        /* The shown branch went through it: show its parent. */
        st = _ruv_store_prepare (self, leaf_sql, error);
        ok = st != NULL;
        if (ok)
          {
            sqlite3_bind_int64 (st, 1, message_id);
            _ruv_store_bind_id (st, 2, m->parent_id);
            sqlite3_bind_int64 (st, 3, m->session_id);
            ok = _ruv_store_step_done (self, st, _("Could not delete the message"), error);
          }
        g_clear_pointer (&st, sqlite3_finalize);
      }
    if (ok)
      {
        /* One statement for the whole subtree: the parent links are checked
         * at its end, when none is left dangling. */
        st = _ruv_store_prepare (self, del_sql, error);
        ok = st != NULL;
        if (ok)
          {
            sqlite3_bind_int64 (st, 1, message_id);
            ok = _ruv_store_step_done (self, st, _("Could not delete the message"), error);
          }
        g_clear_pointer (&st, sqlite3_finalize);
      }
    return _ruv_store_finish_write (self, ok, error);
  }
}

/* ------------------------------------------------------------------------ */
/* Search */

/* Each word of the user's text becomes a quoted FTS5 prefix term, so no
 * input is taken as query syntax. */
static char *
fts_query (const char *text)
{
  g_auto(GStrv) words = g_strsplit_set (text, " \t\r\n", -1);
  g_autoptr(GString) q = g_string_new (NULL);
  gsize i;

  for (i = 0; words[i] != NULL; i++)
    {
      const char *p;

      if (*words[i] == '\0')
        continue;
      if (q->len > 0)
        g_string_append_c (q, ' ');
      g_string_append_c (q, '"');
      for (p = words[i]; *p != '\0'; p++)
        {
          if (*p == '"')
            g_string_append_c (q, '"');
          g_string_append_c (q, *p);
        }
      g_string_append (q, "\"*");
    }
  return g_string_free (g_steal_pointer (&q), FALSE);
}

GPtrArray *
ruv_store_search (RuvStore    *self,
                  const char  *text,
                  guint        limit,
                  GError     **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_search_hit_free);
  g_autoptr(sqlite3_stmt) st = NULL;
  g_autofree char *query = NULL;
  int rc;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  g_return_val_if_fail (text != NULL, NULL);
  /* Newest first: FTS5 walks its doclists by rowid and stops at the limit,
   * where ORDER BY rank would score every match of a common word. */
  if (!_ruv_store_text_ok (text, MAX_SHORT_TEXT, "search text", error))
    return NULL;
  query = fts_query (text);
  if (*query == '\0')
    return g_steal_pointer (&out);
  {
    LOCK ();

    st = _ruv_store_prepare (self,
      "SELECT m.session_id, m.id, s.title,"
      " snippet(messages_fts, 0, '[', ']', '…', 12)"
      " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
      " JOIN sessions s ON s.id = m.session_id"
      " WHERE messages_fts MATCH ?1 ORDER BY messages_fts.rowid DESC LIMIT ?2", error);
    if (st == NULL)
      return NULL;
    _ruv_store_bind_text (st, 1, query);
    sqlite3_bind_int64 (st, 2, limit > 0 ? (gint64) limit : -1);
    while ((rc = sqlite3_step (st)) == SQLITE_ROW)
      {
        RuvStoreSearchHit *h = g_new0 (RuvStoreSearchHit, 1);

        h->session_id = sqlite3_column_int64 (st, 0);
        h->message_id = sqlite3_column_int64 (st, 1);
        h->session_title = _ruv_store_col_strdup (st, 2);
        h->snippet = _ruv_store_col_strdup (st, 3);
        g_ptr_array_add (out, h);
      }
    if (rc != SQLITE_DONE)
      {
        _ruv_store_error (self, error, rc, _("Could not search the chat history"));
        return NULL;
      }
  }
  return g_steal_pointer (&out);
}
