/* ruv-gguf-writer.c — builds GGUF v3 files (metadata and tensors) in memory.
 * SPDX-License-Identifier: MIT
 *
 * The file is the metadata block (header, key/values, tensor infos, padded to
 * the alignment) followed by each tensor's bytes, each padded to the alignment;
 * tensor i's offset is the padded end of tensor i-1, as ggml requires.
 */
#include "ruv-gguf-writer.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "ruv-error.h"

#define MAX_TENSOR_NAME 63
#define MAX_ALIGNMENT (1u << 20)

typedef struct
{
  char   *key;
  GBytes *value;           /* u32 type id + encoded value */
} WriterKv;

typedef struct
{
  char    *name;
  rk_type  type;
  guint    n_dims;
  gint64   ne[RUV_GGUF_MAX_DIMS];
  GBytes  *data;
} WriterTensor;

struct _RuvGgufWriter
{
  GPtrArray  *kvs;         /* WriterKv*, insertion order */
  GHashTable *kv_index;    /* key -> WriterKv* (borrowed) */
  GPtrArray  *tensors;     /* WriterTensor* */
  GHashTable *tensor_names;
};

static void
writer_kv_free (gpointer p)
{
  WriterKv *kv = p;

  g_free (kv->key);
  g_bytes_unref (kv->value);
  g_free (kv);
}

static void
writer_tensor_free (gpointer p)
{
  WriterTensor *t = p;

  g_free (t->name);
  g_bytes_unref (t->data);
  g_free (t);
}

RuvGgufWriter *
ruv_gguf_writer_new (void)
{
  RuvGgufWriter *self = g_new0 (RuvGgufWriter, 1);

  self->kvs = g_ptr_array_new_with_free_func (writer_kv_free);
  self->kv_index = g_hash_table_new (g_str_hash, g_str_equal);
  self->tensors = g_ptr_array_new_with_free_func (writer_tensor_free);
  self->tensor_names = g_hash_table_new (g_str_hash, g_str_equal);
  return self;
}

void
ruv_gguf_writer_free (RuvGgufWriter *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->kv_index);
  g_hash_table_unref (self->tensor_names);
  g_ptr_array_unref (self->kvs);
  g_ptr_array_unref (self->tensors);
  g_free (self);
}

/* --- little-endian encoding --- */

static void
put_u8 (GByteArray *b,
        guint8      v)
{
  g_byte_array_append (b, &v, 1);
}

static void
put_u16 (GByteArray *b,
         guint16     v)
{
  v = GUINT16_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &v, 2);
}

static void
put_u32 (GByteArray *b,
         guint32     v)
{
  v = GUINT32_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &v, 4);
}

static void
put_u64 (GByteArray *b,
         guint64     v)
{
  v = GUINT64_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &v, 8);
}

static void
put_f32 (GByteArray *b,
         float       f)
{
  guint32 bits;

  memcpy (&bits, &f, 4);
  put_u32 (b, bits);
}

static void
put_f64 (GByteArray *b,
         double      d)
{
  guint64 bits;

  memcpy (&bits, &d, 8);
  put_u64 (b, bits);
}

static void
put_str (GByteArray *b,
         const char *s)
{
  gsize len = strlen (s);

  put_u64 (b, len);
  g_byte_array_append (b, (const guint8 *) s, len);
}

static void
put_zeros (GByteArray *b,
           gsize       n)
{
  static const guint8 zeros[64] = { 0 };

  while (n > 0)
    {
      gsize k = MIN (n, sizeof zeros);

      g_byte_array_append (b, zeros, k);
      n -= k;
    }
}

/* Stores (or replaces, keeping its place) the encoded value of key. */
static void
set_value (RuvGgufWriter *self,
           const char    *key,
           GByteArray    *value)
{
  WriterKv *kv = g_hash_table_lookup (self->kv_index, key);

  if (kv != NULL)
    {
      g_bytes_unref (kv->value);
      kv->value = g_byte_array_free_to_bytes (value);
      return;
    }
  kv = g_new0 (WriterKv, 1);
  kv->key = g_strdup (key);
  kv->value = g_byte_array_free_to_bytes (value);
  g_ptr_array_add (self->kvs, kv);
  g_hash_table_insert (self->kv_index, kv->key, kv);
}

static GByteArray *
begin_value (RuvGgufType type)
{
  GByteArray *b = g_byte_array_new ();

  put_u32 (b, type);
  return b;
}

#define SETTER_PRECONDITIONS() \
  g_return_if_fail (self != NULL); \
  g_return_if_fail (key != NULL && key[0] != '\0')

