/* Unit suite for the CPU shape/data-movement kernels (devices/cpu/shape_ops.c) and Resize /
 * Upsample (devices/cpu/resize.c).
 *
 * Three kinds of tests:
 *  - fixed cases from the ONNX backend node tests (generated once from
 *    onnx/backend/test/data/node, onnx 1.12; see the table at the end of this file),
 *  - random cases against naive references written here index by index (fixed seeds, many
 *    iterations, every element size, empty tensors, one thread and several),
 *  - error cases: the kernels must refuse in check() or fail with a message, never crash. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cpu_direct.h"
#include "tests/harness.h"

/* ---- Random numbers ------------------------------------------------------------------------ */

static uint64_t rng_state;

static void rng_seed(uint64_t s) { rng_state = s * 0x9E3779B97F4A7C15ull + 0x1234567ull; }

static uint64_t rng_next(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi]. */
static int64_t rnd(int64_t lo, int64_t hi) {
  return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

static double rndf(void) { return (double)(rng_next() >> 11) / 9007199254740992.0; }

/* ---- Test tensors ---------------------------------------------------------------------------- */

#define TMAX_RANK 8 /* cpu_direct keeps at most 8 dimensions per tensor */

typedef struct tt {
  uint32_t dtype;
  uint32_t rank;
  int64_t dims[TMAX_RANK];
  size_t count, es;
  uint8_t *data;
} tt;

static tt tt_new(uint32_t dtype, uint32_t rank, const int64_t *dims) {
  tt t = {.dtype = dtype, .rank = rank, .count = 1, .es = cpu_dtype_size(dtype)};
  for (uint32_t i = 0; i < rank; i++) {
    t.dims[i] = dims[i];
    t.count *= (size_t)dims[i];
  }
  t.data = calloc(t.count ? t.count : 1, t.es);
  return t;
}

/* Random bytes: enough for data movement, which must not look at values. */
static tt tt_rand_bytes(uint32_t dtype, uint32_t rank, const int64_t *dims) {
  tt t = tt_new(dtype, rank, dims);
  for (size_t i = 0; i < t.count * t.es; i++) t.data[i] = (uint8_t)rng_next();
  if (dtype == TSR_DTYPE_BOOL)
    for (size_t i = 0; i < t.count; i++) t.data[i] &= 1;
  return t;
}

static void tt_free(tt *t) {
  free(t->data);
  t->data = NULL;
}

static double tt_get(const tt *t, size_t i) {
  cpu_tensor c = {.dtype = t->dtype, .data = t->data, .count = t->count};
  return cpu_read_f64(&c, i);
}

static void tt_set(tt *t, size_t i, double v) {
  cpu_tensor c = {.dtype = t->dtype, .data = t->data, .count = t->count};
  cpu_write_f64(&c, i, v);
}

static int64_t tt_get_int(const tt *t, size_t i) {
  cpu_tensor c = {.dtype = t->dtype, .data = t->data, .count = t->count};
  return cpu_read_int(&c, i);
}

/* Stores the low bytes of v, exact for every integer dtype. */
static void tt_set_int(tt *t, size_t i, int64_t v) { memcpy(t->data + i * t->es, &v, t->es); }

static void unravel(size_t i, uint32_t r, const int64_t *dims, int64_t *idx) {
  for (uint32_t k = r; k-- > 0;) {
    idx[k] = (int64_t)(i % (size_t)dims[k]);
    i /= (size_t)dims[k];
  }
}

static size_t ravel(uint32_t r, const int64_t *dims, const int64_t *idx) {
  size_t o = 0;
  for (uint32_t k = 0; k < r; k++) o = o * (size_t)dims[k] + (size_t)idx[k];
  return o;
}

static const uint32_t all_dtypes[] = {TSR_DTYPE_BOOL,    TSR_DTYPE_INT8,    TSR_DTYPE_UINT8,
                                      TSR_DTYPE_INT16,   TSR_DTYPE_UINT16,  TSR_DTYPE_FLOAT16,
                                      TSR_DTYPE_BFLOAT16, TSR_DTYPE_INT32,  TSR_DTYPE_UINT32,
                                      TSR_DTYPE_FLOAT32, TSR_DTYPE_INT64,   TSR_DTYPE_UINT64,
                                      TSR_DTYPE_FLOAT64};
#define N_DTYPES (sizeof all_dtypes / sizeof all_dtypes[0])

static uint32_t rand_dtype(void) { return all_dtypes[rnd(0, N_DTYPES - 1)]; }

/* Random dims of rank r whose product stays at most `max_count`; sometimes an empty axis. */
static void rand_dims(uint32_t r, int64_t *dims, int64_t max_dim, size_t max_count,
                      bool allow_empty) {
  size_t count = 1;
  for (uint32_t i = 0; i < r; i++) {
    int64_t d = rnd(1, max_dim);
    while (d > 1 && count * (size_t)d > max_count) d /= 2;
    dims[i] = d;
    count *= (size_t)d;
  }
  if (allow_empty && r > 0 && rnd(0, 19) == 0) dims[rnd(0, r - 1)] = 0;
}

/* ---- Running kernels ------------------------------------------------------------------------- */

static size_t threads_for(int it) { return it % 3 == 0 ? 4 : 1; }

static void in_tt(cpu_direct *d, const tt *t) {
  cpu_direct_input(d, t->dtype, t->rank, t->dims, t->data, false);
}

static void in_i64(cpu_direct *d, size_t n, const int64_t *v) {
  int64_t dims[1] = {(int64_t)n};
  cpu_direct_input(d, TSR_DTYPE_INT64, 1, dims, v, false);
}

static void in_scalar(cpu_direct *d, uint32_t dtype, double v) {
  uint8_t buf[8] = {0};
  cpu_tensor c = {.dtype = dtype, .data = buf, .count = 1};
  cpu_write_f64(&c, 0, v);
  cpu_direct_input(d, dtype, 0, NULL, buf, false);
}

static void in_f32(cpu_direct *d, size_t n, const float *v) {
  int64_t dims[1] = {(int64_t)n};
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, dims, v, false);
}

static void out_like(cpu_direct *d, const tt *t) {
  cpu_direct_output(d, t->dtype, t->rank, t->dims);
}

static void run_ok(cpu_direct *d, size_t threads, const char *what) {
  char err[512];
  int rc = cpu_direct_run(d, threads, err, sizeof err);
  ck_assert_msg(rc == 0, "%s: run failed (%d): %s", what, rc, err);
}

/* The kernel must fail at run time (-1) with a message mentioning `needle`. */
static void run_fails(cpu_direct *d, const char *needle, const char *what) {
  char err[512];
  int rc = cpu_direct_run(d, 1, err, sizeof err);
  ck_assert_msg(rc == -1, "%s: expected a failure, got %d (%s)", what, rc, err);
  ck_assert_msg(err[0] != '\0', "%s: failure without a message", what);
  ck_assert_msg(!needle || strstr(err, needle), "%s: message '%s' lacks '%s'", what, err, needle);
}

/* check() must refuse with `reason`. */
static void run_refused(cpu_direct *d, tsr_plugin_reason reason, const char *what) {
  char err[512];
  int rc = cpu_direct_run(d, 1, err, sizeof err);
  ck_assert_msg(rc == (int)reason, "%s: expected refusal %d, got %d (%s)", what, (int)reason, rc,
                err);
  ck_assert_msg(err[0] != '\0', "%s: refusal without a message", what);
}

static void expect_bytes(cpu_direct *d, uint32_t k, const tt *want, const char *what, int it) {
  cpu_tensor *o = cpu_direct_out(d, k);
  ck_assert_msg(o->count == want->count, "%s #%d: count %zu vs %zu", what, it, o->count,
                want->count);
  for (size_t i = 0; i < want->count; i++)
    if (memcmp((uint8_t *)o->data + i * want->es, want->data + i * want->es, want->es)) {
      ck_abort_msg("%s #%d: element %zu differs (got %g, want %g)", what, it, i,
                   cpu_read_f64(o, i), tt_get(want, i));
    }
}

static bool close_enough(double got, double want, double tol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return fabs(got - want) <= tol * (1.0 + fabs(want));
}

/* ---- Fixed cases from the ONNX backend node tests -------------------------------------------- */

enum { FX_INT, FX_FLOAT, FX_STRING, FX_INTS, FX_FLOATS };

typedef struct fx_attr {
  const char *name;
  int type;
  int64_t i;
  float f;
  const char *s;
  size_t n;
  const int64_t *ints;
  const float *floats;
} fx_attr;

typedef struct fx_tensor {
  uint32_t dtype; /* 0: an absent optional input */
  uint32_t rank;
  int64_t dims[6];
  size_t count;
  const double *f;  /* float dtypes */
  const int64_t *i; /* integer and bool dtypes */
} fx_tensor;

typedef struct fx_case {
  const char *name;
  const char *op;
  int64_t opset;
  size_t n_attr;
  fx_attr attrs[6];
  size_t n_in;
  fx_tensor in[5];
  size_t n_out;
  fx_tensor out[3];
} fx_case;

/* The table lives at the end of the file. */
static const fx_case *fixture_table(size_t *count);

static bool fx_is_float(uint32_t dt) {
  return dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16 ||
         dt == TSR_DTYPE_BFLOAT16;
}

static tt fx_make(const fx_tensor *f) {
  tt t = tt_new(f->dtype, f->rank, f->dims);
  for (size_t i = 0; i < f->count; i++) {
    if (fx_is_float(f->dtype))
      tt_set(&t, i, f->f[i]);
    else
      tt_set_int(&t, i, f->i[i]);
  }
  return t;
}

static void fx_run(const fx_case *c, size_t threads) {
  cpu_direct *d = cpu_direct_new(c->op, c->opset);
  for (size_t a = 0; a < c->n_attr; a++) {
    const fx_attr *at = &c->attrs[a];
    switch (at->type) {
    case FX_INT: cpu_direct_attr_int(d, at->name, at->i); break;
    case FX_FLOAT: cpu_direct_attr_float(d, at->name, at->f); break;
    case FX_STRING: cpu_direct_attr_string(d, at->name, at->s); break;
    case FX_INTS: cpu_direct_attr_ints(d, at->name, at->n, at->ints); break;
    default: cpu_direct_attr_floats(d, at->name, at->n, at->floats); break;
    }
  }
  for (size_t k = 0; k < c->n_in; k++) {
    if (!c->in[k].dtype) {
      cpu_direct_input_absent(d);
      continue;
    }
    tt t = fx_make(&c->in[k]);
    in_tt(d, &t);
    tt_free(&t);
  }
  for (size_t k = 0; k < c->n_out; k++)
    cpu_direct_output(d, c->out[k].dtype, c->out[k].rank, c->out[k].dims);
  run_ok(d, threads, c->name);
  for (size_t k = 0; k < c->n_out; k++) {
    const fx_tensor *w = &c->out[k];
    cpu_tensor *o = cpu_direct_out(d, (uint32_t)k);
    ck_assert_msg(o->count == w->count, "%s: output %zu count", c->name, k);
    for (size_t i = 0; i < w->count; i++) {
      if (fx_is_float(w->dtype)) {
        /* float16 keeps 11 bits; bfloat16 8 (the ONNX 1.12 data truncates to bfloat16 where
         * the kernel rounds to nearest, so allow one step). */
        double tol = w->dtype == TSR_DTYPE_FLOAT16    ? 1e-3
                     : w->dtype == TSR_DTYPE_BFLOAT16 ? 8e-3
                                                      : 1e-5;
        double got = cpu_read_f64(o, i);
        ck_assert_msg(close_enough(got, w->f[i], tol),
                      "%s: output %zu element %zu is %.9g, want %.9g", c->name, k, i, got, w->f[i]);
      } else {
        int64_t got = cpu_read_int(o, i);
        ck_assert_msg(got == w->i[i], "%s: output %zu element %zu is %lld, want %lld", c->name,
                      k, i, (long long)got, (long long)w->i[i]);
      }
    }
  }
  cpu_direct_free(d);
}

START_TEST(test_onnx_fixtures) {
  size_t n;
  const fx_case *fx = fixture_table(&n);
  for (size_t i = 0; i < n; i++) {
    fx_run(&fx[i], 1);
    fx_run(&fx[i], 3);
  }
}
END_TEST

/* ---- Reshape, Flatten, Squeeze, Unsqueeze ---------------------------------------------------- */

START_TEST(test_reshape_family_random) {
  rng_seed(11);
  for (int it = 0; it < 200; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(0, 5);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 6, 4000, true);
    tt x = tt_rand_bytes(dt, r, dims);
    int which = it % 4;
    cpu_direct *d;
    int64_t od[TMAX_RANK];
    uint32_t orank = 0;
    if (which == 0) { /* Reshape to a flattened-then-split shape, with 0 and -1 entries */
      /* An empty tensor reshaped to [0] needs allowzero (a 0 entry otherwise copies). */
      bool empty = x.count == 0 && r >= 1;
      int64_t opset = it % 8 == 0 && !empty ? 1 : 14;
      d = cpu_direct_new("Reshape", opset);
      if (empty) cpu_direct_attr_int(d, "allowzero", 1);
      int64_t shape[3];
      size_t ns;
      if (r >= 1 && x.count > 0) {
        shape[0] = 0; /* copy dims[0] */
        shape[1] = -1;
        od[0] = dims[0];
        od[1] = (int64_t)x.count / dims[0];
        ns = 2;
        orank = 2;
      } else {
        shape[0] = (int64_t)x.count;
        od[0] = (int64_t)x.count;
        ns = 1;
        orank = 1;
      }
      in_tt(d, &x);
      if (opset >= 5) {
        in_i64(d, ns, shape);
      } else {
        for (size_t i = 0; i < ns; i++) shape[i] = od[i];
        cpu_direct_attr_ints(d, "shape", ns, shape);
      }
    } else if (which == 1) {
      int64_t axis = rnd(-(int64_t)r, r);
      d = cpu_direct_new("Flatten", 13);
      cpu_direct_attr_int(d, "axis", axis);
      int64_t a = axis < 0 ? axis + r : axis;
      od[0] = od[1] = 1;
      for (uint32_t i = 0; i < r; i++) od[i < a ? 0 : 1] *= dims[i];
      orank = 2;
      in_tt(d, &x);
    } else if (which == 2) {
      /* Squeeze: put some 1s in, squeeze a subset or all. */
      for (uint32_t i = 0; i < r; i++)
        if (rnd(0, 2) == 0) dims[i] = 1;
      tt_free(&x);
      x = tt_rand_bytes(dt, r, dims);
      int64_t opset = it % 8 == 2 ? 11 : 13;
      d = cpu_direct_new("Squeeze", opset);
      int64_t axes[TMAX_RANK];
      size_t na = 0;
      bool all = rnd(0, 3) == 0;
      for (uint32_t i = 0; i < r; i++) {
        if (dims[i] == 1 && (all || rnd(0, 1)))
          axes[na++] = rnd(0, 1) ? (int64_t)i : (int64_t)i - (int64_t)r;
        else
          od[orank++] = dims[i];
      }
      in_tt(d, &x);
      if (all) {
        orank = 0;
        for (uint32_t i = 0; i < r; i++)
          if (dims[i] != 1) od[orank++] = dims[i];
      } else if (opset >= 13) {
        in_i64(d, na, axes);
      } else {
        cpu_direct_attr_ints(d, "axes", na, axes);
      }
    } else {
      int64_t opset = it % 8 == 3 ? 11 : 13;
      d = cpu_direct_new("Unsqueeze", opset);
      size_t na = (size_t)rnd(1, 3);
      orank = r + (uint32_t)na;
      bool ins[TMAX_RANK] = {false};
      int64_t axes[TMAX_RANK];
      for (size_t i = 0; i < na; i++) {
        int64_t a;
        do a = rnd(0, orank - 1);
        while (ins[a]);
        ins[a] = true;
        axes[i] = rnd(0, 1) ? a : a - (int64_t)orank;
      }
      for (uint32_t i = 0, k = 0; i < orank; i++) od[i] = ins[i] ? 1 : dims[k++];
      in_tt(d, &x);
      if (opset >= 13)
        in_i64(d, na, axes);
      else
        cpu_direct_attr_ints(d, "axes", na, axes);
    }
    cpu_direct_output(d, dt, orank, od);
    run_ok(d, threads_for(it), "reshape family");
    expect_bytes(d, 0, &x, "reshape family", it);
    cpu_direct_free(d);
    tt_free(&x);
  }
}
END_TEST

/* ---- Transpose, DepthToSpace, SpaceToDepth ------------------------------------------------- */

