/* test-quant-legacy.c — float and legacy (Q4_0..Q8_1) kernels: every SIMD variant
 * against _ref, _ref against exact arithmetic, and _ref against ggml's bytes.
 * SPDX-License-Identifier: MIT
 */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "rk-cpu.h"
#include "rk-quant.h"
#include "quant-legacy-input.h"

typedef void  (*QuantFn)   (const float *x, void *y, int64_t k);
typedef void  (*DequantFn) (const void *x, float *y, int64_t k);
typedef float (*DotFn)     (int n, const void *x, const void *y);

enum { V_REF, V_AVX2, V_NEON, N_VARIANTS };

static const char *variant_names[N_VARIANTS] = { "ref", "avx2", "neon" };
static const rk_isa variant_isa[N_VARIANTS] = { RK_ISA_REF, RK_ISA_AVX2, RK_ISA_NEON };

/* Only the variants this architecture compiles can be named. */
#if defined(RK_HAVE_AVX2)
#define AVX2_OF(f) f##_avx2
#else
#define AVX2_OF(f) NULL
#endif
#if defined(RK_HAVE_NEON)
#define NEON_OF(f) f##_neon
#else
#define NEON_OF(f) NULL
#endif
#define VARIANTS(f) { f##_ref, AVX2_OF (f), NEON_OF (f) }

/* ---------------------------------------------------------------------------
 * Deterministic randomness: xorshift64*, seeded per test. */

static uint64_t rng_state;

static void
rng_seed (uint64_t seed)
{
  rng_state = seed * UINT64_C (0x9E3779B97F4A7C15) + 1;
}

static uint64_t
rng_u64 (void)
{
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * UINT64_C (0x2545F4914F6CDD1D);
}

/* Uniform in [-1, 1). */
static float
rng_unit (void)
{
  return (float) ((int64_t) (rng_u64 () >> 40) - (1 << 23)) * 0x1p-23f;
}

/* A row of n floats in blocks of 32 whose magnitudes differ per block, with an
 * occasional outlier and an occasional all-zero block. Magnitudes stay below
 * 2^3 * 40, so Q8_1's s = d * sum (q) (<= 32 amax) is a finite half. */
static void
fill_row (float *x, int n)
{
  for (int b = 0; b < n / 32; b++)
    {
      const int kind = (int) (rng_u64 () % 16);
      const float scale = ldexpf (1.0f, (int) (rng_u64 () % 16) - 12);

      for (int j = 0; j < 32; j++)
        x[b * 32 + j] = kind == 0 ? 0.0f : rng_unit () * scale;
      if (kind == 1)
        x[b * 32 + (int) (rng_u64 () % 32)] *= 40.0f;
      if (kind == 2)
        for (int j = 0; j < 32; j++)
          x[b * 32 + j] = fabsf (x[b * 32 + j]) + scale;
    }
}

/* Buffers that start `offset` bytes past a 64-byte boundary. */
static void *
alloc_at (size_t size, size_t offset, void **base)
{
  *base = g_malloc0 (size + 128);
  return (uint8_t *) (((uintptr_t) *base + 63) & ~(uintptr_t) 63) + offset;
}

static gboolean
skip_unless (int v)
{
  if (!rk_cpu_has_isa (variant_isa[v]))
    {
      g_test_skip ("this CPU or build has no such ISA");
      return TRUE;
    }
  return FALSE;
}

static uint16_t
load_u16 (const uint8_t *p)
{
  uint16_t v;

  memcpy (&v, p, sizeof v);
  return v;
}

/* ---------------------------------------------------------------------------
 * The legacy block formats, decoded here independently of the kernels. */

typedef struct
{
  const char *name;
  size_t      block_bytes;
  int         offset;       /* w = d * (q - offset) (+ m when affine) */
  gboolean    affine;       /* has m (Q4_1, Q5_1) */
  gboolean    has_sum;      /* has s (Q8_1) */
  int         code_max;     /* largest code */
  int         act;          /* index of the activation format in `formats` */
  QuantFn     quantize[N_VARIANTS];
  DequantFn   dequantize[N_VARIANTS];
  DotFn       dot[N_VARIANTS];
  /* SHA-256 of ggml's quantize_row_<fmt>_ref on ql_fill_input (), from
   * tests/kernels/gen-quant-legacy-ggml.c linked against the refharness
   * libggml-base.so (llama.cpp v0.4.0, commit 5b4ebc5); the numpy ports of
   * refharness gen/gguflib.py give the same digests for all but Q8_1. */
  const char *ggml_sha256;
} QFormat;

enum { F_Q4_0, F_Q4_1, F_Q5_0, F_Q5_1, F_Q8_0, F_Q8_1, N_FORMATS };