void
ruv_gguf_writer_set_uint8 (RuvGgufWriter *self,
                           const char    *key,
                           guint8         value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_UINT8);
  put_u8 (b, value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_int8 (RuvGgufWriter *self,
                          const char    *key,
                          gint8          value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_INT8);
  put_u8 (b, (guint8) value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_uint16 (RuvGgufWriter *self,
                            const char    *key,
                            guint16        value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_UINT16);
  put_u16 (b, value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_int16 (RuvGgufWriter *self,
                           const char    *key,
                           gint16         value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_INT16);
  put_u16 (b, (guint16) value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_uint32 (RuvGgufWriter *self,
                            const char    *key,
                            guint32        value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_UINT32);
  put_u32 (b, value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_int32 (RuvGgufWriter *self,
                           const char    *key,
                           gint32         value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_INT32);
  put_u32 (b, (guint32) value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_uint64 (RuvGgufWriter *self,
                            const char    *key,
                            guint64        value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_UINT64);
  put_u64 (b, value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_int64 (RuvGgufWriter *self,
                           const char    *key,
                           gint64         value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_INT64);
  put_u64 (b, (guint64) value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_float32 (RuvGgufWriter *self,
                             const char    *key,
                             float          value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_FLOAT32);
  put_f32 (b, value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_float64 (RuvGgufWriter *self,
                             const char    *key,
                             double         value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_FLOAT64);
  put_f64 (b, value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_bool (RuvGgufWriter *self,
                          const char    *key,
                          gboolean       value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  b = begin_value (RUV_GGUF_TYPE_BOOL);
  put_u8 (b, value ? 1 : 0);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_string (RuvGgufWriter *self,
                            const char    *key,
                            const char    *value)
{
  GByteArray *b;

  SETTER_PRECONDITIONS ();
  g_return_if_fail (value != NULL);
  b = begin_value (RUV_GGUF_TYPE_STRING);
  put_str (b, value);
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_array_string (RuvGgufWriter     *self,
                                  const char        *key,
                                  const char *const *strs,
                                  gsize              n)
{
  GByteArray *b;
  gsize i;

  SETTER_PRECONDITIONS ();
  g_return_if_fail (strs != NULL || n == 0);
  b = begin_value (RUV_GGUF_TYPE_ARRAY);
  put_u32 (b, RUV_GGUF_TYPE_STRING);
  put_u64 (b, n);
  for (i = 0; i < n; i++)
    put_str (b, strs[i] != NULL ? strs[i] : "");
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_array (RuvGgufWriter *self,
                           const char    *key,
                           RuvGgufType    elem_type,
                           const void    *values,
                           gsize          n)
{
  GByteArray *b;
  gsize i;

  SETTER_PRECONDITIONS ();
  g_return_if_fail (elem_type < RUV_GGUF_TYPE_COUNT && elem_type != RUV_GGUF_TYPE_STRING
                    && elem_type != RUV_GGUF_TYPE_ARRAY);
  g_return_if_fail (values != NULL || n == 0);
  b = begin_value (RUV_GGUF_TYPE_ARRAY);
  put_u32 (b, elem_type);
  put_u64 (b, n);
  for (i = 0; i < n; i++)
    {
      switch (elem_type)
        {
        case RUV_GGUF_TYPE_UINT8:
        case RUV_GGUF_TYPE_INT8:
        case RUV_GGUF_TYPE_BOOL:
          put_u8 (b, ((const guint8 *) values)[i]);
          break;
        case RUV_GGUF_TYPE_UINT16:
        case RUV_GGUF_TYPE_INT16:
          put_u16 (b, ((const guint16 *) values)[i]);
          break;
        case RUV_GGUF_TYPE_UINT32:
        case RUV_GGUF_TYPE_INT32:
          put_u32 (b, ((const guint32 *) values)[i]);
          break;
        case RUV_GGUF_TYPE_UINT64:
        case RUV_GGUF_TYPE_INT64:
          put_u64 (b, ((const guint64 *) values)[i]);
          break;
        case RUV_GGUF_TYPE_FLOAT32:
          put_f32 (b, ((const float *) values)[i]);
          break;
        case RUV_GGUF_TYPE_FLOAT64:
          put_f64 (b, ((const double *) values)[i]);
          break;
        case RUV_GGUF_TYPE_STRING:
        case RUV_GGUF_TYPE_ARRAY:
        case RUV_GGUF_TYPE_COUNT:
        default:
          g_assert_not_reached ();
        }
    }
  set_value (self, key, b);
}

void
ruv_gguf_writer_set_array_float32 (RuvGgufWriter *self,
                                   const char    *key,
                                   const float   *values,
                                   gsize          n)
{
  ruv_gguf_writer_set_array (self, key, RUV_GGUF_TYPE_FLOAT32, values, n);
}

void
ruv_gguf_writer_set_array_int32 (RuvGgufWriter *self,
                                 const char    *key,
                                 const gint32  *values,
                                 gsize          n)
{
  ruv_gguf_writer_set_array (self, key, RUV_GGUF_TYPE_INT32, values, n);
}

gboolean
ruv_gguf_writer_add_tensor (RuvGgufWriter *self,
                            const char    *name,
                            rk_type        type,
                            guint          n_dims,
                            const gint64  *ne,
                            const void    *data,
                            gsize          size,
                            GError       **error)
{
  WriterTensor *t;
  guint64 bytes;
  guint d;

  g_return_val_if_fail (self != NULL && name != NULL && ne != NULL, FALSE);
  g_return_val_if_fail (data != NULL || size == 0, FALSE);

  if (name[0] == '\0' || strlen (name) > MAX_TENSOR_NAME)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "tensor '%s': a name must be 1 to %d bytes long", name, MAX_TENSOR_NAME);
      return FALSE;
    }
  if (g_hash_table_contains (self->tensor_names, name))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "tensor '%s': a tensor of this name was already added", name);
      return FALSE;
    }
  if (n_dims < 1 || n_dims > RUV_GGUF_MAX_DIMS)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "tensor '%s': n_dims %u is not between 1 and %d", name, n_dims,
                   RUV_GGUF_MAX_DIMS);
      return FALSE;
    }
  if (!rk_type_is_known (type))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "tensor '%s': type %u is unknown", name, (guint) type);
      return FALSE;
    }
  if (ne[0] < 0 || ne[0] % rk_type_block_size (type) != 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "tensor '%s': row length %" G_GINT64_FORMAT " is not a multiple of %s's "
                   "block size %" G_GINT64_FORMAT, name, ne[0], rk_type_name (type),
                   rk_type_block_size (type));
      return FALSE;
    }
  bytes = rk_row_size (type, ne[0]);
  for (d = 1; d < n_dims; d++)
    {
      if (ne[d] < 0 || (ne[d] != 0 && bytes > G_MAXSIZE / (guint64) ne[d]))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                       "tensor '%s': dimension %u (%" G_GINT64_FORMAT ") is negative or too "
                       "large", name, d, ne[d]);
          return FALSE;
        }
      bytes *= (guint64) ne[d];
    }
  if (bytes != size)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "tensor '%s': %" G_GSIZE_FORMAT " bytes of data given, its shape and type "
                   "%s need %" G_GUINT64_FORMAT, name, size, rk_type_name (type), bytes);
      return FALSE;
    }

  t = g_new0 (WriterTensor, 1);
  t->name = g_strdup (name);
  t->type = type;
  t->n_dims = n_dims;
  for (d = 0; d < RUV_GGUF_MAX_DIMS; d++)
    t->ne[d] = d < n_dims ? ne[d] : 1;
  t->data = g_bytes_new (data, size);
  g_ptr_array_add (self->tensors, t);
  g_hash_table_add (self->tensor_names, t->name);
  return TRUE;
}

