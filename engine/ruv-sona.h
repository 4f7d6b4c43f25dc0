/* ruv-sona.h — SONA's three learning loops over a model's MicroLoRA:
 * instant (per rating), background (consolidation) and deep (epochs).
 * SPDX-License-Identifier: MIT
 *
 * Objective. A rating gives a signed reward r (thumbs up +1, down -1,
 * quality q in [0, 1] -> 2q - 1). The loss of a rated exchange is
 *   L = -r * J,   J = (1/T) sum_t log p(y_t | prompt, y_<t)
 * (the per-token mean, so a step does not depend on the answer's length),
 * differentiated with respect to the adapter weights, base weights frozen.
 *
 * Backward pass (truncated; documented decision). A RuvSonaTrace keeps, per
 * response position t, what the forward pass computed: the final residual
 * x_t (before the output norm), the input u_{a,t} of each adapter a whose
 * output is added straight to the residual stream (O and DOWN projections),
 * and a candidate set S_t (the base model's top-K tokens; y_t is always
 * added). The backward pass treats the residual stream as
 *   x_t(theta) = x_base_t + sum_a s B_a A_a u_{a,t},
 * x_base_t = x_t minus the adapters' contributions at capture, i.e. it keeps
 * the paths adapter -> residual -> final RMSNorm -> LM head exactly and drops
 * the paths through later blocks' attention / feed-forward (and, for an O
 * adapter, through its own block's feed-forward). For an adapter on the last
 * layer's DOWN projection this is the exact gradient; elsewhere it is the
 * first-order ("logit lens") approximation. The softmax runs over S_t
 * (sampled-softmax truncation): instant loop K = sona.instant_candidates and
 * at most sona.instant_max_tokens positions (evenly spaced); background and
 * deep loops use every position and the full vocabulary unless
 * sona.background_candidates > 0. No re-run of the model is needed.
 * gradient_estimate (ruv-lora.h) is dJ/dy for that adapter: d J / d x_t.
 *
 * Loops.
 *  instant_adapt: one rating -> gradient of the truncated objective ->
 *    EWC++ Fisher update -> one clipped step (instant_lr, EWC penalty: toward
 *    the starting adapter until the first task boundary, then toward the
 *    last task anchor). Rating the same key again applies only the reward
 *    difference and replaces the stored rating (it counts once).
 *  background_consolidate (worker thread, every background_interval_ms when
 *    at least background_min_samples ratings are pending): replays each
 *    pending sample with the fuller backward pass (per-sample gradient g_i)
 *    and takes one step of background_lr on a combination chosen by the
 *    ConsolidationStrategy:
 *      AVERAGE           mean_i g_i
 *      QUALITY_WEIGHTED  sum_i |r_i| g_i / sum_i |r_i|
 *      BEST_ONLY         g_j of the most decisive rating (max |r|, latest on ties)
 *      EWC_MERGE         mean_i g_i + EWC penalty; Fisher updated with every
 *                        g_i; every sona.ewc_task_ratings consolidated
 *                        ratings an EWC++ task boundary (ruv-ewc.h): the
 *                        anchor w* <- the new weights, F* gathers their
 *                        Fisher estimate. Before the first boundary the
 *                        penalty holds the weights toward the adapter the
 *                        loop started from (task 0; a new adapter is the
 *                        base model), weighted by the running Fisher
 *                        estimate (sona.ewc_base_weight)
 *      ENSEMBLE          the AVERAGE step, then the weights become the mean
 *                        of the last sona.ensemble_size consolidated adapters
 *    The passes run on a copy of the adapter without holding the lock that
 *    instant_adapt takes (it waits microseconds, not the tens of ms a
 *    full-vocabulary pass takes); the step is then applied to the live
 *    adapter (see ruv-sona-consolidate.c).
 *  deep_optimize: epochs over a data set (or every rated sample kept) with
 *    training.learning_rate, an EWC++ boundary at the start, loss curve per
 *    epoch, progress callback, cancellation at sample boundaries (the live
 *    adapter is then unchanged). Also on a copy: the live weights become the
 *    run's result plus any steps ratings made meanwhile. should_trigger_deep:
 *    the sum of |r| since the last deep run >= deep_trigger_threshold.
 * Samples: at most max_pending_samples kept (default 200; oldest dropped and
 * counted). A trace holds the inputs of the residual adapters, e.g. ~2.9 MB
 * for a 64-token answer on Qwen2.5-0.5B with the default adapters (half
 * with gradient_checkpointing), hence the modest default.
 */
#pragma once

#include <gio/gio.h>

#include "ruv-ewc.h"
#include "ruv-forward.h"
#include "ruv-lora.h"
#include "ruv-model.h"

G_BEGIN_DECLS

/* ---- traces ------------------------------------------------------------- */

