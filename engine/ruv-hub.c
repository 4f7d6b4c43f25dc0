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
 */
#include "ruv-hub.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "ruv-error.h"

/* A JSON answer larger than this is not an API answer. */
#define MAX_JSON_BYTES (64u << 20)
#define MAX_PATH_BYTES 1024
#define MAX_COMPONENT_BYTES 255
#define MAX_REPO_PART 96
/* No real model file is this big (the CDN itself refuses ~400 GB). */
#define MAX_FILE_SIZE (G_GUINT64_CONSTANT (1) << 42)

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

/* ---- names ------------------------------------------------------------ */

static gboolean
repo_part_ok (const char *s,
              gsize       len)
{
  gsize i;

  if (len == 0 || len > MAX_REPO_PART || s[0] == '.' || s[0] == '-')
    return FALSE;
  for (i = 0; i < len; i++)
    {
      char c = s[i];

      if (!g_ascii_isalnum (c) && c != '-' && c != '_' && c != '.')
        return FALSE;
      if (c == '.' && i + 1 < len && s[i + 1] == '.')
        return FALSE;
    }
  return TRUE;
}

gboolean
ruv_hub_check_repo_id (const char  *repo_id,
                       GError     **error)
{
  const char *slash;

  if (repo_id != NULL)
    {
      slash = strchr (repo_id, '/');
      if (slash != NULL && strchr (slash + 1, '/') == NULL
          && repo_part_ok (repo_id, (gsize) (slash - repo_id))
          && repo_part_ok (slash + 1, strlen (slash + 1)))
        return TRUE;
    }
  g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
               "'%s' is not a Hugging Face repository id (expected owner/name)",
               repo_id != NULL ? repo_id : "(null)");
  return FALSE;
}

static gboolean
path_error (GError    **error,
            const char *path,
            const char *why)
{
  g_autofree char *shown = g_strescape (path, NULL);

  g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "unsafe file name '%s' from the Hub: %s",
               shown, why);
  return FALSE;
}

gboolean
ruv_hub_check_path (const char  *path,
                    GError     **error)
{
  gsize len, i, comp_start;

  if (path == NULL || *path == '\0')
    return path_error (error, "", "empty");
  len = strlen (path);
  if (len > MAX_PATH_BYTES)
    return path_error (error, path, "too long");
  if (!g_utf8_validate (path, (gssize) len, NULL))
    return path_error (error, path, "not UTF-8");
  if (path[0] == '/')
    return path_error (error, path, "absolute path");
  if (len >= 2 && g_ascii_isalpha (path[0]) && path[1] == ':')
    return path_error (error, path, "drive letter");
  comp_start = 0;
  for (i = 0; i <= len; i++)
    {
      guchar c = (guchar) path[i];

      if (i < len && (c < 0x20 || c == 0x7f))
        return path_error (error, path, "control character");
      if (c == '\\')
        return path_error (error, path, "backslash");
      if (i == len || c == '/')
        {
          gsize clen = i - comp_start;

          if (clen == 0)
            return path_error (error, path, "empty component");
          if (clen > MAX_COMPONENT_BYTES)
            return path_error (error, path, "component longer than 255 bytes");
          if ((clen == 1 && path[comp_start] == '.')
              || (clen == 2 && path[comp_start] == '.' && path[comp_start + 1] == '.'))
            return path_error (error, path, "'.' or '..' component");
          comp_start = i + 1;
        }
    }
  return TRUE;
}

gboolean
ruv_hub_check_revision (const char  *revision,
                        GError     **error)
{
  if (revision == NULL || strlen (revision) > 255 || strchr (revision, '?') != NULL
      || strchr (revision, '#') != NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "'%s' is not a valid revision",
                   revision != NULL ? revision : "(null)");
      return FALSE;
    }
  return ruv_hub_check_path (revision, error);
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

/* GET url (following redirects) and read at most cap bytes of a 2xx body.
 * For JSON: cap is MAX_JSON_BYTES + 1, so "too large" is detectable. */
typedef void (*BodyFunc) (GTask *outer, SoupMessage *msg, const guint8 *data, gsize len,
                          gsize cap);

typedef struct
{
  GTask   *outer;
  BodyFunc func;
  char    *what;
} FetchData;

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
  g_object_unref (f->outer);
  g_free (f->what);
  g_free (f);
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
  g_object_unref (f->outer);
  g_free (f->what);
  g_free (f);
}

/* Starts a GET whose bounded body is handed to func; `outer`'s task data is
 * the cap (as a pointer-sized integer) until func replaces it. */
