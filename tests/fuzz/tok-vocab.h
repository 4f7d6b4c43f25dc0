/* tok-vocab.h — in-memory GGUF files with small tokenizer vocabularies, for
 * test-tokenizer (hostile metadata) and fuzz-tokenizer.
 * SPDX-License-Identifier: MIT
 *
 * A GGUF v3 file with metadata only (no tensors), written key by key.
 */
#pragma once

#include <glib.h>
#include <string.h>

#include "ruv-gguf.h"

typedef struct
{
  GByteArray *kv;
  guint64     n_kv;
} TvWriter;

static inline void
tv_u32 (GByteArray *b,
        guint32     v)
{
  guint32 le = GUINT32_TO_LE (v);

  g_byte_array_append (b, (const guint8 *) &le, 4);
}

static inline void
tv_u64 (GByteArray *b,
        guint64     v)
{
  guint64 le = GUINT64_TO_LE (v);

  g_byte_array_append (b, (const guint8 *) &le, 8);
}

static inline void
tv_str (GByteArray *b,
        const char *s,
        gsize       len)
{
  tv_u64 (b, len);
  g_byte_array_append (b, (const guint8 *) s, (guint) len);
}

static inline void
tv_key (TvWriter   *w,
        const char *key,
        guint32     type)
{
  tv_str (w->kv, key, strlen (key));
  tv_u32 (w->kv, type);
  w->n_kv++;
}

static inline void
tv_add_string (TvWriter   *w,
               const char *key,
               const char *value)
{
  tv_key (w, key, RUV_GGUF_TYPE_STRING);
  tv_str (w->kv, value, strlen (value));
}

static inline void
tv_add_u32 (TvWriter   *w,
            const char *key,
            guint32     value)
{
  tv_key (w, key, RUV_GGUF_TYPE_UINT32);
  tv_u32 (w->kv, value);
}

static inline void
tv_add_bool (TvWriter   *w,
             const char *key,
             gboolean    value)
{
  guint8 v = value ? 1 : 0;

  tv_key (w, key, RUV_GGUF_TYPE_BOOL);
  g_byte_array_append (w->kv, &v, 1);
}

/* strv: NULL-terminated; n < 0 for all of it. */
static inline void
tv_add_strings (TvWriter          *w,
                const char        *key,
                const char *const *strv,
                gssize             n)
{
  gssize i;

  if (n < 0)
    n = g_strv_length ((char **) strv);
  tv_key (w, key, RUV_GGUF_TYPE_ARRAY);
  tv_u32 (w->kv, RUV_GGUF_TYPE_STRING);
  tv_u64 (w->kv, (guint64) n);
  for (i = 0; i < n; i++)
    tv_str (w->kv, strv[i], strlen (strv[i]));
}

static inline void
tv_add_i32s (TvWriter     *w,
             const char   *key,
             const gint32 *v,
             gsize         n)
{
  gsize i;

  tv_key (w, key, RUV_GGUF_TYPE_ARRAY);
  tv_u32 (w->kv, RUV_GGUF_TYPE_INT32);
  tv_u64 (w->kv, n);
  for (i = 0; i < n; i++)
    tv_u32 (w->kv, (guint32) v[i]);
}

static inline void
tv_add_f32s (TvWriter    *w,
             const char  *key,
             const float *v,
             gsize        n)
{
  gsize i;

  tv_key (w, key, RUV_GGUF_TYPE_ARRAY);
  tv_u32 (w->kv, RUV_GGUF_TYPE_FLOAT32);
  tv_u64 (w->kv, n);
  for (i = 0; i < n; i++)
    {
      guint32 bits;

      memcpy (&bits, &v[i], 4);
      tv_u32 (w->kv, bits);
    }
}

static inline TvWriter *
tv_new (void)
{
  TvWriter *w = g_new0 (TvWriter, 1);

  w->kv = g_byte_array_new ();
  return w;
}

/* The whole file; frees the writer. */
static inline GBytes *
tv_finish (TvWriter *w)
{
  GByteArray *out = g_byte_array_new ();
  static const guint8 pad[32] = { 0 };

  g_byte_array_append (out, (const guint8 *) "GGUF", 4);
  tv_u32 (out, 3);
  tv_u64 (out, 0);
  tv_u64 (out, w->n_kv);
  g_byte_array_append (out, w->kv->data, w->kv->len);
  g_byte_array_append (out, pad, (32 - out->len % 32) % 32);
  g_byte_array_unref (w->kv);
  g_free (w);
  return g_byte_array_free_to_bytes (out);
}

/* GPT-2 byte-level spelling of a byte string. */
static inline char *
tv_gpt2 (const char *s)
{
  GString *out = g_string_new (NULL);

  for (; *s; s++)
    {
      guint b = (guint8) *s;
      gboolean direct = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;

      if (direct)
        g_string_append_unichar (out, b);
      else
        {
          guint n = 0, c;

          for (c = 0; c < b; c++)
            if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae))
              n++;
          g_string_append_unichar (out, 256 + n);
        }
    }
  return g_string_free (out, FALSE);
}

/* A small, closed byte-level BPE vocabulary: the 256 byte tokens, merges
 * building a few English words, and ChatML control tokens. */
