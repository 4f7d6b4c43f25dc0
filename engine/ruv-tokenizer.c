/* ruv-tokenizer.c — SentencePiece and byte-level BPE tokenizers from GGUF metadata.
 * SPDX-License-Identifier: MIT
 *
 * A re-expression of llama.cpp's llama-vocab.cpp and unicode.cpp (release
 * v0.4.0): same defaults, same special-token partition, same SPM bigram
 * queue, same BPE rank queue, same hand-written pre-tokenizer scanners, same
 * detokenizer clean-up. Where llama.cpp would abort or throw on bad metadata,
 * this file returns RUV_ERROR_TOKENIZATION instead.
 *
 * Shapes: tokens[n_vocab] (text in one buffer, NUL after each), an open-
 * addressing table text -> id, a table (left id, right id) -> (rank, result
 * id) for BPE merges, and every token's detokenized piece precomputed.
 *
 * This file: the object, its lookup tables and their construction from GGUF
 * metadata, the accessors and encode. Special tokens are in
 * ruv-tokenizer-special.c, SentencePiece in ruv-tokenizer-spm.c, the
 * pre-tokenizers in ruv-tokenizer-pretok.c, BPE in ruv-tokenizer-bpe.c and
 * pieces, decode and streaming in ruv-tokenizer-decode.c.
 */
#include "ruv-tokenizer-private.h"

#include <math.h>
#include <string.h>

#include "ruv-error.h"

enum
{
  PRE_IGNORE_MERGES = 1 << 0,
  PRE_ADD_BOS       = 1 << 1,
  PRE_NO_CLEAN      = 1 << 2,
  PRE_NO_BOS_ID     = 1 << 3,
};

/* tokenizer.ggml.pre names llama.cpp maps to one of the scanners here, with
 * the flags its loader sets for them. */
static const struct
{
  const char *name;
  PreType     pre;
  guint       flags;
} pre_table[] = {
  { "default", PRE_DEFAULT, 0 },
  { "llama3", PRE_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS },
  { "llama-v3", PRE_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS },
  { "llama-bpe", PRE_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS },
  { "falcon3", PRE_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS },
  { "falcon-h1", PRE_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS },
  { "pixtral", PRE_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS },
  { "midm-2.0", PRE_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS },
  { "lfm2", PRE_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS },
  { "jina-v5-nano", PRE_LLAMA3, PRE_IGNORE_MERGES | PRE_ADD_BOS },
  { "dbrx", PRE_LLAMA3, 0 },
  { "smaug-bpe", PRE_LLAMA3, 0 },
  { "glm4", PRE_LLAMA3, PRE_NO_BOS_ID },
  { "chatglm-bpe", PRE_LLAMA3, PRE_NO_BOS_ID },
  { "gpt-2", PRE_GPT2, 0 },
  { "phi-2", PRE_GPT2, 0 },
  { "jina-es", PRE_GPT2, 0 },
  { "jina-de", PRE_GPT2, 0 },
  { "gigachat", PRE_GPT2, 0 },
  { "jina-v2-es", PRE_GPT2, 0 },
  { "jina-v2-de", PRE_GPT2, 0 },
  { "a.x-4.0", PRE_GPT2, 0 },
  { "mellum", PRE_GPT2, 0 },
  { "modern-bert", PRE_GPT2, 0 },
  { "mpt", PRE_GPT2, 0 },
  { "olmo", PRE_GPT2, 0 },
  { "jais", PRE_GPT2, 0 },
  { "exaone4", PRE_GPT2, 0 },
  { "trillion", PRE_GPT2, PRE_NO_CLEAN },
  { "granite-docling", PRE_GPT2, PRE_NO_CLEAN },
  { "starcoder", PRE_STARCODER, 0 },
  { "refact", PRE_STARCODER, 0 },
  { "codeshell", PRE_STARCODER, 0 },
  { "exaone", PRE_STARCODER, 0 },
  { "minerva-7b", PRE_STARCODER, 0 },
  { "mellum2", PRE_STARCODER, 0 },
  { "command-r", PRE_STARCODER, PRE_NO_CLEAN },
  { "smollm", PRE_STARCODER, PRE_NO_CLEAN },
  { "qwen2", PRE_QWEN2, PRE_NO_CLEAN },
  { "deepseek-r1-qwen", PRE_QWEN2, PRE_NO_CLEAN },
  { "kormo", PRE_QWEN2, PRE_NO_CLEAN },
  { "f2llmv2", PRE_QWEN2, PRE_NO_CLEAN },
  { "hunyuan", PRE_QWEN2, PRE_NO_CLEAN },
  { "solar-open", PRE_QWEN2, PRE_NO_CLEAN },
  { "grok-2", PRE_QWEN2, PRE_NO_CLEAN },
  { "stablelm2", PRE_QWEN2, 0 },
  { "megrez", PRE_QWEN2, 0 },
  { "qwen35", PRE_QWEN35, PRE_NO_CLEAN },
};

