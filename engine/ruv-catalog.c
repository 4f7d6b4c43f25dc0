/* ruv-catalog.c — the curated catalog of small chat models.
 * SPDX-License-Identifier: MIT
 *
 * { "version": 1, "models": [ { "id", "name", "repository", "file",
 *   "quantization", "size_bytes", "parameters", "license", "description" } ] }
 */
#include "ruv-catalog.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "ruv-error.h"
#include "ruv-hub.h"

/* 1 TiB: no catalog model comes near it. */
#define MAX_SIZE (G_GUINT64_CONSTANT (1) << 40)

void
ruv_catalog_entry_free (RuvCatalogEntry *e)
{
  if (e == NULL)
    return;
  g_free (e->id);
  g_free (e->name);
  g_free (e->repository);
  g_free (e->file);
  g_free (e->quantization);
  g_free (e->parameters);
  g_free (e->license);
  g_free (e->description);
  g_free (e);
}

static char *
req_string (JsonObject  *o,
            const char  *member,
            guint        index,
            GError     **error)
{
  JsonNode *n = json_object_get_member (o, member);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING
      || *json_node_get_string (n) == '\0' || strlen (json_node_get_string (n)) > 1024
      || !g_utf8_validate (json_node_get_string (n), -1, NULL))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "catalog: model %u: '%s' is missing or not a non-empty string", index, member);
      return NULL;
    }
  return g_strdup (json_node_get_string (n));
}

static gboolean
id_ok (const char *id)
{
  const char *p;

  for (p = id; *p != '\0'; p++)
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '.' && *p != '-' && *p != '_')
      return FALSE;
  return p - id <= 64;
}

GPtrArray *
ruv_catalog_load_from_data (const char  *data,
                            gssize       length,
                            GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GPtrArray) out = NULL;
  g_autoptr(GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
  GError *local_error = NULL;
  JsonNode *root, *models;
  JsonArray *arr;
  guint i;

  g_return_val_if_fail (data != NULL, NULL);
  if (!json_parser_load_from_data (parser, data, length, &local_error))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "catalog: %s", local_error->message);
      g_error_free (local_error);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)
      || json_object_get_int_member_with_default (json_node_get_object (root), "version", 0) != 1)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "catalog: expected an object with \"version\": 1");
      return NULL;
    }
  models = json_object_get_member (json_node_get_object (root), "models");
  if (models == NULL || !JSON_NODE_HOLDS_ARRAY (models))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "catalog: \"models\" is not an array");
      return NULL;
    }
  arr = json_node_get_array (models);
  out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_catalog_entry_free);
  for (i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      RuvCatalogEntry *e;
      JsonObject *o;
      JsonNode *size;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "catalog: model %u is not an object",
                       i);
          return NULL;
        }
      o = json_node_get_object (n);
      e = g_new0 (RuvCatalogEntry, 1);
      g_ptr_array_add (out, e);
      if ((e->id = req_string (o, "id", i, error)) == NULL
          || (e->name = req_string (o, "name", i, error)) == NULL
          || (e->repository = req_string (o, "repository", i, error)) == NULL
          || (e->file = req_string (o, "file", i, error)) == NULL
          || (e->quantization = req_string (o, "quantization", i, error)) == NULL
          || (e->parameters = req_string (o, "parameters", i, error)) == NULL
          || (e->license = req_string (o, "license", i, error)) == NULL
          || (e->description = req_string (o, "description", i, error)) == NULL)
        return NULL;
      if (!id_ok (e->id) || g_hash_table_contains (ids, e->id))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                       "catalog: model %u: id '%s' is invalid or repeated", i, e->id);
          return NULL;
        }
      g_hash_table_add (ids, e->id);
      if (!ruv_hub_check_repo_id (e->repository, &local_error)
          || !ruv_hub_check_path (e->file, &local_error))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "catalog: model '%s': %s", e->id,
                       local_error->message);
          g_error_free (local_error);
          return NULL;
        }
      if (!g_str_has_suffix (e->file, ".gguf"))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                       "catalog: model '%s': file '%s' is not a .gguf", e->id, e->file);
          return NULL;
        }
      size = json_object_get_member (o, "size_bytes");
      if (size == NULL || !JSON_NODE_HOLDS_VALUE (size)
          || json_node_get_value_type (size) != G_TYPE_INT64 || json_node_get_int (size) <= 0
          || (guint64) json_node_get_int (size) > MAX_SIZE)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                       "catalog: model '%s': size_bytes must be a positive size below 1 TiB",
                       e->id);
          return NULL;
        }
      e->size_bytes = (guint64) json_node_get_int (size);
    }
  return g_steal_pointer (&out);
}

GPtrArray *
ruv_catalog_load_file (const char  *path,
                       GError     **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  GError *local_error = NULL;
  GPtrArray *out;

  if (!g_file_get_contents (path, &data, &len, &local_error))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "catalog: %s", local_error->message);
      g_error_free (local_error);
      return NULL;
    }
  out = ruv_catalog_load_from_data (data, (gssize) len, error);
  if (out == NULL && error != NULL && *error != NULL)
    g_prefix_error (error, "%s: ", path);
  return out;
}

GPtrArray *
ruv_catalog_load_default (GError **error)
{
  const char *env = g_getenv ("RUVLLM_CATALOG");
  const char *const *dirs;
  guint i;

  if (env != NULL && *env != '\0')
    return ruv_catalog_load_file (env, error);
  dirs = g_get_system_data_dirs ();
  for (i = 0; dirs[i] != NULL; i++)
    {
      g_autofree char *path = g_build_filename (dirs[i], "ruvllm", "catalog.json", NULL);

      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return ruv_catalog_load_file (path, error);
    }
  g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
               "catalog.json not found (set RUVLLM_CATALOG or install the app data)");
  return NULL;
}

const RuvCatalogEntry *
ruv_catalog_find (GPtrArray  *catalog,
                  const char *id)
{
  guint i;

  for (i = 0; catalog != NULL && i < catalog->len; i++)
    if (strcmp (((RuvCatalogEntry *) catalog->pdata[i])->id, id) == 0)
      return catalog->pdata[i];
  return NULL;
}
