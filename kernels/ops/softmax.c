/* softmax.c — in-place softmax over one row (reference and dispatch).
 * SPDX-License-Identifier: MIT
 *
 * Masked entries are -INFINITY and come out as exactly 0. A row that is all
 * -INFINITY (nothing visible) comes out all 0 and returns 0 instead of NaN.
 * The reference sums the exponentials in double (ggml_float in ggml).
 */
#include <math.h>

#include "rk-cpu.h"
#include "rk-ops.h"

float
rk_softmax_ref (float *x,
                int    n)
{
  float max = -INFINITY;
  double sum = 0.0;
  float inv;
  int i;

  for (i = 0; i < n; i++)
    if (x[i] > max)
      max = x[i];

  if (max == -INFINITY)
    {
      for (i = 0; i < n; i++)
        x[i] = 0.0f;
      return 0.0f;
    }

  for (i = 0; i < n; i++)
    {
      x[i] = expf (x[i] - max);
      sum += x[i];
    }

  inv = (float) (1.0 / sum);
  for (i = 0; i < n; i++)
    x[i] *= inv;
  return (float) sum;
}

float
rk_exp_sum_ref (float *x,
                int    n,
                float  m)
{
  float sum = 0.0f;
  int i;

  for (i = 0; i < n; i++)
    {
      x[i] = expf (x[i] - m);
      sum += x[i];
    }
  return sum;
}

float
rk_exp_sum (float *x,
            int    n,
            float  m)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    return rk_exp_sum_avx2 (x, n, m);
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    return rk_exp_sum_neon (x, n, m);
#endif
  return rk_exp_sum_ref (x, n, m);
}

float
rk_softmax (float *x,
            int    n)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    return rk_softmax_avx2 (x, n);
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    return rk_softmax_neon (x, n);
#endif
  return rk_softmax_ref (x, n);
}
