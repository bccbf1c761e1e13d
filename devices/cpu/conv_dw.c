/* Conv with one input channel per group (depthwise, with any channel multiplier), float32.
 *
 * Its im2col GEMM would have a depth of only kh*kw, so it runs direct kernels instead. 1-D and
 * 2-D with a channel multiplier of 1 (the common case: MobileNet, EfficientNet) have their own
 * kernels. With AVX2, 2-D windows run eight channels at once in an interleaved buffer (dwi_*,
 * any stride and dilation; bands of rows of a group of eight channels are the threads' work),
 * and the few channels past the last group of eight, 1-D windows and the smallest channel
 * counts run per plane: with stride 1 or 2 and no dilation each plane is copied into a
 * zero-padded buffer and computed in whole vectors (dw_plane_padded_avx2); wider planes,
 * dilated ones and the generic ISA split each row into an interior and a border (dw2d_task),
 * planes split evenly between the threads. Everything else runs depthwise_task. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/conv_util.h"
#include "devices/cpu/cpu.h"
#include "devices/cpu/gemm_util.h"
#include "devices/cpu/nchwc.h"
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

/* The geometry of p's planes (H and W of its window), with its activation. */
static dw_plane dw_plane_of(const conv_plan *p) {
  const nn_window *w = &p->w;
  return (dw_plane){.act = p->act,
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

/* The smooth activations (cpu_act_is_smooth) cost a polynomial per element: eight lanes at a
 * time they cost about eight times less, so kernels that finish outputs point by point leave
 * them to a pass over each finished row (cpu_act_apply_row) instead of applying them point by
 * point. That pass also beats applying them to each vector as it is stored: alone, one smooth
 * activation is a chain of some twenty dependent operations, which a loop of independent
 * vectors overlaps. */

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
                     cpu_act8(&q->act, dw_unscramble(_mm256_add_ps(acc0[v], acc1[v]), S)));
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
    r = cpu_act8(&q->act, S == 2 ? dw_unscramble(r, 2) : r);
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
  bool smooth = cpu_act_is_smooth(q->act.kind);
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

/* ---- float32: depthwise 1-D/2-D on AVX2, eight channels at once ------------------------- */

/* Multiplier 1 on AVX2, eight channels at a time (dwi_*): the rows of eight input planes are
 * transposed, eight by eight, into a zero-padded buffer of eight-float pixels P[row][col][8],
 * one lane per channel. An output pixel of the eight channels is then one vector,
 *   bias + sum over taps of W[ky][kx] * P[oy * sh + ky * dh][ox * sw + kx * dw],
 * so strides and dilations are only indexing (no shuffles) and the plane has no border to
 * treat apart. Eight output pixels that follow each other in the plane (a block may run into
 * the next row) accumulate in eight independent registers, take the activation as eight
 * independent vectors (the long chain of a smooth one overlaps eight times), and are
 * transposed back into eight output planes with whole-vector stores; a plane's last block
 * ends at its last pixel and so recomputes a few pixels of the one before.
 *
 * The buffer holds the input rows of a band of output rows, sized to stay in cache
 * (DWI_BAND_BYTES); a band moves the rows it shares with the one before to the buffer's top
 * rather than transposing them again. A last group of fewer than eight channels repeats its
 * last channel's input in the idle lanes, with zero weights, and does not store them; when
 * it has only a few channels, the per-plane path takes them instead (DWI_REST_MAX). */

/* Bytes of interleaved buffer a band aims at. Measured on Zen 4 (1 thread, 7x7 to 112x112
 * planes, 3x3 and 5x5, stride 1 and 2): 32 to 128 KiB within noise of each other, 16 KiB up
 * to 8% slower (28x28) and 256 KiB up to 9% slower (56x56, stride 1; the buffer then
 * competes with the planes for L2). */
#define DWI_BAND_BYTES ((size_t)64 << 10)
/* A buffer for one output row bigger than this (very wide rows) takes the per-plane path. */
#define DWI_MAX_BYTES ((size_t)1 << 20)

typedef struct dwi_geom {
  int64_t ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
  int64_t bw;     /* buffer columns, (ow - 1) * sw + (kw - 1) * dw + 1 */
  int64_t span;   /* input rows under one output row, (kh - 1) * dh + 1 */
  int64_t band;   /* output rows per band */
  int64_t nbands; /* bands per plane */
  int64_t brows;  /* buffer rows of a whole band, (band - 1) * sh + span */
  size_t groups;  /* groups of eight channels of each image that the path computes */
  size_t rest;    /* the first channel left to the per-plane path (C when none is) */
} dwi_geom;

#ifdef DW_HAVE_AVX2
/* The channels past the last whole group of eight go to the per-plane path when there are at
 * most this many: it computes them in about the time that a group with as many idle lanes
 * takes (measured on Zen 4, 1 thread: 112x112, 56x56 and 28x28 planes, 3x3 and 5x5, stride 1
 * and 2). With a smooth activation, which costs more than the convolution and which the
 * per-plane path applies to the real channels only, it is faster up to 7. */
#define DWI_REST_MAX 5
#define DWI_REST_MAX_SMOOTH 7

/* Fills g for the interleaved path; false when it does not apply: an empty output, rows too
 * wide for the buffer, a kernel of one row or column (1-D convolution: the per-plane path is
 * faster there, as the transposes cost more than its few taps; measured 1x3 and 1x5 on rows
 * of 300 to 16000), or too few channels. */
static bool dwi_plan(const conv_plan *p, dwi_geom *g) {
  const nn_window *w = &p->w;
  *g = (dwi_geom){.ih = w->in[1],
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
  size_t rest_max = cpu_act_is_smooth(p->act.kind) ? DWI_REST_MAX_SMOOTH : DWI_REST_MAX;
  if (g->oh <= 0 || g->ow <= 0 || g->kh < 2 || g->kw < 2 || p->C <= rest_max)
    return false;
  /* Window arithmetic stays inside int64 (NN_ATTR_LIMIT, NN_DIM_LIMIT); the products below
   * are compared in double so that no huge attribute overflows them. */
  g->bw = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1;
  g->span = (g->kh - 1) * g->dh + 1;
  double row_bytes = (double)g->bw * 8 * sizeof(float);
  if (row_bytes * (double)g->span > (double)DWI_MAX_BYTES)
    return false;
  int64_t rows = (int64_t)(DWI_BAND_BYTES / (size_t)row_bytes);
  int64_t band = rows > g->span ? (rows - g->span) / g->sh + 1 : 1;
  /* A band of at least one whole block, unless that makes the buffer too big (a narrow output
   * with a big stride): then blocks are cut short at the band's end. */
  int64_t least = (8 + g->ow - 1) / g->ow;
  if (band < least && ((double)(least - 1) * g->sh + g->span) * row_bytes <= DWI_MAX_BYTES)
    band = least;
  band = band > g->oh ? g->oh : band;
  g->nbands = (g->oh + band - 1) / band;
  g->band = (g->oh + g->nbands - 1) / g->nbands; /* bands of nearly equal height */
  g->brows = (g->band - 1) * g->sh + g->span;
  g->groups = p->C % 8 > rest_max ? (p->C + 7) / 8 : p->C / 8;
  g->rest = g->groups * 8 < p->C ? g->groups * 8 : p->C;
  return true;
}

/* Where one task works: its buffer, the current group's packed taps and bias, and the group's
 * eight input and output planes. */
typedef struct dwi_state {
  const dwi_geom *g;
  cpu_act act;
  float *buf;           /* g->brows rows of rs floats */
  size_t rs;            /* floats per buffer row: bw * 8 */
  const uint32_t *offs; /* pixel r of a band reads from buf + offs[r] */
  const float *wg;      /* the group's kh * kw taps of eight lanes (cpu_conv_dw_pack) */
  const float *bias;    /* its eight biases */
  const float *xs[8];   /* input planes; lanes past the group's channels repeat its last one */
  const float *x_end;   /* the end of the whole input: whole-vector reads stop there */
  float *ys[8];         /* output planes of the group's channels */
  int nc;               /* channels in the group, 1..8 */
  /* Blocked tensors (nchwc.h): the group's eight channels are one plane of eight-float
   * pixels, xb and yb, read into the buffer and stored without transposes. */
  bool blocked;
  const float *xb;
  float *yb;
} dwi_state;

/* Input rows [r0, r1) of the padded plane (row r is input row r - ph) into buffer rows from
 * b0 on. Columns outside the input are never written: the buffer starts zeroed and only rows
 * outside the input are cleared again, because an earlier band left data there. */
DW_AVX2 static void dwi_fill(const dwi_state *s, int64_t r0, int64_t r1, int64_t b0) {
  const dwi_geom *g = s->g;
  int64_t ncol = g->iw < g->bw - g->pw ? g->iw : g->bw - g->pw;
  for (int64_t r = r0; r < r1; r++) {
    float *d = s->buf + (size_t)(b0 + r - r0) * s->rs;
    int64_t iy = r - g->ph;
    if (iy < 0 || iy >= g->ih) {
      memset(d, 0, s->rs * sizeof *d);
      continue;
    }
    if (ncol <= 0) /* the padding on the left covers every column read */
      continue;
    d += g->pw * 8;
    if (s->blocked) {
      memcpy(d, s->xb + (size_t)(iy * g->iw) * 8, (size_t)ncol * 8 * sizeof *d);
      continue;
    }
    const float *src[8];
    for (int c = 0; c < 8; c++)
      src[c] = s->xs[c] + iy * g->iw;
    __m256 v[8];
    int64_t ix = 0;
    for (; ix + 8 <= ncol; ix += 8) {
      DW_UNROLL
      for (int c = 0; c < 8; c++)
        v[c] = _mm256_loadu_ps(src[c] + ix);
      cpu_tr8x8(v);
      DW_UNROLL
      for (int c = 0; c < 8; c++)
        _mm256_store_ps(d + (ix + c) * 8, v[c]);
    }
    if (ix < ncol) {
      /* Only the first ncol - ix pixels are stored: a whole vector that stays inside the
       * input may read past its row (a 7x7 plane's rows are all shorter than a vector, and a
       * masked load costs several plain ones on Zen 4). */
      __m256i m = dw_mask(ncol - ix);
      DW_UNROLL
      for (int c = 0; c < 8; c++)
        v[c] = s->x_end - (src[c] + ix) >= 8 ? _mm256_loadu_ps(src[c] + ix)
                                             : _mm256_maskload_ps(src[c] + ix, m);
      cpu_tr8x8(v);
      for (int64_t c = 0; c < ncol - ix; c++)
        _mm256_store_ps(d + (ix + c) * 8, v[c]);
    }
  }
}

/* The fused activation on eight vectors: the switch is outside the loop over them. */
#define DWI_ACT_CASE(K)                                                                            \
  case K:                                                                                          \
    DW_UNROLL                                                                                      \
    for (int i = 0; i < 8; i++)                                                                    \
      v[i] = cpu_act8_kind(K, a->p0, a->p1, v[i]);                                                 \
    return;

DW_AVX2 static ALWAYS_INLINE void dwi_act(const cpu_act *a, __m256 v[8]) {
  switch (a->kind) {
  case CPU_ACT_NONE:
    return;
    DWI_ACT_CASE(CPU_ACT_RELU)
    DWI_ACT_CASE(CPU_ACT_CLIP)
    DWI_ACT_CASE(CPU_ACT_LEAKYRELU)
    DWI_ACT_CASE(CPU_ACT_HARDSIGMOID)
    DWI_ACT_CASE(CPU_ACT_HARDSWISH)
    DWI_ACT_CASE(CPU_ACT_SIGMOID)
    DWI_ACT_CASE(CPU_ACT_SILU)
    DWI_ACT_CASE(CPU_ACT_GELU)
    DWI_ACT_CASE(CPU_ACT_GELU_TANH)
  default: return;
  }
}
#undef DWI_ACT_CASE

/* np (<= 8) output pixels from pixel r of the band, whose first output row reads buffer row 0;
 * a short block repeats its last pixel. y[c] points at channel c's first pixel of the band
 * (blocked, BL: y[0] at the band's first eight-float pixel). KH/KW are compile-time for 3x3
 * and 5x5 without dilation, else 0. */
DW_AVX2 static ALWAYS_INLINE void dwi_block(const dwi_state *s, float *const *y, int64_t r, int np,
                                            int KH, int KW, bool BL) {
  const dwi_geom *g = s->g;
  int64_t kh = KH ? KH : g->kh, kw = KW ? KW : g->kw;
  size_t dy = (size_t)(KH ? 1 : g->dh) * s->rs, dx = (size_t)(KW ? 1 : g->dw) * 8;
  const float *q[8];
  DW_UNROLL
  for (int i = 0; i < 8; i++)
    q[i] = s->buf + s->offs[r + (i < np ? i : np - 1)];
  __m256 acc[8], bias = _mm256_load_ps(s->bias);
  DW_UNROLL
  for (int i = 0; i < 8; i++)
    acc[i] = bias;
  const float *wt = s->wg;
  DW_UNROLL
  for (int64_t ky = 0; ky < kh; ky++) {
    DW_UNROLL
    for (int64_t kx = 0; kx < kw; kx++) {
      __m256 wv = _mm256_load_ps(wt + kx * 8);
      DW_UNROLL
      for (int i = 0; i < 8; i++)
        acc[i] = _mm256_fmadd_ps(wv, _mm256_load_ps(q[i] + kx * dx), acc[i]);
    }
    wt += kw * 8;
    if (ky + 1 < kh) { /* no pointer past the buffer after the last row */
      DW_UNROLL
      for (int i = 0; i < 8; i++)
        q[i] += dy;
    }
  }
  dwi_act(&s->act, acc);
  if (BL) {
    for (int i = 0; i < np; i++)
      _mm256_storeu_ps(y[0] + (r + i) * 8, acc[i]);
    return;
  }
  cpu_tr8x8(acc); /* acc[c]: the eight pixels of channel c */
  if (np == 8) {
    if (s->nc == 8) {
      DW_UNROLL
      for (int c = 0; c < 8; c++)
        _mm256_storeu_ps(y[c] + r, acc[c]);
    } else {
      for (int c = 0; c < s->nc; c++)
        _mm256_storeu_ps(y[c] + r, acc[c]);
    }
    return;
  }
  for (int c = 0; c < s->nc; c++) {
    _Alignas(32) float t[8];
    _mm256_store_ps(t, acc[c]);
    memcpy(y[c] + r, t, (size_t)np * sizeof *t);
  }
}

/* Output rows [oy0, oy1) of the group, their input rows already in the buffer. A local copy
 * of the state: the output stores could alias it otherwise (-fno-strict-aliasing), and its
 * fields would be reloaded after each. */
DW_AVX2 static ALWAYS_INLINE void dwi_band_k(const dwi_state *st, int64_t oy0, int64_t oy1, int KH,
                                             int KW, bool BL) {
  dwi_state s = *st;
  int64_t n = (oy1 - oy0) * s.g->ow;
  float *y[8];
  if (BL)
    y[0] = s.yb + oy0 * s.g->ow * 8;
  else
    for (int c = 0; c < 8; c++)
      y[c] = s.ys[c] + oy0 * s.g->ow;
  if (n < 8) {
    dwi_block(&s, y, 0, (int)n, KH, KW, BL);
    return;
  }
  for (int64_t r = 0; r < n; r += 8)
    dwi_block(&s, y, r + 8 <= n ? r : n - 8, 8, KH, KW, BL);
}

/* The window's specialisation (3x3, 5x5 or any) for planes (BL false) or blocked tensors. */
DW_AVX2 static ALWAYS_INLINE void dwi_band_bl(const dwi_state *s, int64_t oy0, int64_t oy1,
                                              bool BL) {
  const dwi_geom *g = s->g;
  bool d1 = g->dh == 1 && g->dw == 1;
  if (d1 && g->kh == 3 && g->kw == 3)
    dwi_band_k(s, oy0, oy1, 3, 3, BL);
  else if (d1 && g->kh == 5 && g->kw == 5)
    dwi_band_k(s, oy0, oy1, 5, 5, BL);
  else
    dwi_band_k(s, oy0, oy1, 0, 0, BL);
}

DW_AVX2 static void dwi_band(const dwi_state *s, int64_t oy0, int64_t oy1) {
  if (s->blocked)
    dwi_band_bl(s, oy0, oy1, true);
  else
    dwi_band_bl(s, oy0, oy1, false);
}
#endif

typedef struct dw2d_job {
  const conv_plan *p;
  const float *x, *w, *b;
  const float *packed; /* cpu_conv_dw_pack's taps and biases (the interleaved path only) */
  float *y;
  cpu_isa isa;
  bool blocked; /* x and y blocked (nchwc.h): the interleaved path only */
  bool avx2;    /* the AVX2 interior applies: stride 1 or 2 across, dilation 1 */
  dwi_geom gi;  /* the interleaved path's geometry */
} dw2d_job;

static void dw2d_task(void *arg, size_t begin, size_t end) {
  const dw2d_job *j = arg;
  const conv_plan *p = j->p;
  dw_plane q = dw_plane_of(p);
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
  bool row_act = !pad && cpu_act_is_smooth(p->act.kind);
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

#ifdef DW_HAVE_AVX2
/* The OOM fallback of the interleaved path: output rows [oy0, oy1) of group grp of image n,
 * point by point (slow, but it allocates nothing and writes only this band's rows). */
static void dwi_fallback(const dw2d_job *j, size_t n, size_t grp, int64_t oy0, int64_t oy1) {
  const conv_plan *p = j->p;
  dw_plane q = dw_plane_of(p);
  if (j->blocked) {
    /* The same sums over blocked planes: taps and bias from the packed eight lanes. */
    const float *xb = j->x + (n * p->C / 8 + grp) * p->in_sp * 8;
    const float *wg = j->packed + grp * (p->kk + 1) * 8;
    float *yb = j->y + (n * p->C / 8 + grp) * p->out_sp * 8;
    for (int64_t oy = oy0; oy < oy1; oy++)
      for (int64_t ox = 0; ox < q.ow; ox++)
        for (int c = 0; c < 8; c++) {
          float acc = wg[p->kk * 8 + c];
          for (int64_t ky = 0; ky < q.kh; ky++) {
            int64_t iy = oy * q.sh - q.ph + ky * q.dh;
            if (iy < 0 || iy >= q.ih)
              continue;
            for (int64_t kx = 0; kx < q.kw; kx++) {
              int64_t ix = ox * q.sw - q.pw + kx * q.dw;
              if (ix >= 0 && ix < q.iw)
                acc += wg[(ky * q.kw + kx) * 8 + c] * xb[(iy * q.iw + ix) * 8 + c];
            }
          }
          yb[(oy * q.ow + ox) * 8 + c] = cpu_act_apply(&p->act, acc);
        }
    return;
  }
  size_t c1 = grp * 8 + 8 < p->C ? grp * 8 + 8 : p->C;
  for (size_t c = grp * 8; c < c1; c++) {
    q.x = j->x + (n * p->C + c) * p->in_sp;
    q.wk = j->w + c * p->kk;
    q.bias = j->b ? j->b[c] : 0.0f;
    float *yp = j->y + (n * p->C + c) * p->out_sp;
    for (int64_t oy = oy0; oy < oy1; oy++)
      for (int64_t ox = 0; ox < q.ow; ox++)
        yp[oy * q.ow + ox] = dw_point(&q, oy, ox);
  }
}

/* Loads group ng (image ng / groups, channels from ng % groups * 8) into s: its planes, and
 * where its taps and bias lie in eight lanes (cpu_conv_dw_pack). */
static void dwi_load_group(dwi_state *s, const dw2d_job *j, size_t ng) {
  const conv_plan *p = j->p;
  size_t n = ng / s->g->groups, c0 = ng % s->g->groups * 8;
  s->nc = p->C - c0 < 8 ? (int)(p->C - c0) : 8;
  for (int c = 0; c < 8; c++) {
    size_t ch = c0 + (size_t)(c < s->nc ? c : s->nc - 1);
    s->xs[c] = j->x + (n * p->C + ch) * p->in_sp;
    s->ys[c] = j->y + (n * p->C + ch) * p->out_sp;
  }
  s->wg = j->packed + c0 / 8 * (p->kk + 1) * 8;
  s->bias = s->wg + p->kk * 8;
  if (s->blocked) {
    s->xb = j->x + ng * p->in_sp * 8;
    s->yb = j->y + ng * p->out_sp * 8;
  }
}

/* Items are bands: item i is band i % nbands of group (i / nbands) % groups of image
 * i / (nbands * groups), so that a chunk of items runs the bands of a group in order, and
 * a band keeps the input rows it shares with the one before (moved to the buffer's top)
 * instead of transposing them again. */
DW_AVX2 static void dwi_task(void *arg, size_t begin, size_t end) {
  const dw2d_job *j = arg;
  const dwi_geom *g = &j->gi;
  dwi_state s = {.g = g,
                 .act = j->p->act,
                 .blocked = j->blocked,
                 .rs = (size_t)g->bw * 8,
                 .x_end = j->x + j->p->N * j->p->C * j->p->in_sp};
  size_t bufn = (size_t)g->brows * s.rs, npx = (size_t)(g->band * g->ow);
  s.buf = nn_alloc_aligned(bufn + npx, sizeof(float));
  if (!s.buf) {
    for (size_t it = begin; it < end; it++) {
      size_t ng = it / (size_t)g->nbands, band = it % (size_t)g->nbands;
      int64_t oy0 = (int64_t)band * g->band;
      int64_t oy1 = oy0 + g->band < g->oh ? oy0 + g->band : g->oh;
      dwi_fallback(j, ng / g->groups, ng % g->groups, oy0, oy1);
    }
    return;
  }
  memset(s.buf, 0, bufn * sizeof *s.buf);
  uint32_t *offs = (uint32_t *)(s.buf + bufn);
  /* Row and column by counting, not dividing (each call builds the table, and with several
   * threads a layer's bands come in several calls). Below 2^32: the buffer is at most
   * DWI_MAX_BYTES. */
  for (size_t r = 0, col = 0, row_at = 0; r < npx; r++) {
    offs[r] = (uint32_t)(row_at + col * (size_t)g->sw * 8);
    if (++col == (size_t)g->ow) {
      col = 0;
      row_at += (size_t)g->sh * s.rs;
    }
  }
  s.offs = offs;
  size_t cur = SIZE_MAX;
  int64_t have0 = 0, have1 = 0; /* padded rows in the buffer, from its top */
  for (size_t it = begin; it < end; it++) {
    size_t ng = it / (size_t)g->nbands, band = it % (size_t)g->nbands;
    if (ng != cur) {
      cur = ng;
      dwi_load_group(&s, j, ng);
      have0 = have1 = 0;
    }
    int64_t oy0 = (int64_t)band * g->band;
    int64_t oy1 = oy0 + g->band < g->oh ? oy0 + g->band : g->oh;
    int64_t r0 = oy0 * g->sh, r1 = (oy1 - 1) * g->sh + g->span, keep = 0;
    if (r0 > have0 && r0 < have1) {
      keep = have1 - r0;
      memmove(s.buf, s.buf + (size_t)(r0 - have0) * s.rs, (size_t)keep * s.rs * sizeof *s.buf);
    }
    dwi_fill(&s, r0 + keep, r1, keep);
    have0 = r0, have1 = r1;
    dwi_band(&s, oy0, oy1);
  }
  free(s.buf);
}
#endif

/* Whether the depthwise 1-D/2-D path applies: one input channel per group, one output channel
 * per input channel, no third spatial dimension. */
static bool dw2d_applies(const conv_plan *p) {
  return !p->transpose && p->cg == 1 && p->mg == 1 && p->G > 1 && p->w.in[0] == 1 &&
         p->w.out[0] == 1 && p->w.k[0] == 1 && p->w.pb[0] == 0;
}

#ifdef DW_HAVE_AVX2
/* dw2d_run's items when the interleaved path applies: first the bands of dwi_task, then the
 * planes of the channels it leaves to the per-plane path (rest .. C - 1 of each image). */
static void dwi_mixed_task(void *arg, size_t begin, size_t end) {
  const dw2d_job *j = arg;
  const conv_plan *p = j->p;
  const dwi_geom *g = &j->gi;
  size_t nd = p->N * g->groups * (size_t)g->nbands, rem = p->C - g->rest;
  if (begin < nd)
    dwi_task(arg, begin, end < nd ? end : nd);
  for (size_t k = begin > nd ? begin - nd : 0; nd + k < end;) {
    size_t n = k / rem, c = k % rem, len = rem - c;
    len = len < end - nd - k ? len : end - nd - k;
    size_t plane = n * p->C + g->rest + c;
    dw2d_task(arg, plane, plane + len); /* contiguous planes of one image */
    k += len;
  }
}
#endif

static void dw2d_run(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *w,
                     const float *b, const float *packed, float *y) {
  dw2d_job j = {.p = p, .x = x, .w = w, .b = b, .packed = packed, .y = y, .isa = ctx->isa};
#ifdef DW_HAVE_AVX2
  j.avx2 = ctx->isa == CPU_ISA_AVX2_FMA && (p->w.s[2] == 1 || p->w.s[2] == 2) && p->w.d[1] == 1 &&
           p->w.d[2] == 1;
  if (ctx->isa == CPU_ISA_AVX2_FMA && dwi_plan(p, &j.gi)) {
    /* Taps and bias packed in this run when prepare() could not (weights or bias given at
     * run time); without memory for them, the per-plane path below. */
    float *own = packed ? NULL : cpu_conv_dw_pack(p, w, b);
    if (packed || own) {
      const dwi_geom *g = &j.gi;
      j.packed = packed ? packed : own;
      /* The grain counts a band's work; a plane of the per-plane items is of the same order. */
      size_t items = p->N * (g->groups * (size_t)g->nbands + (p->C - g->rest));
      size_t per_item = (size_t)(g->band * g->ow) * 8 * p->kk;
      cpu_parallel_for(ctx, items, nn_grain(per_item, 1 << 15), dwi_mixed_task, &j);
      free(own);
      return;
    }
  }
#endif
  cpu_parallel_for(ctx, p->N * p->M, nn_grain(p->out_sp * p->kk, 1 << 15), dw2d_task, &j);
}

float *cpu_conv_dw_pack(const conv_plan *p, const float *w, const float *b) {
  if (!dw2d_applies(p) || p->w.k[1] < 2 || p->w.k[2] < 2) /* dwi_plan's windows */
    return NULL;
  size_t groups = (p->C + 7) / 8, per = (p->kk + 1) * 8;
  float *d = nn_alloc_aligned(groups * per, sizeof(float));
  if (!d)
    return NULL;
  for (size_t g = 0; g < groups; g++)
    for (size_t c = 0; c < 8; c++) {
      size_t ch = g * 8 + c;
      bool live = ch < p->C;
      for (size_t t = 0; t < p->kk; t++)
        d[g * per + t * 8 + c] = live ? w[ch * p->kk + t] : 0.0f;
      d[g * per + p->kk * 8 + c] = live && b ? b[ch] : 0.0f;
    }
  return d;
}

#ifdef DW_HAVE_AVX2
/* ---- float32: depthwise over blocked tensors (nchwc.h), read in place ------------------- */

/* Eight channels of a pixel are one vector as the tensors lie, so without dilation the kernel
 * reads its input where it is: no buffer, no transposes (the buffer of the interleaved path,
 * copied row by row, cost a tenth more than its transposes saved at stride 1). An output row
 * splits into the columns whose window lies inside the input, run up to eight pixels at a
 * time with the taps unrolled, and the few at its ends, which check each tap's column; rows
 * near the top and bottom run only their kernel rows inside the input. Dilated windows take
 * the interleaved path in its blocked form. */
typedef struct dwb_job {
  const conv_plan *p;
  const float *x, *packed;
  float *y;
  int64_t rows;         /* output rows per item */
  size_t nchunk;        /* items per plane */
  int64_t ox_lo, ox_hi; /* the interior columns (dwb_interior) */
} dwb_job;

/* NP pixels of output row oy from column ox, kernel rows [ky0, ky1) inside the input; KW
 * compile-time for 3x3 and 5x5, else 0 (then kw), and S the column stride when compile-time
 * (1 or 2), else 0. Pixels of the interior (CHECK 0) read every tap; at the rows' ends
 * (CHECK 1) each tap's column is tested, a branch on each unrolled tap that always goes the
 * same way for a given pixel. At stride 1 (KW known) each input vector of a kernel row is
 * loaded once and meets the KW weights (in registers) of the pixels it serves: loading it
 * once per tap, the kernel made a load per multiply-add and waited on them (3x3 over 28x28 and
 * 14x14, 0.058 -> 0.046 ms and 0.052 -> 0.041). The ends ran pixel by pixel before, one chain of kh
 * x kw dependent multiply-adds each, as long as eight interior pixels. */
DW_AVX2 static ALWAYS_INLINE void dwb_pixels(const dwb_job *j, const float *xb, const float *wg,
                                             float *yb, int64_t oy, int64_t ox, int64_t ky0,
                                             int64_t ky1, const cpu_act *a, int NP, int KW, int S,
                                             int CHECK) {
  const nn_window *w = &j->p->w;
  int64_t iw = w->in[2], sw = S ? S : w->s[2], kw = KW ? KW : w->k[2];
  int64_t iy0 = oy * w->s[1] - w->pb[1], ix0 = ox * sw - w->pb[2];
  __m256 acc[8], bias = _mm256_load_ps(wg + j->p->kk * 8);
  DW_UNROLL
  for (int i = 0; i < NP; i++)
    acc[i] = bias;
  for (int64_t ky = ky0; ky < ky1; ky++) {
    const float *row = xb + ((iy0 + ky) * iw + ix0) * 8, *wt = wg + ky * kw * 8;
    if (S == 1 && KW) {
      __m256 wv[5];
      DW_UNROLL
      for (int kx = 0; kx < KW; kx++)
        wv[kx] = _mm256_load_ps(wt + kx * 8);
      _Pragma("GCC unroll 16") for (int c = 0; c < NP + KW - 1; c++) {
        if (CHECK && (ix0 + c < 0 || ix0 + c >= iw))
          continue;
        __m256 xv = _mm256_loadu_ps(row + c * 8);
        DW_UNROLL
        for (int kx = 0; kx < KW; kx++)
          if (c - kx >= 0 && c - kx < NP)
            acc[c - kx] = _mm256_fmadd_ps(wv[kx], xv, acc[c - kx]);
      }
      continue;
    }
    DW_UNROLL
    for (int64_t kx = 0; kx < kw; kx++) {
      __m256 wv = _mm256_load_ps(wt + kx * 8);
      DW_UNROLL
      for (int i = 0; i < NP; i++) {
        int64_t c = i * sw + kx;
        if (CHECK && (ix0 + c < 0 || ix0 + c >= iw))
          continue;
        acc[i] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row + c * 8), acc[i]);
      }
    }
  }
  float *yp = yb + (oy * w->out[2] + ox) * 8;
  if (NP == 8) {
    dwi_act(a, acc);
  } else {
    DW_UNROLL
    for (int i = 0; i < NP; i++)
      acc[i] = cpu_act8(a, acc[i]);
  }
  DW_UNROLL
  for (int i = 0; i < NP; i++)
    _mm256_storeu_ps(yp + i * 8, acc[i]);
}

/* Pixels [ox, ox + np) of output row oy, 0 <= np <= 8, as dwb_pixels takes them. */
DW_AVX2 static ALWAYS_INLINE void dwb_block(const dwb_job *j, const float *xb, const float *wg,
                                            float *yb, int64_t oy, int64_t ox, int64_t np,
                                            int64_t ky0, int64_t ky1, const cpu_act *a, int KW,
                                            int S, int CHECK) {
  switch (np) {
  case 8: dwb_pixels(j, xb, wg, yb, oy, ox, ky0, ky1, a, 8, KW, S, CHECK); break;
  case 7: dwb_pixels(j, xb, wg, yb, oy, ox, ky0, ky1, a, 7, KW, S, CHECK); break;
  case 6: dwb_pixels(j, xb, wg, yb, oy, ox, ky0, ky1, a, 6, KW, S, CHECK); break;
  case 5: dwb_pixels(j, xb, wg, yb, oy, ox, ky0, ky1, a, 5, KW, S, CHECK); break;
  case 4: dwb_pixels(j, xb, wg, yb, oy, ox, ky0, ky1, a, 4, KW, S, CHECK); break;
  case 3: dwb_pixels(j, xb, wg, yb, oy, ox, ky0, ky1, a, 3, KW, S, CHECK); break;
  case 2: dwb_pixels(j, xb, wg, yb, oy, ox, ky0, ky1, a, 2, KW, S, CHECK); break;
  case 1: dwb_pixels(j, xb, wg, yb, oy, ox, ky0, ky1, a, 1, KW, S, CHECK); break;
  default: break;
  }
}

/* Pixels [ox, ox + n) of output row oy: blocks of eight, then the rest in one block of its
 * own width (a block of eight ending at the span's end instead recomputed up to seven pixels,
 * a fifth of a 28-wide row); at the ends (CHECK), blocks of four. */
DW_AVX2 static ALWAYS_INLINE void dwb_span(const dwb_job *j, const float *xb, const float *wg,
                                           float *yb, int64_t oy, int64_t ox, int64_t n,
                                           int64_t ky0, int64_t ky1, const cpu_act *a, int KW,
                                           int S, int CHECK) {
  if (CHECK) {
    for (; n >= 4; ox += 4, n -= 4)
      dwb_pixels(j, xb, wg, yb, oy, ox, ky0, ky1, a, 4, KW, S, 1);
    dwb_block(j, xb, wg, yb, oy, ox, n, ky0, ky1, a, KW, S, 1);
    return;
  }
  const int64_t start = ox;
  for (; n >= 8; ox += 8, n -= 8)
    dwb_pixels(j, xb, wg, yb, oy, ox, ky0, ky1, a, 8, KW, S, 0);
  if (n > 0 && ox - start >= 8 && cpu_act_is_smooth(a->kind)) {
    /* A smooth activation in registers overlaps its chains only eight vectors at a time:
     * the last block of eight recomputes some pixels instead. */
    dwb_pixels(j, xb, wg, yb, oy, ox + n - 8, ky0, ky1, a, 8, KW, S, 0);
    return;
  }
  dwb_block(j, xb, wg, yb, oy, ox, n, ky0, ky1, a, KW, S, 0);
}

/* The interior columns [lo, hi) of the output: ox * sw - pw >= 0 and ox * sw - pw + kw <= iw
 * (no dilation). */
static void dwb_interior(const nn_window *w, int64_t *lo, int64_t *hi) {
  valid_range(w->out[2], w->s[2], -w->pb[2], w->in[2] - w->k[2] + 1, lo, hi);
}

/* Rows up to this wide at stride 1 take dwb_rows' EVEN blocks. */
#define DWB_EVEN_WIDTH 32

DW_AVX2 static ALWAYS_INLINE void dwb_rows(const dwb_job *j, size_t item, int KH, int KW, int S,
                                           int EVEN) {
  const conv_plan *p = j->p;
  const nn_window *w = &p->w;
  /* Items run over the blocks of a chunk of rows, then the next chunk (cpu_parallel_for). */
  size_t blocks = p->C / 8, per_image = blocks * j->nchunk;
  size_t r = item % per_image, chunk = r / blocks;
  size_t plane = item / per_image * blocks + r % blocks; /* image x block */
  const float *xb = j->x + plane * p->in_sp * 8;
  const float *wg = j->packed + plane % (p->C / 8) * (p->kk + 1) * 8;
  float *yb = j->y + plane * p->out_sp * 8;
  int64_t ih = w->in[1], ow = w->out[2], kh = KH ? KH : w->k[1];
  int64_t ox_lo = j->ox_lo, ox_hi = j->ox_hi;
  /* EVEN: a narrow row at stride 1 (KW known) in the fewest blocks of at most eight pixels, of
   * sizes that differ by one at most, those that reach past the interior checking their columns:
   * its ends and its remainder in blocks of their own held too few pixels to keep enough
   * chains of multiply-adds in flight (a 7-pixel row of a 5x5 window ran as 2 + 3 + 2).
   * Layers alone, one thread, against that split (the end blocks at most four pixels, the
   * interior in eights): 5x5 over 7x7 0.045 -> 0.027 ms, over 14x14 0.067 -> 0.049, over
   * 28x28 0.053 -> 0.049; 3x3 over 14x14 0.038 -> 0.032; in the models (per-node minima),
   * MNASNet's depthwise layers 0.91 -> 0.81 ms, EfficientNet-B0's 1.94 -> 1.80. Wider rows kept the
   * split (over 56x56 and 112x112 2-3% slower in blocks of eight), and so did stride 2, whose edge
   * blocks test each tap (5x5 from 28x28 to 14x14 14% slower). Each way is a function of its own
   * (dwb_task picks), so that neither changes the other's code. */
  const int64_t nb = (ow + 7) / 8;
  /* Over narrow rows a smooth activation is applied to each finished row in one pass: the
   * blocks at the rows' ends and their remainders hold too few vectors to overlap its chains
   * (SiLU, 5x5 over 7x7 and 14x14: 12% and 8% slower than the pass). Over wide ones it stays
   * in the blocks of eight, where it overlaps the loads (3x3 stride 2 from 112x112, its
   * input out of L2: the pass took 5% longer). */
  static const cpu_act none = {CPU_ACT_NONE, 0, 0};
  const bool smooth = cpu_act_is_smooth(p->act.kind) && ow <= 32;
  const cpu_act *a = smooth ? &none : &p->act;
  int64_t oy0 = (int64_t)chunk * j->rows;
  int64_t oy1 = oy0 + j->rows < w->out[1] ? oy0 + j->rows : w->out[1];
  for (int64_t oy = oy0; oy < oy1; oy++) {
    int64_t iy0 = oy * w->s[1] - w->pb[1];
    int64_t ky0 = iy0 < 0 ? -iy0 : 0, ky1 = ih - iy0 < kh ? ih - iy0 : kh;
    ky0 = ky0 > kh ? kh : ky0;
    ky1 = ky1 < ky0 ? ky0 : ky1;
    if (EVEN) {
      for (int64_t b = 0; b < nb; b++) {
        int64_t x0 = ow * b / nb, x1 = ow * (b + 1) / nb;
        if (x0 < ox_lo || x1 > ox_hi)
          dwb_block(j, xb, wg, yb, oy, x0, x1 - x0, ky0, ky1, a, KW, S, 1);
        else
          dwb_block(j, xb, wg, yb, oy, x0, x1 - x0, ky0, ky1, a, KW, S, 0);
      }
    } else {
      int64_t lo = ox_lo < ow ? ox_lo : ow, hi = ox_hi > lo ? ox_hi : lo;
      dwb_span(j, xb, wg, yb, oy, 0, lo, ky0, ky1, a, KW, S, 1);
      dwb_span(j, xb, wg, yb, oy, lo, hi - lo, ky0, ky1, a, KW, S, 0);
      dwb_span(j, xb, wg, yb, oy, hi, ow - hi, ky0, ky1, a, KW, S, 1);
    }
    if (smooth)
      cpu_act_apply_row_avx2(&p->act, yb + oy * ow * 8, (size_t)ow * 8);
  }
}

/* One function for each specialisation: inlined into a single one, their locals made a stack
 * frame of megabytes under AddressSanitizer. */
#define DWB_ROWS_FN(KH, KW, S, E)                                                                  \
  DW_AVX2 static __attribute__((noinline)) void dwb_rows_##KH##_##KW##_##S##_##E(const dwb_job *j, \
                                                                                 size_t item) {    \
    dwb_rows(j, item, KH, KW, S, E);                                                               \
  }
