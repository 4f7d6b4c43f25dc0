/* ruv-model.c — map a GGUF file, read hyper-parameters, bind weights.
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ruv-error.h"
#include "ruv-model-private.h"

/* Bounds on hyper-parameters: far above any real model, low enough that
 * products of them cannot overflow 64 bits and buffers sized by them are
 * reasonable to ask for. */
#define MAX_EMBD    (1 << 16)
#define MAX_LAYERS  1024
#define MAX_HEADS   1024
#define MAX_HEAD_DIM 1024
#define MAX_FF      (1 << 20)
#define MAX_CTX     (1 << 24)
#define MAX_VOCAB   (1 << 24)

struct _RuvModel
{
  GObject      parent_instance;

  char        *path;
  guint8      *map;          /* mmap of the file, or NULL for caller data */
  gsize        map_size;
  guint64      file_size;
  RuvGguf     *gguf;

  char        *arch_name;
  const char  *name;
  const char  *chat_template;
  guint64      n_params;
  guint64      type_bytes[RK_TYPE_COUNT];
  char        *quantization;
  RuvPrecision precision;
  RuvWeights   w;
};

G_DEFINE_FINAL_TYPE (RuvModel, ruv_model, G_TYPE_OBJECT)

static void
ruv_model_finalize (GObject *object)
{
  RuvModel *self = RUV_MODEL (object);
  gint64 i;

  if (self->w.layers != NULL)
    {
      for (i = 0; i < self->w.hp.n_layer; i++)
        {
          RuvLayer *l = &self->w.layers[i];

          g_free (l->attn_norm);
          g_free (l->ffn_norm);
          g_free (l->bq);
          g_free (l->bk);
          g_free (l->bv);
          g_free (l->q_norm);
          g_free (l->k_norm);
        }
      g_free (self->w.layers);
    }
  g_free (self->w.output_norm);
  g_free (self->w.rope_factors);
  g_clear_pointer (&self->gguf, ruv_gguf_free);
  if (self->map != NULL)
    munmap (self->map, self->map_size);
  g_free (self->arch_name);
  g_free (self->quantization);
  g_free (self->path);

  G_OBJECT_CLASS (ruv_model_parent_class)->finalize (object);
}

static void
ruv_model_class_init (RuvModelClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ruv_model_finalize;
}

static void
ruv_model_init (RuvModel *self)
{
}

static const char *
model_file (RuvModel *self)
{
  return self->path != NULL ? self->path : "(memory)";
}

/* ---- hyper-parameters ---------------------------------------------------- */

/* An optional string: TRUE with *out untouched when absent, FALSE only when
 * present with the wrong type. */
static gboolean
get_string (const RuvGguf  *gguf,
            const char     *key,
            const char    **out,
            GError        **error)
{
  GError *local = NULL;

  if (!ruv_gguf_get_string (gguf, key, out, &local) && local != NULL)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  return TRUE;
}

/* Reads <arch>.<suffix> as an integer in [lo, hi]. Absent: *out = def, or an
 * error when def < 0 (required). */
static gboolean
read_int (RuvModel    *self,
          const char  *suffix,
          gint64       def,
          gint64       lo,
          gint64       hi,
          gint64      *out,
          GError     **error)
{
  g_autofree char *key = g_strdup_printf ("%s.%s", self->arch_name, suffix);
  GError *local = NULL;
  gint64 v;

  if (!ruv_gguf_get_int (self->gguf, key, &v, &local))
    {
      if (local != NULL)
        {
          g_propagate_error (error, local);
          return FALSE;
        }
      if (def < 0)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                       "%s: required key %s is missing", model_file (self), key);
          return FALSE;
        }
      v = def;
    }
  if (v < lo || v > hi)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: %s = %" G_GINT64_FORMAT " is out of range [%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT "]", model_file (self), key, v, lo, hi);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

/* Reads <arch>.<suffix> as a finite float in [lo, hi]; absent gives def
 * (NAN def: required). */
