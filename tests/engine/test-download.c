/* test-download.c — the Hub client and the download manager against two real
 * SoupServers on 127.0.0.1: a fake Hub (API routes, /resolve with a 302) and
 * a fake CDN on another port (Range, faults), both on a server thread
 * (ruv-fake-hub.c). The store (registry, download state) lives in a temporary
 * XDG_DATA_HOME made in main ().
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
#include "ruv-test-util.h"
#include "ruv-gguf-writer.h"
#include "ruv-hub.h"
#include "ruv-hub-private.h"
#include "ruv-catalog.h"
#include "ruv-fake-hub.h"
#include "ruv-ram-fit.h"
#include "ruv-registry.h"
#include "ruv-store.h"

#define WAIT_US (20 * G_USEC_PER_SEC)

/* ---- per-test fixture ------------------------------------------------------ */

typedef struct
{
  char               *dir;      /* <tmp>/models */
  char               *tmp;
  RuvHub             *hub;
  RuvDownloadManager *manager;
  GBytes             *model;    /* the Q4_K_M file */
} Fixture;


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
  fx->hub = ruv_hub_new (ruv_fake_hub.hub_url, RUV_FAKE_HUB_TOKEN);
  fx->manager = new_manager (fx);
  fx->model = g_bytes_ref (((RuvFakeFile *) ruv_fake_hub_find_repo ("test/model-GGUF")
                            ->files->pdata[0])->data);
  ruv_fake_hub_reset ();
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data)
{
  (void) data;
  /* The token never reached the CDN, whatever the test did. */
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_auth_on_cdn, ==, 0);
  g_mutex_unlock (&ruv_fake_hub.lock);
  g_clear_object (&fx->manager);
  g_clear_object (&fx->hub);
  g_bytes_unref (fx->model);
  ruv_test_rm_rf (fx->tmp);
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

/* Runs the main loop until d has at least `bytes` bytes; fails the test
 * after WAIT_US. */
static void
wait_bytes (RuvDownload *d,
            guint64      bytes)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (ruv_download_get_bytes_done (d) < bytes)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
}

/* Starts downloading f with the CDN hanging after a part of it (and a stall
 * timeout of a minute), and waits until `bytes` of it have arrived. */
static RuvDownload *
add_hung (Fixture    *fx,
          RuvHubFile *f,
          guint64     bytes)
{
  g_autoptr(GError) error = NULL;
  RuvDownload *d;

  g_object_set (fx->manager, "stall-timeout-ms", 60000, NULL);
  ruv_fake_hub_push_faults (FAULT_HANG, -1);
  d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, NULL, &error);
  g_assert_no_error (error);
  wait_bytes (d, bytes);
  return d;
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

/* A download that failed with domain/code, an error message that holds
 * needle (unless NULL), and no file left at its destination. */
