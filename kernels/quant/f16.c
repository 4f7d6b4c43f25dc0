/* f16.c — IEEE half rows: conversion both ways and the f16·f16 dot, scalar reference.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy.h"

void
rk_quantize_row_f16_ref (const float *x, void *vy, int64_t k)
{
  rk_fp16 *y = vy;

  for (int64_t i = 0; i < k; i++)
    y[i] = rk_fp32_to_fp16 (x[i]);
}

void
rk_dequantize_row_f16_ref (const void *vx, float *y, int64_t k)
{
  const rk_fp16 *x = vx;

  for (int64_t i = 0; i < k; i++)
    y[i] = rk_fp16_to_fp32 (x[i]);
}

/* The product of two halves is exact in float (11 + 11 significant bits); the
 * sum is kept in double. */
float
rk_vec_dot_f16_f16_ref (int n, const void *vx, const void *vy)
{
  const rk_fp16 *x = vx;
  const rk_fp16 *y = vy;
  double sum = 0.0;

  for (int i = 0; i < n; i++)
    sum += (double) (rk_fp16_to_fp32 (x[i]) * rk_fp16_to_fp32 (y[i]));
  return (float) sum;
}
