/* cli-info.c — `ruvllm-cli info MODEL [--json]`: what a GGUF model is.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include <json-glib/json-glib.h>

#include "rk.h"
#include "ruv-model-private.h"
#include "ruvllm-cli.h"

static void
add_int (JsonBuilder *b,
         const char  *key,
         gint64       value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, value);
}

static void
add_str (JsonBuilder *b,
         const char  *key,
         const char  *value)
{
  json_builder_set_member_name (b, key);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
print_json (RuvModel *model)
{
  const RuvHParams *hp = &ruv_model_get_weights (model)->hp;
  const guint64 *type_bytes = ruv_model_get_type_bytes (model);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  guint t;

  json_builder_begin_object (b);
  add_str (b, "path", ruv_model_get_path (model));
  add_str (b, "name", ruv_model_get_name (model));
  add_str (b, "architecture", ruv_model_get_architecture (model));
  add_int (b, "n_params", (gint64) ruv_model_get_n_params (model));
  add_str (b, "size_class", ruv_model_size_name (ruv_model_get_size_class (model)));
  add_str (b, "quantization", ruv_model_get_quantization (model));
  add_str (b, "precision", ruv_precision_name (ruv_model_get_precision (model)));
  add_int (b, "context_length", ruv_model_get_context_length (model));
  add_int (b, "vocab_size", ruv_model_get_vocab_size (model));
  add_int (b, "embedding_length", hp->n_embd);
  add_int (b, "n_layers", hp->n_layer);
  add_int (b, "feed_forward_length", hp->n_ff);
  add_int (b, "n_heads", hp->n_head);
  add_int (b, "n_kv_heads", hp->n_head_kv);
  add_int (b, "head_dim", hp->head_dim);
  add_int (b, "rope_dims", hp->n_rot);
  json_builder_set_member_name (b, "rope_freq_base");
  json_builder_add_double_value (b, hp->rope_freq_base);
  json_builder_set_member_name (b, "rms_eps");
  json_builder_add_double_value (b, hp->rms_eps);
  add_int (b, "file_size", (gint64) ruv_model_get_file_size (model));
  add_str (b, "chat_template", ruv_model_get_chat_template (model));
  json_builder_set_member_name (b, "tensor_bytes");
  json_builder_begin_object (b);
  for (t = 0; t < RK_TYPE_COUNT; t++)
    if (type_bytes[t] > 0)
      add_int (b, rk_type_name (t), (gint64) type_bytes[t]);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "memory");
  json_builder_begin_object (b);
  add_int (b, "mapped_bytes", (gint64) ruv_model_get_mapped_bytes (model));
  add_int (b, "rss_bytes", (gint64) ruv_process_rss_bytes ());
  json_builder_end_object (b);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

static void
print_text (RuvModel *model)
{
  const RuvHParams *hp = &ruv_model_get_weights (model)->hp;
  const guint64 *type_bytes = ruv_model_get_type_bytes (model);
  const char *tmpl = ruv_model_get_chat_template (model);
  guint t;

  printf ("path:            %s\n", ruv_model_get_path (model));
  if (ruv_model_get_name (model) != NULL)
    printf ("name:            %s\n", ruv_model_get_name (model));
  printf ("architecture:    %s\n", ruv_model_get_architecture (model));
  printf ("parameters:      %" G_GUINT64_FORMAT " (%s)\n", ruv_model_get_n_params (model),
          ruv_model_size_name (ruv_model_get_size_class (model)));
  printf ("quantization:    %s (%s)\n", ruv_model_get_quantization (model),
          ruv_precision_name (ruv_model_get_precision (model)));
  printf ("context length:  %" G_GINT64_FORMAT "\n", hp->n_ctx_train);
  printf ("vocabulary:      %" G_GINT64_FORMAT "\n", hp->n_vocab);
  printf ("shape:           d%" G_GINT64_FORMAT " L%" G_GINT64_FORMAT " heads %" G_GINT64_FORMAT
          "/%" G_GINT64_FORMAT " head_dim %" G_GINT64_FORMAT " ffn %" G_GINT64_FORMAT "\n",
          hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_ff);
  printf ("rope:            %s, %" G_GINT64_FORMAT " dims, base %g, scale %g%s\n",
          hp->rope_neox ? "neox" : "normal", hp->n_rot, hp->rope_freq_base,
          hp->rope_freq_scale,
          ruv_model_get_weights (model)->rope_factors != NULL ? ", frequency factors" : "");
  printf ("file size:       %" G_GUINT64_FORMAT " bytes\n", ruv_model_get_file_size (model));
  printf ("tensor types:   ");
  for (t = 0; t < RK_TYPE_COUNT; t++)
    if (type_bytes[t] > 0)
      printf (" %s %.1f MiB", rk_type_name (t), type_bytes[t] / 1048576.0);
  printf ("\n");
  printf ("chat template:   %s\n", tmpl != NULL ? "yes" : "none");
  printf ("memory:          mapped %.1f MiB, RSS %.1f MiB\n",
          ruv_model_get_mapped_bytes (model) / 1048576.0,
          ruv_process_rss_bytes () / 1048576.0);
  {
    g_autoptr(GError) error = NULL;
    g_autofree char *fit = ruv_cli_fit_text (ruv_model_get_gguf (model),
                                             ruv_model_get_file_size (model), 0, &error);

    printf ("RAM fit:         %s\n", fit != NULL ? fit : error->message);
  }
}

int
ruv_cli_info (int    argc,
              char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("MODEL");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvModel) model = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object", NULL },
    { NULL }
  };

  g_option_context_set_summary (context, "Describe a GGUF model.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc != 2)
    {
      fprintf (stderr, "ruvllm-cli info: give exactly one MODEL file\n");
      return RUV_CLI_EXIT_USAGE;
    }
  model = ruv_model_new_from_file (argv[1], &error);
  if (model == NULL)
    return ruv_cli_fail (error);
  if (json)
    print_json (model);
  else
    print_text (model);
  return RUV_CLI_EXIT_OK;
}
