/* test-tokenizer.c — RuvTokenizer against llama.cpp's recorded tokenizations.
 * SPDX-License-Identifier: MIT
 *
 * Fixtures: tests/data/vocab-*.gguf.gz (vocab-only GGUF files with the real
 * Qwen2.5, Llama-3 and Mistral vocabularies) and vocab-*.expected.txt
 * (llama.cpp's ids, detokenizations, pieces and EOG sets for a corpus of hard
 * strings); provenance in tests/data/README.md.
 */
#include <gio/gio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-gguf.h"
#include "ruv-tokenizer.h"
#include "ruv-unicode.h"

#include "../fuzz/tok-vocab.h"

static GBytes *
read_gz (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GInputStream) raw = G_INPUT_STREAM (g_file_read (file, NULL, &error));
  g_autoptr(GZlibDecompressor) dec = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  g_assert_no_error (error);
  dec = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  in = g_converter_input_stream_new (raw, G_CONVERTER (dec));
  g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE
                          | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
  g_assert_no_error (error);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

static RuvTokenizer *
tokenizer_from_bytes (GBytes  *bytes,
                      GError **error)
{
  g_autoptr(RuvGguf) gguf = NULL;
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);

  gguf = ruv_gguf_parse (data, size, "test.gguf", error);
  if (gguf == NULL)
    return NULL;
  return ruv_tokenizer_new_from_gguf (gguf, error);
}

static RuvTokenizer *
load_vocab (const char *name)
{
  g_autofree char *path = g_strdup_printf ("%s/%s.gguf.gz", TEST_DATA_DIR, name);
  g_autoptr(GBytes) bytes = read_gz (path);
  g_autoptr(GError) error = NULL;
  RuvTokenizer *tok = tokenizer_from_bytes (bytes, &error);

  g_assert_no_error (error);
  g_assert_nonnull (tok);
  return tok;
}

static GByteArray *
unhex (const char *s)
{
  GByteArray *b = g_byte_array_new ();

  for (; s[0] && s[1]; s += 2)
    {
      guint8 v = (guint8) (g_ascii_xdigit_value (s[0]) * 16 + g_ascii_xdigit_value (s[1]));

      g_byte_array_append (b, &v, 1);
    }
  return b;
}

static GArray *
parse_ids (const char *s)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_auto(GStrv) parts = NULL;
  guint i;

  if (strcmp (s, "-") == 0)
    return ids;
  parts = g_strsplit (s, ",", -1);
  for (i = 0; parts[i]; i++)
    {
      gint32 v = (gint32) g_ascii_strtoll (parts[i], NULL, 10);

      g_array_append_val (ids, v);
    }
  return ids;
}

static char *
ids_to_string (const gint32 *ids,
               gsize         n)
{
  GString *s = g_string_new (NULL);
  gsize i;

  for (i = 0; i < n; i++)
    g_string_append_printf (s, "%s%d", i ? "," : "", ids[i]);
  return g_string_free (s, FALSE);
}

static char *
to_hex (const char *s,
        gsize       n)
{
  GString *out = g_string_new (NULL);
  gsize i;

  for (i = 0; i < n; i++)
    g_string_append_printf (out, "%02x", (guint8) s[i]);
  return g_string_free (out, FALSE);
}

