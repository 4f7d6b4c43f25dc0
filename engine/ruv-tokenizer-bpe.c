/* ruv-tokenizer-bpe.c — byte-level BPE encoding: the GPT-2 byte
 * encoding of each pre-tokenized word, then merges by rank.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-tokenizer-private.h"

#include "ruv-unicode.h"

/* ------------------------------------------------------------------------ */
/* byte-level BPE                                                           */

static void
bpe_add_bigram (RuvTokenizer *self,
                Heap         *heap,
                GArray       *syms,
                gint32        left,
                gint32        right)
{
  const Symbol *l, *r;
  Bigram b = { 0 };

  if (left < 0 || right < 0)
    return;
  l = &g_array_index (syms, Symbol, left);
  r = &g_array_index (syms, Symbol, right);
  if (l->id < 0 || r->id < 0 || !_ruv_tokenizer_merge_find (self, l->id, r->id, &b.rank, &b.result))
    return;
  b.left = left;
  b.right = right;
  b.size = l->n + r->n;
  _ruv_tokenizer_heap_push (heap, &b);
}

static void
bpe_word (RuvTokenizer *self,
          const char   *word,
          gsize         len,
          GArray       *syms,
          Heap         *heap,
          GArray       *out)
{
  gsize off = 0;
  gint32 i, id;

  if (self->ignore_merges && (id = ruv_tokenizer_lookup (self, word, len)) >= 0)
    {
      _ruv_tokenizer_push_id (out, id);
      return;
    }
  g_array_set_size (syms, 0);
  g_array_set_size (heap->a, 0);
  while (off < len)
    {
      Symbol s;

      s.off = off;
      s.n = MIN (ruv_utf8_seq_len ((guint8) word[off]), len - off);
      s.id = ruv_tokenizer_lookup (self, word + off, s.n);
      off += s.n;
      s.prev = (gint32) syms->len - 1;
      s.next = off == len ? -1 : (gint32) syms->len + 1;
      g_array_append_val (syms, s);
    }
  for (i = 1; i < (gint32) syms->len; i++)
    bpe_add_bigram (self, heap, syms, i - 1, i);
  while (heap->a->len > 0)
    {
      Bigram b = _ruv_tokenizer_heap_pop (heap);
      Symbol *l = &g_array_index (syms, Symbol, b.left);
      Symbol *r = &g_array_index (syms, Symbol, b.right);

      /* Stale entries: a side merged away or grown since it was queued. */
      if (l->n == 0 || r->n == 0 || l->next != b.right || l->n + r->n != b.size)
        continue;
      l->n += r->n;
      l->id = b.result;
      r->n = 0;
      l->next = r->next;
      if (r->next >= 0)
        g_array_index (syms, Symbol, r->next).prev = b.left;
      bpe_add_bigram (self, heap, syms, l->prev, b.left);
      bpe_add_bigram (self, heap, syms, b.left, l->next);
    }
  for (i = 0; i < (gint32) syms->len; i++)
    {
      const Symbol *s = &g_array_index (syms, Symbol, i);
      gsize j;

      if (s->n == 0)
        continue;
      if (s->id >= 0)
        {
          _ruv_tokenizer_push_id (out, s->id);
          continue;
        }
      /* A code point with no token: each of its bytes as a 1-byte token. */
      for (j = 0; j < s->n; j++)
        if (self->byte_token[(guint8) word[s->off + j]] >= 0)
          _ruv_tokenizer_push_id (out, self->byte_token[(guint8) word[s->off + j]]);
    }
}

void
_ruv_tokenizer_bpe_tokenize (RuvTokenizer *self,
                             const char   *text,
                             gsize         len,
                             GArray       *out)
{
  g_autofree gunichar *cpts = g_new (gunichar, len + 1);
  g_autofree guint *flags = g_new (guint, len + 1);
  g_autoptr(GArray) segs = NULL;
  g_autoptr(GArray) syms = g_array_new (FALSE, FALSE, sizeof (Symbol));
  g_autoptr(GString) word = g_string_new (NULL);
  Heap heap = { g_array_new (FALSE, FALSE, sizeof (Bigram)), FALSE };
  gsize n = 0, off = 0, start = 0, k, i;

  while (off < len)
    {
      cpts[n] = ruv_utf8_decode ((const guint8 *) text, len, &off);
      flags[n] = ruv_unicode_flags (cpts[n]);
      n++;
    }
  segs = _ruv_tokenizer_pre_tokenize (self->pre, cpts, flags, n);
  for (k = 0; k < segs->len; k++)
    {
      gsize end = start + g_array_index (segs, gsize, k);

      /* GPT-2 byte encoding of the word's UTF-8. */
      g_string_truncate (word, 0);
      for (i = start; i < end; i++)
        {
          guint8 u[4], g[4];
          gsize nu = ruv_utf8_encode (cpts[i], u), j;

          for (j = 0; j < nu; j++)
            g_string_append_len (word, (const char *) g,
                                 ruv_utf8_encode (ruv_gpt2_byte_to_unichar (u[j]), g));
        }
      bpe_word (self, word->str, word->len, syms, &heap, out);
      start = end;
    }
  g_array_unref (heap.a);
}
