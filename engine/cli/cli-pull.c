/* cli-pull.c — `ruvllm-cli pull REPO[:QUANT]`: download, verify and register
 * a GGUF model, with a progress bar on a terminal.
 * SPDX-License-Identifier: MIT
 *
 * QUANT: Q4_K_M (default) / Q4K, Q8_0 / Q8, F16, BF16, Q4_0 / Q4, F32. The
 * token comes from $HF_TOKEN, else the keyring (`ruvllm-cli login`). Before the
 * download each file's RAM fit is printed from its remote header; the model
 * is registered in the store (ruv-registry.h), which also keeps the resume
 * state, so an interrupted pull continues where it stopped when run again.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ruv-download.h"
#include "ruv-error.h"
#include "ruv-registry.h"
#include "ruvllm-cli.h"

static gboolean
parse_quant (const char   *q,
             RuvPrecision *out)
{
  static const struct { const char *name; RuvPrecision p; } map[] = {
    { "Q4_K_M", RUV_PRECISION_Q4K }, { "Q4K", RUV_PRECISION_Q4K }, { "Q4_K", RUV_PRECISION_Q4K },
    { "Q8_0", RUV_PRECISION_Q8 }, { "Q8", RUV_PRECISION_Q8 },
    { "F16", RUV_PRECISION_FP16 }, { "FP16", RUV_PRECISION_FP16 },
    { "BF16", RUV_PRECISION_BF16 },
    { "Q4_0", RUV_PRECISION_Q4 }, { "Q4", RUV_PRECISION_Q4 },
    { "F32", RUV_PRECISION_FP32 }, { "FP32", RUV_PRECISION_FP32 },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (map); i++)
    if (g_ascii_strcasecmp (q, map[i].name) == 0)
      {
        *out = map[i].p;
        return TRUE;
      }
  return FALSE;
}

static void
draw (RuvDownloadManager *m,
      gboolean            tty)
{
  guint64 done = 0, total = 0;
  double speed = 0;
  g_autofree char *sdone = NULL;
  g_autofree char *stotal = NULL;
  g_autofree char *sspeed = NULL;
  char bar[31];
  guint fill = 0, i;

  if (!tty)
    return;
  g_object_get (m, "bytes-done", &done, "bytes-total", &total, "speed", &speed, NULL);
  if (total > 0)
    fill = (guint) (30.0 * (double) done / (double) total);
  for (i = 0; i < 30; i++)
    bar[i] = i < fill ? '#' : '-';
  bar[30] = '\0';
  sdone = g_format_size (done);
  stotal = g_format_size (total);
  sspeed = g_format_size ((guint64) speed);
  printf ("\r[%s] %s / %s  %s/s   ", bar, sdone, stotal, sspeed);
  fflush (stdout);
}

int
ruv_cli_pull (int    argc,
              char **argv)
{
  g_autoptr(GOptionContext) ctx = g_option_context_new ("REPO[:QUANT]: download a GGUF model");
  g_autoptr(RuvHub) hub = NULL;
  g_autoptr(RuvDownloadManager) manager = NULL;
  g_autoptr(RuvRegistry) reg = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GPtrArray) picked = NULL;
  g_autoptr(GPtrArray) fits = NULL;
  g_autoptr(GPtrArray) downloads = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *repo = NULL;
  RuvPrecision precision = RUV_PRECISION_Q4K;
  gboolean tty = isatty (STDOUT_FILENO);
  GOptionEntry entries[] = {
    { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir, "Models folder", "DIR" },
    { NULL }
  };
  const char *colon;
  guint i, pending;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!ruv_cli_parse_options (ctx, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (argc != 2)
    {
      fprintf (stderr, "Usage: ruvllm-cli pull REPO[:QUANT] [--dir DIR]\n");
      return RUV_CLI_EXIT_USAGE;
    }
  colon = strchr (argv[1], ':');
  repo = colon != NULL ? g_strndup (argv[1], (gsize) (colon - argv[1])) : g_strdup (argv[1]);
  if (colon != NULL && !parse_quant (colon + 1, &precision))
    {
      fprintf (stderr, "ruvllm-cli pull: unknown quantization '%s' (Q4_K_M, Q8_0, F16, BF16, "
               "Q4_0, F32)\n", colon + 1);
      return RUV_CLI_EXIT_USAGE;
    }
  if (dir == NULL)
    dir = ruv_registry_default_dir ();
  reg = ruv_registry_open (dir, &error);
  if (reg == NULL)
    return ruv_cli_fail (error);
  hub = ruv_cli_hub_new ();
  manager = ruv_download_manager_new_with_store (hub, ruv_registry_get_dir (reg),
                                                 ruv_registry_get_store (reg));

  ruv_hub_list_files_async (hub, repo, NULL, NULL, ruv_cli_got_result, &res);
  ruv_cli_wait (&res);
  files = ruv_hub_list_files_finish (hub, res, &error);
  if (files == NULL || (picked = ruv_hub_pick_files (files, precision, &error)) == NULL)
    return ruv_cli_fail (error);
  fits = ruv_cli_remote_fits (hub, repo, NULL, files, picked);

  for (i = 0; i < picked->len; i++)
    {
      RuvHubFile *f = picked->pdata[i];
      g_autofree char *size = g_format_size (f->size);
      RuvDownload *d = ruv_download_manager_add (manager, repo, NULL, f, NULL, &error);

      if (d == NULL)
        return ruv_cli_fail (error);
      printf ("%s/%s (%s)\n", repo, f->path, size);
      if (fits->pdata[i] != NULL)
        printf ("    RAM fit: %s\n", (const char *) fits->pdata[i]);
      g_ptr_array_add (downloads, d);
    }
  /* Poll at 5 Hz for the bar; the loop itself wakes on I/O. */
  for (;;)
    {
      pending = 0;
      for (i = 0; i < downloads->len; i++)
        {
          RuvDownloadState s = ruv_download_get_state (downloads->pdata[i]);

          if (s != RUV_DOWNLOAD_STATE_DONE && s != RUV_DOWNLOAD_STATE_FAILED
              && s != RUV_DOWNLOAD_STATE_CANCELLED)
            pending++;
        }
      draw (manager, tty);
      if (pending == 0)
        break;
      g_main_context_iteration (NULL, TRUE);
    }
  if (tty)
    printf ("\n");
  for (i = 0; i < downloads->len; i++)
    {
      RuvDownload *d = downloads->pdata[i];
      RuvHubFile *f = picked->pdata[i];

      if (ruv_download_get_state (d) != RUV_DOWNLOAD_STATE_DONE)
        return ruv_cli_fail (ruv_download_get_error (d));
      if (ruv_registry_add_download (reg, ruv_download_get_path (d), repo, f->sha256,
                                     &error) == NULL)
        return ruv_cli_fail (error);
      printf ("Verified %s\n", ruv_download_get_path (d));
    }
  return RUV_CLI_EXIT_OK;
}
