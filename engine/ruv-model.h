/* ruv-model.h — a GGUF model mapped read-only, its hyper-parameters and weights.
 * SPDX-License-Identifier: MIT
 *
 * ruv_model_new_from_file() maps the file, parses it with ruv_gguf_parse(),
 * picks the architecture from general.architecture (llama, qwen2, qwen3) and
 * binds every tensor the forward pass needs, checking shapes against the
 * hyper-parameters and types against what the kernels support. Anything else
 * is RUV_ERROR_MODEL naming the file and the field. The model is immutable
 * after loading; contexts (ruv-forward.h) hold the mutable state.
 */
#pragma once

#include <glib-object.h>

#include "ruv-gguf.h"
#include "ruv-types.h"

G_BEGIN_DECLS

#define RUV_TYPE_MODEL (ruv_model_get_type ())
G_DECLARE_FINAL_TYPE (RuvModel, ruv_model, RUV, MODEL, GObject)

RuvModel       *ruv_model_new_from_file        (const char  *path,
                                                GError     **error);
/* Loads from a buffer the caller keeps alive for the model's lifetime (tests,
 * fuzzing). `name` is used in messages. */
RuvModel       *ruv_model_new_from_data        (const guint8 *data,
                                                gsize         size,
                                                const char   *name,
                                                GError      **error);

const RuvGguf  *ruv_model_get_gguf             (RuvModel   *self);
const char     *ruv_model_get_path             (RuvModel   *self);
/* "llama", "qwen2", "qwen3". */
const char     *ruv_model_get_architecture     (RuvModel   *self);
/* general.name, or NULL. */
const char     *ruv_model_get_name             (RuvModel   *self);
/* Elements of every tensor in the file (a tied embedding counts once). */
guint64         ruv_model_get_n_params         (RuvModel   *self);
RuvModelSize    ruv_model_get_size_class       (RuvModel   *self);
/* llama.cpp's name of general.file_type ("Q4_K_M", "Q8_0", ...) or, without
 * it, of the type holding most weight bytes ("q5_0"). */
const char     *ruv_model_get_quantization     (RuvModel   *self);
/* The RuvPrecision closest to the type holding most weight bytes. */
RuvPrecision    ruv_model_get_precision        (RuvModel   *self);
gint64          ruv_model_get_context_length   (RuvModel   *self);
gint64          ruv_model_get_vocab_size       (RuvModel   *self);
gint64          ruv_model_get_embedding_length (RuvModel   *self);
gint64          ruv_model_get_n_layers         (RuvModel   *self);
/* tokenizer.chat_template, or NULL. */
const char     *ruv_model_get_chat_template    (RuvModel   *self);
guint64         ruv_model_get_file_size        (RuvModel   *self);
/* Bytes of the file mapping (the weights live there). */
guint64         ruv_model_get_mapped_bytes     (RuvModel   *self);
/* Bytes of tensor data of each type, indexed by rk_type (RK_TYPE_COUNT
 * entries). */
const guint64  *ruv_model_get_type_bytes       (RuvModel   *self);

G_END_DECLS
