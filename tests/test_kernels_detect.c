/* Unit suite of the detection, sampling and signal kernels (devices/cpu/detect.c: GridSample,
 * RoiAlign, NonMaxSuppression, Unique; devices/cpu/signal.c: DFT, STFT, the window functions,
 * MelWeightMatrix). Kernels run through cpu_direct and are compared with naive references
 * written here, independently of the kernels (direct sums, per-sample interpolation, quadratic
 * searches): random shapes and values from a fixed seed, a few fixed cases from the ONNX backend
 * tests, and error cases that must fail with a message, never crash. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "tests/cpu_direct.h"
#include "tests/harness.h"

static const double kPi = 3.14159265358979323846;

/* ---- Random numbers, tensors, comparisons --------------------------------------------- */

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

/* Uniform in [-1, 1). */
static double runi(rng *r) { return (double)(rnext(r) >> 11) / 4503599627370496.0 - 1.0; }

static size_t prod(const int64_t *d, int n) {
  size_t p = 1;
  for (int i = 0; i < n; i++)
    p *= (size_t)d[i];
  return p;
}

/* Adds an input of dtype dt holding the values v (converted). */
static void add_input(cpu_direct *d, uint32_t dt, int rank, const int64_t *dims, const double *v) {
  size_t n = prod(dims, rank), es = cpu_dtype_size(dt);
  void *raw = calloc(n ? n : 1, es);
  cpu_tensor t = {.dtype = dt, .data = raw, .count = n};
  for (size_t i = 0; i < n; i++)
    cpu_write_f64(&t, i, v[i]);
  cpu_direct_input(d, dt, (uint32_t)rank, dims, raw, false);
  free(raw);
}

static void add_scalar_i64(cpu_direct *d, int64_t v) {
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &v, false);
}

/* Values rounded through dtype dt (so that a reference sees what the kernel reads). */
static double *rand_vals(rng *r, uint32_t dt, size_t n, double scale) {
  double *v = malloc((n ? n : 1) * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    double x = runi(r) * scale;
    v[i] = dt == TSR_DTYPE_FLOAT32   ? (double)(float)x
           : dt == TSR_DTYPE_FLOAT16 ? (double)cpu_half_to_float(cpu_float_to_half((float)x))
                                     : x;
  }
  return v;
}

static void expect_close(const char *what, const cpu_tensor *out, const double *ref, size_t n,
                         double atol, double rtol) {
  ck_assert_msg(out->count == n, "%s: %zu outputs, expected %zu", what, out->count, n);
  for (size_t i = 0; i < n; i++) {
    double got = cpu_read_f64(out, i);
    if (!(fabs(got - ref[i]) <= atol + rtol * fabs(ref[i])))
      ck_abort_msg("%s: element %zu is %.9g, expected %.9g", what, i, got, ref[i]);
  }
}

static void expect_i64(const char *what, const cpu_tensor *out, const int64_t *ref, size_t n) {
  ck_assert_msg(out->count == n, "%s: %zu outputs, expected %zu", what, out->count, n);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(((const int64_t *)out->data)[i] == ref[i],
                  "%s: element %zu is %lld, expected %lld", what, i,
                  (long long)((const int64_t *)out->data)[i], (long long)ref[i]);
}

#define RUN_OK(d, threads)                                                                         \
  do {                                                                                             \
    char err_[512];                                                                                \
    int rc_ = cpu_direct_run((d), (threads), err_, sizeof err_);                                   \
    ck_assert_msg(rc_ == 0, "run failed (%d): %s", rc_, err_);                                     \
  } while (0)

/* Runs d and expects a refusal (check) or a failure (run) whose message mentions needle. */
static void expect_fail(cpu_direct *d, int want_rc, const char *needle) {
  char err[512];
  int rc = cpu_direct_run(d, 2, err, sizeof err);
  ck_assert_msg(rc != 0, "expected a failure mentioning '%s'", needle);
  if (want_rc)
    ck_assert_msg(rc == want_rc, "rc %d, expected %d (%s)", rc, want_rc, err);
  ck_assert_msg(strlen(err) > 0, "failure without a message");
  ck_assert_msg(strstr(err, needle) != NULL, "message '%s' does not mention '%s'", err, needle);
  cpu_direct_free(d);
}

/* Calls an op's run() directly, without check(), as a host with wrong shapes would; the kernel
 * must validate and fail with a message. Attributes take their defaults. */
static void expect_run_fail(const char *op_type, int64_t opset, uint32_t n_in, const cpu_tensor *in,
                            uint32_t n_out, cpu_tensor *out, const char *needle) {
  const cpu_op *op = cpu_find_op("", op_type, opset);
  ck_assert_ptr_nonnull(op);
  cpu_node node = {.name = "direct",
                   .op_type = op_type,
                   .opset = opset,
                   .n_in = n_in,
                   .n_out = n_out,
                   .in = in,
                   .out = out};
  char err[512] = "";
  cpu_ctx ctx = {.pool = NULL, .isa = cpu_detect_isa(), .err = err, .err_size = sizeof err};
  int rc = op->run(&ctx, &node, NULL, in, out);
  ck_assert_msg(rc == -1, "%s: run() accepted a bad node", op_type);
  ck_assert_msg(strstr(err, needle) != NULL, "%s: message '%s' does not mention '%s'", op_type, err,
                needle);
}

static cpu_tensor tensor(uint32_t dt, uint32_t rank, const int64_t *dims, void *data) {
  cpu_tensor t = {.dtype = dt, .rank = rank, .dims = dims, .data = data, .present = true};
  t.count = prod(dims, (int)rank);
  t.nbytes = t.count * cpu_dtype_size(dt);
  return t;
}

/* ---- GridSample ----------------------------------------------------------------------- */

/* Mirrors x into [lo, hi] one reflection at a time. */
static double ref_mirror(double x, double lo, double hi) {
  if (hi <= lo)
    return lo;
  while (x < lo || x > hi)
    x = x < lo ? 2 * lo - x : 2 * hi - x;
  return x;
}

/* The padding modes of torch.nn.functional.grid_sample on one coordinate. */
static double ref_pad(double x, int64_t size, int pad, int align) {
  if (pad == 1)
    return x < 0 ? 0 : x > size - 1 ? (double)(size - 1) : x;
  if (pad == 2) {
    x = align ? ref_mirror(x, 0, (double)(size - 1)) : ref_mirror(x, -0.5, (double)size - 0.5);
    return x < 0 ? 0 : x > size - 1 ? (double)(size - 1) : x;
  }
  return x;
}

static double ref_at(const double *plane, int64_t h, int64_t w, double y, double x) {
  if (y < 0 || y >= (double)h || x < 0 || x >= (double)w)
    return 0.0;
  return plane[(int64_t)y * w + (int64_t)x];
}

static double ref_cubic(double t) { /* Keys' kernel with a = -0.75 */
  double a = -0.75;
  t = fabs(t);
  if (t <= 1)
    return (a + 2) * t * t * t - (a + 3) * t * t + 1;
  if (t < 2)
    return a * t * t * t - 5 * a * t * t + 8 * a * t - 4 * a;
  return 0;
}

