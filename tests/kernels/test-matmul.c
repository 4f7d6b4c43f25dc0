/* test-matmul.c — rk_matmul / rk_matmul_prequant / rk_get_rows for every
 * weight type against a double-precision reference.
 * SPDX-License-Identifier: MIT
 *
 * The reference multiplies the *dequantized* weights (reference to_float)
 * by the activations after the same conversion rk_matmul applies (from_float
 * of the vec_dot_type, then dequantized back), in double. What remains is
 * the kernels' float accumulation, so the bound is relative to
 * S = sum |w_i x_i|:  |y - ref| <= tol * S + 1e-6, tol = 1e-4; Q4_1/Q5_1 use
 * 2e-3 because their Q8_1 activations carry s = d * sum(q) rounded to fp16
 * (as ggml does), which the dequantized reference does not see.
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "rk-cpu.h"
#include "rk-fp16.h"
#include "rk-gemm.h"
#include "rk-matmul.h"
#include "rk-pool.h"
#include "rk-quant.h"
#include "rk-types.h"

typedef struct
{
  rk_type     type;
  const char *name;
} type_case;

static const type_case types[] = {
  { RK_TYPE_F32, "f32" },   { RK_TYPE_F16, "f16" },   { RK_TYPE_BF16, "bf16" },
  { RK_TYPE_Q4_0, "q4_0" }, { RK_TYPE_Q4_1, "q4_1" }, { RK_TYPE_Q5_0, "q5_0" },
  { RK_TYPE_Q5_1, "q5_1" }, { RK_TYPE_Q8_0, "q8_0" }, { RK_TYPE_Q4_K, "q4_K" },
  { RK_TYPE_Q5_K, "q5_K" }, { RK_TYPE_Q6_K, "q6_K" },
};

/* n_out, n_in, n_tok: odd row counts, token counts around the token block
 * (8) and tile sizes, n_in multiples of 256 for the K formats; 2049 rows
 * split into several decode ranges of unequal size for every format; 70
 * tokens cross the block products' token runs (24, RK_GEMM_PACKED_TOKS). */
static const int64_t shapes[][3] = {
  { 1, 256, 1 },   { 33, 256, 1 },  { 67, 512, 1 },   { 130, 768, 3 },
  { 65, 256, 8 },  { 17, 512, 9 },  { 129, 256, 17 }, { 3, 1024, 2 },
  { 257, 256, 1 }, { 70, 512, 31 }, { 2049, 256, 1 }, { 45, 512, 70 },
};

static guint32 rng_state;

static float
rng_float (void)
{
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float) ((rng_state >> 8) & 0xffffff) / (float) 0x800000 - 1.0f;
}

/* Weights with some spread of row scales and an outlier now and then, so
 * block scales differ. */
static void
fill_weights (float  *w,
              int64_t n)
{
  int64_t i;
  float scale = 0.1f + fabsf (rng_float ());

  for (i = 0; i < n; i++)
    {
      w[i] = scale * rng_float ();
      if ((i % 97) == 5)
        w[i] *= 4.0f;
    }
}

typedef struct
{
  rk_type  type;
  int64_t  n_out, n_in, n_tok;
  size_t   row_stride;
  uint8_t *wq;         /* n_out rows, row_stride apart */
  float   *x;          /* n_tok rows, x_stride apart */
  int64_t  x_stride;
  double  *ref;        /* n_tok x n_out */
  double  *mag;        /* S per output */
} problem;

static gboolean
type_has_kernels (rk_type type)
{
  const rk_type_traits *tr = rk_get_traits (type);

  return tr != NULL && tr->vec_dot != NULL && tr->to_float != NULL
         && tr->from_float_ref != NULL;
}

