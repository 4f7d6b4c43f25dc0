/* cli-files.c — `ruvllm-cli files REPO`: a repository's files, sizes and
 * sha256, and for each GGUF whether it fits in this machine's memory (from its
 * remote header, read with Range requests).
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include "ruv-hub.h"
#include "ruvllm-cli.h"

int
ruv_cli_files (int    argc,
               char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new ("REPO: list a Hub repository's files");
  g_autoptr(RuvHub) hub = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GPtrArray) fits = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *revision = NULL;
  gboolean no_fit = FALSE;
  GOptionEntry entries[] = {
    { "revision", 'r', 0, G_OPTION_ARG_STRING, &revision, "Branch, tag or commit", "REV" },
    { "no-fit", 0, 0, G_OPTION_ARG_NONE, &no_fit, "Do not read the GGUF headers", NULL },
    { NULL }
  };
  guint i;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!ruv_cli_parse_options (ctx, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc != 2)
    {
      fprintf (stderr, "Usage: ruvllm-cli files REPO [-r REVISION] [--no-fit]\n");
      return RUV_CLI_EXIT_USAGE;
    }
  hub = ruv_cli_hub_new ();
  ruv_hub_list_files_async (hub, argv[1], revision, NULL, ruv_cli_got_result, &res);
  ruv_cli_wait (&res);
  files = ruv_hub_list_files_finish (hub, res, &error);
  if (files == NULL)
    return ruv_cli_fail (error);
  if (!no_fit)
    fits = ruv_cli_remote_fits (hub, argv[1], revision, files, files);
  for (i = 0; i < files->len; i++)
    {
      RuvHubFile *f = files->pdata[i];
      g_autofree char *size = g_format_size (f->size);

      printf ("%-64s %10s  %s\n", f->path, size, f->sha256 != NULL ? f->sha256 : "-");
      if (fits != NULL && fits->pdata[i] != NULL)
        printf ("    RAM fit: %s\n", (const char *) fits->pdata[i]);
    }
  return RUV_CLI_EXIT_OK;
}
