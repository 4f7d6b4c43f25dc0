/* test-quant-k.c — K-quant kernels: byte-identity with ggml, SIMD vs reference, error bounds.
 * SPDX-License-Identifier: MIT
 *
 * Formats q4_K, q5_K, q6_K (weights) and q8_K (their activations). Every
 * SIMD variant is checked against _ref on 1..16 super-blocks at unaligned
 * addresses (skipped where the CPU or build lacks the ISA); _ref against
 * ggml through sha256 of a fixed input; the dots against a double dot of the
 * dequantized rows; quantize -> dequantize against stated error bounds.
 */
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rk-cpu.h"
#include "rk-quant.h"

#define QK RK_QK_K

typedef void  (*quant_fn)   (const float *x, void *y, int64_t k);
typedef void  (*dequant_fn) (const void *x, float *y, int64_t k);
typedef float (*dot_fn)     (int n, const void *x, const void *y);

#if defined(RK_HAVE_AVX2)
#define AVX2(f) f##_avx2
#else
#define AVX2(f) NULL
#endif
#if defined(RK_HAVE_NEON)
#define NEON(f) f##_neon
#else
#define NEON(f) NULL
#endif
#define VARIANTS(f) { f##_ref, AVX2 (f), NEON (f) }
#if defined(RK_HAVE_AVX512)
#define AVX512(f) f##_avx512
#else
#define AVX512(f) NULL
#endif

/* V_AVX512: the AVX-512 VNNI kernels that stand in for AVX2 ones (a dot). */
enum { V_REF, V_AVX2, V_NEON, V_AVX512, N_VARIANTS };
static const rk_isa variant_isa[N_VARIANTS] = { RK_ISA_REF, RK_ISA_AVX2, RK_ISA_NEON,
                                                RK_ISA_AVX2 };

typedef struct
{
  const char *name;
  size_t      block_bytes;
  quant_fn    quant[N_VARIANTS];
  dequant_fn  dequant[N_VARIANTS];
  dot_fn      dot[N_VARIANTS];              /* NULL for q8_K */
  /* sha256 of the blocks of lcg_input (256 super-blocks) and of their
   * dequantization, from tests/kernels/quant-k-hashes.py: numpy port and
   * ggml's libggml-base.so (llama.cpp v0.4.0 / 5b4ebc5) agree on each. */
  const char *ggml_quant_sha256;
  const char *ggml_dequant_sha256;
  /* Bound on RMSE(x - dequant(quant(x))) / RMS(x) for x ~ N(0, 1), see
   * test_roundtrip. */
  double      max_rel_rmse;
} KFormat;

