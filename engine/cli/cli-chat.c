/* cli-chat.c — `ruvllm-cli chat -m MODEL [--system TEXT] [--chat ID]
 * [--no-store]`: a terminal chat kept in the store like the app's.
 * SPDX-License-Identifier: MIT
 *
 * Reads one user message per line from stdin (so it can be scripted), writes
 * the answer as it streams, in the model's chat template. Ctrl-C cancels the
 * answer being written, not the program; /exit or end of input quits. The
 * history is re-sent each turn; the backend reuses the KV entries of the
 * common prefix, so only the new turn is evaluated.
 *
 * Everything goes through a RuvChatSession: the chat is stored (the user
 * data dir's database, or --db FILE; --no-store keeps it in a temporary
 * database removed at exit), answers are saved while they stream, and the
 * commands below rate, branch and rename it. stdout carries the answers and
 * what /branches and /history print; notes go to stderr.
 *
 * SIGINT is blocked in every thread and taken by a sigwait() thread, which
 * may then cancel a GCancellable (not async-signal-safe in a handler).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "ruv-chat-session.h"
#include "ruv-cpu-backend.h"
#include "ruv-error.h"
#include "ruv-learner.h"
#include "ruv-model.h"
#include "ruvllm-cli.h"

/* cli-chats.c */
RuvStore *ruv_cli_open_store (const char *db_path, GError **error);

static const char commands_help[] =
  "/good, /bad        rate the last answer (the model learns from it)\n"
  "/clear-rating      take the rating of the last answer back\n"
  "/regenerate        a new answer beside the last one\n"
  "/edit TEXT         replace your last message by TEXT and answer it\n"
  "/branches          the alternatives at the last fork; /switch N shows one\n"
  "/history           the conversation shown\n"
  "/title TEXT        rename the chat\n"
  "/new               start a new chat\n"
  "/exit              quit (so does end of input)\n";

static GMutex        current_lock;
static GCancellable *current;     /* the answer being generated, or NULL */

static gpointer
signal_thread (gpointer data)
{
  sigset_t *set = data;
  int sig;

  for (;;)
    {
      if (sigwait (set, &sig) != 0)
        continue;
      g_mutex_lock (&current_lock);
      if (current != NULL)
        g_cancellable_cancel (current);
      else
        {
          static const char msg[] = "\n(type /exit to quit)\n";

          if (write (STDERR_FILENO, msg, sizeof msg - 1) < 0)
            {
              /* Nothing to do about a failing stderr. */
            }
        }
      g_mutex_unlock (&current_lock);
    }
  return NULL;
}

static gboolean
print_text (const char *text,
            gpointer    user_data)
{
  fputs (text, stdout);
  fflush (stdout);
  return TRUE;
}

/* Removes a directory tree made by g_dir_make_tmp (the --no-store database,
 * its WAL files and backups folder). */
static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    {
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          if (g_file_test (child, G_FILE_TEST_IS_DIR) &&
              !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
            remove_tree (child);
          else
            g_unlink (child);
        }
      g_dir_close (dir);
    }
  g_rmdir (path);
}

typedef struct
{
  RuvChatSession *session;
  RuvCpuBackend  *backend;
  RuvStore       *store;
  RuvLearner     *learner;       /* made at the first rating */
  gboolean        learn;         /* --no-learn turns it off */
  gboolean        learner_tried;
  const char     *model_key;
} Chat;

/* Runs one generation (send, regenerate or edit) with Ctrl-C able to stop it
 * and prints how it ended. */
typedef enum
{
  TURN_SEND,
  TURN_REGENERATE,
  TURN_EDIT,
} TurnKind;

static void
turn (Chat       *chat,
      TurnKind    kind,
      const char *text)
{
  g_autoptr(RuvGenerateResult) res = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;

  g_mutex_lock (&current_lock);
  current = cancellable;
  g_mutex_unlock (&current_lock);
  switch (kind)
    {
    case TURN_SEND:
      res = ruv_chat_session_send (chat->session, text, print_text, NULL, cancellable, &error);
      break;
    case TURN_REGENERATE:
      res = ruv_chat_session_regenerate (chat->session, print_text, NULL, cancellable, &error);
      break;
    case TURN_EDIT:
      res = ruv_chat_session_edit_last (chat->session, text, print_text, NULL, cancellable,
                                        &error);
      break;
    default:
      g_assert_not_reached ();
    }
  g_mutex_lock (&current_lock);
  current = NULL;
  g_mutex_unlock (&current_lock);
  if (res == NULL)
    {
      fprintf (stderr, "ruvllm-cli chat: %s\n", error->message);
      return;
    }
  printf ("\n");
  fflush (stdout);
  if (res->finish_reason == RUV_FINISH_REASON_CANCELLED)
    fprintf (stderr, "[stopped]\n");
  else if (res->finish_reason == RUV_FINISH_REASON_LENGTH)
    fprintf (stderr, "[stopped at the %u-token limit]\n",
             ruv_chat_session_get_params (chat->session)->max_tokens);
}

