/* test-model.c — loading GGUF models and the forward pass.
 * SPDX-License-Identifier: MIT
 *
 * Three kinds of checks:
 *  - hand-made models (tests/engine/ruv-test-util.c) whose logits follow from
 *    the weights by a few lines of double-precision arithmetic: zero layers
 *    (logits = output . norm (embedding)), and a layer that averages V over
 *    the causal window (checks the mask, the KV cache, GQA and the residuals);
 *  - logits recorded from llama.cpp for three small generated models in
 *    tests/data (qwen2 with biases, qwen3 with q/k norms, llama with llama3
 *    rope_freqs in Q8_0); provenance in tests/data/record-model-expected.py;
 *  - every load error a broken file can cause is RUV_ERROR_MODEL naming the
 *    field, and every misuse of a context is RUV_ERROR_CONFIG.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "rk.h"
#include "ruv-error.h"
#include "ruv-forward.h"
#include "ruv-model-private.h"
#include "ruv-test-util.h"

/* Tolerances against llama.cpp (logits have std ~10 in these models):
 * F32 weights: llama.cpp rounds Q to F16 and keeps K/V in F16 (flash
 * attention) while we stay in F32; measured max |diff| over its top-5 logits
 * 0.075 -> allow 0.15. Q8_0 weights: both engines quantize activations to
 * Q8_0, but a 1e-4 upstream difference flips single int8 roundings, which
 * shows as up to ~0.6 (measured) -> allow 1.5. The argmax must agree unless
 * llama.cpp's top-2 margin is below the same tolerance. */
#define TOL_F32  0.15
#define TOL_Q8_0 1.5

static RuvModel *
model_from_bytes (GBytes  *bytes,
                  GError **error)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);

  return ruv_model_new_from_data (data, size, "test.gguf", error);
}

static float
pseudo (gint64 i,
        guint  salt)
{
  /* Deterministic values in (-1, 1). */
  return (float) sin ((double) (i * 7919 + salt * 104729) * 0.001 + salt);
}

static void
rmsnorm_d (double       *out,
           const double *x,
           const float  *w,
           gint64        n,
           double        eps)
{
  double s = 0.0;
  gint64 i;

  for (i = 0; i < n; i++)
    s += x[i] * x[i];
  s = 1.0 / sqrt (s / n + eps);
  for (i = 0; i < n; i++)
    out[i] = x[i] * s * (w != NULL ? w[i] : 1.0);
}

/* ---- types ----------------------------------------------------------------- */

static void
test_types (void)
{
  GEnumClass *klass;

  g_assert_cmpuint (ruv_precision_bits_per_element (RUV_PRECISION_FP32), ==, 32);
  g_assert_cmpuint (ruv_precision_bits_per_element (RUV_PRECISION_FP16), ==, 16);
  g_assert_cmpuint (ruv_precision_bits_per_element (RUV_PRECISION_BF16), ==, 16);
  g_assert_cmpuint (ruv_precision_bits_per_element (RUV_PRECISION_Q8), ==, 8);
  g_assert_cmpuint (ruv_precision_bits_per_element (RUV_PRECISION_Q4), ==, 4);
  g_assert_cmpuint (ruv_precision_bits_per_element (RUV_PRECISION_Q4K), ==, 4);
  g_assert_cmpstr (ruv_precision_name (RUV_PRECISION_Q4K), ==, "Q4K");

  g_assert_cmpint (ruv_model_size_from_params (135000000), ==, RUV_MODEL_SIZE_TINY);
  g_assert_cmpint (ruv_model_size_from_params (999999999), ==, RUV_MODEL_SIZE_TINY);
  g_assert_cmpint (ruv_model_size_from_params (1000000000), ==, RUV_MODEL_SIZE_SMALL);
  g_assert_cmpint (ruv_model_size_from_params (2999999999), ==, RUV_MODEL_SIZE_SMALL);
  g_assert_cmpint (ruv_model_size_from_params (7000000000), ==, RUV_MODEL_SIZE_MEDIUM);
  g_assert_cmpint (ruv_model_size_from_params (13000000000), ==, RUV_MODEL_SIZE_MEDIUM);
  g_assert_cmpint (ruv_model_size_from_params (70000000000), ==, RUV_MODEL_SIZE_LARGE);
  g_assert_cmpstr (ruv_model_size_name (RUV_MODEL_SIZE_MEDIUM), ==, "Medium");

  g_assert_true (ruv_device_type_is_available (RUV_DEVICE_TYPE_CPU));
  g_assert_false (ruv_device_type_is_available (RUV_DEVICE_TYPE_CUDA));
  g_assert_cmpstr (ruv_device_type_name (RUV_DEVICE_TYPE_METAL), ==, "Metal");

  klass = g_type_class_ref (RUV_TYPE_PRECISION);
  g_assert_nonnull (g_enum_get_value_by_nick (klass, "q4k"));
  g_type_class_unref (klass);
  klass = g_type_class_ref (RUV_TYPE_MODEL_SIZE);
  g_assert_cmpint (g_enum_get_value_by_nick (klass, "large")->value, ==, RUV_MODEL_SIZE_LARGE);
  g_type_class_unref (klass);
  klass = g_type_class_ref (RUV_TYPE_DEVICE_TYPE);
  g_assert_cmpint (g_enum_get_value_by_nick (klass, "cuda")->value, ==, RUV_DEVICE_TYPE_CUDA);
  g_type_class_unref (klass);
}

