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

/* A consolidation in three steps, so that the instant loop never waits for
 * the backward passes (a full-vocabulary pass over a 64-token answer takes
 * tens of milliseconds on Qwen2.5-0.5B):
 *  1. under self->lock (microseconds): take a reference to each pending
 *     sample's trace, mark it consolidated, copy the adapter (a shadow);
 *  2. without self->lock: per-sample gradients g_i on the shadow (the
 *     weights as they were at step 1), combined by the strategy;
 *  3. under self->lock: EWC++ Fisher update, one step on the live adapter
 *     (which instant ratings may have moved since step 1: the step is a
 *     gradient taken a few milliseconds earlier), anchor / ensemble.
 * Dropped if the adapter set was replaced meanwhile. self->clock keeps one
 * consolidation at a time (the worker and explicit calls). */
typedef struct
{
  RuvSonaTrace *trace;
  float         reward;
  float         quality;
} Pending;

static gboolean
consolidate (RuvSonaLlm          *self,
             RuvAdaptationResult *res)
{
  RuvSonaLlmConfig *c = &self->config;
  g_autoptr(GArray) pending = g_array_new (FALSE, FALSE, sizeof (Pending));
  g_autoptr(RuvMicroLora) lora = NULL;
  g_autoptr(RuvMicroLora) shadow = NULL;
  g_autofree float *grads = NULL;
  g_autofree float *wts = NULL;
  g_autofree gboolean *ok = NULL;
  g_autofree float *g = NULL;
  gsize np, i, k, n_ok = 0;
  double wsum = 0.0, rsum = 0.0, loss = 0.0;
  gssize best = -1;
  gboolean applied = FALSE;
  guint64 epoch;

  /* 1. snapshot */
  g_mutex_lock (&self->lock);
  for (i = 0; i < self->samples->len; i++)
    {
      Sample *s = g_ptr_array_index (self->samples, i);
      Pending p = { NULL, s->reward, s->quality };

      if (s->consolidated)
        continue;
      s->consolidated = TRUE;
      p.trace = _ruv_sona_trace_ref (s->trace);
      g_array_append_val (pending, p);
    }
  np = ruv_micro_lora_get_n_params (self->lora);
  epoch = self->lora_epoch;
  if (pending->len > 0 && np > 0)
    {
      lora = g_object_ref (self->lora);
      shadow = ruv_micro_lora_copy (lora, c->micro_lora.seed + self->stats.background_runs + 1);
      self->bg_in_flight = pending->len;
    }
  g_mutex_unlock (&self->lock);
  if (shadow == NULL)
    goto out;

  /* 2. per-sample gradients of L_i = -r_i J_i, fuller backward pass */
  grads = g_new0 (float, pending->len * np);
  wts = g_new0 (float, pending->len);
  ok = g_new0 (gboolean, pending->len);
  for (i = 0; i < pending->len; i++)
    {
      Pending *p = &g_array_index (pending, Pending, i);
      double j;

      ruv_micro_lora_clear_gradients (shadow);
      j = _ruv_sona_pass (self, &self->bg_work, shadow, p->trace, 0,
                          c->sona.background_candidates, TRUE, -p->reward, TRUE);
      if (!isfinite (j))
        continue;
      ruv_micro_lora_count_sample (shadow, p->quality);
      ruv_micro_lora_get_mean_gradients (shadow, grads + i * np);
      /* one sample with a non-finite gradient is skipped alone, not the batch */
      for (k = 0; k < np && isfinite (grads[i * np + k]); k++)
        ;
      if (k < np)
        {
          memset (grads + i * np, 0, np * sizeof (float));
          continue;
        }
      ok[i] = TRUE;
      loss += -p->reward * j;
      n_ok++;
      switch (c->consolidation_strategy)
        {
        case RUV_CONSOLIDATE_QUALITY_WEIGHTED:
          wts[i] = fabsf (p->reward);
          break;
        case RUV_CONSOLIDATE_BEST_ONLY:
          if (best < 0 || fabsf (p->reward) >= wts[best])
            best = (gssize) i;
          wts[i] = fabsf (p->reward);
          break;
        case RUV_CONSOLIDATE_EWC_MERGE:
        case RUV_CONSOLIDATE_AVERAGE:
        case RUV_CONSOLIDATE_ENSEMBLE:
        default:
          wts[i] = 1.0f;
          break;
        }
    }
  g = g_new0 (float, np);
  if (n_ok > 0)
    {
      if (c->consolidation_strategy == RUV_CONSOLIDATE_BEST_ONLY)
        for (i = 0; i < pending->len; i++)
          wts[i] = (gssize) i == best ? 1.0f : 0.0f;
      for (i = 0; i < pending->len; i++)
        wsum += wts[i];
      for (i = 0; i < pending->len; i++)
        rsum += wts[i] * fabsf (g_array_index (pending, Pending, i).reward);
      if (wsum > 0.0)
        for (i = 0; i < pending->len; i++)
          if (wts[i] != 0.0f)
            for (k = 0; k < np; k++)
              g[k] += (float) (wts[i] / wsum) * grads[i * np + k];
    }

  /* 3. the step */
  g_mutex_lock (&self->lock);
  self->bg_in_flight = 0;
  if (self->lora != lora || self->lora_epoch != epoch ||
      ruv_micro_lora_get_n_params (self->lora) != np)
    {
      /* the adapter set was replaced or reset meanwhile: nothing to apply */
      g_mutex_unlock (&self->lock);
      goto out;
    }
  self->stats.instant_skipped += pending->len - n_ok;
  for (i = 0; i < pending->len; i++)
    if (ok[i])
      {
        ruv_micro_lora_count_sample (self->lora, g_array_index (pending, Pending, i).quality);
        if (c->consolidation_strategy == RUV_CONSOLIDATE_EWC_MERGE)
          ruv_ewc_update_fisher (self->ewc, grads + i * np);
      }
  ruv_micro_lora_clear_gradients (self->lora);
  if (n_ok > 0)
    {
      res->samples_used = n_ok;
      res->loss = loss / (double) n_ok;
      applied = ruv_micro_lora_apply_gradient_bounded (
          self->lora, g, c->sona.background_lr,
          c->consolidation_strategy == RUV_CONSOLIDATE_EWC_MERGE ? self->ewc : NULL,
          c->sona.ewc_lambda, c->sona.max_step_nats * rsum / (wsum > 0.0 ? wsum : 1.0),
          &res->grad_norm, NULL);
      if (applied && c->consolidation_strategy == RUV_CONSOLIDATE_EWC_MERGE)
        {
          /* an EWC++ task boundary every ewc_task_ratings ratings: the
           * penalty then holds what they taught (ruv-ewc.h) */
          self->ewc_task_n += (gint64) n_ok;
          if (self->ewc_task_n >= c->sona.ewc_task_ratings)
            {
              ruv_micro_lora_get_params (self->lora, g);
              ruv_ewc_end_task (self->ewc, g);
              self->ewc_task_n = 0;
            }
        }
      if (applied && c->consolidation_strategy == RUV_CONSOLIDATE_ENSEMBLE)
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
    }
  g_mutex_unlock (&self->lock);
  res->applied = applied;

out:
  for (i = 0; i < pending->len; i++)
    ruv_sona_trace_free (g_array_index (pending, Pending, i).trace);
  return applied;
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
  g_mutex_lock (&self->clock);
  ok = consolidate (self, &res);
  g_mutex_lock (&self->lock);
  self->last_background_us = g_get_monotonic_time ();
  g_mutex_unlock (&self->lock);
  g_mutex_unlock (&self->clock);
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

/* Like a consolidation, a deep run trains a shadow copy of the adapter (and
 * of the EWC++ state) without holding self->lock, so ratings keep being
 * applied meanwhile; at the end, under the lock, the live weights become
 * w_deep + (w_live - w0): the deep run's result plus whatever instant or
 * background steps happened during it. A cancelled run leaves the live
 * adapter as it is. */

static double
dataset_loss (RuvSonaLlm                  *self,
              RuvMicroLora                *lora,
              const RuvSonaTrainingSample *s,
              gsize                        n)
{
  double sum = 0.0;
  gsize i, used = 0;

  for (i = 0; i < n; i++)
    {
      double j = _ruv_sona_pass (self, &self->bg_work, lora, s[i].trace, 0,
                                 self->config.sona.background_candidates, FALSE, 0.0f, FALSE);

      if (isfinite (j))
        {
          sum += -s[i].reward * j;
          used++;
        }
    }
  return used > 0 ? sum / (double) used : NAN;
}

static gboolean
deep_run (RuvSonaLlm                  *self,
          const RuvSonaTrainingSample *samples,
          gsize                        n,
          RuvSonaProgressFunc          progress,
          gpointer                     user_data,
          GCancellable                *cancellable,
          GArray                      *loss_curve,
          RuvAdaptationResult         *res,
          GError                     **error)
{
  g_autofree RuvSonaTrainingSample *own = NULL;
  g_autofree float *w0 = NULL;
  g_autofree float *gstep = NULL;
  g_autofree float *w1 = NULL;
  g_autofree float *wl = NULL;
  g_autofree gsize *order = NULL;
  g_autoptr(RuvMicroLora) lora = NULL;
  g_autoptr(RuvMicroLora) shadow = NULL;
  g_autoptr(RuvEwc) ewc = NULL;
  gsize np, i, n_own = 0;
  guint64 rng, epoch_id;
  gint epoch;
  double loss;
  gboolean ok = FALSE;

  /* snapshot */
  g_mutex_lock (&self->lock);
  if (n == 0)
    {
      own = g_new0 (RuvSonaTrainingSample, MAX (self->samples->len, 1));
      for (i = 0; i < self->samples->len; i++)
        {
          Sample *s = g_ptr_array_index (self->samples, i);

          own[i].trace = _ruv_sona_trace_ref (s->trace);
          own[i].reward = s->reward;
          own[i].quality = s->quality;
        }
      samples = own;
      n = n_own = self->samples->len;
    }
  lora = g_object_ref (self->lora);
  shadow = ruv_micro_lora_copy (lora, self->config.micro_lora.seed ^ self->stats.deep_runs);
  ewc = ruv_ewc_copy (self->ewc);
  epoch_id = self->lora_epoch;
  g_mutex_unlock (&self->lock);

  loss = n > 0 ? dataset_loss (self, shadow, samples, n) : NAN;
  if (!isfinite (loss))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA,
                   "need at least 1 rated reply matching the adapter to train (have %"
                   G_GSIZE_FORMAT ")", n);
      goto out;
    }
  np = ruv_micro_lora_get_n_params (shadow);
  w0 = g_new (float, np);
  gstep = g_new (float, np);
  ruv_micro_lora_get_params (shadow, w0);
  ruv_ewc_end_task (ewc, w0);   /* the task boundary */
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
              g_mutex_lock (&self->lock);
              self->stats.deep_cancelled++;
              g_mutex_unlock (&self->lock);
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           "deep optimisation cancelled; the adapter is unchanged");
              goto out;
            }
          if (!isfinite (s->reward) || s->reward == 0.0f)
            continue;
          ruv_micro_lora_clear_gradients (shadow);
          if (isfinite (_ruv_sona_pass (self, &self->bg_work, shadow, s->trace, 0,
                                        self->config.sona.background_candidates, TRUE,
                                        -CLAMP (s->reward, -1.0f, 1.0f), TRUE)))
            {
              ruv_micro_lora_count_sample (shadow, s->quality);
              ruv_micro_lora_get_mean_gradients (shadow, gstep);
              ruv_micro_lora_apply_gradient_bounded (
                  shadow, gstep, self->config.training.learning_rate, ewc,
                  self->config.training.ewc_lambda,
                  self->config.sona.max_step_nats * fabsf (CLAMP (s->reward, -1.0f, 1.0f)),
                  NULL, NULL);
            }
          ruv_micro_lora_clear_gradients (shadow);
        }
      loss = dataset_loss (self, shadow, samples, n);
      if (loss_curve != NULL)
        g_array_append_val (loss_curve, loss);
      if (progress != NULL)
        progress (epoch + 1, self->config.training.epochs, loss, user_data);
    }

  /* swap in: w_deep + (w_live - w0) */
  w1 = g_new (float, np);
  wl = g_new (float, np);
  ruv_micro_lora_get_params (shadow, w1);
  g_mutex_lock (&self->lock);
  if (self->lora != lora || self->lora_epoch != epoch_id ||
      ruv_micro_lora_get_n_params (self->lora) != np)
    {
      g_mutex_unlock (&self->lock);
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA,
                   "the adapter was replaced or reset during the deep run; nothing applied");
      goto out;
    }
  ruv_micro_lora_get_params (self->lora, wl);
  {
    /* the sum of two bounded steps: keep the adapter's weight bound */
    float lim = ruv_micro_lora_get_config (self->lora)->max_weight_abs;

    for (i = 0; i < np; i++)
      w1[i] = CLAMP (w1[i] + wl[i] - w0[i], -lim, lim);
  }
  ruv_micro_lora_set_params (self->lora, w1);
  /* what the run taught is the consolidated state now */
  ruv_ewc_end_task (self->ewc, w1);
  self->ewc_task_n = 0;
  self->deep_accum = 0.0;
  self->stats.deep_runs++;
  g_mutex_unlock (&self->lock);
  res->applied = TRUE;
  res->samples_used = n;
  res->loss = loss;
  ok = TRUE;

out:
  for (i = 0; i < n_own; i++)
    ruv_sona_trace_free ((RuvSonaTrace *) own[i].trace);
  return ok;
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
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok;

  g_return_val_if_fail (RUV_IS_SONA_LLM (self), FALSE);
  memset (&res, 0, sizeof res);
  res.loss_after = NAN;
  g_mutex_lock (&self->clock);   /* one deep run or consolidation at a time */
  ok = deep_run (self, samples, n, progress, user_data, cancellable, loss_curve, &res, error);
  g_mutex_unlock (&self->clock);
  if (!ok)
    return FALSE;
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