static void
ensure_learner (Chat *chat)
{
  g_autoptr(GError) error = NULL;
  RuvModel *model;

  if (!chat->learn || chat->learner_tried)
    return;
  chat->learner_tried = TRUE;
  /* On the backend's own model, so answers go through the adapters and
   * keep their activations for the ratings. */
  model = ruv_cpu_backend_get_model (chat->backend);
  if (model != NULL)
    chat->learner = ruv_learner_new (model, chat->model_key, chat->store, NULL, &error);
  else
    g_set_error (&error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION, "no model is loaded");
  if (chat->learner == NULL)
    {
      fprintf (stderr, "ruvllm-cli chat: learning from ratings is off: %s\n", error->message);
      return;
    }
  ruv_chat_session_set_learner (chat->session, chat->learner);
}

static void
rate (Chat      *chat,
      RuvRating  rating)
{
  g_autoptr(GError) error = NULL;
  RuvAdaptationResult res;
  const char *what = rating == RUV_RATING_UP ? "up" : rating == RUV_RATING_DOWN ? "down"
                                                                                : "cleared";

  ensure_learner (chat);
  if (!ruv_chat_session_rate_last (chat->session, rating, &res, &error))
    {
      fprintf (stderr, "ruvllm-cli chat: %s\n", error->message);
      return;
    }
  if (res.applied)
    fprintf (stderr, "[rated %s; adapted in %" G_GUINT64_FORMAT " us, loss %.4f -> %.4f]\n",
             what, res.latency_us, res.loss, res.loss_after);
  else
    fprintf (stderr, "[rated %s; adaptation skipped]\n", what);
}

static void
print_branches (Chat *chat)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) b = NULL;
  guint shown, i;

  b = ruv_chat_session_list_branches (chat->session, &shown, &error);
  if (b == NULL)
    {
      fprintf (stderr, "ruvllm-cli chat: %s\n", error->message);
      return;
    }
  for (i = 0; i < b->len; i++)
    {
      RuvStoreMessage *m = g_ptr_array_index (b, i);
      g_autofree char *line = g_utf8_substring (m->content, 0,
                                                MIN (g_utf8_strlen (m->content, -1), 60));

      g_strdelimit (line, "\n\r", ' ');
      printf ("%c%u: %s: %s\n", i == shown ? '*' : ' ', i + 1, m->role, line);
    }
  fflush (stdout);
}

static void
switch_branch (Chat       *chat,
               const char *arg)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) b = NULL;
  guint64 n;

  b = ruv_chat_session_list_branches (chat->session, NULL, &error);
  if (b == NULL)
    {
      fprintf (stderr, "ruvllm-cli chat: %s\n", error->message);
      return;
    }
  if (!g_ascii_string_to_unsigned (arg, 10, 1, MAX (b->len, 1), &n, NULL) || b->len == 0)
    {
      fprintf (stderr, "ruvllm-cli chat: /switch N takes a number from /branches (1..%u)\n",
               b->len);
      return;
    }
  if (!ruv_chat_session_switch_branch (chat->session,
                                       ((RuvStoreMessage *) g_ptr_array_index (b, n - 1))->id,
                                       &error))
    fprintf (stderr, "ruvllm-cli chat: %s\n", error->message);
}

static void
print_history (Chat *chat)
{
  GPtrArray *h = ruv_chat_session_get_history (chat->session);
  guint i;

  for (i = 0; i < h->len; i++)
    {
      RuvStoreMessage *m = g_ptr_array_index (h, i);

      printf ("%s: %s\n", m->role, m->content);
    }
  fflush (stdout);
}

/* A line starting with '/': handles it; FALSE for /exit. "//text" sends
 * "/text". */
