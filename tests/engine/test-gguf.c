/* test-gguf.c — the GGUF writer and the distrustful parser: round trips of
 * every value type, arrays and tensor types, and the bad files of
 * shared/RELIABILITY.md section A (A1-A15 as they apply to the parser).
 * SPDX-License-Identifier: MIT
 *
 * Good files come from RuvGgufWriter; bad ones are hand-built byte by byte
 * (raw_* below) or cut and patched from good ones. Every parse gets a buffer
 * of exactly the file's size, so ASan sees any read past the end.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-gguf.h"
#include "ruv-gguf-writer.h"
#include "rk-types.h"

#define FILENAME "test.gguf"

/* --- helpers --- */

static RuvGguf *
parse_copy (const guint8 *data,
            gsize         len,
            guint8      **copy_out,
            GError      **error)
{
  /* An exact-size heap copy: a read past len is a heap overflow under ASan. */
  guint8 *copy = g_malloc (MAX (len, 1));
  RuvGguf *g;

  if (len > 0)
    memcpy (copy, data, len);
  g = ruv_gguf_parse (copy, len, FILENAME, error);
  *copy_out = copy;
  return g;
}

/* Parses bytes that must be refused with RUV_ERROR_MODEL naming FILENAME and
 * containing each of the given substrings (NULL-terminated list). */
static void
expect_error_v (const guint8 *data,
                gsize         len,
                const char   *first,
                va_list       args)
{
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *copy = NULL;
  g_autoptr(RuvGguf) g = parse_copy (data, len, &copy, &error);
  const char *s;

  g_assert_null (g);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  g_assert_true (g_str_has_prefix (error->message, FILENAME ": "));
  for (s = first; s != NULL; s = va_arg (args, const char *))
    if (strstr (error->message, s) == NULL)
      g_error ("error message \"%s\" lacks \"%s\"", error->message, s);
}

static void G_GNUC_NULL_TERMINATED
expect_error (GByteArray *b,
              const char *first,
              ...)
{
  va_list args;

  va_start (args, first);
  expect_error_v (b->data, b->len, first, args);
  va_end (args);
}

static void G_GNUC_NULL_TERMINATED
expect_error_bytes (GBytes     *bytes,
                    const char *first,
                    ...)
{
  va_list args;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  va_start (args, first);
  expect_error_v (data, len, first, args);
  va_end (args);
}

static RuvGguf *
parse_ok (GBytes  *bytes,
          guint8 **copy)
{
  g_autoptr(GError) error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  RuvGguf *g = parse_copy (data, len, copy, &error);

  g_assert_no_error (error);
  g_assert_nonnull (g);
  return g;
}

static GBytes *
to_bytes (RuvGgufWriter *w)
{
  g_autoptr(GError) error = NULL;
  GBytes *bytes = ruv_gguf_writer_to_bytes (w, &error);

  g_assert_no_error (error);
  g_assert_nonnull (bytes);
  return bytes;
}

/* Raw little-endian builders for hand-made files. */
static void
raw_u32 (GByteArray *b,
         guint32     v)
{
  v = GUINT32_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &v, 4);
}

static void
raw_u64 (GByteArray *b,
         guint64     v)
{
  v = GUINT64_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &v, 8);
}

static void
raw_str (GByteArray *b,
         const char *s)
{
  raw_u64 (b, strlen (s));
  g_byte_array_append (b, (const guint8 *) s, strlen (s));
}

static GByteArray *
raw_header (guint32 version,
            guint64 n_tensors,
            guint64 n_kv)
{
  GByteArray *b = g_byte_array_new ();

  g_byte_array_append (b, (const guint8 *) "GGUF", 4);
  raw_u32 (b, version);
  raw_u64 (b, n_tensors);
  raw_u64 (b, n_kv);
  return b;
}

static void
raw_kv_u32 (GByteArray *b,
            const char *key,
            guint32     v)
{
  raw_str (b, key);
  raw_u32 (b, RUV_GGUF_TYPE_UINT32);
  raw_u32 (b, v);
}

static void
raw_zeros (GByteArray *b,
           gsize       n)
{
  while (n-- > 0)
    g_byte_array_append (b, (const guint8 *) "", 1);
}

/* Pads to align and appends data_len zero bytes of tensor data. */
static void
raw_data (GByteArray *b,
          gsize       align,
          gsize       data_len)
{
  raw_zeros (b, (align - b->len % align) % align);
  raw_zeros (b, data_len);
}

static void
raw_tensor (GByteArray   *b,
            const char   *name,
            guint32       n_dims,
            const gint64 *ne,
            guint32       type,
            guint64       offset)
{
  guint32 d;

  raw_str (b, name);
  raw_u32 (b, n_dims);
  for (d = 0; d < n_dims; d++)
    raw_u64 (b, (guint64) ne[d]);
  raw_u32 (b, type);
  raw_u64 (b, offset);
}

/* A file with one tensor of the given shape and type and data_len bytes. */
static GByteArray *
one_tensor_file (guint32       n_dims,
                 const gint64 *ne,
                 guint32       type,
                 guint64       offset,
                 gsize         data_len)
{
  GByteArray *b = raw_header (3, 1, 0);

  raw_tensor (b, "t", n_dims, ne, type, offset);
  raw_data (b, 32, data_len);
  return b;
}

/* A small valid file with metadata and tensors whose last tensor ends the
 * file with no padding, so cutting it anywhere loses needed bytes. */
