/* Conv with one input channel per group (depthwise, with any channel multiplier), float32.
 *
 * Its im2col GEMM would have a depth of only kh*kw, so it runs direct kernels instead. 1-D and
 * 2-D with a channel multiplier of 1 (the common case: MobileNet, EfficientNet) have their own
 * kernels: with AVX2, stride 1 or 2 and no dilation, each plane is copied into a zero-padded
 * buffer and computed in whole vectors (dw_plane_padded_avx2); wider planes, dilated ones and
 * the generic ISA split each row into an interior and a border (dw2d_task). Everything else
 * runs depthwise_task. Channels are split evenly between the threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/conv_util.h"
#include "devices/cpu/cpu.h"
#include "devices/cpu/gemm_util.h"
#include "devices/cpu/nn_util.h"
#include "devices/cpu/vmath_avx2.h"

/* ---- float32: direct kernel for one input channel per group --------------------------- */

typedef struct dw_job {
  cpu_ctx *ctx;
  const conv_plan *p;
  const float *x, *w, *b;
  float *y;
} dw_job;

static void depthwise_task(void *arg, size_t begin, size_t end) {
  const dw_job *j = arg;
  const conv_plan *p = j->p;
  const nn_window *w = &p->w;
  for (size_t plane = begin; plane < end; plane++) {
    size_t n = plane / p->M, m = plane % p->M;
    const float *xp = j->x + (n * p->C + m / p->mg) * p->in_sp;
    const float *wk = j->w + m * p->kk;
    float *yp = j->y + plane * p->out_sp;
    float bias = j->b ? j->b[m] : 0.0f;
    for (size_t i = 0; i < p->out_sp; i++)
      yp[i] = bias;
    for (int64_t oz = 0; oz < w->out[0]; oz++)
      for (int64_t oy = 0; oy < w->out[1]; oy++) {
        float *yrow = yp + (oz * w->out[1] + oy) * w->out[2];
        for (int64_t kz = 0; kz < w->k[0]; kz++) {
          int64_t iz = oz * w->s[0] - w->pb[0] + kz * w->d[0];
          if (iz < 0 || iz >= w->in[0])
            continue;
          for (int64_t ky = 0; ky < w->k[1]; ky++) {
            int64_t iy = oy * w->s[1] - w->pb[1] + ky * w->d[1];
            if (iy < 0 || iy >= w->in[1])
              continue;
            const float *xrow = xp + (iz * w->in[1] + iy) * w->in[2];
            const float *wrow = wk + (kz * w->k[1] + ky) * w->k[2];
            for (int64_t kx = 0; kx < w->k[2]; kx++) {
              int64_t offx = kx * w->d[2] - w->pb[2], lo, hi;
              valid_range(w->out[2], w->s[2], offx, w->in[2], &lo, &hi);
              float wv = wrow[kx];
              if (w->s[2] == 1)
                cpu_saxpy(j->ctx, (size_t)(hi - lo), wv, xrow + lo + offx, yrow + lo);
              else
                for (int64_t o = lo; o < hi; o++)
                  yrow[o] += wv * xrow[o * w->s[2] + offx];
            }
          }
        }
      }
    cpu_act_apply_row(j->ctx->isa, &p->act, yp, p->out_sp);
  }
}

/* ---- float32: depthwise 1-D/2-D, one channel per group and multiplier 1 ----------------- */

/* The common depthwise layer (MobileNet, EfficientNet): each output plane comes from one input
 * plane. The plane splits into an interior, where the whole window lies inside the input and no
 * tap needs a bounds check, and a border computed point by point. Interior rows are computed a
 * run of output columns at a time, all taps accumulated in registers (AVX2: eight columns per
 * vector, stride 1 or 2, dilation 1) or in a small block the compiler vectorises (generic), and
 * stored once with the bias and the activation, so the plane is written exactly once. */

#define ALWAYS_INLINE inline __attribute__((always_inline))

