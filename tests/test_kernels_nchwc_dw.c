/* Unit suite of the depthwise Conv over the channel-blocked layout
 * (cpu_conv_depthwise_nchwc, devices/cpu/conv_dw.c): a blocked input to a blocked output,
 * called directly with plans built here. Random shapes (kernels square and not, strides and
 * pads differing at each side, dilations, planes down to one pixel, so that a row's ends, its
 * interior and its remainders of one to seven pixels all occur), biases and every fused
 * activation on 1 and 3 threads are compared with a float64 reference written here; then the
 * layers of MobileNetV2, MNASNet and EfficientNet-B0; then NaN through the clamps. */
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

/* Where element (n, c, h, w) of a [N, C, H, W] tensor lies in the blocked layout. */
static size_t blocked(size_t C, size_t H, size_t W, size_t n, size_t c, size_t h, size_t w) {
  return (((n * (C / 8) + c / 8) * H + h) * W + w) * 8 + c % 8;
}

/* The plan conv.c builds for a depthwise Conv of multiplier 1 (C == M groups). */
static conv_plan dw_plan(const ref_geom *g, bool bias, cpu_act act) {
  conv_plan p = ref_plan(g, bias, act);
  p.G = p.C, p.cg = 1, p.mg = 1;
  return p;
}

/* Packs w and b as prepare() does and runs the kernel into a ref_guarded_output; returns a
 * copy of the output, which the caller frees. */
static float *run_dw(const conv_plan *p, const float *x, const float *w, const float *b,
                     size_t threads) {
  float *packed = cpu_conv_dw_pack(p, w, b);
  ck_assert_ptr_nonnull(packed);
  size_t yc = p->N * p->C * p->out_sp;
  float *buf = ref_guarded_output(yc);
  cpu_pool *pool = cpu_pool_create(threads);
  char err[256] = "";
  cpu_ctx ctx = {.pool = pool, .isa = CPU_ISA_AVX2_FMA, .err = err, .err_size = sizeof err};
  ck_assert_msg(cpu_conv_depthwise_nchwc(&ctx, p, x, packed, buf + REF_GUARD) == 0, "%s", err);
  cpu_pool_destroy(pool);
  free(packed);
  return ref_guarded_take("cpu_conv_depthwise_nchwc", buf, yc);
}

static void dw_case(rng *r, const char *what, int it, const ref_geom *g, bool bias, cpu_act act,
                    size_t threads) {
  conv_plan p = dw_plan(g, bias, act);
  ck_assert_msg(cpu_conv_dw_nchwc_applies(&p), "%s %d: the kernel refuses its own case", what, it);
  size_t xc = p.N * p.C * p.in_sp, wc = p.C * p.kk;
  float *x = malloc(xc * sizeof *x), *w = malloc(wc * sizeof *w), *b = malloc(p.C * sizeof *b);
  ck_assert(x && w && b);
  for (size_t i = 0; i < xc; i++)
    x[i] = runi(r);
  for (size_t i = 0; i < wc; i++)
    w[i] = runi(r);
  for (size_t i = 0; i < p.C; i++)
    b[i] = runi(r);
  float *y = run_dw(&p, x, w, bias ? b : NULL, threads);

  const size_t ih = (size_t)g->in[0], iw = (size_t)g->in[1], kh = (size_t)g->k[0],
               kw = (size_t)g->k[1], oh = (size_t)p.w.out[1], ow = (size_t)p.w.out[2];
  const int64_t dh = g->d[0] ? g->d[0] : 1, dwd = g->d[1] ? g->d[1] : 1;
  for (size_t n = 0; n < p.N; n++)
    for (size_t c = 0; c < p.C; c++)
      for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox++) {
          double s = bias ? b[c] : 0.0, mag = bias ? fabs(b[c]) : 0.0;
          for (size_t ky = 0; ky < kh; ky++) {
            int64_t iy = (int64_t)oy * g->s[0] - g->pb[0] + (int64_t)ky * dh;
            if (iy < 0 || iy >= (int64_t)ih)
              continue;
            for (size_t kx = 0; kx < kw; kx++) {
              int64_t ix = (int64_t)ox * g->s[1] - g->pb[1] + (int64_t)kx * dwd;
              if (ix < 0 || ix >= (int64_t)iw)
                continue;
              double t = (double)x[blocked(p.C, ih, iw, n, c, (size_t)iy, (size_t)ix)] *
                         w[(c * kh + ky) * kw + kx];
              s += t, mag += fabs(t);
            }
          }
          double ref = ref_act(&act, s);
          double got = y[blocked(p.C, oh, ow, n, c, oy, ox)], tol = 1.5e-5 * mag + 1e-6;
          ck_assert_msg(fabs(got - ref) <= tol,
                        "%s %d (N=%lld C=%lld in %lldx%lld k %lldx%lld s %lldx%lld d %lldx%lld "
                        "pads %lld,%lld,%lld,%lld bias %d act %s threads %zu) y(%zu,%zu,%zu,%zu) "
                        "= %.9g, expected %.9g",
                        what, it, (long long)g->N, (long long)g->C, (long long)ih, (long long)iw,
                        (long long)kh, (long long)kw, (long long)g->s[0], (long long)g->s[1],
                        (long long)dh, (long long)dwd, (long long)g->pb[0], (long long)g->pb[1],
                        (long long)g->pe[0], (long long)g->pe[1], bias, ref_act_name(act.kind),
                        threads, n, c, oy, ox, got, ref);
        }
  free(y);
  free(x), free(w), free(b);
}

