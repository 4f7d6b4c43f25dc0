/* ruv-lora.c — MicroLoRA adapters: forward, gradient accumulation, updates.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-ewc.h"
#include "ruv-lora.h"
#include "ruv-model-private.h"
#include "rk.h"

#define MAX_RANK   256
#define MAX_DIM    (1 << 20)

struct _RuvMicroLora
{
  GObject             parent_instance;
  RuvMicroLoraConfig  config;
  GMutex              lock;
  GArray             *adapters;     /* RuvLoraAdapter */
  gboolean            enabled;
  guint64             rng;          /* dropout masks */
  float              *drop;         /* dropout scratch (max n_in) */
  gsize               drop_len;
  float              *acc_tmp;      /* accumulate scratch: B^T and dL/dB^T */
  gsize               acc_len;
  float              *upd_w;        /* apply_gradient scratch (n_params each) */
  float              *upd_g;
  float              *upd_p;        /* the EWC++ pull */
  gsize               upd_len;
  /* stats */
  guint64             n_accum;      /* samples since the last update */
  guint64             samples;
  double              quality_sum;
  guint64             adaptations;
  guint64             skipped;
  guint64             clipped;
  guint64             forward_count;
  /* capture */
  gint64              cap_pos0;
  gint64              cap_n;        /* 0: not capturing */
  gint64              cap_embd;
  float             **cap_in;       /* per adapter (cap_n, n_in) or NULL */
  gsize               cap_n_in;
  float              *cap_final;    /* (cap_n, cap_embd) */
  gboolean           *cap_have_final;
};

G_DEFINE_FINAL_TYPE (RuvMicroLora, ruv_micro_lora, G_TYPE_OBJECT)

static const char *const tensor_stems[RUV_TARGET_COUNT] = {
  "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
};
static const char *const module_names[RUV_TARGET_COUNT] = {
  "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
};

const char *
ruv_target_module_tensor_stem (RuvTargetModule module)
{
  return (guint) module < RUV_TARGET_COUNT ? tensor_stems[module] : "unknown";
}

const char *
ruv_target_module_name (RuvTargetModule module)
{
  return (guint) module < RUV_TARGET_COUNT ? module_names[module] : "unknown";
}

/* ---- random numbers: splitmix64 ------------------------------------------ */

static guint64
rng_next (guint64 *s)
{
  guint64 z = (*s += G_GUINT64_CONSTANT (0x9E3779B97F4A7C15));

  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static float
rng_uniform (guint64 *s)
{
  return (float) (rng_next (s) >> 40) * (1.0f / 16777216.0f);
}

/* ---- configuration -------------------------------------------------------- */

static void
config_defaults (RuvMicroLoraConfig *config)
{
  memset (config, 0, sizeof *config);
  config->rank = 2;
  config->alpha = 4.0f;
  config->dropout = 0.0f;
  config->n_layers = 1;
  config->max_grad_norm = 1.0f;
  config->max_weight_abs = 1.0f;
  config->weight_decay = 0.0f;
  config->seed = 42;
}

void
ruv_micro_lora_config_for_hidden_dim (RuvMicroLoraConfig *config,
                                      gint64              hidden_dim)
{
  config_defaults (config);
  config->in_features = hidden_dim;
  config->out_features = hidden_dim;
  config->target_modules = RUV_TARGET_BIT (RUV_TARGET_Q_PROJ) | RUV_TARGET_BIT (RUV_TARGET_V_PROJ);
}

void
ruv_micro_lora_config_for_model (RuvMicroLoraConfig *config,
                                 RuvModel           *model)
{
  const RuvHParams *hp = &ruv_model_get_weights (model)->hp;

  config_defaults (config);
  config->in_features = hp->n_embd;
  config->out_features = hp->n_embd;
  config->target_modules = RUV_TARGET_RESIDUAL_MASK;
  config->n_layers = MIN (2, hp->n_layer);
}

gboolean
ruv_micro_lora_config_validate (const RuvMicroLoraConfig *c,
                                GError                  **error)
{
  const char *bad = NULL;

  if (c->rank < 1 || c->rank > 2)
    bad = "rank (1 or 2)";
  else if (!isfinite (c->alpha) || c->alpha <= 0.0f || c->alpha > 1024.0f)
    bad = "alpha (0 < alpha <= 1024)";
  else if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
    bad = "dropout (0 <= p < 1)";
  else if (c->target_modules == 0 || c->target_modules >= (1u << RUV_TARGET_COUNT))
    bad = "target_modules";
  else if (c->n_layers < 1 || c->n_layers > 4096)
    bad = "n_layers (1 .. 4096)";
  else if (!(c->max_grad_norm > 0.0f) || !isfinite (c->max_grad_norm))
    bad = "max_grad_norm (> 0)";
  else if (!(c->max_weight_abs > 0.0f) || !isfinite (c->max_weight_abs))
    bad = "max_weight_abs (> 0)";
  else if (!(c->weight_decay >= 0.0f) || !isfinite (c->weight_decay))
    bad = "weight_decay (>= 0)";
  if (bad != NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "MicroLoRA config: bad %s", bad);
      return FALSE;
    }
  return TRUE;
}

/* ---- feedback --------------------------------------------------------------- */

void
ruv_adapt_feedback_from_quality (RuvAdaptFeedback *feedback,
                                 float             quality)
{
  memset (feedback, 0, sizeof *feedback);
  feedback->quality = quality;
  feedback->layer = -1;
}

void
ruv_adapt_feedback_from_thumbs (RuvAdaptFeedback *feedback,
                                gboolean          up)
{
  ruv_adapt_feedback_from_quality (feedback, up ? 1.0f : 0.0f);
  feedback->has_reward = TRUE;
  feedback->reward = up ? 1.0f : -1.0f;
}

