/* Unit suite of the quantization kernels (devices/cpu/quant.c): QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear, QLinearConv, ConvInteger, QLinearMatMul and
 * MatMulInteger. Kernels run through cpu_direct and are compared bit-exactly with references
 * written here independently of the kernels: direct loops with int64 sums, libm rounding
 * (nearbyint) instead of the kernels' magic-number rounding, and numpy-style broadcasting by
 * multi-index. Random shapes and values come from a fixed seed; random cases alternate the
 * AVX2 and generic code paths (TESSERA_CPU_GENERIC), the thread count, and constant versus
 * runtime weights (prepacked in prepare() or packed per run). A few fixed cases come from the
 * ONNX backend tests, and error cases must be refused or fail with a message. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "tests/cpu_direct.h"
#include "tests/harness.h"

/* ---- Random numbers and small helpers ---------------------------------------------------- */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rnext(rng *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return r->s;
}

/* Uniform integer in [lo, hi]. */
static int64_t rint_in(rng *r, int64_t lo, int64_t hi) {
  return lo + (int64_t)(rnext(r) % (uint64_t)(hi - lo + 1));
}

/* Uniform in [0, 1). */
static double runi(rng *r) { return (double)(rnext(r) >> 11) / 9007199254740992.0; }

static size_t prod(const int64_t *d, int n) {
  size_t p = 1;
  for (int i = 0; i < n; i++)
    p *= (size_t)d[i];
  return p;
}

static void qlimits(uint32_t dt, int32_t *lo, int32_t *hi) {
  *lo = dt == TSR_DTYPE_INT8 ? -128 : 0;
  *hi = dt == TSR_DTYPE_INT8 ? 127 : 255;
}

/* Random integers of an 8-bit dtype (or small int32 values). */
static int32_t *rand_q(rng *r, uint32_t dt, size_t n) {
  int32_t *v = malloc((n ? n : 1) * sizeof *v);
  int32_t lo, hi;
  qlimits(dt, &lo, &hi);
  if (dt == TSR_DTYPE_INT32)
    lo = -100000, hi = 100000;
  for (size_t i = 0; i < n; i++)
    v[i] = (int32_t)rint_in(r, lo, hi);
  return v;
}

static int32_t rand_q1(rng *r, uint32_t dt) {
  int32_t *v = rand_q(r, dt, 1), x = v[0];
  free(v);
  return x;
}

/* The values as raw elements of dtype (malloc'ed). */
static void *raw_of(uint32_t dt, const int32_t *v, size_t n) {
  size_t es = cpu_dtype_size(dt);
  void *raw = calloc(n ? n : 1, es);
  for (size_t i = 0; i < n; i++) {
    if (dt == TSR_DTYPE_UINT8)
      ((uint8_t *)raw)[i] = (uint8_t)v[i];
    else if (dt == TSR_DTYPE_INT8)
      ((int8_t *)raw)[i] = (int8_t)v[i];
    else
      ((int32_t *)raw)[i] = v[i];
  }
  return raw;
}

static void add_q(cpu_direct *d, uint32_t dt, int rank, const int64_t *dims, const int32_t *v,
                  bool is_const) {
  void *raw = raw_of(dt, v, prod(dims, rank));
  cpu_direct_input(d, dt, (uint32_t)rank, dims, raw, is_const);
  free(raw);
}

static int32_t out_q(const cpu_tensor *t, size_t i) {
  switch (t->dtype) {
  case TSR_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
  case TSR_DTYPE_INT8: return ((const int8_t *)t->data)[i];
  default: return ((const int32_t *)t->data)[i];
  }
}

/* Alternates the AVX2 and generic paths; Check forks each test, so the setting stays local. */
static void set_generic(bool generic) {
  if (generic)
    setenv("TESSERA_CPU_GENERIC", "1", 1);
  else
    unsetenv("TESSERA_CPU_GENERIC");
}

#define RUN_OK(d, threads)                                                                         \
  do {                                                                                             \
    char err_[512];                                                                                \
    int rc_ = cpu_direct_run((d), (threads), err_, sizeof err_);                                   \
    ck_assert_msg(rc_ == 0, "run failed (%d): %s", rc_, err_);                                     \
  } while (0)

/* Compares integer outputs exactly. */
static void expect_ints(const cpu_tensor *t, const int32_t *ref, size_t n, const char *what) {
  ck_assert_uint_eq(t->count, n);
  for (size_t i = 0; i < n; i++)
    if (out_q(t, i) != ref[i])
      ck_abort_msg("%s: element %zu is %d, expected %d", what, i, out_q(t, i), ref[i]);
}

/* ---- References -------------------------------------------------------------------------- */

static int32_t clampi(double v, int32_t lo, int32_t hi) {
  if (isnan(v))
    return lo; /* the kernels' documented choice: NaN saturates low */
  return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

/* saturate(round(x / s) + zp): float32 division, ties to even. */
static int32_t ref_quant_f32(float x, float s, int32_t zp, uint32_t dt) {
  int32_t lo, hi;
  qlimits(dt, &lo, &hi);
  float v = x / s;
  if (isnan(v))
    return lo;
  return clampi(nearbyint((double)v) + zp, lo, hi);
}

static int32_t ref_quant_i32(int32_t x, float s, int32_t zp, uint32_t dt) {
  int32_t lo, hi;
  qlimits(dt, &lo, &hi);
  return clampi(nearbyint((double)x / (double)s) + zp, lo, hi);
}

/* saturate(round(float(acc) * mult) + zp) with mult = (s1 * s2) / s3 in float32. */
static int32_t ref_requant(int64_t acc, float s1, float s2, float s3, int32_t zp, uint32_t dt) {
  int32_t lo, hi;
  qlimits(dt, &lo, &hi);
  float m = s1 * s2;
  m = m / s3;
  float f = (float)acc * m;
  if (isnan(f))
    return lo;
  return clampi(nearbyintf(f) + (double)zp, lo, hi);
}

/* ---- QuantizeLinear / DequantizeLinear --------------------------------------------------- */

typedef struct qaxis_case {
  int rank;
  int64_t dims[5];
  bool per_axis;
  int64_t axis; /* as given to the node, possibly negative */
  size_t D, inner;
} qaxis_case;

static void rand_axis_case(rng *r, qaxis_case *c, bool allow_axis) {
  memset(c, 0, sizeof *c);
  c->rank = (int)rint_in(r, 0, 4);
  for (int i = 0; i < c->rank; i++)
    c->dims[i] = rint_in(r, 1, 7);
  if (c->rank && rint_in(r, 0, 15) == 0)
    c->dims[rint_in(r, 0, c->rank - 1)] = 0;
  c->per_axis = allow_axis && c->rank > 0 && rint_in(r, 0, 2) != 0;
  c->D = 1;
  c->inner = prod(c->dims, c->rank);
  if (c->per_axis) {
    c->axis = rint_in(r, -c->rank, c->rank - 1);
    int a = (int)(c->axis < 0 ? c->axis + c->rank : c->axis);
    c->D = (size_t)c->dims[a];
    c->inner = prod(c->dims + a + 1, c->rank - a - 1);
    if (c->D == 1 && rint_in(r, 0, 1))
      c->per_axis = false; /* a [1] scale is per-tensor too */
  }
}

static size_t axis_index(const qaxis_case *c, size_t i) {
  return c->per_axis && c->inner ? (i / c->inner) % c->D : 0;
}

START_TEST(test_quantize_random) {
  rng r = {0x9e3779b97f4a7c15ull};
  for (int iter = 0; iter < 400; iter++) {
    set_generic(iter & 1);
    int64_t opset = rint_in(&r, 0, 3) == 0 ? 10 : 13;
    qaxis_case c;
    rand_axis_case(&r, &c, opset >= 13);
    size_t n = prod(c.dims, c.rank), np = c.per_axis ? c.D : 1;
    uint32_t xdt = rint_in(&r, 0, 4) == 0 ? TSR_DTYPE_INT32 : TSR_DTYPE_FLOAT32;
    int zpmode = (int)rint_in(&r, 0, 2); /* 0 absent, 1 uint8, 2 int8 */
    uint32_t ydt = zpmode == 2 ? TSR_DTYPE_INT8 : TSR_DTYPE_UINT8;
    float *scale = malloc(np * sizeof *scale);
    int32_t *zp = rand_q(&r, ydt, np);
    for (size_t i = 0; i < np; i++)
      scale[i] = rint_in(&r, 0, 2) == 0 ? ldexpf(1.0f, (int)rint_in(&r, -4, 3))
                                        : (float)(0.001 + 3.0 * runi(&r));
    float *xf = malloc((n ? n : 1) * sizeof *xf);
    int32_t *xi = malloc((n ? n : 1) * sizeof *xi);
    for (size_t i = 0; i < n; i++) {
      float s = scale[axis_index(&c, i)];
      int64_t k = rint_in(&r, -400, 400);
      switch (rint_in(&r, 0, 3)) {
      case 0: xf[i] = ((float)k + 0.5f) * s; break; /* ties (exact when s is a power of 2) */
      case 1: xf[i] = (float)k * s; break;
      default: xf[i] = (float)((runi(&r) * 2.0 - 1.0) * 300.0 * s); break;
      }
      xi[i] = (int32_t)rint_in(&r, -2000, 2000);
    }
    if (n > 2 && iter % 7 == 0) {
      xf[0] = INFINITY;
      xf[1] = -INFINITY;
      xf[2] = 1e30f;
    }
    cpu_direct *d = cpu_direct_new("QuantizeLinear", opset);
    if (c.per_axis && (c.axis != 1 || rint_in(&r, 0, 1)))
      cpu_direct_attr_int(d, "axis", c.axis);
    if (xdt == TSR_DTYPE_FLOAT32)
      cpu_direct_input(d, xdt, (uint32_t)c.rank, c.dims, xf, false);
    else
      cpu_direct_input(d, xdt, (uint32_t)c.rank, c.dims, xi, false);
    int64_t pd[1] = {(int64_t)np};
    bool scalar_param = !c.per_axis && rint_in(&r, 0, 1);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, scalar_param ? 0 : 1, pd, scale, rint_in(&r, 0, 1));
    if (zpmode)
      add_q(d, ydt, scalar_param ? 0 : 1, pd, zp, false);
    cpu_direct_output(d, ydt, (uint32_t)c.rank, c.dims);
    RUN_OK(d, iter % 3 == 0 ? 4 : 1);
    int32_t *ref = malloc((n ? n : 1) * sizeof *ref);
    for (size_t i = 0; i < n; i++) {
      size_t a = axis_index(&c, i);
      int32_t z = zpmode ? zp[a] : 0;
      ref[i] = xdt == TSR_DTYPE_FLOAT32 ? ref_quant_f32(xf[i], scale[a], z, ydt)
                                        : ref_quant_i32(xi[i], scale[a], z, ydt);
    }
    expect_ints(cpu_direct_out(d, 0), ref, n, "QuantizeLinear");
    cpu_direct_free(d);
    free(ref);
    free(xf);
    free(xi);
    free(scale);
    free(zp);
  }
}
END_TEST