static const KFormat formats[] = {
  {
    "q4_K", sizeof (rk_block_q4_K),
    VARIANTS (rk_quantize_row_q4_K), VARIANTS (rk_dequantize_row_q4_K),
    { rk_vec_dot_q4_K_q8_K_ref, AVX2 (rk_vec_dot_q4_K_q8_K), NEON (rk_vec_dot_q4_K_q8_K),
      AVX512 (rk_vec_dot_q4_K_q8_K) },
    "eb96a6c3ae3fe8314d62453ec8334ca051113dd4124182a18b5d97dd541f236b",
    "994cfb023e6f975d11a10ab5454ce9cd78e84da95823626c6dec07abe843be69",
    /* 16 levels over the range of 32 normals (~4.1 sigma) minus the fitted
     * min: step ~0.26 sigma, uniform error step/sqrt(12) ~0.075; the
     * weighted search gets ~0.07 (refharness measures 7.1e-2). */
    0.080,
  },
  {
    "q5_K", sizeof (rk_block_q5_K),
    VARIANTS (rk_quantize_row_q5_K), VARIANTS (rk_dequantize_row_q5_K),
    VARIANTS (rk_vec_dot_q5_K_q8_K),
    "569f9f063b2c9daf7bcf9f5ad91c649dcff7ce8e0020f734ca0c658a622aab10",
    "1983967f887d56965a73c2b2005ca3ed37be7d06113915d0508036b57dcf4f55",
    /* 32 levels: half Q4_K's step, ~0.036 (refharness: 3.6e-2). */
    0.042,
  },
  {
    "q6_K", sizeof (rk_block_q6_K),
    VARIANTS (rk_quantize_row_q6_K), VARIANTS (rk_dequantize_row_q6_K),
    VARIANTS (rk_vec_dot_q6_K_q8_K),
    "a981e5f8e45b923f40b2a11ffc22f5ac5e4ae3968c0d57b47a55fb833fc89674",
    "40597ecb8531e53918758c607f837c0e030dd1947d3f7a0a5eab2161de43e608",
    /* 64 symmetric levels over the max of 16 normals (~2 sigma): step
     * ~0.063 sigma, /sqrt(12) ~0.018 (refharness: 1.8e-2). */
    0.021,
  },
  {
    "q8_K", sizeof (rk_block_q8_K),
    VARIANTS (rk_quantize_row_q8_K), VARIANTS (rk_dequantize_row_q8_K),
    { NULL, NULL, NULL },
    "ceeeb5c8f36f30f6867c668fcbeda65f3a36d5504e5235a6dc93c8b7b6e852ee",
    "8256b44a64d72a851f4c965467a9fd28a2f6d86a45064abe396574c00f90c61c",
    /* 255 levels over the max of 256 normals (~2.9 sigma): step ~0.023
     * sigma, /sqrt(12) ~0.0066. */
    0.0080,
  },
};

typedef struct
{
  const KFormat *fmt;
  int            variant;
} Case;

/* ---- inputs ---------------------------------------------------------- */

static uint32_t
lcg16 (uint32_t *state)
{
  *state = *state * 1664525u + 1013904223u;
  return *state >> 16;
}

/* The input of the ggml hashes; quant-k-hashes.py builds the same floats
 * (every value is exact in float32). 8 kinds of super-block in turn:
 * bell-shaped, wide, all zero, all positive (min = 0), one outlier, tiny
 * (scales underflow fp16), constant, sparse. */
static void
lcg_input (float *x,
           int    nblocks)
{
  uint32_t st = 20240607;
  int b, e, r;

  for (b = 0; b < nblocks; b++)
    for (e = 0; e < QK; e++)
      {
        int32_t s = -131070;
        double v;

        for (r = 0; r < 4; r++)
          s += (int32_t) lcg16 (&st);
        switch (b % 8)
          {
          case 0: v = ldexp (s, -16); break;
          case 1: v = ldexp (s, -9); break;
          case 2: v = 0; break;
          case 3: v = ldexp (abs (s), -16) + 0.25; break;
          case 4: v = e == 37 ? 40.0 : ldexp (s, -16); break;
          case 5: v = ldexp (s, -40); break;
          case 6: v = 0.5; break;
          default: v = e % 5 == 0 ? ldexp (s, -14) : 0; break;
          }
        x[b * QK + e] = (float) v;
      }
}

static void
gaussian (float   *x,
          int64_t  n,
          uint32_t seed)
{
  uint32_t st = seed;
  int64_t i;

  for (i = 0; i < n; i++)
    {
      double u1 = (lcg16 (&st) + 1.0) / 65537.0;
      double u2 = lcg16 (&st) / 65536.0;

      x[i] = (float) (sqrt (-2 * log (u1)) * cos (2 * G_PI * u2));
    }
}

/* Random bytes with sane scales: every bit pattern of the quants (all
 * levels, all packed scales), so the SIMD unpacking meets every case. */
