/* act.c — activations and element-wise arithmetic (reference and dispatch).
 * SPDX-License-Identifier: MIT
 *
 * silu(x) = x / (1 + exp(-x)); gelu is ggml's tanh approximation with its
 * constants. out may alias any input.
 */
#include <math.h>

#include "rk-cpu.h"
#include "rk-ops.h"
#include "act-private.h"

void
rk_silu_ref (float       *out,
             const float *x,
             int          n)
{
  int i;

  for (i = 0; i < n; i++)
    out[i] = x[i] / (1.0f + expf (-x[i]));
}

void
rk_swiglu_ref (float       *out,
               const float *gate,
               const float *up,
               int          n)
{
  int i;

  for (i = 0; i < n; i++)
    out[i] = gate[i] / (1.0f + expf (-gate[i])) * up[i];
}

void
rk_gelu_ref (float       *out,
             const float *x,
             int          n)
{
  int i;

  for (i = 0; i < n; i++)
    {
      float v = x[i];

      out[i] = 0.5f * v * (1.0f + tanhf (SQRT_2_OVER_PI * v * (1.0f + GELU_COEF_A * v * v)));
    }
}

void
rk_add_ref (float       *out,
            const float *a,
            const float *b,
            int          n)
{
  int i;

  for (i = 0; i < n; i++)
    out[i] = a[i] + b[i];
}

void
rk_mul_ref (float       *out,
            const float *a,
            const float *b,
            int          n)
{
  int i;

  for (i = 0; i < n; i++)
    out[i] = a[i] * b[i];
}

void
rk_scale_ref (float       *out,
              const float *a,
              float        s,
              int          n)
{
  int i;

  for (i = 0; i < n; i++)
    out[i] = a[i] * s;
}

void
rk_axpy_ref (float       *y,
             float        a,
             const float *x,
             int          n)
{
  int i;

  for (i = 0; i < n; i++)
    y[i] += a * x[i];
}

void
rk_silu (float       *out,
         const float *x,
         int          n)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    {
      rk_silu_avx2 (out, x, n);
      return;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    {
      rk_silu_neon (out, x, n);
      return;
    }
#endif
  rk_silu_ref (out, x, n);
}

void
rk_swiglu (float       *out,
           const float *gate,
           const float *up,
           int          n)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    {
      rk_swiglu_avx2 (out, gate, up, n);
      return;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    {
      rk_swiglu_neon (out, gate, up, n);
      return;
    }
#endif
  rk_swiglu_ref (out, gate, up, n);
}

void
rk_gelu (float       *out,
         const float *x,
         int          n)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    {
      rk_gelu_avx2 (out, x, n);
      return;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    {
      rk_gelu_neon (out, x, n);
      return;
    }
#endif
  rk_gelu_ref (out, x, n);
}

void
rk_add (float       *out,
        const float *a,
        const float *b,
        int          n)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    {
      rk_add_avx2 (out, a, b, n);
      return;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    {
      rk_add_neon (out, a, b, n);
      return;
    }
#endif
  rk_add_ref (out, a, b, n);
}

void
rk_mul (float       *out,
        const float *a,
        const float *b,
        int          n)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    {
      rk_mul_avx2 (out, a, b, n);
      return;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    {
      rk_mul_neon (out, a, b, n);
      return;
    }
#endif
  rk_mul_ref (out, a, b, n);
}

void
rk_scale (float       *out,
          const float *a,
          float        s,
          int          n)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    {
      rk_scale_avx2 (out, a, s, n);
      return;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    {
      rk_scale_neon (out, a, s, n);
      return;
    }
#endif
  rk_scale_ref (out, a, s, n);
}

void
rk_axpy (float       *y,
         float        a,
         const float *x,
         int          n)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    {
      rk_axpy_avx2 (y, a, x, n);
      return;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    {
      rk_axpy_neon (y, a, x, n);
      return;
    }
#endif
  rk_axpy_ref (y, a, x, n);
}
