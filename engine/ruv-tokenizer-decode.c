/* ruv-tokenizer-decode.c — every token's detokenized piece, decode with
 * llama.cpp's clean-up, and the UTF-8-safe streaming detokenizer.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-tokenizer-private.h"

#include <string.h>

#include "ruv-unicode.h"

/* ------------------------------------------------------------------------ */
/* pieces                                                                   */

static int
byte_of_hex (char c)
{
  return g_ascii_xdigit_value (c);
}

/* A byte token's value: llama.cpp parses text[3..5) with strtol base 16. */
static guint8
token_byte (RuvTokenizer *self,
            gint32        id)
{
  const char *s = _ruv_tokenizer_text (self, id);
  guint32 len = self->tokens[id].len;
  int v = 0, d;
  guint32 i;

  for (i = 3; i < 5 && i < len; i++)
    {
      if ((d = byte_of_hex (s[i])) < 0)
        break;
      v = v * 16 + d;
    }
  return (guint8) v;
}

/* Replaces every "▁" (U+2581) with a space. */
static void
append_unescaped (GString    *out,
                  const char *s,
                  gsize       len)
{
  gsize i = 0;

  while (i < len)
    {
      if (i + 3 <= len && memcmp (s + i, "\xe2\x96\x81", 3) == 0)
        {
          g_string_append_c (out, ' ');
          i += 3;
        }
      else
        g_string_append_c (out, s[i++]);
    }
}

/* llama_decode_text: GPT-2 code points back to bytes. */
static void
append_gpt2_decoded (GString    *out,
                     const char *s,
                     gsize       len)
{
  gsize off = 0;

  while (off < len)
    {
      gunichar c = ruv_utf8_decode ((const guint8 *) s, len, &off);
      gint b = ruv_gpt2_unichar_to_byte (c);

      if (b >= 0)
        g_string_append_c (out, (char) b);
      else
        {
          guint8 u[4];
          gsize n = ruv_utf8_encode (c, u), j;

          g_string_append (out, "[UNK_BYTE_0x");
          for (j = 0; j < n; j++)
            g_string_append_printf (out, "%02x", u[j]);
          g_string_append_len (out, s, len);
          g_string_append_c (out, ']');
        }
    }
}

void
_ruv_tokenizer_build_pieces (RuvTokenizer *self)
{
  g_autoptr(GString) all = g_string_new (NULL);
  gint32 id;

  for (id = 0; id < self->n_vocab; id++)
    {
      Token *t = &self->tokens[id];
      const char *s = _ruv_tokenizer_text (self, id);

      t->piece_off = all->len;
      if (t->attr & (RUV_TOKEN_ATTR_UNKNOWN | RUV_TOKEN_ATTR_CONTROL | RUV_TOKEN_ATTR_USER_DEFINED))
        g_string_append_len (all, s, t->len);
      else if (t->attr & RUV_TOKEN_ATTR_NORMAL)
        {
          if (self->kind == RUV_TOKENIZER_SPM)
            append_unescaped (all, s, t->len);
          else
            append_gpt2_decoded (all, s, t->len);
        }
      else if (t->attr & RUV_TOKEN_ATTR_BYTE)
        g_string_append_c (all, (char) token_byte (self, id));
      t->piece_len = (guint32) (all->len - t->piece_off);
    }
  self->pieces = g_string_free (g_steal_pointer (&all), FALSE);
}

const char *
ruv_tokenizer_token_to_piece (RuvTokenizer *self,
                              gint32        id,
                              gboolean      special,
                              gsize        *len)
{
  const Token *t;

  g_return_val_if_fail (RUV_IS_TOKENIZER (self), NULL);
  if (id < 0 || id >= self->n_vocab)
    return NULL;
  t = &self->tokens[id];
  if (!special && (t->attr & (RUV_TOKEN_ATTR_UNKNOWN | RUV_TOKEN_ATTR_CONTROL)))
    {
      if (len != NULL)
        *len = 0;
      return "";
    }
  if (len != NULL)
    *len = t->piece_len;
  return self->pieces + t->piece_off;
}

/* ------------------------------------------------------------------------ */
/* decode                                                                   */