/* mode: 0 bilinear, 1 nearest, 2 bicubic; pad: 0 zeros, 1 border, 2 reflection. */
static double ref_grid_sample(const double *plane, int64_t h, int64_t w, double gx, double gy,
                              int mode, int pad, int align) {
  double x = align ? (gx + 1) * (double)(w - 1) / 2 : ((gx + 1) * (double)w - 1) / 2;
  double y = align ? (gy + 1) * (double)(h - 1) / 2 : ((gy + 1) * (double)h - 1) / 2;
  if (mode == 2) {
    double fx = floor(x), fy = floor(y), acc = 0;
    for (int i = -1; i <= 2; i++)
      for (int j = -1; j <= 2; j++) {
        double ty = ref_pad(fy + i, h, pad, align), tx = ref_pad(fx + j, w, pad, align);
        acc += ref_cubic(y - (fy + i)) * ref_cubic(x - (fx + j)) * ref_at(plane, h, w, ty, tx);
      }
    return acc;
  }
  x = ref_pad(x, w, pad, align);
  y = ref_pad(y, h, pad, align);
  if (mode == 1)
    return ref_at(plane, h, w, rint(y), rint(x));
  double x0 = floor(x), y0 = floor(y), ax = x - x0, ay = y - y0;
  return (1 - ay) *
             ((1 - ax) * ref_at(plane, h, w, y0, x0) + ax * ref_at(plane, h, w, y0, x0 + 1)) +
         ay * ((1 - ax) * ref_at(plane, h, w, y0 + 1, x0) +
               ax * ref_at(plane, h, w, y0 + 1, x0 + 1));
}

static const char *const gs_modes[] = {"bilinear", "nearest", "bicubic"};
static const char *const gs_pads[] = {"zeros", "border", "reflection"};

START_TEST(test_gridsample_random) {
  rng r = {0x9e3779b97f4a7c15ull};
  for (int it = 0; it < 108; it++) {
    int mode = it % 3, pad = (it / 3) % 3, align = (it / 9) % 2;
    uint32_t dt = it % 5 == 4 ? TSR_DTYPE_FLOAT64 : TSR_DTYPE_FLOAT32;
    int64_t n = rint_in(&r, 1, 2), c = rint_in(&r, 1, 3), h = rint_in(&r, 1, 6),
            w = rint_in(&r, 1, 6), ho = rint_in(&r, 1, 5), wo = rint_in(&r, 1, 5);
    int64_t xd[4] = {n, c, h, w}, gd[4] = {n, ho, wo, 2}, yd[4] = {n, c, ho, wo};
    double *x = rand_vals(&r, dt, prod(xd, 4), 2.0);
    /* Mostly inside [-1, 1], some beyond, a few far away (reflected several times). */
    double scale = it % 4 == 0 ? 1.0 : it % 4 == 1 ? 1.4 : it % 4 == 2 ? 3.0 : 9.0;
    double *g = rand_vals(&r, dt, prod(gd, 4), scale);
    cpu_direct *d = cpu_direct_new("GridSample", 16);
    cpu_direct_attr_string(d, "mode", gs_modes[mode]);
    cpu_direct_attr_string(d, "padding_mode", gs_pads[pad]);
    cpu_direct_attr_int(d, "align_corners", align);
    add_input(d, dt, 4, xd, x);
    add_input(d, dt, 4, gd, g);
    cpu_direct_output(d, dt, 4, yd);
    RUN_OK(d, (size_t)(it % 3 + 1));
    size_t ny = prod(yd, 4);
    double *ref = malloc(ny * sizeof *ref);
    for (int64_t b = 0; b < n; b++)
      for (int64_t k = 0; k < c; k++)
        for (int64_t i = 0; i < ho; i++)
          for (int64_t j = 0; j < wo; j++) {
            const double *gp = g + ((b * ho + i) * wo + j) * 2;
            ref[((b * c + k) * ho + i) * wo + j] =
                ref_grid_sample(x + (b * c + k) * h * w, h, w, gp[0], gp[1], mode, pad, align);
          }
    char what[96];
    snprintf(what, sizeof what, "GridSample %s/%s/align %d", gs_modes[mode], gs_pads[pad], align);
    expect_close(what, cpu_direct_out(d, 0), ref, ny, dt == TSR_DTYPE_FLOAT64 ? 1e-12 : 2e-5,
                 dt == TSR_DTYPE_FLOAT64 ? 1e-12 : 1e-5);
    free(ref);
    free(x);
    free(g);
    cpu_direct_free(d);
  }
}
END_TEST

/* The ONNX backend tests' cases (values from PyTorch): X [1,1,3,2]. */
START_TEST(test_gridsample_fixed) {
  static const double x[6] = {0, 1, 2, 3, 4, 5};
  static const double grid_pad[16] = {-10, -10, -5,   -5,   -0.2, -0.2, 10, 10,
                                      10,  10,  -0.2, -0.2, 5,    5,    10, 10};
  static const double grid_mode[16] = {-1, -1, -0.5, -0.5, -0.2, -0.2, 0, 0,
                                       0,  0,  -0.2, -0.2, 0.5,  0.5,  1, 1};
  static const struct {
    const double *grid;
    const char *mode, *pad;
    int align;
    double want[8];
  } cases[] = {
      {grid_pad, "bilinear", "zeros", 0, {0, 0, 1.7, 0, 0, 1.7, 0, 0}},
      {grid_pad, "bilinear", "border", 0, {0, 0, 1.7, 5, 5, 1.7, 5, 5}},
      {grid_pad, "bilinear", "reflection", 0, {2.5, 0, 1.7, 2.5, 2.5, 1.7, 5, 2.5}},
      {grid_mode, "bilinear", "zeros", 0, {0, 0.5, 1.7, 2.5, 2.5, 1.7, 4.5, 1.25}},
      {grid_mode, "bilinear", "zeros", 1, {0, 1.25, 2, 2.5, 2.5, 2, 3.75, 5}},
      {grid_mode, "nearest", "zeros", 0, {0, 0, 2, 2, 2, 2, 5, 0}},
      {grid_mode,
       "bicubic",
       "zeros",
       0,
       {-0.1406, 0.3828, 1.7556, 2.9688, 2.9688, 1.7556, 5.1445, 1.3906}},
  };
  int64_t xd[4] = {1, 1, 3, 2}, gd[4] = {1, 2, 4, 2}, yd[4] = {1, 1, 2, 4};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    cpu_direct *d = cpu_direct_new("GridSample", 16);
    cpu_direct_attr_string(d, "mode", cases[i].mode);
    cpu_direct_attr_string(d, "padding_mode", cases[i].pad);
    cpu_direct_attr_int(d, "align_corners", cases[i].align);
    add_input(d, TSR_DTYPE_FLOAT32, 4, xd, x);
    add_input(d, TSR_DTYPE_FLOAT32, 4, gd, cases[i].grid);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
    RUN_OK(d, 1);
    expect_close(cases[i].mode, cpu_direct_out(d, 0), cases[i].want, 8, 1e-4, 1e-4);
    cpu_direct_free(d);
  }
}
END_TEST

/* A GridSample node with X [1,1,3,2] and the given grid and output shapes. */
static cpu_direct *gs_node(const int64_t *gd, const int64_t *yd, uint32_t xdt) {
  static const double vals[64] = {0};
  int64_t xd[4] = {1, 1, 3, 2};
  cpu_direct *d = cpu_direct_new("GridSample", 16);
  add_input(d, xdt, 4, xd, vals);
  add_input(d, TSR_DTYPE_FLOAT32, gd[0] == -1 ? 3 : 4, gd[0] == -1 ? gd + 1 : gd, vals);
  cpu_direct_output(d, xdt, 4, yd);
  return d;
}

