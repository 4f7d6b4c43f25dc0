/* test-download.c — the Hub client and the download manager against two real
 * SoupServers on 127.0.0.1: a fake Hub (API routes, /resolve with a 302) and
 * a fake CDN on another port (Range, faults), both on a server thread.
 * SPDX-License-Identifier: MIT
 *
 * The CDN records every Authorization header it sees; each test asserts it
 * saw none (the token must never leave the Hub's origin). Every fault ends in
 * a verified file or a RUV_ERROR with no file at the target. All waits are
 * bounded (WAIT_US), all retries counted (max-attempts).
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>

#include "ruv-download.h"
#include "ruv-error.h"
#include "ruv-gguf-writer.h"
#include "ruv-hub.h"
#include "ruv-catalog.h"
#include "ruv-ram-fit.h"
#include "ruv-registry.h"

#define WAIT_US (20 * G_USEC_PER_SEC)
#define TOKEN "hf_goodtoken"

typedef enum
{
  FAULT_NONE,
  FAULT_DROP,          /* half the body, then the connection closes */
  FAULT_HANG,          /* half the body, then nothing for HANG_MS, then close */
  FAULT_429,           /* 429 with Retry-After: 1 */
  FAULT_500,
  FAULT_CORRUPT,       /* one byte flipped */
  FAULT_IGNORE_RANGE,  /* 200 with the whole file to a Range request */
  FAULT_SHORT_LENGTH,  /* 200 whose Content-Length (and body) is 100 bytes short */
  FAULT_416,
  FAULT_EXTRA_BYTES,   /* 200 with 100 bytes more than the listing says */
} Fault;

#define HANG_MS 1500

typedef struct
{
  char   *path;
  GBytes *data;
  char   *sha256;     /* NULL: listed without LFS */
  guint64 listed_size;
} RepoFile;

typedef struct
{
  char      *id;
  GPtrArray *files;   /* RepoFile */
  gboolean   gated;
  const char *raw_tree;   /* served instead of a generated listing */
} Repo;

static struct
{
  GThread      *thread;
  GMainContext *ctx;
  GMainLoop    *loop;
  SoupServer   *hub;
  SoupServer   *cdn;
  char         *hub_url;
  char         *cdn_url;
  GMutex        lock;
  GCond         cond;
  gboolean      ready;

  /* guarded by lock */
  GPtrArray    *repos;
  GQueue        faults;       /* GINT_TO_POINTER (Fault), one per CDN request */
  gboolean      redirect_loop;
  guint         n_cdn;
  guint         n_auth_on_cdn;
  guint         n_auth_on_hub;
  GArray       *range_starts; /* gint64, -1 for no Range */
} srv;

/* ---- GGUF fixtures -------------------------------------------------------- */

static GBytes *
make_gguf (guint n_floats,
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

static char *
sha256_of (GBytes *b)
{
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, b);
}

static RepoFile *
repo_file_new (const char *path,
               GBytes     *data,
               gboolean    lfs)
{
  RepoFile *f = g_new0 (RepoFile, 1);

  f->path = g_strdup (path);
  f->data = g_bytes_ref (data);
  f->sha256 = lfs ? sha256_of (data) : NULL;
  f->listed_size = g_bytes_get_size (data);
  return f;
}

static void
repo_file_free (RepoFile *f)
{
  g_free (f->path);
  g_bytes_unref (f->data);
  g_free (f->sha256);
  g_free (f);
}

static Repo *
repo_new (const char *id)
{
  Repo *r = g_new0 (Repo, 1);

  r->id = g_strdup (id);
  r->files = g_ptr_array_new_with_free_func ((GDestroyNotify) repo_file_free);
  return r;
}

static void
repo_free (Repo *r)
{
  g_free (r->id);
  g_ptr_array_unref (r->files);
  g_free (r);
}

static Repo *
find_repo (const char *id)
{
  guint i;

  for (i = 0; i < srv.repos->len; i++)
    if (strcmp (((Repo *) srv.repos->pdata[i])->id, id) == 0)
      return srv.repos->pdata[i];
  return NULL;
}

static RepoFile *
find_file (Repo       *r,
           const char *path)
{
  guint i;

  for (i = 0; r != NULL && i < r->files->len; i++)
    if (strcmp (((RepoFile *) r->files->pdata[i])->path, path) == 0)
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
            Repo              *r)
{
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Authorization");

  if (!r->gated || g_strcmp0 (auth, "Bearer " TOKEN) == 0)
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

static void
hub_handler (SoupServer        *server,
             SoupServerMessage *msg,
             const char        *path,
             GHashTable        *query,
             gpointer           user_data)
{
  g_auto(GStrv) parts = g_strsplit (path, "/", -1);
  guint n = g_strv_length (parts);
  Repo *r;

  g_mutex_lock (&srv.lock);
  if (soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                    "Authorization") != NULL)
    srv.n_auth_on_hub++;

  if (strcmp (path, "/api/models") == 0)
    {
      g_assert_cmpstr (g_hash_table_lookup (query, "filter"), ==, "gguf");
      set_json (msg, "[{\"id\":\"test/model-GGUF\",\"downloads\":1200,\"likes\":3,"
                "\"pipeline_tag\":\"text-generation\",\"gated\":false},"
                "{\"id\":\"../../etc\",\"downloads\":5},"
                "{\"id\":\"test/gated-GGUF\",\"downloads\":7,\"gated\":\"manual\"},"
                "{\"nonsense\":true}, 42]");
    }
  else if (n == 7 && strcmp (parts[1], "api") == 0 && strcmp (parts[5], "tree") == 0)
    {
      g_autofree char *id = g_strdup_printf ("%s/%s", parts[3], parts[4]);

      r = find_repo (id);
      if (r == NULL)
        soup_server_message_set_status (msg, 401, NULL);
      else if (check_gate (msg, r))
        {
          GString *json = g_string_new ("[{\"type\":\"directory\",\"path\":\"sub\",\"oid\":\"x\"}");
          guint i;

          for (i = 0; r->raw_tree == NULL && i < r->files->len; i++)
            {
              RepoFile *f = r->files->pdata[i];

              g_string_append_printf (json, ",{\"type\":\"file\",\"path\":\"%s\",\"size\":%"
                                      G_GUINT64_FORMAT ",\"oid\":\"%040u\"", f->path,
                                      f->sha256 != NULL ? (guint64) 135 : f->listed_size, i);
              if (f->sha256 != NULL)
                g_string_append_printf (json, ",\"lfs\":{\"oid\":\"%s\",\"size\":%"
                                        G_GUINT64_FORMAT ",\"pointerSize\":135}", f->sha256,
                                        f->listed_size);
              g_string_append (json, "}");
            }
          g_string_append (json, "]");
          set_json (msg, r->raw_tree != NULL ? r->raw_tree : json->str);
          g_string_free (json, TRUE);
        }
    }
  else if (n >= 6 && strcmp (parts[3], "resolve") == 0)
    {
      g_autofree char *id = g_strdup_printf ("%s/%s", parts[1], parts[2]);
      g_autofree char *file = g_strjoinv ("/", parts + 5);

      r = find_repo (id);
      if (srv.redirect_loop)
        soup_server_message_set_redirect (msg, 302, path);
      else if (r == NULL || find_file (r, file) == NULL)
        soup_server_message_set_status (msg, 404, NULL);
      else if (check_gate (msg, r))
        {
          g_autofree char *to = g_strdup_printf ("%s/cdn/%s/%s?Expires=1&Signature=abc",
                                                 srv.cdn_url, id, file);

          soup_server_message_set_redirect (msg, 302, to);
        }
    }
  else
    soup_server_message_set_status (msg, 404, NULL);
  g_mutex_unlock (&srv.lock);
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
  g_source_attach (src, srv.ctx);
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
  RepoFile *f;
  Fault fault;

  g_mutex_lock (&srv.lock);
  srv.n_cdn++;
  if (soup_message_headers_get_one (req, "Authorization") != NULL)
    srv.n_auth_on_cdn++;
  g_assert_nonnull (query);
  g_assert_cmpstr (g_hash_table_lookup (query, "Signature"), ==, "abc");
  fault = GPOINTER_TO_INT (g_queue_pop_head (&srv.faults));
  if (g_strv_length (parts) != 5)
    {
      soup_server_message_set_status (msg, 404, NULL);
      goto out;
    }
  id = g_strdup_printf ("%s/%s", parts[2], parts[3]);
  f = find_file (find_repo (id), parts[4]);
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
  g_array_append_val (srv.range_starts, (gint64) { n_ranges > 0 ? start : -1 });
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
    soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY, (const char *) data + start,
                                      size - (gsize) start - 100);
  else if (fault == FAULT_EXTRA_BYTES)
    {
      g_autofree guint8 *more = g_malloc0 (size + 100);

      memcpy (more, data, size);
      soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY, (const char *) more,
                                        size + 100);
    }
  else
    soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY, (const char *) data + start,
                                      size - (gsize) start);
