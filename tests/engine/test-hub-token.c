/* test-hub-token.c — the Hub token in a real keyring (ruv-hub-token.c), and
 * `ruvllm-cli login`/`logout` with the fake Hub of ruv-fake-hub.c.
 * SPDX-License-Identifier: MIT
 *
 * meson runs this through keyring-session.sh: a private D-Bus session with
 * its own gnome-keyring (unlocked, in a temporary home), which sets
 * RUV_TEST_KEYRING. Run without it, the tests skip instead of writing to the
 * user's own keyring.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-fake-hub.h"
#include "ruv-hub-token.h"
#include "ruv-test-util.h"

#define ENDPOINT_A "https://hub.example.org"
#define ENDPOINT_B "https://mirror.example.org"

static char *cli_path;
static char *data_home;

static gboolean
in_keyring_session (void)
{
  if (g_getenv ("RUV_TEST_KEYRING") == NULL)
    {
      g_test_skip ("not in a private keyring session (run it with meson test)");
      return FALSE;
    }
  return TRUE;
}

static char *
lookup (const char *endpoint)
{
  g_autoptr(GError) error = NULL;
  char *token = ruv_hub_token_lookup (endpoint, NULL, &error);

  g_assert_no_error (error);
  return token;
}

static void
store (const char *endpoint,
       const char *token)
{
  g_autoptr(GError) error = NULL;

  ruv_hub_token_store (endpoint, token, NULL, &error);
  g_assert_no_error (error);
}

static gboolean
clear (const char *endpoint)
{
  g_autoptr(GError) error = NULL;
  gboolean removed = FALSE;

  ruv_hub_token_clear (endpoint, &removed, NULL, &error);
  g_assert_no_error (error);
  return removed;
}

static void
test_origin (void)
{
  const struct { const char *in, *out; } cases[] = {
    { "https://huggingface.co", "https://huggingface.co" },
    { "https://HuggingFace.CO/", "https://huggingface.co" },
    { "https://huggingface.co:443/some/path?x=1", "https://huggingface.co" },
    { "http://127.0.0.1:8080", "http://127.0.0.1:8080" },
    { "http://127.0.0.1:80", "http://127.0.0.1" },
    { "HTTPS://h.example:8443", "https://h.example:8443" },
    { "http://[::1]:9000/x", "http://[::1]:9000" },
  };
  const char *bad[] = { "", "huggingface.co", "ftp://h.example", "file:///etc", "https://" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *origin = ruv_hub_token_origin (cases[i].in, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (origin, ==, cases[i].out);
    }
  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *origin = ruv_hub_token_origin (bad[i], &error);

      g_assert_null (origin);
      g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
    }
}

/* Store, look up, replace, clear; a token is found for its own origin only. */
static void
test_store_lookup_clear (void)
{
  char *t;

  if (!in_keyring_session ())
    return;
  g_assert_null (lookup (ENDPOINT_A));
  g_assert_false (clear (ENDPOINT_A));

  /* Surrounding whitespace (a pasted newline) is not part of the token. */
  store (ENDPOINT_A, "  hf_first\n");
  t = lookup (ENDPOINT_A);
  g_assert_cmpstr (t, ==, "hf_first");
  ruv_hub_token_free (t);
  /* The same origin spelt differently finds it. */
  t = lookup ("https://HUB.example.org:443/api/models");
  g_assert_cmpstr (t, ==, "hf_first");
  ruv_hub_token_free (t);
  /* Another host, scheme or port is another endpoint: nothing. */
  g_assert_null (lookup (ENDPOINT_B));
  g_assert_null (lookup ("http://hub.example.org"));
  g_assert_null (lookup ("https://hub.example.org:8443"));
  g_assert_null (lookup ("https://example.org"));

  store (ENDPOINT_B, "hf_second");
  store (ENDPOINT_A, "hf_replaced");
  t = lookup (ENDPOINT_A);
  g_assert_cmpstr (t, ==, "hf_replaced");
  ruv_hub_token_free (t);
  t = lookup (ENDPOINT_B);
  g_assert_cmpstr (t, ==, "hf_second");
  ruv_hub_token_free (t);

  g_assert_true (clear (ENDPOINT_A));
  g_assert_null (lookup (ENDPOINT_A));
  g_assert_false (clear (ENDPOINT_A));
  t = lookup (ENDPOINT_B);
  g_assert_cmpstr (t, ==, "hf_second");
  ruv_hub_token_free (t);
  g_assert_true (clear (ENDPOINT_B));
  g_assert_null (lookup (ENDPOINT_B));
}

