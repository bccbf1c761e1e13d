/* Unit suite of the element-wise and reduction kernels (devices/cpu/elementwise.c, reduce.c).
 *
 * Kernels run through tests/cpu_direct.h and are compared with naive references written here in
 * float64 (exact int64/uint64 for integer dtypes) on random shapes, random broadcast patterns and
 * random values from a fixed seed, plus fixed cases (ONNX examples, special values, integer edge
 * cases) and error cases, where a kernel must refuse or fail with a message, never crash. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/vmath_avx2.h"
#include "tests/cpu_direct.h"
#include "tests/harness.h"

/* ---- random numbers ---------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static void rng_seed(uint64_t s) { rng_state = s ? s : 1; }

static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static double urand(double lo, double hi) {
  return lo + (hi - lo) * ((double)(rnd() >> 11) / 9007199254740992.0);
}

static int64_t irand(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---- test tensors ------------------------------------------------------------------------- */

#define MAXR 8

typedef struct tensor {
  uint32_t dt, rank;
  int64_t dims[MAXR];
  size_t count;
  void *data;
} tensor;

static size_t dsize(uint32_t dt) { return cpu_dtype_size(dt); }

static bool is_float(uint32_t dt) {
  return dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16;
}

static bool is_unsigned(uint32_t dt) {
  return dt == TSR_DTYPE_UINT8 || dt == TSR_DTYPE_UINT16 || dt == TSR_DTYPE_UINT32 ||
         dt == TSR_DTYPE_UINT64 || dt == TSR_DTYPE_BOOL;
}

static tensor t_new(uint32_t dt, uint32_t rank, const int64_t *dims) {
  tensor t = {.dt = dt, .rank = rank, .count = 1};
  for (uint32_t i = 0; i < rank; i++) {
    t.dims[i] = dims[i];
    t.count *= (size_t)dims[i];
  }
  t.data = calloc(t.count ? t.count : 1, dsize(dt));
  return t;
}

static void t_free(tensor *t) {
  free(t->data);
  t->data = NULL;
}

/* Exact integer value (uint64 values as their bit pattern). */
static int64_t t_geti(const tensor *t, size_t i) {
  const void *p = t->data;
  switch (t->dt) {
  case TSR_DTYPE_INT8: return ((const int8_t *)p)[i];
  case TSR_DTYPE_INT16: return ((const int16_t *)p)[i];
  case TSR_DTYPE_INT32: return ((const int32_t *)p)[i];
  case TSR_DTYPE_INT64: return ((const int64_t *)p)[i];
  case TSR_DTYPE_BOOL:
  case TSR_DTYPE_UINT8: return ((const uint8_t *)p)[i];
  case TSR_DTYPE_UINT16: return ((const uint16_t *)p)[i];
  case TSR_DTYPE_UINT32: return ((const uint32_t *)p)[i];
  case TSR_DTYPE_UINT64: return (int64_t)((const uint64_t *)p)[i];
  default: return 0;
  }
}

static double t_get(const tensor *t, size_t i) {
  const void *p = t->data;
  switch (t->dt) {
  case TSR_DTYPE_FLOAT32: return ((const float *)p)[i];
  case TSR_DTYPE_FLOAT64: return ((const double *)p)[i];
  case TSR_DTYPE_FLOAT16: return cpu_half_to_float(((const uint16_t *)p)[i]);
  case TSR_DTYPE_UINT64: return (double)((const uint64_t *)p)[i];
  default: return (double)t_geti(t, i);
  }
}

/* Stores v (exact integer for integer dtypes; wraps to the dtype's width). */
static void t_seti(tensor *t, size_t i, int64_t v) {
  void *p = t->data;
  switch (t->dt) {
  case TSR_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
  case TSR_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
  case TSR_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
  case TSR_DTYPE_INT64: ((int64_t *)p)[i] = v; break;
  case TSR_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; break;
  case TSR_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; break;
  case TSR_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; break;
  case TSR_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
  case TSR_DTYPE_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
  default: break;
  }
}

static void t_set(tensor *t, size_t i, double v) {
  switch (t->dt) {
  case TSR_DTYPE_FLOAT32: ((float *)t->data)[i] = (float)v; break;
  case TSR_DTYPE_FLOAT64: ((double *)t->data)[i] = v; break;
  case TSR_DTYPE_FLOAT16: ((uint16_t *)t->data)[i] = cpu_float_to_half((float)v); break;
  default: t_seti(t, i, (int64_t)v); break;
  }
}

static void t_fill(tensor *t, double lo, double hi) {
  for (size_t i = 0; i < t->count; i++) {
    if (is_float(t->dt))
      t_set(t, i, urand(lo, hi));
    else
      t_seti(t, i, irand((int64_t)lo, (int64_t)hi));
  }
}

/* Random bit patterns: the whole range of an integer dtype. */
static void t_fill_bits(tensor *t) {
  for (size_t i = 0; i < t->count; i++)
    t_seti(t, i, (int64_t)rnd());
}

/* Rounds a reference value to what the dtype can hold. */
static double round_to(uint32_t dt, double v) {
  if (dt == TSR_DTYPE_FLOAT32)
    return (float)v;
  if (dt == TSR_DTYPE_FLOAT16)
    return cpu_half_to_float(cpu_float_to_half((float)v));
  return v;
}

/* Whether got matches ref (float64 reference) for dtype dt; mag scales the absolute slack. */
static bool close_to(double got, double ref, uint32_t dt, double rtol, double mag) {
  ref = round_to(dt, ref);
  if (isnan(ref))
    return isnan(got);
  if (isinf(ref))
    return got == ref;
  if (got == ref)
    return true;
  double r = rtol > 0                  ? rtol
             : dt == TSR_DTYPE_FLOAT64 ? 1e-12
             : dt == TSR_DTYPE_FLOAT16 ? 2e-3
                                       : 1e-5;
  double a = dt == TSR_DTYPE_FLOAT16 ? 1e-4 : dt == TSR_DTYPE_FLOAT64 ? 1e-14 : 1e-6;
  return fabs(got - ref) <= r * fabs(ref) + a * (mag > 1 ? mag : 1);
}

static const uint32_t float_dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16};
static const uint32_t int_dts[] = {TSR_DTYPE_INT8,   TSR_DTYPE_INT16, TSR_DTYPE_INT32,
                                   TSR_DTYPE_INT64,  TSR_DTYPE_UINT8, TSR_DTYPE_UINT16,
                                   TSR_DTYPE_UINT32, TSR_DTYPE_UINT64};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- running kernels ---------------------------------------------------------------------- */

static void d_in(cpu_direct *d, const tensor *t, bool is_const) {
  cpu_direct_input(d, t->dt, t->rank, t->dims, t->data, is_const);
}

/* Runs and asserts success; returns output k as a tensor view (owned by d). */
static void d_run_ok(cpu_direct *d, size_t threads, const char *what) {
  char err[256];
  int rc = cpu_direct_run(d, threads, err, sizeof err);
  ck_assert_msg(rc == 0, "%s: rc %d: %s", what, rc, err);
}

static tensor d_out(cpu_direct *d, uint32_t k) {
  cpu_tensor *o = cpu_direct_out(d, k);
  tensor t = {.dt = o->dtype, .rank = o->rank, .count = o->count, .data = o->data};
  for (uint32_t i = 0; i < o->rank; i++)
    t.dims[i] = o->dims[i];
  return t;
}

/* Expects a refusal (positive reason) or failure (-1) with a message. */
static int d_run_err(cpu_direct *d, const char *what) {
  char err[256];
  int rc = cpu_direct_run(d, 1, err, sizeof err);
  ck_assert_msg(rc != 0, "%s: expected an error", what);
  ck_assert_msg(err[0] != '\0', "%s: error without a message", what);
  return rc;
}

/* Runs an op's run() directly, bypassing check(), to test run()'s own validation. */
static int no_attr(const tsr_plugin_graph *g, uint32_t node, const char *name,
                   tsr_plugin_attr *out) {
  return 0;
}
static const tsr_plugin_graph_api no_attr_api = {.struct_size = sizeof(tsr_plugin_graph_api),
                                                 .node_attr = no_attr};

static cpu_tensor as_cpu(const tensor *t) {
  cpu_tensor c = {.dtype = t->dt,
                  .rank = t->rank,
                  .dims = t->dims,
                  .data = t->data,
                  .count = t->count,
                  .nbytes = t->count * dsize(t->dt),
                  .present = true};
  return c;
}

static int run_direct(const char *op_type, int64_t opset, uint32_t n_in, const tensor *ins,
                      uint32_t n_out, tensor *outs, char *err, size_t err_size) {
  const cpu_op *op = cpu_find_op("", op_type, opset);
  ck_assert_msg(op != NULL, "no kernel for %s", op_type);
  cpu_tensor in[4], out[4];
  for (uint32_t k = 0; k < n_in; k++)
    in[k] = as_cpu(&ins[k]);
  for (uint32_t k = 0; k < n_out; k++)
    out[k] = as_cpu(&outs[k]);
  cpu_node node = {.g = (const tsr_plugin_graph *)1,
                   .api = &no_attr_api,
                   .name = "direct",
                   .op_type = op_type,
                   .opset = opset,
                   .n_in = n_in,
                   .n_out = n_out,
                   .in = in,
                   .out = out};
  cpu_ctx ctx = {.pool = NULL, .isa = CPU_ISA_GENERIC, .err = err, .err_size = err_size};
  err[0] = '\0';
  return op->run(&ctx, &node, NULL, in, out);
}

/* ---- shapes and broadcasting -------------------------------------------------------------- */

/* A random shape: rank 0..max_rank, dims 1..max_dim, sometimes one long dim. */
static uint32_t rand_shape(int64_t *dims, uint32_t max_rank, int64_t max_dim) {
  uint32_t rank = (uint32_t)irand(0, max_rank);
  for (uint32_t i = 0; i < rank; i++)
    dims[i] = irand(1, max_dim);
  if (rank && irand(0, 3) == 0)
    dims[irand(0, rank - 1)] = irand(9, 80);
  return rank;
}

/* Derives an input shape that broadcasts to out: leading dims dropped, some dims set to 1. */
static uint32_t bcast_shape(int64_t *dims, uint32_t out_rank, const int64_t *out) {
  uint32_t drop = (uint32_t)irand(0, out_rank);
  if (irand(0, 2) == 0)
    drop = 0;
  uint32_t rank = out_rank - drop;
  for (uint32_t i = 0; i < rank; i++)
    dims[i] = irand(0, 2) == 0 ? 1 : out[drop + i];
  return rank;
}

/* The broadcast of shapes; returns its rank. */
static uint32_t bcast_of(uint32_t n, const tensor *ts, int64_t *out) {
  uint32_t rank = 0;
  for (uint32_t k = 0; k < n; k++)
    rank = ts[k].rank > rank ? ts[k].rank : rank;
  for (uint32_t j = 0; j < rank; j++) {
    int64_t b = 1;
    for (uint32_t k = 0; k < n; k++) {
      int32_t id = (int32_t)j - (int32_t)(rank - ts[k].rank);
      int64_t d = id >= 0 ? ts[k].dims[id] : 1;
      if (d != 1)
        b = d;
    }
    out[j] = b;
  }
  return rank;
}

/* The element of t that output element `flat` (of shape out) reads under broadcasting. */
static size_t bidx(const tensor *t, uint32_t orank, const int64_t *odims, size_t flat) {
  size_t idx = 0, mul = 1;
  for (int32_t d = (int32_t)orank - 1; d >= 0; d--) {
    size_t c = flat % (size_t)odims[d];
    flat /= (size_t)odims[d];
    int32_t id = d - (int32_t)(orank - t->rank);
    if (id < 0)
      continue;
    if (t->dims[id] != 1)
      idx += c * mul;
    mul *= (size_t)t->dims[id];
  }
  return idx;
}

/* ---- binary float ops ------------------------------------------------------------------------ */

typedef enum {
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_DIV,
  OP_POW,
  OP_MAX,
  OP_MIN,
  OP_MOD,
  OP_FMOD,
  OP_PRELU,
  OP_EQ,
  OP_LT,
  OP_GT,
  OP_LE,
  OP_GE
} bop;

static const struct {
  const char *name;
  int64_t opset;
  bool cmp;
} bops[] = {
    [OP_ADD] = {"Add", 14, false},          [OP_SUB] = {"Sub", 14, false},
    [OP_MUL] = {"Mul", 14, false},          [OP_DIV] = {"Div", 14, false},
    [OP_POW] = {"Pow", 15, false},          [OP_MAX] = {"Max", 13, false},
    [OP_MIN] = {"Min", 13, false},          [OP_MOD] = {"Mod", 13, false},
    [OP_FMOD] = {"Mod", 13, false},         [OP_PRELU] = {"PRelu", 16, false},
    [OP_EQ] = {"Equal", 13, true},          [OP_LT] = {"Less", 13, true},
    [OP_GT] = {"Greater", 13, true},        [OP_LE] = {"LessOrEqual", 16, true},
    [OP_GE] = {"GreaterOrEqual", 16, true},
};

static double ref_fbin(bop op, double a, double b) {
  switch (op) {
  case OP_ADD: return a + b;
  case OP_SUB: return a - b;
  case OP_MUL: return a * b;
  case OP_DIV: return a / b;
  case OP_POW: return pow(a, b);
  case OP_MAX: return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
  case OP_MIN: return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
  case OP_MOD: { /* the sign of the divisor */
    double r = fmod(a, b);
    return r != 0 && (r < 0) != (b < 0) ? r + b : r;
  }
  case OP_FMOD: return fmod(a, b);
  case OP_PRELU: return a < 0 ? a * b : a;
  case OP_EQ: return a == b;
  case OP_LT: return a < b;
  case OP_GT: return a > b;
  case OP_LE: return a <= b;
  case OP_GE: return a >= b;
  }
  return 0;
}

