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
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rk.h"
#include "ruv-error.h"
#include "ruv-forward.h"
#include "ruv-lora.h"
#include "ruv-model-private.h"

#define DEFAULT_N_CTX   4096
#define DEFAULT_N_BATCH 512

/* ---- the KV cache -------------------------------------------------------
 * The forward pass only calls kv_init, kv_free, kv_store, kv_attend,
 * kv_truncate and kv_shift. By default they run on the two-tier cache
 * (ruv-kv-cache.c: FP16 tail, packed Q8/Q4 store, attention straight over
 * the packed codes); a store precision of FP32 selects the simple cache
 * below, f32 (n_ctx, n_head_kv, head_dim) per layer, kept for comparison. */

typedef struct
{
  float  *k;          /* n_layer blocks of n_ctx rows */
  float  *v;
  gint64  n_ctx;
  gint64  row;        /* floats per token: n_head_kv * head_dim */
  gint64  n_layer;
  gsize   bytes;
} KvSimple;

typedef struct
{
  RuvTwoTierKvCache *tt;       /* NULL: the simple cache */
  KvSimple           simple;
  gint64             n_tokens; /* the simple cache's valid tokens */
  /* A measuring aid (RUVLLM_KV_ATTN_ERR set in the environment, two-tier
   * cache only): a second cache with an FP16 store receives the same keys
   * and values and answers the same queries, and the relative error of the
   * attention output against it is summed per layer and printed to stderr
   * when the context is freed ("kv-attn-err layer L rel E rows N"). Each
   * layer sees the real run's inputs, so the figure is that layer's own
   * store error, not what earlier layers passed on. */
  RuvTwoTierKvCache *shadow;
  double            *err_num;  /* per layer: sum |out - ref|^2 */
  double            *err_den;  /*            sum |ref|^2 */
  gint64            *err_rows;
  float             *ref;      /* scratch (n_batch, n_q) */
} KvCache;

static gboolean
kv_simple_init (KvSimple     *kv,
                gint64        n_layer,
                gint64        n_ctx,
                gint64        row,
                GError      **error)
{
  gsize n;

  kv->n_ctx = n_ctx;
  kv->row = row;
  kv->n_layer = n_layer;
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

static gboolean
kv_init (KvCache                *kv,
         const RuvHParams       *hp,
         gint64                  n_ctx,
         const RuvKvCacheConfig *want,
         rk_pool                *pool,
         GError                **error)
{
  RuvTwoTierKvCacheConfig cfg;

  if ((want->num_kv_heads != 0 && want->num_kv_heads != (guint) hp->n_head_kv) ||
      (want->head_dim != 0 && want->head_dim != (guint) hp->head_dim))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "KV cache config: %u KV heads of %u do not match the model's %"
                   G_GINT64_FORMAT " of %" G_GINT64_FORMAT, want->num_kv_heads,
                   want->head_dim, hp->n_head_kv, hp->head_dim);
      return FALSE;
    }
  if (want->store_precision == RUV_PRECISION_FP32)
    return kv_simple_init (&kv->simple, hp->n_layer, n_ctx, hp->n_head_kv * hp->head_dim,
                           error);
  cfg.kv = *want;
  cfg.kv.num_kv_heads = (guint) hp->n_head_kv;
  cfg.kv.head_dim = (guint) hp->head_dim;
  cfg.kv.max_tokens = (guint) n_ctx;
  cfg.kv.tail_length = (guint) MIN ((gint64) want->tail_length, n_ctx);
  cfg.num_layers = (gint) hp->n_layer;
  cfg.block_size = 64;
  kv->tt = ruv_two_tier_kv_cache_new (&cfg, error);
  if (kv->tt == NULL)
    return FALSE;
  ruv_two_tier_kv_cache_set_threads (kv->tt, pool);
  if (g_getenv ("RUVLLM_KV_ATTN_ERR") != NULL)
    {
      cfg.kv.store_precision = RUV_PRECISION_FP16;
      kv->shadow = ruv_two_tier_kv_cache_new (&cfg, error);
      if (kv->shadow == NULL)
        return FALSE;
      ruv_two_tier_kv_cache_set_threads (kv->shadow, pool);
      kv->err_num = g_new0 (double, hp->n_layer);
      kv->err_den = g_new0 (double, hp->n_layer);
      kv->err_rows = g_new0 (gint64, hp->n_layer);
    }
  return TRUE;
}

