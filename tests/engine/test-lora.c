/* test-lora.c — MicroLoRA, EWC++, SONA loops and GGUF LoRA adapters.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib/gstdio.h>

#include "ruv-error.h"
#include "ruv-ewc.h"
#include "ruv-learner.h"
#include "ruv-lora-gguf.h"
#include "ruv-lora.h"
#include "ruv-model-private.h"
#include "ruv-sona.h"
#include "ruv-test-util.h"

/* ---- helpers ---------------------------------------------------------------- */

static guint64
mix (guint64 *s)
{
  guint64 z = (*s += G_GUINT64_CONSTANT (0x9E3779B97F4A7C15));

  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static float
frand (guint64 *s)
{
  return (float) (mix (s) >> 40) / 16777216.0f * 2.0f - 1.0f;
}

/* Random weights; norm weights near 1. */
static void
fill_random (const char *name,
             float      *v,
             gint64      ne0,
             gint64      ne1,
             gpointer    user_data)
{
  guint64 s = g_str_hash (name) ^ GPOINTER_TO_UINT (user_data);
  gint64 i;
  gboolean norm = strstr (name, "norm") != NULL;

  for (i = 0; i < ne0 * ne1; i++)
    v[i] = norm ? 1.0f + 0.2f * frand (&s) : 0.5f * frand (&s);
}

typedef struct
{
  GBytes   *bytes;
  RuvModel *model;
} TinyModel;

static void
tiny_model (TinyModel  *tm,
            const char *arch,
            gint64      n_embd,
            gint64      n_vocab)
{
  RuvTestModelSpec spec;
  g_autoptr(GError) error = NULL;
  gsize size;
  const guint8 *data;

  ruv_test_model_spec_init (&spec);
  spec.arch = arch;
  spec.n_embd = n_embd;
  spec.n_layer = 2;
  spec.n_vocab = n_vocab;
  spec.n_ff = 48;
  tm->bytes = ruv_test_model_build (&spec, fill_random, GUINT_TO_POINTER (7));
  data = g_bytes_get_data (tm->bytes, &size);
  tm->model = ruv_model_new_from_data (data, size, "tiny", &error);
  g_assert_no_error (error);
}

static void
tiny_model_clear (TinyModel *tm)
{
  g_clear_object (&tm->model);
  g_clear_pointer (&tm->bytes, g_bytes_unref);
}

static RuvSonaLlm *
make_sona (RuvModel               *model,
           RuvConsolidationStrategy strategy,
           gboolean                 loose)
{
  RuvSonaLlmConfig cfg;
  g_autoptr(GError) error = NULL;
  RuvSonaLlm *sona;

  ruv_sona_llm_config_init (&cfg, model);
  cfg.consolidation_strategy = strategy;
  cfg.sona.background_candidates = 0;
  /* EwcMerge: an EWC++ task boundary after consolidation_case's 3 ratings */
  cfg.sona.ewc_task_ratings = 3;
  if (loose)
    {
      cfg.micro_lora.max_grad_norm = 1e6f;
      cfg.micro_lora.max_weight_abs = 1e6f;
      cfg.sona.max_step_nats = 0.0f;   /* plain gradient steps */
    }
  sona = ruv_sona_llm_new (model, &cfg, &error);
  g_assert_no_error (error);
  return sona;
}

/* Random non-zero adapter weights (B too), so every path has a gradient. */
static void
randomise (RuvMicroLora *lora,
           guint64       seed,
           float         amp)
{
  gsize n = ruv_micro_lora_get_n_params (lora), i;
  g_autofree float *p = g_new (float, n);

  for (i = 0; i < n; i++)
    p[i] = amp * frand (&seed);
  g_assert_true (ruv_micro_lora_set_params (lora, p));
}

/* A synthetic trace: random residuals and module inputs, targets from seed.
 * Built with the adapter disabled, so x_base = x_final (reproducible). */
static RuvSonaTrace *
make_trace (RuvSonaLlm *sona,
            guint64     seed,
            gint64      n_tok,
            gint64      n_cand)
{
  RuvMicroLora *lora = ruv_sona_llm_get_lora (sona);
  const RuvHParams *hp = &ruv_model_get_weights (ruv_sona_llm_get_model (sona))->hp;
  gsize na = ruv_micro_lora_get_n_adapters (lora), a;
  RuvSonaTrace *tr = ruv_sona_trace_new (lora, n_tok, hp->n_embd, n_cand);
  gboolean was = ruv_micro_lora_get_enabled (lora);
  g_autofree float *x = g_new (float, hp->n_embd);
  g_autofree float **in = g_new0 (float *, na);
  g_autofree gint32 *cand = g_new (gint32, MAX (n_cand, 1));
  g_autoptr(GError) error = NULL;
  gint64 t, i;

  ruv_micro_lora_set_enabled (lora, FALSE);
  for (a = 0; a < na; a++)
    in[a] = g_new (float, ruv_micro_lora_get_adapter (lora, a)->n_in);
  for (t = 0; t < n_tok; t++)
    {
      gint32 target = (gint32) (mix (&seed) % (guint64) hp->n_vocab);

      for (i = 0; i < hp->n_embd; i++)
        x[i] = frand (&seed);
      for (a = 0; a < na; a++)
        for (i = 0; i < ruv_micro_lora_get_adapter (lora, a)->n_in; i++)
          in[a][i] = frand (&seed);
      for (i = 0; i < n_cand; i++)
        cand[i] = (gint32) ((target + i) % hp->n_vocab);
      g_assert_true (ruv_sona_trace_set_position (tr, lora, t, target, x,
                                                  (const float *const *) in, cand, &error));
      g_assert_no_error (error);
    }
  for (a = 0; a < na; a++)
    g_free (in[a]);
  ruv_micro_lora_set_enabled (lora, was);
  return tr;
}

static float *
params_of (RuvMicroLora *lora)
{
  float *p = g_new (float, ruv_micro_lora_get_n_params (lora));

  ruv_micro_lora_get_params (lora, p);
  return p;
}

static double
max_abs_diff (const float *a,
              const float *b,
              gsize        n)
{
  double m = 0.0;
  gsize i;

  for (i = 0; i < n; i++)
    m = MAX (m, fabs ((double) a[i] - b[i]));
  return m;
}

/* ---- MicroLoRA basics ----------------------------------------------------------- */

static void
test_forward (void)
{
  RuvMicroLoraConfig cfg;
  g_autoptr(RuvMicroLora) lora = NULL;
  g_autoptr(GError) error = NULL;
  const RuvLoraAdapter *ad;
  float x[8], y[8], ref[8], u[2];
  RuvMicroLoraStats st;
  guint64 s = 3;
  int i, r, o;

  ruv_micro_lora_config_for_hidden_dim (&cfg, 8);
  g_assert_cmpint (cfg.in_features, ==, 8);
  g_assert_cmpint (cfg.rank, ==, 2);
  lora = ruv_micro_lora_new (&cfg, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ruv_micro_lora_get_n_adapters (lora), ==, 2);
  for (i = 0; i < 8; i++)
    x[i] = frand (&s);

  /* B = 0: the delta is exactly zero */
  g_assert_true (ruv_micro_lora_forward (lora, 0, RUV_TARGET_Q_PROJ, x, 8, y, 8, &error));
  for (i = 0; i < 8; i++)
    g_assert_cmpfloat (y[i], ==, 0.0f);

  randomise (lora, 11, 0.5f);
  ad = ruv_micro_lora_find_adapter (lora, 0, RUV_TARGET_Q_PROJ);
  g_assert_nonnull (ad);
  g_assert_cmpfloat_with_epsilon (ad->scale, 2.0f, 1e-6);
  for (r = 0; r < 2; r++)
    {
      u[r] = 0.0f;
      for (i = 0; i < 8; i++)
        u[r] += ad->a[r * 8 + i] * x[i];
    }
  for (o = 0; o < 8; o++)
    ref[o] = ad->scale * (ad->b[o * 2] * u[0] + ad->b[o * 2 + 1] * u[1]);
  g_assert_true (ruv_micro_lora_forward (lora, 0, RUV_TARGET_Q_PROJ, x, 8, y, 8, &error));
  for (o = 0; o < 8; o++)
    g_assert_cmpfloat_with_epsilon (y[o], ref[o], 1e-5);
  for (o = 0; o < 8; o++)
    y[o] = 1.0f;
  g_assert_true (ruv_micro_lora_forward_add (lora, 0, RUV_TARGET_Q_PROJ, x, 8, y, 8, &error));
  for (o = 0; o < 8; o++)
    g_assert_cmpfloat_with_epsilon (y[o], 1.0f + ref[o], 1e-5);

  /* wrong length */
  g_assert_false (ruv_micro_lora_forward (lora, 0, RUV_TARGET_Q_PROJ, x, 7, y, 8, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_ADAPTER);
  g_clear_error (&error);

  /* disabled: apply_rows leaves y alone, forward gives zeros */
  ruv_micro_lora_set_enabled (lora, FALSE);
  for (o = 0; o < 8; o++)
    y[o] = 1.0f;
  g_assert_false (ruv_micro_lora_apply_rows (lora, 0, RUV_TARGET_Q_PROJ, x, 1, 8, y, 8));
  for (o = 0; o < 8; o++)
    g_assert_cmpfloat (y[o], ==, 1.0f);
  ruv_micro_lora_set_enabled (lora, TRUE);
  g_assert_true (ruv_micro_lora_apply_rows (lora, 0, RUV_TARGET_Q_PROJ, x, 1, 8, y, 8));
  for (o = 0; o < 8; o++)
    g_assert_cmpfloat_with_epsilon (y[o], 1.0f + ref[o], 1e-5);
  /* no adapter on K */
  g_assert_false (ruv_micro_lora_apply_rows (lora, 0, RUV_TARGET_K_PROJ, x, 1, 8, y, 8));

  ruv_micro_lora_get_stats (lora, &st);
  g_assert_cmpuint (st.n_params, ==, 2 * 2 * (8 + 8));
  g_assert_cmpfloat (st.delta_norm, >, 0.0);
  g_assert_cmpuint (st.forward_count, >=, 3);

  /* reset: B back to zero, A re-drawn identically */
  {
    g_autoptr(RuvMicroLora) fresh = ruv_micro_lora_new (&cfg, NULL);
    g_autofree float *p1 = NULL;
    g_autofree float *p2 = NULL;

    ruv_micro_lora_reset (lora);
    p1 = params_of (lora);
    p2 = params_of (fresh);
    g_assert_cmpfloat (max_abs_diff (p1, p2, ruv_micro_lora_get_n_params (lora)), ==, 0.0);
    ruv_micro_lora_get_stats (lora, &st);
    g_assert_cmpfloat (st.delta_norm, ==, 0.0);
  }

  /* bad configs */
  cfg.rank = 3;
  g_assert_null (ruv_micro_lora_new (&cfg, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
}

/* adapt(): the accumulated gradient is that of L = -r g.y (finite differences). */
static void
test_adapt_gradient (void)
{
  RuvMicroLoraConfig cfg;
  g_autoptr(RuvMicroLora) lora = NULL;
  g_autoptr(GError) error = NULL;
  RuvAdaptFeedback fb;
  float x[6], g[6], y[6];
  g_autofree float *p = NULL;
  g_autofree float *grad = NULL;
  gsize n, i;
  guint64 s = 5;
  float r = -1.0f;

  ruv_micro_lora_config_for_hidden_dim (&cfg, 6);
  cfg.target_modules = RUV_TARGET_BIT (RUV_TARGET_V_PROJ);
  lora = ruv_micro_lora_new (&cfg, &error);
  g_assert_no_error (error);
  randomise (lora, 9, 0.5f);
  for (i = 0; i < 6; i++)
    {
      x[i] = frand (&s);
      g[i] = frand (&s);
    }
  ruv_adapt_feedback_from_thumbs (&fb, FALSE);
  g_assert_cmpfloat (ruv_adapt_feedback_get_reward (&fb), ==, r);
  fb.gradient_estimate = g;
  fb.n_gradient = 6;
  g_assert_true (ruv_micro_lora_adapt (lora, x, 6, &fb, &error));
  g_assert_no_error (error);

  n = ruv_micro_lora_get_n_params (lora);
  p = params_of (lora);
  grad = g_new (float, n);
  ruv_micro_lora_get_gradients (lora, grad);
  for (i = 0; i < n; i++)
    {
      float keep = p[i], h = 1e-3f;
      double lp, lm;
      int k;

      p[i] = keep + h;
      ruv_micro_lora_set_params (lora, p);
      ruv_micro_lora_forward (lora, 0, RUV_TARGET_V_PROJ, x, 6, y, 6, NULL);
      for (lp = 0.0, k = 0; k < 6; k++)
        lp += -r * g[k] * y[k];
      p[i] = keep - h;
      ruv_micro_lora_set_params (lora, p);
      ruv_micro_lora_forward (lora, 0, RUV_TARGET_V_PROJ, x, 6, y, 6, NULL);
      for (lm = 0.0, k = 0; k < 6; k++)
        lm += -r * g[k] * y[k];
      p[i] = keep;
      ruv_micro_lora_set_params (lora, p);
      g_assert_cmpfloat (fabs ((lp - lm) / (2 * h) - grad[i]), <, 2e-3);
    }

  /* wrong gradient length, NaN feedback */
  fb.n_gradient = 5;
  g_assert_false (ruv_micro_lora_adapt (lora, x, 6, &fb, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_ADAPTER);
  g_clear_error (&error);
  fb.n_gradient = 6;
  fb.reward = NAN;
  g_assert_false (ruv_micro_lora_adapt (lora, x, 6, &fb, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_ADAPTER);
  g_clear_error (&error);
  fb.gradient_estimate = NULL;
  fb.reward = 1.0f;
  g_assert_false (ruv_micro_lora_adapt (lora, x, 6, &fb, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_ADAPTER);
}

/* ---- the backward pass ------------------------------------------------------------ */

static void
gradcheck (gint64 n_cand)
{
  TinyModel tm;
  g_autoptr(RuvSonaLlm) sona = NULL;
  RuvMicroLora *lora;
  RuvSonaTrace *tr;
  g_autofree float *p = NULL;
  g_autofree float *grad = NULL;
  gsize n, i;
  double j0, worst = 0.0;
  guint64 pick = 17;

  tiny_model (&tm, "llama", 32, 16);
  sona = make_sona (tm.model, RUV_CONSOLIDATE_AVERAGE, TRUE);
  lora = ruv_sona_llm_get_lora (sona);
  g_assert_cmpuint (ruv_micro_lora_get_n_adapters (lora), ==, 4);
  randomise (lora, 23, 0.3f);
  tr = make_trace (sona, 99, 3, n_cand);

  n = ruv_micro_lora_get_n_params (lora);
  grad = g_new (float, n);
  ruv_micro_lora_clear_gradients (lora);
  j0 = ruv_sona_llm_trace_backward (sona, tr, 0, (gint) n_cand, 1.0f, FALSE);
  g_assert_true (isfinite (j0) && j0 < 0.0);
  g_assert_cmpfloat (fabs (j0 - ruv_sona_llm_trace_objective (sona, tr, 0, (gint) n_cand)), <,
                     1e-9);
  ruv_micro_lora_get_gradients (lora, grad);
  ruv_micro_lora_clear_gradients (lora);
  p = params_of (lora);
  /* every parameter of small adapters is too slow under ASan: 300 random ones */
  for (i = 0; i < 300; i++)
    {
      gsize k = (gsize) (mix (&pick) % n);
      float keep = p[k], h = 2e-3f;
      double jp, jm, fd;

      p[k] = keep + h;
      ruv_micro_lora_set_params (lora, p);
      jp = ruv_sona_llm_trace_objective (sona, tr, 0, (gint) n_cand);
      p[k] = keep - h;
      ruv_micro_lora_set_params (lora, p);
      jm = ruv_sona_llm_trace_objective (sona, tr, 0, (gint) n_cand);
      p[k] = keep;
      ruv_micro_lora_set_params (lora, p);
      fd = (jp - jm) / (2.0 * h);
      worst = MAX (worst, fabs (fd - grad[k]) / MAX (1e-2, fabs (fd)));
    }
  g_test_message ("gradcheck n_cand %" G_GINT64_FORMAT ": worst relative error %.2e",
                  n_cand, worst);
  g_assert_cmpfloat (worst, <, 2e-2);
  ruv_sona_trace_free (tr);
  g_clear_object (&sona);
  tiny_model_clear (&tm);
}

static void
test_gradcheck_full (void)
{
  gradcheck (0);
}

static void
test_gradcheck_candidates (void)
{
  gradcheck (5);
}

/* Thumbs-up raises log p of the rated response, thumbs-down lowers it. */
static void
test_direction (void)
{
  TinyModel tm;
  int up;

  tiny_model (&tm, "llama", 32, 16);
  for (up = 0; up < 2; up++)
    {
      g_autoptr(RuvSonaLlm) sona = make_sona (tm.model, RUV_CONSOLIDATE_AVERAGE, FALSE);
      g_autoptr(GError) error = NULL;
      RuvSonaTrace *probe = make_trace (sona, 1234, 4, 0);
      RuvAdaptationResult res;
      double before, after;
      int k;

      before = ruv_sona_llm_trace_objective (sona, probe, 0, 0);
      for (k = 0; k < 5; k++)
        {
          g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 1234, 4, 0), NULL,
                                                     up ? 1.0f : 0.0f, up ? 1.0f : -1.0f, &res,
                                                     &error));
          g_assert_no_error (error);
          g_assert_true (res.applied);
        }
      after = ruv_sona_llm_trace_objective (sona, probe, 0, 0);
      g_test_message ("%s: log p %.5f -> %.5f", up ? "up" : "down", before, after);
      if (up)
        g_assert_cmpfloat (after, >, before + 1e-4);
      else
        g_assert_cmpfloat (after, <, before - 1e-4);
      ruv_sona_trace_free (probe);
    }
  tiny_model_clear (&tm);
}

/* 1000 ratings with an absurd learning rate: weights stay finite and bounded. */
static void
test_bounded (void)
{
  TinyModel tm;
  RuvSonaLlmConfig cfg;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree float *p = NULL;
  RuvMicroLora *lora;
  gsize n, i;
  int k;

  tiny_model (&tm, "llama", 32, 16);
  ruv_sona_llm_config_init (&cfg, tm.model);
  cfg.instant_lr = 10.0f;
  cfg.sona.ewc_lambda = 0.0f;
  sona = ruv_sona_llm_new (tm.model, &cfg, &error);
  g_assert_no_error (error);
  lora = ruv_sona_llm_get_lora (sona);
  for (k = 0; k < 1000; k++)
    g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, (guint64) k % 7, 2, 4),
                                               NULL, 1.0f, (k % 3) ? 1.0f : -1.0f, NULL,
                                               &error));
  n = ruv_micro_lora_get_n_params (lora);
  p = params_of (lora);
  for (i = 0; i < n; i++)
    {
      g_assert_true (isfinite (p[i]));
      g_assert_cmpfloat (fabsf (p[i]), <=, cfg.micro_lora.max_weight_abs);
    }
  {
    RuvLearningLoopStats st;

    ruv_sona_llm_get_stats (sona, &st);
    g_assert_cmpuint (st.instant_updates, ==, 1000);
    g_assert_cmpuint (st.lora.clipped, >, 0);
    /* max_pending_samples respected */
    g_assert_cmpuint (st.stored_samples, <=, cfg.max_pending_samples);
  }
  tiny_model_clear (&tm);
}

static void
test_nan_skipped (void)
{
  TinyModel tm;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree float *p0 = NULL;
  g_autofree float *p1 = NULL;
  g_autofree float *g = NULL;
  RuvMicroLora *lora;
  RuvAdaptationResult res;
  RuvLearningLoopStats st;
  RuvMicroLoraStats ls;
  gsize n;

  tiny_model (&tm, "llama", 32, 16);
  sona = make_sona (tm.model, RUV_CONSOLIDATE_AVERAGE, FALSE);
  lora = ruv_sona_llm_get_lora (sona);
  randomise (lora, 3, 0.2f);
  n = ruv_micro_lora_get_n_params (lora);
  p0 = params_of (lora);

  g_assert_false (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 1, 2, 0), NULL, NAN, NAN,
                                              &res, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_SONA);
  g_clear_error (&error);
  g_assert_true (res.skipped);
  g_assert_false (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 1, 2, 0), NULL, 1.0f,
                                              INFINITY, &res, &error));
  g_clear_error (&error);

  /* a non-finite gradient handed to the update */
  g = g_new0 (float, n);
  g[3] = NAN;
  g_assert_false (ruv_micro_lora_apply_gradient (lora, g, 0.1f, NULL, 0.0f, NULL));
  g[3] = INFINITY;
  g_assert_false (ruv_micro_lora_apply_gradient (lora, g, 0.1f, NULL, 0.0f, NULL));

  /* a non-finite activation is refused when the trace is built */
  {
    RuvSonaTrace *tr = ruv_sona_trace_new (lora, 1, 32, 0);
    float x[32] = { 0 };

    x[5] = NAN;
    g_assert_false (ruv_sona_trace_set_position (tr, lora, 0, 1, x, NULL, NULL, &error));
    g_assert_error (error, RUV_ERROR, RUV_ERROR_ADAPTER);
    g_clear_error (&error);
    ruv_sona_trace_free (tr);
  }

  p1 = params_of (lora);
  g_assert_cmpfloat (max_abs_diff (p0, p1, n), ==, 0.0);
  ruv_sona_llm_get_stats (sona, &st);
  g_assert_cmpuint (st.instant_skipped, ==, 2);
  g_assert_cmpuint (st.stored_samples, ==, 0);
  ruv_micro_lora_get_stats (lora, &ls);
  g_assert_cmpuint (ls.skipped, ==, 2);
  g_clear_object (&sona);
  tiny_model_clear (&tm);
}

