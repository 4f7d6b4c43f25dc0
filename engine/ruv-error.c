/* ruv-error.c — the RUV_ERROR domain.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-error.h"

G_DEFINE_QUARK (ruv-error-quark, ruv_error)

const char *
ruv_error_code_name (RuvError code)
{
  static const char *names[] = {
    [RUV_ERROR_STORAGE] = "Storage",
    [RUV_ERROR_SESSION] = "Session",
    [RUV_ERROR_KV_CACHE] = "KvCache",
    [RUV_ERROR_PAGED_ATTENTION] = "PagedAttention",
    [RUV_ERROR_ADAPTER] = "Adapter",
    [RUV_ERROR_SONA] = "Sona",
    [RUV_ERROR_CONFIG] = "Config",
    [RUV_ERROR_OUT_OF_MEMORY] = "OutOfMemory",
    [RUV_ERROR_INVALID_OPERATION] = "InvalidOperation",
    [RUV_ERROR_NOT_FOUND] = "NotFound",
    [RUV_ERROR_BACKEND] = "Backend",
    [RUV_ERROR_MODEL] = "Model",
    [RUV_ERROR_TOKENIZATION] = "Tokenization",
    [RUV_ERROR_GENERATION] = "Generation",
    [RUV_ERROR_IO] = "Io",
  };

  if ((guint) code < G_N_ELEMENTS (names))
    return names[code];
  return "Unknown";
}
