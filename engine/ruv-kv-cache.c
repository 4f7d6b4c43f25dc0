/* ruv-kv-cache.c — the two-tier KV cache (FP16 tail + packed Q8/Q4 store) in
 * paged, reference-counted blocks. SPDX-License-Identifier: MIT
 *
 * A layer of a sequence has two block tables. Store block i holds store
 * tokens i*bs .. i*bs + bs - 1 (the last block may be partly filled); tail
 * block i holds tail slots i*bs.., where tail token j sits in slot
 * tail_off + j: migrating tokens advances tail_off, and a tail block is given
 * back once every slot in it has migrated. Absolute position p of a layer is
 * store token p when p < n_store, else tail token p - n_store.
 *
 * Block layouts (bs tokens, H = num_kv_heads, D = head_dim, row = (slot, head)):
 *   tail block:  K [bs][H][D] elements, then V [bs][H][D]   (FP16/BF16/FP32)
 *   store block: for K, then for V: codes [bs*H][codes_bytes] padded to 8
 *                bytes, then scales d [bs*H][n_groups] halves, then (Q4)
 *                offsets z [bs*H][n_groups] int8. FP16 stores keep halves in
 *                the codes area and have no scales.
 * The first q8_layers layers have their own format (hi_fmt_init): in a Q4
 * store Q8, or Q7 (Q8 codes in 7 bits, rk-kvquant.h) where Q8 would leave the
 * store less than 3.5x smaller than FP16; in a Q8 store Q10 (10-bit codes)
 * where it stays 1.9x smaller. Each layer points at its store format.
 *
 * Blocks are written only by a cache that holds them alone: before writing
 * into a block another cache also holds (after a fork), the block is copied.
 */
#include <math.h>
#include <string.h>

#include "rk-fp16.h"
#include "rk-kvquant.h"
#include "rk-matmul.h"
#include "rk-ops.h"
#include "ruv-error.h"
#include "ruv-kv-cache.h"

#define MAX_BLOCK_SIZE 256

/* ---- config -------------------------------------------------------------- */

/* The cache's working copy of its config: signed, flat, resolved. */
typedef struct
{
  gint64       tail_length;
  RuvPrecision tail_precision;
  RuvPrecision store_precision;
  gint64       max_tokens;
  gint         num_kv_heads;
  gint         head_dim;
  gint64       migration_batch;
  gint         num_layers;
  gint         block_size;
  gint         q8_layers;       /* of a Q4 store, the first layers in Q8 */
} KvCfg;

void
ruv_two_tier_kv_cache_config_init (RuvTwoTierKvCacheConfig *config)
{
  ruv_kv_cache_config_init (&config->kv);
  config->kv.num_kv_heads = 8;
  config->kv.head_dim = 128;
  config->num_layers = 1;
  config->block_size = 32;
}

gint
ruv_kv_cache_group_size (gint head_dim)
{
  if (head_dim % 64 == 0)
    return 64;
  if (head_dim % 32 == 0)
    return 32;
  return head_dim;
}

static gboolean
store_precision_ok (RuvPrecision p)
{
  return p == RUV_PRECISION_Q8 || p == RUV_PRECISION_Q4 || p == RUV_PRECISION_FP16;
}

static gboolean
kv_cfg_validate (const KvCfg *config,
                 GError     **error)
{
  const char *what = NULL;

  if (config->num_kv_heads <= 0)
    what = "num_kv_heads must be at least 1";
  else if (config->head_dim <= 0 || config->head_dim > 65536)
    what = "head_dim must be 1 .. 65536";
  else if (config->num_layers <= 0)
    what = "num_layers must be at least 1";
  else if (config->block_size <= 0 || config->block_size > MAX_BLOCK_SIZE)
    what = "block_size must be 1 .. 256";
  else if (config->max_tokens <= 0 || config->max_tokens > (G_GINT64_CONSTANT (1) << 40))
    what = "max_tokens must be at least 1";
  else if (config->migration_batch <= 0)
    what = "migration_batch must be at least 1";
  else if (config->tail_length < 0 || config->tail_length > config->max_tokens)
    what = "tail_length must be 0 .. max_tokens";
  else if (config->tail_precision != RUV_PRECISION_FP16 &&
           config->tail_precision != RUV_PRECISION_BF16 &&
           config->tail_precision != RUV_PRECISION_FP32)
    what = "tail_precision must be FP16, BF16 or FP32";
  else if (!store_precision_ok (config->store_precision))
    what = "store_precision must be Q8, Q4 or FP16";
  else if (config->store_precision == RUV_PRECISION_Q4 && config->head_dim % 2 != 0)
    what = "a Q4 store needs an even head_dim";
  else if ((gint64) config->num_kv_heads * config->head_dim > (1 << 24))
    what = "num_kv_heads * head_dim is too large";
  if (what != NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "KV cache config: %s", what);
      return FALSE;
    }
  return TRUE;
}

static void
kv_cfg_from_public (KvCfg *k, const RuvTwoTierKvCacheConfig *c)
{
  k->tail_length = c->kv.tail_length;
  k->tail_precision = c->kv.tail_precision;
  k->store_precision = c->kv.store_precision;
  k->max_tokens = c->kv.max_tokens;
  k->num_kv_heads = (gint) MIN (c->kv.num_kv_heads, (guint) G_MAXINT);
  k->head_dim = (gint) MIN (c->kv.head_dim, (guint) G_MAXINT);
  k->migration_batch = c->kv.migration_batch;
  k->num_layers = c->num_layers;
  k->block_size = c->block_size;
  k->q8_layers = (gint) MIN (c->kv.q8_layers, (guint) MAX (c->num_layers, 0));
}

gboolean
ruv_two_tier_kv_cache_config_validate (const RuvTwoTierKvCacheConfig *config,
                                       GError                       **error)
{
  KvCfg k;

  kv_cfg_from_public (&k, config);
  return kv_cfg_validate (&k, error);
}

/* ---- the pool ------------------------------------------------------------ */

typedef struct
{
  gint    refs;
  gsize   bytes;
  guint8 *data;
} KvBlock;

struct _RuvKvPool
{
  gint       ref_count;
  GMutex     lock;
  guint64    max_bytes;
  guint64    used_bytes;
  guint64    reserved_bytes;  /* held for caches by ruv_two_tier_kv_cache_reserve */
  GPtrArray *blocks;      /* KvBlock*, NULL for a free id */
  GArray    *free_ids;    /* gint32 */
};

RuvKvPool *
ruv_kv_pool_new (guint64 max_bytes)
{
  RuvKvPool *pool = g_new0 (RuvKvPool, 1);

  pool->ref_count = 1;
  g_mutex_init (&pool->lock);
  pool->max_bytes = max_bytes;
  pool->blocks = g_ptr_array_new ();
  pool->free_ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  return pool;
}

RuvKvPool *
ruv_kv_pool_ref (RuvKvPool *pool)
{
  g_atomic_int_inc (&pool->ref_count);
  return pool;
}

void
ruv_kv_pool_unref (RuvKvPool *pool)
{
  guint i;

  if (pool == NULL || !g_atomic_int_dec_and_test (&pool->ref_count))
    return;
  for (i = 0; i < pool->blocks->len; i++)
    {
      KvBlock *b = g_ptr_array_index (pool->blocks, i);

      if (b != NULL)
        {
          g_free (b->data);
          g_free (b);
        }
    }
  g_ptr_array_free (pool->blocks, TRUE);
  g_array_free (pool->free_ids, TRUE);
  g_mutex_clear (&pool->lock);
  g_free (pool);
}

guint64
ruv_kv_pool_get_max_bytes (RuvKvPool *pool)
{
  return pool->max_bytes;
}

guint64
ruv_kv_pool_get_used_bytes (RuvKvPool *pool)
{
  guint64 v;

  g_mutex_lock (&pool->lock);
  v = pool->used_bytes;
  g_mutex_unlock (&pool->lock);
  return v;
}

gint64
ruv_kv_pool_get_n_blocks (RuvKvPool *pool)
{
  gint64 v;

  g_mutex_lock (&pool->lock);
  v = (gint64) pool->blocks->len - (gint64) pool->free_ids->len;
  g_mutex_unlock (&pool->lock);
  return v;
}

/* Bytes nobody holds or has reserved. */
static guint64
pool_free_bytes_locked (RuvKvPool *pool)
{
  guint64 taken = pool->used_bytes + pool->reserved_bytes;

  if (pool->max_bytes == 0)
    return G_MAXUINT64;
  return pool->max_bytes > taken ? pool->max_bytes - taken : 0;
}

static void
pool_unref_block_locked (RuvKvPool *pool,
                         gint32     id)
{
  KvBlock *b = g_ptr_array_index (pool->blocks, id);

  if (--b->refs > 0)
    return;
  pool->used_bytes -= b->bytes;
  g_free (b->data);
  g_free (b);
  g_ptr_array_index (pool->blocks, id) = NULL;
  g_array_append_val (pool->free_ids, id);
}

static void
pool_unref_block (RuvKvPool *pool,
                  gint32     id)
{
  g_mutex_lock (&pool->lock);
  pool_unref_block_locked (pool, id);
  g_mutex_unlock (&pool->lock);
}

static void
pool_ref_block (RuvKvPool *pool,
                gint32     id)
{
  g_mutex_lock (&pool->lock);
  ((KvBlock *) g_ptr_array_index (pool->blocks, id))->refs++;
  g_mutex_unlock (&pool->lock);
}

static gboolean
pool_block_shared (RuvKvPool *pool,
                   gint32     id)
{
  gboolean shared;

  g_mutex_lock (&pool->lock);
  shared = ((KvBlock *) g_ptr_array_index (pool->blocks, id))->refs > 1;
  g_mutex_unlock (&pool->lock);
  return shared;
}

/* Takes n blocks of `bytes` each, all or none, drawing first on the bytes
 * *reserved for the caller (may be NULL; guarded by the pool's lock); *took:
 * how many of those. */
static gboolean
pool_alloc (RuvKvPool *pool,
            gsize      bytes,
            guint      n,
            guint64   *reserved,
            guint64   *took,
            gint32    *ids,
            guint8   **ptrs,
            GError   **error)
{
  guint64 need, left, mine;
  guint i;

  *took = 0;
  if (n == 0)
    return TRUE;
  g_mutex_lock (&pool->lock);
  mine = reserved != NULL ? *reserved : 0;
  left = pool_free_bytes_locked (pool);
  left = left > G_MAXUINT64 - mine ? G_MAXUINT64 : left + mine;
  need = (guint64) bytes * n;
  if (need / n != bytes || need > left)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY,
                   "KV cache pool exhausted: asked for %u blocks (%" G_GUINT64_FORMAT
                   " bytes), %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes left",
                   n, need, left, pool->max_bytes);
      g_mutex_unlock (&pool->lock);
      return FALSE;
    }
  for (i = 0; i < n; i++)
    {
      KvBlock *b;
      gint32 id;
      guint8 *data = g_try_malloc (bytes);

      if (data == NULL || (pool->free_ids->len == 0 && pool->blocks->len >= G_MAXINT32))
        {
          g_free (data);
          while (i-- > 0)
            pool_unref_block_locked (pool, ids[i]);
          g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY,
                       "KV cache: cannot allocate %u blocks of %" G_GSIZE_FORMAT " bytes",
                       n, bytes);
          g_mutex_unlock (&pool->lock);
          return FALSE;
        }
      b = g_new (KvBlock, 1);
      b->refs = 1;
      b->bytes = bytes;
      b->data = data;
      if (pool->free_ids->len > 0)
        {
          id = g_array_index (pool->free_ids, gint32, pool->free_ids->len - 1);
          g_array_set_size (pool->free_ids, pool->free_ids->len - 1);
          g_ptr_array_index (pool->blocks, id) = b;
        }
      else
        {
          id = (gint32) pool->blocks->len;
          g_ptr_array_add (pool->blocks, b);
        }
      pool->used_bytes += bytes;
      ids[i] = id;
      ptrs[i] = data;
    }
  /* what was reserved for these blocks is now used */
  mine = MIN (mine, need);
  if (reserved != NULL)
    *reserved -= mine;
  pool->reserved_bytes -= mine;
  *took = mine;
  g_mutex_unlock (&pool->lock);
  return TRUE;
}

/* ---- formats --------------------------------------------------------------- */

