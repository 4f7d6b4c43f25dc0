/* ruv-sona-backward.c — SONA's traces and the truncated backward pass
 * through the final norm and LM head (see ruv-sona.h).
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>

#include "rk.h"
#include "rk-fp16.h"
#include "ruv-error.h"
#include "ruv-model-private.h"
#include "ruv-sona-private.h"

#define HEAD_CHUNK 256

/* ---- traces --------------------------------------------------------------- */

struct _RuvSonaTrace
{
  gint      ref_count;
  guint64   serial;     /* unique per trace and content version */
  gint64    n_tok;
  gint64    n_embd;
  gint64    n_cand;
  gsize     n_adapters;
  gint64   *ad_layer;
  gint     *ad_module;
  gint64   *ad_n_in;
  gint64   *ad_n_out;
  gint     *ad_rank;
  gboolean  half;       /* inputs kept as f16 (gradient_checkpointing) */
  gint32   *target;     /* (n_tok) */
  float    *x_base;     /* (n_tok, n_embd) */
  gint32   *cand;       /* (n_tok, n_cand) */
  gpointer *inputs;     /* per adapter: (n_tok, n_in) floats or f16, or NULL */
  gboolean *is_set;     /* (n_tok) */
};

static gboolean
adapter_feeds_residual (const RuvLoraAdapter *ad,
                        gint64                n_embd)
{
  return (RUV_TARGET_BIT (ad->module) & RUV_TARGET_RESIDUAL_MASK) && ad->n_out == n_embd;
}

static guint64
next_serial (void)
{
  static guint64 counter;

  return __atomic_add_fetch (&counter, 1, __ATOMIC_RELAXED);
}

RuvSonaTrace *
ruv_sona_trace_new (RuvMicroLora *lora,
                    gint64        n_tok,
                    gint64        n_embd,
                    gint64        n_cand)
{
  RuvSonaTrace *tr;
  gsize i;

  g_return_val_if_fail (RUV_IS_MICRO_LORA (lora), NULL);
  g_return_val_if_fail (n_tok >= 1 && n_tok <= 65536 && n_embd >= 1 && n_embd <= (1 << 20) &&
                        n_cand >= 0 && n_cand <= 4096, NULL);

  tr = g_new0 (RuvSonaTrace, 1);
  tr->ref_count = 1;
  tr->serial = next_serial ();
  tr->n_tok = n_tok;
  tr->n_embd = n_embd;
  tr->n_cand = n_cand;
  tr->half = ruv_micro_lora_get_config (lora)->gradient_checkpointing;
  tr->n_adapters = ruv_micro_lora_get_n_adapters (lora);
  tr->ad_layer = g_new0 (gint64, tr->n_adapters + 1);
  tr->ad_module = g_new0 (gint, tr->n_adapters + 1);
  tr->ad_n_in = g_new0 (gint64, tr->n_adapters + 1);
  tr->ad_n_out = g_new0 (gint64, tr->n_adapters + 1);
  tr->ad_rank = g_new0 (gint, tr->n_adapters + 1);
  tr->inputs = g_new0 (gpointer, tr->n_adapters + 1);
  for (i = 0; i < tr->n_adapters; i++)
    {
      const RuvLoraAdapter *ad = ruv_micro_lora_get_adapter (lora, i);

      tr->ad_layer[i] = ad->layer;
      tr->ad_module[i] = ad->module;
      tr->ad_n_in[i] = ad->n_in;
      tr->ad_n_out[i] = ad->n_out;
      tr->ad_rank[i] = ad->rank;
      if (adapter_feeds_residual (ad, n_embd))
        tr->inputs[i] = g_malloc0 ((gsize) n_tok * ad->n_in *
                                   (tr->half ? sizeof (rk_fp16) : sizeof (float)));
    }
  tr->target = g_new0 (gint32, n_tok);
  tr->x_base = g_new0 (float, n_tok * n_embd);
  tr->cand = g_new0 (gint32, MAX (n_tok * n_cand, 1));
  tr->is_set = g_new0 (gboolean, n_tok);
  return tr;
}

