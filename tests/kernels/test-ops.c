/* test-ops.c — norms, RoPE, softmax, activations, argmax and top-k.
 * SPDX-License-Identifier: MIT
 *
 * Every SIMD variant (and the dispatched name) against _ref on lengths 1..1000
 * from unaligned pointers; every _ref against plain double math; RoPE against
 * a per-pair double formula and against llama.cpp's llama3 factors.
 */
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rk-cpu.h"
#include "rk-ops.h"

#define MAX_N 1000

typedef void  (*rmsnorm_fn)   (float *, const float *, const float *, int, float);
typedef void  (*layernorm_fn) (float *, const float *, const float *, const float *, int, float);
typedef float (*softmax_fn)   (float *, int);
typedef float (*exp_sum_fn)   (float *, int, float);
typedef void  (*unary_fn)     (float *, const float *, int);
typedef void  (*binary_fn)    (float *, const float *, const float *, int);
typedef void  (*scale_fn)     (float *, const float *, float, int);
typedef void  (*axpy_fn)      (float *, float, const float *, int);
typedef int   (*argmax_fn)    (const float *, int);
typedef void  (*rope_fn)      (float *, int, int, const float *, const rk_rope_params *);

/* One row of kernels to check against _ref. A variant this build lacks has
 * NULL entries and its tests skip. */
typedef struct
{
  const char  *name;
  rk_isa       isa;
  gboolean     dispatch;   /* the un-suffixed names: always runnable */
  rmsnorm_fn   rmsnorm;
  layernorm_fn layernorm;
  softmax_fn   softmax;
  exp_sum_fn   exp_sum;
  unary_fn     silu;
  binary_fn    swiglu;
  unary_fn     gelu;
  binary_fn    add;
  binary_fn    mul;
  scale_fn     scale;
  axpy_fn      axpy;
  argmax_fn    argmax;
  rope_fn      rope;
} Variant;

#define VARIANT(sfx, isa) \
  { #sfx, isa, FALSE, rk_rmsnorm_##sfx, rk_layernorm_##sfx, rk_softmax_##sfx,               \
    rk_exp_sum_##sfx, rk_silu_##sfx,                                                          \
    rk_swiglu_##sfx, rk_gelu_##sfx, rk_add_##sfx, rk_mul_##sfx, rk_scale_##sfx,              \
    rk_axpy_##sfx, rk_argmax_##sfx, rk_rope_apply_##sfx }

static const Variant variants[] = {
#if defined(RK_HAVE_AVX2)
  VARIANT (avx2, RK_ISA_AVX2),
#else
  { "avx2", RK_ISA_AVX2, FALSE, NULL },
#endif
#if defined(RK_HAVE_NEON)
  VARIANT (neon, RK_ISA_NEON),
#else
  { "neon", RK_ISA_NEON, FALSE, NULL },
#endif
  { "dispatch", RK_ISA_REF, TRUE, rk_rmsnorm, rk_layernorm, rk_softmax, rk_exp_sum, rk_silu,
    rk_swiglu, rk_gelu, rk_add, rk_mul, rk_scale, rk_axpy, rk_argmax, rk_rope_apply },
};

static gboolean
variant_skip (const Variant *v)
{
  if (v->rmsnorm == NULL || !rk_cpu_has_isa (v->isa))
    {
      g_test_skip ("ISA not available in this build or on this CPU");
      return TRUE;
    }
  return FALSE;
}

/* xorshift32: the same inputs on every run and machine. */
static guint32 rng_state;

static void
rng_seed (guint32 s)
{
  rng_state = s != 0 ? s : 1;
}

static float
rng_uniform (float lo,
             float hi)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return lo + (hi - lo) * (float) ((rng_state >> 8) * (1.0 / 16777216.0));
}

static void
fill (float *x,
      int    n,
      float  lo,
      float  hi)
{
  int i;

  for (i = 0; i < n; i++)
    x[i] = rng_uniform (lo, hi);
}

/* A buffer of n floats starting `off` floats past a malloc'ed base, so the
 * SIMD loads see every alignment mod 16 bytes. */
typedef struct
{
  float *base;
  float *p;
} Buf;

static Buf
buf_new (int n,
         int off)
{
  Buf b;

  b.base = g_new0 (float, n + 8);
  b.p = b.base + off;
  return b;
}

static void
assert_close (const float *got,
              const float *want,
              int          n,
              double       abs_tol,
              double       rel_tol,
              const char  *what)
{
  int i;

  for (i = 0; i < n; i++)
    {
      double err = fabs ((double) got[i] - (double) want[i]);

      if (!(err <= abs_tol + rel_tol * fabs ((double) want[i]))
          && !(isinf (got[i]) && got[i] == want[i]))
        g_error ("%s: n=%d i=%d got %.9g want %.9g (err %.3g)", what, n, i,
                 (double) got[i], (double) want[i], err);
    }
}

static void
assert_same (const float *got,
             const float *want,
             int          n,
             const char  *what)
{
  if (memcmp (got, want, (size_t) n * sizeof (float)) != 0)
    g_error ("%s: n=%d results differ bitwise", what, n);
}

/* ---- variants against _ref ---------------------------------------------- */

