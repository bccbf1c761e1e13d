/* BatchNormalization (inference, and training mode from opset 14), LayerNormalization,
 * InstanceNormalization and LRN.
 *
 * Statistics are accumulated in double with two passes (mean, then squared deviations), which
 * keeps the variance accurate for inputs with a large mean. Each kernel is written once over a
 * dtype "mode" (float32, float64, or anything else through cpu_read_f64/cpu_write_f64) and
 * inlined per mode, so the float32 and float64 loops are plain array loops. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/nn_util.h"
#include "devices/cpu/vmath_avx2.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

enum { MODE_F32 = 0, MODE_F64 = 1, MODE_ANY = 2 };

static int mode_of(uint32_t dt) {
  return dt == TSR_DTYPE_FLOAT32 ? MODE_F32 : dt == TSR_DTYPE_FLOAT64 ? MODE_F64 : MODE_ANY;
}

static ALWAYS_INLINE double ldm(const cpu_tensor *t, int mode, size_t i) {
  if (mode == MODE_F32)
    return ((const float *)t->data)[i];
  if (mode == MODE_F64)
    return ((const double *)t->data)[i];
  return cpu_read_f64(t, i);
}

static ALWAYS_INLINE void stm(cpu_tensor *t, int mode, size_t i, double v) {
  if (mode == MODE_F32)
    ((float *)t->data)[i] = (float)v;
  else if (mode == MODE_F64)
    ((double *)t->data)[i] = v;
  else
    cpu_write_f64(t, i, v);
}

/* Runs body(job, begin, end, MODE) specialised for each mode. */
#define DISPATCH_MODE(mode, call)                                                                  \
  do {                                                                                             \
    if ((mode) == MODE_F32) {                                                                      \
      const int M_ = MODE_F32;                                                                     \
      call;                                                                                        \
    } else if ((mode) == MODE_F64) {                                                               \
      const int M_ = MODE_F64;                                                                     \
      call;                                                                                        \
    } else {                                                                                       \
      const int M_ = MODE_ANY;                                                                     \
      call;                                                                                        \
    }                                                                                              \
  } while (0)

static bool norm_dtype_ok(uint32_t dt) { return nn_is_float(dt); }

/* Mean and population variance of n values at t[base + i], two passes in double. Four
 * partial sums keep the adds from waiting on each other's latency. */
static ALWAYS_INLINE void moments(const cpu_tensor *t, int mode, size_t base, size_t n,
                                  double *mean, double *var) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += ldm(t, mode, base + i);
    s1 += ldm(t, mode, base + i + 1);
    s2 += ldm(t, mode, base + i + 2);
    s3 += ldm(t, mode, base + i + 3);
  }
  for (; i < n; i++)
    s0 += ldm(t, mode, base + i);
  double mu = n ? ((s0 + s1) + (s2 + s3)) / (double)n : 0.0;
  double q0 = 0, q1 = 0, q2 = 0, q3 = 0;
  for (i = 0; i + 4 <= n; i += 4) {
    double d0 = ldm(t, mode, base + i) - mu, d1 = ldm(t, mode, base + i + 1) - mu;
    double d2 = ldm(t, mode, base + i + 2) - mu, d3 = ldm(t, mode, base + i + 3) - mu;
    q0 += d0 * d0;
    q1 += d1 * d1;
    q2 += d2 * d2;
    q3 += d3 * d3;
  }
  for (; i < n; i++) {
    double d = ldm(t, mode, base + i) - mu;
    q0 += d * d;
  }
  *mean = mu;
  *var = n ? ((q0 + q1) + (q2 + q3)) / (double)n : 0.0;
}

/* ---- BatchNormalization --------------------------------------------------------------- */

typedef struct bn_plan {
  size_t N, C, sp;
  size_t per; /* parameters per input: C, or C * sp for the non-spatial form of opset 7 */
  bool training;
  double eps, momentum;
} bn_plan;

