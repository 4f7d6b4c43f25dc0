/* rk-cpu.h — CPU feature detection and the per-type kernel table.
 * SPDX-License-Identifier: MIT
 *
 * rk_cpu_init() picks, once, the best variant of every kernel for this CPU
 * (AVX2+FMA+F16C on x86-64, NEON on aarch64, else the scalar reference).
 * RUV_KERNELS=ref in the environment forces the reference path everywhere.
 *
 * AVX-512 VNNI is not an rk_isa of its own (every dispatcher switches on
 * rk_isa): where the CPU has it, rk_gemm_get_isa (type, RK_ISA_AVX2) hands
 * out _avx512 prefill tiles for the Q8_0-activation and K formats (decode
 * dots stay AVX2: memory-bound, VNNI measured no faster). RUV_KERNELS=avx2
 * keeps the plain AVX2 ones, for side-by-side comparison.
 */
#pragma once

#include "rk-types.h"

typedef enum
{
  RK_ISA_REF  = 0,
  RK_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C */
  RK_ISA_NEON = 2,   /* aarch64 Advanced SIMD (always present on aarch64) */
} rk_isa;

typedef float (*rk_vec_dot_fn)    (int n, const void *x, const void *y);
typedef void  (*rk_from_float_fn) (const float *x, void *y, int64_t k);
typedef void  (*rk_to_float_fn)   (const void *x, float *y, int64_t k);

typedef struct
{
  rk_to_float_fn   to_float;         /* dequantize a row */
  rk_from_float_fn from_float;       /* quantize a row (fast path, for activations) */
  rk_from_float_fn from_float_ref;   /* reference-quality quantizer (for files) */
  rk_vec_dot_fn    vec_dot;          /* dot of a row of this type with vec_dot_type */
  rk_type          vec_dot_type;     /* activation format this type pairs with */
} rk_type_traits;

/* TRUE if this CPU (and this build) can run the given ISA's kernels. */
bool                  rk_cpu_has_isa   (rk_isa isa);
/* TRUE if this CPU, its OS (ZMM state saved) and this build have AVX512F,
 * AVX512BW, AVX512VL and AVX512_VNNI. */
bool                  rk_cpu_has_avx512_vnni (void);
/* TRUE if the RK_ISA_AVX2 block products use the _avx512 variants: the CPU
 * has them and RUV_KERNELS is neither "ref" nor "avx2". */
bool                  rk_cpu_use_avx512_vnni (void);
/* Thread-safe, idempotent. Also honours RUV_KERNELS=ref. */
void                  rk_cpu_init      (void);
/* The ISA chosen by rk_cpu_init() (RK_ISA_REF when forced). */
rk_isa                rk_cpu_isa       (void);
const char           *rk_isa_name      (rk_isa isa);
/* Kernels for `type` with the chosen ISA; NULL fields for an unsupported type.
 * Calls rk_cpu_init() if needed. */
const rk_type_traits *rk_get_traits    (rk_type type);
/* Kernels for `type` with a given ISA (for tests and benchmarks). */
rk_type_traits        rk_traits_for_isa (rk_type type,
                                         rk_isa  isa);