START_TEST(test_gridsample_errors) {
  expect_fail(gs_node((int64_t[]){2, 2, 2, 2}, (int64_t[]){1, 1, 2, 2}, TSR_DTYPE_FLOAT32),
              TSR_PLUGIN_REASON_SHAPE, "must be [N,C,H,W], [N,Ho,Wo,2] and [N,C,Ho,Wo]");
  expect_fail(gs_node((int64_t[]){1, 2, 2, 3}, (int64_t[]){1, 1, 2, 2}, TSR_DTYPE_FLOAT32),
              TSR_PLUGIN_REASON_SHAPE, "grid [1,2,2,3]");
  expect_fail(gs_node((int64_t[]){-1, 1, 2, 2}, (int64_t[]){1, 1, 2, 2}, TSR_DTYPE_FLOAT32),
              TSR_PLUGIN_REASON_SHAPE, "grid [1,2,2]");
  expect_fail(gs_node((int64_t[]){1, 2, 2, 2}, (int64_t[]){1, 1, 2, 3}, TSR_DTYPE_FLOAT32),
              TSR_PLUGIN_REASON_SHAPE, "Y [1,1,2,3]");
  expect_fail(gs_node((int64_t[]){1, 2, 2, 2}, (int64_t[]){1, 1, 2, 2}, TSR_DTYPE_INT32),
              TSR_PLUGIN_REASON_DTYPE, "float dtypes expected");
  cpu_direct *d = gs_node((int64_t[]){1, 2, 2, 2}, (int64_t[]){1, 1, 2, 2}, TSR_DTYPE_FLOAT32);
  cpu_direct_attr_string(d, "mode", "linear");
  expect_fail(d, TSR_PLUGIN_REASON_ATTRIBUTE, "mode 'linear'");
  d = gs_node((int64_t[]){1, 2, 2, 2}, (int64_t[]){1, 1, 2, 2}, TSR_DTYPE_FLOAT32);
  cpu_direct_attr_string(d, "padding_mode", "constant");
  expect_fail(d, TSR_PLUGIN_REASON_ATTRIBUTE, "padding_mode 'constant'");
  /* run() on its own checks the output it is given. */
  float xv[6] = {0}, gv[8] = {0}, yv[4] = {0};
  int64_t xd[4] = {1, 1, 3, 2}, gd[4] = {1, 2, 2, 2}, yd[4] = {1, 1, 2, 1};
  cpu_tensor in[2] = {tensor(TSR_DTYPE_FLOAT32, 4, xd, xv), tensor(TSR_DTYPE_FLOAT32, 4, gd, gv)};
  cpu_tensor out[1] = {tensor(TSR_DTYPE_FLOAT32, 4, yd, yv)};
  expect_run_fail("GridSample", 16, 2, in, 1, out, "Y [1,1,2,1]");
  expect_run_fail("GridSample", 16, 1, in, 1, out, "expects inputs X and grid");
  /* Non-finite grid values sample nothing instead of indexing with them. */
  float gnan[8] = {NAN, 0, INFINITY, 0, -INFINITY, NAN, 1e30f, -1e30f};
  int64_t yd2[4] = {1, 1, 2, 2};
  for (int mode = 0; mode < 3; mode++)
    for (int pad = 0; pad < 3; pad++) {
      d = cpu_direct_new("GridSample", 16);
      cpu_direct_attr_string(d, "mode", gs_modes[mode]);
      cpu_direct_attr_string(d, "padding_mode", gs_pads[pad]);
      cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, xv, false);
      cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, gd, gnan, false);
      cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd2);
      RUN_OK(d, 1);
      cpu_direct_free(d);
    }
}
END_TEST

/* ---- RoiAlign ------------------------------------------------------------------------- */

/* The four weighted corners of a bilinear sample at (y, x), zero outside [-1, h] x [-1, w]. */
static void ref_roi_corners(const double *plane, int64_t h, int64_t w, double y, double x,
                            double v[4]) {
  v[0] = v[1] = v[2] = v[3] = 0;
  if (y < -1.0 || y > (double)h || x < -1.0 || x > (double)w)
    return;
  y = y < 0 ? 0 : y;
  x = x < 0 ? 0 : x;
  int64_t yl = (int64_t)y, xl = (int64_t)x, yh = yl + 1, xh = xl + 1;
  if (yl >= h - 1)
    yl = yh = h - 1, y = (double)yl;
  if (xl >= w - 1)
    xl = xh = w - 1, x = (double)xl;
  double ly = y - (double)yl, lx = x - (double)xl;
  v[0] = (1 - ly) * (1 - lx) * plane[yl * w + xl];
  v[1] = (1 - ly) * lx * plane[yl * w + xh];
  v[2] = ly * (1 - lx) * plane[yh * w + xl];
  v[3] = ly * lx * plane[yh * w + xh];
}

START_TEST(test_roialign_random) {
  rng r = {0x1234567887654321ull};
  for (int it = 0; it < 60; it++) {
    bool max_mode = it % 2, half = (it / 2) % 2;
    int64_t ratio = rint_in(&r, 0, 3), ph = rint_in(&r, 1, 4), pw = rint_in(&r, 1, 4);
    double scale = it % 3 == 0 ? 1.0 : it % 3 == 1 ? 0.5 : 0.25;
    int64_t n = rint_in(&r, 1, 2), c = rint_in(&r, 1, 3), h = rint_in(&r, 1, 9),
            w = rint_in(&r, 1, 9), nr = rint_in(&r, 0, 5);
    int64_t xd[4] = {n, c, h, w}, rd[2] = {nr, 4}, bd[1] = {nr}, yd[4] = {nr, c, ph, pw};
    double *x = rand_vals(&r, TSR_DTYPE_FLOAT32, prod(xd, 4), 1.0);
    double rois[20], bi[5];
    for (int64_t k = 0; k < nr; k++) {
      double x1 = (runi(&r) + 1) * (double)w / scale / 2 - 1,
             y1 = (runi(&r) + 1) * (double)h / scale / 2 - 1;
      rois[4 * k] = (float)x1;
      rois[4 * k + 1] = (float)y1;
      rois[4 * k + 2] = (float)(x1 + (runi(&r) + 1.1) * (double)w / scale);
      rois[4 * k + 3] = (float)(y1 + (runi(&r) + 1.1) * (double)h / scale);
      bi[k] = (double)rint_in(&r, 0, n - 1);
    }
    cpu_direct *d = cpu_direct_new("RoiAlign", 16);
    cpu_direct_attr_string(d, "mode", max_mode ? "max" : "avg");
    cpu_direct_attr_string(d, "coordinate_transformation_mode",
                           half ? "half_pixel" : "output_half_pixel");
    cpu_direct_attr_int(d, "output_height", ph);
    cpu_direct_attr_int(d, "output_width", pw);
    cpu_direct_attr_int(d, "sampling_ratio", ratio);
    cpu_direct_attr_float(d, "spatial_scale", (float)scale);
    add_input(d, TSR_DTYPE_FLOAT32, 4, xd, x);
    add_input(d, TSR_DTYPE_FLOAT32, 2, rd, rois);
    add_input(d, TSR_DTYPE_INT64, 1, bd, bi);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
    RUN_OK(d, (size_t)(it % 3 + 1));
    size_t ny = prod(yd, 4);
    double *ref = calloc(ny ? ny : 1, sizeof *ref);
    for (int64_t k = 0; k < nr; k++) {
      double off = half ? 0.5 : 0.0;
      double sx = rois[4 * k] * scale - off, sy = rois[4 * k + 1] * scale - off;
      double rw = rois[4 * k + 2] * scale - off - sx, rh = rois[4 * k + 3] * scale - off - sy;
      if (!half) {
        rw = rw < 1 ? 1 : rw;
        rh = rh < 1 ? 1 : rh;
      }
      double bh = rh / (double)ph, bw = rw / (double)pw;
      int64_t gh = ratio ? ratio : (int64_t)ceil(bh), gw = ratio ? ratio : (int64_t)ceil(bw);
      for (int64_t ch = 0; ch < c; ch++) {
        const double *plane = x + ((int64_t)bi[k] * c + ch) * h * w;
        for (int64_t i = 0; i < ph; i++)
          for (int64_t j = 0; j < pw; j++) {
            double acc = 0, best = 0;
            int samples = 0;
            for (int64_t a = 0; a < gh; a++)
              for (int64_t b = 0; b < gw; b++) {
                double v[4];
                ref_roi_corners(plane, h, w, sy + (double)i * bh + (a + 0.5) * bh / (double)gh,
                                sx + (double)j * bw + (b + 0.5) * bw / (double)gw, v);
                double m = fmax(fmax(v[0], v[1]), fmax(v[2], v[3]));
                best = samples++ ? fmax(best, m) : m;
                acc += v[0] + v[1] + v[2] + v[3];
              }
            ref[((k * c + ch) * ph + i) * pw + j] =
                max_mode ? best : acc / (double)(gh * gw > 1 ? gh * gw : 1);
          }
      }
    }
    expect_close(max_mode ? "RoiAlign max" : "RoiAlign avg", cpu_direct_out(d, 0), ref, ny, 2e-5,
                 1e-5);
    free(ref);
    free(x);
    cpu_direct_free(d);
  }
}
END_TEST