out:
  g_mutex_unlock (&srv.lock);
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
  g_main_context_push_thread_default (srv.ctx);
  srv.hub = soup_server_new (NULL, NULL);
  srv.cdn = soup_server_new (NULL, NULL);
  soup_server_add_handler (srv.hub, NULL, hub_handler, NULL, NULL);
  soup_server_add_handler (srv.cdn, "/cdn", cdn_handler, NULL, NULL);
  srv.hub_url = listen_url (srv.hub);
  srv.cdn_url = listen_url (srv.cdn);
  g_mutex_lock (&srv.lock);
  srv.ready = TRUE;
  g_cond_signal (&srv.cond);
  g_mutex_unlock (&srv.lock);
  g_main_loop_run (srv.loop);
  g_clear_object (&srv.hub);
  g_clear_object (&srv.cdn);
  g_main_context_pop_thread_default (srv.ctx);
  return NULL;
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

/* ---- per-test fixture ------------------------------------------------------ */

typedef struct
{
  char               *dir;      /* <tmp>/models */
  char               *tmp;
  RuvHub             *hub;
  RuvDownloadManager *manager;
  GBytes             *model;    /* the Q4_K_M file */
} Fixture;

static void
reset_server (void)
{
  g_mutex_lock (&srv.lock);
  g_queue_clear (&srv.faults);
  srv.redirect_loop = FALSE;
  srv.n_cdn = srv.n_auth_on_cdn = srv.n_auth_on_hub = 0;
  g_array_set_size (srv.range_starts, 0);
  g_mutex_unlock (&srv.lock);
}

static void
push_faults (Fault first,
             ...)
{
  va_list ap;
  int f;

  g_mutex_lock (&srv.lock);
  va_start (ap, first);
  for (f = first; f >= 0; f = va_arg (ap, int))
    g_queue_push_tail (&srv.faults, GINT_TO_POINTER (f));
  va_end (ap);
  g_mutex_unlock (&srv.lock);
}

static RuvDownloadManager *
new_manager (Fixture *fx)
{
  RuvDownloadManager *m = ruv_download_manager_new (fx->hub, fx->dir);

  g_object_set (m, "stall-timeout-ms", 300, "backoff-base-ms", 10, "backoff-max-ms", 40,
                "retry-after-max-ms", 100, "max-attempts", 4, NULL);
  return m;
}

static void
fixture_setup (Fixture       *fx,
               gconstpointer  data)
{
  (void) data;
  fx->tmp = g_dir_make_tmp ("ruv-download-XXXXXX", NULL);
  g_assert_nonnull (fx->tmp);
  fx->dir = g_build_filename (fx->tmp, "models", NULL);
  g_assert_cmpint (g_mkdir (fx->dir, 0755), ==, 0);
  fx->hub = ruv_hub_new (srv.hub_url, TOKEN);
  fx->manager = new_manager (fx);
  fx->model = g_bytes_ref (((RepoFile *) find_repo ("test/model-GGUF")->files->pdata[0])->data);
  reset_server ();
}

static void
rm_rf (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    {
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          rm_rf (child);
        }
      g_dir_close (dir);
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data)
{
  (void) data;
  /* The token never reached the CDN, whatever the test did. */
  g_mutex_lock (&srv.lock);
  g_assert_cmpuint (srv.n_auth_on_cdn, ==, 0);
  g_mutex_unlock (&srv.lock);
  g_clear_object (&fx->manager);
  g_clear_object (&fx->hub);
  g_bytes_unref (fx->model);
  rm_rf (fx->tmp);
  g_free (fx->tmp);
  g_free (fx->dir);
}

/* ---- async helpers ----------------------------------------------------------- */

static void
got_result (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GAsyncResult **out = user_data;

  (void) source;
  *out = g_object_ref (result);
}

static void
wait_for (GAsyncResult **result)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (*result == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
}

static GPtrArray *
list_files (Fixture    *fx,
            const char *repo,
            GError    **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  ruv_hub_list_files_async (fx->hub, repo, NULL, NULL, got_result, &res);
  wait_for (&res);
  return ruv_hub_list_files_finish (fx->hub, res, error);
}

static RuvHubFile *
listed (Fixture    *fx,
        const char *repo,
        const char *path)
{
  g_autoptr(GPtrArray) files = list_files (fx, repo, NULL);
  guint i;

  g_assert_nonnull (files);
  for (i = 0; i < files->len; i++)
    if (strcmp (((RuvHubFile *) files->pdata[i])->path, path) == 0)
      return ruv_hub_file_copy (files->pdata[i]);
  g_assert_not_reached ();
  return NULL;
}

