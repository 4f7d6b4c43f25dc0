/* ruv-registry.c — the local model registry over the store's models table.
 * SPDX-License-Identifier: MIT
 *
 * The table is the truth; self->models mirrors its "ready" rows so that
 * lookups hand out stable borrowed records. A row's metadata_json holds
 *   { "name", "architecture", "imported": bool, "added": unix seconds }.
 * The legacy index (<models_dir>/registry.json, version 1) had
 *   { "version": 1, "models": [ { "id", "path", "repository", "name",
 *     "architecture", "sha256", "size", "added", "last_used", "imported" } ] }
 * and is read once, by migrate_legacy ().
 */
#include "ruv-registry.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "ruv-error.h"
#include "ruv-gguf.h"

#define LOCAL_REPO "local"

struct _RuvRegistry
{
  char       *dir;
  RuvStore   *store;
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
  JsonNode *n = json_object_get_member (o, name);

  return n != NULL && JSON_NODE_HOLDS_VALUE (n)
         && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n) : NULL;
}

static gboolean
inside (RuvRegistry *self,
        const char  *path)
{
  gsize l = strlen (self->dir);

  return strncmp (path, self->dir, l) == 0 && path[l] == '/';
}

static char *
metadata_json (const RuvRegistryModel *m)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (b);
  if (m->name != NULL)
    {
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, m->name);
    }
  if (m->architecture != NULL)
    {
      json_builder_set_member_name (b, "architecture");
      json_builder_add_string_value (b, m->architecture);
    }
  json_builder_set_member_name (b, "imported");
  json_builder_add_boolean_value (b, m->imported);
  json_builder_set_member_name (b, "added");
  json_builder_add_int_value (b, m->added);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

/* A registry record from a "ready" row whose file exists; NULL otherwise. */
static RuvRegistryModel *
model_from_row (const RuvStoreModel *row)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  RuvRegistryModel *m;
  JsonNode *root;
  GStatBuf st;

  if (g_strcmp0 (row->state, "ready") != 0 || row->path == NULL
      || !g_path_is_absolute (row->path) || g_stat (row->path, &st) != 0
      || !S_ISREG (st.st_mode))
    return NULL;
  m = g_new0 (RuvRegistryModel, 1);
  m->id = g_strdup_printf ("%s/%s", row->repo, row->file);
  m->store_id = row->id;
  /* Canonical, so ".." cannot sneak past the inside-the-folder check. */
  m->path = g_canonicalize_filename (row->path, NULL);
  m->repository = g_strcmp0 (row->repo, LOCAL_REPO) != 0 ? g_strdup (row->repo) : NULL;
  m->sha256 = g_strdup (row->sha256);
  m->size = (guint64) st.st_size;
  m->added = row->added_us / G_USEC_PER_SEC;
  m->last_used = row->last_used_us / G_USEC_PER_SEC;
  if (row->metadata_json != NULL
      && json_parser_load_from_data (parser, row->metadata_json, -1, NULL)
      && (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonObject *o = json_node_get_object (root);

      m->name = g_strdup (str_member (o, "name"));
      m->architecture = g_strdup (str_member (o, "architecture"));
      m->imported = json_object_get_boolean_member_with_default (o, "imported", FALSE);
      m->added = json_object_get_int_member_with_default (o, "added", m->added);
    }
  if (m->name == NULL)
    m->name = g_path_get_basename (m->path);
  return m;
}

/* Writes m (whose id is set) as a ready row of (repo, file); sets store_id. */
static gboolean
record (RuvRegistry      *self,
        RuvRegistryModel *m,
        const char       *repo,
        const char       *file,
        GError          **error)
{
  g_autofree char *meta = metadata_json (m);
  RuvStoreModel row = { 0 };

  row.repo = (char *) repo;
  row.file = (char *) file;
  row.path = m->path;
  row.size = (gint64) m->size;
  row.sha256 = m->sha256;
  row.state = (char *) "ready";
  row.metadata_json = meta;
  m->store_id = ruv_store_upsert_model (self->store, &row, error);
  if (m->store_id == 0)
    return FALSE;
  /* Clears a download error left on the row; bytes_done = the whole file. */
  return ruv_store_set_model_progress (self->store, m->store_id, "ready", (gint64) m->size,
                                       NULL, error);
}

/* The one-time import of a version 1 registry.json. Entries whose file is
 * gone are skipped; the file is renamed only once every entry is stored. */
