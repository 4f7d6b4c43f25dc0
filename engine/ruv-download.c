/* ruv-download.c — verified, resumable downloads from the Hub, several at once.
 * SPDX-License-Identifier: MIT
 *
 * One download is a chain of attempts. An attempt is one GET of the
 * /resolve URL (redirects followed by RuvHub) with Range: bytes=<have>-,
 * read in 64 KiB chunks appended to <target>.incomplete. Attempts carry a
 * serial number: pause, cancel, a stall or the manager going away bump the
 * download's serial and cancel the attempt, and any callback of an older
 * attempt is ignored, so no stale callback ever writes or changes state.
 *
 *   QUEUED → RUNNING → (WAITING → RUNNING)* → VERIFYING → DONE
 *                 ↘ PAUSED ↗         ↘ FAILED / CANCELLED
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
#include "ruv-download.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "ruv-error.h"

#define CHUNK_SIZE (64u << 10)
#define SPEED_WINDOW_US (5 * G_USEC_PER_SEC)
#define N_SPEED_SAMPLES 32
#define NOTIFY_INTERVAL_US (100 * 1000)
/* Free space kept beyond the file itself. */
#define DISK_MARGIN (32u << 20)
/* How often a running download's offset is saved to the store. */
#define PERSIST_INTERVAL_US (2 * G_USEC_PER_SEC)

G_DEFINE_ENUM_TYPE (RuvDownloadState, ruv_download_state,
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_QUEUED, "queued"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_RUNNING, "running"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_WAITING, "waiting"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_PAUSED, "paused"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_VERIFYING, "verifying"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_DONE, "done"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_FAILED, "failed"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_CANCELLED, "cancelled"))

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

G_DEFINE_FINAL_TYPE (RuvDownload, ruv_download, G_TYPE_OBJECT)
G_DEFINE_FINAL_TYPE (RuvDownloadManager, ruv_download_manager, G_TYPE_OBJECT)

enum
{
  D_PROP_0,
  D_PROP_PATH,
  D_PROP_URL,
  D_PROP_STATE,
  D_PROP_BYTES_DONE,
  D_PROP_BYTES_TOTAL,
  D_PROP_SPEED,
  D_PROP_ETA,
  D_N_PROPS
};
static GParamSpec *d_props[D_N_PROPS];

enum
{
  M_PROP_0,
  M_PROP_MAX_ACTIVE,
  M_PROP_STALL_TIMEOUT_MS,
  M_PROP_BACKOFF_BASE_MS,
  M_PROP_BACKOFF_MAX_MS,
  M_PROP_RETRY_AFTER_MAX_MS,
  M_PROP_MAX_ATTEMPTS,
  M_PROP_BYTES_DONE,
  M_PROP_BYTES_TOTAL,
  M_PROP_SPEED,
  M_PROP_N_ACTIVE,
  M_N_PROPS
};
static GParamSpec *m_props[M_N_PROPS];

static void schedule (RuvDownloadManager *self);
static void start_attempt (RuvDownload *d);
static void update_totals (RuvDownloadManager *self);
static void persist (RuvDownload *d);

/* ---- RuvDownload basics ----------------------------------------------- */

static void
ruv_download_finalize (GObject *object)
{
  RuvDownload *d = RUV_DOWNLOAD (object);

  g_assert (d->waiters == NULL);
  g_clear_handle_id (&d->retry_source, g_source_remove);
  g_clear_handle_id (&d->stall_source, g_source_remove);
  if (d->fd >= 0)
    close (d->fd);
  g_clear_object (&d->attempt_cancellable);
  g_clear_error (&d->error);
  g_clear_object (&d->store);
  g_free (d->repo_id);
  g_free (d->file);
  g_free (d->revision);
  g_free (d->url);
  g_free (d->path);
  g_free (d->partial);
  g_free (d->sidecar);
  g_free (d->sha256);
  g_free (d->git_oid);
  g_free (d->last_failure);
  G_OBJECT_CLASS (ruv_download_parent_class)->finalize (object);
}

