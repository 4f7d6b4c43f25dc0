/* ruv-store.c — the SQLite store: chats as message trees, ratings, adapter
 * snapshots, the model registry, search, backup, recovery, export/import.
 * SPDX-License-Identifier: MIT
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
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "ruv-error.h"
#include "ruv-store.h"

#define BUSY_TIMEOUT_MS      5000
#define BACKUPS_KEPT         3
#define MAX_CONTENT_BYTES    (64 * 1024 * 1024)   /* one message; D14 */
#define MAX_IMPORT_BYTES     ((gsize) 512 * 1024 * 1024)
#define MAX_IMPORT_DEPTH     32
#define MAX_IMPORT_MESSAGES  2000000
#define MAX_SHORT_TEXT       4096                  /* titles, models, roles ... */
#define MAX_TREE_DEPTH       10000000              /* guard on recursive walks */

struct _RuvStore
{
  GObject   parent_instance;

  GMutex    lock;              /* guards db: one transaction at a time */
  sqlite3  *db;
  char     *path;
  char     *backup_dir;
  gboolean  read_only;
  char     *read_only_reason;
  char     *recovery_report;
};

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
/* Schema. Migration i takes user_version i to i + 1. Never edit an entry
 * once released: add a new one. */

/* Version 1. */
static const char migration_1[] =
  /* A chat. title_auto: the title is still the automatic one (from the first
   * user message) and may be replaced. leaf_id: the last message of the
   * branch on screen. params_json: generation parameters (a JSON object). */
  "CREATE TABLE sessions ("
  "  id INTEGER PRIMARY KEY,"
  "  title TEXT NOT NULL DEFAULT '',"
  "  title_auto INTEGER NOT NULL DEFAULT 1,"
  "  created_us INTEGER NOT NULL,"
  "  updated_us INTEGER NOT NULL,"
  "  pinned INTEGER NOT NULL DEFAULT 0,"
  "  archived INTEGER NOT NULL DEFAULT 0,"
  "  model TEXT,"
  "  system_prompt TEXT,"
  "  params_json TEXT,"
  "  leaf_id INTEGER REFERENCES messages(id) ON DELETE SET NULL"
  ");"
  /* A message, a node of the chat's tree. parent_id NULL: a root. The parent
   * link has no ON DELETE action: deleting a subtree is one statement over
   * all its ids (a cascade per level would hit the trigger depth limit on
   * long chats). complete = 0 while an answer is being streamed. */
  "CREATE TABLE messages ("
  "  id INTEGER PRIMARY KEY,"
  "  session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
  "  parent_id INTEGER REFERENCES messages(id),"
  "  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),"
  "  content TEXT NOT NULL DEFAULT '',"
  "  created_us INTEGER NOT NULL,"
  "  model TEXT,"
  "  params_json TEXT,"
  "  n_prompt INTEGER,"
  "  n_gen INTEGER,"
  "  ttft_ms REAL,"
  "  tokens_per_s REAL,"
  "  finish_reason TEXT,"
  "  complete INTEGER NOT NULL DEFAULT 1"
  ");"
  "CREATE INDEX messages_parent ON messages(parent_id);"
  "CREATE INDEX messages_session ON messages(session_id, parent_id);"
  /* The current rating of a message: 1 up, -1 down, 0 cleared. */
  "CREATE TABLE ratings ("
  "  message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,"
  "  rating INTEGER NOT NULL CHECK (rating IN (-1, 0, 1)),"
  "  rated_us INTEGER NOT NULL"
  ");";

/* FTS5 triggers (version 2): created by migration 2 and compared at every
 * open, text for text, before trusted_schema is turned on. */
static const struct
{
  const char *name;
  const char *sql;
} store_triggers[] = {
  { "messages_fts_ai",
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN"
    " INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);"
    " END" },
  { "messages_fts_ad",
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN"
    " INSERT INTO messages_fts(messages_fts, rowid, content)"
    " VALUES ('delete', old.id, old.content);"
    " END" },
  { "messages_fts_au",
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN"
    " INSERT INTO messages_fts(messages_fts, rowid, content)"
    " VALUES ('delete', old.id, old.content);"
    " INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);"
    " END" },
};

/* Version 2. */
static const char migration_2[] =
  /* Adapter weights per model: a blob, or a file named by path; sha256 of the
   * weights either way; parent_id: the snapshot it was trained from
   * (rollback walks these). */
  "CREATE TABLE adapter_snapshots ("
  "  id INTEGER PRIMARY KEY,"
  "  model TEXT NOT NULL,"
  "  parent_id INTEGER REFERENCES adapter_snapshots(id) ON DELETE SET NULL,"
  "  created_us INTEGER NOT NULL,"
  "  data BLOB,"
  "  path TEXT,"
  "  sha256 TEXT NOT NULL,"
  "  size INTEGER NOT NULL,"
  "  note TEXT,"
  "  CHECK ((data IS NULL) <> (path IS NULL))"
  ");"
  "CREATE INDEX adapter_snapshots_model ON adapter_snapshots(model, created_us);"
  /* What adaptation did with a rating. */
  "ALTER TABLE ratings ADD COLUMN outcome TEXT CHECK (outcome IN ('applied', 'skipped'));"
  "ALTER TABLE ratings ADD COLUMN latency_us INTEGER;"
  "ALTER TABLE ratings ADD COLUMN loss_before REAL;"
  "ALTER TABLE ratings ADD COLUMN loss_after REAL;"
  "ALTER TABLE ratings ADD COLUMN snapshot_id INTEGER"
  "  REFERENCES adapter_snapshots(id) ON DELETE SET NULL;"
  "CREATE INDEX ratings_time ON ratings(rated_us);"
  "CREATE INDEX sessions_leaf ON sessions(leaf_id);"
  /* Local models and their download state (the downloads code fills it). */
  "CREATE TABLE models ("
  "  id INTEGER PRIMARY KEY,"
  "  repo TEXT NOT NULL,"
  "  file TEXT NOT NULL,"
  "  path TEXT,"
  "  size INTEGER,"
  "  sha256 TEXT,"
  "  state TEXT NOT NULL DEFAULT 'absent' CHECK (state IN ('absent', 'queued',"
  "    'downloading', 'paused', 'failed', 'verifying', 'ready')),"
  "  bytes_done INTEGER NOT NULL DEFAULT 0,"
  "  last_used_us INTEGER,"
  "  added_us INTEGER NOT NULL,"
  "  error TEXT,"
  "  UNIQUE (repo, file)"
  ");"
  /* Search over message text: an external-content FTS5 index kept in sync by
   * the triggers above; rebuilt here for messages from version 1. */
  "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages',"
  "  content_rowid='id', tokenize='unicode61 remove_diacritics 2');"
  "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');";

/* Version 3: what the downloads need to resume after a restart, and the
 * registry's metadata (a JSON object). */
static const char migration_3[] =
  "ALTER TABLE models ADD COLUMN revision TEXT;"
  "ALTER TABLE models ADD COLUMN url TEXT;"
  "ALTER TABLE models ADD COLUMN etag TEXT;"
  "ALTER TABLE models ADD COLUMN metadata_json TEXT;";

static const char *const migrations[] = { migration_1, migration_2, migration_3 };
G_STATIC_ASSERT (G_N_ELEMENTS (migrations) == RUV_STORE_SCHEMA_VERSION);

/* Columns of a message row, as read by message_from_row (). */
#define MESSAGE_COLS \
  "m.id, m.session_id, m.parent_id, m.role, m.content, m.created_us, m.model, " \
  "m.params_json, m.n_prompt, m.n_gen, m.ttft_ms, m.tokens_per_s, m.finish_reason, " \
  "m.complete, COALESCE(r.rating, 0)"

#define SESSION_COLS \
  "id, title, title_auto, created_us, updated_us, pinned, archived, model, " \
  "system_prompt, params_json, leaf_id"

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

static char *
col_strdup (sqlite3_stmt *st,
            int           i)
{
  const unsigned char *t = sqlite3_column_text (st, i);

  return t != NULL ? g_strdup ((const char *) t) : NULL;
}

