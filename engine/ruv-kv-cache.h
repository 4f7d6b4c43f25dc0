/* ruv-kv-cache.h — the two-tier KV cache: a high-precision tail of recent
 * tokens and a packed Q8/Q4 store of older ones, in paged blocks from a pool.
 * SPDX-License-Identifier: MIT
 *
 * Per layer and KV head, the newest tail_length tokens always stay in the tail
 * in tail_precision (FP16, BF16 or FP32); once it holds tail_length +
 * migration_batch tokens, the oldest migration_batch migrate together to the
 * store in store_precision (so after every append the tail holds
 * min (total, tail_length .. tail_length + migration_batch - 1) tokens):
 *
 *   Q8:   per (token, head) groups of G values: int8 codes, one half scale
 *         d per group, x = d * c                  (G + 2 bytes per group)
 *         except in the first q8_layers layers (default 1), which store
 *         Q10 (10-bit codes, 10 G / 8 + 2 bytes) where the store stays
 *         1.9x smaller than FP16 (12 layers or more at head_dim 64)
 *   Q4:   4-bit codes, half scale d and an int8 offset z per group,
 *         x = d * (c + z)                         (G/2 + 3 bytes per group)
 *         except in the first q8_layers layers, which store Q8, or Q7
 *         (7-bit codes) where Q8 would leave the store under 3.5x smaller
 *   Most of a quantized store's effect on the logits comes from layer 0's
 *   error, so it gets as many bits as the store's memory target leaves.
 *   FP16: plain halves (an unquantized store: "--kv-store f16")
 *
 * G is 64 when head_dim is a multiple of 64, else 32 when it is a multiple of
 * 32, else head_dim. K and V have their own scales. Every stored key is
 * within d/2 of what was appended (plus half rounding for the tail). Values
 * use error feedback along a migration batch: each channel's rounding
 * residual is added to the next token's value before it is quantized, so
 * the errors of neighbouring tokens cancel in attention's weighted sums
 * (a stored value is within its d/2 plus the previous token's d/2).
 *
 * Storage is paged: a layer's tokens live in fixed-size blocks of block_size
 * tokens (all KV heads, K and V) taken from a RuvKvPool; each layer of a
 * sequence has a block table for its store and one for its tail. Several
 * caches (chats) may share one pool, and ruv_two_tier_kv_cache_fork() shares
 * the blocks of a common prefix: shared blocks are copied on the first write
 * (copy-on-write, per-block reference counts).
 *
 * Attention runs per query head with GQA straight over both tiers: scores are
 * dot products with the packed codes and values are accumulated from them
 * (online softmax over store blocks, then tail blocks); nothing is
 * dequantized into a copy beyond one block of tokens. Keys in a Q4 store
 * are scored against the query rounded to int8, keys in a Q8 store (or a Q4
 * store's Q8 layers) against the query rounded to int16 (one scale per
 * query row, rk_kvq_quantize_query/16), as llama.cpp scores a quantized K
 * against a quantized query: a decode step's GQA group takes integer
 * products with the codes (rk_kvq4/8_group_scores) and one pass over each
 * block for all its rows (rk_kv_group_step).
 *
 * Threads: one thread at a time mutates or attends a cache;
 * ruv_two_tier_kv_cache_get_stats() may be called from any thread meanwhile.
 * A pool may be used by caches on different threads.
 */
#pragma once

#include <glib.h>

#include "rk-pool.h"
#include "ruv-model-config.h"
#include "ruv-types.h"

G_BEGIN_DECLS

/* What a cache is built from: the reference's KvCacheConfig (shared with
 * RuvModelConfig.kv_cache_config; here num_kv_heads and head_dim must be
 * set, not 0) plus the layer count and the paging block size. */
typedef struct
{
  RuvKvCacheConfig kv;
  gint             num_layers;    /* 1 */
  gint             block_size;    /* tokens per paged block, 1..256 (32) */
} RuvTwoTierKvCacheConfig;

