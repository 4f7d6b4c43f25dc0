/* ruv-gguf.h — a distrustful GGUF (v2, v3) reader over a (data, size) pair.
 * SPDX-License-Identifier: MIT
 *
 * The parser never trusts the file: every count, length, offset, size,
 * alignment and type id is checked with overflow-safe arithmetic before use,
 * and nothing is allocated with a size read from the file before that size is
 * known to fit in the bytes that remain. Errors are RUV_ERROR_MODEL naming
 * the file and the field. Strings and tensor data point into `data`, which
 * must outlive the RuvGguf (the engine keeps the mapping alive).
 */
#pragma once

#include <glib.h>

#include "rk-types.h"

G_BEGIN_DECLS

typedef enum
{
  RUV_GGUF_TYPE_UINT8   = 0,
  RUV_GGUF_TYPE_INT8    = 1,
  RUV_GGUF_TYPE_UINT16  = 2,
  RUV_GGUF_TYPE_INT16   = 3,
  RUV_GGUF_TYPE_UINT32  = 4,
  RUV_GGUF_TYPE_INT32   = 5,
  RUV_GGUF_TYPE_FLOAT32 = 6,
  RUV_GGUF_TYPE_BOOL    = 7,
  RUV_GGUF_TYPE_STRING  = 8,
  RUV_GGUF_TYPE_ARRAY   = 9,
  RUV_GGUF_TYPE_UINT64  = 10,
  RUV_GGUF_TYPE_INT64   = 11,
  RUV_GGUF_TYPE_FLOAT64 = 12,
  RUV_GGUF_TYPE_COUNT
} RuvGgufType;

#define RUV_GGUF_MAX_DIMS 4
#define RUV_GGUF_DEFAULT_ALIGNMENT 32

typedef struct _RuvGguf RuvGguf;

typedef struct
{
  const char  *name;                     /* NUL-terminated copy */
  guint32      n_dims;
  gint64       ne[RUV_GGUF_MAX_DIMS];    /* ne[0] is the row length; unused dims are 1 */
  rk_type      type;
  guint64      offset;                   /* from the start of the data section */
  gsize        size;                     /* bytes, checked to lie inside the file */
  const guint8 *data;                    /* points into the caller's buffer */
} RuvGgufTensor;

/* Parses the header, metadata and tensor infos of a GGUF file held in
 * data[0..size). `filename` is only used in error messages (may be NULL). */
RuvGguf             *ruv_gguf_parse           (const guint8  *data,
                                               gsize          size,
                                               const char    *filename,
                                               GError       **error);
void                 ruv_gguf_free            (RuvGguf       *self);

guint32              ruv_gguf_get_version     (const RuvGguf *self);
gsize                ruv_gguf_get_alignment   (const RuvGguf *self);
gsize                ruv_gguf_get_data_offset (const RuvGguf *self);
const char          *ruv_gguf_get_filename    (const RuvGguf *self);

/* Metadata. Keys are looked up in a hash table. */
gsize                ruv_gguf_get_n_kv        (const RuvGguf *self);
const char          *ruv_gguf_get_key         (const RuvGguf *self,
                                               gsize          index);
gboolean             ruv_gguf_has_key         (const RuvGguf *self,
                                               const char    *key);
/* The value's type, or RUV_GGUF_TYPE_COUNT if the key is absent. */
RuvGgufType          ruv_gguf_get_kv_type     (const RuvGguf *self,
                                               const char    *key);

/* Typed getters. They return FALSE (and leave *out untouched) when the key is
 * absent; they return FALSE and set `error` (RUV_ERROR_MODEL, naming the file
 * and key) when it is present with an incompatible type or a value that does
 * not fit. Integer getters accept any integer type whose value fits. */
gboolean             ruv_gguf_get_uint        (const RuvGguf *self,
                                               const char    *key,
                                               guint64       *out,
                                               GError       **error);
gboolean             ruv_gguf_get_int         (const RuvGguf *self,
                                               const char    *key,
                                               gint64        *out,
                                               GError       **error);
/* Accepts FLOAT32, FLOAT64 and integers. */
gboolean             ruv_gguf_get_float       (const RuvGguf *self,
                                               const char    *key,
                                               double        *out,
                                               GError       **error);
gboolean             ruv_gguf_get_bool        (const RuvGguf *self,
                                               const char    *key,
                                               gboolean      *out,
                                               GError       **error);
/* Returns a NUL-terminated copy owned by self (valid UTF-8 is not checked). */
gboolean             ruv_gguf_get_string      (const RuvGguf *self,
                                               const char    *key,
                                               const char   **out,
                                               GError       **error);

/* Arrays: element type and length; FALSE if absent or not an array. */
gboolean             ruv_gguf_get_array_info  (const RuvGguf *self,
                                               const char    *key,
                                               RuvGgufType   *elem_type,
                                               guint64       *len);
/* Element i of a string array: pointer into the file and its length (not
 * NUL-terminated). NULL if out of range or not a string array. */
const char          *ruv_gguf_get_array_string (const RuvGguf *self,
                                                const char    *key,
                                                guint64        i,
                                                gsize         *len);
/* Copies elements of a numeric array, converting to the requested C type.
 * FALSE with an error if the array's element type does not convert (e.g. a
 * string array read as floats). `out` must hold len values. */
gboolean             ruv_gguf_get_array_f32   (const RuvGguf *self,
                                               const char    *key,
                                               float         *out,
                                               guint64        len,
                                               GError       **error);
gboolean             ruv_gguf_get_array_i32   (const RuvGguf *self,
                                               const char    *key,
                                               gint32        *out,
                                               guint64        len,
                                               GError       **error);

/* Tensors. */
gsize                ruv_gguf_get_n_tensors   (const RuvGguf *self);
const RuvGgufTensor *ruv_gguf_get_tensor      (const RuvGguf *self,
                                               gsize          index);
const RuvGgufTensor *ruv_gguf_find_tensor     (const RuvGguf *self,
                                               const char    *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvGguf, ruv_gguf_free)

G_END_DECLS
