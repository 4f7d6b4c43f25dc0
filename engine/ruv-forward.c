/* ruv-forward.c — the transformer forward pass of llama, qwen2 and qwen3.
 * SPDX-License-Identifier: MIT
 *
 * One step runs m tokens (m <= n_batch) through every layer at once, so each
 * weight matrix is streamed once per step, as llama.cpp does:
 *
 *   x = token_embd[tokens]                                     (m, n_embd)
 *   per layer:
 *     h = rmsnorm (x) * attn_norm
 *     q, k, v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv)     (m, heads, head_dim)
 *     qwen3: q, k = per-head rmsnorm * q_norm, k_norm
 *     q, k = rope (q, k, positions)
 *     cache k, v; a = causal GQA over positions 0 .. pos + m - 1
 *     x += a Wo^T
 *     h = rmsnorm (x) * ffn_norm
 *     x += (silu (h Wgate^T) * h Wup^T) Wdown^T
 *   logits = (rmsnorm (x) * output_norm) Wout^T
 *
 * Activations are converted to each weight type's vec_dot_type once per
 * input and shared by the matrices reading it (Q, K, V; gate, up), exactly
 * the rounding llama.cpp's CPU backend applies.
 */
#include <string.h>

#include "rk.h"
#include "ruv-error.h"
#include "ruv-forward.h"
#include "ruv-model-private.h"

#define DEFAULT_N_CTX   4096
#define DEFAULT_N_BATCH 512

/* ---- the simple KV cache --------------------------------------------------
 * f32, per layer (n_ctx, n_head_kv, head_dim) for K and for V. The KV-cache
 * issue replaces it; the forward pass only calls these four functions. */

typedef struct
{
  float  *k;          /* n_layer blocks of n_ctx rows */
  float  *v;
  gint64  n_ctx;
  gint64  row;        /* floats per token: n_head_kv * head_dim */
  gsize   bytes;
} KvSimple;

static gboolean
kv_init (KvSimple     *kv,
         gint64        n_layer,
         gint64        n_ctx,
         gint64        row,
         GError      **error)
{
  gsize n;

  kv->n_ctx = n_ctx;
  kv->row = row;
  if (!g_size_checked_mul (&n, (gsize) n_layer, (gsize) n_ctx) ||
      !g_size_checked_mul (&n, n, (gsize) row) ||
      !g_size_checked_mul (&n, n, sizeof (float)))
    n = G_MAXSIZE;
  kv->k = n < G_MAXSIZE ? g_try_malloc0 (n) : NULL;
  kv->v = n < G_MAXSIZE ? g_try_malloc0 (n) : NULL;
  if (kv->k == NULL || kv->v == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY,
                   "cannot allocate a KV cache of %" G_GINT64_FORMAT " tokens "
                   "(2 x %" G_GSIZE_FORMAT " bytes)", n_ctx, n);
      return FALSE;
    }
  kv->bytes = 2 * n;
  return TRUE;
}

static void
kv_clear (KvSimple *kv)
{
  g_free (kv->k);
  g_free (kv->v);
}

/* Rows k, v (m, row) for positions pos .. pos + m - 1 of layer il. */
static void
kv_store (KvSimple    *kv,
          gint64       il,
          gint64       pos,
          gint64       m,
          const float *k,
          const float *v)
{
  gsize off = ((gsize) il * kv->n_ctx + pos) * kv->row;

  memcpy (kv->k + off, k, (gsize) m * kv->row * sizeof (float));
  memcpy (kv->v + off, v, (gsize) m * kv->row * sizeof (float));
}

/* out (m, n_head, head_dim) = causal attention of q (m queries from pos)
 * over the cached positions 0 .. pos + m - 1 of layer il. */
static void
kv_attend (KvSimple                  *kv,
           rk_pool                   *pool,
           const rk_attention_config *cfg,
           gint64                     il,
           const float               *q,
           gint64                     m,
           gint64                     pos,
           float                     *out)
{
  gsize off = (gsize) il * kv->n_ctx * kv->row;

  rk_grouped_query_attention (pool, cfg, q, (int) m, pos, kv->k + off, kv->v + off,
                              pos + m, kv->row, out);
}