static void fill_for(bop op, tensor *t, int which) {
  if (op == OP_POW && which == 0)
    t_fill(t, 0.1, 4);
  else if (op == OP_POW)
    t_fill(t, -3, 3);
  else if ((op == OP_DIV || op == OP_MOD || op == OP_FMOD) && which == 1) {
    t_fill(t, 0.5, 3);
    for (size_t i = 0; i < t->count; i++)
      if (rnd() & 1)
        t_set(t, i, -t_get(t, i));
  } else if (op >= OP_EQ) {
    t_fill(t, -2, 2); /* few distinct values so that equality happens */
    for (size_t i = 0; i < t->count; i++)
      t_set(t, i, round(t_get(t, i)));
  } else {
    t_fill(t, -10, 10);
  }
}

/* Runs one random case of a binary float op and compares with the reference. */
static void check_fbin_case(bop op, uint32_t dt, size_t threads) {
  int64_t od[MAXR], ad[MAXR], bd[MAXR];
  uint32_t orank = rand_shape(od, 4, 6);
  uint32_t ar = op == OP_PRELU ? orank : bcast_shape(ad, orank, od);
  if (op == OP_PRELU)
    memcpy(ad, od, sizeof od);
  uint32_t br = bcast_shape(bd, orank, od);
  tensor ab[2] = {t_new(dt, ar, ad), t_new(dt, br, bd)};
  fill_for(op, &ab[0], 0);
  fill_for(op, &ab[1], 1);
  int64_t outd[MAXR];
  uint32_t outr = bcast_of(2, ab, outd);
  if (op == OP_PRELU) {
    outr = ar;
    memcpy(outd, ad, sizeof ad);
  }
  cpu_direct *d = cpu_direct_new(bops[op].name, bops[op].opset);
  if (op == OP_FMOD)
    cpu_direct_attr_int(d, "fmod", 1);
  if (op == OP_MOD && dt != TSR_DTYPE_FLOAT64)
    cpu_direct_attr_int(d, "fmod", 0);
  d_in(d, &ab[0], false);
  d_in(d, &ab[1], irand(0, 1));
  uint32_t odt = bops[op].cmp ? TSR_DTYPE_BOOL : dt;
  cpu_direct_output(d, odt, outr, outd);
  d_run_ok(d, threads, bops[op].name);
  tensor y = d_out(d, 0);
  for (size_t i = 0; i < y.count; i++) {
    double a = t_get(&ab[0], bidx(&ab[0], outr, outd, i));
    double b = t_get(&ab[1], bidx(&ab[1], outr, outd, i));
    double ref = ref_fbin(op, a, b);
    double got = t_get(&y, i);
    if (bops[op].cmp) {
      ck_assert_msg(got == ref, "%s %s [%zu]: %g vs %g (a %g b %g)", bops[op].name,
                    cpu_dtype_name(dt), i, got, ref, a, b);
    } else {
      double mag = op == OP_MOD || op == OP_FMOD ? fabs(a) + fabs(b) : 1;
      ck_assert_msg(close_to(got, ref, dt, 0, mag), "%s %s [%zu]: got %.9g want %.9g (a %g b %g)",
                    bops[op].name, cpu_dtype_name(dt), i, got, ref, a, b);
    }
  }
  cpu_direct_free(d);
  t_free(&ab[0]);
  t_free(&ab[1]);
}

static void binary_float_body(void) {
  rng_seed(1);
  for (int iter = 0; iter < 60; iter++)
    for (bop op = OP_ADD; op <= OP_GE; op++)
      for (size_t k = 0; k < NELEM(float_dts); k++)
        check_fbin_case(op, float_dts[k], iter % 3 == 0 ? 3 : 1);
}
START_TEST(binary_float_random) { binary_float_body(); }
END_TEST

/* Hand-picked broadcast patterns: scalar, per-channel, row, column, both ways. */
START_TEST(binary_broadcast_patterns) {
  static const struct {
    uint32_t ar, br;
    int64_t a[4], b[4];
  } cases[] = {
      {4, 0, {2, 3, 4, 5}, {0}},
      {0, 4, {0}, {2, 3, 4, 5}},
      {4, 3, {2, 3, 4, 5}, {3, 1, 1}},
      {4, 1, {2, 3, 4, 5}, {5}},
      {2, 2, {7, 1}, {1, 9}},
      {3, 3, {1, 4, 1}, {3, 1, 6}},
      {4, 4, {2, 3, 4, 5}, {2, 3, 4, 5}},
      {4, 4, {1, 3, 1, 5}, {2, 1, 4, 1}},
      {2, 1, {0, 5}, {5}},
      {3, 3, {2, 0, 3}, {1, 1, 3}},
      {1, 1, {1}, {1}},
      {2, 2, {40, 33}, {40, 1}},
  };
  rng_seed(2);
  for (size_t c = 0; c < NELEM(cases); c++) {
    tensor ab[2] = {t_new(TSR_DTYPE_FLOAT32, cases[c].ar, cases[c].a),
                    t_new(TSR_DTYPE_FLOAT32, cases[c].br, cases[c].b)};
    t_fill(&ab[0], -5, 5);
    t_fill(&ab[1], -5, 5);
    int64_t od[MAXR];
    uint32_t orank = bcast_of(2, ab, od);
    for (size_t threads = 1; threads <= 4; threads += 3) {
      cpu_direct *d = cpu_direct_new("Sub", 14);
      d_in(d, &ab[0], false);
      d_in(d, &ab[1], false);
      cpu_direct_output(d, TSR_DTYPE_FLOAT32, orank, od);
      d_run_ok(d, threads, "Sub pattern");
      tensor y = d_out(d, 0);
      for (size_t i = 0; i < y.count; i++) {
        float want = (float)t_get(&ab[0], bidx(&ab[0], orank, od, i)) -
                     (float)t_get(&ab[1], bidx(&ab[1], orank, od, i));
        ck_assert_msg(((float *)y.data)[i] == want, "case %zu [%zu]", c, i);
      }
      cpu_direct_free(d);
    }
    t_free(&ab[0]);
    t_free(&ab[1]);
  }
}
END_TEST

/* ---- binary integer ops: exact -------------------------------------------------------------- */

/* Sign-extends or truncates v to dtype dt's width, as a wrapped result. */
static int64_t wrap_to(uint32_t dt, int64_t v) {
  tensor t = {.dt = dt, .count = 1};
  uint64_t buf = 0;
  t.data = &buf;
  t_seti(&t, 0, v);
  return t_geti(&t, 0);
}

static int64_t ref_ibin(bop op, uint32_t dt, int64_t a, int64_t b) {
  bool u = is_unsigned(dt);
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  switch (op) {
  case OP_ADD: return wrap_to(dt, (int64_t)(ua + ub));
  case OP_SUB: return wrap_to(dt, (int64_t)(ua - ub));
  case OP_MUL: return wrap_to(dt, (int64_t)(ua * ub));
  case OP_DIV:
    if (b == 0)
      return 0;
    if (u)
      return (int64_t)(ua / ub);
    if (b == -1)
      return wrap_to(dt, (int64_t)(0 - ua));
    return a / b;
  case OP_MOD:
  case OP_FMOD: {
    if (b == 0)
      return 0;
    if (u)
      return (int64_t)(ua % ub);
    if (b == -1)
      return 0;
    /* Truncated remainder, then (Mod) moved to the divisor's sign via floor division. */
    int64_t q = a / b, r = a - q * b;
    if (op == OP_MOD && r != 0 && ((r < 0) != (b < 0)))
      r += b;
    return r;
  }
  case OP_MAX: return u ? (ua > ub ? a : b) : (a > b ? a : b);
  case OP_MIN: return u ? (ua < ub ? a : b) : (a < b ? a : b);
  case OP_PRELU: return !u && a < 0 ? wrap_to(dt, (int64_t)(ua * ub)) : a;
  case OP_EQ: return a == b;
  case OP_LT: return u ? ua < ub : a < b;
  case OP_GT: return u ? ua > ub : a > b;
  case OP_LE: return u ? ua <= ub : a <= b;
  case OP_GE: return u ? ua >= ub : a >= b;
  default: return 0;
  }
}

START_TEST(binary_int_random) {
  rng_seed(3);
  static const bop ops[] = {OP_ADD, OP_SUB,   OP_MUL, OP_DIV, OP_MOD, OP_FMOD, OP_MAX,
                            OP_MIN, OP_PRELU, OP_EQ,  OP_LT,  OP_GT,  OP_LE,   OP_GE};
  for (int iter = 0; iter < 25; iter++) {
    for (size_t o = 0; o < NELEM(ops); o++) {
      for (size_t k = 0; k < NELEM(int_dts); k++) {
        bop op = ops[o];
        uint32_t dt = int_dts[k];
        int64_t od[MAXR], ad[MAXR], bd[MAXR];
        uint32_t orank = rand_shape(od, 3, 5);
        uint32_t ar = op == OP_PRELU ? orank : bcast_shape(ad, orank, od);
        if (op == OP_PRELU)
          memcpy(ad, od, sizeof od);
        uint32_t br = bcast_shape(bd, orank, od);
        tensor ab[2] = {t_new(dt, ar, ad), t_new(dt, br, bd)};
        /* Full-range bit patterns half the time (overflow, extremes), small values else. */
        for (int w = 0; w < 2; w++) {
          if (iter % 2)
            t_fill_bits(&ab[w]);
          else
            t_fill(&ab[w], is_unsigned(dt) ? 0 : -20, 20);
        }
        /* Division by 0 and by -1 (INT_MIN / -1) on purpose now and then. */
        if (ab[1].count && (op == OP_DIV || op == OP_MOD || op == OP_FMOD)) {
          t_seti(&ab[1], 0, 0);
          if (ab[1].count > 1)
            t_seti(&ab[1], 1, -1);
        }
        int64_t outd[MAXR];
        uint32_t outr = bcast_of(2, ab, outd);
        if (op == OP_PRELU) {
          outr = ar;
          memcpy(outd, ad, sizeof ad);
        }
        if (op == OP_PRELU && dt != TSR_DTYPE_INT32 && dt != TSR_DTYPE_INT64 &&
            dt != TSR_DTYPE_UINT32 && dt != TSR_DTYPE_UINT64) {
          t_free(&ab[0]);
          t_free(&ab[1]);
          continue;
        }
        cpu_direct *d = cpu_direct_new(bops[op].name, bops[op].opset);
        if (op == OP_FMOD)
          cpu_direct_attr_int(d, "fmod", 1);
        d_in(d, &ab[0], false);
        d_in(d, &ab[1], false);
        cpu_direct_output(d, bops[op].cmp ? TSR_DTYPE_BOOL : dt, outr, outd);
        d_run_ok(d, iter % 4 == 1 ? 3 : 1, bops[op].name);
        tensor y = d_out(d, 0);
        for (size_t i = 0; i < y.count; i++) {
          int64_t a = t_geti(&ab[0], bidx(&ab[0], outr, outd, i));
          int64_t b = t_geti(&ab[1], bidx(&ab[1], outr, outd, i));
          int64_t want = ref_ibin(op, dt, a, b), got = t_geti(&y, i);
          ck_assert_msg(got == want, "%s %s [%zu]: %lld op %lld = %lld, want %lld", bops[op].name,
                        cpu_dtype_name(dt), i, (long long)a, (long long)b, (long long)got,
                        (long long)want);
        }
        cpu_direct_free(d);
        t_free(&ab[0]);
        t_free(&ab[1]);
      }
    }
  }
}
END_TEST

/* Runs a binary op on 1-D inputs of n values given as doubles; returns output i as double. */
static double run_bin1(const char *op, int64_t opset, uint32_t adt, uint32_t bdt, uint32_t odt,
                       double a, double b) {
  int64_t one = 1;
  tensor ta = t_new(adt, 1, &one), tb = t_new(bdt, 1, &one);
  t_set(&ta, 0, a);
  t_set(&tb, 0, b);
  cpu_direct *d = cpu_direct_new(op, opset);
  d_in(d, &ta, false);
  d_in(d, &tb, false);
  cpu_direct_output(d, odt, 1, &one);
  d_run_ok(d, 1, op);
  tensor y = d_out(d, 0);
  double r = t_get(&y, 0);
  cpu_direct_free(d);
  t_free(&ta);
  t_free(&tb);
  return r;
}

START_TEST(binary_int_edges) {
  const uint32_t I32 = TSR_DTYPE_INT32, I64 = TSR_DTYPE_INT64, U8 = TSR_DTYPE_UINT8;
  /* Division truncates toward zero; Mod follows the divisor, fmod the dividend. */
  ck_assert(run_bin1("Div", 14, I32, I32, I32, -7, 2) == -3);
  ck_assert(run_bin1("Div", 14, I32, I32, I32, 7, -2) == -3);
  ck_assert(run_bin1("Div", 14, I32, I32, I32, 5, 0) == 0);
  ck_assert(run_bin1("Div", 14, I32, I32, I32, -2147483648.0, -1) == -2147483648.0);
  ck_assert(run_bin1("Mod", 13, I32, I32, I32, -7, 3) == 2);
  ck_assert(run_bin1("Mod", 13, I32, I32, I32, 7, -3) == -2);
  ck_assert(run_bin1("Mod", 13, I32, I32, I32, -2147483648.0, -1) == 0);
  ck_assert(run_bin1("Add", 14, U8, U8, U8, 250, 10) == 4);
  ck_assert(run_bin1("Sub", 14, U8, U8, U8, 3, 10) == 249);
  ck_assert(run_bin1("Mul", 14, I32, I32, I32, 65536, 65536) == 0);
  /* int64 beyond 2^53 stays exact (no trip through double). */
  int64_t one = 1;
  tensor a = t_new(I64, 1, &one), b = t_new(I64, 1, &one);
  ((int64_t *)a.data)[0] = INT64_C(9007199254740993);
  ((int64_t *)b.data)[0] = 1;
  cpu_direct *d = cpu_direct_new("Add", 14);
  d_in(d, &a, false);
  d_in(d, &b, false);
  cpu_direct_output(d, I64, 1, &one);
  d_run_ok(d, 1, "Add int64");
  ck_assert(((int64_t *)d_out(d, 0).data)[0] == INT64_C(9007199254740994));
  cpu_direct_free(d);
  d = cpu_direct_new("Div", 14);
  ((int64_t *)a.data)[0] = INT64_C(9007199254740993) * 3;
  ((int64_t *)b.data)[0] = 3;
  d_in(d, &a, false);
  d_in(d, &b, false);
  cpu_direct_output(d, I64, 1, &one);
  d_run_ok(d, 1, "Div int64");
  ck_assert(((int64_t *)d_out(d, 0).data)[0] == INT64_C(9007199254740993));
  cpu_direct_free(d);
  t_free(&a);
  t_free(&b);
}
END_TEST

