/* test-chat-session.c — RuvChatSession and `ruvllm-cli chat` as a client of
 * the store: stored turns with statistics, ratings with adaptation records,
 * continuing a chat, branches, export, and a kill -9 while streaming.
 * SPDX-License-Identifier: MIT
 *
 * The model is test-cli.c's "chain" (see there): with greedy sampling every
 * answer is "hijklmnopqrstuvwxyz" (the ChatML prompt ends with a newline,
 * whose successor is h; z is followed by <|im_end|>). The "cycle" variant
 * follows z with a instead, so it streams until the token limit: the kill
 * test needs an answer still being written.
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "ruv-chat-session.h"
#include "ruv-error.h"
#include "ruv-learner.h"
#include "ruv-model.h"
#include "ruv-test-util.h"


#define ANSWER  "hijklmnopqrstuvwxyz"

static char *tmp_dir;
static char *chain_path;
static char *cycle_path;
static const char *cli;

static char *
write_model (const char *file,
             gboolean    cycle)
{
  char *path = g_build_filename (tmp_dir, file, NULL);

  ruv_test_write_chain_model (path, cycle ? "cycle" : "chain", 128,
                              cycle ? RUV_TEST_CHAIN_CYCLE : 0);
  return path;
}

static RuvCpuBackend *
load_backend (const char *path)
{
  g_autoptr(RuvModelConfig) config = ruv_model_config_new ();
  g_autoptr(GError) error = NULL;
  RuvCpuBackend *b = ruv_cpu_backend_new ();

  config->n_threads = 1;
  g_assert_true (ruv_cpu_backend_load_model (b, path, config, NULL, &error));
  g_assert_no_error (error);
  return b;
}

static RuvStore *
open_store_at (const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (tmp_dir, name, NULL);
  RuvStore *s = ruv_store_new_for_path (path, &error);

  g_assert_no_error (error);
  return s;
}

static RuvGenerateParams *
greedy (void)
{
  RuvGenerateParams *p = ruv_generate_params_new ();

  p->temperature = 0.0f;
  p->max_tokens = 40;
  p->repetition_penalty = 1.0f;
  return p;
}

static RuvStoreMessage *
hist (RuvChatSession *s,
      guint           i)
{
  GPtrArray *h = ruv_chat_session_get_history (s);

  g_assert_cmpuint (i, <, h->len);
  return g_ptr_array_index (h, i);
}

/* Instant switching: two chats on one backend; returning to the first
 * restores its KV state, so its earlier turns are not evaluated again, and
 * the answer is the one a fresh evaluation gives. A corrupt state file is
 * ignored (the prompt is evaluated). */
