/* ruv-store.h — chats, message trees, ratings, adapter snapshots and the model
 * registry in one SQLite database that never loses a committed word.
 * SPDX-License-Identifier: MIT
 *
 * One RuvStore is one SQLite connection (guarded by a mutex, so a worker thread
 * and the UI thread may share it). The database lives at
 * <g_get_user_data_dir()>/ruvllm/ruvllm.db; daily backups in .../ruvllm/backups.
 *
 * Every error is RUV_ERROR_STORAGE (disk full, read-only, locked, corrupt, I/O:
 * the cause and the path are in the message), RUV_ERROR_NOT_FOUND (no such
 * session/message), or RUV_ERROR_INVALID_OPERATION (a request that makes no
 * sense, e.g. rating a message still being streamed, malformed import JSON).
 * A failed call changes nothing: every write is one BEGIN IMMEDIATE transaction.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The schema version this code writes (PRAGMA user_version). */
#define RUV_STORE_SCHEMA_VERSION 4

typedef enum
{
  RUV_RATING_DOWN = -1,
  RUV_RATING_CLEARED = 0,
  RUV_RATING_UP = 1,
} RuvRating;

typedef enum
{
  RUV_ADAPTATION_NONE = 0,      /* not recorded yet */
  RUV_ADAPTATION_APPLIED,
  RUV_ADAPTATION_SKIPPED,
} RuvAdaptationOutcome;

/* Plain records handed out by the store; free with the matching _free. */
typedef struct
{
  gint64    id;
  char     *title;
  gboolean  title_auto;       /* TRUE until the user renames it */
  gint64    created_us;       /* g_get_real_time () */
  gint64    updated_us;
  gboolean  pinned;
  gboolean  archived;
  char     *model;            /* nullable */
  char     *system_prompt;    /* nullable */
  char     *params_json;      /* nullable: generation parameters as a JSON object */
  gint64    leaf_id;          /* the shown branch ends here; 0 if the chat is empty */
} RuvStoreSession;

typedef struct
{
  gint64    id;
  gint64    session_id;
  gint64    parent_id;        /* 0 for a root */
  char     *role;             /* "system", "user", "assistant", "tool" */
  char     *content;
  gint64    created_us;
  char     *model;            /* nullable */
  char     *params_json;      /* nullable */
  gint      n_prompt;         /* -1 when unknown */
  gint      n_gen;            /* -1 when unknown */
  double    ttft_ms;          /* < 0 when unknown */
  double    tokens_per_s;     /* < 0 when unknown */
  char     *finish_reason;    /* nullable: "stop", "length", "cancelled", "interrupted", ... */
  gboolean  complete;         /* FALSE while streaming */
  RuvRating rating;           /* current rating (CLEARED when none) */
} RuvStoreMessage;

/* What ruv_store_complete_message records. */
typedef struct
{
  gint         n_prompt;
  gint         n_gen;
  double       ttft_ms;
  double       tokens_per_s;
  const char  *finish_reason;
} RuvMessageStats;

typedef struct
{
  gint64               message_id;
  gint64               session_id;
  RuvRating            rating;
  gint64               rated_us;
  RuvAdaptationOutcome outcome;
  gint64               latency_us;      /* -1 when unknown */
  double               loss_before;     /* NAN when unknown */
  double               loss_after;      /* NAN when unknown */
  gint64               snapshot_id;     /* 0 when none */
  char                *excerpt;         /* the first 120 characters of the message */
} RuvStoreRatingRecord;

typedef struct
{
  gint64  id;
  char   *model;
  gint64  parent_id;          /* 0 for a first snapshot */
  gint64  created_us;
  GBytes *data;               /* the weights, or NULL when stored as a file */
  char   *path;               /* the file, or NULL when stored as a blob */
  char   *sha256;             /* lower-case hex of the weights */
  gint64  size;
  char   *note;               /* nullable */
} RuvStoreSnapshot;

