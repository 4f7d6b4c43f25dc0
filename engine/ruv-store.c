/* ruv-store.c — the SQLite store: the object, opening (connection setup,
 * pragmas, read-only fallbacks) and the helpers every statement goes through.
 * SPDX-License-Identifier: MIT
 *
 * The rest of the store, by concern: ruv-store-schema.c (tables, migrations),
 * ruv-store-recovery.c (quick_check, salvage, backups), ruv-store-sessions.c,
 * ruv-store-messages.c (message trees, streaming, search), ruv-store-ratings.c
 * (ratings, adaptations, adapter snapshots), ruv-store-models.c (the model
 * registry), ruv-store-json.c (export, import) and ruv-store-async.c; they
 * share ruv-store-private.h.
 *
 * Rules followed (RELIABILITY.md 2.5 and checklist D):
 * - every connection: extended result codes, busy_timeout 5000, foreign_keys=ON,
 *   SQLITE_DBCONFIG_DEFENSIVE, trusted_schema=OFF until the schema's triggers
 *   and views were verified to be exactly ours (FTS5 tables may only be
 *   written from triggers of a trusted schema);
 * - journal_mode=WAL set once, synchronous=NORMAL, FULL around ratings and
 *   snapshots (writes a user would hate to lose);
 * - every write is one BEGIN IMMEDIATE transaction, so a read→write upgrade
 *   can never fail with SQLITE_BUSY_SNAPSHOT;
 * - migrations by user_version, each in one transaction; a newer version
 *   opens read-only;
 * - quick_check at open; a damaged file is renamed aside with its -wal/-shm,
 *   never deleted, and what can be read is copied table by table on top of
 *   the newest good backup.
 */
#include <errno.h>
#include <string.h>

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "ruv-error.h"
#include "ruv-store-private.h"

#define BUSY_TIMEOUT_MS      5000

