/* rope-neon.c — RoPE rotation, NEON (ARMv8.0).
 * SPDX-License-Identifier: MIT
 *
 * vld2q splits interleaved data into even and odd lanes: the (cos, sin)
 * cache in both modes, and the (x0, x1) pairs in normal mode.
 */
#include "rk-ops.h"
#include "simd-neon.h"

static void
rope_normal_neon (float       *v,
                  int          half,
                  const float *cs)
{
  int i = 0;

  for (; i + 4 <= half; i += 4)
    {
      float32x4x2_t t = vld2q_f32 (cs + 2 * i);          /* cos, sin */
      float32x4x2_t x = vld2q_f32 (v + 2 * i);           /* x0, x1 */
      float32x4x2_t o;

      o.val[0] = vfmsq_f32 (vmulq_f32 (x.val[0], t.val[0]), x.val[1], t.val[1]);
      o.val[1] = vfmaq_f32 (vmulq_f32 (x.val[1], t.val[0]), x.val[0], t.val[1]);
      vst2q_f32 (v + 2 * i, o);
    }
  for (; i < half; i++)
    {
      float c = cs[2 * i], s = cs[2 * i + 1];
      float x0 = v[2 * i], x1 = v[2 * i + 1];

      v[2 * i] = x0 * c - x1 * s;
      v[2 * i + 1] = x0 * s + x1 * c;
    }
}

static void
rope_neox_neon (float       *v,
                int          half,
                const float *cs)
{
  int i = 0;

  for (; i + 4 <= half; i += 4)
    {
      float32x4x2_t t = vld2q_f32 (cs + 2 * i);
      float32x4_t x0 = vld1q_f32 (v + i);
      float32x4_t x1 = vld1q_f32 (v + i + half);

      vst1q_f32 (v + i, vfmsq_f32 (vmulq_f32 (x0, t.val[0]), x1, t.val[1]));
      vst1q_f32 (v + i + half, vfmaq_f32 (vmulq_f32 (x1, t.val[0]), x0, t.val[1]));
    }
  for (; i < half; i++)
    {
      float c = cs[2 * i], s = cs[2 * i + 1];
      float x0 = v[i], x1 = v[i + half];

      v[i] = x0 * c - x1 * s;
      v[i + half] = x0 * s + x1 * c;
    }
}

void
rk_rope_apply_neon (float                *x,
                    int                   n_heads,
                    int                   head_dim,
                    const float          *cs,
                    const rk_rope_params *p)
{
  int h;

  for (h = 0; h < n_heads; h++)
    {
      float *v = x + (int64_t) h * head_dim;

      if (p->neox)
        rope_neox_neon (v, p->n_rot / 2, cs);
      else
        rope_normal_neon (v, p->n_rot / 2, cs);
    }
}
