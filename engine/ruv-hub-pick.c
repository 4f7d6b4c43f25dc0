/* ruv-hub-pick.c — which files of a Hub listing make the model at a wanted
 * precision (ruv_hub_pick_files), split models included.
 * SPDX-License-Identifier: MIT
 */
#include "ruv-hub.h"

#include <string.h>

#include "ruv-error.h"

static gboolean
has_suffix_ci (const char *s,
               const char *suffix)
{
  gsize ls = strlen (s), lx = strlen (suffix);

  return ls >= lx && g_ascii_strcasecmp (s + ls - lx, suffix) == 0;
}

/* Parses "-00001-of-00003.gguf" at the end of name; the stem is the part
 * before it. FALSE for a single file. */
static gboolean
split_info (const char *name,
            guint      *part,
            guint      *count,
            char      **stem)
{
  gsize len = strlen (name);
  const char *p;
  guint64 a, b;
  char *endp;

  /* "-NNNNN-of-NNNNN.gguf" is 20 characters. */
  if (len < 20 || !has_suffix_ci (name, ".gguf"))
    return FALSE;
  p = name + len - 20;
  if (p[0] != '-' || g_ascii_strncasecmp (p + 6, "-of-", 4) != 0)
    return FALSE;
  a = g_ascii_strtoull (p + 1, &endp, 10);
  if (endp != p + 6)
    return FALSE;
  b = g_ascii_strtoull (p + 10, &endp, 10);
  if (endp != p + 15 || a == 0 || b == 0 || a > b || b > 9999)
    return FALSE;
  *part = (guint) a;
  *count = (guint) b;
  if (stem != NULL)
    *stem = g_strndup (name, (gsize) (p - name));
  return TRUE;
}

/* Does the file name carry this quantization tag, delimited by non-alnum? */
static gboolean
name_has_tag (const char *path,
              const char *tag)
{
  const char *base = strrchr (path, '/');
  g_autofree char *lower = g_ascii_strdown (base != NULL ? base + 1 : path, -1);
  g_autofree char *ltag = g_ascii_strdown (tag, -1);
  const char *p = lower;
  gsize tl = strlen (ltag);

  while ((p = strstr (p, ltag)) != NULL)
    {
      gboolean left_ok = p == lower || !g_ascii_isalnum (p[-1]);
      gboolean right_ok = !g_ascii_isalnum (p[tl]) && p[tl] != '_';

      if (left_ok && right_ok)
        return TRUE;
      p++;
    }
  return FALSE;
}

static const char *const known_tags[] = {
  "Q4_K_M", "Q4_K_S", "Q4_K_L", "Q8_0", "F16", "BF16", "Q4_0", "Q4_1", "F32", "Q5_K_M", "Q5_K_S",
  "Q6_K", "Q3_K_M", "Q3_K_L", "Q3_K_S", "Q2_K", "Q5_0", "Q5_1", "IQ4_XS", "IQ4_NL",
};

GPtrArray *
ruv_hub_pick_files (GPtrArray    *files,
                    RuvPrecision  precision,
                    GError      **error)
{
  const char *tags_q4k[] = { "Q4_K_M", "Q4_K", "Q4_K_S", "Q4_K_L", NULL };
  const char *tags_q8[] = { "Q8_0", NULL };
  const char *tags_f16[] = { "F16", "FP16", NULL };
  const char *tags_bf16[] = { "BF16", NULL };
  const char *tags_q4[] = { "Q4_0", NULL };
  const char *tags_f32[] = { "F32", "FP32", NULL };
  const char **tags;
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ruv_hub_file_free);
  g_autoptr(GString) found = g_string_new (NULL);
  guint i, t, n_gguf = 0;

  g_return_val_if_fail (files != NULL, NULL);
  switch (precision)
    {
    case RUV_PRECISION_Q4K: tags = tags_q4k; break;
    case RUV_PRECISION_Q8: tags = tags_q8; break;
    case RUV_PRECISION_FP16: tags = tags_f16; break;
    case RUV_PRECISION_BF16: tags = tags_bf16; break;
    case RUV_PRECISION_Q4: tags = tags_q4; break;
    case RUV_PRECISION_FP32: tags = tags_f32; break;
    default:
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG, "unknown precision %d", precision);
      return NULL;
    }

  for (i = 0; i < files->len; i++)
    if (has_suffix_ci (((RuvHubFile *) files->pdata[i])->path, ".gguf"))
      n_gguf++;
  if (n_gguf == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                   "the repository has no GGUF files");
      return NULL;
    }

  for (t = 0; tags[t] != NULL && out->len == 0; t++)
    for (i = 0; i < files->len; i++)
      {
        RuvHubFile *f = files->pdata[i];
        g_autofree char *stem = NULL;
        guint part = 0, count = 0, p, j;

        if (!has_suffix_ci (f->path, ".gguf") || !name_has_tag (f->path, tags[t])
            || strstr (f->path, "mmproj") != NULL)
          continue;
        if (!split_info (f->path, &part, &count, &stem))
          {
            g_ptr_array_add (out, ruv_hub_file_copy (f));
            break;
          }
        if (part != 1)
          continue;
        /* Collect parts 1..count of this stem. */
        for (p = 1; p <= count; p++)
          {
            gboolean have = FALSE;

            for (j = 0; j < files->len; j++)
              {
                RuvHubFile *g = files->pdata[j];
                g_autofree char *stem2 = NULL;
                guint part2, count2;

                if (split_info (g->path, &part2, &count2, &stem2) && part2 == p
                    && count2 == count && strcmp (stem2, stem) == 0)
                  {
                    g_ptr_array_add (out, ruv_hub_file_copy (g));
                    have = TRUE;
                    break;
                  }
              }
            if (!have)
              {
                g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
                             "split model '%s': part %u of %u is missing", f->path, p, count);
                return NULL;
              }
          }
        break;
      }
  if (out->len > 0)
    return g_steal_pointer (&out);

  for (t = 0; t < G_N_ELEMENTS (known_tags); t++)
    for (i = 0; i < files->len; i++)
      if (has_suffix_ci (((RuvHubFile *) files->pdata[i])->path, ".gguf")
          && name_has_tag (((RuvHubFile *) files->pdata[i])->path, known_tags[t]))
        {
          g_string_append_printf (found, "%s%s", found->len > 0 ? ", " : "", known_tags[t]);
          break;
        }
  g_set_error (error, RUV_ERROR, RUV_ERROR_NOT_FOUND,
               "no %s GGUF file in the repository (it has: %s)", ruv_precision_name (precision),
               found->len > 0 ? found->str : "no recognised quantization");
  return NULL;
}
