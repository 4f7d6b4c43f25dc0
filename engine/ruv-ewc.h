/* ruv-ewc.h — EWC++: an online diagonal Fisher estimate and the elastic
 * penalty that holds adapter weights near what earlier ratings taught.
 * SPDX-License-Identifier: MIT
 *
 * Over a flat parameter vector w (ruv_micro_lora_get_params order):
 *   update_fisher (g):  F <- decay * F + (1 - decay) * g^2   (g: a per-sample
 *                       gradient of the loss; the empirical Fisher)
 *   set_anchor (w):     w* <- w   (a task boundary: the start of a deep run,
 *                       or after each EwcMerge consolidation)
 *   penalty (w):        lambda / 2 * sum F (w - w*)^2
 *   penalty gradient:   min (lambda F, cap) (w - w*), cap = 0.5 / lr, so a
 *                       gradient step never moves past w* (lr * lambda * F < 1).
 * decay 0.9 forgets a rating's curvature with a half-life of ~7 ratings (the
 * reference's 0.999 would need hundreds of ratings to matter).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _RuvEwc RuvEwc;

#define RUV_EWC_DEFAULT_DECAY  0.9f
#define RUV_EWC_DEFAULT_LAMBDA 100.0f

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

/* Refuses (FALSE, nothing changed) a gradient with a non-finite value. */
gboolean      ruv_ewc_update_fisher  (RuvEwc      *self,
                                      const float *grad);
void          ruv_ewc_set_anchor     (RuvEwc      *self,
                                      const float *w);
/* Replaces the Fisher estimate (tests, restoring a snapshot). */
void          ruv_ewc_set_fisher     (RuvEwc      *self,
                                      const float *fisher);
double        ruv_ewc_penalty        (const RuvEwc *self,
                                      const float *w,
                                      float        lambda);
/* grad += min (lambda F, 0.5 / lr) (w - w*); nothing without an anchor. */
void          ruv_ewc_add_penalty_gradient (const RuvEwc *self,
                                            const float *w,
                                            float        lambda,
                                            float        learning_rate,
                                            float       *grad);
/* Fisher to zero, no anchor. */
void          ruv_ewc_reset          (RuvEwc      *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvEwc, ruv_ewc_free)

G_END_DECLS