G_DEFINE_FINAL_TYPE (RuvTokenizer, ruv_tokenizer, G_TYPE_OBJECT)

static void
ruv_tokenizer_finalize (GObject *object)
{
  RuvTokenizer *self = RUV_TOKENIZER (object);

  g_free (self->pre_name);
  g_free (self->tokens);
  g_free (self->text);
  g_free (self->pieces);
  g_free (self->slots);
  g_free (self->merges);
  g_free (self->special);
  G_OBJECT_CLASS (ruv_tokenizer_parent_class)->finalize (object);
}

static void
ruv_tokenizer_class_init (RuvTokenizerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ruv_tokenizer_finalize;
}

static void
ruv_tokenizer_init (RuvTokenizer *self)
{
}

/* ------------------------------------------------------------------------ */
/* lookup tables                                                            */

static inline guint64
hash_bytes (const char *s,
            gsize       len)
{
  guint64 h = G_GUINT64_CONSTANT (14695981039346656037);
  gsize i;

  for (i = 0; i < len; i++)
    h = (h ^ (guint8) s[i]) * G_GUINT64_CONSTANT (1099511628211);
  return h;
}

static inline guint64
hash_u64 (guint64 x)
{
  x ^= x >> 33;
  x *= G_GUINT64_CONSTANT (0xff51afd7ed558ccd);
  x ^= x >> 33;
  x *= G_GUINT64_CONSTANT (0xc4ceb9fe1a85ec53);
  x ^= x >> 33;
  return x;
}

gint32
ruv_tokenizer_lookup (RuvTokenizer *self,
                      const char   *s,
                      gsize         len)
{
  gsize i;
  gint32 id;

  g_return_val_if_fail (RUV_IS_TOKENIZER (self), RUV_TOKEN_NULL);
  i = hash_bytes (s, len) & self->slot_mask;
  while ((id = self->slots[i]) >= 0)
    {
      if (self->tokens[id].len == len && memcmp (_ruv_tokenizer_text (self, id), s, len) == 0)
        return id;
      i = (i + 1) & self->slot_mask;
    }
  return RUV_TOKEN_NULL;
}

gboolean
_ruv_tokenizer_merge_find (RuvTokenizer *self,
                           gint32        left,
                           gint32        right,
                           gint32       *rank,
                           gint32       *result)
{
  guint64 key = ((guint64) (guint32) left << 32) | (guint32) right;
  gsize i;

  if (self->merges == NULL)
    return FALSE;
  i = hash_u64 (key) & self->merge_mask;
  while (self->merges[i].key != G_MAXUINT64)
    {
      if (self->merges[i].key == key)
        {
          *rank = self->merges[i].rank;
          *result = self->merges[i].result;
          return TRUE;
        }
      i = (i + 1) & self->merge_mask;
    }
  return FALSE;
}

static gsize
table_size (guint64 n)
{
  gsize size = 16;

  while (size < n * 2)
    size <<= 1;
  return size;
}

/* ------------------------------------------------------------------------ */
/* loading                                                                  */

static gboolean
tok_error (GError    **error,
           const char *file,
           const char *format,
           ...) G_GNUC_PRINTF (3, 4);

static gboolean
tok_error (GError    **error,
           const char *file,
           const char *format,
           ...)
{
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, RUV_ERROR, RUV_ERROR_TOKENIZATION, "%s%s%s",
               file ? file : "", file ? ": " : "", msg);
  return FALSE;
}