static void
random_blocks (const KFormat *fmt,
               uint8_t       *y,
               int            nb,
               uint32_t       seed)
{
  uint32_t st = seed;
  size_t i;
  int b;

  for (i = 0; i < nb * fmt->block_bytes; i++)
    y[i] = (uint8_t) lcg16 (&st);
  for (b = 0; b < nb; b++)
    {
      uint8_t *blk = y + b * fmt->block_bytes;
      rk_fp16 d = rk_fp32_to_fp16 (0.001f + lcg16 (&st) / 65536.0f * 0.05f);
      rk_fp16 dmin = rk_fp32_to_fp16 (0.001f + lcg16 (&st) / 65536.0f * 0.05f);

      if (strcmp (fmt->name, "q6_K") == 0)
        memcpy (blk + offsetof (rk_block_q6_K, d), &d, sizeof d);
      else if (strcmp (fmt->name, "q8_K") == 0)
        {
          rk_block_q8_K q;
          int j, l;

          memcpy (&q, blk, sizeof q);
          q.d = rk_fp16_to_fp32 (d) * (lcg16 (&st) & 1 ? 1 : -1);
          for (j = 0; j < QK / 16; j++)
            {
              int sum = 0;
              for (l = 0; l < 16; l++)
                {
                  if (q.qs[16 * j + l] == -128)
                    q.qs[16 * j + l] = -127;
                  sum += q.qs[16 * j + l];
                }
              q.bsums[j] = (int16_t) sum;
            }
          memcpy (blk, &q, sizeof q);
        }
      else
        {
          /* d and dmin lead both q4_K and q5_K blocks */
          memcpy (blk, &d, sizeof d);
          memcpy (blk + 2, &dmin, sizeof dmin);
        }
    }
}

/* A buffer whose data starts `offset` bytes past a 64-byte boundary. */
static uint8_t *
buffer_at (uint8_t **base,
           size_t    size,
           size_t    offset)
{
  *base = g_malloc0 (size + 64 + offset);
  return (uint8_t *) (((uintptr_t) *base + 63) & ~(uintptr_t) 63) + offset;
}

static gboolean
skip_unless_isa (int variant)
{
  if (!rk_cpu_has_isa (variant_isa[variant])
      || (variant == V_AVX512 && !rk_cpu_has_avx512_vnni ()))
    {
      g_test_skip ("ISA not available on this CPU or build");
      return TRUE;
    }
  return FALSE;
}

static const KFormat *
format_q8_K (void)
{
  return &formats[G_N_ELEMENTS (formats) - 1];
}

/* ---- byte-identity with ggml ------------------------------------------- */

static void
test_ggml_identical (gconstpointer data)
{
  const KFormat *fmt = data;
  const int nb = 256;
  float *x = g_new (float, nb * QK);
  float *back = g_new (float, nb * QK);
  uint8_t *q = g_malloc0 (nb * fmt->block_bytes);
  char *sum;

  lcg_input (x, nb);
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) x,
                                     nb * QK * sizeof (float));
  /* The input itself, so a mismatch below is not a generator difference. */
  g_assert_cmpstr (sum, ==, "8000eddbf4214c418a4da4f1ee49aafc4bca35939b4aea423cea20dfe3a15f19");
  g_free (sum);

  fmt->quant[V_REF] (x, q, nb * QK);
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, q, nb * fmt->block_bytes);
  g_assert_cmpstr (sum, ==, fmt->ggml_quant_sha256);
  g_free (sum);

  fmt->dequant[V_REF] (q, back, nb * QK);
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) back,
                                     nb * QK * sizeof (float));
  g_assert_cmpstr (sum, ==, fmt->ggml_dequant_sha256);
  g_free (sum);

  g_free (x);
  g_free (back);
  g_free (q);
}

/* ---- SIMD quantize / dequantize against _ref --------------------------- */