typedef struct
{
  gint64  id;
  char   *repo;               /* "TheBloke/Foo-GGUF" */
  char   *file;               /* "foo.Q4_0.gguf" */
  char   *path;               /* nullable: where it is on disk */
  gint64  size;               /* -1 when unknown */
  char   *sha256;             /* nullable */
  char   *state;              /* absent|queued|downloading|paused|failed|verifying|ready */
  gint64  bytes_done;
  gint64  last_used_us;       /* 0 when never */
  char   *error;              /* nullable: the last download error */
  /* Since schema 3: what a download resumes against, and what the registry knows. */
  char   *revision;           /* nullable: the Hub revision downloaded ("main") */
  char   *url;                /* nullable: the /resolve URL of the download */
  char   *etag;               /* nullable: the Hub's git blob id (non-LFS files) */
  char   *metadata_json;      /* nullable: a JSON object (name, architecture, ...) */
  gint64  added_us;           /* read only: when the row was made */
} RuvStoreModel;

typedef struct
{
  gint64  session_id;
  gint64  message_id;
  char   *session_title;
  char   *snippet;            /* matched words wrapped in [ ] */
} RuvStoreSearchHit;

typedef enum
{
  RUV_STORE_FORMAT_MARKDOWN,
  RUV_STORE_FORMAT_JSON,
} RuvStoreFormat;

void ruv_store_session_free     (RuvStoreSession      *s);
void ruv_store_message_free     (RuvStoreMessage      *m);
void ruv_store_rating_record_free (RuvStoreRatingRecord *r);
void ruv_store_snapshot_free    (RuvStoreSnapshot     *s);
void ruv_store_model_free       (RuvStoreModel        *m);
void ruv_store_search_hit_free  (RuvStoreSearchHit    *h);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvStoreSession, ruv_store_session_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvStoreMessage, ruv_store_message_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvStoreSnapshot, ruv_store_snapshot_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvStoreModel, ruv_store_model_free)

#define RUV_TYPE_STORE (ruv_store_get_type ())
G_DECLARE_FINAL_TYPE (RuvStore, ruv_store, RUV, STORE, GObject)

/* Opening. Runs quick_check, migrates, and on a corrupt file moves it (with its
 * -wal/-shm) aside to <db>.corrupt-<timestamp>, recovers what it can into a
 * fresh file and reports it in ruv_store_get_recovery_report (). A database
 * from a newer version, or a read-only file, opens read-only (see
 * ruv_store_get_read_only_reason ()). Takes the daily backup. */
RuvStore   *ruv_store_new                 (GError **error) G_GNUC_WARN_UNUSED_RESULT;
RuvStore   *ruv_store_new_for_path        (const char *path,
                                           GError    **error) G_GNUC_WARN_UNUSED_RESULT;
const char *ruv_store_get_path            (RuvStore *self);
gboolean    ruv_store_get_read_only       (RuvStore *self);
/* Why the store is read-only (a sentence for a banner), or NULL. */
const char *ruv_store_get_read_only_reason (RuvStore *self);
/* What happened to a corrupt database at open (a sentence for the user), or NULL. */
const char *ruv_store_get_recovery_report (RuvStore *self);
/* PRAGMA integrity_check (slow; on demand). */
gboolean    ruv_store_check_integrity     (RuvStore *self,
                                           GError  **error);
/* A backup through the online backup API into the backups folder, named by
 * date (one a day, the newest few kept). Returns the file written. */
char       *ruv_store_backup_now          (RuvStore *self,
                                           GError  **error);
/* Backup files, newest first. */
GPtrArray  *ruv_store_list_backups        (RuvStore *self);

/* Sessions. */
gint64      ruv_store_create_session      (RuvStore   *self,
                                           const char *title,
                                           const char *model,
                                           const char *system_prompt,
                                           const char *params_json,
                                           GError    **error);
gboolean    ruv_store_rename_session      (RuvStore *self, gint64 session_id,
                                           const char *title, GError **error);
gboolean    ruv_store_set_session_pinned  (RuvStore *self, gint64 session_id,
                                           gboolean pinned, GError **error);
gboolean    ruv_store_set_session_archived (RuvStore *self, gint64 session_id,
                                            gboolean archived, GError **error);
gboolean    ruv_store_set_session_settings (RuvStore *self, gint64 session_id,
                                            const char *model, const char *system_prompt,
                                            const char *params_json, GError **error);
gboolean    ruv_store_delete_session      (RuvStore *self, gint64 session_id,
                                           GError **error);
RuvStoreSession *ruv_store_get_session    (RuvStore *self, gint64 session_id,
                                           GError **error);