/* ---- the context --------------------------------------------------------- */

struct _RuvContext
{
  RuvModel          *model;
  const RuvWeights  *w;
  rk_pool           *pool;
  gint64             n_ctx;
  gint64             n_batch;
  gint64             n_past;
  KvSimple           kv;
  rk_attention_config attn;
  rk_rope_params     rope;

  /* Scratch, sized for n_batch tokens (shapes per token). */
  float             *x;       /* (n_embd) residual stream */
  float             *h;       /* (max (n_embd, n_q)) normed input / projection output */
  float             *q;       /* (n_q) */
  float             *k;       /* (n_kv) */
  float             *v;       /* (n_kv) */
  float             *a;       /* (n_q) attention output */
  float             *gate;    /* (n_ff) */
  float             *up;      /* (n_ff) */
  float             *rope_cs; /* (n_rot) cos/sin pairs per token */
  void              *xq;      /* activations in a vec_dot_type */
  gsize              scratch_bytes;
};

void
ruv_context_params_init (RuvContextParams *params)
{
  params->n_ctx = 0;
  params->n_batch = 0;
  params->n_threads = 0;
}

static gsize
weight_xq_bytes (const RuvWeight *w,
                 gint64           n_batch)
{
  rk_type vdt = rk_get_traits (w->type)->vec_dot_type;

  return rk_row_size (vdt, w->n_in) * (gsize) n_batch;
}