/* Rating the same message twice counts once; the same rating again is a no-op. */
static void
test_rerate (void)
{
  TinyModel tm;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree float *p1 = NULL;
  g_autofree float *p2 = NULL;
  RuvLearningLoopStats st;
  RuvSonaTrace *probe;
  double j1, j2;
  RuvMicroLora *lora;

  tiny_model (&tm, "llama", 32, 16);
  sona = make_sona (tm.model, RUV_CONSOLIDATE_AVERAGE, FALSE);
  lora = ruv_sona_llm_get_lora (sona);
  probe = make_trace (sona, 77, 3, 0);
  g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 77, 3, 0), "msg-1", 1, 1,
                                             NULL, &error));
  p1 = params_of (lora);
  j1 = ruv_sona_llm_trace_objective (sona, probe, 0, 0);
  g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 77, 3, 0), "msg-1", 1, 1,
                                             NULL, &error));
  p2 = params_of (lora);
  g_assert_cmpfloat (max_abs_diff (p1, p2, ruv_micro_lora_get_n_params (lora)), ==, 0.0);
  /* up -> down: a step of reward -2 (undo, then down) */
  g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 77, 3, 0), "msg-1", 0, -1,
                                             NULL, &error));
  j2 = ruv_sona_llm_trace_objective (sona, probe, 0, 0);
  g_assert_cmpfloat (j2, <, j1);
  ruv_sona_llm_get_stats (sona, &st);
  g_assert_cmpuint (st.stored_samples, ==, 1);
  g_assert_cmpuint (st.rerated, ==, 2);
  g_assert_cmpfloat_with_epsilon (st.deep_accumulator, 1.0, 1e-9);
  ruv_sona_trace_free (probe);
  g_clear_object (&sona);
  tiny_model_clear (&tm);
}

/* ---- EWC++ ---------------------------------------------------------------------- */