static gboolean
wait_download (RuvDownload *d,
               GError     **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  ruv_download_wait_async (d, NULL, got_result, &res);
  wait_for (&res);
  return ruv_download_wait_finish (d, res, error);
}

static void
assert_file_is (const char *path,
                GBytes     *want)
{
  g_autofree char *data = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_assert_cmpmem (data, len, g_bytes_get_data (want, NULL), g_bytes_get_size (want));
}

static void
assert_absent (const char *path)
{
  g_autofree char *partial = g_strconcat (path, ".incomplete", NULL);

  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  (void) partial;
}

/* Downloads test/model-GGUF's Q4_K_M file with the queued faults; returns
 * the download. */
static RuvDownload *
download_model_file (Fixture *fx,
                     GError **error,
                     gboolean *ok)
{
  g_autoptr(RuvHubFile) f = listed (fx, "test/model-GGUF", "model-Q4_K_M.gguf");
  RuvDownload *d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, NULL, NULL);

  g_assert_nonnull (d);
  *ok = wait_download (d, error);
  return d;
}

static void
run_fault (Fixture *fx,
           gboolean expect_ok)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvDownload) d = NULL;
  gboolean ok;

  d = download_model_file (fx, &error, &ok);
  if (expect_ok)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_cmpint (ruv_download_get_state (d), ==, RUV_DOWNLOAD_STATE_DONE);
      assert_file_is (ruv_download_get_path (d), fx->model);
    }
  else
    {
      g_assert_false (ok);
      g_assert_nonnull (error);
      g_assert_true (error->domain == RUV_ERROR);
      g_test_message ("expected error: %s", error->message);
      g_assert_cmpint (ruv_download_get_state (d), ==, RUV_DOWNLOAD_STATE_FAILED);
      assert_absent (ruv_download_get_path (d));
    }
}

/* ---- tests ---------------------------------------------------------------- */

static void
test_check_path (void)
{
  const char *bad[] = { "", "/etc/passwd", "../../x", "a/../b", "a/./b", "a//b", "a/", "C:\\x",
                        "C:x", "\\\\host\\share\\x", "a\\b", "a\nb", "..", ".", NULL };
  g_autofree char *longc = g_strnfill (256, 'a');
  guint i;

  for (i = 0; bad[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (ruv_hub_check_path (bad[i], &error));
      g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
    }
  g_assert_false (ruv_hub_check_path (longc, NULL));
  g_assert_false (ruv_hub_check_path ("\xff\xfe.gguf", NULL));
  g_assert_true (ruv_hub_check_path ("model-Q4_K_M.gguf", NULL));
  g_assert_true (ruv_hub_check_path ("sub/dir/model..v2.gguf", NULL));
  g_assert_true (ruv_hub_check_repo_id ("Qwen/Qwen2.5-0.5B-Instruct-GGUF", NULL));
  g_assert_false (ruv_hub_check_repo_id ("Qwen", NULL));
  g_assert_false (ruv_hub_check_repo_id ("../x", NULL));
  g_assert_false (ruv_hub_check_repo_id ("a/b/c", NULL));
  g_assert_false (ruv_hub_check_repo_id ("a/..", NULL));
}

static RuvHubFile *
fake (const char *path)
{
  RuvHubFile *f = g_new0 (RuvHubFile, 1);

  f->path = g_strdup (path);
  f->size = 10;
  return f;
}

static void
test_pick_files (void)
{
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_hub_file_free);
  g_autoptr(GPtrArray) none = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_hub_file_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) p = NULL;

  g_ptr_array_add (files, fake ("README.md"));
  g_ptr_array_add (files, fake ("m-q4_k_s.gguf"));
  g_ptr_array_add (files, fake ("m-q4_k_m.gguf"));
  g_ptr_array_add (files, fake ("M-Q8_0.GGUF"));
  g_ptr_array_add (files, fake ("m-Q4_0.gguf"));
  g_ptr_array_add (files, fake ("big/m-F16-00002-of-00002.gguf"));
  g_ptr_array_add (files, fake ("big/m-F16-00001-of-00002.gguf"));
  g_ptr_array_add (files, fake ("m-BF16-00001-of-00003.gguf"));
  g_ptr_array_add (files, fake ("m-BF16-00003-of-00003.gguf"));

  p = ruv_hub_pick_files (files, RUV_PRECISION_Q4K, NULL);
  g_assert_cmpuint (p->len, ==, 1);
  g_assert_cmpstr (((RuvHubFile *) p->pdata[0])->path, ==, "m-q4_k_m.gguf");
  g_clear_pointer (&p, g_ptr_array_unref);
  p = ruv_hub_pick_files (files, RUV_PRECISION_Q8, NULL);
  g_assert_cmpstr (((RuvHubFile *) p->pdata[0])->path, ==, "M-Q8_0.GGUF");
  g_clear_pointer (&p, g_ptr_array_unref);
  p = ruv_hub_pick_files (files, RUV_PRECISION_Q4, NULL);
  g_assert_cmpstr (((RuvHubFile *) p->pdata[0])->path, ==, "m-Q4_0.gguf");
  g_clear_pointer (&p, g_ptr_array_unref);
  p = ruv_hub_pick_files (files, RUV_PRECISION_FP16, NULL);
  g_assert_cmpuint (p->len, ==, 2);
  g_assert_cmpstr (((RuvHubFile *) p->pdata[0])->path, ==, "big/m-F16-00001-of-00002.gguf");
  g_assert_cmpstr (((RuvHubFile *) p->pdata[1])->path, ==, "big/m-F16-00002-of-00002.gguf");
  g_clear_pointer (&p, g_ptr_array_unref);

  /* Part 2 of 3 is missing. */
  p = ruv_hub_pick_files (files, RUV_PRECISION_BF16, &error);
  g_assert_null (p);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "part 2 of 3"));
  g_clear_error (&error);

  p = ruv_hub_pick_files (files, RUV_PRECISION_FP32, &error);
  g_assert_null (p);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "Q4_K_M"));
  g_clear_error (&error);

  g_ptr_array_add (none, fake ("README.md"));
  p = ruv_hub_pick_files (none, RUV_PRECISION_Q4K, &error);
  g_assert_null (p);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no GGUF"));
}

static void
test_search (Fixture       *fx,
             gconstpointer  data)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GPtrArray) hits = NULL;
  g_autoptr(GError) error = NULL;
  RuvHubModel *m;

  (void) data;
  ruv_hub_search_async (fx->hub, "model & co", 10, NULL, got_result, &res);
  wait_for (&res);
  hits = ruv_hub_search_finish (fx->hub, res, &error);
  g_assert_no_error (error);
  /* The bad id and the junk entries are dropped. */
  g_assert_cmpuint (hits->len, ==, 2);
  m = hits->pdata[0];
  g_assert_cmpstr (m->id, ==, "test/model-GGUF");
  g_assert_cmpuint (m->downloads, ==, 1200);
  g_assert_false (m->gated);
  g_assert_true (((RuvHubModel *) hits->pdata[1])->gated);
}