void
ruv_sona_trace_free (RuvSonaTrace *tr)
{
  gsize i;

  if (tr == NULL || !g_atomic_int_dec_and_test (&tr->ref_count))
    return;
  for (i = 0; i < tr->n_adapters; i++)
    g_free (tr->inputs[i]);
  g_free (tr->inputs);
  g_free (tr->ad_layer);
  g_free (tr->ad_module);
  g_free (tr->ad_n_in);
  g_free (tr->ad_n_out);
  g_free (tr->ad_rank);
  g_free (tr->target);
  g_free (tr->x_base);
  g_free (tr->cand);
  g_free (tr->is_set);
  g_free (tr);
}

RuvSonaTrace *
_ruv_sona_trace_ref (RuvSonaTrace *tr)
{
  g_atomic_int_inc (&tr->ref_count);
  return tr;
}

gint64
ruv_sona_trace_get_n_tokens (const RuvSonaTrace *tr)
{
  return tr->n_tok;
}

static gboolean
finite_vec (const float *v,
            gint64       n)
{
  gint64 i;

  for (i = 0; i < n; i++)
    if (!isfinite (v[i]))
      return FALSE;
  return TRUE;
}

/* The trace was made for this adapter layout. */
static gboolean
trace_matches (const RuvSonaTrace *tr,
               RuvMicroLora       *lora)
{
  gsize i;

  if (tr->n_adapters != ruv_micro_lora_get_n_adapters (lora))
    return FALSE;
  for (i = 0; i < tr->n_adapters; i++)
    {
      const RuvLoraAdapter *ad = ruv_micro_lora_get_adapter (lora, i);

      if (ad->layer != tr->ad_layer[i] || (gint) ad->module != tr->ad_module[i] ||
          ad->n_in != tr->ad_n_in[i] || ad->n_out != tr->ad_n_out[i] ||
          ad->rank != tr->ad_rank[i])
        return FALSE;
    }
  return TRUE;
}

/* y += s B (A u) */
static void
adapter_delta_add (const RuvLoraAdapter *ad,
                   const float          *u,
                   float                 sign,
                   float                *y)
{
  float v[256];
  gint64 r, i, o;

  for (r = 0; r < ad->rank; r++)
    {
      float s = 0.0f;

      for (i = 0; i < ad->n_in; i++)
        s += ad->a[r * ad->n_in + i] * u[i];
      v[r] = s * ad->scale * sign;
    }
  for (o = 0; o < ad->n_out; o++)
    {
      float s = 0.0f;

      for (r = 0; r < ad->rank; r++)
        s += ad->b[o * ad->rank + r] * v[r];
      y[o] += s;
    }
}

static void
trace_get_input (const RuvSonaTrace *tr,
                 gsize               a,
                 gint64              t,
                 float              *out)
{
  gint64 n = tr->ad_n_in[a], i;

  if (tr->half)
    {
      const rk_fp16 *src = (const rk_fp16 *) tr->inputs[a] + t * n;

      for (i = 0; i < n; i++)
        out[i] = rk_fp16_to_fp32 (src[i]);
    }
  else
    memcpy (out, (const float *) tr->inputs[a] + t * n, n * sizeof (float));
}