static void
test_ewc (void)
{
  RuvMicroLoraConfig cfg;
  g_autoptr(RuvMicroLora) lora = NULL;
  g_autoptr(RuvEwc) ewc = NULL;
  g_autofree float *w_star = NULL;
  g_autofree float *w = NULL;
  g_autofree float *f = NULL;
  g_autofree float *zero = NULL;
  g_autofree float *g = NULL;
  gsize n, i;
  double d0 = 0.0, d1 = 0.0, pen;

  ruv_micro_lora_config_for_hidden_dim (&cfg, 8);
  cfg.max_grad_norm = 1e6f;
  lora = ruv_micro_lora_new (&cfg, NULL);
  n = ruv_micro_lora_get_n_params (lora);
  ewc = ruv_ewc_new (n, 0.5f);
  w_star = params_of (lora);
  ruv_ewc_set_anchor (ewc, w_star);

  /* the Fisher estimate really moves: C = mean of g^2 since the boundary
   * (0.3^2 and 0.6^2 at index 3), F* untouched until end_task, then
   * F* = 0.5 F* + C */
  g = g_new (float, n);
  for (i = 0; i < n; i++)
    g[i] = (float) (i % 5) * 0.1f;
  g_assert_true (ruv_ewc_update_fisher (ewc, g));
  g_assert_cmpfloat_with_epsilon (ruv_ewc_get_current_fisher (ewc)[3], 0.09f, 1e-7);
  for (i = 0; i < n; i++)
    g[i] *= 2.0f;
  g_assert_true (ruv_ewc_update_fisher (ewc, g));
  g_assert_cmpfloat_with_epsilon (ruv_ewc_get_current_fisher (ewc)[3], 0.5f * (0.09f + 0.36f),
                                  1e-7);
  g_assert_cmpfloat (ruv_ewc_get_fisher (ewc)[3], ==, 0.0f);
  g[0] = NAN;
  g_assert_false (ruv_ewc_update_fisher (ewc, g));
  g[0] = 2e18f;
  g_assert_false (ruv_ewc_update_fisher (ewc, g));
  g_assert_cmpuint (ruv_ewc_get_n_updates (ewc), ==, 2);
  g_assert_cmpuint (ruv_ewc_get_n_current (ewc), ==, 2);
  ruv_ewc_end_task (ewc, w_star);
  g_assert_cmpfloat_with_epsilon (ruv_ewc_get_fisher (ewc)[3], 0.225f, 1e-7);
  g_assert_cmpuint (ruv_ewc_get_n_current (ewc), ==, 0);
  g[0] = 0.0f;
  g_assert_true (ruv_ewc_update_fisher (ewc, g));
  ruv_ewc_end_task (ewc, w_star);
  g_assert_cmpfloat_with_epsilon (ruv_ewc_get_fisher (ewc)[3], 0.5f * 0.225f + 0.36f, 1e-6);

  f = g_new (float, n);
  for (i = 0; i < n; i++)
    f[i] = 1.0f;
  ruv_ewc_set_fisher (ewc, f);
  randomise (lora, 5, 0.5f);
  w = params_of (lora);
  for (i = 0; i < n; i++)
    d0 += fabs (w[i] - w_star[i]);
  pen = ruv_ewc_penalty (ewc, w, 10.0f);
  g_assert_cmpfloat (pen, >, 0.0);

  /* F* = 1 everywhere: mean 1, so the penalty's curvature is lambda. No data
   * gradient: the step is the penalty alone and pulls towards w*; the cap
   * keeps lr * lambda * F = 0.5 */
  zero = g_new0 (float, n);
  g_assert_true (ruv_micro_lora_apply_gradient (lora, zero, 0.1f, ewc, 1000.0f, NULL));
  g_free (w);
  w = params_of (lora);
  for (i = 0; i < n; i++)
    {
      d1 += fabs (w[i] - w_star[i]);
      /* w - lr * min (lambda F, 0.5/lr) (w - w*) = w* + 0.5 (w - w*) */
    }
  g_assert_cmpfloat_with_epsilon (d1, 0.5 * d0, 1e-4 * d0);
  g_assert_cmpfloat (ruv_ewc_penalty (ewc, w, 10.0f), <, pen);

  /* F* is used relative to its mean: F* = 1e-6 everywhere pulls as F* = 1,
   * here below the cap, w - lr * lambda (w - w*) = w* + 0.8 (w - w*) */
  for (i = 0; i < n; i++)
    f[i] = 1e-6f;
  ruv_ewc_set_fisher (ewc, f);
  g_assert_true (ruv_micro_lora_apply_gradient (lora, zero, 0.1f, ewc, 2.0f, NULL));
  {
    g_autofree float *w2 = params_of (lora);
    double d2 = 0.0;

    for (i = 0; i < n; i++)
      d2 += fabs (w2[i] - w_star[i]);
    g_assert_cmpfloat_with_epsilon (d2, 0.8 * d1, 1e-4 * d1);
    g_free (w);
    w = g_steal_pointer (&w2);
  }

  /* zero Fisher: no pull */
  memset (f, 0, n * sizeof (float));
  ruv_ewc_set_fisher (ewc, f);
  g_assert_true (ruv_micro_lora_apply_gradient (lora, zero, 0.1f, ewc, 1000.0f, NULL));
  {
    g_autofree float *w2 = params_of (lora);

    g_assert_cmpfloat (max_abs_diff (w, w2, n), ==, 0.0);
  }
}

/* EWC++ task 0 (ruv-ewc.h): before the first task boundary the penalty
 * pulls toward the base w0 with the running Fisher estimate C (relative to
 * its mean) times the weight b; from the first boundary on toward the task
 * anchor w* with F* alone. Expected values from the formulas in ruv-ewc.h. */
static void
test_ewc_base (void)
{
  gsize n = 40, i;
  g_autoptr(RuvEwc) ewc = ruv_ewc_new (n, 0.5f);
  g_autofree float *w0 = g_new (float, n);
  g_autofree float *w1 = g_new (float, n);
  g_autofree float *w = g_new (float, n);
  g_autofree float *g = g_new (float, n);
  g_autofree float *pull = g_new0 (float, n);
  const float lambda = 0.1f, lr = 0.05f, b = 2.0f;
  double cmean = 0.0, pen = 0.0;

  for (i = 0; i < n; i++)
    {
      w0[i] = 0.01f * (float) i;
      w1[i] = w0[i] + 0.5f;
      w[i] = w0[i] + 0.25f * (float) (1 + i % 3);
      g[i] = (float) (i % 5) * 0.1f;
      cmean += (double) g[i] * g[i] / (double) n;
    }
  ruv_ewc_set_base (ewc, w0, b);
  g_assert_true (ruv_ewc_has_base (ewc));
  g_assert_false (ruv_ewc_has_anchor (ewc));
  /* no Fisher estimate yet: no pull */
  ruv_ewc_add_penalty_gradient (ewc, w, lambda, lr, pull);
  for (i = 0; i < n; i++)
    g_assert_cmpfloat (pull[i], ==, 0.0f);
  g_assert_cmpfloat (ruv_ewc_penalty (ewc, w, lambda), ==, 0.0);

  /* one gradient, no boundary: lambda b C_i / mean C toward w0 */
  g_assert_true (ruv_ewc_update_fisher (ewc, g));
  ruv_ewc_add_penalty_gradient (ewc, w, lambda, lr, pull);
  for (i = 0; i < n; i++)
    {
      double k0 = lambda * b * g[i] * g[i] / cmean;

      g_assert_cmpfloat_with_epsilon (pull[i], k0 * (w[i] - w0[i]), 1e-5);
      pen += 0.5 * k0 * (w[i] - w0[i]) * (w[i] - w0[i]);
    }
  g_assert_cmpfloat (pull[3], >, 0.0f);
  g_assert_cmpfloat_with_epsilon (ruv_ewc_penalty (ewc, w, lambda), pen, 1e-5 * pen);
  /* the cap: a step never moves past w0 */
  memset (pull, 0, n * sizeof (float));
  ruv_ewc_add_penalty_gradient (ewc, w, 1000.0f, lr, pull);
  for (i = 0; i < n; i++)
    g_assert_cmpfloat_with_epsilon (pull[i], g[i] != 0.0f ? 0.5 / lr * (w[i] - w0[i]) : 0.0,
                                    1e-4);

  /* a boundary at w1: F* = C, C = 0; the pull is toward w1 with lambda F* /
   * mean F* (task 0's anchor gives way to the task's, online EWC) */
  ruv_ewc_end_task (ewc, w1);
  memset (pull, 0, n * sizeof (float));
  ruv_ewc_add_penalty_gradient (ewc, w, lambda, lr, pull);
  for (i = 0; i < n; i++)
    g_assert_cmpfloat_with_epsilon (pull[i], lambda * g[i] * g[i] / cmean * (w[i] - w1[i]),
                                    1e-5);

  /* weight 0 or a reset: no task 0 */
  ruv_ewc_reset (ewc);
  ruv_ewc_set_base (ewc, w0, 0.0f);
  g_assert_false (ruv_ewc_has_base (ewc));
  g_assert_true (ruv_ewc_update_fisher (ewc, g));
  memset (pull, 0, n * sizeof (float));
  ruv_ewc_add_penalty_gradient (ewc, w, lambda, lr, pull);
  for (i = 0; i < n; i++)
    g_assert_cmpfloat (pull[i], ==, 0.0f);
  ruv_ewc_set_base (ewc, w0, b);
  ruv_ewc_reset (ewc);
  g_assert_false (ruv_ewc_has_base (ewc));
  g_assert_false (ruv_ewc_has_anchor (ewc));
}

/* The trust region (sona.max_step_nats): a step whose first-order change of
 * the objective, lr (g . g), exceeds the bound is scaled to meet it exactly;
 * a smaller one is left alone. Through the instant loop a small bound is
 * then the loss change actually seen (first order, so within 20%). */
static void
test_trust_region (void)
{
  RuvMicroLoraConfig cfg;
  g_autoptr(RuvMicroLora) lora = NULL;
  g_autofree float *w0 = NULL;
  g_autofree float *w1 = NULL;
  g_autofree float *g = NULL;
  g_autofree float *expect = NULL;
  double gg = 0.0, pred, norm;
  gsize n, i;
  const float lr = 0.1f;

  ruv_micro_lora_config_for_hidden_dim (&cfg, 8);
  cfg.max_grad_norm = 1e6f;
  cfg.max_weight_abs = 1e6f;
  lora = ruv_micro_lora_new (&cfg, NULL);
  randomise (lora, 17, 0.3f);
  n = ruv_micro_lora_get_n_params (lora);
  g = g_new (float, n);
  expect = g_new (float, n);
  for (i = 0; i < n; i++)
    {
      g[i] = (float) ((int) (i % 7) - 3) * 0.25f;
      gg += (double) g[i] * g[i];
    }
  w0 = params_of (lora);

  /* bound at a quarter of the full step's change: a quarter of the step */
  g_assert_true (ruv_micro_lora_apply_gradient_bounded (lora, g, lr, NULL, 0.0f,
                                                        0.25 * lr * gg, &norm, &pred));
  g_assert_cmpfloat_with_epsilon (norm, sqrt (gg), 1e-5 * sqrt (gg));
  g_assert_cmpfloat_with_epsilon (pred, 0.25 * lr * gg, 1e-6 * lr * gg);
  w1 = params_of (lora);
  for (i = 0; i < n; i++)
    expect[i] = w0[i] - 0.25f * lr * g[i];
  g_assert_cmpfloat (max_abs_diff (w1, expect, n), <, 1e-6);

  /* a bound above the full step's change: the plain step */
  ruv_micro_lora_set_params (lora, w0);
  g_assert_true (ruv_micro_lora_apply_gradient_bounded (lora, g, lr, NULL, 0.0f,
                                                        2.0 * lr * gg, NULL, &pred));
  g_assert_cmpfloat_with_epsilon (pred, lr * gg, 1e-6 * lr * gg);
  g_free (w1);
  w1 = params_of (lora);
  for (i = 0; i < n; i++)
    expect[i] = w0[i] - lr * g[i];
  g_assert_cmpfloat (max_abs_diff (w1, expect, n), <, 1e-6);
  /* a negative or non-finite bound is refused, weights untouched */
  g_assert_false (ruv_micro_lora_apply_gradient_bounded (lora, g, lr, NULL, 0.0f, -1.0, NULL,
                                                         NULL));
  g_assert_false (ruv_micro_lora_apply_gradient_bounded (lora, g, lr, NULL, 0.0f, NAN, NULL,
                                                         NULL));
  g_free (w0);
  w0 = params_of (lora);
  g_assert_cmpfloat (max_abs_diff (w1, w0, n), ==, 0.0);

  /* the instant loop: a large step size, a small bound */
  {
    TinyModel tm;
    RuvSonaLlmConfig sc;
    g_autoptr(RuvSonaLlm) sona = NULL;
    g_autoptr(GError) error = NULL;
    RuvAdaptationResult res;
    int s;

    tiny_model (&tm, "llama", 32, 16);
    ruv_sona_llm_config_init (&sc, tm.model);
    sc.instant_lr = 10.0f;
    sc.sona.ewc_lambda = 0.0f;
    sc.micro_lora.max_grad_norm = 1e6f;
    sc.micro_lora.max_weight_abs = 1e6f;
    sc.sona.max_step_nats = 0.01f;
    sona = ruv_sona_llm_new (tm.model, &sc, &error);
    g_assert_no_error (error);
    randomise (ruv_sona_llm_get_lora (sona), 23, 0.2f);
    for (s = 0; s < 4; s++)
      {
        float r = s % 2 ? -1.0f : 1.0f;

        g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 700 + s, 3, 4),
                                                   NULL, (r + 1) / 2, r, &res, &error));
        g_assert_true (res.applied);
        g_assert_cmpfloat (res.loss - res.loss_after, >, 0.8 * 0.01);
        g_assert_cmpfloat (res.loss - res.loss_after, <, 1.2 * 0.01);
      }
    g_clear_object (&sona);
    tiny_model_clear (&tm);
  }
}

