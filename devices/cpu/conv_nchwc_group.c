/* Grouped convolution of eight channels a group (RegNet's group width 8, and any Conv with
 * eight input and eight output channels a group) over the channel-blocked layout NCHW8c
 * (nchwc.h), float32, AVX2 + FMA.
 *
 * With eight channels a group, group g is exactly block g of the input and of the output: a
 * group is a small dense convolution from one block to one block, which needs no packing of the
 * input and no transposes. Each step of the kernel takes one tap (ky, kx) and one input channel
 * ic: the weights of that tap and channel to the group's eight outputs are one vector, and each
 * of a tile's output pixels broadcasts its input there, one multiply-add a pixel. The tile is
 * up to twelve pixels of an output row, twelve accumulators; pixels whose window crosses the
 * left or right edge of the input go one at a time through the taps that lie inside.
 *
 * In NCHW, a GEMM per group of eight rows by 72 columns (3x3) wastes most of the 6x16 tile
 * and packs the input per group: RegNetY-400MF's grouped layers ran at 24-37 GFLOP/s there,
 * and each ended a blocked chain. Here they run 1.4 to 2.9 times faster (3x3 over 112x112
 * stride 2: 0.539 -> 0.272 ms; 7x7: 0.200 -> 0.069), and with the strided 1x1 projections
 * (conv.c) the whole network runs blocked: 11.1 -> 9.4 ms summed per-node minima on one Zen 4
 * core, 9.6 -> 8.2 on two (alternating processes). */
#include "devices/cpu/nchwc.h"

#ifdef CPU_NCHWC_HAVE_AVX2

#include <immintrin.h>
#include <stdatomic.h>

#include "devices/cpu/vmath_avx2.h"

#define GRP_AVX2 __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

enum { GRP_TILE = 12 };
#define GRP_UNROLL _Pragma("GCC unroll 16")

bool cpu_nchwc_group_applies(const conv_plan *p) {
  const nn_window *w = &p->w;
  if (p->transpose || w->nsp != 2 || p->G < 2 || p->cg != CPU_NCHWC || p->mg != CPU_NCHWC)
    return false;
  if (w->in[0] != 1 || w->out[0] != 1 || w->k[0] != 1 || w->s[0] != 1 || w->pb[0] != 0 ||
      w->pe[0] != 0)
    return false;
  return w->d[0] == 1 && w->d[1] == 1 && w->d[2] == 1;
}

size_t cpu_nchwc_group_packed_floats(const conv_plan *p) { return p->G * p->kk * 64; }

/* Group g's taps in order (ky, kx), each as eight rows ic of eight floats oc:
 * dst[((g * kh + ky) * kw + kx) * 64 + ic * 8 + oc] = w[g * 8 + oc][ic][ky][kx]. */
void cpu_nchwc_group_pack(const conv_plan *p, const float *w, float *dst) {
  size_t kk = p->kk;
  for (size_t g = 0; g < p->G; g++)
    for (size_t t = 0; t < kk; t++)
      for (size_t ic = 0; ic < 8; ic++)
        for (size_t oc = 0; oc < 8; oc++)
          dst[(g * kk + t) * 64 + ic * 8 + oc] = w[((g * 8 + oc) * 8 + ic) * kk + t];
}

typedef struct grp_job {
  const conv_plan *p;
  const float *x, *wp, *bias;
  float *y;
  int64_t band, nbands; /* output rows per item, items per (image, group) */
  bool clamp;           /* the activation is none, relu or clip: applied in registers */
  float lo, hi;         /* its bounds */
} grp_job;

/* T output pixels of one row (T a constant in each use) starting at output column ox0, whose
 * windows lie inside the input row: xr is input row iy's first pixel in the group's block, w
 * the group's taps of kernel row ky, acc the tile's accumulators. S is the stride (0: s). */
