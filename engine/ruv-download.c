/* ruv-download.c — one RuvDownload: its state, progress and resume state.
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
 * The transfer itself (attempts, retries, verification) is in
 * ruv-download-transfer.c, the manager in ruv-download-manager.c and
 * ruv_hub_download_model_async in ruv-download-model.c.
 */
#include "ruv-download-private.h"

#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "ruv-error.h"

#define SPEED_WINDOW_US (5 * G_USEC_PER_SEC)
#define NOTIFY_INTERVAL_US (100 * 1000)

G_DEFINE_ENUM_TYPE (RuvDownloadState, ruv_download_state,
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_QUEUED, "queued"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_RUNNING, "running"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_WAITING, "waiting"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_PAUSED, "paused"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_VERIFYING, "verifying"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_DONE, "done"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_FAILED, "failed"),
  G_DEFINE_ENUM_VALUE (RUV_DOWNLOAD_STATE_CANCELLED, "cancelled"))

G_DEFINE_FINAL_TYPE (RuvDownload, ruv_download, G_TYPE_OBJECT)

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

void
_ruv_download_set_state (RuvDownload      *d,
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
  _ruv_download_persist (d);
  if (d->manager != NULL)
    {
      _ruv_download_manager_update_totals (d->manager);
      _ruv_download_manager_schedule (d->manager);
    }
}

/* Ends the current attempt: later callbacks of it are ignored. */
void
_ruv_download_stop_attempt (RuvDownload *d)
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

void
_ruv_download_finish (RuvDownload      *d,
                      RuvDownloadState  state,
                      GError           *error)
{
  g_autoptr(RuvDownload) keep = g_object_ref (d);

  _ruv_download_stop_attempt (d);
  g_clear_error (&d->error);
  d->error = error;
  d->eta = -1;
  _ruv_download_set_state (d, state);
  complete_waiters (d);
}

void
_ruv_download_remove_partial (RuvDownload *d)
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
void
_ruv_download_persist (RuvDownload *d)
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
void
_ruv_download_persist_row (RuvDownload *d)
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
  _ruv_download_persist (d);
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

void
_ruv_download_notify_progress (RuvDownload *d,
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
    _ruv_download_manager_update_totals (d->manager);
}

void
_ruv_download_add_sample (RuvDownload *d)
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

gboolean
_ruv_download_write_sidecar (RuvDownload *d,
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
void
_ruv_download_adopt_partial (RuvDownload *d)
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
      _ruv_download_remove_partial (d);
      return;
    }
  d->bytes_done = (guint64) st.st_size;
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
  if (_ruv_download_state_is_terminal (self->state) || self->state == RUV_DOWNLOAD_STATE_PAUSED)
    return;
  _ruv_download_stop_attempt (self);
  _ruv_download_set_state (self, RUV_DOWNLOAD_STATE_PAUSED);
  _ruv_download_notify_progress (self, TRUE);
}

void
ruv_download_resume (RuvDownload *self)
{
  g_return_if_fail (RUV_IS_DOWNLOAD (self));
  if (self->state != RUV_DOWNLOAD_STATE_PAUSED || self->manager == NULL)
    return;
  self->failures = 0;
  _ruv_download_set_state (self, RUV_DOWNLOAD_STATE_QUEUED);
}

void
ruv_download_cancel (RuvDownload *self,
                     gboolean     delete_partial)
{
  g_return_if_fail (RUV_IS_DOWNLOAD (self));
  if (_ruv_download_state_is_terminal (self->state))
    return;
  _ruv_download_stop_attempt (self);
  if (delete_partial)
    _ruv_download_remove_partial (self);
  _ruv_download_finish (self, RUV_DOWNLOAD_STATE_CANCELLED, NULL);
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
  if (_ruv_download_state_is_terminal (self->state))
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

/* ---- the manager going away --------------------------------------------- */

/* The manager is going away: stops the download for good, leaves it PAUSED
 * (for a later run) unless it had ended, and cancels its waiters. */
void
_ruv_download_detach (RuvDownload *d)
{
  d->manager = NULL;
  _ruv_download_stop_attempt (d);
  if (!_ruv_download_state_is_terminal (d->state))
    {
      d->state = RUV_DOWNLOAD_STATE_PAUSED;
      g_object_notify_by_pspec (G_OBJECT (d), d_props[D_PROP_STATE]);
      _ruv_download_persist (d);
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