static void
problem_init (problem *p,
              rk_type  type,
              int64_t  n_out,
              int64_t  n_in,
              int64_t  n_tok,
              size_t   pad,
              int64_t  x_pad)
{
  const rk_type_traits *tr = rk_get_traits (type);
  rk_type_traits wref = rk_traits_for_isa (type, RK_ISA_REF);
  rk_type vdt = tr->vec_dot_type;
  const rk_type_traits *tx = rk_get_traits (vdt);
  rk_type_traits xref = rk_traits_for_isa (vdt, RK_ISA_REF);
  size_t xq_row = rk_row_size (vdt, n_in);
  float *wf = g_new (float, n_in);
  float *wd = g_new (float, n_out * n_in);
  float *xd = g_new (float, n_in);
  uint8_t *xq = g_malloc (xq_row);
  int64_t r, t, i;

  p->type = type;
  p->n_out = n_out;
  p->n_in = n_in;
  p->n_tok = n_tok;
  p->row_stride = rk_row_size (type, n_in) + pad;
  p->wq = g_malloc0 (p->row_stride * n_out);
  p->x_stride = n_in + x_pad;
  p->x = g_new0 (float, p->x_stride * n_tok);
  p->ref = g_new0 (double, n_out * n_tok);
  p->mag = g_new0 (double, n_out * n_tok);

  for (r = 0; r < n_out; r++)
    {
      fill_weights (wf, n_in);
      tr->from_float_ref (wf, p->wq + r * p->row_stride, n_in);
      wref.to_float (p->wq + r * p->row_stride, wd + r * n_in, n_in);
    }
  for (t = 0; t < n_tok; t++)
    {
      float *x = p->x + t * p->x_stride;

      for (i = 0; i < n_in; i++)
        x[i] = rng_float ();
      /* Padding past n_in is poison: it must never be read. */
      for (i = n_in; i < p->x_stride; i++)
        x[i] = NAN;
      tx->from_float (x, xq, n_in);
      xref.to_float (xq, xd, n_in);
      for (r = 0; r < n_out; r++)
        {
          double s = 0.0, m = 0.0;

          for (i = 0; i < n_in; i++)
            {
              double v = (double) wd[r * n_in + i] * (double) xd[i];

              s += v;
              m += fabs (v);
            }
          p->ref[t * n_out + r] = s;
          p->mag[t * n_out + r] = m;
        }
    }
  g_free (wf);
  g_free (wd);
  g_free (xd);
  g_free (xq);
}

static void
problem_clear (problem *p)
{
  g_free (p->wq);
  g_free (p->x);
  g_free (p->ref);
  g_free (p->mag);
}

static double
type_tolerance (rk_type type)
{
  return type == RK_TYPE_Q4_1 || type == RK_TYPE_Q5_1 ? 2e-3 : 1e-4;
}

/* Runs rk_matmul into y (y_stride floats apart; the gaps are poisoned and
 * must stay untouched) and checks against the reference. */
static void
run_and_check (const problem *p,
               rk_pool       *pool,
               int64_t        y_stride,
               float         *y)
{
  size_t ss = rk_matmul_scratch_size (p->type, p->n_in, p->n_tok);
  void *scratch = g_malloc (ss > 0 ? ss : 1);
  double tol = type_tolerance (p->type);
  int64_t r, t;

  g_assert_cmpuint (ss, >=, rk_row_size (rk_get_traits (p->type)->vec_dot_type, p->n_in)
                            * (size_t) p->n_tok);
  for (r = 0; r < y_stride * p->n_tok; r++)
    y[r] = -12345.0f;
  rk_matmul (pool, p->type, p->wq, p->row_stride, p->n_out, p->n_in, p->x, p->x_stride,
             p->n_tok, y, y_stride, scratch);
  for (t = 0; t < p->n_tok; t++)
    {
      for (r = 0; r < p->n_out; r++)
        {
          double want = p->ref[t * p->n_out + r];
          double got = y[t * y_stride + r];
          double bound = tol * p->mag[t * p->n_out + r] + 1e-6;

          if (!(fabs (got - want) <= bound))
            g_error ("%s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " n_tok=%" G_GINT64_FORMAT
                     ": y[%" G_GINT64_FORMAT "][%" G_GINT64_FORMAT "] = %.9g, want %.9g (bound %.3g)",
                     rk_type_name (p->type), p->n_out, p->n_in, p->n_tok, t, r, got, want,
                     bound);
        }
      for (r = p->n_out; r < y_stride; r++)
        g_assert_cmpfloat (y[t * y_stride + r], ==, -12345.0f);
    }
  g_free (scratch);
}

