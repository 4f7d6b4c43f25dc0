/* ruv-tokenizer.h — SentencePiece and byte-level BPE tokenizers from GGUF metadata.
 * SPDX-License-Identifier: MIT
 *
 * Built from tokenizer.ggml.* as llama.cpp's llama-vocab.cpp builds its vocab,
 * and meant to give the same ids: "llama" (SentencePiece: scores, byte
 * fallback, "▁" for spaces, add_space_prefix) and "gpt2" (byte-level BPE with
 * merges and the pre-tokenizer named by tokenizer.ggml.pre). Metadata is not
 * trusted: inconsistent arrays, ids out of range, duplicate tokens and merges
 * naming unknown tokens are RUV_ERROR_TOKENIZATION errors naming the key.
 */
#pragma once

#include <glib-object.h>

#include "ruv-gguf.h"

G_BEGIN_DECLS

#define RUV_TOKEN_NULL (-1)

typedef enum
{
  RUV_TOKENIZER_SPM,   /* tokenizer.ggml.model = "llama" */
  RUV_TOKENIZER_BPE,   /* tokenizer.ggml.model = "gpt2" */
} RuvTokenizerKind;

/* Token attributes, bit-compatible with llama.cpp's llama_token_attr. */
typedef enum
{
  RUV_TOKEN_ATTR_UNDEFINED    = 0,
  RUV_TOKEN_ATTR_UNKNOWN      = 1 << 0,
  RUV_TOKEN_ATTR_UNUSED       = 1 << 1,
  RUV_TOKEN_ATTR_NORMAL       = 1 << 2,
  RUV_TOKEN_ATTR_CONTROL      = 1 << 3,
  RUV_TOKEN_ATTR_USER_DEFINED = 1 << 4,
  RUV_TOKEN_ATTR_BYTE         = 1 << 5,
  RUV_TOKEN_ATTR_LSTRIP       = 1 << 7,
  RUV_TOKEN_ATTR_RSTRIP       = 1 << 8,
} RuvTokenAttr;

#define RUV_TYPE_TOKENIZER (ruv_tokenizer_get_type ())
G_DECLARE_FINAL_TYPE (RuvTokenizer, ruv_tokenizer, RUV, TOKENIZER, GObject)

/* Reads tokenizer.* from the metadata; copies what it keeps, so the RuvGguf
 * (and its data) may be freed afterwards. */
RuvTokenizer     *ruv_tokenizer_new_from_gguf      (const RuvGguf  *gguf,
                                                    GError        **error);

RuvTokenizerKind  ruv_tokenizer_get_kind           (RuvTokenizer   *self);
/* The pre-tokenizer name as given (tokenizer.ggml.pre), "default" if absent,
 * NULL for SentencePiece. */
const char       *ruv_tokenizer_get_pre            (RuvTokenizer   *self);
gint32            ruv_tokenizer_get_n_vocab        (RuvTokenizer   *self);
/* Special ids; RUV_TOKEN_NULL when the vocabulary has none. */
gint32            ruv_tokenizer_get_bos            (RuvTokenizer   *self);
gint32            ruv_tokenizer_get_eos            (RuvTokenizer   *self);
gint32            ruv_tokenizer_get_eot            (RuvTokenizer   *self);
gint32            ruv_tokenizer_get_unk            (RuvTokenizer   *self);
gint32            ruv_tokenizer_get_pad            (RuvTokenizer   *self);
gboolean          ruv_tokenizer_get_add_bos        (RuvTokenizer   *self);
gboolean          ruv_tokenizer_get_add_eos        (RuvTokenizer   *self);

/* End of generation: eos, eot, eom and the turn-ending tokens llama.cpp
 * recognises by name (<|im_end|>, <|eot_id|>, <|endoftext|>, ...). */
gboolean          ruv_tokenizer_is_eog             (RuvTokenizer   *self,
                                                    gint32          id);
gboolean          ruv_tokenizer_is_control         (RuvTokenizer   *self,
                                                    gint32          id);
/* RuvTokenAttr bits; 0 for an id out of range. */
guint             ruv_tokenizer_get_attr           (RuvTokenizer   *self,
                                                    gint32          id);
/* The token's vocabulary string (not detokenized), or NULL if out of range. */
const char       *ruv_tokenizer_get_text           (RuvTokenizer   *self,
                                                    gint32          id,
                                                    gsize          *len);
/* The id whose vocabulary string is exactly text[0..len), or RUV_TOKEN_NULL. */
gint32            ruv_tokenizer_lookup             (RuvTokenizer   *self,
                                                    const char     *text,
                                                    gsize           len);

/* Tokenizes text[0..len) (len -1: NUL-terminated), any bytes allowed.
 * add_special: BOS/EOS as the metadata says. parse_special: control tokens
 * written in the text become those tokens (user-defined ones always do).
 * Returns a GArray of gint32. */
GArray           *ruv_tokenizer_encode             (RuvTokenizer   *self,
                                                    const char     *text,
                                                    gssize          len,
                                                    gboolean        add_special,
                                                    gboolean        parse_special,
                                                    GError        **error);

/* The bytes a token stands for (▁ -> space, <0xXX> -> the byte, GPT-2 code
 * points -> bytes); not NUL-terminated, owned by self. Control and unknown
 * tokens give their text when special is TRUE and "" otherwise. NULL if the
 * id is out of range. */
const char       *ruv_tokenizer_token_to_piece     (RuvTokenizer   *self,
                                                    gint32          id,
                                                    gboolean        special,
                                                    gsize          *len);

/* llama_detokenize (remove_special = skip_special, unparse_special =
 * !skip_special): pieces joined, the SentencePiece prefix space removed, and
 * the BPE clean-up of spaces where the vocabulary asks for it. Ids out of
 * range are skipped. The result is NUL-terminated; it may hold any bytes
 * (out_len gives the length). */
char             *ruv_tokenizer_decode             (RuvTokenizer   *self,
                                                    const gint32   *ids,
                                                    gsize           n_ids,
                                                    gboolean        skip_special,
                                                    gsize          *out_len);

/* Streaming detokenization: feeds pieces, returns only complete UTF-8. */
typedef struct _RuvTokenStream RuvTokenStream;

RuvTokenStream   *ruv_token_stream_new             (RuvTokenizer   *tokenizer,
                                                    gboolean        special);
void              ruv_token_stream_free            (RuvTokenStream *stream);
/* Appends the token's bytes and returns (newly allocated, possibly "") the
 * longest prefix of the pending bytes that does not end inside a character;
 * the rest stays pending. Invalid bytes come out as U+FFFD, so the result is
 * always valid UTF-8. */
char             *ruv_token_stream_push            (RuvTokenStream *stream,
                                                    gint32          id);
/* Whatever is pending (an unfinished character becomes U+FFFD). */
char             *ruv_token_stream_flush           (RuvTokenStream *stream);
gsize             ruv_token_stream_get_pending     (RuvTokenStream *stream);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvTokenStream, ruv_token_stream_free)

G_END_DECLS
