/* ruv-sona.c — SONA's object, its configuration and the instant loop (see
 * ruv-sona.h). The backward pass is in ruv-sona-backward.c, the background
 * and deep loops in ruv-sona-consolidate.c, capture in ruv-sona-capture.c.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "rk.h"
#include "rk-fp16.h"
#include "ruv-error.h"
#include "ruv-model-private.h"
#include "ruv-sona-private.h"

/* ---- configuration ----------------------------------------------------------- */

static const char *const strategy_names[] = {
  "ewc-merge", "average", "quality-weighted", "best-only", "ensemble",
};

const char *
ruv_consolidation_strategy_to_string (RuvConsolidationStrategy s)
{
  return (guint) s < G_N_ELEMENTS (strategy_names) ? strategy_names[s] : "unknown";
}

gboolean
ruv_consolidation_strategy_from_string (const char               *str,
                                        RuvConsolidationStrategy *out)
{
  guint i;

  for (i = 0; str != NULL && i < G_N_ELEMENTS (strategy_names); i++)
    if (g_ascii_strcasecmp (str, strategy_names[i]) == 0)
      {
        *out = (RuvConsolidationStrategy) i;
        return TRUE;
      }
  return FALSE;
}

void
ruv_sona_llm_config_init (RuvSonaLlmConfig *c,
                          RuvModel         *model)
{
  memset (c, 0, sizeof *c);
  ruv_micro_lora_config_for_model (&c->micro_lora, model);
  c->training.learning_rate = 0.02f;
  c->training.epochs = 3;
  c->training.ewc_lambda = RUV_SONA_DEFAULT_EWC_LAMBDA;
  c->sona.ewc_decay = RUV_EWC_DEFAULT_DECAY;
  /* EWC++ (ruv-ewc.h): lambda is relative to the mean Fisher estimate;
   * 0.1 with a boundary every 10 ratings trades a little plasticity for
   * less forgetting (/engine/lora/engine/ewc-forgetting, README) */
  c->sona.ewc_lambda = RUV_SONA_DEFAULT_EWC_LAMBDA;
  c->sona.ewc_task_ratings = RUV_SONA_DEFAULT_EWC_TASK_RATINGS;
  c->sona.ewc_base_weight = RUV_SONA_DEFAULT_EWC_BASE_WEIGHT;
  c->sona.instant_max_tokens = 16;
  c->sona.instant_candidates = 16;
  c->sona.background_candidates = 0;
  c->sona.background_lr = 0.05f;
  c->sona.ensemble_size = 4;
  c->sona.max_step_nats = RUV_SONA_DEFAULT_MAX_STEP_NATS;
  c->instant_lr = 0.05f;
  c->background_interval_ms = 100;
  c->background_min_samples = 1;
  c->deep_trigger_threshold = 50.0f;
  c->max_pending_samples = 200;
  c->consolidation_strategy = RUV_CONSOLIDATE_EWC_MERGE;
}

gboolean
ruv_sona_llm_config_validate (const RuvSonaLlmConfig *c,
                              GError                **error)
{
  const char *bad = NULL;

  if (!ruv_micro_lora_config_validate (&c->micro_lora, error))
    return FALSE;
  if (!(c->instant_lr > 0.0f && c->instant_lr <= 10.0f))
    bad = "instant_lr (0 < lr <= 10)";
  else if (!(c->sona.background_lr > 0.0f && c->sona.background_lr <= 10.0f))
    bad = "sona.background_lr (0 < lr <= 10)";
  else if (!(c->training.learning_rate > 0.0f && c->training.learning_rate <= 10.0f))
    bad = "training.learning_rate (0 < lr <= 10)";
  else if (c->training.epochs < 1 || c->training.epochs > 1000)
    bad = "training.epochs (1 .. 1000)";
  else if (!(c->training.ewc_lambda >= 0.0f) || !isfinite (c->training.ewc_lambda) ||
           !(c->sona.ewc_lambda >= 0.0f) || !isfinite (c->sona.ewc_lambda))
    bad = "ewc_lambda (>= 0)";
  else if (!(c->sona.ewc_decay >= 0.0f && c->sona.ewc_decay < 1.0f))
    bad = "sona.ewc_decay (0 <= decay < 1)";
  else if (c->sona.ewc_task_ratings < 1 || c->sona.ewc_task_ratings > 1000000)
    bad = "sona.ewc_task_ratings (1 .. 1000000)";
  else if (!(c->sona.ewc_base_weight >= 0.0f) || !isfinite (c->sona.ewc_base_weight))
    bad = "sona.ewc_base_weight (>= 0)";
  else if (c->sona.instant_max_tokens < 1 || c->sona.instant_max_tokens > 4096)
    bad = "sona.instant_max_tokens (1 .. 4096)";
  else if (c->sona.instant_candidates < 1 || c->sona.instant_candidates > 4096 ||
           c->sona.background_candidates < 0 || c->sona.background_candidates > 4096)
    bad = "candidate counts (1 .. 4096; background 0 = full vocabulary)";
  else if (c->sona.ensemble_size < 1 || c->sona.ensemble_size > 64)
    bad = "sona.ensemble_size (1 .. 64)";
  else if (!(c->sona.max_step_nats >= 0.0f) || !isfinite (c->sona.max_step_nats))
    bad = "sona.max_step_nats (>= 0)";
  else if (c->background_interval_ms < 1 || c->background_interval_ms > 3600 * 1000)
    bad = "background_interval_ms";
  else if (c->max_pending_samples < 1 || c->max_pending_samples > 1000000 ||
           c->background_min_samples < 1 || c->background_min_samples > c->max_pending_samples)
    bad = "background_min_samples / max_pending_samples";
  else if (!(c->deep_trigger_threshold > 0.0f) || !isfinite (c->deep_trigger_threshold))
    bad = "deep_trigger_threshold (> 0)";
  else if ((guint) c->consolidation_strategy > RUV_CONSOLIDATE_ENSEMBLE)
    bad = "consolidation_strategy";
  if (bad != NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "SONA config: bad %s", bad);
      return FALSE;
    }
  return TRUE;
}

