/* cli-login.c — `ruvllm-cli login [--endpoint URL]`: keep a Hub access token
 * in the keyring for that endpoint.
 * SPDX-License-Identifier: MIT
 *
 * The token is read from standard input: from a terminal without echo, or
 * the first line of a pipe (`ruvllm-cli login < token-file`), never from the
 * command line, where ps and the shell history would see it. Later Hub
 * commands find it when $HF_TOKEN is not set (ruv_cli_hub_new).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ruv-error.h"
#include "ruv-hub-token.h"
#include "ruvllm-cli.h"

static struct termios saved_termios;

/* Ctrl-C (or Ctrl-\, a hang-up, a kill) while echo is off must not leave
 * the terminal without it. */
static void
restore_and_exit (int sig)
{
  tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved_termios);
  signal (sig, SIG_DFL);
  raise (sig);
}

/* Reads one line (at most RUV_HUB_TOKEN_MAX_LEN bytes and a newline) into a
 * new buffer; NULL and an error when the input is longer or unreadable. */
static char *
read_token_line (gboolean  tty,
                 GError  **error)
{
  gsize cap = RUV_HUB_TOKEN_MAX_LEN + 2;
  char *buf = g_malloc0 (cap + 1);
  gsize len = 0;
  int c;

  while (len < cap && (c = getc (stdin)) != EOF && c != '\n')
    buf[len++] = (char) c;
  if (len == cap)
    {
      ruv_hub_token_free (buf);
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "the token is too long");
      return NULL;
    }
  if (ferror (stdin))
    {
      ruv_hub_token_free (buf);
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot read the token from %s",
                   tty ? "the terminal" : "standard input");
      return NULL;
    }
  return buf;
}

static char *
read_token (const char  *origin,
            GError     **error)
{
  struct termios quiet;
  struct sigaction sa, old_int, old_term, old_quit, old_hup;
  gboolean tty = isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &saved_termios) == 0;
  char *token;

  if (!tty)
    return read_token_line (FALSE, error);
  fprintf (stderr, "Hugging Face access token for %s (input hidden): ", origin);
  fflush (stderr);
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = restore_and_exit;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, &old_int);
  sigaction (SIGTERM, &sa, &old_term);
  sigaction (SIGQUIT, &sa, &old_quit);
  sigaction (SIGHUP, &sa, &old_hup);
  quiet = saved_termios;
  quiet.c_lflag &= ~(tcflag_t) (ECHO | ECHONL);
  quiet.c_lflag |= ICANON;
  tcsetattr (STDIN_FILENO, TCSAFLUSH, &quiet);
  token = read_token_line (TRUE, error);
  tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved_termios);
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
  sigaction (SIGQUIT, &old_quit, NULL);
  sigaction (SIGHUP, &old_hup, NULL);
  fputc ('\n', stderr);
  return token;
}

int
ruv_cli_login (int    argc,
               char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new (
    ": keep a Hugging Face access token (read from standard input) in the keyring");
  g_autoptr(GError) error = NULL;
  g_autofree char *endpoint = NULL;
  g_autofree char *origin = NULL;
  GOptionEntry entries[] = {
    { "endpoint", 'e', 0, G_OPTION_ARG_STRING, &endpoint,
      "Hub URL (default: $HF_ENDPOINT, else https://huggingface.co)", "URL" },
    { NULL }
  };
  char *token;
  gboolean ok;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!ruv_cli_parse_options (ctx, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc != 1)
    {
      fprintf (stderr, "Usage: ruvllm-cli login [--endpoint URL] < TOKEN\n");
      return RUV_CLI_EXIT_USAGE;
    }
  origin = ruv_cli_hub_origin (endpoint, &error);
  if (origin == NULL)
    return ruv_cli_fail (error);
  token = read_token (origin, &error);
  if (token == NULL)
    return ruv_cli_fail (error);
  ok = ruv_hub_token_store (origin, token, NULL, &error);
  ruv_hub_token_free (token);
  if (!ok)
    return ruv_cli_fail (error);
  printf ("Token for %s stored in the keyring.\n", origin);
  if (g_getenv ("HF_TOKEN") != NULL && *g_getenv ("HF_TOKEN") != '\0')
    fprintf (stderr, "Note: $HF_TOKEN is set and is used instead while it is.\n");
  return RUV_CLI_EXIT_OK;
}