static const QFormat formats[N_FORMATS] = {
  { "q4_0", 18, 8, FALSE, FALSE, 15, F_Q8_0,
    VARIANTS (rk_quantize_row_q4_0), VARIANTS (rk_dequantize_row_q4_0),
    VARIANTS (rk_vec_dot_q4_0_q8_0),
    "b1cb851740a2b4c07e861b6b671ace1b7f5d9a2baa308aeec596f5e95ac9a309" },
  { "q4_1", 20, 0, TRUE, FALSE, 15, F_Q8_1,
    VARIANTS (rk_quantize_row_q4_1), VARIANTS (rk_dequantize_row_q4_1),
    VARIANTS (rk_vec_dot_q4_1_q8_1),
    "4a8a64885292bae3e57610318aecff680b91c7ac3b75fa311fef78b43f085f14" },
  { "q5_0", 22, 16, FALSE, FALSE, 31, F_Q8_0,
    VARIANTS (rk_quantize_row_q5_0), VARIANTS (rk_dequantize_row_q5_0),
    VARIANTS (rk_vec_dot_q5_0_q8_0),
    "836542b1efbc36029f21de02fea79af5891033313c7744071a9a2f11cfb80339" },
  { "q5_1", 24, 0, TRUE, FALSE, 31, F_Q8_1,
    VARIANTS (rk_quantize_row_q5_1), VARIANTS (rk_dequantize_row_q5_1),
    VARIANTS (rk_vec_dot_q5_1_q8_1),
    "be49ee5f35c35c8688245e6cf765b3572bb2148d35a8ebf6b15758b38863cefe" },
  { "q8_0", 34, 0, FALSE, FALSE, 127, F_Q8_0,
    VARIANTS (rk_quantize_row_q8_0), VARIANTS (rk_dequantize_row_q8_0),
    VARIANTS (rk_vec_dot_q8_0_q8_0),
    "6f5ad22883c5bcffacaadac86258cb9604bbd6e8832c52ebbea03cc6d2da0a9f" },
  { "q8_1", 36, 0, FALSE, TRUE, 127, F_Q8_1,
    VARIANTS (rk_quantize_row_q8_1), VARIANTS (rk_dequantize_row_q8_1),
    { NULL, NULL, NULL },
    "18e85ff081115ef58d62bfe33af13988ab5b4764c1f85c65065c08a82388ee76" },
};

typedef struct
{
  double d, m, s;     /* m = 0 unless affine; s only for Q8_1 */
  int    q[32];       /* codes minus offset: w = d * q + m */
} Decoded;

static void
decode_block (const QFormat *f, const uint8_t *b, Decoded *out)
{
  const size_t qs_at = f->block_bytes - (f->code_max == 127 ? 32 : 16);

  memset (out, 0, sizeof *out);
  out->d = rk_fp16_to_fp32 (load_u16 (b));
  if (f->affine)
    out->m = rk_fp16_to_fp32 (load_u16 (b + 2));
  if (f->has_sum)
    out->s = rk_fp16_to_fp32 (load_u16 (b + 2));
  for (int j = 0; j < 32; j++)
    {
      int code;

      if (f->code_max == 127)
        code = (int8_t) b[qs_at + j];
      else
        code = (b[qs_at + j % 16] >> (j < 16 ? 0 : 4)) & 0x0F;
      if (f->code_max == 31)
        code |= ((b[qs_at - 4 + j / 8] >> (j % 8)) & 1) << 4;
      out->q[j] = code - f->offset;
    }
}

/* Random but valid blocks for the dot tests: a quantized random row. */
static void
make_row (const QFormat *f, int n, uint8_t *dst)
{
  float *x = g_new (float, n);

  fill_row (x, n);
  f->quantize[V_REF] (x, dst, n);
  g_free (x);
}

typedef struct
{
  const QFormat *f;
  int            v;
} QCase;

/* Block counts: odd, even, one, and longer than any unrolling. */
static const int block_counts[] = { 1, 2, 3, 7, 8, 9, 16, 31, 64, 257 };

/* quantize_row_*_ref must produce ggml's bytes exactly. */
static void
test_quantize_ggml (gconstpointer data)
{
  const QFormat *f = data;
  float *x = g_new (float, QL_INPUT_N);
  uint8_t *y = g_malloc (QL_INPUT_BLOCKS * f->block_bytes);
  g_autofree char *sum = NULL;

  ql_fill_input (x);
  f->quantize[V_REF] (x, y, QL_INPUT_N);
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, y, QL_INPUT_BLOCKS * f->block_bytes);
  g_assert_cmpstr (sum, ==, f->ggml_sha256);
  g_free (x);
  g_free (y);
}

/* Q8 codes are roundf (x / d): ties go away from zero (as ggml; not to even).
 * With 127 in the block, d = id = 1 and x = k + 0.5 is an exact tie. Every
 * variant must agree with ggml here, the random rows almost never tie. */
