/* ruv-lora-gguf.h — MicroLoRA adapters as GGUF LoRA files in llama.cpp's layout.
 * SPDX-License-Identifier: MIT
 *
 * Layout (what llama.cpp's llama_adapter_lora_init reads):
 *   general.type = "adapter", adapter.type = "lora",
 *   general.architecture = the base model's, adapter.lora.alpha (f32),
 *   per adapted weight W = "blk.N.<stem>.weight" (n_out rows of n_in):
 *     "<W>.lora_a": ne = {n_in, rank}   (A, rank rows of n_in)
 *     "<W>.lora_b": ne = {rank, n_out}  (B, n_out rows of rank)
 *   applied as W x + (alpha / rank) B (A x). One alpha serves every pair, so
 *   an adapter whose scale differs from alpha / rank has its B scaled on
 *   export to keep the same product. We write F32; we read every tensor type
 *   the kernels support (F32, F16, BF16, quantised) and ignore "*_norm.weight"
 *   tensors as llama.cpp does. Extra keys: ruvllm.lora.base_name.
 * Every failure (not GGUF, not an adapter, another architecture, a tensor the
 * base model lacks, wrong shape or rank, a missing half of a pair,
 * non-finite values) is RUV_ERROR_ADAPTER; nothing is returned then, so the
 * caller keeps its current adapter.
 */
#pragma once

#include <glib.h>

#include "ruv-lora.h"
#include "ruv-model.h"

G_BEGIN_DECLS

GBytes       *ruv_lora_gguf_to_bytes    (RuvMicroLora *lora,
                                         RuvModel     *model,
                                         GError      **error);
/* Atomic write (temporary file, fsync, rename). */
gboolean      ruv_lora_gguf_export      (RuvMicroLora *lora,
                                         RuvModel     *model,
                                         const char   *path,
                                         GError      **error);
/* config (may be NULL: the model's defaults) gives the training settings of
 * the returned set; the adapters themselves come from the file. */
RuvMicroLora *ruv_lora_gguf_import_data (RuvModel                 *model,
                                         const guint8             *data,
                                         gsize                     size,
                                         const char               *name,
                                         const RuvMicroLoraConfig *config,
                                         GError                  **error);
RuvMicroLora *ruv_lora_gguf_import      (RuvModel                 *model,
                                         const char               *path,
                                         const RuvMicroLoraConfig *config,
                                         GError                  **error);

G_END_DECLS
