/* Unit suite of the NCHW8c direct convolution (devices/cpu/conv_nchwc_direct.c): a blocked input
 * to a blocked output, called directly with plans built here. Random shapes, kernels (square
 * and not), strides, pads differing at each side, biases and every fused activation on 1 and 3
 * threads are compared with a float64 reference written here; the ResNet-50 layers the kernel
 * is for, and deep layers that split the input channels into blocks; NaN inputs through the
 * clamping activations; and the plans the kernel must refuse. */
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

/* The kernel on x, w, b (or NULL): ref_run_conv. The caller frees the result. */
static float *run_direct(const conv_plan *p, const float *x, const float *w, const float *b,
                         size_t threads) {
  return ref_run_conv("cpu_nchwc_direct", cpu_nchwc_direct_packed_floats, cpu_nchwc_direct_pack,
                      cpu_nchwc_direct, p, x, w, b, threads);
}

/* Where element (n, c, h, w) of a [N, C, H, W] tensor lies in the blocked layout. */
static size_t blocked(size_t C, size_t H, size_t W, size_t n, size_t c, size_t h, size_t w) {
  return (((n * (C / 8) + c / 8) * H + h) * W + w) * 8 + c % 8;
}

static void direct_case(rng *r, const char *what, int it, const ref_geom *g, bool bias, cpu_act act,
                        size_t threads) {
  conv_plan p = ref_plan(g, bias, act);
  ck_assert_msg(cpu_nchwc_direct_applies(&p), "%s %d: the kernel refuses its own case", what, it);
  size_t xc = p.N * p.C * p.in_sp, wc = p.M * p.C * p.kk;
  float *x = malloc(xc * sizeof *x), *w = malloc(wc * sizeof *w), *b = malloc(p.M * sizeof *b);
  ck_assert(x && w && b);
  for (size_t i = 0; i < xc; i++)
    x[i] = runi(r);
  for (size_t i = 0; i < wc; i++)
    w[i] = runi(r);
  for (size_t i = 0; i < p.M; i++)
    b[i] = runi(r);
  float *y = run_direct(&p, x, w, bias ? b : NULL, threads);

  const nn_window *wn = &p.w;
  const size_t ih = (size_t)g->in[0], iw = (size_t)g->in[1], kh = (size_t)g->k[0],
               kw = (size_t)g->k[1], oh = (size_t)wn->out[1], ow = (size_t)wn->out[2];
  for (size_t n = 0; n < p.N; n++)
    for (size_t m = 0; m < p.M; m++)
      for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++) {
          double s = bias ? b[m] : 0.0, mag = bias ? fabs(b[m]) : 0.0;
          for (size_t ky = 0; ky < kh; ky++) {
            int64_t iy = (int64_t)oy * g->s[0] - g->pb[0] + (int64_t)ky;
            if (iy < 0 || iy >= (int64_t)ih)
              continue;
            for (size_t kx = 0; kx < kw; kx++) {
              int64_t ix = (int64_t)ox * g->s[1] - g->pb[1] + (int64_t)kx;
              if (ix < 0 || ix >= (int64_t)iw)
                continue;
              const float *xp = x + blocked(p.C, ih, iw, n, 0, (size_t)iy, (size_t)ix);
              const float *wq = w + (m * p.C * kh + ky) * kw + kx;
              for (size_t c = 0; c < p.C; c++) {
                double t = (double)xp[(c / 8) * ih * iw * 8 + c % 8] * wq[c * kh * kw];
                s += t, mag += fabs(t);
              }
            }
          }
          double ref = ref_act(&act, s);
          double got = y[blocked(p.M, oh, ow, n, m, oy, ox)], tol = 1.5e-5 * mag + 1e-6;
          ck_assert_msg(fabs(got - ref) <= tol,
                        "%s %d (N=%lld C=%lld M=%lld in %lldx%lld k %lldx%lld s %lldx%lld pads "
                        "%lld,%lld,%lld,%lld bias %d act %s threads %zu) y(%zu,%zu,%zu,%zu) = "
                        "%.9g, expected %.9g",
                        what, it, (long long)g->N, (long long)g->C, (long long)g->M, (long long)ih,
                        (long long)iw, (long long)kh, (long long)kw, (long long)g->s[0],
                        (long long)g->s[1], (long long)g->pb[0], (long long)g->pb[1],
                        (long long)g->pe[0], (long long)g->pe[1], bias, ref_act_name(act.kind),
                        threads, n, m, oy, ox, got, ref);
        }
  free(y);
  free(x), free(w), free(b);
}

/* Random shapes: C and M from 8 to 64 (M % 16 == 8 in about half), kernels 1..7 square and not
 * (1x3, 3x1, 5x5 among them), strides 1..3 on each axis, pads 0..k-1 at each side on its own,
 * planes from 1x1 to 30x30, one or two images; every activation with and without bias, on 1
 * and 3 threads. */