static cpu_direct *roi_node(int64_t nrois, int64_t batch_index, const int64_t *yd) {
  static const double zeros[64] = {0};
  double rois[8] = {0, 0, 1, 1, 0, 0, 2, 2}, bi[2] = {(double)batch_index, 0};
  int64_t xd[4] = {1, 1, 4, 4}, rd[2] = {nrois, 4}, bd[1] = {nrois};
  cpu_direct *d = cpu_direct_new("RoiAlign", 16);
  add_input(d, TSR_DTYPE_FLOAT32, 4, xd, zeros);
  add_input(d, TSR_DTYPE_FLOAT32, 2, rd, rois);
  add_input(d, TSR_DTYPE_INT64, 1, bd, bi);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  return d;
}

START_TEST(test_roialign_errors) {
  expect_fail(roi_node(2, 1, (int64_t[]){2, 1, 1, 1}), -1,
              "batch_indices[0] = 1 is out of range for X with 1 images");
  expect_fail(roi_node(2, -3, (int64_t[]){2, 1, 1, 1}), -1, "batch_indices[0] = -3");
  expect_fail(roi_node(2, 0, (int64_t[]){2, 1, 2, 1}), TSR_PLUGIN_REASON_SHAPE,
              "Y [2,1,2,1] must be [2,1,1,1]");
  cpu_direct *d = roi_node(2, 0, (int64_t[]){2, 1, 1, 1});
  cpu_direct_attr_string(d, "mode", "sum");
  expect_fail(d, TSR_PLUGIN_REASON_ATTRIBUTE, "mode 'sum'");
  d = roi_node(2, 0, (int64_t[]){2, 1, 1, 1});
  cpu_direct_attr_int(d, "sampling_ratio", -1);
  expect_fail(d, TSR_PLUGIN_REASON_ATTRIBUTE, "sampling_ratio -1");
  /* An absurd ROI with an adaptive grid is refused instead of sampled for ever. */
  double xv[16] = {0}, huge[4] = {0, 0, 1e12, 1e12}, bi[1] = {0};
  int64_t xd[4] = {1, 1, 4, 4}, rd[2] = {1, 4}, bd[1] = {1}, yd[4] = {1, 1, 1, 1};
  d = cpu_direct_new("RoiAlign", 16);
  add_input(d, TSR_DTYPE_FLOAT32, 4, xd, xv);
  add_input(d, TSR_DTYPE_FLOAT32, 2, rd, huge);
  add_input(d, TSR_DTYPE_INT64, 1, bd, bi);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, -1, "samples per bin");
  /* NaN ROIs give zeros. */
  double nan_roi[4] = {NAN, 0, 2, NAN};
  d = cpu_direct_new("RoiAlign", 16);
  add_input(d, TSR_DTYPE_FLOAT32, 4, xd, xv);
  add_input(d, TSR_DTYPE_FLOAT32, 2, rd, nan_roi);
  add_input(d, TSR_DTYPE_INT64, 1, bd, bi);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  RUN_OK(d, 1);
  cpu_direct_free(d);
  /* run() alone: rois of the wrong width. */
  float xf[16] = {0}, rf[3] = {0}, yf[1] = {0};
  int64_t bv[1] = {0}, rd3[2] = {1, 3};
  cpu_tensor in[3] = {tensor(TSR_DTYPE_FLOAT32, 4, xd, xf), tensor(TSR_DTYPE_FLOAT32, 2, rd3, rf),
                      tensor(TSR_DTYPE_INT64, 1, bd, bv)};
  cpu_tensor out[1] = {tensor(TSR_DTYPE_FLOAT32, 4, yd, yf)};
  expect_run_fail("RoiAlign", 16, 3, in, 1, out, "rois [1,3]");
}
END_TEST

/* ---- NonMaxSuppression ---------------------------------------------------------------- */

static float ref_iou(const float *a, const float *b, bool center) {
  float ax0, ax1, ay0, ay1, bx0, bx1, by0, by1;
  if (center) {
    ax0 = a[0] - a[2] / 2, ax1 = a[0] + a[2] / 2, ay0 = a[1] - a[3] / 2, ay1 = a[1] + a[3] / 2;
    bx0 = b[0] - b[2] / 2, bx1 = b[0] + b[2] / 2, by0 = b[1] - b[3] / 2, by1 = b[1] + b[3] / 2;
  } else {
    ay0 = fminf(a[0], a[2]), ay1 = fmaxf(a[0], a[2]), ax0 = fminf(a[1], a[3]),
    ax1 = fmaxf(a[1], a[3]);
    by0 = fminf(b[0], b[2]), by1 = fmaxf(b[0], b[2]), bx0 = fminf(b[1], b[3]),
    bx1 = fmaxf(b[1], b[3]);
  }
  float iw = fminf(ax1, bx1) - fmaxf(ax0, bx0), ih = fminf(ay1, by1) - fmaxf(ay0, by0);
  if (iw <= 0 || ih <= 0)
    return 0;
  float inter = iw * ih, ua = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter;
  return ua > 0 ? inter / ua : 0;
}

/* Greedy selection: the best remaining box, then drop those overlapping it. Returns the count;
 * rows of (batch, class, box) go to sel. */
static size_t ref_nms(const float *boxes, const float *scores, int64_t nb, int64_t ncls,
                      int64_t nbox, int64_t max_out, float iou, const float *thr, bool center,
                      int64_t *sel) {
  size_t total = 0;
  bool *alive = malloc((size_t)(nbox ? nbox : 1));
  for (int64_t b = 0; b < nb; b++)
    for (int64_t k = 0; k < ncls; k++) {
      const float *s = scores + (b * ncls + k) * nbox;
      for (int64_t i = 0; i < nbox; i++)
        alive[i] = !isnan(s[i]) && (!thr || s[i] > *thr);
      for (int64_t kept = 0; kept < max_out; kept++) {
        int64_t best = -1;
        for (int64_t i = 0; i < nbox; i++)
          if (alive[i] && (best < 0 || s[i] > s[best]))
            best = i;
        if (best < 0)
          break;
        alive[best] = false;
        sel[3 * total] = b, sel[3 * total + 1] = k, sel[3 * total + 2] = best;
        total++;
        for (int64_t i = 0; i < nbox; i++)
          if (alive[i] &&
              ref_iou(boxes + (b * nbox + i) * 4, boxes + (b * nbox + best) * 4, center) > iou)
            alive[i] = false;
      }
    }
  free(alive);
  return total;
}