static void
test_rmsnorm_variant (gconstpointer data)
{
  const Variant *v = data;
  int n, with_w;

  if (variant_skip (v))
    return;
  rng_seed (1);
  for (n = 1; n <= MAX_N; n++)
    for (with_w = 0; with_w < 2; with_w++)
      {
        Buf x = buf_new (n, n % 4), w = buf_new (n, (n + 1) % 4);
        Buf got = buf_new (n, (n + 2) % 4), want = buf_new (n, 0);
        const float *wp = with_w ? w.p : NULL;

        fill (x.p, n, -3.0f, 3.0f);
        fill (w.p, n, 0.5f, 1.5f);
        rk_rmsnorm_ref (want.p, x.p, wp, n, 1e-5f);
        v->rmsnorm (got.p, x.p, wp, n, 1e-5f);
        assert_close (got.p, want.p, n, 1e-6, 1e-5, "rmsnorm");

        /* in place gives the same bits as out of place */
        v->rmsnorm (x.p, x.p, wp, n, 1e-5f);
        assert_same (x.p, got.p, n, "rmsnorm in place");

        g_free (x.base); g_free (w.base); g_free (got.base); g_free (want.base);
      }
}

static void
test_layernorm_variant (gconstpointer data)
{
  const Variant *v = data;
  int n, mode;

  if (variant_skip (v))
    return;
  rng_seed (2);
  for (n = 1; n <= MAX_N; n++)
    for (mode = 0; mode < 4; mode++)
      {
        Buf x = buf_new (n, n % 4), w = buf_new (n, 1), b = buf_new (n, 3);
        Buf got = buf_new (n, (n + 1) % 4), want = buf_new (n, 0);
        const float *wp = (mode & 1) ? w.p : NULL;
        const float *bp = (mode & 2) ? b.p : NULL;
        /* a large common offset: the variance must survive it */
        float offset = (mode == 3) ? 100.0f : 0.0f;

        fill (x.p, n, offset - 2.0f, offset + 2.0f);
        fill (w.p, n, 0.5f, 1.5f);
        fill (b.p, n, -1.0f, 1.0f);
        rk_layernorm_ref (want.p, x.p, wp, bp, n, 1e-5f);
        v->layernorm (got.p, x.p, wp, bp, n, 1e-5f);
        assert_close (got.p, want.p, n, 2e-5, 2e-5, "layernorm");

        v->layernorm (x.p, x.p, wp, bp, n, 1e-5f);
        assert_same (x.p, got.p, n, "layernorm in place");

        g_free (x.base); g_free (w.base); g_free (b.base);
        g_free (got.base); g_free (want.base);
      }
}

static void
test_softmax_variant (gconstpointer data)
{
  const Variant *v = data;
  int n, masked;

  if (variant_skip (v))
    return;
  rng_seed (3);
  for (n = 1; n <= MAX_N; n++)
    for (masked = 0; masked < 2; masked++)
      {
        Buf got = buf_new (n, n % 4), want = buf_new (n, 0);
        float s_got, s_want;
        int i;

        fill (want.p, n, -20.0f, 20.0f);
        if (masked)
          for (i = 0; i < n; i++)
            if (i % 3 == 1)
              want.p[i] = -INFINITY;
        memcpy (got.p, want.p, (size_t) n * sizeof (float));
        s_want = rk_softmax_ref (want.p, n);
        s_got = v->softmax (got.p, n);
        assert_close (got.p, want.p, n, 1e-9, 1e-5, "softmax");
        assert_close (&s_got, &s_want, 1, 0.0, 1e-5, "softmax sum");
        for (i = 0; i < n; i++)
          if (masked && i % 3 == 1)
            g_assert_true (got.p[i] == 0.0f);

        g_free (got.base); g_free (want.base);
      }
}

/* exp (x - m) and its sum, m at or above the maximum, masked entries 0 */
static void
test_exp_sum_variant (gconstpointer data)
{
  const Variant *v = data;
  int n, masked;

  if (variant_skip (v))
    return;
  rng_seed (4);
  for (n = 1; n <= MAX_N; n++)
    for (masked = 0; masked < 2; masked++)
      {
        Buf got = buf_new (n, n % 4), want = buf_new (n, 0), in = buf_new (n, 0);
        float s_got, s_want, m = 20.0f + (float) (n % 3);
        int i;

        fill (want.p, n, -20.0f, 20.0f);
        if (masked)
          for (i = 0; i < n; i++)
            if (i % 3 == 1)
              want.p[i] = -INFINITY;
        memcpy (got.p, want.p, (size_t) n * sizeof (float));
        memcpy (in.p, want.p, (size_t) n * sizeof (float));
        s_want = rk_exp_sum_ref (want.p, n, m);
        s_got = v->exp_sum (got.p, n, m);
        assert_close (got.p, want.p, n, 1e-12, 1e-5, "exp_sum");
        assert_close (&s_got, &s_want, 1, 1e-12, 1e-5, "exp_sum sum");
        for (i = 0; i < n; i++)
          if (masked && i % 3 == 1)
            g_assert_true (got.p[i] == 0.0f);
        /* the reference against double math: expf's rounding plus that of
         * x - m in float (half an ulp of |x - m|, relative to exp) */
        for (i = 0; i < n; i++)
          {
            double dd = (double) in.p[i] - m;

            if (isinf (dd))
              g_assert_true (want.p[i] == 0.0f);
            else
              g_assert_cmpfloat (fabs (want.p[i] - exp (dd)), <=,
                                 exp (dd) * (2e-7 + fabs (dd) * 1.2e-7) + 1e-30);
          }

        g_free (got.base); g_free (want.base); g_free (in.base);
      }
}

