/* ruv-hub-token.c — the Hub access token in the user's keyring (libsecret).
 * SPDX-License-Identifier: MIT
 */
#include "ruv-hub-token.h"

#include <string.h>

#include <libsecret/secret.h>
#include <libsoup/soup.h>

#include "ruv-error.h"

/* The only attribute: the origin a token belongs to. The schema name is
 * stored with the item (xdg:schema) and matched by every lookup. */
static const SecretSchema *
token_schema (void)
{
  static const SecretSchema schema = {
    RUV_HUB_TOKEN_SCHEMA, SECRET_SCHEMA_NONE,
    {
      { "endpoint", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
    },
  };

  return &schema;
}

char *
ruv_hub_token_origin (const char  *endpoint,
                      GError     **error)
{
  g_autoptr(GUri) uri = NULL;
  g_autofree char *host = NULL;
  const char *scheme;
  gboolean ipv6;
  int port;

  if (endpoint != NULL)
    uri = g_uri_parse (endpoint, SOUP_HTTP_URI_FLAGS, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0'
      || (g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") != 0
          && g_ascii_strcasecmp (g_uri_get_scheme (uri), "http") != 0))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "'%s' is not an http(s) URL",
                   endpoint != NULL ? endpoint : "(null)");
      return NULL;
    }
  scheme = g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0 ? "https" : "http";
  host = g_ascii_strdown (g_uri_get_host (uri), -1);
  ipv6 = strchr (host, ':') != NULL;
  port = g_uri_get_port (uri);
  /* The default port is left out, so "https://h" and "https://h:443" match. */
  if (port < 0 || (port == 443 && scheme[4] == 's') || (port == 80 && scheme[4] == '\0'))
    return g_strdup_printf ("%s://%s%s%s", scheme, ipv6 ? "[" : "", host, ipv6 ? "]" : "");
  return g_strdup_printf ("%s://%s%s%s:%d", scheme, ipv6 ? "[" : "", host, ipv6 ? "]" : "",
                          port);
}

gboolean
ruv_hub_token_check (const char  *token,
                     GError     **error)
{
  gsize i, len = token != NULL ? strlen (token) : 0;

  if (len == 0 || len > RUV_HUB_TOKEN_MAX_LEN)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   len == 0 ? "the token is empty" : "the token is too long");
      return FALSE;
    }
  /* Printable ASCII only: a CR or LF would split the Authorization header. */
  for (i = 0; i < len; i++)
    if ((guchar) token[i] <= 0x20 || (guchar) token[i] >= 0x7f)
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                     "the token holds a space, control or non-ASCII character");
        return FALSE;
      }
  return TRUE;
}

void
ruv_hub_token_free (char *token)
{
  if (token == NULL)
    return;
  memset (token, 0, strlen (token));
  g_free (token);
}

/* libsecret's errors (GDBus, Secret, GIO) become RUV_ERROR_IO, except a
 * cancellation, which stays G_IO_ERROR_CANCELLED. */
static GError *
keyring_error (GError *error)
{
  GError *out;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return error;
  out = g_error_new (RUV_ERROR, RUV_ERROR_IO, "the keyring (Secret Service) is not available: %s",
                     error->message);
  g_error_free (error);
  return out;
}

/* ---- sync ------------------------------------------------------------- */

char *
ruv_hub_token_lookup (const char    *endpoint,
                      GCancellable  *cancellable,
                      GError       **error)
{
  g_autofree char *origin = ruv_hub_token_origin (endpoint, error);
  GError *local_error = NULL;
  char *secret;

  if (origin == NULL)
    return NULL;
  secret = secret_password_lookup_sync (token_schema (), cancellable, &local_error,
                                        "endpoint", origin, NULL);
  if (local_error != NULL)
    {
      g_propagate_error (error, keyring_error (local_error));
      return NULL;
    }
  return secret;
}

/* A copy of token without surrounding whitespace, checked; NULL on error. */
static char *
clean_token (const char  *token,
             GError     **error)
{
  char *copy = g_strstrip (g_strdup (token != NULL ? token : ""));

  if (!ruv_hub_token_check (copy, error))
    {
      ruv_hub_token_free (copy);
      return NULL;
    }
  return copy;
}

gboolean
ruv_hub_token_store (const char    *endpoint,
                     const char    *token,
                     GCancellable  *cancellable,
                     GError       **error)
{
  g_autofree char *origin = ruv_hub_token_origin (endpoint, error);
  g_autofree char *label = NULL;
  GError *local_error = NULL;
  char *clean;
  gboolean ok;

  if (origin == NULL || (clean = clean_token (token, error)) == NULL)
    return FALSE;
  label = g_strdup_printf ("Hugging Face token for %s (RuvLLM)", origin);
  ok = secret_password_store_sync (token_schema (), SECRET_COLLECTION_DEFAULT, label, clean,
                                   cancellable, &local_error, "endpoint", origin, NULL);
  ruv_hub_token_free (clean);
  if (!ok)
    {
      if (local_error == NULL)
        local_error = g_error_new (RUV_ERROR, RUV_ERROR_IO, "the keyring did not store it");
      g_propagate_error (error, keyring_error (local_error));
    }
  return ok;
}

