/* ruv-tokenizer-private.h — what the ruv-tokenizer*.c files share: the
 * object's fields, the token table, the merge queue and the encoder stages.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "ruv-tokenizer.h"

G_BEGIN_DECLS

typedef enum
{
  PRE_GPT2,
  PRE_LLAMA3,
  PRE_QWEN2,
  PRE_QWEN35,
  PRE_STARCODER,
  PRE_DEFAULT,
} PreType;

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

static inline const char *
_ruv_tokenizer_text (RuvTokenizer *self,
                     gint32        id)
{
  return self->text + self->tokens[id].off;
}

static inline void
_ruv_tokenizer_push_id (GArray *out,
                        gint32  id)
{
  g_array_append_val (out, id);
}

/* ruv-tokenizer-special.c: a piece of input text, raw or one special token. */
typedef struct
{
  gint32 token;   /* RUV_TOKEN_NULL: raw text */
  gsize  off;
  gsize  len;
} Fragment;

/* ruv-tokenizer-spm.c: the merge queue SentencePiece and BPE share. */
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

/* One symbol of the word being merged: a linked list over a GArray. */
typedef struct
{
  gsize  off;   /* into the word */
  gsize  n;     /* bytes; 0 once merged away */
  gint32 prev;
  gint32 next;
  gint32 id;    /* BPE: the symbol's token, or RUV_TOKEN_NULL */
} Symbol;

/* ruv-tokenizer.c */
gboolean _ruv_tokenizer_merge_find      (RuvTokenizer   *self,
                                         gint32          left,
                                         gint32          right,
                                         gint32         *rank,
                                         gint32         *result);

/* ruv-tokenizer-special.c */
gboolean _ruv_tokenizer_finish_specials (RuvTokenizer   *self,
                                         const RuvGguf  *gguf,
                                         GError        **error);
GArray  *_ruv_tokenizer_partition       (RuvTokenizer   *self,
                                         const char     *text,
                                         gsize           len,
                                         gboolean        parse_special);

/* ruv-tokenizer-spm.c */
void     _ruv_tokenizer_heap_push       (Heap           *h,
                                         const Bigram   *b);
Bigram   _ruv_tokenizer_heap_pop        (Heap           *h);
void     _ruv_tokenizer_spm_tokenize    (RuvTokenizer   *self,
                                         const char     *word,
                                         gsize           len,
                                         GArray         *out);

/* ruv-tokenizer-pretok.c: segment lengths (gsize, in code points) of cpts[n]. */
GArray  *_ruv_tokenizer_pre_tokenize    (PreType         pre,
                                         const gunichar *cpts,
                                         const guint    *flags,
                                         gsize           n);

/* ruv-tokenizer-bpe.c */
void     _ruv_tokenizer_bpe_tokenize    (RuvTokenizer   *self,
                                         const char     *text,
                                         gsize           len,
                                         GArray         *out);

/* ruv-tokenizer-decode.c */
void     _ruv_tokenizer_build_pieces    (RuvTokenizer   *self);

G_END_DECLS
