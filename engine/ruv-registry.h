/* ruv-registry.h — the local model registry: every model on disk, with its
 * metadata, size, sha256 and last use, in the store's models table.
 * SPDX-License-Identifier: MIT
 *
 * The source of truth is RuvStore's models table (one row per (repo, file)):
 * a registered model is a row in state "ready" with a path. Downloads keep
 * their resume state in the same rows (see ruv-download.h), so rows in other
 * states are downloads, not models, and are not listed here. A model's id is
 * "<repo>/<file>": for a download that is its path under the models dir
 * ("owner/name/file.gguf"); an import has repo "local" and file
 * "<sha12>-<name>" (outside the models dir) or its path under the models dir.
 * Rows whose file is gone are dropped on open. A <models_dir>/registry.json
 * written by earlier versions is imported once and renamed registry.json.migrated.
 */
#pragma once

#include <glib.h>

#include "ruv-store.h"

G_BEGIN_DECLS

typedef struct
{
  char    *id;            /* "<repo>/<file>" (see above) */
  gint64   store_id;      /* the store's row id */
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

/* Opens the registry of models_dir (created if missing) over `store`; NULL
 * store: the default one (ruv_store_new: $XDG_DATA_HOME/ruvllm/ruvllm.db).
 * A legacy registry.json is migrated (a corrupt one is set aside as
 * registry.json.corrupt). Errors: RUV_ERROR_IO, RUV_ERROR_STORAGE. */
RuvRegistry      *ruv_registry_open_with_store (RuvStore   *store,
                                                const char *models_dir,
                                                GError    **error);
/* ruv_registry_open_with_store (NULL, models_dir, error). */
RuvRegistry      *ruv_registry_open        (const char   *models_dir,
                                            GError      **error);
RuvStore         *ruv_registry_get_store   (RuvRegistry  *self);
void              ruv_registry_free        (RuvRegistry  *self);
const char       *ruv_registry_get_dir     (RuvRegistry  *self);

/* RuvRegistryModel, borrowed (valid until that model is removed or the
 * registry freed), sorted by id. */
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
/* Deletes the file (if inside the models dir, with a leftover .incomplete)
 * and the row. */
gboolean          ruv_registry_remove      (RuvRegistry  *self,
                                            const char   *id,
                                            GError      **error);
gboolean          ruv_registry_touch       (RuvRegistry  *self,
                                            const char   *id,
                                            GError      **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RuvRegistry, ruv_registry_free)

G_END_DECLS
