/* ruv-registry.c — the local model registry over <models_dir>/registry.json.
 * SPDX-License-Identifier: MIT
 *
 * { "version": 1, "models": [ { "id", "path", "repository", "name",
 *   "architecture", "sha256", "size", "added", "last_used", "imported" } ] }
 */
#include "ruv-registry.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "ruv-error.h"
#include "ruv-gguf.h"

struct _RuvRegistry
{
  char       *dir;
  char       *index;
  GHashTable *models;   /* id -> RuvRegistryModel */
};

static void
model_free (RuvRegistryModel *m)
{
  g_free (m->id);
  g_free (m->path);
  g_free (m->repository);
  g_free (m->name);
  g_free (m->architecture);
  g_free (m->sha256);
  g_free (m);
}

char *
ruv_registry_default_dir (void)
{
  const char *env = g_getenv ("RUVLLM_MODELS_DIR");

  if (env != NULL && *env != '\0')
    return g_canonicalize_filename (env, NULL);
  return g_build_filename (g_get_user_data_dir (), "ruvllm", "models", NULL);
}

static const char *
str_member (JsonObject *o,
            const char *name)
{
  return json_object_get_string_member_with_default (o, name, NULL);
}

static void
load (RuvRegistry *self)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *text = NULL;
  gsize len = 0;
  JsonNode *root, *models;
  JsonArray *arr;
  guint i;

  if (!g_file_get_contents (self->index, &text, &len, NULL))
    return;
  if (!json_parser_load_from_data (parser, text, (gssize) len, NULL)
      || (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root)
      || (models = json_object_get_member (json_node_get_object (root), "models")) == NULL
      || !JSON_NODE_HOLDS_ARRAY (models))
    {
      g_autofree char *aside = g_strconcat (self->index, ".corrupt", NULL);

      g_warning ("%s is corrupt; set aside as %s", self->index, aside);
      g_rename (self->index, aside);
      return;
    }
  arr = json_node_get_array (models);
  for (i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      RuvRegistryModel *m;
      JsonObject *o;
      GStatBuf st;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        continue;
      o = json_node_get_object (n);
      if (str_member (o, "id") == NULL || str_member (o, "path") == NULL
          || !g_path_is_absolute (str_member (o, "path"))
          || g_stat (str_member (o, "path"), &st) != 0)
        continue;
      m = g_new0 (RuvRegistryModel, 1);
      m->id = g_strdup (str_member (o, "id"));
      /* Canonical, so ".." cannot sneak past the inside-the-folder check. */
      m->path = g_canonicalize_filename (str_member (o, "path"), NULL);
      m->repository = g_strdup (str_member (o, "repository"));
      m->name = g_strdup (str_member (o, "name"));
      m->architecture = g_strdup (str_member (o, "architecture"));
      m->sha256 = g_strdup (str_member (o, "sha256"));
      m->size = (guint64) st.st_size;
      m->added = json_object_get_int_member_with_default (o, "added", 0);
      m->last_used = json_object_get_int_member_with_default (o, "last_used", 0);
      m->imported = json_object_get_boolean_member_with_default (o, "imported", FALSE);
      g_hash_table_replace (self->models, m->id, m);
    }
}

static gint
by_id (gconstpointer a,
       gconstpointer b)
{
  const RuvRegistryModel *ma = *(RuvRegistryModel *const *) a;
  const RuvRegistryModel *mb = *(RuvRegistryModel *const *) b;

  return strcmp (ma->id, mb->id);
}

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

static gboolean
save (RuvRegistry *self,
      GError     **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GPtrArray) list = ruv_registry_list (self);
  g_autofree char *text = NULL;
  GError *local_error = NULL;
  guint i;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "models");
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
      json_builder_set_member_name (b, "size");
      json_builder_add_int_value (b, (gint64) m->size);
      json_builder_set_member_name (b, "added");
      json_builder_add_int_value (b, m->added);
      json_builder_set_member_name (b, "last_used");
      json_builder_add_int_value (b, m->last_used);
      json_builder_set_member_name (b, "imported");
      json_builder_add_boolean_value (b, m->imported);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  if (!g_file_set_contents_full (self->index, text, -1,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0644, &local_error))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "model registry: %s", local_error->message);
      g_error_free (local_error);
      return FALSE;
    }
  return TRUE;
}

RuvRegistry *
ruv_registry_open (const char  *models_dir,
                   GError     **error)
{
  g_autoptr(RuvRegistry) self = g_new0 (RuvRegistry, 1);

  g_return_val_if_fail (models_dir != NULL, NULL);
  self->dir = g_canonicalize_filename (models_dir, NULL);
  self->index = g_build_filename (self->dir, "registry.json", NULL);
  self->models = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) model_free);
  if (g_mkdir_with_parents (self->dir, 0755) != 0)
    {
      int e = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot create %s: %s", self->dir,
                   g_strerror (e));
      return NULL;
    }
  load (self);
  return g_steal_pointer (&self);
}