START_TEST(test_direct_random) {
  if (!ref_have_avx2("NCHW8c direct kernel"))
    return;
  rng r = {20250611};
  for (int it = 0; it < 320; it++) {
    ref_geom g = {.N = rint_in(&r, 1, 2), .C = 8 * rint_in(&r, 1, 8), .M = 8 * rint_in(&r, 1, 8)};
    int shape = (int)rint_in(&r, 0, 3); /* square, free, 1 x k, k x 1 */
    for (int i = 0; i < 2; i++) {
      g.in[i] = it % 5 == 4 ? rint_in(&r, 1, 6) : rint_in(&r, 1, 30);
      g.k[i] = shape == 0 && i == 1 ? g.k[0] : rint_in(&r, 1, 7);
      if ((shape == 2 && i == 0) || (shape == 3 && i == 1))
        g.k[i] = 1;
      g.s[i] = rint_in(&r, 1, 3);
      g.pb[i] = rint_in(&r, 0, g.k[i] - 1);
      g.pe[i] = rint_in(&r, 0, g.k[i] - 1);
      if (g.k[i] > g.in[i] + g.pb[i] + g.pe[i]) /* the window fits the padded input */
        g.k[i] = g.in[i] + g.pb[i] + g.pe[i];
    }
    /* Keep the float64 reference quick: at most some 3M multiply-adds a case. */
    while (g.N * g.M * g.C * g.k[0] * g.k[1] * g.in[0] * g.in[1] / (g.s[0] * g.s[1]) > 3000000 &&
           g.M > 8)
      g.M -= 8;
    direct_case(&r, "random", it, &g, it % 3 != 1, ref_acts[it % N_REF_ACTS], (it / 2) % 2 ? 3 : 1);
  }
}
END_TEST

/* The layers the kernel is for: ResNet-50's 3x3 stride-2 layers (pads 1), narrow 3x3 stride-1
 * ones, a 3x3 stride 2 over 7x7 to 4x4; then deep layers whose input channels are split into
 * blocks (partial sums in y between them) under the row activations, on 3 threads, with M %
 * 16 == 8 and kernels that are not 3x3. */