START_TEST(test_nms_random) {
  rng r = {0xfeedfacecafebeefull};
  for (int it = 0; it < 80; it++) {
    int64_t nb = rint_in(&r, 1, 2), ncls = rint_in(&r, 1, 3), nbox = rint_in(&r, 0, 24);
    bool center = it % 2, with_thr = it % 3 != 0, with_iou = it % 5 != 0;
    int64_t max_out = it % 7 == 0 ? 0 : rint_in(&r, 1, 30);
    int64_t bd[3] = {nb, nbox, 4}, sd[3] = {nb, ncls, nbox};
    size_t nbx = prod(bd, 3), nsc = prod(sd, 3);
    float *boxes = malloc((nbx ? nbx : 1) * sizeof *boxes),
          *scores = malloc((nsc ? nsc : 1) * sizeof *scores);
    for (size_t i = 0; i < nbx; i++)
      boxes[i] = (float)(center && i % 4 >= 2 ? (runi(&r) + 1.2) * 3 : runi(&r) * 6);
    for (size_t i = 0; i < nsc; i++)
      scores[i] = it % 4 == 0 ? (float)rint_in(&r, 0, 4) / 4 : (float)(runi(&r) + 1) / 2;
    if (nsc > 3 && it % 6 == 1)
      scores[2] = NAN;
    float iou = with_iou ? (float)(runi(&r) + 1) / 2 : 0.0f, thr = (float)(runi(&r) + 1) / 3;
    int64_t *sel = malloc((nsc ? nsc : 1) * 3 * sizeof *sel);
    size_t total =
        ref_nms(boxes, scores, nb, ncls, nbox, max_out, iou, with_thr ? &thr : NULL, center, sel);
    cpu_direct *d = cpu_direct_new("NonMaxSuppression", 11);
    cpu_direct_attr_int(d, "center_point_box", center);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, bd, boxes, false);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, sd, scores, false);
    int64_t one[1] = {1};
    cpu_direct_input(d, TSR_DTYPE_INT64, 1, one, &max_out, false);
    if (with_iou)
      cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &iou, false);
    else
      cpu_direct_input_absent(d);
    if (with_thr)
      cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, one, &thr, false);
    int64_t od[2] = {(int64_t)total, 3};
    cpu_direct_output(d, TSR_DTYPE_INT64, 2, od);
    RUN_OK(d, 1);
    expect_i64("NonMaxSuppression", cpu_direct_out(d, 0), sel, total * 3);
    cpu_direct_free(d);
    free(boxes);
    free(scores);
    free(sel);
  }
}
END_TEST

START_TEST(test_nms_errors) {
  float boxes[8] = {0, 0, 1, 1, 0, 0, 1, 1}, scores[2] = {0.9f, 0.8f};
  int64_t bd[3] = {1, 2, 4}, sd[3] = {1, 1, 2}, maxout = 5, od[2] = {2, 3};
  /* Identical boxes: one is kept, but the output has room for two. */
  cpu_direct *d = cpu_direct_new("NonMaxSuppression", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, bd, boxes, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, sd, scores, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &maxout, false);
  cpu_direct_output(d, TSR_DTYPE_INT64, 2, od);
  expect_fail(d, -1, "1 boxes are selected, but the output has room for 2");
  int64_t bad_sd[3] = {1, 1, 3}, od1[2] = {1, 3};
  float scores3[3] = {0.9f, 0.8f, 0.7f};
  d = cpu_direct_new("NonMaxSuppression", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, bd, boxes, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, bad_sd, scores3, false);
  cpu_direct_output(d, TSR_DTYPE_INT64, 2, od1);
  expect_fail(d, TSR_PLUGIN_REASON_SHAPE, "must be [batch, boxes, 4] and [batch, classes, boxes]");
  d = cpu_direct_new("NonMaxSuppression", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, bd, boxes, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, sd, scores, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, scores, false);
  cpu_direct_output(d, TSR_DTYPE_INT64, 2, od1);
  expect_fail(d, TSR_PLUGIN_REASON_SHAPE, "max_output_boxes_per_class must be one int64");
  /* run() alone: an output that is not [n, 3]. */
  int64_t ov[4] = {0}, od4[2] = {1, 4};
  cpu_tensor in[2] = {tensor(TSR_DTYPE_FLOAT32, 3, bd, boxes),
                      tensor(TSR_DTYPE_FLOAT32, 3, sd, scores)};
  cpu_tensor out[1] = {tensor(TSR_DTYPE_INT64, 2, od4, ov)};
  expect_run_fail("NonMaxSuppression", 11, 2, in, 1, out, "[selected, 3]");
}
END_TEST

/* ---- Unique --------------------------------------------------------------------------- */

/* Slices along the axis compared as numpy.unique does (lexicographically, in element order). */
static int ref_cmp_slices(const double *x, int64_t outer, int64_t n, int64_t inner, int64_t a,
                          int64_t b) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < inner; k++) {
      double va = x[(o * n + a) * inner + k], vb = x[(o * n + b) * inner + k];
      if (va != vb)
        return va < vb ? -1 : 1;
    }
  return 0;
}

START_TEST(test_unique_random) {
  rng r = {0xabcdef0123456789ull};
  for (int it = 0; it < 120; it++) {
    int rank = (int)rint_in(&r, 1, 3);
    int64_t dims[3];
    for (int i = 0; i < rank; i++)
      dims[i] = rint_in(&r, 0, 4) + (it % 9 != 0);
    bool has_axis = it % 2, sorted = (it / 2) % 2;
    int64_t axis = has_axis ? rint_in(&r, -rank, rank - 1) : 0, a = axis < 0 ? axis + rank : axis;
    uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_INT64, TSR_DTYPE_INT32, TSR_DTYPE_UINT8,
                      TSR_DTYPE_FLOAT64};
    uint32_t dt = dts[it % 5];
    size_t count = prod(dims, rank);
    double *x = malloc((count ? count : 1) * sizeof *x);
    for (size_t i = 0; i < count; i++)
      x[i] = (double)rint_in(&r, 0, 2) * (dt == TSR_DTYPE_FLOAT32 ? 0.5 : 1);
    int64_t outer = 1, n = (int64_t)count, inner = 1;
    if (has_axis) {
      n = dims[a];
      for (int64_t i = 0; i < a; i++)
        outer *= dims[i];
      for (int64_t i = a + 1; i < rank; i++)
        inner *= dims[i];
    }
    /* Groups in order of first occurrence, then (sorted) in slice order by insertion. */
    int64_t *first = malloc((size_t)(n ? n : 1) * sizeof *first);
    int64_t *cnt = malloc((size_t)(n ? n : 1) * sizeof *cnt);
    int64_t *inv = malloc((size_t)(n ? n : 1) * sizeof *inv);
    int64_t u = 0;
    for (int64_t i = 0; i < n; i++) {
      int64_t g = 0;
      while (g < u && ref_cmp_slices(x, outer, n, inner, first[g], i) != 0)
        g++;
      if (g == u)
        first[u] = i, cnt[u] = 0, u++;
      cnt[g]++;
      inv[i] = g;
    }
    if (sorted) {
      int64_t *pos = malloc((size_t)(u ? u : 1) * sizeof *pos); /* pos[g]: g's rank when sorted */
      for (int64_t g = 0; g < u; g++) {
        pos[g] = 0;
        for (int64_t h = 0; h < u; h++)
          pos[g] += ref_cmp_slices(x, outer, n, inner, first[h], first[g]) < 0;
      }
      int64_t *f2 = malloc((size_t)(u ? u : 1) * sizeof *f2),
              *c2 = malloc((size_t)(u ? u : 1) * sizeof *c2);
      for (int64_t g = 0; g < u; g++)
        f2[pos[g]] = first[g], c2[pos[g]] = cnt[g];
      for (int64_t i = 0; i < n; i++)
        inv[i] = pos[inv[i]];
      memcpy(first, f2, (size_t)u * sizeof *f2);
      memcpy(cnt, c2, (size_t)u * sizeof *c2);
      free(f2);
      free(c2);
      free(pos);
    }
    int64_t yd[3];
    memcpy(yd, dims, sizeof yd);
    if (has_axis)
      yd[a] = u;
    size_t ycount = has_axis ? prod(yd, rank) : (size_t)u;
    double *y = malloc((ycount ? ycount : 1) * sizeof *y);
    for (int64_t o = 0; o < outer; o++)
      for (int64_t g = 0; g < u; g++)
        for (int64_t k = 0; k < inner; k++)
          y[(o * u + g) * inner + k] = x[(o * n + first[g]) * inner + k];
    cpu_direct *d = cpu_direct_new("Unique", 11);
    if (has_axis)
      cpu_direct_attr_int(d, "axis", axis);
    cpu_direct_attr_int(d, "sorted", sorted);
    add_input(d, dt, rank, dims, x);
    if (has_axis)
      cpu_direct_output(d, dt, (uint32_t)rank, yd);
    else
      cpu_direct_output(d, dt, 1, &u);
    cpu_direct_output(d, TSR_DTYPE_INT64, 1, &u);
    cpu_direct_output(d, TSR_DTYPE_INT64, 1, &n);
    cpu_direct_output(d, TSR_DTYPE_INT64, 1, &u);
    RUN_OK(d, 1);
    expect_close("Unique Y", cpu_direct_out(d, 0), y, ycount, 0, 0);
    expect_i64("Unique indices", cpu_direct_out(d, 1), first, (size_t)u);
    expect_i64("Unique inverse_indices", cpu_direct_out(d, 2), inv, (size_t)n);
    expect_i64("Unique counts", cpu_direct_out(d, 3), cnt, (size_t)u);
    cpu_direct_free(d);
    free(x);
    free(y);
    free(first);
    free(cnt);
    free(inv);
  }
}
END_TEST

