/* MaxPool (with the optional Indices output), AveragePool, LpPool and their Global forms, over
 * 1-D, 2-D and 3-D windows.
 *
 * One kernel computes a plane (one image, one channel): it clips each window to the input
 * once per dimension, so the inner loops carry no bounds checks. It reads float32 or float64
 * and works in double (exact for maxima, and sums of a window lose nothing); it is written
 * once and specialised per dtype by inlining. float16, int8 and uint8 are staged through
 * float32, which holds all of their values exactly. Empty windows (possible only when padding
 * is as large as the kernel, or with ceil_mode) give 0.
 *
 * float32 MaxPool (without Indices), AveragePool and their Global forms over 1-D and 2-D
 * windows take a faster path (below) with the same results. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/nchwc.h"
#include "devices/cpu/nn_util.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

typedef enum pool_kind { POOL_MAX, POOL_AVG, POOL_LP } pool_kind;

typedef struct pool_plan {
  pool_kind kind;
  bool global;
  nn_window w;
  size_t planes; /* N * C */
  size_t in_sp, out_sp;
  bool count_include_pad;
  double p;       /* LpPool's exponent */
  bool col_major; /* storage_order = 1 for Indices */
  bool indices;
} pool_plan;

static bool pool_dtype_ok(pool_kind kind, bool global, uint32_t dt) {
  if (dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16)
    return true;
  /* MaxPool takes 8-bit integers from opset 12 on; accepting them earlier is harmless. */
  return kind == POOL_MAX && !global && (dt == TSR_DTYPE_INT8 || dt == TSR_DTYPE_UINT8);
}

static tsr_plugin_reason pool_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                    pool_kind kind, bool global, pool_plan *p, char *msg,
                                    size_t size) {
  char s1[96], s2[96];
  memset(p, 0, sizeof *p);
  p->kind = kind;
  p->global = global;
  if (n->n_in < 1 || n->n_out < 1 || !in[0].present || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects input X and output Y");
  const cpu_tensor *x = &in[0], *y = &out[0];
  if (!pool_dtype_ok(kind, global, x->dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(x->dtype));
  if (y->dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "Y is %s, X is %s",
                      cpu_dtype_name(y->dtype), cpu_dtype_name(x->dtype));
  if (x->rank < (global ? 2u : 3u) || y->rank != x->rank)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "X %s and Y %s: bad ranks",
                      nn_dims_str(s1, sizeof s1, x->rank, x->dims),
                      nn_dims_str(s2, sizeof s2, y->rank, y->dims));
  if (y->dims[0] != x->dims[0] || y->dims[1] != x->dims[1])
    return cpu_refuse(
        msg, size, TSR_PLUGIN_REASON_SHAPE, "Y %s must keep X %s's batch and channels",
        nn_dims_str(s2, sizeof s2, y->rank, y->dims), nn_dims_str(s1, sizeof s1, x->rank, x->dims));
  p->planes = (size_t)x->dims[0] * (size_t)x->dims[1];
  p->in_sp = nn_prod(x->dims, 2, x->rank);
  if (kind == POOL_LP) {
    p->p = cpu_attr_float(n, "p", 2.0f);
    if (!(p->p > 0.0) || !isfinite(p->p))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "p = %g must be positive", p->p);
  }
  if (global) {
    for (uint32_t i = 2; i < y->rank; i++)
      if (y->dims[i] != 1)
        return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "Y %s should have spatial dims 1",
                          nn_dims_str(s2, sizeof s2, y->rank, y->dims));
    p->out_sp = 1;
    return TSR_PLUGIN_REASON_NONE;
  }
  /* Dilations and ceil_mode appear in MaxPool-10 and AveragePool-10; LpPool gains them only in
   * opset 18, so they are not read for it. */
  bool dil = kind == POOL_MAX && n->opset >= 10;
  bool ceil_mode = kind != POOL_LP && n->opset >= 10 && cpu_attr_int(n, "ceil_mode", 0) != 0;
  tsr_plugin_reason r =
      nn_window_attrs(n, (int)x->rank - 2, x->dims + 2, NULL, dil, &p->w, msg, size);
  if (r)
    return r;
  if ((r = nn_window_forward(&p->w, ceil_mode, msg, size)))
    return r;
  if ((r = nn_window_match_out(&p->w, y->dims + 2, ceil_mode, msg, size)))
    return r;
  p->out_sp = nn_prod(p->w.out, 0, NN_SP);
  if (kind == POOL_AVG)
    p->count_include_pad = cpu_attr_int(n, "count_include_pad", 0) != 0;
  if (kind == POOL_MAX) {
    int64_t so = cpu_attr_int(n, "storage_order", 0);
    if (so != 0 && so != 1)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "storage_order %lld",
                        (long long)so);
    p->col_major = so == 1;
    p->indices = n->n_out > 1 && out[1].present;
    if (p->indices) {
      const cpu_tensor *ind = &out[1];
      bool same = ind->rank == y->rank;
      for (uint32_t i = 0; same && i < y->rank; i++)
        same = ind->dims[i] == y->dims[i];
      if (ind->dtype != TSR_DTYPE_INT64 || !same)
        return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                          "Indices must be int64 shaped like Y %s",
                          nn_dims_str(s2, sizeof s2, y->rank, y->dims));
    }
  }
  return TSR_PLUGIN_REASON_NONE;
}

/* ---- Kernels -------------------------------------------------------------------------- */

static ALWAYS_INLINE double ld(const void *x, bool f64, size_t i) {
  return f64 ? ((const double *)x)[i] : (double)((const float *)x)[i];
}

static ALWAYS_INLINE void st(void *y, bool f64, size_t i, double v) {
  if (f64)
    ((double *)y)[i] = v;
  else
    ((float *)y)[i] = (float)v;
}

/* The taps k in [0, kn) with lo <= start + k * d < hi: returns [*k0, *k1). */
static inline void taps(int64_t start, int64_t kn, int64_t d, int64_t lo, int64_t hi, int64_t *k0,
                        int64_t *k1) {
  int64_t a = nn_ceildiv(lo - start, d), b = nn_ceildiv(hi - start, d);
  *k0 = a < 0 ? 0 : (a > kn ? kn : a);
  *k1 = b < *k0 ? *k0 : (b > kn ? kn : b);
}

static ALWAYS_INLINE double lp_term(double v, double p) {
  v = fabs(v);
  return p == 2.0 ? v * v : (p == 1.0 ? v : pow(v, p));
}

