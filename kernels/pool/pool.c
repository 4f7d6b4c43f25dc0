/* pool.c — persistent worker threads for row-parallel kernels.
 * SPDX-License-Identifier: MIT
 *
 * One job at a time is published by bumping `gen` (a generation counter)
 * after the job's fields are written. Workers that finished the previous job
 * spin on `gen` for a short while (SPIN_NS) with a pause instruction, so the
 * many small operations of one forward pass do not each pay a futex wake-up;
 * after that they sleep on a condition variable, so an idle app burns no CPU.
 * Rows are handed out in chunks by one atomic fetch-add on `next`; the caller
 * claims chunks too and then waits (spin, then sleep) until every worker has
 * checked in through `pending`.
 *
 * Lost wake-ups are avoided Dekker-style: a sleeper first announces itself
 * (`n_sleeping`, `caller_sleeping`) and then re-checks the condition under
 * the mutex; the waker changes the condition and then reads the announcement,
 * both sequentially consistent, so at least one of the two sees the other.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "rk-pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause ()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__ ("yield" ::: "memory")
#else
#define cpu_relax() do { } while (0)
#endif

/* How long an idle thread keeps spinning before it sleeps: long enough to
 * bridge the single-threaded glue between two kernels of a forward pass. */
#define SPIN_NS 100000
/* Pauses between two reads of the clock while spinning. */
#define SPIN_CHECK 64
/* Chunks per thread a job is cut into when min_chunk allows it: small
 * enough to even out a slow thread, large enough that the atomic is rare. */
#define CHUNKS_PER_THREAD 4

struct rk_pool
{
  int             n_threads;
  pthread_t      *threads;         /* n_threads - 1 workers */
  int             n_started;

  pthread_mutex_t submit_lock;     /* one job at a time, from any thread */

  pthread_mutex_t lock;            /* guards sleeping and wake-ups */
  pthread_cond_t  wake_cv;         /* workers wait here for a new gen */
  pthread_cond_t  done_cv;         /* the caller waits here for pending == 0 */

  /* The job, written by the caller before gen is bumped. */
  rk_range_fn     fn;
  void           *ctx;
  int64_t         n;
  int64_t         chunk;

  _Alignas (64) atomic_uint    gen;
  _Alignas (64) atomic_llong   next;     /* first unclaimed row */
  _Alignas (64) atomic_int     pending;  /* workers yet to finish this gen */
  atomic_int     n_sleeping;
  atomic_int     caller_sleeping;
  atomic_bool    stop;
};

typedef struct
{
  rk_pool *pool;
  int      index;
} worker_arg;

/* Index of the calling thread inside a running job, or -1 outside any job:
 * a parallel_for issued from inside a job runs inline on this index. */
static _Thread_local int tl_job_index = -1;

static int64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
run_chunks (rk_pool *pool,
            int      index)
{
  int64_t n = pool->n;
  int64_t chunk = pool->chunk;
  int64_t begin;

  tl_job_index = index;
  for (;;)
    {
      begin = atomic_fetch_add_explicit (&pool->next, chunk, memory_order_relaxed);
      if (begin >= n)
        break;
      pool->fn (pool->ctx, begin, begin + chunk < n ? begin + chunk : n, index);
    }
  tl_job_index = -1;
}

/* Spins until gen differs from `seen` or the spin budget is spent. */
static bool
spin_for_gen (rk_pool *pool,
              unsigned seen)
{
  int64_t t0 = now_ns ();
  int i;

  for (;;)
    {
      for (i = 0; i < SPIN_CHECK; i++)
        {
          if (atomic_load_explicit (&pool->gen, memory_order_acquire) != seen)
            return true;
          cpu_relax ();
        }
      if (now_ns () - t0 > SPIN_NS)
        return false;
      /* With more threads than free cores, the thread we wait for may be
       * waiting for this core. */
      sched_yield ();
    }
}

static void *
worker_main (void *data)
{
  worker_arg *arg = data;
  rk_pool *pool = arg->pool;
  int index = arg->index;
  unsigned seen = 0;

  free (arg);
  for (;;)
    {
      if (!spin_for_gen (pool, seen))
        {
          pthread_mutex_lock (&pool->lock);
          atomic_fetch_add (&pool->n_sleeping, 1);
          while (atomic_load (&pool->gen) == seen)
            pthread_cond_wait (&pool->wake_cv, &pool->lock);
          atomic_fetch_sub (&pool->n_sleeping, 1);
          pthread_mutex_unlock (&pool->lock);
        }
      seen = atomic_load_explicit (&pool->gen, memory_order_acquire);
      if (atomic_load (&pool->stop))
        break;

      run_chunks (pool, index);

      if (atomic_fetch_sub (&pool->pending, 1) == 1 && atomic_load (&pool->caller_sleeping))
        {
          pthread_mutex_lock (&pool->lock);
          pthread_cond_signal (&pool->done_cv);
          pthread_mutex_unlock (&pool->lock);
        }
    }
  return NULL;
}

/* Publishes a new generation and wakes sleepers (under the lock, so that a
 * worker between its check and its wait cannot miss it). */
