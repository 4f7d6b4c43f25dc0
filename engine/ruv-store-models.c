/* ruv-store-models.c — the model registry: local models and their download
 * state.
 * SPDX-License-Identifier: MIT
 */
#include <glib/gi18n-lib.h>
#include <sqlite3.h>

#include "ruv-error.h"
#include "ruv-store-private.h"

/* ------------------------------------------------------------------------ */
/* Model registry */

static gboolean
model_state_ok (const char *state)
{
  static const char *const states[] = { "absent", "queued", "downloading", "paused", "failed",
                                        "verifying", "ready" };
  gsize i;

  for (i = 0; state != NULL && i < G_N_ELEMENTS (states); i++)
    if (g_str_equal (state, states[i]))
      return TRUE;
  return FALSE;
}

gint64
ruv_store_upsert_model (RuvStore             *self,
                        const RuvStoreModel  *model,
                        GError              **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  gint64 id = 0;
  gboolean ok;
  int rc;

  g_return_val_if_fail (RUV_IS_STORE (self), 0);
  g_return_val_if_fail (model != NULL, 0);
  if (model->repo == NULL || model->file == NULL ||
      (model->state != NULL && !model_state_ok (model->state)) ||
      !_ruv_store_text_ok (model->repo, MAX_SHORT_TEXT, "repo", error) ||
      !_ruv_store_text_ok (model->file, MAX_SHORT_TEXT, "file", error) ||
      !_ruv_store_text_ok (model->path, MAX_SHORT_TEXT, "path", error) ||
      !_ruv_store_text_ok (model->sha256, MAX_SHORT_TEXT, "sha256", error) ||
      !_ruv_store_text_ok (model->revision, MAX_SHORT_TEXT, "revision", error) ||
      !_ruv_store_text_ok (model->url, MAX_SHORT_TEXT, "url", error) ||
      !_ruv_store_text_ok (model->etag, MAX_SHORT_TEXT, "etag", error) ||
      (model->metadata_json != NULL && !_ruv_store_json_text_ok (model->metadata_json, error)))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                     "a model needs a repo, a file and a known state");
      return 0;
    }
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return 0;
    st = _ruv_store_prepare (self,
      "INSERT INTO models (repo, file, path, size, sha256, state, bytes_done, added_us,"
      " revision, url, etag, metadata_json)"
      " VALUES (?1, ?2, ?3, ?4, ?5, COALESCE(?6, 'absent'), COALESCE(?7, 0), ?8,"
      " ?9, ?10, ?11, ?12)"
      " ON CONFLICT (repo, file) DO UPDATE SET path = COALESCE(excluded.path, path),"
      " size = COALESCE(?4, size), sha256 = COALESCE(excluded.sha256, sha256),"
      " state = COALESCE(?6, state), bytes_done = COALESCE(?7, bytes_done),"
      " revision = COALESCE(?9, revision), url = COALESCE(?10, url),"
      " etag = COALESCE(?11, etag), metadata_json = COALESCE(?12, metadata_json)"
      " RETURNING id", error);
    ok = st != NULL;
    if (ok)
      {
        _ruv_store_bind_text (st, 1, model->repo);
        _ruv_store_bind_text (st, 2, model->file);
        _ruv_store_bind_text (st, 3, model->path);
        if (model->size >= 0)
          sqlite3_bind_int64 (st, 4, model->size);
        _ruv_store_bind_text (st, 5, model->sha256);
        _ruv_store_bind_text (st, 6, model->state);
        if (model->bytes_done > 0)
          sqlite3_bind_int64 (st, 7, model->bytes_done);
        sqlite3_bind_int64 (st, 8, g_get_real_time ());
        _ruv_store_bind_text (st, 9, model->revision);
        _ruv_store_bind_text (st, 10, model->url);
        _ruv_store_bind_text (st, 11, model->etag);
        _ruv_store_bind_text (st, 12, model->metadata_json);
        rc = sqlite3_step (st);
        if (rc == SQLITE_ROW)
          id = sqlite3_column_int64 (st, 0);
        else
          {
            _ruv_store_error (self, error, rc, _("Could not save the model list"));
            ok = FALSE;
          }
      }
    g_clear_pointer (&st, sqlite3_finalize);
    if (!_ruv_store_finish_write (self, ok, error))
      return 0;
  }
  return id;
}