static void
test_list_files (Fixture       *fx,
                 gconstpointer  data)
{
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *sha = sha256_of (fx->model);
  RuvHubFile *f;

  (void) data;
  files = list_files (fx, "test/model-GGUF", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (files->len, ==, 3);
  f = files->pdata[0];
  g_assert_cmpstr (f->path, ==, "model-Q4_K_M.gguf");
  /* The LFS size, not the pointer size. */
  g_assert_cmpuint (f->size, ==, g_bytes_get_size (fx->model));
  g_assert_cmpstr (f->sha256, ==, sha);
  g_assert_nonnull (f->git_oid);
  g_assert_null (((RuvHubFile *) files->pdata[2])->sha256);
}

static void
expect_list_error (Fixture    *fx,
                   const char *repo,
                   gint        code,
                   const char *needle)
{
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GError) error = NULL;

  files = list_files (fx, repo, &error);
  g_assert_null (files);
  g_assert_error (error, RUV_ERROR, code);
  g_test_message ("%s: %s", repo, error->message);
  if (strstr (error->message, needle) == NULL)
    g_error ("\"%s\" lacks \"%s\"", error->message, needle);
}

static void
test_bad_listings (Fixture       *fx,
                   gconstpointer  data)
{
  (void) data;
  expect_list_error (fx, "test/badjson", RUV_ERROR_IO, "malformed JSON");
  expect_list_error (fx, "test/notarray", RUV_ERROR_IO, "expected an array");
  expect_list_error (fx, "test/absurd", RUV_ERROR_IO, "absurd size");
  expect_list_error (fx, "test/evil", RUV_ERROR_CONFIG, "unsafe file name");
  expect_list_error (fx, "test/missing", RUV_ERROR_NOT_FOUND, "needs sign-in");
  expect_list_error (fx, "bad repo", RUV_ERROR_CONFIG, "repository id");
}

static void
test_gated (Fixture       *fx,
            gconstpointer  data)
{
  g_autoptr(RuvHub) anon = ruv_hub_new (srv.hub_url, NULL);
  g_autoptr(RuvHub) wrong = ruv_hub_new (srv.hub_url, "hf_wrong");
  g_autoptr(RuvDownloadManager) m2 = NULL;
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvHubFile) f = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GPtrArray) files = NULL;
  RuvHub *saved = fx->hub;

  (void) data;
  fx->hub = anon;
  expect_list_error (fx, "test/gated-GGUF", RUV_ERROR_NOT_FOUND, "needs sign-in");
  fx->hub = wrong;
  expect_list_error (fx, "test/gated-GGUF", RUV_ERROR_INVALID_OPERATION, "gated");
  fx->hub = saved;

  /* With the token: listed and downloaded; the Hub saw the token, the CDN not. */
  f = listed (fx, "test/gated-GGUF", "gated-Q4_K_M.gguf");
  d = ruv_download_manager_add (fx->manager, "test/gated-GGUF", NULL, f, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wait_download (d, &error));
  g_assert_no_error (error);
  g_mutex_lock (&srv.lock);
  g_assert_cmpuint (srv.n_auth_on_hub, >, 0);
  g_assert_cmpuint (srv.n_cdn, ==, 1);
  g_assert_cmpuint (srv.n_auth_on_cdn, ==, 0);
  g_mutex_unlock (&srv.lock);
  g_clear_object (&d);

  /* Without it, the download fails with the Hub's meaning. */
  m2 = ruv_download_manager_new (anon, fx->dir);
  d = ruv_download_manager_add (m2, "test/gated-GGUF", NULL, f, "other/gated.gguf", &error);
  g_assert_no_error (error);
  g_assert_false (wait_download (d, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  assert_absent (ruv_download_get_path (d));
  (void) res;
  (void) files;
}

static void
test_clean (Fixture       *fx,
            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(RuvDownload) again = NULL;
  g_autoptr(RuvHubFile) f = NULL;
  g_autofree char *want = NULL;
  guint64 total = 0;
  gboolean ok;

  (void) data;
  d = download_model_file (fx, &error, &ok);
  g_assert_no_error (error);
  g_assert_true (ok);
  want = g_build_filename (fx->dir, "test", "model-GGUF", "model-Q4_K_M.gguf", NULL);
  g_assert_cmpstr (ruv_download_get_path (d), ==, want);
  assert_file_is (want, fx->model);
  g_assert_cmpuint (ruv_download_get_bytes_done (d), ==, g_bytes_get_size (fx->model));
  g_assert_cmpuint (ruv_download_get_n_requests (d), ==, 1);
  g_object_get (fx->manager, "bytes-total", &total, NULL);
  g_assert_cmpuint (total, ==, g_bytes_get_size (fx->model));
  /* No leftovers beside the file. */
  {
    g_autofree char *partial = g_strconcat (want, ".incomplete", NULL);
    g_autofree char *side = g_strconcat (want, ".incomplete.json", NULL);

    g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (side, G_FILE_TEST_EXISTS));
  }
  /* The same target again in a new manager: already there, no request. */
  g_clear_object (&fx->manager);
  fx->manager = new_manager (fx);
  f = listed (fx, "test/model-GGUF", "model-Q4_K_M.gguf");
  again = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, NULL, &error);
  g_assert_cmpint (ruv_download_get_state (again), ==, RUV_DOWNLOAD_STATE_DONE);
  g_mutex_lock (&srv.lock);
  g_assert_cmpuint (srv.n_cdn, ==, 1);
  g_mutex_unlock (&srv.lock);
}

static void
test_drop (Fixture       *fx,
           gconstpointer  data)
{
  (void) data;
  push_faults (FAULT_DROP, FAULT_DROP, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&srv.lock);
  /* Each retry resumed where the last one stopped. */
  g_assert_cmpuint (srv.range_starts->len, ==, 3);
  g_assert_cmpint (g_array_index (srv.range_starts, gint64, 0), ==, -1);
  g_assert_cmpint (g_array_index (srv.range_starts, gint64, 1), >, 0);
  g_assert_cmpint (g_array_index (srv.range_starts, gint64, 2), >,
                   g_array_index (srv.range_starts, gint64, 1));
  g_mutex_unlock (&srv.lock);
}

static void
test_stall (Fixture       *fx,
            gconstpointer  data)
{
  (void) data;
  push_faults (FAULT_HANG, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&srv.lock);
  g_assert_cmpuint (srv.range_starts->len, ==, 2);
  g_assert_cmpint (g_array_index (srv.range_starts, gint64, 1), >, 0);
  g_mutex_unlock (&srv.lock);
}

