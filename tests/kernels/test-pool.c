/* test-pool.c — rk_pool: coverage, nesting, thread indices, lifetime.
 * SPDX-License-Identifier: MIT
 */
#include <glib.h>
#include <stdatomic.h>
#include <string.h>

#include "rk-pool.h"

/* Counts visits per index; also checks that ranges are non-empty and in
 * bounds and that thread_index is in range. */
typedef struct
{
  atomic_int *visits;
  int64_t     n;
  int         n_threads;
  atomic_int  bad;
  atomic_int  calls;
} visit_ctx;

static void
visit_fn (void    *data,
          int64_t  begin,
          int64_t  end,
          int      thread_index)
{
  visit_ctx *c = data;
  int64_t i;

  atomic_fetch_add (&c->calls, 1);
  if (begin < 0 || end > c->n || begin >= end || thread_index < 0
      || thread_index >= c->n_threads)
    {
      atomic_fetch_add (&c->bad, 1);
      return;
    }
  for (i = begin; i < end; i++)
    atomic_fetch_add (&c->visits[i], 1);
}

static void
check_cover (rk_pool *pool,
             int64_t  n,
             int64_t  min_chunk)
{
  visit_ctx c;
  int64_t i;

  memset (&c, 0, sizeof c);
  c.visits = g_new0 (atomic_int, n > 0 ? n : 1);
  c.n = n;
  c.n_threads = rk_pool_n_threads (pool);
  rk_pool_parallel_for (pool, n, min_chunk, visit_fn, &c);
  g_assert_cmpint (atomic_load (&c.bad), ==, 0);
  for (i = 0; i < n; i++)
    if (atomic_load (&c.visits[i]) != 1)
      g_error ("n=%" G_GINT64_FORMAT " min_chunk=%" G_GINT64_FORMAT " threads=%d: "
               "index %" G_GINT64_FORMAT " visited %d times",
               n, min_chunk, c.n_threads, i, atomic_load (&c.visits[i]));
  if (n <= 0)
    g_assert_cmpint (atomic_load (&c.calls), ==, 0);
  g_free (c.visits);
}

static void
test_cover (void)
{
  static const int64_t ns[] = { 0, 1, 2, 3, 7, 31, 64, 100, 1000, 4097, 65536 };
  static const int64_t chunks[] = { 0, 1, 2, 3, 16, 64, 1000, 100000 };
  static const int threads[] = { 1, 2, 3, 4, 8 };
  guint t, i, j;

  for (t = 0; t < G_N_ELEMENTS (threads); t++)
    {
      rk_pool *pool = rk_pool_new (threads[t]);

      g_assert_nonnull (pool);
      g_assert_cmpint (rk_pool_n_threads (pool), ==, threads[t]);
      for (i = 0; i < G_N_ELEMENTS (ns); i++)
        for (j = 0; j < G_N_ELEMENTS (chunks); j++)
          check_cover (pool, ns[i], chunks[j]);
      rk_pool_free (pool);
    }
  /* NULL pool runs inline. */
  for (i = 0; i < G_N_ELEMENTS (ns); i++)
    check_cover (NULL, ns[i], 4);
}

/* min_chunk is honoured: every range but the last is at least min_chunk. */
typedef struct
{
  int64_t    n;
  int64_t    min_chunk;
  atomic_int short_ranges;
} chunk_ctx;

static void
chunk_fn (void    *data,
          int64_t  begin,
          int64_t  end,
          int      thread_index)
{
  chunk_ctx *c = data;

  if (end - begin < c->min_chunk && end != c->n)
    atomic_fetch_add (&c->short_ranges, 1);
}

static void
test_min_chunk (void)
{
  rk_pool *pool = rk_pool_new (4);
  int64_t mc;

  for (mc = 1; mc < 200; mc += 13)
    {
      chunk_ctx c = { 1000, mc, 0 };

      rk_pool_parallel_for (pool, c.n, c.min_chunk, chunk_fn, &c);
      g_assert_cmpint (atomic_load (&c.short_ranges), ==, 0);
    }
  rk_pool_free (pool);
}

/* A job that itself calls parallel_for on the same pool: must run inline,
 * keep the outer thread index and not deadlock. */
typedef struct
{
  rk_pool   *pool;
  atomic_int *visits;       /* outer n x inner n */
  int64_t    inner_n;
  atomic_int bad;
  int        outer_index;   /* thread index seen by the enclosing range */
} nest_ctx;

typedef struct
{
  nest_ctx *outer;
  int64_t   row;
  int       expect_index;
} inner_ctx;

static void
inner_fn (void    *data,
          int64_t  begin,
          int64_t  end,
          int      thread_index)
{
  inner_ctx *ic = data;
  int64_t i;

  if (thread_index != ic->expect_index)
    atomic_fetch_add (&ic->outer->bad, 1);
  for (i = begin; i < end; i++)
    atomic_fetch_add (&ic->outer->visits[ic->row * ic->outer->inner_n + i], 1);
}

static void
outer_fn (void    *data,
          int64_t  begin,
          int64_t  end,
          int      thread_index)
{
  nest_ctx *c = data;
  int64_t r;

  for (r = begin; r < end; r++)
    {
      inner_ctx ic = { c, r, thread_index };

      rk_pool_parallel_for (c->pool, c->inner_n, 1, inner_fn, &ic);
    }
}

