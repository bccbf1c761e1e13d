/* Unit suite of pool.c's float32 fast path (MaxPool without Indices, AveragePool, GlobalMaxPool
 * and GlobalAveragePool over 1-D and 2-D windows). Random shapes and attributes (strides,
 * dilations, pads, ceil_mode, count_include_pad), wide enough to reach the eight-column AVX2
 * blocks and their tails, are run through cpu_direct and compared with a naive float64
 * reference written here, and with the general kernel (the same node over float64, which the
 * fast path never takes). Maxima must match bit for bit, NaN and -0 included; windowed averages
 * too, since the fast path adds in the general kernel's order; global averages within 1e-6.
 * Cases alternate the AVX2 and generic code paths (TESSERA_CPU_GENERIC) and the thread count. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "tests/cpu_direct.h"
#include "tests/harness.h"

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rnext(rng *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return r->s;
}

static int64_t rint_in(rng *r, int64_t lo, int64_t hi) {
  return lo + (int64_t)(rnext(r) % (uint64_t)(hi - lo + 1));
}

/* Values in [-1, 1) rounded to float, with NaN, infinities and both zeros mixed in when
 * `special`, so that the order in which a kernel compares taps shows. */
static float rval(rng *r, bool special) {
  if (special) {
    switch (rnext(r) % 16) {
    case 0: return NAN;
    case 1: return 0.0f;
    case 2: return -0.0f;
    case 3: return INFINITY;
    case 4: return -INFINITY;
    default: break;
    }
  }
  return (float)((double)(rnext(r) >> 11) / 4503599627370496.0 - 1.0);
}

/* Sets TESSERA_CPU_GENERIC for iteration `it` and returns its thread count. */
static size_t vary_env(int it) {
  setenv("TESSERA_CPU_GENERIC", (it & 1) ? "1" : "0", 1);
  static const size_t threads[] = {1, 3, 2};
  return threads[(it / 2) % 3];
}

enum { K_MAX, K_AVG };

/* A 2-D window (a 1-D one has h == 1 and the y attributes 1 and 0). */
typedef struct geom {
  int nsp;
  int64_t n, c, ih, iw, oh, ow;
  int64_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  bool ceil_mode, cip;
} geom;

static int64_t ceildiv(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* ONNX's output size. */
static int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1,
                       bool ceil_mode) {
  int64_t span = in + p0 + p1 - ((k - 1) * d + 1);
  return 1 + (ceil_mode ? ceildiv(span, s) : span / s);
}

/* The reference: each window clipped to the input, taps in row-major order, the maximum kept
 * as `v > acc ? v : acc` from the first tap (so a NaN first tap wins and later NaNs lose), sums
 * in double; an empty window gives 0; count_include_pad counts the taps inside the padded
 * input. */
static void ref_pool(const geom *g, int kind, const float *x, double *y) {
  for (int64_t pl = 0; pl < g->n * g->c; pl++) {
    const float *xp = x + pl * g->ih * g->iw;
    for (int64_t oy = 0; oy < g->oh; oy++)
      for (int64_t ox = 0; ox < g->ow; ox++) {
        double acc = 0;
        bool any = false;
        int64_t cnt = 0, padded = 0;
        for (int64_t ky = 0; ky < g->kh; ky++)
          for (int64_t kx = 0; kx < g->kw; kx++) {
            int64_t iy = oy * g->sh - g->pt + ky * g->dh, ix = ox * g->sw - g->pl + kx * g->dw;
            padded += iy >= -g->pt && iy < g->ih + g->pb && ix >= -g->pl && ix < g->iw + g->pr;
            if (iy < 0 || iy >= g->ih || ix < 0 || ix >= g->iw)
              continue;
            double v = xp[iy * g->iw + ix];
            if (kind == K_MAX) {
              if (!any || v > acc)
                acc = v;
            } else {
              acc += v;
            }
            any = true;
            cnt++;
          }
        if (kind == K_AVG) {
          int64_t div = g->cip ? padded : cnt;
          acc = div ? acc / (double)div : 0;
        }
        y[(pl * g->oh + oy) * g->ow + ox] = acc;
      }
  }
}