START_TEST(test_direct_layers) {
  if (!ref_have_avx2("NCHW8c direct kernel"))
    return;
  rng r = {11};
  static const ref_geom resnet[] = {
      {1, 128, 128, {56, 56}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {1, 256, 256, {28, 28}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {1, 512, 512, {14, 14}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {1, 16, 16, {56, 56}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
      {1, 16, 32, {28, 28}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
      {1, 64, 64, {7, 7}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
  };
  for (int i = 0; i < (int)(sizeof resnet / sizeof resnet[0]); i++)
    direct_case(&r, "resnet", i, &resnet[i], true, ref_acts[1], 1);
  static const ref_geom deep[] = {
      {1, 200, 40, {9, 11}, {3, 3}, {2, 1}, {1, 0}, {1, 2}},
      {2, 264, 24, {7, 7}, {5, 5}, {1, 1}, {2, 2}, {2, 2}},
      {1, 384, 16, {6, 13}, {1, 3}, {1, 2}, {0, 1}, {0, 1}},
  };
  for (int i = 0; i < (int)(sizeof deep / sizeof deep[0]); i++) {
    direct_case(&r, "deep", i, &deep[i], true, ref_acts[(i * 3 + 4) % N_REF_ACTS], 3);
    direct_case(&r, "deep", i, &deep[i], i != 1, ref_acts[(i * 5 + 2) % N_REF_ACTS], 1);
  }
}
END_TEST

/* None, relu and clip as cpu_act_apply gives them, bit for bit, on exact sums (small integers
 * and halves), and NaN through each: one NaN input reaches the outputs whose windows cover it
 * and no others. */
START_TEST(test_direct_clamps_exact) {
  if (!ref_have_avx2("NCHW8c direct kernel"))
    return;
  rng r = {99};
  ref_geom g = {1, 16, 24, {9, 17}, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
  static const cpu_act clamps[] = {
      {CPU_ACT_NONE, 0, 0}, {CPU_ACT_RELU, 0, 0}, {CPU_ACT_CLIP, -2.0f, 3.5f}};
  for (int a = 0; a < 3; a++) {
    conv_plan p = ref_plan(&g, true, clamps[a]);
    size_t xc = p.C * p.in_sp, wc = p.M * p.C * p.kk;
    float *x = malloc(xc * sizeof *x), *w = malloc(wc * sizeof *w), b[24];
    ck_assert(x && w);
    for (size_t i = 0; i < xc; i++)
      x[i] = (float)rint_in(&r, -4, 4) * 0.5f;
    for (size_t i = 0; i < wc; i++)
      w[i] = (float)rint_in(&r, -3, 3);
    for (size_t i = 0; i < p.M; i++)
      b[i] = (float)rint_in(&r, -8, 8) * 0.5f;
    size_t nan_at = blocked(16, 9, 17, 0, 11, 4, 9); /* channel 11, row 4, column 9 */
    x[nan_at] = NAN;
    float *y = run_direct(&p, x, w, b, 3);
    for (size_t m = 0; m < p.M; m++)
      for (int64_t oy = 0; oy < p.w.out[1]; oy++)
        for (int64_t ox = 0; ox < p.w.out[2]; ox++) {
          float s = b[m];
          bool nan = false;
          for (size_t c = 0; c < p.C; c++)
            for (int64_t ky = 0; ky < 3; ky++)
              for (int64_t kx = 0; kx < 3; kx++) {
                int64_t iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
                if (iy < 0 || iy >= 9 || ix < 0 || ix >= 17)
                  continue;
                size_t xi = blocked(16, 9, 17, 0, c, (size_t)iy, (size_t)ix);
                float wv = w[((m * p.C + c) * 3 + (size_t)ky) * 3 + (size_t)kx];
                if (xi == nan_at)
                  nan = true;
                else
                  s += x[xi] * wv; /* exact: small multiples of 1/2 */
              }
          float want = cpu_act_apply(&clamps[a], nan ? NAN : s);
          float got =
              y[blocked(p.M, (size_t)p.w.out[1], (size_t)p.w.out[2], 0, m, (size_t)oy, (size_t)ox)];
          if (nan)
            ck_assert_msg(isnan(got), "act %d y(%zu,%lld,%lld) = %g, expected NaN", a, m,
                          (long long)oy, (long long)ox, got);
          else
            ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                          "act %d y(%zu,%lld,%lld) = %g, expected %g", a, m, (long long)oy,
                          (long long)ox, got, want);
        }
    free(y), free(x), free(w);
  }
}
END_TEST

/* A plan the kernel runs has it return 0; one it refuses, -1 with a message. */
static void expect_refused(const conv_plan *p) {
  ck_assert(!cpu_nchwc_direct_applies(p));
  ref_expect_fail(cpu_nchwc_direct, p, CPU_ISA_AVX2_FMA, "does not apply");
}

/* What the kernel must refuse, each a small change to a plan it runs. */
START_TEST(test_direct_applies) {
  ref_geom g = {1, 16, 32, {16, 16}, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
  conv_plan ok = ref_plan(&g, true, ref_acts[0]), p;
  ck_assert(cpu_nchwc_direct_applies(&ok));
  p = ok, p.M = p.mg = 8;
  ck_assert(cpu_nchwc_direct_applies(&p));
  p = ok, p.w.k[1] = 1, p.w.k[2] = 7, p.kk = 7;
  ck_assert(cpu_nchwc_direct_applies(&p));
  p = ok, p.G = 2, p.cg = 8, p.mg = 16;
  expect_refused(&p);
  p = ok, p.C = p.cg = 12;
  expect_refused(&p);
  p = ok, p.C = p.cg = 0;
  expect_refused(&p);
  p = ok, p.M = p.mg = 36;
  expect_refused(&p);
  p = ok, p.transpose = true;
  expect_refused(&p);
  p = ok, p.w.d[1] = 2;
  expect_refused(&p);
  p = ok, p.w.d[2] = 2;
  expect_refused(&p);
  p = ok, p.w.nsp = 3, p.w.in[0] = p.w.out[0] = 4;
  expect_refused(&p);
  p = ok, p.w.nsp = 3, p.w.k[0] = 2, p.w.in[0] = 2;
  expect_refused(&p);
  p = ok, p.w.nsp = 1;
  expect_refused(&p);
}
END_TEST

/* A run on another ISA fails with a message instead of executing AVX2 code. */
START_TEST(test_direct_needs_avx2) {
  ref_geom g = {1, 8, 16, {8, 8}, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
  conv_plan p = ref_plan(&g, false, ref_acts[0]);
  ref_expect_fail(cpu_nchwc_direct, &p, CPU_ISA_GENERIC, "AVX2");
}
END_TEST

#else

START_TEST(test_direct_absent) {
  printf("note: built without AVX2 kernels; the NCHW8c direct kernel is not exercised\n");
}
END_TEST

#endif

static Suite *kernels_nchwc_direct_suite(void) {
  Suite *s = suite_create("kernels_nchwc_direct");
  TCase *c = tcase_create("direct");
  tcase_set_timeout(c, 600);
#ifdef CPU_NCHWC_HAVE_AVX2
  tcase_add_test(c, test_direct_random);
  tcase_add_test(c, test_direct_layers);
  tcase_add_test(c, test_direct_clamps_exact);
  tcase_add_test(c, test_direct_applies);
  tcase_add_test(c, test_direct_needs_avx2);
#else
  tcase_add_test(c, test_direct_absent);
#endif
  suite_add_tcase(s, c);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_nchwc_direct_suite()) != 0; }
