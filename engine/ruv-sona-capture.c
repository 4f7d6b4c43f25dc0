/* ruv-sona-capture.c — SONA's trace capture (after the fact and during
 * generation) and response scoring (see ruv-sona.h).
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "rk.h"
#include "rk-fp16.h"
#include "ruv-error.h"
#include "ruv-model-private.h"
#include "ruv-sona-private.h"

/* ---- capture and scoring --------------------------------------------------------------- */

/* Decodes tokens, the last n_rows with logits (n_rows x n_vocab). */
static float *
decode_tail (RuvContext   *ctx,
             const gint32 *tokens,
             gint64        n_prompt,
             gint64        n_tokens,
             GError      **error)
{
  RuvModel *model = ruv_context_get_model (ctx);
  gint64 nv = ruv_model_get_vocab_size (model), rows = n_tokens - n_prompt;
  float *logits;

  if (n_prompt < 1 || n_tokens <= n_prompt || n_tokens > ruv_context_get_n_ctx (ctx))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "need a prompt and a response within the context (%" G_GINT64_FORMAT
                   " + %" G_GINT64_FORMAT " tokens)", n_prompt, n_tokens - n_prompt);
      return NULL;
    }
  logits = g_try_new (float, rows * nv);
  if (logits == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY, "no memory for %" G_GINT64_FORMAT
                   " rows of logits", rows);
      return NULL;
    }
  ruv_context_kv_clear (ctx);
  if ((n_prompt > 1 &&
       !ruv_context_decode (ctx, tokens, n_prompt - 1, 0, NULL, FALSE, error)) ||
      !ruv_context_decode (ctx, tokens + n_prompt - 1, rows, n_prompt - 1, logits, TRUE, error))
    {
      g_free (logits);
      return NULL;
    }
  return logits;
}

static double
row_logprob (const float *z,
             gint64       nv,
             gint32       y)
{
  double mx = -INFINITY, sum = 0.0;
  gint64 i;

  for (i = 0; i < nv; i++)
    mx = MAX (mx, z[i]);
  for (i = 0; i < nv; i++)
    sum += exp (z[i] - mx);
  return z[y] - mx - log (sum);
}

gboolean
ruv_sona_score_response (RuvContext   *ctx,
                         const gint32 *tokens,
                         gint64        n_prompt,
                         gint64        n_tokens,
                         double       *logp,
                         GError      **error)
{
  gint64 nv = ruv_model_get_vocab_size (ruv_context_get_model (ctx)), t;
  g_autofree float *logits = decode_tail (ctx, tokens, n_prompt, n_tokens, error);
  double s = 0.0;

  if (logits == NULL)
    return FALSE;
  for (t = 0; t < n_tokens - n_prompt; t++)
    s += row_logprob (logits + t * nv, nv, tokens[n_prompt + t]);
  *logp = s;
  return TRUE;
}

RuvSonaTrace *
ruv_sona_llm_capture (RuvSonaLlm   *self,
                      RuvContext   *ctx,
                      const gint32 *tokens,
                      gint64        n_prompt,
                      gint64        n_tokens,
                      double       *logp,
                      GError      **error)
{
  RuvMicroLora *lora = self->lora;
  gint64 nv = self->w->hp.n_vocab, n = self->w->hp.n_embd, rows, t;
  gint64 k = MAX (self->config.sona.instant_candidates, self->config.sona.background_candidates);
  g_autofree float *logits = NULL;
  g_autofree gint32 *cand = NULL;
  g_autofree const float **in = NULL;
  RuvSonaTrace *tr;
  double s = 0.0;
  gsize a, na = ruv_micro_lora_get_n_adapters (lora);

  g_return_val_if_fail (RUV_IS_SONA_LLM (self), NULL);
  if (ruv_context_get_model (ctx) != self->model)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA, "the context runs another model");
      return NULL;
    }
  k = MIN (k, nv);
  rows = n_tokens - n_prompt;
  ruv_context_set_lora (ctx, lora);
  if (rows >= 1)
    ruv_micro_lora_capture_begin (lora, n_prompt - 1, rows, n);
  logits = decode_tail (ctx, tokens, n_prompt, n_tokens, error);
  if (logits == NULL)
    {
      ruv_micro_lora_capture_end (lora);
      return NULL;
    }
  tr = ruv_sona_trace_new (lora, rows, n, k);
  cand = g_new (gint32, k);
  in = g_new0 (const float *, MAX (na, 1));
  for (t = 0; t < rows; t++)
    {
      const float *z = logits + t * nv;
      gint32 y = tokens[n_prompt + t];

      s += row_logprob (z, nv, y);
      rk_top_k (z, (int) nv, (int) k, cand, NULL);
      for (a = 0; a < na; a++)
        in[a] = ruv_micro_lora_capture_input (lora, a, t);
      if (ruv_micro_lora_capture_final (lora, t) == NULL ||
          !ruv_sona_trace_set_position (tr, lora, t, y, ruv_micro_lora_capture_final (lora, t),
                                        (const float *const *) in, cand, error))
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, RUV_ERROR, RUV_ERROR_SONA, "activations were not captured");
          ruv_micro_lora_capture_end (lora);
          ruv_sona_trace_free (tr);
          return NULL;
        }
    }
  ruv_micro_lora_capture_end (lora);
  if (logp != NULL)
    *logp = s;
  return tr;
}

