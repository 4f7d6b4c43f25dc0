/* ruv-hub.c — a Hugging Face Hub client on libsoup 3.
 * SPDX-License-Identifier: MIT
 *
 * API shapes (huggingface.co, as huggingface_hub reads them):
 *   GET /api/models?search=Q&filter=gguf&sort=downloads&direction=-1&limit=N
 *       → [ { "id": "owner/name", "downloads": n, "likes": n,
 *             "pipeline_tag": "...", "gated": false | "auto" | "manual" }, ... ]
 *   GET /api/models/{repo}/tree/{revision}?recursive=1
 *       → [ { "type": "file" | "directory", "path": "...", "size": n,
 *             "oid": "<git sha1>",
 *             "lfs": { "oid": "<sha256>", "size": n, "pointerSize": n } }, ... ]
 *   GET /{repo}/resolve/{revision}/{path} → 302 to the CDN (or the bytes)
 * This file: the object, redirects by hand, bounded reads (_ruv_hub_fetch,
 * which retries a 429 on an API call after its Retry-After or RateLimit
 * "t=", a few times when the wait is short) and remote GGUF headers. Names:
 * ruv-hub-names.c; search and listings: ruv-hub-listing.c; picking files for
 * a precision: ruv-hub-pick.c.
 */
#include "ruv-hub.h"

#include <string.h>

#include "ruv-error.h"
#include "ruv-hub-private.h"

/* 429s on an API call: retried this often, when the wait asked is short. */
#define API_MAX_RETRIES 3
#define API_MAX_WAIT_MS (60 * 1000)

struct _RuvHub
{
  GObject      parent_instance;
  char        *endpoint;
  GUri        *endpoint_uri;
  char        *token;
  SoupSession *session;
};

G_DEFINE_FINAL_TYPE (RuvHub, ruv_hub, G_TYPE_OBJECT)

static void
ruv_hub_finalize (GObject *object)
{
  RuvHub *self = RUV_HUB (object);

  g_free (self->endpoint);
  g_clear_pointer (&self->endpoint_uri, g_uri_unref);
  if (self->token != NULL)
    memset (self->token, 0, strlen (self->token));
  g_free (self->token);
  g_clear_object (&self->session);
  G_OBJECT_CLASS (ruv_hub_parent_class)->finalize (object);
}

static void
ruv_hub_class_init (RuvHubClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ruv_hub_finalize;
}

static void
ruv_hub_init (RuvHub *self)
{
  /* I/O timeouts are a backstop; downloads have their own stall detector. */
  self->session = soup_session_new_with_options ("user-agent", "ruvllm/0.1",
                                                 "timeout", 60,
                                                 "idle-timeout", 60,
                                                 NULL);
  /* Model bytes must arrive as stored: Range offsets and sizes count raw
   * bytes, so no transparent gzip (shared/RELIABILITY.md 2.6). */
  soup_session_remove_feature_by_type (self->session, SOUP_TYPE_CONTENT_DECODER);
}

void
ruv_hub_model_free (RuvHubModel *model)
{
  if (model == NULL)
    return;
  g_free (model->id);
  g_free (model->pipeline_tag);
  g_free (model);
}

void
ruv_hub_file_free (RuvHubFile *file)
{
  if (file == NULL)
    return;
  g_free (file->path);
  g_free (file->sha256);
  g_free (file->git_oid);
  g_free (file);
}

RuvHubFile *
ruv_hub_file_copy (const RuvHubFile *file)
{
  RuvHubFile *copy = g_new0 (RuvHubFile, 1);

  copy->path = g_strdup (file->path);
  copy->size = file->size;
  copy->sha256 = g_strdup (file->sha256);
  copy->git_oid = g_strdup (file->git_oid);
  return copy;
}

RuvHub *
ruv_hub_new (const char *endpoint,
             const char *token)
{
  RuvHub *self = g_object_new (RUV_TYPE_HUB, NULL);
  const char *ep = endpoint;
  gsize len;

  if (ep == NULL || *ep == '\0')
    ep = g_getenv ("HF_ENDPOINT");
  if (ep == NULL || *ep == '\0')
    ep = RUV_HUB_DEFAULT_ENDPOINT;
  self->endpoint = g_strdup (ep);
  len = strlen (self->endpoint);
  while (len > 0 && self->endpoint[len - 1] == '/')
    self->endpoint[--len] = '\0';
  self->endpoint_uri = g_uri_parse (self->endpoint, SOUP_HTTP_URI_FLAGS, NULL);
  if (self->endpoint_uri == NULL)
    g_warning ("Hub endpoint '%s' is not a URL; requests will fail", self->endpoint);
  ruv_hub_set_token (self, token);
  return self;
}

