/* ruv-lora.h — MicroLoRA: rank 1-2 low-rank adapters on a model's projections.
 * SPDX-License-Identifier: MIT
 *
 * One adapter per (layer, target module) adds to the module's output
 *
 *   y += s * B (A x),   s = alpha / rank,
 *
 * A: rank x n_in  (row-major; GGUF "<w>.lora_a" with ne = {n_in, rank}),
 * B: n_out x rank (row-major; GGUF "<w>.lora_b" with ne = {rank, n_out}),
 * which is llama.cpp's layout and scale, so an exported adapter means the
 * same thing there. B starts at zero (the adapter is a no-op until trained),
 * A is drawn from a seeded uniform(-1/sqrt(n_in), 1/sqrt(n_in)).
 *
 * Learning: adapt() accumulates the REAL gradient of the loss
 *   L = -reward * log p(response | prompt)
 * with respect to A and B, given the adapted module's input x and
 * feedback.gradient_estimate = d log p(response | prompt) / d y (the module
 * output, n_out floats; computed by the backward pass in ruv-sona.c). The
 * reward is feedback.reward when set, else 2 * quality - 1, so a thumbs-down
 * (reward -1) descends where a thumbs-up ascends. Dropout (training only)
 * masks x with inverted scaling before A.
 *
 * apply_updates() averages the accumulated gradient over the samples, adds
 * weight decay (and the EWC++ penalty), refuses non-finite gradients (the
 * step is skipped and counted, weights untouched), clips the global L2 norm
 * to max_grad_norm, steps, and clamps every weight to +-max_weight_abs, so no
 * sequence of ratings can make a weight non-finite or unbounded.
 *
 * Thread safety: the forward hooks (apply_rows) and every weight write take
 * the adapter's lock, so a worker thread may train while another generates.
 */
#pragma once

#include <glib-object.h>

#include "ruv-model.h"

G_BEGIN_DECLS

typedef enum
{
  RUV_TARGET_Q_PROJ,
  RUV_TARGET_K_PROJ,
  RUV_TARGET_V_PROJ,
  RUV_TARGET_O_PROJ,
  RUV_TARGET_GATE_PROJ,
  RUV_TARGET_UP_PROJ,
  RUV_TARGET_DOWN_PROJ,
  RUV_TARGET_COUNT
} RuvTargetModule;

#define RUV_TARGET_BIT(m) (1u << (m))
/* Modules whose output is added straight to the residual stream: the ones the
 * truncated backward pass of ruv-sona.c reaches. */
#define RUV_TARGET_RESIDUAL_MASK (RUV_TARGET_BIT (RUV_TARGET_O_PROJ) | \
                                  RUV_TARGET_BIT (RUV_TARGET_DOWN_PROJ))

/* "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
 * "ffn_down": the GGUF tensor stem (blk.N.<stem>.weight). */
const char *ruv_target_module_tensor_stem (RuvTargetModule module);
/* "q_proj", ... (the reference's names, for messages and JSON). */
const char *ruv_target_module_name        (RuvTargetModule module);

typedef struct
{
  gint64   in_features;      /* standalone adapters: n_in of each */
  gint64   out_features;     /* standalone adapters: n_out of each */
  gint     rank;             /* 1 or 2 */
  float    alpha;            /* scale = alpha / rank */
  float    dropout;          /* [0, 1): training-time input dropout */
  guint    target_modules;   /* RUV_TARGET_BIT mask */
  gint64   n_layers;         /* standalone: layers 0 .. n_layers-1; on a model:
                              * the last n_layers layers */
  gboolean gradient_checkpointing; /* traces keep module inputs as f16 */
  float    max_grad_norm;    /* global L2 clip of each update's gradient (> 0) */
  float    max_weight_abs;   /* every weight is clamped to +-this after a step */
  float    weight_decay;     /* L2 decay added to the gradient */
  guint64  seed;             /* A's initialisation and the dropout masks */
} RuvMicroLoraConfig;

/* in = out = hidden_dim, rank 2, alpha 4, no dropout, targets Q and V of one
 * layer (the reference's for_hidden_dim). */
void     ruv_micro_lora_config_for_hidden_dim (RuvMicroLoraConfig       *config,
                                               gint64                    hidden_dim);
/* The default for a model: rank 2, alpha 4, O and DOWN projections (the
 * modules the instant loop's backward pass reaches exactly or nearly) of the
 * last 2 layers; in/out features = embedding length. */
void     ruv_micro_lora_config_for_model      (RuvMicroLoraConfig       *config,
                                               RuvModel                 *model);
/* RUV_ERROR_CONFIG naming the field when out of range. */
gboolean ruv_micro_lora_config_validate       (const RuvMicroLoraConfig *config,
                                               GError                  **error);