/* Reads an optional metadata value through getter; a present value of the
 * wrong type becomes a TOKENIZATION error. */
static gboolean
rewrap (GError  *local,
        GError **error)
{
  if (local == NULL)
    return TRUE;
  g_set_error_literal (error, RUV_ERROR, RUV_ERROR_TOKENIZATION, local->message);
  g_error_free (local);
  return FALSE;
}

static gboolean
get_opt_bool (const RuvGguf *gguf,
              const char    *key,
              gboolean      *value,
              GError       **error)
{
  GError *local = NULL;

  ruv_gguf_get_bool (gguf, key, value, &local);
  return rewrap (local, error);
}

/* An optional special-token id. strict: an id out of range is an error;
 * otherwise it is ignored and the default kept, as llama.cpp does. */
static gboolean
get_opt_id (RuvTokenizer  *self,
            const RuvGguf *gguf,
            const char    *key,
            gint32        *id,
            gboolean       strict,
            GError       **error)
{
  GError *local = NULL;
  guint64 v;

  if (*id >= self->n_vocab)
    *id = RUV_TOKEN_NULL;
  if (!ruv_gguf_get_uint (gguf, key, &v, &local))
    return rewrap (local, error);
  if (v >= (guint64) self->n_vocab)
    {
      if (strict)
        return tok_error (error, ruv_gguf_get_filename (gguf),
                          "%s = %" G_GUINT64_FORMAT " is outside the vocabulary (%d tokens)",
                          key, v, self->n_vocab);
      g_debug ("%s = %" G_GUINT64_FORMAT " is outside the vocabulary, ignored", key, v);
      return TRUE;
    }
  *id = (gint32) v;
  return TRUE;
}

