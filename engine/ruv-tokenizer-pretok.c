/* ruv-tokenizer-pretok.c — byte-level BPE pre-tokenizers: llama.cpp's
 * hand-written scanners for each tokenizer.ggml.pre family, over code points.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-tokenizer-private.h"

#include "ruv-unicode.h"

#define OUT_OF_RANGE G_MAXUINT32

/* ------------------------------------------------------------------------ */
/* BPE pre-tokenizers: llama.cpp's scanners over code points                 */

typedef struct
{
  const gunichar *cpts;
  const guint    *flags;
  gsize           ini;
  gsize           end;
  gsize           prev_end;
  GArray         *out;      /* gsize lengths */
} Scan;

static inline gunichar
sc_cpt (const Scan *s,
        gsize       pos)
{
  return (pos >= s->ini && pos < s->end) ? s->cpts[pos] : OUT_OF_RANGE;
}

static inline guint
sc_flags (const Scan *s,
          gsize       pos)
{
  return (pos >= s->ini && pos < s->end) ? s->flags[pos] : 0;
}

static inline gsize
sc_add (Scan *s,
        gsize end)
{
  gsize len = end - s->prev_end;

  if (len > 0)
    g_array_append_val (s->out, len);
  s->prev_end = end;
  return len;
}

#define F_WS  RUV_UCAT_WHITESPACE
#define F_L   RUV_UCAT_LETTER
#define F_N   RUV_UCAT_NUMBER
#define F_M   RUV_UCAT_MARK

/* 's|'t|'re|'ve|'m|'ll|'d (ci: case-insensitive). Returns TRUE if taken. */
static gboolean
sc_contraction (Scan    *s,
                gsize   *pos,
                gboolean ci)
{
  gsize p = *pos;
  gunichar n1, n2;

  if (sc_cpt (s, p) != '\'' || p + 1 >= s->end)
    return FALSE;
  n1 = sc_cpt (s, p + 1);
  if (ci)
    n1 = g_unichar_tolower (n1);
  if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd')
    {
      *pos += sc_add (s, p + 2);
      return TRUE;
    }
  if (p + 2 < s->end)
    {
      n2 = sc_cpt (s, p + 2);
      if (ci)
        n2 = g_unichar_tolower (n2);
      if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l'))
        {
          *pos += sc_add (s, p + 3);
          return TRUE;
        }
    }
  return FALSE;
}

/* The whitespace tail shared by all scanners: \s*[\r\n]+ (when rn),
 * \s+(?!\S), \s+, or a single code point. */
static void
sc_whitespace (Scan    *s,
               gsize   *pos,
               gboolean rn)
{
  gsize nws = 0, last_rn = 0;

  while (sc_flags (s, *pos + nws) & F_WS)
    {
      gunichar c = sc_cpt (s, *pos + nws);

      if (c == '\r' || c == '\n')
        last_rn = *pos + nws + 1;
      nws++;
    }
  if (rn && last_rn > 0)
    {
      *pos = last_rn;
      sc_add (s, *pos);
      return;
    }
  if (nws > 1 && sc_cpt (s, *pos + nws) != OUT_OF_RANGE)
    {
      *pos += nws - 1;
      sc_add (s, *pos);
      return;
    }
  if (nws > 0)
    {
      *pos += nws;
      sc_add (s, *pos);
      return;
    }
  sc_add (s, ++*pos);
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void
scan_gpt2 (Scan *s)
{
  gsize pos = s->ini;

  while (pos < s->end)
    {
      gunichar cpt = sc_cpt (s, pos);
      guint flags = sc_flags (s, pos);
      guint f2;

      if (sc_contraction (s, &pos, FALSE))
        continue;
      f2 = cpt == ' ' ? sc_flags (s, pos + 1) : flags;
      if (f2 & F_L)
        {
          pos += cpt == ' ';
          while (f2 & F_L)
            f2 = sc_flags (s, ++pos);
          sc_add (s, pos);
          continue;
        }
      if (f2 & F_N)
        {
          pos += cpt == ' ';
          while (f2 & F_N)
            f2 = sc_flags (s, ++pos);
          sc_add (s, pos);
          continue;
        }
      if (!(f2 & (F_WS | F_L | F_N)) && f2)
        {
          pos += cpt == ' ';
          while (!(f2 & (F_WS | F_L | F_N)) && f2)
            f2 = sc_flags (s, ++pos);
          sc_add (s, pos);
          continue;
        }
      sc_whitespace (s, &pos, FALSE);
    }
}

/* llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *         ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * qwen2: the same with \p{N} single digits; qwen35: letters include \p{M}. */
static void
scan_llama3_family (Scan   *s,
                    PreType pre)
{
  guint letter = pre == PRE_QWEN35 ? (F_L | F_M) : F_L;
  guint word = F_WS | F_N | letter;
  gsize pos = s->ini;

  while (pos < s->end)
    {
      gunichar cpt = sc_cpt (s, pos);
      guint flags = sc_flags (s, pos);
      guint f2;

      if (sc_contraction (s, &pos, TRUE))
        continue;
      if (!(cpt == '\r' || cpt == '\n' || (flags & F_N)))
        {
          if ((flags & letter) || (sc_flags (s, pos + 1) & letter))
            {
              pos++;
              while (sc_flags (s, pos) & letter)
                pos++;
              sc_add (s, pos);
              continue;
            }
        }
      if (flags & F_N)
        {
          if (pre == PRE_LLAMA3)
            {
              gsize ini = pos;

              while (sc_flags (s, pos) & F_N)
                {
                  if (++pos - ini >= 3)
                    {
                      sc_add (s, pos);
                      ini = pos;
                    }
                }
              sc_add (s, pos);
            }
          else
            sc_add (s, ++pos);
          continue;
        }
      f2 = cpt == ' ' ? sc_flags (s, pos + 1) : flags;
      if (!(f2 & word) && flags)
        {
          gunichar c2;

          pos += cpt == ' ';
          while (!(f2 & word) && f2)
            f2 = sc_flags (s, ++pos);
          c2 = sc_cpt (s, pos);
          while (c2 == '\r' || c2 == '\n')
            c2 = sc_cpt (s, ++pos);
          sc_add (s, pos);
          continue;
        }
      sc_whitespace (s, &pos, TRUE);
    }
}

typedef gboolean (*CptPredicate) (gunichar c, guint flags);

static gboolean
pred_number (gunichar c,
             guint    flags)
{
  return (flags & F_N) != 0;
}

/* [\p{P}\$\+<=>\^~\|]: llama.cpp runs it on its "collapsed" text, where ASCII
 * stays itself and other code points become one byte per category. */
static gboolean
pred_punct_default (gunichar c,
                    guint    flags)
{
  if (c < 128)
    return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x5f)
           || (c >= 0x7b && c <= 0x7e);
  return !(flags & F_WS) && (flags & RUV_UCAT_CATEGORY_MASK) == RUV_UCAT_PUNCTUATION;
}

