/* test-attention.c — flash, GQA/MQA and paged attention against a naive
 * double-precision reference, for every ISA variant.
 * SPDX-License-Identifier: MIT
 *
 * The reference builds the whole row of scores in double, takes the softmax
 * and the weighted sum of values: the textbook definition, with no tiles and
 * no online rescaling, so it shares no code or shortcut with the kernels.
 * The KV cache's group step (rk_kv_group_step: a decode's GQA group of query
 * rows folded over runs of keys) is checked against the same definition, and
 * its Q4 integer scores against a double-precision dot of the dequantized
 * keys and queries.
 * Padding that a kernel must not read (kv_stride gaps, unused pool blocks,
 * the rest of a last block) is filled with NaN, so reading it fails the test.
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "rk-attention.h"
#include "rk-cpu.h"
#include "rk-kvquant.h"
#include "rk-pool.h"

/* Outputs are convex combinations of values in [-1, 1]. With scores of
 * order 1, float accumulation against double stays below 1e-6. Scores of
 * order 100 (the sharp cases) carry float rounding of ~1e-5 in the score
 * itself, which becomes a relative error of the weights: there the bound is
 * looser, for the reference kernel as much as for the SIMD ones. */
#define TOL       5e-6
#define TOL_SHARP 1e-4

static rk_pool *pool2;

typedef void (*flash_fn) (const float *q, int n_q, int64_t q_pos0,
                          const float *k, const float *v, int64_t kv_len, int64_t kv_stride,
                          int head_dim, float scale, bool causal, float *out);
typedef void (*gqa_fn) (rk_pool *pool, const rk_attention_config *cfg,
                        const float *q, int n_q, int64_t q_pos0,
                        const float *k, const float *v, int64_t kv_len, int64_t kv_stride,
                        float *out);
typedef void (*paged_fn) (rk_pool *pool, const rk_attention_config *cfg,
                          const float *q, int n_q, int64_t q_pos0,
                          const rk_paged_kv *kv, float *out);

static flash_fn
flash_for (rk_isa isa)
{
  switch (isa)
    {
    case RK_ISA_AVX2:
#if defined(RK_HAVE_AVX2)
      return rk_flash_attention_avx2;
#else
      return NULL;
#endif
    case RK_ISA_NEON:
#if defined(RK_HAVE_NEON)
      return rk_flash_attention_neon;
#else
      return NULL;
#endif
    case RK_ISA_REF:
    default:
      return rk_flash_attention_ref;
    }
}

static gqa_fn
gqa_for (rk_isa isa)
{
  switch (isa)
    {
    case RK_ISA_AVX2:
#if defined(RK_HAVE_AVX2)
      return rk_grouped_query_attention_avx2;
#else
      return NULL;
#endif
    case RK_ISA_NEON:
#if defined(RK_HAVE_NEON)
      return rk_grouped_query_attention_neon;
#else
      return NULL;
#endif
    case RK_ISA_REF:
    default:
      return rk_grouped_query_attention_ref;
    }
}

static paged_fn
paged_for (rk_isa isa)
{
  switch (isa)
    {
    case RK_ISA_AVX2:
#if defined(RK_HAVE_AVX2)
      return rk_paged_attention_avx2;
#else
      return NULL;
#endif
    case RK_ISA_NEON:
#if defined(RK_HAVE_NEON)
      return rk_paged_attention_neon;
#else
      return NULL;
#endif
    case RK_ISA_REF:
    default:
      return rk_paged_attention_ref;
    }
}

/* Skips the test when this CPU or build lacks the ISA. */
static gboolean
isa_usable (rk_isa isa)
{
  if (rk_cpu_has_isa (isa))
    return TRUE;
  g_test_skip ("ISA not available on this CPU or build");
  return FALSE;
}

static float *
random_floats (GRand *rand, gsize n, double lo, double hi)
{
  float *x = g_new (float, n > 0 ? n : 1);
  gsize i;

  for (i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rand, lo, hi);
  return x;
}

static float *
nan_floats (gsize n)
{
  float *x = g_new (float, n > 0 ? n : 1);
  gsize i;

  for (i = 0; i < n; i++)
    x[i] = NAN;
  return x;
}

/* K/V of kv_len tokens, n_kv heads, rows kv_stride floats apart, NaN in the
 * gaps between rows. */
static float *
random_kv (GRand *rand, int64_t kv_len, int n_kv, int head_dim, int64_t kv_stride)
{
  float *x = nan_floats ((gsize) (kv_len * kv_stride));
  int64_t t, i;

  for (t = 0; t < kv_len; t++)
    for (i = 0; i < (int64_t) n_kv * head_dim; i++)
      x[t * kv_stride + i] = (float) g_rand_double_range (rand, -1.0, 1.0);
  return x;
}

/* The definition: one query row against the first n keys. */
static void
naive_row (const float *q, const float *k, const float *v, int64_t n, int64_t stride,
           int head_dim, double scale, double *out)
{
  double *s = g_new (double, n > 0 ? n : 1);
  double max = -INFINITY, sum = 0.0;
  int64_t j;
  int d;

  for (d = 0; d < head_dim; d++)
    out[d] = 0.0;
  for (j = 0; j < n; j++)
    {
      double dot = 0.0;

      for (d = 0; d < head_dim; d++)
        dot += (double) q[d] * (double) k[j * stride + d];
      s[j] = dot * scale;
      max = MAX (max, s[j]);
    }
  for (j = 0; j < n; j++)
    {
      s[j] = exp (s[j] - max);
      sum += s[j];
    }
  for (j = 0; j < n; j++)
    for (d = 0; d < head_dim; d++)
      out[d] += s[j] / sum * (double) v[j * stride + d];
  g_free (s);
}

/* All heads: out (n_q, n_heads, head_dim) in double. */
static double *
naive_attention (const rk_attention_config *cfg, double scale,
                 const float *q, int n_q, int64_t q_pos0,
                 const float *k, const float *v, int64_t kv_len, int64_t kv_stride)
{
  int hd = cfg->head_dim;
  int ratio = cfg->num_heads / cfg->num_kv_heads;
  double *out = g_new (double, (gsize) n_q * cfg->num_heads * hd);
  int t, h;

  for (t = 0; t < n_q; t++)
    for (h = 0; h < cfg->num_heads; h++)
      {
        int64_t n = kv_len;
        int64_t off = (int64_t) (h / ratio) * hd;

        if (cfg->causal)
          n = CLAMP (q_pos0 + t + 1, 0, kv_len);
        naive_row (q + ((gsize) t * cfg->num_heads + h) * hd, k + off, v + off, n, kv_stride,
                   hd, scale, out + ((gsize) t * cfg->num_heads + h) * hd);
      }
  return out;
}