gboolean
ruv_sona_trace_set_position (RuvSonaTrace       *tr,
                             RuvMicroLora       *lora,
                             gint64              t,
                             gint32              target,
                             const float        *x_final,
                             const float *const *inputs,
                             const gint32       *cand,
                             GError            **error)
{
  float *xb;
  gsize a;
  gint64 i;

  if (t < 0 || t >= tr->n_tok || target < 0 || !trace_matches (tr, lora) ||
      !finite_vec (x_final, tr->n_embd))
    {
      g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                   "trace position %" G_GINT64_FORMAT ": bad index, target, adapter layout or "
                   "non-finite activations", t);
      return FALSE;
    }
  for (a = 0; a < tr->n_adapters; a++)
    if (tr->inputs[a] != NULL && (inputs == NULL || inputs[a] == NULL ||
                                  !finite_vec (inputs[a], tr->ad_n_in[a])))
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER,
                     "trace position %" G_GINT64_FORMAT ": input of adapter %" G_GSIZE_FORMAT
                     " missing or non-finite", t, a);
        return FALSE;
      }
  for (i = 0; cand != NULL && i < tr->n_cand; i++)
    if (cand[i] < 0)
      {
        g_set_error (error, RUV_ERROR, RUV_ERROR_ADAPTER, "negative candidate token id");
        return FALSE;
      }

  tr->serial = next_serial ();
  xb = tr->x_base + t * tr->n_embd;
  memcpy (xb, x_final, tr->n_embd * sizeof (float));
  tr->target[t] = target;
  if (cand != NULL && tr->n_cand > 0)
    memcpy (tr->cand + t * tr->n_cand, cand, tr->n_cand * sizeof (gint32));
  ruv_micro_lora_lock (lora);
  for (a = 0; a < tr->n_adapters; a++)
    {
      const RuvLoraAdapter *ad = ruv_micro_lora_get_adapter (lora, a);
      gint64 n = tr->ad_n_in[a];

      if (tr->inputs[a] == NULL)
        continue;
      if (tr->half)
        {
          rk_fp16 *dst = (rk_fp16 *) tr->inputs[a] + t * n;

          for (i = 0; i < n; i++)
            dst[i] = rk_fp32_to_fp16 (inputs[a][i]);
        }
      else
        memcpy ((float *) tr->inputs[a] + t * n, inputs[a], n * sizeof (float));
      /* What the forward pass added (nothing when disabled). */
      if (ruv_micro_lora_get_enabled (lora))
        {
          g_autofree float *u = g_new (float, n);

          trace_get_input (tr, a, t, u);
          adapter_delta_add (ad, u, -1.0f, xb);
        }
    }
  ruv_micro_lora_unlock (lora);
  tr->is_set[t] = TRUE;
  return TRUE;
}

/* ---- scratch --------------------------------------------------------------- */

static gpointer
scratch_bytes (RuvSonaWork *work,
               int          slot,
               gsize        nbytes)
{
  if (work->scratch_len[slot] < nbytes)
    {
      g_free (work->scratch[slot]);
      /* grow by half again, so slowly rising sizes settle quickly */
      nbytes = MAX (nbytes, work->scratch_len[slot] + work->scratch_len[slot] / 2);
      work->scratch[slot] = g_malloc (nbytes);
      work->scratch_len[slot] = nbytes;
    }
  return work->scratch[slot];
}

float *
_ruv_sona_scratch (RuvSonaWork *work,
                   int          slot,
                   gsize        n)
{
  return scratch_bytes (work, slot, n * sizeof (float));
}

void
_ruv_sona_work_clear (RuvSonaWork *work)
{
  int i;

  for (i = 0; i < N_SCRATCH; i++)
    g_clear_pointer (&work->scratch[i], g_free);
  memset (work, 0, sizeof *work);
}

/* ---- the backward pass --------------------------------------------------------------- */

static float
dot (const float *a,
     const float *b,
     gint64       n)
{
  return rk_get_traits (RK_TYPE_F32)->vec_dot ((int) n, a, b);
}

/* h = rmsnorm (x) * output_norm; returns 1 / rms. In float with the
 * kernels' dot, as the forward pass's rmsnorm. */
static double
head_norm (const RuvWeights *w,
           const float      *x,
           float            *h)
{
  gint64 n = w->hp.n_embd, i;
  float inv = (float) (1.0 / sqrt ((double) dot (x, x, n) / (double) n + w->hp.rms_eps));

  if (w->output_norm != NULL)
    for (i = 0; i < n; i++)
      h[i] = (x[i] * inv) * w->output_norm[i];
  else
    for (i = 0; i < n; i++)
      h[i] = x[i] * inv;
  return inv;
}