typedef struct
{
  float        quality;            /* 0 .. 1 */
  const float *gradient_estimate;  /* d log p(response) / d y, n_gradient floats */
  gsize        n_gradient;
  gboolean     has_reward;
  float        reward;             /* signed; when set it replaces 2 q - 1 */
  guint64      latency_us;
  gboolean     has_source_module;
  RuvTargetModule source_module;   /* which adapter adapt() trains */
  gint64       layer;              /* its layer; -1: the last adapted layer */
  const char  *session_id;
} RuvAdaptFeedback;

void     ruv_adapt_feedback_from_quality (RuvAdaptFeedback       *feedback,
                                          float                   quality);
/* Thumbs up: quality 1 reward +1; down: quality 0 reward -1. */
void     ruv_adapt_feedback_from_thumbs  (RuvAdaptFeedback       *feedback,
                                          gboolean                up);
/* reward if set, else 2 * quality - 1 (NaN stays NaN, for the caller to refuse). */
float    ruv_adapt_feedback_get_reward   (const RuvAdaptFeedback *feedback);

/* One adapter. Read-only for callers; weights change only through the
 * RuvMicroLora functions. */
typedef struct
{
  gint64          layer;
  RuvTargetModule module;
  gint64          n_in;
  gint64          n_out;
  gint            rank;
  float           scale;    /* alpha / rank */
  float          *a;        /* rank x n_in */
  float          *b;        /* n_out x rank */
  float          *ga;       /* accumulated dL/dA */
  float          *gb;       /* accumulated dL/dB */
} RuvLoraAdapter;

typedef struct
{
  guint64 samples;          /* samples accumulated (adapt / backward calls) */
  double  avg_quality;      /* mean quality of those samples */
  guint64 adaptations;      /* updates applied */
  guint64 skipped;          /* updates or samples refused as non-finite */
  guint64 clipped;          /* updates whose gradient norm was clipped */
  guint64 forward_count;    /* forward / apply_rows calls that added a delta */
  guint64 n_params;
  guint64 memory_bytes;     /* weights + gradients */
  double  delta_norm;       /* sum over adapters of ||s B A||_F */
  gsize   n_adapters;
} RuvMicroLoraStats;

#define RUV_TYPE_MICRO_LORA (ruv_micro_lora_get_type ())
G_DECLARE_FINAL_TYPE (RuvMicroLora, ruv_micro_lora, RUV, MICRO_LORA, GObject)

/* Standalone: one adapter per target module and layer, n_in = in_features,
 * n_out = out_features. */
RuvMicroLora *ruv_micro_lora_new              (const RuvMicroLoraConfig *config,
                                               GError                  **error);
/* On a model: each module's real shape (GQA-aware: K and V are n_kv wide),
 * the last config->n_layers layers. in/out_features are ignored. */
RuvMicroLora *ruv_micro_lora_new_for_model    (RuvModel                 *model,
                                               const RuvMicroLoraConfig *config,
                                               GError                  **error);
/* An empty adapter set (for importing): add adapters one by one. */
RuvMicroLora *ruv_micro_lora_new_empty        (const RuvMicroLoraConfig *config);
/* An independent copy: the same config, adapters, weights and enabled flag
 * (read under the weight lock); gradients and stats zero. dropout_seed
 * seeds the copy's dropout masks. */
RuvMicroLora *ruv_micro_lora_copy             (RuvMicroLora             *self,
                                               guint64                   dropout_seed);
/* Adds an adapter; a, b NULL: initialised as in new(). RUV_ERROR_ADAPTER on
 * a duplicate (layer, module), a rank outside 1..256, non-finite weights or
 * sizes out of range. Alpha gives the scale alpha / rank (alpha 0: scale 1,
 * as llama.cpp). */
gboolean      ruv_micro_lora_add_adapter      (RuvMicroLora             *self,
                                               gint64                    layer,
                                               RuvTargetModule           module,
                                               gint64                    n_in,
                                               gint64                    n_out,
                                               gint                      rank,
                                               float                     alpha,
                                               const float              *a,
                                               const float              *b,
                                               GError                  **error);

const RuvMicroLoraConfig *ruv_micro_lora_get_config (RuvMicroLora *self);
gsize                 ruv_micro_lora_get_n_adapters (RuvMicroLora    *self);
const RuvLoraAdapter *ruv_micro_lora_get_adapter    (RuvMicroLora    *self,
                                                     gsize            index);
/* NULL when that (layer, module) has no adapter. layer -1: the highest layer
 * carrying this module. */
const RuvLoraAdapter *ruv_micro_lora_find_adapter   (RuvMicroLora    *self,
                                                     gint64           layer,
                                                     RuvTargetModule  module);