typedef struct _StoreFmt
{
  RuvPrecision prec;
  guint        bits;          /* code bits of a Q8-format store: 8, 7 (Q7, rk_kvq7_*)
                               * or 10 (Q10, rk_kvq10_*) */
  gint         group;
  gint         n_groups;
  gsize        codes_bytes;   /* per row */
  gsize        scale_bytes;   /* per row: d (and z) */
  gsize        codes_area;    /* bs*H rows of codes, padded to 8 */
  gsize        region;        /* K (or V) part of a block */
  gsize        block;
} StoreFmt;

static void
store_fmt_init (StoreFmt               *f,
                const KvCfg *c,
                RuvPrecision            prec,
                guint                   bits)
{
  gsize rows = (gsize) c->block_size * c->num_kv_heads;

  f->prec = prec;
  f->bits = prec == RUV_PRECISION_Q8 && bits != 0 ? bits : 8;
  f->group = ruv_kv_cache_group_size (c->head_dim);
  f->n_groups = c->head_dim / f->group;
  switch ((int) prec)
    {
    case RUV_PRECISION_Q8:
      f->codes_bytes = (gsize) c->head_dim * f->bits / 8;
      f->scale_bytes = 2 * (gsize) f->n_groups;
      break;
    case RUV_PRECISION_Q4:
      f->codes_bytes = (gsize) c->head_dim / 2;
      f->scale_bytes = 3 * (gsize) f->n_groups;
      break;
    case RUV_PRECISION_FP16:
    default:
      f->codes_bytes = 2 * (gsize) c->head_dim;
      f->scale_bytes = 0;
      break;
    }
  f->codes_area = (rows * f->codes_bytes + 7) & ~(gsize) 7;
  /* padded to 8 too: V's half scales follow K's region, whose Q4 offsets
   * (one byte per group) can leave it odd */
  f->region = (f->codes_area + rows * f->scale_bytes + 7) & ~(gsize) 7;
  f->block = 2 * f->region;
}

static inline guint8 *
st_codes (const StoreFmt *f, guint8 *blk, int kv, gsize row)
{
  return blk + kv * f->region + row * f->codes_bytes;
}

static inline rk_fp16 *
st_d (const StoreFmt *f, guint8 *blk, int kv, gsize row)
{
  return (rk_fp16 *) (void *) (blk + kv * f->region + f->codes_area +
                               row * (gsize) f->n_groups * 2);
}

static inline int8_t *
st_z (const StoreFmt *f, guint8 *blk, int kv, gsize row, gsize rows)
{
  return (int8_t *) (void *) (blk + kv * f->region + f->codes_area +
                              rows * (gsize) f->n_groups * 2 + row * (gsize) f->n_groups);
}

/* ---- the cache ----------------------------------------------------------- */

typedef struct
{
  GArray    *ids;    /* gint32 pool block ids */
  GPtrArray *ptrs;   /* their data */
} Table;

typedef struct
{
  const struct _StoreFmt *sf;   /* this layer's store format (of the cache) */
  Table  store;
  Table  tail;
  gint64 n_store;
  gint64 n_tail;
  gint64 tail_off;
} KvLayer;

struct _RuvTwoTierKvCache
{
  KvCfg            cfg;
  RuvTwoTierKvCacheConfig pub;
  RuvKvPool       *pool;
  rk_pool         *threads;
  KvLayer         *layers;
  StoreFmt         sf;            /* the store's format */
  StoreFmt         sf_hi;         /* of the first q8_layers layers (hi_fmt_init) */
  gsize            tail_es;       /* bytes per tail element */
  gsize            tail_region;   /* K (or V) part of a tail block */
  gsize            tail_block;
  gsize            rows;          /* bs * H */
  rk_kvq_kernels   kk;
  GMutex           lock;          /* counts, for stats from other threads */
  guint64          reserved;      /* pool bytes reserved for this cache (pool lock) */
};

/* A Q8-format row's codes as int8: the stored bytes, or for Q7 unpacked
 * into tmp (head_dim bytes). */
static inline const int8_t *
q8_codes (const RuvTwoTierKvCache *c, const StoreFmt *f, const guint8 *codes, int8_t *tmp)
{
  if (f->bits != 7)
    return (const int8_t *) codes;
  c->kk.q7_unpack (c->cfg.head_dim, codes, tmp);
  return tmp;
}

/* A Q10 row as floats (x: head_dim). */
static inline void
q10_row_f32 (const RuvTwoTierKvCache *c, const StoreFmt *f, const guint8 *codes,
             const rk_fp16 *d, float *x)
{
  int16_t tmp[512];

  c->kk.q10_unpack (c->cfg.head_dim, codes, tmp);
  c->kk.q16_dequantize (c->cfg.head_dim, f->group, tmp, d, x);
}

static void
table_init (Table *t)
{
  t->ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  t->ptrs = g_ptr_array_new ();
}

static void
table_push (Table *t, gint32 id, guint8 *p)
{
  g_array_append_val (t->ids, id);
  g_ptr_array_add (t->ptrs, p);
}

static inline gint32
table_id (const Table *t, gint64 i)
{
  return g_array_index (t->ids, gint32, i);
}

static inline guint8 *
table_ptr (const Table *t, gint64 i)
{
  return g_ptr_array_index (t->ptrs, i);
}

/* Gives back blocks from index `keep` on. */
static void
table_cut (RuvKvPool *pool, Table *t, gint64 keep)
{
  gint64 i;

  if (keep >= (gint64) t->ids->len)
    return;
  for (i = keep; i < (gint64) t->ids->len; i++)
    pool_unref_block (pool, table_id (t, i));
  g_array_set_size (t->ids, (guint) keep);
  g_ptr_array_set_size (t->ptrs, (guint) keep);
}

/* Gives back the first n blocks. */
static void
table_drop_front (RuvKvPool *pool, Table *t, gint64 n)
{
  gint64 i;

  for (i = 0; i < n; i++)
    pool_unref_block (pool, table_id (t, i));
  g_array_remove_range (t->ids, 0, (guint) n);
  g_ptr_array_remove_range (t->ptrs, 0, (guint) n);
}

static void
table_free (RuvKvPool *pool, Table *t)
{
  if (t->ids == NULL)
    return;
  table_cut (pool, t, 0);
  g_array_free (t->ids, TRUE);
  g_ptr_array_free (t->ptrs, TRUE);
  t->ids = NULL;
  t->ptrs = NULL;
}

/* Layer l's store format: sf_hi (Q8/Q7 for a Q4 store, Q10 or Q8 for a Q8
 * store) for the first q8_layers layers, else sf. */
static inline const StoreFmt *
layer_fmt (const RuvTwoTierKvCache *c, gint l)
{
  return l < c->cfg.q8_layers ? &c->sf_hi : &c->sf;
}

static void
point_layers (RuvTwoTierKvCache *c, KvLayer *layers)
{
  gint l;

  for (l = 0; l < c->cfg.num_layers; l++)
    layers[l].sf = layer_fmt (c, l);
}

static gboolean
same_fmt (const StoreFmt *a, const StoreFmt *b)
{
  return a->prec == b->prec && a->bits == b->bits;
}

/* Whether a store whose first hl of L layers have format hi and the others
 * format lo is at least `target` times smaller than FP16, by the bytes the
 * stats count (codes and scales per row; not the blocks' padding, so the
 * choice does not depend on block_size). */
static gboolean
fmt_fits (const KvCfg *c, gint L, gint hl, const StoreFmt *hi, const StoreFmt *lo,
          double target)
{
  double f16 = 2.0 * c->head_dim;

  return (double) L * f16 >= target * ((double) hl * (hi->codes_bytes + hi->scale_bytes) +
                                       (double) (L - hl) * (lo->codes_bytes + lo->scale_bytes));
}

/* The format of the first q8_layers layers (most of a store's effect on the
 * logits comes from the first layer's error) of a store of precision prec
 * whose other layers have format lo: as many bits as keep the store within
 * its memory target. A Q4 store (3.5x smaller than FP16): Q8, or Q7 (Q8
 * codes in 7 bits) where Q8 would not make it (few layers: one Q8 layer of
 * Llama-3.2-1B's 16 gives 3.47x). A Q8 store (1.9x): Q10 (10-bit codes)
 * where it fits (12 layers or more at head_dim 64), else Q8. */
static void
hi_fmt_init (StoreFmt *f, const KvCfg *c, RuvPrecision prec, const StoreFmt *lo)
{
  gint L = MAX (c->num_layers, 1), hl = MIN (c->q8_layers, L);
  gboolean packable = c->head_dim % 8 == 0 && c->head_dim <= 512;

  if (prec == RUV_PRECISION_Q8)
    {
      store_fmt_init (f, c, RUV_PRECISION_Q8, 10);
      /* groups up to 128: the int16 x int16 sums stay exact in int32 */
      if (hl > 0 && packable && f->group <= 128 && fmt_fits (c, L, hl, f, lo, 1.9))
        return;
      store_fmt_init (f, c, RUV_PRECISION_Q8, 8);
      return;
    }
  if (prec != RUV_PRECISION_Q4)
    {
      store_fmt_init (f, c, prec, 0);
      return;
    }
  store_fmt_init (f, c, RUV_PRECISION_Q8, 8);
  if (hl > 0 && packable && !fmt_fits (c, L, hl, f, lo, 3.5))
    store_fmt_init (f, c, RUV_PRECISION_Q8, 7);
}

static void
cache_set_formats (RuvTwoTierKvCache *c)
{
  c->rows = (gsize) c->cfg.block_size * c->cfg.num_kv_heads;
  store_fmt_init (&c->sf, &c->cfg, c->cfg.store_precision, 0);
  hi_fmt_init (&c->sf_hi, &c->cfg, c->cfg.store_precision, &c->sf);
  point_layers (c, c->layers);
  c->tail_es = c->cfg.tail_precision == RUV_PRECISION_FP32 ? 4 : 2;
  c->tail_region = c->rows * c->cfg.head_dim * c->tail_es;
  c->tail_block = 2 * c->tail_region;
}

RuvTwoTierKvCache *
ruv_two_tier_kv_cache_new_with_pool (const RuvTwoTierKvCacheConfig *config,
                                     RuvKvPool                     *pool,
                                     GError                       **error)
{
  RuvTwoTierKvCache *c;
  KvCfg k;
  gint l;

  kv_cfg_from_public (&k, config);
  if (!kv_cfg_validate (&k, error))
    return NULL;
  c = g_new0 (RuvTwoTierKvCache, 1);
  c->cfg = k;
  c->pub = *config;
  c->pub.kv.q8_layers = (guint) k.q8_layers;   /* at most num_layers */
  c->pool = pool != NULL ? ruv_kv_pool_ref (pool) : ruv_kv_pool_new (0);
  g_mutex_init (&c->lock);
  c->kk = rk_kvq_kernels_get ();
  c->layers = g_new0 (KvLayer, config->num_layers);
  for (l = 0; l < config->num_layers; l++)
    {
      table_init (&c->layers[l].store);
      table_init (&c->layers[l].tail);
    }
  cache_set_formats (c);
  return c;
}

RuvTwoTierKvCache *
ruv_two_tier_kv_cache_new (const RuvTwoTierKvCacheConfig *config,
                           GError                       **error)
{
  return ruv_two_tier_kv_cache_new_with_pool (config, NULL, error);
}

void
ruv_two_tier_kv_cache_free (RuvTwoTierKvCache *c)
{
  gint l;

  if (c == NULL)
    return;
  ruv_two_tier_kv_cache_release_reservation (c);
  for (l = 0; l < c->cfg.num_layers; l++)
    {
      table_free (c->pool, &c->layers[l].store);
      table_free (c->pool, &c->layers[l].tail);
    }
  g_free (c->layers);
  ruv_kv_pool_unref (c->pool);
  g_mutex_clear (&c->lock);
  g_free (c);
}

const RuvTwoTierKvCacheConfig *
ruv_two_tier_kv_cache_get_config (RuvTwoTierKvCache *c)
{
  return &c->pub;
}

RuvKvPool *
ruv_two_tier_kv_cache_get_pool (RuvTwoTierKvCache *c)
{
  return c->pool;
}

void
ruv_two_tier_kv_cache_set_threads (RuvTwoTierKvCache *c,
                                   rk_pool           *threads)
{
  c->threads = threads;
}

gint64
ruv_two_tier_kv_cache_get_n_tokens (RuvTwoTierKvCache *c,
                                    gint               layer)
{
  if (layer < 0 || layer >= c->cfg.num_layers)
    return 0;
  return c->layers[layer].n_store + c->layers[layer].n_tail;
}