GRP_AVX2 static ALWAYS_INLINE void grp_taps(const float *xr, const float *w, int64_t ox0, int64_t s,
                                            int64_t pl, int64_t kw, __m256 *acc, const int T,
                                            const int S) {
  const int64_t st = S ? S : s;
  for (int64_t kx = 0; kx < kw; kx++) {
    const float *xp = xr + (ox0 * st - pl + kx) * 8;
    const float *wk = w + kx * 64;
    GRP_UNROLL
    for (int ic = 0; ic < 8; ic++) {
      __m256 wv = _mm256_load_ps(wk + ic * 8);
      GRP_UNROLL
      for (int t = 0; t < T; t++)
        acc[t] = _mm256_fmadd_ps(_mm256_broadcast_ss(xp + t * st * 8 + ic), wv, acc[t]);
    }
  }
}

/* One output row of group g: the interior in tiles of GRP_TILE (and a last shorter one), the
 * edges pixel by pixel. */
GRP_AVX2 static ALWAYS_INLINE void grp_row(const grp_job *j, const float *xg, const float *wg,
                                           __m256 bv, float *yr, int64_t oy, const int S) {
  const conv_plan *p = j->p;
  const nn_window *w = &p->w;
  const int64_t ih = w->in[1], iw = w->in[2], ow = w->out[2];
  const int64_t kh = w->k[1], kw = w->k[2], sh = w->s[1], sw = S ? S : w->s[2];
  const int64_t pt = w->pb[1], pl = w->pb[2];
  const int64_t top = oy * sh - pt;
  const __m256 lo = _mm256_set1_ps(j->lo), hi = _mm256_set1_ps(j->hi);
  const int64_t ky0 = top < 0 ? -top : 0, ky1 = ih - top < kh ? ih - top : kh;
  /* Columns whose whole window lies inside: [xa, xb). */
  int64_t xa, xb;
  valid_range(ow, sw, -pl, iw - kw + 1, &xa, &xb);
  if (xb < xa)
    xb = xa;
  /* The edge pixels, one at a time, through the taps inside. */
  for (int64_t ox = 0; ox < ow; ox++) {
    if (ox == xa)
      ox = xb;
    if (ox >= ow)
      break;
    __m256 acc = bv;
    for (int64_t ky = ky0; ky < ky1; ky++) {
      const float *xr = xg + (top + ky) * iw * 8;
      for (int64_t kx = 0; kx < kw; kx++) {
        int64_t ix = ox * sw - pl + kx;
        if (ix < 0 || ix >= iw)
          continue;
        const float *wk = wg + (ky * kw + kx) * 64;
        for (int ic = 0; ic < 8; ic++)
          acc = _mm256_fmadd_ps(_mm256_broadcast_ss(xr + ix * 8 + ic), _mm256_load_ps(wk + ic * 8),
                                acc);
      }
    }
    if (j->clamp)
      acc = _mm256_min_ps(hi, _mm256_max_ps(lo, acc));
    _mm256_storeu_ps(yr + ox * 8, acc);
  }
  /* The interior. */
  for (int64_t ox = xa; ox < xb; ox += GRP_TILE) {
    int64_t n = xb - ox < GRP_TILE ? xb - ox : GRP_TILE;
    __m256 acc[GRP_TILE];
    GRP_UNROLL
    for (int t = 0; t < GRP_TILE; t++)
      acc[t] = bv;
    for (int64_t ky = ky0; ky < ky1; ky++) {
      const float *xr = xg + (top + ky) * iw * 8, *wk = wg + ky * kw * 64;
      if (n == GRP_TILE)
        grp_taps(xr, wk, ox, sw, pl, kw, acc, GRP_TILE, S);
      else
        switch (n) {
#define GRP_CASE(T)                                                                                \
  case T: grp_taps(xr, wk, ox, sw, pl, kw, acc, T, S); break;
          GRP_CASE(1)
          GRP_CASE(2)
          GRP_CASE(3)
          GRP_CASE(4)
          GRP_CASE(5)
          GRP_CASE(6)
          GRP_CASE(7)
          GRP_CASE(8)
          GRP_CASE(9)
          GRP_CASE(10)
          GRP_CASE(11)
#undef GRP_CASE
        }
    }
    GRP_UNROLL
    for (int t = 0; t < GRP_TILE; t++) {
      if (t >= n)
        break;
      __m256 v = acc[t];
      if (j->clamp)
        v = _mm256_min_ps(hi, _mm256_max_ps(lo, v));
      _mm256_storeu_ps(yr + (ox + t) * 8, v);
    }
  }
  if (!j->clamp)
    cpu_act_apply_row_avx2(&p->act, yr, (size_t)ow * 8);
}