/* ---- hand-made models ---------------------------------------------------- */

/* Embedding, output and norms vary; with mean_v the single layer copies the
 * causal mean of V = h[0..16) into both heads' outputs; everything else in the
 * layers is zero, so the FFN adds nothing. */
static void
fill_simple (const char *name,
             float      *v,
             gint64      ne0,
             gint64      ne1,
             gpointer    user_data)
{
  gboolean mean_v = GPOINTER_TO_INT (user_data);
  guint salt = g_str_hash (name) % 1000;
  gint64 r, c;

  for (r = 0; r < ne1; r++)
    for (c = 0; c < ne0; c++)
      {
        float x = 0.0f;

        if (!g_str_has_prefix (name, "blk."))
          x = g_str_has_suffix (name, "norm.weight") ? 1.0f + 0.5f * pseudo (c, salt)
                                                      : pseudo (r * ne0 + c, salt);
        else if (g_str_has_suffix (name, "attn_norm.weight"))
          x = 1.0f;
        else if (mean_v && g_str_has_suffix (name, "attn_v.weight"))
          x = r == c ? 1.0f : 0.0f;
        else if (mean_v && g_str_has_suffix (name, "attn_output.weight"))
          x = r == c ? 1.0f : 0.0f;
        else if (g_str_has_suffix (name, ".bias"))
          x = 0.25f;   /* biases: with zero attn_output they cannot show */
        v[r * ne0 + c] = x;
      }
}

/* Expected logits of fill_simple's model for tokens, in double, from the
 * model's own (dequantized) embedding, output and norm weights. */
static void
expected_simple (RuvModel               *model,
                 const RuvTestModelSpec *spec,
                 gboolean                mean_v,
                 const gint32           *tokens,
                 gint64                  n,
                 double                 *logits)
{
  const RuvWeights *w = ruv_model_get_weights (model);
  gint64 d = spec->n_embd, hd = spec->head_dim, i, j, c, t;
  g_autofree gint32 *all_ids = g_new (gint32, spec->n_vocab);
  g_autofree float *embd = g_new (float, spec->n_vocab * d);
  g_autofree float *out = g_new (float, spec->n_vocab * d);
  const float *onorm = w->output_norm;
  g_autofree double *h = g_new0 (double, n * d);
  g_autofree double *x = g_new0 (double, d);
  g_autofree double *e = g_new0 (double, d);
  g_autofree double *y = g_new0 (double, d);

  for (t = 0; t < spec->n_vocab; t++)
    all_ids[t] = (gint32) t;
  rk_get_rows (w->token_embd.type, w->token_embd.data, w->token_embd.row_stride, d, all_ids,
               spec->n_vocab, embd);
  rk_get_rows (w->output.type, w->output.data, w->output.row_stride, d, all_ids,
               spec->n_vocab, out);
  for (i = 0; i < n; i++)
    {
      for (c = 0; c < d; c++)
        e[c] = embd[tokens[i] * d + c];
      rmsnorm_d (h + i * d, e, NULL, d, 1e-6);
    }
  for (i = 0; i < n; i++)
    {
      for (c = 0; c < d; c++)
        x[c] = embd[tokens[i] * d + c];
      if (mean_v)
        for (c = 0; c < spec->n_head * hd; c++)
          {
            /* Query head c / hd reads KV head (c / hd) / group, whose V is
             * h[kvh * hd .. + hd). */
            gint64 kvh = (c / hd) / (spec->n_head / spec->n_head_kv);
            double s = 0.0;

            for (j = 0; j <= i; j++)
              s += h[j * d + kvh * hd + c % hd];
            x[c] += s / (i + 1);
          }
      rmsnorm_d (y, x, onorm, d, 1e-6);
      for (t = 0; t < spec->n_vocab; t++)
        {
          double s = 0.0;

          for (c = 0; c < d; c++)
            s += out[t * d + c] * y[c];
          logits[i * spec->n_vocab + t] = s;
        }
    }
}

