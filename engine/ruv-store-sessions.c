/* ruv-store-sessions.c — chats: create, rename, pin, archive, settings,
 * delete, get and list.
 * SPDX-License-Identifier: MIT
 */
#include <glib/gi18n-lib.h>
#include <sqlite3.h>

#include "ruv-error.h"
#include "ruv-store-private.h"

/* ------------------------------------------------------------------------ */
/* Sessions */

#define SESSION_COLS \
  "id, title, title_auto, created_us, updated_us, pinned, archived, model, " \
  "system_prompt, params_json, leaf_id"

static RuvStoreSession *
session_from_row (sqlite3_stmt *st)
{
  RuvStoreSession *s = g_new0 (RuvStoreSession, 1);

  s->id = sqlite3_column_int64 (st, 0);
  s->title = _ruv_store_col_strdup (st, 1);
  if (s->title == NULL)
    s->title = g_strdup ("");
  s->title_auto = sqlite3_column_int (st, 2) != 0;
  s->created_us = sqlite3_column_int64 (st, 3);
  s->updated_us = sqlite3_column_int64 (st, 4);
  s->pinned = sqlite3_column_int (st, 5) != 0;
  s->archived = sqlite3_column_int (st, 6) != 0;
  s->model = _ruv_store_col_strdup (st, 7);
  s->system_prompt = _ruv_store_col_strdup (st, 8);
  s->params_json = _ruv_store_col_strdup (st, 9);
  s->leaf_id = sqlite3_column_int64 (st, 10);
  return s;
}

gboolean
_ruv_store_session_exists (RuvStore  *self,
                           gint64     session_id,
                           GError   **error)
{
  g_autoptr(sqlite3_stmt) st = _ruv_store_prepare (self,
    "SELECT 1 FROM sessions WHERE id = ?1", error);
  int rc;

  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, session_id);
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    return TRUE;
  if (rc == SQLITE_DONE)
    g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND, _("No chat with id %" G_GINT64_FORMAT),
                 session_id);
  else
    _ruv_store_error (self, error, rc, _("Could not read the chat history"));
  return FALSE;
}

gint64
_ruv_store_insert_session (RuvStore   *self,
                           const char *title,
                           gboolean    title_auto,
                           gint64      created_us,
                           gint64      updated_us,
                           gboolean    pinned,
                           gboolean    archived,
                           const char *model,
                           const char *system_prompt,
                           const char *params_json,
                           GError    **error)
{
  g_autoptr(sqlite3_stmt) st = _ruv_store_prepare (self,
    "INSERT INTO sessions (title, title_auto, created_us, updated_us, pinned, archived,"
    " model, system_prompt, params_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", error);

  if (st == NULL)
    return 0;
  _ruv_store_bind_text (st, 1, title != NULL ? title : "");
  sqlite3_bind_int (st, 2, title_auto ? 1 : 0);
  sqlite3_bind_int64 (st, 3, created_us);
  sqlite3_bind_int64 (st, 4, updated_us);
  sqlite3_bind_int (st, 5, pinned ? 1 : 0);
  sqlite3_bind_int (st, 6, archived ? 1 : 0);
  _ruv_store_bind_text (st, 7, model);
  _ruv_store_bind_text (st, 8, system_prompt);
  _ruv_store_bind_text (st, 9, params_json);
  if (!_ruv_store_step_done (self, st, _("Could not save the chat"), error))
    return 0;
  return sqlite3_last_insert_rowid (self->db);
}

gint64
ruv_store_create_session (RuvStore    *self,
                          const char  *title,
                          const char  *model,
                          const char  *system_prompt,
                          const char  *params_json,
                          GError     **error)
{
  gint64 now = g_get_real_time (), id;

  g_return_val_if_fail (RUV_IS_STORE (self), 0);
  if (!_ruv_store_text_ok (title, MAX_SHORT_TEXT, "title", error) ||
      !_ruv_store_text_ok (model, MAX_SHORT_TEXT, "model", error) ||
      !_ruv_store_text_ok (system_prompt, MAX_CONTENT_BYTES, "system prompt", error) ||
      !_ruv_store_json_text_ok (params_json, error))
    return 0;
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return 0;
    id = _ruv_store_insert_session (self, title, title == NULL, now, now, FALSE, FALSE, model,
                                    system_prompt, params_json, error);
    if (!_ruv_store_finish_write (self, id > 0, error))
      return 0;
  }
  return id;
}

/* `sql` with ?1 the session, ?2 `text` (or `value` when text is NULL), ?3 now;
 * binding a number the statement does not use is harmless (SQLITE_RANGE). */
static gboolean
update_session (RuvStore    *self,
                gint64       session_id,
                const char  *sql,
                const char  *text,
                gint64       value,
                GError     **error)
{
  LOCK ();
  g_autoptr(sqlite3_stmt) st = NULL;
  gboolean ok;

  if (!_ruv_store_begin_write (self, error))
    return FALSE;
  ok = _ruv_store_session_exists (self, session_id, error);
  if (ok)
    {
      st = _ruv_store_prepare (self, sql, error);
      ok = st != NULL;
    }
  if (ok)
    {
      sqlite3_bind_int64 (st, 1, session_id);
      if (text != NULL)
        sqlite3_bind_text (st, 2, text, -1, SQLITE_TRANSIENT);
      else
        sqlite3_bind_int64 (st, 2, value);
      sqlite3_bind_int64 (st, 3, g_get_real_time ());
      ok = _ruv_store_step_done (self, st, _("Could not save the chat"), error);
    }
  g_clear_pointer (&st, sqlite3_finalize);
  return _ruv_store_finish_write (self, ok, error);
}

