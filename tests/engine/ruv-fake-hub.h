/* ruv-fake-hub.h — a fake Hugging Face Hub and CDN for the tests: two
 * SoupServers on 127.0.0.1 (different ports) on their own thread, serving
 * generated GGUF repositories, with injectable faults.
 * SPDX-License-Identifier: MIT
 *
 * The Hub answers /api/models (search), /api/models/{repo}/tree/{rev} (LFS
 * listings) and /{repo}/resolve/{rev}/{file} with a 302 to the CDN, which
 * serves Range requests and records every Authorization header it sees (the
 * token must never reach it). Repositories (ruv_fake_hub_start adds them):
 *   test/model-GGUF   model-Q4_K_M.gguf, model-Q8_0.gguf (LFS), README.md
 *   test/gated-GGUF   gated-Q4_K_M.gguf; 401 without RUV_FAKE_HUB_TOKEN, 403 with another
 *   test/split-GGUF   split-Q8_0-0000{1,2}-of-00002.gguf
 *   test/fake-GGUF    fake-Q4_K_M.gguf (not a GGUF)
 *   test/many-GGUF    README.md, config.json, many-{Q2_K,Q4_K_M,Q8_0}.gguf, listed two
 *                     entries a page (Link: rel="next", as the real Hub pages)
 *   test/nogguf, test/evil (../../x), test/badjson, test/notarray, test/absurd
 * page_size pages every listing and the search the same way.
 * Everything in ruv_fake_hub after `ready` is guarded by its lock.
 */
#pragma once

#include <glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define RUV_FAKE_HUB_TOKEN "hf_goodtoken"

typedef enum
{
  FAULT_NONE,
  FAULT_DROP,          /* half the body, then the connection closes */
  FAULT_HANG,          /* half the body, then nothing for HANG_MS, then close */
  FAULT_429,           /* 429 with Retry-After: 1 */
  FAULT_500,
  FAULT_CORRUPT,       /* one byte flipped */
  FAULT_IGNORE_RANGE,  /* 200 with the whole file to a Range request */
  FAULT_SHORT_LENGTH,  /* 200 whose Content-Length (and body) is 100 bytes short */
  FAULT_416,
  FAULT_EXTRA_BYTES,   /* 200 with 100 bytes more than the listing says */
  FAULT_403_EXPIRED,   /* 403 "Request has expired", as a CDN for a stale signed URL */
} RuvFakeFault;

#define HANG_MS 1500

typedef struct
{
  char   *path;
  GBytes *data;
  char   *sha256;     /* NULL: listed without LFS */
  guint64 listed_size;
} RuvFakeFile;

typedef struct
{
  char      *id;
  GPtrArray *files;   /* RuvFakeFile */
  gboolean   gated;
  const char *raw_tree;   /* served instead of a generated listing */
  guint      page_size;   /* entries per listing page; 0: one page */
} RuvFakeRepo;

typedef struct
{
  GThread      *thread;
  GMainContext *ctx;
  GMainLoop    *loop;
  SoupServer   *hub;
  SoupServer   *cdn;
  char         *hub_url;
  char         *cdn_url;
  GMutex        lock;
  GCond         cond;
  gboolean      ready;

  /* guarded by lock */
  GPtrArray    *repos;
  GQueue        faults;       /* GINT_TO_POINTER (RuvFakeFault), one per CDN request */
  gboolean      redirect_loop;
  guint         n_cdn;
  guint         n_auth_on_cdn;
  guint         n_auth_on_hub;
  GArray       *range_starts; /* gint64, -1 for no Range */
  guint         page_size;    /* > 0: every listing and search paged so */
  gboolean      page_offsite; /* the next-page links point at the CDN's host */
  gboolean      page_loop;    /* the next-page link points at the page itself */
  guint         n_api;        /* requests to /api/ */
  guint         api_429;      /* the next this many /api/ requests get a 429 */
  const char   *api_retry_after; /* its Retry-After (NULL: none) */
  const char   *api_ratelimit;   /* its RateLimit header (NULL: none) */
} RuvFakeHub;

extern RuvFakeHub ruv_fake_hub;

/* Starts the servers (hub_url and cdn_url are set when it returns); stop
 * joins the thread and frees everything. */
void          ruv_fake_hub_start       (void);
void          ruv_fake_hub_stop        (void);
/* Clears faults, counters, paging and the redirect loop. */
void          ruv_fake_hub_reset       (void);
/* Queues faults for the next CDN requests; end the list with -1. */
void          ruv_fake_hub_push_faults (RuvFakeFault first,
                                        ...);
RuvFakeRepo  *ruv_fake_hub_find_repo   (const char *id);
/* A small llama GGUF with one F32 tensor of n_floats and n_vocab tokens. */
GBytes       *ruv_fake_hub_make_gguf   (guint       n_floats,
                                        guint       n_vocab);
char         *ruv_fake_hub_sha256      (GBytes     *bytes);

G_END_DECLS
