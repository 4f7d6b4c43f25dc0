/* ruv-ewc.h — EWC++: an online diagonal Fisher estimate and the elastic
 * penalty that holds adapter weights near what earlier ratings taught.
 * SPDX-License-Identifier: MIT
 *
 * Over a flat parameter vector w (ruv_micro_lora_get_params order), online
 * EWC with task boundaries (Schwarz et al. 2018, "Progress & Compress"),
 * whose first task is the base model (task 0):
 *   set_base (w0, b):   task 0's anchor: the adapter the loop started from
 *                       (a new or reset adapter has B = 0: the base model)
 *   update_fisher (g):  C <- running mean of g^2 over the per-sample
 *                       gradients g of the loss since the last boundary
 *                       (the empirical Fisher of the current task)
 *   end_task (w):       F* <- decay * F* + C, C <- 0, w* <- w  (a boundary:
 *                       every sona.ewc_task_ratings consolidated ratings,
 *                       and the start of a deep run)
 *   penalty (w):        lambda / 2 * sum_i (F*_i / mean F*) (w_i - w*_i)^2
 *                       after the first boundary; before it, task 0:
 *                       lambda b / 2 * sum_i (C_i / mean C) (w_i - w0_i)^2
 *                       (C there is F* + C where set_fisher filled F*)
 *   penalty gradient:   min (lambda F_i / mean F, cap) (w_i - anchor_i),
 *                       cap = 0.5 / lr, so a step never moves past the anchor.
 * Online EWC keeps one quadratic penalty around the latest anchor whose
 * precision gathers the tasks' Fisher estimates (Huszar 2018, "Note on the
 * quadratic penalties in elastic weight consolidation": the weights at a
 * boundary were learnt under the earlier penalties, so earlier anchors are
 * not kept beside it). Task 0 makes the base model the first anchor: from
 * the first rating on, the weights are held toward w0 (without it nothing
 * held them before the first boundary, and the first anchor was already the
 * drifted adapter). Task 0's Fisher (the base model's, on what it knows) is
 * not known in advance; the rated answers are the model's own outputs, so
 * C, the running estimate from their gradients, stands for it. At the first
 * boundary the anchor moves on as for any task. F / mean F is each
 * parameter's importance relative to the average parameter, so lambda does
 * not depend on the model's gradient scale (F ~ 1e-4 on one model, 1e-7 on
 * another); lambda = 1 pulls an average parameter back by lr of its
 * distance from the anchor per step. After the first boundary only the
 * earlier tasks' Fisher enters the penalty: the current task's own
 * gradients do not stiffen the weights it is still learning.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _RuvEwc RuvEwc;

#define RUV_EWC_DEFAULT_DECAY  0.9f
#define RUV_EWC_DEFAULT_LAMBDA 0.5f     /* relative to mean F*; as RUV_SONA_DEFAULT_EWC_LAMBDA */

RuvEwc       *ruv_ewc_new            (gsize        n_params,
                                      float        decay);
void          ruv_ewc_free           (RuvEwc      *self);
RuvEwc       *ruv_ewc_copy           (const RuvEwc *self);

gsize         ruv_ewc_get_n_params   (const RuvEwc *self);
float         ruv_ewc_get_decay      (const RuvEwc *self);
guint64       ruv_ewc_get_n_updates  (const RuvEwc *self);
gboolean      ruv_ewc_has_anchor     (const RuvEwc *self);
const float  *ruv_ewc_get_fisher     (const RuvEwc *self);
const float  *ruv_ewc_get_anchor     (const RuvEwc *self);
/* Task 0 (see above): w0 and its weight b relative to lambda (b <= 0 or not
 * finite: no task 0, no penalty before the first boundary); cleared by
 * reset. */
void          ruv_ewc_set_base       (RuvEwc      *self,
                                      const float *w0,
                                      float        weight);
gboolean      ruv_ewc_has_base       (const RuvEwc *self);
const float  *ruv_ewc_get_base       (const RuvEwc *self);
float         ruv_ewc_get_base_weight (const RuvEwc *self);

/* Refuses (FALSE, nothing changed) a gradient with a non-finite value. */
gboolean      ruv_ewc_update_fisher  (RuvEwc      *self,
                                      const float *grad);
void          ruv_ewc_set_anchor     (RuvEwc      *self,
                                      const float *w);
/* A task boundary: F* <- decay F* + C, C <- 0, w* <- w. */
void          ruv_ewc_end_task       (RuvEwc      *self,
                                      const float *w);
/* C and the number of gradients in it. */
const float  *ruv_ewc_get_current_fisher (const RuvEwc *self);
guint64       ruv_ewc_get_n_current  (const RuvEwc *self);
/* Replaces F* (tests, restoring a snapshot). */
void          ruv_ewc_set_fisher     (RuvEwc      *self,
                                      const float *fisher);
double        ruv_ewc_penalty        (const RuvEwc *self,
                                      const float *w,
                                      float        lambda);
/* grad += min (lambda F / mean F, 0.5 / lr) (w - anchor) as above; nothing
 * without an anchor (w* or task 0's w0) or with its Fisher all zero. */
void          ruv_ewc_add_penalty_gradient (const RuvEwc *self,
                                            const float *w,
                                            float        lambda,
                                            float        learning_rate,
                                            float       *grad);
/* F*, C to zero, no anchor, no base. */
void          ruv_ewc_reset          (RuvEwc      *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvEwc, ruv_ewc_free)

G_END_DECLS