/* Pinned first, then most recently updated. Archived ones only if asked. */
GPtrArray  *ruv_store_list_sessions       (RuvStore *self, gboolean include_archived,
                                           GError **error);

/* Messages. parent_id 0 makes a root. The new message becomes the session's
 * leaf. An assistant message being streamed is added with complete = FALSE.
 * The first user message auto-titles a session whose title is still automatic. */
gint64      ruv_store_add_message         (RuvStore   *self,
                                           gint64      session_id,
                                           gint64      parent_id,
                                           const char *role,
                                           const char *content,
                                           const char *model,
                                           const char *params_json,
                                           gboolean    complete,
                                           GError    **error);
/* The streamed text so far (whole text, a cheap UPDATE). Call it every few
 * hundred ms or tokens: a crash loses at most what came after the last call. */
gboolean    ruv_store_update_message_text (RuvStore *self, gint64 message_id,
                                           const char *text, GError **error);
/* Final text and statistics; marks it complete. */
gboolean    ruv_store_complete_message    (RuvStore *self, gint64 message_id,
                                           const char *text,
                                           const RuvMessageStats *stats,
                                           GError **error);
RuvStoreMessage *ruv_store_get_message    (RuvStore *self, gint64 message_id,
                                           GError **error);
/* The shown branch: root first, ending at the session's leaf. */
GPtrArray  *ruv_store_load_chat           (RuvStore *self, gint64 session_id,
                                           GError **error);
/* Children of a message (parent 0: the roots of the session), oldest first. */
GPtrArray  *ruv_store_list_children       (RuvStore *self, gint64 session_id,
                                           gint64 parent_id, GError **error);
/* The message and its siblings, oldest first. */
GPtrArray  *ruv_store_list_siblings       (RuvStore *self, gint64 message_id,
                                           GError **error);
/* Edit-and-resend: a new user message beside `message_id` (same parent)
 * holding `new_content`; it becomes the leaf. Returns its id. */
gint64      ruv_store_edit_message        (RuvStore *self, gint64 message_id,
                                           const char *new_content, GError **error);
/* Regenerate: a new, incomplete assistant message beside `message_id`; it
 * becomes the leaf. Returns its id. */
gint64      ruv_store_regenerate          (RuvStore *self, gint64 message_id,
                                           const char *model, const char *params_json,
                                           GError **error);
/* Shows the branch through `message_id`: the leaf becomes the newest
 * message reached by following the newest child from it. */
gboolean    ruv_store_switch_branch       (RuvStore *self, gint64 message_id,
                                           GError **error);
/* A new session holding the path root..message_id (with ratings). */
gint64      ruv_store_copy_branch         (RuvStore *self, gint64 message_id,
                                           const char *title, GError **error);
/* Deletes the message and all its descendants; if the shown branch went
 * through it, the leaf moves to its parent. */
gboolean    ruv_store_delete_message      (RuvStore *self, gint64 message_id,
                                           GError **error);

/* Ratings: one current rating per complete message (CLEARED clears it; the
 * row stays as history). Durable (synchronous=FULL) when it returns. */
gboolean    ruv_store_rate_message        (RuvStore *self, gint64 message_id,
                                           RuvRating rating, GError **error);
gboolean    ruv_store_record_adaptation   (RuvStore *self, gint64 message_id,
                                           RuvAdaptationOutcome outcome,
                                           gint64 latency_us, double loss_before,
                                           double loss_after, gint64 snapshot_id,
                                           GError **error);
/* Every message's current rating with what adaptation did, newest first, at
 * most `limit` (0: all). */
GPtrArray  *ruv_store_rating_history      (RuvStore *self, guint limit, GError **error);
/* Every adaptation recorded (each ruv_store_record_adaptation call appends
 * one; re-rating keeps the earlier ones) for message_id (0: all), oldest
 * first, as RuvStoreRatingRecord: rating = the rating it acted on, rated_us =
 * when it was recorded. */
GPtrArray  *ruv_store_list_adaptations    (RuvStore *self, gint64 message_id,
                                           GError **error);

/* Adapter snapshots: exactly one of data / path (with sha256 of the file). */
gint64      ruv_store_add_snapshot        (RuvStore *self, const char *model,
                                           gint64 parent_id, GBytes *data,
                                           const char *path, const char *sha256,
                                           const char *note, GError **error);