static void random_geom(rng *r, geom *g, int kind) {
  memset(g, 0, sizeof *g);
  g->nsp = (int)rint_in(r, 1, 2);
  g->n = rint_in(r, 1, 2);
  g->c = rint_in(r, 1, 3);
  g->ceil_mode = rnext(r) % 3 == 0;
  g->cip = kind == K_AVG && (rnext(r) & 1);
  g->ih = g->nsp == 2 ? rint_in(r, 1, 14) : 1;
  g->iw = rint_in(r, 1, rnext(r) % 4 == 0 ? 12 : 90);
  g->kh = g->nsp == 2 ? rint_in(r, 1, 4) : 1;
  g->kw = rint_in(r, 1, 5);
  static const int64_t strides[] = {1, 2, 1, 2, 3, 2};
  g->sh = g->nsp == 2 ? strides[rnext(r) % 6] : 1;
  g->sw = strides[rnext(r) % 6];
  /* Dilations exist for MaxPool (from opset 10) only. */
  g->dh = kind == K_MAX && g->nsp == 2 ? rint_in(r, 1, 3) : 1;
  g->dw = kind == K_MAX ? rint_in(r, 1, 3) : 1;
  g->pt = rint_in(r, 0, g->kh - 1);
  g->pb = rint_in(r, 0, g->kh - 1);
  g->pl = rint_in(r, 0, g->kw - 1);
  g->pr = rint_in(r, 0, g->kw - 1);
  /* Shrink the window until it fits the padded input. */
  while ((g->kh - 1) * g->dh + 1 > g->ih + g->pt + g->pb) {
    if (g->dh > 1)
      g->dh--;
    else
      g->kh--;
  }
  while ((g->kw - 1) * g->dw + 1 > g->iw + g->pl + g->pr) {
    if (g->dw > 1)
      g->dw--;
    else
      g->kw--;
  }
  if (g->pt >= g->kh)
    g->pt = g->kh - 1;
  if (g->pb >= g->kh)
    g->pb = g->kh - 1;
  if (g->pl >= g->kw)
    g->pl = g->kw - 1;
  if (g->pr >= g->kw)
    g->pr = g->kw - 1;
  g->oh = out_dim(g->ih, g->kh, g->sh, g->dh, g->pt, g->pb, g->ceil_mode);
  g->ow = out_dim(g->iw, g->kw, g->sw, g->dw, g->pl, g->pr, g->ceil_mode);
}

/* Runs the pool on x as dtype dt (float32 takes the fast path, float64 the general one) and
 * returns the output as doubles; the caller frees it. */
static double *run_pool(const geom *g, int kind, uint32_t dt, const float *x, size_t threads) {
  cpu_direct *d = cpu_direct_new(kind == K_MAX ? "MaxPool" : "AveragePool", 12);
  int nsp = g->nsp;
  int64_t k[2] = {g->kh, g->kw}, s[2] = {g->sh, g->sw}, dl[2] = {g->dh, g->dw};
  int64_t pads[4] = {g->pt, g->pl, g->pb, g->pr};
  if (nsp == 1) {
    k[0] = g->kw, s[0] = g->sw, dl[0] = g->dw;
    pads[0] = g->pl, pads[1] = g->pr;
  }
  cpu_direct_attr_ints(d, "kernel_shape", (size_t)nsp, k);
  cpu_direct_attr_ints(d, "strides", (size_t)nsp, s);
  if (kind == K_MAX)
    cpu_direct_attr_ints(d, "dilations", (size_t)nsp, dl);
  cpu_direct_attr_ints(d, "pads", 2 * (size_t)nsp, pads);
  if (g->ceil_mode)
    cpu_direct_attr_int(d, "ceil_mode", 1);
  if (g->cip)
    cpu_direct_attr_int(d, "count_include_pad", 1);
  int64_t xd[4] = {g->n, g->c, g->ih, g->iw}, yd[4] = {g->n, g->c, g->oh, g->ow};
  if (nsp == 1)
    xd[2] = g->iw, yd[2] = g->ow;
  size_t xc = (size_t)(g->n * g->c * g->ih * g->iw), yc = (size_t)(g->n * g->c * g->oh * g->ow);
  void *buf = malloc((xc + 1) * sizeof(double));
  for (size_t i = 0; i < xc; i++) {
    if (dt == TSR_DTYPE_FLOAT64)
      ((double *)buf)[i] = x[i];
    else
      ((float *)buf)[i] = x[i];
  }
  cpu_direct_input(d, dt, (uint32_t)nsp + 2, xd, buf, false);
  cpu_direct_output(d, dt, (uint32_t)nsp + 2, yd);
  char err[512] = "";
  int rc = cpu_direct_run(d, threads, err, sizeof err);
  ck_assert_msg(rc == 0, "run failed (%d): %s", rc, err);
  const cpu_tensor *t = cpu_direct_out(d, 0);
  double *y = malloc((yc + 1) * sizeof *y);
  for (size_t i = 0; i < yc; i++)
    y[i] = dt == TSR_DTYPE_FLOAT64 ? ((const double *)t->data)[i]
                                   : (double)((const float *)t->data)[i];
  cpu_direct_free(d);
  free(buf);
  return y;
}