START_TEST(test_unique_special_values) {
  /* NaN equals NaN and sorts last; -0 equals +0; int64 beyond double precision stays exact. */
  float xf[6] = {NAN, 1.0f, -0.0f, NAN, 0.0f, -2.0f};
  int64_t d6 = 6, d3 = 3, d4 = 4;
  cpu_direct *d = cpu_direct_new("Unique", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, &d6, xf, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &d4);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, &d4);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, &d6);
  RUN_OK(d, 1);
  const float *y = cpu_direct_out(d, 0)->data;
  ck_assert(y[0] == -2.0f && y[1] == 0.0f && y[2] == 1.0f && isnan(y[3]));
  expect_i64("indices", cpu_direct_out(d, 1), (int64_t[]){5, 2, 1, 0}, 4);
  expect_i64("inverse", cpu_direct_out(d, 2), (int64_t[]){3, 2, 1, 3, 1, 0}, 6);
  cpu_direct_free(d);
  int64_t big[3] = {INT64_MAX, INT64_MAX - 1, INT64_MAX}, d2 = 2;
  d = cpu_direct_new("Unique", 11);
  cpu_direct_input(d, TSR_DTYPE_INT64, 1, &d3, big, false);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, &d2);
  RUN_OK(d, 1);
  expect_i64("big", cpu_direct_out(d, 0), (int64_t[]){INT64_MAX - 1, INT64_MAX}, 2);
  cpu_direct_free(d);
}
END_TEST

START_TEST(test_unique_errors) {
  float x[4] = {1, 2, 2, 3};
  int64_t d4 = 4, d2 = 2, d3 = 3, dx[2] = {2, 2}, dy[2] = {2, 1};
  cpu_direct *d = cpu_direct_new("Unique", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, &d4, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &d2);
  expect_fail(d, -1, "output Y is [2], but 3 slices are unique");
  d = cpu_direct_new("Unique", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, &d4, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &d3);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, &d3);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, &d3);
  expect_fail(d, -1, "output 2 is [3], but 4 values");
  d = cpu_direct_new("Unique", 11);
  cpu_direct_attr_int(d, "axis", 1);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, dx, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, dy);
  expect_fail(d, -1, "output Y is [2,1], but 2 slices are unique");
  d = cpu_direct_new("Unique", 11);
  cpu_direct_attr_int(d, "axis", 2);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, dx, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, dx);
  expect_fail(d, TSR_PLUGIN_REASON_ATTRIBUTE, "axis 2 is out of range for rank 2");
  d = cpu_direct_new("Unique", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, &d4, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &d3);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &d3);
  expect_fail(d, TSR_PLUGIN_REASON_DTYPE, "output 1 must be a 1-D int64 tensor");
}
END_TEST

/* ---- DFT and STFT --------------------------------------------------------------------- */

/* Direct sum; the angle is reduced exactly (j * k mod n) before the cosine. */
static void ref_dft(const double *re, const double *im, int64_t n_in, int64_t n, bool inverse,
                    double *out_re, double *out_im) {
  for (int64_t k = 0; k < n; k++) {
    double sr = 0, si = 0;
    for (int64_t j = 0; j < n && j < n_in; j++) {
      double a = (inverse ? 2.0 : -2.0) * kPi * (double)((j * k) % n) / (double)n;
      sr += re[j] * cos(a) - im[j] * sin(a);
      si += re[j] * sin(a) + im[j] * cos(a);
    }
    out_re[k] = inverse ? sr / (double)n : sr;
    out_im[k] = inverse ? si / (double)n : si;
  }
}

START_TEST(test_dft_random) {
  rng r = {0x5555aaaa3333ccccull};
  static const int64_t lens[] = {1, 2, 3, 5, 8, 12, 16, 31, 64, 129, 200, 256};
  for (int it = 0; it < 72; it++) {
    int64_t n_sig = lens[it % 12], other = rint_in(&r, 1, 3), comps = rint_in(&r, 1, 2);
    int64_t axis = rint_in(&r, 1, 2);
    bool inverse = (it / 12) % 2, onesided = comps == 1 && (it / 24) % 2;
    int64_t dl = it % 5 == 0 ? rint_in(&r, 1, 2 * n_sig + 1) : 0, n = dl ? dl : n_sig;
    uint32_t dt = it % 3 == 2 ? TSR_DTYPE_FLOAT32 : TSR_DTYPE_FLOAT64;
    int64_t xd[4] = {2, axis == 1 ? n_sig : other, axis == 1 ? other : n_sig, comps};
    int64_t bins = onesided ? n / 2 + 1 : n;
    int64_t yd[4] = {2, axis == 1 ? bins : other, axis == 1 ? other : bins, 2};
    double *x = rand_vals(&r, dt, prod(xd, 4), 1.0);
    cpu_direct *d = cpu_direct_new("DFT", 17);
    cpu_direct_attr_int(d, "axis", it % 4 == 3 ? axis - 4 : axis); /* negative axes too */
    cpu_direct_attr_int(d, "inverse", inverse);
    cpu_direct_attr_int(d, "onesided", onesided);
    add_input(d, dt, 4, xd, x);
    if (dl)
      add_scalar_i64(d, dl);
    cpu_direct_output(d, dt, 4, yd);
    RUN_OK(d, (size_t)(it % 3 + 1));
    size_t ny = prod(yd, 4);
    double *ref = malloc(ny * sizeof *ref), *re = malloc((size_t)(n + n_sig) * sizeof *re),
           *im = malloc((size_t)(n + n_sig) * sizeof *im), * or = malloc((size_t)n * sizeof * or),
           *oi = malloc((size_t)n * sizeof *oi);
    for (int64_t b = 0; b < 2; b++)
      for (int64_t o = 0; o < other; o++) {
        for (int64_t j = 0; j < n_sig; j++) {
          int64_t at = axis == 1 ? ((b * n_sig + j) * other + o) * comps
                                 : ((b * other + o) * n_sig + j) * comps;
          re[j] = x[at];
          im[j] = comps == 2 ? x[at + 1] : 0;
        }
        ref_dft(re, im, n_sig, n, inverse, or, oi);
        for (int64_t k = 0; k < bins; k++) {
          int64_t at =
              axis == 1 ? ((b * bins + k) * other + o) * 2 : ((b * other + o) * bins + k) * 2;
          ref[at] = or [k];
          ref[at + 1] = oi[k];
        }
      }
    double scale = inverse ? 1.0 : sqrt((double)n) + 1;
    expect_close("DFT", cpu_direct_out(d, 0), ref, ny,
                 (dt == TSR_DTYPE_FLOAT64 ? 1e-11 : 2e-6) * scale,
                 dt == TSR_DTYPE_FLOAT64 ? 1e-11 : 1e-5);
    free(ref), free(re), free(im), free(or), free(oi), free(x);
    cpu_direct_free(d);
  }
}
END_TEST