static void
test_q8_ties (gconstpointer data)
{
  const QCase *c = data;
  const QFormat *f = c->f;
  float x[64];
  uint8_t y[2 * 36];

  if (skip_unless (c->v))
    return;
  for (int j = 0; j < 64; j++)
    x[j] = (float) (j % 32 - 16) + 0.5f;
  x[0] = 127.0f;
  x[32] = -127.0f;
  f->quantize[c->v] (x, y, 64);
  for (int b = 0; b < 2; b++)
    {
      Decoded dec;

      decode_block (f, y + b * f->block_bytes, &dec);
      g_assert_cmpfloat (dec.d, ==, 1.0);
      for (int j = 1; j < 32; j++)
        g_assert_cmpint (dec.q[j], ==, (int) copysign (floor (fabs (x[b * 32 + j]) + 0.5),
                                                       x[b * 32 + j]));
    }
}

/* Round trip through the reference, per element. With d and m the stored halves
 * and d' the float scale ggml computed (|d - d'| <= 2^-11 |d| + 2^-25, half
 * rounding incl. subnormals), an element whose code was rounded is within
 * |d| / 2 + |q| |d - d'| + |m - min| of x; the code clamped at the top (Q4_0,
 * Q5_0: the value of largest magnitude opposite in sign to `max`) within |d|.
 * Plus float slop of a few ulps of |x| + |d|. */
static void
test_roundtrip (gconstpointer data)
{
  const QFormat *f = data;
  const int n = 32 * 300;
  float *x = g_new (float, n);
  float *z = g_new (float, n);
  uint8_t *y = g_malloc ((size_t) (n / 32) * f->block_bytes);

  rng_seed (11);
  fill_row (x, n);
  f->quantize[V_REF] (x, y, n);
  f->dequantize[V_REF] (y, z, n);
  for (int b = 0; b < n / 32; b++)
    {
      Decoded dec;
      long qsum = 0;

      decode_block (f, y + b * f->block_bytes, &dec);
      for (int j = 0; j < 32; j++)
        {
          const double xv = x[b * 32 + j];
          const double hd = 0x1p-11 * fabs (dec.d) + 0x1p-25;
          const gboolean clamped = !f->affine && dec.q[j] == f->code_max - f->offset;
          double bound = (clamped ? 1.0 : 0.5) * fabs (dec.d) + abs (dec.q[j]) * hd
                         + 1e-6 * (fabs (xv) + fabs (dec.d));

          if (f->affine)
            bound += 0x1p-11 * fabs (dec.m) + 0x1p-25;
          if (fabs (z[b * 32 + j] - xv) > bound)
            g_error ("%s block %d elem %d: x %g back %g (d %g, m %g, q %d), bound %g",
                     f->name, b, j, xv, z[b * 32 + j], dec.d, dec.m, dec.q[j], bound);
          qsum += dec.q[j];
        }
      /* s = half (d' sum (q)): its own half rounding plus sum (q) times |d - d'|. */
      if (f->has_sum)
        g_assert_cmpfloat (fabs (dec.s - dec.d * qsum), <=,
                           0x1p-11 * fabs (dec.s) + 0x1p-25
                           + labs (qsum) * (0x1p-11 * fabs (dec.d) + 0x1p-25));
    }
  g_free (x);
  g_free (z);
  g_free (y);
}

/* The reference dequantizer is the decoded formula (exact for d * q; for
 * affine formats the one float rounding of q * d + m). */
static void
test_dequantize_ref (gconstpointer data)
{
  const QFormat *f = data;
  const int n = 32 * 64;
  uint8_t *y = g_malloc ((size_t) (n / 32) * f->block_bytes);
  float *z = g_new (float, n);

  rng_seed (12);
  make_row (f, n, y);
  f->dequantize[V_REF] (y, z, n);
  for (int b = 0; b < n / 32; b++)
    {
      Decoded dec;

      decode_block (f, y + b * f->block_bytes, &dec);
      for (int j = 0; j < 32; j++)
        g_assert_cmpfloat (z[b * 32 + j], ==, (float) ((float) (dec.q[j] * dec.d) + (float) dec.m));
    }
  g_free (y);
  g_free (z);
}

/* A SIMD quantizer is byte-identical to the reference, at any output address. */
static void
test_quantize_simd (gconstpointer data)
{
  const QCase *c = data;
  const QFormat *f = c->f;

  if (skip_unless (c->v))
    return;
  rng_seed (13);
  for (size_t t = 0; t < G_N_ELEMENTS (block_counts); t++)
    for (size_t off = 0; off < 2; off++)
      {
        const int n = 32 * block_counts[t];
        const size_t bytes = (size_t) block_counts[t] * f->block_bytes;
        float *x = g_new (float, n);
        void *b1, *b2;
        uint8_t *want = alloc_at (bytes, 0, &b1);
        uint8_t *got = alloc_at (bytes, off, &b2);

        fill_row (x, n);
        f->quantize[V_REF] (x, want, n);
        f->quantize[c->v] (x, got, n);
        g_assert_cmpmem (got, bytes, want, bytes);
        g_free (x);
        g_free (b1);
        g_free (b2);
      }
}

