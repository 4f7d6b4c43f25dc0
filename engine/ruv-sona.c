/* ruv-sona.c — SONA's instant, background and deep loops; the truncated
 * backward pass through the final norm and LM head (see ruv-sona.h).
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "rk.h"
#include "rk-fp16.h"
#include "ruv-error.h"
#include "ruv-model-private.h"
#include "ruv-sona.h"

#define HEAD_CHUNK 256

/* Scratch slots of the backward pass. */
enum
{
  SC_POS,       /* gint64 (nsel): the positions used */
  SC_X,         /* (nsel, n_embd): residuals with the adapters' deltas */
  SC_DJ,        /* (nsel, n_embd): dJ/dx */
  SC_ROWP,      /* const float * (nsel): one adapter's input rows */
  SC_HALF,      /* (nsel, n_in): f16 inputs converted */
  SC_IDS,       /* gint32 (nsel, k + 1): candidate ids per position */
  SC_SLOT,      /* gint32 (nsel, k + 1): their rows in SC_ROWS */
  SC_UNIQ,      /* gint32: the distinct candidate ids */
  SC_HASH,      /* gint32: open-addressing table id -> SC_UNIQ index */
  SC_ROWS,      /* (n_uniq, n_embd): dequantized LM-head rows */
  SC_Z,         /* logits of one position (k + 1 or n_vocab) */
  SC_H,         /* (n_embd): normed residual */
  SC_GH,        /* (n_embd): dJ/dh */
  SC_MATMUL,    /* rk_matmul scratch (full-vocabulary head) */
  SC_GRAD,      /* (n_params): a combined gradient */
  SC_NS,        /* gint64 (nsel): candidates per position */
  N_SCRATCH
};

/* ---- traces --------------------------------------------------------------- */

struct _RuvSonaTrace
{
  gint64    n_tok;
  gint64    n_embd;
  gint64    n_cand;
  gsize     n_adapters;
  gint64   *ad_layer;
  gint     *ad_module;
  gint64   *ad_n_in;
  gint64   *ad_n_out;
  gint     *ad_rank;
  gboolean  half;       /* inputs kept as f16 (gradient_checkpointing) */
  gint32   *target;     /* (n_tok) */
  float    *x_base;     /* (n_tok, n_embd) */
  gint32   *cand;       /* (n_tok, n_cand) */
  gpointer *inputs;     /* per adapter: (n_tok, n_in) floats or f16, or NULL */
  gboolean *is_set;     /* (n_tok) */
};

static gboolean
adapter_feeds_residual (const RuvLoraAdapter *ad,
                        gint64                n_embd)
{
  return (RUV_TARGET_BIT (ad->module) & RUV_TARGET_RESIDUAL_MASK) && ad->n_out == n_embd;
}

RuvSonaTrace *
ruv_sona_trace_new (RuvMicroLora *lora,
                    gint64        n_tok,
                    gint64        n_embd,
                    gint64        n_cand)
{
  RuvSonaTrace *tr;
  gsize i;

  g_return_val_if_fail (RUV_IS_MICRO_LORA (lora), NULL);
  g_return_val_if_fail (n_tok >= 1 && n_tok <= 65536 && n_embd >= 1 && n_embd <= (1 << 20) &&
                        n_cand >= 0 && n_cand <= 4096, NULL);

  tr = g_new0 (RuvSonaTrace, 1);
  tr->n_tok = n_tok;
  tr->n_embd = n_embd;
  tr->n_cand = n_cand;
  tr->half = ruv_micro_lora_get_config (lora)->gradient_checkpointing;
  tr->n_adapters = ruv_micro_lora_get_n_adapters (lora);
  tr->ad_layer = g_new0 (gint64, tr->n_adapters + 1);
  tr->ad_module = g_new0 (gint, tr->n_adapters + 1);
  tr->ad_n_in = g_new0 (gint64, tr->n_adapters + 1);
  tr->ad_n_out = g_new0 (gint64, tr->n_adapters + 1);
  tr->ad_rank = g_new0 (gint, tr->n_adapters + 1);
  tr->inputs = g_new0 (gpointer, tr->n_adapters + 1);
  for (i = 0; i < tr->n_adapters; i++)
    {
      const RuvLoraAdapter *ad = ruv_micro_lora_get_adapter (lora, i);

      tr->ad_layer[i] = ad->layer;
      tr->ad_module[i] = ad->module;
      tr->ad_n_in[i] = ad->n_in;
      tr->ad_n_out[i] = ad->n_out;
      tr->ad_rank[i] = ad->rank;
      if (adapter_feeds_residual (ad, n_embd))
        tr->inputs[i] = g_malloc0 ((gsize) n_tok * ad->n_in *
                                   (tr->half ? sizeof (rk_fp16) : sizeof (float)));
    }
  tr->target = g_new0 (gint32, n_tok);
  tr->x_base = g_new0 (float, n_tok * n_embd);
  tr->cand = g_new0 (gint32, MAX (n_tok * n_cand, 1));
  tr->is_set = g_new0 (gboolean, n_tok);
  return tr;
}