/* The reference's KvCacheStats. Byte counts are what the tokens occupy,
 * scales and minima included; compression_ratio = bytes an FP16 cache would
 * use for the same tokens / (tail_bytes + store_bytes) (1 when empty). */
typedef struct
{
  gint64  total_tokens;
  gint64  tail_tokens;
  gint64  store_tokens;
  guint64 tail_bytes;
  guint64 store_bytes;
  double  compression_ratio;
  guint64 block_bytes;            /* bytes of the pool blocks this cache holds,
                                   * shared and partly filled ones included */
  gint64  shared_blocks;          /* of those, blocks shared with another cache */
} RuvKvCacheStats;

/* The reference's defaults (tail 256 FP16, Q4 store, 4096 tokens, batch 64),
 * 8 KV heads of 128, 1 layer, blocks of 32 tokens. */
void     ruv_two_tier_kv_cache_config_init     (RuvTwoTierKvCacheConfig       *config);
/* RUV_ERROR_CONFIG for: a zero count (heads, head_dim, layers, block_size,
 * max_tokens, migration_batch), tail_length > max_tokens, block_size > 256,
 * a tail precision other than FP16/BF16/FP32, a store precision other than
 * Q8/Q4/FP16, or an odd head_dim with a Q4 store. */
gboolean ruv_two_tier_kv_cache_config_validate (const RuvTwoTierKvCacheConfig *config,
                                                GError                       **error);
/* Values per quantization group for this head_dim (see above). */
gint     ruv_kv_cache_group_size      (gint                    head_dim);

/* ---- the pool ----------------------------------------------------------- */

typedef struct _RuvKvPool RuvKvPool;

/* A pool handing out blocks lazily up to max_bytes in all (0: no limit but
 * memory). Thread-safe, reference counted. */
RuvKvPool *ruv_kv_pool_new            (guint64     max_bytes);
RuvKvPool *ruv_kv_pool_ref            (RuvKvPool  *pool);
void       ruv_kv_pool_unref          (RuvKvPool  *pool);
guint64    ruv_kv_pool_get_max_bytes  (RuvKvPool  *pool);
guint64    ruv_kv_pool_get_used_bytes (RuvKvPool  *pool);
gint64     ruv_kv_pool_get_n_blocks   (RuvKvPool  *pool);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvKvPool, ruv_kv_pool_unref)

/* ---- the cache ---------------------------------------------------------- */

typedef struct _RuvTwoTierKvCache RuvTwoTierKvCache;

typedef enum
{
  RUV_KV_TIER_STORE,
  RUV_KV_TIER_TAIL,
} RuvKvTier;

/* Rotates the keys k (n_tokens, n_kv_heads, head_dim), in place, by delta
 * positions (delta < 0 moves them earlier). */
typedef void (*RuvKvRopeShiftFunc) (float   *k,
                                    gint64   n_tokens,
                                    gint     n_kv_heads,
                                    gint     head_dim,
                                    gint64   delta,
                                    gpointer user_data);

/* A RuvKvRopeShiftFunc whose user_data is an rk_rope_params (attn_factor is
 * not applied again). */
void ruv_kv_cache_rope_shift (float   *k,
                              gint64   n_tokens,
                              gint     n_kv_heads,
                              gint     head_dim,
                              gint64   delta,
                              gpointer rope_params);

/* A cache with its own unlimited pool / in `pool` (NULL: its own). */
RuvTwoTierKvCache *ruv_two_tier_kv_cache_new           (const RuvTwoTierKvCacheConfig *config,
                                                        GError                **error);
RuvTwoTierKvCache *ruv_two_tier_kv_cache_new_with_pool (const RuvTwoTierKvCacheConfig *config,
                                                        RuvKvPool              *pool,
                                                        GError                **error);
/* A new cache in the same pool holding the first n_tokens of src (in every
 * layer), sharing src's blocks copy-on-write. n_tokens <= src's count. */
RuvTwoTierKvCache *ruv_two_tier_kv_cache_fork          (RuvTwoTierKvCache      *src,
                                                        gint64                  n_tokens,
                                                        GError                **error);
