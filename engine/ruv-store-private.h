/* ruv-store-private.h — what the ruv-store*.c files share: the object's
 * fields, the limits on stored text, and the SQL helpers.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <sqlite3.h>

#include "ruv-store.h"

G_BEGIN_DECLS

#define MAX_CONTENT_BYTES    (64 * 1024 * 1024)   /* one message; D14 */
#define MAX_SHORT_TEXT       4096                  /* titles, models, roles ... */

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

#define LOCK() g_autoptr(GMutexLocker) locker G_GNUC_UNUSED = g_mutex_locker_new (&self->lock)

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

/* ruv-store.c: errors, connections, and the small SQL helpers (the caller
 * holds the lock). */
char         *_ruv_store_col_strdup       (sqlite3_stmt *st,
                                           int           i);
void          _ruv_store_set_sqlite_error (sqlite3     *db,
                                           const char  *path,
                                           GError     **error,
                                           int          rc,
                                           const char  *what);
void          _ruv_store_error            (RuvStore    *self,
                                           GError     **error,
                                           int          rc,
                                           const char  *what);
gboolean      _ruv_store_db_exec          (sqlite3     *db,
                                           const char  *path,
                                           const char  *sql,
                                           const char  *what,
                                           GError     **error);
sqlite3_stmt *_ruv_store_prepare          (RuvStore    *self,
                                           const char  *sql,
                                           GError     **error);
void          _ruv_store_bind_text        (sqlite3_stmt *st,
                                           int           i,
                                           const char   *text);
void          _ruv_store_bind_id          (sqlite3_stmt *st,
                                           int           i,
                                           gint64        id);
gboolean      _ruv_store_step_done        (RuvStore     *self,
                                           sqlite3_stmt *st,
                                           const char   *what,
                                           GError      **error);
gboolean      _ruv_store_begin_write      (RuvStore  *self,
                                           GError   **error);
void          _ruv_store_rollback         (RuvStore *self);
gboolean      _ruv_store_finish_write     (RuvStore  *self,
                                           gboolean   ok,
                                           GError   **error);
gboolean      _ruv_store_text_ok          (const char  *text,
                                           gsize        max,
                                           const char  *what,
                                           GError     **error);
gboolean      _ruv_store_role_ok          (const char  *role,
                                           GError     **error);
gboolean      _ruv_store_json_text_ok     (const char  *json,
                                           GError     **error);
sqlite3      *_ruv_store_open_connection  (const char  *path,
                                           gboolean     read_only,
                                           GError     **error);
gint64        _ruv_store_query_int        (sqlite3    *db,
                                           const char *sql,
                                           int        *rc_out);

/* ruv-store-schema.c */
gboolean      _ruv_store_migrate          (sqlite3     *db,
                                           const char  *path,
                                           gint64       from,
                                           GError     **error);
gboolean      _ruv_store_schema_is_ours   (sqlite3 *db);

/* ruv-store-recovery.c */
int           _ruv_store_quick_check      (sqlite3  *db,
                                           char    **problem);
gboolean      _ruv_store_recover          (RuvStore    *self,
                                           const char  *problem,
                                           GError     **error);

/* ruv-store-sessions.c (lock held) */
gboolean      _ruv_store_session_exists   (RuvStore  *self,
                                           gint64     session_id,
                                           GError   **error);
gint64        _ruv_store_insert_session   (RuvStore   *self,
                                           const char *title,
                                           gboolean    title_auto,
                                           gint64      created_us,
                                           gint64      updated_us,
                                           gboolean    pinned,
                                           gboolean    archived,
                                           const char *model,
                                           const char *system_prompt,
                                           const char *params_json,
                                           GError    **error);
RuvStoreSession *_ruv_store_get_session_locked   (RuvStore  *self,
                                                  gint64     session_id,
                                                  GError   **error);
GPtrArray       *_ruv_store_list_sessions_locked (RuvStore  *self,
                                                  gboolean   include_archived,
                                                  gboolean   by_id,
                                                  GError   **error);

/* ruv-store-messages.c (lock held) */
RuvStoreMessage *_ruv_store_get_message_locked   (RuvStore  *self,
                                                  gint64     message_id,
                                                  GError   **error);
GPtrArray       *_ruv_store_load_path_locked     (RuvStore  *self,
                                                  gint64     leaf_id,
                                                  GError   **error);

G_END_DECLS