static tsr_plugin_reason bn_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                  bn_plan *p, char *msg, size_t size) {
  char s1[96], s2[96];
  memset(p, 0, sizeof *p);
  if (n->n_in < 5 || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "expects X, scale, B, mean and var, and output Y");
  for (int i = 0; i < 5; i++)
    if (!in[i].present)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "input %d is missing", i);
  const cpu_tensor *x = &in[0];
  if (!norm_dtype_ok(x->dtype) || out[0].dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(x->dtype));
  for (int i = 1; i < 5; i++)
    if (!norm_dtype_ok(in[i].dtype))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "input %d is %s", i,
                        cpu_dtype_name(in[i].dtype));
  if (x->rank < 2)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "X has rank %u, needs N and C", x->rank);
  bool same = out[0].rank == x->rank;
  for (uint32_t i = 0; same && i < x->rank; i++)
    same = out[0].dims[i] == x->dims[i];
  if (!same)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "Y %s differs from X %s",
                      nn_dims_str(s1, sizeof s1, out[0].rank, out[0].dims),
                      nn_dims_str(s2, sizeof s2, x->rank, x->dims));
  p->N = (size_t)x->dims[0];
  p->C = (size_t)x->dims[1];
  p->sp = nn_prod(x->dims, 2, x->rank);
  p->eps = cpu_attr_float(n, "epsilon", 1e-5f);
  p->momentum = cpu_attr_float(n, "momentum", 0.9f);
  bool spatial = n->opset >= 9 || cpu_attr_int(n, "spatial", 1) != 0;
  p->per = spatial ? p->C : p->C * p->sp;
  for (int i = 1; i < 5; i++)
    if (in[i].count != p->per || (spatial && in[i].rank != 1))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "input %d is %s, expected [%zu]%s", i,
                        nn_dims_str(s1, sizeof s1, in[i].rank, in[i].dims), p->C,
                        spatial ? "" : " x spatial dims");
  bool extra = false;
  for (uint32_t i = 1; i < n->n_out; i++)
    extra = extra || out[i].present;
  p->training = n->opset >= 14 && cpu_attr_int(n, "training_mode", 0) != 0;
  if (n->opset < 14 && extra)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "training outputs before opset 14 are not implemented");
  if (p->training && !spatial)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "training needs spatial mode");
  if (!p->training && extra)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "running_mean/running_var outputs need training_mode=1");
  for (uint32_t i = 1; i < n->n_out && i < 3; i++)
    if (out[i].present && (out[i].count != p->C || !norm_dtype_ok(out[i].dtype)))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output %u should be [%zu] floats", i,
                        p->C);
  if (n->n_out > 3)
    for (uint32_t i = 3; i < n->n_out; i++)
      if (out[i].present)
        return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "output %u is not produced", i);
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason bn_check(const cpu_node *n, char *msg, size_t size) {
  bn_plan p;
  return bn_setup(n, n->in, n->out, &p, msg, size);
}

typedef struct bn_job {
  const bn_plan *p;
  const cpu_tensor *x;
  cpu_tensor *y;
  const double *a, *b; /* y = x * a + b, per parameter */
  int mode;
} bn_job;

static ALWAYS_INLINE void bn_planes(const bn_job *j, size_t begin, size_t end, int mode) {
  const bn_plan *p = j->p;
  for (size_t plane = begin; plane < end; plane++) {
    size_t c = plane % p->C, base = plane * p->sp;
    if (p->per == p->C) {
      if (mode == MODE_F32) {
        /* The common case stays in float so that the loop is a plain FMA stream. */
        const float *x = (const float *)j->x->data + base;
        float *y = (float *)j->y->data + base;
        float a = (float)j->a[c], b = (float)j->b[c];
        for (size_t i = 0; i < p->sp; i++)
          y[i] = x[i] * a + b;
      } else {
        for (size_t i = 0; i < p->sp; i++)
          stm(j->y, mode, base + i, ldm(j->x, mode, base + i) * j->a[c] + j->b[c]);
      }
    } else {
      const double *a = j->a + c * p->sp, *b = j->b + c * p->sp;
      for (size_t i = 0; i < p->sp; i++)
        stm(j->y, mode, base + i, ldm(j->x, mode, base + i) * a[i] + b[i]);
    }
  }
}

static void bn_task(void *arg, size_t begin, size_t end) {
  const bn_job *j = arg;
  DISPATCH_MODE(j->mode, bn_planes(j, begin, end, M_));
}

typedef struct bn_stats_job {
  const bn_plan *p;
  const cpu_tensor *x;
  double *mean, *var;
  int mode;
} bn_stats_job;

/* Batch statistics of channels [begin, end) over the batch and spatial dims: per-plane
 * moments merged with Chan's formula, which stays exact in the two-pass sense. */
static ALWAYS_INLINE void bn_stats(const bn_stats_job *j, size_t begin, size_t end, int mode) {
  const bn_plan *p = j->p;
  for (size_t c = begin; c < end; c++) {
    double mu = 0.0, m2 = 0.0, cnt = 0.0;
    for (size_t n = 0; n < p->N; n++) {
      double pm, pv, pc = (double)p->sp;
      moments(j->x, mode, (n * p->C + c) * p->sp, p->sp, &pm, &pv);
      if (pc == 0)
        continue;
      double tot = cnt + pc, delta = pm - mu;
      mu += delta * pc / tot;
      m2 += pv * pc + delta * delta * cnt * pc / tot;
      cnt = tot;
    }
    j->mean[c] = mu;
    j->var[c] = cnt > 0 ? m2 / cnt : 0.0;
  }
}