static void
ruv_download_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  RuvDownload *d = RUV_DOWNLOAD (object);

  switch (prop_id)
    {
    case D_PROP_PATH: g_value_set_string (value, d->path); break;
    case D_PROP_URL: g_value_set_string (value, d->url); break;
    case D_PROP_STATE: g_value_set_enum (value, d->state); break;
    case D_PROP_BYTES_DONE: g_value_set_uint64 (value, d->bytes_done); break;
    case D_PROP_BYTES_TOTAL: g_value_set_uint64 (value, d->expected); break;
    case D_PROP_SPEED: g_value_set_double (value, d->speed); break;
    case D_PROP_ETA: g_value_set_int64 (value, d->eta); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
ruv_download_class_init (RuvDownloadClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

  oc->finalize = ruv_download_finalize;
  oc->get_property = ruv_download_get_property;
  d_props[D_PROP_PATH] = g_param_spec_string ("path", NULL, NULL, NULL, ro);
  d_props[D_PROP_URL] = g_param_spec_string ("url", NULL, NULL, NULL, ro);
  d_props[D_PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, RUV_TYPE_DOWNLOAD_STATE,
                                             RUV_DOWNLOAD_STATE_QUEUED, ro);
  d_props[D_PROP_BYTES_DONE] = g_param_spec_uint64 ("bytes-done", NULL, NULL, 0, G_MAXUINT64,
                                                    0, ro);
  d_props[D_PROP_BYTES_TOTAL] = g_param_spec_uint64 ("bytes-total", NULL, NULL, 0, G_MAXUINT64,
                                                     0, ro);
  d_props[D_PROP_SPEED] = g_param_spec_double ("speed", NULL, NULL, 0, G_MAXDOUBLE, 0, ro);
  d_props[D_PROP_ETA] = g_param_spec_int64 ("eta", NULL, NULL, -1, G_MAXINT64, -1, ro);
  g_object_class_install_properties (oc, D_N_PROPS, d_props);
}

static void
ruv_download_init (RuvDownload *d)
{
  d->fd = -1;
  d->eta = -1;
}

static gboolean
is_terminal (RuvDownloadState s)
{
  return s == RUV_DOWNLOAD_STATE_DONE || s == RUV_DOWNLOAD_STATE_FAILED
         || s == RUV_DOWNLOAD_STATE_CANCELLED;
}

static gboolean
is_active (RuvDownloadState s)
{
  return s == RUV_DOWNLOAD_STATE_RUNNING || s == RUV_DOWNLOAD_STATE_WAITING
         || s == RUV_DOWNLOAD_STATE_VERIFYING;
}

static void
set_state (RuvDownload      *d,
           RuvDownloadState  state)
{
  if (d->state == state)
    return;
  d->state = state;
  if (state != RUV_DOWNLOAD_STATE_RUNNING)
    {
      d->speed = 0;
      d->n_samples = 0;
    }
  g_object_notify_by_pspec (G_OBJECT (d), d_props[D_PROP_STATE]);
  g_object_notify_by_pspec (G_OBJECT (d), d_props[D_PROP_SPEED]);
  persist (d);
  if (d->manager != NULL)
    {
      update_totals (d->manager);
      schedule (d->manager);
    }
}

/* Ends the current attempt: later callbacks of it are ignored. */
static void
stop_attempt (RuvDownload *d)
{
  d->serial++;
  if (d->attempt_cancellable != NULL)
    g_cancellable_cancel (d->attempt_cancellable);
  g_clear_object (&d->attempt_cancellable);
  g_clear_handle_id (&d->retry_source, g_source_remove);
  g_clear_handle_id (&d->stall_source, g_source_remove);
  if (d->fd >= 0)
    {
      close (d->fd);
      d->fd = -1;
    }
}

static void
complete_waiters (RuvDownload *d)
{
  GList *waiters = g_steal_pointer (&d->waiters);
  GList *l;

  for (l = waiters; l != NULL; l = l->next)
    {
      GTask *task = l->data;

      if (d->state == RUV_DOWNLOAD_STATE_DONE)
        g_task_return_boolean (task, TRUE);
      else if (d->state == RUV_DOWNLOAD_STATE_CANCELLED)
        g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                 "%s: download cancelled", d->path);
      else
        g_task_return_error (task, g_error_copy (d->error));
      g_object_unref (task);
    }
  g_list_free (waiters);
}

static void
finish (RuvDownload      *d,
        RuvDownloadState  state,
        GError           *error)
{
  g_autoptr(RuvDownload) keep = g_object_ref (d);

  stop_attempt (d);
  g_clear_error (&d->error);
  d->error = error;
  d->eta = -1;
  set_state (d, state);
  complete_waiters (d);
}

static void
fail (RuvDownload *d,
      GError      *error)
{
  g_prefix_error (&error, "%s: ", d->path);
  finish (d, RUV_DOWNLOAD_STATE_FAILED, error);
}

static void
remove_partial (RuvDownload *d)
{
  g_unlink (d->partial);
  g_unlink (d->sidecar);
}

/* ---- store ----------------------------------------------------------------- */

/* The store's name for a state (its models.state CHECK list). */
static const char *
store_state (RuvDownload *d,
             gboolean     have_partial)
{
  switch (d->state)
    {
    case RUV_DOWNLOAD_STATE_QUEUED: return "queued";
    case RUV_DOWNLOAD_STATE_RUNNING:
    case RUV_DOWNLOAD_STATE_WAITING: return "downloading";
    case RUV_DOWNLOAD_STATE_PAUSED: return "paused";
    case RUV_DOWNLOAD_STATE_VERIFYING: return "verifying";
    case RUV_DOWNLOAD_STATE_DONE: return "ready";
    case RUV_DOWNLOAD_STATE_FAILED: return "failed";
    case RUV_DOWNLOAD_STATE_CANCELLED:
    default: return have_partial ? "paused" : "absent";
    }
}

/* Saves state and offset in the download's row. A store that cannot be
 * written (locked, disk full) must not stop a download: the partial file is
 * still there, and the next save or the verification catches up. */
static void
persist (RuvDownload *d)
{
  g_autoptr(GError) error = NULL;
  gboolean have_partial;
  gint64 done;

  if (d->store == NULL || d->row_id == 0)
    return;
  d->last_persist = g_get_monotonic_time ();
  have_partial = g_file_test (d->partial, G_FILE_TEST_IS_REGULAR);
  done = d->state == RUV_DOWNLOAD_STATE_DONE ? (gint64) d->expected
         : have_partial ? (gint64) d->bytes_done : 0;
  if (d->state == RUV_DOWNLOAD_STATE_CANCELLED && !have_partial)
    {
      /* Cancelled and deleted: nothing left to resume or list. */
      if (!ruv_store_delete_model (d->store, d->row_id, &error)
          && !g_error_matches (error, RUV_ERROR, RUV_ERROR_NOT_FOUND))
        g_message ("%s: could not save the download state: %s", d->path, error->message);
      d->row_id = 0;
      return;
    }
  if (!ruv_store_set_model_progress (d->store, d->row_id, store_state (d, have_partial), done,
                                     d->error != NULL ? d->error->message : NULL, &error))
    g_message ("%s: could not save the download state: %s", d->path, error->message);
}

