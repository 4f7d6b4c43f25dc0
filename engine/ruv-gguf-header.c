/* ruv-gguf-header.c — GGUF metadata from a prefix of a file (a ranged download).
 * SPDX-License-Identifier: MIT
 */
#include "ruv-gguf-header.h"

#include <string.h>

#include "ruv-error.h"

/* magic (4) | u32 version | u64 n_tensors | u64 n_kv */
#define N_TENSORS_OFFSET 8
#define HEADER_SIZE 24

struct _RuvGgufHeader
{
  guint8  *copy;      /* the prefix, with n_tensors zeroed; gguf points into it */
  RuvGguf *gguf;
  guint64  n_tensors;
};

RuvGgufHeader *
ruv_gguf_header_parse (const guint8  *prefix,
                       gsize          size,
                       guint64        total_size,
                       const char    *filename,
                       gboolean      *need_more,
                       GError       **error)
{
  g_autoptr(RuvGgufHeader) self = NULL;
  GError *local_error = NULL;
  gboolean whole;
  guint64 n_tensors = 0;
  int k;

  g_return_val_if_fail (prefix != NULL || size == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  whole = total_size != 0 && size >= total_size;
  if (need_more != NULL)
    *need_more = FALSE;

  /* The magic and version are checked on the real bytes first, so a file
   * that is not GGUF is never reported as "need more". */
  if (size >= 8 && (memcmp (prefix, "GGUF", 4) != 0))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: magic: this is not a GGUF file", filename != NULL ? filename : "GGUF");
      return NULL;
    }
  if (size < HEADER_SIZE)
    {
      if (need_more != NULL)
        *need_more = !whole;
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: header: only %" G_GSIZE_FORMAT " bytes, too short to be a GGUF model",
                   filename != NULL ? filename : "GGUF", size);
      return NULL;
    }
  for (k = 7; k >= 0; k--)
    n_tensors = (n_tensors << 8) | prefix[N_TENSORS_OFFSET + k];

  self = g_new0 (RuvGgufHeader, 1);
  self->copy = g_memdup2 (prefix, size);
  memset (self->copy + N_TENSORS_OFFSET, 0, 8);
  self->n_tensors = n_tensors;
  self->gguf = ruv_gguf_parse (self->copy, size, filename, &local_error);
  if (self->gguf == NULL)
    {
      /* Version errors are about the bytes, not the length. */
      if (need_more != NULL)
        *need_more = !whole && strstr (local_error->message, "version") == NULL;
      g_propagate_error (error, local_error);
      return NULL;
    }
  return g_steal_pointer (&self);
}

void
ruv_gguf_header_free (RuvGgufHeader *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->gguf, ruv_gguf_free);
  g_free (self->copy);
  g_free (self);
}

const RuvGguf *
ruv_gguf_header_get_gguf (const RuvGgufHeader *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->gguf;
}

guint64
ruv_gguf_header_get_n_tensors (const RuvGgufHeader *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->n_tensors;
}