void
ruv_sona_trace_free (RuvSonaTrace *tr)
{
  gsize i;

  if (tr == NULL)
    return;
  for (i = 0; i < tr->n_adapters; i++)
    g_free (tr->inputs[i]);
  g_free (tr->inputs);
  g_free (tr->ad_layer);
  g_free (tr->ad_module);
  g_free (tr->ad_n_in);
  g_free (tr->ad_n_out);
  g_free (tr->ad_rank);
  g_free (tr->target);
  g_free (tr->x_base);
  g_free (tr->cand);
  g_free (tr->is_set);
  g_free (tr);
}

gint64
ruv_sona_trace_get_n_tokens (const RuvSonaTrace *tr)
{
  return tr->n_tok;
}

static gboolean
finite_vec (const float *v,
            gint64       n)
{
  gint64 i;

  for (i = 0; i < n; i++)
    if (!isfinite (v[i]))
      return FALSE;
  return TRUE;
}

/* The trace was made for this adapter layout. */
static gboolean
trace_matches (const RuvSonaTrace *tr,
               RuvMicroLora       *lora)
{
  gsize i;

  if (tr->n_adapters != ruv_micro_lora_get_n_adapters (lora))
    return FALSE;
  for (i = 0; i < tr->n_adapters; i++)
    {
      const RuvLoraAdapter *ad = ruv_micro_lora_get_adapter (lora, i);

      if (ad->layer != tr->ad_layer[i] || (gint) ad->module != tr->ad_module[i] ||
          ad->n_in != tr->ad_n_in[i] || ad->n_out != tr->ad_n_out[i] ||
          ad->rank != tr->ad_rank[i])
        return FALSE;
    }
  return TRUE;
}

/* y += s B (A u) */
static void
adapter_delta_add (const RuvLoraAdapter *ad,
                   const float          *u,
                   float                 sign,
                   float                *y)
{
  float v[256];
  gint64 r, i, o;

  for (r = 0; r < ad->rank; r++)
    {
      float s = 0.0f;

      for (i = 0; i < ad->n_in; i++)
        s += ad->a[r * ad->n_in + i] * u[i];
      v[r] = s * ad->scale * sign;
    }
  for (o = 0; o < ad->n_out; o++)
    {
      float s = 0.0f;

      for (r = 0; r < ad->rank; r++)
        s += ad->b[o * ad->rank + r] * v[r];
      y[o] += s;
    }
}

static void
trace_get_input (const RuvSonaTrace *tr,
                 gsize               a,
                 gint64              t,
                 float              *out)
{
  gint64 n = tr->ad_n_in[a], i;

  if (tr->half)
    {
      const rk_fp16 *src = (const rk_fp16 *) tr->inputs[a] + t * n;

      for (i = 0; i < n; i++)
        out[i] = rk_fp16_to_fp32 (src[i]);
    }
  else
    memcpy (out, (const float *) tr->inputs[a] + t * n, n * sizeof (float));
}

gboolean
ruv_sona_trace_set_position (RuvSonaTrace       *tr,
                             RuvMicroLora       *lora,
                             gint64              t,
                             gint32              target,
                             const float        *x_final,
                             const float *const *inputs,
                             const gint32       *cand,
                             GError            **error)
{
  float *xb;
  gsize a;
  gint64 i;

  if (t < 0 || t >= tr->n_tok || target < 0 || !trace_matches (tr, lora) ||
      !finite_vec (x_final, tr->n_embd))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                   "trace position %" G_GINT64_FORMAT ": bad index, target, adapter layout or "
                   "non-finite activations", t);
      return FALSE;
    }
  for (a = 0; a < tr->n_adapters; a++)
    if (tr->inputs[a] != NULL && (inputs == NULL || inputs[a] == NULL ||
                                  !finite_vec (inputs[a], tr->ad_n_in[a])))
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                     "trace position %" G_GINT64_FORMAT ": input of adapter %" G_GSIZE_FORMAT
                     " missing or non-finite", t, a);
        return FALSE;
      }
  for (i = 0; cand != NULL && i < tr->n_cand; i++)
    if (cand[i] < 0)
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER, "negative candidate token id");
        return FALSE;
      }

  xb = tr->x_base + t * tr->n_embd;
  memcpy (xb, x_final, tr->n_embd * sizeof (float));
  tr->target[t] = target;
  if (cand != NULL && tr->n_cand > 0)
    memcpy (tr->cand + t * tr->n_cand, cand, tr->n_cand * sizeof (gint32));
  ruv_micro_lora_lock (lora);
  for (a = 0; a < tr->n_adapters; a++)
    {
      const RuvLoraAdapter *ad = ruv_micro_lora_get_adapter (lora, a);
      gint64 n = tr->ad_n_in[a];

      if (tr->inputs[a] == NULL)
        continue;
      if (tr->half)
        {
          rk_fp16 *dst = (rk_fp16 *) tr->inputs[a] + t * n;

          for (i = 0; i < n; i++)
            dst[i] = rk_fp32_to_fp16 (inputs[a][i]);
        }
      else
        memcpy ((float *) tr->inputs[a] + t * n, inputs[a], n * sizeof (float));
      /* What the forward pass added (nothing when disabled). */
      if (ruv_micro_lora_get_enabled (lora))
        {
          g_autofree float *u = g_new (float, n);

          trace_get_input (tr, a, t, u);
          adapter_delta_add (ad, u, -1.0f, xb);
        }
    }
  ruv_micro_lora_unlock (lora);
  tr->is_set[t] = TRUE;
  return TRUE;
}

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
  c->training.ewc_lambda = 100.0f;
  c->sona.ewc_decay = RUV_EWC_DEFAULT_DECAY;
  /* The instant / background pull must be comparable to 1 / lr for EWC++
   * to hold anything: per-sample gradients of the per-token objective are
   * ~1e-2, so F ~ 1e-4 and lambda 1e4 gives lambda F ~ 1 (measured by
   * /engine/lora/engine/learns: lambda 100 changed nothing, 1e4 cut the
   * drift of neutral text's likelihood by a sixth to a third). */
  c->sona.ewc_lambda = RUV_SONA_DEFAULT_EWC_LAMBDA;
  c->sona.instant_max_tokens = 16;
  c->sona.instant_candidates = 16;
  c->sona.background_candidates = 0;
  c->sona.background_lr = 0.05f;
  c->sona.ensemble_size = 4;
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
  else if (c->sona.instant_max_tokens < 1 || c->sona.instant_max_tokens > 4096)
    bad = "sona.instant_max_tokens (1 .. 4096)";
  else if (c->sona.instant_candidates < 1 || c->sona.instant_candidates > 4096 ||
           c->sona.background_candidates < 0 || c->sona.background_candidates > 4096)
    bad = "candidate counts (1 .. 4096; background 0 = full vocabulary)";
  else if (c->sona.ensemble_size < 1 || c->sona.ensemble_size > 64)
    bad = "sona.ensemble_size (1 .. 64)";
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