DWB_ROWS_FN(3, 3, 1, 0)
DWB_ROWS_FN(3, 3, 2, 0)
DWB_ROWS_FN(5, 5, 1, 0)
DWB_ROWS_FN(5, 5, 2, 0)
DWB_ROWS_FN(0, 0, 0, 0)
DWB_ROWS_FN(3, 3, 1, 1)
DWB_ROWS_FN(5, 5, 1, 1)
#undef DWB_ROWS_FN

DW_AVX2 static void dwb_task(void *arg, size_t begin, size_t end) {
  const dwb_job *j = arg;
  const nn_window *w = &j->p->w;
  int k = w->k[1] == w->k[2] && (w->k[1] == 3 || w->k[1] == 5) ? (int)w->k[1] : 0;
  int s = w->s[2] == 1 || w->s[2] == 2 ? (int)w->s[2] : 0;
  bool even = w->out[2] <= DWB_EVEN_WIDTH; /* dwb_rows: at stride 1, 3x3 and 5x5 */
  void (*rows)(const dwb_job *, size_t) = dwb_rows_0_0_0_0;
  if (k == 3 && s == 1)
    rows = even ? dwb_rows_3_3_1_1 : dwb_rows_3_3_1_0;
  else if (k == 3 && s == 2)
    rows = dwb_rows_3_3_2_0;
  else if (k == 5 && s == 1)
    rows = even ? dwb_rows_5_5_1_1 : dwb_rows_5_5_1_0;
  else if (k == 5 && s == 2)
    rows = dwb_rows_5_5_2_0;
  for (size_t it = begin; it < end; it++)
    rows(j, it);
}

