/* rk.h — the kernels library (librk): plain C11, no GLib.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "rk-types.h"
#include "rk-fp16.h"
#include "rk-quant.h"
#include "rk-cpu.h"
#include "rk-pool.h"
#include "rk-matmul.h"
#include "rk-ops.h"
#include "rk-attention.h"