/* ---- Pow with mixed dtypes ------------------------------------------------------------------- */

static int64_t ref_ipow(int64_t b, int64_t e) {
  if (e < 0)
    return b == 1 ? 1 : b == -1 ? ((e & 1) ? -1 : 1) : 0;
  uint64_t r = 1;
  for (int64_t i = 0; i < e; i++)
    r *= (uint64_t)b;
  return (int64_t)r;
}

START_TEST(pow_mixed) {
  const uint32_t F32 = TSR_DTYPE_FLOAT32, F64 = TSR_DTYPE_FLOAT64, F16 = TSR_DTYPE_FLOAT16;
  const uint32_t I32 = TSR_DTYPE_INT32, I64 = TSR_DTYPE_INT64, U32 = TSR_DTYPE_UINT32,
                 U64 = TSR_DTYPE_UINT64, I8 = TSR_DTYPE_INT8;
  /* The ONNX examples: [1,2,3] ** [4,5,6]. */
  static const uint32_t pairs[][2] = {{F32, I32}, {F32, I64}, {F32, U32}, {F32, U64}, {I32, F32},
                                      {I32, I32}, {I64, F32}, {I64, I64}, {F64, F32}, {F16, F16},
                                      {F16, I64}, {F32, F64}, {F64, I8},  {I32, I64}};
  for (size_t p = 0; p < NELEM(pairs); p++)
    for (int k = 0; k < 3; k++) {
      double want = pow(1 + k, 4 + k);
      double got = run_bin1("Pow", 15, pairs[p][0], pairs[p][1], pairs[p][0], 1 + k, 4 + k);
      ck_assert_msg(got == want, "Pow %s %s: %g vs %g", cpu_dtype_name(pairs[p][0]),
                    cpu_dtype_name(pairs[p][1]), got, want);
    }
  /* Integer powers are exact, wrap, and truncate negative exponents. */
  rng_seed(4);
  for (int i = 0; i < 400; i++) {
    int64_t b = irand(-6, 6), e = irand(-3, 25);
    int64_t want = ref_ipow(b, e);
    ck_assert(run_bin1("Pow", 15, I64, I64, I64, (double)b, (double)e) == (double)want);
    ck_assert(run_bin1("Pow", 15, I32, I32, I32, (double)b, (double)e) == (double)(int32_t)want);
  }
  ck_assert(run_bin1("Pow", 15, I32, F32, I32, 2, 0.5) == 1);            /* 1.41 truncated */
  ck_assert(run_bin1("Pow", 15, I32, F32, I32, -8, 0.5) == 0);           /* NaN gives 0 */
  ck_assert(run_bin1("Pow", 15, I32, F32, I32, 10, 20) == 2147483647.0); /* saturates */
  ck_assert(run_bin1("Pow", 15, F32, F32, F32, -2, 3) == -8);
  ck_assert(isnan(run_bin1("Pow", 15, F32, F32, F32, -2, 0.5)));
  ck_assert(run_bin1("Pow", 7, F32, F32, F32, 3, 2) == 9);
}
END_TEST

/* ---- BitShift and logic ------------------------------------------------------------------- */

START_TEST(bitshift_random) {
  static const uint32_t dts[] = {TSR_DTYPE_UINT8, TSR_DTYPE_UINT16, TSR_DTYPE_UINT32,
                                 TSR_DTYPE_UINT64};
  rng_seed(5);
  for (int iter = 0; iter < 40; iter++)
    for (size_t k = 0; k < NELEM(dts); k++)
      for (int left = 0; left < 2; left++) {
        uint32_t dt = dts[k];
        unsigned bits = (unsigned)(8 * dsize(dt));
        int64_t od[MAXR], ad[MAXR], bd[MAXR];
        uint32_t orank = rand_shape(od, 3, 5);
        uint32_t ar = bcast_shape(ad, orank, od), br = bcast_shape(bd, orank, od);
        tensor ab[2] = {t_new(dt, ar, ad), t_new(dt, br, bd)};
        t_fill_bits(&ab[0]);
        t_fill(&ab[1], 0, bits + 3);
        int64_t outd[MAXR];
        uint32_t outr = bcast_of(2, ab, outd);
        cpu_direct *d = cpu_direct_new("BitShift", 11);
        cpu_direct_attr_string(d, "direction", left ? "LEFT" : "RIGHT");
        d_in(d, &ab[0], false);
        d_in(d, &ab[1], false);
        cpu_direct_output(d, dt, outr, outd);
        d_run_ok(d, 1, "BitShift");
        tensor y = d_out(d, 0);
        for (size_t i = 0; i < y.count; i++) {
          uint64_t a = (uint64_t)t_geti(&ab[0], bidx(&ab[0], outr, outd, i));
          uint64_t s = (uint64_t)t_geti(&ab[1], bidx(&ab[1], outr, outd, i));
          uint64_t want = s >= bits ? 0 : left ? a << s : a >> s;
          want = (uint64_t)wrap_to(dt, (int64_t)want);
          ck_assert_msg((uint64_t)t_geti(&y, i) == want, "BitShift %s", cpu_dtype_name(dt));
        }
        cpu_direct_free(d);
        t_free(&ab[0]);
        t_free(&ab[1]);
      }
}
END_TEST

START_TEST(logic_random) {
  static const char *names[] = {"And", "Or", "Xor", "Equal"};
  rng_seed(6);
  for (int iter = 0; iter < 60; iter++)
    for (int o = 0; o < 4; o++) {
      int64_t od[MAXR], ad[MAXR], bd[MAXR];
      uint32_t orank = rand_shape(od, 4, 5);
      uint32_t ar = bcast_shape(ad, orank, od), br = bcast_shape(bd, orank, od);
      tensor ab[2] = {t_new(TSR_DTYPE_BOOL, ar, ad), t_new(TSR_DTYPE_BOOL, br, bd)};
      t_fill(&ab[0], 0, 1);
      t_fill(&ab[1], 0, 1);
      int64_t outd[MAXR];
      uint32_t outr = bcast_of(2, ab, outd);
      cpu_direct *d = cpu_direct_new(names[o], o == 3 ? 13 : 7);
      d_in(d, &ab[0], false);
      d_in(d, &ab[1], false);
      cpu_direct_output(d, TSR_DTYPE_BOOL, outr, outd);
      d_run_ok(d, 1, names[o]);
      tensor y = d_out(d, 0);
      for (size_t i = 0; i < y.count; i++) {
        int a = t_geti(&ab[0], bidx(&ab[0], outr, outd, i)) != 0;
        int b = t_geti(&ab[1], bidx(&ab[1], outr, outd, i)) != 0;
        int want = o == 0 ? a & b : o == 1 ? a | b : o == 2 ? a ^ b : a == b;
        ck_assert_msg(t_geti(&y, i) == want, "%s", names[o]);
      }
      cpu_direct_free(d);
      t_free(&ab[0]);
      t_free(&ab[1]);
    }
  /* Not. */
  int64_t dims[2] = {3, 7};
  tensor x = t_new(TSR_DTYPE_BOOL, 2, dims);
  t_fill(&x, 0, 1);
  cpu_direct *d = cpu_direct_new("Not", 1);
  d_in(d, &x, false);
  cpu_direct_output(d, TSR_DTYPE_BOOL, 2, dims);
  d_run_ok(d, 1, "Not");
  tensor y = d_out(d, 0);
  for (size_t i = 0; i < y.count; i++)
    ck_assert(t_geti(&y, i) == !t_geti(&x, i));
  cpu_direct_free(d);
  t_free(&x);
}
END_TEST

/* ---- variadic Sum/Mean/Max/Min and Where -------------------------------------------------------
 */

START_TEST(variadic_random) {
  static const char *names[] = {"Sum", "Mean", "Max", "Min"};
  rng_seed(7);
  for (int iter = 0; iter < 50; iter++)
    for (int o = 0; o < 4; o++) {
      bool ints = o >= 2 && iter % 2;
      uint32_t dt = ints ? int_dts[iter % NELEM(int_dts)] : float_dts[iter % NELEM(float_dts)];
      uint32_t n = (uint32_t)irand(1, 5);
      int64_t od[MAXR];
      uint32_t orank = rand_shape(od, 4, 5);
      tensor ins[5];
      for (uint32_t k = 0; k < n; k++) {
        int64_t dk[MAXR];
        uint32_t rk = n == 1 ? orank : bcast_shape(dk, orank, od);
        if (n == 1)
          memcpy(dk, od, sizeof od);
        ins[k] = t_new(dt, rk, dk);
        if (ints)
          t_fill_bits(&ins[k]);
        else
          t_fill(&ins[k], -10, 10);
      }
      if (ins[0].count && !ints && dt != TSR_DTYPE_FLOAT16 && o >= 2)
        t_set(&ins[0], 0, NAN); /* NaN propagates through Max/Min */
      int64_t outd[MAXR];
      uint32_t outr = bcast_of(n, ins, outd);
      cpu_direct *d = cpu_direct_new(names[o], o < 2 ? 13 : 13);
      for (uint32_t k = 0; k < n; k++)
        d_in(d, &ins[k], false);
      cpu_direct_output(d, dt, outr, outd);
      d_run_ok(d, iter % 5 == 0 ? 3 : 1, names[o]);
      tensor y = d_out(d, 0);
      for (size_t i = 0; i < y.count; i++) {
        if (ints) {
          int64_t want = t_geti(&ins[0], bidx(&ins[0], outr, outd, i));
          for (uint32_t k = 1; k < n; k++)
            want = ref_ibin(o == 2 ? OP_MAX : OP_MIN, dt, want,
                            t_geti(&ins[k], bidx(&ins[k], outr, outd, i)));
          ck_assert_msg(t_geti(&y, i) == want, "%s %s", names[o], cpu_dtype_name(dt));
          continue;
        }
        double acc = t_get(&ins[0], bidx(&ins[0], outr, outd, i)), mag = fabs(acc);
        for (uint32_t k = 1; k < n; k++) {
          double v = t_get(&ins[k], bidx(&ins[k], outr, outd, i));
          mag += fabs(v);
          acc = o < 2 ? acc + v : ref_fbin(o == 2 ? OP_MAX : OP_MIN, acc, v);
          if (dt == TSR_DTYPE_FLOAT16 && o < 2)
            acc = round_to(dt, acc); /* rounds each step */
        }
        if (o == 1)
          acc /= n;
        ck_assert_msg(close_to(t_get(&y, i), acc, dt, dt == TSR_DTYPE_FLOAT16 ? 4e-3 : 0, mag),
                      "%s %s n=%u [%zu]: %g vs %g", names[o], cpu_dtype_name(dt), n, i,
                      t_get(&y, i), acc);
      }
      cpu_direct_free(d);
      for (uint32_t k = 0; k < n; k++)
        t_free(&ins[k]);
    }
}
END_TEST

START_TEST(where_random) {
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_INT64, TSR_DTYPE_UINT8,
                                 TSR_DTYPE_FLOAT16, TSR_DTYPE_BOOL,  TSR_DTYPE_INT16,
                                 TSR_DTYPE_FLOAT64, TSR_DTYPE_INT32};
  rng_seed(8);
  for (int iter = 0; iter < 120; iter++) {
    uint32_t dt = dts[iter % NELEM(dts)];
    int64_t od[MAXR], dd[3][MAXR];
    uint32_t orank = rand_shape(od, 4, 5);
    tensor t[3];
    for (int k = 0; k < 3; k++) {
      uint32_t r = bcast_shape(dd[k], orank, od);
      t[k] = t_new(k == 0 ? TSR_DTYPE_BOOL : dt, r, dd[k]);
      if (k == 0)
        t_fill(&t[k], 0, 1);
      else if (is_float(dt))
        t_fill(&t[k], -9, 9);
      else
        t_fill_bits(&t[k]);
    }
    int64_t outd[MAXR];
    uint32_t outr = bcast_of(3, t, outd);
    cpu_direct *d = cpu_direct_new("Where", 16);
    for (int k = 0; k < 3; k++)
      d_in(d, &t[k], false);
    cpu_direct_output(d, dt, outr, outd);
    d_run_ok(d, iter % 3 ? 1 : 3, "Where");
    tensor y = d_out(d, 0);
    size_t es = dsize(dt);
    for (size_t i = 0; i < y.count; i++) {
      bool c = t_geti(&t[0], bidx(&t[0], outr, outd, i)) != 0;
      const tensor *src = c ? &t[1] : &t[2];
      ck_assert(
          !memcmp((char *)y.data + i * es, (char *)src->data + bidx(src, outr, outd, i) * es, es));
    }
    cpu_direct_free(d);
    for (int k = 0; k < 3; k++)
      t_free(&t[k]);
  }
}
END_TEST

/* ---- unary math and activations ---------------------------------------------------------- */

typedef struct uop {
  const char *name;
  int64_t opset;
  double lo, hi; /* input range */
  double alpha, beta, gamma;
  bool has_alpha, has_beta, has_gamma;
} uop;

/* Entries with no attribute values use the op's defaults. */
#define U(name, opset, lo, hi)                                                                     \
  { name, opset, lo, hi, 0, 0, 0, false, false, false }
#define UA(name, opset, lo, hi, a, b, g, ha, hb, hg)                                               \
  { name, opset, lo, hi, a, b, g, ha, hb, hg }
