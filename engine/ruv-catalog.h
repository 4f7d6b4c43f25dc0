/* ruv-catalog.h — the curated catalog of small chat models (data/catalog.json).
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  char    *id;            /* short unique id, [a-z0-9._-] */
  char    *name;
  char    *repository;    /* checked with ruv_hub_check_repo_id */
  char    *file;          /* checked with ruv_hub_check_path, ends in .gguf */
  char    *quantization;
  guint64  size_bytes;    /* approximate */
  char    *parameters;
  char    *license;
  char    *description;
} RuvCatalogEntry;

void       ruv_catalog_entry_free (RuvCatalogEntry *entry);

/* Parses and validates a catalog. Any invalid entry fails the whole catalog
 * (RUV_ERROR_CONFIG naming the entry and field): it ships with the app, so
 * an error is a packaging bug to surface, not to hide. Result: GPtrArray of
 * RuvCatalogEntry. */
GPtrArray *ruv_catalog_load_from_data (const char  *data,
                                       gssize       length,
                                       GError     **error);
GPtrArray *ruv_catalog_load_file      (const char  *path,
                                       GError     **error);
/* $RUVLLM_CATALOG, else <datadir>/ruvllm/catalog.json from the XDG system
 * data dirs. */
GPtrArray *ruv_catalog_load_default   (GError     **error);

const RuvCatalogEntry *ruv_catalog_find (GPtrArray  *catalog,
                                         const char *id);

G_END_DECLS
