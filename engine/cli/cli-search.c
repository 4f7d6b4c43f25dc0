/* cli-search.c — `ruvllm-cli search QUERY [-n N]`: GGUF models on the Hub.
 * SPDX-License-Identifier: MIT
 *
 * The Hub comes from $HF_ENDPOINT and the token from $HF_TOKEN, else the
 * keyring (`ruvllm-cli login`).
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
ruv_cli_search (int    argc,
                char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new ("QUERY: search GGUF models on the Hub");
  g_autoptr(RuvHub) hub = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GPtrArray) hits = NULL;
  g_autoptr(GError) error = NULL;
  int limit = 20;
  GOptionEntry entries[] = {
    { "limit", 'n', 0, G_OPTION_ARG_INT, &limit, "Number of results (1-100)", "N" },
    { NULL }
  };
  guint i;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!ruv_cli_parse_options (ctx, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc != 2)
    {
      fprintf (stderr, "Usage: ruvllm-cli search QUERY [-n N]\n");
      return RUV_CLI_EXIT_USAGE;
    }
  hub = ruv_cli_hub_new ();
  ruv_hub_search_async (hub, argv[1], (guint) CLAMP (limit, 1, 100), NULL, got, &res);
  while (res == NULL)
    g_main_context_iteration (NULL, TRUE);
  hits = ruv_hub_search_finish (hub, res, &error);
  if (hits == NULL)
    return ruv_cli_fail (error);
  for (i = 0; i < hits->len; i++)
    {
      RuvHubModel *m = hits->pdata[i];

      printf ("%-60s %10" G_GUINT64_FORMAT " downloads%s\n", m->id, m->downloads,
              m->gated ? "  (gated)" : "");
    }
  if (hits->len == 0)
    printf ("No GGUF models match '%s'.\n", argv[1]);
  return RUV_CLI_EXIT_OK;
}