typedef struct dw_plane {
  const float *x;  /* the input plane */
  const float *wk; /* kh*kw taps */
  float *y;        /* the output plane */
  float bias;
  cpu_act act;
  int64_t ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
  int64_t ox_lo, ox_hi; /* interior columns */
  int64_t ky0, ky1;     /* the current row's kernel rows inside the input */
} dw_plane;

/* One output point with bounds checks, for the border. */
static float dw_point(const dw_plane *q, int64_t oy, int64_t ox) {
  float s = q->bias;
  for (int64_t ky = 0; ky < q->kh; ky++) {
    int64_t iy = oy * q->sh - q->ph + ky * q->dh;
    if (iy < 0 || iy >= q->ih)
      continue;
    const float *xr = q->x + iy * q->iw;
    const float *wr = q->wk + ky * q->kw;
    for (int64_t kx = 0; kx < q->kw; kx++) {
      int64_t ix = ox * q->sw - q->pw + kx * q->dw;
      if (ix >= 0 && ix < q->iw)
        s += wr[kx] * xr[ix];
    }
  }
  return cpu_act_apply(&q->act, s);
}

/* Block of the generic interior loop, in floats: small enough for L1, long enough to vectorise. */
#define DW_BLOCK 64

/* Interior columns [o0, o0 + n) of row oy over kernel rows [q->ky0, q->ky1), those inside the
 * input. S is the column stride when it is a compile-time 1 or 2, else 0 (then q->sw). */
static ALWAYS_INLINE void dw_row_generic_s(const dw_plane *q, int64_t oy, int64_t o0, int64_t n,
                                           int S) {
  const float *x0 = q->x + (oy * q->sh - q->ph) * q->iw - q->pw;
  float *yr = q->y + oy * q->ow;
  int64_t sw = S ? S : q->sw;
  float acc[DW_BLOCK];
  for (int64_t b = o0; b < o0 + n; b += DW_BLOCK) {
    int64_t len = o0 + n - b < DW_BLOCK ? o0 + n - b : DW_BLOCK;
    for (int64_t i = 0; i < len; i++)
      acc[i] = q->bias;
    for (int64_t ky = q->ky0; ky < q->ky1; ky++) {
      const float *xr = x0 + ky * q->dh * q->iw + b * sw;
      for (int64_t kx = 0; kx < q->kw; kx++) {
        const float *src = xr + kx * q->dw;
        float wv = q->wk[ky * q->kw + kx];
        for (int64_t i = 0; i < len; i++)
          acc[i] += wv * src[i * sw];
      }
    }
    for (int64_t i = 0; i < len; i++)
      yr[b + i] = cpu_act_apply(&q->act, acc[i]);
  }
}

static void dw_row_generic(const dw_plane *q, int64_t oy, int64_t o0, int64_t n) {
  if (q->sw == 1)
    dw_row_generic_s(q, oy, o0, n, 1);
  else if (q->sw == 2)
    dw_row_generic_s(q, oy, o0, n, 2);
  else
    dw_row_generic_s(q, oy, o0, n, 0);
}

/* The smooth activations cost a polynomial per element: eight lanes at a time they cost about
 * eight times less, so kernels that finish outputs point by point leave them to a pass over
 * each finished row (cpu_act_apply_row) instead of applying them point by point. That pass
 * also beats applying them to each vector as it is stored: alone, one smooth activation is a
 * chain of some twenty dependent operations, which a loop of independent vectors overlaps. */
static bool dw_act_smooth(const cpu_act *a) {
  return a->kind == CPU_ACT_SIGMOID || a->kind == CPU_ACT_SILU || a->kind == CPU_ACT_GELU ||
         a->kind == CPU_ACT_GELU_TANH;
}

#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define DW_HAVE_AVX2 1
#define DW_AVX2 __attribute__((target("avx2,fma")))
/* -O2 does not peel these small constant loops by itself; unpeeled, the accumulators of
 * dw_block_avx2 would live in memory. Loops with a run-time count stay loops. */
