/* ruv-tokenizer-spm.c — SentencePiece encoding: the bigram merge queue by
 * score, then byte fallback. The queue (a binary heap) is shared with BPE.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-tokenizer-private.h"

#include "ruv-unicode.h"

/* ------------------------------------------------------------------------ */
/* merge queue: a binary heap                                               */

/* TRUE when x must be popped before y: llama.cpp's comparators, inverted. */
static inline gboolean
heap_before (const Heap   *h,
             const Bigram *x,
             const Bigram *y)
{
  if (h->spm)
    return x->score > y->score || (x->score == y->score && x->left < y->left);
  return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

void
_ruv_tokenizer_heap_push (Heap         *h,
                          const Bigram *b)
{
  Bigram *v;
  gsize i;

  g_array_append_val (h->a, *b);
  v = (Bigram *) h->a->data;
  i = h->a->len - 1;
  while (i > 0)
    {
      gsize p = (i - 1) / 2;
      Bigram tmp;

      if (!heap_before (h, &v[i], &v[p]))
        break;
      tmp = v[i];
      v[i] = v[p];
      v[p] = tmp;
      i = p;
    }
}

Bigram
_ruv_tokenizer_heap_pop (Heap *h)
{
  Bigram *v = (Bigram *) h->a->data;
  Bigram top = v[0];
  gsize n = h->a->len - 1, i = 0;

  v[0] = v[n];
  g_array_set_size (h->a, n);
  for (;;)
    {
      gsize l = 2 * i + 1, r = l + 1, best = i;
      Bigram tmp;

      if (l < n && heap_before (h, &v[l], &v[best]))
        best = l;
      if (r < n && heap_before (h, &v[r], &v[best]))
        best = r;
      if (best == i)
        break;
      tmp = v[i];
      v[i] = v[best];
      v[best] = tmp;
      i = best;
    }
  return top;
}

/* ------------------------------------------------------------------------ */
/* SentencePiece                                                            */

static void
spm_try_bigram (RuvTokenizer *self,
                Heap         *heap,
                const char   *word,
                GArray       *syms,
                gint32        left,
                gint32        right)
{
  const Symbol *l, *r;
  Bigram b = { 0 };
  gint32 id;

  if (left < 0 || right < 0)
    return;
  l = &g_array_index (syms, Symbol, left);
  r = &g_array_index (syms, Symbol, right);
  id = ruv_tokenizer_lookup (self, word + l->off, l->n + r->n);
  if (id < 0)
    return;
  b.left = left;
  b.right = right;
  b.score = self->tokens[id].score;
  b.size = l->n + r->n;
  _ruv_tokenizer_heap_push (heap, &b);
}

void
_ruv_tokenizer_spm_tokenize (RuvTokenizer *self,
                             const char   *word,
                             gsize         len,
                             GArray       *out)
{
  g_autoptr(GArray) syms = g_array_new (FALSE, FALSE, sizeof (Symbol));
  Heap heap = { g_array_new (FALSE, FALSE, sizeof (Bigram)), TRUE };
  gsize off = 0;
  gint32 i;

  while (off < len)
    {
      Symbol s;

      s.off = off;
      s.n = MIN (ruv_utf8_seq_len ((guint8) word[off]), len - off);
      off += s.n;
      s.prev = (gint32) syms->len - 1;
      s.next = off == len ? -1 : (gint32) syms->len + 1;
      s.id = RUV_TOKEN_NULL;
      g_array_append_val (syms, s);
    }
  for (i = 1; i < (gint32) syms->len; i++)
    spm_try_bigram (self, &heap, word, syms, i - 1, i);
  while (heap.a->len > 0)
    {
      Bigram b = _ruv_tokenizer_heap_pop (&heap);
      Symbol *l = &g_array_index (syms, Symbol, b.left);
      Symbol *r = &g_array_index (syms, Symbol, b.right);

      if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
        continue;
      l->n += r->n;
      r->n = 0;
      l->next = r->next;
      if (r->next >= 0)
        g_array_index (syms, Symbol, r->next).prev = b.left;
      spm_try_bigram (self, &heap, word, syms, l->prev, b.left);
      spm_try_bigram (self, &heap, word, syms, b.left, l->next);
    }
  g_array_unref (heap.a);

  for (i = syms->len > 0 ? 0 : -1; i != -1; i = g_array_index (syms, Symbol, i).next)
    {
      const Symbol *s = &g_array_index (syms, Symbol, i);
      gint32 id = ruv_tokenizer_lookup (self, word + s->off, s->n);
      gsize j;

      if (id >= 0)
        {
          _ruv_tokenizer_push_id (out, id);
          continue;
        }
      /* Byte fallback; llama.cpp throws when the byte has no token, this
       * uses <unk> (or drops the byte when there is none). */
      for (j = 0; j < s->n; j++)
        {
          gint32 bt = self->byte_token[(guint8) word[s->off + j]];

          if (bt < 0)
            bt = self->unk;
          if (bt >= 0)
            _ruv_tokenizer_push_id (out, bt);
        }
    }
}
