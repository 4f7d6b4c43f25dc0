/* ruv-ewc.c — EWC++ online Fisher estimate and elastic penalty.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "ruv-ewc.h"

struct _RuvEwc
{
  gsize    n;
  float    decay;
  float   *fisher;     /* (n) F*: the earlier tasks', used by the penalty */
  float   *cur;        /* (n) running mean of g^2 since the last boundary */
  guint64  n_cur;
  float   *anchor;     /* (n) w* */
  gboolean has_anchor;
  float   *base;       /* (n) w0: task 0, the adapter the loop started from */
  float    base_weight;
  gboolean has_base;
  double   fisher_sum; /* sum of F*, kept with it (the penalty's normaliser) */
  double   cur_sum;    /* sum of C, likewise */
  guint64  n_updates;
};

RuvEwc *
ruv_ewc_new (gsize n_params,
             float decay)
{
  RuvEwc *self = g_new0 (RuvEwc, 1);

  self->n = n_params;
  self->decay = isfinite (decay) && decay >= 0.0f && decay < 1.0f ? decay
                                                                   : RUV_EWC_DEFAULT_DECAY;
  self->fisher = g_new0 (float, MAX (n_params, 1));
  self->cur = g_new0 (float, MAX (n_params, 1));
  self->anchor = g_new0 (float, MAX (n_params, 1));
  self->base = g_new0 (float, MAX (n_params, 1));
  return self;
}

void
ruv_ewc_free (RuvEwc *self)
{
  if (self == NULL)
    return;
  g_free (self->fisher);
  g_free (self->cur);
  g_free (self->anchor);
  g_free (self->base);
  g_free (self);
}

RuvEwc *
ruv_ewc_copy (const RuvEwc *self)
{
  RuvEwc *c = ruv_ewc_new (self->n, self->decay);

  memcpy (c->fisher, self->fisher, self->n * sizeof (float));
  memcpy (c->cur, self->cur, self->n * sizeof (float));
  memcpy (c->anchor, self->anchor, self->n * sizeof (float));
  memcpy (c->base, self->base, self->n * sizeof (float));
  c->n_cur = self->n_cur;
  c->has_anchor = self->has_anchor;
  c->base_weight = self->base_weight;
  c->has_base = self->has_base;
  c->fisher_sum = self->fisher_sum;
  c->cur_sum = self->cur_sum;
  c->n_updates = self->n_updates;
  return c;
}

gsize
ruv_ewc_get_n_params (const RuvEwc *self)
{
  return self->n;
}

float
ruv_ewc_get_decay (const RuvEwc *self)
{
  return self->decay;
}

guint64
ruv_ewc_get_n_updates (const RuvEwc *self)
{
  return self->n_updates;
}

gboolean
ruv_ewc_has_anchor (const RuvEwc *self)
{
  return self->has_anchor;
}

gboolean
ruv_ewc_has_base (const RuvEwc *self)
{
  return self->has_base;
}

const float *
ruv_ewc_get_base (const RuvEwc *self)
{
  return self->base;
}

float
ruv_ewc_get_base_weight (const RuvEwc *self)
{
  return self->has_base ? self->base_weight : 0.0f;
}

void
ruv_ewc_set_base (RuvEwc      *self,
                  const float *w0,
                  float        weight)
{
  memcpy (self->base, w0, self->n * sizeof (float));
  self->base_weight = isfinite (weight) && weight > 0.0f ? weight : 0.0f;
  self->has_base = self->base_weight > 0.0f;
}

const float *
ruv_ewc_get_fisher (const RuvEwc *self)
{
  return self->fisher;
}

const float *
ruv_ewc_get_current_fisher (const RuvEwc *self)
{
  return self->cur;
}

guint64
ruv_ewc_get_n_current (const RuvEwc *self)
{
  return self->n_cur;
}

const float *
ruv_ewc_get_anchor (const RuvEwc *self)
{
  return self->anchor;
}

gboolean
ruv_ewc_update_fisher (RuvEwc      *self,
                       const float *grad)
{
  guint32 bad = 0;
  float inv;
  double acc[8] = { 0 }, gsum = 0.0;
  gsize i, j;

  /* no early exit, so the check vectorises: |g| > 1e18 or not finite */
  for (i = 0; i < self->n; i++)
    {
      guint32 bits;

      memcpy (&bits, grad + i, sizeof bits);
      bad |= (bits & 0x7fffffffu) > 0x5d5e0b6bu;   /* 1e18f */
    }
  if (bad)
    return FALSE;
  self->n_cur++;
  inv = 1.0f / (float) self->n_cur;
  for (i = 0; i < self->n; i++)
    self->cur[i] += (grad[i] * grad[i] - self->cur[i]) * inv;
  /* sum C <- sum C + (sum g^2 - sum C) / n_cur, in eight lanes (vectorised;
   * double: g^2 may be near 1e36) */
  for (i = 0; i + 8 <= self->n; i += 8)
    for (j = 0; j < 8; j++)
      acc[j] += (double) grad[i + j] * grad[i + j];
  for (; i < self->n; i++)
    acc[0] += (double) grad[i] * grad[i];
  for (j = 0; j < 8; j++)
    gsum += acc[j];
  self->cur_sum += (gsum - self->cur_sum) / (double) self->n_cur;
  self->n_updates++;
  return TRUE;
}

