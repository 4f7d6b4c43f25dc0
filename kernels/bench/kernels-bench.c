/* kernels-bench.c — throughput of the hot kernels: memory bandwidth, matvec
 * (decode), matmul (prefill) per weight format, and decode attention.
 * SPDX-License-Identifier: MIT
 *
 * Not a test: prints numbers. Every figure is the median of several short
 * runs. Matvec rotates over enough copies of the matrix (>= ROTATE_BYTES)
 * that weights come from memory, not from the last-level cache, and reports
 * GB/s of weights read, also as % of the streaming-read bandwidth measured
 * here with the same thread count.
 *
 *   kernels-bench [--threads 1,2] [--format q4_K] [--json] [--quick]
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rk-attention.h"
#include "rk-cpu.h"
#include "rk-matmul.h"
#include "rk-pool.h"
#include "rk-types.h"

#define BW_BYTES      (256u << 20)
#define ROTATE_BYTES  (160u << 20)
#define MAX_THREADS   8
#define MAX_RUNS      15

static const rk_type bench_types[] = {
  RK_TYPE_F32,  RK_TYPE_F16,  RK_TYPE_BF16, RK_TYPE_Q8_0, RK_TYPE_Q4_0, RK_TYPE_Q4_1,
  RK_TYPE_Q5_0, RK_TYPE_Q5_1, RK_TYPE_Q4_K, RK_TYPE_Q5_K, RK_TYPE_Q6_K,
};

static int json_output;
static int json_first = 1;

static double
now_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static int
cmp_double (const void *a,
            const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static double
median (double *v,
        int     n)
{
  qsort (v, (size_t) n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint32_t rng_state = 12345;

static float
rng_float (void)
{
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float) ((rng_state >> 8) & 0xffffff) / (float) 0x800000 - 1.0f;
}

/* One result line (or JSON object). value2 < 0 means "no percentage". */
static void
report (const char *what,
        const char *format,
        int         threads,
        const char *shape,
        double      value,
        const char *unit,
        double      pct)
{
  if (json_output)
    {
      printf ("%s\n  {\"bench\": \"%s\", \"format\": \"%s\", \"threads\": %d, "
              "\"shape\": \"%s\", \"value\": %.3f, \"unit\": \"%s\"",
              json_first ? "[" : ",", what, format, threads, shape, value, unit);
      if (pct >= 0)
        printf (", \"pct_of_bandwidth\": %.1f", pct);
      printf ("}");
      json_first = 0;
    }
  else
    {
      printf ("%-10s %-6s %2d thr  %-22s %10.2f %-8s", what, format, threads, shape, value,
              unit);
      if (pct >= 0)
        printf ("  (%5.1f%% of read bw)", pct);
      printf ("\n");
    }
  fflush (stdout);
}

/* --- memory bandwidth ------------------------------------------------ */

typedef struct
{
  const uint64_t *buf;
  uint64_t        sums[256 * 8];   /* one cache line per thread */
} bw_job;

/* Rows of 4 KiB; eight independent accumulators so the loads, not the adds,
 * are the limit. */
#define BW_ROW (4096 / sizeof (uint64_t))