G_DEFINE_FINAL_TYPE (RuvStore, ruv_store, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_PATH,
  PROP_READ_ONLY,
  PROP_READ_ONLY_REASON,
  PROP_RECOVERY_REPORT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ------------------------------------------------------------------------ */
/* Records */

void
ruv_store_session_free (RuvStoreSession *s)
{
  if (s == NULL)
    return;
  g_free (s->title);
  g_free (s->model);
  g_free (s->system_prompt);
  g_free (s->params_json);
  g_free (s);
}

void
ruv_store_message_free (RuvStoreMessage *m)
{
  if (m == NULL)
    return;
  g_free (m->role);
  g_free (m->content);
  g_free (m->model);
  g_free (m->params_json);
  g_free (m->finish_reason);
  g_free (m);
}

void
ruv_store_rating_record_free (RuvStoreRatingRecord *r)
{
  if (r == NULL)
    return;
  g_free (r->excerpt);
  g_free (r);
}

void
ruv_store_snapshot_free (RuvStoreSnapshot *s)
{
  if (s == NULL)
    return;
  g_clear_pointer (&s->data, g_bytes_unref);
  g_free (s->model);
  g_free (s->path);
  g_free (s->sha256);
  g_free (s->note);
  g_free (s);
}

void
ruv_store_model_free (RuvStoreModel *m)
{
  if (m == NULL)
    return;
  g_free (m->repo);
  g_free (m->file);
  g_free (m->path);
  g_free (m->sha256);
  g_free (m->state);
  g_free (m->error);
  g_free (m->revision);
  g_free (m->url);
  g_free (m->etag);
  g_free (m->metadata_json);
  g_free (m);
}

void
ruv_store_search_hit_free (RuvStoreSearchHit *h)
{
  if (h == NULL)
    return;
  g_free (h->session_title);
  g_free (h->snippet);
  g_free (h);
}

char *
_ruv_store_col_strdup (sqlite3_stmt *st,
                       int           i)
{
  const unsigned char *t = sqlite3_column_text (st, i);

  return t != NULL ? g_strdup ((const char *) t) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Errors */

void
_ruv_store_set_sqlite_error (sqlite3     *db,
                             const char  *path,
                             GError     **error,
                             int          rc,
                             const char  *what)
{
  int code = RUV_ERROR_STORAGE;
  int sys_errno = db != NULL ? sqlite3_system_errno (db) : 0;
  const char *detail = db != NULL ? sqlite3_errmsg (db) : sqlite3_errstr (rc);
  const char *cause;

  switch (rc & 0xff)
    {
    case SQLITE_FULL:
      cause = _("the disk is full; the last change was not saved");
      break;
    case SQLITE_READONLY:
      cause = _("the chat history is read-only");
      break;
    case SQLITE_CANTOPEN:
      cause = _("the chat history file cannot be opened");
      break;
    case SQLITE_NOTADB:
      cause = _("the chat history file is not a database");
      break;
    case SQLITE_CORRUPT:
      cause = _("the chat history file is damaged");
      break;
    case SQLITE_IOERR:
      if (sys_errno == ENOSPC || sys_errno == EFBIG || sys_errno == EDQUOT)
        cause = _("the disk is full (or a size limit was reached); the last change was not saved");
      else
        cause = _("the disk reported an input/output error");
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      cause = _("another copy of the app is using the chat history");
      break;
    case SQLITE_PERM:
    case SQLITE_AUTH:
      cause = _("permission denied");
      break;
    case SQLITE_TOOBIG:
      cause = _("the text is too large to store");
      break;
    case SQLITE_NOMEM:
      code = RUV_ERROR_OUT_OF_MEMORY;
      cause = _("out of memory");
      break;
    case SQLITE_CONSTRAINT:
      code = RUV_ERROR_INVALID_OPERATION;
      cause = _("the change breaks a consistency rule");
      break;
    default:
      cause = _("database error");
      break;
    }
  if (sys_errno != 0 && ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CANTOPEN ||
                         (rc & 0xff) == SQLITE_FULL))
    g_set_error (error, RUV_ERROR, code, "%s: %s (%s; %s) [%s]", what, cause, detail,
                 g_strerror (sys_errno), path != NULL ? path : "?");
  else
    g_set_error (error, RUV_ERROR, code, "%s: %s (%s) [%s]", what, cause, detail,
                 path != NULL ? path : "?");
}

void
_ruv_store_error (RuvStore    *self,
                  GError     **error,
                  int          rc,
                  const char  *what)
{
  _ruv_store_set_sqlite_error (self->db, self->path, error, rc, what);
}

/* ------------------------------------------------------------------------ */
/* Small SQL helpers (the caller holds the lock) */

gboolean
_ruv_store_db_exec (sqlite3     *db,
                    const char  *path,
                    const char  *sql,
                    const char  *what,
                    GError     **error)
{
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK)
    {
      _ruv_store_set_sqlite_error (db, path, error, rc, what);
      return FALSE;
    }
  return TRUE;
}

sqlite3_stmt *
_ruv_store_prepare (RuvStore    *self,
                    const char  *sql,
                    GError     **error)
{
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2 (self->db, sql, -1, &st, NULL);

  if (rc != SQLITE_OK)
    {
      _ruv_store_error (self, error, rc, _("Could not read the chat history"));
      sqlite3_finalize (st);
      return NULL;
    }
  return st;
}

void
_ruv_store_bind_text (sqlite3_stmt *st,
                      int           i,
                      const char   *text)
{
  if (text == NULL)
    sqlite3_bind_null (st, i);
  else
    sqlite3_bind_text (st, i, text, -1, SQLITE_TRANSIENT);
}

void
_ruv_store_bind_id (sqlite3_stmt *st,
                    int           i,
                    gint64        id)
{
  if (id <= 0)
    sqlite3_bind_null (st, i);
  else
    sqlite3_bind_int64 (st, i, id);
}

/* Steps a statement that returns no row. */
gboolean
_ruv_store_step_done (RuvStore     *self,
                      sqlite3_stmt *st,
                      const char   *what,
                      GError      **error)
{
  int rc = sqlite3_step (st);

  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    {
      _ruv_store_error (self, error, rc, what);
      return FALSE;
    }
  return TRUE;
}

static gboolean
run_sql (RuvStore    *self,
         const char  *sql,
         GError     **error)
{
  return _ruv_store_db_exec (self->db, self->path, sql, _("Could not save to the chat history"),
                             error);
}