/* Compares everything llama.cpp recorded for one vocabulary. */
static void
test_llama_cpp (gconstpointer data)
{
  const char *name = data;
  g_autoptr(RuvTokenizer) tok = load_vocab (name);
  g_autofree char *path = g_strdup_printf ("%s/%s.expected.txt", TEST_DATA_DIR, name);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) eog = g_hash_table_new (NULL, NULL);
  g_auto(GStrv) lines = NULL;
  guint i, n_t = 0, n_d = 0, n_p = 0;
  gint32 id;

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (contents, "\n", -1);
  for (i = 0; lines[i]; i++)
    {
      g_auto(GStrv) f = g_strsplit (lines[i], "\t", -1);

      if (f[0] == NULL || f[0][0] == '#' || f[0][0] == '\0')
        continue;
      if (strcmp (f[0], "V") == 0)
        {
          g_assert_cmpint (ruv_tokenizer_get_n_vocab (tok), ==, atoi (f[1]));
          g_assert_cmpint (ruv_tokenizer_get_bos (tok), ==, atoi (f[2]));
          g_assert_cmpint (ruv_tokenizer_get_eos (tok), ==, atoi (f[3]));
          g_assert_cmpint (ruv_tokenizer_get_eot (tok), ==, atoi (f[4]));
          g_assert_cmpint (ruv_tokenizer_get_add_bos (tok), ==, atoi (f[5]));
          g_assert_cmpint (ruv_tokenizer_get_add_eos (tok), ==, atoi (f[6]));
        }
      else if (strcmp (f[0], "T") == 0)
        {
          g_autoptr(GByteArray) text = unhex (f[3]);
          g_autoptr(GArray) want = parse_ids (f[4]);
          g_autoptr(GArray) got = NULL;
          g_autofree char *got_s = NULL;
          g_autofree char *want_s = NULL;

          got = ruv_tokenizer_encode (tok, (const char *) text->data, text->len,
                                      atoi (f[1]), atoi (f[2]), &error);
          g_assert_no_error (error);
          got_s = ids_to_string ((gint32 *) got->data, got->len);
          want_s = ids_to_string ((gint32 *) want->data, want->len);
          if (strcmp (got_s, want_s) != 0)
            g_test_message ("%s: text %s add_special %s parse_special %s", name, f[3], f[1], f[2]);
          g_assert_cmpstr (got_s, ==, want_s);
          n_t++;
        }
      else if (strcmp (f[0], "D") == 0)
        {
          g_autoptr(GArray) ids = parse_ids (f[3]);
          gsize len = 0;
          g_autofree char *text = ruv_tokenizer_decode (tok, (gint32 *) ids->data, ids->len,
                                                        atoi (f[1]), &len);
          g_autofree char *hex = to_hex (text, len);

          if (strcmp (hex, f[4]) != 0)
            g_test_message ("%s: decode %s skip %s", name, f[3], f[1]);
          g_assert_cmpstr (hex, ==, f[4]);
          n_d++;
        }
      else if (strcmp (f[0], "P") == 0)
        {
          gsize len = 0;
          const char *piece = ruv_tokenizer_token_to_piece (tok, atoi (f[1]), TRUE, &len);
          g_autofree char *hex = NULL;

          g_assert_nonnull (piece);
          hex = to_hex (piece, len);
          if (strcmp (hex, f[2]) != 0)
            g_test_message ("%s: piece of %s", name, f[1]);
          g_assert_cmpstr (hex, ==, f[2]);
          n_p++;
        }
      else if (strcmp (f[0], "E") == 0)
        g_hash_table_add (eog, GINT_TO_POINTER (atoi (f[1])));
    }
  g_assert_cmpuint (n_t, >, 100);
  g_assert_cmpuint (n_d, >, 50);
  g_assert_cmpuint (n_p, >, 500);
  g_assert_cmpuint (g_hash_table_size (eog), >, 0);
  for (id = 0; id < ruv_tokenizer_get_n_vocab (tok); id++)
    {
      if (ruv_tokenizer_is_eog (tok, id) != g_hash_table_contains (eog, GINT_TO_POINTER (id)))
        g_test_message ("%s: eog %d", name, id);
      g_assert_cmpint (ruv_tokenizer_is_eog (tok, id), ==,
                       g_hash_table_contains (eog, GINT_TO_POINTER (id)));
    }
}

static gboolean
find_bytes_in (GByteArray *hay,
               const char *needle)
{
  gsize n = strlen (needle), i;

  for (i = 0; i + n <= hay->len; i++)
    if (memcmp (hay->data + i, needle, n) == 0)
      return TRUE;
  return FALSE;
}

/* decode (encode (s)) == s: SentencePiece for every string (byte fallback),
 * byte-level BPE without clean-up for every valid UTF-8 string. */