static const uop uops[] = {
    U("Abs", 13, -5, 5),
    U("Neg", 13, -5, 5),
    U("Exp", 13, -20, 20),
    U("Log", 13, 0.01, 100),
    U("Sqrt", 13, 0, 100),
    U("Reciprocal", 13, 0.1, 10),
    U("Floor", 13, -5, 5),
    U("Ceil", 13, -5, 5),
    U("Round", 11, -5, 5),
    U("Sign", 13, -3, 3),
    U("Sin", 7, -6, 6),
    U("Cos", 7, -6, 6),
    U("Tan", 7, -1.4, 1.4),
    U("Asin", 7, -0.99, 0.99),
    U("Acos", 7, -0.99, 0.99),
    U("Atan", 7, -6, 6),
    U("Sinh", 9, -5, 5),
    U("Cosh", 9, -5, 5),
    U("Asinh", 9, -6, 6),
    U("Acosh", 9, 1, 20),
    U("Atanh", 9, -0.95, 0.95),
    U("Erf", 13, -5, 5),
    U("Gelu", 20, -6, 6),
    U("Relu", 14, -5, 5),
    U("Sigmoid", 13, -20, 20),
    U("Tanh", 13, -12, 12),
    UA("HardSigmoid", 6, -6, 6, 0.3, 0.4, 0, true, true, false),
    U("HardSigmoid", 6, -6, 6),
    U("HardSwish", 14, -6, 6),
    UA("LeakyRelu", 16, -5, 5, 0.2, 0, 0, true, false, false),
    U("LeakyRelu", 6, -5, 5),
    UA("Elu", 6, -5, 5, 2.0, 0, 0, true, false, false),
    U("Elu", 6, -5, 5),
    UA("Selu", 6, -5, 5, 2.0, 0, 3.0, true, false, true),
    U("Selu", 6, -5, 5),
    UA("Celu", 12, -5, 5, 2.0, 0, 0, true, false, false),
    U("Celu", 12, -5, 5),
    U("Softplus", 1, -30, 30),
    U("Softsign", 1, -5, 5),
    UA("ThresholdedRelu", 10, -3, 3, 1.5, 0, 0, true, false, false),
    U("ThresholdedRelu", 10, -3, 3),
    U("Mish", 18, -10, 10),
};

static double ref_unary(const char *op, double x, double alpha, double beta, double gamma) {
  if (!strcmp(op, "Abs"))
    return fabs(x);
  if (!strcmp(op, "Neg"))
    return -x;
  if (!strcmp(op, "Exp"))
    return exp(x);
  if (!strcmp(op, "Log"))
    return log(x);
  if (!strcmp(op, "Sqrt"))
    return sqrt(x);
  if (!strcmp(op, "Reciprocal"))
    return 1 / x;
  if (!strcmp(op, "Floor"))
    return floor(x);
  if (!strcmp(op, "Ceil"))
    return ceil(x);
  if (!strcmp(op, "Round")) { /* half to even, written out */
    double f = floor(x), d = x - f;
    if (d > 0.5 || (d == 0.5 && fmod(f, 2) != 0))
      f += 1;
    return f;
  }
  if (!strcmp(op, "Sign"))
    return x > 0 ? 1 : x < 0 ? -1 : 0;
  if (!strcmp(op, "Sin"))
    return sin(x);
  if (!strcmp(op, "Cos"))
    return cos(x);
  if (!strcmp(op, "Tan"))
    return tan(x);
  if (!strcmp(op, "Asin"))
    return asin(x);
  if (!strcmp(op, "Acos"))
    return acos(x);
  if (!strcmp(op, "Atan"))
    return atan(x);
  if (!strcmp(op, "Sinh"))
    return sinh(x);
  if (!strcmp(op, "Cosh"))
    return cosh(x);
  if (!strcmp(op, "Asinh"))
    return asinh(x);
  if (!strcmp(op, "Acosh"))
    return acosh(x);
  if (!strcmp(op, "Atanh"))
    return atanh(x);
  if (!strcmp(op, "Erf"))
    return erf(x);
  if (!strcmp(op, "Gelu"))
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  if (!strcmp(op, "Relu"))
    return x > 0 || isnan(x) ? x : 0; /* np.clip keeps NaN */
  if (!strcmp(op, "Sigmoid"))
    return 1 / (1 + exp(-x));
  if (!strcmp(op, "Tanh"))
    return tanh(x);
  if (!strcmp(op, "HardSigmoid"))
    return fmax(0, fmin(1, alpha * x + beta));
  if (!strcmp(op, "HardSwish"))
    return x * fmax(0, fmin(1, x / 6 + 0.5));
  if (!strcmp(op, "LeakyRelu"))
    return x >= 0 ? x : alpha * x;
  if (!strcmp(op, "Elu"))
    return x >= 0 ? x : alpha * (exp(x) - 1);
  if (!strcmp(op, "Selu"))
    return x > 0 ? gamma * x : gamma * (alpha * exp(x) - alpha);
  if (!strcmp(op, "Celu"))
    return fmax(0, x) + fmin(0, alpha * (exp(x / alpha) - 1));
  if (!strcmp(op, "Softplus"))
    return log(exp(x) + 1);
  if (!strcmp(op, "Softsign"))
    return x / (1 + fabs(x));
  if (!strcmp(op, "ThresholdedRelu"))
    return x > alpha ? x : 0;
  if (!strcmp(op, "Mish"))
    return x * tanh(log(1 + exp(x)));
  return NAN;
}

static void unary_float_body(void) {
  rng_seed(9);
  for (size_t u = 0; u < NELEM(uops); u++) {
    const uop *o = &uops[u];
    double alpha = o->has_alpha ? o->alpha : 0, beta = o->beta, gamma = o->gamma;
    if (!o->has_alpha) {
      alpha = !strcmp(o->name, "HardSigmoid") ? 0.2
              : !strcmp(o->name, "LeakyRelu") ? 0.01
              : !strcmp(o->name, "Selu")      ? 1.67326319217681884765625
                                              : 1.0;
    }
    if (!o->has_beta)
      beta = !strcmp(o->name, "HardSigmoid") ? 0.5 : 0;
    if (!o->has_gamma)
      gamma = 1.05070102214813232421875;
    for (size_t k = 0; k < NELEM(float_dts); k++) {
      uint32_t dt = float_dts[k];
      for (int iter = 0; iter < 4; iter++) {
        int64_t dims[MAXR];
        uint32_t rank = rand_shape(dims, 3, 7);
        tensor x = t_new(dt, rank, dims);
        t_fill(&x, o->lo, o->hi);
        /* Halves to exercise Round's ties, and zero. */
        if (x.count > 2) {
          t_set(&x, 0, 2.5);
          t_set(&x, 1, -0.5);
          t_set(&x, 2, 0);
        }
        if (!strcmp(o->name, "Acosh") || !strcmp(o->name, "Log") ||
            !strcmp(o->name, "Reciprocal") || !strcmp(o->name, "Sqrt") ||
            !strcmp(o->name, "Asin") || !strcmp(o->name, "Acos") || !strcmp(o->name, "Atanh"))
          t_fill(&x, o->lo, o->hi);
        cpu_direct *d = cpu_direct_new(o->name, o->opset);
        if (o->has_alpha)
          cpu_direct_attr_float(d, "alpha", (float)o->alpha);
        if (o->has_beta)
          cpu_direct_attr_float(d, "beta", (float)o->beta);
        if (o->has_gamma)
          cpu_direct_attr_float(d, "gamma", (float)o->gamma);
        d_in(d, &x, false);
        cpu_direct_output(d, dt, rank, dims);
        d_run_ok(d, iter == 3 ? 3 : 1, o->name);
        tensor y = d_out(d, 0);
        /* Attributes are float32: the reference uses the same rounded values. */
        double a = o->has_alpha ? (float)alpha : alpha, b = o->has_beta ? (float)beta : beta;
        double g = o->has_gamma ? (float)gamma : gamma;
        for (size_t i = 0; i < y.count; i++) {
          double xv = t_get(&x, i), want = ref_unary(o->name, xv, a, b, g);
          ck_assert_msg(close_to(t_get(&y, i), want, dt, 0, 1), "%s %s x=%.9g: got %.9g want %.9g",
                        o->name, cpu_dtype_name(dt), xv, t_get(&y, i), want);
        }
        cpu_direct_free(d);
        t_free(&x);
      }
    }
  }
}
START_TEST(unary_float_random) { unary_float_body(); }
END_TEST

/* Special values through the float32 kernels, including those with polynomial exp/tanh. */
static void unary_special_body(void) {
  static const double xs[] = {NAN,  INFINITY, -INFINITY, 0.0,   -0.0, 100, -100, 88.5, -87.5, 89,
                              -104, 1e-6,     -1e-6,     1e-30, 0.5,  7.9, 8.1,  -9,   30,    -30};
  static const char *ops[] = {"Exp",      "Sigmoid",   "Tanh", "Softplus", "Elu",
                              "Relu",     "Abs",       "Neg",  "Sqrt",     "Floor",
                              "Softsign", "HardSwish", "Erf",  "Mish",     "Gelu"};
  int64_t n = NELEM(xs);
  for (size_t k = 0; k < NELEM(float_dts); k++) {
    uint32_t dt = float_dts[k];
    tensor x = t_new(dt, 1, &n);
    for (size_t i = 0; i < (size_t)n; i++)
      t_set(&x, i, xs[i]);
    for (size_t o = 0; o < NELEM(ops); o++) {
      cpu_direct *d = cpu_direct_new(ops[o], !strcmp(ops[o], "Mish")   ? 18
                                             : !strcmp(ops[o], "Gelu") ? 20
                                                                       : 14);
      d_in(d, &x, false);
      cpu_direct_output(d, dt, 1, &n);
      d_run_ok(d, 1, ops[o]);
      tensor y = d_out(d, 0);
      for (size_t i = 0; i < (size_t)n; i++) {
        double xv = t_get(&x, i);
        double want = ref_unary(ops[o], xv, 1.0, 0, 0);
        if (!strcmp(ops[o], "Softplus") && xv > 700)
          want = xv;
        /* Infinities follow the numpy formulas of the ONNX reference: Softsign(inf),
         * HardSwish(-inf) and Mish(-inf) are NaN (inf / inf, -inf * 0). */
        ck_assert_msg(close_to(t_get(&y, i), want, dt, 0, 1), "%s %s(%g) = %.9g, want %.9g", ops[o],
                      cpu_dtype_name(dt), xv, t_get(&y, i), want);
      }
      cpu_direct_free(d);
    }
    /* IsNaN and IsInf with its flags. */
    for (int flags = 0; flags < 4; flags++) {
      cpu_direct *d = cpu_direct_new(flags == 3 ? "IsNaN" : "IsInf", flags == 3 ? 13 : 10);
      if (flags == 1)
        cpu_direct_attr_int(d, "detect_negative", 0);
      if (flags == 2)
        cpu_direct_attr_int(d, "detect_positive", 0);
      d_in(d, &x, false);
      cpu_direct_output(d, TSR_DTYPE_BOOL, 1, &n);
      d_run_ok(d, 1, "IsInf");
      tensor y = d_out(d, 0);
      for (size_t i = 0; i < (size_t)n; i++) {
        double v = t_get(&x, i);
        int want = flags == 3   ? isnan(v) != 0
                   : flags == 0 ? isinf(v) != 0
                   : flags == 1 ? v == INFINITY
                                : v == -INFINITY;
        ck_assert_msg(t_geti(&y, i) == want, "IsInf/IsNaN flags %d x %g", flags, v);
      }
      cpu_direct_free(d);
    }
    t_free(&x);
  }
}
START_TEST(unary_special_values) { unary_special_body(); }
END_TEST

/* The float32 polynomial kernels (Exp, Sigmoid, Tanh, Erf, Gelu and its tanh form) on a dense
 * grid against float64 references: the largest error must stay far inside the node suite's
 * tolerance (1e-3 relative + 1e-5 absolute), at a few float32 ulp. Errors are in units of
 * the reference's magnitude, floored at 1 (absolute near 0) or, for Exp and Sigmoid, relative
 * (their values span many binades). Both ISAs run it (generic_isa). */
typedef struct dense_case {
  const char *op;
  const char *approximate; /* Gelu's attribute, or NULL */
  int64_t opset;
  double lo, hi;
  bool relative;
  double bound;
} dense_case;

static double ref_dense(const dense_case *c, double x) {
  if (c->approximate && !strcmp(c->approximate, "tanh"))
    return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
  return ref_unary(c->op, x, 0, 0, 0);
}

static void unary_dense_body(void) {
  static const dense_case cases[] = {
      {"Exp", NULL, 13, -87, 88, true, 4e-7},
      {"Sigmoid", NULL, 13, -80, 20, true, 6e-7},
      {"Tanh", NULL, 13, -10, 10, false, 4e-7},
      {"Erf", NULL, 13, -6, 6, false, 6e-7},
      /* 1 + erf(x / sqrt 2) cancels for x < -4: erf's absolute error (<= 5e-7) becomes the
       * result's, times |x| / 2, as in the Erf, Add, Mul graph the Gelu replaces. */
      {"Gelu", NULL, 20, -10, 10, false, 1.5e-6},
      {"Gelu", "tanh", 20, -10, 10, false, 1.5e-6},
  };
  int64_t n = 100001;
  for (size_t k = 0; k < NELEM(cases); k++) {
    const dense_case *c = &cases[k];
    tensor x = t_new(TSR_DTYPE_FLOAT32, 1, &n);
    for (int64_t i = 0; i < n; i++)
      t_set(&x, (size_t)i, c->lo + (c->hi - c->lo) * (double)i / (double)(n - 1));
    cpu_direct *d = cpu_direct_new(c->op, c->opset);
    if (c->approximate)
      cpu_direct_attr_string(d, "approximate", c->approximate);
    d_in(d, &x, false);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &n);
    d_run_ok(d, 2, c->op);
    tensor y = d_out(d, 0);
    double worst = 0, at = 0;
    for (size_t i = 0; i < (size_t)n; i++) {
      double xv = t_get(&x, i), want = ref_dense(c, xv), got = t_get(&y, i);
      double scale = c->relative ? fabs(want) : fmax(1.0, fabs(want));
      double e = fabs(got - want) / (scale > 0 ? scale : 1e-300);
      if (!(e <= worst)) {
        worst = e;
        at = xv;
      }
    }
    ck_assert_msg(worst <= c->bound, "%s%s%s: error %.3g at x = %.9g, bound %.3g", c->op,
                  c->approximate ? " approximate=" : "", c->approximate ? c->approximate : "",
                  worst, at, c->bound);
    cpu_direct_free(d);
    t_free(&x);
  }
}
START_TEST(unary_dense_accuracy) { unary_dense_body(); }
END_TEST