guint
ruv_two_tier_kv_cache_get_layer_bits (RuvTwoTierKvCache *c,
                                      gint               layer)
{
  const StoreFmt *f;

  if (layer < 0 || layer >= c->cfg.num_layers)
    return 0;
  f = c->layers[layer].sf;
  switch ((int) f->prec)
    {
    case RUV_PRECISION_Q8:
      return f->bits;
    case RUV_PRECISION_Q4:
      return 4;
    default:
      return 16;
    }
}

/* ---- rows ------------------------------------------------------------------ */

/* Tail element pointer of (slot, head) in a tail block, K (kv 0) or V (1). */
static inline guint8 *
tail_row (const RuvTwoTierKvCache *c, guint8 *blk, int kv, gsize row)
{
  return blk + kv * c->tail_region + row * c->cfg.head_dim * c->tail_es;
}

static void
tail_write (const RuvTwoTierKvCache *c, guint8 *dst, const float *x)
{
  gint i, n = c->cfg.head_dim;

  switch ((int) c->cfg.tail_precision)
    {
    case RUV_PRECISION_FP32:
      memcpy (dst, x, (gsize) n * 4);
      break;
    case RUV_PRECISION_BF16:
      for (i = 0; i < n; i++)
        {
          rk_bf16 h = rk_fp32_to_bf16 (x[i]);
          memcpy (dst + 2 * i, &h, 2);
        }
      break;
    case RUV_PRECISION_FP16:
    default:
      for (i = 0; i < n; i++)
        ((rk_fp16 *) (void *) dst)[i] = rk_fp32_to_fp16 (x[i]);
      break;
    }
}

static void
tail_read (const RuvTwoTierKvCache *c, const guint8 *src, float *x)
{
  gint i, n = c->cfg.head_dim;

  switch ((int) c->cfg.tail_precision)
    {
    case RUV_PRECISION_FP32:
      memcpy (x, src, (gsize) n * 4);
      break;
    case RUV_PRECISION_BF16:
      for (i = 0; i < n; i++)
        x[i] = rk_bf16_to_fp32 (((const rk_bf16 *) (const void *) src)[i]);
      break;
    case RUV_PRECISION_FP16:
    default:
      for (i = 0; i < n; i++)
        x[i] = rk_fp16_to_fp32 (((const rk_fp16 *) (const void *) src)[i]);
      break;
    }
}

static void
store_write (const RuvTwoTierKvCache *c, const StoreFmt *f, guint8 *blk, int kv, gsize row,
             const float *x)
{
  gint i, n = c->cfg.head_dim;
  guint8 *codes = st_codes (f, blk, kv, row);

  switch ((int) f->prec)
    {
    case RUV_PRECISION_Q8:
      if (f->bits == 10)
        rk_kvq10_quantize (n, f->group, x, codes, st_d (f, blk, kv, row));
      else if (f->bits == 7)
        rk_kvq7_quantize (n, f->group, x, codes, st_d (f, blk, kv, row));
      else
        rk_kvq8_quantize (n, f->group, x, (int8_t *) codes, st_d (f, blk, kv, row));
      break;
    case RUV_PRECISION_Q4:
      rk_kvq4_quantize (n, f->group, x, codes, st_d (f, blk, kv, row),
                        st_z (f, blk, kv, row, c->rows));
      break;
    case RUV_PRECISION_FP16:
    default:
      for (i = 0; i < n; i++)
        ((rk_fp16 *) (void *) codes)[i] = rk_fp32_to_fp16 (x[i]);
      break;
    }
}

static void
store_read (const RuvTwoTierKvCache *c, const StoreFmt *f, guint8 *blk, int kv, gsize row,
            float *x)
{
  gint i, n = c->cfg.head_dim;
  guint8 *codes = st_codes (f, blk, kv, row);

  switch ((int) f->prec)
    {
    case RUV_PRECISION_Q8:
      if (f->bits == 10)
        q10_row_f32 (c, f, codes, st_d (f, blk, kv, row), x);
      else
        {
          int8_t tmp[512];

          rk_kvq8_dequantize (n, f->group, q8_codes (c, f, codes, tmp), st_d (f, blk, kv, row),
                              x);
        }
      break;
    case RUV_PRECISION_Q4:
      rk_kvq4_dequantize (n, f->group, codes, st_d (f, blk, kv, row),
                          st_z (f, blk, kv, row, c->rows), x);
      break;
    case RUV_PRECISION_FP16:
    default:
      for (i = 0; i < n; i++)
        x[i] = rk_fp16_to_fp32 (((const rk_fp16 *) (const void *) codes)[i]);
      break;
    }
}

/* Dequantized K and V of absolute position p of a layer, (H, D) each. */
static void
read_token (const RuvTwoTierKvCache *c, const KvLayer *L, gint64 p, float *k, float *v)
{
  gint64 bs = c->cfg.block_size;
  gint H = c->cfg.num_kv_heads, D = c->cfg.head_dim, h;

  if (p < L->n_store)
    {
      guint8 *blk = table_ptr (&L->store, p / bs);
      gsize r0 = (gsize) (p % bs) * H;

      for (h = 0; h < H; h++)
        {
          store_read (c, L->sf, blk, 0, r0 + h, k + (gsize) h * D);
          store_read (c, L->sf, blk, 1, r0 + h, v + (gsize) h * D);
        }
    }
  else
    {
      gint64 j = p - L->n_store + L->tail_off;
      guint8 *blk = table_ptr (&L->tail, j / bs);
      gsize r0 = (gsize) (j % bs) * H;

      for (h = 0; h < H; h++)
        {
          tail_read (c, tail_row (c, blk, 0, r0 + h), k + (gsize) h * D);
          tail_read (c, tail_row (c, blk, 1, r0 + h), v + (gsize) h * D);
        }
    }
}

/* ---- append and migration -------------------------------------------------- */

/* Tokens that migrate when the tail holds n_tail: whole batches of the
 * oldest, while at least tail_length would be left. */
static gint64
plan_migration (const KvCfg *cfg, gint64 n_tail)
{
  gint64 moved = 0;

  /* the newest tail_length tokens always stay */
  while (n_tail - cfg->tail_length >= cfg->migration_batch)
    {
      moved += cfg->migration_batch;
      n_tail -= cfg->migration_batch;
    }
  return moved;
}

static gint64
ceil_div (gint64 a, gint64 b)
{
  return (a + b - 1) / b;
}

/* Blocks an append of n tokens to L takes from the pool (an upper bound:
 * tail blocks given back during the append are not subtracted). */
static void
plan_append (const RuvTwoTierKvCache *c, const KvLayer *L, gint64 n,
             gint64 *n_tail_blocks, gint64 *n_store_blocks)
{
  gint64 bs = c->cfg.block_size;
  gint64 end = L->tail_off + L->n_tail + n;
  gint64 moved = plan_migration (&c->cfg, L->n_tail + n);
  gint64 nt, ns;

  nt = ceil_div (end, bs) - (gint64) L->tail.ids->len;
  /* writing into a partly filled shared block copies it */
  if ((L->tail_off + L->n_tail) % bs != 0 && L->tail.ids->len > 0 &&
      (L->tail_off + L->n_tail) / bs < (gint64) L->tail.ids->len)
    nt += 1;
  ns = ceil_div (L->n_store + moved, bs) - (gint64) L->store.ids->len;
  if (moved > 0 && L->n_store % bs != 0)
    ns += 1;
  *n_tail_blocks = MAX (nt, 0);
  *n_store_blocks = MAX (ns, 0);
}

typedef struct
{
  gint32  *ids;
  guint8 **ptrs;
  guint    n;
  guint    next;
  gsize    bytes;           /* per block */
  guint64 *reserved;        /* the cache's reservation they drew on */
  guint64  from_reserved;   /* how much of it */
} Prealloc;

static guint
prealloc_take (Prealloc *pa, gint32 *id, guint8 **ptr)
{
  g_assert (pa->next < pa->n);
  *id = pa->ids[pa->next];
  *ptr = pa->ptrs[pa->next];
  return pa->next++;
}

/* Gives back the blocks not taken, and to the cache's reservation what they
 * drew from it (an operation that fails after a first prealloc leaves the
 * reservation as it found it). */
static void
prealloc_release (RuvKvPool *pool, Prealloc *pa)
{
  guint64 back;
  guint i;

  g_mutex_lock (&pool->lock);
  for (i = pa->next; i < pa->n; i++)
    pool_unref_block_locked (pool, pa->ids[i]);
  back = MIN (pa->from_reserved, (guint64) (pa->n - pa->next) * pa->bytes);
  if (back > 0 && pa->reserved != NULL)
    {
      *pa->reserved += back;
      pool->reserved_bytes += back;
    }
  g_mutex_unlock (&pool->lock);
  g_free (pa->ids);
  g_free (pa->ptrs);
  memset (pa, 0, sizeof *pa);
}

static gboolean
prealloc_get (RuvKvPool *pool, guint64 *reserved, gsize bytes, gint64 n, Prealloc *pa,
              GError **error)
{
  memset (pa, 0, sizeof *pa);
  if (n <= 0)
    return TRUE;
  if (n > G_MAXINT32)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY,
                   "KV cache: %" G_GINT64_FORMAT " blocks is too many", n);
      return FALSE;
    }
  pa->ids = g_new (gint32, n);
  pa->ptrs = g_new (guint8 *, n);
  if (!pool_alloc (pool, bytes, (guint) n, reserved, &pa->from_reserved, pa->ids, pa->ptrs,
                   error))
    {
      g_free (pa->ids);
      g_free (pa->ptrs);
      memset (pa, 0, sizeof *pa);
      return FALSE;
    }
  pa->n = (guint) n;
  pa->bytes = bytes;
  pa->reserved = reserved;
  return TRUE;
}

/* Makes block i of t writable: if another cache holds it too, replaces it
 * with a copy from pa. */
static void
table_make_private (RuvTwoTierKvCache *c, Table *t, gint64 i, gsize bytes, Prealloc *pa)
{
  gint32 old = table_id (t, i), id;
  guint8 *p;

  if (!pool_block_shared (c->pool, old))
    return;
  prealloc_take (pa, &id, &p);
  memcpy (p, table_ptr (t, i), bytes);
  g_array_index (t->ids, gint32, i) = id;
  g_ptr_array_index (t->ptrs, i) = p;
  pool_unref_block (c->pool, old);
}

/* Moves the oldest mv tail tokens of L to the store. */
static void
migrate (RuvTwoTierKvCache *c, KvLayer *L, gint64 mv, Prealloc *store_pa)
{
  gint64 bs = c->cfg.block_size;
  gint H = c->cfg.num_kv_heads, D = c->cfg.head_dim, h;
  g_autofree float *x = g_new (float, D);
  g_autofree float *y = g_new (float, D);
  /* Error feedback for V: the rounding residual of each (head, channel) is
   * added to the next token's value before it is quantized, so the errors
   * of consecutive tokens cancel in any weighted sum over a run of them
   * (attention output) instead of adding up; each stored value stays within
   * d/2 + (the previous token's d)/2 of what was appended. K is quantized
   * plainly (its errors act through exp(), not linearly). */
  g_autofree float *r = g_new0 (float, (gsize) H * D);
  gboolean feedback = L->sf->prec != RUV_PRECISION_FP16;
  gint64 i;
  gint e;

  if (mv > 0 && L->n_store % bs != 0)
    table_make_private (c, &L->store, L->n_store / bs, L->sf->block, store_pa);
  for (i = 0; i < mv; i++)
    {
      gint64 j = L->tail_off + i, s = L->n_store + i;
      guint8 *src = table_ptr (&L->tail, j / bs), *dst;

      if (s % bs == 0 && s / bs == (gint64) L->store.ids->len)
        {
          gint32 id;
          guint8 *p;

          prealloc_take (store_pa, &id, &p);
          table_push (&L->store, id, p);
        }
      dst = table_ptr (&L->store, s / bs);
      for (h = 0; h < H; h++)
        {
          gsize sr = (gsize) (j % bs) * H + h, dr = (gsize) (s % bs) * H + h;

          tail_read (c, tail_row (c, src, 0, sr), x);
          store_write (c, L->sf, dst, 0, dr, x);
          tail_read (c, tail_row (c, src, 1, sr), x);
          if (feedback)
            for (e = 0; e < D; e++)
              x[e] += r[h * D + e];
          store_write (c, L->sf, dst, 1, dr, x);
          if (feedback)
            {
              store_read (c, L->sf, dst, 1, dr, y);
              for (e = 0; e < D; e++)
                r[h * D + e] = x[e] - y[e];
            }
        }
    }
  L->n_store += mv;
  L->n_tail -= mv;
  L->tail_off += mv;
  if (L->tail_off >= bs)
    {
      gint64 drop = L->tail_off / bs;

      table_drop_front (c->pool, &L->tail, drop);
      L->tail_off -= drop * bs;
    }
}

