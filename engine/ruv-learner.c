/* ruv-learner.c — SONA plus the user's store: snapshots, rollback, outcomes.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-learner.h"
#include "ruv-lora-gguf.h"

struct _RuvLearner
{
  GObject     parent_instance;
  RuvModel   *model;
  char       *model_key;
  RuvStore   *store;       /* nullable */
  RuvSonaLlm *sona;
  GMutex      lock;        /* head */
  gint64      head;
};

G_DEFINE_FINAL_TYPE (RuvLearner, ruv_learner, G_TYPE_OBJECT)

static void
ruv_learner_dispose (GObject *object)
{
  RuvLearner *self = RUV_LEARNER (object);

  if (self->sona != NULL)
    {
      ruv_sona_llm_stop_background (self->sona);
      ruv_sona_llm_set_updated_func (self->sona, NULL, NULL);
    }
  g_clear_object (&self->sona);
  g_clear_object (&self->store);
  g_clear_object (&self->model);
  G_OBJECT_CLASS (ruv_learner_parent_class)->dispose (object);
}

static void
ruv_learner_finalize (GObject *object)
{
  RuvLearner *self = RUV_LEARNER (object);

  g_free (self->model_key);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (ruv_learner_parent_class)->finalize (object);
}

static void
ruv_learner_class_init (RuvLearnerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = ruv_learner_dispose;
  G_OBJECT_CLASS (klass)->finalize = ruv_learner_finalize;
}

static void
ruv_learner_init (RuvLearner *self)
{
  g_mutex_init (&self->lock);
}

static gint64
get_head (RuvLearner *self)
{
  gint64 h;

  g_mutex_lock (&self->lock);
  h = self->head;
  g_mutex_unlock (&self->lock);
  return h;
}

static void
set_head (RuvLearner *self,
          gint64      head)
{
  g_mutex_lock (&self->lock);
  self->head = head;
  g_mutex_unlock (&self->lock);
}

gint64
ruv_learner_snapshot (RuvLearner  *self,
                      const char  *note,
                      GError     **error)
{
  g_autoptr(GBytes) bytes = NULL;
  gint64 id;

  g_return_val_if_fail (RUV_IS_LEARNER (self), 0);
  if (self->store == NULL)
    return 0;
  bytes = ruv_lora_gguf_to_bytes (ruv_sona_llm_get_lora (self->sona), self->model, error);
  if (bytes == NULL)
    return 0;
  /* head is read and replaced under the lock, so two threads snapshotting
   * at once still form a chain */
  g_mutex_lock (&self->lock);
  id = ruv_store_add_snapshot (self->store, self->model_key, self->head, bytes, NULL, NULL, note,
                               error);
  if (id > 0)
    self->head = id;
  g_mutex_unlock (&self->lock);
  return id;
}

/* Called by SONA after a consolidation or deep run (possibly on its worker). */
static void
on_updated (RuvSonaLlm                *sona,
            gboolean                   deep,
            const RuvAdaptationResult *result,
            gpointer                   user_data)
{
  RuvLearner *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *note = NULL;

  (void) sona;
  if (self->store == NULL)
    return;
  note = g_strdup_printf ("%s: %" G_GSIZE_FORMAT " samples, loss %.4f", deep ? "deep" : "consolidate",
                          result->samples_used, result->loss);
  if (ruv_learner_snapshot (self, note, &error) == 0)
    g_warning ("adapter snapshot not saved: %s", error != NULL ? error->message : "?");
}

/* Puts the adapter of GGUF bytes in place (same layout: weights copied into
 * the current adapter set; otherwise a new set). */
