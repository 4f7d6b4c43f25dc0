/* ruv-gguf.c — a distrustful GGUF (v2, v3) reader over a (data, size) pair.
 * SPDX-License-Identifier: MIT
 *
 * Layout (little-endian throughout):
 *
 *   header    magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv      (24 bytes)
 *   kv[n_kv]  u64 key_len | key bytes | u32 type | value
 *             value: scalar (1, 2, 4 or 8 bytes) | string (u64 len | bytes)
 *                    | array (u32 elem_type | u64 count | count elements)
 *   ti[n_tensors]
 *             u64 name_len | name | u32 n_dims | i64 ne[n_dims] | u32 type | u64 offset
 *   padding   to general.alignment (default 32)
 *   data      tensor i at data_offset + offset_i
 *
 * Rules, from the ggml parser and the upstream CVEs (shared/RELIABILITY.md A):
 * every read is checked against the bytes that remain; counts are bounded by
 * the smallest record they could describe before anything is sized by them
 * (the KV and tensor tables grow as records actually parse). Limits: keys
 * 1..65535 bytes of printable ASCII, unique; strings <= 1 GiB; arrays <= 2^30
 * elements, not nested; general.alignment a u32 power of two in 8..1 MiB;
 * tensor names 1..63 bytes without control bytes, unique; n_dims 1..4;
 * tensor types known to rk_type_is_known (unsupported ones still parse, the
 * engine refuses them by name); ne[0] a multiple of the block size. Every size is
 * computed with checked arithmetic, and padding is checked before it is
 * applied. Tensors must be laid out as ggml writes them and reads them: in
 * file order, each at the padded end of the previous one (so overlaps and
 * gaps are errors), all inside the file. Zero-sized dimensions are allowed,
 * as in ggml (a tensor with no elements has size 0). When a file has no
 * tensors, its data section may start past the end of the file (recent
 * ggml accepts unpadded vocab-only files).
 */
#include "ruv-gguf.h"

#include <string.h>

#include "ruv-error.h"

#define HEADER_SIZE 24
/* u64 key length, a 1-byte key, u32 type, a 1-byte value. */
#define MIN_KV_SIZE 14
/* u64 name length, a 1-byte name, u32 n_dims, one i64, u32 type, u64 offset. */
#define MIN_TENSOR_INFO_SIZE 33
#define MAX_KEY_LENGTH 65535
#define MAX_STRING_LENGTH (G_GUINT64_CONSTANT (1) << 30)
#define MAX_ARRAY_LENGTH (G_GUINT64_CONSTANT (1) << 30)
/* ggml's GGML_MAX_NAME counts the NUL. */
#define MAX_TENSOR_NAME 63
#define MAX_ALIGNMENT (1u << 20)

typedef struct
{
  char         *key;
  RuvGgufType   type;
  /* Scalars: unsigned and bool in u, signed in i, floats in f. */
  guint64       u;
  gint64        i;
  double        f;
  /* STRING: a NUL-terminated copy and its length. */
  char         *str;
  gsize         str_len;
  /* ARRAY: element type, count and the first element in the file. */
  RuvGgufType   elem_type;
  guint64       n;
  const guint8 *elems;
  /* ARRAY of STRING: for each element, the file offset of its u64 length. */
  guint64      *str_offsets;
} RuvGgufKv;

struct _RuvGguf
{
  const guint8 *data;
  gsize         size;
  char         *filename;
  guint32       version;
  gsize         alignment;
  gsize         data_offset;

  GArray       *kvs;           /* RuvGgufKv, in file order */
  GHashTable   *kv_index;      /* key -> index + 1 */
  GArray       *tensors;       /* RuvGgufTensor, in file order */
  GHashTable   *tensor_index;  /* name -> index + 1 */
};

typedef struct
{
  RuvGguf *gguf;
  gsize    pos;
} Reader;

static const char *const type_names[RUV_GGUF_TYPE_COUNT] = {
  "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

/* Byte sizes of the scalar types; 0 for STRING and ARRAY. */
static const gsize type_sizes[RUV_GGUF_TYPE_COUNT] = {
  1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8,
};

static const char *
type_name (guint32 type)
{
  return type < RUV_GGUF_TYPE_COUNT ? type_names[type] : "unknown";
}

static void
kv_clear (gpointer p)
{
  RuvGgufKv *kv = p;

  g_free (kv->key);
  g_free (kv->str);
  g_free (kv->str_offsets);
}

static void
tensor_clear (gpointer p)
{
  RuvGgufTensor *t = p;

  g_free ((char *) t->name);
}

static const char *
display_name (const RuvGguf *self)
{
  return self->filename != NULL ? self->filename : "GGUF data";
}

static void G_GNUC_PRINTF (3, 4)
set_error (const RuvGguf *self,
           GError       **error,
           const char    *format,
           ...)
{
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL, "%s: %s", display_name (self), msg);
}

/* --- little-endian loads; memcpy because mapped data has no alignment --- */

static guint16
load_u16 (const guint8 *p)
{
  guint16 v;

  memcpy (&v, p, sizeof v);
  return GUINT16_FROM_LE (v);
}