void               ruv_two_tier_kv_cache_free          (RuvTwoTierKvCache      *cache);

const RuvTwoTierKvCacheConfig *ruv_two_tier_kv_cache_get_config (RuvTwoTierKvCache *cache);
RuvKvPool              *ruv_two_tier_kv_cache_get_pool   (RuvTwoTierKvCache *cache);
/* Threads for attend (NULL: the calling thread only). Not owned. */
void     ruv_two_tier_kv_cache_set_threads  (RuvTwoTierKvCache *cache,
                                             rk_pool           *threads);

/* Tokens held by a layer (after a full forward step, every layer the same). */
gint64   ruv_two_tier_kv_cache_get_n_tokens (RuvTwoTierKvCache *cache,
                                             gint               layer);

/* Bits per value of a layer's store codes: 16 (FP16 store), 10 (Q10: a Q8
 * store's first layers where it stays 1.9x smaller than FP16), 8 (Q8), 7
 * (Q7: a Q4 store's first layers where Q8 would leave the store under 3.5x
 * smaller), 4 (Q4); scales not counted. 0 for a bad layer. */
guint    ruv_two_tier_kv_cache_get_layer_bits (RuvTwoTierKvCache *cache,
                                               gint               layer);

/* Checks that n_tokens more tokens fit in every layer (max_tokens) and sets
 * aside the pool bytes their appends will take (replacing any earlier
 * reservation of this cache), so a caller can fail before layer 0 changes
 * and no other cache in the pool can take those bytes meanwhile. Appends
 * draw on the reservation first. RUV_ERROR_KV_CACHE / RUV_ERROR_OUT_OF_MEMORY
 * (the message says what was asked and what is left). */
gboolean ruv_two_tier_kv_cache_reserve      (RuvTwoTierKvCache *cache,
                                             gint64             n_tokens,
                                             GError           **error);
/* Gives back what is left of the reservation (after a step's appends). */
void     ruv_two_tier_kv_cache_release_reservation (RuvTwoTierKvCache *cache);

/* Appends keys and values (n_tokens, num_kv_heads, head_dim) to a layer, then
 * migrates the oldest tail tokens to the store, migration_batch at a time,
 * while tail_length would remain. All or nothing: on error the
 * layer is unchanged. Errors: RUV_ERROR_KV_CACHE past max_tokens or for a bad
 * layer; RUV_ERROR_OUT_OF_MEMORY when the pool cannot hold the blocks (the
 * message says what was asked and what is left). */
gboolean ruv_two_tier_kv_cache_append       (RuvTwoTierKvCache *cache,
                                             gint               layer,
                                             const float       *keys,
                                             const float       *values,
                                             gint64             n_tokens,
                                             GError           **error);

/* The layer's keys and values, store dequantized: k, v (n_tokens, heads,
 * head_dim) with n_tokens = get_n_tokens (layer). */
void     ruv_two_tier_kv_cache_get_all_kv   (RuvTwoTierKvCache *cache,
                                             gint               layer,
                                             float             *k,
                                             float             *v);

/* out (n_q, n_heads, head_dim) = softmax (scale q k^T) v per query head h over
 * KV head h / (n_heads / num_kv_heads), for q (n_q, n_heads, head_dim) at
 * positions q_pos0 .. q_pos0 + n_q - 1 (causal: query i sees cached tokens
 * 0 .. q_pos0 + i; cached token j is at position j). scale 0 means
 * 1/sqrt(head_dim); for keys in a Q8/Q4 store q is the int8-rounded query (see
 * above). A query that sees no token gets zeros. RUV_ERROR_CONFIG
 * when n_heads is not a positive multiple of num_kv_heads. */
gboolean ruv_two_tier_kv_cache_attend       (RuvTwoTierKvCache *cache,
                                             gint               layer,
                                             const float       *q,
                                             gint               n_q,
                                             gint               n_heads,
                                             gint64             q_pos0,
                                             float              scale,
                                             gboolean           causal,
                                             float             *out,
                                             GError           **error);

