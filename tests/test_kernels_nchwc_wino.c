/* Unit suite of the NCHW8c Winograd convolution (devices/cpu/conv_nchwc_wino.c): 3x3 stride-1
 * Convs over a blocked input to a blocked output by F(2x2, 3x3) and by F(4x4, 3x3), called
 * directly with plans built here. Random shapes (odd sides, planes down to 1x1 and 2x2, several
 * bands), asymmetric pads, biases and every fused activation on 1 and 3 threads are compared
 * with a float64 direct convolution written here, for both tiles; the layers the kernel is for
 * at full size; the packed weights against cpu_nchwc_pw_pack's of G g G^T computed here; NaN
 * through the tiles; the tile each plan gets; and the plans the kernel must refuse. */
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

/* A 3x3 stride-1 geometry. */
static ref_geom geom3(int64_t N, int64_t C, int64_t M, int64_t h, int64_t w, int64_t pt, int64_t pl,
                      int64_t pb, int64_t pr) {
  ref_geom g = {N, C, M, {h, w}, {3, 3}, {1, 1}, {pt, pl}, {pb, pr}, {1, 1}};
  return g;
}

/* x (NCHW, C channels of hw pixels, N images) into the blocked layout. The caller frees it. */
static float *to_blocked(const float *x, size_t N, size_t C, size_t hw) {
  float *b = malloc((N * C * hw + 1) * sizeof *b);
  ck_assert_ptr_nonnull(b);
  for (size_t n = 0; n < N; n++)
    for (size_t c = 0; c < C; c++)
      for (size_t i = 0; i < hw; i++)
        b[((n * (C / 8) + c / 8) * hw + i) * 8 + c % 8] = x[(n * C + c) * hw + i];
  return b;
}

/* The tile side the cases run with (ref_run_conv's kernels take none): 2 or 4. */
static int tile;

static size_t wino_packed_floats(const conv_plan *p) {
  return cpu_nchwc_wino_packed_floats(p, tile);
}
static void wino_pack(const conv_plan *p, const float *w, float *dst) {
  cpu_nchwc_wino_pack(p, tile, w, dst);
}
static int wino_run(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wp,
                    const float *b, float *y) {
  return cpu_nchwc_wino(ctx, p, tile, x, wp, b, y);
}

/* Runs the kernel (ref_run_conv) with the current tile on the NCHW input x, converted to
 * blocked here, the weights w ([M, C, 3, 3]) and b (or NULL); returns its output in NCHW,
 * which the caller frees. */
static float *run_wino(const conv_plan *p, const float *x, const float *w, const float *b,
                       size_t threads) {
  float *xb = to_blocked(x, p->N, p->C, p->in_sp);
  float *y =
      ref_run_conv("cpu_nchwc_wino", wino_packed_floats, wino_pack, wino_run, p, xb, w, b, threads);
  /* Back to NCHW for the comparisons. */
  size_t hw = p->out_sp, yc = p->N * p->M * hw;
  float *out = malloc((yc + 1) * sizeof *out);
  ck_assert_ptr_nonnull(out);
  for (size_t n = 0; n < p->N; n++)
    for (size_t m = 0; m < p->M; m++)
      for (size_t i = 0; i < hw; i++)
        out[(n * p->M + m) * hw + i] = y[((n * (p->M / 8) + m / 8) * hw + i) * 8 + m % 8];
  free(y), free(xb);
  return out;
}

