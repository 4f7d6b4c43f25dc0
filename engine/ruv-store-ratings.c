/* ruv-store-ratings.c — ratings, the adaptations they caused, and adapter
 * snapshots (written with synchronous=FULL).
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "ruv-error.h"
#include "ruv-store-private.h"

/* ------------------------------------------------------------------------ */
/* Ratings: written with synchronous=FULL, so a returned call is on disk. */

static gboolean
begin_durable (RuvStore  *self,
               GError   **error)
{
  if (self->read_only)
    return _ruv_store_begin_write (self, error);
  sqlite3_exec (self->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
  if (!_ruv_store_begin_write (self, error))
    {
      sqlite3_exec (self->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
      return FALSE;
    }
  return TRUE;
}

static gboolean
finish_durable (RuvStore  *self,
                gboolean   ok,
                GError   **error)
{
  ok = _ruv_store_finish_write (self, ok, error);
  sqlite3_exec (self->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
  return ok;
}

gboolean
ruv_store_rate_message (RuvStore   *self,
                        gint64      message_id,
                        RuvRating   rating,
                        GError    **error)
{
  g_autoptr(RuvStoreMessage) m = NULL;
  g_autoptr(sqlite3_stmt) st = NULL;
  gboolean ok;

  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  if (rating < RUV_RATING_DOWN || rating > RUV_RATING_UP)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION, "invalid rating %d", rating);
      return FALSE;
    }
  {
    LOCK ();

    if (!begin_durable (self, error))
      return FALSE;
    m = _ruv_store_get_message_locked (self, message_id, error);
    ok = m != NULL;
    if (ok && !m->complete)
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                     _("Message %" G_GINT64_FORMAT " is still being written and cannot be "
                       "rated yet"), message_id);
        ok = FALSE;
      }
    if (ok)
      {
        /* One current rating per message; re-rating replaces it and resets
         * what adaptation did with the old one. */
        st = _ruv_store_prepare (self,
          "INSERT INTO ratings (message_id, rating, rated_us) VALUES (?1, ?2, ?3)"
          " ON CONFLICT (message_id) DO UPDATE SET rating = excluded.rating,"
          " rated_us = excluded.rated_us, outcome = NULL, latency_us = NULL,"
          " loss_before = NULL, loss_after = NULL, snapshot_id = NULL", error);
        ok = st != NULL;
      }
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, message_id);
        sqlite3_bind_int (st, 2, (int) rating);
        sqlite3_bind_int64 (st, 3, g_get_real_time ());
        ok = _ruv_store_step_done (self, st, _("Could not save the rating"), error);
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return finish_durable (self, ok, error);
  }
}

gboolean
ruv_store_record_adaptation (RuvStore              *self,
                             gint64                 message_id,
                             RuvAdaptationOutcome   outcome,
                             gint64                 latency_us,
                             double                 loss_before,
                             double                 loss_after,
                             gint64                 snapshot_id,
                             GError               **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  gboolean ok;

  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  if (outcome != RUV_ADAPTATION_APPLIED && outcome != RUV_ADAPTATION_SKIPPED)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION, "invalid adaptation outcome");
      return FALSE;
    }
  {
    LOCK ();

    if (!begin_durable (self, error))
      return FALSE;
    if (snapshot_id > 0)
      {
        st = _ruv_store_prepare (self, "SELECT 1 FROM adapter_snapshots WHERE id = ?1", error);
        ok = st != NULL;
        if (ok)
          {
            sqlite3_bind_int64 (st, 1, snapshot_id);
            if (sqlite3_step (st) != SQLITE_ROW)
              {
                g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                             _("No adapter snapshot with id %" G_GINT64_FORMAT), snapshot_id);
                ok = FALSE;
              }
          }
        g_clear_pointer (&st, sqlite3_finalize);
        if (!ok)
          return finish_durable (self, FALSE, error);
      }
    st = _ruv_store_prepare (self,
      "UPDATE ratings SET outcome = ?2, latency_us = ?3, loss_before = ?4,"
      " loss_after = ?5, snapshot_id = ?6 WHERE message_id = ?1", error);
    ok = st != NULL;
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, message_id);
        _ruv_store_bind_text (st, 2, outcome == RUV_ADAPTATION_APPLIED ? "applied" : "skipped");
        if (latency_us >= 0)
          sqlite3_bind_int64 (st, 3, latency_us);
        if (isfinite (loss_before))
          sqlite3_bind_double (st, 4, loss_before);
        if (isfinite (loss_after))
          sqlite3_bind_double (st, 5, loss_after);
        _ruv_store_bind_id (st, 6, snapshot_id);
        ok = _ruv_store_step_done (self, st, _("Could not save the rating"), error);
      }
    if (ok && sqlite3_changes (self->db) == 0)
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                     _("Message %" G_GINT64_FORMAT " has no rating"), message_id);
        ok = FALSE;
      }
    g_clear_pointer (&st, sqlite3_finalize);
    /* The same outcome, appended to the history (same transaction). */
    if (ok)
      {
        st = _ruv_store_prepare (self,
          "INSERT INTO adaptations (message_id, rating, created_us, outcome,"
          " latency_us, loss_before, loss_after, snapshot_id)"
          " SELECT message_id, rating, ?2, outcome, latency_us, loss_before,"
          " loss_after, snapshot_id FROM ratings WHERE message_id = ?1", error);
        ok = st != NULL;
      }
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, message_id);
        sqlite3_bind_int64 (st, 2, g_get_real_time ());
        ok = _ruv_store_step_done (self, st, _("Could not save the rating"), error);
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return finish_durable (self, ok, error);
  }
}

