/* rk-cpu.h — CPU feature detection and the per-type kernel table.
 * SPDX-License-Identifier: MIT
 *
 * rk_cpu_init() picks, once, the best variant of every kernel for this CPU
 * (AVX2+FMA+F16C on x86-64, NEON on aarch64, else the scalar reference).
 * RUV_KERNELS=ref in the environment forces the reference path everywhere.
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