void
ruv_ewc_set_anchor (RuvEwc      *self,
                    const float *w)
{
  memcpy (self->anchor, w, self->n * sizeof (float));
  self->has_anchor = TRUE;
}

/* The sum of F* (rarely: at a boundary or when F* is replaced). */
static void
fisher_resum (RuvEwc *self)
{
  double s = 0.0;
  gsize i;

  for (i = 0; i < self->n; i++)
    s += self->fisher[i];
  self->fisher_sum = s;
}

void
ruv_ewc_end_task (RuvEwc      *self,
                  const float *w)
{
  gsize i;

  if (self->n_cur > 0)
    {
      for (i = 0; i < self->n; i++)
        self->fisher[i] = self->decay * self->fisher[i] + self->cur[i];
      memset (self->cur, 0, self->n * sizeof (float));
      self->n_cur = 0;
      self->cur_sum = 0.0;
      fisher_resum (self);
    }
  ruv_ewc_set_anchor (self, w);
}

void
ruv_ewc_set_fisher (RuvEwc      *self,
                    const float *fisher)
{
  gsize i;

  for (i = 0; i < self->n; i++)
    self->fisher[i] = isfinite (fisher[i]) && fisher[i] > 0.0f ? fisher[i] : 0.0f;
  fisher_resum (self);
}

/* The penalty uses F_i / mean (F), each parameter's importance relative to
 * the average one, so lambda does not depend on the model's gradient scale
 * (per-token objectives give F ~ 1e-4 on one model and 1e-7 on another).
 * The sums are kept with F* and C, so a step costs no extra pass. */
static double
fisher_mean (const RuvEwc *self)
{
  return self->n > 0 ? self->fisher_sum / (double) self->n : 0.0;
}

/* The penalty's anchor, Fisher estimate and weight: the last task anchor
 * with F*, or before the first boundary task 0, the base w0, with C (the
 * running estimate; F* is still empty unless set_fisher filled it, then
 * F* + C) and base_weight. FALSE: no penalty. */
static gboolean
penalty_terms (const RuvEwc  *self,
               const float  **anchor,
               const float  **fisher,
               double        *mean,
               double        *weight)
{
  if (self->has_anchor)
    {
      *anchor = self->anchor;
      *fisher = self->fisher;
      *mean = fisher_mean (self);
      *weight = 1.0;
    }
  else if (self->has_base)
    {
      *anchor = self->base;
      *fisher = NULL;
      *mean = self->n > 0 ? (self->fisher_sum + self->cur_sum) / (double) self->n : 0.0;
      *weight = self->base_weight;
    }
  else
    return FALSE;
  return *mean > 0.0;
}

double
ruv_ewc_penalty (const RuvEwc *self,
                 const float  *w,
                 float         lambda)
{
  const float *anchor, *fisher;
  double s = 0.0, fm, wt;
  gsize i;

  if (!penalty_terms (self, &anchor, &fisher, &fm, &wt))
    return 0.0;
  for (i = 0; i < self->n; i++)
    {
      double d = (double) w[i] - anchor[i];
      double f = fisher != NULL ? fisher[i] : (double) self->fisher[i] + self->cur[i];

      s += f * d * d;
    }
  return 0.5 * lambda * wt * s / fm;
}

void
ruv_ewc_add_penalty_gradient (const RuvEwc *self,
                              const float  *w,
                              float         lambda,
                              float         learning_rate,
                              float        *grad)
{
  const float *anchor, *fisher;
  float cap, ls;
  double fm, wt;
  gsize i;

  if (!(lambda > 0.0f) || !(learning_rate > 0.0f) ||
      !penalty_terms (self, &anchor, &fisher, &fm, &wt))
    return;
  cap = 0.5f / learning_rate;
  ls = (float) (lambda * wt / fm);
  if (fisher != NULL)
    for (i = 0; i < self->n; i++)
      {
        /* F = 0 gives no pull even when lambda / mean (F) overflows float
         * (inf * 0 is NaN, and MIN (NaN, cap) is cap) */
        float k = fisher[i] > 0.0f ? MIN (ls * fisher[i], cap) : 0.0f;

        grad[i] += k * (w[i] - anchor[i]);
      }
  else
    for (i = 0; i < self->n; i++)
      {
        float f = self->fisher[i] + self->cur[i];
        float k = f > 0.0f ? MIN (ls * f, cap) : 0.0f;

        grad[i] += k * (w[i] - anchor[i]);
      }
}

void
ruv_ewc_reset (RuvEwc *self)
{
  memset (self->fisher, 0, self->n * sizeof (float));
  memset (self->cur, 0, self->n * sizeof (float));
  memset (self->anchor, 0, self->n * sizeof (float));
  memset (self->base, 0, self->n * sizeof (float));
  self->n_cur = 0;
  self->has_anchor = FALSE;
  self->has_base = FALSE;
  self->base_weight = 0.0f;
  self->fisher_sum = 0.0;
  self->cur_sum = 0.0;
  self->n_updates = 0;
}