float
ruv_adapt_feedback_get_reward (const RuvAdaptFeedback *feedback)
{
  if (feedback->has_reward)
    return feedback->reward;
  return 2.0f * feedback->quality - 1.0f;
}

/* ---- object ----------------------------------------------------------------- */

static void
adapter_clear (RuvLoraAdapter *a)
{
  g_free (a->a);
  g_free (a->b);
  g_free (a->ga);
  g_free (a->gb);
}

static void
ruv_micro_lora_finalize (GObject *object)
{
  RuvMicroLora *self = RUV_MICRO_LORA (object);
  guint i;

  for (i = 0; i < self->adapters->len; i++)
    adapter_clear (&g_array_index (self->adapters, RuvLoraAdapter, i));
  ruv_micro_lora_capture_end (self);
  g_array_unref (self->adapters);
  g_free (self->drop);
  g_free (self->upd_w);
  g_free (self->acc_tmp);
  g_free (self->upd_g);
  g_free (self->upd_p);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (ruv_micro_lora_parent_class)->finalize (object);
}

static void
ruv_micro_lora_class_init (RuvMicroLoraClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ruv_micro_lora_finalize;
}

static void
ruv_micro_lora_init (RuvMicroLora *self)
{
  g_mutex_init (&self->lock);
  self->adapters = g_array_new (FALSE, TRUE, sizeof (RuvLoraAdapter));
  self->enabled = TRUE;
}

/* A's seeded draw depends on the seed, layer and module only, so reset()
 * reproduces it and adapters are independent of creation order. */
static void
init_a (const RuvMicroLoraConfig *config,
        RuvLoraAdapter           *ad)
{
  guint64 s = config->seed ^ ((guint64) ad->layer << 32) ^ ((guint64) ad->module << 8);
  float lim = 1.0f / sqrtf ((float) ad->n_in);
  gint64 i;

  for (i = 0; i < (gint64) ad->rank * ad->n_in; i++)
    ad->a[i] = (2.0f * rng_uniform (&s) - 1.0f) * lim;
}

RuvMicroLora *
ruv_micro_lora_new_empty (const RuvMicroLoraConfig *config)
{
  RuvMicroLora *self = g_object_new (RUV_TYPE_MICRO_LORA, NULL);

  self->config = *config;
  self->rng = config->seed ^ G_GUINT64_CONSTANT (0x5DEECE66D);
  return self;
}

RuvMicroLora *
ruv_micro_lora_copy (RuvMicroLora *self,
                     guint64       dropout_seed)
{
  RuvMicroLora *c;
  guint i;

  g_return_val_if_fail (RUV_IS_MICRO_LORA (self), NULL);
  c = ruv_micro_lora_new_empty (&self->config);
  c->rng = dropout_seed ^ G_GUINT64_CONSTANT (0x5DEECE66D);
  c->enabled = self->enabled;
  g_mutex_lock (&self->lock);
  for (i = 0; i < self->adapters->len; i++)
    {
      const RuvLoraAdapter *ad = &g_array_index (self->adapters, RuvLoraAdapter, i);
      gsize na = (gsize) ad->rank * ad->n_in, nb = (gsize) ad->n_out * ad->rank;
      RuvLoraAdapter cp = *ad;

      cp.a = g_memdup2 (ad->a, na * sizeof (float));
      cp.b = g_memdup2 (ad->b, nb * sizeof (float));
      cp.ga = g_new0 (float, na);
      cp.gb = g_new0 (float, nb);
      g_array_append_val (c->adapters, cp);
      if ((gsize) ad->n_in > c->drop_len)
        {
          g_free (c->drop);
          c->drop = g_new (float, ad->n_in);
          c->drop_len = ad->n_in;
        }
    }
  g_mutex_unlock (&self->lock);
  return c;
}

static gboolean
all_finite (const float *v,
            gsize        n)
{
  gsize i;

  for (i = 0; i < n; i++)
    if (!isfinite (v[i]))
      return FALSE;
  return TRUE;
}

gboolean
ruv_micro_lora_add_adapter (RuvMicroLora    *self,
                            gint64           layer,
                            RuvTargetModule  module,
                            gint64           n_in,
                            gint64           n_out,
                            gint             rank,
                            float            alpha,
                            const float     *a,
                            const float     *b,
                            GError         **error)
{
  RuvLoraAdapter ad;
  gsize na, nb;

  g_return_val_if_fail (RUV_IS_MICRO_LORA (self), FALSE);

  if ((guint) module >= RUV_TARGET_COUNT || layer < 0 || layer > 65535 ||
      n_in < 1 || n_in > MAX_DIM || n_out < 1 || n_out > MAX_DIM ||
      rank < 1 || rank > MAX_RANK || !isfinite (alpha) || alpha < 0.0f)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                   "adapter blk.%" G_GINT64_FORMAT ".%s: shape %" G_GINT64_FORMAT " -> %"
                   G_GINT64_FORMAT ", rank %d or alpha %g out of range", layer,
                   ruv_target_module_tensor_stem (module), n_in, n_out, rank, alpha);
      return FALSE;
    }
  if (ruv_micro_lora_find_index (self, layer, module) >= 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                   "adapter blk.%" G_GINT64_FORMAT ".%s is given twice", layer,
                   ruv_target_module_tensor_stem (module));
      return FALSE;
    }
  na = (gsize) rank * (gsize) n_in;
  nb = (gsize) n_out * (gsize) rank;
  if ((a != NULL && !all_finite (a, na)) || (b != NULL && !all_finite (b, nb)))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                   "adapter blk.%" G_GINT64_FORMAT ".%s has non-finite weights", layer,
                   ruv_target_module_tensor_stem (module));
      return FALSE;
    }

  memset (&ad, 0, sizeof ad);
  ad.layer = layer;
  ad.module = module;
  ad.n_in = n_in;
  ad.n_out = n_out;
  ad.rank = rank;
  ad.scale = alpha > 0.0f ? alpha / (float) rank : 1.0f;
  ad.a = g_new (float, na);
  ad.b = g_new0 (float, nb);
  ad.ga = g_new0 (float, na);
  ad.gb = g_new0 (float, nb);
  if (a != NULL)
    memcpy (ad.a, a, na * sizeof (float));
  else
    init_a (&self->config, &ad);
  if (b != NULL)
    memcpy (ad.b, b, nb * sizeof (float));

  g_mutex_lock (&self->lock);
  g_array_append_val (self->adapters, ad);
  if ((gsize) n_in > self->drop_len)
    {
      g_free (self->drop);
      self->drop = g_new (float, n_in);
      self->drop_len = n_in;
    }
  g_mutex_unlock (&self->lock);
  return TRUE;
}

