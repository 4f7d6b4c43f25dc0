/* ruv-sona-consolidate.c — SONA's background loop (consolidation strategies,
 * worker thread) and deep loop (see ruv-sona.h).
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "rk.h"
#include "rk-fp16.h"
#include "ruv-error.h"
#include "ruv-model-private.h"
#include "ruv-sona-private.h"

/* ---- background loop -------------------------------------------------------------------- */

static gboolean
consolidate_locked (RuvSonaLlm          *self,
                    RuvAdaptationResult *res)
{
  RuvSonaLlmConfig *c = &self->config;
  gsize np = ruv_micro_lora_get_n_params (self->lora), i, k, n_ok = 0;
  g_autoptr(GPtrArray) pending = g_ptr_array_new ();
  g_autofree float *grads = NULL;
  g_autofree float *wts = NULL;
  g_autofree float *g = NULL;
  double wsum = 0.0, loss = 0.0;
  gssize best = -1;

  for (i = 0; i < self->samples->len; i++)
    {
      Sample *s = g_ptr_array_index (self->samples, i);

      if (!s->consolidated)
        g_ptr_array_add (pending, s);
    }
  if (pending->len == 0 || np == 0)
    return FALSE;

  /* per-sample gradients of L_i = -r_i J_i, fuller backward pass */
  grads = g_new0 (float, pending->len * np);
  wts = g_new0 (float, pending->len);
  for (i = 0; i < pending->len; i++)
    {
      Sample *s = g_ptr_array_index (pending, i);
      double j;

      s->consolidated = TRUE;
      ruv_micro_lora_clear_gradients (self->lora);
      j = _ruv_sona_backward_locked (self, s->trace, 0, c->sona.background_candidates, -s->reward,
                                     TRUE, s->quality);
      if (!isfinite (j))
        {
          self->stats.instant_skipped++;
          continue;
        }
      ruv_micro_lora_get_mean_gradients (self->lora, grads + i * np);
      loss += -s->reward * j;
      n_ok++;
      switch (c->consolidation_strategy)
        {
        case RUV_CONSOLIDATE_QUALITY_WEIGHTED:
          wts[i] = fabsf (s->reward);
          break;
        case RUV_CONSOLIDATE_BEST_ONLY:
          if (best < 0 || fabsf (s->reward) >= wts[best])
            best = (gssize) i;
          wts[i] = fabsf (s->reward);
          break;
        case RUV_CONSOLIDATE_EWC_MERGE:
          ruv_ewc_update_fisher (self->ewc, grads + i * np);
          wts[i] = 1.0f;
          break;
        case RUV_CONSOLIDATE_AVERAGE:
        case RUV_CONSOLIDATE_ENSEMBLE:
        default:
          wts[i] = 1.0f;
          break;
        }
    }
  ruv_micro_lora_clear_gradients (self->lora);
  if (n_ok == 0)
    return FALSE;
  if (c->consolidation_strategy == RUV_CONSOLIDATE_BEST_ONLY)
    for (i = 0; i < pending->len; i++)
      wts[i] = (gssize) i == best ? 1.0f : 0.0f;
  for (i = 0; i < pending->len; i++)
    wsum += wts[i];
  g = g_new0 (float, np);
  if (wsum > 0.0)
    for (i = 0; i < pending->len; i++)
      for (k = 0; k < np; k++)
        g[k] += (float) (wts[i] / wsum) * grads[i * np + k];

  res->samples_used = n_ok;
  res->loss = loss / (double) n_ok;
  res->applied = ruv_micro_lora_apply_gradient (
      self->lora, g, c->sona.background_lr,
      c->consolidation_strategy == RUV_CONSOLIDATE_EWC_MERGE ? self->ewc : NULL,
      c->sona.ewc_lambda, &res->grad_norm);
  if (res->applied && c->consolidation_strategy == RUV_CONSOLIDATE_EWC_MERGE)
    {
      ruv_micro_lora_get_params (self->lora, g);
      ruv_ewc_set_anchor (self->ewc, g);
    }
  if (res->applied && c->consolidation_strategy == RUV_CONSOLIDATE_ENSEMBLE)
    {
      float *snap = g_new (float, np);

      ruv_micro_lora_get_params (self->lora, snap);
      g_ptr_array_add (self->ensemble, snap);
      while (self->ensemble->len > (guint) c->sona.ensemble_size)
        g_ptr_array_remove_index (self->ensemble, 0);
      memset (g, 0, np * sizeof (float));
      for (i = 0; i < self->ensemble->len; i++)
        for (k = 0; k < np; k++)
          g[k] += ((float *) g_ptr_array_index (self->ensemble, i))[k] /
                  (float) self->ensemble->len;
      ruv_micro_lora_set_params (self->lora, g);
    }
  self->stats.background_runs++;
  self->stats.background_samples += n_ok;
  return res->applied;
}

