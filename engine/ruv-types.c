/* ruv-types.c — RuvPrecision, RuvModelSize, RuvDeviceType as GLib enums.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <unistd.h>

#include "ruv-types.h"

G_DEFINE_ENUM_TYPE (RuvPrecision, ruv_precision,
  G_DEFINE_ENUM_VALUE (RUV_PRECISION_FP32, "fp32"),
  G_DEFINE_ENUM_VALUE (RUV_PRECISION_FP16, "fp16"),
  G_DEFINE_ENUM_VALUE (RUV_PRECISION_BF16, "bf16"),
  G_DEFINE_ENUM_VALUE (RUV_PRECISION_Q8, "q8"),
  G_DEFINE_ENUM_VALUE (RUV_PRECISION_Q4, "q4"),
  G_DEFINE_ENUM_VALUE (RUV_PRECISION_Q4K, "q4k"))

G_DEFINE_ENUM_TYPE (RuvModelSize, ruv_model_size,
  G_DEFINE_ENUM_VALUE (RUV_MODEL_SIZE_TINY, "tiny"),
  G_DEFINE_ENUM_VALUE (RUV_MODEL_SIZE_SMALL, "small"),
  G_DEFINE_ENUM_VALUE (RUV_MODEL_SIZE_MEDIUM, "medium"),
  G_DEFINE_ENUM_VALUE (RUV_MODEL_SIZE_LARGE, "large"))

G_DEFINE_ENUM_TYPE (RuvDeviceType, ruv_device_type,
  G_DEFINE_ENUM_VALUE (RUV_DEVICE_TYPE_CPU, "cpu"),
  G_DEFINE_ENUM_VALUE (RUV_DEVICE_TYPE_METAL, "metal"),
  G_DEFINE_ENUM_VALUE (RUV_DEVICE_TYPE_CUDA, "cuda"))

guint
ruv_precision_bits_per_element (RuvPrecision precision)
{
  switch (precision)
    {
    case RUV_PRECISION_FP32:
      return 32;
    case RUV_PRECISION_FP16:
    case RUV_PRECISION_BF16:
      return 16;
    case RUV_PRECISION_Q8:
      return 8;
    case RUV_PRECISION_Q4:
    case RUV_PRECISION_Q4K:
      return 4;
    default:
      return 0;
    }
}

const char *
ruv_precision_name (RuvPrecision precision)
{
  switch (precision)
    {
    case RUV_PRECISION_FP32:
      return "FP32";
    case RUV_PRECISION_FP16:
      return "FP16";
    case RUV_PRECISION_BF16:
      return "BF16";
    case RUV_PRECISION_Q8:
      return "Q8";
    case RUV_PRECISION_Q4:
      return "Q4";
    case RUV_PRECISION_Q4K:
      return "Q4K";
    default:
      return "unknown";
    }
}

RuvModelSize
ruv_model_size_from_params (guint64 n_params)
{
  const guint64 billion = G_GUINT64_CONSTANT (1000000000);

  if (n_params < billion)
    return RUV_MODEL_SIZE_TINY;
  if (n_params < 3 * billion)
    return RUV_MODEL_SIZE_SMALL;
  if (n_params <= 13 * billion)
    return RUV_MODEL_SIZE_MEDIUM;
  return RUV_MODEL_SIZE_LARGE;
}

const char *
ruv_model_size_name (RuvModelSize size)
{
  switch (size)
    {
    case RUV_MODEL_SIZE_TINY:
      return "Tiny";
    case RUV_MODEL_SIZE_SMALL:
      return "Small";
    case RUV_MODEL_SIZE_MEDIUM:
      return "Medium";
    case RUV_MODEL_SIZE_LARGE:
      return "Large";
    default:
      return "unknown";
    }
}

const char *
ruv_device_type_name (RuvDeviceType device)
{
  switch (device)
    {
    case RUV_DEVICE_TYPE_CPU:
      return "CPU";
    case RUV_DEVICE_TYPE_METAL:
      return "Metal";
    case RUV_DEVICE_TYPE_CUDA:
      return "CUDA";
    default:
      return "unknown";
    }
}

gboolean
ruv_device_type_is_available (RuvDeviceType device)
{
  return device == RUV_DEVICE_TYPE_CPU;
}

guint64
ruv_process_rss_bytes (void)
{
  unsigned long long size = 0, resident = 0;
  long page = sysconf (_SC_PAGESIZE);
  FILE *f = fopen ("/proc/self/statm", "re");
  int n;

  if (f == NULL)
    return 0;
  n = fscanf (f, "%llu %llu", &size, &resident);
  fclose (f);
  if (n != 2 || page <= 0)
    return 0;
  return (guint64) resident * (guint64) page;
}