RuvContext *
ruv_context_new (RuvModel                *model,
                 const RuvContextParams  *params,
                 GError                 **error)
{
  RuvContextParams defaults;
  RuvContext *ctx;
  const RuvHParams *hp;
  gint64 n_q, n_kv, nb, il;
  gsize xq = 0;

  g_return_val_if_fail (RUV_IS_MODEL (model), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (params == NULL)
    {
      ruv_context_params_init (&defaults);
      params = &defaults;
    }
  hp = &ruv_model_get_weights (model)->hp;
  if (params->n_ctx < 0 || params->n_ctx > hp->n_ctx_train)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "context size %" G_GINT64_FORMAT " is outside 1 .. %" G_GINT64_FORMAT
                   " (the model's context length)", params->n_ctx, hp->n_ctx_train);
      return NULL;
    }
  if (params->n_batch < 0 || params->n_batch > 65536 || params->n_threads < 0 ||
      params->n_threads > 1024)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "batch size %d or thread count %d is out of range",
                   params->n_batch, params->n_threads);
      return NULL;
    }

  ctx = g_new0 (RuvContext, 1);
  ctx->model = g_object_ref (model);
  ctx->w = ruv_model_get_weights (model);
  ctx->n_ctx = params->n_ctx > 0 ? params->n_ctx : MIN (hp->n_ctx_train, DEFAULT_N_CTX);
  ctx->n_batch = params->n_batch > 0 ? params->n_batch : DEFAULT_N_BATCH;
  ctx->n_batch = MIN (ctx->n_batch, ctx->n_ctx);
  ctx->pool = rk_pool_new (params->n_threads);
  if (ctx->pool == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_BACKEND, "cannot start worker threads");
      ruv_context_free (ctx);
      return NULL;
    }

  n_q = hp->n_head * hp->head_dim;
  n_kv = hp->n_head_kv * hp->head_dim;
  if (!kv_init (&ctx->kv, hp->n_layer, ctx->n_ctx, n_kv, error))
    {
      ruv_context_free (ctx);
      return NULL;
    }

  ctx->attn.num_heads = (int) hp->n_head;
  ctx->attn.num_kv_heads = (int) hp->n_head_kv;
  ctx->attn.head_dim = (int) hp->head_dim;
  ctx->attn.causal = true;
  ctx->attn.scale = 0.0f;
  ctx->rope.n_rot = (int) hp->n_rot;
  ctx->rope.neox = hp->rope_neox;
  ctx->rope.freq_base = hp->rope_freq_base;
  ctx->rope.freq_scale = hp->rope_freq_scale;
  ctx->rope.freq_factors = ctx->w->rope_factors;
  ctx->rope.attn_factor = 1.0f;

  /* Every size here is bounded by the model's checked hyper-parameters and
   * n_batch <= 65536, so none of these products overflow. */
  nb = ctx->n_batch;
  for (il = 0; il < hp->n_layer; il++)
    {
      const RuvLayer *l = &ctx->w->layers[il];

      xq = MAX (xq, weight_xq_bytes (&l->wq, nb));
      xq = MAX (xq, weight_xq_bytes (&l->wk, nb));
      xq = MAX (xq, weight_xq_bytes (&l->wv, nb));
      xq = MAX (xq, weight_xq_bytes (&l->wo, nb));
      xq = MAX (xq, weight_xq_bytes (&l->w_gate, nb));
      xq = MAX (xq, weight_xq_bytes (&l->w_up, nb));
      xq = MAX (xq, weight_xq_bytes (&l->w_down, nb));
    }
  xq = MAX (xq, weight_xq_bytes (&ctx->w->output, nb));

  ctx->x = g_try_new (float, nb * hp->n_embd);
  ctx->h = g_try_new (float, nb * MAX (hp->n_embd, n_q));
  ctx->q = g_try_new (float, nb * n_q);
  ctx->k = g_try_new (float, nb * n_kv);
  ctx->v = g_try_new (float, nb * n_kv);
  ctx->a = g_try_new (float, nb * n_q);
  ctx->gate = g_try_new (float, nb * hp->n_ff);
  ctx->up = g_try_new (float, nb * hp->n_ff);
  ctx->rope_cs = g_try_new (float, nb * hp->n_rot);
  ctx->xq = g_try_malloc (MAX (xq, 1));
  if (ctx->x == NULL || ctx->h == NULL || ctx->q == NULL || ctx->k == NULL ||
      ctx->v == NULL || ctx->a == NULL || ctx->gate == NULL || ctx->up == NULL ||
      ctx->rope_cs == NULL || ctx->xq == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY,
                   "cannot allocate scratch buffers for a batch of %" G_GINT64_FORMAT " tokens",
                   nb);
      ruv_context_free (ctx);
      return NULL;
    }
  ctx->scratch_bytes = sizeof (float) * nb * (hp->n_embd + MAX (hp->n_embd, n_q) + 2 * n_q +
                                              2 * n_kv + 2 * hp->n_ff + hp->n_rot) + xq;
  return ctx;
}

void
ruv_context_free (RuvContext *ctx)
{
  if (ctx == NULL)
    return;
  kv_clear (&ctx->kv);
  g_free (ctx->x);
  g_free (ctx->h);
  g_free (ctx->q);
  g_free (ctx->k);
  g_free (ctx->v);
  g_free (ctx->a);
  g_free (ctx->gate);
  g_free (ctx->up);
  g_free (ctx->rope_cs);
  g_free (ctx->xq);
  if (ctx->pool != NULL)
    rk_pool_free (ctx->pool);
  g_clear_object (&ctx->model);
  g_free (ctx);
}

RuvModel *
ruv_context_get_model (RuvContext *ctx)
{
  return ctx->model;
}

gint64
ruv_context_get_n_ctx (RuvContext *ctx)
{
  return ctx->n_ctx;
}

gint
ruv_context_get_n_threads (RuvContext *ctx)
{
  return rk_pool_n_threads (ctx->pool);
}

gint64
ruv_context_get_n_past (RuvContext *ctx)
{
  return ctx->n_past;
}

void
ruv_context_kv_clear (RuvContext *ctx)
{
  ctx->n_past = 0;
}

void
ruv_context_kv_truncate (RuvContext *ctx,
                         gint64      n_keep)
{
  ctx->n_past = CLAMP (n_keep, 0, ctx->n_past);
}

