/* Unit suite of the NCHW8c stem convolution (devices/cpu/conv_nchwc_stem.c): an NCHW input of a
 * few channels to a blocked output, called directly with plans built here. Random shapes,
 * kernels, strides, asymmetric pads, biases and every fused activation on 1 and 3 threads are
 * compared with a float64 reference written here; a small case with values checked by hand;
 * NaN inputs through the clamping activations; and the plans the kernel must refuse. */
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
static float *run_stem(const conv_plan *p, const float *x, const float *w, const float *b,
                       size_t threads) {
  return ref_run_conv("cpu_nchwc_stem", cpu_nchwc_stem_packed_floats, cpu_nchwc_stem_pack,
                      cpu_nchwc_stem, p, x, w, b, threads);
}

/* Where output (n, m, oy, ox) lies in the blocked layout. */
static size_t blocked_at(const conv_plan *p, size_t n, size_t m, size_t oy, size_t ox) {
  size_t oh = (size_t)p->w.out[1], ow = (size_t)p->w.out[2];
  return (((n * (p->M / 8) + m / 8) * oh + oy) * ow + ox) * 8 + m % 8;
}

static void stem_case(rng *r, int it, const ref_geom *g, bool bias, cpu_act act, size_t threads) {
  conv_plan p = ref_plan(g, bias, act);
  ck_assert_msg(cpu_nchwc_stem_applies(&p), "it %d: the stem refuses its own case", it);
  size_t xc = p.N * p.C * p.in_sp, wc = p.M * p.C * p.kk;
  float *x = malloc(xc * sizeof *x), *w = malloc(wc * sizeof *w), *b = malloc(p.M * sizeof *b);
  for (size_t i = 0; i < xc; i++)
    x[i] = runi(r);
  for (size_t i = 0; i < wc; i++)
    w[i] = runi(r);
  for (size_t i = 0; i < p.M; i++)
    b[i] = runi(r);
  float *y = run_stem(&p, x, w, bias ? b : NULL, threads);

  const nn_window *wn = &p.w;
  int64_t ih = g->in[0], iw = g->in[1], kh = g->k[0], kw = g->k[1];
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t m = 0; m < g->M; m++)
      for (int64_t oy = 0; oy < wn->out[1]; oy++)
        for (int64_t ox = 0; ox < wn->out[2]; ox++) {
          double s = bias ? b[m] : 0.0, mag = bias ? fabs(b[m]) : 0.0;
          for (int64_t c = 0; c < g->C; c++)
            for (int64_t ky = 0; ky < kh; ky++) {
              int64_t iy = oy * g->s[0] - g->pb[0] + ky;
              if (iy < 0 || iy >= ih)
                continue;
              for (int64_t kx = 0; kx < kw; kx++) {
                int64_t ix = ox * g->s[1] - g->pb[1] + kx;
                if (ix < 0 || ix >= iw)
                  continue;
                double t = (double)x[((n * g->C + c) * ih + iy) * iw + ix] *
                           w[((m * g->C + c) * kh + ky) * kw + kx];
                s += t, mag += fabs(t);
              }
            }
          double ref = ref_act(&act, s);
          size_t at = blocked_at(&p, (size_t)n, (size_t)m, (size_t)oy, (size_t)ox);
          double got = y[at], tol = 1.5e-5 * mag + 1e-6;
          ck_assert_msg(fabs(got - ref) <= tol,
                        "it %d (N=%lld C=%lld M=%lld in %lldx%lld k %lldx%lld s %lldx%lld pads "
                        "%lld,%lld,%lld,%lld bias %d act %s threads %zu) y(%lld,%lld,%lld,%lld) = "
                        "%.9g, expected %.9g",
                        it, (long long)g->N, (long long)g->C, (long long)g->M, (long long)ih,
                        (long long)iw, (long long)kh, (long long)kw, (long long)g->s[0],
                        (long long)g->s[1], (long long)g->pb[0], (long long)g->pb[1],
                        (long long)g->pe[0], (long long)g->pe[1], bias, ref_act_name(act.kind),
                        threads, (long long)n, (long long)m, (long long)oy, (long long)ox, got,
                        ref);
        }
  free(y);
  free(x), free(w), free(b);
}

/* Random shapes: C 1..5, M from 8 to 72 (half of them with M % 16 == 8), kernels 1..7 square
 * and not, strides 1..3, pads 0..3 differing at the two ends, planes from 1x1 to 60x70, one or
 * two images; every activation with and without bias, on 1 and 3 threads. */