static ALWAYS_INLINE double lp_root(double s, double p) {
  return p == 2.0 ? sqrt(s) : (p == 1.0 ? s : pow(s, 1.0 / p));
}

/* Per output coordinate of each window dim: the taps [k0, k1) that land inside the input,
 * and how many land inside the padded input (count_include_pad). They depend only on the
 * coordinate, so they are computed once per run instead of with divisions per output. */
typedef struct pool_taps {
  const int64_t *k0[NN_SP], *k1[NN_SP], *npad[NN_SP];
} pool_taps;

/* Fills t from w; returns the buffer to free, or NULL when memory runs out. */
static int64_t *pool_taps_build(const nn_window *w, pool_taps *t) {
  size_t total = (size_t)(w->out[0] + w->out[1] + w->out[2]);
  int64_t *buf = malloc(3 * (total ? total : 1) * sizeof *buf), *q = buf;
  if (!buf)
    return NULL;
  for (int i = 0; i < NN_SP; i++) {
    int64_t *k0 = q, *k1 = q + w->out[i], *np = q + 2 * w->out[i];
    q += 3 * w->out[i];
    for (int64_t o = 0; o < w->out[i]; o++) {
      int64_t start = o * w->s[i] - w->pb[i], a, b;
      taps(start, w->k[i], w->d[i], 0, w->in[i], &k0[o], &k1[o]);
      taps(start, w->k[i], w->d[i], -w->pb[i], w->in[i] + w->pe[i], &a, &b);
      np[o] = b - a;
    }
    t->k0[i] = k0;
    t->k1[i] = k1;
    t->npad[i] = np;
  }
  return buf;
}

/* One plane: x has in_sp values, y out_sp; ind (may be NULL) gets MaxPool's flat indices. */
static ALWAYS_INLINE void pool_plane(const pool_plan *p, const pool_taps *tp, const void *x,
                                     void *y, int64_t *ind, int64_t ind_base, pool_kind kind,
                                     bool f64) {
  const nn_window *w = &p->w;
  size_t yi = 0;
  for (int64_t oz = 0; oz < w->out[0]; oz++) {
    int64_t z0 = oz * w->s[0] - w->pb[0], kz0 = tp->k0[0][oz], kz1 = tp->k1[0][oz];
    for (int64_t oy = 0; oy < w->out[1]; oy++) {
      int64_t y0 = oy * w->s[1] - w->pb[1], ky0 = tp->k0[1][oy], ky1 = tp->k1[1][oy];
      for (int64_t ox = 0; ox < w->out[2]; ox++, yi++) {
        int64_t x0 = ox * w->s[2] - w->pb[2], kx0 = tp->k0[2][ox], kx1 = tp->k1[2][ox];
        double acc = 0.0;
        int64_t best_at = -1;
        for (int64_t kz = kz0; kz < kz1; kz++) {
          int64_t iz = z0 + kz * w->d[0];
          for (int64_t ky = ky0; ky < ky1; ky++) {
            size_t row = (size_t)((iz * w->in[1] + y0 + ky * w->d[1]) * w->in[2] + x0);
            for (int64_t kx = kx0; kx < kx1; kx++) {
              size_t at = row + (size_t)(kx * w->d[2]);
              double v = ld(x, f64, at);
              if (kind == POOL_MAX) {
                if (best_at < 0 || v > acc) {
                  acc = v;
                  best_at = (int64_t)at;
                }
              } else if (kind == POOL_AVG) {
                acc += v;
              } else {
                acc += lp_term(v, p->p);
              }
            }
          }
        }
        if (kind == POOL_MAX) {
          if (ind) {
            int64_t at = best_at < 0 ? 0 : best_at;
            if (p->col_major) { /* first spatial dim fastest */
              int64_t ix = at % w->in[2], iy = (at / w->in[2]) % w->in[1];
              int64_t iz = at / (w->in[2] * w->in[1]);
              at = iz + w->in[0] * (iy + w->in[1] * ix);
            }
            ind[yi] = ind_base + at;
          }
        } else if (kind == POOL_AVG) {
          /* count_include_pad counts taps inside the padded input, not those beyond it
           * (ceil_mode); otherwise only taps inside the input. */
          int64_t cnt = p->count_include_pad ? tp->npad[0][oz] * tp->npad[1][oy] * tp->npad[2][ox]
                                             : (kz1 - kz0) * (ky1 - ky0) * (kx1 - kx0);
          acc = cnt > 0 ? acc / (double)cnt : 0.0;
        } else {
          acc = lp_root(acc, p->p);
        }
        st(y, f64, yi, acc);
      }
    }
  }
}

static ALWAYS_INLINE void global_plane(const pool_plan *p, const void *x, void *y, size_t plane,
                                       bool f64) {
  size_t n = p->in_sp, base = plane * n;
  double acc = 0.0;
  if (p->kind == POOL_MAX) {
    acc = n ? ld(x, f64, base) : 0.0;
    for (size_t i = 1; i < n; i++) {
      double v = ld(x, f64, base + i);
      if (v > acc)
        acc = v;
    }
  } else if (p->kind == POOL_AVG) {
    for (size_t i = 0; i < n; i++)
      acc += ld(x, f64, base + i);
    acc = n ? acc / (double)n : 0.0;
  } else {
    for (size_t i = 0; i < n; i++)
      acc += lp_term(ld(x, f64, base + i), p->p);
    acc = lp_root(acc, p->p);
  }
  st(y, f64, plane, acc);
}

typedef struct pool_job {
  const pool_plan *p;
  pool_taps taps;
  const void *x;
  void *y;
  int64_t *ind;
} pool_job;

/* Planes [begin, end); kind and dtype are constants in each call of the inlined kernel, so
 * every combination gets its own loop nest without per-element branches. */
static ALWAYS_INLINE void pool_planes(const pool_job *j, size_t begin, size_t end, bool f64) {
  const pool_plan *p = j->p;
  size_t es = f64 ? sizeof(double) : sizeof(float);
  for (size_t pl = begin; pl < end; pl++) {
    if (p->global) {
      global_plane(p, j->x, j->y, pl, f64);
      continue;
    }
    const void *x = (const char *)j->x + pl * p->in_sp * es;
    void *y = (char *)j->y + pl * p->out_sp * es;
    int64_t *ind = j->ind ? j->ind + pl * p->out_sp : NULL, base = (int64_t)(pl * p->in_sp);
    switch (p->kind) {
    case POOL_MAX: pool_plane(p, &j->taps, x, y, ind, base, POOL_MAX, f64); break;
    case POOL_AVG: pool_plane(p, &j->taps, x, y, NULL, base, POOL_AVG, f64); break;
    default: pool_plane(p, &j->taps, x, y, NULL, base, POOL_LP, f64); break;
    }
  }
}

