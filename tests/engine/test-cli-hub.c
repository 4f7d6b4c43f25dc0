/* test-cli-hub.c — the Hub sub-commands of the built ruvllm-cli (search,
 * files, pull, models, rm, info's RAM fit) against the fake Hub and CDN of
 * ruv-fake-hub.c, with HF_ENDPOINT pointing at it and XDG_DATA_HOME at a
 * temporary folder (so the store and the models folder are the test's own).
 * SPDX-License-Identifier: MIT
 *
 * The binary comes from $RUVLLM_CLI (tests/meson.build sets it), else the
 * RUVLLM_CLI_PATH it was built with; without either the tests are skipped.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "ruv-fake-hub.h"
#include "ruv-store.h"
#include "ruv-test-util.h"

typedef struct
{
  char *out;
  char *err;
  int   status;   /* the exit code, or -1 when killed */
} Run;

static char *cli_path;
static char *data_home;

static void
run_clear (Run *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
}

/* Runs ruvllm-cli with argv (NULL-terminated, without the program) in the
 * test environment; extra_env: "NAME=value" pairs (NULL-terminated) or NULL. */
static void
run_cli (Run                *r,
         const char *const  *extra_env,
         ...)
{
  g_auto(GStrv) envp = g_get_environ ();
  const char *command;
  va_list ap;
  guint i;

  run_clear (r);
  envp = g_environ_setenv (envp, "HF_ENDPOINT", ruv_fake_hub.hub_url, TRUE);
  envp = g_environ_setenv (envp, "XDG_DATA_HOME", data_home, TRUE);
  envp = g_environ_setenv (envp, "no_proxy", "*", TRUE);
  envp = g_environ_unsetenv (envp, "http_proxy");
  envp = g_environ_unsetenv (envp, "HTTP_PROXY");
  envp = g_environ_unsetenv (envp, "HF_TOKEN");
  /* never the developer's own keyring */
  envp = g_environ_setenv (envp, "DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent", TRUE);
  envp = g_environ_unsetenv (envp, "RUVLLM_MODELS_DIR");
  envp = g_environ_unsetenv (envp, "G_MESSAGES_DEBUG");
  /* Plenty of memory unless a test says otherwise: the verdict is stable. */
  envp = g_environ_setenv (envp, "RUVLLM_MEM_AVAILABLE", "8589934592", TRUE);
  for (i = 0; extra_env != NULL && extra_env[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (extra_env[i], "=", 2);

      envp = g_environ_setenv (envp, kv[0], kv[1], TRUE);
    }
  va_start (ap, extra_env);
  command = va_arg (ap, const char *);
  va_end (ap);
  va_start (ap, extra_env);
  r->status = ruv_test_spawn_va (cli_path, (const char * const *) envp, NULL, &r->out, &r->err,
                                 ap);
  va_end (ap);
  g_test_message ("ruvllm-cli %s → %d\nstdout:\n%s\nstderr:\n%s",
                  command, r->status, r->out, r->err);
}

static guint
count (const char *haystack,
       const char *needle)
{
  guint n = 0;
  const char *p = haystack;

  while ((p = strstr (p, needle)) != NULL)
    {
      n++;
      p += strlen (needle);
    }
  return n;
}

static char *
models_dir (void)
{
  return g_build_filename (data_home, "ruvllm", "models", NULL);
}

static GPtrArray *
store_rows (void)
{
  g_autofree char *db = g_build_filename (data_home, "ruvllm", "ruvllm.db", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = ruv_store_new_for_path (db, &error);
  GPtrArray *rows;

  g_assert_no_error (error);
  rows = ruv_store_list_models (store, &error);
  g_assert_no_error (error);
  return rows;
}

static JsonArray *
parse_models_json (JsonParser *parser,
                   const char *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *root;

  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  root = json_parser_get_root (parser);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
  return json_node_get_array (root);
}

static gboolean
have_cli (void)
{
  if (cli_path == NULL)
    {
      g_test_skip ("ruvllm-cli was not built");
      return FALSE;
    }
  return TRUE;
}

static void
reset (void)
{
  ruv_fake_hub_reset ();
}

static void
test_search (void)
{
  Run r = { 0 };

  if (!have_cli ())
    return;
  reset ();
  run_cli (&r, NULL, "search", "model", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "test/model-GGUF"));
  g_assert_nonnull (strstr (r.out, "1200 downloads"));
  g_assert_nonnull (strstr (r.out, "test/gated-GGUF"));
  g_assert_nonnull (strstr (r.out, "(gated)"));
  /* The hostile id in the answer is dropped, not printed. */
  g_assert_null (strstr (r.out, "../"));
  run_clear (&r);
}

static void
test_files (void)
{
  const char *const tiny[] = { "RUVLLM_MEM_AVAILABLE=1000", NULL };
  g_autoptr(GBytes) q8 = NULL;
  g_autofree char *sha = NULL;
  Run r = { 0 };

  if (!have_cli ())
    return;
  reset ();
  q8 = g_bytes_ref (((RuvFakeFile *) ruv_fake_hub_find_repo ("test/model-GGUF")->files->pdata[1])
                    ->data);
  sha = ruv_fake_hub_sha256 (q8);
  run_cli (&r, NULL, "files", "test/model-GGUF", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "model-Q4_K_M.gguf"));
  g_assert_nonnull (strstr (r.out, "model-Q8_0.gguf"));
  g_assert_nonnull (strstr (r.out, sha));
  g_assert_nonnull (strstr (r.out, "README.md"));
  /* One fit line per GGUF (not for the README), from the remote header. */
  g_assert_cmpuint (count (r.out, "RAM fit: fits: needs "), ==, 2);
  g_assert_nonnull (strstr (r.out, "of 8.6\xc2\xa0GB available"));
  g_assert_nonnull (strstr (r.out, "KV cache"));
  g_assert_nonnull (strstr (r.out, "at 2048 tokens"));

  run_cli (&r, tiny, "files", "test/model-GGUF", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpuint (count (r.out, "RAM fit: won't fit: needs "), ==, 2);

  /* Split models: the first part counts all parts; a non-GGUF header is
   * "unknown" with the reason, not a failure. */
  run_cli (&r, NULL, "files", "test/split-GGUF", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpuint (count (r.out, "RAM fit: fits"), ==, 1);
  g_assert_cmpuint (count (r.out, "part of a split model"), ==, 1);
  run_cli (&r, NULL, "files", "test/fake-GGUF", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "RAM fit: unknown ("));

  /* A listing the Hub sends in pages (two entries each) is shown whole. */
  run_cli (&r, NULL, "files", "test/many-GGUF", "--no-fit", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "README.md"));
  g_assert_nonnull (strstr (r.out, "config.json"));
  g_assert_nonnull (strstr (r.out, "many-Q2_K.gguf"));
  g_assert_nonnull (strstr (r.out, "many-Q4_K_M.gguf"));
  g_assert_nonnull (strstr (r.out, "many-Q8_0.gguf"));

  run_cli (&r, NULL, "files", "test/missing", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "ruvllm-cli: "));
  run_clear (&r);
}