START_TEST(test_quantize_large) {
  /* Large enough for several threads and the vector loops' tails. */
  rng r = {77};
  int64_t dims[3] = {3, 37, 1001};
  size_t n = prod(dims, 3);
  float *x = malloc(n * sizeof *x), scale[37];
  int32_t zp[37];
  for (size_t i = 0; i < n; i++)
    x[i] = (float)((runi(&r) * 2.0 - 1.0) * 200.0);
  for (int i = 0; i < 37; i++) {
    scale[i] = (float)(0.2 + runi(&r));
    zp[i] = (int32_t)rint_in(&r, -128, 127);
  }
  for (int v = 0; v < 2; v++) {
    set_generic(v);
    cpu_direct *d = cpu_direct_new("QuantizeLinear", 13);
    cpu_direct_attr_int(d, "axis", -2);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, dims, x, false);
    int64_t pd[1] = {37};
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, pd, scale, true);
    add_q(d, TSR_DTYPE_INT8, 1, pd, zp, true);
    cpu_direct_output(d, TSR_DTYPE_INT8, 3, dims);
    RUN_OK(d, 4);
    int32_t *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++) {
      size_t a = (i / 1001) % 37;
      ref[i] = ref_quant_f32(x[i], scale[a], zp[a], TSR_DTYPE_INT8);
    }
    expect_ints(cpu_direct_out(d, 0), ref, n, "QuantizeLinear large");
    free(ref);
    cpu_direct_free(d);
  }
  free(x);
}
END_TEST

START_TEST(test_dequantize_random) {
  rng r = {0x1234567};
  static const uint32_t dts[3] = {TSR_DTYPE_UINT8, TSR_DTYPE_INT8, TSR_DTYPE_INT32};
  for (int iter = 0; iter < 300; iter++) {
    set_generic(iter & 1);
    int64_t opset = rint_in(&r, 0, 3) == 0 ? 10 : 13;
    qaxis_case c;
    rand_axis_case(&r, &c, opset >= 13);
    size_t n = prod(c.dims, c.rank), np = c.per_axis ? c.D : 1;
    uint32_t xdt = dts[rint_in(&r, 0, 2)];
    bool has_zp = rint_in(&r, 0, 2) != 0;
    int32_t *x = rand_q(&r, xdt, n), *zp = rand_q(&r, xdt, np);
    float *scale = malloc(np * sizeof *scale);
    for (size_t i = 0; i < np; i++)
      scale[i] = (float)(0.0001 + runi(&r) * 5.0);
    cpu_direct *d = cpu_direct_new("DequantizeLinear", opset);
    if (c.per_axis)
      cpu_direct_attr_int(d, "axis", c.axis);
    add_q(d, xdt, c.rank, c.dims, x, false);
    int64_t pd[1] = {(int64_t)np};
    bool scalar_param = !c.per_axis && rint_in(&r, 0, 1);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, scalar_param ? 0 : 1, pd, scale, false);
    if (has_zp)
      add_q(d, xdt, scalar_param ? 0 : 1, pd, zp, true);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, (uint32_t)c.rank, c.dims);
    RUN_OK(d, iter % 3 == 0 ? 3 : 1);
    const float *y = cpu_direct_out(d, 0)->data;
    for (size_t i = 0; i < n; i++) {
      size_t a = axis_index(&c, i);
      float want = (float)((int64_t)x[i] - (has_zp ? zp[a] : 0)) * scale[a];
      ck_assert_msg(memcmp(&want, &y[i], sizeof want) == 0, "element %zu: %.9g, expected %.9g", i,
                    (double)y[i], (double)want);
    }
    cpu_direct_free(d);
    free(x);
    free(zp);
    free(scale);
  }
}
END_TEST

/* ---- DynamicQuantizeLinear ------------------------------------------------------------- */

/* Runs DynamicQuantizeLinear on x and checks y, scale and zero point against the ONNX
 * reference formulas (in double, scale rounded to float32 once). */
static void check_dynq(const float *x, int rank, const int64_t *dims, size_t threads) {
  size_t n = prod(dims, rank);
  cpu_direct *d = cpu_direct_new("DynamicQuantizeLinear", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, (uint32_t)rank, dims, x, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, (uint32_t)rank, dims);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 0, NULL);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 0, NULL);
  RUN_OK(d, threads);
  double mn = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    if (x[i] < mn)
      mn = x[i];
    if (x[i] > mx)
      mx = x[i];
  }
  float scale = mx == mn ? 1.0f : (float)((mx - mn) / 255.0);
  int32_t zp = clampi(nearbyint(-mn / (double)scale), 0, 255);
  float got_scale = *(const float *)cpu_direct_out(d, 1)->data;
  ck_assert_msg(memcmp(&got_scale, &scale, sizeof scale) == 0, "scale %a, expected %a",
                (double)got_scale, (double)scale);
  ck_assert_int_eq(out_q(cpu_direct_out(d, 2), 0), zp);
  int32_t *ref = malloc((n ? n : 1) * sizeof *ref);
  for (size_t i = 0; i < n; i++)
    ref[i] = ref_quant_f32(x[i], scale, zp, TSR_DTYPE_UINT8);
  expect_ints(cpu_direct_out(d, 0), ref, n, "DynamicQuantizeLinear");
  free(ref);
  cpu_direct_free(d);
}

START_TEST(test_dynamic_quantize_random) {
  rng r = {4242};
  for (int iter = 0; iter < 200; iter++) {
    set_generic(iter & 1);
    int rank = (int)rint_in(&r, 0, 3);
    int64_t dims[3];
    for (int i = 0; i < rank; i++)
      dims[i] = rint_in(&r, 1, 9);
    if (iter == 5)
      dims[0] = 0, rank = 1;
    if (iter == 7)
      rank = 3, dims[0] = 7, dims[1] = 111, dims[2] = 997; /* many blocks */
    size_t n = prod(dims, rank);
    float *x = malloc((n ? n : 1) * sizeof *x);
    double lo = -runi(&r) * 10.0, hi = runi(&r) * 10.0;
    int mode = (int)rint_in(&r, 0, 4);
    for (size_t i = 0; i < n; i++) {
      double v = lo + (hi - lo) * runi(&r);
      if (mode == 1)
        v = fabs(v); /* min adjusted to 0 */
      if (mode == 2)
        v = -fabs(v); /* max adjusted to 0 */
      if (mode == 3)
        v = 0; /* all zero */
      x[i] = (float)v;
    }
    check_dynq(x, rank, dims, iter % 3 == 0 ? 4 : 1);
    free(x);
  }
}
END_TEST