static gboolean
read_float (RuvModel    *self,
            const char  *suffix,
            double       def,
            double       lo,
            double       hi,
            float       *out,
            GError     **error)
{
  g_autofree char *key = g_strdup_printf ("%s.%s", self->arch_name, suffix);
  GError *local = NULL;
  double v;

  if (!ruv_gguf_get_float (self->gguf, key, &v, &local))
    {
      if (local != NULL)
        {
          g_propagate_error (error, local);
          return FALSE;
        }
      if (isnan (def))
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                       "%s: required key %s is missing", model_file (self), key);
          return FALSE;
        }
      v = def;
    }
  if (!isfinite (v) || v < lo || v > hi)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: %s = %g is out of range [%g, %g]", model_file (self), key, v, lo, hi);
      return FALSE;
    }
  *out = (float) v;
  return TRUE;
}

static gboolean
read_hparams (RuvModel  *self,
              GError   **error)
{
  RuvHParams *hp = &self->w.hp;
  g_autofree char *kl_key = g_strdup_printf ("%s.attention.key_length", self->arch_name);
  gint64 key_length, value_length;

  if (!read_int (self, "context_length", -1, 1, MAX_CTX, &hp->n_ctx_train, error) ||
      !read_int (self, "embedding_length", -1, 1, MAX_EMBD, &hp->n_embd, error) ||
      !read_int (self, "block_count", -1, 1, MAX_LAYERS, &hp->n_layer, error) ||
      !read_int (self, "feed_forward_length", -1, 1, MAX_FF, &hp->n_ff, error) ||
      !read_int (self, "attention.head_count", -1, 1, MAX_HEADS, &hp->n_head, error) ||
      !read_int (self, "attention.head_count_kv", hp->n_head, 1, hp->n_head,
                 &hp->n_head_kv, error) ||
      !read_float (self, "attention.layer_norm_rms_epsilon", NAN, 1e-12, 0.1,
                   &hp->rms_eps, error) ||
      !read_float (self, "rope.freq_base", 10000.0, 1e-3, 1e12, &hp->rope_freq_base, error))
    return FALSE;

  if (hp->n_head % hp->n_head_kv != 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: %s.attention.head_count (%" G_GINT64_FORMAT ") is not a multiple of "
                   "attention.head_count_kv (%" G_GINT64_FORMAT ")", model_file (self),
                   self->arch_name, hp->n_head, hp->n_head_kv);
      return FALSE;
    }
  if (hp->n_embd % hp->n_head != 0 &&
      !ruv_gguf_has_key (self->gguf, kl_key))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: %s.embedding_length (%" G_GINT64_FORMAT ") is not a multiple of "
                   "attention.head_count (%" G_GINT64_FORMAT ")", model_file (self),
                   self->arch_name, hp->n_embd, hp->n_head);
      return FALSE;
    }
  if (!read_int (self, "attention.key_length", hp->n_embd / hp->n_head, 1, MAX_HEAD_DIM,
                 &key_length, error) ||
      !read_int (self, "attention.value_length", key_length, 1, MAX_HEAD_DIM,
                 &value_length, error))
    return FALSE;
  if (key_length != value_length)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: %s.attention.key_length (%" G_GINT64_FORMAT ") differs from "
                   "attention.value_length (%" G_GINT64_FORMAT "), which is not supported",
                   model_file (self), self->arch_name, key_length, value_length);
      return FALSE;
    }
  hp->head_dim = key_length;
  if (!read_int (self, "rope.dimension_count", hp->head_dim, 2, hp->head_dim, &hp->n_rot, error))
    return FALSE;
  if (hp->n_rot % 2 != 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: %s.rope.dimension_count (%" G_GINT64_FORMAT ") is odd",
                   model_file (self), self->arch_name, hp->n_rot);
      return FALSE;
    }
  hp->rope_neox = hp->arch != RUV_ARCH_LLAMA;
  hp->rope_freq_scale = 1.0f;
  return TRUE;
}