RuvMicroLora *
ruv_micro_lora_new (const RuvMicroLoraConfig *config,
                    GError                  **error)
{
  g_autoptr(RuvMicroLora) self = NULL;
  gint64 il;
  int m;

  if (!ruv_micro_lora_config_validate (config, error))
    return NULL;
  if (config->in_features < 1 || config->in_features > MAX_DIM ||
      config->out_features < 1 || config->out_features > MAX_DIM)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "MicroLoRA config: bad in/out features %" G_GINT64_FORMAT " / %"
                   G_GINT64_FORMAT, config->in_features, config->out_features);
      return NULL;
    }
  self = ruv_micro_lora_new_empty (config);
  for (il = 0; il < config->n_layers; il++)
    for (m = 0; m < RUV_TARGET_COUNT; m++)
      if (config->target_modules & RUV_TARGET_BIT (m))
        if (!ruv_micro_lora_add_adapter (self, il, (RuvTargetModule) m, config->in_features,
                                         config->out_features, config->rank, config->alpha,
                                         NULL, NULL, error))
          return NULL;
  return g_steal_pointer (&self);
}

/* The (n_in, n_out) of module m in a model (as the weight is bound). */
static const RuvWeight *
model_weight (const RuvLayer  *l,
              RuvTargetModule  m)
{
  switch (m)
    {
    case RUV_TARGET_Q_PROJ: return &l->wq;
    case RUV_TARGET_K_PROJ: return &l->wk;
    case RUV_TARGET_V_PROJ: return &l->wv;
    case RUV_TARGET_O_PROJ: return &l->wo;
    case RUV_TARGET_GATE_PROJ: return &l->w_gate;
    case RUV_TARGET_UP_PROJ: return &l->w_up;
    case RUV_TARGET_DOWN_PROJ: return &l->w_down;
    case RUV_TARGET_COUNT:
    default:
      return NULL;
    }
}

RuvMicroLora *
ruv_micro_lora_new_for_model (RuvModel                 *model,
                              const RuvMicroLoraConfig *config,
                              GError                  **error)
{
  g_autoptr(RuvMicroLora) self = NULL;
  const RuvWeights *w;
  gint64 il, first;
  int m;

  g_return_val_if_fail (RUV_IS_MODEL (model), NULL);
  if (!ruv_micro_lora_config_validate (config, error))
    return NULL;
  w = ruv_model_get_weights (model);
  if (config->n_layers > w->hp.n_layer)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "MicroLoRA config: %" G_GINT64_FORMAT " layers asked, the model has %"
                   G_GINT64_FORMAT, config->n_layers, w->hp.n_layer);
      return NULL;
    }
  self = ruv_micro_lora_new_empty (config);
  self->config.in_features = w->hp.n_embd;
  self->config.out_features = w->hp.n_embd;
  first = w->hp.n_layer - config->n_layers;
  for (il = first; il < w->hp.n_layer; il++)
    for (m = 0; m < RUV_TARGET_COUNT; m++)
      if (config->target_modules & RUV_TARGET_BIT (m))
        {
          const RuvWeight *mw = model_weight (&w->layers[il], (RuvTargetModule) m);

          if (!ruv_micro_lora_add_adapter (self, il, (RuvTargetModule) m, mw->n_in, mw->n_out,
                                           config->rank, config->alpha, NULL, NULL, error))
            return NULL;
        }
  return g_steal_pointer (&self);
}

const RuvMicroLoraConfig *
ruv_micro_lora_get_config (RuvMicroLora *self)
{
  return &self->config;
}

gsize
ruv_micro_lora_get_n_adapters (RuvMicroLora *self)
{
  return self->adapters->len;
}

const RuvLoraAdapter *
ruv_micro_lora_get_adapter (RuvMicroLora *self,
                            gsize         index)
{
  if (index >= self->adapters->len)
    return NULL;
  return &g_array_index (self->adapters, RuvLoraAdapter, index);
}

gint
ruv_micro_lora_find_index (RuvMicroLora    *self,
                           gint64           layer,
                           RuvTargetModule  module)
{
  gint best = -1;
  guint i;

  for (i = 0; i < self->adapters->len; i++)
    {
      const RuvLoraAdapter *ad = &g_array_index (self->adapters, RuvLoraAdapter, i);

      if (ad->module != module)
        continue;
      if (layer >= 0 && ad->layer == layer)
        return (gint) i;
      if (layer < 0 && (best < 0 ||
                        ad->layer > g_array_index (self->adapters, RuvLoraAdapter, best).layer))
        best = (gint) i;
    }
  return best;
}

