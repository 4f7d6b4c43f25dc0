/* ruv-fake-hub.c — the fake Hub and CDN shared by test-download and
 * test-cli-hub (see ruv-fake-hub.h).
 * SPDX-License-Identifier: MIT
 */
#include "ruv-fake-hub.h"

#include <string.h>

#include "rk.h"
#include "ruv-gguf-writer.h"

RuvFakeHub ruv_fake_hub;

/* ---- GGUF fixtures -------------------------------------------------------- */

GBytes *
ruv_fake_hub_make_gguf (guint n_floats,
           guint n_vocab)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GPtrArray) vocab = g_ptr_array_new_with_free_func (g_free);
  g_autofree float *data = g_new (float, n_floats);
  gint64 ne[1] = { n_floats };
  guint i;

  ruv_gguf_writer_set_string (w, "general.architecture", "llama");
  ruv_gguf_writer_set_string (w, "general.name", "download-test");
  ruv_gguf_writer_set_uint32 (w, "llama.block_count", 2);
  ruv_gguf_writer_set_uint32 (w, "llama.context_length", 2048);
  ruv_gguf_writer_set_uint32 (w, "llama.embedding_length", 64);
  ruv_gguf_writer_set_uint32 (w, "llama.attention.head_count", 4);
  ruv_gguf_writer_set_uint32 (w, "llama.attention.head_count_kv", 2);
  for (i = 0; i < n_vocab; i++)
    g_ptr_array_add (vocab, g_strdup_printf ("token-%05u", i));
  ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.tokens",
                                    (const char *const *) vocab->pdata, vocab->len);
  for (i = 0; i < n_floats; i++)
    data[i] = (float) ((i * 2654435761u) % 1000) / 7.0f;
  g_assert_true (ruv_gguf_writer_add_tensor (w, "blob", RK_TYPE_F32, 1, ne, data,
                                             n_floats * sizeof (float), NULL));
  return ruv_gguf_writer_to_bytes (w, NULL);
}

char *
ruv_fake_hub_sha256 (GBytes *b)
{
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, b);
}

static RuvFakeFile *
repo_file_new (const char *path,
               GBytes     *data,
               gboolean    lfs)
{
  RuvFakeFile *f = g_new0 (RuvFakeFile, 1);

  f->path = g_strdup (path);
  f->data = g_bytes_ref (data);
  f->sha256 = lfs ? ruv_fake_hub_sha256 (data) : NULL;
  f->listed_size = g_bytes_get_size (data);
  return f;
}

static void
repo_file_free (RuvFakeFile *f)
{
  g_free (f->path);
  g_bytes_unref (f->data);
  g_free (f->sha256);
  g_free (f);
}

static RuvFakeRepo *
repo_new (const char *id)
{
  RuvFakeRepo *r = g_new0 (RuvFakeRepo, 1);

  r->id = g_strdup (id);
  r->files = g_ptr_array_new_with_free_func ((GDestroyNotify) repo_file_free);
  return r;
}

static void
repo_free (RuvFakeRepo *r)
{
  g_free (r->id);
  g_ptr_array_unref (r->files);
  g_free (r);
}

RuvFakeRepo *
ruv_fake_hub_find_repo (const char *id)
{
  guint i;

  for (i = 0; i < ruv_fake_hub.repos->len; i++)
    if (strcmp (((RuvFakeRepo *) ruv_fake_hub.repos->pdata[i])->id, id) == 0)
      return ruv_fake_hub.repos->pdata[i];
  return NULL;
}

static RuvFakeFile *
find_file (RuvFakeRepo       *r,
           const char *path)
{
  guint i;

  for (i = 0; r != NULL && i < r->files->len; i++)
    if (strcmp (((RuvFakeFile *) r->files->pdata[i])->path, path) == 0)
      return r->files->pdata[i];
  return NULL;
}

/* ---- the fake Hub -------------------------------------------------------- */

static void
set_json (SoupServerMessage *msg,
          const char        *json)
{
  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, json,
                                    strlen (json));
}