/* ---- consolidation strategies ----------------------------------------------------- */

static const float rewards[3] = { 1.0f, -0.4f, 0.6f };

static void
consolidation_case (RuvConsolidationStrategy strategy)
{
  TinyModel tm;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(GError) error = NULL;
  RuvMicroLora *lora;
  RuvAdaptationResult res;
  g_autofree float *p0 = NULL;
  g_autofree float *p1 = NULL;
  g_autofree float *gi = NULL;
  g_autofree float *expect = NULL;
  RuvSonaTrace *copies[3];
  float lr;
  gsize n, i, k;
  int s;

  tiny_model (&tm, "llama", 32, 16);
  sona = make_sona (tm.model, strategy, TRUE);
  lora = ruv_sona_llm_get_lora (sona);
  lr = ruv_sona_llm_get_config (sona)->sona.background_lr;
  randomise (lora, 41, 0.2f);
  for (s = 0; s < 3; s++)
    {
      g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 500 + s, 3, 4), NULL,
                                                 (rewards[s] + 1) / 2, rewards[s], NULL,
                                                 &error));
      copies[s] = make_trace (sona, 500 + s, 3, 4);
    }
  n = ruv_micro_lora_get_n_params (lora);
  p0 = params_of (lora);

  /* per-sample gradients of L_i = -r_i J_i at the current weights */
  gi = g_new0 (float, 3 * n);
  for (s = 0; s < 3; s++)
    {
      ruv_micro_lora_clear_gradients (lora);
      g_assert_true (isfinite (ruv_sona_llm_trace_backward (sona, copies[s], 0, 0, -rewards[s],
                                                            FALSE)));
      ruv_micro_lora_get_gradients (lora, gi + s * n);
    }
  ruv_micro_lora_clear_gradients (lora);

  expect = g_new0 (float, n);
  for (k = 0; k < n; k++)
    {
      double acc = 0.0;

      switch (strategy)
        {
        case RUV_CONSOLIDATE_QUALITY_WEIGHTED:
          for (s = 0; s < 3; s++)
            acc += fabsf (rewards[s]) / 2.0 * gi[s * n + k];
          break;
        case RUV_CONSOLIDATE_BEST_ONLY:
          acc = gi[0 * n + k];   /* |r| = 1 is the most decisive */
          break;
        case RUV_CONSOLIDATE_AVERAGE:
        case RUV_CONSOLIDATE_EWC_MERGE:
        case RUV_CONSOLIDATE_ENSEMBLE:
        default:
          for (s = 0; s < 3; s++)
            acc += gi[s * n + k] / 3.0;
          break;
        }
      expect[k] = p0[k] - lr * (float) acc;
    }
  if (strategy == RUV_CONSOLIDATE_EWC_MERGE)
    {
      /* plus the EWC++ pull (no task anchor yet: task 0 alone, toward the
       * adapter the loop started from), with the Fisher estimate the step
       * sees: the 3 instant gradients and the 3 consolidated ones */
      g_autoptr(RuvEwc) ec = ruv_ewc_copy (ruv_sona_llm_get_ewc (sona));
      g_autofree float *pull = g_new0 (float, n);
      double moved = 0.0;

      g_assert_true (ruv_ewc_has_base (ec));
      g_assert_false (ruv_ewc_has_anchor (ec));
      for (s = 0; s < 3; s++)
        g_assert_true (ruv_ewc_update_fisher (ec, gi + s * n));
      ruv_ewc_add_penalty_gradient (ec, p0, ruv_sona_llm_get_config (sona)->sona.ewc_lambda, lr,
                                    pull);
      for (k = 0; k < n; k++)
        {
          expect[k] -= lr * pull[k];
          moved = MAX (moved, fabs (lr * pull[k]));
        }
      g_assert_cmpfloat (moved, >, 1e-4);
    }

  g_assert_true (ruv_sona_llm_background_consolidate (sona, &res));
  g_assert_true (res.applied);
  g_assert_cmpuint (res.samples_used, ==, 3);
  p1 = params_of (lora);
  g_assert_cmpfloat (max_abs_diff (p1, expect, n), <, 1e-5);
  g_assert_cmpfloat (max_abs_diff (p1, p0, n), >, 1e-4);
  /* nothing pending any more */
  g_assert_false (ruv_sona_llm_background_consolidate (sona, &res));

  if (strategy == RUV_CONSOLIDATE_EWC_MERGE)
    {
      RuvEwc *ewc = ruv_sona_llm_get_ewc (sona);

      /* Fisher updated per sample (3 instant, 3 consolidated); the 3rd
       * consolidated rating is a task boundary: anchor = the consolidated
       * weights, F* = what C had gathered */
      g_assert_true (ruv_ewc_has_anchor (ewc));
      g_assert_cmpfloat (max_abs_diff (ruv_ewc_get_anchor (ewc), p1, n), ==, 0.0);
      g_assert_cmpuint (ruv_ewc_get_n_updates (ewc), ==, 3 + 3);
      g_assert_cmpuint (ruv_ewc_get_n_current (ewc), ==, 0);
      {
        double fsum = 0.0;

        for (k = 0; k < n; k++)
          fsum += ruv_ewc_get_fisher (ewc)[k];
        g_assert_cmpfloat (fsum, >, 0.0);
      }
    }
  if (strategy == RUV_CONSOLIDATE_ENSEMBLE)
    {
      /* a second round: weights = mean of the two consolidated snapshots */
      g_autofree float *g2 = g_new0 (float, n);
      g_autofree float *p2 = NULL;
      RuvSonaTrace *c2 = make_trace (sona, 900, 3, 4);
      float fq = 1.0f;

      g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 900, 3, 4), NULL, fq,
                                                 1.0f, NULL, &error));
      g_free (p1);
      p1 = params_of (lora);
      ruv_micro_lora_clear_gradients (lora);
      ruv_sona_llm_trace_backward (sona, c2, 0, 0, -1.0f, FALSE);
      ruv_micro_lora_get_gradients (lora, g2);
      ruv_micro_lora_clear_gradients (lora);
      g_assert_true (ruv_sona_llm_background_consolidate (sona, &res));
      p2 = params_of (lora);
      for (k = 0; k < n; k++)
        g_assert_cmpfloat (fabsf (p2[k] - 0.5f * (expect[k] + (p1[k] - lr * g2[k]))), <, 1e-5);
      ruv_sona_trace_free (c2);
    }
  for (i = 0; i < 3; i++)
    ruv_sona_trace_free (copies[i]);
  g_clear_object (&sona);
  tiny_model_clear (&tm);
}

static void
test_consolidate (gconstpointer data)
{
  consolidation_case ((RuvConsolidationStrategy) GPOINTER_TO_INT (data));
}

static void
test_background_thread (void)
{
  TinyModel tm;
  RuvSonaLlmConfig cfg;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(GError) error = NULL;
  RuvLearningLoopStats st;
  gint64 end;

  tiny_model (&tm, "llama", 32, 16);
  ruv_sona_llm_config_init (&cfg, tm.model);
  cfg.background_interval_ms = 20;
  cfg.background_min_samples = 2;
  sona = ruv_sona_llm_new (tm.model, &cfg, &error);
  g_assert_no_error (error);
  ruv_sona_llm_start_background (sona);
  g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 1, 2, 0), "a", 1, 1, NULL,
                                             &error));
  g_usleep (100 * 1000);
  ruv_sona_llm_get_stats (sona, &st);
  g_assert_cmpuint (st.background_runs, ==, 0);   /* below background_min_samples */
  g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 2, 2, 0), "b", 0, -1, NULL,
                                             &error));
  end = g_get_monotonic_time () + 5 * G_TIME_SPAN_SECOND;
  do
    {
      g_usleep (10 * 1000);
      ruv_sona_llm_get_stats (sona, &st);
    }
  while (st.pending_samples > 0 && g_get_monotonic_time () < end);
  g_assert_cmpuint (st.pending_samples, ==, 0);
  g_assert_cmpuint (st.background_runs, >=, 1);
  g_assert_cmpuint (st.background_samples, ==, 2);
  ruv_sona_llm_stop_background (sona);
  g_clear_object (&sona);
  tiny_model_clear (&tm);
}

static void
progress_cb (gint     epoch,
             gint     n_epochs,
             double   loss,
             gpointer user_data)
{
  int *calls = user_data;

  g_assert_cmpint (epoch, ==, *calls + 1);
  g_assert_cmpint (n_epochs, ==, 5);
  g_assert_true (isfinite (loss));
  (*calls)++;
}

static void
cancel_cb (gint     epoch,
           gint     n_epochs,
           double   loss,
           gpointer user_data)
{
  g_cancellable_cancel (user_data);
}