static void
test_roundtrip (gconstpointer data)
{
  const char *name = data;
  g_autoptr(RuvTokenizer) tok = load_vocab (name);
  g_autofree char *path = g_strdup_printf ("%s/%s.expected.txt", TEST_DATA_DIR, name);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  gboolean spm = ruv_tokenizer_get_kind (tok) == RUV_TOKENIZER_SPM;
  guint i, checked = 0;

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (contents, "\n", -1);
  for (i = 0; lines[i]; i++)
    {
      g_auto(GStrv) f = g_strsplit (lines[i], "\t", -1);
      g_autoptr(GByteArray) text = NULL;
      g_autoptr(GArray) ids = NULL;
      g_autofree char *back = NULL;
      gsize len = 0;

      /* One T line per string and flag combination: take add 0, parse 0. */
      if (g_strv_length (f) < 5 || strcmp (f[0], "T") != 0 || strcmp (f[1], "0") != 0
          || strcmp (f[2], "0") != 0)
        continue;
      text = unhex (f[3]);
      if (!spm && !g_utf8_validate_len ((const char *) text->data, text->len, NULL))
        continue;
      /* SentencePiece spells spaces "▁": a literal "▁" comes back as a space. */
      if (spm && find_bytes_in (text, "\xe2\x96\x81"))
        continue;
      ids = ruv_tokenizer_encode (tok, (const char *) text->data, text->len, FALSE, FALSE, &error);
      g_assert_no_error (error);
      back = ruv_tokenizer_decode (tok, (gint32 *) ids->data, ids->len, FALSE, &len);
      g_assert_cmpmem (back, len, text->data, text->len);
      checked++;
    }
  g_assert_cmpuint (checked, >, 50);
}

/* Streaming never emits half a character, and emits everything in the end. */
static void
test_stream (void)
{
  static const char *const texts[] = {
    "👨‍👩‍👧‍👦 family 🏳️‍🌈 你好，世界！ 日本語 ẞ 𝔘𝔫𝔦", "ok \xc3( \xff tail \xe4\xbd",
  };
  g_autoptr(RuvTokenizer) tok = load_vocab ("vocab-qwen2");
  gboolean saw_pending = FALSE;
  guint t, i;

  for (t = 0; t < G_N_ELEMENTS (texts); t++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GArray) ids = ruv_tokenizer_encode (tok, texts[t], -1, FALSE, TRUE, &error);
      g_autoptr(RuvTokenStream) stream = ruv_token_stream_new (tok, TRUE);
      g_autoptr(GString) all = g_string_new (NULL);
      g_autofree char *rest = NULL;
      g_autofree char *whole = NULL;
      g_autofree char *want = NULL;

      g_assert_no_error (error);
      for (i = 0; i < ids->len; i++)
        {
          g_autofree char *chunk = ruv_token_stream_push (stream, g_array_index (ids, gint32, i));

          g_assert_true (g_utf8_validate (chunk, -1, NULL));
          if (ruv_token_stream_get_pending (stream) > 0)
            saw_pending = TRUE;
          g_string_append (all, chunk);
        }
      rest = ruv_token_stream_flush (stream);
      g_string_append (all, rest);
      whole = ruv_tokenizer_decode (tok, (gint32 *) ids->data, ids->len, FALSE, NULL);
      want = g_utf8_make_valid (whole, -1);
      g_assert_cmpstr (all->str, ==, want);
    }
  g_assert_true (saw_pending);
}

static void
test_stream_split_char (void)
{
  /* A 4-byte character delivered one byte-token at a time by hand: only
   * the last push releases it. */
  g_autoptr(GBytes) bytes = tv_bpe_vocab ("qwen2");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvTokenizer) tok = tokenizer_from_bytes (bytes, &error);
  g_autoptr(RuvTokenStream) stream = NULL;
  g_autoptr(GArray) ids = NULL;
  guint i;

  g_assert_no_error (error);
  ids = ruv_tokenizer_encode (tok, "\xf0\x9f\x98\x80!", -1, FALSE, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ids->len, ==, 5);
  stream = ruv_token_stream_new (tok, FALSE);
  for (i = 0; i < 3; i++)
    {
      g_autofree char *c = ruv_token_stream_push (stream, g_array_index (ids, gint32, i));

      g_assert_cmpstr (c, ==, "");
      g_assert_cmpuint (ruv_token_stream_get_pending (stream), ==, i + 1);
    }
  {
    g_autofree char *c = ruv_token_stream_push (stream, g_array_index (ids, gint32, 3));
    g_autofree char *d = ruv_token_stream_push (stream, g_array_index (ids, gint32, 4));

    g_assert_cmpstr (c, ==, "\xf0\x9f\x98\x80");
    g_assert_cmpstr (d, ==, "!");
  }
}