static gboolean
load_tokens (RuvTokenizer  *self,
             const RuvGguf *gguf,
             GError       **error)
{
  const char *file = ruv_gguf_get_filename (gguf);
  const char *key = "tokenizer.ggml.tokens";
  RuvGgufType et;
  guint64 n, i, total = 0;
  g_autofree float *scores = NULL;
  g_autofree gint32 *types = NULL;
  gsize pos = 0;

  if (!ruv_gguf_get_array_info (gguf, key, &et, &n))
    return tok_error (error, file, "%s is missing or not an array", key);
  if (et != RUV_GGUF_TYPE_STRING)
    return tok_error (error, file, "%s is not an array of strings", key);
  if (n == 0 || n >= G_MAXINT32)
    return tok_error (error, file, "%s has %" G_GUINT64_FORMAT " tokens", key, n);
  self->n_vocab = (gint32) n;

  /* Sizes first: every string lies inside the file, so this sum is bounded. */
  for (i = 0; i < n; i++)
    {
      gsize len = 0;

      if (ruv_gguf_get_array_string (gguf, key, i, &len) == NULL)
        return tok_error (error, file, "%s[%" G_GUINT64_FORMAT "] is unreadable", key, i);
      if (len >= G_MAXUINT32 - 32)
        return tok_error (error, file, "%s[%" G_GUINT64_FORMAT "] is too long", key, i);
      total += (len == 0 ? 32 : len) + 1;
    }

  if (ruv_gguf_has_key (gguf, "tokenizer.ggml.scores"))
    {
      GError *local = NULL;

      if (!ruv_gguf_get_array_info (gguf, "tokenizer.ggml.scores", &et, &i)
          || (et != RUV_GGUF_TYPE_FLOAT32 && et != RUV_GGUF_TYPE_INT32))
        return tok_error (error, file, "tokenizer.ggml.scores is not an array of float32 or int32");
      if (i != n)
        return tok_error (error, file, "tokenizer.ggml.scores has %" G_GUINT64_FORMAT
                          " entries for %" G_GUINT64_FORMAT " tokens", i, n);
      scores = g_new (float, n);
      if (!ruv_gguf_get_array_f32 (gguf, "tokenizer.ggml.scores", scores, n, &local))
        return rewrap (local, error);
      for (i = 0; i < n; i++)
        if (isnan (scores[i]))
          return tok_error (error, file, "tokenizer.ggml.scores[%" G_GUINT64_FORMAT "] is NaN", i);
    }
  if (ruv_gguf_has_key (gguf, "tokenizer.ggml.token_type"))
    {
      GError *local = NULL;

      if (!ruv_gguf_get_array_info (gguf, "tokenizer.ggml.token_type", &et, &i)
          || et != RUV_GGUF_TYPE_INT32)
        return tok_error (error, file, "tokenizer.ggml.token_type is not an array of int32");
      if (i != n)
        return tok_error (error, file, "tokenizer.ggml.token_type has %" G_GUINT64_FORMAT
                          " entries for %" G_GUINT64_FORMAT " tokens", i, n);
      types = g_new (gint32, n);
      if (!ruv_gguf_get_array_i32 (gguf, "tokenizer.ggml.token_type", types, n, &local))
        return rewrap (local, error);
    }

  self->tokens = g_new0 (Token, n);
  self->text = g_malloc (total);
  self->slot_mask = table_size (n) - 1;
  self->slots = g_new (gint32, self->slot_mask + 1);
  memset (self->slots, 0xff, (self->slot_mask + 1) * sizeof (gint32));

  for (i = 0; i < n; i++)
    {
      Token *t = &self->tokens[i];
      gsize len = 0;
      const char *s = ruv_gguf_get_array_string (gguf, key, i, &len);
      gint32 dup;
      gsize slot;

      t->off = pos;
      if (len == 0)
        len = g_snprintf (self->text + pos, 32, "[EMPTY_%" G_GUINT64_FORMAT "]", i);
      else
        memcpy (self->text + pos, s, len);
      self->text[pos + len] = '\0';
      t->len = (guint32) len;
      pos += len + 1;
      t->score = scores ? scores[i] : 0.0f;
      t->attr = RUV_TOKEN_ATTR_NORMAL;
      if (types)
        {
          switch (types[i])
            {
            case 1: t->attr = RUV_TOKEN_ATTR_NORMAL; break;
            case 2: t->attr = RUV_TOKEN_ATTR_UNKNOWN; break;
            case 3: t->attr = RUV_TOKEN_ATTR_CONTROL; break;
            case 4: t->attr = RUV_TOKEN_ATTR_USER_DEFINED; break;
            case 5: t->attr = RUV_TOKEN_ATTR_UNUSED; break;
            case 6: t->attr = RUV_TOKEN_ATTR_BYTE; break;
            default: t->attr = RUV_TOKEN_ATTR_UNDEFINED; break;
            }
        }
      dup = ruv_tokenizer_lookup (self, self->text + t->off, len);
      if (dup >= 0)
        return tok_error (error, file, "%s[%" G_GUINT64_FORMAT "] repeats token %d", key, i, dup);
      slot = hash_bytes (self->text + t->off, len) & self->slot_mask;
      while (self->slots[slot] >= 0)
        slot = (slot + 1) & self->slot_mask;
      self->slots[slot] = (gint32) i;
    }
  return TRUE;
}