static void bn_stats_task(void *arg, size_t begin, size_t end) {
  const bn_stats_job *j = arg;
  DISPATCH_MODE(j->mode, bn_stats(j, begin, end, M_));
}

static int bn_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                  cpu_tensor *out) {
  char msg[256];
  bn_plan p;
  if (bn_setup(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  int mode = mode_of(in[0].dtype);
  double *buf = malloc(4 * (p.per ? p.per : 1) * sizeof *buf);
  if (!buf)
    return cpu_fail(ctx, "out of memory");
  double *a = buf, *b = buf + p.per, *mean = buf + 2 * p.per, *var = buf + 3 * p.per;
  if (p.training) {
    bn_stats_job sj = {.p = &p, .x = &in[0], .mean = mean, .var = var, .mode = mode};
    cpu_parallel_for(ctx, p.C, nn_grain(p.N * p.sp, 1 << 15), bn_stats_task, &sj);
  } else {
    for (size_t i = 0; i < p.per; i++) {
      mean[i] = cpu_read_f64(&in[3], i);
      var[i] = cpu_read_f64(&in[4], i);
    }
  }
  for (size_t i = 0; i < p.per; i++) {
    a[i] = cpu_read_f64(&in[1], i) / sqrt(var[i] + p.eps);
    b[i] = cpu_read_f64(&in[2], i) - mean[i] * a[i];
  }
  if (out[0].count) {
    bn_job j = {.p = &p, .x = &in[0], .y = &out[0], .a = a, .b = b, .mode = mode};
    cpu_parallel_for(ctx, p.N * p.C, nn_grain(p.sp, 1 << 15), bn_task, &j);
  }
  if (p.training) {
    for (size_t i = 0; i < p.C; i++) {
      if (n->n_out > 1 && out[1].present)
        cpu_write_f64(&out[1], i,
                      cpu_read_f64(&in[3], i) * p.momentum + mean[i] * (1.0 - p.momentum));
      if (n->n_out > 2 && out[2].present)
        cpu_write_f64(&out[2], i,
                      cpu_read_f64(&in[4], i) * p.momentum + var[i] * (1.0 - p.momentum));
    }
  }
  free(buf);
  return 0;
}

/* ---- InstanceNormalization ------------------------------------------------------------ */

typedef struct in_job {
  const cpu_tensor *x, *scale, *bias;
  cpu_tensor *y;
  size_t C, sp;
  double eps;
  int mode;
} in_job;

static ALWAYS_INLINE void instnorm_planes(const in_job *j, size_t begin, size_t end, int mode) {
  for (size_t plane = begin; plane < end; plane++) {
    size_t c = plane % j->C, base = plane * j->sp;
    double mu, var;
    moments(j->x, mode, base, j->sp, &mu, &var);
    double a = cpu_read_f64(j->scale, c) / sqrt(var + j->eps);
    double b = cpu_read_f64(j->bias, c) - mu * a;
    for (size_t i = 0; i < j->sp; i++)
      stm(j->y, mode, base + i, ldm(j->x, mode, base + i) * a + b);
  }
}

static void instnorm_task(void *arg, size_t begin, size_t end) {
  const in_job *j = arg;
  DISPATCH_MODE(j->mode, instnorm_planes(j, begin, end, M_));
}

static tsr_plugin_reason instnorm_setup(const cpu_node *n, const cpu_tensor *in,
                                        const cpu_tensor *out, char *msg, size_t size) {
  char s1[96];
  if (n->n_in < 3 || n->n_out < 1 || !in[0].present || !in[1].present || !in[2].present ||
      !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects X, scale and B");
  const cpu_tensor *x = &in[0];
  if (!norm_dtype_ok(x->dtype) || out[0].dtype != x->dtype || !norm_dtype_ok(in[1].dtype) ||
      !norm_dtype_ok(in[2].dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(x->dtype));
  if (x->rank < 2 || out[0].count != x->count || out[0].rank != x->rank)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "X %s needs N and C, and Y its shape",
                      nn_dims_str(s1, sizeof s1, x->rank, x->dims));
  for (int i = 1; i < 3; i++)
    if (in[i].rank != 1 || in[i].dims[0] != x->dims[1])
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "input %d is %s, expected [%lld]", i,
                        nn_dims_str(s1, sizeof s1, in[i].rank, in[i].dims), (long long)x->dims[1]);
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason instnorm_check(const cpu_node *n, char *msg, size_t size) {
  return instnorm_setup(n, n->in, n->out, msg, size);
}

static int instnorm_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                        cpu_tensor *out) {
  char msg[256];
  if (instnorm_setup(n, in, out, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (out[0].count == 0)
    return 0;
  in_job j = {.x = &in[0],
              .scale = &in[1],
              .bias = &in[2],
              .y = &out[0],
              .C = (size_t)in[0].dims[1],
              .sp = nn_prod(in[0].dims, 2, in[0].rank),
              .eps = cpu_attr_float(n, "epsilon", 1e-5f),
              .mode = mode_of(in[0].dtype)};
  size_t planes = (size_t)in[0].dims[0] * j.C;
  cpu_parallel_for(ctx, planes, nn_grain(3 * j.sp, 1 << 15), instnorm_task, &j);
  return 0;
}

/* ---- LRN ------------------------------------------------------------------------------ */

typedef struct lrn_job {
  const cpu_tensor *x;
  cpu_tensor *y;
  size_t C, sp, size;
  double alpha, beta, bias;
  int mode;
  atomic_int failed;
} lrn_job;

/* Planes (n, c) in [begin, end): the window over channels is
 * [c - floor((size-1)/2), c + ceil((size-1)/2)], clipped to [0, C). */
static ALWAYS_INLINE void lrn_planes(lrn_job *j, size_t begin, size_t end, int mode) {
  double *sq = malloc((j->sp ? j->sp : 1) * sizeof *sq);
  if (!sq) {
    atomic_store(&j->failed, 1);
    return;
  }
  size_t before = (j->size - 1) / 2, after = j->size - 1 - before;
  double scale = j->alpha / (double)j->size;
  for (size_t plane = begin; plane < end; plane++) {
    size_t n = plane / j->C, c = plane % j->C;
    size_t c0 = c >= before ? c - before : 0, c1 = c + after + 1 < j->C ? c + after + 1 : j->C;
    memset(sq, 0, j->sp * sizeof *sq);
    for (size_t cc = c0; cc < c1; cc++) {
      size_t base = (n * j->C + cc) * j->sp;
      for (size_t i = 0; i < j->sp; i++) {
        double v = ldm(j->x, mode, base + i);
        sq[i] += v * v;
      }
    }
    size_t base = plane * j->sp;
    for (size_t i = 0; i < j->sp; i++) {
      double d = j->bias + scale * sq[i];
      double f = j->beta == 0.75 ? 1.0 / sqrt(d * sqrt(d)) : pow(d, -j->beta);
      stm(j->y, mode, base + i, ldm(j->x, mode, base + i) * f);
    }
  }
  free(sq);
}

static void lrn_task(void *arg, size_t begin, size_t end) {
  lrn_job *j = arg;
  DISPATCH_MODE(j->mode, lrn_planes(j, begin, end, M_));
}

static tsr_plugin_reason lrn_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   char *msg, size_t size) {
  char s1[96];
  if (n->n_in < 1 || n->n_out < 1 || !in[0].present || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects X and Y");
  const cpu_tensor *x = &in[0];
  if (!norm_dtype_ok(x->dtype) || out[0].dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(x->dtype));
  if (x->rank < 2 || out[0].rank != x->rank || out[0].count != x->count)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "X %s needs N and C, and Y its shape",
                      nn_dims_str(s1, sizeof s1, x->rank, x->dims));
  int64_t sz = cpu_attr_int(n, "size", 0);
  if (sz < 1 || sz > NN_ATTR_LIMIT)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "size is %lld, must be >= 1",
                      (long long)sz);
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason lrn_check(const cpu_node *n, char *msg, size_t size) {
  return lrn_setup(n, n->in, n->out, msg, size);
}

static int lrn_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                   cpu_tensor *out) {
  char msg[256];
  if (lrn_setup(n, in, out, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (out[0].count == 0)
    return 0;
  lrn_job j = {.x = &in[0],
               .y = &out[0],
               .C = (size_t)in[0].dims[1],
               .sp = nn_prod(in[0].dims, 2, in[0].rank),
               .size = (size_t)cpu_attr_int(n, "size", 1),
               .alpha = cpu_attr_float(n, "alpha", 1e-4f),
               .beta = cpu_attr_float(n, "beta", 0.75f),
               .bias = cpu_attr_float(n, "bias", 1.0f),
               .mode = mode_of(in[0].dtype)};
  atomic_init(&j.failed, 0);
  size_t planes = (size_t)in[0].dims[0] * j.C;
  cpu_parallel_for(ctx, planes, nn_grain(j.sp * (j.size + 2), 1 << 15), lrn_task, &j);
  return atomic_load(&j.failed) ? cpu_fail(ctx, "out of memory") : 0;
}

/* ---- LayerNormalization --------------------------------------------------------------- */

typedef struct ln_plan {
  size_t rows, cols;
  int axis;
  double eps;
  bool has_bias, want_mean, want_inv;
} ln_plan;

/* Scale and B broadcast (numpy rules, right-aligned) to X; only over the normalized dims. */
static tsr_plugin_reason ln_param_ok(const cpu_tensor *x, const cpu_tensor *t, int axis,
                                     const char *name, char *msg, size_t size) {
  char s1[96], s2[96];
  bool ok = t->rank <= x->rank && norm_dtype_ok(t->dtype);
  for (uint32_t i = 0; ok && i < t->rank; i++) {
    int xi = (int)x->rank - (int)t->rank + (int)i;
    int64_t d = t->dims[i];
    ok = d == 1 || (d == x->dims[xi] && xi >= axis);
  }
  if (!ok)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "%s %s (%s) does not broadcast over X %s's dims from axis %d", name,
                      nn_dims_str(s1, sizeof s1, t->rank, t->dims), cpu_dtype_name(t->dtype),
                      nn_dims_str(s2, sizeof s2, x->rank, x->dims), axis);
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason ln_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                  ln_plan *p, char *msg, size_t size) {
  char s1[96];
  memset(p, 0, sizeof *p);
  if (n->n_in < 2 || n->n_out < 1 || !in[0].present || !in[1].present || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects X and Scale");
  const cpu_tensor *x = &in[0];
  if (!norm_dtype_ok(x->dtype) || out[0].dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(x->dtype));
  if (out[0].rank != x->rank || out[0].count != x->count)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "Y must have X's shape %s",
                      nn_dims_str(s1, sizeof s1, x->rank, x->dims));
  int64_t axis = cpu_attr_int(n, "axis", -1), r = (int64_t)x->rank;
  if (axis < -r || axis >= r || r == 0)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "axis %lld out of range for rank %lld", (long long)axis, (long long)r);
  if (axis < 0)
    axis += r;
  p->axis = (int)axis;
  p->rows = nn_prod(x->dims, 0, (size_t)axis);
  p->cols = nn_prod(x->dims, (size_t)axis, x->rank);
  p->eps = cpu_attr_float(n, "epsilon", 1e-5f);
  tsr_plugin_reason rr;
  if ((rr = ln_param_ok(x, &in[1], p->axis, "Scale", msg, size)))
    return rr;
  p->has_bias = n->n_in > 2 && in[2].present;
  if (p->has_bias && (rr = ln_param_ok(x, &in[2], p->axis, "B", msg, size)))
    return rr;
  p->want_mean = n->n_out > 1 && out[1].present;
  p->want_inv = n->n_out > 2 && out[2].present;
  for (uint32_t k = 1; k < 3 && k < n->n_out; k++)
    if (out[k].present && (out[k].count != p->rows || !norm_dtype_ok(out[k].dtype)))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "output %u has %zu elements, expected %zu (X's dims before axis)", k,
                        out[k].count, p->rows);
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason ln_check(const cpu_node *n, char *msg, size_t size) {
  ln_plan p;
  return ln_setup(n, n->in, n->out, &p, msg, size);
}

/* Expands a Scale or B tensor to `cols` doubles over the normalized dims. */
static void ln_expand(const cpu_tensor *x, const cpu_tensor *t, int axis, size_t cols,
                      double *dst) {
  for (size_t j = 0; j < cols; j++) {
    size_t rem = j, idx = 0, stride = 1;
    for (int d = (int)x->rank - 1; d >= axis; d--) {
      size_t xd = (size_t)x->dims[d], coord = rem % xd;
      rem /= xd;
      int ti = d - ((int)x->rank - (int)t->rank);
      if (ti >= 0) {
        size_t td = (size_t)t->dims[ti];
        if (td != 1)
          idx += coord * stride;
        stride *= td;
      }
    }
    dst[j] = cpu_read_f64(t, idx);
  }
}

typedef struct ln_job {
  const ln_plan *p;
  const cpu_tensor *x;
  cpu_tensor *y, *mean, *inv;
  const double *scale, *bias;
  int mode;
} ln_job;

static ALWAYS_INLINE void ln_rows(const ln_job *j, size_t begin, size_t end, int mode) {
  const ln_plan *p = j->p;
  for (size_t r = begin; r < end; r++) {
    size_t base = r * p->cols;
    double mu, var;
    moments(j->x, mode, base, p->cols, &mu, &var);
    double inv = 1.0 / sqrt(var + p->eps);
    for (size_t i = 0; i < p->cols; i++) {
      double v = (ldm(j->x, mode, base + i) - mu) * inv * j->scale[i];
      if (j->bias)
        v += j->bias[i];
      stm(j->y, mode, base + i, v);
    }
    if (j->mean)
      cpu_write_f64(j->mean, r, mu);
    if (j->inv)
      cpu_write_f64(j->inv, r, inv);
  }
}

static void ln_task(void *arg, size_t begin, size_t end) {
  const ln_job *j = arg;
  DISPATCH_MODE(j->mode, ln_rows(j, begin, end, M_));
}

/* float32, the case models run: the same two-pass statistics in double, accumulated in eight
 * independent lanes so that the compiler vectorises them without reordering any one sum, and
 * the normalisation (x - mean) * inv in double, times Scale plus B in float. Scale and B come
 * expanded to `cols` floats (B zeros when absent). The generic path; AVX2+FMA CPUs take
 * ln_f32_task_avx2 below (ctx->isa). */
typedef struct ln_f32_job {
  const float *x;
  const float *skip; /* added to x first (cpu_node.skip), or NULL */
  float *y;
  size_t cols;
  double eps;
  const float *scale, *bias;
  cpu_tensor *mean, *inv;
} ln_f32_job;

/* With a skip input, row r of x + skip into y's row r, which is then the row to normalise (y is
 * x's memory, skip's, or apart from both: ln_run_f32). */
static const float *ln_skip_row(const ln_f32_job *j, size_t r) {
  const float *x = j->x + r * j->cols, *s = j->skip + r * j->cols;
  float *y = j->y + r * j->cols;
  for (size_t i = 0; i < j->cols; i++)
    y[i] = x[i] + s[i];
  return y;
}

static void ln_f32_task(void *arg, size_t begin, size_t end) {
  const ln_f32_job *j = arg;
  const size_t cols = j->cols;
  for (size_t r = begin; r < end; r++) {
    const float *x = j->skip ? ln_skip_row(j, r) : j->x + r * cols;
    float *y = j->y + r * cols;
    double s[8] = {0}, q[8] = {0}, sum = 0, sq = 0;
    size_t i = 0;
    for (; i + 8 <= cols; i += 8)
      for (size_t l = 0; l < 8; l++)
        s[l] += x[i + l];
    for (size_t l = 0; l < 8; l++)
      sum += s[l];
    for (; i < cols; i++)
      sum += x[i];
    const double mu = sum / (double)cols;
    for (i = 0; i + 8 <= cols; i += 8)
      for (size_t l = 0; l < 8; l++) {
        double d = (double)x[i + l] - mu;
        q[l] += d * d;
      }
    for (size_t l = 0; l < 8; l++)
      sq += q[l];
    for (; i < cols; i++) {
      double d = (double)x[i] - mu;
      sq += d * d;
    }
    const double inv = 1.0 / sqrt(sq / (double)cols + j->eps);
    for (i = 0; i < cols; i++)
      y[i] = (float)(((double)x[i] - mu) * inv) * j->scale[i] + j->bias[i];
    if (j->mean)
      cpu_write_f64(j->mean, r, mu);
    if (j->inv)
      cpu_write_f64(j->inv, r, inv);
  }
}

#ifdef CPU_VMATH_HAVE_AVX2

/* Columns of a block whose float sums are added into the row's double sum. */
enum { LN_BLOCK = 64 };

/* The sum of x[i] - c over i < vcols (a multiple of eight), or of its squares with `square`:
 * in float vectors over blocks of LN_BLOCK columns, block by block in double. */
CPU_VMATH_AVX2 static inline double ln_sum(const float *x, size_t vcols, float c,
                                           const bool square) {
  const __m256 vc = _mm256_set1_ps(c);
  double sum = 0;
  for (size_t b = 0; b < vcols; b += LN_BLOCK) {
    size_t e = b + LN_BLOCK < vcols ? b + LN_BLOCK : vcols, i = b;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; i + 16 <= e; i += 16) {
      __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vc);
      __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vc);
      a0 = square ? _mm256_fmadd_ps(d0, d0, a0) : _mm256_add_ps(a0, d0);
      a1 = square ? _mm256_fmadd_ps(d1, d1, a1) : _mm256_add_ps(a1, d1);
    }
    if (i < e) {
      __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vc);
      a0 = square ? _mm256_fmadd_ps(d0, d0, a0) : _mm256_add_ps(a0, d0);
    }
    sum += cpu_hsum8_f64(_mm256_add_ps(a0, a1));
  }
  return sum;
}