static gboolean
check_room (RuvTwoTierKvCache *c, gint layer, gint64 n, GError **error)
{
  gint64 have;

  if (layer < 0 || layer >= c->cfg.num_layers)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE,
                   "KV cache has no layer %d (it has %d)", layer, c->cfg.num_layers);
      return FALSE;
    }
  have = c->layers[layer].n_store + c->layers[layer].n_tail;
  if (n < 0 || n > c->cfg.max_tokens - have)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE,
                   "KV cache full: %" G_GINT64_FORMAT " tokens held, %" G_GINT64_FORMAT
                   " more do not fit in max_tokens %" G_GINT64_FORMAT,
                   have, n, c->cfg.max_tokens);
      return FALSE;
    }
  return TRUE;
}

gboolean
ruv_two_tier_kv_cache_reserve (RuvTwoTierKvCache *c,
                               gint64             n,
                               GError           **error)
{
  guint64 need = 0, left;
  gint l;

  for (l = 0; l < c->cfg.num_layers; l++)
    {
      gint64 nt, ns;

      if (!check_room (c, l, n, error))
        return FALSE;
      plan_append (c, &c->layers[l], n, &nt, &ns);
      need += (guint64) nt * c->tail_block + (guint64) ns * c->layers[l].sf->block;
    }
  /* The bytes are set aside, not just counted: another cache in the pool
   * cannot take them before this one's appends draw on them. */
  g_mutex_lock (&c->pool->lock);
  c->pool->reserved_bytes -= c->reserved;
  c->reserved = 0;
  left = pool_free_bytes_locked (c->pool);
  if (need > left)
    {
      g_mutex_unlock (&c->pool->lock);
      g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY,
                   "KV cache pool exhausted: %" G_GINT64_FORMAT " more tokens asked for %"
                   G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                   " bytes left", n, need, left, c->pool->max_bytes);
      return FALSE;
    }
  if (c->pool->max_bytes != 0)
    {
      c->reserved = need;
      c->pool->reserved_bytes += need;
    }
  g_mutex_unlock (&c->pool->lock);
  return TRUE;
}

void
ruv_two_tier_kv_cache_release_reservation (RuvTwoTierKvCache *c)
{
  g_mutex_lock (&c->pool->lock);
  c->pool->reserved_bytes -= c->reserved;
  c->reserved = 0;
  g_mutex_unlock (&c->pool->lock);
}

gboolean
ruv_two_tier_kv_cache_append (RuvTwoTierKvCache *c,
                              gint               layer,
                              const float       *keys,
                              const float       *values,
                              gint64             n,
                              GError           **error)
{
  KvLayer *L;
  Prealloc tail_pa, store_pa;
  gint64 bs = c->cfg.block_size, nt, ns, i, moved;
  gint H = c->cfg.num_kv_heads, D = c->cfg.head_dim, h;

  if (!check_room (c, layer, n, error))
    return FALSE;
  if (n == 0)
    return TRUE;
  L = &c->layers[layer];
  plan_append (c, L, n, &nt, &ns);
  if (!prealloc_get (c->pool, &c->reserved, c->tail_block, nt, &tail_pa, error))
    return FALSE;
  if (!prealloc_get (c->pool, &c->reserved, L->sf->block, ns, &store_pa, error))
    {
      prealloc_release (c->pool, &tail_pa);
      return FALSE;
    }

  g_mutex_lock (&c->lock);
  /* 1. the new tokens go to the end of the tail */
  if ((L->tail_off + L->n_tail) % bs != 0 &&
      (L->tail_off + L->n_tail) / bs < (gint64) L->tail.ids->len)
    table_make_private (c, &L->tail, (L->tail_off + L->n_tail) / bs, c->tail_block, &tail_pa);
  for (i = 0; i < n; i++)
    {
      gint64 j = L->tail_off + L->n_tail + i;
      guint8 *blk;

      if (j / bs == (gint64) L->tail.ids->len)
        {
          gint32 id;
          guint8 *p;

          prealloc_take (&tail_pa, &id, &p);
          table_push (&L->tail, id, p);
        }
      blk = table_ptr (&L->tail, j / bs);
      for (h = 0; h < H; h++)
        {
          gsize src = ((gsize) i * H + h) * D, row = (gsize) (j % bs) * H + h;

          tail_write (c, tail_row (c, blk, 0, row), keys + src);
          tail_write (c, tail_row (c, blk, 1, row), values + src);
        }
    }
  L->n_tail += n;
  /* 2. the oldest move to the store, migration_batch at a time */
  moved = plan_migration (&c->cfg, L->n_tail);
  while (moved > 0)
    {
      gint64 mv = MIN (c->cfg.migration_batch, moved);

      migrate (c, L, mv, &store_pa);
      moved -= mv;
    }
  g_mutex_unlock (&c->lock);
  prealloc_release (c->pool, &tail_pa);
  prealloc_release (c->pool, &store_pa);
  return TRUE;
}

void
ruv_two_tier_kv_cache_get_all_kv (RuvTwoTierKvCache *c,
                                  gint               layer,
                                  float             *k,
                                  float             *v)
{
  gsize row = (gsize) c->cfg.num_kv_heads * c->cfg.head_dim;
  const KvLayer *L;
  gint64 p;

  if (layer < 0 || layer >= c->cfg.num_layers)
    return;
  L = &c->layers[layer];
  for (p = 0; p < L->n_store + L->n_tail; p++)
    read_token (c, L, p, k + (gsize) p * row, v + (gsize) p * row);
}

/* ---- attention ------------------------------------------------------------ */

typedef struct
{
  const RuvTwoTierKvCache *c;
  const KvLayer           *L;
  const float             *q;
  float                   *out;
  gint64                   q_pos0;
  gint                     n_heads;
  gint                     ratio;
  float                    scale;
  gboolean                 causal;
} AttendJob;

/* Online softmax state of one query row; acc is the output row. */
typedef struct
{
  float  m;
  float  l;
  float *acc;
} SoftState;

static inline float
tail_dot (const RuvTwoTierKvCache *c, const guint8 *x, const float *q)
{
  gint i, n = c->cfg.head_dim;
  float s = 0.0f;

  switch ((int) c->cfg.tail_precision)
    {
    case RUV_PRECISION_FP16:
      return c->kk.f16_dot (n, (const rk_fp16 *) (const void *) x, q);
    case RUV_PRECISION_BF16:
      for (i = 0; i < n; i++)
        s += q[i] * rk_bf16_to_fp32 (((const rk_bf16 *) (const void *) x)[i]);
      return s;
    case RUV_PRECISION_FP32:
    default:
      for (i = 0; i < n; i++)
        s += q[i] * ((const float *) (const void *) x)[i];
      return s;
    }
}

static inline void
tail_axpy (const RuvTwoTierKvCache *c, const guint8 *x, float w, float *y)
{
  gint i, n = c->cfg.head_dim;

  switch ((int) c->cfg.tail_precision)
    {
    case RUV_PRECISION_FP16:
      c->kk.f16_axpy (n, (const rk_fp16 *) (const void *) x, w, y);
      break;
    case RUV_PRECISION_BF16:
      for (i = 0; i < n; i++)
        y[i] += w * rk_bf16_to_fp32 (((const rk_bf16 *) (const void *) x)[i]);
      break;
    case RUV_PRECISION_FP32:
    default:
      for (i = 0; i < n; i++)
        y[i] += w * ((const float *) (const void *) x)[i];
      break;
    }
}

static inline float
store_dot (const RuvTwoTierKvCache *c, const StoreFmt *f, guint8 *blk, gsize row,
           const float *q)
{
  gint n = c->cfg.head_dim;

  switch ((int) f->prec)
    {
    case RUV_PRECISION_Q8:
      if (f->bits == 10)
        {
          float x[512], sum = 0.0f;
          gint i;

          q10_row_f32 (c, f, st_codes (f, blk, 0, row), st_d (f, blk, 0, row), x);
          for (i = 0; i < n; i++)
            sum += q[i] * x[i];
          return sum;
        }
      else
        {
          int8_t tmp[512];

          return c->kk.q8_dot (n, f->group, q8_codes (c, f, st_codes (f, blk, 0, row), tmp),
                               st_d (f, blk, 0, row), q);
        }
    case RUV_PRECISION_Q4:
      return c->kk.q4_dot (n, f->group, st_codes (f, blk, 0, row), st_d (f, blk, 0, row),
                           st_z (f, blk, 0, row, c->rows), q);
    case RUV_PRECISION_FP16:
    default:
      return c->kk.f16_dot (n, (const rk_fp16 *) (void *) st_codes (f, blk, 0, row), q);
    }
}

static inline void
store_axpy (const RuvTwoTierKvCache *c, const StoreFmt *f, guint8 *blk, gsize row, float w,
            float *y)
{
  gint n = c->cfg.head_dim;

  switch ((int) f->prec)
    {
    case RUV_PRECISION_Q8:
      if (f->bits == 10)
        {
          float x[512];
          gint i;

          q10_row_f32 (c, f, st_codes (f, blk, 1, row), st_d (f, blk, 1, row), x);
          for (i = 0; i < n; i++)
            y[i] += w * x[i];
        }
      else
        {
          int8_t tmp[512];

          c->kk.q8_axpy (n, f->group, q8_codes (c, f, st_codes (f, blk, 1, row), tmp),
                         st_d (f, blk, 1, row), w, y);
        }
      break;
    case RUV_PRECISION_Q4:
      c->kk.q4_axpy (n, f->group, st_codes (f, blk, 1, row), st_d (f, blk, 1, row),
                     st_z (f, blk, 1, row, c->rows), w, y);
      break;
    case RUV_PRECISION_FP16:
    default:
      c->kk.f16_axpy (n, (const rk_fp16 *) (void *) st_codes (f, blk, 1, row), w, y);
      break;
    }
}

/* Folds a run of cnt tokens of one block (slots slot0.., KV head kvh) into st:
 * a store block in format `store`, or a tail block (store NULL). */
static void
fold_run (const RuvTwoTierKvCache *c, const StoreFmt *store, guint8 *blk, gint64 slot0,
          gint64 cnt, gint kvh, const float *q, float scale, SoftState *st)
{
  float s[MAX_BLOCK_SIZE];
  gint H = c->cfg.num_kv_heads, D = c->cfg.head_dim;
  float bm = -INFINITY;
  gint64 t;

  for (t = 0; t < cnt; t++)
    {
      gsize row = (gsize) (slot0 + t) * H + kvh;

      s[t] = scale * (store ? store_dot (c, store, blk, row, q)
                      : tail_dot (c, tail_row (c, blk, 0, row), q));
      if (s[t] > bm)
        bm = s[t];
    }
  if (bm > st->m)
    {
      float r = st->m == -INFINITY ? 0.0f : expf (st->m - bm);

      rk_scale (st->acc, st->acc, r, D);
      st->l *= r;
      st->m = bm;
    }
  for (t = 0; t < cnt; t++)
    {
      gsize row = (gsize) (slot0 + t) * H + kvh;
      float w = expf (s[t] - st->m);

      st->l += w;
      if (store)
        store_axpy (c, store, blk, row, w, st->acc);
      else
        tail_axpy (c, tail_row (c, blk, 1, row), w, st->acc);
    }
}

/* Queries rounded to integers, per row one scale: to int8 (q8, qsum) for a
 * layer whose store is Q4, to int16 (q16) for one whose store is Q8 (or
 * Q7/Q10: keys whose own rounding is as coarse as an int8 query's or finer).
 * Every path scores quantized store keys against these (the group step with
 * integer products, the block product and attend_rows with qf), so
 * attention over a Q8/Q4 store does not depend on the path taken: softmax
 * (scale q' k_store, scale q k_tail), as llama.cpp scores quantized keys
 * against a quantized query. */
typedef struct
{
  int8_t  *q8;
  int16_t *q16;
  float   *qd;
  int32_t *qsum;
  float   *qf;      /* the same as floats, qd * q8 or qd * q16 */
} QuantQuery;

