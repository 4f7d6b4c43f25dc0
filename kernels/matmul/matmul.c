/* matmul.c — matrix-vector (decode) and matrix-matrix (prefill) products.
 * SPDX-License-Identifier: MIT
 *
 * Everything is built on the per-type row kernels of rk_get_traits():
 * from_float converts activations to the weight's vec_dot_type once, then
 * every output is one vec_dot of a weight row with an activation row.
 *
 * Decode (one token) is bound by reading W once: rows are split in
 * contiguous ranges over the pool so each thread streams its own range, one
 * row after the other. Dotting 2-4 rows at once (sharing the activation
 * loads) was measured 3-4x slower on Zen 4 from memory: interleaved reads of
 * neighbouring rows defeat the hardware prefetcher, and software prefetch
 * did not win it back (nor helped the one-row loop).
 * Prefill (many tokens) is blocked: a tile of weight rows (~TILE_BYTES) is
 * multiplied by a block of TOK_BLOCK tokens before moving on, so each weight
 * row is fetched from memory once per tile and reused from L1 for the whole
 * token block, and the token block stays in L1/L2 across the tile's rows.
 * Where rk-gemm.h has a block product for the weight type, a tile times a
 * token block is one call of it (register-blocked: a few rows by a few tokens
 * at once); other types loop over vec_dot.
 */
#include <math.h>
#include <string.h>

#include "rk-cpu.h"
#include "rk-gemm.h"
#include "rk-matmul.h"

/* Bytes of weights one decode chunk should at least cover, so the atomic
 * claim and the call overhead are negligible next to the streaming. */
#define DECODE_MIN_BYTES 16384
/* Weight bytes per prefill tile: fits L2 with room for the token block. */
#define TILE_BYTES 65536
#define TILE_MIN_ROWS 4
#define TILE_MAX_ROWS 64
/* Tokens multiplied per pass over a tile. */
#define TOK_BLOCK 8

typedef struct
{
  rk_vec_dot_fn  vec_dot;
  rk_gemm_fn     gemm;        /* NULL: one vec_dot per output */
  const uint8_t *w;
  size_t         row_stride;
  int            n_in;
  int64_t        n_out;
  const uint8_t *xq;
  size_t         xq_row;      /* bytes per activation row */
  int64_t        n_tok;
  float         *y;
  int64_t        y_stride;
  int64_t        tile_rows;
  int64_t        gemm_toks;   /* tokens per block product call (rk_gemm_tok_block) */
  int64_t        range_end[RK_MATVEC_MAX_RANGES]; /* decode: end row of each range */
} matmul_job;

static void
matvec_range (void    *data,
              int64_t  begin,
              int64_t  end,
              int      thread_index)
{
  const matmul_job *j = data;
  const uint8_t *w = j->w + (size_t) begin * j->row_stride;
  int64_t r;

  for (r = begin; r < end; r++, w += j->row_stride)
    j->y[r] = j->vec_dot (j->n_in, w, j->xq);
}

/* Decode ranges [begin, end) of range_end (see rk_matvec_ranges). */
static void
matvec_ranges (void    *data,
               int64_t  begin,
               int64_t  end,
               int      thread_index)
{
  const matmul_job *j = data;
  int64_t k;

  for (k = begin; k < end; k++)
    matvec_range (data, k > 0 ? j->range_end[k - 1] : 0, j->range_end[k], thread_index);
}

/* Cuts n rows into ranges of decreasing size (weights m, m - 1, .., 1 for m
 * ranges), claimed in order: the threads share the big ones first and both
 * end on small ones, so the one that finishes first waits at most about a
 * 1 / (m (m + 1) / 2) share of the rows for the other (1/36 for m = 8),
 * where equal ranges leave up to a whole range (1/8) to one thread when the
 * other started late or was slowed down. Returns the number of ranges. */
int
rk_matvec_ranges (int64_t  n,
                  int      n_threads,
                  int64_t  min_rows,
                  int64_t *range_end)
{
  int64_t m = (int64_t) n_threads * RK_MATVEC_RANGES_PER_THREAD, total, acc = 0, k;

  if (m > RK_MATVEC_MAX_RANGES)
    m = RK_MATVEC_MAX_RANGES;
  /* the smallest range (weight 1) keeps at least min_rows rows */
  while (m > 1 && n / (m * (m + 1) / 2) < min_rows)
    m--;
  if (m < 1)
    m = 1;
  total = m * (m + 1) / 2;
  for (k = 0; k < m; k++)
    {
      acc += m - k;
      range_end[k] = n * acc / total;
    }
  return (int) m;
}

/* Range of row tiles [begin, end): each tile is tile_rows weight rows times
 * all tokens, in blocks of gemm_toks tokens per block product call (or
 * TOK_BLOCK tokens per pass of vec_dot where there is none). */
