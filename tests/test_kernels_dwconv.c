/* Unit suite of the depthwise convolution kernels in devices/cpu/conv_dw.c (1-D and 2-D, one input
 * channel per group): random shapes, kernels, strides, pads (explicit and auto_pad), dilations,
 * biases and fused activations ("tessera.activation"), compared with a float64 reference written
 * here. Cases alternate the AVX2 and generic paths (TESSERA_CPU_GENERIC) and 1 or 3 threads. */
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

/* Uniform in [-1, 1), representable as float. */
static float runi(rng *r) { return (float)((double)(rnext(r) >> 11) / 4503599627370496.0 - 1.0); }

/* A fused activation as the test passes it, and its float64 reference. */
typedef struct act_case {
  const char *name; /* NULL: none */
  size_t np;
  float p[2];
} act_case;

static const act_case acts[] = {{NULL, 0, {0}},
                                {"relu", 0, {0}},
                                {"clip", 2, {0.0f, 0.6f}},
                                {"leakyrelu", 1, {0.1f}},
                                {"hardsigmoid", 2, {0.3f, 0.5f}},
                                {"hardswish", 0, {0}},
                                {"sigmoid", 0, {0}},
                                {"silu", 0, {0}},
                                {"gelu", 0, {0}},
                                {"gelu_tanh", 0, {0}}};
enum { N_ACTS = sizeof acts / sizeof acts[0] };

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

static double ref_act(const act_case *a, double x) {
  if (!a->name)
    return x;
  if (!strcmp(a->name, "relu"))
    return x < 0 ? 0 : x;
  if (!strcmp(a->name, "clip"))
    return x < a->p[0] ? a->p[0] : (x > a->p[1] ? a->p[1] : x);
  if (!strcmp(a->name, "leakyrelu"))
    return x < 0 ? a->p[0] * x : x;
  if (!strcmp(a->name, "hardsigmoid"))
    return clamp01(a->p[0] * x + a->p[1]);
  if (!strcmp(a->name, "sigmoid"))
    return 1 / (1 + exp(-x));
  if (!strcmp(a->name, "silu"))
    return x / (1 + exp(-x));
  if (!strcmp(a->name, "gelu"))
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  if (!strcmp(a->name, "gelu_tanh"))
    return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  return x * clamp01(x / 6 + 0.5); /* hardswish */
}