/* A SIMD dequantizer equals the reference; the affine formats may fuse
 * q * d + m into one rounding, so they may differ by an ulp of |q d| + |m|. */
static void
test_dequantize_simd (gconstpointer data)
{
  const QCase *c = data;
  const QFormat *f = c->f;

  if (skip_unless (c->v))
    return;
  rng_seed (14);
  for (size_t t = 0; t < G_N_ELEMENTS (block_counts); t++)
    {
      const int n = 32 * block_counts[t];
      void *base;
      uint8_t *y = alloc_at ((size_t) block_counts[t] * f->block_bytes, 1, &base);
      float *want = g_new (float, n);
      float *got = g_new (float, n);

      make_row (f, n, y);
      f->dequantize[V_REF] (y, want, n);
      f->dequantize[c->v] (y, got, n);
      for (int b = 0; b < block_counts[t]; b++)
        {
          Decoded dec;

          decode_block (f, y + b * f->block_bytes, &dec);
          for (int j = 0; j < 32; j++)
            {
              const double tol = f->affine
                                 ? 0x1p-23 * (fabs (dec.q[j] * dec.d) + fabs (dec.m)) : 0.0;

              g_assert_cmpfloat (fabs (got[b * 32 + j] - want[b * 32 + j]), <=, tol);
            }
        }
      g_free (base);
      g_free (want);
      g_free (got);
    }
}

/* Exact value of the dot of two rows (double, from the decoded blocks), the sum
 * of |products| (for error bounds: SIMD lanes hold partial sums up to that),
 * and how far the stored s of Q8_1 blocks is from d * sum (q), weighted by |m|:
 * the only approximation the reference makes besides float rounding. */
static void
exact_dot (const QFormat *fx, const uint8_t *x, const uint8_t *y, int nb,
           double *exact, double *mag, double *s_err)
{
  const QFormat *fy = &formats[fx->act];

  *exact = *mag = *s_err = 0.0;
  for (int b = 0; b < nb; b++)
    {
      Decoded dx, dy;
      double qq = 0.0, qy = 0.0, aqq = 0.0;

      decode_block (fx, x + b * fx->block_bytes, &dx);
      decode_block (fy, y + b * fy->block_bytes, &dy);
      for (int j = 0; j < 32; j++)
        {
          qq += (double) dx.q[j] * dy.q[j];
          aqq += fabs ((double) dx.q[j] * dy.q[j]);
          qy += dy.q[j];
        }
      *exact += dx.d * dy.d * qq + dx.m * dy.d * qy;
      *mag += fabs (dx.d * dy.d) * aqq + fabs (dx.m * dy.d * qy);
      if (fx->affine)
        *s_err += fabs (dx.m) * fabs (dy.s - dy.d * qy);
    }
}

/* _ref against the exact dot of the decoded rows: per block one rounding of
 * d_x d_y, one of the product, one of the sum, so (nb + 3) 2^-24 sum |terms|,
 * plus the Q8_1 s term's own half rounding. */
static void
test_dot_ref (gconstpointer data)
{
  const QFormat *f = data;
  const QFormat *fy = &formats[f->act];

  rng_seed (15);
  for (size_t t = 0; t < G_N_ELEMENTS (block_counts); t++)
    {
      const int nb = block_counts[t];
      uint8_t *x = g_malloc ((size_t) nb * f->block_bytes);
      uint8_t *y = g_malloc ((size_t) nb * fy->block_bytes);
      double exact, mag, s_err;
      float got;

      make_row (f, nb * 32, x);
      make_row (fy, nb * 32, y);
      exact_dot (f, x, y, nb, &exact, &mag, &s_err);
      got = f->dot[V_REF] (nb * 32, x, y);
      g_assert_cmpfloat (fabs (got - exact), <=, (nb + 3) * 0x1p-24 * mag + s_err + 1e-30);
      g_free (x);
      g_free (y);
    }
}

/* SIMD against _ref: integer block sums are exact in both; only the float
 * accumulation order differs. Both rows start one byte off any alignment. */
static void
test_dot_simd (gconstpointer data)
{
  const QCase *c = data;
  const QFormat *f = c->f;
  const QFormat *fy = &formats[f->act];

  if (skip_unless (c->v))
    return;
  rng_seed (16);
  for (size_t t = 0; t < G_N_ELEMENTS (block_counts); t++)
    for (size_t off = 0; off < 2; off++)
      {
        const int nb = block_counts[t];
        void *bx, *by;
        uint8_t *x = alloc_at ((size_t) nb * f->block_bytes, off, &bx);
        uint8_t *y = alloc_at ((size_t) nb * fy->block_bytes, off, &by);
        double exact, mag, s_err;
        float want, got;

        make_row (f, nb * 32, x);
        make_row (fy, nb * 32, y);
        exact_dot (f, x, y, nb, &exact, &mag, &s_err);
        want = f->dot[V_REF] (nb * 32, x, y);
        got = f->dot[c->v] (nb * 32, x, y);
        g_assert_cmpfloat (fabs (got - want), <=, (2 * nb + 8) * 0x1p-24 * (mag + s_err) + 1e-30);
        g_free (bx);
        g_free (by);
      }
}