static void
assert_close (const float *got, const double *want, gsize n, double tol)
{
  gsize i;

  for (i = 0; i < n; i++)
    if (!(fabs ((double) got[i] - want[i]) <= tol))
      g_error ("element %" G_GSIZE_FORMAT ": got %.9g, want %.9g (tol %g)",
               i, (double) got[i], want[i], tol);
}

static void
assert_zero (const float *got, gsize n)
{
  gsize i;

  for (i = 0; i < n; i++)
    g_assert_cmpfloat (got[i], ==, 0.0f);
}

/* One flash call against the reference. Output starts as NaN, so every
 * element must be written. */
static void
check_flash (rk_isa isa, GRand *rand, int n_q, int64_t q_pos0, int64_t kv_len,
             int64_t pad, int head_dim, float scale, bool causal, double q_amp,
             double tol)
{
  rk_attention_config cfg = { 1, 1, head_dim, causal, scale };
  int64_t kv_stride = head_dim + pad;
  g_autofree float *q = random_floats (rand, (gsize) n_q * head_dim, -q_amp, q_amp);
  g_autofree float *k = random_kv (rand, kv_len, 1, head_dim, kv_stride);
  g_autofree float *v = random_kv (rand, kv_len, 1, head_dim, kv_stride);
  g_autofree float *out = nan_floats ((gsize) n_q * head_dim);
  g_autofree double *want = NULL;

  want = naive_attention (&cfg, scale, q, n_q, q_pos0, k, v, kv_len, kv_stride);
  flash_for (isa) (q, n_q, q_pos0, k, v, kv_len, kv_stride, head_dim, scale, causal, out);
  assert_close (out, want, (gsize) n_q * head_dim, tol);
}

static const int head_dims[] = { 64, 80, 128, 36 };

static void
test_flash_causal_prefill (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  g_autoptr (GRand) rand = g_rand_new_with_seed (1);
  gsize i;

  if (!isa_usable (isa))
    return;
  for (i = 0; i < G_N_ELEMENTS (head_dims); i++)
    {
      float scale = 1.0f / sqrtf ((float) head_dims[i]);

      /* A prompt continued at an offset: queries 37..45 over the cache so far. */
      check_flash (isa, rand, 9, 37, 46, 0, head_dims[i], scale, true, 1.0, TOL);
      /* Keys beyond the last query (a cache filled ahead) must be masked. */
      check_flash (isa, rand, 7, 100, 200, 0, head_dims[i], scale, true, 1.0, TOL);
      /* A whole prompt from position 0, several tiles long. */
      check_flash (isa, rand, 150, 0, 150, 0, head_dims[i], scale, true, 1.0, TOL);
      /* One decode step. */
      check_flash (isa, rand, 1, 130, 131, 0, head_dims[i], scale, true, 1.0, TOL);
    }
}

static void
test_flash_non_causal (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  g_autoptr (GRand) rand = g_rand_new_with_seed (2);
  gsize i;

  if (!isa_usable (isa))
    return;
  for (i = 0; i < G_N_ELEMENTS (head_dims); i++)
    {
      float scale = 1.0f / sqrtf ((float) head_dims[i]);

      /* q_pos0 0 with causal off: every query sees all 150 keys. */
      check_flash (isa, rand, 5, 0, 150, 0, head_dims[i], scale, false, 1.0, TOL);
      check_flash (isa, rand, 3, 7, 33, 0, head_dims[i], scale, false, 1.0, TOL);
    }
}

static void
test_flash_kv_len (gconstpointer data)
{
  static const int64_t lens[] = { 1, 2, 31, 63, 64, 65, 127, 128, 129, 300 };
  rk_isa isa = GPOINTER_TO_INT (data);
  g_autoptr (GRand) rand = g_rand_new_with_seed (3);
  gsize i, j;

  if (!isa_usable (isa))
    return;
  for (i = 0; i < G_N_ELEMENTS (head_dims); i++)
    for (j = 0; j < G_N_ELEMENTS (lens); j++)
      {
        float scale = 1.0f / sqrtf ((float) head_dims[i]);

        check_flash (isa, rand, 2, lens[j] - 2, lens[j], 0, head_dims[i], scale, true, 1.0,
                     TOL);
        check_flash (isa, rand, 1, 0, lens[j], 0, head_dims[i], scale, false, 1.0, TOL);
      }
}

static void
test_flash_empty (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  float q[2 * 64], k[64], v[64];
  float out[2 * 64];
  int i;

  if (!isa_usable (isa))
    return;
  for (i = 0; i < 2 * 64; i++)
    q[i] = 1.0f;
  for (i = 0; i < 64; i++)
    k[i] = v[i] = 1.0f;

  /* kv_len 0: nothing to attend to, the output is zeros. */
  for (i = 0; i < 2 * 64; i++)
    out[i] = NAN;
  flash_for (isa) (q, 2, 0, k, v, 0, 64, 64, 0.125f, true, out);
  assert_zero (out, 2 * 64);
  for (i = 0; i < 2 * 64; i++)
    out[i] = NAN;
  flash_for (isa) (q, 2, 0, k, v, 0, 64, 64, 0.125f, false, out);
  assert_zero (out, 2 * 64);

  /* kv_len 1: the single value, whatever the score. */
  flash_for (isa) (q, 1, 0, k, v, 1, 64, 64, 0.125f, true, out);
  for (i = 0; i < 64; i++)
    g_assert_cmpfloat_with_epsilon (out[i], 1.0f, 1e-6);
}

static void
test_flash_kv_stride (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  g_autoptr (GRand) rand = g_rand_new_with_seed (4);
  gsize i;

  if (!isa_usable (isa))
    return;
  for (i = 0; i < G_N_ELEMENTS (head_dims); i++)
    {
      float scale = 1.0f / sqrtf ((float) head_dims[i]);

      /* NaN padding after each row: a kernel that reads it fails. */
      check_flash (isa, rand, 4, 90, 94, 13, head_dims[i], scale, true, 1.0, TOL);
      check_flash (isa, rand, 2, 0, 77, head_dims[i], head_dims[i], scale, false, 1.0, TOL);
    }
}

/* Large, spread scores: weights far below the max (the vector exp's low end)
 * and a max that grows tile after tile (every tile rescales the state). */