static void
test_rate_limit_and_5xx (Fixture       *fx,
                         gconstpointer  data)
{
  (void) data;
  push_faults (FAULT_429, FAULT_500, FAULT_500, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&srv.lock);
  g_assert_cmpuint (srv.n_cdn, ==, 4);
  g_mutex_unlock (&srv.lock);
}

static void
test_always_500 (Fixture       *fx,
                 gconstpointer  data)
{
  (void) data;
  push_faults (FAULT_500, FAULT_500, FAULT_500, FAULT_500, FAULT_500, FAULT_500, -1);
  run_fault (fx, FALSE);
  g_mutex_lock (&srv.lock);
  g_assert_cmpuint (srv.n_cdn, ==, 4);   /* max-attempts */
  g_mutex_unlock (&srv.lock);
}

static void
test_corrupt (Fixture       *fx,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvDownload) d = NULL;
  g_autofree char *partial = NULL;
  gboolean ok;

  (void) data;
  push_faults (FAULT_CORRUPT, -1);
  d = download_model_file (fx, &error, &ok);
  g_assert_false (ok);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "sha256 mismatch"));
  g_assert_nonnull (strstr (error->message, "deleted"));
  assert_absent (ruv_download_get_path (d));
  partial = g_strconcat (ruv_download_get_path (d), ".incomplete", NULL);
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
}

static void
test_ignore_range (Fixture       *fx,
                   gconstpointer  data)
{
  (void) data;
  /* A partial from the drop, then a 200 to the Range request: restart at 0. */
  push_faults (FAULT_DROP, FAULT_IGNORE_RANGE, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&srv.lock);
  g_assert_cmpint (g_array_index (srv.range_starts, gint64, 1), >, 0);
  g_mutex_unlock (&srv.lock);
}

static void
test_short_length (Fixture       *fx,
                   gconstpointer  data)
{
  (void) data;
  /* Content-Length disagrees with the listing: start over once. */
  push_faults (FAULT_SHORT_LENGTH, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&srv.lock);
  /* and twice is an error */
  g_mutex_unlock (&srv.lock);
}

static void
test_short_length_twice (Fixture       *fx,
                         gconstpointer  data)
{
  (void) data;
  push_faults (FAULT_SHORT_LENGTH, FAULT_SHORT_LENGTH, -1);
  run_fault (fx, FALSE);
}

static void
test_extra_bytes (Fixture       *fx,
                  gconstpointer  data)
{
  (void) data;
  push_faults (FAULT_EXTRA_BYTES, FAULT_EXTRA_BYTES, -1);
  run_fault (fx, FALSE);
}

static void
test_416 (Fixture       *fx,
          gconstpointer  data)
{
  (void) data;
  /* A partial, then 416 to its Range: discard and restart from 0 once. */
  push_faults (FAULT_DROP, FAULT_416, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&srv.lock);
  g_assert_cmpuint (srv.range_starts->len, ==, 3);
  g_assert_cmpint (g_array_index (srv.range_starts, gint64, 2), ==, -1);
  g_mutex_unlock (&srv.lock);
}

static void
test_redirect_loop (Fixture       *fx,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvDownload) d = NULL;
  gboolean ok;

  (void) data;
  g_mutex_lock (&srv.lock);
  srv.redirect_loop = TRUE;
  g_mutex_unlock (&srv.lock);
  d = download_model_file (fx, &error, &ok);
  g_assert_false (ok);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "redirect loop"));
  assert_absent (ruv_download_get_path (d));
}

/* Download half, destroy the manager, resume with a new one. */
static void
test_restart (Fixture       *fx,
              gconstpointer  data)
{
  g_autoptr(RuvHubFile) f = listed (fx, "test/model-GGUF", "model-Q4_K_M.gguf");
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *partial = NULL;
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  guint64 half = g_bytes_get_size (fx->model) / 2;
  GStatBuf st;

  (void) data;
  push_faults (FAULT_HANG, -1);
  g_object_set (fx->manager, "stall-timeout-ms", 60000, NULL);
  d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, NULL, &error);
  g_assert_no_error (error);
  while (ruv_download_get_bytes_done (d) < half)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_cmpint (ruv_download_get_state (d), ==, RUV_DOWNLOAD_STATE_RUNNING);
  g_assert_finalize_object (g_steal_pointer (&fx->manager));
  g_assert_cmpint (ruv_download_get_state (d), ==, RUV_DOWNLOAD_STATE_PAUSED);
  partial = g_strconcat (ruv_download_get_path (d), ".incomplete", NULL);
  g_assert_cmpint (g_stat (partial, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, (goffset) half);
  assert_absent (ruv_download_get_path (d));
  g_clear_object (&d);

  fx->manager = new_manager (fx);
  d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ruv_download_get_bytes_done (d), ==, half);
  g_assert_true (wait_download (d, &error));
  g_assert_no_error (error);
  assert_file_is (ruv_download_get_path (d), fx->model);
  g_mutex_lock (&srv.lock);
  g_assert_cmpuint (srv.range_starts->len, ==, 2);
  g_assert_cmpint (g_array_index (srv.range_starts, gint64, 1), ==, (gint64) half);
  g_mutex_unlock (&srv.lock);
}

static void
test_pause_cancel (Fixture       *fx,
                   gconstpointer  data)
{
  g_autoptr(RuvHubFile) f = listed (fx, "test/model-GGUF", "model-Q4_K_M.gguf");
  g_autoptr(RuvHubFile) f8 = listed (fx, "test/model-GGUF", "model-Q8_0.gguf");
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(RuvDownload) d8 = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *partial = NULL;
  g_autofree char *partial8 = NULL;
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  (void) data;
  g_object_set (fx->manager, "stall-timeout-ms", 60000, NULL);
  push_faults (FAULT_HANG, FAULT_HANG, -1);
  d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, NULL, &error);
  d8 = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f8, NULL, &error);
  g_assert_no_error (error);
  while (ruv_download_get_bytes_done (d) == 0 || ruv_download_get_bytes_done (d8) == 0)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  partial = g_strconcat (ruv_download_get_path (d), ".incomplete", NULL);
  partial8 = g_strconcat (ruv_download_get_path (d8), ".incomplete", NULL);

  /* Pause and resume d: it finishes from where it stopped. */
  ruv_download_pause (d);
  g_assert_cmpint (ruv_download_get_state (d), ==, RUV_DOWNLOAD_STATE_PAUSED);
  g_assert_true (g_file_test (partial, G_FILE_TEST_EXISTS));
  ruv_download_resume (d);
  g_assert_true (wait_download (d, &error));
  g_assert_no_error (error);
  assert_file_is (ruv_download_get_path (d), fx->model);

  /* Cancel d8 deleting the partial. */
  ruv_download_cancel (d8, TRUE);
  g_assert_false (wait_download (d8, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (g_file_test (partial8, G_FILE_TEST_EXISTS));
  assert_absent (ruv_download_get_path (d8));
}

static void
test_cancel_keep (Fixture       *fx,
                  gconstpointer  data)
{
  g_autoptr(RuvHubFile) f = listed (fx, "test/model-GGUF", "model-Q4_K_M.gguf");
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *partial = NULL;
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  (void) data;
  g_object_set (fx->manager, "stall-timeout-ms", 60000, NULL);
  push_faults (FAULT_HANG, -1);
  d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, NULL, &error);
  while (ruv_download_get_bytes_done (d) == 0)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  ruv_download_cancel (d, FALSE);
  g_assert_cmpint (ruv_download_get_state (d), ==, RUV_DOWNLOAD_STATE_CANCELLED);
  partial = g_strconcat (ruv_download_get_path (d), ".incomplete", NULL);
  g_assert_true (g_file_test (partial, G_FILE_TEST_EXISTS));
  assert_absent (ruv_download_get_path (d));
}