/* What could split an HTTP header, or is no token at all, is not stored. */
static void
test_bad_tokens (void)
{
  const char *bad[] = { "", "   \n", "hf_a\r\nX-Evil: 1", "hf a", "hf_\x01", "hf_\xc3\xa9" };
  g_autofree char *huge = g_strnfill (RUV_HUB_TOKEN_MAX_LEN + 1, 'a');
  guint i;

  if (!in_keyring_session ())
    return;
  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (ruv_hub_token_store (ENDPOINT_A, bad[i], NULL, &error));
      g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
      /* The message never repeats the token. */
      g_assert_null (strstr (error->message, "hf_"));
    }
  {
    g_autoptr(GError) error = NULL;

    g_assert_false (ruv_hub_token_store (ENDPOINT_A, huge, NULL, &error));
    g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  }
  {
    g_autoptr(GError) error = NULL;

    g_assert_false (ruv_hub_token_store ("not a url", "hf_x", NULL, &error));
    g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  }
  g_assert_null (lookup (ENDPOINT_A));
}

static void
got_result_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  (void) source;
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

static void
test_async (void)
{
  GAsyncResult *res = NULL;
  g_autoptr(GError) error = NULL;
  gboolean removed = FALSE;
  char *t;

  if (!in_keyring_session ())
    return;
  ruv_hub_token_store_async (ENDPOINT_A, "hf_async", NULL, got_result_cb, &res);
  g_assert_true (ruv_hub_token_store_finish (wait_result (&res), &error));
  g_assert_no_error (error);
  g_clear_object (&res);

  ruv_hub_token_lookup_async (ENDPOINT_B, NULL, got_result_cb, &res);
  t = ruv_hub_token_lookup_finish (wait_result (&res), &error);
  g_assert_no_error (error);
  g_assert_null (t);
  g_clear_object (&res);
  ruv_hub_token_lookup_async (ENDPOINT_A, NULL, got_result_cb, &res);
  t = ruv_hub_token_lookup_finish (wait_result (&res), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (t, ==, "hf_async");
  ruv_hub_token_free (t);
  g_clear_object (&res);

  ruv_hub_token_store_async (ENDPOINT_A, "bad token", NULL, got_result_cb, &res);
  g_assert_false (ruv_hub_token_store_finish (wait_result (&res), &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  g_clear_object (&res);

  ruv_hub_token_clear_async (ENDPOINT_A, NULL, got_result_cb, &res);
  g_assert_true (ruv_hub_token_clear_finish (wait_result (&res), &removed, &error));
  g_assert_no_error (error);
  g_assert_true (removed);
  g_clear_object (&res);
  ruv_hub_token_clear_async (ENDPOINT_A, NULL, got_result_cb, &res);
  g_assert_true (ruv_hub_token_clear_finish (wait_result (&res), &removed, &error));
  g_assert_false (removed);
  g_clear_object (&res);
  g_assert_null (lookup (ENDPOINT_A));

  /* an endpoint without an origin fails each call before the keyring */
  ruv_hub_token_lookup_async ("ftp://example.org", NULL, got_result_cb, &res);
  g_assert_null (ruv_hub_token_lookup_finish (wait_result (&res), &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  g_clear_object (&res);
  ruv_hub_token_store_async ("ftp://example.org", "hf_x", NULL, got_result_cb, &res);
  g_assert_false (ruv_hub_token_store_finish (wait_result (&res), &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  g_clear_object (&res);
  ruv_hub_token_clear_async ("ftp://example.org", NULL, got_result_cb, &res);
  g_assert_false (ruv_hub_token_clear_finish (wait_result (&res), &removed, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
  g_clear_error (&error);
  g_clear_object (&res);
}

/* ---- the CLI ------------------------------------------------------------ */

typedef struct
{
  char *out;
  char *err;
  int   status;
} Run;

static void
run_clear (Run *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
}

/* ruvllm-cli with HF_ENDPOINT at the fake Hub, no HF_TOKEN, the test's own
 * XDG_DATA_HOME; extra_env "NAME=value" (NULL-terminated, may be NULL). */
static void
run_cli (Run               *r,
         const char *const *extra_env,
         const char        *input,
         ...)
{
  g_auto(GStrv) envp = g_get_environ ();
  va_list ap;
  guint i;

  run_clear (r);
  envp = g_environ_setenv (envp, "HF_ENDPOINT", ruv_fake_hub.hub_url, TRUE);
  envp = g_environ_setenv (envp, "XDG_DATA_HOME", data_home, TRUE);
  envp = g_environ_setenv (envp, "no_proxy", "*", TRUE);
  envp = g_environ_setenv (envp, "RUVLLM_MEM_AVAILABLE", "8589934592", TRUE);
  envp = g_environ_unsetenv (envp, "http_proxy");
  envp = g_environ_unsetenv (envp, "HTTP_PROXY");
  envp = g_environ_unsetenv (envp, "HF_TOKEN");
  envp = g_environ_unsetenv (envp, "RUVLLM_MODELS_DIR");
  for (i = 0; extra_env != NULL && extra_env[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (extra_env[i], "=", 2);

      envp = g_environ_setenv (envp, kv[0], kv[1], TRUE);
    }
  va_start (ap, input);
  r->status = ruv_test_spawn_va (cli_path, (const char *const *) envp, input, &r->out, &r->err,
                                 ap);
  va_end (ap);
  g_test_message ("→ %d\nstdout:\n%s\nstderr:\n%s", r->status, r->out, r->err);
  /* Whatever happens, the CLI never prints the token. */
  g_assert_null (strstr (r->out, RUV_FAKE_HUB_TOKEN));
  g_assert_null (strstr (r->err, RUV_FAKE_HUB_TOKEN));
}

/* No file under dir holds needle. */
static void
assert_not_in_files (const char *dir,
                     const char *needle)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    {
      g_autofree char *data = NULL;
      gsize len = 0;

      if (g_file_get_contents (dir, &data, &len, NULL))
        g_assert_null (g_strstr_len (data, (gssize) len, needle));
      return;
    }
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *child = g_build_filename (dir, name, NULL);

      assert_not_in_files (child, needle);
    }
  g_dir_close (d);
}

static void
test_cli_login (void)
{
  g_autofree char *target = NULL;
  g_autofree char *db = NULL;
  char *t;
  Run r = { 0 };

  if (!in_keyring_session ())
    return;
  if (cli_path == NULL)
    {
      g_test_skip ("ruvllm-cli was not built");
      return;
    }
  ruv_fake_hub_reset ();
  /* Without a token the gated repository is refused. */
  run_cli (&r, NULL, NULL, "files", "test/gated-GGUF", "--no-fit", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "needs sign-in"));

  /* login reads the first line of a pipe; the token lands in the keyring
   * under the fake Hub's origin, and nowhere else. */
  run_cli (&r, NULL, "  " RUV_FAKE_HUB_TOKEN "  \nignored\n", "login", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, ruv_fake_hub.hub_url));
  t = lookup (ruv_fake_hub.hub_url);
  g_assert_cmpstr (t, ==, RUV_FAKE_HUB_TOKEN);
  ruv_hub_token_free (t);
  g_assert_null (lookup (ruv_fake_hub.cdn_url));

  /* `files` on the gated repository now works with no HF_TOKEN: the token
   * went to the Hub, and the CDN (header reads after the redirect) never
   * saw it. */
  ruv_fake_hub_reset ();
  run_cli (&r, NULL, NULL, "files", "test/gated-GGUF", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "gated-Q4_K_M.gguf"));
  g_assert_nonnull (strstr (r.out, "RAM fit: fits"));
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_auth_on_hub, >=, 2);   /* listing + resolve */
  g_assert_cmpuint (ruv_fake_hub.n_cdn, >=, 1);
  g_assert_cmpuint (ruv_fake_hub.n_auth_on_cdn, ==, 0);
  g_mutex_unlock (&ruv_fake_hub.lock);

  /* pull too; the database and the models folder never hold the token. */
  ruv_fake_hub_reset ();
  run_cli (&r, NULL, NULL, "pull", "test/gated-GGUF", NULL);
  g_assert_cmpint (r.status, ==, 0);
  target = g_build_filename (data_home, "ruvllm", "models", "test", "gated-GGUF",
                             "gated-Q4_K_M.gguf", NULL);
  g_assert_true (g_file_test (target, G_FILE_TEST_IS_REGULAR));
  db = g_build_filename (data_home, "ruvllm", "ruvllm.db", NULL);
  g_assert_true (g_file_test (db, G_FILE_TEST_IS_REGULAR));
  g_mutex_lock (&ruv_fake_hub.lock);
  g_assert_cmpuint (ruv_fake_hub.n_auth_on_cdn, ==, 0);
  g_mutex_unlock (&ruv_fake_hub.lock);
  assert_not_in_files (data_home, RUV_FAKE_HUB_TOKEN);

  /* HF_TOKEN wins over the keyring. */
  {
    const char *const wrong[] = { "HF_TOKEN=hf_wrong", NULL };

    run_cli (&r, wrong, NULL, "files", "test/gated-GGUF", "--no-fit", NULL);
    g_assert_cmpint (r.status, ==, 1);
    g_assert_nonnull (strstr (r.err, "gated"));
  }

  /* logout of another endpoint leaves this one's token. */
  run_cli (&r, NULL, NULL, "logout", "--endpoint", ruv_fake_hub.cdn_url, NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "No token was stored"));
  run_cli (&r, NULL, NULL, "files", "test/gated-GGUF", "--no-fit", NULL);
  g_assert_cmpint (r.status, ==, 0);

  run_cli (&r, NULL, NULL, "logout", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "removed"));
  g_assert_null (lookup (ruv_fake_hub.hub_url));
  run_cli (&r, NULL, NULL, "files", "test/gated-GGUF", "--no-fit", NULL);
  g_assert_cmpint (r.status, ==, 1);

  /* Bad input to login: nothing stored. */
  run_cli (&r, NULL, "", "login", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "empty"));
  run_cli (&r, NULL, "hf_a b\n", "login", NULL);
  g_assert_cmpint (r.status, ==, 1);
  run_cli (&r, NULL, "hf_x\n", "login", "--endpoint", "ftp://x", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_null (lookup (ruv_fake_hub.hub_url));
  run_clear (&r);
}

/* No Secret Service (no session bus): Hub commands go on without a token;
 * login says the keyring is unavailable. */
static void
test_cli_no_keyring (void)
{
  const char *const no_bus[] = {
    "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/ruvllm-test-bus", "DISPLAY=", NULL
  };
  Run r = { 0 };

  if (cli_path == NULL)
    {
      g_test_skip ("ruvllm-cli was not built");
      return;
    }
  ruv_fake_hub_reset ();
  run_cli (&r, no_bus, NULL, "files", "test/model-GGUF", "--no-fit", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "model-Q8_0.gguf"));
  run_cli (&r, no_bus, NULL, "files", "test/gated-GGUF", "--no-fit", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "needs sign-in"));
  run_cli (&r, no_bus, RUV_FAKE_HUB_TOKEN "\n", "login", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "keyring"));
  run_clear (&r);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  cli_path = ruv_test_cli_path ();
  data_home = g_dir_make_tmp ("ruv-hub-token-XXXXXX", NULL);
  g_assert_nonnull (data_home);
  g_setenv ("no_proxy", "*", TRUE);
  ruv_fake_hub_start ();

  g_test_add_func ("/engine/hub-token/origin", test_origin);
  g_test_add_func ("/engine/hub-token/store-lookup-clear", test_store_lookup_clear);
  g_test_add_func ("/engine/hub-token/bad-tokens", test_bad_tokens);
  g_test_add_func ("/engine/hub-token/async", test_async);
  g_test_add_func ("/engine/hub-token/cli-login", test_cli_login);
  g_test_add_func ("/engine/hub-token/cli-no-keyring", test_cli_no_keyring);
  ret = g_test_run ();

  ruv_fake_hub_stop ();
  ruv_test_rm_rf (data_home);
  g_free (data_home);
  g_free (cli_path);
  return ret;
}