static void
test_flash_sharp (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  g_autoptr (GRand) rand = g_rand_new_with_seed (5);
  const int hd = 64, n = 200;
  g_autofree float *q = g_new (float, hd);
  g_autofree float *k = g_new (float, (gsize) n * hd);
  g_autofree float *v = random_floats (rand, (gsize) n * hd, -1.0, 1.0);
  g_autofree float *out = g_new (float, hd);
  rk_attention_config cfg = { 1, 1, hd, false, 1.0f };
  g_autofree double *want = NULL;
  int j, d;

  if (!isa_usable (isa))
    return;
  for (d = 0; d < hd; d++)
    q[d] = 1.0f;
  /* Score of key j is about 0.5 j plus noise: 0 .. 100. */
  for (j = 0; j < n; j++)
    for (d = 0; d < hd; d++)
      k[j * hd + d] = (float) (0.5 * j / hd + g_rand_double_range (rand, -0.02, 0.02));

  want = naive_attention (&cfg, 1.0, q, 1, 0, k, v, n, hd);
  flash_for (isa) (q, 1, 0, k, v, n, hd, hd, 1.0f, false, out);
  assert_close (out, want, hd, TOL_SHARP);

  /* And random large scores, in both directions. */
  check_flash (isa, rand, 3, 0, 200, 0, hd, 1.0f, false, 4.0, TOL_SHARP);
  check_flash (isa, rand, 5, 100, 105, 0, 80, 0.5f, true, 6.0, TOL_SHARP);
}

/* GQA: 8 query heads over 8, 4, 2, 1 KV heads, padded kv_stride. */
static void
check_gqa (rk_isa isa, GRand *rand, int n_kv, int head_dim, bool causal,
           int n_q, int64_t q_pos0, int64_t kv_len, float scale)
{
  rk_attention_config cfg = { 8, n_kv, head_dim, causal, scale };
  int64_t kv_stride = (int64_t) n_kv * head_dim + 8;
  gsize n_out = (gsize) n_q * 8 * head_dim;
  g_autofree float *q = random_floats (rand, n_out, -1.0, 1.0);
  g_autofree float *k = random_kv (rand, kv_len, n_kv, head_dim, kv_stride);
  g_autofree float *v = random_kv (rand, kv_len, n_kv, head_dim, kv_stride);
  g_autofree float *out = nan_floats (n_out);
  g_autofree float *out2 = nan_floats (n_out);
  g_autofree double *want = NULL;

  want = naive_attention (&cfg, rk_attention_effective_scale (&cfg), q, n_q, q_pos0,
                          k, v, kv_len, kv_stride);
  gqa_for (isa) (NULL, &cfg, q, n_q, q_pos0, k, v, kv_len, kv_stride, out);
  assert_close (out, want, n_out, TOL);

  /* Two threads give the very same bits: items are independent. */
  gqa_for (isa) (pool2, &cfg, q, n_q, q_pos0, k, v, kv_len, kv_stride, out2);
  g_assert_cmpmem (out, n_out * sizeof (float), out2, n_out * sizeof (float));
}

static void
test_gqa_ratios (gconstpointer data)
{
  static const int kv_heads[] = { 8, 4, 2, 1 };
  rk_isa isa = GPOINTER_TO_INT (data);
  g_autoptr (GRand) rand = g_rand_new_with_seed (6);
  gsize i;

  if (!isa_usable (isa))
    return;
  for (i = 0; i < G_N_ELEMENTS (kv_heads); i++)
    {
      check_gqa (isa, rand, kv_heads[i], 64, true, 5, 20, 25, 0.0f);
      check_gqa (isa, rand, kv_heads[i], 80, true, 3, 67, 140, 0.0f);
      check_gqa (isa, rand, kv_heads[i], 128, false, 2, 0, 70, 0.0f);
      check_gqa (isa, rand, kv_heads[i], 64, true, 1, 0, 1, 0.0f);
    }
}

static void
test_gqa_scale (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  rk_attention_config cfg = { 8, 2, 64, true, 0.0f };
  rk_attention_config cfg_explicit = cfg;
  const int n_q = 4, kv_len = 50;
  gsize n_out = (gsize) n_q * 8 * 64;
  g_autofree float *q = random_floats (rand, n_out, -1.0, 1.0);
  g_autofree float *k = random_kv (rand, kv_len, 2, 64, 128);
  g_autofree float *v = random_kv (rand, kv_len, 2, 64, 128);
  g_autofree float *out = g_new (float, n_out);
  g_autofree float *out2 = g_new (float, n_out);

  if (!isa_usable (isa))
    return;
  /* scale 0 means 1/sqrt(head_dim), exactly. */
  cfg_explicit.scale = 1.0f / sqrtf (64.0f);
  gqa_for (isa) (NULL, &cfg, q, n_q, 46, k, v, kv_len, 128, out);
  gqa_for (isa) (NULL, &cfg_explicit, q, n_q, 46, k, v, kv_len, 128, out2);
  g_assert_cmpmem (out, n_out * sizeof (float), out2, n_out * sizeof (float));

  /* A custom scale is used as given. */
  check_gqa (isa, rand, 2, 64, true, 4, 46, 50, 0.05f);
  check_gqa (isa, rand, 4, 80, false, 2, 0, 90, 0.3f);
}

/* Paged KV equals contiguous KV: the sequence is cut into blocks that sit in
 * shuffled pool slots among NaN-filled unused slots. */