static void
assert_failed (RuvDownload  *d,
               gboolean      ok,
               const GError *error,
               GQuark        domain,
               gint          code,
               const char   *needle)
{
  g_assert_false (ok);
  g_assert_error (error, domain, code);
  if (needle != NULL)
    g_assert_nonnull (strstr (error->message, needle));
  assert_absent (ruv_download_get_path (d));
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
  g_autofree char *sha = ruv_fake_hub_sha256 (fx->model);
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

static guint
n_api (void)
{
  guint n;

  g_mutex_lock (&ruv_fake_hub.lock);
  n = ruv_fake_hub.n_api;
  g_mutex_unlock (&ruv_fake_hub.lock);
  return n;
}

static void
set_paging (guint    page_size,
            gboolean offsite,
            gboolean loop)
{
  g_mutex_lock (&ruv_fake_hub.lock);
  ruv_fake_hub.page_size = page_size;
  ruv_fake_hub.page_offsite = offsite;
  ruv_fake_hub.page_loop = loop;
  ruv_fake_hub.n_api = 0;
  g_mutex_unlock (&ruv_fake_hub.lock);
}

/* A listing in pages (Link: rel="next") is gathered whole, in order. */
static void
test_list_pages (Fixture       *fx,
                 gconstpointer  data)
{
  const char *want[] = { "README.md", "config.json", "many-Q2_K.gguf", "many-Q4_K_M.gguf",
                         "many-Q8_0.gguf" };
  RuvFakeRepo *repo = ruv_fake_hub_find_repo ("test/many-GGUF");
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GPtrArray) unpaged = NULL;
  g_autoptr(GPtrArray) picked = NULL;
  g_autoptr(GError) error = NULL;
  guint i;

  (void) data;
  /* Six entries (a directory, five files) two a page: three requests. */
  files = list_files (fx, "test/many-GGUF", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n_api (), ==, 3);
  g_assert_cmpuint (files->len, ==, G_N_ELEMENTS (want));
  for (i = 0; i < files->len; i++)
    {
      RuvHubFile *f = files->pdata[i];
      RuvFakeFile *ff = repo->files->pdata[i];

      g_assert_cmpstr (f->path, ==, want[i]);
      g_assert_cmpuint (f->size, ==, g_bytes_get_size (ff->data));
      g_assert_cmpstr (f->sha256, ==, ff->sha256);
    }
  /* The Q8_0 file is on the last page. */
  picked = ruv_hub_pick_files (files, RUV_PRECISION_Q8, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (picked->len, ==, 1);
  g_assert_cmpstr (((RuvHubFile *) picked->pdata[0])->path, ==, "many-Q8_0.gguf");

  /* One entry a page gives the same listing as no paging. */
  unpaged = list_files (fx, "test/model-GGUF", &error);
  g_assert_no_error (error);
  g_clear_pointer (&files, g_ptr_array_unref);
  set_paging (1, FALSE, FALSE);
  files = list_files (fx, "test/model-GGUF", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n_api (), ==, 4);
  g_assert_cmpuint (files->len, ==, unpaged->len);
  for (i = 0; i < files->len; i++)
    {
      RuvHubFile *a = files->pdata[i], *b = unpaged->pdata[i];

      g_assert_cmpstr (a->path, ==, b->path);
      g_assert_cmpuint (a->size, ==, b->size);
      g_assert_cmpstr (a->sha256, ==, b->sha256);
    }
}

/* A next link to another host is refused before any request is made to it
 * (so the token cannot follow); a link back to a page already read ends in
 * an error, not a loop. */
static void
test_list_pages_bad (Fixture       *fx,
                     gconstpointer  data)
{
  (void) data;
  set_paging (2, TRUE, FALSE);
  expect_list_error (fx, "test/model-GGUF", RUV_ERROR_IO, "next page leaves");
  g_assert_cmpuint (n_api (), ==, 1);
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, ==, 0);
  g_mutex_unlock (&ruv_fake_hub.lock);
  set_paging (2, FALSE, TRUE);
  expect_list_error (fx, "test/model-GGUF", RUV_ERROR_IO, "loop");
  g_assert_cmpuint (n_api (), ==, 2);
}

static GPtrArray *
search (Fixture  *fx,
        guint     limit,
        GError  **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  ruv_hub_search_async (fx->hub, "model", limit, NULL, got_result, &res);
  wait_for (&res);
  return ruv_hub_search_finish (fx->hub, res, error);
}

static void
test_search_pages (Fixture       *fx,
                   gconstpointer  data)
{
  g_autoptr(GPtrArray) hits = NULL;
  g_autoptr(GError) error = NULL;

  (void) data;
  /* Five entries two a page, relative next links: all three pages. */
  set_paging (2, FALSE, FALSE);
  hits = search (fx, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n_api (), ==, 3);
  g_assert_cmpuint (hits->len, ==, 2);
  g_assert_cmpstr (((RuvHubModel *) hits->pdata[0])->id, ==, "test/model-GGUF");
  g_assert_cmpstr (((RuvHubModel *) hits->pdata[1])->id, ==, "test/gated-GGUF");
  g_clear_pointer (&hits, g_ptr_array_unref);
  /* Enough hits on the first page: no second request. */
  set_paging (2, FALSE, FALSE);
  hits = search (fx, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n_api (), ==, 1);
  g_assert_cmpuint (hits->len, ==, 1);
}