/* Floats round_queries needs for `rows` queries of head_dim D. */
#define QUANT_QUERY_FLOATS(rows, D, n_groups) \
  ((gsize) (rows) * ((D) + 1 + (n_groups) + (D) / 2 + 1))

/* Rounds `rows` queries q (rows, D) for store keys of format f into buf
 * (QUANT_QUERY_FLOATS of them), which qq points into. */
static void
round_queries (const RuvTwoTierKvCache *c, const StoreFmt *f, gint rows, const float *q,
               float *buf, QuantQuery *qq)
{
  gint D = c->cfg.head_dim, r, i;
  gsize nv = (gsize) rows * D;

  qq->qf = buf;
  qq->qd = qq->qf + nv;
  qq->qsum = (int32_t *) (void *) (qq->qd + rows);
  qq->q8 = NULL;
  qq->q16 = NULL;
  if (f->prec == RUV_PRECISION_Q8)
    {
      qq->q16 = (int16_t *) (void *) (qq->qsum + (gsize) rows * f->n_groups);
      c->kk.quantize_query16 (rows, D, q, qq->q16, qq->qd);
      for (r = 0; r < rows; r++)
        for (i = 0; i < D; i++)
          qq->qf[(gsize) r * D + i] = qq->qd[r] * qq->q16[(gsize) r * D + i];
    }
  else
    {
      qq->q8 = (int8_t *) (void *) (qq->qsum + (gsize) rows * f->n_groups);
      c->kk.quantize_query (rows, D, f->group, q, qq->q8, qq->qd, qq->qsum);
      for (r = 0; r < rows; r++)
        for (i = 0; i < D; i++)
          qq->qf[(gsize) r * D + i] = qq->qd[r] * qq->q8[(gsize) r * D + i];
    }
}

static void
attend_rows (void   *ctx,
             gint64  begin,
             gint64  end,
             int     thread_index)
{
  const AttendJob *job = ctx;
  const RuvTwoTierKvCache *c = job->c;
  const KvLayer *L = job->L;
  gint64 bs = c->cfg.block_size, total = L->n_store + L->n_tail;
  gint D = c->cfg.head_dim, i;
  gboolean quant = L->sf->prec != RUV_PRECISION_FP16;
  g_autofree float *qbuf = quant ? g_new (float, QUANT_QUERY_FLOATS (1, D, L->sf->n_groups))
                                 : NULL;
  QuantQuery qq;
  gint64 r;

  (void) thread_index;
  for (r = begin; r < end; r++)
    {
      gint64 t = r / job->n_heads;
      gint kvh = (gint) (r % job->n_heads) / job->ratio;
      const float *q = job->q + r * D, *qs = q;
      gint64 n = total, p;
      SoftState st;

      /* store keys meet the query rounded as in the blocked path */
      if (quant)
        {
          round_queries (c, L->sf, 1, q, qbuf, &qq);
          qs = qq.qf;
        }

      if (job->causal)
        n = MIN (total, MAX (job->q_pos0 + t + 1, 0));
      st.m = -INFINITY;
      st.l = 0.0f;
      st.acc = job->out + r * D;
      memset (st.acc, 0, (gsize) D * sizeof (float));
      /* store blocks, then tail blocks */
      for (p = 0; p < MIN (n, L->n_store); p += bs)
        fold_run (c, L->sf, table_ptr (&L->store, p / bs), 0, MIN (bs, MIN (n, L->n_store) - p),
                  kvh, qs, job->scale, &st);
      for (p = L->n_store; p < n;)
        {
          gint64 j = p - L->n_store + L->tail_off;
          gint64 cnt = MIN (bs - j % bs, n - p);

          fold_run (c, NULL, table_ptr (&L->tail, j / bs), j % bs, cnt, kvh, q, job->scale,
                    &st);
          p += cnt;
        }
      if (st.l > 0.0f)
        for (i = 0; i < D; i++)
          st.acc[i] /= st.l;
    }
}

/* ---- blocked attention (many query rows) -----------------------------------
 * With many query rows per KV head (a prefill; GQA groups), each block of
 * cached tokens is converted to floats once per work item and shared by all
 * the item's rows: a work item is one KV head and a chunk of tokens, i.e.
 * ratio query heads times up to BLK_Q_ROWS / ratio tokens; scores and the weighted
 * sum of values are then two small F32 block products (rk_matmul_prequant),
 * with the online softmax in between. Same result as attend_rows to float
 * rounding. */

/* Query rows (tokens x heads of one group) per work item. */
#define BLK_Q_ROWS 128
/* Fewest query rows (tokens x group heads) that take the blocked path: with
 * GQA even a decode gains (a token's K and V are converted once for the
 * group instead of read once per query head). */
#define BLK_MIN_ROWS 2
/* Most query rows of an item that take the group step (rk_kv_group_step)
 * for a run they all see whole, instead of the two block products: all of
 * them. On SmolLM2-135M's 512-token prefill the group step's integer store
 * scores and vector exp beat the F32 block products (attention 14.7% -> 12.1%
 * of the time with a Q4 store, 14.2% -> 13.3% with FP16; perf); the runs on
 * the diagonal, which the causal mask cuts, still take the products. */
#define GROUP_MAX_ROWS BLK_Q_ROWS

typedef struct
{
  const RuvTwoTierKvCache *c;
  const KvLayer           *L;
  const float             *q;
  float                   *out;
  gint64                   q_pos0;
  gint                     n_q;
  gint                     n_heads;
  gint                     ratio;
  float                    scale;
  gboolean                 causal;
  gint                     tok_chunk;   /* tokens per item */
  gint64                   n_chunks;
  gint                     n_split;     /* parts of the cached tokens per KV head */
  float                   *parts;       /* n_split > 1: each item's m, l, acc */
  float                   *scratch;     /* per thread, scratch_floats each */
  gsize                    scratch_floats;
} BlockedJob;


/* Row `row` of a tier's block as floats (K: kv 0, V: kv 1): a store block in
 * format `store`, or a tail block (store NULL). */
static void
row_to_f32 (const RuvTwoTierKvCache *c, const StoreFmt *store, guint8 *blk, int kv, gsize row,
            float *x)
{
  const StoreFmt *f = store;
  gint n = c->cfg.head_dim;

  if (!store)
    {
      if (c->cfg.tail_precision == RUV_PRECISION_FP16)
        {
          memset (x, 0, (gsize) n * sizeof (float));
          c->kk.f16_axpy (n, (const rk_fp16 *) (const void *) tail_row (c, blk, kv, row), 1.0f,
                          x);
        }
      else
        tail_read (c, tail_row (c, blk, kv, row), x);
      return;
    }
  memset (x, 0, (gsize) n * sizeof (float));
  switch ((int) f->prec)
    {
    case RUV_PRECISION_Q8:
      if (f->bits == 10)
        q10_row_f32 (c, f, st_codes (f, blk, kv, row), st_d (f, blk, kv, row), x);
      else
        {
          int8_t tmp[512];

          c->kk.q8_axpy (n, f->group, q8_codes (c, f, st_codes (f, blk, kv, row), tmp),
                         st_d (f, blk, kv, row), 1.0f, x);
        }
      break;
    case RUV_PRECISION_Q4:
      c->kk.q4_axpy (n, f->group, st_codes (f, blk, kv, row), st_d (f, blk, kv, row),
                     st_z (f, blk, kv, row, c->rows), 1.0f, x);
      break;
    case RUV_PRECISION_FP16:
    default:
      c->kk.f16_axpy (n, (const rk_fp16 *) (void *) st_codes (f, blk, kv, row), 1.0f, x);
      break;
    }
}

/* Folds keys p0 .. p0 + cnt - 1 (slots slot0.. of blk) into the rows of
 * one item: qr (rows, D) queries of tokens t0.. (ratio rows per token). */
static void
blocked_run (const BlockedJob *j, const StoreFmt *store, guint8 *blk, gint64 slot0, gint64 p0,
             gint64 cnt, gint kvh, gint64 t0, gint rows, const float *qr, const QuantQuery *qq,
             float *s, float *o, float *acc, float *m, float *l, float *kb, float *vt)
{
  const RuvTwoTierKvCache *c = j->c;
  gint H = c->cfg.num_kv_heads, D = c->cfg.head_dim, r, d;
  gint64 t;

  /* A few rows that all see the whole run (a decode step's GQA group): the
   * group step scores and accumulates the run's rows as they are, no
   * transposed copy and no block products. */
  if (rows <= GROUP_MAX_ROWS && (!j->causal || j->q_pos0 + t0 >= p0 + cnt - 1))
    {
      const StoreFmt *f = store;
      /* Q4 and Q8 keys are scored from their codes (integer products with
       * the int8 queries), not converted */
      gboolean int_scores = store != NULL && store->prec != RUV_PRECISION_FP16;

      for (t = 0; t < cnt; t++)
        {
          gsize row = (gsize) (slot0 + t) * H + kvh;

          if (!int_scores)
            row_to_f32 (c, store, blk, 0, row, kb + t * D);
          row_to_f32 (c, store, blk, 1, row, vt + t * D);
        }
      if (int_scores && f->prec == RUV_PRECISION_Q4)
        {
          gsize row0 = (gsize) slot0 * H + kvh;

          c->kk.q4_group_scores (rows, (int) cnt, D, f->group, qq->q8, qq->qd, qq->qsum,
                                 st_codes (f, blk, 0, row0), (gsize) H * f->codes_bytes,
                                 st_d (f, blk, 0, row0), st_z (f, blk, 0, row0, c->rows),
                                 (gsize) H * f->n_groups, j->scale, s);
        }
      else if (int_scores && f->bits == 10)
        {
          /* the run's Q10 keys unpacked into kb (unused here) as int16 */
          int16_t *k16 = (int16_t *) (void *) kb;

          for (t = 0; t < cnt; t++)
            c->kk.q10_unpack (D, st_codes (f, blk, 0, (gsize) (slot0 + t) * H + kvh),
                              k16 + t * D);
          c->kk.q16_group_scores (rows, (int) cnt, D, f->group, qq->q16, qq->qd, k16, (gsize) D,
                                  st_d (f, blk, 0, (gsize) slot0 * H + kvh),
                                  (gsize) H * f->n_groups, j->scale, s);
        }
      else if (int_scores && f->bits == 7)
        {
          /* the run's Q7 keys unpacked into kb (unused here), then as Q8 */
          int8_t *k8 = (int8_t *) (void *) kb;

          for (t = 0; t < cnt; t++)
            c->kk.q7_unpack (D, st_codes (f, blk, 0, (gsize) (slot0 + t) * H + kvh),
                             k8 + t * D);
          c->kk.q8_group_scores (rows, (int) cnt, D, f->group, qq->q16, qq->qd, k8, (gsize) D,
                                 st_d (f, blk, 0, (gsize) slot0 * H + kvh),
                                 (gsize) H * f->n_groups, j->scale, s);
        }
      else if (int_scores)
        {
          gsize row0 = (gsize) slot0 * H + kvh;

          c->kk.q8_group_scores (rows, (int) cnt, D, f->group, qq->q16, qq->qd,
                                 (const int8_t *) st_codes (f, blk, 0, row0),
                                 (gsize) H * f->codes_bytes, st_d (f, blk, 0, row0),
                                 (gsize) H * f->n_groups, j->scale, s);
        }
      c->kk.group_step (rows, (int) cnt, D, qr, int_scores ? NULL : kb, vt, j->scale, m, l,
                        acc, s);
      return;
    }
  for (t = 0; t < cnt; t++)
    {
      gsize row = (gsize) (slot0 + t) * H + kvh;

      row_to_f32 (c, store, blk, 0, row, kb + t * D);
      row_to_f32 (c, store, blk, 1, row, o);
      for (d = 0; d < D; d++)
        vt[d * cnt + t] = o[d];
    }
  /* s (rows, cnt) = qr kb^T */
  rk_matmul_prequant (NULL, RK_TYPE_F32, kb, (gsize) D * sizeof (float), cnt, D,
                      store != NULL && store->prec != RUV_PRECISION_FP16 ? qq->qf : qr,
                      rows, s, cnt);
  for (r = 0; r < rows; r++)
    {
      float *sr = s + (gsize) r * cnt;
      gint64 lim = cnt, qpos = j->q_pos0 + t0 + r / j->ratio;
      float bm = -INFINITY, rr, sum;

      if (j->causal)
        lim = CLAMP (qpos - p0 + 1, 0, cnt);
      for (t = 0; t < lim; t++)
        {
          sr[t] *= j->scale;
          bm = MAX (bm, sr[t]);
        }
      if (bm > m[r])
        {
          rr = m[r] == -INFINITY ? 0.0f : expf (m[r] - bm);
          rk_scale (acc + (gsize) r * D, acc + (gsize) r * D, rr, D);
          l[r] *= rr;
          m[r] = bm;
        }
      if (m[r] == -INFINITY)
        lim = 0;   /* nothing visible yet: no weights */
      sum = rk_exp_sum (sr, (gint) lim, m[r]);
      for (t = lim; t < cnt; t++)
        sr[t] = 0.0f;
      l[r] += sum;
    }
  /* o (rows, D) = p vt^T; acc += o */
  rk_matmul_prequant (NULL, RK_TYPE_F32, vt, (gsize) cnt * sizeof (float), D, cnt, s, rows, o,
                      D);
  rk_add (acc, acc, o, rows * D);
}