/* float32 rows on AVX2: the same two-pass statistics, summed in float vectors over blocks of
 * LN_BLOCK columns and block by block in double (a row of any length stays within a block's
 * rounding of the double sums), the mean from the sum of x - x[0], the deviations taken from
 * the mean rounded to float and the sum of their squares corrected for that rounding; then
 * y = (x - mean) * inv * Scale + B in float. The double path above, converting every element, took
 * some 35 us for one of BERT's 128 x 256 LayerNormalizations on one thread. */
CPU_VMATH_AVX2 static void ln_f32_task_avx2(void *arg, size_t begin, size_t end) {
  const ln_f32_job *j = arg;
  const size_t cols = j->cols, vcols = cols / 8 * 8;
  for (size_t r = begin; r < end; r++) {
    const float *x = j->x + r * cols;
    float *y = j->y + r * cols;
    if (j->skip) { /* x + skip into y's row, normalised there */
      const float *s = j->skip + r * cols;
      size_t i = 0;
      for (; i < vcols; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(s + i)));
      for (; i < cols; i++)
        y[i] = x[i] + s[i];
      x = y;
    }
    /* The sum of x - x[0]: small terms when the row's mean is far from zero next to its
     * spread, whose float sums stay accurate. */
    const float pivot = cols ? x[0] : 0.0f;
    double sum = ln_sum(x, vcols, pivot, false);
    for (size_t i = vcols; i < cols; i++)
      sum += (double)x[i] - pivot;
    const double mu = (double)pivot + sum / (double)cols;
    const float muf = (float)mu;
    const __m256 vmu = _mm256_set1_ps(muf);
    double sq = ln_sum(x, vcols, muf, true);
    for (size_t i = vcols; i < cols; i++) {
      double d = (double)x[i] - muf;
      sq += d * d;
    }
    /* The squares were taken about muf, not mu: remove cols * (mu - muf)^2. */
    const double off = mu - (double)muf;
    double var = sq / (double)cols - off * off;
    var = var > 0 ? var : 0;
    const double inv = 1.0 / sqrt(var + j->eps);
    /* x - mu as (x - muf) - (mu - muf): the first difference is exact for x near the mean,
     * and the rounding of muf, times inv, would otherwise show when the mean is large next to
     * the spread. */
    const float offf = (float)off;
    const __m256 vinv = _mm256_set1_ps((float)inv), voff = _mm256_set1_ps(offf);
    for (size_t i = 0; i < vcols; i += 8) {
      __m256 v = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmu), voff);
      _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_mul_ps(v, vinv), _mm256_loadu_ps(j->scale + i),
                                              _mm256_loadu_ps(j->bias + i)));
    }
    for (size_t i = vcols; i < cols; i++)
      y[i] = ((x[i] - muf) - offf) * (float)inv * j->scale[i] + j->bias[i];
    if (j->mean)
      cpu_write_f64(j->mean, r, mu);
    if (j->inv)
      cpu_write_f64(j->inv, r, inv);
  }
}
#endif

