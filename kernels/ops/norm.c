/* norm.c — RMS norm and layer norm over one row (reference and dispatch).
 * SPDX-License-Identifier: MIT
 *
 * The reference accumulates sums in double, as ggml's rms_norm does with
 * ggml_float; the SIMD variants keep per-lane float sums (fused multiply-add),
 * which for rows of a few thousand values differ from the double result by a
 * few float ulps. Layer norm is two-pass (mean, then centred variance), so a
 * large mean does not cancel the variance away; the reference also keeps the
 * mean in double, the SIMD variants round it to float.
 */
#include <math.h>
#include <stddef.h>

#include "rk-cpu.h"
#include "rk-ops.h"

void
rk_rmsnorm_ref (float       *out,
                const float *x,
                const float *w,
                int          n,
                float        eps)
{
  double sum = 0.0;
  float scale;
  int i;

  for (i = 0; i < n; i++)
    sum += (double) x[i] * (double) x[i];
  scale = (float) (1.0 / sqrt (sum / n + (double) eps));

  for (i = 0; i < n; i++)
    out[i] = w != NULL ? x[i] * scale * w[i] : x[i] * scale;
}

void
rk_layernorm_ref (float       *out,
                  const float *x,
                  const float *w,
                  const float *b,
                  int          n,
                  float        eps)
{
  double sum = 0.0, var = 0.0, mean, scale;
  int i;

  for (i = 0; i < n; i++)
    sum += x[i];
  mean = sum / n;

  for (i = 0; i < n; i++)
    var += ((double) x[i] - mean) * ((double) x[i] - mean);
  scale = 1.0 / sqrt (var / n + (double) eps);

  for (i = 0; i < n; i++)
    {
      float v = (float) (((double) x[i] - mean) * scale);

      if (w != NULL)
        v *= w[i];
      if (b != NULL)
        v += b[i];
      out[i] = v;
    }
}

/* Dispatch: the chosen ISA's variant when this build carries it. */
void
rk_rmsnorm (float       *out,
            const float *x,
            const float *w,
            int          n,
            float        eps)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    {
      rk_rmsnorm_avx2 (out, x, w, n, eps);
      return;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    {
      rk_rmsnorm_neon (out, x, w, n, eps);
      return;
    }
#endif
  rk_rmsnorm_ref (out, x, w, n, eps);
}

void
rk_layernorm (float       *out,
              const float *x,
              const float *w,
              const float *b,
              int          n,
              float        eps)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    {
      rk_layernorm_avx2 (out, x, w, b, n, eps);
      return;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    {
      rk_layernorm_neon (out, x, w, b, n, eps);
      return;
    }
#endif
  rk_layernorm_ref (out, x, w, b, n, eps);
}
