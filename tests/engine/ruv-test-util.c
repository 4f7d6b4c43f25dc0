/* ruv-test-util.c — small GGUF models built in memory for the engine tests.
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "ruv-test-util.h"

void
ruv_test_model_spec_init (RuvTestModelSpec *spec)
{
  memset (spec, 0, sizeof *spec);
  spec->arch = "llama";
  spec->n_embd = 32;
  spec->n_layer = 1;
  spec->n_head = 2;
  spec->n_head_kv = 1;
  spec->head_dim = 16;
  spec->n_ff = 32;
  spec->n_vocab = 8;
  spec->n_ctx = 64;
  spec->vocab = TRUE;
  spec->matrix_type = RK_TYPE_F32;
}

static void
add_tensor (RuvGgufWriter          *w,
            const RuvTestModelSpec *spec,
            const char             *name,
            gint64                  ne0,
            gint64                  ne1,
            RuvTestFillFunc         fill,
            gpointer                user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree float *values = NULL;
  g_autofree guint8 *data = NULL;
  gboolean matrix = ne1 > 1 || strcmp (name, "token_embd.weight") == 0;
  rk_type type = matrix ? spec->matrix_type : RK_TYPE_F32;
  gint64 ne[2], i;
  gsize row;

  if (spec->omit_tensor != NULL && strcmp (name, spec->omit_tensor) == 0)
    return;
  if (spec->grow_tensor != NULL && strcmp (name, spec->grow_tensor) == 0)
    ne1++;

  values = g_new (float, ne0 * ne1);
  if (fill != NULL)
    fill (name, values, ne0, ne1, user_data);
  else
    for (i = 0; i < ne0 * ne1; i++)
      values[i] = 0.5f;

  if (spec->retype_tensor != NULL && strcmp (name, spec->retype_tensor) == 0)
    {
      type = spec->retype;
      row = rk_row_size (type, ne0);
      data = g_malloc0 (row * ne1);
    }
  else
    {
      const rk_type_traits *tr = rk_get_traits (type);

      row = rk_row_size (type, ne0);
      data = g_malloc0 (row * ne1);
      for (i = 0; i < ne1; i++)
        tr->from_float_ref (values + i * ne0, data + i * row, ne0);
    }
  ne[0] = ne0;
  ne[1] = ne1;
  if (!ruv_gguf_writer_add_tensor (w, name, type, ne1 > 1 || matrix ? 2 : 1, ne, data,
                                   row * ne1, &error))
    g_error ("test model: %s", error->message);
}

GBytes *
ruv_test_model_build (const RuvTestModelSpec *spec,
                      RuvTestFillFunc         fill,
                      gpointer                user_data)
{
  g_autoptr(RuvGgufWriter) w = ruv_gguf_writer_new ();
  g_autoptr(GError) error = NULL;
  const char *a = spec->arch;
  gint64 n_q = spec->n_head * spec->head_dim, n_kv = spec->n_head_kv * spec->head_dim;
  gint64 il;
  GBytes *bytes;

#define KEY(suffix) (g_snprintf (key, sizeof key, "%s." suffix, a), key)
  char key[128];

  ruv_gguf_writer_set_string (w, "general.architecture", a);
  ruv_gguf_writer_set_string (w, "general.name", "ruv-test-model");
  ruv_gguf_writer_set_uint32 (w, KEY ("context_length"), (guint32) spec->n_ctx);
  ruv_gguf_writer_set_uint32 (w, KEY ("embedding_length"), (guint32) spec->n_embd);
  ruv_gguf_writer_set_uint32 (w, KEY ("block_count"), (guint32) spec->n_layer);
  ruv_gguf_writer_set_uint32 (w, KEY ("feed_forward_length"), (guint32) spec->n_ff);
  ruv_gguf_writer_set_uint32 (w, KEY ("attention.head_count"), (guint32) spec->n_head);
  ruv_gguf_writer_set_uint32 (w, KEY ("attention.head_count_kv"), (guint32) spec->n_head_kv);
  ruv_gguf_writer_set_float32 (w, KEY ("attention.layer_norm_rms_epsilon"), 1e-6f);
  ruv_gguf_writer_set_float32 (w, KEY ("rope.freq_base"), 10000.0f);
  if (spec->head_dim * spec->n_head != spec->n_embd)
    {
      ruv_gguf_writer_set_uint32 (w, KEY ("attention.key_length"), (guint32) spec->head_dim);
      ruv_gguf_writer_set_uint32 (w, KEY ("attention.value_length"), (guint32) spec->head_dim);
    }
#undef KEY
  if (spec->vocab)
    {
      gint64 n = spec->n_vocab + spec->vocab_delta, i;
      g_autoptr(GPtrArray) toks = g_ptr_array_new_with_free_func (g_free);

      for (i = 0; i < n; i++)
        g_ptr_array_add (toks, g_strdup_printf ("t%" G_GINT64_FORMAT, i));
      ruv_gguf_writer_set_string (w, "tokenizer.ggml.model", "gpt2");
      ruv_gguf_writer_set_array_string (w, "tokenizer.ggml.tokens",
                                        (const char *const *) toks->pdata, toks->len);
    }

  add_tensor (w, spec, "token_embd.weight", spec->n_embd, spec->n_vocab, fill, user_data);
  add_tensor (w, spec, "output_norm.weight", spec->n_embd, 1, fill, user_data);
  if (!spec->tied)
    add_tensor (w, spec, "output.weight", spec->n_embd, spec->n_vocab, fill, user_data);
  for (il = 0; il < spec->n_layer; il++)
    {
      char name[64];

#define T(suffix, ne0, ne1) \
      (g_snprintf (name, sizeof name, "blk.%" G_GINT64_FORMAT "." suffix, il), \
       add_tensor (w, spec, name, ne0, ne1, fill, user_data))
      T ("attn_norm.weight", spec->n_embd, 1);
      T ("attn_q.weight", spec->n_embd, n_q);
      T ("attn_k.weight", spec->n_embd, n_kv);
      T ("attn_v.weight", spec->n_embd, n_kv);
      T ("attn_output.weight", n_q, spec->n_embd);
      if (spec->qkv_bias)
        {
          T ("attn_q.bias", n_q, 1);
          T ("attn_k.bias", n_kv, 1);
          T ("attn_v.bias", n_kv, 1);
        }
      if (spec->qk_norm)
        {
          T ("attn_q_norm.weight", spec->head_dim, 1);
          T ("attn_k_norm.weight", spec->head_dim, 1);
        }
      T ("ffn_norm.weight", spec->n_embd, 1);
      T ("ffn_gate.weight", spec->n_embd, spec->n_ff);
      T ("ffn_up.weight", spec->n_embd, spec->n_ff);
      T ("ffn_down.weight", spec->n_ff, spec->n_embd);
#undef T
    }

  bytes = ruv_gguf_writer_to_bytes (w, &error);
  if (bytes == NULL)
    g_error ("test model: %s", error->message);
  return bytes;
}

char *
ruv_test_data_path (const char *name)
{
  return g_build_filename (TEST_DATA_DIR, name, NULL);
}