/* The softmax state of part `part` of KV head kvh's tokens in a split call:
 * acc (rows, D), then m (rows), then l (rows). */
static inline float *
part_state (const BlockedJob *j, gint kvh, gint part, gint rows)
{
  return j->parts + ((gsize) kvh * j->n_split + part) * rows * (j->c->cfg.head_dim + 2);
}

static void
blocked_items (void   *ctx,
               gint64  begin,
               gint64  end,
               int     thread_index)
{
  const BlockedJob *j = ctx;
  const RuvTwoTierKvCache *c = j->c;
  const KvLayer *L = j->L;
  gint64 bs = c->cfg.block_size, total = L->n_store + L->n_tail;
  gint H = c->cfg.num_kv_heads, D = c->cfg.head_dim, rmax = j->tok_chunk * j->ratio;
  float *qr = j->scratch + (gsize) thread_index * j->scratch_floats;
  float *s = qr + (gsize) rmax * D;
  float *o = s + (gsize) rmax * bs;
  float *acc = o + (gsize) rmax * D;
  float *m = acc + (gsize) rmax * D;
  float *l = m + rmax;
  float *kb = l + rmax;
  float *vt = kb + (gsize) bs * D;
  QuantQuery qq = { NULL, NULL, NULL, NULL, NULL };
  gint64 it;

  for (it = begin; it < end; it++)
    {
      /* heaviest (latest) token chunks first */
      gint kvh = (gint) (it % H), part = (gint) ((it / H) % j->n_split);
      gint64 t0 = (j->n_chunks - 1 - it / H / j->n_split) * j->tok_chunk;
      gint64 t1 = MIN (t0 + j->tok_chunk, j->n_q), n = total, p, tt;
      gint64 runs = 0, run = 0, run_lo, run_hi;
      gint rows = (gint) (t1 - t0) * j->ratio, r, d;

      for (tt = t0; tt < t1; tt++)
        memcpy (qr + (gsize) (tt - t0) * j->ratio * D,
                j->q + ((gsize) tt * j->n_heads + (gsize) kvh * j->ratio) * D,
                (gsize) j->ratio * D * sizeof (float));
      for (r = 0; r < rows; r++)
        {
          m[r] = -INFINITY;
          l[r] = 0.0f;
        }
      memset (acc, 0, (gsize) rows * D * sizeof (float));
      if (L->sf->prec != RUV_PRECISION_FP16)
        round_queries (c, L->sf, rows, qr, vt + (gsize) bs * D, &qq);
      if (j->causal)
        n = MIN (total, MAX (j->q_pos0 + t1, 0));
      /* The runs (store blocks, then pieces of tail blocks) this item takes:
       * all of them, or its share of them when they are split */
      for (p = L->n_store; p < n; runs++)
        p += MIN (bs - (p - L->n_store + L->tail_off) % bs, n - p);
      runs += (MIN (n, L->n_store) + bs - 1) / bs;
      run_lo = runs * part / j->n_split;
      run_hi = runs * (part + 1) / j->n_split;
      for (p = 0; p < MIN (n, L->n_store); p += bs, run++)
        if (run >= run_lo && run < run_hi)
          blocked_run (j, L->sf, table_ptr (&L->store, p / bs), 0, p,
                       MIN (bs, MIN (n, L->n_store) - p), kvh, t0, rows, qr, &qq, s, o, acc, m,
                       l, kb, vt);
      for (p = L->n_store; p < n; run++)
        {
          gint64 jj = p - L->n_store + L->tail_off;
          gint64 cnt = MIN (bs - jj % bs, n - p);

          if (run >= run_lo && run < run_hi)
            blocked_run (j, NULL, table_ptr (&L->tail, jj / bs), jj % bs, p, cnt, kvh, t0,
                         rows, qr, &qq, s, o, acc, m, l, kb, vt);
          p += cnt;
        }
      if (j->n_split > 1)
        {
          /* a part's softmax state, merged by attend_blocked */
          float *dst = part_state (j, kvh, part, rows);

          memcpy (dst, acc, (gsize) rows * D * sizeof (float));
          memcpy (dst + (gsize) rows * D, m, (gsize) rows * sizeof (float));
          memcpy (dst + (gsize) rows * (D + 1), l, (gsize) rows * sizeof (float));
          continue;
        }
      for (r = 0; r < rows; r++)
        {
          float *dst = j->out + ((gsize) (t0 + r / j->ratio) * j->n_heads +
                                 (gsize) kvh * j->ratio + r % j->ratio) * D;

          for (d = 0; d < D; d++)
            dst[d] = l[r] > 0.0f ? acc[(gsize) r * D + d] / l[r] : 0.0f;
        }
    }
}

/* Merges the parts of a split attend (n_chunks 1, so rows = n_q * ratio):
 * per row, the online softmax states of its parts rescaled to their
 * largest maximum. */
static void
merge_parts (const BlockedJob *j)
{
  gint H = j->c->cfg.num_kv_heads, D = j->c->cfg.head_dim, rows = j->n_q * j->ratio;
  gint kvh, r, sp, d;

  for (kvh = 0; kvh < H; kvh++)
    for (r = 0; r < rows; r++)
      {
        float *dst = j->out + ((gsize) (r / j->ratio) * j->n_heads +
                               (gsize) kvh * j->ratio + r % j->ratio) * D;
        float mx = -INFINITY, l = 0.0f;

        for (sp = 0; sp < j->n_split; sp++)
          {
            const float *pt = part_state (j, kvh, sp, rows);

            mx = fmaxf (mx, pt[(gsize) rows * D + r]);
          }
        memset (dst, 0, (gsize) D * sizeof (float));
        if (mx == -INFINITY)
          continue;
        for (sp = 0; sp < j->n_split; sp++)
          {
            const float *pt = part_state (j, kvh, sp, rows);
            float pm = pt[(gsize) rows * D + r], w;

            if (pm == -INFINITY)
              continue;
            w = expf (pm - mx);
            l += w * pt[(gsize) rows * (D + 1) + r];
            for (d = 0; d < D; d++)
              dst[d] += w * pt[(gsize) r * D + d];
          }
        for (d = 0; d < D; d++)
          dst[d] = l > 0.0f ? dst[d] / l : 0.0f;
      }
}

/* Runs the blocked attention; FALSE (nothing done) when the work would not
 * spread over the threads or its scratch cannot be had. */
static gboolean
attend_blocked (const AttendJob *a,
                gint             n_q)
{
  const RuvTwoTierKvCache *c = a->c;
  gint64 bs = c->cfg.block_size, D = c->cfg.head_dim;
  gint nt = rk_pool_n_threads (c->threads);
  g_autofree float *scratch = NULL;
  g_autofree float *parts = NULL;
  BlockedJob j;
  gint64 rmax, items;

  j.c = c;
  j.L = a->L;
  j.q = a->q;
  j.out = a->out;
  j.q_pos0 = a->q_pos0;
  j.n_q = n_q;
  j.n_heads = a->n_heads;
  j.ratio = a->ratio;
  j.scale = a->scale;
  j.causal = a->causal;
  j.tok_chunk = MAX (1, MIN (n_q, BLK_Q_ROWS / a->ratio));
  j.n_chunks = (n_q + j.tok_chunk - 1) / j.tok_chunk;
  /* A call of one token chunk (a decode, or a prefill of up to
   * BLK_Q_ROWS / ratio tokens) whose KV heads the threads cannot share
   * evenly (3 heads on 2 threads) splits each head's cached tokens in nt
   * parts and merges their softmax states after (as flash-decoding does),
   * so no thread idles. */
  j.n_split = j.n_chunks == 1 && c->cfg.num_kv_heads % nt != 0 ? nt : 1;
  j.parts = NULL;
  items = j.n_chunks * j.n_split * c->cfg.num_kv_heads;
  /* A few items that the threads cannot share evenly would leave a thread
   * idle: attend_rows instead. */
  if (items < 2 * nt && items % nt != 0)
    return FALSE;
  rmax = (gint64) j.tok_chunk * a->ratio;
  if (j.n_split > 1)
    {
      parts = g_try_malloc ((gsize) c->cfg.num_kv_heads * j.n_split * rmax * (D + 2) *
                            sizeof (float));
      if (parts == NULL)
        return FALSE;
      j.parts = parts;
    }
  /* qr, s, o, acc, m, l; kb, vt; then the rounded queries (round_queries) */
  j.scratch_floats = (gsize) (rmax * (3 * D + bs + 2) + 2 * bs * D + 16) +
                     QUANT_QUERY_FLOATS (rmax, D, c->sf.n_groups);
  scratch = g_try_malloc ((gsize) nt * j.scratch_floats * sizeof (float));
  if (scratch == NULL)
    return FALSE;
  j.scratch = scratch;
  rk_pool_parallel_for (c->threads, items, 1, blocked_items, &j);
  if (j.n_split > 1)
    merge_parts (&j);
  return TRUE;
}

gboolean
ruv_two_tier_kv_cache_attend (RuvTwoTierKvCache *c,
                              gint               layer,
                              const float       *q,
                              gint               n_q,
                              gint               n_heads,
                              gint64             q_pos0,
                              float              scale,
                              gboolean           causal,
                              float             *out,
                              GError           **error)
{
  AttendJob job;
  gint64 rows, work;

  if (n_heads <= 0 || n_heads % c->cfg.num_kv_heads != 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "attention: %d query heads is not a multiple of %d KV heads",
                   n_heads, c->cfg.num_kv_heads);
      return FALSE;
    }
  if (layer < 0 || layer >= c->cfg.num_layers)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE,
                   "KV cache has no layer %d (it has %d)", layer, c->cfg.num_layers);
      return FALSE;
    }
  if (n_q <= 0)
    return TRUE;
  job.c = c;
  job.L = &c->layers[layer];
  job.q = q;
  job.out = out;
  job.q_pos0 = q_pos0;
  job.n_heads = n_heads;
  job.ratio = n_heads / c->cfg.num_kv_heads;
  job.scale = scale != 0.0f ? scale : 1.0f / sqrtf ((float) c->cfg.head_dim);
  job.causal = causal;
  rows = (gint64) n_q * n_heads;
  work = MAX (job.L->n_store + job.L->n_tail, 1) * c->cfg.head_dim;
  /* Several query rows per KV head: the blocked path shares each cached
   * token's conversion between them (attend_rows reads the packed codes
   * once per query row, best for a single row). */
  if ((gint64) n_q * job.ratio >= BLK_MIN_ROWS && attend_blocked (&job, n_q))
    return TRUE;
  rk_pool_parallel_for (c->threads, rows, 1 + 65536 / work, attend_rows, &job);
  return TRUE;
}

/* ---- stats, clear, truncate ---------------------------------------------- */

