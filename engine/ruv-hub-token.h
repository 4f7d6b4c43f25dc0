/* ruv-hub-token.h — the Hub access token in the user's keyring (libsecret).
 * SPDX-License-Identifier: MIT
 *
 * One secret per Hub endpoint, stored with the schema
 * "io.github.ruvllm.RuvLLM.HubToken" and keyed by the endpoint's origin
 * (scheme, lower-case host and port: "https://huggingface.co"), so a token
 * saved for one endpoint is never found, and so never sent, for another.
 * The token is only ever in the keyring and in memory: never in the database,
 * never in a log or an error message.
 *
 * The sync calls block on D-Bus (the CLI, tests); the app uses the _async
 * ones, which complete on the caller's thread-default main context. When no
 * Secret Service answers (no session bus, no keyring daemon) every call fails
 * with RUV_ERROR_IO; the CLI then goes on without a token.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define RUV_HUB_TOKEN_SCHEMA "io.github.ruvllm.RuvLLM.HubToken"
#define RUV_HUB_TOKEN_MAX_LEN 1024

/* The key a token is stored under: "scheme://host[:port]" of endpoint (the
 * port only when not the scheme's default), or NULL and RUV_ERROR_CONFIG
 * when endpoint is not an http(s) URL with a host. */
char     *ruv_hub_token_origin       (const char          *endpoint,
                                      GError             **error);
/* A token is 1..RUV_HUB_TOKEN_MAX_LEN printable ASCII bytes without spaces
 * (it goes into an HTTP header). RUV_ERROR_CONFIG otherwise. */
gboolean  ruv_hub_token_check        (const char          *token,
                                      GError             **error);
/* Overwrites token with zeros and frees it. NULL is ignored. */
void      ruv_hub_token_free         (char                *token);

/* The token stored for endpoint, or NULL: with error unset when none is
 * stored, set when the keyring cannot be asked. Free with
 * ruv_hub_token_free. */
char     *ruv_hub_token_lookup       (const char          *endpoint,
                                      GCancellable        *cancellable,
                                      GError             **error);
/* Stores token (surrounding whitespace removed, then checked) for endpoint,
 * replacing the one stored before. */
gboolean  ruv_hub_token_store        (const char          *endpoint,
                                      const char          *token,
                                      GCancellable        *cancellable,
                                      GError             **error);
/* Removes endpoint's token; *out_removed (may be NULL) says whether there
 * was one. */
gboolean  ruv_hub_token_clear        (const char          *endpoint,
                                      gboolean            *out_removed,
                                      GCancellable        *cancellable,
                                      GError             **error);

void      ruv_hub_token_lookup_async  (const char          *endpoint,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
char     *ruv_hub_token_lookup_finish (GAsyncResult        *result,
                                       GError             **error);
void      ruv_hub_token_store_async   (const char          *endpoint,
                                       const char          *token,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
gboolean  ruv_hub_token_store_finish  (GAsyncResult        *result,
                                       GError             **error);
void      ruv_hub_token_clear_async   (const char          *endpoint,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
gboolean  ruv_hub_token_clear_finish  (GAsyncResult        *result,
                                       gboolean            *out_removed,
                                       GError             **error);

G_END_DECLS