GPtrArray *
ruv_store_rating_history (RuvStore  *self,
                          guint      limit,
                          GError   **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_rating_record_free);
  g_autoptr(sqlite3_stmt) st = NULL;
  int rc;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    st = _ruv_store_prepare (self,
      "SELECT r.message_id, m.session_id, r.rating, r.rated_us, r.outcome,"
      " r.latency_us, r.loss_before, r.loss_after, r.snapshot_id,"
      " substr(m.content, 1, 120) FROM ratings r JOIN messages m"
      " ON m.id = r.message_id ORDER BY r.rated_us DESC, r.message_id DESC"
      " LIMIT ?1", error);
    if (st == NULL)
      return NULL;
    sqlite3_bind_int64 (st, 1, limit > 0 ? (gint64) limit : -1);
    while ((rc = sqlite3_step (st)) == SQLITE_ROW)
      {
        RuvStoreRatingRecord *r = g_new0 (RuvStoreRatingRecord, 1);
        const char *outcome = (const char *) sqlite3_column_text (st, 4);

        r->message_id = sqlite3_column_int64 (st, 0);
        r->session_id = sqlite3_column_int64 (st, 1);
        r->rating = (RuvRating) CLAMP (sqlite3_column_int (st, 2), -1, 1);
        r->rated_us = sqlite3_column_int64 (st, 3);
        r->outcome = outcome == NULL ? RUV_ADAPTATION_NONE
                     : g_str_equal (outcome, "applied") ? RUV_ADAPTATION_APPLIED
                                                        : RUV_ADAPTATION_SKIPPED;
        r->latency_us = sqlite3_column_type (st, 5) == SQLITE_NULL ? -1
                                                                   : sqlite3_column_int64 (st, 5);
        r->loss_before = sqlite3_column_type (st, 6) == SQLITE_NULL ? NAN
                                                                    : sqlite3_column_double (st, 6);
        r->loss_after = sqlite3_column_type (st, 7) == SQLITE_NULL ? NAN
                                                                   : sqlite3_column_double (st, 7);
        r->snapshot_id = sqlite3_column_int64 (st, 8);
        r->excerpt = _ruv_store_col_strdup (st, 9);
        g_ptr_array_add (out, r);
      }
    if (rc != SQLITE_DONE)
      {
        _ruv_store_error (self, error, rc, _("Could not read the chat history"));
        return NULL;
      }
  }
  return g_steal_pointer (&out);
}