START_TEST(test_dynamic_quantize_onnx) {
  /* The three cases of the ONNX backend tests, with their expected outputs. */
  static const float x1[6] = {0, 2, -3, -2.5f, 1.34f, 0.5f};
  static const uint8_t y1[6] = {153, 255, 0, 26, 221, 179};
  static const float x2[6] = {-1.0f, -2.1f, -1.3f, -2.5f, -3.34f, -4.0f};
  static const uint8_t y2[6] = {191, 121, 172, 96, 42, 0};
  static const float x3[12] = {1, 2.1f, 1.3f, 2.5f, 3.34f, 4, 1.5f, 2.6f, 3.9f, 4, 3, 2.345f};
  static const uint8_t y3[12] = {64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149};
  const float *xs[3] = {x1, x2, x3};
  const uint8_t *ys[3] = {y1, y2, y3};
  const float scales[3] = {0x1.414142p-6f, 0x1.010102p-6f, 0x1.010102p-6f};
  const int zps[3] = {153, 255, 0};
  int64_t d6[1] = {6}, d34[2] = {3, 4};
  for (int c = 0; c < 3; c++) {
    cpu_direct *d = cpu_direct_new("DynamicQuantizeLinear", 11);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, c == 2 ? 2 : 1, c == 2 ? d34 : d6, xs[c], false);
    cpu_direct_output(d, TSR_DTYPE_UINT8, c == 2 ? 2 : 1, c == 2 ? d34 : d6);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 0, NULL);
    cpu_direct_output(d, TSR_DTYPE_UINT8, 0, NULL);
    RUN_OK(d, 1);
    ck_assert(memcmp(cpu_direct_out(d, 0)->data, ys[c], c == 2 ? 12 : 6) == 0);
    ck_assert(*(const float *)cpu_direct_out(d, 1)->data == scales[c]);
    ck_assert_int_eq(*(const uint8_t *)cpu_direct_out(d, 2)->data, zps[c]);
    cpu_direct_free(d);
  }
  /* NaN is left out of the range; infinities do not crash. */
  float xn[4] = {NAN, 1.0f, -1.0f, 0.5f};
  int64_t d4[1] = {4};
  cpu_direct *d = cpu_direct_new("DynamicQuantizeLinear", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d4, xn, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 1, d4);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 0, NULL);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 0, NULL);
  RUN_OK(d, 1);
  ck_assert(*(const float *)cpu_direct_out(d, 1)->data == (float)(2.0 / 255.0));
  cpu_direct_free(d);
  float xi[3] = {INFINITY, -1.0f, 3.0f};
  int64_t d3[1] = {3};
  d = cpu_direct_new("DynamicQuantizeLinear", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d3, xi, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 1, d3);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 0, NULL);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 0, NULL);
  RUN_OK(d, 1);
  cpu_direct_free(d);
}
END_TEST

START_TEST(test_quant_onnx_cases) {
  /* test_quantizelinear and test_dequantizelinear_axis. */
  float x[6] = {0, 2, 3, 1000, -254, -1000}, s = 2.0f;
  int32_t zp = 128, want[6] = {128, 129, 130, 255, 1, 0};
  int64_t d6[1] = {6};
  cpu_direct *d = cpu_direct_new("QuantizeLinear", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d6, x, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &s, false);
  add_q(d, TSR_DTYPE_UINT8, 0, NULL, &zp, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 1, d6);
  RUN_OK(d, 1);
  expect_ints(cpu_direct_out(d, 0), want, 6, "test_quantizelinear");
  cpu_direct_free(d);

  int32_t xq[18] = {3, 89, 34, 200, 74, 59, 5, 24, 24, 87, 32, 13, 245, 99, 4, 142, 121, 102};
  float sc[3] = {2, 4, 5};
  int32_t zq[3] = {84, 24, 196};
  float yw[18] = {-162, 10, -100, 232, -20,  -50,  -76,  0,    0,
                  252,  32, -44,  245, -485, -960, -270, -375, -470};
  int64_t xd[4] = {1, 3, 3, 2}, d3[1] = {3};
  d = cpu_direct_new("DequantizeLinear", 13);
  add_q(d, TSR_DTYPE_UINT8, 4, xd, xq, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d3, sc, false);
  add_q(d, TSR_DTYPE_UINT8, 1, d3, zq, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  RUN_OK(d, 1);
  ck_assert(memcmp(cpu_direct_out(d, 0)->data, yw, sizeof yw) == 0);
  cpu_direct_free(d);
}
END_TEST

/* ---- QLinearConv / ConvInteger ------------------------------------------------------------ */

typedef struct conv_case {
  int nsp;
  int64_t N, C, M, G;
  int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
  const char *auto_pad; /* NULL: explicit pads */
} conv_case;

/* Output size and begin pads as ONNX defines them. */
static bool conv_case_finish(conv_case *c) {
  for (int i = 0; i < c->nsp; i++) {
    int64_t ek = (c->k[i] - 1) * c->d[i] + 1;
    if (c->auto_pad && strncmp(c->auto_pad, "SAME", 4) == 0) {
      int64_t o = (c->in[i] + c->s[i] - 1) / c->s[i];
      int64_t total = (o - 1) * c->s[i] + ek - c->in[i];
      if (total < 0)
        total = 0;
      bool upper = strcmp(c->auto_pad, "SAME_UPPER") == 0;
      c->pb[i] = upper ? total / 2 : total - total / 2;
      c->pe[i] = total - c->pb[i];
    } else if (c->auto_pad) {
      c->pb[i] = c->pe[i] = 0;
    }
    int64_t span = c->in[i] + c->pb[i] + c->pe[i] - ek;
    if (span < 0)
      return false;
    c->out[i] = span / c->s[i] + 1;
  }
  return true;
}

static void rand_conv_case(rng *r, conv_case *c, bool big) {
  do {
    memset(c, 0, sizeof *c);
    c->nsp = (int)rint_in(r, 1, 3);
    c->G = rint_in(r, 0, 3) == 0 ? rint_in(r, 2, 3) : 1;
    c->N = rint_in(r, 1, 2);
    c->C = c->G * rint_in(r, 1, big ? 9 : 4);
    c->M = c->G * rint_in(r, 1, big ? 11 : 6);
    for (int i = 0; i < c->nsp; i++) {
      int64_t hi = c->nsp == 3 ? 6 : c->nsp == 2 ? (big ? 19 : 9) : (big ? 60 : 20);
      c->in[i] = rint_in(r, 1, hi);
      c->k[i] = rint_in(r, 1, 3);
      c->s[i] = rint_in(r, 1, 3);
      c->d[i] = rint_in(r, 0, 3) == 0 ? 2 : 1;
      c->pb[i] = rint_in(r, 0, 2);
      c->pe[i] = rint_in(r, 0, 2);
    }
    static const char *const pads[5] = {NULL, NULL, "SAME_UPPER", "SAME_LOWER", "VALID"};
    c->auto_pad = pads[rint_in(r, 0, 4)];
  } while (!conv_case_finish(c));
}

static void conv_attrs(cpu_direct *d, const conv_case *c, rng *r) {
  if (c->G > 1 || rint_in(r, 0, 1))
    cpu_direct_attr_int(d, "group", c->G);
  cpu_direct_attr_ints(d, "strides", (size_t)c->nsp, c->s);
  bool dilated = false;
  for (int i = 0; i < c->nsp; i++)
    dilated |= c->d[i] != 1;
  if (dilated || rint_in(r, 0, 1))
    cpu_direct_attr_ints(d, "dilations", (size_t)c->nsp, c->d);
  if (rint_in(r, 0, 1))
    cpu_direct_attr_ints(d, "kernel_shape", (size_t)c->nsp, c->k);
  if (c->auto_pad) {
    cpu_direct_attr_string(d, "auto_pad", c->auto_pad);
  } else {
    int64_t pads[6];
    for (int i = 0; i < c->nsp; i++) {
      pads[i] = c->pb[i];
      pads[c->nsp + i] = c->pe[i];
    }
    cpu_direct_attr_ints(d, "pads", 2 * (size_t)c->nsp, pads);
  }
}

/* acc[n][m][out...] = sum (x - xzp) * (w - wzp[m]) over the window, padding contributing 0. */
static int64_t *ref_conv_acc(const conv_case *c, const int32_t *x, int32_t xzp, const int32_t *w,
                             const int32_t *wzp, bool wzp_per_m) {
  int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, dl[3] = {1, 1, 1};
  int64_t pb[3] = {0, 0, 0}, out[3] = {1, 1, 1};
  int off = 3 - c->nsp;
  for (int i = 0; i < c->nsp; i++) {
    in[off + i] = c->in[i];
    k[off + i] = c->k[i];
    s[off + i] = c->s[i];
    dl[off + i] = c->d[i];
    pb[off + i] = c->pb[i];
    out[off + i] = c->out[i];
  }
  int64_t cg = c->C / c->G, mg = c->M / c->G;
  size_t osp = (size_t)(out[0] * out[1] * out[2]), isp = (size_t)(in[0] * in[1] * in[2]);
  size_t ksp = (size_t)(k[0] * k[1] * k[2]);
  int64_t *acc = calloc((size_t)(c->N * c->M) * osp + 1, sizeof *acc);
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t m = 0; m < c->M; m++) {
      int64_t g = m / mg;
      int32_t wz = wzp ? wzp[wzp_per_m ? m : 0] : 0;
      for (int64_t o0 = 0; o0 < out[0]; o0++)
        for (int64_t o1 = 0; o1 < out[1]; o1++)
          for (int64_t o2 = 0; o2 < out[2]; o2++) {
            int64_t sum = 0;
            for (int64_t ci = 0; ci < cg; ci++) {
              int64_t ch = g * cg + ci;
              for (int64_t k0 = 0; k0 < k[0]; k0++)
                for (int64_t k1 = 0; k1 < k[1]; k1++)
                  for (int64_t k2 = 0; k2 < k[2]; k2++) {
                    int64_t i0 = o0 * s[0] - pb[0] + k0 * dl[0];
                    int64_t i1 = o1 * s[1] - pb[1] + k1 * dl[1];
                    int64_t i2 = o2 * s[2] - pb[2] + k2 * dl[2];
                    if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || i2 < 0 || i2 >= in[2])
                      continue;
                    int32_t xv =
                        x[(size_t)(n * c->C + ch) * isp + (size_t)((i0 * in[1] + i1) * in[2] + i2)];
                    int32_t wv =
                        w[(size_t)(m * cg + ci) * ksp + (size_t)((k0 * k[1] + k1) * k[2] + k2)];
                    sum += (int64_t)(xv - xzp) * (wv - wz);
                  }
            }
            acc[(size_t)(n * c->M + m) * osp + (size_t)((o0 * out[1] + o1) * out[2] + o2)] = sum;
          }
    }
  return acc;
}