const char *
ruv_hub_get_endpoint (RuvHub *self)
{
  g_return_val_if_fail (RUV_IS_HUB (self), NULL);
  return self->endpoint;
}

void
ruv_hub_set_token (RuvHub     *self,
                   const char *token)
{
  g_return_if_fail (RUV_IS_HUB (self));
  if (self->token != NULL)
    memset (self->token, 0, strlen (self->token));
  g_clear_pointer (&self->token, g_free);
  if (token != NULL && *token != '\0')
    self->token = g_strstrip (g_strdup (token));
}

gboolean
ruv_hub_has_token (RuvHub *self)
{
  g_return_val_if_fail (RUV_IS_HUB (self), FALSE);
  return self->token != NULL;
}

SoupSession *
ruv_hub_get_session (RuvHub *self)
{
  g_return_val_if_fail (RUV_IS_HUB (self), NULL);
  return self->session;
}

static char *
escape_path (const char *path)
{
  g_auto(GStrv) parts = g_strsplit (path, "/", -1);
  GString *out = g_string_new (NULL);
  guint i;

  for (i = 0; parts[i] != NULL; i++)
    {
      g_autofree char *e = g_uri_escape_string (parts[i], NULL, FALSE);

      if (i > 0)
        g_string_append_c (out, '/');
      g_string_append (out, e);
    }
  return g_string_free (out, FALSE);
}

char *
ruv_hub_resolve_url (RuvHub     *self,
                     const char *repo_id,
                     const char *revision,
                     const char *path)
{
  g_autofree char *epath = NULL;
  g_autofree char *erev = NULL;

  g_return_val_if_fail (RUV_IS_HUB (self), NULL);
  epath = escape_path (path);
  erev = g_uri_escape_string (revision != NULL ? revision : "main", NULL, FALSE);
  return g_strdup_printf ("%s/%s/resolve/%s/%s", self->endpoint, repo_id, erev, epath);
}

/* ---- errors ----------------------------------------------------------- */

GError *
ruv_hub_status_error (SoupMessage *message,
                      const char  *what)
{
  guint status = soup_message_get_status (message);
  SoupMessageHeaders *h = soup_message_get_response_headers (message);
  const char *code = soup_message_headers_get_one (h, "X-Error-Code");
  const char *emsg = soup_message_headers_get_one (h, "X-Error-Message");
  const char *req = soup_message_headers_get_one (h, "X-Request-Id");
  g_autofree char *rid = req != NULL ? g_strdup_printf (" (request id %.64s)", req) : g_strdup ("");

  if (g_strcmp0 (code, "GatedRepo") == 0)
    return g_error_new (RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                        "%s: the repository is gated: accept the model's license on the "
                        "Hugging Face website, then retry%s", what, rid);
  if (status == SOUP_STATUS_UNAUTHORIZED && emsg != NULL
      && strstr (emsg, "Invalid credentials") != NULL)
    return g_error_new (RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                        "%s: the access token is invalid or expired%s", what, rid);
  if (status == SOUP_STATUS_UNAUTHORIZED)
    return g_error_new (RUV_ERROR, RUV_ERROR_NOT_FOUND,
                        "%s: repository not found or needs sign-in: check the name, or add "
                        "a token (HTTP 401)%s", what, rid);
  if (status == SOUP_STATUS_FORBIDDEN)
    return g_error_new (RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                        "%s: access denied (HTTP 403): the token lacks permission for this "
                        "repository, or it is gated%s", what, rid);
  if (status == SOUP_STATUS_NOT_FOUND)
    return g_error_new (RUV_ERROR, RUV_ERROR_NOT_FOUND, "%s: not found (HTTP 404%s%s)%s",
                        what, code != NULL ? ", " : "", code != NULL ? code : "", rid);
  if (status == RUV_HTTP_TOO_MANY_REQUESTS)
    return g_error_new (RUV_ERROR, RUV_ERROR_IO,
                        "%s: rate-limited by Hugging Face (HTTP 429); try again later%s",
                        what, rid);
  return g_error_new (RUV_ERROR, RUV_ERROR_IO, "%s: HTTP %u %s%s", what, status,
                      soup_message_get_reason_phrase (message) != NULL
                      ? soup_message_get_reason_phrase (message) : "", rid);
}

