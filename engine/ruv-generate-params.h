/* ruv-generate-params.h — generation parameters (the reference's GenerateParams).
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define RUV_TYPE_GENERATE_PARAMS (ruv_generate_params_get_type ())

/**
 * RuvGenerateParams:
 * @max_tokens: tokens to generate at most (default 256)
 * @temperature: 0 is greedy (default 0.7)
 * @top_p: nucleus mass in (0, 1] (default 0.9; 1 disables)
 * @top_k: keep the k most likely tokens, 0 disables (default 0)
 * @min_p: drop tokens below min_p × p(best), 0 disables (default 0)
 * @repetition_penalty: CTRL-style penalty over the last @repeat_last_n tokens
 *   of prompt and output, 1 disables (default 1.1)
 * @repeat_last_n: window of the repetition penalty (default 64)
 * @stop_sequences: NULL-terminated strings that end generation (never emitted)
 * @has_seed: whether @seed is set; otherwise a random seed is drawn
 * @seed: the RNG seed: same seed, params and model give the same text
 *
 * A boxed, copyable value; fields are public as in a C struct.
 */
typedef struct
{
  guint     max_tokens;
  float     temperature;
  float     top_p;
  guint     top_k;
  float     min_p;
  float     repetition_penalty;
  guint     repeat_last_n;
  char    **stop_sequences;
  gboolean  has_seed;
  guint64   seed;
} RuvGenerateParams;

GType              ruv_generate_params_get_type (void) G_GNUC_CONST;
RuvGenerateParams *ruv_generate_params_new      (void) G_GNUC_WARN_UNUSED_RESULT;
RuvGenerateParams *ruv_generate_params_copy     (const RuvGenerateParams *self);
void               ruv_generate_params_free     (RuvGenerateParams       *self);
/* Sets the stop sequences (a copy of `stops`, NULL-terminated; NULL clears). */
void               ruv_generate_params_set_stop_sequences (RuvGenerateParams  *self,
                                                           const char * const *stops);
/* RUV_ERROR_CONFIG with a sentence a person understands for any parameter
 * out of range. */
gboolean           ruv_generate_params_validate (const RuvGenerateParams *self,
                                                 GError                 **error);

/* The largest prompt text accepted (bytes): 8 MiB, 16x what a 128K-token
 * context holds at ~4 bytes per token. Anything longer cannot fit any model's
 * context, and tokenizing it would only burn time and memory first
 * (RELIABILITY.md E11). */
#define RUV_GENERATE_MAX_PROMPT_BYTES ((gsize) 8 * 1024 * 1024)

/* Checks prompt text before it is tokenized: at most
 * RUV_GENERATE_MAX_PROMPT_BYTES and valid UTF-8 (length -1: NUL-terminated;
 * otherwise an embedded NUL is refused too). RUV_ERROR_CONFIG with a sentence
 * a person understands. An empty prompt is allowed (generation from BOS). */
gboolean           ruv_generate_check_prompt_text (const char  *text,
                                                   gssize       length,
                                                   GError     **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvGenerateParams, ruv_generate_params_free)

G_END_DECLS
