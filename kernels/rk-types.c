/* rk-types.c — names and sizes of the GGUF tensor types.
 * SPDX-License-Identifier: MIT
 */
#include "rk-quant.h"
#include "rk-types.h"

typedef struct
{
  const char *name;
  int64_t     block_size;
  size_t      type_size;
  bool        supported;
} type_info;

/* Sizes of types we do not compute with are still listed so that a file
 * using them can be described ("q3_K is not supported") rather than rejected
 * as garbage. Ids without a name are holes in GGUF's numbering. */
static const type_info types[RK_TYPE_COUNT] = {
  [RK_TYPE_F32]  = { "f32",  1, 4, true },
  [RK_TYPE_F16]  = { "f16",  1, 2, true },
  [RK_TYPE_Q4_0] = { "q4_0", RK_QK4_0, sizeof (rk_block_q4_0), true },
  [RK_TYPE_Q4_1] = { "q4_1", RK_QK4_1, sizeof (rk_block_q4_1), true },
  [RK_TYPE_Q5_0] = { "q5_0", RK_QK5_0, sizeof (rk_block_q5_0), true },
  [RK_TYPE_Q5_1] = { "q5_1", RK_QK5_1, sizeof (rk_block_q5_1), true },
  [RK_TYPE_Q8_0] = { "q8_0", RK_QK8_0, sizeof (rk_block_q8_0), true },
  [RK_TYPE_Q8_1] = { "q8_1", RK_QK8_1, sizeof (rk_block_q8_1), true },
  [RK_TYPE_Q2_K] = { "q2_K", RK_QK_K, 84, false },
  [RK_TYPE_Q3_K] = { "q3_K", RK_QK_K, 110, false },
  [RK_TYPE_Q4_K] = { "q4_K", RK_QK_K, sizeof (rk_block_q4_K), true },
  [RK_TYPE_Q5_K] = { "q5_K", RK_QK_K, sizeof (rk_block_q5_K), true },
  [RK_TYPE_Q6_K] = { "q6_K", RK_QK_K, sizeof (rk_block_q6_K), true },
  [RK_TYPE_Q8_K] = { "q8_K", RK_QK_K, sizeof (rk_block_q8_K), true },
  [16] = { "iq2_xxs", RK_QK_K, 66, false },
  [17] = { "iq2_xs",  RK_QK_K, 74, false },
  [18] = { "iq3_xxs", RK_QK_K, 98, false },
  [19] = { "iq1_s",   RK_QK_K, 50, false },
  [20] = { "iq4_nl",  32, 18, false },
  [21] = { "iq3_s",   RK_QK_K, 110, false },
  [22] = { "iq2_s",   RK_QK_K, 82, false },
  [23] = { "iq4_xs",  RK_QK_K, 136, false },
  [24] = { "i8",  1, 1, false },
  [25] = { "i16", 1, 2, false },
  [26] = { "i32", 1, 4, false },
  [27] = { "i64", 1, 8, false },
  [28] = { "f64", 1, 8, false },
  [29] = { "iq1_m",   RK_QK_K, 56, false },
  [RK_TYPE_BF16] = { "bf16", 1, 2, true },
  [34] = { "tq1_0",   RK_QK_K, 54, false },
  [35] = { "tq2_0",   RK_QK_K, 66, false },
  [39] = { "mxfp4",   32, 17, false },
};

bool
rk_type_is_known (uint32_t type)
{
  return type < RK_TYPE_COUNT && types[type].name != NULL;
}

bool
rk_type_is_supported (uint32_t type)
{
  return rk_type_is_known (type) && types[type].supported;
}

const char *
rk_type_name (uint32_t type)
{
  return rk_type_is_known (type) ? types[type].name : "unknown";
}

int64_t
rk_type_block_size (uint32_t type)
{
  return rk_type_is_known (type) ? types[type].block_size : 0;
}

size_t
rk_type_size (uint32_t type)
{
  return rk_type_is_known (type) ? types[type].type_size : 0;
}

size_t
rk_row_size (uint32_t type,
             int64_t  n)
{
  int64_t bs = rk_type_block_size (type);

  if (bs == 0 || n < 0 || n % bs != 0)
    return 0;
  /* n / bs blocks of at most 292 bytes: callers pass n < 2^40, no overflow. */
  return (size_t) (n / bs) * types[type].type_size;
}
