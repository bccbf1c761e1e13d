/* Unit suite of the blocked pointwise kernel in devices/cpu/conv_nchwc_pw.c
 * (cpu_nchwc_pointwise): random shapes (C and M multiples of eight up to 600, M % 16 == 8 among
 * them; planes of 1 to 400 pixels and more; one to three images), with and without a bias, an
 * input scale and a residual (apart from the output or the output itself), every fused
 * activation, on one thread and three, compared with a float64 reference written here that
 * reads and writes the plain NCHW layout. The activations are also checked against
 * cpu_act_apply on the kernel's own sums (bit for bit for the piecewise-linear ones). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/nchwc.h"
#include "devices/cpu/threadpool.h"
#include "tests/harness.h"
#include "tests/kernel_ref.h"

#ifdef CPU_NCHWC_HAVE_AVX2

static const cpu_act acts[] = {{CPU_ACT_NONE, 0, 0},
                               {CPU_ACT_RELU, 0, 0},
                               {CPU_ACT_CLIP, -0.5f, 0.6f},
                               {CPU_ACT_LEAKYRELU, 0.1f, 0},
                               {CPU_ACT_HARDSIGMOID, 0.3f, 0.5f},
                               {CPU_ACT_HARDSWISH, 0, 0},
                               {CPU_ACT_SIGMOID, 0, 0},
                               {CPU_ACT_SILU, 0, 0},
                               {CPU_ACT_GELU, 0, 0},
                               {CPU_ACT_GELU_TANH, 0, 0}};
enum { N_ACTS = sizeof acts / sizeof acts[0] };

static bool act_smooth(cpu_act_kind k) {
  return k == CPU_ACT_SIGMOID || k == CPU_ACT_SILU || k == CPU_ACT_GELU || k == CPU_ACT_GELU_TANH;
}

/* Plain [N, C, HW] <-> blocked [N, C/8, HW, 8]. */
static size_t blk(size_t C, size_t HW, size_t n, size_t c, size_t p) {
  return ((n * (C / 8) + c / 8) * HW + p) * 8 + c % 8;
}

static void to_blocked(const float *src, size_t N, size_t C, size_t HW, float *dst) {
  for (size_t n = 0; n < N; n++)
    for (size_t c = 0; c < C; c++)
      for (size_t p = 0; p < HW; p++)
        dst[blk(C, HW, n, c, p)] = src[(n * C + c) * HW + p];
}

enum { RES_NONE, RES_APART, RES_IN_PLACE };

typedef struct pw_case {
  size_t N, C, M, HW;
  bool bias, scale;
  int res;
  cpu_act act;
  size_t threads;
} pw_case;

static void describe(const pw_case *k, char *buf, size_t size) {
  static const char *res[] = {"none", "apart", "in place"};
  snprintf(buf, size, "N=%zu C=%zu M=%zu HW=%zu bias %d scale %d res %s act %s threads %zu", k->N,
           k->C, k->M, k->HW, k->bias, k->scale, res[k->res], ref_act_name(k->act.kind),
           k->threads);
}

/* Runs the kernel into y (blocked, N*M*HW floats) with act; y starts as NaN, or as the
 * residual when it is accumulated in place. */
static void run_kernel(const pw_case *k, cpu_pool *pool, const float *xb, const float *wp,
                       const float *b, const float *s, const float *rb, const cpu_act *act,
                       float *y) {
  size_t ny = k->N * k->M * k->HW;
  char err[256] = "";
  cpu_ctx ctx = {.pool = k->threads > 1 ? pool : NULL,
                 .isa = CPU_ISA_AVX2_FMA,
                 .err = err,
                 .err_size = sizeof err};
  const float *res = NULL;
  if (k->res == RES_IN_PLACE) {
    memcpy(y, rb, ny * sizeof *y);
    res = y;
  } else {
    for (size_t i = 0; i < ny; i++)
      y[i] = NAN;
    res = k->res == RES_APART ? rb : NULL;
  }
  int rc = cpu_nchwc_pointwise(&ctx, k->N, k->C, k->M, k->HW, xb, wp, k->bias ? b : NULL,
                               k->scale ? s : NULL, res, act, y);
  ck_assert_msg(rc == 0, "run failed: %s", err);
}

