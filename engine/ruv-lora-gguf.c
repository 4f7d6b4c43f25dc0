/* ruv-lora-gguf.c — GGUF LoRA adapter export and distrustful import.
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rk.h"
#include "ruv-error.h"
#include "ruv-gguf-writer.h"
#include "ruv-gguf.h"
#include "ruv-lora-gguf.h"

static gboolean
adapter_fail (GError    **error,
              const char *name,
              const char *fmt,
              ...) G_GNUC_PRINTF (3, 4);

static gboolean
adapter_fail (GError    **error,
              const char *name,
              const char *fmt,
              ...)
{
  g_autofree char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER, "adapter '%s': %s",
               name != NULL ? name : "(memory)", msg);
  return FALSE;
}

GBytes *
ruv_lora_gguf_to_bytes (RuvMicroLora *lora,
                        RuvModel     *model,
                        GError      **error)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  const RuvLoraAdapter *first;
  float alpha;
  gsize i;

  g_return_val_if_fail (RUV_IS_MICRO_LORA (lora), NULL);
  g_return_val_if_fail (RUV_IS_MODEL (model), NULL);

  first = ruv_micro_lora_get_adapter (lora, 0);
  if (first == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER, "the adapter set is empty");
      return NULL;
    }
  alpha = first->scale * (float) first->rank;
  ruv_gguf_writer_set_string (w, "general.architecture", ruv_model_get_architecture (model));
  ruv_gguf_writer_set_string (w, "general.type", "adapter");
  ruv_gguf_writer_set_string (w, "general.name", "ruvllm MicroLoRA");
  ruv_gguf_writer_set_string (w, "adapter.type", "lora");
  ruv_gguf_writer_set_float32 (w, "adapter.lora.alpha", alpha);
  if (ruv_model_get_name (model) != NULL)
    ruv_gguf_writer_set_string (w, "ruvllm.lora.base_name", ruv_model_get_name (model));

  ruv_micro_lora_lock (lora);
  for (i = 0; i < ruv_micro_lora_get_n_adapters (lora); i++)
    {
      const RuvLoraAdapter *ad = ruv_micro_lora_get_adapter (lora, i);
      char name[64];
      gint64 ne[2];
      g_autofree float *b = g_new (float, ad->n_out * ad->rank);
      /* scale on export so (alpha / rank) * B' = scale * B */
      float f = ad->scale * (float) ad->rank / alpha;
      gint64 k;

      for (k = 0; k < ad->n_out * ad->rank; k++)
        b[k] = ad->b[k] * f;
      g_snprintf (name, sizeof name, "blk.%" G_GINT64_FORMAT ".%s.weight.lora_a", ad->layer,
                  ruv_target_module_tensor_stem (ad->module));
      ne[0] = ad->n_in;
      ne[1] = ad->rank;
      if (!ruv_gguf_writer_add_tensor (w, name, RK_TYPE_F32, 2, ne, ad->a,
                                       (gsize) ad->n_in * ad->rank * sizeof (float), error))
        {
          ruv_micro_lora_unlock (lora);
          return NULL;
        }
      g_snprintf (name, sizeof name, "blk.%" G_GINT64_FORMAT ".%s.weight.lora_b", ad->layer,
                  ruv_target_module_tensor_stem (ad->module));
      ne[0] = ad->rank;
      ne[1] = ad->n_out;
      if (!ruv_gguf_writer_add_tensor (w, name, RK_TYPE_F32, 2, ne, b,
                                       (gsize) ad->n_out * ad->rank * sizeof (float), error))
        {
          ruv_micro_lora_unlock (lora);
          return NULL;
        }
    }
  ruv_micro_lora_unlock (lora);
  return ruv_gguf_writer_to_bytes (w, error);
}

gboolean
ruv_lora_gguf_export (RuvMicroLora *lora,
                      RuvModel     *model,
                      const char   *path,
                      GError      **error)
{
  g_autoptr(GBytes) bytes = ruv_lora_gguf_to_bytes (lora, model, error);
  g_autoptr(GError) local = NULL;
  gsize size;
  const char *data;

  if (bytes == NULL)
    return FALSE;
  data = g_bytes_get_data (bytes, &size);
  if (!g_file_set_contents_full (path, data, (gssize) size,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0644, &local))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "cannot write adapter '%s': %s", path,
                   local->message);
      return FALSE;
    }
  return TRUE;
}