typedef struct
{
  RuvSonaTrace *trace;
  char         *key;
  float         reward;
  float         quality;
  gboolean      consolidated;
} Sample;

static void
sample_free (gpointer p)
{
  Sample *s = p;

  ruv_sona_trace_free (s->trace);
  g_free (s->key);
  g_free (s);
}

struct _RuvSonaLlm
{
  GObject           parent_instance;
  RuvSonaLlmConfig  config;
  RuvModel         *model;
  const RuvWeights *w;
  RuvMicroLora     *lora;
  RuvEwc           *ewc;
  GMutex            lock;           /* everything below and weight writes */
  GPtrArray        *samples;        /* Sample, oldest first */
  GPtrArray        *ensemble;       /* float[n_params] snapshots, oldest first */
  RuvSonaUpdatedFunc updated_func;
  gpointer          updated_data;
  GArray           *gen_targets;    /* generation capture: gint32 per token */
  GArray           *gen_cands;      /* gint32, gen_k per token */
  gint64            gen_k;
  gint64            gen_max;        /* 0: not capturing */
  GThreadPool      *reaper;         /* frees traces the instant loop replaced or
                                     * dropped (a few MB each: unmapping them on
                                     * the rating's path cost ~0.2 ms) */
  gint64            last_background_us;
  double            deep_accum;
  RuvLearningLoopStats stats;
  /* worker */
  GThread          *worker;
  GMutex            wlock;
  GCond             wcond;
  gboolean          wstop;
  /* backward-pass scratch (under lock), grown on demand and reused, so a
   * rating allocates nothing once the buffers have reached their size */
  gpointer          scratch[N_SCRATCH];
  gsize             scratch_len[N_SCRATCH];
};

static gpointer
scratch_bytes (RuvSonaLlm *self,
               int         slot,
               gsize       nbytes)
{
  if (self->scratch_len[slot] < nbytes)
    {
      g_free (self->scratch[slot]);
      /* grow by half again, so slowly rising sizes settle quickly */
      nbytes = MAX (nbytes, self->scratch_len[slot] + self->scratch_len[slot] / 2);
      self->scratch[slot] = g_malloc (nbytes);
      self->scratch_len[slot] = nbytes;
    }
  return self->scratch[slot];
}