static void
test_session_kv_switch (void)
{
  g_autoptr(RuvCpuBackend) backend = load_backend (chain_path);
  g_autoptr(RuvCpuBackend) fresh = load_backend (chain_path);
  g_autoptr(RuvStore) store = open_store_at ("switch.db");
  g_autoptr(RuvChatSession) s1 = ruv_chat_session_new (backend, store, "chain.gguf");
  g_autoptr(RuvChatSession) s2 = ruv_chat_session_new (backend, store, "chain.gguf");
  g_autoptr(RuvChatSession) f = ruv_chat_session_new (fresh, store, "chain.gguf");
  g_autoptr(RuvGenerateResult) r = NULL;
  g_autoptr(RuvGenerateResult) rf = NULL;
  g_autoptr(RuvGenerateParams) p = greedy ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_build_filename (tmp_dir, "kv-switch", NULL);
  g_autofree char *path1 = NULL;
  g_autofree char *bytes = NULL;
  gint64 n_first;
  gsize len;

  ruv_chat_session_set_kv_dir (s1, dir);
  ruv_chat_session_set_kv_dir (s2, dir);
  ruv_chat_session_set_kv_dir (f, NULL);
  g_assert_true (ruv_chat_session_create (s1, "be brief", p, &error));
  r = ruv_chat_session_send (s1, "hi", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&r, ruv_generate_result_free);
  n_first = ruv_cpu_backend_get_n_past (backend);
  path1 = ruv_chat_session_get_kv_path (s1);
  g_assert_false (g_file_test (path1, G_FILE_TEST_EXISTS));

  /* another chat takes the cache: the first one's state is saved */
  g_assert_true (ruv_chat_session_create (s2, NULL, NULL, &error));
  r = ruv_chat_session_send (s2, "abc", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&r, ruv_generate_result_free);
  g_assert_true (g_file_test (path1, G_FILE_TEST_EXISTS));

  /* back to the first: restored, its conversation counts as cached */
  r = ruv_chat_session_send (s1, "again", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r->n_cached, >=, n_first - 1);
  g_assert_true (ruv_chat_session_open (f, ruv_chat_session_get_id (s1), &error));
  rf = ruv_chat_session_regenerate (f, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (rf->text, ==, r->text);
  g_assert_cmpint (rf->n_cached, ==, 0);
  g_clear_pointer (&r, ruv_generate_result_free);

  /* a corrupt state is ignored: the prompt is evaluated again */
  r = ruv_chat_session_send (s2, "def", NULL, NULL, NULL, &error);   /* saves s1's */
  g_assert_no_error (error);
  g_clear_pointer (&r, ruv_generate_result_free);
  g_assert_true (g_file_get_contents (path1, &bytes, &len, NULL));
  bytes[len / 2] ^= 0x40;
  g_assert_true (g_file_set_contents (path1, bytes, len, NULL));
  r = ruv_chat_session_send (s1, "more", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r->n_cached, ==, 0);
}

/* ---- the engine object -------------------------------------------------- */

static void
test_session_turns (void)
{
  g_autoptr(RuvCpuBackend) backend = load_backend (chain_path);
  g_autoptr(RuvStore) store = open_store_at ("turns.db");
  g_autoptr(RuvChatSession) s = ruv_chat_session_new (backend, store, "chain.gguf");
  g_autoptr(RuvChatSession) s2 = ruv_chat_session_new (backend, store, "chain.gguf");
  g_autoptr(RuvGenerateParams) p = greedy ();
  g_autoptr(RuvGenerateResult) r1 = NULL;
  g_autoptr(RuvGenerateResult) r2 = NULL;
  g_autoptr(RuvStoreSession) meta = NULL;
  g_autoptr(GError) error = NULL;
  RuvStoreMessage *a;

  p->has_seed = TRUE;
  p->seed = G_GUINT64_CONSTANT (18446744073709551557);   /* above 2^53 */
  g_assert_true (ruv_chat_session_create (s, "be brief", p, &error));
  g_assert_no_error (error);
  /* Small save steps, so the streaming saves run. */
  ruv_chat_session_set_save_policy (s, 0, 1);
  r1 = ruv_chat_session_send (s, "hi", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (r1->text, ==, ANSWER);
  g_assert_cmpuint (ruv_chat_session_get_history (s)->len, ==, 2);
  g_assert_cmpstr (hist (s, 0)->role, ==, "user");
  g_assert_cmpstr (hist (s, 0)->content, ==, "hi");
  a = hist (s, 1);
  g_assert_cmpstr (a->role, ==, "assistant");
  g_assert_cmpstr (a->content, ==, ANSWER);
  g_assert_true (a->complete);
  g_assert_cmpint (a->parent_id, ==, hist (s, 0)->id);
  g_assert_cmpint (a->n_gen, ==, 19);
  g_assert_cmpint (a->n_prompt, ==, r1->n_prompt);
  g_assert_cmpfloat (a->ttft_ms, >=, 0.0);
  g_assert_cmpfloat (a->tokens_per_s, >=, 0.0);
  g_assert_cmpstr (a->finish_reason, ==, "end_of_turn");
  g_assert_cmpstr (a->model, ==, "chain.gguf");
  g_assert_nonnull (strstr (a->params_json, "\"temperature\""));

  meta = ruv_store_get_session (store, ruv_chat_session_get_id (s), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (meta->title, ==, "hi");
  g_assert_cmpstr (meta->system_prompt, ==, "be brief");
  g_assert_cmpstr (meta->model, ==, "chain.gguf");

  /* Continuing: history, system prompt and parameters (the big seed too)
   * come back; the next prompt holds the earlier turn. */
  g_assert_true (ruv_chat_session_open (s2, ruv_chat_session_get_id (s), &error));
  g_assert_no_error (error);
  g_assert_cmpstr (ruv_chat_session_get_system_prompt (s2), ==, "be brief");
  g_assert_true (ruv_chat_session_get_params (s2)->has_seed);
  g_assert_cmpuint (ruv_chat_session_get_params (s2)->seed, ==,
                    G_GUINT64_CONSTANT (18446744073709551557));
  g_assert_cmpfloat (ruv_chat_session_get_params (s2)->temperature, ==, 0.0f);
  g_assert_cmpuint (ruv_chat_session_get_history (s2)->len, ==, 2);
  r2 = ruv_chat_session_send (s2, "ab", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (r2->text, ==, ANSWER);
  g_assert_cmpint (r2->n_prompt, >, r1->n_prompt + 19);
  g_assert_cmpuint (ruv_chat_session_get_history (s2)->len, ==, 4);
  g_assert_cmpint (hist (s2, 2)->parent_id, ==, hist (s2, 1)->id);
}

static void
test_session_branches (void)
{
  g_autoptr(RuvCpuBackend) backend = load_backend (chain_path);
  g_autoptr(RuvStore) store = open_store_at ("branches.db");
  g_autoptr(RuvChatSession) s = ruv_chat_session_new (backend, store, "chain.gguf");
  g_autoptr(RuvGenerateParams) p = greedy ();
  g_autoptr(RuvGenerateResult) r = NULL;
  g_autoptr(GPtrArray) b = NULL;
  g_autoptr(GError) error = NULL;
  gint64 first_answer, second_answer, user_id;
  guint shown = 99;

  g_assert_true (ruv_chat_session_create (s, NULL, p, &error));
  /* Nothing to regenerate, edit or rate yet. */
  g_assert_null (ruv_chat_session_regenerate (s, NULL, NULL, NULL, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  g_assert_false (ruv_chat_session_rate_last (s, RUV_RATING_UP, NULL, &error));
  g_assert_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION);
  g_clear_error (&error);
  b = ruv_chat_session_list_branches (s, &shown, &error);
  g_assert_cmpuint (b->len, ==, 0);
  g_clear_pointer (&b, g_ptr_array_unref);

  r = ruv_chat_session_send (s, "hi", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&r, ruv_generate_result_free);
  user_id = hist (s, 0)->id;
  first_answer = hist (s, 1)->id;

  /* Regenerate: a sibling, shown. */
  r = ruv_chat_session_regenerate (s, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&r, ruv_generate_result_free);
  second_answer = hist (s, 1)->id;
  g_assert_cmpint (second_answer, !=, first_answer);
  g_assert_cmpint (hist (s, 1)->parent_id, ==, user_id);
  g_assert_cmpstr (hist (s, 1)->content, ==, ANSWER);
  g_assert_true (hist (s, 1)->complete);
  b = ruv_chat_session_list_branches (s, &shown, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (b->len, ==, 2);
  g_assert_cmpuint (shown, ==, 1);
  g_assert_true (ruv_chat_session_switch_branch (s, first_answer, &error));
  g_assert_no_error (error);
  g_assert_cmpint (hist (s, 1)->id, ==, first_answer);
  g_clear_pointer (&b, g_ptr_array_unref);

  /* Edit the question: a new user sibling with its own answer. */
  r = ruv_chat_session_edit_last (s, "xy", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&r, ruv_generate_result_free);
  g_assert_cmpuint (ruv_chat_session_get_history (s)->len, ==, 2);
  g_assert_cmpstr (hist (s, 0)->content, ==, "xy");
  g_assert_cmpint (hist (s, 0)->id, !=, user_id);
  g_assert_cmpint (hist (s, 1)->parent_id, ==, hist (s, 0)->id);
  b = ruv_chat_session_list_branches (s, &shown, &error);
  g_assert_cmpuint (b->len, ==, 2);
  g_assert_cmpuint (shown, ==, 1);
  g_assert_cmpint (((RuvStoreMessage *) g_ptr_array_index (b, 0))->id, ==, user_id);
  g_clear_pointer (&b, g_ptr_array_unref);

  /* A turn that cannot run (an empty-vocabulary problem is hard to make;
   * an answer longer than the context is not: 128 tokens) leaves the chat
   * as it was. */
  {
    g_autofree char *longq = g_strnfill (400, 'a');
    guint before = ruv_chat_session_get_history (s)->len;
    gint64 leaf = hist (s, before - 1)->id;

    r = ruv_chat_session_send (s, longq, NULL, NULL, NULL, &error);
    g_assert_null (r);
    g_assert_nonnull (error);
    g_clear_error (&error);
    g_assert_cmpuint (ruv_chat_session_get_history (s)->len, ==, before);
    g_assert_cmpint (hist (s, before - 1)->id, ==, leaf);
  }

  /* A message of another chat cannot be switched to. */
  {
    gint64 other = ruv_store_create_session (store, "other", NULL, NULL, NULL, &error);
    gint64 m = ruv_store_add_message (store, other, 0, "user", "x", NULL, NULL, TRUE, &error);

    g_assert_no_error (error);
    g_assert_false (ruv_chat_session_switch_branch (s, m, &error));
    g_assert_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND);
  }
}

static void
test_session_ratings (void)
{
  g_autoptr(RuvCpuBackend) backend = load_backend (chain_path);
  g_autoptr(RuvStore) store = open_store_at ("ratings.db");
  g_autoptr(RuvChatSession) s = ruv_chat_session_new (backend, store, "chain.gguf");
  g_autoptr(RuvLearner) learner = NULL;
  g_autoptr(RuvGenerateParams) p = greedy ();
  g_autoptr(RuvGenerateResult) r = NULL;
  g_autoptr(GPtrArray) hist_all = NULL;
  g_autoptr(GPtrArray) ad = NULL;
  g_autoptr(GError) error = NULL;
  RuvAdaptationResult res;
  RuvStoreRatingRecord *rec;
  RuvLearningLoopStats st;
  gint64 answer_id;

  learner = ruv_learner_new (ruv_cpu_backend_get_model (backend), "chain.gguf", store, NULL,
                             &error);
  g_assert_no_error (error);
  ruv_chat_session_set_learner (s, learner);
  g_assert_true (ruv_chat_session_create (s, NULL, p, &error));
  r = ruv_chat_session_send (s, "hi", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  answer_id = hist (s, 1)->id;

  g_assert_true (ruv_chat_session_rate_last (s, RUV_RATING_UP, &res, &error));
  g_assert_no_error (error);
  g_assert_true (res.applied);
  g_assert_true (isfinite (res.loss));
  g_assert_cmpint (hist (s, 1)->rating, ==, RUV_RATING_UP);
  g_assert_true (ruv_chat_session_rate_last (s, RUV_RATING_DOWN, &res, &error));
  g_assert_no_error (error);
  g_assert_true (res.applied);
  g_assert_cmpint (hist (s, 1)->rating, ==, RUV_RATING_DOWN);
  g_assert_cmpuint (ruv_chat_session_get_n_applied (s), ==, 2);

  /* One current rating, two adaptations on record. */
  hist_all = ruv_store_rating_history (store, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (hist_all->len, ==, 1);
  rec = g_ptr_array_index (hist_all, 0);
  g_assert_cmpint (rec->message_id, ==, answer_id);
  g_assert_cmpint (rec->rating, ==, RUV_RATING_DOWN);
  g_assert_cmpint (rec->outcome, ==, RUV_ADAPTATION_APPLIED);
  g_assert_cmpint (rec->latency_us, >=, 0);
  g_assert_true (isfinite (rec->loss_before));
  ad = ruv_store_list_adaptations (store, answer_id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ad->len, ==, 2);
  g_assert_cmpint (((RuvStoreRatingRecord *) g_ptr_array_index (ad, 0))->rating, ==,
                   RUV_RATING_UP);
  g_assert_cmpint (((RuvStoreRatingRecord *) g_ptr_array_index (ad, 1))->rating, ==,
                   RUV_RATING_DOWN);
  g_assert_cmpint (((RuvStoreRatingRecord *) g_ptr_array_index (ad, 1))->outcome, ==,
                   RUV_ADAPTATION_APPLIED);
  /* The second rating replaced the first in SONA too. */
  ruv_sona_llm_get_stats (ruv_learner_get_sona (learner), &st);
  g_assert_cmpuint (st.rerated, ==, 1);
  g_clear_pointer (&ad, g_ptr_array_unref);

  /* Clearing: stored as cleared; the take-back is a third record. */
  g_assert_true (ruv_chat_session_rate_last (s, RUV_RATING_CLEARED, &res, &error));
  g_assert_no_error (error);
  g_assert_cmpint (hist (s, 1)->rating, ==, RUV_RATING_CLEARED);
  ad = ruv_store_list_adaptations (store, 0, &error);
  g_assert_cmpuint (ad->len, ==, 3);
  g_clear_pointer (&ad, g_ptr_array_unref);

  /* Without a learner the rating is kept and the outcome says skipped. */
  ruv_chat_session_set_learner (s, NULL);
  g_assert_true (ruv_chat_session_rate_last (s, RUV_RATING_UP, &res, &error));
  g_assert_true (res.skipped);
  g_assert_false (res.applied);
  ad = ruv_store_list_adaptations (store, answer_id, &error);
  g_assert_cmpuint (ad->len, ==, 4);
  g_assert_cmpint (((RuvStoreRatingRecord *) g_ptr_array_index (ad, 3))->outcome, ==,
                   RUV_ADAPTATION_SKIPPED);
}

static void
test_params_json (void)
{
  g_autoptr(RuvGenerateParams) p = ruv_generate_params_new ();
  g_autoptr(RuvGenerateParams) q = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  const char *stops[] = { "END", "\n\n", NULL };
  static const char *const bad[] = {
    "", "[]", "{\"temperature\": \"hot\"}", "{\"top_p\": 7}", "{\"max_tokens\": 0}",
    "{\"max_tokens\": 1e300}", "{\"seed\": 5}", "{\"seed\": \"-1\"}", "{\"stop\": [1]}",
    "{\"stop\": \"x\"}", "{\"temperature\": -1}",
  };
  guint i;

  p->top_k = 40;
  p->temperature = 0.25f;
  p->has_seed = TRUE;
  p->seed = 7;
  ruv_generate_params_set_stop_sequences (p, stops);
  json = ruv_generate_params_to_json (p);
  q = ruv_generate_params_from_json (json, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (q->top_k, ==, 40);
  g_assert_cmpfloat (q->temperature, ==, 0.25f);
  g_assert_cmpuint (q->max_tokens, ==, p->max_tokens);
  g_assert_true (q->has_seed);
  g_assert_cmpuint (q->seed, ==, 7);
  g_assert_cmpstr (q->stop_sequences[1], ==, "\n\n");
  g_assert_null (q->stop_sequences[2]);
  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(RuvGenerateParams) r = ruv_generate_params_from_json (bad[i], &error);

      g_assert_null (r);
      g_assert_error (error, RUV_ERROR, RUV_ERROR_CONFIG);
      g_clear_error (&error);
    }
}

/* ---- the CLI ------------------------------------------------------------ */

/* Runs ruvllm-cli with the NULL-terminated arguments; returns stdout, and
 * stderr in *err_out (may be NULL). */
static char *
run_cli (int          expect_status,
         const char  *input,
         char       **err_out,
         ...)
{
  va_list ap;
  char *out;

  va_start (ap, err_out);
  out = ruv_test_run_cli_va (cli, expect_status, NULL, input, err_out, ap);
  va_end (ap);
  return out;
}

/* The chat id from "[chat N]" on stderr. */
static gint64
chat_id_of (const char *err)
{
  const char *p = strstr (err, "[chat ");

  g_assert_nonnull (p);
  return g_ascii_strtoll (p + 6, NULL, 10);
}

static JsonNode *
parse (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

/* The XDG store, opened fresh (after the CLI wrote it). */
static RuvStore *
xdg_store (void)
{
  g_autoptr(GError) error = NULL;
  RuvStore *s = ruv_store_new (&error);

  g_assert_no_error (error);
  return s;
}

static gint64 cli_chat_id;

static void
test_cli_chat (void)
{
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(GPtrArray) msgs = NULL;
  g_autoptr(GPtrArray) ratings = NULL;
  g_autoptr(GPtrArray) ad = NULL;
  g_autoptr(RuvStoreSession) meta = NULL;
  g_autoptr(GError) error = NULL;
  RuvStoreMessage *a;

  if (cli == NULL)
    {
      g_test_skip ("ruvllm-cli is not built (set RUVLLM_CLI)");
      return;
    }
  out = run_cli (0, "hi\n/good\n/bad\n/nonsense\n/exit\nnot read\n", &err, "chat", "-m",
                 chain_path, "--temp", "0", "--system", "x", NULL);
  g_assert_cmpstr (out, ==, ANSWER "\n");
  g_assert_nonnull (strstr (err, "[rated up; adapted in"));
  g_assert_nonnull (strstr (err, "[rated down; adapted in"));
  g_assert_nonnull (strstr (err, "unknown command"));
  cli_chat_id = chat_id_of (err);

  store = xdg_store ();
  meta = ruv_store_get_session (store, cli_chat_id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (meta->title, ==, "hi");
  g_assert_cmpstr (meta->system_prompt, ==, "x");
  g_assert_cmpstr (meta->model, ==, "chain.gguf");
  msgs = ruv_store_load_chat (store, cli_chat_id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (msgs->len, ==, 2);
  a = g_ptr_array_index (msgs, 1);
  g_assert_cmpstr (a->content, ==, ANSWER);
  g_assert_true (a->complete);
  g_assert_cmpint (a->n_gen, ==, 19);
  g_assert_cmpint (a->n_prompt, >, 0);
  g_assert_cmpfloat (a->ttft_ms, >=, 0.0);
  g_assert_cmpstr (a->finish_reason, ==, "end_of_turn");
  g_assert_cmpstr (a->model, ==, "chain.gguf");
  g_assert_cmpint (a->rating, ==, RUV_RATING_DOWN);
  ratings = ruv_store_rating_history (store, 0, &error);
  g_assert_cmpuint (ratings->len, ==, 1);
  g_assert_cmpint (((RuvStoreRatingRecord *) g_ptr_array_index (ratings, 0))->rating, ==,
                   RUV_RATING_DOWN);
  ad = ruv_store_list_adaptations (store, a->id, &error);
  g_assert_cmpuint (ad->len, ==, 2);
  g_assert_cmpint (((RuvStoreRatingRecord *) g_ptr_array_index (ad, 0))->outcome, ==,
                   RUV_ADAPTATION_APPLIED);
  /* What the ratings taught was kept as an adapter snapshot of the model. */
  {
    g_autoptr(GPtrArray) snaps = ruv_store_list_snapshots (store, "chain.gguf", &error);

    g_assert_no_error (error);
    g_assert_cmpuint (snaps->len, >=, 1);
  }
}

static void
test_cli_continue (void)
{
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, cli_chat_id);
  g_autofree char *out = NULL;
  g_autofree char *out2 = NULL;
  g_autofree char *out3 = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(GPtrArray) msgs = NULL;
  g_autoptr(GPtrArray) sib = NULL;
  g_autoptr(RuvStoreSession) meta = NULL;
  g_autoptr(GError) error = NULL;
  RuvStoreMessage *a1, *a2;
  gint64 a2_id;

  if (cli == NULL || cli_chat_id == 0)
    {
      g_test_skip ("needs ruvllm-cli and /engine/chat-session/cli/chat");
      return;
    }
  /* History loaded (printed by /history), and the next turn follows it. */
  out = run_cli (0, "/history\nab\n/title My chat\n", NULL, "chat", "-m", chain_path,
                 "--chat", id, NULL);
  g_assert_cmpstr (out, ==, "user: hi\nassistant: " ANSWER "\n" ANSWER "\n");
  store = xdg_store ();
  msgs = ruv_store_load_chat (store, cli_chat_id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (msgs->len, ==, 4);
  a1 = g_ptr_array_index (msgs, 1);
  a2 = g_ptr_array_index (msgs, 3);
  g_assert_cmpstr (((RuvStoreMessage *) g_ptr_array_index (msgs, 2))->content, ==, "ab");
  g_assert_cmpint (((RuvStoreMessage *) g_ptr_array_index (msgs, 2))->parent_id, ==, a1->id);
  /* The first exchange was part of the second prompt; the stored
   * parameters (greedy) were used again. */
  g_assert_cmpint (a2->n_prompt, >, a1->n_prompt + a1->n_gen);
  g_assert_nonnull (strstr (a2->params_json, "\"temperature\":0"));
  a2_id = a2->id;
  meta = ruv_store_get_session (store, cli_chat_id, &error);
  g_assert_cmpstr (meta->title, ==, "My chat");
  g_assert_false (meta->title_auto);

  /* /regenerate: a sibling that becomes the shown branch; /switch 1 goes
   * back to the first answer. */
  out2 = run_cli (0, "/regenerate\n/branches\n", NULL, "chat", "-m", chain_path, "--chat", id,
                  NULL);
  g_assert_cmpstr (out2, ==, ANSWER "\n 1: assistant: " ANSWER "\n*2: assistant: " ANSWER "\n");
  g_clear_pointer (&msgs, g_ptr_array_unref);
  msgs = ruv_store_load_chat (store, cli_chat_id, &error);
  g_assert_cmpuint (msgs->len, ==, 4);
  g_assert_cmpint (((RuvStoreMessage *) g_ptr_array_index (msgs, 3))->id, !=, a2_id);
  sib = ruv_store_list_siblings (store, a2_id, &error);
  g_assert_cmpuint (sib->len, ==, 2);

  out3 = run_cli (0, "/switch 1\n/branches\n/switch 9\n", NULL, "chat", "-m", chain_path,
                  "--chat", id, NULL);
  g_assert_cmpstr (out3, ==, "*1: assistant: " ANSWER "\n 2: assistant: " ANSWER "\n");
  g_clear_pointer (&msgs, g_ptr_array_unref);
  msgs = ruv_store_load_chat (store, cli_chat_id, &error);
  g_assert_cmpint (((RuvStoreMessage *) g_ptr_array_index (msgs, 3))->id, ==, a2_id);

  /* An unknown chat is an error. */
  g_free (run_cli (1, "", NULL, "chat", "-m", chain_path, "--chat", "999999", NULL));
}

static void
test_cli_list_export (void)
{
  g_autofree char *out = NULL;
  g_autofree char *file = g_build_filename (tmp_dir, "export.json", NULL);
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, cli_chat_id);
  g_autofree char *contents = NULL;
  g_autoptr(JsonNode) list = NULL;
  g_autoptr(JsonNode) exp = NULL;
  g_autoptr(GError) error = NULL;
  JsonArray *arr, *msgs;
  JsonObject *sess;
  guint i, n_asst = 0, n_down = 0;
  gboolean found = FALSE;

  if (cli == NULL || cli_chat_id == 0)
    {
      g_test_skip ("needs ruvllm-cli and /engine/chat-session/cli/chat");
      return;
    }
  out = run_cli (0, NULL, NULL, "chats", "--json", NULL);
  list = parse (out);
  arr = json_node_get_array (list);
  for (i = 0; i < json_array_get_length (arr); i++)
    {
      JsonObject *o = json_array_get_object_element (arr, i);

      if (json_object_get_int_member (o, "id") == cli_chat_id)
        {
          found = TRUE;
          g_assert_cmpstr (json_object_get_string_member (o, "title"), ==, "My chat");
        }
    }
  g_assert_true (found);

  g_free (run_cli (0, NULL, NULL, "export", id, "--format", "json", "-o", file, NULL));
  g_file_get_contents (file, &contents, NULL, &error);
  g_assert_no_error (error);
  exp = parse (contents);
  sess = json_array_get_object_element (
    json_object_get_array_member (json_node_get_object (exp), "sessions"), 0);
  msgs = json_object_get_array_member (sess, "messages");
  /* hi, answer, ab, answer, regenerated answer: both branches. */
  g_assert_cmpuint (json_array_get_length (msgs), ==, 5);
  for (i = 0; i < json_array_get_length (msgs); i++)
    {
      JsonObject *m = json_array_get_object_element (msgs, i);
      JsonNode *r = json_object_get_member (m, "rating");

      if (g_str_equal (json_object_get_string_member (m, "role"), "assistant"))
        n_asst++;
      if (r != NULL && JSON_NODE_HOLDS_OBJECT (r))
        {
          JsonObject *ro = json_node_get_object (r);

          g_assert_cmpstr (json_object_get_string_member (ro, "value"), ==, "down");
          g_assert_cmpstr (json_object_get_string_member (ro, "outcome"), ==, "applied");
          n_down++;
        }
    }
  g_assert_cmpuint (n_asst, ==, 3);
  g_assert_cmpuint (n_down, ==, 1);
  g_unlink (file);
}

static void
test_cli_kill (void)
{
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, cli_chat_id);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(GPtrArray) before = NULL;
  g_autoptr(GPtrArray) after = NULL;
  g_autofree char *out = NULL;
  GOutputStream *in;
  GInputStream *so;
  char buf[256];
  gsize got = 0;
  guint i;
  RuvStoreMessage *last;

  if (cli == NULL || cli_chat_id == 0)
    {
      g_test_skip ("needs ruvllm-cli and /engine/chat-session/cli/chat");
      return;
    }
  store = xdg_store ();
  before = ruv_store_load_chat (store, cli_chat_id, &error);
  g_assert_no_error (error);
  g_clear_object (&store);

  /* The cycle model streams a..z forever (up to -n; the context shifts). */
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                           G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error,
                           cli, "chat", "-m", cycle_path, "--chat", id, "-n", "100000000",
                           "-t", "1", NULL);
  g_assert_no_error (error);
  in = g_subprocess_get_stdin_pipe (proc);
  g_output_stream_write_all (in, "more\n", 5, NULL, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_flush (in, NULL, &error);
  /* Wait until well into the answer (several streaming saves), then kill. */
  so = g_subprocess_get_stdout_pipe (proc);
  while (got < 4096)
    {
      gssize n = g_input_stream_read (so, buf, sizeof buf, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (n, >, 0);
      got += (gsize) n;
    }
  g_usleep (300 * 1000);
  g_subprocess_send_signal (proc, SIGKILL);
  g_subprocess_wait (proc, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_signaled (proc));
  g_assert_cmpint (g_subprocess_get_term_sig (proc), ==, SIGKILL);

  /* `chats` opens it clean. */
  out = run_cli (0, NULL, NULL, "chats", "--json", NULL);
  g_assert_nonnull (strstr (out, "My chat"));

  store = xdg_store ();
  g_assert_null (ruv_store_get_recovery_report (store));
  g_assert_true (ruv_store_check_integrity (store, &error));
  g_assert_no_error (error);
  after = ruv_store_load_chat (store, cli_chat_id, &error);
  g_assert_no_error (error);
  /* Everything before is intact; the question is there; of the answer,
   * what the last save had (well over nothing: the kill came after 4 KiB). */
  g_assert_cmpuint (after->len, ==, before->len + 2);
  for (i = 0; i < before->len; i++)
    {
      RuvStoreMessage *x = g_ptr_array_index (before, i);
      RuvStoreMessage *y = g_ptr_array_index (after, i);

      g_assert_cmpint (x->id, ==, y->id);
      g_assert_cmpstr (x->content, ==, y->content);
      g_assert_cmpint (x->rating, ==, y->rating);
    }
  g_assert_cmpstr (((RuvStoreMessage *) g_ptr_array_index (after, before->len))->content, ==,
                   "more");
  last = g_ptr_array_index (after, before->len + 1);
  g_assert_cmpstr (last->role, ==, "assistant");
  g_assert_true (g_str_has_prefix (last->content, ANSWER "abcdefghijklmnopqrstuvwxyz"));
  g_assert_cmpuint (strlen (last->content), >=, 1024);
  /* Marked interrupted (or still incomplete until a store marks it). */
  g_assert_true (!last->complete || g_strcmp0 (last->finish_reason, "interrupted") == 0);
}

static void
test_cli_no_store (void)
{
  g_autofree char *out = NULL;
  g_autofree char *list_before = NULL;
  g_autofree char *list_after = NULL;

  if (cli == NULL)
    {
      g_test_skip ("ruvllm-cli is not built (set RUVLLM_CLI)");
      return;
    }
  list_before = run_cli (0, NULL, NULL, "chats", "--json", NULL);
  out = run_cli (0, "zz\n/good\n/regenerate\n", NULL, "chat", "-m", chain_path, "--temp", "0",
                 "--no-store", NULL);
  g_assert_cmpstr (out, ==, ANSWER "\n" ANSWER "\n");
  list_after = run_cli (0, NULL, NULL, "chats", "--json", NULL);
  g_assert_cmpstr (list_before, ==, list_after);
  g_free (run_cli (2, "", NULL, "chat", "-m", chain_path, "--no-store", "--chat", "1", NULL));
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  g_autofree char *cache = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("ruv-test-chat-session-XXXXXX", &error);
  g_assert_no_error (error);
  /* Before anything reads the user data dir: the CLI runs inherit it. */
  data = g_build_filename (tmp_dir, "data", NULL);
  g_setenv ("XDG_DATA_HOME", data, TRUE);
  /* chats' saved KV states go to the cache dir: keep them in tmp_dir too */
  cache = g_build_filename (tmp_dir, "cache", NULL);
  g_setenv ("XDG_CACHE_HOME", cache, TRUE);
  chain_path = write_model ("chain.gguf", FALSE);
  cycle_path = write_model ("cycle.gguf", TRUE);
  cli = ruv_test_cli_path ();

  g_test_add_func ("/engine/chat-session/turns", test_session_turns);
  g_test_add_func ("/engine/chat-session/branches", test_session_branches);
  g_test_add_func ("/engine/chat-session/ratings", test_session_ratings);
  g_test_add_func ("/engine/chat-session/params-json", test_params_json);
  g_test_add_func ("/engine/chat-session/kv-switch", test_session_kv_switch);
  g_test_add_func ("/engine/chat-session/cli/chat", test_cli_chat);
  g_test_add_func ("/engine/chat-session/cli/continue", test_cli_continue);
  g_test_add_func ("/engine/chat-session/cli/list-export", test_cli_list_export);
  g_test_add_func ("/engine/chat-session/cli/kill", test_cli_kill);
  g_test_add_func ("/engine/chat-session/cli/no-store", test_cli_no_store);
  ret = g_test_run ();

  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmp_dir);

    if (system (cmd) != 0)
      g_printerr ("could not remove %s\n", tmp_dir);
  }
  g_free (chain_path);
  g_free (cycle_path);
  g_free (tmp_dir);
  return ret;
}