static void
test_utf8 (void)
{
  static const struct
  {
    const char *in;
    gsize       len;
    gunichar    out[6];
  } cases[] = {
    { "a", 1, { 'a' } },
    { "\xc3\xa9", 2, { 0xe9 } },
    { "\xff", 1, { 0xfffd } },
    { "\xc3", 1, { 0xfffd } },
    { "\xe4\xbd", 2, { 0xfffd, 0xfffd } },
    { "\xc0\x80", 2, { 0 } },            /* overlong: decoded as written, like llama.cpp */
    { "\xed\xa0\x80", 3, { 0xd800 } },   /* surrogate: likewise */
    { "\xf4\x90\x80\x80", 4, { 0xfffd, 0xfffd, 0xfffd, 0xfffd } },
    { "\x80x", 2, { 0xfffd, 'x' } },
    { "\xf0\x9f\x98\x80", 4, { 0x1f600 } },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize off = 0, k = 0;

      while (off < cases[i].len)
        g_assert_cmphex (ruv_utf8_decode ((const guint8 *) cases[i].in, cases[i].len, &off), ==,
                         cases[i].out[k++]);
    }
  g_assert_cmpuint (ruv_utf8_complete_prefix ("ab\xe4\xbd", 4), ==, 2);
  g_assert_cmpuint (ruv_utf8_complete_prefix ("ab\xe4\xbd\xa0", 5), ==, 5);
  g_assert_cmpuint (ruv_utf8_complete_prefix ("\xf0\x9f\x98", 3), ==, 0);
  g_assert_cmpuint (ruv_utf8_complete_prefix ("a\xff", 2), ==, 2);       /* never completes */
  g_assert_cmpuint (ruv_utf8_complete_prefix ("a\xe0\x80", 3), ==, 3);   /* overlong: invalid */
  g_assert_cmpuint (ruv_utf8_complete_prefix ("a\xc3", 2), ==, 1);
  g_assert_cmpuint (ruv_utf8_complete_prefix ("", 0), ==, 0);
}

static void
test_unicode_flags (void)
{
  guint b;
  gunichar seen[256];

  g_assert_true (ruv_unicode_flags ('A') & RUV_UCAT_LETTER);
  g_assert_true (ruv_unicode_flags (0x4f60) & RUV_UCAT_LETTER);   /* 你 */
  g_assert_true (ruv_unicode_flags ('7') & RUV_UCAT_NUMBER);
  g_assert_true (ruv_unicode_flags (0x2460) & RUV_UCAT_NUMBER);   /* ① (No) */
  g_assert_true (ruv_unicode_flags (0x0301) & RUV_UCAT_MARK);
  g_assert_true (ruv_unicode_flags (0x3001) & RUV_UCAT_PUNCTUATION);
  g_assert_true (ruv_unicode_flags (0x1f600) & RUV_UCAT_SYMBOL);
  g_assert_true (ruv_unicode_flags (0x85) & RUV_UCAT_WHITESPACE);
  g_assert_true (ruv_unicode_flags (0x3000) & RUV_UCAT_WHITESPACE);
  g_assert_false (ruv_unicode_flags (0x200b) & RUV_UCAT_WHITESPACE);
  g_assert_false (ruv_unicode_flags (0x1c) & RUV_UCAT_WHITESPACE);
  g_assert_cmpuint (ruv_unicode_flags (0x110000), ==, RUV_UCAT_UNDEFINED);
  /* The GPT-2 table is a bijection onto printable code points. */
  g_assert_cmpuint (ruv_gpt2_byte_to_unichar (' '), ==, 0x120);
  g_assert_cmpuint (ruv_gpt2_byte_to_unichar ('\n'), ==, 0x10a);
  g_assert_cmpuint (ruv_gpt2_byte_to_unichar ('a'), ==, 'a');
  for (b = 0; b < 256; b++)
    {
      seen[b] = ruv_gpt2_byte_to_unichar ((guint8) b);
      g_assert_cmpint (ruv_gpt2_unichar_to_byte (seen[b]), ==, (gint) b);
      g_assert_true (g_unichar_isgraph (seen[b]));
    }
  g_assert_cmpint (ruv_gpt2_unichar_to_byte (' '), ==, -1);
  g_assert_cmpint (ruv_gpt2_unichar_to_byte (0x4f60), ==, -1);
}