/* Creates or updates the download's row (everything a resume checks). */
static void
persist_row (RuvDownload *d)
{
  g_autoptr(GError) error = NULL;
  RuvStoreModel row = { 0 };

  if (d->store == NULL)
    return;
  row.repo = d->repo_id;
  row.file = d->file;
  row.path = d->path;
  row.size = (gint64) d->expected;
  row.sha256 = d->sha256;
  row.revision = d->revision;
  row.url = d->url;
  row.etag = d->git_oid;
  d->row_id = ruv_store_upsert_model (d->store, &row, &error);
  if (d->row_id == 0)
    g_message ("%s: could not save the download state: %s", d->path, error->message);
  persist (d);
}

/* TRUE if the store's row describes exactly this download (sidecar_matches
 * with the row instead of the sidecar). */
static gboolean
row_matches (RuvDownload *d)
{
  g_autoptr(RuvStoreModel) row = ruv_store_get_model (d->store, d->repo_id, d->file, NULL);

  return row != NULL && g_strcmp0 (row->url, d->url) == 0
         && row->size == (gint64) d->expected && g_strcmp0 (row->sha256, d->sha256) == 0
         && g_strcmp0 (row->etag, d->git_oid) == 0 && g_strcmp0 (row->path, d->path) == 0;
}

/* ---- progress ----------------------------------------------------------- */

static void
notify_progress (RuvDownload *d,
                 gboolean     force)
{
  gint64 now = g_get_monotonic_time ();

  if (!force && now - d->last_notify < NOTIFY_INTERVAL_US)
    return;
  d->last_notify = now;
  g_object_freeze_notify (G_OBJECT (d));
  g_object_notify_by_pspec (G_OBJECT (d), d_props[D_PROP_BYTES_DONE]);
  g_object_notify_by_pspec (G_OBJECT (d), d_props[D_PROP_SPEED]);
  g_object_notify_by_pspec (G_OBJECT (d), d_props[D_PROP_ETA]);
  g_object_thaw_notify (G_OBJECT (d));
  if (d->manager != NULL)
    update_totals (d->manager);
}

static void
add_sample (RuvDownload *d)
{
  gint64 now = g_get_monotonic_time ();
  guint oldest, i;
  SpeedSample *last;

  last = d->n_samples > 0
         ? &d->samples[(d->sample_head + N_SPEED_SAMPLES - 1) % N_SPEED_SAMPLES] : NULL;
  /* One sample per 100 ms is plenty for a 5 s window. */
  if (last == NULL || now - last->t >= 100 * 1000)
    {
      d->samples[d->sample_head] = (SpeedSample) { now, d->bytes_done };
      d->sample_head = (d->sample_head + 1) % N_SPEED_SAMPLES;
      if (d->n_samples < N_SPEED_SAMPLES)
        d->n_samples++;
    }
  else
    last->bytes = d->bytes_done;
  /* Drop samples older than the window, keeping at least two. */
  while (d->n_samples > 2)
    {
      oldest = (d->sample_head + N_SPEED_SAMPLES - d->n_samples) % N_SPEED_SAMPLES;
      if (now - d->samples[oldest].t <= SPEED_WINDOW_US)
        break;
      d->n_samples--;
    }
  d->speed = 0;
  if (d->n_samples >= 2)
    {
      oldest = (d->sample_head + N_SPEED_SAMPLES - d->n_samples) % N_SPEED_SAMPLES;
      i = (d->sample_head + N_SPEED_SAMPLES - 1) % N_SPEED_SAMPLES;
      if (d->samples[i].t > d->samples[oldest].t && d->samples[i].bytes >= d->samples[oldest].bytes)
        d->speed = (double) (d->samples[i].bytes - d->samples[oldest].bytes) * G_USEC_PER_SEC
                   / (double) (d->samples[i].t - d->samples[oldest].t);
    }
  d->eta = -1;
  if (d->speed > 0 && d->expected >= d->bytes_done)
    d->eta = (gint64) ((double) (d->expected - d->bytes_done) / d->speed + 0.5);
}

/* ---- sidecar ------------------------------------------------------------ */

static gboolean
write_sidecar (RuvDownload *d,
               GError     **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "url");
  json_builder_add_string_value (b, d->url);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, (gint64) d->expected);
  json_builder_set_member_name (b, "sha256");
  if (d->sha256 != NULL)
    json_builder_add_string_value (b, d->sha256);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "git_oid");
  if (d->git_oid != NULL)
    json_builder_add_string_value (b, d->git_oid);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  return g_file_set_contents_full (d->sidecar, text, -1,
                                   G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                   0644, error);
}

/* TRUE if the sidecar describes exactly this download. */
static gboolean
sidecar_matches (RuvDownload *d)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *text = NULL;
  gsize len = 0;
  JsonObject *o;
  JsonNode *root;

  if (!g_file_get_contents (d->sidecar, &text, &len, NULL) || len > 65536
      || !json_parser_load_from_data (parser, text, (gssize) len, NULL))
    return FALSE;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return FALSE;
  o = json_node_get_object (root);
  return json_object_get_int_member_with_default (o, "version", 0) == 1
         && g_strcmp0 (json_object_get_string_member_with_default (o, "url", ""), d->url) == 0
         && json_object_get_int_member_with_default (o, "size", -1) == (gint64) d->expected
         && g_strcmp0 (json_object_get_string_member_with_default (o, "sha256", NULL),
                       d->sha256) == 0
         && g_strcmp0 (json_object_get_string_member_with_default (o, "git_oid", NULL),
                       d->git_oid) == 0;
}