static void pw_check(rng *r, int it, const pw_case *k, cpu_pool *pool) {
  size_t N = k->N, C = k->C, M = k->M, HW = k->HW;
  size_t nx = N * C * HW, ny = N * M * HW;
  float *x = malloc(nx * sizeof *x), *xb = malloc(nx * sizeof *xb);
  float *w = malloc(M * C * sizeof *w), *b = malloc(M * sizeof *b), *s = malloc(N * C * sizeof *s);
  float *res = malloc(ny * sizeof *res), *rb = malloc(ny * sizeof *rb);
  float *y0 = malloc(ny * sizeof *y0), *y1 = malloc(ny * sizeof *y1);
  float *wp = nn_alloc_aligned(cpu_nchwc_pw_packed_floats(C, M), sizeof(float));
  ck_assert(x && xb && w && b && s && res && rb && y0 && y1 && wp);
  for (size_t i = 0; i < nx; i++)
    x[i] = runi(r);
  for (size_t i = 0; i < M * C; i++)
    w[i] = runi(r);
  for (size_t i = 0; i < M; i++)
    b[i] = runi(r);
  for (size_t i = 0; i < N * C; i++)
    s[i] = 2.0f * runi(r);
  for (size_t i = 0; i < ny; i++)
    res[i] = runi(r);
  to_blocked(x, N, C, HW, xb);
  to_blocked(res, N, M, HW, rb);
  cpu_nchwc_pw_pack(w, C, M, wp);

  /* y0: the sums alone; y1: with the activation. */
  static const cpu_act none = {CPU_ACT_NONE, 0, 0};
  run_kernel(k, pool, xb, wp, b, s, rb, &none, y0);
  run_kernel(k, pool, xb, wp, b, s, rb, &k->act, y1);

  char what[256];
  describe(k, what, sizeof what);
  for (size_t n = 0; n < N; n++)
    for (size_t m = 0; m < M; m++)
      for (size_t p = 0; p < HW; p++) {
        double sum = 0, mag = 0;
        if (k->bias)
          sum += b[m], mag += fabs(b[m]);
        if (k->res != RES_NONE) {
          double v = res[(n * M + m) * HW + p];
          sum += v, mag += fabs(v);
        }
        for (size_t c = 0; c < C; c++) {
          double t = (double)w[m * C + c] * x[(n * C + c) * HW + p];
          if (k->scale)
            t *= s[n * C + c];
          sum += t, mag += fabs(t);
        }
        size_t at = blk(M, HW, n, m, p);
        double tol = 1e-5 * mag + 1e-6;
        /* Check's assertions each cost a write to its runner; only a failure calls it. */
        if (!(fabs(y0[at] - sum) <= tol))
          ck_abort_msg("it %d (%s) y[%zu][%zu][%zu] without activation = %.9g, expected %.9g", it,
                       what, n, m, p, (double)y0[at], sum);
        double want = ref_act(&k->act, sum);
        /* The activations' slopes are at most about 1.2 here. The smooth ones are float32
         * approximations: within a few ulp of their result, or of x for GELU, whose 1 + erf
         * loses its digits to cancellation for negative x. */
        double slack = act_smooth(k->act.kind) ? 1e-6 * fabs(want) + 5e-7 * fabs(sum) + 1e-7 : 0;
        if (!(fabs(y1[at] - want) <= 1.5 * tol + slack))
          ck_abort_msg("it %d (%s) y[%zu][%zu][%zu] = %.9g, expected %.9g", it, what, n, m, p,
                       (double)y1[at], want);
        /* On the kernel's own sum: cpu_act_apply's result, bit for bit for the piecewise-linear
         * activations, within a few ulp for the smooth ones (vmath_avx2.h). */
        float mine = cpu_act_apply(&k->act, y0[at]);
        bool same = act_smooth(k->act.kind)
                        ? fabsf(y1[at] - mine) <= 1e-6f * fabsf(mine) + 5e-7f * fabsf(y0[at])
                        : memcmp(&y1[at], &mine, sizeof mine) == 0;
        if (!same)
          ck_abort_msg("it %d (%s) y[%zu][%zu][%zu] = %.9g, cpu_act_apply of its sum %.9g = %.9g",
                       it, what, n, m, p, (double)y1[at], (double)y0[at], (double)mine);
      }
  free(x), free(xb), free(w), free(b), free(s), free(res), free(rb), free(y0), free(y1), free(wp);
}