static void
fetch (RuvHub     *self,
       GTask      *outer,
       const char *url,
       gint64      range_start,
       gint64      range_end,
       gsize       cap,
       const char *what,
       BodyFunc    func)
{
  FetchData *f = g_new0 (FetchData, 1);

  f->outer = g_object_ref (outer);
  f->func = func;
  f->what = g_strdup (what);
  g_task_set_task_data (outer, GSIZE_TO_POINTER (cap), NULL);
  ruv_hub_send_async (self, url, range_start, range_end, g_task_get_cancellable (outer),
                      fetch_send_done, f);
}

static JsonNode *
parse_json_array (const guint8 *data,
                  gsize         len,
                  gsize         cap,
                  const char   *what,
                  GError      **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  GError *local_error = NULL;

  if (len >= cap)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: the answer is larger than %u MiB",
                   what, (guint) (MAX_JSON_BYTES >> 20));
      return NULL;
    }
  if (!json_parser_load_from_data (parser, (const char *) data, (gssize) len, &local_error))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: malformed JSON from the Hub: %s", what,
                   local_error->message);
      g_error_free (local_error);
      return NULL;
    }
  if (json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_ARRAY (json_parser_get_root (parser)))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: unexpected JSON from the Hub "
                   "(expected an array)", what);
      return NULL;
    }
  return json_node_copy (json_parser_get_root (parser));
}

/* A non-negative integer member, or FALSE. */
static gboolean
get_uint_member (JsonObject *o,
                 const char *name,
                 guint64    *out)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64
      || json_node_get_int (n) < 0)
    return FALSE;
  *out = (guint64) json_node_get_int (n);
  return TRUE;
}

static const char *
get_string_member (JsonObject *o,
                   const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
is_hex (const char *s,
        gsize       len)
{
  gsize i;

  if (s == NULL || strlen (s) != len)
    return FALSE;
  for (i = 0; i < len; i++)
    if (!g_ascii_isxdigit (s[i]))
      return FALSE;
  return TRUE;
}

/* ---- search ----------------------------------------------------------- */

static void
search_body (GTask        *task,
             SoupMessage  *msg,
             const guint8 *data,
             gsize         len,
             gsize         cap)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_hub_model_free);
  GError *error = NULL;
  JsonArray *arr;
  guint i;

  (void) msg;
  root = parse_json_array (data, len, cap, "search", &error);
  if (root == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  arr = json_node_get_array (root);
  for (i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      JsonObject *o;
      JsonNode *gated;
      const char *id;
      RuvHubModel *m;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        continue;
      o = json_node_get_object (n);
      id = get_string_member (o, "id");
      if (id == NULL)
        id = get_string_member (o, "modelId");
      /* Hits with unusable ids are skipped, not trusted. */
      if (id == NULL || !ruv_hub_check_repo_id (id, NULL))
        continue;
      m = g_new0 (RuvHubModel, 1);
      m->id = g_strdup (id);
      get_uint_member (o, "downloads", &m->downloads);
      get_uint_member (o, "likes", &m->likes);
      m->pipeline_tag = g_strdup (get_string_member (o, "pipeline_tag"));
      gated = json_object_get_member (o, "gated");
      m->gated = gated != NULL && JSON_NODE_HOLDS_VALUE (gated)
                 && ((json_node_get_value_type (gated) == G_TYPE_BOOLEAN
                      && json_node_get_boolean (gated))
                     || json_node_get_value_type (gated) == G_TYPE_STRING);
      g_ptr_array_add (out, m);
    }
  g_task_return_pointer (task, g_steal_pointer (&out), (GDestroyNotify) g_ptr_array_unref);
}

void
ruv_hub_search_async (RuvHub              *self,
                      const char          *query,
                      guint                limit,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *q = NULL;
  g_autofree char *url = NULL;

  g_return_if_fail (RUV_IS_HUB (self));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, ruv_hub_search_async);
  q = g_uri_escape_string (query != NULL ? query : "", NULL, FALSE);
  url = g_strdup_printf ("%s/api/models?search=%s&filter=gguf&sort=downloads&direction=-1"
                         "&limit=%u", self->endpoint, q, CLAMP (limit, 1, 100));
  fetch (self, task, url, 0, -1, MAX_JSON_BYTES + 1, "search", search_body);
}