static float *
scratch (RuvSonaLlm *self,
         int         slot,
         gsize       n)
{
  return scratch_bytes (self, slot, n * sizeof (float));
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
  int i;

  g_ptr_array_unref (self->samples);
  g_ptr_array_unref (self->ensemble);
  g_thread_pool_free (self->reaper, FALSE, TRUE);   /* frees what is queued */
  g_array_unref (self->gen_targets);
  g_array_unref (self->gen_cands);
  ruv_ewc_free (self->ewc);
  for (i = 0; i < N_SCRATCH; i++)
    g_free (self->scratch[i]);
  g_mutex_clear (&self->lock);
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
  g_mutex_init (&self->wlock);
  g_cond_init (&self->wcond);
  self->samples = g_ptr_array_new_with_free_func (sample_free);
  self->ensemble = g_ptr_array_new_with_free_func (g_free);
  self->reaper = g_thread_pool_new (reap_trace, NULL, 1, FALSE, NULL);
  self->gen_targets = g_array_new (FALSE, FALSE, sizeof (gint32));
  self->gen_cands = g_array_new (FALSE, FALSE, sizeof (gint32));
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
  self->ewc = ruv_ewc_new (ruv_micro_lora_get_n_params (self->lora), config->sona.ewc_decay);
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
  self->ewc = ruv_ewc_new (ruv_micro_lora_get_n_params (lora), self->config.sona.ewc_decay);
  g_ptr_array_set_size (self->samples, 0);
  g_ptr_array_set_size (self->ensemble, 0);
  g_mutex_unlock (&self->lock);
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

/* ---- the backward pass --------------------------------------------------------------- */

static float
dot (const float *a,
     const float *b,
     gint64       n)
{
  return rk_get_traits (RK_TYPE_F32)->vec_dot ((int) n, a, b);
}

/* h = rmsnorm (x) * output_norm; returns 1 / rms. */
static double
head_norm (const RuvWeights *w,
           const float      *x,
           float            *h)
{
  gint64 n = w->hp.n_embd, i;
  double ms = 0.0, inv;

  for (i = 0; i < n; i++)
    ms += (double) x[i] * x[i];
  inv = 1.0 / sqrt (ms / (double) n + w->hp.rms_eps);
  for (i = 0; i < n; i++)
    h[i] = (float) (x[i] * inv) * (w->output_norm != NULL ? w->output_norm[i] : 1.0f);
  return inv;
}

/* Back through h = w * x / rms given gh = dJ/dh (scaled by w in place):
 * dJ/dx = (g - xh * mean (g * xh)) / rms, g = dJ/dh * w, xh = x / rms. */
static void
head_norm_backward (const RuvWeights *w,
                    const float      *x,
                    double            inv,
                    float            *gh,
                    float            *dj_dx)
{
  gint64 n = w->hp.n_embd, i;
  double mg = 0.0;

  for (i = 0; i < n; i++)
    {
      gh[i] *= w->output_norm != NULL ? w->output_norm[i] : 1.0f;
      mg += (double) gh[i] * (x[i] * inv);
    }
  mg /= (double) n;
  for (i = 0; i < n; i++)
    dj_dx[i] = (float) ((gh[i] - (x[i] * inv) * mg) * inv);
}

/* Full vocabulary: J_t = log softmax (W_out h)[y]; the logits come from the
 * same matmul kernel as the forward pass (so J is the engine's own log p),
 * dJ/dh = W[y] - sum_c p_c W[c] from dequantized row chunks. */
static double
head_full (RuvSonaLlm  *self,
           const float *x,
           gint32       y,
           float       *dj_dx)
{
  const RuvWeights *w = self->w;
  const RuvWeight *wo = &w->output;
  gint64 n = w->hp.n_embd, nv = w->hp.n_vocab, c, c0;
  float *h = scratch (self, SC_H, n);
  float *z = scratch (self, SC_Z, nv);
  double inv, zmax = -INFINITY, sum = 0.0, jt;

  if (y < 0 || y >= nv)
    return NAN;
  inv = head_norm (w, x, h);
  rk_matmul (NULL, wo->type, wo->data, wo->row_stride, nv, n, h, n, 1, z, nv,
             scratch_bytes (self, SC_MATMUL, MAX (rk_matmul_scratch_size (wo->type, n, 1), 1)));
  for (c = 0; c < nv; c++)
    zmax = MAX (zmax, z[c]);
  for (c = 0; c < nv; c++)
    sum += exp (z[c] - zmax);
  jt = z[y] - zmax - log (sum);
  if (dj_dx == NULL || !isfinite (jt))
    return jt;
  {
    float *gh = scratch (self, SC_GH, n);
    float *rows = scratch (self, SC_ROWS, HEAD_CHUNK * n);

    memset (gh, 0, n * sizeof (float));
    for (c0 = 0; c0 < nv; c0 += HEAD_CHUNK)
      {
        gint64 m = MIN (HEAD_CHUNK, nv - c0);
        gint32 seq[HEAD_CHUNK];

        for (c = 0; c < m; c++)
          seq[c] = (gint32) (c0 + c);
        rk_get_rows (wo->type, wo->data, wo->row_stride, n, seq, m, rows);
        for (c = 0; c < m; c++)
          {
            float coef = (c0 + c == y ? 1.0f : 0.0f) - (float) (exp (z[c0 + c] - zmax) / sum);

            if (coef != 0.0f)
              rk_axpy (gh, coef, rows + c * n, (int) n);
          }
      }
    head_norm_backward (w, x, inv, gh, dj_dx);
  }
  return jt;
}

/* Sampled softmax over the candidates of every selected position at once:
 * the distinct candidate ids (top-K of each position plus its target) are
 * collected, their LM-head rows dequantized once into SC_ROWS (shared by the
 * positions, and by the logits and the gradient), then per position
 *   J_t = log softmax_S (R h)[y],  dJ/dh = R[y] - sum_c p_c R[c].
 * x: (nsel, n) residuals; dj: (nsel, n) or NULL. Returns sum_t J_t. */
static double
head_candidates (RuvSonaLlm         *self,
                 const RuvSonaTrace *tr,
                 const gint64       *pos,
                 gint64              nsel,
                 gint64              k,
                 const float        *xs,
                 float              *dj)
{
  const RuvWeights *w = self->w;
  const RuvWeight *wo = &w->output;
  gint64 n = w->hp.n_embd, nv = w->hp.n_vocab, kk = k + 1, j, c;
  gint32 *ids = scratch_bytes (self, SC_IDS, nsel * kk * sizeof (gint32));
  gint32 *slot = scratch_bytes (self, SC_SLOT, nsel * kk * sizeof (gint32));
  gint32 *uniq = scratch_bytes (self, SC_UNIQ, nsel * kk * sizeof (gint32));
  gint64 *ns = scratch_bytes (self, SC_NS, nsel * sizeof (gint64));
  gint64 hsize = 64, n_uniq = 0;
  gint32 *hash;
  float *rows, *h, *z, *gh;
  double jsum = 0.0;

  while (hsize < 2 * nsel * kk)
    hsize *= 2;
  hash = scratch_bytes (self, SC_HASH, hsize * sizeof (gint32));
  memset (hash, 0xff, hsize * sizeof (gint32));

  /* per position: candidates (valid, distinct) plus the target */
  for (j = 0; j < nsel; j++)
    {
      const gint32 *cand = tr->cand + pos[j] * tr->n_cand;
      gint32 y = tr->target[pos[j]], *id = ids + j * kk;
      gboolean has_y = FALSE;
      gint64 m = 0, i, q;

      if (y < 0 || y >= nv)
        return NAN;
      for (i = 0; i < k; i++)
        {
          gboolean dup = FALSE;

          if (cand[i] < 0 || cand[i] >= nv)
            continue;
          for (q = 0; q < m && !dup; q++)
            dup = id[q] == cand[i];
          if (!dup)
            id[m++] = cand[i];
          has_y |= cand[i] == y;
        }
      if (!has_y)
        id[m++] = y;
      ns[j] = m;
      for (i = 0; i < m; i++)
        {
          guint64 hk = ((guint64) (guint32) id[i] * G_GUINT64_CONSTANT (0x9E3779B97F4A7C15)) >> 40;
          gint64 b = (gint64) (hk & (guint64) (hsize - 1));

          while (hash[b] >= 0 && uniq[hash[b]] != id[i])
            b = (b + 1) & (hsize - 1);
          if (hash[b] < 0)
            {
              hash[b] = (gint32) n_uniq;
              uniq[n_uniq++] = id[i];
            }
          slot[j * kk + i] = hash[b];
        }
    }

  rows = scratch (self, SC_ROWS, n_uniq * n);
  rk_get_rows (wo->type, wo->data, wo->row_stride, n, uniq, n_uniq, rows);
  h = scratch (self, SC_H, n);
  gh = scratch (self, SC_GH, n);
  z = scratch (self, SC_Z, kk);
  for (j = 0; j < nsel; j++)
    {
      const float *x = xs + j * n;
      const gint32 *id = ids + j * kk, *sl = slot + j * kk;
      gint32 y = tr->target[pos[j]];
      double inv = head_norm (w, x, h), zmax = -INFINITY, sum = 0.0, jt = NAN;

      for (c = 0; c < ns[j]; c++)
        {
          z[c] = dot (rows + (gint64) sl[c] * n, h, n);
          zmax = MAX (zmax, z[c]);
        }
      for (c = 0; c < ns[j]; c++)
        sum += exp (z[c] - zmax);
      for (c = 0; c < ns[j]; c++)
        if (id[c] == y)
          jt = z[c] - zmax - log (sum);
      if (!isfinite (jt))
        return NAN;
      jsum += jt;
      if (dj == NULL)
        continue;
      memset (gh, 0, n * sizeof (float));
      for (c = 0; c < ns[j]; c++)
        {
          float coef = (id[c] == y ? 1.0f : 0.0f) - (float) (exp (z[c] - zmax) / sum);

          rk_axpy (gh, coef, rows + (gint64) sl[c] * n, (int) n);
        }
      head_norm_backward (w, x, inv, gh, dj + j * n);
    }
  return jsum;
}

/* Row pointers to adapter a's inputs at the selected positions (f16 traces
 * are converted into SC_HALF). */
static const float *const *
trace_rows (RuvSonaLlm         *self,
            const RuvSonaTrace *tr,
            gsize               a,
            const gint64       *pos,
            gint64              nsel)
{
  const float **rp = scratch_bytes (self, SC_ROWP, nsel * sizeof (float *));
  gint64 nin = tr->ad_n_in[a], j;

  if (tr->half)
    {
      float *buf = scratch (self, SC_HALF, nsel * nin);

      for (j = 0; j < nsel; j++)
        {
          trace_get_input (tr, a, pos[j], buf + j * nin);
          rp[j] = buf + j * nin;
        }
    }
  else
    for (j = 0; j < nsel; j++)
      rp[j] = (const float *) tr->inputs[a] + pos[j] * nin;
  return rp;
}

/* Mean J over the chosen positions; with weight != 0 accumulates
 * weight * dJ/dtheta (all or nothing). Caller holds self->lock. Allocates
 * nothing once the scratch buffers have grown to the trace's size. */
static double
trace_pass (RuvSonaLlm         *self,
            const RuvSonaTrace *tr,
            gint                max_tokens,
            gint                n_cand,
            gboolean            backward,
            float               weight,
            gboolean            train)
{
  RuvMicroLora *lora = self->lora;
  gint64 n = tr->n_embd, T = tr->n_tok, nsel, j, k, i;
  gint64 *pos;
  float *xs, *dj = NULL;
  double jsum = 0.0;
  gsize a;

  if (n != self->w->hp.n_embd || !trace_matches (tr, lora))
    return NAN;
  for (j = 0; j < T; j++)
    if (!tr->is_set[j])
      return NAN;

  nsel = max_tokens > 0 && T > max_tokens ? max_tokens : T;
  pos = scratch_bytes (self, SC_POS, nsel * sizeof (gint64));
  for (j = 0; j < nsel; j++)
    pos[j] = nsel == T ? j : (j * T) / nsel;
  k = n_cand > 0 && tr->n_cand > 0 ? MIN (n_cand, tr->n_cand) : 0;

  /* x_t = x_base_t + sum_a s B_a (A_a u_{a,t}) */
  xs = scratch (self, SC_X, nsel * n);
  for (j = 0; j < nsel; j++)
    memcpy (xs + j * n, tr->x_base + pos[j] * n, n * sizeof (float));
  for (a = 0; a < tr->n_adapters; a++)
    if (tr->inputs[a] != NULL)
      {
        const RuvLoraAdapter *ad = ruv_micro_lora_get_adapter (lora, a);
        const float *const *rp = trace_rows (self, tr, a, pos, nsel);

        for (j = 0; j < nsel; j++)
          {
            float *x = xs + j * n;
            gint r;

            for (r = 0; r < ad->rank; r++)
              {
                float v = dot (ad->a + r * ad->n_in, rp[j], ad->n_in) * ad->scale;
                const float *br = ad->b + r;

                for (i = 0; i < ad->n_out; i++)
                  x[i] += br[i * ad->rank] * v;
              }
          }
      }

  dj = backward ? scratch (self, SC_DJ, nsel * n) : NULL;
  if (k > 0)
    {
      jsum = head_candidates (self, tr, pos, nsel, k, xs, dj);
      if (!isfinite (jsum))
        return NAN;
    }
  else
    for (j = 0; j < nsel; j++)
      {
        double jt = head_full (self, xs + j * n, tr->target[pos[j]],
                               backward ? dj + j * n : NULL);

        if (!isfinite (jt))
          return NAN;
        jsum += jt;
      }
  if (backward)
    {
      for (i = 0; i < nsel * n; i++)
        {
          dj[i] /= (float) nsel;
          if (!isfinite (dj[i]))
            return NAN;
        }
      for (a = 0; a < tr->n_adapters; a++)
        if (tr->inputs[a] != NULL)
          /* inputs were checked when the trace was filled, dj just above */
          ruv_micro_lora_accumulate_checked (lora, a, trace_rows (self, tr, a, pos, nsel), dj,
                                             nsel, weight, train, FALSE);
    }
  return jsum / (double) nsel;
}

double
ruv_sona_llm_trace_objective (RuvSonaLlm         *self,
                              const RuvSonaTrace *trace,
                              gint                max_tokens,
                              gint                n_cand)
{
  double j;

  g_mutex_lock (&self->lock);
  j = trace_pass (self, trace, max_tokens, n_cand, FALSE, 0.0f, FALSE);
  g_mutex_unlock (&self->lock);
  return j;
}

static double
trace_backward_locked (RuvSonaLlm         *self,
                       const RuvSonaTrace *trace,
                       gint                max_tokens,
                       gint                n_cand,
                       float               weight,
                       gboolean            train,
                       float               quality)
{
  double j = trace_pass (self, trace, max_tokens, n_cand, TRUE, weight, train);

  if (isfinite (j))
    ruv_micro_lora_count_sample (self->lora, quality);
  return j;
}

double
ruv_sona_llm_trace_backward (RuvSonaLlm         *self,
                             const RuvSonaTrace *trace,
                             gint                max_tokens,
                             gint                n_cand,
                             float               weight,
                             gboolean            train)
{
  double j;

  g_mutex_lock (&self->lock);
  j = trace_backward_locked (self, trace, max_tokens, n_cand, weight, train, 0.5f);
  g_mutex_unlock (&self->lock);
  return j;
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
      ? trace_backward_locked (self, trace, self->config.sona.instant_max_tokens,
                               self->config.sona.instant_candidates, -r_eff, TRUE, quality)
      : trace_pass (self, trace, 1, 1, FALSE, 0.0f, FALSE);
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
      g = scratch (self, SC_GRAD, np);
      ruv_micro_lora_get_mean_gradients (self->lora, g);
      ruv_ewc_update_fisher (self->ewc, g);
      res.applied = ruv_micro_lora_apply_gradient (self->lora, g, self->config.instant_lr,
                                                   self->ewc, self->config.sona.ewc_lambda,
                                                   &res.grad_norm);
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
  j = trace_pass (self, trace, self->config.sona.instant_max_tokens,
                  self->config.sona.instant_candidates, FALSE, 0.0f, FALSE);
  res.loss_after = -r * j;
  g_mutex_unlock (&self->lock);
  if (result != NULL)
    *result = res;
  return TRUE;
}

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
      j = trace_backward_locked (self, s->trace, 0, c->sona.background_candidates, -s->reward,
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
      double j = trace_pass (self, s[i].trace, 0, self->config.sona.background_candidates,
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
          if (isfinite (trace_backward_locked (self, s->trace, 0,
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

void
ruv_sona_llm_get_stats (RuvSonaLlm           *self,
                        RuvLearningLoopStats *stats)
{
  guint i;

  g_mutex_lock (&self->lock);
  *stats = self->stats;
  stats->stored_samples = self->samples->len;
  stats->pending_samples = 0;
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
  g_ptr_array_set_size (self->samples, 0);
  g_ptr_array_set_size (self->ensemble, 0);
  memset (&self->stats, 0, sizeof self->stats);
  self->deep_accum = 0.0;
  self->last_background_us = 0;
  g_mutex_unlock (&self->lock);
}

/* ---- capture and scoring --------------------------------------------------------------- */

/* Decodes tokens, the last n_rows with logits (n_rows x n_vocab). */
static float *
decode_tail (RuvContext   *ctx,
             const gint32 *tokens,
             gint64        n_prompt,
             gint64        n_tokens,
             GError      **error)
{
  RuvModel *model = ruv_context_get_model (ctx);
  gint64 nv = ruv_model_get_vocab_size (model), rows = n_tokens - n_prompt;
  float *logits;

  if (n_prompt < 1 || n_tokens <= n_prompt || n_tokens > ruv_context_get_n_ctx (ctx))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "need a prompt and a response within the context (%" G_GINT64_FORMAT
                   " + %" G_GINT64_FORMAT " tokens)", n_prompt, n_tokens - n_prompt);
      return NULL;
    }
  logits = g_try_new (float, rows * nv);
  if (logits == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY, "no memory for %" G_GINT64_FORMAT
                   " rows of logits", rows);
      return NULL;
    }
  ruv_context_kv_clear (ctx);
  if ((n_prompt > 1 &&
       !ruv_context_decode (ctx, tokens, n_prompt - 1, 0, NULL, FALSE, error)) ||
      !ruv_context_decode (ctx, tokens + n_prompt - 1, rows, n_prompt - 1, logits, TRUE, error))
    {
      g_free (logits);
      return NULL;
    }
  return logits;
}

static double
row_logprob (const float *z,
             gint64       nv,
             gint32       y)
{
  double mx = -INFINITY, sum = 0.0;
  gint64 i;

  for (i = 0; i < nv; i++)
    mx = MAX (mx, z[i]);
  for (i = 0; i < nv; i++)
    sum += exp (z[i] - mx);
  return z[y] - mx - log (sum);
}

gboolean
ruv_sona_score_response (RuvContext   *ctx,
                         const gint32 *tokens,
                         gint64        n_prompt,
                         gint64        n_tokens,
                         double       *logp,
                         GError      **error)
{
  gint64 nv = ruv_model_get_vocab_size (ruv_context_get_model (ctx)), t;
  g_autofree float *logits = decode_tail (ctx, tokens, n_prompt, n_tokens, error);
  double s = 0.0;

  if (logits == NULL)
    return FALSE;
  for (t = 0; t < n_tokens - n_prompt; t++)
    s += row_logprob (logits + t * nv, nv, tokens[n_prompt + t]);
  *logp = s;
  return TRUE;
}

RuvSonaTrace *
ruv_sona_llm_capture (RuvSonaLlm   *self,
                      RuvContext   *ctx,
                      const gint32 *tokens,
                      gint64        n_prompt,
                      gint64        n_tokens,
                      double       *logp,
                      GError      **error)
{
  RuvMicroLora *lora = self->lora;
  gint64 nv = self->w->hp.n_vocab, n = self->w->hp.n_embd, rows, t;
  gint64 k = MAX (self->config.sona.instant_candidates, self->config.sona.background_candidates);
  g_autofree float *logits = NULL;
  g_autofree gint32 *cand = NULL;
  g_autofree const float **in = NULL;
  RuvSonaTrace *tr;
  double s = 0.0;
  gsize a, na = ruv_micro_lora_get_n_adapters (lora);

  g_return_val_if_fail (RUV_IS_SONA_LLM (self), NULL);
  if (ruv_context_get_model (ctx) != self->model)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA, "the context runs another model");
      return NULL;
    }
  k = MIN (k, nv);
  rows = n_tokens - n_prompt;
  ruv_context_set_lora (ctx, lora);
  if (rows >= 1)
    ruv_micro_lora_capture_begin (lora, n_prompt - 1, rows, n);
  logits = decode_tail (ctx, tokens, n_prompt, n_tokens, error);
  if (logits == NULL)
    {
      ruv_micro_lora_capture_end (lora);
      return NULL;
    }
  tr = ruv_sona_trace_new (lora, rows, n, k);
  cand = g_new (gint32, k);
  in = g_new0 (const float *, MAX (na, 1));
  for (t = 0; t < rows; t++)
    {
      const float *z = logits + t * nv;
      gint32 y = tokens[n_prompt + t];

      s += row_logprob (z, nv, y);
      rk_top_k (z, (int) nv, (int) k, cand, NULL);
      for (a = 0; a < na; a++)
        in[a] = ruv_micro_lora_capture_input (lora, a, t);
      if (ruv_micro_lora_capture_final (lora, t) == NULL ||
          !ruv_sona_trace_set_position (tr, lora, t, y, ruv_micro_lora_capture_final (lora, t),
                                        (const float *const *) in, cand, error))
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, RUV_ERROR, RUV_ERROR_SONA, "activations were not captured");
          ruv_micro_lora_capture_end (lora);
          ruv_sona_trace_free (tr);
          return NULL;
        }
    }
  ruv_micro_lora_capture_end (lora);
  if (logp != NULL)
    *logp = s;
  return tr;
}

