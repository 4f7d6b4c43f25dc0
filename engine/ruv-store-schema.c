/* ruv-store-schema.c — the store's tables, the migrations by user_version, and
 * the check that the triggers in a file are ours.
 * SPDX-License-Identifier: MIT
 */
#include <glib/gi18n-lib.h>
#include <sqlite3.h>

#include "ruv-store-private.h"

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

/* Version 4: every adaptation a rating caused, kept as history (the ratings
 * row holds only the current rating's outcome; re-rating replaces it). rating
 * is the rating the adaptation acted on. */
static const char migration_4[] =
  "CREATE TABLE adaptations ("
  "  id INTEGER PRIMARY KEY,"
  "  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
  "  rating INTEGER NOT NULL CHECK (rating IN (-1, 0, 1)),"
  "  created_us INTEGER NOT NULL,"
  "  outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'skipped')),"
  "  latency_us INTEGER,"
  "  loss_before REAL,"
  "  loss_after REAL,"
  "  snapshot_id INTEGER REFERENCES adapter_snapshots(id) ON DELETE SET NULL"
  ");"
  "CREATE INDEX adaptations_message ON adaptations(message_id, created_us);";

static const char *const migrations[] = { migration_1, migration_2, migration_3,
                                          migration_4 };
G_STATIC_ASSERT (G_N_ELEMENTS (migrations) == RUV_STORE_SCHEMA_VERSION);

/* ------------------------------------------------------------------------ */
/* Migration, verification */

/* Runs the migrations from `from` to the newest, each in one transaction. */
gboolean
_ruv_store_migrate (sqlite3     *db,
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

      if (!_ruv_store_db_exec (db, path, "BEGIN IMMEDIATE", what, error))
        return FALSE;
      /* Someone else may have migrated meanwhile. */
      if (_ruv_store_query_int (db, "PRAGMA user_version", NULL) != v)
        {
          sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
          continue;
        }
      ok = _ruv_store_db_exec (db, path, migrations[v], what, error);
      if (ok && v + 1 == 2)
        for (t = 0; ok && t < G_N_ELEMENTS (store_triggers); t++)
          ok = _ruv_store_db_exec (db, path, store_triggers[t].sql, what, error);
      ok = ok && _ruv_store_db_exec (db, path, bump, what, error);
      ok = ok && _ruv_store_db_exec (db, path, "COMMIT", what, error);
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
gboolean
_ruv_store_schema_is_ours (sqlite3 *db)
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