void
ruv_two_tier_kv_cache_get_stats (RuvTwoTierKvCache *c,
                                 RuvKvCacheStats   *s)
{
  guint64 hd = (guint64) c->cfg.num_kv_heads * c->cfg.head_dim;
  guint64 fp16 = 0;
  gint l;
  guint i;

  memset (s, 0, sizeof *s);
  g_mutex_lock (&c->lock);
  for (l = 0; l < c->cfg.num_layers; l++)
    {
      const KvLayer *L = &c->layers[l];

      s->total_tokens = MAX (s->total_tokens, L->n_store + L->n_tail);
      s->tail_tokens = MAX (s->tail_tokens, L->n_tail);
      s->store_tokens = MAX (s->store_tokens, L->n_store);
      s->tail_bytes += (guint64) L->n_tail * 2 * hd * c->tail_es;
      s->store_bytes += (guint64) L->n_store * 2 * c->cfg.num_kv_heads *
                        (L->sf->codes_bytes + L->sf->scale_bytes);
      fp16 += (guint64) (L->n_store + L->n_tail) * 2 * hd * 2;
      s->block_bytes += (guint64) L->tail.ids->len * c->tail_block +
                        (guint64) L->store.ids->len * L->sf->block;
      for (i = 0; i < L->tail.ids->len; i++)
        s->shared_blocks += pool_block_shared (c->pool, table_id (&L->tail, i));
      for (i = 0; i < L->store.ids->len; i++)
        s->shared_blocks += pool_block_shared (c->pool, table_id (&L->store, i));
    }
  g_mutex_unlock (&c->lock);
  s->compression_ratio = s->tail_bytes + s->store_bytes > 0
                         ? (double) fp16 / (double) (s->tail_bytes + s->store_bytes) : 1.0;
}

static void
layer_truncate (RuvTwoTierKvCache *c, KvLayer *L, gint64 n)
{
  gint64 bs = c->cfg.block_size;

  if (n >= L->n_store + L->n_tail)
    return;
  if (n <= L->n_store)
    {
      L->n_store = n;
      table_cut (c->pool, &L->store, ceil_div (n, bs));
      table_cut (c->pool, &L->tail, 0);
      L->n_tail = 0;
      L->tail_off = 0;
    }
  else
    {
      L->n_tail = n - L->n_store;
      table_cut (c->pool, &L->tail, ceil_div (L->tail_off + L->n_tail, bs));
    }
}

void
ruv_two_tier_kv_cache_truncate (RuvTwoTierKvCache *c,
                                gint64             n)
{
  gint l;

  g_mutex_lock (&c->lock);
  for (l = 0; l < c->cfg.num_layers; l++)
    layer_truncate (c, &c->layers[l], MAX (n, 0));
  g_mutex_unlock (&c->lock);
}

void
ruv_two_tier_kv_cache_clear (RuvTwoTierKvCache *c)
{
  ruv_two_tier_kv_cache_truncate (c, 0);
}

RuvTwoTierKvCache *
ruv_two_tier_kv_cache_fork (RuvTwoTierKvCache *src,
                            gint64             n_tokens,
                            GError           **error)
{
  RuvTwoTierKvCache *c;
  gint l;
  guint i;

  for (l = 0; l < src->cfg.num_layers; l++)
    if (n_tokens < 0 || n_tokens > src->layers[l].n_store + src->layers[l].n_tail)
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE,
                     "cannot fork %" G_GINT64_FORMAT " tokens: layer %d holds %"
                     G_GINT64_FORMAT, n_tokens, l,
                     src->layers[l].n_store + src->layers[l].n_tail);
        return NULL;
      }
  c = ruv_two_tier_kv_cache_new_with_pool (&src->pub, src->pool, error);
  if (c == NULL)
    return NULL;
  for (l = 0; l < src->cfg.num_layers; l++)
    {
      const KvLayer *S = &src->layers[l];
      KvLayer *L = &c->layers[l];

      for (i = 0; i < S->store.ids->len; i++)
        {
          pool_ref_block (c->pool, table_id (&S->store, i));
          table_push (&L->store, table_id (&S->store, i), table_ptr (&S->store, i));
        }
      for (i = 0; i < S->tail.ids->len; i++)
        {
          pool_ref_block (c->pool, table_id (&S->tail, i));
          table_push (&L->tail, table_id (&S->tail, i), table_ptr (&S->tail, i));
        }
      L->n_store = S->n_store;
      L->n_tail = S->n_tail;
      L->tail_off = S->tail_off;
      layer_truncate (c, L, n_tokens);
    }
  return c;
}

const gint32 *
ruv_two_tier_kv_cache_get_block_table (RuvTwoTierKvCache *c,
                                       gint               layer,
                                       RuvKvTier          tier,
                                       gint64            *n_blocks,
                                       gint64            *first_slot)
{
  const Table *t;

  if (layer < 0 || layer >= c->cfg.num_layers)
    {
      *n_blocks = 0;
      if (first_slot != NULL)
        *first_slot = 0;
      return NULL;
    }
  t = tier == RUV_KV_TIER_STORE ? &c->layers[layer].store : &c->layers[layer].tail;
  *n_blocks = t->ids->len;
  if (first_slot != NULL)
    *first_slot = tier == RUV_KV_TIER_STORE ? 0 : c->layers[layer].tail_off;
  return (const gint32 *) (void *) t->ids->data;
}

/* ---- update_policy --------------------------------------------------------- */

gboolean
ruv_two_tier_kv_cache_update_policy (RuvTwoTierKvCache *c,
                                     RuvPrecision       prec,
                                     GError           **error)
{
  StoreFmt nf, nf_hi, of = c->sf, of_hi = c->sf_hi;
  Prealloc pa, pa_hi;
  gint64 need = 0, need_hi = 0, bs = c->cfg.block_size, p;
  gint H = c->cfg.num_kv_heads, D = c->cfg.head_dim, l, h;
  float *x;

  if (!store_precision_ok (prec) || (prec == RUV_PRECISION_Q4 && D % 2 != 0))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "KV cache: the store cannot hold %s (Q8, Q4 or FP16)",
                   ruv_precision_name (prec));
      return FALSE;
    }
  if (prec == c->sf.prec)
    return TRUE;
  store_fmt_init (&nf, &c->cfg, prec, 0);
  hi_fmt_init (&nf_hi, &c->cfg, prec, &nf);
  /* a layer whose format stays keeps its blocks (the first layers where their
   * format is the same in both stores, as with a head_dim that cannot pack) */
  for (l = 0; l < c->cfg.num_layers; l++)
    if (l >= c->cfg.q8_layers)
      need += ceil_div (c->layers[l].n_store, bs);
    else if (!same_fmt (&nf_hi, &of_hi))
      need_hi += ceil_div (c->layers[l].n_store, bs);
  if (!prealloc_get (c->pool, &c->reserved, nf.block, need, &pa, error))
    return FALSE;
  if (!prealloc_get (c->pool, &c->reserved, nf_hi.block, need_hi, &pa_hi, error))
    {
      prealloc_release (c->pool, &pa);
      return FALSE;
    }

  x = g_new (float, D);
  g_mutex_lock (&c->lock);
  for (l = 0; l < c->cfg.num_layers; l++)
    {
      KvLayer *L = &c->layers[l];
      gboolean hi = l < c->cfg.q8_layers;
      const StoreFmt *o = hi ? &of_hi : &of, *n = hi ? &nf_hi : &nf;
      Table nt;

      if (same_fmt (o, n))
        continue;
      table_init (&nt);
      for (p = 0; p < L->n_store; p++)
        {
          guint8 *src = table_ptr (&L->store, p / bs);
          int kv;

          if (p % bs == 0)
            {
              gint32 id;
              guint8 *ptr;

              prealloc_take (hi ? &pa_hi : &pa, &id, &ptr);
              table_push (&nt, id, ptr);
            }
          for (h = 0; h < H; h++)
            for (kv = 0; kv < 2; kv++)
              {
                gsize row = (gsize) (p % bs) * H + h;

                store_read (c, o, src, kv, row, x);
                store_write (c, n, table_ptr (&nt, p / bs), kv, row, x);
              }
        }
      table_free (c->pool, &L->store);
      L->store = nt;
    }
  c->cfg.store_precision = prec;
  c->pub.kv.store_precision = prec;
  /* the layers point at these two */
  c->sf = nf;
  c->sf_hi = nf_hi;
  g_mutex_unlock (&c->lock);
  g_free (x);
  prealloc_release (c->pool, &pa);
  prealloc_release (c->pool, &pa_hi);
  return TRUE;
}

/* ---- shift ------------------------------------------------------------------ */

void
ruv_kv_cache_rope_shift (float   *k,
                         gint64   n_tokens,
                         gint     n_kv_heads,
                         gint     head_dim,
                         gint64   delta,
                         gpointer rope_params)
{
  rk_rope_params p = *(const rk_rope_params *) rope_params;
  float *cs;
  gint64 t;

  /* Rotations compose: R(pos + delta) = R(delta) R(pos); the YaRN magnitude
   * factor is already in the cached keys. */
  p.attn_factor = 1.0f;
  cs = g_new (float, MAX (p.n_rot, 2));
  rk_rope_cache (cs, delta, &p);
  for (t = 0; t < n_tokens; t++)
    rk_rope_apply (k + (gsize) t * n_kv_heads * head_dim, n_kv_heads, head_dim, cs, &p);
  g_free (cs);
}

gboolean
ruv_two_tier_kv_cache_shift (RuvTwoTierKvCache *c,
                             gint64             begin,
                             gint64             end,
                             RuvKvRopeShiftFunc rope,
                             gpointer           rope_data,
                             GError           **error)
{
  gsize row = (gsize) c->cfg.num_kv_heads * c->cfg.head_dim;
  RuvTwoTierKvCache *tmp;
  KvLayer *layers;
  gint l;

  for (l = 0; l < c->cfg.num_layers; l++)
    {
      gint64 total = c->layers[l].n_store + c->layers[l].n_tail;

      if (begin < 0 || begin > end || end > total)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE,
                       "KV cache shift: range [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                       ") is outside the %" G_GINT64_FORMAT " tokens of layer %d",
                       begin, end, total, l);
          return FALSE;
        }
    }
  if (begin == end)
    return TRUE;
  /* Build the shifted layers in a fork that shares [0, begin) and swap them
   * in only when every layer is done: a failure leaves the cache as it was. */
  tmp = ruv_two_tier_kv_cache_fork (c, begin, error);
  if (tmp == NULL)
    return FALSE;
  for (l = 0; l < c->cfg.num_layers; l++)
    {
      KvLayer *L = &c->layers[l];
      gint64 m = L->n_store + L->n_tail - end, p;
      g_autofree float *k = g_try_new (float, (gsize) MAX (m, 1) * row);
      g_autofree float *v = g_try_new (float, (gsize) MAX (m, 1) * row);
      GError *local = NULL;

      if (k == NULL || v == NULL)
        {
          ruv_two_tier_kv_cache_free (tmp);
          g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY,
                       "KV cache shift: no memory to move %" G_GINT64_FORMAT " tokens", m);
          return FALSE;
        }
      for (p = 0; p < m; p++)
        read_token (c, L, end + p, k + (gsize) p * row, v + (gsize) p * row);
      if (rope != NULL && m > 0)
        rope (k, m, c->cfg.num_kv_heads, c->cfg.head_dim, begin - end, rope_data);
      if (!ruv_two_tier_kv_cache_append (tmp, l, k, v, m, &local))
        {
          ruv_two_tier_kv_cache_free (tmp);
          g_propagate_prefixed_error (error, local, "KV cache shift: ");
          return FALSE;
        }
    }
  g_mutex_lock (&c->lock);
  layers = c->layers;
  c->layers = tmp->layers;
  point_layers (c, c->layers);
  tmp->layers = layers;
  point_layers (tmp, tmp->layers);
  g_mutex_unlock (&c->lock);
  ruv_two_tier_kv_cache_free (tmp);
  return TRUE;
}

/* ---- save / restore --------------------------------------------------------- */

#define STATE_MAGIC   "RUVKVST\n"
/* 2: the caller's bytes (u64 length, bytes) follow the token counts;
 * 3: Q4 offsets are int8 steps (not half minima), q8_layers in the layout;
 * 4: a Q4 store's first layers may be Q7, a Q8 store's Q10 (decided by the
 *    layout, which now holds q8_layers for a Q8 store too) */
#define STATE_VERSION 4

static void
put_u32 (GByteArray *b, guint32 v)
{
  guint32 le = GUINT32_TO_LE (v);

  g_byte_array_append (b, (const guint8 *) &le, 4);
}

static void
put_u64 (GByteArray *b, guint64 v)
{
  guint64 le = GUINT64_TO_LE (v);

  g_byte_array_append (b, (const guint8 *) &le, 8);
}