const RuvLoraAdapter *
ruv_micro_lora_find_adapter (RuvMicroLora    *self,
                             gint64           layer,
                             RuvTargetModule  module)
{
  gint i = ruv_micro_lora_find_index (self, layer, module);

  return i < 0 ? NULL : &g_array_index (self->adapters, RuvLoraAdapter, i);
}

void
ruv_micro_lora_set_enabled (RuvMicroLora *self,
                            gboolean      enabled)
{
  g_mutex_lock (&self->lock);
  self->enabled = !!enabled;
  g_mutex_unlock (&self->lock);
}

gboolean
ruv_micro_lora_get_enabled (RuvMicroLora *self)
{
  return self->enabled;
}

void
ruv_micro_lora_lock (RuvMicroLora *self)
{
  g_mutex_lock (&self->lock);
}

void
ruv_micro_lora_unlock (RuvMicroLora *self)
{
  g_mutex_unlock (&self->lock);
}

/* ---- forward ------------------------------------------------------------------ */

/* y += s B (A x) for one row. */
static void
adapter_row (const RuvLoraAdapter *ad,
             const float          *x,
             float                *y)
{
  float u[MAX_RANK];
  gint64 r, i, o;

  for (r = 0; r < ad->rank; r++)
    {
      const float *ar = ad->a + r * ad->n_in;
      float s = 0.0f;

      for (i = 0; i < ad->n_in; i++)
        s += ar[i] * x[i];
      u[r] = s * ad->scale;
    }
  for (o = 0; o < ad->n_out; o++)
    {
      const float *br = ad->b + o * ad->rank;
      float s = 0.0f;

      for (r = 0; r < ad->rank; r++)
        s += br[r] * u[r];
      y[o] += s;
    }
}

