/* ruv-unicode.c — UTF-8, Unicode categories and the GPT-2 byte table.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-unicode.h"

gsize
ruv_utf8_seq_len (guint8 lead)
{
  static const guint8 lookup[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };

  return lookup[lead >> 4];
}

static inline gboolean
is_cont (guint8 b)
{
  return (b & 0xc0) == 0x80;
}

gunichar
ruv_utf8_decode (const guint8 *s,
                 gsize         len,
                 gsize        *offset)
{
  gsize o = *offset;
  guint8 b0 = s[o];
  gunichar c;

  /* Same acceptance as llama.cpp's unicode_cpt_from_utf8: lead byte class and
   * continuation bytes only (overlong forms and surrogates pass). Values
   * above U+10FFFF, which llama.cpp cannot re-encode, are replaced too. */
  if (b0 < 0x80)
    {
      *offset = o + 1;
      return b0;
    }
  if ((b0 & 0x40) == 0)
    goto invalid;
  if ((b0 & 0x20) == 0)
    {
      if (o + 1 >= len || !is_cont (s[o + 1]))
        goto invalid;
      *offset = o + 2;
      return ((gunichar) (b0 & 0x1f) << 6) | (s[o + 1] & 0x3f);
    }
  if ((b0 & 0x10) == 0)
    {
      if (o + 2 >= len || !is_cont (s[o + 1]) || !is_cont (s[o + 2]))
        goto invalid;
      *offset = o + 3;
      return ((gunichar) (b0 & 0x0f) << 12) | ((gunichar) (s[o + 1] & 0x3f) << 6)
             | (s[o + 2] & 0x3f);
    }
  if ((b0 & 0x08) == 0)
    {
      if (o + 3 >= len || !is_cont (s[o + 1]) || !is_cont (s[o + 2]) || !is_cont (s[o + 3]))
        goto invalid;
      c = ((gunichar) (b0 & 0x07) << 18) | ((gunichar) (s[o + 1] & 0x3f) << 12)
          | ((gunichar) (s[o + 2] & 0x3f) << 6) | (s[o + 3] & 0x3f);
      if (c > 0x10ffff)
        goto invalid;
      *offset = o + 4;
      return c;
    }
invalid:
  *offset = o + 1;
  return 0xfffd;
}

gsize
ruv_utf8_encode (gunichar c,
                 guint8   out[4])
{
  if (c <= 0x7f)
    {
      out[0] = (guint8) c;
      return 1;
    }
  if (c <= 0x7ff)
    {
      out[0] = 0xc0 | (c >> 6);
      out[1] = 0x80 | (c & 0x3f);
      return 2;
    }
  if (c <= 0xffff)
    {
      out[0] = 0xe0 | (c >> 12);
      out[1] = 0x80 | ((c >> 6) & 0x3f);
      out[2] = 0x80 | (c & 0x3f);
      return 3;
    }
  if (c > 0x10ffff)
    c = 0xfffd;
  if (c <= 0xffff)
    return ruv_utf8_encode (c, out);
  out[0] = 0xf0 | (c >> 18);
  out[1] = 0x80 | ((c >> 12) & 0x3f);
  out[2] = 0x80 | ((c >> 6) & 0x3f);
  out[3] = 0x80 | (c & 0x3f);
  return 4;
}

/* Could s[0..n) (1 <= n < sequence length) still grow into a valid
 * character? Applies the second-byte ranges of RFC 3629. */
static gboolean
is_valid_partial (const guint8 *s,
                  gsize         n)
{
  guint8 b0 = s[0];
  gsize need, i;

  if (b0 >= 0xc2 && b0 <= 0xdf)
    need = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef)
    need = 3;
  else if (b0 >= 0xf0 && b0 <= 0xf4)
    need = 4;
  else
    return FALSE;
  if (n >= need)
    return FALSE;
  if (n >= 2)
    {
      guint8 b1 = s[1];

      if (!is_cont (b1)
          || (b0 == 0xe0 && b1 < 0xa0) || (b0 == 0xed && b1 > 0x9f)
          || (b0 == 0xf0 && b1 < 0x90) || (b0 == 0xf4 && b1 > 0x8f))
        return FALSE;
    }
  for (i = 2; i < n; i++)
    if (!is_cont (s[i]))
      return FALSE;
  return TRUE;
}