/* "blk.N.<stem>.weight" -> layer and module. */
static gboolean
parse_base_name (const char      *base,
                 gint64          *layer,
                 RuvTargetModule *module)
{
  const char *p;
  char *end;
  guint64 n;
  int m;

  if (!g_str_has_prefix (base, "blk."))
    return FALSE;
  p = base + 4;
  if (!g_ascii_isdigit (*p))
    return FALSE;
  n = g_ascii_strtoull (p, &end, 10);
  if (end == p || *end != '.' || n > 65535)
    return FALSE;
  p = end + 1;
  for (m = 0; m < RUV_TARGET_COUNT; m++)
    {
      const char *stem = ruv_target_module_tensor_stem ((RuvTargetModule) m);
      gsize l = strlen (stem);

      if (strncmp (p, stem, l) == 0 && strcmp (p + l, ".weight") == 0)
        {
          *layer = (gint64) n;
          *module = (RuvTargetModule) m;
          return TRUE;
        }
    }
  return FALSE;
}

/* Dequantises a 2-D tensor (ne[1] rows of ne[0]) into floats. */
static float *
tensor_floats (const RuvGgufTensor *t)
{
  gint64 rows = t->ne[1], r;
  float *out;
  g_autofree gint32 *ids = NULL;

  if (!rk_type_is_supported (t->type) || t->ne[0] % rk_type_block_size (t->type) != 0)
    return NULL;
  out = g_new (float, t->ne[0] * rows);
  ids = g_new (gint32, rows);
  for (r = 0; r < rows; r++)
    ids[r] = (gint32) r;
  rk_get_rows (t->type, t->data, rk_row_size (t->type, t->ne[0]), t->ne[0], ids, rows, out);
  return out;
}