static void
test_deep (void)
{
  TinyModel tm;
  RuvSonaLlmConfig cfg;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) curve = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  g_autofree float *p0 = NULL;
  g_autofree float *p1 = NULL;
  RuvAdaptationResult res;
  int calls = 0, s;

  tiny_model (&tm, "llama", 32, 16);
  ruv_sona_llm_config_init (&cfg, tm.model);
  cfg.training.epochs = 5;
  cfg.training.learning_rate = 0.05f;
  cfg.deep_trigger_threshold = 3.5f;
  sona = ruv_sona_llm_new (tm.model, &cfg, &error);
  g_assert_no_error (error);

  /* nothing rated yet */
  g_assert_false (ruv_sona_llm_deep_optimize (sona, NULL, 0, NULL, NULL, NULL, NULL, NULL,
                                              &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_SONA);
  g_clear_error (&error);

  for (s = 0; s < 4; s++)
    {
      g_assert_false (ruv_sona_llm_should_trigger_deep (sona));
      g_assert_true (ruv_sona_llm_instant_adapt (sona, make_trace (sona, 300 + s, 3, 0), NULL,
                                                 s % 2 ? 0 : 1, s % 2 ? -1 : 1, NULL, &error));
    }
  g_assert_true (ruv_sona_llm_should_trigger_deep (sona));

  g_assert_true (ruv_sona_llm_deep_optimize (sona, NULL, 0, progress_cb, &calls, NULL, curve,
                                             &res, &error));
  g_assert_no_error (error);
  g_assert_cmpint (calls, ==, 5);
  g_assert_cmpuint (curve->len, ==, 6);
  g_test_message ("deep loss %.5f -> %.5f", g_array_index (curve, double, 0),
                  g_array_index (curve, double, 5));
  g_assert_cmpfloat (g_array_index (curve, double, 5), <, g_array_index (curve, double, 0));
  g_assert_false (ruv_sona_llm_should_trigger_deep (sona));

  /* cancelled after the first epoch: weights restored */
  p0 = params_of (ruv_sona_llm_get_lora (sona));
  g_assert_false (ruv_sona_llm_deep_optimize (sona, NULL, 0, cancel_cb, cancel, cancel, NULL,
                                              NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  p1 = params_of (ruv_sona_llm_get_lora (sona));
  g_assert_cmpfloat (max_abs_diff (p0, p1, ruv_micro_lora_get_n_params (
                                     ruv_sona_llm_get_lora (sona))), ==, 0.0);
  g_clear_object (&sona);
  tiny_model_clear (&tm);
}

/* ---- GGUF adapters ------------------------------------------------------------------- */

static void
test_gguf_roundtrip (void)
{
  TinyModel tm;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(RuvMicroLora) back = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGguf) gguf = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  RuvMicroLora *lora;
  const char *s = NULL;
  double alpha = 0;
  gsize i, size;
  const guint8 *data;

  tiny_model (&tm, "llama", 32, 16);
  sona = make_sona (tm.model, RUV_CONSOLIDATE_AVERAGE, FALSE);
  lora = ruv_sona_llm_get_lora (sona);
  randomise (lora, 8, 0.3f);
  bytes = ruv_lora_gguf_to_bytes (lora, tm.model, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (bytes, &size);
  gguf = ruv_gguf_parse (data, size, "adapter", &error);
  g_assert_no_error (error);
  g_assert_true (ruv_gguf_get_string (gguf, "general.type", &s, NULL));
  g_assert_cmpstr (s, ==, "adapter");
  g_assert_true (ruv_gguf_get_string (gguf, "adapter.type", &s, NULL));
  g_assert_cmpstr (s, ==, "lora");
  g_assert_true (ruv_gguf_get_string (gguf, "general.architecture", &s, NULL));
  g_assert_cmpstr (s, ==, "llama");
  g_assert_cmpint (ruv_gguf_get_kv_type (gguf, "adapter.lora.alpha"), ==, RUV_GGUF_TYPE_FLOAT32);
  g_assert_true (ruv_gguf_get_float (gguf, "adapter.lora.alpha", &alpha, NULL));
  g_assert_cmpfloat (alpha, ==, 4.0);
  {
    const RuvGgufTensor *a = ruv_gguf_find_tensor (gguf, "blk.1.ffn_down.weight.lora_a");
    const RuvGgufTensor *b = ruv_gguf_find_tensor (gguf, "blk.1.ffn_down.weight.lora_b");

    g_assert_nonnull (a);
    g_assert_nonnull (b);
    g_assert_cmpint (a->ne[0], ==, 48);   /* n_in = n_ff */
    g_assert_cmpint (a->ne[1], ==, 2);    /* rank */
    g_assert_cmpint (b->ne[0], ==, 2);
    g_assert_cmpint (b->ne[1], ==, 32);   /* n_out = n_embd */
  }

  dir = g_dir_make_tmp ("ruv-lora-XXXXXX", &error);
  g_assert_no_error (error);
  path = g_build_filename (dir, "a.gguf", NULL);
  g_assert_true (ruv_lora_gguf_export (lora, tm.model, path, &error));
  g_assert_no_error (error);
  back = ruv_lora_gguf_import (tm.model, path, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ruv_micro_lora_get_n_adapters (back), ==, ruv_micro_lora_get_n_adapters (lora));
  for (i = 0; i < ruv_micro_lora_get_n_adapters (lora); i++)
    {
      const RuvLoraAdapter *x = ruv_micro_lora_get_adapter (lora, i);
      const RuvLoraAdapter *y = ruv_micro_lora_find_adapter (back, x->layer, x->module);

      g_assert_nonnull (y);
      g_assert_cmpint (y->n_in, ==, x->n_in);
      g_assert_cmpint (y->n_out, ==, x->n_out);
      g_assert_cmpfloat (y->scale, ==, x->scale);
      g_assert_cmpint (memcmp (x->a, y->a, x->rank * x->n_in * sizeof (float)), ==, 0);
      g_assert_cmpint (memcmp (x->b, y->b, x->rank * x->n_out * sizeof (float)), ==, 0);
    }
  g_unlink (path);
  g_rmdir (dir);
  g_clear_object (&sona);
  tiny_model_clear (&tm);
}

/* A hand-made adapter: one pair on blk.0.attn_q.weight with the given shapes. */
static GBytes *
handmade_adapter (const char *arch,
                  const char *type,
                  gint64      a0,
                  gint64      a1,
                  gint64      b0,
                  gint64      b1,
                  gboolean    with_b,
                  float       value)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autofree float *a = g_new (float, a0 * a1);
  g_autofree float *b = g_new (float, b0 * b1);
  gint64 ne[2], i;

  for (i = 0; i < a0 * a1; i++)
    a[i] = value;
  for (i = 0; i < b0 * b1; i++)
    b[i] = 0.25f;
  ruv_gguf_writer_set_string (w, "general.architecture", arch);
  ruv_gguf_writer_set_string (w, "general.type", type);
  ruv_gguf_writer_set_string (w, "adapter.type", "lora");
  ruv_gguf_writer_set_float32 (w, "adapter.lora.alpha", 8.0f);
  ne[0] = a0;
  ne[1] = a1;
  g_assert_true (ruv_gguf_writer_add_tensor (w, "blk.0.attn_q.weight.lora_a", RK_TYPE_F32, 2, ne,
                                             a, a0 * a1 * sizeof (float), NULL));
  ne[0] = b0;
  ne[1] = b1;
  if (with_b)
    g_assert_true (ruv_gguf_writer_add_tensor (w, "blk.0.attn_q.weight.lora_b", RK_TYPE_F32, 2,
                                               ne, b, b0 * b1 * sizeof (float), NULL));
  return ruv_gguf_writer_to_bytes (w, NULL);
}

static void
expect_bad (RuvModel *model,
            GBytes   *bytes,
            gsize     size_cut)
{
  g_autoptr(GError) error = NULL;
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);
  RuvMicroLora *l;

  l = ruv_lora_gguf_import_data (model, data, size_cut > 0 ? size_cut : size, "bad", NULL,
                                 &error);
  g_assert_null (l);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_ADAPTER);
  g_test_message ("refused: %s", error->message);
}