static inline GBytes *
tv_bpe_vocab (const char *pre)
{
  static const char *const words[][2] = {
    { " ", "t" }, { "h", "e" }, { " t", "he" }, { "i", "n" }, { " ", "a" }, { "o", "n" },
    { "e", "r" }, { " ", "w" }, { "o", "r" }, { " w", "or" }, { " wor", "ld" }, { "l", "d" },
    { "H", "e" }, { "l", "l" }, { "He", "ll" }, { "Hell", "o" }, { "1", "2" }, { " ", " " },
    { "\n", "\n" }, { " ", "in" }, { "'", "s" },
  };
  TvWriter *w = tv_new ();
  GPtrArray *tokens = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *merges = g_ptr_array_new_with_free_func (g_free);
  GArray *types = g_array_new (FALSE, FALSE, sizeof (gint32));
  static const char *const specials[] = { "<|endoftext|>", "<|im_start|>", "<|im_end|>" };
  gint32 t;
  guint i;

  for (i = 0; i < 256; i++)
    {
      char one[2] = { (char) i, 0 };

      /* NUL cannot go through a C string: spell byte 0 directly. */
      g_ptr_array_add (tokens, i == 0 ? g_strdup ("\xc4\x80") : tv_gpt2 (one));
    }
  for (i = 0; i < G_N_ELEMENTS (words); i++)
    {
      char *a = tv_gpt2 (words[i][0]), *b = tv_gpt2 (words[i][1]);
      char *ab = g_strconcat (a, b, NULL);
      guint k;
      gboolean have = FALSE;

      for (k = 0; k < tokens->len; k++)
        have = have || strcmp (tokens->pdata[k], ab) == 0;
      if (!have)
        g_ptr_array_add (tokens, g_strdup (ab));
      g_ptr_array_add (merges, g_strconcat (a, " ", b, NULL));
      g_free (a);
      g_free (b);
      g_free (ab);
    }
  t = 1;
  for (i = 0; i < tokens->len; i++)
    g_array_append_val (types, t);
  t = 3;
  for (i = 0; i < G_N_ELEMENTS (specials); i++)
    {
      g_ptr_array_add (tokens, g_strdup (specials[i]));
      g_array_append_val (types, t);
    }
  g_ptr_array_add (tokens, g_strdup ("<tool>"));
  t = 4;
  g_array_append_val (types, t);
  g_ptr_array_add (tokens, NULL);
  g_ptr_array_add (merges, NULL);

  tv_add_string (w, "general.architecture", "qwen2");
  tv_add_string (w, "tokenizer.ggml.model", "gpt2");
  if (pre != NULL)
    tv_add_string (w, "tokenizer.ggml.pre", pre);
  tv_add_strings (w, "tokenizer.ggml.tokens", (const char *const *) tokens->pdata, -1);
  tv_add_i32s (w, "tokenizer.ggml.token_type", (const gint32 *) types->data, types->len);
  tv_add_strings (w, "tokenizer.ggml.merges", (const char *const *) merges->pdata, -1);
  tv_add_u32 (w, "tokenizer.ggml.bos_token_id", tokens->len - 5);
  tv_add_u32 (w, "tokenizer.ggml.eos_token_id", tokens->len - 3);
  g_ptr_array_unref (tokens);
  g_ptr_array_unref (merges);
  g_array_unref (types);
  return tv_finish (w);
}

/* A small SentencePiece vocabulary with byte fallback. */
static inline GBytes *
tv_spm_vocab (void)
{
  static const char *const pieces[] = {
    "\xe2\x96\x81", "\xe2\x96\x81t", "he", "\xe2\x96\x81the", "in", "\xe2\x96\x81" "a", "on",
    "er", "\xe2\x96\x81w", "or", "ld", "\xe2\x96\x81wor", "\xe2\x96\x81world", "H", "e", "l",
    "o", "\xe2\x96\x81H", "ll", "\xe2\x96\x81He", "\xe2\x96\x81Hell", "\xe2\x96\x81Hello",
    "\xe4\xbd\xa0", "\xe2\x96\x81\xe2\x96\x81",
  };
  TvWriter *w = tv_new ();
  GPtrArray *tokens = g_ptr_array_new_with_free_func (g_free);
  GArray *types = g_array_new (FALSE, FALSE, sizeof (gint32));
  GArray *scores = g_array_new (FALSE, FALSE, sizeof (float));
  gint32 t;
  float sc = 0.0f;
  guint i;

  g_ptr_array_add (tokens, g_strdup ("<unk>"));
  t = 2;
  g_array_append_val (types, t);
  g_array_append_val (scores, sc);
  g_ptr_array_add (tokens, g_strdup ("<s>"));
  g_ptr_array_add (tokens, g_strdup ("</s>"));
  t = 3;
  g_array_append_val (types, t);
  g_array_append_val (types, t);
  g_array_append_val (scores, sc);
  g_array_append_val (scores, sc);
  t = 6;
  for (i = 0; i < 256; i++)
    {
      g_ptr_array_add (tokens, g_strdup_printf ("<0x%02X>", i));
      g_array_append_val (types, t);
      g_array_append_val (scores, sc);
    }
  t = 1;
  for (i = 0; i < G_N_ELEMENTS (pieces); i++)
    {
      sc = -(float) i;
      g_ptr_array_add (tokens, g_strdup (pieces[i]));
      g_array_append_val (types, t);
      g_array_append_val (scores, sc);
    }
  g_ptr_array_add (tokens, NULL);
  tv_add_string (w, "general.architecture", "llama");
  tv_add_string (w, "tokenizer.ggml.model", "llama");
  tv_add_strings (w, "tokenizer.ggml.tokens", (const char *const *) tokens->pdata, -1);
  tv_add_f32s (w, "tokenizer.ggml.scores", (const float *) scores->data, scores->len);
  tv_add_i32s (w, "tokenizer.ggml.token_type", (const gint32 *) types->data, types->len);
  tv_add_u32 (w, "tokenizer.ggml.bos_token_id", 1);
  tv_add_u32 (w, "tokenizer.ggml.eos_token_id", 2);
  tv_add_u32 (w, "tokenizer.ggml.unknown_token_id", 0);
  g_ptr_array_unref (tokens);
  g_array_unref (types);
  g_array_unref (scores);
  return tv_finish (w);
}