static void wino_case(rng *r, int it, const ref_geom *g, bool bias, cpu_act act, size_t threads) {
  conv_plan p = ref_plan(g, bias, act);
  ck_assert_msg(cpu_nchwc_wino_applies(&p), "it %d: the kernel refuses its own case", it);
  size_t xc = p.N * p.C * p.in_sp, wc = p.M * p.C * 9;
  float *x = malloc(xc * sizeof *x), *w = malloc(wc * sizeof *w), *b = malloc(p.M * sizeof *b);
  for (size_t i = 0; i < xc; i++)
    x[i] = runi(r);
  for (size_t i = 0; i < wc; i++)
    w[i] = runi(r);
  for (size_t i = 0; i < p.M; i++)
    b[i] = runi(r);
  float *y = run_wino(&p, x, w, bias ? b : NULL, threads);

  /* The float64 sums and the magnitudes of their terms, then each output against its sum. A
   * tile's outputs all come from one patch, whose transform mixes its values: the error of any
   * output scales with the patch, so the bound is the largest magnitude over the tile's outputs
   * (whose windows cover every input of the patch; an output whose window is all padding may
   * still share a tile with real data). */
  const int64_t ih = g->in[0], iw = g->in[1], oh = p.w.out[1], ow = p.w.out[2];
  size_t yc = p.N * p.M * p.out_sp;
  double *sum = malloc(yc * sizeof *sum), *mag = malloc(yc * sizeof *mag);
  ck_assert_ptr_nonnull(sum);
  ck_assert_ptr_nonnull(mag);
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t m = 0; m < g->M; m++)
      for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
          double s = bias ? b[m] : 0.0, a = bias ? fabs(b[m]) : 0.0;
          for (int64_t c = 0; c < g->C; c++)
            for (int64_t ky = 0; ky < 3; ky++) {
              int64_t iy = oy - g->pb[0] + ky;
              if (iy < 0 || iy >= ih)
                continue;
              const float *xr = x + ((n * g->C + c) * ih + iy) * iw;
              const float *wr = w + ((m * g->C + c) * 3 + ky) * 3;
              for (int64_t kx = 0; kx < 3; kx++) {
                int64_t ix = ox - g->pb[1] + kx;
                if (ix < 0 || ix >= iw)
                  continue;
                double t = (double)xr[ix] * wr[kx];
                s += t, a += fabs(t);
              }
            }
          size_t at = (size_t)(((n * g->M + m) * oh + oy) * ow + ox);
          sum[at] = s, mag[at] = a;
        }
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t m = 0; m < g->M; m++)
      for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
          const double *pm = mag + (n * g->M + m) * oh * ow;
          double big = 0.0;
          for (int64_t ty = oy / tile * tile; ty < oy / tile * tile + tile && ty < oh; ty++)
            for (int64_t tx = ox / tile * tile; tx < ox / tile * tile + tile && tx < ow; tx++)
              big = fmax(big, pm[ty * ow + tx]);
          size_t at = (size_t)(((n * g->M + m) * oh + oy) * ow + ox);
          double ref = ref_act(&act, sum[at]);
          double got = y[at], tol = 1.5e-5 * big + 1e-6;
          ck_assert_msg(fabs(got - ref) <= tol,
                        "tile %d it %d (N=%lld C=%lld M=%lld in %lldx%lld pads "
                        "%lld,%lld,%lld,%lld bias %d act %s threads %zu) y(%lld,%lld,%lld,%lld) "
                        "= %.9g, expected %.9g",
                        tile, it, (long long)g->N, (long long)g->C, (long long)g->M, (long long)ih,
                        (long long)iw, (long long)g->pb[0], (long long)g->pb[1],
                        (long long)g->pe[0], (long long)g->pe[1], bias, ref_act_name(act.kind),
                        threads, (long long)n, (long long)m, (long long)oy, (long long)ox, got,
                        ref);
        }
  free(sum), free(mag);
  free(y);
  free(x), free(w), free(b);
}

/* Random shapes: C and M from 8 to 64, planes from 1x1 to 30x30 (a fifth of them 6x6 or less,
 * some exactly 1x1 and 2x2), pads 0..2 at each end independently, one or two images; every
 * activation with and without bias, on 1 and 3 threads; each tile (the loop's index). */
