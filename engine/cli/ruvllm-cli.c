/* ruvllm-cli.c — ruvllm-cli's entry point: a table of sub-commands.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ruv-error.h"
#include "ruvllm-cli.h"

typedef struct
{
  const char *name;
  int       (*run) (int argc, char **argv);
  const char *summary;
} SubCommand;

static const SubCommand *
sub_commands (gsize *n)
{
  /* Weak symbols: run is NULL when that sub-command's file is not built. */
  static SubCommand table[20];

  table[0] = (SubCommand) { "info", ruv_cli_info, "MODEL [--json]: describe a GGUF model" };
  table[1] = (SubCommand) { "tokenize", ruv_cli_tokenize,
                            "-m MODEL --text TEXT [--no-special] [--json]" };
  table[2] = (SubCommand) { "generate", ruv_cli_generate,
                            "-m MODEL (-p TEXT | --tokens 1,2,3) [-n N] ... [--json]" };
  table[3] = (SubCommand) { "logits", ruv_cli_logits,
                            "-m MODEL --tokens 1,2,3 [--top K] [-t N] [--json]: "
                            "teacher-forced raw logits" };
  table[4] = (SubCommand) { "chat", ruv_cli_chat,
                            "-m MODEL [--system TEXT] [--chat ID] [--no-store]: stored chat" };
  table[5] = (SubCommand) { "bench", ruv_cli_bench,
                            "-m MODEL [-p 512] [-n 128] [-t 2] [-r 3] [--json]" };
  table[6] = (SubCommand) { "quantize", ruv_cli_quantize, "IN.gguf OUT.gguf TYPE" };
  table[7] = (SubCommand) { "search", ruv_cli_search, "QUERY [-n N]: GGUF models on the Hub" };
  table[8] = (SubCommand) { "files", ruv_cli_files, "REPO: a Hub repository's files" };
  table[9] = (SubCommand) { "pull", ruv_cli_pull, "REPO[:QUANT]: download and verify" };
  table[10] = (SubCommand) { "models", ruv_cli_models, "[--import FILE] [--json]: local models" };
  table[11] = (SubCommand) { "rm", ruv_cli_rm, "ID: delete a local model" };
  table[12] = (SubCommand) { "chats", ruv_cli_chats, "[--all] [--json]: stored chats" };
  table[13] = (SubCommand) { "export", ruv_cli_export,
                             "[CHAT_ID|--all] --format md|json -o FILE: export chats" };
  table[14] = (SubCommand) { "import", ruv_cli_import, "FILE: import chats exported as JSON" };
  table[15] = (SubCommand) { "store-bench", ruv_cli_store_bench,
                             "[-n 5000] [--search 100000] [--dir DIR]: chat store timings" };
  table[16] = (SubCommand) { "adapt", ruv_cli_adapt,
                             "-m MODEL --ratings FILE.jsonl --lora-out B.gguf [--lora-in A.gguf] "
                             "[--strategy S] [--deep]: learn from ratings" };
  table[17] = (SubCommand) { "score", ruv_cli_score,
                             "-m MODEL --pairs FILE.jsonl [--lora A.gguf] [--json]: "
                             "log p(response | prompt)" };
  table[18] = (SubCommand) { "login", ruv_cli_login,
                             "[--endpoint URL]: keep a Hub token (from stdin) in the keyring" };
  table[19] = (SubCommand) { "logout", ruv_cli_logout,
                             "[--endpoint URL]: remove the Hub token from the keyring" };
  *n = G_N_ELEMENTS (table);
  return table;
}

static void
usage (FILE *out)
{
  const SubCommand *cmds;
  gsize n, i;

  cmds = sub_commands (&n);
  fprintf (out, "Usage: ruvllm-cli COMMAND [OPTIONS]\n\nCommands:\n");
  for (i = 0; i < n; i++)
    fprintf (out, "  %-9s %s%s\n", cmds[i].name, cmds[i].summary,
             cmds[i].run != NULL ? "" : " (not built)");
  fprintf (out, "\nRun 'ruvllm-cli COMMAND --help' for a command's options.\n");
}

int
ruv_cli_fail (const GError *error)
{
  fprintf (stderr, "ruvllm-cli: %s\n", error != NULL ? error->message : "failed");
  return RUV_CLI_EXIT_ERROR;
}

gboolean
ruv_cli_parse_options (GOptionContext *context,
                       int            *argc,
                       char         ***argv)
{
  g_autoptr(GError) error = NULL;

  if (!g_option_context_parse (context, argc, argv, &error))
    {
      fprintf (stderr, "ruvllm-cli %s: %s\nRun with --help for usage.\n",
               (*argc > 0 && (*argv)[0] != NULL) ? (*argv)[0] : "", error->message);
      return FALSE;
    }
  return TRUE;
}

GArray *
ruv_cli_parse_tokens (const char  *text,
                      GError     **error)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_auto(GStrv) items = NULL;
  gsize i;

  if (text == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "no token ids given");
      return NULL;
    }
  items = g_strsplit (text, ",", -1);
  for (i = 0; items[i] != NULL; i++)
    {
      const char *item = g_strstrip (items[i]);
      char *end = NULL;
      gint64 v;

      if (*item == '\0' && items[i + 1] == NULL && i > 0)
        break;   /* a trailing comma */
      errno = 0;
      v = g_ascii_strtoll (item, &end, 10);
      if (*item == '\0' || end == NULL || *end != '\0' || errno != 0 || v < 0 ||
          v > G_MAXINT32)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                       "token list item %" G_GSIZE_FORMAT " (\"%s\") is not a token id",
                       i + 1, item);
          return NULL;
        }
      g_array_append_vals (ids, &(gint32) { (gint32) v }, 1);
    }
  if (ids->len == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "no token ids given");
      return NULL;
    }
  return g_steal_pointer (&ids);
}

int
main (int    argc,
      char **argv)
{
  const SubCommand *cmds;
  gsize n, i;

  setlocale (LC_ALL, "");
  /* JSON and numbers on the command line use '.' whatever the locale. */
  setlocale (LC_NUMERIC, "C");
  if (argc < 2)
    {
      usage (stderr);
      return RUV_CLI_EXIT_USAGE;
    }
  if (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h") ||
      g_str_equal (argv[1], "help"))
    {
      usage (stdout);
      return RUV_CLI_EXIT_OK;
    }

  cmds = sub_commands (&n);
  for (i = 0; i < n; i++)
    if (g_str_equal (argv[1], cmds[i].name))
      {
        if (cmds[i].run == NULL)
          {
            fprintf (stderr, "ruvllm-cli: the %s command is not built into this binary\n",
                     cmds[i].name);
            return RUV_CLI_EXIT_ERROR;
          }
        return cmds[i].run (argc - 1, argv + 1);
      }
  fprintf (stderr, "ruvllm-cli: unknown command '%s'\n\n", argv[1]);
  usage (stderr);
  return RUV_CLI_EXIT_USAGE;
}
