/* rope.c — rotary position embeddings: cos/sin cache, rotation, llama3 factors.
 * SPDX-License-Identifier: MIT
 *
 * Angles are computed in double, one power per dimension: ggml instead
 * multiplies a float theta by base^(-2/n_rot) step by step, whose error grows
 * with the dimension index and the position. The difference to llama.cpp is
 * rounding only (a few float ulps of cos/sin).
 */
#include <math.h>
#include <stddef.h>

#include "rk-cpu.h"
#include "rk-ops.h"

#define TWO_PI 6.283185307179586476925286766559

/* cs: (n_rot/2, 2) = (cos theta_i, sin theta_i) * attn_factor */
void
rk_rope_cache (float                *cs,
               int64_t               pos,
               const rk_rope_params *p)
{
  int half = p->n_rot / 2;
  int i;

  for (i = 0; i < half; i++)
    {
      double inv_freq = pow ((double) p->freq_base, -2.0 * i / p->n_rot);
      double theta = (double) pos * (double) p->freq_scale * inv_freq;

      if (p->freq_factors != NULL)
        theta /= (double) p->freq_factors[i];
      cs[2 * i + 0] = (float) (cos (theta) * (double) p->attn_factor);
      cs[2 * i + 1] = (float) (sin (theta) * (double) p->attn_factor);
    }
}

/* x: (n_heads, head_dim); only the first n_rot values of each head turn. */
void
rk_rope_apply_ref (float                *x,
                   int                   n_heads,
                   int                   head_dim,
                   const float          *cs,
                   const rk_rope_params *p)
{
  int half = p->n_rot / 2;
  int h, i;

  for (h = 0; h < n_heads; h++)
    {
      float *v = x + (int64_t) h * head_dim;

      for (i = 0; i < half; i++)
        {
          /* normal: (2i, 2i+1); NEOX: (i, i + n_rot/2) */
          int i0 = p->neox ? i : 2 * i;
          int i1 = p->neox ? i + half : 2 * i + 1;
          float c = cs[2 * i], s = cs[2 * i + 1];
          float x0 = v[i0], x1 = v[i1];

          v[i0] = x0 * c - x1 * s;
          v[i1] = x0 * s + x1 * c;
        }
    }
}

void
rk_rope_apply (float                *x,
               int                   n_heads,
               int                   head_dim,
               const float          *cs,
               const rk_rope_params *p)
{
#if defined(RK_HAVE_AVX2)
  if (rk_cpu_isa () == RK_ISA_AVX2)
    {
      rk_rope_apply_avx2 (x, n_heads, head_dim, cs, p);
      return;
    }
#endif
#if defined(RK_HAVE_NEON)
  if (rk_cpu_isa () == RK_ISA_NEON)
    {
      rk_rope_apply_neon (x, n_heads, head_dim, cs, p);
      return;
    }
#endif
  rk_rope_apply_ref (x, n_heads, head_dim, cs, p);
}

/* What llama.cpp's converter writes into GGUF's rope_freqs tensor for
 * rope_scaling.type "llama3" (conversion/llama.py, generate_extra_tensors;
 * HF's _compute_llama3_parameters is the same rule on inverse frequencies):
 * with wavelen_i = 2 pi / base^(-2i/n_rot),
 *   wavelen < ctx / high_freq_factor   -> 1       (high frequencies kept)
 *   wavelen > ctx / low_freq_factor    -> factor  (low frequencies slowed)
 *   otherwise, smooth = (ctx / wavelen - low) / (high - low),
 *                      1 / ((1 - smooth) / factor + smooth).
 * The converter computes in float32 tensors; so do we, in its order, so the
 * values match the tensor to an ulp or so. RoPE divides theta by these. */
void
rk_rope_llama3_factors (float *factors,
                        int    n_rot,
                        float  freq_base,
                        float  factor,
                        float  low_freq_factor,
                        float  high_freq_factor,
                        int    original_ctx)
{
  double low_wavelen = (double) original_ctx / low_freq_factor;
  double high_wavelen = (double) original_ctx / high_freq_factor;
  int i;

  for (i = 0; i < n_rot / 2; i++)
    {
      float freq = 1.0f / powf (freq_base, (float) (2 * i) / (float) n_rot);
      float wavelen = (float) TWO_PI / freq;

      if (wavelen < high_wavelen)
        factors[i] = 1.0f;
      else if (wavelen > low_wavelen)
        factors[i] = factor;
      else
        {
          float smooth = ((float) original_ctx / wavelen - low_freq_factor)
                         / (high_freq_factor - low_freq_factor);

          factors[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
}