static void
test_disk_full (Fixture       *fx,
                gconstpointer  data)
{
  g_autoptr(RuvHubFile) f = listed (fx, "test/model-GGUF", "model-Q4_K_M.gguf");
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(GError) error = NULL;

  (void) data;
  /* A listing that claims 2 TiB: refused before a byte is requested. */
  f->size = G_GUINT64_CONSTANT (1) << 41;
  d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (wait_download (d, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "not enough disk space"));
  g_mutex_lock (&srv.lock);
  g_assert_cmpuint (srv.n_cdn, ==, 0);
  g_mutex_unlock (&srv.lock);
}

static void
test_not_gguf (Fixture       *fx,
               gconstpointer  data)
{
  g_autoptr(RuvHubFile) f = listed (fx, "test/fake-GGUF", "fake-Q4_K_M.gguf");
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(GError) error = NULL;

  (void) data;
  d = ruv_download_manager_add (fx->manager, "test/fake-GGUF", NULL, f, NULL, &error);
  g_assert_false (wait_download (d, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  g_assert_nonnull (strstr (error->message, "not a usable GGUF"));
  assert_absent (ruv_download_get_path (d));
}

static void
test_unsafe_dest (Fixture       *fx,
                  gconstpointer  data)
{
  g_autoptr(RuvHubFile) f = listed (fx, "test/model-GGUF", "model-Q4_K_M.gguf");
  g_autoptr(GError) error = NULL;
  g_autofree char *link = g_build_filename (fx->dir, "escape", NULL);
  RuvDownload *d;

  (void) data;
  d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, "../../x", &error);
  g_assert_null (d);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  /* A symlink inside the models folder that points outside it. */
  g_assert_cmpint (symlink (fx->tmp, link), ==, 0);
  d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, "escape/y.gguf", &error);
  g_assert_null (d);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "outside"));
}

static void
model_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  got_result (source, result, user_data);
}

static char *
download_model (Fixture     *fx,
                const char  *repo,
                RuvPrecision p,
                GError     **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  ruv_hub_download_model_async (fx->hub, repo, p, fx->dir, NULL, NULL, model_done, &res);
  wait_for (&res);
  return ruv_hub_download_model_finish (fx->hub, res, error);
}

static void
test_download_model (Fixture       *fx,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *part2 = NULL;
  g_autofree char *outside = g_build_filename (fx->tmp, "x", NULL);
  Repo *split;

  (void) data;
  path = download_model (fx, "test/model-GGUF", RUV_PRECISION_Q4K, &error);
  g_assert_no_error (error);
  assert_file_is (path, fx->model);
  g_clear_pointer (&path, g_free);

  /* Split model: every part. */
  path = download_model (fx, "test/split-GGUF", RUV_PRECISION_Q8, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (path, "split-Q8_0-00001-of-00002.gguf"));
  split = find_repo ("test/split-GGUF");
  assert_file_is (path, ((RepoFile *) split->files->pdata[0])->data);
  part2 = g_build_filename (fx->dir, "test", "split-GGUF", "split-Q8_0-00002-of-00002.gguf",
                            NULL);
  assert_file_is (part2, ((RepoFile *) split->files->pdata[1])->data);
  g_clear_pointer (&path, g_free);

  path = download_model (fx, "test/model-GGUF", RUV_PRECISION_BF16, &error);
  g_assert_null (path);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_clear_error (&error);

  path = download_model (fx, "test/nogguf", RUV_PRECISION_Q4K, &error);
  g_assert_null (path);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no GGUF"));
  g_clear_error (&error);

  path = download_model (fx, "test/evil", RUV_PRECISION_Q4K, &error);
  g_assert_null (path);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_assert_false (g_file_test (outside, G_FILE_TEST_EXISTS));
}

static void
test_read_header (Fixture       *fx,
                  gconstpointer  data)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(RuvGgufHeader) header = NULL;
  g_autoptr(GError) error = NULL;
  const char *arch = NULL;
  guint64 ctx = 0;

  (void) data;
  /* 64 bytes first: the vocabulary needs the prefix to grow several times. */
  ruv_hub_read_header_async (fx->hub, "test/model-GGUF", NULL, "model-Q4_K_M.gguf", 64, 0,
                             NULL, got_result, &res);
  wait_for (&res);
  header = ruv_hub_read_header_finish (fx->hub, res, &error);
  g_assert_no_error (error);
  g_assert_true (ruv_gguf_get_string (ruv_gguf_header_get_gguf (header), "general.architecture",
                                      &arch, NULL));
  g_assert_cmpstr (arch, ==, "llama");
  g_assert_true (ruv_gguf_get_uint (ruv_gguf_header_get_gguf (header), "llama.context_length",
                                    &ctx, NULL));
  g_assert_cmpuint (ctx, ==, 2048);
  g_assert_cmpuint (ruv_gguf_header_get_n_tensors (header), ==, 1);
  g_mutex_lock (&srv.lock);
  g_assert_cmpuint (srv.n_cdn, >, 1);
  g_mutex_unlock (&srv.lock);
  g_clear_object (&res);
  g_clear_pointer (&header, ruv_gguf_header_free);

  /* Not a GGUF: a clear error, not a loop. */
  ruv_hub_read_header_async (fx->hub, "test/fake-GGUF", NULL, "fake-Q4_K_M.gguf", 64, 0,
                             NULL, got_result, &res);
  wait_for (&res);
  header = ruv_hub_read_header_finish (fx->hub, res, &error);
  g_assert_null (header);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
}