static void
check_paged (rk_isa isa, GRand *rand, int n_kv, int head_dim, int block_size,
             bool causal, int n_q, int64_t q_pos0, int64_t kv_len)
{
  rk_attention_config cfg = { 8, n_kv, head_dim, causal, 0.0f };
  int64_t row = (int64_t) n_kv * head_dim;
  int64_t n_blocks = (kv_len + block_size - 1) / block_size;
  int64_t pool_blocks = 2 * n_blocks + 3;
  int64_t block_stride = block_size * row + 5;
  gsize n_out = (gsize) n_q * 8 * head_dim;
  g_autofree float *q = random_floats (rand, n_out, -1.0, 1.0);
  g_autofree float *k = random_kv (rand, kv_len, n_kv, head_dim, row);
  g_autofree float *v = random_kv (rand, kv_len, n_kv, head_dim, row);
  g_autofree float *k_pool = nan_floats ((gsize) (pool_blocks * block_stride));
  g_autofree float *v_pool = nan_floats ((gsize) (pool_blocks * block_stride));
  g_autofree int32_t *slots = g_new (int32_t, pool_blocks);
  g_autofree int32_t *table = g_new (int32_t, n_blocks > 0 ? n_blocks : 1);
  g_autofree float *out = nan_floats (n_out);
  g_autofree float *out2 = nan_floats (n_out);
  g_autofree double *want = NULL;
  rk_paged_kv kv;
  int64_t i, t;

  /* A random permutation of the pool slots; the first n_blocks are used. */
  for (i = 0; i < pool_blocks; i++)
    slots[i] = (int32_t) i;
  for (i = pool_blocks - 1; i > 0; i--)
    {
      int32_t j = g_rand_int_range (rand, 0, (gint32) i + 1);
      int32_t tmp = slots[i];

      slots[i] = slots[j];
      slots[j] = tmp;
    }
  for (i = 0; i < n_blocks; i++)
    table[i] = slots[i];
  for (t = 0; t < kv_len; t++)
    {
      int64_t at = table[t / block_size] * block_stride + (t % block_size) * row;

      memcpy (k_pool + at, k + t * row, (gsize) row * sizeof (float));
      memcpy (v_pool + at, v + t * row, (gsize) row * sizeof (float));
    }

  kv.k_pool = k_pool;
  kv.v_pool = v_pool;
  kv.block_stride = block_stride;
  kv.block_size = block_size;
  kv.block_table = table;
  kv.n_blocks = n_blocks;
  kv.kv_len = kv_len;

  want = naive_attention (&cfg, rk_attention_effective_scale (&cfg), q, n_q, q_pos0,
                          k, v, kv_len, row);
  paged_for (isa) (NULL, &cfg, q, n_q, q_pos0, &kv, out);
  assert_close (out, want, n_out, TOL);

  /* The same as the contiguous kernel of the same ISA. */
  gqa_for (isa) (NULL, &cfg, q, n_q, q_pos0, k, v, kv_len, row, out2);
  {
    gsize e;

    for (e = 0; e < n_out; e++)
      g_assert_cmpfloat_with_epsilon (out[e], out2[e], TOL);
  }

  /* Two threads give the very same bits. */
  paged_for (isa) (pool2, &cfg, q, n_q, q_pos0, &kv, out2);
  g_assert_cmpmem (out, n_out * sizeof (float), out2, n_out * sizeof (float));
}

static void
test_paged_shuffled (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  g_autoptr (GRand) rand = g_rand_new_with_seed (8);

  if (!isa_usable (isa))
    return;
  /* kv_len 75 ends mid-block for blocks of 16. */
  check_paged (isa, rand, 4, 64, 16, true, 5, 70, 75);
  check_paged (isa, rand, 2, 80, 16, false, 2, 0, 75);
  check_paged (isa, rand, 1, 128, 32, true, 3, 97, 100);
  check_paged (isa, rand, 8, 64, 128, true, 4, 296, 300);
  check_paged (isa, rand, 4, 64, 16, true, 1, 0, 1);
  check_paged (isa, rand, 8, 36, 7, true, 6, 40, 46);
}

static void
test_paged_empty (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  rk_attention_config cfg = { 4, 2, 64, false, 0.0f };
  /* Pool of 4 blocks of 4 tokens, 2 KV heads of 64: 512 floats a block. */
  float q[4 * 64], out[4 * 64], pool[4 * 512];
  int32_t table[2] = { 3, 1 };
  rk_paged_kv kv = { pool, pool, 512, 4, table, 2, 0 };
  int i;

  if (!isa_usable (isa))
    return;
  for (i = 0; i < 4 * 64; i++)
    q[i] = 0.5f;
  for (i = 0; i < 4 * 512; i++)
    pool[i] = NAN;

  /* kv_len 0: zeros, and no block is read. */
  for (i = 0; i < 4 * 64; i++)
    out[i] = NAN;
  paged_for (isa) (NULL, &cfg, q, 1, 0, &kv, out);
  assert_zero (out, 4 * 64);

  /* kv_len 20 but the table covers 8 tokens: only those are read. */
  for (i = 0; i < 512; i++)
    pool[3 * 512 + i] = pool[1 * 512 + i] = 1.0f;
  kv.kv_len = 20;
  paged_for (isa) (NULL, &cfg, q, 1, 0, &kv, out);
  for (i = 0; i < 4 * 64; i++)
    g_assert_cmpfloat_with_epsilon (out[i], 1.0f, 1e-6);

  /* A negative entry ends the sequence: block 1 goes back to NaN unread. */
  for (i = 0; i < 512; i++)
    pool[1 * 512 + i] = NAN;
  table[1] = -1;
  paged_for (isa) (NULL, &cfg, q, 1, 0, &kv, out);
  for (i = 0; i < 4 * 64; i++)
    g_assert_cmpfloat_with_epsilon (out[i], 1.0f, 1e-6);
}

/* rk_multi_query_attention and the dispatched names. */
static void
test_mqa (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (9);
  rk_attention_config cfg = { 8, 1, 64, true, 0.0f };
  rk_attention_config cfg_other = { 8, 4, 64, true, 0.0f };
  const int n_q = 3, kv_len = 70;
  gsize n_out = (gsize) n_q * 8 * 64;
  g_autofree float *q = random_floats (rand, n_out, -1.0, 1.0);
  g_autofree float *k = random_kv (rand, kv_len, 1, 64, 64);
  g_autofree float *v = random_kv (rand, kv_len, 1, 64, 64);
  g_autofree float *out = nan_floats (n_out);
  g_autofree float *out2 = nan_floats (n_out);
  g_autofree double *want = NULL;

  want = naive_attention (&cfg, 0.125, q, n_q, 67, k, v, kv_len, 64);
  rk_multi_query_attention (NULL, &cfg, q, n_q, 67, k, v, kv_len, out);
  assert_close (out, want, n_out, TOL);

  /* MQA ignores num_kv_heads: it always has one KV head. */
  rk_multi_query_attention (pool2, &cfg_other, q, n_q, 67, k, v, kv_len, out2);
  g_assert_cmpmem (out, n_out * sizeof (float), out2, n_out * sizeof (float));

  /* Same as GQA with one KV head, through the dispatcher. */
  rk_grouped_query_attention (NULL, &cfg, q, n_q, 67, k, v, kv_len, 64, out2);
  g_assert_cmpmem (out, n_out * sizeof (float), out2, n_out * sizeof (float));
}

