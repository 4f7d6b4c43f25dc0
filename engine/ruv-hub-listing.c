/* ruv-hub-listing.c — the Hub's JSON APIs: model search and repository file
 * listings, both read page by page.
 * SPDX-License-Identifier: MIT
 *
 * Listings and searches come in pages: while there are more, the answer has
 * `Link: <next url>; rel="next"`, which is followed on the Hub's own origin
 * only, for a bounded number of pages, never in a loop. Entries with unsafe
 * names or absurd sizes fail the whole listing.
 */
#include "ruv-hub.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "ruv-error.h"
#include "ruv-hub-private.h"

/* No real model file is this big (the CDN itself refuses ~400 GB). */
#define MAX_FILE_SIZE (G_GUINT64_CONSTANT (1) << 42)
/* The Hub's tree pages hold up to 1,000 entries: 100 pages is a repository
 * far larger than any model's. */
#define MAX_PAGES 100
#define MAX_LISTED_FILES 100000

/* ---- pages ------------------------------------------------------------ */

/* What a paged listing or search has gathered so far (task object data). */
typedef struct
{
  GPtrArray  *items;
  GHashTable *seen;    /* page URLs asked for */
  char       *what;
  guint       limit;   /* a search: enough items; 0: every page */
} Pages;

static void
pages_free (Pages *pg)
{
  g_ptr_array_unref (pg->items);
  g_hash_table_unref (pg->seen);
  g_free (pg->what);
  g_free (pg);
}

static Pages *
pages_new (GTask          *task,
           const char     *first_url,
           const char     *what,
           guint           limit,
           GDestroyNotify  item_free)
{
  Pages *pg = g_new0 (Pages, 1);

  pg->items = g_ptr_array_new_with_free_func (item_free);
  pg->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_add (pg->seen, g_strdup (first_url));
  pg->what = g_strdup (what);
  pg->limit = limit;
  g_object_set_data_full (G_OBJECT (task), "ruv-pages", pg, (GDestroyNotify) pages_free);
  return pg;
}

/* The next page's URL from msg's Link header, resolved against the page's
 * own URL: NULL without error on the last page, an error for a link that
 * leaves the Hub's origin. */
static char *
next_page_url (RuvHub       *self,
               SoupMessage  *msg,
               const char   *what,
               GError      **error)
{
  const char *link = soup_message_headers_get_list (soup_message_get_response_headers (msg),
                                                    "Link");
  g_autofree char *target = NULL;
  g_autoptr(GUri) next = NULL;

  if (link == NULL || (target = _ruv_hub_link_next (link)) == NULL)
    return NULL;
  next = g_uri_parse_relative (soup_message_get_uri (msg), target, SOUP_HTTP_URI_FLAGS, NULL);
  if (next == NULL || !_ruv_hub_is_hub_origin (self, next))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: the Hub's link to the next page leaves %s",
                   what, ruv_hub_get_endpoint (self));
      return NULL;
    }
  return g_uri_to_string (next);
}

/* After a page was parsed into the task's Pages: asks for the next one with
 * func, or completes the task with the items. */
static void
pages_continue (GTask          *task,
                SoupMessage    *msg,
                RuvHubBodyFunc  func)
{
  RuvHub *self = g_task_get_source_object (task);
  Pages *pg = g_object_get_data (G_OBJECT (task), "ruv-pages");
  g_autofree char *next = NULL;
  GError *error = NULL;

  if (pg->limit == 0 || pg->items->len < pg->limit)
    next = next_page_url (self, msg, pg->what, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (next != NULL && pg->limit == 0
      && (g_hash_table_size (pg->seen) >= MAX_PAGES || pg->items->len > MAX_LISTED_FILES))
    {
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO, "%s: more than %u pages or %u "
                               "files", pg->what, MAX_PAGES, MAX_LISTED_FILES);
      return;
    }
  if (next != NULL && g_hash_table_contains (pg->seen, next))
    {
      g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO, "%s: the Hub's pages link in a "
                               "loop", pg->what);
      return;
    }
  /* A search stops at MAX_PAGES with what it has. */
  if (next != NULL && g_hash_table_size (pg->seen) < MAX_PAGES)
    {
      g_hash_table_add (pg->seen, g_strdup (next));
      _ruv_hub_fetch (self, task, next, 0, -1, RUV_HUB_MAX_JSON_BYTES + 1, pg->what, func);
      return;
    }
  if (pg->limit > 0 && pg->items->len > pg->limit)
    g_ptr_array_set_size (pg->items, (gint) pg->limit);
  g_task_return_pointer (task, g_ptr_array_ref (pg->items), (GDestroyNotify) g_ptr_array_unref);
}