GPtrArray  *ruv_store_list_snapshots      (RuvStore *self, const char *model,
                                           GError **error);
RuvStoreSnapshot *ruv_store_get_snapshot  (RuvStore *self, gint64 snapshot_id,
                                           GError **error);

/* Model registry: upsert by (repo, file); NULL/negative fields keep what is there
 * (bytes_done: only a value > 0 is written; set_model_progress sets any). */
gint64      ruv_store_upsert_model        (RuvStore *self, const RuvStoreModel *model,
                                           GError **error);
gboolean    ruv_store_set_model_progress  (RuvStore *self, gint64 model_id,
                                           const char *state, gint64 bytes_done,
                                           const char *error_text, GError **error);
gboolean    ruv_store_touch_model         (RuvStore *self, gint64 model_id, GError **error);
GPtrArray  *ruv_store_list_models         (RuvStore *self, GError **error);
/* The row of (repo, file), or NULL with RUV_ERROR_NOT_FOUND. */
RuvStoreModel *ruv_store_get_model        (RuvStore *self, const char *repo,
                                           const char *file, GError **error);
/* Forgets a row (the caller deletes the file). RUV_ERROR_NOT_FOUND if absent. */
gboolean    ruv_store_delete_model        (RuvStore *self, gint64 model_id, GError **error);

/* Full-text search, newest match first (FTS5 query syntax is escaped: every
 * word must match, as a prefix). */
GPtrArray  *ruv_store_search              (RuvStore *self, const char *text, guint limit,
                                           GError **error);

/* Export one session (session_id > 0) or all (0) as Markdown (the shown
 * branches) or JSON (everything: branches, stats, ratings). */
char       *ruv_store_export              (RuvStore *self, gint64 session_id,
                                           RuvStoreFormat format, GError **error);
/* Imports JSON written by ruv_store_export as new sessions, all or nothing.
 * Returns the number of sessions (-1 on error); hostile or malformed input is refused with
 * RUV_ERROR_INVALID_OPERATION (or RUV_ERROR_STORAGE if the disk fails). */
gint        ruv_store_import_json         (RuvStore *self, const char *json, gssize length,
                                           GArray *new_session_ids, GError **error);

/* Async variants for what the UI calls: run in a worker thread. */
void        ruv_store_add_message_async   (RuvStore *self, gint64 session_id,
                                           gint64 parent_id, const char *role,
                                           const char *content, const char *model,
                                           const char *params_json, gboolean complete,
                                           GCancellable *cancellable,
                                           GAsyncReadyCallback callback, gpointer user_data);
gint64      ruv_store_add_message_finish  (RuvStore *self, GAsyncResult *result,
                                           GError **error);
void        ruv_store_update_message_text_async (RuvStore *self, gint64 message_id,
                                                 const char *text, GCancellable *cancellable,
                                                 GAsyncReadyCallback callback,
                                                 gpointer user_data);
gboolean    ruv_store_update_message_text_finish (RuvStore *self, GAsyncResult *result,
                                                  GError **error);
void        ruv_store_complete_message_async (RuvStore *self, gint64 message_id,
                                              const char *text, const RuvMessageStats *stats,
                                              GCancellable *cancellable,
                                              GAsyncReadyCallback callback,
                                              gpointer user_data);
gboolean    ruv_store_complete_message_finish (RuvStore *self, GAsyncResult *result,
                                               GError **error);
void        ruv_store_load_chat_async     (RuvStore *self, gint64 session_id,
                                           GCancellable *cancellable,
                                           GAsyncReadyCallback callback, gpointer user_data);
GPtrArray  *ruv_store_load_chat_finish    (RuvStore *self, GAsyncResult *result,
                                           GError **error);
void        ruv_store_search_async        (RuvStore *self, const char *text, guint limit,
                                           GCancellable *cancellable,
                                           GAsyncReadyCallback callback, gpointer user_data);
GPtrArray  *ruv_store_search_finish       (RuvStore *self, GAsyncResult *result,
                                           GError **error);
void        ruv_store_rate_message_async  (RuvStore *self, gint64 message_id,
                                           RuvRating rating, GCancellable *cancellable,
                                           GAsyncReadyCallback callback, gpointer user_data);
gboolean    ruv_store_rate_message_finish (RuvStore *self, GAsyncResult *result,
                                           GError **error);

G_END_DECLS