static void
test_dispatch (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (10);
  rk_isa isa = rk_cpu_isa ();
  rk_attention_config cfg = { 4, 2, 64, true, 0.0f };
  const int n_q = 3, kv_len = 40;
  gsize n_out = (gsize) n_q * 4 * 64;
  g_autofree float *q = random_floats (rand, n_out, -1.0, 1.0);
  g_autofree float *k = random_kv (rand, kv_len, 2, 64, 128);
  g_autofree float *v = random_kv (rand, kv_len, 2, 64, 128);
  g_autofree float *out = nan_floats (n_out);
  g_autofree float *out2 = nan_floats (n_out);
  int32_t table[5] = { 4, 2, 0, 1, 3 };
  rk_paged_kv kv = { k, v, 8 * 128, 8, table, 5, kv_len };

  g_test_message ("dispatching to %s", rk_isa_name (isa));
  /* The un-suffixed names run the chosen ISA's variant, bit for bit. */
  rk_flash_attention (q, n_q, 37, k, v, kv_len, 128, 64, 0.125f, true, out);
  flash_for (isa) (q, n_q, 37, k, v, kv_len, 128, 64, 0.125f, true, out2);
  g_assert_cmpmem (out, (gsize) n_q * 64 * sizeof (float), out2,
                   (gsize) n_q * 64 * sizeof (float));

  rk_grouped_query_attention (NULL, &cfg, q, n_q, 37, k, v, kv_len, 128, out);
  gqa_for (isa) (NULL, &cfg, q, n_q, 37, k, v, kv_len, 128, out2);
  g_assert_cmpmem (out, n_out * sizeof (float), out2, n_out * sizeof (float));

  /* k, v read as a pool of 5 blocks of 8 tokens (row 128 floats wide,
   * 2 heads of 64 each). */
  rk_paged_attention (NULL, &cfg, q, n_q, 37, &kv, out);
  paged_for (isa) (NULL, &cfg, q, n_q, 37, &kv, out2);
  g_assert_cmpmem (out, n_out * sizeof (float), out2, n_out * sizeof (float));
}

static void
test_config (void)
{
  rk_attention_config cfg = { 32, 8, 128, true, 0.0f };
  float q[2 * 4 * 8], k[8], v[8], out[2 * 4 * 8];
  rk_attention_config bad = { 4, 3, 8, false, 0.0f };
  int i;

  g_assert_cmpint (rk_attention_gqa_ratio (&cfg), ==, 4);
  g_assert_cmpfloat (rk_attention_effective_scale (&cfg), ==, 1.0f / sqrtf (128.0f));
  cfg.scale = 0.3f;
  g_assert_cmpfloat (rk_attention_effective_scale (&cfg), ==, 0.3f);
  cfg.num_kv_heads = 1;
  g_assert_cmpint (rk_attention_gqa_ratio (&cfg), ==, 32);
  cfg.num_kv_heads = 0;
  g_assert_cmpint (rk_attention_gqa_ratio (&cfg), ==, 0);

  /* 3 KV heads do not divide 4 heads: no attention, a zero output. */
  for (i = 0; i < 2 * 4 * 8; i++)
    {
      q[i] = 1.0f;
      out[i] = NAN;
    }
  for (i = 0; i < 8; i++)
    k[i] = v[i] = 1.0f;
  rk_grouped_query_attention (NULL, &bad, q, 2, 0, k, v, 1, 24, out);
  assert_zero (out, 2 * 4 * 8);
}

/* The group step of `isa` over runs of several lengths (1 .. 64 keys, so
 * the 4-key and 8-key loops and their tails all run) against naive_row:
 * rows query rows against the same keys. With scores_given, the scores are
 * computed here and the kernel only folds them (its k == NULL form). */
static void
check_group_step (rk_isa isa, GRand *rand, int rows, int n, gboolean scores_given)
{
  static const int runs[] = { 5, 1, 64, 3, 8, 13 };
  rk_kvq_kernels kk = rk_kvq_kernels_for_isa (isa);
  int total = 0, i, r, t, d, at;
  float scale = 1.0f / sqrtf ((float) n);
  g_autofree float *q = NULL, *k = NULL, *v = NULL, *acc = NULL, *m = NULL, *l = NULL;
  g_autofree float *s = NULL, *out = NULL;
  g_autofree double *want = g_new (double, (gsize) rows * n);

  for (i = 0; i < (int) G_N_ELEMENTS (runs); i++)
    total += runs[i];
  q = random_floats (rand, (gsize) rows * n, -2.0, 2.0);
  k = random_floats (rand, (gsize) total * n, -1.0, 1.0);
  v = random_floats (rand, (gsize) total * n, -1.0, 1.0);
  acc = g_new0 (float, (gsize) rows * n);
  m = g_new (float, rows);
  l = g_new0 (float, rows);
  s = g_new (float, (gsize) rows * 64);
  out = g_new (float, (gsize) rows * n);
  for (r = 0; r < rows; r++)
    m[r] = -INFINITY;
  for (i = 0, at = 0; i < (int) G_N_ELEMENTS (runs); at += runs[i], i++)
    {
      const float *kr = k + (gsize) at * n;

      if (scores_given)
        for (r = 0; r < rows; r++)
          for (t = 0; t < runs[i]; t++)
            {
              float dot = 0.0f;

              for (d = 0; d < n; d++)
                dot += q[(gsize) r * n + d] * kr[(gsize) t * n + d];
              s[(gsize) r * runs[i] + t] = scale * dot;
            }
      kk.group_step (rows, runs[i], n, q, scores_given ? NULL : kr, v + (gsize) at * n, scale,
                     m, l, acc, s);
    }
  for (r = 0; r < rows; r++)
    {
      naive_row (q + (gsize) r * n, k, v, total, n, n, scale, want + (gsize) r * n);
      for (d = 0; d < n; d++)
        out[(gsize) r * n + d] = acc[(gsize) r * n + d] / l[r];
    }
  assert_close (out, want, (gsize) rows * n, TOL);
}

static void
test_kv_group_step (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  g_autoptr(GRand) rand = g_rand_new_with_seed (41);
  static const int rows[] = { 1, 3, 7, 8, 9, 16 };
  gsize i, j;

  if (!isa_usable (isa))
    return;
  for (i = 0; i < G_N_ELEMENTS (rows); i++)
    for (j = 0; j < G_N_ELEMENTS (head_dims); j++)
      {
        check_group_step (isa, rand, rows[i], head_dims[j], FALSE);
        check_group_step (isa, rand, rows[i], head_dims[j], TRUE);
      }
}

/* Q4 integer scores: keys quantized into rows `stride_rows` rows apart (as
 * the cache interleaves KV heads), queries by rk_kvq_quantize_query; the
 * kernel must give scale * (qd q8) . dequant (k) to float rounding, and stay
 * within the quantization bound of the float score scale * q . k. */
