/* ruv-hub-headers.c — reading the Hub's paging and rate-limit headers.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-hub-private.h"

#include <string.h>

/* Does a rel value (space-separated relation types) hold "next"? */
static gboolean
rel_has_next (const char *val,
              gsize       len)
{
  g_autofree char *copy = g_strndup (val, len);
  g_auto(GStrv) rels = g_strsplit (copy, " ", -1);
  guint i;

  for (i = 0; rels[i] != NULL; i++)
    if (g_ascii_strcasecmp (rels[i], "next") == 0)
      return TRUE;
  return FALSE;
}

char *
_ruv_hub_link_next (const char *value)
{
  const char *p = value;

  while (p != NULL && *p != '\0')
    {
      const char *lt = strchr (p, '<');
      const char *gt = lt != NULL ? strchr (lt, '>') : NULL;
      gboolean next = FALSE;

      if (gt == NULL)
        return NULL;
      p = gt + 1;
      /* Parameters up to the ',' that ends this link; every turn consumes
       * at least one byte. */
      while (*p != '\0' && *p != ',')
        {
          const char *name, *val;
          gsize name_len, val_len;

          while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
          name = p;
          while (*p != '\0' && strchr ("=;, \t", *p) == NULL)
            p++;
          name_len = (gsize) (p - name);
          while (*p == ' ' || *p == '\t')
            p++;
          if (*p != '=')
            continue;
          p++;
          while (*p == ' ' || *p == '\t')
            p++;
          if (*p == '"')
            {
              val = ++p;
              while (*p != '\0' && *p != '"')
                p++;
              val_len = (gsize) (p - val);
              if (*p == '"')
                p++;
            }
          else
            {
              val = p;
              while (*p != '\0' && *p != ';' && *p != ',')
                p++;
              val_len = (gsize) (p - val);
            }
          if (name_len == 3 && g_ascii_strncasecmp (name, "rel", 3) == 0
              && rel_has_next (val, val_len))
            next = TRUE;
        }
      if (next)
        return g_strndup (lt + 1, (gsize) (gt - lt - 1));
      if (*p == ',')
        p++;
    }
  return NULL;
}

/* Whole seconds at the start of s up to its end or a ';', or -1. */
static gint64
parse_seconds (const char *s)
{
  guint64 v = 0;
  const char *p = s;

  while (*p == ' ')
    p++;
  if (!g_ascii_isdigit (*p))
    return -1;
  while (g_ascii_isdigit (*p))
    {
      v = v * 10 + (guint64) (*p - '0');
      if (v > 366 * 24 * 3600)
        return -1;
      p++;
    }
  while (*p == ' ')
    p++;
  if (*p != '\0' && *p != ';' && *p != ',')
    return -1;
  return (gint64) v;
}

gint64
_ruv_hub_retry_after_ms (SoupMessageHeaders *headers)
{
  const char *v = soup_message_headers_get_one (headers, "Retry-After");
  const char *p;
  gint64 secs;

  if (v != NULL)
    {
      g_autoptr(GDateTime) when = NULL;
      g_autoptr(GDateTime) now = NULL;

      secs = parse_seconds (v);
      if (secs >= 0)
        return secs * 1000;
      when = soup_date_time_new_from_http_string (v);
      if (when != NULL)
        {
          now = g_date_time_new_now_utc ();
          return MAX ((gint64) 0, g_date_time_difference (when, now) / 1000);
        }
    }
  /* The Hub's IETF draft header: RateLimit: "api";r=0;t=42 (t: seconds until
   * the window resets). */
  v = soup_message_headers_get_one (headers, "RateLimit");
  for (p = v; p != NULL && (p = strstr (p, "t=")) != NULL; p += 2)
    if (p == v || p[-1] == ';' || p[-1] == ' ' || p[-1] == ',')
      {
        secs = parse_seconds (p + 2);
        if (secs >= 0)
          return secs * 1000;
      }
  return -1;
}
