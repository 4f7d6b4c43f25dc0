/* fuzz-gguf.c — libFuzzer target: parse any bytes as GGUF, then read every
 * key with every getter and every tensor's bytes.
 * SPDX-License-Identifier: MIT
 *
 * A parse either fails with RUV_ERROR_MODEL or yields a file whose every
 * accessor stays inside the input; anything else aborts so the fuzzer sees it.
 * Seeds in corpus/gguf: the *.gguf files come from make-gguf-corpus.c; the
 * files named by hash are a libFuzzer -merge=1 of a fuzzing run's corpus.
 * Run: fuzz-gguf -max_len=4096 -malloc_limit_mb=64 NEW_DIR tests/fuzz/corpus/gguf
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "ruv-error.h"
#include "ruv-gguf.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_error (GError **error)
{
  if (*error != NULL && !g_error_matches (*error, RUV_ERROR, RUV_ERROR_MODEL))
    g_error ("unexpected error domain/code: %s", (*error)->message);
  g_clear_error (error);
}

/* Reads the bytes so that ASan checks the ranges the parser vouched for. */
static guint
touch (const guint8 *p,
       gsize         n)
{
  guint sum = 0;
  gsize i;

  for (i = 0; i < n; i++)
    sum += p[i];
  return sum;
}

static void
exercise_key (const RuvGguf *g,
              const char    *key)
{
  GError *error = NULL;
  guint64 u;
  gint64 i;
  double f;
  gboolean b;
  const char *s;
  RuvGgufType elem_type;
  guint64 len;

  if (!ruv_gguf_has_key (g, key) || ruv_gguf_get_kv_type (g, key) >= RUV_GGUF_TYPE_COUNT)
    g_error ("key '%s' listed but not found", key);
  ruv_gguf_get_uint (g, key, &u, &error);
  check_error (&error);
  ruv_gguf_get_int (g, key, &i, &error);
  check_error (&error);
  ruv_gguf_get_float (g, key, &f, &error);
  check_error (&error);
  ruv_gguf_get_bool (g, key, &b, &error);
  check_error (&error);
  if (ruv_gguf_get_string (g, key, &s, &error))
    (void) strlen (s);
  check_error (&error);

  if (ruv_gguf_get_array_info (g, key, &elem_type, &len))
    {
      guint64 n = MIN (len, 4096);
      guint64 k;

      if (elem_type == RUV_GGUF_TYPE_STRING)
        {
          for (k = 0; k < len; k++)
            {
              gsize slen = 0;
              const char *p = ruv_gguf_get_array_string (g, key, k, &slen);

              if (p == NULL)
                g_error ("string %" G_GUINT64_FORMAT " of '%s' missing", k, key);
              touch ((const guint8 *) p, slen);
            }
          if (ruv_gguf_get_array_string (g, key, len, NULL) != NULL)
            g_error ("string past the end of '%s'", key);
        }
      else
        {
          g_autofree float *fs = g_new (float, n + 1);
          g_autofree gint32 *is = g_new (gint32, n + 1);

          ruv_gguf_get_array_f32 (g, key, fs, n, &error);
          check_error (&error);
          ruv_gguf_get_array_i32 (g, key, is, n, &error);
          check_error (&error);
          /* The wrong length must be refused, not overrun. */
          if (n > 0 && ruv_gguf_get_array_f32 (g, key, fs, n - 1, &error))
            g_error ("short read of '%s' accepted", key);
          check_error (&error);
        }
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  GError *error = NULL;
  RuvGguf *g = ruv_gguf_parse (data, size, "fuzz.gguf", &error);
  guint64 absent = 0;
  gsize n;
  gsize k;

  if (g == NULL)
    {
      if (error == NULL || !g_error_matches (error, RUV_ERROR, RUV_ERROR_MODEL))
        g_error ("parse failed without a model error");
      g_error_free (error);
      return 0;
    }
  if (error != NULL)
    g_error ("parse succeeded with an error set");

  (void) ruv_gguf_get_version (g);
  (void) ruv_gguf_get_filename (g);
  if (ruv_gguf_get_n_tensors (g) > 0 && ruv_gguf_get_data_offset (g) > size)
    g_error ("data section past the end");
  if (ruv_gguf_get_alignment (g) == 0)
    g_error ("zero alignment");

  n = ruv_gguf_get_n_kv (g);
  for (k = 0; k < n; k++)
    exercise_key (g, ruv_gguf_get_key (g, k));
  if (ruv_gguf_get_key (g, n) != NULL)
    g_error ("key past the end");
  /* An absent key: FALSE without an error (the input may hold this key). */
  if (!ruv_gguf_has_key (g, "fuzz.absent")
      && (ruv_gguf_get_uint (g, "fuzz.absent", &absent, &error) || error != NULL))
    g_error ("absent key found");

  n = ruv_gguf_get_n_tensors (g);
  for (k = 0; k < n; k++)
    {
      const RuvGgufTensor *t = ruv_gguf_get_tensor (g, k);

      if (ruv_gguf_find_tensor (g, t->name) != t)
        g_error ("tensor '%s' not found by name", t->name);
      if (t->data < data || t->size > (gsize) (data + size - t->data))
        g_error ("tensor '%s' outside the input", t->name);
      touch (t->data, MIN (t->size, 4096));
      if (t->size > 0)
        touch (t->data + t->size - 1, 1);
    }
  if (ruv_gguf_get_tensor (g, n) != NULL)
    g_error ("tensor past the end");

  ruv_gguf_free (g);
  return 0;
}