static void run_conv_case(rng *r, const conv_case *c, bool qlinear, size_t threads) {
  uint32_t xdt = rint_in(r, 0, 1) ? TSR_DTYPE_UINT8 : TSR_DTYPE_INT8;
  uint32_t wdt = rint_in(r, 0, 1) ? TSR_DTYPE_UINT8 : TSR_DTYPE_INT8;
  uint32_t ydt = rint_in(r, 0, 1) ? TSR_DTYPE_UINT8 : TSR_DTYPE_INT8;
  int64_t xd[5] = {c->N, c->C}, wd[5] = {c->M, c->C / c->G}, yd[5] = {c->N, c->M};
  for (int i = 0; i < c->nsp; i++) {
    xd[2 + i] = c->in[i];
    wd[2 + i] = c->k[i];
    yd[2 + i] = c->out[i];
  }
  int rank = c->nsp + 2;
  size_t nx = prod(xd, rank), nw = prod(wd, rank), ny = prod(yd, rank);
  int32_t *x = rand_q(r, xdt, nx), *w = rand_q(r, wdt, nw);
  int32_t xzp = rand_q1(r, xdt);
  int32_t *wzp = rand_q(r, wdt, (size_t)c->M), *bias = malloc((size_t)c->M * sizeof *bias);
  bool wzp_per_m = rint_in(r, 0, 1), has_xzp = !qlinear ? rint_in(r, 0, 3) != 0 : true;
  bool has_wzp = !qlinear ? rint_in(r, 0, 2) != 0 : true, ws_per_m = rint_in(r, 0, 1);
  bool has_bias = qlinear && rint_in(r, 0, 2) != 0, wconst = rint_in(r, 0, 1);
  float xs = (float)(0.001 + 0.05 * runi(r)), ys = (float)(0.01 + 0.5 * runi(r));
  float *ws = malloc((size_t)c->M * sizeof *ws);
  for (int64_t m = 0; m < c->M; m++) {
    ws[m] = (float)(0.001 + 0.05 * runi(r));
    bias[m] = (int32_t)rint_in(r, -20000, 20000);
  }
  int32_t yzp = rand_q1(r, ydt);
  if (!has_xzp)
    xzp = 0;
  cpu_direct *d = cpu_direct_new(qlinear ? "QLinearConv" : "ConvInteger", 10);
  conv_attrs(d, c, r);
  int64_t md[1] = {c->M};
  add_q(d, xdt, rank, xd, x, false);
  if (qlinear) {
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &xs, false);
    add_q(d, xdt, 0, NULL, &xzp, false);
    add_q(d, wdt, rank, wd, w, wconst);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, ws_per_m ? 1 : 0, md, ws, true);
    add_q(d, wdt, wzp_per_m ? 1 : 0, md, wzp, wconst);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &ys, false);
    add_q(d, ydt, 0, NULL, &yzp, false);
    if (has_bias)
      add_q(d, TSR_DTYPE_INT32, 1, md, bias, true);
    cpu_direct_output(d, ydt, (uint32_t)rank, yd);
  } else {
    add_q(d, wdt, rank, wd, w, wconst);
    if (has_xzp) {
      int64_t one[1] = {1};
      add_q(d, xdt, rint_in(r, 0, 1) ? 1 : 0, one, &xzp, false);
    } else if (has_wzp) {
      cpu_direct_input_absent(d);
    }
    if (has_wzp)
      add_q(d, wdt, wzp_per_m ? 1 : 0, md, wzp, wconst);
    cpu_direct_output(d, TSR_DTYPE_INT32, (uint32_t)rank, yd);
  }
  RUN_OK(d, threads);
  int64_t *acc = ref_conv_acc(c, x, xzp, w, has_wzp ? wzp : NULL, wzp_per_m);
  int32_t *ref = malloc((ny ? ny : 1) * sizeof *ref);
  size_t osp = prod(c->out, c->nsp);
  for (size_t i = 0; i < ny; i++) {
    size_t m = (i / osp) % (size_t)c->M;
    if (qlinear)
      ref[i] =
          ref_requant(acc[i] + (has_bias ? bias[m] : 0), xs, ws[ws_per_m ? m : 0], ys, yzp, ydt);
    else
      ref[i] = (int32_t)acc[i];
  }
  expect_ints(cpu_direct_out(d, 0), ref, ny, qlinear ? "QLinearConv" : "ConvInteger");
  cpu_direct_free(d);
  free(ref);
  free(acc);
  free(x);
  free(w);
  free(wzp);
  free(bias);
  free(ws);
}

START_TEST(test_qlinearconv_random) {
  rng r = {0xabcdef12345ull};
  for (int iter = 0; iter < 250; iter++) {
    set_generic(iter & 1);
    conv_case c;
    rand_conv_case(&r, &c, false);
    run_conv_case(&r, &c, true, iter % 3 == 0 ? 4 : 1);
  }
}
END_TEST

START_TEST(test_convinteger_random) {
  rng r = {0x5151};
  for (int iter = 0; iter < 250; iter++) {
    set_generic(iter & 1);
    conv_case c;
    rand_conv_case(&r, &c, false);
    run_conv_case(&r, &c, false, iter % 3 == 0 ? 4 : 1);
  }
}
END_TEST

START_TEST(test_conv_large) {
  /* Several column chunks and row blocks, threads, deep K (odd and even). */
  rng r = {99};
  for (int iter = 0; iter < 8; iter++) {
    set_generic(iter & 1);
    conv_case c;
    memset(&c, 0, sizeof c);
    c.nsp = 2;
    c.N = 2;
    c.G = iter == 3 ? 4 : 1;
    c.C = iter >= 6 ? 8 * 67 - (iter & 1) : 4 * (iter + 3); /* K = C * 9, odd or even */
    c.M = 4 * (iter + 5) + (iter & 1);
    c.M = c.M / c.G * c.G;
    for (int i = 0; i < 2; i++) {
      c.in[i] = iter >= 6 ? 9 : 33 + iter;
      c.k[i] = 3;
      c.s[i] = 1 + (iter == 2);
      c.d[i] = 1;
      c.pb[i] = c.pe[i] = 1;
    }
    ck_assert(conv_case_finish(&c));
    run_conv_case(&r, &c, iter & 2, 4);
  }
}
END_TEST

