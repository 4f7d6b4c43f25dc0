/* f32.c — float dot product, scalar reference.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy.h"

/* Accumulates in double (as ggml's ggml_float), so the reference is the most
 * accurate of the variants, not merely the slowest. */
float
rk_vec_dot_f32_f32_ref (int n, const void *vx, const void *vy)
{
  const float *x = vx;
  const float *y = vy;
  double sum = 0.0;

  for (int i = 0; i < n; i++)
    sum += (double) (x[i] * y[i]);
  return (float) sum;
}