static void
publish (rk_pool *pool)
{
  atomic_fetch_add (&pool->gen, 1);
  if (atomic_load (&pool->n_sleeping) > 0)
    {
      pthread_mutex_lock (&pool->lock);
      pthread_cond_broadcast (&pool->wake_cv);
      pthread_mutex_unlock (&pool->lock);
    }
}

static void
wait_done (rk_pool *pool)
{
  int64_t t0 = now_ns ();
  int i;

  for (;;)
    {
      for (i = 0; i < SPIN_CHECK; i++)
        {
          if (atomic_load_explicit (&pool->pending, memory_order_acquire) == 0)
            return;
          cpu_relax ();
        }
      if (now_ns () - t0 > SPIN_NS)
        break;
      sched_yield ();
    }

  pthread_mutex_lock (&pool->lock);
  atomic_store (&pool->caller_sleeping, 1);
  while (atomic_load (&pool->pending) != 0)
    pthread_cond_wait (&pool->done_cv, &pool->lock);
  atomic_store (&pool->caller_sleeping, 0);
  pthread_mutex_unlock (&pool->lock);
}

static int
online_cpus (void)
{
  long n = sysconf (_SC_NPROCESSORS_ONLN);

  if (n < 1)
    return 1;
  if (n > 256)
    return 256;
  return (int) n;
}

static void
stop_workers (rk_pool *pool)
{
  int i;

  atomic_store (&pool->stop, true);
  publish (pool);
  for (i = 0; i < pool->n_started; i++)
    pthread_join (pool->threads[i], NULL);
  pool->n_started = 0;
}

rk_pool *
rk_pool_new (int n_threads)
{
  rk_pool *pool;
  int i;

  if (n_threads <= 0)
    n_threads = online_cpus ();

  pool = calloc (1, sizeof *pool);
  if (pool == NULL)
    return NULL;
  pool->n_threads = n_threads;
  pthread_mutex_init (&pool->submit_lock, NULL);
  pthread_mutex_init (&pool->lock, NULL);
  pthread_cond_init (&pool->wake_cv, NULL);
  pthread_cond_init (&pool->done_cv, NULL);
  atomic_init (&pool->gen, 0);
  atomic_init (&pool->next, 0);
  atomic_init (&pool->pending, 0);
  atomic_init (&pool->n_sleeping, 0);
  atomic_init (&pool->caller_sleeping, 0);
  atomic_init (&pool->stop, false);

  if (n_threads > 1)
    {
      pool->threads = calloc ((size_t) (n_threads - 1), sizeof (pthread_t));
      if (pool->threads == NULL)
        goto fail;
    }
  for (i = 1; i < n_threads; i++)
    {
      worker_arg *arg = malloc (sizeof *arg);

      if (arg == NULL)
        goto fail;
      arg->pool = pool;
      arg->index = i;
      if (pthread_create (&pool->threads[i - 1], NULL, worker_main, arg) != 0)
        {
          free (arg);
          goto fail;
        }
      pool->n_started++;
    }
  return pool;

fail:
  rk_pool_free (pool);
  return NULL;
}

void
rk_pool_free (rk_pool *pool)
{
  if (pool == NULL)
    return;
  pthread_mutex_lock (&pool->submit_lock);
  stop_workers (pool);
  pthread_mutex_unlock (&pool->submit_lock);
  free (pool->threads);
  pthread_cond_destroy (&pool->done_cv);
  pthread_cond_destroy (&pool->wake_cv);
  pthread_mutex_destroy (&pool->lock);
  pthread_mutex_destroy (&pool->submit_lock);
  free (pool);
}

int
rk_pool_n_threads (const rk_pool *pool)
{
  return pool != NULL ? pool->n_threads : 1;
}

void
rk_pool_parallel_for (rk_pool     *pool,
                      int64_t      n,
                      int64_t      min_chunk,
                      rk_range_fn  fn,
                      void        *ctx)
{
  int nt = rk_pool_n_threads (pool);
  int64_t chunk;

  if (n <= 0)
    return;
  if (min_chunk < 1)
    min_chunk = 1;

  /* Inline: no pool, one thread, a job too small to share, or a call from
   * inside a job (its thread index stays valid for per-thread scratch). */
  if (tl_job_index >= 0)
    {
      fn (ctx, 0, n, tl_job_index < nt ? tl_job_index : 0);
      return;
    }
  if (nt == 1 || n <= min_chunk)
    {
      tl_job_index = 0;
      fn (ctx, 0, n, 0);
      tl_job_index = -1;
      return;
    }

  chunk = (n + (int64_t) nt * CHUNKS_PER_THREAD - 1) / ((int64_t) nt * CHUNKS_PER_THREAD);
  if (chunk < min_chunk)
    chunk = min_chunk;

  pthread_mutex_lock (&pool->submit_lock);
  pool->fn = fn;
  pool->ctx = ctx;
  pool->n = n;
  pool->chunk = chunk;
  atomic_store_explicit (&pool->next, 0, memory_order_relaxed);
  atomic_store_explicit (&pool->pending, nt - 1, memory_order_relaxed);
  publish (pool);

  run_chunks (pool, 0);
  wait_done (pool);
  pthread_mutex_unlock (&pool->submit_lock);
}
