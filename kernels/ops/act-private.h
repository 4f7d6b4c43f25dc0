/* act-private.h — constants shared by the activation kernels of every ISA.
 * SPDX-License-Identifier: MIT
 */
#pragma once

/* gelu(x) ~ 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), ggml's values */
#define GELU_COEF_A    0.044715f
#define SQRT_2_OVER_PI 0.79788456080286535587989211986876f
