/* ruv-download-model.c — ruv_hub_download_model_async: lists a repo, picks the
 * file(s) for a precision and downloads every part of the model.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-download-private.h"

#include <string.h>

#include "ruv-error.h"

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
