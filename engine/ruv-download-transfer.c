/* ruv-download-transfer.c — one download's transfer: Range attempts, retries,
 * stall detection, then verification and the rename onto the target.
 * SPDX-License-Identifier: MIT
 *
 * Retries: an attempt that fails (network error, stall, early EOF, 408, 429,
 * 5xx) is retried after a backoff (base · 2^k, capped; Retry-After for 429,
 * capped) while fewer than max-attempts attempts in a row made no progress:
 * the counter resets whenever bytes arrive (hf_hub's rule). A 200 answer to
 * a Range request truncates and starts over; 416 means "verify" when the
 * partial is complete, else "discard and start over" once. Sizes that
 * disagree with the listing (Content-Range total, Content-Length) restart
 * from zero once, then fail; bytes beyond the expected size fail at once.
 */
#include "ruv-download-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "ruv-error.h"
#include "ruv-hub-private.h"

#define CHUNK_SIZE (64u << 10)
/* Free space kept beyond the file itself. */
#define DISK_MARGIN (32u << 20)
/* How often a running download's offset is saved to the store. */
#define PERSIST_INTERVAL_US (2 * G_USEC_PER_SEC)

static void
fail (RuvDownload *d,
      GError      *error)
{
  g_prefix_error (&error, "%s: ", d->path);
  _ruv_download_finish (d, RUV_DOWNLOAD_STATE_FAILED, error);
}

/* ---- verification (worker thread) --------------------------------------- */

typedef struct
{
  char    *partial;
  char    *path;
  char    *sidecar;
  guint64  expected;
  char    *sha256;
  char    *git_oid;
} VerifyData;

static void
verify_data_free (VerifyData *v)
{
  g_free (v->partial);
  g_free (v->path);
  g_free (v->sidecar);
  g_free (v->sha256);
  g_free (v->git_oid);
  g_free (v);
}

static gboolean
has_suffix_ci (const char *s,
               const char *suffix)
{
  gsize ls = strlen (s), lx = strlen (suffix);

  return ls >= lx && g_ascii_strcasecmp (s + ls - lx, suffix) == 0;
}

static void
verify_thread (GTask        *task,
               gpointer      source,
               gpointer      task_data,
               GCancellable *cancellable)
{
  VerifyData *v = task_data;
  g_autoptr(GChecksum) sha256 = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GChecksum) sha1 = g_checksum_new (G_CHECKSUM_SHA1);
  g_autofree guint8 *buf = g_malloc (1u << 20);
  guint8 head[65536];
  gsize head_len = 0;
  guint64 total = 0;
  GStatBuf st;
  int fd;

  (void) source;
  fd = g_open (v->partial, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0 || fstat (fd, &st) != 0)
    {
      int e = errno;

      if (fd >= 0)
        close (fd);
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO, "cannot read the partial file: %s",
                               g_strerror (e));
      return;
    }
  if (v->expected > 0 && (guint64) st.st_size != v->expected)
    {
      close (fd);
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                               "size %" G_GINT64_FORMAT " instead of %" G_GUINT64_FORMAT
                               " bytes", (gint64) st.st_size, v->expected);
      return;
    }
  if (v->git_oid != NULL)
    {
      g_autofree char *hdr = g_strdup_printf ("blob %" G_GINT64_FORMAT, (gint64) st.st_size);

      g_checksum_update (sha1, (const guchar *) hdr, (gssize) strlen (hdr) + 1);
    }
  for (;;)
    {
      gssize n = read (fd, buf, 1u << 20);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int e = errno;

          close (fd);
          g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO, "read error: %s",
                                   g_strerror (e));
          return;
        }
      if (n == 0)
        break;
      if (head_len < sizeof head)
        {
          gsize k = MIN (sizeof head - head_len, (gsize) n);

          memcpy (head + head_len, buf, k);
          head_len += k;
        }
      g_checksum_update (sha256, buf, n);
      if (v->git_oid != NULL)
        g_checksum_update (sha1, buf, n);
      total += (guint64) n;
      if (g_cancellable_is_cancelled (cancellable))
        break;
    }
  close (fd);
  if (g_task_return_error_if_cancelled (task))
    return;

  if (v->sha256 != NULL && strcmp (g_checksum_get_string (sha256), v->sha256) != 0)
    {
      g_unlink (v->partial);
      g_unlink (v->sidecar);
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                               "sha256 mismatch: the file was corrupted in transit (expected %s, "
                               "got %s); the partial file was deleted, retry the download",
                               v->sha256, g_checksum_get_string (sha256));
      return;
    }
  if (v->sha256 == NULL && v->git_oid != NULL
      && strcmp (g_checksum_get_string (sha1), v->git_oid) != 0)
    {
      g_unlink (v->partial);
      g_unlink (v->sidecar);
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                               "git sha1 mismatch: the file was corrupted in transit; the "
                               "partial file was deleted, retry the download");
      return;
    }
  /* A model must be a model: check the GGUF header before it takes the name. */
  if (has_suffix_ci (v->path, ".gguf"))
    {
      g_autoptr(RuvGgufHeader) header = NULL;
      GError *error = NULL;
      gboolean need_more = FALSE;

      header = ruv_gguf_header_parse (head, head_len, total, v->path, &need_more, &error);
      if (header == NULL && !need_more)
        {
          g_unlink (v->partial);
          g_unlink (v->sidecar);
          g_prefix_error (&error, "the downloaded file is not a usable GGUF model; deleted: ");
          g_task_return_error (task, error);
          return;
        }
      /* need_more: metadata longer than 64 KiB; the loader checks it fully. */
      g_clear_error (&error);
    }
  if (g_rename (v->partial, v->path) != 0)
    {
      int e = errno;

      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO, "cannot move into place: %s",
                               g_strerror (e));
      return;
    }
  g_unlink (v->sidecar);
  g_task_return_boolean (task, TRUE);
}