static gboolean
load_bytes (RuvLearner   *self,
            const guint8 *data,
            gsize         size,
            const char   *name,
            GError      **error)
{
  RuvMicroLora *cur = ruv_sona_llm_get_lora (self->sona);
  g_autoptr(RuvMicroLora) lora = NULL;
  gboolean same = TRUE;
  gsize i, n;

  lora = ruv_lora_gguf_import_data (self->model, data, size, name,
                                    ruv_micro_lora_get_config (cur), error);
  if (lora == NULL)
    return FALSE;
  n = ruv_micro_lora_get_n_adapters (lora);
  same = n == ruv_micro_lora_get_n_adapters (cur);
  for (i = 0; same && i < n; i++)
    {
      const RuvLoraAdapter *a = ruv_micro_lora_get_adapter (lora, i);
      const RuvLoraAdapter *b = ruv_micro_lora_get_adapter (cur, i);

      same = a->layer == b->layer && a->module == b->module && a->n_in == b->n_in &&
             a->n_out == b->n_out && a->rank == b->rank && a->scale == b->scale;
    }
  if (same)
    {
      g_autofree float *p = g_new (float, ruv_micro_lora_get_n_params (lora));

      ruv_micro_lora_get_params (lora, p);
      /* EWC++ then holds the loaded weights, not the ones they replaced */
      if (!ruv_sona_llm_load_params (self->sona, p))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER, "adapter '%s' has non-finite weights",
                       name);
          return FALSE;
        }
    }
  else
    ruv_sona_llm_set_lora (self->sona, lora);
  return TRUE;
}

RuvLearner *
ruv_learner_new (RuvModel               *model,
                 const char             *model_key,
                 RuvStore               *store,
                 const RuvSonaLlmConfig *config,
                 GError                **error)
{
  g_autoptr(RuvLearner) self = NULL;
  RuvSonaLlm *sona;

  g_return_val_if_fail (RUV_IS_MODEL (model), NULL);
  g_return_val_if_fail (model_key != NULL && *model_key != '\0', NULL);
  sona = ruv_sona_llm_new (model, config, error);
  if (sona == NULL)
    return NULL;
  self = g_object_new (RUV_TYPE_LEARNER, NULL);
  self->model = g_object_ref (model);
  self->model_key = g_strdup (model_key);
  self->store = store != NULL ? g_object_ref (store) : NULL;
  self->sona = sona;
  ruv_sona_llm_set_updated_func (sona, on_updated, self);

  if (store != NULL)
    {
      g_autoptr(GPtrArray) snaps = ruv_store_list_snapshots (store, model_key, error);
      guint i;

      if (snaps == NULL)
        return NULL;
      /* newest first: the newest one that loads is the head */
      for (i = 0; i < snaps->len; i++)
        {
          const RuvStoreSnapshot *s = g_ptr_array_index (snaps, i);
          g_autoptr(GError) local = NULL;

          if (ruv_learner_restore (self, s->id, &local))
            break;
          g_warning ("adapter snapshot %" G_GINT64_FORMAT " of %s skipped: %s", s->id, model_key,
                     local->message);
        }
    }
  return g_steal_pointer (&self);
}

RuvSonaLlm *
ruv_learner_get_sona (RuvLearner *self)
{
  return self->sona;
}

RuvMicroLora *
ruv_learner_get_lora (RuvLearner *self)
{
  return ruv_sona_llm_get_lora (self->sona);
}

gint64
ruv_learner_get_head (RuvLearner *self)
{
  return get_head (self);
}

gboolean
ruv_learner_rate (RuvLearner          *self,
                  RuvSonaTrace        *trace,
                  gint64               message_id,
                  const char          *key,
                  double               rating,
                  RuvAdaptationResult *result,
                  double              *loss_after,
                  GError             **error)
{
  RuvAdaptationResult res;
  g_autoptr(GError) local = NULL;
  float quality, reward;
  gboolean ok;

  g_return_val_if_fail (RUV_IS_LEARNER (self), FALSE);
  if (!isfinite (rating) || rating < -1.0 || rating > 1.0)
    {
      ruv_sona_trace_free (trace);
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA,
                   "a rating is +1, -1 or a quality in [0, 1] (given %g)", rating);
      return FALSE;
    }
  if (rating == 1.0 || rating == -1.0)
    {
      quality = rating > 0 ? 1.0f : 0.0f;
      reward = (float) rating;
    }
  else
    {
      quality = (float) rating;
      reward = NAN;
    }
  ok = ruv_sona_llm_instant_adapt (self->sona, trace, key, quality, reward, &res, &local);
  if (self->store != NULL && message_id > 0)
    {
      g_autoptr(GError) serr = NULL;

      if (!ruv_store_record_adaptation (self->store, message_id,
                                        res.applied ? RUV_ADAPTATION_APPLIED
                                                    : RUV_ADAPTATION_SKIPPED,
                                        (gint64) res.latency_us, ok ? res.loss : NAN,
                                        ok ? res.loss_after : NAN, get_head (self), &serr))
        g_warning ("rating outcome not recorded: %s", serr->message);
    }
  if (result != NULL)
    *result = res;
  if (loss_after != NULL)
    *loss_after = res.loss_after;
  if (!ok)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  return TRUE;
}