START_TEST(test_stem_random) {
  if (!ref_have_avx2("NCHW8c stem kernel"))
    return;
  rng r = {20250101};
  for (int it = 0; it < 400; it++) {
    ref_geom g = {.N = rint_in(&r, 1, 2), .C = rint_in(&r, 1, 5), .M = 8 * rint_in(&r, 1, 9)};
    bool square = rint_in(&r, 0, 1);
    for (int i = 0; i < 2; i++) {
      g.in[i] = it % 5 == 4 ? rint_in(&r, 1, 6) : rint_in(&r, 1, i ? 70 : 60);
      g.k[i] = square && i == 1 ? g.k[0] : rint_in(&r, 1, 7);
      g.s[i] = rint_in(&r, 1, 3);
      g.pb[i] = rint_in(&r, 0, 3);
      g.pe[i] = rint_in(&r, 0, 1) ? g.pb[i] : rint_in(&r, 0, 3);
      if (g.k[i] > g.in[i] + g.pb[i] + g.pe[i]) /* the window fits the padded input */
        g.k[i] = g.in[i] + g.pb[i] + g.pe[i];
    }
    /* Keep the float64 reference quick: at most some 4M multiply-adds a case. */
    while (g.N * g.M * g.C * g.k[0] * g.k[1] * g.in[0] * g.in[1] / (g.s[0] * g.s[1]) > 4000000 &&
           g.M > 8)
      g.M -= 8;
    stem_case(&r, it, &g, it % 3 != 1, ref_acts[it % N_REF_ACTS], (it / 2) % 2 ? 3 : 1);
  }
}
END_TEST

/* The layers the kernel is for, at full size or nearly: 3x3 s2 with pads 1 (MobileNetV2,
 * EfficientNet) and without (SqueezeNet), 7x7 s2 p3 (ResNet), a 3x3 s1 VGG-like layer, and a
 * stem of 40 channels (EfficientNet-B3: M % 16 == 8) over a plane whose rows end in short
 * tiles. */
