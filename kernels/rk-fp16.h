/* rk-fp16.h — exact IEEE half and bfloat16 conversions (scalar, header only).
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <stdint.h>
#include <string.h>

typedef uint16_t rk_fp16;
typedef uint16_t rk_bf16;

static inline float
rk_bits_to_fp32 (uint32_t bits)
{
  float f;
  memcpy (&f, &bits, sizeof f);
  return f;
}

static inline uint32_t
rk_fp32_to_bits (float f)
{
  uint32_t bits;
  memcpy (&bits, &f, sizeof bits);
  return bits;
}

/* Half to float, exact for every input including subnormals, inf and NaN
 * (the method of Maratyszcza's FP16 library, as ggml uses). */
static inline float
rk_fp16_to_fp32 (rk_fp16 h)
{
  const uint32_t w = (uint32_t) h << 16;
  const uint32_t sign = w & UINT32_C (0x80000000);
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = UINT32_C (0xE0) << 23;
  const float exp_scale = 0x1.0p-112f;
  const float normalized = rk_bits_to_fp32 ((two_w >> 4) + exp_offset) * exp_scale;
  const uint32_t magic_mask = UINT32_C (126) << 23;
  const float magic_bias = 0.5f;
  const float denormalized = rk_bits_to_fp32 ((two_w >> 17) | magic_mask) - magic_bias;
  const uint32_t denormalized_cutoff = UINT32_C (1) << 27;
  const uint32_t result = sign | (two_w < denormalized_cutoff
                                  ? rk_fp32_to_bits (denormalized)
                                  : rk_fp32_to_bits (normalized));
  return rk_bits_to_fp32 (result);
}

/* Float to half with round-to-nearest-even, overflow to inf, NaN kept NaN. */
static inline rk_fp16
rk_fp32_to_fp16 (float f)
{
  const float scale_to_inf = 0x1.0p+112f;
  const float scale_to_zero = 0x1.0p-110f;
  float base = (f < 0 ? -f : f) * scale_to_inf;
  const uint32_t w = rk_fp32_to_bits (f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & UINT32_C (0x80000000);
  uint32_t bias = shl1_w & UINT32_C (0xFF000000);
  uint32_t bits, exp_bits, mantissa_bits, nonsign;

  base *= scale_to_zero;
  if (bias < UINT32_C (0x71000000))
    bias = UINT32_C (0x71000000);

  base = rk_bits_to_fp32 ((bias >> 1) + UINT32_C (0x07800000)) + base;
  bits = rk_fp32_to_bits (base);
  exp_bits = (bits >> 13) & UINT32_C (0x00007C00);
  mantissa_bits = bits & UINT32_C (0x00000FFF);
  nonsign = exp_bits + mantissa_bits;
  return (rk_fp16) ((sign >> 16) | (shl1_w > UINT32_C (0xFF000000) ? UINT16_C (0x7E00) : nonsign));
}

static inline float
rk_bf16_to_fp32 (rk_bf16 h)
{
  return rk_bits_to_fp32 ((uint32_t) h << 16);
}

/* Float to bfloat16, round-to-nearest-even; NaN stays a quiet NaN (as ggml). */
static inline rk_bf16
rk_fp32_to_bf16 (float f)
{
  uint32_t u = rk_fp32_to_bits (f);

  if ((u & 0x7fffffff) > 0x7f800000)
    return (rk_bf16) ((u >> 16) | 64);
  return (rk_bf16) ((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}