/* Extreme codes: every weight at the code of largest magnitude against
 * activations of +-127 (the edge of maddubs' int16 pair sums). */
static void
test_dot_extremes (gconstpointer data)
{
  const QCase *c = data;
  const QFormat *f = c->f;
  const QFormat *fy = &formats[f->act];
  const int nb = 5;
  uint8_t *x = g_malloc0 ((size_t) nb * f->block_bytes);
  uint8_t *y = g_malloc0 ((size_t) nb * fy->block_bytes);
  const uint16_t one = 0x3C00;  /* 1.0 in half */

  if (skip_unless (c->v))
    goto out;
  for (int b = 0; b < nb; b++)
    {
      uint8_t *bx = x + b * f->block_bytes;
      uint8_t *by = y + b * fy->block_bytes;

      memcpy (bx, &one, 2);
      if (f->affine)
        memcpy (bx + 2, &one, 2);
      /* All code bits zero or all one: q4_0 -8 / +7, q5_0 -16 / +15, q8_0 0 / -1. */
      memset (bx + (f->affine ? 4 : 2), b % 2 ? 0xFF : 0x00,
              f->block_bytes - (f->affine ? 4 : 2));
      if (f->code_max == 127)
        memset (bx + 2, b % 2 ? 0x81 : 0x7F, 32);  /* -127 / 127 */
      memcpy (by, &one, 2);
      for (int j = 0; j < 32; j++)
        by[fy->block_bytes - 32 + j] = (uint8_t) (int8_t) ((j + b) % 3 == 0 ? -127 : 127);
      if (fy->has_sum)
        {
          Decoded dy;
          int sum = 0;
          uint16_t s;

          decode_block (fy, by, &dy);
          for (int j = 0; j < 32; j++)
            sum += dy.q[j];
          s = rk_fp32_to_fp16 ((float) sum);
          memcpy (by + 2, &s, 2);
        }
    }
  g_assert_cmpfloat (f->dot[c->v] (nb * 32, x, y), ==, f->dot[V_REF] (nb * 32, x, y));
out:
  g_free (x);
  g_free (y);
}

/* ---------------------------------------------------------------------------
 * Float formats. */

/* Float to half, rounded to nearest even, written from the definition: scale
 * |f| onto the grid of the half binade (or the subnormal grid) it lies in and
 * round the double with nearbyint (the default mode is ties-to-even). */
static uint16_t
half_from_definition (float f)
{
  const uint16_t sign = (rk_fp32_to_bits (f) >> 16) & 0x8000;
  const double a = fabs ((double) f);
  double quantum, v;
  int e;

  if (isnan (f))
    return sign | 0x7E00;
  if (a >= 65520.0)   /* 65504 + half an ulp rounds (to even) up to infinity */
    return sign | 0x7C00;
  frexp (a, &e);
  quantum = a < 0x1p-14 ? 0x1p-24 : ldexp (1.0, e - 1 - 10);
  v = nearbyint (a / quantum) * quantum;
  if (v < 0x1p-14)
    return sign | (uint16_t) (v / 0x1p-24);   /* 1024 here is 0x0400, the least normal */
  frexp (v, &e);
  return sign | (uint16_t) (((e - 1 + 15) << 10) | ((int) ldexp (v, 11 - e) - 1024));
}

/* Half to float from the definition. */
static double
half_value (uint16_t h)
{
  const int e = (h >> 10) & 0x1F;
  const int m = h & 0x3FF;
  const double s = (h & 0x8000) ? -1.0 : 1.0;

  if (e == 0)
    return s * ldexp (m, -24);
  if (e == 31)
    return m ? NAN : s * INFINITY;
  return s * ldexp (m + 1024, e - 25);
}

/* Float to bfloat16 from the definition (same exponent range as float). */
static uint16_t
bf16_from_definition (float f)
{
  const double a = fabs ((double) f);
  double quantum, v;
  int e;

  if (isnan (f))
    return (uint16_t) ((rk_fp32_to_bits (f) >> 16) | 64);
  if (isinf (f))
    return (uint16_t) (rk_fp32_to_bits (f) >> 16);
  frexp (a, &e);
  quantum = a < 0x1p-126 ? 0x1p-133 : ldexp (1.0, e - 1 - 7);
  v = nearbyint (a / quantum) * quantum;
  if (v >= 0x1p128)
    return (uint16_t) (((rk_fp32_to_bits (f) >> 16) & 0x8000) | 0x7F80);
  return (uint16_t) (rk_fp32_to_bits (copysignf ((float) v, f)) >> 16);
}