static void pool_task_f32(void *arg, size_t begin, size_t end) {
  pool_planes(arg, begin, end, false);
}

static void pool_task_f64(void *arg, size_t begin, size_t end) {
  pool_planes(arg, begin, end, true);
}

/* ---- The float32 fast path for 1-D and 2-D windows ------------------------------------- */

/* MaxPool (without Indices) and AveragePool over float32 with at most two spatial dims, and
 * GlobalMaxPool and GlobalAveragePool over float32, skip the general kernel's per-tap loads
 * through double. Each output row is split into the columns whose windows lie wholly inside the
 * input in x (the interior, read without bounds checks and, with AVX2, eight columns at a time
 * for strides 1 and 2) and the border columns on either side (clipped as above). Rows clip in y
 * once per row. With AVX2, MaxPool's 3x3 windows of stride 2 take their interior rows and columns
 * through a kernel of their own (max33s2_block).
 *
 * The results are bit-identical to the general kernel's: every output takes its taps in the
 * same order (ky, then kx), the maximum is kept as `v > acc ? v : acc` (which is what vmaxps
 * computes for max(v, acc), so NaN and -0 come out the same), and averages still add in double
 * in that order and divide by the same count. Only the global average adds in several partial
 * sums, which changes the last bits of a double, not of the float result in practice. */

/* The interior of the output along window dim i: [lo, hi), where the taps table has the whole
 * kernel. The set is an interval because window starts grow with the coordinate. */
static void fast_interior(const pool_plan *p, const pool_taps *tp, int i, int64_t *lo,
                          int64_t *hi) {
  const nn_window *w = &p->w;
  int64_t n = w->out[i], a = 0;
  while (a < n && !(tp->k0[i][a] == 0 && tp->k1[i][a] == w->k[i]))
    a++;
  int64_t b = a;
  while (b < n && tp->k0[i][b] == 0 && tp->k1[i][b] == w->k[i])
    b++;
  *lo = a;
  *hi = b;
}

/* Columns [ox0, ox1) of output row oy with clipped windows, as pool_plane computes them. */
static ALWAYS_INLINE void fast_edge(const pool_plan *p, const pool_taps *tp, const float *x,
                                    float *yrow, int64_t oy, int64_t ox0, int64_t ox1, bool max) {
  const nn_window *w = &p->w;
  int64_t y0 = oy * w->s[1] - w->pb[1], ky0 = tp->k0[1][oy], ky1 = tp->k1[1][oy];
  for (int64_t ox = ox0; ox < ox1; ox++) {
    int64_t x0 = ox * w->s[2] - w->pb[2], kx0 = tp->k0[2][ox], kx1 = tp->k1[2][ox];
    float best = 0.0f;
    double sum = 0.0;
    bool any = false;
    for (int64_t ky = ky0; ky < ky1; ky++) {
      const float *row = x + (y0 + ky * w->d[1]) * w->in[2] + x0;
      for (int64_t kx = kx0; kx < kx1; kx++) {
        float v = row[kx * w->d[2]];
        if (max) {
          if (!any || v > best)
            best = v;
          any = true;
        } else {
          sum += v;
        }
      }
    }
    if (max) {
      yrow[ox] = best;
    } else {
      int64_t cnt = p->count_include_pad ? tp->npad[0][0] * tp->npad[1][oy] * tp->npad[2][ox]
                                         : (ky1 - ky0) * (kx1 - kx0);
      yrow[ox] = (float)(cnt > 0 ? sum / (double)cnt : 0.0);
    }
  }
}

/* Interior columns, portable C: n outputs, output j taking src[r * rstep + kx * dw + j * sw]
 * for r < nky, kx < kw. The tap loops are outside the column loop so that compilers can
 * vectorise it; averages go through a small double buffer on the stack. */
static ALWAYS_INLINE void fast_row_c(const float *restrict src, int64_t nky, int64_t rstep,
                                     int64_t kw, int64_t dw, int64_t sw, float *restrict y,
                                     int64_t n, double div, bool max) {
  if (max) {
    for (int64_t j = 0; j < n; j++)
      y[j] = src[j * sw];
    for (int64_t r = 0; r < nky; r++)
      for (int64_t kx = (r == 0); kx < kw; kx++) {
        const float *s = src + r * rstep + kx * dw;
        for (int64_t j = 0; j < n; j++) {
          float v = s[j * sw];
          y[j] = v > y[j] ? v : y[j];
        }
      }
    return;
  }
  enum { CHUNK = 64 };
  double acc[CHUNK];
  for (int64_t j0 = 0; j0 < n; j0 += CHUNK) {
    int64_t m = n - j0 < CHUNK ? n - j0 : CHUNK;
    const float *s0 = src + j0 * sw;
    for (int64_t j = 0; j < m; j++)
      acc[j] = 0.0;
    for (int64_t r = 0; r < nky; r++)
      for (int64_t kx = 0; kx < kw; kx++) {
        const float *s = s0 + r * rstep + kx * dw;
        for (int64_t j = 0; j < m; j++)
          acc[j] += s[j * sw];
      }
    for (int64_t j = 0; j < m; j++)
      y[j0 + j] = (float)(acc[j] / div);
  }
}

#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define POOL_HAVE_AVX2 1
#define AVX2 __attribute__((target("avx2,fma")))

/* Eight columns of stride S starting at p. For S == 2 they come out in the order
 * 0,2,8,10,4,6,12,14 (two loads, p[0..7] and p[7..14], so nothing past the last column is
 * read); pool_unscramble puts them back once per output vector. */
AVX2 static ALWAYS_INLINE __m256 pool_ld8(const float *p, int S) {
  if (S == 1)
    return _mm256_loadu_ps(p);
  __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 7);
  return _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));
}

