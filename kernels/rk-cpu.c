/* rk-cpu.c — CPU feature detection and the per-type kernel table.
 * SPDX-License-Identifier: MIT
 */
#include <pthread.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "rk-cpu.h"
#include "rk-quant.h"

static rk_isa chosen_isa = RK_ISA_REF;
static rk_type_traits table[RK_TYPE_COUNT];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static bool use_vnni = false;
static pthread_once_t vnni_once = PTHREAD_ONCE_INIT;

bool
rk_cpu_has_avx512_vnni (void)
{
#if defined(__x86_64__) && defined(RK_HAVE_AVX512)
  unsigned int a, b, c, d, xcr0_lo, xcr0_hi;

  if (!rk_cpu_has_isa (RK_ISA_AVX2))
    return false;
  /* xgetbv is only there when the OS enabled XSAVE (OSXSAVE, leaf 1 ECX 27). */
  if (!__get_cpuid (1, &a, &b, &c, &d) || !(c & (1u << 27)))
    return false;
  /* XCR0: the OS saves SSE (1), AVX (2), opmask (5), ZMM0-15 high halves (6)
   * and ZMM16-31 (7). Without 5-7 the AVX-512 registers are not preserved
   * across context switches even where cpuid lists the instructions. */
  __asm__ volatile ("xgetbv" : "=a" (xcr0_lo), "=d" (xcr0_hi) : "c" (0));
  (void) xcr0_hi;
  if ((xcr0_lo & 0xE6u) != 0xE6u)
    return false;
  if (__get_cpuid_max (0, NULL) < 7)
    return false;
  __cpuid_count (7, 0, a, b, c, d);
  /* EBX: 16 AVX512F, 30 AVX512BW, 31 AVX512VL; ECX: 11 AVX512_VNNI. */
  return (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31)) && (c & (1u << 11));
#else
  return false;
#endif
}

static void
vnni_once_cb (void)
{
  const char *force = getenv ("RUV_KERNELS");

  use_vnni = rk_cpu_has_avx512_vnni ()
             && !(force != NULL && (strcmp (force, "ref") == 0 || strcmp (force, "avx2") == 0));
}

bool
rk_cpu_use_avx512_vnni (void)
{
  pthread_once (&vnni_once, vnni_once_cb);
  return use_vnni;
}

bool
rk_cpu_has_isa (rk_isa isa)
{
  switch (isa)
    {
    case RK_ISA_REF:
      return true;
    case RK_ISA_AVX2:
#if defined(__x86_64__) && defined(RK_HAVE_AVX2)
      {
        unsigned int a, b, c, d;

        /* F16C through cpuid: clang 14's __builtin_cpu_supports has no "f16c".
         * The avx2 check covers the OS saving YMM state. */
        __builtin_cpu_init ();
        if (!__get_cpuid (1, &a, &b, &c, &d) || !(c & bit_F16C))
          return false;
        return __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
      }
#else
      return false;
#endif
    case RK_ISA_NEON:
#if defined(__aarch64__) && defined(RK_HAVE_NEON)
      return true;
#else
      return false;
#endif
    default:
      return false;
    }
}

const char *
rk_isa_name (rk_isa isa)
{
  switch (isa)
    {
    case RK_ISA_AVX2: return "avx2";
    case RK_ISA_NEON: return "neon";
    case RK_ISA_REF:
    default: return "ref";
    }
}

static void
copy_f32_to_float (const void *x, float *y, int64_t k)
{
  memcpy (y, x, (size_t) k * sizeof (float));
}

static void
copy_float_to_f32 (const float *x, void *y, int64_t k)
{
  memcpy (y, x, (size_t) k * sizeof (float));
}

/* Fills one entry. `V` pastes the ISA suffix onto a kernel name. */
#define FORMAT_ENTRY(T, fmt, dot, dot_type, sfx)                  \
  case T:                                                         \
    tr.to_float = rk_dequantize_row_##fmt##sfx;                   \
    tr.from_float = rk_quantize_row_##fmt##sfx;                   \
    tr.from_float_ref = rk_quantize_row_##fmt##_ref;              \
    tr.vec_dot = dot;                                             \
    tr.vec_dot_type = dot_type;                                   \
    break;

