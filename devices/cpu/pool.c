/* MaxPool (with the optional Indices output), AveragePool, LpPool and their Global forms, over
 * 1-D, 2-D and 3-D windows.
 *
 * One kernel computes a plane (one image, one channel): it clips each window to the input
 * once per dimension, so the inner loops carry no bounds checks. It reads float32 or float64
 * and works in double (exact for maxima, and sums of a window lose nothing); it is written
 * once and specialised per dtype by inlining. float16, int8 and uint8 are staged through
 * float32, which holds all of their values exactly. Empty windows (possible only when padding
 * is as large as the kernel, or with ceil_mode) give 0. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
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

static int pool_run_common(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *in, cpu_tensor *out,
                           pool_kind kind, bool global) {
  char msg[256];
  pool_plan p;
  if (pool_setup(n, in, out, kind, global, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (out[0].count == 0)
    return 0;
  size_t per = global ? p.in_sp : p.out_sp * nn_prod(p.w.k, 0, NN_SP);
  size_t grain = nn_grain(per, 1 << 15);
  pool_job j = {.p = &p, .ind = p.indices ? out[1].data : NULL};
  int64_t *taps_buf = NULL;
  if (!global && !(taps_buf = pool_taps_build(&p.w, &j.taps)))
    return cpu_fail(ctx, "out of memory");
  uint32_t dt = in[0].dtype;
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
    {"MaxPool", "", 1, 17, maxpool_check, NULL, maxpool_run, NULL},
    {"AveragePool", "", 1, 17, avgpool_check, NULL, avgpool_run, NULL},
    {"LpPool", "", 1, 17, lppool_check, NULL, lppool_run, NULL},
    {"GlobalMaxPool", "", 1, 17, gmaxpool_check, NULL, gmaxpool_run, NULL},
    {"GlobalAveragePool", "", 1, 17, gavgpool_check, NULL, gavgpool_run, NULL},
    {"GlobalLpPool", "", 1, 17, glppool_check, NULL, glppool_run, NULL},
};

const cpu_op_list cpu_ops_pool = {pool_ops, sizeof pool_ops / sizeof pool_ops[0]};