static void
test_ram_fit (void)
{
  g_autoptr(GBytes) b = make_gguf (1000, 100);
  g_autoptr(RuvGgufHeader) h = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  RuvRamFit fit;
  gsize len;
  const guint8 *data = g_bytes_get_data (b, &len);
  guint64 kv;

  h = ruv_gguf_header_parse (data, len, len, "t.gguf", NULL, &error);
  g_assert_no_error (error);
  /* 2 bytes · 2 layers · 1024 ctx · 2 kv heads · (16 + 16) */
  kv = G_GUINT64_CONSTANT (2) * 2 * 1024 * 2 * 32;
  g_assert_true (ruv_ram_fit_estimate (ruv_gguf_header_get_gguf (h), 1000000, 1024,
                                       G_GUINT64_CONSTANT (8) << 30, &fit, &error));
  g_assert_cmpuint (fit.kv_bytes, ==, kv);
  g_assert_cmpuint (fit.total_bytes, ==, 1000000 + kv + fit.scratch_bytes);
  g_assert_cmpint (fit.verdict, ==, RUV_RAM_FIT_FITS);
  g_assert_true (ruv_ram_fit_estimate (ruv_gguf_header_get_gguf (h), 1000000, 0,
                                       fit.total_bytes + 1000, &fit, &error));
  g_assert_cmpuint (fit.n_ctx, ==, 2048);
  g_assert_cmpint (fit.verdict, ==, RUV_RAM_FIT_WONT_FIT);
  g_assert_true (ruv_ram_fit_estimate (ruv_gguf_header_get_gguf (h), 1000000, 0,
                                       fit.total_bytes + 1, &fit, &error));
  g_assert_cmpint (fit.verdict, ==, RUV_RAM_FIT_TIGHT);
  text = ruv_ram_fit_describe (&fit);
  g_assert_nonnull (strstr (text, "tight"));
  g_assert_cmpuint (ruv_ram_fit_parse_meminfo ("MemTotal:  100 kB\nMemAvailable:   2048 kB\n"),
                    ==, 2048 * 1024);
  g_assert_cmpuint (ruv_ram_fit_parse_meminfo ("MemTotal: 5 kB\n"), ==, 0);
  g_assert_cmpuint (ruv_ram_fit_available (), >, 0);
}

static void
test_header_prefix (void)
{
  g_autoptr(GBytes) b = make_gguf (1000, 3000);
  gsize len;
  const guint8 *data = g_bytes_get_data (b, &len);
  g_autoptr(GError) error = NULL;
  gboolean more = FALSE;
  RuvGgufHeader *h;
  gsize cut;

  /* Every short prefix asks for more; no read past the prefix (ASan). */
  for (cut = 0; cut < 40000; cut += 997)
    {
      g_autofree guint8 *copy = g_memdup2 (data, MAX (cut, 1));

      h = ruv_gguf_header_parse (copy, cut, len, "t.gguf", &more, &error);
      if (h != NULL)
        {
          ruv_gguf_header_free (h);
          continue;
        }
      g_assert_true (more);
      g_clear_error (&error);
    }
  h = ruv_gguf_header_parse ((const guint8 *) "NOTAGGUFxxxxxxxxxxxxxxxxxxxxxxxxx", 32, 0,
                             "t.gguf", &more, &error);
  g_assert_null (h);
  g_assert_false (more);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
}