static void
test_quantize_simd (gconstpointer data)
{
  const Case *c = data;
  const KFormat *fmt = c->fmt;
  static const int nbs[] = { 1, 2, 3, 16 };
  gsize t;

  if (skip_unless_isa (c->variant))
    return;
  for (t = 0; t < G_N_ELEMENTS (nbs); t++)
    {
      const int nb = nbs[t];
      const size_t bytes = nb * fmt->block_bytes;
      float *x = g_new (float, nb * QK);
      uint8_t *base_ref, *base_simd;
      uint8_t *qref = buffer_at (&base_ref, bytes, 0);
      uint8_t *qsimd = buffer_at (&base_simd, bytes, 1 + t);
      int kind;

      for (kind = 0; kind < 2; kind++)
        {
          if (kind == 0)
            lcg_input (x, nb);
          else
            gaussian (x, nb * QK, 7 + t);
          if (kind == 1 && nb > 1)
            {
              /* A tie for the largest magnitude, the negative one first:
               * the sign of d must follow the first. */
              x[QK + 3] = -9.5f;
              x[QK + 200] = 9.5f;
            }
          memset (qref, 0xAA, bytes);
          memset (qsimd, 0x55, bytes);
          fmt->quant[V_REF] (x, qref, nb * QK);
          fmt->quant[c->variant] (x, qsimd, nb * QK);
          g_assert_cmpmem (qsimd, bytes, qref, bytes);
        }
      g_free (x);
      g_free (base_ref);
      g_free (base_simd);
    }
}

/* SIMD dequantizers do the same float operations in the same order as _ref
 * (no FMA: the kernels are built with fp-contract off), so bits match. */
static void
test_dequantize_simd (gconstpointer data)
{
  const Case *c = data;
  const KFormat *fmt = c->fmt;
  static const int nbs[] = { 1, 2, 5, 16 };
  gsize t;

  if (skip_unless_isa (c->variant))
    return;
  for (t = 0; t < G_N_ELEMENTS (nbs); t++)
    {
      const int nb = nbs[t];
      const size_t bytes = nb * fmt->block_bytes;
      uint8_t *base_q, *base_out;
      uint8_t *q = buffer_at (&base_q, bytes, 3 + 2 * t);
      float *yref = g_new (float, nb * QK);
      float *ysimd = (float *) (void *) buffer_at (&base_out, nb * QK * sizeof (float), 4);
      float *x = g_new (float, nb * QK);
      int kind;

      for (kind = 0; kind < 2; kind++)
        {
          if (kind == 0)
            random_blocks (fmt, q, nb, 99 + t);
          else
            {
              gaussian (x, nb * QK, 5 + t);
              fmt->quant[V_REF] (x, q, nb * QK);
            }
          fmt->dequant[V_REF] (q, yref, nb * QK);
          fmt->dequant[c->variant] (q, ysimd, nb * QK);
          g_assert_cmpmem (ysimd, nb * QK * sizeof (float), yref, nb * QK * sizeof (float));
        }
      g_free (x);
      g_free (yref);
      g_free (base_q);
      g_free (base_out);
    }
}

/* ---- error bounds ----------------------------------------------------- */

/* Relative RMSE on N(0, 1) below the format's bound (see the table above),
 * an all-zero block back as exact zeros and, for q8_K, every element within
 * half a step: |x - d q| <= |d| / 2 (plus float rounding of x * iscale). */