static void
kv_free (KvCache *kv)
{
  if (kv->shadow != NULL)
    {
      gint l, n = ruv_two_tier_kv_cache_get_config (kv->shadow)->num_layers;

      for (l = 0; l < n; l++)
        fprintf (stderr, "kv-attn-err layer %d rel %.6g rows %" G_GINT64_FORMAT "\n", l,
                 kv->err_den[l] > 0.0 ? sqrt (kv->err_num[l] / kv->err_den[l]) : 0.0,
                 kv->err_rows[l]);
    }
  g_clear_pointer (&kv->shadow, ruv_two_tier_kv_cache_free);
  g_clear_pointer (&kv->err_num, g_free);
  g_clear_pointer (&kv->err_den, g_free);
  g_clear_pointer (&kv->err_rows, g_free);
  g_clear_pointer (&kv->ref, g_free);
  g_clear_pointer (&kv->tt, ruv_two_tier_kv_cache_free);
  g_free (kv->simple.k);
  g_free (kv->simple.v);
}

/* Keeps the first n cached tokens. */
static void
kv_truncate (KvCache *kv,
             gint64   n)
{
  if (kv->shadow != NULL)
    ruv_two_tier_kv_cache_truncate (kv->shadow, n);
  if (kv->tt != NULL)
    ruv_two_tier_kv_cache_truncate (kv->tt, n);
  else
    kv->n_tokens = MIN (kv->n_tokens, n);
}

/* Rows k, v (m, row) for positions pos .. pos + m - 1 of layer il; every
 * layer holds exactly pos tokens before (kv_truncate first). */
static gboolean
kv_store (KvCache     *kv,
          gint64       il,
          gint64       pos,
          gint64       m,
          const float *k,
          const float *v,
          GError     **error)
{
  KvSimple *s = &kv->simple;
  gsize off;

  if (kv->tt != NULL)
    {
      gboolean ok;

      /* Layer 0 sets aside the pool bytes of the whole step, so pool
       * exhaustion (or another chat in the pool) stops it before any layer
       * changes; the rest is given back after the last layer. */
      if (il == 0 && !ruv_two_tier_kv_cache_reserve (kv->tt, m, error))
        return FALSE;
      ok = ruv_two_tier_kv_cache_append (kv->tt, (gint) il, k, v, m, error);
      if (!ok || il == ruv_two_tier_kv_cache_get_config (kv->tt)->num_layers - 1)
        ruv_two_tier_kv_cache_release_reservation (kv->tt);
      /* the shadow out of step (a restored state, a full cache) ends the
       * measurement, never the run */
      if (ok && kv->shadow != NULL &&
          (ruv_two_tier_kv_cache_get_n_tokens (kv->shadow, (gint) il) != pos ||
           !ruv_two_tier_kv_cache_append (kv->shadow, (gint) il, k, v, m, NULL)))
        {
          fprintf (stderr, "kv-attn-err: shadow cache out of step at layer %" G_GINT64_FORMAT
                   ", measurement stopped\n", il);
          g_clear_pointer (&kv->shadow, ruv_two_tier_kv_cache_free);
        }
      return ok;
    }
  off = ((gsize) il * s->n_ctx + pos) * s->row;
  memcpy (s->k + off, k, (gsize) m * s->row * sizeof (float));
  memcpy (s->v + off, v, (gsize) m * s->row * sizeof (float));
  if (il == s->n_layer - 1)
    kv->n_tokens = pos + m;
  return TRUE;
}

/* out (m, n_head, head_dim) = causal attention of q (m queries from pos)
 * over the cached positions 0 .. pos + m - 1 of layer il. */