static void
test_kvq4_group_scores (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  rk_kvq_kernels kk = rk_kvq_kernels_for_isa (isa);
  g_autoptr(GRand) rand = g_rand_new_with_seed (43);
  static const int dims[][2] = { { 64, 64 }, { 128, 64 }, { 64, 32 }, { 96, 32 } };
  const int stride_rows = 3, rows = 7, cnt = 67;
  gsize di;

  if (!isa_usable (isa))
    return;
  for (di = 0; di < G_N_ELEMENTS (dims); di++)
    {
      int n = dims[di][0], group = dims[di][1], ng = n / group, r, t, i;
      gsize cb = (gsize) n / 2;
      float scale = 0.125f;
      g_autofree float *q = random_floats (rand, (gsize) rows * n, -3.0, 3.0);
      g_autofree float *k = random_floats (rand, (gsize) cnt * n, -2.0, 2.5);
      g_autofree float *kd = g_new (float, (gsize) cnt * n);
      g_autofree uint8_t *codes = g_new0 (uint8_t, (gsize) cnt * stride_rows * cb);
      g_autofree rk_fp16 *dh = g_new0 (rk_fp16, (gsize) cnt * stride_rows * ng);
      g_autofree int8_t *zh = g_new0 (int8_t, (gsize) cnt * stride_rows * ng);
      g_autofree int8_t *q8 = g_new (int8_t, (gsize) rows * n);
      g_autofree float *qd = g_new (float, rows);
      g_autofree int32_t *qsum = g_new (int32_t, (gsize) rows * ng);
      g_autofree float *s = g_new (float, (gsize) rows * cnt);

      for (t = 0; t < cnt; t++)
        {
          gsize row = (gsize) t * stride_rows + 1;

          rk_kvq4_quantize (n, group, k + (gsize) t * n, codes + row * cb, dh + row * ng,
                            zh + row * ng);
          rk_kvq4_dequantize (n, group, codes + row * cb, dh + row * ng, zh + row * ng,
                              kd + (gsize) t * n);
        }
      rk_kvq_quantize_query (rows, n, group, q, q8, qd, qsum);
      for (r = 0; r < rows; r++)
        for (i = 0; i < ng; i++)
          {
            int32_t sum = 0, j;

            for (j = 0; j < group; j++)
              {
                /* the query codes are within half a step of q / qd */
                g_assert_cmpfloat (fabsf (q8[(gsize) r * n + i * group + j] * qd[r] -
                                          q[(gsize) r * n + i * group + j]),
                                   <=, qd[r] * 0.5001f);
                sum += q8[(gsize) r * n + i * group + j];
              }
            g_assert_cmpint (sum, ==, qsum[(gsize) r * ng + i]);
          }
      kk.q4_group_scores (rows, cnt, n, group, q8, qd, qsum, codes + cb,
                          (gsize) stride_rows * cb, dh + ng, zh + ng, (gsize) stride_rows * ng,
                          scale, s);
      for (r = 0; r < rows; r++)
        for (t = 0; t < cnt; t++)
          {
            double exact = 0.0, bound = 0.0, full = 0.0;

            for (i = 0; i < n; i++)
              {
                double qi = (double) q8[(gsize) r * n + i] * qd[r];
                double ki = kd[(gsize) t * n + i];

                exact += qi * ki;
                full += (double) q[(gsize) r * n + i] * k[(gsize) t * n + i];
                /* |q k - q' k'| <= |q| |k - k'| + |k'| |q - q'| */
                bound += fabs (q[(gsize) r * n + i]) *
                         rk_fp16_to_fp32 (dh[((gsize) t * stride_rows + 1) * ng + i / group]) /
                         2 + fabs (ki) * qd[r] / 2;
              }
            exact *= scale;
            g_assert_cmpfloat (fabs (s[(gsize) r * cnt + t] - exact), <=,
                               1e-5 * (1.0 + fabs (exact)));
            g_assert_cmpfloat (fabs (s[(gsize) r * cnt + t] - scale * full), <=,
                               scale * bound * 1.001 + 1e-5);
          }
    }
}

/* Q8 integer scores, as above: exact against the dequantized operands, and
 * within the quantization bound of the float score. */
static void
test_kvq8_group_scores (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  rk_kvq_kernels kk = rk_kvq_kernels_for_isa (isa);
  g_autoptr(GRand) rand = g_rand_new_with_seed (47);
  /* 528: a group past int32's reach (528 * 32767 * 127 > 2^31) */
  static const int dims[][2] = { { 64, 64 }, { 128, 64 }, { 64, 32 }, { 96, 32 }, { 48, 16 },
                                 { 40, 8 }, { 36, 12 }, { 528, 528 } };
  const int stride_rows = 2, rows = 5, cnt = 70;
  gsize di;

  if (!isa_usable (isa))
    return;
  for (di = 0; di < G_N_ELEMENTS (dims); di++)
    {
      int n = dims[di][0], group = dims[di][1], ng = n / group, r, t, i;
      float scale = 0.3f;
      g_autofree float *q = random_floats (rand, (gsize) rows * n, -3.0, 3.0);
      g_autofree float *k = random_floats (rand, (gsize) cnt * n, -2.0, 2.5);
      g_autofree float *kd = g_new (float, (gsize) cnt * n);
      g_autofree int8_t *codes = g_new0 (int8_t, (gsize) cnt * stride_rows * n);
      g_autofree rk_fp16 *dh = g_new0 (rk_fp16, (gsize) cnt * stride_rows * ng);
      g_autofree int16_t *q16 = g_new (int16_t, (gsize) rows * n);
      g_autofree float *qd = g_new (float, rows);
      g_autofree float *s = g_new (float, (gsize) rows * cnt);

      for (t = 0; t < cnt; t++)
        {
          gsize row = (gsize) t * stride_rows + 1;

          /* a few extreme keys: codes of +-127 against queries of +-127 */
          if (t % 17 == 0)
            for (i = 0; i < n; i++)
              k[(gsize) t * n + i] = i % 2 ? 2.5f : -2.5f;
          rk_kvq8_quantize (n, group, k + (gsize) t * n, codes + row * n, dh + row * ng);
          rk_kvq8_dequantize (n, group, codes + row * n, dh + row * ng, kd + (gsize) t * n);
        }
      /* row 0 extreme too: codes of +-127 against query values of +-32767 */
      for (i = 0; i < n; i++)
        q[i] = i % 2 ? 3.0f : -3.0f;
      rk_kvq_quantize_query16 (rows, n, q, q16, qd);
      kk.q8_group_scores (rows, cnt, n, group, q16, qd, codes + n, (gsize) stride_rows * n,
                          dh + ng, (gsize) stride_rows * ng, scale, s);
      for (r = 0; r < rows; r++)
        for (t = 0; t < cnt; t++)
          {
            double exact = 0.0, bound = 0.0, full = 0.0;

            for (i = 0; i < n; i++)
              {
                double qi = (double) q16[(gsize) r * n + i] * qd[r];
                double ki = kd[(gsize) t * n + i];

                exact += qi * ki;
                full += (double) q[(gsize) r * n + i] * k[(gsize) t * n + i];
                bound += fabs (q[(gsize) r * n + i]) *
                         rk_fp16_to_fp32 (dh[((gsize) t * stride_rows + 1) * ng + i / group]) /
                         2 + fabs (ki) * qd[r] / 2;
              }
            exact *= scale;
            g_assert_cmpfloat (fabs (s[(gsize) r * cnt + t] - exact), <=,
                               1e-5 * (1.0 + fabs (exact)));
            g_assert_cmpfloat (fabs (s[(gsize) r * cnt + t] - scale * full), <=,
                               scale * bound * 1.001 + 1e-5);
          }
    }
}