START_TEST(test_conv_onnx_cases) {
  /* test_convinteger_with_padding and test_qlinearconv. */
  int32_t x[9] = {2, 3, 4, 5, 6, 7, 8, 9, 10}, w[4] = {1, 1, 1, 1}, xzp = 1;
  int32_t want[16] = {1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9};
  int64_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 1, 2, 2}, yd[4] = {1, 1, 4, 4};
  int64_t pads[4] = {1, 1, 1, 1};
  cpu_direct *d = cpu_direct_new("ConvInteger", 10);
  cpu_direct_attr_ints(d, "pads", 4, pads);
  add_q(d, TSR_DTYPE_UINT8, 4, xd, x, false);
  add_q(d, TSR_DTYPE_UINT8, 4, wd, w, true);
  add_q(d, TSR_DTYPE_UINT8, 0, NULL, &xzp, false);
  cpu_direct_output(d, TSR_DTYPE_INT32, 4, yd);
  RUN_OK(d, 1);
  expect_ints(cpu_direct_out(d, 0), want, 16, "test_convinteger_with_padding");
  cpu_direct_free(d);

  static const int32_t qx[49] = {255, 174, 162, 25,  203, 168, 58,  15,  59,  237, 95,  129, 0,
                                 64,  56,  242, 153, 221, 168, 12,  166, 232, 178, 186, 195, 237,
                                 162, 237, 188, 39,  124, 77,  80,  102, 43,  127, 230, 21,  83,
                                 41,  40,  134, 255, 154, 92,  141, 42,  148, 247};
  static const int32_t qy[49] = {0,   81,  93,  230, 52,  87,  197, 240, 196, 18,  160, 126, 255,
                                 191, 199, 13,  102, 34,  87,  243, 89,  23,  77,  69,  60,  18,
                                 93,  18,  67,  216, 131, 178, 175, 153, 212, 128, 25,  234, 172,
                                 214, 215, 121, 0,   101, 163, 114, 213, 107, 8};
  float xs = 0x1.e3ec8ap-9f, ws = 0x1.c4f87ap-10f, ys = 0x1.aa758cp-10f;
  int32_t qxzp = 132, qw = 0, qwzp = 255, qyzp = 123;
  int64_t d7[4] = {1, 1, 7, 7}, d1[4] = {1, 1, 1, 1}, one[1] = {1};
  d = cpu_direct_new("QLinearConv", 10);
  add_q(d, TSR_DTYPE_UINT8, 4, d7, qx, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &xs, false);
  add_q(d, TSR_DTYPE_UINT8, 0, NULL, &qxzp, false);
  add_q(d, TSR_DTYPE_UINT8, 4, d1, &qw, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, one, &ws, false);
  add_q(d, TSR_DTYPE_UINT8, 1, one, &qwzp, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &ys, false);
  add_q(d, TSR_DTYPE_UINT8, 0, NULL, &qyzp, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 4, d7);
  RUN_OK(d, 1);
  expect_ints(cpu_direct_out(d, 0), qy, 49, "test_qlinearconv");
  cpu_direct_free(d);
}
END_TEST

/* ---- QLinearMatMul / MatMulInteger ------------------------------------------------------- */

/* A parameter's form: 0 absent (zero points only), 1 scalar, 2 [1], 3 vector [M] or [N],
 * 4 of the operand's rank ([..., M, 1] or [..., 1, N]) with random broadcast dims. */
typedef struct mm_param {
  int form;
  int rank;
  int64_t dims[8];
} mm_param;

static void rand_mm_param(rng *r, mm_param *p, int op_rank, const int64_t *op_dims, bool rows,
                          bool optional) {
  memset(p, 0, sizeof *p);
  int64_t len =
      rows ? (op_rank >= 2 ? op_dims[op_rank - 2] : 1) : (op_rank >= 2 ? op_dims[op_rank - 1] : 1);
  for (;;) {
    p->form = (int)rint_in(r, optional ? 0 : 1, 4);
    if (p->form >= 3 && op_rank < 2)
      continue;
    break;
  }
  switch (p->form) {
  case 1: p->rank = 0; break;
  case 2: p->rank = 1, p->dims[0] = 1; break;
  case 3: p->rank = 1, p->dims[0] = len; break;
  case 4:
    p->rank = op_rank;
    for (int i = 0; i < op_rank - 2; i++)
      p->dims[i] = rint_in(r, 0, 2) ? op_dims[i] : 1;
    p->dims[op_rank - 2] = rows ? (rint_in(r, 0, 4) ? len : 1) : 1;
    p->dims[op_rank - 1] = rows ? 1 : (rint_in(r, 0, 4) ? len : 1);
    break;
  default: break;
  }
}

/* The parameter's element for the operand element at multi-index idx (rank op_rank). */
static size_t mm_param_index(const mm_param *p, int op_rank, const int64_t *idx, bool rows) {
  if (p->form <= 2)
    return 0;
  if (p->form == 3)
    return (size_t)(rows ? idx[op_rank - 2] : idx[op_rank - 1]);
  size_t off = 0;
  for (int i = 0; i < op_rank; i++)
    off = off * (size_t)p->dims[i] + (p->dims[i] == 1 ? 0 : (size_t)idx[i]);
  return off;
}

typedef struct mm_case {
  int ar, br, yr;
  int64_t ad[6], bd[6], yd[8];
  int64_t M, K, N;
} mm_case;

static void rand_mm_case(rng *r, mm_case *c, bool big) {
  memset(c, 0, sizeof *c);
  c->M = rint_in(r, 1, big ? 70 : 9);
  c->K = rint_in(r, 0, 12) == 0 ? 0 : rint_in(r, 1, big ? 300 : 40);
  c->N = rint_in(r, 1, big ? 90 : 40);
  c->ar = (int)rint_in(r, 1, 4);
  c->br = (int)rint_in(r, 1, 4);
  int obr = 0;
  int64_t ob[4];
  int abr = c->ar > 2 ? c->ar - 2 : 0, bbr = c->br > 2 ? c->br - 2 : 0;
  obr = abr > bbr ? abr : bbr;
  for (int i = 0; i < obr; i++)
    ob[i] = rint_in(r, 1, 3);
  for (int i = 0; i < abr; i++)
    c->ad[i] = rint_in(r, 0, 2) ? ob[obr - abr + i] : 1;
  for (int i = 0; i < bbr; i++)
    c->bd[i] = rint_in(r, 0, 2) ? ob[obr - bbr + i] : 1;
  if (c->ar == 1)
    c->ad[0] = c->K;
  else
    c->ad[c->ar - 2] = c->M, c->ad[c->ar - 1] = c->K;
  if (c->br == 1)
    c->bd[0] = c->K;
  else
    c->bd[c->br - 2] = c->K, c->bd[c->br - 1] = c->N;
  if (c->ar == 1)
    c->M = 1;
  if (c->br == 1)
    c->N = 1;
  c->yr = 0;
  for (int i = 0; i < obr; i++) {
    int ai = i - (obr - abr), bi = i - (obr - bbr);
    int64_t a = ai >= 0 ? c->ad[ai] : 1, b = bi >= 0 ? c->bd[bi] : 1;
    c->yd[c->yr++] = a == 1 ? b : a;
  }
  if (c->ar >= 2)
    c->yd[c->yr++] = c->M;
  if (c->br >= 2)
    c->yd[c->yr++] = c->N;
}

static void mm_add_param(cpu_direct *d, const mm_param *p, uint32_t dt, const void *vals,
                         bool is_const) {
  if (p->form == 0) {
    cpu_direct_input_absent(d);
    return;
  }
  if (dt == TSR_DTYPE_FLOAT32)
    cpu_direct_input(d, dt, (uint32_t)p->rank, p->dims, vals, is_const);
  else
    add_q(d, dt, p->rank, p->dims, vals, is_const);
}