static void
kv_attend (KvCache                   *kv,
           rk_pool                   *pool,
           const rk_attention_config *cfg,
           gint64                     il,
           const float               *q,
           gint64                     m,
           gint64                     pos,
           float                     *out)
{
  gsize off = (gsize) il * kv->simple.n_ctx * kv->simple.row;

  if (kv->tt != NULL)
    {
      /* cannot fail: the head counts were checked when the cache was made */
      ruv_two_tier_kv_cache_attend (kv->tt, (gint) il, q, (gint) m, cfg->num_heads, pos,
                                    cfg->scale, TRUE, out, NULL);
      if (kv->shadow != NULL)
        {
          gsize i, n = (gsize) m * cfg->num_heads * cfg->head_dim;

          kv->ref = g_realloc_n (kv->ref, n, sizeof (float));
          ruv_two_tier_kv_cache_attend (kv->shadow, (gint) il, q, (gint) m, cfg->num_heads,
                                        pos, cfg->scale, TRUE, kv->ref, NULL);
          for (i = 0; i < n; i++)
            {
              double e = (double) out[i] - kv->ref[i];

              kv->err_num[il] += e * e;
              kv->err_den[il] += (double) kv->ref[i] * kv->ref[i];
            }
          kv->err_rows[il] += m;
        }
      return;
    }
  rk_grouped_query_attention (pool, cfg, q, (int) m, pos, kv->simple.k + off,
                              kv->simple.v + off, pos + m, kv->simple.row, out);
}

/* Drops positions [begin, end) of n cached tokens, re-rotating the keys. */
static gboolean
kv_shift (KvCache              *kv,
          rk_rope_params       *rope,
          gint                  n_head_kv,
          gint                  head_dim,
          gint64                begin,
          gint64                end,
          GError              **error)
{
  KvSimple *s = &kv->simple;
  gint64 il, n = kv->n_tokens, moved = n - end;

  if (kv->shadow != NULL &&
      !ruv_two_tier_kv_cache_shift (kv->shadow, begin, end, ruv_kv_cache_rope_shift, rope,
                                    NULL))
    g_clear_pointer (&kv->shadow, ruv_two_tier_kv_cache_free);
  if (kv->tt != NULL)
    return ruv_two_tier_kv_cache_shift (kv->tt, begin, end, ruv_kv_cache_rope_shift, rope,
                                        error);
  for (il = 0; il < s->n_layer; il++)
    {
      float *k = s->k + (gsize) il * s->n_ctx * s->row;
      float *v = s->v + (gsize) il * s->n_ctx * s->row;

      memmove (k + begin * s->row, k + end * s->row, (gsize) moved * s->row * sizeof (float));
      memmove (v + begin * s->row, v + end * s->row, (gsize) moved * s->row * sizeof (float));
      ruv_kv_cache_rope_shift (k + begin * s->row, moved, n_head_kv, head_dim, begin - end,
                               rope);
    }
  kv->n_tokens = n - (end - begin);
  return TRUE;
}

static void
kv_stats (KvCache         *kv,
          RuvKvCacheStats *st)
{
  if (kv->tt != NULL)
    {
      ruv_two_tier_kv_cache_get_stats (kv->tt, st);
      return;
    }
  memset (st, 0, sizeof *st);
  st->total_tokens = st->tail_tokens = kv->n_tokens;
  st->tail_bytes = (guint64) kv->n_tokens * kv->simple.n_layer * 2 * kv->simple.row * 4;
  st->compression_ratio = 0.5;
  st->block_bytes = kv->simple.bytes;
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
  KvCache            kv;
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
  void              *xq[3];   /* activations in up to 3 vec_dot_types at once */
  RuvMicroLora      *lora;    /* adapters applied on every token, or NULL */
  gsize              scratch_bytes;
};

void
ruv_context_params_init (RuvContextParams *params)
{
  params->n_ctx = 0;
  params->n_batch = 0;
  params->n_threads = 0;
  ruv_kv_cache_config_init (&params->kv_cache);
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
  if (!kv_init (&ctx->kv, hp, ctx->n_ctx, &params->kv_cache, ctx->pool, error))
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
  for (il = 0; il < 3; il++)
    ctx->xq[il] = g_try_malloc (MAX (xq, 1));
  if (ctx->x == NULL || ctx->h == NULL || ctx->q == NULL || ctx->k == NULL ||
      ctx->v == NULL || ctx->a == NULL || ctx->gate == NULL || ctx->up == NULL ||
      ctx->rope_cs == NULL || ctx->xq[0] == NULL || ctx->xq[1] == NULL || ctx->xq[2] == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY,
                   "cannot allocate scratch buffers for a batch of %" G_GINT64_FORMAT " tokens",
                   nb);
      ruv_context_free (ctx);
      return NULL;
    }
  ctx->scratch_bytes = sizeof (float) * nb * (hp->n_embd + MAX (hp->n_embd, n_q) + 2 * n_q +
                                              2 * n_kv + 2 * hp->n_ff + hp->n_rot) + 3 * xq;
  return ctx;
}