static void
check_simple (const RuvTestModelSpec *spec,
              gboolean                mean_v)
{
  static const gint32 tokens[] = { 3, 1, 4, 1, 5, 2, 6, 0, 7, 7 };
  const gint64 n = G_N_ELEMENTS (tokens);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = ruv_test_model_build (spec, fill_simple, GINT_TO_POINTER (mean_v));
  g_autoptr(RuvModel) model = model_from_bytes (bytes, &error);
  g_autoptr(RuvContext) ctx = NULL;
  g_autofree double *want = g_new (double, n * spec->n_vocab);
  g_autofree float *all = g_new (float, n * spec->n_vocab);
  g_autofree float *last = g_new (float, spec->n_vocab);
  RuvContextParams params;
  gint64 i;

  g_assert_no_error (error);
  expected_simple (model, spec, mean_v, tokens, n, want);

  ruv_context_params_init (&params);
  params.n_ctx = 16;
  params.n_batch = 4;   /* the 10 tokens take three steps */
  params.n_threads = 2;
  ctx = ruv_context_new (model, &params, &error);
  g_assert_no_error (error);

  /* Batched, all positions. */
  g_assert_true (ruv_context_decode (ctx, tokens, n, 0, all, TRUE, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ruv_context_get_n_past (ctx), ==, n);
  for (i = 0; i < n * spec->n_vocab; i++)
    {
      if (fabs (all[i] - want[i]) > 2e-3 * (1.0 + fabs (want[i])))
        g_test_message ("position %" G_GINT64_FORMAT " token %" G_GINT64_FORMAT ": %g, want %g",
                        i / spec->n_vocab, i % spec->n_vocab, all[i], want[i]);
      g_assert_cmpfloat_with_epsilon (all[i], want[i], 2e-3 * (1.0 + fabs (want[i])));
    }

  /* Token by token after a 3-token prefill: the KV cache path. */
  g_assert_true (ruv_context_decode (ctx, tokens, 3, 0, last, FALSE, &error));
  for (i = 3; i < n; i++)
    {
      gint64 t;

      g_assert_true (ruv_context_decode (ctx, tokens + i, 1, i, last, FALSE, &error));
      g_assert_no_error (error);
      for (t = 0; t < spec->n_vocab; t++)
        g_assert_cmpfloat_with_epsilon (last[t], want[i * spec->n_vocab + t],
                                        2e-3 * (1.0 + fabs (want[i * spec->n_vocab + t])));
    }
}

static void
test_zero_layers (void)
{
  RuvTestModelSpec spec;

  ruv_test_model_spec_init (&spec);
  check_simple (&spec, FALSE);

  /* qwen2, tied, with biases; qwen3 with q/k norms and head_dim != d/heads. */
  spec.arch = "qwen2";
  spec.tied = TRUE;
  spec.qkv_bias = TRUE;
  check_simple (&spec, FALSE);
  ruv_test_model_spec_init (&spec);
  spec.arch = "qwen3";
  spec.qk_norm = TRUE;
  spec.head_dim = 32;
  check_simple (&spec, FALSE);
}

static void
test_mean_v (void)
{
  RuvTestModelSpec spec;

  ruv_test_model_spec_init (&spec);
  check_simple (&spec, TRUE);
  spec.n_head_kv = 2;   /* plain multi-head: head 1 averages h[16..32) */
  check_simple (&spec, TRUE);
  /* Q8_0 matrices: identity and zero weights quantize exactly, embedding and
   * output are read back dequantized, so only the Q8_0 rounding of the
   * activations (~0.4 % of a block's largest value) remains. */
  ruv_test_model_spec_init (&spec);
  spec.matrix_type = RK_TYPE_Q8_0;
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = ruv_test_model_build (&spec, fill_simple, GINT_TO_POINTER (TRUE));
    g_autoptr(RuvModel) model = model_from_bytes (bytes, &error);
    g_autoptr(RuvContext) ctx = NULL;
    static const gint32 tokens[] = { 3, 1, 4, 1, 5 };
    double want[5 * 8];
    float got[5 * 8];
    int i;

    g_assert_no_error (error);
    g_assert_cmpstr (ruv_model_get_quantization (model), ==, "Q8_0");
    g_assert_cmpint (ruv_model_get_precision (model), ==, RUV_PRECISION_Q8);
    ctx = ruv_context_new (model, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (ruv_context_decode (ctx, tokens, 5, 0, got, TRUE, &error));
    expected_simple (model, &spec, TRUE, tokens, 5, want);
    /* Three quantized products in a row (V, attention output, logits), each
     * activation off by up to 0.4 % of its block's maximum (~3 here), summed
     * over 32 terms: measured up to 0.12; a wrong mask or head mapping moves
     * logits by several units. */
    for (i = 0; i < 5 * 8; i++)
      g_assert_cmpfloat_with_epsilon (got[i], want[i], 0.3);
  }
}

/* ---- llama.cpp's logits -------------------------------------------------- */

typedef struct
{
  gint32 *tokens;
  gint64  n;
  JsonArray *top5;
} Expected;

static float *
run_all_logits (RuvModel     *model,
                const gint32 *tokens,
                gint64        n,
                int           n_threads,
                gboolean      f32_kv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  RuvContextParams params;
  float *logits = g_new (float, n * ruv_model_get_vocab_size (model));

  ruv_context_params_init (&params);
  params.n_ctx = n;
  params.n_threads = n_threads;
  /* f32_kv: the simple f32 cache, so that only the kernels differ (the
   * default FP16 tail would round a key differing by 1e-7 to another half) */
  if (f32_kv)
    params.kv_cache.store_precision = RUV_PRECISION_FP32;
  ctx = ruv_context_new (model, &params, &error);
  g_assert_no_error (error);
  g_assert_true (ruv_context_decode (ctx, tokens, n, 0, logits, TRUE, &error));
  g_assert_no_error (error);
  return logits;
}

static void
test_llamacpp (void)
{
  g_autofree char *path = ruv_test_data_path ("model-expected.json");
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonArray *models;
  guint m;

  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  models = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)),
                                         "models");
  g_assert_cmpuint (json_array_get_length (models), ==, 3);
  for (m = 0; m < json_array_get_length (models); m++)
    {
      JsonObject *o = json_array_get_object_element (models, m);
      const char *file = json_object_get_string_member (o, "file");
      JsonArray *toks = json_object_get_array_member (o, "tokens");
      JsonArray *top5 = json_object_get_array_member (o, "top5");
      g_autofree char *model_path = ruv_test_data_path (file);
      g_autoptr(RuvModel) model = ruv_model_new_from_file (model_path, &error);
      g_autofree gint32 *tokens = NULL;
      g_autofree float *logits = NULL;
      g_autofree float *step = NULL;
      g_autoptr(RuvContext) ctx = NULL;
      double tol = strstr (file, "q8_0") != NULL ? TOL_Q8_0 : TOL_F32;
      gint64 n = json_array_get_length (toks), n_vocab, i;
      double max_diff = 0.0;

      g_assert_no_error (error);
      n_vocab = ruv_model_get_vocab_size (model);
      tokens = g_new (gint32, n);
      for (i = 0; i < n; i++)
        tokens[i] = (gint32) json_array_get_int_element (toks, i);
      g_assert_cmpuint (json_array_get_length (top5), ==, n);

      logits = run_all_logits (model, tokens, n, 2, FALSE);
      for (i = 0; i < n; i++)
        {
          JsonArray *top = json_array_get_array_element (top5, i);
          const float *row = logits + i * n_vocab;
          gint32 ref_top1 = json_array_get_int_element (json_array_get_array_element (top, 0), 0);
          double margin = json_array_get_double_element (json_array_get_array_element (top, 0), 1) -
                          json_array_get_double_element (json_array_get_array_element (top, 1), 1);
          guint k;

          for (k = 0; k < json_array_get_length (top); k++)
            {
              JsonArray *pair = json_array_get_array_element (top, k);
              gint64 id = json_array_get_int_element (pair, 0);
              double ref = json_array_get_double_element (pair, 1);

              g_assert_cmpint (id, >=, 0);
              g_assert_cmpint (id, <, n_vocab);
              max_diff = MAX (max_diff, fabs (row[id] - ref));
              if (fabs (row[id] - ref) > tol)
                g_error ("%s pos %" G_GINT64_FORMAT " id %" G_GINT64_FORMAT ": logit %.4f, "
                         "llama.cpp %.4f", file, i, id, row[id], ref);
            }
          if (margin >= tol && rk_argmax (row, (int) n_vocab) != ref_top1)
            g_error ("%s pos %" G_GINT64_FORMAT ": argmax %d, llama.cpp %d (margin %.3f)", file,
                     i, rk_argmax (row, (int) n_vocab), ref_top1, margin);
        }
      g_test_message ("%s: max |logit - llama.cpp| over its top-5: %.4f", file, max_diff);

      /* The same positions by prefill of half and single-token decode. */
      ctx = ruv_context_new (model, NULL, &error);
      g_assert_no_error (error);
      step = g_new (float, n_vocab);
      g_assert_true (ruv_context_decode (ctx, tokens, n / 2, 0, step, FALSE, &error));
      for (i = n / 2; i < n; i++)
        {
          gint64 t;

          g_assert_true (ruv_context_decode (ctx, tokens + i, 1, i, step, FALSE, &error));
          g_assert_no_error (error);
          for (t = 0; t < n_vocab; t++)
            g_assert_cmpfloat_with_epsilon (step[t], logits[i * n_vocab + t], 1e-2);
        }
    }
}