static void
matmul_tiles (void    *data,
              int64_t  begin,
              int64_t  end,
              int      thread_index)
{
  const matmul_job *j = data;
  int64_t tile, r0, r1, t0, t1, r, t;

  for (tile = begin; tile < end; tile++)
    {
      r0 = tile * j->tile_rows;
      r1 = r0 + j->tile_rows < j->n_out ? r0 + j->tile_rows : j->n_out;
      if (j->gemm != NULL)
        {
          for (t0 = 0; t0 < j->n_tok; t0 += j->gemm_toks)
            {
              t1 = t0 + j->gemm_toks < j->n_tok ? t0 + j->gemm_toks : j->n_tok;
              j->gemm (j->n_in, j->w + (size_t) r0 * j->row_stride, j->row_stride,
                       (int) (r1 - r0), j->xq + (size_t) t0 * j->xq_row, j->xq_row,
                       (int) (t1 - t0), j->y + t0 * j->y_stride + r0, j->y_stride);
            }
          continue;
        }
      for (t0 = 0; t0 < j->n_tok; t0 += TOK_BLOCK)
        {
          t1 = t0 + TOK_BLOCK < j->n_tok ? t0 + TOK_BLOCK : j->n_tok;
          for (r = r0; r < r1; r++)
            {
              const uint8_t *w = j->w + (size_t) r * j->row_stride;
              const uint8_t *x = j->xq + (size_t) t0 * j->xq_row;
              float *y = j->y + t0 * j->y_stride + r;

              for (t = t0; t < t1; t++, x += j->xq_row, y += j->y_stride)
                *y = j->vec_dot (j->n_in, w, x);
            }
        }
    }
}

size_t
rk_matmul_scratch_size (rk_type wtype,
                        int64_t n_in,
                        int64_t n_tok)
{
  const rk_type_traits *tr = rk_get_traits (wtype);
  size_t row;

  if (tr == NULL || tr->vec_dot == NULL || n_tok < 0)
    return 0;
  row = rk_row_size (tr->vec_dot_type, n_in);
  if (row != 0 && (size_t) n_tok > SIZE_MAX / row)
    return 0;
  return row * (size_t) n_tok;
}

typedef struct
{
  rk_from_float_fn from_float;
  const float     *x;
  int64_t          x_stride;
  int64_t          n_in;
  uint8_t         *xq;
  size_t           xq_row;
} quant_job;

static void
quantize_range (void    *data,
                int64_t  begin,
                int64_t  end,
                int      thread_index)
{
  const quant_job *j = data;
  int64_t t;

  for (t = begin; t < end; t++)
    j->from_float (j->x + t * j->x_stride, j->xq + (size_t) t * j->xq_row, j->n_in);
}

void
rk_quantize_rows (rk_pool     *pool,
                  rk_type      type,
                  const float *x,
                  int64_t      x_stride,
                  int64_t      n_in,
                  int64_t      n_tok,
                  void        *xq)
{
  const rk_type_traits *tr = rk_get_traits (type);
  quant_job j;

  if (tr == NULL || tr->from_float == NULL || n_tok <= 0)
    return;
  j.from_float = tr->from_float;
  j.x = x;
  j.x_stride = x_stride;
  j.n_in = n_in;
  j.xq = xq;
  j.xq_row = rk_row_size (type, n_in);
  /* A row takes microseconds: share only when there are several. */
  rk_pool_parallel_for (pool, n_tok, 2, quantize_range, &j);
}

static void
fill_nan (float  *y,
          int64_t y_stride,
          int64_t n_out,
          int64_t n_tok)
{
  int64_t r, t;

  for (t = 0; t < n_tok; t++)
    for (r = 0; r < n_out; r++)
      y[t * y_stride + r] = NAN;
}