void
ruv_context_set_lora (RuvContext   *ctx,
                      RuvMicroLora *lora)
{
  g_set_object (&ctx->lora, lora);
}

void
ruv_context_free (RuvContext *ctx)
{
  if (ctx == NULL)
    return;
  kv_free (&ctx->kv);
  g_free (ctx->x);
  g_free (ctx->h);
  g_free (ctx->q);
  g_free (ctx->k);
  g_free (ctx->v);
  g_free (ctx->a);
  g_free (ctx->gate);
  g_free (ctx->up);
  g_free (ctx->rope_cs);
  g_free (ctx->xq[0]);
  g_free (ctx->xq[1]);
  g_free (ctx->xq[2]);
  g_clear_object (&ctx->lora);
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
  kv_truncate (&ctx->kv, 0);
}

void
ruv_context_kv_truncate (RuvContext *ctx,
                         gint64      n_keep)
{
  ctx->n_past = CLAMP (n_keep, 0, ctx->n_past);
  kv_truncate (&ctx->kv, ctx->n_past);
}

gboolean
ruv_context_kv_shift (RuvContext *ctx,
                      gint64      begin,
                      gint64      end,
                      GError    **error)
{
  const RuvHParams *hp = &ctx->w->hp;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  if (begin < 0 || begin > end || end > ctx->n_past)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE,
                   "cannot drop positions %" G_GINT64_FORMAT " .. %" G_GINT64_FORMAT
                   " of %" G_GINT64_FORMAT " cached tokens", begin, end, ctx->n_past);
      return FALSE;
    }
  if (begin == end)
    return TRUE;
  kv_truncate (&ctx->kv, ctx->n_past);
  /* a failed shift leaves the cache as it was (ruv_two_tier_kv_cache_shift) */
  if (!kv_shift (&ctx->kv, &ctx->rope, (gint) hp->n_head_kv, (gint) hp->head_dim, begin, end,
                 error))
    return FALSE;
  ctx->n_past -= end - begin;
  return TRUE;
}

void
ruv_context_get_kv_stats (RuvContext      *ctx,
                          RuvKvCacheStats *stats)
{
  kv_stats (&ctx->kv, stats);
}

RuvPrecision
ruv_context_get_kv_store_precision (RuvContext *ctx)
{
  if (ctx->kv.tt == NULL)
    return RUV_PRECISION_FP32;
  return ruv_two_tier_kv_cache_get_config (ctx->kv.tt)->kv.store_precision;
}

void
ruv_context_get_memory_stats (RuvContext     *ctx,
                              RuvMemoryStats *stats)
{
  memset (stats, 0, sizeof *stats);
  stats->mapped_bytes = ruv_model_get_mapped_bytes (ctx->model);
  if (ctx->kv.tt != NULL)
    {
      RuvKvCacheStats st;

      ruv_two_tier_kv_cache_get_stats (ctx->kv.tt, &st);
      stats->kv_bytes = st.block_bytes;
    }
  else
    stats->kv_bytes = ctx->kv.simple.bytes;
  stats->scratch_bytes = ctx->scratch_bytes;
  stats->rss_bytes = ruv_process_rss_bytes ();
}

/* ---- one step ------------------------------------------------------------ */

/* Row jobs below take at least this many token rows per pool chunk: one row
 * of norm + quantize costs about a microsecond, like a pool dispatch. */
#define ROW_CHUNK 4
/* Weight bytes a fused decode chunk should cover at least. */
#define DECODE_MIN_BYTES 16384

/* The matrices (1 to 3) that read one input, and the vec_dot_types that
 * input is converted to: slot[i] is the ctx->xq buffer matrix i reads (its
 * type converted once and shared, e.g. Q8_0 for Q, K and V), -1 for F32
 * weights, which read the floats themselves. */