/* RUV_KERNELS=ref is read once per process, so the reference run is a
 * subprocess writing its logits to a file. */
static const char *const ref_models[] = { "tiny-qwen3-f32.gguf", "tiny-llama3-q8_0.gguf" };
static const gint32 ref_tokens[] = { 11, 250, 37, 400, 5, 99, 301, 12, 7, 64, 128, 3 };

static void
test_ref_kernels_child (void)
{
  const char *out = g_getenv ("RUV_TEST_LOGITS_OUT");
  guint m;
  FILE *f;

  g_assert_nonnull (out);
  g_assert_cmpint (rk_cpu_isa (), ==, RK_ISA_REF);
  f = fopen (out, "wb");
  g_assert_nonnull (f);
  for (m = 0; m < G_N_ELEMENTS (ref_models); m++)
    {
      g_autofree char *path = ruv_test_data_path (ref_models[m]);
      g_autoptr(GError) error = NULL;
      g_autoptr(RuvModel) model = ruv_model_new_from_file (path, &error);
      g_autofree float *logits = NULL;
      gint64 n = G_N_ELEMENTS (ref_tokens);

      g_assert_no_error (error);
      logits = run_all_logits (model, ref_tokens, n, 1, TRUE);
      g_assert_cmpuint (fwrite (logits, sizeof (float), n * ruv_model_get_vocab_size (model), f),
                        ==, n * ruv_model_get_vocab_size (model));
    }
  g_assert_cmpint (fclose (f), ==, 0);
}