RuvMicroLora *
ruv_lora_gguf_import_data (RuvModel                 *model,
                           const guint8             *data,
                           gsize                     size,
                           const char               *name,
                           const RuvMicroLoraConfig *config,
                           GError                  **error)
{
  g_autoptr(RuvGguf) gguf = NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(RuvMicroLora) lora = NULL;
  RuvMicroLoraConfig cfg;
  const RuvGguf *base;
  const char *s = NULL;
  double alpha = 0.0;
  gint64 n_layer;
  gsize i, n_pairs = 0;

  g_return_val_if_fail (RUV_IS_MODEL (model), NULL);
  base = ruv_model_get_gguf (model);
  n_layer = ruv_model_get_n_layers (model);

  gguf = ruv_gguf_parse (data, size, name, &local);
  if (gguf == NULL)
    {
      adapter_fail (error, name, "not a valid GGUF file: %s", local->message);
      return NULL;
    }
  if (!ruv_gguf_get_string (gguf, "general.type", &s, NULL) || g_strcmp0 (s, "adapter") != 0)
    {
      adapter_fail (error, name, "general.type is '%s', expected 'adapter'", s ? s : "");
      return NULL;
    }
  s = NULL;
  if (!ruv_gguf_get_string (gguf, "adapter.type", &s, NULL) || g_strcmp0 (s, "lora") != 0)
    {
      adapter_fail (error, name, "adapter.type is '%s', expected 'lora'", s ? s : "");
      return NULL;
    }
  s = NULL;
  if (!ruv_gguf_get_string (gguf, "general.architecture", &s, NULL) ||
      g_strcmp0 (s, ruv_model_get_architecture (model)) != 0)
    {
      adapter_fail (error, name, "adapter is for '%s', model is '%s'", s ? s : "",
                    ruv_model_get_architecture (model));
      return NULL;
    }
  if (ruv_gguf_has_key (gguf, "adapter.lora.alpha") &&
      (ruv_gguf_get_kv_type (gguf, "adapter.lora.alpha") != RUV_GGUF_TYPE_FLOAT32 ||
       !ruv_gguf_get_float (gguf, "adapter.lora.alpha", &alpha, NULL) ||
       !isfinite (alpha) || alpha < 0.0 || alpha > 1e6))
    {
      adapter_fail (error, name, "adapter.lora.alpha must be a finite float32 >= 0");
      return NULL;
    }

  if (config != NULL)
    cfg = *config;
  else
    ruv_micro_lora_config_for_model (&cfg, model);
  lora = ruv_micro_lora_new_empty (&cfg);

  for (i = 0; i < ruv_gguf_get_n_tensors (gguf); i++)
    {
      const RuvGgufTensor *ta = ruv_gguf_get_tensor (gguf, i), *tb, *tw;
      g_autofree char *stem = NULL;
      g_autofree char *bname = NULL;
      g_autofree float *a = NULL;
      g_autofree float *b = NULL;
      RuvTargetModule module;
      gint64 layer, rank;

      if (g_str_has_suffix (ta->name, "_norm.weight") || g_str_has_suffix (ta->name, ".lora_b"))
        continue;
      if (!g_str_has_suffix (ta->name, ".lora_a"))
        {
          adapter_fail (error, name, "tensor '%s' has an unexpected suffix", ta->name);
          return NULL;
        }
      stem = g_strndup (ta->name, strlen (ta->name) - strlen (".lora_a"));
      bname = g_strconcat (stem, ".lora_b", NULL);
      tb = ruv_gguf_find_tensor (gguf, bname);
      tw = ruv_gguf_find_tensor (base, stem);
      if (tb == NULL)
        {
          adapter_fail (error, name, "LoRA pair for '%s' lacks lora_b", stem);
          return NULL;
        }
      if (tw == NULL || !parse_base_name (stem, &layer, &module) || layer >= n_layer)
        {
          adapter_fail (error, name, "tensor '%s' does not exist in the base model or is not "
                        "an adaptable projection (wrong base model?)", stem);
          return NULL;
        }
      if (ta->n_dims != 2 || tb->n_dims != 2 || ta->ne[0] != tw->ne[0] ||
          tb->ne[1] != tw->ne[1])
        {
          adapter_fail (error, name, "tensor '%s' has an incorrect shape (lora_a %"
                        G_GINT64_FORMAT "x%" G_GINT64_FORMAT ", lora_b %" G_GINT64_FORMAT "x%"
                        G_GINT64_FORMAT ", weight %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                        "; wrong base model?)", stem, ta->ne[0], ta->ne[1], tb->ne[0],
                        tb->ne[1], tw->ne[0], tw->ne[1]);
          return NULL;
        }
      rank = ta->ne[1];
      if (tb->ne[0] != rank)
        {
          adapter_fail (error, name, "lora_a of '%s' has rank %" G_GINT64_FORMAT ", lora_b %"
                        G_GINT64_FORMAT " (lora_a not transposed?)", stem, rank, tb->ne[0]);
          return NULL;
        }
      if (rank < 1 || rank > 256)
        {
          adapter_fail (error, name, "rank %" G_GINT64_FORMAT " of '%s' is outside 1 .. 256",
                        rank, stem);
          return NULL;
        }
      a = tensor_floats (ta);
      b = tensor_floats (tb);
      if (a == NULL || b == NULL)
        {
          adapter_fail (error, name, "tensors of '%s' have an unsupported type", stem);
          return NULL;
        }
      if (!ruv_micro_lora_add_adapter (lora, layer, module, ta->ne[0], tb->ne[1], (gint) rank,
                                       (float) alpha, a, b, &local))
        {
          adapter_fail (error, name, "%s", local->message);
          return NULL;
        }
      n_pairs++;
    }
  /* lora_b without lora_a */
  for (i = 0; i < ruv_gguf_get_n_tensors (gguf); i++)
    {
      const RuvGgufTensor *t = ruv_gguf_get_tensor (gguf, i);

      if (g_str_has_suffix (t->name, ".lora_b"))
        {
          g_autofree char *aname = g_strdup (t->name);

          aname[strlen (aname) - 1] = 'a';
          if (ruv_gguf_find_tensor (gguf, aname) == NULL)
            {
              adapter_fail (error, name, "LoRA pair '%s' lacks lora_a", t->name);
              return NULL;
            }
        }
    }
  if (n_pairs == 0)
    {
      adapter_fail (error, name, "no LoRA tensor pairs");
      return NULL;
    }
  return g_steal_pointer (&lora);
}

RuvMicroLora *
ruv_lora_gguf_import (RuvModel                 *model,
                      const char               *path,
                      const RuvMicroLoraConfig *config,
                      GError                  **error)
{
  g_autofree char *contents = NULL;
  g_autoptr(GError) local = NULL;
  gsize len;

  if (!g_file_get_contents (path, &contents, &len, &local))
    {
      adapter_fail (error, path, "%s", local->message);
      return NULL;
    }
  return ruv_lora_gguf_import_data (model, (const guint8 *) contents, len, path, config, error);
}