static void
set_api_429 (guint       n,
             const char *retry_after,
             const char *ratelimit)
{
  g_mutex_lock (&ruv_fake_hub.lock);
  ruv_fake_hub.api_429 = n;
  ruv_fake_hub.api_retry_after = retry_after;
  ruv_fake_hub.api_ratelimit = ratelimit;
  ruv_fake_hub.n_api = 0;
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
cancel_once_cb (gpointer user_data)
{
  g_cancellable_cancel (user_data);
}

/* 429 on API calls: retried after the wait the Hub asks for (Retry-After,
 * else RateLimit t=), a bounded number of times; a long wait is an error at
 * once that says how long. */
static void
test_api_rate_limit (Fixture       *fx,
                     gconstpointer  data)
{
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GError) error = NULL;
  gint64 t0;

  (void) data;
  set_api_429 (2, "0", NULL);
  files = list_files (fx, "test/model-GGUF", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (files->len, ==, 3);
  g_assert_cmpuint (n_api (), ==, 3);
  g_clear_pointer (&files, g_ptr_array_unref);

  /* RateLimit: "api";r=0;t=1 → the retry waits at least that second. */
  set_api_429 (1, NULL, "\"api\";r=0;t=1");
  t0 = g_get_monotonic_time ();
  files = list_files (fx, "test/model-GGUF", &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 950 * 1000);
  g_assert_cmpuint (n_api (), ==, 2);
  g_clear_pointer (&files, g_ptr_array_unref);

  set_api_429 (1, "3600", NULL);
  expect_list_error (fx, "test/model-GGUF", RUV_ERROR_IO, "wait 3600 s");
  g_assert_cmpuint (n_api (), ==, 1);

  /* Still 429 after the retries: the Hub's rate-limit error, 1 + 3 asks. */
  set_api_429 (10, "0", NULL);
  expect_list_error (fx, "test/model-GGUF", RUV_ERROR_IO, "rate-limited");
  g_assert_cmpuint (n_api (), ==, 4);

  /* Searches too. */
  set_api_429 (1, "0", NULL);
  files = search (fx, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (files->len, ==, 2);
  g_assert_cmpuint (n_api (), ==, 2);
  g_clear_pointer (&files, g_ptr_array_unref);

  /* Cancelling during the wait ends it at once (not after 30 s). */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();
    g_autoptr(GAsyncResult) res = NULL;

    set_api_429 (1, "30", NULL);
    ruv_hub_list_files_async (fx->hub, "test/model-GGUF", NULL, cancellable, got_result, &res);
    /* The 429 arrives within milliseconds; then the wait is cancelled.
     * wait_for's bound (20 s) is shorter than the 30 s asked. */
    g_timeout_add_once (300, cancel_once_cb, cancellable);
    wait_for (&res);
    files = ruv_hub_list_files_finish (fx->hub, res, &error);
    g_assert_null (files);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpuint (n_api (), ==, 1);
  }
}

static void
test_header_parsing (void)
{
  const struct { const char *link, *next; } links[] = {
    { "<https://h/api/models/a/b/tree/main?cursor=x>; rel=\"next\"",
      "https://h/api/models/a/b/tree/main?cursor=x" },
    { "<https://h/1>; rel=\"first\", <https://h/3>; rel=\"next\"", "https://h/3" },
    { "<https://h/p?a=1,2>; title=\"a, b; c\"; rel=next", "https://h/p?a=1,2" },
    { "</api/models?cursor=2>; REL=\"prev next\"", "/api/models?cursor=2" },
    { "<https://h/1>; rel=\"prev\"", NULL },
    { "<https://h/1>; rel=\"nextpage\"", NULL },
    { "<https://h/1>", NULL },
    { "https://h/1; rel=next", NULL },
    { "<https://h/1; rel=next", NULL },
    { "", NULL },
    { ";;;,,, = ; rel", NULL },
  };
  const struct { const char *retry_after, *ratelimit; gint64 ms; } waits[] = {
    { "5", NULL, 5000 },
    { "0", "\"api\";r=0;t=9", 0 },
    { NULL, "\"api\";r=0;t=42", 42000 },
    { NULL, "\"api\";t=7;r=0", 7000 },
    { "soon", NULL, -1 },
    { "-3", NULL, -1 },
    { "99999999999", NULL, -1 },
    { "Thu, 01 Jan 1970 00:00:00 GMT", NULL, 0 },
    { NULL, "\"api\";r=0", -1 },
    { NULL, NULL, -1 },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (links); i++)
    {
      g_autofree char *next = _ruv_hub_link_next (links[i].link);

      g_assert_cmpstr (next, ==, links[i].next);
    }
  for (i = 0; i < G_N_ELEMENTS (waits); i++)
    {
      SoupMessageHeaders *h = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);

      if (waits[i].retry_after != NULL)
        soup_message_headers_append (h, "Retry-After", waits[i].retry_after);
      if (waits[i].ratelimit != NULL)
        soup_message_headers_append (h, "RateLimit", waits[i].ratelimit);
      g_assert_cmpint (_ruv_hub_retry_after_ms (h), ==, waits[i].ms);
      soup_message_headers_unref (h);
    }
  /* An HTTP date in the future: about that far ahead. */
  {
    SoupMessageHeaders *h = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
    g_autoptr(GDateTime) later = g_date_time_add_seconds (now, 120);
    g_autofree char *date = soup_date_time_to_string (later, SOUP_DATE_HTTP);
    gint64 ms;

    soup_message_headers_append (h, "Retry-After", date);
    ms = _ruv_hub_retry_after_ms (h);
    g_assert_cmpint (ms, >, 100 * 1000);
    g_assert_cmpint (ms, <=, 120 * 1000);
    soup_message_headers_unref (h);
  }
}

