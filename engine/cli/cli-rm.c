/* cli-rm.c — `ruvllm-cli rm ID`: delete a model (file and registry entry).
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include "ruv-registry.h"
#include "ruvllm-cli.h"

int
ruv_cli_rm (int    argc,
            char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new ("ID: delete a local model");
  g_autoptr(RuvRegistry) reg = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  GOptionEntry entries[] = {
    { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir, "Models folder", "DIR" },
    { NULL }
  };

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!ruv_cli_parse_options (ctx, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc != 2)
    {
      fprintf (stderr, "Usage: ruvllm-cli rm ID   (ids from 'ruvllm-cli models')\n");
      return RUV_CLI_EXIT_USAGE;
    }
  if (dir == NULL)
    dir = ruv_registry_default_dir ();
  reg = ruv_registry_open (dir, &error);
  if (reg == NULL || !ruv_registry_remove (reg, argv[1], &error))
    return ruv_cli_fail (error);
  printf ("Removed %s\n", argv[1]);
  return RUV_CLI_EXIT_OK;
}
