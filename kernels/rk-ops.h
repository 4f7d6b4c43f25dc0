/* rk-ops.h — element-wise and row kernels: norms, RoPE, softmax, activations.
 * SPDX-License-Identifier: MIT
 *
 * Every function here exists as `name` (dispatched on rk_cpu_isa()), and as
 * `name_ref`, `name_avx2`, `name_neon` with the same signature (the SIMD ones
 * only exist in builds for their architecture; tests reach them through
 * rk_cpu_has_isa()). In-place use (out == x) is allowed unless noted.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define RK_DECLARE_OP(ret, name, args) \
  ret name          args;              \
  ret name##_ref    args;              \
  ret name##_avx2   args;              \
  ret name##_neon   args;

/* out = x / sqrt(mean(x^2) + eps) * w   (w may be NULL: no weight) */
RK_DECLARE_OP (void, rk_rmsnorm, (float *out, const float *x, const float *w, int n, float eps))
/* out = (x - mean) / sqrt(var + eps) * w + b   (w, b may be NULL) */
RK_DECLARE_OP (void, rk_layernorm, (float *out, const float *x, const float *w, const float *b,
                                    int n, float eps))
/* In-place softmax over n values; returns the sum of exponentials before
 * normalisation (after subtracting the max). */
RK_DECLARE_OP (float, rk_softmax, (float *x, int n))
/* x[i] = exp (x[i] - m) in place (an online softmax's step, m >= max x, not
 * -inf); returns the sum of the new x. -INFINITY entries become exactly 0. */
RK_DECLARE_OP (float, rk_exp_sum, (float *x, int n, float m))
/* out = silu(x) = x * sigmoid(x) */
RK_DECLARE_OP (void, rk_silu, (float *out, const float *x, int n))
/* out = silu(gate) * up   (SwiGLU) */
RK_DECLARE_OP (void, rk_swiglu, (float *out, const float *gate, const float *up, int n))
/* out = gelu(x), tanh approximation (as ggml_gelu) */
RK_DECLARE_OP (void, rk_gelu, (float *out, const float *x, int n))
RK_DECLARE_OP (void, rk_add, (float *out, const float *a, const float *b, int n))
RK_DECLARE_OP (void, rk_mul, (float *out, const float *a, const float *b, int n))
/* out = a * s */
RK_DECLARE_OP (void, rk_scale, (float *out, const float *a, float s, int n))
/* y += a * x */
RK_DECLARE_OP (void, rk_axpy, (float *y, float a, const float *x, int n))
/* Index of the largest value (the first on ties). n > 0. */
RK_DECLARE_OP (int, rk_argmax, (const float *x, int n))

/* The k largest values of x, sorted descending (ties: lower index first).
 * Writes k indices (and values if `val` is not NULL); k <= n. */
void rk_top_k (const float *x, int n, int k, int32_t *idx, float *val);

/* RoPE. Pairs are (2i, 2i+1) in normal mode (llama), (i, i + n_rot/2) in NEOX
 * mode (qwen2, qwen3, gpt-neox). Dimensions past n_rot are left untouched.
 * theta_i = pos * freq_scale * base^(-2i/n_rot) / freq_factors[i]  (llama3's
 * rope_freqs tensor gives freq_factors; NULL means all 1). */
typedef struct
{
  int          n_rot;          /* rotated dimensions per head, even, <= head_dim */
  bool         neox;
  float        freq_base;      /* rope.freq_base, 10000 by default */
  float        freq_scale;     /* 1 / linear scaling factor */
  const float *freq_factors;   /* n_rot/2 values or NULL */
  float        attn_factor;    /* multiplies cos and sin (1 unless YaRN) */
} rk_rope_params;

/* Fill cs with n_rot/2 (cos, sin) pairs for position pos. */
void rk_rope_cache (float *cs, int64_t pos, const rk_rope_params *p);
/* Rotate n_heads heads of head_dim floats (head h at x + h * head_dim) with a
 * cache from rk_rope_cache(). */
RK_DECLARE_OP (void, rk_rope_apply, (float *x, int n_heads, int head_dim, const float *cs,
                                     const rk_rope_params *p))
/* Llama-3 style per-dimension factors (rope_scaling.type = "llama3"): fills
 * n_rot/2 factors from (factor, low_freq_factor, high_freq_factor,
 * original_context_length), as HF transformers and llama.cpp compute them. */
void rk_rope_llama3_factors (float *factors, int n_rot, float freq_base, float factor,
                             float low_freq_factor, float high_freq_factor,
                             int original_ctx);
