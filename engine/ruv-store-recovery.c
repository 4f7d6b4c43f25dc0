/* ruv-store-recovery.c — quick_check, moving a damaged file aside, salvaging
 * it table by table on top of the newest good backup, and the backups.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "ruv-error.h"
#include "ruv-store-private.h"

#define BACKUPS_KEPT         3

/* ------------------------------------------------------------------------ */
/* Checking, recovery, backups */

/* 0 and "ok" when quick_check passes; the SQLite code, or SQLITE_CORRUPT with
 * the first problem in *problem, otherwise. */
int
_ruv_store_quick_check (sqlite3  *db,
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
    "DELETE FROM adaptations WHERE message_id NOT IN (SELECT id FROM messages);"
    "UPDATE adaptations SET snapshot_id = NULL"
    "  WHERE snapshot_id NOT IN (SELECT id FROM adapter_snapshots);"
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

  return _ruv_store_db_exec (db, path, sql, _("Could not repair the recovered chat history"),
                             error);
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
gboolean
_ruv_store_recover (RuvStore    *self,
                    const char  *problem,
                    GError     **error)
{
  g_autofree char *ts = timestamp_now ();
  g_autofree char *aside = g_strconcat (self->path, ".corrupt-", ts, NULL);
  g_autoptr(GPtrArray) backups = list_backups_in (self->backup_dir);
  g_autofree char *restored = NULL;
  static const char *const tables[] = { "sessions", "messages", "ratings",
                                        "adapter_snapshots", "models", "adaptations" };
  gint64 counts[G_N_ELEMENTS (tables)] = { 0 };
  sqlite3 *src;
  guint i;
  gboolean ok;

  g_clear_pointer (&self->db, sqlite3_close_v2);
  if (!move_aside (self->path, aside, error))
    return FALSE;

  self->db = _ruv_store_open_connection (self->path, FALSE, error);
  if (self->db == NULL)
    return FALSE;

  /* The newest backup that is itself sound. */
  for (i = 0; i < backups->len && restored == NULL; i++)
    {
      const char *b = g_ptr_array_index (backups, i);
      sqlite3 *bdb = _ruv_store_open_connection (b, TRUE, NULL);

      if (bdb != NULL && _ruv_store_quick_check (bdb, NULL) == SQLITE_OK &&
          _ruv_store_query_int (bdb, "PRAGMA user_version", NULL) <= RUV_STORE_SCHEMA_VERSION &&
          copy_database (bdb, self->db))
        restored = g_path_get_basename (b);
      sqlite3_close_v2 (bdb);
    }
  if (!_ruv_store_db_exec (self->db, self->path, "PRAGMA journal_mode=WAL",
                           _("Could not create a new chat history"), error) ||
      !_ruv_store_migrate (self->db, self->path,
                           _ruv_store_query_int (self->db, "PRAGMA user_version", NULL), error))
    return FALSE;

  /* What can still be read from the damaged file goes on top. */
  src = _ruv_store_open_connection (aside, TRUE, NULL);
  /* The FTS triggers need a trusted schema: it is ours, just created. */
  ok = _ruv_store_db_exec (self->db, self->path,
                           "PRAGMA foreign_keys=OFF; PRAGMA trusted_schema=ON;"
                           " BEGIN IMMEDIATE", _("Could not recover the chat history"), error);
  if (ok && src != NULL)
    for (i = 0; i < G_N_ELEMENTS (tables); i++)
      counts[i] = salvage_table (src, self->db, tables[i]);
  sqlite3_close_v2 (src);
  if (ok)
    {
      ok = repair_links (self->db, self->path, error) &&
           _ruv_store_db_exec (self->db, self->path, "COMMIT",
                               _("Could not recover the chat history"), error);
      if (!ok)
        sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
      sqlite3_exec (self->db, "PRAGMA trusted_schema=OFF; PRAGMA foreign_keys=ON", NULL, NULL,
                    NULL);
    }
  if (!ok)
    return FALSE;

  {
    gint64 n_sessions = _ruv_store_query_int (self->db, "SELECT count(*) FROM sessions", NULL);
    gint64 n_messages = _ruv_store_query_int (self->db, "SELECT count(*) FROM messages", NULL);
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
  st = _ruv_store_prepare (self, "PRAGMA integrity_check(5)", error);
  if (st == NULL)
    return FALSE;
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW && g_strcmp0 ((const char *) sqlite3_column_text (st, 0), "ok") == 0)
    ok = TRUE;
  else if (rc == SQLITE_ROW)
    g_set_error (error, RUV_ERROR, RUV_ERROR_STORAGE, _("The chat history is damaged: %s [%s]"),
                 sqlite3_column_text (st, 0), self->path);
  else
    _ruv_store_error (self, error, rc, _("Could not check the chat history"));
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
  dst = _ruv_store_open_connection (tmp, FALSE, error);
  if (dst == NULL)
    return NULL;
  locker = g_mutex_locker_new (&self->lock);
  ok = copy_database (self->db, dst);
  if (!ok)
    _ruv_store_set_sqlite_error (dst, tmp, error, sqlite3_errcode (dst),
                                 _("Could not write a backup"));
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