static void
test_ref_kernels (void)
{
  g_autofree char *tmp = g_build_filename (g_get_tmp_dir (), "ruv-test-model-XXXXXX", NULL);
  g_autofree char *out = NULL;
  g_autofree char *ref = NULL;
  g_autoptr(GError) error = NULL;
  gsize ref_len, off = 0;
  guint m;

  if (g_mkdtemp (tmp) == NULL)
    g_error ("mkdtemp failed");
  out = g_build_filename (tmp, "ref.f32", NULL);
  g_setenv ("RUV_KERNELS", "ref", TRUE);
  g_setenv ("RUV_TEST_LOGITS_OUT", out, TRUE);
  g_test_trap_subprocess ("/engine/model/ref-kernels/subprocess", 0,
                          G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_unsetenv ("RUV_KERNELS");
  g_unsetenv ("RUV_TEST_LOGITS_OUT");
  g_test_trap_assert_passed ();
  g_assert_true (g_file_get_contents (out, &ref, &ref_len, &error));
  g_assert_no_error (error);
  g_unlink (out);
  g_rmdir (tmp);

  for (m = 0; m < G_N_ELEMENTS (ref_models); m++)
    {
      g_autofree char *path = ruv_test_data_path (ref_models[m]);
      g_autoptr(RuvModel) model = ruv_model_new_from_file (path, &error);
      g_autofree float *logits = NULL;
      gint64 n = G_N_ELEMENTS (ref_tokens), n_vocab, i;
      /* The same sums in another order (measured 1.5e-5 F32, 4e-6 Q8_0:
       * the SIMD quantizer writes the same bytes as the reference). Q8_0
       * gets more room since one activation rounding the other way would
       * move a logit by ~1e-2. */
      double tol = strstr (ref_models[m], "q8_0") != NULL ? 5e-2 : 1e-3;
      double max_diff = 0.0;

      g_assert_no_error (error);
      n_vocab = ruv_model_get_vocab_size (model);
      logits = run_all_logits (model, ref_tokens, n, 2, TRUE);
      g_assert_cmpuint (ref_len, >=, off + n * n_vocab * sizeof (float));
      for (i = 0; i < n * n_vocab; i++)
        {
          float r;

          memcpy (&r, ref + off + i * sizeof (float), sizeof r);
          max_diff = MAX (max_diff, fabs (r - logits[i]));
        }
      off += n * n_vocab * sizeof (float);
      g_test_message ("%s: max |dispatched (%s) - ref| = %.2e", ref_models[m],
                      rk_isa_name (rk_cpu_isa ()), max_diff);
      g_assert_cmpfloat (max_diff, <=, tol);
    }
  g_assert_cmpuint (off, ==, ref_len);
}

/* ---- info ---------------------------------------------------------------- */

static void
test_info (void)
{
  g_autofree char *path = ruv_test_data_path ("tiny-qwen2-f32.gguf");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvModel) model = ruv_model_new_from_file (path, &error);
  g_autoptr(RuvContext) ctx = NULL;
  const RuvHParams *hp;
  RuvMemoryStats stats;
  guint64 expect_params;

  g_assert_no_error (error);
  hp = &ruv_model_get_weights (model)->hp;
  g_assert_cmpstr (ruv_model_get_architecture (model), ==, "qwen2");
  g_assert_cmpint (hp->n_embd, ==, 64);
  g_assert_cmpint (hp->n_layer, ==, 2);
  g_assert_cmpint (hp->n_head, ==, 4);
  g_assert_cmpint (hp->n_head_kv, ==, 2);
  g_assert_cmpint (hp->head_dim, ==, 16);
  g_assert_cmpint (hp->n_ff, ==, 176);
  g_assert_true (hp->rope_neox);
  g_assert_cmpint (ruv_model_get_vocab_size (model), ==, 512);
  g_assert_cmpint (ruv_model_get_context_length (model), ==, 2048);
  /* embd + output + output_norm + per layer (2 norms, q, k, v, o, 3 biases,
   * gate, up, down). */
  expect_params = 2 * 512 * 64 + 64 +
                  2 * (2 * 64 + 64 * 64 + 2 * 64 * 32 + 64 * 64 + 64 + 2 * 32 + 3 * 64 * 176);
  g_assert_cmpuint (ruv_model_get_n_params (model), ==, expect_params);
  g_assert_cmpint (ruv_model_get_size_class (model), ==, RUV_MODEL_SIZE_TINY);
  g_assert_cmpstr (ruv_model_get_quantization (model), ==, "F32");
  g_assert_cmpint (ruv_model_get_precision (model), ==, RUV_PRECISION_FP32);
  g_assert_nonnull (ruv_model_get_chat_template (model));
  g_assert_cmpuint (ruv_model_get_file_size (model), ==, ruv_model_get_mapped_bytes (model));
  g_assert_cmpuint (ruv_model_get_file_size (model), >, expect_params * 4);
  g_assert_cmpuint (ruv_model_get_type_bytes (model)[RK_TYPE_F32], ==, expect_params * 4);

  ctx = ruv_context_new (model, NULL, &error);
  g_assert_no_error (error);
  ruv_context_get_memory_stats (ctx, &stats);
  g_assert_cmpuint (stats.mapped_bytes, ==, ruv_model_get_file_size (model));
  /* the two-tier cache takes blocks as tokens come: none yet, then one
   * block of 64 tokens per layer: 2 layers x (K + V) x 64 x 32 halves */
  g_assert_cmpuint (stats.kv_bytes, ==, 0);
  g_assert_cmpuint (stats.scratch_bytes, >, 0);
  g_assert_cmpuint (stats.rss_bytes, >, 0);
  g_assert_cmpint (ruv_context_get_n_ctx (ctx), ==, 2048);
  {
    const gint32 toks[3] = { 1, 2, 3 };
    RuvKvCacheStats kst;

    g_assert_true (ruv_context_decode (ctx, toks, 3, 0, NULL, FALSE, &error));
    ruv_context_get_memory_stats (ctx, &stats);
    g_assert_cmpuint (stats.kv_bytes, ==, 2 * 2 * 64 * 32 * 2);
    ruv_context_get_kv_stats (ctx, &kst);
    g_assert_cmpint (kst.total_tokens, ==, 3);
    g_assert_cmpint (kst.tail_tokens, ==, 3);
    g_assert_cmpuint (kst.tail_bytes, ==, 3 * 2 * 2 * 32 * 2);
  }
  g_clear_pointer (&ctx, ruv_context_free);

  /* the simple f32 cache holds min (2048, 4096) tokens x 2 layers x (K + V)
   * x 32 floats from the start */
  {
    RuvContextParams params;

    ruv_context_params_init (&params);
    params.kv_cache.store_precision = RUV_PRECISION_FP32;
    ctx = ruv_context_new (model, &params, &error);
    g_assert_no_error (error);
    ruv_context_get_memory_stats (ctx, &stats);
    g_assert_cmpuint (stats.kv_bytes, ==, 2048 * 2 * 2 * 32 * 4);
  }
}