static void
test_roundtrip (gconstpointer data)
{
  const KFormat *fmt = data;
  const int nb = 64;
  float *x = g_new (float, nb * QK);
  float *back = g_new (float, nb * QK);
  uint8_t *q = g_malloc0 (nb * fmt->block_bytes);
  double se = 0, sx = 0, rel;
  int i;

  gaussian (x, nb * QK, 1234);
  memset (x + 5 * QK, 0, QK * sizeof (float));
  fmt->quant[V_REF] (x, q, nb * QK);
  fmt->dequant[V_REF] (q, back, nb * QK);
  for (i = 0; i < nb * QK; i++)
    {
      se += ((double) x[i] - back[i]) * ((double) x[i] - back[i]);
      sx += (double) x[i] * x[i];
    }
  rel = sqrt (se / sx);
  g_test_message ("%s: relative RMSE %.4g (bound %.4g)", fmt->name, rel, fmt->max_rel_rmse);
  g_assert_cmpfloat (rel, <, fmt->max_rel_rmse);
  /* and not suspiciously good: a lossless "quantizer" would be a bug here */
  g_assert_cmpfloat (rel, >, fmt->max_rel_rmse / 4);
  for (i = 5 * QK; i < 6 * QK; i++)
    g_assert_cmpfloat (back[i], ==, 0.0f);

  if (fmt == format_q8_K ())
    for (i = 0; i < nb * QK; i++)
      {
        rk_block_q8_K b;
        memcpy (&b, q + (i / QK) * sizeof b, sizeof b);
        g_assert_cmpfloat (fabs ((double) x[i] - back[i]), <=, fabs (b.d) * (0.5 + 1e-5));
      }

  g_free (x);
  g_free (back);
  g_free (q);
}

/* bsums[j] is the sum of qs[16 j .. 16 j + 15], for every variant that runs. */
static void
test_q8_K_bsums (void)
{
  const KFormat *fmt = format_q8_K ();
  const int nb = 8;
  float *x = g_new (float, nb * QK);
  rk_block_q8_K *q = g_new0 (rk_block_q8_K, nb);
  int v, b, j, l;

  gaussian (x, nb * QK, 77);
  for (v = 0; v < N_VARIANTS; v++)
    {
      if (!rk_cpu_has_isa (variant_isa[v]) || fmt->quant[v] == NULL)
        continue;
      fmt->quant[v] (x, q, nb * QK);
      for (b = 0; b < nb; b++)
        {
          for (j = 0; j < QK / 16; j++)
            {
              int sum = 0;
              for (l = 0; l < 16; l++)
                sum += q[b].qs[16 * j + l];
              g_assert_cmpint (q[b].bsums[j], ==, sum);
            }
          /* the first value of largest magnitude maps to -127 exactly */
          g_assert_true (memchr (q[b].qs, (uint8_t) -127, QK) != NULL);
        }
    }
  g_free (x);
  g_free (q);
}

/* ---- dot products ----------------------------------------------------- */

/* Double dot of the dequantized rows, and sum |x_i y_i| for the tolerance. */
static double
dot_double (const KFormat *fmt,
            const uint8_t *qx,
            const uint8_t *qy,
            int            n,
            double        *abs_sum)
{
  float *x = g_new (float, n);
  float *y = g_new (float, n);
  double s = 0, a = 0;
  int i;

  fmt->dequant[V_REF] (qx, x, n);
  format_q8_K ()->dequant[V_REF] (qy, y, n);
  for (i = 0; i < n; i++)
    {
      s += (double) x[i] * y[i];
      a += fabs ((double) x[i] * y[i]);
    }
  g_free (x);
  g_free (y);
  *abs_sum = a;
  return s;
}

/* The kernels' integer sums are exact; what is left is float rounding of a
 * few products and of one accumulation per block (d * sumi, dmin * summ,
 * |each| <~ 2-3 x sum |x_i y_i| for these inputs) and, against the double
 * dot, of the dequantized values: a few 1e-7 relative to sum |x_i y_i|.
 * 2e-5 leaves a margin of ~30x without hiding a wrong sub-block (one
 * sub-block of 16 is ~6% of a 256-value block's sum). */
#define DOT_REL_TOL 2e-5