START_TEST(test_wino_random) {
  if (!ref_have_avx2("NCHW8c Winograd kernel"))
    return;
  tile = _i == 0 ? 2 : 4;
  rng r = {20250611u + (uint64_t)tile};
  for (int it = 0; it < 300; it++) {
    ref_geom g =
        geom3(rint_in(&r, 1, 2), 8 * rint_in(&r, 1, 8), 8 * rint_in(&r, 1, 8), 0, 0, 0, 0, 0, 0);
    for (int i = 0; i < 2; i++) {
      g.in[i] = it % 25 == 3   ? 1
                : it % 25 == 8 ? 2
                : it % 5 == 4  ? rint_in(&r, 1, 6)
                               : rint_in(&r, 1, 30);
      g.pb[i] = rint_in(&r, 0, 2);
      g.pe[i] = rint_in(&r, 0, 2);
      while (g.in[i] + g.pb[i] + g.pe[i] < 3) /* the window fits the padded input */
        g.pe[i]++;
    }
    /* Keep the float64 reference quick: at most some 3M multiply-adds a case. */
    while (g.N * g.M * g.C * 9 * g.in[0] * g.in[1] > 3000000 && (g.M > 8 || g.C > 8)) {
      if (g.M >= g.C)
        g.M -= 8;
      else
        g.C -= 8;
    }
    wino_case(&r, it, &g, it % 3 != 1, ref_acts[it % N_REF_ACTS], (it / 2) % 2 ? 3 : 1);
  }
}
END_TEST

/* The layers the kernel is for, on one thread: ResNet's 56x56 and 14x14 stages (the first in
 * several bands) and SqueezeNet's 16 -> 64 over 55x55 (odd sides: last tiles half or three
 * quarters outside); then smaller ones on three threads, whose bands shrink to a tile row or
 * two. Each tile (the loop's index). */
START_TEST(test_wino_layers) {
  if (!ref_have_avx2("NCHW8c Winograd kernel"))
    return;
  tile = _i == 0 ? 2 : 4;
  rng r = {7};
  static const struct {
    int64_t N, C, M, h, w;
    size_t threads;
  } cases[] = {{1, 64, 64, 56, 56, 1}, {1, 256, 256, 14, 14, 1}, {1, 16, 64, 55, 55, 1},
               {1, 512, 64, 7, 7, 3},  {2, 64, 256, 13, 13, 3},  {1, 32, 40, 40, 9, 3},
               {3, 24, 8, 17, 30, 3}};
  for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
    ref_geom g = geom3(cases[i].N, cases[i].C, cases[i].M, cases[i].h, cases[i].w, 1, 1, 1, 1);
    wino_case(&r, i, &g, i % 2 == 0, ref_acts[(i * 3 + 1) % N_REF_ACTS], cases[i].threads);
  }
}
END_TEST

/* Pads beyond the kernel (outputs whose window is all padding are the activated bias), and
 * none at all on a plane of one tile. Each tile (the loop's index). */
START_TEST(test_wino_wide_pads) {
  if (!ref_have_avx2("NCHW8c Winograd kernel"))
    return;
  tile = _i == 0 ? 2 : 4;
  rng r = {11};
  ref_geom g = geom3(1, 16, 24, 5, 7, 3, 4, 4, 3);
  wino_case(&r, 0, &g, true, ref_acts[2], 1);
  wino_case(&r, 1, &g, true, ref_acts[8], 3);
  g = geom3(2, 8, 16, 4, 4, 0, 0, 0, 0);
  wino_case(&r, 2, &g, true, ref_acts[0], 1);
  g = geom3(1, 8, 16, 6, 6, 0, 0, 0, 0); /* one 4x4 tile */
  wino_case(&r, 4, &g, true, ref_acts[3], 1);
  g = geom3(1, 8, 8, 3, 3, 0, 0, 0, 0); /* one output */
  wino_case(&r, 3, &g, false, ref_acts[1], 1);
}
END_TEST