static gboolean
load_merges (RuvTokenizer  *self,
             const RuvGguf *gguf,
             GError       **error)
{
  const char *file = ruv_gguf_get_filename (gguf);
  const char *key = "tokenizer.ggml.merges";
  g_autoptr(GString) joined = g_string_new (NULL);
  RuvGgufType et;
  guint64 n, i;

  if (!ruv_gguf_get_array_info (gguf, key, &et, &n))
    return tok_error (error, file, "%s is missing (a gpt2 tokenizer needs merges)", key);
  if (et != RUV_GGUF_TYPE_STRING)
    return tok_error (error, file, "%s is not an array of strings", key);
  if (n >= G_MAXINT32)
    return tok_error (error, file, "%s has %" G_GUINT64_FORMAT " entries", key, n);
  self->merge_mask = table_size (n) - 1;
  self->merges = g_new (MergeSlot, self->merge_mask + 1);
  for (i = 0; i <= self->merge_mask; i++)
    self->merges[i].key = G_MAXUINT64;

  for (i = 0; i < n; i++)
    {
      gsize len = 0, sp;
      const char *s = ruv_gguf_get_array_string (gguf, key, i, &len);
      const char *space;
      gint32 left, right, result, r0, x0;
      guint64 k;
      gsize slot;

      if (s == NULL)
        return tok_error (error, file, "%s[%" G_GUINT64_FORMAT "] is unreadable", key, i);
      /* As llama.cpp: split at the first space after the first byte. */
      space = len > 1 ? memchr (s + 1, ' ', len - 1) : NULL;
      if (space == NULL)
        return tok_error (error, file, "%s[%" G_GUINT64_FORMAT "] is not \"left right\"", key, i);
      sp = (gsize) (space - s);
      left = ruv_tokenizer_lookup (self, s, sp);
      right = ruv_tokenizer_lookup (self, space + 1, len - sp - 1);
      g_string_truncate (joined, 0);
      g_string_append_len (joined, s, sp);
      g_string_append_len (joined, space + 1, len - sp - 1);
      result = ruv_tokenizer_lookup (self, joined->str, joined->len);
      if (left < 0 || right < 0 || result < 0)
        return tok_error (error, file, "%s[%" G_GUINT64_FORMAT "] names a token that is not in "
                          "tokenizer.ggml.tokens", key, i);
      /* The first rank of a repeated pair stands (std::unordered_map::emplace). */
      if (_ruv_tokenizer_merge_find (self, left, right, &r0, &x0))
        continue;
      k = ((guint64) (guint32) left << 32) | (guint32) right;
      slot = hash_u64 (k) & self->merge_mask;
      while (self->merges[slot].key != G_MAXUINT64)
        slot = (slot + 1) & self->merge_mask;
      self->merges[slot].key = k;
      self->merges[slot].rank = (gint32) i;
      self->merges[slot].result = result;
    }
  return TRUE;
}