static void
test_gated (Fixture       *fx,
            gconstpointer  data)
{
  g_autoptr(RuvHub) anon = ruv_hub_new (ruv_fake_hub.hub_url, NULL);
  g_autoptr(RuvHub) wrong = ruv_hub_new (ruv_fake_hub.hub_url, "hf_wrong");
  g_autoptr(RuvDownloadManager) m2 = NULL;
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvHubFile) f = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GPtrArray) files = NULL;
  RuvHub *saved = fx->hub;
  gboolean ok;

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
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_auth_on_hub, >, 0);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, ==, 1);
  g_assert_cmpuint (ruv_fake_hub.n_auth_on_cdn, ==, 0);
  g_mutex_unlock (&ruv_fake_hub.lock);
  g_clear_object (&d);

  /* Without it, the download fails with the Hub's meaning. */
  m2 = ruv_download_manager_new (anon, fx->dir);
  d = ruv_download_manager_add (m2, "test/gated-GGUF", NULL, f, "other/gated.gguf", &error);
  g_assert_no_error (error);
  ok = wait_download (d, &error);
  assert_failed (d, ok, error, RUV_ERROR, RUV_ERROR_NOT_FOUND, NULL);
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
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, ==, 1);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
test_drop (Fixture       *fx,
           gconstpointer  data)
{
  (void) data;
  ruv_fake_hub_push_faults (FAULT_DROP, FAULT_DROP, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&ruv_fake_hub.lock);
  /* Each retry resumed where the last one stopped. */
  g_assert_cmpuint (ruv_fake_hub.range_starts->len, ==, 3);
  g_assert_cmpint (g_array_index (ruv_fake_hub.range_starts, gint64, 0), ==, -1);
  g_assert_cmpint (g_array_index (ruv_fake_hub.range_starts, gint64, 1), >, 0);
  g_assert_cmpint (g_array_index (ruv_fake_hub.range_starts, gint64, 2), >,
                   g_array_index (ruv_fake_hub.range_starts, gint64, 1));
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
test_stall (Fixture       *fx,
            gconstpointer  data)
{
  (void) data;
  ruv_fake_hub_push_faults (FAULT_HANG, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.range_starts->len, ==, 2);
  g_assert_cmpint (g_array_index (ruv_fake_hub.range_starts, gint64, 1), >, 0);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
test_rate_limit_and_5xx (Fixture       *fx,
                         gconstpointer  data)
{
  (void) data;
  ruv_fake_hub_push_faults (FAULT_429, FAULT_500, FAULT_500, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, ==, 4);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
test_always_500 (Fixture       *fx,
                 gconstpointer  data)
{
  (void) data;
  ruv_fake_hub_push_faults (FAULT_500, FAULT_500, FAULT_500, FAULT_500, FAULT_500, FAULT_500, -1);
  run_fault (fx, FALSE);
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, ==, 4);   /* max-attempts */
  g_mutex_unlock (&ruv_fake_hub.lock);
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
  ruv_fake_hub_push_faults (FAULT_CORRUPT, -1);
  d = download_model_file (fx, &error, &ok);
  assert_failed (d, ok, error, RUV_ERROR, RUV_ERROR_IO, "sha256 mismatch");
  g_assert_nonnull (strstr (error->message, "deleted"));
  partial = g_strconcat (ruv_download_get_path (d), ".incomplete", NULL);
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
}

static void
test_ignore_range (Fixture       *fx,
                   gconstpointer  data)
{
  (void) data;
  /* A partial from the drop, then a 200 to the Range request: restart at 0. */
  ruv_fake_hub_push_faults (FAULT_DROP, FAULT_IGNORE_RANGE, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpint (g_array_index (ruv_fake_hub.range_starts, gint64, 1), >, 0);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
test_short_length (Fixture       *fx,
                   gconstpointer  data)
{
  (void) data;
  /* Content-Length disagrees with the listing: start over once. */
  ruv_fake_hub_push_faults (FAULT_SHORT_LENGTH, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&ruv_fake_hub.lock);
  /* and twice is an error */
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
test_short_length_twice (Fixture       *fx,
                         gconstpointer  data)
{
  (void) data;
  ruv_fake_hub_push_faults (FAULT_SHORT_LENGTH, FAULT_SHORT_LENGTH, -1);
  run_fault (fx, FALSE);
}

static void
test_extra_bytes (Fixture       *fx,
                  gconstpointer  data)
{
  (void) data;
  ruv_fake_hub_push_faults (FAULT_EXTRA_BYTES, FAULT_EXTRA_BYTES, -1);
  run_fault (fx, FALSE);
}

static void
test_416 (Fixture       *fx,
          gconstpointer  data)
{
  (void) data;
  /* A partial, then 416 to its Range: discard and restart from 0 once. */
  ruv_fake_hub_push_faults (FAULT_DROP, FAULT_416, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.range_starts->len, ==, 3);
  g_assert_cmpint (g_array_index (ruv_fake_hub.range_starts, gint64, 2), ==, -1);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
test_redirect_loop (Fixture       *fx,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvDownload) d = NULL;
  gboolean ok;

  (void) data;
  g_mutex_lock (&ruv_fake_hub.lock);
  ruv_fake_hub.redirect_loop = TRUE;
  g_mutex_unlock (&ruv_fake_hub.lock);
  d = download_model_file (fx, &error, &ok);
  assert_failed (d, ok, error, RUV_ERROR, RUV_ERROR_IO, "redirect loop");
}

/* An expired signed CDN URL (403 from the CDN) is resolved again from the
 * Hub once; a second 403 is an error. Header reads do the same. */
static void
test_403_expired (Fixture       *fx,
                  gconstpointer  data)
{
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(RuvGgufHeader) header = NULL;
  g_autoptr(GError) error = NULL;

  (void) data;
  ruv_fake_hub_push_faults (FAULT_403_EXPIRED, -1);
  run_fault (fx, TRUE);
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, ==, 2);
  g_mutex_unlock (&ruv_fake_hub.lock);

  ruv_fake_hub_reset ();
  ruv_fake_hub_push_faults (FAULT_403_EXPIRED, -1);
  ruv_hub_read_header_async (fx->hub, "test/model-GGUF", NULL, "model-Q8_0.gguf", 0, 0,
                             NULL, got_result, &res);
  wait_for (&res);
  header = ruv_hub_read_header_finish (fx->hub, res, &error);
  g_assert_no_error (error);
  g_assert_nonnull (header);
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, ==, 2);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
test_403_twice (Fixture       *fx,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvDownload) d = NULL;
  gboolean ok;

  (void) data;
  ruv_fake_hub_push_faults (FAULT_403_EXPIRED, FAULT_403_EXPIRED, -1);
  d = download_model_file (fx, &error, &ok);
  assert_failed (d, ok, error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION, "HTTP 403");
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, ==, 2);
  g_mutex_unlock (&ruv_fake_hub.lock);
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
  guint64 half = g_bytes_get_size (fx->model) / 2;
  GStatBuf st;

  (void) data;
  d = add_hung (fx, f, half);
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
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.range_starts->len, ==, 2);
  g_assert_cmpint (g_array_index (ruv_fake_hub.range_starts, gint64, 1), ==, (gint64) half);
  g_mutex_unlock (&ruv_fake_hub.lock);
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

  (void) data;
  g_object_set (fx->manager, "stall-timeout-ms", 60000, NULL);
  ruv_fake_hub_push_faults (FAULT_HANG, FAULT_HANG, -1);
  d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, NULL, &error);
  d8 = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f8, NULL, &error);
  g_assert_no_error (error);
  wait_bytes (d, 1);
  wait_bytes (d8, 1);
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
  g_autofree char *partial = NULL;

  (void) data;
  d = add_hung (fx, f, 1);
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
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, ==, 0);
  g_mutex_unlock (&ruv_fake_hub.lock);
}