/* ---- errors -------------------------------------------------------------- */

static void
expect_model_error (const RuvTestModelSpec *spec,
                    const char             *needle)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = ruv_test_model_build (spec, NULL, NULL);
  g_autoptr(RuvModel) model = model_from_bytes (bytes, &error);

  g_assert_null (model);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  if (strstr (error->message, needle) == NULL)
    g_error ("error \"%s\" does not name \"%s\"", error->message, needle);
  g_assert_nonnull (strstr (error->message, "test.gguf"));
}

static void
test_errors (void)
{
  RuvTestModelSpec spec;

  ruv_test_model_spec_init (&spec);
  spec.arch = "gpt2";
  expect_model_error (&spec, "gpt2");

  ruv_test_model_spec_init (&spec);
  spec.omit_tensor = "blk.0.ffn_up.weight";
  expect_model_error (&spec, "blk.0.ffn_up.weight");

  ruv_test_model_spec_init (&spec);
  spec.omit_tensor = "token_embd.weight";
  expect_model_error (&spec, "token_embd.weight");

  ruv_test_model_spec_init (&spec);
  spec.arch = "qwen3";
  spec.qk_norm = TRUE;
  spec.omit_tensor = "blk.0.attn_k_norm.weight";
  expect_model_error (&spec, "blk.0.attn_k_norm.weight");

  ruv_test_model_spec_init (&spec);
  spec.grow_tensor = "blk.0.attn_q.weight";
  expect_model_error (&spec, "blk.0.attn_q.weight");

  ruv_test_model_spec_init (&spec);
  spec.grow_tensor = "output.weight";
  expect_model_error (&spec, "output.weight");

  ruv_test_model_spec_init (&spec);
  spec.retype_tensor = "blk.0.ffn_down.weight";
  spec.n_ff = 256;   /* a whole q2_K block per row */
  spec.retype = RK_TYPE_Q2_K;
  expect_model_error (&spec, "q2_K");
  expect_model_error (&spec, "blk.0.ffn_down.weight");

  ruv_test_model_spec_init (&spec);
  spec.vocab_delta = 3;
  expect_model_error (&spec, "tokenizer.ggml.tokens");

  ruv_test_model_spec_init (&spec);
  spec.n_head_kv = 3;   /* 2 heads are not a multiple of 3 kv heads */
  expect_model_error (&spec, "head_count");

  /* A file that is not GGUF at all. */
  {
    g_autoptr(GError) error = NULL;
    static const guint8 junk[64] = "not a gguf file";
    g_autoptr(RuvModel) model = ruv_model_new_from_data (junk, sizeof junk, "junk", &error);

    g_assert_null (model);
    g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(RuvModel) model = ruv_model_new_from_file ("/nonexistent/model.gguf", &error);

    g_assert_null (model);
    g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  }
}