static gboolean
check_gate (SoupServerMessage *msg,
            RuvFakeRepo              *r)
{
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Authorization");

  if (!r->gated || g_strcmp0 (auth, "Bearer " RUV_FAKE_HUB_TOKEN) == 0)
    return TRUE;
  if (auth == NULL)
    soup_server_message_set_status (msg, 401, NULL);
  else
    {
      soup_server_message_set_status (msg, 403, NULL);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "X-Error-Code", "GatedRepo");
    }
  return FALSE;
}

/* Serves entries (JSON objects) as an array, a page of page_size at a time
 * from the "cursor" query (an offset) when page_size > 0, with a Link to the
 * next page: absolute for listings, relative for the search (both occur). */
static void
set_json_pages (SoupServerMessage *msg,
                GHashTable        *query,
                GPtrArray         *entries,
                guint              page_size,
                const char        *next_base)
{
  const char *cursor = query != NULL ? g_hash_table_lookup (query, "cursor") : NULL;
  guint start = cursor != NULL ? (guint) g_ascii_strtoull (cursor, NULL, 10) : 0;
  guint end = page_size > 0 ? MIN (entries->len, start + page_size) : entries->len;
  GString *json = g_string_new ("[");
  guint i;

  for (i = start; i < end; i++)
    g_string_append_printf (json, "%s%s", i > start ? "," : "",
                            (const char *) entries->pdata[i]);
  g_string_append (json, "]");
  set_json (msg, json->str);
  g_string_free (json, TRUE);
  if (end < entries->len || (page_size > 0 && ruv_fake_hub.page_loop))
    {
      g_autofree char *link = NULL;

      link = g_strdup_printf ("<%s>; rel=\"first\", <%s%s%s&cursor=%u>; rel=\"next\"",
                              next_base, ruv_fake_hub.page_offsite ? ruv_fake_hub.cdn_url : "",
                              ruv_fake_hub.page_offsite ? "/cdn" : "", next_base,
                              ruv_fake_hub.page_loop ? start : end);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Link", link);
    }
}

/* A listing of r's files (after a directory entry, which is skipped), or
 * its raw_tree. */
static void
serve_tree (SoupServerMessage *msg,
            GHashTable        *query,
            const char        *path,
            RuvFakeRepo       *r)
{
  g_autoptr(GPtrArray) entries = NULL;
  g_autofree char *base = NULL;
  guint i;

  if (r->raw_tree != NULL)
    {
      set_json (msg, r->raw_tree);
      return;
    }
  entries = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (entries, g_strdup ("{\"type\":\"directory\",\"path\":\"sub\","
                                      "\"oid\":\"x\"}"));
  for (i = 0; i < r->files->len; i++)
    {
      RuvFakeFile *f = r->files->pdata[i];
      GString *json = g_string_new (NULL);

      g_string_append_printf (json, "{\"type\":\"file\",\"path\":\"%s\",\"size\":%"
                              G_GUINT64_FORMAT ",\"oid\":\"%040u\"", f->path,
                              f->sha256 != NULL ? (guint64) 135 : f->listed_size, i);
      if (f->sha256 != NULL)
        g_string_append_printf (json, ",\"lfs\":{\"oid\":\"%s\",\"size\":%"
                                G_GUINT64_FORMAT ",\"pointerSize\":135}", f->sha256,
                                f->listed_size);
      g_string_append (json, "}");
      g_ptr_array_add (entries, g_string_free (json, FALSE));
    }
  base = g_strdup_printf ("%s%s?recursive=1",
                          ruv_fake_hub.page_offsite ? "" : ruv_fake_hub.hub_url, path);
  set_json_pages (msg, query, entries,
                  ruv_fake_hub.page_size > 0 ? ruv_fake_hub.page_size : r->page_size,
                  base);
}

static const char *const search_entries[] = {
  "{\"id\":\"test/model-GGUF\",\"downloads\":1200,\"likes\":3,"
  "\"pipeline_tag\":\"text-generation\",\"gated\":false}",
  "{\"id\":\"../../etc\",\"downloads\":5}",
  "{\"id\":\"test/gated-GGUF\",\"downloads\":7,\"gated\":\"manual\"}",
  "{\"nonsense\":true}",
  "42",
};