gboolean
ruv_micro_lora_apply_rows (RuvMicroLora    *self,
                           gint64           layer,
                           RuvTargetModule  module,
                           const float     *x,
                           gint64           m,
                           gint64           x_stride,
                           float           *y,
                           gint64           y_stride)
{
  const RuvLoraAdapter *ad;
  gint64 t;

  if (self == NULL || !self->enabled)
    return FALSE;
  g_mutex_lock (&self->lock);
  ad = ruv_micro_lora_find_adapter (self, layer, module);
  if (ad == NULL || layer < 0)
    {
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  for (t = 0; t < m; t++)
    adapter_row (ad, x + t * x_stride, y + t * y_stride);
  self->forward_count++;
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
forward_common (RuvMicroLora    *self,
                gint64           layer,
                RuvTargetModule  module,
                const float     *x,
                gsize            n_in,
                float           *out,
                gsize            n_out,
                gboolean         add,
                GError         **error)
{
  const RuvLoraAdapter *ad;

  g_return_val_if_fail (RUV_IS_MICRO_LORA (self), FALSE);
  g_mutex_lock (&self->lock);
  ad = ruv_micro_lora_find_adapter (self, layer, module);
  if (ad != NULL && ((gsize) ad->n_in != n_in || (gsize) ad->n_out != n_out))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                   "adapter blk.%" G_GINT64_FORMAT ".%s maps %" G_GINT64_FORMAT " -> %"
                   G_GINT64_FORMAT " values, given %" G_GSIZE_FORMAT " -> %" G_GSIZE_FORMAT,
                   ad->layer, ruv_target_module_tensor_stem (module), ad->n_in, ad->n_out,
                   n_in, n_out);
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  if (!add)
    memset (out, 0, n_out * sizeof (float));
  if (ad != NULL && self->enabled)
    {
      adapter_row (ad, x, out);
      self->forward_count++;
    }
  g_mutex_unlock (&self->lock);
  return TRUE;
}

gboolean
ruv_micro_lora_forward (RuvMicroLora    *self,
                        gint64           layer,
                        RuvTargetModule  module,
                        const float     *x,
                        gsize            n_in,
                        float           *out,
                        gsize            n_out,
                        GError         **error)
{
  return forward_common (self, layer, module, x, n_in, out, n_out, FALSE, error);
}

gboolean
ruv_micro_lora_forward_add (RuvMicroLora    *self,
                            gint64           layer,
                            RuvTargetModule  module,
                            const float     *x,
                            gsize            n_in,
                            float           *out,
                            gsize            n_out,
                            GError         **error)
{
  return forward_common (self, layer, module, x, n_in, out, n_out, TRUE, error);
}

/* ---- gradients -------------------------------------------------------------------- */

/* For y = s B A xd (xd = dropout (x)), given g = dL/dy:
 *   dL/dB[o][r] = s g[o] (A xd)[r]
 *   dL/dA[r][i] = s (B^T g)[r] xd[i]                                        */
gboolean
ruv_micro_lora_accumulate_rows (RuvMicroLora       *self,
                                gsize               index,
                                const float *const *x_rows,
                                const float        *dl_dy,
                                gint64              m,
                                float               weight,
                                gboolean            train)
{
  return ruv_micro_lora_accumulate_checked (self, index, x_rows, dl_dy, m, weight, train, TRUE);
}

static gboolean
accumulate_core (RuvMicroLora       *self,
                 gsize               index,
                 const float *const *x_rows,
                 const float        *ax,
                 const float        *dl_dy,
                 gint64              m,
                 float               weight,
                 gboolean            train,
                 gboolean            check)
{
  rk_vec_dot_fn dotf = rk_get_traits (RK_TYPE_F32)->vec_dot;
  RuvLoraAdapter *ad;
  float keep = 1.0f - self->config.dropout;
  float *bt, *gbt;
  gsize nt;
  gint64 t, r, i, o;

  if (index >= self->adapters->len || !isfinite (weight) || m < 0)
    return FALSE;
  ad = &g_array_index (self->adapters, RuvLoraAdapter, index);
  for (t = 0; check && t < m; t++)
    if (!all_finite (x_rows[t], (gsize) ad->n_in))
      return FALSE;
  if (check && !all_finite (dl_dy, (gsize) (m * ad->n_out)))
    return FALSE;

  /* B^T and dL/dB^T, so that every row's work is dots and axpys over
   * contiguous vectors (the kernels' SIMD) rather than rank-strided loops:
   *   v[r] = (B^T g)[r],  dL/dB^T[r] += s w (A xd)[r] g,  dL/dA[r] += s w v[r] xd */
  nt = (gsize) ad->rank * ad->n_out;
  if (self->acc_len < 2 * nt)
    {
      g_free (self->acc_tmp);
      self->acc_tmp = g_new (float, 2 * nt);
      self->acc_len = 2 * nt;
    }
  bt = self->acc_tmp;
  gbt = bt + nt;
  for (o = 0; o < ad->n_out; o++)
    for (r = 0; r < ad->rank; r++)
      bt[r * ad->n_out + o] = ad->b[o * ad->rank + r];
  memset (gbt, 0, nt * sizeof (float));

  for (t = 0; t < m; t++)
    {
      const float *gt = dl_dy + t * ad->n_out;
      const float *xd = x_rows[t];

      if (ax == NULL && train && self->config.dropout > 0.0f)
        {
          for (i = 0; i < ad->n_in; i++)
            self->drop[i] = rng_uniform (&self->rng) < keep ? x_rows[t][i] / keep : 0.0f;
          xd = self->drop;
        }
      for (r = 0; r < ad->rank; r++)
        {
          float u = (ax != NULL ? ax[t * ad->rank + r]
                                : dotf ((int) ad->n_in, ad->a + r * ad->n_in, xd)) *
                    ad->scale * weight;
          float v = dotf ((int) ad->n_out, bt + r * ad->n_out, gt) * ad->scale * weight;

          if (u != 0.0f)
            rk_axpy (gbt + r * ad->n_out, u, gt, (int) ad->n_out);
          if (v != 0.0f)
            rk_axpy (ad->ga + r * ad->n_in, v, xd, (int) ad->n_in);
        }
    }
  for (o = 0; o < ad->n_out; o++)
    for (r = 0; r < ad->rank; r++)
      ad->gb[o * ad->rank + r] += gbt[r * ad->n_out + o];
  return TRUE;
}

gboolean
ruv_micro_lora_accumulate_checked (RuvMicroLora       *self,
                                   gsize               index,
                                   const float *const *x_rows,
                                   const float        *dl_dy,
                                   gint64              m,
                                   float               weight,
                                   gboolean            train,
                                   gboolean            check)
{
  return accumulate_core (self, index, x_rows, NULL, dl_dy, m, weight, train, check);
}

gboolean
ruv_micro_lora_accumulate_ax (RuvMicroLora       *self,
                              gsize               index,
                              const float *const *x_rows,
                              const float        *ax,
                              const float        *dl_dy,
                              gint64              m,
                              float               weight)
{
  return accumulate_core (self, index, x_rows, ax, dl_dy, m, weight, FALSE, FALSE);
}

gboolean
ruv_micro_lora_accumulate (RuvMicroLora *self,
                           gsize         index,
                           const float  *x,
                           const float  *dl_dy,
                           gint64        m,
                           float         weight,
                           gboolean      train)
{
  g_autofree const float **rows = NULL;
  gint64 t, n_in;

  if (index >= self->adapters->len || m < 0)
    return FALSE;
  n_in = g_array_index (self->adapters, RuvLoraAdapter, index).n_in;
  rows = g_new (const float *, MAX (m, 1));
  for (t = 0; t < m; t++)
    rows[t] = x + t * n_in;
  return ruv_micro_lora_accumulate_rows (self, index, rows, dl_dy, m, weight, train);
}

void
ruv_micro_lora_count_sample (RuvMicroLora *self,
                             float         quality)
{
  self->n_accum++;
  self->samples++;
  self->quality_sum += isfinite (quality) ? CLAMP (quality, 0.0f, 1.0f) : 0.0f;
}

gboolean
ruv_micro_lora_adapt (RuvMicroLora           *self,
                      const float            *x,
                      gsize                   n_in,
                      const RuvAdaptFeedback *feedback,
                      GError                **error)
{
  const RuvLoraAdapter *ad;
  g_autofree float *dl_dy = NULL;
  RuvTargetModule module;
  float reward;
  gint idx;
  gsize o;

  g_return_val_if_fail (RUV_IS_MICRO_LORA (self), FALSE);
  g_return_val_if_fail (feedback != NULL, FALSE);

  module = feedback->has_source_module ? feedback->source_module : RUV_TARGET_COUNT;
  if (!feedback->has_source_module)
    {
      int mm;

      for (mm = 0; mm < RUV_TARGET_COUNT && module == RUV_TARGET_COUNT; mm++)
        if (ruv_micro_lora_find_index (self, feedback->layer, (RuvTargetModule) mm) >= 0)
          module = (RuvTargetModule) mm;
    }
  idx = module < RUV_TARGET_COUNT ? ruv_micro_lora_find_index (self, feedback->layer, module)
                                  : -1;
  if (idx < 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                   "no adapter on %s of layer %" G_GINT64_FORMAT,
                   ruv_target_module_name (module), feedback->layer);
      return FALSE;
    }
  ad = ruv_micro_lora_get_adapter (self, idx);
  if ((gsize) ad->n_in != n_in || feedback->gradient_estimate == NULL ||
      feedback->n_gradient != (gsize) ad->n_out)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                   "adapter %s of layer %" G_GINT64_FORMAT " takes %" G_GINT64_FORMAT
                   " inputs and a gradient estimate of %" G_GINT64_FORMAT " values, given %"
                   G_GSIZE_FORMAT " and %" G_GSIZE_FORMAT, ruv_target_module_name (module),
                   ad->layer, ad->n_in, ad->n_out, n_in,
                   feedback->gradient_estimate != NULL ? feedback->n_gradient : 0);
      return FALSE;
    }

  reward = ruv_adapt_feedback_get_reward (feedback);
  if (!isfinite (feedback->quality) || !isfinite (reward) || !all_finite (x, n_in) ||
      !all_finite (feedback->gradient_estimate, feedback->n_gradient))
    {
      self->skipped++;
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                   "non-finite input, gradient or feedback: update skipped");
      return FALSE;
    }
  /* L = -reward log p  =>  dL/dy = -reward d log p / dy */
  dl_dy = g_new (float, ad->n_out);
  for (o = 0; o < (gsize) ad->n_out; o++)
    dl_dy[o] = -reward * feedback->gradient_estimate[o];
  ruv_micro_lora_accumulate (self, idx, x, dl_dy, 1, 1.0f, TRUE);
  ruv_micro_lora_count_sample (self, feedback->quality);
  return TRUE;
}

