/* ruv-unicode.h — the Unicode pieces byte-level BPE pre-tokenizers need.
 * SPDX-License-Identifier: MIT
 *
 * UTF-8 decoding that never fails (llama.cpp's rules: an invalid or truncated
 * sequence yields U+FFFD and skips one byte; overlong forms and surrogates are
 * decoded as written), the Unicode categories of the pre-tokenizer regexes
 * (\p{L}, \p{N}, \p{M}, \p{P}, \s) and GPT-2's byte <-> code point table.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Category flags, one per \p{..} class, plus \s (the Unicode White_Space set). */
typedef enum
{
  RUV_UCAT_UNDEFINED   = 1 << 0,  /* unassigned, or beyond U+10FFFF */
  RUV_UCAT_NUMBER      = 1 << 1,  /* \p{N} */
  RUV_UCAT_LETTER      = 1 << 2,  /* \p{L} */
  RUV_UCAT_SEPARATOR   = 1 << 3,  /* \p{Z} */
  RUV_UCAT_MARK        = 1 << 4,  /* \p{M} */
  RUV_UCAT_PUNCTUATION = 1 << 5,  /* \p{P} */
  RUV_UCAT_SYMBOL      = 1 << 6,  /* \p{S} */
  RUV_UCAT_CONTROL     = 1 << 7,  /* \p{C} except Cn */
  RUV_UCAT_WHITESPACE  = 1 << 8,  /* \s */
} RuvUnicodeFlags;

#define RUV_UCAT_CATEGORY_MASK 0xff

/* Decodes the code point at s[*offset] (*offset < len) and advances *offset.
 * Never fails: an invalid lead byte or a missing continuation byte gives
 * U+FFFD and advances by one byte. */
gunichar  ruv_utf8_decode              (const guint8 *s,
                                        gsize         len,
                                        gsize        *offset);
/* Writes c (<= U+10FFFF) as UTF-8 into out; returns the byte count (1..4). */
gsize     ruv_utf8_encode              (gunichar      c,
                                        guint8        out[4]);
/* The sequence length a lead byte announces, by its high nibble (1 for
 * continuation bytes), as llama.cpp's unicode_len_utf8. */
gsize     ruv_utf8_seq_len             (guint8        lead);
/* The longest prefix of s[0..len) that does not end inside an incomplete but
 * so-far-valid UTF-8 sequence: the bytes after it (at most 3) may still
 * become a character when more bytes arrive. */
gsize     ruv_utf8_complete_prefix     (const char   *s,
                                        gsize         len);

guint     ruv_unicode_flags            (gunichar      c);
gboolean  ruv_unicode_is_whitespace    (gunichar      c);

/* GPT-2's byte-level table: every byte maps to a printable code point. */
gunichar  ruv_gpt2_byte_to_unichar     (guint8        byte);
/* The byte for a code point of that table, or -1. */
gint      ruv_gpt2_unichar_to_byte     (gunichar      c);

G_END_DECLS