/* ---- the object ------------------------------------------------------------------- */

static void
sample_free (gpointer p)
{
  Sample *s = p;

  ruv_sona_trace_free (s->trace);
  g_free (s->key);
  g_free (s);
}

G_DEFINE_FINAL_TYPE (RuvSonaLlm, ruv_sona_llm, G_TYPE_OBJECT)

static void
reap_trace (gpointer data,
            gpointer user_data)
{
  (void) user_data;
  ruv_sona_trace_free (data);
}

static void
ruv_sona_llm_dispose (GObject *object)
{
  RuvSonaLlm *self = RUV_SONA_LLM (object);

  ruv_sona_llm_stop_background (self);
  g_clear_object (&self->lora);
  g_clear_object (&self->model);
  G_OBJECT_CLASS (ruv_sona_llm_parent_class)->dispose (object);
}

static void
ruv_sona_llm_finalize (GObject *object)
{
  RuvSonaLlm *self = RUV_SONA_LLM (object);

  g_ptr_array_unref (self->samples);
  g_ptr_array_unref (self->ensemble);
  g_thread_pool_free (self->reaper, FALSE, TRUE);   /* frees what is queued */
  g_array_unref (self->gen_targets);
  g_array_unref (self->gen_cands);
  ruv_ewc_free (self->ewc);
  _ruv_sona_work_clear (&self->work);
  _ruv_sona_work_clear (&self->bg_work);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->clock);
  g_mutex_clear (&self->wlock);
  g_cond_clear (&self->wcond);
  G_OBJECT_CLASS (ruv_sona_llm_parent_class)->finalize (object);
}

static void
ruv_sona_llm_class_init (RuvSonaLlmClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = ruv_sona_llm_dispose;
  G_OBJECT_CLASS (klass)->finalize = ruv_sona_llm_finalize;
}

static void
ruv_sona_llm_init (RuvSonaLlm *self)
{
  g_mutex_init (&self->lock);
  g_mutex_init (&self->clock);
  g_mutex_init (&self->wlock);
  g_cond_init (&self->wcond);
  self->samples = g_ptr_array_new_with_free_func (sample_free);
  self->ensemble = g_ptr_array_new_with_free_func (g_free);
  self->reaper = g_thread_pool_new (reap_trace, NULL, 1, FALSE, NULL);
  self->gen_targets = g_array_new (FALSE, FALSE, sizeof (gint32));
  self->gen_cands = g_array_new (FALSE, FALSE, sizeof (gint32));
}

/* EWC++ state for self->lora: task 0 is the adapter as the loop gets it
 * (ruv-ewc.h). Called with self->lock held, or before self is shared. */
static void
set_base (RuvSonaLlm *self,
          RuvEwc     *ewc)
{
  g_autofree float *w0 = g_new (float, MAX (ruv_micro_lora_get_n_params (self->lora), 1));

  ruv_micro_lora_get_params (self->lora, w0);
  ruv_ewc_set_base (ewc, w0, self->config.sona.ewc_base_weight);
}