/* silu, swiglu and gelu on [-20, 20] plus the far ends of expf's range */
static void
fill_activations (float *x,
                  int    n)
{
  static const float special[] = { 0.0f, -0.0f, 100.0f, -100.0f, 88.0f, -88.0f, 1e-8f, -1e-8f };
  int i;

  fill (x, n, -20.0f, 20.0f);
  for (i = 0; i < n && i < (int) G_N_ELEMENTS (special); i++)
    x[(i * 37) % n] = special[i];
}

static void
test_silu_variant (gconstpointer data)
{
  const Variant *v = data;
  int n;

  if (variant_skip (v))
    return;
  rng_seed (4);
  for (n = 1; n <= MAX_N; n++)
    {
      Buf x = buf_new (n, n % 4), up = buf_new (n, 2);
      Buf got = buf_new (n, (n + 3) % 4), want = buf_new (n, 0);

      fill_activations (x.p, n);
      fill (up.p, n, -4.0f, 4.0f);

      rk_silu_ref (want.p, x.p, n);
      v->silu (got.p, x.p, n);
      assert_close (got.p, want.p, n, 1e-30, 4e-6, "silu");

      rk_swiglu_ref (want.p, x.p, up.p, n);
      v->swiglu (got.p, x.p, up.p, n);
      assert_close (got.p, want.p, n, 1e-30, 4e-6, "swiglu");
      memcpy (want.p, got.p, (size_t) n * sizeof (float));
      v->swiglu (up.p, x.p, up.p, n);
      assert_same (up.p, want.p, n, "swiglu in place");

      rk_silu_ref (want.p, x.p, n);
      v->silu (x.p, x.p, n);
      assert_close (x.p, want.p, n, 1e-30, 4e-6, "silu in place");

      g_free (x.base); g_free (up.base); g_free (got.base); g_free (want.base);
    }
}

static void
test_gelu_variant (gconstpointer data)
{
  const Variant *v = data;
  int n;

  if (variant_skip (v))
    return;
  rng_seed (5);
  for (n = 1; n <= MAX_N; n++)
    {
      Buf x = buf_new (n, n % 4), got = buf_new (n, (n + 1) % 4), want = buf_new (n, 0);

      fill_activations (x.p, n);
      rk_gelu_ref (want.p, x.p, n);
      v->gelu (got.p, x.p, n);
      /* the reference's 1 + tanhf(u) cancels for u << 0: absolute bound */
      assert_close (got.p, want.p, n, 2e-6, 4e-6, "gelu");
      v->gelu (x.p, x.p, n);
      assert_same (x.p, got.p, n, "gelu in place");

      g_free (x.base); g_free (got.base); g_free (want.base);
    }
}

static void
test_arith_variant (gconstpointer data)
{
  const Variant *v = data;
  int n;

  if (variant_skip (v))
    return;
  rng_seed (6);
  for (n = 1; n <= MAX_N; n++)
    {
      Buf a = buf_new (n, n % 4), b = buf_new (n, (n + 1) % 4);
      Buf got = buf_new (n, (n + 2) % 4), want = buf_new (n, 0);

      fill (a.p, n, -10.0f, 10.0f);
      fill (b.p, n, -10.0f, 10.0f);

      /* one rounding each: bit-exact */
      rk_add_ref (want.p, a.p, b.p, n);
      v->add (got.p, a.p, b.p, n);
      assert_same (got.p, want.p, n, "add");
      rk_mul_ref (want.p, a.p, b.p, n);
      v->mul (got.p, a.p, b.p, n);
      assert_same (got.p, want.p, n, "mul");
      rk_scale_ref (want.p, a.p, 0.37f, n);
      v->scale (got.p, a.p, 0.37f, n);
      assert_same (got.p, want.p, n, "scale");

      /* fused or not: one rounding apart */
      memcpy (want.p, b.p, (size_t) n * sizeof (float));
      memcpy (got.p, b.p, (size_t) n * sizeof (float));
      rk_axpy_ref (want.p, -1.25f, a.p, n);
      v->axpy (got.p, -1.25f, a.p, n);
      assert_close (got.p, want.p, n, 1e-5, 1e-6, "axpy");

      /* in place */
      rk_add_ref (want.p, a.p, b.p, n);
      v->add (a.p, a.p, b.p, n);
      assert_same (a.p, want.p, n, "add in place");
      rk_mul_ref (want.p, a.p, b.p, n);
      v->mul (b.p, a.p, b.p, n);
      assert_same (b.p, want.p, n, "mul in place");
      rk_scale_ref (want.p, a.p, -3.0f, n);
      v->scale (a.p, a.p, -3.0f, n);
      assert_same (a.p, want.p, n, "scale in place");

      g_free (a.base); g_free (b.base); g_free (got.base); g_free (want.base);
    }
}