/* The activations that core/passes.c fuses into Conv and Gemm (gemm_util.h's cpu_act), on
 * both ISAs: cpu_act_apply_row (eight lanes at a time through vmath_avx2.h, the code the AVX2
 * GEMM epilogue runs) against the scalar cpu_act_apply and against float64 references, at
 * every length up to 37 (whole vectors and tails) and over special values. */
static double ref_act(cpu_act_kind k, double x) {
  switch (k) {
  case CPU_ACT_SIGMOID: return 1 / (1 + exp(-x));
  case CPU_ACT_SILU: return x / (1 + exp(-x));
  case CPU_ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  case CPU_ACT_GELU_TANH:
    return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
  default: return x;
  }
}

START_TEST(fused_activation_rows) {
  static const cpu_act_kind kinds[] = {CPU_ACT_SIGMOID, CPU_ACT_SILU, CPU_ACT_GELU,
                                       CPU_ACT_GELU_TANH};
  static const float specials[] = {NAN,   INFINITY, -INFINITY, 0.0f,   -0.0f, 100.0f, -100.0f,
                                   88.5f, -87.5f,   1e-6f,     -1e-6f, 17.0f, -17.0f, 5.5f};
  rng_seed(21);
  for (int generic = 0; generic < 2; generic++) {
    cpu_isa isa = generic ? CPU_ISA_GENERIC : cpu_detect_isa();
    for (size_t k = 0; k < NELEM(kinds); k++) {
      cpu_act a = {kinds[k], 0, 0};
      for (size_t n = 0; n <= 37; n++) {
        float x[37 + NELEM(specials)], y[37 + NELEM(specials)];
        size_t m = n;
        for (size_t i = 0; i < n; i++)
          x[i] = (float)urand(-10, 10);
        if (n == 37)
          for (size_t i = 0; i < NELEM(specials); i++)
            x[m++] = specials[i];
        memcpy(y, x, m * sizeof *y);
        cpu_act_apply_row(isa, &a, y, m);
        for (size_t i = 0; i < m; i++) {
          double want = ref_act(a.kind, x[i]), scalar = cpu_act_apply(&a, x[i]);
          if (isnan(want) && isinf(x[i]))
            want = scalar; /* -inf * 0 in the GELU formula: the graph gives NaN too */
          /* GELU's 1 + erf (tanh) cancels for large negative x: 2e-6 absolute (see
           * unary_dense_accuracy). */
          double mag = a.kind == CPU_ACT_GELU || a.kind == CPU_ACT_GELU_TANH ? 2 : 1;
          ck_assert_msg(close_to(y[i], want, TSR_DTYPE_FLOAT32, 0, mag) &&
                            close_to(y[i], scalar, TSR_DTYPE_FLOAT32, 0, mag),
                        "activation %d isa %d x=%.9g: row %.9g, scalar %.9g, want %.9g",
                        (int)a.kind, (int)isa, x[i], y[i], scalar, want);
        }
      }
    }
  }
}
END_TEST

/* Gelu's approximate attribute: "none" and "tanh" run, anything else is refused. */
START_TEST(gelu_approximate) {
  int64_t n = 5;
  tensor x = t_new(TSR_DTYPE_FLOAT32, 1, &n);
  t_fill(&x, -3, 3);
  cpu_direct *d = cpu_direct_new("Gelu", 20);
  cpu_direct_attr_string(d, "approximate", "erf");
  d_in(d, &x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &n);
  char err[256];
  ck_assert_int_eq(cpu_direct_run(d, 1, err, sizeof err), TSR_PLUGIN_REASON_ATTRIBUTE);
  ck_assert_msg(strstr(err, "approximate") != NULL, "%s", err);
  cpu_direct_free(d);
  /* Gelu is an opset 20 operator only. */
  d = cpu_direct_new("Gelu", 17);
  d_in(d, &x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &n);
  ck_assert_int_eq(cpu_direct_run(d, 1, err, sizeof err), -1);
  cpu_direct_free(d);
  t_free(&x);
}
END_TEST

START_TEST(unary_int) {
  static const char *ops[] = {"Abs", "Neg", "Sign", "Relu"};
  rng_seed(10);
  for (size_t k = 0; k < NELEM(int_dts); k++) {
    uint32_t dt = int_dts[k];
    for (int o = 0; o < 4; o++) {
      bool supported = !is_unsigned(dt) || o == 0 || o == 2;
      int64_t dims[2] = {3, 11};
      tensor x = t_new(dt, 2, dims);
      t_fill_bits(&x);
      t_seti(&x, 0, 0);
      cpu_direct *d = cpu_direct_new(ops[o], o == 3 ? 14 : 13);
      d_in(d, &x, false);
      cpu_direct_output(d, dt, 2, dims);
      if (!supported) {
        ck_assert_int_eq(d_run_err(d, ops[o]), TSR_PLUGIN_REASON_DTYPE);
      } else {
        d_run_ok(d, 1, ops[o]);
        tensor y = d_out(d, 0);
        for (size_t i = 0; i < y.count; i++) {
          int64_t v = t_geti(&x, i), want;
          bool u = is_unsigned(dt);
          if (o == 0)
            want = u || v >= 0 ? v : wrap_to(dt, (int64_t)(0 - (uint64_t)v));
          else if (o == 1)
            want = wrap_to(dt, (int64_t)(0 - (uint64_t)v));
          else if (o == 2)
            want = u ? v != 0 : (v > 0) - (v < 0);
          else
            want = v > 0 ? v : 0;
          ck_assert_msg(t_geti(&y, i) == want, "%s %s %lld", ops[o], cpu_dtype_name(dt),
                        (long long)v);
        }
      }
      cpu_direct_free(d);
      t_free(&x);
    }
  }
  /* Relu on integers only from opset 14. */
  int64_t n = 4;
  tensor x = t_new(TSR_DTYPE_INT32, 1, &n);
  cpu_direct *d = cpu_direct_new("Relu", 13);
  d_in(d, &x, false);
  cpu_direct_output(d, TSR_DTYPE_INT32, 1, &n);
  ck_assert_int_eq(d_run_err(d, "Relu int 13"), TSR_PLUGIN_REASON_DTYPE);
  cpu_direct_free(d);
  t_free(&x);
}
END_TEST

/* ---- Clip, Identity, Dropout -------------------------------------------------------------- */

static void clip_case(int64_t opset, uint32_t dt, bool has_min, double lo, bool has_max, double hi,
                      bool bounds_const) {
  int64_t n = 50;
  tensor x = t_new(dt, 1, &n);
  if (is_float(dt))
    t_fill(&x, -10, 10);
  else
    t_fill_bits(&x);
  if (is_float(dt) && dt != TSR_DTYPE_FLOAT16)
    t_set(&x, 0, NAN);
  cpu_direct *d = cpu_direct_new("Clip", opset);
  d_in(d, &x, false);
  tensor tl = t_new(dt, 0, NULL), th = t_new(dt, 0, NULL);
  t_set(&tl, 0, lo);
  t_set(&th, 0, hi);
  if (opset < 11) {
    if (has_min)
      cpu_direct_attr_float(d, "min", (float)lo);
    if (has_max)
      cpu_direct_attr_float(d, "max", (float)hi);
  } else {
    if (has_min)
      d_in(d, &tl, bounds_const);
    else if (has_max)
      cpu_direct_input_absent(d);
    if (has_max)
      d_in(d, &th, bounds_const);
  }
  cpu_direct_output(d, dt, 1, &n);
  d_run_ok(d, 1, "Clip");
  tensor y = d_out(d, 0);
  for (size_t i = 0; i < y.count; i++) {
    if (is_float(dt)) {
      double v = t_get(&x, i), want = v;
      if (has_min && v < lo)
        want = lo;
      if (has_max && want > hi)
        want = hi;
      ck_assert_msg(close_to(t_get(&y, i), want, dt, 0, 1), "Clip %s", cpu_dtype_name(dt));
    } else {
      int64_t v = t_geti(&x, i), want = v, l = t_geti(&tl, 0), h = t_geti(&th, 0);
      bool u = is_unsigned(dt);
      if (has_min && (u ? (uint64_t)v < (uint64_t)l : v < l))
        want = l;
      if (has_max && (u ? (uint64_t)want > (uint64_t)h : want > h))
        want = h;
      ck_assert_msg(t_geti(&y, i) == want, "Clip %s", cpu_dtype_name(dt));
    }
  }
  cpu_direct_free(d);
  t_free(&x);
  t_free(&tl);
  t_free(&th);
}

START_TEST(clip_all) {
  rng_seed(11);
  for (size_t k = 0; k < NELEM(float_dts); k++) {
    uint32_t dt = float_dts[k];
    clip_case(6, TSR_DTYPE_FLOAT32, true, -1, true, 2, false);
    clip_case(6, TSR_DTYPE_FLOAT32, false, 0, true, 2, false);
    clip_case(13, dt, true, -1, true, 2, k == 0);
    clip_case(13, dt, true, -1, false, 0, false);
    clip_case(13, dt, false, 0, true, 3, true);
    clip_case(13, dt, false, 0, false, 0, false);
    clip_case(13, dt, true, 3, true, 1, false); /* min > max: max wins */
  }
  for (size_t k = 0; k < NELEM(int_dts); k++) {
    uint32_t dt = int_dts[k];
    clip_case(13, dt, true, 5, true, 100, false);
    clip_case(12, dt, false, 0, true, 7, true);
    clip_case(13, dt, true, 9, false, 0, false);
    clip_case(13, dt, false, 0, false, 0, false);
  }
  /* Integers only from opset 12; bounds must be scalars. */
  int64_t n = 3, two = 2;
  tensor x = t_new(TSR_DTYPE_INT32, 1, &n), b = t_new(TSR_DTYPE_INT32, 1, &two);
  cpu_direct *d = cpu_direct_new("Clip", 11);
  d_in(d, &x, false);
  cpu_direct_output(d, TSR_DTYPE_INT32, 1, &n);
  ck_assert_int_eq(d_run_err(d, "Clip int 11"), TSR_PLUGIN_REASON_DTYPE);
  cpu_direct_free(d);
  d = cpu_direct_new("Clip", 13);
  d_in(d, &x, false);
  d_in(d, &b, false);
  cpu_direct_output(d, TSR_DTYPE_INT32, 1, &n);
  ck_assert_int_eq(d_run_err(d, "Clip 2-element min"), TSR_PLUGIN_REASON_SHAPE);
  cpu_direct_free(d);
  t_free(&x);
  t_free(&b);
}
END_TEST

START_TEST(identity_dropout) {
  int64_t dims[3] = {2, 3, 5};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_INT64, TSR_DTYPE_BOOL,
                                 TSR_DTYPE_FLOAT16, TSR_DTYPE_UINT8};
  rng_seed(12);
  for (size_t k = 0; k < NELEM(dts); k++) {
    tensor x = t_new(dts[k], 3, dims);
    t_fill_bits(&x);
    cpu_direct *d = cpu_direct_new("Identity", 16);
    d_in(d, &x, false);
    cpu_direct_output(d, dts[k], 3, dims);
    d_run_ok(d, 1, "Identity");
    ck_assert(!memcmp(d_out(d, 0).data, x.data, x.count * dsize(x.dt)));
    cpu_direct_free(d);
    t_free(&x);
  }
  tensor x = t_new(TSR_DTYPE_FLOAT32, 3, dims);
  t_fill(&x, -1, 1);
  /* Opset 13 with ratio and a mask; opset 7 with a float mask; opset 12 training off. */
  for (int v = 0; v < 4; v++) {
    int64_t opset = v == 0 ? 13 : v == 1 ? 7 : v == 2 ? 12 : 10;
    cpu_direct *d = cpu_direct_new("Dropout", opset);
    d_in(d, &x, false);
    tensor ratio = t_new(TSR_DTYPE_FLOAT32, 0, NULL), train = t_new(TSR_DTYPE_BOOL, 0, NULL);
    t_set(&ratio, 0, 0.3);
    if (opset >= 12) {
      d_in(d, &ratio, true);
      if (v == 2)
        d_in(d, &train, false);
    } else {
      cpu_direct_attr_float(d, "ratio", 0.3f);
    }
    uint32_t mdt = opset < 10 ? TSR_DTYPE_FLOAT32 : TSR_DTYPE_BOOL;
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 3, dims);
    cpu_direct_output(d, mdt, 3, dims);
    d_run_ok(d, 1, "Dropout");
    ck_assert(!memcmp(d_out(d, 0).data, x.data, x.count * 4));
    tensor m = d_out(d, 1);
    for (size_t i = 0; i < m.count; i++)
      ck_assert(t_get(&m, i) == 1);
    cpu_direct_free(d);
    t_free(&ratio);
    t_free(&train);
  }
  /* training_mode: constant true is refused; true with ratio 0 is the same as inference; a
   * runtime true with a ratio fails at run. */
  for (int v = 0; v < 3; v++) {
    cpu_direct *d = cpu_direct_new("Dropout", 13);
    tensor ratio = t_new(TSR_DTYPE_FLOAT32, 0, NULL), train = t_new(TSR_DTYPE_BOOL, 0, NULL);
    t_set(&ratio, 0, v == 1 ? 0 : 0.5);
    t_seti(&train, 0, 1);
    d_in(d, &x, false);
    d_in(d, &ratio, v != 2);
    d_in(d, &train, v != 2);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 3, dims);
    if (v == 1) {
      d_run_ok(d, 1, "Dropout ratio 0");
      ck_assert(!memcmp(d_out(d, 0).data, x.data, x.count * 4));
    } else {
      int rc = d_run_err(d, "Dropout training");
      ck_assert_int_eq(rc, v == 0 ? TSR_PLUGIN_REASON_ATTRIBUTE : -1);
    }
    cpu_direct_free(d);
    t_free(&ratio);
    t_free(&train);
  }
  t_free(&x);
}
END_TEST

/* ---- reductions --------------------------------------------------------------------------- */