START_TEST(test_stft_random) {
  rng r = {0x0f0f0f0ff0f0f0f0ull};
  for (int it = 0; it < 30; it++) {
    int64_t len = rint_in(&r, 4, 160), comps = it % 4 == 3 ? 2 : 1, fl = rint_in(&r, 1, len),
            step = rint_in(&r, 1, 12);
    bool onesided = comps == 1 && it % 2, window = it % 3 != 0, flen = !window || it % 2;
    int64_t xd[3] = {2, len, comps}, wd[1] = {fl};
    int64_t frames = (len - fl) / step + 1, bins = onesided ? fl / 2 + 1 : fl;
    int64_t yd[4] = {2, frames, bins, 2};
    double *x = rand_vals(&r, TSR_DTYPE_FLOAT32, prod(xd, 3), 1.0);
    double *w = rand_vals(&r, TSR_DTYPE_FLOAT32, (size_t)fl, 1.0);
    cpu_direct *d = cpu_direct_new("STFT", 17);
    cpu_direct_attr_int(d, "onesided", onesided);
    add_input(d, TSR_DTYPE_FLOAT32, 3, xd, x);
    add_scalar_i64(d, step);
    if (window)
      add_input(d, TSR_DTYPE_FLOAT32, 1, wd, w);
    else
      cpu_direct_input_absent(d);
    if (flen) {
      int32_t v = (int32_t)fl;
      cpu_direct_input(d, TSR_DTYPE_INT32, 0, NULL, &v, false);
    }
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
    RUN_OK(d, (size_t)(it % 2 + 1));
    size_t ny = prod(yd, 4);
    double *ref = malloc(ny * sizeof *ref), *re = malloc((size_t)fl * sizeof *re),
           *im = malloc((size_t)fl * sizeof *im), * or = malloc((size_t)fl * sizeof * or),
           *oi = malloc((size_t)fl * sizeof *oi);
    for (int64_t b = 0; b < 2; b++)
      for (int64_t f = 0; f < frames; f++) {
        for (int64_t j = 0; j < fl; j++) {
          int64_t at = (b * len + f * step + j) * comps;
          double wj = window ? w[j] : 1.0;
          re[j] = x[at] * wj;
          im[j] = comps == 2 ? x[at + 1] * wj : 0;
        }
        ref_dft(re, im, fl, fl, false, or, oi);
        for (int64_t k = 0; k < bins; k++) {
          ref[((b * frames + f) * bins + k) * 2] = or [k];
          ref[((b * frames + f) * bins + k) * 2 + 1] = oi[k];
        }
      }
    expect_close("STFT", cpu_direct_out(d, 0), ref, ny, 2e-6 * (double)fl, 1e-5);
    free(ref), free(re), free(im), free(or), free(oi), free(x), free(w);
    cpu_direct_free(d);
  }
}
END_TEST

START_TEST(test_dft_stft_errors) {
  double x[20] = {0};
  int64_t xd[3] = {1, 10, 1}, yd[3] = {1, 10, 2}, bad[3] = {1, 6, 2}, xc[3] = {1, 10, 2};
  cpu_direct *d = cpu_direct_new("DFT", 17);
  add_input(d, TSR_DTYPE_FLOAT32, 3, xd, x);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 3, bad);
  expect_fail(d, -1, "the output is [1,6,2], but the inputs make it [1,10,2]");
  d = cpu_direct_new("DFT", 17);
  add_input(d, TSR_DTYPE_FLOAT32, 3, xd, x);
  add_scalar_i64(d, 0);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 3, yd);
  expect_fail(d, -1, "the DFT length is 0");
  d = cpu_direct_new("DFT", 17);
  cpu_direct_attr_int(d, "onesided", 1);
  add_input(d, TSR_DTYPE_FLOAT32, 3, xc, x);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 3, bad);
  expect_fail(d, TSR_PLUGIN_REASON_ATTRIBUTE, "onesided output needs a real input");
  d = cpu_direct_new("DFT", 17);
  cpu_direct_attr_int(d, "axis", 2);
  add_input(d, TSR_DTYPE_FLOAT32, 3, xd, x);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 3, yd);
  expect_fail(d, TSR_PLUGIN_REASON_ATTRIBUTE, "axis 2 must name a signal dim");
  int64_t x2[2] = {10, 1};
  d = cpu_direct_new("DFT", 17);
  add_input(d, TSR_DTYPE_FLOAT32, 2, x2, x);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, x2);
  expect_fail(d, TSR_PLUGIN_REASON_SHAPE, "[batch, signal dims..., 1 or 2]");
  d = cpu_direct_new("DFT", 17);
  add_input(d, TSR_DTYPE_INT32, 3, xd, x);
  cpu_direct_output(d, TSR_DTYPE_INT32, 3, yd);
  expect_fail(d, TSR_PLUGIN_REASON_DTYPE, "float dtype");

  int64_t sd[3] = {1, 10, 1}, od[4] = {1, 3, 3, 2};
  d = cpu_direct_new("STFT", 17);
  add_input(d, TSR_DTYPE_FLOAT32, 3, sd, x);
  add_scalar_i64(d, 0);
  cpu_direct_input_absent(d);
  add_scalar_i64(d, 4);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  expect_fail(d, -1, "frame_step is 0");
  d = cpu_direct_new("STFT", 17);
  add_input(d, TSR_DTYPE_FLOAT32, 3, sd, x);
  add_scalar_i64(d, 3);
  cpu_direct_input_absent(d);
  add_scalar_i64(d, 11);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  expect_fail(d, -1, "the frame length 11 must be 1..10");
  d = cpu_direct_new("STFT", 17);
  add_input(d, TSR_DTYPE_FLOAT32, 3, sd, x);
  add_scalar_i64(d, 3);
  cpu_direct_input_absent(d);
  add_scalar_i64(d, 4);
  int64_t od_short[4] = {1, 2, 3, 2};
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od_short);
  expect_fail(d, -1, "the output is [1,2,3,2], but the inputs make it [1,3,3,2]");
  int64_t wd[1] = {5};
  d = cpu_direct_new("STFT", 17);
  add_input(d, TSR_DTYPE_FLOAT32, 3, sd, x);
  add_scalar_i64(d, 3);
  add_input(d, TSR_DTYPE_FLOAT32, 1, wd, x);
  add_scalar_i64(d, 4);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  expect_fail(d, -1, "the window has 5 values, but frame_length is 4");
  d = cpu_direct_new("STFT", 17);
  add_input(d, TSR_DTYPE_FLOAT32, 3, sd, x);
  add_scalar_i64(d, 3);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  expect_fail(d, TSR_PLUGIN_REASON_SHAPE, "needs a window or a frame_length");
}
END_TEST

/* ---- Windows and MelWeightMatrix ------------------------------------------------------ */