static void
test_matmul (gconstpointer data)
{
  const type_case *tc = data;
  rk_pool *pool = rk_pool_new (2);
  guint s;

  if (!type_has_kernels (tc->type))
    {
      g_test_fail_printf ("no kernels for %s", tc->name);
      rk_pool_free (pool);
      return;
    }
  rng_state = 1234 + tc->type;
  for (s = 0; s < G_N_ELEMENTS (shapes); s++)
    {
      problem p;
      float *y;

      /* Even shapes: tight strides; odd: padded rows, X and Y. */
      problem_init (&p, tc->type, shapes[s][0], shapes[s][1], shapes[s][2],
                    s % 2 ? 32 : 0, s % 2 ? 7 : 0);
      y = g_new (float, (p.n_out + 3) * p.n_tok);
      run_and_check (&p, NULL, p.n_out, y);
      run_and_check (&p, pool, p.n_out + (s % 2 ? 3 : 0), y);
      g_free (y);
      problem_clear (&p);
    }
  rk_pool_free (pool);
}

/* Prequantized input gives the same result as rk_matmul, and a pool of 2
 * threads gives bit-identical results to no pool (each output is one
 * vec_dot whichever thread computes it). */
static void
test_pool_identical (gconstpointer data)
{
  const type_case *tc = data;
  rk_pool *pool = rk_pool_new (2);
  const int64_t n_toks[] = { 1, 5, 20 };
  guint k;

  if (!type_has_kernels (tc->type))
    {
      g_test_fail_printf ("no kernels for %s", tc->name);
      rk_pool_free (pool);
      return;
    }
  rng_state = 777 + tc->type;
  for (k = 0; k < G_N_ELEMENTS (n_toks); k++)
    {
      problem p;
      rk_type vdt = rk_get_traits (tc->type)->vec_dot_type;
      size_t ss;
      void *scratch, *xq;
      float *y0, *y1, *y2;

      problem_init (&p, tc->type, 301, 512, n_toks[k], 0, 0);
      ss = rk_matmul_scratch_size (tc->type, p.n_in, p.n_tok);
      scratch = g_malloc (ss);
      xq = g_malloc (ss);
      y0 = g_new (float, p.n_out * p.n_tok);
      y1 = g_new (float, p.n_out * p.n_tok);
      y2 = g_new (float, p.n_out * p.n_tok);
      rk_matmul (NULL, tc->type, p.wq, p.row_stride, p.n_out, p.n_in, p.x, p.x_stride,
                 p.n_tok, y0, p.n_out, scratch);
      rk_matmul (pool, tc->type, p.wq, p.row_stride, p.n_out, p.n_in, p.x, p.x_stride,
                 p.n_tok, y1, p.n_out, scratch);
      rk_quantize_rows (pool, vdt, p.x, p.x_stride, p.n_in, p.n_tok, xq);
      rk_matmul_prequant (pool, tc->type, p.wq, p.row_stride, p.n_out, p.n_in, xq,
                          p.n_tok, y2, p.n_out);
      g_assert_cmpmem (y0, p.n_out * p.n_tok * sizeof (float),
                       y1, p.n_out * p.n_tok * sizeof (float));
      g_assert_cmpmem (y0, p.n_out * p.n_tok * sizeof (float),
                       y2, p.n_out * p.n_tok * sizeof (float));
      g_free (scratch);
      g_free (xq);
      g_free (y0);
      g_free (y1);
      g_free (y2);
      problem_clear (&p);
    }
  rk_pool_free (pool);
}

static void
test_get_rows (gconstpointer data)
{
  const type_case *tc = data;
  const rk_type_traits *tr = rk_get_traits (tc->type);
  const int32_t rows[] = { 0, 6, 3, 3, 9, 1 };
  const int64_t n_in = 512, n_out = 10;
  size_t row_stride = rk_row_size (tc->type, n_in) + 16;
  uint8_t *wq = g_malloc0 (row_stride * n_out);
  float *wf = g_new (float, n_in);
  float *out = g_new (float, n_in * G_N_ELEMENTS (rows));
  float *want = g_new (float, n_in);
  int64_t r;
  guint i;

  if (tr == NULL || tr->to_float == NULL || tr->from_float_ref == NULL)
    {
      g_test_fail_printf ("no kernels for %s", tc->name);
      goto out;
    }
  rng_state = 99 + tc->type;
  for (r = 0; r < n_out; r++)
    {
      fill_weights (wf, n_in);
      tr->from_float_ref (wf, wq + r * row_stride, n_in);
    }
  rk_get_rows (tc->type, wq, row_stride, n_in, rows, G_N_ELEMENTS (rows), out);
  for (i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      tr->to_float (wq + rows[i] * row_stride, want, n_in);
      g_assert_cmpmem (out + i * n_in, n_in * sizeof (float), want, n_in * sizeof (float));
    }
out:
  g_free (wq);
  g_free (wf);
  g_free (out);
  g_free (want);
}