static bool avx2_or_skip(void) {
  if (cpu_detect_isa() == CPU_ISA_AVX2_FMA)
    return true;
  printf("kernels_nchwc_pw: no AVX2 + FMA here, skipped\n");
  return false;
}

/* Random shapes, flags and activations; the work of one case bounded for the reference. */
START_TEST(test_pw_random) {
  if (!avx2_or_skip())
    return;
  rng r = {20250301};
  cpu_pool *pool = cpu_pool_create(3);
  for (int it = 0; it < 600; it++) {
    pw_case k = {.N = rint_in(&r, 1, 3),
                 .C = 8 * rint_in(&r, 1, it % 4 == 0 ? 75 : 24),
                 .M = 8 * rint_in(&r, 1, it % 4 == 1 ? 75 : 24),
                 .bias = rint_in(&r, 0, 2) != 0,
                 .scale = rint_in(&r, 0, 2) == 0,
                 .res = (int)rint_in(&r, 0, 2),
                 .act = acts[it % N_ACTS],
                 .threads = (it / N_ACTS) % 2 ? 3 : 1};
    /* Planes below one tile, around tiles of four and six, and up to 400 pixels. */
    k.HW = it % 3 == 0 ? rint_in(&r, 1, 13) : rint_in(&r, 1, 400);
    while (k.HW > 1 && (double)k.N * k.C * k.M * k.HW > 4e6)
      k.HW = k.HW * 2 / 3;
    while (k.N > 1 && (double)k.N * k.C * k.M * k.HW > 4e6)
      k.N--;
    pw_check(&r, it, &k, pool);
  }
  cpu_pool_destroy(pool);
}
END_TEST

/* Shapes at the edges of the blocking: many input channels (over 2048, two blocks of the
 * depth, with chunks of the least size), few and many output channels (8, 24, M % 16 == 8 and
 * not), planes with several chunks of pixels (wide planes with few channels), single pixels;
 * each with every activation and every combination of bias, scale and residual. */
START_TEST(test_pw_edges) {
  if (!avx2_or_skip())
    return;
  rng r = {99};
  cpu_pool *pool = cpu_pool_create(3);
  static const size_t shapes[][4] = {/* N, C, M, HW */
                                     {1, 8, 8, 1},       {1, 8, 24, 5},     {2, 16, 40, 3500},
                                     {1, 600, 600, 49},  {3, 2056, 8, 7},   {1, 2064, 40, 30},
                                     {1, 264, 264, 13},  {1, 8, 600, 400},  {1, 600, 8, 400},
                                     {2, 1152, 24, 100}, {1, 24, 16, 3137}, {2, 512, 40, 2},
                                     {1, 48, 56, 196},   {1, 128, 40, 784}, {2, 512, 24, 785}};
  int it = 0;
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (int v = 0; v < 12; v++, it++) {
      pw_case k = {.N = shapes[si][0],
                   .C = shapes[si][1],
                   .M = shapes[si][2],
                   .HW = shapes[si][3],
                   .bias = v & 1,
                   .scale = (v >> 1) & 1,
                   .res = v / 4,
                   .act = acts[(si + (size_t)v) % N_ACTS],
                   .threads = v % 3 ? 3 : 1};
      pw_check(&r, it, &k, pool);
    }
  cpu_pool_destroy(pool);
}
END_TEST