START_TEST(test_windows) {
  static const char *const ops[] = {"HannWindow", "HammingWindow", "BlackmanWindow"};
  static const int64_t sizes[] = {0, 1, 2, 5, 10, 17};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16};
  for (int op = 0; op < 3; op++)
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
      for (int periodic = 0; periodic < 2; periodic++) {
        int64_t size = sizes[s];
        uint32_t dt = dts[(op + s) % 3];
        cpu_direct *d = cpu_direct_new(ops[op], 17);
        cpu_direct_attr_int(d, "periodic", periodic);
        cpu_direct_attr_int(d, "output_datatype", dt);
        int32_t v = (int32_t)size;
        cpu_direct_input(d, TSR_DTYPE_INT32, 0, NULL, &v, false);
        cpu_direct_output(d, dt, 1, &size);
        RUN_OK(d, 1);
        double ref[17];
        double period = periodic ? (double)size : (double)size - 1;
        for (int64_t k = 0; k < size; k++) {
          double t = period > 0 ? kPi * (double)k / period : 0; /* half the usual angle */
          if (period <= 0)
            ref[k] = 1.0;
          else if (op == 0)
            ref[k] = sin(t) * sin(t);
          else if (op == 1)
            ref[k] = 25.0 / 46 - 21.0 / 46 * cos(2 * t);
          else
            ref[k] = 0.42 - 0.5 * cos(2 * t) + 0.08 * cos(4 * t);
        }
        expect_close(ops[op], cpu_direct_out(d, 0), ref, (size_t)size,
                     dt == TSR_DTYPE_FLOAT16 ? 1e-3 : 1e-6, dt == TSR_DTYPE_FLOAT16 ? 1e-3 : 1e-6);
        cpu_direct_free(d);
      }
  /* Integer outputs truncate, as a cast would. */
  int64_t four = 4;
  cpu_direct *d = cpu_direct_new("HannWindow", 17);
  cpu_direct_attr_int(d, "output_datatype", TSR_DTYPE_INT32);
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &four, false);
  cpu_direct_output(d, TSR_DTYPE_INT32, 1, &four);
  RUN_OK(d, 1);
  expect_close("HannWindow int32", cpu_direct_out(d, 0), (double[]){0, 0, 1, 0}, 4, 0, 0);
  cpu_direct_free(d);
  /* Errors: a negative size, an output of the wrong length, a bool output. */
  int64_t neg = -2, three = 3;
  d = cpu_direct_new("HannWindow", 17);
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &neg, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &four);
  expect_fail(d, -1, "size is -2");
  d = cpu_direct_new("BlackmanWindow", 17);
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &three, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &four);
  expect_fail(d, -1, "the output is [4], but the inputs make it [3]");
  d = cpu_direct_new("HammingWindow", 17);
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &three, false);
  cpu_direct_output(d, TSR_DTYPE_BOOL, 1, &three);
  expect_fail(d, TSR_PLUGIN_REASON_DTYPE, "1-D numeric");
  d = cpu_direct_new("HammingWindow", 17);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &three, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &three);
  expect_fail(d, TSR_PLUGIN_REASON_SHAPE, "size must be one int32 or int64 value");
}
END_TEST

static cpu_direct *mel_node(int64_t bins, int64_t len, int64_t rate, double lo, double hi,
                            uint32_t out_dt) {
  cpu_direct *d = cpu_direct_new("MelWeightMatrix", 17);
  cpu_direct_attr_int(d, "output_datatype", out_dt);
  add_scalar_i64(d, bins);
  int32_t l = (int32_t)len;
  cpu_direct_input(d, TSR_DTYPE_INT32, 0, NULL, &l, false);
  add_scalar_i64(d, rate);
  float flo = (float)lo;
  double dhi = hi;
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &flo, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT64, 0, NULL, &dhi, false);
  int64_t od[2] = {len / 2 + 1, bins};
  cpu_direct_output(d, out_dt, 2, od);
  return d;
}

/* The ONNX reference (onnx/backend/test/case/node/melweightmatrix.py), written out. */
static void ref_mel(int64_t bins, int64_t len, int64_t rate, double lo, double hi, double *out) {
  int64_t rows = len / 2 + 1;
  memset(out, 0, (size_t)(rows * bins) * sizeof *out);
  float lo_mel = 2595.0f * log10f(1.0f + (float)lo / 700.0f);
  float hi_mel = 2595.0f * log10f(1.0f + (float)hi / 700.0f);
  float step = (hi_mel - lo_mel) / (float)(bins + 2);
  int64_t pts[64];
  for (int64_t i = 0; i < bins + 2; i++)
    pts[i] = (int64_t)floor((double)(len + 1) *
                            (700.0 * (pow(10.0, ((double)i * step + lo_mel) / 2595.0) - 1.0)) /
                            (double)rate);
  for (int64_t m = 0; m < bins; m++) {
    int64_t l = pts[m], c = pts[m + 1], r = pts[m + 2];
    if (c == l && c < rows)
      out[c * bins + m] = 1;
    for (int64_t j = l; c > l && j <= c; j++)
      if (j < rows)
        out[j * bins + m] = (double)(j - l) / (double)(c - l);
    for (int64_t j = c; j < r; j++)
      if (j < rows)
        out[j * bins + m] = (double)(r - j) / (double)(r - c);
  }
}

START_TEST(test_mel_weight_matrix) {
  /* The backend test's case, whose matrix its comment lists. */
  cpu_direct *d = mel_node(8, 16, 8192, 0, 4096, TSR_DTYPE_FLOAT32);
  RUN_OK(d, 1);
  double want[72] = {0};
  static const int ones[][2] = {{0, 0}, {0, 1}, {1, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 6}, {5, 7}};
  for (size_t i = 0; i < 8; i++)
    want[ones[i][0] * 8 + ones[i][1]] = 1;
  expect_close("MelWeightMatrix", cpu_direct_out(d, 0), want, 72, 0, 0);
  cpu_direct_free(d);
  static const struct {
    int64_t bins, len, rate;
    double lo, hi;
  } cases[] = {{10, 64, 16000, 20, 8000}, {4, 15, 8000, 0, 4000}, {16, 512, 22050, 50, 11025},
               {3, 7, 100, 10, 40},       {0, 8, 8000, 0, 4000},  {5, 32, 8000, 1000, 1000}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    uint32_t dt = i % 2 ? TSR_DTYPE_FLOAT64 : TSR_DTYPE_FLOAT32;
    d = mel_node(cases[i].bins, cases[i].len, cases[i].rate, cases[i].lo, cases[i].hi, dt);
    RUN_OK(d, 1);
    size_t n = (size_t)((cases[i].len / 2 + 1) * cases[i].bins);
    double *ref = malloc((n ? n : 1) * sizeof *ref);
    ref_mel(cases[i].bins, cases[i].len, cases[i].rate, cases[i].lo, cases[i].hi, ref);
    expect_close("MelWeightMatrix", cpu_direct_out(d, 0), ref, n, 1e-7, 1e-6);
    free(ref);
    cpu_direct_free(d);
  }
  expect_fail(mel_node(4, 16, 0, 0, 100, TSR_DTYPE_FLOAT32), -1, "sample_rate 0");
  expect_fail(mel_node(4, 16, 8000, 200, 100, TSR_DTYPE_FLOAT32), -1, "0 <= lower <= upper");
  expect_fail(mel_node(4, 16, 8000, 0, INFINITY, TSR_DTYPE_FLOAT32), -1, "0 <= lower <= upper");
  /* An output of the wrong shape fails in run(). */
  d = cpu_direct_new("MelWeightMatrix", 17);
  int64_t v[3] = {4, 16, 8000};
  float e[2] = {0, 100};
  int64_t od[2] = {8, 4};
  for (int i = 0; i < 3; i++)
    cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &v[i], false);
  for (int i = 0; i < 2; i++)
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &e[i], false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, od);
  expect_fail(d, -1, "the output is [8,4], but the inputs make it [9,4]");
  d = cpu_direct_new("MelWeightMatrix", 17);
  for (int i = 0; i < 3; i++)
    cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &v[i], false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &e[0], false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, od);
  expect_fail(d, TSR_PLUGIN_REASON_SHAPE, "expects 5 inputs");
}
END_TEST

static Suite *kernels_detect_suite(void) {
  Suite *s = suite_create("kernels_detect");
  TCase *tc = tcase_create("detect");
  tcase_add_test(tc, test_gridsample_random);
  tcase_add_test(tc, test_gridsample_fixed);
  tcase_add_test(tc, test_gridsample_errors);
  tcase_add_test(tc, test_roialign_random);
  tcase_add_test(tc, test_roialign_errors);
  tcase_add_test(tc, test_nms_random);
  tcase_add_test(tc, test_nms_errors);
  tcase_add_test(tc, test_unique_random);
  tcase_add_test(tc, test_unique_special_values);
  tcase_add_test(tc, test_unique_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("signal");
  tcase_add_test(tc, test_dft_random);
  tcase_add_test(tc, test_stft_random);
  tcase_add_test(tc, test_dft_stft_errors);
  tcase_add_test(tc, test_windows);
  tcase_add_test(tc, test_mel_weight_matrix);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_detect_suite()) != 0; }