static RuvStoreMessage *
message_from_row (sqlite3_stmt *st)
{
  RuvStoreMessage *m = g_new0 (RuvStoreMessage, 1);

  m->id = sqlite3_column_int64 (st, 0);
  m->session_id = sqlite3_column_int64 (st, 1);
  m->parent_id = sqlite3_column_int64 (st, 2);
  m->role = col_strdup (st, 3);
  m->content = col_strdup (st, 4);
  if (m->content == NULL)
    m->content = g_strdup ("");
  m->created_us = sqlite3_column_int64 (st, 5);
  m->model = col_strdup (st, 6);
  m->params_json = col_strdup (st, 7);
  m->n_prompt = sqlite3_column_type (st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int (st, 8);
  m->n_gen = sqlite3_column_type (st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int (st, 9);
  m->ttft_ms = sqlite3_column_type (st, 10) == SQLITE_NULL ? -1 : sqlite3_column_double (st, 10);
  m->tokens_per_s = sqlite3_column_type (st, 11) == SQLITE_NULL ? -1
                                                                : sqlite3_column_double (st, 11);
  m->finish_reason = col_strdup (st, 12);
  m->complete = sqlite3_column_int (st, 13) != 0;
  m->rating = (RuvRating) CLAMP (sqlite3_column_int (st, 14), -1, 1);
  return m;
}

static RuvStoreSession *
session_from_row (sqlite3_stmt *st)
{
  RuvStoreSession *s = g_new0 (RuvStoreSession, 1);

  s->id = sqlite3_column_int64 (st, 0);
  s->title = col_strdup (st, 1);
  if (s->title == NULL)
    s->title = g_strdup ("");
  s->title_auto = sqlite3_column_int (st, 2) != 0;
  s->created_us = sqlite3_column_int64 (st, 3);
  s->updated_us = sqlite3_column_int64 (st, 4);
  s->pinned = sqlite3_column_int (st, 5) != 0;
  s->archived = sqlite3_column_int (st, 6) != 0;
  s->model = col_strdup (st, 7);
  s->system_prompt = col_strdup (st, 8);
  s->params_json = col_strdup (st, 9);
  s->leaf_id = sqlite3_column_int64 (st, 10);
  return s;
}

/* ------------------------------------------------------------------------ */
/* Errors */

static void
set_sqlite_error (sqlite3     *db,
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

static void
store_error (RuvStore    *self,
             GError     **error,
             int          rc,
             const char  *what)
{
  set_sqlite_error (self->db, self->path, error, rc, what);
}

/* ------------------------------------------------------------------------ */
/* Small SQL helpers (the caller holds the lock) */

static gboolean
db_exec (sqlite3     *db,
         const char  *path,
         const char  *sql,
         const char  *what,
         GError     **error)
{
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK)
    {
      set_sqlite_error (db, path, error, rc, what);
      return FALSE;
    }
  return TRUE;
}

static sqlite3_stmt *
prepare (RuvStore    *self,
         const char  *sql,
         GError     **error)
{
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2 (self->db, sql, -1, &st, NULL);

  if (rc != SQLITE_OK)
    {
      store_error (self, error, rc, _("Could not read the chat history"));
      sqlite3_finalize (st);
      return NULL;
    }
  return st;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

static void
bind_text (sqlite3_stmt *st,
           int           i,
           const char   *text)
{
  if (text == NULL)
    sqlite3_bind_null (st, i);
  else
    sqlite3_bind_text (st, i, text, -1, SQLITE_TRANSIENT);
}

static void
bind_id (sqlite3_stmt *st,
         int           i,
         gint64        id)
{
  if (id <= 0)
    sqlite3_bind_null (st, i);
  else
    sqlite3_bind_int64 (st, i, id);
}

/* Steps a statement that returns no row. */
static gboolean
step_done (RuvStore     *self,
           sqlite3_stmt *st,
           const char   *what,
           GError      **error)
{
  int rc = sqlite3_step (st);

  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    {
      store_error (self, error, rc, what);
      return FALSE;
    }
  return TRUE;
}

static gboolean
run_sql (RuvStore    *self,
         const char  *sql,
         GError     **error)
{
  return db_exec (self->db, self->path, sql, _("Could not save to the chat history"), error);
}

/* Every write: BEGIN IMMEDIATE (takes the write lock up front, waiting up to
 * the busy timeout), so no transaction ever upgrades from read to write. */
static gboolean
begin_write (RuvStore  *self,
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
  return db_exec (self->db, self->path, "BEGIN IMMEDIATE",
                  _("Could not save to the chat history"), error);
}

static void
rollback (RuvStore *self)
{
  if (!sqlite3_get_autocommit (self->db))
    sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Commits, or rolls back and reports. */
static gboolean
finish_write (RuvStore  *self,
              gboolean   ok,
              GError   **error)
{
  if (ok && run_sql (self, "COMMIT", error))
    return TRUE;
  rollback (self);
  return FALSE;
}

static gboolean
text_ok (const char  *text,
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

static gboolean
role_ok (const char  *role,
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

static gboolean
json_text_ok (const char  *json,
              GError     **error)
{
  g_autoptr(JsonParser) parser = NULL;

  if (json == NULL)
    return TRUE;
  if (!text_ok (json, 1024 * 1024, "params_json", error))
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

static sqlite3 *
open_connection (const char  *path,
                 gboolean     read_only,
                 GError     **error)
{
  sqlite3 *db = NULL;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc;

  rc = sqlite3_open_v2 (path, &db, flags | SQLITE_OPEN_FULLMUTEX, NULL);
  if (rc != SQLITE_OK)
    {
      set_sqlite_error (db, path, error, rc, _("Could not open the chat history"));
      sqlite3_close_v2 (db);
      return NULL;
    }
  sqlite3_extended_result_codes (db, 1);
  sqlite3_busy_timeout (db, BUSY_TIMEOUT_MS);
  sqlite3_db_config (db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
  sqlite3_db_config (db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, NULL);
  sqlite3_db_config (db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
  if (!db_exec (db, path, "PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF",
                _("Could not open the chat history"), error))
    {
      sqlite3_close_v2 (db);
      return NULL;
    }
  return db;
}

/* 0 and "ok" when quick_check passes; the SQLite code, or SQLITE_CORRUPT with
 * the first problem in *problem, otherwise. */
static int
quick_check (sqlite3  *db,
             char    **problem)
{
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2 (db, "PRAGMA quick_check(5)", -1, &st, NULL);

  if (rc == SQLITE_OK)
    {
      rc = sqlite3_step (st);
      if (rc == SQLITE_ROW)
        {
          const char *r = (const char *) sqlite3_column_text (st, 0);

          if (r != NULL && g_str_equal (r, "ok"))
            rc = SQLITE_OK;
          else
            {
              if (problem != NULL)
                *problem = g_strdup (r != NULL ? r : "?");
              rc = SQLITE_CORRUPT;
            }
        }
      else if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    }
  sqlite3_finalize (st);
  return rc;
}

static gint64
query_int (sqlite3    *db,
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

/* Runs the migrations from `from` to the newest, each in one transaction. */
static gboolean
migrate (sqlite3     *db,
         const char  *path,
         gint64       from,
         GError     **error)
{
  gint64 v;

  for (v = from; v < RUV_STORE_SCHEMA_VERSION; v++)
    {
      g_autofree char *bump = g_strdup_printf ("PRAGMA user_version=%" G_GINT64_FORMAT, v + 1);
      g_autofree char *what = g_strdup_printf (_("Could not update the chat history to "
                                                 "version %" G_GINT64_FORMAT), v + 1);
      gboolean ok;
      gsize t;

      if (!db_exec (db, path, "BEGIN IMMEDIATE", what, error))
        return FALSE;
      /* Someone else may have migrated meanwhile. */
      if (query_int (db, "PRAGMA user_version", NULL) != v)
        {
          sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
          continue;
        }
      ok = db_exec (db, path, migrations[v], what, error);
      if (ok && v + 1 == 2)
        for (t = 0; ok && t < G_N_ELEMENTS (store_triggers); t++)
          ok = db_exec (db, path, store_triggers[t].sql, what, error);
      ok = ok && db_exec (db, path, bump, what, error);
      ok = ok && db_exec (db, path, "COMMIT", what, error);
      if (!ok)
        {
          sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
          return FALSE;
        }
    }
  return TRUE;
}

/* TRUE when every trigger and view in the file is one we created, word for
 * word: only then may trusted_schema go on (FTS5 needs it in triggers). */
static gboolean
schema_is_ours (sqlite3 *db)
{
  sqlite3_stmt *st = NULL;
  guint found = 0;
  gboolean ok = TRUE;
  int rc;

  if (sqlite3_prepare_v2 (db, "SELECT type, name, sql FROM sqlite_schema"
                          " WHERE type IN ('trigger', 'view')", -1, &st, NULL) != SQLITE_OK)
    {
      sqlite3_finalize (st);
      return FALSE;
    }
  while (ok && (rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      const char *type = (const char *) sqlite3_column_text (st, 0);
      const char *name = (const char *) sqlite3_column_text (st, 1);
      const char *sql = (const char *) sqlite3_column_text (st, 2);
      gsize t;
      gboolean match = FALSE;

      for (t = 0; t < G_N_ELEMENTS (store_triggers); t++)
        if (type != NULL && g_str_equal (type, "trigger") && name != NULL &&
            g_str_equal (name, store_triggers[t].name) && sql != NULL &&
            g_str_equal (sql, store_triggers[t].sql))
          match = TRUE;
      if (match)
        found++;
      else
        ok = FALSE;
    }
  sqlite3_finalize (st);
  return ok && found == G_N_ELEMENTS (store_triggers);
}

static char *
timestamp_now (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *base = g_date_time_format (now, "%Y%m%dT%H%M%S");

  return g_strdup_printf ("%s-%06d", base != NULL ? base : "0",
                          g_date_time_get_microsecond (now));
}

/* Renames <path>, <path>-wal, <path>-shm to <aside>, <aside>-wal, <aside>-shm. */
static gboolean
move_aside (const char  *path,
            const char  *aside,
            GError     **error)
{
  static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      g_autofree char *from = g_strconcat (path, suffixes[i], NULL);
      g_autofree char *to = g_strconcat (aside, suffixes[i], NULL);

      if (g_rename (from, to) != 0 && errno != ENOENT)
        {
          int e = errno;

          g_set_error (error, RUV_ERROR, RUV_ERROR_STORAGE,
                       _("The chat history file is damaged and could not be moved aside "
                         "to %s: %s [%s]"), to, g_strerror (e), from);
          return FALSE;
        }
    }
  return TRUE;
}

/* Copies one table's readable rows from src to dst, skipping damaged pages:
 * on an error the scan restarts after the last good rowid, jumping ahead
 * further each time. Returns the number of rows copied. */
static gint64
salvage_table (sqlite3    *src,
               sqlite3    *dst,
               const char *table)
{
  g_autofree char *select_sql = g_strdup_printf ("SELECT rowid, * FROM \"%s\""
                                                 " WHERE rowid >= ?1 ORDER BY rowid", table);
  g_autofree char *info_sql = g_strdup_printf ("SELECT name FROM pragma_table_info('%s')",
                                               table);
  g_autoptr(GHashTable) dst_cols = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  sqlite3_stmt *st = NULL;
  gint64 next = G_MININT64, copied = 0, skip = 1;
  guint failures = 0;

  if (sqlite3_prepare_v2 (dst, info_sql, -1, &st, NULL) == SQLITE_OK)
    while (sqlite3_step (st) == SQLITE_ROW)
      g_hash_table_add (dst_cols, g_strdup ((const char *) sqlite3_column_text (st, 0)));
  sqlite3_finalize (st);

  while (failures < 24)
    {
      sqlite3_stmt *sel = NULL, *ins = NULL;
      g_autoptr(GString) cols = g_string_new (NULL);
      g_autoptr(GString) vals = g_string_new (NULL);
      g_autoptr(GArray) map = g_array_new (FALSE, FALSE, sizeof (int));
      int rc, n, i;

      if (sqlite3_prepare_v2 (src, select_sql, -1, &sel, NULL) != SQLITE_OK)
        {
          sqlite3_finalize (sel);
          break;
        }
      sqlite3_bind_int64 (sel, 1, next);
      n = sqlite3_column_count (sel);
      for (i = 1; i < n; i++)
        {
          const char *name = sqlite3_column_name (sel, i);

          if (name == NULL || !g_hash_table_contains (dst_cols, name))
            continue;
          g_string_append_printf (cols, "%s\"%s\"", cols->len > 0 ? ", " : "", name);
          g_string_append_printf (vals, "%s?", vals->len > 0 ? ", " : "");
          g_array_append_val (map, i);
        }
      if (map->len > 0)
        {
          g_autofree char *ins_sql = g_strdup_printf ("INSERT OR IGNORE INTO \"%s\" (%s) "
                                                      "VALUES (%s)", table, cols->str,
                                                      vals->str);

          if (sqlite3_prepare_v2 (dst, ins_sql, -1, &ins, NULL) != SQLITE_OK)
            g_clear_pointer (&ins, sqlite3_finalize);
        }
      if (ins == NULL)
        {
          sqlite3_finalize (sel);
          break;
        }
      while ((rc = sqlite3_step (sel)) == SQLITE_ROW)
        {
          gint64 rowid = sqlite3_column_int64 (sel, 0);
          guint k;

          for (k = 0; k < map->len; k++)
            sqlite3_bind_value (ins, (int) k + 1,
                                sqlite3_column_value (sel, g_array_index (map, int, k)));
          if (sqlite3_step (ins) == SQLITE_DONE && sqlite3_changes (dst) > 0)
            copied++;
          sqlite3_reset (ins);
          next = rowid < G_MAXINT64 ? rowid + 1 : rowid;
        }
      sqlite3_finalize (sel);
      sqlite3_finalize (ins);
      if (rc == SQLITE_DONE)
        break;
      failures++;
      if (next == G_MININT64)
        next = 0;
      next = next > G_MAXINT64 - skip ? G_MAXINT64 : next + skip;
      skip = skip < G_MAXINT64 / 4 ? skip * 4 : skip;
    }
  return copied;
}

/* After salvaging with foreign keys off: drop what lost its parent, fix the
 * leaves, rebuild the search index. */
static gboolean
repair_links (sqlite3     *db,
              const char  *path,
              GError     **error)
{
  static const char sql[] =
    "DELETE FROM messages WHERE session_id NOT IN (SELECT id FROM sessions);"
    "DELETE FROM messages WHERE id NOT IN ("
    "  WITH RECURSIVE ok(id) AS ("
    "    SELECT id FROM messages WHERE parent_id IS NULL"
    "    UNION SELECT m.id FROM messages m JOIN ok ON m.parent_id = ok.id"
    "  ) SELECT id FROM ok);"
    "DELETE FROM ratings WHERE message_id NOT IN (SELECT id FROM messages);"
    "UPDATE ratings SET snapshot_id = NULL"
    "  WHERE snapshot_id NOT IN (SELECT id FROM adapter_snapshots);"
    "UPDATE adapter_snapshots SET parent_id = NULL"
    "  WHERE parent_id NOT IN (SELECT id FROM adapter_snapshots);"
    "UPDATE sessions SET leaf_id = (SELECT max(id) FROM messages m"
    "  WHERE m.session_id = sessions.id)"
    "  WHERE leaf_id IS NULL OR leaf_id NOT IN (SELECT id FROM messages m"
    "  WHERE m.session_id = sessions.id);"
    "UPDATE messages SET complete = 1, finish_reason = COALESCE(finish_reason, 'interrupted')"
    "  WHERE complete = 0;"
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');";

  return db_exec (db, path, sql, _("Could not repair the recovered chat history"), error);
}

static gboolean
copy_database (sqlite3 *from,
               sqlite3 *to)
{
  sqlite3_backup *b = sqlite3_backup_init (to, "main", from, "main");
  int rc;

  if (b == NULL)
    return FALSE;
  do
    {
      rc = sqlite3_backup_step (b, 256);
      if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        sqlite3_sleep (20);
    }
  while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  return sqlite3_backup_finish (b) == SQLITE_OK && rc == SQLITE_DONE;
}

static gint
compare_names_desc (gconstpointer a,
                    gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) b, *(const char * const *) a);
}

static GPtrArray *
list_backups_in (const char *dir)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return out;
  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, "ruvllm-") && g_str_has_suffix (name, ".db"))
      g_ptr_array_add (out, g_build_filename (dir, name, NULL));
  /* Names carry the date: newest first is reverse name order. */
  g_ptr_array_sort (out, compare_names_desc);
  return out;
}

/* The recovery: `path` failed its check. Never deletes anything. */
static gboolean
recover (RuvStore    *self,
         const char  *problem,
         GError     **error)
{
  g_autofree char *ts = timestamp_now ();
  g_autofree char *aside = g_strconcat (self->path, ".corrupt-", ts, NULL);
  g_autoptr(GPtrArray) backups = list_backups_in (self->backup_dir);
  g_autofree char *restored = NULL;
  static const char *const tables[] = { "sessions", "messages", "ratings",
                                        "adapter_snapshots", "models" };
  gint64 counts[G_N_ELEMENTS (tables)] = { 0 };
  sqlite3 *src;
  guint i;
  gboolean ok;

  g_clear_pointer (&self->db, sqlite3_close_v2);
  if (!move_aside (self->path, aside, error))
    return FALSE;

  self->db = open_connection (self->path, FALSE, error);
  if (self->db == NULL)
    return FALSE;

  /* The newest backup that is itself sound. */
  for (i = 0; i < backups->len && restored == NULL; i++)
    {
      const char *b = g_ptr_array_index (backups, i);
      sqlite3 *bdb = open_connection (b, TRUE, NULL);

      if (bdb != NULL && quick_check (bdb, NULL) == SQLITE_OK &&
          query_int (bdb, "PRAGMA user_version", NULL) <= RUV_STORE_SCHEMA_VERSION &&
          copy_database (bdb, self->db))
        restored = g_path_get_basename (b);
      sqlite3_close_v2 (bdb);
    }
  if (!db_exec (self->db, self->path, "PRAGMA journal_mode=WAL",
                _("Could not create a new chat history"), error) ||
      !migrate (self->db, self->path, query_int (self->db, "PRAGMA user_version", NULL), error))
    return FALSE;

  /* What can still be read from the damaged file goes on top. */
  src = open_connection (aside, TRUE, NULL);
  /* The FTS triggers need a trusted schema: it is ours, just created. */
  ok = db_exec (self->db, self->path, "PRAGMA foreign_keys=OFF; PRAGMA trusted_schema=ON;"
                " BEGIN IMMEDIATE", _("Could not recover the chat history"), error);
  if (ok && src != NULL)
    for (i = 0; i < G_N_ELEMENTS (tables); i++)
      counts[i] = salvage_table (src, self->db, tables[i]);
  sqlite3_close_v2 (src);
  if (ok)
    {
      ok = repair_links (self->db, self->path, error) &&
           db_exec (self->db, self->path, "COMMIT", _("Could not recover the chat history"),
                    error);
      if (!ok)
        sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
      sqlite3_exec (self->db, "PRAGMA trusted_schema=OFF; PRAGMA foreign_keys=ON", NULL, NULL,
                    NULL);
    }
  if (!ok)
    return FALSE;

  {
    gint64 n_sessions = query_int (self->db, "SELECT count(*) FROM sessions", NULL);
    gint64 n_messages = query_int (self->db, "SELECT count(*) FROM messages", NULL);
    g_autofree char *from_backup = restored != NULL
      ? g_strdup_printf (_("restored the backup %s and "), restored)
      : g_strdup ("");

    g_free (self->recovery_report);
    self->recovery_report =
      g_strdup_printf (_("The chat history file was unreadable (%s). A copy was kept at %s. "
                         "RuvLLM %sread %" G_GINT64_FORMAT " chats and %" G_GINT64_FORMAT
                         " messages from the damaged file; the history now holds %"
                         G_GINT64_FORMAT " chats and %" G_GINT64_FORMAT " messages."),
                       problem, aside, from_backup, counts[0], counts[1], n_sessions,
                       n_messages);
  }
  return TRUE;
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

  self->db = open_connection (self->path, FALSE, NULL);
  if (self->db == NULL)
    {
      /* The folder or file refuses writing: try reading. */
      self->db = open_connection (self->path, TRUE, error);
      if (self->db == NULL)
        return FALSE;
      set_read_only (self, _("The chat history is read-only: its folder or file cannot be "
                             "written."));
    }

  rc = quick_check (self->db, &problem);
  if ((rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_READONLY)
    {
      /* WAL needs to create -shm/-wal next to the file: a read-only folder. */
      g_clear_pointer (&self->db, sqlite3_close_v2);
      self->db = open_connection (self->path, TRUE, error);
      if (self->db == NULL)
        return FALSE;
      set_read_only (self, _("The chat history is read-only: its folder cannot be written."));
      rc = quick_check (self->db, &problem);
      if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_CORRUPT && (rc & 0xff) != SQLITE_NOTADB)
        {
          store_error (self, error, rc, _("Could not open the chat history"));
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
      if (!recover (self, problem, error))
        return FALSE;
      g_clear_pointer (&problem, g_free);
      rc = quick_check (self->db, &problem);
    }
  if (rc != SQLITE_OK)
    {
      store_error (self, error, rc, _("Could not open the chat history"));
      return FALSE;
    }

  version = query_int (self->db, "PRAGMA user_version", &rc);
  if (rc != SQLITE_OK)
    {
      store_error (self, error, rc, _("Could not open the chat history"));
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
        mode = col_strdup (st, 0);
      sqlite3_finalize (st);
      if (mode == NULL || g_ascii_strcasecmp (mode, "wal") != 0)
        {
          rc = sqlite3_exec (self->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
          if ((rc & 0xff) == SQLITE_READONLY)
            set_read_only (self, _("The chat history file is read-only."));
          else if (rc != SQLITE_OK)
            {
              store_error (self, error, rc, _("Could not open the chat history"));
              return FALSE;
            }
        }
    }
  if (!self->read_only)
    {
      if (!db_exec (self->db, self->path, "PRAGMA synchronous=NORMAL",
                    _("Could not open the chat history"), error))
        return FALSE;
      /* A failed step rolls back: the old schema stays as it was. */
      if (!migrate (self->db, self->path, version, error))
        return FALSE;
    }
  if (schema_is_ours (self->db))
    sqlite3_exec (self->db, "PRAGMA trusted_schema=ON", NULL, NULL, NULL);
  else if (!self->read_only)
    set_read_only (self, _("The chat history contains triggers or views RuvLLM did not "
                           "create; it is shown read-only."));

  if (!self->read_only)
    {
      /* An answer left half-streamed by a crash keeps its text, marked. */
      g_autoptr(GError) local = NULL;

      if (db_exec (self->db, self->path,
                   "BEGIN IMMEDIATE;"
                   "UPDATE messages SET complete = 1,"
                   "  finish_reason = COALESCE(finish_reason, 'interrupted')"
                   "  WHERE complete = 0;"
                   "COMMIT", "interrupted", &local) == FALSE)
        {
          rollback (self);
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

gboolean
ruv_store_check_integrity (RuvStore  *self,
                           GError   **error)
{
  g_autoptr(GMutexLocker) locker = NULL;
  sqlite3_stmt *st = NULL;
  int rc;
  gboolean ok = FALSE;

  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  locker = g_mutex_locker_new (&self->lock);
  st = prepare (self, "PRAGMA integrity_check(5)", error);
  if (st == NULL)
    return FALSE;
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW && g_strcmp0 ((const char *) sqlite3_column_text (st, 0), "ok") == 0)
    ok = TRUE;
  else if (rc == SQLITE_ROW)
    g_set_error (error, RUV_ERROR, RUV_ERROR_STORAGE, _("The chat history is damaged: %s [%s]"),
                 sqlite3_column_text (st, 0), self->path);
  else
    store_error (self, error, rc, _("Could not check the chat history"));
  sqlite3_finalize (st);
  return ok;
}

char *
ruv_store_backup_now (RuvStore  *self,
                      GError   **error)
{
  g_autoptr(GMutexLocker) locker = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *day = g_date_time_format (now, "%Y-%m-%d");
  g_autofree char *name = g_strdup_printf ("ruvllm-%s.db", day);
  g_autofree char *file = g_build_filename (self->backup_dir, name, NULL);
  g_autofree char *tmp = g_strconcat (file, ".tmp", NULL);
  g_autoptr(GPtrArray) all = NULL;
  sqlite3 *dst;
  gboolean ok;
  guint i;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  if (g_mkdir_with_parents (self->backup_dir, 0700) != 0)
    {
      int e = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_STORAGE,
                   _("Could not create the backup folder: %s [%s]"), g_strerror (e),
                   self->backup_dir);
      return NULL;
    }
  g_unlink (tmp);
  dst = open_connection (tmp, FALSE, error);
  if (dst == NULL)
    return NULL;
  locker = g_mutex_locker_new (&self->lock);
  ok = copy_database (self->db, dst);
  if (!ok)
    set_sqlite_error (dst, tmp, error, sqlite3_errcode (dst), _("Could not write a backup"));
  g_clear_pointer (&locker, g_mutex_locker_free);
  sqlite3_close_v2 (dst);
  if (!ok)
    {
      g_unlink (tmp);
      return NULL;
    }
  if (g_rename (tmp, file) != 0)
    {
      int e = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_STORAGE, _("Could not write a backup: %s [%s]"),
                   g_strerror (e), file);
      g_unlink (tmp);
      return NULL;
    }
  all = list_backups_in (self->backup_dir);
  for (i = BACKUPS_KEPT; i < all->len; i++)
    g_unlink (g_ptr_array_index (all, i));
  return g_steal_pointer (&file);
}

GPtrArray *
ruv_store_list_backups (RuvStore *self)
{
  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  return list_backups_in (self->backup_dir);
}

/* ------------------------------------------------------------------------ */
/* Sessions */

#define LOCK() g_autoptr(GMutexLocker) locker G_GNUC_UNUSED = g_mutex_locker_new (&self->lock)

static gboolean
session_exists (RuvStore  *self,
                gint64     session_id,
                GError   **error)
{
  g_autoptr(sqlite3_stmt) st = prepare (self, "SELECT 1 FROM sessions WHERE id = ?1", error);
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
    store_error (self, error, rc, _("Could not read the chat history"));
  return FALSE;
}

static gint64
insert_session (RuvStore   *self,
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
  g_autoptr(sqlite3_stmt) st = prepare (self,
    "INSERT INTO sessions (title, title_auto, created_us, updated_us, pinned, archived,"
    " model, system_prompt, params_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", error);

  if (st == NULL)
    return 0;
  bind_text (st, 1, title != NULL ? title : "");
  sqlite3_bind_int (st, 2, title_auto ? 1 : 0);
  sqlite3_bind_int64 (st, 3, created_us);
  sqlite3_bind_int64 (st, 4, updated_us);
  sqlite3_bind_int (st, 5, pinned ? 1 : 0);
  sqlite3_bind_int (st, 6, archived ? 1 : 0);
  bind_text (st, 7, model);
  bind_text (st, 8, system_prompt);
  bind_text (st, 9, params_json);
  if (!step_done (self, st, _("Could not save the chat"), error))
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
  if (!text_ok (title, MAX_SHORT_TEXT, "title", error) ||
      !text_ok (model, MAX_SHORT_TEXT, "model", error) ||
      !text_ok (system_prompt, MAX_CONTENT_BYTES, "system prompt", error) ||
      !json_text_ok (params_json, error))
    return 0;
  {
    LOCK ();

    if (!begin_write (self, error))
      return 0;
    id = insert_session (self, title, title == NULL, now, now, FALSE, FALSE, model,
                         system_prompt, params_json, error);
    if (!finish_write (self, id > 0, error))
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

  if (!begin_write (self, error))
    return FALSE;
  ok = session_exists (self, session_id, error);
  if (ok)
    {
      st = prepare (self, sql, error);
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
      ok = step_done (self, st, _("Could not save the chat"), error);
    }
  g_clear_pointer (&st, sqlite3_finalize);
  return finish_write (self, ok, error);
}

gboolean
ruv_store_rename_session (RuvStore    *self,
                          gint64       session_id,
                          const char  *title,
                          GError     **error)
{
  g_return_val_if_fail (RUV_IS_STORE (self), FALSE);
  g_return_val_if_fail (title != NULL, FALSE);
  if (!text_ok (title, MAX_SHORT_TEXT, "title", error))
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
  if (!text_ok (model, MAX_SHORT_TEXT, "model", error) ||
      !text_ok (system_prompt, MAX_CONTENT_BYTES, "system prompt", error) ||
      !json_text_ok (params_json, error))
    return FALSE;
  {
    LOCK ();

    if (!begin_write (self, error))
      return FALSE;
    ok = session_exists (self, session_id, error);
    if (ok)
      {
        st = prepare (self, "UPDATE sessions SET model = ?2, system_prompt = ?3,"
                      " params_json = ?4, updated_us = ?5 WHERE id = ?1", error);
        ok = st != NULL;
      }
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, session_id);
        bind_text (st, 2, model);
        bind_text (st, 3, system_prompt);
        bind_text (st, 4, params_json);
        sqlite3_bind_int64 (st, 5, g_get_real_time ());
        ok = step_done (self, st, _("Could not save the chat"), error);
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return finish_write (self, ok, error);
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

    if (!begin_write (self, error))
      return FALSE;
    ok = session_exists (self, session_id, error);
    if (ok)
      {
        /* Messages, ratings (and their search entries) go by cascade. */
        st = prepare (self, "DELETE FROM sessions WHERE id = ?1", error);
        ok = st != NULL;
      }
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, session_id);
        ok = step_done (self, st, _("Could not delete the chat"), error);
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return finish_write (self, ok, error);
  }
}

static RuvStoreSession *
get_session_locked (RuvStore  *self,
                    gint64     session_id,
                    GError   **error)
{
  g_autoptr(sqlite3_stmt) st = prepare (self, "SELECT " SESSION_COLS " FROM sessions"
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
    store_error (self, error, rc, _("Could not read the chat history"));
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

    return get_session_locked (self, session_id, error);
  }
}

static GPtrArray *
list_sessions_locked (RuvStore  *self,
                      gboolean   include_archived,
                      gboolean   by_id,
                      GError   **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_session_free);
  g_autoptr(sqlite3_stmt) st = prepare (self, by_id
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
      store_error (self, error, rc, _("Could not read the chat history"));
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

    return list_sessions_locked (self, include_archived, FALSE, error);
  }
}

/* ------------------------------------------------------------------------ */
/* Messages */

static RuvStoreMessage *
get_message_locked (RuvStore  *self,
                    gint64     message_id,
                    GError   **error)
{
  g_autoptr(sqlite3_stmt) st = prepare (self, "SELECT " MESSAGE_COLS " FROM messages m"
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
    store_error (self, error, rc, _("Could not read the chat history"));
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

    return get_message_locked (self, message_id, error);
  }
}

static gboolean
set_leaf (RuvStore  *self,
          gint64     session_id,
          gint64     leaf_id,
          GError   **error)
{
  g_autoptr(sqlite3_stmt) st = prepare (self, "UPDATE sessions SET leaf_id = ?2,"
                                        " updated_us = max(updated_us, ?3) WHERE id = ?1",
                                        error);

  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, session_id);
  bind_id (st, 2, leaf_id);
  sqlite3_bind_int64 (st, 3, g_get_real_time ());
  return step_done (self, st, _("Could not save the chat"), error);
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
      g_autoptr(RuvStoreMessage) parent = get_message_locked (self, parent_id, error);

      if (parent == NULL)
        return 0;
      if (parent->session_id != session_id)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                       "message %" G_GINT64_FORMAT " belongs to another chat", parent_id);
          return 0;
        }
    }
  else if (!session_exists (self, session_id, error))
    return 0;

  st = prepare (self, "INSERT INTO messages (session_id, parent_id, role, content, created_us,"
                " model, params_json, complete) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", error);
  if (st == NULL)
    return 0;
  sqlite3_bind_int64 (st, 1, session_id);
  bind_id (st, 2, parent_id);
  bind_text (st, 3, role);
  bind_text (st, 4, content != NULL ? content : "");
  sqlite3_bind_int64 (st, 5, created_us >= 0 ? created_us : g_get_real_time ());
  bind_text (st, 6, model);
  bind_text (st, 7, params_json);
  sqlite3_bind_int (st, 8, complete ? 1 : 0);
  if (!step_done (self, st, _("Could not save the message"), error))
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
  st = prepare (self, "UPDATE sessions SET title = ?2 WHERE id = ?1 AND title_auto = 1"
                " AND title = ''", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, session_id);
  bind_text (st, 2, title);
  return step_done (self, st, _("Could not save the chat"), error);
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
  if (!role_ok (role, error) || !text_ok (content, MAX_CONTENT_BYTES, "message", error) ||
      !text_ok (model, MAX_SHORT_TEXT, "model", error) || !json_text_ok (params_json, error))
    return 0;
  {
    LOCK ();

    if (!begin_write (self, error))
      return 0;
    id = insert_message (self, session_id, parent_id, role, content, -1, model, params_json,
                         complete, error);
    if (!finish_write (self, id > 0 && set_leaf (self, session_id, id, error) &&
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
  if (!text_ok (text, MAX_CONTENT_BYTES, "message", error))
    return FALSE;
  {
    LOCK ();

    if (!begin_write (self, error))
      return FALSE;
    st = prepare (self, "UPDATE messages SET content = ?2 WHERE id = ?1 AND complete = 0"
                  " AND content IS NOT ?2", error);
    ok = st != NULL;
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, message_id);
        bind_text (st, 2, text);
        ok = step_done (self, st, _("Could not save the message"), error);
      }
    if (ok && sqlite3_changes (self->db) == 0)
      {
        g_autoptr(RuvStoreMessage) m = get_message_locked (self, message_id, error);

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
    return finish_write (self, ok, error);
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
  if (!text_ok (text, MAX_CONTENT_BYTES, "message", error) ||
      (stats != NULL && !text_ok (stats->finish_reason, MAX_SHORT_TEXT, "finish reason", error)))
    return FALSE;
  {
    LOCK ();

    if (!begin_write (self, error))
      return FALSE;
    st = prepare (self, "UPDATE messages SET content = COALESCE(?2, content), complete = 1,"
                  " n_prompt = ?3, n_gen = ?4, ttft_ms = ?5, tokens_per_s = ?6,"
                  " finish_reason = ?7 WHERE id = ?1", error);
    ok = st != NULL;
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, message_id);
        bind_text (st, 2, text);
        if (stats != NULL && stats->n_prompt >= 0)
          sqlite3_bind_int (st, 3, stats->n_prompt);
        if (stats != NULL && stats->n_gen >= 0)
          sqlite3_bind_int (st, 4, stats->n_gen);
        if (stats != NULL && stats->ttft_ms >= 0 && isfinite (stats->ttft_ms))
          sqlite3_bind_double (st, 5, stats->ttft_ms);
        if (stats != NULL && stats->tokens_per_s >= 0 && isfinite (stats->tokens_per_s))
          sqlite3_bind_double (st, 6, stats->tokens_per_s);
        bind_text (st, 7, stats != NULL && stats->finish_reason != NULL ? stats->finish_reason
                                                                        : "stop");
        ok = step_done (self, st, _("Could not save the message"), error);
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
        st = prepare (self, "UPDATE sessions SET updated_us = ?2 WHERE id ="
                      " (SELECT session_id FROM messages WHERE id = ?1)", error);
        ok = st != NULL;
        if (ok)
          {
            sqlite3_bind_int64 (st, 1, message_id);
            sqlite3_bind_int64 (st, 2, g_get_real_time ());
            ok = step_done (self, st, _("Could not save the chat"), error);
          }
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return finish_write (self, ok, error);
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
      store_error (self, error, rc, _("Could not read the chat history"));
      return NULL;
    }
  return g_steal_pointer (&out);
}

/* Root first, ending at `leaf_id`. */
static GPtrArray *
load_path_locked (RuvStore  *self,
                  gint64     leaf_id,
                  GError   **error)
{
  g_autoptr(sqlite3_stmt) st = prepare (self,
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

    s = get_session_locked (self, session_id, error);
    if (s == NULL)
      return NULL;
    return load_path_locked (self, s->leaf_id, error);
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

    st = prepare (self, "SELECT " MESSAGE_COLS " FROM messages m"
                  " LEFT JOIN ratings r ON r.message_id = m.id"
                  " WHERE m.session_id = ?1 AND m.parent_id IS ?2 ORDER BY m.id", error);
    if (st == NULL)
      return NULL;
    sqlite3_bind_int64 (st, 1, session_id);
    bind_id (st, 2, parent_id);
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

  if (!text_ok (content, MAX_CONTENT_BYTES, "message", error) ||
      !text_ok (model, MAX_SHORT_TEXT, "model", error) || !json_text_ok (params_json, error))
    return 0;
  {
    LOCK ();

    if (!begin_write (self, error))
      return 0;
    m = get_message_locked (self, message_id, error);
    if (m == NULL)
      {
        rollback (self);
        return 0;
      }
    if (regenerate && !g_str_equal (m->role, "assistant"))
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                     "only an assistant message can be regenerated (message %" G_GINT64_FORMAT
                     " is a %s message)", message_id, m->role);
        rollback (self);
        return 0;
      }
    id = insert_message (self, m->session_id, m->parent_id, m->role,
                         regenerate ? "" : content, -1,
                         regenerate ? (model != NULL ? model : m->model) : m->model,
                         regenerate ? (params_json != NULL ? params_json : m->params_json)
                                    : m->params_json,
                         !regenerate, error);
    if (!finish_write (self, id > 0 && set_leaf (self, m->session_id, id, error), error))
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

    if (!begin_write (self, error))
      return FALSE;
    m = get_message_locked (self, message_id, error);
    ok = m != NULL;
    if (ok)
      {
        /* Follow the newest child down to a leaf. */
        st = prepare (self,
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
            store_error (self, error, rc, _("Could not read the chat history"));
            ok = FALSE;
          }
        else
          ok = set_leaf (self, m->session_id, sqlite3_column_int64 (st, 0), error);
      }
    g_clear_pointer (&st, sqlite3_finalize);
    return finish_write (self, ok, error);
  }
}

static gboolean
copy_rating (RuvStore  *self,
             gint64     from_id,
             gint64     to_id,
             GError   **error)
{
  g_autoptr(sqlite3_stmt) st = prepare (self,
    "INSERT INTO ratings (message_id, rating, rated_us, outcome, latency_us, loss_before,"
    " loss_after, snapshot_id) SELECT ?2, rating, rated_us, outcome, latency_us, loss_before,"
    " loss_after, snapshot_id FROM ratings WHERE message_id = ?1", error);

  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, from_id);
  sqlite3_bind_int64 (st, 2, to_id);
  return step_done (self, st, _("Could not save the rating"), error);
}

static gboolean
copy_message_stats (RuvStore  *self,
                    gint64     from_id,
                    gint64     to_id,
                    GError   **error)
{
  g_autoptr(sqlite3_stmt) st = prepare (self,
    "UPDATE messages SET (n_prompt, n_gen, ttft_ms, tokens_per_s, finish_reason, complete) ="
    " (SELECT n_prompt, n_gen, ttft_ms, tokens_per_s, finish_reason, complete FROM messages"
    "  WHERE id = ?1) WHERE id = ?2", error);

  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, from_id);
  sqlite3_bind_int64 (st, 2, to_id);
  return step_done (self, st, _("Could not save the message"), error);
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
  if (!text_ok (title, MAX_SHORT_TEXT, "title", error))
    return 0;
  {
    LOCK ();

    if (!begin_write (self, error))
      return 0;
    ok = (m = get_message_locked (self, message_id, error)) != NULL &&
         (s = get_session_locked (self, m->session_id, error)) != NULL &&
         (path = load_path_locked (self, message_id, error)) != NULL;
    if (ok)
      {
        g_autofree char *copy_title = title != NULL ? g_strdup (title)
                                      : g_strdup_printf (_("%s (copy)"), s->title);

        session_id = insert_session (self, copy_title, FALSE, now, now, FALSE, FALSE, s->model,
                                     s->system_prompt, s->params_json, error);
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
    if (!finish_write (self, ok, error))
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

    if (!begin_write (self, error))
      return FALSE;
    m = get_message_locked (self, message_id, error);
    ok = m != NULL;
    if (ok)
      {
        /* The shown branch went through it: show its parent. */
        st = prepare (self, leaf_sql, error);
        ok = st != NULL;
        if (ok)
          {
            sqlite3_bind_int64 (st, 1, message_id);
            bind_id (st, 2, m->parent_id);
            sqlite3_bind_int64 (st, 3, m->session_id);
            ok = step_done (self, st, _("Could not delete the message"), error);
          }
        g_clear_pointer (&st, sqlite3_finalize);
      }
    if (ok)
      {
        /* One statement for the whole subtree: the parent links are checked
         * at its end, when none is left dangling. */
        st = prepare (self, del_sql, error);
        ok = st != NULL;
        if (ok)
          {
            sqlite3_bind_int64 (st, 1, message_id);
            ok = step_done (self, st, _("Could not delete the message"), error);
          }
        g_clear_pointer (&st, sqlite3_finalize);
      }
    return finish_write (self, ok, error);
  }
}

/* ------------------------------------------------------------------------ */
/* Ratings: written with synchronous=FULL, so a returned call is on disk. */

static gboolean
begin_durable (RuvStore  *self,
               GError   **error)
{
  if (self->read_only)
    return begin_write (self, error);
  sqlite3_exec (self->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
  if (!begin_write (self, error))
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
  ok = finish_write (self, ok, error);
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
    m = get_message_locked (self, message_id, error);
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
        st = prepare (self,
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
        ok = step_done (self, st, _("Could not save the rating"), error);
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
        st = prepare (self, "SELECT 1 FROM adapter_snapshots WHERE id = ?1", error);
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
    st = prepare (self, "UPDATE ratings SET outcome = ?2, latency_us = ?3, loss_before = ?4,"
                  " loss_after = ?5, snapshot_id = ?6 WHERE message_id = ?1", error);
    ok = st != NULL;
    if (ok)
      {
        sqlite3_bind_int64 (st, 1, message_id);
        bind_text (st, 2, outcome == RUV_ADAPTATION_APPLIED ? "applied" : "skipped");
        if (latency_us >= 0)
          sqlite3_bind_int64 (st, 3, latency_us);
        if (isfinite (loss_before))
          sqlite3_bind_double (st, 4, loss_before);
        if (isfinite (loss_after))
          sqlite3_bind_double (st, 5, loss_after);
        bind_id (st, 6, snapshot_id);
        ok = step_done (self, st, _("Could not save the rating"), error);
      }
    if (ok && sqlite3_changes (self->db) == 0)
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                     _("Message %" G_GINT64_FORMAT " has no rating"), message_id);
        ok = FALSE;
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

    st = prepare (self, "SELECT r.message_id, m.session_id, r.rating, r.rated_us, r.outcome,"
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
        r->excerpt = col_strdup (st, 9);
        g_ptr_array_add (out, r);
      }
    if (rc != SQLITE_DONE)
      {
        store_error (self, error, rc, _("Could not read the chat history"));
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
      !text_ok (model, MAX_SHORT_TEXT, "model", error) ||
      !text_ok (path, MAX_SHORT_TEXT, "path", error) ||
      !text_ok (note, MAX_SHORT_TEXT, "note", error))
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
        st = prepare (self, "SELECT model FROM adapter_snapshots WHERE id = ?1", error);
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
        st = prepare (self, "INSERT INTO adapter_snapshots (model, parent_id, created_us, data,"
                      " path, sha256, size, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", error);
        ok = st != NULL;
      }
    if (ok)
      {
        bind_text (st, 1, model);
        bind_id (st, 2, parent_id);
        sqlite3_bind_int64 (st, 3, g_get_real_time ());
        if (data != NULL)
          sqlite3_bind_blob64 (st, 4, g_bytes_get_data (data, NULL), g_bytes_get_size (data),
                               SQLITE_TRANSIENT);
        bind_text (st, 5, path);
        bind_text (st, 6, sum);
        sqlite3_bind_int64 (st, 7, size);
        bind_text (st, 8, note);
        ok = step_done (self, st, _("Could not save the adapter snapshot"), error);
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
  s->model = col_strdup (st, 1);
  s->parent_id = sqlite3_column_int64 (st, 2);
  s->created_us = sqlite3_column_int64 (st, 3);
  if (sqlite3_column_type (st, 4) != SQLITE_NULL)
    s->data = g_bytes_new (sqlite3_column_blob (st, 4), (gsize) sqlite3_column_bytes (st, 4));
  s->path = col_strdup (st, 5);
  s->sha256 = col_strdup (st, 6);
  s->size = sqlite3_column_int64 (st, 7);
  s->note = col_strdup (st, 8);
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
    st = prepare (self, "SELECT id, model, parent_id, created_us, NULL, path, sha256, size, note"
                  " FROM adapter_snapshots WHERE ?1 IS NULL OR model = ?1"
                  " ORDER BY created_us DESC, id DESC", error);
    if (st == NULL)
      return NULL;
    bind_text (st, 1, model);
    while ((rc = sqlite3_step (st)) == SQLITE_ROW)
      g_ptr_array_add (out, snapshot_from_row (st));
    if (rc != SQLITE_DONE)
      {
        store_error (self, error, rc, _("Could not read the chat history"));
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

    st = prepare (self, "SELECT id, model, parent_id, created_us, data, path, sha256, size, note"
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
      store_error (self, error, rc, _("Could not read the chat history"));
  }
  return NULL;
}

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
      !text_ok (model->repo, MAX_SHORT_TEXT, "repo", error) ||
      !text_ok (model->file, MAX_SHORT_TEXT, "file", error) ||
      !text_ok (model->path, MAX_SHORT_TEXT, "path", error) ||
      !text_ok (model->sha256, MAX_SHORT_TEXT, "sha256", error) ||
      !text_ok (model->revision, MAX_SHORT_TEXT, "revision", error) ||
      !text_ok (model->url, MAX_SHORT_TEXT, "url", error) ||
      !text_ok (model->etag, MAX_SHORT_TEXT, "etag", error) ||
      (model->metadata_json != NULL && !json_text_ok (model->metadata_json, error)))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                     "a model needs a repo, a file and a known state");
      return 0;
    }
  {
    LOCK ();

    if (!begin_write (self, error))
      return 0;
    st = prepare (self,
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
        bind_text (st, 1, model->repo);
        bind_text (st, 2, model->file);
        bind_text (st, 3, model->path);
        if (model->size >= 0)
          sqlite3_bind_int64 (st, 4, model->size);
        bind_text (st, 5, model->sha256);
        bind_text (st, 6, model->state);
        if (model->bytes_done > 0)
          sqlite3_bind_int64 (st, 7, model->bytes_done);
        sqlite3_bind_int64 (st, 8, g_get_real_time ());
        bind_text (st, 9, model->revision);
        bind_text (st, 10, model->url);
        bind_text (st, 11, model->etag);
        bind_text (st, 12, model->metadata_json);
        rc = sqlite3_step (st);
        if (rc == SQLITE_ROW)
          id = sqlite3_column_int64 (st, 0);
        else
          {
            store_error (self, error, rc, _("Could not save the model list"));
            ok = FALSE;
          }
      }
    g_clear_pointer (&st, sqlite3_finalize);
    if (!finish_write (self, ok, error))
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

  if (!begin_write (self, error))
    return FALSE;
  st = prepare (self, sql, error);
  ok = st != NULL;
  if (ok)
    {
      sqlite3_bind_int64 (st, 1, model_id);
      bind_text (st, 2, state);
      sqlite3_bind_int64 (st, 3, value);
      bind_text (st, 4, text);
      ok = step_done (self, st, _("Could not save the model list"), error);
    }
  if (ok && sqlite3_changes (self->db) == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                   _("No model with id %" G_GINT64_FORMAT), model_id);
      ok = FALSE;
    }
  g_clear_pointer (&st, sqlite3_finalize);
  return finish_write (self, ok, error);
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
      !text_ok (error_text, MAX_SHORT_TEXT, "error", error))
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
  m->repo = col_strdup (st, 1);
  m->file = col_strdup (st, 2);
  m->path = col_strdup (st, 3);
  m->size = sqlite3_column_type (st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64 (st, 4);
  m->sha256 = col_strdup (st, 5);
  m->state = col_strdup (st, 6);
  m->bytes_done = sqlite3_column_int64 (st, 7);
  m->last_used_us = sqlite3_column_int64 (st, 8);
  m->error = col_strdup (st, 9);
  m->revision = col_strdup (st, 10);
  m->url = col_strdup (st, 11);
  m->etag = col_strdup (st, 12);
  m->metadata_json = col_strdup (st, 13);
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

    st = prepare (self, "SELECT " MODEL_COLS " FROM models"
                  " ORDER BY COALESCE(last_used_us, 0) DESC, id", error);
    if (st == NULL)
      return NULL;
    while ((rc = sqlite3_step (st)) == SQLITE_ROW)
      g_ptr_array_add (out, model_from_row (st));
    if (rc != SQLITE_DONE)
      {
        store_error (self, error, rc, _("Could not read the model list"));
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

    st = prepare (self, "SELECT " MODEL_COLS " FROM models WHERE repo = ?1 AND file = ?2",
                  error);
    if (st == NULL)
      return NULL;
    bind_text (st, 1, repo);
    bind_text (st, 2, file);
    rc = sqlite3_step (st);
    if (rc == SQLITE_ROW)
      m = model_from_row (st);
    else if (rc == SQLITE_DONE)
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND, _("No model %s in %s"), file, repo);
    else
      store_error (self, error, rc, _("Could not read the model list"));
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
  if (!text_ok (text, MAX_SHORT_TEXT, "search text", error))
    return NULL;
  query = fts_query (text);
  if (*query == '\0')
    return g_steal_pointer (&out);
  {
    LOCK ();

    st = prepare (self, "SELECT m.session_id, m.id, s.title,"
                  " snippet(messages_fts, 0, '[', ']', '…', 12)"
                  " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
                  " JOIN sessions s ON s.id = m.session_id"
                  " WHERE messages_fts MATCH ?1 ORDER BY messages_fts.rowid DESC LIMIT ?2",
                  error);
    if (st == NULL)
      return NULL;
    bind_text (st, 1, query);
    sqlite3_bind_int64 (st, 2, limit > 0 ? (gint64) limit : -1);
    while ((rc = sqlite3_step (st)) == SQLITE_ROW)
      {
        RuvStoreSearchHit *h = g_new0 (RuvStoreSearchHit, 1);

        h->session_id = sqlite3_column_int64 (st, 0);
        h->message_id = sqlite3_column_int64 (st, 1);
        h->session_title = col_strdup (st, 2);
        h->snippet = col_strdup (st, 3);
        g_ptr_array_add (out, h);
      }
    if (rc != SQLITE_DONE)
      {
        store_error (self, error, rc, _("Could not search the chat history"));
        return NULL;
      }
  }
  return g_steal_pointer (&out);
}