RuvTokenizer *
ruv_tokenizer_new_from_gguf (const RuvGguf  *gguf,
                             GError        **error)
{
  g_autoptr(RuvTokenizer) self = NULL;
  const char *file;
  const char *model = NULL;
  const char *pre = NULL;
  guint pre_flags = 0;
  GError *local = NULL;
  gsize i;
  int b;

  g_return_val_if_fail (gguf != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  file = ruv_gguf_get_filename (gguf);
  self = g_object_new (RUV_TYPE_TOKENIZER, NULL);
  self->eot = self->eom = self->sep = self->pad = self->mask = RUV_TOKEN_NULL;
  self->fim_pre = self->fim_suf = self->fim_mid = RUV_TOKEN_NULL;
  self->fim_pad = self->fim_rep = self->fim_sep = RUV_TOKEN_NULL;

  if (!ruv_gguf_get_string (gguf, "tokenizer.ggml.model", &model, &local))
    {
      if (local != NULL)
        return (rewrap (local, error), NULL);
      return (tok_error (error, file, "tokenizer.ggml.model is missing"), NULL);
    }
  if (!ruv_gguf_get_string (gguf, "tokenizer.ggml.pre", &pre, &local) && local != NULL)
    return (rewrap (local, error), NULL);

  if (strcmp (model, "llama") == 0)
    {
      self->kind = RUV_TOKENIZER_SPM;
      self->bos = 1;
      self->eos = 2;
      self->unk = 0;
      self->add_space_prefix = TRUE;
      self->add_bos = TRUE;
    }
  else if (strcmp (model, "gpt2") == 0)
    {
      self->kind = RUV_TOKENIZER_BPE;
      self->bos = 11;
      self->eos = 11;
      self->unk = RUV_TOKEN_NULL;
      self->clean_spaces = TRUE;
      if (pre == NULL || *pre == '\0')
        pre = "default";
      for (i = 0; i < G_N_ELEMENTS (pre_table); i++)
        if (strcmp (pre, pre_table[i].name) == 0)
          break;
      if (i == G_N_ELEMENTS (pre_table))
        return (tok_error (error, file, "tokenizer.ggml.pre '%s' is not a supported pre-tokenizer",
                           pre), NULL);
      self->pre = pre_table[i].pre;
      self->pre_name = g_strdup (pre);
      pre_flags = pre_table[i].flags;
      self->ignore_merges = (pre_flags & PRE_IGNORE_MERGES) != 0;
      self->add_bos = (pre_flags & PRE_ADD_BOS) != 0;
      self->clean_spaces = (pre_flags & PRE_NO_CLEAN) == 0;
      if (pre_flags & PRE_NO_BOS_ID)
        self->bos = RUV_TOKEN_NULL;
    }
  else
    return (tok_error (error, file, "tokenizer.ggml.model '%s' is not supported "
                       "(llama and gpt2 are)", model), NULL);

  if (!get_opt_bool (gguf, "tokenizer.ggml.add_space_prefix", &self->add_space_prefix, error))
    return NULL;
  if (!load_tokens (self, gguf, error))
    return NULL;
  if (self->kind == RUV_TOKENIZER_BPE && !load_merges (self, gguf, error))
    return NULL;

  if (!get_opt_id (self, gguf, "tokenizer.ggml.bos_token_id", &self->bos, TRUE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.eos_token_id", &self->eos, TRUE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.eot_token_id", &self->eot, TRUE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.eom_token_id", &self->eom, TRUE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.unknown_token_id", &self->unk, TRUE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.seperator_token_id", &self->sep, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.padding_token_id", &self->pad, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.mask_token_id", &self->mask, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.fim_pre_token_id", &self->fim_pre, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.fim_suf_token_id", &self->fim_suf, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.fim_mid_token_id", &self->fim_mid, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.fim_pad_token_id", &self->fim_pad, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.fim_rep_token_id", &self->fim_rep, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.fim_sep_token_id", &self->fim_sep, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.prefix_token_id", &self->fim_pre, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.suffix_token_id", &self->fim_suf, FALSE, error)
      || !get_opt_id (self, gguf, "tokenizer.ggml.middle_token_id", &self->fim_mid, FALSE, error))
    return NULL;
  if (!get_opt_bool (gguf, "tokenizer.ggml.add_bos_token", &self->add_bos, error)
      || !get_opt_bool (gguf, "tokenizer.ggml.add_eos_token", &self->add_eos, error))
    return NULL;
  if (self->add_bos && self->bos == RUV_TOKEN_NULL)
    return (tok_error (error, file,
                       "tokenizer.ggml.add_bos_token is set but there is no BOS token"), NULL);
  if (self->add_eos && self->eos == RUV_TOKEN_NULL)
    return (tok_error (error, file,
                       "tokenizer.ggml.add_eos_token is set but there is no EOS token"), NULL);

  if (!_ruv_tokenizer_finish_specials (self, gguf, error))
    return NULL;

  /* Byte fallback: SPM <0xXX> (or the byte itself), BPE the 1-byte string. */
  for (b = 0; b < 256; b++)
    {
      char one = (char) b;

      self->byte_token[b] = RUV_TOKEN_NULL;
      if (self->kind == RUV_TOKENIZER_SPM)
        {
          char hex[7];

          g_snprintf (hex, sizeof hex, "<0x%02X>", b);
          self->byte_token[b] = ruv_tokenizer_lookup (self, hex, 6);
        }
      if (self->byte_token[b] < 0)
        self->byte_token[b] = ruv_tokenizer_lookup (self, &one, 1);
    }
  return g_steal_pointer (&self);
}

/* ------------------------------------------------------------------------ */
/* accessors                                                                */

RuvTokenizerKind
ruv_tokenizer_get_kind (RuvTokenizer *self)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), RUV_TOKENIZER_SPM);
  return self->kind;
}

const char *
ruv_tokenizer_get_pre (RuvTokenizer *self)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), NULL);
  return self->pre_name;
}

gint32
ruv_tokenizer_get_n_vocab (RuvTokenizer *self)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), 0);
  return self->n_vocab;
}

gint32
ruv_tokenizer_get_bos (RuvTokenizer *self)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), RUV_TOKEN_NULL);
  return self->bos;
}

gint32
ruv_tokenizer_get_eos (RuvTokenizer *self)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), RUV_TOKEN_NULL);
  return self->eos;
}

