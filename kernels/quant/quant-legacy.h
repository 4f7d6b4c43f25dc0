/* quant-legacy.h — private helpers of the float and legacy (Q4_0..Q8_1) kernels.
 * SPDX-License-Identifier: MIT
 *
 * Blocks are 18, 20, 22, 24, 34 or 36 bytes, so inside a mapped GGUF row they
 * sit at any byte address. The kernels therefore never dereference a block
 * pointer: they copy a block (or one field) out with memcpy, which compiles to
 * plain unaligned loads.
 */
#pragma once

#include <math.h>
#include <string.h>

#include "rk-quant.h"

#define RK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RK_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Half at an arbitrary address, as float. */
static inline float
rk_load_fp16 (const uint8_t *p)
{
  rk_fp16 h;

  memcpy (&h, p, sizeof h);
  return rk_fp16_to_fp32 (h);
}

static inline uint32_t
rk_load_u32 (const uint8_t *p)
{
  uint32_t v;

  memcpy (&v, p, sizeof v);
  return v;
}