/* Picks up a partial file from an earlier run, or clears a stale one. */
static void
adopt_partial (RuvDownload *d)
{
  GStatBuf st;

  if (g_stat (d->partial, &st) != 0)
    {
      g_unlink (d->sidecar);
      return;
    }
  if (!S_ISREG (st.st_mode) || !(d->store != NULL ? row_matches (d) : sidecar_matches (d))
      || (d->expected > 0 && (guint64) st.st_size > d->expected))
    {
      remove_partial (d);
      return;
    }
  d->bytes_done = (guint64) st.st_size;
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
  finish (d, RUV_DOWNLOAD_STATE_DONE, NULL);
}

static void
start_verify (RuvDownload *d)
{
  g_autoptr(GTask) task = NULL;
  VerifyData *v;

  stop_attempt (d);
  set_state (d, RUV_DOWNLOAD_STATE_VERIFYING);
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
    start_attempt (d);
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

  stop_attempt (d);
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
  set_state (d, RUV_DOWNLOAD_STATE_WAITING);
  d->retry_source = g_timeout_add ((guint) delay_ms, retry_cb, d);
}

/* Sizes disagree with the listing: start over from zero once, then fail. */
static void
inconsistent (RuvDownload *d,
              const char  *why)
{
  if (d->restarted_inconsistent)
    {
      remove_partial (d);
      fail (d, g_error_new (RUV_ERROR, RUV_ERROR_IO, "the server's answers are inconsistent "
                            "(%s); the partial file was deleted", why));
      return;
    }
  d->restarted_inconsistent = TRUE;
  stop_attempt (d);
  g_unlink (d->partial);
  d->bytes_done = 0;
  notify_progress (d, TRUE);
  start_attempt (d);
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
      remove_partial (d);
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
  d->last_activity = g_get_monotonic_time ();
  add_sample (d);
  notify_progress (d, FALSE);
  if (d->store != NULL && d->last_activity - d->last_persist >= PERSIST_INTERVAL_US)
    persist (d);
  read_next (a);
}

static void
read_next (Attempt *a)
{
  g_input_stream_read_async (a->stream, a->buf, CHUNK_SIZE, G_PRIORITY_DEFAULT,
                             a->d->attempt_cancellable, read_done, a);
}

/* Seconds from Retry-After (delta-seconds form only), or -1. */
static gint64
retry_after_ms (SoupMessage *msg)
{
  const char *v = soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                "Retry-After");
  guint64 secs;
  char *end;

  if (v == NULL)
    return -1;
  secs = g_ascii_strtoull (v, &end, 10);
  if (end == v || *end != '\0' || secs > 24 * 3600)
    return -1;
  return (gint64) secs * 1000;
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
          stop_attempt (d);
          g_unlink (d->partial);
          d->bytes_done = 0;
          notify_progress (d, TRUE);
          start_attempt (d);
        }
      else
        {
          remove_partial (d);
          fail (d, g_error_new (RUV_ERROR, RUV_ERROR_IO, "HTTP 416 twice: the server will not "
                                "serve this file from byte 0; the partial file was deleted"));
        }
      return;
    }
  if (status == RUV_HTTP_TOO_MANY_REQUESTS)
    {
      gint64 wait = retry_after_ms (a->msg);

      attempt_free (a);
      /* hf_hub waits Retry-After + 1 s; capped so a hostile value cannot park us. */
      if (wait >= 0)
        wait = MIN (wait + 1000, (gint64) m->retry_after_max_ms);
      retry (d, "rate-limited by Hugging Face (HTTP 429)", wait);
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
          notify_progress (d, TRUE);
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

static void
start_attempt (RuvDownload *d)
{
  RuvDownloadManager *m = d->manager;
  GError *error = NULL;
  Attempt *a;

  stop_attempt (d);
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
      if (!check_disk (d, &error) || (d->store == NULL && !write_sidecar (d, &error)))
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
  set_state (d, RUV_DOWNLOAD_STATE_RUNNING);
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

/* ---- public RuvDownload API ---------------------------------------------- */

const char *
ruv_download_get_path (RuvDownload *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD (self), NULL);
  return self->path;
}

const char *
ruv_download_get_url (RuvDownload *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD (self), NULL);
  return self->url;
}

RuvDownloadState
ruv_download_get_state (RuvDownload *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD (self), RUV_DOWNLOAD_STATE_FAILED);
  return self->state;
}

guint64
ruv_download_get_bytes_done (RuvDownload *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD (self), 0);
  return self->bytes_done;
}

guint64
ruv_download_get_bytes_total (RuvDownload *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD (self), 0);
  return self->expected;
}

double
ruv_download_get_speed (RuvDownload *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD (self), 0);
  return self->speed;
}

gint64
ruv_download_get_eta (RuvDownload *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD (self), -1);
  return self->eta;
}

guint
ruv_download_get_n_requests (RuvDownload *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD (self), 0);
  return self->n_requests;
}

const GError *
ruv_download_get_error (RuvDownload *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD (self), NULL);
  return self->error;
}

void
ruv_download_pause (RuvDownload *self)
{
  g_return_if_fail (RUV_IS_DOWNLOAD (self));
  if (is_terminal (self->state) || self->state == RUV_DOWNLOAD_STATE_PAUSED)
    return;
  stop_attempt (self);
  set_state (self, RUV_DOWNLOAD_STATE_PAUSED);
  notify_progress (self, TRUE);
}