/* Floats that stress a 16-bit conversion: any bit pattern, values spread over
 * the half range (subnormals and overflow included), and exact midpoints
 * between neighbouring halves or bfloat16s (ties). */
static float
tricky_float (gboolean bf16)
{
  const uint64_t r = rng_u64 ();

  switch (r % 4)
    {
    case 0:
      return rk_bits_to_fp32 ((uint32_t) (r >> 32));
    case 1:
      return ldexpf (rng_unit (), (int) ((r >> 8) % 48) - 28);
    case 2:
      {
        const uint16_t h = (uint16_t) ((r >> 16) & 0x7BFE);  /* finite, below the max */
        const double mid = bf16 ? (rk_bf16_to_fp32 (h) + rk_bf16_to_fp32 (h + 1)) / 2
                                : (half_value (h) + half_value (h + 1)) / 2;

        return (float) (((r >> 40) & 1) ? -mid : mid);
      }
    default:
      return rk_bits_to_fp32 ((uint32_t) (r >> 32) & 0x87FFFFFF);  /* |x| < 2^-111 or so */
    }
}

static gboolean
same_or_both_nan_half (uint16_t a, uint16_t b)
{
  const gboolean na = (a & 0x7C00) == 0x7C00 && (a & 0x3FF);
  const gboolean nb = (b & 0x7C00) == 0x7C00 && (b & 0x3FF);

  return na || nb ? na && nb && (a & 0x8000) == (b & 0x8000) : a == b;
}

static void
test_f16_exhaustive (void)
{
  for (uint32_t h = 0; h < 65536; h++)
    {
      const float f = rk_fp16_to_fp32 ((rk_fp16) h);
      const double want = half_value ((uint16_t) h);

      if (isnan (want))
        {
          g_assert_true (isnan (f));
          g_assert_true (same_or_both_nan_half (rk_fp32_to_fp16 (f), (uint16_t) h));
          continue;
        }
      g_assert_cmpfloat (f, ==, want);
      g_assert_cmpuint (signbit (f) != 0, ==, (h & 0x8000) != 0);
      g_assert_cmphex (rk_fp32_to_fp16 (f), ==, h);
    }
}

static void
test_f16_rounding (void)
{
  rng_seed (21);
  for (int i = 0; i < 2000000; i++)
    {
      const float f = tricky_float (FALSE);
      const uint16_t want = half_from_definition (f);
      const uint16_t got = rk_fp32_to_fp16 (f);

      if (!same_or_both_nan_half (got, want))
        g_error ("fp32 %a: fp16 0x%04x, want 0x%04x", (double) f, got, want);
    }
}

static void
test_bf16_exhaustive (void)
{
  for (uint32_t h = 0; h < 65536; h++)
    {
      const float f = rk_bf16_to_fp32 ((rk_bf16) h);

      g_assert_cmphex (rk_fp32_to_bits (f), ==, h << 16);
      if (isnan (f))
        g_assert_cmphex (rk_fp32_to_bf16 (f), ==, h | 64);
      else
        g_assert_cmphex (rk_fp32_to_bf16 (f), ==, h);
    }
}

static void
test_bf16_rounding (void)
{
  rng_seed (22);
  for (int i = 0; i < 2000000; i++)
    {
      const float f = tricky_float (TRUE);
      const uint16_t want = bf16_from_definition (f);
      const uint16_t got = rk_fp32_to_bf16 (f);

      if (got != want)
        g_error ("fp32 %a: bf16 0x%04x, want 0x%04x", (double) f, got, want);
    }
}

typedef struct
{
  const char *name;
  size_t      elem;
  gboolean    bf16;
  QuantFn     quantize[N_VARIANTS];
  DequantFn   dequantize[N_VARIANTS];
  DotFn       dot[N_VARIANTS];
  const char *ggml_sha256;    /* as QFormat (ggml_fp32_to_fp16_row / _bf16_row_ref) */
} FFormat;

enum { FF_F32, FF_F16, FF_BF16, N_FFORMATS };

static const FFormat fformats[N_FFORMATS] = {
  { "f32", 4, FALSE, { NULL, NULL, NULL }, { NULL, NULL, NULL },
    VARIANTS (rk_vec_dot_f32_f32), NULL },
  { "f16", 2, FALSE, VARIANTS (rk_quantize_row_f16), VARIANTS (rk_dequantize_row_f16),
    VARIANTS (rk_vec_dot_f16_f16),
    "01054263a73c265a12a95f0d5423a77976696ad2e98014693f68a5c7768bbb17" },
  { "bf16", 2, TRUE, VARIANTS (rk_quantize_row_bf16), VARIANTS (rk_dequantize_row_bf16),
    VARIANTS (rk_vec_dot_bf16_bf16),
    "01dbeb9641e2cbfb2eaaa72c743c2c3ffa04b178a3d858581390a28331054d17" },
};

