/* make-gguf-corpus.c — writes the seed corpus of fuzz-gguf with RuvGgufWriter.
 * SPDX-License-Identifier: MIT
 *
 * Usage: make-gguf-corpus DIR. Writes small valid files (every value type,
 * arrays, several tensor types, a custom alignment, a vocab-only file) plus
 * truncated and byte-patched copies, so the fuzzer starts past the header.
 * The files in tests/fuzz/corpus/gguf were made by this program; crashers
 * found later are added there by hand (named crash-*).
 */
#include <glib.h>
#include <string.h>

#include "ruv-gguf-writer.h"

static void
save (const char *dir,
      const char *name,
      const guint8 *data,
      gsize        len)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (dir, name, NULL);

  if (!g_file_set_contents (path, (const char *) data, (gssize) len, &error))
    g_error ("%s", error->message);
}

static GBytes *
finish (RuvGgufWriter *w)
{
  g_autoptr(GError) error = NULL;
  GBytes *b = ruv_gguf_writer_to_bytes (w, &error);

  if (b == NULL)
    g_error ("%s", error->message);
  return b;
}

static void
add (RuvGgufWriter *w,
     const char    *name,
     rk_type        type,
     guint          n_dims,
     const gint64  *ne)
{
  g_autoptr(GError) error = NULL;
  gsize size = rk_row_size (type, ne[0]);
  g_autofree guint8 *data = NULL;
  guint d;

  for (d = 1; d < n_dims; d++)
    size *= (gsize) ne[d];
  data = g_malloc0 (MAX (size, 1));
  for (d = 0; d < size; d++)
    data[d] = (guint8) (d * 7);
  if (!ruv_gguf_writer_add_tensor (w, name, type, n_dims, ne, data, size, &error))
    g_error ("%s", error->message);
}

int
main (int    argc,
      char **argv)
{
  const char *tokens[] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81the", "a", "" };
  float scores[] = { 0, 0, 0, -1.5f, -2, -3 };
  gint32 types[] = { 2, 3, 3, 1, 1, 1 };
  gint16 i16s[] = { -3, 4 };
  double f64s[] = { 1e-3, 2 };
  guint8 bools[] = { 1, 0 };
  g_autoptr(RuvGgufWriter) full = ruv_gguf_writer_new ();
  g_autoptr(RuvGgufWriter) vocab = ruv_gguf_writer_new ();
  g_autoptr(RuvGgufWriter) aligned = ruv_gguf_writer_new ();
  g_autoptr(GBytes) b_full = NULL;
  g_autoptr(GBytes) b_vocab = NULL;
  g_autoptr(GBytes) b_aligned = NULL;
  const char *dir;
  const guint8 *p;
  gsize len;
  guint8 *patched;

  if (argc != 2)
    g_error ("usage: make-gguf-corpus DIR");
  dir = argv[1];

  ruv_gguf_writer_set_string (full, "general.architecture", "llama");
  ruv_gguf_writer_set_string (full, "general.name", "fuzz seed");
  ruv_gguf_writer_set_uint8 (full, "x.u8", 200);
  ruv_gguf_writer_set_int8 (full, "x.i8", -5);
  ruv_gguf_writer_set_uint16 (full, "x.u16", 60000);
  ruv_gguf_writer_set_int16 (full, "x.i16", -600);
  ruv_gguf_writer_set_uint32 (full, "llama.block_count", 1);
  ruv_gguf_writer_set_int32 (full, "x.i32", -1);
  ruv_gguf_writer_set_float32 (full, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  ruv_gguf_writer_set_bool (full, "x.bool", TRUE);
  ruv_gguf_writer_set_uint64 (full, "x.u64", G_MAXUINT64);
  ruv_gguf_writer_set_int64 (full, "x.i64", G_MININT64);
  ruv_gguf_writer_set_float64 (full, "x.f64", 0.25);
  ruv_gguf_writer_set_array_string (full, "tokenizer.ggml.tokens", tokens, 6);
  ruv_gguf_writer_set_array_float32 (full, "tokenizer.ggml.scores", scores, 6);
  ruv_gguf_writer_set_array_int32 (full, "tokenizer.ggml.token_type", types, 6);
  ruv_gguf_writer_set_array (full, "x.a.i16", RUV_GGUF_TYPE_INT16, i16s, 2);
  ruv_gguf_writer_set_array (full, "x.a.f64", RUV_GGUF_TYPE_FLOAT64, f64s, 2);
  ruv_gguf_writer_set_array (full, "x.a.bool", RUV_GGUF_TYPE_BOOL, bools, 2);
  add (full, "token_embd.weight", RK_TYPE_Q8_0, 2, (const gint64[]) { 32, 6 });
  add (full, "output_norm.weight", RK_TYPE_F32, 1, (const gint64[]) { 32 });
  add (full, "blk.0.attn_q.weight", RK_TYPE_Q4_0, 2, (const gint64[]) { 32, 2 });
  add (full, "blk.0.ffn_up.weight", RK_TYPE_F16, 3, (const gint64[]) { 4, 2, 2 });
  add (full, "blk.0.ffn_down.weight", RK_TYPE_BF16, 4, (const gint64[]) { 2, 1, 1, 2 });
  add (full, "empty", RK_TYPE_F32, 2, (const gint64[]) { 4, 0 });
  b_full = finish (full);

  ruv_gguf_writer_set_string (vocab, "tokenizer.ggml.model", "gpt2");
  ruv_gguf_writer_set_array_string (vocab, "tokenizer.ggml.tokens", tokens, 6);
  ruv_gguf_writer_set_array_string (vocab, "tokenizer.ggml.merges",
                                    (const char *const[]) { "a b", "\xe2\x96\x81 t" }, 2);
  b_vocab = finish (vocab);

  ruv_gguf_writer_set_uint32 (aligned, "general.alignment", 64);
  add (aligned, "q4k", RK_TYPE_Q4_K, 1, (const gint64[]) { 256 });
  add (aligned, "q6k", RK_TYPE_Q6_K, 1, (const gint64[]) { 256 });
  b_aligned = finish (aligned);

  p = g_bytes_get_data (b_full, &len);
  save (dir, "full.gguf", p, len);
  save (dir, "full-cut-header.gguf", p, 40);
  save (dir, "full-cut-infos.gguf", p, len / 2);
  save (dir, "full-cut-data.gguf", p, len - 1);
  patched = g_memdup2 (p, len);
  patched[4] = 1;                                   /* version 1 */
  save (dir, "full-v1.gguf", patched, len);
  patched[4] = 3;
  memset (patched + 8, 0xff, 8);                    /* n_tensors = -1 */
  save (dir, "full-bad-count.gguf", patched, len);
  g_free (patched);

  p = g_bytes_get_data (b_vocab, &len);
  save (dir, "vocab.gguf", p, len);
  p = g_bytes_get_data (b_aligned, &len);
  save (dir, "aligned64.gguf", p, len);
  return 0;
}
