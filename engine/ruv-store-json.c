/* ruv-store-json.c — export as Markdown or JSON, and import of a JSON export
 * (distrusting every byte of it).
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "ruv-error.h"
#include "ruv-store-private.h"

#define MAX_IMPORT_BYTES     ((gsize) 512 * 1024 * 1024)
#define MAX_IMPORT_DEPTH     32
#define MAX_IMPORT_MESSAGES  2000000

/* ------------------------------------------------------------------------ */
/* Export */

static const char *
rating_name (int r)
{
  return r > 0 ? "up" : r < 0 ? "down" : "cleared";
}

static void
add_member_str (JsonBuilder *b,
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
add_member_int (JsonBuilder *b,
                const char  *key,
                gint64       value,
                gboolean     present)
{
  json_builder_set_member_name (b, key);
  if (present)
    json_builder_add_int_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
add_member_col_double (JsonBuilder  *b,
                       const char   *key,
                       sqlite3_stmt *st,
                       int           col)
{
  json_builder_set_member_name (b, key);
  if (sqlite3_column_type (st, col) == SQLITE_NULL)
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b, sqlite3_column_double (st, col));
}

static void
add_member_col_int (JsonBuilder  *b,
                    const char   *key,
                    sqlite3_stmt *st,
                    int           col)
{
  add_member_int (b, key, sqlite3_column_int64 (st, col),
                  sqlite3_column_type (st, col) != SQLITE_NULL);
}

/* Stored params_json as an embedded JSON value (it was validated on the way
 * in; anything else is kept as a string). */
static void
add_member_params (JsonBuilder *b,
                   const char  *key,
                   const char  *json)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  json_builder_set_member_name (b, key);
  if (json == NULL)
    json_builder_add_null_value (b);
  else if (json_parser_load_from_data (parser, json, -1, NULL) &&
           JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    json_builder_add_value (b, json_node_copy (json_parser_get_root (parser)));
  else
    json_builder_add_string_value (b, json);
}

/* One session; messages numbered 1.. in id order (parents come first), so
 * an export of an import reads the same. */
static gboolean
export_session_json (RuvStore         *self,
                     RuvStoreSession  *s,
                     JsonBuilder      *b,
                     GError          **error)
{
  g_autoptr(sqlite3_stmt) st = NULL;
  g_autoptr(GHashTable) local = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  gint64 n = 0;
  int rc;

  st = _ruv_store_prepare (self,
    "SELECT m.id, m.parent_id, m.role, m.content, m.created_us, m.model,"
    " m.params_json, m.n_prompt, m.n_gen, m.ttft_ms, m.tokens_per_s,"
    " m.finish_reason, m.complete, r.rating, r.rated_us, r.outcome, r.latency_us,"
    " r.loss_before, r.loss_after, a.sha256 FROM messages m"
    " LEFT JOIN ratings r ON r.message_id = m.id"
    " LEFT JOIN adapter_snapshots a ON a.id = r.snapshot_id"
    " WHERE m.session_id = ?1 ORDER BY m.id", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, s->id);

  json_builder_begin_object (b);
  add_member_str (b, "title", s->title);
  json_builder_set_member_name (b, "title_auto");
  json_builder_add_boolean_value (b, s->title_auto);
  add_member_int (b, "created_us", s->created_us, TRUE);
  add_member_int (b, "updated_us", s->updated_us, TRUE);
  json_builder_set_member_name (b, "pinned");
  json_builder_add_boolean_value (b, s->pinned);
  json_builder_set_member_name (b, "archived");
  json_builder_add_boolean_value (b, s->archived);
  add_member_str (b, "model", s->model);
  add_member_str (b, "system_prompt", s->system_prompt);
  add_member_params (b, "params", s->params_json);
  json_builder_set_member_name (b, "messages");
  json_builder_begin_array (b);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      gint64 id = sqlite3_column_int64 (st, 0);
      gint64 parent = sqlite3_column_int64 (st, 1);
      gpointer parent_local = parent > 0 ? g_hash_table_lookup (local, &parent) : NULL;
      gint64 *key = g_new (gint64, 1);

      *key = id;
      n++;
      g_hash_table_insert (local, key, GSIZE_TO_POINTER ((gsize) n));
      json_builder_begin_object (b);
      add_member_int (b, "id", n, TRUE);
      add_member_int (b, "parent", GPOINTER_TO_SIZE (parent_local), parent_local != NULL);
      add_member_str (b, "role", (const char *) sqlite3_column_text (st, 2));
      add_member_str (b, "content", (const char *) sqlite3_column_text (st, 3));
      add_member_int (b, "created_us", sqlite3_column_int64 (st, 4), TRUE);
      add_member_str (b, "model", (const char *) sqlite3_column_text (st, 5));
      add_member_params (b, "params", (const char *) sqlite3_column_text (st, 6));
      add_member_col_int (b, "n_prompt", st, 7);
      add_member_col_int (b, "n_gen", st, 8);
      add_member_col_double (b, "ttft_ms", st, 9);
      add_member_col_double (b, "tokens_per_s", st, 10);
      add_member_str (b, "finish_reason", (const char *) sqlite3_column_text (st, 11));
      json_builder_set_member_name (b, "complete");
      json_builder_add_boolean_value (b, sqlite3_column_int (st, 12) != 0);
      json_builder_set_member_name (b, "rating");
      if (sqlite3_column_type (st, 13) == SQLITE_NULL)
        json_builder_add_null_value (b);
      else
        {
          json_builder_begin_object (b);
          add_member_str (b, "value", rating_name (sqlite3_column_int (st, 13)));
          add_member_int (b, "rated_us", sqlite3_column_int64 (st, 14), TRUE);
          add_member_str (b, "outcome", (const char *) sqlite3_column_text (st, 15));
          add_member_col_int (b, "latency_us", st, 16);
          add_member_col_double (b, "loss_before", st, 17);
          add_member_col_double (b, "loss_after", st, 18);
          add_member_str (b, "snapshot_sha256", (const char *) sqlite3_column_text (st, 19));
          json_builder_end_object (b);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  /* The shown branch, as its leaf's local id. */
  {
    gpointer leaf = s->leaf_id > 0 ? g_hash_table_lookup (local, &s->leaf_id) : NULL;

    add_member_int (b, "leaf", GPOINTER_TO_SIZE (leaf), leaf != NULL);
  }
  json_builder_end_object (b);
  if (rc != SQLITE_DONE)
    {
      _ruv_store_error (self, error, rc, _("Could not read the chat history"));
      return FALSE;
    }
  return TRUE;
}

static void
export_session_md (RuvStoreSession *s,
                   GPtrArray       *path,
                   GString         *out)
{
  g_autoptr(GDateTime) created = g_date_time_new_from_unix_utc (s->created_us / G_USEC_PER_SEC);
  g_autofree char *when = created != NULL ? g_date_time_format_iso8601 (created) : g_strdup ("?");
  guint i;

  g_string_append_printf (out, "# %s\n\n", *s->title != '\0' ? s->title : _("Untitled chat"));
  g_string_append_printf (out, "_%s: %s", _("Created"), when);
  if (s->model != NULL)
    g_string_append_printf (out, " · %s: %s", _("Model"), s->model);
  g_string_append (out, "_\n\n");
  if (s->system_prompt != NULL && *s->system_prompt != '\0')
    g_string_append_printf (out, "> **%s:** %s\n\n", _("System"), s->system_prompt);
  for (i = 0; i < path->len; i++)
    {
      RuvStoreMessage *m = g_ptr_array_index (path, i);
      const char *who = g_str_equal (m->role, "user") ? _("User")
                        : g_str_equal (m->role, "assistant") ? _("Assistant")
                        : g_str_equal (m->role, "system") ? _("System") : _("Tool");

      g_string_append_printf (out, "## %s", who);
      if (m->rating != RUV_RATING_CLEARED)
        g_string_append (out, m->rating > 0 ? " 👍" : " 👎");
      g_string_append (out, "\n\n");
      g_string_append (out, m->content);
      g_string_append (out, "\n\n");
      if (m->n_gen >= 0 || m->tokens_per_s >= 0)
        {
          g_string_append (out, "_");
          if (m->model != NULL)
            g_string_append_printf (out, "%s · ", m->model);
          if (m->n_gen >= 0)
            g_string_append_printf (out, "%d tokens", m->n_gen);
          if (m->tokens_per_s >= 0)
            g_string_append_printf (out, " · %.1f tokens/s", m->tokens_per_s);
          if (m->finish_reason != NULL)
            g_string_append_printf (out, " · %s", m->finish_reason);
          g_string_append (out, "_\n\n");
        }
    }
}

char *
ruv_store_export (RuvStore        *self,
                  gint64           session_id,
                  RuvStoreFormat   format,
                  GError         **error)
{
  g_autoptr(GPtrArray) sessions = NULL;
  guint i;

  g_return_val_if_fail (RUV_IS_STORE (self), NULL);
  {
    LOCK ();

    /* One read transaction: a consistent snapshot of everything. */
    if (!_ruv_store_db_exec (self->db, self->path, "BEGIN", _("Could not read the chat history"),
                             error))
      return NULL;
    if (session_id > 0)
      {
        RuvStoreSession *s = _ruv_store_get_session_locked (self, session_id, error);

        if (s != NULL)
          {
            sessions = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_store_session_free);
            g_ptr_array_add (sessions, s);
          }
      }
    else
      sessions = _ruv_store_list_sessions_locked (self, TRUE, TRUE, error);
    if (sessions == NULL)
      {
        _ruv_store_rollback (self);
        return NULL;
      }

    if (format == RUV_STORE_FORMAT_MARKDOWN)
      {
        g_autoptr(GString) out = g_string_new (NULL);

        for (i = 0; i < sessions->len; i++)
          {
            RuvStoreSession *s = g_ptr_array_index (sessions, i);
            g_autoptr(GPtrArray) path = _ruv_store_load_path_locked (self, s->leaf_id, error);

            if (path == NULL)
              {
                _ruv_store_rollback (self);
                return NULL;
              }
            if (i > 0)
              g_string_append (out, "\n---\n\n");
            export_session_md (s, path, out);
          }
        _ruv_store_rollback (self);
        return g_string_free (g_steal_pointer (&out), FALSE);
      }
    else
      {
        g_autoptr(JsonBuilder) b = json_builder_new ();
        g_autoptr(JsonGenerator) gen = json_generator_new ();
        g_autoptr(JsonNode) root = NULL;

        json_builder_begin_object (b);
        add_member_str (b, "format", "ruvllm-chats");
        add_member_int (b, "version", 1, TRUE);
        json_builder_set_member_name (b, "sessions");
        json_builder_begin_array (b);
        for (i = 0; i < sessions->len; i++)
          if (!export_session_json (self, g_ptr_array_index (sessions, i), b, error))
            {
              _ruv_store_rollback (self);
              return NULL;
            }
        json_builder_end_array (b);
        json_builder_end_object (b);
        _ruv_store_rollback (self);
        root = json_builder_get_root (b);
        json_generator_set_root (gen, root);
        json_generator_set_pretty (gen, TRUE);
        return json_generator_to_data (gen, NULL);
      }
  }
}

/* ------------------------------------------------------------------------ */
/* Import: distrust everything. */

/* Nesting depth of [ and { outside strings; json-glib's parser recurses,
 * so a hostile file of a million '[' must never reach it. */
static gboolean
json_depth_ok (const char *text,
               gsize       len,
               guint       max_depth)
{
  guint depth = 0;
  gboolean in_string = FALSE;
  gsize i;

  for (i = 0; i < len; i++)
    {
      char c = text[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if (c == '[' || c == '{')
        {
          if (++depth > max_depth)
            return FALSE;
        }
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return TRUE;
}

static gboolean
import_fail (GError    **error,
             const char *where,
             const char *fmt,
             ...) G_GNUC_PRINTF (3, 4);

static gboolean
import_fail (GError    **error,
             const char *where,
             const char *fmt,
             ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, RUV_ERROR, RUV_ERROR_INVALID_OPERATION, _("Cannot import: %s: %s"),
               where, msg);
  return FALSE;
}

/* Member `name`: a string (or null when nullable), at most max bytes. */
static gboolean
get_str (JsonObject  *o,
         const char  *name,
         gboolean     nullable,
         gsize        max,
         const char  *where,
         const char **out,
         GError     **error)
{
  JsonNode *n = json_object_get_member (o, name);

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    {
      if (nullable)
        return TRUE;
      return import_fail (error, where, "\"%s\" is missing", name);
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return import_fail (error, where, "\"%s\" must be a string", name);
  *out = json_node_get_string (n);
  if (strlen (*out) > max || !g_utf8_validate (*out, -1, NULL))
    return import_fail (error, where, "\"%s\" is too long or not valid UTF-8", name);
  return TRUE;
}

static gboolean
get_int (JsonObject  *o,
         const char  *name,
         gboolean     nullable,
         gint64       lo,
         gint64       hi,
         const char  *where,
         gint64      *out,
         gboolean    *present,
         GError     **error)
{
  JsonNode *n = json_object_get_member (o, name);

  *out = 0;
  if (present != NULL)
    *present = FALSE;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    {
      if (nullable)
        return TRUE;
      return import_fail (error, where, "\"%s\" is missing", name);
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return import_fail (error, where, "\"%s\" must be an integer", name);
  *out = json_node_get_int (n);
  if (*out < lo || *out > hi)
    return import_fail (error, where, "\"%s\" is out of range", name);
  if (present != NULL)
    *present = TRUE;
  return TRUE;
}

static gboolean
get_double (JsonObject  *o,
            const char  *name,
            const char  *where,
            double      *out,
            gboolean    *present,
            GError     **error)
{
  JsonNode *n = json_object_get_member (o, name);
  GType t;

  *out = NAN;
  *present = FALSE;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
  if (t != G_TYPE_DOUBLE && t != G_TYPE_INT64)
    return import_fail (error, where, "\"%s\" must be a number", name);
  *out = json_node_get_double (n);
  if (!isfinite (*out) || fabs (*out) > 1e15)
    return import_fail (error, where, "\"%s\" is out of range", name);
  *present = TRUE;
  return TRUE;
}

static gboolean
get_bool (JsonObject  *o,
          const char  *name,
          const char  *where,
          gboolean    *out,
          GError     **error)
{
  JsonNode *n = json_object_get_member (o, name);

  *out = FALSE;
  if (n == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return import_fail (error, where, "\"%s\" must be true or false", name);
  *out = json_node_get_boolean (n);
  return TRUE;
}

/* "params": an object (stored as its JSON text) or null. */
static gboolean
get_params (JsonObject  *o,
            const char  *where,
            char       **out,
            GError     **error)
{
  JsonNode *n = json_object_get_member (o, "params");

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return import_fail (error, where, "\"params\" must be an object");
  *out = json_to_string (n, FALSE);
  if (strlen (*out) > 1024 * 1024)
    return import_fail (error, where, "\"params\" is too large");
  return TRUE;
}

static gboolean
bind_opt_double (sqlite3_stmt *st,
                 int           i,
                 double        v,
                 gboolean      present)
{
  if (present)
    sqlite3_bind_double (st, i, v);
  else
    sqlite3_bind_null (st, i);
  return TRUE;
}

static gboolean
import_message (RuvStore    *self,
                gint64       session_id,
                JsonNode    *node,
                GHashTable  *ids,
                guint        index,
                const char  *swhere,
                GError     **error)
{
  g_autofree char *where = g_strdup_printf ("%s, message %u", swhere, index + 1);
  g_autofree char *params = NULL;
  g_autoptr(sqlite3_stmt) st = NULL;
  JsonObject *o;
  JsonNode *rn;
  const char *role, *content, *model, *finish;
  gint64 local, parent, created, n_prompt, n_gen, new_id, new_parent = 0;
  gboolean has_parent, has_np, has_ng, has_ttft, has_tps, complete;
  double ttft, tps;
  gint64 *key;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return import_fail (error, where, "a message must be an object");
  o = json_node_get_object (node);
  if (!get_int (o, "id", FALSE, 1, G_MAXINT64, where, &local, NULL, error) ||
      !get_int (o, "parent", TRUE, 1, G_MAXINT64, where, &parent, &has_parent, error) ||
      !get_str (o, "role", FALSE, 16, where, &role, error) ||
      !get_str (o, "content", FALSE, MAX_CONTENT_BYTES, where, &content, error) ||
      !get_int (o, "created_us", FALSE, 0, G_MAXINT64, where, &created, NULL, error) ||
      !get_str (o, "model", TRUE, MAX_SHORT_TEXT, where, &model, error) ||
      !get_params (o, where, &params, error) ||
      !get_int (o, "n_prompt", TRUE, 0, G_MAXINT32, where, &n_prompt, &has_np, error) ||
      !get_int (o, "n_gen", TRUE, 0, G_MAXINT32, where, &n_gen, &has_ng, error) ||
      !get_double (o, "ttft_ms", where, &ttft, &has_ttft, error) ||
      !get_double (o, "tokens_per_s", where, &tps, &has_tps, error) ||
      !get_str (o, "finish_reason", TRUE, MAX_SHORT_TEXT, where, &finish, error) ||
      !get_bool (o, "complete", where, &complete, error))
    return FALSE;
  if (!_ruv_store_role_ok (role, NULL))
    return import_fail (error, where, "unknown role \"%s\"", role);
  if (g_hash_table_contains (ids, &local))
    return import_fail (error, where, "id %" G_GINT64_FORMAT " is used twice", local);
  if (has_parent)
    {
      gint64 *mapped = g_hash_table_lookup (ids, &parent);

      /* Parents must come first: this rules out cycles and dangling links. */
      if (mapped == NULL)
        return import_fail (error, where, "parent %" G_GINT64_FORMAT " is not an earlier "
                            "message of this chat (a cycle or a link to nowhere)", parent);
      new_parent = *mapped;
    }

  st = _ruv_store_prepare (self,
    "INSERT INTO messages (session_id, parent_id, role, content, created_us,"
    " model, params_json, n_prompt, n_gen, ttft_ms, tokens_per_s, finish_reason,"
    " complete) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, session_id);
  _ruv_store_bind_id (st, 2, new_parent);
  _ruv_store_bind_text (st, 3, role);
  _ruv_store_bind_text (st, 4, content);
  sqlite3_bind_int64 (st, 5, created);
  _ruv_store_bind_text (st, 6, model);
  _ruv_store_bind_text (st, 7, params);
  if (has_np)
    sqlite3_bind_int64 (st, 8, n_prompt);
  if (has_ng)
    sqlite3_bind_int64 (st, 9, n_gen);
  bind_opt_double (st, 10, ttft, has_ttft);
  bind_opt_double (st, 11, tps, has_tps);
  _ruv_store_bind_text (st, 12, finish);
  sqlite3_bind_int (st, 13, complete ? 1 : 0);
  if (!_ruv_store_step_done (self, st, _("Could not import"), error))
    return FALSE;
  new_id = sqlite3_last_insert_rowid (self->db);
  key = g_new (gint64, 1);
  *key = local;
  g_hash_table_insert (ids, key, g_memdup2 (&new_id, sizeof new_id));

  rn = json_object_get_member (o, "rating");
  if (rn != NULL && !JSON_NODE_HOLDS_NULL (rn))
    {
      JsonObject *r;
      const char *value, *outcome, *snap;
      gint64 rated, latency;
      gboolean has_lat, has_lb, has_la;
      double lb, la;
      int rv;

      if (!JSON_NODE_HOLDS_OBJECT (rn))
        return import_fail (error, where, "\"rating\" must be an object or null");
      r = json_node_get_object (rn);
      if (!get_str (r, "value", FALSE, 16, where, &value, error) ||
          !get_int (r, "rated_us", FALSE, 0, G_MAXINT64, where, &rated, NULL, error) ||
          !get_str (r, "outcome", TRUE, 16, where, &outcome, error) ||
          !get_int (r, "latency_us", TRUE, 0, G_MAXINT64, where, &latency, &has_lat, error) ||
          !get_double (r, "loss_before", where, &lb, &has_lb, error) ||
          !get_double (r, "loss_after", where, &la, &has_la, error) ||
          !get_str (r, "snapshot_sha256", TRUE, 64, where, &snap, error))
        return FALSE;
      if (g_str_equal (value, "up"))
        rv = 1;
      else if (g_str_equal (value, "down"))
        rv = -1;
      else if (g_str_equal (value, "cleared"))
        rv = 0;
      else
        return import_fail (error, where, "rating \"%s\" is not up, down or cleared", value);
      if (outcome != NULL && !g_str_equal (outcome, "applied") && !g_str_equal (outcome, "skipped"))
        return import_fail (error, where, "outcome \"%s\" is not applied or skipped", outcome);
      if (!complete)
        return import_fail (error, where, "an incomplete message cannot be rated");
      g_clear_pointer (&st, sqlite3_finalize);
      st = _ruv_store_prepare (self,
        "INSERT INTO ratings (message_id, rating, rated_us, outcome,"
        " latency_us, loss_before, loss_after, snapshot_id) VALUES (?1, ?2, ?3, ?4,"
        " ?5, ?6, ?7, (SELECT min(id) FROM adapter_snapshots WHERE sha256 = ?8))", error);
      if (st == NULL)
        return FALSE;
      sqlite3_bind_int64 (st, 1, new_id);
      sqlite3_bind_int (st, 2, rv);
      sqlite3_bind_int64 (st, 3, rated);
      _ruv_store_bind_text (st, 4, outcome);
      if (has_lat)
        sqlite3_bind_int64 (st, 5, latency);
      bind_opt_double (st, 6, lb, has_lb);
      bind_opt_double (st, 7, la, has_la);
      _ruv_store_bind_text (st, 8, snap);
      if (!_ruv_store_step_done (self, st, _("Could not import"), error))
        return FALSE;
    }
  return TRUE;
}

static gint64
import_session (RuvStore    *self,
                JsonNode    *node,
                guint        index,
                guint       *n_messages,
                GError     **error)
{
  g_autofree char *where = g_strdup_printf ("chat %u", index + 1);
  g_autofree char *params = NULL;
  g_autoptr(GHashTable) ids = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  JsonObject *o;
  JsonNode *mn;
  JsonArray *msgs;
  const char *title, *model, *system;
  gint64 created, updated, leaf, id;
  gboolean title_auto, pinned, archived, has_leaf;
  guint i, n;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return import_fail (error, where, "a chat must be an object");
  o = json_node_get_object (node);
  if (!get_str (o, "title", FALSE, MAX_SHORT_TEXT, where, &title, error) ||
      !get_bool (o, "title_auto", where, &title_auto, error) ||
      !get_int (o, "created_us", FALSE, 0, G_MAXINT64, where, &created, NULL, error) ||
      !get_int (o, "updated_us", FALSE, 0, G_MAXINT64, where, &updated, NULL, error) ||
      !get_bool (o, "pinned", where, &pinned, error) ||
      !get_bool (o, "archived", where, &archived, error) ||
      !get_str (o, "model", TRUE, MAX_SHORT_TEXT, where, &model, error) ||
      !get_str (o, "system_prompt", TRUE, MAX_CONTENT_BYTES, where, &system, error) ||
      !get_params (o, where, &params, error) ||
      !get_int (o, "leaf", TRUE, 1, G_MAXINT64, where, &leaf, &has_leaf, error))
    return 0;
  mn = json_object_get_member (o, "messages");
  if (mn == NULL || !JSON_NODE_HOLDS_ARRAY (mn))
    return import_fail (error, where, "\"messages\" must be an array");
  msgs = json_node_get_array (mn);
  n = json_array_get_length (msgs);
  if (n > MAX_IMPORT_MESSAGES - *n_messages)
    return import_fail (error, where, "too many messages");
  *n_messages += n;

  id = _ruv_store_insert_session (self, title, title_auto, created, updated, pinned, archived,
                                  model, system, params, error);
  if (id <= 0)
    return 0;
  for (i = 0; i < n; i++)
    if (!import_message (self, id, json_array_get_element (msgs, i), ids, i, where, error))
      return 0;
  if (has_leaf)
    {
      gint64 *mapped = g_hash_table_lookup (ids, &leaf);
      g_autoptr(sqlite3_stmt) st = NULL;

      if (mapped == NULL)
        return import_fail (error, where, "\"leaf\" %" G_GINT64_FORMAT " is not a message of "
                            "this chat", leaf);
      st = _ruv_store_prepare (self, "UPDATE sessions SET leaf_id = ?2 WHERE id = ?1", error);
      if (st == NULL)
        return 0;
      sqlite3_bind_int64 (st, 1, id);
      sqlite3_bind_int64 (st, 2, *mapped);
      if (!_ruv_store_step_done (self, st, _("Could not import"), error))
        return 0;
    }
  return id;
}

gint
ruv_store_import_json (RuvStore    *self,
                       const char  *json,
                       gssize       length,
                       GArray      *new_session_ids,
                       GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) parse_error = NULL;
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  JsonNode *root, *sn;
  JsonObject *o;
  JsonArray *sessions;
  const char *format;
  gint64 version;
  gsize len;
  guint i, n, n_messages = 0;
  gboolean ok = TRUE;

  g_return_val_if_fail (RUV_IS_STORE (self), -1);
  g_return_val_if_fail (json != NULL, -1);
  len = length < 0 ? strlen (json) : (gsize) length;
  if (len > MAX_IMPORT_BYTES)
    return import_fail (error, "file", "larger than %" G_GSIZE_FORMAT " MiB",
                        MAX_IMPORT_BYTES / (1024 * 1024)) ? 0 : -1;
  if (memchr (json, '\0', len) != NULL || !g_utf8_validate (json, (gssize) len, NULL))
    return import_fail (error, "file", "not UTF-8 text") ? 0 : -1;
  if (!json_depth_ok (json, len, MAX_IMPORT_DEPTH))
    return import_fail (error, "file", "nested deeper than %d levels", MAX_IMPORT_DEPTH) ? 0 : -1;
  if (!json_parser_load_from_data (parser, json, (gssize) len, &parse_error))
    return import_fail (error, "file", "not valid JSON (%s)", parse_error->message) ? 0 : -1;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return import_fail (error, "file", "the top level must be an object") ? 0 : -1;
  o = json_node_get_object (root);
  if (!get_str (o, "format", FALSE, 64, "file", &format, error) ||
      !get_int (o, "version", FALSE, 1, G_MAXINT32, "file", &version, NULL, error))
    return -1;
  if (!g_str_equal (format, "ruvllm-chats"))
    return import_fail (error, "file", "not a RuvLLM chat export (format \"%s\")", format) ? 0
                                                                                          : -1;
  if (version != 1)
    return import_fail (error, "file", "export version %" G_GINT64_FORMAT " is not supported",
                        version) ? 0 : -1;
  sn = json_object_get_member (o, "sessions");
  if (sn == NULL || !JSON_NODE_HOLDS_ARRAY (sn))
    return import_fail (error, "file", "\"sessions\" must be an array") ? 0 : -1;
  sessions = json_node_get_array (sn);
  n = json_array_get_length (sessions);
  if (n > 1000000)
    return import_fail (error, "file", "too many chats") ? 0 : -1;
  {
    LOCK ();

    if (!_ruv_store_begin_write (self, error))
      return -1;
    for (i = 0; ok && i < n; i++)
      {
        gint64 id = import_session (self, json_array_get_element (sessions, i), i, &n_messages,
                                    error);

        ok = id > 0;
        if (ok)
          g_array_append_val (ids, id);
      }
    if (!_ruv_store_finish_write (self, ok, error))
      return -1;
  }
  if (new_session_ids != NULL)
    g_array_append_vals (new_session_ids, ids->data, ids->len);
  return (gint) n;
}