/* Back through h = w * x / rms given gh = dJ/dh (scaled by w in place):
 * dJ/dx = (g - xh * mean (g * xh)) / rms, g = dJ/dh * w, xh = x / rms. */
static void
head_norm_backward (const RuvWeights *w,
                    const float      *x,
                    double            inv,
                    float            *gh,
                    float            *dj_dx)
{
  gint64 n = w->hp.n_embd, i;
  float fi = (float) inv, mg;

  if (w->output_norm != NULL)
    for (i = 0; i < n; i++)
      gh[i] *= w->output_norm[i];
  mg = dot (gh, x, n) * fi / (float) n;
  for (i = 0; i < n; i++)
    dj_dx[i] = (gh[i] - (x[i] * fi) * mg) * fi;
}

/* Full vocabulary: J_t = log softmax (W_out h)[y]; the logits come from the
 * same matmul kernel as the forward pass (so J is the engine's own log p),
 * dJ/dh = W[y] - sum_c p_c W[c] from dequantized row chunks. */
static double
head_full (RuvSonaLlm  *self,
           RuvSonaWork *work,
           const float *x,
           gint32       y,
           float       *dj_dx)
{
  const RuvWeights *w = self->w;
  const RuvWeight *wo = &w->output;
  gint64 n = w->hp.n_embd, nv = w->hp.n_vocab, c, c0;
  float *h = _ruv_sona_scratch (work, SC_H, n);
  float *z = _ruv_sona_scratch (work, SC_Z, nv);
  double inv, zmax = -INFINITY, sum = 0.0, jt;

  if (y < 0 || y >= nv)
    return NAN;
  work->rows_serial = 0;   /* SC_ROWS is reused below */
  inv = head_norm (w, x, h);
  rk_matmul (NULL, wo->type, wo->data, wo->row_stride, nv, n, h, n, 1, z, nv,
             scratch_bytes (work, SC_MATMUL, MAX (rk_matmul_scratch_size (wo->type, n, 1), 1)));
  for (c = 0; c < nv; c++)
    zmax = MAX (zmax, z[c]);
  for (c = 0; c < nv; c++)
    sum += exp (z[c] - zmax);
  jt = z[y] - zmax - log (sum);
  if (dj_dx == NULL || !isfinite (jt))
    return jt;
  {
    float *gh = _ruv_sona_scratch (work, SC_GH, n);
    float *rows = _ruv_sona_scratch (work, SC_ROWS, HEAD_CHUNK * n);

    memset (gh, 0, n * sizeof (float));
    for (c0 = 0; c0 < nv; c0 += HEAD_CHUNK)
      {
        gint64 m = MIN (HEAD_CHUNK, nv - c0);
        gint32 seq[HEAD_CHUNK];

        for (c = 0; c < m; c++)
          seq[c] = (gint32) (c0 + c);
        rk_get_rows (wo->type, wo->data, wo->row_stride, n, seq, m, rows);
        for (c = 0; c < m; c++)
          {
            float coef = (c0 + c == y ? 1.0f : 0.0f) - (float) (exp (z[c0 + c] - zmax) / sum);

            if (coef != 0.0f)
              rk_axpy (gh, coef, rows + c * n, (int) n);
          }
      }
    head_norm_backward (w, x, inv, gh, dj_dx);
  }
  return jt;
}

/* Sampled softmax over the candidates of every selected position at once:
 * the distinct candidate ids (top-K of each position plus its target) are
 * collected, their LM-head rows dequantized once into SC_ROWS (shared by the
 * positions, and by the logits and the gradient), then per position
 *   J_t = log softmax_S (R h)[y],  dJ/dh = R[y] - sum_c p_c R[c].
 * x: (nsel, n) residuals; dj: (nsel, n) or NULL. Returns sum_t J_t. */