/* ------------------------------------------------------------------------ */
/* Export */

static const char *
rating_name (int r)
{
  return r > 0 ? "up" : r < 0 ? "down" : "cleared";
}

static void
add_member_str (JsonBuilder *b,
                const char  *key,
                const char  *value)
{
  json_builder_set_member_name (b, key);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
add_member_int (JsonBuilder *b,
                const char  *key,
                gint64       value,
                gboolean     present)
{
  json_builder_set_member_name (b, key);
  if (present)
    json_builder_add_int_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
add_member_col_double (JsonBuilder  *b,
                       const char   *key,
                       sqlite3_stmt *st,
                       int           col)
{
  json_builder_set_member_name (b, key);
  if (sqlite3_column_type (st, col) == SQLITE_NULL)
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b, sqlite3_column_double (st, col));
}

static void
add_member_col_int (JsonBuilder  *b,
                    const char   *key,
                    sqlite3_stmt *st,
                    int           col)
{
  add_member_int (b, key, sqlite3_column_int64 (st, col),
                  sqlite3_column_type (st, col) != SQLITE_NULL);
}

/* Stored params_json as an embedded JSON value (it was validated on the way
 * in; anything else is kept as a string). */
static void
add_member_params (JsonBuilder *b,
                   const char  *key,
                   const char  *json)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  json_builder_set_member_name (b, key);
  if (json == NULL)
    json_builder_add_null_value (b);
  else if (json_parser_load_from_data (parser, json, -1, NULL) &&
           JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    json_builder_add_value (b, json_node_copy (json_parser_get_root (parser)));
  else
    json_builder_add_string_value (b, json);
}

/* One session; messages numbered 1.. in id order (parents come first), so
 * an export of an import reads the same. */
static gboolean
export_session_json (RuvStore         *self,
                     RuvStoreSession  *s,
                     JsonBuilder      *b,
                     GError          **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  g_autoptr(GHashTable) local = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  gint64 n = 0;
  int rc;

  st = prepare (self, "SELECT m.id, m.parent_id, m.role, m.content, m.created_us, m.model,"
                " m.params_json, m.n_prompt, m.n_gen, m.ttft_ms, m.tokens_per_s,"
                " m.finish_reason, m.complete, r.rating, r.rated_us, r.outcome, r.latency_us,"
                " r.loss_before, r.loss_after, a.sha256 FROM messages m"
                " LEFT JOIN ratings r ON r.message_id = m.id"
                " LEFT JOIN adapter_snapshots a ON a.id = r.snapshot_id"
                " WHERE m.session_id = ?1 ORDER BY m.id", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, s->id);

  json_builder_begin_object (b);
  add_member_str (b, "title", s->title);
  json_builder_set_member_name (b, "title_auto");
  json_builder_add_boolean_value (b, s->title_auto);
  add_member_int (b, "created_us", s->created_us, TRUE);
  add_member_int (b, "updated_us", s->updated_us, TRUE);
  json_builder_set_member_name (b, "pinned");
  json_builder_add_boolean_value (b, s->pinned);
  json_builder_set_member_name (b, "archived");
  json_builder_add_boolean_value (b, s->archived);
  add_member_str (b, "model", s->model);
  add_member_str (b, "system_prompt", s->system_prompt);
  add_member_params (b, "params", s->params_json);
  json_builder_set_member_name (b, "messages");
  json_builder_begin_array (b);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      gint64 id = sqlite3_column_int64 (st, 0);
      gint64 parent = sqlite3_column_int64 (st, 1);
      gpointer parent_local = parent > 0 ? g_hash_table_lookup (local, &parent) : NULL;
      gint64 *key = g_new (gint64, 1);

      *key = id;
      n++;
      g_hash_table_insert (local, key, GSIZE_TO_POINTER ((gsize) n));
      json_builder_begin_object (b);
      add_member_int (b, "id", n, TRUE);
      add_member_int (b, "parent", GPOINTER_TO_SIZE (parent_local), parent_local != NULL);
      add_member_str (b, "role", (const char *) sqlite3_column_text (st, 2));
      add_member_str (b, "content", (const char *) sqlite3_column_text (st, 3));
      add_member_int (b, "created_us", sqlite3_column_int64 (st, 4), TRUE);
      add_member_str (b, "model", (const char *) sqlite3_column_text (st, 5));
      add_member_params (b, "params", (const char *) sqlite3_column_text (st, 6));
      add_member_col_int (b, "n_prompt", st, 7);
      add_member_col_int (b, "n_gen", st, 8);
      add_member_col_double (b, "ttft_ms", st, 9);
      add_member_col_double (b, "tokens_per_s", st, 10);
      add_member_str (b, "finish_reason", (const char *) sqlite3_column_text (st, 11));
      json_builder_set_member_name (b, "complete");
      json_builder_add_boolean_value (b, sqlite3_column_int (st, 12) != 0);
      json_builder_set_member_name (b, "rating");
      if (sqlite3_column_type (st, 13) == SQLITE_NULL)
        json_builder_add_null_value (b);
      else
        {
          json_builder_begin_object (b);
          add_member_str (b, "value", rating_name (sqlite3_column_int (st, 13)));
          add_member_int (b, "rated_us", sqlite3_column_int64 (st, 14), TRUE);
          add_member_str (b, "outcome", (const char *) sqlite3_column_text (st, 15));
          add_member_col_int (b, "latency_us", st, 16);
          add_member_col_double (b, "loss_before", st, 17);
          add_member_col_double (b, "loss_after", st, 18);
          add_member_str (b, "snapshot_sha256", (const char *) sqlite3_column_text (st, 19));
          json_builder_end_object (b);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  /* The shown branch, as its leaf's local id. */
  {
    gpointer leaf = s->leaf_id > 0 ? g_hash_table_lookup (local, &s->leaf_id) : NULL;

    add_member_int (b, "leaf", GPOINTER_TO_SIZE (leaf), leaf != NULL);
  }
  json_builder_end_object (b);
  if (rc != SQLITE_DONE)
    {
      store_error (self, error, rc, _("Could not read the chat history"));
      return FALSE;
    }
  return TRUE;
}

static void
export_session_md (RuvStoreSession *s,
                   GPtrArray       *path,
                   GString         *out)
{
  g_autoptr(GDateTime) created = g_date_time_new_from_unix_utc (s->created_us / G_USEC_PER_SEC);
  g_autofree char *when = created != NULL ? g_date_time_format_iso8601 (created) : g_strdup ("?");
  guint i;

  g_string_append_printf (out, "# %s\n\n", *s->title != '\0' ? s->title : _("Untitled chat"));
  g_string_append_printf (out, "_%s: %s", _("Created"), when);
  if (s->model != NULL)
    g_string_append_printf (out, " · %s: %s", _("Model"), s->model);
  g_string_append (out, "_\n\n");
  if (s->system_prompt != NULL && *s->system_prompt != '\0')
    g_string_append_printf (out, "> **%s:** %s\n\n", _("System"), s->system_prompt);
  for (i = 0; i < path->len; i++)
    {
      RuvStoreMessage *m = g_ptr_array_index (path, i);
      const char *who = g_str_equal (m->role, "user") ? _("User")
                        : g_str_equal (m->role, "assistant") ? _("Assistant")
                        : g_str_equal (m->role, "system") ? _("System") : _("Tool");

      g_string_append_printf (out, "## %s", who);
      if (m->rating != RUV_RATING_CLEARED)
        g_string_append (out, m->rating > 0 ? " 👍" : " 👎");
      g_string_append (out, "\n\n");
      g_string_append (out, m->content);
      g_string_append (out, "\n\n");
      if (m->n_gen >= 0 || m->tokens_per_s >= 0)
        {
          g_string_append (out, "_");
          if (m->model != NULL)
            g_string_append_printf (out, "%s · ", m->model);
          if (m->n_gen >= 0)
            g_string_append_printf (out, "%d tokens", m->n_gen);
          if (m->tokens_per_s >= 0)
            g_string_append_printf (out, " · %.1f tokens/s", m->tokens_per_s);
          if (m->finish_reason != NULL)
            g_string_append_printf (out, " · %s", m->finish_reason);
          g_string_append (out, "_\n\n");
        }
    }
}

char *
ruv_store_export (RuvStore        *self,
                  gint64           session_id,
                  RuvStoreFormat   format,
                  GError         **error)
{
  g_autoptr(GPtrArray) sessions = NULL;
  guint i;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    /* One read transaction: a consistent snapshot of everything. */
    if (!db_exec (self->db, self->path, "BEGIN", _("Could not read the chat history"), error))
      return NULL;
    if (session_id > 0)
      {
        RuvStoreSession *s = get_session_locked (self, session_id, error);

        if (s != NULL)
          {
            sessions = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_session_free);
            g_ptr_array_add (sessions, s);
          }
      }
    else
      sessions = list_sessions_locked (self, TRUE, TRUE, error);
    if (sessions == NULL)
      {
        rollback (self);
        return NULL;
      }

    if (format == RUV_STORE_FORMAT_MARKDOWN)
      {
        g_autoptr(GString) out = g_string_new (NULL);

        for (i = 0; i < sessions->len; i++)
          {
            RuvStoreSession *s = g_ptr_array_index (sessions, i);
            g_autoptr(GPtrArray) path = load_path_locked (self, s->leaf_id, error);

            if (path == NULL)
              {
                rollback (self);
                return NULL;
              }
            if (i > 0)
              g_string_append (out, "\n---\n\n");
            export_session_md (s, path, out);
          }
        rollback (self);
        return g_string_free (g_steal_pointer (&out), FALSE);
      }
    else
      {
        g_autoptr(JsonBuilder) b = json_builder_new ();
        g_autoptr(JsonGenerator) gen = json_generator_new ();
        g_autoptr(JsonNode) root = NULL;

        json_builder_begin_object (b);
        add_member_str (b, "format", "ruvllm-chats");
        add_member_int (b, "version", 1, TRUE);
        json_builder_set_member_name (b, "sessions");
        json_builder_begin_array (b);
        for (i = 0; i < sessions->len; i++)
          if (!export_session_json (self, g_ptr_array_index (sessions, i), b, error))
            {
              rollback (self);
              return NULL;
            }
        json_builder_end_array (b);
        json_builder_end_object (b);
        rollback (self);
        root = json_builder_get_root (b);
        json_generator_set_root (gen, root);
        json_generator_set_pretty (gen, TRUE);
        return json_generator_to_data (gen, NULL);
      }
  }
}

