/* cli-files.c — `ruvllm-cli files REPO`: a repository's files, sizes and sha256.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include "ruv-hub.h"
#include "ruvllm-cli.h"

static void
got (GObject      *source,
     GAsyncResult *result,
     gpointer      user_data)
{
  (void) source;
  *(GAsyncResult **) user_data = g_object_ref (result);
}

int
ruv_cli_files (int    argc,
               char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new ("REPO: list a Hub repository's files");
  g_autoptr(RuvHub) hub = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GError) error = NULL;
  char *revision = NULL;
  GOptionEntry entries[] = {
    { "revision", 'r', 0, G_OPTION_ARG_STRING, &revision, "Branch, tag or commit", "REV" },
    { NULL }
  };
  guint i;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!ruv_cli_parse_options (ctx, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc != 2)
    {
      fprintf (stderr, "Usage: ruvllm-cli files REPO [-r REVISION]\n");
      g_free (revision);
      return RUV_CLI_EXIT_USAGE;
    }
  hub = ruv_hub_new (NULL, g_getenv ("HF_TOKEN"));
  ruv_hub_list_files_async (hub, argv[1], revision, NULL, got, &res);
  while (res == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_free (revision);
  files = ruv_hub_list_files_finish (hub, res, &error);
  if (files == NULL)
    return ruv_cli_fail (error);
  for (i = 0; i < files->len; i++)
    {
      RuvHubFile *f = files->pdata[i];
      g_autofree char *size = g_format_size (f->size);

      printf ("%-64s %10s  %s\n", f->path, size, f->sha256 != NULL ? f->sha256 : "-");
    }
  return RUV_CLI_EXIT_OK;
}