void
ruv_download_resume (RuvDownload *self)
{
  g_return_if_fail (RUV_IS_DOWNLOAD (self));
  if (self->state != RUV_DOWNLOAD_STATE_PAUSED || self->manager == NULL)
    return;
  self->failures = 0;
  set_state (self, RUV_DOWNLOAD_STATE_QUEUED);
}

void
ruv_download_cancel (RuvDownload *self,
                     gboolean     delete_partial)
{
  g_return_if_fail (RUV_IS_DOWNLOAD (self));
  if (is_terminal (self->state))
    return;
  stop_attempt (self);
  if (delete_partial)
    remove_partial (self);
  finish (self, RUV_DOWNLOAD_STATE_CANCELLED, NULL);
}

void
ruv_download_wait_async (RuvDownload         *self,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (RUV_IS_DOWNLOAD (self));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, ruv_download_wait_async);
  if (is_terminal (self->state))
    {
      self->waiters = g_list_prepend (NULL, task);
      complete_waiters (self);
      return;
    }
  self->waiters = g_list_append (self->waiters, task);
}

gboolean
ruv_download_wait_finish (RuvDownload   *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- manager ----------------------------------------------------------- */

static void
update_totals (RuvDownloadManager *self)
{
  guint i, n = g_list_model_get_n_items (G_LIST_MODEL (self->downloads));
  guint64 done = 0, total = 0;
  double speed = 0;
  guint active = 0;

  for (i = 0; i < n; i++)
    {
      g_autoptr(RuvDownload) d = g_list_model_get_item (G_LIST_MODEL (self->downloads), i);

      if (d->state == RUV_DOWNLOAD_STATE_FAILED || d->state == RUV_DOWNLOAD_STATE_CANCELLED)
        continue;
      done += d->bytes_done;
      total += d->expected;
      speed += d->speed;
      if (is_active (d->state))
        active++;
    }
  g_object_freeze_notify (G_OBJECT (self));
  if (done != self->bytes_done)
    {
      self->bytes_done = done;
      g_object_notify_by_pspec (G_OBJECT (self), m_props[M_PROP_BYTES_DONE]);
    }
  if (total != self->bytes_total)
    {
      self->bytes_total = total;
      g_object_notify_by_pspec (G_OBJECT (self), m_props[M_PROP_BYTES_TOTAL]);
    }
  if (speed != self->speed)
    {
      self->speed = speed;
      g_object_notify_by_pspec (G_OBJECT (self), m_props[M_PROP_SPEED]);
    }
  if (active != self->n_active)
    {
      self->n_active = active;
      g_object_notify_by_pspec (G_OBJECT (self), m_props[M_PROP_N_ACTIVE]);
    }
  g_object_thaw_notify (G_OBJECT (self));
}

static void
schedule (RuvDownloadManager *self)
{
  guint i, n = g_list_model_get_n_items (G_LIST_MODEL (self->downloads));
  guint active = 0;

  for (i = 0; i < n; i++)
    {
      RuvDownload *d = g_list_model_get_item (G_LIST_MODEL (self->downloads), i);

      if (is_active (d->state))
        active++;
      g_object_unref (d);
    }
  for (i = 0; i < n && active < self->max_active; i++)
    {
      g_autoptr(RuvDownload) d = g_list_model_get_item (G_LIST_MODEL (self->downloads), i);

      if (d->state == RUV_DOWNLOAD_STATE_QUEUED)
        {
          active++;
          start_attempt (d);
        }
    }
}

static void
ruv_download_manager_dispose (GObject *object)
{
  RuvDownloadManager *self = RUV_DOWNLOAD_MANAGER (object);
  guint i, n;

  if (self->downloads != NULL)
    {
      n = g_list_model_get_n_items (G_LIST_MODEL (self->downloads));
      /* Downloads outlive the manager only as records: stop them, keeping
       * partial files and sidecars for the next run. */
      for (i = 0; i < n; i++)
        {
          g_autoptr(RuvDownload) d = g_list_model_get_item (G_LIST_MODEL (self->downloads), i);

          d->manager = NULL;
          stop_attempt (d);
          if (!is_terminal (d->state))
            {
              d->state = RUV_DOWNLOAD_STATE_PAUSED;
              g_object_notify_by_pspec (G_OBJECT (d), d_props[D_PROP_STATE]);
              persist (d);
            }
          if (d->waiters != NULL)
            {
              GList *waiters = g_steal_pointer (&d->waiters), *l;

              for (l = waiters; l != NULL; l = l->next)
                {
                  g_task_return_new_error (l->data, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                           "%s: the download manager was closed", d->path);
                  g_object_unref (l->data);
                }
              g_list_free (waiters);
            }
        }
      g_clear_object (&self->downloads);
    }
  g_clear_object (&self->hub);
  g_clear_object (&self->store);
  G_OBJECT_CLASS (ruv_download_manager_parent_class)->dispose (object);
}

static void
ruv_download_manager_finalize (GObject *object)
{
  RuvDownloadManager *self = RUV_DOWNLOAD_MANAGER (object);

  g_free (self->models_dir);
  G_OBJECT_CLASS (ruv_download_manager_parent_class)->finalize (object);
}

static guint *
uint_prop (RuvDownloadManager *self,
           guint               prop_id)
{
  switch (prop_id)
    {
    case M_PROP_MAX_ACTIVE: return &self->max_active;
    case M_PROP_STALL_TIMEOUT_MS: return &self->stall_timeout_ms;
    case M_PROP_BACKOFF_BASE_MS: return &self->backoff_base_ms;
    case M_PROP_BACKOFF_MAX_MS: return &self->backoff_max_ms;
    case M_PROP_RETRY_AFTER_MAX_MS: return &self->retry_after_max_ms;
    case M_PROP_MAX_ATTEMPTS: return &self->max_attempts;
    case M_PROP_N_ACTIVE: return &self->n_active;
    default: return NULL;
    }
}

static void
ruv_download_manager_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  RuvDownloadManager *self = RUV_DOWNLOAD_MANAGER (object);
  guint *u = uint_prop (self, prop_id);

  if (u != NULL)
    {
      g_value_set_uint (value, *u);
      return;
    }
  switch (prop_id)
    {
    case M_PROP_BYTES_DONE: g_value_set_uint64 (value, self->bytes_done); break;
    case M_PROP_BYTES_TOTAL: g_value_set_uint64 (value, self->bytes_total); break;
    case M_PROP_SPEED: g_value_set_double (value, self->speed); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
ruv_download_manager_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  RuvDownloadManager *self = RUV_DOWNLOAD_MANAGER (object);
  guint *u = uint_prop (self, prop_id);

  if (u == NULL || prop_id == M_PROP_N_ACTIVE)
    {
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  if (*u == g_value_get_uint (value))
    return;
  *u = g_value_get_uint (value);
  g_object_notify_by_pspec (object, pspec);
  if (prop_id == M_PROP_MAX_ACTIVE && self->downloads != NULL)
    schedule (self);
}

static void
ruv_download_manager_class_init (RuvDownloadManagerClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

  oc->dispose = ruv_download_manager_dispose;
  oc->finalize = ruv_download_manager_finalize;
  oc->get_property = ruv_download_manager_get_property;
  oc->set_property = ruv_download_manager_set_property;
  m_props[M_PROP_MAX_ACTIVE] = g_param_spec_uint ("max-active", NULL, NULL, 1, 16, 3, rw);
  m_props[M_PROP_STALL_TIMEOUT_MS] = g_param_spec_uint ("stall-timeout-ms", NULL, NULL, 10,
                                                        G_MAXUINT, 30000, rw);
  m_props[M_PROP_BACKOFF_BASE_MS] = g_param_spec_uint ("backoff-base-ms", NULL, NULL, 0,
                                                       G_MAXUINT, 1000, rw);
  m_props[M_PROP_BACKOFF_MAX_MS] = g_param_spec_uint ("backoff-max-ms", NULL, NULL, 0,
                                                      G_MAXUINT, 8000, rw);
  m_props[M_PROP_RETRY_AFTER_MAX_MS] = g_param_spec_uint ("retry-after-max-ms", NULL, NULL, 0,
                                                          G_MAXUINT, 120000, rw);
  m_props[M_PROP_MAX_ATTEMPTS] = g_param_spec_uint ("max-attempts", NULL, NULL, 1, 100, 6, rw);
  m_props[M_PROP_BYTES_DONE] = g_param_spec_uint64 ("bytes-done", NULL, NULL, 0, G_MAXUINT64,
                                                    0, ro);
  m_props[M_PROP_BYTES_TOTAL] = g_param_spec_uint64 ("bytes-total", NULL, NULL, 0, G_MAXUINT64,
                                                     0, ro);
  m_props[M_PROP_SPEED] = g_param_spec_double ("speed", NULL, NULL, 0, G_MAXDOUBLE, 0, ro);
  m_props[M_PROP_N_ACTIVE] = g_param_spec_uint ("n-active", NULL, NULL, 0, G_MAXUINT, 0, ro);
  g_object_class_install_properties (oc, M_N_PROPS, m_props);
}

static void
ruv_download_manager_init (RuvDownloadManager *self)
{
  self->downloads = g_list_store_new (RUV_TYPE_DOWNLOAD);
  self->max_active = 3;
  self->stall_timeout_ms = 30000;
  self->backoff_base_ms = 1000;
  self->backoff_max_ms = 8000;
  self->retry_after_max_ms = 120000;
  self->max_attempts = 6;
}

RuvDownloadManager *
ruv_download_manager_new (RuvHub     *hub,
                          const char *models_dir)
{
  return ruv_download_manager_new_with_store (hub, models_dir, NULL);
}

RuvDownloadManager *
ruv_download_manager_new_with_store (RuvHub     *hub,
                                     const char *models_dir,
                                     RuvStore   *store)
{
  RuvDownloadManager *self;

  g_return_val_if_fail (RUV_IS_HUB (hub), NULL);
  g_return_val_if_fail (models_dir != NULL, NULL);
  g_return_val_if_fail (store == NULL || RUV_IS_STORE (store), NULL);
  self = g_object_new (RUV_TYPE_DOWNLOAD_MANAGER, NULL);
  self->hub = g_object_ref (hub);
  self->store = store != NULL ? g_object_ref (store) : NULL;
  self->models_dir = g_canonicalize_filename (models_dir, NULL);
  return self;
}

RuvStore *
ruv_download_manager_get_store (RuvDownloadManager *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD_MANAGER (self), NULL);
  return self->store;
}

RuvHub *
ruv_download_manager_get_hub (RuvDownloadManager *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD_MANAGER (self), NULL);
  return self->hub;
}