/* ---- sending with manual redirects ------------------------------------ */

typedef struct
{
  GUri       *uri;
  gint64      range_start;
  gint64      range_end;
  guint       hops;
  GHashTable *seen;
  SoupMessage *msg;
} SendData;

static void
send_data_free (SendData *d)
{
  g_clear_pointer (&d->uri, g_uri_unref);
  g_clear_pointer (&d->seen, g_hash_table_unref);
  g_clear_object (&d->msg);
  g_free (d);
}

static int
uri_port (GUri *uri)
{
  int port = g_uri_get_port (uri);

  if (port > 0)
    return port;
  return g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0 ? 443 : 80;
}

static gboolean
same_origin (GUri *a,
             GUri *b)
{
  return a != NULL && b != NULL
         && g_ascii_strcasecmp (g_uri_get_scheme (a), g_uri_get_scheme (b)) == 0
         && g_uri_get_host (a) != NULL && g_uri_get_host (b) != NULL
         && g_ascii_strcasecmp (g_uri_get_host (a), g_uri_get_host (b)) == 0
         && uri_port (a) == uri_port (b);
}

gboolean
_ruv_hub_is_hub_origin (RuvHub *self,
                        GUri   *uri)
{
  return same_origin (uri, self->endpoint_uri);
}

static void send_step (GTask *task);

static void
send_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  RuvHub *self = g_task_get_source_object (task);
  SendData *d = g_task_get_task_data (task);
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GUri) next = NULL;
  g_autofree char *next_str = NULL;
  GError *error = NULL;
  const char *location;
  guint status;

  (void) self;
  stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (stream == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  status = soup_message_get_status (d->msg);
  if (!SOUP_STATUS_IS_REDIRECTION (status) || status == 304 || status == 305 || status == 300)
    {
      g_task_return_pointer (task, g_steal_pointer (&stream), g_object_unref);
      return;
    }
  location = soup_message_headers_get_one (soup_message_get_response_headers (d->msg),
                                           "Location");
  if (location == NULL)
    {
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                               "HTTP %u redirect without a Location", status);
      return;
    }
  next = g_uri_parse_relative (d->uri, location, SOUP_HTTP_URI_FLAGS, NULL);
  if (next == NULL
      || (g_ascii_strcasecmp (g_uri_get_scheme (next), "https") != 0
          && g_ascii_strcasecmp (g_uri_get_scheme (next), "http") != 0)
      || g_uri_get_host (next) == NULL)
    {
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                               "redirect to an unusable location");
      return;
    }
  /* Never downgrade from https to http. */
  if (g_ascii_strcasecmp (g_uri_get_scheme (d->uri), "https") == 0
      && g_ascii_strcasecmp (g_uri_get_scheme (next), "http") == 0)
    {
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                               "refusing a redirect from https to http");
      return;
    }
  next_str = g_uri_to_string (next);
  if (g_hash_table_contains (d->seen, next_str))
    {
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO, "redirect loop");
      return;
    }
  if (++d->hops > RUV_HUB_MAX_REDIRECTS)
    {
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO, "too many redirects (%u)",
                               RUV_HUB_MAX_REDIRECTS);
      return;
    }
  /* The unread body is dropped with its stream (libsoup closes it). */
  g_clear_object (&stream);
  g_hash_table_add (d->seen, g_steal_pointer (&next_str));
  g_uri_unref (d->uri);
  d->uri = g_steal_pointer (&next);
  send_step (g_steal_pointer (&task));
}