/* One depthwise case: spatial dims 1 or 2 (index 0 is H, 1 is W; 1-D uses W only). */
typedef struct dw_geom {
  int nsp;
  int64_t N, C, mult;
  int64_t in[2], k[2], s[2], d[2], pb[2], pe[2];
  int pad_mode; /* 0 explicit pads, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
} dw_geom;

/* Resolves auto_pad into pb/pe and returns the output size of dim i. */
static int64_t out_dim(dw_geom *g, int i) {
  int64_t ek = (g->k[i] - 1) * g->d[i] + 1;
  if (g->pad_mode == 1 || g->pad_mode == 2) {
    int64_t out = (g->in[i] + g->s[i] - 1) / g->s[i];
    int64_t total = (out - 1) * g->s[i] + ek - g->in[i];
    if (total < 0)
      total = 0;
    int64_t small = total / 2, big = total - small;
    g->pb[i] = g->pad_mode == 1 ? small : big;
    g->pe[i] = g->pad_mode == 1 ? big : small;
    return out;
  }
  if (g->pad_mode == 3)
    g->pb[i] = g->pe[i] = 0;
  return (g->in[i] + g->pb[i] + g->pe[i] - ek) / g->s[i] + 1;
}

static void dw_case(rng *r, int it, dw_geom g, bool bias, const act_case *act, size_t threads) {
  int off = 2 - g.nsp; /* first used index of in/k/... */
  int64_t out[2] = {1, 1};
  for (int i = off; i < 2; i++)
    out[i] = out_dim(&g, i);
  int64_t M = g.C * g.mult;
  int64_t ih = g.in[0], iw = g.in[1], oh = out[0], ow = out[1];
  int64_t kh = g.k[0], kw = g.k[1];
  if (g.nsp == 1)
    ih = oh = kh = 1;
  size_t xc = (size_t)(g.N * g.C * ih * iw), wc = (size_t)(M * kh * kw);
  float *x = malloc(xc * sizeof *x), *w = malloc(wc * sizeof *w), *b = malloc(M * sizeof *b);
  for (size_t i = 0; i < xc; i++)
    x[i] = runi(r);
  for (size_t i = 0; i < wc; i++)
    w[i] = runi(r);
  for (int64_t i = 0; i < M; i++)
    b[i] = runi(r);

  cpu_direct *d = cpu_direct_new("Conv", 13);
  int r0 = 2 - g.nsp;
  int64_t kv[2] = {g.k[0], g.k[1]}, sv[2] = {g.s[0], g.s[1]}, dv[2] = {g.d[0], g.d[1]};
  int64_t pv[4] = {g.pb[0], g.pb[1], g.pe[0], g.pe[1]};
  if (g.nsp == 1)
    pv[0] = pv[1], pv[1] = pv[3];
  cpu_direct_attr_int(d, "group", g.C);
  cpu_direct_attr_ints(d, "kernel_shape", (size_t)g.nsp, kv + r0);
  cpu_direct_attr_ints(d, "strides", (size_t)g.nsp, sv + r0);
  cpu_direct_attr_ints(d, "dilations", (size_t)g.nsp, dv + r0);
  static const char *modes[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
  if (g.pad_mode == 0)
    cpu_direct_attr_ints(d, "pads", 2 * (size_t)g.nsp, pv);
  else
    cpu_direct_attr_string(d, "auto_pad", modes[g.pad_mode]);
  if (act->name) {
    cpu_direct_attr_string(d, "tessera.activation", act->name);
    if (act->np)
      cpu_direct_attr_floats(d, "tessera.activation_params", act->np, act->p);
  }
  int64_t xd[4] = {g.N, g.C, ih, iw}, wd[4] = {M, 1, kh, kw}, yd[4] = {g.N, M, oh, ow};
  if (g.nsp == 1)
    xd[2] = iw, wd[2] = kw, yd[2] = ow;
  uint32_t rank = (uint32_t)g.nsp + 2;
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, rank, xd, x, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, rank, wd, w, true);
  /* Now and then the bias is given at run time, not as a constant: the eight-channel path
   * then packs taps and bias in the run instead of taking those packed at compile time. */
  if (bias)
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, (int64_t[]){M}, b, it % 3 != 1);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, rank, yd);
  char err[512];
  int rc = cpu_direct_run(d, threads, err, sizeof err);
  ck_assert_msg(rc == 0, "it %d: run failed (%d): %s", it, rc, err);
  const float *y = cpu_direct_out(d, 0)->data;

  int64_t ph = g.nsp == 1 ? 0 : g.pb[0], pw = g.pb[1];
  int64_t sh = g.nsp == 1 ? 1 : g.s[0], dh = g.nsp == 1 ? 1 : g.d[0];
  for (int64_t n = 0; n < g.N; n++)
    for (int64_t m = 0; m < M; m++) {
      const float *xp = x + (n * g.C + m / g.mult) * ih * iw, *wp = w + m * kh * kw;
      for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
          double s = bias ? b[m] : 0.0, mag = bias ? fabs(b[m]) : 0.0;
          for (int64_t ky = 0; ky < kh; ky++) {
            int64_t iy = oy * sh - ph + ky * dh;
            if (iy < 0 || iy >= ih)
              continue;
            for (int64_t kx = 0; kx < kw; kx++) {
              int64_t ix = ox * g.s[1] - pw + kx * g.d[1];
              if (ix < 0 || ix >= iw)
                continue;
              double t = (double)xp[iy * iw + ix] * wp[ky * kw + kx];
              s += t, mag += fabs(t);
            }
          }
          double ref = ref_act(act, s);
          size_t at = (size_t)(((n * M + m) * oh + oy) * ow + ox);
          double got = y[at], tol = 1e-5 * 1.5 * mag + 1e-6;
          ck_assert_msg(fabs(got - ref) <= tol,
                        "it %d (%dD N=%lld C=%lld mult=%lld in %lldx%lld k %lldx%lld s %lldx%lld "
                        "d %lldx%lld pads %lld,%lld,%lld,%lld mode %d bias %d act %s threads %zu "
                        "generic %s) y[%zu] = %.9g, expected %.9g",
                        it, g.nsp, (long long)g.N, (long long)g.C, (long long)g.mult, (long long)ih,
                        (long long)iw, (long long)kh, (long long)kw, (long long)sh,
                        (long long)g.s[1], (long long)dh, (long long)g.d[1], (long long)g.pb[0],
                        (long long)g.pb[1], (long long)g.pe[0], (long long)g.pe[1], g.pad_mode,
                        bias, act->name ? act->name : "none", threads,
                        getenv("TESSERA_CPU_GENERIC"), at, got, ref);
        }
    }
  cpu_direct_free(d);
  free(x), free(w), free(b);
}