static const char *red_ops[] = {"ReduceSum",       "ReduceMean",     "ReduceMax", "ReduceMin",
                                "ReduceProd",      "ReduceL1",       "ReduceL2",  "ReduceLogSum",
                                "ReduceLogSumExp", "ReduceSumSquare"};

/* Float64 reference of reduction `op` of x over dims flagged in red into y (of the kept
 * dims' size); mag gets the scale of the terms for the tolerance. */
static void ref_reduce(int op, const tensor *x, const bool *red, double *y, double *mag,
                       size_t ny) {
  double *mx = malloc((ny ? ny : 1) * sizeof *mx);
  size_t *cnt = calloc(ny ? ny : 1, sizeof *cnt);
  for (size_t o = 0; o < ny; o++) {
    y[o] = op == 4 ? 1 : op == 2 ? -INFINITY : op == 3 ? INFINITY : 0;
    mx[o] = -INFINITY;
    mag[o] = 0;
  }
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < x->count; i++) {
      size_t rem = i, o = 0, mul = 1;
      for (int32_t dd = (int32_t)x->rank - 1; dd >= 0; dd--) {
        size_t c = rem % (size_t)x->dims[dd];
        rem /= (size_t)x->dims[dd];
        if (red[dd])
          continue;
        o += c * mul;
        mul *= (size_t)x->dims[dd];
      }
      double v = t_get(x, i);
      if (pass == 0) {
        mx[o] = fmax(mx[o], v);
        continue;
      }
      cnt[o]++;
      switch (op) {
      case 0:
      case 1:
      case 7:
        y[o] += v;
        mag[o] += fabs(v);
        break;
      case 2: y[o] = isnan(v) || isnan(y[o]) ? NAN : fmax(y[o], v); break;
      case 3: y[o] = isnan(v) || isnan(y[o]) ? NAN : fmin(y[o], v); break;
      case 4:
        y[o] *= v;
        mag[o] = fabs(y[o]);
        break;
      case 5:
        y[o] += fabs(v);
        mag[o] += fabs(v);
        break;
      case 6:
      case 9:
        y[o] += v * v;
        mag[o] += v * v;
        break;
      case 8:
        y[o] += exp(v - mx[o]);
        mag[o] = 1;
        break;
      }
    }
  }
  for (size_t o = 0; o < ny; o++) {
    if (op == 1) {
      y[o] /= (double)cnt[o];
      mag[o] /= (double)cnt[o];
    }
    if (op == 6) {
      y[o] = sqrt(y[o]);
      mag[o] = y[o];
    }
    if (op == 7) {
      y[o] = log(y[o]);
      mag[o] = 1;
    }
    if (op == 8)
      y[o] = cnt[o] ? log(y[o]) + mx[o] : -INFINITY;
  }
  free(mx);
  free(cnt);
}

/* One random reduction case. */
static void reduce_case(int op, uint32_t dt, int64_t opset, size_t threads) {
  int64_t dims[MAXR];
  uint32_t rank = rand_shape(dims, 5, 5);
  if (irand(0, 4) == 0 && rank >= 2)
    dims[rank - 1] = irand(60, 140); /* wide inner rows */
  tensor x = t_new(dt, rank, dims);
  if (op == 4)
    t_fill(&x, 0.6, 1.5);
  else if (op == 7 || op == 6)
    t_fill(&x, is_float(dt) ? 0.1 : 1, 5);
  else if (is_float(dt))
    t_fill(&x, -5, 5);
  else
    t_fill(&x, is_unsigned(dt) ? 0 : -50, 50);
  if (!is_float(dt) && op == 4)
    t_fill(&x, is_unsigned(dt) ? 1 : -2, 2);
  bool red[MAXR] = {0};
  int64_t axes[MAXR];
  size_t naxes = 0;
  for (uint32_t i = 0; i < rank; i++)
    if (irand(0, 1)) {
      red[i] = true;
      axes[naxes++] = irand(0, 1) ? (int64_t)i : (int64_t)i - (int64_t)rank;
    }
  /* Shuffle the axes order. */
  for (size_t i = naxes; i > 1; i--) {
    size_t j = (size_t)irand(0, (int64_t)i - 1);
    int64_t t = axes[i - 1];
    axes[i - 1] = axes[j];
    axes[j] = t;
  }
  bool keep = irand(0, 1);
  bool axes_input = op == 0 && opset >= 13;
  bool noop = axes_input && naxes == 0 && irand(0, 1);
  if (naxes == 0 && !noop)
    for (uint32_t i = 0; i < rank; i++)
      red[i] = true;
  int64_t od[MAXR];
  uint32_t orank = 0;
  size_t ny = 1;
  for (uint32_t i = 0; i < rank; i++) {
    if (noop)
      od[orank++] = dims[i];
    else if (red[i] && keep)
      od[orank++] = 1;
    else if (!red[i])
      od[orank++] = dims[i];
  }
  for (uint32_t i = 0; i < orank; i++)
    ny *= (size_t)od[i];
  cpu_direct *d = cpu_direct_new(red_ops[op], opset);
  cpu_direct_attr_int(d, "keepdims", keep);
  d_in(d, &x, false);
  if (axes_input) {
    if (noop)
      cpu_direct_attr_int(d, "noop_with_empty_axes", 1);
    int64_t na = (int64_t)naxes;
    if (naxes || irand(0, 1))
      cpu_direct_input(d, TSR_DTYPE_INT64, 1, &na, axes, irand(0, 1));
  } else if (naxes || irand(0, 1)) {
    cpu_direct_attr_ints(d, "axes", naxes, axes);
  }
  cpu_direct_output(d, dt, orank, od);
  d_run_ok(d, threads, red_ops[op]);
  tensor y = d_out(d, 0);
  double *want = malloc((ny ? ny : 1) * sizeof *want), *mag = malloc((ny ? ny : 1) * sizeof *mag);
  if (noop) {
    for (size_t i = 0; i < ny; i++) {
      want[i] = t_get(&x, i);
      mag[i] = 1;
    }
  } else {
    ref_reduce(op, &x, red, want, mag, ny);
  }
  for (size_t i = 0; i < ny; i++) {
    if (!is_float(dt)) {
      /* Integers: exact for sums and products (wrapping), truncated for the float-computed. */
      double w = want[i];
      if (op == 1)
        w = trunc(w);
      if (op == 6 || op == 7 || op == 8)
        w = trunc(w);
      ck_assert_msg(t_get(&y, i) == (double)wrap_to(dt, (int64_t)w), "%s %s [%zu]: %g want %g",
                    red_ops[op], cpu_dtype_name(dt), i, t_get(&y, i), w);
    } else {
      ck_assert_msg(close_to(t_get(&y, i), want[i], dt, 0, mag[i]),
                    "%s %s opset %lld [%zu]: %.9g want %.9g", red_ops[op], cpu_dtype_name(dt),
                    (long long)opset, i, t_get(&y, i), want[i]);
    }
  }
  free(want);
  free(mag);
  cpu_direct_free(d);
  t_free(&x);
}

START_TEST(reduce_random) {
  rng_seed(13);
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16,
                                 TSR_DTYPE_INT32,   TSR_DTYPE_INT64,   TSR_DTYPE_UINT8,
                                 TSR_DTYPE_INT8,    TSR_DTYPE_UINT32};
  for (int iter = 0; iter < 12; iter++)
    for (int op = 0; op < 10; op++)
      for (size_t k = 0; k < NELEM(dts); k++) {
        int64_t opset = iter % 3 == 0 ? 11 : 13;
        reduce_case(op, dts[k], opset, iter % 4 == 3 ? 3 : 1);
      }
}
END_TEST

START_TEST(reduce_fixed) {
  /* The ONNX ReduceLogSumExp example and a stability case with huge values. */
  int64_t dims[3] = {3, 2, 2}, od[3] = {3, 1, 2};
  static const double data[12] = {5, 1, 20, 2, 30, 1, 40, 2, 55, 1, 60, 2};
  tensor x = t_new(TSR_DTYPE_FLOAT64, 3, dims);
  for (int i = 0; i < 12; i++)
    t_set(&x, i, data[i]);
  cpu_direct *d = cpu_direct_new("ReduceLogSumExp", 13);
  int64_t ax = 1;
  cpu_direct_attr_ints(d, "axes", 1, &ax);
  d_in(d, &x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT64, 3, od);
  d_run_ok(d, 1, "ReduceLogSumExp");
  static const double want[6] = {20.0,       2.31326169,  40.00004540,
                                 2.31326169, 60.00671535, 2.31326169};
  tensor y = d_out(d, 0);
  for (int i = 0; i < 6; i++)
    ck_assert(fabs(t_get(&y, i) - want[i]) < 1e-6);
  cpu_direct_free(d);
  t_free(&x);
  int64_t n = 4, one = 1;
  x = t_new(TSR_DTYPE_FLOAT32, 1, &n);
  for (int i = 0; i < 4; i++)
    t_set(&x, i, 1000 + i);
  d = cpu_direct_new("ReduceLogSumExp", 13);
  cpu_direct_attr_int(d, "keepdims", 0);
  d_in(d, &x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 0, NULL);
  d_run_ok(d, 1, "ReduceLogSumExp big");
  ck_assert(fabs(t_get(&(tensor){.dt = TSR_DTYPE_FLOAT32, .data = d_out(d, 0).data}, 0) -
                 (1003 + log(1 + exp(-1) + exp(-2) + exp(-3)))) < 1e-3);
  cpu_direct_free(d);
  t_free(&x);
  /* Empty reductions give the identity of the op. */
  int64_t ed[2] = {3, 0};
  x = t_new(TSR_DTYPE_FLOAT32, 2, ed);
  static const double empty_want[10] = {0, NAN, -INFINITY, INFINITY,  1,
                                        0, 0,   -INFINITY, -INFINITY, 0};
  for (int op = 0; op < 10; op++) {
    d = cpu_direct_new(red_ops[op], 13);
    int64_t a1 = 1, od2[2] = {3, 1};
    if (op == 0)
      cpu_direct_input(d, TSR_DTYPE_INT64, 1, &one, &a1, true);
    else
      cpu_direct_attr_ints(d, "axes", 1, &a1);
    if (op != 0) {
      d_in(d, &x, false);
    } else {
      cpu_direct_free(d);
      d = cpu_direct_new(red_ops[op], 13);
      d_in(d, &x, false);
      cpu_direct_input(d, TSR_DTYPE_INT64, 1, &one, &a1, true);
    }
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, od2);
    d_run_ok(d, 1, red_ops[op]);
    tensor yy = d_out(d, 0);
    for (int i = 0; i < 3; i++) {
      double g = t_get(&yy, i);
      ck_assert_msg(isnan(empty_want[op]) ? isnan(g) : g == empty_want[op], "empty %s: %g",
                    red_ops[op], g);
    }
    cpu_direct_free(d);
  }
  t_free(&x);
}
END_TEST

/* ---- ArgMax / ArgMin ---------------------------------------------------------------------- */

START_TEST(argmax_random) {
  rng_seed(14);
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16,
                                 TSR_DTYPE_INT32,   TSR_DTYPE_INT64,   TSR_DTYPE_UINT8,
                                 TSR_DTYPE_INT8,    TSR_DTYPE_UINT64};
  for (int iter = 0; iter < 300; iter++) {
    uint32_t dt = dts[iter % NELEM(dts)];
    bool mx = iter % 2, last = (iter / 2) % 2, keep = (iter / 4) % 2;
    int64_t dims[MAXR];
    uint32_t rank = rand_shape(dims, 4, 6);
    if (rank == 0) {
      rank = 1;
      dims[0] = 5;
    }
    if (irand(0, 3) == 0)
      dims[rank - 1] = irand(64, 150);
    tensor x = t_new(dt, rank, dims);
    t_fill(&x, is_unsigned(dt) ? 0 : -3, 3); /* small range: many ties */
    if (is_float(dt))
      for (size_t i = 0; i < x.count; i++)
        t_set(&x, i, round(t_get(&x, i)));
    uint32_t axis = (uint32_t)irand(0, rank - 1);
    int64_t aattr = irand(0, 1) ? (int64_t)axis : (int64_t)axis - (int64_t)rank;
    int64_t od[MAXR];
    uint32_t orank = 0;
    for (uint32_t i = 0; i < rank; i++) {
      if (i != axis)
        od[orank++] = dims[i];
      else if (keep)
        od[orank++] = 1;
    }
    cpu_direct *d = cpu_direct_new(mx ? "ArgMax" : "ArgMin", 13);
    cpu_direct_attr_int(d, "axis", aattr);
    cpu_direct_attr_int(d, "keepdims", keep);
    cpu_direct_attr_int(d, "select_last_index", last);
    d_in(d, &x, false);
    cpu_direct_output(d, TSR_DTYPE_INT64, orank, od);
    d_run_ok(d, iter % 7 == 0 ? 3 : 1, "ArgMax");
    tensor y = d_out(d, 0);
    size_t outer = 1, inner = 1, len = (size_t)dims[axis];
    for (uint32_t i = 0; i < axis; i++)
      outer *= (size_t)dims[i];
    for (uint32_t i = axis + 1; i < rank; i++)
      inner *= (size_t)dims[i];
    for (size_t o = 0; o < outer; o++)
      for (size_t in = 0; in < inner; in++) {
        size_t bi = 0;
        double best = t_get(&x, o * len * inner + in);
        for (size_t r = 1; r < len; r++) {
          double v = t_get(&x, (o * len + r) * inner + in);
          bool better = mx ? (last ? v >= best : v > best) : (last ? v <= best : v < best);
          if (better) {
            best = v;
            bi = r;
          }
        }
        ck_assert_msg(t_geti(&y, o * inner + in) == (int64_t)bi, "Arg%s %s last %d",
                      mx ? "Max" : "Min", cpu_dtype_name(dt), last);
      }
    cpu_direct_free(d);
    t_free(&x);
  }
  /* NaN wins, as in numpy. */
  int64_t n = 4, one = 1;
  tensor x = t_new(TSR_DTYPE_FLOAT32, 1, &n);
  t_set(&x, 0, 1);
  t_set(&x, 1, NAN);
  t_set(&x, 2, 5);
  t_set(&x, 3, NAN);
  cpu_direct *d = cpu_direct_new("ArgMax", 13);
  d_in(d, &x, false);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, &one);
  d_run_ok(d, 1, "ArgMax NaN");
  ck_assert(t_geti(&(tensor){.dt = TSR_DTYPE_INT64, .data = d_out(d, 0).data}, 0) == 1);
  cpu_direct_free(d);
  t_free(&x);
}
END_TEST

