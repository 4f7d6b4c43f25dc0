/* ruv-stop-matcher.c — earliest-match stop sequences with hold-back.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "ruv-stop-matcher.h"

struct _RuvStopMatcher
{
  char    **stops;
  gsize     max_stop_len;
  GString  *text;      /* everything generated, up to a match */
  gsize     emitted;   /* bytes of text already released */
  gboolean  stopped;
};

RuvStopMatcher *
ruv_stop_matcher_new (const char * const *stops)
{
  RuvStopMatcher *self = g_new0 (RuvStopMatcher, 1);
  guint i;

  self->stops = g_strdupv ((char **) stops);
  for (i = 0; self->stops != NULL && self->stops[i] != NULL; i++)
    self->max_stop_len = MAX (self->max_stop_len, strlen (self->stops[i]));
  self->text = g_string_new (NULL);
  return self;
}

void
ruv_stop_matcher_free (RuvStopMatcher *self)
{
  if (self == NULL)
    return;
  g_strfreev (self->stops);
  g_string_free (self->text, TRUE);
  g_free (self);
}

/* Length of the longest suffix of text[0..len) that is a proper prefix of
 * some stop sequence: those bytes might still become a stop. */
static gsize
held_suffix (RuvStopMatcher *self,
             gsize           from)
{
  const char *s = self->text->str;
  gsize len = self->text->len;
  gsize best = 0;
  guint i;

  for (i = 0; self->stops != NULL && self->stops[i] != NULL; i++)
    {
      gsize sl = strlen (self->stops[i]);
      gsize k;

      for (k = MIN (sl - 1, len - from); k > best; k--)
        if (memcmp (s + len - k, self->stops[i], k) == 0)
          {
            best = k;
            break;
          }
    }
  return best;
}

gboolean
ruv_stop_matcher_push (RuvStopMatcher  *self,
                       const char      *text,
                       gsize            len,
                       const char     **emit,
                       gsize           *emit_len)
{
  gsize search_from;
  gsize match = G_MAXSIZE;
  gsize safe;
  guint i;

  *emit = NULL;
  *emit_len = 0;
  if (self->stopped)
    return TRUE;

  /* Only the new bytes and the held-back tail can start a new match. */
  search_from = self->emitted;
  g_string_append_len (self->text, text, len);

  for (i = 0; self->stops != NULL && self->stops[i] != NULL; i++)
    {
      const char *hit = g_strstr_len (self->text->str + search_from,
                                      self->text->len - search_from, self->stops[i]);
      if (hit != NULL)
        match = MIN (match, (gsize) (hit - self->text->str));
    }

  if (match != G_MAXSIZE)
    {
      self->stopped = TRUE;
      g_string_truncate (self->text, match);
      *emit = self->text->str + self->emitted;
      *emit_len = match - self->emitted;
      self->emitted = match;
      return TRUE;
    }

  safe = self->text->len - held_suffix (self, self->emitted);
  /* Never split a UTF-8 character when releasing (a stop sequence may end
   * inside one if its prefix is a partial character of the text). */
  while (safe > self->emitted && safe < self->text->len
         && ((guchar) self->text->str[safe] & 0xC0) == 0x80)
    safe--;
  *emit = self->text->str + self->emitted;
  *emit_len = safe - self->emitted;
  self->emitted = safe;
  return FALSE;
}

void
ruv_stop_matcher_flush (RuvStopMatcher  *self,
                        const char     **emit,
                        gsize           *emit_len)
{
  *emit = self->text->str + self->emitted;
  *emit_len = self->text->len - self->emitted;
  self->emitted = self->text->len;
}

const char *
ruv_stop_matcher_get_text (RuvStopMatcher *self,
                           gsize          *len)
{
  if (len != NULL)
    *len = self->text->len;
  return self->text->str;
}
