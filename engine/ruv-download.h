/* ruv-download.h — verified, resumable downloads from the Hub, several at once.
 * SPDX-License-Identifier: MIT
 *
 * A RuvDownload writes <target>.incomplete beside its target, so a drop, a
 * pause or an application restart resumes with a Range request. What a resume
 * is checked against (url, revision, size, sha256, git blob id) and the state
 * and offset live in the store's models row of (repo, file) when the manager
 * has a RuvStore (ruv_download_manager_new_with_store): the offset is saved on
 * every state change and every couple of seconds while running, and a new
 * manager lists and resumes them with ruv_download_manager_restore. Without
 * a store (tests, tools) a JSON sidecar <target>.incomplete.json written
 * atomically plays that part and nothing can list the unfinished downloads.
 * Only a file whose size and sha256 (LFS) or git blob sha1 match the Hub's
 * listing is renamed onto its target; a mismatch deletes the partial file.
 * Every attempt re-resolves the /resolve URL, so an expired signed CDN URL
 * is never reused. Faults (see shared/RELIABILITY.md C) are retried with
 * backoff while progress is made: network errors, stalls (no bytes for
 * stall-timeout-ms), 408, 429 (Retry-After honoured, capped) and 5xx.
 *
 * Everything runs on the thread-default main context of the thread that
 * created the manager; hashing runs in a GTask worker.
 */
#pragma once

#include <gio/gio.h>

#include "ruv-hub.h"
#include "ruv-store.h"

G_BEGIN_DECLS

typedef enum
{
  RUV_DOWNLOAD_STATE_QUEUED,
  RUV_DOWNLOAD_STATE_RUNNING,
  RUV_DOWNLOAD_STATE_WAITING,     /* backing off before a retry */
  RUV_DOWNLOAD_STATE_PAUSED,
  RUV_DOWNLOAD_STATE_VERIFYING,
  RUV_DOWNLOAD_STATE_DONE,
  RUV_DOWNLOAD_STATE_FAILED,
  RUV_DOWNLOAD_STATE_CANCELLED,
} RuvDownloadState;

#define RUV_TYPE_DOWNLOAD_STATE (ruv_download_state_get_type ())
GType ruv_download_state_get_type (void) G_GNUC_CONST;

#define RUV_TYPE_DOWNLOAD (ruv_download_get_type ())
G_DECLARE_FINAL_TYPE (RuvDownload, ruv_download, RUV, DOWNLOAD, GObject)

#define RUV_TYPE_DOWNLOAD_MANAGER (ruv_download_manager_get_type ())
G_DECLARE_FINAL_TYPE (RuvDownloadManager, ruv_download_manager, RUV, DOWNLOAD_MANAGER, GObject)

/* Everything written stays under models_dir (created if missing). */
RuvDownloadManager *ruv_download_manager_new      (RuvHub             *hub,
                                                   const char         *models_dir)
                                                   G_GNUC_WARN_UNUSED_RESULT;
/* With a store: resume state in its models table (see above); NULL: sidecars. */
RuvDownloadManager *ruv_download_manager_new_with_store (RuvHub     *hub,
                                                         const char *models_dir,
                                                         RuvStore   *store)
                                                         G_GNUC_WARN_UNUSED_RESULT;
RuvHub             *ruv_download_manager_get_hub  (RuvDownloadManager *self);
RuvStore           *ruv_download_manager_get_store (RuvDownloadManager *self);
const char         *ruv_download_manager_get_models_dir (RuvDownloadManager *self);
/* A GListModel of RuvDownload, in the order they were added. */
GListModel         *ruv_download_manager_get_downloads  (RuvDownloadManager *self);

/* Queues file of repo_id@revision for <models_dir>/<repo_id>/<file->path>
 * (dest_relpath overrides the part after models_dir). The same target twice
 * returns the existing download (single flight). A finished download's
 * target that already exists with the right size is reported DONE at once.
 * Returns a new reference, or NULL with RUV_ERROR_CONFIG for unsafe names. */
RuvDownload        *ruv_download_manager_add      (RuvDownloadManager *self,
                                                   const char         *repo_id,
                                                   const char         *revision,
                                                   const RuvHubFile   *file,
                                                   const char         *dest_relpath,
                                                   GError            **error);
/* Re-adds the unfinished downloads the store remembers under this manager's
 * folder (rows in state queued, downloading, verifying: queued again; paused:
 * PAUSED, resume with ruv_download_resume). Each picks up its partial file
 * when the row still describes it. Result: a new GPtrArray of new references
 * (empty without a store); NULL with RUV_ERROR_STORAGE if the store fails. */
GPtrArray          *ruv_download_manager_restore  (RuvDownloadManager *self,
                                                   GError            **error);
/* Forgets downloads that are done, failed or cancelled. */
void                ruv_download_manager_clear_finished (RuvDownloadManager *self);

const char         *ruv_download_get_path         (RuvDownload        *self);
const char         *ruv_download_get_url          (RuvDownload        *self);
RuvDownloadState    ruv_download_get_state        (RuvDownload        *self);
guint64             ruv_download_get_bytes_done   (RuvDownload        *self);
guint64             ruv_download_get_bytes_total  (RuvDownload        *self);
/* Bytes per second over the last few seconds; 0 when idle. */
double              ruv_download_get_speed        (RuvDownload        *self);
/* Seconds left at the current speed, or -1 when unknown. */
gint64              ruv_download_get_eta          (RuvDownload        *self);
/* Requests made so far (1 for a clean download). */
guint               ruv_download_get_n_requests   (RuvDownload        *self);
/* The error of a FAILED download. */
const GError       *ruv_download_get_error        (RuvDownload        *self);

void                ruv_download_pause            (RuvDownload        *self);
void                ruv_download_resume           (RuvDownload        *self);
/* Stops for good; the partial file and its sidecar are kept for a later
 * resume unless delete_partial. */
void                ruv_download_cancel           (RuvDownload        *self,
                                                   gboolean            delete_partial);

/* Completes when the download is DONE (TRUE), FAILED (its error) or
 * CANCELLED (G_IO_ERROR_CANCELLED). Cancelling `cancellable` stops only the
 * wait, not the download. */
void                ruv_download_wait_async       (RuvDownload        *self,
                                                   GCancellable       *cancellable,
                                                   GAsyncReadyCallback callback,
                                                   gpointer            user_data);
gboolean            ruv_download_wait_finish      (RuvDownload        *self,
                                                   GAsyncResult       *result,
                                                   GError            **error);

/* The reference's download_model(model_id, quantization, cache_dir): lists
 * the repo, picks the file(s) for the precision (ruv_hub_pick_files),
 * downloads and verifies them into <cache_dir>/<model_id>/. manager may be
 * NULL (a private one is made); if given, cache_dir may be NULL and defaults
 * to its models dir. Cancelling `cancellable` cancels the downloads (keeping
 * partial files). The result is the path of the (first part of the) model. */
void                ruv_hub_download_model_async  (RuvHub             *hub,
                                                   const char         *model_id,
                                                   RuvPrecision        quantization,
                                                   const char         *cache_dir,
                                                   RuvDownloadManager *manager,
                                                   GCancellable       *cancellable,
                                                   GAsyncReadyCallback callback,
                                                   gpointer            user_data);
char               *ruv_hub_download_model_finish (RuvHub             *hub,
                                                   GAsyncResult       *result,
                                                   GError            **error);

G_END_DECLS