static void
verify_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  RuvDownload *d = RUV_DOWNLOAD (source);
  guint serial = GPOINTER_TO_UINT (user_data);
  GError *error = NULL;
  gboolean ok;

  ok = g_task_propagate_boolean (G_TASK (result), &error);
  if (serial != d->serial || d->state != RUV_DOWNLOAD_STATE_VERIFYING)
    {
      g_clear_error (&error);
      return;
    }
  if (!ok)
    {
      fail (d, error);
      return;
    }
  _ruv_download_finish (d, RUV_DOWNLOAD_STATE_DONE, NULL);
}

static void
start_verify (RuvDownload *d)
{
  g_autoptr(GTask) task = NULL;
  VerifyData *v;

  _ruv_download_stop_attempt (d);
  _ruv_download_set_state (d, RUV_DOWNLOAD_STATE_VERIFYING);
  d->attempt_cancellable = g_cancellable_new ();
  v = g_new0 (VerifyData, 1);
  v->partial = g_strdup (d->partial);
  v->path = g_strdup (d->path);
  v->sidecar = g_strdup (d->sidecar);
  v->expected = d->expected;
  v->sha256 = g_strdup (d->sha256);
  v->git_oid = g_strdup (d->git_oid);
  task = g_task_new (d, d->attempt_cancellable, verify_done, GUINT_TO_POINTER (d->serial));
  g_task_set_source_tag (task, start_verify);
  g_task_set_task_data (task, v, (GDestroyNotify) verify_data_free);
  g_task_run_in_thread (task, verify_thread);
}

/* ---- attempts ------------------------------------------------------------ */

typedef struct
{
  RuvDownload  *d;
  guint         serial;
  GInputStream *stream;
  SoupMessage  *msg;
  guint8       *buf;
} Attempt;

static void
attempt_free (Attempt *a)
{
  g_clear_object (&a->d);
  g_clear_object (&a->stream);
  g_clear_object (&a->msg);
  g_free (a->buf);
  g_free (a);
}

static gboolean
attempt_stale (Attempt *a)
{
  return a->serial != a->d->serial || a->d->state != RUV_DOWNLOAD_STATE_RUNNING
         || a->d->manager == NULL;
}

static gboolean
retry_cb (gpointer user_data)
{
  RuvDownload *d = user_data;

  d->retry_source = 0;
  if (d->state == RUV_DOWNLOAD_STATE_WAITING && d->manager != NULL)
    _ruv_download_start_attempt (d);
  return G_SOURCE_REMOVE;
}