static RuvEwc *
new_ewc (RuvSonaLlm *self)
{
  RuvEwc *ewc = ruv_ewc_new (ruv_micro_lora_get_n_params (self->lora),
                             self->config.sona.ewc_decay);

  set_base (self, ewc);
  return ewc;
}

RuvSonaLlm *
ruv_sona_llm_new (RuvModel               *model,
                  const RuvSonaLlmConfig *config,
                  GError                **error)
{
  RuvSonaLlmConfig defaults;
  g_autoptr(RuvMicroLora) lora = NULL;
  RuvSonaLlm *self;

  g_return_val_if_fail (RUV_IS_MODEL (model), NULL);
  if (config == NULL)
    {
      ruv_sona_llm_config_init (&defaults, model);
      config = &defaults;
    }
  if (!ruv_sona_llm_config_validate (config, error))
    return NULL;
  lora = ruv_micro_lora_new_for_model (model, &config->micro_lora, error);
  if (lora == NULL)
    return NULL;
  self = g_object_new (RUV_TYPE_SONA_LLM, NULL);
  self->config = *config;
  self->model = g_object_ref (model);
  self->w = ruv_model_get_weights (model);
  self->lora = g_steal_pointer (&lora);
  self->ewc = new_ewc (self);
  return self;
}

void
ruv_sona_llm_set_lora (RuvSonaLlm   *self,
                       RuvMicroLora *lora)
{
  g_return_if_fail (RUV_IS_MICRO_LORA (lora));
  g_mutex_lock (&self->lock);
  g_set_object (&self->lora, lora);
  ruv_ewc_free (self->ewc);
  self->ewc = new_ewc (self);
  g_ptr_array_set_size (self->samples, 0);
  g_ptr_array_set_size (self->ensemble, 0);
  self->ewc_task_n = 0;
  self->lora_epoch++;
  g_mutex_unlock (&self->lock);
}

gboolean
ruv_sona_llm_load_params (RuvSonaLlm  *self,
                          const float *params)
{
  gboolean ok;

  g_return_val_if_fail (RUV_IS_SONA_LLM (self), FALSE);
  g_mutex_lock (&self->lock);
  ok = ruv_micro_lora_set_params (self->lora, params);
  if (ok)
    {
      ruv_ewc_reset (self->ewc);
      set_base (self, self->ewc);
      self->ewc_task_n = 0;
      /* a consolidation or deep run started on the old weights is dropped */
      self->lora_epoch++;
    }
  g_mutex_unlock (&self->lock);
  return ok;
}

RuvMicroLora *
ruv_sona_llm_get_lora (RuvSonaLlm *self)
{
  return self->lora;
}

RuvEwc *
ruv_sona_llm_get_ewc (RuvSonaLlm *self)
{
  return self->ewc;
}

RuvModel *
ruv_sona_llm_get_model (RuvSonaLlm *self)
{
  return self->model;
}

const RuvSonaLlmConfig *
ruv_sona_llm_get_config (RuvSonaLlm *self)
{
  return &self->config;
}

/* ---- instant loop ----------------------------------------------------------------------- */

static Sample *
find_sample (RuvSonaLlm *self,
             const char *key)
{
  guint i;

  for (i = 0; key != NULL && i < self->samples->len; i++)
    {
      Sample *s = g_ptr_array_index (self->samples, i);

      if (s->key != NULL && strcmp (s->key, key) == 0)
        return s;
    }
  return NULL;
}