/* The layout part of the header: what must match for a state to fit. */
static void
put_layout (GByteArray *b, const KvCfg *cfg)
{
  put_u32 (b, (guint32) cfg->num_layers);
  put_u32 (b, (guint32) cfg->num_kv_heads);
  put_u32 (b, (guint32) cfg->head_dim);
  put_u32 (b, (guint32) cfg->tail_precision);
  put_u32 (b, (guint32) cfg->store_precision);
  put_u32 (b, (guint32) ruv_kv_cache_group_size (cfg->head_dim));
  /* the first layers' own format (Q8/Q7 in a Q4 store, Q10 in a Q8 one) */
  put_u32 (b, cfg->store_precision != RUV_PRECISION_FP16 ? (guint32) cfg->q8_layers : 0);
  put_u64 (b, (guint64) cfg->max_tokens);
}

#define LAYOUT_BYTES (7 * 4 + 8)

gboolean
ruv_two_tier_kv_cache_save (RuvTwoTierKvCache *c,
                            const char        *path,
                            const char        *fingerprint,
                            GError           **error)
{
  return ruv_two_tier_kv_cache_save_with_data (c, path, fingerprint, NULL, 0, error);
}

gboolean
ruv_two_tier_kv_cache_save_with_data (RuvTwoTierKvCache *c,
                                      const char        *path,
                                      const char        *fingerprint,
                                      const void        *data,
                                      gsize              data_len,
                                      GError           **error)
{
  g_autoptr(GByteArray) b = g_byte_array_new ();
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  gsize tail_row_bytes = (gsize) c->cfg.head_dim * c->tail_es;
  guint8 digest[32];
  gsize dlen = sizeof digest;
  gint64 bs = c->cfg.block_size, p;
  gint H = c->cfg.num_kv_heads, l, h, kv;
  GError *local = NULL;

  g_byte_array_append (b, (const guint8 *) STATE_MAGIC, 8);
  put_u32 (b, STATE_VERSION);
  put_layout (b, &c->cfg);
  put_u32 (b, (guint32) strlen (fingerprint));
  g_byte_array_append (b, (const guint8 *) fingerprint, (guint) strlen (fingerprint));
  for (l = 0; l < c->cfg.num_layers; l++)
    {
      put_u64 (b, (guint64) c->layers[l].n_store);
      put_u64 (b, (guint64) c->layers[l].n_tail);
    }
  put_u64 (b, (guint64) data_len);
  if (data_len > 0)
    g_byte_array_append (b, data, (guint) data_len);
  for (l = 0; l < c->cfg.num_layers; l++)
    {
      const KvLayer *L = &c->layers[l];
      const StoreFmt *f = L->sf;

      for (p = 0; p < L->n_store; p++)
        for (h = 0; h < H; h++)
          for (kv = 0; kv < 2; kv++)
            {
              guint8 *blk = table_ptr (&L->store, p / bs);
              gsize row = (gsize) (p % bs) * H + h;

              g_byte_array_append (b, st_codes (f, blk, kv, row), (guint) f->codes_bytes);
              if (f->prec != RUV_PRECISION_FP16)
                g_byte_array_append (b, (guint8 *) st_d (f, blk, kv, row),
                                     (guint) f->n_groups * 2);
              if (f->prec == RUV_PRECISION_Q4)
                g_byte_array_append (b, (guint8 *) st_z (f, blk, kv, row, c->rows),
                                     (guint) f->n_groups);
            }
      for (p = 0; p < L->n_tail; p++)
        for (h = 0; h < H; h++)
          for (kv = 0; kv < 2; kv++)
            {
              gint64 j = L->tail_off + p;
              guint8 *blk = table_ptr (&L->tail, j / bs);

              g_byte_array_append (b, tail_row (c, blk, kv, (gsize) (j % bs) * H + h),
                                   (guint) tail_row_bytes);
            }
    }
  g_checksum_update (sum, b->data, b->len);
  g_checksum_get_digest (sum, digest, &dlen);
  g_byte_array_append (b, digest, 32);
  if (!g_file_set_contents (path, (const char *) b->data, b->len, &local))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot save the KV cache: %s",
                   local->message);
      g_error_free (local);
      return FALSE;
    }
  return TRUE;
}

typedef struct
{
  const guint8 *p;
  gsize         left;
} Cursor;

static gboolean
take (Cursor *cur, gsize n, const guint8 **out)
{
  if (n > cur->left)
    return FALSE;
  *out = cur->p;
  cur->p += n;
  cur->left -= n;
  return TRUE;
}

static gboolean
take_u64 (Cursor *cur, guint64 *v)
{
  const guint8 *p;
  guint64 le;

  if (!take (cur, 8, &p))
    return FALSE;
  memcpy (&le, p, 8);
  *v = GUINT64_FROM_LE (le);
  return TRUE;
}

static gboolean
take_u32 (Cursor *cur, guint32 *v)
{
  const guint8 *p;
  guint32 le;

  if (!take (cur, 4, &p))
    return FALSE;
  memcpy (&le, p, 4);
  *v = GUINT32_FROM_LE (le);
  return TRUE;
}

static gboolean
refuse (GError **error, const char *path, const char *why)
{
  g_set_error (error, RUV_ERROR, RUV_ERROR_KV_CACHE,
               "KV cache state %s refused: %s", path, why);
  return FALSE;
}

gboolean
ruv_two_tier_kv_cache_restore (RuvTwoTierKvCache *c,
                               const char        *path,
                               const char        *fingerprint,
                               GError           **error)
{
  return ruv_two_tier_kv_cache_restore_with_data (c, path, fingerprint, NULL, error);
}

gboolean
ruv_two_tier_kv_cache_restore_with_data (RuvTwoTierKvCache *c,
                                         const char        *path,
                                         const char        *fingerprint,
                                         GBytes           **out_data,
                                         GError           **error)
{
  const guint8 *user = NULL;
  guint64 user_len = 0;
  g_autoptr(GMappedFile) mf = NULL;
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GByteArray) layout = g_byte_array_new ();
  g_autofree gint64 *counts = NULL;
  const guint8 *data, *p;
  guint8 digest[32];
  gsize len, dlen = sizeof digest;
  gsize tail_row_bytes = (gsize) c->cfg.head_dim * c->tail_es;
  guint64 body = 0, need_blocks_t = 0, need_blocks_s = 0, need_blocks_hi = 0;
  gint64 bs = c->cfg.block_size, t;
  gint H = c->cfg.num_kv_heads, L_n = c->cfg.num_layers, l, h, kv;
  Prealloc tpa, spa, hpa;
  KvLayer *nl;
  guint32 u32;
  Cursor cur;
  GError *local = NULL;

  mf = g_mapped_file_new (path, FALSE, &local);
  if (mf == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot read KV cache state: %s",
                   local->message);
      g_error_free (local);
      return FALSE;
    }
  data = (const guint8 *) g_mapped_file_get_contents (mf);
  len = g_mapped_file_get_length (mf);
  if (len < 8 + 4 + 32 || data == NULL || memcmp (data, STATE_MAGIC, 8) != 0)
    return refuse (error, path, "not a KV cache state");
  g_checksum_update (sum, data, len - 32);
  g_checksum_get_digest (sum, digest, &dlen);
  if (memcmp (digest, data + len - 32, 32) != 0)
    return refuse (error, path, "checksum mismatch (the file is corrupt)");

  cur.p = data + 8;
  cur.left = len - 32 - 8;
  if (!take_u32 (&cur, &u32) || u32 != STATE_VERSION)
    return refuse (error, path, "unsupported version");
  put_layout (layout, &c->cfg);
  if (!take (&cur, LAYOUT_BYTES, &p) || memcmp (p, layout->data, LAYOUT_BYTES) != 0)
    return refuse (error, path, "saved with another cache layout (layers, heads, "
                   "head_dim, precisions, q8_layers or max_tokens differ)");
  if (!take_u32 (&cur, &u32) || u32 != strlen (fingerprint) || !take (&cur, u32, &p) ||
      memcmp (p, fingerprint, u32) != 0)
    return refuse (error, path, "saved for another model or context");

  counts = g_new (gint64, 2 * (gsize) L_n);
  for (l = 0; l < L_n; l++)
    {
      const StoreFmt *f = layer_fmt (c, l);
      gsize store_row_bytes = f->codes_bytes + f->scale_bytes;
      guint64 ns, nt, add;

      if (!take_u64 (&cur, &ns) || !take_u64 (&cur, &nt))
        return refuse (error, path, "truncated");
      if (ns > (guint64) c->cfg.max_tokens || nt > (guint64) c->cfg.max_tokens - ns)
        return refuse (error, path, "token counts exceed max_tokens");
      counts[2 * l] = (gint64) ns;
      counts[2 * l + 1] = (gint64) nt;
      if (!g_uint64_checked_mul (&add, ns, (guint64) H * 2 * store_row_bytes) ||
          !g_uint64_checked_add (&body, body, add) ||
          !g_uint64_checked_mul (&add, nt, (guint64) H * 2 * tail_row_bytes) ||
          !g_uint64_checked_add (&body, body, add))
        return refuse (error, path, "token counts overflow");
      *(l < c->cfg.q8_layers ? &need_blocks_hi : &need_blocks_s) +=
        (guint64) ceil_div ((gint64) ns, bs);
      need_blocks_t += (guint64) ceil_div ((gint64) nt, bs);
    }
  if (!take_u64 (&cur, &user_len) || user_len > cur.left ||
      !take (&cur, (gsize) user_len, &user))
    return refuse (error, path, "truncated");
  if (body != cur.left)
    return refuse (error, path, "its size does not match its token counts");

  if (!prealloc_get (c->pool, &c->reserved, c->tail_block, (gint64) need_blocks_t, &tpa, error))
    return FALSE;
  if (!prealloc_get (c->pool, &c->reserved, c->sf.block, (gint64) need_blocks_s, &spa, error))
    {
      prealloc_release (c->pool, &tpa);
      return FALSE;
    }
  if (!prealloc_get (c->pool, &c->reserved, c->sf_hi.block, (gint64) need_blocks_hi, &hpa,
                     error))
    {
      prealloc_release (c->pool, &tpa);
      prealloc_release (c->pool, &spa);
      return FALSE;
    }
  nl = g_new0 (KvLayer, L_n);
  point_layers (c, nl);
  for (l = 0; l < L_n; l++)
    {
      KvLayer *L = &nl[l];
      const StoreFmt *f = L->sf;

      table_init (&L->store);
      table_init (&L->tail);
      L->n_store = counts[2 * l];
      L->n_tail = counts[2 * l + 1];
      for (t = 0; t < L->n_store; t++)
        {
          gint32 id;
          guint8 *blk;

          if (t % bs == 0)
            {
              prealloc_take (l < c->cfg.q8_layers ? &hpa : &spa, &id, &blk);
              table_push (&L->store, id, blk);
            }
          blk = table_ptr (&L->store, t / bs);
          for (h = 0; h < H; h++)
            for (kv = 0; kv < 2; kv++)
              {
                gsize row = (gsize) (t % bs) * H + h;

                take (&cur, f->codes_bytes, &p);
                memcpy (st_codes (f, blk, kv, row), p, f->codes_bytes);
                if (f->prec != RUV_PRECISION_FP16)
                  {
                    take (&cur, (gsize) f->n_groups * 2, &p);
                    memcpy (st_d (f, blk, kv, row), p, (gsize) f->n_groups * 2);
                  }
                if (f->prec == RUV_PRECISION_Q4)
                  {
                    take (&cur, (gsize) f->n_groups, &p);
                    memcpy (st_z (f, blk, kv, row, c->rows), p, (gsize) f->n_groups);
                  }
              }
        }
      for (t = 0; t < L->n_tail; t++)
        {
          gint32 id;
          guint8 *blk;

          if (t % bs == 0)
            {
              prealloc_take (&tpa, &id, &blk);
              table_push (&L->tail, id, blk);
            }
          blk = table_ptr (&L->tail, t / bs);
          for (h = 0; h < H; h++)
            for (kv = 0; kv < 2; kv++)
              {
                take (&cur, tail_row_bytes, &p);
                memcpy (tail_row (c, blk, kv, (gsize) (t % bs) * H + h), p, tail_row_bytes);
              }
        }
    }
  g_mutex_lock (&c->lock);
  for (l = 0; l < L_n; l++)
    {
      table_free (c->pool, &c->layers[l].store);
      table_free (c->pool, &c->layers[l].tail);
    }
  g_free (c->layers);
  c->layers = nl;
  g_mutex_unlock (&c->lock);
  prealloc_release (c->pool, &tpa);
  prealloc_release (c->pool, &spa);
  prealloc_release (c->pool, &hpa);
  if (out_data != NULL)
    *out_data = g_bytes_new (user, (gsize) user_len);
  return TRUE;
}
