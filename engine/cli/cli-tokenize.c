/* cli-tokenize.c — `ruvllm-cli tokenize -m MODEL --text TEXT [--no-special] [--json]`.
 * SPDX-License-Identifier: MIT
 *
 * BOS/EOS are added as the model's metadata says (llama_tokenize with
 * add_special = true); --no-special treats control tokens written in the text
 * as plain text (parse_special = false), like lref tokenize --special 0.
 */
#include <stdio.h>

#include "ruv-model.h"
#include "ruv-tokenizer.h"
#include "ruvllm-cli.h"

int
ruv_cli_tokenize (int    argc,
                  char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvModel) model = NULL;
  g_autoptr(RuvTokenizer) tok = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autofree char *model_path = NULL;
  g_autofree char *text = NULL;
  gboolean no_special = FALSE, json = FALSE;
  guint i;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "GGUF model file", "MODEL" },
    { "text", 0, 0, G_OPTION_ARG_STRING, &text, "Text to tokenize", "TEXT" },
    { "no-special", 0, 0, G_OPTION_ARG_NONE, &no_special,
      "Do not turn control tokens written in the text into those tokens", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print {\"ids\":[...]}", NULL },
    { NULL }
  };

  g_option_context_set_summary (context, "Token ids of a text, as the model's tokenizer gives.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (model_path == NULL || text == NULL || argc != 1)
    {
      fprintf (stderr, "ruvllm-cli tokenize: -m MODEL and --text TEXT are required\n");
      return RUV_CLI_EXIT_USAGE;
    }

  model = ruv_model_new_from_file (model_path, &error);
  if (model == NULL)
    return ruv_cli_fail (error);
  tok = ruv_tokenizer_new_from_gguf (ruv_model_get_gguf (model), &error);
  if (tok == NULL)
    return ruv_cli_fail (error);
  ids = ruv_tokenizer_encode (tok, text, -1, TRUE, !no_special, &error);
  if (ids == NULL)
    return ruv_cli_fail (error);

  if (json)
    {
      printf ("{\"ids\":[");
      for (i = 0; i < ids->len; i++)
        printf ("%s%d", i > 0 ? "," : "", g_array_index (ids, gint32, i));
      printf ("]}\n");
    }
  else
    for (i = 0; i < ids->len; i++)
      {
        gint32 id = g_array_index (ids, gint32, i);
        gsize len = 0;
        const char *piece = ruv_tokenizer_token_to_piece (tok, id, TRUE, &len);
        g_autofree char *raw = g_strndup (piece != NULL ? piece : "", len);
        g_autofree char *shown = g_strescape (raw, NULL);

        printf ("%6d  '%s'\n", id, shown);
      }
  return RUV_CLI_EXIT_OK;
}