/* ---- Softmax, LogSoftmax, Hardmax ---------------------------------------------------------- */

static void softmax_body(void) {
  static const char *ops[] = {"Softmax", "LogSoftmax", "Hardmax"};
  rng_seed(15);
  for (int iter = 0; iter < 150; iter++) {
    int o = iter % 3;
    uint32_t dt = float_dts[(iter / 3) % 3];
    int64_t opset = (iter / 9) % 2 ? 13 : 11;
    int64_t dims[MAXR];
    uint32_t rank = rand_shape(dims, 4, 6);
    if (rank == 0) {
      rank = 2;
      dims[0] = 2;
      dims[1] = 3;
    }
    if (irand(0, 3) == 0)
      dims[rank - 1] = irand(60, 130);
    tensor x = t_new(dt, rank, dims);
    /* One case in four spread wide, as attention scores can be: most terms of a row underflow
     * (exp's result below about 1.2e-38 is 0). */
    if (irand(0, 3) == 0)
      t_fill(&x, -150, 150);
    else
      t_fill(&x, -8, 8);
    if (o == 2) /* ties for Hardmax: the first wins */
      for (size_t i = 0; i < x.count; i++)
        t_set(&x, i, round(t_get(&x, i) / 3));
    bool has_axis = irand(0, 2) != 0;
    uint32_t axis = (uint32_t)irand(0, rank - 1);
    int64_t aattr = irand(0, 1) ? (int64_t)axis : (int64_t)axis - (int64_t)rank;
    if (!has_axis)
      axis = opset < 13 ? (rank > 1 ? 1 : 0) : rank - 1;
    if (!has_axis && opset < 13 && rank == 1) { /* default axis 1 is invalid for rank 1 */
      has_axis = true;
      aattr = 0;
    }
    cpu_direct *d = cpu_direct_new(ops[o], opset);
    if (has_axis)
      cpu_direct_attr_int(d, "axis", aattr);
    d_in(d, &x, false);
    cpu_direct_output(d, dt, rank, dims);
    d_run_ok(d, iter % 5 == 0 ? 3 : 1, ops[o]);
    tensor y = d_out(d, 0);
    size_t outer = 1, len = 1, inner = 1;
    for (uint32_t i = 0; i < rank; i++) {
      if (i < axis)
        outer *= (size_t)dims[i];
      else if (i == axis)
        len = (size_t)dims[i];
      else
        inner *= (size_t)dims[i];
    }
    if (opset < 13) {
      len *= inner;
      inner = 1;
    }
    for (size_t ob = 0; ob < outer; ob++)
      for (size_t in = 0; in < inner; in++) {
        double m = -INFINITY, s = 0;
        size_t bi = 0;
        for (size_t r = 0; r < len; r++) {
          double v = t_get(&x, (ob * len + r) * inner + in);
          if (v > m) {
            m = v;
            bi = r;
          }
        }
        for (size_t r = 0; r < len; r++)
          s += exp(t_get(&x, (ob * len + r) * inner + in) - m);
        for (size_t r = 0; r < len; r++) {
          size_t i = (ob * len + r) * inner + in;
          double v = t_get(&x, i);
          double want = o == 0 ? exp(v - m) / s : o == 1 ? v - m - log(s) : (double)(r == bi);
          ck_assert_msg(close_to(t_get(&y, i), want, dt, 0, 1), "%s %s opset %lld: %.9g want %.9g",
                        ops[o], cpu_dtype_name(dt), (long long)opset, t_get(&y, i), want);
        }
      }
    cpu_direct_free(d);
    t_free(&x);
  }
}
START_TEST(softmax_random) { softmax_body(); }
END_TEST

/* The same cases on the generic kernels (TESSERA_CPU_GENERIC forces them; cpu_detect_isa reads
 * it on every run), so both ISA paths are covered on a machine with AVX2. */
START_TEST(generic_isa) {
  setenv("TESSERA_CPU_GENERIC", "1", 1);
  ck_assert_int_eq(cpu_detect_isa(), CPU_ISA_GENERIC);
  binary_float_body();
  unary_float_body();
  unary_special_body();
  unary_dense_body();
  softmax_body();
  unsetenv("TESSERA_CPU_GENERIC");
}
END_TEST

/* Rows of 20 (the eight-lane AVX2 row and its scalar tail) holding NaN or +inf: the AVX2 and
 * generic kernels agree with numpy, NaN across each such row. */
START_TEST(softmax_special_rows) {
  int64_t dims[2] = {3, 20};
  float want[3][20];
  for (int isa = 0; isa < 2; isa++) {
    if (isa)
      setenv("TESSERA_CPU_GENERIC", "1", 1);
    tensor x = t_new(TSR_DTYPE_FLOAT32, 2, dims);
    for (int i = 0; i < 60; i++)
      t_set(&x, i, (i % 7) - 3.0);
    t_set(&x, 3, NAN);       /* row 0, in the vector part */
    t_set(&x, 20 + 17, NAN); /* row 1, in the tail */
    t_set(&x, 40 + 5, INFINITY);
    cpu_direct *d = cpu_direct_new("Softmax", 13);
    d_in(d, &x, false);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, dims);
    d_run_ok(d, 1, "Softmax special rows");
    tensor y = d_out(d, 0);
    for (int i = 0; i < 60; i++) {
      double v = t_get(&y, i);
      /* inf - inf is NaN, so the inf row's sum is NaN too. */
      ck_assert_msg(isnan(v), "[%d] %g, want NaN", i, v);
      if (isa)
        ck_assert(isnan(v) ? isnan(want[i / 20][i % 20]) : v == want[i / 20][i % 20]);
      else
        want[i / 20][i % 20] = (float)v;
    }
    cpu_direct_free(d);
    t_free(&x);
  }
  unsetenv("TESSERA_CPU_GENERIC");
}
END_TEST

START_TEST(softmax_large_numbers) {
  int64_t dims[2] = {2, 4};
  static const double data[8] = {0, 1, 2, 3, 10000, 10001, 10002, 10003};
  tensor x = t_new(TSR_DTYPE_FLOAT32, 2, dims);
  for (int i = 0; i < 8; i++)
    t_set(&x, i, data[i]);
  static const double sm[4] = {0.032058604, 0.087144323, 0.23688284, 0.64391428};
  for (int o = 0; o < 2; o++) {
    cpu_direct *d = cpu_direct_new(o ? "LogSoftmax" : "Softmax", 13);
    d_in(d, &x, false);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, dims);
    d_run_ok(d, 1, "Softmax large");
    tensor y = d_out(d, 0);
    for (int i = 0; i < 8; i++) {
      double want = o ? log(sm[i % 4]) : sm[i % 4];
      ck_assert_msg(fabs(t_get(&y, i) - want) < 1e-5, "[%d] %g vs %g", i, t_get(&y, i), want);
    }
    cpu_direct_free(d);
  }
  t_free(&x);
}
END_TEST

/* ---- CumSum ------------------------------------------------------------------------------- */

START_TEST(cumsum_random) {
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_INT32,
                                 TSR_DTYPE_INT64,   TSR_DTYPE_UINT32,  TSR_DTYPE_UINT64,
                                 TSR_DTYPE_FLOAT16};
  rng_seed(16);
  for (int iter = 0; iter < 200; iter++) {
    uint32_t dt = dts[iter % NELEM(dts)];
    bool excl = irand(0, 1), rev = irand(0, 1);
    int64_t dims[MAXR];
    uint32_t rank = rand_shape(dims, 4, 6);
    if (rank == 0) {
      rank = 1;
      dims[0] = 7;
    }
    tensor x = t_new(dt, rank, dims);
    if (is_float(dt))
      t_fill(&x, -4, 4);
    else
      t_fill_bits(&x);
    if (dt == TSR_DTYPE_FLOAT16)
      for (size_t i = 0; i < x.count; i++)
        t_set(&x, i, round(t_get(&x, i) * 4) / 4);
    uint32_t axis = (uint32_t)irand(0, rank - 1);
    tensor ax = t_new(iter % 2 ? TSR_DTYPE_INT32 : TSR_DTYPE_INT64, 0, NULL);
    t_seti(&ax, 0, irand(0, 1) ? (int64_t)axis : (int64_t)axis - (int64_t)rank);
    cpu_direct *d = cpu_direct_new("CumSum", 14);
    if (excl)
      cpu_direct_attr_int(d, "exclusive", 1);
    if (rev)
      cpu_direct_attr_int(d, "reverse", 1);
    d_in(d, &x, false);
    d_in(d, &ax, irand(0, 1));
    cpu_direct_output(d, dt, rank, dims);
    d_run_ok(d, iter % 6 == 0 ? 3 : 1, "CumSum");
    tensor y = d_out(d, 0);
    size_t outer = 1, len = (size_t)dims[axis], inner = 1;
    for (uint32_t i = 0; i < axis; i++)
      outer *= (size_t)dims[i];
    for (uint32_t i = axis + 1; i < rank; i++)
      inner *= (size_t)dims[i];
    for (size_t o = 0; o < outer; o++)
      for (size_t in = 0; in < inner; in++) {
        double s = 0, mag = 0;
        uint64_t si = 0;
        for (size_t k = 0; k < len; k++) {
          size_t r = rev ? len - 1 - k : k;
          size_t i = (o * len + r) * inner + in;
          double v = t_get(&x, i);
          uint64_t vi = (uint64_t)t_geti(&x, i);
          if (!excl) {
            s += v;
            si += vi;
            mag += fabs(v);
          }
          if (is_float(dt))
            ck_assert_msg(close_to(t_get(&y, i), s, dt, 0, mag), "CumSum %s", cpu_dtype_name(dt));
          else
            ck_assert_msg(t_geti(&y, i) == wrap_to(dt, (int64_t)si), "CumSum %s",
                          cpu_dtype_name(dt));
          if (excl) {
            s += v;
            si += vi;
            mag += fabs(v);
          }
        }
      }
    cpu_direct_free(d);
    t_free(&x);
    t_free(&ax);
  }
}
END_TEST

/* ---- threads: the same results on one thread and several --------------------------------- */

static void same_on_threads(const char *op, int64_t opset, uint32_t n_in, tensor *ins, uint32_t odt,
                            uint32_t orank, const int64_t *od, int64_t axis) {
  void *first = NULL;
  size_t nbytes = 0;
  for (size_t threads = 1; threads <= 4; threads += 3) {
    cpu_direct *d = cpu_direct_new(op, opset);
    if (axis != INT64_MIN && !strncmp(op, "Reduce", 6))
      cpu_direct_attr_ints(d, "axes", 1, &axis);
    else if (axis != INT64_MIN)
      cpu_direct_attr_int(d, "axis", axis);
    for (uint32_t k = 0; k < n_in; k++)
      d_in(d, &ins[k], false);
    cpu_direct_output(d, odt, orank, od);
    d_run_ok(d, threads, op);
    tensor y = d_out(d, 0);
    nbytes = y.count * dsize(odt);
    if (!first) {
      first = malloc(nbytes);
      memcpy(first, y.data, nbytes);
    } else {
      ck_assert_msg(!memcmp(first, y.data, nbytes), "%s differs on 4 threads", op);
    }
    cpu_direct_free(d);
  }
  free(first);
}

START_TEST(threads_consistent) {
  rng_seed(17);
  int64_t big[3] = {64, 130, 97}, chan[3] = {1, 130, 1}, row[1] = {97};
  tensor a = t_new(TSR_DTYPE_FLOAT32, 3, big), b = t_new(TSR_DTYPE_FLOAT32, 3, chan),
         c = t_new(TSR_DTYPE_FLOAT32, 1, row);
  t_fill(&a, -3, 3);
  t_fill(&b, -3, 3);
  t_fill(&c, -3, 3);
  tensor ab[2] = {a, b}, ac[2] = {a, c};
  same_on_threads("Mul", 14, 2, ab, TSR_DTYPE_FLOAT32, 3, big, INT64_MIN);
  same_on_threads("Add", 14, 2, ac, TSR_DTYPE_FLOAT32, 3, big, INT64_MIN);
  same_on_threads("Tanh", 13, 1, &a, TSR_DTYPE_FLOAT32, 3, big, INT64_MIN);
  same_on_threads("Softmax", 13, 1, &a, TSR_DTYPE_FLOAT32, 3, big, 1);
  same_on_threads("Softmax", 13, 1, &a, TSR_DTYPE_FLOAT32, 3, big, -1);
  int64_t r1[3] = {64, 1, 97}, r2[3] = {64, 130, 1};
  same_on_threads("ReduceMean", 13, 1, &a, TSR_DTYPE_FLOAT32, 3, r1, 1);
  same_on_threads("ArgMax", 13, 1, &a, TSR_DTYPE_INT64, 3, r2, 2);
  t_free(&a);
  t_free(&b);
  t_free(&c);
}
END_TEST

/* ---- empty tensors ----------------------------------------------------------------------- */