static void
bw_range (void    *data,
          int64_t  begin,
          int64_t  end,
          int      thread_index)
{
  bw_job *j = data;
  const uint64_t *p = j->buf + begin * BW_ROW;
  const uint64_t *e = j->buf + end * BW_ROW;
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;

  for (; p < e; p += 8)
    {
      a0 += p[0]; a1 += p[1]; a2 += p[2]; a3 += p[3];
      a4 += p[4]; a5 += p[5]; a6 += p[6]; a7 += p[7];
    }
  j->sums[thread_index * 8] += a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

static double
measure_bandwidth (rk_pool *pool,
                   int      runs)
{
  bw_job j;
  uint64_t *buf = malloc (BW_BYTES);
  double t[MAX_RUNS];
  size_t i;
  int r;

  if (buf == NULL)
    return 0.0;
  for (i = 0; i < BW_BYTES / sizeof *buf; i++)
    buf[i] = i;
  memset (&j, 0, sizeof j);
  j.buf = buf;
  for (r = 0; r <= runs; r++)
    {
      double t0 = now_s ();

      rk_pool_parallel_for (pool, BW_BYTES / 4096, 64, bw_range, &j);
      if (r > 0)
        t[r - 1] = now_s () - t0;
    }
  free (buf);
  return (double) BW_BYTES / median (t, runs) / 1e9;
}

/* --- matvec and matmul ----------------------------------------------- */

/* A matrix of n_out x n_in in `type`: a few distinct quantized rows repeated
 * (the values do not matter for speed, quantizing millions is slow). */
static uint8_t *
make_matrix (rk_type type,
             int64_t n_out,
             int64_t n_in,
             size_t  copies)
{
  const rk_type_traits *tr = rk_get_traits (type);
  size_t rs = rk_row_size (type, n_in);
  size_t mat = rs * (size_t) n_out;
  uint8_t *w = malloc (mat * copies);
  float *f = malloc ((size_t) n_in * sizeof (float));
  int64_t r, i;
  size_t c;

  if (w == NULL || f == NULL)
    {
      free (w);
      free (f);
      return NULL;
    }
  for (r = 0; r < n_out; r++)
    {
      if (r < 16)
        {
          for (i = 0; i < n_in; i++)
            f[i] = rng_float ();
          tr->from_float (f, w + (size_t) r * rs, n_in);
        }
      else
        memcpy (w + (size_t) r * rs, w + (size_t) (r % 16) * rs, rs);
    }
  for (c = 1; c < copies; c++)
    memcpy (w + c * mat, w, mat);
  free (f);
  return w;
}

static void
bench_matvec (rk_pool    *pool,
              rk_type     type,
              int64_t     n_out,
              int64_t     n_in,
              int         runs,
              double      bw)
{
  const rk_type_traits *tr = rk_get_traits (type);
  size_t rs = rk_row_size (type, n_in);
  size_t mat = rs * (size_t) n_out;
  size_t copies = (ROTATE_BYTES + mat - 1) / mat;
  uint8_t *w = make_matrix (type, n_out, n_in, copies);
  float *x = malloc ((size_t) n_in * sizeof (float));
  float *y = malloc ((size_t) n_out * sizeof (float));
  void *xq = malloc (rk_matmul_scratch_size (type, n_in, 1));
  double t[MAX_RUNS], gbs;
  char shape[64];
  int64_t i;
  int r;

  if (w == NULL || x == NULL || y == NULL || xq == NULL)
    goto out;
  for (i = 0; i < n_in; i++)
    x[i] = rng_float ();
  rk_quantize_rows (pool, tr->vec_dot_type, x, n_in, n_in, 1, xq);
  /* Each timed run multiplies every copy once (so the data is cold). */
  for (r = 0; r <= runs; r++)
    {
      double t0 = now_s ();
      size_t c;

      for (c = 0; c < copies; c++)
        rk_matmul_prequant (pool, type, w + c * mat, rs, n_out, n_in, xq, 1, y, n_out);
      if (r > 0)
        t[r - 1] = (now_s () - t0) / (double) copies;
    }
  gbs = (double) mat / median (t, runs) / 1e9;
  snprintf (shape, sizeof shape, "%" PRId64 "x%" PRId64, n_out, n_in);
  report ("matvec", rk_type_name (type), rk_pool_n_threads (pool), shape, gbs, "GB/s",
          bw > 0 ? 100.0 * gbs / bw : -1.0);
out:
  free (w);
  free (x);
  free (y);
  free (xq);
}

static void
bench_matmul (rk_pool *pool,
              rk_type  type,
              int64_t  n_out,
              int64_t  n_in,
              int64_t  n_tok,
              int      runs)
{
  size_t rs = rk_row_size (type, n_in);
  uint8_t *w = make_matrix (type, n_out, n_in, 1);
  float *x = malloc ((size_t) (n_in * n_tok) * sizeof (float));
  float *y = malloc ((size_t) (n_out * n_tok) * sizeof (float));
  void *scratch = malloc (rk_matmul_scratch_size (type, n_in, n_tok));
  double t[MAX_RUNS], tm;
  char shape[64];
  int64_t i;
  int r;

  if (w == NULL || x == NULL || y == NULL || scratch == NULL)
    goto out;
  for (i = 0; i < n_in * n_tok; i++)
    x[i] = rng_float ();
  for (r = 0; r <= runs; r++)
    {
      double t0 = now_s ();

      rk_matmul (pool, type, w, rs, n_out, n_in, x, n_in, n_tok, y, n_out, scratch);
      if (r > 0)
        t[r - 1] = now_s () - t0;
    }
  tm = median (t, runs);
  snprintf (shape, sizeof shape, "%" PRId64 "x%" PRId64 " x%" PRId64 "tok", n_out, n_in,
            n_tok);
  report ("matmul", rk_type_name (type), rk_pool_n_threads (pool), shape,
          2.0 * (double) (n_out * n_in * n_tok) / tm / 1e9, "GFLOP/s", -1.0);
out:
  free (w);
  free (x);
  free (y);
  free (scratch);
}

/* --- attention -------------------------------------------------------- */

static void
bench_attention (rk_pool *pool,
                 int64_t  kv_len,
                 int      runs)
{
  rk_attention_config cfg = { 14, 2, 64, true, 0.0f };
  int64_t kv_stride = (int64_t) cfg.num_kv_heads * cfg.head_dim;
  size_t kv_floats = (size_t) (kv_len * kv_stride);
  float *q = malloc ((size_t) cfg.num_heads * cfg.head_dim * sizeof (float));
  float *k = malloc (kv_floats * sizeof (float));
  float *v = malloc (kv_floats * sizeof (float));
  float *out = malloc ((size_t) cfg.num_heads * cfg.head_dim * sizeof (float));
  double t[MAX_RUNS], tm;
  char shape[64];
  size_t i;
  int r, reps = (int) (4096 * 16 / kv_len) + 1, k_rep;

  if (q == NULL || k == NULL || v == NULL || out == NULL)
    goto out;
  for (i = 0; i < (size_t) cfg.num_heads * cfg.head_dim; i++)
    q[i] = rng_float ();
  for (i = 0; i < kv_floats; i++)
    {
      k[i] = rng_float ();
      v[i] = rng_float ();
    }
  for (r = 0; r <= runs; r++)
    {
      double t0 = now_s ();

      for (k_rep = 0; k_rep < reps; k_rep++)
        rk_grouped_query_attention (pool, &cfg, q, 1, kv_len - 1, k, v, kv_len, kv_stride,
                                    out);
      if (r > 0)
        t[r - 1] = (now_s () - t0) / reps;
    }
  tm = median (t, runs);
  snprintf (shape, sizeof shape, "14h/2kv d64 kv%" PRId64, kv_len);
  report ("attn-dec", "f32", rk_pool_n_threads (pool), shape, tm * 1e6, "us/tok", -1.0);
  report ("attn-dec", "f32", rk_pool_n_threads (pool), shape,
          2.0 * (double) kv_floats * sizeof (float) / tm / 1e9, "GB/s KV", -1.0);
out:
  free (q);
  free (k);
  free (v);
  free (out);
}

static void
usage (void)
{
  fprintf (stderr,
           "usage: kernels-bench [--threads LIST] [--format NAME] [--json] [--quick]\n"
           "  --threads LIST  comma-separated thread counts (default 1,2)\n"
           "  --format NAME   one weight format (f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1\n"
           "                  q4_K q5_K q6_K); default all\n"
           "  --json          JSON array instead of a table\n"
           "  --quick         fewer runs\n");
}

int
main (int argc, char **argv)
{
  int threads[MAX_THREADS], n_threads = 0;
  const char *format = NULL;
  int quick = 0, runs_mv, runs_mm, a, ti;
  size_t f;
  int64_t kvs[] = { 512, 2048, 4096 };

  for (a = 1; a < argc; a++)
    {
      if (strcmp (argv[a], "--threads") == 0 && a + 1 < argc)
        {
          char *s = argv[++a], *end;

          while (*s != '\0' && n_threads < MAX_THREADS)
            {
              long v = strtol (s, &end, 10);

              if (end == s || v < 1 || v > 256)
                {
                  usage ();
                  return 2;
                }
              threads[n_threads++] = (int) v;
              s = *end == ',' ? end + 1 : end;
              if (*end != ',' && *end != '\0')
                {
                  usage ();
                  return 2;
                }
            }
        }
      else if (strcmp (argv[a], "--format") == 0 && a + 1 < argc)
        format = argv[++a];
      else if (strcmp (argv[a], "--json") == 0)
        json_output = 1;
      else if (strcmp (argv[a], "--quick") == 0)
        quick = 1;
      else
        {
          usage ();
          return strcmp (argv[a], "--help") == 0 ? 0 : 2;
        }
    }
  if (n_threads == 0)
    {
      threads[0] = 1;
      threads[1] = 2;
      n_threads = 2;
    }
  runs_mv = quick ? 3 : 7;
  runs_mm = quick ? 1 : 3;

  rk_cpu_init ();
  if (!json_output)
    printf ("# kernels-bench: isa %s%s\n", rk_isa_name (rk_cpu_isa ()),
            rk_cpu_isa () == RK_ISA_AVX2 && rk_cpu_use_avx512_vnni ()
            ? " (+avx512 vnni gemm)" : "");

  for (ti = 0; ti < n_threads; ti++)
    {
      rk_pool *pool = rk_pool_new (threads[ti]);
      double bw;

      if (pool == NULL)
        {
          fprintf (stderr, "cannot create a pool of %d threads\n", threads[ti]);
          return 1;
        }
      bw = measure_bandwidth (pool, quick ? 3 : 5);
      report ("read-bw", "-", threads[ti], "256MiB stream", bw, "GB/s", -1.0);

      for (f = 0; f < sizeof bench_types / sizeof bench_types[0]; f++)
        {
          rk_type type = bench_types[f];
          const rk_type_traits *tr = rk_get_traits (type);

          if (format != NULL && strcmp (format, rk_type_name (type)) != 0)
            continue;
          if (tr == NULL || tr->vec_dot == NULL || tr->from_float == NULL)
            continue;
          bench_matvec (pool, type, 4096, 4096, runs_mv, bw);
          if (rk_type_block_size (type) == 256)
            bench_matvec (pool, type, 16384, 2048, runs_mv, bw);
          bench_matmul (pool, type, 4864, 1024, 128, runs_mm);
        }
      if (format == NULL)
        {
          size_t k;

          for (k = 0; k < sizeof kvs / sizeof kvs[0]; k++)
            bench_attention (pool, kvs[k], runs_mv);
        }
      rk_pool_free (pool);
    }
  if (json_output)
    printf ("%s\n]\n", json_first ? "[" : "");
  return 0;
}