static double
head_candidates (RuvSonaLlm         *self,
                 RuvSonaWork        *work,
                 const RuvSonaTrace *tr,
                 const gint64       *pos,
                 gint64              nsel,
                 gint64              k,
                 const float        *xs,
                 float              *dj)
{
  const RuvWeights *w = self->w;
  const RuvWeight *wo = &w->output;
  gint64 n = w->hp.n_embd, nv = w->hp.n_vocab, kk = k + 1, j, c;
  gint32 *ids = scratch_bytes (work, SC_IDS, nsel * kk * sizeof (gint32));
  gint32 *slot = scratch_bytes (work, SC_SLOT, nsel * kk * sizeof (gint32));
  gint32 *uniq = scratch_bytes (work, SC_UNIQ, nsel * kk * sizeof (gint32));
  gint64 *ns = scratch_bytes (work, SC_NS, nsel * sizeof (gint64));
  gint64 hsize = 64, n_uniq = 0;
  gint32 *hash;
  float *rows, *h, *z, *gh;
  double jsum = 0.0;

  if (work->rows_serial == tr->serial && work->rows_nsel == nsel && work->rows_k == k)
    {
      n_uniq = work->rows_n_uniq;
      goto have_rows;
    }
  work->rows_serial = 0;
  while (hsize < 2 * nsel * kk)
    hsize *= 2;
  hash = scratch_bytes (work, SC_HASH, hsize * sizeof (gint32));
  memset (hash, 0xff, hsize * sizeof (gint32));

  /* per position: candidates (valid, distinct) plus the target */
  for (j = 0; j < nsel; j++)
    {
      const gint32 *cand = tr->cand + pos[j] * tr->n_cand;
      gint32 y = tr->target[pos[j]], *id = ids + j * kk;
      gboolean has_y = FALSE;
      gint64 m = 0, i, q;

      if (y < 0 || y >= nv)
        return NAN;
      for (i = 0; i < k; i++)
        {
          gboolean dup = FALSE;

          if (cand[i] < 0 || cand[i] >= nv)
            continue;
          for (q = 0; q < m && !dup; q++)
            dup = id[q] == cand[i];
          if (!dup)
            id[m++] = cand[i];
          has_y |= cand[i] == y;
        }
      if (!has_y)
        id[m++] = y;
      ns[j] = m;
      for (i = 0; i < m; i++)
        {
          guint64 hk = ((guint64) (guint32) id[i] * G_GUINT64_CONSTANT (0x9E3779B97F4A7C15)) >> 40;
          gint64 b = (gint64) (hk & (guint64) (hsize - 1));

          while (hash[b] >= 0 && uniq[hash[b]] != id[i])
            b = (b + 1) & (hsize - 1);
          if (hash[b] < 0)
            {
              hash[b] = (gint32) n_uniq;
              uniq[n_uniq++] = id[i];
            }
          slot[j * kk + i] = hash[b];
        }
    }

  rows = _ruv_sona_scratch (work, SC_ROWS, n_uniq * n);
  rk_get_rows (wo->type, wo->data, wo->row_stride, n, uniq, n_uniq, rows);
  work->rows_serial = tr->serial;
  work->rows_nsel = nsel;
  work->rows_k = k;
  work->rows_n_uniq = n_uniq;

have_rows:
  rows = _ruv_sona_scratch (work, SC_ROWS, n_uniq * n);
  h = _ruv_sona_scratch (work, SC_H, n);
  gh = _ruv_sona_scratch (work, SC_GH, n);
  z = _ruv_sona_scratch (work, SC_Z, kk);
  for (j = 0; j < nsel; j++)
    {
      const float *x = xs + j * n;
      const gint32 *id = ids + j * kk, *sl = slot + j * kk;
      gint32 y = tr->target[pos[j]];
      double inv = head_norm (w, x, h), zmax = -INFINITY, sum = 0.0, jt = NAN;

      for (c = 0; c < ns[j]; c++)
        {
          z[c] = dot (rows + (gint64) sl[c] * n, h, n);
          zmax = MAX (zmax, z[c]);
        }
      for (c = 0; c < ns[j]; c++)
        sum += exp (z[c] - zmax);
      for (c = 0; c < ns[j]; c++)
        if (id[c] == y)
          jt = z[c] - zmax - log (sum);
      if (!isfinite (jt))
        return NAN;
      jsum += jt;
      if (dj == NULL)
        continue;
      memset (gh, 0, n * sizeof (float));
      for (c = 0; c < ns[j]; c++)
        {
          float coef = (id[c] == y ? 1.0f : 0.0f) - (float) (exp (z[c] - zmax) / sum);

          rk_axpy (gh, coef, rows + (gint64) sl[c] * n, (int) n);
        }
      head_norm_backward (w, x, inv, gh, dj + j * n);
    }
  return jsum;
}

