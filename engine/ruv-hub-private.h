/* ruv-hub-private.h — what the Hub client shares inside engine/ with the
 * downloads: its origin check and response-header parsing (ruv-hub-headers.c).
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <libsoup/soup.h>

#include "ruv-hub.h"

G_BEGIN_DECLS

/* A JSON answer larger than this is not an API answer. */
#define RUV_HUB_MAX_JSON_BYTES (64u << 20)

/* Receives the bounded body of a successful GET for outer (see below). */
typedef void (*RuvHubBodyFunc) (GTask        *outer,
                                SoupMessage  *msg,
                                const guint8 *data,
                                gsize         len,
                                gsize         cap);

/* GETs url (redirects followed by hand, the token only on the Hub's origin)
 * and hands at most cap bytes of a 2xx body to func, which completes outer
 * (whose source object is self) or fetches again; for JSON cap is
 * RUV_HUB_MAX_JSON_BYTES + 1, so "too large" is detectable. Other statuses
 * complete outer with ruv_hub_status_error, except a 429 (retried after the
 * wait asked, a few times, when short) and a CDN's 403 (resolved again from
 * the Hub once: an expired signed URL). outer's task data is the cap (as a
 * pointer-sized integer) until func replaces it. */
void     _ruv_hub_fetch         (RuvHub             *self,
                                 GTask              *outer,
                                 const char         *url,
                                 gint64              range_start,
                                 gint64              range_end,
                                 gsize               cap,
                                 const char         *what,
                                 RuvHubBodyFunc      func);

/* Is uri on the Hub's own origin (scheme, host, port), where the token goes? */
gboolean _ruv_hub_is_hub_origin (RuvHub             *self,
                                 GUri               *uri);

/* The target of the first link whose rel includes "next" in a Link header
 * value (RFC 8288: `<url>; rel="next", <url>; rel="prev"`), as written
 * (maybe relative), or NULL. */
char   *_ruv_hub_link_next      (const char         *value);

/* Milliseconds a 429 (or 503) asks to wait: Retry-After in seconds or as an
 * HTTP date (from now), else the "t=" of the Hub's RateLimit header
 * (`"api";r=0;t=42`), else -1. Never negative otherwise; not capped. */
gint64  _ruv_hub_retry_after_ms (SoupMessageHeaders *headers);

G_END_DECLS
