/* ruv-download-private.h — what the ruv-download*.c files share: the structs
 * of RuvDownload and RuvDownloadManager and their internal functions.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "ruv-download.h"

G_BEGIN_DECLS

#define N_SPEED_SAMPLES 32

struct _RuvDownloadManager
{
  GObject     parent_instance;
  RuvHub     *hub;
  RuvStore   *store;        /* NULL: sidecar files keep the resume state */
  char       *models_dir;
  GListStore *downloads;
  guint       max_active;
  guint       stall_timeout_ms;
  guint       backoff_base_ms;
  guint       backoff_max_ms;
  guint       retry_after_max_ms;
  guint       max_attempts;
  guint64     bytes_done;
  guint64     bytes_total;
  double      speed;
  guint       n_active;
};

typedef struct
{
  gint64  t;
  guint64 bytes;
} SpeedSample;

struct _RuvDownload
{
  GObject             parent_instance;
  RuvDownloadManager *manager;      /* not owned; NULL once the manager is gone */

  char               *repo_id;
  char               *file;         /* the path inside the repo */
  char               *revision;
  char               *url;
  char               *path;         /* target */
  char               *partial;      /* target.incomplete */
  char               *sidecar;      /* target.incomplete.json */
  guint64             expected;     /* 0: unknown */
  char               *sha256;
  char               *git_oid;
  RuvStore           *store;        /* owned; NULL: sidecar mode */
  gint64              row_id;       /* the store's models row */
  gint64              last_persist;

  RuvDownloadState    state;
  GError             *error;
  guint64             bytes_done;
  double              speed;
  gint64              eta;

  guint               serial;       /* current attempt */
  GCancellable       *attempt_cancellable;
  int                 fd;
  guint               failures;     /* attempts in a row without progress */
  guint               n_requests;
  gboolean            restarted_inconsistent;
  gboolean            restarted_416;
  gboolean            reresolved_403;  /* a CDN 403 was retried from the Hub */
  gboolean            disk_checked;
  guint               retry_source;
  guint               stall_source;
  gint64              last_activity;
  gint64              last_notify;
  char               *last_failure;

  SpeedSample         samples[N_SPEED_SAMPLES];
  guint               n_samples;
  guint               sample_head;

  GList              *waiters;      /* GTask */
};

static inline gboolean
_ruv_download_state_is_terminal (RuvDownloadState s)
{
  return s == RUV_DOWNLOAD_STATE_DONE || s == RUV_DOWNLOAD_STATE_FAILED
         || s == RUV_DOWNLOAD_STATE_CANCELLED;
}

/* ruv-download.c */
void     _ruv_download_set_state       (RuvDownload        *d,
                                        RuvDownloadState    state);
void     _ruv_download_stop_attempt    (RuvDownload        *d);
void     _ruv_download_finish          (RuvDownload        *d,
                                        RuvDownloadState    state,
                                        GError             *error);
void     _ruv_download_remove_partial  (RuvDownload        *d);
void     _ruv_download_persist         (RuvDownload        *d);
void     _ruv_download_persist_row     (RuvDownload        *d);
gboolean _ruv_download_write_sidecar   (RuvDownload        *d,
                                        GError            **error);
void     _ruv_download_adopt_partial   (RuvDownload        *d);
void     _ruv_download_notify_progress (RuvDownload        *d,
                                        gboolean            force);
void     _ruv_download_add_sample      (RuvDownload        *d);
void     _ruv_download_detach          (RuvDownload        *d);

/* ruv-download-transfer.c */
void     _ruv_download_start_attempt   (RuvDownload        *d);

/* ruv-download-manager.c */
void     _ruv_download_manager_update_totals (RuvDownloadManager *self);
void     _ruv_download_manager_schedule      (RuvDownloadManager *self);

G_END_DECLS