static void
test_not_gguf (Fixture       *fx,
               gconstpointer  data)
{
  g_autoptr(RuvHubFile) f = listed (fx, "test/fake-GGUF", "fake-Q4_K_M.gguf");
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  (void) data;
  d = ruv_download_manager_add (fx->manager, "test/fake-GGUF", NULL, f, NULL, &error);
  ok = wait_download (d, &error);
  assert_failed (d, ok, error, RUV_ERROR, RUV_ERROR_MODEL, "not a usable GGUF");
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
  RuvFakeRepo *split;

  (void) data;
  path = download_model (fx, "test/model-GGUF", RUV_PRECISION_Q4K, &error);
  g_assert_no_error (error);
  assert_file_is (path, fx->model);
  g_clear_pointer (&path, g_free);

  /* Split model: every part. */
  path = download_model (fx, "test/split-GGUF", RUV_PRECISION_Q8, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (path, "split-Q8_0-00001-of-00002.gguf"));
  split = ruv_fake_hub_find_repo ("test/split-GGUF");
  assert_file_is (path, ((RuvFakeFile *) split->files->pdata[0])->data);
  part2 = g_build_filename (fx->dir, "test", "split-GGUF", "split-Q8_0-00002-of-00002.gguf",
                            NULL);
  assert_file_is (part2, ((RuvFakeFile *) split->files->pdata[1])->data);
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
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, >, 1);
  g_mutex_unlock (&ruv_fake_hub.lock);
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
  g_autoptr(GBytes) b = ruv_fake_hub_make_gguf (1000, 100);
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
  g_autoptr(GBytes) b = ruv_fake_hub_make_gguf (1000, 3000);
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
  g_autofree char *sha = ruv_fake_hub_sha256 (fx->model);
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