static guint32
load_u32 (const guint8 *p)
{
  guint32 v;

  memcpy (&v, p, sizeof v);
  return GUINT32_FROM_LE (v);
}

static guint64
load_u64 (const guint8 *p)
{
  guint64 v;

  memcpy (&v, p, sizeof v);
  return GUINT64_FROM_LE (v);
}

static float
load_f32 (const guint8 *p)
{
  guint32 bits = load_u32 (p);
  float f;

  memcpy (&f, &bits, sizeof f);
  return f;
}

static double
load_f64 (const guint8 *p)
{
  guint64 bits = load_u64 (p);
  double d;

  memcpy (&d, &bits, sizeof d);
  return d;
}

static gsize
remaining (const Reader *r)
{
  return r->gguf->size - r->pos;
}

/* Advances over n bytes and returns where they start, or NULL when fewer
 * than n remain. */
static const guint8 *
take (Reader *r,
      guint64 n)
{
  const guint8 *p;

  if (n > remaining (r))
    return NULL;
  p = r->gguf->data + r->pos;
  r->pos += (gsize) n;
  return p;
}

static gboolean
truncated (Reader     *r,
           GError    **error,
           const char *field,
           guint64     need)
{
  set_error (r->gguf, error,
             "%s: the file ends %" G_GSIZE_FORMAT " bytes after offset %" G_GSIZE_FORMAT
             ", %" G_GUINT64_FORMAT " are needed (the file is truncated or corrupt)",
             field, remaining (r), r->pos, need);
  return FALSE;
}

static gboolean
read_u32 (Reader     *r,
          const char *field,
          guint32    *out,
          GError    **error)
{
  const guint8 *p = take (r, 4);

  if (p == NULL)
    return truncated (r, error, field, 4);
  *out = load_u32 (p);
  return TRUE;
}

static gboolean
read_u64 (Reader     *r,
          const char *field,
          guint64    *out,
          GError    **error)
{
  const guint8 *p = take (r, 8);

  if (p == NULL)
    return truncated (r, error, field, 8);
  *out = load_u64 (p);
  return TRUE;
}

/* A u64 length followed by that many bytes, at most max_len. */
static gboolean
read_string (Reader        *r,
             const char    *field,
             guint64        max_len,
             const guint8 **out,
             guint64       *out_len,
             GError       **error)
{
  guint64 len;

  if (!read_u64 (r, field, &len, error))
    return FALSE;
  if (len > max_len)
    {
      set_error (r->gguf, error, "%s: length %" G_GUINT64_FORMAT " is over the limit of %"
                 G_GUINT64_FORMAT " bytes", field, len, max_len);
      return FALSE;
    }
  if (len > remaining (r))
    {
      set_error (r->gguf, error, "%s: length %" G_GUINT64_FORMAT " is more than the %"
                 G_GSIZE_FORMAT " bytes left in the file (truncated or corrupt)",
                 field, len, remaining (r));
      return FALSE;
    }
  *out = take (r, len);
  *out_len = len;
  return TRUE;
}

static void
set_scalar (RuvGgufKv    *kv,
            RuvGgufType   type,
            const guint8 *p)
{
  switch (type)
    {
    case RUV_GGUF_TYPE_UINT8:
    case RUV_GGUF_TYPE_BOOL:
      kv->u = p[0];
      break;
    case RUV_GGUF_TYPE_INT8:
      kv->i = (gint8) p[0];
      break;
    case RUV_GGUF_TYPE_UINT16:
      kv->u = load_u16 (p);
      break;
    case RUV_GGUF_TYPE_INT16:
      kv->i = (gint16) load_u16 (p);
      break;
    case RUV_GGUF_TYPE_UINT32:
      kv->u = load_u32 (p);
      break;
    case RUV_GGUF_TYPE_INT32:
      kv->i = (gint32) load_u32 (p);
      break;
    case RUV_GGUF_TYPE_UINT64:
      kv->u = load_u64 (p);
      break;
    case RUV_GGUF_TYPE_INT64:
      kv->i = (gint64) load_u64 (p);
      break;
    case RUV_GGUF_TYPE_FLOAT32:
      kv->f = load_f32 (p);
      break;
    case RUV_GGUF_TYPE_FLOAT64:
      kv->f = load_f64 (p);
      break;
    case RUV_GGUF_TYPE_STRING:
    case RUV_GGUF_TYPE_ARRAY:
    case RUV_GGUF_TYPE_COUNT:
    default:
      g_assert_not_reached ();
    }
}

