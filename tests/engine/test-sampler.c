/* test-sampler.c — generation parameters, the sampler chain and stop sequences.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-generate-params.h"
#include "ruv-sampler.h"
#include "ruv-stop-matcher.h"

static void
test_params_defaults (void)
{
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();

  g_assert_cmpuint (p->max_tokens, ==, 256);
  g_assert_cmpfloat (p->temperature, ==, 0.7f);
  g_assert_cmpfloat (p->top_p, ==, 0.9f);
  g_assert_cmpuint (p->top_k, ==, 0);
  g_assert_cmpfloat (p->repetition_penalty, ==, 1.1f);
  g_assert_null (p->stop_sequences);
  g_assert_false (p->has_seed);
  g_assert_true (ruv_generate_params_validate (p, NULL));
}

static void
test_params_invalid (void)
{
  struct { const char *what; float temp, top_p, min_p, rep; guint max; const char *needle; } cases[] = {
    { "negative temperature", -0.5f, 0.9f, 0.0f, 1.1f, 16, "temperature" },
    { "nan temperature", NAN, 0.9f, 0.0f, 1.1f, 16, "temperature" },
    { "top_p zero", 0.7f, 0.0f, 0.0f, 1.1f, 16, "top_p" },
    { "top_p above one", 0.7f, 1.5f, 0.0f, 1.1f, 16, "top_p" },
    { "min_p negative", 0.7f, 0.9f, -0.1f, 1.1f, 16, "min_p" },
    { "penalty zero", 0.7f, 0.9f, 0.0f, 0.0f, 16, "repetition_penalty" },
    { "max_tokens zero", 0.7f, 0.9f, 0.0f, 1.1f, 0, "max_tokens" },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
      g_autoptr(GError) error = NULL;

      p->temperature = cases[i].temp;
      p->top_p = cases[i].top_p;
      p->min_p = cases[i].min_p;
      p->repetition_penalty = cases[i].rep;
      p->max_tokens = cases[i].max;
      g_assert_false (ruv_generate_params_validate (p, &error));
      g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
      g_assert_nonnull (strstr (error->message, cases[i].needle));
    }
}

static void
test_params_empty_stop (void)
{
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  g_autoptr(GError) error = NULL;
  const char *stops[] = { "ok", "", NULL };

  ruv_generate_params_set_stop_sequences (p, stops);
  g_assert_false (ruv_generate_params_validate (p, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
}

static void
fill_logits (float *logits,
             int    n,
             guint  seed)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (seed);
  int i;

  for (i = 0; i < n; i++)
    logits[i] = (float) g_rand_double_range (r, -4.0, 4.0);
}

static void
test_greedy (void)
{
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  float logits[1000];
  g_autoptr(RuvSampler) s = NULL;

  p->temperature = 0.0f;
  p->repetition_penalty = 1.0f;
  s = ruv_sampler_new (p, 1000);
  fill_logits (logits, 1000, 1);
  logits[417] = 9.0f;
  g_assert_cmpint (ruv_sampler_sample (s, logits), ==, 417);
}

static void
test_top_k_one_is_greedy (void)
{
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  float logits[500];
  int i;

  p->top_k = 1;
  p->temperature = 1.5f;
  p->repetition_penalty = 1.0f;
  for (i = 0; i < 50; i++)
    {
      g_autoptr(RuvSampler) s = NULL;
      int j, best = 0;

      p->has_seed = TRUE;
      p->seed = i;
      s = ruv_sampler_new (p, 500);
      fill_logits (logits, 500, 100 + i);
      for (j = 1; j < 500; j++)
        if (logits[j] > logits[best])
          best = j;
      g_assert_cmpint (ruv_sampler_sample (s, logits), ==, best);
    }
}

/* Same seed, same logits: same draws; per-token draws differ. */
static void
test_seed_reproducible (void)
{
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  gint32 a[64], b[64];
  float logits[256];
  int run, i;
  gboolean varied = FALSE;

  p->has_seed = TRUE;
  p->seed = 1234;
  p->temperature = 1.0f;
  p->top_p = 1.0f;
  for (run = 0; run < 2; run++)
    {
      g_autoptr(RuvSampler) s = ruv_sampler_new (p, 256);

      g_assert_cmpuint (ruv_sampler_get_seed (s), ==, 1234);
      for (i = 0; i < 64; i++)
        {
          gint32 t;

          fill_logits (logits, 256, 7);
          t = ruv_sampler_sample (s, logits);
          ruv_sampler_accept (s, t);
          (run == 0 ? a : b)[i] = t;
        }
    }
  for (i = 0; i < 64; i++)
    {
      g_assert_cmpint (a[i], ==, b[i]);
      if (a[i] != a[0])
        varied = TRUE;
    }
  g_assert_true (varied);
}