const char *
ruv_download_manager_get_models_dir (RuvDownloadManager *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD_MANAGER (self), NULL);
  return self->models_dir;
}

GListModel *
ruv_download_manager_get_downloads (RuvDownloadManager *self)
{
  g_return_val_if_fail (RUV_IS_DOWNLOAD_MANAGER (self), NULL);
  return G_LIST_MODEL (self->downloads);
}

/* The directory that will hold path must resolve inside models_dir, so a
 * symlink planted in the models folder cannot redirect a write. */
static gboolean
inside_models_dir (RuvDownloadManager *self,
                   const char         *path,
                   GError            **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *real_dir = NULL;
  g_autofree char *real_root = NULL;
  gsize rl;

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int e = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot create %s: %s", dir, g_strerror (e));
      return FALSE;
    }
  real_dir = realpath (dir, NULL);
  real_root = realpath (self->models_dir, NULL);
  rl = real_root != NULL ? strlen (real_root) : 0;
  if (real_dir == NULL || real_root == NULL || strncmp (real_dir, real_root, rl) != 0
      || (real_dir[rl] != '\0' && real_dir[rl] != '/'))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "%s lies outside the models folder %s",
                   path, self->models_dir);
      return FALSE;
    }
  return TRUE;
}

static RuvDownload *
add_download (RuvDownloadManager *self,
              const char         *repo_id,
              const char         *revision,
              const RuvHubFile   *file,
              const char         *dest_relpath,
              gboolean            paused,
              GError            **error)
{
  g_autoptr(RuvDownload) d = NULL;
  g_autofree char *rel = NULL;
  g_autofree char *path = NULL;
  guint i, n;
  GStatBuf st;

  g_return_val_if_fail (RUV_IS_DOWNLOAD_MANAGER (self), NULL);
  g_return_val_if_fail (file != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (revision == NULL)
    revision = "main";
  if (!ruv_hub_check_repo_id (repo_id, error) || !ruv_hub_check_revision (revision, error)
      || !ruv_hub_check_path (file->path, error)
      || (dest_relpath != NULL && !ruv_hub_check_path (dest_relpath, error)))
    return NULL;
  rel = dest_relpath != NULL ? g_strdup (dest_relpath)
                             : g_build_filename (repo_id, file->path, NULL);
  path = g_build_filename (self->models_dir, rel, NULL);

  n = g_list_model_get_n_items (G_LIST_MODEL (self->downloads));
  for (i = 0; i < n; i++)
    {
      g_autoptr(RuvDownload) other = g_list_model_get_item (G_LIST_MODEL (self->downloads), i);

      if (strcmp (other->path, path) == 0 && other->state != RUV_DOWNLOAD_STATE_FAILED
          && other->state != RUV_DOWNLOAD_STATE_CANCELLED)
        return g_steal_pointer (&other);
    }
  if (!inside_models_dir (self, path, error))
    return NULL;

  d = g_object_new (RUV_TYPE_DOWNLOAD, NULL);
  d->manager = self;
  d->repo_id = g_strdup (repo_id);
  d->file = g_strdup (file->path);
  d->revision = g_strdup (revision);
  d->store = self->store != NULL ? g_object_ref (self->store) : NULL;
  d->url = ruv_hub_resolve_url (self->hub, repo_id, revision, file->path);
  d->path = g_steal_pointer (&path);
  d->partial = g_strconcat (d->path, ".incomplete", NULL);
  d->sidecar = g_strconcat (d->path, ".incomplete.json", NULL);
  d->expected = file->size;
  d->sha256 = g_strdup (file->sha256);
  d->git_oid = g_strdup (file->git_oid);

  /* Only verified files ever get the final name, so a target of the right
   * size is a finished download. */
  if (g_stat (d->path, &st) == 0 && S_ISREG (st.st_mode)
      && (guint64) st.st_size == d->expected && d->expected > 0)
    {
      d->bytes_done = d->expected;
      d->state = RUV_DOWNLOAD_STATE_DONE;
    }
  else
    {
      adopt_partial (d);
      if (paused)
        d->state = RUV_DOWNLOAD_STATE_PAUSED;
    }
  persist_row (d);
  g_list_store_append (self->downloads, d);
  update_totals (self);
  schedule (self);
  return g_steal_pointer (&d);
}

RuvDownload *
ruv_download_manager_add (RuvDownloadManager *self,
                          const char         *repo_id,
                          const char         *revision,
                          const RuvHubFile   *file,
                          const char         *dest_relpath,
                          GError            **error)
{
  return add_download (self, repo_id, revision, file, dest_relpath, FALSE, error);
}

GPtrArray *
ruv_download_manager_restore (RuvDownloadManager  *self,
                              GError             **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func (g_object_unref);
  gsize dl;
  guint i;

  g_return_val_if_fail (RUV_IS_DOWNLOAD_MANAGER (self), NULL);
  if (self->store == NULL)
    return g_steal_pointer (&out);
  rows = ruv_store_list_models (self->store, error);
  if (rows == NULL)
    return NULL;
  dl = strlen (self->models_dir);
  for (i = 0; i < rows->len; i++)
    {
      RuvStoreModel *row = rows->pdata[i];
      g_autoptr(GError) local_error = NULL;
      RuvHubFile f = { 0 };
      const char *rel;
      RuvDownload *d;

      if (row->url == NULL || row->path == NULL || row->size <= 0
          || !(g_str_equal (row->state, "queued") || g_str_equal (row->state, "downloading")
               || g_str_equal (row->state, "verifying") || g_str_equal (row->state, "paused")))
        continue;
      /* Only this manager's folder; the names are checked again by add. */
      if (strncmp (row->path, self->models_dir, dl) != 0 || row->path[dl] != '/')
        continue;
      rel = row->path + dl + 1;
      f.path = row->file;
      f.size = (guint64) row->size;
      f.sha256 = row->sha256;
      f.git_oid = row->etag;
      d = add_download (self, row->repo, row->revision, &f, rel,
                        g_str_equal (row->state, "paused"), &local_error);
      if (d == NULL)
        {
          g_message ("cannot resume the download of %s/%s: %s", row->repo, row->file,
                     local_error->message);
          continue;
        }
      g_ptr_array_add (out, d);
    }
  return g_steal_pointer (&out);
}

void
ruv_download_manager_clear_finished (RuvDownloadManager *self)
{
  guint i;

  g_return_if_fail (RUV_IS_DOWNLOAD_MANAGER (self));
  for (i = g_list_model_get_n_items (G_LIST_MODEL (self->downloads)); i > 0; i--)
    {
      g_autoptr(RuvDownload) d = g_list_model_get_item (G_LIST_MODEL (self->downloads), i - 1);

      if (is_terminal (d->state))
        {
          d->manager = NULL;
          g_list_store_remove (self->downloads, i - 1);
        }
    }
  update_totals (self);
}

/* ---- download_model ------------------------------------------------------ */

typedef struct
{
  RuvDownloadManager *manager;
  char               *model_id;
  RuvPrecision        precision;
  GPtrArray          *downloads;   /* RuvDownload */
  char               *first_path;
  guint               pending;
  GError             *error;
  gulong              cancel_id;
  GCancellable       *cancellable;
} ModelData;

static void
model_data_free (ModelData *m)
{
  if (m->cancel_id != 0)
    g_cancellable_disconnect (m->cancellable, m->cancel_id);
  g_clear_object (&m->cancellable);
  g_clear_object (&m->manager);
  g_free (m->model_id);
  g_clear_pointer (&m->downloads, g_ptr_array_unref);
  g_free (m->first_path);
  g_clear_error (&m->error);
  g_free (m);
}

static void
model_cancelled (GCancellable *cancellable,
                 gpointer      user_data)
{
  ModelData *m = user_data;
  guint i;

  (void) cancellable;
  for (i = 0; m->downloads != NULL && i < m->downloads->len; i++)
    ruv_download_cancel (m->downloads->pdata[i], FALSE);
}

static void
model_wait_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ModelData *m = g_task_get_task_data (task);
  GError *error = NULL;

  if (!ruv_download_wait_finish (RUV_DOWNLOAD (source), result, &error))
    {
      /* The first failure wins; the other parts stop, keeping partials. */
      if (m->error == NULL)
        {
          guint i;

          m->error = error;
          for (i = 0; i < m->downloads->len; i++)
            ruv_download_cancel (m->downloads->pdata[i], FALSE);
        }
      else
        g_clear_error (&error);
    }
  if (--m->pending > 0)
    return;
  if (m->error != NULL)
    g_task_return_error (task, g_steal_pointer (&m->error));
  else
    g_task_return_pointer (task, g_strdup (m->first_path), g_free);
}