static void
test_argmax_variant (gconstpointer data)
{
  const Variant *v = data;
  int n;

  if (variant_skip (v))
    return;
  rng_seed (7);
  for (n = 1; n <= MAX_N; n++)
    {
      Buf x = buf_new (n, n % 4);
      int i, at, at2;

      fill (x.p, n, -5.0f, 5.0f);
      g_assert_cmpint (v->argmax (x.p, n), ==, rk_argmax_ref (x.p, n));

      /* the maximum twice: the first wins, wherever the two fall */
      at = MIN ((int) rng_uniform (0.0f, (float) n), n - 1);
      at2 = MIN ((int) rng_uniform (0.0f, (float) n), n - 1);
      x.p[at] = x.p[at2] = 6.0f;
      g_assert_cmpint (v->argmax (x.p, n), ==, MIN (at, at2));
      g_assert_cmpint (rk_argmax_ref (x.p, n), ==, MIN (at, at2));

      /* all equal, and all masked */
      for (i = 0; i < n; i++)
        x.p[i] = 0.5f;
      g_assert_cmpint (v->argmax (x.p, n), ==, 0);
      for (i = 0; i < n; i++)
        x.p[i] = -INFINITY;
      g_assert_cmpint (v->argmax (x.p, n), ==, 0);
      x.p[n - 1] = -1e30f;
      g_assert_cmpint (v->argmax (x.p, n), ==, n - 1);

      g_free (x.base);
    }
}