/* Every write: BEGIN IMMEDIATE (takes the write lock up front, waiting up to
 * the busy timeout), so no transaction ever upgrades from read to write. */
gboolean
_ruv_store_begin_write (RuvStore  *self,
                        GError   **error)
{
  if (self->read_only)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_STORAGE, "%s: %s [%s]",
                   _("Could not save to the chat history"),
                   self->read_only_reason != NULL ? self->read_only_reason
                                                  : _("the chat history is read-only"),
                   self->path);
      return FALSE;
    }
  return _ruv_store_db_exec (self->db, self->path, "BEGIN IMMEDIATE",
                             _("Could not save to the chat history"), error);
}

void
_ruv_store_rollback (RuvStore *self)
{
  if (!sqlite3_get_autocommit (self->db))
    sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Commits, or rolls back and reports. */
gboolean
_ruv_store_finish_write (RuvStore  *self,
                         gboolean   ok,
                         GError   **error)
{
  if (ok && run_sql (self, "COMMIT", error))
    return TRUE;
  _ruv_store_rollback (self);
  return FALSE;
}

gboolean
_ruv_store_text_ok (const char  *text,
                    gsize        max,
                    const char  *what,
                    GError     **error)
{
  if (text != NULL && (strlen (text) > max || !g_utf8_validate (text, -1, NULL)))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   _("%s is too long or not valid UTF-8"), what);
      return FALSE;
    }
  return TRUE;
}

gboolean
_ruv_store_role_ok (const char  *role,
                    GError     **error)
{
  if (role == NULL || !(g_str_equal (role, "system") || g_str_equal (role, "user") ||
                        g_str_equal (role, "assistant") || g_str_equal (role, "tool")))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "unknown message role \"%s\"", role != NULL ? role : "(null)");
      return FALSE;
    }
  return TRUE;
}

gboolean
_ruv_store_json_text_ok (const char  *json,
                         GError     **error)
{
  g_autoptr(JsonParser) parser = NULL;

  if (json == NULL)
    return TRUE;
  if (!_ruv_store_text_ok (json, 1024 * 1024, "params_json", error))
    return FALSE;
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, json, -1, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "generation parameters must be a JSON object");
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Opening, migration, verification */

