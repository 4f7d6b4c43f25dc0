/* q4_K-avx512.c — the Q4_K dot with AVX-512 VNNI (decode on Q4_K_M models).
 * SPDX-License-Identifier: MIT
 *
 * rk_vec_dot_q4_K_q8_K_avx2's body (q4_K-dot-x86.h) compiled with VNNI: the
 * scale multiply and the add into the int32 sums become one vpdpwssd
 * (AVX2: madd, then add), one instruction less per 32 values. Decode
 * streams the weights, but on a 2-thread Zen 4 with ~50 GB/s of read
 * bandwidth the AVX2 dot (~71 instructions per 144-byte block) is what
 * limits Q4_K matvec, not memory. Integer sums are exact and the float
 * steps are the AVX2 variant's, so the result is bit for bit that of
 * rk_vec_dot_q4_K_q8_K_avx2. Used in its place where
 * rk_cpu_use_avx512_vnni () (rk-cpu.c); 256-bit vectors only.
 */
#include "q4_K-dot-x86.h"

float
rk_vec_dot_q4_K_q8_K_avx512 (int         n,
                             const void *vx,
                             const void *vy)
{
  return q4_K_dot_x86 (n, vx, vy);
}