typedef struct
{
  const FFormat *f;
  int            v;
} FCase;

static void
test_float_ggml (gconstpointer data)
{
  const FFormat *f = data;
  float *x = g_new (float, QL_INPUT_N);
  uint16_t *y = g_new (uint16_t, QL_INPUT_N);
  g_autofree char *sum = NULL;

  ql_fill_input (x);
  f->quantize[V_REF] (x, y, QL_INPUT_N);
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) y,
                                     QL_INPUT_N * sizeof *y);
  g_assert_cmpstr (sum, ==, f->ggml_sha256);
  g_free (x);
  g_free (y);
}

/* SIMD conversions equal the scalar ones: float -> 16 bits on tricky floats
 * (any NaN for a NaN in F16C/fcvt, which keep payload bits), and 16 bits ->
 * float on all 65536 patterns; lengths with every tail. */
static void
test_float_convert_simd (gconstpointer data)
{
  const FCase *c = data;
  const FFormat *f = c->f;
  const int n = 65536 + 13;
  float *x = g_new (float, n);
  uint16_t *want = g_new (uint16_t, n);
  uint16_t *got = g_new (uint16_t, n);
  float *back_want = g_new (float, n);
  float *back_got = g_new (float, n);

  if (skip_unless (c->v))
    goto out;
  rng_seed (23);
  for (int i = 0; i < n; i++)
    x[i] = tricky_float (f->bf16);
  for (int len = 0; len < 40; len++)
    {
      f->quantize[V_REF] (x + 1, want + 1, len);
      f->quantize[c->v] (x + 1, got + 1, len);
      for (int i = 1; i <= len; i++)
        g_assert_true (f->bf16 ? got[i] == want[i] : same_or_both_nan_half (got[i], want[i]));
    }
  f->quantize[V_REF] (x, want, n);
  f->quantize[c->v] (x, got, n);
  for (int i = 0; i < n; i++)
    if (f->bf16 ? got[i] != want[i] : !same_or_both_nan_half (got[i], want[i]))
      g_error ("%s %a: 0x%04x, want 0x%04x", f->name, (double) x[i], got[i], want[i]);

  for (int i = 0; i < n; i++)
    want[i] = (uint16_t) i;
  f->dequantize[V_REF] (want + 1, back_want, n - 1);
  f->dequantize[c->v] (want + 1, back_got, n - 1);
  for (int i = 0; i < n - 1; i++)
    {
      if (isnan (back_want[i]))
        g_assert_true (isnan (back_got[i]));
      else
        g_assert_cmphex (rk_fp32_to_bits (back_got[i]), ==, rk_fp32_to_bits (back_want[i]));
    }
out:
  g_free (x);
  g_free (want);
  g_free (got);
  g_free (back_want);
  g_free (back_got);
}

/* Rows of random values stored in the format, in a buffer as floats for f32. */
static void
make_float_row (const FFormat *f, int n, void *dst)
{
  float *x = g_new (float, n);

  for (int i = 0; i < n; i++)
    x[i] = rng_unit () * ldexpf (1.0f, (int) (rng_u64 () % 8) - 4);
  if (n == 0)   /* g_new () gave NULL, which memcpy must not see */
    ;
  else if (f->elem == 4)
    memcpy (dst, x, (size_t) n * sizeof *x);
  else
    f->quantize[V_REF] (x, dst, n);
  g_free (x);
}

static double
float_elem (const FFormat *f, const void *row, int i)
{
  if (f->elem == 4)
    return ((const float *) row)[i];
  return f->bf16 ? rk_bf16_to_fp32 (((const uint16_t *) row)[i])
                 : rk_fp16_to_fp32 (((const uint16_t *) row)[i]);
}

static const int float_lengths[] = { 0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 100, 257,
                                     1000, 4099 };

/* _ref accumulates in double: within 2^-24 of the exact sum (one final rounding
 * plus, for f32, the per-product float rounding and the double sum). Variants
 * accumulate in float lanes: within (n/8 + 8) 2^-24 sum |x y| of _ref. The
 * SIMD rows start one element past a 32-byte boundary. */