/* Scale and B (zeros when absent) expanded to 2 * cols floats, which the caller frees; NULL
 * when memory ran out. */
static float *ln_params_f32(const ln_plan *p, const cpu_tensor *in) {
  float *params = malloc(2 * (p->cols ? p->cols : 1) * sizeof *params);
  double *tmp = malloc((p->cols ? p->cols : 1) * sizeof *tmp);
  if (!params || !tmp) {
    free(params);
    free(tmp);
    return NULL;
  }
  ln_expand(&in[0], &in[1], p->axis, p->cols, tmp);
  for (size_t i = 0; i < p->cols; i++)
    params[i] = (float)tmp[i];
  if (p->has_bias) {
    ln_expand(&in[0], &in[2], p->axis, p->cols, tmp);
    for (size_t i = 0; i < p->cols; i++)
      params[p->cols + i] = (float)tmp[i];
  } else {
    memset(params + p->cols, 0, p->cols * sizeof *params);
  }
  free(tmp);
  return params;
}

static bool ln_is_f32(const ln_plan *p, const cpu_tensor *in) {
  return in[0].dtype == TSR_DTYPE_FLOAT32 && in[1].dtype == TSR_DTYPE_FLOAT32 &&
         (!p->has_bias || in[2].dtype == TSR_DTYPE_FLOAT32);
}

