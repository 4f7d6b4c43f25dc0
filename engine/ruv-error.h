/* ruv-error.h — the RUV_ERROR domain, one code per RuvLLMError variant.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define RUV_ERROR (ruv_error_quark ())

typedef enum
{
  RUV_ERROR_STORAGE,
  RUV_ERROR_SESSION,
  RUV_ERROR_KV_CACHE,
  RUV_ERROR_PAGED_ATTENTION,
  RUV_ERROR_ADAPTER,
  RUV_ERROR_SONA,
  RUV_ERROR_CONFIG,
  RUV_ERROR_OUT_OF_MEMORY,
  RUV_ERROR_INVALID_OPERATION,
  RUV_ERROR_NOT_FOUND,
  RUV_ERROR_BACKEND,
  RUV_ERROR_MODEL,
  RUV_ERROR_TOKENIZATION,
  RUV_ERROR_GENERATION,
  RUV_ERROR_IO,
} RuvError;

GQuark      ruv_error_quark     (void);
/* "Storage", "Model", ...: the variant's name, for messages and JSON. */
const char *ruv_error_code_name (RuvError code);

G_END_DECLS
