/* ruv-registry.h — the local model registry: every model on disk, with its
 * metadata, size, sha256 and last use, in <models_dir>/registry.json.
 * SPDX-License-Identifier: MIT
 *
 * There is no store (SQLite) models table yet, so the index is a JSON file
 * rewritten atomically (g_file_set_contents_full, CONSISTENT | DURABLE) on
 * every change. It is a cache of what is on disk: entries whose file is gone
 * are dropped on open.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  char    *id;            /* path relative to the models dir, or "local/<sha12>-<name>" */
  char    *path;          /* absolute */
  char    *repository;    /* NULL for imports */
  char    *name;          /* general.name, else the file name */
  char    *architecture;
  char    *sha256;
  guint64  size;
  gint64   added;         /* unix seconds */
  gint64   last_used;     /* unix seconds, 0 = never */
  gboolean imported;      /* outside the models dir: rm forgets it, never deletes it */
} RuvRegistryModel;

typedef struct _RuvRegistry RuvRegistry;

/* $RUVLLM_MODELS_DIR, else $XDG_DATA_HOME/ruvllm/models. */
char             *ruv_registry_default_dir (void);

/* Opens (creating the folder) and reads the index; a corrupt index is set
 * aside as registry.json.corrupt and an empty one started. */
RuvRegistry      *ruv_registry_open        (const char   *models_dir,
                                            GError      **error);
void              ruv_registry_free        (RuvRegistry  *self);
const char       *ruv_registry_get_dir     (RuvRegistry  *self);

/* RuvRegistryModel, borrowed, sorted by id. */
GPtrArray        *ruv_registry_list        (RuvRegistry  *self);
const RuvRegistryModel *ruv_registry_find  (RuvRegistry  *self,
                                            const char   *id);

/* Records a verified download inside the models dir (sha256 from the Hub's
 * listing, may be NULL to compute it). The file must parse as GGUF. */
const RuvRegistryModel *ruv_registry_add_download (RuvRegistry  *self,
                                                   const char   *path,
                                                   const char   *repository,
                                                   const char   *sha256,
                                                   GError      **error);
/* Validates a local .gguf with the full parser, hashes it, and records it in
 * place (not copied). RUV_ERROR_MODEL if it is not a valid GGUF. */
const RuvRegistryModel *ruv_registry_import       (RuvRegistry  *self,
                                                   const char   *path,
                                                   GError      **error);
/* Deletes the file (if inside the models dir) and the entry. */
gboolean          ruv_registry_remove      (RuvRegistry  *self,
                                            const char   *id,
                                            GError      **error);
gboolean          ruv_registry_touch       (RuvRegistry  *self,
                                            const char   *id,
                                            GError      **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvRegistry, ruv_registry_free)

G_END_DECLS
