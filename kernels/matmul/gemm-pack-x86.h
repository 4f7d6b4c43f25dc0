/* gemm-pack-x86.h — packing steps shared by the packed block products (private).
 * SPDX-License-Identifier: MIT
 *
 * Plain AVX2, included by gemm-packed-avx512.h (the AVX-512 VNNI products)
 * and gemm-avx2.c (its packed K products). See gemm-packed-avx512.h for
 * what packing is and why.
 */
#ifndef RK_GEMM_PACK_X86_H
#define RK_GEMM_PACK_X86_H

#include <immintrin.h>
#include <stdint.h>

#ifndef ALWAYS_INLINE
#define ALWAYS_INLINE inline __attribute__ ((always_inline))
#endif

/* n = 0: every output is the empty dot product, 0, but the packed drivers
 * store only from within a chunk of blocks, and there is none. */
static inline void
pk_zero (int      n_rows,
         int      n_toks,
         float   *y,
         int64_t  ys)
{
  int r, t;

  for (t = 0; t < n_toks; t++)
    for (r = 0; r < n_rows; r++)
      y[t * ys + r] = 0.0f;
}

/* 8 rows of 8 dwords each -> 8 vectors of dword k of every row. */
static ALWAYS_INLINE void
transpose_8x8_epi32 (__m256i r[8])
{
  __m256i t[8], v[8];
  int i;

  for (i = 0; i < 4; i++)
    {
      t[2 * i] = _mm256_unpacklo_epi32 (r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_epi32 (r[2 * i], r[2 * i + 1]);
    }
  for (i = 0; i < 2; i++)
    {
      v[4 * i + 0] = _mm256_unpacklo_epi64 (t[4 * i + 0], t[4 * i + 2]);
      v[4 * i + 1] = _mm256_unpackhi_epi64 (t[4 * i + 0], t[4 * i + 2]);
      v[4 * i + 2] = _mm256_unpacklo_epi64 (t[4 * i + 1], t[4 * i + 3]);
      v[4 * i + 3] = _mm256_unpackhi_epi64 (t[4 * i + 1], t[4 * i + 3]);
    }
  for (i = 0; i < 4; i++)
    {
      r[i] = _mm256_permute2x128_si256 (v[i], v[i + 4], 0x20);
      r[i + 4] = _mm256_permute2x128_si256 (v[i], v[i + 4], 0x31);
    }
}

/* Calls TILE (G, T, ...) with the pass's panel count ng and the tile's
 * token count nt as constants (1 <= nt <= PK_TILE_MAX_NT), so its loops
 * unroll; tiles size their register arrays [PK_G][PK_TILE_MAX_NT]. */
#define PK_TILE_MAX_NT 4
#define PK_TILE_NT(TILE, ng, nt, ...)                        \
  do                                                         \
    {                                                        \
      if ((ng) == 2)                                         \
        switch (nt)                                          \
          {                                                  \
          case 4: TILE (2, 4, __VA_ARGS__); break;           \
          case 3: TILE (2, 3, __VA_ARGS__); break;           \
          case 2: TILE (2, 2, __VA_ARGS__); break;           \
          default: TILE (2, 1, __VA_ARGS__); break;          \
          }                                                  \
      else                                                   \
        switch (nt)                                          \
          {                                                  \
          case 4: TILE (1, 4, __VA_ARGS__); break;           \
          case 3: TILE (1, 3, __VA_ARGS__); break;           \
          case 2: TILE (1, 2, __VA_ARGS__); break;           \
          default: TILE (1, 1, __VA_ARGS__); break;          \
          }                                                  \
    }                                                        \
  while (0)

#endif /* RK_GEMM_PACK_X86_H */