/* The block products of rk-gemm.h called directly, for the reference and the
 * dispatched ISA: every tile shape the SIMD variants use gets edges (row and
 * token counts that are not multiples of the tile, 1, tile - 1, tile + 1),
 * outputs land at a padded y stride whose gaps stay untouched, and float
 * rows have a tail that is not a multiple of 8. */
static void
test_gemm_tiles (gconstpointer data)
{
  const type_case *tc = data;
  const rk_type_traits *tr = rk_get_traits (tc->type);
  const int rows[] = { 1, 2, 3, 5, 8, 13 };
  const int toks[] = { 1, 2, 5, 6, 7, 8, 9, 13, 17, 25 };
  const rk_isa isas[] = { RK_ISA_REF, rk_cpu_isa () };
  int64_t n_in = rk_type_block_size (tc->type) > 1 ? 512 : 259;
  double tol = type_tolerance (tc->type);
  problem p;
  size_t xq_row;
  uint8_t *xq;
  float *y;
  guint a, ri, ti;
  int64_t r, t;

  if (!type_has_kernels (tc->type))
    {
      g_test_fail_printf ("no kernels for %s", tc->name);
      return;
    }
  if (rk_gemm_get (tc->type) == NULL)
    {
      /* Only the legacy Q4_1/Q5_1 loop over vec_dot. */
      g_assert_true (tc->type == RK_TYPE_Q4_1 || tc->type == RK_TYPE_Q5_1);
      return;
    }
  rng_state = 4321 + tc->type;
  problem_init (&p, tc->type, 13, n_in, 25, 0, 0);
  xq_row = rk_row_size (tr->vec_dot_type, n_in);
  xq = g_malloc (xq_row * p.n_tok);
  rk_quantize_rows (NULL, tr->vec_dot_type, p.x, p.x_stride, n_in, p.n_tok, xq);
  y = g_new (float, (p.n_out + 5) * p.n_tok);
  for (a = 0; a < G_N_ELEMENTS (isas); a++)
    {
      rk_gemm_fn gemm = rk_gemm_get_isa (tc->type, isas[a]);

      g_assert_nonnull (gemm);
      for (ri = 0; ri < G_N_ELEMENTS (rows); ri++)
        for (ti = 0; ti < G_N_ELEMENTS (toks); ti++)
          {
            const int64_t ys = rows[ri] + 5;

            for (r = 0; r < ys * toks[ti]; r++)
              y[r] = -12345.0f;
            gemm ((int) n_in, p.wq, p.row_stride, rows[ri], xq, xq_row, toks[ti], y, ys);
            for (t = 0; t < toks[ti]; t++)
              {
                for (r = 0; r < rows[ri]; r++)
                  {
                    double want = p.ref[t * p.n_out + r];
                    double got = y[t * ys + r];
                    double bound = tol * p.mag[t * p.n_out + r] + 1e-6;

                    if (!(fabs (got - want) <= bound))
                      g_error ("%s gemm (%s) %d x %d: y[%" G_GINT64_FORMAT "][%" G_GINT64_FORMAT
                               "] = %.9g, want %.9g (bound %.3g)", tc->name,
                               rk_isa_name (isas[a]), rows[ri], toks[ti], t, r, got, want, bound);
                  }
                for (r = rows[ri]; r < ys; r++)
                  g_assert_cmpfloat (y[t * ys + r], ==, -12345.0f);
              }
          }
    }
  /* The reference is the per-pair reference dot product, bit for bit. */
  {
    rk_gemm_fn gemm = rk_gemm_get_isa (tc->type, RK_ISA_REF);
    rk_type_traits wref = rk_traits_for_isa (tc->type, RK_ISA_REF);

    gemm ((int) n_in, p.wq, p.row_stride, 13, xq, xq_row, 25, y, 13);
    for (t = 0; t < 25; t++)
      for (r = 0; r < 13; r++)
        g_assert_cmpfloat (y[t * 13 + r], ==,
                           wref.vec_dot ((int) n_in, p.wq + r * p.row_stride, xq + t * xq_row));
  }
  g_free (xq);
  g_free (y);
  problem_clear (&p);
}

