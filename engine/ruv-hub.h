/* ruv-hub.h — a Hugging Face Hub client: search, file listings, remote GGUF
 * headers and the redirect-safe requests downloads are made of.
 * SPDX-License-Identifier: MIT
 *
 * Everything is asynchronous on libsoup 3 and completes on the thread-default
 * main context of the caller. The token (for gated and private repos) is sent
 * only to the Hub's own origin: redirects are followed by hand
 * (SOUP_MESSAGE_NO_REDIRECT) and the Authorization header is dropped when a
 * redirect leaves that origin (the CDN), whatever the libsoup version.
 * Names that come from the API (repo ids, file paths) are untrusted and go
 * through ruv_hub_check_repo_id / ruv_hub_check_path before any path or URL
 * is built from them.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "ruv-gguf-header.h"
#include "ruv-types.h"

G_BEGIN_DECLS

#define RUV_HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define RUV_HUB_MAX_REDIRECTS 8

#define RUV_TYPE_HUB (ruv_hub_get_type ())
G_DECLARE_FINAL_TYPE (RuvHub, ruv_hub, RUV, HUB, GObject)

/* One search hit. */
typedef struct
{
  char    *id;            /* "owner/name", checked */
  guint64  downloads;
  guint64  likes;
  char    *pipeline_tag;  /* may be NULL */
  gboolean gated;
} RuvHubModel;

/* One file of a repository listing. */
typedef struct
{
  char    *path;          /* checked by ruv_hub_check_path */
  guint64  size;          /* the real size (LFS size for LFS files) */
  char    *sha256;        /* lowercase hex of an LFS file's content, or NULL */
  char    *git_oid;       /* git blob sha1 (40 hex), or NULL */
} RuvHubFile;

void        ruv_hub_model_free        (RuvHubModel *model);
void        ruv_hub_file_free         (RuvHubFile  *file);
RuvHubFile *ruv_hub_file_copy         (const RuvHubFile *file);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvHubModel, ruv_hub_model_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvHubFile, ruv_hub_file_free)

/* libsoup 3.2 names no 429. */
#define RUV_HTTP_TOO_MANY_REQUESTS 429

/* endpoint NULL: $HF_ENDPOINT, else RUV_HUB_DEFAULT_ENDPOINT. token may be
 * NULL (the CLI passes $HF_TOKEN, the app a keyring secret). */
RuvHub      *ruv_hub_new              (const char   *endpoint,
                                       const char   *token) G_GNUC_WARN_UNUSED_RESULT;
const char  *ruv_hub_get_endpoint     (RuvHub       *self);
void         ruv_hub_set_token        (RuvHub       *self,
                                       const char   *token);
gboolean     ruv_hub_has_token        (RuvHub       *self);
SoupSession *ruv_hub_get_session      (RuvHub       *self);

/* "owner/name": ASCII letters, digits, '-', '_', '.', no "..", <= 96 bytes
 * per part. RUV_ERROR_CONFIG otherwise. */
gboolean     ruv_hub_check_repo_id    (const char   *repo_id,
                                       GError      **error);
/* A relative path inside a repo: not empty, <= 1024 bytes, components of
 * 1..255 bytes, no leading '/', no '\\', no control bytes, no "." or ".."
 * components, no drive letters ("C:"), valid UTF-8. RUV_ERROR_CONFIG. */
gboolean     ruv_hub_check_path       (const char   *path,
                                       GError      **error);
/* A revision: branch, tag or commit; same rules as a path, no '/'-leading. */
gboolean     ruv_hub_check_revision   (const char   *revision,
                                       GError      **error);

/* {endpoint}/{repo}/resolve/{revision}/{path}, path segments escaped. */
char        *ruv_hub_resolve_url      (RuvHub       *self,
                                       const char   *repo_id,
                                       const char   *revision,
                                       const char   *path);

/* Search GGUF models by downloads, following the Hub's next-page links
 * until `limit` hits. Result: GPtrArray of RuvHubModel. API calls answered
 * 429 are retried after the wait the Hub asks for, a few times, when it is
 * under a minute. */
void         ruv_hub_search_async     (RuvHub              *self,
                                       const char          *query,
                                       guint                limit,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
GPtrArray   *ruv_hub_search_finish    (RuvHub              *self,
                                       GAsyncResult        *result,
                                       GError             **error);

/* Every file of repo at revision (NULL: "main"), recursively, over all the
 * pages the Hub sends (Link: rel="next" on the Hub's origin only, at most
 * 100 pages; RUV_ERROR_IO otherwise). Entries with unsafe names make the
 * whole listing fail (RUV_ERROR_CONFIG): a server that sends them is not
 * trusted further. Result: GPtrArray of RuvHubFile. */
void         ruv_hub_list_files_async  (RuvHub              *self,
                                        const char          *repo_id,
                                        const char          *revision,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data);
GPtrArray   *ruv_hub_list_files_finish (RuvHub              *self,
                                        GAsyncResult        *result,
                                        GError             **error);

/* Reads a remote GGUF's metadata with Range requests: first_bytes (0: 256
 * KiB), growing 4x up to max_bytes (0: 64 MiB) while the prefix is too short. */
void           ruv_hub_read_header_async  (RuvHub              *self,
                                           const char          *repo_id,
                                           const char          *revision,
                                           const char          *path,
                                           gsize                first_bytes,
                                           gsize                max_bytes,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data);
RuvGgufHeader *ruv_hub_read_header_finish (RuvHub              *self,
                                           GAsyncResult        *result,
                                           GError             **error);

/* The files to download for a precision: Q4K → Q4_K_M (else another Q4_K),
 * Q8 → Q8_0, FP16 → F16, BF16 → BF16, Q4 → Q4_0, FP32 → F32, matched
 * case-insensitively on the file name. A split model (-00001-of-0000N.gguf)
 * yields all N parts in order, and fails if one is missing. Result: a new
 * GPtrArray of RuvHubFile copies. RUV_ERROR_NOT_FOUND with the quantizations
 * that do exist when none matches; RUV_ERROR_NOT_FOUND when no GGUF at all. */
GPtrArray   *ruv_hub_pick_files       (GPtrArray    *files,
                                       RuvPrecision  precision,
                                       GError      **error);

/* GET url following redirects by hand (at most RUV_HUB_MAX_REDIRECTS, loops
 * detected), with Accept-Encoding: identity, a Range when range_start > 0
 * or range_end >= 0 (range_end -1: to the end), and the token only while on
 * the Hub's origin. Completes with the final response's body stream and
 * message (any status: the caller interprets it). */
void          ruv_hub_send_async      (RuvHub              *self,
                                       const char          *url,
                                       gint64               range_start,
                                       gint64               range_end,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
GInputStream *ruv_hub_send_finish     (RuvHub              *self,
                                       GAsyncResult        *result,
                                       SoupMessage        **out_message,
                                       GError             **error);

/* RUV_ERROR for an HTTP failure status, with the Hub's meaning (gated repo,
 * missing repo or sign-in, bad token, rate limit, server error). */
GError      *ruv_hub_status_error     (SoupMessage  *message,
                                       const char   *what);

G_END_DECLS
