/* cli-export.c — `ruvllm-cli export [CHAT_ID|--all] --format md|json -o FILE`.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-store.h"
#include "ruvllm-cli.h"

RuvStore *ruv_cli_open_store (const char *db_path, GError **error);

int
ruv_cli_export (int    argc,
                char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("[CHAT_ID|--all] - export chats");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autofree char *db_path = NULL, *format = NULL, *output = NULL, *text = NULL;
  gboolean all = FALSE;
  gint64 id = 0;
  const GOptionEntry entries[] = {
    { "all", 'a', 0, G_OPTION_ARG_NONE, &all, "Export every chat", NULL },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format, "md or json", "FORMAT" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Output file ('-': stdout)", "FILE" },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db_path, "Database file (default: the app's)", "FILE" },
    { NULL }
  };
  RuvStoreFormat fmt;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (format == NULL || output == NULL)
    {
      fprintf (stderr, "ruvllm-cli export: --format md|json and -o FILE are required\n");
      return RUV_CLI_EXIT_USAGE;
    }
  if (g_str_equal (format, "md") || g_str_equal (format, "markdown"))
    fmt = RUV_STORE_FORMAT_MARKDOWN;
  else if (g_str_equal (format, "json"))
    fmt = RUV_STORE_FORMAT_JSON;
  else
    {
      fprintf (stderr, "ruvllm-cli export: unknown format '%s' (md or json)\n", format);
      return RUV_CLI_EXIT_USAGE;
    }
  if ((argc == 2) == all || argc > 2)
    {
      fprintf (stderr, "ruvllm-cli export: give one CHAT_ID or --all\n");
      return RUV_CLI_EXIT_USAGE;
    }
  if (argc == 2)
    {
      char *end = NULL;

      errno = 0;
      id = g_ascii_strtoll (argv[1], &end, 10);
      if (errno != 0 || end == argv[1] || *end != '\0' || id <= 0)
        {
          fprintf (stderr, "ruvllm-cli export: '%s' is not a chat id\n", argv[1]);
          return RUV_CLI_EXIT_USAGE;
        }
    }

  store = ruv_cli_open_store (db_path, &error);
  if (store == NULL)
    return ruv_cli_fail (error);
  text = ruv_store_export (store, id, fmt, &error);
  if (text == NULL)
    return ruv_cli_fail (error);
  if (g_str_equal (output, "-"))
    {
      fputs (text, stdout);
      if (fmt == RUV_STORE_FORMAT_JSON)
        fputc ('\n', stdout);
      return fflush (stdout) == 0 ? RUV_CLI_EXIT_OK : RUV_CLI_EXIT_ERROR;
    }
  /* Old or new content, never a mixture (D16). */
  if (!g_file_set_contents_full (output, text, (gssize) strlen (text),
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0644, &error))
    return ruv_cli_fail (error);
  return RUV_CLI_EXIT_OK;
}