typedef struct
{
  const RuvWeight *w[3];
  int              n;
  int              slot[3];
  rk_type          vdt[3];
  int              n_slots;
} QuantPlan;

static void
plan_init (QuantPlan       *p,
           const RuvWeight *w0,
           const RuvWeight *w1,
           const RuvWeight *w2)
{
  const RuvWeight *ws[3] = { w0, w1, w2 };
  int i, s;

  p->n = 0;
  p->n_slots = 0;
  for (i = 0; i < 3 && ws[i] != NULL; i++)
    {
      rk_type vdt = rk_get_traits (ws[i]->type)->vec_dot_type;

      p->w[p->n] = ws[i];
      p->slot[p->n] = -1;
      if (vdt != RK_TYPE_F32)
        {
          for (s = 0; s < p->n_slots && p->vdt[s] != vdt; s++)
            ;
          if (s == p->n_slots)
            p->vdt[p->n_slots++] = vdt;
          p->slot[p->n] = s;
        }
      p->n++;
    }
}

/* Converts row t of x (n_in floats) into every slot of the plan. */
static void
plan_quantize_row (RuvContext      *ctx,
                   const QuantPlan *p,
                   const float     *x,
                   gint64           n_in,
                   gint64           t)
{
  int s;

  for (s = 0; s < p->n_slots; s++)
    rk_quantize_rows (NULL, p->vdt[s], x, n_in, n_in, 1,
                      (guint8 *) ctx->xq[s] + (gsize) t * rk_row_size (p->vdt[s], n_in));
}

/* Per token row t: x[t] += add[t] (add may be NULL); then, with out set,
 * out[t] = rmsnorm (x[t]) * norm, converted for plan. add may equal out
 * (each row is read before it is written). */
typedef struct
{
  RuvContext      *ctx;
  float           *x;
  const float     *add;
  const float     *norm;
  float           *out;
  const QuantPlan *plan;
  gint64           n;
} NormJob;

static void
norm_rows (void   *data,
           gint64  begin,
           gint64  end,
           int     thread_index)
{
  const NormJob *j = data;
  gint64 t, n = j->n;

  (void) thread_index;
  for (t = begin; t < end; t++)
    {
      float *x = j->x + t * n;

      if (j->add != NULL)
        rk_add (x, x, j->add + t * n, (int) n);
      if (j->out == NULL)
        continue;
      rk_rmsnorm (j->out + t * n, x, j->norm, (int) n, j->ctx->w->hp.rms_eps);
      if (j->plan != NULL)
        plan_quantize_row (j->ctx, j->plan, j->out + t * n, n, t);
    }
}

static void
norm_step (RuvContext      *ctx,
           float           *x,
           const float     *add,
           const float     *norm,
           float           *out,
           const QuantPlan *plan,
           gint64           m)
{
  NormJob j = { ctx, x, add, norm, out, plan, ctx->w->hp.n_embd };

  rk_pool_parallel_for (ctx->pool, m, ROW_CHUNK, norm_rows, &j);
}

/* Per token: biases, qwen3's per-head q/k norms, RoPE of q and k. */
typedef struct
{
  RuvContext     *ctx;
  const RuvLayer *l;
} QkJob;

static void
qk_rows (void   *data,
         gint64  begin,
         gint64  end,
         int     thread_index)
{
  const QkJob *j = data;
  RuvContext *ctx = j->ctx;
  const RuvLayer *l = j->l;
  const RuvHParams *hp = &ctx->w->hp;
  gint64 hd = hp->head_dim, n_q = hp->n_head * hd, n_kv = hp->n_head_kv * hd, t, hh;

  (void) thread_index;
  for (t = begin; t < end; t++)
    {
      float *q = ctx->q + t * n_q, *k = ctx->k + t * n_kv, *v = ctx->v + t * n_kv;
      const float *cs = ctx->rope_cs + t * hp->n_rot;

      if (l->bq != NULL)
        rk_add (q, q, l->bq, (int) n_q);
      if (l->bk != NULL)
        rk_add (k, k, l->bk, (int) n_kv);
      if (l->bv != NULL)
        rk_add (v, v, l->bv, (int) n_kv);
      if (l->q_norm != NULL)
        for (hh = 0; hh < hp->n_head; hh++)
          rk_rmsnorm (q + hh * hd, q + hh * hd, l->q_norm, (int) hd, hp->rms_eps);
      if (l->k_norm != NULL)
        for (hh = 0; hh < hp->n_head_kv; hh++)
          rk_rmsnorm (k + hh * hd, k + hh * hd, l->k_norm, (int) hd, hp->rms_eps);
      rk_rope_apply (q, (int) hp->n_head, (int) hd, cs, &ctx->rope);
      rk_rope_apply (k, (int) hp->n_head_kv, (int) hd, cs, &ctx->rope);
    }
}