GPtrArray *
ruv_store_list_adaptations (RuvStore  *self,
                            gint64     message_id,
                            GError   **error)
{
  g_autoptr(GPtrArray) out =
    g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_rating_record_free);
  g_autoptr(sqlite3_stmt) st = NULL;
  int rc;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    st = _ruv_store_prepare (self,
      "SELECT a.message_id, m.session_id, a.rating, a.created_us, a.outcome,"
      " a.latency_us, a.loss_before, a.loss_after, a.snapshot_id,"
      " substr(m.content, 1, 120) FROM adaptations a JOIN messages m"
      " ON m.id = a.message_id WHERE ?1 = 0 OR a.message_id = ?1"
      " ORDER BY a.id", error);
    if (st == NULL)
      return NULL;
    sqlite3_bind_int64 (st, 1, message_id);
    while ((rc = sqlite3_step (st)) == SQLITE_ROW)
      {
        RuvStoreRatingRecord *r = g_new0 (RuvStoreRatingRecord, 1);
        const char *outcome = (const char *) sqlite3_column_text (st, 4);

        r->message_id = sqlite3_column_int64 (st, 0);
        r->session_id = sqlite3_column_int64 (st, 1);
        r->rating = (RuvRating) CLAMP (sqlite3_column_int (st, 2), -1, 1);
        r->rated_us = sqlite3_column_int64 (st, 3);
        r->outcome = outcome != NULL && g_str_equal (outcome, "applied")
                     ? RUV_ADAPTATION_APPLIED : RUV_ADAPTATION_SKIPPED;
        r->latency_us = sqlite3_column_type (st, 5) == SQLITE_NULL ? -1
                                                                   : sqlite3_column_int64 (st, 5);
        r->loss_before = sqlite3_column_type (st, 6) == SQLITE_NULL ? NAN
                                                                    : sqlite3_column_double (st, 6);
        r->loss_after = sqlite3_column_type (st, 7) == SQLITE_NULL ? NAN
                                                                   : sqlite3_column_double (st, 7);
        r->snapshot_id = sqlite3_column_int64 (st, 8);
        r->excerpt = _ruv_store_col_strdup (st, 9);
        g_ptr_array_add (out, r);
      }
    if (rc != SQLITE_DONE)
      {
        _ruv_store_error (self, error, rc, _("Could not read the adaptation history"));
        return NULL;
      }
  }
  return g_steal_pointer (&out);
}

/* ------------------------------------------------------------------------ */
/* Adapter snapshots */

static gboolean
is_sha256_hex (const char *s)
{
  gsize i;

  if (s == NULL || strlen (s) != 64)
    return FALSE;
  for (i = 0; i < 64; i++)
    if (!g_ascii_isxdigit (s[i]) || g_ascii_isupper (s[i]))
      return FALSE;
  return TRUE;
}

gint64
ruv_store_add_snapshot (RuvStore    *self,
                        const char  *model,
                        gint64       parent_id,
                        GBytes      *data,
                        const char  *path,
                        const char  *sha256,
                        const char  *note,
                        GError     **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  g_autofree char *sum = NULL;
  gint64 size = 0, id = 0;
  gboolean ok;

  g_return_val_if_fail (RUV_IS_STORE (self), 0);
  if (model == NULL || (data == NULL) == (path == NULL) ||
      !_ruv_store_text_ok (model, MAX_SHORT_TEXT, "model", error) ||
      !_ruv_store_text_ok (path, MAX_SHORT_TEXT, "path", error) ||
      !_ruv_store_text_ok (note, MAX_SHORT_TEXT, "note", error))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                     "a snapshot needs a model and exactly one of data or path");
      return 0;
    }
  if (data != NULL)
    {
      gsize n;
      gconstpointer p = g_bytes_get_data (data, &n);

      sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, p, n);
      size = (gint64) n;
      if (sha256 != NULL && g_ascii_strcasecmp (sha256, sum) != 0)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                       "snapshot data does not match its sha256");
          return 0;
        }
    }
  else
    {
      GStatBuf sb;

      if (!is_sha256_hex (sha256))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                       "a snapshot file needs its sha256 (64 lower-case hex digits)");
          return 0;
        }
      if (g_stat (path, &sb) != 0 || !S_ISREG (sb.st_mode))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                       _("Adapter file not found: %s"), path);
          return 0;
        }
      sum = g_strdup (sha256);
      size = (gint64) sb.st_size;
    }
  {
    LOCK ();

    if (!begin_durable (self, error))
      return 0;
    ok = TRUE;
    if (parent_id > 0)
      {
        st = _ruv_store_prepare (self, "SELECT model FROM adapter_snapshots WHERE id = ?1", error);
        ok = st != NULL;
        if (ok)
          {
            sqlite3_bind_int64 (st, 1, parent_id);
            if (sqlite3_step (st) != SQLITE_ROW)
              {
                g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                             _("No adapter snapshot with id %" G_GINT64_FORMAT), parent_id);
                ok = FALSE;
              }
            else if (g_strcmp0 ((const char *) sqlite3_column_text (st, 0), model) != 0)
              {
                g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                             "parent snapshot %" G_GINT64_FORMAT " is for another model",
                             parent_id);
                ok = FALSE;
              }
          }
        g_clear_pointer (&st, sqlite3_finalize);
      }
    if (ok)
      {
        st = _ruv_store_prepare (self,
          "INSERT INTO adapter_snapshots (model, parent_id, created_us, data,"
          " path, sha256, size, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", error);
        ok = st != NULL;
      }
    if (ok)
      {
        _ruv_store_bind_text (st, 1, model);
        _ruv_store_bind_id (st, 2, parent_id);
        sqlite3_bind_int64 (st, 3, g_get_real_time ());
        if (data != NULL)
          sqlite3_bind_blob64 (st, 4, g_bytes_get_data (data, NULL), g_bytes_get_size (data),
                               SQLITE_TRANSIENT);
        _ruv_store_bind_text (st, 5, path);
        _ruv_store_bind_text (st, 6, sum);
        sqlite3_bind_int64 (st, 7, size);
        _ruv_store_bind_text (st, 8, note);
        ok = _ruv_store_step_done (self, st, _("Could not save the adapter snapshot"), error);
        id = sqlite3_last_insert_rowid (self->db);
      }
    g_clear_pointer (&st, sqlite3_finalize);
    if (!finish_durable (self, ok, error))
      return 0;
  }
  return id;
}

