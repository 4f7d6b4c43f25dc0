/* cli-chat.c — `ruvllm-cli chat -m MODEL [--system TEXT]`: a terminal chat.
 * SPDX-License-Identifier: MIT
 *
 * Reads one user message per line from stdin (so it can be scripted), writes
 * the answer as it streams, in the model's chat template. Ctrl-C cancels the
 * answer being written, not the program; /exit or end of input quits,
 * /reset forgets the conversation. The history is re-sent each turn; the
 * backend reuses the KV entries of the common prefix, so only the new turn
 * is evaluated.
 *
 * SIGINT is blocked in every thread and taken by a sigwait() thread, which
 * may then cancel a GCancellable (not async-signal-safe in a handler).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ruv-cpu-backend.h"
#include "ruvllm-cli.h"

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

static void
free_message (gpointer data)
{
  RuvChatMessage *m = data;

  g_free ((char *) m->role);
  g_free ((char *) m->content);
  g_free (m);
}

static void
add_message (GPtrArray  *history,
             const char *role,
             const char *content)
{
  RuvChatMessage *m = g_new0 (RuvChatMessage, 1);

  m->role = g_strdup (role);
  m->content = g_strdup (content);
  g_ptr_array_add (history, m);
}

/* The history as the contiguous array ruv_cpu_backend_chat takes. */
static RuvChatMessage *
flatten (GPtrArray *history)
{
  RuvChatMessage *v = g_new0 (RuvChatMessage, history->len + 1);
  guint i;

  for (i = 0; i < history->len; i++)
    v[i] = *(RuvChatMessage *) g_ptr_array_index (history, i);
  return v;
}

int
ruv_cli_chat (int    argc,
              char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvCpuBackend) backend = NULL;
  g_autoptr(RuvModelConfig) config = ruv_model_config_new ();
  g_autoptr(RuvGenerateParams) params = ruv_generate_params_new ();
  g_autoptr(GPtrArray) history = g_ptr_array_new_with_free_func (free_message);
  g_autofree char *model_path = NULL;
  g_autofree char *system_prompt = NULL;
  static sigset_t set;
  GThread *sig_thread;
  gboolean interactive = isatty (STDIN_FILENO);
  int n = 512, threads = 0, ctx_size = 0;
  double temp = params->temperature;
  gint64 seed = -1;
  char *line = NULL;
  size_t cap = 0;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL" },
    { "system", 0, 0, G_OPTION_ARG_STRING, &system_prompt, "System prompt", "TEXT" },
    { "n-predict", 'n', 0, G_OPTION_ARG_INT, &n, "Tokens per answer at most (512)", "N" },
    { "temp", 0, 0, G_OPTION_ARG_DOUBLE, &temp, "Temperature, 0 greedy (0.7)", "T" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "RNG seed (default: random)", "S" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads (default: all CPUs)", "N" },
    { "ctx-size", 'c', 0, G_OPTION_ARG_INT, &ctx_size, "Context size (default 4096)", "CTX" },
    { NULL }
  };

  g_option_context_set_summary (context,
                                "Chat in the terminal, one message per line; /exit quits, "
                                "/reset starts over, Ctrl-C stops an answer.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (model_path == NULL || argc != 1 || n < 1 || threads < 0 || ctx_size < 0)
    {
      fprintf (stderr, "ruvllm-cli chat: -m MODEL is required\n");
      return RUV_CLI_EXIT_USAGE;
    }
  params->max_tokens = (guint) n;
  params->temperature = (float) temp;
  if (seed >= 0)
    {
      params->has_seed = TRUE;
      params->seed = (guint64) seed;
    }
  if (!ruv_generate_params_validate (params, &error))
    return ruv_cli_fail (error);

  /* Before any other thread exists, so all of them inherit the mask. */
  sigemptyset (&set);
  sigaddset (&set, SIGINT);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
  sig_thread = g_thread_new ("ruv-sigint", signal_thread, &set);
  g_thread_unref (sig_thread);

  if (ctx_size > 0)
    config->max_context = (guint) ctx_size;
  config->n_threads = (guint) threads;
  backend = ruv_cpu_backend_new ();
  if (!ruv_cpu_backend_load_model (backend, model_path, config, NULL, &error))
    return ruv_cli_fail (error);
  if (system_prompt != NULL)
    add_message (history, "system", system_prompt);

  for (;;)
    {
      g_autofree RuvChatMessage *msgs = NULL;
      g_autoptr(RuvGenerateResult) res = NULL;
      g_autoptr(GCancellable) cancellable = NULL;
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
      if (g_str_equal (line, "/exit") || g_str_equal (line, "/quit"))
        break;
      if (g_str_equal (line, "/reset"))
        {
          g_ptr_array_set_size (history, system_prompt != NULL ? 1 : 0);
          continue;
        }

      add_message (history, "user", line);
      msgs = flatten (history);
      cancellable = g_cancellable_new ();
      g_mutex_lock (&current_lock);
      current = cancellable;
      g_mutex_unlock (&current_lock);
      res = ruv_cpu_backend_chat (backend, msgs, history->len, params, print_text, NULL,
                                  cancellable, &error);
      g_mutex_lock (&current_lock);
      current = NULL;
      g_mutex_unlock (&current_lock);
      if (res == NULL)
        {
          fprintf (stderr, "ruvllm-cli chat: %s\n", error->message);
          g_clear_error (&error);
          /* Drop the turn that failed (for example a conversation too long
           * for the context), so the next one can go on. */
          g_ptr_array_set_size (history, history->len - 1);
          continue;
        }
      printf ("\n");
      if (res->finish_reason == RUV_FINISH_REASON_CANCELLED)
        fprintf (stderr, "[stopped]\n");
      else if (res->finish_reason == RUV_FINISH_REASON_LENGTH)
        fprintf (stderr, "[stopped at the %d-token limit]\n", n);
      fflush (stdout);
      /* The partial answer of a cancelled turn stays in the conversation. */
      add_message (history, "assistant", res->text);
    }
  free (line);
  if (ferror (stdin))
    {
      fprintf (stderr, "ruvllm-cli chat: error reading input: %s\n", g_strerror (errno));
      return RUV_CLI_EXIT_ERROR;
    }
  return RUV_CLI_EXIT_OK;
}
