/* test-store.c — the SQLite store: tree operations, ratings, search, export and
 * import, migrations, crash loop with kill -9, corruption, disk full, read-only.
 * SPDX-License-Identifier: MIT
 *
 * XDG_DATA_HOME points at a fresh g_dir_make_tmp folder; each case works in its
 * own sub-folder. Children are forked only while the parent has no connection
 * open (SQLite's howtocorrupt list).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "ruv-error.h"
#include "ruv-test-util.h"
#include "ruv-store.h"

static char *tmp_root;

static char *
case_dir (const char *name)
{
  char *dir = g_build_filename (tmp_root, name, NULL);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  return dir;
}

static char *
case_db (const char *name)
{
  g_autofree char *dir = case_dir (name);

  return g_build_filename (dir, "ruvllm.db", NULL);
}

static sqlite3 *
raw_open (const char *path)
{
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  sqlite3_extended_result_codes (db, 1);
  sqlite3_busy_timeout (db, 5000);
  return db;
}

static gint64
raw_int (sqlite3    *db,
         const char *sql)
{
  sqlite3_stmt *st = NULL;
  gint64 v = -1;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &st, NULL), ==, SQLITE_OK);
  if (sqlite3_step (st) == SQLITE_ROW)
    v = sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  return v;
}

static char *
raw_text (sqlite3    *db,
          const char *sql)
{
  sqlite3_stmt *st = NULL;
  char *v = NULL;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &st, NULL), ==, SQLITE_OK);
  if (sqlite3_step (st) == SQLITE_ROW && sqlite3_column_text (st, 0) != NULL)
    v = g_strdup ((const char *) sqlite3_column_text (st, 0));
  sqlite3_finalize (st);
  return v;
}

static void
assert_quick_check_ok (const char *path)
{
  sqlite3 *db = raw_open (path);
  g_autofree char *r = raw_text (db, "PRAGMA quick_check");

  g_assert_cmpstr (r, ==, "ok");
  sqlite3_close (db);
}

static RuvStore *
open_store (const char *path)
{
  g_autoptr(GError) error = NULL;
  RuvStore *store = ruv_store_new_for_path (path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (store);
  return store;
}

static gint64
add (RuvStore   *store,
     gint64      session,
     gint64      parent,
     const char *role,
     const char *text)
{
  g_autoptr(GError) error = NULL;
  gint64 id = ruv_store_add_message (store, session, parent, role, text, NULL, NULL, TRUE,
                                     &error);

  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  return id;
}

/* The shown branch as "content|content|..." */
static char *
shown (RuvStore *store,
       gint64    session)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) chat = ruv_store_load_chat (store, session, &error);
  g_autoptr(GString) s = g_string_new (NULL);
  guint i;

  g_assert_no_error (error);
  for (i = 0; i < chat->len; i++)
    {
      RuvStoreMessage *m = g_ptr_array_index (chat, i);

      g_string_append_printf (s, "%s%s", i > 0 ? "|" : "", m->content);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* ------------------------------------------------------------------------ */

static void
test_default_location (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = ruv_store_new (&error);
  g_autofree char *expected = g_build_filename (tmp_root, "ruvllm", "ruvllm.db", NULL);

  g_assert_no_error (error);
  g_assert_cmpstr (ruv_store_get_path (store), ==, expected);
  g_assert_false (ruv_store_get_read_only (store));
  g_assert_null (ruv_store_get_recovery_report (store));
  g_assert_true (g_file_test (expected, G_FILE_TEST_IS_REGULAR));
  /* The daily backup was taken through the backup API. */
  {
    g_autoptr(GPtrArray) backups = ruv_store_list_backups (store);

    g_assert_cmpuint (backups->len, ==, 1);
    assert_quick_check_ok (g_ptr_array_index (backups, 0));
  }
}

static void
test_pragmas_and_foreign_keys (void)
{
  g_autofree char *path = case_db ("fk");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = open_store (path);
  gint64 s = ruv_store_create_session (store, NULL, "m", NULL, "{\"temperature\":0.5}", &error);
  gint64 a, b;
  sqlite3 *db;

  g_assert_no_error (error);
  a = add (store, s, 0, "user", "hello there");
  b = add (store, s, a, "assistant", "hi");
  g_assert_true (ruv_store_rate_message (store, b, RUV_RATING_UP, &error));
  g_assert_no_error (error);

  db = raw_open (path);
  {
    g_autofree char *mode = raw_text (db, "PRAGMA journal_mode");

    g_assert_cmpstr (mode, ==, "wal");
  }
  g_assert_cmpint (raw_int (db, "PRAGMA user_version"), ==, RUV_STORE_SCHEMA_VERSION);
  sqlite3_exec (db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
  /* An orphan is refused. */
  g_assert_cmpint (sqlite3_exec (db, "INSERT INTO messages (session_id, parent_id, role,"
                                 " created_us) VALUES (9999, NULL, 'user', 0)", NULL, NULL,
                                 NULL), ==, SQLITE_CONSTRAINT_FOREIGNKEY);
  sqlite3_close (db);

  /* Bad input is refused with clear codes. */
  g_assert_cmpint (ruv_store_add_message (store, s, 0, "wizard", "x", NULL, NULL, TRUE, &error),
                   ==, 0);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_cmpint (ruv_store_add_message (store, 777, 0, "user", "x", NULL, NULL, TRUE, &error),
                   ==, 0);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_cmpint (ruv_store_create_session (store, NULL, NULL, NULL, "[1]", &error), ==, 0);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);

  /* Deleting the session cascades to messages and ratings. */
  g_assert_true (ruv_store_delete_session (store, s, &error));
  g_assert_no_error (error);
  db = raw_open (path);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM messages"), ==, 0);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM ratings"), ==, 0);
  sqlite3_close (db);
  {
    g_autoptr(GPtrArray) hits = ruv_store_search (store, "hello", 10, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (hits->len, ==, 0);
  }
}