GPtrArray *
ruv_hub_search_finish (RuvHub        *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- file listing ----------------------------------------------------- */

static void
tree_body (GTask        *task,
           SoupMessage  *msg,
           const guint8 *data,
           gsize         len,
           gsize         cap)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_hub_file_free);
  GError *error = NULL;
  JsonArray *arr;
  guint i;

  (void) msg;
  root = parse_json_array (data, len, cap, "file listing", &error);
  if (root == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  arr = json_node_get_array (root);
  for (i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      g_autoptr(RuvHubFile) f = NULL;
      JsonObject *o, *lfs = NULL;
      JsonNode *lfs_node;
      const char *type, *path, *oid;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        continue;
      o = json_node_get_object (n);
      type = get_string_member (o, "type");
      if (g_strcmp0 (type, "file") != 0)
        continue;
      path = get_string_member (o, "path");
      if (!ruv_hub_check_path (path, &error))
        {
          g_task_return_error (task, error);
          return;
        }
      f = g_new0 (RuvHubFile, 1);
      f->path = g_strdup (path);
      if (!get_uint_member (o, "size", &f->size))
        {
          g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                                   "file listing: '%s' has no valid size", path);
          return;
        }
      oid = get_string_member (o, "oid");
      if (is_hex (oid, 40))
        f->git_oid = g_ascii_strdown (oid, -1);
      lfs_node = json_object_get_member (o, "lfs");
      if (lfs_node != NULL && JSON_NODE_HOLDS_OBJECT (lfs_node))
        lfs = json_node_get_object (lfs_node);
      if (lfs != NULL)
        {
          const char *sha = get_string_member (lfs, "oid");

          if (sha == NULL)
            sha = get_string_member (lfs, "sha256");
          if (!is_hex (sha, 64) || !get_uint_member (lfs, "size", &f->size))
            {
              g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                                       "file listing: '%s' has an invalid LFS entry", path);
              return;
            }
          f->sha256 = g_ascii_strdown (sha, -1);
        }
      if (f->size > MAX_FILE_SIZE)
        {
          g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                                   "file listing: '%s' claims an absurd size of %"
                                   G_GUINT64_FORMAT " bytes", path, f->size);
          return;
        }
      g_ptr_array_add (out, g_steal_pointer (&f));
    }
  g_task_return_pointer (task, g_steal_pointer (&out), (GDestroyNotify) g_ptr_array_unref);
}