/* rope.scaling.*: linear (freq_scale = 1/factor, as llama.cpp applies the
 * factor), llama3 given as keys (frequency factors computed as
 * convert_hf_to_gguf.py would have written rope_freqs), none. YaRN and
 * LongRoPE are refused rather than computed wrongly. */
static gboolean
read_rope_scaling (RuvModel  *self,
                   GError   **error)
{
  RuvHParams *hp = &self->w.hp;
  g_autofree char *type_key = g_strdup_printf ("%s.rope.scaling.type", self->arch_name);
  const char *type = "none";
  float factor = 0.0f;

  if (!get_string (self->gguf, type_key, &type, error))
    return FALSE;
  if (!read_float (self, "rope.scaling.factor", 0.0, 0.0, 1e6, &factor, error))
    return FALSE;
  if (factor == 0.0f &&
      !read_float (self, "rope.scale_linear", 0.0, 0.0, 1e6, &factor, error))
    return FALSE;

  if (g_str_equal (type, "none") || g_str_equal (type, "linear"))
    {
      if (factor > 0.0f)
        hp->rope_freq_scale = 1.0f / factor;
      return TRUE;
    }
  if (g_str_equal (type, "llama3"))
    {
      float low = 1.0f, high = 4.0f, orig = 8192.0f;

      if (self->w.rope_factors != NULL)
        return TRUE;   /* the rope_freqs tensor already holds them */
      if (!read_float (self, "rope.scaling.low_freq_factor", 1.0, 1e-3, 1e6, &low, error) ||
          !read_float (self, "rope.scaling.high_freq_factor", 4.0, 1e-3, 1e6, &high, error) ||
          !read_float (self, "rope.scaling.original_context_length", 8192, 1, MAX_CTX,
                       &orig, error))
        return FALSE;
      if (factor <= 0.0f || high <= low)
        {
          g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                       "%s: %s = llama3 needs rope.scaling.factor > 0 and "
                       "high_freq_factor > low_freq_factor", model_file (self), type_key);
          return FALSE;
        }
      self->w.rope_factors = g_new (float, hp->n_rot / 2);
      rk_rope_llama3_factors (self->w.rope_factors, (int) hp->n_rot, hp->rope_freq_base,
                              factor, low, high, (int) orig);
      return TRUE;
    }
  g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
               "%s: %s = \"%s\" is not supported (none, linear and llama3 are)",
               model_file (self), type_key, type);
  return FALSE;
}

/* ---- tensors ------------------------------------------------------------- */

static const RuvGgufTensor *
find_tensor (RuvModel     *self,
             const char   *name,
             gboolean      required,
             GError      **error)
{
  const RuvGgufTensor *t = ruv_gguf_find_tensor (self->gguf, name);

  if (t == NULL && required)
    g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                 "%s: tensor %s is missing", model_file (self), name);
  return t;
}

/* Checks that t is [ne0] (ne1 = 1) or [ne0, ne1], of a supported type, with
 * whole blocks per row and its bytes inside the file. */
static gboolean
check_tensor (RuvModel            *self,
              const RuvGgufTensor *t,
              gint64               ne0,
              gint64               ne1,
              gboolean             matrix,
              gsize               *row_stride,
              GError             **error)
{
  const rk_type_traits *tr;
  gsize rs, total;

  if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: tensor %s has shape [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "], expected [%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT "]", model_file (self), t->name,
                   t->ne[0], t->ne[1], t->ne[2], t->ne[3], ne0, ne1);
      return FALSE;
    }
  tr = rk_type_is_supported (t->type) ? rk_get_traits (t->type) : NULL;
  if (tr == NULL || tr->to_float == NULL || (matrix && tr->vec_dot == NULL))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: tensor %s has type %s (%u), which is not supported",
                   model_file (self), t->name, rk_type_name (t->type), (guint) t->type);
      return FALSE;
    }
  rs = rk_row_size (t->type, ne0);
  if (rs == 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: tensor %s: a row of %" G_GINT64_FORMAT " is not a whole number of "
                   "%s blocks", model_file (self), t->name, ne0, rk_type_name (t->type));
      return FALSE;
    }
  if (!g_size_checked_mul (&total, rs, (gsize) ne1) || total > t->size || t->data == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: tensor %s: %" G_GINT64_FORMAT " rows of %" G_GSIZE_FORMAT
                   " bytes do not fit in its %" G_GSIZE_FORMAT " bytes", model_file (self),
                   t->name, ne1, rs, t->size);
      return FALSE;
    }
  /* Kernels read block fields (halves, floats) in place. */
  if (((guintptr) t->data) % 4 != 0)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: tensor %s: data is not 4-byte aligned", model_file (self), t->name);
      return FALSE;
    }
  *row_stride = rs;
  return TRUE;
}