#define ALL_FORMATS(sfx)                                                                  \
  case RK_TYPE_F32:                                                                       \
    tr.to_float = copy_f32_to_float;                                                      \
    tr.from_float = copy_float_to_f32;                                                    \
    tr.from_float_ref = copy_float_to_f32;                                                \
    tr.vec_dot = rk_vec_dot_f32_f32##sfx;                                                 \
    tr.vec_dot_type = RK_TYPE_F32;                                                        \
    break;                                                                                \
  FORMAT_ENTRY (RK_TYPE_F16,  f16,  rk_vec_dot_f16_f16##sfx,   RK_TYPE_F16,  sfx)          \
  FORMAT_ENTRY (RK_TYPE_BF16, bf16, rk_vec_dot_bf16_bf16##sfx, RK_TYPE_BF16, sfx)          \
  FORMAT_ENTRY (RK_TYPE_Q4_0, q4_0, rk_vec_dot_q4_0_q8_0##sfx, RK_TYPE_Q8_0, sfx)          \
  FORMAT_ENTRY (RK_TYPE_Q4_1, q4_1, rk_vec_dot_q4_1_q8_1##sfx, RK_TYPE_Q8_1, sfx)          \
  FORMAT_ENTRY (RK_TYPE_Q5_0, q5_0, rk_vec_dot_q5_0_q8_0##sfx, RK_TYPE_Q8_0, sfx)          \
  FORMAT_ENTRY (RK_TYPE_Q5_1, q5_1, rk_vec_dot_q5_1_q8_1##sfx, RK_TYPE_Q8_1, sfx)          \
  FORMAT_ENTRY (RK_TYPE_Q8_0, q8_0, rk_vec_dot_q8_0_q8_0##sfx, RK_TYPE_Q8_0, sfx)          \
  FORMAT_ENTRY (RK_TYPE_Q8_1, q8_1, NULL,                      RK_TYPE_Q8_1, sfx)          \
  FORMAT_ENTRY (RK_TYPE_Q4_K, q4_K, rk_vec_dot_q4_K_q8_K##sfx, RK_TYPE_Q8_K, sfx)          \
  FORMAT_ENTRY (RK_TYPE_Q5_K, q5_K, rk_vec_dot_q5_K_q8_K##sfx, RK_TYPE_Q8_K, sfx)          \
  FORMAT_ENTRY (RK_TYPE_Q6_K, q6_K, rk_vec_dot_q6_K_q8_K##sfx, RK_TYPE_Q8_K, sfx)          \
  FORMAT_ENTRY (RK_TYPE_Q8_K, q8_K, NULL,                      RK_TYPE_Q8_K, sfx)

rk_type_traits
rk_traits_for_isa (rk_type type,
                   rk_isa  isa)
{
  rk_type_traits tr = { 0 };

  if (!rk_cpu_has_isa (isa))
    isa = RK_ISA_REF;

#if defined(__x86_64__) && defined(RK_HAVE_AVX2)
  if (isa == RK_ISA_AVX2)
    {
      switch ((int) type)
        {
          ALL_FORMATS (_avx2)
        default:
          break;
        }
#if defined(RK_HAVE_AVX512)
      /* Same bits, one instruction less per 32 values (vpdpwssd). */
      if (type == RK_TYPE_Q4_K && rk_cpu_use_avx512_vnni ())
        tr.vec_dot = rk_vec_dot_q4_K_q8_K_avx512;
#endif
      return tr;
    }
#endif
#if defined(__aarch64__) && defined(RK_HAVE_NEON)
  if (isa == RK_ISA_NEON)
    {
      switch ((int) type)
        {
          ALL_FORMATS (_neon)
        default:
          break;
        }
      return tr;
    }
#endif
  switch ((int) type)
    {
      ALL_FORMATS (_ref)
    default:
      break;
    }
  return tr;
}

static void
init_once_cb (void)
{
  const char *force = getenv ("RUV_KERNELS");
  int t;

  if (force != NULL && strcmp (force, "ref") == 0)
    chosen_isa = RK_ISA_REF;
  else if (rk_cpu_has_isa (RK_ISA_AVX2))
    chosen_isa = RK_ISA_AVX2;
  else if (rk_cpu_has_isa (RK_ISA_NEON))
    chosen_isa = RK_ISA_NEON;
  else
    chosen_isa = RK_ISA_REF;

  for (t = 0; t < RK_TYPE_COUNT; t++)
    table[t] = rk_traits_for_isa ((rk_type) t, chosen_isa);
}

void
rk_cpu_init (void)
{
  pthread_once (&init_once, init_once_cb);
}

rk_isa
rk_cpu_isa (void)
{
  rk_cpu_init ();
  return chosen_isa;
}

const rk_type_traits *
rk_get_traits (rk_type type)
{
  rk_cpu_init ();
  if ((unsigned) type >= RK_TYPE_COUNT)
    return NULL;
  return &table[type];
}