static void
test_dot (gconstpointer data)
{
  const Case *c = data;
  const KFormat *fmt = c->fmt;
  const KFormat *q8 = format_q8_K ();
  static const int nbs[] = { 1, 2, 3, 5, 8, 16 };
  gsize t;

  if (skip_unless_isa (c->variant))
    return;
  for (t = 0; t < G_N_ELEMENTS (nbs); t++)
    {
      const int nb = nbs[t], n = nb * QK;
      uint8_t *base_x, *base_y;
      uint8_t *qx = buffer_at (&base_x, nb * fmt->block_bytes, t % 4);
      uint8_t *qy = buffer_at (&base_y, nb * q8->block_bytes, (3 * t) % 5);
      float *x = g_new (float, n);
      float *y = g_new (float, n);
      int kind;

      for (kind = 0; kind < 3; kind++)
        {
          double ref_d, abs_sum;
          float got, ref;

          switch (kind)
            {
            case 0:   /* quantized normal rows */
              gaussian (x, n, 11 + t);
              gaussian (y, n, 21 + t);
              fmt->quant[V_REF] (x, qx, n);
              q8->quant[V_REF] (y, qy, n);
              break;
            case 1:   /* the ggml-hash input against normal activations */
              lcg_input (x, nb);
              gaussian (y, n, 31 + t);
              fmt->quant[V_REF] (x, qx, n);
              q8->quant[V_REF] (y, qy, n);
              break;
            default:  /* every bit pattern: random blocks on both sides */
              random_blocks (fmt, qx, nb, 41 + t);
              random_blocks (q8, qy, nb, 51 + t);
              break;
            }
          ref_d = dot_double (fmt, qx, qy, n, &abs_sum);
          ref = fmt->dot[V_REF] (n, qx, qy);
          got = fmt->dot[c->variant] (n, qx, qy);
          g_assert_true (isfinite (got));
          g_assert_cmpfloat (fabs (ref - ref_d), <=, DOT_REL_TOL * abs_sum + 1e-30);
          g_assert_cmpfloat (fabs (got - (double) ref), <=, DOT_REL_TOL * abs_sum + 1e-30);
          /* The VNNI dot promises the AVX2 one's bits. */
          if (c->variant == V_AVX512)
            g_assert_cmpfloat (got, ==, fmt->dot[V_AVX2] (n, qx, qy));
        }
      g_free (x);
      g_free (y);
      g_free (base_x);
      g_free (base_y);
    }
}

int
main (int   argc,
      char *argv[])
{
  static const char *const vnames[N_VARIANTS] = { "ref", "avx2", "neon", "avx512" };
  static Case cases[G_N_ELEMENTS (formats)][N_VARIANTS];
  gsize f;
  int v;

  g_test_init (&argc, &argv, NULL);
  rk_cpu_init ();

  for (f = 0; f < G_N_ELEMENTS (formats); f++)
    {
      const KFormat *fmt = &formats[f];
      char *path;

      path = g_strdup_printf ("/kernels/%s/quantize/ggml-identical", fmt->name);
      g_test_add_data_func (path, fmt, test_ggml_identical);
      g_free (path);
      path = g_strdup_printf ("/kernels/%s/roundtrip-error", fmt->name);
      g_test_add_data_func (path, fmt, test_roundtrip);
      g_free (path);

      for (v = 0; v < N_VARIANTS; v++)
        {
          cases[f][v].fmt = fmt;
          cases[f][v].variant = v;
          if (v != V_REF && v != V_AVX512)
            {
              path = g_strdup_printf ("/kernels/%s/quantize/%s", fmt->name, vnames[v]);
              g_test_add_data_func (path, &cases[f][v], test_quantize_simd);
              g_free (path);
              path = g_strdup_printf ("/kernels/%s/dequantize/%s", fmt->name, vnames[v]);
              g_test_add_data_func (path, &cases[f][v], test_dequantize_simd);
              g_free (path);
            }
          if (fmt->dot[V_REF] != NULL && (v != V_AVX512 || fmt->dot[v] != NULL))
            {
              path = g_strdup_printf ("/kernels/%s/dot-q8_K/%s", fmt->name, vnames[v]);
              g_test_add_data_func (path, &cases[f][v], test_dot);
              g_free (path);
            }
        }
    }
  g_test_add_func ("/kernels/q8_K/bsums", test_q8_K_bsums);

  return g_test_run ();
}