static gboolean
bind_matrix (RuvModel   *self,
             const char *name,
             gint64      n_in,
             gint64      n_out,
             gboolean    required,
             RuvWeight  *out,
             GError    **error)
{
  const RuvGgufTensor *t = find_tensor (self, name, required, error);

  memset (out, 0, sizeof *out);
  if (t == NULL)
    return !required;
  if (!check_tensor (self, t, n_in, n_out, TRUE, &out->row_stride, error))
    return FALSE;
  out->name = t->name;
  out->type = t->type;
  out->data = t->data;
  out->n_in = n_in;
  out->n_out = n_out;
  return TRUE;
}

/* A 1-D tensor of n values, converted to floats we own. */
static gboolean
bind_vector (RuvModel   *self,
             const char *name,
             gint64      n,
             gboolean    required,
             float     **out,
             GError    **error)
{
  const RuvGgufTensor *t = find_tensor (self, name, required, error);
  gsize rs;
  g_autofree guint8 *copy = NULL;

  *out = NULL;
  if (t == NULL)
    return !required;
  if (!check_tensor (self, t, n, 1, FALSE, &rs, error))
    return FALSE;
  copy = g_memdup2 (t->data, rs);
  *out = g_new (float, n);
  rk_get_traits (t->type)->to_float (copy, *out, n);
  return TRUE;
}

static gboolean
bind_layer (RuvModel  *self,
            gint64     il,
            GError   **error)
{
  const RuvHParams *hp = &self->w.hp;
  RuvLayer *l = &self->w.layers[il];
  gint64 n_q = hp->n_head * hp->head_dim;
  gint64 n_kv = hp->n_head_kv * hp->head_dim;
  gboolean qk_norm = hp->arch == RUV_ARCH_QWEN3;
  char name[96];

#define LNAME(suffix) (g_snprintf (name, sizeof name, "blk.%" G_GINT64_FORMAT "." suffix, il), name)
  if (!bind_vector (self, LNAME ("attn_norm.weight"), hp->n_embd, TRUE, &l->attn_norm, error) ||
      !bind_matrix (self, LNAME ("attn_q.weight"), hp->n_embd, n_q, TRUE, &l->wq, error) ||
      !bind_matrix (self, LNAME ("attn_k.weight"), hp->n_embd, n_kv, TRUE, &l->wk, error) ||
      !bind_matrix (self, LNAME ("attn_v.weight"), hp->n_embd, n_kv, TRUE, &l->wv, error) ||
      !bind_matrix (self, LNAME ("attn_output.weight"), n_q, hp->n_embd, TRUE, &l->wo, error) ||
      !bind_vector (self, LNAME ("attn_q.bias"), n_q, FALSE, &l->bq, error) ||
      !bind_vector (self, LNAME ("attn_k.bias"), n_kv, FALSE, &l->bk, error) ||
      !bind_vector (self, LNAME ("attn_v.bias"), n_kv, FALSE, &l->bv, error) ||
      !bind_vector (self, LNAME ("attn_q_norm.weight"), hp->head_dim, qk_norm, &l->q_norm,
                    error) ||
      !bind_vector (self, LNAME ("attn_k_norm.weight"), hp->head_dim, qk_norm, &l->k_norm,
                    error) ||
      !bind_vector (self, LNAME ("ffn_norm.weight"), hp->n_embd, TRUE, &l->ffn_norm, error) ||
      !bind_matrix (self, LNAME ("ffn_gate.weight"), hp->n_embd, hp->n_ff, TRUE, &l->w_gate,
                    error) ||
      !bind_matrix (self, LNAME ("ffn_up.weight"), hp->n_embd, hp->n_ff, TRUE, &l->w_up,
                    error) ||
      !bind_matrix (self, LNAME ("ffn_down.weight"), hp->n_ff, hp->n_embd, TRUE, &l->w_down,
                    error))
    return FALSE;
#undef LNAME
  /* Norms of q and k are per head and only defined together. */
  if ((l->q_norm == NULL) != (l->k_norm == NULL))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: blk.%" G_GINT64_FORMAT " has only one of attn_q_norm.weight and "
                   "attn_k_norm.weight", model_file (self), il);
      return FALSE;
    }
  return TRUE;
}