static void
test_gguf_bad (void)
{
  TinyModel tm, other;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(GBytes) good = NULL;
  g_autoptr(GBytes) b = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree float *p0 = NULL;
  g_autofree float *p1 = NULL;
  RuvMicroLora *current;
  g_autoptr(RuvMicroLora) ok = NULL;
  gsize size;

  tiny_model (&tm, "llama", 32, 16);
  tiny_model (&other, "llama", 48, 16);
  sona = make_sona (tm.model, RUV_CONSOLIDATE_AVERAGE, FALSE);
  current = ruv_sona_llm_get_lora (sona);
  randomise (current, 1, 0.1f);
  p0 = params_of (current);

  /* a well-formed hand-made adapter (n_in 32, rank 3, n_out 32) loads */
  good = handmade_adapter ("llama", "adapter", 32, 3, 3, 32, TRUE, 0.5f);
  g_bytes_get_data (good, &size);
  ok = ruv_lora_gguf_import_data (tm.model, g_bytes_get_data (good, NULL), size, "good", NULL,
                                  &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (ruv_micro_lora_get_adapter (ok, 0)->scale, ==, 8.0f / 3.0f);

  /* truncated, zero-length */
  expect_bad (tm.model, good, size / 2);
  expect_bad (tm.model, good, 1);
  /* wrong architecture, not an adapter */
  b = handmade_adapter ("qwen2", "adapter", 32, 2, 2, 32, TRUE, 0.5f);
  expect_bad (tm.model, b, 0);
  g_bytes_unref (b);
  b = handmade_adapter ("llama", "model", 32, 2, 2, 32, TRUE, 0.5f);
  expect_bad (tm.model, b, 0);
  g_bytes_unref (b);
  /* wrong dims (made for a 48-wide model), rank mismatch, missing lora_b */
  b = handmade_adapter ("llama", "adapter", 48, 2, 2, 48, TRUE, 0.5f);
  expect_bad (tm.model, b, 0);
  g_bytes_unref (b);
  b = handmade_adapter ("llama", "adapter", 32, 2, 3, 32, TRUE, 0.5f);
  expect_bad (tm.model, b, 0);
  g_bytes_unref (b);
  b = handmade_adapter ("llama", "adapter", 32, 2, 2, 32, FALSE, 0.5f);
  expect_bad (tm.model, b, 0);
  g_bytes_unref (b);
  /* non-finite weights */
  b = handmade_adapter ("llama", "adapter", 32, 2, 2, 32, TRUE, NAN);
  expect_bad (tm.model, b, 0);
  g_bytes_unref (b);
  /* an adapter exported for the 48-wide model, loaded on the 32-wide one */
  {
    g_autoptr(RuvSonaLlm) so = make_sona (other.model, RUV_CONSOLIDATE_AVERAGE, FALSE);

    b = ruv_lora_gguf_to_bytes (ruv_sona_llm_get_lora (so), other.model, &error);
    g_assert_no_error (error);
    expect_bad (tm.model, b, 0);
    g_bytes_unref (b);
  }
  b = NULL;

  /* the current adapter is untouched */
  g_assert_true (ruv_sona_llm_get_lora (sona) == current);
  p1 = params_of (current);
  g_assert_cmpfloat (max_abs_diff (p0, p1, ruv_micro_lora_get_n_params (current)), ==, 0.0);
  g_clear_object (&sona);
  tiny_model_clear (&other);
  tiny_model_clear (&tm);
}


/* ---- inside the engine ------------------------------------------------------------------ */

static const gint32 seq[] = { 1, 5, 2, 7, 3, 3, 9, 12, 4 };
#define N_SEQ ((gint64) G_N_ELEMENTS (seq))
#define N_PROMPT 4

static void
test_engine_disabled_identical (void)
{
  TinyModel tm;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  gint64 nv = 16, t;
  g_autofree float *base = g_new (float, N_SEQ * nv);
  g_autofree float *on = g_new (float, N_SEQ * nv);
  g_autofree float *off = g_new (float, N_SEQ * nv);
  g_autofree float *step = g_new (float, nv);
  RuvMicroLoraConfig cfg;
  g_autoptr(RuvMicroLora) all = NULL;

  tiny_model (&tm, "llama", 32, nv);
  ctx = ruv_context_new (tm.model, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (ruv_context_decode (ctx, seq, N_SEQ, 0, base, TRUE, &error));

  /* adapters on all seven modules of both layers */
  ruv_micro_lora_config_for_model (&cfg, tm.model);
  cfg.target_modules = (1u << RUV_TARGET_COUNT) - 1;
  all = ruv_micro_lora_new_for_model (tm.model, &cfg, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ruv_micro_lora_get_n_adapters (all), ==, 14);
  randomise (all, 5, 0.3f);
  ruv_context_set_lora (ctx, all);
  g_assert_true (ruv_context_decode (ctx, seq, N_SEQ, 0, on, TRUE, &error));
  g_assert_cmpfloat (max_abs_diff (on, base, N_SEQ * nv), >, 1e-3);
  /* decode one token at a time: the same logits as the batch (prefill) */
  g_assert_true (ruv_context_decode (ctx, seq, 1, 0, NULL, FALSE, &error));
  for (t = 1; t < N_SEQ; t++)
    {
      g_assert_true (ruv_context_decode (ctx, seq + t, 1, t, step, FALSE, &error));
      g_assert_cmpfloat (max_abs_diff (step, on + t * nv, nv), <, 1e-4);
    }

  ruv_micro_lora_set_enabled (all, FALSE);
  g_assert_true (ruv_context_decode (ctx, seq, N_SEQ, 0, off, TRUE, &error));
  g_assert_cmpint (memcmp (off, base, N_SEQ * nv * sizeof (float)), ==, 0);
  ruv_context_set_lora (ctx, NULL);
  g_clear_pointer (&ctx, ruv_context_free);
  tiny_model_clear (&tm);
}

/* With one adapter on the last layer's DOWN projection the truncated backward
 * pass is exact: compare with finite differences of the engine's own log p. */
static void
test_engine_gradcheck (void)
{
  TinyModel tm;
  RuvSonaLlmConfig cfg;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  g_autofree float *p = NULL;
  g_autofree float *grad = NULL;
  RuvMicroLora *lora;
  RuvSonaTrace *tr;
  double logp, j0, worst = 0.0;
  gint64 rows = N_SEQ - N_PROMPT;
  gsize n, i;
  guint64 pick = 3;

  tiny_model (&tm, "llama", 32, 16);
  ruv_sona_llm_config_init (&cfg, tm.model);
  cfg.micro_lora.target_modules = RUV_TARGET_BIT (RUV_TARGET_DOWN_PROJ);
  cfg.micro_lora.n_layers = 1;
  sona = ruv_sona_llm_new (tm.model, &cfg, &error);
  g_assert_no_error (error);
  lora = ruv_sona_llm_get_lora (sona);
  randomise (lora, 12, 0.3f);
  ctx = ruv_context_new (tm.model, NULL, &error);
  g_assert_no_error (error);

  tr = ruv_sona_llm_capture (sona, ctx, seq, N_PROMPT, N_SEQ, &logp, &error);
  g_assert_no_error (error);
  j0 = ruv_sona_llm_trace_objective (sona, tr, 0, 0);
  g_assert_cmpfloat (fabs (j0 - logp / rows), <, 1e-4);

  n = ruv_micro_lora_get_n_params (lora);
  grad = g_new (float, n);
  ruv_micro_lora_clear_gradients (lora);
  ruv_sona_llm_trace_backward (sona, tr, 0, 0, 1.0f, FALSE);
  ruv_micro_lora_get_gradients (lora, grad);
  ruv_micro_lora_clear_gradients (lora);
  p = params_of (lora);
  for (i = 0; i < 60; i++)
    {
      gsize k = (gsize) (mix (&pick) % n);
      float keep = p[k], h = 5e-3f;
      double lp, lm, fd;

      p[k] = keep + h;
      ruv_micro_lora_set_params (lora, p);
      g_assert_true (ruv_sona_score_response (ctx, seq, N_PROMPT, N_SEQ, &lp, &error));
      p[k] = keep - h;
      ruv_micro_lora_set_params (lora, p);
      g_assert_true (ruv_sona_score_response (ctx, seq, N_PROMPT, N_SEQ, &lm, &error));
      p[k] = keep;
      ruv_micro_lora_set_params (lora, p);
      fd = (lp - lm) / (2.0 * h) / rows;
      worst = MAX (worst, fabs (fd - grad[k]) / MAX (1e-2, fabs (fd)));
    }
  g_test_message ("engine gradcheck (last-layer DOWN): worst relative error %.2e", worst);
  g_assert_cmpfloat (worst, <, 3e-2);
  ruv_sona_trace_free (tr);
  ruv_context_set_lora (ctx, NULL);
  g_clear_pointer (&ctx, ruv_context_free);
  g_clear_object (&sona);
  tiny_model_clear (&tm);
}

/* Through the engine: thumbs-up raises the model's own log p of the rated
 * response, thumbs-down lowers it (default config: O + DOWN, last 2 layers). */
static void
test_engine_direction (void)
{
  TinyModel tm;
  int up;

  tiny_model (&tm, "llama", 32, 16);
  for (up = 0; up < 2; up++)
    {
      g_autoptr(RuvSonaLlm) sona = ruv_sona_llm_new (tm.model, NULL, NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(RuvContext) ctx = ruv_context_new (tm.model, NULL, &error);
      double before, after;
      int k;

      g_assert_true (ruv_sona_score_response (ctx, seq, N_PROMPT, N_SEQ, &before, &error));
      for (k = 0; k < 5; k++)
        {
          RuvSonaTrace *tr = ruv_sona_llm_capture (sona, ctx, seq, N_PROMPT, N_SEQ, NULL, &error);

          g_assert_no_error (error);
          g_assert_true (ruv_sona_llm_instant_adapt (sona, tr, NULL, up, up ? 1 : -1, NULL,
                                                     &error));
        }
      g_assert_true (ruv_sona_score_response (ctx, seq, N_PROMPT, N_SEQ, &after, &error));
      g_test_message ("engine %s: log p %.4f -> %.4f", up ? "up" : "down", before, after);
      if (up)
        g_assert_cmpfloat (after, >, before + 1e-3);
      else
        g_assert_cmpfloat (after, <, before - 1e-3);
      ruv_context_set_lora (ctx, NULL);
    }
  tiny_model_clear (&tm);
}


/* ---- it learns: preference pairs on a tiny model ------------------------------------- */

/* A learnable preference: a response ending in the phrase {13, 14, 15} is
 * preferred over the same response ending in {10, 11, 12}. Prompts and
 * fillers are random tokens in 1 .. 9, so nothing but the rated phrases
 * tells the two kinds apart. Sequence i of a set: prompt (4 tokens), filler
 * (3 tokens), phrase (3 tokens). */
#define PREF_PROMPT 4
#define PREF_LEN 10

static void
pref_seq (guint64  set_seed,
          gint     i,
          gboolean preferred,
          gint32  *seq_out)
{
  guint64 s = set_seed * 1000 + (guint64) i;
  gint k;

  for (k = 0; k < 7; k++)
    seq_out[k] = 1 + (gint32) (mix (&s) % 9);
  for (k = 0; k < 3; k++)
    seq_out[7 + k] = (preferred ? 13 : 10) + k;
}

/* Neutral text: random tokens in 1 .. 9 (no phrase token). */
static void
neutral_seq (gint    i,
             gint32 *seq_out)
{
  guint64 s = 777000 + (guint64) i;
  gint k;

  for (k = 0; k < PREF_LEN; k++)
    seq_out[k] = 1 + (gint32) (mix (&s) % 9);
}

typedef struct
{
  double margin;    /* mean held-out log p(preferred) - log p(other) */
  double lp_pref;   /* mean held-out log p(preferred) */
  double lp_other;  /* mean held-out log p(other) */
  double neutral;   /* mean log-likelihood of neutral held-out text */
} PrefEval;

static void
pref_eval (RuvContext *ctx,
           PrefEval   *e)
{
  g_autoptr(GError) error = NULL;
  gint32 a[PREF_LEN], b[PREF_LEN];
  gint i, n = 10;
  double lp, lo;

  memset (e, 0, sizeof *e);
  for (i = 0; i < n; i++)
    {
      pref_seq (2, i, TRUE, a);       /* set 2: held out */
      pref_seq (2, i, FALSE, b);
      g_assert_true (ruv_sona_score_response (ctx, a, PREF_PROMPT, PREF_LEN, &lp, &error));
      g_assert_true (ruv_sona_score_response (ctx, b, PREF_PROMPT, PREF_LEN, &lo, &error));
      e->lp_pref += lp / n;
      e->lp_other += lo / n;
      e->margin += (lp - lo) / n;
      neutral_seq (i, a);
      g_assert_true (ruv_sona_score_response (ctx, a, PREF_PROMPT, PREF_LEN, &lp, &error));
      e->neutral += lp / n;
    }
}

/* 20 ratings of training set 1 (10 up on preferred, 10 down on the other
 * kind, interleaved; only_down: the 10 down ones) through the instant loop
 * and a background consolidation after each (as the worker would). */
static void
pref_train (RuvSonaLlm *sona,
            RuvContext *ctx,
            gboolean    only_down)
{
  g_autoptr(GError) error = NULL;
  gint32 s[PREF_LEN];
  gint i;

  for (i = 0; i < 20; i++)
    {
      gboolean up = i % 2 == 0;
      g_autofree char *key = g_strdup_printf ("msg-%d", i);
      RuvSonaTrace *tr;

      if (only_down && up)
        continue;
      pref_seq (1, i / 2, up, s);
      tr = ruv_sona_llm_capture (sona, ctx, s, PREF_PROMPT, PREF_LEN, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (ruv_sona_llm_instant_adapt (sona, tr, key, up ? 1.0f : 0.0f,
                                                 up ? 1.0f : -1.0f, NULL, &error));
      ruv_sona_llm_background_consolidate (sona, NULL);
    }
}

static RuvSonaLlm *
pref_sona (RuvModel *model,
           float     ewc_lambda)
{
  RuvSonaLlmConfig cfg;
  g_autoptr(GError) error = NULL;
  RuvSonaLlm *sona;

  ruv_sona_llm_config_init (&cfg, model);
  cfg.sona.ewc_lambda = ewc_lambda;
  cfg.training.ewc_lambda = ewc_lambda;
  sona = ruv_sona_llm_new (model, &cfg, &error);
  g_assert_no_error (error);
  return sona;
}

static void
test_learns (void)
{
  TinyModel tm;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  PrefEval base, on, off, deep, down;
  double deg_on, deg_off;
  int pass;

  tiny_model (&tm, "llama", 32, 32);
  ctx = ruv_context_new (tm.model, NULL, &error);
  g_assert_no_error (error);
  pref_eval (ctx, &base);

  for (pass = 0; pass < 3; pass++)
    {
      /* pass 0: EWC++ on (the default lambda), 1: off, 2: thumbs-down only;
       * everything else the defaults */
      g_autoptr(RuvSonaLlm) sona = pref_sona (tm.model,
                                                   pass == 1 ? 0.0f : RUV_SONA_DEFAULT_EWC_LAMBDA);
      PrefEval *e = pass == 0 ? &on : pass == 1 ? &off : &down;

      pref_train (sona, ctx, pass == 2);
      pref_eval (ctx, e);
      if (pass == 0)
        {
          g_assert_true (ruv_sona_llm_deep_optimize (sona, NULL, 0, NULL, NULL, NULL, NULL, NULL,
                                                     &error));
          g_assert_no_error (error);
          pref_eval (ctx, &deep);
        }
      ruv_context_set_lora (ctx, NULL);
    }
  deg_on = (base.neutral - on.neutral) / fabs (base.neutral);
  deg_off = (base.neutral - off.neutral) / fabs (base.neutral);
  g_test_message ("held-out margin: base %.3f, after 20 ratings %.3f (EWC off %.3f), after deep "
                  "%.3f", base.margin, on.margin, off.margin, deep.margin);
  g_test_message ("thumbs-down only: log p(rated kind) %.3f -> %.3f, log p(preferred) %.3f -> "
                  "%.3f", base.lp_other, down.lp_other, base.lp_pref, down.lp_pref);
  g_test_message ("neutral log-likelihood %.3f -> %.3f EWC on (%.2f%%), %.3f EWC off (%.2f%%)",
                  base.neutral, on.neutral, 100 * deg_on, off.neutral, 100 * deg_off);
  /* direction: the margin rises by a clear amount, deep raises it further */
  g_assert_cmpfloat (on.margin, >, base.margin + 1.0);
  g_assert_cmpfloat (deep.margin, >, on.margin);
  /* thumbs-down alone lowers the rated kind's probability */
  g_assert_cmpfloat (down.lp_other, <, base.lp_other - 0.5);
  /* neutral text: at most 2% worse, and EWC++ holds the rest of the model
   * closer to the base (a smaller change either way) */
  g_assert_cmpfloat (deg_on, <=, 0.02);
  g_assert_cmpfloat (fabs (deg_on), <, fabs (deg_off));
  g_clear_pointer (&ctx, ruv_context_free);
  tiny_model_clear (&tm);
}



/* log p of the 10 neutral sequences of pref_eval, one by one */
static void
neutral_logps (RuvContext *ctx,
               double     *lp)
{
  g_autoptr(GError) error = NULL;
  gint32 a[PREF_LEN];
  gint i;

  for (i = 0; i < 10; i++)
    {
      neutral_seq (i, a);
      g_assert_true (ruv_sona_score_response (ctx, a, PREF_PROMPT, PREF_LEN, lp + i, &error));
    }
}

/* EWC++ holds the adapter toward the base model from the first rating on
 * (task 0, ruv-ewc.h), not only once a task boundary has set an anchor: with
 * no boundary in the 20 ratings (ewc_task_ratings 1000), EWC++ on must keep
 * the weights closer to the starting adapter (B = 0: the base model) and the
 * neutral texts' log-likelihoods closer to the base model's (mean absolute
 * change per sequence: on this tiny model the mean log-likelihood rises
 * rather than falls) than EWC++ off, while still learning the preference.
 * Without task 0 (ewc_base_weight 0) nothing would pull before a boundary:
 * the run is then exactly the one with EWC++ off. */
static void
test_ewc_base_holds (void)
{
  TinyModel tm;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  PrefEval base, e[3];
  double dist[3], drift[3], lp0[10], lp[10];
  g_autofree float *w0 = NULL;
  float *wl[3] = { NULL, NULL, NULL };
  gsize n = 0, i;
  int pass;

  tiny_model (&tm, "llama", 32, 32);
  ctx = ruv_context_new (tm.model, NULL, &error);
  g_assert_no_error (error);
  pref_eval (ctx, &base);
  neutral_logps (ctx, lp0);
  for (pass = 0; pass < 3; pass++)
    {
      /* pass 0: EWC++ off; 1: on, without task 0; 2: on (the defaults) */
      RuvSonaLlmConfig cfg;
      g_autoptr(RuvSonaLlm) sona = NULL;

      ruv_sona_llm_config_init (&cfg, tm.model);
      cfg.sona.ewc_task_ratings = 1000;
      cfg.sona.ewc_lambda = pass == 0 ? 0.0f : RUV_SONA_DEFAULT_EWC_LAMBDA;
      if (pass == 1)
        cfg.sona.ewc_base_weight = 0.0f;
      sona = ruv_sona_llm_new (tm.model, &cfg, &error);
      g_assert_no_error (error);
      n = ruv_micro_lora_get_n_params (ruv_sona_llm_get_lora (sona));
      if (w0 == NULL)
        w0 = params_of (ruv_sona_llm_get_lora (sona));
      pref_train (sona, ctx, FALSE);
      g_assert_false (ruv_ewc_has_anchor (ruv_sona_llm_get_ewc (sona)));
      pref_eval (ctx, &e[pass]);
      wl[pass] = params_of (ruv_sona_llm_get_lora (sona));
      dist[pass] = 0.0;
      for (i = 0; i < n; i++)
        dist[pass] += ((double) wl[pass][i] - w0[i]) * ((double) wl[pass][i] - w0[i]);
      dist[pass] = sqrt (dist[pass]);
      neutral_logps (ctx, lp);
      drift[pass] = 0.0;
      for (i = 0; i < 10; i++)
        drift[pass] += fabs (lp[i] - lp0[i]) / 10;
      ruv_context_set_lora (ctx, NULL);
      g_test_message ("pass %d: |w - w0| %.4f, margin %.3f -> %.3f, neutral %.4f -> %.4f "
                      "(mean |change| %.4f)", pass, dist[pass], base.margin, e[pass].margin,
                      base.neutral, e[pass].neutral, drift[pass]);
    }
  /* no boundary and no task 0: EWC++ does nothing (the old behaviour) */
  g_assert_cmpfloat (max_abs_diff (wl[0], wl[1], n), ==, 0.0);
  /* task 0 holds the adapter toward the base, and neutral text with it ... */
  g_assert_cmpfloat (dist[2], <, 0.9 * dist[0]);
  g_assert_cmpfloat (drift[2], <, drift[0]);
  /* ... and the preference is still learned */
  g_assert_cmpfloat (e[2].margin, >, base.margin + 1.0);
  g_assert_cmpfloat (e[2].margin - base.margin, >, 0.5 * (e[0].margin - base.margin));
  for (pass = 0; pass < 3; pass++)
    g_free (wl[pass]);
  g_clear_pointer (&ctx, ruv_context_free);
  tiny_model_clear (&tm);
}

/* ---- EWC++ reduces forgetting: task A, then task B ---------------------------------- */

/* Task 0 is pref_seq's phrase preference ({13, 14, 15} over {10, 11, 12});
 * task 1 prefers task 0's rejected phrase {10, 11, 12} over a new one
 * {16, 17, 18}. Task 1 can be learned by lowering {16, 17, 18} alone or by
 * also raising {10, 11, 12}, which undoes task 0: plain gradient steps do
 * some of both. */
static void
task_seq (gint     task,
          guint64  set_seed,
          gint     i,
          gboolean preferred,
          gint32  *seq_out)
{
  pref_seq (set_seed + (guint64) task * 100, i, preferred, seq_out);
  if (task == 1)
    {
      gint k;

      for (k = 0; k < 3; k++)
        seq_out[7 + k] = (preferred ? 10 : 16) + k;
    }
}

static double
task_margin (RuvContext *ctx,
             gint        task)
{
  g_autoptr(GError) error = NULL;
  gint32 a[PREF_LEN], b[PREF_LEN];
  double lp, lo, m = 0.0;
  gint i, n = 10;

  for (i = 0; i < n; i++)
    {
      task_seq (task, 2, i, TRUE, a);     /* set 2: held out */
      task_seq (task, 2, i, FALSE, b);
      g_assert_true (ruv_sona_score_response (ctx, a, PREF_PROMPT, PREF_LEN, &lp, &error));
      g_assert_true (ruv_sona_score_response (ctx, b, PREF_PROMPT, PREF_LEN, &lo, &error));
      m += (lp - lo) / n;
    }
  return m;
}

static void
task_train (RuvSonaLlm *sona,
            RuvContext *ctx,
            gint        task)
{
  g_autoptr(GError) error = NULL;
  gint32 s[PREF_LEN];
  gint i;

  for (i = 0; i < 20; i++)
    {
      gboolean up = i % 2 == 0;
      g_autofree char *key = g_strdup_printf ("task%d-msg-%d", task, i);
      RuvSonaTrace *tr;

      task_seq (task, 1, i / 2, up, s);
      tr = ruv_sona_llm_capture (sona, ctx, s, PREF_PROMPT, PREF_LEN, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (ruv_sona_llm_instant_adapt (sona, tr, key, up ? 1.0f : 0.0f,
                                                 up ? 1.0f : -1.0f, NULL, &error));
      ruv_sona_llm_background_consolidate (sona, NULL);
    }
}

/* The forgetting protocol of tools/learn-proof.py --sequential on the tiny
 * model: 20 ratings of task A, then 20 of task B, through the instant loop
 * and a consolidation after each, with the default EWC++ and with it off.
 * Forgetting = task A's held-out margin after A minus after A then B (the
 * usual backward-transfer measure). EWC++ must clearly reduce it while B is
 * still learned (at least half of B's margin gain without EWC++). */
static void
test_ewc_forgetting (void)
{
  TinyModel tm;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  static const float lambdas[3] = { 0.0f, RUV_SONA_DEFAULT_EWC_LAMBDA, 0.5f };
  double base_a, base_b, after_a[3], after_ab[3], forgot[3], learned_b[3];
  int pass;

  tiny_model (&tm, "llama", 32, 32);
  ctx = ruv_context_new (tm.model, NULL, &error);
  g_assert_no_error (error);
  base_a = task_margin (ctx, 0);
  base_b = task_margin (ctx, 1);
  for (pass = 0; pass < 3; pass++)
    {
      /* pass 0: EWC++ off, 1: the default lambda, 2: a stronger one */
      g_autoptr(RuvSonaLlm) sona = pref_sona (tm.model, lambdas[pass]);

      task_train (sona, ctx, 0);
      after_a[pass] = task_margin (ctx, 0);
      task_train (sona, ctx, 1);
      after_ab[pass] = task_margin (ctx, 0);
      forgot[pass] = after_a[pass] - after_ab[pass];
      learned_b[pass] = task_margin (ctx, 1) - base_b;
      ruv_context_set_lora (ctx, NULL);
      g_test_message ("EWC++ lambda %g: task A margin %.3f -> %.3f after A (+%.3f) -> %.3f "
                      "after B (forgot %.3f); task B margin +%.3f", lambdas[pass], base_a,
                      after_a[pass], after_a[pass] - base_a, after_ab[pass], forgot[pass],
                      learned_b[pass]);
    }
  /* both learn A, and B makes them forget some of it */
  g_assert_cmpfloat (after_a[0], >, base_a + 1.0);
  g_assert_cmpfloat (after_a[1], >, base_a + 1.0);
  g_assert_cmpfloat (after_a[2], >, base_a + 1.0);
  g_assert_cmpfloat (forgot[0], >, 0.5);
  /* EWC++ forgets less, the more so the larger lambda (the default trades
   * protection for plasticity: on Qwen2.5-0.5B lambda 0.5 blocked task B,
   * README) ... */
  g_assert_cmpfloat (forgot[1], <, 0.9 * forgot[0]);
  g_assert_cmpfloat (forgot[2], <, 0.75 * forgot[0]);
  g_assert_cmpfloat (forgot[2], <, forgot[1]);
  /* ... without blocking B */
  g_assert_cmpfloat (learned_b[1], >, 0.8 * learned_b[0]);
  g_assert_cmpfloat (learned_b[2], >, 0.5 * learned_b[0]);
  g_clear_pointer (&ctx, ruv_context_free);
  tiny_model_clear (&tm);
}

/* Capture during generation (token by token, as the backend's loop does)
 * gives the same trace as a separate capture run of the same tokens. */
static void
test_generation_capture (void)
{
  TinyModel tm;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  gint64 nv = 32, t;
  g_autofree float *logits = g_new (float, nv);
  RuvSonaTrace *gen, *ref;
  double jg, jr, jg_c, jr_c;

  tiny_model (&tm, "llama", 32, nv);
  sona = ruv_sona_llm_new (tm.model, NULL, &error);
  g_assert_no_error (error);
  randomise (ruv_sona_llm_get_lora (sona), 9, 0.2f);
  ctx = ruv_context_new (tm.model, NULL, &error);
  g_assert_no_error (error);

  ruv_sona_llm_generation_begin (sona, ctx, N_PROMPT - 1, 16);
  g_assert_true (ruv_context_decode (ctx, seq, N_PROMPT, 0, logits, FALSE, &error));
  for (t = N_PROMPT; t < N_SEQ; t++)
    {
      /* the "sampled" token is the sequence's own */
      ruv_sona_llm_generation_token (sona, logits, seq[t]);
      g_assert_true (ruv_context_decode (ctx, seq + t, 1, t, logits, FALSE, &error));
    }
  gen = ruv_sona_llm_generation_end (sona, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ruv_sona_trace_get_n_tokens (gen), ==, N_SEQ - N_PROMPT);
  ref = ruv_sona_llm_capture (sona, ctx, seq, N_PROMPT, N_SEQ, NULL, &error);
  g_assert_no_error (error);
  jg = ruv_sona_llm_trace_objective (sona, gen, 0, 0);
  jr = ruv_sona_llm_trace_objective (sona, ref, 0, 0);
  jg_c = ruv_sona_llm_trace_objective (sona, gen, 16, 4);
  jr_c = ruv_sona_llm_trace_objective (sona, ref, 16, 4);
  g_test_message ("generation trace J %.6f (candidates %.6f), capture run %.6f (%.6f)", jg, jg_c,
                  jr, jr_c);
  g_assert_cmpfloat (fabs (jg - jr), <, 1e-4);
  g_assert_cmpfloat (fabs (jg_c - jr_c), <, 1e-4);
  /* it trains like any trace */
  g_assert_true (ruv_sona_llm_instant_adapt (sona, gen, "g", 1.0f, 1.0f, NULL, &error));
  g_assert_no_error (error);
  ruv_sona_trace_free (ref);
  /* nothing recorded: no trace, an error */
  ruv_sona_llm_generation_begin (sona, ctx, 0, 4);
  g_assert_null (ruv_sona_llm_generation_end (sona, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_SONA);
  ruv_context_set_lora (ctx, NULL);
  g_clear_pointer (&ctx, ruv_context_free);
  g_clear_object (&sona);
  tiny_model_clear (&tm);
}

/* ---- the user's adapters: snapshots, rollback, reset, rating outcomes ---------------- */

static void
test_learner_store (void)
{
  TinyModel tm;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("ruv-learner-XXXXXX", &error);
  g_autofree char *db = g_build_filename (dir, "ruvllm.db", NULL);
  g_autofree char *out = g_build_filename (dir, "a.gguf", NULL);
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(RuvLearner) learner = NULL;
  g_autoptr(RuvLearner) again = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  g_autoptr(GPtrArray) snaps = NULL;
  g_autoptr(GPtrArray) hist = NULL;
  g_autofree float *p0 = NULL;
  g_autofree float *p1 = NULL;
  g_autofree float *p2 = NULL;
  RuvAdaptationResult res;
  RuvStoreRatingRecord *rec;
  gint64 session, msg, first, second, reset_id;
  gint32 s[PREF_LEN];
  gsize np;
  int i;

  g_assert_no_error (error);
  tiny_model (&tm, "llama", 32, 32);
  store = ruv_store_new_for_path (db, &error);
  g_assert_no_error (error);
  session = ruv_store_create_session (store, "t", "tiny", NULL, NULL, &error);
  g_assert_no_error (error);
  msg = ruv_store_add_message (store, session, 0, "assistant", "hi", "tiny", NULL, TRUE, &error);
  g_assert_no_error (error);
  g_assert_true (ruv_store_rate_message (store, msg, RUV_RATING_UP, &error));

  learner = ruv_learner_new (tm.model, "tiny.gguf", store, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ruv_learner_get_head (learner), ==, 0);
  ctx = ruv_context_new (tm.model, NULL, &error);
  g_assert_no_error (error);
  np = ruv_micro_lora_get_n_params (ruv_learner_get_lora (learner));
  p0 = params_of (ruv_learner_get_lora (learner));

  /* a rating: instant step recorded against the message */
  pref_seq (1, 0, TRUE, s);
  g_assert_true (ruv_learner_rate (learner,
                                   ruv_sona_llm_capture (ruv_learner_get_sona (learner), ctx, s,
                                                         PREF_PROMPT, PREF_LEN, NULL, &error),
                                   msg, "m1", 1.0, &res, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (res.applied);
  g_assert_cmpfloat (res.loss_after, <, res.loss);
  hist = ruv_store_rating_history (store, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (hist->len, ==, 1);
  rec = g_ptr_array_index (hist, 0);
  g_assert_cmpint (rec->message_id, ==, msg);
  g_assert_cmpint (rec->outcome, ==, RUV_ADAPTATION_APPLIED);
  g_assert_cmpfloat (fabs (rec->loss_before - res.loss), <, 1e-9);
  g_assert_cmpfloat (fabs (rec->loss_after - res.loss_after), <, 1e-9);
  g_assert_cmpint (rec->latency_us, ==, (gint64) res.latency_us);

  /* each consolidation is a snapshot, chained to the one before */
  g_assert_true (ruv_learner_consolidate (learner, NULL, NULL));
  first = ruv_learner_get_head (learner);
  g_assert_cmpint (first, >, 0);
  p1 = params_of (ruv_learner_get_lora (learner));
  for (i = 0; i < 2; i++)
    {
      pref_seq (1, 1 + i, FALSE, s);
      g_assert_true (ruv_learner_rate (learner,
                                       ruv_sona_llm_capture (ruv_learner_get_sona (learner), ctx,
                                                             s, PREF_PROMPT, PREF_LEN, NULL,
                                                             &error),
                                       0, NULL, -1.0, NULL, NULL, &error));
    }
  g_assert_true (ruv_learner_deep (learner, NULL, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  second = ruv_learner_get_head (learner);
  g_assert_cmpint (second, >, first);
  p2 = params_of (ruv_learner_get_lora (learner));
  g_assert_cmpfloat (max_abs_diff (p1, p2, np), >, 1e-6);
  snaps = ruv_store_list_snapshots (store, "tiny.gguf", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snaps->len, ==, 2);
  g_assert_cmpint (((RuvStoreSnapshot *) g_ptr_array_index (snaps, 0))->id, ==, second);
  g_assert_cmpint (((RuvStoreSnapshot *) g_ptr_array_index (snaps, 0))->parent_id, ==, first);
  g_assert_cmpint (((RuvStoreSnapshot *) g_ptr_array_index (snaps, 1))->parent_id, ==, 0);

  /* roll back to the first: the same weights, in the same adapter object */
  {
    RuvMicroLora *before = ruv_learner_get_lora (learner);
    g_autofree float *back = NULL;

    g_assert_true (ruv_learner_restore (learner, first, &error));
    g_assert_true (ruv_learner_get_lora (learner) == before);
    back = params_of (before);
    g_assert_cmpfloat (max_abs_diff (back, p1, np), ==, 0.0);
    g_assert_cmpint (ruv_learner_get_head (learner), ==, first);
    /* EWC++ starts over from the restored weights (task 0), so it holds
     * them rather than the weights they replaced */
    {
      RuvEwc *ewc = ruv_sona_llm_get_ewc (ruv_learner_get_sona (learner));

      g_assert_true (ruv_ewc_has_base (ewc));
      g_assert_false (ruv_ewc_has_anchor (ewc));
      g_assert_cmpfloat (max_abs_diff (ruv_ewc_get_base (ewc), p1, np), ==, 0.0);
    }
  }
  /* a snapshot of another model is refused, the adapter kept */
  {
    g_autoptr(GBytes) junk = g_bytes_new_static ("not gguf", 8);
    gint64 other = ruv_store_add_snapshot (store, "other.gguf", 0, junk, NULL, NULL, NULL, &error);
    g_autofree float *kept = NULL;

    g_assert_no_error (error);
    g_assert_false (ruv_learner_restore (learner, other, &error));
    g_assert_error (error, RUV_ERROR, RUV_ERROR_ADAPTER);
    g_clear_error (&error);
    kept = params_of (ruv_learner_get_lora (learner));
    g_assert_cmpfloat (max_abs_diff (kept, p1, np), ==, 0.0);
  }
  /* export, then reset (a no-op adapter, recorded), then import back */
  g_assert_true (ruv_learner_export (learner, out, &error));
  g_assert_true (ruv_learner_reset (learner, &error));
  reset_id = ruv_learner_get_head (learner);
  g_assert_cmpint (reset_id, >, second);
  {
    g_autofree float *r = params_of (ruv_learner_get_lora (learner));

    g_assert_cmpfloat (max_abs_diff (r, p0, np), ==, 0.0);
  }
  g_assert_true (ruv_learner_import (learner, out, &error));
  g_assert_no_error (error);
  {
    g_autofree float *r = params_of (ruv_learner_get_lora (learner));

    g_assert_cmpfloat (max_abs_diff (r, p1, np), <, 1e-6);
  }
  /* a new learner for the model starts from the newest snapshot (the import) */
  again = ruv_learner_new (tm.model, "tiny.gguf", store, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ruv_learner_get_head (again), >, reset_id);
  {
    g_autofree float *r = params_of (ruv_learner_get_lora (again));

    g_assert_cmpfloat (max_abs_diff (r, p1, np), <, 1e-6);
  }

  ruv_context_set_lora (ctx, NULL);
  g_clear_pointer (&ctx, ruv_context_free);
  g_clear_object (&again);
  g_clear_object (&learner);
  g_clear_object (&store);
  g_remove (out);
  tiny_model_clear (&tm);
  {
    g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name (d)) != NULL)
      {
        g_autofree char *f = g_build_filename (dir, name, NULL);

        g_remove (f);
      }
  }
  g_rmdir (dir);
}

/* ---- instant-loop latency (perf mode, real model) -------------------------------------- */

static int
cmp_u64 (gconstpointer a,
         gconstpointer b)
{
  guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;

  return x < y ? -1 : x > y;
}

/* RUVLLM_LORA_BENCH_MODEL=path/to/qwen05.gguf test-lora -m perf -p /engine/lora/perf/instant
 * (RUVLLM_LORA_BENCH_N ratings, default 1000). .../instant-background: the
 * same with the background worker consolidating (full vocabulary) while
 * ratings arrive every 20 ms (RUVLLM_LORA_BENCH_N, default 100). */
static void
perf_instant (gboolean background)
{
  const char *path = g_getenv ("RUVLLM_LORA_BENCH_MODEL");
  g_autoptr(GBytes) synth = NULL;   /* outlives the model made from it */
  g_autoptr(RuvModel) model = NULL;
  g_autoptr(RuvSonaLlm) sona = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint64 *lat = NULL;
  g_autofree guint64 *cpu = NULL;
  g_autofree char *loadavg = NULL;
  const char *ns = g_getenv ("RUVLLM_LORA_BENCH_N");
  int i, n = ns != NULL ? CLAMP (atoi (ns), 10, 1000000) : background ? 100 : 1000;

  if (path == NULL)
    {
      g_test_skip ("set RUVLLM_LORA_BENCH_MODEL to a GGUF model (or \"synthetic-qwen05\")");
      return;
    }
  if (g_str_equal (path, "synthetic-qwen05"))
    {
      /* Qwen2.5-0.5B's shapes (d896, 14/2 heads, ffn 4864, vocab 151936, tied
       * Q8_0 head) with 2 layers: the instant loop only touches the adapted
       * last 2 layers and the LM head, so its cost is the real model's. For
       * machines without the refharness models. */
      RuvTestModelSpec spec;
      const guint8 *data;
      gsize size;

      ruv_test_model_spec_init (&spec);
      spec.arch = "qwen2";
      spec.n_embd = 896;
      spec.n_layer = 2;
      spec.n_head = 14;
      spec.n_head_kv = 2;
      spec.head_dim = 64;
      spec.n_ff = 4864;
      spec.n_vocab = 151936;
      spec.tied = TRUE;
      spec.qkv_bias = TRUE;
      spec.matrix_type = RK_TYPE_Q8_0;
      synth = ruv_test_model_build (&spec, fill_random, GUINT_TO_POINTER (3));
      data = g_bytes_get_data (synth, &size);
      model = ruv_model_new_from_data (data, size, "synthetic-qwen05", &error);
    }
  else
    model = ruv_model_new_from_file (path, &error);
  g_assert_no_error (error);
  sona = ruv_sona_llm_new (model, NULL, &error);
  g_assert_no_error (error);
  lat = g_new (guint64, n);
  cpu = g_new (guint64, n);
  if (background)
    ruv_sona_llm_start_background (sona);
  for (i = 0; i < n; i++)
    {
      RuvSonaTrace *tr = make_trace (sona, (guint64) i, 64, 64);
      RuvAdaptationResult res;
      struct timespec c0, c1;

      if (background)
        g_usleep (20000);

      /* thread CPU time beside the wall time: on a loaded machine the wall
       * time's tail is the scheduler's, the CPU time is the loop's own */
      clock_gettime (CLOCK_THREAD_CPUTIME_ID, &c0);
      g_assert_true (ruv_sona_llm_instant_adapt (sona, tr, NULL, i % 2, i % 2 ? 1 : -1, &res,
                                                 &error));
      clock_gettime (CLOCK_THREAD_CPUTIME_ID, &c1);
      lat[i] = res.latency_us;
      cpu[i] = (guint64) ((c1.tv_sec - c0.tv_sec) * G_GINT64_CONSTANT (1000000) +
                          (c1.tv_nsec - c0.tv_nsec) / 1000);
    }
  if (background)
    {
      RuvLearningLoopStats st;

      ruv_sona_llm_stop_background (sona);
      ruv_sona_llm_get_stats (sona, &st);
      g_print ("# background consolidations during the run: %" G_GUINT64_FORMAT " (%"
               G_GUINT64_FORMAT " samples)\n", st.background_runs, st.background_samples);
    }
  if (g_file_get_contents ("/proc/loadavg", &loadavg, NULL, NULL))
    g_strchomp (loadavg);
  qsort (lat, n, sizeof lat[0], (int (*)(const void *, const void *)) cmp_u64);
  qsort (cpu, n, sizeof cpu[0], (int (*)(const void *, const void *)) cmp_u64);
  g_print ("# instant_adapt on %s (64-token answers, default config%s): wall p50 %"
           G_GUINT64_FORMAT " us, p99 %" G_GUINT64_FORMAT " us, max %" G_GUINT64_FORMAT
           " us; thread CPU p50 %" G_GUINT64_FORMAT " us, p99 %" G_GUINT64_FORMAT
           " us (n=%d; loadavg %s)\n", path,
           background ? ", background worker running" : "", lat[n / 2], lat[(n * 99) / 100],
           lat[n - 1], cpu[n / 2], cpu[(n * 99) / 100], n, loadavg != NULL ? loadavg : "?");
}

static void
test_perf_instant (void)
{
  perf_instant (FALSE);
}

static void
test_perf_instant_background (void)
{
  perf_instant (TRUE);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/engine/lora/forward", test_forward);
  g_test_add_func ("/engine/lora/adapt-gradient", test_adapt_gradient);
  g_test_add_func ("/engine/lora/gradcheck/full-vocab", test_gradcheck_full);
  g_test_add_func ("/engine/lora/gradcheck/candidates", test_gradcheck_candidates);
  g_test_add_func ("/engine/lora/direction", test_direction);
  g_test_add_func ("/engine/lora/bounded", test_bounded);
  g_test_add_func ("/engine/lora/nan-skipped", test_nan_skipped);
  g_test_add_func ("/engine/lora/rerate", test_rerate);
  g_test_add_func ("/engine/lora/ewc", test_ewc);
  g_test_add_func ("/engine/lora/ewc-base", test_ewc_base);
  g_test_add_func ("/engine/lora/trust-region", test_trust_region);
  g_test_add_data_func ("/engine/lora/consolidate/ewc-merge",
                        GINT_TO_POINTER (RUV_CONSOLIDATE_EWC_MERGE), test_consolidate);
  g_test_add_data_func ("/engine/lora/consolidate/average",
                        GINT_TO_POINTER (RUV_CONSOLIDATE_AVERAGE), test_consolidate);
  g_test_add_data_func ("/engine/lora/consolidate/quality-weighted",
                        GINT_TO_POINTER (RUV_CONSOLIDATE_QUALITY_WEIGHTED), test_consolidate);
  g_test_add_data_func ("/engine/lora/consolidate/best-only",
                        GINT_TO_POINTER (RUV_CONSOLIDATE_BEST_ONLY), test_consolidate);
  g_test_add_data_func ("/engine/lora/consolidate/ensemble",
                        GINT_TO_POINTER (RUV_CONSOLIDATE_ENSEMBLE), test_consolidate);
  g_test_add_func ("/engine/lora/background-thread", test_background_thread);
  g_test_add_func ("/engine/lora/deep", test_deep);
  g_test_add_func ("/engine/lora/gguf/roundtrip", test_gguf_roundtrip);
  g_test_add_func ("/engine/lora/gguf/bad", test_gguf_bad);
  g_test_add_func ("/engine/lora/engine/disabled-identical", test_engine_disabled_identical);
  g_test_add_func ("/engine/lora/engine/gradcheck", test_engine_gradcheck);
  g_test_add_func ("/engine/lora/engine/direction", test_engine_direction);
  g_test_add_func ("/engine/lora/engine/learns", test_learns);
  g_test_add_func ("/engine/lora/engine/ewc-forgetting", test_ewc_forgetting);
  g_test_add_func ("/engine/lora/engine/ewc-base", test_ewc_base_holds);
  g_test_add_func ("/engine/lora/learner/store", test_learner_store);
  g_test_add_func ("/engine/lora/engine/generation-capture", test_generation_capture);
  if (g_test_perf ())
    {
      g_test_add_func ("/engine/lora/perf/instant", test_perf_instant);
      g_test_add_func ("/engine/lora/perf/instant-background", test_perf_instant_background);
    }
  return g_test_run ();
}
