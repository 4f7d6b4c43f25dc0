/* cli-models.c — `ruvllm-cli models [--import FILE]`: the local model registry.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include "ruv-registry.h"
#include "ruvllm-cli.h"

int
ruv_cli_models (int    argc,
                char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new (": list local models");
  g_autoptr(RuvRegistry) reg = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *import = NULL;
  GOptionEntry entries[] = {
    { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir, "Models folder", "DIR" },
    { "import", 'i', 0, G_OPTION_ARG_FILENAME, &import, "Validate and add a local .gguf",
      "FILE" },
    { NULL }
  };
  guint i;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!ruv_cli_parse_options (ctx, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (dir == NULL)
    dir = ruv_registry_default_dir ();
  reg = ruv_registry_open (dir, &error);
  if (reg == NULL)
    return ruv_cli_fail (error);
  if (import != NULL)
    {
      const RuvRegistryModel *m = ruv_registry_import (reg, import, &error);

      if (m == NULL)
        return ruv_cli_fail (error);
      printf ("Imported %s\n", m->id);
      return RUV_CLI_EXIT_OK;
    }
  list = ruv_registry_list (reg);
  for (i = 0; i < list->len; i++)
    {
      RuvRegistryModel *m = list->pdata[i];
      g_autofree char *size = g_format_size (m->size);

      printf ("%-60s %10s  %-10s %s\n", m->id, size,
              m->architecture != NULL ? m->architecture : "?", m->name != NULL ? m->name : "");
    }
  if (list->len == 0)
    printf ("No models in %s. Try 'ruvllm-cli pull REPO'.\n", dir);
  return RUV_CLI_EXIT_OK;
}