/* Frequencies follow softmax(logits / T) (fixed seed: deterministic). */
static void
test_distribution (void)
{
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  g_autoptr(RuvSampler) s = NULL;
  float base[4] = { 1.0f, 0.0f, -1.0f, 0.5f };
  int counts[4] = { 0 };
  double expect[4], z = 0;
  const int n = 40000;
  int i;

  p->has_seed = TRUE;
  p->seed = 99;
  p->temperature = 0.8f;
  p->top_p = 1.0f;
  p->repetition_penalty = 1.0f;
  s = ruv_sampler_new (p, 4);
  for (i = 0; i < 4; i++)
    z += expect[i] = exp (base[i] / 0.8);
  for (i = 0; i < n; i++)
    {
      float logits[4];

      memcpy (logits, base, sizeof logits);
      counts[ruv_sampler_sample (s, logits)]++;
    }
  for (i = 0; i < 4; i++)
    {
      double f = (double) counts[i] / n;
      double e = expect[i] / z;

      /* 5 standard deviations of a binomial proportion. */
      g_assert_cmpfloat (fabs (f - e), <, 5.0 * sqrt (e * (1 - e) / n));
    }
}

static void
test_top_p_and_min_p (void)
{
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  /* p ~ (0.64, 0.24, 0.09, 0.03) */
  float base[4] = { 3.0f, 2.0f, 1.0f, -0.1f };
  int i;

  p->temperature = 1.0f;
  p->repetition_penalty = 1.0f;
  p->has_seed = TRUE;

  /* top_p 0.8 keeps {0, 1}; min_p 0.3 keeps {0, 1} (0.24/0.64 = 0.37). */
  for (i = 0; i < 500; i++)
    {
      g_autoptr(RuvSampler) s1 = NULL;
      g_autoptr(RuvSampler) s2 = NULL;
      float l[4];
      gint32 t;

      p->seed = i;
      p->top_p = 0.8f;
      p->min_p = 0.0f;
      s1 = ruv_sampler_new (p, 4);
      memcpy (l, base, sizeof l);
      t = ruv_sampler_sample (s1, l);
      g_assert_true (t == 0 || t == 1);

      p->top_p = 1.0f;
      p->min_p = 0.3f;
      s2 = ruv_sampler_new (p, 4);
      memcpy (l, base, sizeof l);
      t = ruv_sampler_sample (s2, l);
      g_assert_true (t == 0 || t == 1);
    }
}

/* A large vocabulary with many tied logits: the sampler ranks candidates
 * lazily (selection, then sorting only the prefix it walks). Every draw must
 * come from the set a full sort defines (ties: the lower id first), and the
 * kept tokens must be drawn about as often as their probabilities say. */
typedef struct
{
  gint32 id;
  float  logit;
} Ranked;

static int
cmp_ranked (const void *a,
            const void *b)
{
  const Ranked *x = a, *y = b;

  if (x->logit != y->logit)
    return x->logit < y->logit ? 1 : -1;
  return (x->id > y->id) - (x->id < y->id);
}