sqlite3 *
_ruv_store_open_connection (const char  *path,
                            gboolean     read_only,
                            GError     **error)
{
  sqlite3 *db = NULL;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc;

  rc = sqlite3_open_v2 (path, &db, flags | SQLITE_OPEN_FULLMUTEX, NULL);
  if (rc != SQLITE_OK)
    {
      _ruv_store_set_sqlite_error (db, path, error, rc, _("Could not open the chat history"));
      sqlite3_close_v2 (db);
      return NULL;
    }
  sqlite3_extended_result_codes (db, 1);
  sqlite3_busy_timeout (db, BUSY_TIMEOUT_MS);
  sqlite3_db_config (db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  sqlite3_db_config (db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, NULL);
  sqlite3_db_config (db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
  if (!_ruv_store_db_exec (db, path, "PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF",
                           _("Could not open the chat history"), error))
    {
      sqlite3_close_v2 (db);
      return NULL;
    }
  return db;
}

gint64
_ruv_store_query_int (sqlite3    *db,
                      const char *sql,
                      int        *rc_out)
{
  sqlite3_stmt *st = NULL;
  gint64 v = 0;
  int rc = sqlite3_prepare_v2 (db, sql, -1, &st, NULL);

  if (rc == SQLITE_OK)
    {
      rc = sqlite3_step (st);
      if (rc == SQLITE_ROW)
        {
          v = sqlite3_column_int64 (st, 0);
          rc = SQLITE_OK;
        }
      else if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    }
  sqlite3_finalize (st);
  if (rc_out != NULL)
    *rc_out = rc;
  return v;
}

static void
set_read_only (RuvStore   *self,
               const char *reason)
{
  self->read_only = TRUE;
  if (self->read_only_reason == NULL)
    self->read_only_reason = g_strdup (reason);
}

static gboolean
open_store (RuvStore  *self,
            GError   **error)
{
  g_autofree char *dir = g_path_get_dirname (self->path);
  g_autofree char *problem = NULL;
  gint64 version;
  int rc;

  if (g_mkdir_with_parents (dir, 0700) != 0 || !g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      int e = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_STORAGE,
                   _("Could not create the folder for the chat history: %s [%s]"),
                   g_strerror (e), dir);
      return FALSE;
    }
  if (g_file_test (self->path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_STORAGE,
                   _("Could not open the chat history: a folder is in the way [%s]"),
                   self->path);
      return FALSE;
    }

  self->db = _ruv_store_open_connection (self->path, FALSE, NULL);
  if (self->db == NULL)
    {
      /* The folder or file refuses writing: try reading. */
      self->db = _ruv_store_open_connection (self->path, TRUE, error);
      if (self->db == NULL)
        return FALSE;
      set_read_only (self, _("The chat history is read-only: its folder or file cannot be "
                             "written."));
    }

  rc = _ruv_store_quick_check (self->db, &problem);
  if ((rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_READONLY)
    {
      /* WAL needs to create -shm/-wal next to the file: a read-only folder. */
      g_clear_pointer (&self->db, sqlite3_close_v2);
      self->db = _ruv_store_open_connection (self->path, TRUE, error);
      if (self->db == NULL)
        return FALSE;
      set_read_only (self, _("The chat history is read-only: its folder cannot be written."));
      rc = _ruv_store_quick_check (self->db, &problem);
      if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_CORRUPT && (rc & 0xff) != SQLITE_NOTADB)
        {
          _ruv_store_error (self, error, rc, _("Could not open the chat history"));
          return FALSE;
        }
    }
  if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)
    {
      if (problem == NULL)
        problem = g_strdup (sqlite3_errstr (rc));
      if (self->read_only)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_STORAGE,
                       _("The chat history file is damaged (%s) and its folder is "
                         "read-only, so it cannot be recovered [%s]"), problem, self->path);
          return FALSE;
        }
      if (!_ruv_store_recover (self, problem, error))
        return FALSE;
      g_clear_pointer (&problem, g_free);
      rc = _ruv_store_quick_check (self->db, &problem);
    }
  if (rc != SQLITE_OK)
    {
      _ruv_store_error (self, error, rc, _("Could not open the chat history"));
      return FALSE;
    }

  version = _ruv_store_query_int (self->db, "PRAGMA user_version", &rc);
  if (rc != SQLITE_OK)
    {
      _ruv_store_error (self, error, rc, _("Could not open the chat history"));
      return FALSE;
    }
  if (version > RUV_STORE_SCHEMA_VERSION || version < 0)
    {
      g_autofree char *why =
        g_strdup_printf (_("The chat history was created by a newer version of RuvLLM "
                           "(format %" G_GINT64_FORMAT ", this version knows %d); it is "
                           "shown read-only."), version, RUV_STORE_SCHEMA_VERSION);

      set_read_only (self, why);
    }
  if (!self->read_only && sqlite3_db_readonly (self->db, "main") == 1)
    set_read_only (self, _("The chat history file is read-only."));

  if (!self->read_only)
    {
      g_autofree char *mode = NULL;
      sqlite3_stmt *st = NULL;

      /* journal_mode=WAL is persistent: set it once. */
      if (sqlite3_prepare_v2 (self->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
          sqlite3_step (st) == SQLITE_ROW)
        mode = _ruv_store_col_strdup (st, 0);
      sqlite3_finalize (st);
      if (mode == NULL || g_ascii_strcasecmp (mode, "wal") != 0)
        {
          rc = sqlite3_exec (self->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
          if ((rc & 0xff) == SQLITE_READONLY)
            set_read_only (self, _("The chat history file is read-only."));
          else if (rc != SQLITE_OK)
            {
              _ruv_store_error (self, error, rc, _("Could not open the chat history"));
              return FALSE;
            }
        }
    }
  if (!self->read_only)
    {
      if (!_ruv_store_db_exec (self->db, self->path, "PRAGMA synchronous=NORMAL",
                               _("Could not open the chat history"), error))
        return FALSE;
      /* A failed step rolls back: the old schema stays as it was. */
      if (!_ruv_store_migrate (self->db, self->path, version, error))
        return FALSE;
    }
  if (_ruv_store_schema_is_ours (self->db))
    sqlite3_exec (self->db, "PRAGMA trusted_schema=ON", NULL, NULL, NULL);
  else if (!self->read_only)
    set_read_only (self, _("The chat history contains triggers or views RuvLLM did not "
                           "create; it is shown read-only."));

  if (!self->read_only)
    {
      /* An answer left half-streamed by a crash keeps its text, marked. */
      g_autoptr(GError) local = NULL;

      if (_ruv_store_db_exec (self->db, self->path,
                              "BEGIN IMMEDIATE;"
                              "UPDATE messages SET complete = 1,"
                              "  finish_reason = COALESCE(finish_reason, 'interrupted')"
                              "  WHERE complete = 0;"
                              "COMMIT", "interrupted", &local) == FALSE)
        {
          _ruv_store_rollback (self);
          g_debug ("store: could not mark interrupted messages: %s", local->message);
        }
    }
  return TRUE;
}

static void
take_daily_backup (RuvStore *self)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *day = g_date_time_format (now, "%Y-%m-%d");
  g_autofree char *name = g_strdup_printf ("ruvllm-%s.db", day);
  g_autofree char *file = g_build_filename (self->backup_dir, name, NULL);
  g_autoptr(GError) local = NULL;
  g_autofree char *written = NULL;

  if (self->read_only || g_file_test (file, G_FILE_TEST_EXISTS))
    return;
  written = ruv_store_backup_now (self, &local);
  if (written == NULL)
    g_debug ("store: daily backup failed: %s", local->message);
}