static gboolean
bind_weights (RuvModel  *self,
              GError   **error)
{
  RuvHParams *hp = &self->w.hp;
  const RuvGgufTensor *embd;
  guint64 n_tokens;
  RuvGgufType elem;
  gint64 il, vocab_key;

  /* The vocabulary size comes from token_embd's rows; the tokenizer's list
   * and <arch>.vocab_size, when present, must agree. */
  embd = find_tensor (self, "token_embd.weight", TRUE, error);
  if (embd == NULL)
    return FALSE;
  if (embd->ne[1] < 1 || embd->ne[1] > MAX_VOCAB)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: tensor token_embd.weight has %" G_GINT64_FORMAT " rows (vocabulary "
                   "size), out of range", model_file (self), embd->ne[1]);
      return FALSE;
    }
  hp->n_vocab = embd->ne[1];
  if (ruv_gguf_get_array_info (self->gguf, "tokenizer.ggml.tokens", &elem, &n_tokens) &&
      n_tokens != (guint64) hp->n_vocab)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: tokenizer.ggml.tokens has %" G_GUINT64_FORMAT " tokens but "
                   "token_embd.weight has %" G_GINT64_FORMAT " rows", model_file (self),
                   n_tokens, hp->n_vocab);
      return FALSE;
    }
  if (!read_int (self, "vocab_size", hp->n_vocab, 1, MAX_VOCAB, &vocab_key, error))
    return FALSE;
  if (vocab_key != hp->n_vocab)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: %s.vocab_size (%" G_GINT64_FORMAT ") differs from the %" G_GINT64_FORMAT
                   " rows of token_embd.weight", model_file (self), self->arch_name, vocab_key,
                   hp->n_vocab);
      return FALSE;
    }

  if (!bind_matrix (self, "token_embd.weight", hp->n_embd, hp->n_vocab, TRUE,
                    &self->w.token_embd, error) ||
      !bind_vector (self, "output_norm.weight", hp->n_embd, TRUE, &self->w.output_norm,
                    error) ||
      !bind_matrix (self, "output.weight", hp->n_embd, hp->n_vocab, FALSE, &self->w.output,
                    error) ||
      !bind_vector (self, "rope_freqs.weight", hp->n_rot / 2, FALSE, &self->w.rope_factors,
                    error))
    return FALSE;
  /* Tied embeddings: the output projection is token_embd. */
  if (self->w.output.data == NULL)
    self->w.output = self->w.token_embd;

  self->w.layers = g_new0 (RuvLayer, hp->n_layer);
  for (il = 0; il < hp->n_layer; il++)
    if (!bind_layer (self, il, error))
      return FALSE;
  return TRUE;
}

/* ---- summary ------------------------------------------------------------- */

/* llama.cpp's llama_ftype names, by general.file_type. */
static const char *
file_type_name (guint64 ftype)
{
  switch (ftype)
    {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return NULL;
    }
}