#if defined(RK_HAVE_AVX512)
/* The AVX-512 VNNI tiles called directly (whatever RUV_KERNELS says), on the
 * same edges, padded y stride and tolerance as test_gemm_tiles, and against
 * the per-pair reference dot products. */
typedef struct
{
  rk_type     type;
  const char *name;
  rk_gemm_fn  fn;
  gboolean    avx2;   /* an AVX2 product (needs AVX2, not VNNI) */
} avx512_case;

/* Whether this CPU runs the case's product. */
static gboolean
case_supported (const avx512_case *ac)
{
  return ac->avx2 ? rk_cpu_has_isa (RK_ISA_AVX2) : rk_cpu_has_avx512_vnni ();
}

static void
test_gemm_avx512 (gconstpointer data)
{
  const avx512_case *ac = data;
  const rk_type_traits wref = rk_traits_for_isa (ac->type, RK_ISA_REF);
  const int rows[] = { 1, 2, 3, 4, 5, 7, 8, 9, 13 };
  const int toks[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 17, 25 };
  const int64_t n_in = 512;
  double tol = type_tolerance (ac->type);
  problem p;
  size_t xq_row;
  uint8_t *xq;
  float *y;
  guint ri, ti;
  int64_t r, t;

  if (!rk_cpu_has_avx512_vnni ())
    {
      g_test_skip ("no AVX-512 VNNI on this CPU or build");
      return;
    }
  rng_state = 8765 + ac->type;
  problem_init (&p, ac->type, 13, n_in, 25, 0, 0);
  xq_row = rk_row_size (wref.vec_dot_type, n_in);
  /* One spare byte: the activations start at an odd address. */
  xq = g_malloc (xq_row * p.n_tok + 1);
  rk_quantize_rows (NULL, wref.vec_dot_type, p.x, p.x_stride, n_in, p.n_tok, xq + 1);
  y = g_new (float, (p.n_out + 5) * p.n_tok);
  for (ri = 0; ri < G_N_ELEMENTS (rows); ri++)
    for (ti = 0; ti < G_N_ELEMENTS (toks); ti++)
      {
        const int64_t ys = rows[ri] + 5;

        for (r = 0; r < ys * toks[ti]; r++)
          y[r] = -12345.0f;
        ac->fn ((int) n_in, p.wq, p.row_stride, rows[ri], xq + 1, xq_row, toks[ti], y, ys);
        for (t = 0; t < toks[ti]; t++)
          {
            for (r = 0; r < rows[ri]; r++)
              {
                double want = p.ref[t * p.n_out + r];
                double dot = wref.vec_dot ((int) n_in, p.wq + r * p.row_stride,
                                           xq + 1 + t * xq_row);
                double got = y[t * ys + r];
                double bound = tol * p.mag[t * p.n_out + r] + 1e-6;

                if (!(fabs (got - want) <= bound) || !(fabs (got - dot) <= bound))
                  g_error ("%s gemm avx512 %d x %d: y[%" G_GINT64_FORMAT "][%" G_GINT64_FORMAT
                           "] = %.9g, want %.9g (ref dot %.9g, bound %.3g)", ac->name,
                           rows[ri], toks[ti], t, r, got, want, dot, bound);
              }
            for (r = rows[ri]; r < ys; r++)
              g_assert_cmpfloat (y[t * ys + r], ==, -12345.0f);
          }
      }
  g_free (xq);
  g_free (y);
  problem_clear (&p);

  /* Bigger than one packed chunk (64 blocks), one token run
   * (RK_GEMM_PACKED_TOKS) and one pass (16 rows), with a row padding and a
   * ragged last chunk, panel and run. */
  {
    const int64_t big_in = 2 * 64 * 32 + 3 * 256;
    const int n_r = 37, n_t = RK_GEMM_PACKED_TOKS + 7;
    const int64_t ys = n_r + 3;

    problem_init (&p, ac->type, n_r, big_in, n_t, 34, 0);
    xq_row = rk_row_size (wref.vec_dot_type, big_in);
    xq = g_malloc (xq_row * p.n_tok);
    rk_quantize_rows (NULL, wref.vec_dot_type, p.x, p.x_stride, big_in, p.n_tok, xq);
    y = g_new (float, ys * n_t);
    for (r = 0; r < ys * n_t; r++)
      y[r] = -12345.0f;
    ac->fn ((int) big_in, p.wq, p.row_stride, n_r, xq, xq_row, n_t, y, ys);
    for (t = 0; t < n_t; t++)
      {
        for (r = 0; r < n_r; r++)
          {
            double dot = wref.vec_dot ((int) big_in, p.wq + r * p.row_stride, xq + t * xq_row);
            double got = y[t * ys + r];
            double bound = tol * p.mag[t * p.n_out + r] + 1e-6;

            if (!(fabs (got - dot) <= bound))
              g_error ("%s gemm avx512 %d x %d, n %" G_GINT64_FORMAT ": y[%" G_GINT64_FORMAT
                       "][%" G_GINT64_FORMAT "] = %.9g, ref dot %.9g (bound %.3g)", ac->name,
                       n_r, n_t, big_in, t, r, got, dot, bound);
          }
        for (r = n_r; r < ys; r++)
          g_assert_cmpfloat (y[t * ys + r], ==, -12345.0f);
      }
  }
  /* n = 0: every output is the empty dot product, 0, as in _ref. */
  for (r = 0; r < 2 * 20; r++)
    y[r] = -12345.0f;
  ac->fn (0, p.wq, p.row_stride, 19, xq, xq_row, 2, y, 20);
  for (t = 0; t < 2; t++)
    {
      for (r = 0; r < 19; r++)
        g_assert_cmpfloat (y[t * 20 + r], ==, 0.0f);
      g_assert_cmpfloat (y[t * 20 + 19], ==, -12345.0f);
    }
  /* The dispatch: AVX2 tables carry these exactly when they are enabled. */
  g_assert_true ((rk_gemm_get_isa (ac->type, RK_ISA_AVX2) == ac->fn)
                 == rk_cpu_use_avx512_vnni ());
  g_free (xq);
  g_free (y);
  problem_clear (&p);
}