AVX2 static ALWAYS_INLINE __m256 pool_unscramble(__m256 v, int S) {
  if (S == 1)
    return v;
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* NV vectors of eight outputs; their chains are independent, which hides vmaxps latency. */
AVX2 static ALWAYS_INLINE void fast_block_avx2(const float *src, int64_t nky, int64_t rstep,
                                               int64_t kw, int64_t dw, float *y, double div,
                                               bool max, int S, int NV) {
  if (max) {
    __m256 acc[4];
    for (int v = 0; v < NV; v++)
      acc[v] = pool_ld8(src + v * 8 * S, S);
    for (int64_t r = 0; r < nky; r++)
      for (int64_t kx = (r == 0); kx < kw; kx++) {
        const float *s = src + r * rstep + kx * dw;
        for (int v = 0; v < NV; v++) /* v > acc ? v : acc */
          acc[v] = _mm256_max_ps(pool_ld8(s + v * 8 * S, S), acc[v]);
      }
    for (int v = 0; v < NV; v++)
      _mm256_storeu_ps(y + 8 * v, pool_unscramble(acc[v], S));
    return;
  }
  __m256d lo[4], hi[4];
  for (int v = 0; v < NV; v++)
    lo[v] = hi[v] = _mm256_setzero_pd();
  for (int64_t r = 0; r < nky; r++)
    for (int64_t kx = 0; kx < kw; kx++) {
      const float *s = src + r * rstep + kx * dw;
      for (int v = 0; v < NV; v++) {
        __m256 t = pool_ld8(s + v * 8 * S, S);
        lo[v] = _mm256_add_pd(lo[v], _mm256_cvtps_pd(_mm256_castps256_ps128(t)));
        hi[v] = _mm256_add_pd(hi[v], _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
      }
    }
  __m256d d = _mm256_set1_pd(div);
  for (int v = 0; v < NV; v++) {
    __m128 a = _mm256_cvtpd_ps(_mm256_div_pd(lo[v], d));
    __m128 b = _mm256_cvtpd_ps(_mm256_div_pd(hi[v], d));
    _mm256_storeu_ps(y + 8 * v, pool_unscramble(_mm256_set_m128(b, a), S));
  }
}

AVX2 static ALWAYS_INLINE void fast_row_avx2_s(const float *src, int64_t nky, int64_t rstep,
                                               int64_t kw, int64_t dw, float *y, int64_t n,
                                               double div, bool max, int S) {
  int64_t j = 0;
  for (; j + 32 <= n; j += 32)
    fast_block_avx2(src + j * S, nky, rstep, kw, dw, y + j, div, max, S, 4);
  for (; j + 8 <= n; j += 8)
    fast_block_avx2(src + j * S, nky, rstep, kw, dw, y + j, div, max, S, 1);
  /* The last few columns: one more vector ending at n recomputes some outputs, which is
   * harmless since each output depends only on x. */
  if (j < n)
    fast_block_avx2(src + (n - 8) * S, nky, rstep, kw, dw, y + n - 8, div, max, S, 1);
}

AVX2 static void fast_row_avx2(const float *src, int64_t nky, int64_t rstep, int64_t kw, int64_t dw,
                               int64_t sw, float *y, int64_t n, double div, bool max) {
  if (n >= 8 && sw == 1)
    fast_row_avx2_s(src, nky, rstep, kw, dw, y, n, div, max, 1);
  else if (n >= 8 && sw == 2)
    fast_row_avx2_s(src, nky, rstep, kw, dw, y, n, div, max, 2);
  else if (max)
    fast_row_c(src, nky, rstep, kw, dw, sw, y, n, div, true);
  else
    fast_row_c(src, nky, rstep, kw, dw, sw, y, n, div, false);
}

/* MaxPool's 3x3 windows of stride 2 without dilation (SqueezeNet's, ResNet's, AlexNet's), over
 * the rows and columns whose windows lie inside the input. Output rows overlap by one input row,
 * so instead of taking nine taps per output, each input row's three taps are reduced once, and
 * a strip of columns goes down the plane with the last row's reduction kept in registers for the
 * next output row: each input row is loaded once per strip, each load serves several taps, and
 * no tap loop or output row pays a call.
 *
 * The result is still the scan's over (ky, kx). When the window's first tap is NaN the scan
 * keeps it; otherwise it skips NaNs and ends at the first tap, in that order, that equals the
 * maximum of the taps that are numbers. Reducing row by row finds the same tap if each row yields
 * its own first maximum and never a NaN, and the rows are then scanned after the window's first
 * tap. So a row starts from max(first tap, -inf), which turns a NaN into -inf: a -inf tap has the
 * same bits, and a row without numbers gives -inf, which never replaces what the scan holds. */

/* One input row under eight outputs, in pool_ld8's order: e gets the first taps and g the
 * row's maximum as above. p[0..16] are the taps: p and p + 8 give the first ones, p + 1
 * and p + 9 both the second and the third, so three shuffles take four loads. */
AVX2 static ALWAYS_INLINE void max33s2_row(const float *p, __m256 ninf, __m256 *e, __m256 *g) {
  __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  __m256 c = _mm256_loadu_ps(p + 1), d = _mm256_loadu_ps(p + 9);
  __m256 e0 = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
  __m256 o = _mm256_shuffle_ps(c, d, _MM_SHUFFLE(2, 0, 2, 0));
  __m256 e1 = _mm256_shuffle_ps(c, d, _MM_SHUFFLE(3, 1, 3, 1));
  *e = e0;
  *g = _mm256_max_ps(e1, _mm256_max_ps(o, _mm256_max_ps(e0, ninf)));
}

/* -O2 does not peel the vector loops below by itself, and unpeeled they keep e and g in memory. */
#define POOL_UNROLL _Pragma("GCC unroll 4")

/* NV vectors of eight output columns, starting at col[v], down `rows` output rows; x is the
 * first window's top left tap, iw and ow the row lengths. */
AVX2 static ALWAYS_INLINE void max33s2_strip(const float *x, int64_t iw, float *y, int64_t ow,
                                             int64_t rows, const int64_t *col, int NV) {
  __m256 ninf = _mm256_set1_ps(-INFINITY), e[4], g[4];
  POOL_UNROLL
  for (int v = 0; v < NV; v++)
    max33s2_row(x + 2 * col[v], ninf, &e[v], &g[v]);
  for (int64_t r = 0; r < rows; r++) {
    const float *x1 = x + (2 * r + 1) * iw, *x2 = x1 + iw;
    POOL_UNROLL
    for (int v = 0; v < NV; v++) {
      __m256 e1, g1, e2, g2;
      max33s2_row(x1 + 2 * col[v], ninf, &e1, &g1);
      max33s2_row(x2 + 2 * col[v], ninf, &e2, &g2);
      __m256 m = _mm256_max_ps(g2, _mm256_max_ps(g1, _mm256_max_ps(g[v], e[v])));
      _mm256_storeu_ps(y + r * ow + col[v], pool_unscramble(m, 2));
      e[v] = e2;
      g[v] = g2;
    }
  }
}

/* n >= 8 columns: vectors every eight columns, the last one ending at n (recomputing a few
 * outputs, as in fast_row_avx2_s). Up to four go down the plane together, for independent
 * chains and whole cache lines of each input row. */
AVX2 static void max33s2_block(const float *x, int64_t iw, float *y, int64_t ow, int64_t n,
                               int64_t rows) {
  int64_t nv = (n + 7) / 8;
  for (int64_t v0 = 0; v0 < nv; v0 += 4) {
    int64_t col[4];
    int m = nv - v0 < 4 ? (int)(nv - v0) : 4;
    for (int v = 0; v < m; v++)
      col[v] = 8 * (v0 + v) < n - 8 ? 8 * (v0 + v) : n - 8;
    switch (m) {
    case 4: max33s2_strip(x, iw, y, ow, rows, col, 4); break;
    case 3: max33s2_strip(x, iw, y, ow, rows, col, 3); break;
    case 2: max33s2_strip(x, iw, y, ow, rows, col, 2); break;
    default: max33s2_strip(x, iw, y, ow, rows, col, 1); break;
    }
  }
}
#endif

typedef struct fast_job {
  const pool_plan *p;
  pool_taps taps;
  int64_t ix_lo, ix_hi;
  /* Output rows for max33s2_block (with AVX2); empty when the window is not 3x3 of stride 2
   * or fewer than eight columns are interior. */
  int64_t k33_lo, k33_hi;
  const float *x;
  float *y;
} fast_job;

/* Output rows [oy0, oy1) of a plane. */
static ALWAYS_INLINE void fast_rows(const pool_plan *p, const pool_taps *tp, int64_t ix_lo,
                                    int64_t ix_hi, const float *x, float *y, int64_t oy0,
                                    int64_t oy1, bool max, bool avx2) {
  const nn_window *w = &p->w;
  int64_t ow = w->out[2], kw = w->k[2];
  for (int64_t oy = oy0; oy < oy1; oy++) {
    float *yrow = y + oy * ow;
    int64_t ky0 = tp->k0[1][oy], ky1 = tp->k1[1][oy];
    if (ky0 == ky1 || ix_lo == ix_hi) {
      fast_edge(p, tp, x, yrow, oy, 0, ow, max);
      continue;
    }
    fast_edge(p, tp, x, yrow, oy, 0, ix_lo, max);
    fast_edge(p, tp, x, yrow, oy, ix_hi, ow, max);
    const float *src =
        x + (oy * w->s[1] - w->pb[1] + ky0 * w->d[1]) * w->in[2] + ix_lo * w->s[2] - w->pb[2];
    int64_t cnt = (p->count_include_pad ? tp->npad[0][0] * tp->npad[1][oy] : ky1 - ky0) * kw;
#ifdef POOL_HAVE_AVX2
    if (avx2) {
      fast_row_avx2(src, ky1 - ky0, w->d[1] * w->in[2], kw, w->d[2], w->s[2], yrow + ix_lo,
                    ix_hi - ix_lo, (double)cnt, max);
      continue;
    }
#endif
    (void)avx2;
    fast_row_c(src, ky1 - ky0, w->d[1] * w->in[2], kw, w->d[2], w->s[2], yrow + ix_lo,
               ix_hi - ix_lo, (double)cnt, max);
  }
}

static ALWAYS_INLINE void fast_plane(const fast_job *j, const float *x, float *y, bool max,
                                     bool avx2) {
  const pool_plan *p = j->p;
  const pool_taps *tp = &j->taps;
  const nn_window *w = &p->w;
#ifdef POOL_HAVE_AVX2
  int64_t lo = j->k33_lo, hi = j->k33_hi, ow = w->out[2];
  if (avx2 && max && lo < hi) {
    fast_rows(p, tp, j->ix_lo, j->ix_hi, x, y, 0, lo, true, true);
    if (j->ix_lo > 0 || j->ix_hi < ow)
      for (int64_t oy = lo; oy < hi; oy++) {
        fast_edge(p, tp, x, y + oy * ow, oy, 0, j->ix_lo, true);
        fast_edge(p, tp, x, y + oy * ow, oy, j->ix_hi, ow, true);
      }
    max33s2_block(x + (lo * 2 - w->pb[1]) * w->in[2] + j->ix_lo * 2 - w->pb[2], w->in[2],
                  y + lo * ow + j->ix_lo, ow, j->ix_hi - j->ix_lo, hi - lo);
    fast_rows(p, tp, j->ix_lo, j->ix_hi, x, y, hi, w->out[1], true, true);
    return;
  }
#endif
  fast_rows(p, tp, j->ix_lo, j->ix_hi, x, y, 0, w->out[1], max, avx2);
}

/* The maximum of x[0..n), n >= 1, as the sequential `v > acc` scan finds it: eight lanes each
 * start from x[0] (so a NaN there wins, as it does in the scan, and later NaNs lose); the
 * only values that compare equal with different bits are the zeros, and for them the scan keeps
 * the first. */
static ALWAYS_INLINE float fast_gmax(const float *x, size_t n) {
  float m[8];
  for (int l = 0; l < 8; l++)
    m[l] = x[0];
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++)
      m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
  for (; i < n; i++)
    m[0] = x[i] > m[0] ? x[i] : m[0];
  float r = m[0];
  for (int l = 1; l < 8; l++)
    r = m[l] > r ? m[l] : r;
  if (r == 0.0f)
    for (i = 0; i < n; i++)
      if (x[i] == 0.0f)
        return x[i];
  return r;
}

static ALWAYS_INLINE float fast_gavg(const float *x, size_t n) {
  double s[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++)
      s[l] += x[i + l];
  for (; i < n; i++)
    s[0] += x[i];
  double t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  return n ? (float)(t / (double)n) : 0.0f;
}

#ifdef POOL_HAVE_AVX2
/* fast_gavg with sixteen partial sums in four vectors of doubles: gcc leaves the loop above
 * scalar, and its chains of additions, not the memory, bounded the speed (EfficientNet-B0's
 * seventeen global averages, one thread: 0.34 ms against ONNX Runtime's 0.22). */
AVX2 static float fast_gavg_avx2(const float *x, size_t n) {
  __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
    s2 = _mm256_add_pd(s2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
    s3 = _mm256_add_pd(s3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
  }
  _Alignas(32) double s[4];
  _mm256_store_pd(s, _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
  for (; i < n; i++)
    s[0] += x[i];
  double t = (s[0] + s[1]) + (s[2] + s[3]);
  return n ? (float)(t / (double)n) : 0.0f;
}
#endif

#ifdef POOL_HAVE_AVX2
/* GlobalAveragePool over blocked planes (nchwc.h): block b of eight channels sums its pixels
 * lane by lane, in doubles as fast_gavg_avx2 does, four pixels in flight. */
typedef struct gavg_blocked_job {
  const float *x;
  float *y;
  size_t n; /* pixels */
} gavg_blocked_job;

AVX2 static void gavg_blocked_task(void *arg, size_t begin, size_t end) {
  const gavg_blocked_job *j = arg;
  size_t n = j->n;
  for (size_t b = begin; b < end; b++) {
    const float *x = j->x + b * n * 8;
    /* Named accumulators: an array of them, indexed in a loop gcc does not unroll, lived in
     * memory (twice the time of the NCHW kernel). */
    __m256d l0 = _mm256_setzero_pd(), h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0, l3 = l0, h3 = l0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4, x += 32) {
      l0 = _mm256_add_pd(l0, _mm256_cvtps_pd(_mm_loadu_ps(x)));
      h0 = _mm256_add_pd(h0, _mm256_cvtps_pd(_mm_loadu_ps(x + 4)));
      l1 = _mm256_add_pd(l1, _mm256_cvtps_pd(_mm_loadu_ps(x + 8)));
      h1 = _mm256_add_pd(h1, _mm256_cvtps_pd(_mm_loadu_ps(x + 12)));
      l2 = _mm256_add_pd(l2, _mm256_cvtps_pd(_mm_loadu_ps(x + 16)));
      h2 = _mm256_add_pd(h2, _mm256_cvtps_pd(_mm_loadu_ps(x + 20)));
      l3 = _mm256_add_pd(l3, _mm256_cvtps_pd(_mm_loadu_ps(x + 24)));
      h3 = _mm256_add_pd(h3, _mm256_cvtps_pd(_mm_loadu_ps(x + 28)));
    }
    for (; i < n; i++, x += 8) {
      l0 = _mm256_add_pd(l0, _mm256_cvtps_pd(_mm_loadu_ps(x)));
      h0 = _mm256_add_pd(h0, _mm256_cvtps_pd(_mm_loadu_ps(x + 4)));
    }
    __m256d lo = _mm256_add_pd(_mm256_add_pd(l0, l1), _mm256_add_pd(l2, l3));
    __m256d hi = _mm256_add_pd(_mm256_add_pd(h0, h1), _mm256_add_pd(h2, h3));
    __m256d dn = _mm256_set1_pd((double)n); /* divided, as fast_gavg does */
    __m128 l = _mm256_cvtpd_ps(_mm256_div_pd(lo, dn)), h = _mm256_cvtpd_ps(_mm256_div_pd(hi, dn));
    _mm256_storeu_ps(j->y + b * 8, _mm256_set_m128(h, l));
  }
}

void cpu_nchwc_global_mean(cpu_ctx *ctx, const float *x, size_t blocks, size_t hw, float *y) {
  gavg_blocked_job j = {.x = x, .y = y, .n = hw};
  cpu_parallel_for(ctx, blocks, nn_grain(hw * 8, 1 << 15), gavg_blocked_task, &j);
}
#endif

#ifdef POOL_HAVE_AVX2
/* -O2 leaves these short constant loops rolled, and the eight accumulators in memory. */
#define POOL_UNROLL8 _Pragma("GCC unroll 8")

/* MaxPool over a blocked input (nchwc.h), 2-D, into a blocked output, or a plain NCHW one where
 * the chain ends there (the pool's output, four times smaller than a stem's, then takes the
 * transposes). Each output pixel is one vector of eight channels, the maximum over its window's
 * taps inside the input in the order the plane kernels take them (first tap, then
 * v > acc ? v : acc: the same NaNs); an empty window gives 0. For a plain output, eight pixels
 * of a row are transposed into the eight channel planes. Items are rows of a block of eight
 * channels. */
typedef struct maxpool_blocked_job {
  const pool_plan *p;
  const float *x;
  float *y;
  bool plain; /* the output is NCHW */
  int64_t rows;  /* output rows per item */
  size_t nchunk; /* items per block */
  size_t blocks, per_image; /* blocks of an image, items of an image */
} maxpool_blocked_job;

AVX2 static __m256 maxpool_blocked_pixel(const nn_window *w, const float *xb, int64_t oy,
                                         int64_t ox) {
  int64_t iy0 = oy * w->s[1] - w->pb[1], ix0 = ox * w->s[2] - w->pb[2];
  __m256 acc = _mm256_setzero_ps();
  bool any = false;
  for (int64_t ky = 0; ky < w->k[1]; ky++) {
    int64_t iy = iy0 + ky * w->d[1];
    if (iy < 0 || iy >= w->in[1])
      continue;
    for (int64_t kx = 0; kx < w->k[2]; kx++) {
      int64_t ix = ix0 + kx * w->d[2];
      if (ix < 0 || ix >= w->in[2])
        continue;
      __m256 v = _mm256_loadu_ps(xb + (iy * w->in[2] + ix) * 8);
      acc = any ? _mm256_max_ps(v, acc) : v;
      any = true;
    }
  }
  return acc;
}

/* Eight interior pixels from column ox (every tap inside the input across), kernel rows
 * [ky0, ky1): the first tap, then the others in the plane kernels' order. KW compile-time for
 * 3-wide windows without dilation, else 0. */
AVX2 static ALWAYS_INLINE void maxpool_blocked_8(const nn_window *w, const float *xb, int64_t oy,
                                                 int64_t ox, int64_t ky0, int64_t ky1, __m256 v[8],
                                                 int KW) {
  int64_t kw = KW ? KW : w->k[2], dx = (KW ? 1 : w->d[2]) * 8, sx = w->s[2] * 8;
  int64_t iy0 = oy * w->s[1] - w->pb[1];
  const float *r0 = xb + ((iy0 + ky0 * w->d[1]) * w->in[2] + ox * w->s[2] - w->pb[2]) * 8;
  POOL_UNROLL8
  for (int i = 0; i < 8; i++)
    v[i] = _mm256_loadu_ps(r0 + i * sx);
  for (int64_t ky = ky0; ky < ky1; ky++) {
    const float *r = xb + ((iy0 + ky * w->d[1]) * w->in[2] + ox * w->s[2] - w->pb[2]) * 8;
    POOL_UNROLL8
    for (int64_t kx = ky == ky0; kx < kw; kx++) {
      POOL_UNROLL8
      for (int i = 0; i < 8; i++)
        v[i] = _mm256_max_ps(_mm256_loadu_ps(r + i * sx + kx * dx), v[i]);
    }
  }
}

AVX2 static void maxpool_blocked_task(void *arg, size_t begin, size_t end) {
  const maxpool_blocked_job *j = arg;
  const nn_window *w = &j->p->w;
  size_t out_sp = j->p->out_sp;
  int64_t ow = w->out[2], ih = w->in[1];
  /* Interior columns: every tap inside the input across. */
  int64_t ox_lo, ox_hi;
  valid_range(ow, w->s[2], -w->pb[2], w->in[2] - (w->k[2] - 1) * w->d[2], &ox_lo, &ox_hi);
  bool k3 = w->k[2] == 3 && w->d[2] == 1;
  for (size_t it = begin; it < end; it++) {
    /* Items run over the blocks of a chunk of rows, then the next chunk (cpu_parallel_for). */
    size_t r = it % j->per_image, chunk = r / j->blocks;
    size_t blk = it / j->per_image * j->blocks + r % j->blocks;
    const float *xb = j->x + blk * j->p->in_sp * 8;
    float *yb = j->y + blk * 8 * out_sp; /* block b of image n: channels n * C + 8b.., or
                                            the block itself */
    int64_t oy0 = (int64_t)chunk * j->rows;
    int64_t oy1 = oy0 + j->rows < w->out[1] ? oy0 + j->rows : w->out[1];
    for (int64_t oy = oy0; oy < oy1; oy++) {
      int64_t iy0 = oy * w->s[1] - w->pb[1];
      int64_t ky0 = iy0 < 0 ? nn_ceildiv(-iy0, w->d[1]) : 0;
      int64_t ky1 = ih - iy0 <= 0 ? 0 : nn_ceildiv(ih - iy0, w->d[1]);
      ky1 = ky1 > w->k[1] ? w->k[1] : ky1;
      float *yr = yb + oy * ow * (j->plain ? 1 : 8);
      int64_t ox = 0;
      while (ox < ow) {
        __m256 v[8];
        int np;
        if (ox >= ox_lo && ox < ox_hi && ox_hi - ox_lo >= 8 && ky0 < ky1) {
          /* A last block that would run past the interior ends at its end instead,
           * recomputing a few pixels. */
          ox = ox + 8 <= ox_hi ? ox : ox_hi - 8;
          np = 8;
          if (k3)
            maxpool_blocked_8(w, xb, oy, ox, ky0, ky1, v, 3);
          else
            maxpool_blocked_8(w, xb, oy, ox, ky0, ky1, v, 0);
        } else {
          /* Up to the next interior run, or eight pixels, one at a time. */
          int64_t stop = ox < ox_lo ? ox_lo : ow;
          np = stop - ox < 8 ? (int)(stop - ox) : 8;
          for (int i = 0; i < np; i++)
            v[i] = maxpool_blocked_pixel(w, xb, oy, ox + i);
        }
        if (!j->plain) {
          for (int i = 0; i < np; i++)
            _mm256_storeu_ps(yr + (ox + i) * 8, v[i]);
        } else if (np == 8) {
          cpu_tr8x8(v);
          POOL_UNROLL8
          for (int c = 0; c < 8; c++)
            _mm256_storeu_ps(yr + (size_t)c * out_sp + ox, v[c]);
        } else {
          _Alignas(32) float t[8][8];
          for (int i = 0; i < np; i++)
            _mm256_store_ps(t[i], v[i]);
          for (int c = 0; c < 8; c++)
            for (int i = 0; i < np; i++)
              yr[(size_t)c * out_sp + ox + i] = t[i][c];
        }
        ox += np;
      }
    }
  }
}

static void nchwc_maxpool(cpu_ctx *ctx, const pool_plan *p, size_t images, const float *x, float *y,
                          bool plain) {
  const nn_window *w = &p->w;
  int64_t per_row = w->out[2] * w->k[1] * w->k[2] * 8 + 1;
  int64_t rows = (int64_t)(1 << 14) / per_row + 1;
  rows = rows > w->out[1] ? w->out[1] : rows;
  maxpool_blocked_job j = {.p = p, .x = x, .y = y, .plain = plain, .rows = rows};
  j.nchunk = (size_t)((w->out[1] + rows - 1) / rows);
  j.blocks = p->planes / 8 / (images ? images : 1);
  j.per_image = j.blocks * j.nchunk;
  cpu_parallel_for(ctx, p->planes / 8 * j.nchunk, 1, maxpool_blocked_task, &j);
}
#endif

/* MaxPool's and GlobalAveragePool's role in the blocked layout (cpu_op.nchwc_role). */
static cpu_nchwc_role pool_nchwc_role(const cpu_node *n, cpu_isa isa) {
#ifdef POOL_HAVE_AVX2
  const cpu_tensor *x = &n->in[0];
  if (isa != CPU_ISA_AVX2_FMA || n->n_in != 1 || n->n_out != 1 || x->dtype != TSR_DTYPE_FLOAT32 ||
      x->rank != 4 || x->dims[1] % 8 != 0 || n->out[0].dtype != TSR_DTYPE_FLOAT32)
    return CPU_NCHWC_NONE;
  if (strcmp(n->op_type, "GlobalAveragePool") == 0)
    return CPU_NCHWC_SINK;
  char msg[160];
  pool_plan p;
  if (strcmp(n->op_type, "MaxPool") == 0 &&
      !pool_setup(n, n->in, n->out, POOL_MAX, false, &p, msg, sizeof msg) && !p.indices &&
      p.w.nsp == 2)
    return CPU_NCHWC_BLOCKED;
#else
  (void)n, (void)isa;
#endif
  return CPU_NCHWC_NONE;
}

static ALWAYS_INLINE void fast_planes(const fast_job *j, size_t begin, size_t end, bool avx2) {
  const pool_plan *p = j->p;
  bool max = p->kind == POOL_MAX;
  for (size_t pl = begin; pl < end; pl++) {
    const float *x = j->x + pl * p->in_sp;
    if (p->global) {
      if (p->in_sp == 0)
        j->y[pl] = 0.0f;
#ifdef POOL_HAVE_AVX2
      else if (avx2 && !max)
        j->y[pl] = fast_gavg_avx2(x, p->in_sp);
#endif
      else
        j->y[pl] = max ? fast_gmax(x, p->in_sp) : fast_gavg(x, p->in_sp);
      continue;
    }
    float *y = j->y + pl * p->out_sp;
    if (max)
      fast_plane(j, x, y, true, avx2);
    else
      fast_plane(j, x, y, false, avx2);
  }
}

static void fast_task(void *arg, size_t begin, size_t end) { fast_planes(arg, begin, end, false); }

#ifdef POOL_HAVE_AVX2
AVX2 static void fast_task_avx2(void *arg, size_t begin, size_t end) {
  fast_planes(arg, begin, end, true);
}
#endif

/* Whether the fast path takes this plan (the dtype is checked by the caller). */
static bool fast_ok(const pool_plan *p) {
  if (p->kind == POOL_LP || p->indices)
    return false;
  return p->global || p->w.nsp <= 2;
}

/* A pool over a blocked input (cpu_node.nchwc: plugin.c asked pool_nchwc_role, so float32
 * with C a multiple of eight); its output, blocked for MaxPool unless plain (cpu_node.
 * nchwc_out_plain), and the same either way for the global average. Anything else fails
 * rather than read the blocked input as planes. */
static int pool_run_nchwc(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *in, cpu_tensor *out,
                          const pool_plan *p, pool_kind kind, bool global) {
#ifdef POOL_HAVE_AVX2
  if (ctx->isa == CPU_ISA_AVX2_FMA && in[0].dtype == TSR_DTYPE_FLOAT32 && p->planes % 8 == 0) {
    if (global && kind == POOL_AVG) {
      cpu_nchwc_global_mean(ctx, in[0].data, p->planes / 8, p->in_sp, out[0].data);
      return 0;
    }
    if (!global && kind == POOL_MAX && p->w.nsp == 2 && !p->indices) {
      nchwc_maxpool(ctx, p, (size_t)in[0].dims[0], in[0].data, out[0].data, n->nchwc_out_plain);
      return 0;
    }
  }
#else
  (void)n, (void)in, (void)out, (void)p, (void)kind, (void)global;
#endif
  return cpu_fail(ctx, "blocked input that this pooling kernel cannot read");
}

static int pool_run_common(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *in, cpu_tensor *out,
                           pool_kind kind, bool global) {
  char msg[256];
  pool_plan p;
  if (pool_setup(n, in, out, kind, global, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (out[0].count == 0)
    return 0;
  if (n->nchwc)
    return pool_run_nchwc(ctx, n, in, out, &p, kind, global);
  size_t per = global ? p.in_sp : p.out_sp * nn_prod(p.w.k, 0, NN_SP);
  size_t grain = nn_grain(per, 1 << 15);
  pool_job j = {.p = &p, .ind = p.indices ? out[1].data : NULL};
  int64_t *taps_buf = NULL;
  if (!global && !(taps_buf = pool_taps_build(&p.w, &j.taps)))
    return cpu_fail(ctx, "out of memory");
  uint32_t dt = in[0].dtype;
  if (dt == TSR_DTYPE_FLOAT32 && fast_ok(&p)) {
    fast_job fj = {.p = &p, .taps = j.taps, .x = in[0].data, .y = out[0].data};
    void (*task)(void *, size_t, size_t) = fast_task;
    if (!global) {
      const nn_window *w = &p.w;
      fast_interior(&p, &fj.taps, 2, &fj.ix_lo, &fj.ix_hi);
      if (kind == POOL_MAX && w->nsp == 2 && w->k[1] == 3 && w->k[2] == 3 && w->s[1] == 2 &&
          w->s[2] == 2 && w->d[1] == 1 && w->d[2] == 1 && fj.ix_hi - fj.ix_lo >= 8)
        fast_interior(&p, &fj.taps, 1, &fj.k33_lo, &fj.k33_hi);
    }
#ifdef POOL_HAVE_AVX2
    if (ctx->isa == CPU_ISA_AVX2_FMA)
      task = fast_task_avx2;
#endif
    cpu_parallel_for(ctx, p.planes, grain, task, &fj);
    free(taps_buf);
    return 0;
  }
  float *xf = NULL, *yf = NULL;
  if (dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64) {
    j.x = in[0].data;
    j.y = out[0].data;
  } else {
    xf = nn_f32_copy(&in[0]);
    yf = malloc(out[0].count * sizeof *yf);
    if (!xf || !yf) {
      free(xf), free(yf), free(taps_buf);
      return cpu_fail(ctx, "out of memory");
    }
    j.x = xf;
    j.y = yf;
  }
  cpu_parallel_for(ctx, p.planes, grain, dt == TSR_DTYPE_FLOAT64 ? pool_task_f64 : pool_task_f32,
                   &j);
  if (yf)
    nn_f32_store(&out[0], yf);
  free(xf), free(yf), free(taps_buf);
  return 0;
}

#define POOL_ENTRY(fn, kind, global)                                                               \
  static tsr_plugin_reason fn##_check(const cpu_node *n, char *msg, size_t size) {                 \
    pool_plan p;                                                                                   \
    return pool_setup(n, n->in, n->out, kind, global, &p, msg, size);                              \
  }                                                                                                \
  static int fn##_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,          \
                      cpu_tensor *out) {                                                           \
    return pool_run_common(ctx, n, in, out, kind, global);                                         \
  }

POOL_ENTRY(maxpool, POOL_MAX, false)
POOL_ENTRY(avgpool, POOL_AVG, false)
POOL_ENTRY(lppool, POOL_LP, false)
POOL_ENTRY(gmaxpool, POOL_MAX, true)
POOL_ENTRY(gavgpool, POOL_AVG, true)
POOL_ENTRY(glppool, POOL_LP, true)

static const cpu_op pool_ops[] = {
    {"MaxPool", "", 1, 17, maxpool_check, NULL, maxpool_run, NULL, pool_nchwc_role},
    {"AveragePool", "", 1, 17, avgpool_check, NULL, avgpool_run, NULL},
    {"LpPool", "", 1, 17, lppool_check, NULL, lppool_run, NULL},
    {"GlobalMaxPool", "", 1, 17, gmaxpool_check, NULL, gmaxpool_run, NULL},
    {"GlobalAveragePool", "", 1, 17, gavgpool_check, NULL, gavgpool_run, NULL, pool_nchwc_role},
    {"GlobalLpPool", "", 1, 17, glppool_check, NULL, glppool_run, NULL},
};

const cpu_op_list cpu_ops_pool = {pool_ops, sizeof pool_ops / sizeof pool_ops[0]};