static void
hub_handler (SoupServer        *server,
             SoupServerMessage *msg,
             const char        *path,
             GHashTable        *query,
             gpointer           user_data)
{
  g_auto(GStrv) parts = g_strsplit (path, "/", -1);
  guint n = g_strv_length (parts);
  RuvFakeRepo *r;

  g_mutex_lock (&ruv_fake_hub.lock);
  if (soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                    "Authorization") != NULL)
    ruv_fake_hub.n_auth_on_hub++;
  if (g_str_has_prefix (path, "/api/"))
    ruv_fake_hub.n_api++;

  if (g_str_has_prefix (path, "/api/") && ruv_fake_hub.api_429 > 0)
    {
      SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

      ruv_fake_hub.api_429--;
      soup_server_message_set_status (msg, 429, NULL);
      if (ruv_fake_hub.api_retry_after != NULL)
        soup_message_headers_replace (h, "Retry-After", ruv_fake_hub.api_retry_after);
      if (ruv_fake_hub.api_ratelimit != NULL)
        soup_message_headers_replace (h, "RateLimit", ruv_fake_hub.api_ratelimit);
    }
  else if (strcmp (path, "/api/models") == 0)
    {
      g_autoptr(GPtrArray) entries = g_ptr_array_new ();
      guint i;

      g_assert_cmpstr (g_hash_table_lookup (query, "filter"), ==, "gguf");
      for (i = 0; i < G_N_ELEMENTS (search_entries); i++)
        g_ptr_array_add (entries, (gpointer) search_entries[i]);
      set_json_pages (msg, query, entries, ruv_fake_hub.page_size, "?filter=gguf&search=x");
    }
  else if (n == 7 && strcmp (parts[1], "api") == 0 && strcmp (parts[5], "tree") == 0)
    {
      g_autofree char *id = g_strdup_printf ("%s/%s", parts[3], parts[4]);

      r = ruv_fake_hub_find_repo (id);
      if (r == NULL)
        soup_server_message_set_status (msg, 401, NULL);
      else if (check_gate (msg, r))
        serve_tree (msg, query, path, r);
    }
  else if (n >= 6 && strcmp (parts[3], "resolve") == 0)
    {
      g_autofree char *id = g_strdup_printf ("%s/%s", parts[1], parts[2]);
      g_autofree char *file = g_strjoinv ("/", parts + 5);

      r = ruv_fake_hub_find_repo (id);
      if (ruv_fake_hub.redirect_loop)
        soup_server_message_set_redirect (msg, 302, path);
      else if (r == NULL || find_file (r, file) == NULL)
        soup_server_message_set_status (msg, 404, NULL);
      else if (check_gate (msg, r))
        {
          g_autofree char *to = g_strdup_printf ("%s/cdn/%s/%s?Expires=1&Signature=abc",
                                                 ruv_fake_hub.cdn_url, id, file);

          soup_server_message_set_redirect (msg, 302, to);
        }
    }
  else
    soup_server_message_set_status (msg, 404, NULL);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

/* ---- the fake CDN --------------------------------------------------------- */

typedef struct
{
  SoupServerMessage *msg;
} Closer;

static gboolean
close_connection (gpointer user_data)
{
  SoupServerMessage *msg = user_data;
  GSocket *sock = soup_server_message_get_socket (msg);

  if (sock != NULL)
    g_socket_shutdown (sock, TRUE, TRUE, NULL);
  return G_SOURCE_REMOVE;
}

/* Declares `declared` body bytes, sends `send` of them, and closes the
 * connection after ms milliseconds. */
static void
send_partial (SoupServerMessage *msg,
              const guint8      *data,
              gsize              send,
              goffset            declared,
              guint              ms)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  GSource *src;

  soup_message_headers_set_encoding (h, SOUP_ENCODING_CONTENT_LENGTH);
  soup_message_headers_set_content_length (h, declared);
  soup_message_body_append (soup_server_message_get_response_body (msg), SOUP_MEMORY_COPY,
                            data, send);
  src = g_timeout_source_new (ms);
  g_source_set_callback (src, close_connection, g_object_ref (msg), g_object_unref);
  g_source_attach (src, ruv_fake_hub.ctx);
  g_source_unref (src);
}

