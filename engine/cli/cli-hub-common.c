/* cli-hub-common.c — what the Hub sub-commands share: the Hub with its token,
 * waiting for a result on the default main context, and the RAM-fit line
 * shown before a download.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-hub-token.h"
#include "ruv-ram-fit.h"
#include "ruvllm-cli.h"

char *
ruv_cli_hub_origin (const char  *endpoint,
                    GError     **error)
{
  if (endpoint == NULL || *endpoint == '\0')
    endpoint = g_getenv ("HF_ENDPOINT");
  if (endpoint == NULL || *endpoint == '\0')
    endpoint = RUV_HUB_DEFAULT_ENDPOINT;
  return ruv_hub_token_origin (endpoint, error);
}

RuvHub *
ruv_cli_hub_new (void)
{
  const char *env = g_getenv ("HF_TOKEN");
  g_autoptr(GError) error = NULL;
  RuvHub *hub;
  char *token;

  if (env != NULL && *env != '\0')
    {
      /* a token goes into an HTTP header: refuse one that cannot */
      if (ruv_hub_token_check (env, &error))
        return ruv_hub_new (NULL, env);
      g_printerr ("ruvllm-cli: ignoring HF_TOKEN: %s\n", error->message);
      g_clear_error (&error);
    }
  hub = ruv_hub_new (NULL, NULL);
  /* No keyring (a server, a container) is no token, not an error. */
  token = ruv_hub_token_lookup (ruv_hub_get_endpoint (hub), NULL, &error);
  if (token == NULL && error != NULL)
    g_debug ("no Hub token from the keyring: %s", error->message);
  ruv_hub_set_token (hub, token);
  ruv_hub_token_free (token);
  return hub;
}

void
ruv_cli_got_result (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  (void) source;
  *(GAsyncResult **) user_data = g_object_ref (result);
}

void
ruv_cli_wait (GAsyncResult **result)
{
  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
}

guint64
ruv_cli_available_memory (void)
{
  const char *env = g_getenv ("RUVLLM_MEM_AVAILABLE");
  guint64 v;
  char *end = NULL;

  if (env != NULL && *env != '\0')
    {
      errno = 0;
      v = g_ascii_strtoull (env, &end, 10);
      if (errno == 0 && end != NULL && *end == '\0' && v > 0)
        return v;
    }
  return ruv_ram_fit_available ();
}

char *
ruv_cli_fit_text (const RuvGguf  *meta,
                  guint64         weights_bytes,
                  guint32         n_ctx,
                  GError        **error)
{
  guint64 avail = ruv_cli_available_memory ();
  RuvRamFit fit;

  if (avail == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "available memory unknown");
      return NULL;
    }
  if (!ruv_ram_fit_estimate (meta, weights_bytes, n_ctx, avail, &fit, error))
    return NULL;
  return ruv_ram_fit_describe (&fit);
}

/* "name-00001-of-00003.gguf": the length of "name" and the part number, or
 * FALSE for a file that is not a part. */
static gboolean
split_part (const char *path,
            gsize      *prefix_len,
            guint      *part)
{
  gsize n = strlen (path);
  const char *p;
  guint i;

  /* -NNNNN-of-NNNNN.gguf is 20 bytes. */
  if (n < 20 || g_ascii_strcasecmp (path + n - 5, ".gguf") != 0)
    return FALSE;
  p = path + n - 20;
  if (p[0] != '-' || strncmp (p + 6, "-of-", 4) != 0)
    return FALSE;
  for (i = 1; i <= 5; i++)
    if (!g_ascii_isdigit (p[i]) || !g_ascii_isdigit (p[i + 9]))
      return FALSE;
  *prefix_len = (gsize) (p - path);
  *part = (guint) g_ascii_strtoull (p + 1, NULL, 10);
  return TRUE;
}

static gboolean
is_gguf (const char *path)
{
  gsize n = strlen (path);

  return n >= 5 && g_ascii_strcasecmp (path + n - 5, ".gguf") == 0;
}

typedef struct
{
  const RuvHubFile *file;
  guint64           weights;   /* all parts of a split model */
  GAsyncResult     *result;
  char             *text;      /* the line, once known */
} FitJob;

GPtrArray *
ruv_cli_remote_fits (RuvHub     *hub,
                     const char *repo,
                     const char *revision,
                     GPtrArray  *all_files,
                     GPtrArray  *files)
{
  g_autofree FitJob *jobs = g_new0 (FitJob, files->len + 1);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  guint i, j, pending = 0;

  for (i = 0; i < files->len; i++)
    {
      const RuvHubFile *f = files->pdata[i];
      gsize plen = 0;
      guint part = 0;

      jobs[i].file = f;
      jobs[i].weights = f->size;
      if (!is_gguf (f->path))
        continue;
      if (split_part (f->path, &plen, &part))
        {
          if (part != 1)
            {
              jobs[i].text = g_strdup ("part of a split model (see its first part)");
              continue;
            }
          jobs[i].weights = 0;
          for (j = 0; j < all_files->len; j++)
            {
              const RuvHubFile *g = all_files->pdata[j];
              gsize plen2 = 0;
              guint part2 = 0;

              if (split_part (g->path, &plen2, &part2) && plen2 == plen
                  && strncmp (g->path, f->path, plen) == 0
                  && jobs[i].weights <= G_MAXUINT64 - g->size)
                jobs[i].weights += g->size;
            }
        }
      ruv_hub_read_header_async (hub, repo, revision, f->path, 0, 0, NULL, ruv_cli_got_result,
                                 &jobs[i].result);
      pending++;
    }
  /* The header reads run at once; wait for all. */
  while (pending > 0)
    {
      g_main_context_iteration (NULL, TRUE);
      pending = 0;
      for (i = 0; i < files->len; i++)
        if (jobs[i].text == NULL && is_gguf (jobs[i].file->path) && jobs[i].result == NULL)
          pending++;
    }
  for (i = 0; i < files->len; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(RuvGgufHeader) header = NULL;

      if (jobs[i].result != NULL)
        {
          header = ruv_hub_read_header_finish (hub, jobs[i].result, &error);
          if (header != NULL)
            jobs[i].text = ruv_cli_fit_text (ruv_gguf_header_get_gguf (header), jobs[i].weights,
                                             0, &error);
          if (jobs[i].text == NULL)
            jobs[i].text = g_strdup_printf ("unknown (%s)", error->message);
          g_object_unref (jobs[i].result);
        }
      g_ptr_array_add (out, jobs[i].text);
    }
  return out;
}