void     ruv_two_tier_kv_cache_get_stats    (RuvTwoTierKvCache *cache,
                                             RuvKvCacheStats   *stats);
/* Drops every token (blocks go back to the pool). */
void     ruv_two_tier_kv_cache_clear        (RuvTwoTierKvCache *cache);
/* Keeps the first n_tokens of every layer. */
void     ruv_two_tier_kv_cache_truncate     (RuvTwoTierKvCache *cache,
                                             gint64             n_tokens);
/* Switches the store to Q8, Q4 or FP16, re-quantizing what it holds (from its
 * dequantized values), the first q8_layers layers to their own format (a
 * layer whose format does not change keeps its blocks as they are). All or
 * nothing; RUV_ERROR_CONFIG for another precision, RUV_ERROR_OUT_OF_MEMORY
 * when the pool cannot hold the copy. */
gboolean ruv_two_tier_kv_cache_update_policy (RuvTwoTierKvCache *cache,
                                              RuvPrecision       store_precision,
                                              GError           **error);
/* Context shift: drops tokens [begin, end) of every layer; tokens from end on
 * move to begin.., their keys rotated by begin - end positions with rope (NULL:
 * not rotated). All or nothing: RUV_ERROR_KV_CACHE for a bad range,
 * RUV_ERROR_OUT_OF_MEMORY when the pool cannot hold the moved tokens while
 * the old ones are still held; either way the cache is unchanged. The kept
 * prefix [0, begin) is not copied (its blocks are shared). */
gboolean ruv_two_tier_kv_cache_shift        (RuvTwoTierKvCache *cache,
                                             gint64             begin,
                                             gint64             end,
                                             RuvKvRopeShiftFunc rope,
                                             gpointer           rope_data,
                                             GError           **error);

/* Block table of one tier of a layer: pool block ids, n_blocks entries; block
 * i holds the tier's tokens i*block_size.. (the tail's first block starts at
 * slot *first_slot, the store's at 0). For inspection and tests. */
const gint32 *ruv_two_tier_kv_cache_get_block_table (RuvTwoTierKvCache *cache,
                                                     gint               layer,
                                                     RuvKvTier          tier,
                                                     gint64            *n_blocks,
                                                     gint64            *first_slot);

/* Writes the whole cache (config, counts, packed data) to path with a version
 * and a SHA-256 checksum; fingerprint names the model and context it belongs
 * to. RUV_ERROR_IO on write errors. */
gboolean ruv_two_tier_kv_cache_save         (RuvTwoTierKvCache *cache,
                                             const char        *path,
                                             const char        *fingerprint,
                                             GError           **error);
/* The same with the caller's own bytes (e.g. the token ids the cache holds)
 * stored under the same checksum; restore_with_data gives them back. */
gboolean ruv_two_tier_kv_cache_save_with_data (RuvTwoTierKvCache *cache,
                                               const char        *path,
                                               const char        *fingerprint,
                                               const void        *data,
                                               gsize              data_len,
                                               GError           **error);
/* Replaces the cache's contents with a saved state. The file is distrusted:
 * a bad magic, version, checksum or size, or a state saved with another
 * fingerprint or cache layout is refused with RUV_ERROR_KV_CACHE (RUV_ERROR_IO
 * when it cannot be read), leaving the cache unchanged. */
gboolean ruv_two_tier_kv_cache_restore      (RuvTwoTierKvCache *cache,
                                             const char        *path,
                                             const char        *fingerprint,
                                             GError           **error);
/* data (may be NULL) receives the caller's bytes (empty when none). */
gboolean ruv_two_tier_kv_cache_restore_with_data (RuvTwoTierKvCache *cache,
                                                  const char        *path,
                                                  const char        *fingerprint,
                                                  GBytes           **data,
                                                  GError           **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvTwoTierKvCache, ruv_two_tier_kv_cache_free)

G_END_DECLS