static gboolean
pred_ascii_digit (gunichar c,
                  guint    flags)
{
  return c >= '0' && c <= '9';
}

/* Splits each segment around the matches of X (single: X is one code point;
 * runs: X+; triple: exactly three), keeping the gaps, as llama.cpp's
 * std::regex fallback does for these patterns. */
static GArray *
split_matches (const gunichar *cpts,
               const guint    *flags,
               GArray         *segs,
               CptPredicate    pred,
               guint           mode)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gsize));
  gsize start = 0, k;

  for (k = 0; k < segs->len; k++)
    {
      gsize end = start + g_array_index (segs, gsize, k);
      gsize pos = start, last = start;

      while (pos < end)
        {
          gsize e = pos;

          if (mode == 3)
            {
              while (e < end && e - pos < 3 && pred (cpts[e], flags[e]))
                e++;
              if (e - pos < 3)
                e = pos;
            }
          else if (pred (cpts[pos], flags[pos]))
            {
              e = pos + 1;
              if (mode == 2)
                while (e < end && pred (cpts[e], flags[e]))
                  e++;
            }
          if (e == pos)
            {
              pos++;
              continue;
            }
          if (pos > last)
            {
              gsize gap = pos - last;

              g_array_append_val (out, gap);
            }
          {
            gsize m = e - pos;

            g_array_append_val (out, m);
          }
          pos = last = e;
        }
      if (last < end)
        {
          gsize tail = end - last;

          g_array_append_val (out, tail);
        }
      start = end;
    }
  return out;
}

static GArray *
scan_segments (const gunichar *cpts,
               const guint    *flags,
               GArray         *segs,
               PreType         pre)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gsize));
  Scan s = { cpts, flags, 0, 0, 0, out };
  gsize k;

  for (k = 0; k < segs->len; k++)
    {
      s.end = s.ini + g_array_index (segs, gsize, k);
      s.prev_end = s.ini;
      if (pre == PRE_GPT2)
        scan_gpt2 (&s);
      else
        scan_llama3_family (&s, pre);
      s.ini = s.end;
    }
  return out;
}

GArray *
_ruv_tokenizer_pre_tokenize (PreType         pre,
                             const gunichar *cpts,
                             const guint    *flags,
                             gsize           n)
{
  GArray *segs = g_array_new (FALSE, FALSE, sizeof (gsize));
  GArray *next;

  g_array_append_val (segs, n);
#define STEP(expr) G_STMT_START { next = (expr); g_array_unref (segs); segs = next; } G_STMT_END
  switch (pre)
    {
    case PRE_GPT2:
    case PRE_LLAMA3:
    case PRE_QWEN2:
    case PRE_QWEN35:
      STEP (scan_segments (cpts, flags, segs, pre));
      break;
    case PRE_STARCODER:
      STEP (split_matches (cpts, flags, segs, pred_number, 1));
      STEP (scan_segments (cpts, flags, segs, PRE_GPT2));
      break;
    case PRE_DEFAULT:
    default:
      STEP (split_matches (cpts, flags, segs, pred_punct_default, 2));
      STEP (scan_segments (cpts, flags, segs, PRE_GPT2));
      STEP (split_matches (cpts, flags, segs, pred_number, 2));
      STEP (split_matches (cpts, flags, segs, pred_ascii_digit, 3));
      break;
    }
#undef STEP
  return segs;
}