/* float32 with constant Scale and B (a model's weights): expanded once here, not in every
 * run (a third of a 128 x 256 LayerNormalization's time once the rows ran in float). */
static int ln_prepare(const cpu_node *n, void **out_state, char *msg, size_t size) {
  *out_state = NULL;
  ln_plan p;
  if (ln_setup(n, n->in, n->out, &p, msg, size) != TSR_PLUGIN_REASON_NONE || !ln_is_f32(&p, n->in))
    return 0; /* check() has refused it already, or another dtype: run() does it all */
  if (!n->in[1].is_const || !n->in[1].data ||
      (p.has_bias && (!n->in[2].is_const || !n->in[2].data)))
    return 0;
  if (!(*out_state = ln_params_f32(&p, n->in))) {
    snprintf(msg, size, "out of memory for LayerNormalization's Scale and B");
    return -1;
  }
  return 0;
}

/* skip: in[3], added to X first (cpu_node.skip), or NULL. The plan may put Y on X or on skip
 * (their lives end at this node); rows then normalise in place. Y partly over either (another
 * row of it) would be overwritten before it is read: Y is then computed apart, in the
 * executable's scratch block, and copied. */
static int ln_run_f32(cpu_ctx *ctx, const ln_plan *p, const cpu_tensor *in, cpu_tensor *out,
                      const float *prepared, const float *skip) {
  size_t bytes = out[0].nbytes;
  const void *y0 = out[0].data;
  bool apart = skip && ((y0 != in[0].data && nn_bytes_overlap(y0, bytes, in[0].data, bytes)) ||
                        (y0 != skip && nn_bytes_overlap(y0, bytes, skip, bytes)));
  bool fresh;
  float *tmp = apart ? cpu_scratch_take(ctx, bytes, &fresh) : NULL;
  if (apart && !tmp)
    return cpu_fail(ctx, "out of memory for LayerNormalization's output");
  float *params = prepared ? NULL : ln_params_f32(p, in);
  if (!prepared && !params) {
    cpu_scratch_give(ctx, tmp);
    return cpu_fail(ctx, "out of memory");
  }
  const float *pp = prepared ? prepared : params;
  ln_f32_job j = {.x = in[0].data,
                  .skip = skip,
                  .y = tmp ? tmp : out[0].data,
                  .cols = p->cols,
                  .eps = p->eps,
                  .scale = pp,
                  .bias = pp + p->cols,
                  .mean = p->want_mean ? &out[1] : NULL,
                  .inv = p->want_inv ? &out[2] : NULL};
  void (*task)(void *, size_t, size_t) = ln_f32_task;
#ifdef CPU_VMATH_HAVE_AVX2
  if (ctx->isa == CPU_ISA_AVX2_FMA)
    task = ln_f32_task_avx2;
#endif
  cpu_parallel_for(ctx, p->rows, nn_grain(3 * p->cols, 1 << 15), task, &j);
  free(params);
  if (tmp) {
    memcpy(out[0].data, tmp, bytes);
    cpu_scratch_give(ctx, tmp);
  }
  return 0;
}

