/* ruv-types.h — RuvPrecision, RuvModelSize, RuvDeviceType and RuvMemoryStats.
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* Numeric precision of weights (the reference's Precision). */
typedef enum
{
  RUV_PRECISION_FP32,
  RUV_PRECISION_FP16,
  RUV_PRECISION_BF16,
  RUV_PRECISION_Q8,
  RUV_PRECISION_Q4,
  RUV_PRECISION_Q4K,
} RuvPrecision;

/* Size class by parameter count (the reference's ModelSize). */
typedef enum
{
  RUV_MODEL_SIZE_TINY,     /* < 1B */
  RUV_MODEL_SIZE_SMALL,    /* 1B .. 3B */
  RUV_MODEL_SIZE_MEDIUM,   /* 3B .. 13B */
  RUV_MODEL_SIZE_LARGE,    /* > 13B */
} RuvModelSize;

/* Compute device (the reference's DeviceType; CUDA carries an index in
 * RuvCpuBackend's API, not here). Only CPU is built in. */
typedef enum
{
  RUV_DEVICE_TYPE_CPU,
  RUV_DEVICE_TYPE_METAL,
  RUV_DEVICE_TYPE_CUDA,
} RuvDeviceType;

#define RUV_TYPE_PRECISION   (ruv_precision_get_type ())
#define RUV_TYPE_MODEL_SIZE  (ruv_model_size_get_type ())
#define RUV_TYPE_DEVICE_TYPE (ruv_device_type_get_type ())

GType        ruv_precision_get_type          (void) G_GNUC_CONST;
GType        ruv_model_size_get_type         (void) G_GNUC_CONST;
GType        ruv_device_type_get_type        (void) G_GNUC_CONST;

/* 32, 16, 16, 8, 4, 4: bits, since Q4 is half a byte. 0 for an invalid value. */
guint        ruv_precision_bits_per_element  (RuvPrecision  precision);
/* "FP32", "FP16", "BF16", "Q8", "Q4", "Q4K"; "unknown" for an invalid value. */
const char  *ruv_precision_name              (RuvPrecision  precision);

/* The class a parameter count falls in (1B = 1e9; 1B itself is SMALL,
 * 3B MEDIUM, 13B MEDIUM, above 13B LARGE). */
RuvModelSize ruv_model_size_from_params      (guint64       n_params);
/* "Tiny", "Small", "Medium", "Large". */
const char  *ruv_model_size_name             (RuvModelSize  size);

/* "CPU", "Metal", "CUDA". */
const char  *ruv_device_type_name            (RuvDeviceType device);
/* TRUE only for the devices this build computes on (CPU). */
gboolean     ruv_device_type_is_available    (RuvDeviceType device);

/* Memory statistics in bytes (the reference's MemoryStats). */
typedef struct
{
  guint64 mapped_bytes;    /* the model file, mapped read-only */
  guint64 kv_bytes;        /* KV cache */
  guint64 scratch_bytes;   /* activations and other working buffers */
  guint64 adapter_bytes;   /* LoRA adapters */
  guint64 rss_bytes;       /* resident set of the whole process */
} RuvMemoryStats;

/* Resident set size of this process from /proc/self/statm; 0 if unknown. */
guint64      ruv_process_rss_bytes           (void);

G_END_DECLS