/* Small synthetic vocabularies: the API and the SPM/BPE machinery. */
static void
test_synthetic (void)
{
  g_autoptr(GBytes) bb = tv_bpe_vocab ("qwen2");
  g_autoptr(GBytes) sb = tv_spm_vocab ();
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvTokenizer) bpe = tokenizer_from_bytes (bb, &error);
  g_autoptr(RuvTokenizer) spm = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autofree char *text = NULL;
  gint32 im_end, tool;

  g_assert_no_error (error);
  g_assert_cmpstr (ruv_tokenizer_get_pre (bpe), ==, "qwen2");
  im_end = ruv_tokenizer_lookup (bpe, "<|im_end|>", 10);
  tool = ruv_tokenizer_lookup (bpe, "<tool>", 6);
  g_assert_cmpint (im_end, >, 0);
  g_assert_true (ruv_tokenizer_is_eog (bpe, im_end));
  g_assert_true (ruv_tokenizer_is_control (bpe, im_end));
  g_assert_false (ruv_tokenizer_is_eog (bpe, 'a'));
  g_assert_cmpint (ruv_tokenizer_get_eot (bpe), ==, im_end);
  /* Control tokens only with parse_special; user-defined ones always. */
  ids = ruv_tokenizer_encode (bpe, "Hello world<|im_end|><tool>", -1, FALSE, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ids->len, ==, 4);
  g_assert_cmpint (g_array_index (ids, gint32, 0), ==, ruv_tokenizer_lookup (bpe, "Hello", 5));
  g_assert_cmpint (g_array_index (ids, gint32, 1), ==,
                   ruv_tokenizer_lookup (bpe, "\xc4\xa0world", 7));
  g_assert_cmpint (g_array_index (ids, gint32, 2), ==, im_end);
  g_assert_cmpint (g_array_index (ids, gint32, 3), ==, tool);
  g_array_unref (g_steal_pointer (&ids));
  ids = ruv_tokenizer_encode (bpe, "<|im_end|><tool>", -1, FALSE, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ids->len, ==, 11);
  g_assert_cmpint (g_array_index (ids, gint32, 10), ==, tool);
  text = ruv_tokenizer_decode (bpe, (gint32 *) ids->data, ids->len, TRUE, NULL);
  g_assert_cmpstr (text, ==, "<|im_end|><tool>");
  g_array_unref (g_steal_pointer (&ids));
  g_assert_null (ruv_tokenizer_token_to_piece (bpe, -1, TRUE, NULL));
  g_assert_null (ruv_tokenizer_token_to_piece (bpe, 1 << 30, TRUE, NULL));

  spm = tokenizer_from_bytes (sb, &error);
  g_assert_no_error (error);
  g_assert_null (ruv_tokenizer_get_pre (spm));
  ids = ruv_tokenizer_encode (spm, "Hello the world 你好", -1, TRUE, FALSE, &error);
  g_assert_no_error (error);
  /* <s> ▁Hello ▁the ▁world ▁ 你 <0xE5> <0xA5> <0xBD> */
  g_assert_cmpuint (ids->len, ==, 9);
  g_assert_cmpint (g_array_index (ids, gint32, 0), ==, 1);
  g_assert_cmpint (g_array_index (ids, gint32, 1), ==,
                   ruv_tokenizer_lookup (spm, "\xe2\x96\x81Hello", 8));
  g_assert_cmpint (g_array_index (ids, gint32, 6), ==, 3 + 0xe5);
  g_clear_pointer (&text, g_free);
  text = ruv_tokenizer_decode (spm, (gint32 *) ids->data, ids->len, TRUE, NULL);
  g_assert_cmpstr (text, ==, " Hello the world 你好");   /* llama.cpp keeps it after BOS */
  g_clear_pointer (&text, g_free);
  text = ruv_tokenizer_decode (spm, (gint32 *) ids->data + 1, ids->len - 1, TRUE, NULL);
  g_assert_cmpstr (text, ==, "Hello the world 你好");
}