static int ln_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                  cpu_tensor *out) {
  char msg[256];
  ln_plan p;
  if (ln_setup(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (n->skip) { /* fuse_nodes took the Add before it in: float32 operands of X's shape */
    if (!ln_is_f32(&p, in) || in[3].dtype != TSR_DTYPE_FLOAT32 || in[3].count != in[0].count)
      return cpu_fail(ctx,
                      "LayerNormalization's fused Add: %s operand of %zu values for X of "
                      "%zu %s",
                      cpu_dtype_name(in[3].dtype), in[3].count, in[0].count,
                      cpu_dtype_name(in[0].dtype));
    if (in[0].count == 0)
      return 0;
    return ln_run_f32(ctx, &p, in, out, state, in[3].data);
  }
  if (out[0].count == 0 && p.rows == 0)
    return 0;
  if (ln_is_f32(&p, in))
    return ln_run_f32(ctx, &p, in, out, state, NULL);
  double *params = malloc(2 * (p.cols ? p.cols : 1) * sizeof *params);
  if (!params)
    return cpu_fail(ctx, "out of memory");
  ln_expand(&in[0], &in[1], p.axis, p.cols, params);
  if (p.has_bias)
    ln_expand(&in[0], &in[2], p.axis, p.cols, params + p.cols);
  ln_job j = {.p = &p,
              .x = &in[0],
              .y = &out[0],
              .mean = p.want_mean ? &out[1] : NULL,
              .inv = p.want_inv ? &out[2] : NULL,
              .scale = params,
              .bias = p.has_bias ? params + p.cols : NULL,
              .mode = mode_of(in[0].dtype)};
  cpu_parallel_for(ctx, p.rows, nn_grain(3 * p.cols, 1 << 15), ln_task, &j);
  free(params);
  return 0;
}

static const cpu_op norm_ops[] = {
    {"BatchNormalization", "", 7, 17, bn_check, NULL, bn_run, NULL},
    {"InstanceNormalization", "", 1, 17, instnorm_check, NULL, instnorm_run, NULL},
    {"LRN", "", 1, 17, lrn_check, NULL, lrn_run, NULL},
    {"LayerNormalization", "", 17, 17, ln_check, ln_prepare, ln_run, free},
};

const cpu_op_list cpu_ops_norm = {norm_ops, sizeof norm_ops / sizeof norm_ops[0]};