/* Alternates the generic and AVX2 paths (even/odd) and 1 or 3 threads. */
static size_t vary_env(int it) {
  setenv("TESSERA_CPU_GENERIC", (it & 1) ? "1" : "0", 1);
  return (it / 2) % 2 ? 3 : 1;
}

START_TEST(test_dwconv_random) {
  rng r = {20240611};
  static const int64_t ks[] = {1, 3, 5, 7};
  for (int it = 0; it < 1200; it++) {
    size_t threads = vary_env(it);
    dw_geom g = {.nsp = it % 8 == 7 ? 1 : 2, .N = rint_in(&r, 1, 2), .C = rint_in(&r, 1, 6)};
    g.mult = it % 10 == 9 ? 2 : 1;
    g.pad_mode = it % 3 == 0 ? (int)rint_in(&r, 1, 3) : 0;
    bool square = rint_in(&r, 0, 1);
    for (int i = 0; i < 2; i++) {
      g.in[i] = rint_in(&r, 1, 40);
      g.k[i] = square && i == 1 ? g.k[0] : ks[rint_in(&r, 0, 3)];
      g.s[i] = rint_in(&r, 1, 2);
      g.d[i] = it % 4 == 3 ? rint_in(&r, 1, 2) : 1;
      g.pb[i] = rint_in(&r, 0, 3);
      g.pe[i] = rint_in(&r, 0, 1) ? g.pb[i] : rint_in(&r, 0, 3);
      /* Keep the dilated kernel within the (explicitly) padded input. */
      int64_t room = g.in[i] + (g.pad_mode == 0 ? g.pb[i] + g.pe[i] : 0);
      while ((g.k[i] - 1) * g.d[i] + 1 > room) {
        if (g.d[i] > 1)
          g.d[i]--;
        else
          g.k[i]--;
      }
    }
    dw_case(&r, it, g, it % 3 != 1, &acts[(it / 2) % N_ACTS], threads);
  }
}
END_TEST

/* Rows wide enough for the four-vector blocks of the AVX2 kernel, at stride 1 and 2, with the
 * 3x3, 5x5 and generic kernels; rows wider than the padded path takes (the interior/border
 * path); and planes narrower than one vector. */