/* A failed attempt: retry after delay_ms (backoff when < 0), or give up. */
static void
retry (RuvDownload *d,
       const char  *why,
       gint64       delay_ms)
{
  RuvDownloadManager *m = d->manager;
  guint64 backoff;
  guint k;

  _ruv_download_stop_attempt (d);
  g_free (d->last_failure);
  d->last_failure = g_strdup (why);
  d->failures++;
  if (m == NULL)
    return;
  if (d->failures >= m->max_attempts)
    {
      fail (d, g_error_new (RUV_ERROR, RUV_ERROR_IO, "download failed after %u attempts "
                            "without progress: %s", d->failures, why));
      return;
    }
  if (delay_ms < 0)
    {
      backoff = m->backoff_base_ms;
      for (k = 1; k < d->failures && backoff < m->backoff_max_ms; k++)
        backoff *= 2;
      delay_ms = (gint64) MIN (backoff, (guint64) m->backoff_max_ms);
    }
  g_debug ("%s: %s; retrying in %" G_GINT64_FORMAT " ms", d->path, why, delay_ms);
  _ruv_download_set_state (d, RUV_DOWNLOAD_STATE_WAITING);
  d->retry_source = g_timeout_add ((guint) delay_ms, retry_cb, d);
}

/* Sizes disagree with the listing: start over from zero once, then fail. */
static void
inconsistent (RuvDownload *d,
              const char  *why)
{
  if (d->restarted_inconsistent)
    {
      _ruv_download_remove_partial (d);
      fail (d, g_error_new (RUV_ERROR, RUV_ERROR_IO, "the server's answers are inconsistent "
                            "(%s); the partial file was deleted", why));
      return;
    }
  d->restarted_inconsistent = TRUE;
  _ruv_download_stop_attempt (d);
  g_unlink (d->partial);
  d->bytes_done = 0;
  _ruv_download_notify_progress (d, TRUE);
  _ruv_download_start_attempt (d);
}

static gboolean
stall_cb (gpointer user_data)
{
  RuvDownload *d = user_data;
  RuvDownloadManager *m = d->manager;
  g_autofree char *why = NULL;

  if (m == NULL || d->state != RUV_DOWNLOAD_STATE_RUNNING)
    {
      d->stall_source = 0;
      return G_SOURCE_REMOVE;
    }
  if (g_get_monotonic_time () - d->last_activity < (gint64) m->stall_timeout_ms * 1000)
    return G_SOURCE_CONTINUE;
  d->stall_source = 0;
  why = g_strdup_printf ("no data for %u ms", m->stall_timeout_ms);
  retry (d, why, 0);
  return G_SOURCE_REMOVE;
}