static GBytes *
bpe_with (const char *const *tokens,
          gssize             n_tokens,
          const char *const *merges,
          const char        *extra_key,
          guint32            extra_u32)
{
  TvWriter *w = tv_new ();

  tv_add_string (w, "tokenizer.ggml.model", "gpt2");
  tv_add_string (w, "tokenizer.ggml.pre", "qwen2");
  tv_add_strings (w, "tokenizer.ggml.tokens", tokens, n_tokens);
  if (merges)
    tv_add_strings (w, "tokenizer.ggml.merges", merges, -1);
  if (extra_key)
    tv_add_u32 (w, extra_key, extra_u32);
  return tv_finish (w);
}

static void
expect_error (GBytes     *bytes,
              const char *needle)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvTokenizer) tok = tokenizer_from_bytes (bytes, &error);

  g_assert_null (tok);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_TOKENIZATION);
  if (strstr (error->message, needle) == NULL)
    g_test_message ("message: %s", error->message);
  g_assert_nonnull (strstr (error->message, needle));
}

static void
test_hostile (void)
{
  static const char *const toks[] = { "a", "b", "ab", "c", NULL };
  static const char *const dup[] = { "a", "b", "a", NULL };
  static const char *const good_merges[] = { "a b", NULL };
  static const char *const bad_merges[] = { "a x", NULL };
  static const char *const bad_result[] = { "b a", NULL };
  static const char *const no_space[] = { "ab", NULL };
  static const float scores3[] = { 0, 0, 0 };
  static const float nan_scores[] = { 0, 0, 0, 0 };
  static const gint32 types3[] = { 1, 1, 1 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) ok = bpe_with (toks, -1, good_merges, NULL, 0);
  g_autoptr(RuvTokenizer) tok = tokenizer_from_bytes (ok, &error);
  TvWriter *w;
  GBytes *b;
  float nanv[4];

  g_assert_no_error (error);
  g_assert_nonnull (tok);

#define EXPECT(bytes_expr, needle) \
  G_STMT_START { b = (bytes_expr); expect_error (b, needle); g_bytes_unref (b); } G_STMT_END

  EXPECT (bpe_with (toks, -1, bad_merges, NULL, 0), "tokenizer.ggml.merges[0]");
  EXPECT (bpe_with (toks, -1, bad_result, NULL, 0), "tokenizer.ggml.merges[0]");
  EXPECT (bpe_with (toks, -1, no_space, NULL, 0), "tokenizer.ggml.merges[0]");
  EXPECT (bpe_with (toks, -1, NULL, NULL, 0), "tokenizer.ggml.merges");
  EXPECT (bpe_with (dup, -1, good_merges, NULL, 0), "tokenizer.ggml.tokens[2]");
  EXPECT (bpe_with (toks, 0, NULL, NULL, 0), "tokenizer.ggml.tokens");
  EXPECT (bpe_with (toks, -1, good_merges, "tokenizer.ggml.bos_token_id", 4),
          "tokenizer.ggml.bos_token_id");
  EXPECT (bpe_with (toks, -1, good_merges, "tokenizer.ggml.eos_token_id", 0xffffffffu),
          "tokenizer.ggml.eos_token_id");
  EXPECT (bpe_with (toks, -1, good_merges, "tokenizer.ggml.unknown_token_id", 99),
          "tokenizer.ggml.unknown_token_id");

  w = tv_new ();
  tv_add_string (w, "tokenizer.ggml.model", "llama");
  tv_add_strings (w, "tokenizer.ggml.tokens", toks, -1);
  tv_add_f32s (w, "tokenizer.ggml.scores", scores3, 3);
  EXPECT (tv_finish (w), "tokenizer.ggml.scores");

  w = tv_new ();
  tv_add_string (w, "tokenizer.ggml.model", "llama");
  tv_add_strings (w, "tokenizer.ggml.tokens", toks, -1);
  tv_add_i32s (w, "tokenizer.ggml.token_type", types3, 3);
  EXPECT (tv_finish (w), "tokenizer.ggml.token_type");

  memcpy (nanv, nan_scores, sizeof nanv);
  nanv[2] = NAN;
  w = tv_new ();
  tv_add_string (w, "tokenizer.ggml.model", "llama");
  tv_add_strings (w, "tokenizer.ggml.tokens", toks, -1);
  tv_add_f32s (w, "tokenizer.ggml.scores", nanv, 4);
  EXPECT (tv_finish (w), "tokenizer.ggml.scores[2]");

  w = tv_new ();
  tv_add_string (w, "tokenizer.ggml.model", "llama");
  tv_add_strings (w, "tokenizer.ggml.tokens", toks, -1);
  tv_add_string (w, "tokenizer.ggml.bos_token_id", "one");
  EXPECT (tv_finish (w), "tokenizer.ggml.bos_token_id");

  w = tv_new ();
  tv_add_string (w, "tokenizer.ggml.model", "llama");
  tv_add_u32 (w, "tokenizer.ggml.tokens", 5);
  EXPECT (tv_finish (w), "tokenizer.ggml.tokens");

  w = tv_new ();
  tv_add_strings (w, "tokenizer.ggml.tokens", toks, -1);
  EXPECT (tv_finish (w), "tokenizer.ggml.model");

  w = tv_new ();
  tv_add_string (w, "tokenizer.ggml.model", "bert");
  tv_add_strings (w, "tokenizer.ggml.tokens", toks, -1);
  EXPECT (tv_finish (w), "tokenizer.ggml.model");

  w = tv_new ();
  tv_add_string (w, "tokenizer.ggml.model", "gpt2");
  tv_add_string (w, "tokenizer.ggml.pre", "no-such-pre");
  tv_add_strings (w, "tokenizer.ggml.tokens", toks, -1);
  tv_add_strings (w, "tokenizer.ggml.merges", good_merges, -1);
  EXPECT (tv_finish (w), "tokenizer.ggml.pre");

  /* SPM with add_bos (its default) but a vocabulary too small for id 1. */
  w = tv_new ();
  tv_add_string (w, "tokenizer.ggml.model", "llama");
  tv_add_strings (w, "tokenizer.ggml.tokens", toks, 1);
  EXPECT (tv_finish (w), "BOS");
#undef EXPECT
}