typedef struct _RuvSonaTrace RuvSonaTrace;

/* n_tok positions of an exchange scored by a model with n_embd, for the
 * adapters of `lora` (their layout is recorded; a trace is refused later if
 * the adapter set changed). n_cand candidates per position (0: none kept). */
RuvSonaTrace *ruv_sona_trace_new          (RuvMicroLora        *lora,
                                           gint64               n_tok,
                                           gint64               n_embd,
                                           gint64               n_cand);
void          ruv_sona_trace_free         (RuvSonaTrace        *trace);
gint64        ruv_sona_trace_get_n_tokens (const RuvSonaTrace  *trace);
/* Position t: the token it predicts (the response token), the final residual
 * x (n_embd), per adapter index the module input (n_in floats, or NULL for
 * adapters that do not feed the residual), and n_cand candidate ids (or
 * NULL). The lora's current weights are subtracted to form x_base.
 * RUV_ERROR_ADAPTER on bad indices, shapes or non-finite values. */
gboolean      ruv_sona_trace_set_position (RuvSonaTrace        *trace,
                                           RuvMicroLora        *lora,
                                           gint64               t,
                                           gint32               target,
                                           const float         *x_final,
                                           const float *const  *inputs,
                                           const gint32        *cand,
                                           GError             **error);

/* log p(response | prompt) = sum over t of log softmax (logits)[tokens[t]]
 * for t = n_prompt .. n_tokens - 1, from a fresh run of tokens through ctx
 * (its KV cache is cleared). n_prompt >= 1, n_tokens > n_prompt. */
gboolean      ruv_sona_score_response     (RuvContext          *ctx,
                                           const gint32        *tokens,
                                           gint64               n_prompt,
                                           gint64               n_tokens,
                                           double              *logp,
                                           GError             **error);

/* ---- configuration ------------------------------------------------------- */

/* EWC++ strength of all three loops: lambda times the Fisher estimate
 * relative to its mean (ruv-ewc.h). With the trust region below, 0.1 (a
 * boundary every 10 ratings, the base model as task 0) halved the
 * forgetting of an earlier task on Qwen2.5-0.5B while the later task kept
 * ~85% of its gain (~40% before task 0); 0.5 forgot 5x less but blocked the
 * later task (README, tools/learn-proof.py --sequential). */
#define RUV_SONA_DEFAULT_EWC_LAMBDA 0.1f
#define RUV_SONA_DEFAULT_EWC_TASK_RATINGS 10
/* Task 0's weight (the base model, ruv-ewc.h), times the EWC++ lambda */
#define RUV_SONA_DEFAULT_EWC_BASE_WEIGHT 1.0f
/* Trust region (RuvSonaCoreConfig.max_step_nats): every step of the three
 * loops changes the rated answers' mean log p per token by at most this
 * (first order), whatever the model's gradient scale: the same default
 * learns on SmolLM2-135M and Qwen2.5-0.5B shapes with neutral text within
 * 1% (README). */
#define RUV_SONA_DEFAULT_MAX_STEP_NATS 0.25f

typedef enum
{
  RUV_CONSOLIDATE_EWC_MERGE,
  RUV_CONSOLIDATE_AVERAGE,
  RUV_CONSOLIDATE_QUALITY_WEIGHTED,
  RUV_CONSOLIDATE_BEST_ONLY,
  RUV_CONSOLIDATE_ENSEMBLE,
} RuvConsolidationStrategy;

/* "ewc-merge", "average", "quality-weighted", "best-only", "ensemble". */
const char *ruv_consolidation_strategy_to_string   (RuvConsolidationStrategy s);
gboolean    ruv_consolidation_strategy_from_string (const char               *str,
                                                    RuvConsolidationStrategy *out);

typedef struct
{
  float learning_rate;     /* deep loop step */
  gint  epochs;            /* deep loop epochs */
  float ewc_lambda;        /* deep loop EWC strength */
} RuvTrainingConfig;

typedef struct
{
  float ewc_decay;              /* earlier tasks' Fisher decay per boundary (0.9) */
  float ewc_lambda;             /* instant / background EWC strength */
  gint  ewc_task_ratings;       /* EwcMerge: an EWC++ task boundary after this
                                 * many consolidated ratings (ruv-ewc.h) */
  float ewc_base_weight;        /* EWC++ task 0, the adapter the loop started
                                 * from (B = 0: the base model), until the
                                 * first boundary; times ewc_lambda (0: none;
                                 * ruv-ewc.h) */
  gint  instant_max_tokens;     /* positions used by the instant loop */
  gint  instant_candidates;     /* softmax candidates in the instant loop */
  gint  background_candidates;  /* 0: full vocabulary */
  float background_lr;
  gint  ensemble_size;
  float max_step_nats;          /* trust region of every loop's step: its
                                 * first-order change of the rated answers'
                                 * mean log p per token, times |reward|, is at
                                 * most this (0: unbounded) */
} RuvSonaCoreConfig;