/* Random shapes: C from 8 to 48, kernels 2..7 a side (3x3 and 5x5 in half the cases, which
 * have kernels of their own), strides 1..3, pads 0..k-1 at each side on its own, a dilation
 * of 2 in one case of six, planes from 1 to 40 a side; every activation with and without bias,
 * on 1 and 3 threads. */
START_TEST(test_dw_random) {
  if (!ref_have_avx2("NCHW8c depthwise kernel"))
    return;
  rng r = {20261126};
  for (int it = 0; it < 400; it++) {
    ref_geom g = {.N = rint_in(&r, 1, 2), .C = 8 * rint_in(&r, 1, 6)};
    int shape = (int)rint_in(&r, 0, 3); /* 3x3, 5x5, square, free */
    int64_t d = it % 6 == 5 ? 2 : 1;
    for (int i = 0; i < 2; i++) {
      g.in[i] = it % 5 == 4 ? rint_in(&r, 1, 8) : rint_in(&r, 1, 40);
      g.k[i] = shape == 0 ? 3 : shape == 1 ? 5 : shape == 2 && i == 1 ? g.k[0] : rint_in(&r, 2, 7);
      g.s[i] = rint_in(&r, 1, 3) == 3 ? rint_in(&r, 2, 3) : rint_in(&r, 1, 2);
      g.d[i] = d;
      g.pb[i] = rint_in(&r, 0, g.k[i] - 1);
      g.pe[i] = rint_in(&r, 0, g.k[i] - 1);
      /* The dilated window fits the padded input. */
      while ((g.k[i] - 1) * d + 1 > g.in[i] + g.pb[i] + g.pe[i])
        g.in[i]++;
    }
    dw_case(&r, "random", it, &g, it % 3 != 1, ref_acts[it % N_REF_ACTS], (it / 2) % 2 ? 3 : 1);
  }
}
END_TEST

/* The depthwise layers of MobileNetV2, MNASNet and EfficientNet-B0 (3x3 and 5x5, strides 1
 * and 2, planes 112 down to 7), with the activations those networks fuse. */