static gboolean
migrate_legacy (RuvRegistry  *self,
                GError      **error)
{
  g_autofree char *index = g_build_filename (self->dir, "registry.json", NULL);
  g_autofree char *done = g_strconcat (index, ".migrated", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *text = NULL;
  gsize len = 0;
  JsonNode *root, *models;
  JsonArray *arr;
  guint i;

  if (!g_file_get_contents (index, &text, &len, NULL))
    return TRUE;
  if (len > 64u << 20 || !json_parser_load_from_data (parser, text, (gssize) len, NULL)
      || (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root)
      || (models = json_object_get_member (json_node_get_object (root), "models")) == NULL
      || !JSON_NODE_HOLDS_ARRAY (models))
    {
      g_autofree char *aside = g_strconcat (index, ".corrupt", NULL);

      g_warning ("%s is corrupt; set aside as %s", index, aside);
      g_rename (index, aside);
      return TRUE;
    }
  arr = json_node_get_array (models);
  for (i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      RuvRegistryModel m = { 0 };
      g_autofree char *path = NULL;
      g_autofree char *repo = NULL;
      const char *id, *file, *repository;
      JsonObject *o;
      GStatBuf st;
      gsize rl;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        continue;
      o = json_node_get_object (n);
      id = str_member (o, "id");
      if (id == NULL || str_member (o, "path") == NULL
          || !g_path_is_absolute (str_member (o, "path"))
          || g_stat (str_member (o, "path"), &st) != 0 || !S_ISREG (st.st_mode))
        continue;
      path = g_canonicalize_filename (str_member (o, "path"), NULL);
      /* id was "<repository>/<file>" for downloads, "local/..." for imports. */
      repository = str_member (o, "repository");
      rl = repository != NULL ? strlen (repository) : 0;
      if (repository != NULL && strncmp (id, repository, rl) == 0 && id[rl] == '/'
          && id[rl + 1] != '\0')
        {
          repo = g_strdup (repository);
          file = id + rl + 1;
        }
      else if (g_str_has_prefix (id, LOCAL_REPO "/") && id[strlen (LOCAL_REPO "/")] != '\0')
        {
          repo = g_strdup (LOCAL_REPO);
          file = id + strlen (LOCAL_REPO "/");
        }
      else
        {
          repo = g_strdup (LOCAL_REPO);
          file = id;
        }
      m.path = path;
      m.name = (char *) str_member (o, "name");
      m.architecture = (char *) str_member (o, "architecture");
      m.sha256 = (char *) str_member (o, "sha256");
      m.size = (guint64) st.st_size;
      m.added = json_object_get_int_member_with_default (o, "added", 0);
      m.imported = json_object_get_boolean_member_with_default (o, "imported", FALSE)
                   || !inside (self, path);
      if (!record (self, &m, repo, file, error))
        {
          g_prefix_error (error, "migrating %s: ", index);
          return FALSE;
        }
    }
  if (g_rename (index, done) != 0)
    g_warning ("cannot rename %s: %s", index, g_strerror (errno));
  return TRUE;
}

/* Mirrors the store's ready rows; drops rows whose file is gone. */
static gboolean
load (RuvRegistry  *self,
      GError      **error)
{
  g_autoptr(GPtrArray) rows = ruv_store_list_models (self->store, error);
  guint i;

  if (rows == NULL)
    return FALSE;
  g_hash_table_remove_all (self->models);
  for (i = 0; i < rows->len; i++)
    {
      RuvStoreModel *row = rows->pdata[i];
      RuvRegistryModel *m = model_from_row (row);

      if (m != NULL)
        g_hash_table_replace (self->models, m->id, m);
      else if (g_strcmp0 (row->state, "ready") == 0 && !ruv_store_get_read_only (self->store))
        {
          g_autoptr(GError) local_error = NULL;

          /* The file was deleted behind our back: forget it. */
          if (!ruv_store_delete_model (self->store, row->id, &local_error))
            g_warning ("cannot forget the missing model %s/%s: %s", row->repo, row->file,
                       local_error->message);
        }
    }
  return TRUE;
}

RuvRegistry *
ruv_registry_open_with_store (RuvStore    *store,
                              const char  *models_dir,
                              GError     **error)
{
  g_autoptr(RuvRegistry) self = g_new0 (RuvRegistry, 1);

  g_return_val_if_fail (store == NULL || RUV_IS_STORE (store), NULL);
  g_return_val_if_fail (models_dir != NULL, NULL);
  self->dir = g_canonicalize_filename (models_dir, NULL);
  self->models = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) model_free);
  if (g_mkdir_with_parents (self->dir, 0755) != 0)
    {
      int e = errno;

      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot create %s: %s", self->dir,
                   g_strerror (e));
      return NULL;
    }
  self->store = store != NULL ? g_object_ref (store) : ruv_store_new (error);
  if (self->store == NULL)
    return NULL;
  if ((!ruv_store_get_read_only (self->store) && !migrate_legacy (self, error))
      || !load (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

RuvRegistry *
ruv_registry_open (const char  *models_dir,
                   GError     **error)
{
  return ruv_registry_open_with_store (NULL, models_dir, error);
}

void
ruv_registry_free (RuvRegistry *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->models, g_hash_table_unref);
  g_clear_object (&self->store);
  g_free (self->dir);
  g_free (self);
}

const char *
ruv_registry_get_dir (RuvRegistry *self)
{
  return self->dir;
}

RuvStore *
ruv_registry_get_store (RuvRegistry *self)
{
  return self->store;
}

static gint
by_id (gconstpointer a,
       gconstpointer b)
{
  const RuvRegistryModel *ma = *(RuvRegistryModel *const *) a;
  const RuvRegistryModel *mb = *(RuvRegistryModel *const *) b;

  return strcmp (ma->id, mb->id);
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

/* Records m under (repo, file) in the store and the mirror; frees m on error. */
static const RuvRegistryModel *
commit (RuvRegistry      *self,
        RuvRegistryModel *m,
        const char       *repo,
        const char       *file,
        GError          **error)
{
  m->id = g_strdup_printf ("%s/%s", repo, file);
  m->repository = g_strcmp0 (repo, LOCAL_REPO) != 0 ? g_strdup (repo) : NULL;
  if (!record (self, m, repo, file, error))
    {
      model_free (m);
      return NULL;
    }
  g_hash_table_replace (self->models, m->id, m);
  return m;
}

const RuvRegistryModel *
ruv_registry_add_download (RuvRegistry  *self,
                           const char   *path,
                           const char   *repository,
                           const char   *sha256,
                           GError      **error)
{
  RuvRegistryModel *m;
  const char *rel;
  gsize rl;

  g_return_val_if_fail (self != NULL && path != NULL && repository != NULL, NULL);
  m = inspect (path, sha256, error);
  if (m == NULL)
    return NULL;
  if (!inside (self, m->path))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "%s is not inside %s", m->path,
                   self->dir);
      model_free (m);
      return NULL;
    }
  /* <models_dir>/<repository>/<file> is the download manager's layout; a
   * download placed elsewhere (dest_relpath) is recorded as a local file. */
  rel = m->path + strlen (self->dir) + 1;
  rl = strlen (repository);
  if (strncmp (rel, repository, rl) == 0 && rel[rl] == '/' && rel[rl + 1] != '\0')
    {
      g_autofree char *file = g_strdup (rel + rl + 1);

      return commit (self, m, repository, file, error);
    }
  else
    {
      g_autofree char *file = g_strdup (rel);

      return commit (self, m, LOCAL_REPO, file, error);
    }
}