/* ------------------------------------------------------------------------ */
/* Import: distrust everything. */

/* Nesting depth of [ and { outside strings; json-glib's parser recurses,
 * so a hostile file of a million '[' must never reach it. */
static gboolean
json_depth_ok (const char *text,
               gsize       len,
               guint       max_depth)
{
  guint depth = 0;
  gboolean in_string = FALSE;
  gsize i;

  for (i = 0; i < len; i++)
    {
      char c = text[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if (c == '[' || c == '{')
        {
          if (++depth > max_depth)
            return FALSE;
        }
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return TRUE;
}

static gboolean
import_fail (GError    **error,
             const char *where,
             const char *fmt,
             ...) G_GNUC_PRINTF (3, 4);

static gboolean
import_fail (GError    **error,
             const char *where,
             const char *fmt,
             ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION, _("Cannot import: %s: %s"),
               where, msg);
  return FALSE;
}

/* Member `name`: a string (or null when nullable), at most max bytes. */
static gboolean
get_str (JsonObject  *o,
         const char  *name,
         gboolean     nullable,
         gsize        max,
         const char  *where,
         const char **out,
         GError     **error)
{
  JsonNode *n = json_object_get_member (o, name);

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    {
      if (nullable)
        return TRUE;
      return import_fail (error, where, "\"%s\" is missing", name);
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return import_fail (error, where, "\"%s\" must be a string", name);
  *out = json_node_get_string (n);
  if (strlen (*out) > max || !g_utf8_validate (*out, -1, NULL))
    return import_fail (error, where, "\"%s\" is too long or not valid UTF-8", name);
  return TRUE;
}

static gboolean
get_int (JsonObject  *o,
         const char  *name,
         gboolean     nullable,
         gint64       lo,
         gint64       hi,
         const char  *where,
         gint64      *out,
         gboolean    *present,
         GError     **error)
{
  JsonNode *n = json_object_get_member (o, name);

  *out = 0;
  if (present != NULL)
    *present = FALSE;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    {
      if (nullable)
        return TRUE;
      return import_fail (error, where, "\"%s\" is missing", name);
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return import_fail (error, where, "\"%s\" must be an integer", name);
  *out = json_node_get_int (n);
  if (*out < lo || *out > hi)
    return import_fail (error, where, "\"%s\" is out of range", name);
  if (present != NULL)
    *present = TRUE;
  return TRUE;
}

static gboolean
get_double (JsonObject  *o,
            const char  *name,
            const char  *where,
            double      *out,
            gboolean    *present,
            GError     **error)
{
  JsonNode *n = json_object_get_member (o, name);
  GType t;

  *out = NAN;
  *present = FALSE;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  if (t != G_TYPE_DOUBLE && t != G_TYPE_INT64)
    return import_fail (error, where, "\"%s\" must be a number", name);
  *out = json_node_get_double (n);
  if (!isfinite (*out) || fabs (*out) > 1e15)
    return import_fail (error, where, "\"%s\" is out of range", name);
  *present = TRUE;
  return TRUE;
}

static gboolean
get_bool (JsonObject  *o,
          const char  *name,
          const char  *where,
          gboolean    *out,
          GError     **error)
{
  JsonNode *n = json_object_get_member (o, name);

  *out = FALSE;
  if (n == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return import_fail (error, where, "\"%s\" must be true or false", name);
  *out = json_node_get_boolean (n);
  return TRUE;
}

/* "params": an object (stored as its JSON text) or null. */
static gboolean
get_params (JsonObject  *o,
            const char  *where,
            char       **out,
            GError     **error)
{
  JsonNode *n = json_object_get_member (o, "params");

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return import_fail (error, where, "\"params\" must be an object");
  *out = json_to_string (n, FALSE);
  if (strlen (*out) > 1024 * 1024)
    return import_fail (error, where, "\"params\" is too large");
  return TRUE;
}

static gboolean
bind_opt_double (sqlite3_stmt *st,
                 int           i,
                 double        v,
                 gboolean      present)
{
  if (present)
    sqlite3_bind_double (st, i, v);
  else
    sqlite3_bind_null (st, i);
  return TRUE;
}

static gboolean
import_message (RuvStore    *self,
                gint64       session_id,
                JsonNode    *node,
                GHashTable  *ids,
                guint        index,
                const char  *swhere,
                GError     **error)
{
  g_autofree char *where = g_strdup_printf ("%s, message %u", swhere, index + 1);
  g_autofree char *params = NULL;
  g_autoptr(sqlite3_stmt) st = NULL;
  JsonObject *o;
  JsonNode *rn;
  const char *role, *content, *model, *finish;
  gint64 local, parent, created, n_prompt, n_gen, new_id, new_parent = 0;
  gboolean has_parent, has_np, has_ng, has_ttft, has_tps, complete;
  double ttft, tps;
  gint64 *key;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return import_fail (error, where, "a message must be an object");
  o = json_node_get_object (node);
  if (!get_int (o, "id", FALSE, 1, G_MAXINT64, where, &local, NULL, error) ||
      !get_int (o, "parent", TRUE, 1, G_MAXINT64, where, &parent, &has_parent, error) ||
      !get_str (o, "role", FALSE, 16, where, &role, error) ||
      !get_str (o, "content", FALSE, MAX_CONTENT_BYTES, where, &content, error) ||
      !get_int (o, "created_us", FALSE, 0, G_MAXINT64, where, &created, NULL, error) ||
      !get_str (o, "model", TRUE, MAX_SHORT_TEXT, where, &model, error) ||
      !get_params (o, where, &params, error) ||
      !get_int (o, "n_prompt", TRUE, 0, G_MAXINT32, where, &n_prompt, &has_np, error) ||
      !get_int (o, "n_gen", TRUE, 0, G_MAXINT32, where, &n_gen, &has_ng, error) ||
      !get_double (o, "ttft_ms", where, &ttft, &has_ttft, error) ||
      !get_double (o, "tokens_per_s", where, &tps, &has_tps, error) ||
      !get_str (o, "finish_reason", TRUE, MAX_SHORT_TEXT, where, &finish, error) ||
      !get_bool (o, "complete", where, &complete, error))
    return FALSE;
  if (!role_ok (role, NULL))
    return import_fail (error, where, "unknown role \"%s\"", role);
  if (g_hash_table_contains (ids, &local))
    return import_fail (error, where, "id %" G_GINT64_FORMAT " is used twice", local);
  if (has_parent)
    {
      gint64 *mapped = g_hash_table_lookup (ids, &parent);

      /* Parents must come first: this rules out cycles and dangling links. */
      if (mapped == NULL)
        return import_fail (error, where, "parent %" G_GINT64_FORMAT " is not an earlier "
                            "message of this chat (a cycle or a link to nowhere)", parent);
      new_parent = *mapped;
    }

  st = prepare (self, "INSERT INTO messages (session_id, parent_id, role, content, created_us,"
                " model, params_json, n_prompt, n_gen, ttft_ms, tokens_per_s, finish_reason,"
                " complete) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, session_id);
  bind_id (st, 2, new_parent);
  bind_text (st, 3, role);
  bind_text (st, 4, content);
  sqlite3_bind_int64 (st, 5, created);
  bind_text (st, 6, model);
  bind_text (st, 7, params);
  if (has_np)
    sqlite3_bind_int64 (st, 8, n_prompt);
  if (has_ng)
    sqlite3_bind_int64 (st, 9, n_gen);
  bind_opt_double (st, 10, ttft, has_ttft);
  bind_opt_double (st, 11, tps, has_tps);
  bind_text (st, 12, finish);
  sqlite3_bind_int (st, 13, complete ? 1 : 0);
  if (!step_done (self, st, _("Could not import"), error))
    return FALSE;
  new_id = sqlite3_last_insert_rowid (self->db);
  key = g_new (gint64, 1);
  *key = local;
  g_hash_table_insert (ids, key, g_memdup2 (&new_id, sizeof new_id));

  rn = json_object_get_member (o, "rating");
  if (rn != NULL && !JSON_NODE_HOLDS_NULL (rn))
    {
      JsonObject *r;
      const char *value, *outcome, *snap;
      gint64 rated, latency;
      gboolean has_lat, has_lb, has_la;
      double lb, la;
      int rv;

      if (!JSON_NODE_HOLDS_OBJECT (rn))
        return import_fail (error, where, "\"rating\" must be an object or null");
      r = json_node_get_object (rn);
      if (!get_str (r, "value", FALSE, 16, where, &value, error) ||
          !get_int (r, "rated_us", FALSE, 0, G_MAXINT64, where, &rated, NULL, error) ||
          !get_str (r, "outcome", TRUE, 16, where, &outcome, error) ||
          !get_int (r, "latency_us", TRUE, 0, G_MAXINT64, where, &latency, &has_lat, error) ||
          !get_double (r, "loss_before", where, &lb, &has_lb, error) ||
          !get_double (r, "loss_after", where, &la, &has_la, error) ||
          !get_str (r, "snapshot_sha256", TRUE, 64, where, &snap, error))
        return FALSE;
      if (g_str_equal (value, "up"))
        rv = 1;
      else if (g_str_equal (value, "down"))
        rv = -1;
      else if (g_str_equal (value, "cleared"))
        rv = 0;
      else
        return import_fail (error, where, "rating \"%s\" is not up, down or cleared", value);
      if (outcome != NULL && !g_str_equal (outcome, "applied") && !g_str_equal (outcome, "skipped"))
        return import_fail (error, where, "outcome \"%s\" is not applied or skipped", outcome);
      if (!complete)
        return import_fail (error, where, "an incomplete message cannot be rated");
      g_clear_pointer (&st, sqlite3_finalize);
      st = prepare (self, "INSERT INTO ratings (message_id, rating, rated_us, outcome,"
                    " latency_us, loss_before, loss_after, snapshot_id) VALUES (?1, ?2, ?3, ?4,"
                    " ?5, ?6, ?7, (SELECT min(id) FROM adapter_snapshots WHERE sha256 = ?8))",
                    error);
      if (st == NULL)
        return FALSE;
      sqlite3_bind_int64 (st, 1, new_id);
      sqlite3_bind_int (st, 2, rv);
      sqlite3_bind_int64 (st, 3, rated);
      bind_text (st, 4, outcome);
      if (has_lat)
        sqlite3_bind_int64 (st, 5, latency);
      bind_opt_double (st, 6, lb, has_lb);
      bind_opt_double (st, 7, la, has_la);
      bind_text (st, 8, snap);
      if (!step_done (self, st, _("Could not import"), error))
        return FALSE;
    }
  return TRUE;
}

static gint64
import_session (RuvStore    *self,
                JsonNode    *node,
                guint        index,
                guint       *n_messages,
                GError     **error)
{
  g_autofree char *where = g_strdup_printf ("chat %u", index + 1);
  g_autofree char *params = NULL;
  g_autoptr(GHashTable) ids = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  JsonObject *o;
  JsonNode *mn;
  JsonArray *msgs;
  const char *title, *model, *system;
  gint64 created, updated, leaf, id;
  gboolean title_auto, pinned, archived, has_leaf;
  guint i, n;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return import_fail (error, where, "a chat must be an object");
  o = json_node_get_object (node);
  if (!get_str (o, "title", FALSE, MAX_SHORT_TEXT, where, &title, error) ||
      !get_bool (o, "title_auto", where, &title_auto, error) ||
      !get_int (o, "created_us", FALSE, 0, G_MAXINT64, where, &created, NULL, error) ||
      !get_int (o, "updated_us", FALSE, 0, G_MAXINT64, where, &updated, NULL, error) ||
      !get_bool (o, "pinned", where, &pinned, error) ||
      !get_bool (o, "archived", where, &archived, error) ||
      !get_str (o, "model", TRUE, MAX_SHORT_TEXT, where, &model, error) ||
      !get_str (o, "system_prompt", TRUE, MAX_CONTENT_BYTES, where, &system, error) ||
      !get_params (o, where, &params, error) ||
      !get_int (o, "leaf", TRUE, 1, G_MAXINT64, where, &leaf, &has_leaf, error))
    return 0;
  mn = json_object_get_member (o, "messages");
  if (mn == NULL || !JSON_NODE_HOLDS_ARRAY (mn))
    return import_fail (error, where, "\"messages\" must be an array");
  msgs = json_node_get_array (mn);
  n = json_array_get_length (msgs);
  if (n > MAX_IMPORT_MESSAGES - *n_messages)
    return import_fail (error, where, "too many messages");
  *n_messages += n;

  id = insert_session (self, title, title_auto, created, updated, pinned, archived, model,
                       system, params, error);
  if (id <= 0)
    return 0;
  for (i = 0; i < n; i++)
    if (!import_message (self, id, json_array_get_element (msgs, i), ids, i, where, error))
      return 0;
  if (has_leaf)
    {
      gint64 *mapped = g_hash_table_lookup (ids, &leaf);
      g_autoptr(sqlite3_stmt) st = NULL;

      if (mapped == NULL)
        return import_fail (error, where, "\"leaf\" %" G_GINT64_FORMAT " is not a message of "
                            "this chat", leaf);
      st = prepare (self, "UPDATE sessions SET leaf_id = ?2 WHERE id = ?1", error);
      if (st == NULL)
        return 0;
      sqlite3_bind_int64 (st, 1, id);
      sqlite3_bind_int64 (st, 2, *mapped);
      if (!step_done (self, st, _("Could not import"), error))
        return 0;
    }
  return id;
}

gint
ruv_store_import_json (RuvStore    *self,
                       const char  *json,
                       gssize       length,
                       GArray      *new_session_ids,
                       GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) parse_error = NULL;
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  JsonNode *root, *sn;
  JsonObject *o;
  JsonArray *sessions;
  const char *format;
  gint64 version;
  gsize len;
  guint i, n, n_messages = 0;
  gboolean ok = TRUE;

  g_return_val_if_fail (RUV_IS_STORE (self), -1);
  g_return_val_if_fail (json != NULL, -1);
  len = length < 0 ? strlen (json) : (gsize) length;
  if (len > MAX_IMPORT_BYTES)
    return import_fail (error, "file", "larger than %" G_GSIZE_FORMAT " MiB",
                        MAX_IMPORT_BYTES / (1024 * 1024)) ? 0 : -1;
  if (memchr (json, '\0', len) != NULL || !g_utf8_validate (json, (gssize) len, NULL))
    return import_fail (error, "file", "not UTF-8 text") ? 0 : -1;
  if (!json_depth_ok (json, len, MAX_IMPORT_DEPTH))
    return import_fail (error, "file", "nested deeper than %d levels", MAX_IMPORT_DEPTH) ? 0 : -1;
  if (!json_parser_load_from_data (parser, json, (gssize) len, &parse_error))
    return import_fail (error, "file", "not valid JSON (%s)", parse_error->message) ? 0 : -1;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return import_fail (error, "file", "the top level must be an object") ? 0 : -1;
  o = json_node_get_object (root);
  if (!get_str (o, "format", FALSE, 64, "file", &format, error) ||
      !get_int (o, "version", FALSE, 1, G_MAXINT32, "file", &version, NULL, error))
    return -1;
  if (!g_str_equal (format, "ruvllm-chats"))
    return import_fail (error, "file", "not a RuvLLM chat export (format \"%s\")", format) ? 0
                                                                                          : -1;
  if (version != 1)
    return import_fail (error, "file", "export version %" G_GINT64_FORMAT " is not supported",
                        version) ? 0 : -1;
  sn = json_object_get_member (o, "sessions");
  if (sn == NULL || !JSON_NODE_HOLDS_ARRAY (sn))
    return import_fail (error, "file", "\"sessions\" must be an array") ? 0 : -1;
  sessions = json_node_get_array (sn);
  n = json_array_get_length (sessions);
  if (n > 1000000)
    return import_fail (error, "file", "too many chats") ? 0 : -1;
  {
    LOCK ();

    if (!begin_write (self, error))
      return -1;
    for (i = 0; ok && i < n; i++)
      {
        gint64 id = import_session (self, json_array_get_element (sessions, i), i, &n_messages,
                                    error);

        ok = id > 0;
        if (ok)
          g_array_append_val (ids, id);
      }
    if (!finish_write (self, ok, error))
      return -1;
  }
  if (new_session_ids != NULL)
    g_array_append_vals (new_session_ids, ids->data, ids->len);
  return (gint) n;
}

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
