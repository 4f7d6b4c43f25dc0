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
  g_free (self);
}

RuvEwc *
ruv_ewc_copy (const RuvEwc *self)
{
  RuvEwc *c = ruv_ewc_new (self->n, self->decay);

  memcpy (c->fisher, self->fisher, self->n * sizeof (float));
  memcpy (c->cur, self->cur, self->n * sizeof (float));
  memcpy (c->anchor, self->anchor, self->n * sizeof (float));
  c->n_cur = self->n_cur;
  c->has_anchor = self->has_anchor;
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
  gsize i;

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
}

/* The Fisher estimate's mean over the parameters: the penalty uses
 * F_i / mean (F), each parameter's importance relative to the average one,
 * so lambda does not depend on the model's gradient scale (per-token
 * objectives give F ~ 1e-4 on one model and 1e-7 on another). */
static double
fisher_mean (const RuvEwc *self)
{
  double s = 0.0;
  gsize i;

  for (i = 0; i < self->n; i++)
    s += self->fisher[i];
  return self->n > 0 ? s / (double) self->n : 0.0;
}

double
ruv_ewc_penalty (const RuvEwc *self,
                 const float  *w,
                 float         lambda)
{
  double s = 0.0, fm;
  gsize i;

  if (!self->has_anchor || !((fm = fisher_mean (self)) > 0.0))
    return 0.0;
  for (i = 0; i < self->n; i++)
    {
      double d = (double) w[i] - self->anchor[i];

      s += self->fisher[i] * d * d;
    }
  return 0.5 * lambda * s / fm;
}

void
ruv_ewc_add_penalty_gradient (const RuvEwc *self,
                              const float  *w,
                              float         lambda,
                              float         learning_rate,
                              float        *grad)
{
  float cap, ls;
  double fm;
  gsize i;

  if (!self->has_anchor || !(lambda > 0.0f) || !(learning_rate > 0.0f) ||
      !((fm = fisher_mean (self)) > 0.0))
    return;
  cap = 0.5f / learning_rate;
  ls = (float) (lambda / fm);
  for (i = 0; i < self->n; i++)
    {
      /* F = 0 gives no pull even when lambda / mean (F) overflows float
       * (inf * 0 is NaN, and MIN (NaN, cap) is cap) */
      float k = self->fisher[i] > 0.0f ? MIN (ls * self->fisher[i], cap) : 0.0f;

      grad[i] += k * (w[i] - self->anchor[i]);
    }
}

void
ruv_ewc_reset (RuvEwc *self)
{
  memset (self->fisher, 0, self->n * sizeof (float));
  memset (self->cur, 0, self->n * sizeof (float));
  memset (self->anchor, 0, self->n * sizeof (float));
  self->n_cur = 0;
  self->has_anchor = FALSE;
  self->n_updates = 0;
}