void
ruv_registry_free (RuvRegistry *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->models, g_hash_table_unref);
  g_free (self->dir);
  g_free (self->index);
  g_free (self);
}

const char *
ruv_registry_get_dir (RuvRegistry *self)
{
  return self->dir;
}

GPtrArray *
ruv_registry_list (RuvRegistry *self)
{
  GPtrArray *out = g_ptr_array_new ();
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, self->models);
  while (g_hash_table_iter_next (&it, NULL, &value))
    g_ptr_array_add (out, value);
  g_ptr_array_sort (out, by_id);
  return out;
}

const RuvRegistryModel *
ruv_registry_find (RuvRegistry *self,
                   const char  *id)
{
  return g_hash_table_lookup (self->models, id);
}

/* Maps the file, validates it with the full parser, reads name and
 * architecture, and hashes it when sha256 is NULL. */
static RuvRegistryModel *
inspect (const char  *path,
         const char  *sha256,
         GError     **error)
{
  g_autoptr(GMappedFile) mf = NULL;
  g_autoptr(RuvGguf) gguf = NULL;
  g_autofree char *base = g_path_get_basename (path);
  GError *local_error = NULL;
  RuvRegistryModel *m;
  const char *s = NULL;

  mf = g_mapped_file_new (path, FALSE, &local_error);
  if (mf == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s", local_error->message);
      g_error_free (local_error);
      return NULL;
    }
  gguf = ruv_gguf_parse ((const guint8 *) g_mapped_file_get_contents (mf),
                         g_mapped_file_get_length (mf), base, error);
  if (gguf == NULL)
    return NULL;
  m = g_new0 (RuvRegistryModel, 1);
  m->path = g_canonicalize_filename (path, NULL);
  m->size = g_mapped_file_get_length (mf);
  if (ruv_gguf_get_string (gguf, "general.name", &s, NULL))
    m->name = g_strdup (s);
  else
    m->name = g_strdup (base);
  if (ruv_gguf_get_string (gguf, "general.architecture", &s, NULL))
    m->architecture = g_strdup (s);
  if (sha256 != NULL)
    m->sha256 = g_ascii_strdown (sha256, -1);
  else
    m->sha256 = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                             (const guchar *) g_mapped_file_get_contents (mf),
                                             g_mapped_file_get_length (mf));
  m->added = g_get_real_time () / G_USEC_PER_SEC;
  return m;
}

static gboolean
inside (RuvRegistry *self,
        const char  *path)
{
  gsize l = strlen (self->dir);

  return strncmp (path, self->dir, l) == 0 && path[l] == '/';
}

const RuvRegistryModel *
ruv_registry_add_download (RuvRegistry  *self,
                           const char   *path,
                           const char   *repository,
                           const char   *sha256,
                           GError      **error)
{
  RuvRegistryModel *m = inspect (path, sha256, error);

  if (m == NULL)
    return NULL;
  if (!inside (self, m->path))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "%s is not inside %s", m->path,
                   self->dir);
      model_free (m);
      return NULL;
    }
  m->id = g_strdup (m->path + strlen (self->dir) + 1);
  m->repository = g_strdup (repository);
  g_hash_table_replace (self->models, m->id, m);
  if (!save (self, error))
    return NULL;
  return m;
}

const RuvRegistryModel *
ruv_registry_import (RuvRegistry  *self,
                     const char   *path,
                     GError      **error)
{
  RuvRegistryModel *m = inspect (path, NULL, error);
  g_autofree char *base = NULL;

  if (m == NULL)
    return NULL;
  if (inside (self, m->path))
    m->id = g_strdup (m->path + strlen (self->dir) + 1);
  else
    {
      base = g_path_get_basename (m->path);
      m->id = g_strdup_printf ("local/%.12s-%s", m->sha256, base);
      m->imported = TRUE;
    }
  g_hash_table_replace (self->models, m->id, m);
  if (!save (self, error))
    return NULL;
  return m;
}

gboolean
ruv_registry_remove (RuvRegistry  *self,
                     const char   *id,
                     GError      **error)
{
  RuvRegistryModel *m = g_hash_table_lookup (self->models, id);

  if (m == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND, "no model '%s' in the registry", id);
      return FALSE;
    }
  if (!m->imported && inside (self, m->path) && g_unlink (m->path) != 0 && errno != ENOENT)
    {
      int e = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot delete %s: %s", m->path,
                   g_strerror (e));
      return FALSE;
    }
  g_hash_table_remove (self->models, id);
  return save (self, error);
}

gboolean
ruv_registry_touch (RuvRegistry  *self,
                    const char   *id,
                    GError      **error)
{
  RuvRegistryModel *m = g_hash_table_lookup (self->models, id);

  if (m == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND, "no model '%s' in the registry", id);
      return FALSE;
    }
  m->last_used = g_get_real_time () / G_USEC_PER_SEC;
  return save (self, error);
}