void
ruv_context_get_memory_stats (RuvContext     *ctx,
                              RuvMemoryStats *stats)
{
  memset (stats, 0, sizeof *stats);
  stats->mapped_bytes = ruv_model_get_mapped_bytes (ctx->model);
  stats->kv_bytes = ctx->kv.bytes;
  stats->scratch_bytes = ctx->scratch_bytes;
  stats->rss_bytes = ruv_process_rss_bytes ();
}

/* ---- one step ------------------------------------------------------------ */

/* y_i = x W_i^T for matrices sharing the input x (m rows of n_in floats,
 * contiguous). x is converted to a vec_dot_type only when it differs from
 * the one the previous matrix needed. */
static void
matmul_shared (RuvContext      *ctx,
               const float     *x,
               gint64           m,
               const RuvWeight *w0,
               float           *y0,
               const RuvWeight *w1,
               float           *y1,
               const RuvWeight *w2,
               float           *y2,
               gint64           y_stride0)
{
  const RuvWeight *ws[3] = { w0, w1, w2 };
  float *ys[3] = { y0, y1, y2 };
  rk_type have = RK_TYPE_COUNT;
  int i;

  for (i = 0; i < 3 && ws[i] != NULL; i++)
    {
      const RuvWeight *w = ws[i];
      rk_type vdt = rk_get_traits (w->type)->vec_dot_type;
      gint64 y_stride = i == 0 && y_stride0 > 0 ? y_stride0 : w->n_out;
      const void *xin = x;

      if (vdt != RK_TYPE_F32)
        {
          if (vdt != have)
            {
              rk_quantize_rows (ctx->pool, vdt, x, w->n_in, w->n_in, m, ctx->xq);
              have = vdt;
            }
          xin = ctx->xq;
        }
      rk_matmul_prequant (ctx->pool, w->type, w->data, w->row_stride, w->n_out, w->n_in,
                          xin, m, ys[i], y_stride);
    }
}

static void
add_bias (float       *y,
          const float *b,
          gint64       m,
          gint64       n)
{
  gint64 t;

  if (b == NULL)
    return;
  for (t = 0; t < m; t++)
    rk_add (y + t * n, y + t * n, b, (int) n);
}

static void
rmsnorm_rows (float       *out,
              const float *x,
              const float *w,
              gint64       m,
              gint64       n,
              float        eps)
{
  gint64 t;

  for (t = 0; t < m; t++)
    rk_rmsnorm (out + t * n, x + t * n, w, (int) n, eps);
}

/* tokens (m <= n_batch) at positions pos .. pos + m - 1, all checked.
 * logits: NULL, or n_out_rows rows of n_vocab for the last n_out_rows
 * tokens (1 or m). */
