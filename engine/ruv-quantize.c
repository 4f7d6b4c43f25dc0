/* ruv-quantize.c — llama-quantize's per-tensor type rules and the requantizer.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "ruv-error.h"
#include "ruv-gguf-writer.h"
#include "ruv-gguf.h"
#include "ruv-quantize.h"

static const struct
{
  const char *name;
  rk_type     default_type;
  guint32     file_type;     /* llama_ftype */
  gboolean    quantized;     /* llama.cpp applies its per-tensor rules */
} targets[] = {
  [RUV_QUANTIZE_F16]    = { "f16", RK_TYPE_F16, 1, FALSE },
  [RUV_QUANTIZE_BF16]   = { "bf16", RK_TYPE_BF16, 32, FALSE },
  [RUV_QUANTIZE_Q8_0]   = { "q8_0", RK_TYPE_Q8_0, 7, TRUE },
  [RUV_QUANTIZE_Q4_0]   = { "q4_0", RK_TYPE_Q4_0, 2, TRUE },
  [RUV_QUANTIZE_Q4_K_M] = { "q4_k_m", RK_TYPE_Q4_K, 15, TRUE },
  [RUV_QUANTIZE_Q5_K_M] = { "q5_k_m", RK_TYPE_Q5_K, 17, TRUE },
  [RUV_QUANTIZE_Q6_K]   = { "q6_k", RK_TYPE_Q6_K, 18, TRUE },
};

gboolean
ruv_quantize_type_from_name (const char      *name,
                             RuvQuantizeType *type)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (targets); i++)
    if (g_ascii_strcasecmp (name, targets[i].name) == 0)
      {
        *type = (RuvQuantizeType) i;
        return TRUE;
      }
  return FALSE;
}

const char *
ruv_quantize_type_name (RuvQuantizeType type)
{
  return (guint) type < G_N_ELEMENTS (targets) ? targets[type].name : "unknown";
}

guint32
ruv_quantize_type_file_type (RuvQuantizeType type)
{
  return (guint) type < G_N_ELEMENTS (targets) ? targets[type].file_type : 0;
}

/* llama_tensor_get_type()'s state: counters over the tensors in order. */
typedef struct
{
  RuvQuantizeType type;
  gboolean        has_output;
  int             n_attention_wv, i_attention_wv;
  int             n_ffn_down, i_ffn_down;
  guint           n_fallback;
} Rules;

static gboolean
use_more_bits (int i_layer,
               int n_layers)
{
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
         (i_layer - n_layers / 8) % 3 == 2;
}

/* The target type of one tensor (F16 when no quantized type fits its rows). */
static rk_type
tensor_type (Rules                *r,
             const RuvGgufTensor  *t)
{
  const char *name = t->name;
  gboolean k_m = r->type == RUV_QUANTIZE_Q4_K_M || r->type == RUV_QUANTIZE_Q5_K_M;
  rk_type new_type = targets[r->type].default_type;
  gint64 nx = t->ne[0];

  if (!targets[r->type].quantized)
    return new_type;

  if (g_str_equal (name, "output.weight") ||
      (!r->has_output && g_str_equal (name, "token_embd.weight")))
    {
      if (nx % RK_QK_K != 0)
        new_type = RK_TYPE_Q8_0;
      else if (new_type != RK_TYPE_Q8_0)
        new_type = RK_TYPE_Q6_K;
    }
  else if (strstr (name, "attn_v.weight") != NULL)
    {
      if (k_m && use_more_bits (r->i_attention_wv, r->n_attention_wv))
        new_type = RK_TYPE_Q6_K;
      r->i_attention_wv++;
    }
  else if (strstr (name, "ffn_down") != NULL)
    {
      if (k_m && use_more_bits (r->i_ffn_down, r->n_ffn_down))
        new_type = RK_TYPE_Q6_K;
      r->i_ffn_down++;
    }
  else if (strstr (name, "attn_qkv.weight") != NULL)
    {
      if (r->type == RUV_QUANTIZE_Q4_K_M)
        new_type = RK_TYPE_Q5_K;
      else if (r->type == RUV_QUANTIZE_Q5_K_M)
        new_type = RK_TYPE_Q6_K;
    }

  if (nx % rk_type_block_size (new_type) != 0)
    {
      switch ((int) new_type)
        {
        case RK_TYPE_Q4_K:
          new_type = RK_TYPE_Q5_0;
          break;
        case RK_TYPE_Q5_K:
          new_type = RK_TYPE_Q5_1;
          break;
        case RK_TYPE_Q6_K:
          new_type = RK_TYPE_Q8_0;
          break;
        default:
          /* Legacy 32-blocks that do not fit: F16, as llama-quantize does. */
          new_type = RK_TYPE_F16;
          break;
        }
      if (nx % rk_type_block_size (new_type) != 0)
        new_type = RK_TYPE_F16;
      r->n_fallback++;
    }
  return new_type;
}