/* Row pointers to adapter a's inputs at the selected positions (f16 traces
 * are converted into SC_HALF). */
static const float *const *
trace_rows (RuvSonaWork        *work,
            const RuvSonaTrace *tr,
            gsize               a,
            const gint64       *pos,
            gint64              nsel)
{
  const float **rp = scratch_bytes (work, SC_ROWP, nsel * sizeof (float *));
  gint64 nin = tr->ad_n_in[a], j;

  if (tr->half)
    {
      float *buf = _ruv_sona_scratch (work, SC_HALF, nsel * nin);

      for (j = 0; j < nsel; j++)
        {
          trace_get_input (tr, a, pos[j], buf + j * nin);
          rp[j] = buf + j * nin;
        }
    }
  else
    for (j = 0; j < nsel; j++)
      rp[j] = (const float *) tr->inputs[a] + pos[j] * nin;
  return rp;
}

/* Mean J over the chosen positions; with weight != 0 accumulates
 * weight * dJ/dtheta into lora's gradients (all or nothing). The caller
 * holds the lock guarding work and lora. Allocates nothing once the scratch
 * buffers have grown to the trace's size. */
double
_ruv_sona_pass (RuvSonaLlm         *self,
                RuvSonaWork        *work,
                RuvMicroLora       *lora,
                const RuvSonaTrace *tr,
                gint                max_tokens,
                gint                n_cand,
                gboolean            backward,
                float               weight,
                gboolean            train)
{
  gint64 n = tr->n_embd, T = tr->n_tok, nsel, j, k, i;
  gint64 *pos;
  float *xs, *dj = NULL, *ax, *axa;
  double jsum = 0.0;
  gsize a, n_ax;

  if (n != self->w->hp.n_embd || !trace_matches (tr, lora))
    return NAN;
  for (j = 0; j < T; j++)
    if (!tr->is_set[j])
      return NAN;

  nsel = max_tokens > 0 && T > max_tokens ? max_tokens : T;
  pos = scratch_bytes (work, SC_POS, nsel * sizeof (gint64));
  for (j = 0; j < nsel; j++)
    pos[j] = nsel == T ? j : (j * T) / nsel;
  k = n_cand > 0 && tr->n_cand > 0 ? MIN (n_cand, tr->n_cand) : 0;

  /* x_t = x_base_t + sum_a s B_a (A_a u_{a,t}); with B transposed the
   * rank-1/2 expansion is one axpy per rank (the kernels' SIMD) */
  xs = _ruv_sona_scratch (work, SC_X, nsel * n);
  for (j = 0; j < nsel; j++)
    memcpy (xs + j * n, tr->x_base + pos[j] * n, n * sizeof (float));
  n_ax = 0;
  for (a = 0; a < tr->n_adapters; a++)
    if (tr->inputs[a] != NULL)
      n_ax += (gsize) nsel * tr->ad_rank[a];
  ax = _ruv_sona_scratch (work, SC_AX, MAX (n_ax, 1));
  for (a = 0, axa = ax; a < tr->n_adapters; a++)
    if (tr->inputs[a] != NULL)
      {
        const RuvLoraAdapter *ad = ruv_micro_lora_get_adapter (lora, a);
        const float *const *rp = trace_rows (work, tr, a, pos, nsel);
        float *bt = _ruv_sona_scratch (work, SC_BT, (gsize) ad->rank * ad->n_out);
        gint r;

        for (i = 0; i < ad->n_out; i++)
          for (r = 0; r < ad->rank; r++)
            bt[r * ad->n_out + i] = ad->b[i * ad->rank + r];
        for (j = 0; j < nsel; j++)
          for (r = 0; r < ad->rank; r++)
            {
              float u = dot (ad->a + r * ad->n_in, rp[j], ad->n_in);

              axa[j * ad->rank + r] = u;
              if (u != 0.0f)
                rk_axpy (xs + j * n, u * ad->scale, bt + r * ad->n_out, (int) ad->n_out);
            }
        axa += (gsize) nsel * ad->rank;
      }

  dj = backward ? _ruv_sona_scratch (work, SC_DJ, nsel * n) : NULL;
  if (k > 0)
    {
      jsum = head_candidates (self, work, tr, pos, nsel, k, xs, dj);
      if (!isfinite (jsum))
        return NAN;
    }
  else
    for (j = 0; j < nsel; j++)
      {
        double jt = head_full (self, work, xs + j * n, tr->target[pos[j]],
                               backward ? dj + j * n : NULL);

        if (!isfinite (jt))
          return NAN;
        jsum += jt;
      }
  if (backward)
    {
      guint32 bad = 0;
      float inv = 1.0f / (float) nsel;

      /* no early exit, so the loop vectorises; a non-finite value has an
       * all-ones exponent */
      for (i = 0; i < nsel * n; i++)
        {
          guint32 bits;

          dj[i] *= inv;
          memcpy (&bits, dj + i, sizeof bits);
          bad |= (bits & 0x7f800000u) == 0x7f800000u;
        }
      if (bad)
        return NAN;
      for (a = 0, axa = ax; a < tr->n_adapters; a++)
        if (tr->inputs[a] != NULL)
          {
            const float *const *rp = trace_rows (work, tr, a, pos, nsel);

            /* inputs were checked when the trace was filled, dj just above;
             * A u from above unless dropout draws a new input */
            if (train && ruv_micro_lora_get_config (lora)->dropout > 0.0f)
              ruv_micro_lora_accumulate_checked (lora, a, rp, dj, nsel, weight, train, FALSE);
            else
              ruv_micro_lora_accumulate_ax (lora, a, rp, axa, dj, nsel, weight);
            axa += (gsize) nsel * tr->ad_rank[a];
          }
    }
  return jsum / (double) nsel;
}