static void
test_rope_variant (gconstpointer data)
{
  static const int shapes[][2] = {   /* head_dim, n_rot */
    { 2, 2 }, { 8, 8 }, { 10, 10 }, { 16, 16 }, { 18, 10 }, { 34, 34 }, { 64, 64 },
    { 64, 32 }, { 80, 80 }, { 96, 64 }, { 128, 128 }, { 128, 64 }, { 256, 256 },
  };
  const Variant *v = data;
  float cs[256];
  gsize s;
  int neox, off;

  if (variant_skip (v))
    return;
  rng_seed (8);
  for (s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (neox = 0; neox < 2; neox++)
      for (off = 0; off < 4; off++)
        {
          int head_dim = shapes[s][0], n_heads = 3, n = n_heads * head_dim;
          rk_rope_params p = { shapes[s][1], neox, 10000.0f, 1.0f, NULL, 1.0f };
          Buf got = buf_new (n, off), want = buf_new (n, 0);

          fill (want.p, n, -2.0f, 2.0f);
          memcpy (got.p, want.p, (size_t) n * sizeof (float));
          rk_rope_cache (cs, 1000 + 77 * off, &p);
          rk_rope_apply_ref (want.p, n_heads, head_dim, cs, &p);
          v->rope (got.p, n_heads, head_dim, cs, &p);
          assert_close (got.p, want.p, n, 1e-6, 1e-6, "rope");

          g_free (got.base); g_free (want.base);
        }
}

/* ---- _ref against double math -------------------------------------------- */

static void
test_rmsnorm_ref (void)
{
  double want[MAX_N];
  float x[MAX_N], w[MAX_N], got[MAX_N];
  int n;

  rng_seed (11);
  for (n = 1; n <= MAX_N; n += 37)
    {
      double ss = 0.0, scale;
      int i;

      fill (x, n, -3.0f, 3.0f);
      fill (w, n, -2.0f, 2.0f);
      for (i = 0; i < n; i++)
        ss += (double) x[i] * x[i];
      scale = 1.0 / sqrt (ss / n + 1e-6);
      for (i = 0; i < n; i++)
        want[i] = x[i] * scale * w[i];
      rk_rmsnorm_ref (got, x, w, n, 1e-6f);
      for (i = 0; i < n; i++)
        g_assert_cmpfloat_with_epsilon (got[i], want[i], 1e-6 * (1.0 + fabs (want[i])));
    }

  /* known value: (3, 4) has rms sqrt(12.5) */
  x[0] = 3.0f;
  x[1] = 4.0f;
  rk_rmsnorm_ref (got, x, NULL, 2, 0.0f);
  g_assert_cmpfloat_with_epsilon (got[0], 3.0 / sqrt (12.5), 1e-7);
  g_assert_cmpfloat_with_epsilon (got[1], 4.0 / sqrt (12.5), 1e-7);
}

static void
test_layernorm_ref (void)
{
  float x[MAX_N], w[MAX_N], b[MAX_N], got[MAX_N];
  int n;

  rng_seed (12);
  for (n = 1; n <= MAX_N; n += 37)
    {
      double sum = 0.0, var = 0.0, mean, scale;
      int i;

      fill (x, n, 998.0f, 1002.0f);
      fill (w, n, -2.0f, 2.0f);
      fill (b, n, -1.0f, 1.0f);
      for (i = 0; i < n; i++)
        sum += x[i];
      mean = sum / n;
      for (i = 0; i < n; i++)
        var += (x[i] - mean) * (x[i] - mean);
      scale = 1.0 / sqrt (var / n + 1e-5);
      rk_layernorm_ref (got, x, w, b, n, 1e-5f);
      for (i = 0; i < n; i++)
        {
          double want = (x[i] - mean) * scale * w[i] + b[i];

          /* x is only known to float precision near 1000: ~1e-4 / sigma */
          g_assert_cmpfloat_with_epsilon (got[i], want, 2e-4 * (1.0 + fabs (want)));
        }
    }
}

static void
test_softmax_ref (void)
{
  float x[MAX_N];
  int n, i;

  rng_seed (13);
  for (n = 1; n <= MAX_N; n += 37)
    {
      double want[MAX_N], max = -INFINITY, sum = 0.0, total = 0.0;
      float ret;

      fill (x, n, -30.0f, 30.0f);
      for (i = 0; i < n; i++)
        {
          if (i % 4 == 3)
            x[i] = -INFINITY;
          max = MAX (max, x[i]);
        }
      for (i = 0; i < n; i++)
        sum += want[i] = exp ((double) x[i] - max);
      ret = rk_softmax_ref (x, n);
      g_assert_cmpfloat_with_epsilon (ret, sum, 1e-6 * sum);
      for (i = 0; i < n; i++)
        {
          g_assert_cmpfloat_with_epsilon (x[i], want[i] / sum, 1e-6 * (1e-6 + want[i] / sum));
          total += x[i];
          if (i % 4 == 3)
            g_assert_true (x[i] == 0.0f);
        }
      g_assert_cmpfloat_with_epsilon (total, 1.0, 1e-5);
    }

  /* all equal: uniform, and the sum of exp(0) is n */
  for (i = 0; i < 10; i++)
    x[i] = 7.0f;
  g_assert_cmpfloat (rk_softmax (x, 10), ==, 10.0f);
  for (i = 0; i < 10; i++)
    g_assert_cmpfloat_with_epsilon (x[i], 0.1, 1e-7);

  /* one value */
  x[0] = -123.0f;
  g_assert_cmpfloat (rk_softmax (x, 1), ==, 1.0f);
  g_assert_cmpfloat (x[0], ==, 1.0f);

  /* one visible entry among masked ones */
  for (i = 0; i < 20; i++)
    x[i] = -INFINITY;
  x[13] = 2.5f;
  g_assert_cmpfloat (rk_softmax (x, 20), ==, 1.0f);
  for (i = 0; i < 20; i++)
    g_assert_cmpfloat (x[i], ==, i == 13 ? 1.0f : 0.0f);

  /* fully masked: zeros, no NaN */
  for (i = 0; i < 20; i++)
    x[i] = -INFINITY;
  g_assert_cmpfloat (rk_softmax_ref (x, 20), ==, 0.0f);
  for (i = 0; i < 20; i++)
    g_assert_cmpfloat (x[i], ==, 0.0f);
  for (i = 0; i < 20; i++)
    x[i] = -INFINITY;
  g_assert_cmpfloat (rk_softmax (x, 20), ==, 0.0f);
  for (i = 0; i < 20; i++)
    g_assert_cmpfloat (x[i], ==, 0.0f);
}

static void
test_act_ref (void)
{
  float x[MAX_N], up[MAX_N], got[MAX_N];
  int i, n = MAX_N;

  rng_seed (14);
  fill_activations (x, n);
  fill (up, n, -4.0f, 4.0f);

  rk_silu_ref (got, x, n);
  for (i = 0; i < n; i++)
    {
      double want = x[i] / (1.0 + exp (-(double) x[i]));
      g_assert_cmpfloat_with_epsilon (got[i], want, 1e-30 + 1e-6 * fabs (want));
    }

  rk_swiglu_ref (got, x, up, n);
  for (i = 0; i < n; i++)
    {
      double want = x[i] / (1.0 + exp (-(double) x[i])) * up[i];
      g_assert_cmpfloat_with_epsilon (got[i], want, 1e-30 + 1e-6 * fabs (want));
    }

  /* ggml's tanh form in double; float cancellation in 1 + tanh for x << 0 */
  rk_gelu_ref (got, x, n);
  for (i = 0; i < n; i++)
    {
      double v = x[i];
      double want = 0.5 * v * (1.0 + tanh (0.7978845608028654 * v * (1.0 + 0.044715 * v * v)));
      g_assert_cmpfloat_with_epsilon (got[i], want, 1e-6 + 1e-6 * fabs (want));
    }
  /* known values of the tanh approximation */
  x[0] = 1.0f;
  x[1] = -1.0f;
  x[2] = 0.0f;
  rk_gelu_ref (got, x, 3);
  g_assert_cmpfloat_with_epsilon (got[0], 0.8411919906, 1e-6);
  g_assert_cmpfloat_with_epsilon (got[1], -0.1588080094, 1e-6);
  g_assert_cmpfloat (got[2], ==, 0.0f);

  fill (x, n, -10.0f, 10.0f);
  memcpy (got, up, sizeof (got));
  rk_axpy_ref (got, 0.5f, x, n);
  for (i = 0; i < n; i++)
    g_assert_cmpfloat_with_epsilon (got[i], up[i] + 0.5 * x[i], 2e-6);
  rk_add_ref (got, x, up, n);
  for (i = 0; i < n; i++)
    g_assert_cmpfloat (got[i], ==, (float) ((double) x[i] + up[i]));
  rk_mul_ref (got, x, up, n);
  for (i = 0; i < n; i++)
    g_assert_cmpfloat (got[i], ==, (float) ((double) x[i] * up[i]));
  rk_scale_ref (got, x, 0.25f, n);
  for (i = 0; i < n; i++)
    g_assert_cmpfloat (got[i], ==, x[i] / 4);
}

/* ---- RoPE ------------------------------------------------------------------ */

/* The rotation of one head by the formula of rk-ops.h, in double. */
static void
rope_direct (double               *out,
             const float          *x,
             int                   head_dim,
             int64_t               pos,
             const rk_rope_params *p)
{
  int half = p->n_rot / 2, i;

  for (i = 0; i < head_dim; i++)
    out[i] = x[i];
  for (i = 0; i < half; i++)
    {
      double ff = p->freq_factors != NULL ? p->freq_factors[i] : 1.0;
      double theta = pos * (double) p->freq_scale * pow (p->freq_base, -2.0 * i / p->n_rot) / ff;
      double c = cos (theta) * p->attn_factor, s = sin (theta) * p->attn_factor;
      int i0 = p->neox ? i : 2 * i, i1 = p->neox ? i + half : 2 * i + 1;

      out[i0] = x[i0] * c - x[i1] * s;
      out[i1] = x[i0] * s + x[i1] * c;
    }
}

static void
check_rope_direct (gboolean neox)
{
  static const int shapes[][2] = { { 64, 64 }, { 128, 128 }, { 96, 64 }, { 10, 6 } };
  static const int64_t positions[] = { 0, 1, 7, 100, 4095, 32767 };
  float ff[128], x[4 * 128], cs[256];
  gsize s, k;
  int h, i;

  rng_seed (neox ? 21 : 22);
  for (i = 0; i < 64; i++)
    ff[i] = rng_uniform (1.0f, 8.0f);

  for (s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (k = 0; k < G_N_ELEMENTS (positions); k++)
      {
        int head_dim = shapes[s][0];
        rk_rope_params p = { shapes[s][1], neox, 500000.0f, 0.25f, ff, 1.2f };
        float x0[4 * 128];

        if (k % 2 == 0)
          {
            p.freq_base = 10000.0f;
            p.freq_scale = 1.0f;
            p.freq_factors = NULL;
            p.attn_factor = 1.0f;
          }
        fill (x, 4 * head_dim, -2.0f, 2.0f);
        memcpy (x0, x, sizeof (x0));
        rk_rope_cache (cs, positions[k], &p);
        rk_rope_apply_ref (x, 4, head_dim, cs, &p);
        for (h = 0; h < 4; h++)
          {
            double want[128];

            rope_direct (want, x0 + h * head_dim, head_dim, positions[k], &p);
            for (i = 0; i < head_dim; i++)
              g_assert_cmpfloat_with_epsilon (x[h * head_dim + i], want[i], 2e-6);
            /* dimensions past n_rot are untouched, bit for bit */
            for (i = p.n_rot; i < head_dim; i++)
              g_assert_cmpfloat (x[h * head_dim + i], ==, x0[h * head_dim + i]);
          }
      }
}

static void
test_rope_normal (void)
{
  float x[8] = { 1.0f, 0.0f, 0.0f, 1.0f, 3.0f, 4.0f, 5.0f, 6.0f }, cs[4];
  rk_rope_params p = { 4, false, 10000.0f, 1.0f, NULL, 1.0f };

  check_rope_direct (FALSE);

  /* by hand: pos 1, n_rot 4 turns pair (0,1) by 1 rad and (2,3) by 0.01 rad */
  rk_rope_cache (cs, 1, &p);
  rk_rope_apply_ref (x, 1, 8, cs, &p);
  g_assert_cmpfloat_with_epsilon (x[0], cos (1.0), 1e-7);
  g_assert_cmpfloat_with_epsilon (x[1], sin (1.0), 1e-7);
  g_assert_cmpfloat_with_epsilon (x[2], -sin (0.01), 1e-7);
  g_assert_cmpfloat_with_epsilon (x[3], cos (0.01), 1e-7);
  g_assert_cmpfloat (x[4], ==, 3.0f);
  g_assert_cmpfloat (x[7], ==, 6.0f);
}

static void
test_rope_neox (void)
{
  float x[4] = { 1.0f, 0.0f, 0.0f, 1.0f }, cs[4];
  rk_rope_params p = { 4, true, 10000.0f, 1.0f, NULL, 1.0f };

  check_rope_direct (TRUE);

  /* by hand: NEOX pairs (0,2) at 1 rad and (1,3) at 0.01 rad */
  rk_rope_cache (cs, 1, &p);
  rk_rope_apply_ref (x, 1, 4, cs, &p);
  g_assert_cmpfloat_with_epsilon (x[0], cos (1.0), 1e-7);
  g_assert_cmpfloat_with_epsilon (x[2], sin (1.0), 1e-7);
  g_assert_cmpfloat_with_epsilon (x[1], -sin (0.01), 1e-7);
  g_assert_cmpfloat_with_epsilon (x[3], cos (0.01), 1e-7);
}

/* Turning by pos and then by -pos is the identity, on every path. */
static void
test_rope_inverse (void)
{
  float x[4 * 128], x0[4 * 128], cs[128], cs_back[128];
  int neox, k, i;

  rng_seed (23);
  for (neox = 0; neox < 2; neox++)
    for (k = 0; k < 5; k++)
      {
        rk_rope_params p = { 128, neox, 10000.0f, 1.0f, NULL, 1.0f };
        int64_t pos = 1 + 977 * k;

        fill (x0, 4 * 128, -3.0f, 3.0f);
        memcpy (x, x0, sizeof (x));
        rk_rope_cache (cs, pos, &p);
        rk_rope_cache (cs_back, -pos, &p);
        rk_rope_apply (x, 4, 128, cs, &p);
        rk_rope_apply_ref (x, 4, 128, cs_back, &p);
        for (i = 0; i < 4 * 128; i++)
          g_assert_cmpfloat_with_epsilon (x[i], x0[i], 2e-6 * 3);
      }
}

/* Factors divide theta: uniform factor f is the same as freq_scale 1/f,
 * factors of 1 are the same as none, and each factor acts on its own pair. */
static void
test_rope_freq_factors (void)
{
  float ones[32], twos[32], ff[32], cs_a[64], cs_b[64];
  rk_rope_params a = { 64, false, 10000.0f, 1.0f, NULL, 1.0f };
  rk_rope_params b = a;
  int i;

  for (i = 0; i < 32; i++)
    {
      ones[i] = 1.0f;
      twos[i] = 2.0f;
      ff[i] = i == 5 ? 4.0f : 1.0f;
    }

  b.freq_factors = ones;
  rk_rope_cache (cs_a, 321, &a);
  rk_rope_cache (cs_b, 321, &b);
  g_assert_cmpmem (cs_a, sizeof (cs_a), cs_b, sizeof (cs_b));

  a.freq_scale = 0.5f;
  b.freq_factors = twos;
  rk_rope_cache (cs_a, 321, &a);
  rk_rope_cache (cs_b, 321, &b);
  for (i = 0; i < 64; i++)
    g_assert_cmpfloat_with_epsilon (cs_a[i], cs_b[i], 1e-7);

  a.freq_scale = 1.0f;
  b.freq_factors = ff;
  rk_rope_cache (cs_a, 321, &a);
  rk_rope_cache (cs_b, 321, &b);
  for (i = 0; i < 32; i++)
    if (i == 5)
      {
        double theta = 321.0 * pow (10000.0, -10.0 / 64) / 4.0;

        g_assert_cmpfloat_with_epsilon (cs_b[2 * i], cos (theta), 1e-7);
        g_assert_cmpfloat_with_epsilon (cs_b[2 * i + 1], sin (theta), 1e-7);
        g_assert_cmpfloat (fabsf (cs_a[2 * i + 1] - cs_b[2 * i + 1]), >, 0.01f);
      }
    else
      {
        g_assert_cmpfloat (cs_a[2 * i], ==, cs_b[2 * i]);
        g_assert_cmpfloat (cs_a[2 * i + 1], ==, cs_b[2 * i + 1]);
      }

  /* attn_factor scales cos and sin alike */
  b.freq_factors = NULL;
  b.attn_factor = 1.5f;
  rk_rope_cache (cs_a, 77, &a);
  rk_rope_cache (cs_b, 77, &b);
  for (i = 0; i < 64; i++)
    g_assert_cmpfloat_with_epsilon (cs_b[i], 1.5 * cs_a[i], 1e-6);
}

/* HF transformers' _compute_llama3_parameters in double, written from its
 * description: inv_freq / factor where the wavelength exceeds ctx/low, kept
 * where it is below ctx/high, and in between a mix with
 * smooth = (ctx / wavelen - low) / (high - low):
 *   (1 - smooth) * inv_freq / factor + smooth * inv_freq.
 * GGUF stores inv_freq / new_inv_freq, the factor RoPE divides theta by. */
static double
hf_llama3_factor (int    i,
                  int    dim,
                  double base,
                  double factor,
                  double low,
                  double high,
                  double ctx)
{
  double inv_freq = pow (base, -2.0 * i / dim);
  double wavelen = 2.0 * G_PI / inv_freq;
  double smooth, scaled;

  if (wavelen < ctx / high)
    scaled = inv_freq;
  else if (wavelen > ctx / low)
    scaled = inv_freq / factor;
  else
    {
      smooth = (ctx / wavelen - low) / (high - low);
      scaled = (1.0 - smooth) * inv_freq / factor + smooth * inv_freq;
    }
  return inv_freq / scaled;
}

static void
test_rope_llama3_factors (void)
{
  /* Expected values of GGUF's rope_freqs tensor, from llama.cpp's converter
   * (conversion/llama.py, LlamaModel.generate_extra_tensors, llama.cpp
   * 5b4ebc5 as bundled in node-llama-cpp 3.21.1), run with torch 1.13 on
   * Llama 3.1 8B's config (rope_theta 500000, head_dim 128, factor 8, low 1,
   * high 4, original_max_position_embeddings 8192): dims 0..28 are 1, 35..63
   * are 8, and the smoothed band is: */
  static const float l31_band[6] = {
    0x1.351daap+0f, 0x1.8dac94p+0f, 0x1.035e3ap+1f,
    0x1.58e65cp+1f, 0x1.d7959cp+1f, 0x1.50780cp+2f,
  };
  /* Same, Llama 3.2 1B (head_dim 64, factor 32): 0..14 are 1, 18..31 are 32. */
  static const float l32_band[3] = { 0x1.a6bd84p+0f, 0x1.a568dep+1f, 0x1.3555dcp+3f };
  float f[64];
  int i;

  rk_rope_llama3_factors (f, 128, 500000.0f, 8.0f, 1.0f, 4.0f, 8192);
  for (i = 0; i < 64; i++)
    {
      float want = i < 29 ? 1.0f : i >= 35 ? 8.0f : l31_band[i - 29];

      g_assert_cmpfloat_with_epsilon (f[i], want, 3e-7 * want);
      g_assert_cmpfloat_with_epsilon (f[i], hf_llama3_factor (i, 128, 500000, 8, 1, 4, 8192),
                                      1e-5 * want);
    }

  rk_rope_llama3_factors (f, 64, 500000.0f, 32.0f, 1.0f, 4.0f, 8192);
  for (i = 0; i < 32; i++)
    {
      float want = i < 15 ? 1.0f : i >= 18 ? 32.0f : l32_band[i - 15];

      g_assert_cmpfloat_with_epsilon (f[i], want, 3e-7 * want);
    }

  /* another configuration, against the double formula only */
  rk_rope_llama3_factors (f, 96, 10000.0f, 4.0f, 2.0f, 8.0f, 2048);
  for (i = 0; i < 48; i++)
    g_assert_cmpfloat_with_epsilon (f[i], hf_llama3_factor (i, 96, 10000, 4, 2, 8, 2048),
                                    1e-5 * f[i]);
}

/* ---- top-k --------------------------------------------------------------- */

static const float *sort_keys;

static int
cmp_desc_then_index (const void *a,
                     const void *b)
{
  int32_t ia = *(const int32_t *) a, ib = *(const int32_t *) b;

  if (sort_keys[ia] != sort_keys[ib])
    return sort_keys[ia] > sort_keys[ib] ? -1 : 1;
  return ia < ib ? -1 : ia > ib;
}

static void
test_top_k (void)
{
  static const int ks[] = { 1, 2, 3, 5, 8, 40, 100 };
  float x[MAX_N], val[MAX_N];
  int32_t idx[MAX_N], order[MAX_N];
  int n, t, ties;

  rng_seed (31);
  for (n = 1; n <= MAX_N; n += 13)
    for (ties = 0; ties < 2; ties++)
      for (t = 0; t < (int) G_N_ELEMENTS (ks) + 1; t++)
        {
          int k = t < (int) G_N_ELEMENTS (ks) ? MIN (ks[t], n) : n;
          int i;

          fill (x, n, -10.0f, 10.0f);
          if (ties)   /* few distinct values: many ties */
            for (i = 0; i < n; i++)
              x[i] = floorf (x[i] / 4.0f);
          for (i = 0; i < n; i++)
            order[i] = i;
          sort_keys = x;
          qsort (order, n, sizeof (int32_t), cmp_desc_then_index);

          rk_top_k (x, n, k, idx, val);
          for (i = 0; i < k; i++)
            {
              g_assert_cmpint (idx[i], ==, order[i]);
              g_assert_cmpfloat (val[i], ==, x[order[i]]);
            }
          rk_top_k (x, n, k, idx, NULL);
          for (i = 0; i < k; i++)
            g_assert_cmpint (idx[i], ==, order[i]);
        }

  /* all equal: indices in order; k = 0 writes nothing */
  for (t = 0; t < 10; t++)
    x[t] = 1.0f;
  rk_top_k (x, 10, 4, idx, NULL);
  for (t = 0; t < 4; t++)
    g_assert_cmpint (idx[t], ==, t);
  idx[0] = -7;
  rk_top_k (x, 10, 0, idx, NULL);
  g_assert_cmpint (idx[0], ==, -7);

  /* masked entries come last */
  x[2] = -INFINITY;
  x[9] = 3.0f;
  rk_top_k (x, 10, 10, idx, val);
  g_assert_cmpint (idx[0], ==, 9);
  g_assert_cmpint (idx[1], ==, 0);
  g_assert_cmpint (idx[9], ==, 2);
  g_assert_cmpfloat (val[9], ==, -INFINITY);
}

static void
add_variant_tests (const char    *op,
                   GTestDataFunc  fn)
{
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (variants); i++)
    {
      g_autofree char *path = g_strdup_printf ("/kernels/ops/%s/%s", op, variants[i].name);

      g_test_add_data_func (path, &variants[i], fn);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rk_cpu_init ();

  g_test_add_func ("/kernels/ops/rmsnorm/ref", test_rmsnorm_ref);
  g_test_add_func ("/kernels/ops/layernorm/ref", test_layernorm_ref);
  g_test_add_func ("/kernels/ops/softmax/ref", test_softmax_ref);
  g_test_add_func ("/kernels/ops/act/ref", test_act_ref);
  g_test_add_func ("/kernels/ops/rope/normal", test_rope_normal);
  g_test_add_func ("/kernels/ops/rope/neox", test_rope_neox);
  g_test_add_func ("/kernels/ops/rope/inverse", test_rope_inverse);
  g_test_add_func ("/kernels/ops/rope/freq-factors", test_rope_freq_factors);
  g_test_add_func ("/kernels/ops/rope/llama3-factors", test_rope_llama3_factors);
  g_test_add_func ("/kernels/ops/top-k/order", test_top_k);

  add_variant_tests ("rmsnorm", test_rmsnorm_variant);
  add_variant_tests ("layernorm", test_layernorm_variant);
  add_variant_tests ("softmax", test_softmax_variant);
  add_variant_tests ("exp-sum", test_exp_sum_variant);
  add_variant_tests ("silu", test_silu_variant);
  add_variant_tests ("gelu", test_gelu_variant);
  add_variant_tests ("arith", test_arith_variant);
  add_variant_tests ("argmax", test_argmax_variant);
  add_variant_tests ("rope", test_rope_variant);

  return g_test_run ();
}