static void run_mm_case(rng *r, const mm_case *c, bool qlinear, size_t threads) {
  uint32_t adt = rint_in(r, 0, 1) ? TSR_DTYPE_UINT8 : TSR_DTYPE_INT8;
  uint32_t bdt = rint_in(r, 0, 1) ? TSR_DTYPE_UINT8 : TSR_DTYPE_INT8;
  uint32_t ydt = rint_in(r, 0, 1) ? TSR_DTYPE_UINT8 : TSR_DTYPE_INT8;
  size_t na = prod(c->ad, c->ar), nb = prod(c->bd, c->br), ny = prod(c->yd, c->yr);
  int32_t *a = rand_q(r, adt, na), *b = rand_q(r, bdt, nb);
  mm_param pza, pzb, psa, psb;
  rand_mm_param(r, &pza, c->ar, c->ad, true, !qlinear);
  rand_mm_param(r, &pzb, c->br, c->bd, false, !qlinear);
  rand_mm_param(r, &psa, c->ar, c->ad, true, false);
  rand_mm_param(r, &psb, c->br, c->bd, false, false);
  size_t nza = prod(pza.dims, pza.rank), nzb = prod(pzb.dims, pzb.rank);
  size_t nsa = prod(psa.dims, psa.rank), nsb = prod(psb.dims, psb.rank);
  int32_t *za = rand_q(r, adt, nza), *zb = rand_q(r, bdt, nzb);
  float *sa = malloc(nsa * sizeof *sa), *sb = malloc(nsb * sizeof *sb);
  for (size_t i = 0; i < nsa; i++)
    sa[i] = (float)(0.001 + 0.05 * runi(r));
  for (size_t i = 0; i < nsb; i++)
    sb[i] = (float)(0.001 + 0.05 * runi(r));
  float ys = (float)(0.05 + 2.0 * runi(r));
  int32_t yzp = rand_q1(r, ydt);
  bool bconst = rint_in(r, 0, 1), zconst = rint_in(r, 0, 1);
  cpu_direct *d = cpu_direct_new(qlinear ? "QLinearMatMul" : "MatMulInteger", 10);
  add_q(d, adt, c->ar, c->ad, a, false);
  if (qlinear) {
    mm_add_param(d, &psa, TSR_DTYPE_FLOAT32, sa, false);
    mm_add_param(d, &pza, adt, za, false);
    add_q(d, bdt, c->br, c->bd, b, bconst);
    mm_add_param(d, &psb, TSR_DTYPE_FLOAT32, sb, true);
    mm_add_param(d, &pzb, bdt, zb, zconst);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &ys, false);
    add_q(d, ydt, 0, NULL, &yzp, false);
    cpu_direct_output(d, ydt, (uint32_t)c->yr, c->yd);
  } else {
    add_q(d, bdt, c->br, c->bd, b, bconst);
    if (pza.form || pzb.form)
      mm_add_param(d, &pza, adt, za, false);
    if (pzb.form)
      mm_add_param(d, &pzb, bdt, zb, zconst);
    cpu_direct_output(d, TSR_DTYPE_INT32, (uint32_t)c->yr, c->yd);
  }
  RUN_OK(d, threads);
  /* Reference: loop over output elements by multi-index, numpy broadcasting. */
  int32_t *ref = malloc((ny ? ny : 1) * sizeof *ref);
  int obr = c->yr - (c->ar >= 2) - (c->br >= 2);
  for (size_t oi = 0; oi < ny; oi++) {
    int64_t yidx[8], rem = (int64_t)oi;
    for (int i = c->yr - 1; i >= 0; i--) {
      yidx[i] = rem % c->yd[i];
      rem /= c->yd[i];
    }
    int64_t row = c->ar >= 2 ? yidx[obr] : 0, col = c->br >= 2 ? yidx[c->yr - 1] : 0;
    int64_t aidx[6], bidx[6];
    for (int i = 0; i < c->ar - 2; i++) {
      int64_t o = yidx[obr - (c->ar - 2) + i];
      aidx[i] = c->ad[i] == 1 ? 0 : o;
    }
    for (int i = 0; i < c->br - 2; i++) {
      int64_t o = yidx[obr - (c->br - 2) + i];
      bidx[i] = c->bd[i] == 1 ? 0 : o;
    }
    int64_t acc = 0;
    int32_t zav = 0, zbv = 0;
    float sav = 0, sbv = 0;
    for (int64_t k = 0; k <= c->K; k++) {
      if (c->ar >= 2)
        aidx[c->ar - 2] = row, aidx[c->ar - 1] = k < c->K ? k : 0;
      else
        aidx[0] = k < c->K ? k : 0;
      if (c->br >= 2)
        bidx[c->br - 2] = k < c->K ? k : 0, bidx[c->br - 1] = col;
      else
        bidx[0] = k < c->K ? k : 0;
      if (k == 0) {
        zav = pza.form ? za[mm_param_index(&pza, c->ar, aidx, true)] : 0;
        zbv = pzb.form ? zb[mm_param_index(&pzb, c->br, bidx, false)] : 0;
        sav = sa[mm_param_index(&psa, c->ar, aidx, true)];
        sbv = sb[mm_param_index(&psb, c->br, bidx, false)];
      }
      if (k == c->K)
        break;
      size_t ao = 0, bo = 0;
      for (int i = 0; i < c->ar; i++)
        ao = ao * (size_t)c->ad[i] + (size_t)aidx[i];
      for (int i = 0; i < c->br; i++)
        bo = bo * (size_t)c->bd[i] + (size_t)bidx[i];
      acc += (int64_t)(a[ao] - zav) * (b[bo] - zbv);
    }
    ref[oi] = qlinear ? ref_requant(acc, sav, sbv, ys, yzp, ydt) : (int32_t)acc;
  }
  expect_ints(cpu_direct_out(d, 0), ref, ny, qlinear ? "QLinearMatMul" : "MatMulInteger");
  cpu_direct_free(d);
  free(ref);
  free(a);
  free(b);
  free(za);
  free(zb);
  free(sa);
  free(sb);
}

START_TEST(test_qlinearmatmul_random) {
  rng r = {0x777};
  for (int iter = 0; iter < 400; iter++) {
    set_generic(iter & 1);
    mm_case c;
    rand_mm_case(&r, &c, false);
    run_mm_case(&r, &c, true, iter % 3 == 0 ? 4 : 1);
  }
}
END_TEST

START_TEST(test_matmulinteger_random) {
  rng r = {0x888};
  for (int iter = 0; iter < 400; iter++) {
    set_generic(iter & 1);
    mm_case c;
    rand_mm_case(&r, &c, false);
    run_mm_case(&r, &c, false, iter % 3 == 0 ? 4 : 1);
  }
}
END_TEST

START_TEST(test_matmul_large) {
  rng r = {0x999};
  for (int iter = 0; iter < 12; iter++) {
    set_generic(iter & 1);
    mm_case c;
    rand_mm_case(&r, &c, true);
    run_mm_case(&r, &c, iter & 2, 4);
  }
}
END_TEST

START_TEST(test_matmul_onnx_cases) {
  /* test_matmulinteger and test_qlinearmatmul_2D. */
  int32_t a[12] = {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0}, b[6] = {1, 4, 2, 5, 3, 6};
  int32_t za = 12, zb = 0, want[8] = {-38, -83, -44, -98, -50, -113, -56, -128};
  int64_t ad[2] = {4, 3}, bd[2] = {3, 2}, yd[2] = {4, 2}, one[1] = {1};
  cpu_direct *d = cpu_direct_new("MatMulInteger", 10);
  add_q(d, TSR_DTYPE_UINT8, 2, ad, a, false);
  add_q(d, TSR_DTYPE_UINT8, 2, bd, b, false);
  add_q(d, TSR_DTYPE_UINT8, 1, one, &za, false);
  add_q(d, TSR_DTYPE_UINT8, 1, one, &zb, false);
  cpu_direct_output(d, TSR_DTYPE_INT32, 2, yd);
  RUN_OK(d, 1);
  expect_ints(cpu_direct_out(d, 0), want, 8, "test_matmulinteger");
  cpu_direct_free(d);

  int32_t qa[8] = {208, 236, 0, 238, 3, 214, 255, 29};
  int32_t qb[12] = {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247};
  int32_t qza = 113, qzb = 114, qzy = 118, qwant[6] = {168, 115, 255, 1, 66, 151};
  float sa = 0x1.b089ap-8f, sb = 0x1.ce076p-8f, sy = 0x1.5e9e1cp-7f;
  int64_t qad[2] = {2, 4}, qbd[2] = {4, 3}, qyd[2] = {2, 3};
  for (int bconst = 0; bconst < 2; bconst++) {
    d = cpu_direct_new("QLinearMatMul", 10);
    add_q(d, TSR_DTYPE_UINT8, 2, qad, qa, false);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, one, &sa, false);
    add_q(d, TSR_DTYPE_UINT8, 1, one, &qza, false);
    add_q(d, TSR_DTYPE_UINT8, 2, qbd, qb, bconst);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, one, &sb, bconst);
    add_q(d, TSR_DTYPE_UINT8, 1, one, &qzb, bconst);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, one, &sy, false);
    add_q(d, TSR_DTYPE_UINT8, 1, one, &qzy, false);
    cpu_direct_output(d, TSR_DTYPE_UINT8, 2, qyd);
    RUN_OK(d, 1);
    expect_ints(cpu_direct_out(d, 0), qwant, 6, "test_qlinearmatmul_2D");
    cpu_direct_free(d);
  }
}
END_TEST

