/* ruv-quantize.h — requantizes GGUF models as llama-quantize does.
 * SPDX-License-Identifier: MIT
 *
 * Every 2-D (or higher) "*weight" tensor except norms is converted to the
 * target type with the kernels' reference quantizers (byte-identical to
 * ggml's, no importance matrix); 1-D tensors and norms are copied. For the
 * quantized targets the type of each tensor follows llama.cpp's
 * llama_tensor_get_type(): output.weight (or a tied token_embd) becomes Q6_K,
 * or Q8_0 when its rows are not a multiple of 256; Q4_K_M/Q5_K_M give attn_v
 * and ffn_down Q6_K in the first and last eighth of the layers and every
 * third layer between (use_more_bits); a K-quant that does not fit a row
 * length falls back to Q5_0 / Q5_1 / Q8_0, and any type that still does not
 * fit (or a legacy type that does not) to F16. Tensors are written in
 * llama.cpp's order (by layer, then name) after all metadata of the input,
 * with general.quantization_version and general.file_type set last.
 *
 * Like llama-quantize, a tensor that is already quantized (anything but F32,
 * F16, BF16) is only converted with allow_requantize (quality is lost twice);
 * tensors whose type is already the target are copied unchanged. Rows are
 * quantized in parallel on a kernels thread pool; the result does not depend
 * on the number of threads.
 */
#pragma once

#include <glib.h>

#include "rk.h"

G_BEGIN_DECLS

typedef enum
{
  RUV_QUANTIZE_F16,
  RUV_QUANTIZE_BF16,
  RUV_QUANTIZE_Q8_0,
  RUV_QUANTIZE_Q4_0,
  RUV_QUANTIZE_Q4_K_M,
  RUV_QUANTIZE_Q5_K_M,
  RUV_QUANTIZE_Q6_K,
} RuvQuantizeType;

/* "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k", "f16", "bf16" (any case);
 * FALSE for anything else. */
gboolean     ruv_quantize_type_from_name (const char      *name,
                                          RuvQuantizeType *type);
const char  *ruv_quantize_type_name      (RuvQuantizeType  type);
/* llama_ftype value written as general.file_type. */
guint32      ruv_quantize_type_file_type (RuvQuantizeType  type);

typedef struct
{
  guint   n_tensors;
  guint   n_quantized;      /* converted to another type */
  guint   n_fallback;       /* K-quant replaced because of the row length */
  guint64 bytes_in;         /* tensor data */
  guint64 bytes_out;
} RuvQuantizeStats;

typedef struct
{
  gboolean allow_requantize;  /* convert tensors that are already quantized */
  gint     n_threads;         /* <= 0: every online CPU */
} RuvQuantizeOptions;

/* allow_requantize FALSE, n_threads 0. */
void         ruv_quantize_options_init   (RuvQuantizeOptions *options);

/* Reads in_path, writes out_path (atomically). options NULL: the defaults.
 * Errors: RUV_ERROR_IO; RUV_ERROR_CONFIG when out_path is in_path (also
 * through a link) or a quantized tensor would be converted without
 * allow_requantize; RUV_ERROR_MODEL for a file that does not parse or holds a
 * tensor to convert of a type the kernels cannot read. stats may be NULL. */
gboolean     ruv_quantize_file_full      (const char               *in_path,
                                          const char               *out_path,
                                          RuvQuantizeType           type,
                                          const RuvQuantizeOptions *options,
                                          RuvQuantizeStats         *stats,
                                          GError                  **error);
/* ruv_quantize_file_full with the default options. */
gboolean     ruv_quantize_file           (const char       *in_path,
                                          const char       *out_path,
                                          RuvQuantizeType   type,
                                          RuvQuantizeStats *stats,
                                          GError          **error);

G_END_DECLS