static uint8_t
rng_byte (void)
{
  rng_state = rng_state * 1664525u + 1013904223u;
  return (uint8_t) (rng_state >> 24);
}

/* A scale for random blocks: positive, normal in fp16, not tiny. */
static rk_fp16
random_fp16_scale (void)
{
  return rk_fp32_to_fp16 (0.001f + 0.05f * fabsf (rng_float ()));
}

/* Every bit pattern on both sides, which quantized normals never give: random
 * weight bytes with sane fp16 scales (Q6_K scales down to -128, Q5_K codes
 * up to 31) and random activations including -128, which neither activation
 * quantizer writes (bsums kept consistent). Row 0 holds the top code
 * everywhere (and Q6_K's -128 scales) and token 0 is all -128, the largest
 * int32 sums the packed kernels can meet; 9 K blocks and 72 Q8_0 blocks
 * cross the chunk edges. Checked against the dequantized product in
 * double. */
static void
test_gemm_avx512_bits (gconstpointer data)
{
  const avx512_case *ac = data;
  const rk_type_traits wref = rk_traits_for_isa (ac->type, RK_ISA_REF);
  const rk_type vdt = wref.vec_dot_type;
  const rk_type_traits xref = rk_traits_for_isa (vdt, RK_ISA_REF);
  const int64_t n_in = 9 * 256;
  const int n_r = 19, n_t = 5;
  const int64_t ys = n_r + 2;
  const size_t rs = rk_row_size (ac->type, n_in), xr = rk_row_size (vdt, n_in);
  const size_t wbs = rk_type_size (ac->type), xbs = rk_type_size (vdt);
  const int64_t nb = n_in / rk_type_block_size (ac->type);
  const double tol = type_tolerance (ac->type);
  uint8_t *w = g_malloc (rs * n_r);
  uint8_t *x = g_malloc (xr * n_t);
  float *wd = g_new (float, n_in * n_r);
  float *xd = g_new (float, n_in);
  float *y = g_new (float, ys * n_t);
  int64_t r, t, b, i;

  if (!case_supported (ac))
    {
      g_test_skip ("not supported on this CPU or build");
      goto out;
    }
  rng_state = 4321 + ac->type;
  for (i = 0; i < (int64_t) (rs * n_r); i++)
    w[i] = rng_byte ();
  for (r = 0; r < n_r; r++)
    for (b = 0; b < nb; b++)
      {
        uint8_t *blk = w + r * rs + b * wbs;
        const rk_fp16 d = random_fp16_scale (), dmin = random_fp16_scale ();

        if (r == 0)
          memset (blk, ac->type == RK_TYPE_Q8_0 ? 0x7f : 0xff, wbs);
        switch ((int) ac->type)
          {
          case RK_TYPE_Q6_K:
            if (r == 0)
              memset (blk + offsetof (rk_block_q6_K, scales), 0x80, RK_QK_K / 16);
            memcpy (blk + offsetof (rk_block_q6_K, d), &d, sizeof d);
            break;
          case RK_TYPE_Q4_K:
          case RK_TYPE_Q5_K:
            /* d and dmin lead both blocks */
            memcpy (blk + offsetof (rk_block_q4_K, d), &d, sizeof d);
            memcpy (blk + offsetof (rk_block_q4_K, dmin), &dmin, sizeof dmin);
            break;
          default:
            /* d leads the Q8_0, Q4_0 and Q5_0 blocks */
            memcpy (blk, &d, sizeof d);
            break;
          }
      }
  for (r = 0; r < n_r; r++)
    wref.to_float (w + r * rs, wd + r * n_in, n_in);
  for (i = 0; i < (int64_t) (xr * n_t); i++)
    x[i] = rng_byte ();
  for (t = 0; t < n_t; t++)
    for (b = 0; b < n_in / rk_type_block_size (vdt); b++)
      {
        uint8_t *blk = x + t * xr + b * xbs;

        if (vdt == RK_TYPE_Q8_K)
          {
            rk_block_q8_K q;
            int j, l;

            memcpy (&q, blk, sizeof q);
            q.d = rk_fp16_to_fp32 (random_fp16_scale ()) * (rng_float () < 0 ? -1 : 1);
            for (j = 0; j < RK_QK_K / 16; j++)
              {
                int sum = 0;

                for (l = 0; l < 16; l++)
                  {
                    if (t == 0)
                      q.qs[16 * j + l] = -128;
                    sum += q.qs[16 * j + l];
                  }
                q.bsums[j] = (int16_t) sum;
              }
            memcpy (blk, &q, sizeof q);
          }
        else
          {
            const rk_fp16 d = random_fp16_scale ();

            if (t == 0)
              memset (blk + offsetof (rk_block_q8_0, qs), 0x80, RK_QK8_0);
            memcpy (blk + offsetof (rk_block_q8_0, d), &d, sizeof d);
          }
      }
  for (i = 0; i < ys * n_t; i++)
    y[i] = -12345.0f;
  ac->fn ((int) n_in, w, rs, n_r, x, xr, n_t, y, ys);
  for (t = 0; t < n_t; t++)
    {
      xref.to_float (x + t * xr, xd, n_in);
      for (r = 0; r < n_r; r++)
        {
          double want = 0.0, mag = 0.0, got = y[t * ys + r], bound;

          for (i = 0; i < n_in; i++)
            {
              double v = (double) wd[r * n_in + i] * (double) xd[i];

              want += v;
              mag += fabs (v);
            }
          bound = tol * mag + 1e-6;
          if (!(fabs (got - want) <= bound))
            g_error ("%s gemm %s, random bits: y[%" G_GINT64_FORMAT "][%" G_GINT64_FORMAT
                     "] = %.9g, want %.9g (ref dot %.9g, bound %.3g)", ac->name,
                     ac->avx2 ? "avx2" : "avx512", t, r, got,
                     want, wref.vec_dot ((int) n_in, w + r * rs, x + t * xr), bound);
        }
      for (r = n_r; r < ys; r++)
        g_assert_cmpfloat (y[t * ys + r], ==, -12345.0f);
    }
out:
  g_free (w);
  g_free (x);
  g_free (wd);
  g_free (xd);
  g_free (y);
}