START_TEST(test_dwconv_wide) {
  rng r = {77};
  /* nsp, N, C, mult, in, k, s, d, pb, pe */
  static const dw_geom base[] = {
      {2, 1, 3, 1, {9, 90}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
      {2, 1, 3, 1, {9, 131}, {3, 3}, {2, 2}, {1, 1}, {0, 0}, {1, 1}},
      {2, 2, 4, 1, {12, 77}, {5, 5}, {1, 2}, {1, 1}, {2, 2}, {2, 2}},
      {2, 1, 5, 1, {10, 100}, {7, 4}, {2, 1}, {1, 1}, {3, 1}, {3, 2}},
      {2, 1, 7, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
      {2, 1, 2, 1, {6, 300}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
      {2, 1, 2, 1, {7, 541}, {5, 5}, {2, 2}, {1, 1}, {2, 2}, {2, 2}},
      {2, 1, 3, 1, {16, 113}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},
      {1, 2, 3, 1, {1, 150}, {1, 5}, {1, 2}, {1, 1}, {0, 2}, {0, 2}},
  };
  for (int it = 0; it < 6 * (int)(sizeof base / sizeof base[0]); it++) {
    size_t threads = vary_env(it);
    dw_case(&r, it, base[it / 6], it % 2 == 0, &acts[(it * 5) % N_ACTS], threads);
  }
}
END_TEST

/* The AVX2 path that computes eight channels at once (conv_dw.c, dwi_*): 3x3 and 5x5 (its
 * unrolled kernels) and other windows, stride 1, 2 and 3, dilation, planes narrower than a
 * block of eight pixels (7x7, 1x1, 2x3) and ones split into several bands (56x112 and 60x200),
 * asymmetric pads, N = 2, and channel counts that leave no, few (to the per-plane path) or many
 * (idle lanes) channels past the last group of eight. Each geometry runs every activation on
 * both ISAs, with 1 and 3 threads. */
START_TEST(test_dwconv_interleaved) {
  rng r = {4242};
  /* nsp, N, C, mult, in, k, s, d, pb, pe */
  static const dw_geom base[] = {
      {2, 1, 8, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
      {2, 1, 13, 1, {15, 9}, {3, 3}, {2, 2}, {1, 1}, {0, 1}, {1, 0}},
      {2, 1, 32, 1, {14, 14}, {5, 5}, {1, 1}, {1, 1}, {2, 2}, {2, 2}},
      {2, 1, 13, 1, {15, 9}, {5, 5}, {2, 2}, {1, 1}, {2, 1}, {1, 2}},
      {2, 1, 8, 1, {1, 1}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
      {2, 2, 32, 1, {28, 28}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},
      {2, 2, 13, 1, {9, 15}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
      {2, 1, 14, 1, {10, 11}, {3, 3}, {1, 2}, {1, 1}, {1, 0}, {0, 1}},
      {2, 1, 15, 1, {2, 3}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
      {2, 1, 16, 1, {15, 9}, {7, 7}, {1, 1}, {1, 1}, {3, 3}, {3, 3}},
      {2, 1, 9, 1, {12, 13}, {3, 5}, {1, 2}, {1, 1}, {1, 2}, {1, 2}},
      {2, 1, 11, 1, {13, 17}, {3, 3}, {3, 2}, {2, 2}, {2, 1}, {2, 3}},
      {2, 1, 8, 1, {56, 112}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},
      {2, 1, 8, 1, {60, 200}, {5, 5}, {2, 2}, {1, 1}, {2, 2}, {1, 1}},
  };
  for (int gi = 0; gi < (int)(sizeof base / sizeof base[0]); gi++)
    for (int a = 0; a < N_ACTS; a++)
      for (int generic = 0; generic < 2; generic++) {
        setenv("TESSERA_CPU_GENERIC", generic ? "1" : "0", 1);
        int it = (gi * N_ACTS + a) * 2 + generic;
        dw_case(&r, it, base[gi], a % 3 != 2, &acts[a], a % 2 ? 3 : 1);
      }
}
END_TEST

static Suite *kernels_dwconv_suite(void) {
  Suite *s = suite_create("kernels_dwconv");
  TCase *c = tcase_create("dwconv");
  tcase_set_timeout(c, 600);
  tcase_add_test(c, test_dwconv_random);
  tcase_add_test(c, test_dwconv_wide);
  tcase_add_test(c, test_dwconv_interleaved);
  suite_add_tcase(s, c);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_dwconv_suite()) != 0; }