#define DW_UNROLL _Pragma("GCC unroll 8")

/* Eight columns of stride S from p. For S == 2 they come out in the order 0,2,8,10,4,6,12,14
 * (loads p[0..7] and p[7..14], so nothing past the last column is read); every tap of an
 * output vector has the same order, and dw_unscramble restores it once, before the store. */
DW_AVX2 static ALWAYS_INLINE __m256 dw_ld8(const float *p, int S) {
  if (S == 1)
    return _mm256_loadu_ps(p);
  __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 7);
  return _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));
}

DW_AVX2 static ALWAYS_INLINE __m256 dw_unscramble(__m256 v, int S) {
  if (S == 1)
    return v;
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* cpu_act_apply on eight values, with the same results (NaN and signed zeros included):
 * max_ps(a, b) is a > b ? a : b and min_ps(a, b) is a < b ? a : b. */
DW_AVX2 static ALWAYS_INLINE __m256 dw_act8(const cpu_act *a, __m256 v) {
  __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  switch (a->kind) {
  case CPU_ACT_RELU: return _mm256_max_ps(zero, v);
  case CPU_ACT_CLIP:
    return _mm256_min_ps(_mm256_set1_ps(a->p1), _mm256_max_ps(_mm256_set1_ps(a->p0), v));
  case CPU_ACT_LEAKYRELU:
    return _mm256_blendv_ps(v, _mm256_mul_ps(_mm256_set1_ps(a->p0), v),
                            _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
  case CPU_ACT_HARDSIGMOID: {
    __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(a->p0), v), _mm256_set1_ps(a->p1));
    return _mm256_min_ps(one, _mm256_max_ps(zero, t));
  }
  case CPU_ACT_HARDSWISH: {
    __m256 t =
        _mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps((float)(1.0 / 6.0))), _mm256_set1_ps(0.5f));
    return _mm256_mul_ps(v, _mm256_min_ps(one, _mm256_max_ps(zero, t)));
  }
  case CPU_ACT_SIGMOID:
  case CPU_ACT_SILU:
  case CPU_ACT_GELU:
  case CPU_ACT_GELU_TANH: return cpu_act8_smooth(a, v); /* vmath_avx2.h */
  default: return v;
  }
}

/* NV vectors of eight outputs starting at column o of the row whose window starts at x0.
 * Taps of even and odd kernel rows go to separate accumulators, so 2*NV chains of FMAs run
 * independently. KH/KW are compile-time for 3x3 and 5x5 (fully unrolled), else 0. */
DW_AVX2 static ALWAYS_INLINE void dw_block_avx2(const dw_plane *q, const float *x0, float *yr,
                                                int64_t o, int S, int KH, int KW, int NV) {
  int64_t kh = KH ? KH : q->kh, kw = KW ? KW : q->kw;
  __m256 acc0[4], acc1[4];
  DW_UNROLL
  for (int v = 0; v < NV; v++) {
    acc0[v] = _mm256_set1_ps(q->bias);
    acc1[v] = _mm256_setzero_ps();
  }
  DW_UNROLL
  for (int64_t ky = 0; ky < kh; ky++) {
    if (ky < q->ky0 || ky >= q->ky1)
      continue;
    const float *xr = x0 + ky * q->iw + o * S;
    const float *wr = q->wk + ky * kw;
    DW_UNROLL
    for (int64_t kx = 0; kx < kw; kx++) {
      __m256 wv = _mm256_broadcast_ss(wr + kx);
      DW_UNROLL
      for (int v = 0; v < NV; v++) {
        __m256 xv = dw_ld8(xr + kx + 8 * v * S, S);
        if (ky & 1)
          acc1[v] = _mm256_fmadd_ps(wv, xv, acc1[v]);
        else
          acc0[v] = _mm256_fmadd_ps(wv, xv, acc0[v]);
      }
    }
  }
  DW_UNROLL
  for (int v = 0; v < NV; v++)
    _mm256_storeu_ps(yr + o + 8 * v,
                     dw_act8(&q->act, dw_unscramble(_mm256_add_ps(acc0[v], acc1[v]), S)));
}

