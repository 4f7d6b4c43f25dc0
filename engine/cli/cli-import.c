/* cli-import.c — `ruvllm-cli import FILE`: chats exported as JSON, added as
 * new chats (all or nothing).
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include <glib/gstdio.h>

#include "ruv-error.h"
#include "ruv-store.h"
#include "ruvllm-cli.h"

RuvStore *ruv_cli_open_store (const char *db_path, GError **error);

#define MAX_IMPORT_FILE ((goffset) 512 * 1024 * 1024)

int
ruv_cli_import (int    argc,
                char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("FILE - import chats from JSON");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autofree char *db_path = NULL, *text = NULL;
  const GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db_path, "Database file (default: the app's)", "FILE" },
    { NULL }
  };
  GStatBuf sb;
  gsize len;
  gint n;
  guint i;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc != 2)
    {
      fprintf (stderr, "ruvllm-cli import: give one FILE\n");
      return RUV_CLI_EXIT_USAGE;
    }
  /* Check the size before reading it all into memory. */
  if (g_stat (argv[1], &sb) == 0 && sb.st_size > MAX_IMPORT_FILE)
    {
      g_set_error (&error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION,
                   "%s: larger than 512 MiB, refusing to import", argv[1]);
      return ruv_cli_fail (error);
    }
  if (!g_file_get_contents (argv[1], &text, &len, &error))
    return ruv_cli_fail (error);
  store = ruv_cli_open_store (db_path, &error);
  if (store == NULL)
    return ruv_cli_fail (error);
  n = ruv_store_import_json (store, text, (gssize) len, ids, &error);
  if (n < 0)
    return ruv_cli_fail (error);
  printf ("Imported %d chat%s", n, n == 1 ? "" : "s");
  for (i = 0; i < ids->len; i++)
    printf ("%s%" G_GINT64_FORMAT, i == 0 ? ": " : ", ", g_array_index (ids, gint64, i));
  printf ("\n");
  return RUV_CLI_EXIT_OK;
}