void
rk_matmul_prequant (rk_pool     *pool,
                    rk_type      wtype,
                    const void  *w,
                    size_t       row_stride,
                    int64_t      n_out,
                    int64_t      n_in,
                    const void  *xq,
                    int64_t      n_tok,
                    float       *y,
                    int64_t      y_stride)
{
  const rk_type_traits *tr = rk_get_traits (wtype);
  matmul_job j;
  int64_t min_rows, n_tiles;
  int n_threads;

  if (n_out <= 0 || n_tok <= 0)
    return;
  /* A type without a product (Q8_K, unknown ids) yields NaN, not garbage. */
  if (tr == NULL || tr->vec_dot == NULL || n_in <= 0 || n_in > INT32_MAX)
    {
      fill_nan (y, y_stride, n_out, n_tok);
      return;
    }

  j.vec_dot = tr->vec_dot;
  /* Same ISA as the traits (RUV_KERNELS=ref gives the per-pair _ref). */
  j.gemm = rk_gemm_get (wtype);
  j.gemm_toks = rk_gemm_tok_block (wtype);
  j.w = w;
  j.row_stride = row_stride;
  j.n_in = (int) n_in;
  j.n_out = n_out;
  j.xq = xq;
  j.xq_row = rk_row_size (tr->vec_dot_type, n_in);
  j.n_tok = n_tok;
  j.y = y;
  j.y_stride = y_stride;
  j.tile_rows = 0;

  if (n_tok == 1)
    {
      min_rows = DECODE_MIN_BYTES / (row_stride > 0 ? (int64_t) row_stride : 1);
      if (min_rows < 1)
        min_rows = 1;
      n_threads = rk_pool_n_threads (pool);
      if (n_threads > 1 && n_threads * RK_MATVEC_RANGES_PER_THREAD <= RK_MATVEC_MAX_RANGES)
        rk_pool_parallel_for (pool, rk_matvec_ranges (n_out, n_threads, min_rows, j.range_end),
                              1, matvec_ranges, &j);
      else
        rk_pool_parallel_for (pool, n_out, min_rows, matvec_range, &j);
      return;
    }

  j.tile_rows = TILE_BYTES / (row_stride > 0 ? (int64_t) row_stride : 1);
  if (j.tile_rows < TILE_MIN_ROWS)
    j.tile_rows = TILE_MIN_ROWS;
  if (j.tile_rows > TILE_MAX_ROWS)
    j.tile_rows = TILE_MAX_ROWS;
  n_tiles = (n_out + j.tile_rows - 1) / j.tile_rows;
  n_threads = rk_pool_n_threads (pool);
  if (n_threads > 1 && j.gemm != NULL)
    {
      /* Equal shares: a multiple of the thread count and at least 4 tiles
       * per thread (192 rows in 3 tiles of 64 would leave one thread idle
       * for a third of the time). Safe for determinism: a block product's
       * output does not depend on how the rows are cut into tiles. */
      int64_t want = n_tiles < 4 * (int64_t) n_threads ? 4 * (int64_t) n_threads : n_tiles;

      want = (want + n_threads - 1) / n_threads * n_threads;
      j.tile_rows = (n_out + want - 1) / want;
      j.tile_rows += j.tile_rows % 2;
      if (j.tile_rows < TILE_MIN_ROWS)
        j.tile_rows = TILE_MIN_ROWS;
      n_tiles = (n_out + j.tile_rows - 1) / j.tile_rows;
    }
  if (j.gemm != NULL && j.gemm_toks == RK_GEMM_PACKED_TOKS)
    {
      /* Packed block products work on passes of 16 rows (a tile of 14
       * would fill its second pass only by 6/16), so tiles are whole
       * passes; fewer passes per tile until the tiles share evenly among
       * the threads (576 rows: 12 tiles of 48, not 9 of 64). */
      int64_t passes = (n_out + RK_GEMM_PACKED_ROWS - 1) / RK_GEMM_PACKED_ROWS;
      int64_t per_tile = (j.tile_rows + RK_GEMM_PACKED_ROWS - 1) / RK_GEMM_PACKED_ROWS;

      while (per_tile > 1 && n_threads > 1
             && ((passes + per_tile - 1) / per_tile) % n_threads != 0)
        per_tile--;
      j.tile_rows = per_tile * RK_GEMM_PACKED_ROWS;
      n_tiles = (n_out + j.tile_rows - 1) / j.tile_rows;
    }
  rk_pool_parallel_for (pool, n_tiles, 1, matmul_tiles, &j);
}

void
rk_matmul (rk_pool     *pool,
           rk_type      wtype,
           const void  *w,
           size_t       row_stride,
           int64_t      n_out,
           int64_t      n_in,
           const float *x,
           int64_t      x_stride,
           int64_t      n_tok,
           float       *y,
           int64_t      y_stride,
           void        *scratch)
{
  const rk_type_traits *tr = rk_get_traits (wtype);

  if (n_out <= 0 || n_tok <= 0)
    return;
  if (tr == NULL || tr->vec_dot == NULL)
    {
      fill_nan (y, y_stride, n_out, n_tok);
      return;
    }
  /* F32 activations already are F32's vec_dot_type: use X in place when
   * its rows are back to back. */
  if (tr->vec_dot_type == RK_TYPE_F32 && (x_stride == n_in || n_tok == 1))
    {
      rk_matmul_prequant (pool, wtype, w, row_stride, n_out, n_in, x, n_tok, y, y_stride);
      return;
    }
  rk_quantize_rows (pool, tr->vec_dot_type, x, x_stride, n_in, n_tok, scratch);
  rk_matmul_prequant (pool, wtype, w, row_stride, n_out, n_in, scratch, n_tok, y, y_stride);
}

void
rk_get_rows (rk_type        wtype,
             const void    *w,
             size_t         row_stride,
             int64_t        n_in,
             const int32_t *rows,
             int64_t        n_rows,
             float         *out)
{
  const rk_type_traits *tr = rk_get_traits (wtype);
  int64_t i;

  for (i = 0; i < n_rows; i++)
    {
      float *dst = out + i * n_in;

      if (tr == NULL || tr->to_float == NULL || rows[i] < 0)
        {
          int64_t k;

          for (k = 0; k < n_in; k++)
            dst[k] = NAN;
          continue;
        }
      tr->to_float ((const uint8_t *) w + (size_t) rows[i] * row_stride, dst, n_in);
    }
}
