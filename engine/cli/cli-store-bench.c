/* cli-store-bench.c — `ruvllm-cli store-bench`: chat store timings (a
 * benchmark, not a test): a 5,000-message chat written one message per
 * transaction and loaded back; full-text search over 100,000 messages.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include <glib/gstdio.h>

#include "ruv-store.h"
#include "ruvllm-cli.h"

static const char *const words[] = {
  "the", "model", "answer", "question", "token", "kernel", "memory", "cache", "layer",
  "weights", "prompt", "chat", "history", "search", "window", "thread", "matrix", "vector",
  "sqlite", "disk", "backup", "branch", "rating", "adapter", "snapshot", "download", "gnome",
  "desktop", "quantized", "attention", "softmax", "bread", "river", "mountain", "garden",
  "coffee", "morning", "evening", "music", "paper", "letter", "window", "castle", "forest",
};

static char *
sentence (GRand *rand,
          guint  n_words)
{
  GString *s = g_string_new (NULL);
  guint i;

  for (i = 0; i < n_words; i++)
    {
      if (i > 0)
        g_string_append_c (s, ' ');
      g_string_append (s, words[g_rand_int_range (rand, 0, G_N_ELEMENTS (words))]);
      /* A rare word in one message of ~5,000: what a user searches for. */
      if (g_rand_int_range (rand, 0, 5000 * 40) == 0)
        g_string_append (s, " zeppelin");
    }
  return g_string_free (s, FALSE);
}

static double
ms_since (gint64 t0)
{
  return (double) (g_get_monotonic_time () - t0) / 1000.0;
}

static void
rm_tree (const char *path)
{
  GDir *d = g_dir_open (path, 0, NULL);
  const char *name;

  if (d == NULL)
    {
      g_unlink (path);
      return;
    }
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      rm_tree (child);
    }
  g_dir_close (d);
  g_rmdir (path);
}

static int
search_timing (RuvStore   *store,
               const char *query)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) hits = NULL;
  gint64 t0 = g_get_monotonic_time ();
  int r;

  for (r = 0; r < 5; r++)
    {
      g_clear_pointer (&hits, g_ptr_array_unref);
      hits = ruv_store_search (store, query, 50, &error);
      if (hits == NULL)
        return ruv_cli_fail (error);
    }
  printf ("  search %-12s %3u hits (limit 50): %8.2f ms\n", query, hits->len,
          ms_since (t0) / 5);
  return RUV_CLI_EXIT_OK;
}

int
ruv_cli_store_bench (int    argc,
                     char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- chat store timings");
  g_autoptr(GError) error = NULL;
  g_autoptr(RuvStore) store = NULL;
  g_autoptr(GPtrArray) chat = NULL;
  g_autofree char *dir = NULL, *path = NULL;
  gboolean keep = FALSE;
  gint n_chat = 5000, n_search = 100000;
  const GOptionEntry entries[] = {
    { "messages", 'n', 0, G_OPTION_ARG_INT, &n_chat, "Messages in the long chat (5000)", "N" },
    { "search", 's', 0, G_OPTION_ARG_INT, &n_search, "Messages to search (100000)", "N" },
    { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir, "Folder for the database (a temporary one)",
      "DIR" },
    { "keep", 0, 0, G_OPTION_ARG_NONE, &keep, "Keep the database", NULL },
    { NULL }
  };
  GRand *rand = g_rand_new_with_seed (1);
  gint64 t0, session, parent = 0;
  gint i, per_chat = 100;
  int rc = RUV_CLI_EXIT_OK;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!ruv_cli_parse_options (context, &argc, &argv))
    return RUV_CLI_EXIT_USAGE;
  if (n_chat < 1 || n_chat > 10000000 || n_search < 0 || n_search > 100000000)
    {
      fprintf (stderr, "ruvllm-cli store-bench: sizes out of range\n");
      return RUV_CLI_EXIT_USAGE;
    }
  /* A folder given by the user is never removed. */
  if (dir != NULL)
    keep = TRUE;
  else
    dir = g_dir_make_tmp ("ruvllm-store-bench-XXXXXX", &error);
  if (dir == NULL)
    return ruv_cli_fail (error);
  path = g_build_filename (dir, "ruvllm.db", NULL);
  store = ruv_store_new_for_path (path, &error);
  if (store == NULL)
    return ruv_cli_fail (error);
  printf ("store-bench: %s (SQLite WAL, synchronous=NORMAL)\n", path);

  /* One long chat, one transaction per message as the app writes it. */
  session = ruv_store_create_session (store, NULL, NULL, NULL, NULL, &error);
  t0 = g_get_monotonic_time ();
  for (i = 0; i < n_chat && rc == RUV_CLI_EXIT_OK; i++)
    {
      g_autofree char *text = sentence (rand, 60);

      parent = ruv_store_add_message (store, session, parent, i % 2 ? "assistant" : "user",
                                      text, NULL, NULL, TRUE, &error);
      if (parent <= 0)
        rc = ruv_cli_fail (error);
    }
  if (rc != RUV_CLI_EXIT_OK)
    return rc;
  printf ("  insert %d-message chat: %8.1f ms (%.1f us/message)\n", n_chat, ms_since (t0),
          ms_since (t0) * 1000.0 / n_chat);
  t0 = g_get_monotonic_time ();
  for (i = 0; i < 5; i++)
    {
      g_clear_pointer (&chat, g_ptr_array_unref);
      chat = ruv_store_load_chat (store, session, &error);
      if (chat == NULL)
        return ruv_cli_fail (error);
    }
  printf ("  load it back (%u messages):  %8.2f ms\n", chat->len, ms_since (t0) / 5);

  /* Fill up to n_search messages in chats of 100, then search. */
  t0 = g_get_monotonic_time ();
  for (i = n_chat; i < n_search && rc == RUV_CLI_EXIT_OK; i++)
    {
      g_autofree char *text = sentence (rand, 40);

      if ((i - n_chat) % per_chat == 0)
        {
          session = ruv_store_create_session (store, NULL, NULL, NULL, NULL, &error);
          parent = 0;
        }
      parent = ruv_store_add_message (store, session, parent, i % 2 ? "assistant" : "user",
                                      text, NULL, NULL, TRUE, &error);
      if (parent <= 0)
        rc = ruv_cli_fail (error);
    }
  if (rc != RUV_CLI_EXIT_OK)
    return rc;
  if (n_search > n_chat)
    printf ("  insert %d more messages:   %8.1f ms\n", n_search - n_chat, ms_since (t0));
  printf ("  search over %d messages (mean of 5):\n", MAX (n_search, n_chat));
  rc = search_timing (store, "zeppelin");
  if (rc == RUV_CLI_EXIT_OK)
    rc = search_timing (store, "coffee morning");
  if (rc == RUV_CLI_EXIT_OK)
    rc = search_timing (store, "mou");
  if (rc == RUV_CLI_EXIT_OK)
    rc = search_timing (store, "the");
  g_rand_free (rand);
  g_clear_object (&store);
  if (!keep)
    rm_tree (dir);
  return rc;
}
