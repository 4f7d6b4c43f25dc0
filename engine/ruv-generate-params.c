/* ruv-generate-params.c — generation parameters, defaults and validation.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-generate-params.h"

G_DEFINE_BOXED_TYPE (RuvGenerateParams, ruv_generate_params,
                     ruv_generate_params_copy, ruv_generate_params_free)

/* The reference's defaults, plus min_p off and llama.cpp's penalty window. */
RuvGenerateParams *
ruv_generate_params_new (void)
{
  RuvGenerateParams *self = g_new0 (RuvGenerateParams, 1);

  self->max_tokens = 256;
  self->temperature = 0.7f;
  self->top_p = 0.9f;
  self->top_k = 0;
  self->min_p = 0.0f;
  self->repetition_penalty = 1.1f;
  self->repeat_last_n = 64;
  self->stop_sequences = NULL;
  self->has_seed = FALSE;
  self->seed = 0;
  return self;
}

RuvGenerateParams *
ruv_generate_params_copy (const RuvGenerateParams *self)
{
  RuvGenerateParams *copy;

  g_return_val_if_fail (self != NULL, NULL);

  copy = g_memdup2 (self, sizeof *self);
  copy->stop_sequences = g_strdupv (self->stop_sequences);
  return copy;
}

void
ruv_generate_params_free (RuvGenerateParams *self)
{
  if (self == NULL)
    return;
  g_strfreev (self->stop_sequences);
  g_free (self);
}

void
ruv_generate_params_set_stop_sequences (RuvGenerateParams  *self,
                                        const char * const *stops)
{
  g_return_if_fail (self != NULL);

  g_strfreev (self->stop_sequences);
  self->stop_sequences = g_strdupv ((char **) stops);
}

gboolean
ruv_generate_params_validate (const RuvGenerateParams  *self,
                              GError                  **error)
{
  guint i;

  g_return_val_if_fail (self != NULL, FALSE);

  if (self->max_tokens == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "max_tokens must be at least 1");
      return FALSE;
    }
  if (!isfinite (self->temperature) || self->temperature < 0.0f)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "temperature must be 0 (greedy) or a positive number, not %g",
                   (double) self->temperature);
      return FALSE;
    }
  if (self->temperature > 100.0f)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "temperature %g is absurdly high (at most 100)",
                   (double) self->temperature);
      return FALSE;
    }
  if (!isfinite (self->top_p) || self->top_p <= 0.0f || self->top_p > 1.0f)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "top_p must be greater than 0 and at most 1, not %g",
                   (double) self->top_p);
      return FALSE;
    }
  if (!isfinite (self->min_p) || self->min_p < 0.0f || self->min_p > 1.0f)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "min_p must be between 0 and 1, not %g", (double) self->min_p);
      return FALSE;
    }
  if (!isfinite (self->repetition_penalty) || self->repetition_penalty <= 0.0f
      || self->repetition_penalty > 10.0f)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "repetition_penalty must be greater than 0 and at most 10 "
                   "(1 disables it), not %g", (double) self->repetition_penalty);
      return FALSE;
    }
  for (i = 0; self->stop_sequences != NULL && self->stop_sequences[i] != NULL; i++)
    {
      if (self->stop_sequences[i][0] == '\0')
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                       "stop sequence %u is empty", i + 1);
          return FALSE;
        }
      if (!g_utf8_validate (self->stop_sequences[i], -1, NULL))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                       "stop sequence %u is not valid UTF-8", i + 1);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
ruv_generate_check_prompt_text (const char  *text,
                                gssize       length,
                                GError     **error)
{
  const char *end = NULL;
  gsize n;

  g_return_val_if_fail (text != NULL || length == 0, FALSE);

  /* Measured without reading past the cap, so a huge text costs nothing. */
  n = length >= 0 ? (gsize) length : strnlen (text, RUV_GENERATE_MAX_PROMPT_BYTES + 1);
  if (n > RUV_GENERATE_MAX_PROMPT_BYTES)
    {
      if (length >= 0)
        g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                     "the prompt is %.1f MiB of text; the limit is %.0f MiB, far more than "
                     "any model's context holds: shorten it",
                     (double) n / 1048576.0, (double) RUV_GENERATE_MAX_PROMPT_BYTES / 1048576.0);
      else
        g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                     "the prompt is more than %.0f MiB of text, far more than any model's "
                     "context holds: shorten it",
                     (double) RUV_GENERATE_MAX_PROMPT_BYTES / 1048576.0);
      return FALSE;
    }
  if (n > 0 && !g_utf8_validate (text, (gssize) n, &end))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "the prompt is not valid UTF-8 text (bad byte at offset %" G_GSIZE_FORMAT
                   "); was binary data pasted?", (gsize) (end - text));
      return FALSE;
    }
  return TRUE;
}