static GBytes *
make_small_file (void)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  const char *tokens[] = { "<s>", "a", "", "bc" };
  float scores[] = { 0.f, -1.f, -2.f, -3.f };
  gint64 ne_q[] = { 32, 1 };
  gint64 ne_f[] = { 4, 2 };
  guint8 q8[34] = { 0 };
  float f[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
  gboolean ok;

  ruv_gguf_writer_set_string (w, "general.architecture", "llama");
  ruv_gguf_writer_set_uint32 (w, "llama.block_count", 2);
  ruv_gguf_writer_set_bool (w, "x.flag", TRUE);
  ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.tokens", tokens, 4);
  ruv_gguf_writer_set_array_float32 (w, "tokenizer.ggml.scores", scores, 4);
  ok = ruv_gguf_writer_add_tensor (w, "q", RK_TYPE_Q8_0, 2, ne_q, q8, sizeof q8, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  ok = ruv_gguf_writer_add_tensor (w, "f", RK_TYPE_F32, 2, ne_f, f, sizeof f, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  return to_bytes (w);
}

/* --- round trips --- */

static void
test_roundtrip_scalars (void)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(RuvGguf) g = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *copy = NULL;
  static const char *const keys[] = {
    "k.u8", "k.i8", "k.u16", "k.i16", "k.u32", "k.i32", "k.f32", "k.bool", "k.str",
    "k.arr", "k.u64", "k.i64", "k.f64",
  };
  guint64 u = 0;
  gint64 i = 0;
  double f = 0;
  gboolean bval = FALSE;
  const char *s = NULL;
  gsize k;

  ruv_gguf_writer_set_uint8 (w, "k.u8", 250);
  ruv_gguf_writer_set_int8 (w, "k.i8", -120);
  ruv_gguf_writer_set_uint16 (w, "k.u16", 65000);
  ruv_gguf_writer_set_int16 (w, "k.i16", -32000);
  ruv_gguf_writer_set_uint32 (w, "k.u32", 4000000000u);
  ruv_gguf_writer_set_int32 (w, "k.i32", -2000000000);
  ruv_gguf_writer_set_float32 (w, "k.f32", 0.5f);
  ruv_gguf_writer_set_bool (w, "k.bool", TRUE);
  ruv_gguf_writer_set_string (w, "k.str", "héllo wörld");
  ruv_gguf_writer_set_array_int32 (w, "k.arr", (const gint32[]) { 1, 2 }, 2);
  ruv_gguf_writer_set_uint64 (w, "k.u64", G_MAXUINT64);
  ruv_gguf_writer_set_int64 (w, "k.i64", G_MININT64);
  ruv_gguf_writer_set_float64 (w, "k.f64", 1e300);
  ruv_gguf_writer_set_int16 (w, "k.pos", 5);
  bytes = to_bytes (w);
  g = parse_ok (bytes, &copy);

  g_assert_cmpuint (ruv_gguf_get_version (g), ==, 3);
  g_assert_cmpstr (ruv_gguf_get_filename (g), ==, FILENAME);
  g_assert_cmpuint (ruv_gguf_get_alignment (g), ==, 32);
  g_assert_cmpuint (ruv_gguf_get_n_kv (g), ==, RUV_GGUF_TYPE_COUNT + 1);
  g_assert_cmpuint (ruv_gguf_get_n_tensors (g), ==, 0);
  g_assert_cmpuint (ruv_gguf_get_data_offset (g) % 32, ==, 0);
  /* One key per type, in insertion order, each with its own type. */
  for (k = 0; k < G_N_ELEMENTS (keys); k++)
    {
      g_assert_cmpstr (ruv_gguf_get_key (g, k), ==, keys[k]);
      g_assert_true (ruv_gguf_has_key (g, keys[k]));
      g_assert_cmpint (ruv_gguf_get_kv_type (g, keys[k]), ==, (RuvGgufType) k);
    }
  g_assert_cmpstr (ruv_gguf_get_key (g, G_N_ELEMENTS (keys)), ==, "k.pos");
  g_assert_null (ruv_gguf_get_key (g, G_N_ELEMENTS (keys) + 1));
  g_assert_false (ruv_gguf_has_key (g, "k.none"));
  g_assert_cmpint (ruv_gguf_get_kv_type (g, "k.none"), ==, RUV_GGUF_TYPE_COUNT);

  g_assert_true (ruv_gguf_get_uint (g, "k.u8", &u, &error));
  g_assert_cmpuint (u, ==, 250);
  g_assert_true (ruv_gguf_get_int (g, "k.i8", &i, &error));
  g_assert_cmpint (i, ==, -120);
  g_assert_true (ruv_gguf_get_uint (g, "k.u16", &u, &error));
  g_assert_cmpuint (u, ==, 65000);
  g_assert_true (ruv_gguf_get_int (g, "k.i16", &i, &error));
  g_assert_cmpint (i, ==, -32000);
  g_assert_true (ruv_gguf_get_uint (g, "k.u32", &u, &error));
  g_assert_cmpuint (u, ==, 4000000000u);
  g_assert_true (ruv_gguf_get_int (g, "k.u32", &i, &error));
  g_assert_cmpint (i, ==, 4000000000);
  g_assert_true (ruv_gguf_get_int (g, "k.i32", &i, &error));
  g_assert_cmpint (i, ==, -2000000000);
  g_assert_true (ruv_gguf_get_float (g, "k.f32", &f, &error));
  g_assert_cmpfloat (f, ==, 0.5);
  g_assert_true (ruv_gguf_get_bool (g, "k.bool", &bval, &error));
  g_assert_true (bval);
  g_assert_true (ruv_gguf_get_string (g, "k.str", &s, &error));
  g_assert_cmpstr (s, ==, "héllo wörld");
  g_assert_true (ruv_gguf_get_uint (g, "k.u64", &u, &error));
  g_assert_cmpuint (u, ==, G_MAXUINT64);
  g_assert_true (ruv_gguf_get_int (g, "k.i64", &i, &error));
  g_assert_cmpint (i, ==, G_MININT64);
  g_assert_true (ruv_gguf_get_float (g, "k.f64", &f, &error));
  g_assert_cmpfloat (f, ==, 1e300);
  g_assert_true (ruv_gguf_get_float (g, "k.i16", &f, &error));
  g_assert_cmpfloat (f, ==, -32000.0);
  g_assert_true (ruv_gguf_get_float (g, "k.u16", &f, &error));
  g_assert_cmpfloat (f, ==, 65000.0);
  g_assert_true (ruv_gguf_get_uint (g, "k.pos", &u, &error));
  g_assert_cmpuint (u, ==, 5);
  g_assert_no_error (error);
}

static void
expect_getter_error (gboolean    ok,
                     GError    **error,
                     const char *substring)
{
  g_assert_false (ok);
  g_assert_error (*error, RUV_ERROR, RUV_ERROR_MODEL);
  if (strstr ((*error)->message, substring) == NULL
      || !g_str_has_prefix ((*error)->message, FILENAME ": "))
    g_error ("getter error \"%s\" lacks \"%s\"", (*error)->message, substring);
  g_clear_error (error);
}

static void
test_getter_errors (void)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(RuvGguf) g = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *copy = NULL;
  guint64 u = 7;
  gint64 i = 7;
  double f = 7;
  gboolean b = FALSE;
  const char *s = NULL;

  ruv_gguf_writer_set_int32 (w, "neg", -1);
  ruv_gguf_writer_set_uint64 (w, "big", G_MAXUINT64);
  ruv_gguf_writer_set_string (w, "str", "x");
  ruv_gguf_writer_set_float32 (w, "flt", 1.5f);
  ruv_gguf_writer_set_uint8 (w, "byte", 1);
  ruv_gguf_writer_set_array_int32 (w, "arr", (const gint32[]) { 1 }, 1);
  bytes = to_bytes (w);
  g = parse_ok (bytes, &copy);

  /* Absent: FALSE, no error, output untouched. */
  g_assert_false (ruv_gguf_get_uint (g, "absent", &u, &error));
  g_assert_false (ruv_gguf_get_int (g, "absent", &i, &error));
  g_assert_false (ruv_gguf_get_float (g, "absent", &f, &error));
  g_assert_false (ruv_gguf_get_bool (g, "absent", &b, &error));
  g_assert_false (ruv_gguf_get_string (g, "absent", &s, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (u, ==, 7);
  g_assert_cmpint (i, ==, 7);

  expect_getter_error (ruv_gguf_get_uint (g, "neg", &u, &error), &error, "'neg': value -1");
  expect_getter_error (ruv_gguf_get_int (g, "big", &i, &error), &error, "'big'");
  expect_getter_error (ruv_gguf_get_uint (g, "str", &u, &error), &error, "has type string");
  expect_getter_error (ruv_gguf_get_uint (g, "flt", &u, &error), &error, "has type f32");
  expect_getter_error (ruv_gguf_get_int (g, "flt", &i, &error), &error, "'flt'");
  expect_getter_error (ruv_gguf_get_float (g, "str", &f, &error), &error, "'str'");
  expect_getter_error (ruv_gguf_get_bool (g, "byte", &b, &error), &error, "has type u8");
  expect_getter_error (ruv_gguf_get_string (g, "flt", &s, &error), &error, "'flt'");
  expect_getter_error (ruv_gguf_get_string (g, "arr", &s, &error), &error, "array of i32");
  expect_getter_error (ruv_gguf_get_uint (g, "arr", &u, &error), &error, "'arr'");
  g_assert_cmpuint (u, ==, 7);
  g_assert_cmpint (i, ==, 7);
  g_assert_null (s);
  /* Not arrays. */
  g_assert_false (ruv_gguf_get_array_info (g, "str", NULL, NULL));
  g_assert_null (ruv_gguf_get_array_string (g, "str", 0, NULL));
}

static void
test_roundtrip_arrays (void)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(RuvGguf) g = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *copy = NULL;
  const char *strs[] = { "<unk>", "", "hello", "\xe2\x96\x81world" };
  guint8 u8s[] = { 0, 255, 7 };
  gint8 i8s[] = { -128, 127, 0 };
  guint16 u16s[] = { 0, 65535, 9 };
  gint16 i16s[] = { -32768, 32767, -1 };
  guint32 u32s[] = { 0, 2147483647u, 3 };
  guint32 u32_big[] = { 1, 4294967295u };
  gint32 i32s[] = { G_MININT32, G_MAXINT32, -5 };
  guint64 u64s[] = { 0, 1000, 2 };
  gint64 i64s[] = { -1000, 1000, 3 };
  float f32s[] = { 0.25f, -1e30f, 3.f };
  double f64s[] = { 0.125, -2.5, 1e10 };
  guint8 bools[] = { 1, 0, 1 };
  gint32 out_i[3];
  float out_f[3];
  RuvGgufType et = RUV_GGUF_TYPE_COUNT;
  guint64 n = 0;
  gsize len = 0;
  const char *s;
  guint k;

  ruv_gguf_writer_set_array_string (w, "a.str", strs, G_N_ELEMENTS (strs));
  ruv_gguf_writer_set_array (w, "a.u8", RUV_GGUF_TYPE_UINT8, u8s, 3);
  ruv_gguf_writer_set_array (w, "a.i8", RUV_GGUF_TYPE_INT8, i8s, 3);
  ruv_gguf_writer_set_array (w, "a.u16", RUV_GGUF_TYPE_UINT16, u16s, 3);
  ruv_gguf_writer_set_array (w, "a.i16", RUV_GGUF_TYPE_INT16, i16s, 3);
  ruv_gguf_writer_set_array (w, "a.u32", RUV_GGUF_TYPE_UINT32, u32s, 3);
  ruv_gguf_writer_set_array (w, "a.u32big", RUV_GGUF_TYPE_UINT32, u32_big, 2);
  ruv_gguf_writer_set_array_int32 (w, "a.i32", i32s, 3);
  ruv_gguf_writer_set_array (w, "a.u64", RUV_GGUF_TYPE_UINT64, u64s, 3);
  ruv_gguf_writer_set_array (w, "a.i64", RUV_GGUF_TYPE_INT64, i64s, 3);
  ruv_gguf_writer_set_array_float32 (w, "a.f32", f32s, 3);
  ruv_gguf_writer_set_array (w, "a.f64", RUV_GGUF_TYPE_FLOAT64, f64s, 3);
  ruv_gguf_writer_set_array (w, "a.bool", RUV_GGUF_TYPE_BOOL, bools, 3);
  ruv_gguf_writer_set_array_float32 (w, "a.empty", NULL, 0);
  ruv_gguf_writer_set_array_string (w, "a.nostr", NULL, 0);
  bytes = to_bytes (w);
  g = parse_ok (bytes, &copy);

  g_assert_true (ruv_gguf_get_array_info (g, "a.str", &et, &n));
  g_assert_cmpint (et, ==, RUV_GGUF_TYPE_STRING);
  g_assert_cmpuint (n, ==, 4);
  for (k = 0; k < G_N_ELEMENTS (strs); k++)
    {
      s = ruv_gguf_get_array_string (g, "a.str", k, &len);
      g_assert_nonnull (s);
      g_assert_cmpuint (len, ==, strlen (strs[k]));
      g_assert_true (memcmp (s, strs[k], len) == 0);
    }
  g_assert_null (ruv_gguf_get_array_string (g, "a.str", 4, &len));
  g_assert_null (ruv_gguf_get_array_string (g, "a.u8", 0, &len));
  g_assert_null (ruv_gguf_get_array_string (g, "a.absent", 0, &len));

  g_assert_true (ruv_gguf_get_array_i32 (g, "a.u8", out_i, 3, &error));
  g_assert_cmpint (out_i[1], ==, 255);
  g_assert_true (ruv_gguf_get_array_i32 (g, "a.i8", out_i, 3, &error));
  g_assert_cmpint (out_i[0], ==, -128);
  g_assert_true (ruv_gguf_get_array_i32 (g, "a.u16", out_i, 3, &error));
  g_assert_cmpint (out_i[1], ==, 65535);
  g_assert_true (ruv_gguf_get_array_i32 (g, "a.i16", out_i, 3, &error));
  g_assert_cmpint (out_i[0], ==, -32768);
  g_assert_true (ruv_gguf_get_array_i32 (g, "a.u32", out_i, 3, &error));
  g_assert_cmpint (out_i[1], ==, G_MAXINT32);
  g_assert_true (ruv_gguf_get_array_i32 (g, "a.i32", out_i, 3, &error));
  g_assert_cmpint (out_i[0], ==, G_MININT32);
  g_assert_cmpint (out_i[2], ==, -5);
  g_assert_true (ruv_gguf_get_array_i32 (g, "a.u64", out_i, 3, &error));
  g_assert_cmpint (out_i[1], ==, 1000);
  g_assert_true (ruv_gguf_get_array_i32 (g, "a.i64", out_i, 3, &error));
  g_assert_cmpint (out_i[0], ==, -1000);
  g_assert_true (ruv_gguf_get_array_i32 (g, "a.bool", out_i, 3, &error));
  g_assert_cmpint (out_i[0], ==, 1);
  g_assert_cmpint (out_i[1], ==, 0);
  g_assert_true (ruv_gguf_get_array_f32 (g, "a.f32", out_f, 3, &error));
  g_assert_cmpfloat (out_f[0], ==, 0.25f);
  g_assert_cmpfloat (out_f[1], ==, -1e30f);
  g_assert_true (ruv_gguf_get_array_f32 (g, "a.f64", out_f, 3, &error));
  g_assert_cmpfloat (out_f[1], ==, -2.5f);
  g_assert_true (ruv_gguf_get_array_f32 (g, "a.u16", out_f, 3, &error));
  g_assert_cmpfloat (out_f[1], ==, 65535.f);
  g_assert_true (ruv_gguf_get_array_f32 (g, "a.i16", out_f, 3, &error));
  g_assert_cmpfloat (out_f[0], ==, -32768.f);
  g_assert_true (ruv_gguf_get_array_f32 (g, "a.empty", NULL, 0, &error));
  g_assert_true (ruv_gguf_get_array_info (g, "a.nostr", &et, &n));
  g_assert_cmpuint (n, ==, 0);
  g_assert_null (ruv_gguf_get_array_string (g, "a.nostr", 0, &len));
  g_assert_no_error (error);

  /* Conversions that do not fit, the wrong kind or the wrong length. */
  g_assert_false (ruv_gguf_get_array_i32 (g, "a.u32big", out_i, 2, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  g_assert_nonnull (strstr (error->message, "'a.u32big': element 1"));
  g_clear_error (&error);
  g_assert_false (ruv_gguf_get_array_i32 (g, "a.f32", out_i, 3, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  g_clear_error (&error);
  g_assert_false (ruv_gguf_get_array_f32 (g, "a.str", out_f, 4, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  g_assert_nonnull (strstr (error->message, "'a.str': is an array of string"));
  g_clear_error (&error);
  g_assert_false (ruv_gguf_get_array_f32 (g, "a.bool", out_f, 3, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  g_clear_error (&error);
  g_assert_false (ruv_gguf_get_array_f32 (g, "a.f32", out_f, 2, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  g_assert_nonnull (strstr (error->message, "has 3 elements, expected 2"));
  g_clear_error (&error);
  g_assert_false (ruv_gguf_get_array_f32 (g, "a.absent", out_f, 2, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  g_clear_error (&error);
}

/* A 150k-token vocabulary: parsed by indexing, read back exactly. */
static void
test_large_vocab (void)
{
  const guint n = 150000;
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(RuvGguf) g = NULL;
  g_autofree guint8 *copy = NULL;
  guint64 len = 0;
  guint i;

  for (i = 0; i < n; i++)
    g_ptr_array_add (tokens, g_strdup_printf ("tok%u", i));
  ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.tokens",
                                    (const char *const *) tokens->pdata, n);
  bytes = to_bytes (w);
  g = parse_ok (bytes, &copy);
  g_assert_true (ruv_gguf_get_array_info (g, "tokenizer.ggml.tokens", NULL, &len));
  g_assert_cmpuint (len, ==, n);
  for (i = 0; i < n; i += 7919)
    {
      gsize slen;
      const char *s = ruv_gguf_get_array_string (g, "tokenizer.ggml.tokens", i, &slen);

      g_assert_cmpuint (slen, ==, strlen (tokens->pdata[i]));
      g_assert_true (memcmp (s, tokens->pdata[i], slen) == 0);
    }
}

static void
fill_pattern (guint8 *p,
              gsize   n,
              guint   seed)
{
  gsize i;

  for (i = 0; i < n; i++)
    p[i] = (guint8) (i * 31 + seed);
}

static void
check_tensors (guint32 alignment)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(RuvGguf) g = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *copy = NULL;
  static const struct
  {
    const char *name;
    rk_type     type;
    guint       n_dims;
    gint64      ne[4];
  } specs[] = {
    { "f32.1d", RK_TYPE_F32, 1, { 5 } },
    { "f16.2d", RK_TYPE_F16, 2, { 3, 7 } },
    { "q4_0.2d", RK_TYPE_Q4_0, 2, { 64, 3 } },
    { "q8_0.3d", RK_TYPE_Q8_0, 3, { 32, 2, 2 } },
    { "q4_K.2d", RK_TYPE_Q4_K, 2, { 256, 2 } },
    { "q6_K.1d", RK_TYPE_Q6_K, 1, { 512 } },
    { "bf16.4d", RK_TYPE_BF16, 4, { 2, 3, 1, 2 } },
    { "q2_K.unsupported", RK_TYPE_Q2_K, 2, { 256, 1 } },
    { "empty", RK_TYPE_F32, 2, { 4, 0 } },
  };
  guint k;

  if (alignment != 32)
    ruv_gguf_writer_set_uint32 (w, "general.alignment", alignment);
  for (k = 0; k < G_N_ELEMENTS (specs); k++)
    {
      gsize size = rk_row_size (specs[k].type, specs[k].ne[0]);
      g_autofree guint8 *data = NULL;
      guint d;

      for (d = 1; d < specs[k].n_dims; d++)
        size *= (gsize) specs[k].ne[d];
      data = g_malloc (MAX (size, 1));
      fill_pattern (data, size, k);
      g_assert_true (ruv_gguf_writer_add_tensor (w, specs[k].name, specs[k].type,
                                                 specs[k].n_dims, specs[k].ne,
                                                 data, size, &error));
      g_assert_no_error (error);
    }
  bytes = to_bytes (w);
  g = parse_ok (bytes, &copy);

  g_assert_cmpuint (ruv_gguf_get_alignment (g), ==, alignment);
  g_assert_cmpuint (ruv_gguf_get_data_offset (g) % alignment, ==, 0);
  g_assert_cmpuint (ruv_gguf_get_n_tensors (g), ==, G_N_ELEMENTS (specs));
  for (k = 0; k < G_N_ELEMENTS (specs); k++)
    {
      const RuvGgufTensor *t = ruv_gguf_get_tensor (g, k);
      g_autofree guint8 *want = NULL;
      guint d;

      g_assert_nonnull (t);
      g_assert_true (ruv_gguf_find_tensor (g, specs[k].name) == t);
      g_assert_cmpstr (t->name, ==, specs[k].name);
      g_assert_cmpint (t->type, ==, specs[k].type);
      g_assert_cmpuint (t->n_dims, ==, specs[k].n_dims);
      for (d = 0; d < 4; d++)
        g_assert_cmpint (t->ne[d], ==, d < specs[k].n_dims ? specs[k].ne[d] : 1);
      g_assert_cmpuint (t->offset % alignment, ==, 0);
      g_assert_true (t->data == copy + ruv_gguf_get_data_offset (g) + t->offset);
      want = g_malloc (MAX (t->size, 1));
      fill_pattern (want, t->size, k);
      g_assert_true (memcmp (t->data, want, t->size) == 0);
    }
  g_assert_cmpuint (ruv_gguf_find_tensor (g, "empty")->size, ==, 0);
  g_assert_cmpuint (ruv_gguf_find_tensor (g, "q4_K.2d")->size, ==, 2 * 144);
  g_assert_null (ruv_gguf_get_tensor (g, G_N_ELEMENTS (specs)));
  g_assert_null (ruv_gguf_find_tensor (g, "missing"));
}

static void
test_roundtrip_tensors (void)
{
  check_tensors (32);
}

static void
test_roundtrip_alignment (void)
{
  check_tensors (64);
  check_tensors (8);
  check_tensors (4096);
}

/* --- writer --- */

static void
test_writer_replace_key (void)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(RuvGguf) g = NULL;
  g_autofree guint8 *copy = NULL;
  guint64 u = 0;

  ruv_gguf_writer_set_uint32 (w, "a", 1);
  ruv_gguf_writer_set_uint32 (w, "b", 2);
  ruv_gguf_writer_set_uint32 (w, "c", 3);
  ruv_gguf_writer_set_uint64 (w, "a", 10);
  bytes = to_bytes (w);
  g = parse_ok (bytes, &copy);
  g_assert_cmpuint (ruv_gguf_get_n_kv (g), ==, 3);
  g_assert_cmpstr (ruv_gguf_get_key (g, 0), ==, "a");
  g_assert_cmpstr (ruv_gguf_get_key (g, 2), ==, "c");
  g_assert_cmpint (ruv_gguf_get_kv_type (g, "a"), ==, RUV_GGUF_TYPE_UINT64);
  g_assert_true (ruv_gguf_get_uint (g, "a", &u, NULL));
  g_assert_cmpuint (u, ==, 10);
}

static void
test_writer_bad_tensors (void)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *long_name = g_strnfill (64, 'n');
  gint64 ne[] = { 32, 2 };
  gint64 ne_bad[] = { 33, 2 };
  gint64 ne_neg[] = { 32, -2 };
  guint8 data[68] = { 0 };

  g_assert_false (ruv_gguf_writer_add_tensor (w, "t", RK_TYPE_Q8_0, 2, ne, data, 67, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_false (ruv_gguf_writer_add_tensor (w, "t", RK_TYPE_Q8_0, 2, ne_bad, data, 68,
                                              &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_false (ruv_gguf_writer_add_tensor (w, "t", RK_TYPE_Q8_0, 2, ne_neg, data, 68,
                                              &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_false (ruv_gguf_writer_add_tensor (w, "t", (rk_type) 4, 2, ne, data, 68, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_false (ruv_gguf_writer_add_tensor (w, "t", RK_TYPE_Q8_0, 5, ne, data, 68, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_false (ruv_gguf_writer_add_tensor (w, long_name, RK_TYPE_Q8_0, 2, ne, data, 68,
                                              &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_true (ruv_gguf_writer_add_tensor (w, "t", RK_TYPE_Q8_0, 2, ne, data, 68, &error));
  g_assert_no_error (error);
  g_assert_false (ruv_gguf_writer_add_tensor (w, "t", RK_TYPE_Q8_0, 2, ne, data, 68, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);

  /* A bad general.alignment is refused when writing, not silently replaced. */
  ruv_gguf_writer_set_uint32 (w, "general.alignment", 48);
  g_assert_null (ruv_gguf_writer_to_bytes (w, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  ruv_gguf_writer_set_string (w, "general.alignment", "32");
  g_assert_null (ruv_gguf_writer_to_bytes (w, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
}

static void
test_writer_write_file (void)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) expected = NULL;
  g_autofree char *dir = g_dir_make_tmp ("test-gguf-XXXXXX", &error);
  g_autofree char *path = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *missing = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(RuvGguf) g = NULL;
  gint64 ne[] = { 8 };
  float data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
  float last = 0;
  gsize len = 0;

  g_assert_no_error (error);
  path = g_build_filename (dir, "model.gguf", NULL);
  tmp = g_strconcat (path, ".tmp", NULL);
  missing = g_build_filename (dir, "no", "such", "dir.gguf", NULL);
  ruv_gguf_writer_set_string (w, "general.name", "tiny");
  g_assert_true (ruv_gguf_writer_add_tensor (w, "w", RK_TYPE_F32, 1, ne, data, sizeof data,
                                             &error));
  /* Write over an older file: the result is the new file, no .tmp remains. */
  g_assert_true (g_file_set_contents (path, "old", -1, &error));
  g_assert_true (ruv_gguf_writer_write_file (w, path, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (tmp, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_get_contents (path, &contents, &len, &error));
  expected = to_bytes (w);
  g_assert_cmpmem (contents, len, g_bytes_get_data (expected, NULL), g_bytes_get_size (expected));
  g = ruv_gguf_parse ((const guint8 *) contents, len, path, &error);
  g_assert_no_error (error);
  memcpy (&last, ruv_gguf_find_tensor (g, "w")->data + 7 * sizeof (float), sizeof last);
  g_assert_cmpfloat (last, ==, 8.f);

  g_assert_false (ruv_gguf_writer_write_file (w, missing, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_IO);
  g_clear_error (&error);

  g_unlink (path);
  g_rmdir (dir);
}

/* --- bad files: header (A1-A4) --- */

static void
test_bad_short (void)
{
  g_autoptr(GByteArray) b = g_byte_array_new ();
  g_autoptr(GByteArray) h = raw_header (3, 0, 0);

  expect_error (b, "header", "empty", NULL);
  g_byte_array_append (b, (const guint8 *) "GGU", 3);
  expect_error (b, "header", "too short", NULL);
  g_byte_array_set_size (h, 6);
  expect_error (h, "header: version", "truncated", NULL);
  g_byte_array_set_size (h, 20);
  expect_error (h, "header: n_kv", "truncated", NULL);
}

static void
test_bad_magic (void)
{
  static const char *const starts[] = {
    "GGML", "FUGG", "<!DOCTYPE html><html><body>404 Not Found</body></html>",
    "\x08\x01\x00\x00\x00\x00\x00\x00{\"__metadata__\":{}}",
  };
  guint k;

  for (k = 0; k < G_N_ELEMENTS (starts); k++)
    {
      g_autoptr(GByteArray) b = g_byte_array_new ();

      g_byte_array_append (b, (const guint8 *) starts[k], strlen (starts[k]));
      raw_zeros (b, 32);
      expect_error (b, "magic", "not a GGUF file", NULL);
    }
}

static void
test_bad_version (void)
{
  static const struct
  {
    guint32     version;
    const char *msg;
  } cases[] = {
    { 0, "version 0 is not supported" },
    { 1, "v1 is no longer supported" },
    { 4, "version 4 is not supported" },
    { 0x03000000, "big-endian" },
    { 0x00020000, "byte-swapped" },
    { 0xffffffff, "version 4294967295" },
  };
  guint k;

  for (k = 0; k < G_N_ELEMENTS (cases); k++)
    {
      g_autoptr(GByteArray) b = raw_header (cases[k].version, 0, 0);

      raw_zeros (b, 64);
      expect_error (b, "header", cases[k].msg, NULL);
    }
  /* Version 2 is read like 3. */
  {
    g_autoptr(GByteArray) b = raw_header (2, 0, 1);
    g_autoptr(GError) error = NULL;
    g_autoptr(RuvGguf) g = NULL;

    raw_kv_u32 (b, "a.b", 5);
    g = ruv_gguf_parse (b->data, b->len, FILENAME, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (ruv_gguf_get_version (g), ==, 2);
  }
}

static void
test_bad_counts (void)
{
  static const guint64 counts[] = {
    G_MAXUINT64, G_GUINT64_CONSTANT (1) << 62, G_GUINT64_CONSTANT (1) << 40, 1000, 8,
  };
  guint k;

  for (k = 0; k < G_N_ELEMENTS (counts); k++)
    {
      g_autoptr(GByteArray) t = raw_header (3, counts[k], 0);
      g_autoptr(GByteArray) kv = raw_header (3, 0, counts[k]);
      g_autoptr(GByteArray) both = raw_header (3, 2, 2);

      raw_zeros (t, 100);
      raw_zeros (kv, 100);
      raw_zeros (both, 80);
      expect_error (t, "header: n_tensors", "cannot fit", NULL);
      expect_error (kv, "header: n_kv", "cannot fit", NULL);
      expect_error (both, "header", "cannot fit", NULL);
    }
}

/* --- bad metadata (A5-A9) --- */

static void
test_bad_keys (void)
{
  g_autoptr(GByteArray) huge = raw_header (3, 0, 1);
  g_autoptr(GByteArray) past = raw_header (3, 0, 1);
  g_autoptr(GByteArray) too_long = raw_header (3, 0, 1);
  g_autoptr(GByteArray) empty = raw_header (3, 0, 1);
  g_autoptr(GByteArray) non_ascii = raw_header (3, 0, 1);
  g_autoptr(GByteArray) nul = raw_header (3, 0, 1);
  g_autoptr(GByteArray) dup = raw_header (3, 0, 3);

  raw_u64 (huge, G_MAXUINT64);
  raw_zeros (huge, 64);
  expect_error (huge, "metadata key #0", "length 18446744073709551615", NULL);

  raw_u64 (past, 200);
  raw_zeros (past, 64);
  expect_error (past, "metadata key #0", "length 200", "bytes left", NULL);

  raw_u64 (too_long, 70000);
  raw_zeros (too_long, 70010);
  expect_error (too_long, "metadata key #0", "over the limit of 65535", NULL);

  raw_u64 (empty, 0);
  raw_u32 (empty, RUV_GGUF_TYPE_UINT32);
  raw_u32 (empty, 1);
  expect_error (empty, "metadata key #0", "empty", NULL);

  raw_str (non_ascii, "gen\xc3\xa9ral.name");
  raw_u32 (non_ascii, RUV_GGUF_TYPE_UINT32);
  raw_u32 (non_ascii, 1);
  expect_error (non_ascii, "metadata key #0", "printable ASCII", NULL);

  raw_u64 (nul, 3);
  g_byte_array_append (nul, (const guint8 *) "a\0b", 3);
  raw_u32 (nul, RUV_GGUF_TYPE_UINT32);
  raw_u32 (nul, 1);
  expect_error (nul, "metadata key #0", "printable ASCII", NULL);

  raw_kv_u32 (dup, "a.x", 1);
  raw_kv_u32 (dup, "a.y", 1);
  raw_kv_u32 (dup, "a.x", 2);
  expect_error (dup, "metadata key 'a.x'", "appears twice", NULL);
}

static void
test_bad_value_types (void)
{
  static const guint32 bad_types[] = { RUV_GGUF_TYPE_COUNT, 255, G_MAXUINT32 };
  guint k;

  for (k = 0; k < G_N_ELEMENTS (bad_types); k++)
    {
      g_autoptr(GByteArray) b = raw_header (3, 0, 1);
      g_autoptr(GByteArray) a = raw_header (3, 0, 1);
      g_autofree char *msg = g_strdup_printf ("unknown value type %u", bad_types[k]);
      g_autofree char *amsg = g_strdup_printf ("unknown array element type %u", bad_types[k]);

      raw_str (b, "k.t");
      raw_u32 (b, bad_types[k]);
      raw_zeros (b, 16);
      expect_error (b, "metadata key 'k.t'", msg, NULL);

      raw_str (a, "k.a");
      raw_u32 (a, RUV_GGUF_TYPE_ARRAY);
      raw_u32 (a, bad_types[k]);
      raw_u64 (a, 1);
      raw_zeros (a, 16);
      expect_error (a, "metadata key 'k.a'", amsg, NULL);
    }
  {
    g_autoptr(GByteArray) nested = raw_header (3, 0, 1);

    raw_str (nested, "k.nested");
    raw_u32 (nested, RUV_GGUF_TYPE_ARRAY);
    raw_u32 (nested, RUV_GGUF_TYPE_ARRAY);
    raw_u64 (nested, 1);
    raw_u32 (nested, RUV_GGUF_TYPE_UINT8);
    raw_u64 (nested, 1);
    raw_zeros (nested, 8);
    expect_error (nested, "metadata key 'k.nested'", "arrays of arrays", NULL);
  }
}

static void
test_bad_arrays_and_strings (void)
{
  g_autoptr(GByteArray) huge = raw_header (3, 0, 1);
  g_autoptr(GByteArray) limit = raw_header (3, 0, 1);
  g_autoptr(GByteArray) wrap = raw_header (3, 0, 1);
  g_autoptr(GByteArray) strs = raw_header (3, 0, 1);
  g_autoptr(GByteArray) elem = raw_header (3, 0, 1);
  g_autoptr(GByteArray) elem_past = raw_header (3, 0, 1);
  g_autoptr(GByteArray) sval = raw_header (3, 0, 1);
  g_autoptr(GByteArray) sval_past = raw_header (3, 0, 1);

  /* A8: 2^40 u8 elements with 100 bytes left. */
  raw_str (huge, "a.huge");
  raw_u32 (huge, RUV_GGUF_TYPE_ARRAY);
  raw_u32 (huge, RUV_GGUF_TYPE_UINT8);
  raw_u64 (huge, G_GUINT64_CONSTANT (1) << 29);
  raw_zeros (huge, 100);
  expect_error (huge, "metadata key 'a.huge'", "536870912 u8 elements", "bytes left", NULL);

  raw_str (limit, "a.limit");
  raw_u32 (limit, RUV_GGUF_TYPE_ARRAY);
  raw_u32 (limit, RUV_GGUF_TYPE_UINT8);
  raw_u64 (limit, G_GUINT64_CONSTANT (1) << 40);
  raw_zeros (limit, 100);
  expect_error (limit, "metadata key 'a.limit'", "over the limit", NULL);

  /* count * 8 would wrap a 64-bit size if multiplied unchecked. */
  raw_str (wrap, "a.wrap");
  raw_u32 (wrap, RUV_GGUF_TYPE_ARRAY);
  raw_u32 (wrap, RUV_GGUF_TYPE_UINT64);
  raw_u64 (wrap, G_GUINT64_CONSTANT (1) << 61);
  raw_zeros (wrap, 100);
  expect_error (wrap, "metadata key 'a.wrap'", NULL);

  /* A string array whose count * 8 exceeds what is left. */
  raw_str (strs, "a.strs");
  raw_u32 (strs, RUV_GGUF_TYPE_ARRAY);
  raw_u32 (strs, RUV_GGUF_TYPE_STRING);
  raw_u64 (strs, 13);
  raw_zeros (strs, 100);
  expect_error (strs, "metadata key 'a.strs'", "13 strings", NULL);

  /* An element whose length is UINT64_MAX, and one past the end. */
  raw_str (elem, "a.elem");
  raw_u32 (elem, RUV_GGUF_TYPE_ARRAY);
  raw_u32 (elem, RUV_GGUF_TYPE_STRING);
  raw_u64 (elem, 2);
  raw_str (elem, "ok");
  raw_u64 (elem, G_MAXUINT64);
  raw_zeros (elem, 16);
  expect_error (elem, "metadata key 'a.elem'", "string element 1", NULL);

  raw_str (elem_past, "a.elem");
  raw_u32 (elem_past, RUV_GGUF_TYPE_ARRAY);
  raw_u32 (elem_past, RUV_GGUF_TYPE_STRING);
  raw_u64 (elem_past, 2);
  raw_u64 (elem_past, 4);
  raw_zeros (elem_past, 4);
  raw_u64 (elem_past, 50);
  raw_zeros (elem_past, 4);
  expect_error (elem_past, "metadata key 'a.elem'", "string element 1", NULL);

  raw_str (sval, "s.val");
  raw_u32 (sval, RUV_GGUF_TYPE_STRING);
  raw_u64 (sval, G_MAXUINT64);
  raw_zeros (sval, 16);
  expect_error (sval, "metadata key 's.val'", "over the limit", NULL);

  raw_str (sval_past, "s.val");
  raw_u32 (sval_past, RUV_GGUF_TYPE_STRING);
  raw_u64 (sval_past, 17);
  raw_zeros (sval_past, 16);
  expect_error (sval_past, "metadata key 's.val'", "length 17", NULL);
}

static void
test_bad_alignment (void)
{
  static const guint32 bad[] = { 0, 4, 13, 48, 0x80000000u, 1u << 21 };
  guint k;

  for (k = 0; k < G_N_ELEMENTS (bad); k++)
    {
      g_autoptr(GByteArray) b = raw_header (3, 0, 1);

      raw_kv_u32 (b, "general.alignment", bad[k]);
      expect_error (b, "general.alignment", "power of two", NULL);
    }
  {
    g_autoptr(GByteArray) i32 = raw_header (3, 0, 1);
    g_autoptr(GByteArray) str = raw_header (3, 0, 1);
    g_autoptr(GByteArray) u64 = raw_header (3, 0, 1);

    raw_str (i32, "general.alignment");
    raw_u32 (i32, RUV_GGUF_TYPE_INT32);
    raw_u32 (i32, 32);
    expect_error (i32, "general.alignment", "has type i32, must be u32", NULL);
    raw_str (str, "general.alignment");
    raw_u32 (str, RUV_GGUF_TYPE_STRING);
    raw_str (str, "32");
    expect_error (str, "general.alignment", "has type string", NULL);
    raw_str (u64, "general.alignment");
    raw_u32 (u64, RUV_GGUF_TYPE_UINT64);
    raw_u64 (u64, 32);
    expect_error (u64, "general.alignment", "has type u64", NULL);
  }
}

/* --- bad tensor infos (A10-A14) --- */

static void
test_bad_tensor_names (void)
{
  gint64 ne[] = { 8 };
  g_autofree char *name64 = g_strnfill (64, 'x');
  g_autofree char *name63 = g_strnfill (63, 'x');
  g_autoptr(GByteArray) too_long = raw_header (3, 1, 0);
  g_autoptr(GByteArray) longest = raw_header (3, 1, 0);
  g_autoptr(GByteArray) empty = raw_header (3, 1, 0);
  g_autoptr(GByteArray) ctrl = raw_header (3, 1, 0);
  g_autoptr(GByteArray) dup = raw_header (3, 2, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGguf) g = NULL;

  raw_tensor (too_long, name64, 1, ne, RK_TYPE_F32, 0);
  raw_data (too_long, 32, 32);
  expect_error (too_long, "tensor #0", "length 64", "limit of 63", NULL);

  raw_tensor (longest, name63, 1, ne, RK_TYPE_F32, 0);
  raw_data (longest, 32, 32);
  g = ruv_gguf_parse (longest->data, longest->len, FILENAME, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ruv_gguf_find_tensor (g, name63));

  raw_tensor (empty, "", 1, ne, RK_TYPE_F32, 0);
  raw_data (empty, 32, 32);
  expect_error (empty, "tensor #0", "empty", NULL);

  raw_tensor (ctrl, "a\nb", 1, ne, RK_TYPE_F32, 0);
  raw_data (ctrl, 32, 32);
  expect_error (ctrl, "tensor #0", "control", NULL);

  raw_tensor (dup, "w", 1, ne, RK_TYPE_F32, 0);
  raw_tensor (dup, "w", 1, ne, RK_TYPE_F32, 32);
  raw_data (dup, 32, 64);
  expect_error (dup, "tensor 'w'", "appears twice", NULL);
}

static void
test_bad_n_dims (void)
{
  static const guint32 bad[] = { 0, 5, 255, G_MAXUINT32 };
  gint64 ne[5] = { 1, 1, 1, 1, 1 };
  guint k;

  for (k = 0; k < G_N_ELEMENTS (bad); k++)
    {
      g_autoptr(GByteArray) b = raw_header (3, 1, 0);
      g_autofree char *msg = g_strdup_printf ("n_dims %u is not between 1 and 4", bad[k]);

      raw_str (b, "t");
      raw_u32 (b, bad[k]);
      g_byte_array_append (b, (const guint8 *) ne, sizeof ne);
      raw_u32 (b, RK_TYPE_F32);
      raw_u64 (b, 0);
      raw_data (b, 32, 64);
      expect_error (b, "tensor 't'", msg, NULL);
    }
}

static void
test_bad_shapes (void)
{
  gint64 neg[] = { 8, -1 };
  gint64 product[] = { (G_GINT64_CONSTANT (1) << 42) + 1, 1 << 22 };
  gint64 product4[] = { 1 << 16, 1 << 16, 1 << 16, 1 << 16 };
  gint64 zero_big[] = { 0, G_MAXINT64, G_MAXINT64, 2 };
  gint64 bytes_big[] = { G_GINT64_CONSTANT (1) << 60, 4 };  /* elements fit, f32 bytes do not */
  gint64 pad_wrap[] = { G_GINT64_CONSTANT (0x7fffffffffffffc0) };
  gint64 q_huge[] = { G_GINT64_CONSTANT (1) << 62 };
  gint64 i64_huge[] = { G_GINT64_CONSTANT (1) << 62 };  /* 2^62 elements of 8 bytes */
  gint64 zero[] = { 8, 0 };
  g_autoptr(GByteArray) b = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGguf) g = NULL;

  b = one_tensor_file (2, neg, RK_TYPE_F32, 0, 32);
  expect_error (b, "tensor 't'", "dimension 1 is negative (-1)", NULL);
  g_byte_array_unref (b);
  b = one_tensor_file (2, product, RK_TYPE_F32, 0, 32);
  expect_error (b, "tensor 't'", "is too large", NULL);
  g_byte_array_unref (b);
  b = one_tensor_file (4, product4, RK_TYPE_F32, 0, 32);
  expect_error (b, "tensor 't'", "is too large", NULL);
  g_byte_array_unref (b);
  b = one_tensor_file (4, zero_big, RK_TYPE_F32, 0, 32);
  expect_error (b, "tensor 't'", "is too large", NULL);
  g_byte_array_unref (b);
  b = one_tensor_file (2, bytes_big, RK_TYPE_F32, 0, 32);
  expect_error (b, "tensor 't'", "too large in bytes", NULL);
  g_byte_array_unref (b);
  /* nbytes just under SIZE_MAX: padding it must not wrap (llama.cpp#24759);
   * it fails as lying outside the file, never by wrapping to a small size. */
  b = one_tensor_file (1, pad_wrap, 24 /* i8 */, 0, 32);
  expect_error (b, "tensor 't'", "outside the file", NULL);
  g_byte_array_unref (b);
  b = one_tensor_file (1, i64_huge, 27 /* i64 */, 0, 32);
  expect_error (b, "tensor 't'", "of i64 is too large in bytes", NULL);
  g_byte_array_unref (b);
  b = one_tensor_file (1, q_huge, RK_TYPE_Q8_0, 0, 32);
  expect_error (b, "tensor 't'", "outside the file", NULL);
  g_byte_array_unref (b);

  /* A11: a zero dimension is an empty tensor, accepted, no division by 0. */
  b = one_tensor_file (2, zero, RK_TYPE_F32, 0, 0);
  g = ruv_gguf_parse (b->data, b->len, FILENAME, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ruv_gguf_get_tensor (g, 0)->size, ==, 0);
}

static void
test_bad_tensor_types (void)
{
  static const guint32 bad[] = { 4, 5, 31, 36, RK_TYPE_COUNT, 1000, G_MAXUINT32 };
  gint64 ne[] = { 32 };
  gint64 ne33[] = { 33, 2 };
  guint k;
  g_autoptr(GByteArray) q2k = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGguf) g = NULL;

  for (k = 0; k < G_N_ELEMENTS (bad); k++)
    {
      g_autoptr(GByteArray) b = one_tensor_file (1, ne, bad[k], 0, 128);
      g_autofree char *msg = g_strdup_printf ("tensor type %u is unknown", bad[k]);

      expect_error (b, "tensor 't'", msg, NULL);
    }
  for (k = 0; k < 2; k++)
    {
      g_autoptr(GByteArray) b = one_tensor_file (2, ne33, k == 0 ? RK_TYPE_Q4_0 : RK_TYPE_Q4_K,
                                                 0, 1024);

      expect_error (b, "tensor 't'", "row length 33 is not a multiple", NULL);
    }
  /* Known but not computable: parses; the engine refuses it later by name. */
  q2k = one_tensor_file (1, (const gint64[]) { 256 }, RK_TYPE_Q2_K, 0, 84);
  g = ruv_gguf_parse (q2k->data, q2k->len, FILENAME, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ruv_gguf_get_tensor (g, 0)->type, ==, RK_TYPE_Q2_K);
}

static void
test_bad_offsets (void)
{
  gint64 ne[] = { 8 };            /* 32 bytes of f32 */
  gint64 ne_i8[] = { G_GINT64_CONSTANT (0x7fffffffffffffc0) };
  g_autoptr(GByteArray) misaligned = one_tensor_file (1, ne, RK_TYPE_F32, 4, 64);
  g_autoptr(GByteArray) first_gap = one_tensor_file (1, ne, RK_TYPE_F32, 32, 64);
  g_autoptr(GByteArray) past = one_tensor_file (1, ne, RK_TYPE_F32, 0, 31);
  g_autoptr(GByteArray) huge = one_tensor_file (1, ne, RK_TYPE_F32,
                                                G_MAXUINT64 - 31, 64);
  g_autoptr(GByteArray) overlap = raw_header (3, 2, 0);
  g_autoptr(GByteArray) gap = raw_header (3, 2, 0);
  g_autoptr(GByteArray) sum = raw_header (3, 2, 0);

  expect_error (misaligned, "tensor 't'", "offset 4 is not aligned to 32", NULL);
  expect_error (first_gap, "tensor 't'", "offset 32 leaves a gap", NULL);
  expect_error (past, "tensor 't'", "outside the file", "truncated", NULL);
  expect_error (huge, "tensor 't'", NULL);

  raw_tensor (overlap, "a", 1, (const gint64[]) { 16 }, RK_TYPE_F32, 0);
  raw_tensor (overlap, "b", 1, ne, RK_TYPE_F32, 32);
  raw_data (overlap, 32, 128);
  expect_error (overlap, "tensor 'b'", "overlaps tensor 'a'", NULL);

  raw_tensor (gap, "a", 1, ne, RK_TYPE_F32, 0);
  raw_tensor (gap, "b", 1, ne, RK_TYPE_F32, 64);
  raw_data (gap, 32, 128);
  expect_error (gap, "tensor 'b'", "leaves a gap", "expected offset 32", NULL);

  /* ggml's DATA_MEM_SIZE_OVERFLOW: two I8 tensors whose sizes sum past 2^64. */
  raw_tensor (sum, "a", 1, ne_i8, 24, 0);
  raw_tensor (sum, "b", 1, ne_i8, 24, 0x7fffffffffffffc0);
  raw_data (sum, 32, 64);
  expect_error (sum, "tensor 'a'", "outside the file", NULL);
}

static void
test_bad_data_section (void)
{
  gint64 ne[] = { 8 };
  g_autoptr(GByteArray) b = raw_header (3, 1, 0);
  g_autoptr(GByteArray) no_tensors = raw_header (3, 0, 1);
  g_autoptr(GBytes) whole = NULL;
  g_autoptr(GBytes) cut = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvGguf) g = NULL;

  /* The tensor infos end mid-way to the 32-byte boundary: no data section. */
  raw_tensor (b, "t", 1, ne, RK_TYPE_F32, 0);
  g_assert_cmpuint (b->len % 32, !=, 0);
  expect_error (b, "data section", "past the end of the file", NULL);

  /* A15: a download cut short by one byte loses the end of the last tensor. */
  whole = make_small_file ();
  cut = g_bytes_new_from_bytes (whole, 0, g_bytes_get_size (whole) - 1);
  expect_error_bytes (cut, "tensor 'f'", "outside the file", "truncated", NULL);

  /* Without tensors an unpadded file is fine, as in recent ggml. */
  raw_kv_u32 (no_tensors, "a.b", 1);
  g = ruv_gguf_parse (no_tensors->data, no_tensors->len, FILENAME, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ruv_gguf_get_n_tensors (g), ==, 0);
}

/* A15 and the fuzz baseline: every prefix of a good file is refused. */
static void
test_truncation_every_byte (void)
{
  g_autoptr(GBytes) bytes = make_small_file ();
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *copy = NULL;
  g_autoptr(RuvGguf) full = parse_copy (data, size, &copy, &error);
  gsize len;

  g_assert_no_error (error);
  g_assert_nonnull (full);
  g_assert_cmpuint (ruv_gguf_get_n_tensors (full), ==, 2);
  for (len = 0; len < size; len++)
    {
      g_autoptr(GError) e = NULL;
      g_autofree guint8 *c = NULL;
      g_autoptr(RuvGguf) g = parse_copy (data, len, &c, &e);

      if (g != NULL)
        g_error ("a prefix of %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes parsed", len, size);
      g_assert_error (e, RUV_ERROR, RUV_ERROR_MODEL);
      g_assert_true (g_str_has_prefix (e->message, FILENAME ": "));
    }
}

/* Every byte of a good file replaced by a few values: each parse either
 * succeeds or gives RUV_ERROR_MODEL; ASan/UBSan watch the rest. */
static void
test_mutation_every_byte (void)
{
  static const guint8 values[] = { 0x00, 0x01, 0x7f, 0x80, 0xff, 0x20 };
  g_autoptr(GBytes) bytes = make_small_file ();
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);
  g_autofree guint8 *buf = g_memdup2 (data, size);
  gsize pos;
  guint v;
  guint n_ok = 0;
  guint n_err = 0;

  for (pos = 0; pos < size; pos++)
    for (v = 0; v < G_N_ELEMENTS (values); v++)
      {
        g_autoptr(GError) error = NULL;
        g_autoptr(RuvGguf) g = NULL;

        buf[pos] = values[v];
        g = ruv_gguf_parse (buf, size, FILENAME, &error);
        if (g != NULL)
          {
            g_assert_no_error (error);
            n_ok++;
          }
        else
          {
            g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
            n_err++;
          }
        buf[pos] = data[pos];
      }
  /* Tensor bytes can change freely; header bytes cannot. */
  g_assert_cmpuint (n_ok, >, 0);
  g_assert_cmpuint (n_err, >, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/engine/gguf/roundtrip/scalars", test_roundtrip_scalars);
  g_test_add_func ("/engine/gguf/roundtrip/arrays", test_roundtrip_arrays);
  g_test_add_func ("/engine/gguf/roundtrip/tensors", test_roundtrip_tensors);
  g_test_add_func ("/engine/gguf/roundtrip/alignment", test_roundtrip_alignment);
  g_test_add_func ("/engine/gguf/roundtrip/large-vocab", test_large_vocab);
  g_test_add_func ("/engine/gguf/getters/errors", test_getter_errors);
  g_test_add_func ("/engine/gguf/writer/replace-key", test_writer_replace_key);
  g_test_add_func ("/engine/gguf/writer/bad-tensors", test_writer_bad_tensors);
  g_test_add_func ("/engine/gguf/writer/write-file", test_writer_write_file);
  g_test_add_func ("/engine/gguf/bad/short", test_bad_short);
  g_test_add_func ("/engine/gguf/bad/magic", test_bad_magic);
  g_test_add_func ("/engine/gguf/bad/version", test_bad_version);
  g_test_add_func ("/engine/gguf/bad/counts", test_bad_counts);
  g_test_add_func ("/engine/gguf/bad/keys", test_bad_keys);
  g_test_add_func ("/engine/gguf/bad/value-types", test_bad_value_types);
  g_test_add_func ("/engine/gguf/bad/arrays-strings", test_bad_arrays_and_strings);
  g_test_add_func ("/engine/gguf/bad/alignment", test_bad_alignment);
  g_test_add_func ("/engine/gguf/bad/tensor-names", test_bad_tensor_names);
  g_test_add_func ("/engine/gguf/bad/n-dims", test_bad_n_dims);
  g_test_add_func ("/engine/gguf/bad/shapes", test_bad_shapes);
  g_test_add_func ("/engine/gguf/bad/tensor-types", test_bad_tensor_types);
  g_test_add_func ("/engine/gguf/bad/offsets", test_bad_offsets);
  g_test_add_func ("/engine/gguf/bad/data-section", test_bad_data_section);
  g_test_add_func ("/engine/gguf/bad/truncation-every-byte", test_truncation_every_byte);
  g_test_add_func ("/engine/gguf/bad/mutation-every-byte", test_mutation_every_byte);

  return g_test_run ();
}