DW_AVX2 static ALWAYS_INLINE void dw_row_avx2_k(const dw_plane *q, int64_t oy, int S, int KH,
                                                int KW) {
  int64_t lo = q->ox_lo, hi = q->ox_hi;
  const float *x0 = q->x + (oy * q->sh - q->ph) * q->iw - q->pw;
  float *yr = q->y + oy * q->ow;
  if (hi - lo < 8) {
    dw_row_generic_s(q, oy, lo, hi - lo, S);
    return;
  }
  int64_t o = lo;
  for (; o + 32 <= hi; o += 32)
    dw_block_avx2(q, x0, yr, o, S, KH, KW, 4);
  for (; o + 8 <= hi; o += 8)
    dw_block_avx2(q, x0, yr, o, S, KH, KW, 1);
  /* The last columns again as one full vector ending at hi: the outputs are stored, not
   * accumulated, so computing a few of them twice is harmless. */
  if (o < hi)
    dw_block_avx2(q, x0, yr, hi - 8, S, KH, KW, 1);
}

DW_AVX2 static void dw_row_avx2(const dw_plane *q, int64_t oy) {
  bool k3 = q->kh == 3 && q->kw == 3, k5 = q->kh == 5 && q->kw == 5;
  if (q->sw == 1) {
    if (k3)
      dw_row_avx2_k(q, oy, 1, 3, 3);
    else if (k5)
      dw_row_avx2_k(q, oy, 1, 5, 5);
    else
      dw_row_avx2_k(q, oy, 1, 0, 0);
  } else {
    if (k3)
      dw_row_avx2_k(q, oy, 2, 3, 3);
    else if (k5)
      dw_row_avx2_k(q, oy, 2, 5, 5);
    else
      dw_row_avx2_k(q, oy, 2, 0, 0);
  }
}

/* Output widths up to these go through the padded buffer (measured on MobileNet's layers). */
#define DW_PAD_MAX_OW 128
#define DW_PAD_MAX_OW_S2 256

/* The padded path: each plane is copied once into a zero-padded buffer and every output row is
 * computed in whole vectors without bounds checks; the last vector of a row is stored through a
 * small buffer, so nothing past the row is written. Stride 2 reads eight columns through
 * dw_ld8 (two loads and a shuffle). Measured against rows split into even and odd columns
 * (one load per tap, but a deinterleaving copy): as fast at 112 columns, slower at 56.
 *
 * Layout: bh rows of bw floats (and eight floats of slack). */
typedef struct dw_pad_geom {
  int64_t bh, bw; /* rows, row stride */
} dw_pad_geom;

static dw_pad_geom dw_pad_dims(const dw_plane *q) {
  dw_pad_geom g;
  int64_t owv = (q->ow + 7) / 8 * 8;
  g.bh = (q->oh - 1) * q->sh + q->kh;
  if (q->sw == 1) /* the last vector reads up to column owv - 1 + kw - 1 */
    g.bw = (owv + q->kw - 1 + 7) / 8 * 8;
  else /* dw_ld8 loads 15 floats from the last vector's start, (owv - 8) * 2 + kw - 1 */
    g.bw = (2 * owv + q->kw - 2 + 7) / 8 * 8;
  return g;
}

/* Eight floats of slack after the rows: dw_copy_row stores whole vectors. */
static size_t dw_pad_floats(const dw_pad_geom *g) { return (size_t)(g->bh * g->bw + 8); }

/* A mask of the first n (0..8) lanes. */
DW_AVX2 static ALWAYS_INLINE __m256i dw_mask(int64_t n) {
  static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}

/* n floats from s to d in whole vectors: the last one is loaded through a mask (nothing past
 * s + n is read) and stored whole, so it writes zeros to up to seven floats after d + n. */