START_TEST(test_accumulation_wraps) {
  /* K = 40000 products of 255 * 255 pass 2^31; the spec lets the sum wrap in 32 bits, and
   * the kernels must wrap rather than trap (the sanitizer build checks that). */
  int64_t K = 40000, ad[2] = {1, 40000}, bd[2] = {40000, 1}, yd[2] = {1, 1};
  int32_t *a = malloc((size_t)K * sizeof *a), *b = malloc((size_t)K * sizeof *b);
  for (int64_t i = 0; i < K; i++)
    a[i] = b[i] = 255;
  for (int v = 0; v < 2; v++) {
    set_generic(v);
    cpu_direct *d = cpu_direct_new("MatMulInteger", 10);
    add_q(d, TSR_DTYPE_UINT8, 2, ad, a, false);
    add_q(d, TSR_DTYPE_UINT8, 2, bd, b, true);
    cpu_direct_output(d, TSR_DTYPE_INT32, 2, yd);
    RUN_OK(d, 1);
    int32_t want = (int32_t)(uint32_t)((uint64_t)K * 255u * 255u);
    ck_assert_int_eq(out_q(cpu_direct_out(d, 0), 0), want);
    cpu_direct_free(d);
  }
  free(a);
  free(b);
}
END_TEST

/* ---- Errors and refusals ----------------------------------------------------------------- */

/* Runs d expecting check() to refuse with `reason` and a message containing needle. */
static void expect_refused(cpu_direct *d, int reason, const char *needle) {
  char err[512];
  int rc = cpu_direct_run(d, 1, err, sizeof err);
  ck_assert_msg(rc == reason, "expected reason %d, got %d (%s)", reason, rc, err);
  ck_assert_msg(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
  cpu_direct_free(d);
}

START_TEST(test_refusals) {
  int64_t d4[1] = {4}, d3[1] = {3}, d2[2] = {2, 3}, d23[2] = {2, 3}, d34[2] = {3, 4};
  float s3[3] = {1, 1, 1}, s1 = 1;
  int32_t z = 0, z4[4] = {0};
  cpu_direct *d;

  d = cpu_direct_new("QuantizeLinear", 13); /* float16 input needs opset 19 */
  cpu_direct_input(d, TSR_DTYPE_FLOAT16, 1, d4, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &s1, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 1, d4);
  expect_refused(d, TSR_PLUGIN_REASON_DTYPE, "float16");

  d = cpu_direct_new("QuantizeLinear", 13); /* blocked scale */
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 2, d23);
  expect_refused(d, TSR_PLUGIN_REASON_QUANTIZATION, "blocked");

  d = cpu_direct_new("QuantizeLinear", 10); /* per-axis before opset 13 */
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d3, s3, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 2, d23);
  expect_refused(d, TSR_PLUGIN_REASON_QUANTIZATION, "opset 13");

  d = cpu_direct_new("QuantizeLinear", 13); /* axis out of range */
  cpu_direct_attr_int(d, "axis", 2);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d3, s3, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 2, d23);
  expect_refused(d, TSR_PLUGIN_REASON_ATTRIBUTE, "axis 2");

  d = cpu_direct_new("QuantizeLinear", 13); /* scale length does not match axis 1 (3) */
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d34, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d3, s3, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 2, d34);
  expect_refused(d, TSR_PLUGIN_REASON_SHAPE, "does not match");

  d = cpu_direct_new("QuantizeLinear", 13); /* zero point dtype differs from y */
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d4, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &s1, false);
  add_q(d, TSR_DTYPE_INT8, 0, NULL, &z, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 1, d4);
  expect_refused(d, TSR_PLUGIN_REASON_DTYPE, "zero point is int8");

  d = cpu_direct_new("DequantizeLinear", 13);
  cpu_direct_input(d, TSR_DTYPE_INT16, 1, d4, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &s1, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d4);
  expect_refused(d, TSR_PLUGIN_REASON_DTYPE, "int16");

  d = cpu_direct_new("DequantizeLinear", 13);
  add_q(d, TSR_DTYPE_UINT8, 1, d4, z4, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &s1, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT16, 1, d4);
  expect_refused(d, TSR_PLUGIN_REASON_DTYPE, "float16");

  d = cpu_direct_new("DynamicQuantizeLinear", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT64, 1, d4, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 1, d4);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 0, NULL);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 0, NULL);
  expect_refused(d, TSR_PLUGIN_REASON_DTYPE, "float64");

  /* QLinearConv: a vector x zero point; a w_scale of the wrong length; int16 x. */
  int64_t xd[4] = {1, 2, 5, 5}, wd[4] = {3, 2, 3, 3}, yd[4] = {1, 3, 3, 3}, two[1] = {2};
  int64_t four[1] = {4};
  for (int c = 0; c < 4; c++) {
    d = cpu_direct_new("QLinearConv", 10);
    cpu_direct_input(d, c == 2 ? TSR_DTYPE_INT16 : TSR_DTYPE_UINT8, 4, xd, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &s1, false);
    if (c == 0)
      cpu_direct_input(d, TSR_DTYPE_UINT8, 1, two, NULL, false);
    else
      cpu_direct_input(d, c == 2 ? TSR_DTYPE_INT16 : TSR_DTYPE_UINT8, 0, NULL, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_INT8, 4, wd, NULL, true);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, c == 1 ? four : d3, NULL, true);
    cpu_direct_input(d, TSR_DTYPE_INT8, 0, NULL, NULL, true);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &s1, false);
    cpu_direct_input(d, TSR_DTYPE_UINT8, 0, NULL, NULL, false);
    if (c == 3)
      cpu_direct_input(d, TSR_DTYPE_INT8, 1, d3, NULL, true);
    cpu_direct_output(d, TSR_DTYPE_UINT8, 4, yd);
    if (c == 0)
      expect_refused(d, TSR_PLUGIN_REASON_QUANTIZATION, "x_zero_point");
    if (c == 1)
      expect_refused(d, TSR_PLUGIN_REASON_SHAPE, "w_scale");
    if (c == 2)
      expect_refused(d, TSR_PLUGIN_REASON_DTYPE, "int16");
    if (c == 3)
      expect_refused(d, TSR_PLUGIN_REASON_DTYPE, "B is int8");
  }
  /* ConvInteger: a float output, a wrong output size, and a group that does not divide. */
  for (int c = 0; c < 3; c++) {
    int64_t ybad[4] = {1, 3, 4, 3};
    d = cpu_direct_new("ConvInteger", 10);
    if (c == 2)
      cpu_direct_attr_int(d, "group", 2);
    cpu_direct_input(d, TSR_DTYPE_UINT8, 4, xd, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_UINT8, 4, wd, NULL, false);
    cpu_direct_output(d, c == 0 ? TSR_DTYPE_FLOAT32 : TSR_DTYPE_INT32, 4, c == 1 ? ybad : yd);
    if (c == 0)
      expect_refused(d, TSR_PLUGIN_REASON_DTYPE, "expected int32");
    if (c == 1)
      expect_refused(d, TSR_PLUGIN_REASON_SHAPE, "output spatial dim 0");
    if (c == 2)
      expect_refused(d, TSR_PLUGIN_REASON_SHAPE, "group 2");
  }
  /* QLinearMatMul: a vector y_scale; an a_scale along K; a wrong output shape. */
  int64_t ad[2] = {2, 4}, bd[2] = {4, 3}, yd2[2] = {2, 3}, ybad[2] = {3, 3};
  for (int c = 0; c < 3; c++) {
    d = cpu_direct_new("QLinearMatMul", 10);
    cpu_direct_input(d, TSR_DTYPE_UINT8, 2, ad, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, c == 1 ? 1 : 0, four, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_UINT8, 0, NULL, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_INT8, 2, bd, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d3, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_INT8, 1, d3, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, c == 0 ? 1 : 0, two, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_INT8, 0, NULL, NULL, false);
    cpu_direct_output(d, TSR_DTYPE_INT8, 2, c == 2 ? ybad : yd2);
    if (c == 0)
      expect_refused(d, TSR_PLUGIN_REASON_QUANTIZATION, "y_scale");
    if (c == 1)
      expect_refused(d, TSR_PLUGIN_REASON_QUANTIZATION, "a_scale");
    if (c == 2)
      expect_refused(d, TSR_PLUGIN_REASON_SHAPE, "output is [3,3]");
  }
  /* MatMulInteger: float A; int64 Y; inner dims; a b_zero_point along K. */
  for (int c = 0; c < 4; c++) {
    d = cpu_direct_new("MatMulInteger", 10);
    cpu_direct_input(d, c == 0 ? TSR_DTYPE_FLOAT32 : TSR_DTYPE_INT8, 2, c == 2 ? d2 : ad, NULL,
                     false);
    cpu_direct_input(d, TSR_DTYPE_UINT8, 2, bd, NULL, false);
    if (c == 3) {
      cpu_direct_input_absent(d);
      cpu_direct_input(d, TSR_DTYPE_UINT8, 1, four, NULL, false);
    }
    cpu_direct_output(d, c == 1 ? TSR_DTYPE_INT64 : TSR_DTYPE_INT32, 2, yd2);
    if (c == 0)
      expect_refused(d, TSR_PLUGIN_REASON_DTYPE, "float32");
    if (c == 1)
      expect_refused(d, TSR_PLUGIN_REASON_DTYPE, "int64");
    if (c == 2)
      expect_refused(d, TSR_PLUGIN_REASON_SHAPE, "inner dims");
    if (c == 3)
      expect_refused(d, TSR_PLUGIN_REASON_QUANTIZATION, "b_zero_point");
  }
  /* Versions outside the implemented range have no kernel. */
  char err[256];
  d = cpu_direct_new("QuantizeLinear", 9);
  ck_assert_int_eq(cpu_direct_run(d, 1, err, sizeof err), -1);
  cpu_direct_free(d);
  d = cpu_direct_new("DynamicQuantizeLinear", 10);
  ck_assert_int_eq(cpu_direct_run(d, 1, err, sizeof err), -1);
  cpu_direct_free(d);
}
END_TEST