static gboolean
should_quantize (const RuvGgufTensor *t)
{
  const char *name = t->name;

  return g_str_has_suffix (name, "weight") && t->n_dims >= 2 &&
         strstr (name, "_norm.weight") == NULL &&
         strstr (name, "ffn_gate_inp.weight") == NULL &&
         !g_str_equal (name, "position_embd.weight") &&
         !g_str_equal (name, "token_types.weight");
}

/* llama_model_loader's weight_name_comparer: by layer ("blk.N.", others
 * first), then by name. */
static int
layer_of (const char *name)
{
  int layer = -1;

  if (sscanf (name, "blk.%d.", &layer) != 1)
    layer = -1;
  return layer;
}

static gint
compare_tensors (gconstpointer a,
                 gconstpointer b)
{
  const RuvGgufTensor *ta = *(const RuvGgufTensor * const *) a;
  const RuvGgufTensor *tb = *(const RuvGgufTensor * const *) b;
  int la = layer_of (ta->name), lb = layer_of (tb->name);

  if (la != lb)
    return la < lb ? -1 : 1;
  return strcmp (ta->name, tb->name);
}

/* Copies one metadata entry with its exact type. */
static gboolean
copy_kv (const RuvGguf   *in,
         RuvGgufWriter   *w,
         const char      *key,
         GError         **error)
{
  RuvGgufType type = ruv_gguf_get_kv_type (in, key);
  guint64 u = 0;
  gint64 i = 0;
  double f = 0;
  gboolean b = FALSE;
  const char *s = NULL;

  switch ((int) type)
    {
    case RUV_GGUF_TYPE_UINT8:
    case RUV_GGUF_TYPE_UINT16:
    case RUV_GGUF_TYPE_UINT32:
    case RUV_GGUF_TYPE_UINT64:
      if (!ruv_gguf_get_uint (in, key, &u, error))
        return FALSE;
      if (type == RUV_GGUF_TYPE_UINT8)
        ruv_gguf_writer_set_uint8 (w, key, (guint8) u);
      else if (type == RUV_GGUF_TYPE_UINT16)
        ruv_gguf_writer_set_uint16 (w, key, (guint16) u);
      else if (type == RUV_GGUF_TYPE_UINT32)
        ruv_gguf_writer_set_uint32 (w, key, (guint32) u);
      else
        ruv_gguf_writer_set_uint64 (w, key, u);
      return TRUE;
    case RUV_GGUF_TYPE_INT8:
    case RUV_GGUF_TYPE_INT16:
    case RUV_GGUF_TYPE_INT32:
    case RUV_GGUF_TYPE_INT64:
      if (!ruv_gguf_get_int (in, key, &i, error))
        return FALSE;
      if (type == RUV_GGUF_TYPE_INT8)
        ruv_gguf_writer_set_int8 (w, key, (gint8) i);
      else if (type == RUV_GGUF_TYPE_INT16)
        ruv_gguf_writer_set_int16 (w, key, (gint16) i);
      else if (type == RUV_GGUF_TYPE_INT32)
        ruv_gguf_writer_set_int32 (w, key, (gint32) i);
      else
        ruv_gguf_writer_set_int64 (w, key, i);
      return TRUE;
    case RUV_GGUF_TYPE_FLOAT32:
    case RUV_GGUF_TYPE_FLOAT64:
      if (!ruv_gguf_get_float (in, key, &f, error))
        return FALSE;
      if (type == RUV_GGUF_TYPE_FLOAT32)
        ruv_gguf_writer_set_float32 (w, key, (float) f);
      else
        ruv_gguf_writer_set_float64 (w, key, f);
      return TRUE;
    case RUV_GGUF_TYPE_BOOL:
      if (!ruv_gguf_get_bool (in, key, &b, error))
        return FALSE;
      ruv_gguf_writer_set_bool (w, key, b);
      return TRUE;
    case RUV_GGUF_TYPE_STRING:
      if (!ruv_gguf_get_string (in, key, &s, error))
        return FALSE;
      ruv_gguf_writer_set_string (w, key, s);
      return TRUE;
    case RUV_GGUF_TYPE_ARRAY:
      {
        RuvGgufType et;
        guint64 n, k;

        if (!ruv_gguf_get_array_info (in, key, &et, &n))
          break;
        if (et == RUV_GGUF_TYPE_STRING)
          {
            g_autoptr(GPtrArray) strs = g_ptr_array_new_full ((guint) MIN (n, G_MAXUINT),
                                                              g_free);

            for (k = 0; k < n; k++)
              {
                gsize len = 0;
                const char *str = ruv_gguf_get_array_string (in, key, k, &len);

                if (str == NULL)
                  break;
                g_ptr_array_add (strs, g_strndup (str, len));
              }
            if (k < n)
              break;
            ruv_gguf_writer_set_array_string (w, key, (const char * const *) strs->pdata,
                                              strs->len);
            return TRUE;
          }
        if (et == RUV_GGUF_TYPE_FLOAT32)
          {
            g_autofree float *v = g_try_new (float, MAX (n, 1));

            if (v == NULL || !ruv_gguf_get_array_f32 (in, key, v, n, error))
              break;
            ruv_gguf_writer_set_array_float32 (w, key, v, n);
            return TRUE;
          }
        if (et == RUV_GGUF_TYPE_INT8 || et == RUV_GGUF_TYPE_UINT8 || et == RUV_GGUF_TYPE_INT16 ||
            et == RUV_GGUF_TYPE_UINT16 || et == RUV_GGUF_TYPE_INT32 ||
            et == RUV_GGUF_TYPE_UINT32 || et == RUV_GGUF_TYPE_BOOL)
          {
            /* Read as int32 (fails for a u32 above 2^31 - 1), written back as
             * the element type. */
            g_autofree gint32 *v = g_try_new (gint32, MAX (n, 1));
            g_autofree guint8 *raw = NULL;
            gsize esz = (et == RUV_GGUF_TYPE_INT8 || et == RUV_GGUF_TYPE_UINT8 ||
                         et == RUV_GGUF_TYPE_BOOL) ? 1 :
                        (et == RUV_GGUF_TYPE_INT16 || et == RUV_GGUF_TYPE_UINT16) ? 2 : 4;

            if (v == NULL || !ruv_gguf_get_array_i32 (in, key, v, n, error))
              break;
            raw = g_malloc (MAX (n, 1) * esz);
            for (k = 0; k < n; k++)
              {
                if (esz == 1)
                  raw[k] = (guint8) v[k];
                else if (esz == 2)
                  {
                    guint16 x = (guint16) v[k];

                    memcpy (raw + k * 2, &x, 2);
                  }
                else
                  memcpy (raw + k * 4, &v[k], 4);
              }
            ruv_gguf_writer_set_array (w, key, et, raw, n);
            return TRUE;
          }
        break;
      }
    default:
      break;
    }
  if (error != NULL && *error == NULL)
    g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                 "metadata key %s has a type this tool cannot copy", key);
  return FALSE;
}