static void
send_step (GTask *task)
{
  RuvHub *self = g_task_get_source_object (task);
  SendData *d = g_task_get_task_data (task);
  SoupMessageHeaders *h;

  g_clear_object (&d->msg);
  d->msg = soup_message_new_from_uri ("GET", d->uri);
  soup_message_add_flags (d->msg, SOUP_MESSAGE_NO_REDIRECT);
  h = soup_message_get_request_headers (d->msg);
  soup_message_headers_replace (h, "Accept-Encoding", "identity");
  if (d->range_start > 0 || d->range_end >= 0)
    soup_message_headers_set_range (h, d->range_start, d->range_end);
  /* The token goes only to the Hub's own origin, never to a CDN. */
  if (self->token != NULL && same_origin (d->uri, self->endpoint_uri))
    {
      g_autofree char *auth = g_strdup_printf ("Bearer %s", self->token);

      soup_message_headers_replace (h, "Authorization", auth);
    }
  soup_session_send_async (self->session, d->msg, G_PRIORITY_DEFAULT,
                           g_task_get_cancellable (task), send_done, task);
}

void
ruv_hub_send_async (RuvHub              *self,
                    const char          *url,
                    gint64               range_start,
                    gint64               range_end,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  SendData *d;
  GUri *uri;

  g_return_if_fail (RUV_IS_HUB (self));
  g_return_if_fail (url != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, ruv_hub_send_async);
  uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL
      || (g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") != 0
          && g_ascii_strcasecmp (g_uri_get_scheme (uri), "http") != 0))
    {
      g_clear_pointer (&uri, g_uri_unref);
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_CONFIG, "'%s' is not an http(s) URL",
                               url);
      return;
    }
  d = g_new0 (SendData, 1);
  d->uri = uri;
  d->range_start = range_start;
  d->range_end = range_end;
  d->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_add (d->seen, g_uri_to_string (uri));
  g_task_set_task_data (task, d, (GDestroyNotify) send_data_free);
  send_step (g_steal_pointer (&task));
}

GInputStream *
ruv_hub_send_finish (RuvHub        *self,
                     GAsyncResult  *result,
                     SoupMessage  **out_message,
                     GError       **error)
{
  SendData *d;
  GInputStream *stream;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  d = g_task_get_task_data (G_TASK (result));
  stream = g_task_propagate_pointer (G_TASK (result), error);
  if (out_message != NULL)
    *out_message = stream != NULL && d->msg != NULL ? g_object_ref (d->msg) : NULL;
  return stream;
}

/* ---- bounded body reads ------------------------------------------------ */

typedef struct
{
  GInputStream *stream;
  SoupMessage  *msg;
  guint8       *buf;
  gsize         cap;
  gsize         len;
} ReadData;

static void
read_data_free (ReadData *d)
{
  g_clear_object (&d->stream);
  g_clear_object (&d->msg);
  g_free (d->buf);
  g_free (d);
}

static void read_more (GTask *task);

static void
read_chunk_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ReadData *d = g_task_get_task_data (task);
  GError *error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  if (n < 0)
    {
      g_task_return_error (task, error);
      return;
    }
  if (n == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  d->len += (gsize) n;
  if (d->len == d->cap)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  read_more (g_steal_pointer (&task));
}

static void
read_more (GTask *task)
{
  ReadData *d = g_task_get_task_data (task);

  g_input_stream_read_async (d->stream, d->buf + d->len, MIN (d->cap - d->len, 65536),
                             G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                             read_chunk_done, task);
}

typedef struct
{
  GTask          *outer;
  RuvHubBodyFunc  func;
  char           *what;
  char           *url;
  gint64          range_start;
  gint64          range_end;
  guint           rate_retries;
  gboolean        reresolved;
  GSource        *timer;
  GSource        *cancel_source;
} FetchData;

static void
fetch_clear_wait (FetchData *f)
{
  if (f->timer != NULL)
    g_source_destroy (f->timer);
  g_clear_pointer (&f->timer, g_source_unref);
  if (f->cancel_source != NULL)
    g_source_destroy (f->cancel_source);
  g_clear_pointer (&f->cancel_source, g_source_unref);
}

static void
fetch_data_free (FetchData *f)
{
  fetch_clear_wait (f);
  g_object_unref (f->outer);
  g_free (f->what);
  g_free (f->url);
  g_free (f);
}

static void fetch_send_done (GObject      *source,
                             GAsyncResult *result,
                             gpointer      user_data);

static void
fetch_start (FetchData *f)
{
  ruv_hub_send_async (g_task_get_source_object (f->outer), f->url, f->range_start, f->range_end,
                      g_task_get_cancellable (f->outer), fetch_send_done, f);
}

/* After a wait, or at once when the task is cancelled (the new request then
 * fails with G_IO_ERROR_CANCELLED). */