static void
test_nested (void)
{
  const int64_t outer_n = 64, inner_n = 50;
  nest_ctx c;
  int64_t i;
  int t;

  for (t = 1; t <= 4; t++)
    {
      memset (&c, 0, sizeof c);
      c.pool = rk_pool_new (t);
      c.inner_n = inner_n;
      c.visits = g_new0 (atomic_int, outer_n * inner_n);
      rk_pool_parallel_for (c.pool, outer_n, 1, outer_fn, &c);
      g_assert_cmpint (atomic_load (&c.bad), ==, 0);
      for (i = 0; i < outer_n * inner_n; i++)
        g_assert_cmpint (atomic_load (&c.visits[i]), ==, 1);
      g_free (c.visits);
      rk_pool_free (c.pool);
    }
}

/* Many short jobs back to back: exercises the spin/sleep hand-over. */
typedef struct
{
  atomic_llong sum;
} sum_ctx;

static void
sum_fn (void    *data,
        int64_t  begin,
        int64_t  end,
        int      thread_index)
{
  sum_ctx *c = data;
  int64_t s = 0, i;

  for (i = begin; i < end; i++)
    s += i;
  atomic_fetch_add (&c->sum, s);
}

static void
test_back_to_back (void)
{
  int t, k;

  for (t = 2; t <= 4; t++)
    {
      rk_pool *pool = rk_pool_new (t);

      for (k = 0; k < 20000; k++)
        {
          sum_ctx c;
          int64_t n = 1 + k % 97;

          atomic_init (&c.sum, 0);
          rk_pool_parallel_for (pool, n, 1, sum_fn, &c);
          g_assert_cmpint (atomic_load (&c.sum), ==, n * (n - 1) / 2);
          /* Now and then let the workers fall asleep between jobs. */
          if (k % 5000 == 4999)
            g_usleep (2000);
        }
      rk_pool_free (pool);
    }
}

/* Per-thread scratch by thread_index: no two threads share an index within
 * one call (a range writes its index, then checks nobody else wrote it). */
typedef struct
{
  atomic_int owner[64];
  atomic_int bad;
} owner_ctx;

static void
owner_fn (void    *data,
          int64_t  begin,
          int64_t  end,
          int      thread_index)
{
  owner_ctx *c = data;
  int expected = 0;

  /* Claim the slot; a different thread holding it at the same time would be
   * a shared index. */
  if (!atomic_compare_exchange_strong (&c->owner[thread_index], &expected, 1))
    atomic_fetch_add (&c->bad, 1);
  g_usleep (50);
  atomic_store (&c->owner[thread_index], 0);
}

static void
test_thread_index (void)
{
  rk_pool *pool = rk_pool_new (4);
  owner_ctx c;
  int k;

  memset (&c, 0, sizeof c);
  for (k = 0; k < 20; k++)
    rk_pool_parallel_for (pool, 256, 1, owner_fn, &c);
  g_assert_cmpint (atomic_load (&c.bad), ==, 0);
  rk_pool_free (pool);
}

static void
test_lifetime (void)
{
  rk_pool *pool;
  int k;

  /* Free right after creation, and free while workers sleep. */
  for (k = 0; k < 20; k++)
    rk_pool_free (rk_pool_new (1 + k % 5));
  pool = rk_pool_new (3);
  check_cover (pool, 100, 1);
  g_usleep (20000);
  rk_pool_free (pool);
  /* Free while workers are still spinning after a job. */
  pool = rk_pool_new (3);
  check_cover (pool, 100, 1);
  rk_pool_free (pool);
  rk_pool_free (NULL);
  g_assert_cmpint (rk_pool_n_threads (NULL), ==, 1);

  /* n_threads <= 0 picks the online CPUs. */
  pool = rk_pool_new (0);
  g_assert_nonnull (pool);
  g_assert_cmpint (rk_pool_n_threads (pool), >=, 1);
  check_cover (pool, 1000, 1);
  rk_pool_free (pool);
}

/* Two outside threads submitting to one pool at once are serialised. */
typedef struct
{
  rk_pool *pool;
  gboolean ok;
} submit_arg;

static gpointer
submit_thread (gpointer data)
{
  submit_arg *a = data;
  int k;

  a->ok = TRUE;
  for (k = 0; k < 2000; k++)
    {
      sum_ctx c;

      atomic_init (&c.sum, 0);
      rk_pool_parallel_for (a->pool, 500, 1, sum_fn, &c);
      if (atomic_load (&c.sum) != 500 * 499 / 2)
        a->ok = FALSE;
    }
  return NULL;
}

static void
test_concurrent_submit (void)
{
  rk_pool *pool = rk_pool_new (3);
  submit_arg a = { pool, FALSE }, b = { pool, FALSE };
  GThread *ta = g_thread_new ("submit-a", submit_thread, &a);
  GThread *tb = g_thread_new ("submit-b", submit_thread, &b);

  g_thread_join (ta);
  g_thread_join (tb);
  g_assert_true (a.ok);
  g_assert_true (b.ok);
  rk_pool_free (pool);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/kernels/pool/cover", test_cover);
  g_test_add_func ("/kernels/pool/min-chunk", test_min_chunk);
  g_test_add_func ("/kernels/pool/nested", test_nested);
  g_test_add_func ("/kernels/pool/back-to-back", test_back_to_back);
  g_test_add_func ("/kernels/pool/thread-index", test_thread_index);
  g_test_add_func ("/kernels/pool/lifetime", test_lifetime);
  g_test_add_func ("/kernels/pool/concurrent-submit", test_concurrent_submit);
  return g_test_run ();
}