/* U = G g G^T of F(4x4, 3x3) for one kernel k, in float64 from G's entries as fractions,
 * element (a, b) at u[(6a + b) * stride]. */
static void g43_transform(const float *k, float *u, size_t stride) {
  static const double G[6][3] = {{6, 0, 0}, {-4, -4, -4}, {-4, 4, -4},
                                 {1, 2, 4}, {1, -2, 4},   {0, 0, 24}}; /* 24 G */
  for (int a = 0; a < 6; a++)
    for (int b = 0; b < 6; b++) {
      double s = 0.0;
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
          s += G[a][i] * k[3 * i + j] * G[b][j];
      u[(size_t)(6 * a + b) * stride] = (float)(s / 576.0);
    }
}

/* The packed weights are cpu_nchwc_pw_pack's of the row-major matrices G g G^T: for 2x2 tiles
 * the 16 computed here in float as the kernel's comment says, bit for bit; for 4x4 the 36
 * computed in float64, within an ulp. M a multiple of 16 and not (the last panel half
 * zeros). */
START_TEST(test_wino_pack) {
  rng r = {3};
  tile = _i == 0 ? 2 : 4;
  const size_t nt = tile == 2 ? 16 : 36;
  static const int64_t shapes[][2] = {{8, 8}, {16, 24}, {24, 32}, {40, 8}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    ref_geom g = geom3(1, shapes[s][0], shapes[s][1], 8, 8, 1, 1, 1, 1);
    conv_plan p = ref_plan(&g, false, ref_acts[0]);
    size_t C = p.C, M = p.M, per = cpu_nchwc_pw_packed_floats(C, M);
    ck_assert_uint_eq(cpu_nchwc_wino_packed_floats(&p, tile), nt * per);
    float *w = malloc(M * C * 9 * sizeof *w), *u = malloc(nt * M * C * sizeof *u);
    for (size_t i = 0; i < M * C * 9; i++)
      w[i] = runi(&r);
    for (size_t m = 0; m < M; m++)
      for (size_t c = 0; c < C; c++) {
        const float *k = w + (m * C + c) * 9;
        if (tile == 4) {
          g43_transform(k, u + m * C + c, M * C);
          continue;
        }
        float t[4][3];
        for (int j = 0; j < 3; j++) {
          t[0][j] = k[j];
          t[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
          t[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
          t[3][j] = k[6 + j];
        }
        for (int a = 0; a < 4; a++) {
          float v[4] = {t[a][0], 0.5f * (t[a][0] + t[a][1] + t[a][2]),
                        0.5f * (t[a][0] - t[a][1] + t[a][2]), t[a][2]};
          for (int b = 0; b < 4; b++)
            u[((size_t)(4 * a + b) * M + m) * C + c] = v[b];
        }
      }
    float *got = nn_alloc_aligned(nt * per, sizeof(float));
    float *want = nn_alloc_aligned(nt * per, sizeof(float));
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(want);
    memset(got, 0x7f, nt * per * sizeof *got); /* every float must be written */
    cpu_nchwc_wino_pack(&p, tile, w, got);
    for (size_t xi = 0; xi < nt; xi++)
      cpu_nchwc_pw_pack(u + xi * M * C, C, M, want + xi * per);
    if (tile == 2)
      ck_assert_msg(memcmp(got, want, nt * per * sizeof *got) == 0,
                    "C=%zu M=%zu: the packed weights differ from cpu_nchwc_pw_pack's", C, M);
    for (size_t i = 0; i < nt * per; i++)
      ck_assert_msg(fabsf(got[i] - want[i]) <= 1.2e-7f * fabsf(want[i]),
                    "tile %d C=%zu M=%zu: packed float %zu is %.9g, expected %.9g", tile, C, M, i,
                    got[i], want[i]);
    free(got), free(want), free(w), free(u);
  }
}
END_TEST

/* NaN through the tiles: one NaN input makes NaN every output whose window covers it (through
 * none, relu and clip, as cpu_act_apply gives them), and leaves finite every output of a tile
 * whose 4x4 patch does not (the transforms mix a patch, so the other outputs of a tile that
 * reads it may be NaN too, as in conv_wino.c). */
START_TEST(test_wino_nan) {
  if (!ref_have_avx2("NCHW8c Winograd kernel"))
    return;
  tile = _i == 0 ? 2 : 4;
  rng r = {99};
  static const cpu_act clamps[] = {
      {CPU_ACT_NONE, 0, 0}, {CPU_ACT_RELU, 0, 0}, {CPU_ACT_CLIP, -2.0f, 3.5f}};
  ref_geom g = geom3(1, 16, 16, 11, 13, 1, 0, 2, 1);
  for (int a = 0; a < 3; a++) {
    conv_plan p = ref_plan(&g, true, clamps[a]);
    size_t xc = p.C * p.in_sp, wc = p.M * p.C * 9;
    float *x = malloc(xc * sizeof *x), *w = malloc(wc * sizeof *w), b[16];
    for (size_t i = 0; i < xc; i++)
      x[i] = runi(&r);
    for (size_t i = 0; i < wc; i++)
      w[i] = runi(&r);
    for (size_t i = 0; i < p.M; i++)
      b[i] = runi(&r);
    const int64_t ny = 5, nx = 6, nc = 9; /* channel 9: the second block */
    x[(nc * 11 + ny) * 13 + nx] = NAN;
    float *y = run_wino(&p, x, w, b, a == 1 ? 3 : 1);
    int64_t oh = p.w.out[1], ow = p.w.out[2];
    for (size_t m = 0; m < p.M; m++)
      for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
          float got = y[(m * (size_t)oh + (size_t)oy) * (size_t)ow + (size_t)ox];
          /* The window's rows oy - pt .. + 2, the tile's patch rows t (oy / t) - pt .. + t + 1
           * (t the tile's side). */
          int64_t wy = oy - 1, wx = ox - 0, py = tile * (oy / tile) - 1,
                  px = tile * (ox / tile) - 0;
          bool in_window = ny >= wy && ny < wy + 3 && nx >= wx && nx < wx + 3;
          bool in_patch = ny >= py && ny < py + tile + 2 && nx >= px && nx < px + tile + 2;
          if (in_window)
            ck_assert_msg(isnan(got), "act %d y(%zu,%lld,%lld) = %g, expected NaN", a, m,
                          (long long)oy, (long long)ox, got);
          else if (!in_patch)
            ck_assert_msg(isfinite(got), "act %d y(%zu,%lld,%lld) = %g, expected a number", a, m,
                          (long long)oy, (long long)ox, got);
        }
    free(y), free(x), free(w);
  }
}
END_TEST

/* What the kernel must refuse, each a small change to a plan it runs; a refused plan fails with
 * a message instead of running. */
START_TEST(test_wino_applies) {
  ref_geom g = geom3(1, 16, 32, 12, 12, 1, 1, 1, 1);
  conv_plan ok = ref_plan(&g, true, ref_acts[0]), p;
  ck_assert(cpu_nchwc_wino_applies(&ok));
  g.pb[0] = 0, g.pe[1] = 2;
  p = ref_plan(&g, true, ref_acts[0]);
  ck_assert(cpu_nchwc_wino_applies(&p)); /* asymmetric pads */
  g = geom3(1, 16, 32, 12, 12, 1, 1, 1, 1);
  ref_geom s2 = g, k5 = g, d2 = g;
  s2.s[0] = s2.s[1] = 2;
  k5.k[0] = k5.k[1] = 5;
  d2.d[0] = d2.d[1] = 2;
  const ref_geom *bad_geoms[] = {&s2, &k5, &d2};
  for (int i = 0; i < 3; i++) {
    p = ref_plan(bad_geoms[i], true, ref_acts[0]);
    ck_assert_msg(!cpu_nchwc_wino_applies(&p), "geometry %d taken", i);
  }
  p = ok, p.w.s[2] = 2;
  ck_assert(!cpu_nchwc_wino_applies(&p));
  p = ok, p.w.k[1] = 1;
  ck_assert(!cpu_nchwc_wino_applies(&p));
  p = ok, p.w.d[1] = 2;
  ck_assert(!cpu_nchwc_wino_applies(&p));
  p = ok, p.G = 2, p.cg = 8, p.mg = 16;
  ck_assert(!cpu_nchwc_wino_applies(&p));
  p = ok, p.C = p.cg = 12;
  ck_assert(!cpu_nchwc_wino_applies(&p));
  p = ok, p.M = p.mg = 36;
  ck_assert(!cpu_nchwc_wino_applies(&p));
  p = ok, p.C = p.cg = 0;
  ck_assert(!cpu_nchwc_wino_applies(&p));
  p = ok, p.transpose = true;
  ck_assert(!cpu_nchwc_wino_applies(&p));
  p = ok, p.w.nsp = 3, p.w.in[0] = p.w.out[0] = 4;
  ck_assert(!cpu_nchwc_wino_applies(&p));
  p = ok, p.w.nsp = 1;
  ck_assert(!cpu_nchwc_wino_applies(&p));

  /* Refused plans fail cleanly on an AVX2 context too. */
  tile = 4;
  p = ref_plan(&s2, true, ref_acts[0]);
  ref_expect_fail(wino_run, &p, CPU_ISA_AVX2_FMA, "does not apply");
  p = ok, p.C = p.cg = 12;
  ref_expect_fail(wino_run, &p, CPU_ISA_AVX2_FMA, "does not apply");
  /* Only 2x2 and 4x4 tiles. */
  tile = 3;
  ref_expect_fail(wino_run, &ok, CPU_ISA_AVX2_FMA, "no 3x3 tiles");
}
END_TEST

/* The tile each plan gets: 4x4 over planes of 24x24 outputs and more, 2x2 below (ResNet's 14x14
 * and 7x7 stages), and what TESSERA_CPU_WINOGRAD_TILE forces. */
START_TEST(test_wino_tile_choice) {
  static const struct {
    int64_t h, w;
    int want;
  } cases[] = {{56, 56, 4}, {28, 28, 4}, {24, 24, 4}, {14, 14, 2},
               {7, 7, 2},   {23, 40, 2}, {40, 23, 2}, {1, 1, 2}};
  unsetenv("TESSERA_CPU_WINOGRAD_TILE");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ref_geom g = geom3(1, 64, 64, cases[i].h, cases[i].w, 1, 1, 1, 1);
    conv_plan p = ref_plan(&g, false, ref_acts[0]);
    ck_assert_msg(cpu_nchwc_wino_tile(&p) == cases[i].want, "%lldx%lld: tile %d, expected %d",
                  (long long)cases[i].h, (long long)cases[i].w, cpu_nchwc_wino_tile(&p),
                  cases[i].want);
  }
  ref_geom g = geom3(1, 64, 64, 56, 56, 1, 1, 1, 1);
  conv_plan p = ref_plan(&g, false, ref_acts[0]);
  setenv("TESSERA_CPU_WINOGRAD_TILE", "2", 1);
  ck_assert_int_eq(cpu_nchwc_wino_tile(&p), 2);
  setenv("TESSERA_CPU_WINOGRAD_TILE", "8", 1); /* not a tile: the plan's own choice */
  ck_assert_int_eq(cpu_nchwc_wino_tile(&p), 4);
  g = geom3(1, 64, 64, 7, 7, 1, 1, 1, 1);
  p = ref_plan(&g, false, ref_acts[0]);
  setenv("TESSERA_CPU_WINOGRAD_TILE", "4", 1);
  ck_assert_int_eq(cpu_nchwc_wino_tile(&p), 4);
  unsetenv("TESSERA_CPU_WINOGRAD_TILE");
}
END_TEST