gboolean
ruv_sona_llm_instant_adapt (RuvSonaLlm          *self,
                            RuvSonaTrace        *trace,
                            const char          *key,
                            float                quality,
                            float                reward,
                            RuvAdaptationResult *result,
                            GError             **error)
{
  RuvAdaptationResult res;
  gint64 t0 = g_get_monotonic_time ();
  gsize np;
  float *g;
  Sample *old;
  float r, r_eff;
  double j;

  g_return_val_if_fail (RUV_IS_SONA_LLM (self), FALSE);
  g_return_val_if_fail (trace != NULL, FALSE);
  memset (&res, 0, sizeof res);
  res.loss_after = NAN;

  r = isnan (reward) ? 2.0f * quality - 1.0f : reward;
  g_mutex_lock (&self->lock);
  if (!isfinite (quality) || !isfinite (r))
    {
      self->stats.instant_skipped++;
      g_mutex_unlock (&self->lock);
      ruv_sona_trace_free (trace);
      res.skipped = TRUE;
      if (result != NULL)
        *result = res;
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA,
                   "rating refused: quality %g, reward %g are not finite", quality, r);
      return FALSE;
    }
  r = CLAMP (r, -1.0f, 1.0f);
  quality = CLAMP (quality, 0.0f, 1.0f);
  old = find_sample (self, key);
  r_eff = old != NULL ? r - old->reward : r;

  ruv_micro_lora_clear_gradients (self->lora);
  j = r_eff != 0.0f
      ? _ruv_sona_backward_locked (self, trace, self->config.sona.instant_max_tokens,
                                   self->config.sona.instant_candidates, -r_eff, TRUE, quality)
      : _ruv_sona_pass (self, &self->work, self->lora, trace, 1, 1, FALSE, 0.0f, FALSE);
  if (!isfinite (j))
    {
      ruv_micro_lora_clear_gradients (self->lora);
      self->stats.instant_skipped++;
      g_mutex_unlock (&self->lock);
      ruv_sona_trace_free (trace);
      res.skipped = TRUE;
      if (result != NULL)
        *result = res;
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA,
                   "rating refused: the trace does not match the adapters or gives a "
                   "non-finite gradient");
      return FALSE;
    }
  res.loss = -r * j;
  if (r_eff != 0.0f)
    {
      np = ruv_micro_lora_get_n_params (self->lora);
      g = _ruv_sona_scratch (&self->work, SC_GRAD, np);
      ruv_micro_lora_get_mean_gradients (self->lora, g);
      ruv_ewc_update_fisher (self->ewc, g);
      res.applied = ruv_micro_lora_apply_gradient_bounded (
          self->lora, g, self->config.instant_lr, self->ewc, self->config.sona.ewc_lambda,
          (double) self->config.sona.max_step_nats * fabsf (r_eff), &res.grad_norm, NULL);
      ruv_micro_lora_clear_gradients (self->lora);
    }
  res.samples_used = 1;
  if (res.applied)
    self->stats.instant_updates++;

  if (old != NULL)
    {
      self->deep_accum += fabsf (r) - fabsf (old->reward);
      g_thread_pool_push (self->reaper, old->trace, NULL);
      old->trace = trace;
      old->reward = r;
      old->quality = quality;
      old->consolidated = FALSE;
      self->stats.rerated++;
    }
  else
    {
      Sample *s = g_new0 (Sample, 1);

      s->trace = trace;
      s->key = g_strdup (key);
      s->reward = r;
      s->quality = quality;
      g_ptr_array_add (self->samples, s);
      self->deep_accum += fabsf (r);
      while (self->samples->len > self->config.max_pending_samples)
        {
          Sample *d = g_ptr_array_steal_index (self->samples, 0);

          g_thread_pool_push (self->reaper, g_steal_pointer (&d->trace), NULL);
          sample_free (d);
          self->stats.dropped_samples++;
        }
    }
  res.latency_us = (guint64) (g_get_monotonic_time () - t0);
  j = _ruv_sona_pass (self, &self->work, self->lora, trace, self->config.sona.instant_max_tokens,
                      self->config.sona.instant_candidates, FALSE, 0.0f, FALSE);
  res.loss_after = -r * j;
  g_mutex_unlock (&self->lock);
  if (result != NULL)
    *result = res;
  return TRUE;
}

void
ruv_sona_llm_get_stats (RuvSonaLlm           *self,
                        RuvLearningLoopStats *stats)
{
  guint i;

  g_mutex_lock (&self->lock);
  *stats = self->stats;
  stats->stored_samples = self->samples->len;
  stats->pending_samples = self->bg_in_flight;
  for (i = 0; i < self->samples->len; i++)
    stats->pending_samples += ((Sample *) g_ptr_array_index (self->samples, i))->consolidated
                              ? 0 : 1;
  stats->deep_accumulator = self->deep_accum;
  ruv_micro_lora_get_stats (self->lora, &stats->lora);
  g_mutex_unlock (&self->lock);
}

gboolean
ruv_sona_llm_forward (RuvSonaLlm      *self,
                      gint64           layer,
                      RuvTargetModule  module,
                      const float     *x,
                      gsize            n_in,
                      float           *out,
                      gsize            n_out,
                      GError         **error)
{
  return ruv_micro_lora_forward (self->lora, layer, module, x, n_in, out, n_out, error);
}

void
ruv_sona_llm_reset (RuvSonaLlm *self)
{
  g_mutex_lock (&self->lock);
  ruv_micro_lora_reset (self->lora);
  ruv_ewc_reset (self->ewc);
  set_base (self, self->ewc);
  g_ptr_array_set_size (self->samples, 0);
  g_ptr_array_set_size (self->ensemble, 0);
  memset (&self->stats, 0, sizeof self->stats);
  self->deep_accum = 0.0;
  self->last_background_us = 0;
  self->ewc_task_n = 0;
  self->lora_epoch++;
  g_mutex_unlock (&self->lock);
}