gint32
ruv_tokenizer_get_eot (RuvTokenizer *self)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), RUV_TOKEN_NULL);
  return self->eot;
}

gint32
ruv_tokenizer_get_unk (RuvTokenizer *self)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), RUV_TOKEN_NULL);
  return self->unk;
}

gint32
ruv_tokenizer_get_pad (RuvTokenizer *self)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), RUV_TOKEN_NULL);
  return self->pad;
}

gboolean
ruv_tokenizer_get_add_bos (RuvTokenizer *self)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), FALSE);
  return self->add_bos;
}

gboolean
ruv_tokenizer_get_add_eos (RuvTokenizer *self)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), FALSE);
  return self->add_eos;
}

gboolean
ruv_tokenizer_is_eog (RuvTokenizer *self,
                      gint32        id)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), FALSE);
  return id >= 0 && id < self->n_vocab && self->tokens[id].eog;
}

gboolean
ruv_tokenizer_is_control (RuvTokenizer *self,
                          gint32        id)
{
  return (ruv_tokenizer_get_attr (self, id) & RUV_TOKEN_ATTR_CONTROL) != 0;
}

guint
ruv_tokenizer_get_attr (RuvTokenizer *self,
                        gint32        id)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), 0);
  if (id < 0 || id >= self->n_vocab)
    return 0;
  return self->tokens[id].attr;
}

const char *
ruv_tokenizer_get_text (RuvTokenizer *self,
                        gint32        id,
                        gsize        *len)
{
  g_return_val_if_fail (RUV_IS_TOKENIZER (self), NULL);
  if (id < 0 || id >= self->n_vocab)
    return NULL;
  if (len != NULL)
    *len = self->tokens[id].len;
  return _ruv_tokenizer_text (self, id);
}

/* ------------------------------------------------------------------------ */
/* encode                                                                   */

GArray *
ruv_tokenizer_encode (RuvTokenizer *self,
                      const char   *text,
                      gssize        len,
                      gboolean      add_special,
                      gboolean      parse_special,
                      GError      **error)
{
  g_autoptr(GArray) out = NULL;
  g_autoptr(GArray) frags = NULL;
  g_autoptr(GString) buf = NULL;
  gboolean prev_special = TRUE;
  gsize n, f, i;

  g_return_val_if_fail (RUV_IS_TOKENIZER (self), NULL);
  g_return_val_if_fail (text != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  n = len < 0 ? strlen (text) : (gsize) len;
  if (n > G_MAXINT32)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_TOKENIZATION,
                   "text of %" G_GSIZE_FORMAT " bytes is too long to tokenize", n);
      return NULL;
    }
  out = g_array_new (FALSE, FALSE, sizeof (gint32));
  frags = _ruv_tokenizer_partition (self, text, n, parse_special);
  if (add_special && self->add_bos)
    _ruv_tokenizer_push_id (out, self->bos);

  for (f = 0; f < frags->len; f++)
    {
      const Fragment *fr = &g_array_index (frags, Fragment, f);

      if (fr->token != RUV_TOKEN_NULL)
        {
          _ruv_tokenizer_push_id (out, fr->token);
          prev_special = TRUE;
          continue;
        }
      if (self->kind == RUV_TOKENIZER_BPE)
        {
          _ruv_tokenizer_bpe_tokenize (self, text + fr->off, fr->len, out);
          continue;
        }
      /* SentencePiece: a space before text that starts the input or follows a
       * special token, then every space as "▁". */
      if (buf == NULL)
        buf = g_string_new (NULL);
      g_string_truncate (buf, 0);
      if (self->add_space_prefix && prev_special)
        g_string_append (buf, "\xe2\x96\x81");
      for (i = 0; i < fr->len; i++)
        {
          if (text[fr->off + i] == ' ')
            g_string_append (buf, "\xe2\x96\x81");
          else
            g_string_append_c (buf, text[fr->off + i]);
        }
      _ruv_tokenizer_spm_tokenize (self, buf->str, buf->len, out);
      prev_special = FALSE;
    }
  if (add_special && self->add_eos)
    _ruv_tokenizer_push_id (out, self->eos);
  return g_steal_pointer (&out);
}