DW_AVX2 static ALWAYS_INLINE void dw_copy_row(float *d, const float *s, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i, _mm256_loadu_ps(s + i));
  if (i < n)
    _mm256_storeu_ps(d + i, _mm256_maskload_ps(s + i, dw_mask(n - i)));
}

/* Copies plane q into buf, which holds zeros wherever padding goes: dw2d_task clears it
 * once, and the padding lies at the same places for every plane of the node. Rows are copied
 * in ascending order, so the zeros that dw_copy_row writes past a row land on padding or on
 * the next row before it is copied. */
DW_AVX2 static void dw_pad_fill(const dw_plane *q, float *buf, const dw_pad_geom *g) {
  int64_t r0 = q->ph, r1 = q->ih + q->ph < g->bh ? q->ih + q->ph : g->bh;
  int64_t n = q->iw < g->bw - q->pw ? q->iw : g->bw - q->pw;
  for (int64_t r = r0; r < r1; r++) {
    if (n > 0)
      dw_copy_row(buf + r * g->bw + q->pw, q->x + (r - q->ph) * q->iw, n);
  }
}

/* NV vectors of eight outputs of row yr from column o, the window's rows starting at x0 in the
 * padded buffer. Even and odd kernel rows accumulate separately: 2 * NV independent chains of
 * FMAs, enough to cover their latency. S is the stride, 1 or 2. */
DW_AVX2 static ALWAYS_INLINE void dw_pad_block(const dw_plane *q, const float *x0, int64_t bw,
                                               float *yr, int64_t o, int S, int KH, int KW,
                                               int NV) {
  int64_t kh = KH ? KH : q->kh, kw = KW ? KW : q->kw;
  __m256 acc0[4], acc1[4];
  DW_UNROLL
  for (int v = 0; v < NV; v++) {
    acc0[v] = _mm256_set1_ps(q->bias);
    acc1[v] = _mm256_setzero_ps();
  }
  DW_UNROLL
  for (int64_t ky = 0; ky < kh; ky++) {
    const float *xr = x0 + ky * bw + o * S;
    const float *wr = q->wk + ky * kw;
    DW_UNROLL
    for (int64_t kx = 0; kx < kw; kx++) {
      __m256 wv = _mm256_broadcast_ss(wr + kx);
      const float *src = xr + kx;
      DW_UNROLL
      for (int v = 0; v < NV; v++) {
        __m256 xv = S == 2 ? dw_ld8(src + 16 * v, 2) : _mm256_loadu_ps(src + 8 * v);
        if (ky & 1)
          acc1[v] = _mm256_fmadd_ps(wv, xv, acc1[v]);
        else
          acc0[v] = _mm256_fmadd_ps(wv, xv, acc0[v]);
      }
    }
  }
  DW_UNROLL
  for (int v = 0; v < NV; v++) {
    __m256 r = _mm256_add_ps(acc0[v], acc1[v]);
    r = dw_act8(&q->act, S == 2 ? dw_unscramble(r, 2) : r);
    int64_t at = o + 8 * v;
    if (at + 8 <= q->ow) {
      _mm256_storeu_ps(yr + at, r);
    } else {
      /* Not maskstore_ps: on AMD cores a masked store costs more than this. */
      _Alignas(32) float t[8];
      _mm256_store_ps(t, r);
      memcpy(yr + at, t, (size_t)(q->ow - at) * sizeof *t);
    }
  }
}