START_TEST(empty_tensors) {
  int64_t e[2] = {0, 3}, s[1] = {3};
  tensor a = t_new(TSR_DTYPE_FLOAT32, 2, e), b = t_new(TSR_DTYPE_FLOAT32, 1, s);
  static const char *un[] = {"Relu", "Exp", "Abs", "Sigmoid", "Identity"};
  for (size_t k = 0; k < NELEM(un); k++) {
    cpu_direct *d = cpu_direct_new(un[k], 13);
    d_in(d, &a, false);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, e);
    d_run_ok(d, 1, un[k]);
    cpu_direct_free(d);
  }
  static const char *bin[] = {"Add", "Mul", "Less", "Pow"};
  for (size_t k = 0; k < NELEM(bin); k++) {
    cpu_direct *d = cpu_direct_new(bin[k], 15);
    d_in(d, &a, false);
    d_in(d, &b, false);
    cpu_direct_output(d, k == 2 ? TSR_DTYPE_BOOL : TSR_DTYPE_FLOAT32, 2, e);
    d_run_ok(d, 1, bin[k]);
    cpu_direct_free(d);
  }
  static const char *smx[] = {"Softmax", "ArgMax", "ReduceMax", "CumSum", "Hardmax"};
  for (size_t k = 0; k < NELEM(smx); k++) {
    cpu_direct *d = cpu_direct_new(smx[k], 13);
    int64_t one_axis = 1;
    if (k == 2)
      cpu_direct_attr_ints(d, "axes", 1, &one_axis);
    else
      cpu_direct_attr_int(d, "axis", 1);
    d_in(d, &a, false);
    if (k == 3) {
      tensor ax = t_new(TSR_DTYPE_INT64, 0, NULL);
      t_seti(&ax, 0, 1);
      d_in(d, &ax, true);
      t_free(&ax);
    }
    int64_t od[2] = {0, 1};
    if (k == 1)
      cpu_direct_output(d, TSR_DTYPE_INT64, 2, od);
    else if (k == 2)
      cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, od);
    else
      cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, e);
    d_run_ok(d, 1, smx[k]);
    cpu_direct_free(d);
  }
  t_free(&a);
  t_free(&b);
}
END_TEST

/* ---- errors: refusals from check(), failures from run() ----------------------------------- */

START_TEST(errors_check) {
  int64_t d34[2] = {3, 4}, d5[1] = {5}, d4[1] = {4};
  tensor a = t_new(TSR_DTYPE_FLOAT32, 2, d34), b5 = t_new(TSR_DTYPE_FLOAT32, 1, d5),
         i4 = t_new(TSR_DTYPE_INT32, 1, d4), f4 = t_new(TSR_DTYPE_FLOAT32, 1, d4);
  /* Shapes that do not broadcast. */
  cpu_direct *d = cpu_direct_new("Add", 14);
  d_in(d, &a, false);
  d_in(d, &b5, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d34);
  ck_assert_int_eq(d_run_err(d, "Add 3x4 + 5"), TSR_PLUGIN_REASON_SHAPE);
  cpu_direct_free(d);
  /* An output shape that is not the broadcast. */
  d = cpu_direct_new("Add", 14);
  d_in(d, &a, false);
  d_in(d, &f4, false);
  int64_t d35[2] = {3, 5};
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d35);
  ck_assert_int_eq(d_run_err(d, "Add wrong output"), TSR_PLUGIN_REASON_SHAPE);
  cpu_direct_free(d);
  /* Mixed dtypes. */
  d = cpu_direct_new("Mul", 14);
  d_in(d, &a, false);
  d_in(d, &i4, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d34);
  ck_assert_int_eq(d_run_err(d, "Mul f32 i32"), TSR_PLUGIN_REASON_DTYPE);
  cpu_direct_free(d);
  /* Wrong output dtype for a comparison. */
  d = cpu_direct_new("Less", 13);
  d_in(d, &a, false);
  d_in(d, &f4, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d34);
  ck_assert_int_eq(d_run_err(d, "Less to float"), TSR_PLUGIN_REASON_DTYPE);
  cpu_direct_free(d);
  /* Unsupported dtypes and attributes. */
  d = cpu_direct_new("Sqrt", 13);
  d_in(d, &i4, false);
  cpu_direct_output(d, TSR_DTYPE_INT32, 1, d4);
  ck_assert_int_eq(d_run_err(d, "Sqrt int"), TSR_PLUGIN_REASON_DTYPE);
  cpu_direct_free(d);
  d = cpu_direct_new("And", 7);
  d_in(d, &f4, false);
  d_in(d, &f4, false);
  cpu_direct_output(d, TSR_DTYPE_BOOL, 1, d4);
  ck_assert_int_eq(d_run_err(d, "And float"), TSR_PLUGIN_REASON_DTYPE);
  cpu_direct_free(d);
  tensor u4 = t_new(TSR_DTYPE_UINT32, 1, d4);
  d = cpu_direct_new("BitShift", 11);
  cpu_direct_attr_string(d, "direction", "UP");
  d_in(d, &u4, false);
  d_in(d, &u4, false);
  cpu_direct_output(d, TSR_DTYPE_UINT32, 1, d4);
  ck_assert_int_eq(d_run_err(d, "BitShift UP"), TSR_PLUGIN_REASON_ATTRIBUTE);
  cpu_direct_free(d);
  d = cpu_direct_new("Mod", 13);
  cpu_direct_attr_int(d, "fmod", 2);
  d_in(d, &i4, false);
  d_in(d, &i4, false);
  cpu_direct_output(d, TSR_DTYPE_INT32, 1, d4);
  ck_assert_int_eq(d_run_err(d, "Mod fmod 2"), TSR_PLUGIN_REASON_ATTRIBUTE);
  cpu_direct_free(d);
  /* Axes out of range, repeated; a bad Softmax axis; a bad CumSum axis. */
  int64_t bad[2] = {2, 0};
  d = cpu_direct_new("ReduceMean", 13);
  cpu_direct_attr_ints(d, "axes", 1, bad);
  d_in(d, &a, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d34);
  ck_assert_int_eq(d_run_err(d, "ReduceMean axis 2"), TSR_PLUGIN_REASON_ATTRIBUTE);
  cpu_direct_free(d);
  int64_t rep[2] = {1, -1}, d31[2] = {3, 1};
  d = cpu_direct_new("ReduceMax", 13);
  cpu_direct_attr_ints(d, "axes", 2, rep);
  d_in(d, &a, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d31);
  ck_assert_int_eq(d_run_err(d, "ReduceMax repeated axis"), TSR_PLUGIN_REASON_ATTRIBUTE);
  cpu_direct_free(d);
  d = cpu_direct_new("ReduceSum", 11);
  int64_t ax1 = 1;
  cpu_direct_attr_ints(d, "axes", 1, &ax1);
  d_in(d, &a, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d34); /* should be 3x1 */
  ck_assert_int_eq(d_run_err(d, "ReduceSum wrong output"), TSR_PLUGIN_REASON_SHAPE);
  cpu_direct_free(d);
  d = cpu_direct_new("Softmax", 13);
  cpu_direct_attr_int(d, "axis", 2);
  d_in(d, &a, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d34);
  ck_assert_int_eq(d_run_err(d, "Softmax axis 2"), TSR_PLUGIN_REASON_ATTRIBUTE);
  cpu_direct_free(d);
  d = cpu_direct_new("Softmax", 13);
  d_in(d, &i4, false);
  cpu_direct_output(d, TSR_DTYPE_INT32, 1, d4);
  ck_assert_int_eq(d_run_err(d, "Softmax int"), TSR_PLUGIN_REASON_DTYPE);
  cpu_direct_free(d);
  tensor ax = t_new(TSR_DTYPE_INT64, 0, NULL);
  t_seti(&ax, 0, 7);
  d = cpu_direct_new("CumSum", 14);
  d_in(d, &a, false);
  d_in(d, &ax, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d34);
  ck_assert_int_eq(d_run_err(d, "CumSum axis 7"), TSR_PLUGIN_REASON_ATTRIBUTE);
  cpu_direct_free(d);
  /* ArgMax over an empty axis. */
  int64_t d30[2] = {3, 0}, d3[1] = {3};
  tensor e = t_new(TSR_DTYPE_FLOAT32, 2, d30);
  d = cpu_direct_new("ArgMax", 13);
  cpu_direct_attr_int(d, "axis", 1);
  cpu_direct_attr_int(d, "keepdims", 0);
  d_in(d, &e, false);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, d3);
  ck_assert_int_eq(d_run_err(d, "ArgMax empty axis"), TSR_PLUGIN_REASON_SHAPE);
  cpu_direct_free(d);
  /* Where needs a bool condition. */
  d = cpu_direct_new("Where", 16);
  d_in(d, &f4, false);
  d_in(d, &f4, false);
  d_in(d, &f4, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d4);
  ck_assert_int_eq(d_run_err(d, "Where float cond"), TSR_PLUGIN_REASON_DTYPE);
  cpu_direct_free(d);
  /* Variadic with an input that does not broadcast. */
  d = cpu_direct_new("Sum", 13);
  d_in(d, &a, false);
  d_in(d, &b5, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d34);
  ck_assert_int_eq(d_run_err(d, "Sum 3x4 5"), TSR_PLUGIN_REASON_SHAPE);
  cpu_direct_free(d);
  t_free(&a);
  t_free(&b5);
  t_free(&i4);
  t_free(&f4);
  t_free(&u4);
  t_free(&ax);
  t_free(&e);
}
END_TEST

/* Inputs whose values check() cannot see (not constant) are validated by run(). */
START_TEST(errors_run_values) {
  int64_t d34[2] = {3, 4};
  tensor a = t_new(TSR_DTYPE_FLOAT32, 2, d34);
  int64_t two = 2, vals[2] = {1, 5};
  cpu_direct *d = cpu_direct_new("ReduceSum", 13);
  d_in(d, &a, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 1, &two, vals, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d34);
  ck_assert_int_eq(d_run_err(d, "ReduceSum runtime axis 5"), -1);
  cpu_direct_free(d);
  int64_t dup[2] = {0, -2};
  d = cpu_direct_new("ReduceSum", 13);
  d_in(d, &a, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 1, &two, dup, false);
  int64_t d11[2] = {1, 1};
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d11);
  ck_assert_int_eq(d_run_err(d, "ReduceSum runtime repeated axis"), -1);
  cpu_direct_free(d);
  tensor ax = t_new(TSR_DTYPE_INT32, 0, NULL);
  t_seti(&ax, 0, -3);
  d = cpu_direct_new("CumSum", 14);
  d_in(d, &a, false);
  d_in(d, &ax, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d34);
  ck_assert_int_eq(d_run_err(d, "CumSum runtime axis -3"), -1);
  cpu_direct_free(d);
  t_free(&a);
  t_free(&ax);
}
END_TEST

/* run() alone (no check first) refuses inconsistent shapes and dtypes with a message. */
START_TEST(errors_run_direct) {
  char err[256];
  int64_t d34[2] = {3, 4}, d35[2] = {3, 5}, d4[1] = {4}, d5[1] = {5};
  tensor a = t_new(TSR_DTYPE_FLOAT32, 2, d34), y35 = t_new(TSR_DTYPE_FLOAT32, 2, d35),
         b4 = t_new(TSR_DTYPE_FLOAT32, 1, d4), b5 = t_new(TSR_DTYPE_FLOAT32, 1, d5),
         i4 = t_new(TSR_DTYPE_INT32, 1, d4), y34 = t_new(TSR_DTYPE_FLOAT32, 2, d34),
         yb = t_new(TSR_DTYPE_BOOL, 2, d34);
  tensor in2[3] = {a, b4, b4};
  ck_assert_int_eq(run_direct("Add", 14, 2, in2, 1, &y35, err, sizeof err), -1);
  ck_assert(err[0]);
  tensor in_bad[2] = {a, b5};
  ck_assert_int_eq(run_direct("Mul", 14, 2, in_bad, 1, &y34, err, sizeof err), -1);
  ck_assert(err[0]);
  tensor in_mixed[2] = {a, i4};
  ck_assert_int_eq(run_direct("Sub", 14, 2, in_mixed, 1, &y34, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("Less", 13, 2, in2, 1, &y34, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("Exp", 13, 1, &a, 1, &y35, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("Exp", 13, 1, &i4, 1, &y34, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("Where", 16, 3, in2, 1, &y34, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("Identity", 16, 1, &a, 1, &y35, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("Softmax", 13, 1, &a, 1, &y35, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("ReduceSum", 11, 1, &a, 1, &y35, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("ArgMax", 13, 1, &a, 1, &y34, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("Sum", 13, 2, in_bad, 1, &y34, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("Not", 1, 1, &a, 1, &yb, err, sizeof err), -1);
  ck_assert_int_eq(run_direct("Clip", 13, 1, &a, 1, &y35, err, sizeof err), -1);
  /* CumSum without its axis. */
  ck_assert_int_eq(run_direct("CumSum", 14, 1, &a, 1, &y34, err, sizeof err), -1);
  t_free(&a);
  t_free(&y35);
  t_free(&b4);
  t_free(&b5);
  t_free(&i4);
  t_free(&y34);
  t_free(&yb);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("kernels_elementwise");
  TCase *tc = tcase_create("elementwise");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, binary_float_random);
  tcase_add_test(tc, binary_broadcast_patterns);
  tcase_add_test(tc, binary_int_random);
  tcase_add_test(tc, binary_int_edges);
  tcase_add_test(tc, pow_mixed);
  tcase_add_test(tc, bitshift_random);
  tcase_add_test(tc, logic_random);
  tcase_add_test(tc, variadic_random);
  tcase_add_test(tc, where_random);
  tcase_add_test(tc, unary_float_random);
  tcase_add_test(tc, unary_special_values);
  tcase_add_test(tc, unary_dense_accuracy);
  tcase_add_test(tc, gelu_approximate);
  tcase_add_test(tc, fused_activation_rows);
  tcase_add_test(tc, unary_int);
  tcase_add_test(tc, clip_all);
  tcase_add_test(tc, identity_dropout);
  suite_add_tcase(s, tc);
  TCase *tr = tcase_create("reduce");
  tcase_set_timeout(tr, 120);
  tcase_add_test(tr, reduce_random);
  tcase_add_test(tr, reduce_fixed);
  tcase_add_test(tr, argmax_random);
  tcase_add_test(tr, softmax_random);
  tcase_add_test(tr, softmax_large_numbers);
  tcase_add_test(tr, softmax_special_rows);
  tcase_add_test(tr, cumsum_random);
  suite_add_tcase(s, tr);
  TCase *te = tcase_create("robustness");
  tcase_set_timeout(te, 120);
  tcase_add_test(te, threads_consistent);
  tcase_add_test(te, generic_isa);
  tcase_add_test(te, empty_tensors);
  tcase_add_test(te, errors_check);
  tcase_add_test(te, errors_run_values);
  tcase_add_test(te, errors_run_direct);
  suite_add_tcase(s, te);
  return s;
}

int main(void) { return tsr_test_run_suite(suite()) != 0; }