static JsonNode *
parse_json_array (const guint8 *data,
                  gsize         len,
                  gsize         cap,
                  const char   *what,
                  GError      **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  GError *local_error = NULL;

  if (len >= cap)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: the answer is larger than %u MiB",
                   what, (guint) (RUV_HUB_MAX_JSON_BYTES >> 20));
      return NULL;
    }
  if (!json_parser_load_from_data (parser, (const char *) data, (gssize) len, &local_error))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: malformed JSON from the Hub: %s", what,
                   local_error->message);
      g_error_free (local_error);
      return NULL;
    }
  if (json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_ARRAY (json_parser_get_root (parser)))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: unexpected JSON from the Hub "
                   "(expected an array)", what);
      return NULL;
    }
  return json_node_copy (json_parser_get_root (parser));
}

/* A non-negative integer member, or FALSE. */
static gboolean
get_uint_member (JsonObject *o,
                 const char *name,
                 guint64    *out)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64
      || json_node_get_int (n) < 0)
    return FALSE;
  *out = (guint64) json_node_get_int (n);
  return TRUE;
}

static const char *
get_string_member (JsonObject *o,
                   const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
is_hex (const char *s,
        gsize       len)
{
  gsize i;

  if (s == NULL || strlen (s) != len)
    return FALSE;
  for (i = 0; i < len; i++)
    if (!g_ascii_isxdigit (s[i]))
      return FALSE;
  return TRUE;
}

/* ---- search ----------------------------------------------------------- */

static void
search_body (GTask        *task,
             SoupMessage  *msg,
             const guint8 *data,
             gsize         len,
             gsize         cap)
{
  Pages *pg = g_object_get_data (G_OBJECT (task), "ruv-pages");
  g_autoptr(JsonNode) root = NULL;
  GError *error = NULL;
  JsonArray *arr;
  guint i;

  root = parse_json_array (data, len, cap, "search", &error);
  if (root == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  arr = json_node_get_array (root);
  for (i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      JsonObject *o;
      JsonNode *gated;
      const char *id;
      RuvHubModel *m;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        continue;
      o = json_node_get_object (n);
      id = get_string_member (o, "id");
      if (id == NULL)
        id = get_string_member (o, "modelId");
      /* Hits with unusable ids are skipped, not trusted. */
      if (id == NULL || !ruv_hub_check_repo_id (id, NULL))
        continue;
      m = g_new0 (RuvHubModel, 1);
      m->id = g_strdup (id);
      get_uint_member (o, "downloads", &m->downloads);
      get_uint_member (o, "likes", &m->likes);
      m->pipeline_tag = g_strdup (get_string_member (o, "pipeline_tag"));
      gated = json_object_get_member (o, "gated");
      m->gated = gated != NULL && JSON_NODE_HOLDS_VALUE (gated)
                 && ((json_node_get_value_type (gated) == G_TYPE_BOOLEAN
                      && json_node_get_boolean (gated))
                     || json_node_get_value_type (gated) == G_TYPE_STRING);
      g_ptr_array_add (pg->items, m);
    }
  pages_continue (task, msg, search_body);
}

void
ruv_hub_search_async (RuvHub              *self,
                      const char          *query,
                      guint                limit,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *q = NULL;
  g_autofree char *url = NULL;

  g_return_if_fail (RUV_IS_HUB (self));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, ruv_hub_search_async);
  q = g_uri_escape_string (query != NULL ? query : "", NULL, FALSE);
  url = g_strdup_printf ("%s/api/models?search=%s&filter=gguf&sort=downloads&direction=-1"
                         "&limit=%u", ruv_hub_get_endpoint (self), q, CLAMP (limit, 1, 100));
  pages_new (task, url, "search", CLAMP (limit, 1, 100), (GDestroyNotify) ruv_hub_model_free);
  _ruv_hub_fetch (self, task, url, 0, -1, RUV_HUB_MAX_JSON_BYTES + 1, "search", search_body);
}

GPtrArray *
ruv_hub_search_finish (RuvHub        *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- file listing ----------------------------------------------------- */

static void
tree_body (GTask        *task,
           SoupMessage  *msg,
           const guint8 *data,
           gsize         len,
           gsize         cap)
{
  Pages *pg = g_object_get_data (G_OBJECT (task), "ruv-pages");
  g_autoptr(JsonNode) root = NULL;
  GError *error = NULL;
  JsonArray *arr;
  guint i;

  root = parse_json_array (data, len, cap, "file listing", &error);
  if (root == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  arr = json_node_get_array (root);
  for (i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *n = json_array_get_element (arr, i);
      g_autoptr(RuvHubFile) f = NULL;
      JsonObject *o, *lfs = NULL;
      JsonNode *lfs_node;
      const char *type, *path, *oid;

      if (!JSON_NODE_HOLDS_OBJECT (n))
        continue;
      o = json_node_get_object (n);
      type = get_string_member (o, "type");
      if (g_strcmp0 (type, "file") != 0)
        continue;
      path = get_string_member (o, "path");
      if (!ruv_hub_check_path (path, &error))
        {
          g_task_return_error (task, error);
          return;
        }
      f = g_new0 (RuvHubFile, 1);
      f->path = g_strdup (path);
      if (!get_uint_member (o, "size", &f->size))
        {
          g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                                   "file listing: '%s' has no valid size", path);
          return;
        }
      oid = get_string_member (o, "oid");
      if (is_hex (oid, 40))
        f->git_oid = g_ascii_strdown (oid, -1);
      lfs_node = json_object_get_member (o, "lfs");
      if (lfs_node != NULL && JSON_NODE_HOLDS_OBJECT (lfs_node))
        lfs = json_node_get_object (lfs_node);
      if (lfs != NULL)
        {
          const char *sha = get_string_member (lfs, "oid");

          if (sha == NULL)
            sha = get_string_member (lfs, "sha256");
          if (!is_hex (sha, 64) || !get_uint_member (lfs, "size", &f->size))
            {
              g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                                       "file listing: '%s' has an invalid LFS entry", path);
              return;
            }
          f->sha256 = g_ascii_strdown (sha, -1);
        }
      if (f->size > MAX_FILE_SIZE)
        {
          g_task_return_new_error (task, RUV_ERROR, RUV_ERROR_IO,
                                   "file listing: '%s' claims an absurd size of %"
                                   G_GUINT64_FORMAT " bytes", path, f->size);
          return;
        }
      g_ptr_array_add (pg->items, g_steal_pointer (&f));
    }
  pages_continue (task, msg, tree_body);
}

void
ruv_hub_list_files_async (RuvHub              *self,
                          const char          *repo_id,
                          const char          *revision,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *url = NULL;
  g_autofree char *erev = NULL;
  g_autofree char *what = NULL;
  GError *error = NULL;

  g_return_if_fail (RUV_IS_HUB (self));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, ruv_hub_list_files_async);
  if (revision == NULL)
    revision = "main";
  if (!ruv_hub_check_repo_id (repo_id, &error) || !ruv_hub_check_revision (revision, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  erev = g_uri_escape_string (revision, NULL, FALSE);
  url = g_strdup_printf ("%s/api/models/%s/tree/%s?recursive=1", ruv_hub_get_endpoint (self),
                         repo_id, erev);
  what = g_strdup_printf ("%s: file listing", repo_id);
  pages_new (task, url, what, 0, (GDestroyNotify) ruv_hub_file_free);
  _ruv_hub_fetch (self, task, url, 0, -1, RUV_HUB_MAX_JSON_BYTES + 1, what, tree_body);
}

GPtrArray *
ruv_hub_list_files_finish (RuvHub        *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