double
ruv_sona_llm_trace_objective (RuvSonaLlm         *self,
                              const RuvSonaTrace *trace,
                              gint                max_tokens,
                              gint                n_cand)
{
  double j;

  g_mutex_lock (&self->lock);
  j = _ruv_sona_pass (self, &self->work, self->lora, trace, max_tokens, n_cand, FALSE, 0.0f,
                      FALSE);
  g_mutex_unlock (&self->lock);
  return j;
}

double
_ruv_sona_backward_locked (RuvSonaLlm         *self,
                           const RuvSonaTrace *trace,
                           gint                max_tokens,
                           gint                n_cand,
                           float               weight,
                           gboolean            train,
                           float               quality)
{
  double j = _ruv_sona_pass (self, &self->work, self->lora, trace, max_tokens, n_cand, TRUE,
                             weight, train);

  if (isfinite (j))
    ruv_micro_lora_count_sample (self->lora, quality);
  return j;
}

double
ruv_sona_llm_trace_backward (RuvSonaLlm         *self,
                             const RuvSonaTrace *trace,
                             gint                max_tokens,
                             gint                n_cand,
                             float               weight,
                             gboolean            train)
{
  double j;

  g_mutex_lock (&self->lock);
  j = _ruv_sona_backward_locked (self, trace, max_tokens, n_cand, weight, train, 0.5f);
  g_mutex_unlock (&self->lock);
  return j;
}