static void
forward_step (RuvContext   *ctx,
              const gint32 *tokens,
              gint64        m,
              gint64        pos,
              float        *logits,
              gint64        n_out_rows)
{
  const RuvWeights *w = ctx->w;
  const RuvHParams *hp = &w->hp;
  gint64 n_embd = hp->n_embd, hd = hp->head_dim;
  gint64 n_q = hp->n_head * hd, n_kv = hp->n_head_kv * hd;
  gint64 il, t, hh;

  rk_get_rows (w->token_embd.type, w->token_embd.data, w->token_embd.row_stride, n_embd,
               tokens, m, ctx->x);
  for (t = 0; t < m; t++)
    rk_rope_cache (ctx->rope_cs + t * hp->n_rot, pos + t, &ctx->rope);

  for (il = 0; il < hp->n_layer; il++)
    {
      const RuvLayer *l = &w->layers[il];

      /* attention */
      rmsnorm_rows (ctx->h, ctx->x, l->attn_norm, m, n_embd, hp->rms_eps);
      matmul_shared (ctx, ctx->h, m, &l->wq, ctx->q, &l->wk, ctx->k, &l->wv, ctx->v, 0);
      add_bias (ctx->q, l->bq, m, n_q);
      add_bias (ctx->k, l->bk, m, n_kv);
      add_bias (ctx->v, l->bv, m, n_kv);
      if (l->q_norm != NULL)
        {
          for (hh = 0; hh < m * hp->n_head; hh++)
            rk_rmsnorm (ctx->q + hh * hd, ctx->q + hh * hd, l->q_norm, (int) hd, hp->rms_eps);
          for (hh = 0; hh < m * hp->n_head_kv; hh++)
            rk_rmsnorm (ctx->k + hh * hd, ctx->k + hh * hd, l->k_norm, (int) hd, hp->rms_eps);
        }
      for (t = 0; t < m; t++)
        {
          const float *cs = ctx->rope_cs + t * hp->n_rot;

          rk_rope_apply (ctx->q + t * n_q, (int) hp->n_head, (int) hd, cs, &ctx->rope);
          rk_rope_apply (ctx->k + t * n_kv, (int) hp->n_head_kv, (int) hd, cs, &ctx->rope);
        }
      kv_store (&ctx->kv, il, pos, m, ctx->k, ctx->v);
      kv_attend (&ctx->kv, ctx->pool, &ctx->attn, il, ctx->q, m, pos, ctx->a);
      matmul_shared (ctx, ctx->a, m, &l->wo, ctx->h, NULL, NULL, NULL, NULL, 0);
      rk_add (ctx->x, ctx->x, ctx->h, (int) (m * n_embd));

      /* feed-forward */
      rmsnorm_rows (ctx->h, ctx->x, l->ffn_norm, m, n_embd, hp->rms_eps);
      matmul_shared (ctx, ctx->h, m, &l->w_gate, ctx->gate, &l->w_up, ctx->up, NULL, NULL, 0);
      rk_swiglu (ctx->gate, ctx->gate, ctx->up, (int) (m * hp->n_ff));
      matmul_shared (ctx, ctx->gate, m, &l->w_down, ctx->h, NULL, NULL, NULL, NULL, 0);
      rk_add (ctx->x, ctx->x, ctx->h, (int) (m * n_embd));
    }

  if (logits == NULL)
    return;
  rmsnorm_rows (ctx->h, ctx->x + (m - n_out_rows) * n_embd, w->output_norm, n_out_rows,
                n_embd, hp->rms_eps);
  matmul_shared (ctx, ctx->h, n_out_rows, &w->output, logits, NULL, NULL, NULL, NULL,
                 hp->n_vocab);
}

gboolean
ruv_context_decode (RuvContext    *ctx,
                    const gint32  *tokens,
                    gint64         n,
                    gint64         pos0,
                    float         *logits,
                    gboolean       want_all_logits,
                    GError       **error)
{
  const RuvHParams *hp;
  gint64 i, start;

  g_return_val_if_fail (ctx != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  hp = &ctx->w->hp;
  if (tokens == NULL || n < 1)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "nothing to decode (no tokens)");
      return FALSE;
    }
  if (pos0 < 0 || pos0 > ctx->n_past)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "position %" G_GINT64_FORMAT " does not follow the %" G_GINT64_FORMAT
                   " cached tokens", pos0, ctx->n_past);
      return FALSE;
    }
  if (n > ctx->n_ctx - pos0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "positions %" G_GINT64_FORMAT " .. %" G_GINT64_FORMAT " exceed the context "
                   "size of %" G_GINT64_FORMAT " tokens", pos0, pos0 + n - 1, ctx->n_ctx);
      return FALSE;
    }
  for (i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                     "token id %d (at index %" G_GINT64_FORMAT ") is outside the vocabulary "
                     "of %" G_GINT64_FORMAT " tokens", tokens[i], i, hp->n_vocab);
        return FALSE;
      }

  ctx->n_past = pos0;
  for (start = 0; start < n; start += ctx->n_batch)
    {
      gint64 m = MIN (ctx->n_batch, n - start);
      float *out = NULL;
      gint64 rows = 0;

      if (logits != NULL && want_all_logits)
        {
          out = logits + start * hp->n_vocab;
          rows = m;
        }
      else if (logits != NULL && start + m == n)
        {
          out = logits;
          rows = 1;
        }
      forward_step (ctx, tokens + start, m, pos0 + start, out, rows);
      ctx->n_past = pos0 + start + m;
    }
  return TRUE;
}
