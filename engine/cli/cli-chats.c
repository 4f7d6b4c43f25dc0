/* cli-chats.c — `ruvllm-cli chats [--all] [--json]`: the stored chats.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include <json-glib/json-glib.h>

#include "ruv-store.h"
#include "ruvllm-cli.h"

/* Opens the store at --db or the default place. Shared by chats, export and
 * import through this declaration in each file. */
RuvStore *ruv_cli_open_store (const char *db_path, GError **error);

RuvStore *
ruv_cli_open_store (const char  *db_path,
                    GError     **error)
{
  RuvStore *store = db_path != NULL ? ruv_store_new_for_path (db_path, error)
                                    : ruv_store_new (error);

  if (store != NULL && ruv_store_get_recovery_report (store) != NULL)
    fprintf (stderr, "ruvllm-cli: %s\n", ruv_store_get_recovery_report (store));
  if (store != NULL && ruv_store_get_read_only_reason (store) != NULL)
    fprintf (stderr, "ruvllm-cli: %s\n", ruv_store_get_read_only_reason (store));
  return store;
}

static char *
format_time (gint64 us)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_local (us / G_USEC_PER_SEC);

  return t != NULL ? g_date_time_format (t, "%Y-%m-%d %H:%M") : g_strdup ("?");
}

int
ruv_cli_chats (int    argc,
               char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- list stored chats");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(GPtrArray) sessions = NULL;
  g_autofree char *db_path = NULL;
  gboolean json = FALSE, all = FALSE;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "all", 'a', 0, G_OPTION_ARG_NONE, &all, "Include archived chats", NULL },
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db_path, "Database file (default: the app's)", "FILE" },
    { NULL }
  };
  guint i;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc > 1)
    {
      fprintf (stderr, "ruvllm-cli chats: unexpected argument '%s'\n", argv[1]);
      return RUV_CLI_EXIT_USAGE;
    }
  store = ruv_cli_open_store (db_path, &error);
  if (store == NULL)
    return ruv_cli_fail (error);
  sessions = ruv_store_list_sessions (store, all, &error);
  if (sessions == NULL)
    return ruv_cli_fail (error);

  if (json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonGenerator) gen = json_generator_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_array (b);
      for (i = 0; i < sessions->len; i++)
        {
          RuvStoreSession *s = g_ptr_array_index (sessions, i);

          json_builder_begin_object (b);
          json_builder_set_member_name (b, "id");
          json_builder_add_int_value (b, s->id);
          json_builder_set_member_name (b, "title");
          json_builder_add_string_value (b, s->title);
          json_builder_set_member_name (b, "created_us");
          json_builder_add_int_value (b, s->created_us);
          json_builder_set_member_name (b, "updated_us");
          json_builder_add_int_value (b, s->updated_us);
          json_builder_set_member_name (b, "pinned");
          json_builder_add_boolean_value (b, s->pinned);
          json_builder_set_member_name (b, "archived");
          json_builder_add_boolean_value (b, s->archived);
          json_builder_set_member_name (b, "model");
          if (s->model != NULL)
            json_builder_add_string_value (b, s->model);
          else
            json_builder_add_null_value (b);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      root = json_builder_get_root (b);
      json_generator_set_root (gen, root);
      json_generator_set_pretty (gen, TRUE);
      text = json_generator_to_data (gen, NULL);
      printf ("%s\n", text);
      return RUV_CLI_EXIT_OK;
    }

  if (sessions->len == 0)
    printf ("No chats.\n");
  for (i = 0; i < sessions->len; i++)
    {
      RuvStoreSession *s = g_ptr_array_index (sessions, i);
      g_autofree char *when = format_time (s->updated_us);

      printf ("%6" G_GINT64_FORMAT "  %s  %s%s%s%s%s%s\n", s->id, when,
              s->pinned ? "[pinned] " : "", s->archived ? "[archived] " : "",
              *s->title != '\0' ? s->title : "(untitled)",
              s->model != NULL ? " (" : "", s->model != NULL ? s->model : "",
              s->model != NULL ? ")" : "");
    }
  return RUV_CLI_EXIT_OK;
}