/* ---- capture during generation --------------------------------------------------------- */

void
ruv_sona_llm_generation_begin (RuvSonaLlm *self,
                               RuvContext *ctx,
                               gint64      pos0,
                               gint64      max_tokens)
{
  gint64 k = MAX (self->config.sona.instant_candidates, self->config.sona.background_candidates);

  g_return_if_fail (RUV_IS_SONA_LLM (self));
  g_return_if_fail (pos0 >= 0);
  ruv_sona_llm_generation_abort (self);
  if (max_tokens < 1 || ruv_context_get_model (ctx) != self->model)
    return;
  ruv_context_set_lora (ctx, self->lora);
  self->gen_k = MIN (k, self->w->hp.n_vocab);
  self->gen_max = MIN (max_tokens, 65536);
  ruv_micro_lora_capture_begin (self->lora, pos0, self->gen_max, self->w->hp.n_embd);
}

void
ruv_sona_llm_generation_token (RuvSonaLlm  *self,
                               const float *logits,
                               gint32       token)
{
  guint n;

  g_return_if_fail (RUV_IS_SONA_LLM (self));
  if (self->gen_max == 0 || (gint64) self->gen_targets->len >= self->gen_max)
    return;
  n = self->gen_cands->len;
  g_array_set_size (self->gen_cands, n + (guint) self->gen_k);
  rk_top_k (logits, (int) self->w->hp.n_vocab, (int) self->gen_k,
            &g_array_index (self->gen_cands, gint32, n), NULL);
  g_array_append_val (self->gen_targets, token);
}