static gboolean
fetch_retry_cb (gpointer user_data)
{
  FetchData *f = user_data;

  fetch_clear_wait (f);
  fetch_start (f);
  return G_SOURCE_REMOVE;
}

static gboolean
fetch_cancelled_cb (GCancellable *cancellable,
                    gpointer      user_data)
{
  (void) cancellable;
  return fetch_retry_cb (user_data);
}

static void
fetch_retry_later (FetchData *f,
                   gint64     wait_ms)
{
  GCancellable *cancellable = g_task_get_cancellable (f->outer);

  f->timer = g_timeout_source_new ((guint) wait_ms);
  g_source_set_callback (f->timer, fetch_retry_cb, f, NULL);
  g_source_attach (f->timer, g_task_get_context (f->outer));
  if (cancellable != NULL)
    {
      f->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (f->cancel_source, G_SOURCE_FUNC (fetch_cancelled_cb), f, NULL);
      g_source_attach (f->cancel_source, g_task_get_context (f->outer));
    }
}

/* A 429 on an API call: TRUE when a retry is scheduled, else *error says
 * why not. */
static gboolean
fetch_rate_limited (FetchData    *f,
                    SoupMessage  *msg,
                    GError      **error)
{
  gint64 wait = _ruv_hub_retry_after_ms (soup_message_get_response_headers (msg));

  if (wait < 0)
    wait = (gint64) 1000 << f->rate_retries;   /* 1, 2, 4 s */
  if (wait > API_MAX_WAIT_MS)
    {
      *error = g_error_new (RUV_ERROR, RUV_ERROR_IO, "%s: rate-limited by Hugging Face (HTTP "
                            "429); the Hub asks to wait %" G_GINT64_FORMAT " s", f->what,
                            (wait + 999) / 1000);
      return FALSE;
    }
  if (f->rate_retries >= API_MAX_RETRIES)
    {
      *error = ruv_hub_status_error (msg, f->what);
      return FALSE;
    }
  f->rate_retries++;
  g_debug ("%s: rate-limited (HTTP 429), retry %u in %" G_GINT64_FORMAT " ms", f->what,
           f->rate_retries, wait);
  fetch_retry_later (f, wait);
  return TRUE;
}

static void
fetch_read_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  FetchData *f = user_data;
  ReadData *d = g_task_get_task_data (G_TASK (result));
  GError *error = NULL;

  (void) source;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    g_task_return_error (f->outer, error);
  else
    f->func (f->outer, d->msg, d->buf, d->len, d->cap);
  fetch_data_free (f);
}

static void
fetch_send_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  FetchData *f = user_data;
  GTask *outer = f->outer;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GInputStream) stream = NULL;
  GError *error = NULL;
  GTask *inner;
  ReadData *d;
  guint status;

  stream = ruv_hub_send_finish (RUV_HUB (source), result, &msg, &error);
  if (stream == NULL)
    {
      g_prefix_error (&error, "%s: ", f->what);
      g_task_return_error (outer, error);
      goto out;
    }
  status = soup_message_get_status (msg);
  if (status == RUV_HTTP_TOO_MANY_REQUESTS)
    {
      if (fetch_rate_limited (f, msg, &error))
        return;
      g_task_return_error (outer, error);
      goto out;
    }
  /* A signed CDN URL can expire between the Hub's redirect and its use;
   * resolving again from the Hub signs a fresh one. Once. */
  if (status == SOUP_STATUS_FORBIDDEN && !f->reresolved
      && !_ruv_hub_is_hub_origin (RUV_HUB (source), soup_message_get_uri (msg)))
    {
      f->reresolved = TRUE;
      g_debug ("%s: HTTP 403 from the CDN; resolving again", f->what);
      fetch_start (f);
      return;
    }
  if (!SOUP_STATUS_IS_SUCCESSFUL (status))
    {
      g_task_return_error (outer, ruv_hub_status_error (msg, f->what));
      goto out;
    }
  d = g_new0 (ReadData, 1);
  d->stream = g_steal_pointer (&stream);
  d->msg = g_steal_pointer (&msg);
  d->cap = GPOINTER_TO_SIZE (g_task_get_task_data (outer));
  d->buf = g_malloc (d->cap);
  inner = g_task_new (NULL, g_task_get_cancellable (outer), fetch_read_done, f);
  g_task_set_task_data (inner, d, (GDestroyNotify) read_data_free);
  read_more (inner);
  return;