/* Per token: gate = silu (gate) * up, converted for the down projection. */
typedef struct
{
  RuvContext      *ctx;
  const QuantPlan *plan;
} SwigluJob;

static void
swiglu_rows (void   *data,
             gint64  begin,
             gint64  end,
             int     thread_index)
{
  const SwigluJob *j = data;
  RuvContext *ctx = j->ctx;
  gint64 n = ctx->w->hp.n_ff, t;

  (void) thread_index;
  for (t = begin; t < end; t++)
    {
      rk_swiglu (ctx->gate + t * n, ctx->gate + t * n, ctx->up + t * n, (int) n);
      plan_quantize_row (ctx, j->plan, ctx->gate + t * n, n, t);
    }
}

typedef struct
{
  RuvContext *ctx;
  gint64      pos;
} RopeCacheJob;

static void
rope_cache_rows (void   *data,
                 gint64  begin,
                 gint64  end,
                 int     thread_index)
{
  const RopeCacheJob *j = data;
  gint64 t, n_rot = j->ctx->w->hp.n_rot;

  (void) thread_index;
  for (t = begin; t < end; t++)
    rk_rope_cache (j->ctx->rope_cs + t * n_rot, j->pos + t, &j->ctx->rope);
}

/* One token through the (up to 3) matrices of a plan in a single pool pass:
 * fused row r of [W0; W1; W2] is a row of one of them. */
typedef struct
{
  const QuantPlan *plan;
  const void      *xin[3];
  float           *y[3];
  gint64           start[4];
  int64_t          range_end[RK_MATVEC_MAX_RANGES];   /* rk_matvec_ranges */
} MatvecJob;

static void
matvec_rows (void   *data,
             gint64  begin,
             gint64  end,
             int     thread_index)
{
  const MatvecJob *j = data;
  int i;

  (void) thread_index;
  for (i = 0; i < j->plan->n; i++)
    {
      const RuvWeight *w = j->plan->w[i];
      gint64 lo = MAX (begin, j->start[i]), hi = MIN (end, j->start[i + 1]);

      if (lo >= hi)
        continue;
      /* inside a pool job: runs on this thread */
      rk_matmul_prequant (NULL, w->type,
                          (const guint8 *) w->data + (gsize) (lo - j->start[i]) * w->row_stride,
                          w->row_stride, hi - lo, w->n_in, j->xin[i], 1,
                          j->y[i] + (lo - j->start[i]), 1);
    }
}

/* Ranges [begin, end) of the job's range_end. */
static void
matvec_ranges (void   *data,
               gint64  begin,
               gint64  end,
               int     thread_index)
{
  const MatvecJob *j = data;
  gint64 k;

  for (k = begin; k < end; k++)
    matvec_rows (data, k > 0 ? j->range_end[k - 1] : 0, j->range_end[k], thread_index);
}

/* y_i = x W_i^T for the plan's matrices (m rows of n_in floats in x).
 * quantized: x's rows are already in the plan's slots (a row job did it);
 * otherwise they are converted here. y_stride0 > 0 sets the row stride of
 * y0 (others: n_out). */
