/* ruv-ram-fit.h — will this model fit in memory? Weights + KV cache + scratch
 * from GGUF metadata, against MemAvailable.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

#include "ruv-gguf.h"

G_BEGIN_DECLS

typedef enum
{
  RUV_RAM_FIT_FITS,       /* total <= 80 % of available */
  RUV_RAM_FIT_TIGHT,      /* total <= available */
  RUV_RAM_FIT_WONT_FIT,
} RuvRamFitVerdict;

typedef struct
{
  guint64          weights_bytes;   /* the file size(s): mapped and paged in */
  guint64          kv_bytes;        /* K and V in f16 for n_ctx positions */
  guint64          scratch_bytes;   /* activations and logits for one ubatch */
  guint64          total_bytes;
  guint64          available_bytes; /* MemAvailable */
  guint32          n_ctx;           /* the context length used */
  RuvRamFitVerdict verdict;
} RuvRamFit;

/* Estimates for `meta` (a full parse or a header prefix) with weights of
 * weights_bytes, at n_ctx positions (0: the model's context length, capped
 * at 8192). available_bytes 0: read /proc/meminfo. FALSE with
 * RUV_ERROR_MODEL when the metadata lacks what the estimate needs. */
gboolean     ruv_ram_fit_estimate      (const RuvGguf *meta,
                                        guint64        weights_bytes,
                                        guint32        n_ctx,
                                        guint64        available_bytes,
                                        RuvRamFit     *out,
                                        GError       **error);

/* MemAvailable from a /proc/meminfo text, in bytes; 0 if absent. */
guint64      ruv_ram_fit_parse_meminfo (const char    *text);
/* MemAvailable of this machine; 0 if unknown. */
guint64      ruv_ram_fit_available     (void);

const char  *ruv_ram_fit_verdict_name  (RuvRamFitVerdict verdict);
/* "Fits: needs 1.2 GB of 7.8 GB available (weights 0.9 GB, KV cache …)". */
char        *ruv_ram_fit_describe      (const RuvRamFit *fit);

G_END_DECLS