/* run() validates the tensors it is given, whatever check() saw: a kernel is called here
 * directly with run-time tensors that disagree with the node. */
static cpu_tensor mk(uint32_t dt, uint32_t rank, const int64_t *dims, void *data) {
  cpu_tensor t = {.dtype = dt, .rank = rank, .dims = dims, .data = data, .present = true};
  t.count = prod(dims, (int)rank);
  t.nbytes = t.count * cpu_dtype_size(dt);
  return t;
}

static void expect_run_fails(const char *op_type, int64_t opset, uint32_t n_in,
                             const cpu_tensor *in, uint32_t n_out, cpu_tensor *out,
                             const char *needle) {
  const cpu_op *op = cpu_find_op("", op_type, opset);
  ck_assert_ptr_nonnull(op);
  cpu_node node = {.name = "n",
                   .op_type = op_type,
                   .opset = opset,
                   .n_in = n_in,
                   .n_out = n_out,
                   .in = in,
                   .out = out};
  char err[256] = "";
  cpu_ctx ctx = {.pool = NULL, .isa = CPU_ISA_GENERIC, .err = err, .err_size = sizeof err};
  ck_assert_int_eq(op->run(&ctx, &node, NULL, in, out), -1);
  ck_assert_msg(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
}

START_TEST(test_run_validates) {
  float xf[6] = {0}, s = 1, s2[2] = {1, 1};
  uint8_t yb[8] = {0}, zb[2] = {0};
  int32_t yi[16] = {0};
  int64_t d6[1] = {6}, d5[1] = {5}, d2[1] = {2}, d23[2] = {2, 3};
  cpu_tensor in[9], out[3];
  in[0] = mk(TSR_DTYPE_FLOAT32, 1, d6, xf);
  in[1] = mk(TSR_DTYPE_FLOAT32, 0, NULL, &s);
  out[0] = mk(TSR_DTYPE_UINT8, 1, d5, yb);
  expect_run_fails("QuantizeLinear", 13, 2, in, 1, out, "shape of x");
  /* Per-axis scale [2] along axis 1 (3) of [2,3]. */
  in[0] = mk(TSR_DTYPE_FLOAT32, 2, d23, xf);
  in[1] = mk(TSR_DTYPE_FLOAT32, 1, d2, s2);
  in[2] = mk(TSR_DTYPE_UINT8, 1, d2, zb);
  out[0] = mk(TSR_DTYPE_UINT8, 2, d23, yb);
  expect_run_fails("QuantizeLinear", 13, 3, in, 1, out, "does not match");
  /* MatMulInteger with a too small output. */
  int64_t ad[2] = {2, 3}, bd[2] = {3, 2}, yd[2] = {2, 1};
  uint8_t ab[6] = {0}, bb[6] = {0};
  in[0] = mk(TSR_DTYPE_UINT8, 2, ad, ab);
  in[1] = mk(TSR_DTYPE_UINT8, 2, bd, bb);
  out[0] = mk(TSR_DTYPE_INT32, 2, yd, yi);
  expect_run_fails("MatMulInteger", 10, 2, in, 1, out, "output is [2,1]");
  /* ConvInteger whose weights have the wrong channel count. */
  int64_t xd[4] = {1, 2, 3, 3}, wd[4] = {1, 3, 2, 2}, cyd[4] = {1, 1, 2, 2};
  uint8_t xb[18] = {0}, wb[12] = {0};
  in[0] = mk(TSR_DTYPE_UINT8, 4, xd, xb);
  in[1] = mk(TSR_DTYPE_UINT8, 4, wd, wb);
  out[0] = mk(TSR_DTYPE_INT32, 4, cyd, yi);
  expect_run_fails("ConvInteger", 10, 2, in, 1, out, "does not fit");
  /* A missing required input. */
  in[0] = mk(TSR_DTYPE_UINT8, 4, xd, xb);
  expect_run_fails("QLinearConv", 10, 1, in, 1, out, "expects inputs");
}
END_TEST

START_TEST(test_empty_tensors) {
  /* An empty batch, an empty K (the sums are 0) and an empty quantize input. */
  int64_t xd[4] = {0, 2, 4, 4}, wd[4] = {3, 2, 3, 3}, yd[4] = {0, 3, 2, 2};
  cpu_direct *d = cpu_direct_new("ConvInteger", 10);
  cpu_direct_input(d, TSR_DTYPE_UINT8, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_INT8, 4, wd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_INT32, 4, yd);
  RUN_OK(d, 2);
  cpu_direct_free(d);
  int64_t ad[2] = {3, 0}, bd[2] = {0, 5}, od[2] = {3, 5};
  float one = 1.0f;
  int32_t zy = 7;
  d = cpu_direct_new("QLinearMatMul", 10);
  cpu_direct_input(d, TSR_DTYPE_UINT8, 2, ad, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &one, false);
  cpu_direct_input(d, TSR_DTYPE_UINT8, 0, NULL, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_UINT8, 2, bd, NULL, true);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &one, false);
  cpu_direct_input(d, TSR_DTYPE_UINT8, 0, NULL, NULL, true);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &one, false);
  add_q(d, TSR_DTYPE_UINT8, 0, NULL, &zy, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 2, od);
  RUN_OK(d, 2);
  for (size_t i = 0; i < 15; i++)
    ck_assert_int_eq(out_q(cpu_direct_out(d, 0), i), 7);
  cpu_direct_free(d);
  int64_t ed[2] = {4, 0};
  d = cpu_direct_new("QuantizeLinear", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, ed, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, &one, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 2, ed);
  RUN_OK(d, 2);
  cpu_direct_free(d);
}
END_TEST

static Suite *kernels_quant_suite(void) {
  Suite *s = suite_create("kernels_quant");
  TCase *q = tcase_create("quantize");
  tcase_set_timeout(q, 600);
  tcase_add_test(q, test_quantize_random);
  tcase_add_test(q, test_quantize_large);
  tcase_add_test(q, test_dequantize_random);
  tcase_add_test(q, test_dynamic_quantize_random);
  tcase_add_test(q, test_dynamic_quantize_onnx);
  tcase_add_test(q, test_quant_onnx_cases);
  suite_add_tcase(s, q);
  TCase *c = tcase_create("conv");
  tcase_set_timeout(c, 600);
  tcase_add_test(c, test_qlinearconv_random);
  tcase_add_test(c, test_convinteger_random);
  tcase_add_test(c, test_conv_large);
  tcase_add_test(c, test_conv_onnx_cases);
  suite_add_tcase(s, c);
  TCase *m = tcase_create("matmul");
  tcase_set_timeout(m, 600);
  tcase_add_test(m, test_qlinearmatmul_random);
  tcase_add_test(m, test_matmulinteger_random);
  tcase_add_test(m, test_matmul_large);
  tcase_add_test(m, test_matmul_onnx_cases);
  tcase_add_test(m, test_accumulation_wraps);
  suite_add_tcase(s, m);
  TCase *e = tcase_create("errors");
  tcase_add_test(e, test_refusals);
  tcase_add_test(e, test_run_validates);
  tcase_add_test(e, test_empty_tensors);
  suite_add_tcase(s, e);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_quant_suite()) != 0; }