START_TEST(test_dw_layers) {
  if (!ref_have_avx2("NCHW8c depthwise kernel"))
    return;
  rng r = {7};
  static const ref_geom layers[] = {
      {1, 32, 32, {112, 112}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
      {1, 96, 96, {112, 112}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {1, 144, 144, {56, 56}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
      {1, 144, 144, {56, 56}, {5, 5}, {2, 2}, {2, 2}, {2, 2}},
      {1, 192, 192, {28, 28}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
      {1, 240, 240, {28, 28}, {5, 5}, {1, 1}, {2, 2}, {2, 2}},
      {1, 384, 384, {14, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
      {1, 480, 480, {14, 14}, {5, 5}, {1, 1}, {2, 2}, {2, 2}},
      {1, 576, 576, {14, 14}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {1, 960, 960, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
      {1, 1152, 1152, {7, 7}, {5, 5}, {1, 1}, {2, 2}, {2, 2}},
  };
  static const cpu_act acts[] = {
      {CPU_ACT_CLIP, 0.0f, 6.0f}, {CPU_ACT_RELU, 0, 0}, {CPU_ACT_SILU, 0, 0}};
  for (int i = 0; i < (int)(sizeof layers / sizeof layers[0]); i++)
    dw_case(&r, "layer", i, &layers[i], true, acts[i % 3], i % 2 ? 3 : 1);
  /* Rows over 32 wide with a smooth activation (finished in registers) whose interior is
   * shorter than a block and starts past column 8: a kernel 35 wide padded by 17. */
  static const ref_geom wide[] = {
      {1, 8, 8, {5, 40}, {3, 35}, {1, 1}, {1, 17}, {1, 17}},
      {1, 16, 16, {4, 48}, {2, 33}, {1, 1}, {0, 16}, {1, 15}},
  };
  for (int i = 0; i < (int)(sizeof wide / sizeof wide[0]); i++)
    dw_case(&r, "wide kernel", i, &wide[i], true, acts[2], 1);
}
END_TEST

/* None, relu and clip as cpu_act_apply gives them, bit for bit, on exact sums (small integers
 * and halves), and NaN through each: one NaN input reaches the outputs whose windows cover it
 * (an edge column's among them) and no others. */
START_TEST(test_dw_clamps_exact) {
  if (!ref_have_avx2("NCHW8c depthwise kernel"))
    return;
  rng r = {99};
  for (int k = 3; k <= 5; k += 2) {
    ref_geom g = {1, 16, 16, {9, 21}, {k, k}, {1, 1}, {k / 2, k / 2}, {k / 2, k / 2}};
    static const cpu_act clamps[] = {
        {CPU_ACT_NONE, 0, 0}, {CPU_ACT_RELU, 0, 0}, {CPU_ACT_CLIP, -2.0f, 3.5f}};
    for (int a = 0; a < 3; a++) {
      conv_plan p = dw_plan(&g, true, clamps[a]);
      size_t xc = p.C * p.in_sp, wc = p.C * p.kk;
      float *x = malloc(xc * sizeof *x), *w = malloc(wc * sizeof *w), b[16];
      ck_assert(x && w);
      for (size_t i = 0; i < xc; i++)
        x[i] = (float)rint_in(&r, -4, 4) * 0.5f;
      for (size_t i = 0; i < wc; i++)
        w[i] = (float)rint_in(&r, -3, 3);
      for (size_t i = 0; i < p.C; i++)
        b[i] = (float)rint_in(&r, -8, 8) * 0.5f;
      const int64_t ny = 4, nx = 1, nc = 11; /* the NaN: channel 11, row 4, column 1 */
      size_t nan_at = blocked(16, 9, 21, 0, nc, ny, nx);
      x[nan_at] = NAN;
      float *y = run_dw(&p, x, w, b, 3);
      for (size_t c = 0; c < p.C; c++)
        for (int64_t oy = 0; oy < p.w.out[1]; oy++)
          for (int64_t ox = 0; ox < p.w.out[2]; ox++) {
            float s = b[c];
            bool nan = false;
            for (int64_t ky = 0; ky < k; ky++)
              for (int64_t kx = 0; kx < k; kx++) {
                int64_t iy = oy - k / 2 + ky, ix = ox - k / 2 + kx;
                if (iy < 0 || iy >= 9 || ix < 0 || ix >= 21)
                  continue;
                size_t xi = blocked(16, 9, 21, 0, c, (size_t)iy, (size_t)ix);
                if (xi == nan_at)
                  nan = true;
                else
                  s += x[xi] * w[(c * (size_t)k + (size_t)ky) * (size_t)k + (size_t)kx];
              }
            float want = cpu_act_apply(&clamps[a], nan ? NAN : s);
            float got = y[blocked(16, 9, 21, 0, c, (size_t)oy, (size_t)ox)];
            if (nan)
              ck_assert_msg(isnan(got), "k %d act %d y(%zu,%lld,%lld) = %g, expected NaN", k, a, c,
                            (long long)oy, (long long)ox, got);
            else
              ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                            "k %d act %d y(%zu,%lld,%lld) = %g, expected %g", k, a, c,
                            (long long)oy, (long long)ox, got, want);
          }
      free(y), free(x), free(w);
    }
  }
}
END_TEST

/* What the kernel does not take: channels that are no multiple of eight, a single tap a
 * side, a channel multiplier, a 3-D window. */
START_TEST(test_dw_applies) {
  ref_geom g = {1, 16, 16, {12, 12}, {3, 3}, {1, 1}, {1, 1}, {1, 1}};
  conv_plan ok = dw_plan(&g, true, ref_acts[0]), p;
  ck_assert(cpu_conv_dw_nchwc_applies(&ok));
  p = ok, p.w.d[1] = p.w.d[2] = 2;
  ck_assert(cpu_conv_dw_nchwc_applies(&p));
  p = ok, p.C = p.M = p.G = 12;
  ck_assert(!cpu_conv_dw_nchwc_applies(&p));
  p = ok, p.w.k[1] = 1, p.kk = 3;
  ck_assert(!cpu_conv_dw_nchwc_applies(&p));
  p = ok, p.mg = 2, p.M = 32;
  ck_assert(!cpu_conv_dw_nchwc_applies(&p));
  p = ok, p.w.nsp = 3, p.w.in[0] = p.w.out[0] = 4;
  ck_assert(!cpu_conv_dw_nchwc_applies(&p));
}
END_TEST

/* The kernel in ref_conv_fn's form (its bias is packed with the taps). */
static int dw_fn(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *packed,
                 const float *bias, float *y) {
  (void)bias;
  return cpu_conv_depthwise_nchwc(ctx, p, x, packed, y);
}

/* Called on a plan it does not take or without AVX2, the kernel fails with a message before it
 * reads anything. */
START_TEST(test_dw_refuses) {
  ref_geom g = {1, 16, 16, {12, 12}, {3, 3}, {1, 1}, {1, 1}, {1, 1}};
  conv_plan p = dw_plan(&g, true, ref_acts[0]);
  ref_expect_fail(dw_fn, &p, CPU_ISA_GENERIC, "AVX2");
  p.C = p.M = p.G = 12;
  ref_expect_fail(dw_fn, &p, CPU_ISA_AVX2_FMA, "does not apply");
}
END_TEST

#else

START_TEST(test_dw_absent) {
  printf("note: built without AVX2 kernels; the NCHW8c depthwise kernel is not exercised\n");
}
END_TEST

#endif

static Suite *kernels_nchwc_dw_suite(void) {
  Suite *s = suite_create("kernels_nchwc_dw");
  TCase *c = tcase_create("depthwise");
  tcase_set_timeout(c, 600);
#ifdef CPU_NCHWC_HAVE_AVX2
  tcase_add_test(c, test_dw_random);
  tcase_add_test(c, test_dw_layers);
  tcase_add_test(c, test_dw_clamps_exact);
  tcase_add_test(c, test_dw_applies);
  tcase_add_test(c, test_dw_refuses);
#else
  tcase_add_test(c, test_dw_absent);
#endif
  suite_add_tcase(s, c);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_nchwc_dw_suite()) != 0; }
