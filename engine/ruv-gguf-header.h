/* ruv-gguf-header.h — GGUF metadata from a prefix of a file (a ranged download).
 * SPDX-License-Identifier: MIT
 *
 * ruv_gguf_parse checks tensor data against the file size, so it rejects a
 * prefix. A header is what a remote Range read or a RAM-fit estimate needs:
 * the version, the metadata KVs and the tensor count. This copies the prefix,
 * sets its n_tensors field to zero and hands it to the same distrustful
 * parser, so no parsing code is duplicated.
 */
#pragma once

#include <glib.h>

#include "ruv-gguf.h"

G_BEGIN_DECLS

typedef struct _RuvGgufHeader RuvGgufHeader;

/* Parses the metadata in prefix[0..size). `total_size` is the size of the
 * whole file when known (0 if not). On failure, *need_more (may be NULL) is
 * TRUE when the prefix is shorter than the file, so a longer prefix may
 * parse; FALSE when the bytes themselves are wrong (not GGUF, bad version,
 * or the whole file was given). Errors are RUV_ERROR_MODEL. */
RuvGgufHeader *ruv_gguf_header_parse        (const guint8         *prefix,
                                             gsize                 size,
                                             guint64               total_size,
                                             const char           *filename,
                                             gboolean             *need_more,
                                             GError              **error);
void           ruv_gguf_header_free         (RuvGgufHeader        *self);

/* The metadata (tensor getters report no tensors). Owned by self. */
const RuvGguf *ruv_gguf_header_get_gguf     (const RuvGgufHeader  *self);
/* n_tensors as written in the file header. */
guint64        ruv_gguf_header_get_n_tensors (const RuvGgufHeader *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvGgufHeader, ruv_gguf_header_free)

G_END_DECLS