static gboolean
read_array (Reader     *r,
            RuvGgufKv  *kv,
            const char *field,
            GError    **error)
{
  guint32 elem_type;
  guint64 n;
  guint64 i;

  if (!read_u32 (r, field, &elem_type, error))
    return FALSE;
  if (elem_type >= RUV_GGUF_TYPE_COUNT)
    {
      set_error (r->gguf, error, "%s: unknown array element type %u", field, elem_type);
      return FALSE;
    }
  if (elem_type == RUV_GGUF_TYPE_ARRAY)
    {
      set_error (r->gguf, error, "%s: arrays of arrays are not supported", field);
      return FALSE;
    }
  if (!read_u64 (r, field, &n, error))
    return FALSE;
  if (n > MAX_ARRAY_LENGTH)
    {
      set_error (r->gguf, error, "%s: array of %" G_GUINT64_FORMAT " elements is over the limit "
                 "of %" G_GUINT64_FORMAT, field, n, MAX_ARRAY_LENGTH);
      return FALSE;
    }
  kv->elem_type = elem_type;
  kv->n = n;
  kv->elems = r->gguf->data + r->pos;

  if (elem_type != RUV_GGUF_TYPE_STRING)
    {
      gsize esize = type_sizes[elem_type];

      if (n > remaining (r) / esize)
        {
          set_error (r->gguf, error, "%s: array of %" G_GUINT64_FORMAT " %s elements needs more "
                     "than the %" G_GSIZE_FORMAT " bytes left in the file (truncated or corrupt)",
                     field, n, type_name (elem_type), remaining (r));
          return FALSE;
        }
      r->pos += (gsize) (n * esize);
      return TRUE;
    }

  /* Each string is at least its 8-byte length: bound the index by that
   * before allocating it, then walk the lengths without copying. */
  if (n > remaining (r) / 8)
    {
      set_error (r->gguf, error, "%s: array of %" G_GUINT64_FORMAT " strings needs more than the %"
                 G_GSIZE_FORMAT " bytes left in the file (truncated or corrupt)",
                 field, n, remaining (r));
      return FALSE;
    }
  kv->str_offsets = g_new (guint64, MAX (n, 1));
  for (i = 0; i < n; i++)
    {
      guint64 len;

      kv->str_offsets[i] = r->pos;
      if (remaining (r) < 8)
        {
          set_error (r->gguf, error, "%s: string element %" G_GUINT64_FORMAT " of %"
                     G_GUINT64_FORMAT ": the file ends at offset %" G_GSIZE_FORMAT
                     " (truncated or corrupt)", field, i, n, r->gguf->size);
          return FALSE;
        }
      len = load_u64 (r->gguf->data + r->pos);
      r->pos += 8;
      if (len > MAX_STRING_LENGTH || len > remaining (r))
        {
          set_error (r->gguf, error, "%s: string element %" G_GUINT64_FORMAT " has length %"
                     G_GUINT64_FORMAT ", more than the %" G_GSIZE_FORMAT " bytes left "
                     "(truncated or corrupt)", field, i, len, remaining (r));
          return FALSE;
        }
      r->pos += (gsize) len;
    }
  return TRUE;
}

static gboolean
key_is_valid (const guint8 *key,
              gsize         len)
{
  gsize i;

  for (i = 0; i < len; i++)
    if (key[i] < 0x20 || key[i] > 0x7e)
      return FALSE;
  return TRUE;
}

static gboolean
read_alignment (RuvGguf         *self,
                const RuvGgufKv *kv,
                GError         **error)
{
  if (kv->type != RUV_GGUF_TYPE_UINT32)
    {
      set_error (self, error, "general.alignment: has type %s, must be u32",
                 type_name (kv->type));
      return FALSE;
    }
  if (kv->u == 0 || (kv->u & (kv->u - 1)) != 0 || kv->u % 8 != 0 || kv->u > MAX_ALIGNMENT)
    {
      set_error (self, error, "general.alignment: %" G_GUINT64_FORMAT " is not a power of two "
                 "between 8 and %u", kv->u, MAX_ALIGNMENT);
      return FALSE;
    }
  self->alignment = (gsize) kv->u;
  return TRUE;
}

static gboolean
read_kv (Reader  *r,
         guint64  index,
         GError **error)
{
  RuvGguf *self = r->gguf;
  RuvGgufKv kv = { 0 };
  g_autofree char *field = g_strdup_printf ("metadata key #%" G_GUINT64_FORMAT, index);
  const guint8 *key;
  const guint8 *p;
  guint64 key_len;
  guint32 type;

  if (!read_string (r, field, MAX_KEY_LENGTH, &key, &key_len, error))
    return FALSE;
  if (key_len == 0)
    {
      set_error (self, error, "%s: the key is empty", field);
      return FALSE;
    }
  if (!key_is_valid (key, key_len))
    {
      set_error (self, error, "%s: the key has bytes outside printable ASCII", field);
      return FALSE;
    }
  kv.key = g_strndup ((const char *) key, key_len);
  g_free (field);
  field = g_strdup_printf ("metadata key '%s'", kv.key);
  if (g_hash_table_contains (self->kv_index, kv.key))
    {
      set_error (self, error, "%s: the key appears twice", field);
      goto fail;
    }
  if (!read_u32 (r, field, &type, error))
    goto fail;
  if (type >= RUV_GGUF_TYPE_COUNT)
    {
      set_error (self, error, "%s: unknown value type %u", field, type);
      goto fail;
    }
  kv.type = type;

  if (type == RUV_GGUF_TYPE_STRING)
    {
      guint64 len;

      if (!read_string (r, field, MAX_STRING_LENGTH, &p, &len, error))
        goto fail;
      kv.str = g_strndup ((const char *) p, len);
      kv.str_len = len;
    }
  else if (type == RUV_GGUF_TYPE_ARRAY)
    {
      if (!read_array (r, &kv, field, error))
        goto fail;
    }
  else
    {
      p = take (r, type_sizes[type]);
      if (p == NULL)
        {
          truncated (r, error, field, type_sizes[type]);
          goto fail;
        }
      set_scalar (&kv, type, p);
    }

  if (strcmp (kv.key, "general.alignment") == 0 && !read_alignment (self, &kv, error))
    goto fail;

  g_array_append_val (self->kvs, kv);
  g_hash_table_insert (self->kv_index, kv.key, GSIZE_TO_POINTER (self->kvs->len));
  return TRUE;

fail:
  kv_clear (&kv);
  return FALSE;
}