static void
model_list_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ModelData *m = g_task_get_task_data (task);
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GPtrArray) picked = NULL;
  GError *error = NULL;
  guint i;

  files = ruv_hub_list_files_finish (RUV_HUB (source), result, &error);
  if (files != NULL)
    picked = ruv_hub_pick_files (files, m->precision, &error);
  if (picked == NULL)
    {
      g_prefix_error (&error, "%s: ", m->model_id);
      g_task_return_error (task, error);
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;
  m->downloads = g_ptr_array_new_with_free_func (g_object_unref);
  for (i = 0; i < picked->len; i++)
    {
      RuvHubFile *f = picked->pdata[i];
      RuvDownload *d = ruv_download_manager_add (m->manager, m->model_id, "main", f, NULL,
                                                 &error);

      if (d == NULL)
        {
          model_cancelled (NULL, m);
          g_task_return_error (task, error);
          return;
        }
      if (i == 0)
        m->first_path = g_strdup (d->path);
      g_ptr_array_add (m->downloads, d);
    }
  m->pending = m->downloads->len;
  for (i = 0; i < m->downloads->len; i++)
    ruv_download_wait_async (m->downloads->pdata[i], NULL, model_wait_done, g_object_ref (task));
  if (m->cancellable != NULL)
    m->cancel_id = g_cancellable_connect (m->cancellable, G_CALLBACK (model_cancelled), m, NULL);
}

