/* rk-matmul.h — matrix-vector (decode) and matrix-matrix (prefill) products.
 * SPDX-License-Identifier: MIT
 *
 * W is a row-major weight matrix of n_out rows by n_in columns in any
 * supported type, rows `row_stride` bytes apart (as mapped from GGUF).
 * X holds n_tok rows of n_in floats (x_stride floats apart); Y receives n_tok
 * rows of n_out floats (y_stride floats apart):  Y[t][r] = dot (W[r], X[t]).
 * X is first converted to the weight type's vec_dot_type (as llama.cpp does,
 * e.g. Q8_K for Q4_K), into `scratch`, which must hold rk_matmul_scratch_size().
 * Work is split over output rows on the pool; for n_tok > 1 the loop is blocked
 * so each block of weight rows is read once per block of tokens.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "rk-pool.h"
#include "rk-types.h"

size_t rk_matmul_scratch_size (rk_type      wtype,
                               int64_t      n_in,
                               int64_t      n_tok);

void   rk_matmul              (rk_pool     *pool,
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
                               void        *scratch);

/* Same product with X already in the weight type's vec_dot_type (n_tok rows
 * of rk_row_size (vec_dot_type, n_in) bytes, back to back). Lets the engine
 * quantize the activations once for several matrices (Q, K, V; gate, up). */
void   rk_matmul_prequant     (rk_pool     *pool,
                               rk_type      wtype,
                               const void  *w,
                               size_t       row_stride,
                               int64_t      n_out,
                               int64_t      n_in,
                               const void  *xq,
                               int64_t      n_tok,
                               float       *y,
                               int64_t      y_stride);

/* Decode ranges: a one-token product's n rows cut into at most
 * n_threads * RK_MATVEC_RANGES_PER_THREAD (and RK_MATVEC_MAX_RANGES) ranges
 * of decreasing size, each at least min_rows rows, for a pool to claim one
 * at a time in order: the threads share the big ones first and end on small
 * ones, so neither waits long for the other. range_end[k] is the end of
 * range k (the first starts at 0); returns the number of ranges (>= 1). */
#define RK_MATVEC_RANGES_PER_THREAD 4
#define RK_MATVEC_MAX_RANGES 64
int    rk_matvec_ranges       (int64_t      n,
                               int          n_threads,
                               int64_t      min_rows,
                               int64_t     *range_end);

/* Quantize n_tok rows of X to `type` (the vec_dot_type), in parallel. */
void   rk_quantize_rows       (rk_pool     *pool,
                               rk_type      type,
                               const float *x,
                               int64_t      x_stride,
                               int64_t      n_in,
                               int64_t      n_tok,
                               void        *xq);

/* Dequantize rows [row0, row0 + n_rows) of W into out (n_rows x n_in floats),
 * e.g. to look up token embeddings. */
void   rk_get_rows            (rk_type      wtype,
                               const void  *w,
                               size_t       row_stride,
                               int64_t      n_in,
                               const int32_t *rows,
                               int64_t      n_rows,
                               float       *out);