int
main (int    argc,
      char **argv)
{
  static const char *const vocabs[] = {
    "vocab-qwen2", "vocab-llama3", "vocab-spm", "vocab-smollm", "vocab-gpt2", "vocab-default",
  };
  static const char *const roundtrip[] = { "vocab-qwen2", "vocab-spm", "vocab-smollm" };
  guint i;

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/tokenizer/utf8", test_utf8);
  g_test_add_func ("/engine/tokenizer/unicode-flags", test_unicode_flags);
  g_test_add_func ("/engine/tokenizer/synthetic", test_synthetic);
  g_test_add_func ("/engine/tokenizer/hostile", test_hostile);
  for (i = 0; i < G_N_ELEMENTS (vocabs); i++)
    {
      g_autofree char *path = g_strdup_printf ("/engine/tokenizer/llama-cpp/%s", vocabs[i] + 6);

      g_test_add_data_func (path, vocabs[i], test_llama_cpp);
    }
  for (i = 0; i < G_N_ELEMENTS (roundtrip); i++)
    {
      g_autofree char *path = g_strdup_printf ("/engine/tokenizer/roundtrip/%s", roundtrip[i] + 6);

      g_test_add_data_func (path, roundtrip[i], test_roundtrip);
    }
  g_test_add_func ("/engine/tokenizer/stream", test_stream);
  g_test_add_func ("/engine/tokenizer/stream-split-char", test_stream_split_char);
  return g_test_run ();
}