static void
cdn_handler (SoupServer        *server,
             SoupServerMessage *msg,
             const char        *path,
             GHashTable        *query,
             gpointer           user_data)
{
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  g_auto(GStrv) parts = g_strsplit (path, "/", 5);
  g_autofree char *id = NULL;
  g_autofree guint8 *copy = NULL;
  SoupRange *ranges = NULL;
  int n_ranges = 0;
  const guint8 *data;
  gsize size;
  goffset start = 0;
  RuvFakeFile *f;
  RuvFakeFault fault;

  g_mutex_lock (&ruv_fake_hub.lock);
  ruv_fake_hub.n_cdn++;
  if (soup_message_headers_get_one (req, "Authorization") != NULL)
    ruv_fake_hub.n_auth_on_cdn++;
  g_assert_nonnull (query);
  g_assert_cmpstr (g_hash_table_lookup (query, "Signature"), ==, "abc");
  fault = GPOINTER_TO_INT (g_queue_pop_head (&ruv_fake_hub.faults));
  if (g_strv_length (parts) != 5)
    {
      soup_server_message_set_status (msg, 404, NULL);
      goto out;
    }
  id = g_strdup_printf ("%s/%s", parts[2], parts[3]);
  f = find_file (ruv_fake_hub_find_repo (id), parts[4]);
  if (f == NULL)
    {
      soup_server_message_set_status (msg, 404, NULL);
      goto out;
    }
  data = g_bytes_get_data (f->data, &size);
  copy = g_memdup2 (data, size);
  data = copy;
  if (soup_message_headers_get_ranges (req, (goffset) size, &ranges, &n_ranges))
    {
      start = ranges[0].start;
      soup_message_headers_free_ranges (req, ranges);
    }
  g_array_append_val (ruv_fake_hub.range_starts, (gint64) { n_ranges > 0 ? start : -1 });
  g_assert_cmpstr (soup_message_headers_get_one (req, "Accept-Encoding"), ==, "identity");

  switch (fault)
    {
    case FAULT_429:
      soup_server_message_set_status (msg, 429, NULL);
      soup_message_headers_replace (resp, "Retry-After", "1");
      goto out;
    case FAULT_500:
      soup_server_message_set_status (msg, 500, NULL);
      goto out;
    case FAULT_403_EXPIRED:
      soup_server_message_set_status (msg, 403, NULL);
      soup_server_message_set_response (msg, "application/xml", SOUP_MEMORY_STATIC,
                                        "<Error><Code>AccessDenied</Code>"
                                        "<Message>Request has expired</Message></Error>", 77);
      goto out;
    case FAULT_416:
      if (n_ranges > 0)
        {
          soup_server_message_set_status (msg, 416, NULL);
          goto out;
        }
      break;
    case FAULT_CORRUPT:
      copy[size / 2] ^= 0x40;
      break;
    case FAULT_IGNORE_RANGE:
      start = 0;
      n_ranges = 0;
      break;
    case FAULT_NONE:
    case FAULT_DROP:
    case FAULT_HANG:
    case FAULT_SHORT_LENGTH:
    case FAULT_EXTRA_BYTES:
    default:
      break;
    }
  if (start > 0 && (gsize) start >= size)
    {
      soup_server_message_set_status (msg, 416, NULL);
      goto out;
    }
  if (n_ranges > 0)
    {
      soup_server_message_set_status (msg, 206, NULL);
      soup_message_headers_set_content_range (resp, start, (goffset) size - 1, (goffset) size);
    }
  else
    {
      start = 0;
      soup_server_message_set_status (msg, 200, NULL);
    }
  soup_message_headers_replace (resp, "Content-Type", "application/octet-stream");
  if (fault == FAULT_DROP || fault == FAULT_HANG)
    send_partial (msg, data + start, (size - (gsize) start) / 2, (goffset) (size - (gsize) start),
                  fault == FAULT_DROP ? 20 : HANG_MS);
  else if (fault == FAULT_SHORT_LENGTH)
    soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                      (const char *) data + start, size - (gsize) start - 100);
  else if (fault == FAULT_EXTRA_BYTES)
    {
      g_autofree guint8 *more = g_malloc0 (size + 100);

      memcpy (more, data, size);
      soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                        (const char *) more, size + 100);
    }
  else
    soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                      (const char *) data + start, size - (gsize) start);