START_TEST(test_transpose_random) {
  rng_seed(12);
  for (int it = 0; it < 300; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(0, 6);
    int64_t dims[TMAX_RANK], perm[TMAX_RANK], od[TMAX_RANK];
    /* Some big 2-D cases exercise the tiled path on several threads. */
    if (it % 10 == 0 && r >= 2) {
      r = 2;
      dims[0] = rnd(30, 300);
      dims[1] = rnd(30, 300);
    } else {
      rand_dims(r, dims, 7, 6000, true);
    }
    for (uint32_t i = 0; i < r; i++) perm[i] = i;
    for (uint32_t i = r; i > 1; i--) {
      uint32_t j = (uint32_t)rnd(0, i - 1);
      int64_t t = perm[i - 1];
      perm[i - 1] = perm[j];
      perm[j] = t;
    }
    bool dflt = rnd(0, 5) == 0;
    if (dflt)
      for (uint32_t i = 0; i < r; i++) perm[i] = r - 1 - i;
    for (uint32_t i = 0; i < r; i++) od[i] = dims[perm[i]];
    tt x = tt_rand_bytes(dt, r, dims), want = tt_new(dt, r, od);
    for (size_t i = 0; i < want.count; i++) {
      int64_t oi[TMAX_RANK], ii[TMAX_RANK];
      unravel(i, r, od, oi);
      for (uint32_t k = 0; k < r; k++) ii[perm[k]] = oi[k];
      memcpy(want.data + i * want.es, x.data + ravel(r, dims, ii) * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new("Transpose", 13);
    if (!dflt) cpu_direct_attr_ints(d, "perm", r, perm);
    in_tt(d, &x);
    out_like(d, &want);
    run_ok(d, threads_for(it), "transpose");
    expect_bytes(d, 0, &want, "transpose", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

START_TEST(test_depth_space_random) {
  rng_seed(13);
  for (int it = 0; it < 150; it++) {
    uint32_t dt = rand_dtype();
    int64_t b = rnd(1, 3), N = rnd(1, 2), H = rnd(1, 4), W = rnd(1, 4), C = rnd(1, 3);
    int kind = it % 3; /* 0: DCR, 1: CRD, 2: SpaceToDepth */
    int64_t in_d[4], out_d[4];
    if (kind < 2) {
      int64_t c = C;
      int64_t i4[4] = {N, c * b * b, H, W}, o4[4] = {N, c, H * b, W * b};
      memcpy(in_d, i4, sizeof i4);
      memcpy(out_d, o4, sizeof o4);
    } else {
      int64_t i4[4] = {N, C, H * b, W * b}, o4[4] = {N, C * b * b, H, W};
      memcpy(in_d, i4, sizeof i4);
      memcpy(out_d, o4, sizeof o4);
    }
    tt x = tt_rand_bytes(dt, 4, in_d), want = tt_new(dt, 4, out_d);
    for (size_t i = 0; i < want.count; i++) {
      int64_t o[4], s[4];
      unravel(i, 4, out_d, o);
      if (kind < 2) { /* out[n][c][h*b+y][w*b+x] */
        int64_t n = o[0], c = o[1], h = o[2] / b, y = o[2] % b, w = o[3] / b, xx = o[3] % b;
        int64_t cc = kind == 0 ? (y * b + xx) * out_d[1] + c : c * b * b + y * b + xx;
        int64_t t[4] = {n, cc, h, w};
        memcpy(s, t, sizeof t);
      } else { /* out[n][(y*b+x)*C + c][h][w] = in[n][c][h*b+y][w*b+x] */
        int64_t n = o[0], q = o[1] / C, c = o[1] % C, y = q / b, xx = q % b;
        int64_t t[4] = {n, c, o[2] * b + y, o[3] * b + xx};
        memcpy(s, t, sizeof t);
      }
      memcpy(want.data + i * want.es, x.data + ravel(4, in_d, s) * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new(kind < 2 ? "DepthToSpace" : "SpaceToDepth", 13);
    cpu_direct_attr_int(d, "blocksize", b);
    if (kind == 1) cpu_direct_attr_string(d, "mode", "CRD");
    else if (kind == 0 && rnd(0, 1)) cpu_direct_attr_string(d, "mode", "DCR");
    in_tt(d, &x);
    out_like(d, &want);
    run_ok(d, threads_for(it), "depth/space");
    expect_bytes(d, 0, &want, "depth/space", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

/* ---- Concat, Split -------------------------------------------------------------------------- */

START_TEST(test_concat_random) {
  rng_seed(14);
  for (int it = 0; it < 200; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(1, 5);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 6, 3000, false);
    int64_t axis = rnd(0, r - 1);
    int n_in = (int)rnd(1, 4);
    tt xs[4];
    int64_t od[TMAX_RANK];
    memcpy(od, dims, sizeof od);
    od[axis] = 0;
    for (int k = 0; k < n_in; k++) {
      int64_t dk[TMAX_RANK];
      memcpy(dk, dims, sizeof dk);
      dk[axis] = rnd(0, 4);
      od[axis] += dk[axis];
      xs[k] = tt_rand_bytes(dt, r, dk);
    }
    tt want = tt_new(dt, r, od);
    for (size_t i = 0; i < want.count; i++) {
      int64_t o[TMAX_RANK];
      unravel(i, r, od, o);
      int k = 0;
      while (o[axis] >= xs[k].dims[axis]) o[axis] -= xs[k++].dims[axis];
      memcpy(want.data + i * want.es, xs[k].data + ravel(r, xs[k].dims, o) * xs[k].es, xs[k].es);
    }
    cpu_direct *d = cpu_direct_new("Concat", 13);
    cpu_direct_attr_int(d, "axis", rnd(0, 1) ? axis : axis - (int64_t)r);
    for (int k = 0; k < n_in; k++) in_tt(d, &xs[k]);
    out_like(d, &want);
    run_ok(d, threads_for(it), "concat");
    expect_bytes(d, 0, &want, "concat", it);
    cpu_direct_free(d);
    for (int k = 0; k < n_in; k++) tt_free(&xs[k]);
    tt_free(&want);
  }
}
END_TEST

/* Concat of large tensors with few outer rows (along the channels of one image, as
 * SqueezeNet's and Inception's modules concatenate): the kernel copies the output in pieces of
 * 32 KiB, which here fall inside rows, across inputs and inside a single input's chunk;
 * elements of one and two bytes too, on one to three threads. */
START_TEST(test_concat_large) {
  rng_seed(16);
  static const struct {
    uint32_t dt;
    uint32_t rank;
    int64_t dims[4];
    int64_t axis;
    int64_t parts[3];
  } cases[] = {
      {TSR_DTYPE_FLOAT32, 4, {1, 0, 37, 53}, 1, {5, 17, 3}},
      {TSR_DTYPE_UINT8, 4, {1, 0, 61, 67}, 1, {9, 1, 30}},
      {TSR_DTYPE_FLOAT16, 4, {2, 3, 0, 71}, 2, {40, 97, 13}},
      {TSR_DTYPE_FLOAT32, 2, {3, 0}, 1, {9000, 1, 7000}},
      {TSR_DTYPE_FLOAT32, 3, {0, 64, 64}, 0, {3, 2, 4}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int v = 0; v < 3; v++) {
      uint32_t r = cases[c].rank;
      int64_t axis = cases[c].axis, od[TMAX_RANK];
      memcpy(od, cases[c].dims, r * sizeof *od);
      tt xs[3];
      for (int k = 0; k < 3; k++) {
        int64_t dk[TMAX_RANK];
        memcpy(dk, cases[c].dims, r * sizeof *dk);
        dk[axis] = cases[c].parts[k];
        od[axis] += dk[axis];
        xs[k] = tt_rand_bytes(cases[c].dt, r, dk);
      }
      tt want = tt_new(cases[c].dt, r, od);
      for (size_t i = 0; i < want.count; i++) {
        int64_t o[TMAX_RANK] = {0};
        unravel(i, r, od, o);
        int k = 0;
        while (o[axis] >= xs[k].dims[axis]) o[axis] -= xs[k++].dims[axis];
        memcpy(want.data + i * want.es, xs[k].data + ravel(r, xs[k].dims, o) * xs[k].es,
               xs[k].es);
      }
      cpu_direct *d = cpu_direct_new("Concat", 13);
      cpu_direct_attr_int(d, "axis", axis);
      for (int k = 0; k < 3; k++) in_tt(d, &xs[k]);
      out_like(d, &want);
      static const size_t threads[] = {1, 2, 3};
      run_ok(d, threads[v], "concat");
      expect_bytes(d, 0, &want, "concat large", (int)c * 3 + v);
      cpu_direct_free(d);
      for (int k = 0; k < 3; k++) tt_free(&xs[k]);
      tt_free(&want);
    }
}
END_TEST

START_TEST(test_split_random) {
  rng_seed(15);
  for (int it = 0; it < 200; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(1, 4);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 6, 3000, false);
    int64_t axis = rnd(0, r - 1);
    int n_out = (int)rnd(1, 4);
    int mode = it % 3; /* 0: equal, 1: attribute (opset 11), 2: input (opset 13) */
    int64_t split[4];
    if (mode == 0) {
      dims[axis] = n_out * rnd(0, 3);
      for (int k = 0; k < n_out; k++) split[k] = dims[axis] / n_out;
    } else {
      dims[axis] = 0;
      for (int k = 0; k < n_out; k++) dims[axis] += split[k] = rnd(0, 4);
    }
    tt x = tt_rand_bytes(dt, r, dims);
    cpu_direct *d = cpu_direct_new("Split", mode == 1 ? 11 : 13);
    if (rnd(0, 1) || axis) cpu_direct_attr_int(d, "axis", rnd(0, 1) ? axis : axis - (int64_t)r);
    in_tt(d, &x);
    if (mode == 1) cpu_direct_attr_ints(d, "split", (size_t)n_out, split);
    if (mode == 2) in_i64(d, (size_t)n_out, split);
    tt want[4];
    int64_t start = 0;
    for (int k = 0; k < n_out; k++) {
      int64_t od[TMAX_RANK];
      memcpy(od, dims, sizeof od);
      od[axis] = split[k];
      want[k] = tt_new(dt, r, od);
      for (size_t i = 0; i < want[k].count; i++) {
        int64_t o[TMAX_RANK];
        unravel(i, r, od, o);
        o[axis] += start;
        memcpy(want[k].data + i * x.es, x.data + ravel(r, dims, o) * x.es, x.es);
      }
      start += split[k];
      out_like(d, &want[k]);
    }
    run_ok(d, threads_for(it), "split");
    for (int k = 0; k < n_out; k++) {
      expect_bytes(d, (uint32_t)k, &want[k], "split", it);
      tt_free(&want[k]);
    }
    cpu_direct_free(d);
    tt_free(&x);
  }
}
END_TEST

/* ---- Slice ------------------------------------------------------------------------------------
 */

/* The indices a slice visits on one axis, by walking it (independent of the kernel's counting). */
static size_t slice_walk(int64_t d, int64_t start, int64_t end, int64_t step, int64_t *out) {
  size_t n = 0;
  if (step > 0) {
    int64_t s = start < 0 ? start + d : start, e = end < 0 ? end + d : end;
    s = s < 0 ? 0 : s > d ? d : s;
    e = e < 0 ? 0 : e > d ? d : e;
    for (int64_t i = s; i < e; i += step) out[n++] = i;
  } else {
    int64_t s = start < 0 ? start + d : start, e = end < 0 ? end + d : end;
    s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
    e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
    for (int64_t i = s; i > e; i += step) out[n++] = i;
  }
  return n;
}

static int64_t rand_bound(int64_t d) {
  switch (rnd(0, 7)) {
  case 0: return INT64_MAX;
  case 1: return INT64_MIN;
  case 2: return -d - rnd(0, 3);
  case 3: return d + rnd(0, 3);
  default: return rnd(-d, d);
  }
}

START_TEST(test_slice_random) {
  rng_seed(16);
  for (int it = 0; it < 400; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(1, 5);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 9, 8000, true);
    int64_t opset = it % 5 == 0 ? 9 : it % 5 == 1 ? 10 : 13;
    size_t na = (size_t)rnd(1, r);
    int64_t axes[TMAX_RANK], starts[TMAX_RANK], ends[TMAX_RANK], steps[TMAX_RANK];
    bool used[TMAX_RANK] = {false};
    int64_t lists[TMAX_RANK][16], od[TMAX_RANK];
    for (uint32_t i = 0; i < r; i++) {
      od[i] = dims[i];
      for (int64_t k = 0; k < dims[i]; k++) lists[i][k] = k;
    }
    bool default_axes = rnd(0, 4) == 0 && na == r;
    for (size_t i = 0; i < na; i++) {
      int64_t a;
      if (default_axes) {
        a = (int64_t)i;
      } else {
        do a = rnd(0, r - 1);
        while (used[a]);
      }
      used[a] = true;
      axes[i] = rnd(0, 1) ? a : a - (int64_t)r;
      starts[i] = rand_bound(dims[a]);
      ends[i] = rand_bound(dims[a]);
      steps[i] = opset >= 10 ? (rnd(0, 1) ? 1 : -1) * rnd(1, 3) : 1;
      od[a] = (int64_t)slice_walk(dims[a], starts[i], ends[i], steps[i], lists[a]);
    }
    bool default_steps = opset >= 10 && rnd(0, 3) == 0;
    if (default_steps) {
      for (size_t i = 0; i < na; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];
        steps[i] = 1;
        od[a] = (int64_t)slice_walk(dims[a], starts[i], ends[i], 1, lists[a]);
      }
    }
    tt x = tt_rand_bytes(dt, r, dims), want = tt_new(dt, r, od);
    for (size_t i = 0; i < want.count; i++) {
      int64_t o[TMAX_RANK];
      unravel(i, r, od, o);
      for (uint32_t k = 0; k < r; k++) o[k] = lists[k][o[k]];
      memcpy(want.data + i * x.es, x.data + ravel(r, dims, o) * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new("Slice", opset);
    in_tt(d, &x);
    if (opset < 10) {
      cpu_direct_attr_ints(d, "starts", na, starts);
      cpu_direct_attr_ints(d, "ends", na, ends);
      if (!default_axes) cpu_direct_attr_ints(d, "axes", na, axes);
    } else {
      /* int32 parameters are allowed too; use them when the values fit. */
      bool fit = true;
      for (size_t i = 0; i < na; i++)
        fit = fit && starts[i] == (int32_t)starts[i] && ends[i] == (int32_t)ends[i];
      int64_t pdims[1] = {(int64_t)na};
      if (fit && it % 2) {
        int32_t s32[TMAX_RANK], e32[TMAX_RANK];
        for (size_t i = 0; i < na; i++) {
          s32[i] = (int32_t)starts[i];
          e32[i] = (int32_t)ends[i];
        }
        cpu_direct_input(d, TSR_DTYPE_INT32, 1, pdims, s32, false);
        cpu_direct_input(d, TSR_DTYPE_INT32, 1, pdims, e32, false);
      } else {
        in_i64(d, na, starts);
        in_i64(d, na, ends);
      }
      if (!default_axes || !default_steps) in_i64(d, na, axes);
      if (!default_steps) in_i64(d, na, steps);
    }
    out_like(d, &want);
    run_ok(d, threads_for(it), "slice");
    expect_bytes(d, 0, &want, "slice", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

START_TEST(test_slice_huge_steps) {
  int64_t dims[1] = {10};
  tt x = tt_new(TSR_DTYPE_INT32, 1, dims);
  for (int i = 0; i < 10; i++) tt_set_int(&x, (size_t)i, i);
  const int64_t cases[][4] = {/* start, end, step, expected first */
                              {2, INT64_MAX, INT64_MAX, 2},
                              {-1, INT64_MIN, INT64_MIN, 9},
                              {INT64_MAX, INT64_MIN, -4, 9}};
  const int64_t counts[] = {1, 1, 3};
  for (int c = 0; c < 3; c++) {
    cpu_direct *d = cpu_direct_new("Slice", 13);
    in_tt(d, &x);
    in_i64(d, 1, &cases[c][0]);
    in_i64(d, 1, &cases[c][1]);
    int64_t axis = 0;
    in_i64(d, 1, &axis);
    in_i64(d, 1, &cases[c][2]);
    cpu_direct_output(d, TSR_DTYPE_INT32, 1, &counts[c]);
    run_ok(d, 1, "slice huge steps");
    cpu_tensor *o = cpu_direct_out(d, 0);
    ck_assert_int_eq(cpu_read_int(o, 0), cases[c][3]);
    if (c == 2) {
      ck_assert_int_eq(cpu_read_int(o, 1), 5);
      ck_assert_int_eq(cpu_read_int(o, 2), 1);
    }
    cpu_direct_free(d);
  }
  tt_free(&x);
}
END_TEST

/* ---- Expand, Tile, Pad ---------------------------------------------------------------------- */

START_TEST(test_expand_random) {
  rng_seed(17);
  for (int it = 0; it < 300; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(0, 4), R = r + (uint32_t)rnd(0, 2);
    int64_t dims[TMAX_RANK], shape[TMAX_RANK], od[TMAX_RANK];
    rand_dims(r, dims, 5, 500, true);
    size_t ns = rnd(0, 1) ? R : r; /* the shape may also be shorter than the input */
    uint32_t orank = ns > r ? (uint32_t)ns : r;
    for (uint32_t i = 0; i < orank; i++) {
      int64_t a = i + r >= orank ? dims[i + r - orank] : 1;
      int64_t b;
      if (a == 1)
        b = rnd(0, 5) == 0 ? 1 : rnd(0, 6); /* may also broadcast 1 to 0 */
      else
        b = rnd(0, 1) ? a : 1;
      od[i] = a == 1 ? b : a;
      if (i + ns >= orank) shape[i + ns - orank] = b;
    }
    if (ns < orank) /* leading axes come from the input only */
      for (uint32_t i = 0; i + ns < orank; i++) od[i] = dims[i + r - orank];
    tt x = tt_rand_bytes(dt, r, dims), want = tt_new(dt, orank, od);
    for (size_t i = 0; i < want.count; i++) {
      int64_t o[TMAX_RANK], s[TMAX_RANK];
      unravel(i, orank, od, o);
      for (uint32_t k = 0; k < r; k++) {
        int64_t ok = o[k + orank - r];
        s[k] = dims[k] == 1 ? 0 : ok;
      }
      memcpy(want.data + i * x.es, x.data + ravel(r, dims, s) * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new("Expand", 13);
    in_tt(d, &x);
    in_i64(d, ns, shape);
    out_like(d, &want);
    run_ok(d, threads_for(it), "expand");
    expect_bytes(d, 0, &want, "expand", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

START_TEST(test_tile_random) {
  rng_seed(18);
  for (int it = 0; it < 250; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(0, 4);
    int64_t dims[TMAX_RANK], rep[TMAX_RANK], od[TMAX_RANK];
    rand_dims(r, dims, 5, 300, true);
    for (uint32_t i = 0; i < r; i++) {
      rep[i] = rnd(0, 9) == 0 ? 0 : rnd(1, 3);
      od[i] = dims[i] * rep[i];
    }
    tt x = tt_rand_bytes(dt, r, dims), want = tt_new(dt, r, od);
    for (size_t i = 0; i < want.count; i++) {
      int64_t o[TMAX_RANK];
      unravel(i, r, od, o);
      for (uint32_t k = 0; k < r; k++) o[k] %= dims[k];
      memcpy(want.data + i * x.es, x.data + ravel(r, dims, o) * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new("Tile", 13);
    in_tt(d, &x);
    in_i64(d, r, rep);
    out_like(d, &want);
    run_ok(d, threads_for(it), "tile");
    expect_bytes(d, 0, &want, "tile", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

/* Where output index o of a padded axis reads, by bouncing off the ends one step at a time. */
static int64_t pad_ref_index(int64_t o, int64_t before, int64_t d, int mode) {
  int64_t i = o - before;
  if (i >= 0 && i < d) return i;
  if (mode == 0) return -1;
  if (mode == 2) return i < 0 ? 0 : d - 1;
  if (d == 1) return 0;
  while (i < 0 || i >= d) {
    if (i < 0) i = -i;
    if (i >= d) i = 2 * (d - 1) - i;
  }
  return i;
}

START_TEST(test_pad_random) {
  rng_seed(19);
  static const char *const modes[] = {"constant", "reflect", "edge"};
  for (int it = 0; it < 300; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(0, 4);
    int64_t dims[TMAX_RANK], pads[2 * TMAX_RANK], od[TMAX_RANK];
    rand_dims(r, dims, 6, 2000, false);
    int mode = (int)rnd(0, 2);
    int64_t opset = it % 4 == 0 ? 2 : it % 4 == 1 ? 11 : 13;
    for (uint32_t i = 0; i < r; i++) {
      for (int s = 0; s < 2; s++) {
        int64_t p = rnd(-2, 5);
        pads[i + s * r] = p;
      }
      while (dims[i] + pads[i] + pads[i + r] < 0) pads[i]++;
      od[i] = dims[i] + pads[i] + pads[i + r];
    }
    tt x = tt_rand_bytes(dt, r, dims), want = tt_new(dt, r, od);
    /* The fill value: opset 2 takes a float attribute, later ones an input of the data dtype. */
    bool give_value = rnd(0, 1);
    uint8_t fill[8] = {0};
    tt val = tt_new(dt, 0, NULL);
    if (give_value) {
      tt_set(&val, 0, (double)rnd(0, 9));
      memcpy(fill, val.data, val.es);
    }
    for (size_t i = 0; i < want.count; i++) {
      int64_t o[TMAX_RANK];
      unravel(i, r, od, o);
      bool constant = false;
      for (uint32_t k = 0; k < r; k++) {
        o[k] = pad_ref_index(o[k], pads[k], dims[k], mode);
        constant |= o[k] < 0;
      }
      memcpy(want.data + i * x.es, constant ? fill : x.data + ravel(r, dims, o) * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new("Pad", opset);
    if (mode || rnd(0, 1)) cpu_direct_attr_string(d, "mode", modes[mode]);
    in_tt(d, &x);
    if (opset < 11) {
      cpu_direct_attr_ints(d, "pads", 2 * r, pads);
      if (give_value) cpu_direct_attr_float(d, "value", (float)tt_get(&val, 0));
    } else {
      in_i64(d, 2 * r, pads);
      if (give_value) in_tt(d, &val);
    }
    out_like(d, &want);
    run_ok(d, threads_for(it), "pad");
    expect_bytes(d, 0, &want, "pad", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
    tt_free(&val);
  }
}
END_TEST

/* ---- Gather, GatherElements, GatherND ---------------------------------------------------------
 */

/* An index tensor of int32 or int64 with values in [-limit, limit). */
static tt rand_indices(uint32_t rank, const int64_t *dims, int64_t limit) {
  tt t = tt_new(rnd(0, 1) ? TSR_DTYPE_INT64 : TSR_DTYPE_INT32, rank, dims);
  for (size_t i = 0; i < t.count; i++) tt_set_int(&t, i, limit ? rnd(-limit, limit - 1) : 0);
  return t;
}

START_TEST(test_gather_random) {
  rng_seed(21);
  for (int it = 0; it < 250; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(1, 4), q = (uint32_t)rnd(0, 3);
    if (r - 1 + q > TMAX_RANK) q = 1;
    int64_t dims[TMAX_RANK], idims[TMAX_RANK], od[TMAX_RANK];
    rand_dims(r, dims, 6, 2000, false);
    rand_dims(q, idims, 4, 50, true);
    int64_t axis = rnd(0, r - 1);
    tt x = tt_rand_bytes(dt, r, dims), ind = rand_indices(q, idims, dims[axis]);
    uint32_t orank = 0;
    for (int64_t i = 0; i < axis; i++) od[orank++] = dims[i];
    for (uint32_t i = 0; i < q; i++) od[orank++] = idims[i];
    for (uint32_t i = (uint32_t)axis + 1; i < r; i++) od[orank++] = dims[i];
    tt want = tt_new(dt, orank, od);
    for (size_t i = 0; i < want.count; i++) {
      int64_t o[TMAX_RANK], s[TMAX_RANK], ii[TMAX_RANK];
      unravel(i, orank, od, o);
      for (int64_t k = 0; k < axis; k++) s[k] = o[k];
      for (uint32_t k = 0; k < q; k++) ii[k] = o[axis + k];
      int64_t v = tt_get_int(&ind, ravel(q, idims, ii));
      s[axis] = v < 0 ? v + dims[axis] : v;
      for (uint32_t k = (uint32_t)axis + 1; k < r; k++) s[k] = o[k - 1 + q];
      memcpy(want.data + i * x.es, x.data + ravel(r, dims, s) * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new("Gather", 13);
    if (axis || rnd(0, 1)) cpu_direct_attr_int(d, "axis", rnd(0, 1) ? axis : axis - (int64_t)r);
    in_tt(d, &x);
    in_tt(d, &ind);
    out_like(d, &want);
    run_ok(d, threads_for(it), "gather");
    expect_bytes(d, 0, &want, "gather", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&ind);
    tt_free(&want);
  }
}
END_TEST

START_TEST(test_gather_elements_random) {
  rng_seed(22);
  for (int it = 0; it < 250; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(1, 4);
    int64_t dims[TMAX_RANK], idims[TMAX_RANK];
    rand_dims(r, dims, 6, 2000, false);
    int64_t axis = rnd(0, r - 1);
    for (uint32_t i = 0; i < r; i++) idims[i] = (int64_t)i == axis ? rnd(0, 7) : rnd(0, dims[i]);
    tt x = tt_rand_bytes(dt, r, dims), ind = rand_indices(r, idims, dims[axis]);
    tt want = tt_new(dt, r, idims);
    for (size_t i = 0; i < want.count; i++) {
      int64_t s[TMAX_RANK];
      unravel(i, r, idims, s);
      int64_t v = tt_get_int(&ind, i);
      s[axis] = v < 0 ? v + dims[axis] : v;
      memcpy(want.data + i * x.es, x.data + ravel(r, dims, s) * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new("GatherElements", 13);
    cpu_direct_attr_int(d, "axis", rnd(0, 1) ? axis : axis - (int64_t)r);
    in_tt(d, &x);
    in_tt(d, &ind);
    out_like(d, &want);
    run_ok(d, threads_for(it), "gather elements");
    expect_bytes(d, 0, &want, "gather elements", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&ind);
    tt_free(&want);
  }
}
END_TEST

START_TEST(test_gather_nd_random) {
  rng_seed(23);
  for (int it = 0; it < 250; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(1, 4);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 5, 2000, false);
    int64_t b = it % 2 ? rnd(0, r - 1) : 0;
    int64_t m = rnd(1, r - b);
    uint32_t q = (uint32_t)(b + 1 + rnd(0, 2));
    int64_t idims[TMAX_RANK];
    for (int64_t i = 0; i < b; i++) idims[i] = dims[i];
    for (uint32_t i = (uint32_t)b; i + 1 < q; i++) idims[i] = rnd(0, 3);
    idims[q - 1] = m;
    tt x = tt_rand_bytes(dt, r, dims),
       ind = tt_new(rnd(0, 1) ? TSR_DTYPE_INT64 : TSR_DTYPE_INT32, q, idims);
    for (size_t i = 0; i < ind.count; i++) {
      int64_t lim = dims[b + (int64_t)(i % (size_t)m)];
      tt_set_int(&ind, i, rnd(-lim, lim - 1));
    }
    int64_t od[2 * TMAX_RANK];
    uint32_t orank = 0;
    for (uint32_t i = 0; i + 1 < q; i++) od[orank++] = idims[i];
    for (uint32_t i = (uint32_t)(b + m); i < r; i++) od[orank++] = dims[i];
    if (orank > TMAX_RANK) {
      tt_free(&x);
      tt_free(&ind);
      continue;
    }
    tt want = tt_new(dt, orank, od);
    for (size_t i = 0; i < want.count; i++) {
      int64_t o[2 * TMAX_RANK], s[TMAX_RANK];
      unravel(i, orank, od, o);
      /* o = (batch..., tuple position..., slice...) */
      size_t tuple = ravel(q - 1, idims, o);
      for (int64_t k = 0; k < b; k++) s[k] = o[k];
      for (int64_t k = 0; k < m; k++) {
        int64_t v = tt_get_int(&ind, tuple * (size_t)m + (size_t)k), lim = dims[b + k];
        s[b + k] = v < 0 ? v + lim : v;
      }
      for (uint32_t k = (uint32_t)(b + m); k < r; k++) s[k] = o[q - 1 + k - (b + m)];
      memcpy(want.data + i * x.es, x.data + ravel(r, dims, s) * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new("GatherND", 13);
    if (b || rnd(0, 1)) cpu_direct_attr_int(d, "batch_dims", b);
    in_tt(d, &x);
    in_tt(d, &ind);
    out_like(d, &want);
    run_ok(d, threads_for(it), "gather nd");
    expect_bytes(d, 0, &want, "gather nd", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&ind);
    tt_free(&want);
  }
}
END_TEST

/* ---- ScatterElements, ScatterND
 * ------------------------------------------------------------------ */

/* Small integer values keep sums and products exact in every dtype. */
static uint32_t rand_value_dtype(void) {
  static const uint32_t v[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16,
                               TSR_DTYPE_INT32,   TSR_DTYPE_INT64,   TSR_DTYPE_INT8,
                               TSR_DTYPE_UINT8,   TSR_DTYPE_UINT16};
  return v[rnd(0, 7)];
}

static tt rand_small_values(uint32_t dt, uint32_t r, const int64_t *dims) {
  tt t = tt_new(dt, r, dims);
  for (size_t i = 0; i < t.count; i++) tt_set(&t, i, (double)rnd(0, 3));
  return t;
}

static void ref_reduce(tt *out, size_t at, const tt *upd, size_t from, int red) {
  if (!fx_is_float(out->dtype)) { /* integers wrap: keep the low bytes of the int64 result */
    int64_t a = tt_get_int(out, at), b = tt_get_int(upd, from);
    tt_set_int(out, at, red == 0 ? b : red == 1 ? a + b : a * b);
    return;
  }
  double a = tt_get(out, at), b = tt_get(upd, from);
  tt_set(out, at, red == 0 ? b : red == 1 ? a + b : a * b);
}

START_TEST(test_scatter_elements_random) {
  rng_seed(24);
  static const char *const reds[] = {"none", "add", "mul"};
  for (int it = 0; it < 250; it++) {
    uint32_t dt = rand_value_dtype(), r = (uint32_t)rnd(1, 4);
    int64_t dims[TMAX_RANK], idims[TMAX_RANK];
    rand_dims(r, dims, 5, 1000, false);
    int64_t axis = rnd(0, r - 1);
    for (uint32_t i = 0; i < r; i++) idims[i] = (int64_t)i == axis ? rnd(0, 5) : rnd(0, dims[i]);
    int64_t opset = it % 4 == 0 ? 9 : it % 4 == 1 ? 11 : 16;
    int red = opset >= 16 ? (int)rnd(0, 2) : 0;
    tt x = rand_small_values(dt, r, dims), ind = rand_indices(r, idims, dims[axis]);
    tt upd = rand_small_values(dt, r, idims), want = tt_new(dt, r, dims);
    memcpy(want.data, x.data, x.count * x.es);
    for (size_t i = 0; i < ind.count; i++) {
      int64_t s[TMAX_RANK];
      unravel(i, r, idims, s);
      int64_t v = tt_get_int(&ind, i);
      s[axis] = v < 0 ? v + dims[axis] : v;
      ref_reduce(&want, ravel(r, dims, s), &upd, i, red);
    }
    cpu_direct *d = cpu_direct_new(opset < 11 ? "Scatter" : "ScatterElements", opset);
    cpu_direct_attr_int(d, "axis", rnd(0, 1) ? axis : axis - (int64_t)r);
    if (red || (opset >= 16 && rnd(0, 1))) cpu_direct_attr_string(d, "reduction", reds[red]);
    in_tt(d, &x);
    in_tt(d, &ind);
    in_tt(d, &upd);
    out_like(d, &want);
    run_ok(d, threads_for(it), "scatter elements");
    expect_bytes(d, 0, &want, "scatter elements", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&ind);
    tt_free(&upd);
    tt_free(&want);
  }
}
END_TEST

START_TEST(test_scatter_nd_random) {
  rng_seed(25);
  static const char *const reds[] = {"none", "add", "mul"};
  for (int it = 0; it < 250; it++) {
    uint32_t dt = rand_value_dtype(), r = (uint32_t)rnd(1, 4);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 5, 1000, false);
    int64_t m = rnd(1, r);
    uint32_t q = (uint32_t)rnd(1, 3);
    int64_t idims[TMAX_RANK], udims[2 * TMAX_RANK];
    for (uint32_t i = 0; i + 1 < q; i++) idims[i] = rnd(0, 3);
    idims[q - 1] = m;
    uint32_t ur = 0;
    for (uint32_t i = 0; i + 1 < q; i++) udims[ur++] = idims[i];
    for (uint32_t i = (uint32_t)m; i < r; i++) udims[ur++] = dims[i];
    if (ur > TMAX_RANK) continue;
    int64_t opset = it % 2 ? 13 : 16;
    int red = opset >= 16 ? (int)rnd(0, 2) : 0;
    tt x = rand_small_values(dt, r, dims), ind = tt_new(TSR_DTYPE_INT64, q, idims);
    for (size_t i = 0; i < ind.count; i++) {
      int64_t lim = dims[i % (size_t)m];
      tt_set_int(&ind, i, rnd(-lim, lim - 1));
    }
    tt upd = rand_small_values(dt, ur, udims), want = tt_new(dt, r, dims);
    memcpy(want.data, x.data, x.count * x.es);
    size_t slice = 1, nt = ind.count / (size_t)m;
    for (uint32_t i = (uint32_t)m; i < r; i++) slice *= (size_t)dims[i];
    for (size_t t = 0; t < nt; t++) {
      int64_t s[TMAX_RANK] = {0};
      for (int64_t k = 0; k < m; k++) {
        int64_t v = tt_get_int(&ind, t * (size_t)m + (size_t)k);
        s[k] = v < 0 ? v + dims[k] : v;
      }
      size_t base = ravel(r, dims, s);
      for (size_t e = 0; e < slice; e++) ref_reduce(&want, base + e, &upd, t * slice + e, red);
    }
    cpu_direct *d = cpu_direct_new("ScatterND", opset);
    if (red) cpu_direct_attr_string(d, "reduction", reds[red]);
    in_tt(d, &x);
    in_tt(d, &ind);
    in_tt(d, &upd);
    out_like(d, &want);
    run_ok(d, threads_for(it), "scatter nd");
    expect_bytes(d, 0, &want, "scatter nd", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&ind);
    tt_free(&upd);
    tt_free(&want);
  }
}
END_TEST

/* ---- Cast, CastLike ---------------------------------------------------------------------------
 */

static bool is_signed_int(uint32_t dt) {
  return dt == TSR_DTYPE_INT8 || dt == TSR_DTYPE_INT16 || dt == TSR_DTYPE_INT32 ||
         dt == TSR_DTYPE_INT64;
}

static uint16_t ref_bf16(float f) { /* round to nearest even */
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
  uint32_t lsb = (x >> 16) & 1;
  return (uint16_t)((x + 0x7fff + lsb) >> 16);
}

static void ref_store_float(tt *y, size_t i, double d, float f) {
  switch (y->dtype) {
  case TSR_DTYPE_FLOAT64: memcpy(y->data + 8 * i, &d, 8); break;
  case TSR_DTYPE_FLOAT32: memcpy(y->data + 4 * i, &f, 4); break;
  case TSR_DTYPE_FLOAT16: {
    uint16_t h = cpu_float_to_half(f);
    memcpy(y->data + 2 * i, &h, 2);
    break;
  }
  default: {
    uint16_t h = ref_bf16(f);
    memcpy(y->data + 2 * i, &h, 2);
  }
  }
}

/* One element at a time, from the definitions: float -> int truncates (values are chosen in
 * range), int -> int keeps the low bytes, anything -> bool is != 0. */
static void ref_cast(const tt *x, tt *y) {
  for (size_t i = 0; i < x->count; i++) {
    if (fx_is_float(x->dtype)) {
      double v = tt_get(x, i);
      if (fx_is_float(y->dtype))
        ref_store_float(y, i, v, (float)v);
      else if (y->dtype == TSR_DTYPE_BOOL)
        y->data[i] = v != 0;
      else
        tt_set_int(y, i, (int64_t)trunc(v));
    } else {
      uint64_t u = 0;
      memcpy(&u, x->data + i * x->es, x->es);
      int64_t s = (int64_t)u;
      if (is_signed_int(x->dtype)) { /* sign-extend */
        int shift = 64 - 8 * (int)x->es;
        s = (int64_t)(u << shift) >> shift;
      }
      if (fx_is_float(y->dtype)) {
        if (is_signed_int(x->dtype))
          ref_store_float(y, i, (double)s, (float)s);
        else
          ref_store_float(y, i, (double)u, (float)u);
      } else if (y->dtype == TSR_DTYPE_BOOL) {
        y->data[i] = u != 0;
      } else {
        tt_set_int(y, i, s);
      }
    }
  }
}

START_TEST(test_cast_random) {
  rng_seed(31);
  for (int it = 0; it < 600; it++) {
    uint32_t from = rand_dtype(), to = rand_dtype();
    uint32_t r = (uint32_t)rnd(0, 3);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 30, it % 50 == 0 ? 40000 : 600, true);
    tt x = tt_rand_bytes(from, r, dims), want = tt_new(to, r, dims);
    if (fx_is_float(from)) {
      /* Values the target can hold, with fractions and -0.0; NaN and infinities only where
       * the target is a float or bool. */
      bool uns = !fx_is_float(to) && !is_signed_int(to) && to != TSR_DTYPE_BOOL;
      double lim = (to == TSR_DTYPE_INT8) ? 127 : 250;
      for (size_t i = 0; i < x.count; i++) {
        double v = (rndf() * 2 - 1) * lim;
        if (uns) v = fabs(v);
        int pick = (int)rnd(0, 19);
        if (pick == 0) v = -0.0;
        if ((fx_is_float(to) || to == TSR_DTYPE_BOOL) && pick == 1) v = NAN;
        if ((fx_is_float(to) || to == TSR_DTYPE_BOOL) && pick == 2) v = -INFINITY;
        if (fx_is_float(to) && pick == 3) v = 1e30;
        tt_set(&x, i, v);
      }
    }
    ref_cast(&x, &want);
    bool like = it % 4 == 0;
    cpu_direct *d = cpu_direct_new(like ? "CastLike" : "Cast", like ? 15 : 13);
    in_tt(d, &x);
    if (like) {
      int64_t one[1] = {1};
      cpu_direct_input(d, to, 1, one, NULL, false);
    } else {
      cpu_direct_attr_int(d, "to", to);
    }
    out_like(d, &want);
    run_ok(d, threads_for(it), "cast");
    char what[64];
    snprintf(what, sizeof what, "cast %s -> %s", cpu_dtype_name(from), cpu_dtype_name(to));
    expect_bytes(d, 0, &want, what, it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

/* The conversions C leaves undefined get defined answers. */
START_TEST(test_cast_edges) {
  const struct {
    uint32_t from, to;
    double in;
    int64_t want_i;
    double want_f;
  } cases[] = {
      {TSR_DTYPE_FLOAT32, TSR_DTYPE_INT32, NAN, 0, 0},
      {TSR_DTYPE_FLOAT64, TSR_DTYPE_INT64, 1e20, INT64_MAX, 0},
      {TSR_DTYPE_FLOAT64, TSR_DTYPE_INT64, -1e20, INT64_MIN, 0},
      {TSR_DTYPE_FLOAT32, TSR_DTYPE_UINT8, -1.0, 255, 0},
      {TSR_DTYPE_FLOAT32, TSR_DTYPE_UINT8, 300.75, 44, 0},
      {TSR_DTYPE_FLOAT32, TSR_DTYPE_INT8, -2.9, -2, 0},
      {TSR_DTYPE_FLOAT32, TSR_DTYPE_BOOL, -0.0, 0, 0},
      {TSR_DTYPE_FLOAT32, TSR_DTYPE_BOOL, NAN, 1, 0},
      {TSR_DTYPE_FLOAT16, TSR_DTYPE_BOOL, 0.5, 1, 0},
      {TSR_DTYPE_FLOAT64, TSR_DTYPE_UINT64, 1.8e19, (int64_t)18000000000000000000ull, 0},
      {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT16, 65520.0, 0, INFINITY},
      {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT16, 1.0 / 3.0, 0, 0.333251953125},
      {TSR_DTYPE_INT64, TSR_DTYPE_INT8, 200, -56, 0},
      {TSR_DTYPE_BOOL, TSR_DTYPE_FLOAT32, 1, 0, 1.0},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    cpu_direct *d = cpu_direct_new("Cast", 13);
    tt x = tt_new(cases[c].from, 0, NULL);
    if (fx_is_float(cases[c].from))
      tt_set(&x, 0, cases[c].in);
    else
      tt_set_int(&x, 0, (int64_t)cases[c].in);
    in_tt(d, &x);
    cpu_direct_attr_int(d, "to", cases[c].to);
    cpu_direct_output(d, cases[c].to, 0, NULL);
    run_ok(d, 1, "cast edge");
    cpu_tensor *o = cpu_direct_out(d, 0);
    if (fx_is_float(cases[c].to)) {
      double got = cpu_read_f64(o, 0);
      ck_assert_msg(got == cases[c].want_f, "case %zu: got %.17g", c, got);
    } else {
      int64_t got = 0;
      memcpy(&got, o->data, cpu_dtype_size(cases[c].to));
      if (is_signed_int(cases[c].to) && cpu_dtype_size(cases[c].to) < 8)
        got = cpu_read_int(o, 0);
      ck_assert_msg(got == cases[c].want_i, "case %zu: got %lld", c, (long long)got);
    }
    tt_free(&x);
    cpu_direct_free(d);
  }
}
END_TEST

/* float32 <-> float16 on every half value and a sweep of floats, with the ISA paths the
 * machine has (F16C) and with the portable one; both must match the reference helpers. */
START_TEST(test_cast_half_sweep) {
  const size_t n16 = 65536, n32 = 65536 * 8 + 64;
  int64_t d16 = (int64_t)n16, d32 = (int64_t)n32;
  uint16_t *halves = malloc(n16 * sizeof *halves);
  float *floats = malloc(n32 * sizeof *floats);
  for (size_t i = 0; i < n16; i++) halves[i] = (uint16_t)i;
  rng_seed(51);
  for (size_t i = 0; i < n32; i++) {
    if (i < 65536 * 4) { /* every half value, nudged by 0, +-1 ulp and to a midpoint */
      float f = cpu_half_to_float((uint16_t)(i / 4));
      uint32_t b;
      memcpy(&b, &f, 4);
      int k = (int)(i % 4);
      b = k == 1 ? b + 1 : k == 2 ? b - 1 : k == 3 ? b + 0x1000 : b;
      memcpy(&floats[i], &b, 4);
    } else {
      uint32_t b = (uint32_t)rng_next();
      memcpy(&floats[i], &b, 4);
    }
  }
  static const char *const envs[] = {NULL, "1"};
  for (int e = 0; e < 2; e++) {
    if (envs[e])
      setenv("TESSERA_CPU_GENERIC", envs[e], 1);
    else
      unsetenv("TESSERA_CPU_GENERIC");
    cpu_direct *d = cpu_direct_new("Cast", 13);
    cpu_direct_attr_int(d, "to", TSR_DTYPE_FLOAT32);
    cpu_direct_input(d, TSR_DTYPE_FLOAT16, 1, &d16, halves, false);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, &d16);
    run_ok(d, 2, "half to float");
    const float *o = cpu_direct_out(d, 0)->data;
    for (size_t i = 0; i < n16; i++) {
      float want = cpu_half_to_float(halves[i]);
      ck_assert_msg(isnan(want) ? isnan(o[i]) : memcmp(&want, &o[i], 4) == 0,
                    "half 0x%04zx: got %g want %g", i, o[i], want);
    }
    cpu_direct_free(d);
    d = cpu_direct_new("Cast", 13);
    cpu_direct_attr_int(d, "to", TSR_DTYPE_FLOAT16);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, &d32, floats, false);
    cpu_direct_output(d, TSR_DTYPE_FLOAT16, 1, &d32);
    run_ok(d, 2, "float to half");
    const uint16_t *h = cpu_direct_out(d, 0)->data;
    for (size_t i = 0; i < n32; i++) {
      uint16_t want = cpu_float_to_half(floats[i]);
      bool nan = (want & 0x7c00) == 0x7c00 && (want & 0x3ff);
      bool ok = nan ? ((h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff)) : h[i] == want;
      ck_assert_msg(ok, "float %a: got 0x%04x want 0x%04x (generic=%d)", (double)floats[i], h[i],
                    want, e);
    }
    cpu_direct_free(d);
  }
  unsetenv("TESSERA_CPU_GENERIC");
  free(halves);
  free(floats);
}
END_TEST

/* ---- TopK ---------------------------------------------------------------------------------------
 */

/* a before b? NaN counts as the largest value; ties go to the lower index. */
static bool topk_before(double a, int64_t ia, double b, int64_t ib, bool largest) {
  bool na = isnan(a), nb = isnan(b);
  int c = na || nb ? (na && nb ? 0 : na ? 1 : -1) : (a > b) - (a < b);
  if (!largest) c = -c;
  return c > 0 || (c == 0 && ia < ib);
}

START_TEST(test_topk_random) {
  rng_seed(32);
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16,
                                 TSR_DTYPE_INT32,   TSR_DTYPE_INT64,   TSR_DTYPE_UINT8,
                                 TSR_DTYPE_INT8,    TSR_DTYPE_UINT64};
  for (int it = 0; it < 300; it++) {
    uint32_t dt = dts[rnd(0, 7)], r = (uint32_t)rnd(1, 4);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 7, 3000, true);
    int64_t axis = rnd(0, r - 1), n = dims[axis];
    int64_t k = rnd(0, n);
    if (rnd(0, 3) == 0) k = n ? 1 : 0;
    int64_t opset = it % 5 == 0 ? 1 : it % 5 == 1 ? 10 : 11;
    bool largest = opset < 11 || rnd(0, 1);
    tt x = tt_new(dt, r, dims);
    for (size_t i = 0; i < x.count; i++) {
      double v = (double)rnd(0, 6); /* many ties */
      if (fx_is_float(dt) && rnd(0, 15) == 0) v = NAN;
      if (fx_is_float(dt) && rnd(0, 3) == 0) v += rndf();
      tt_set(&x, i, v);
    }
    int64_t od[TMAX_RANK];
    memcpy(od, dims, sizeof od);
    od[axis] = k;
    tt wv = tt_new(dt, r, od), wi = tt_new(TSR_DTYPE_INT64, r, od);
    size_t inner = 1, outer = 1;
    for (uint32_t i = (uint32_t)axis + 1; i < r; i++) inner *= (size_t)dims[i];
    for (int64_t i = 0; i < axis; i++) outer *= (size_t)dims[i];
    bool used[16];
    for (size_t o = 0; o < outer; o++)
      for (size_t in = 0; in < inner; in++) {
        memset(used, 0, sizeof used);
        for (int64_t j = 0; j < k; j++) {
          int64_t best = -1;
          for (int64_t c = 0; c < n; c++) {
            if (used[c]) continue;
            size_t e = (o * (size_t)n + (size_t)c) * inner + in;
            if (best < 0 ||
                topk_before(tt_get(&x, e), c,
                            tt_get(&x, (o * (size_t)n + (size_t)best) * inner + in), best,
                            largest))
              best = c;
          }
          used[best] = true;
          size_t oe = (o * (size_t)k + (size_t)j) * inner + in;
          memcpy(wv.data + oe * x.es, x.data + ((o * (size_t)n + (size_t)best) * inner + in) * x.es,
                 x.es);
          tt_set_int(&wi, oe, best);
        }
      }
    cpu_direct *d = cpu_direct_new("TopK", opset);
    cpu_direct_attr_int(d, "axis", rnd(0, 1) ? axis : axis - (int64_t)r);
    in_tt(d, &x);
    if (opset >= 10)
      in_i64(d, 1, &k);
    else
      cpu_direct_attr_int(d, "k", k);
    if (opset >= 11) {
      cpu_direct_attr_int(d, "largest", largest);
      cpu_direct_attr_int(d, "sorted", 1);
    }
    out_like(d, &wv);
    out_like(d, &wi);
    run_ok(d, threads_for(it), "topk");
    expect_bytes(d, 0, &wv, "topk values", it);
    expect_bytes(d, 1, &wi, "topk indices", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&wv);
    tt_free(&wi);
  }
}
END_TEST

/* ---- NonZero, Compress, OneHot, Trilu, EyeLike -------------------------------------------------
 */

START_TEST(test_nonzero_random) {
  rng_seed(33);
  for (int it = 0; it < 200; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(1, 4);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 6, 1500, true);
    tt x = tt_new(dt, r, dims);
    size_t nnz = 0;
    for (size_t i = 0; i < x.count; i++) {
      int pick = (int)rnd(0, 3);
      double v = pick == 0 ? (double)rnd(1, 5) : pick == 1 && fx_is_float(dt) ? -0.0 : 0.0;
      if (pick == 2 && fx_is_float(dt) && rnd(0, 1)) v = NAN;
      tt_set(&x, i, v);
      nnz += v != 0 || isnan(v);
    }
    int64_t od[2] = {(int64_t)r, (int64_t)nnz};
    tt want = tt_new(TSR_DTYPE_INT64, 2, od);
    size_t j = 0;
    for (size_t i = 0; i < x.count; i++) {
      double v = tt_get(&x, i);
      if (v == 0 && !isnan(v)) continue;
      int64_t idx[TMAX_RANK];
      unravel(i, r, dims, idx);
      for (uint32_t k = 0; k < r; k++) tt_set_int(&want, k * nnz + j, idx[k]);
      j++;
    }
    cpu_direct *d = cpu_direct_new("NonZero", 13);
    in_tt(d, &x);
    out_like(d, &want);
    run_ok(d, 1, "nonzero");
    expect_bytes(d, 0, &want, "nonzero", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

START_TEST(test_compress_random) {
  rng_seed(34);
  for (int it = 0; it < 200; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(1, 4);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 6, 1500, true);
    bool flat = rnd(0, 3) == 0;
    int64_t axis = rnd(0, r - 1);
    tt x = tt_rand_bytes(dt, r, dims);
    int64_t dim = flat ? (int64_t)x.count : dims[axis];
    int64_t clen = rnd(0, dim + 2);
    tt cond = tt_new(TSR_DTYPE_BOOL, 1, &clen);
    int64_t sel = 0;
    for (int64_t i = 0; i < clen; i++) {
      cond.data[i] = i < dim && rnd(0, 1);
      sel += cond.data[i];
    }
    int64_t od[TMAX_RANK];
    uint32_t orank = flat ? 1 : r;
    if (flat) {
      od[0] = sel;
    } else {
      memcpy(od, dims, sizeof od);
      od[axis] = sel;
    }
    tt want = tt_new(dt, orank, od);
    size_t w = 0;
    if (flat) {
      for (int64_t i = 0; i < clen; i++)
        if (cond.data[i]) memcpy(want.data + (w++) * x.es, x.data + (size_t)i * x.es, x.es);
    } else {
      for (size_t i = 0; i < x.count; i++) {
        int64_t idx[TMAX_RANK];
        unravel(i, r, dims, idx);
        if (idx[axis] < clen && cond.data[idx[axis]]) {
          int64_t o[TMAX_RANK];
          memcpy(o, idx, sizeof o);
          o[axis] = 0;
          for (int64_t c = 0; c < idx[axis]; c++) o[axis] += cond.data[c];
          memcpy(want.data + ravel(r, od, o) * x.es, x.data + i * x.es, x.es);
        }
      }
    }
    cpu_direct *d = cpu_direct_new("Compress", 11);
    if (!flat) cpu_direct_attr_int(d, "axis", rnd(0, 1) ? axis : axis - (int64_t)r);
    in_tt(d, &x);
    in_tt(d, &cond);
    out_like(d, &want);
    run_ok(d, 1, "compress");
    expect_bytes(d, 0, &want, "compress", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&cond);
    tt_free(&want);
  }
}
END_TEST

START_TEST(test_one_hot_random) {
  rng_seed(35);
  for (int it = 0; it < 200; it++) {
    uint32_t r = (uint32_t)rnd(0, 3);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 5, 200, true);
    int64_t depth = rnd(1, 6), axis = rnd(-1, r);
    uint32_t idt = it % 3 == 0   ? TSR_DTYPE_FLOAT32
                   : it % 3 == 1 ? TSR_DTYPE_INT32
                                 : TSR_DTYPE_INT64;
    uint32_t vdt = rand_dtype();
    tt ind = tt_new(idt, r, dims);
    for (size_t i = 0; i < ind.count; i++) tt_set(&ind, i, (double)rnd(-depth - 2, depth + 2));
    int64_t two = 2;
    tt vals = tt_rand_bytes(vdt, 1, &two);
    int64_t a = axis < 0 ? axis + r + 1 : axis, od[TMAX_RANK];
    for (uint32_t i = 0, k = 0; i <= r; i++) od[i] = (int64_t)i == a ? depth : dims[k++];
    tt want = tt_new(vdt, r + 1, od);
    for (size_t i = 0; i < want.count; i++) {
      int64_t o[TMAX_RANK], s[TMAX_RANK];
      unravel(i, r + 1, od, o);
      for (uint32_t q = 0, k = 0; q <= r; q++)
        if ((int64_t)q != a) s[k++] = o[q];
      int64_t v = (int64_t)tt_get(&ind, ravel(r, dims, s));
      if (v < 0) v += depth;
      bool on = v == o[a];
      memcpy(want.data + i * vals.es, vals.data + (on ? vals.es : 0), vals.es);
    }
    cpu_direct *d = cpu_direct_new("OneHot", 11);
    if (axis != -1 || rnd(0, 1)) cpu_direct_attr_int(d, "axis", axis);
    in_tt(d, &ind);
    in_scalar(d, it % 2 ? TSR_DTYPE_INT64 : TSR_DTYPE_FLOAT32, (double)depth);
    in_tt(d, &vals);
    out_like(d, &want);
    run_ok(d, 1, "onehot");
    expect_bytes(d, 0, &want, "onehot", it);
    cpu_direct_free(d);
    tt_free(&ind);
    tt_free(&vals);
    tt_free(&want);
  }
}
END_TEST

START_TEST(test_trilu_random) {
  rng_seed(36);
  for (int it = 0; it < 200; it++) {
    uint32_t dt = rand_dtype(), r = (uint32_t)rnd(2, 4);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 7, 3000, true);
    int64_t k = rnd(0, 9) == 0 ? (rnd(0, 1) ? INT64_MAX : INT64_MIN) : rnd(-8, 8);
    bool upper = rnd(0, 1), give_k = rnd(0, 3) != 0;
    if (!give_k) k = 0;
    tt x = tt_rand_bytes(dt, r, dims), want = tt_new(dt, r, dims);
    for (size_t i = 0; i < x.count; i++) {
      int64_t idx[TMAX_RANK];
      unravel(i, r, dims, idx);
      /* Compare in double: k may be huge. */
      double diff = (double)idx[r - 1] - (double)idx[r - 2];
      bool keep = upper ? diff >= (double)k : diff <= (double)k;
      if (keep) memcpy(want.data + i * x.es, x.data + i * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new("Trilu", 14);
    if (!upper || rnd(0, 1)) cpu_direct_attr_int(d, "upper", upper);
    in_tt(d, &x);
    if (give_k) in_i64(d, 1, &k);
    out_like(d, &want);
    run_ok(d, threads_for(it), "trilu");
    expect_bytes(d, 0, &want, "trilu", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

START_TEST(test_eye_like_random) {
  rng_seed(37);
  for (int it = 0; it < 100; it++) {
    int64_t dims[2] = {rnd(0, 6), rnd(0, 6)}, k = rnd(-7, 7);
    uint32_t idt = rand_dtype(), odt = rnd(0, 1) ? idt : rand_dtype();
    tt x = tt_rand_bytes(idt, 2, dims), want = tt_new(odt, 2, dims);
    for (int64_t i = 0; i < dims[0]; i++)
      for (int64_t j = 0; j < dims[1]; j++)
        if (j - i == k) tt_set(&want, (size_t)(i * dims[1] + j), 1.0);
    cpu_direct *d = cpu_direct_new("EyeLike", 9);
    if (odt != idt || rnd(0, 1)) cpu_direct_attr_int(d, "dtype", odt);
    if (k || rnd(0, 1)) cpu_direct_attr_int(d, "k", k);
    in_tt(d, &x);
    out_like(d, &want);
    run_ok(d, 1, "eyelike");
    expect_bytes(d, 0, &want, "eyelike", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

/* ---- Range, Shape, Size, ConstantOfShape
 * ---------------------------------------------------------- */

START_TEST(test_range_random) {
  rng_seed(38);
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_INT16,
                                 TSR_DTYPE_INT32, TSR_DTYPE_INT64};
  for (int it = 0; it < 200; it++) {
    uint32_t dt = dts[rnd(0, 4)];
    bool fl = fx_is_float(dt);
    double start = (double)rnd(-20, 20), limit = (double)rnd(-20, 20);
    double delta = (double)(rnd(0, 1) ? 1 : -1) * (double)rnd(1, 4);
    if (fl) {
      start += rndf();
      delta *= 0.5 + rndf();
    }
    /* The kernel sees the values in its dtype. */
    tt q = tt_new(dt, 0, NULL);
    tt_set(&q, 0, start);
    start = tt_get(&q, 0);
    tt_set(&q, 0, limit);
    limit = tt_get(&q, 0);
    tt_set(&q, 0, delta);
    delta = tt_get(&q, 0);
    tt_free(&q);
    double c = ceil((limit - start) / delta);
    int64_t n = c > 0 ? (int64_t)c : 0;
    tt want = tt_new(dt, 1, &n);
    for (int64_t i = 0; i < n; i++) tt_set(&want, (size_t)i, start + (double)i * delta);
    cpu_direct *d = cpu_direct_new("Range", 11);
    in_scalar(d, dt, start);
    in_scalar(d, dt, limit);
    in_scalar(d, dt, delta);
    out_like(d, &want);
    run_ok(d, 1, "range");
    cpu_tensor *o = cpu_direct_out(d, 0);
    for (int64_t i = 0; i < n; i++)
      ck_assert_msg(close_enough(cpu_read_f64(o, (size_t)i), tt_get(&want, (size_t)i), 1e-6),
                    "range #%d element %lld", it, (long long)i);
    cpu_direct_free(d);
    tt_free(&want);
  }
  /* Integer extremes must not overflow. */
  int64_t n = 2;
  cpu_direct *d = cpu_direct_new("Range", 11);
  int64_t s = INT64_MIN, l = INT64_MAX, dl = INT64_MAX;
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &s, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &l, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &dl, false);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, &n);
  run_fails(d, "shape", "range of 3 elements given 2");
  cpu_direct_free(d);
  n = 3;
  d = cpu_direct_new("Range", 11);
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &s, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &l, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 0, NULL, &dl, false);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, &n);
  run_ok(d, 1, "range extremes");
  ck_assert_int_eq(cpu_read_int(cpu_direct_out(d, 0), 2), INT64_MAX - 1);
  cpu_direct_free(d);
}
END_TEST

START_TEST(test_shape_size_random) {
  rng_seed(39);
  for (int it = 0; it < 200; it++) {
    uint32_t r = (uint32_t)rnd(0, 6);
    int64_t dims[TMAX_RANK];
    rand_dims(r, dims, 5, 3000, true);
    tt x = tt_rand_bytes(rand_dtype(), r, dims);
    int64_t start = rnd(-8, 8), end = rnd(-8, 8);
    bool gs = rnd(0, 1), ge = rnd(0, 1);
    int64_t s = gs ? start : 0, e = ge ? end : (int64_t)r;
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > (int64_t)r ? (int64_t)r : s;
    e = e < 0 ? 0 : e > (int64_t)r ? (int64_t)r : e;
    int64_t len = e > s ? e - s : 0;
    cpu_direct *d = cpu_direct_new("Shape", 15);
    if (gs) cpu_direct_attr_int(d, "start", start);
    if (ge) cpu_direct_attr_int(d, "end", end);
    in_tt(d, &x);
    cpu_direct_output(d, TSR_DTYPE_INT64, 1, &len);
    run_ok(d, 1, "shape");
    for (int64_t i = 0; i < len; i++)
      ck_assert_int_eq(cpu_read_int(cpu_direct_out(d, 0), (size_t)i), dims[s + i]);
    cpu_direct_free(d);
    d = cpu_direct_new("Size", 13);
    in_tt(d, &x);
    cpu_direct_output(d, TSR_DTYPE_INT64, 0, NULL);
    run_ok(d, 1, "size");
    ck_assert_int_eq(cpu_read_int(cpu_direct_out(d, 0), 0), (int64_t)x.count);
    cpu_direct_free(d);
    tt_free(&x);
  }
}
END_TEST

/* cpu_direct has no tensor attributes, so ConstantOfShape runs through a node of its own. */
typedef struct cos_graph {
  bool has_value;
  tsr_plugin_attr value;
} cos_graph;

static int cos_node_attr(const tsr_plugin_graph *g, uint32_t node, const char *name,
                         tsr_plugin_attr *out) {
  const cos_graph *cg = (const cos_graph *)g;
  (void)node;
  if (strcmp(name, "value") != 0 || !cg->has_value) return 0;
  *out = cg->value;
  return 1;
}

static int cos_run(cos_graph *cg, const int64_t *shape, size_t ns, cpu_tensor *out,
                   char *err, size_t err_size) {
  static const tsr_plugin_graph_api api = {.struct_size = sizeof api, .abi_version = 1,
                                           .node_attr = cos_node_attr};
  int64_t sd[1] = {(int64_t)ns};
  cpu_tensor in = {.dtype = TSR_DTYPE_INT64, .rank = 1, .dims = sd, .data = (void *)shape,
                   .count = ns, .nbytes = ns * 8, .present = true};
  cpu_tensor in_static = in, out_static = *out;
  in_static.data = NULL;
  out_static.data = NULL;
  cpu_node n = {.g = (const tsr_plugin_graph *)cg, .api = &api, .name = "cos",
                .op_type = "ConstantOfShape", .opset = 9, .n_in = 1, .n_out = 1,
                .in = &in_static, .out = &out_static};
  const cpu_op *op = cpu_find_op("", "ConstantOfShape", 9);
  ck_assert_ptr_nonnull(op);
  err[0] = '\0';
  if (op->check) {
    tsr_plugin_reason r = op->check(&n, err, err_size);
    if (r) return (int)r;
  }
  cpu_ctx ctx = {.pool = NULL, .isa = CPU_ISA_GENERIC, .err = err, .err_size = err_size};
  return op->run(&ctx, &n, NULL, &in, out);
}

START_TEST(test_constant_of_shape) {
  char err[256];
  int64_t shape[3] = {2, 3, 4};
  /* Default: float32 zeros. */
  {
    cos_graph cg = {.has_value = false};
    float data[24];
    for (int i = 0; i < 24; i++) data[i] = 7;
    cpu_tensor out = {.dtype = TSR_DTYPE_FLOAT32, .rank = 3, .dims = shape, .data = data,
                      .count = 24, .nbytes = sizeof data, .present = true};
    ck_assert_int_eq(cos_run(&cg, shape, 3, &out, err, sizeof err), 0);
    for (int i = 0; i < 24; i++) ck_assert(data[i] == 0.0f);
  }
  /* An int64 value. */
  {
    int64_t v = -5, one = 1;
    cos_graph cg = {.has_value = true,
                    .value = {.type = TSR_PLUGIN_ATTR_TENSOR, .t_dtype = TSR_DTYPE_INT64,
                              .t_rank = 1, .t_dims = &one, .t_data = &v}};
    int64_t data[24] = {0};
    cpu_tensor out = {.dtype = TSR_DTYPE_INT64, .rank = 3, .dims = shape, .data = data,
                      .count = 24, .nbytes = sizeof data, .present = true};
    ck_assert_int_eq(cos_run(&cg, shape, 3, &out, err, sizeof err), 0);
    for (int i = 0; i < 24; i++) ck_assert_int_eq(data[i], -5);
    /* The shape input must agree with the output. */
    int64_t wrong[3] = {2, 4, 3};
    ck_assert_int_eq(cos_run(&cg, wrong, 3, &out, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "shape"));
    /* An empty output. */
    int64_t zero[1] = {0};
    cpu_tensor empty = {.dtype = TSR_DTYPE_INT64, .rank = 1, .dims = zero, .data = NULL,
                        .count = 0, .nbytes = 0, .present = true};
    ck_assert_int_eq(cos_run(&cg, zero, 1, &empty, err, sizeof err), 0);
    /* A dtype mismatch is refused at compile time. */
    cpu_tensor fout = out;
    fout.dtype = TSR_DTYPE_FLOAT32;
    ck_assert_int_eq(cos_run(&cg, shape, 3, &fout, err, sizeof err), TSR_PLUGIN_REASON_DTYPE);
  }
  /* A value of two elements is refused. */
  {
    float v[2] = {1, 2};
    int64_t two = 2;
    cos_graph cg = {.has_value = true,
                    .value = {.type = TSR_PLUGIN_ATTR_TENSOR, .t_dtype = TSR_DTYPE_FLOAT32,
                              .t_rank = 1, .t_dims = &two, .t_data = v}};
    float data[24];
    cpu_tensor out = {.dtype = TSR_DTYPE_FLOAT32, .rank = 3, .dims = shape, .data = data,
                      .count = 24, .nbytes = sizeof data, .present = true};
    ck_assert_int_eq(cos_run(&cg, shape, 3, &out, err, sizeof err), TSR_PLUGIN_REASON_ATTRIBUTE);
  }
}
END_TEST

/* ---- Resize, Upsample -------------------------------------------------------------------------
 */

/* A port of the ONNX reference (onnx/backend/test/case/node/resize.py): nested 1-D
 * interpolation, neighbours found by distance in an edge-padded copy. Two deliberate
 * differences, both following the operator spec: pytorch_half_pixel maps a length-1 output to
 * 0 (the script uses -0.5), and with sizes the resized length is the size itself rather than
 * (size / length) * length. Legacy nearest (opset <= 10) rounds down when upsampling and up when
 * downsampling, as onnxruntime does. */
typedef struct rz_ref {
  int mode; /* 0 nearest, 1 linear, 2 cubic */
  int ct;   /* as rz_ct_names */
  int nm;   /* as rz_nm_names; 4: legacy */
  double a;
  bool excl;
  double extrap;
} rz_ref;

static const char *const rz_mode_names[] = {"nearest", "linear", "cubic"};
static const char *const rz_ct_names[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                          "asymmetric", "tf_half_pixel_for_nn",
                                          "tf_crop_and_resize"};
static const char *const rz_nm_names[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"};

static void ref_neighbors(double x, int n, int64_t limit, int64_t *out) {
  bool taken[64] = {false};
  for (int c = 0; c < n; c++) {
    int64_t best = -1;
    for (int64_t i = 0; i < limit; i++) {
      if (taken[i]) continue;
      if (best < 0 || fabs(x - (double)i) < fabs(x - (double)best)) best = i;
    }
    taken[best] = true;
    out[c] = best;
  }
  for (int i = 0; i < n; i++) /* ascending */
    for (int j = i + 1; j < n; j++)
      if (out[j] < out[i]) {
        int64_t t = out[i];
        out[i] = out[j];
        out[j] = t;
      }
}

static double ref_1d(const double *vals, int64_t len, double scale, double len_out, int64_t x,
                     double roi0, double roi1, const rz_ref *p) {
  double xo, xd = (double)x, in1 = (double)(len - 1);
  switch (p->ct) {
  case 1: xo = len_out == 1 ? 0 : (xd + 0.5) / scale - 0.5; break;
  case 2: xo = len_out == 1 ? 0 : xd * in1 / (len_out - 1); break;
  case 3: xo = xd / scale; break;
  case 4: xo = (xd + 0.5) / scale; break;
  case 5:
    xo = len_out == 1 ? (roi1 - roi0) * in1 / 2 : xd * (roi1 - roi0) * in1 / (len_out - 1);
    xo += roi0 * in1;
    if (xo < 0 || xo > in1) return p->extrap;
    break;
  default: xo = (xd + 0.5) / scale - 0.5; break;
  }
  double fl = floor(xo);
  double ratio = xo == fl ? 1.0 : xo - fl;
  double c[4];
  int n;
  if (p->mode == 0) {
    n = 2;
    bool hi;
    if (ratio == 1.0) hi = true;
    else if (p->nm == 0) hi = ratio > 0.5;
    else if (p->nm == 1) hi = ratio >= 0.5;
    else if (p->nm == 2) hi = false;
    else if (p->nm == 3) hi = true;
    else hi = scale < 1;
    c[0] = !hi;
    c[1] = hi;
  } else if (p->mode == 1) {
    n = 2;
    c[0] = 1 - ratio;
    c[1] = ratio;
  } else {
    n = 4;
    double A = p->a, r = ratio, s = 1 - ratio;
    c[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
    c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
    c[2] = ((A + 2) * s - (A + 3)) * s * s + 1;
    c[3] = ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A;
  }
  int pad = (n + 1) / 2;
  int64_t idx[4];
  ref_neighbors(xo + pad, n, len + 2 * pad, idx);
  double pts[4], sum = 0;
  for (int t = 0; t < n; t++) {
    int64_t i = idx[t] - pad;
    pts[t] = vals[i < 0 ? 0 : i >= len ? len - 1 : i];
    /* exclude_outside concerns the interpolating modes; the script would divide a lone
     * nearest weight by zero. */
    if (p->excl && p->mode && (i < 0 || i >= len)) c[t] = 0;
    sum += c[t];
  }
  double v = 0;
  for (int t = 0; t < n; t++) v += (p->excl && p->mode ? c[t] / sum : c[t]) * pts[t];
  return v;
}

static double ref_nd(const double *data, uint32_t rank, const int64_t *dims,
                     const int64_t *strides, const double *scales, const double *lens,
                     const int64_t *x, const double *roi_s, const double *roi_e, const rz_ref *p) {
  double *vals = malloc((size_t)dims[0] * sizeof *vals);
  for (int64_t i = 0; i < dims[0]; i++)
    vals[i] = rank == 1 ? data[i * strides[0]]
                        : ref_nd(data + i * strides[0], rank - 1, dims + 1, strides + 1,
                                 scales + 1, lens + 1, x + 1, roi_s + 1, roi_e + 1, p);
  double v = ref_1d(vals, dims[0], scales[0], lens[0], x[0], roi_s[0], roi_e[0], p);
  free(vals);
  return v;
}

/* Runs the reference over the whole output (in double). */
static double *ref_resize(const tt *x, const int64_t *od, const double *scales,
                          const double *lens, const double *roi, const rz_ref *p) {
  size_t count = 1;
  for (uint32_t i = 0; i < x->rank; i++) count *= (size_t)od[i];
  double *data = malloc((x->count ? x->count : 1) * sizeof *data),
         *out = malloc((count ? count : 1) * sizeof *out);
  for (size_t i = 0; i < x->count; i++) data[i] = tt_get(x, i);
  int64_t strides[TMAX_RANK], s = 1;
  for (uint32_t a = x->rank; a-- > 0;) {
    strides[a] = s;
    s *= x->dims[a];
  }
  for (size_t i = 0; i < count; i++) {
    int64_t o[TMAX_RANK];
    unravel(i, x->rank, od, o);
    out[i] = ref_nd(data, x->rank, x->dims, strides, scales, lens, o, roi, roi + x->rank, p);
  }
  free(data);
  return out;
}

static void compare_resize(cpu_direct *d, const tt *want_shape, const double *ref, const char *what,
                           int it) {
  cpu_tensor *o = cpu_direct_out(d, 0);
  for (size_t i = 0; i < want_shape->count; i++) {
    double got = cpu_read_f64(o, i), want = ref[i];
    bool ok;
    switch (o->dtype) {
    case TSR_DTYPE_FLOAT64: ok = close_enough(got, want, 1e-9); break;
    case TSR_DTYPE_FLOAT32: ok = close_enough(got, want, 2e-5); break;
    case TSR_DTYPE_FLOAT16: ok = close_enough(got, want, 2e-3); break;
    default: { /* integers: rounded and saturated; float error may flip a .5 */
      double lo = o->dtype == TSR_DTYPE_UINT8 ? 0 : -2147483648.0;
      double hi = o->dtype == TSR_DTYPE_UINT8 ? 255 : 2147483647.0;
      double w = round(want);
      w = w < lo ? lo : w > hi ? hi : w;
      ok = fabs(got - w) <= 1;
    }
    }
    ck_assert_msg(ok, "%s #%d: element %zu is %.9g, reference %.9g", what, it, i, got, want);
  }
}

START_TEST(test_resize_random) {
  rng_seed(41);
  static const double scale_choices[] = {0.5, 0.6, 0.75, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT32,
                                 TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16, TSR_DTYPE_UINT8,
                                 TSR_DTYPE_INT32};
  for (int it = 0; it < 600; it++) {
    rz_ref p = {.mode = (int)rnd(0, 2), .ct = (int)rnd(0, 5), .nm = (int)rnd(0, 3),
                .a = rnd(0, 1) ? -0.75 : -0.5, .excl = rnd(0, 2) == 0,
                .extrap = (double)rnd(-5, 5)};
    uint32_t dt = dts[rnd(0, 6)], r = (uint32_t)rnd(1, 4);
    int64_t opset = it % 3 == 0 ? 11 : it % 3 == 1 ? 13 : 17;
    bool use_sizes = rnd(0, 1);
    int64_t dims[TMAX_RANK], od[TMAX_RANK];
    double scales[TMAX_RANK], lens[TMAX_RANK], roi[2 * TMAX_RANK];
    float scales_f[TMAX_RANK];
    for (uint32_t a = 0; a < r; a++) {
      bool inner = a + 2 >= r;
      dims[a] = rnd(1, inner ? 5 : 3);
      bool resized = rnd(0, 9) < (inner ? 7 : 2);
      roi[a] = 0;
      roi[a + r] = 1;
      if (!resized) {
        scales_f[a] = 1.0f;
        od[a] = dims[a];
      } else if (use_sizes) {
        od[a] = rnd(1, 2 * dims[a] + 2);
        scales_f[a] = 1.0f;
      } else {
        scales_f[a] = (float)scale_choices[rnd(0, 9)];
        od[a] = (int64_t)floor((double)dims[a] * (double)scales_f[a]);
      }
      if (use_sizes) {
        scales[a] = (double)od[a] / (double)dims[a];
        lens[a] = (double)od[a];
      } else {
        scales[a] = scales_f[a];
        lens[a] = (double)dims[a] * scales[a];
      }
      if (p.ct == 5 && resized) {
        roi[a] = -0.2 + 0.8 * rndf();
        roi[a + r] = 0.4 + 0.9 * rndf();
      }
    }
    tt x = tt_new(dt, r, dims), want = tt_new(dt, r, od);
    for (size_t i = 0; i < x.count; i++)
      tt_set(&x, i, fx_is_float(dt) ? rndf() * 20 - 10 : (double)rnd(0, 100));
    /* The roi travels as float32; the reference must see the same values. */
    float roi_f[2 * TMAX_RANK];
    for (uint32_t i = 0; i < 2 * r; i++) roi[i] = roi_f[i] = (float)roi[i];
    double *ref = ref_resize(&x, od, scales, lens, roi, &p);

    cpu_direct *d = cpu_direct_new("Resize", opset);
    cpu_direct_attr_string(d, "mode", rz_mode_names[p.mode]);
    if (p.ct || rnd(0, 1))
      cpu_direct_attr_string(d, "coordinate_transformation_mode", rz_ct_names[p.ct]);
    if (p.nm || rnd(0, 1)) cpu_direct_attr_string(d, "nearest_mode", rz_nm_names[p.nm]);
    cpu_direct_attr_float(d, "cubic_coeff_a", (float)p.a);
    if (p.excl || rnd(0, 1)) cpu_direct_attr_int(d, "exclude_outside", p.excl);
    cpu_direct_attr_float(d, "extrapolation_value", (float)p.extrap);
    in_tt(d, &x);
    int64_t zero = 0;
    if (p.ct == 5)
      in_f32(d, 2 * r, roi_f);
    else if (opset < 13 || rnd(0, 1))
      cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, &zero, NULL, false); /* empty roi */
    else
      cpu_direct_input_absent(d);
    if (use_sizes) {
      if (opset < 13 || rnd(0, 1))
        cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, &zero, NULL, false); /* empty scales */
      else
        cpu_direct_input_absent(d);
      in_i64(d, r, od);
    } else {
      in_f32(d, r, scales_f);
    }
    out_like(d, &want);
    run_ok(d, threads_for(it), "resize");
    char what[160];
    snprintf(what, sizeof what, "resize %s/%s/%s a=%g excl=%d %s %s", rz_mode_names[p.mode],
             rz_ct_names[p.ct], rz_nm_names[p.nm], p.a, p.excl, use_sizes ? "sizes" : "scales",
             cpu_dtype_name(dt));
    compare_resize(d, &want, ref, what, it);
    free(ref);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

/* Nearest copies elements, so every dtype works, bit for bit. */
START_TEST(test_resize_nearest_all_dtypes) {
  rng_seed(42);
  for (int it = 0; it < 100; it++) {
    uint32_t dt = rand_dtype();
    int64_t dims[4] = {1, rnd(1, 2), rnd(1, 4), rnd(1, 4)};
    int64_t od[4] = {1, dims[1], rnd(1, 9), rnd(1, 9)};
    tt x = tt_rand_bytes(dt, 4, dims), want = tt_new(dt, 4, od);
    /* asymmetric + floor: source index floor(o * in / out) */
    for (size_t i = 0; i < want.count; i++) {
      int64_t o[4];
      unravel(i, 4, od, o);
      o[2] = (int64_t)floor((double)o[2] / ((double)od[2] / (double)dims[2]));
      o[3] = (int64_t)floor((double)o[3] / ((double)od[3] / (double)dims[3]));
      memcpy(want.data + i * x.es, x.data + ravel(4, dims, o) * x.es, x.es);
    }
    cpu_direct *d = cpu_direct_new("Resize", 13);
    cpu_direct_attr_string(d, "mode", "nearest");
    cpu_direct_attr_string(d, "coordinate_transformation_mode", "asymmetric");
    cpu_direct_attr_string(d, "nearest_mode", "floor");
    in_tt(d, &x);
    cpu_direct_input_absent(d);
    cpu_direct_input_absent(d);
    in_i64(d, 4, od);
    out_like(d, &want);
    run_ok(d, threads_for(it), "resize nearest dtypes");
    expect_bytes(d, 0, &want, "resize nearest dtypes", it);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

/* Upsample-7 (scales attribute), Upsample-9 and Resize-10 (scales input): x / scale, legacy
 * nearest rounding. */
START_TEST(test_resize_legacy_random) {
  rng_seed(43);
  static const double up[] = {1.0, 1.5, 2.0, 3.0}, any[] = {0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0};
  for (int it = 0; it < 200; it++) {
    int kind = it % 3; /* 0: Upsample-7, 1: Upsample-9, 2: Resize-10 */
    rz_ref p = {.mode = (int)rnd(0, 1), .ct = 3, .nm = 4};
    uint32_t r = (uint32_t)rnd(1, 4);
    int64_t dims[TMAX_RANK], od[TMAX_RANK];
    double scales[TMAX_RANK], lens[TMAX_RANK], roi[2 * TMAX_RANK];
    float sf[TMAX_RANK];
    for (uint32_t a = 0; a < r; a++) {
      dims[a] = rnd(1, 4);
      bool resized = a + 2 >= r;
      sf[a] = resized ? (float)(kind == 2 ? any[rnd(0, 6)] : up[rnd(0, 3)]) : 1.0f;
      scales[a] = sf[a];
      od[a] = (int64_t)floor((double)dims[a] * scales[a]);
      lens[a] = (double)dims[a] * scales[a];
      roi[a] = 0;
      roi[a + r] = 1;
    }
    tt x = tt_new(TSR_DTYPE_FLOAT32, r, dims), want = tt_new(TSR_DTYPE_FLOAT32, r, od);
    for (size_t i = 0; i < x.count; i++) tt_set(&x, i, rndf() * 10);
    double *ref = ref_resize(&x, od, scales, lens, roi, &p);
    cpu_direct *d = cpu_direct_new(kind < 2 ? "Upsample" : "Resize", kind == 0   ? 7
                                                                     : kind == 1 ? 9
                                                                                 : 10);
    if (p.mode || rnd(0, 1)) cpu_direct_attr_string(d, "mode", rz_mode_names[p.mode]);
    in_tt(d, &x);
    if (kind == 0)
      cpu_direct_attr_floats(d, "scales", r, sf);
    else
      in_f32(d, r, sf);
    out_like(d, &want);
    run_ok(d, threads_for(it), "legacy resize");
    compare_resize(d, &want, ref,
                   kind == 0   ? "upsample-7"
                   : kind == 1 ? "upsample-9"
                               : "resize-10",
                   it);
    free(ref);
    cpu_direct_free(d);
    tt_free(&x);
    tt_free(&want);
  }
}
END_TEST

/* A large bilinear and bicubic resize: several threads must give what one thread gives. */
START_TEST(test_resize_threads_agree) {
  rng_seed(44);
  static const char *const modes[] = {"linear", "cubic", "nearest"};
  for (int m = 0; m < 3; m++) {
    int64_t dims[4] = {2, 3, 37, 53}, od[4] = {2, 3, 80, 97};
    tt x = tt_new(TSR_DTYPE_FLOAT32, 4, dims);
    for (size_t i = 0; i < x.count; i++) tt_set(&x, i, rndf());
    cpu_tensor *outs[2];
    cpu_direct *ds[2];
    for (int t = 0; t < 2; t++) {
      ds[t] = cpu_direct_new("Resize", 13);
      cpu_direct_attr_string(ds[t], "mode", modes[m]);
      in_tt(ds[t], &x);
      cpu_direct_input_absent(ds[t]);
      cpu_direct_input_absent(ds[t]);
      in_i64(ds[t], 4, od);
      cpu_direct_output(ds[t], TSR_DTYPE_FLOAT32, 4, od);
      run_ok(ds[t], t ? 4 : 1, "resize threads");
      outs[t] = cpu_direct_out(ds[t], 0);
    }
    ck_assert(memcmp(outs[0]->data, outs[1]->data, outs[0]->nbytes) == 0);
    cpu_direct_free(ds[0]);
    cpu_direct_free(ds[1]);
    tt_free(&x);
  }
}
END_TEST

START_TEST(test_resize_errors) {
  int64_t dims[4] = {1, 1, 2, 2}, od[4] = {1, 1, 4, 4};
  float x[4] = {1, 2, 3, 4}, sc[4] = {1, 1, 2, 2};
  cpu_direct *d;
  /* Both scales and sizes. */
  d = cpu_direct_new("Resize", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, dims, x, false);
  cpu_direct_input_absent(d);
  in_f32(d, 4, sc);
  in_i64(d, 4, od);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  run_fails(d, "both", "scales and sizes");
  cpu_direct_free(d);
  /* Neither. */
  d = cpu_direct_new("Resize", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, dims, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  run_fails(d, "neither", "no scales or sizes");
  cpu_direct_free(d);
  /* Sizes that disagree with the output. */
  int64_t bad[4] = {1, 1, 4, 5};
  d = cpu_direct_new("Resize", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, dims, x, false);
  cpu_direct_input_absent(d);
  cpu_direct_input_absent(d);
  in_i64(d, 4, bad);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  run_fails(d, "sizes[3]", "sizes mismatch");
  cpu_direct_free(d);
  /* Scales that disagree with the output, and a zero scale. */
  float sc_bad[4] = {1, 1, 2, 5}, sc_zero[4] = {1, 1, 0, 2};
  const float *scs[2] = {sc_bad, sc_zero};
  for (int k = 0; k < 2; k++) {
    d = cpu_direct_new("Resize", 13);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, dims, x, false);
    cpu_direct_input_absent(d);
    in_f32(d, 4, scs[k]);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
    run_fails(d, k ? "positive" : "scale", "scales mismatch");
    cpu_direct_free(d);
  }
  /* tf_crop_and_resize without a roi. */
  d = cpu_direct_new("Resize", 13);
  cpu_direct_attr_string(d, "coordinate_transformation_mode", "tf_crop_and_resize");
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, dims, x, false);
  cpu_direct_input_absent(d);
  cpu_direct_input_absent(d);
  in_i64(d, 4, od);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  run_fails(d, "roi", "missing roi");
  cpu_direct_free(d);
  /* Refusals at compile time. */
  d = cpu_direct_new("Resize", 13);
  cpu_direct_attr_string(d, "mode", "area");
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, dims, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  run_refused(d, TSR_PLUGIN_REASON_ATTRIBUTE, "mode area");
  cpu_direct_free(d);
  d = cpu_direct_new("Resize", 10);
  cpu_direct_attr_string(d, "mode", "cubic"); /* cubic came with opset 11 */
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, dims, x, false);
  in_f32(d, 4, sc);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  run_refused(d, TSR_PLUGIN_REASON_ATTRIBUTE, "cubic at opset 10");
  cpu_direct_free(d);
  d = cpu_direct_new("Resize", 13);
  cpu_direct_attr_string(d, "mode", "linear");
  cpu_direct_input(d, TSR_DTYPE_BOOL, 4, dims, NULL, false);
  cpu_direct_input_absent(d);
  in_f32(d, 4, sc);
  cpu_direct_output(d, TSR_DTYPE_BOOL, 4, od);
  run_refused(d, TSR_PLUGIN_REASON_DTYPE, "linear on bool");
  cpu_direct_free(d);
  d = cpu_direct_new("Resize", 13);
  cpu_direct_attr_string(d, "nearest_mode", "round_half_even");
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, dims, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, od);
  run_refused(d, TSR_PLUGIN_REASON_ATTRIBUTE, "nearest_mode");
  cpu_direct_free(d);
  /* An empty input axis cannot grow. */
  int64_t edims[4] = {1, 1, 0, 2}, eod[4] = {1, 1, 2, 4};
  d = cpu_direct_new("Resize", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, edims, NULL, false);
  cpu_direct_input_absent(d);
  cpu_direct_input_absent(d);
  in_i64(d, 4, eod);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, eod);
  run_fails(d, "empty", "empty axis");
  cpu_direct_free(d);
}
END_TEST

/* ---- Errors and refusals of the shape ops -----------------------------------------------------
 */

START_TEST(test_shape_errors) {
  int64_t d5[1] = {5}, d23[2] = {2, 3}, d32[2] = {3, 2}, d2[1] = {2}, d4[1] = {4};
  float f5[5] = {0, 1, 2, 3, 4}, f6[6] = {0};
  cpu_direct *d;

  /* Gather: the message names the index, its position, the axis and its size. */
  int64_t idx[4] = {0, 1, 4, 7};
  d = cpu_direct_new("Gather", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 1, d4, idx, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d4);
  run_fails(d, "index 7 at position 3 is out of range for axis 0 of size 5", "gather range");
  cpu_direct_free(d);
  int64_t neg[2] = {-5, -6};
  d = cpu_direct_new("Gather", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 1, d2, neg, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d2);
  run_fails(d, "index -6 at position 1", "gather negative range");
  cpu_direct_free(d);
  /* Float indices are refused. */
  d = cpu_direct_new("Gather", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d2, f5, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d2);
  run_refused(d, TSR_PLUGIN_REASON_DTYPE, "gather float indices");
  cpu_direct_free(d);

  /* GatherElements, GatherND, ScatterElements, ScatterND out of range. */
  int64_t ge_idx[6] = {0, 1, 2, 2, 1, 3};
  d = cpu_direct_new("GatherElements", 13);
  cpu_direct_attr_int(d, "axis", 0);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d32, f6, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 2, d32, ge_idx, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d32);
  run_fails(d, "index 3 at position 5", "gather elements range");
  cpu_direct_free(d);
  int64_t nd_idx[2] = {1, 3}, nd_id[2] = {1, 2}, one[1] = {1};
  d = cpu_direct_new("GatherND", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 2, nd_id, nd_idx, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, one);
  run_fails(d, "index 3 at position 1 is out of range for axis 1 of size 3", "gather nd range");
  cpu_direct_free(d);
  d = cpu_direct_new("ScatterElements", 16);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d32, f6, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 2, d32, ge_idx, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d32, f6, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d32);
  run_fails(d, "out of range", "scatter elements range");
  cpu_direct_free(d);
  d = cpu_direct_new("ScatterND", 16);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 2, nd_id, nd_idx, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, one, f6, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d23);
  run_fails(d, "out of range", "scatter nd range");
  cpu_direct_free(d);
  d = cpu_direct_new("ScatterElements", 16);
  cpu_direct_attr_string(d, "reduction", "max"); /* opset 18 */
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d32, f6, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 2, d32, ge_idx, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d32, f6, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d32);
  run_refused(d, TSR_PLUGIN_REASON_ATTRIBUTE, "reduction max at 16");
  cpu_direct_free(d);

  /* Output shapes that disagree with the inputs. */
  d = cpu_direct_new("Transpose", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d23);
  run_fails(d, "shape [2,3] but the inputs give [3,2]", "transpose shape");
  cpu_direct_free(d);
  int64_t bad_perm[2] = {0, 0};
  d = cpu_direct_new("Transpose", 13);
  cpu_direct_attr_ints(d, "perm", 2, bad_perm);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d23);
  run_refused(d, TSR_PLUGIN_REASON_ATTRIBUTE, "transpose perm");
  cpu_direct_free(d);
  int64_t shape7[1] = {7};
  d = cpu_direct_new("Reshape", 14);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  in_i64(d, 1, shape7);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, shape7);
  run_fails(d, "elements", "reshape count");
  cpu_direct_free(d);
  d = cpu_direct_new("Concat", 13);
  cpu_direct_attr_int(d, "axis", 0);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d32, f6, false);
  int64_t d53[2] = {5, 3};
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d53);
  run_fails(d, "input 1 has size 2 on axis 1", "concat dims");
  cpu_direct_free(d);
  int64_t split[2] = {1, 1};
  d = cpu_direct_new("Split", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  in_i64(d, 2, split);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, one);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, one);
  run_fails(d, "sums to 2", "split sum");
  cpu_direct_free(d);
  d = cpu_direct_new("Split", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d2);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d2);
  run_fails(d, "equal parts", "split equal");
  cpu_direct_free(d);
  int64_t eshape[2] = {2, 4};
  d = cpu_direct_new("Expand", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  in_i64(d, 2, eshape);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, eshape);
  run_fails(d, "broadcast", "expand");
  cpu_direct_free(d);
  int64_t st[1] = {0}, en[1] = {5}, ax[1] = {0}, step0[1] = {0};
  d = cpu_direct_new("Slice", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  in_i64(d, 1, st);
  in_i64(d, 1, en);
  in_i64(d, 1, ax);
  in_i64(d, 1, step0);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d5);
  run_fails(d, "step 0 is 0", "slice step 0");
  cpu_direct_free(d);
  int64_t st2[2] = {0, 0}, en2[2] = {1, 1}, ax2[2] = {1, -1};
  d = cpu_direct_new("Slice", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  in_i64(d, 2, st2);
  in_i64(d, 2, en2);
  in_i64(d, 2, ax2);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d23);
  run_fails(d, "twice", "slice duplicate axes");
  cpu_direct_free(d);
  int64_t pads3[3] = {1, 1, 1};
  d = cpu_direct_new("Pad", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  in_i64(d, 3, pads3);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, shape7);
  run_fails(d, "pads has 3 entries", "pad count");
  cpu_direct_free(d);
  int64_t zero1[1] = {0}, pads2[2] = {1, 1};
  d = cpu_direct_new("Pad", 13);
  cpu_direct_attr_string(d, "mode", "reflect");
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, zero1, NULL, false);
  in_i64(d, 2, pads2);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d2);
  run_fails(d, "empty", "reflect pad of an empty axis");
  cpu_direct_free(d);
  d = cpu_direct_new("Pad", 13);
  cpu_direct_attr_string(d, "mode", "wrap"); /* opset 19 */
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  in_i64(d, 2, pads2);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, shape7);
  run_refused(d, TSR_PLUGIN_REASON_ATTRIBUTE, "pad wrap");
  cpu_direct_free(d);
  int64_t k9 = 9;
  d = cpu_direct_new("TopK", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  in_i64(d, 1, &k9);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d5);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, d5);
  run_fails(d, "k = 9 is out of range", "topk k");
  cpu_direct_free(d);
  int64_t nzd[2] = {1, 3};
  d = cpu_direct_new("NonZero", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false); /* four non-zeros */
  cpu_direct_output(d, TSR_DTYPE_INT64, 2, nzd);
  run_fails(d, "shape [1,3] but the inputs give [1,4]", "nonzero count");
  cpu_direct_free(d);
  uint8_t cond[3] = {0, 0, 1};
  int64_t c3[1] = {3};
  d = cpu_direct_new("Compress", 11);
  cpu_direct_attr_int(d, "axis", 1);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d32, f6, false);
  cpu_direct_input(d, TSR_DTYPE_BOOL, 1, c3, cond, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d32);
  run_fails(d, "beyond", "compress beyond");
  cpu_direct_free(d);
  int64_t oh_idx[2] = {0, 1}, v3[1] = {3}, d22[2] = {2, 2};
  d = cpu_direct_new("OneHot", 11);
  cpu_direct_input(d, TSR_DTYPE_INT64, 1, d2, oh_idx, false);
  in_scalar(d, TSR_DTYPE_INT64, 2);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, v3, f5, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d22);
  run_fails(d, "values", "onehot values");
  cpu_direct_free(d);
  int64_t sq_axes[1] = {1};
  d = cpu_direct_new("Squeeze", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  in_i64(d, 1, sq_axes);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d2);
  run_fails(d, "not 1", "squeeze");
  cpu_direct_free(d);
  int64_t us_axes[2] = {0, -3}, d123[3] = {1, 1, 5};
  d = cpu_direct_new("Unsqueeze", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  in_i64(d, 2, us_axes);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 3, d123);
  run_fails(d, "twice", "unsqueeze");
  cpu_direct_free(d);
  int64_t reps[1] = {-1};
  d = cpu_direct_new("Tile", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  in_i64(d, 1, reps);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d5);
  run_fails(d, "repeats", "tile");
  cpu_direct_free(d);
  int64_t dd_in[4] = {1, 3, 2, 2}, dd_out[4] = {1, 0, 4, 4};
  d = cpu_direct_new("DepthToSpace", 13);
  cpu_direct_attr_int(d, "blocksize", 2);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, dd_in, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, dd_out);
  run_fails(d, "multiple", "depth to space channels");
  cpu_direct_free(d);
  d = cpu_direct_new("DepthToSpace", 13);
  cpu_direct_attr_int(d, "blocksize", 2);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d23);
  run_refused(d, TSR_PLUGIN_REASON_SHAPE, "depth to space rank");
  cpu_direct_free(d);
  d = cpu_direct_new("Flatten", 13);
  cpu_direct_attr_int(d, "axis", 3);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, d23, f6, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, d23);
  run_fails(d, "axis 3 is out of range", "flatten axis");
  cpu_direct_free(d);
  d = cpu_direct_new("Range", 11);
  in_scalar(d, TSR_DTYPE_INT32, 0);
  in_scalar(d, TSR_DTYPE_INT32, 5);
  in_scalar(d, TSR_DTYPE_INT32, 0);
  cpu_direct_output(d, TSR_DTYPE_INT32, 1, d5);
  run_fails(d, "delta", "range delta");
  cpu_direct_free(d);
  /* String casts are refused. */
  d = cpu_direct_new("Cast", 13);
  cpu_direct_attr_int(d, "to", TSR_DTYPE_STRING);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  cpu_direct_output(d, TSR_DTYPE_STRING, 1, d5);
  run_refused(d, TSR_PLUGIN_REASON_DTYPE, "cast to string");
  cpu_direct_free(d);
  d = cpu_direct_new("Cast", 13);
  cpu_direct_attr_int(d, "to", TSR_DTYPE_FLOAT32);
  cpu_direct_input(d, TSR_DTYPE_STRING, 1, d5, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d5);
  run_refused(d, TSR_PLUGIN_REASON_DTYPE, "cast from string");
  cpu_direct_free(d);
  /* An output dtype that is not the `to` attribute. */
  d = cpu_direct_new("Cast", 13);
  cpu_direct_attr_int(d, "to", TSR_DTYPE_INT32);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  cpu_direct_output(d, TSR_DTYPE_INT64, 1, d5);
  run_refused(d, TSR_PLUGIN_REASON_DTYPE, "cast target");
  cpu_direct_free(d);
  /* Ops outside the implemented opsets are not found. */
  d = cpu_direct_new("Resize", 18);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, d5, f5, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, d5);
  run_fails(d, "no CPU kernel", "resize 18");
  cpu_direct_free(d);
}
END_TEST

/* Scalars and empty tensors pass through every copy path. */
START_TEST(test_scalars_and_empty) {
  int64_t e[2] = {0, 3};
  cpu_direct *d = cpu_direct_new("Transpose", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, e, NULL, false);
  int64_t eo[2] = {3, 0};
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, eo);
  run_ok(d, 1, "empty transpose");
  cpu_direct_free(d);
  double v = 2.5;
  d = cpu_direct_new("Transpose", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT64, 0, NULL, &v, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT64, 0, NULL);
  run_ok(d, 1, "scalar transpose");
  ck_assert(cpu_read_f64(cpu_direct_out(d, 0), 0) == 2.5);
  cpu_direct_free(d);
  int64_t one = 1;
  d = cpu_direct_new("Unsqueeze", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT64, 0, NULL, &v, false);
  int64_t zero = 0;
  in_i64(d, 1, &zero);
  cpu_direct_output(d, TSR_DTYPE_FLOAT64, 1, &one);
  run_ok(d, 1, "scalar unsqueeze");
  ck_assert(cpu_read_f64(cpu_direct_out(d, 0), 0) == 2.5);
  cpu_direct_free(d);
  d = cpu_direct_new("Pad", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT64, 0, NULL, &v, false);
  cpu_direct_input(d, TSR_DTYPE_INT64, 1, &zero, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT64, 0, NULL);
  run_ok(d, 1, "scalar pad");
  ck_assert(cpu_read_f64(cpu_direct_out(d, 0), 0) == 2.5);
  cpu_direct_free(d);
}
END_TEST

/* ---- Suite --------------------------------------------------------------------------------------
 */

static Suite *kernels_shape_suite(void) {
  Suite *s = suite_create("kernels_shape");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_onnx_fixtures);
  tcase_add_test(tc, test_reshape_family_random);
  tcase_add_test(tc, test_transpose_random);
  tcase_add_test(tc, test_depth_space_random);
  tcase_add_test(tc, test_concat_random);
  tcase_add_test(tc, test_concat_large);
  tcase_add_test(tc, test_split_random);
  tcase_add_test(tc, test_slice_random);
  tcase_add_test(tc, test_slice_huge_steps);
  tcase_add_test(tc, test_expand_random);
  tcase_add_test(tc, test_tile_random);
  tcase_add_test(tc, test_pad_random);
  tcase_add_test(tc, test_gather_random);
  tcase_add_test(tc, test_gather_elements_random);
  tcase_add_test(tc, test_gather_nd_random);
  tcase_add_test(tc, test_scatter_elements_random);
  tcase_add_test(tc, test_scatter_nd_random);
  tcase_add_test(tc, test_cast_random);
  tcase_add_test(tc, test_cast_edges);
  tcase_add_test(tc, test_cast_half_sweep);
  tcase_add_test(tc, test_topk_random);
  tcase_add_test(tc, test_nonzero_random);
  tcase_add_test(tc, test_compress_random);
  tcase_add_test(tc, test_one_hot_random);
  tcase_add_test(tc, test_trilu_random);
  tcase_add_test(tc, test_eye_like_random);
  tcase_add_test(tc, test_range_random);
  tcase_add_test(tc, test_shape_size_random);
  tcase_add_test(tc, test_constant_of_shape);
  tcase_add_test(tc, test_resize_random);
  tcase_add_test(tc, test_resize_nearest_all_dtypes);
  tcase_add_test(tc, test_resize_legacy_random);
  tcase_add_test(tc, test_resize_threads_agree);
  tcase_add_test(tc, test_resize_errors);
  tcase_add_test(tc, test_shape_errors);
  tcase_add_test(tc, test_scalars_and_empty);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_shape_suite()) != 0; }

/* ---- Fixed cases
 * --------------------------------------------------------------------------------- Generated from
 * the ONNX 1.12 backend node tests (test_data_set_0 of each single-node model): every
 * Resize/Upsample case and the cases of this family's other ops with at most 64 elements in all;
 * string casts are left out (they are refused, see test_shape_errors). Format: name, op, opset,
 * attributes, inputs ({0} = absent), outputs; tensors are {dtype, rank, dims, count, values}. */
static const fx_case fixtures[] = {
    {"cast_BFLOAT16_to_FLOAT", "Cast", 13, 1, {{"to", FX_INT, .i = 1}}, 1, {{16, 2, {3,4}, 12,
     .f = (const double[]){0.478515625,0.478515625,0.498046875,0.81640625,0.46875,0.81640625,
     0.209960938,0.72265625,NAN,INFINITY,INFINITY,-INFINITY}}}, 1, {{1, 2, {3,4}, 12,
     .f = (const double[]){0.478515625,0.478515625,0.498046875,0.81640625,0.46875,0.81640625,
     0.209960938,0.72265625,NAN,INFINITY,INFINITY,-INFINITY}}}},
    {"cast_DOUBLE_to_FLOAT", "Cast", 13, 1, {{"to", FX_INT, .i = 1}}, 1, {{11, 2, {3,4}, 12,
     .f = (const double[]){0.31542835092418386,0.3637107709426226,0.5701967704178796,
     0.43860151346232035,0.9883738380592262,0.10204481074802807,0.2088767560948347,
     0.16130951788499626,0.6531083254653984,0.2532916025397821,0.4663107728563063,
     0.24442559200160274}}}, 1, {{1, 2, {3,4}, 12, .f = (const double[]){0.315428346,0.363710761,
     0.570196748,0.438601524,0.988373816,0.102044813,0.208876759,0.16130951,0.653108299,0.253291607,
     0.466310769,0.244425595}}}},
    {"cast_DOUBLE_to_FLOAT16", "Cast", 13, 1, {{"to", FX_INT, .i = 10}}, 1, {{11, 2, {3,4}, 12,
     .f = (const double[]){0.15896958364551972,0.11037514116430513,0.6563295894652734,
     0.1381829513486138,0.1965823616800535,0.3687251706609641,0.8209932298479351,
     0.09710127579306127,0.8379449074988039,0.09609840789396307,0.9764594650133958,
     0.4686512016477016}}}, 1, {{10, 2, {3,4}, 12, .f = (const double[]){0.158935547,0.110351562,
     0.65625,0.138183594,0.196533203,0.368652344,0.820800781,0.0971069336,0.837890625,0.0960693359,
     0.9765625,0.46875}}}},
    {"cast_FLOAT16_to_DOUBLE", "Cast", 13, 1, {{"to", FX_INT, .i = 11}}, 1, {{10, 2, {3,4}, 12,
     .f = (const double[]){0.612304688,0.616699219,0.943847656,0.681640625,0.359619141,0.437011719,
     0.697753906,0.0602111816,0.666992188,0.670410156,0.210327148,0.12890625}}}, 1, {{11, 2, {3,4},
     12, .f = (const double[]){0.6123046875,0.61669921875,0.94384765625,0.681640625,0.359619140625,
     0.43701171875,0.69775390625,0.060211181640625,0.6669921875,0.67041015625,0.2103271484375,
     0.12890625}}}},
    {"cast_FLOAT16_to_FLOAT", "Cast", 13, 1, {{"to", FX_INT, .i = 1}}, 1, {{10, 2, {3,4}, 12,
     .f = (const double[]){0.118286133,0.640136719,0.143310547,0.944824219,0.521972656,0.414550781,
     0.264648438,0.774414062,0.456054688,0.568359375,0.0187835693,0.617675781}}}, 1, {{1, 2, {3,4},
     12, .f = (const double[]){0.118286133,0.640136719,0.143310547,0.944824219,0.521972656,
     0.414550781,0.264648438,0.774414062,0.456054688,0.568359375,0.0187835693,0.617675781}}}},
    {"cast_FLOAT_to_BFLOAT16", "Cast", 13, 1, {{"to", FX_INT, .i = 16}}, 1, {{1, 2, {3,4}, 12,
     .f = (const double[]){0.478925467,0.480336666,0.49968487,0.819105446,0.470312476,0.816468,
     0.21087195,0.722903788,NAN,INFINITY,INFINITY,-INFINITY}}}, 1, {{16, 2, {3,4}, 12,
     .f = (const double[]){0.478515625,0.478515625,0.498046875,0.81640625,0.46875,0.81640625,
     0.209960938,0.72265625,NAN,INFINITY,INFINITY,-INFINITY}}}},
    {"cast_FLOAT_to_DOUBLE", "Cast", 13, 1, {{"to", FX_INT, .i = 11}}, 1, {{1, 2, {3,4}, 12,
     .f = (const double[]){0.568044543,0.925596654,0.0710360557,0.0871293023,0.0202183966,
     0.832619846,0.778156757,0.870012164,0.978618324,0.799158573,0.461479366,0.780529201}}}, 1,
     {{11, 2, {3,4}, 12, .f = (const double[]){0.5680445432662964,0.9255966544151306,
     0.07103605568408966,0.08712930232286453,0.020218396559357643,0.832619845867157,
     0.7781567573547363,0.8700121641159058,0.978618323802948,0.7991585731506348,0.4614793658256531,
     0.7805292010307312}}}},
    {"cast_FLOAT_to_FLOAT16", "Cast", 13, 1, {{"to", FX_INT, .i = 10}}, 1, {{1, 2, {3,4}, 12,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901}}}, 1, {{10, 2, {3,4},
     12, .f = (const double[]){0.548828125,0.715332031,0.602539062,0.544921875,0.423583984,
     0.645996094,0.4375,0.891601562,0.963867188,0.383544922,0.791503906,0.528808594}}}},
    {"castlike_BFLOAT16_to_FLOAT", "CastLike", 15, 0, {}, 2, {{16, 2, {3,4}, 12,
     .f = (const double[]){0.478515625,0.478515625,0.498046875,0.81640625,0.46875,0.81640625,
     0.209960938,0.72265625,NAN,INFINITY,INFINITY,-INFINITY}},
     {1, 1, {1}, 1, .f = (const double[]){0.478515625}}}, 1, {{1, 2, {3,4}, 12,
     .f = (const double[]){0.478515625,0.478515625,0.498046875,0.81640625,0.46875,0.81640625,
     0.209960938,0.72265625,NAN,INFINITY,INFINITY,-INFINITY}}}},
    {"castlike_DOUBLE_to_FLOAT", "CastLike", 15, 0, {}, 2, {{11, 2, {3,4}, 12,
     .f = (const double[]){0.31542835092418386,0.3637107709426226,0.5701967704178796,
     0.43860151346232035,0.9883738380592262,0.10204481074802807,0.2088767560948347,
     0.16130951788499626,0.6531083254653984,0.2532916025397821,0.4663107728563063,
     0.24442559200160274}},
     {1, 1, {1}, 1, .f = (const double[]){0.315428346}}}, 1, {{1, 2, {3,4}, 12,
     .f = (const double[]){0.315428346,0.363710761,0.570196748,0.438601524,0.988373816,0.102044813,
     0.208876759,0.16130951,0.653108299,0.253291607,0.466310769,0.244425595}}}},
    {"castlike_DOUBLE_to_FLOAT16", "CastLike", 15, 0, {}, 2, {{11, 2, {3,4}, 12,
     .f = (const double[]){0.15896958364551972,0.11037514116430513,0.6563295894652734,
     0.1381829513486138,0.1965823616800535,0.3687251706609641,0.8209932298479351,
     0.09710127579306127,0.8379449074988039,0.09609840789396307,0.9764594650133958,
     0.4686512016477016}},
     {10, 1, {1}, 1, .f = (const double[]){0.158935547}}}, 1, {{10, 2, {3,4}, 12,
     .f = (const double[]){0.158935547,0.110351562,0.65625,0.138183594,0.196533203,0.368652344,
     0.820800781,0.0971069336,0.837890625,0.0960693359,0.9765625,0.46875}}}},
    {"castlike_FLOAT16_to_DOUBLE", "CastLike", 15, 0, {}, 2, {{10, 2, {3,4}, 12,
     .f = (const double[]){0.612304688,0.616699219,0.943847656,0.681640625,0.359619141,0.437011719,
     0.697753906,0.0602111816,0.666992188,0.670410156,0.210327148,0.12890625}},
     {11, 1, {1}, 1, .f = (const double[]){0.6123046875}}}, 1, {{11, 2, {3,4}, 12,
     .f = (const double[]){0.6123046875,0.61669921875,0.94384765625,0.681640625,0.359619140625,
     0.43701171875,0.69775390625,0.060211181640625,0.6669921875,0.67041015625,0.2103271484375,
     0.12890625}}}},
    {"castlike_FLOAT16_to_FLOAT", "CastLike", 15, 0, {}, 2, {{10, 2, {3,4}, 12,
     .f = (const double[]){0.118286133,0.640136719,0.143310547,0.944824219,0.521972656,0.414550781,
     0.264648438,0.774414062,0.456054688,0.568359375,0.0187835693,0.617675781}},
     {1, 1, {1}, 1, .f = (const double[]){0.118286133}}}, 1, {{1, 2, {3,4}, 12,
     .f = (const double[]){0.118286133,0.640136719,0.143310547,0.944824219,0.521972656,0.414550781,
     0.264648438,0.774414062,0.456054688,0.568359375,0.0187835693,0.617675781}}}},
    {"castlike_FLOAT_to_BFLOAT16", "CastLike", 15, 0, {}, 2, {{1, 2, {3,4}, 12,
     .f = (const double[]){0.478925467,0.480336666,0.49968487,0.819105446,0.470312476,0.816468,
     0.21087195,0.722903788,NAN,INFINITY,INFINITY,-INFINITY}},
     {16, 1, {1}, 1, .f = (const double[]){0.478515625}}}, 1, {{16, 2, {3,4}, 12,
     .f = (const double[]){0.478515625,0.478515625,0.498046875,0.81640625,0.46875,0.81640625,
     0.209960938,0.72265625,NAN,INFINITY,INFINITY,-INFINITY}}}},
    {"castlike_FLOAT_to_DOUBLE", "CastLike", 15, 0, {}, 2, {{1, 2, {3,4}, 12,
     .f = (const double[]){0.568044543,0.925596654,0.0710360557,0.0871293023,0.0202183966,
     0.832619846,0.778156757,0.870012164,0.978618324,0.799158573,0.461479366,0.780529201}},
     {11, 1, {1}, 1, .f = (const double[]){0.5680445432662964}}}, 1, {{11, 2, {3,4}, 12,
     .f = (const double[]){0.5680445432662964,0.9255966544151306,0.07103605568408966,
     0.08712930232286453,0.020218396559357643,0.832619845867157,0.7781567573547363,
     0.8700121641159058,0.978618323802948,0.7991585731506348,0.4614793658256531,
     0.7805292010307312}}}},
    {"castlike_FLOAT_to_FLOAT16", "CastLike", 15, 0, {}, 2, {{1, 2, {3,4}, 12,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901}},
     {10, 1, {1}, 1, .f = (const double[]){0.548828125}}}, 1, {{10, 2, {3,4}, 12,
     .f = (const double[]){0.548828125,0.715332031,0.602539062,0.544921875,0.423583984,0.645996094,
     0.4375,0.891601562,0.963867188,0.383544922,0.791503906,0.528808594}}}},
    {"compress_0", "Compress", 11, 1, {{"axis", FX_INT, .i = 0}}, 2, {{1, 2, {3,2}, 6,
     .f = (const double[]){1,2,3,4,5,6}},
     {9, 1, {3}, 3, .i = (const int64_t[]){0,1,1}}}, 1, {{1, 2, {2,2}, 4, .f = (const double[]){3,4,
     5,6}}}},
    {"compress_1", "Compress", 11, 1, {{"axis", FX_INT, .i = 1}}, 2, {{1, 2, {3,2}, 6,
     .f = (const double[]){1,2,3,4,5,6}},
     {9, 1, {2}, 2, .i = (const int64_t[]){0,1}}}, 1, {{1, 2, {3,1}, 3, .f = (const double[]){2,4,
     6}}}},
    {"compress_default_axis", "Compress", 11, 0, {}, 2, {{1, 2, {3,2}, 6, .f = (const double[]){1,2,
     3,4,5,6}},
     {9, 1, {5}, 5, .i = (const int64_t[]){0,1,0,0,1}}}, 1, {{1, 1, {2}, 2, .f = (const double[]){2,
     5}}}},
    {"compress_negative_axis", "Compress", 11, 1, {{"axis", FX_INT, .i = -1}}, 2, {{1, 2, {3,2}, 6,
     .f = (const double[]){1,2,3,4,5,6}},
     {9, 1, {2}, 2, .i = (const int64_t[]){0,1}}}, 1, {{1, 2, {3,1}, 3, .f = (const double[]){2,4,
     6}}}},
    {"concat_1d_axis_0", "Concat", 13, 1, {{"axis", FX_INT, .i = 0}}, 2, {{1, 1, {2}, 2,
     .f = (const double[]){1,2}},
     {1, 1, {2}, 2, .f = (const double[]){3,4}}}, 1, {{1, 1, {4}, 4, .f = (const double[]){1,2,3,
     4}}}},
    {"concat_1d_axis_negative_1", "Concat", 13, 1, {{"axis", FX_INT, .i = -1}}, 2, {{1, 1, {2}, 2,
     .f = (const double[]){1,2}},
     {1, 1, {2}, 2, .f = (const double[]){3,4}}}, 1, {{1, 1, {4}, 4, .f = (const double[]){1,2,3,
     4}}}},
    {"concat_2d_axis_0", "Concat", 13, 1, {{"axis", FX_INT, .i = 0}}, 2, {{1, 2, {2,2}, 4,
     .f = (const double[]){1,2,3,4}},
     {1, 2, {2,2}, 4, .f = (const double[]){5,6,7,8}}}, 1, {{1, 2, {4,2}, 8,
     .f = (const double[]){1,2,3,4,5,6,7,8}}}},
    {"concat_2d_axis_1", "Concat", 13, 1, {{"axis", FX_INT, .i = 1}}, 2, {{1, 2, {2,2}, 4,
     .f = (const double[]){1,2,3,4}},
     {1, 2, {2,2}, 4, .f = (const double[]){5,6,7,8}}}, 1, {{1, 2, {2,4}, 8,
     .f = (const double[]){1,2,5,6,3,4,7,8}}}},
    {"concat_2d_axis_negative_1", "Concat", 13, 1, {{"axis", FX_INT, .i = -1}}, 2, {{1, 2, {2,2}, 4,
     .f = (const double[]){1,2,3,4}},
     {1, 2, {2,2}, 4, .f = (const double[]){5,6,7,8}}}, 1, {{1, 2, {2,4}, 8,
     .f = (const double[]){1,2,5,6,3,4,7,8}}}},
    {"concat_2d_axis_negative_2", "Concat", 13, 1, {{"axis", FX_INT, .i = -2}}, 2, {{1, 2, {2,2}, 4,
     .f = (const double[]){1,2,3,4}},
     {1, 2, {2,2}, 4, .f = (const double[]){5,6,7,8}}}, 1, {{1, 2, {4,2}, 8,
     .f = (const double[]){1,2,3,4,5,6,7,8}}}},
    {"concat_3d_axis_0", "Concat", 13, 1, {{"axis", FX_INT, .i = 0}}, 2, {{1, 3, {2,2,2}, 8,
     .f = (const double[]){1,2,3,4,5,6,7,8}},
     {1, 3, {2,2,2}, 8, .f = (const double[]){9,10,11,12,13,14,15,16}}}, 1, {{1, 3, {4,2,2}, 16,
     .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}}}},
    {"concat_3d_axis_1", "Concat", 13, 1, {{"axis", FX_INT, .i = 1}}, 2, {{1, 3, {2,2,2}, 8,
     .f = (const double[]){1,2,3,4,5,6,7,8}},
     {1, 3, {2,2,2}, 8, .f = (const double[]){9,10,11,12,13,14,15,16}}}, 1, {{1, 3, {2,4,2}, 16,
     .f = (const double[]){1,2,3,4,9,10,11,12,5,6,7,8,13,14,15,16}}}},
    {"concat_3d_axis_2", "Concat", 13, 1, {{"axis", FX_INT, .i = 2}}, 2, {{1, 3, {2,2,2}, 8,
     .f = (const double[]){1,2,3,4,5,6,7,8}},
     {1, 3, {2,2,2}, 8, .f = (const double[]){9,10,11,12,13,14,15,16}}}, 1, {{1, 3, {2,2,4}, 16,
     .f = (const double[]){1,2,9,10,3,4,11,12,5,6,13,14,7,8,15,16}}}},
    {"concat_3d_axis_negative_1", "Concat", 13, 1, {{"axis", FX_INT, .i = -1}}, 2, {{1, 3, {2,2,2},
     8, .f = (const double[]){1,2,3,4,5,6,7,8}},
     {1, 3, {2,2,2}, 8, .f = (const double[]){9,10,11,12,13,14,15,16}}}, 1, {{1, 3, {2,2,4}, 16,
     .f = (const double[]){1,2,9,10,3,4,11,12,5,6,13,14,7,8,15,16}}}},
    {"concat_3d_axis_negative_2", "Concat", 13, 1, {{"axis", FX_INT, .i = -2}}, 2, {{1, 3, {2,2,2},
     8, .f = (const double[]){1,2,3,4,5,6,7,8}},
     {1, 3, {2,2,2}, 8, .f = (const double[]){9,10,11,12,13,14,15,16}}}, 1, {{1, 3, {2,4,2}, 16,
     .f = (const double[]){1,2,3,4,9,10,11,12,5,6,7,8,13,14,15,16}}}},
    {"concat_3d_axis_negative_3", "Concat", 13, 1, {{"axis", FX_INT, .i = -3}}, 2, {{1, 3, {2,2,2},
     8, .f = (const double[]){1,2,3,4,5,6,7,8}},
     {1, 3, {2,2,2}, 8, .f = (const double[]){9,10,11,12,13,14,15,16}}}, 1, {{1, 3, {4,2,2}, 16,
     .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}}}},
    {"expand_dim_changed", "Expand", 13, 0, {}, 2, {{1, 2, {3,1}, 3, .f = (const double[]){1,2,3}},
     {7, 1, {3}, 3, .i = (const int64_t[]){2,1,6}}}, 1, {{1, 3, {2,3,6}, 36,
     .f = (const double[]){1,1,1,1,1,1,2,2,2,2,2,2,3,3,3,3,3,3,1,1,1,1,1,1,2,2,2,2,2,2,3,3,3,3,3,
     3}}}},
    {"expand_dim_unchanged", "Expand", 13, 0, {}, 2, {{1, 2, {3,1}, 3, .f = (const double[]){1,2,
     3}},
     {7, 1, {2}, 2, .i = (const int64_t[]){3,4}}}, 1, {{1, 2, {3,4}, 12, .f = (const double[]){1,1,
     1,1,2,2,2,2,3,3,3,3}}}},
    {"eyelike_populate_off_main_diagonal", "EyeLike", 9, 2, {{"dtype", FX_INT, .i = 1}, {"k",
     FX_INT, .i = 1}}, 1, {{6, 2, {4,5}, 20, .i = (const int64_t[]){44,47,64,67,67,9,83,21,36,87,70,
     88,88,12,58,65,39,87,46,88}}}, 1, {{1, 2, {4,5}, 20, .f = (const double[]){0,1,0,0,0,0,0,1,0,0,
     0,0,0,1,0,0,0,0,0,1}}}},
    {"eyelike_with_dtype", "EyeLike", 9, 1, {{"dtype", FX_INT, .i = 11}}, 1, {{6, 2, {3,4}, 12,
     .i = (const int64_t[]){44,47,64,67,67,9,83,21,36,87,70,88}}}, 1, {{11, 2, {3,4}, 12,
     .f = (const double[]){1.0,0.0,0.0,0.0,0.0,1.0,0.0,0.0,0.0,0.0,1.0,0.0}}}},
    {"eyelike_without_dtype", "EyeLike", 9, 0, {}, 1, {{6, 2, {4,4}, 16, .i = (const int64_t[]){44,
     47,64,67,67,9,83,21,36,87,70,88,88,12,58,65}}}, 1, {{6, 2, {4,4}, 16, .i = (const int64_t[]){1,
     0,0,0,0,1,0,0,0,0,1,0,0,0,0,1}}}},
    {"gather_2d_indices", "Gather", 13, 1, {{"axis", FX_INT, .i = 1}}, 2, {{1, 2, {3,3}, 9,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853}},
     {7, 2, {1,2}, 2, .i = (const int64_t[]){0,2}}}, 1, {{1, 3, {3,1,2}, 6,
     .f = (const double[]){1.76405239,0.97873801,2.24089313,-0.977277875,0.950088441,
     -0.103218853}}}},
    {"gather_elements_0", "GatherElements", 13, 1, {{"axis", FX_INT, .i = 1}}, 2, {{1, 2, {2,2}, 4,
     .f = (const double[]){1,2,3,4}},
     {7, 2, {2,2}, 4, .i = (const int64_t[]){0,0,1,0}}}, 1, {{1, 2, {2,2}, 4,
     .f = (const double[]){1,1,4,3}}}},
    {"gather_elements_1", "GatherElements", 13, 1, {{"axis", FX_INT, .i = 0}}, 2, {{1, 2, {3,3}, 9,
     .f = (const double[]){1,2,3,4,5,6,7,8,9}},
     {7, 2, {2,3}, 6, .i = (const int64_t[]){1,2,0,2,0,0}}}, 1, {{1, 2, {2,3}, 6,
     .f = (const double[]){4,8,3,7,2,3}}}},
    {"gather_elements_negative_indices", "GatherElements", 13, 1, {{"axis", FX_INT, .i = 0}}, 2,
     {{1, 2, {3,3}, 9, .f = (const double[]){1,2,3,4,5,6,7,8,9}},
     {7, 2, {2,3}, 6, .i = (const int64_t[]){-1,-2,0,-2,0,0}}}, 1, {{1, 2, {2,3}, 6,
     .f = (const double[]){7,5,3,4,2,3}}}},
    {"gather_negative_indices", "Gather", 13, 1, {{"axis", FX_INT, .i = 0}}, 2, {{1, 1, {10}, 10,
     .f = (const double[]){0,1,2,3,4,5,6,7,8,9}},
     {7, 1, {3}, 3, .i = (const int64_t[]){0,-9,-10}}}, 1, {{1, 1, {3}, 3, .f = (const double[]){0,
     1,0}}}},
    {"gathernd_example_float32", "GatherND", 13, 0, {}, 2, {{1, 3, {2,2,2}, 8,
     .f = (const double[]){0,1,2,3,4,5,6,7}},
     {7, 3, {2,1,2}, 4, .i = (const int64_t[]){0,1,1,0}}}, 1, {{1, 3, {2,1,2}, 4,
     .f = (const double[]){2,3,4,5}}}},
    {"gathernd_example_int32", "GatherND", 13, 0, {}, 2, {{6, 2, {2,2}, 4, .i = (const int64_t[]){0,
     1,2,3}},
     {7, 2, {2,2}, 4, .i = (const int64_t[]){0,0,1,1}}}, 1, {{6, 1, {2}, 2,
     .i = (const int64_t[]){0,3}}}},
    {"gathernd_example_int32_batch_dim1", "GatherND", 13, 1, {{"batch_dims", FX_INT, .i = 1}}, 2,
     {{6, 3, {2,2,2}, 8, .i = (const int64_t[]){0,1,2,3,4,5,6,7}},
     {7, 2, {2,1}, 2, .i = (const int64_t[]){1,0}}}, 1, {{6, 2, {2,2}, 4, .i = (const int64_t[]){2,
     3,4,5}}}},
    {"nonzero_example", "NonZero", 13, 0, {}, 1, {{9, 2, {2,2}, 4, .i = (const int64_t[]){1,0,1,
     1}}}, 1, {{7, 2, {2,3}, 6, .i = (const int64_t[]){0,1,1,0,0,1}}}},
    {"onehot_negative_indices", "OneHot", 11, 1, {{"axis", FX_INT, .i = 1}}, 3, {{7, 1, {3}, 3,
     .i = (const int64_t[]){0,-7,-8}},
     {1, 0, {0}, 1, .f = (const double[]){10}},
     {1, 1, {2}, 2, .f = (const double[]){1,3}}}, 1, {{1, 2, {3,10}, 30, .f = (const double[]){3,1,
     1,1,1,1,1,1,1,1,1,1,1,3,1,1,1,1,1,1,1,1,3,1,1,1,1,1,1,1}}}},
    {"onehot_with_axis", "OneHot", 11, 1, {{"axis", FX_INT, .i = 1}}, 3, {{1, 2, {2,2}, 4,
     .f = (const double[]){1,9,2,4}},
     {1, 0, {0}, 1, .f = (const double[]){10}},
     {1, 1, {2}, 2, .f = (const double[]){1,3}}}, 1, {{1, 3, {2,10,2}, 40, .f = (const double[]){1,
     1,3,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,3,1,1,1,1,3,1,1,1,1,3,1,1,1,1,1,1,1,1,1,1}}}},
    {"onehot_with_negative_axis", "OneHot", 11, 1, {{"axis", FX_INT, .i = -2}}, 3, {{1, 2, {2,2}, 4,
     .f = (const double[]){1,9,2,4}},
     {1, 0, {0}, 1, .f = (const double[]){10}},
     {1, 1, {2}, 2, .f = (const double[]){1,3}}}, 1, {{1, 3, {2,10,2}, 40, .f = (const double[]){1,
     1,3,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,3,1,1,1,1,3,1,1,1,1,3,1,1,1,1,1,1,1,1,1,1}}}},
    {"onehot_without_axis", "OneHot", 11, 0, {}, 3, {{7, 1, {3}, 3, .i = (const int64_t[]){0,7,8}},
     {1, 0, {0}, 1, .f = (const double[]){12}},
     {6, 1, {2}, 2, .i = (const int64_t[]){2,5}}}, 1, {{6, 2, {3,12}, 36, .i = (const int64_t[]){5,
     2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,5,2,2,2,2,2,2,2,2,2,2,2,2,5,2,2,2}}}},
    {"range_float_type_positive_delta", "Range", 11, 0, {}, 3, {{1, 0, {0}, 1,
     .f = (const double[]){1}},
     {1, 0, {0}, 1, .f = (const double[]){5}},
     {1, 0, {0}, 1, .f = (const double[]){2}}}, 1, {{1, 1, {2}, 2, .f = (const double[]){1,3}}}},
    {"range_int32_type_negative_delta", "Range", 11, 0, {}, 3, {{6, 0, {0}, 1,
     .i = (const int64_t[]){10}},
     {6, 0, {0}, 1, .i = (const int64_t[]){6}},
     {6, 0, {0}, 1, .i = (const int64_t[]){-3}}}, 1, {{6, 1, {2}, 2, .i = (const int64_t[]){10,
     7}}}},
    {"reshape_allowzero_reordered", "Reshape", 14, 1, {{"allowzero", FX_INT, .i = 1}}, 2, {{1, 3,
     {0,3,4}, 0, .f = (const double[]){0}},
     {7, 1, {3}, 3, .i = (const int64_t[]){3,4,0}}}, 1, {{1, 3, {3,4,0}, 0,
     .f = (const double[]){0}}}},
    {"reshape_extended_dims", "Reshape", 14, 0, {}, 2, {{1, 3, {2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}},
     {7, 1, {4}, 4, .i = (const int64_t[]){2,3,2,2}}}, 1, {{1, 4, {2,3,2,2}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}}}},
    {"reshape_negative_dim", "Reshape", 14, 0, {}, 2, {{1, 3, {2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}},
     {7, 1, {3}, 3, .i = (const int64_t[]){2,-1,2}}}, 1, {{1, 3, {2,6,2}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}}}},
    {"reshape_negative_extended_dims", "Reshape", 14, 0, {}, 2, {{1, 3, {2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}},
     {7, 1, {4}, 4, .i = (const int64_t[]){-1,2,3,4}}}, 1, {{1, 4, {1,2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}}}},
    {"reshape_one_dim", "Reshape", 14, 0, {}, 2, {{1, 3, {2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}},
     {7, 1, {1}, 1, .i = (const int64_t[]){24}}}, 1, {{1, 1, {24}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}}}},
    {"reshape_reduced_dims", "Reshape", 14, 0, {}, 2, {{1, 3, {2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}},
     {7, 1, {2}, 2, .i = (const int64_t[]){2,12}}}, 1, {{1, 2, {2,12}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}}}},
    {"reshape_reordered_all_dims", "Reshape", 14, 0, {}, 2, {{1, 3, {2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}},
     {7, 1, {3}, 3, .i = (const int64_t[]){4,2,3}}}, 1, {{1, 3, {4,2,3}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}}}},
    {"reshape_reordered_last_dims", "Reshape", 14, 0, {}, 2, {{1, 3, {2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}},
     {7, 1, {3}, 3, .i = (const int64_t[]){2,4,3}}}, 1, {{1, 3, {2,4,3}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}}}},
    {"reshape_zero_and_negative_dim", "Reshape", 14, 0, {}, 2, {{1, 3, {2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}},
     {7, 1, {4}, 4, .i = (const int64_t[]){2,0,1,-1}}}, 1, {{1, 4, {2,3,1,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}}}},
    {"reshape_zero_dim", "Reshape", 14, 0, {}, 2, {{1, 3, {2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}},
     {7, 1, {4}, 4, .i = (const int64_t[]){2,0,4,1}}}, 1, {{1, 4, {2,3,4,1}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}}}},
    {"resize_downsample_scales_cubic", "Resize", 13, 1, {{"mode", FX_STRING, .s = "cubic"}}, 3, {{1,
     4, {1,1,4,4}, 16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,0.800000012,0.800000012}}}, 1, {{1, 4, {1,1,3,3}, 9,
     .f = (const double[]){1.47119141,2.78125,4.08251953,6.71142578,8.02148438,9.32275391,
     11.9165039,13.2265625,14.527832}}}},
    {"resize_downsample_scales_cubic_A_n0p5_exclude_outside", "Resize", 13, 3, {{"cubic_coeff_a",
     FX_FLOAT, .f = -0.5f}, {"exclude_outside", FX_INT, .i = 1}, {"mode", FX_STRING, .s = "cubic"}},
     3, {{1, 4, {1,1,4,4}, 16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,0.800000012,0.800000012}}}, 1, {{1, 4, {1,1,3,3}, 9,
     .f = (const double[]){1.36812675,2.6695013,4.01333666,6.57362509,7.875,9.21883488,11.948966,
     13.2503414,14.5941763}}}},
    {"resize_downsample_scales_cubic_align_corners", "Resize", 13, 2,
     {{"coordinate_transformation_mode", FX_STRING, .s = "align_corners"}, {"mode", FX_STRING,
     .s = "cubic"}}, 3, {{1, 4, {1,1,4,4}, 16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,
     14,15,16}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,0.800000012,0.800000012}}}, 1, {{1, 4, {1,1,3,3}, 9,
     .f = (const double[]){1,2.39519167,3.7903831,6.5807662,7.97595787,9.37114906,12.1615324,
     13.5567236,14.9519157}}}},
    {"resize_downsample_scales_linear", "Resize", 13, 1, {{"mode", FX_STRING, .s = "linear"}}, 3,
     {{1, 4, {1,1,2,4}, 8, .f = (const double[]){1,2,3,4,5,6,7,8}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,0.600000024,0.600000024}}}, 1, {{1, 4, {1,1,1,2}, 2,
     .f = (const double[]){2.66666651,4.33333302}}}},
    {"resize_downsample_scales_linear_align_corners", "Resize", 13, 2,
     {{"coordinate_transformation_mode", FX_STRING, .s = "align_corners"}, {"mode", FX_STRING,
     .s = "linear"}}, 3, {{1, 4, {1,1,2,4}, 8, .f = (const double[]){1,2,3,4,5,6,7,8}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,0.600000024,0.600000024}}}, 1, {{1, 4, {1,1,1,2}, 2,
     .f = (const double[]){1,3.14285707}}}},
    {"resize_downsample_scales_nearest", "Resize", 13, 1, {{"mode", FX_STRING, .s = "nearest"}}, 3,
     {{1, 4, {1,1,2,4}, 8, .f = (const double[]){1,2,3,4,5,6,7,8}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,0.600000024,0.600000024}}}, 1, {{1, 4, {1,1,1,2}, 2,
     .f = (const double[]){1,3}}}},
    {"resize_downsample_sizes_cubic", "Resize", 13, 1, {{"mode", FX_STRING, .s = "cubic"}}, 4, {{1,
     4, {1,1,4,4}, 16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}},
     {0},
     {0},
     {7, 1, {4}, 4, .i = (const int64_t[]){1,1,3,3}}}, 1, {{1, 4, {1,1,3,3}, 9,
     .f = (const double[]){1.63078701,3.00462961,4.37847233,7.12615728,8.5,9.87384224,12.6215277,
     13.9953699,15.3692131}}}},
    {"resize_downsample_sizes_linear_pytorch_half_pixel", "Resize", 13, 2,
     {{"coordinate_transformation_mode", FX_STRING, .s = "pytorch_half_pixel"}, {"mode", FX_STRING,
     .s = "linear"}}, 4, {{1, 4, {1,1,4,4}, 16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,
     14,15,16}},
     {0},
     {0},
     {7, 1, {4}, 4, .i = (const int64_t[]){1,1,3,1}}}, 1, {{1, 4, {1,1,3,1}, 3,
     .f = (const double[]){1.66666663,7,12.333333}}}},
    {"resize_downsample_sizes_nearest", "Resize", 13, 1, {{"mode", FX_STRING, .s = "nearest"}}, 4,
     {{1, 4, {1,1,2,4}, 8, .f = (const double[]){1,2,3,4,5,6,7,8}},
     {0},
     {0},
     {7, 1, {4}, 4, .i = (const int64_t[]){1,1,1,3}}}, 1, {{1, 4, {1,1,1,3}, 3,
     .f = (const double[]){1,2,4}}}},
    {"resize_tf_crop_and_resize", "Resize", 13, 3, {{"coordinate_transformation_mode", FX_STRING,
     .s = "tf_crop_and_resize"}, {"extrapolation_value", FX_FLOAT, .f = 10.0f}, {"mode", FX_STRING,
     .s = "linear"}}, 4, {{1, 4, {1,1,4,4}, 16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,
     14,15,16}},
     {1, 1, {8}, 8, .f = (const double[]){0,0,0.400000006,0.600000024,1,1,1.20000005,1.70000005}},
     {0},
     {7, 1, {4}, 4, .i = (const int64_t[]){1,1,3,3}}}, 1, {{1, 4, {1,1,3,3}, 9,
     .f = (const double[]){7.60000038,10,10,12.4000006,10,10,10,10,10}}}},
    {"resize_upsample_scales_cubic", "Resize", 13, 1, {{"mode", FX_STRING, .s = "cubic"}}, 3, {{1,
     4, {1,1,4,4}, 16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,2,2}}}, 1, {{1, 4, {1,1,8,8}, 64,
     .f = (const double[]){0.47265625,0.76953125,1.24609375,1.875,2.28125,2.91015625,3.38671875,
     3.68359375,1.66015625,1.95703125,2.43359375,3.0625,3.46875,4.09765625,4.57421875,4.87109375,
     3.56640625,3.86328125,4.33984375,4.96875,5.375,6.00390625,6.48046875,6.77734375,6.08203125,
     6.37890625,6.85546875,7.484375,7.890625,8.51953125,8.99609375,9.29296875,7.70703125,8.00390625,
     8.48046875,9.109375,9.515625,10.1445312,10.6210938,10.9179688,10.2226562,10.5195312,10.9960938,
     11.625,12.03125,12.6601562,13.1367188,13.4335938,12.1289062,12.4257812,12.9023438,13.53125,
     13.9375,14.5664062,15.0429688,15.3398438,13.3164062,13.6132812,14.0898438,14.71875,15.125,
     15.7539062,16.2304688,16.5273438}}}},
    {"resize_upsample_scales_cubic_A_n0p5_exclude_outside", "Resize", 13, 3, {{"cubic_coeff_a",
     FX_FLOAT, .f = -0.5f}, {"exclude_outside", FX_INT, .i = 1}, {"mode", FX_STRING, .s = "cubic"}},
     3, {{1, 4, {1,1,4,4}, 16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,2,2}}}, 1, {{1, 4, {1,1,8,8}, 64,
     .f = (const double[]){0.558823526,0.814942062,1.35698247,1.89705884,2.39705873,2.93713522,
     3.47917557,3.7352941,1.58329761,1.83941603,2.38145661,2.92153287,3.42153287,3.96160913,
     4.50364971,4.75976801,3.75145936,4.0075779,4.54961824,5.0896945,5.5896945,6.12977076,
     6.67181158,6.92792988,5.91176462,6.1678834,6.70992374,7.25,7.75,8.29007626,8.83211708,
     9.0882349,7.91176462,8.16788292,8.70992374,9.25,9.75,10.2900763,10.8321171,11.0882349,
     10.0720701,10.3281889,10.8702288,11.410305,11.910305,12.4503813,12.9924221,13.2485409,
     12.2402315,12.4963503,13.0383911,13.5784674,14.0784674,14.6185436,15.1605835,15.4167023,
     13.2647057,13.5208244,14.0628653,14.6029415,15.1029415,15.6430178,16.1850586,16.4411774}}}},
    {"resize_upsample_scales_cubic_align_corners", "Resize", 13, 2,
     {{"coordinate_transformation_mode", FX_STRING, .s = "align_corners"}, {"mode", FX_STRING,
     .s = "cubic"}}, 3, {{1, 4, {1,1,4,4}, 16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,
     14,15,16}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,2,2}}}, 1, {{1, 4, {1,1,8,8}, 64,
     .f = (const double[]){1,1.34110785,1.80029154,2.32944608,2.67055392,3.19970846,3.65889215,4,
     2.36443138,2.70553946,3.16472292,3.69387746,4.03498554,4.56413984,5.02332354,5.36443138,
     4.20116615,4.542274,5.00145769,5.53061247,5.87172031,6.40087461,6.86005831,7.20116615,
     6.31778431,6.65889215,7.11807585,7.64723015,7.98833799,8.51749229,8.97667599,9.31778431,
     7.68221569,8.02332401,8.48250771,9.01166153,9.35276985,9.88192463,10.3411083,10.6822157,
     9.79883385,10.1399412,10.5991249,11.1282797,11.469388,11.9985418,12.4577255,12.7988338,
     11.6355686,11.976676,12.4358597,12.9650145,13.3061228,13.8352766,14.2944603,14.6355686,13,
     13.3411083,13.800292,14.3294458,14.6705542,15.199708,15.6588917,16}}}},
    {"resize_upsample_scales_cubic_asymmetric", "Resize", 13, 2, {{"coordinate_transformation_mode",
     FX_STRING, .s = "asymmetric"}, {"mode", FX_STRING, .s = "cubic"}}, 3, {{1, 4, {1,1,4,4}, 16,
     .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,2,2}}}, 1, {{1, 4, {1,1,8,8}, 64,
     .f = (const double[]){1,1.40625,2,2.5,3,3.59375,4,4.09375,2.625,3.03125,3.625,4.125,4.625,
     5.21875,5.625,5.71875,5,5.40625,6,6.5,7,7.59375,8,8.09375,7,7.40625,8,8.5,9,9.59375,10,
     10.09375,9,9.40625,10,10.5,11,11.59375,12,12.09375,11.375,11.78125,12.375,12.875,13.375,
     13.96875,14.375,14.46875,13,13.40625,14,14.5,15,15.59375,16,16.09375,13.375,13.78125,14.375,
     14.875,15.375,15.96875,16.375,16.46875}}}},
    {"resize_upsample_scales_linear", "Resize", 13, 1, {{"mode", FX_STRING, .s = "linear"}}, 3, {{1,
     4, {1,1,2,2}, 4, .f = (const double[]){1,2,3,4}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,2,2}}}, 1, {{1, 4, {1,1,4,4}, 16,
     .f = (const double[]){1,1.25,1.75,2,1.5,1.75,2.25,2.5,2.5,2.75,3.25,3.5,3,3.25,3.75,4}}}},
    {"resize_upsample_scales_linear_align_corners", "Resize", 13, 2,
     {{"coordinate_transformation_mode", FX_STRING, .s = "align_corners"}, {"mode", FX_STRING,
     .s = "linear"}}, 3, {{1, 4, {1,1,2,2}, 4, .f = (const double[]){1,2,3,4}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,2,2}}}, 1, {{1, 4, {1,1,4,4}, 16,
     .f = (const double[]){1,1.33333337,1.66666663,2,1.66666663,2,2.33333325,2.66666675,2.33333325,
     2.66666675,3,3.33333325,3,3.33333325,3.66666675,4}}}},
    {"resize_upsample_scales_nearest", "Resize", 13, 1, {{"mode", FX_STRING, .s = "nearest"}}, 3,
     {{1, 4, {1,1,2,2}, 4, .f = (const double[]){1,2,3,4}},
     {0},
     {1, 1, {4}, 4, .f = (const double[]){1,1,2,3}}}, 1, {{1, 4, {1,1,4,6}, 24,
     .f = (const double[]){1,1,1,2,2,2,1,1,1,2,2,2,3,3,3,4,4,4,3,3,3,4,4,4}}}},
    {"resize_upsample_sizes_cubic", "Resize", 13, 1, {{"mode", FX_STRING, .s = "cubic"}}, 4, {{1, 4,
     {1,1,4,4}, 16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}},
     {0},
     {0},
     {7, 1, {4}, 4, .i = (const int64_t[]){1,1,9,10}}}, 1, {{1, 4, {1,1,9,10}, 90,
     .f = (const double[]){0.455079228,0.640579224,0.971579194,1.42257917,1.9073292,2.22332931,
     2.7080791,3.15907931,3.49007916,3.67557931,1.39437962,1.57987964,1.91087961,2.36187959,
     2.84662962,3.1626296,3.64737964,4.09837961,4.42937946,4.61487961,2.95130682,3.13680696,
     3.46780682,3.91880703,4.40355682,4.71955681,5.20430708,5.65530682,5.98630714,6.17180681,
     5.20525074,5.39075089,5.72175074,6.17275047,6.65750074,6.97350073,7.45825052,7.90925074,
     8.24025059,8.42575073,6.88975,7.07525015,7.40625,7.85725021,8.34200001,8.65799999,9.14274979,
     9.59375,9.92475033,10.1102505,8.57424927,8.75974941,9.09074974,9.541749,10.0264997,10.3424997,
     10.8272495,11.2782497,11.6092491,11.7947493,10.8281927,11.0136929,11.3446932,11.7956934,
     12.2804432,12.5964432,13.081193,13.5321932,13.8631935,14.0486927,12.3851204,12.5706205,
     12.9016199,13.3526201,13.8373699,14.1533699,14.6381207,15.0891199,15.4201202,15.6056204,
     13.3244209,13.5099211,13.8409204,14.2919207,14.7766705,15.0926704,15.5774212,16.0284214,
     16.3594208,16.54492}}}},
    {"resize_upsample_sizes_nearest", "Resize", 13, 1, {{"mode", FX_STRING, .s = "nearest"}}, 4,
     {{1, 4, {1,1,2,2}, 4, .f = (const double[]){1,2,3,4}},
     {0},
     {0},
     {7, 1, {4}, 4, .i = (const int64_t[]){1,1,7,8}}}, 1, {{1, 4, {1,1,7,8}, 56,
     .f = (const double[]){1,1,1,1,2,2,2,2,1,1,1,1,2,2,2,2,1,1,1,1,2,2,2,2,1,1,1,1,2,2,2,2,3,3,3,3,
     4,4,4,4,3,3,3,3,4,4,4,4,3,3,3,3,4,4,4,4}}}},
    {"resize_upsample_sizes_nearest_ceil_half_pixel", "Resize", 13, 3,
     {{"coordinate_transformation_mode", FX_STRING, .s = "half_pixel"}, {"mode", FX_STRING,
     .s = "nearest"}, {"nearest_mode", FX_STRING, .s = "ceil"}}, 4, {{1, 4, {1,1,4,4}, 16,
     .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}},
     {0},
     {0},
     {7, 1, {4}, 4, .i = (const int64_t[]){1,1,8,8}}}, 1, {{1, 4, {1,1,8,8}, 64,
     .f = (const double[]){1,2,2,3,3,4,4,4,5,6,6,7,7,8,8,8,5,6,6,7,7,8,8,8,9,10,10,11,11,12,12,12,9,
     10,10,11,11,12,12,12,13,14,14,15,15,16,16,16,13,14,14,15,15,16,16,16,13,14,14,15,15,16,16,
     16}}}},
    {"resize_upsample_sizes_nearest_floor_align_corners", "Resize", 13, 3,
     {{"coordinate_transformation_mode", FX_STRING, .s = "align_corners"}, {"mode", FX_STRING,
     .s = "nearest"}, {"nearest_mode", FX_STRING, .s = "floor"}}, 4, {{1, 4, {1,1,4,4}, 16,
     .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}},
     {0},
     {0},
     {7, 1, {4}, 4, .i = (const int64_t[]){1,1,8,8}}}, 1, {{1, 4, {1,1,8,8}, 64,
     .f = (const double[]){1,1,1,2,2,3,3,4,1,1,1,2,2,3,3,4,1,1,1,2,2,3,3,4,5,5,5,6,6,7,7,8,5,5,5,6,
     6,7,7,8,9,9,9,10,10,11,11,12,9,9,9,10,10,11,11,12,13,13,13,14,14,15,15,16}}}},
    {"resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric", "Resize", 13, 3,
     {{"coordinate_transformation_mode", FX_STRING, .s = "asymmetric"}, {"mode", FX_STRING,
     .s = "nearest"}, {"nearest_mode", FX_STRING, .s = "round_prefer_ceil"}}, 4, {{1, 4, {1,1,4,4},
     16, .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}},
     {0},
     {0},
     {7, 1, {4}, 4, .i = (const int64_t[]){1,1,8,8}}}, 1, {{1, 4, {1,1,8,8}, 64,
     .f = (const double[]){1,2,2,3,3,4,4,4,5,6,6,7,7,8,8,8,5,6,6,7,7,8,8,8,9,10,10,11,11,12,12,12,9,
     10,10,11,11,12,12,12,13,14,14,15,15,16,16,16,13,14,14,15,15,16,16,16,13,14,14,15,15,16,16,
     16}}}},
    {"scatter_elements_with_axis", "ScatterElements", 16, 1, {{"axis", FX_INT, .i = 1}}, 3, {{1, 2,
     {1,5}, 5, .f = (const double[]){1,2,3,4,5}},
     {7, 2, {1,2}, 2, .i = (const int64_t[]){1,3}},
     {1, 2, {1,2}, 2, .f = (const double[]){1.10000002,2.0999999}}}, 1, {{1, 2, {1,5}, 5,
     .f = (const double[]){1,1.10000002,3,2.0999999,5}}}},
    {"scatter_elements_with_duplicate_indices", "ScatterElements", 16, 2, {{"axis", FX_INT, .i = 1},
     {"reduction", FX_STRING, .s = "add"}}, 3, {{1, 2, {1,5}, 5, .f = (const double[]){1,2,3,4,5}},
     {7, 2, {1,2}, 2, .i = (const int64_t[]){1,1}},
     {1, 2, {1,2}, 2, .f = (const double[]){1.10000002,2.0999999}}}, 1, {{1, 2, {1,5}, 5,
     .f = (const double[]){1,5.19999981,3,4,5}}}},
    {"scatter_elements_with_negative_indices", "ScatterElements", 16, 1, {{"axis", FX_INT, .i = 1}},
     3, {{1, 2, {1,5}, 5, .f = (const double[]){1,2,3,4,5}},
     {7, 2, {1,2}, 2, .i = (const int64_t[]){1,-3}},
     {1, 2, {1,2}, 2, .f = (const double[]){1.10000002,2.0999999}}}, 1, {{1, 2, {1,5}, 5,
     .f = (const double[]){1,1.10000002,2.0999999,4,5}}}},
    {"scatter_elements_without_axis", "ScatterElements", 16, 0, {}, 3, {{1, 2, {3,3}, 9,
     .f = (const double[]){0,0,0,0,0,0,0,0,0}},
     {7, 2, {2,3}, 6, .i = (const int64_t[]){1,0,2,0,2,1}},
     {1, 2, {2,3}, 6, .f = (const double[]){1,1.10000002,1.20000005,2,2.0999999,2.20000005}}}, 1,
     {{1, 2, {3,3}, 9, .f = (const double[]){2,1.10000002,0,1,0,2.20000005,0,2.0999999,
     1.20000005}}}},
    {"scatter_with_axis", "Scatter", 10, 1, {{"axis", FX_INT, .i = 1}}, 3, {{1, 2, {1,5}, 5,
     .f = (const double[]){1,2,3,4,5}},
     {7, 2, {1,2}, 2, .i = (const int64_t[]){1,3}},
     {1, 2, {1,2}, 2, .f = (const double[]){1.10000002,2.0999999}}}, 1, {{1, 2, {1,5}, 5,
     .f = (const double[]){1,1.10000002,3,2.0999999,5}}}},
    {"scatter_without_axis", "Scatter", 10, 0, {}, 3, {{1, 2, {3,3}, 9, .f = (const double[]){0,0,0,
     0,0,0,0,0,0}},
     {7, 2, {2,3}, 6, .i = (const int64_t[]){1,0,2,0,2,1}},
     {1, 2, {2,3}, 6, .f = (const double[]){1,1.10000002,1.20000005,2,2.0999999,2.20000005}}}, 1,
     {{1, 2, {3,3}, 9, .f = (const double[]){2,1.10000002,0,1,0,2.20000005,0,2.0999999,
     1.20000005}}}},
    {"shape", "Shape", 15, 0, {}, 1, {{1, 3, {3,4,5}, 60, .f = (const double[]){1.76405239,
     0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,0.950088441,-0.151357204,-0.103218853,
     0.410598516,0.144043565,1.45427346,0.761037707,0.121675014,0.443863243,0.333674341,1.49407911,
     -0.205158263,0.313067704,-0.854095757,-2.55298972,0.653618574,0.864436209,-0.742165029,
     2.26975465,-1.45436573,0.0457585156,-0.187183857,1.53277922,1.4693588,0.15494743,0.378162533,
     -0.887785733,-1.98079646,-0.347912163,0.156348974,1.23029065,1.20237982,-0.387326807,
     -0.302302748,-1.04855299,-1.42001796,-1.70627022,1.95077538,-0.509652197,-0.438074291,
     -1.25279534,0.777490377,-1.6138978,-0.212740287,-0.895466566,0.386902511,-0.51080513,
     -1.18063223,-0.028182229,0.428331882,0.0665172189,0.302471906,-0.634322107,-0.362741172}}}, 1,
     {{7, 1, {3}, 3, .i = (const int64_t[]){3,4,5}}}},
    {"shape_clip_end", "Shape", 15, 1, {{"end", FX_INT, .i = 10}}, 1, {{1, 3, {3,4,5}, 60,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,0.761037707,
     0.121675014,0.443863243,0.333674341,1.49407911,-0.205158263,0.313067704,-0.854095757,
     -2.55298972,0.653618574,0.864436209,-0.742165029,2.26975465,-1.45436573,0.0457585156,
     -0.187183857,1.53277922,1.4693588,0.15494743,0.378162533,-0.887785733,-1.98079646,-0.347912163,
     0.156348974,1.23029065,1.20237982,-0.387326807,-0.302302748,-1.04855299,-1.42001796,
     -1.70627022,1.95077538,-0.509652197,-0.438074291,-1.25279534,0.777490377,-1.6138978,
     -0.212740287,-0.895466566,0.386902511,-0.51080513,-1.18063223,-0.028182229,0.428331882,
     0.0665172189,0.302471906,-0.634322107,-0.362741172}}}, 1, {{7, 1, {3}, 3,
     .i = (const int64_t[]){3,4,5}}}},
    {"shape_clip_start", "Shape", 15, 1, {{"start", FX_INT, .i = -10}}, 1, {{1, 3, {3,4,5}, 60,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,0.761037707,
     0.121675014,0.443863243,0.333674341,1.49407911,-0.205158263,0.313067704,-0.854095757,
     -2.55298972,0.653618574,0.864436209,-0.742165029,2.26975465,-1.45436573,0.0457585156,
     -0.187183857,1.53277922,1.4693588,0.15494743,0.378162533,-0.887785733,-1.98079646,-0.347912163,
     0.156348974,1.23029065,1.20237982,-0.387326807,-0.302302748,-1.04855299,-1.42001796,
     -1.70627022,1.95077538,-0.509652197,-0.438074291,-1.25279534,0.777490377,-1.6138978,
     -0.212740287,-0.895466566,0.386902511,-0.51080513,-1.18063223,-0.028182229,0.428331882,
     0.0665172189,0.302471906,-0.634322107,-0.362741172}}}, 1, {{7, 1, {3}, 3,
     .i = (const int64_t[]){3,4,5}}}},
    {"shape_end_1", "Shape", 15, 1, {{"end", FX_INT, .i = 1}}, 1, {{1, 3, {3,4,5}, 60,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,0.761037707,
     0.121675014,0.443863243,0.333674341,1.49407911,-0.205158263,0.313067704,-0.854095757,
     -2.55298972,0.653618574,0.864436209,-0.742165029,2.26975465,-1.45436573,0.0457585156,
     -0.187183857,1.53277922,1.4693588,0.15494743,0.378162533,-0.887785733,-1.98079646,-0.347912163,
     0.156348974,1.23029065,1.20237982,-0.387326807,-0.302302748,-1.04855299,-1.42001796,
     -1.70627022,1.95077538,-0.509652197,-0.438074291,-1.25279534,0.777490377,-1.6138978,
     -0.212740287,-0.895466566,0.386902511,-0.51080513,-1.18063223,-0.028182229,0.428331882,
     0.0665172189,0.302471906,-0.634322107,-0.362741172}}}, 1, {{7, 1, {1}, 1,
     .i = (const int64_t[]){3}}}},
    {"shape_end_negative_1", "Shape", 15, 1, {{"end", FX_INT, .i = -1}}, 1, {{1, 3, {3,4,5}, 60,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,0.761037707,
     0.121675014,0.443863243,0.333674341,1.49407911,-0.205158263,0.313067704,-0.854095757,
     -2.55298972,0.653618574,0.864436209,-0.742165029,2.26975465,-1.45436573,0.0457585156,
     -0.187183857,1.53277922,1.4693588,0.15494743,0.378162533,-0.887785733,-1.98079646,-0.347912163,
     0.156348974,1.23029065,1.20237982,-0.387326807,-0.302302748,-1.04855299,-1.42001796,
     -1.70627022,1.95077538,-0.509652197,-0.438074291,-1.25279534,0.777490377,-1.6138978,
     -0.212740287,-0.895466566,0.386902511,-0.51080513,-1.18063223,-0.028182229,0.428331882,
     0.0665172189,0.302471906,-0.634322107,-0.362741172}}}, 1, {{7, 1, {2}, 2,
     .i = (const int64_t[]){3,4}}}},
    {"shape_example", "Shape", 15, 0, {}, 1, {{1, 2, {2,3}, 6, .f = (const double[]){1,2,3,4,5,6}}},
     1, {{7, 1, {2}, 2, .i = (const int64_t[]){2,3}}}},
    {"shape_start_1", "Shape", 15, 1, {{"start", FX_INT, .i = 1}}, 1, {{1, 3, {3,4,5}, 60,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,0.761037707,
     0.121675014,0.443863243,0.333674341,1.49407911,-0.205158263,0.313067704,-0.854095757,
     -2.55298972,0.653618574,0.864436209,-0.742165029,2.26975465,-1.45436573,0.0457585156,
     -0.187183857,1.53277922,1.4693588,0.15494743,0.378162533,-0.887785733,-1.98079646,-0.347912163,
     0.156348974,1.23029065,1.20237982,-0.387326807,-0.302302748,-1.04855299,-1.42001796,
     -1.70627022,1.95077538,-0.509652197,-0.438074291,-1.25279534,0.777490377,-1.6138978,
     -0.212740287,-0.895466566,0.386902511,-0.51080513,-1.18063223,-0.028182229,0.428331882,
     0.0665172189,0.302471906,-0.634322107,-0.362741172}}}, 1, {{7, 1, {2}, 2,
     .i = (const int64_t[]){4,5}}}},
    {"shape_start_1_end_2", "Shape", 15, 2, {{"end", FX_INT, .i = 2}, {"start", FX_INT, .i = 1}}, 1,
     {{1, 3, {3,4,5}, 60, .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,
     1.867558,-0.977277875,0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,
     0.761037707,0.121675014,0.443863243,0.333674341,1.49407911,-0.205158263,0.313067704,
     -0.854095757,-2.55298972,0.653618574,0.864436209,-0.742165029,2.26975465,-1.45436573,
     0.0457585156,-0.187183857,1.53277922,1.4693588,0.15494743,0.378162533,-0.887785733,-1.98079646,
     -0.347912163,0.156348974,1.23029065,1.20237982,-0.387326807,-0.302302748,-1.04855299,
     -1.42001796,-1.70627022,1.95077538,-0.509652197,-0.438074291,-1.25279534,0.777490377,
     -1.6138978,-0.212740287,-0.895466566,0.386902511,-0.51080513,-1.18063223,-0.028182229,
     0.428331882,0.0665172189,0.302471906,-0.634322107,-0.362741172}}}, 1, {{7, 1, {1}, 1,
     .i = (const int64_t[]){4}}}},
    {"shape_start_1_end_negative_1", "Shape", 15, 2, {{"end", FX_INT, .i = -1}, {"start", FX_INT,
     .i = 1}}, 1, {{1, 3, {3,4,5}, 60, .f = (const double[]){1.76405239,0.400157213,0.97873801,
     2.24089313,1.867558,-0.977277875,0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,
     1.45427346,0.761037707,0.121675014,0.443863243,0.333674341,1.49407911,-0.205158263,0.313067704,
     -0.854095757,-2.55298972,0.653618574,0.864436209,-0.742165029,2.26975465,-1.45436573,
     0.0457585156,-0.187183857,1.53277922,1.4693588,0.15494743,0.378162533,-0.887785733,-1.98079646,
     -0.347912163,0.156348974,1.23029065,1.20237982,-0.387326807,-0.302302748,-1.04855299,
     -1.42001796,-1.70627022,1.95077538,-0.509652197,-0.438074291,-1.25279534,0.777490377,
     -1.6138978,-0.212740287,-0.895466566,0.386902511,-0.51080513,-1.18063223,-0.028182229,
     0.428331882,0.0665172189,0.302471906,-0.634322107,-0.362741172}}}, 1, {{7, 1, {1}, 1,
     .i = (const int64_t[]){4}}}},
    {"shape_start_negative_1", "Shape", 15, 1, {{"start", FX_INT, .i = -1}}, 1, {{1, 3, {3,4,5}, 60,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,0.761037707,
     0.121675014,0.443863243,0.333674341,1.49407911,-0.205158263,0.313067704,-0.854095757,
     -2.55298972,0.653618574,0.864436209,-0.742165029,2.26975465,-1.45436573,0.0457585156,
     -0.187183857,1.53277922,1.4693588,0.15494743,0.378162533,-0.887785733,-1.98079646,-0.347912163,
     0.156348974,1.23029065,1.20237982,-0.387326807,-0.302302748,-1.04855299,-1.42001796,
     -1.70627022,1.95077538,-0.509652197,-0.438074291,-1.25279534,0.777490377,-1.6138978,
     -0.212740287,-0.895466566,0.386902511,-0.51080513,-1.18063223,-0.028182229,0.428331882,
     0.0665172189,0.302471906,-0.634322107,-0.362741172}}}, 1, {{7, 1, {1}, 1,
     .i = (const int64_t[]){5}}}},
    {"size", "Size", 13, 0, {}, 1, {{1, 3, {3,4,5}, 60, .f = (const double[]){1.76405239,
     0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,0.950088441,-0.151357204,-0.103218853,
     0.410598516,0.144043565,1.45427346,0.761037707,0.121675014,0.443863243,0.333674341,1.49407911,
     -0.205158263,0.313067704,-0.854095757,-2.55298972,0.653618574,0.864436209,-0.742165029,
     2.26975465,-1.45436573,0.0457585156,-0.187183857,1.53277922,1.4693588,0.15494743,0.378162533,
     -0.887785733,-1.98079646,-0.347912163,0.156348974,1.23029065,1.20237982,-0.387326807,
     -0.302302748,-1.04855299,-1.42001796,-1.70627022,1.95077538,-0.509652197,-0.438074291,
     -1.25279534,0.777490377,-1.6138978,-0.212740287,-0.895466566,0.386902511,-0.51080513,
     -1.18063223,-0.028182229,0.428331882,0.0665172189,0.302471906,-0.634322107,-0.362741172}}}, 1,
     {{7, 0, {0}, 1, .i = (const int64_t[]){60}}}},
    {"size_example", "Size", 13, 0, {}, 1, {{1, 2, {2,3}, 6, .f = (const double[]){1,2,3,4,5,6}}},
     1, {{7, 0, {0}, 1, .i = (const int64_t[]){6}}}},
    {"spacetodepth_example", "SpaceToDepth", 13, 1, {{"blocksize", FX_INT, .i = 2}}, 1, {{1, 4, {1,
     1,4,6}, 24, .f = (const double[]){0,6,1,7,2,8,12,18,13,19,14,20,3,9,4,10,5,11,15,21,16,22,17,
     23}}}, 1, {{1, 4, {1,4,2,3}, 24, .f = (const double[]){0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,
     16,17,18,19,20,21,22,23}}}},
    {"split_equal_parts_1d", "Split", 13, 1, {{"axis", FX_INT, .i = 0}}, 1, {{1, 1, {6}, 6,
     .f = (const double[]){1,2,3,4,5,6}}}, 3, {{1, 1, {2}, 2, .f = (const double[]){1,2}},
     {1, 1, {2}, 2, .f = (const double[]){3,4}},
     {1, 1, {2}, 2, .f = (const double[]){5,6}}}},
    {"split_equal_parts_2d", "Split", 13, 1, {{"axis", FX_INT, .i = 1}}, 1, {{1, 2, {2,6}, 12,
     .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12}}}, 2, {{1, 2, {2,3}, 6,
     .f = (const double[]){1,2,3,7,8,9}},
     {1, 2, {2,3}, 6, .f = (const double[]){4,5,6,10,11,12}}}},
    {"split_equal_parts_default_axis", "Split", 13, 0, {}, 1, {{1, 1, {6}, 6,
     .f = (const double[]){1,2,3,4,5,6}}}, 3, {{1, 1, {2}, 2, .f = (const double[]){1,2}},
     {1, 1, {2}, 2, .f = (const double[]){3,4}},
     {1, 1, {2}, 2, .f = (const double[]){5,6}}}},
    {"split_variable_parts_1d", "Split", 13, 1, {{"axis", FX_INT, .i = 0}}, 2, {{1, 1, {6}, 6,
     .f = (const double[]){1,2,3,4,5,6}},
     {7, 1, {2}, 2, .i = (const int64_t[]){2,4}}}, 2, {{1, 1, {2}, 2, .f = (const double[]){1,2}},
     {1, 1, {4}, 4, .f = (const double[]){3,4,5,6}}}},
    {"split_variable_parts_2d", "Split", 13, 1, {{"axis", FX_INT, .i = 1}}, 2, {{1, 2, {2,6}, 12,
     .f = (const double[]){1,2,3,4,5,6,7,8,9,10,11,12}},
     {7, 1, {2}, 2, .i = (const int64_t[]){2,4}}}, 2, {{1, 2, {2,2}, 4, .f = (const double[]){1,2,7,
     8}},
     {1, 2, {2,4}, 8, .f = (const double[]){3,4,5,6,9,10,11,12}}}},
    {"split_variable_parts_default_axis", "Split", 13, 0, {}, 2, {{1, 1, {6}, 6,
     .f = (const double[]){1,2,3,4,5,6}},
     {7, 1, {2}, 2, .i = (const int64_t[]){2,4}}}, 2, {{1, 1, {2}, 2, .f = (const double[]){1,2}},
     {1, 1, {4}, 4, .f = (const double[]){3,4,5,6}}}},
    {"split_zero_size_splits", "Split", 13, 0, {}, 2, {{1, 1, {0}, 0, .f = (const double[]){0}},
     {7, 1, {3}, 3, .i = (const int64_t[]){0,0,0}}}, 3, {{1, 1, {0}, 0, .f = (const double[]){0}},
     {1, 1, {0}, 0, .f = (const double[]){0}},
     {1, 1, {0}, 0, .f = (const double[]){0}}}},
    {"squeeze_negative_axes", "Squeeze", 13, 0, {}, 2, {{1, 4, {1,3,1,5}, 15,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,0.761037707,
     0.121675014,0.443863243}},
     {7, 1, {1}, 1, .i = (const int64_t[]){-2}}}, 1, {{1, 3, {1,3,5}, 15,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,0.761037707,
     0.121675014,0.443863243}}}},
    {"tile_precomputed", "Tile", 13, 0, {}, 2, {{1, 2, {2,2}, 4, .f = (const double[]){0,1,2,3}},
     {7, 1, {2}, 2, .i = (const int64_t[]){2,2}}}, 1, {{1, 2, {4,4}, 16, .f = (const double[]){0,1,
     0,1,2,3,2,3,0,1,0,1,2,3,2,3}}}},
    {"top_k", "TopK", 11, 1, {{"axis", FX_INT, .i = 1}}, 2, {{1, 2, {3,4}, 12,
     .f = (const double[]){0,1,2,3,4,5,6,7,8,9,10,11}},
     {7, 1, {1}, 1, .i = (const int64_t[]){3}}}, 2, {{1, 2, {3,3}, 9, .f = (const double[]){3,2,1,7,
     6,5,11,10,9}},
     {7, 2, {3,3}, 9, .i = (const int64_t[]){3,2,1,3,2,1,3,2,1}}}},
    {"top_k_negative_axis", "TopK", 11, 1, {{"axis", FX_INT, .i = -1}}, 2, {{1, 2, {3,4}, 12,
     .f = (const double[]){0,1,2,3,4,5,6,7,8,9,10,11}},
     {7, 1, {1}, 1, .i = (const int64_t[]){3}}}, 2, {{1, 2, {3,3}, 9, .f = (const double[]){3,2,1,7,
     6,5,11,10,9}},
     {7, 2, {3,3}, 9, .i = (const int64_t[]){3,2,1,3,2,1,3,2,1}}}},
    {"top_k_smallest", "TopK", 11, 3, {{"axis", FX_INT, .i = 1}, {"largest", FX_INT, .i = 0},
     {"sorted", FX_INT, .i = 1}}, 2, {{1, 2, {3,4}, 12, .f = (const double[]){0,1,2,3,4,5,6,7,11,10,
     9,8}},
     {7, 1, {1}, 1, .i = (const int64_t[]){3}}}, 2, {{1, 2, {3,3}, 9, .f = (const double[]){0,1,2,4,
     5,6,8,9,10}},
     {7, 2, {3,3}, 9, .i = (const int64_t[]){0,1,2,0,1,2,3,2,1}}}},
    {"transpose_all_permutations_0", "Transpose", 13, 1, {{"perm", FX_INTS, .n = 3,
     .ints = (const int64_t[]){0,1,2}}}, 1, {{1, 3, {2,3,4}, 24, .f = (const double[]){0.548813522,
     0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,0.437587202,0.891772985,0.963662744,
     0.383441508,0.791725039,0.528894901,0.568044543,0.925596654,0.0710360557,0.0871293023,
     0.0202183966,0.832619846,0.778156757,0.870012164,0.978618324,0.799158573,0.461479366,
     0.780529201}}}, 1, {{1, 3, {2,3,4}, 24, .f = (const double[]){0.548813522,0.715189338,
     0.602763355,0.544883192,0.423654795,0.64589411,0.437587202,0.891772985,0.963662744,0.383441508,
     0.791725039,0.528894901,0.568044543,0.925596654,0.0710360557,0.0871293023,0.0202183966,
     0.832619846,0.778156757,0.870012164,0.978618324,0.799158573,0.461479366,0.780529201}}}},
    {"transpose_all_permutations_1", "Transpose", 13, 1, {{"perm", FX_INTS, .n = 3,
     .ints = (const int64_t[]){0,2,1}}}, 1, {{1, 3, {2,3,4}, 24, .f = (const double[]){0.548813522,
     0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,0.437587202,0.891772985,0.963662744,
     0.383441508,0.791725039,0.528894901,0.568044543,0.925596654,0.0710360557,0.0871293023,
     0.0202183966,0.832619846,0.778156757,0.870012164,0.978618324,0.799158573,0.461479366,
     0.780529201}}}, 1, {{1, 3, {2,4,3}, 24, .f = (const double[]){0.548813522,0.423654795,
     0.963662744,0.715189338,0.64589411,0.383441508,0.602763355,0.437587202,0.791725039,0.544883192,
     0.891772985,0.528894901,0.568044543,0.0202183966,0.978618324,0.925596654,0.832619846,
     0.799158573,0.0710360557,0.778156757,0.461479366,0.0871293023,0.870012164,0.780529201}}}},
    {"transpose_all_permutations_2", "Transpose", 13, 1, {{"perm", FX_INTS, .n = 3,
     .ints = (const int64_t[]){1,0,2}}}, 1, {{1, 3, {2,3,4}, 24, .f = (const double[]){0.548813522,
     0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,0.437587202,0.891772985,0.963662744,
     0.383441508,0.791725039,0.528894901,0.568044543,0.925596654,0.0710360557,0.0871293023,
     0.0202183966,0.832619846,0.778156757,0.870012164,0.978618324,0.799158573,0.461479366,
     0.780529201}}}, 1, {{1, 3, {3,2,4}, 24, .f = (const double[]){0.548813522,0.715189338,
     0.602763355,0.544883192,0.568044543,0.925596654,0.0710360557,0.0871293023,0.423654795,
     0.64589411,0.437587202,0.891772985,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.963662744,0.383441508,0.791725039,0.528894901,0.978618324,0.799158573,0.461479366,
     0.780529201}}}},
    {"transpose_all_permutations_3", "Transpose", 13, 1, {{"perm", FX_INTS, .n = 3,
     .ints = (const int64_t[]){1,2,0}}}, 1, {{1, 3, {2,3,4}, 24, .f = (const double[]){0.548813522,
     0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,0.437587202,0.891772985,0.963662744,
     0.383441508,0.791725039,0.528894901,0.568044543,0.925596654,0.0710360557,0.0871293023,
     0.0202183966,0.832619846,0.778156757,0.870012164,0.978618324,0.799158573,0.461479366,
     0.780529201}}}, 1, {{1, 3, {3,4,2}, 24, .f = (const double[]){0.548813522,0.568044543,
     0.715189338,0.925596654,0.602763355,0.0710360557,0.544883192,0.0871293023,0.423654795,
     0.0202183966,0.64589411,0.832619846,0.437587202,0.778156757,0.891772985,0.870012164,
     0.963662744,0.978618324,0.383441508,0.799158573,0.791725039,0.461479366,0.528894901,
     0.780529201}}}},
    {"transpose_all_permutations_4", "Transpose", 13, 1, {{"perm", FX_INTS, .n = 3,
     .ints = (const int64_t[]){2,0,1}}}, 1, {{1, 3, {2,3,4}, 24, .f = (const double[]){0.548813522,
     0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,0.437587202,0.891772985,0.963662744,
     0.383441508,0.791725039,0.528894901,0.568044543,0.925596654,0.0710360557,0.0871293023,
     0.0202183966,0.832619846,0.778156757,0.870012164,0.978618324,0.799158573,0.461479366,
     0.780529201}}}, 1, {{1, 3, {4,2,3}, 24, .f = (const double[]){0.548813522,0.423654795,
     0.963662744,0.568044543,0.0202183966,0.978618324,0.715189338,0.64589411,0.383441508,
     0.925596654,0.832619846,0.799158573,0.602763355,0.437587202,0.791725039,0.0710360557,
     0.778156757,0.461479366,0.544883192,0.891772985,0.528894901,0.0871293023,0.870012164,
     0.780529201}}}},
    {"transpose_all_permutations_5", "Transpose", 13, 1, {{"perm", FX_INTS, .n = 3,
     .ints = (const int64_t[]){2,1,0}}}, 1, {{1, 3, {2,3,4}, 24, .f = (const double[]){0.548813522,
     0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,0.437587202,0.891772985,0.963662744,
     0.383441508,0.791725039,0.528894901,0.568044543,0.925596654,0.0710360557,0.0871293023,
     0.0202183966,0.832619846,0.778156757,0.870012164,0.978618324,0.799158573,0.461479366,
     0.780529201}}}, 1, {{1, 3, {4,3,2}, 24, .f = (const double[]){0.548813522,0.568044543,
     0.423654795,0.0202183966,0.963662744,0.978618324,0.715189338,0.925596654,0.64589411,
     0.832619846,0.383441508,0.799158573,0.602763355,0.0710360557,0.437587202,0.778156757,
     0.791725039,0.461479366,0.544883192,0.0871293023,0.891772985,0.870012164,0.528894901,
     0.780529201}}}},
    {"transpose_default", "Transpose", 13, 0, {}, 1, {{1, 3, {2,3,4}, 24,
     .f = (const double[]){0.548813522,0.715189338,0.602763355,0.544883192,0.423654795,0.64589411,
     0.437587202,0.891772985,0.963662744,0.383441508,0.791725039,0.528894901,0.568044543,
     0.925596654,0.0710360557,0.0871293023,0.0202183966,0.832619846,0.778156757,0.870012164,
     0.978618324,0.799158573,0.461479366,0.780529201}}}, 1, {{1, 3, {4,3,2}, 24,
     .f = (const double[]){0.548813522,0.568044543,0.423654795,0.0202183966,0.963662744,0.978618324,
     0.715189338,0.925596654,0.64589411,0.832619846,0.383441508,0.799158573,0.602763355,
     0.0710360557,0.437587202,0.778156757,0.791725039,0.461479366,0.544883192,0.0871293023,
     0.891772985,0.870012164,0.528894901,0.780529201}}}},
    {"tril", "Trilu", 14, 1, {{"upper", FX_INT, .i = 0}}, 1, {{7, 2, {4,5}, 20,
     .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,4,7,6,8,8,1,6,7,7,8,1}}}, 1, {{7, 2, {4,5}, 20,
     .i = (const int64_t[]){5,0,0,0,0,9,3,0,0,0,7,6,8,0,0,6,7,7,8,0}}}},
    {"tril_neg", "Trilu", 14, 1, {{"upper", FX_INT, .i = 0}}, 2, {{7, 2, {4,5}, 20,
     .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,4,7,6,8,8,1,6,7,7,8,1}},
     {7, 0, {0}, 1, .i = (const int64_t[]){-1}}}, 1, {{7, 2, {4,5}, 20, .i = (const int64_t[]){0,0,
     0,0,0,9,0,0,0,0,7,6,0,0,0,6,7,7,0,0}}}},
    {"tril_one_row_neg", "Trilu", 14, 1, {{"upper", FX_INT, .i = 0}}, 1, {{7, 3, {3,1,5}, 15,
     .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,4,7,6,8,8,1}}}, 1, {{7, 3, {3,1,5}, 15,
     .i = (const int64_t[]){5,0,0,0,0,9,0,0,0,0,7,0,0,0,0}}}},
    {"tril_out_neg", "Trilu", 14, 1, {{"upper", FX_INT, .i = 0}}, 2, {{7, 2, {4,5}, 20,
     .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,4,7,6,8,8,1,6,7,7,8,1}},
     {7, 0, {0}, 1, .i = (const int64_t[]){-7}}}, 1, {{7, 2, {4,5}, 20, .i = (const int64_t[]){0,0,
     0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}}}},
    {"tril_out_pos", "Trilu", 14, 1, {{"upper", FX_INT, .i = 0}}, 2, {{7, 2, {4,5}, 20,
     .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,4,7,6,8,8,1,6,7,7,8,1}},
     {7, 0, {0}, 1, .i = (const int64_t[]){6}}}, 1, {{7, 2, {4,5}, 20, .i = (const int64_t[]){5,0,3,
     3,7,9,3,5,2,4,7,6,8,8,1,6,7,7,8,1}}}},
    {"tril_pos", "Trilu", 14, 1, {{"upper", FX_INT, .i = 0}}, 2, {{7, 2, {4,5}, 20,
     .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,4,7,6,8,8,1,6,7,7,8,1}},
     {7, 0, {0}, 1, .i = (const int64_t[]){2}}}, 1, {{7, 2, {4,5}, 20, .i = (const int64_t[]){5,0,3,
     0,0,9,3,5,2,0,7,6,8,8,1,6,7,7,8,1}}}},
    {"tril_square", "Trilu", 14, 1, {{"upper", FX_INT, .i = 0}}, 1, {{7, 3, {2,3,3}, 18,
     .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,4,7,6,8,8,1,6,7,7}}}, 1, {{7, 3, {2,3,3}, 18,
     .i = (const int64_t[]){5,0,0,3,7,0,3,5,2,4,0,0,8,8,0,6,7,7}}}},
    {"tril_square_neg", "Trilu", 14, 1, {{"upper", FX_INT, .i = 0}}, 2, {{7, 3, {2,3,3}, 18,
     .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,4,7,6,8,8,1,6,7,7}},
     {7, 0, {0}, 1, .i = (const int64_t[]){-1}}}, 1, {{7, 3, {2,3,3}, 18, .i = (const int64_t[]){0,
     0,0,3,0,0,3,5,0,0,0,0,8,0,0,6,7,0}}}},
    {"tril_zero", "Trilu", 14, 1, {{"upper", FX_INT, .i = 0}}, 2, {{7, 3, {3,0,5}, 0,
     .i = (const int64_t[]){0}},
     {7, 0, {0}, 1, .i = (const int64_t[]){6}}}, 1, {{7, 3, {3,0,5}, 0,
     .i = (const int64_t[]){0}}}},
    {"triu", "Trilu", 14, 0, {}, 1, {{7, 2, {4,5}, 20, .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,4,7,
     6,8,8,1,6,7,7,8,1}}}, 1, {{7, 2, {4,5}, 20, .i = (const int64_t[]){5,0,3,3,7,0,3,5,2,4,0,0,8,8,
     1,0,0,0,8,1}}}},
    {"triu_neg", "Trilu", 14, 0, {}, 2, {{7, 2, {4,5}, 20, .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,
     4,7,6,8,8,1,6,7,7,8,1}},
     {7, 0, {0}, 1, .i = (const int64_t[]){-1}}}, 1, {{7, 2, {4,5}, 20, .i = (const int64_t[]){5,0,
     3,3,7,9,3,5,2,4,0,6,8,8,1,0,0,7,8,1}}}},
    {"triu_one_row", "Trilu", 14, 0, {}, 2, {{7, 3, {3,1,5}, 15, .i = (const int64_t[]){5,0,3,3,7,9,
     3,5,2,4,7,6,8,8,1}},
     {7, 0, {0}, 1, .i = (const int64_t[]){1}}}, 1, {{7, 3, {3,1,5}, 15, .i = (const int64_t[]){0,0,
     3,3,7,0,3,5,2,4,0,6,8,8,1}}}},
    {"triu_out_neg_out", "Trilu", 14, 0, {}, 2, {{7, 2, {4,5}, 20, .i = (const int64_t[]){5,0,3,3,7,
     9,3,5,2,4,7,6,8,8,1,6,7,7,8,1}},
     {7, 0, {0}, 1, .i = (const int64_t[]){-7}}}, 1, {{7, 2, {4,5}, 20, .i = (const int64_t[]){5,0,
     3,3,7,9,3,5,2,4,7,6,8,8,1,6,7,7,8,1}}}},
    {"triu_out_pos", "Trilu", 14, 0, {}, 2, {{7, 2, {4,5}, 20, .i = (const int64_t[]){5,0,3,3,7,9,3,
     5,2,4,7,6,8,8,1,6,7,7,8,1}},
     {7, 0, {0}, 1, .i = (const int64_t[]){6}}}, 1, {{7, 2, {4,5}, 20, .i = (const int64_t[]){0,0,0,
     0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}}}},
    {"triu_pos", "Trilu", 14, 0, {}, 2, {{7, 2, {4,5}, 20, .i = (const int64_t[]){5,0,3,3,7,9,3,5,2,
     4,7,6,8,8,1,6,7,7,8,1}},
     {7, 0, {0}, 1, .i = (const int64_t[]){2}}}, 1, {{7, 2, {4,5}, 20, .i = (const int64_t[]){0,0,3,
     3,7,0,0,0,2,4,0,0,0,0,1,0,0,0,0,0}}}},
    {"triu_square", "Trilu", 14, 0, {}, 1, {{7, 3, {2,3,3}, 18, .i = (const int64_t[]){5,0,3,3,7,9,
     3,5,2,4,7,6,8,8,1,6,7,7}}}, 1, {{7, 3, {2,3,3}, 18, .i = (const int64_t[]){5,0,3,0,7,9,0,0,2,4,
     7,6,0,8,1,0,0,7}}}},
    {"triu_square_neg", "Trilu", 14, 0, {}, 2, {{7, 3, {2,3,3}, 18, .i = (const int64_t[]){5,0,3,3,
     7,9,3,5,2,4,7,6,8,8,1,6,7,7}},
     {7, 0, {0}, 1, .i = (const int64_t[]){-1}}}, 1, {{7, 3, {2,3,3}, 18, .i = (const int64_t[]){5,
     0,3,3,7,9,0,5,2,4,7,6,8,8,1,0,7,7}}}},
    {"triu_zero", "Trilu", 14, 0, {}, 2, {{7, 2, {0,5}, 0, .i = (const int64_t[]){0}},
     {7, 0, {0}, 1, .i = (const int64_t[]){6}}}, 1, {{7, 2, {0,5}, 0, .i = (const int64_t[]){0}}}},
    {"unsqueeze_negative_axes", "Unsqueeze", 13, 0, {}, 2, {{1, 4, {1,3,1,5}, 15,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,0.761037707,
     0.121675014,0.443863243}},
     {7, 1, {1}, 1, .i = (const int64_t[]){-2}}}, 1, {{1, 5, {1,3,1,1,5}, 15,
     .f = (const double[]){1.76405239,0.400157213,0.97873801,2.24089313,1.867558,-0.977277875,
     0.950088441,-0.151357204,-0.103218853,0.410598516,0.144043565,1.45427346,0.761037707,
     0.121675014,0.443863243}}}},
    {"upsample_nearest", "Upsample", 9, 1, {{"mode", FX_STRING, .s = "nearest"}}, 2, {{1, 4, {1,1,2,
     2}, 4, .f = (const double[]){1,2,3,4}},
     {1, 1, {4}, 4, .f = (const double[]){1,1,2,3}}}, 1, {{1, 4, {1,1,4,6}, 24,
     .f = (const double[]){1,1,1,2,2,2,1,1,1,2,2,2,3,3,3,4,4,4,3,3,3,4,4,4}}}},
};

static const fx_case *fixture_table(size_t *count) {
  *count = sizeof fixtures / sizeof fixtures[0];
  return fixtures;
}
