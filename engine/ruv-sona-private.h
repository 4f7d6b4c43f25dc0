/* ruv-sona-private.h — what the ruv-sona*.c files share: RuvSonaLlm's struct,
 * its samples and the backward pass.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "ruv-model-private.h"
#include "ruv-sona.h"

G_BEGIN_DECLS

/* Scratch slots of the backward pass. */
enum
{
  SC_POS,       /* gint64 (nsel): the positions used */
  SC_X,         /* (nsel, n_embd): residuals with the adapters' deltas */
  SC_DJ,        /* (nsel, n_embd): dJ/dx */
  SC_ROWP,      /* const float * (nsel): one adapter's input rows */
  SC_HALF,      /* (nsel, n_in): f16 inputs converted */
  SC_IDS,       /* gint32 (nsel, k + 1): candidate ids per position */
  SC_SLOT,      /* gint32 (nsel, k + 1): their rows in SC_ROWS */
  SC_UNIQ,      /* gint32: the distinct candidate ids */
  SC_HASH,      /* gint32: open-addressing table id -> SC_UNIQ index */
  SC_ROWS,      /* (n_uniq, n_embd): dequantized LM-head rows */
  SC_Z,         /* logits of one position (k + 1 or n_vocab) */
  SC_H,         /* (n_embd): normed residual */
  SC_GH,        /* (n_embd): dJ/dh */
  SC_MATMUL,    /* rk_matmul scratch (full-vocabulary head) */
  SC_GRAD,      /* (n_params): a combined gradient */
  SC_NS,        /* gint64 (nsel): candidates per position */
  N_SCRATCH
};

typedef struct
{
  RuvSonaTrace *trace;
  char         *key;
  float         reward;
  float         quality;
  gboolean      consolidated;
} Sample;

struct _RuvSonaLlm
{
  GObject           parent_instance;
  RuvSonaLlmConfig  config;
  RuvModel         *model;
  const RuvWeights *w;
  RuvMicroLora     *lora;
  RuvEwc           *ewc;
  GMutex            lock;           /* everything below and weight writes */
  GPtrArray        *samples;        /* Sample, oldest first */
  GPtrArray        *ensemble;       /* float[n_params] snapshots, oldest first */
  RuvSonaUpdatedFunc updated_func;
  gpointer          updated_data;
  GArray           *gen_targets;    /* generation capture: gint32 per token */
  GArray           *gen_cands;      /* gint32, gen_k per token */
  gint64            gen_k;
  gint64            gen_max;        /* 0: not capturing */
  GThreadPool      *reaper;         /* frees traces the instant loop replaced or
                                     * dropped (a few MB each: unmapping them on
                                     * the rating's path cost ~0.2 ms) */
  gint64            last_background_us;
  double            deep_accum;
  RuvLearningLoopStats stats;
  /* worker */
  GThread          *worker;
  GMutex            wlock;
  GCond             wcond;
  gboolean          wstop;
  /* backward-pass scratch (under lock), grown on demand and reused, so a
   * rating allocates nothing once the buffers have reached their size */
  gpointer          scratch[N_SCRATCH];
  gsize             scratch_len[N_SCRATCH];
};

/* ruv-sona-backward.c; callers hold self->lock. */
float  *_ruv_sona_scratch         (RuvSonaLlm         *self,
                                   int                 slot,
                                   gsize               n);
double  _ruv_sona_pass            (RuvSonaLlm         *self,
                                   const RuvSonaTrace *tr,
                                   gint                max_tokens,
                                   gint                n_cand,
                                   gboolean            backward,
                                   float               weight,
                                   gboolean            train);
double  _ruv_sona_backward_locked (RuvSonaLlm         *self,
                                   const RuvSonaTrace *trace,
                                   gint                max_tokens,
                                   gint                n_cand,
                                   float               weight,
                                   gboolean            train,
                                   float               quality);

G_END_DECLS