typedef struct nchwc_convert_job {
  const float *x;
  float *y;
  size_t hw;
  bool to_blocked; /* NCHW -> blocked, else blocked -> NCHW */
} nchwc_convert_job;

/* Block b between its eight planes (NCHW: plane c's pixel p at c * hw + p) and its blocked
 * pixels (pixel p's lane c at p * 8 + c), either way: eight pixels at a time through one 8x8
 * transpose, which is its own inverse, the rest one by one. */
DW_AVX2 static void nchwc_convert_task(void *arg, size_t begin, size_t end) {
  const nchwc_convert_job *j = arg;
  const size_t hw = j->hw;
  /* Vector i of the eight pixels from p: plane i's run (i * hw + p) or blocked pixel p + i
   * (8 i + 8 p), read from one side and written to the other. */
  const size_t in_i = j->to_blocked ? hw : 8, in_p = j->to_blocked ? 1 : 8;
  const size_t out_i = j->to_blocked ? 8 : hw, out_p = j->to_blocked ? 8 : 1;
  for (size_t b = begin; b < end; b++) {
    const float *x = j->x + b * hw * 8;
    float *y = j->y + b * hw * 8;
    size_t p = 0;
    for (; p + 8 <= hw; p += 8) {
      __m256 v[8];
      DW_UNROLL
      for (int i = 0; i < 8; i++)
        v[i] = _mm256_loadu_ps(x + (size_t)i * in_i + p * in_p);
      cpu_tr8x8(v);
      DW_UNROLL
      for (int i = 0; i < 8; i++)
        _mm256_storeu_ps(y + (size_t)i * out_i + p * out_p, v[i]);
    }
    for (; p < hw; p++)
      for (size_t c = 0; c < 8; c++) {
        size_t plane = c * hw + p, pixel = p * 8 + c;
        if (j->to_blocked)
          y[pixel] = x[plane];
        else
          y[plane] = x[pixel];
      }
  }
}