/* Eight channels over two pixels: x[c][p] = c + 10p, W[m][c] = 1 for c <= m, bias[m] = -20m,
 * so y[m][p] = m(m + 1)/2 + 10p(m + 1) - 20m; then with relu, and accumulated onto y = 100. */
START_TEST(test_pw_by_hand) {
  if (!avx2_or_skip())
    return;
  float x[16], w[64], b[8], wp[128], y[16];
  for (int c = 0; c < 8; c++)
    for (int p = 0; p < 2; p++)
      x[p * 8 + c] = (float)(c + 10 * p); /* blocked: pixel p's eight channels together */
  for (int m = 0; m < 8; m++) {
    for (int c = 0; c < 8; c++)
      w[m * 8 + c] = c <= m ? 1.0f : 0.0f;
    b[m] = -20.0f * (float)m;
  }
  ck_assert_uint_eq(cpu_nchwc_pw_packed_floats(8, 8), 128);
  cpu_nchwc_pw_pack(w, 8, 8, wp);
  static const float want[2][8] = {{0, -19, -37, -54, -70, -85, -99, -112},
                                   {10, 1, -7, -14, -20, -25, -29, -32}};
  char err[128];
  cpu_ctx ctx = {.isa = CPU_ISA_AVX2_FMA, .err = err, .err_size = sizeof err};
  cpu_act act = {CPU_ACT_NONE, 0, 0};
  ck_assert_int_eq(cpu_nchwc_pointwise(&ctx, 1, 8, 8, 2, x, wp, b, NULL, NULL, &act, y), 0);
  for (int p = 0; p < 2; p++)
    for (int m = 0; m < 8; m++)
      ck_assert_float_eq(y[p * 8 + m], want[p][m]);
  act.kind = CPU_ACT_RELU;
  ck_assert_int_eq(cpu_nchwc_pointwise(&ctx, 1, 8, 8, 2, x, wp, b, NULL, NULL, &act, y), 0);
  for (int p = 0; p < 2; p++)
    for (int m = 0; m < 8; m++)
      ck_assert_float_eq(y[p * 8 + m], want[p][m] < 0 ? 0.0f : want[p][m]);
  /* A scale of 2 on every channel, accumulated onto y = 100, no bias: 100 + 2 * sum. */
  float s[8];
  for (int c = 0; c < 8; c++)
    s[c] = 2.0f;
  for (int i = 0; i < 16; i++)
    y[i] = 100.0f;
  act.kind = CPU_ACT_NONE;
  ck_assert_int_eq(cpu_nchwc_pointwise(&ctx, 1, 8, 8, 2, x, wp, NULL, s, y, &act, y), 0);
  for (int p = 0; p < 2; p++)
    for (int m = 0; m < 8; m++)
      ck_assert_float_eq(y[p * 8 + m], 100.0f + 2.0f * (want[p][m] + 20.0f * (float)m));
}
END_TEST

#else
START_TEST(test_pw_random) { printf("kernels_nchwc_pw: built without AVX2 kernels, skipped\n"); }
END_TEST
START_TEST(test_pw_edges) {}
END_TEST
START_TEST(test_pw_by_hand) {}
END_TEST
#endif

static Suite *kernels_nchwc_pw_suite(void) {
  Suite *s = suite_create("kernels_nchwc_pw");
  TCase *c = tcase_create("nchwc_pw");
  tcase_set_timeout(c, 600);
  tcase_add_test(c, test_pw_by_hand);
  tcase_add_test(c, test_pw_random);
  tcase_add_test(c, test_pw_edges);
  suite_add_tcase(s, c);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_nchwc_pw_suite()) != 0; }