static gboolean
command (Chat       *chat,
         const char *line)
{
  g_autoptr(GError) error = NULL;
  const char *arg = strchr (line, ' ');
  g_autofree char *name = arg != NULL ? g_strndup (line, (gsize) (arg - line))
                                      : g_strdup (line);

  if (arg != NULL)
    while (*arg == ' ')
      arg++;
  if (g_str_equal (name, "/exit") || g_str_equal (name, "/quit"))
    return FALSE;
  if (g_str_equal (name, "/good"))
    rate (chat, RUV_RATING_UP);
  else if (g_str_equal (name, "/bad"))
    rate (chat, RUV_RATING_DOWN);
  else if (g_str_equal (name, "/clear-rating"))
    rate (chat, RUV_RATING_CLEARED);
  else if (g_str_equal (name, "/regenerate"))
    turn (chat, TURN_REGENERATE, NULL);
  else if (g_str_equal (name, "/edit") && arg != NULL && *arg != '\0')
    turn (chat, TURN_EDIT, arg);
  else if (g_str_equal (name, "/branches"))
    print_branches (chat);
  else if (g_str_equal (name, "/switch") && arg != NULL)
    switch_branch (chat, arg);
  else if (g_str_equal (name, "/history"))
    print_history (chat);
  else if (g_str_equal (name, "/title") && arg != NULL && *arg != '\0')
    {
      if (!ruv_chat_session_set_title (chat->session, arg, &error))
        fprintf (stderr, "ruvllm-cli chat: %s\n", error->message);
    }
  else if (g_str_equal (name, "/new") || g_str_equal (name, "/reset"))
    {
      g_autoptr(RuvGenerateParams) p =
        ruv_generate_params_copy (ruv_chat_session_get_params (chat->session));
      g_autofree char *sys = g_strdup (ruv_chat_session_get_system_prompt (chat->session));

      if (!ruv_chat_session_create (chat->session, sys, p, &error))
        fprintf (stderr, "ruvllm-cli chat: %s\n", error->message);
      else
        fprintf (stderr, "[chat %" G_GINT64_FORMAT "]\n", ruv_chat_session_get_id (chat->session));
    }
  else if (g_str_equal (name, "/help"))
    fputs (commands_help, stderr);
  else
    fprintf (stderr, "ruvllm-cli chat: unknown command or missing argument: %s (/help lists "
             "them; //text sends /text)\n", name);
  return TRUE;
}

