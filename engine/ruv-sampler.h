/* ruv-sampler.h — turns logits into the next token, per RuvGenerateParams.
 * SPDX-License-Identifier: MIT
 *
 * The chain is llama.cpp's: repetition penalty, then (temperature 0) argmax,
 * else top-k, top-p, min-p on the untempered distribution, temperature, and a
 * seeded draw. One RNG per generation, seeded once: the same seed, parameters
 * and logits give the same tokens.
 */
#pragma once

#include <glib.h>

#include "ruv-generate-params.h"

G_BEGIN_DECLS

typedef struct _RuvSampler RuvSampler;

RuvSampler *ruv_sampler_new      (const RuvGenerateParams *params,
                                  int                      n_vocab);
void        ruv_sampler_free     (RuvSampler              *self);
/* The seed in use (the params' seed, or the one drawn when it had none). */
guint64     ruv_sampler_get_seed (const RuvSampler        *self);
/* Records a token of the prompt or of the output for the repetition penalty. */
void        ruv_sampler_accept   (RuvSampler              *self,
                                  gint32                   token);
/* Picks the next token. `logits` (n_vocab values) is modified in place. */
gint32      ruv_sampler_sample   (RuvSampler              *self,
                                  float                   *logits);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvSampler, ruv_sampler_free)

G_END_DECLS
