/* ruv-tokenizer-special.c — special tokens: the ones found by name, end of
 * generation, the longest-first cache, and the split of input text around them.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-tokenizer-private.h"

#include <string.h>

/* Token names llama.cpp uses to find special tokens the metadata omits. The
 * first present name wins (llama.cpp takes the first in hash order). */
static const char *const eot_names[] = {
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
  "<EOT>", "_<EOT>", "[EOT]",
  "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
  "<end_of_utterance>", NULL
};
static const char *const eom_names[] = { "<|eom_id|>", NULL };
static const char *const fim_pre_names[] = {
  "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
  "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
  "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL
};
static const char *const fim_suf_names[] = {
  "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
  "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>",
  "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL
};
static const char *const fim_mid_names[] = {
  "<|fim_middle|>", "<fim-middle>", "<fim_middle>",
  "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
  "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL
};
static const char *const fim_pad_names[] = {
  "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL
};
static const char *const fim_rep_names[] = {
  "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL
};
static const char *const fim_sep_names[] = { "<|file_sep|>", NULL };
static const char *const eog_names[] = {
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
  "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
  "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
  "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "[e~[", NULL
};

static gint32
find_first (RuvTokenizer      *self,
            const char *const *names)
{
  gsize i;

  for (i = 0; names[i] != NULL; i++)
    {
      gint32 id = ruv_tokenizer_lookup (self, names[i], strlen (names[i]));

      if (id >= 0)
        return id;
    }
  return RUV_TOKEN_NULL;
}

/* Fills *id from names when unset, making the token a control token. */
static void
detect_special (RuvTokenizer      *self,
                gint32            *id,
                const char *const *names)
{
  if (*id != RUV_TOKEN_NULL)
    return;
  *id = find_first (self, names);
  if (*id >= 0)
    self->tokens[*id].attr |= RUV_TOKEN_ATTR_CONTROL;
}

static void
set_eog (RuvTokenizer *self,
         gint32        id)
{
  if (id >= 0 && id < self->n_vocab)
    self->tokens[id].eog = TRUE;
}

static gint
compare_special (gconstpointer a,
                 gconstpointer b,
                 gpointer      user_data)
{
  RuvTokenizer *self = user_data;
  gint32 ia = *(const gint32 *) a, ib = *(const gint32 *) b;
  guint32 la = self->tokens[ia].len, lb = self->tokens[ib].len;

  if (la != lb)
    return la > lb ? -1 : 1;
  return ia < ib ? -1 : (ia > ib);
}

static gboolean
contains_ci (const char *haystack,
             const char *needle)
{
  g_autofree char *lower = g_ascii_strdown (haystack, -1);

  return strstr (lower, needle) != NULL;
}

static void
set_rstrip (RuvTokenizer *self,
            const char   *name,
            gboolean      on)
{
  gint32 id = ruv_tokenizer_lookup (self, name, strlen (name));

  if (id < 0)
    return;
  if (on)
    self->tokens[id].attr |= RUV_TOKEN_ATTR_RSTRIP;
  else
    self->tokens[id].attr &= ~RUV_TOKEN_ATTR_RSTRIP;
}

gboolean
_ruv_tokenizer_finish_specials (RuvTokenizer  *self,
                                const RuvGguf *gguf,
                                GError       **error)
{
  static const char *const gpt_oss_user[] = {
    "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", NULL
  };
  const char *name = NULL;
  GError *local = NULL;
  gint32 id, end_id;
  gsize i;

  detect_special (self, &self->eot, eot_names);
  detect_special (self, &self->eom, eom_names);
  detect_special (self, &self->fim_pre, fim_pre_names);
  detect_special (self, &self->fim_suf, fim_suf_names);
  detect_special (self, &self->fim_mid, fim_mid_names);
  detect_special (self, &self->fim_pad, fim_pad_names);
  detect_special (self, &self->fim_rep, fim_rep_names);
  detect_special (self, &self->fim_sep, fim_sep_names);

  /* Control tokens named "...unused..." are unused. */
  for (id = 0; id < self->n_vocab; id++)
    if ((self->tokens[id].attr & RUV_TOKEN_ATTR_CONTROL)
        && strstr (_ruv_tokenizer_text (self, id), "unused"))
      self->tokens[id].attr |= RUV_TOKEN_ATTR_UNUSED;

  set_eog (self, self->fim_pad);
  set_eog (self, self->fim_rep);
  set_eog (self, self->fim_sep);
  for (i = 0; eog_names[i] != NULL; i++)
    {
      id = ruv_tokenizer_lookup (self, eog_names[i], strlen (eog_names[i]));
      if (id >= 0)
        {
          set_eog (self, id);
          self->tokens[id].attr |= RUV_TOKEN_ATTR_CONTROL;
        }
    }
  for (i = 0; gpt_oss_user[i] != NULL; i++)
    {
      id = ruv_tokenizer_lookup (self, gpt_oss_user[i], strlen (gpt_oss_user[i]));
      if (id >= 0)
        self->tokens[id].attr = RUV_TOKEN_ATTR_USER_DEFINED;
    }
  set_eog (self, self->eos);
  set_eog (self, self->eot);
  set_eog (self, self->eom);

  /* o200k_harmony and solar-open: <|end|> ends a message, not generation. */
  end_id = ruv_tokenizer_lookup (self, "<|end|>", 7);
  if (end_id >= 0 && self->tokens[end_id].eog)
    {
      gint32 ret = ruv_tokenizer_lookup (self, "<|return|>", 10);
      gint32 call = ruv_tokenizer_lookup (self, "<|call|>", 8);
      gint32 calls = ruv_tokenizer_lookup (self, "<|calls|>", 9);
      gint32 flush = ruv_tokenizer_lookup (self, "<|flush|>", 9);
      gboolean has_return = ret >= 0 && self->tokens[ret].eog;
      gboolean has_call = (call >= 0 && self->tokens[call].eog)
                          || (calls >= 0 && self->tokens[calls].eog);
      gboolean has_flush = flush >= 0 && self->tokens[flush].eog;

      if ((has_return && has_call) || (has_call && has_flush))
        {
          self->tokens[end_id].eog = FALSE;
          self->tokens[end_id].attr = RUV_TOKEN_ATTR_USER_DEFINED;
        }
    }
  /* gemma4 and paddleocr: </s> is not an end of generation there. */
  id = ruv_tokenizer_lookup (self, "<|tool_response>", 16);
  if (id >= 0 && self->tokens[id].eog)
    {
      gint32 s = ruv_tokenizer_lookup (self, "</s>", 4);

      if (s >= 0 && self->tokens[s].eog)
        {
          self->tokens[s].eog = FALSE;
          self->tokens[s].attr = RUV_TOKEN_ATTR_NORMAL;
        }
    }

  /* The special-token cache, longest text first. */
  self->special = g_new (gint32, self->n_vocab);
  self->n_special = 0;
  for (id = 0; id < self->n_vocab; id++)
    if (self->tokens[id].attr
        & (RUV_TOKEN_ATTR_CONTROL | RUV_TOKEN_ATTR_USER_DEFINED | RUV_TOKEN_ATTR_UNKNOWN))
      self->special[self->n_special++] = id;
  g_qsort_with_data (self->special, (gint) self->n_special, sizeof (gint32), compare_special, self);

  _ruv_tokenizer_build_pieces (self);

  /* Phi-3: special tokens swallow the whitespace that follows them. */
  if (!ruv_gguf_get_string (gguf, "general.name", &name, &local))
    {
      g_clear_error (&local);
      name = NULL;
    }
  if (name != NULL && (contains_ci (name, "phi-3") || contains_ci (name, "phi3")))
    {
      for (i = 0; i < self->n_special; i++)
        self->tokens[self->special[i]].attr |= RUV_TOKEN_ATTR_RSTRIP;
      set_rstrip (self, "</s>", TRUE);
      set_rstrip (self, "<unk>", FALSE);
      set_rstrip (self, "<s>", FALSE);
      set_rstrip (self, "<|endoftext|>", FALSE);
    }
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* special-token partition                                                  */

static const char *
find_bytes (const char *hay,
            gsize       hay_len,
            const char *needle,
            gsize       needle_len)
{
  const char *end, *p;

  if (needle_len == 0 || needle_len > hay_len)
    return NULL;
  end = hay + hay_len - needle_len;
  for (p = hay; p <= end; p++)
    {
      p = memchr (p, needle[0], (gsize) (end - p) + 1);
      if (p == NULL)
        return NULL;
      if (memcmp (p, needle, needle_len) == 0)
        return p;
    }
  return NULL;
}

static inline gboolean
c_isspace (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

GArray *
_ruv_tokenizer_partition (RuvTokenizer *self,
                          const char   *text,
                          gsize         len,
                          gboolean      parse_special)
{
  GArray *frags = g_array_new (FALSE, FALSE, sizeof (Fragment));
  gsize s, f;

  if (len > 0)
    {
      Fragment whole = { RUV_TOKEN_NULL, 0, len };

      g_array_append_val (frags, whole);
    }
  for (s = 0; s < self->n_special && frags->len > 0; s++)
    {
      gint32 id = self->special[s];
      const Token *t = &self->tokens[id];
      const char *ttext = _ruv_tokenizer_text (self, id);
      GArray *out;

      if (!parse_special && (t->attr & (RUV_TOKEN_ATTR_CONTROL | RUV_TOKEN_ATTR_UNKNOWN)))
        continue;
      out = g_array_sized_new (FALSE, FALSE, sizeof (Fragment), frags->len);
      for (f = 0; f < frags->len; f++)
        {
          Fragment fr = g_array_index (frags, Fragment, f);
          gsize off = fr.off, rem = fr.len;

          if (fr.token != RUV_TOKEN_NULL)
            {
              g_array_append_val (out, fr);
              continue;
            }
          while (rem > 0)
            {
              const char *m = find_bytes (text + off, rem, ttext, t->len);
              Fragment piece;
              gsize mpos;

              if (m == NULL)
                {
                  piece.token = RUV_TOKEN_NULL;
                  piece.off = off;
                  piece.len = rem;
                  g_array_append_val (out, piece);
                  break;
                }
              mpos = (gsize) (m - text);
              if (mpos > off)
                {
                  gsize left = mpos - off;

                  if (t->attr & RUV_TOKEN_ATTR_LSTRIP)
                    while (left > 0 && c_isspace (text[off + left - 1]))
                      left--;
                  if (left > 0)
                    {
                      piece.token = RUV_TOKEN_NULL;
                      piece.off = off;
                      piece.len = left;
                      g_array_append_val (out, piece);
                    }
                }
              piece.token = id;
              piece.off = mpos;
              piece.len = t->len;
              g_array_append_val (out, piece);
              rem -= (mpos - off) + t->len;
              off = mpos + t->len;
              if (t->attr & RUV_TOKEN_ATTR_RSTRIP)
                while (rem > 0 && c_isspace (text[off]))
                  {
                    off++;
                    rem--;
                  }
            }
        }
      g_array_unref (frags);
      frags = out;
    }
  return frags;
}