static RuvPrecision
precision_of_type (rk_type type)
{
  switch (type)
    {
    case RK_TYPE_F32:
      return RUV_PRECISION_FP32;
    case RK_TYPE_F16:
      return RUV_PRECISION_FP16;
    case RK_TYPE_BF16:
      return RUV_PRECISION_BF16;
    case RK_TYPE_Q8_0:
    case RK_TYPE_Q8_1:
    case RK_TYPE_Q8_K:
      return RUV_PRECISION_Q8;
    case RK_TYPE_Q4_0:
    case RK_TYPE_Q4_1:
    case RK_TYPE_Q5_0:
    case RK_TYPE_Q5_1:
      return RUV_PRECISION_Q4;
    case RK_TYPE_Q2_K:
    case RK_TYPE_Q3_K:
    case RK_TYPE_Q4_K:
    case RK_TYPE_Q5_K:
    case RK_TYPE_Q6_K:
    case RK_TYPE_COUNT:
    default:
      return RUV_PRECISION_Q4K;
    }
}

static gboolean
summarize (RuvModel  *self,
           GError   **error)
{
  guint64 matrix_bytes[RK_TYPE_COUNT] = { 0 };
  GError *local = NULL;
  guint64 ftype, best = 0;
  guint best_type = RK_TYPE_F32;
  gsize i;
  guint t;

  for (i = 0; i < ruv_gguf_get_n_tensors (self->gguf); i++)
    {
      const RuvGgufTensor *tensor = ruv_gguf_get_tensor (self->gguf, i);
      guint64 n = 1;
      int d;

      for (d = 0; d < RUV_GGUF_MAX_DIMS; d++)
        n *= (guint64) MAX (tensor->ne[d], 1);   /* the parser bounds the product */
      self->n_params += n;
      if (tensor->type < RK_TYPE_COUNT)
        {
          self->type_bytes[tensor->type] += tensor->size;
          if (tensor->ne[1] > 1)
            matrix_bytes[tensor->type] += tensor->size;
        }
    }
  for (t = 0; t < RK_TYPE_COUNT; t++)
    if (matrix_bytes[t] > best)
      {
        best = matrix_bytes[t];
        best_type = t;
      }
  self->precision = precision_of_type (best_type);

  if (ruv_gguf_get_uint (self->gguf, "general.file_type", &ftype, &local) &&
      file_type_name (ftype) != NULL)
    self->quantization = g_strdup (file_type_name (ftype));
  else if (local != NULL)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  else
    self->quantization = g_ascii_strup (rk_type_name (best_type), -1);

  return get_string (self->gguf, "general.name", &self->name, error) &&
         get_string (self->gguf, "tokenizer.chat_template", &self->chat_template, error);
}

/* ---- loading ------------------------------------------------------------- */

static gboolean
load (RuvModel      *self,
      const guint8  *data,
      gsize          size,
      GError       **error)
{
  const char *arch = NULL;

  self->gguf = ruv_gguf_parse (data, size, model_file (self), error);
  if (self->gguf == NULL)
    return FALSE;

  if (!get_string (self->gguf, "general.architecture", &arch, error))
    return FALSE;
  if (arch == NULL)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: required key general.architecture is missing", model_file (self));
      return FALSE;
    }
  if (g_str_equal (arch, "llama"))
    self->w.hp.arch = RUV_ARCH_LLAMA;
  else if (g_str_equal (arch, "qwen2"))
    self->w.hp.arch = RUV_ARCH_QWEN2;
  else if (g_str_equal (arch, "qwen3"))
    self->w.hp.arch = RUV_ARCH_QWEN3;
  else
    {
      g_autofree char *shown = g_utf8_make_valid (arch, MIN (strlen (arch), 64));

      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL,
                   "%s: general.architecture \"%s\" is not supported (llama, qwen2, qwen3 are)",
                   model_file (self), shown);
      return FALSE;
    }
  self->arch_name = g_strdup (arch);

  return read_hparams (self, error) &&
         bind_weights (self, error) &&
         read_rope_scaling (self, error) &&
         summarize (self, error);
}