/* ---- updates ------------------------------------------------------------------------- */

gsize
ruv_micro_lora_get_n_params (RuvMicroLora *self)
{
  gsize n = 0;
  guint i;

  for (i = 0; i < self->adapters->len; i++)
    {
      const RuvLoraAdapter *ad = &g_array_index (self->adapters, RuvLoraAdapter, i);

      n += (gsize) ad->rank * (ad->n_in + ad->n_out);
    }
  return n;
}

/* Copies weights (which = 0) or gradients (1) out, or weights in (2). */
static void
flat_io (RuvMicroLora *self,
         float        *v,
         int           which)
{
  gsize off = 0;
  guint i;

  for (i = 0; i < self->adapters->len; i++)
    {
      RuvLoraAdapter *ad = &g_array_index (self->adapters, RuvLoraAdapter, i);
      gsize na = (gsize) ad->rank * ad->n_in, nb = (gsize) ad->rank * ad->n_out;

      if (which == 0)
        {
          memcpy (v + off, ad->a, na * sizeof (float));
          memcpy (v + off + na, ad->b, nb * sizeof (float));
        }
      else if (which == 1)
        {
          memcpy (v + off, ad->ga, na * sizeof (float));
          memcpy (v + off + na, ad->gb, nb * sizeof (float));
        }
      else
        {
          memcpy (ad->a, v + off, na * sizeof (float));
          memcpy (ad->b, v + off + na, nb * sizeof (float));
        }
      off += na + nb;
    }
}

void
ruv_micro_lora_get_params (RuvMicroLora *self,
                           float        *out)
{
  flat_io (self, out, 0);
}

