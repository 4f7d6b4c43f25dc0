/* bf16.c — bfloat16 rows: conversion both ways and the bf16·bf16 dot, scalar reference.
 * SPDX-License-Identifier: MIT
 */
#include "quant-legacy.h"

void
rk_quantize_row_bf16_ref (const float *x, void *vy, int64_t k)
{
  rk_bf16 *y = vy;

  for (int64_t i = 0; i < k; i++)
    y[i] = rk_fp32_to_bf16 (x[i]);
}

void
rk_dequantize_row_bf16_ref (const void *vx, float *y, int64_t k)
{
  const rk_bf16 *x = vx;

  for (int64_t i = 0; i < k; i++)
    y[i] = rk_bf16_to_fp32 (x[i]);
}

/* Products of two bfloat16s are exact in float (8 + 8 significant bits). */
float
rk_vec_dot_bf16_bf16_ref (int n, const void *vx, const void *vy)
{
  const rk_bf16 *x = vx;
  const rk_bf16 *y = vy;
  double sum = 0.0;

  for (int i = 0; i < n; i++)
    sum += (double) (rk_bf16_to_fp32 (x[i]) * rk_bf16_to_fp32 (y[i]));
  return (float) sum;
}