out:
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static char *
listen_url (SoupServer *server)
{
  GSList *uris;
  char *url;

  g_assert_true (soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, NULL));
  uris = soup_server_get_uris (server);
  g_assert_nonnull (uris);
  url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  return url;
}

static gpointer
server_thread (gpointer data)
{
  (void) data;
  g_main_context_push_thread_default (ruv_fake_hub.ctx);
  ruv_fake_hub.hub = soup_server_new (NULL, NULL);
  ruv_fake_hub.cdn = soup_server_new (NULL, NULL);
  soup_server_add_handler (ruv_fake_hub.hub, NULL, hub_handler, NULL, NULL);
  soup_server_add_handler (ruv_fake_hub.cdn, "/cdn", cdn_handler, NULL, NULL);
  ruv_fake_hub.hub_url = listen_url (ruv_fake_hub.hub);
  ruv_fake_hub.cdn_url = listen_url (ruv_fake_hub.cdn);
  g_mutex_lock (&ruv_fake_hub.lock);
  ruv_fake_hub.ready = TRUE;
  g_cond_signal (&ruv_fake_hub.cond);
  g_mutex_unlock (&ruv_fake_hub.lock);
  g_main_loop_run (ruv_fake_hub.loop);
  g_clear_object (&ruv_fake_hub.hub);
  g_clear_object (&ruv_fake_hub.cdn);
  g_main_context_pop_thread_default (ruv_fake_hub.ctx);
  return NULL;
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

void
ruv_fake_hub_reset (void)
{
  g_mutex_lock (&ruv_fake_hub.lock);
  g_queue_clear (&ruv_fake_hub.faults);
  ruv_fake_hub.redirect_loop = FALSE;
  ruv_fake_hub.n_cdn = ruv_fake_hub.n_auth_on_cdn = ruv_fake_hub.n_auth_on_hub = 0;
  ruv_fake_hub.page_size = 0;
  ruv_fake_hub.page_offsite = ruv_fake_hub.page_loop = FALSE;
  ruv_fake_hub.n_api = ruv_fake_hub.api_429 = 0;
  ruv_fake_hub.api_retry_after = ruv_fake_hub.api_ratelimit = NULL;
  g_array_set_size (ruv_fake_hub.range_starts, 0);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

void
ruv_fake_hub_push_faults (RuvFakeFault first,
             ...)
{
  va_list ap;
  int f;

  g_mutex_lock (&ruv_fake_hub.lock);
  va_start (ap, first);
  for (f = first; f >= 0; f = va_arg (ap, int))
    g_queue_push_tail (&ruv_fake_hub.faults, GINT_TO_POINTER (f));
  va_end (ap);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
add_repos (void)
{
  g_autoptr(GBytes) model = ruv_fake_hub_make_gguf (40000, 6000);
  g_autoptr(GBytes) model8 = ruv_fake_hub_make_gguf (30000, 100);
  g_autoptr(GBytes) part1 = ruv_fake_hub_make_gguf (9000, 50);
  g_autoptr(GBytes) part2 = ruv_fake_hub_make_gguf (7000, 10);
  g_autoptr(GBytes) readme = g_bytes_new_static ("# readme\n", 9);
  g_autofree char *junk = g_strnfill (200000, 'z');
  g_autoptr(GBytes) fake_bytes = g_bytes_new (junk, 200000);
  RuvFakeRepo *r;

  ruv_fake_hub.repos = g_ptr_array_new_with_free_func ((GDestroyNotify) repo_free);
  r = repo_new ("test/model-GGUF");
  g_ptr_array_add (r->files, repo_file_new ("model-Q4_K_M.gguf", model, TRUE));
  g_ptr_array_add (r->files, repo_file_new ("model-Q8_0.gguf", model8, TRUE));
  g_ptr_array_add (r->files, repo_file_new ("README.md", readme, FALSE));
  g_ptr_array_add (ruv_fake_hub.repos, r);
  r = repo_new ("test/gated-GGUF");
  r->gated = TRUE;
  g_ptr_array_add (r->files, repo_file_new ("gated-Q4_K_M.gguf", model8, TRUE));
  g_ptr_array_add (ruv_fake_hub.repos, r);
  r = repo_new ("test/split-GGUF");
  g_ptr_array_add (r->files, repo_file_new ("split-Q8_0-00001-of-00002.gguf", part1, TRUE));
  g_ptr_array_add (r->files, repo_file_new ("split-Q8_0-00002-of-00002.gguf", part2, TRUE));
  g_ptr_array_add (ruv_fake_hub.repos, r);
  r = repo_new ("test/many-GGUF");
  r->page_size = 2;
  g_ptr_array_add (r->files, repo_file_new ("README.md", readme, FALSE));
  g_ptr_array_add (r->files, repo_file_new ("config.json", readme, FALSE));
  g_ptr_array_add (r->files, repo_file_new ("many-Q2_K.gguf", part2, TRUE));
  g_ptr_array_add (r->files, repo_file_new ("many-Q4_K_M.gguf", part1, TRUE));
  g_ptr_array_add (r->files, repo_file_new ("many-Q8_0.gguf", model8, TRUE));
  g_ptr_array_add (ruv_fake_hub.repos, r);
  r = repo_new ("test/fake-GGUF");
  g_ptr_array_add (r->files, repo_file_new ("fake-Q4_K_M.gguf", fake_bytes, TRUE));
  g_ptr_array_add (ruv_fake_hub.repos, r);
  r = repo_new ("test/nogguf");
  g_ptr_array_add (r->files, repo_file_new ("README.md", readme, FALSE));
  g_ptr_array_add (ruv_fake_hub.repos, r);
  r = repo_new ("test/evil");
  g_ptr_array_add (r->files, repo_file_new ("../../x", model8, TRUE));
  g_ptr_array_add (ruv_fake_hub.repos, r);
  r = repo_new ("test/badjson");
  r->raw_tree = "[{\"type\":\"file\",\"path\":";
  g_ptr_array_add (ruv_fake_hub.repos, r);
  r = repo_new ("test/notarray");
  r->raw_tree = "{\"error\":\"nope\"}";
  g_ptr_array_add (ruv_fake_hub.repos, r);
  r = repo_new ("test/absurd");
  r->raw_tree = "[{\"type\":\"file\",\"path\":\"a-Q4_K_M.gguf\",\"size\":135,\"lfs\":{\"oid\":"
                "\"0000000000000000000000000000000000000000000000000000000000000000\","
                "\"size\":1152921504606846976}}]";
  g_ptr_array_add (ruv_fake_hub.repos, r);
}

void
ruv_fake_hub_start (void)
{
  g_mutex_init (&ruv_fake_hub.lock);
  g_cond_init (&ruv_fake_hub.cond);
  g_queue_init (&ruv_fake_hub.faults);
  ruv_fake_hub.range_starts = g_array_new (FALSE, FALSE, sizeof (gint64));
  add_repos ();
  ruv_fake_hub.ctx = g_main_context_new ();
  ruv_fake_hub.loop = g_main_loop_new (ruv_fake_hub.ctx, FALSE);
  ruv_fake_hub.thread = g_thread_new ("fake-hub", server_thread, NULL);
  g_mutex_lock (&ruv_fake_hub.lock);
  while (!ruv_fake_hub.ready)
    g_cond_wait (&ruv_fake_hub.cond, &ruv_fake_hub.lock);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

void
ruv_fake_hub_stop (void)
{
  g_main_context_invoke (ruv_fake_hub.ctx, quit_loop, ruv_fake_hub.loop);
  g_thread_join (ruv_fake_hub.thread);
  g_main_loop_unref (ruv_fake_hub.loop);
  g_main_context_unref (ruv_fake_hub.ctx);
  g_ptr_array_unref (ruv_fake_hub.repos);
  g_array_unref (ruv_fake_hub.range_starts);
  g_queue_clear (&ruv_fake_hub.faults);
  g_free (ruv_fake_hub.hub_url);
  g_free (ruv_fake_hub.cdn_url);
  g_mutex_clear (&ruv_fake_hub.lock);
  g_cond_clear (&ruv_fake_hub.cond);
  memset (&ruv_fake_hub, 0, sizeof ruv_fake_hub);
}