gboolean
ruv_micro_lora_set_params (RuvMicroLora *self,
                           const float  *params)
{
  if (!all_finite (params, ruv_micro_lora_get_n_params (self)))
    return FALSE;
  g_mutex_lock (&self->lock);
  flat_io (self, (float *) params, 2);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

void
ruv_micro_lora_get_gradients (RuvMicroLora *self,
                              float        *out)
{
  flat_io (self, out, 1);
}

void
ruv_micro_lora_get_mean_gradients (RuvMicroLora *self,
                                   float        *out)
{
  gsize n = ruv_micro_lora_get_n_params (self), i;

  flat_io (self, out, 1);
  if (self->n_accum == 1)
    return;
  for (i = 0; i < n; i++)
    out[i] = self->n_accum > 0 ? out[i] / (float) self->n_accum : 0.0f;
}

void
ruv_micro_lora_clear_gradients (RuvMicroLora *self)
{
  guint i;

  for (i = 0; i < self->adapters->len; i++)
    {
      RuvLoraAdapter *ad = &g_array_index (self->adapters, RuvLoraAdapter, i);

      memset (ad->ga, 0, (gsize) ad->rank * ad->n_in * sizeof (float));
      memset (ad->gb, 0, (gsize) ad->rank * ad->n_out * sizeof (float));
    }
  self->n_accum = 0;
}

gboolean
ruv_micro_lora_apply_gradient_bounded (RuvMicroLora *self,
                                       const float  *grad,
                                       float         learning_rate,
                                       RuvEwc       *ewc,
                                       float         ewc_lambda,
                                       double        max_change,
                                       double       *grad_norm,
                                       double       *predicted)
{
  const rk_type_traits *f32 = rk_get_traits (RK_TYPE_F32);
  gsize n = ruv_micro_lora_get_n_params (self), i;
  float *w, *g, *p;
  float lim = self->config.max_weight_abs;
  float wd = self->config.weight_decay;
  double norm, pnorm, gain, s = 1.0;

  g_return_val_if_fail (RUV_IS_MICRO_LORA (self), FALSE);
  if (grad_norm != NULL)
    *grad_norm = 0.0;
  if (predicted != NULL)
    *predicted = 0.0;
  if (n == 0)
    return FALSE;
  if (!isfinite (learning_rate) || learning_rate <= 0.0f || learning_rate > 1e3f ||
      !(max_change >= 0.0) || !isfinite (max_change))
    {
      self->skipped++;
      return FALSE;
    }
  if (self->upd_len < n)
    {
      /* once per adapter layout: a rating allocates nothing */
      g_free (self->upd_w);
      g_free (self->upd_g);
      g_free (self->upd_p);
      self->upd_w = g_new (float, n);
      self->upd_g = g_new (float, n);
      self->upd_p = g_new (float, n);
      self->upd_len = n;
    }
  w = self->upd_w;
  g = self->upd_g;
  p = self->upd_p;
  flat_io (self, w, 0);
  /* g: the objective's gradient plus decay; p: the EWC++ pull, kept apart
   * so that clipping and the trust region bound the objective's step only */
  if (wd != 0.0f)
    for (i = 0; i < n; i++)
      g[i] = grad[i] + wd * w[i];
  else
    memcpy (g, grad, n * sizeof (float));
  memset (p, 0, n * sizeof (float));
  if (ewc != NULL && ruv_ewc_get_n_params (ewc) == n && isfinite (ewc_lambda) && ewc_lambda > 0.0f)
    ruv_ewc_add_penalty_gradient (ewc, w, ewc_lambda, learning_rate, p);
  /* the kernels' dot; in double only when float overflows */
  norm = f32->vec_dot ((int) n, g, g);
  pnorm = f32->vec_dot ((int) n, p, p);
  if (!isfinite (norm) || !isfinite (pnorm))
    {
      norm = pnorm = 0.0;
      for (i = 0; i < n; i++)
        {
          norm += (double) g[i] * g[i];
          pnorm += (double) p[i] * p[i];
        }
    }
  /* the objective's first-order change per unit step: grad . g */
  gain = wd != 0.0f ? f32->vec_dot ((int) n, grad, g) : norm;
  if (!isfinite (gain) && isfinite (norm))
    {
      /* float overflow of a finite gradient: clip it rather than skip it */
      gain = 0.0;
      for (i = 0; i < n; i++)
        gain += (double) grad[i] * g[i];
    }
  norm = sqrt (norm);
  if (grad_norm != NULL)
    *grad_norm = norm;
  if (!isfinite (norm) || !isfinite (pnorm) || !isfinite (gain))
    {
      /* F1: never write a NaN weight; skip and count. */
      self->skipped++;
      return FALSE;
    }
  if (norm > self->config.max_grad_norm)
    {
      s = self->config.max_grad_norm / norm;
      self->clipped++;
    }
  /* trust region: the step -lr s g changes the objective by about
   * -lr s (grad . g) to first order; at most max_change */
  gain *= (double) learning_rate * s;
  if (max_change > 0.0 && gain > max_change)
    {
      s *= max_change / gain;
      gain = max_change;
    }
  if (predicted != NULL)
    *predicted = gain;
  for (i = 0; i < n; i++)
    w[i] = CLAMP (w[i] - learning_rate * ((float) s * g[i] + p[i]), -lim, lim);
  g_mutex_lock (&self->lock);
  flat_io (self, w, 2);
  g_mutex_unlock (&self->lock);
  self->adaptations++;
  return TRUE;
}

gboolean
ruv_micro_lora_apply_gradient (RuvMicroLora *self,
                               const float  *grad,
                               float         learning_rate,
                               RuvEwc       *ewc,
                               float         ewc_lambda,
                               double       *grad_norm)
{
  return ruv_micro_lora_apply_gradient_bounded (self, grad, learning_rate, ewc, ewc_lambda,
                                                0.0, grad_norm, NULL);
}

gboolean
ruv_micro_lora_apply_updates_with_ewc (RuvMicroLora *self,
                                       float         learning_rate,
                                       RuvEwc       *ewc,
                                       float         ewc_lambda)
{
  g_autofree float *g = NULL;
  gboolean ok;

  g_return_val_if_fail (RUV_IS_MICRO_LORA (self), FALSE);
  if (self->n_accum == 0 || ruv_micro_lora_get_n_params (self) == 0)
    return FALSE;
  g = g_new (float, ruv_micro_lora_get_n_params (self));
  ruv_micro_lora_get_mean_gradients (self, g);
  ok = ruv_micro_lora_apply_gradient (self, g, learning_rate, ewc, ewc_lambda, NULL);
  ruv_micro_lora_clear_gradients (self);
  return ok;
}

gboolean
ruv_micro_lora_apply_updates (RuvMicroLora *self,
                              float         learning_rate)
{
  return ruv_micro_lora_apply_updates_with_ewc (self, learning_rate, NULL, 0.0f);
}

void
ruv_micro_lora_reset (RuvMicroLora *self)
{
  guint i;

  g_mutex_lock (&self->lock);
  for (i = 0; i < self->adapters->len; i++)
    {
      RuvLoraAdapter *ad = &g_array_index (self->adapters, RuvLoraAdapter, i);

      init_a (&self->config, ad);
      memset (ad->b, 0, (gsize) ad->rank * ad->n_out * sizeof (float));
    }
  g_mutex_unlock (&self->lock);
  ruv_micro_lora_clear_gradients (self);
  self->rng = self->config.seed ^ G_GUINT64_CONSTANT (0x5DEECE66D);
  self->samples = 0;
  self->quality_sum = 0.0;
  self->adaptations = 0;
  self->skipped = 0;
  self->clipped = 0;
  self->forward_count = 0;
}

void
ruv_micro_lora_get_stats (RuvMicroLora      *self,
                          RuvMicroLoraStats *stats)
{
  guint i;

  memset (stats, 0, sizeof *stats);
  stats->samples = self->samples;
  stats->avg_quality = self->samples > 0 ? self->quality_sum / (double) self->samples : 0.0;
  stats->adaptations = self->adaptations;
  stats->skipped = self->skipped;
  stats->clipped = self->clipped;
  stats->forward_count = self->forward_count;
  stats->n_params = ruv_micro_lora_get_n_params (self);
  stats->memory_bytes = 2 * stats->n_params * sizeof (float);
  stats->n_adapters = self->adapters->len;
  g_mutex_lock (&self->lock);
  for (i = 0; i < self->adapters->len; i++)
    {
      const RuvLoraAdapter *ad = &g_array_index (self->adapters, RuvLoraAdapter, i);
      /* ||B A||_F^2 = trace (A^T B^T B A) = sum_rs (B^T B)_rs (A A^T)_rs */
      double s = 0.0;
      gint r1, r2;
      gint64 k;

      for (r1 = 0; r1 < ad->rank; r1++)
        for (r2 = 0; r2 < ad->rank; r2++)
          {
            double bb = 0.0, aa = 0.0;

            for (k = 0; k < ad->n_out; k++)
              bb += (double) ad->b[k * ad->rank + r1] * ad->b[k * ad->rank + r2];
            for (k = 0; k < ad->n_in; k++)
              aa += (double) ad->a[r1 * ad->n_in + k] * ad->a[r2 * ad->n_in + k];
            s += bb * aa;
          }
      stats->delta_norm += ad->scale * sqrt (MAX (s, 0.0));
    }
  g_mutex_unlock (&self->lock);
}

/* ---- hooks and capture ------------------------------------------------------------- */

void
ruv_micro_lora_capture_end (RuvMicroLora *self)
{
  gsize i;

  for (i = 0; i < self->cap_n_in; i++)
    g_free (self->cap_in[i]);
  g_clear_pointer (&self->cap_in, g_free);
  g_clear_pointer (&self->cap_final, g_free);
  g_clear_pointer (&self->cap_have_final, g_free);
  self->cap_n_in = 0;
  self->cap_n = 0;
}

void
ruv_micro_lora_capture_begin (RuvMicroLora *self,
                              gint64        pos0,
                              gint64        n_pos,
                              gint64        n_embd)
{
  guint i;

  g_return_if_fail (n_pos >= 1 && n_pos <= 65536 && n_embd >= 1 && pos0 >= 0);
  ruv_micro_lora_capture_end (self);
  self->cap_pos0 = pos0;
  self->cap_n = n_pos;
  self->cap_embd = n_embd;
  self->cap_n_in = self->adapters->len;
  self->cap_in = g_new0 (float *, MAX (self->cap_n_in, 1));
  for (i = 0; i < self->adapters->len; i++)
    {
      const RuvLoraAdapter *ad = &g_array_index (self->adapters, RuvLoraAdapter, i);

      if ((RUV_TARGET_BIT (ad->module) & RUV_TARGET_RESIDUAL_MASK) && ad->n_out == n_embd)
        self->cap_in[i] = g_new0 (float, n_pos * ad->n_in);
    }
  self->cap_final = g_new0 (float, n_pos * n_embd);
  self->cap_have_final = g_new0 (gboolean, n_pos);
}

const float *
ruv_micro_lora_capture_input (RuvMicroLora *self,
                              gsize         adapter,
                              gint64        i)
{
  if (adapter >= self->cap_n_in || i < 0 || i >= self->cap_n || self->cap_in[adapter] == NULL)
    return NULL;
  return self->cap_in[adapter] +
         i * g_array_index (self->adapters, RuvLoraAdapter, adapter).n_in;
}

const float *
ruv_micro_lora_capture_final (RuvMicroLora *self,
                              gint64        i)
{
  if (i < 0 || i >= self->cap_n || !self->cap_have_final[i])
    return NULL;
  return self->cap_final + i * self->cap_embd;
}

void
ruv_lora_hook (RuvMicroLora    *lora,
               gint64           layer,
               RuvTargetModule  module,
               const float     *x,
               gint64           m,
               gint64           x_stride,
               float           *y,
               gint64           y_stride,
               gint64           pos)
{
  gint64 t;
  gint idx;

  if (lora == NULL)
    return;
  if (lora->cap_n > 0 && lora->cap_n_in == lora->adapters->len &&
      (idx = ruv_micro_lora_find_index (lora, layer, module)) >= 0 && lora->cap_in[idx] != NULL)
    {
      gint64 n_in = g_array_index (lora->adapters, RuvLoraAdapter, idx).n_in;

      for (t = 0; t < m; t++)
        {
          gint64 i = pos + t - lora->cap_pos0;

          if (i >= 0 && i < lora->cap_n && n_in <= x_stride)
            memcpy (lora->cap_in[idx] + i * n_in, x + t * x_stride, n_in * sizeof (float));
        }
    }
  ruv_micro_lora_apply_rows (lora, layer, module, x, m, x_stride, y, y_stride);
}

void
ruv_lora_hook_final (RuvMicroLora *lora,
                     const float  *x,
                     gint64        m,
                     gint64        n_embd,
                     gint64        pos)
{
  gint64 t;

  if (lora == NULL || lora->cap_n == 0 || n_embd != lora->cap_embd)
    return;
  for (t = 0; t < m; t++)
    {
      gint64 i = pos + t - lora->cap_pos0;

      if (i >= 0 && i < lora->cap_n)
        {
          memcpy (lora->cap_final + i * n_embd, x + t * n_embd, n_embd * sizeof (float));
          lora->cap_have_final[i] = TRUE;
        }
    }
}