RuvModel *
ruv_model_new_from_data (const guint8  *data,
                         gsize          size,
                         const char    *name,
                         GError       **error)
{
  g_autoptr(RuvModel) self = g_object_new (RUV_TYPE_MODEL, NULL);

  g_return_val_if_fail (data != NULL || size == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  rk_cpu_init ();
  self->path = g_strdup (name);
  self->file_size = size;
  if (!load (self, data, size, error))
    return NULL;
  return g_steal_pointer (&self);
}

RuvModel *
ruv_model_new_from_file (const char  *path,
                         GError     **error)
{
  g_autoptr(RuvModel) self = NULL;
  struct stat st;
  void *map;
  int fd;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  rk_cpu_init ();
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, RUV_ERROR, saved == ENOENT ? RUV_ERROR_NOT_FOUND : RUV_ERROR_IO,
                   "%s: cannot open: %s", path, g_strerror (saved));
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_IO, "%s: not a regular file", path);
      close (fd);
      return NULL;
    }
  if (st.st_size <= 0 || (guint64) st.st_size > G_MAXSIZE)
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_MODEL, "%s: file is empty", path);
      close (fd);
      return NULL;
    }
  /* Read-only and private: the weights are never written, and pages stay
   * shared with the page cache (and with other processes mapping it). */
  map = mmap (NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close (fd);
  if (map == MAP_FAILED)
    {
      int saved = errno;

      g_set_error (error, RUV_ERROR, saved == ENOMEM ? RUV_ERROR_OUT_OF_MEMORY : RUV_ERROR_IO,
                   "%s: cannot map: %s", path, g_strerror (saved));
      return NULL;
    }
  posix_madvise (map, (size_t) st.st_size, POSIX_MADV_WILLNEED);

  self = g_object_new (RUV_TYPE_MODEL, NULL);
  self->path = g_strdup (path);
  self->map = map;
  self->map_size = (gsize) st.st_size;
  self->file_size = (guint64) st.st_size;
  if (!load (self, map, self->map_size, error))
    return NULL;
  return g_steal_pointer (&self);
}

/* ---- accessors ----------------------------------------------------------- */

const RuvGguf *
ruv_model_get_gguf (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), NULL);
  return self->gguf;
}

const char *
ruv_model_get_path (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), NULL);
  return self->path;
}

const char *
ruv_model_get_architecture (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), NULL);
  return self->arch_name;
}

const char *
ruv_model_get_name (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), NULL);
  return self->name;
}

guint64
ruv_model_get_n_params (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), 0);
  return self->n_params;
}

RuvModelSize
ruv_model_get_size_class (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), RUV_MODEL_SIZE_TINY);
  return ruv_model_size_from_params (self->n_params);
}

const char *
ruv_model_get_quantization (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), NULL);
  return self->quantization;
}

RuvPrecision
ruv_model_get_precision (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), RUV_PRECISION_FP32);
  return self->precision;
}

gint64
ruv_model_get_context_length (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), 0);
  return self->w.hp.n_ctx_train;
}

gint64
ruv_model_get_vocab_size (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), 0);
  return self->w.hp.n_vocab;
}

gint64
ruv_model_get_embedding_length (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), 0);
  return self->w.hp.n_embd;
}

gint64
ruv_model_get_n_layers (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), 0);
  return self->w.hp.n_layer;
}

const char *
ruv_model_get_chat_template (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), NULL);
  return self->chat_template;
}

guint64
ruv_model_get_file_size (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), 0);
  return self->file_size;
}

guint64
ruv_model_get_mapped_bytes (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), 0);
  return self->map_size;
}

const guint64 *
ruv_model_get_type_bytes (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), NULL);
  return self->type_bytes;
}

const RuvWeights *
ruv_model_get_weights (RuvModel *self)
{
  g_return_val_if_fail (RUV_IS_MODEL (self), NULL);
  return &self->w;
}