const RuvRegistryModel *
ruv_registry_import (RuvRegistry  *self,
                     const char   *path,
                     GError      **error)
{
  RuvRegistryModel *m;
  g_autofree char *base = NULL;
  g_autofree char *file = NULL;

  g_return_val_if_fail (self != NULL && path != NULL, NULL);
  m = inspect (path, NULL, error);
  if (m == NULL)
    return NULL;
  if (inside (self, m->path))
    file = g_strdup (m->path + strlen (self->dir) + 1);
  else
    {
      base = g_path_get_basename (m->path);
      file = g_strdup_printf ("%.12s-%s", m->sha256, base);
      m->imported = TRUE;
    }
  return commit (self, m, LOCAL_REPO, file, error);
}

gboolean
ruv_registry_remove (RuvRegistry  *self,
                     const char   *id,
                     GError      **error)
{
  RuvRegistryModel *m = g_hash_table_lookup (self->models, id);
  GError *local_error = NULL;

  if (m == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND, "no model '%s' in the registry", id);
      return FALSE;
    }
  if (!m->imported && inside (self, m->path))
    {
      g_autofree char *partial = g_strconcat (m->path, ".incomplete", NULL);

      if (g_unlink (m->path) != 0 && errno != ENOENT)
        {
          int e = errno;

          g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot delete %s: %s", m->path,
                       g_strerror (e));
          return FALSE;
        }
      g_unlink (partial);
    }
  /* The file is gone now: a row left behind would be dropped at next open. */
  if (!ruv_store_delete_model (self->store, m->store_id, &local_error)
      && !g_error_matches (local_error, RUV_ERROR, RUV_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  g_clear_error (&local_error);
  g_hash_table_remove (self->models, id);
  return TRUE;
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
  if (!ruv_store_touch_model (self->store, m->store_id, error))
    return FALSE;
  m->last_used = g_get_real_time () / G_USEC_PER_SEC;
  return TRUE;
}