#endif /* RK_HAVE_AVX512 */

/* Sizes and degenerate calls. */
static void
test_misc (void)
{
  float y[4] = { 1, 2, 3, 4 };

  /* F32 pairs with F32: scratch is n_tok rows of n_in floats. */
  g_assert_cmpuint (rk_matmul_scratch_size (RK_TYPE_F32, 64, 3), ==, 64 * 3 * sizeof (float));
  /* Q8_K is an activation format: no product, no scratch. */
  g_assert_cmpuint (rk_matmul_scratch_size (RK_TYPE_Q8_K, 256, 1), ==, 0);
  g_assert_cmpuint (rk_matmul_scratch_size ((rk_type) 39, 256, 1), ==, 0);
  /* n_out or n_tok of 0 writes nothing. */
  rk_matmul (NULL, RK_TYPE_F32, NULL, 0, 0, 64, NULL, 64, 1, y, 4, NULL);
  rk_matmul (NULL, RK_TYPE_F32, NULL, 0, 4, 64, NULL, 64, 0, y, 4, NULL);
  g_assert_cmpfloat (y[0], ==, 1.0f);
  g_assert_cmpfloat (y[3], ==, 4.0f);
  /* An unsupported weight type yields NaN. */
  rk_matmul_prequant (NULL, RK_TYPE_Q8_K, NULL, 0, 4, 256, NULL, 1, y, 4);
  g_assert_true (isnan (y[0]) && isnan (y[3]));
}