static gboolean
name_is_valid (const guint8 *name,
               gsize         len)
{
  gsize i;

  for (i = 0; i < len; i++)
    if (name[i] < 0x20 || name[i] == 0x7f)
      return FALSE;
  return TRUE;
}

static gboolean
read_tensor_info (Reader  *r,
                  guint64  index,
                  GError **error)
{
  RuvGguf *self = r->gguf;
  RuvGgufTensor t = { 0 };
  g_autofree char *field = g_strdup_printf ("tensor #%" G_GUINT64_FORMAT, index);
  const guint8 *name;
  guint64 name_len;
  guint32 type;
  guint64 n_elements = 1;         /* of the non-zero dimensions */
  guint64 bytes;
  guint64 rows = 1;
  int64_t bs;
  guint32 d;

  if (!read_string (r, field, MAX_TENSOR_NAME, &name, &name_len, error))
    return FALSE;
  if (name_len == 0)
    {
      set_error (self, error, "%s: the name is empty", field);
      return FALSE;
    }
  if (!name_is_valid (name, name_len))
    {
      set_error (self, error, "%s: the name has control bytes", field);
      return FALSE;
    }
  t.name = g_strndup ((const char *) name, name_len);
  g_free (field);
  field = g_strdup_printf ("tensor '%s'", t.name);
  if (g_hash_table_contains (self->tensor_index, t.name))
    {
      set_error (self, error, "%s: the name appears twice", field);
      goto fail;
    }

  if (!read_u32 (r, field, &t.n_dims, error))
    goto fail;
  if (t.n_dims < 1 || t.n_dims > RUV_GGUF_MAX_DIMS)
    {
      set_error (self, error, "%s: n_dims %u is not between 1 and %d",
                 field, t.n_dims, RUV_GGUF_MAX_DIMS);
      goto fail;
    }
  for (d = 0; d < RUV_GGUF_MAX_DIMS; d++)
    t.ne[d] = 1;
  for (d = 0; d < t.n_dims; d++)
    {
      guint64 v;

      if (!read_u64 (r, field, &v, error))
        goto fail;
      if (v > G_MAXINT64)
        {
          set_error (self, error, "%s: dimension %u is negative (%" G_GINT64_FORMAT ")",
                     field, d, (gint64) v);
          goto fail;
        }
      t.ne[d] = (gint64) v;
    }
  /* Zero-sized dimensions make an empty tensor, but the other dimensions
   * must still multiply without overflow; zeros are skipped, so the division
   * is never by zero (ggml c2cdd2b2). */
  for (d = 0; d < RUV_GGUF_MAX_DIMS; d++)
    {
      guint64 ne = (guint64) t.ne[d];

      if (ne == 0)
        continue;
      if (n_elements > (guint64) G_MAXINT64 / ne)
        {
          set_error (self, error, "%s: shape [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %"
                     G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] is too large", field,
                     t.ne[0], t.ne[1], t.ne[2], t.ne[3]);
          goto fail;
        }
      n_elements *= ne;
    }
  /* With the zeros skipped, every partial product below is <= n_elements. */

  if (!read_u32 (r, field, &type, error))
    goto fail;
  if (!rk_type_is_known (type))
    {
      set_error (self, error, "%s: tensor type %u is unknown", field, type);
      goto fail;
    }
  t.type = (rk_type) type;
  bs = rk_type_block_size (type);
  if (t.ne[0] % bs != 0)
    {
      set_error (self, error, "%s: row length %" G_GINT64_FORMAT " is not a multiple of %s's "
                 "block size %" G_GINT64_FORMAT, field, t.ne[0], rk_type_name (type), bs);
      goto fail;
    }
  /* Bytes = blocks per row * block bytes * rows, each step checked. */
  bytes = (guint64) (t.ne[0] / bs);
  for (d = 1; d < RUV_GGUF_MAX_DIMS; d++)
    rows *= (guint64) t.ne[d];
  if (bytes != 0 && rk_type_size (type) > G_MAXSIZE / bytes)
    goto too_big;
  bytes *= rk_type_size (type);
  if (rows != 0 && bytes > G_MAXSIZE / rows)
    goto too_big;
  bytes *= rows;
  t.size = (gsize) bytes;

  if (!read_u64 (r, field, &t.offset, error))
    goto fail;

  g_array_append_val (self->tensors, t);
  g_hash_table_insert (self->tensor_index, (char *) t.name, GSIZE_TO_POINTER (self->tensors->len));
  return TRUE;

