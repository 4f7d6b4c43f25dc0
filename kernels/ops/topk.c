/* topk.c — argmax and top-k selection over a row of logits.
 * SPDX-License-Identifier: MIT
 *
 * Ties always go to the lower index, so greedy decoding and top-k sampling
 * are deterministic. Inputs must not contain NaN (-INFINITY is fine).
 */
#include <stddef.h>

#include "rk-cpu.h"
#include "rk-ops.h"

int
rk_argmax_ref (const float *x,
               int          n)
{
  int best = 0;
  int i;

  for (i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return best;
}

int
rk_argmax (const float *x,
           int          n)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    return rk_argmax_avx2 (x, n);
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    return rk_argmax_neon (x, n);
#endif
  return rk_argmax_ref (x, n);
}

/* a ranks before b: larger value, or the same value and a lower index */
static inline int
ranks_before (const float *x,
              int32_t      a,
              int32_t      b)
{
  return x[a] > x[b] || (x[a] == x[b] && a < b);
}

/* Restore the heap below `root`: heap[0] is the entry that ranks last. */
static void
sift_down (const float *x,
           int32_t     *heap,
           int          size,
           int          root)
{
  for (;;)
    {
      int child = 2 * root + 1;
      int32_t t;

      if (child >= size)
        return;
      if (child + 1 < size && ranks_before (x, heap[child], heap[child + 1]))
        child++;
      if (!ranks_before (x, heap[root], heap[child]))
        return;
      t = heap[root];
      heap[root] = heap[child];
      heap[child] = t;
      root = child;
    }
}

/* A heap of the k best seen so far, kept in idx with the worst at the top:
 * each of the n values costs one comparison, plus O(log k) when it enters.
 * Then heap sort: popping the worst to the back leaves idx best-first. */
void
rk_top_k (const float *x,
          int          n,
          int          k,
          int32_t     *idx,
          float       *val)
{
  int i, size;

  if (k <= 0)
    return;
  if (k > n)
    k = n;

  for (i = 0; i < k; i++)
    idx[i] = i;
  for (i = k / 2 - 1; i >= 0; i--)
    sift_down (x, idx, k, i);

  for (i = k; i < n; i++)
    if (x[i] > x[idx[0]])   /* equal values never displace: they have a higher index */
      {
        idx[0] = i;
        sift_down (x, idx, k, 0);
      }

  for (size = k; size > 1; size--)
    {
      int32_t t = idx[0];

      idx[0] = idx[size - 1];
      idx[size - 1] = t;
      sift_down (x, idx, size - 1, 0);
    }

  if (val != NULL)
    for (i = 0; i < k; i++)
      val[i] = x[idx[i]];
}
