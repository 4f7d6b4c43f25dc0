/* rk-pool.h — a small thread pool for row-parallel kernels.
 * SPDX-License-Identifier: MIT
 *
 * Persistent workers that sleep when idle (a desktop app must not burn a
 * core doing nothing) but spin briefly between the operations of one forward
 * pass. The calling thread takes part; rows are claimed in chunks with one
 * atomic add; small jobs and jobs issued from inside a job run inline.
 */
#pragma once

#include <stdint.h>

typedef struct rk_pool rk_pool;

/* fn processes rows [begin, end). thread_index is in 0..n_threads-1 and is
 * stable within one call, so a job may use per-thread scratch. */
typedef void (*rk_range_fn) (void   *ctx,
                             int64_t begin,
                             int64_t end,
                             int     thread_index);

/* n_threads counts the caller; 1 means no workers. <= 0 picks the number of
 * online CPUs. Returns NULL only if threads cannot be created. */
rk_pool *rk_pool_new          (int          n_threads);
void     rk_pool_free         (rk_pool     *pool);
int      rk_pool_n_threads    (const rk_pool *pool);
/* Runs fn over [0, n) split in chunks of at least min_chunk rows, and returns
 * when all are done. pool may be NULL (runs inline). */
void     rk_pool_parallel_for (rk_pool     *pool,
                               int64_t      n,
                               int64_t      min_chunk,
                               rk_range_fn  fn,
                               void        *ctx);