void
ruv_sona_llm_generation_abort (RuvSonaLlm *self)
{
  g_return_if_fail (RUV_IS_SONA_LLM (self));
  if (self->gen_max > 0)
    ruv_micro_lora_capture_end (self->lora);
  self->gen_max = 0;
  g_array_set_size (self->gen_targets, 0);
  g_array_set_size (self->gen_cands, 0);
}

RuvSonaTrace *
ruv_sona_llm_generation_end (RuvSonaLlm  *self,
                             GError     **error)
{
  RuvMicroLora *lora = self->lora;
  gsize na = ruv_micro_lora_get_n_adapters (lora), a;
  gint64 n = self->gen_targets->len, t;
  g_autofree const float **in = NULL;
  RuvSonaTrace *tr;

  g_return_val_if_fail (RUV_IS_SONA_LLM (self), NULL);
  if (self->gen_max == 0 || n == 0)
    {
      ruv_sona_llm_generation_abort (self);
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA, "no response tokens were captured");
      return NULL;
    }
  tr = ruv_sona_trace_new (lora, n, self->w->hp.n_embd, self->gen_k);
  in = g_new0 (const float *, MAX (na, 1));
  for (t = 0; t < n; t++)
    {
      const float *xf = ruv_micro_lora_capture_final (lora, t);

      for (a = 0; a < na; a++)
        in[a] = ruv_micro_lora_capture_input (lora, a, t);
      if (xf == NULL ||
          !ruv_sona_trace_set_position (tr, lora, t, g_array_index (self->gen_targets, gint32, t),
                                        xf, (const float *const *) in,
                                        &g_array_index (self->gen_cands, gint32, t * self->gen_k),
                                        error))
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, RUV_ERROR, RUV_ERROR_SONA,
                         "activations of response token %" G_GINT64_FORMAT " were not captured",
                         t);
          ruv_sona_trace_free (tr);
          ruv_sona_llm_generation_abort (self);
          return NULL;
        }
    }
  ruv_sona_llm_generation_abort (self);
  return tr;
}