static void
test_catalog (void)
{
  g_autofree char *path = g_build_filename (TEST_DATA_DIR, "..", "..", "data", "catalog.json",
                                            NULL);
  g_autoptr(GPtrArray) cat = NULL;
  g_autoptr(GError) error = NULL;
  const RuvCatalogEntry *e;

  cat = ruv_catalog_load_file (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cat->len, >=, 12);
  e = ruv_catalog_find (cat, "qwen2.5-0.5b-instruct");
  g_assert_nonnull (e);
  g_assert_cmpstr (e->repository, ==, "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
  g_assert_null (ruv_catalog_find (cat, "nope"));
  g_clear_pointer (&cat, g_ptr_array_unref);

  cat = ruv_catalog_load_from_data ("{\"version\":1,\"models\":[{\"id\":\"x\",\"name\":\"n\","
                                    "\"repository\":\"a/b\",\"file\":\"../../x.gguf\","
                                    "\"quantization\":\"Q4_K_M\",\"size_bytes\":5,"
                                    "\"parameters\":\"1B\",\"license\":\"mit\","
                                    "\"description\":\"d\"}]}", -1, &error);
  g_assert_null (cat);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  cat = ruv_catalog_load_from_data ("{\"version\":1,\"models\":[{\"id\":\"x\"}]}", -1, &error);
  g_assert_null (cat);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  cat = ruv_catalog_load_from_data ("{\"version\":1,\"mod", -1, &error);
  g_assert_null (cat);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
}

static void
test_registry (Fixture       *fx,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(RuvRegistry) reg = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autofree char *outside = g_build_filename (fx->tmp, "own.gguf", NULL);
  g_autofree char *junk = g_build_filename (fx->tmp, "junk.gguf", NULL);
  g_autofree char *sha = sha256_of (fx->model);
  const RuvRegistryModel *m;
  gboolean ok;

  (void) data;
  d = download_model_file (fx, &error, &ok);
  g_assert_true (ok);
  reg = ruv_registry_open (fx->dir, &error);
  g_assert_no_error (error);
  m = ruv_registry_add_download (reg, ruv_download_get_path (d), "test/model-GGUF", sha, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (m->id, ==, "test/model-GGUF/model-Q4_K_M.gguf");
  g_assert_cmpstr (m->architecture, ==, "llama");
  g_assert_cmpstr (m->name, ==, "download-test");

  g_assert_true (g_file_set_contents (outside, g_bytes_get_data (fx->model, NULL),
                                      (gssize) g_bytes_get_size (fx->model), NULL));
  m = ruv_registry_import (reg, outside, &error);
  g_assert_no_error (error);
  g_assert_true (m->imported);
  g_assert_cmpstr (m->sha256, ==, sha);
  g_assert_true (g_file_set_contents (junk, "GGUFjunk", -1, NULL));
  g_assert_null (ruv_registry_import (reg, junk, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_MODEL);
  g_clear_error (&error);
  g_assert_true (ruv_registry_touch (reg, "test/model-GGUF/model-Q4_K_M.gguf", &error));
  g_clear_pointer (&reg, ruv_registry_free);

  /* Reopened from the index. */
  reg = ruv_registry_open (fx->dir, &error);
  list = ruv_registry_list (reg);
  g_assert_cmpuint (list->len, ==, 2);
  m = ruv_registry_find (reg, "test/model-GGUF/model-Q4_K_M.gguf");
  g_assert_nonnull (m);
  g_assert_cmpint (m->last_used, >, 0);
  /* rm deletes a downloaded file, and only forgets an imported one. */
  g_assert_true (ruv_registry_remove (reg, "test/model-GGUF/model-Q4_K_M.gguf", &error));
  g_assert_false (g_file_test (ruv_download_get_path (d), G_FILE_TEST_EXISTS));
  /* list is sorted by id: "local/..." (the import) comes first. */
  g_assert_true (((RuvRegistryModel *) list->pdata[0])->imported);
  g_assert_true (ruv_registry_remove (reg, ((RuvRegistryModel *) list->pdata[0])->id, &error));
  g_assert_true (g_file_test (outside, G_FILE_TEST_EXISTS));
  g_assert_false (ruv_registry_remove (reg, "nope", &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
}

static void
add_repos (void)
{
  g_autoptr(GBytes) model = make_gguf (40000, 6000);
  g_autoptr(GBytes) model8 = make_gguf (30000, 100);
  g_autoptr(GBytes) part1 = make_gguf (9000, 50);
  g_autoptr(GBytes) part2 = make_gguf (7000, 10);
  g_autoptr(GBytes) readme = g_bytes_new_static ("# readme\n", 9);
  g_autofree char *junk = g_strnfill (200000, 'z');
  g_autoptr(GBytes) fake_bytes = g_bytes_new (junk, 200000);
  Repo *r;

  srv.repos = g_ptr_array_new_with_free_func ((GDestroyNotify) repo_free);
  r = repo_new ("test/model-GGUF");
  g_ptr_array_add (r->files, repo_file_new ("model-Q4_K_M.gguf", model, TRUE));
  g_ptr_array_add (r->files, repo_file_new ("model-Q8_0.gguf", model8, TRUE));
  g_ptr_array_add (r->files, repo_file_new ("README.md", readme, FALSE));
  g_ptr_array_add (srv.repos, r);
  r = repo_new ("test/gated-GGUF");
  r->gated = TRUE;
  g_ptr_array_add (r->files, repo_file_new ("gated-Q4_K_M.gguf", model8, TRUE));
  g_ptr_array_add (srv.repos, r);
  r = repo_new ("test/split-GGUF");
  g_ptr_array_add (r->files, repo_file_new ("split-Q8_0-00001-of-00002.gguf", part1, TRUE));
  g_ptr_array_add (r->files, repo_file_new ("split-Q8_0-00002-of-00002.gguf", part2, TRUE));
  g_ptr_array_add (srv.repos, r);
  r = repo_new ("test/fake-GGUF");
  g_ptr_array_add (r->files, repo_file_new ("fake-Q4_K_M.gguf", fake_bytes, TRUE));
  g_ptr_array_add (srv.repos, r);
  r = repo_new ("test/nogguf");
  g_ptr_array_add (r->files, repo_file_new ("README.md", readme, FALSE));
  g_ptr_array_add (srv.repos, r);
  r = repo_new ("test/evil");
  g_ptr_array_add (r->files, repo_file_new ("../../x", model8, TRUE));
  g_ptr_array_add (srv.repos, r);
  r = repo_new ("test/badjson");
  r->raw_tree = "[{\"type\":\"file\",\"path\":";
  g_ptr_array_add (srv.repos, r);
  r = repo_new ("test/notarray");
  r->raw_tree = "{\"error\":\"nope\"}";
  g_ptr_array_add (srv.repos, r);
  r = repo_new ("test/absurd");
  r->raw_tree = "[{\"type\":\"file\",\"path\":\"a-Q4_K_M.gguf\",\"size\":135,\"lfs\":{\"oid\":"
                "\"0000000000000000000000000000000000000000000000000000000000000000\","
                "\"size\":1152921504606846976}}]";
  g_ptr_array_add (srv.repos, r);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  /* Never a proxy, even if the environment has one. */
  g_setenv ("no_proxy", "*", TRUE);
  g_unsetenv ("http_proxy");
  g_unsetenv ("HTTP_PROXY");

  g_mutex_init (&srv.lock);
  g_cond_init (&srv.cond);
  g_queue_init (&srv.faults);
  srv.range_starts = g_array_new (FALSE, FALSE, sizeof (gint64));
  add_repos ();
  srv.ctx = g_main_context_new ();
  srv.loop = g_main_loop_new (srv.ctx, FALSE);
  srv.thread = g_thread_new ("test-servers", server_thread, NULL);
  g_mutex_lock (&srv.lock);
  while (!srv.ready)
    g_cond_wait (&srv.cond, &srv.lock);
  g_mutex_unlock (&srv.lock);

  g_test_add_func ("/engine/download/check-path", test_check_path);
  g_test_add_func ("/engine/download/pick-files", test_pick_files);
  g_test_add_func ("/engine/download/ram-fit", test_ram_fit);
  g_test_add_func ("/engine/download/header-prefix", test_header_prefix);
  g_test_add_func ("/engine/download/catalog", test_catalog);
#define ADD(path, fn) g_test_add ("/engine/download/" path, Fixture, NULL, fixture_setup, fn, \
                                  fixture_teardown)
  ADD ("hub/search", test_search);
  ADD ("hub/list-files", test_list_files);
  ADD ("hub/bad-listings", test_bad_listings);
  ADD ("hub/gated-token", test_gated);
  ADD ("hub/read-header", test_read_header);
  ADD ("clean", test_clean);
  ADD ("fault/drop", test_drop);
  ADD ("fault/stall", test_stall);
  ADD ("fault/429-and-5xx", test_rate_limit_and_5xx);
  ADD ("fault/always-500", test_always_500);
  ADD ("fault/corrupt-byte", test_corrupt);
  ADD ("fault/ignore-range", test_ignore_range);
  ADD ("fault/short-length", test_short_length);
  ADD ("fault/short-length-twice", test_short_length_twice);
  ADD ("fault/extra-bytes", test_extra_bytes);
  ADD ("fault/416", test_416);
  ADD ("fault/redirect-loop", test_redirect_loop);
  ADD ("fault/disk-full", test_disk_full);
  ADD ("fault/not-gguf", test_not_gguf);
  ADD ("unsafe-destination", test_unsafe_dest);
  ADD ("restart", test_restart);
  ADD ("pause-resume-cancel", test_pause_cancel);
  ADD ("cancel-keep", test_cancel_keep);
  ADD ("download-model", test_download_model);
  ADD ("registry", test_registry);
#undef ADD
  ret = g_test_run ();

  g_main_context_invoke (srv.ctx, quit_loop, srv.loop);
  g_thread_join (srv.thread);
  g_main_loop_unref (srv.loop);
  g_main_context_unref (srv.ctx);
  g_ptr_array_unref (srv.repos);
  g_array_unref (srv.range_starts);
  g_queue_clear (&srv.faults);
  g_free (srv.hub_url);
  g_free (srv.cdn_url);
  return ret;
}
