/* ruv-download-manager.c — RuvDownloadManager: several downloads at once, their
 * totals, and the resume state kept in the store.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-download-private.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "ruv-error.h"

G_DEFINE_FINAL_TYPE (RuvDownloadManager, ruv_download_manager, G_TYPE_OBJECT)

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

static gboolean
is_active (RuvDownloadState s)
{
  return s == RUV_DOWNLOAD_STATE_RUNNING || s == RUV_DOWNLOAD_STATE_WAITING
         || s == RUV_DOWNLOAD_STATE_VERIFYING;
}

/* ---- manager ----------------------------------------------------------- */

void
_ruv_download_manager_update_totals (RuvDownloadManager *self)
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

void
_ruv_download_manager_schedule (RuvDownloadManager *self)
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
          _ruv_download_start_attempt (d);
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

          _ruv_download_detach (d);
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
    _ruv_download_manager_schedule (self);
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
      _ruv_download_adopt_partial (d);
      if (paused)
        d->state = RUV_DOWNLOAD_STATE_PAUSED;
    }
  _ruv_download_persist_row (d);
  g_list_store_append (self->downloads, d);
  _ruv_download_manager_update_totals (self);
  _ruv_download_manager_schedule (self);
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

      if (_ruv_download_state_is_terminal (d->state))
        {
          d->manager = NULL;
          g_list_store_remove (self->downloads, i - 1);
        }
    }
  _ruv_download_manager_update_totals (self);
}