static void
test_pull_models_rm (void)
{
  g_autofree char *dir = models_dir ();
  g_autofree char *target = g_build_filename (dir, "test", "model-GGUF", "model-Q8_0.gguf", NULL);
  g_autoptr(GBytes) q8 = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *data = NULL;
  g_autofree char *sha = NULL;
  g_autofree char *verified = NULL;
  JsonArray *arr;
  JsonObject *o;
  gsize len = 0;
  Run r = { 0 };

  if (!have_cli ())
    return;
  reset ();
  q8 = g_bytes_ref (((RuvFakeFile *) ruv_fake_hub_find_repo ("test/model-GGUF")->files->pdata[1])
                    ->data);
  sha = ruv_fake_hub_sha256 (q8);

  run_cli (&r, NULL, "pull", "test/model-GGUF:Q8_0", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "test/model-GGUF/model-Q8_0.gguf"));
  g_assert_cmpuint (count (r.out, "RAM fit: fits: needs "), ==, 1);
  verified = g_strdup_printf ("Verified %s", target);
  g_assert_nonnull (strstr (r.out, verified));
  /* The verified file, and nothing half-written beside it. */
  g_assert_true (g_file_get_contents (target, &data, &len, NULL));
  g_assert_cmpmem (data, len, g_bytes_get_data (q8, NULL), g_bytes_get_size (q8));
  {
    g_autofree char *partial = g_strconcat (target, ".incomplete", NULL);
    g_autofree char *sidecar = g_strconcat (target, ".incomplete.json", NULL);

    g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (sidecar, G_FILE_TEST_EXISTS));
  }
  /* Registered in the store. */
  rows = store_rows ();
  g_assert_cmpuint (rows->len, ==, 1);
  g_assert_cmpstr (((RuvStoreModel *) rows->pdata[0])->repo, ==, "test/model-GGUF");
  g_assert_cmpstr (((RuvStoreModel *) rows->pdata[0])->file, ==, "model-Q8_0.gguf");
  g_assert_cmpstr (((RuvStoreModel *) rows->pdata[0])->state, ==, "ready");
  g_assert_cmpstr (((RuvStoreModel *) rows->pdata[0])->sha256, ==, sha);
  g_clear_pointer (&rows, g_ptr_array_unref);

  run_cli (&r, NULL, "models", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "test/model-GGUF/model-Q8_0.gguf"));
  g_assert_nonnull (strstr (r.out, "llama"));
  run_cli (&r, NULL, "models", "--json", NULL);
  g_assert_cmpint (r.status, ==, 0);
  arr = parse_models_json (parser, r.out);
  g_assert_cmpuint (json_array_get_length (arr), ==, 1);
  o = json_array_get_object_element (arr, 0);
  g_assert_cmpstr (json_object_get_string_member (o, "id"), ==, "test/model-GGUF/model-Q8_0.gguf");
  g_assert_cmpstr (json_object_get_string_member (o, "path"), ==, target);
  g_assert_cmpstr (json_object_get_string_member (o, "repository"), ==, "test/model-GGUF");
  g_assert_cmpstr (json_object_get_string_member (o, "sha256"), ==, sha);
  g_assert_cmpstr (json_object_get_string_member (o, "architecture"), ==, "llama");
  g_assert_cmpint (json_object_get_int_member (o, "size"), ==, (gint64) g_bytes_get_size (q8));
  g_assert_false (json_object_get_boolean_member (o, "imported"));

  /* A second pull of the same file: already there, no download. */
  reset ();
  run_cli (&r, NULL, "pull", "test/model-GGUF:Q8_0", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.range_starts->len, ==, 1);   /* the header read only */
  g_mutex_unlock (&ruv_fake_hub.lock);

  run_cli (&r, NULL, "rm", "nope/nothing.gguf", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "no model"));
  run_cli (&r, NULL, "rm", "test/model-GGUF/model-Q8_0.gguf", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_false (g_file_test (target, G_FILE_TEST_EXISTS));
  rows = store_rows ();
  g_assert_cmpuint (rows->len, ==, 0);
  run_cli (&r, NULL, "models", "--json", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_clear_object (&parser);
  parser = json_parser_new ();
  arr = parse_models_json (parser, r.out);
  g_assert_cmpuint (json_array_get_length (arr), ==, 0);
  run_clear (&r);
}

static void
test_gated (void)
{
  const char *const good[] = { "HF_TOKEN=" RUV_FAKE_HUB_TOKEN, NULL };
  const char *const bad[] = { "HF_TOKEN=hf_wrong", NULL };
  const char *const broken[] = { "HF_TOKEN=hf_a\rX-Injected: 1", NULL };
  g_autofree char *dir = models_dir ();
  g_autofree char *target = g_build_filename (dir, "test", "gated-GGUF", "gated-Q4_K_M.gguf",
                                              NULL);
  Run r = { 0 };

  if (!have_cli ())
    return;
  reset ();
  run_cli (&r, NULL, "pull", "test/gated-GGUF", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "needs sign-in"));
  g_assert_nonnull (strstr (r.err, "token"));
  g_assert_false (g_file_test (target, G_FILE_TEST_EXISTS));
  run_cli (&r, bad, "pull", "test/gated-GGUF", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "gated"));
  g_assert_false (g_file_test (target, G_FILE_TEST_EXISTS));
  /* a token that cannot go into a header is refused, said, and never sent */
  run_cli (&r, broken, "pull", "test/gated-GGUF", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "ignoring HF_TOKEN"));
  g_assert_nonnull (strstr (r.err, "needs sign-in"));
  g_assert_null (strstr (r.err, "X-Injected"));
  g_assert_false (g_file_test (target, G_FILE_TEST_EXISTS));

  reset ();
  run_cli (&r, good, "pull", "test/gated-GGUF", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_file_test (target, G_FILE_TEST_IS_REGULAR));
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_auth_on_hub, >, 0);
  g_assert_cmpuint (ruv_fake_hub.n_cdn, >=, 2);           /* header read + download */
  g_assert_cmpuint (ruv_fake_hub.n_auth_on_cdn, ==, 0);
  g_mutex_unlock (&ruv_fake_hub.lock);
  run_cli (&r, NULL, "rm", "test/gated-GGUF/gated-Q4_K_M.gguf", NULL);
  g_assert_cmpint (r.status, ==, 0);
  run_clear (&r);
}