static void nchwc_convert(cpu_ctx *ctx, const float *x, size_t blocks, size_t hw, float *y,
                          bool to_blocked) {
  nchwc_convert_job j = {.x = x, .y = y, .hw = hw, .to_blocked = to_blocked};
  cpu_parallel_for(ctx, blocks, nn_grain(hw * 8, 1 << 15), nchwc_convert_task, &j);
}

void cpu_nchwc_to_nchw(cpu_ctx *ctx, const float *x, size_t blocks, size_t hw, float *y) {
  nchwc_convert(ctx, x, blocks, hw, y, false);
}

void cpu_nchw_to_nchwc(cpu_ctx *ctx, const float *x, size_t blocks, size_t hw, float *y) {
  nchwc_convert(ctx, x, blocks, hw, y, true);
}

bool cpu_conv_dw_nchwc_applies(const conv_plan *p) {
  dwi_geom g;
  return p->C % 8 == 0 && dw2d_applies(p) && dwi_plan(p, &g) && g.groups * 8 == p->C;
}

int cpu_conv_depthwise_nchwc(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *packed,
                             float *y) {
  if (ctx->isa != CPU_ISA_AVX2_FMA)
    return cpu_fail(ctx, "the blocked depthwise convolution needs AVX2 and FMA");
  if (!cpu_conv_dw_nchwc_applies(p))
    return cpu_fail(ctx, "the blocked depthwise convolution does not apply to this Conv (2-D, "
                         "one channel a group, channels a multiple of 8)");
  /* Without dilation, read in place. The interleaved path, blocked, copies the input into
   * its zero-padded buffer first and has no ends to treat apart, which won over planes of 28
   * and less while the ends ran pixel by pixel; with the ends in blocks (dwb_span) and the
   * loads of stride 1 shared, in place wins everywhere (one thread, ms: 3x3 over 28x28 0.074
   * -> 0.044, 14x14 0.051 -> 0.042, 7x7 0.027 -> 0.021; 5x5 over 28x28 0.155 -> 0.106, 14x14
   * 0.075 -> 0.066, 7x7 0.054 -> 0.047; 3x3 stride 2 from 28x28 0.031 -> 0.016). */
  if (p->w.d[1] == 1 && p->w.d[2] == 1) {
    int64_t lo, hi;
    dwb_interior(&p->w, &lo, &hi);
    /* Items of rows of one block of eight channels, at least some 2^14 multiply-adds each. */
    int64_t ow = p->w.out[2], oh = p->w.out[1];
    int64_t rows = (int64_t)((1 << 14) / ((size_t)ow * p->kk * 8 + 1)) + 1;
    rows = rows > oh ? oh : rows;
    dwb_job j = {.p = p, .x = x, .packed = packed, .y = y, .rows = rows, .ox_lo = lo, .ox_hi = hi};
    j.nchunk = (size_t)((oh + rows - 1) / rows);
    cpu_parallel_for(ctx, p->N * (p->C / 8) * j.nchunk, 1, dwb_task, &j);
    return 0;
  }
  dw2d_job j = {.p = p, .x = x, .packed = packed, .y = y, .isa = ctx->isa, .blocked = true};
  dwi_plan(p, &j.gi);
  size_t items = p->N * j.gi.groups * (size_t)j.gi.nbands;
  size_t per_item = (size_t)(j.gi.band * j.gi.ow) * 8 * p->kk;
  cpu_parallel_for(ctx, items, nn_grain(per_item, 1 << 15), dwi_task, &j);
  return 0;
}
#endif

void cpu_conv_depthwise(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *w,
                        const float *b, const float *packed, float *y) {
  if (dw2d_applies(p)) {
    dw2d_run(ctx, p, x, w, b, packed, y);
    return;
  }
  dw_job dj = {.ctx = ctx, .p = p, .x = x, .w = w, .b = b, .y = y};
  cpu_parallel_for(ctx, p->N * p->M, nn_grain(p->out_sp * p->kk, 1 << 15), depthwise_task, &dj);
}