void
ruv_hub_list_files_async (RuvHub              *self,
                          const char          *repo_id,
                          const char          *revision,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *url = NULL;
  g_autofree char *erev = NULL;
  g_autofree char *what = NULL;
  GError *error = NULL;

  g_return_if_fail (RUV_IS_HUB (self));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, ruv_hub_list_files_async);
  if (revision == NULL)
    revision = "main";
  if (!ruv_hub_check_repo_id (repo_id, &error) || !ruv_hub_check_revision (revision, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  erev = g_uri_escape_string (revision, NULL, FALSE);
  url = g_strdup_printf ("%s/api/models/%s/tree/%s?recursive=1", self->endpoint, repo_id, erev);
  what = g_strdup_printf ("%s: file listing", repo_id);
  fetch (self, task, url, 0, -1, MAX_JSON_BYTES + 1, what, tree_body);
}

GPtrArray *
ruv_hub_list_files_finish (RuvHub        *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
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

  fetch (g_task_get_source_object (task), task, h->url, 0, (gint64) h->want - 1, h->want,
         h->name, header_body);
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

/* ---- picking files for a precision ------------------------------------ */

static gboolean
has_suffix_ci (const char *s,
               const char *suffix)
{
  gsize ls = strlen (s), lx = strlen (suffix);

  return ls >= lx && g_ascii_strcasecmp (s + ls - lx, suffix) == 0;
}

/* Parses "-00001-of-00003.gguf" at the end of name; the stem is the part
 * before it. FALSE for a single file. */
static gboolean
split_info (const char *name,
            guint      *part,
            guint      *count,
            char      **stem)
{
  gsize len = strlen (name);
  const char *p;
  guint64 a, b;
  char *endp;

  /* "-NNNNN-of-NNNNN.gguf" is 20 characters. */
  if (len < 20 || !has_suffix_ci (name, ".gguf"))
    return FALSE;
  p = name + len - 20;
  if (p[0] != '-' || g_ascii_strncasecmp (p + 6, "-of-", 4) != 0)
    return FALSE;
  a = g_ascii_strtoull (p + 1, &endp, 10);
  if (endp != p + 6)
    return FALSE;
  b = g_ascii_strtoull (p + 10, &endp, 10);
  if (endp != p + 15 || a == 0 || b == 0 || a > b || b > 9999)
    return FALSE;
  *part = (guint) a;
  *count = (guint) b;
  if (stem != NULL)
    *stem = g_strndup (name, (gsize) (p - name));
  return TRUE;
}

/* Does the file name carry this quantization tag, delimited by non-alnum? */
static gboolean
name_has_tag (const char *path,
              const char *tag)
{
  const char *base = strrchr (path, '/');
  g_autofree char *lower = g_ascii_strdown (base != NULL ? base + 1 : path, -1);
  g_autofree char *ltag = g_ascii_strdown (tag, -1);
  const char *p = lower;
  gsize tl = strlen (ltag);

  while ((p = strstr (p, ltag)) != NULL)
    {
      gboolean left_ok = p == lower || !g_ascii_isalnum (p[-1]);
      gboolean right_ok = !g_ascii_isalnum (p[tl]) && p[tl] != '_';

      if (left_ok && right_ok)
        return TRUE;
      p++;
    }
  return FALSE;
}

static const char *const known_tags[] = {
  "Q4_K_M", "Q4_K_S", "Q4_K_L", "Q8_0", "F16", "BF16", "Q4_0", "Q4_1", "F32", "Q5_K_M", "Q5_K_S",
  "Q6_K", "Q3_K_M", "Q3_K_L", "Q3_K_S", "Q2_K", "Q5_0", "Q5_1", "IQ4_XS", "IQ4_NL",
};

GPtrArray *
ruv_hub_pick_files (GPtrArray    *files,
                    RuvPrecision  precision,
                    GError      **error)
{
  const char *tags_q4k[] = { "Q4_K_M", "Q4_K", "Q4_K_S", "Q4_K_L", NULL };
  const char *tags_q8[] = { "Q8_0", NULL };
  const char *tags_f16[] = { "F16", "FP16", NULL };
  const char *tags_bf16[] = { "BF16", NULL };
  const char *tags_q4[] = { "Q4_0", NULL };
  const char *tags_f32[] = { "F32", "FP32", NULL };
  const char **tags;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_hub_file_free);
  g_autoptr(GString) found = g_string_new (NULL);
  guint i, t, n_gguf = 0;

  g_return_val_if_fail (files != NULL, NULL);
  switch (precision)
    {
    case RUV_PRECISION_Q4K: tags = tags_q4k; break;
    case RUV_PRECISION_Q8: tags = tags_q8; break;
    case RUV_PRECISION_FP16: tags = tags_f16; break;
    case RUV_PRECISION_BF16: tags = tags_bf16; break;
    case RUV_PRECISION_Q4: tags = tags_q4; break;
    case RUV_PRECISION_FP32: tags = tags_f32; break;
    default:
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "unknown precision %d", precision);
      return NULL;
    }

  for (i = 0; i < files->len; i++)
    if (has_suffix_ci (((RuvHubFile *) files->pdata[i])->path, ".gguf"))
      n_gguf++;
  if (n_gguf == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                   "the repository has no GGUF files");
      return NULL;
    }

  for (t = 0; tags[t] != NULL && out->len == 0; t++)
    for (i = 0; i < files->len; i++)
      {
        RuvHubFile *f = files->pdata[i];
        g_autofree char *stem = NULL;
        guint part = 0, count = 0, p, j;

        if (!has_suffix_ci (f->path, ".gguf") || !name_has_tag (f->path, tags[t])
            || strstr (f->path, "mmproj") != NULL)
          continue;
        if (!split_info (f->path, &part, &count, &stem))
          {
            g_ptr_array_add (out, ruv_hub_file_copy (f));
            break;
          }
        if (part != 1)
          continue;
        /* Collect parts 1..count of this stem. */
        for (p = 1; p <= count; p++)
          {
            gboolean have = FALSE;

            for (j = 0; j < files->len; j++)
              {
                RuvHubFile *g = files->pdata[j];
                g_autofree char *stem2 = NULL;
                guint part2, count2;

                if (split_info (g->path, &part2, &count2, &stem2) && part2 == p
                    && count2 == count && strcmp (stem2, stem) == 0)
                  {
                    g_ptr_array_add (out, ruv_hub_file_copy (g));
                    have = TRUE;
                    break;
                  }
              }
            if (!have)
              {
                g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                             "split model '%s': part %u of %u is missing", f->path, p, count);
                return NULL;
              }
          }
        break;
      }
  if (out->len > 0)
    return g_steal_pointer (&out);

  for (t = 0; t < G_N_ELEMENTS (known_tags); t++)
    for (i = 0; i < files->len; i++)
      if (has_suffix_ci (((RuvHubFile *) files->pdata[i])->path, ".gguf")
          && name_has_tag (((RuvHubFile *) files->pdata[i])->path, known_tags[t]))
        {
          g_string_append_printf (found, "%s%s", found->len > 0 ? ", " : "", known_tags[t]);
          break;
        }
  g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
               "no %s GGUF file in the repository (it has: %s)", ruv_precision_name (precision),
               found->len > 0 ? found->str : "no recognised quantization");
  return NULL;
}