DW_AVX2 static ALWAYS_INLINE void dw_padded_k(const dw_plane *q, const float *buf,
                                              const dw_pad_geom *g, int S, int KH, int KW) {
  const cpu_act act = q->act;
  /* A local copy: stores to the output cannot alias it, so the taps, the bias and the
   * activation stay in registers across the row instead of being reloaded after each store. */
  dw_plane lq = *q;
  /* A smooth activation goes over the finished plane in one pass (the plane is in cache):
   * applied to each vector as it is stored, its long dependent chain stalls the kernel. */
  bool smooth = dw_act_smooth(&q->act);
  if (smooth)
    lq.act.kind = CPU_ACT_NONE;
  q = &lq;
  int64_t owv = (q->ow + 7) / 8 * 8;
  for (int64_t oy = 0; oy < q->oh; oy++) {
    const float *x0 = buf + oy * q->sh * g->bw;
    float *yr = q->y + oy * q->ow;
    int64_t o = 0;
    for (; o + 32 <= owv; o += 32)
      dw_pad_block(q, x0, g->bw, yr, o, S, KH, KW, 4);
    if (o + 16 <= owv) {
      dw_pad_block(q, x0, g->bw, yr, o, S, KH, KW, 2);
      o += 16;
    }
    if (o < owv)
      dw_pad_block(q, x0, g->bw, yr, o, S, KH, KW, 1);
  }
  if (smooth)
    cpu_act_apply_row_avx2(&act, q->y, (size_t)(q->oh * q->ow));
}

/* The whole plane q through the padded buffer buf (dw_pad_floats(g) floats). */
DW_AVX2 static void dw_plane_padded_avx2(const dw_plane *q, float *buf, const dw_pad_geom *g) {
  dw_pad_fill(q, buf, g);
  bool k3 = q->kh == 3 && q->kw == 3, k5 = q->kh == 5 && q->kw == 5;
  if (q->sw == 1) {
    if (k3)
      dw_padded_k(q, buf, g, 1, 3, 3);
    else if (k5)
      dw_padded_k(q, buf, g, 1, 5, 5);
    else
      dw_padded_k(q, buf, g, 1, 0, 0);
  } else {
    if (k3)
      dw_padded_k(q, buf, g, 2, 3, 3);
    else if (k5)
      dw_padded_k(q, buf, g, 2, 5, 5);
    else
      dw_padded_k(q, buf, g, 2, 0, 0);
  }
}
#endif

typedef struct dw2d_job {
  const conv_plan *p;
  const float *x, *w, *b;
  float *y;
  cpu_isa isa;
  bool avx2; /* the AVX2 interior applies: stride 1 or 2 across, dilation 1 */
} dw2d_job;