static RuvStoreSnapshot *
snapshot_from_row (sqlite3_stmt *st)
{
  RuvStoreSnapshot *s = g_new0 (RuvStoreSnapshot, 1);

  s->id = sqlite3_column_int64 (st, 0);
  s->model = _ruv_store_col_strdup (st, 1);
  s->parent_id = sqlite3_column_int64 (st, 2);
  s->created_us = sqlite3_column_int64 (st, 3);
  if (sqlite3_column_type (st, 4) != SQLITE_NULL)
    s->data = g_bytes_new (sqlite3_column_blob (st, 4), (gsize) sqlite3_column_bytes (st, 4));
  s->path = _ruv_store_col_strdup (st, 5);
  s->sha256 = _ruv_store_col_strdup (st, 6);
  s->size = sqlite3_column_int64 (st, 7);
  s->note = _ruv_store_col_strdup (st, 8);
  return s;
}

GPtrArray *
ruv_store_list_snapshots (RuvStore    *self,
                          const char  *model,
                          GError     **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_snapshot_free);
  g_autoptr(sqlite3_stmt) st = NULL;
  int rc;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    /* Listing leaves the weights out (data NULL): get_snapshot loads them. */
    st = _ruv_store_prepare (self,
      "SELECT id, model, parent_id, created_us, NULL, path, sha256, size, note"
      " FROM adapter_snapshots WHERE ?1 IS NULL OR model = ?1"
      " ORDER BY created_us DESC, id DESC", error);
    if (st == NULL)
      return NULL;
    _ruv_store_bind_text (st, 1, model);
    while ((rc = sqlite3_step (st)) == SQLITE_ROW)
      g_ptr_array_add (out, snapshot_from_row (st));
    if (rc != SQLITE_DONE)
      {
        _ruv_store_error (self, error, rc, _("Could not read the chat history"));
        return NULL;
      }
  }
  return g_steal_pointer (&out);
}

RuvStoreSnapshot *
ruv_store_get_snapshot (RuvStore  *self,
                        gint64     snapshot_id,
                        GError   **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  int rc;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    st = _ruv_store_prepare (self,
      "SELECT id, model, parent_id, created_us, data, path, sha256, size, note"
      " FROM adapter_snapshots WHERE id = ?1", error);
    if (st == NULL)
      return NULL;
    sqlite3_bind_int64 (st, 1, snapshot_id);
    rc = sqlite3_step (st);
    if (rc == SQLITE_ROW)
      return snapshot_from_row (st);
    if (rc == SQLITE_DONE)
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                   _("No adapter snapshot with id %" G_GINT64_FORMAT), snapshot_id);
    else
      _ruv_store_error (self, error, rc, _("Could not read the chat history"));
  }
  return NULL;
}