gboolean
ruv_store_rename_session (RuvStore    *self,
                          gint64       session_id,
                          const char  *title,
                          GError     **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  g_return_val_if_fail (title != NULL, FALSE);
  if (!_ruv_store_text_ok (title, MAX_SHORT_TEXT, "title", error))
    return FALSE;
  return update_session (self, session_id,
                         "UPDATE sessions SET title = ?2, title_auto = 0, updated_us = ?3"
                         " WHERE id = ?1", title, 0, error);
}

gboolean
ruv_store_set_session_pinned (RuvStore  *self,
                              gint64     session_id,
                              gboolean   pinned,
                              GError   **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  return update_session (self, session_id,
                         "UPDATE sessions SET pinned = ?2 WHERE id = ?1",
                         NULL, pinned ? 1 : 0, error);
}

gboolean
ruv_store_set_session_archived (RuvStore  *self,
                                gint64     session_id,
                                gboolean   archived,
                                GError   **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  return update_session (self, session_id,
                         "UPDATE sessions SET archived = ?2 WHERE id = ?1",
                         NULL, archived ? 1 : 0, error);
}

gboolean
ruv_store_set_session_settings (RuvStore    *self,
                                gint64       session_id,
                                const char  *model,
                                const char  *system_prompt,
                                const char  *params_json,
                                GError     **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  gboolean ok;

  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  if (!_ruv_store_text_ok (model, MAX_SHORT_TEXT, "model", error) ||
      !_ruv_store_text_ok (system_prompt, MAX_CONTENT_BYTES, "system prompt", error) ||
      !_ruv_store_json_text_ok (params_json, error))
    return FALSE;
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return FALSE;
    ok = _ruv_store_session_exists (self, session_id, error);
    if (ok)
      {
        st = _ruv_store_prepare (self, "UPDATE sessions SET model = ?2, system_prompt = ?3,"
                                 " params_json = ?4, updated_us = ?5 WHERE id = ?1", error);
        ok = st != NULL;
      }
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, session_id);
        _ruv_store_bind_text (st, 2, model);
        _ruv_store_bind_text (st, 3, system_prompt);
        _ruv_store_bind_text (st, 4, params_json);
        sqlite3_bind_int64 (st, 5, g_get_real_time ());
        ok = _ruv_store_step_done (self, st, _("Could not save the chat"), error);
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return _ruv_store_finish_write (self, ok, error);
  }
}

gboolean
ruv_store_delete_session (RuvStore  *self,
                          gint64     session_id,
                          GError   **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  gboolean ok;

  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return FALSE;
    ok = _ruv_store_session_exists (self, session_id, error);
    if (ok)
      {
        /* Messages, ratings (and their search entries) go by cascade. */
        st = _ruv_store_prepare (self, "DELETE FROM sessions WHERE id = ?1", error);
        ok = st != NULL;
      }
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, session_id);
        ok = _ruv_store_step_done (self, st, _("Could not delete the chat"), error);
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return _ruv_store_finish_write (self, ok, error);
  }
}

RuvStoreSession *
_ruv_store_get_session_locked (RuvStore  *self,
                               gint64     session_id,
                               GError   **error)
{
  g_autoptr(sqlite3_stmt) st = _ruv_store_prepare (self, "SELECT " SESSION_COLS " FROM sessions"
                                                   " WHERE id = ?1", error);
  int rc;

  if (st == NULL)
    return NULL;
  sqlite3_bind_int64 (st, 1, session_id);
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    return session_from_row (st);
  if (rc == SQLITE_DONE)
    g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND, _("No chat with id %" G_GINT64_FORMAT),
                 session_id);
  else
    _ruv_store_error (self, error, rc, _("Could not read the chat history"));
  return NULL;
}

RuvStoreSession *
ruv_store_get_session (RuvStore  *self,
                       gint64     session_id,
                       GError   **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    return _ruv_store_get_session_locked (self, session_id, error);
  }
}

GPtrArray *
_ruv_store_list_sessions_locked (RuvStore  *self,
                                 gboolean   include_archived,
                                 gboolean   by_id,
                                 GError   **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_session_free);
  g_autoptr(sqlite3_stmt) st = _ruv_store_prepare (self, by_id
    ? "SELECT " SESSION_COLS " FROM sessions WHERE ?1 OR archived = 0 ORDER BY id"
    : "SELECT " SESSION_COLS " FROM sessions WHERE ?1 OR archived = 0"
      " ORDER BY pinned DESC, updated_us DESC, id DESC", error);
  int rc;

  if (st == NULL)
    return NULL;
  sqlite3_bind_int (st, 1, include_archived ? 1 : 0);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (out, session_from_row (st));
  if (rc != SQLITE_DONE)
    {
      _ruv_store_error (self, error, rc, _("Could not read the chat history"));
      return NULL;
    }
  return g_steal_pointer (&out);
}

GPtrArray *
ruv_store_list_sessions (RuvStore  *self,
                         gboolean   include_archived,
                         GError   **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    return _ruv_store_list_sessions_locked (self, include_archived, FALSE, error);
  }
}