int
main (int argc, char **argv)
{
  guint i;

  g_test_init (&argc, &argv, NULL);
  rk_cpu_init ();
  g_test_add_func ("/kernels/matmul/misc", test_misc);
  for (i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autofree char *p1 = g_strdup_printf ("/kernels/matmul/%s/reference", types[i].name);
      g_autofree char *p2 = g_strdup_printf ("/kernels/matmul/%s/pool-identical",
                                             types[i].name);
      g_autofree char *p3 = g_strdup_printf ("/kernels/matmul/%s/get-rows", types[i].name);
      g_autofree char *p4 = g_strdup_printf ("/kernels/matmul/%s/gemm-tiles", types[i].name);

      g_test_add_data_func (p1, &types[i], test_matmul);
      g_test_add_data_func (p2, &types[i], test_pool_identical);
      g_test_add_data_func (p3, &types[i], test_get_rows);
      g_test_add_data_func (p4, &types[i], test_gemm_tiles);
    }
  {
#if defined(RK_HAVE_AVX512)
    static const avx512_case cases[] = {
      { RK_TYPE_Q8_0, "q8_0", rk_gemm_q8_0_q8_0_avx512 },
      { RK_TYPE_Q4_0, "q4_0", rk_gemm_q4_0_q8_0_avx512 },
      { RK_TYPE_Q5_0, "q5_0", rk_gemm_q5_0_q8_0_avx512 },
      { RK_TYPE_Q4_K, "q4_K", rk_gemm_q4_K_q8_K_avx512 },
      { RK_TYPE_Q5_K, "q5_K", rk_gemm_q5_K_q8_K_avx512 },
      { RK_TYPE_Q6_K, "q6_K", rk_gemm_q6_K_q8_K_avx512 },
    };

    for (i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_autofree char *path = g_strdup_printf ("/kernels/matmul/%s/gemm-tiles/avx512",
                                                 cases[i].name);

        g_autofree char *path2 = g_strdup_printf ("/kernels/matmul/%s/gemm-bits/avx512",
                                                  cases[i].name);

        g_test_add_data_func (path, &cases[i], test_gemm_avx512);
        g_test_add_data_func (path2, &cases[i], test_gemm_avx512_bits);
      }
  }
  {
    /* The packed AVX2 K products sum in int16 within a sub-block: the same
     * extreme bytes. */
#if defined(RK_HAVE_AVX2)
    static const avx512_case avx2_cases[] = {
      { RK_TYPE_Q4_K, "q4_K", rk_gemm_q4_K_q8_K_avx2, TRUE },
      { RK_TYPE_Q5_K, "q5_K", rk_gemm_q5_K_q8_K_avx2, TRUE },
    };

    for (i = 0; i < G_N_ELEMENTS (avx2_cases); i++)
      {
        g_autofree char *path = g_strdup_printf ("/kernels/matmul/%s/gemm-bits/avx2",
                                                 avx2_cases[i].name);

        g_test_add_data_func (path, &avx2_cases[i], test_gemm_avx512_bits);
      }
#endif
#else
    /* Built without the AVX-512 library: the query must say so. */
    g_assert_false (rk_cpu_has_avx512_vnni ());
    g_assert_false (rk_cpu_use_avx512_vnni ());
#endif
  }
  return g_test_run ();
}
