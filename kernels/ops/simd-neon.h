/* simd-neon.h — NEON helpers shared by the ops and attention kernels: expf, silu.
 * SPDX-License-Identifier: MIT
 *
 * Included only from *-neon.c files (aarch64, ARMv8.0 Advanced SIMD).
 */
#pragma once

#include <arm_neon.h>

/* expf for 4 lanes: the algorithm of Arm's optimized-routines (ggml's
 * ggml_v_expf). See simd-avx2.h for the derivation: 2^n * (1 + p(r)),
 * max error 1.45 ulp + 0.5 ulp; +inf above 88.38, 0 below -103.97. */
static inline float32x4_t
expf_neon (float32x4_t x)
{
  const float32x4_t shift = vdupq_n_f32 (0x1.8p23f);
  float32x4_t z, n, r, r2, p, k, s1, s2, slow, fast;
  uint32x4_t e, g, big, huge;

  z = vfmaq_f32 (shift, x, vdupq_n_f32 (0x1.715476p+0f));
  n = vsubq_f32 (z, shift);
  r = vfmsq_f32 (x, n, vdupq_n_f32 (0x1.62e4p-1f));
  r = vfmsq_f32 (r, n, vdupq_n_f32 (0x1.7f7d1cp-20f));

  e = vshlq_n_u32 (vreinterpretq_u32_f32 (z), 23);
  k = vreinterpretq_f32_u32 (vaddq_u32 (e, vreinterpretq_u32_f32 (vdupq_n_f32 (1.0f))));

  r2 = vmulq_f32 (r, r);
  p = vfmaq_f32 (vfmaq_f32 (vdupq_n_f32 (0x1.fffdb6p-2f), vdupq_n_f32 (0x1.555e66p-3f), r),
                 vfmaq_f32 (vdupq_n_f32 (0x1.573e2ep-5f), vdupq_n_f32 (0x1.0e4020p-7f), r),
                 r2);
  p = vfmaq_f32 (vmulq_f32 (vdupq_n_f32 (0x1.ffffecp-1f), r), p, r2);

  fast = vfmaq_f32 (k, p, k);
  big = vcagtq_f32 (n, vdupq_n_f32 (126.0f));
  if (vmaxvq_u32 (big) == 0)
    return fast;

  g = vandq_u32 (vclezq_f32 (n), vdupq_n_u32 (0x82000000u));
  s1 = vreinterpretq_f32_u32 (vaddq_u32 (g, vdupq_n_u32 (0x7f000000u)));
  s2 = vreinterpretq_f32_u32 (vsubq_u32 (e, g));
  slow = vmulq_f32 (vfmaq_f32 (s2, s2, p), s1);
  huge = vcagtq_f32 (n, vdupq_n_f32 (192.0f));
  slow = vbslq_f32 (huge, vmulq_f32 (s1, s1), slow);
  return vbslq_f32 (big, slow, fast);
}

/* silu(x) = x / (1 + exp(-x)) */
static inline float32x4_t
silu_neon (float32x4_t x)
{
  float32x4_t en = expf_neon (vnegq_f32 (x));

  return vdivq_f32 (x, vaddq_f32 (vdupq_n_f32 (1.0f), en));
}
