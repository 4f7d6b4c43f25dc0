/* k-quants.h — private helpers shared by the K-quant kernels (q4_K, q5_K, q6_K, q8_K).
 * SPDX-License-Identifier: MIT
 *
 * Blocks are read and written through byte pointers and memcpy, never through
 * a struct pointer: rows come from mapped GGUF data and q6_K blocks are 210
 * bytes, so a block may start at any address.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rk-fp16.h"
#include "rk-quant.h"

/* a * b + c stays two roundings (as in ggml's x86 build, which has no FMA in
 * its scalar code): the reference quantizers then give the same bytes on
 * every ISA and with -march=native, and SIMD dequantizers match _ref bit for
 * bit. Applies to every function defined after this header. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize ("fp-contract=off")
#endif

static inline float
rk_k_load_fp16 (const uint8_t *p)
{
  rk_fp16 h;

  memcpy (&h, p, sizeof h);
  return rk_fp16_to_fp32 (h);
}

static inline float
rk_k_load_f32 (const uint8_t *p)
{
  float f;

  memcpy (&f, p, sizeof f);
  return f;
}

/* Scale and min of sub-block j (0..7) of a Q4_K/Q5_K block, from the 12
 * packed bytes: bytes 0-3 / 4-7 hold the low 6 bits of scales / mins 0-3
 * and, in their top 2 bits, the high bits of scales / mins 4-7; bytes 8-11
 * hold the low nibbles of scale (low half) and min (high half) 4-7. */
static inline void
rk_k4_scale_min (int            j,
                 const uint8_t *q,
                 uint8_t       *sc,
                 uint8_t       *m)
{
  if (j < 4)
    {
      *sc = q[j] & 63;
      *m = q[j + 4] & 63;
    }
  else
    {
      *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
      *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* All of them at once with 32-bit word tricks (little-endian hosts only,
 * as are all our SIMD targets): out[0..7] = scales, out[8..15] = mins. */
static inline void
rk_k4_unpack_scales (const uint8_t *packed,
                     uint8_t        out[16])
{
  uint32_t u[4], mins_lo;

  memcpy (u, packed, 12);
  u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
  mins_lo = u[1] & 0x3f3f3f3f;
  u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
  u[2] = mins_lo;
  u[0] &= 0x3f3f3f3f;
  memcpy (out, u, 16);
}

/* The common body of quantize_row_q4_K_ref / q5_K_ref for one super-block of
 * 256 values: per 32-element sub-block a weighted min/scale search
 * (rk_make_qkx2_quants), then 6-bit scales and mins relative to d and dmin,
 * then every value requantized against the rounded scales. L gets 0..nmax. */
void rk_k_quantize_scale_min (const float *x,
                              int          nmax,
                              float        rmin,
                              float        rdelta,
                              int          nstep,
                              uint8_t      L[RK_QK_K],
                              uint8_t      scales[RK_K_SCALE_SIZE],
                              rk_fp16     *d,
                              rk_fp16     *dmin);

/* The Q4_K/Q5_K reference dequantize and dot, shared: both blocks start with
 * d, dmin and the 12 packed scales/mins at the same offsets, and differ only
 * in how the codes are stored. codes (block, q) unpacks a block (block_size
 * bytes) so that q[32 * j + l] is value l (0..31) of sub-block j (0..7), a
 * code in 0..15 (Q4_K) or 0..31 (Q5_K). Values are
 * w = d * sc[j] * q - dmin * m[j]; the dot with Q8_K takes exact integer sums
 * per sub-block times its 6-bit scale and folds the mins in through q8_K's
 * bsums (sum of 16 activations each), per block
 * d*dy * sum_j sc_j * (q . q8)_j  -  dmin*dy * sum_j m_j * (bsum_2j + bsum_2j+1). */
typedef void (*rk_k4_codes_fn) (const uint8_t *block,
                                uint8_t        q[RK_QK_K]);

void  rk_k4_dequantize_row_ref (const uint8_t *x,
                                size_t         block_size,
                                rk_k4_codes_fn codes,
                                float         *y,
                                int64_t        k);
float rk_k4_vec_dot_q8_K_ref (const uint8_t *x,
                              size_t         block_size,
                              rk_k4_codes_fn codes,
                              const uint8_t *y,
                              int            n);

#if defined(__aarch64__)
#include <arm_neon.h>

/* acc + the 16 products a[i] * b[i] summed in groups of 4 (the grouping
 * differs without dotprod; callers only use the total). Products must fit
 * int16 (|a| <= 63 with |b| <= 127 here). */
static inline int32x4_t
rk_k_vdotq (int32x4_t acc,
            int8x16_t a,
            int8x16_t b)
{
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32 (acc, a, b);
#else
  int16x8_t p0 = vmull_s8 (vget_low_s8 (a), vget_low_s8 (b));
  int16x8_t p1 = vmull_high_s8 (a, b);

  return vaddq_s32 (acc, vaddq_s32 (vpaddlq_s16 (p0), vpaddlq_s16 (p1)));
#endif
}
#endif
