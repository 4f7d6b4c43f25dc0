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
  SC_BT,        /* (rank, n_out): one adapter's B transposed */
  SC_AX,        /* per residual adapter (nsel, rank): A u at the positions */
  N_SCRATCH
};

/* A backward pass's scratch buffers, grown on demand and reused, so a pass
 * allocates nothing once they have reached the trace's size. The instant
 * loop's set is used under RuvSonaLlm.lock, the background loop's under
 * RuvSonaLlm.clock (consolidation runs without holding the lock). */
typedef struct
{
  gpointer scratch[N_SCRATCH];
  gsize    scratch_len[N_SCRATCH];
  /* SC_IDS .. SC_ROWS hold the candidate rows of this trace version and
   * selection (0: nothing): a second pass over the same rating (the instant
   * loop's loss_after) does not gather and dequantize them again */
  guint64  rows_serial;
  gint64   rows_nsel;
  gint64   rows_k;
  gint64   rows_n_uniq;
} RuvSonaWork;

typedef struct
{
  RuvSonaTrace *trace;          /* shared with a running consolidation (ref) */
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
  GMutex            clock;          /* one consolidation at a time; bg_work */
  RuvSonaWork       bg_work;
  GMutex            lock;           /* everything below and weight writes; held
                                     * briefly (never for a whole consolidation) */
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
  guint64           lora_epoch;     /* bumped by reset / set_lora: a running
                                     * consolidation's step is then dropped */
  gint64            last_background_us;
  gint64            ewc_task_n;     /* ratings consolidated since the EWC++ boundary */
  gsize             bg_in_flight;   /* samples a running consolidation took: still
                                     * pending in the stats until its step */
  double            deep_accum;
  RuvLearningLoopStats stats;
  /* worker */
  GThread          *worker;
  GMutex            wlock;
  GCond             wcond;
  gboolean          wstop;
  /* backward-pass scratch of the instant loop and other callers of the
   * lock: a rating allocates nothing once the buffers have grown */
  RuvSonaWork       work;
};

/* ruv-sona-backward.c. The pass reads self->w (immutable) and the given
 * lora's weights, accumulates into that lora's gradients and uses `work`:
 * callers hold the lock that guards both (self->lock for self->work and
 * self->lora; a consolidation uses its own shadow adapter and bg_work). */
float  *_ruv_sona_scratch         (RuvSonaWork        *work,
                                   int                 slot,
                                   gsize               n);
void    _ruv_sona_work_clear      (RuvSonaWork        *work);
double  _ruv_sona_pass            (RuvSonaLlm         *self,
                                   RuvSonaWork        *work,
                                   RuvMicroLora       *lora,
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
/* Traces are shared between a Sample and a consolidation running without
 * the lock: ruv_sona_trace_free() drops one reference. */
RuvSonaTrace *_ruv_sona_trace_ref (RuvSonaTrace       *trace);

G_END_DECLS