too_big:
  set_error (self, error, "%s: shape [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %"
             G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] of %s is too large in bytes", field,
             t.ne[0], t.ne[1], t.ne[2], t.ne[3], rk_type_name (type));
fail:
  tensor_clear (&t);
  return FALSE;
}

/* x rounded up to a multiple of align (a power of two), or FALSE if that
 * does not fit: checked before padding, so it cannot wrap (llama.cpp#24759). */
static gboolean
pad_checked (guint64  x,
             gsize    align,
             guint64 *out)
{
  if (x > G_MAXSIZE - (align - 1))
    return FALSE;
  *out = (x + (align - 1)) & ~((guint64) align - 1);
  return TRUE;
}

static gboolean
place_tensors (RuvGguf *self,
               GError **error)
{
  guint64 expected = 0;
  guint i;

  for (i = 0; i < self->tensors->len; i++)
    {
      RuvGgufTensor *t = &g_array_index (self->tensors, RuvGgufTensor, i);
      guint64 end;

      if (t->offset % self->alignment != 0)
        {
          set_error (self, error, "tensor '%s': offset %" G_GUINT64_FORMAT " is not aligned to %"
                     G_GSIZE_FORMAT, t->name, t->offset, self->alignment);
          return FALSE;
        }
      if (t->offset != expected)
        {
          if (i > 0 && t->offset < expected)
            set_error (self, error, "tensor '%s': offset %" G_GUINT64_FORMAT " overlaps tensor "
                       "'%s', which ends at %" G_GUINT64_FORMAT, t->name, t->offset,
                       g_array_index (self->tensors, RuvGgufTensor, i - 1).name, expected);
          else
            set_error (self, error, "tensor '%s': offset %" G_GUINT64_FORMAT " leaves a gap; "
                       "tensors must follow each other, expected offset %" G_GUINT64_FORMAT,
                       t->name, t->offset, expected);
          return FALSE;
        }
      /* offset == expected <= G_MAXSIZE; data_offset <= size (checked). */
      if (t->offset > self->size - self->data_offset
          || t->size > self->size - self->data_offset - t->offset)
        {
          set_error (self, error, "tensor '%s': data at offset %" G_GSIZE_FORMAT " + %"
                     G_GUINT64_FORMAT " + %" G_GSIZE_FORMAT " bytes lies outside the file (size %"
                     G_GSIZE_FORMAT "); the file is truncated or corrupt",
                     t->name, self->data_offset, t->offset, t->size, self->size);
          return FALSE;
        }
      t->data = self->data + self->data_offset + t->offset;
      end = t->offset + t->size;
      if (!pad_checked (end, self->alignment, &expected))
        {
          set_error (self, error, "tensor '%s': size %" G_GSIZE_FORMAT " at offset %"
                     G_GUINT64_FORMAT " overflows", t->name, t->size, t->offset);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
read_header (Reader  *r,
             guint64 *n_tensors,
             guint64 *n_kv,
             GError **error)
{
  RuvGguf *self = r->gguf;
  const guint8 *d = self->data;
  guint32 version;
  gsize left;

  if (self->size < 4)
    {
      set_error (self, error, "header: the file is %s (%" G_GSIZE_FORMAT " bytes), too short to "
                 "be a GGUF model", self->size == 0 ? "empty" : "too short", self->size);
      return FALSE;
    }
  if (memcmp (d, "GGUF", 4) != 0)
    {
      char shown[5];
      int k;

      for (k = 0; k < 4; k++)
        shown[k] = g_ascii_isprint (d[k]) ? (char) d[k] : '?';
      shown[4] = '\0';
      set_error (self, error, "magic: starts with '%s', this is not a GGUF file", shown);
      return FALSE;
    }
  r->pos = 4;
  if (!read_u32 (r, "header: version", &version, error))
    return FALSE;
  if ((version & 0xffff) == 0 && version != 0)
    {
      set_error (self, error, "header: version 0x%08x is byte-swapped: big-endian GGUF files "
                 "are not supported", version);
      return FALSE;
    }
  if (version == 1)
    {
      set_error (self, error, "header: GGUF v1 is no longer supported; convert the model again");
      return FALSE;
    }
  if (version < 2 || version > 3)
    {
      set_error (self, error, "header: version %u is not supported (only 2 and 3)", version);
      return FALSE;
    }
  self->version = version;
  if (!read_u64 (r, "header: n_tensors", n_tensors, error)
      || !read_u64 (r, "header: n_kv", n_kv, error))
    return FALSE;

  left = remaining (r);
  if (*n_tensors > G_MAXINT64 || *n_tensors > left / MIN_TENSOR_INFO_SIZE)
    {
      set_error (self, error, "header: n_tensors %" G_GINT64_FORMAT " cannot fit in the %"
                 G_GSIZE_FORMAT " bytes left", (gint64) *n_tensors, left);
      return FALSE;
    }
  if (*n_kv > G_MAXINT64 || *n_kv > left / MIN_KV_SIZE)
    {
      set_error (self, error, "header: n_kv %" G_GINT64_FORMAT " cannot fit in the %"
                 G_GSIZE_FORMAT " bytes left", (gint64) *n_kv, left);
      return FALSE;
    }
  if (*n_kv * MIN_KV_SIZE > left - *n_tensors * MIN_TENSOR_INFO_SIZE)
    {
      set_error (self, error, "header: %" G_GUINT64_FORMAT " tensors and %" G_GUINT64_FORMAT
                 " metadata keys cannot fit in the %" G_GSIZE_FORMAT " bytes left",
                 *n_tensors, *n_kv, left);
      return FALSE;
    }
  return TRUE;
}

RuvGguf *
ruv_gguf_parse (const guint8  *data,
                gsize          size,
                const char    *filename,
                GError       **error)
{
  g_autoptr(RuvGguf) self = NULL;
  Reader r = { 0 };
  guint64 n_tensors = 0;
  guint64 n_kv = 0;
  guint64 i;
  guint64 data_offset;

  g_return_val_if_fail (data != NULL || size == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_new0 (RuvGguf, 1);
  self->data = data;
  self->size = size;
  self->filename = g_strdup (filename);
  self->alignment = RUV_GGUF_DEFAULT_ALIGNMENT;
  self->kvs = g_array_new (FALSE, TRUE, sizeof (RuvGgufKv));
  g_array_set_clear_func (self->kvs, kv_clear);
  self->kv_index = g_hash_table_new (g_str_hash, g_str_equal);
  self->tensors = g_array_new (FALSE, TRUE, sizeof (RuvGgufTensor));
  g_array_set_clear_func (self->tensors, tensor_clear);
  self->tensor_index = g_hash_table_new (g_str_hash, g_str_equal);
  r.gguf = self;

  if (!read_header (&r, &n_tensors, &n_kv, error))
    return NULL;
  for (i = 0; i < n_kv; i++)
    if (!read_kv (&r, i, error))
      return NULL;
  for (i = 0; i < n_tensors; i++)
    if (!read_tensor_info (&r, i, error))
      return NULL;

  if (!pad_checked (r.pos, self->alignment, &data_offset)
      || (n_tensors > 0 && data_offset > size))
    {
      set_error (self, error, "data section: starts at offset %" G_GSIZE_FORMAT " (aligned to %"
                 G_GSIZE_FORMAT "), past the end of the file (size %" G_GSIZE_FORMAT
                 "); the file is truncated or corrupt", r.pos, self->alignment, size);
      return NULL;
    }
  self->data_offset = (gsize) data_offset;
  if (!place_tensors (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

void
ruv_gguf_free (RuvGguf *self)
{
  if (self == NULL)
    return;
  /* The indexes borrow their keys from the arrays: drop them first. */
  g_clear_pointer (&self->kv_index, g_hash_table_unref);
  g_clear_pointer (&self->tensor_index, g_hash_table_unref);
  g_clear_pointer (&self->kvs, g_array_unref);
  g_clear_pointer (&self->tensors, g_array_unref);
  g_free (self->filename);
  g_free (self);
}

guint32
ruv_gguf_get_version (const RuvGguf *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->version;
}

gsize
ruv_gguf_get_alignment (const RuvGguf *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->alignment;
}

gsize
ruv_gguf_get_data_offset (const RuvGguf *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->data_offset;
}

const char *
ruv_gguf_get_filename (const RuvGguf *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->filename;
}

/* --- metadata --- */

static const RuvGgufKv *
lookup (const RuvGguf *self,
        const char    *key)
{
  gsize index;

  if (key == NULL)
    return NULL;
  index = GPOINTER_TO_SIZE (g_hash_table_lookup (self->kv_index, key));
  if (index == 0)
    return NULL;
  return &g_array_index (self->kvs, RuvGgufKv, index - 1);
}

gsize
ruv_gguf_get_n_kv (const RuvGguf *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->kvs->len;
}

const char *
ruv_gguf_get_key (const RuvGguf *self,
                  gsize          index)
{
  g_return_val_if_fail (self != NULL, NULL);
  if (index >= self->kvs->len)
    return NULL;
  return g_array_index (self->kvs, RuvGgufKv, index).key;
}

gboolean
ruv_gguf_has_key (const RuvGguf *self,
                  const char    *key)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return lookup (self, key) != NULL;
}

RuvGgufType
ruv_gguf_get_kv_type (const RuvGguf *self,
                      const char    *key)
{
  const RuvGgufKv *kv;

  g_return_val_if_fail (self != NULL, RUV_GGUF_TYPE_COUNT);
  kv = lookup (self, key);
  return kv != NULL ? kv->type : RUV_GGUF_TYPE_COUNT;
}

static gboolean
is_unsigned (RuvGgufType type)
{
  return type == RUV_GGUF_TYPE_UINT8 || type == RUV_GGUF_TYPE_UINT16
         || type == RUV_GGUF_TYPE_UINT32 || type == RUV_GGUF_TYPE_UINT64;
}

static gboolean
is_signed (RuvGgufType type)
{
  return type == RUV_GGUF_TYPE_INT8 || type == RUV_GGUF_TYPE_INT16
         || type == RUV_GGUF_TYPE_INT32 || type == RUV_GGUF_TYPE_INT64;
}

static gboolean
wrong_type (const RuvGguf   *self,
            const RuvGgufKv *kv,
            const char      *wanted,
            GError         **error)
{
  if (kv->type == RUV_GGUF_TYPE_ARRAY)
    set_error (self, error, "metadata key '%s': is an array of %s, expected %s",
               kv->key, type_name (kv->elem_type), wanted);
  else
    set_error (self, error, "metadata key '%s': has type %s, expected %s",
               kv->key, type_name (kv->type), wanted);
  return FALSE;
}

gboolean
ruv_gguf_get_uint (const RuvGguf *self,
                   const char    *key,
                   guint64       *out,
                   GError       **error)
{
  const RuvGgufKv *kv;

  g_return_val_if_fail (self != NULL && out != NULL, FALSE);
  if ((kv = lookup (self, key)) == NULL)
    return FALSE;
  if (is_unsigned (kv->type))
    *out = kv->u;
  else if (is_signed (kv->type) && kv->i >= 0)
    *out = (guint64) kv->i;
  else if (is_signed (kv->type))
    {
      set_error (self, error, "metadata key '%s': value %" G_GINT64_FORMAT " is negative",
                 kv->key, kv->i);
      return FALSE;
    }
  else
    return wrong_type (self, kv, "an unsigned integer", error);
  return TRUE;
}

gboolean
ruv_gguf_get_int (const RuvGguf *self,
                  const char    *key,
                  gint64        *out,
                  GError       **error)
{
  const RuvGgufKv *kv;

  g_return_val_if_fail (self != NULL && out != NULL, FALSE);
  if ((kv = lookup (self, key)) == NULL)
    return FALSE;
  if (is_signed (kv->type))
    *out = kv->i;
  else if (is_unsigned (kv->type) && kv->u <= G_MAXINT64)
    *out = (gint64) kv->u;
  else if (is_unsigned (kv->type))
    {
      set_error (self, error, "metadata key '%s': value %" G_GUINT64_FORMAT " does not fit "
                 "in a signed 64-bit integer", kv->key, kv->u);
      return FALSE;
    }
  else
    return wrong_type (self, kv, "an integer", error);
  return TRUE;
}

gboolean
ruv_gguf_get_float (const RuvGguf *self,
                    const char    *key,
                    double        *out,
                    GError       **error)
{
  const RuvGgufKv *kv;

  g_return_val_if_fail (self != NULL && out != NULL, FALSE);
  if ((kv = lookup (self, key)) == NULL)
    return FALSE;
  if (kv->type == RUV_GGUF_TYPE_FLOAT32 || kv->type == RUV_GGUF_TYPE_FLOAT64)
    *out = kv->f;
  else if (is_unsigned (kv->type))
    *out = (double) kv->u;
  else if (is_signed (kv->type))
    *out = (double) kv->i;
  else
    return wrong_type (self, kv, "a number", error);
  return TRUE;
}

gboolean
ruv_gguf_get_bool (const RuvGguf *self,
                   const char    *key,
                   gboolean      *out,
                   GError       **error)
{
  const RuvGgufKv *kv;

  g_return_val_if_fail (self != NULL && out != NULL, FALSE);
  if ((kv = lookup (self, key)) == NULL)
    return FALSE;
  if (kv->type != RUV_GGUF_TYPE_BOOL)
    return wrong_type (self, kv, "bool", error);
  *out = kv->u != 0;
  return TRUE;
}

gboolean
ruv_gguf_get_string (const RuvGguf *self,
                     const char    *key,
                     const char   **out,
                     GError       **error)
{
  const RuvGgufKv *kv;

  g_return_val_if_fail (self != NULL && out != NULL, FALSE);
  if ((kv = lookup (self, key)) == NULL)
    return FALSE;
  if (kv->type != RUV_GGUF_TYPE_STRING)
    return wrong_type (self, kv, "string", error);
  *out = kv->str;
  return TRUE;
}

gboolean
ruv_gguf_get_array_info (const RuvGguf *self,
                         const char    *key,
                         RuvGgufType   *elem_type,
                         guint64       *len)
{
  const RuvGgufKv *kv;

  g_return_val_if_fail (self != NULL, FALSE);
  kv = lookup (self, key);
  if (kv == NULL || kv->type != RUV_GGUF_TYPE_ARRAY)
    return FALSE;
  if (elem_type != NULL)
    *elem_type = kv->elem_type;
  if (len != NULL)
    *len = kv->n;
  return TRUE;
}

const char *
ruv_gguf_get_array_string (const RuvGguf *self,
                           const char    *key,
                           guint64        i,
                           gsize         *len)
{
  const RuvGgufKv *kv;
  guint64 at;

  g_return_val_if_fail (self != NULL, NULL);
  kv = lookup (self, key);
  if (kv == NULL || kv->type != RUV_GGUF_TYPE_ARRAY || kv->elem_type != RUV_GGUF_TYPE_STRING
      || i >= kv->n)
    return NULL;
  /* Validated at parse time: the length and the bytes lie inside the file. */
  at = kv->str_offsets[i];
  if (len != NULL)
    *len = (gsize) load_u64 (self->data + at);
  return (const char *) self->data + at + 8;
}

/* Checks that key names an array of exactly len numeric elements; returns it. */
static const RuvGgufKv *
numeric_array (const RuvGguf *self,
               const char    *key,
               guint64        len,
               const char    *wanted,
               GError       **error)
{
  const RuvGgufKv *kv = lookup (self, key);

  if (kv == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL, "%s: metadata key '%s' is missing",
                   display_name (self), key != NULL ? key : "(null)");
      return NULL;
    }
  if (kv->type != RUV_GGUF_TYPE_ARRAY || kv->elem_type == RUV_GGUF_TYPE_STRING)
    {
      wrong_type (self, kv, wanted, error);
      return NULL;
    }
  if (kv->n != len)
    {
      set_error (self, error, "metadata key '%s': has %" G_GUINT64_FORMAT " elements, expected %"
                 G_GUINT64_FORMAT, kv->key, kv->n, len);
      return NULL;
    }
  return kv;
}

/* Element i of a numeric array as the scalar fields of a RuvGgufKv. */
static RuvGgufKv
array_element (const RuvGgufKv *kv,
               guint64          i)
{
  RuvGgufKv e = { 0 };

  e.type = kv->elem_type;
  set_scalar (&e, kv->elem_type, kv->elems + i * type_sizes[kv->elem_type]);
  return e;
}

gboolean
ruv_gguf_get_array_f32 (const RuvGguf *self,
                        const char    *key,
                        float         *out,
                        guint64        len,
                        GError       **error)
{
  const RuvGgufKv *kv;
  guint64 i;

  g_return_val_if_fail (self != NULL && (out != NULL || len == 0), FALSE);
  kv = numeric_array (self, key, len, "an array of numbers", error);
  if (kv == NULL)
    return FALSE;
  if (kv->elem_type == RUV_GGUF_TYPE_BOOL)
    return wrong_type (self, kv, "an array of numbers", error);
  for (i = 0; i < len; i++)
    {
      RuvGgufKv e = array_element (kv, i);

      if (e.type == RUV_GGUF_TYPE_FLOAT32 || e.type == RUV_GGUF_TYPE_FLOAT64)
        out[i] = (float) e.f;
      else if (is_unsigned (e.type))
        out[i] = (float) e.u;
      else
        out[i] = (float) e.i;
    }
  return TRUE;
}

gboolean
ruv_gguf_get_array_i32 (const RuvGguf *self,
                        const char    *key,
                        gint32        *out,
                        guint64        len,
                        GError       **error)
{
  const RuvGgufKv *kv;
  guint64 i;

  g_return_val_if_fail (self != NULL && (out != NULL || len == 0), FALSE);
  kv = numeric_array (self, key, len, "an array of integers", error);
  if (kv == NULL)
    return FALSE;
  if (kv->elem_type == RUV_GGUF_TYPE_FLOAT32 || kv->elem_type == RUV_GGUF_TYPE_FLOAT64)
    return wrong_type (self, kv, "an array of integers", error);
  for (i = 0; i < len; i++)
    {
      RuvGgufKv e = array_element (kv, i);

      if (is_signed (e.type) && e.i >= G_MININT32 && e.i <= G_MAXINT32)
        out[i] = (gint32) e.i;
      else if (!is_signed (e.type) && e.u <= G_MAXINT32)
        out[i] = (gint32) e.u;
      else
        {
          set_error (self, error, "metadata key '%s': element %" G_GUINT64_FORMAT " (%s) does "
                     "not fit in a 32-bit integer", kv->key, i,
                     is_signed (e.type) ? "negative or large" : "large");
          return FALSE;
        }
    }
  return TRUE;
}

/* --- tensors --- */

gsize
ruv_gguf_get_n_tensors (const RuvGguf *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->tensors->len;
}

const RuvGgufTensor *
ruv_gguf_get_tensor (const RuvGguf *self,
                     gsize          index)
{
  g_return_val_if_fail (self != NULL, NULL);
  if (index >= self->tensors->len)
    return NULL;
  return &g_array_index (self->tensors, RuvGgufTensor, index);
}

const RuvGgufTensor *
ruv_gguf_find_tensor (const RuvGguf *self,
                      const char    *name)
{
  gsize index;

  g_return_val_if_fail (self != NULL, NULL);
  if (name == NULL)
    return NULL;
  index = GPOINTER_TO_SIZE (g_hash_table_lookup (self->tensor_index, name));
  if (index == 0)
    return NULL;
  return &g_array_index (self->tensors, RuvGgufTensor, index - 1);
}