static void dw2d_task(void *arg, size_t begin, size_t end) {
  const dw2d_job *j = arg;
  const conv_plan *p = j->p;
  const nn_window *w = &p->w;
  dw_plane q = {.act = p->act,
                .ih = w->in[1],
                .iw = w->in[2],
                .oh = w->out[1],
                .ow = w->out[2],
                .kh = w->k[1],
                .kw = w->k[2],
                .sh = w->s[1],
                .sw = w->s[2],
                .dh = w->d[1],
                .dw = w->d[2],
                .ph = w->pb[1],
                .pw = w->pb[2]};
  /* Interior columns: every tap inside the input, ox*s - pb >= 0 and ox*s - pb + (k-1)*d < in.
   * Rows are clipped instead: a row near the top or bottom runs the same kernels over the
   * kernel rows that lie inside, so only the left and right columns go point by point. */
  int64_t ekw = (q.kw - 1) * q.dw + 1;
  int64_t ox_lo = nn_ceildiv(q.pw, q.sw);
  int64_t ox_hi = q.iw + q.pw - ekw < 0 ? 0 : (q.iw + q.pw - ekw) / q.sw + 1;
  ox_lo = ox_lo > q.ow ? q.ow : ox_lo;
  ox_hi = ox_hi > q.ow ? q.ow : (ox_hi < ox_lo ? ox_lo : ox_hi);
  q.ox_lo = ox_lo, q.ox_hi = ox_hi;
  float *pad = NULL;
#ifdef DW_HAVE_AVX2
  dw_pad_geom pg = {0};
  if (j->avx2 && q.ow <= (q.sw == 1 ? DW_PAD_MAX_OW : DW_PAD_MAX_OW_S2)) {
    pg = dw_pad_dims(&q);
    pad = nn_alloc_aligned(dw_pad_floats(&pg), sizeof(float)); /* NULL: the path below */
    if (pad)
      memset(pad, 0, dw_pad_floats(&pg) * sizeof *pad);
  }
#endif
  /* The row path computes borders point by point: a smooth activation goes on each finished
   * row instead (the padded path applies it to each finished plane). */
  bool row_act = !pad && dw_act_smooth(&p->act);
  if (row_act)
    q.act.kind = CPU_ACT_NONE;
  for (size_t plane = begin; plane < end; plane++) {
    size_t c = plane % p->M;
    q.x = j->x + plane * p->in_sp;
    q.y = j->y + plane * p->out_sp;
    q.wk = j->w + c * p->kk;
    q.bias = j->b ? j->b[c] : 0.0f;
#ifdef DW_HAVE_AVX2
    if (pad) {
      dw_plane_padded_avx2(&q, pad, &pg);
      continue;
    }
#endif
    for (int64_t oy = 0; oy < q.oh; oy++) {
      float *yr = q.y + oy * q.ow;
      /* Kernel rows inside the input: iy = oy*sh - ph + ky*dh in [0, ih). */
      int64_t iy0 = oy * q.sh - q.ph;
      q.ky0 = iy0 >= 0 ? 0 : nn_ceildiv(-iy0, q.dh);
      q.ky1 = q.ih - iy0 <= 0 ? 0 : nn_ceildiv(q.ih - iy0, q.dh);
      q.ky0 = q.ky0 > q.kh ? q.kh : q.ky0;
      q.ky1 = q.ky1 > q.kh ? q.kh : (q.ky1 < q.ky0 ? q.ky0 : q.ky1);
      if (ox_hi == ox_lo) {
        for (int64_t ox = 0; ox < q.ow; ox++)
          yr[ox] = dw_point(&q, oy, ox);
        if (row_act)
          cpu_act_apply_row(j->isa, &p->act, yr, (size_t)q.ow);
        continue;
      }
      for (int64_t ox = 0; ox < ox_lo; ox++)
        yr[ox] = dw_point(&q, oy, ox);
#ifdef DW_HAVE_AVX2
      if (j->avx2)
        dw_row_avx2(&q, oy);
      else
#endif
        dw_row_generic(&q, oy, ox_lo, ox_hi - ox_lo);
      for (int64_t ox = ox_hi; ox < q.ow; ox++)
        yr[ox] = dw_point(&q, oy, ox);
      if (row_act)
        cpu_act_apply_row(j->isa, &p->act, yr, (size_t)q.ow);
    }
  }
  free(pad);
}

/* Whether the depthwise 1-D/2-D path applies: one input channel per group, one output channel
 * per input channel, no third spatial dimension. */
static bool dw2d_applies(const conv_plan *p) {
  return !p->transpose && p->cg == 1 && p->mg == 1 && p->G > 1 && p->w.in[0] == 1 &&
         p->w.out[0] == 1 && p->w.k[0] == 1 && p->w.pb[0] == 0;
}

static void dw2d_run(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *w,
                     const float *b, float *y) {
  dw2d_job j = {.p = p, .x = x, .w = w, .b = b, .y = y, .isa = ctx->isa};
#ifdef DW_HAVE_AVX2
  j.avx2 = ctx->isa == CPU_ISA_AVX2_FMA && (p->w.s[2] == 1 || p->w.s[2] == 2) && p->w.d[1] == 1 &&
           p->w.d[2] == 1;
#endif
  cpu_parallel_for(ctx, p->N * p->M, nn_grain(p->out_sp * p->kk, 1 << 15), dw2d_task, &j);
}

void cpu_conv_depthwise(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *w,
                        const float *b, float *y) {
  if (dw2d_applies(p)) {
    dw2d_run(ctx, p, x, w, b, y);
    return;
  }
  dw_job dj = {.ctx = ctx, .p = p, .x = x, .w = w, .b = b, .y = y};
  cpu_parallel_for(ctx, p->N * p->M, nn_grain(p->out_sp * p->kk, 1 << 15), depthwise_task, &dj);
}