/* Which 3x3 layers Winograd is wanted for (cpu_conv_wino_wanted, for this kernel and
 * conv_wino.c's): C M / (C + M) at least 12, over planes at least 7 wide and 4 high. */
START_TEST(test_wino_wanted) {
  static const struct {
    int64_t C, M, h, w;
    bool want;
  } cases[] = {{64, 64, 56, 56, true},  {96, 24, 56, 56, true},  {24, 24, 56, 56, true},
               {16, 48, 56, 56, true},  {64, 16, 28, 28, true},  {16, 64, 55, 55, true},
               {32, 16, 56, 56, false}, {16, 32, 28, 28, false}, {16, 16, 56, 56, false},
               {8, 512, 28, 28, false}, {64, 64, 3, 28, false},  {64, 64, 28, 6, false}};
  unsetenv("TESSERA_CPU_WINOGRAD");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ref_geom g = geom3(1, cases[i].C, cases[i].M, cases[i].h, cases[i].w, 1, 1, 1, 1);
    conv_plan p = ref_plan(&g, false, ref_acts[0]);
    ck_assert_msg(cpu_conv_wino_wanted(&p) == cases[i].want, "%lld -> %lld over %lldx%lld: %s",
                  (long long)cases[i].C, (long long)cases[i].M, (long long)cases[i].h,
                  (long long)cases[i].w, cases[i].want ? "not wanted" : "wanted");
  }
  ref_geom g = geom3(1, 16, 16, 56, 56, 1, 1, 1, 1);
  conv_plan p = ref_plan(&g, false, ref_acts[0]);
  setenv("TESSERA_CPU_WINOGRAD", "1", 1);
  ck_assert(cpu_conv_wino_wanted(&p));
  setenv("TESSERA_CPU_WINOGRAD", "0", 1);
  g = geom3(1, 64, 64, 56, 56, 1, 1, 1, 1);
  p = ref_plan(&g, false, ref_acts[0]);
  ck_assert(!cpu_conv_wino_wanted(&p));
  unsetenv("TESSERA_CPU_WINOGRAD");
}
END_TEST

