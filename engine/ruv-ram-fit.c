/* ruv-ram-fit.c — will this model fit in memory?
 * SPDX-License-Identifier: MIT
 *
 *   kv      = 2 bytes (f16) · n_layer · n_ctx · n_head_kv · (key_length + value_length)
 *   scratch = 4 bytes · n_ubatch (512) · (4 · n_embd + 2 · n_ff + n_vocab) + 64 MiB
 *   total   = weights + kv + scratch
 * key/value_length default to n_embd / n_head (llama.cpp's rule), n_ff to
 * 4 · n_embd, n_vocab to the token list's length.
 */
#include "ruv-ram-fit.h"

#include <string.h>

#include "ruv-error.h"

#define N_UBATCH 512
#define OVERHEAD (G_GUINT64_CONSTANT (64) << 20)
#define DEFAULT_CTX_CAP 8192

static gboolean
get_arch_uint (const RuvGguf *meta,
               const char    *arch,
               const char    *suffix,
               guint64       *out,
               GError       **error)
{
  g_autofree char *key = g_strdup_printf ("%s.%s", arch, suffix);

  return ruv_gguf_get_uint (meta, key, out, error);
}

/* a · b with saturation: estimates must not wrap on hostile metadata. */
static guint64
mul_sat (guint64 a,
         guint64 b)
{
  if (a != 0 && b > G_MAXUINT64 / a)
    return G_MAXUINT64;
  return a * b;
}

static guint64
add_sat (guint64 a,
         guint64 b)
{
  return a > G_MAXUINT64 - b ? G_MAXUINT64 : a + b;
}

gboolean
ruv_ram_fit_estimate (const RuvGguf *meta,
                      guint64        weights_bytes,
                      guint32        n_ctx,
                      guint64        available_bytes,
                      RuvRamFit     *out,
                      GError       **error)
{
  const char *arch = NULL;
  guint64 n_layer = 0, n_embd = 0, n_head = 0, n_head_kv = 0, ctx_train = 0;
  guint64 k_len = 0, v_len = 0, n_ff = 0, n_vocab = 0;
  RuvGgufType elem;
  GError *local_error = NULL;

  g_return_val_if_fail (meta != NULL && out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  if (!ruv_gguf_get_string (meta, "general.architecture", &arch, &local_error))
    {
      if (local_error == NULL)
        g_set_error (&local_error, RUV_ERROR, RUV_ERROR_MODEL,
                     "general.architecture is missing");
      g_propagate_error (error, local_error);
      return FALSE;
    }
  if (!get_arch_uint (meta, arch, "block_count", &n_layer, &local_error)
      || !get_arch_uint (meta, arch, "embedding_length", &n_embd, &local_error)
      || !get_arch_uint (meta, arch, "attention.head_count", &n_head, &local_error)
      || n_layer == 0 || n_embd == 0 || n_head == 0)
    {
      if (local_error == NULL)
        g_set_error (&local_error, RUV_ERROR, RUV_ERROR_MODEL,
                     "%s: block_count, embedding_length or attention.head_count is missing "
                     "or zero", arch);
      g_propagate_error (error, local_error);
      return FALSE;
    }
  if (!get_arch_uint (meta, arch, "attention.head_count_kv", &n_head_kv, &local_error))
    n_head_kv = n_head;
  if (!get_arch_uint (meta, arch, "attention.key_length", &k_len, &local_error))
    k_len = n_embd / n_head;
  if (!get_arch_uint (meta, arch, "attention.value_length", &v_len, &local_error))
    v_len = n_embd / n_head;
  if (!get_arch_uint (meta, arch, "feed_forward_length", &n_ff, &local_error))
    n_ff = 4 * n_embd;
  if (!get_arch_uint (meta, arch, "context_length", &ctx_train, &local_error))
    ctx_train = 4096;
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  if (!ruv_gguf_get_array_info (meta, "tokenizer.ggml.tokens", &elem, &n_vocab))
    n_vocab = 32000;

  if (n_ctx == 0)
    n_ctx = (guint32) MIN (ctx_train, (guint64) DEFAULT_CTX_CAP);
  out->n_ctx = n_ctx;
  out->weights_bytes = weights_bytes;
  out->kv_bytes = mul_sat (mul_sat (mul_sat (2 * n_layer, n_ctx), n_head_kv),
                           add_sat (k_len, v_len));
  out->scratch_bytes = add_sat (mul_sat (4 * N_UBATCH,
                                         add_sat (add_sat (mul_sat (4, n_embd),
                                                           mul_sat (2, n_ff)), n_vocab)),
                                OVERHEAD);
  out->total_bytes = add_sat (add_sat (out->weights_bytes, out->kv_bytes), out->scratch_bytes);
  out->available_bytes = available_bytes != 0 ? available_bytes : ruv_ram_fit_available ();
  if (out->available_bytes > 0 && out->total_bytes <= out->available_bytes / 10 * 8)
    out->verdict = RUV_RAM_FIT_FITS;
  else if (out->available_bytes > 0 && out->total_bytes <= out->available_bytes)
    out->verdict = RUV_RAM_FIT_TIGHT;
  else
    out->verdict = RUV_RAM_FIT_WONT_FIT;
  return TRUE;
}

guint64
ruv_ram_fit_parse_meminfo (const char *text)
{
  const char *p;
  guint64 kib;
  char *end;

  if (text == NULL)
    return 0;
  for (p = text; p != NULL && *p != '\0'; p = strchr (p, '\n'), p = p != NULL ? p + 1 : NULL)
    if (g_str_has_prefix (p, "MemAvailable:"))
      {
        p += strlen ("MemAvailable:");
        while (*p == ' ' || *p == '\t')
          p++;
        kib = g_ascii_strtoull (p, &end, 10);
        if (end == p || kib > G_MAXUINT64 / 1024)
          return 0;
        return kib * 1024;
      }
  return 0;
}

guint64
ruv_ram_fit_available (void)
{
  g_autofree char *text = NULL;

  if (!g_file_get_contents ("/proc/meminfo", &text, NULL, NULL))
    return 0;
  return ruv_ram_fit_parse_meminfo (text);
}

const char *
ruv_ram_fit_verdict_name (RuvRamFitVerdict verdict)
{
  switch (verdict)
    {
    case RUV_RAM_FIT_FITS: return "fits";
    case RUV_RAM_FIT_TIGHT: return "tight";
    case RUV_RAM_FIT_WONT_FIT: return "won't fit";
    default: return "unknown";
    }
}

char *
ruv_ram_fit_describe (const RuvRamFit *fit)
{
  g_autofree char *total = g_format_size (fit->total_bytes);
  g_autofree char *avail = g_format_size (fit->available_bytes);
  g_autofree char *w = g_format_size (fit->weights_bytes);
  g_autofree char *kv = g_format_size (fit->kv_bytes);
  g_autofree char *s = g_format_size (fit->scratch_bytes);

  return g_strdup_printf ("%s: needs %s of %s available (weights %s, KV cache %s at %u "
                          "tokens, scratch %s)", ruv_ram_fit_verdict_name (fit->verdict),
                          total, avail, w, kv, fit->n_ctx, s);
}