out:
  fetch_data_free (f);
}

void
_ruv_hub_fetch (RuvHub         *self,
                GTask          *outer,
                const char     *url,
                gint64          range_start,
                gint64          range_end,
                gsize           cap,
                const char     *what,
                RuvHubBodyFunc  func)
{
  FetchData *f = g_new0 (FetchData, 1);

  g_assert (g_task_get_source_object (outer) == (gpointer) self);
  f->outer = g_object_ref (outer);
  f->func = func;
  f->what = g_strdup (what);
  f->url = g_strdup (url);
  f->range_start = range_start;
  f->range_end = range_end;
  g_task_set_task_data (outer, GSIZE_TO_POINTER (cap), NULL);
  fetch_start (f);
}

/* ---- remote GGUF header ----------------------------------------------- */

typedef struct
{
  char  *url;
  char  *name;
  gsize  want;
  gsize  max;
} HeaderData;

static void
header_data_free (HeaderData *h)
{
  g_free (h->url);
  g_free (h->name);
  g_free (h);
}

static void header_try (GTask *task);

static void
header_body (GTask        *task,
             SoupMessage  *msg,
             const guint8 *data,
             gsize         len,
             gsize         cap)
{
  HeaderData *h = g_object_get_data (G_OBJECT (task), "ruv-header");
  SoupMessageHeaders *rh = soup_message_get_response_headers (msg);
  g_autoptr(RuvGgufHeader) header = NULL;
  GError *error = NULL;
  gboolean need_more = FALSE;
  goffset start = 0, end = 0, total = 0;
  guint64 file_size = 0;

  (void) cap;
  if (soup_message_get_status (msg) == SOUP_STATUS_PARTIAL_CONTENT)
    {
      if (!soup_message_headers_get_content_range (rh, &start, &end, &total) || start != 0)
        {
          g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                                   "%s: the server sent a wrong range", h->name);
          return;
        }
      file_size = total > 0 ? (guint64) total : 0;
    }
  else if (soup_message_headers_get_content_length (rh) > 0)
    file_size = (guint64) soup_message_headers_get_content_length (rh);
  /* A short body is the whole file. */
  if (len < h->want)
    file_size = len;

  header = ruv_gguf_header_parse (data, len, file_size, h->name, &need_more, &error);
  if (header != NULL)
    {
      g_task_return_pointer (task, g_steal_pointer (&header),
                             (GDestroyNotify) ruv_gguf_header_free);
      return;
    }
  if (need_more && h->want < h->max)
    {
      g_clear_error (&error);
      h->want = MIN (h->max, h->want * 4);
      header_try (task);
      return;
    }
  if (need_more)
    g_prefix_error (&error, "metadata larger than %" G_GSIZE_FORMAT " bytes: ", h->max);
  g_task_return_error (task, error);
}

static void
header_try (GTask *task)
{
  HeaderData *h = g_object_get_data (G_OBJECT (task), "ruv-header");

  _ruv_hub_fetch (g_task_get_source_object (task), task, h->url, 0, (gint64) h->want - 1,
                  h->want, h->name, header_body);
}

void
ruv_hub_read_header_async (RuvHub              *self,
                           const char          *repo_id,
                           const char          *revision,
                           const char          *path,
                           gsize                first_bytes,
                           gsize                max_bytes,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  HeaderData *h;
  GError *error = NULL;

  g_return_if_fail (RUV_IS_HUB (self));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, ruv_hub_read_header_async);
  if (revision == NULL)
    revision = "main";
  if (!ruv_hub_check_repo_id (repo_id, &error) || !ruv_hub_check_revision (revision, &error)
      || !ruv_hub_check_path (path, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  h = g_new0 (HeaderData, 1);
  h->url = ruv_hub_resolve_url (self, repo_id, revision, path);
  h->name = g_strdup (path);
  h->max = max_bytes > 0 ? max_bytes : 64u << 20;
  h->want = MAX ((gsize) 64, MIN (first_bytes > 0 ? first_bytes : 256u << 10, h->max));
  g_object_set_data_full (G_OBJECT (task), "ruv-header", h, (GDestroyNotify) header_data_free);
  header_try (task);
}

RuvGgufHeader *
ruv_hub_read_header_finish (RuvHub        *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