gboolean
ruv_learner_consolidate (RuvLearner          *self,
                         RuvAdaptationResult *result,
                         GError             **error)
{
  (void) error;
  /* the snapshot is taken by on_updated */
  return ruv_sona_llm_background_consolidate (self->sona, result);
}

gboolean
ruv_learner_deep (RuvLearner          *self,
                  RuvSonaProgressFunc  progress,
                  gpointer             user_data,
                  GCancellable        *cancellable,
                  GArray              *loss_curve,
                  GError             **error)
{
  return ruv_sona_llm_deep_optimize (self->sona, NULL, 0, progress, user_data, cancellable,
                                     loss_curve, NULL, error);
}

gboolean
ruv_learner_restore (RuvLearner  *self,
                     gint64       snapshot_id,
                     GError     **error)
{
  g_autoptr(RuvStoreSnapshot) snap = NULL;
  g_autoptr(GBytes) file_bytes = NULL;
  g_autofree char *name = NULL;
  const guint8 *data;
  gsize size;

  g_return_val_if_fail (RUV_IS_LEARNER (self), FALSE);
  if (self->store == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION, "no store to restore from");
      return FALSE;
    }
  snap = ruv_store_get_snapshot (self->store, snapshot_id, error);
  if (snap == NULL)
    return FALSE;
  if (g_strcmp0 (snap->model, self->model_key) != 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                   "snapshot %" G_GINT64_FORMAT " belongs to '%s', not '%s'", snapshot_id,
                   snap->model != NULL ? snap->model : "", self->model_key);
      return FALSE;
    }
  if (snap->data != NULL)
    data = g_bytes_get_data (snap->data, &size);
  else
    {
      char *contents = NULL;

      if (snap->path == NULL || !g_file_get_contents (snap->path, &contents, &size, error))
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER, "snapshot %" G_GINT64_FORMAT
                         " has no data", snapshot_id);
          return FALSE;
        }
      file_bytes = g_bytes_new_take (contents, size);
      data = g_bytes_get_data (file_bytes, &size);
    }
  name = g_strdup_printf ("snapshot %" G_GINT64_FORMAT, snapshot_id);
  if (!load_bytes (self, data, size, name, error))
    return FALSE;
  set_head (self, snapshot_id);
  return TRUE;
}

gboolean
ruv_learner_reset (RuvLearner  *self,
                   GError     **error)
{
  ruv_sona_llm_reset (self->sona);
  if (self->store != NULL && ruv_learner_snapshot (self, "reset", error) == 0)
    return FALSE;
  return TRUE;
}

gboolean
ruv_learner_export (RuvLearner  *self,
                    const char  *path,
                    GError     **error)
{
  return ruv_lora_gguf_export (ruv_sona_llm_get_lora (self->sona), self->model, path, error);
}

gboolean
ruv_learner_import (RuvLearner  *self,
                    const char  *path,
                    GError     **error)
{
  g_autofree char *contents = NULL;
  g_autofree char *base = NULL;
  gsize size;

  if (!g_file_get_contents (path, &contents, &size, error))
    return FALSE;
  base = g_path_get_basename (path);
  if (!load_bytes (self, (const guint8 *) contents, size, base, error))
    return FALSE;
  if (self->store != NULL)
    {
      g_autofree char *note = g_strdup_printf ("import: %s", base);

      if (ruv_learner_snapshot (self, note, error) == 0)
        return FALSE;
    }
  return TRUE;
}