static void
test_float_dot (gconstpointer data)
{
  const FCase *c = data;
  const FFormat *f = c->f;

  if (skip_unless (c->v))
    return;
  rng_seed (24);
  for (size_t t = 0; t < G_N_ELEMENTS (float_lengths); t++)
    {
      const int n = float_lengths[t];
      void *bx, *by;
      uint8_t *x = alloc_at ((size_t) n * f->elem, f->elem, &bx);
      uint8_t *y = alloc_at ((size_t) n * f->elem, f->elem, &by);
      double exact = 0.0, mag = 0.0;
      float want, got;

      make_float_row (f, n, x);
      make_float_row (f, n, y);
      for (int i = 0; i < n; i++)
        {
          exact += float_elem (f, x, i) * float_elem (f, y, i);
          mag += fabs (float_elem (f, x, i) * float_elem (f, y, i));
        }
      want = f->dot[V_REF] (n, x, y);
      g_assert_cmpfloat (fabs (want - exact), <=, 0x1p-24 * fabs (exact) + 0x1p-24 * mag + 1e-30);
      if (c->v != V_REF)
        {
          got = f->dot[c->v] (n, x, y);
          g_assert_cmpfloat (fabs (got - want), <=, (n / 8 + 8) * 0x1p-24 * mag + 1e-30);
        }
      g_free (bx);
      g_free (by);
    }
}

/* ---------------------------------------------------------------------------
 * Registration: /kernels/<format>/<what>/<variant>. */

int
main (int argc, char **argv)
{
  static QCase qcases[N_FORMATS][N_VARIANTS];
  static FCase fcases[N_FFORMATS][N_VARIANTS];

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/kernels/f16/convert/exhaustive", test_f16_exhaustive);
  g_test_add_func ("/kernels/f16/convert/rounding", test_f16_rounding);
  g_test_add_func ("/kernels/bf16/convert/exhaustive", test_bf16_exhaustive);
  g_test_add_func ("/kernels/bf16/convert/rounding", test_bf16_rounding);

  for (int i = 0; i < N_FFORMATS; i++)
    {
      const FFormat *f = &fformats[i];
      char *path;

      if (f->ggml_sha256 != NULL)
        {
          path = g_strdup_printf ("/kernels/%s/quantize/ggml-sha256", f->name);
          g_test_add_data_func (path, f, test_float_ggml);
          g_free (path);
        }
      for (int v = 0; v < N_VARIANTS; v++)
        {
          fcases[i][v].f = f;
          fcases[i][v].v = v;
          path = g_strdup_printf ("/kernels/%s/dot/%s", f->name, variant_names[v]);
          g_test_add_data_func (path, &fcases[i][v], test_float_dot);
          g_free (path);
          if (v != V_REF && f->quantize[V_REF] != NULL)
            {
              path = g_strdup_printf ("/kernels/%s/convert/%s", f->name, variant_names[v]);
              g_test_add_data_func (path, &fcases[i][v], test_float_convert_simd);
              g_free (path);
            }
        }
    }

  for (int i = 0; i < N_FORMATS; i++)
    {
      const QFormat *f = &formats[i];
      char *path;

      path = g_strdup_printf ("/kernels/%s/quantize/ggml-sha256", f->name);
      g_test_add_data_func (path, f, test_quantize_ggml);
      g_free (path);
      if (f->code_max == 127)
        for (int v = 0; v < N_VARIANTS; v++)
          {
            qcases[i][v].f = f;
            qcases[i][v].v = v;
            path = g_strdup_printf ("/kernels/%s/quantize/ties-%s", f->name, variant_names[v]);
            g_test_add_data_func (path, &qcases[i][v], test_q8_ties);
            g_free (path);
          }
      path = g_strdup_printf ("/kernels/%s/roundtrip/ref", f->name);
      g_test_add_data_func (path, f, test_roundtrip);
      g_free (path);
      path = g_strdup_printf ("/kernels/%s/dequantize/ref", f->name);
      g_test_add_data_func (path, f, test_dequantize_ref);
      g_free (path);
      if (f->dot[V_REF] != NULL)
        {
          path = g_strdup_printf ("/kernels/%s/dot-%s/ref", f->name, formats[f->act].name);
          g_test_add_data_func (path, f, test_dot_ref);
          g_free (path);
        }
      for (int v = V_AVX2; v < N_VARIANTS; v++)
        {
          qcases[i][v].f = f;
          qcases[i][v].v = v;
          path = g_strdup_printf ("/kernels/%s/quantize/%s", f->name, variant_names[v]);
          g_test_add_data_func (path, &qcases[i][v], test_quantize_simd);
          g_free (path);
          path = g_strdup_printf ("/kernels/%s/dequantize/%s", f->name, variant_names[v]);
          g_test_add_data_func (path, &qcases[i][v], test_dequantize_simd);
          g_free (path);
          if (f->dot[V_REF] != NULL)
            {
              path = g_strdup_printf ("/kernels/%s/dot-%s/%s", f->name, formats[f->act].name,
                                      variant_names[v]);
              g_test_add_data_func (path, &qcases[i][v], test_dot_simd);
              g_free (path);
              path = g_strdup_printf ("/kernels/%s/dot-%s/%s-extremes", f->name,
                                      formats[f->act].name, variant_names[v]);
              g_test_add_data_func (path, &qcases[i][v], test_dot_extremes);
              g_free (path);
            }
        }
    }
  return g_test_run ();
}