gsize
ruv_utf8_complete_prefix (const char *s,
                          gsize       len)
{
  const guint8 *u = (const guint8 *) s;
  gsize k;

  /* Only the last three bytes can be the start of an unfinished character. */
  for (k = 1; k <= 3 && k <= len; k++)
    {
      guint8 b = u[len - k];

      if (is_cont (b))
        continue;
      if (b >= 0xc0 && is_valid_partial (u + len - k, k))
        return len - k;
      return len;
    }
  return len;
}

gboolean
ruv_unicode_is_whitespace (gunichar c)
{
  /* The White_Space property, as llama.cpp's unicode_set_whitespace (GLib's
   * g_unichar_isspace differs: it omits U+0085 and adds other Zs). */
  switch (c)
    {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20:
    case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202f: case 0x205f: case 0x3000:
      return TRUE;
    default:
      return c >= 0x2000 && c <= 0x200a;
    }
}

guint
ruv_unicode_flags (gunichar c)
{
  guint f;

  if (c > 0x10ffff)
    return RUV_UCAT_UNDEFINED;
  switch (g_unichar_type (c))
    {
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_PRIVATE_USE:
    case G_UNICODE_SURROGATE:
      f = RUV_UCAT_CONTROL;
      break;
    case G_UNICODE_UNASSIGNED:
      f = RUV_UCAT_UNDEFINED;
      break;
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_UPPERCASE_LETTER:
      f = RUV_UCAT_LETTER;
      break;
    case G_UNICODE_SPACING_MARK:
    case G_UNICODE_ENCLOSING_MARK:
    case G_UNICODE_NON_SPACING_MARK:
      f = RUV_UCAT_MARK;
      break;
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      f = RUV_UCAT_NUMBER;
      break;
    case G_UNICODE_CONNECT_PUNCTUATION:
    case G_UNICODE_DASH_PUNCTUATION:
    case G_UNICODE_CLOSE_PUNCTUATION:
    case G_UNICODE_FINAL_PUNCTUATION:
    case G_UNICODE_INITIAL_PUNCTUATION:
    case G_UNICODE_OTHER_PUNCTUATION:
    case G_UNICODE_OPEN_PUNCTUATION:
      f = RUV_UCAT_PUNCTUATION;
      break;
    case G_UNICODE_CURRENCY_SYMBOL:
    case G_UNICODE_MODIFIER_SYMBOL:
    case G_UNICODE_MATH_SYMBOL:
    case G_UNICODE_OTHER_SYMBOL:
      f = RUV_UCAT_SYMBOL;
      break;
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
    case G_UNICODE_SPACE_SEPARATOR:
      f = RUV_UCAT_SEPARATOR;
      break;
    default:
      f = RUV_UCAT_UNDEFINED;
      break;
    }
  if (ruv_unicode_is_whitespace (c))
    f |= RUV_UCAT_WHITESPACE;
  return f;
}

/* GPT-2: the printable bytes ! .. ~, ¡ .. ¬, ® .. ÿ map to themselves, the
 * other 68 bytes, in order, to U+0100, U+0101, ... */
static inline gboolean
gpt2_is_direct (guint b)
{
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

static gunichar gpt2_to_unichar[256];
static gint16   gpt2_to_byte[256 + 68];

static void
gpt2_init (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      guint n = 0;
      guint b;

      for (b = 0; b < G_N_ELEMENTS (gpt2_to_byte); b++)
        gpt2_to_byte[b] = -1;
      for (b = 0; b < 256; b++)
        {
          gunichar c = gpt2_is_direct (b) ? b : 256 + n++;

          gpt2_to_unichar[b] = c;
          gpt2_to_byte[c] = (gint16) b;
        }
      g_once_init_leave (&done, 1);
    }
}

gunichar
ruv_gpt2_byte_to_unichar (guint8 byte)
{
  gpt2_init ();
  return gpt2_to_unichar[byte];
}

gint
ruv_gpt2_unichar_to_byte (gunichar c)
{
  gpt2_init ();
  return c < G_N_ELEMENTS (gpt2_to_byte) ? gpt2_to_byte[c] : -1;
}