void
ruv_hub_download_model_async (RuvHub              *hub,
                              const char          *model_id,
                              RuvPrecision         quantization,
                              const char          *cache_dir,
                              RuvDownloadManager  *manager,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  ModelData *m;
  GError *error = NULL;

  g_return_if_fail (RUV_IS_HUB (hub));
  g_return_if_fail (manager == NULL || RUV_IS_DOWNLOAD_MANAGER (manager));
  g_return_if_fail (manager != NULL || cache_dir != NULL);

  task = g_task_new (hub, cancellable, callback, user_data);
  g_task_set_source_tag (task, ruv_hub_download_model_async);
  if (!ruv_hub_check_repo_id (model_id, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  m = g_new0 (ModelData, 1);
  m->model_id = g_strdup (model_id);
  m->precision = quantization;
  m->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  if (manager != NULL && cache_dir != NULL)
    {
      g_autofree char *canon = g_canonicalize_filename (cache_dir, NULL);

      if (strcmp (canon, manager->models_dir) != 0)
        {
          g_free (m->model_id);
          g_free (m);
          g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_CONFIG,
                                   "cache_dir %s is not the download manager's folder %s",
                                   cache_dir, manager->models_dir);
          return;
        }
    }
  m->manager = manager != NULL ? g_object_ref (manager) : ruv_download_manager_new (hub, cache_dir);
  g_task_set_task_data (task, m, (GDestroyNotify) model_data_free);
  ruv_hub_list_files_async (hub, model_id, "main", cancellable, model_list_done,
                            g_steal_pointer (&task));
}

char *
ruv_hub_download_model_finish (RuvHub        *hub,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, hub), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