static void
check_kept_set (float top_p,
                float min_p,
                guint top_k)
{
  const int n_vocab = 20000, n_draws = 200;
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  g_autoptr(GRand) r = g_rand_new_with_seed (5);
  g_autofree float *base = g_new (float, n_vocab);
  g_autofree float *l = g_new (float, n_vocab);
  g_autofree Ranked *ref = g_new (Ranked, n_vocab);
  g_autofree int *rank_of = g_new (int, n_vocab);
  g_autofree int *counts = NULL;
  double sum = 0.0, cum = 0.0, z = 0.0;
  int i, n_keep;

  /* steps of 0.25 in [-8, -4]: thousands of ties; 40 tokens in 5 tied
   * levels from 4 to 5 stand out and hold about 95% of the mass */
  for (i = 0; i < n_vocab; i++)
    base[i] = roundf ((float) g_rand_double_range (r, -8.0, 8.0)) / 4.0f - 6.0f;
  for (i = 0; i < 40; i++)
    base[g_rand_int_range (r, 0, n_vocab)] = 4.0f + (float) (i % 5) * 0.25f;

  /* the reference: the old chain with a full sort */
  for (i = 0; i < n_vocab; i++)
    {
      ref[i].id = i;
      ref[i].logit = base[i];
    }
  qsort (ref, n_vocab, sizeof *ref, cmp_ranked);
  n_keep = top_k > 0 ? (int) top_k : n_vocab;
  for (i = 0; i < n_keep; i++)
    sum += expf (ref[i].logit - ref[0].logit);
  if (top_p < 1.0f)
    for (i = 0; i < n_keep; i++)
      {
        cum += expf (ref[i].logit - ref[0].logit) / sum;
        if (cum >= top_p)
          {
            n_keep = i + 1;
            break;
          }
      }
  if (min_p > 0.0f)
    for (i = 1; i < n_keep; i++)
      if (expf (ref[i].logit - ref[0].logit) < min_p)
        {
          n_keep = i;
          break;
        }
  g_assert_cmpint (n_keep, >, 1);
  g_assert_cmpint (n_keep, <, 200);
  for (i = 0; i < n_vocab; i++)
    rank_of[ref[i].id] = i;
  counts = g_new0 (int, n_keep);

  p->temperature = 1.0f;
  p->repetition_penalty = 1.0f;
  p->top_p = top_p;
  p->min_p = min_p;
  p->top_k = top_k;
  p->has_seed = TRUE;
  for (i = 0; i < n_draws; i++)
    {
      g_autoptr(RuvSampler) s = NULL;
      gint32 t;

      p->seed = (guint64) i;
      s = ruv_sampler_new (p, n_vocab);
      memcpy (l, base, (gsize) n_vocab * sizeof (float));
      t = ruv_sampler_sample (s, l);
      g_assert_cmpint (t, >=, 0);
      g_assert_cmpint (t, <, n_vocab);
      g_assert_cmpint (rank_of[t], <, n_keep);
      counts[rank_of[t]]++;
    }
  /* 5 standard deviations of a binomial count, for the likely tokens */
  for (i = 0; i < n_keep; i++)
    z += exp (ref[i].logit - ref[0].logit);
  for (i = 0; i < n_keep; i++)
    {
      double e = exp (ref[i].logit - ref[0].logit) / z;

      if (e * n_draws >= 20)
        g_assert_cmpfloat (fabs (counts[i] - e * n_draws), <,
                           5.0 * sqrt (n_draws * e * (1 - e)));
    }
}

static void
test_large_vocab_ranking (void)
{
  check_kept_set (0.5f, 0.0f, 0);
  check_kept_set (0.9f, 0.0f, 0);
  check_kept_set (1.0f, 0.3f, 0);
  check_kept_set (0.9f, 0.0f, 7);
}

static void
test_repetition_penalty (void)
{
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  g_autoptr(RuvSampler) s = NULL;
  float logits[3] = { 2.0f, 1.9f, -1.0f };

  p->temperature = 0.0f;
  p->repetition_penalty = 1.5f;
  s = ruv_sampler_new (p, 3);
  ruv_sampler_accept (s, 0);
  ruv_sampler_accept (s, 0);   /* counted once */
  ruv_sampler_accept (s, 2);
  g_assert_cmpint (ruv_sampler_sample (s, logits), ==, 1);
  g_assert_cmpfloat_with_epsilon (logits[0], 2.0f / 1.5f, 1e-6);
  g_assert_cmpfloat_with_epsilon (logits[2], -1.5f, 1e-6);
  g_assert_cmpfloat (logits[1], ==, 1.9f);
}