gboolean
ruv_hub_token_clear (const char    *endpoint,
                     gboolean      *out_removed,
                     GCancellable  *cancellable,
                     GError       **error)
{
  g_autofree char *origin = ruv_hub_token_origin (endpoint, error);
  GError *local_error = NULL;
  gboolean removed;

  if (out_removed != NULL)
    *out_removed = FALSE;
  if (origin == NULL)
    return FALSE;
  removed = secret_password_clear_sync (token_schema (), cancellable, &local_error,
                                        "endpoint", origin, NULL);
  if (local_error != NULL)
    {
      g_propagate_error (error, keyring_error (local_error));
      return FALSE;
    }
  if (out_removed != NULL)
    *out_removed = removed;
  return TRUE;
}

/* ---- async ------------------------------------------------------------ */

static void
lookup_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  char *secret;

  (void) source;
  secret = secret_password_lookup_finish (result, &error);
  if (error != NULL)
    g_task_return_error (task, keyring_error (error));
  else
    g_task_return_pointer (task, secret, (GDestroyNotify) ruv_hub_token_free);
}

/* The task of an async call on endpoint's token, tagged `tag`, and the
 * endpoint's origin in *origin; NULL for an endpoint without one (the error
 * already returned on the task). */
static GTask *
token_task (const char          *endpoint,
            gpointer             tag,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data,
            char               **origin)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, tag);
  *origin = ruv_hub_token_origin (endpoint, &error);
  if (*origin == NULL)
    {
      g_task_return_error (task, error);
      return NULL;
    }
  return g_steal_pointer (&task);
}

void
ruv_hub_token_lookup_async (const char          *endpoint,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autofree char *origin = NULL;
  g_autoptr(GTask) task = token_task (endpoint, ruv_hub_token_lookup_async, cancellable,
                                      callback, user_data, &origin);

  if (task == NULL)
    return;
  secret_password_lookup (token_schema (), cancellable, lookup_done, g_steal_pointer (&task),
                          "endpoint", origin, NULL);
}

char *
ruv_hub_token_lookup_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == ruv_hub_token_lookup_async,
                        NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
store_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  (void) source;
  if (!secret_password_store_finish (result, &error))
    {
      if (error == NULL)
        error = g_error_new (RUV_ERROR, RUV_ERROR_IO, "the keyring did not store it");
      g_task_return_error (task, keyring_error (error));
    }
  else
    g_task_return_boolean (task, TRUE);
}

void
ruv_hub_token_store_async (const char          *endpoint,
                           const char          *token,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autofree char *origin = NULL;
  g_autoptr(GTask) task = token_task (endpoint, ruv_hub_token_store_async, cancellable,
                                      callback, user_data, &origin);
  g_autofree char *label = NULL;
  GError *error = NULL;
  char *clean;

  if (task == NULL)
    return;
  clean = clean_token (token, &error);
  if (clean == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  label = g_strdup_printf ("Hugging Face token for %s (RuvLLM)", origin);
  /* libsecret copies the secret before this returns. */
  secret_password_store (token_schema (), SECRET_COLLECTION_DEFAULT, label, clean, cancellable,
                         store_done, g_steal_pointer (&task), "endpoint", origin, NULL);
  ruv_hub_token_free (clean);
}

gboolean
ruv_hub_token_store_finish (GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == ruv_hub_token_store_async,
                        FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
clear_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  gboolean removed;

  (void) source;
  removed = secret_password_clear_finish (result, &error);
  if (error != NULL)
    g_task_return_error (task, keyring_error (error));
  else
    g_task_return_int (task, removed ? 1 : 0);
}

void
ruv_hub_token_clear_async (const char          *endpoint,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autofree char *origin = NULL;
  g_autoptr(GTask) task = token_task (endpoint, ruv_hub_token_clear_async, cancellable,
                                      callback, user_data, &origin);

  if (task == NULL)
    return;
  secret_password_clear (token_schema (), cancellable, clear_done, g_steal_pointer (&task),
                         "endpoint", origin, NULL);
}

gboolean
ruv_hub_token_clear_finish (GAsyncResult  *result,
                            gboolean      *out_removed,
                            GError       **error)
{
  gssize v;

  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == ruv_hub_token_clear_async,
                        FALSE);
  if (out_removed != NULL)
    *out_removed = FALSE;
  v = g_task_propagate_int (G_TASK (result), error);
  if (v < 0)
    return FALSE;
  if (out_removed != NULL)
    *out_removed = v == 1;
  return TRUE;
}
