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
 */
#include "ruv-tokenizer.h"

#include <math.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-unicode.h"

#define OUT_OF_RANGE G_MAXUINT32

typedef enum
{
  PRE_GPT2,
  PRE_LLAMA3,
  PRE_QWEN2,
  PRE_QWEN35,
  PRE_STARCODER,
  PRE_DEFAULT,
} PreType;

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

typedef struct
{
  gsize   off;      /* into text */
  guint32 len;
  guint32 attr;
  float   score;
  gsize   piece_off;
  guint32 piece_len;
  gboolean eog;
} Token;

typedef struct
{
  guint64 key;      /* left id << 32 | right id; G_MAXUINT64 = empty */
  gint32  rank;
  gint32  result;
} MergeSlot;

struct _RuvTokenizer
{
  GObject           parent_instance;

  RuvTokenizerKind  kind;
  PreType           pre;
  char             *pre_name;
  gboolean          ignore_merges;
  gboolean          clean_spaces;
  gboolean          add_space_prefix;
  gboolean          add_bos;
  gboolean          add_eos;

  gint32            n_vocab;
  Token            *tokens;
  char             *text;
  char             *pieces;

  gint32           *slots;       /* text -> id, -1 = empty */
  gsize             slot_mask;
  MergeSlot        *merges;
  gsize             merge_mask;

  gint32           *special;     /* control / user-defined / unknown, longest first */
  gsize             n_special;
  gint32            byte_token[256];

  gint32            bos, eos, eot, eom, unk, sep, pad, mask;
  gint32            fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
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

static inline const char *
tok_text (RuvTokenizer *self,
          gint32        id)
{
  return self->text + self->tokens[id].off;
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
      if (self->tokens[id].len == len && memcmp (tok_text (self, id), s, len) == 0)
        return id;
      i = (i + 1) & self->slot_mask;
    }
  return RUV_TOKEN_NULL;
}

static gboolean
merge_find (RuvTokenizer *self,
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
      if (merge_find (self, left, right, &r0, &x0))
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
  const char *s = tok_text (self, id);
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

static void
build_pieces (RuvTokenizer *self)
{
  g_autoptr(GString) all = g_string_new (NULL);
  gint32 id;

  for (id = 0; id < self->n_vocab; id++)
    {
      Token *t = &self->tokens[id];
      const char *s = tok_text (self, id);

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

static gboolean
finish_specials (RuvTokenizer  *self,
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
    if ((self->tokens[id].attr & RUV_TOKEN_ATTR_CONTROL) && strstr (tok_text (self, id), "unused"))
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

  build_pieces (self);

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

  if (!finish_specials (self, gguf, error))
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
  return tok_text (self, id);
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
/* special-token partition                                                  */

typedef struct
{
  gint32 token;   /* RUV_TOKEN_NULL: raw text */
  gsize  off;
  gsize  len;
} Fragment;

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

static GArray *
partition (RuvTokenizer *self,
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
      const char *ttext = tok_text (self, id);
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

/* ------------------------------------------------------------------------ */
/* merge queue: a binary heap                                               */

typedef struct
{
  float  score;   /* SPM: higher first */
  gint32 rank;    /* BPE: lower first */
  gint32 left;
  gint32 right;
  gint32 result;  /* BPE: the merged token */
  gsize  size;
} Bigram;

typedef struct
{
  GArray  *a;
  gboolean spm;
} Heap;

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

static void
heap_push (Heap         *h,
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

static Bigram
heap_pop (Heap *h)
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

typedef struct
{
  gsize  off;   /* into the word */
  gsize  n;     /* bytes; 0 once merged away */
  gint32 prev;
  gint32 next;
  gint32 id;    /* BPE: the symbol's token, or RUV_TOKEN_NULL */
} Symbol;

static void
push_id (GArray *out,
         gint32  id)
{
  g_array_append_val (out, id);
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
  heap_push (heap, &b);
}

static void
spm_tokenize (RuvTokenizer *self,
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
      Bigram b = heap_pop (&heap);
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
          push_id (out, id);
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
            push_id (out, bt);
        }
    }
}

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

static GArray *
pre_tokenize (PreType         pre,
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
  if (l->id < 0 || r->id < 0 || !merge_find (self, l->id, r->id, &b.rank, &b.result))
    return;
  b.left = left;
  b.right = right;
  b.size = l->n + r->n;
  heap_push (heap, &b);
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
      push_id (out, id);
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
      Bigram b = heap_pop (heap);
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
          push_id (out, s->id);
          continue;
        }
      /* A code point with no token: each of its bytes as a 1-byte token. */
      for (j = 0; j < s->n; j++)
        if (self->byte_token[(guint8) word[s->off + j]] >= 0)
          push_id (out, self->byte_token[(guint8) word[s->off + j]]);
    }
}

static void
bpe_tokenize (RuvTokenizer *self,
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
  segs = pre_tokenize (self->pre, cpts, flags, n);
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

/* ------------------------------------------------------------------------ */
/* encode / decode                                                          */

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
  frags = partition (self, text, n, parse_special);
  if (add_special && self->add_bos)
    push_id (out, self->bos);

  for (f = 0; f < frags->len; f++)
    {
      const Fragment *fr = &g_array_index (frags, Fragment, f);

      if (fr->token != RUV_TOKEN_NULL)
        {
          push_id (out, fr->token);
          prev_special = TRUE;
          continue;
        }
      if (self->kind == RUV_TOKENIZER_BPE)
        {
          bpe_tokenize (self, text + fr->off, fr->len, out);
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
      spm_tokenize (self, buf->str, buf->len, out);
      prev_special = FALSE;
    }
  if (add_special && self->add_eos)
    push_id (out, self->eos);
  return g_steal_pointer (&out);
}

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