static gsize
pad_to (gsize x,
        gsize align)
{
  return (x + align - 1) & ~(align - 1);
}

static gboolean
get_alignment (RuvGgufWriter *self,
               gsize         *out,
               GError       **error)
{
  WriterKv *kv = g_hash_table_lookup (self->kv_index, "general.alignment");
  const guint8 *p;
  gsize len;
  guint32 type;
  guint32 v;

  *out = RUV_GGUF_DEFAULT_ALIGNMENT;
  if (kv == NULL)
    return TRUE;
  p = g_bytes_get_data (kv->value, &len);
  memcpy (&type, p, 4);
  type = GUINT32_FROM_LE (type);
  if (type == RUV_GGUF_TYPE_UINT32 && len == 8)
    {
      memcpy (&v, p + 4, 4);
      v = GUINT32_FROM_LE (v);
      if (v >= 8 && (v & (v - 1)) == 0 && v <= MAX_ALIGNMENT)
        {
          *out = v;
          return TRUE;
        }
    }
  g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
               "general.alignment must be a u32 power of two between 8 and %u", MAX_ALIGNMENT);
  return FALSE;
}

/* Header, metadata and tensor infos, padded to the alignment. */
static GByteArray *
build_meta (RuvGgufWriter *self,
            gsize          align)
{
  GByteArray *b = g_byte_array_new ();
  guint64 offset = 0;
  guint i;

  g_byte_array_append (b, (const guint8 *) "GGUF", 4);
  put_u32 (b, 3);
  put_u64 (b, self->tensors->len);
  put_u64 (b, self->kvs->len);
  for (i = 0; i < self->kvs->len; i++)
    {
      WriterKv *kv = g_ptr_array_index (self->kvs, i);
      gsize len;
      const guint8 *p = g_bytes_get_data (kv->value, &len);

      put_str (b, kv->key);
      g_byte_array_append (b, p, len);
    }
  for (i = 0; i < self->tensors->len; i++)
    {
      WriterTensor *t = g_ptr_array_index (self->tensors, i);
      guint d;

      put_str (b, t->name);
      put_u32 (b, t->n_dims);
      for (d = 0; d < t->n_dims; d++)
        put_u64 (b, (guint64) t->ne[d]);
      put_u32 (b, t->type);
      put_u64 (b, offset);
      offset += pad_to (g_bytes_get_size (t->data), align);
    }
  put_zeros (b, pad_to (b->len, align) - b->len);
  return b;
}