void
ruv_quantize_options_init (RuvQuantizeOptions *options)
{
  memset (options, 0, sizeof *options);
}

/* One tensor's conversion, split by rows over the pool. Each thread has its
 * own row of floats in scratch (thread_index * ne0). */
typedef struct
{
  const rk_type_traits *src;
  const rk_type_traits *dst;
  const guint8         *in;
  guint8               *out;
  gsize                 in_row;
  gsize                 out_row;
  gint64                ne0;
  float                *scratch;
} ConvertJob;

static void
convert_rows (void    *user_data,
              int64_t  begin,
              int64_t  end,
              int      thread_index)
{
  const ConvertJob *job = user_data;
  float *f = job->scratch + (gsize) thread_index * (gsize) job->ne0;
  int64_t k;

  for (k = begin; k < end; k++)
    {
      job->src->to_float (job->in + (gsize) k * job->in_row, f, job->ne0);
      job->dst->from_float_ref (f, job->out + (gsize) k * job->out_row, job->ne0);
    }
}

static gboolean
is_float_type (rk_type type)
{
  return type == RK_TYPE_F32 || type == RK_TYPE_F16 || type == RK_TYPE_BF16;
}

/* TRUE when both paths name the same existing file (links followed). */
static gboolean
same_file (const char *a,
           const char *b)
{
  GStatBuf sa, sb;

  if (g_stat (a, &sa) != 0 || g_stat (b, &sb) != 0)
    return FALSE;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void
pool_free (rk_pool *pool)
{
  if (pool != NULL)
    rk_pool_free (pool);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (rk_pool, pool_free)

gboolean
ruv_quantize_file_full (const char                *in_path,
                        const char                *out_path,
                        RuvQuantizeType            type,
                        const RuvQuantizeOptions  *options,
                        RuvQuantizeStats          *stats,
                        GError                   **error)
{
  g_autoptr(GMappedFile) mapped = NULL;
  g_autoptr(RuvGguf) in = NULL;
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GPtrArray) order = NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(rk_pool) pool = NULL;
  g_autofree char *tmp_path = NULL;
  RuvQuantizeOptions defaults;
  RuvQuantizeStats st = { 0 };
  Rules rules = { 0 };
  const char *arch = NULL;
  g_autofree char *block_key = NULL;
  guint64 n_layer = 0;
  gsize i, n;

  g_return_val_if_fail (in_path != NULL && out_path != NULL, FALSE);
  g_return_val_if_fail ((guint) type < G_N_ELEMENTS (targets), FALSE);
  if (options == NULL)
    {
      ruv_quantize_options_init (&defaults);
      options = &defaults;
    }

  /* The output replaces its file by a rename: naming the input (or a link
   * to it, or the temporary file the writer uses) would destroy the model. */
  tmp_path = g_strconcat (out_path, ".tmp", NULL);
  if (g_str_equal (in_path, out_path) || same_file (in_path, out_path) ||
      g_str_equal (in_path, tmp_path) || same_file (in_path, tmp_path))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                   "the output %s is the input file; choose another output path", out_path);
      return FALSE;
    }

  mapped = g_mapped_file_new (in_path, FALSE, &local);
  if (mapped == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s", local->message);
      return FALSE;
    }
  in = ruv_gguf_parse ((const guint8 *) g_mapped_file_get_contents (mapped),
                       g_mapped_file_get_length (mapped), in_path, error);
  if (in == NULL)
    return FALSE;

  /* Metadata: all of it, then the two keys llama-quantize sets (it removes
   * and appends them, so they come last). */
  n = ruv_gguf_get_n_kv (in);
  for (i = 0; i < n; i++)
    {
      const char *key = ruv_gguf_get_key (in, i);

      if (g_str_equal (key, "general.quantization_version") ||
          g_str_equal (key, "general.file_type") || g_str_has_prefix (key, "split."))
        continue;
      if (!copy_kv (in, w, key, error))
        {
          g_prefix_error (error, "%s: ", in_path);
          return FALSE;
        }
    }
  ruv_gguf_writer_set_uint32 (w, "general.quantization_version", 2);
  ruv_gguf_writer_set_uint32 (w, "general.file_type", targets[type].file_type);

  if (ruv_gguf_get_string (in, "general.architecture", &arch, NULL) && arch != NULL)
    {
      block_key = g_strdup_printf ("%s.block_count", arch);
      if (!ruv_gguf_get_uint (in, block_key, &n_layer, NULL))
        n_layer = 0;
    }

  n = ruv_gguf_get_n_tensors (in);
  order = g_ptr_array_sized_new ((guint) MIN (n, G_MAXUINT));
  for (i = 0; i < n; i++)
    {
      const RuvGgufTensor *t = ruv_gguf_get_tensor (in, i);

      g_ptr_array_add (order, (gpointer) t);
      if (strstr (t->name, "attn_v.weight") != NULL || strstr (t->name, "attn_qkv.weight") != NULL)
        rules.n_attention_wv++;
      else if (g_str_equal (t->name, "output.weight"))
        rules.has_output = TRUE;
    }
  g_ptr_array_sort (order, compare_tensors);
  rules.type = type;
  rules.n_ffn_down = (int) MIN (n_layer, G_MAXINT);

  for (i = 0; i < order->len; i++)
    {
      const RuvGgufTensor *t = g_ptr_array_index (order, i);
      rk_type new_type = t->type;
      gint64 rows = 1;
      guint d;

      /* The parser checked that the tensor's bytes lie in the file, so the
       * product of its dimensions cannot overflow. */
      for (d = 1; d < t->n_dims; d++)
        rows *= t->ne[d];
      st.n_tensors++;
      st.bytes_in += t->size;
      if (should_quantize (t))
        new_type = tensor_type (&rules, t);

      if (new_type == t->type)
        {
          if (!ruv_gguf_writer_add_tensor (w, t->name, t->type, t->n_dims, t->ne, t->data,
                                           t->size, error))
            return FALSE;
          st.bytes_out += t->size;
        }
      else
        {
          const rk_type_traits *src = rk_get_traits (t->type);
          const rk_type_traits *dst = rk_get_traits (new_type);
          size_t in_row = rk_row_size (t->type, t->ne[0]);
          size_t out_row = rk_row_size (new_type, t->ne[0]);
          g_autofree float *scratch = NULL;
          g_autofree guint8 *q = NULL;
          gsize out_size, scratch_n;
          ConvertJob job;

          if (!is_float_type (t->type) && !options->allow_requantize)
            {
              g_set_error (error, RUV_ERROR, RUV_ERROR_CONFIG,
                           "%s: tensor %s is already quantized (%s); converting it to %s loses "
                           "quality twice (allow it with --allow-requantize, or start from an "
                           "F32, F16 or BF16 file)", in_path, t->name, rk_type_name (t->type),
                           rk_type_name (new_type));
              return FALSE;
            }
          if (!rk_type_is_supported (t->type) || src == NULL || src->to_float == NULL ||
              dst == NULL || dst->from_float_ref == NULL || in_row == 0 || out_row == 0 ||
              !g_size_checked_mul (&out_size, out_row, (gsize) rows) ||
              (guint64) in_row * (guint64) rows != t->size)
            {
              g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                           "%s: tensor %s (%s) cannot be converted to %s", in_path, t->name,
                           rk_type_name (t->type), rk_type_name (new_type));
              return FALSE;
            }
          if (pool == NULL)
            pool = rk_pool_new (options->n_threads);
          if (!g_size_checked_mul (&scratch_n, (gsize) t->ne[0],
                                   (gsize) (pool != NULL ? rk_pool_n_threads (pool) : 1)))
            scratch_n = G_MAXSIZE;
          scratch = scratch_n < G_MAXSIZE / sizeof (float) ? g_try_new (float, MAX (scratch_n, 1))
                                                           : NULL;
          q = g_try_malloc (MAX (out_size, 1));
          if (scratch == NULL || q == NULL)
            {
              g_set_error (error, RUV_ERROR, RUV_ERROR_OUT_OF_MEMORY,
                           "out of memory converting tensor %s (%" G_GSIZE_FORMAT " bytes)",
                           t->name, out_size);
              return FALSE;
            }
          job.src = src;
          job.dst = dst;
          job.in = t->data;
          job.out = q;
          job.in_row = in_row;
          job.out_row = out_row;
          job.ne0 = t->ne[0];
          job.scratch = scratch;
          /* A chunk of about 64 K elements keeps the per-chunk overhead small. */
          rk_pool_parallel_for (pool, rows, MAX (1, 65536 / MAX (t->ne[0], 1)), convert_rows,
                                &job);
          if (!ruv_gguf_writer_add_tensor (w, t->name, new_type, t->n_dims, t->ne, q, out_size,
                                           error))
            return FALSE;
          st.n_quantized++;
          st.bytes_out += out_size;
        }
    }
  st.n_fallback = rules.n_fallback;
  if (!ruv_gguf_writer_write_file (w, out_path, error))
    return FALSE;
  if (stats != NULL)
    *stats = st;
  return TRUE;
}

gboolean
ruv_quantize_file (const char        *in_path,
                   const char        *out_path,
                   RuvQuantizeType    type,
                   RuvQuantizeStats  *stats,
                   GError           **error)
{
  return ruv_quantize_file_full (in_path, out_path, type, NULL, stats, error);
}