/* `info` on a local file shows the RAM fit at the model's default context. */
static void
test_info_fit (void)
{
  const char *const tiny[] = { "RUVLLM_MEM_AVAILABLE=1000", NULL };
  g_autofree char *path = g_build_filename (data_home, "tiny.gguf", NULL);
  g_autoptr(GBytes) bytes = NULL;
  RuvTestModelSpec spec;
  Run r = { 0 };

  if (!have_cli ())
    return;
  ruv_test_model_spec_init (&spec);
  bytes = ruv_test_model_build (&spec, NULL, NULL);
  g_assert_true (g_file_set_contents (path, g_bytes_get_data (bytes, NULL),
                                      (gssize) g_bytes_get_size (bytes), NULL));
  run_cli (&r, NULL, "info", path, NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "RAM fit:         fits: needs "));
  run_cli (&r, tiny, "info", path, NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "RAM fit:         won't fit: needs "));
  g_assert_nonnull (strstr (r.out, "of 1.0\xc2\xa0kB available"));
  run_clear (&r);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  cli_path = ruv_test_cli_path ();
  data_home = g_dir_make_tmp ("ruv-cli-hub-XXXXXX", NULL);
  g_assert_nonnull (data_home);
  g_setenv ("no_proxy", "*", TRUE);
  ruv_fake_hub_start ();

  g_test_add_func ("/engine/cli-hub/search", test_search);
  g_test_add_func ("/engine/cli-hub/files", test_files);
  g_test_add_func ("/engine/cli-hub/pull-models-rm", test_pull_models_rm);
  g_test_add_func ("/engine/cli-hub/gated", test_gated);
  g_test_add_func ("/engine/cli-hub/info-fit", test_info_fit);
  ret = g_test_run ();

  ruv_fake_hub_stop ();
  ruv_test_rm_rf (data_home);
  g_free (data_home);
  g_free (cli_path);
  return ret;
}