/* Feeds pieces and returns what was emitted, and whether it stopped. */
static char *
run_stops (const char * const *stops,
           const char * const *pieces,
           gboolean           *stopped)
{
  g_autoptr(RuvStopMatcher) m = ruv_stop_matcher_new (stops);
  GString *out = g_string_new (NULL);
  const char *emit;
  gsize len;
  guint i;

  *stopped = FALSE;
  for (i = 0; pieces[i] != NULL; i++)
    {
      gsize before = out->len;

      *stopped = ruv_stop_matcher_push (m, pieces[i], strlen (pieces[i]), &emit, &len);
      g_string_append_len (out, emit, len);
      /* Never emit a partial UTF-8 character. */
      g_assert_true (g_utf8_validate (out->str + before, out->len - before, NULL));
      if (*stopped)
        break;
    }
  if (!*stopped)
    {
      ruv_stop_matcher_flush (m, &emit, &len);
      g_string_append_len (out, emit, len);
    }
  return g_string_free (out, FALSE);
}

static void
test_stop_across_tokens (void)
{
  const char *stops[] = { "</answer>", NULL };
  const char *pieces[] = { "The end", "</", "ans", "wer>", " more", NULL };
  gboolean stopped;
  g_autofree char *out = run_stops (stops, pieces, &stopped);

  g_assert_true (stopped);
  g_assert_cmpstr (out, ==, "The end");
}

static void
test_stop_earliest (void)
{
  const char *stops[] = { "world", "lo w", NULL };
  const char *pieces[] = { "hel", "lo world", NULL };
  gboolean stopped;
  g_autofree char *out = run_stops (stops, pieces, &stopped);

  g_assert_true (stopped);
  g_assert_cmpstr (out, ==, "hel");
}

/* A held-back prefix that never completes is released, in order. */
static void
test_stop_held_then_released (void)
{
  const char *stops[] = { "User:", NULL };
  const char *pieces[] = { "Use", "ful ", "Us", "e it", NULL };
  gboolean stopped;
  g_autofree char *out = run_stops (stops, pieces, &stopped);

  g_assert_false (stopped);
  g_assert_cmpstr (out, ==, "Useful Use it");
}

/* Nothing of a stop is ever streamed, not even its first byte. */
static void
test_stop_never_streamed (void)
{
  const char *stops[] = { "\n\n", NULL };
  g_autoptr(RuvStopMatcher) m = ruv_stop_matcher_new (stops);
  const char *emit;
  gsize len;

  g_assert_false (ruv_stop_matcher_push (m, "a\n", 2, &emit, &len));
  g_assert_cmpuint (len, ==, 1);
  g_assert_cmpint (emit[0], ==, 'a');
  g_assert_true (ruv_stop_matcher_push (m, "\nb", 2, &emit, &len));
  g_assert_cmpuint (len, ==, 0);
  g_assert_cmpstr (ruv_stop_matcher_get_text (m, NULL), ==, "a");
}

static void
test_stop_utf8 (void)
{
  const char *stops[] = { "\xc3\xa9t\xc3\xa9", NULL };   /* "été" */
  const char *pieces[] = { "caf\xc3\xa9", " \xc3\xa9", "t", "\xc3\xa9", NULL };
  gboolean stopped;
  g_autofree char *out = run_stops (stops, pieces, &stopped);

  g_assert_true (stopped);
  g_assert_cmpstr (out, ==, "caf\xc3\xa9 ");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/engine/params/defaults", test_params_defaults);
  g_test_add_func ("/engine/params/invalid", test_params_invalid);
  g_test_add_func ("/engine/params/empty-stop", test_params_empty_stop);
  g_test_add_func ("/engine/sampler/greedy", test_greedy);
  g_test_add_func ("/engine/sampler/top-k-one", test_top_k_one_is_greedy);
  g_test_add_func ("/engine/sampler/seed", test_seed_reproducible);
  g_test_add_func ("/engine/sampler/distribution", test_distribution);
  g_test_add_func ("/engine/sampler/top-p-min-p", test_top_p_and_min_p);
  g_test_add_func ("/engine/sampler/repetition-penalty", test_repetition_penalty);
  g_test_add_func ("/engine/sampler/large-vocab-ranking", test_large_vocab_ranking);
  g_test_add_func ("/engine/stop/across-tokens", test_stop_across_tokens);
  g_test_add_func ("/engine/stop/earliest", test_stop_earliest);
  g_test_add_func ("/engine/stop/held-then-released", test_stop_held_then_released);
  g_test_add_func ("/engine/stop/never-streamed", test_stop_never_streamed);
  g_test_add_func ("/engine/stop/utf8", test_stop_utf8);

  return g_test_run ();
}