static RuvStore *
store_open (const char  *path,
            GError     **error)
{
  g_autoptr(RuvStore) self = g_object_new (RUV_TYPE_STORE, NULL);
  g_autofree char *dir = g_path_get_dirname (path);

  self->path = g_strdup (path);
  self->backup_dir = g_build_filename (dir, "backups", NULL);
  if (!open_store (self, error))
    return NULL;
  take_daily_backup (self);
  return g_steal_pointer (&self);
}

RuvStore *
ruv_store_new_for_path (const char  *path,
                        GError     **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return store_open (path, error);
}

RuvStore *
ruv_store_new (GError **error)
{
  g_autofree char *path = g_build_filename (g_get_user_data_dir (), "ruvllm", "ruvllm.db",
                                            NULL);

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return store_open (path, error);
}

const char *
ruv_store_get_path (RuvStore *self)
{
  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  return self->path;
}

gboolean
ruv_store_get_read_only (RuvStore *self)
{
  g_return_val_if_fail (RUV_IS_STORE (self), TRUE);
  return self->read_only;
}

const char *
ruv_store_get_read_only_reason (RuvStore *self)
{
  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  return self->read_only_reason;
}

const char *
ruv_store_get_recovery_report (RuvStore *self)
{
  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  return self->recovery_report;
}

/* ------------------------------------------------------------------------ */
/* GObject */

static void
ruv_store_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  RuvStore *self = RUV_STORE (object);

  switch (prop_id)
    {
    case PROP_PATH:
      g_value_set_string (value, self->path);
      break;
    case PROP_READ_ONLY:
      g_value_set_boolean (value, self->read_only);
      break;
    case PROP_READ_ONLY_REASON:
      g_value_set_string (value, self->read_only_reason);
      break;
    case PROP_RECOVERY_REPORT:
      g_value_set_string (value, self->recovery_report);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
ruv_store_finalize (GObject *object)
{
  RuvStore *self = RUV_STORE (object);

  /* The last connection's close checkpoints the WAL into the file. */
  g_clear_pointer (&self->db, sqlite3_close_v2);
  g_free (self->path);
  g_free (self->backup_dir);
  g_free (self->read_only_reason);
  g_free (self->recovery_report);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (ruv_store_parent_class)->finalize (object);
}

static void
ruv_store_class_init (RuvStoreClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = ruv_store_get_property;
  object_class->finalize = ruv_store_finalize;

  properties[PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_READ_ONLY] =
    g_param_spec_boolean ("read-only", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_READ_ONLY_REASON] =
    g_param_spec_string ("read-only-reason", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_RECOVERY_REPORT] =
    g_param_spec_string ("recovery-report", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
ruv_store_init (RuvStore *self)
{
  g_mutex_init (&self->lock);
}