static void
test_sessions (void)
{
  g_autofree char *path = case_db ("sessions");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = open_store (path);
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(RuvStoreSession) got = NULL;
  gint64 s1, s2, s3;

  s1 = ruv_store_create_session (store, NULL, NULL, NULL, NULL, &error);
  s2 = ruv_store_create_session (store, "Named", "tiny", "Be brief.", NULL, &error);
  s3 = ruv_store_create_session (store, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  add (store, s1, 0, "user", "  How do I bake sourdough bread at home without a proper oven?\n"
       "Details follow.");
  got = ruv_store_get_session (store, s1, &error);
  g_assert_cmpstr (got->title, ==, "How do I bake sourdough bread at home without…");
  g_assert_true (got->title_auto);
  g_clear_pointer (&got, ruv_store_session_free);
  g_assert_true (ruv_store_rename_session (store, s1, "Bread", &error));
  add (store, s1, 0, "user", "another first message");
  got = ruv_store_get_session (store, s1, &error);
  g_assert_cmpstr (got->title, ==, "Bread");
  g_assert_false (got->title_auto);
  g_clear_pointer (&got, ruv_store_session_free);

  g_assert_true (ruv_store_set_session_pinned (store, s2, TRUE, &error));
  g_assert_true (ruv_store_set_session_archived (store, s3, TRUE, &error));
  g_assert_true (ruv_store_set_session_settings (store, s3, "m2", "sys", "{\"top_k\":4}",
                                                 &error));
  g_assert_no_error (error);
  list = ruv_store_list_sessions (store, FALSE, &error);
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_cmpint (((RuvStoreSession *) g_ptr_array_index (list, 0))->id, ==, s2);
  g_assert_cmpint (((RuvStoreSession *) g_ptr_array_index (list, 1))->id, ==, s1);
  g_clear_pointer (&list, g_ptr_array_unref);
  list = ruv_store_list_sessions (store, TRUE, &error);
  g_assert_cmpuint (list->len, ==, 3);
  got = ruv_store_get_session (store, s3, &error);
  g_assert_true (got->archived);
  g_assert_cmpstr (got->params_json, ==, "{\"top_k\":4}");
  g_assert_false (ruv_store_rename_session (store, 4242, "x", &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
}

static void
test_tree (void)
{
  g_autofree char *path = case_db ("tree");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = open_store (path);
  g_autoptr(GPtrArray) sib = NULL;
  g_autoptr(RuvStoreMessage) m = NULL;
  RuvMessageStats stats = { 12, 3, 45.5, 17.25, "stop" };
  gint64 s, u1, a1, u2, a2, u2b, a2b, a2c, copy, prev;
  char *t;
  int i;

  s = ruv_store_create_session (store, NULL, NULL, NULL, NULL, &error);
  u1 = add (store, s, 0, "user", "q1");
  a1 = add (store, s, u1, "assistant", "r1");
  u2 = add (store, s, a1, "user", "q2");
  /* Streaming answer: incomplete, updated, completed with stats. */
  a2 = ruv_store_add_message (store, s, u2, "assistant", "", "tiny", NULL, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (ruv_store_update_message_text (store, a2, "r", &error));
  g_assert_true (ruv_store_update_message_text (store, a2, "r2 partial", &error));
  m = ruv_store_get_message (store, a2, &error);
  g_assert_false (m->complete);
  g_assert_cmpstr (m->content, ==, "r2 partial");
  g_clear_pointer (&m, ruv_store_message_free);
  g_assert_false (ruv_store_rate_message (store, a2, RUV_RATING_UP, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_true (ruv_store_complete_message (store, a2, "r2", &stats, &error));
  g_assert_no_error (error);
  m = ruv_store_get_message (store, a2, &error);
  g_assert_true (m->complete);
  g_assert_cmpint (m->n_prompt, ==, 12);
  g_assert_cmpint (m->n_gen, ==, 3);
  g_assert_cmpfloat (m->ttft_ms, ==, 45.5);
  g_assert_cmpfloat (m->tokens_per_s, ==, 17.25);
  g_assert_cmpstr (m->finish_reason, ==, "stop");
  g_assert_cmpstr (m->model, ==, "tiny");
  g_clear_pointer (&m, ruv_store_message_free);
  g_assert_false (ruv_store_update_message_text (store, a2, "late", &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);

  t = shown (store, s);
  g_assert_cmpstr (t, ==, "q1|r1|q2|r2");
  g_free (t);

  /* Edit-and-resend: a sibling of q2 becomes the shown branch. */
  u2b = ruv_store_edit_message (store, u2, "q2 edited", &error);
  g_assert_no_error (error);
  t = shown (store, s);
  g_assert_cmpstr (t, ==, "q1|r1|q2 edited");
  g_free (t);
  a2b = add (store, s, u2b, "assistant", "r2b");
  /* Regenerate: a new, empty, incomplete sibling of r2b. */
  a2c = ruv_store_regenerate (store, a2b, NULL, NULL, &error);
  g_assert_no_error (error);
  m = ruv_store_get_message (store, a2c, &error);
  g_assert_false (m->complete);
  g_assert_cmpint (m->parent_id, ==, u2b);
  g_clear_pointer (&m, ruv_store_message_free);
  g_assert_true (ruv_store_complete_message (store, a2c, "r2c", NULL, &error));
  t = shown (store, s);
  g_assert_cmpstr (t, ==, "q1|r1|q2 edited|r2c");
  g_free (t);
  g_assert_cmpint (ruv_store_regenerate (store, u2b, NULL, NULL, &error), ==, 0);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);

  sib = ruv_store_list_siblings (store, u2, &error);
  g_assert_cmpuint (sib->len, ==, 2);
  g_assert_cmpint (((RuvStoreMessage *) g_ptr_array_index (sib, 0))->id, ==, u2);
  g_assert_cmpint (((RuvStoreMessage *) g_ptr_array_index (sib, 1))->id, ==, u2b);
  g_clear_pointer (&sib, g_ptr_array_unref);
  sib = ruv_store_list_children (store, s, 0, &error);
  g_assert_cmpuint (sib->len, ==, 1);
  g_clear_pointer (&sib, g_ptr_array_unref);

  /* Switch back to the first branch: follows it down to r2. */
  g_assert_true (ruv_store_switch_branch (store, u2, &error));
  t = shown (store, s);
  g_assert_cmpstr (t, ==, "q1|r1|q2|r2");
  g_free (t);
  g_assert_true (ruv_store_switch_branch (store, a1, &error));
  t = shown (store, s);
  g_assert_cmpstr (t, ==, "q1|r1|q2 edited|r2c");
  g_free (t);

  /* Copy a branch into a new chat, ratings included. */
  g_assert_true (ruv_store_rate_message (store, a1, RUV_RATING_DOWN, &error));
  copy = ruv_store_copy_branch (store, a2, NULL, &error);
  g_assert_no_error (error);
  t = shown (store, copy);
  g_assert_cmpstr (t, ==, "q1|r1|q2|r2");
  g_free (t);
  {
    g_autoptr(GPtrArray) chat = ruv_store_load_chat (store, copy, &error);

    g_assert_cmpint (((RuvStoreMessage *) g_ptr_array_index (chat, 1))->rating, ==,
                     RUV_RATING_DOWN);
    g_assert_cmpint (((RuvStoreMessage *) g_ptr_array_index (chat, 3))->n_gen, ==, 3);
  }

  /* Delete with descendants: the shown branch moves to the parent. */
  g_assert_true (ruv_store_delete_message (store, u2b, &error));
  g_assert_no_error (error);
  t = shown (store, s);
  g_assert_cmpstr (t, ==, "q1|r1");
  g_free (t);
  g_assert_null (ruv_store_get_message (store, a2c, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_clear_error (&error);
  m = ruv_store_get_message (store, a2, &error);
  g_assert_nonnull (m);
  g_clear_pointer (&m, ruv_store_message_free);
  /* The copy is untouched. */
  t = shown (store, copy);
  g_assert_cmpstr (t, ==, "q1|r1|q2|r2");
  g_free (t);

  /* A 3000-deep chain deletes in one statement (no cascade per level). */
  prev = a2;
  for (i = 0; i < 3000; i++)
    prev = add (store, s, prev, i % 2 ? "assistant" : "user", "deep");
  t = shown (store, s);
  g_assert_cmpuint (strlen (t), ==, strlen ("q1|r1|q2|r2") + 3000 * strlen ("|deep"));
  g_free (t);
  g_assert_true (ruv_store_delete_message (store, u1, &error));
  g_assert_no_error (error);
  t = shown (store, s);
  g_assert_cmpstr (t, ==, "");
  g_free (t);
  assert_quick_check_ok (path);
}

static void
test_ratings_and_snapshots (void)
{
  g_autofree char *path = case_db ("ratings");
  g_autofree char *file = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = open_store (path);
  g_autoptr(GPtrArray) hist = NULL;
  g_autoptr(GPtrArray) snaps = NULL;
  g_autoptr(GBytes) w1 = g_bytes_new_static ("weights-1", 9);
  g_autoptr(RuvStoreSnapshot) got = NULL;
  RuvStoreRatingRecord *r;
  gint64 s, u, a, b, snap1, snap2, snap3;
  sqlite3 *db;

  s = ruv_store_create_session (store, NULL, NULL, NULL, NULL, &error);
  u = add (store, s, 0, "user", "q");
  a = add (store, s, u, "assistant", "first answer");
  b = add (store, s, u, "assistant", "second answer");

  g_assert_true (ruv_store_rate_message (store, a, RUV_RATING_UP, &error));
  g_assert_true (ruv_store_rate_message (store, a, RUV_RATING_DOWN, &error));
  g_assert_true (ruv_store_rate_message (store, b, RUV_RATING_UP, &error));
  g_assert_true (ruv_store_rate_message (store, b, RUV_RATING_CLEARED, &error));
  g_assert_no_error (error);
  db = raw_open (path);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM ratings"), ==, 2);
  sqlite3_close (db);

  snap1 = ruv_store_add_snapshot (store, "tiny", 0, w1, NULL, NULL, "first", &error);
  g_assert_no_error (error);
  file = g_build_filename (tmp_root, "ratings", "adapter.bin", NULL);
  g_assert_true (g_file_set_contents (file, "abc", 3, NULL));
  snap2 = ruv_store_add_snapshot (store, "tiny", snap1, NULL, file,
                                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                                  NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ruv_store_add_snapshot (store, "other", snap1, w1, NULL, NULL, NULL, &error),
                   ==, 0);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_cmpint (ruv_store_add_snapshot (store, "tiny", 0, w1, NULL, "00", NULL, &error), ==, 0);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  snap3 = ruv_store_add_snapshot (store, "other", 0, w1, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  snaps = ruv_store_list_snapshots (store, "tiny", &error);
  g_assert_cmpuint (snaps->len, ==, 2);
  g_assert_cmpint (((RuvStoreSnapshot *) g_ptr_array_index (snaps, 0))->id, ==, snap2);
  g_assert_cmpint (((RuvStoreSnapshot *) g_ptr_array_index (snaps, 0))->parent_id, ==, snap1);
  g_assert_cmpint (((RuvStoreSnapshot *) g_ptr_array_index (snaps, 0))->size, ==, 3);
  got = ruv_store_get_snapshot (store, snap1, &error);
  g_assert_true (g_bytes_equal (got->data, w1));
  g_assert_cmpstr (got->sha256, ==, g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                                 (const guchar *) "weights-1", 9));
  g_assert_cmpint (snap3, >, 0);

  g_assert_true (ruv_store_record_adaptation (store, a, RUV_ADAPTATION_APPLIED, 1500, 2.5, 2.25,
                                              snap2, &error));
  g_assert_true (ruv_store_record_adaptation (store, b, RUV_ADAPTATION_SKIPPED, -1, NAN, NAN, 0,
                                              &error));
  g_assert_no_error (error);
  g_assert_false (ruv_store_record_adaptation (store, u, RUV_ADAPTATION_SKIPPED, 1, 0, 0, 0,
                                               &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (ruv_store_record_adaptation (store, a, RUV_ADAPTATION_APPLIED, 1, 0, 0, 999,
                                               &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_clear_error (&error);

  hist = ruv_store_rating_history (store, 0, &error);
  g_assert_cmpuint (hist->len, ==, 2);
  r = g_ptr_array_index (hist, 0);
  g_assert_cmpint (r->message_id, ==, b);
  g_assert_cmpint (r->rating, ==, RUV_RATING_CLEARED);
  g_assert_cmpint (r->outcome, ==, RUV_ADAPTATION_SKIPPED);
  g_assert_true (isnan (r->loss_before));
  r = g_ptr_array_index (hist, 1);
  g_assert_cmpint (r->rating, ==, RUV_RATING_DOWN);
  g_assert_cmpint (r->outcome, ==, RUV_ADAPTATION_APPLIED);
  g_assert_cmpint (r->latency_us, ==, 1500);
  g_assert_cmpfloat (r->loss_after, ==, 2.25);
  g_assert_cmpint (r->snapshot_id, ==, snap2);
  g_assert_cmpstr (r->excerpt, ==, "first answer");
  g_clear_pointer (&hist, g_ptr_array_unref);

  /* Re-rating resets the adaptation outcome (a new rating, not yet used). */
  g_assert_true (ruv_store_rate_message (store, a, RUV_RATING_UP, &error));
  hist = ruv_store_rating_history (store, 1, &error);
  g_assert_cmpuint (hist->len, ==, 1);
  r = g_ptr_array_index (hist, 0);
  g_assert_cmpint (r->message_id, ==, a);
  g_assert_cmpint (r->outcome, ==, RUV_ADAPTATION_NONE);
}

static void
test_models (void)
{
  g_autofree char *path = case_db ("models");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = open_store (path);
  g_autoptr(GPtrArray) list = NULL;
  RuvStoreModel m = { 0, (char *) "org/Tiny-GGUF", (char *) "tiny.Q4_0.gguf", NULL, 1000, NULL,
                      (char *) "queued", 0, 0, NULL };
  RuvStoreModel *got;
  gint64 id, id2;

  id = ruv_store_upsert_model (store, &m, &error);
  g_assert_no_error (error);
  g_assert_true (ruv_store_set_model_progress (store, id, "downloading", 500, NULL, &error));
  m.state = NULL;
  m.size = -1;
  m.path = (char *) "/models/tiny.gguf";
  id2 = ruv_store_upsert_model (store, &m, &error);
  g_assert_cmpint (id2, ==, id);
  g_assert_true (ruv_store_touch_model (store, id, &error));
  g_assert_no_error (error);
  list = ruv_store_list_models (store, &error);
  g_assert_cmpuint (list->len, ==, 1);
  got = g_ptr_array_index (list, 0);
  g_assert_cmpstr (got->state, ==, "downloading");
  g_assert_cmpint (got->bytes_done, ==, 500);
  g_assert_cmpint (got->size, ==, 1000);
  g_assert_cmpstr (got->path, ==, "/models/tiny.gguf");
  g_assert_cmpint (got->last_used_us, >, 0);
  g_assert_false (ruv_store_set_model_progress (store, id, "exploded", 0, NULL, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_false (ruv_store_touch_model (store, 99, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
}

static void
test_search (void)
{
  g_autofree char *path = case_db ("search");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = open_store (path);
  g_autoptr(GPtrArray) hits = NULL;
  RuvStoreSearchHit *h;
  gint64 s, u, a;

  s = ruv_store_create_session (store, "Kitchen", NULL, NULL, NULL, &error);
  u = add (store, s, 0, "user", "How long should sourdough proof?");
  a = ruv_store_add_message (store, s, u, "assistant", "", NULL, NULL, FALSE, &error);
  g_assert_true (ruv_store_update_message_text (store, a, "Usually overnight in the", &error));
  g_assert_true (ruv_store_complete_message (store, a, "Usually overnight in the fridge, "
                                             "about twelve hours.", NULL, &error));
  g_assert_no_error (error);

  hits = ruv_store_search (store, "sourd", 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (hits->len, ==, 1);
  h = g_ptr_array_index (hits, 0);
  g_assert_cmpint (h->session_id, ==, s);
  g_assert_cmpint (h->message_id, ==, u);
  g_assert_cmpstr (h->session_title, ==, "Kitchen");
  g_assert_nonnull (strstr (h->snippet, "[sourdough]"));
  g_clear_pointer (&hits, g_ptr_array_unref);

  hits = ruv_store_search (store, "fridge twelve", 10, &error);
  g_assert_cmpuint (hits->len, ==, 1);
  g_assert_cmpint (((RuvStoreSearchHit *) g_ptr_array_index (hits, 0))->message_id, ==, a);
  g_clear_pointer (&hits, g_ptr_array_unref);
  /* Query syntax in the input is just text. */
  hits = ruv_store_search (store, "\"fridge OR NEAR( * ) col:", 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (hits->len, ==, 0);
  g_clear_pointer (&hits, g_ptr_array_unref);

  g_assert_true (ruv_store_delete_message (store, a, &error));
  hits = ruv_store_search (store, "fridge", 10, &error);
  g_assert_cmpuint (hits->len, ==, 0);
  {
    sqlite3 *db = raw_open (path);

    g_assert_cmpint (sqlite3_exec (db, "INSERT INTO messages_fts(messages_fts)"
                                   " VALUES ('integrity-check')", NULL, NULL, NULL), ==,
                     SQLITE_OK);
    sqlite3_close (db);
  }
}

/* ------------------------------------------------------------------------ */

static void
fill_rich_store (RuvStore *store)
{
  g_autoptr(GError) error = NULL;
  RuvMessageStats stats = { 20, 7, 123.25, 9.5, "length" };
  gint64 s1, s2, u, a, a2, b;

  s1 = ruv_store_create_session (store, NULL, "tiny-q4", "You are terse.",
                                 "{\"temperature\":0.7,\"stop\":[\"\\n\\n\"]}", &error);
  g_assert_no_error (error);
  u = add (store, s1, 0, "user", "Explain \"WAL\" in one line ✓");
  a = ruv_store_add_message (store, s1, u, "assistant", "", "tiny-q4", "{\"seed\":42}", FALSE,
                             &error);
  g_assert_true (ruv_store_complete_message (store, a, "Write-ahead logging.\n\n```sql\nPRAGMA "
                                             "journal_mode=WAL;\n```", &stats, &error));
  g_assert_true (ruv_store_rate_message (store, a, RUV_RATING_UP, &error));
  g_assert_true (ruv_store_record_adaptation (store, a, RUV_ADAPTATION_APPLIED, 2100, 1.5, 1.25,
                                              0, &error));
  a2 = ruv_store_regenerate (store, a, NULL, NULL, &error);
  g_assert_true (ruv_store_complete_message (store, a2, "WAL: log first.", NULL, &error));
  g_assert_true (ruv_store_rate_message (store, a2, RUV_RATING_DOWN, &error));
  b = ruv_store_edit_message (store, u, "Explain WAL", &error);
  add (store, s1, b, "assistant", "Sure.");
  g_assert_true (ruv_store_switch_branch (store, a2, &error));
  g_assert_true (ruv_store_set_session_pinned (store, s1, TRUE, &error));
  s2 = ruv_store_create_session (store, "Empty archived", NULL, NULL, NULL, &error);
  g_assert_true (ruv_store_set_session_archived (store, s2, TRUE, &error));
  g_assert_no_error (error);
}

static void
test_export_import (void)
{
  g_autofree char *path_a = case_db ("export-a");
  g_autofree char *path_b = case_db ("export-b");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) a = open_store (path_a);
  g_autoptr(RuvStore) b = open_store (path_b);
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autofree char *json1 = NULL, *json2 = NULL, *md = NULL, *one = NULL, *one_b = NULL;
  gint n;

  fill_rich_store (a);
  json1 = ruv_store_export (a, 0, RUV_STORE_FORMAT_JSON, &error);
  g_assert_no_error (error);
  n = ruv_store_import_json (b, json1, -1, ids, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 2);
  g_assert_cmpuint (ids->len, ==, 2);
  json2 = ruv_store_export (b, 0, RUV_STORE_FORMAT_JSON, &error);
  g_assert_no_error (error);
  /* Round trip: identical, branches, stats, ratings, outcomes and all. */
  g_assert_cmpstr (json1, ==, json2);
  g_assert_nonnull (strstr (json1, "\"applied\""));
  g_assert_nonnull (strstr (json1, "\"down\""));

  one = ruv_store_export (a, 1, RUV_STORE_FORMAT_JSON, &error);
  one_b = ruv_store_export (b, g_array_index (ids, gint64, 0), RUV_STORE_FORMAT_JSON, &error);
  g_assert_cmpstr (one, ==, one_b);

  md = ruv_store_export (a, 0, RUV_STORE_FORMAT_MARKDOWN, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (md, "# Explain \"WAL\" in one line ✓"));
  g_assert_nonnull (strstr (md, "WAL: log first."));       /* the shown branch */
  g_assert_null (strstr (md, "Sure."));                    /* not shown */
  g_assert_nonnull (strstr (md, "# Empty archived"));
  g_assert_null (ruv_store_export (a, 999, RUV_STORE_FORMAT_JSON, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
}

static void
test_import_hostile (void)
{
  static const char *const bad[] = {
    "",
    "not json at all",
    "[]",
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":{}}",
    "{\"format\":\"something-else\",\"version\":1,\"sessions\":[]}",
    "{\"format\":\"ruvllm-chats\",\"version\":2,\"sessions\":[]}",
    "{\"format\":\"ruvllm-chats\",\"version\":\"1\",\"sessions\":[]}",
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[42]}",
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"created_us\":1,"
    "\"updated_us\":1,\"messages\":[]}]}",
    /* role of the wrong type */
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"title\":\"t\",\"created_us\":1,"
    "\"updated_us\":1,\"messages\":[{\"id\":1,\"role\":5,\"content\":\"x\",\"created_us\":1}]}]}",
    /* parent pointing nowhere */
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"title\":\"t\",\"created_us\":1,"
    "\"updated_us\":1,\"messages\":[{\"id\":1,\"parent\":99,\"role\":\"user\",\"content\":\"x\","
    "\"created_us\":1}]}]}",
    /* a cycle */
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"title\":\"t\",\"created_us\":1,"
    "\"updated_us\":1,\"messages\":[{\"id\":1,\"parent\":2,\"role\":\"user\",\"content\":\"x\","
    "\"created_us\":1},{\"id\":2,\"parent\":1,\"role\":\"user\",\"content\":\"y\","
    "\"created_us\":1}]}]}",
    /* its own parent */
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"title\":\"t\",\"created_us\":1,"
    "\"updated_us\":1,\"messages\":[{\"id\":1,\"parent\":1,\"role\":\"user\",\"content\":\"x\","
    "\"created_us\":1}]}]}",
    /* duplicate ids */
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"title\":\"t\",\"created_us\":1,"
    "\"updated_us\":1,\"messages\":[{\"id\":1,\"role\":\"user\",\"content\":\"x\","
    "\"created_us\":1},{\"id\":1,\"role\":\"user\",\"content\":\"y\",\"created_us\":1}]}]}",
    /* absurd numbers */
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"title\":\"t\",\"created_us\":1e400,"
    "\"updated_us\":1,\"messages\":[]}]}",
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"title\":\"t\",\"created_us\":1,"
    "\"updated_us\":1,\"messages\":[{\"id\":1,\"role\":\"assistant\",\"content\":\"x\","
    "\"created_us\":1,\"n_gen\":-5}]}]}",
    /* a rating that is not one */
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"title\":\"t\",\"created_us\":1,"
    "\"updated_us\":1,\"messages\":[{\"id\":1,\"role\":\"assistant\",\"content\":\"x\","
    "\"created_us\":1,\"complete\":true,\"rating\":{\"value\":\"sideways\",\"rated_us\":1}}]}]}",
    /* leaf pointing nowhere; the first chat is fine: nothing may be kept */
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"title\":\"ok\",\"created_us\":1,"
    "\"updated_us\":1,\"messages\":[]},{\"title\":\"t\",\"created_us\":1,"
    "\"updated_us\":1,\"leaf\":7,\"messages\":[]}]}",
    /* invalid UTF-8 */
    "{\"format\":\"ruvllm-chats\",\"version\":1,\"sessions\":[{\"title\":\"\xff\xfe\"}]}",
  };
  g_autofree char *path = case_db ("hostile");
  g_autoptr(RuvStore) store = open_store (path);
  g_autoptr(GString) deep = g_string_new ("{\"format\":\"ruvllm-chats\",\"version\":1,"
                                          "\"sessions\":");
  g_autoptr(GPtrArray) list = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      gint n = ruv_store_import_json (store, bad[i], -1, NULL, &error);

      g_test_message ("hostile %u: %s", i, error != NULL ? error->message : "(accepted)");
      g_assert_cmpint (n, ==, -1);
      g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
    }
  /* Deep nesting never reaches the recursive parser. */
  for (i = 0; i < 200000; i++)
    g_string_append_c (deep, '[');
  {
    g_autoptr(GError) error = NULL;

    g_assert_cmpint (ruv_store_import_json (store, deep->str, (gssize) deep->len, NULL, &error),
                     ==, -1);
    g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
    g_assert_nonnull (strstr (error->message, "nested"));
  }
  /* An embedded NUL within the given length. */
  {
    g_autoptr(GError) error = NULL;

    g_assert_cmpint (ruv_store_import_json (store, "{}\0{}", 5, NULL, &error), ==, -1);
    g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  }
  list = ruv_store_list_sessions (store, TRUE, NULL);
  g_assert_cmpuint (list->len, ==, 0);
}

/* ------------------------------------------------------------------------ */
/* Migrations: the v1 schema as released (a copy of migration 1). */

static const char schema_v1[] =
  "CREATE TABLE sessions ("
  "  id INTEGER PRIMARY KEY,"
  "  title TEXT NOT NULL DEFAULT '',"
  "  title_auto INTEGER NOT NULL DEFAULT 1,"
  "  created_us INTEGER NOT NULL,"
  "  updated_us INTEGER NOT NULL,"
  "  pinned INTEGER NOT NULL DEFAULT 0,"
  "  archived INTEGER NOT NULL DEFAULT 0,"
  "  model TEXT,"
  "  system_prompt TEXT,"
  "  params_json TEXT,"
  "  leaf_id INTEGER REFERENCES messages(id) ON DELETE SET NULL"
  ");"
  "CREATE TABLE messages ("
  "  id INTEGER PRIMARY KEY,"
  "  session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
  "  parent_id INTEGER REFERENCES messages(id),"
  "  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),"
  "  content TEXT NOT NULL DEFAULT '',"
  "  created_us INTEGER NOT NULL,"
  "  model TEXT,"
  "  params_json TEXT,"
  "  n_prompt INTEGER,"
  "  n_gen INTEGER,"
  "  ttft_ms REAL,"
  "  tokens_per_s REAL,"
  "  finish_reason TEXT,"
  "  complete INTEGER NOT NULL DEFAULT 1"
  ");"
  "CREATE INDEX messages_parent ON messages(parent_id);"
  "CREATE INDEX messages_session ON messages(session_id, parent_id);"
  "CREATE TABLE ratings ("
  "  message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,"
  "  rating INTEGER NOT NULL CHECK (rating IN (-1, 0, 1)),"
  "  rated_us INTEGER NOT NULL"
  ");";

static const char data_v1[] =
  "INSERT INTO sessions (id, title, created_us, updated_us, leaf_id) VALUES (1, 'old', 1, 2, 2);"
  "INSERT INTO messages (id, session_id, parent_id, role, content, created_us)"
  "  VALUES (1, 1, NULL, 'user', 'an ancient question about zeppelins', 1);"
  "INSERT INTO messages (id, session_id, parent_id, role, content, created_us)"
  "  VALUES (2, 1, 1, 'assistant', 'an ancient answer', 2);"
  "INSERT INTO ratings VALUES (2, 1, 3);";

static void
make_v1 (const char *path,
         const char *extra)
{
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, schema_v1, NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, data_v1, NULL, NULL, NULL), ==, SQLITE_OK);
  if (extra != NULL)
    g_assert_cmpint (sqlite3_exec (db, extra, NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA user_version=1", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
}

static char *
schema_dump (const char *path)
{
  sqlite3 *db = raw_open (path);
  char *s = raw_text (db, "SELECT group_concat(type || ' ' || name || ' ' || COALESCE(sql, ''),"
                      " char(10)) FROM (SELECT * FROM sqlite_schema ORDER BY name)");

  sqlite3_close (db);
  return s;
}

static void
test_migrate (void)
{
  g_autofree char *path_v1 = case_db ("migrate-v1");
  g_autofree char *path_v0 = case_db ("migrate-v0");
  g_autofree char *path_bad = case_db ("migrate-fail");
  g_autofree char *dump_new = NULL, *dump_old = NULL, *t = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) hits = NULL;
  g_autoptr(GPtrArray) hist = NULL;
  RuvStore *store;
  sqlite3 *db;

  /* v0 (nothing) -> newest. */
  store = open_store (path_v0);
  g_object_unref (store);
  /* v1 -> newest, data kept and indexed. */
  make_v1 (path_v1, NULL);
  store = open_store (path_v1);
  t = shown (store, 1);
  g_assert_cmpstr (t, ==, "an ancient question about zeppelins|an ancient answer");
  hits = ruv_store_search (store, "zeppelin", 5, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (hits->len, ==, 1);
  g_assert_true (ruv_store_record_adaptation (store, 2, RUV_ADAPTATION_SKIPPED, 5, NAN, NAN, 0,
                                              &error));
  g_assert_no_error (error);
  hist = ruv_store_rating_history (store, 0, &error);
  g_assert_cmpuint (hist->len, ==, 1);
  g_object_unref (store);
  /* The migrated schema is exactly a new one. */
  dump_new = schema_dump (path_v0);
  dump_old = schema_dump (path_v1);
  g_assert_cmpstr (dump_old, ==, dump_new);

  /* D10: a migration that fails halfway (a table in the way) rolls back whole. */
  make_v1 (path_bad, "CREATE TABLE models (x)");
  store = ruv_store_new_for_path (path_bad, &error);
  g_assert_null (store);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_STORAGE);
  g_test_message ("failed migration: %s", error->message);
  db = raw_open (path_bad);
  g_assert_cmpint (raw_int (db, "PRAGMA user_version"), ==, 1);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM sqlite_schema WHERE name ="
                            " 'adapter_snapshots'"), ==, 0);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM messages"), ==, 2);
  sqlite3_close (db);
}

static void
test_newer_version (void)
{
  g_autofree char *path = case_db ("newer");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = NULL;
  RuvStore *store;
  sqlite3 *db;

  store = open_store (path);
  ruv_store_create_session (store, "kept", NULL, NULL, NULL, &error);
  g_object_unref (store);
  db = raw_open (path);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA user_version=999", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  store = open_store (path);
  g_assert_true (ruv_store_get_read_only (store));
  g_assert_nonnull (strstr (ruv_store_get_read_only_reason (store), "newer"));
  list = ruv_store_list_sessions (store, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 1);
  g_assert_cmpint (ruv_store_create_session (store, "no", NULL, NULL, NULL, &error), ==, 0);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_STORAGE);
  g_assert_nonnull (strstr (error->message, path));
  g_object_unref (store);
  db = raw_open (path);
  g_assert_cmpint (raw_int (db, "PRAGMA user_version"), ==, 999);
  sqlite3_close (db);
}

static void
test_data_dir_blocked (void)
{
  g_autofree char *dir = case_dir ("blocked");
  g_autofree char *file = g_build_filename (dir, "ruvllm", NULL);
  g_autofree char *path = g_build_filename (file, "ruvllm.db", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = NULL;

  g_assert_true (g_file_set_contents (file, "not a folder", -1, NULL));
  store = ruv_store_new_for_path (path, &error);
  g_assert_null (store);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_STORAGE);
  g_assert_nonnull (strstr (error->message, file));
}

/* ------------------------------------------------------------------------ */
/* D8: a deferred read→write upgrade gets SQLITE_BUSY_SNAPSHOT; the store never
 * does, because every write starts with BEGIN IMMEDIATE. */

typedef struct
{
  const char *path;
  gint64      session;
  guint       failures;
} Hammer;

static gpointer
hammer_thread (gpointer data)
{
  Hammer *h = data;
  g_autoptr(RuvStore) store = open_store (h->path);
  int i;

  for (i = 0; i < 60; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(RuvStoreSession) s = ruv_store_get_session (store, h->session, &error);
      gint64 id = s != NULL ? ruv_store_add_message (store, h->session, s->leaf_id, "user", "x",
                                                     NULL, NULL, TRUE, &error) : 0;

      if (id <= 0 || !ruv_store_rate_message (store, id, RUV_RATING_UP, &error))
        {
          g_test_message ("concurrent write failed: %s", error->message);
          h->failures++;
        }
    }
  return NULL;
}

static void
test_busy_snapshot (void)
{
  g_autofree char *path = case_db ("busy");
  g_autoptr(GError) error = NULL;
  Hammer h1 = { 0 }, h2 = { 0 };
  GThread *t1, *t2;
  RuvStore *store;
  sqlite3 *a, *b;
  gint64 s;
  int rc;

  store = open_store (path);
  s = ruv_store_create_session (store, NULL, NULL, NULL, NULL, &error);
  g_object_unref (store);

  /* The hazard exists (so this test can see it). */
  a = raw_open (path);
  b = raw_open (path);
  g_assert_cmpint (sqlite3_exec (a, "BEGIN", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (raw_int (a, "SELECT count(*) FROM sessions"), ==, 1);
  g_assert_cmpint (sqlite3_exec (b, "UPDATE sessions SET pinned = 1", NULL, NULL, NULL), ==,
                   SQLITE_OK);
  rc = sqlite3_exec (a, "UPDATE sessions SET archived = 1", NULL, NULL, NULL);
  g_assert_cmpint (rc, ==, SQLITE_BUSY_SNAPSHOT);
  sqlite3_exec (a, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close (a);
  sqlite3_close (b);

  /* Two stores (two connections) writing at once: no failure at all. */
  h1.path = h2.path = path;
  h1.session = h2.session = s;
  t1 = g_thread_new ("hammer-1", hammer_thread, &h1);
  t2 = g_thread_new ("hammer-2", hammer_thread, &h2);
  g_thread_join (t1);
  g_thread_join (t2);
  g_assert_cmpuint (h1.failures + h2.failures, ==, 0);
  a = raw_open (path);
  g_assert_cmpint (raw_int (a, "SELECT count(*) FROM ratings"), ==, 120);
  sqlite3_close (a);
}

/* ------------------------------------------------------------------------ */
/* D3: kill -9 in a loop while streaming and rating. */

typedef struct
{
  gint64 kind;     /* 1: message completed (value: its length); 2: rating committed
                    * (value); 3: rating about to be written (value) */
  gint64 id;
  gint64 value;
} Report;

static void
report (int     fd,
        gint64  kind,
        gint64  id,
        gint64  value)
{
  Report r = { kind, id, value };

  /* One write of < PIPE_BUF bytes is atomic: the parent never sees half. */
  if (write (fd, &r, sizeof r) != sizeof r)
    _exit (5);
}

G_GNUC_NORETURN static void
crash_child (const char *path,
             int         fd,
             guint32     seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  RuvStore *store = ruv_store_new_for_path (path, NULL);
  GPtrArray *sessions;
  gint64 session, leaf, prev_answer = 0;

  if (store == NULL)
    _exit (3);
  sessions = ruv_store_list_sessions (store, TRUE, NULL);
  if (sessions == NULL)
    _exit (4);
  if (sessions->len == 0 || g_rand_int_range (rand, 0, 8) == 0)
    {
      session = ruv_store_create_session (store, NULL, NULL, NULL, NULL, NULL);
      leaf = 0;
    }
  else
    {
      RuvStoreSession *s = g_ptr_array_index (sessions, 0);

      session = s->id;
      leaf = s->leaf_id;
    }
  for (;;)
    {
      GString *text = g_string_new (NULL);
      RuvMessageStats stats = { 5, 0, 1.0, 100.0, "stop" };
      gint64 user, answer;
      int k, n = g_rand_int_range (rand, 1, 6);

      user = ruv_store_add_message (store, session, leaf, "user", "tell me more", NULL, NULL,
                                    TRUE, NULL);
      if (user <= 0)
        _exit (6);
      answer = ruv_store_add_message (store, session, user, "assistant", "", "m", NULL, FALSE,
                                      NULL);
      if (answer <= 0)
        _exit (7);
      for (k = 0; k < n; k++)
        {
          g_string_append (text, "token token token ");
          if (!ruv_store_update_message_text (store, answer, text->str, NULL))
            _exit (8);
        }
      stats.n_gen = n * 3;
      if (!ruv_store_complete_message (store, answer, text->str, &stats, NULL))
        _exit (9);
      report (fd, 1, answer, (gint64) text->len);
      if (!ruv_store_rate_message (store, answer, g_rand_boolean (rand) ? 1 : -1, NULL))
        _exit (10);
      /* Re-rate the previous answer sometimes: replace or clear. */
      if (prev_answer > 0 && g_rand_int_range (rand, 0, 3) == 0)
        {
          int v = g_rand_int_range (rand, -1, 2);

          report (fd, 3, prev_answer, v);
          if (!ruv_store_rate_message (store, prev_answer, v, NULL))
            _exit (11);
          report (fd, 2, prev_answer, v);
        }
      {
        g_autoptr(RuvStoreMessage) m = ruv_store_get_message (store, answer, NULL);

        if (m == NULL)
          _exit (12);
        report (fd, 2, answer, m->rating);
      }
      prev_answer = answer;
      leaf = answer;
      g_string_free (text, TRUE);
    }
}

static void
check_invariants (const char *path,
                  GHashTable *completed,
                  GHashTable *ratings,
                  GHashTable *pending)
{
  sqlite3 *db = raw_open (path);
  g_autofree char *qc = raw_text (db, "PRAGMA quick_check");
  GHashTableIter it;
  gpointer k, v;

  g_assert_cmpstr (qc, ==, "ok");
  if (raw_int (db, "PRAGMA user_version") < RUV_STORE_SCHEMA_VERSION)
    {
      /* Killed before the first migration committed: nothing was promised. */
      g_assert_cmpuint (g_hash_table_size (completed), ==, 0);
      sqlite3_close (db);
      return;
    }
  /* At most the one streaming message is incomplete. */
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM messages WHERE complete = 0"), <=, 1);
  /* Every rating's message exists and is complete. */
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM ratings r LEFT JOIN messages m"
                            " ON m.id = r.message_id WHERE m.id IS NULL OR m.complete = 0"),
                   ==, 0);
  /* No message without its parent or session. */
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM messages c WHERE c.parent_id IS NOT NULL"
                            " AND NOT EXISTS (SELECT 1 FROM messages p WHERE p.id = c.parent_id)"),
                   ==, 0);
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM pragma_foreign_key_check"), ==, 0);
  /* The search index matches the text. */
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA trusted_schema=ON; INSERT INTO"
                                 " messages_fts(messages_fts) VALUES ('integrity-check')",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  /* Nothing reported as committed is lost. */
  g_hash_table_iter_init (&it, completed);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      g_autofree char *sql = g_strdup_printf ("SELECT length(content) FROM messages"
                                              " WHERE id = %" G_GINT64_FORMAT " AND complete = 1",
                                              *(gint64 *) k);

      g_assert_cmpint (raw_int (db, sql), ==, *(gint64 *) v);
    }
  g_hash_table_iter_init (&it, ratings);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      g_autofree char *sql = g_strdup_printf ("SELECT rating FROM ratings"
                                              " WHERE message_id = %" G_GINT64_FORMAT,
                                              *(gint64 *) k);

      gint64 *p = g_hash_table_lookup (pending, k);
      gint64 got = raw_int (db, sql);

      /* A re-rating killed between its commit and its report may show. */
      if (p == NULL || got != *p)
        g_assert_cmpint (got, ==, *(gint64 *) v);
    }
  sqlite3_close (db);
}

static void
test_crash_loop (void)
{
  g_autofree char *path = case_db ("crash");
  g_autoptr(GHashTable) completed = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                           g_free);
  g_autoptr(GHashTable) ratings = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                         g_free);
  g_autoptr(GHashTable) pending = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free,
                                                         g_free);
  GRand *rand = g_rand_new_with_seed (20240611);
  guint kills = g_test_slow () ? 1000 : 200, i, early = 0;

  for (i = 0; i < kills; i++)
    {
      int fds[2], status;
      pid_t pid;
      Report r;

      g_assert_cmpint (pipe (fds), ==, 0);
      pid = fork ();
      g_assert_cmpint (pid, >=, 0);
      if (pid == 0)
        {
          close (fds[0]);
          crash_child (path, fds[1], g_rand_int (rand));
        }
      close (fds[1]);
      g_usleep (g_rand_int_range (rand, 0, 40000));
      kill (pid, SIGKILL);
      g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
      if (!WIFSIGNALED (status))
        {
          g_test_message ("child exited early with status %d", WEXITSTATUS (status));
          early++;
        }
      while (read (fds[0], &r, sizeof r) == sizeof r)
        {
          GHashTable *t = r.kind == 1 ? completed : r.kind == 2 ? ratings : pending;

          if (r.kind == 2)
            g_hash_table_remove (pending, &r.id);
          g_hash_table_replace (t, g_memdup2 (&r.id, sizeof r.id),
                                g_memdup2 (&r.value, sizeof r.value));
        }
      close (fds[0]);
      check_invariants (path, completed, ratings, pending);
    }
  g_rand_free (rand);
  g_assert_cmpuint (early, ==, 0);
  g_test_message ("%u kills, %u completed answers and %u ratings checked", kills,
                  g_hash_table_size (completed), g_hash_table_size (ratings));
  g_assert_cmpuint (g_hash_table_size (completed), >, 0);
  {
    g_autoptr(RuvStore) store = open_store (path);

    g_assert_null (ruv_store_get_recovery_report (store));
  }
}

/* ------------------------------------------------------------------------ */
/* D1, D2: corruption. */

static char *
find_aside (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while ((name = g_dir_read_name (d)) != NULL)
    if (strstr (name, ".corrupt-") != NULL && !g_str_has_suffix (name, "-wal") &&
        !g_str_has_suffix (name, "-shm"))
      return g_build_filename (dir, name, NULL);
  return NULL;
}

static void
fill_messages (RuvStore *store,
               guint     n_sessions,
               guint     per_session)
{
  guint i, j;

  for (i = 0; i < n_sessions; i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 s = ruv_store_create_session (store, NULL, NULL, NULL, NULL, &error);
      gint64 prev = 0;

      for (j = 0; j < per_session; j++)
        {
          g_autofree char *text = g_strdup_printf ("message %u of chat %u: some words to fill "
                                                   "the page with a bit of text", j, i);

          prev = add (store, s, prev, j % 2 ? "assistant" : "user", text);
        }
    }
}

static void
test_corrupt_notadb (void)
{
  g_autofree char *dir = case_dir ("corrupt-notadb");
  g_autofree char *path = g_build_filename (dir, "ruvllm.db", NULL);
  g_autofree char *aside = NULL, *backup = NULL;
  g_autofree char *contents = NULL, *moved = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = NULL;
  GRand *rand = g_rand_new_with_seed (7);
  gsize len, moved_len, i;
  RuvStore *store;

  store = open_store (path);
  fill_messages (store, 3, 10);
  backup = ruv_store_backup_now (store, &error);
  g_assert_no_error (error);
  fill_messages (store, 1, 10);        /* newer than the backup: lost with the file */
  g_object_unref (store);

  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  for (i = 0; i < len; i++)
    contents[i] = (char) g_rand_int (rand);
  g_rand_free (rand);
  g_assert_true (g_file_set_contents (path, contents, (gssize) len, NULL));

  store = open_store (path);
  g_test_message ("%s", ruv_store_get_recovery_report (store));
  g_assert_nonnull (ruv_store_get_recovery_report (store));
  g_assert_false (ruv_store_get_read_only (store));
  aside = find_aside (dir);
  g_assert_nonnull (aside);
  g_assert_nonnull (strstr (ruv_store_get_recovery_report (store), aside));
  /* The damaged file is kept byte for byte. */
  g_assert_true (g_file_get_contents (aside, &moved, &moved_len, NULL));
  g_assert_cmpmem (moved, moved_len, contents, len);
  list = ruv_store_list_sessions (store, TRUE, &error);
  g_assert_cmpuint (list->len, ==, 3);
  g_assert_true (ruv_store_check_integrity (store, &error));
  g_assert_no_error (error);
  g_object_unref (store);
}

static void
test_corrupt_page (void)
{
  g_autofree char *dir = case_dir ("corrupt-page");
  g_autofree char *path = g_build_filename (dir, "ruvllm.db", NULL);
  g_autofree char *backups = g_build_filename (dir, "backups", NULL);
  g_autofree char *aside = NULL;
  g_autoptr(GError) error = NULL;
  GRand *rand = g_rand_new_with_seed (11);
  guint8 page[4096];
  gint64 total, kept, n_pages;
  RuvStore *store;
  sqlite3 *db;
  int fd, k;
  gsize i;

  store = open_store (path);
  fill_messages (store, 20, 150);
  g_object_unref (store);
  ruv_test_rm_rf (backups);                 /* only what the damaged file still holds */
  db = raw_open (path);
  total = raw_int (db, "SELECT count(*) FROM messages");
  n_pages = raw_int (db, "PRAGMA page_count");
  g_assert_cmpint (raw_int (db, "PRAGMA page_size"), ==, 4096);
  sqlite3_close (db);
  g_assert_cmpint (n_pages, >, 20);

  /* Three pages of random bytes, at a third, a half and two thirds. */
  fd = open (path, O_WRONLY);
  g_assert_cmpint (fd, >=, 0);
  for (k = 0; k < 3; k++)
    {
      off_t at = (off_t) (n_pages * (k + 2) / 6) * 4096;

      for (i = 0; i < sizeof page; i++)
        page[i] = (guint8) g_rand_int (rand);
      g_assert_cmpint (pwrite (fd, page, sizeof page, at), ==, sizeof page);
    }
  close (fd);
  g_rand_free (rand);

  store = open_store (path);
  g_test_message ("%s", ruv_store_get_recovery_report (store));
  g_assert_nonnull (ruv_store_get_recovery_report (store));
  aside = find_aside (dir);
  g_assert_nonnull (aside);
  g_assert_true (ruv_store_check_integrity (store, &error));
  g_assert_no_error (error);
  g_object_unref (store);
  db = raw_open (path);
  kept = raw_int (db, "SELECT count(*) FROM messages");
  g_assert_cmpint (raw_int (db, "SELECT count(*) FROM pragma_foreign_key_check"), ==, 0);
  sqlite3_close (db);
  g_test_message ("recovered %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT " messages", kept, total);
  g_assert_cmpint (kept, >, total / 2);
  g_assert_cmpint (kept, <=, total);
}

/* ------------------------------------------------------------------------ */
/* D5: disk full, by RLIMIT_FSIZE in a child (SIGXFSZ ignored, so write()
 * fails with EFBIG the way it fails with ENOSPC on a full disk). */

static void
test_disk_full (void)
{
  g_autofree char *path = case_db ("disk-full");
  g_autoptr(GError) error = NULL;
  g_autofree char *before = NULL, *after = NULL;
  RuvStore *store;
  gint64 s;
  pid_t pid;
  int status;

  store = open_store (path);
  fill_messages (store, 2, 20);
  s = ruv_store_create_session (store, "target", NULL, NULL, NULL, &error);
  add (store, s, 0, "user", "kept");
  before = ruv_store_export (store, 0, RUV_STORE_FORMAT_JSON, &error);
  g_object_unref (store);

  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      struct rlimit lim = { 256 * 1024, 256 * 1024 };
      GError *err = NULL;
      GString *big = g_string_new (NULL);
      RuvStore *st;
      GPtrArray *chat;
      gint64 id;

      signal (SIGXFSZ, SIG_IGN);
      st = ruv_store_new_for_path (path, NULL);
      if (st == NULL)
        _exit (20);
      if (setrlimit (RLIMIT_FSIZE, &lim) != 0)
        _exit (21);
      while (big->len < 2 * 1024 * 1024)
        g_string_append (big, "a long pasted text that will not fit on this full disk. ");
      id = ruv_store_add_message (st, s, 0, "user", big->str, NULL, NULL, TRUE, &err);
      if (id != 0 || err == NULL || !g_error_matches (err, RUV_ERROR, RUV_ERROR_STORAGE))
        _exit (22);
      g_printerr ("disk full error: %s\n", err->message);
      if (strstr (err->message, "full") == NULL || strstr (err->message, path) == NULL)
        _exit (23);
      g_clear_error (&err);
      /* The app keeps running: reads still work. */
      chat = ruv_store_load_chat (st, s, &err);
      if (chat == NULL || chat->len != 1)
        _exit (24);
      _exit (0);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);

  assert_quick_check_ok (path);
  store = open_store (path);
  after = ruv_store_export (store, 0, RUV_STORE_FORMAT_JSON, &error);
  g_assert_cmpstr (before, ==, after);
  g_object_unref (store);
}

/* ------------------------------------------------------------------------ */
/* D6: read-only file and folder. Tests may run as root, for whom chmod means
 * nothing; the child then drops to uid/gid 65534 so the modes really apply. */

static int
read_only_child (const char *path)
{
  GError *err = NULL;
  RuvStore *st;
  GPtrArray *list;

  if (geteuid () == 0 && (setgid (65534) != 0 || setuid (65534) != 0))
    return 77;
  if (access (path, W_OK) == 0)
    return 78;                        /* the modes do not bind us: cannot test */
  st = ruv_store_new_for_path (path, &err);
  if (st == NULL)
    {
      g_printerr ("read-only open refused: %s\n", err->message);
      /* An error naming the path is the other allowed answer. */
      return g_error_matches (err, RUV_ERROR, RUV_ERROR_STORAGE) &&
             strstr (err->message, path) != NULL ? 10 : 30;
    }
  if (!ruv_store_get_read_only (st) || ruv_store_get_read_only_reason (st) == NULL)
    return 31;
  list = ruv_store_list_sessions (st, TRUE, &err);
  if (list == NULL || list->len != 1)
    return 32;
  if (ruv_store_create_session (st, "x", NULL, NULL, NULL, &err) != 0 ||
      !g_error_matches (err, RUV_ERROR, RUV_ERROR_STORAGE) || strstr (err->message, path) == NULL)
    return 33;
  g_printerr ("read-only open: %s / write: %s\n", ruv_store_get_read_only_reason (st),
              err->message);
  return 0;
}

static void
test_read_only (void)
{
  g_autofree char *dir = case_dir ("read-only");
  g_autofree char *path = g_build_filename (dir, "ruvllm.db", NULL);
  g_autoptr(GError) error = NULL;
  RuvStore *store;
  guint round;

  store = open_store (path);
  ruv_store_create_session (store, "kept", NULL, NULL, NULL, &error);
  g_object_unref (store);
  g_chmod (tmp_root, 0755);

  /* Round 0: the file is read-only, the folder writable (0777).
   * Round 1: both read-only (no -shm can be created). */
  for (round = 0; round < 2; round++)
    {
      pid_t pid;
      int status;

      g_chmod (path, 0444);
      g_chmod (dir, round == 0 ? 0777 : 0555);
      pid = fork ();
      g_assert_cmpint (pid, >=, 0);
      if (pid == 0)
        _exit (read_only_child (path));
      g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
      g_assert_true (WIFEXITED (status));
      if (WEXITSTATUS (status) == 77 || WEXITSTATUS (status) == 78)
        {
          g_chmod (dir, 0755);
          g_test_skip ("cannot drop privileges, so file modes cannot be tested");
          return;
        }
      g_test_message ("round %u: %s", round,
                      WEXITSTATUS (status) == 0 ? "opened read-only" : "refused with the path");
      g_assert_true (WEXITSTATUS (status) == 0 || WEXITSTATUS (status) == 10);
      if (round == 0)
        g_assert_cmpint (WEXITSTATUS (status), ==, 0);
    }
  g_chmod (dir, 0755);
  g_chmod (path, 0644);
  assert_quick_check_ok (path);
}

/* ------------------------------------------------------------------------ */

typedef struct
{
  GMainLoop    *loop;
  GAsyncResult *result;
} Wait;

static void
got_result (GObject      *source,
            GAsyncResult *result,
            gpointer      data)
{
  Wait *w = data;

  w->result = g_object_ref (result);
  g_main_loop_quit (w->loop);
}

static GAsyncResult *
wait_result (Wait *w)
{
  g_main_loop_run (w->loop);
  return w->result;
}

static void
test_async (void)
{
  g_autofree char *path = case_db ("async");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = open_store (path);
  g_autoptr(GPtrArray) chat = NULL, hits = NULL;
  Wait w = { g_main_loop_new (NULL, FALSE), NULL };
  RuvMessageStats stats = { 1, 2, 3, 4, "stop" };
  gint64 s, u, a;

  s = ruv_store_create_session (store, NULL, NULL, NULL, NULL, &error);
  ruv_store_add_message_async (store, s, 0, "user", "async hello", NULL, NULL, TRUE, NULL,
                               got_result, &w);
  u = ruv_store_add_message_finish (store, wait_result (&w), &error);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  ruv_store_add_message_async (store, s, u, "assistant", "", NULL, NULL, FALSE, NULL,
                               got_result, &w);
  a = ruv_store_add_message_finish (store, wait_result (&w), &error);
  g_clear_object (&w.result);
  ruv_store_update_message_text_async (store, a, "partial", NULL, got_result, &w);
  g_assert_true (ruv_store_update_message_text_finish (store, wait_result (&w), &error));
  g_clear_object (&w.result);
  ruv_store_complete_message_async (store, a, "complete answer", &stats, NULL, got_result, &w);
  g_assert_true (ruv_store_complete_message_finish (store, wait_result (&w), &error));
  g_clear_object (&w.result);
  ruv_store_rate_message_async (store, a, RUV_RATING_UP, NULL, got_result, &w);
  g_assert_true (ruv_store_rate_message_finish (store, wait_result (&w), &error));
  g_clear_object (&w.result);
  ruv_store_load_chat_async (store, s, NULL, got_result, &w);
  chat = ruv_store_load_chat_finish (store, wait_result (&w), &error);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  g_assert_cmpuint (chat->len, ==, 2);
  g_assert_cmpstr (((RuvStoreMessage *) g_ptr_array_index (chat, 1))->content, ==,
                   "complete answer");
  g_assert_cmpint (((RuvStoreMessage *) g_ptr_array_index (chat, 1))->rating, ==, RUV_RATING_UP);
  ruv_store_search_async (store, "answer", 5, NULL, got_result, &w);
  hits = ruv_store_search_finish (store, wait_result (&w), &error);
  g_clear_object (&w.result);
  g_assert_cmpuint (hits->len, ==, 1);
  ruv_store_load_chat_async (store, 4242, NULL, got_result, &w);
  g_assert_null (ruv_store_load_chat_finish (store, wait_result (&w), &error));
  g_clear_object (&w.result);
  g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  g_main_loop_unref (w.loop);
}

int
main (int    argc,
      char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  tmp_root = g_dir_make_tmp ("ruv-store-XXXXXX", NULL);
  g_assert_nonnull (tmp_root);
  g_setenv ("XDG_DATA_HOME", tmp_root, TRUE);

  g_test_add_func ("/engine/store/default-location", test_default_location);
  g_test_add_func ("/engine/store/pragmas-foreign-keys", test_pragmas_and_foreign_keys);
  g_test_add_func ("/engine/store/sessions", test_sessions);
  g_test_add_func ("/engine/store/tree", test_tree);
  g_test_add_func ("/engine/store/ratings-snapshots", test_ratings_and_snapshots);
  g_test_add_func ("/engine/store/models", test_models);
  g_test_add_func ("/engine/store/search", test_search);
  g_test_add_func ("/engine/store/export-import", test_export_import);
  g_test_add_func ("/engine/store/import-hostile", test_import_hostile);
  g_test_add_func ("/engine/store/migrate", test_migrate);
  g_test_add_func ("/engine/store/newer-version", test_newer_version);
  g_test_add_func ("/engine/store/data-dir-blocked", test_data_dir_blocked);
  g_test_add_func ("/engine/store/crash-loop", test_crash_loop);
  g_test_add_func ("/engine/store/corrupt/not-a-database", test_corrupt_notadb);
  g_test_add_func ("/engine/store/corrupt/page", test_corrupt_page);
  g_test_add_func ("/engine/store/disk-full", test_disk_full);
  g_test_add_func ("/engine/store/read-only", test_read_only);
  g_test_add_func ("/engine/store/busy-snapshot", test_busy_snapshot);
  g_test_add_func ("/engine/store/async", test_async);

  rc = g_test_run ();
  ruv_test_rm_rf (tmp_root);
  g_free (tmp_root);
  return rc;
}