/* Index of an adapter, or -1. */
gint                  ruv_micro_lora_find_index     (RuvMicroLora    *self,
                                                     gint64           layer,
                                                     RuvTargetModule  module);

void     ruv_micro_lora_set_enabled   (RuvMicroLora    *self,
                                       gboolean         enabled);
gboolean ruv_micro_lora_get_enabled   (RuvMicroLora    *self);

/* out (n_out) = s B (A x): the delta only (the module's base output is not
 * included; forward_add adds it to an existing output). Zeros when the
 * (layer, module) has no adapter or it is disabled. FALSE with
 * RUV_ERROR_ADAPTER when n_in / n_out do not match the adapter. */
gboolean ruv_micro_lora_forward       (RuvMicroLora    *self,
                                       gint64           layer,
                                       RuvTargetModule  module,
                                       const float     *x,
                                       gsize            n_in,
                                       float           *out,
                                       gsize            n_out,
                                       GError         **error);
gboolean ruv_micro_lora_forward_add   (RuvMicroLora    *self,
                                       gint64           layer,
                                       RuvTargetModule  module,
                                       const float     *x,
                                       gsize            n_in,
                                       float           *out,
                                       gsize            n_out,
                                       GError         **error);
/* The engine's hook: y[t] += s B (A x[t]) for m rows (x rows x_stride floats
 * apart, y rows y_stride apart). Returns FALSE (and touches nothing) when no
 * enabled adapter sits on (layer, module). */
gboolean ruv_micro_lora_apply_rows    (RuvMicroLora    *self,
                                       gint64           layer,
                                       RuvTargetModule  module,
                                       const float     *x,
                                       gint64           m,
                                       gint64           x_stride,
                                       float           *y,
                                       gint64           y_stride);

/* Accumulates dL/dA, dL/dB of the adapter feedback->source_module /
 * feedback->layer for L = -reward * log p, given the module input x and
 * feedback->gradient_estimate (d log p / d y). RUV_ERROR_ADAPTER when the
 * lengths do not match or no such adapter exists; non-finite input,
 * gradient, quality or reward: refused, counted in stats.skipped,
 * RUV_ERROR_ADAPTER, nothing accumulated. */
gboolean ruv_micro_lora_adapt         (RuvMicroLora           *self,
                                       const float            *x,
                                       gsize                   n_in,
                                       const RuvAdaptFeedback *feedback,
                                       GError                **error);
/* Low-level accumulation for the backward pass: adds weight * dL/dtheta of
 * adapter `index` for a batch of rows (dl_dy: dL/dy rows, n_out floats).
 * `train` applies dropout. Returns FALSE if anything is non-finite (nothing
 * is added then). */
gboolean ruv_micro_lora_accumulate    (RuvMicroLora    *self,
                                       gsize            index,
                                       const float     *x,
                                       const float     *dl_dy,
                                       gint64           m,
                                       float            weight,
                                       gboolean         train);
/* The same with the m input rows given by pointers (x_rows[t], n_in floats
 * each), so a caller can train on rows scattered through a trace. */
gboolean ruv_micro_lora_accumulate_rows (RuvMicroLora       *self,
                                         gsize               index,
                                         const float *const *x_rows,
                                         const float        *dl_dy,
                                         gint64              m,
                                         float               weight,
                                         gboolean            train);
/* check FALSE: the caller vouches that x_rows and dl_dy are finite (e.g.
 * trace inputs, validated when the trace was filled). */
gboolean ruv_micro_lora_accumulate_checked (RuvMicroLora       *self,
                                            gsize               index,
                                            const float *const *x_rows,
                                            const float        *dl_dy,
                                            gint64              m,
                                            float               weight,
                                            gboolean            train,
                                            gboolean            check);
/* The same (unchecked, no dropout) with ax (m x rank): row t's A x_t,
 * computed by a caller that needed it anyway (the backward pass's forward
 * half), so the rows are read once less. */
gboolean ruv_micro_lora_accumulate_ax      (RuvMicroLora       *self,
                                            gsize               index,
                                            const float *const *x_rows,
                                            const float        *ax,
                                            const float        *dl_dy,
                                            gint64              m,
                                            float               weight);
/* Counts one sample of the given quality towards the averaging in
 * apply_updates() and the stats. */
void     ruv_micro_lora_count_sample  (RuvMicroLora    *self,
                                       float            quality);

struct _RuvEwc;

/* One descent step on the averaged gradient (see the top of this file).
 * Returns TRUE when the weights changed; FALSE when nothing was pending or
 * the gradient was non-finite (skipped, counted). Gradients are cleared. */
gboolean ruv_micro_lora_apply_updates          (RuvMicroLora    *self,
                                                float            learning_rate);
