/* gemm-packed-avx512.h — what the packed AVX-512 VNNI block products share (private).
 * SPDX-License-Identifier: MIT
 *
 * Included by gemm-avx512.c (Q8_0, Q4_0, Q5_0) and gemm-k-avx512.c (Q4_K,
 * Q5_K, Q6_K), both compiled with the AVX-512 VNNI flags.
 *
 * A weight block is 32 codes of one row, so a dpbusd of it with an
 * activation block leaves 8 partial sums of one (row, token) pair, and each
 * pair then needs its own conversion, scale multiply and FMA: 4 vector ops
 * per row, token and block, which is what bounded unpacked tiles (Zen 4 runs
 * dpbusd, cvt, mul and FMA on the same two pipes).
 *
 * So the weights are first packed, a panel of 8 rows at a time: step k of a
 * packed block holds bytes 4k..4k+3 of each of the 8 rows (row r in lane r),
 * with the 8 rows' scales beside them. Step k is then one dpbusd with
 * activation bytes 4k..4k+3 broadcast to every lane, and after the 8 steps
 * lane r holds row r's whole integer block sum for that token: 8 dpbusd plus
 * one conversion, multiply and FMA for 8 rows. Packing is done per call and
 * reused by all its tokens (matmul.c passes up to RK_GEMM_PACKED_TOKS), in
 * passes of RK_GEMM_PACKED_ROWS rows (PK_G panels) and chunks of blocks that
 * keep a pass's panels in L1/L2.
 */
#ifndef RK_GEMM_PACKED_AVX512_H
#define RK_GEMM_PACKED_AVX512_H

#include <assert.h>
#include <immintrin.h>
#include <stdint.h>

#include "rk-gemm.h"
#include "gemm-pack-x86.h"

#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE inline __attribute__ ((always_inline))
#endif
#ifndef UNROLL
#define UNROLL _Pragma ("GCC unroll 8")
#endif

/* Tokens per run that the per-token preparations are sized for. */
#define PK_TOKS RK_GEMM_PACKED_TOKS
/* Panels (8 rows each) per pass. */
#define PK_G (RK_GEMM_PACKED_ROWS / 8)

/* PK_TILE_NT knows passes of 1 or 2 panels only; any other count would make
 * it silently compute nothing. */
static_assert (RK_GEMM_PACKED_ROWS == 16, "PK_TILE_NT handles 1 or 2 panels");

/* The rows of panel g that exist: all 8 but in the pass's last panel. */
static ALWAYS_INLINE __mmask8
pk_rows_mask (int g,
              int ng,
              int nr_last)
{
  return g == ng - 1 ? (__mmask8) ((1u << nr_last) - 1) : (__mmask8) 0xff;
}

/* Accumulators of ng panels by nt tokens: zero for a row's first chunk,
 * else what the earlier chunks stored in y. */
#define PK_ACC_LOAD(acc, ng, nt, nr_last, first, y, ys)                         \
  do                                                                            \
    {                                                                           \
      int g_, j_;                                                               \
                                                                                \
      UNROLL                                                                    \
      for (g_ = 0; g_ < (ng); g_++)                                             \
        UNROLL                                                                  \
        for (j_ = 0; j_ < (nt); j_++)                                           \
          (acc)[g_][j_] = (first) ? _mm256_setzero_ps ()                        \
            : _mm256_maskz_loadu_ps (pk_rows_mask (g_, (ng), (nr_last)),        \
                                     (y) + j_ * (ys) + 8 * g_);                 \
    }                                                                           \
  while (0)

/* ... and back to y, rows past the pass's end left alone. */
#define PK_ACC_STORE(acc, ng, nt, nr_last, y, ys)                               \
  do                                                                            \
    {                                                                           \
      int g_, j_;                                                               \
                                                                                \
      UNROLL                                                                    \
      for (g_ = 0; g_ < (ng); g_++)                                             \
        UNROLL                                                                  \
        for (j_ = 0; j_ < (nt); j_++)                                           \
          _mm256_mask_storeu_ps ((y) + j_ * (ys) + 8 * g_,                      \
                                 pk_rows_mask (g_, (ng), (nr_last)),            \
                                 (acc)[g_][j_]);                                \
    }                                                                           \
  while (0)

#endif /* RK_GEMM_PACKED_AVX512_H */