/* Each ISA's query quantizer gives the reference's bits: codes, scales and
 * group sums (rows with a zero row and exact halves .5 that round to even,
 * head dims with and without a tail that takes the reference path). */
static void
test_kvq_quantize_query (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  rk_kvq_kernels kk = rk_kvq_kernels_for_isa (isa), ref = rk_kvq_kernels_for_isa (RK_ISA_REF);
  g_autoptr(GRand) rand = g_rand_new_with_seed (44);
  static const int dims[][2] = { { 64, 64 }, { 128, 64 }, { 64, 32 }, { 40, 40 }, { 96, 32 } };
  const int rows = 5;
  gsize di;

  if (!isa_usable (isa))
    return;
  for (di = 0; di < G_N_ELEMENTS (dims); di++)
    {
      int n = dims[di][0], group = dims[di][1], i;
      g_autofree float *q = random_floats (rand, (gsize) rows * n, -4.0, 4.0);
      int8_t q8a[5 * 128], q8b[5 * 128];
      float qda[5], qdb[5];
      int32_t qsa[5 * 4], qsb[5 * 4];

      for (i = 0; i < n; i++)
        q[(gsize) 2 * n + i] = 0.0f;          /* an all-zero row */
      q[(gsize) 3 * n] = 127.0f;              /* then k + 0.5 exactly: ties */
      for (i = 1; i < n; i++)
        q[(gsize) 3 * n + i] = (float) (i % 9) - 4.5f;
      kk.quantize_query (rows, n, group, q, q8a, qda, qsa);
      ref.quantize_query (rows, n, group, q, q8b, qdb, qsb);
      g_assert_cmpmem (q8a, (gsize) rows * n, q8b, (gsize) rows * n);
      g_assert_cmpmem (qda, sizeof (float) * rows, qdb, sizeof (float) * rows);
      g_assert_cmpmem (qsa, sizeof (int32_t) * rows * (n / group),
                       qsb, sizeof (int32_t) * rows * (n / group));
      /* the reference itself: the rounding of each value, and the sums */
      for (i = 0; i < rows * n; i++)
        {
          float qd = qdb[i / n];

          g_assert_cmpfloat (fabsf (q8b[i] * qd - q[i]), <=, qd * 0.5001f + 1e-30f);
        }
      g_assert_cmpint (q8b[3 * n + 1], ==, -4);   /* -3.5 * 127 / 127 = -3.5: to even */

      /* the int16 query of Q8 keys, the same way */
      {
        int16_t q16a[5 * 128], q16b[5 * 128];

        q[(gsize) 3 * n] = 32767.0f;
        kk.quantize_query16 (rows, n, q, q16a, qda);
        ref.quantize_query16 (rows, n, q, q16b, qdb);
        g_assert_cmpmem (q16a, sizeof (int16_t) * rows * n, q16b, sizeof (int16_t) * rows * n);
        g_assert_cmpmem (qda, sizeof (float) * rows, qdb, sizeof (float) * rows);
        for (i = 0; i < rows * n; i++)
          {
            float qd = qdb[i / n];

            /* half a step, and the float rounding of q * (32767 / max)
             * (a few thousandths of a step at this magnitude) */
            g_assert_cmpfloat (fabsf (q16b[i] * qd - q[i]), <=, qd * 0.505f + 1e-30f);
          }
        g_assert_cmpint (q16b[3 * n + 1], ==, -4);
        g_assert_cmpint (q16b[3 * n + 2], ==, -2);
        g_assert_cmpint (q16b[3 * n], ==, 32767);
        for (i = 0; i < n; i++)
          g_assert_cmpint (q16b[2 * n + i], ==, 0);
      }
    }
}

/* Q7: every ISA's unpacking gives back the codes packed (full 64-value
 * chunks and a shorter last one), the packed size is 7/8 of a byte per value,
 * and the quantizer keeps every value within d/2 with codes in -63..63. */
static void
test_kvq7_pack (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  rk_kvq_kernels kk = rk_kvq_kernels_for_isa (isa);
  g_autoptr(GRand) rand = g_rand_new_with_seed (48);
  static const int ns[] = { 64, 128, 72, 40, 8, 192, 136 };
  gsize ni;

  if (!isa_usable (isa))
    return;
  for (ni = 0; ni < G_N_ELEMENTS (ns); ni++)
    {
      int n = ns[ni], i, group = n % 64 == 0 ? 64 : 8;
      int8_t codes[256], back[256];
      uint8_t packed[256];
      rk_fp16 d[32];
      float x[256], y[256];

      for (i = 0; i < n; i++)
        codes[i] = (int8_t) (i == 0 ? -63 : i == n - 1 ? 63 : g_rand_int_range (rand, -63, 64));
      memset (packed, 0xAA, sizeof packed);
      rk_kvq7_pack (n, codes, packed);
      g_assert_cmpint (packed[n * 7 / 8], ==, 0xAA);   /* n * 7 / 8 bytes, no more */
      memset (back, 0, sizeof back);
      kk.q7_unpack (n, packed, back);
      g_assert_cmpmem (back, n, codes, n);

      for (i = 0; i < n; i++)
        x[i] = (float) g_rand_double_range (rand, -3.0, 2.0);
      x[n / 2] = 5.0f;
      rk_kvq7_quantize (n, group, x, packed, d);
      kk.q7_unpack (n, packed, back);
      rk_kvq8_dequantize (n, group, back, d, y);
      for (i = 0; i < n; i++)
        {
          float dg = rk_fp16_to_fp32 (d[i / group]);

          g_assert_cmpint (ABS (back[i]), <=, 63);
          g_assert_cmpfloat (fabsf (y[i] - x[i]), <=, dg * 0.5001f);
        }
    }
}