typedef struct
{
  RuvMicroLoraConfig       micro_lora;
  RuvTrainingConfig        training;
  RuvSonaCoreConfig        sona;
  float                    instant_lr;
  guint64                  background_interval_ms;
  gsize                    background_min_samples;
  float                    deep_trigger_threshold;
  gsize                    max_pending_samples;
  RuvConsolidationStrategy consolidation_strategy;
} RuvSonaLlmConfig;

/* The defaults for a model (micro_lora from ruv_micro_lora_config_for_model). */
void     ruv_sona_llm_config_init     (RuvSonaLlmConfig       *config,
                                       RuvModel               *model);
gboolean ruv_sona_llm_config_validate (const RuvSonaLlmConfig *config,
                                       GError                **error);

typedef struct
{
  gboolean applied;        /* weights changed */
  gboolean skipped;        /* refused: non-finite values (counted) */
  guint64  latency_us;
  gsize    samples_used;
  double   loss;           /* mean L of the samples before the step */
  double   loss_after;     /* instant loop: L of the rating after the step
                            * (same truncation; computed after latency_us
                            * was taken); NAN elsewhere */
  double   grad_norm;      /* of the combined gradient, before clipping */
} RuvAdaptationResult;

typedef struct
{
  guint64 instant_updates;
  guint64 instant_skipped;
  guint64 background_runs;
  guint64 background_samples;
  guint64 deep_runs;
  guint64 deep_cancelled;
  guint64 rerated;
  guint64 dropped_samples;
  gsize   pending_samples;
  gsize   stored_samples;
  double  deep_accumulator;
  RuvMicroLoraStats lora;
} RuvLearningLoopStats;

typedef struct
{
  const RuvSonaTrace *trace;
  float               reward;
  float               quality;
} RuvSonaTrainingSample;

typedef void (*RuvSonaProgressFunc) (gint      epoch,
                                     gint      n_epochs,
                                     double    loss,
                                     gpointer  user_data);

#define RUV_TYPE_SONA_LLM (ruv_sona_llm_get_type ())
G_DECLARE_FINAL_TYPE (RuvSonaLlm, ruv_sona_llm, RUV, SONA_LLM, GObject)

/* config NULL: the defaults. A fresh MicroLoRA on the model is created. */
RuvSonaLlm   *ruv_sona_llm_new            (RuvModel               *model,
                                           const RuvSonaLlmConfig *config,
                                           GError                **error);
/* Replaces the adapter set (e.g. an imported one); samples and EWC state
 * are cleared. The lora must fit the model (checked by the importer). */
void          ruv_sona_llm_set_lora       (RuvSonaLlm             *self,
                                           RuvMicroLora           *lora);
RuvMicroLora *ruv_sona_llm_get_lora       (RuvSonaLlm             *self);
RuvEwc       *ruv_sona_llm_get_ewc        (RuvSonaLlm             *self);
/* Loads params (ruv_micro_lora_set_params order) into the adapter under the
 * loops' lock (a snapshot restored, an adapter imported); the EWC++ state
 * starts over with them as task 0 (ruv-ewc.h) and passes running on the old
 * weights are dropped, as set_lora does. FALSE (nothing changed) for a
 * non-finite value. */
gboolean      ruv_sona_llm_load_params    (RuvSonaLlm             *self,
                                           const float            *params);
RuvModel     *ruv_sona_llm_get_model      (RuvSonaLlm             *self);
const RuvSonaLlmConfig *ruv_sona_llm_get_config (RuvSonaLlm      *self);

/* Instant loop. Takes ownership of trace. key (may be NULL) identifies the
 * rated message: a second rating of it replaces the first. quality in [0,1];
 * reward: NaN -> 2 q - 1. Returns FALSE with RUV_ERROR_SONA when the rating
 * was refused (non-finite, or a trace not matching the adapters). */
gboolean      ruv_sona_llm_instant_adapt  (RuvSonaLlm             *self,
                                           RuvSonaTrace           *trace,
                                           const char             *key,
                                           float                   quality,
                                           float                   reward,
                                           RuvAdaptationResult    *result,
                                           GError                **error);
/* Background loop, run now on the calling thread (any pending samples). */
gboolean      ruv_sona_llm_background_consolidate (RuvSonaLlm          *self,
                                                   RuvAdaptationResult *result);
/* Runs background_consolidate when the interval has passed and enough
 * samples are pending; FALSE otherwise. */
gboolean      ruv_sona_llm_maybe_background (RuvSonaLlm          *self,
                                             RuvAdaptationResult *result);