/* Whether float(a) and b have the same bits (NaNs of any payload count as the same). */
static bool same_f32(double a, double b) {
  float fa = (float)a, fb = (float)b;
  if (isnan(fa) || isnan(fb))
    return isnan(fa) && isnan(fb);
  uint32_t ua, ub;
  memcpy(&ua, &fa, 4);
  memcpy(&ub, &fb, 4);
  return ua == ub;
}

/* special: 0 for plain values, 1 to mix in NaN, infinities and zeros (rval), 2 to also turn the
 * positive values into zeros of either sign, so that many maxima are zeros and show which one a
 * kernel keeps. */
static void check_case(int it, const geom *g, int kind, int special, size_t threads, rng *r) {
  size_t xc = (size_t)(g->n * g->c * g->ih * g->iw), yc = (size_t)(g->n * g->c * g->oh * g->ow);
  float *x = malloc((xc + 1) * sizeof *x);
  for (size_t i = 0; i < xc; i++) {
    x[i] = rval(r, special != 0);
    if (special == 2 && x[i] > 0)
      x[i] = (rnext(r) & 1) ? 0.0f : -0.0f;
  }
  double *ref = malloc((yc + 1) * sizeof *ref);
  ref_pool(g, kind, x, ref);
  double *fast = run_pool(g, kind, TSR_DTYPE_FLOAT32, x, threads);
  double *general = run_pool(g, kind, TSR_DTYPE_FLOAT64, x, threads);
  for (size_t i = 0; i < yc; i++) {
    char what[256];
    snprintf(what, sizeof what,
             "%s it %d (%s) %dD x %lldx%lld k %lldx%lld s %lldx%lld d %lldx%lld pads "
             "%lld,%lld,%lld,%lld ceil %d cip %d: output %zu",
             kind == K_MAX ? "MaxPool" : "AveragePool", it,
             getenv("TESSERA_CPU_GENERIC")[0] == '1' ? "generic" : "avx2", g->nsp, (long long)g->ih,
             (long long)g->iw, (long long)g->kh, (long long)g->kw, (long long)g->sh,
             (long long)g->sw, (long long)g->dh, (long long)g->dw, (long long)g->pt,
             (long long)g->pl, (long long)g->pb, (long long)g->pr, g->ceil_mode, g->cip, i);
    ck_assert_msg(same_f32(general[i], fast[i]), "%s: %.9g, general path %.9g", what, fast[i],
                  general[i]);
    if (kind == K_MAX || special)
      ck_assert_msg(same_f32(ref[i], fast[i]), "%s: %.9g, reference %.9g", what, fast[i], ref[i]);
    else
      ck_assert_msg(fabs(fast[i] - ref[i]) <= 1e-6 * fabs(ref[i]) + 1e-7,
                    "%s: %.9g, reference %.9g", what, fast[i], ref[i]);
  }
  free(x), free(ref), free(fast), free(general);
}

START_TEST(test_pool_fast_random) {
  rng r = {20240611};
  for (int it = 0; it < 600; it++) {
    size_t threads = vary_env(it);
    int kind = (it / 2) % 2 ? K_AVG : K_MAX;
    geom g;
    random_geom(&r, &g, kind);
    check_case(it, &g, kind, it % 5 == 0, threads, &r);
  }
}
END_TEST

/* Shapes of real networks, both ISA paths: squeezenet's and resnet's MaxPools, a 2x2/2 pool
 * and a 3x3/1 pool with padding, wide enough for the four-vector AVX2 blocks. */
START_TEST(test_pool_fast_shapes) {
  rng r = {77};
  static const int64_t cases[][8] = {
      /* ih, iw, k, s, pad, ceil, cip, kind */
      {111, 111, 3, 2, 0, 1, 0, K_MAX}, {112, 112, 3, 2, 1, 0, 0, K_MAX},
      {64, 64, 2, 2, 0, 0, 0, K_MAX},   {35, 71, 3, 1, 1, 0, 0, K_MAX},
      {35, 71, 3, 1, 1, 0, 1, K_AVG},   {35, 71, 3, 1, 1, 0, 0, K_AVG},
      {56, 56, 2, 2, 0, 1, 0, K_AVG},   {17, 100, 5, 2, 2, 1, 1, K_AVG},
  };
  for (int it = 0; it < 16; it++) {
    const int64_t *cs = cases[it / 2];
    size_t threads = vary_env(it);
    geom g = {.nsp = 2,
              .n = 1,
              .c = 3,
              .ih = cs[0],
              .iw = cs[1],
              .kh = cs[2],
              .kw = cs[2],
              .sh = cs[3],
              .sw = cs[3],
              .dh = 1,
              .dw = 1,
              .pt = cs[4],
              .pl = cs[4],
              .pb = cs[4],
              .pr = cs[4],
              .ceil_mode = cs[5] != 0,
              .cip = cs[6] != 0};
    g.oh = out_dim(g.ih, g.kh, g.sh, 1, g.pt, g.pb, g.ceil_mode);
    g.ow = out_dim(g.iw, g.kw, g.sw, 1, g.pl, g.pr, g.ceil_mode);
    check_case(it, &g, (int)cs[7], false, threads, &r);
  }
}
END_TEST