/* A run on another ISA fails with a message instead of executing AVX2 code. */
START_TEST(test_wino_needs_avx2) {
  ref_geom g = geom3(1, 8, 8, 4, 4, 1, 1, 1, 1);
  conv_plan p = ref_plan(&g, false, ref_acts[0]);
  tile = 2;
  ref_expect_fail(wino_run, &p, CPU_ISA_GENERIC, "AVX2");
}
END_TEST

#else

START_TEST(test_wino_absent) {
  printf("note: built without AVX2 kernels; the NCHW8c Winograd kernel is not exercised\n");
}
END_TEST

#endif

static Suite *kernels_nchwc_wino_suite(void) {
  Suite *s = suite_create("kernels_nchwc_wino");
  TCase *c = tcase_create("wino");
  tcase_set_timeout(c, 600);
#ifdef CPU_NCHWC_HAVE_AVX2
  /* Each of these twice: 2x2 tiles, then 4x4. */
  tcase_add_loop_test(c, test_wino_random, 0, 2);
  tcase_add_loop_test(c, test_wino_layers, 0, 2);
  tcase_add_loop_test(c, test_wino_wide_pads, 0, 2);
  tcase_add_loop_test(c, test_wino_pack, 0, 2);
  tcase_add_loop_test(c, test_wino_nan, 0, 2);
  tcase_add_test(c, test_wino_applies);
  tcase_add_test(c, test_wino_tile_choice);
  tcase_add_test(c, test_wino_wanted);
  tcase_add_test(c, test_wino_needs_avx2);
#else
  tcase_add_test(c, test_wino_absent);
#endif
  suite_add_tcase(s, c);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_nchwc_wino_suite()) != 0; }