static void
matmul_plan (RuvContext      *ctx,
             const QuantPlan *p,
             const float     *x,
             gboolean         quantized,
             gint64           m,
             float           *y0,
             float           *y1,
             float           *y2,
             gint64           y_stride0)
{
  MatvecJob j;
  gint64 n_in = p->w[0]->n_in;
  gsize max_stride = 1;
  int i, s;

  j.plan = p;
  j.y[0] = y0;
  j.y[1] = y1;
  j.y[2] = y2;
  if (!quantized)
    for (s = 0; s < p->n_slots; s++)
      rk_quantize_rows (ctx->pool, p->vdt[s], x, n_in, n_in, m, ctx->xq[s]);
  j.start[0] = 0;
  for (i = 0; i < p->n; i++)
    {
      j.xin[i] = p->slot[i] >= 0 ? ctx->xq[p->slot[i]] : (const void *) x;
      j.start[i + 1] = j.start[i] + p->w[i]->n_out;
      max_stride = MAX (max_stride, p->w[i]->row_stride);
    }
  if (m == 1)
    {
      gint nt = rk_pool_n_threads (ctx->pool);
      gint64 min_rows = MAX (1, DECODE_MIN_BYTES / (gint64) max_stride);

      /* ranges of shrinking size, so the threads end together */
      if (nt > 1 && nt * RK_MATVEC_RANGES_PER_THREAD <= RK_MATVEC_MAX_RANGES)
        rk_pool_parallel_for (ctx->pool,
                              rk_matvec_ranges (j.start[p->n], nt, min_rows, j.range_end), 1,
                              matvec_ranges, &j);
      else
        rk_pool_parallel_for (ctx->pool, j.start[p->n], min_rows, matvec_rows, &j);
      return;
    }
  for (i = 0; i < p->n; i++)
    {
      const RuvWeight *w = p->w[i];

      rk_matmul_prequant (ctx->pool, w->type, w->data, w->row_stride, w->n_out, w->n_in,
                          j.xin[i], m, j.y[i], i == 0 && y_stride0 > 0 ? y_stride0 : w->n_out);
    }
}

/* tokens (m <= n_batch) at positions pos .. pos + m - 1, all checked.
 * logits: NULL, or n_out_rows rows of n_vocab for the last n_out_rows
 * tokens (1 or m).
 *
 * Row work (norms, biases, RoPE, SwiGLU, residual adds and the conversion
 * of activations to the vec_dot_types) runs per token row on the pool,
 * fused so each row is touched once between two matrix products; for one
 * token it runs inline. A decode step is 5 pool passes per layer: Q+K+V,
 * attention, O, gate+up, down. */