static void
test_context_errors (void)
{
  RuvTestModelSpec spec;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(RuvModel) model = NULL;
  g_autoptr(RuvContext) ctx = NULL;
  RuvContextParams params;
  gint32 tokens[10] = { 1, 2, 3, 4, 5, 6, 7, 0, 1, 2 };
  float logits[8];

  ruv_test_model_spec_init (&spec);
  bytes = ruv_test_model_build (&spec, fill_simple, GINT_TO_POINTER (TRUE));
  model = model_from_bytes (bytes, &error);
  g_assert_no_error (error);

  ruv_context_params_init (&params);
  params.n_ctx = 1000;   /* more than the model's 64 */
  g_assert_null (ruv_context_new (model, &params, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);

  params.n_ctx = 8;
  ctx = ruv_context_new (model, &params, &error);
  g_assert_no_error (error);

  /* Past the context. */
  g_assert_false (ruv_context_decode (ctx, tokens, 9, 0, logits, FALSE, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  /* A gap after the cached tokens. */
  g_assert_false (ruv_context_decode (ctx, tokens, 1, 3, logits, FALSE, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  /* A token outside the vocabulary. */
  tokens[2] = 8;
  g_assert_false (ruv_context_decode (ctx, tokens, 3, 0, logits, FALSE, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "8"));
  g_clear_error (&error);
  tokens[2] = 3;
  g_assert_false (ruv_context_decode (ctx, tokens, 0, 0, logits, FALSE, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);

  /* Fill to the end, truncate, re-decode, clear. */
  g_assert_true (ruv_context_decode (ctx, tokens, 8, 0, logits, FALSE, &error));
  g_assert_cmpint (ruv_context_get_n_past (ctx), ==, 8);
  g_assert_false (ruv_context_decode (ctx, tokens, 1, 8, logits, FALSE, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  ruv_context_kv_truncate (ctx, 5);
  g_assert_cmpint (ruv_context_get_n_past (ctx), ==, 5);
  g_assert_true (ruv_context_decode (ctx, tokens + 5, 3, 5, logits, FALSE, &error));
  g_assert_no_error (error);
  ruv_context_kv_clear (ctx);
  g_assert_cmpint (ruv_context_get_n_past (ctx), ==, 0);
  /* Decoding at an earlier position cuts the cache there. */
  g_assert_true (ruv_context_decode (ctx, tokens, 4, 0, NULL, FALSE, &error));
  g_assert_true (ruv_context_decode (ctx, tokens, 2, 1, logits, FALSE, &error));
  g_assert_cmpint (ruv_context_get_n_past (ctx), ==, 3);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/engine/model/types", test_types);
  g_test_add_func ("/engine/model/zero-layers", test_zero_layers);
  g_test_add_func ("/engine/model/mean-v", test_mean_v);
  g_test_add_func ("/engine/model/llamacpp", test_llamacpp);
  g_test_add_func ("/engine/model/ref-kernels", test_ref_kernels);
  g_test_add_func ("/engine/model/ref-kernels/subprocess", test_ref_kernels_child);
  g_test_add_func ("/engine/model/info", test_info);
  g_test_add_func ("/engine/model/errors", test_errors);
  g_test_add_func ("/engine/model/context-errors", test_context_errors);
  return g_test_run ();
}
