/* rk-types.h — tensor element types (GGUF/ggml type ids) and their sizes.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* The numeric values are GGUF's tensor type ids (ggml_type), so a type read
 * from a file can be used as is once rk_type_is_known() says so. */
typedef enum
{
  RK_TYPE_F32  = 0,
  RK_TYPE_F16  = 1,
  RK_TYPE_Q4_0 = 2,
  RK_TYPE_Q4_1 = 3,
  RK_TYPE_Q5_0 = 6,
  RK_TYPE_Q5_1 = 7,
  RK_TYPE_Q8_0 = 8,
  RK_TYPE_Q8_1 = 9,
  RK_TYPE_Q2_K = 10,
  RK_TYPE_Q3_K = 11,
  RK_TYPE_Q4_K = 12,
  RK_TYPE_Q5_K = 13,
  RK_TYPE_Q6_K = 14,
  RK_TYPE_Q8_K = 15,
  RK_TYPE_BF16 = 30,
  RK_TYPE_COUNT = 40,
} rk_type;

/* TRUE for a type id GGUF defines (even one we cannot compute with). */
bool        rk_type_is_known      (uint32_t type);
/* TRUE for a type the kernels can dequantize and multiply with. */
bool        rk_type_is_supported  (uint32_t type);
/* GGUF's spelling: "f32", "q4_K", ...; "unknown" for ids we do not know. */
const char *rk_type_name          (uint32_t type);
/* Elements per block (1 for float types) and bytes per block. 0 if unknown. */
int64_t     rk_type_block_size    (uint32_t type);
size_t      rk_type_size          (uint32_t type);
/* Bytes of a row of n elements; n must be a multiple of the block size.
 * Returns 0 on a bad n (not a multiple) or unknown type. */
size_t      rk_row_size           (uint32_t type,
                                   int64_t  n);