gboolean
ruv_sona_llm_background_consolidate (RuvSonaLlm          *self,
                                     RuvAdaptationResult *result)
{
  RuvAdaptationResult res;
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok;

  g_return_val_if_fail (RUV_IS_SONA_LLM (self), FALSE);
  memset (&res, 0, sizeof res);
  res.loss_after = NAN;
  g_mutex_lock (&self->lock);
  ok = consolidate_locked (self, &res);
  self->last_background_us = g_get_monotonic_time ();
  g_mutex_unlock (&self->lock);
  res.latency_us = (guint64) (g_get_monotonic_time () - t0);
  if (result != NULL)
    *result = res;
  if (ok && self->updated_func != NULL)
    self->updated_func (self, FALSE, &res, self->updated_data);
  return ok;
}

void
ruv_sona_llm_set_updated_func (RuvSonaLlm         *self,
                               RuvSonaUpdatedFunc  func,
                               gpointer            user_data)
{
  g_return_if_fail (RUV_IS_SONA_LLM (self));
  g_mutex_lock (&self->lock);
  self->updated_func = func;
  self->updated_data = user_data;
  g_mutex_unlock (&self->lock);
}

gboolean
ruv_sona_llm_maybe_background (RuvSonaLlm          *self,
                               RuvAdaptationResult *result)
{
  gsize pending = 0;
  guint i;
  gint64 now = g_get_monotonic_time ();
  gboolean due;

  g_mutex_lock (&self->lock);
  for (i = 0; i < self->samples->len; i++)
    pending += ((Sample *) g_ptr_array_index (self->samples, i))->consolidated ? 0 : 1;
  due = pending >= self->config.background_min_samples &&
        now - self->last_background_us >= (gint64) self->config.background_interval_ms * 1000;
  g_mutex_unlock (&self->lock);
  if (!due)
    return FALSE;
  return ruv_sona_llm_background_consolidate (self, result);
}

static gpointer
worker_main (gpointer data)
{
  RuvSonaLlm *self = data;

  g_mutex_lock (&self->wlock);
  while (!self->wstop)
    {
      gint64 end = g_get_monotonic_time () +
                   (gint64) self->config.background_interval_ms * G_TIME_SPAN_MILLISECOND;

      g_cond_wait_until (&self->wcond, &self->wlock, end);
      if (self->wstop)
        break;
      g_mutex_unlock (&self->wlock);
      ruv_sona_llm_maybe_background (self, NULL);
      g_mutex_lock (&self->wlock);
    }
  g_mutex_unlock (&self->wlock);
  return NULL;
}

void
ruv_sona_llm_start_background (RuvSonaLlm *self)
{
  g_return_if_fail (RUV_IS_SONA_LLM (self));
  if (self->worker != NULL)
    return;
  self->wstop = FALSE;
  self->worker = g_thread_new ("sona-background", worker_main, self);
}

void
ruv_sona_llm_stop_background (RuvSonaLlm *self)
{
  if (self->worker == NULL)
    return;
  g_mutex_lock (&self->wlock);
  self->wstop = TRUE;
  g_cond_signal (&self->wcond);
  g_mutex_unlock (&self->wlock);
  g_thread_join (self->worker);
  self->worker = NULL;
}

/* ---- deep loop ----------------------------------------------------------------------- */

static double
dataset_loss (RuvSonaLlm                  *self,
              const RuvSonaTrainingSample *s,
              gsize                        n)
{
  double sum = 0.0;
  gsize i, used = 0;

  for (i = 0; i < n; i++)
    {
      double j = _ruv_sona_pass (self, s[i].trace, 0, self->config.sona.background_candidates,
                                 FALSE, 0.0f, FALSE);

      if (isfinite (j))
        {
          sum += -s[i].reward * j;
          used++;
        }
    }
  return used > 0 ? sum / (double) used : NAN;
}