/* ---- capture during generation --------------------------------------------------------- */

void
ruv_sona_llm_generation_begin (RuvSonaLlm *self,
                               RuvContext *ctx,
                               gint64      pos0,
                               gint64      max_tokens)
{
  gint64 k = MAX (self->config.sona.instant_candidates, self->config.sona.background_candidates);

  g_return_if_fail (RUV_IS_SONA_LLM (self));
  g_return_if_fail (pos0 >= 0);
  ruv_sona_llm_generation_abort (self);
  if (max_tokens < 1 || ruv_context_get_model (ctx) != self->model)
    return;
  ruv_context_set_lora (ctx, self->lora);
  self->gen_k = MIN (k, self->w->hp.n_vocab);
  self->gen_max = MIN (max_tokens, 65536);
  ruv_micro_lora_capture_begin (self->lora, pos0, self->gen_max, self->w->hp.n_embd);
}

void
ruv_sona_llm_generation_token (RuvSonaLlm  *self,
                               const float *logits,
                               gint32       token)
{
  guint n;

  g_return_if_fail (RUV_IS_SONA_LLM (self));
  if (self->gen_max == 0 || (gint64) self->gen_targets->len >= self->gen_max)
    return;
  n = self->gen_cands->len;
  g_array_set_size (self->gen_cands, n + (guint) self->gen_k);
  rk_top_k (logits, (int) self->w->hp.n_vocab, (int) self->gen_k,
            &g_array_index (self->gen_cands, gint32, n), NULL);
  g_array_append_val (self->gen_targets, token);
}

void
ruv_sona_llm_generation_abort (RuvSonaLlm *self)
{
  g_return_if_fail (RUV_IS_SONA_LLM (self));
  if (self->gen_max > 0)
    ruv_micro_lora_capture_end (self->lora);
  self->gen_max = 0;
  g_array_set_size (self->gen_targets, 0);
  g_array_set_size (self->gen_cands, 0);
}

RuvSonaTrace *
ruv_sona_llm_generation_end (RuvSonaLlm  *self,
                             GError     **error)
{
  RuvMicroLora *lora = self->lora;
  gsize na = ruv_micro_lora_get_n_adapters (lora), a;
  gint64 n = self->gen_targets->len, t;
  g_autofree const float **in = NULL;
  RuvSonaTrace *tr;

  g_return_val_if_fail (RUV_IS_SONA_LLM (self), NULL);
  if (self->gen_max == 0 || n == 0)
    {
      ruv_sona_llm_generation_abort (self);
      g_set_error (error, RUV_ERROR, RUV_ERROR_SONA, "no response tokens were captured");
      return NULL;
    }
  tr = ruv_sona_trace_new (lora, n, self->w->hp.n_embd, self->gen_k);
  in = g_new0 (const float *, MAX (na, 1));
  for (t = 0; t < n; t++)
    {
      const float *xf = ruv_micro_lora_capture_final (lora, t);

      for (a = 0; a < na; a++)
        in[a] = ruv_micro_lora_capture_input (lora, a, t);
      if (xf == NULL ||
          !ruv_sona_trace_set_position (tr, lora, t, g_array_index (self->gen_targets, gint32, t),
                                        xf, (const float *const *) in,
                                        &g_array_index (self->gen_cands, gint32, t * self->gen_k),
                                        error))
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, RUV_ERROR, RUV_ERROR_SONA,
                         "activations of response token %" G_GINT64_FORMAT " were not captured",
                         t);
          ruv_sona_trace_free (tr);
          ruv_sona_llm_generation_abort (self);
          return NULL;
        }
    }
  ruv_sona_llm_generation_abort (self);
  return tr;
}