START_TEST(test_stem_layers) {
  if (!ref_have_avx2("NCHW8c stem kernel"))
    return;
  rng r = {7};
  static const ref_geom base[] = {
      {1, 3, 32, {224, 224}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
      {1, 3, 64, {113, 113}, {3, 3}, {2, 2}, {0, 0}, {0, 0}},
      {1, 3, 64, {112, 112}, {7, 7}, {2, 2}, {3, 3}, {3, 3}},
      {2, 3, 16, {64, 80}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
      {1, 3, 40, {150, 130}, {3, 3}, {2, 2}, {0, 0}, {1, 1}},
      {1, 16, 24, {33, 47}, {5, 3}, {2, 3}, {2, 1}, {0, 2}},
  };
  for (int i = 0; i < (int)(sizeof base / sizeof base[0]); i++) {
    stem_case(&r, i, &base[i], true, ref_acts[(i * 3 + 2) % N_REF_ACTS], i % 2 ? 3 : 1);
    stem_case(&r, i, &base[i], false, ref_acts[(i * 5 + 7) % N_REF_ACTS], i % 2 ? 1 : 3);
  }
}
END_TEST

/* A case small enough to check by hand: one channel of 3x4 ones but for x[1][2] = 2, a 2x2
 * kernel of 1, 2, 3, 4 (every output channel m scales it by m + 1), stride 1 across and 2
 * down, pads 1 on top and left. Output row 0 sees input row 0 through kernel row 1 only;
 * output row 1 rows 1 and 2 through both. M = 8: a single block of eight channels. */
START_TEST(test_stem_by_hand) {
  if (!ref_have_avx2("NCHW8c stem kernel"))
    return;
  ref_geom g = {1, 1, 8, {3, 4}, {2, 2}, {2, 1}, {1, 1}, {0, 0}};
  conv_plan p = ref_plan(&g, true, ref_acts[0]);
  ck_assert_int_eq(p.w.out[1], 2);
  ck_assert_int_eq(p.w.out[2], 4);
  float x[12] = {1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1}, w[8 * 4], b[8];
  for (int m = 0; m < 8; m++) {
    for (int t = 0; t < 4; t++)
      w[m * 4 + t] = (float)((m + 1) * (t + 1));
    b[m] = (float)(10 * m);
  }
  /* For m = 0: row 0 (kernel row 1 over input row 0): ox 0 sees columns -1, 0 -> 4 * 1 = 4;
   * ox >= 1: 3 + 4 = 7. Row 1 (input rows 1, 2): ox 0: 2 * 1 + 4 * 1 = 6; ox 1: 1 + 2 + 3 + 4
   * = 10; ox 2: 1 + 2 * 2 + 3 + 4 = 12; ox 3: 2 * 1 + 1 * 2 + 3 + 4 = 11. */
  static const float want0[2][4] = {{4, 7, 7, 7}, {6, 10, 12, 11}};
  float *y = run_stem(&p, x, w, b, 1);
  for (int m = 0; m < 8; m++)
    for (int oy = 0; oy < 2; oy++)
      for (int ox = 0; ox < 4; ox++) {
        float want = (float)(m + 1) * want0[oy][ox] + (float)(10 * m);
        float got = y[blocked_at(&p, 0, (size_t)m, (size_t)oy, (size_t)ox)];
        ck_assert_msg(got == want, "y(%d,%d,%d) = %g, expected %g", m, oy, ox, got, want);
      }
  free(y);
}
END_TEST

/* None, relu and clip as cpu_act_apply gives them, bit for bit, on exact sums (small integers
 * and halves), and NaN through each: one NaN input reaches the outputs whose windows cover it
 * and no others. */
START_TEST(test_stem_clamps_exact) {
  if (!ref_have_avx2("NCHW8c stem kernel"))
    return;
  rng r = {99};
  ref_geom g = {1, 2, 24, {9, 17}, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
  static const cpu_act clamps[] = {
      {CPU_ACT_NONE, 0, 0}, {CPU_ACT_RELU, 0, 0}, {CPU_ACT_CLIP, -2.0f, 3.5f}};
  for (int a = 0; a < 3; a++) {
    conv_plan p = ref_plan(&g, true, clamps[a]);
    size_t xc = p.C * p.in_sp, wc = p.M * p.C * p.kk;
    float *x = malloc(xc * sizeof *x), *w = malloc(wc * sizeof *w), b[24];
    for (size_t i = 0; i < xc; i++)
      x[i] = (float)rint_in(&r, -4, 4) * 0.5f;
    for (size_t i = 0; i < wc; i++)
      w[i] = (float)rint_in(&r, -3, 3);
    for (size_t i = 0; i < p.M; i++)
      b[i] = (float)rint_in(&r, -8, 8) * 0.5f;
    size_t nan_at = 4 * 17 + 9; /* channel 0, row 4, column 9 */
    x[nan_at] = NAN;
    float *y = run_stem(&p, x, w, b, 3);
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
                size_t xi = (c * 9 + (size_t)iy) * 17 + (size_t)ix;
                float wv = w[((m * p.C + c) * 3 + (size_t)ky) * 3 + (size_t)kx];
                if (xi == nan_at)
                  nan = true;
                else
                  s += x[xi] * wv; /* exact: small multiples of 1/2 */
              }
          float want = cpu_act_apply(&clamps[a], nan ? NAN : s);
          float got = y[blocked_at(&p, 0, m, (size_t)oy, (size_t)ox)];
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

/* What the kernel must refuse, each a small change to a plan it runs. */
START_TEST(test_stem_applies) {
  ref_geom g = {1, 3, 32, {16, 16}, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
  conv_plan ok = ref_plan(&g, true, ref_acts[0]), p;
  ck_assert(cpu_nchwc_stem_applies(&ok));
  p = ok, p.C = p.cg = 16;
  ck_assert(cpu_nchwc_stem_applies(&p));
  p = ok, p.M = p.mg = 8;
  ck_assert(cpu_nchwc_stem_applies(&p));
  p = ok, p.C = p.cg = 17;
  ck_assert(!cpu_nchwc_stem_applies(&p));
  p = ok, p.C = p.cg = 0;
  ck_assert(!cpu_nchwc_stem_applies(&p));
  p = ok, p.M = p.mg = 36;
  ck_assert(!cpu_nchwc_stem_applies(&p));
  p = ok, p.G = 3, p.cg = 1, p.mg = 4;
  ck_assert(!cpu_nchwc_stem_applies(&p));
  p = ok, p.transpose = true;
  ck_assert(!cpu_nchwc_stem_applies(&p));
  p = ok, p.w.d[1] = 2;
  ck_assert(!cpu_nchwc_stem_applies(&p));
  p = ok, p.w.d[2] = 2;
  ck_assert(!cpu_nchwc_stem_applies(&p));
  p = ok, p.w.nsp = 3, p.w.in[0] = p.w.out[0] = 4;
  ck_assert(!cpu_nchwc_stem_applies(&p));
  p = ok, p.w.nsp = 3, p.w.k[0] = 2, p.w.in[0] = 2;
  ck_assert(!cpu_nchwc_stem_applies(&p));
  p = ok, p.w.nsp = 1;
  ck_assert(!cpu_nchwc_stem_applies(&p));
}
END_TEST

/* A run on another ISA fails with a message instead of executing AVX2 code. */
START_TEST(test_stem_needs_avx2) {
  ref_geom g = {1, 3, 16, {8, 8}, {3, 3}, {2, 2}, {1, 1}, {1, 1}};
  conv_plan p = ref_plan(&g, false, ref_acts[0]);
  ref_expect_fail(cpu_nchwc_stem, &p, CPU_ISA_GENERIC, "AVX2");
}
END_TEST

#else

START_TEST(test_stem_absent) {
  printf("note: built without AVX2 kernels; the NCHW8c stem kernel is not exercised\n");
}
END_TEST

#endif

static Suite *kernels_nchwc_stem_suite(void) {
  Suite *s = suite_create("kernels_nchwc_stem");
  TCase *c = tcase_create("stem");
  tcase_set_timeout(c, 600);
#ifdef CPU_NCHWC_HAVE_AVX2
  tcase_add_test(c, test_stem_random);
  tcase_add_test(c, test_stem_layers);
  tcase_add_test(c, test_stem_by_hand);
  tcase_add_test(c, test_stem_clamps_exact);
  tcase_add_test(c, test_stem_applies);
  tcase_add_test(c, test_stem_needs_avx2);
#else
  tcase_add_test(c, test_stem_absent);
#endif
  suite_add_tcase(s, c);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_nchwc_stem_suite()) != 0; }