gboolean
ruv_sona_llm_deep_optimize (RuvSonaLlm                  *self,
                            const RuvSonaTrainingSample *samples,
                            gsize                        n,
                            RuvSonaProgressFunc          progress,
                            gpointer                     user_data,
                            GCancellable                *cancellable,
                            GArray                      *loss_curve,
                            RuvAdaptationResult         *result,
                            GError                     **error)
{
  RuvAdaptationResult res;
  g_autofree RuvSonaTrainingSample *own = NULL;
  g_autofree float *w0 = NULL;
  g_autofree gsize *order = NULL;
  gint64 t0 = g_get_monotonic_time ();
  guint64 rng;
  gsize np, i;
  gint epoch;
  double loss;

  g_return_val_if_fail (RUV_IS_SONA_LLM (self), FALSE);
  memset (&res, 0, sizeof res);
  res.loss_after = NAN;
  g_mutex_lock (&self->lock);
  if (n == 0)
    {
      own = g_new0 (RuvSonaTrainingSample, MAX (self->samples->len, 1));
      for (i = 0; i < self->samples->len; i++)
        {
          Sample *s = g_ptr_array_index (self->samples, i);

          own[i].trace = s->trace;
          own[i].reward = s->reward;
          own[i].quality = s->quality;
        }
      samples = own;
      n = self->samples->len;
    }
  loss = n > 0 ? dataset_loss (self, samples, n) : NAN;
  if (!isfinite (loss))
    {
      g_mutex_unlock (&self->lock);
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA,
                   "need at least 1 rated reply matching the adapter to train (have %"
                   G_GSIZE_FORMAT ")", n);
      return FALSE;
    }
  np = ruv_micro_lora_get_n_params (self->lora);
  w0 = g_new (float, np);
  ruv_micro_lora_get_params (self->lora, w0);
  ruv_ewc_set_anchor (self->ewc, w0);   /* the task boundary */
  if (loss_curve != NULL)
    g_array_append_val (loss_curve, loss);
  order = g_new (gsize, n);
  for (i = 0; i < n; i++)
    order[i] = i;
  rng = self->config.micro_lora.seed ^ G_GUINT64_CONSTANT (0xD1B54A32D192ED03);

  for (epoch = 0; epoch < self->config.training.epochs; epoch++)
    {
      /* seeded Fisher-Yates shuffle */
      for (i = n; i > 1; i--)
        {
          gsize j, tmp;

          rng = rng * G_GUINT64_CONSTANT (6364136223846793005) + 1442695040888963407ULL;
          j = (gsize) ((rng >> 33) % i);
          tmp = order[i - 1];
          order[i - 1] = order[j];
          order[j] = tmp;
        }
      for (i = 0; i < n; i++)
        {
          const RuvSonaTrainingSample *s = &samples[order[i]];

          if (g_cancellable_is_cancelled (cancellable))
            {
              ruv_micro_lora_clear_gradients (self->lora);
              ruv_micro_lora_set_params (self->lora, w0);
              self->stats.deep_cancelled++;
              g_mutex_unlock (&self->lock);
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           "deep optimisation cancelled; the adapter is unchanged");
              return FALSE;
            }
          if (!isfinite (s->reward) || s->reward == 0.0f)
            continue;
          ruv_micro_lora_clear_gradients (self->lora);
          if (isfinite (_ruv_sona_backward_locked (self, s->trace, 0,
                                                   self->config.sona.background_candidates,
                                                   -CLAMP (s->reward, -1.0f, 1.0f), TRUE,
                                                   s->quality)))
            ruv_micro_lora_apply_updates_with_ewc (self->lora, self->config.training.learning_rate,
                                                   self->ewc, self->config.training.ewc_lambda);
          ruv_micro_lora_clear_gradients (self->lora);
        }
      loss = dataset_loss (self, samples, n);
      if (loss_curve != NULL)
        g_array_append_val (loss_curve, loss);
      if (progress != NULL)
        progress (epoch + 1, self->config.training.epochs, loss, user_data);
    }
  self->deep_accum = 0.0;
  self->stats.deep_runs++;
  g_mutex_unlock (&self->lock);
  res.applied = TRUE;
  res.samples_used = n;
  res.loss = loss;
  res.latency_us = (guint64) (g_get_monotonic_time () - t0);
  if (result != NULL)
    *result = res;
  if (self->updated_func != NULL)
    self->updated_func (self, TRUE, &res, self->updated_data);
  return TRUE;
}

gboolean
ruv_sona_llm_should_trigger_deep (RuvSonaLlm *self)
{
  gboolean t;

  g_mutex_lock (&self->lock);
  t = self->deep_accum >= self->config.deep_trigger_threshold;
  g_mutex_unlock (&self->lock);
  return t;
}