GBytes *
ruv_gguf_writer_to_bytes (RuvGgufWriter *self,
                          GError       **error)
{
  GByteArray *b;
  gsize align;
  guint i;

  g_return_val_if_fail (self != NULL, NULL);
  if (!get_alignment (self, &align, error))
    return NULL;
  b = build_meta (self, align);
  for (i = 0; i < self->tensors->len; i++)
    {
      WriterTensor *t = g_ptr_array_index (self->tensors, i);
      gsize len;
      const guint8 *p = g_bytes_get_data (t->data, &len);

      g_byte_array_append (b, p, len);
      put_zeros (b, pad_to (len, align) - len);
    }
  return g_byte_array_free_to_bytes (b);
}

static gboolean
write_all (int           fd,
           const guint8 *p,
           gsize         n,
           const char   *path,
           GError      **error)
{
  while (n > 0)
    {
      gssize k = write (fd, p, MIN (n, (gsize) 1 << 30));

      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0)
        {
          int saved = errno;

          g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: cannot write: %s",
                       path, g_strerror (k < 0 ? saved : EIO));
          return FALSE;
        }
      p += k;
      n -= (gsize) k;
    }
  return TRUE;
}

gboolean
ruv_gguf_writer_write_file (RuvGgufWriter *self,
                            const char    *path,
                            GError       **error)
{
  static const guint8 zeros[RUV_GGUF_DEFAULT_ALIGNMENT] = { 0 };
  g_autofree char *tmp = NULL;
  g_autoptr(GByteArray) meta = NULL;
  gsize align;
  gboolean ok;
  guint i;
  int fd;

  g_return_val_if_fail (self != NULL && path != NULL, FALSE);
  if (!get_alignment (self, &align, error))
    return FALSE;
  meta = build_meta (self, align);
  tmp = g_strconcat (path, ".tmp", NULL);
  fd = g_open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: cannot create: %s",
                   tmp, g_strerror (saved));
      return FALSE;
    }

  ok = write_all (fd, meta->data, meta->len, tmp, error);
  for (i = 0; ok && i < self->tensors->len; i++)
    {
      WriterTensor *t = g_ptr_array_index (self->tensors, i);
      gsize len;
      const guint8 *p = g_bytes_get_data (t->data, &len);
      gsize pad = pad_to (len, align) - len;

      ok = write_all (fd, p, len, tmp, error);
      /* Padding can exceed the zero buffer when the alignment is large. */
      while (ok && pad > 0)
        {
          gsize k = MIN (pad, sizeof zeros);

          ok = write_all (fd, zeros, k, tmp, error);
          pad -= k;
        }
    }
  if (ok && fsync (fd) != 0)
    {
      int saved = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: cannot sync: %s", tmp, g_strerror (saved));
      ok = FALSE;
    }
  if (close (fd) != 0 && ok)
    {
      int saved = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: cannot close: %s", tmp, g_strerror (saved));
      ok = FALSE;
    }
  if (ok && g_rename (tmp, path) != 0)
    {
      int saved = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: cannot rename to %s: %s",
                   tmp, path, g_strerror (saved));
      ok = FALSE;
    }
  if (!ok)
    g_unlink (tmp);
  return ok;
}
