/* ruv-gguf-writer.h — builds GGUF v3 files (metadata and tensors) in memory.
 * SPDX-License-Identifier: MIT
 *
 * Keys keep their insertion order; setting a key again replaces its value in
 * place. Tensor data is copied and laid out in insertion order, each tensor at
 * a multiple of the alignment (32, or general.alignment when set as a u32),
 * exactly as ggml writes and reads it, so llama.cpp can load the result.
 * Values are given in host order and written little-endian.
 */
#pragma once

#include <glib.h>

#include "ruv-gguf.h"

G_BEGIN_DECLS

typedef struct _RuvGgufWriter RuvGgufWriter;

RuvGgufWriter *ruv_gguf_writer_new              (void);
void           ruv_gguf_writer_free             (RuvGgufWriter       *self);

void           ruv_gguf_writer_set_uint8        (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 guint8               value);
void           ruv_gguf_writer_set_int8         (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 gint8                value);
void           ruv_gguf_writer_set_uint16       (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 guint16              value);
void           ruv_gguf_writer_set_int16        (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 gint16               value);
void           ruv_gguf_writer_set_uint32       (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 guint32              value);
void           ruv_gguf_writer_set_int32        (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 gint32               value);
void           ruv_gguf_writer_set_uint64       (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 guint64              value);
void           ruv_gguf_writer_set_int64        (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 gint64               value);
void           ruv_gguf_writer_set_float32      (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 float                value);
void           ruv_gguf_writer_set_float64      (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 double               value);
void           ruv_gguf_writer_set_bool         (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 gboolean             value);
void           ruv_gguf_writer_set_string       (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 const char          *value);

/* An array of n strings (each NUL-terminated). */
void           ruv_gguf_writer_set_array_string (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 const char *const   *strs,
                                                 gsize                n);
void           ruv_gguf_writer_set_array_float32 (RuvGgufWriter      *self,
                                                  const char         *key,
                                                  const float        *values,
                                                  gsize               n);
void           ruv_gguf_writer_set_array_int32  (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 const gint32        *values,
                                                 gsize                n);
/* Any scalar element type: `values` holds n host-order C values of that type
 * (guint8 .. double; a BOOL element is one byte, 0 or 1). */
void           ruv_gguf_writer_set_array        (RuvGgufWriter       *self,
                                                 const char          *key,
                                                 RuvGgufType          elem_type,
                                                 const void          *values,
                                                 gsize                n);

/* Copies a tensor. Checks the name (1..63 bytes, unique), n_dims (1..4),
 * each ne (>= 0), the type (known), that ne[0] is a multiple of the block
 * size, and that size equals rk_row_size (type, ne[0]) * rows. Errors are
 * RUV_ERROR_INVALID_OPERATION. */
gboolean       ruv_gguf_writer_add_tensor       (RuvGgufWriter       *self,
                                                 const char          *name,
                                                 rk_type              type,
                                                 guint                n_dims,
                                                 const gint64        *ne,
                                                 const void          *data,
                                                 gsize                size,
                                                 GError             **error);

/* The whole file. Fails (RUV_ERROR_INVALID_OPERATION) if general.alignment
 * is set but is not a u32 power of two between 8 and 1 MiB. */
GBytes        *ruv_gguf_writer_to_bytes         (RuvGgufWriter       *self,
                                                 GError             **error);
/* Writes path.tmp, fsyncs it and renames it over path, so path is either
 * the old file or the complete new one. I/O errors are RUV_ERROR_IO. */
gboolean       ruv_gguf_writer_write_file       (RuvGgufWriter       *self,
                                                 const char          *path,
                                                 GError             **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvGgufWriter, ruv_gguf_writer_free)

G_END_DECLS