/* Same with the EWC++ penalty: gradient += min (lambda F, 0.5 / lr) (w - w*)
 * per parameter (the cap keeps lr * lambda * F < 1, so the pull never
 * overshoots w*). ewc may be NULL or have another size (then ignored). */
gboolean ruv_micro_lora_apply_updates_with_ewc (RuvMicroLora    *self,
                                                float            learning_rate,
                                                struct _RuvEwc  *ewc,
                                                float            ewc_lambda);
/* One step on a given (already combined) gradient g (get_params order), with
 * the same decay, EWC penalty, finite check, clipping and bounds (the clip
 * applies to gradient + decay; the EWC pull, bounded by its cap, is added
 * after it so that a large data gradient does not drown it). Returns
 * FALSE (weights untouched, counted) if anything is non-finite. grad_norm
 * (may be NULL) receives the norm before clipping. */
gboolean ruv_micro_lora_apply_gradient         (RuvMicroLora    *self,
                                                const float     *g,
                                                float            learning_rate,
                                                struct _RuvEwc  *ewc,
                                                float            ewc_lambda,
                                                double          *grad_norm);
/* The same with a trust region: the objective's step (gradient, decay,
 * clipped) is scaled down so that its first-order change of the objective,
 * lr * (grad . step direction), is at most max_change (0: no bound); the
 * EWC++ pull is added unscaled. This makes a step's effect independent of
 * the model's gradient scale. predicted (may be NULL) receives that
 * first-order change. */
gboolean ruv_micro_lora_apply_gradient_bounded (RuvMicroLora    *self,
                                                const float     *g,
                                                float            learning_rate,
                                                struct _RuvEwc  *ewc,
                                                float            ewc_lambda,
                                                double           max_change,
                                                double          *grad_norm,
                                                double          *predicted);
void     ruv_micro_lora_clear_gradients        (RuvMicroLora    *self);

/* B = 0, A re-drawn from the seed, gradients and stats cleared. */
void     ruv_micro_lora_reset         (RuvMicroLora      *self);
void     ruv_micro_lora_get_stats     (RuvMicroLora      *self,
                                       RuvMicroLoraStats *stats);

/* All weights as one vector: per adapter (in index order) A then B. */
gsize    ruv_micro_lora_get_n_params  (RuvMicroLora    *self);
void     ruv_micro_lora_get_params    (RuvMicroLora    *self,
                                       float           *out);
/* Refuses (FALSE, nothing written) non-finite values. */
gboolean ruv_micro_lora_set_params    (RuvMicroLora    *self,
                                       const float     *params);
/* The accumulated gradient in the same order (not averaged). */
void     ruv_micro_lora_get_gradients (RuvMicroLora    *self,
                                       float           *out);
/* Divides the accumulated gradients by the sample count, as apply_updates
 * would; 0 samples: zeros. */
void     ruv_micro_lora_get_mean_gradients (RuvMicroLora *self,
                                            float        *out);

/* ---- the engine's hooks (ruv-forward.c) and activation capture ----------
 * ruv_lora_hook runs after each projection of the forward pass for the m
 * tokens at positions pos .. pos + m - 1: y += s B (A x) when an enabled
 * adapter sits on (layer, module), and, while capturing, keeps the inputs of
 * the adapters that feed the residual stream (O, DOWN). ruv_lora_hook_final
 * keeps the final residual (before the output norm). lora NULL: no-ops. */
void     ruv_lora_hook                (RuvMicroLora    *lora,
                                       gint64           layer,
                                       RuvTargetModule  module,
                                       const float     *x,
                                       gint64           m,
                                       gint64           x_stride,
                                       float           *y,
                                       gint64           y_stride,
                                       gint64           pos);
void     ruv_lora_hook_final          (RuvMicroLora    *lora,
                                       const float     *x,
                                       gint64           m,
                                       gint64           n_embd,
                                       gint64           pos);
/* Starts keeping activations of positions pos0 .. pos0 + n_pos - 1 (what a
 * SONA trace needs, so a rating needs no re-run); replaces an earlier
 * capture. */
void     ruv_micro_lora_capture_begin (RuvMicroLora    *self,
                                       gint64           pos0,
                                       gint64           n_pos,
                                       gint64           n_embd);
void     ruv_micro_lora_capture_end   (RuvMicroLora    *self);
/* Rows kept for position pos0 + i (NULL if not captured / not a residual
 * adapter). */
const float *ruv_micro_lora_capture_input (RuvMicroLora *self,
                                           gsize         adapter,
                                           gint64        i);
const float *ruv_micro_lora_capture_final (RuvMicroLora *self,
                                           gint64        i);

/* Weight lock, for callers reading adapters while another thread trains. */
void     ruv_micro_lora_lock          (RuvMicroLora    *self);
void     ruv_micro_lora_unlock        (RuvMicroLora    *self);

G_END_DECLS
