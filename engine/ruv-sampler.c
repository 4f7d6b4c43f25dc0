/* ruv-sampler.c — repetition penalty, top-k, top-p, min-p, temperature, draw.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>

#include "ruv-sampler.h"

typedef struct
{
  gint32 id;
  float  logit;
  float  p;
} Candidate;

struct _RuvSampler
{
  RuvGenerateParams *params;
  int                n_vocab;
  Candidate         *cand;        /* n_vocab entries, allocated once */
  gint32            *window;      /* ring of the last repeat_last_n tokens */
  guint              window_len;
  guint              window_pos;
  guint8            *seen;        /* n_vocab flags, reused per sample */
  guint64            seed;
  guint64            rng[4];      /* xoshiro256** state */
};

static guint64
splitmix64 (guint64 *x)
{
  guint64 z = (*x += G_GUINT64_CONSTANT (0x9E3779B97F4A7C15));

  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static inline guint64
rotl (guint64 x, int k)
{
  return (x << k) | (x >> (64 - k));
}

static guint64
rng_next (RuvSampler *self)
{
  guint64 *s = self->rng;
  guint64 result = rotl (s[1] * 5, 7) * 9;
  guint64 t = s[1] << 17;

  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl (s[3], 45);
  return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double
rng_uniform (RuvSampler *self)
{
  return (double) (rng_next (self) >> 11) * 0x1.0p-53;
}

RuvSampler *
ruv_sampler_new (const RuvGenerateParams *params,
                 int                      n_vocab)
{
  RuvSampler *self;
  guint64 sm;
  int i;

  g_return_val_if_fail (params != NULL, NULL);
  g_return_val_if_fail (n_vocab > 0, NULL);

  self = g_new0 (RuvSampler, 1);
  self->params = ruv_generate_params_copy (params);
  self->n_vocab = n_vocab;
  self->cand = g_new (Candidate, n_vocab);
  self->seen = g_new0 (guint8, n_vocab);
  self->window = g_new0 (gint32, MAX (params->repeat_last_n, 1));
  if (params->has_seed)
    self->seed = params->seed;
  else
    self->seed = ((guint64) g_random_int () << 32) | g_random_int ();
  sm = self->seed;
  for (i = 0; i < 4; i++)
    self->rng[i] = splitmix64 (&sm);
  return self;
}

void
ruv_sampler_free (RuvSampler *self)
{
  if (self == NULL)
    return;
  ruv_generate_params_free (self->params);
  g_free (self->cand);
  g_free (self->seen);
  g_free (self->window);
  g_free (self);
}

guint64
ruv_sampler_get_seed (const RuvSampler *self)
{
  return self->seed;
}

void
ruv_sampler_accept (RuvSampler *self,
                    gint32      token)
{
  guint cap = self->params->repeat_last_n;

  if (cap == 0)
    return;
  self->window[self->window_pos] = token;
  self->window_pos = (self->window_pos + 1) % cap;
  if (self->window_len < cap)
    self->window_len++;
}

/* CTRL-style penalty, once per distinct token of the window (llama.cpp):
 * positive logits are divided, negative ones multiplied. */
static void
apply_repetition_penalty (RuvSampler *self,
                          float      *logits)
{
  float penalty = self->params->repetition_penalty;
  guint i;

  if (penalty == 1.0f || self->window_len == 0)
    return;
  for (i = 0; i < self->window_len; i++)
    {
      gint32 t = self->window[i];

      if (t < 0 || t >= self->n_vocab || self->seen[t])
        continue;
      self->seen[t] = 1;
      logits[t] = logits[t] > 0.0f ? logits[t] / penalty : logits[t] * penalty;
    }
  for (i = 0; i < self->window_len; i++)
    {
      gint32 t = self->window[i];

      if (t >= 0 && t < self->n_vocab)
        self->seen[t] = 0;
    }
}

static int
cmp_candidate_desc (const void *a,
                    const void *b)
{
  const Candidate *x = a;
  const Candidate *y = b;

  if (x->logit != y->logit)
    return x->logit < y->logit ? 1 : -1;
  return x->id < y->id ? -1 : (x->id > y->id);
}

static gint32
argmax (const float *logits,
        int          n)
{
  int best = 0;
  int i;

  for (i = 1; i < n; i++)
    if (logits[i] > logits[best])
      best = i;
  return best;
}

/* "a ranks before b": a higher logit, or the same logit and a lower id, as
 * cmp_candidate_desc; a total order, since ids differ. */
static inline gboolean
ranks_before (const Candidate *a,
              const Candidate *b)
{
  return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static inline void
swap_candidates (Candidate *a,
                 Candidate *b)
{
  Candidate t = *a;

  *a = *b;
  *b = t;
}

/* Reorders c[0 .. n) so that c[0 .. k) are the k best (in any order),
 * 0 < k < n: Hoare quickselect with a median-of-three pivot; the ranking is
 * total, so the set is the one a full sort would put first. */
static void
select_best (Candidate *c,
             int        n,
             int        k)
{
  int lo = 0, hi = n - 1;

  while (hi > lo)
    {
      int mid = lo + (hi - lo) / 2, i = lo, j = hi;
      Candidate pivot;

      if (ranks_before (&c[mid], &c[lo]))
        swap_candidates (&c[mid], &c[lo]);
      if (ranks_before (&c[hi], &c[lo]))
        swap_candidates (&c[hi], &c[lo]);
      if (ranks_before (&c[hi], &c[mid]))
        swap_candidates (&c[hi], &c[mid]);
      pivot = c[mid];
      while (i <= j)
        {
          while (ranks_before (&c[i], &pivot))
            i++;
          while (ranks_before (&pivot, &c[j]))
            j--;
          if (i <= j)
            {
              swap_candidates (&c[i], &c[j]);
              i++;
              j--;
            }
        }
      /* c[lo .. j] rank before or equal to the pivot, c[i .. hi] after or
       * equal, and anything between them is the pivot itself. */
      if (k - 1 <= j)
        hi = j;
      else if (k - 1 >= i)
        lo = i;
      else
        return;
    }
}

/* Sorts c[0 .. n) into rank order: quicksort partitions as select_best's,
 * insertion sort below 16, and qsort past a depth that only adversarial
 * input reaches. Inline comparisons make it several times faster than
 * qsort on the 100k-candidate flat distributions of random weights. */
static void
sort_candidates (Candidate *c,
                 int        n,
                 int        depth)
{
  int a, b;

  while (n > 16)
    {
      int mid = n / 2, i = 0, j = n - 1;
      Candidate pivot;

      if (depth-- == 0)
        {
          qsort (c, (gsize) n, sizeof *c, cmp_candidate_desc);
          return;
        }
      if (ranks_before (&c[mid], &c[0]))
        swap_candidates (&c[mid], &c[0]);
      if (ranks_before (&c[n - 1], &c[0]))
        swap_candidates (&c[n - 1], &c[0]);
      if (ranks_before (&c[n - 1], &c[mid]))
        swap_candidates (&c[n - 1], &c[mid]);
      pivot = c[mid];
      while (i <= j)
        {
          while (ranks_before (&c[i], &pivot))
            i++;
          while (ranks_before (&pivot, &c[j]))
            j--;
          if (i <= j)
            {
              swap_candidates (&c[i], &c[j]);
              i++;
              j--;
            }
        }
      /* c[0 .. j] and c[i .. n) are sorted apart; recurse into the smaller */
      if (j + 1 < n - i)
        {
          sort_candidates (c, j + 1, depth);
          c += i;
          n -= i;
        }
      else
        {
          sort_candidates (c + i, n - i, depth);
          n = j + 1;
        }
    }
  for (a = 1; a < n; a++)
    {
      Candidate v = c[a];

      for (b = a; b > 0 && ranks_before (&v, &c[b - 1]); b--)
        c[b] = c[b - 1];
      c[b] = v;
    }
}

/* The candidates c[0 .. n), ranked lazily: c[0 .. sorted) are the best
 * `sorted` in rank order, and everything after ranks below them. A large
 * vocabulary (128k for Llama 3) is thus not sorted whole when top-p or
 * min-p keep a few dozen tokens. */
typedef struct
{
  Candidate *c;
  int        n;
  int        sorted;
} Ranking;

/* Makes c[i] the i-th best (i < n). */
static inline const Candidate *
ranked (Ranking *r,
        int      i)
{
  if (i >= r->sorted)
    {
      /* grow geometrically: a few selections per sample at most */
      int k = MIN (r->n, MAX (MAX (2 * r->sorted, 64), i + 1));

      /* past a quarter, selecting first costs more than it saves */
      if (k > r->n / 4)
        k = r->n;
      if (k < r->n)
        select_best (r->c + r->sorted, r->n - r->sorted, k - r->sorted);
      sort_candidates (r->c + r->sorted, k - r->sorted, 64);
      r->sorted = k;
    }
  return &r->c[i];
}

gint32
ruv_sampler_sample (RuvSampler *self,
                    float      *logits)
{
  const RuvGenerateParams *p = self->params;
  Candidate *c = self->cand;
  Ranking rank;
  int n = 0;
  int i;
  float max_logit = -INFINITY;
  double sum = 0.0;
  double cum;
  double r;

  apply_repetition_penalty (self, logits);
  if (p->temperature == 0.0f)
    return argmax (logits, self->n_vocab);

  for (i = 0; i < self->n_vocab; i++)
    if (logits[i] > max_logit)
      max_logit = logits[i];
  if (!isfinite (max_logit))
    return argmax (logits, self->n_vocab);

  /* Tokens more than 40 nats below the best have p < 4e-18 of the best;
   * dropping them changes no kept mass representable in a float. */
  for (i = 0; i < self->n_vocab; i++)
    if (logits[i] >= max_logit - 40.0f)
      {
        c[n].id = i;
        c[n].logit = logits[i];
        n++;
      }
  rank.c = c;
  rank.n = n;
  rank.sorted = 0;
  if (p->top_k > 0 && (int) p->top_k < n)
    {
      select_best (c, n, (int) p->top_k);
      n = rank.n = (int) p->top_k;
    }

  /* Untempered probabilities for top-p and min-p, as llama.cpp's chain. */
  for (i = 0; i < n; i++)
    {
      c[i].p = expf (c[i].logit - max_logit);
      sum += c[i].p;
    }

  if (p->top_p < 1.0f)
    {
      cum = 0.0;
      for (i = 0; i < n; i++)
        {
          cum += ranked (&rank, i)->p / sum;
          if (cum >= p->top_p)
            {
              n = i + 1;
              break;
            }
        }
    }
  if (p->min_p > 0.0f)
    {
      int keep = 1;

      /* the best has p = 1 before normalisation */
      while (keep < n && ranked (&rank, keep)->p >= p->min_p)
        keep++;
      n = keep;
    }

  /* Temperature, then a draw from what is left, walked in rank order. */
  sum = 0.0;
  for (i = 0; i < n; i++)
    {
      c[i].p = expf ((c[i].logit - max_logit) / p->temperature);
      sum += c[i].p;
    }
  r = rng_uniform (self) * sum;
  cum = 0.0;
  for (i = 0; i < n; i++)
    {
      cum += ranked (&rank, i)->p;
      if (r < cum)
        return c[i].id;
    }
  return ranked (&rank, n - 1)->id;
}
