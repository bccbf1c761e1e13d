/* What the kernel suites of the blocked layout share: a xorshift generator for random shapes and
 * data, the float64 references of the activations a kernel applies (cpu_act), the plan of a
 * 2-D Conv and a guarded run of a kernel. Test-only. */
#ifndef TSR_TESTS_KERNEL_REF_H
#define TSR_TESTS_KERNEL_REF_H

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/conv_util.h"
#include "devices/cpu/gemm_util.h"
#include "devices/cpu/threadpool.h"

typedef struct rng {
  uint64_t s;
} rng;

static inline uint64_t rnext(rng *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return r->s;
}

/* Uniform in [lo, hi]. */
static inline int64_t rint_in(rng *r, int64_t lo, int64_t hi) {
  return lo + (int64_t)(rnext(r) % (uint64_t)(hi - lo + 1));
}

/* Uniform in [-1, 1), representable as float. */
static inline float runi(rng *r) {
  return (float)((double)(rnext(r) >> 11) / 4503599627370496.0 - 1.0);
}

static inline double ref_clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* cpu_act_apply in float64, the smooth ones exact. */
static inline double ref_act(const cpu_act *a, double x) {
  switch (a->kind) {
  case CPU_ACT_RELU: return x < 0 ? 0 : x;
  case CPU_ACT_CLIP: return x < a->p0 ? a->p0 : (x > a->p1 ? a->p1 : x);
  case CPU_ACT_LEAKYRELU: return x < 0 ? a->p0 * x : x;
  case CPU_ACT_HARDSIGMOID: return ref_clamp01(a->p0 * x + a->p1);
  case CPU_ACT_HARDSWISH: return x * ref_clamp01(x / 6 + 0.5);
  case CPU_ACT_SIGMOID: return 1 / (1 + exp(-x));
  case CPU_ACT_SILU: return x / (1 + exp(-x));
  case CPU_ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  case CPU_ACT_GELU_TANH:
    return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  default: return x;
  }
}

/* The activations a kernel may be given, one of each kind and two clips. */
static const cpu_act ref_acts[] = {
    {CPU_ACT_NONE, 0, 0},         {CPU_ACT_RELU, 0, 0},         {CPU_ACT_CLIP, 0.0f, 6.0f},
    {CPU_ACT_CLIP, -0.25f, 0.5f}, {CPU_ACT_LEAKYRELU, 0.1f, 0}, {CPU_ACT_HARDSIGMOID, 0.2f, 0.5f},
    {CPU_ACT_HARDSWISH, 0, 0},    {CPU_ACT_SIGMOID, 0, 0},      {CPU_ACT_SILU, 0, 0},
    {CPU_ACT_GELU, 0, 0},         {CPU_ACT_GELU_TANH, 0, 0}};
enum { N_REF_ACTS = sizeof ref_acts / sizeof ref_acts[0] };

/* The geometry of one 2-D Conv, H then W in each pair; a dilation of 0 means 1. */
typedef struct ref_geom {
  int64_t N, C, M, in[2], k[2], s[2], pb[2], pe[2], d[2];
} ref_geom;

/* The plan conv.c would build for g (one group): the 2-D window in slots 1 and 2, slot 0 a
 * depth of 1. */
static inline conv_plan ref_plan(const ref_geom *g, bool bias, cpu_act act) {
  conv_plan p = {.N = (size_t)g->N, .C = (size_t)g->C, .M = (size_t)g->M, .G = 1};
  p.cg = p.C, p.mg = p.M;
  p.has_bias = bias;
  p.act = act;
  nn_window *w = &p.w;
  w->nsp = 2;
  w->in[0] = w->out[0] = w->k[0] = w->s[0] = w->d[0] = 1;
  for (int i = 0; i < 2; i++) {
    int64_t d = g->d[i] ? g->d[i] : 1;
    w->in[1 + i] = g->in[i];
    w->k[1 + i] = g->k[i];
    w->s[1 + i] = g->s[i];
    w->d[1 + i] = d;
    w->pb[1 + i] = g->pb[i];
    w->pe[1 + i] = g->pe[i];
    w->out[1 + i] = (g->in[i] + g->pb[i] + g->pe[i] - ((g->k[i] - 1) * d + 1)) / g->s[i] + 1;
  }
  p.kk = (size_t)(g->k[0] * g->k[1]);
  p.in_sp = (size_t)(g->in[0] * g->in[1]);
  p.out_sp = (size_t)(w->out[1] * w->out[2]);
  return p;
}