GRP_AVX2 static void grp_row_s1(const grp_job *j, const float *xg, const float *wg, __m256 bv,
                                float *yr, int64_t oy) {
  grp_row(j, xg, wg, bv, yr, oy, 1);
}
GRP_AVX2 static void grp_row_s2(const grp_job *j, const float *xg, const float *wg, __m256 bv,
                                float *yr, int64_t oy) {
  grp_row(j, xg, wg, bv, yr, oy, 2);
}
GRP_AVX2 static void grp_row_sn(const grp_job *j, const float *xg, const float *wg, __m256 bv,
                                float *yr, int64_t oy) {
  grp_row(j, xg, wg, bv, yr, oy, 0);
}

/* Items (image, group, band of output rows). */
GRP_AVX2 static void grp_task(void *arg, size_t begin, size_t end) {
  const grp_job *j = arg;
  const conv_plan *p = j->p;
  const nn_window *w = &p->w;
  const int64_t oh = w->out[1], ow = w->out[2];
  const size_t isz = (size_t)(w->in[1] * w->in[2]) * 8, osz = (size_t)(oh * ow) * 8;
  void (*row)(const grp_job *, const float *, const float *, __m256, float *, int64_t) =
      w->s[2] == 1   ? grp_row_s1
      : w->s[2] == 2 ? grp_row_s2
                     : grp_row_sn;
  for (size_t it = begin; it < end; it++) {
    /* Items run over the groups of a band of rows, then the next band (cpu_parallel_for). */
    size_t per_image = p->G * (size_t)j->nbands, r = it % per_image;
    size_t g = r % p->G, ng = it / per_image * p->G + g; /* image * G + group */
    int64_t oy0 = (int64_t)(r / p->G) * j->band;
    int64_t oy1 = oy0 + j->band < oh ? oy0 + j->band : oh;
    const float *xg = j->x + ng * isz, *wg = j->wp + g * p->kk * 64;
    __m256 bv = j->bias ? _mm256_loadu_ps(j->bias + g * 8) : _mm256_setzero_ps();
    for (int64_t oy = oy0; oy < oy1; oy++)
      row(j, xg, wg, bv, j->y + ng * osz + (size_t)(oy * ow) * 8, oy);
  }
}

int cpu_nchwc_group(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wp,
                    const float *bias, float *y) {
  if (ctx->isa != CPU_ISA_AVX2_FMA)
    return cpu_fail(ctx, "the NCHW8c grouped convolution needs AVX2 and FMA");
  if (!cpu_nchwc_group_applies(p))
    return cpu_fail(ctx, "the NCHW8c grouped convolution does not apply to this Conv");
  const nn_window *w = &p->w;
  int64_t oh = w->out[1], ow = w->out[2];
  if (p->N == 0 || oh <= 0 || ow <= 0)
    return 0;
  grp_job j = {.p = p, .x = x, .wp = wp, .bias = bias, .y = y};
  j.clamp = cpu_act_clamp_bounds(&p->act, &j.lo, &j.hi);
  /* Bands of rows: every thread a few items, each some 10 microseconds of work at least. */
  size_t planes = p->N * p->G, want = 4 * cpu_thread_count(ctx);
  double row_flops = 2.0 * (double)ow * 64.0 * (double)p->kk;
  int64_t min_rows = (int64_t)(2e5 / row_flops) + 1;
  int64_t band = oh;
  if (planes < want) {
    size_t per_plane = (want + planes - 1) / planes;
    band = (oh + (int64_t)per_plane - 1) / (int64_t)per_plane;
    band = band < min_rows ? min_rows : band;
    band = band > oh ? oh : band;
  }
  j.band = band;
  j.nbands = (oh + band - 1) / band;
  cpu_parallel_for(ctx, planes * (size_t)j.nbands, 1, grp_task, &j);
  return 0;
}
#endif
