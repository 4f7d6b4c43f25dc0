/* cli-models.c — `ruvllm-cli models [--import FILE] [--json]`: the local
 * model registry (the store's models table).
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include <json-glib/json-glib.h>

#include "ruv-registry.h"
#include "ruvllm-cli.h"

static void
add_str (JsonBuilder *b,
         const char  *k,
         const char  *v)
{
  json_builder_set_member_name (b, k);
  if (v != NULL)
    json_builder_add_string_value (b, v);
  else
    json_builder_add_null_value (b);
}

static void
add_int (JsonBuilder *b,
         const char  *k,
         gint64       v)
{
  json_builder_set_member_name (b, k);
  json_builder_add_int_value (b, v);
}

/* [ { "id", "path", "repository", "name", "architecture", "sha256", "size",
 *     "added", "last_used", "imported" } ] */
static void
print_json (GPtrArray *list)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  guint i;

  json_builder_begin_array (b);
  for (i = 0; i < list->len; i++)
    {
      RuvRegistryModel *m = list->pdata[i];

      json_builder_begin_object (b);
      add_str (b, "id", m->id);
      add_str (b, "path", m->path);
      add_str (b, "repository", m->repository);
      add_str (b, "name", m->name);
      add_str (b, "architecture", m->architecture);
      add_str (b, "sha256", m->sha256);
      add_int (b, "size", (gint64) m->size);
      add_int (b, "added", m->added);
      add_int (b, "last_used", m->last_used);
      json_builder_set_member_name (b, "imported");
      json_builder_add_boolean_value (b, m->imported);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

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
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print a JSON array", NULL },
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
  if (json)
    {
      print_json (list);
      return RUV_CLI_EXIT_OK;
    }
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