/* Whether the AVX2 kernels can run here; when not, the suite says which kernel it leaves
 * unexercised, and passes. */
static inline bool ref_have_avx2(const char *kernel) {
  if (cpu_detect_isa() == CPU_ISA_AVX2_FMA)
    return true;
  printf("note: no AVX2+FMA on this machine (or TESSERA_CPU_GENERIC=1); the %s is not "
         "exercised\n",
         kernel);
  return false;
}

/* A blocked convolution kernel's entry points: the floats of its packed weights, the packing,
 * the run (nchwc.h). */
typedef size_t (*ref_packed_fn)(const conv_plan *p);
typedef void (*ref_pack_fn)(const conv_plan *p, const float *w, float *dst);
typedef int (*ref_conv_fn)(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wp,
                           const float *bias, float *y);

/* Floats before and after the output that a kernel must leave alone. */
enum { REF_GUARD = 64 };

/* An output of yc floats, NaN (an output left unwritten fails the comparison), guarded on both
 * sides; returns the buffer, whose output starts REF_GUARD floats in. */
static inline float *ref_guarded_output(size_t yc) {
  float *buf = malloc((yc + 2 * REF_GUARD) * sizeof *buf);
  ck_assert_ptr_nonnull(buf);
  for (size_t i = 0; i < yc + 2 * REF_GUARD; i++)
    buf[i] = i < REF_GUARD || i >= REF_GUARD + yc ? 12345.0f : NAN;
  return buf;
}

/* Checks the guards of a ref_guarded_output that kernel `name` wrote, frees it and returns a
 * copy of its output, which the caller frees. */
static inline float *ref_guarded_take(const char *name, float *buf, size_t yc) {
  const float *y = buf + REF_GUARD;
  for (size_t i = 0; i < REF_GUARD; i++) {
    ck_assert_msg(buf[i] == 12345.0f, "%s wrote %zu floats before the output", name, REF_GUARD - i);
    ck_assert_msg(y[yc + i] == 12345.0f, "%s wrote %zu floats past the output", name, i + 1);
  }
  float *out = malloc((yc + 1) * sizeof *out);
  ck_assert_ptr_nonnull(out);
  memcpy(out, y, yc * sizeof *out);
  free(buf);
  return out;
}

/* Packs w and runs the kernel `name` on x with b (or NULL) on `threads` threads into a
 * ref_guarded_output of p's size; returns a copy of the output as the kernel wrote it, which
 * the caller frees. */
static inline float *ref_run_conv(const char *name, ref_packed_fn packed, ref_pack_fn pack,
                                  ref_conv_fn run, const conv_plan *p, const float *x,
                                  const float *w, const float *b, size_t threads) {
  float *wp = nn_alloc_aligned(packed(p), sizeof(float));
  ck_assert_ptr_nonnull(wp);
  pack(p, w, wp);
  size_t yc = p->N * p->M * p->out_sp;
  float *buf = ref_guarded_output(yc);
  cpu_pool *pool = cpu_pool_create(threads);
  char err[256] = "";
  cpu_ctx ctx = {.pool = pool, .isa = CPU_ISA_AVX2_FMA, .err = err, .err_size = sizeof err};
  int rc = run(&ctx, p, x, wp, b, buf + REF_GUARD);
  ck_assert_msg(rc == 0, "%s failed: %s", name, err);
  cpu_pool_destroy(pool);
  free(wp);
  return ref_guarded_take(name, buf, yc);
}

/* Runs the kernel on p on a context of the given isa and checks that it fails (-1) with
 * `want` in its message: a plan it refuses, or an ISA without AVX2. It must fail before it
 * reads its operands, which are zeroed stand-ins. */
static inline void ref_expect_fail(ref_conv_fn run, const conv_plan *p, cpu_isa isa,
                                   const char *want) {
  static float x[64], wp[64], y[64];
  char err[256] = "";
  cpu_ctx ctx = {.isa = isa, .err = err, .err_size = sizeof err};
  ck_assert_int_eq(run(&ctx, p, x, wp, NULL, y), -1);
  ck_assert_msg(strstr(err, want) != NULL, "message: %s", err);
}

static inline const char *ref_act_name(cpu_act_kind k) {
  static const char *names[] = {"none",      "relu",    "clip", "leakyrelu", "hardsigmoid",
                                "hardswish", "sigmoid", "silu", "gelu",      "gelu_tanh"};
  return (size_t)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

#endif