static gboolean
open_partial (RuvDownload *d,
              GError     **error)
{
  if (d->fd >= 0)
    close (d->fd);
  d->fd = g_open (d->partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (d->fd < 0 || ftruncate (d->fd, (off_t) d->bytes_done) != 0
      || lseek (d->fd, (off_t) d->bytes_done, SEEK_SET) < 0)
    {
      int e = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot write %s: %s", d->partial,
                   g_strerror (e));
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_all (int           fd,
           const guint8 *data,
           gsize         len,
           GError      **error)
{
  while (len > 0)
    {
      gssize n = write (fd, data, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int e = errno;

          g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s",
                       e == ENOSPC ? "not enough disk space; the partial file is kept for a "
                       "later resume" : g_strerror (e));
          return FALSE;
        }
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

static void read_next (Attempt *a);

static void
read_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Attempt *a = user_data;
  RuvDownload *d = a->d;
  GError *error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  if (attempt_stale (a))
    {
      g_clear_error (&error);
      attempt_free (a);
      return;
    }
  if (n < 0)
    {
      g_autofree char *why = g_strdup_printf ("connection lost: %s", error->message);

      g_clear_error (&error);
      attempt_free (a);
      retry (d, why, -1);
      return;
    }
  if (n == 0)
    {
      attempt_free (a);
      if (d->expected > 0 && d->bytes_done < d->expected)
        {
          retry (d, "the connection closed before the end of the file", -1);
          return;
        }
      start_verify (d);
      return;
    }
  if (d->expected > 0 && (guint64) n > d->expected - d->bytes_done)
    {
      /* Never write past the size the Hub announced (C18). */
      attempt_free (a);
      _ruv_download_remove_partial (d);
      fail (d, g_error_new (RUV_ERROR, RUV_ERROR_IO, "the server sent more than the %"
                            G_GUINT64_FORMAT " bytes announced; the partial file was deleted",
                            d->expected));
      return;
    }
  if (!write_all (d->fd, a->buf, (gsize) n, &error))
    {
      attempt_free (a);
      fail (d, error);
      return;
    }
  d->bytes_done += (guint64) n;
  d->failures = 0;
  /* bytes arrived: a later expiry of the signed URL may be re-resolved again */
  d->reresolved_403 = FALSE;
  d->last_activity = g_get_monotonic_time ();
  _ruv_download_add_sample (d);
  _ruv_download_notify_progress (d, FALSE);
  if (d->store != NULL && d->last_activity - d->last_persist >= PERSIST_INTERVAL_US)
    _ruv_download_persist (d);
  read_next (a);
}

static void
read_next (Attempt *a)
{
  g_input_stream_read_async (a->stream, a->buf, CHUNK_SIZE, G_PRIORITY_DEFAULT,
                             a->d->attempt_cancellable, read_done, a);
}

static void
response_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Attempt *a = user_data;
  RuvDownload *d = a->d;
  RuvDownloadManager *m;
  SoupMessageHeaders *h;
  GError *error = NULL;
  guint status;
  goffset start = 0, end = 0, total = 0, clen;

  a->stream = ruv_hub_send_finish (RUV_HUB (source), result, &a->msg, &error);
  if (attempt_stale (a))
    {
      g_clear_error (&error);
      attempt_free (a);
      return;
    }
  m = d->manager;
  if (a->stream == NULL)
    {
      g_autofree char *why = g_strdup (error->message);
      gboolean permanent = error->domain == RUV_ERROR;

      attempt_free (a);
      /* Redirect loops and bad URLs do not get better by retrying. */
      if (permanent)
        fail (d, error);
      else
        {
          g_clear_error (&error);
          retry (d, why, -1);
        }
      return;
    }
  status = soup_message_get_status (a->msg);
  h = soup_message_get_response_headers (a->msg);
  clen = soup_message_headers_get_content_length (h);

  if (status == SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE)
    {
      attempt_free (a);
      if (d->bytes_done > 0 && d->bytes_done == d->expected)
        start_verify (d);
      else if (!d->restarted_416)
        {
          d->restarted_416 = TRUE;
          _ruv_download_stop_attempt (d);
          g_unlink (d->partial);
          d->bytes_done = 0;
          _ruv_download_notify_progress (d, TRUE);
          _ruv_download_start_attempt (d);
        }
      else
        {
          _ruv_download_remove_partial (d);
          fail (d, g_error_new (RUV_ERROR, RUV_ERROR_IO, "HTTP 416 twice: the server will not "
                                "serve this file from byte 0; the partial file was deleted"));
        }
      return;
    }
  if (status == RUV_HTTP_TOO_MANY_REQUESTS)
    {
      gint64 wait = _ruv_hub_retry_after_ms (soup_message_get_response_headers (a->msg));

      attempt_free (a);
      /* hf_hub waits Retry-After + 1 s; capped so a hostile value cannot park us. */
      if (wait >= 0)
        wait = MIN (wait + 1000, (gint64) m->retry_after_max_ms);
      retry (d, "rate-limited by Hugging Face (HTTP 429)", wait);
      return;
    }
  /* A signed CDN URL that expired (the Hub signs one per redirect, valid for
   * a while): each attempt starts at the Hub, so one more signs a new one. */
  if (status == SOUP_STATUS_FORBIDDEN
      && !_ruv_hub_is_hub_origin (m->hub, soup_message_get_uri (a->msg)))
    {
      attempt_free (a);
      if (!d->reresolved_403)
        {
          d->reresolved_403 = TRUE;
          retry (d, "HTTP 403 from the CDN (an expired signed URL?)", 0);
        }
      else
        fail (d, g_error_new (RUV_ERROR, RUV_ERROR_INVALID_OPERATION, "%s: the download server "
                              "refused the file (HTTP 403) again, with a freshly signed URL",
                              d->repo_id));
      return;
    }
  if (status == SOUP_STATUS_REQUEST_TIMEOUT || (status >= 500 && status <= 599))
    {
      g_autofree char *why = g_strdup_printf ("HTTP %u from the server", status);

      attempt_free (a);
      retry (d, why, -1);
      return;
    }
  if (status != SOUP_STATUS_OK && status != SOUP_STATUS_PARTIAL_CONTENT)
    {
      error = ruv_hub_status_error (a->msg, d->repo_id);
      attempt_free (a);
      fail (d, error);
      return;
    }

  if (status == SOUP_STATUS_PARTIAL_CONTENT)
    {
      if (!soup_message_headers_get_content_range (h, &start, &end, &total)
          || start != (goffset) d->bytes_done
          || (d->expected > 0 && total != (goffset) d->expected))
        {
          attempt_free (a);
          inconsistent (d, "206 with an unexpected Content-Range");
          return;
        }
    }
  else
    {
      /* 200: the server ignored the Range (or we asked from 0): start over,
       * never append a whole body to a partial one (C4). */
      if (d->bytes_done > 0)
        {
          g_debug ("%s: server ignored Range; restarting from 0", d->path);
          d->bytes_done = 0;
          _ruv_download_notify_progress (d, TRUE);
        }
      if (d->expected > 0 && clen > 0 && clen != (goffset) d->expected)
        {
          attempt_free (a);
          inconsistent (d, "Content-Length differs from the listed size");
          return;
        }
    }
  if (!open_partial (d, &error))
    {
      attempt_free (a);
      fail (d, error);
      return;
    }
  a->buf = g_malloc (CHUNK_SIZE);
  d->last_activity = g_get_monotonic_time ();
  read_next (a);
}

static gboolean
check_disk (RuvDownload *d,
            GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (d->path);
  g_autoptr(GFile) f = g_file_new_for_path (dir);
  g_autoptr(GFileInfo) info = NULL;
  guint64 need, have;

  if (d->expected == 0)
    return TRUE;
  info = g_file_query_filesystem_info (f, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, NULL, NULL);
  if (info == NULL || !g_file_info_has_attribute (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE))
    return TRUE;
  have = g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
  need = d->expected - MIN (d->bytes_done, d->expected);
  if (need > G_MAXUINT64 - DISK_MARGIN || need + DISK_MARGIN > have)
    {
      g_autofree char *sneed = g_format_size (need);
      g_autofree char *shave = g_format_size (have);

      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "not enough disk space (need %s, have %s)",
                   sneed, shave);
      return FALSE;
    }
  return TRUE;
}