/* MaxPool's 3x3 windows of stride 2, which the AVX2 path reduces row by row down strips of
 * columns: widths that end in a partial vector or fill just one, padding and ceil_mode so that
 * clipped rows and columns surround the interior, and NaN, infinities and zeros of both signs. */
START_TEST(test_pool_fast_3x3s2) {
  rng r = {3322};
  for (int it = 0; it < 60; it++) {
    size_t threads = vary_env(it);
    geom g = {.nsp = 2,
              .n = 1,
              .c = 2,
              .ih = rint_in(&r, 3, 40),
              .iw = rint_in(&r, 17, 90),
              .kh = 3,
              .kw = 3,
              .sh = 2,
              .sw = 2,
              .dh = 1,
              .dw = 1,
              .pt = rint_in(&r, 0, 1),
              .pl = rint_in(&r, 0, 1),
              .pb = rint_in(&r, 0, 1),
              .pr = rint_in(&r, 0, 1),
              .ceil_mode = rnext(&r) & 1};
    g.oh = out_dim(g.ih, g.kh, g.sh, 1, g.pt, g.pb, g.ceil_mode);
    g.ow = out_dim(g.iw, g.kw, g.sw, 1, g.pl, g.pr, g.ceil_mode);
    check_case(it, &g, K_MAX, 1 + (it / 2) % 2, threads, &r);
  }
}
END_TEST

START_TEST(test_global_pool_fast) {
  rng r = {4242};
  static const char *const names[] = {"GlobalMaxPool", "GlobalAveragePool"};
  for (int it = 0; it < 120; it++) {
    size_t threads = vary_env(it);
    int kind = (it / 2) % 2;
    bool special = kind == K_MAX && it % 3 == 0;
    int rank = (int)rint_in(&r, 3, 5);
    int64_t xd[5], yd[5];
    xd[0] = yd[0] = rint_in(&r, 1, 2);
    xd[1] = yd[1] = rint_in(&r, 1, 5);
    for (int i = 2; i < rank; i++)
      xd[i] = rint_in(&r, 1, rank == 5 ? 5 : 15), yd[i] = 1;
    size_t planes = (size_t)(xd[0] * xd[1]), sp = 1;
    for (int i = 2; i < rank; i++)
      sp *= (size_t)xd[i];
    float *x = malloc(planes * sp * sizeof *x);
    for (size_t i = 0; i < planes * sp; i++)
      x[i] = rval(&r, special);
    /* Zeros of both signs as the maximum: the first one in the plane must come out. */
    if (it % 7 == 0)
      for (size_t i = 0; i < planes * sp; i++)
        x[i] = x[i] > 0 ? ((rnext(&r) & 1) ? 0.0f : -0.0f) : x[i];
    cpu_direct *d = cpu_direct_new(names[kind], 1);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, (uint32_t)rank, xd, x, false);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, (uint32_t)rank, yd);
    char err[512] = "";
    ck_assert_msg(cpu_direct_run(d, threads, err, sizeof err) == 0, "%s", err);
    const float *y = cpu_direct_out(d, 0)->data;
    for (size_t pl = 0; pl < planes; pl++) {
      const float *xp = x + pl * sp;
      double acc = xp[0];
      if (kind == K_MAX) {
        for (size_t i = 1; i < sp; i++)
          acc = xp[i] > acc ? xp[i] : acc;
        ck_assert_msg(same_f32(acc, y[pl]), "%s it %d plane %zu of %zu values: %.9g, want %.9g",
                      names[kind], it, pl, sp, y[pl], acc);
      } else {
        for (size_t i = 1; i < sp; i++)
          acc += xp[i];
        acc /= (double)sp;
        ck_assert_msg(fabs(y[pl] - acc) <= 1e-6 * fabs(acc) + 1e-7,
                      "%s it %d plane %zu: %.9g, want %.9g", names[kind], it, pl, y[pl], acc);
      }
    }
    cpu_direct_free(d);
    free(x);
  }
}
END_TEST

static Suite *kernels_pool_suite(void) {
  Suite *s = suite_create("kernels_pool");
  TCase *t = tcase_create("fast");
  tcase_set_timeout(t, 600);
  tcase_add_test(t, test_pool_fast_random);
  tcase_add_test(t, test_pool_fast_shapes);
  tcase_add_test(t, test_pool_fast_3x3s2);
  tcase_add_test(t, test_global_pool_fast);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_pool_suite()) != 0; }