/* Q10: unpacking per ISA gives back the codes packed, the packed size is
 * 10/8 of a byte per value, the quantizer keeps every value within d/2 with
 * codes in -511..511, and the int16 kernels (dequantize, group scores) match
 * the reference and the exact products. */
static void
test_kvq10 (gconstpointer data)
{
  rk_isa isa = GPOINTER_TO_INT (data);
  rk_kvq_kernels kk = rk_kvq_kernels_for_isa (isa), ref = rk_kvq_kernels_for_isa (RK_ISA_REF);
  g_autoptr(GRand) rand = g_rand_new_with_seed (49);
  /* n and group; 136 and 256: groups past int32's reach for int16 x int16
   * sums (136 * 32767 * 511 > 2^31) */
  static const int ns[][2] = { { 64, 64 }, { 128, 64 }, { 72, 8 }, { 40, 8 }, { 4, 4 },
                               { 192, 64 }, { 132, 4 }, { 136, 136 }, { 256, 256 } };
  gsize ni;

  if (!isa_usable (isa))
    return;
  for (ni = 0; ni < G_N_ELEMENTS (ns); ni++)
    {
      int n = ns[ni][0], i, r, t, group = ns[ni][1];
      int16_t codes[256], back[256], kc[6 * 256], q16[2 * 256];
      uint8_t packed[512];
      rk_fp16 d[64], kd[6 * 64];
      float x[256], y[256], y2[256], qd[2], sa[12], sb[12];

      for (i = 0; i < n; i++)
        codes[i] = (int16_t) (i == 0 ? -511 : i == n - 1 ? 511
                              : g_rand_int_range (rand, -511, 512));
      memset (packed, 0xAA, sizeof packed);
      rk_kvq10_pack (n, codes, packed);
      g_assert_cmpint (packed[n * 10 / 8], ==, 0xAA);
      kk.q10_unpack (n, packed, back);
      g_assert_cmpmem (back, n * sizeof (int16_t), codes, n * sizeof (int16_t));

      for (i = 0; i < n; i++)
        x[i] = (float) g_rand_double_range (rand, -3.0, 2.0);
      x[n / 2] = 5.0f;
      rk_kvq10_quantize (n, group, x, packed, d);
      kk.q10_unpack (n, packed, back);
      kk.q16_dequantize (n, group, back, d, y);
      ref.q16_dequantize (n, group, back, d, y2);
      g_assert_cmpmem (y, n * sizeof (float), y2, n * sizeof (float));
      for (i = 0; i < n; i++)
        {
          g_assert_cmpint (ABS (back[i]), <=, 511);
          g_assert_cmpfloat (fabsf (y[i] - x[i]), <=, rk_fp16_to_fp32 (d[i / group]) * 0.5001f);
        }

      /* six keys (four at a time, then two; one extreme: +-511 against
       * +-32767), two query rows */
      for (t = 0; t < 6; t++)
        {
          for (i = 0; i < n; i++)
            kc[t * n + i] = t == 2 ? (i % 2 ? 511 : -511)
                                   : (int16_t) g_rand_int_range (rand, -511, 512);
          for (i = 0; i < n / group; i++)
            kd[t * (n / group) + i] = rk_fp32_to_fp16 ((float) g_rand_double_range (rand, 0.001,
                                                                                    0.01));
        }
      for (r = 0; r < 2; r++)
        {
          for (i = 0; i < n; i++)
            q16[r * n + i] = r == 0 ? (i % 2 ? 32767 : -32767)
                                    : (int16_t) g_rand_int_range (rand, -32767, 32768);
          qd[r] = 1e-4f * (r + 1);
        }
      kk.q16_group_scores (2, 6, n, group, q16, qd, kc, (size_t) n, kd, (size_t) (n / group),
                           0.5f, sa);
      ref.q16_group_scores (2, 6, n, group, q16, qd, kc, (size_t) n, kd, (size_t) (n / group),
                            0.5f, sb);
      for (r = 0; r < 2; r++)
        for (t = 0; t < 6; t++)
          {
            double exact = 0.0;

            for (i = 0; i < n; i++)
              exact += (double) q16[r * n + i] * qd[r] * kc[t * n + i] *
                       rk_fp16_to_fp32 (kd[t * (n / group) + i / group]);
            exact *= 0.5;
            g_assert_cmpfloat (fabs (sa[r * 6 + t] - exact), <=, 1e-5 * (1.0 + fabs (exact)));
            g_assert_cmpfloat (fabs (sb[r * 6 + t] - exact), <=, 1e-5 * (1.0 + fabs (exact)));
          }
    }
}

static void
add_isa_tests (const char *path, GTestDataFunc fn)
{
  static const rk_isa isas[] = { RK_ISA_REF, RK_ISA_AVX2, RK_ISA_NEON };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (isas); i++)
    {
      g_autofree char *name = g_strdup_printf ("/kernels/attention/%s/%s", path,
                                               rk_isa_name (isas[i]));

      g_test_add_data_func (name, GINT_TO_POINTER (isas[i]), fn);
    }
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  rk_cpu_init ();
  pool2 = rk_pool_new (2);
  g_assert_nonnull (pool2);

  add_isa_tests ("flash/causal-prefill", test_flash_causal_prefill);
  add_isa_tests ("flash/non-causal", test_flash_non_causal);
  add_isa_tests ("flash/kv-len", test_flash_kv_len);
  add_isa_tests ("flash/empty", test_flash_empty);
  add_isa_tests ("flash/kv-stride", test_flash_kv_stride);
  add_isa_tests ("flash/sharp", test_flash_sharp);
  add_isa_tests ("gqa/ratios", test_gqa_ratios);
  add_isa_tests ("gqa/scale", test_gqa_scale);
  add_isa_tests ("paged/shuffled", test_paged_shuffled);
  add_isa_tests ("paged/empty", test_paged_empty);
  add_isa_tests ("kv-group-step", test_kv_group_step);
  add_isa_tests ("kvq4-group-scores", test_kvq4_group_scores);
  add_isa_tests ("kvq-quantize-query", test_kvq_quantize_query);
  add_isa_tests ("kvq8-group-scores", test_kvq8_group_scores);
  add_isa_tests ("kvq7-pack", test_kvq7_pack);
  add_isa_tests ("kvq10", test_kvq10);
  g_test_add_func ("/kernels/attention/mqa", test_mqa);
  g_test_add_func ("/kernels/attention/dispatch", test_dispatch);
  g_test_add_func ("/kernels/attention/config", test_config);

  ret = g_test_run ();
  rk_pool_free (pool2);
  return ret;
}