static gboolean
forward_step (RuvContext   *ctx,
              const gint32 *tokens,
              gint64        m,
              gint64        pos,
              float        *logits,
              gint64        n_out_rows,
              GError      **error)
{
  const RuvWeights *w = ctx->w;
  const RuvHParams *hp = &w->hp;
  gint64 n_embd = hp->n_embd, hd = hp->head_dim;
  gint64 n_q = hp->n_head * hd, n_kv = hp->n_head_kv * hd;
  const float *pending = NULL;   /* the last down projection, not yet added */
  RopeCacheJob rj = { ctx, pos };
  QuantPlan qkv, o, ffn, down, out;
  QkJob qj;
  SwigluJob sj;
  gint64 il;

  rk_get_rows (w->token_embd.type, w->token_embd.data, w->token_embd.row_stride, n_embd,
               tokens, m, ctx->x);
  rk_pool_parallel_for (ctx->pool, m, 16, rope_cache_rows, &rj);

  for (il = 0; il < hp->n_layer; il++)
    {
      const RuvLayer *l = &w->layers[il];

      plan_init (&qkv, &l->wq, &l->wk, &l->wv);
      plan_init (&o, &l->wo, NULL, NULL);
      plan_init (&ffn, &l->w_gate, &l->w_up, NULL);
      plan_init (&down, &l->w_down, NULL, NULL);

      /* attention */
      norm_step (ctx, ctx->x, pending, l->attn_norm, ctx->h, &qkv, m);
      matmul_plan (ctx, &qkv, ctx->h, TRUE, m, ctx->q, ctx->k, ctx->v, 0);
      ruv_lora_hook (ctx->lora, il, RUV_TARGET_Q_PROJ, ctx->h, m, n_embd, ctx->q, n_q, pos);
      ruv_lora_hook (ctx->lora, il, RUV_TARGET_K_PROJ, ctx->h, m, n_embd, ctx->k, n_kv, pos);
      ruv_lora_hook (ctx->lora, il, RUV_TARGET_V_PROJ, ctx->h, m, n_embd, ctx->v, n_kv, pos);
      qj.ctx = ctx;
      qj.l = l;
      rk_pool_parallel_for (ctx->pool, m, ROW_CHUNK, qk_rows, &qj);
      if (!kv_store (&ctx->kv, il, pos, m, ctx->k, ctx->v, error))
        return FALSE;
      kv_attend (&ctx->kv, ctx->pool, &ctx->attn, il, ctx->q, m, pos, ctx->a);
      matmul_plan (ctx, &o, ctx->a, FALSE, m, ctx->h, NULL, NULL, 0);
      ruv_lora_hook (ctx->lora, il, RUV_TARGET_O_PROJ, ctx->a, m, n_q, ctx->h, n_embd, pos);

      /* feed-forward: x += h, then its norm */
      norm_step (ctx, ctx->x, ctx->h, l->ffn_norm, ctx->h, &ffn, m);
      matmul_plan (ctx, &ffn, ctx->h, TRUE, m, ctx->gate, ctx->up, NULL, 0);
      ruv_lora_hook (ctx->lora, il, RUV_TARGET_GATE_PROJ, ctx->h, m, n_embd, ctx->gate, hp->n_ff,
                     pos);
      ruv_lora_hook (ctx->lora, il, RUV_TARGET_UP_PROJ, ctx->h, m, n_embd, ctx->up, hp->n_ff, pos);
      sj.ctx = ctx;
      sj.plan = &down;
      rk_pool_parallel_for (ctx->pool, m, ROW_CHUNK, swiglu_rows, &sj);
      matmul_plan (ctx, &down, ctx->gate, TRUE, m, ctx->h, NULL, NULL, 0);
      ruv_lora_hook (ctx->lora, il, RUV_TARGET_DOWN_PROJ, ctx->gate, m, hp->n_ff, ctx->h, n_embd,
                     pos);
      pending = ctx->h;
    }
  if (pending != NULL)
    norm_step (ctx, ctx->x, pending, NULL, NULL, NULL, m);

  ruv_lora_hook_final (ctx->lora, ctx->x, m, n_embd, pos);
  if (logits == NULL)
    return TRUE;
  plan_init (&out, &w->output, NULL, NULL);
  norm_step (ctx, ctx->x + (m - n_out_rows) * n_embd, NULL, w->output_norm, ctx->h, &out,
             n_out_rows);
  matmul_plan (ctx, &out, ctx->h, TRUE, n_out_rows, logits, NULL, NULL, hp->n_vocab);
  return TRUE;
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
  kv_truncate (&ctx->kv, pos0);
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
      if (!forward_step (ctx, tokens + start, m, pos0 + start, out, rows, error))
        {
          /* some layers may hold the step's tokens: keep what all hold */
          kv_truncate (&ctx->kv, pos0 + start);
          ctx->n_past = pos0 + start;
          return FALSE;
        }
      ctx->n_past = pos0 + start + m;
    }
  return TRUE;
}

/* ---- saved KV state ------------------------------------------------------ */

gboolean
ruv_context_kv_save (RuvContext  *ctx,
                     const char  *path,
                     const char  *fingerprint,
                     const void  *data,
                     gsize        data_len,
                     GError     **error)
{
  if (ctx->kv.tt == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE,
                   "the simple f32 KV cache cannot be saved");
      return FALSE;
    }
  return ruv_two_tier_kv_cache_save_with_data (ctx->kv.tt, path, fingerprint, data, data_len,
                                               error);
}

gboolean
ruv_context_kv_restore (RuvContext  *ctx,
                        const char  *path,
                        const char  *fingerprint,
                        GBytes     **data,
                        GError     **error)
{
  if (ctx->kv.tt == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE,
                   "the simple f32 KV cache cannot be restored");
      return FALSE;
    }
  if (!ruv_two_tier_kv_cache_restore_with_data (ctx->kv.tt, path, fingerprint, data, error))
    return FALSE;
  /* the state's layout fixed max_tokens = n_ctx; every layer holds the same */
  ctx->n_past = ruv_two_tier_kv_cache_get_n_tokens (ctx->kv.tt, 0);
  return TRUE;
}