/* Called (on the thread that ran it: the worker, or the caller of
 * background_consolidate / deep_optimize) after a consolidation or deep run
 * changed the weights, outside SONA's lock; deep is TRUE for a deep run.
 * One callback; NULL removes it. */
typedef void (*RuvSonaUpdatedFunc) (RuvSonaLlm                *sona,
                                    gboolean                   deep,
                                    const RuvAdaptationResult *result,
                                    gpointer                   user_data);
void          ruv_sona_llm_set_updated_func (RuvSonaLlm          *self,
                                             RuvSonaUpdatedFunc   func,
                                             gpointer             user_data);
/* Starts / stops the worker thread calling maybe_background about every
 * background_interval_ms. */
void          ruv_sona_llm_start_background (RuvSonaLlm          *self);
void          ruv_sona_llm_stop_background  (RuvSonaLlm          *self);

/* Deep loop over samples (n 0: every stored sample). loss_curve (may be
 * NULL) receives n_epochs + 1 doubles: the mean loss before training, then
 * after each epoch. RUV_ERROR_SONA on no usable samples; G_IO_ERROR_CANCELLED
 * when cancelled (weights restored). */
gboolean      ruv_sona_llm_deep_optimize  (RuvSonaLlm                  *self,
                                           const RuvSonaTrainingSample *samples,
                                           gsize                        n,
                                           RuvSonaProgressFunc          progress,
                                           gpointer                     user_data,
                                           GCancellable                *cancellable,
                                           GArray                      *loss_curve,
                                           RuvAdaptationResult         *result,
                                           GError                     **error);
gboolean      ruv_sona_llm_should_trigger_deep (RuvSonaLlm   *self);

/* Runs prompt + response through ctx with this SONA's adapters attached,
 * keeping the activations the backward pass needs, and returns the trace of
 * the response tokens (candidates: the base top-K of each position, K =
 * max (instant, background) candidates). logp (may be NULL) receives
 * log p(response | prompt) from the full logits. */
RuvSonaTrace *ruv_sona_llm_capture        (RuvSonaLlm             *self,
                                           RuvContext             *ctx,
                                           const gint32           *tokens,
                                           gint64                  n_prompt,
                                           gint64                  n_tokens,
                                           double                 *logp,
                                           GError                **error);

/* Capture during generation, so a rating needs no re-run. The generation
 * loop calls begin before it evaluates position pos0 (the last prompt token:
 * its logits give the first response token) with ctx already carrying this
 * SONA's adapters (it attaches them); token() for every response token with
 * the logits it was sampled from (before sampling changes them; candidates
 * are their top-K); end() builds the trace of the response (NULL with
 * RUV_ERROR_SONA when nothing was recorded or activations are missing);
 * abort() drops the capture (e.g. after a context shift). At most
 * max_tokens response tokens are kept (later ones are not traced). Tokens
 * must be recorded in order, one per evaluated position. */
void          ruv_sona_llm_generation_begin (RuvSonaLlm           *self,
                                             RuvContext           *ctx,
                                             gint64                pos0,
                                             gint64                max_tokens);
void          ruv_sona_llm_generation_token (RuvSonaLlm           *self,
                                             const float          *logits,
                                             gint32                token);
RuvSonaTrace *ruv_sona_llm_generation_end   (RuvSonaLlm           *self,
                                             GError              **error);
void          ruv_sona_llm_generation_abort (RuvSonaLlm           *self);

void          ruv_sona_llm_get_stats      (RuvSonaLlm             *self,
                                           RuvLearningLoopStats   *stats);
/* The MicroLoRA delta of (layer, module) for x (see ruv_micro_lora_forward). */
gboolean      ruv_sona_llm_forward        (RuvSonaLlm             *self,
                                           gint64                  layer,
                                           RuvTargetModule         module,
                                           const float            *x,
                                           gsize                   n_in,
                                           float                  *out,
                                           gsize                   n_out,
                                           GError                **error);
/* Adapter reset, samples, EWC state and counters cleared. */
void          ruv_sona_llm_reset          (RuvSonaLlm             *self);

/* The truncated objective J of a trace under the current weights (positions:
 * at most max_tokens evenly spaced, 0 all; n_cand candidates, 0 the full
 * vocabulary). For tests and scoring. */
double        ruv_sona_llm_trace_objective (RuvSonaLlm            *self,
                                            const RuvSonaTrace    *trace,
                                            gint                   max_tokens,
                                            gint                   n_cand);
/* Accumulates weight * dJ/dtheta of a trace into the lora's gradients (and
 * counts one sample); returns J, or NaN when refused (nothing added). */
double        ruv_sona_llm_trace_backward  (RuvSonaLlm            *self,
                                            const RuvSonaTrace    *trace,
                                            gint                   max_tokens,
                                            gint                   n_cand,
                                            float                  weight,
                                            gboolean               train);

G_END_DECLS