static const RuvStoreModel *
find_row (GPtrArray  *rows,
          const char *repo,
          const char *file)
{
  guint i;

  for (i = 0; i < rows->len; i++)
    {
      const RuvStoreModel *r = rows->pdata[i];

      if (g_strcmp0 (r->repo, repo) == 0 && g_strcmp0 (r->file, file) == 0)
        return r;
    }
  return NULL;
}

/* The registry's truth is the store (in the temporary XDG_DATA_HOME): rows
 * with metadata, removed with the file; a legacy registry.json is migrated
 * once. */
static void
test_registry_store (Fixture       *fx,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(RuvRegistry) reg = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autofree char *db = g_build_filename (fx->tmp, "store.db", NULL);
  g_autofree char *legacy = g_build_filename (fx->dir, "registry.json", NULL);
  g_autofree char *migrated = g_strconcat (legacy, ".migrated", NULL);
  g_autofree char *own = g_build_filename (fx->tmp, "own.gguf", NULL);
  g_autofree char *json = NULL;
  g_autofree char *sha = ruv_fake_hub_sha256 (fx->model);
  const RuvRegistryModel *m;
  const RuvStoreModel *row;
  gboolean ok;

  (void) data;
  /* The default store is the one under XDG_DATA_HOME. */
  store = ruv_store_new (&error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (ruv_store_get_path (store), g_get_user_data_dir ()));
  g_clear_object (&store);

  store = ruv_store_new_for_path (db, &error);
  g_assert_no_error (error);
  d = download_model_file (fx, &error, &ok);
  g_assert_true (ok);
  g_assert_true (g_file_set_contents (own, g_bytes_get_data (fx->model, NULL),
                                      (gssize) g_bytes_get_size (fx->model), NULL));
  /* A version 1 index from before the store, naming the download and an import. */
  json = g_strdup_printf ("{\"version\":1,\"models\":["
                          "{\"id\":\"test/model-GGUF/model-Q4_K_M.gguf\",\"path\":\"%s\","
                          "\"repository\":\"test/model-GGUF\",\"name\":\"legacy-name\","
                          "\"architecture\":\"llama\",\"sha256\":\"%s\",\"size\":1,"
                          "\"added\":1700000000,\"last_used\":0,\"imported\":false},"
                          "{\"id\":\"local/abc-own.gguf\",\"path\":\"%s\",\"imported\":true},"
                          "{\"id\":\"gone\",\"path\":\"/nonexistent/x.gguf\"}, 7]}",
                          ruv_download_get_path (d), sha, own);
  g_assert_true (g_file_set_contents (legacy, json, -1, NULL));
  reg = ruv_registry_open_with_store (store, fx->dir, &error);
  g_assert_no_error (error);
  g_assert_false (g_file_test (legacy, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (migrated, G_FILE_TEST_EXISTS));
  list = ruv_registry_list (reg);
  g_assert_cmpuint (list->len, ==, 2);
  m = ruv_registry_find (reg, "test/model-GGUF/model-Q4_K_M.gguf");
  g_assert_nonnull (m);
  g_assert_cmpstr (m->name, ==, "legacy-name");
  g_assert_cmpstr (m->sha256, ==, sha);
  g_assert_cmpuint (m->size, ==, g_bytes_get_size (fx->model));
  g_assert_cmpint (m->added, ==, 1700000000);
  m = ruv_registry_find (reg, "local/abc-own.gguf");
  g_assert_nonnull (m);
  g_assert_true (m->imported);
  g_clear_pointer (&list, g_ptr_array_unref);

  /* Registering the download again updates the same row with its metadata. */
  m = ruv_registry_add_download (reg, ruv_download_get_path (d), "test/model-GGUF", sha, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (m->name, ==, "download-test");
  rows = ruv_store_list_models (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 2);
  row = find_row (rows, "test/model-GGUF", "model-Q4_K_M.gguf");
  g_assert_nonnull (row);
  g_assert_cmpstr (row->state, ==, "ready");
  g_assert_cmpstr (row->path, ==, ruv_download_get_path (d));
  g_assert_cmpstr (row->sha256, ==, sha);
  g_assert_cmpint (row->size, ==, (gint64) g_bytes_get_size (fx->model));
  g_assert_nonnull (strstr (row->metadata_json, "\"architecture\":\"llama\""));
  g_clear_pointer (&rows, g_ptr_array_unref);
  g_assert_true (ruv_registry_touch (reg, "test/model-GGUF/model-Q4_K_M.gguf", &error));
  g_clear_pointer (&reg, ruv_registry_free);

  /* Reopened: from the store alone (the legacy file is not read again). */
  reg = ruv_registry_open_with_store (store, fx->dir, &error);
  g_assert_no_error (error);
  m = ruv_registry_find (reg, "test/model-GGUF/model-Q4_K_M.gguf");
  g_assert_nonnull (m);
  g_assert_cmpint (m->last_used, >, 0);
  g_assert_cmpstr (m->name, ==, "download-test");
  /* rm: the file and the row go; the import is only forgotten. */
  g_assert_true (ruv_registry_remove (reg, "test/model-GGUF/model-Q4_K_M.gguf", &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (ruv_download_get_path (d), G_FILE_TEST_EXISTS));
  g_assert_true (ruv_registry_remove (reg, "local/abc-own.gguf", &error));
  g_assert_true (g_file_test (own, G_FILE_TEST_EXISTS));
  rows = ruv_store_list_models (store, &error);
  g_assert_cmpuint (rows->len, ==, 0);
  g_clear_pointer (&rows, g_ptr_array_unref);

  /* A row whose file vanished behind our back is dropped at open. */
  m = ruv_registry_import (reg, own, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reg, ruv_registry_free);
  g_assert_cmpint (g_unlink (own), ==, 0);
  reg = ruv_registry_open_with_store (store, fx->dir, &error);
  g_assert_no_error (error);
  list = ruv_registry_list (reg);
  g_assert_cmpuint (list->len, ==, 0);
  rows = ruv_store_list_models (store, &error);
  g_assert_cmpuint (rows->len, ==, 0);
}

/* Restart with the store: the unfinished download is listed from the store
 * (state, offset, URL), no sidecar is written, and a new manager resumes it
 * from the recorded offset to a verified file. */
static void
test_restart_store (Fixture       *fx,
                    gconstpointer  data)
{
  g_autoptr(RuvHubFile) f = listed (fx, "test/model-GGUF", "model-Q4_K_M.gguf");
  g_autoptr(RuvDownload) d = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GPtrArray) restored = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *db = g_build_filename (fx->tmp, "store.db", NULL);
  g_autofree char *url = NULL;
  g_autofree char *sidecar = NULL;
  guint64 half = g_bytes_get_size (fx->model) / 2;
  const RuvStoreModel *row;

  (void) data;
  store = ruv_store_new_for_path (db, &error);
  g_assert_no_error (error);
  g_clear_object (&fx->manager);
  fx->manager = ruv_download_manager_new_with_store (fx->hub, fx->dir, store);
  g_object_set (fx->manager, "stall-timeout-ms", 60000, "backoff-base-ms", 10, NULL);
  g_assert_true (ruv_download_manager_get_store (fx->manager) == store);
  ruv_fake_hub_push_faults (FAULT_HANG, -1);
  d = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f, NULL, &error);
  g_assert_no_error (error);
  url = g_strdup (ruv_download_get_url (d));
  sidecar = g_strconcat (ruv_download_get_path (d), ".incomplete.json", NULL);
  wait_bytes (d, half);
  g_assert_false (g_file_test (sidecar, G_FILE_TEST_EXISTS));
  g_assert_finalize_object (g_steal_pointer (&fx->manager));
  g_clear_object (&d);
  g_clear_object (&store);

  /* "The app restarts": a new store connection lists the download. */
  store = ruv_store_new_for_path (db, &error);
  g_assert_no_error (error);
  rows = ruv_store_list_models (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (rows->len, ==, 1);
  row = rows->pdata[0];
  g_assert_cmpstr (row->state, ==, "paused");
  g_assert_cmpint (row->bytes_done, ==, (gint64) half);
  g_assert_cmpstr (row->url, ==, url);
  g_assert_cmpstr (row->revision, ==, "main");
  g_assert_cmpstr (row->sha256, ==, f->sha256);
  g_assert_cmpint (row->size, ==, (gint64) f->size);
  g_clear_pointer (&rows, g_ptr_array_unref);

  fx->manager = ruv_download_manager_new_with_store (fx->hub, fx->dir, store);
  g_object_set (fx->manager, "stall-timeout-ms", 60000, NULL);
  restored = ruv_download_manager_restore (fx->manager, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (restored->len, ==, 1);
  d = g_object_ref (restored->pdata[0]);
  g_assert_cmpint (ruv_download_get_state (d), ==, RUV_DOWNLOAD_STATE_PAUSED);
  g_assert_cmpuint (ruv_download_get_bytes_done (d), ==, half);
  g_assert_cmpstr (ruv_download_get_url (d), ==, url);
  ruv_download_resume (d);
  g_assert_true (wait_download (d, &error));
  g_assert_no_error (error);
  assert_file_is (ruv_download_get_path (d), fx->model);
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.range_starts->len, ==, 2);
  g_assert_cmpint (g_array_index (ruv_fake_hub.range_starts, gint64, 1), ==, (gint64) half);
  g_mutex_unlock (&ruv_fake_hub.lock);
  rows = ruv_store_list_models (store, &error);
  g_assert_cmpuint (rows->len, ==, 1);
  row = rows->pdata[0];
  g_assert_cmpstr (row->state, ==, "ready");
  g_assert_cmpint (row->bytes_done, ==, (gint64) f->size);
  g_clear_pointer (&rows, g_ptr_array_unref);

  /* Nothing unfinished is left to restore; a cancel that deletes the
   * partial file forgets its row. */
  g_clear_pointer (&restored, g_ptr_array_unref);
  restored = ruv_download_manager_restore (fx->manager, &error);
  g_assert_cmpuint (restored->len, ==, 0);
  {
    g_autoptr(RuvDownload) d8 = NULL;
    g_autoptr(RuvHubFile) f8 = listed (fx, "test/model-GGUF", "model-Q8_0.gguf");

    ruv_fake_hub_push_faults (FAULT_HANG, -1);
    d8 = ruv_download_manager_add (fx->manager, "test/model-GGUF", NULL, f8, NULL, &error);
    g_assert_no_error (error);
    wait_bytes (d8, 1);
    ruv_download_cancel (d8, TRUE);
    rows = ruv_store_list_models (store, &error);
    g_assert_cmpuint (rows->len, ==, 1);
    g_assert_cmpstr (((RuvStoreModel *) rows->pdata[0])->file, ==, "model-Q4_K_M.gguf");
  }
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *data_home = g_dir_make_tmp ("ruv-download-data-XXXXXX", NULL);
  int ret;

  /* Before anything asks GLib for the user data dir (it is cached). */
  g_assert_nonnull (data_home);
  g_setenv ("XDG_DATA_HOME", data_home, TRUE);
  g_unsetenv ("RUVLLM_MODELS_DIR");
  g_test_init (&argc, &argv, NULL);
  /* Never a proxy, even if the environment has one. */
  g_setenv ("no_proxy", "*", TRUE);
  g_unsetenv ("http_proxy");
  g_unsetenv ("HTTP_PROXY");

  ruv_fake_hub_start ();

  g_test_add_func ("/engine/download/check-path", test_check_path);
  g_test_add_func ("/engine/download/pick-files", test_pick_files);
  g_test_add_func ("/engine/download/ram-fit", test_ram_fit);
  g_test_add_func ("/engine/download/header-prefix", test_header_prefix);
  g_test_add_func ("/engine/download/catalog", test_catalog);
  g_test_add_func ("/engine/download/hub/header-parsing", test_header_parsing);
#define ADD(path, fn) g_test_add ("/engine/download/" path, Fixture, NULL, fixture_setup, fn, \
                                  fixture_teardown)
  ADD ("hub/search", test_search);
  ADD ("hub/list-files", test_list_files);
  ADD ("hub/bad-listings", test_bad_listings);
  ADD ("hub/list-pages", test_list_pages);
  ADD ("hub/list-pages-bad", test_list_pages_bad);
  ADD ("hub/search-pages", test_search_pages);
  ADD ("hub/api-rate-limit", test_api_rate_limit);
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
  ADD ("fault/403-expired-url", test_403_expired);
  ADD ("fault/403-twice", test_403_twice);
  ADD ("fault/disk-full", test_disk_full);
  ADD ("fault/not-gguf", test_not_gguf);
  ADD ("unsafe-destination", test_unsafe_dest);
  ADD ("restart", test_restart);
  ADD ("pause-resume-cancel", test_pause_cancel);
  ADD ("cancel-keep", test_cancel_keep);
  ADD ("download-model", test_download_model);
  ADD ("registry", test_registry);
  ADD ("registry-store", test_registry_store);
  ADD ("restart-store", test_restart_store);
#undef ADD
  ret = g_test_run ();

  ruv_fake_hub_stop ();
  ruv_test_rm_rf (data_home);
  return ret;
}
