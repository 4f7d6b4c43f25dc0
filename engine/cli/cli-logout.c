/* cli-logout.c — `ruvllm-cli logout [--endpoint URL]`: remove the Hub access
 * token kept in the keyring for that endpoint (see cli-login.c).
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include "ruv-hub-token.h"
#include "ruvllm-cli.h"

int
ruv_cli_logout (int    argc,
                char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new (
    ": remove the Hugging Face access token from the keyring");
  g_autoptr(GError) error = NULL;
  g_autofree char *endpoint = NULL;
  g_autofree char *origin = NULL;
  GOptionEntry entries[] = {
    { "endpoint", 'e', 0, G_OPTION_ARG_STRING, &endpoint,
      "Hub URL (default: $HF_ENDPOINT, else https://huggingface.co)", "URL" },
    { NULL }
  };
  gboolean removed = FALSE;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!ruv_cli_parse_options (ctx, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc != 1)
    {
      fprintf (stderr, "Usage: ruvllm-cli logout [--endpoint URL]\n");
      return RUV_CLI_EXIT_USAGE;
    }
  origin = ruv_cli_hub_origin (endpoint, &error);
  if (origin == NULL || !ruv_hub_token_clear (origin, &removed, NULL, &error))
    return ruv_cli_fail (error);
  if (removed)
    printf ("Token for %s removed from the keyring.\n", origin);
  else
    printf ("No token was stored for %s.\n", origin);
  return RUV_CLI_EXIT_OK;
}