static gboolean
update_model (RuvStore     *self,
              gint64        model_id,
              const char   *sql,
              const char   *state,
              gint64        value,
              const char   *text,
              GError      **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  gboolean ok;
  LOCK ();

  if (!_ruv_store_begin_write (self, error))
    return FALSE;
  st = _ruv_store_prepare (self, sql, error);
  ok = st != NULL;
  if (ok)
    {
      sqlite3_bind_int64 (st, 1, model_id);
      _ruv_store_bind_text (st, 2, state);
      sqlite3_bind_int64 (st, 3, value);
      _ruv_store_bind_text (st, 4, text);
      ok = _ruv_store_step_done (self, st, _("Could not save the model list"), error);
    }
  if (ok && sqlite3_changes (self->db) == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                   _("No model with id %" G_GINT64_FORMAT), model_id);
      ok = FALSE;
    }
  g_clear_pointer (&st, sqlite3_finalize);
  return _ruv_store_finish_write (self, ok, error);
}

gboolean
ruv_store_set_model_progress (RuvStore    *self,
                              gint64       model_id,
                              const char  *state,
                              gint64       bytes_done,
                              const char  *error_text,
                              GError     **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  if (!model_state_ok (state) || bytes_done < 0 ||
      !_ruv_store_text_ok (error_text, MAX_SHORT_TEXT, "error", error))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                     "unknown download state \"%s\"", state != NULL ? state : "(null)");
      return FALSE;
    }
  return update_model (self, model_id, "UPDATE models SET state = ?2, bytes_done = ?3,"
                       " error = ?4 WHERE id = ?1", state, bytes_done, error_text, error);
}

gboolean
ruv_store_touch_model (RuvStore  *self,
                       gint64     model_id,
                       GError   **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  return update_model (self, model_id, "UPDATE models SET last_used_us = ?3 WHERE id = ?1", NULL,
                       g_get_real_time (), NULL, error);
}

#define MODEL_COLS \
  "id, repo, file, path, size, sha256, state, bytes_done, last_used_us, error," \
  " revision, url, etag, metadata_json, added_us"

static RuvStoreModel *
model_from_row (sqlite3_stmt *st)
{
  RuvStoreModel *m = g_new0 (RuvStoreModel, 1);

  m->id = sqlite3_column_int64 (st, 0);
  m->repo = _ruv_store_col_strdup (st, 1);
  m->file = _ruv_store_col_strdup (st, 2);
  m->path = _ruv_store_col_strdup (st, 3);
  m->size = sqlite3_column_type (st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64 (st, 4);
  m->sha256 = _ruv_store_col_strdup (st, 5);
  m->state = _ruv_store_col_strdup (st, 6);
  m->bytes_done = sqlite3_column_int64 (st, 7);
  m->last_used_us = sqlite3_column_int64 (st, 8);
  m->error = _ruv_store_col_strdup (st, 9);
  m->revision = _ruv_store_col_strdup (st, 10);
  m->url = _ruv_store_col_strdup (st, 11);
  m->etag = _ruv_store_col_strdup (st, 12);
  m->metadata_json = _ruv_store_col_strdup (st, 13);
  m->added_us = sqlite3_column_int64 (st, 14);
  return m;
}

GPtrArray *
ruv_store_list_models (RuvStore  *self,
                       GError   **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_model_free);
  g_autoptr(sqlite3_stmt) st = NULL;
  int rc;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    st = _ruv_store_prepare (self, "SELECT " MODEL_COLS " FROM models"
                             " ORDER BY COALESCE(last_used_us, 0) DESC, id", error);
    if (st == NULL)
      return NULL;
    while ((rc = sqlite3_step (st)) == SQLITE_ROW)
      g_ptr_array_add (out, model_from_row (st));
    if (rc != SQLITE_DONE)
      {
        _ruv_store_error (self, error, rc, _("Could not read the model list"));
        return NULL;
      }
  }
  return g_steal_pointer (&out);
}

RuvStoreModel *
ruv_store_get_model (RuvStore    *self,
                     const char  *repo,
                     const char  *file,
                     GError     **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  RuvStoreModel *m = NULL;
  int rc;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  g_return_val_if_fail (repo != NULL && file != NULL, NULL);
  {
    LOCK ();

    st = _ruv_store_prepare (self,
      "SELECT " MODEL_COLS " FROM models WHERE repo = ?1 AND file = ?2", error);
    if (st == NULL)
      return NULL;
    _ruv_store_bind_text (st, 1, repo);
    _ruv_store_bind_text (st, 2, file);
    rc = sqlite3_step (st);
    if (rc == SQLITE_ROW)
      m = model_from_row (st);
    else if (rc == SQLITE_DONE)
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND, _("No model %s in %s"), file, repo);
    else
      _ruv_store_error (self, error, rc, _("Could not read the model list"));
  }
  return m;
}

gboolean
ruv_store_delete_model (RuvStore  *self,
                        gint64     model_id,
                        GError   **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  /* update_model's extra bindings (?2..?4) do not exist here: SQLITE_RANGE,
   * ignored. */
  return update_model (self, model_id, "DELETE FROM models WHERE id = ?1", NULL, 0, NULL,
                       error);
}