int
ruv_cli_chat (int    argc,
              char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvCpuBackend) backend = NULL;
  g_autoptr(RuvModelConfig) config = ruv_model_config_new ();
  g_autoptr(RuvGenerateParams) params = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(RuvChatSession) session = NULL;
  g_autoptr(RuvLearner) learner = NULL;
  g_autofree char *model_path = NULL;
  g_autofree char *system_prompt = NULL;
  g_autofree char *db_path = NULL;
  g_autofree char *tmp_dir = NULL;
  g_autofree char *model_key = NULL;
  static sigset_t set;
  GThread *sig_thread;
  gboolean interactive = isatty (STDIN_FILENO);
  gboolean no_store = FALSE, no_learn = FALSE, ok = TRUE;
  int n = -1, threads = 0, ctx_size = 0;
  double temp = NAN;
  gint64 seed = -1, chat_id = 0;
  char *line = NULL;
  size_t cap = 0;
  Chat chat = { NULL };
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL" },
    { "system", 0, 0, G_OPTION_ARG_STRING, &system_prompt, "System prompt (new chats)", "TEXT" },
    { "chat", 0, 0, G_OPTION_ARG_INT64, &chat_id, "Continue the stored chat ID", "ID" },
    { "no-store", 0, 0, G_OPTION_ARG_NONE, &no_store, "Keep nothing after exit", NULL },
    { "no-learn", 0, 0, G_OPTION_ARG_NONE, &no_learn, "Ratings do not adapt the model", NULL },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db_path, "Database file (default: user data dir)",
      "FILE" },
    { "n-predict", 'n', 0, G_OPTION_ARG_INT, &n, "Tokens per answer at most (512)", "N" },
    { "temp", 0, 0, G_OPTION_ARG_DOUBLE, &temp, "Temperature, 0 greedy (0.7)", "T" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "RNG seed (default: random)", "S" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (default: all CPUs)", "N" },
    { "ctx-size", 'c', 0, G_OPTION_ARG_INT, &ctx_size, "Context size (default 4096)", "CTX" },
    { NULL }
  };

  g_option_context_set_summary (context,
                                "Chat in the terminal, one message per line, kept in the chat "
                                "history; Ctrl-C stops an answer. Commands:\n\n"
                                "/good, /bad, /clear-rating, /regenerate, /edit TEXT, /branches, "
                                "/switch N, /history, /title TEXT, /new, /help, /exit");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (model_path == NULL || argc != 1 || n == 0 || n < -1 || threads < 0 || ctx_size < 0 ||
      chat_id < 0 || (no_store && (chat_id > 0 || db_path != NULL)))
    {
      fprintf (stderr, "ruvllm-cli chat: -m MODEL is required (--no-store goes with neither "
               "--chat nor --db)\n");
      return RUV_CLI_EXIT_USAGE;
    }

  /* Before any other thread exists, so all of them inherit the mask. */
  sigemptyset (&set);
  sigaddset (&set, SIGINT);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
  sig_thread = g_thread_new ("ruv-sigint", signal_thread, &set);
  g_thread_unref (sig_thread);

  if (no_store)
    {
      tmp_dir = g_dir_make_tmp ("ruvllm-chat-XXXXXX", &error);
      if (tmp_dir == NULL)
        return ruv_cli_fail (error);
      db_path = g_build_filename (tmp_dir, "chat.db", NULL);
    }
  store = ruv_cli_open_store (db_path, &error);
  if (store == NULL)
    ok = FALSE;
  else if (ruv_store_get_read_only (store))
    {
      g_set_error (&error, RUV_ERROR, RUV_ERROR_STORAGE,
                   "the chat history is read-only, so this chat could not be kept "
                   "(use --no-store to chat without keeping it)");
      ok = FALSE;
    }

  if (ok)
    {
      if (ctx_size > 0)
        config->max_context = (guint) ctx_size;
      config->n_threads = (guint) threads;
      backend = ruv_cpu_backend_new ();
      ok = ruv_cpu_backend_load_model (backend, model_path, config, NULL, &error);
    }
  if (ok)
    {
      model_key = g_path_get_basename (model_path);
      session = ruv_chat_session_new (backend, store, model_key);
      if (chat_id > 0)
        {
          ok = ruv_chat_session_open (session, chat_id, &error);
          if (ok && system_prompt != NULL)
            fprintf (stderr, "ruvllm-cli chat: --system is ignored: chat %" G_GINT64_FORMAT
                     " keeps its own\n", chat_id);
          if (ok)
            params = ruv_generate_params_copy (ruv_chat_session_get_params (session));
        }
      else
        {
          params = ruv_generate_params_new ();
          params->max_tokens = 512;
        }
    }
  if (ok)
    {
      /* Options given on the command line override a continued chat's. */
      if (n > 0)
        params->max_tokens = (guint) n;
      if (!isnan (temp))
        params->temperature = (float) temp;
      if (seed >= 0)
        {
          params->has_seed = TRUE;
          params->seed = (guint64) seed;
        }
      ok = ruv_generate_params_validate (params, &error);
    }
  if (ok)
    ok = chat_id > 0 ? ruv_chat_session_set_params (session, params, &error)
                     : ruv_chat_session_create (session, system_prompt, params, &error);
  if (!ok)
    {
      if (tmp_dir != NULL)
        {
          g_clear_object (&store);
          remove_tree (tmp_dir);
        }
      return ruv_cli_fail (error);
    }
  if (!no_store)
    fprintf (stderr, "[chat %" G_GINT64_FORMAT "]\n", ruv_chat_session_get_id (session));

  chat.session = session;
  chat.store = store;
  chat.backend = backend;
  chat.learn = !no_learn;
  chat.model_key = model_key;

  for (;;)
    {
      ssize_t len;

      if (interactive)
        {
          fputs ("> ", stdout);
          fflush (stdout);
        }
      errno = 0;
      len = getline (&line, &cap, stdin);
      if (len < 0)
        break;
      while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
      if (len == 0)
        continue;
      if (line[0] == '/' && line[1] != '/')
        {
          if (!command (&chat, line))
            break;
          continue;
        }
      turn (&chat, TURN_SEND, line[0] == '/' ? line + 1 : line);
    }
  free (line);
  if (ferror (stdin))
    {
      fprintf (stderr, "ruvllm-cli chat: error reading input: %s\n", g_strerror (errno));
      ok = FALSE;
    }

  /* What the instant loop learnt becomes a snapshot, so the next chat with
   * this model starts from it. */
  learner = g_steal_pointer (&chat.learner);
  if (learner != NULL && ruv_chat_session_get_n_applied (session) > 0 && !no_store &&
      ruv_learner_snapshot (learner, "chat", &error) == 0 && error != NULL)
    {
      fprintf (stderr, "ruvllm-cli chat: the adapter was not saved: %s\n", error->message);
      g_clear_error (&error);
    }
  if (tmp_dir != NULL)
    {
      g_clear_object (&session);
      g_clear_object (&learner);
      g_clear_object (&store);
      remove_tree (tmp_dir);
    }
  return ok ? RUV_CLI_EXIT_OK : RUV_CLI_EXIT_ERROR;
}