char *
ruv_tokenizer_decode (RuvTokenizer *self,
                      const gint32 *ids,
                      gsize         n_ids,
                      gboolean      skip_special,
                      gsize        *out_len)
{
  GString *out;
  gboolean remove_space;
  gsize i, total, total1, total2, total3;
  char *t;

  g_return_val_if_fail (RUV_IS_TOKENIZER (self), NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);

  out = g_string_new (NULL);
  remove_space = self->add_space_prefix;
  if (skip_special && self->add_bos && n_ids > 0 && ids[0] == self->bos)
    {
      remove_space = FALSE;
      ids++;
      n_ids--;
    }
  if (skip_special && self->add_eos && n_ids > 0 && ids[n_ids - 1] == self->eos)
    n_ids--;
  for (i = 0; i < n_ids; i++)
    {
      gsize len = 0;
      const char *p = ruv_tokenizer_token_to_piece (self, ids[i], !skip_special, &len);

      if (p != NULL)
        {
          if (remove_space && len > 0 && p[0] == ' ')
            {
              p++;
              len--;
            }
          g_string_append_len (out, p, len);
        }
      remove_space = FALSE;
    }

  if (self->clean_spaces)
    {
      /* llama.cpp's three clean-up passes, in place, as written there. */
      t = out->str;
      total = out->len;

      total1 = total;
      total = total ? 1 : 0;
      for (i = 1; i < total1; i++)
        {
          char x = t[i];

          if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            total--;
          t[total++] = x;
        }

      total2 = total;
      total = total ? 1 : 0;
      for (i = 1; i < total2; i++)
        {
          char x = t[i];

          if (x == '\'' && i + 1 < total2 && t[i - 1] == ' ' && t[i + 1] == ' ')
            {
              total--;
              t[++i] = '\0';
            }
          t[total++] = x;
        }

      total3 = total;
      total = total ? 1 : 0;
      for (i = 1; i < total3; i++)
        {
          char x = t[i];

          if (t[i - 1] == ' ' && x == '\'' && i + 1 < total3)
            {
              char x1 = t[i + 1];

              if (x1 == 's' || x1 == 'm')
                total--;
              else if (x1 != 't' && x1 != 'd' && i + 2 < total3)
                {
                  char x2 = t[i + 2];

                  if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e'))
                    total--;
                }
            }
          t[total++] = x;
        }
      g_string_truncate (out, total);
    }
  if (out_len != NULL)
    *out_len = out->len;
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------------ */
/* streaming                                                                */

struct _RuvTokenStream
{
  RuvTokenizer *tokenizer;
  gboolean      special;
  GString      *pending;
};

RuvTokenStream *
ruv_token_stream_new (RuvTokenizer *tokenizer,
                      gboolean      special)
{
  RuvTokenStream *stream;

  g_return_val_if_fail (RUV_IS_TOKENIZER (tokenizer), NULL);
  stream = g_new0 (RuvTokenStream, 1);
  stream->tokenizer = g_object_ref (tokenizer);
  stream->special = special;
  stream->pending = g_string_new (NULL);
  return stream;
}

void
ruv_token_stream_free (RuvTokenStream *stream)
{
  if (stream == NULL)
    return;
  g_object_unref (stream->tokenizer);
  g_string_free (stream->pending, TRUE);
  g_free (stream);
}

char *
ruv_token_stream_push (RuvTokenStream *stream,
                       gint32          id)
{
  const char *p;
  gsize len = 0, cut;
  char *ready;

  g_return_val_if_fail (stream != NULL, NULL);
  p = ruv_tokenizer_token_to_piece (stream->tokenizer, id, stream->special, &len);
  if (p != NULL)
    g_string_append_len (stream->pending, p, len);
  cut = ruv_utf8_complete_prefix (stream->pending->str, stream->pending->len);
  ready = g_utf8_make_valid (stream->pending->str, (gssize) cut);
  g_string_erase (stream->pending, 0, (gssize) cut);
  return ready;
}

char *
ruv_token_stream_flush (RuvTokenStream *stream)
{
  char *rest;

  g_return_val_if_fail (stream != NULL, NULL);
  rest = g_utf8_make_valid (stream->pending->str, (gssize) stream->pending->len);
  g_string_truncate (stream->pending, 0);
  return rest;
}

gsize
ruv_token_stream_get_pending (RuvTokenStream *stream)
{
  g_return_val_if_fail (stream != NULL, 0);
  return stream->pending->len;
}