void
_ruv_download_start_attempt (RuvDownload *d)
{
  RuvDownloadManager *m = d->manager;
  GError *error = NULL;
  Attempt *a;

  _ruv_download_stop_attempt (d);
  if (!d->disk_checked)
    {
      g_autofree char *dir = g_path_get_dirname (d->path);

      if (g_mkdir_with_parents (dir, 0755) != 0)
        {
          int e = errno;

          fail (d, g_error_new (RUV_ERROR, RUV_ERROR_IO, "cannot create %s: %s", dir,
                                g_strerror (e)));
          return;
        }
      if (!check_disk (d, &error) || (d->store == NULL && !_ruv_download_write_sidecar (d, &error)))
        {
          fail (d, error);
          return;
        }
      d->disk_checked = TRUE;
    }
  /* Already complete (from an earlier run): verify without a request. */
  if (d->expected > 0 && d->bytes_done == d->expected)
    {
      start_verify (d);
      return;
    }
  _ruv_download_set_state (d, RUV_DOWNLOAD_STATE_RUNNING);
  d->attempt_cancellable = g_cancellable_new ();
  d->last_activity = g_get_monotonic_time ();
  d->n_requests++;
  a = g_new0 (Attempt, 1);
  a->d = g_object_ref (d);
  a->serial = d->serial;
  d->stall_source = g_timeout_add (MAX (10u, m->stall_timeout_ms / 4), stall_cb, d);
  ruv_hub_send_async (m->hub, d->url, (gint64) d->bytes_done, -1, d->attempt_cancellable,
                      response_done, a);
}
