/* Unit suite of the neural-network kernels (devices/cpu/gemm.c, gemm_avx2.c, conv.c, pool.c,
 * norm.c). Kernels run through cpu_direct and are compared with naive float64 references
 * written here, independently of the kernels: random shapes and values from a fixed seed, a few
 * fixed cases taken from the ONNX backend tests, and error cases that must fail with a message.
 * Random cases alternate the AVX2 and generic code paths (TESSERA_CPU_GENERIC) and the thread
 * count. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/gemm_util.h"
#include "devices/cpu/threadpool.h"
#include "tests/cpu_direct.h"
#include "tests/harness.h"
#include "tests/model_builder.h"

/* ---- Random numbers, buffers, comparisons ---------------------------------------------- */

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

/* Uniform in [-1, 1). */
static double runi(rng *r) { return (double)(rnext(r) >> 11) / 4503599627370496.0 - 1.0; }

static size_t prod(const int64_t *d, int n) {
  size_t p = 1;
  for (int i = 0; i < n; i++)
    p *= (size_t)d[i];
  return p;
}

/* Random values representable in dtype: floats in [-1, 1) (rounded through the dtype), integers
 * small enough that products and sums stay exact. */
static double *rand_vals(rng *r, uint32_t dt, size_t n) {
  double *v = malloc((n ? n : 1) * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    switch (dt) {
    case TSR_DTYPE_FLOAT32: v[i] = (float)runi(r); break;
    case TSR_DTYPE_FLOAT16: v[i] = cpu_half_to_float(cpu_float_to_half((float)runi(r))); break;
    case TSR_DTYPE_FLOAT64: v[i] = runi(r); break;
    case TSR_DTYPE_UINT8: v[i] = (double)rint_in(r, 0, 255); break;
    case TSR_DTYPE_INT8: v[i] = (double)rint_in(r, -128, 127); break;
    case TSR_DTYPE_UINT32:
    case TSR_DTYPE_UINT64: v[i] = (double)rint_in(r, 0, 100); break;
    default: v[i] = (double)rint_in(r, -100, 100); break;
    }
  }
  return v;
}

/* The values as raw elements of dtype (malloc'ed). */
static void *to_raw(uint32_t dt, const double *v, size_t n) {
  size_t es = cpu_dtype_size(dt);
  void *raw = calloc(n ? n : 1, es);
  cpu_tensor t = {.dtype = dt, .data = raw, .count = n};
  for (size_t i = 0; i < n; i++)
    cpu_write_f64(&t, i, v[i]);
  return raw;
}

static void add_input_c(cpu_direct *d, uint32_t dt, int rank, const int64_t *dims, const double *v,
                        bool is_const) {
  void *raw = to_raw(dt, v, prod(dims, rank));
  cpu_direct_input(d, dt, (uint32_t)rank, dims, raw, is_const);
  free(raw);
}

static void add_input(cpu_direct *d, uint32_t dt, int rank, const int64_t *dims, const double *v) {
  add_input_c(d, dt, rank, dims, v, false);
}

/* Compares out with ref: |got - ref| <= atol + rtol * |ref| (+ mtol * mag[i] when mag given,
 * the sum of absolute terms behind ref[i], which bounds rounding in long sums). */
static void expect_close(const char *what, const cpu_tensor *out, const double *ref,
                         const double *mag, size_t n, double atol, double rtol, double mtol) {
  ck_assert_msg(out->count == n, "%s: %zu outputs, expected %zu", what, out->count, n);
  for (size_t i = 0; i < n; i++) {
    double got = cpu_read_f64(out, i);
    double tol = atol + rtol * fabs(ref[i]) + (mag ? mtol * mag[i] : 0.0);
    if (!(fabs(got - ref[i]) <= tol) && !(isnan(got) && isnan(ref[i])))
      ck_abort_msg("%s: element %zu is %.9g, expected %.9g (tol %.3g)", what, i, got, ref[i], tol);
  }
}

/* Tolerances per dtype for float results of sums of products. */
static void tol_for(uint32_t dt, double *atol, double *rtol, double *mtol) {
  switch (dt) {
  case TSR_DTYPE_FLOAT64: *atol = 1e-12, *rtol = 1e-12, *mtol = 1e-12; break;
  case TSR_DTYPE_FLOAT16: *atol = 1e-4, *rtol = 1.5e-3, *mtol = 2e-5; break;
  case TSR_DTYPE_FLOAT32: *atol = 1e-6, *rtol = 1e-5, *mtol = 4e-6; break;
  default: *atol = 0, *rtol = 0, *mtol = 0; break; /* integers: exact */
  }
}

/* Alternates the generic and the AVX2 paths and the thread count by iteration. */
static size_t vary_env(int it) {
  setenv("TESSERA_CPU_GENERIC", (it & 1) ? "1" : "0", 1);
  static const size_t threads[] = {1, 3, 2};
  return threads[(it / 2) % 3];
}

static int run(cpu_direct *d, size_t threads, char *err, size_t size) {
  int rc = cpu_direct_run(d, threads, err, size);
  return rc;
}

#define RUN_OK(d, threads)                                                                         \
  do {                                                                                             \
    char err_[512];                                                                                \
    int rc_ = run((d), (threads), err_, sizeof err_);                                              \
    ck_assert_msg(rc_ == 0, "run failed (%d): %s", rc_, err_);                                     \
  } while (0)

/* Runs d and expects a refusal or failure whose message mentions needle. */
static void expect_fail(cpu_direct *d, const char *needle) {
  char err[512];
  int rc = run(d, 1, err, sizeof err);
  ck_assert_msg(rc != 0, "expected a failure mentioning '%s'", needle);
  ck_assert_msg(strlen(err) > 0, "failure without a message");
  ck_assert_msg(strstr(err, needle) != NULL, "message '%s' does not mention '%s'", err, needle);
}

/* Calls an op's run() directly, without check(), as a host with a wrong shape would; the
 * kernel must validate and fail with a message. Attributes take their defaults. */
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
  ck_assert_msg(rc == -1, "%s run() accepted bad input", op_type);
  ck_assert_msg(strstr(err, needle) != NULL, "message '%s' does not mention '%s'", err, needle);
}

static cpu_tensor mk_tensor(uint32_t dt, uint32_t rank, const int64_t *dims, void *data) {
  cpu_tensor t = {.dtype = dt, .rank = rank, .dims = dims, .data = data, .present = true};
  t.count = prod(dims, (int)rank);
  t.nbytes = t.count * cpu_dtype_size(dt);
  return t;
}

/* ---- Fused activations: the epilogue's reference ------------------------------------------ */

typedef struct test_act {
  const char *name; /* tessera.activation; NULL for none */
  cpu_act_kind kind;
  size_t n_params;
  float p[2];
} test_act;

static const test_act test_acts[] = {
    {NULL, CPU_ACT_NONE, 0, {0}},
    {"relu", CPU_ACT_RELU, 0, {0}},
    {"clip", CPU_ACT_CLIP, 2, {-0.3f, 0.45f}},
    {"leakyrelu", CPU_ACT_LEAKYRELU, 1, {0.1f}},
    {"hardsigmoid", CPU_ACT_HARDSIGMOID, 2, {0.6f, 0.4f}},
    {"hardswish", CPU_ACT_HARDSWISH, 0, {0}},
    {"sigmoid", CPU_ACT_SIGMOID, 0, {0}},
    {"silu", CPU_ACT_SILU, 0, {0}},
    {"gelu", CPU_ACT_GELU, 0, {0}},
    {"gelu_tanh", CPU_ACT_GELU_TANH, 0, {0}},
};
enum { N_TEST_ACTS = sizeof test_acts / sizeof test_acts[0] };

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* The activation in double, from the ONNX definitions. */
static double ref_act(const test_act *a, double v) {
  switch (a->kind) {
  case CPU_ACT_RELU: return v < 0 ? 0 : v;
  case CPU_ACT_CLIP: return v < a->p[0] ? a->p[0] : v > a->p[1] ? a->p[1] : v;
  case CPU_ACT_LEAKYRELU: return v < 0 ? a->p[0] * v : v;
  case CPU_ACT_HARDSIGMOID: return clamp01(a->p[0] * v + a->p[1]);
  case CPU_ACT_HARDSWISH: return v * clamp01(v / 6 + 0.5);
  case CPU_ACT_SIGMOID: return 1 / (1 + exp(-v));
  case CPU_ACT_SILU: return v / (1 + exp(-v));
  case CPU_ACT_GELU: return 0.5 * v * (1 + erf(v / sqrt(2.0)));
  case CPU_ACT_GELU_TANH:
    return 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
  default: return v;
  }
}

static cpu_act act_of(const test_act *a) {
  cpu_act c = {a->kind, a->p[0], a->p[1]};
  return c;
}

static void set_act_attrs(cpu_direct *d, const test_act *a) {
  if (!a || !a->name)
    return;
  cpu_direct_attr_string(d, "tessera.activation", a->name);
  if (a->n_params)
    cpu_direct_attr_floats(d, "tessera.activation_params", a->n_params, a->p);
}

/* ---- cpu_sgemm directly ------------------------------------------------------------------ */

static void ref_gemm(bool ta, bool tb, size_t m, size_t n, size_t k, double alpha, const float *a,
                     size_t lda, const float *b, size_t ldb, double beta, const float *c0,
                     size_t ldc, double *ref, double *mag) {
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      double s = 0, g = 0;
      for (size_t p = 0; p < k; p++) {
        double av = ta ? a[p * lda + i] : a[i * lda + p];
        double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
        g += fabs(av * bv);
      }
      double cv = beta == 0 ? 0 : beta * c0[i * ldc + j];
      ref[i * n + j] = alpha * s + cv;
      mag[i * n + j] = fabs(alpha) * g + fabs(cv);
    }
}

/* One random product; with `act` (an index into test_acts, or -1 for plain cpu_sgemm) it runs
 * through cpu_sgemm_ex with that activation, and bias_mode bit 0 adds a row bias, bit 1 a
 * column bias, bit 2 an addend matrix (a residual) with its own row stride. */
static void sgemm_case_ep(rng *r, size_t m, size_t n, size_t k, bool ta, bool tb, float alpha,
                          float beta, cpu_isa isa, size_t threads, int act, int bias_mode) {
  size_t lda = (ta ? m : k) + (size_t)rint_in(r, 0, 3);
  size_t ldb = (tb ? k : n) + (size_t)rint_in(r, 0, 3);
  size_t ldc = n + (size_t)rint_in(r, 0, 3);
  size_t arows = ta ? k : m, brows = tb ? n : k;
  float *a = malloc((arows * lda + 1) * sizeof *a), *b = malloc((brows * ldb + 1) * sizeof *b);
  float *c = malloc((m * ldc + 1) * sizeof *c), *c0 = malloc((m * ldc + 1) * sizeof *c0);
  for (size_t i = 0; i < arows * lda; i++)
    a[i] = (float)runi(r);
  for (size_t i = 0; i < brows * ldb; i++)
    b[i] = (float)runi(r);
  for (size_t i = 0; i < m * ldc; i++)
    c0[i] = beta == 0 ? NAN : (float)runi(r);
  memcpy(c, c0, m * ldc * sizeof *c);
  double *ref = malloc((m * n + 1) * sizeof *ref), *mag = malloc((m * n + 1) * sizeof *mag);
  ref_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c0, ldc, ref, mag);
  float *rb = malloc((m + 1) * sizeof *rb), *cb = malloc((n + 1) * sizeof *cb);
  for (size_t i = 0; i < m; i++)
    rb[i] = (float)runi(r);
  for (size_t j = 0; j < n; j++)
    cb[j] = (float)runi(r);
  size_t ldr = n + (size_t)rint_in(r, 0, 5);
  float *res = malloc((m * ldr + 1) * sizeof *res);
  for (size_t i = 0; i < m * ldr; i++)
    res[i] = (float)runi(r) * 3;
  cpu_sgemm_epilogue ep = {0};
  if (act >= 0) {
    ep.row_bias = bias_mode & 1 ? rb : NULL;
    ep.col_bias = bias_mode & 2 ? cb : NULL;
    ep.addend = bias_mode & 4 ? res : NULL;
    ep.ld_addend = ldr;
    ep.act = act_of(&test_acts[act]);
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < n; j++) {
        double v = ref[i * n + j];
        if (ep.row_bias)
          v += rb[i], mag[i * n + j] += fabs(rb[i]);
        if (ep.col_bias)
          v += cb[j], mag[i * n + j] += fabs(cb[j]);
        if (ep.addend)
          v += res[i * ldr + j], mag[i * n + j] += fabs(res[i * ldr + j]);
        ref[i * n + j] = ref_act(&test_acts[act], v);
        mag[i * n + j] *= 1.5; /* hardswish's slope reaches 1.5 */
      }
  }
  cpu_pool *pool = cpu_pool_create(threads);
  /* A scratch slot as the plugin gives an executable, lending a block that another kernel
   * left full of NaN: the packing must not read what it did not write. */
  cpu_scratch *_Atomic slot = NULL;
  cpu_ctx ctx = {.pool = pool, .isa = isa, .scratch = &slot};
  bool fresh;
  size_t seed_bytes = (size_t)rint_in(r, 1, 1 << 20) * 8;
  float *seed = cpu_scratch_take(&ctx, seed_bytes, &fresh);
  ck_assert(seed);
  for (size_t i = 0; i < seed_bytes / sizeof *seed; i++)
    seed[i] = NAN;
  cpu_scratch_give(&ctx, seed);
  if (act < 0)
    cpu_sgemm(&ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    cpu_sgemm_ex(&ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, &ep);
  cpu_scratch_free(&slot);
  cpu_pool_destroy(pool);
  free(rb), free(cb), free(res);
  for (size_t i = 0; i < m; i++) {
    for (size_t j = 0; j < n; j++) {
      double got = c[i * ldc + j], want = ref[i * n + j];
      double tol = 1e-6 + 1e-6 * fabs(want) + 4e-7 * mag[i * n + j] * sqrt((double)k + 1);
      if (!(fabs(got - want) <= tol))
        ck_abort_msg("sgemm m=%zu n=%zu k=%zu ta=%d tb=%d isa=%d act=%d bias=%d: C[%zu,%zu] = "
                     "%.9g, want %.9g",
                     m, n, k, ta, tb, isa, act, bias_mode, i, j, got, want);
    }
    /* The padding between rows must be untouched. */
    for (size_t j = n; j < ldc; j++)
      ck_assert_msg(memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof *c) == 0,
                    "sgemm wrote past n at row %zu", i);
  }
  free(a), free(b), free(c), free(c0), free(ref), free(mag);
}

static void sgemm_case(rng *r, size_t m, size_t n, size_t k, bool ta, bool tb, float alpha,
                       float beta, cpu_isa isa, size_t threads) {
  sgemm_case_ep(r, m, n, k, ta, tb, alpha, beta, isa, threads, -1, 0);
}

START_TEST(test_sgemm_random) {
  rng r = {0x9e3779b97f4a7c15ull};
  cpu_isa best = cpu_detect_isa();
  for (int it = 0; it < 160; it++) {
    size_t m, n, k;
    switch (it % 8) {
    case 0: m = 1, n = (size_t)rint_in(&r, 1, 3000), k = (size_t)rint_in(&r, 1, 600); break;
    case 1: m = (size_t)rint_in(&r, 1, 600), n = 1, k = (size_t)rint_in(&r, 1, 600); break;
    case 2:
      m = (size_t)rint_in(&r, 1, 8), n = (size_t)rint_in(&r, 1, 8), k = (size_t)rint_in(&r, 1, 8);
      break;
    case 3:
      m = (size_t)rint_in(&r, 100, 200), n = (size_t)rint_in(&r, 17, 90),
      k = (size_t)rint_in(&r, 250, 530);
      break;
    default:
      m = (size_t)rint_in(&r, 1, 70), n = (size_t)rint_in(&r, 1, 70),
      k = (size_t)rint_in(&r, 1, 300);
      break;
    }
    bool ta = rnext(&r) & 1, tb = rnext(&r) & 1;
    float alpha = (it % 5 == 0) ? 1.0f : (float)runi(&r) * 2;
    float beta = (it % 3 == 0) ? 0.0f : (it % 3 == 1 ? 1.0f : (float)runi(&r));
    cpu_isa isa = (it / 8) & 1 ? CPU_ISA_GENERIC : best; /* every kind of shape on both */
    sgemm_case(&r, m, n, k, ta, tb, alpha, beta, isa, (size_t)(1 + it % 3));
  }
}
END_TEST

/* Sizes that cross every blocking boundary: NC (4096 columns), MBIG (2304 rows), KC (256), row
 * blocks (MC_MAX) and A's packing chunks. */
START_TEST(test_sgemm_blocking_edges) {
  rng r = {12345};
  cpu_isa best = cpu_detect_isa();
  for (int isa_i = 0; isa_i < 2; isa_i++) {
    cpu_isa isa = isa_i ? CPU_ISA_GENERIC : best;
    sgemm_case(&r, 7, 4100, 300, false, false, 1.0f, 0.0f, isa, 2);
    sgemm_case(&r, 2310, 19, 40, false, true, 0.5f, 1.0f, isa, 3);
    sgemm_case(&r, 13, 35, 777, true, false, 1.0f, -0.5f, isa, 1);
    sgemm_case(&r, 150, 150, 513, true, true, 2.0f, 0.25f, isa, 2);
    /* A packed during the call over three KC blocks of 234 (not a multiple of 8 deep), and
     * rows that end in a partial panel. */
    sgemm_case(&r, 41, 70, 700, false, false, 1.0f, 0.0f, isa, 2);
    sgemm_case(&r, 128, 256, 1024, false, false, 1.0f, 1.0f, isa, 1);
    /* B packed whole before the items: more rows than one row block takes (MC_MAX, 480), at
     * one thread and two, B plain and transposed, with an epilogue; and A in two chunks
     * (A_SCRATCH_FLOATS, 4M floats) with B packed once for both. */
    sgemm_case(&r, 1000, 37, 300, false, false, 1.0f, 0.0f, isa, 1);
    sgemm_case(&r, 700, 45, 520, true, true, 1.5f, 0.5f, isa, 2);
    sgemm_case_ep(&r, 500, 33, 100, false, true, 1.0f, 1.0f, isa, 1, 1, 7);
    if (isa_i == 0)
      sgemm_case(&r, 4300, 20, 1000, false, false, 1.0f, 0.0f, isa, 2);
  }
}
END_TEST

/* The epilogue on every path of cpu_sgemm_ex (naive, gemv by rows and by columns, packed
 * full and edge tiles, several KC blocks, MBIG and NC blocks), every activation and bias
 * placement, both ISAs and several thread counts. */
START_TEST(test_sgemm_epilogue) {
  rng r = {0x5eed};
  cpu_isa best = cpu_detect_isa();
  for (int it = 0; it < 240; it++) {
    size_t m, n, k;
    switch (it % 6) {
    case 0: m = 1, n = (size_t)rint_in(&r, 1, 2000), k = (size_t)rint_in(&r, 1, 300); break;
    case 1: m = (size_t)rint_in(&r, 1, 300), n = 1, k = (size_t)rint_in(&r, 1, 300); break;
    case 2:
      m = (size_t)rint_in(&r, 1, 8), n = (size_t)rint_in(&r, 1, 8), k = (size_t)rint_in(&r, 1, 8);
      break;
    case 3: /* several KC blocks: the epilogue must apply only after the last */
      m = (size_t)rint_in(&r, 5, 40), n = (size_t)rint_in(&r, 15, 50),
      k = (size_t)rint_in(&r, 257, 600);
      break;
    default:
      m = (size_t)rint_in(&r, 1, 70), n = (size_t)rint_in(&r, 1, 70),
      k = (size_t)rint_in(&r, 1, 300);
      break;
    }
    bool ta = rnext(&r) & 1, tb = rnext(&r) & 1;
    float alpha = (it % 4 == 0) ? 1.0f : (float)runi(&r) * 2;
    float beta = (it % 3 == 0) ? 0.0f : (float)runi(&r);
    cpu_isa isa = (it & 1) ? CPU_ISA_GENERIC : best;
    sgemm_case_ep(&r, m, n, k, ta, tb, alpha, beta, isa, (size_t)(1 + it % 3),
                  (it / 2) % N_TEST_ACTS, (it / 3) % 8);
  }
  for (int isa_i = 0; isa_i < 2; isa_i++) {
    cpu_isa isa = isa_i ? CPU_ISA_GENERIC : best;
    for (int act = 1; act < N_TEST_ACTS; act += 2) {
      sgemm_case_ep(&r, 7, 4100, 300, false, false, 1.0f, 0.0f, isa, 2, act, 3);
      sgemm_case_ep(&r, 64, 200, 40, false, false, 1.0f, 0.0f, isa, 2, act, 5);
      sgemm_case_ep(&r, 64, 200, 40, false, false, 1.0f, 1.0f, isa, 2, act, 1);
      sgemm_case_ep(&r, 30, 48, 700, false, false, 1.0f, 1.0f, isa, 2, act, 5);
      int next = 1 + act % (N_TEST_ACTS - 1);
      sgemm_case_ep(&r, 2310, 19, 40, false, true, 0.5f, 1.0f, isa, 3, next, 1);
      sgemm_case_ep(&r, 150, 150, 513, true, true, 2.0f, 0.25f, isa, 2, act, 2);
    }
  }
  /* k == 0: the epilogue still applies to beta * C. */
  float c[6] = {-1, 2, -3, 4, -5, 6}, a[1] = {0}, b[1] = {0}, rb[2] = {10, -10};
  cpu_ctx ctx = {.isa = best};
  cpu_sgemm_epilogue ep = {.row_bias = rb, .act = {CPU_ACT_RELU, 0, 0}};
  cpu_sgemm_ex(&ctx, false, false, 2, 3, 0, 1.0f, a, 1, b, 3, 1.0f, c, 3, &ep);
  float want[6] = {9, 12, 7, 0, 0, 0};
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(c[i], want[i]);
}
END_TEST

/* NaN and -0 come out of the fused relu as out of the elementwise Relu (x < 0 ? 0 : x), on
 * both ISAs: a full 6x16 tile and a 4x16 one whose first row is NaN and the rest -0. */
START_TEST(test_act_special_values) {
  cpu_act relu = {CPU_ACT_RELU, 0, 0};
  ck_assert(signbit(cpu_act_apply(&relu, -0.0f)));
  ck_assert(isnan(cpu_act_apply(&relu, NAN)));
  cpu_isa best = cpu_detect_isa();
  static float a6[6 * 64], b16[64 * 16], c6[6 * 16];
  for (int i = 0; i < 6 * 64; i++)
    a6[i] = i < 64 ? NAN : 0.0f;
  for (int i = 0; i < 64 * 16; i++)
    b16[i] = 1.0f;
  /* Six rows: the 6x16 kernel; four: the short one (CPU_SGEMM_SHORT_MR). */
  for (int isa_i = 0; isa_i < 2; isa_i++)
    for (size_t m = 6; m >= 4; m -= 2) {
      cpu_ctx ctx = {.isa = isa_i ? CPU_ISA_GENERIC : best};
      cpu_sgemm_epilogue ep = {.act = relu};
      cpu_sgemm_ex(&ctx, false, false, m, 16, 64, -1.0f, a6, 64, b16, 16, 0.0f, c6, 16, &ep);
      for (int j = 0; j < 16; j++)
        ck_assert(isnan(c6[j]));
      for (size_t i = 16; i < m * 16; i++)
        ck_assert(c6[i] == 0.0f && signbit(c6[i]));
    }
}
END_TEST

START_TEST(test_sgemm_degenerate) {
  float c[6] = {1, 2, 3, 4, 5, 6};
  float a[1] = {0}, b[1] = {0};
  cpu_ctx ctx = {.isa = cpu_detect_isa()};
  /* k == 0: C = beta * C. */
  cpu_sgemm(&ctx, false, false, 2, 3, 0, 1.0f, a, 1, b, 3, 2.0f, c, 3);
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(c[i], 2.0f * (float)(i + 1));
  /* beta == 0 ignores NaN in C. */
  float big_a[64 * 64], big_b[64 * 64], big_c[64 * 64];
  for (int i = 0; i < 64 * 64; i++)
    big_a[i] = 1.0f, big_b[i] = 0.5f, big_c[i] = NAN;
  cpu_sgemm(&ctx, false, false, 64, 64, 64, 1.0f, big_a, 64, big_b, 64, 0.0f, big_c, 64);
  for (int i = 0; i < 64 * 64; i++)
    ck_assert_float_eq(big_c[i], 32.0f);
  /* m == 0 and n == 0 do nothing. */
  cpu_sgemm(&ctx, false, false, 0, 3, 4, 1.0f, a, 4, b, 3, 0.0f, c, 3);
  cpu_sgemm(&ctx, false, false, 2, 0, 4, 1.0f, a, 4, b, 3, 0.0f, c, 3);
  ck_assert_float_eq(c[0], 2.0f);
}
END_TEST

/* The AVX2 path must exist on a machine that has it, or the suite would test one path twice. */
START_TEST(test_isa_switch) {
  setenv("TESSERA_CPU_GENERIC", "1", 1);
  ck_assert_int_eq(cpu_detect_isa(), CPU_ISA_GENERIC);
  setenv("TESSERA_CPU_GENERIC", "0", 1);
#if defined(TSR_CPU_HAVE_AVX2) && defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    ck_assert_int_eq(cpu_detect_isa(), CPU_ISA_AVX2_FMA);
#endif
}
END_TEST

/* ---- Gemm ------------------------------------------------------------------------------- */

static bool is_int(uint32_t dt) {
  return dt == TSR_DTYPE_INT32 || dt == TSR_DTYPE_INT64 || dt == TSR_DTYPE_UINT32 ||
         dt == TSR_DTYPE_UINT64;
}

START_TEST(test_gemm_random) {
  rng r = {777};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64,
                                 TSR_DTYPE_FLOAT16, TSR_DTYPE_INT32,   TSR_DTYPE_INT64,
                                 TSR_DTYPE_UINT32,  TSR_DTYPE_UINT64};
  for (int it = 0; it < 240; it++) {
    size_t threads = vary_env(it);
    uint32_t dt = dts[it % 8];
    int64_t opset = it % 3 == 0 ? 7 : (it % 3 == 1 ? 11 : 13);
    int64_t M = rint_in(&r, 1, 40), N = rint_in(&r, 1, 40), K = rint_in(&r, 0, 50);
    if (it % 17 == 0)
      M = 1;
    bool ta = rnext(&r) & 1, tb = rnext(&r) & 1;
    double alpha = 1.0, beta = 1.0;
    if (it % 4 == 1)
      alpha = is_int(dt) ? 3 : 0.5 + runi(&r);
    bool unsig = dt == TSR_DTYPE_UINT32 || dt == TSR_DTYPE_UINT64;
    if (it % 4 == 2)
      beta = is_int(dt) ? (unsig ? 2 : -2) : runi(&r);
    if (it % 4 == 3 && !is_int(dt))
      alpha = 0.25, beta = 0.0;
    /* C: absent (opset 11+), scalar, [N], [1,N], [M,1], [M,N], [1], [1,1]. */
    int cform = (int)rint_in(&r, opset >= 11 ? 0 : 1, 7);
    int64_t cdims[2];
    int crank;
    switch (cform) {
    case 1: crank = 0; break;
    case 2: crank = 1, cdims[0] = N; break;
    case 3: crank = 2, cdims[0] = 1, cdims[1] = N; break;
    case 4: crank = 2, cdims[0] = M, cdims[1] = 1; break;
    case 5: crank = 2, cdims[0] = M, cdims[1] = N; break;
    case 6: crank = 1, cdims[0] = 1; break;
    case 7: crank = 2, cdims[0] = 1, cdims[1] = 1; break;
    default: crank = -1; break;
    }
    int64_t adims[2] = {ta ? K : M, ta ? M : K}, bdims[2] = {tb ? N : K, tb ? K : N};
    double *a = rand_vals(&r, dt, (size_t)(M * K)), *b = rand_vals(&r, dt, (size_t)(K * N));
    size_t ccount = crank < 0 ? 0 : prod(cdims, crank);
    double *c = crank < 0 ? NULL : rand_vals(&r, dt, ccount);
    cpu_direct *d = cpu_direct_new("Gemm", opset);
    if (ta)
      cpu_direct_attr_int(d, "transA", 1);
    if (tb)
      cpu_direct_attr_int(d, "transB", 1);
    if (alpha != 1.0)
      cpu_direct_attr_float(d, "alpha", (float)alpha);
    if (beta != 1.0)
      cpu_direct_attr_float(d, "beta", (float)beta);
    alpha = (float)alpha, beta = (float)beta;
    add_input(d, dt, 2, adims, a);
    /* A constant B is packed once by prepare(); a variable one in each run. */
    add_input_c(d, dt, 2, bdims, b, it % 3 != 0);
    if (c)
      add_input(d, dt, crank, cdims, c);
    int64_t ydims[2] = {M, N};
    cpu_direct_output(d, dt, 2, ydims);
    RUN_OK(d, threads);
    double *ref = malloc((size_t)(M * N + 1) * sizeof *ref);
    double *mag = malloc((size_t)(M * N + 1) * sizeof *mag);
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double s = 0, g = 0;
        for (int64_t p = 0; p < K; p++) {
          double av = ta ? a[p * M + i] : a[i * K + p], bv = tb ? b[j * K + p] : b[p * N + j];
          s += av * bv;
          g += fabs(av * bv);
        }
        double cv = 0;
        if (c) {
          int64_t ci = crank == 2 ? (cdims[0] == 1 ? 0 : i) * cdims[1] + (cdims[1] == 1 ? 0 : j)
                                  : (crank == 1 && cdims[0] != 1 ? j : 0);
          cv = c[ci];
        }
        ref[i * N + j] = alpha * s + beta * cv;
        mag[i * N + j] = fabs(alpha) * g + fabs(beta * cv);
      }
    double atol, rtol, mtol;
    tol_for(dt, &atol, &rtol, &mtol);
    char what[96];
    snprintf(what, sizeof what, "Gemm it %d dtype %s", it, cpu_dtype_name(dt));
    expect_close(what, cpu_direct_out(d, 0), ref, mag, (size_t)(M * N), atol, rtol, mtol);
    cpu_direct_free(d);
    free(a), free(b), free(c), free(ref), free(mag);
  }
}
END_TEST

/* Gemm with a fused activation: every form of C (the 1-D and column ones go through the
 * epilogue, the rest through beta * C), alpha and beta, both ISAs. */
START_TEST(test_gemm_activation) {
  rng r = {2024};
  for (int it = 0; it < 120; it++) {
    size_t threads = vary_env(it);
    const test_act *act = &test_acts[1 + it % (N_TEST_ACTS - 1)];
    int64_t M = rint_in(&r, 1, 60), N = rint_in(&r, 1, 60), K = rint_in(&r, 1, 300);
    bool ta = rnext(&r) & 1, tb = rnext(&r) & 1;
    double alpha = it % 4 == 1 ? 0.5 + runi(&r) : 1.0, beta = it % 3 == 2 ? runi(&r) : 1.0;
    int cform = (int)(it / 5) % 6; /* none, [N], [1,N], [M,1], [M,N], scalar */
    int64_t cdims[2];
    int crank = -1;
    switch (cform) {
    case 1: crank = 1, cdims[0] = N; break;
    case 2: crank = 2, cdims[0] = 1, cdims[1] = N; break;
    case 3: crank = 2, cdims[0] = M, cdims[1] = 1; break;
    case 4: crank = 2, cdims[0] = M, cdims[1] = N; break;
    case 5: crank = 0; break;
    default: break;
    }
    int64_t adims[2] = {ta ? K : M, ta ? M : K}, bdims[2] = {tb ? N : K, tb ? K : N};
    double *a = rand_vals(&r, TSR_DTYPE_FLOAT32, (size_t)(M * K));
    double *b = rand_vals(&r, TSR_DTYPE_FLOAT32, (size_t)(K * N));
    double *c = crank < 0 ? NULL : rand_vals(&r, TSR_DTYPE_FLOAT32, prod(cdims, crank));
    cpu_direct *d = cpu_direct_new("Gemm", 13);
    if (ta)
      cpu_direct_attr_int(d, "transA", 1);
    if (tb)
      cpu_direct_attr_int(d, "transB", 1);
    cpu_direct_attr_float(d, "alpha", (float)alpha);
    cpu_direct_attr_float(d, "beta", (float)beta);
    alpha = (float)alpha, beta = (float)beta;
    set_act_attrs(d, act);
    add_input(d, TSR_DTYPE_FLOAT32, 2, adims, a);
    add_input(d, TSR_DTYPE_FLOAT32, 2, bdims, b);
    if (c)
      add_input(d, TSR_DTYPE_FLOAT32, crank, cdims, c);
    int64_t ydims[2] = {M, N};
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, ydims);
    RUN_OK(d, threads);
    double *ref = malloc((size_t)(M * N) * sizeof *ref), *mag = malloc((size_t)(M * N) * sizeof *mag);
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double s = 0, g = 0;
        for (int64_t p = 0; p < K; p++) {
          double av = ta ? a[p * M + i] : a[i * K + p], bv = tb ? b[j * K + p] : b[p * N + j];
          s += av * bv;
          g += fabs(av * bv);
        }
        double cv = 0;
        if (c)
          cv = crank == 2 ? c[(cdims[0] == 1 ? 0 : i) * cdims[1] + (cdims[1] == 1 ? 0 : j)]
                          : (crank == 1 ? c[j] : c[0]);
        ref[i * N + j] = ref_act(act, alpha * s + beta * cv);
        mag[i * N + j] = 1.5 * (fabs(alpha) * g + fabs(beta * cv));
      }
    char what[96];
    snprintf(what, sizeof what, "Gemm+%s it %d C form %d", act->name, it, cform);
    expect_close(what, cpu_direct_out(d, 0), ref, mag, (size_t)(M * N), 1e-6, 1e-5, 4e-6);
    cpu_direct_free(d);
    free(a), free(b), free(c), free(ref), free(mag);
  }
  setenv("TESSERA_CPU_GENERIC", "0", 1);
}
END_TEST

/* Integer products wrap around like numpy's. */
START_TEST(test_gemm_int_wrap) {
  int32_t a[2] = {INT32_MAX, 2}, b[2] = {2, INT32_MAX};
  int64_t ad[2] = {1, 2}, bd[2] = {2, 1}, yd[2] = {1, 1};
  cpu_direct *d = cpu_direct_new("MatMul", 13);
  cpu_direct_input(d, TSR_DTYPE_INT32, 2, ad, a, false);
  cpu_direct_input(d, TSR_DTYPE_INT32, 2, bd, b, false);
  cpu_direct_output(d, TSR_DTYPE_INT32, 2, yd);
  RUN_OK(d, 1);
  uint32_t want = (uint32_t)INT32_MAX * 2u * 2u;
  ck_assert_int_eq(((int32_t *)cpu_direct_out(d, 0)->data)[0], (int32_t)want);
  cpu_direct_free(d);
  uint64_t ua[1] = {UINT64_MAX}, ub[1] = {3};
  int64_t one[2] = {1, 1};
  d = cpu_direct_new("Gemm", 13);
  cpu_direct_input(d, TSR_DTYPE_UINT64, 2, one, ua, false);
  cpu_direct_input(d, TSR_DTYPE_UINT64, 2, one, ub, false);
  cpu_direct_output(d, TSR_DTYPE_UINT64, 2, one);
  RUN_OK(d, 1);
  ck_assert(((uint64_t *)cpu_direct_out(d, 0)->data)[0] == UINT64_MAX * 3u);
  cpu_direct_free(d);
}
END_TEST

START_TEST(test_gemm_errors) {
  int64_t a[2] = {3, 4}, b[2] = {5, 2}, y[2] = {3, 2}, c[2] = {2, 2};
  cpu_direct *d = cpu_direct_new("Gemm", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, a, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, b, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, y);
  expect_fail(d, "inner dims");
  cpu_direct_free(d);

  int64_t b2[2] = {4, 2};
  d = cpu_direct_new("Gemm", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, a, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, b2, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, c, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, y);
  expect_fail(d, "broadcast");
  cpu_direct_free(d);

  d = cpu_direct_new("Gemm", 13);
  cpu_direct_input(d, TSR_DTYPE_INT8, 2, a, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_INT8, 2, b2, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_INT8, 2, y);
  expect_fail(d, "int8");
  cpu_direct_free(d);

  /* run() without check(): a wrong output shape must be caught, not written past. */
  float fa[12] = {0}, fb[8] = {0}, fy[6] = {0};
  int64_t ybad[2] = {3, 3};
  cpu_tensor in[2] = {mk_tensor(TSR_DTYPE_FLOAT32, 2, a, fa),
                      mk_tensor(TSR_DTYPE_FLOAT32, 2, b2, fb)};
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 2, ybad, fy)};
  out[0].count = 6; /* as allocated */
  expect_run_fail("Gemm", 13, 2, in, 1, out, "output");
  expect_run_fail("MatMul", 13, 2, in, 1, out, "output");
}
END_TEST

/* ---- MatMul ----------------------------------------------------------------------------- */

START_TEST(test_matmul_random) {
  rng r = {4242};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64,
                                 TSR_DTYPE_FLOAT16, TSR_DTYPE_INT32,   TSR_DTYPE_INT64,
                                 TSR_DTYPE_UINT32,  TSR_DTYPE_UINT64,  TSR_DTYPE_FLOAT32};
  for (int it = 0; it < 270; it++) {
    size_t threads = vary_env(it);
    uint32_t dt = dts[it % 9];
    int ar = (int)rint_in(&r, 1, 4), br = (int)rint_in(&r, 1, 4);
    int64_t M = rint_in(&r, 1, 20), K = rint_in(&r, 0, 30), N = rint_in(&r, 1, 20);
    if (it % 9 == 8)
      M = rint_in(&r, 30, 80), K = rint_in(&r, 30, 80), N = rint_in(&r, 30, 80);
    int abr = ar > 2 ? ar - 2 : 0, bbr = br > 2 ? br - 2 : 0, obr = abr > bbr ? abr : bbr;
    int64_t ob[2], adims[4], bdims[4], ydims[6];
    for (int i = 0; i < obr; i++)
      ob[i] = rint_in(&r, 1, 3);
    /* Batch dims of each operand: the output's or 1 (broadcast). */
    for (int i = 0; i < abr; i++)
      adims[i] = (rnext(&r) % 3 == 0) ? 1 : ob[obr - abr + i];
    for (int i = 0; i < bbr; i++)
      bdims[i] = (rnext(&r) % 3 == 0) ? 1 : ob[obr - bbr + i];
    for (int i = 0; i < obr; i++) {
      int ai = i - (obr - abr), bi = i - (obr - bbr);
      int64_t a_d = ai >= 0 ? adims[ai] : 1, b_d = bi >= 0 ? bdims[bi] : 1;
      ob[i] = a_d > b_d ? a_d : b_d;
    }
    if (ar == 1)
      adims[0] = K;
    else
      adims[ar - 2] = M, adims[ar - 1] = K;
    if (br == 1)
      bdims[0] = K;
    else
      bdims[br - 2] = K, bdims[br - 1] = N;
    int yr = 0;
    for (int i = 0; i < obr; i++)
      ydims[yr++] = ob[i];
    if (ar >= 2)
      ydims[yr++] = M;
    if (br >= 2)
      ydims[yr++] = N;
    int64_t m_eff = ar >= 2 ? M : 1, n_eff = br >= 2 ? N : 1;
    size_t ac = prod(adims, ar), bc = prod(bdims, br), yc = prod(ydims, yr);
    double *a = rand_vals(&r, dt, ac), *b = rand_vals(&r, dt, bc);
    cpu_direct *d = cpu_direct_new("MatMul", it % 2 ? 13 : 9);
    add_input(d, dt, ar, adims, a);
    add_input_c(d, dt, br, bdims, b, it % 3 != 0); /* constant: packed by prepare() */
    cpu_direct_output(d, dt, (uint32_t)yr, ydims);
    RUN_OK(d, threads);
    double *ref = malloc((yc + 1) * sizeof *ref), *mag = malloc((yc + 1) * sizeof *mag);
    size_t batches = prod(ob, obr);
    for (size_t bt = 0; bt < batches; bt++) {
      /* Batch coordinates, then each operand's offset with broadcasting. */
      size_t rem = bt, ao = 0, bo = 0, as = (size_t)(m_eff * K), bs = (size_t)(K * n_eff);
      for (int i = obr - 1; i >= 0; i--) {
        size_t coord = rem % (size_t)ob[i];
        rem /= (size_t)ob[i];
        int ai = i - (obr - abr), bi = i - (obr - bbr);
        if (ai >= 0) {
          if (adims[ai] != 1)
            ao += coord * as;
          as *= (size_t)adims[ai];
        }
        if (bi >= 0) {
          if (bdims[bi] != 1)
            bo += coord * bs;
          bs *= (size_t)bdims[bi];
        }
      }
      for (int64_t i = 0; i < m_eff; i++)
        for (int64_t j = 0; j < n_eff; j++) {
          double s = 0, g = 0;
          for (int64_t p = 0; p < K; p++) {
            double t = a[ao + (size_t)(i * K + p)] * b[bo + (size_t)(p * n_eff + j)];
            s += t;
            g += fabs(t);
          }
          size_t yi = (bt * (size_t)m_eff + (size_t)i) * (size_t)n_eff + (size_t)j;
          ref[yi] = s;
          mag[yi] = g;
        }
    }
    double atol, rtol, mtol;
    tol_for(dt, &atol, &rtol, &mtol);
    char what[128];
    snprintf(what, sizeof what, "MatMul it %d %s ranks %d,%d", it, cpu_dtype_name(dt), ar, br);
    expect_close(what, cpu_direct_out(d, 0), ref, mag, yc, atol, rtol, mtol);
    cpu_direct_free(d);
    free(a), free(b), free(ref), free(mag);
  }
}
END_TEST

START_TEST(test_matmul_errors) {
  int64_t a[3] = {2, 3, 4}, b[3] = {3, 4, 5}, y[3] = {3, 3, 5};
  cpu_direct *d = cpu_direct_new("MatMul", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, a, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, b, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 3, y);
  expect_fail(d, "broadcast");
  cpu_direct_free(d);
  int64_t s[1] = {4}, y2[1] = {3};
  d = cpu_direct_new("MatMul", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, s, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, a, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, y2);
  expect_fail(d, "inner dims");
  cpu_direct_free(d);
  d = cpu_direct_new("MatMul", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 0, NULL, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, s, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 0, NULL);
  expect_fail(d, "scalar");
  cpu_direct_free(d);
}
END_TEST

/* A matrix with an empty inner dimension gives zeros; empty outer dims give nothing. */
START_TEST(test_matmul_empty) {
  int64_t a[2] = {3, 0}, b[2] = {0, 2}, y[2] = {3, 2};
  cpu_direct *d = cpu_direct_new("MatMul", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, a, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, b, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, y);
  float *o = cpu_direct_out(d, 0)->data;
  for (int i = 0; i < 6; i++)
    o[i] = 7.0f;
  RUN_OK(d, 1);
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(o[i], 0.0f);
  cpu_direct_free(d);
  int64_t a0[3] = {0, 3, 4}, b0[2] = {4, 2}, y0[3] = {0, 3, 2};
  d = cpu_direct_new("MatMul", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, a0, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, b0, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 3, y0);
  RUN_OK(d, 2);
  cpu_direct_free(d);
}
END_TEST

/* ---- Conv and ConvTranspose ------------------------------------------------------------- */

/* Advances an n-D index in row-major order; false after the last. */
static bool next_index(int64_t *idx, const int64_t *dims, int n) {
  for (int i = n - 1; i >= 0; i--) {
    if (++idx[i] < dims[i])
      return true;
    idx[i] = 0;
  }
  return false;
}

static bool any_zero(const int64_t *dims, int n) {
  for (int i = 0; i < n; i++)
    if (dims[i] == 0)
      return true;
  return false;
}

/* Row-major offset of idx in dims. */
static size_t offset_of(const int64_t *idx, const int64_t *dims, int n) {
  size_t o = 0;
  for (int i = 0; i < n; i++)
    o = o * (size_t)dims[i] + (size_t)idx[i];
  return o;
}

typedef struct conv_geom {
  int nsp;
  int64_t N, C, M, G;
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
} conv_geom;

static void ref_conv(const conv_geom *g, const double *x, const double *w, const double *b,
                     double *y, double *mag) {
  int nsp = g->nsp;
  int64_t cg = g->C / g->G, mg = g->M / g->G;
  size_t osp = prod(g->out, nsp), isp = prod(g->in, nsp), ksp = prod(g->k, nsp);
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t m = 0; m < g->M; m++) {
      int64_t grp = m / mg;
      int64_t o[3] = {0, 0, 0};
      if (any_zero(g->out, nsp))
        continue;
      do {
        double s = b ? b[m] : 0, a = b ? fabs(b[m]) : 0;
        for (int64_t c = 0; c < cg; c++) {
          int64_t kv[3] = {0, 0, 0};
          do {
            int64_t iv[3];
            bool inside = true;
            for (int i = 0; i < nsp; i++) {
              iv[i] = o[i] * g->s[i] - g->pb[i] + kv[i] * g->d[i];
              inside = inside && iv[i] >= 0 && iv[i] < g->in[i];
            }
            if (!inside)
              continue;
            double xv = x[(size_t)(n * g->C + grp * cg + c) * isp + offset_of(iv, g->in, nsp)];
            double wv = w[(size_t)(m * cg + c) * ksp + offset_of(kv, g->k, nsp)];
            s += xv * wv;
            a += fabs(xv * wv);
          } while (next_index(kv, g->k, nsp));
        }
        size_t yi = (size_t)(n * g->M + m) * osp + offset_of(o, g->out, nsp);
        y[yi] = s;
        mag[yi] = a;
      } while (next_index(o, g->out, nsp));
    }
}

static void ref_convt(const conv_geom *g, const double *x, const double *w, const double *b,
                      double *y, double *mag) {
  int nsp = g->nsp;
  int64_t cg = g->C / g->G, mg = g->M / g->G;
  size_t osp = prod(g->out, nsp), isp = prod(g->in, nsp), ksp = prod(g->k, nsp);
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t m = 0; m < g->M; m++)
      for (size_t i = 0; i < osp; i++) {
        y[(size_t)(n * g->M + m) * osp + i] = b ? b[m] : 0;
        mag[(size_t)(n * g->M + m) * osp + i] = b ? fabs(b[m]) : 0;
      }
  if (any_zero(g->in, nsp))
    return;
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t c = 0; c < g->C; c++) {
      int64_t grp = c / cg;
      int64_t iv[3] = {0, 0, 0};
      do {
        double xv = x[(size_t)(n * g->C + c) * isp + offset_of(iv, g->in, nsp)];
        for (int64_t ml = 0; ml < mg; ml++) {
          int64_t kv[3] = {0, 0, 0};
          do {
            int64_t ov[3];
            bool inside = true;
            for (int i = 0; i < nsp; i++) {
              ov[i] = iv[i] * g->s[i] - g->pb[i] + kv[i] * g->d[i];
              inside = inside && ov[i] >= 0 && ov[i] < g->out[i];
            }
            if (!inside)
              continue;
            double wv = w[(size_t)(c * mg + ml) * ksp + offset_of(kv, g->k, nsp)];
            size_t yi = (size_t)(n * g->M + grp * mg + ml) * osp + offset_of(ov, g->out, nsp);
            y[yi] += xv * wv;
            mag[yi] += fabs(xv * wv);
          } while (next_index(kv, g->k, nsp));
        }
      } while (next_index(iv, g->in, nsp));
    }
}

static void set_window_attrs(cpu_direct *d, const conv_geom *g, int pad_mode, bool kshape,
                             bool dil) {
  int nsp = g->nsp;
  if (kshape)
    cpu_direct_attr_ints(d, "kernel_shape", (size_t)nsp, g->k);
  cpu_direct_attr_ints(d, "strides", (size_t)nsp, g->s);
  if (dil)
    cpu_direct_attr_ints(d, "dilations", (size_t)nsp, g->d);
  static const char *const modes[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
  if (pad_mode == 0) {
    int64_t pads[6];
    for (int i = 0; i < nsp; i++)
      pads[i] = g->pb[i], pads[nsp + i] = g->pe[i];
    cpu_direct_attr_ints(d, "pads", 2 * (size_t)nsp, pads);
  } else if (pad_mode <= 3) {
    cpu_direct_attr_string(d, "auto_pad", modes[pad_mode]);
  }
}

/* Output size and pads of a forward window the way the ONNX spec states them. Returns false
 * when the window does not fit. pad_mode: 0 explicit (pb/pe given), 1 SAME_UPPER,
 * 2 SAME_LOWER, 3 VALID. */
static bool forward_geom(conv_geom *g, int pad_mode, bool ceil_mode) {
  for (int i = 0; i < g->nsp; i++) {
    int64_t ek = (g->k[i] - 1) * g->d[i] + 1;
    if (pad_mode == 1 || pad_mode == 2) {
      int64_t o = (g->in[i] + g->s[i] - 1) / g->s[i];
      int64_t total = (o - 1) * g->s[i] + ek - g->in[i];
      if (total < 0)
        total = 0;
      g->pb[i] = pad_mode == 1 ? total / 2 : total - total / 2;
      g->pe[i] = total - g->pb[i];
    } else if (pad_mode == 3) {
      g->pb[i] = g->pe[i] = 0;
    }
    int64_t span = g->in[i] + g->pb[i] + g->pe[i] - ek;
    if (span < 0)
      return false;
    g->out[i] = 1 + (ceil_mode ? (span + g->s[i] - 1) / g->s[i] : span / g->s[i]);
  }
  return true;
}

static void conv_case_act(rng *r, int it, const conv_geom *g0, int pad_mode, uint32_t dt,
                          bool bias, size_t threads, const test_act *act) {
  conv_geom g = *g0;
  int nsp = g.nsp;
  ck_assert(forward_geom(&g, pad_mode, false));
  int64_t xd[5] = {g.N, g.C}, wd[5] = {g.M, g.C / g.G}, yd[5] = {g.N, g.M};
  for (int i = 0; i < nsp; i++)
    xd[2 + i] = g.in[i], wd[2 + i] = g.k[i], yd[2 + i] = g.out[i];
  size_t xc = prod(xd, nsp + 2), wc = prod(wd, nsp + 2), yc = prod(yd, nsp + 2);
  double *x = rand_vals(r, dt, xc), *w = rand_vals(r, dt, wc);
  double *b = bias ? rand_vals(r, dt, (size_t)g.M) : NULL;
  cpu_direct *d = cpu_direct_new("Conv", it % 2 ? 11 : 1);
  set_window_attrs(d, &g, pad_mode, rnext(r) & 1, true);
  if (g.G > 1)
    cpu_direct_attr_int(d, "group", g.G);
  set_act_attrs(d, act);
  add_input(d, dt, nsp + 2, xd, x);
  add_input_c(d, dt, nsp + 2, wd, w, it % 3 != 0); /* constant: packed by prepare() */
  if (bias)
    add_input(d, dt, 1, &g.M, b);
  cpu_direct_output(d, dt, (uint32_t)nsp + 2, yd);
  RUN_OK(d, threads);
  double *ref = malloc((yc + 1) * sizeof *ref), *mag = malloc((yc + 1) * sizeof *mag);
  ref_conv(&g, x, w, b, ref, mag);
  if (act)
    for (size_t i = 0; i < yc; i++)
      ref[i] = ref_act(act, ref[i]), mag[i] *= 1.5;
  double atol, rtol, mtol;
  tol_for(dt, &atol, &rtol, &mtol);
  char what[160];
  snprintf(what, sizeof what, "Conv it %d %s %dD G=%lld C=%lld M=%lld pad_mode %d act %s", it,
           cpu_dtype_name(dt), nsp, (long long)g.G, (long long)g.C, (long long)g.M, pad_mode,
           act && act->name ? act->name : "none");
  expect_close(what, cpu_direct_out(d, 0), ref, mag, yc, atol, rtol, mtol);
  cpu_direct_free(d);
  free(x), free(w), free(b), free(ref), free(mag);
}

static void conv_case(rng *r, int it, const conv_geom *g0, int pad_mode, uint32_t dt, bool bias,
                      size_t threads) {
  conv_case_act(r, it, g0, pad_mode, dt, bias, threads, NULL);
}

START_TEST(test_conv_random) {
  rng r = {31337};
  for (int it = 0; it < 300; it++) {
    size_t threads = vary_env(it);
    conv_geom g = {.nsp = (int)rint_in(&r, 1, 3), .N = rint_in(&r, 1, 2)};
    int kind = it % 5; /* 0 depthwise, 1 pointwise, 2 grouped, 3-4 plain */
    int64_t cg = rint_in(&r, 1, 4), mg = rint_in(&r, 1, 4);
    g.G = kind == 0 ? rint_in(&r, 2, 5) : (kind == 2 ? rint_in(&r, 2, 3) : 1);
    if (kind == 0)
      cg = 1, mg = rint_in(&r, 1, 2);
    g.C = g.G * cg, g.M = g.G * mg;
    int pad_mode = kind == 1 ? 0 : (int)rint_in(&r, 0, 3);
    int64_t maxin = g.nsp == 3 ? 6 : (g.nsp == 2 ? 11 : 20);
    for (int i = 0; i < g.nsp; i++) {
      g.in[i] = rint_in(&r, 1, maxin);
      g.k[i] = kind == 1 ? 1 : rint_in(&r, 1, 3);
      g.s[i] = kind == 1 ? 1 : rint_in(&r, 1, 3);
      g.d[i] = kind == 1 ? 1 : rint_in(&r, 1, 2);
      g.pb[i] = kind == 1 ? 0 : rint_in(&r, 0, 2);
      g.pe[i] = kind == 1 ? 0 : rint_in(&r, 0, 2);
      /* Keep the dilated kernel within the padded input. */
      while ((g.k[i] - 1) * g.d[i] + 1 > g.in[i] + (pad_mode == 0 ? g.pb[i] + g.pe[i] : 0)) {
        if (g.d[i] > 1)
          g.d[i]--;
        else
          g.k[i]--;
      }
    }
    uint32_t dt =
        it % 7 == 5 ? TSR_DTYPE_FLOAT64 : (it % 7 == 6 ? TSR_DTYPE_FLOAT16 : TSR_DTYPE_FLOAT32);
    conv_case(&r, it, &g, pad_mode, dt, it % 3 != 0, threads);
  }
}
END_TEST

/* Shapes that take the tiled im2col path (several column tiles), item-parallel batches and
 * a depthwise layer of realistic size. */
/* Conv with a fused activation ("tessera.activation"), on its three float32 paths (depthwise,
 * pointwise, im2col, including several column tiles), float16, both ISAs; and the refusals:
 * an unknown activation, a wrong parameter count, float64. */
START_TEST(test_conv_activation) {
  rng r = {4242};
  for (int it = 0; it < 120; it++) {
    size_t threads = vary_env(it);
    conv_geom g = {.nsp = 2, .N = rint_in(&r, 1, 2)};
    int kind = it % 3; /* 0 depthwise, 1 pointwise, 2 plain */
    int64_t cg = rint_in(&r, 1, 5), mg = rint_in(&r, 1, 9);
    g.G = kind == 0 ? rint_in(&r, 2, 6) : 1;
    if (kind == 0)
      cg = 1, mg = rint_in(&r, 1, 2);
    g.C = g.G * cg, g.M = g.G * mg;
    for (int i = 0; i < 2; i++) {
      g.in[i] = rint_in(&r, 3, 19);
      g.k[i] = kind == 1 ? 1 : 3;
      g.s[i] = kind == 1 ? 1 : rint_in(&r, 1, 2);
      g.d[i] = 1;
      g.pb[i] = g.pe[i] = kind == 1 ? 0 : 1;
    }
    uint32_t dt = it % 10 == 9 ? TSR_DTYPE_FLOAT16 : TSR_DTYPE_FLOAT32;
    conv_case_act(&r, it, &g, 0, dt, it % 4 != 0, threads, &test_acts[1 + (it / 3) % (N_TEST_ACTS - 1)]);
  }
  /* Several im2col column tiles and a realistic pointwise layer. */
  conv_geom big = {.nsp = 2, .N = 1, .C = 64, .M = 24, .G = 1, .in = {40, 50}, .k = {3, 3},
                   .s = {1, 1}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}};
  conv_geom pw = {.nsp = 2, .N = 1, .C = 48, .M = 40, .G = 1, .in = {24, 40}, .k = {1, 1},
                  .s = {1, 1}, .d = {1, 1}};
  for (int it = 0; it < 4; it++) {
    size_t threads = vary_env(it);
    conv_case_act(&r, it, &big, 0, TSR_DTYPE_FLOAT32, true, threads, &test_acts[2 + it]);
    conv_case_act(&r, it, &pw, 0, TSR_DTYPE_FLOAT32, it & 1, threads, &test_acts[1 + it]);
  }
  setenv("TESSERA_CPU_GENERIC", "0", 1);
  int64_t xd[4] = {1, 2, 4, 4}, wd[4] = {3, 2, 3, 3}, yd[4] = {1, 3, 2, 2};
  static const struct {
    uint32_t dt;
    const char *act;
    size_t np;
    const char *needle;
  } bad[] = {{TSR_DTYPE_FLOAT32, "no_such_activation", 0, "unknown"},
             {TSR_DTYPE_FLOAT32, "clip", 1, "parameters"},
             {TSR_DTYPE_FLOAT64, "relu", 0, "float32"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cpu_direct *d = cpu_direct_new("Conv", 13);
    cpu_direct_attr_string(d, "tessera.activation", bad[i].act);
    if (bad[i].np)
      cpu_direct_attr_floats(d, "tessera.activation_params", bad[i].np, (float[]){0.5f});
    cpu_direct_input(d, bad[i].dt, 4, xd, NULL, false);
    cpu_direct_input(d, bad[i].dt, 4, wd, NULL, false);
    cpu_direct_output(d, bad[i].dt, 4, yd);
    char err[512];
    int rc = run(d, 1, err, sizeof err);
    ck_assert_int_eq(rc, TSR_PLUGIN_REASON_ATTRIBUTE);
    ck_assert_msg(strstr(err, bad[i].needle), "message '%s' lacks '%s'", err, bad[i].needle);
    cpu_direct_free(d);
  }
}
END_TEST

START_TEST(test_conv_large) {
  rng r = {99};
  conv_geom g = {.nsp = 2,
                 .N = 1,
                 .C = 64,
                 .M = 8,
                 .G = 1,
                 .in = {40, 50},
                 .k = {3, 3},
                 .s = {1, 1},
                 .d = {1, 1},
                 .pb = {1, 1},
                 .pe = {1, 1}};
  conv_case(&r, 0, &g, 0, TSR_DTYPE_FLOAT32, true, 2);
  setenv("TESSERA_CPU_GENERIC", "1", 1);
  conv_case(&r, 1, &g, 0, TSR_DTYPE_FLOAT32, true, 1);
  setenv("TESSERA_CPU_GENERIC", "0", 1);
  /* Depth 71 * 9 = 639: two packed KC blocks, the last one row shorter, with the weights
   * constant (packed by prepare(): odd iterations) and 13 output channels (a partial MR
   * panel). */
  conv_geom gk = g;
  gk.C = 71, gk.M = 13, gk.in[0] = 11, gk.in[1] = 37;
  conv_case(&r, 1, &gk, 0, TSR_DTYPE_FLOAT32, true, 2);
  conv_case(&r, 4, &gk, 0, TSR_DTYPE_FLOAT32, true, 1);
  /* Stride 2 with more than 64 output channels packs its panels from the input
   * (conv_pack_b); fewer read a phase-split copy in place. Both, on both ISAs. */
  conv_geom gs = g;
  gs.C = 5, gs.M = 131, gs.in[0] = 9, gs.in[1] = 23, gs.s[0] = 2, gs.s[1] = 2;
  conv_case(&r, 1, &gs, 0, TSR_DTYPE_FLOAT32, true, 2);
  setenv("TESSERA_CPU_GENERIC", "1", 1);
  conv_case(&r, 4, &gs, 0, TSR_DTYPE_FLOAT32, true, 1);
  setenv("TESSERA_CPU_GENERIC", "0", 1);
  gs.M = 12;
  conv_case(&r, 3, &gs, 0, TSR_DTYPE_FLOAT32, true, 2);
  /* A stem: three channels, stride 2, rows wide enough for the vectorised phase split (odd
   * and even widths and left pads, a dilated window). */
  conv_geom gst = gs;
  gst.C = 3, gst.M = 8, gst.in[0] = 13, gst.in[1] = 61;
  for (int v = 0; v < 4; v++) {
    gst.in[1] = 61 + v;
    gst.pb[1] = v & 1, gst.pe[1] = (v >> 1) + 1, gst.d[1] = v == 3 ? 2 : 1;
    setenv("TESSERA_CPU_GENERIC", v == 2 ? "1" : "0", 1);
    conv_case(&r, v, &gst, 0, TSR_DTYPE_FLOAT32, v & 1, v == 1 ? 2 : 1);
  }
  /* A stem into 32 or more channels packs its panels straight from the image, two columns a
   * vector apart deinterleaved with AVX2 where a whole panel's reads lie inside the row
   * (conv_is_rgb_stem): rows of 97 to 100, a partial MR panel of channels. */
  gst.M = 33;
  for (int v = 0; v < 4; v++) {
    gst.in[1] = 97 + v;
    gst.pb[1] = v & 1, gst.pe[1] = (v >> 1) + 1, gst.d[1] = v == 3 ? 2 : 1;
    setenv("TESSERA_CPU_GENERIC", v == 2 ? "1" : "0", 1);
    conv_case(&r, v, &gst, 0, TSR_DTYPE_FLOAT32, v & 1, v == 1 ? 2 : 1);
  }
  setenv("TESSERA_CPU_GENERIC", "0", 1);
  conv_geom g2 = {.nsp = 2,
                  .N = 4,
                  .C = 6,
                  .M = 10,
                  .G = 2,
                  .in = {9, 13},
                  .k = {3, 2},
                  .s = {2, 1},
                  .d = {1, 2},
                  .pb = {1, 0},
                  .pe = {0, 1}};
  conv_case(&r, 2, &g2, 0, TSR_DTYPE_FLOAT32, true, 3);
  conv_geom g3 = {.nsp = 2,
                  .N = 1,
                  .C = 32,
                  .M = 32,
                  .G = 32,
                  .in = {56, 56},
                  .k = {3, 3},
                  .s = {1, 1},
                  .d = {1, 1},
                  .pb = {1, 1},
                  .pe = {1, 1}};
  conv_case(&r, 3, &g3, 0, TSR_DTYPE_FLOAT32, true, 2);
  conv_geom g4 = {.nsp = 2,
                  .N = 2,
                  .C = 48,
                  .M = 40,
                  .G = 1,
                  .in = {14, 15},
                  .k = {1, 1},
                  .s = {1, 1},
                  .d = {1, 1}};
  conv_case(&r, 4, &g4, 0, TSR_DTYPE_FLOAT32, false, 2);
}
END_TEST

/* Pointwise Conv over small planes, which conv.c computes transposed (positions as the GEMM's
 * rows, W^T packed by prepare(), the result transposed into the output with the bias and the
 * activation): planes of 49, 7, 17, 2, 1 and 196 positions, output channels that are not a
 * multiple of 16 or of 8, shallow and deep inputs (two KC blocks), strides, every activation,
 * batches of two; and the cases that stay with the plain path (groups, one position, weights
 * that are not constant). TESSERA_CPU_PWT forces the transposed product on (1), off (0), or
 * leaves the choice to its cost (unset); vary_env alternates the ISA and the thread count. */
START_TEST(test_conv_pointwise_small) {
  rng r = {777};
  static const struct {
    int nsp;
    int64_t N, C, M, G, in[3], s[3];
  } cases[] = {
      {2, 1, 512, 1000, 1, {7, 7}, {1, 1}},    /* ResNet's 7x7 stage, deep: two KC blocks */
      {2, 1, 24, 1001, 1, {7, 7}, {1, 1}},     /* shallow; M % 8 == 1 */
      {2, 2, 40, 64, 1, {1, 7}, {1, 1}},       /* seven positions, a batch of two */
      {1, 1, 100, 20, 1, {17}, {1}},           /* 1-D, 17 positions, M = 20 */
      {2, 1, 96, 36, 1, {1, 2}, {1, 1}},       /* two positions */
      {2, 1, 300, 48, 1, {1, 1}, {1, 1}},      /* one position */
      {2, 1, 64, 100, 1, {14, 14}, {1, 1}},    /* 196 positions */
      {2, 1, 256, 200, 1, {14, 14}, {2, 2}},   /* ResNet's downsampling: 14x14 to 7x7 */
      {2, 2, 70, 130, 1, {13, 9}, {2, 2}},     /* odd sizes, stride 2, a batch of two */
      {3, 1, 33, 50, 1, {3, 5, 6}, {2, 1, 3}}, /* 3-D, mixed strides */
      /* Strided over more than STRIDED_PW_MIN_C (128) channels: subsampled, then stride 1
       * (conv.c). */
      {2, 2, 160, 72, 1, {11, 9}, {2, 2}},
      {3, 1, 136, 24, 1, {3, 5, 6}, {2, 1, 3}},
      {2, 1, 64, 64, 2, {7, 7}, {1, 1}},       /* groups: the plain path */
      {2, 2, 160, 960, 1, {7, 7}, {1, 1}},     /* MobileNet's 7x7 expansion, batch of two */
      {2, 1, 256, 40, 1, {14, 14}, {1, 1}},    /* few channels: threads split the positions */
  };
  int it = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int v = 0; v < 6; v++, it++) {
      size_t threads = vary_env(it);
      static const char *const force[] = {"1", "1", "", "0", "1", ""};
      setenv("TESSERA_CPU_PWT", force[v], 1);
      conv_geom g = {.nsp = cases[c].nsp, .N = cases[c].N, .C = cases[c].C, .M = cases[c].M,
                     .G = cases[c].G};
      for (int i = 0; i < g.nsp; i++)
        g.in[i] = cases[c].in[i], g.k[i] = 1, g.s[i] = cases[c].s[i], g.d[i] = 1;
      /* conv_case_act makes the weights constant (packed by prepare()) unless 3 divides its
       * iteration: v == 5 runs with weights given at run time. */
      int cit = v == 5 ? 3 * it : 3 * it + 1 + v % 2;
      const test_act *act = &test_acts[(c + (size_t)v) % N_TEST_ACTS];
      conv_case_act(&r, cit, &g, 0, TSR_DTYPE_FLOAT32, (c + (size_t)v) % 3 != 2, threads,
                    act->name ? act : NULL);
    }
  /* relu, clip and silu on a deep 7x7 layer, each ISA, with and without a bias. */
  conv_geom g = {.nsp = 2, .N = 1, .C = 384, .M = 272, .G = 1, .in = {7, 7}, .k = {1, 1},
                 .s = {1, 1}, .d = {1, 1}};
  static const int acts[] = {1, 2, 7};
  for (int v = 0; v < 6; v++, it++) {
    size_t threads = vary_env(it);
    setenv("TESSERA_CPU_PWT", "1", 1);
    conv_case_act(&r, 1, &g, 0, TSR_DTYPE_FLOAT32, v < 3, threads, &test_acts[acts[v % 3]]);
  }
  unsetenv("TESSERA_CPU_PWT");
  setenv("TESSERA_CPU_GENERIC", "0", 1);
}
END_TEST

/* 3x3 stride-1 Conv by Winograd's F(2x2, 3x3) (conv_wino.c), against float64: planes with odd
 * and even sides (a last tile half outside the output), one and two tiles across, tile rows
 * more than one band holds (48 + 40 channels over 40x40: three bands, the last short; enough
 * bands that each thread takes whole ones, with two and three threads), batches
 * of two, padding absent, asymmetric or larger than the kernel, SAME padding, the activations
 * the output transform applies itself (relu, clip) and those applied to finished rows, with
 * and without a bias. TESSERA_CPU_WINOGRAD forces the path on (1) or leaves it to its cost
 * (unset); vary_env alternates the ISA and the thread count. */
START_TEST(test_conv_winograd) {
  rng r = {4242};
  static const struct {
    int64_t N, C, M, in[2], pb[2], pe[2];
    int pad_mode;
  } cases[] = {
      {1, 32, 40, {14, 14}, {1, 1}, {1, 1}, 0}, /* ResNet's 14x14 stage, narrower */
      {1, 48, 40, {40, 40}, {1, 1}, {1, 1}, 0}, /* three bands */
      {2, 33, 35, {13, 29}, {1, 1}, {1, 1}, 0}, /* odd sides, a batch of two */
      {1, 5, 7, {5, 7}, {0, 2}, {2, 0}, 0},     /* asymmetric padding, few channels */
      {1, 16, 12, {3, 3}, {0, 0}, {0, 0}, 0},   /* unpadded: one output */
      {1, 9, 10, {2, 17}, {1, 1}, {1, 1}, 0},   /* one tile row */
      {1, 20, 24, {6, 4}, {3, 2}, {4, 3}, 0},   /* pads beyond the kernel */
      {2, 40, 36, {15, 16}, {0, 0}, {0, 0}, 1}, /* SAME_UPPER */
      {1, 64, 64, {28, 28}, {1, 1}, {1, 1}, 2}, /* SAME_LOWER, ResNet's 28x28 stage */
      {1, 32, 24, {150, 40}, {1, 1}, {1, 1}, 0}, /* seven bands: whole bands (three threads) */
      {1, 32, 32, {64, 64}, {1, 1}, {1, 1}, 0}, /* four bands: whole bands a thread (two) */
  };
  static const int acts[] = {0, 1, 2, 7, 5, 6};
  int it = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int v = 0; v < 4; v++, it++) {
      size_t threads = vary_env(it);
      setenv("TESSERA_CPU_WINOGRAD", v < 3 ? "1" : "", 1);
      conv_geom g = {.nsp = 2, .N = cases[c].N, .C = cases[c].C, .M = cases[c].M, .G = 1};
      for (int i = 0; i < 2; i++)
        g.in[i] = cases[c].in[i], g.k[i] = 3, g.s[i] = 1, g.d[i] = 1, g.pb[i] = cases[c].pb[i],
        g.pe[i] = cases[c].pe[i];
      const test_act *act = &test_acts[acts[(c + (size_t)v) % 6]];
      /* conv_case_act makes the weights constant, which the path needs, unless 3 divides
       * its iteration. */
      conv_case_act(&r, 3 * it + 1 + v % 2, &g, cases[c].pad_mode, TSR_DTYPE_FLOAT32,
                    (c + (size_t)v) % 3 != 2, threads, act->name ? act : NULL);
    }
  unsetenv("TESSERA_CPU_WINOGRAD");
  setenv("TESSERA_CPU_GENERIC", "0", 1);
}
END_TEST

/* The same path with a fused residual: Relu(x) -> 1x1 Conv -> Add -> (Relu), which the CPU
 * plugin takes into the Conv (cpu_node.residual), through a session. The residual is a graph
 * input r (added second or first), or the Conv's own input (C == M), whose memory the plan may
 * give the output. Compared with float64, each case on both ISAs (a runtime each) and with the
 * transposed product forced on, off, or chosen by cost. */
typedef struct pw_res_case {
  int64_t N, C, M, hw, s;
  int kind; /* 0: Add(conv, r), 1: Add(r, conv), 2: Add(conv, relu(x)) */
  bool relu;
} pw_res_case;

static void pw_residual_run(const pw_res_case *pc, bool generic, const char *force,
                            size_t threads) {
  int64_t ho = (pc->hw - 1) / pc->s + 1;
  int64_t xd[] = {pc->N, pc->C, pc->hw, pc->hw}, rd[] = {pc->N, pc->M, ho, ho};
  int64_t wd[] = {pc->M, pc->C, 1, 1}, bd[] = {pc->M};
  size_t xn = prod(xd, 4), rn = prod(rd, 4), wn = prod(wd, 4);
  rng r = {(uint64_t)(pc->C * 131 + pc->M * 7 + pc->kind)};
  float *xv = malloc(xn * sizeof *xv), *rv = malloc(rn * sizeof *rv);
  float *wv = malloc(wn * sizeof *wv), *bv = malloc((size_t)pc->M * sizeof *bv);
  for (size_t i = 0; i < xn; i++)
    xv[i] = (float)runi(&r);
  for (size_t i = 0; i < rn; i++)
    rv[i] = (float)runi(&r);
  for (size_t i = 0; i < wn; i++)
    wv[i] = (float)(runi(&r) / sqrt((double)pc->C));
  for (int64_t i = 0; i < pc->M; i++)
    bv[i] = (float)runi(&r);
  mb_model *m = mb_new(13);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  if (pc->kind != 2)
    mb_input(m, "r", TSR_DTYPE_FLOAT32, 4, rd);
  mb_init_f32(m, "w", 4, wd, wv);
  mb_init_f32(m, "b", 1, bd, bv);
  mb_node(m, "Relu", "pre", "x", "t");
  mb_node(m, "Conv", "conv", "t,w,b", "c");
  mb_attr_ints(m, "strides", 2, (int64_t[]){pc->s, pc->s});
  static const char *const adds[] = {"c,r", "r,c", "c,t"};
  mb_node(m, "Add", "add", adds[pc->kind], pc->relu ? "u" : "y");
  if (pc->relu)
    mb_node(m, "Relu", "post", "u", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  size_t size;
  void *data = mb_serialize(m, &size);
  mb_free(m);

  setenv("TESSERA_CPU_GENERIC", generic ? "1" : "0", 1);
  setenv("TESSERA_CPU_PWT", force, 1);
  tsr_runtime *rt = NULL;
  ck_assert_ok(tsr_runtime_create(NULL, &rt));
  tsr_model *model = NULL;
  ck_assert_ok(tsr_model_load_memory(rt, data, size, NULL, &model));
  tsr_session_options so = {sizeof so};
  so.threads = threads;
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  tsr_tensor *in[2] = {NULL, NULL}, *y = NULL;
  ck_assert_ok(tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, 4, xd, xv, xn * sizeof *xv, &in[0]));
  ck_assert_ok(tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, 4, rd, rv, rn * sizeof *rv, &in[1]));
  const char *names[] = {"x", "r"}, *outs[] = {"y"};
  ck_assert_ok(tsr_session_run(s, NULL, pc->kind == 2 ? 1 : 2, names,
                               (const tsr_tensor *const *)in, 1, outs, &y));
  ck_assert_uint_eq(tsr_tensor_element_count(y), rn);
  const float *got = tsr_tensor_data(y);
  for (int64_t n = 0; n < pc->N; n++)
    for (int64_t o = 0; o < pc->M; o++)
      for (int64_t oy = 0; oy < ho; oy++)
        for (int64_t ox = 0; ox < ho; ox++) {
          double sum = bv[o], mag = fabs(bv[o]);
          for (int64_t c = 0; c < pc->C; c++) {
            double xin = xv[((n * pc->C + c) * pc->hw + oy * pc->s) * pc->hw + ox * pc->s];
            double t = xin < 0 ? 0 : xin, pr = t * wv[o * pc->C + c];
            sum += pr, mag += fabs(pr);
          }
          size_t yi = (size_t)(((n * pc->M + o) * ho + oy) * ho + ox);
          double res = pc->kind == 2 ? (xv[yi] < 0 ? 0 : xv[yi]) : rv[yi];
          double want = sum + res;
          if (pc->relu && want < 0)
            want = 0;
          double tol = 1e-6 + 1e-5 * fabs(want) + 4e-6 * (mag + fabs(res));
          ck_assert_msg(fabs(got[yi] - want) <= tol,
                        "residual case C=%lld M=%lld hw=%lld s=%lld kind %d relu %d generic %d "
                        "pwt '%s': element %zu is %.9g, expected %.9g",
                        (long long)pc->C, (long long)pc->M, (long long)pc->hw, (long long)pc->s,
                        pc->kind, pc->relu, generic, force, yi, got[yi], want);
        }
  tsr_tensor_destroy(y);
  tsr_tensor_destroy(in[0]);
  tsr_tensor_destroy(in[1]);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
  tsr_runtime_destroy(rt);
  free(data), free(xv), free(rv), free(wv), free(bv);
}

START_TEST(test_conv_pointwise_residual) {
  static const pw_res_case cases[] = {
      {1, 512, 1000, 7, 1, 0, true},  /* ResNet's last stage, deep: two KC blocks */
      {2, 200, 328, 7, 1, 1, false},  /* a batch of two, the residual added first */
      {1, 320, 320, 7, 1, 2, true},   /* the residual is the Conv's input */
      {1, 256, 200, 14, 2, 0, true},  /* stride 2 */
      {1, 96, 40, 3, 1, 0, false},    /* nine positions */
      {1, 256, 40, 14, 1, 1, true},   /* few channels: threads split the positions */
  };
  static const char *const force[] = {"1", "", "0"};
  int it = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int v = 0; v < 3; v++, it++)
      pw_residual_run(&cases[c], it & 1, force[v], it % 3 == 2 ? 1 : 2);
  unsetenv("TESSERA_CPU_PWT");
  setenv("TESSERA_CPU_GENERIC", "0", 1);
}
END_TEST

/* ConvTranspose: out = s * (in - 1) + output_padding + (k - 1) * d + 1 - pads, with pads from
 * output_shape or auto_pad as the spec says (total padding clamped at 0). */
static void convt_case(rng *r, int it, conv_geom g, int mode, const int64_t *opad,
                       const int64_t *oshape, uint32_t dt, bool bias, size_t threads) {
  int nsp = g.nsp;
  for (int i = 0; i < nsp; i++) {
    int64_t ek = (g.k[i] - 1) * g.d[i] + 1;
    int64_t full = g.s[i] * (g.in[i] - 1) + opad[i] + ek;
    int64_t total = -1;
    if (oshape) {
      total = full - oshape[i];
      if (total < 0)
        total = 0;
    } else if (mode == 1 || mode == 2) {
      total = ek - g.s[i] > 0 ? ek - g.s[i] : 0;
    } else if (mode == 3) {
      g.pb[i] = g.pe[i] = 0;
    }
    if (total >= 0) {
      g.pb[i] = mode == 1 ? total / 2 : total - total / 2;
      g.pe[i] = total - g.pb[i];
    }
    g.out[i] = oshape ? oshape[i] : full - g.pb[i] - g.pe[i];
    ck_assert_int_ge(g.out[i], 0);
  }
  int64_t xd[5] = {g.N, g.C}, wd[5] = {g.C, g.M / g.G}, yd[5] = {g.N, g.M};
  for (int i = 0; i < nsp; i++)
    xd[2 + i] = g.in[i], wd[2 + i] = g.k[i], yd[2 + i] = g.out[i];
  size_t xc = prod(xd, nsp + 2), wc = prod(wd, nsp + 2), yc = prod(yd, nsp + 2);
  double *x = rand_vals(r, dt, xc), *w = rand_vals(r, dt, wc);
  double *b = bias ? rand_vals(r, dt, (size_t)g.M) : NULL;
  cpu_direct *d = cpu_direct_new("ConvTranspose", it % 2 ? 11 : 1);
  set_window_attrs(d, &g, oshape ? 4 : mode, rnext(r) & 1, true);
  if (oshape && mode >= 1 && mode <= 2)
    cpu_direct_attr_string(d, "auto_pad", mode == 1 ? "SAME_UPPER" : "SAME_LOWER");
  if (oshape)
    cpu_direct_attr_ints(d, "output_shape", (size_t)nsp, oshape);
  bool any_op = false;
  for (int i = 0; i < nsp; i++)
    any_op = any_op || opad[i];
  if (any_op || it % 3 == 0)
    cpu_direct_attr_ints(d, "output_padding", (size_t)nsp, opad);
  if (g.G > 1)
    cpu_direct_attr_int(d, "group", g.G);
  add_input(d, dt, nsp + 2, xd, x);
  add_input(d, dt, nsp + 2, wd, w);
  if (bias)
    add_input(d, dt, 1, &g.M, b);
  cpu_direct_output(d, dt, (uint32_t)nsp + 2, yd);
  RUN_OK(d, threads);
  double *ref = malloc((yc + 1) * sizeof *ref), *mag = malloc((yc + 1) * sizeof *mag);
  ref_convt(&g, x, w, b, ref, mag);
  double atol, rtol, mtol;
  tol_for(dt, &atol, &rtol, &mtol);
  char what[160];
  snprintf(what, sizeof what, "ConvTranspose it %d %s %dD G=%lld mode %d oshape %d", it,
           cpu_dtype_name(dt), nsp, (long long)g.G, mode, oshape != NULL);
  expect_close(what, cpu_direct_out(d, 0), ref, mag, yc, atol, rtol, mtol);
  cpu_direct_free(d);
  free(x), free(w), free(b), free(ref), free(mag);
}

START_TEST(test_convtranspose_random) {
  rng r = {2718};
  for (int it = 0; it < 240; it++) {
    size_t threads = vary_env(it);
    conv_geom g = {.nsp = (int)rint_in(&r, 1, 3), .N = rint_in(&r, 1, 2)};
    g.G = it % 4 == 0 ? rint_in(&r, 2, 3) : 1;
    g.C = g.G * rint_in(&r, 1, 3);
    g.M = g.G * rint_in(&r, 1, 3);
    int mode = (int)rint_in(&r, 0, 3); /* explicit pads, SAME_UPPER, SAME_LOWER, VALID */
    bool use_oshape = it % 5 == 4;
    int64_t opad[3] = {0, 0, 0}, oshape[3];
    int64_t maxin = g.nsp == 3 ? 4 : (g.nsp == 2 ? 7 : 12);
    for (int i = 0; i < g.nsp; i++) {
      g.in[i] = rint_in(&r, 1, maxin);
      g.k[i] = rint_in(&r, 1, 3);
      g.s[i] = rint_in(&r, 1, 3);
      g.d[i] = rint_in(&r, 1, 2);
      if (mode == 0) {
        g.pb[i] = rint_in(&r, 0, g.k[i] - 1);
        g.pe[i] = rint_in(&r, 0, g.k[i] - 1);
      }
      /* output_padding must stay below the stride or the dilation. */
      int64_t lim = (g.s[i] > g.d[i] ? g.s[i] : g.d[i]) - 1;
      if (rnext(&r) & 1)
        opad[i] = rint_in(&r, 0, lim);
      int64_t full = g.s[i] * (g.in[i] - 1) + opad[i] + (g.k[i] - 1) * g.d[i] + 1;
      oshape[i] = full - rint_in(&r, -2, 2);
      if (oshape[i] < 1)
        oshape[i] = 1;
      if (mode == 0 && full - g.pb[i] - g.pe[i] < 1)
        g.pb[i] = g.pe[i] = 0;
    }
    uint32_t dt =
        it % 7 == 5 ? TSR_DTYPE_FLOAT64 : (it % 7 == 6 ? TSR_DTYPE_FLOAT16 : TSR_DTYPE_FLOAT32);
    convt_case(&r, it, g, mode, opad, use_oshape ? oshape : NULL, dt, it % 3 != 1, threads);
  }
}
END_TEST

/* Upsampling ConvTranspose, the kernel as wide as the stride with no padding, so that each
 * output takes one product per input channel (conv.c's convt_disjoint: col2im stores with the
 * bias rather than adding onto a zeroed output): 2x2 by 2 as detectors and U-Nets write it, 3x3
 * by 3, 4 by 4 in 1-D, 2x2x2 in 3-D, one and two groups, with and without bias, batches of
 * two, on 1 and 3 threads; and beside them the same with an output padding or a pad, which
 * take the general path, against float64. */
START_TEST(test_convtranspose_upsample) {
  rng r = {4711};
  static const struct {
    int nsp;
    int64_t k, in, G, opad, pad;
  } cases[] = {{2, 2, 7, 1, 0, 0}, {2, 2, 9, 2, 0, 0}, {2, 3, 5, 1, 0, 0}, {1, 4, 11, 1, 0, 0},
               {3, 2, 3, 1, 0, 0}, {2, 2, 7, 1, 1, 0}, {2, 2, 7, 1, 0, 1}};
  for (int it = 0; it < (int)(sizeof cases / sizeof cases[0]) * 2; it++) {
    int c = it / 2;
    conv_geom g = {.nsp = cases[c].nsp, .N = 1 + it % 2, .G = cases[c].G};
    g.C = g.G * 3;
    g.M = g.G * (it % 2 ? 4 : 8);
    int64_t opad[3] = {0, 0, 0};
    for (int i = 0; i < g.nsp; i++) {
      g.in[i] = cases[c].in + i;
      g.k[i] = g.s[i] = cases[c].k;
      g.d[i] = 1;
      g.pb[i] = g.pe[i] = cases[c].pad;
      opad[i] = cases[c].opad;
    }
    convt_case(&r, 3 * it + 1, g, 0, opad, NULL, TSR_DTYPE_FLOAT32, it % 2 == 0, it % 2 ? 3 : 1);
  }
}
END_TEST

START_TEST(test_convtranspose_large) {
  rng r = {5};
  int64_t opad[3] = {1, 0, 0};
  /* Enough input columns and output rows to need several col2im tiles. */
  conv_geom g = {.nsp = 2,
                 .N = 1,
                 .C = 16,
                 .M = 160,
                 .G = 1,
                 .in = {60, 70},
                 .k = {3, 3},
                 .s = {2, 2},
                 .d = {1, 1},
                 .pb = {1, 1},
                 .pe = {1, 1}};
  convt_case(&r, 0, g, 0, opad, NULL, TSR_DTYPE_FLOAT32, true, 2);
  conv_geom g2 = {.nsp = 2,
                  .N = 3,
                  .C = 8,
                  .M = 6,
                  .G = 2,
                  .in = {5, 6},
                  .k = {1, 1},
                  .s = {1, 1},
                  .d = {1, 1}};
  int64_t zero[3] = {0, 0, 0};
  convt_case(&r, 1, g2, 0, zero, NULL, TSR_DTYPE_FLOAT32, true, 3);
}
END_TEST

/* From the ONNX backend tests: arange inputs and all-ones weights. */
START_TEST(test_conv_onnx_cases) {
  float x[35], w[9], b[1] = {0};
  for (int i = 0; i < 35; i++)
    x[i] = (float)i;
  for (int i = 0; i < 9; i++)
    w[i] = 1.0f;
  int64_t xd[4] = {1, 1, 7, 5}, wd[4] = {1, 1, 3, 3}, yd[4] = {1, 1, 4, 2};
  int64_t ks[2] = {3, 3}, pads[4] = {1, 0, 1, 0}, st[2] = {2, 2};
  cpu_direct *d = cpu_direct_new("Conv", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, ks);
  cpu_direct_attr_ints(d, "pads", 4, pads);
  cpu_direct_attr_ints(d, "strides", 2, st);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, x, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, wd, w, true);
  (void)b;
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  RUN_OK(d, 1);
  static const double want[8] = {21, 33, 99, 117, 189, 207, 171, 183};
  expect_close("conv_with_strides_and_asymmetric_padding", cpu_direct_out(d, 0), want, NULL, 8,
               1e-5, 0, 0);
  cpu_direct_free(d);

  /* ConvTranspose SAME_UPPER, stride 2: the extra padding goes to the end. */
  float w2[18];
  for (int i = 0; i < 18; i++)
    w2[i] = 1.0f;
  int64_t xd2[4] = {1, 1, 3, 3}, wd2[4] = {1, 2, 3, 3}, yd2[4] = {1, 2, 6, 6};
  d = cpu_direct_new("ConvTranspose", 11);
  cpu_direct_attr_string(d, "auto_pad", "SAME_UPPER");
  cpu_direct_attr_ints(d, "strides", 2, st);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd2, x, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, wd2, w2, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd2);
  RUN_OK(d, 1);
  static const double plane[36] = {0, 0, 1, 1, 3, 2, 0, 0, 1,  1,  3,  2,  3, 3, 8,  5, 12, 7,
                                   3, 3, 7, 4, 9, 5, 9, 9, 20, 11, 24, 13, 6, 6, 13, 7, 15, 8};
  double want2[72];
  for (int i = 0; i < 72; i++)
    want2[i] = plane[i % 36]; /* both output channels */
  expect_close("convtranspose_autopad_same", cpu_direct_out(d, 0), want2, NULL, 72, 1e-5, 0, 0);
  cpu_direct_free(d);

  /* output_shape larger than the full output: the last row and column stay zero. */
  int64_t os[2] = {10, 8}, st2[2] = {3, 2}, yd3[4] = {1, 2, 10, 8};
  d = cpu_direct_new("ConvTranspose", 11);
  cpu_direct_attr_ints(d, "output_shape", 2, os);
  cpu_direct_attr_ints(d, "strides", 2, st2);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd2, x, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, wd2, w2, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd3);
  RUN_OK(d, 2);
  static const double row0[8] = {0, 0, 1, 1, 3, 2, 2, 0}, row3[8] = {3, 3, 7, 4, 9, 5, 5, 0};
  const float *y3 = cpu_direct_out(d, 0)->data;
  for (int j = 0; j < 8; j++) {
    ck_assert_double_eq_tol(y3[j], row0[j], 1e-6);
    ck_assert_double_eq_tol(y3[3 * 8 + j], row3[j], 1e-6);
    ck_assert_double_eq(y3[9 * 8 + j], 0.0);
  }
  cpu_direct_free(d);
}
END_TEST

START_TEST(test_conv_errors) {
  int64_t xd[4] = {1, 4, 5, 5}, wd[4] = {2, 3, 3, 3}, yd[4] = {1, 2, 3, 3};
  cpu_direct *d = cpu_direct_new("Conv", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, wd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, "does not fit");
  cpu_direct_free(d);

  int64_t wd2[4] = {2, 4, 3, 3}, ybad[4] = {1, 2, 4, 3};
  d = cpu_direct_new("Conv", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, wd2, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, ybad);
  expect_fail(d, "output spatial dim 0");
  cpu_direct_free(d);

  d = cpu_direct_new("Conv", 11);
  cpu_direct_attr_string(d, "auto_pad", "SAME_MIDDLE");
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, wd2, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, "auto_pad");
  cpu_direct_free(d);

  int64_t st[3] = {1, 1, 1};
  d = cpu_direct_new("Conv", 11);
  cpu_direct_attr_ints(d, "strides", 3, st);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, wd2, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, "strides");
  cpu_direct_free(d);

  int64_t ks[2] = {2, 2};
  d = cpu_direct_new("Conv", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, ks);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, wd2, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, "kernel_shape");
  cpu_direct_free(d);

  int64_t x6[6] = {1, 1, 2, 2, 2, 2}, w6[6] = {1, 1, 1, 1, 1, 1};
  d = cpu_direct_new("Conv", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 6, x6, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 6, w6, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 6, x6);
  expect_fail(d, "implemented");
  cpu_direct_free(d);

  int64_t bd[1] = {3};
  d = cpu_direct_new("Conv", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, wd2, NULL, true);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, bd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, "B [3]");
  cpu_direct_free(d);

  d = cpu_direct_new("Conv", 11);
  cpu_direct_input(d, TSR_DTYPE_INT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_INT32, 4, wd2, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_INT32, 4, yd);
  expect_fail(d, "int32");
  cpu_direct_free(d);

  int64_t twd[4] = {4, 2, 3, 3}, tyd[4] = {1, 2, 8, 7};
  d = cpu_direct_new("ConvTranspose", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, twd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, tyd);
  expect_fail(d, "output spatial dim 0 is 8, expected 7");
  cpu_direct_free(d);

  /* run() without check(): the output is one row short. */
  float *xb = calloc(100, sizeof(float)), *wb = calloc(72, sizeof(float)),
        *yb = calloc(18, sizeof(float));
  int64_t ylong[4] = {1, 2, 4, 3};
  cpu_tensor in[2] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, xd, xb),
                      mk_tensor(TSR_DTYPE_FLOAT32, 4, wd2, wb)};
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, ylong, yb)};
  out[0].count = 18;
  expect_run_fail("Conv", 11, 2, in, 1, out, "output spatial dim");
  cpu_tensor tin[2] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, xd, xb),
                       mk_tensor(TSR_DTYPE_FLOAT32, 4, twd, wb)};
  expect_run_fail("ConvTranspose", 11, 2, tin, 1, out, "output spatial dim");
  free(xb), free(wb), free(yb);
}
END_TEST

/* ---- Pools ---------------------------------------------------------------------------- */

enum { PK_MAX, PK_AVG, PK_LP };

typedef struct pool_ref_args {
  int kind;
  bool count_include_pad, col_major;
  double p;
} pool_ref_args;

/* Windows clip to the input; a window with no input element gives 0 (and index 0 of its
 * plane); count_include_pad counts taps inside the padded input. */
static void ref_pool(const conv_geom *g, const pool_ref_args *a, const double *x, double *y,
                     int64_t *ind) {
  int nsp = g->nsp;
  size_t isp = prod(g->in, nsp), osp = prod(g->out, nsp);
  for (int64_t pl = 0; pl < g->N * g->C; pl++) {
    int64_t o[3] = {0, 0, 0};
    size_t yi = (size_t)pl * osp;
    do {
      double acc = 0;
      int64_t cnt = 0, padded = 0, best = -1;
      int64_t kv[3] = {0, 0, 0};
      do {
        int64_t iv[3];
        bool inside = true, in_padded = true;
        for (int i = 0; i < nsp; i++) {
          iv[i] = o[i] * g->s[i] - g->pb[i] + kv[i] * g->d[i];
          inside = inside && iv[i] >= 0 && iv[i] < g->in[i];
          in_padded = in_padded && iv[i] >= -g->pb[i] && iv[i] < g->in[i] + g->pe[i];
        }
        padded += in_padded;
        if (!inside)
          continue;
        size_t at = offset_of(iv, g->in, nsp);
        double v = x[(size_t)pl * isp + at];
        if (a->kind == PK_MAX) {
          if (best < 0 || v > acc) {
            acc = v;
            if (a->col_major) {
              size_t cm = 0;
              for (int i = nsp - 1; i >= 0; i--)
                cm = cm * (size_t)g->in[i] + (size_t)iv[i];
              at = cm;
            }
            best = (int64_t)at;
          }
        } else if (a->kind == PK_AVG) {
          acc += v;
        } else {
          acc += pow(fabs(v), a->p);
        }
        cnt++;
      } while (next_index(kv, g->k, nsp));
      if (a->kind == PK_AVG) {
        int64_t div = a->count_include_pad ? padded : cnt;
        acc = div ? acc / (double)div : 0;
      } else if (a->kind == PK_LP) {
        acc = pow(acc, 1.0 / a->p);
      }
      y[yi] = acc;
      if (ind)
        ind[yi] = pl * (int64_t)isp + (best < 0 ? 0 : best);
      yi++;
    } while (next_index(o, g->out, nsp));
  }
}

START_TEST(test_pool_random) {
  rng r = {8088};
  static const uint32_t max_dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16,
                                     TSR_DTYPE_INT8,    TSR_DTYPE_UINT8,   TSR_DTYPE_FLOAT32};
  static const uint32_t avg_dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16,
                                     TSR_DTYPE_FLOAT32};
  static const char *const names[] = {"MaxPool", "AveragePool", "LpPool"};
  for (int it = 0; it < 420; it++) {
    size_t threads = vary_env(it);
    int kind = it % 3;
    int64_t opset = kind == PK_MAX ? (it % 4 == 0 ? 8 : 12) : (it % 4 == 0 ? 7 : 11);
    bool ceil_mode = kind != PK_LP && opset >= 10 && (rnext(&r) % 3 == 0);
    /* Dilations exist from MaxPool-10; when the attribute is left out they are 1. */
    bool dil = kind == PK_MAX && opset >= 10 && (rnext(&r) & 1);
    conv_geom g = {.nsp = (int)rint_in(&r, 1, 3), .N = rint_in(&r, 1, 2), .C = rint_in(&r, 1, 3)};
    int pad_mode = (int)rint_in(&r, 0, 3);
    if (ceil_mode && pad_mode != 0)
      pad_mode = 0;
    int64_t maxin = g.nsp == 3 ? 6 : (g.nsp == 2 ? 10 : 20);
    for (int i = 0; i < g.nsp; i++) {
      g.in[i] = rint_in(&r, 1, maxin);
      g.k[i] = rint_in(&r, 1, 4);
      g.s[i] = rint_in(&r, 1, 3);
      g.d[i] = dil ? rint_in(&r, 1, 2) : 1;
      g.pb[i] = rint_in(&r, 0, g.k[i] - 1);
      g.pe[i] = rint_in(&r, 0, g.k[i] - 1);
      while ((g.k[i] - 1) * g.d[i] + 1 > g.in[i] + (pad_mode == 0 ? g.pb[i] + g.pe[i] : 0)) {
        if (g.d[i] > 1)
          g.d[i]--;
        else
          g.k[i]--;
      }
      if (g.pb[i] >= g.k[i])
        g.pb[i] = g.k[i] - 1;
      if (g.pe[i] >= g.k[i])
        g.pe[i] = g.k[i] - 1;
    }
    ck_assert(forward_geom(&g, pad_mode, ceil_mode));
    pool_ref_args a = {.kind = kind, .p = 2};
    uint32_t dt = kind == PK_MAX ? max_dts[(it / 3) % 6] : avg_dts[(it / 3) % 4];
    cpu_direct *d = cpu_direct_new(names[kind], opset);
    set_window_attrs(d, &g, pad_mode, true, dil);
    if (ceil_mode)
      cpu_direct_attr_int(d, "ceil_mode", 1);
    if (kind == PK_AVG && (rnext(&r) & 1)) {
      a.count_include_pad = true;
      cpu_direct_attr_int(d, "count_include_pad", 1);
    }
    if (kind == PK_LP) {
      a.p = (double)rint_in(&r, 1, 3);
      if (a.p != 2 || (rnext(&r) & 1))
        cpu_direct_attr_int(d, "p", (int64_t)a.p);
    }
    bool want_ind = kind == PK_MAX && opset >= 8 && (rnext(&r) & 1);
    if (want_ind && (rnext(&r) & 1)) {
      a.col_major = true;
      cpu_direct_attr_int(d, "storage_order", 1);
    }
    int64_t xd[5] = {g.N, g.C}, yd[5] = {g.N, g.C};
    for (int i = 0; i < g.nsp; i++)
      xd[2 + i] = g.in[i], yd[2 + i] = g.out[i];
    size_t xc = prod(xd, g.nsp + 2), yc = prod(yd, g.nsp + 2);
    double *x = rand_vals(&r, dt, xc);
    add_input(d, dt, g.nsp + 2, xd, x);
    cpu_direct_output(d, dt, (uint32_t)g.nsp + 2, yd);
    if (want_ind)
      cpu_direct_output(d, TSR_DTYPE_INT64, (uint32_t)g.nsp + 2, yd);
    RUN_OK(d, threads);
    double *ref = malloc((yc + 1) * sizeof *ref);
    int64_t *ind = malloc((yc + 1) * sizeof *ind);
    ref_pool(&g, &a, x, ref, ind);
    double atol, rtol, mtol;
    tol_for(dt, &atol, &rtol, &mtol);
    if (dt == TSR_DTYPE_FLOAT32)
      atol = 1e-6, rtol = 1e-6;
    char what[160];
    snprintf(what, sizeof what, "%s it %d %s %dD pad_mode %d ceil %d", names[kind], it,
             cpu_dtype_name(dt), g.nsp, pad_mode, ceil_mode);
    expect_close(what, cpu_direct_out(d, 0), ref, NULL, yc, atol, rtol, 0);
    if (want_ind) {
      const int64_t *got = cpu_direct_out(d, 1)->data;
      for (size_t i = 0; i < yc; i++)
        ck_assert_msg(got[i] == ind[i], "%s: index %zu is %lld, expected %lld", what, i,
                      (long long)got[i], (long long)ind[i]);
    }
    cpu_direct_free(d);
    free(x), free(ref), free(ind);
  }
}
END_TEST

START_TEST(test_global_pool_random) {
  rng r = {1618};
  static const char *const names[] = {"GlobalMaxPool", "GlobalAveragePool", "GlobalLpPool"};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16};
  for (int it = 0; it < 90; it++) {
    size_t threads = vary_env(it);
    int kind = it % 3;
    uint32_t dt = dts[(it / 3) % 3];
    int rank = (int)rint_in(&r, 2, 5);
    int64_t xd[5], yd[5];
    xd[0] = yd[0] = rint_in(&r, 1, 3);
    xd[1] = yd[1] = rint_in(&r, 1, 4);
    for (int i = 2; i < rank; i++)
      xd[i] = rint_in(&r, 1, 12), yd[i] = 1;
    size_t xc = prod(xd, rank), planes = (size_t)(xd[0] * xd[1]), sp = xc / planes;
    double *x = rand_vals(&r, dt, xc);
    double p = (double)rint_in(&r, 1, 3);
    cpu_direct *d = cpu_direct_new(names[kind], kind == 2 ? 2 : 1);
    if (kind == 2)
      cpu_direct_attr_int(d, "p", (int64_t)p);
    add_input(d, dt, rank, xd, x);
    cpu_direct_output(d, dt, (uint32_t)rank, yd);
    RUN_OK(d, threads);
    double *ref = malloc(planes * sizeof *ref);
    for (size_t pl = 0; pl < planes; pl++) {
      double acc = kind == 0 ? -INFINITY : 0;
      for (size_t i = 0; i < sp; i++) {
        double v = x[pl * sp + i];
        if (kind == 0)
          acc = v > acc ? v : acc;
        else if (kind == 1)
          acc += v / (double)sp;
        else
          acc += pow(fabs(v), p);
      }
      ref[pl] = kind == 2 ? pow(acc, 1.0 / p) : acc;
    }
    double atol, rtol, mtol;
    tol_for(dt, &atol, &rtol, &mtol);
    if (dt == TSR_DTYPE_FLOAT32)
      atol = 1e-6, rtol = 1e-6;
    expect_close(names[kind], cpu_direct_out(d, 0), ref, NULL, planes, atol, rtol, 0);
    cpu_direct_free(d);
    free(x), free(ref);
  }
}
END_TEST

START_TEST(test_pool_onnx_cases) {
  float x[25];
  for (int i = 0; i < 25; i++)
    x[i] = (float)(i + 1);
  int64_t xd[4] = {1, 1, 5, 5}, yd[4] = {1, 1, 2, 2}, k2[2] = {2, 2}, s2[2] = {2, 2};
  /* maxpool_with_argmax_2d_precomputed_strides: column-major indices. */
  cpu_direct *d = cpu_direct_new("MaxPool", 12);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k2);
  cpu_direct_attr_ints(d, "strides", 2, s2);
  cpu_direct_attr_int(d, "storage_order", 1);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  cpu_direct_output(d, TSR_DTYPE_INT64, 4, yd);
  RUN_OK(d, 1);
  static const double want_y[4] = {7, 9, 17, 19};
  static const int64_t want_i[4] = {6, 16, 8, 18};
  expect_close("maxpool argmax", cpu_direct_out(d, 0), want_y, NULL, 4, 0, 0, 0);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(((int64_t *)cpu_direct_out(d, 1)->data)[i], want_i[i]);
  cpu_direct_free(d);

  /* averagepool_2d_ceil. */
  int64_t xd4[4] = {1, 1, 4, 4}, k3[2] = {3, 3};
  d = cpu_direct_new("AveragePool", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k3);
  cpu_direct_attr_ints(d, "strides", 2, s2);
  cpu_direct_attr_int(d, "ceil_mode", 1);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd4, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  RUN_OK(d, 1);
  static const double want_avg[4] = {6, 7.5, 12, 13.5};
  expect_close("averagepool ceil", cpu_direct_out(d, 0), want_avg, NULL, 4, 1e-6, 0, 0);
  cpu_direct_free(d);

  /* averagepool_2d_precomputed_pads_count_include_pad. */
  int64_t k5[2] = {5, 5}, p2[4] = {2, 2, 2, 2};
  d = cpu_direct_new("AveragePool", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k5);
  cpu_direct_attr_ints(d, "pads", 4, p2);
  cpu_direct_attr_int(d, "count_include_pad", 1);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  RUN_OK(d, 1);
  static const double want_cip[25] = {2.52,  3.6,  4.8,  4.08, 3.24, 4.56, 6.4,  8.4, 7.04,
                                      5.52,  7.2,  10,   13,   10.8, 8.4,  6.96, 9.6, 12.4,
                                      10.24, 7.92, 6.12, 8.4,  10.8, 8.88, 6.84};
  expect_close("averagepool count_include_pad", cpu_direct_out(d, 0), want_cip, NULL, 25, 1e-5,
               1e-6, 0);
  cpu_direct_free(d);

  /* maxpool_2d_uint8 with pads. */
  uint8_t xu[25];
  for (int i = 0; i < 25; i++)
    xu[i] = (uint8_t)(i + 1);
  d = cpu_direct_new("MaxPool", 12);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k5);
  cpu_direct_attr_ints(d, "pads", 4, p2);
  cpu_direct_input(d, TSR_DTYPE_UINT8, 4, xd, xu, false);
  cpu_direct_output(d, TSR_DTYPE_UINT8, 4, xd);
  RUN_OK(d, 1);
  static const uint8_t want_u8[25] = {13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25,
                                      25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25};
  ck_assert_mem_eq(cpu_direct_out(d, 0)->data, want_u8, 25);
  cpu_direct_free(d);

  /* maxpool_2d_dilations. */
  int64_t dil[2] = {2, 2}, s1[2] = {1, 1};
  d = cpu_direct_new("MaxPool", 12);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k2);
  cpu_direct_attr_ints(d, "strides", 2, s1);
  cpu_direct_attr_ints(d, "dilations", 2, dil);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd4, x, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  RUN_OK(d, 1);
  static const double want_dil[4] = {11, 12, 15, 16};
  expect_close("maxpool dilations", cpu_direct_out(d, 0), want_dil, NULL, 4, 0, 0, 0);
  cpu_direct_free(d);
}
END_TEST

START_TEST(test_pool_errors) {
  int64_t xd[4] = {1, 2, 5, 5}, yd[4] = {1, 2, 4, 4}, k[2] = {2, 2}, k9[2] = {9, 9};
  cpu_direct *d = cpu_direct_new("MaxPool", 12);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, "kernel_shape");
  cpu_direct_free(d);

  d = cpu_direct_new("AveragePool", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k9);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, "larger than the padded input");
  cpu_direct_free(d);

  d = cpu_direct_new("MaxPool", 12);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_attr_int(d, "storage_order", 2);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, "storage_order");
  cpu_direct_free(d);

  d = cpu_direct_new("MaxPool", 12);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  cpu_direct_output(d, TSR_DTYPE_INT32, 4, yd);
  expect_fail(d, "Indices");
  cpu_direct_free(d);

  d = cpu_direct_new("AveragePool", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_input(d, TSR_DTYPE_INT8, 4, xd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_INT8, 4, yd);
  expect_fail(d, "int8");
  cpu_direct_free(d);

  d = cpu_direct_new("LpPool", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_attr_int(d, "p", 0);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, "p = 0");
  cpu_direct_free(d);

  int64_t ybad[4] = {1, 2, 5, 4};
  d = cpu_direct_new("MaxPool", 12);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, ybad);
  expect_fail(d, "output spatial dim 0 is 5, expected 4");
  cpu_direct_free(d);

  int64_t gy[4] = {1, 2, 1, 2};
  d = cpu_direct_new("GlobalAveragePool", 1);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, gy);
  expect_fail(d, "spatial dims 1");
  cpu_direct_free(d);

  /* run() without check(): kernel_shape is absent (defaults), so it must fail cleanly. */
  float xb[50] = {0}, yb[32] = {0};
  cpu_tensor in[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, xd, xb)};
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, yd, yb)};
  expect_run_fail("MaxPool", 12, 1, in, 1, out, "kernel_shape");
  expect_run_fail("GlobalMaxPool", 1, 1, in, 1, out, "spatial dims 1");
}
END_TEST

/* ---- Normalizations ------------------------------------------------------------------ */

static void rand_shape(rng *r, int rank, int64_t *dims, int64_t maxd) {
  for (int i = 0; i < rank; i++)
    dims[i] = rint_in(r, 1, maxd);
}

static void norm_tol(uint32_t dt, double *atol, double *rtol) {
  if (dt == TSR_DTYPE_FLOAT64)
    *atol = 1e-11, *rtol = 1e-11;
  else if (dt == TSR_DTYPE_FLOAT16)
    *atol = 2e-3, *rtol = 2e-3;
  else
    *atol = 2e-5, *rtol = 2e-5;
}

START_TEST(test_batchnorm_random) {
  rng r = {1111};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16};
  for (int it = 0; it < 150; it++) {
    size_t threads = vary_env(it);
    uint32_t dt = dts[it % 3];
    int64_t opset = (int64_t[]){7, 9, 14, 15, 15}[it % 5];
    bool training = opset >= 14 && (rnext(&r) & 1);
    bool nonspatial = opset == 7 && (rnext(&r) & 1);
    int rank = (int)rint_in(&r, 2, 5);
    int64_t xd[5];
    rand_shape(&r, rank, xd, 6);
    size_t xc = prod(xd, rank), C = (size_t)xd[1], sp = xc / ((size_t)xd[0] * C);
    size_t per = nonspatial ? C * sp : C;
    int64_t pd[4] = {(int64_t)C};
    int prank = 1;
    if (nonspatial) {
      prank = rank - 1;
      for (int i = 1; i < rank; i++)
        pd[i - 1] = xd[i];
    }
    double *x = rand_vals(&r, dt, xc);
    double *par[4];
    for (int k = 0; k < 4; k++)
      par[k] = rand_vals(&r, dt, per);
    for (size_t i = 0; i < per; i++) {
      par[3][i] = fabs(par[3][i]) + 0.25; /* variance */
      if (dt == TSR_DTYPE_FLOAT16)
        par[3][i] = cpu_half_to_float(cpu_float_to_half((float)par[3][i]));
    }
    double eps = it % 2 ? 1e-5 : 1e-2, mom = 0.9;
    cpu_direct *d = cpu_direct_new("BatchNormalization", opset);
    if (it % 2 == 0)
      cpu_direct_attr_float(d, "epsilon", (float)eps);
    if (nonspatial)
      cpu_direct_attr_int(d, "spatial", 0);
    if (training) {
      cpu_direct_attr_int(d, "training_mode", 1);
      if (it % 4 == 1)
        mom = 0.7, cpu_direct_attr_float(d, "momentum", 0.7f);
    }
    mom = (float)mom; /* attributes are float32 */
    eps = (float)eps;
    add_input(d, dt, rank, xd, x);
    for (int k = 0; k < 4; k++)
      add_input(d, dt, prank, pd, par[k]);
    cpu_direct_output(d, dt, (uint32_t)rank, xd);
    bool outs = training && (rnext(&r) & 1);
    if (outs) {
      cpu_direct_output(d, dt, 1, pd);
      cpu_direct_output(d, dt, 1, pd);
    }
    RUN_OK(d, threads);
    double *ref = malloc(xc * sizeof *ref), *bm = malloc(C * sizeof *bm),
           *bv = malloc(C * sizeof *bv);
    for (size_t c = 0; c < C; c++) {
      double s = 0, q = 0;
      size_t cnt = (size_t)xd[0] * sp;
      for (int64_t n = 0; n < xd[0]; n++)
        for (size_t i = 0; i < sp; i++)
          s += x[((size_t)n * C + c) * sp + i];
      for (int64_t n = 0; n < xd[0]; n++)
        for (size_t i = 0; i < sp; i++) {
          double dv = x[((size_t)n * C + c) * sp + i] - s / (double)cnt;
          q += dv * dv;
        }
      bm[c] = s / (double)cnt, bv[c] = q / (double)cnt;
    }
    for (size_t i = 0; i < xc; i++) {
      size_t c = (i / sp) % C, pi = nonspatial ? c * sp + i % sp : c;
      double mean = training ? bm[c] : par[2][pi], var = training ? bv[c] : par[3][pi];
      ref[i] = (x[i] - mean) / sqrt(var + eps) * par[0][pi] + par[1][pi];
    }
    double atol, rtol;
    norm_tol(dt, &atol, &rtol);
    char what[128];
    snprintf(what, sizeof what, "BatchNormalization it %d opset %lld %s training %d", it,
             (long long)opset, cpu_dtype_name(dt), training);
    expect_close(what, cpu_direct_out(d, 0), ref, NULL, xc, atol * 4, rtol, 0);
    if (outs) {
      double *rm = malloc(C * sizeof *rm), *rv = malloc(C * sizeof *rv);
      for (size_t c = 0; c < C; c++) {
        rm[c] = par[2][c] * mom + bm[c] * (1 - mom);
        rv[c] = par[3][c] * mom + bv[c] * (1 - mom);
      }
      expect_close("running_mean", cpu_direct_out(d, 1), rm, NULL, C, atol, rtol, 0);
      expect_close("running_var", cpu_direct_out(d, 2), rv, NULL, C, atol, rtol, 0);
      free(rm), free(rv);
    }
    cpu_direct_free(d);
    free(x), free(ref), free(bm), free(bv);
    for (int k = 0; k < 4; k++)
      free(par[k]);
  }
}
END_TEST

START_TEST(test_instancenorm_random) {
  rng r = {2222};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16};
  for (int it = 0; it < 90; it++) {
    size_t threads = vary_env(it);
    uint32_t dt = dts[it % 3];
    int rank = (int)rint_in(&r, 3, 5);
    int64_t xd[5];
    rand_shape(&r, rank, xd, rank == 3 ? 40 : 8);
    size_t xc = prod(xd, rank), C = (size_t)xd[1], sp = xc / ((size_t)xd[0] * C);
    double *x = rand_vals(&r, dt, xc), *sc = rand_vals(&r, dt, C), *b = rand_vals(&r, dt, C);
    for (size_t i = 0; i < xc; i++)
      x[i] += it % 4 == 0 ? 100 : 0; /* a large mean */
    if (dt == TSR_DTYPE_FLOAT16)
      for (size_t i = 0; i < xc; i++)
        x[i] = cpu_half_to_float(cpu_float_to_half((float)x[i]));
    if (dt == TSR_DTYPE_FLOAT32)
      for (size_t i = 0; i < xc; i++)
        x[i] = (float)x[i];
    double eps = 1e-3;
    cpu_direct *d = cpu_direct_new("InstanceNormalization", 6);
    cpu_direct_attr_float(d, "epsilon", (float)eps);
    eps = (float)eps;
    add_input(d, dt, rank, xd, x);
    int64_t cd[1] = {(int64_t)C};
    add_input(d, dt, 1, cd, sc);
    add_input(d, dt, 1, cd, b);
    cpu_direct_output(d, dt, (uint32_t)rank, xd);
    RUN_OK(d, threads);
    double *ref = malloc(xc * sizeof *ref);
    for (size_t pl = 0; pl < xc / sp; pl++) {
      double s = 0, q = 0;
      for (size_t i = 0; i < sp; i++)
        s += x[pl * sp + i];
      double mu = s / (double)sp;
      for (size_t i = 0; i < sp; i++)
        q += (x[pl * sp + i] - mu) * (x[pl * sp + i] - mu);
      double inv = 1 / sqrt(q / (double)sp + eps);
      for (size_t i = 0; i < sp; i++)
        ref[pl * sp + i] = (x[pl * sp + i] - mu) * inv * sc[pl % C] + b[pl % C];
    }
    double atol, rtol;
    norm_tol(dt, &atol, &rtol);
    expect_close("InstanceNormalization", cpu_direct_out(d, 0), ref, NULL, xc,
                 dt == TSR_DTYPE_FLOAT16 ? 0.05 : atol * 10, rtol, 0);
    cpu_direct_free(d);
    free(x), free(sc), free(b), free(ref);
  }
}
END_TEST

START_TEST(test_lrn_random) {
  rng r = {3333};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16};
  for (int it = 0; it < 90; it++) {
    size_t threads = vary_env(it);
    uint32_t dt = dts[it % 3];
    int rank = (int)rint_in(&r, 3, 5);
    int64_t xd[5];
    rand_shape(&r, rank, xd, 7);
    xd[1] = rint_in(&r, 1, 9);
    size_t xc = prod(xd, rank), C = (size_t)xd[1], sp = xc / ((size_t)xd[0] * C);
    int64_t size = rint_in(&r, 1, 6);
    double alpha = it % 3 == 0 ? 1e-4 : 0.5 * fabs(runi(&r)) + 0.01;
    double beta = it % 2 ? 0.75 : 0.3 + fabs(runi(&r));
    double bias = it % 4 == 0 ? 1.0 : 1 + fabs(runi(&r));
    double *x = rand_vals(&r, dt, xc);
    cpu_direct *d = cpu_direct_new("LRN", it % 2 ? 13 : 1);
    cpu_direct_attr_int(d, "size", size);
    if (alpha != 1e-4)
      cpu_direct_attr_float(d, "alpha", (float)alpha);
    if (beta != 0.75)
      cpu_direct_attr_float(d, "beta", (float)beta);
    if (bias != 1.0)
      cpu_direct_attr_float(d, "bias", (float)bias);
    alpha = (float)alpha, beta = (float)beta, bias = (float)bias;
    add_input(d, dt, rank, xd, x);
    cpu_direct_output(d, dt, (uint32_t)rank, xd);
    RUN_OK(d, threads);
    double *ref = malloc(xc * sizeof *ref);
    for (size_t i = 0; i < xc; i++) {
      int64_t c = (int64_t)((i / sp) % C), n = (int64_t)(i / (sp * C));
      size_t s_i = i % sp;
      double sq = 0;
      for (int64_t cc = c - (size - 1) / 2; cc <= c + size / 2; cc++) {
        if (cc < 0 || cc >= (int64_t)C)
          continue;
        double v = x[((size_t)n * C + (size_t)cc) * sp + s_i];
        sq += v * v;
      }
      ref[i] = x[i] / pow(bias + alpha / (double)size * sq, beta);
    }
    double atol, rtol;
    norm_tol(dt, &atol, &rtol);
    expect_close("LRN", cpu_direct_out(d, 0), ref, NULL, xc, atol, rtol, 0);
    cpu_direct_free(d);
    free(x), free(ref);
  }
}
END_TEST

START_TEST(test_layernorm_random) {
  rng r = {4444};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16};
  for (int it = 0; it < 150; it++) {
    size_t threads = vary_env(it);
    uint32_t dt = dts[it % 3];
    int rank = (int)rint_in(&r, 1, 4);
    int64_t xd[4];
    rand_shape(&r, rank, xd, rank == 1 ? 64 : 7);
    int64_t axis = rint_in(&r, -rank, rank - 1);
    int ax = (int)(axis < 0 ? axis + rank : axis);
    size_t xc = prod(xd, rank), rows = prod(xd, ax), cols = xc / rows;
    /* Scale/B: the normalized shape, a suffix of it, or with some dims set to 1. */
    int64_t sd[4], bd[4];
    int srank = rank - ax - (int)(rnext(&r) % (size_t)(rank - ax));
    for (int i = 0; i < srank; i++) {
      sd[i] = xd[rank - srank + i];
      bd[i] = sd[i];
      if (it % 5 == 2 && (rnext(&r) & 1))
        sd[i] = 1;
    }
    double *x = rand_vals(&r, dt, xc);
    double *sc = rand_vals(&r, dt, prod(sd, srank)), *b = rand_vals(&r, dt, prod(bd, srank));
    bool has_b = it % 4 != 3, outs = it % 3 != 2;
    double eps = it % 2 ? 1e-5 : 0.1;
    cpu_direct *d = cpu_direct_new("LayerNormalization", 17);
    if (axis != -1 || (rnext(&r) & 1))
      cpu_direct_attr_int(d, "axis", axis);
    if (eps != 1e-5)
      cpu_direct_attr_float(d, "epsilon", (float)eps);
    eps = (float)eps;
    add_input(d, dt, rank, xd, x);
    add_input(d, dt, srank, sd, sc);
    if (has_b)
      add_input(d, dt, srank, bd, b);
    else if (it % 2)
      cpu_direct_input_absent(d);
    cpu_direct_output(d, dt, (uint32_t)rank, xd);
    int64_t md[4];
    for (int i = 0; i < rank; i++)
      md[i] = i < ax ? xd[i] : 1;
    if (outs) {
      cpu_direct_output(d, TSR_DTYPE_FLOAT32, (uint32_t)rank, md);
      cpu_direct_output(d, TSR_DTYPE_FLOAT32, (uint32_t)rank, md);
    }
    RUN_OK(d, threads);
    double *ref = malloc(xc * sizeof *ref), *rm = malloc(rows * sizeof *rm),
           *ri = malloc(rows * sizeof *ri);
    for (size_t row = 0; row < rows; row++) {
      double s = 0, q = 0;
      for (size_t j = 0; j < cols; j++)
        s += x[row * cols + j];
      double mu = s / (double)cols;
      for (size_t j = 0; j < cols; j++)
        q += (x[row * cols + j] - mu) * (x[row * cols + j] - mu);
      double inv = 1 / sqrt(q / (double)cols + eps);
      rm[row] = mu, ri[row] = inv;
      for (size_t j = 0; j < cols; j++) {
        /* Broadcast index of Scale for column j: right-aligned dims, 1s repeat. */
        size_t rem = j, si = 0, stride = 1;
        for (int k = srank - 1; k >= 0; k--) {
          size_t xdim = (size_t)xd[rank - srank + k], coord = rem % xdim;
          rem /= xdim;
          if (sd[k] != 1)
            si += coord * stride;
          stride *= (size_t)sd[k];
        }
        ref[row * cols + j] =
            (x[row * cols + j] - mu) * inv * sc[si] + (has_b ? b[j % prod(bd, srank)] : 0);
      }
    }
    double atol, rtol;
    norm_tol(dt, &atol, &rtol);
    char what[96];
    snprintf(what, sizeof what, "LayerNormalization it %d %s axis %lld", it, cpu_dtype_name(dt),
             (long long)axis);
    expect_close(what, cpu_direct_out(d, 0), ref, NULL, xc, atol * 4, rtol, 0);
    if (outs) {
      double ftol = dt == TSR_DTYPE_FLOAT64 ? 1e-6 : 1e-5;
      expect_close("LayerNormalization Mean", cpu_direct_out(d, 1), rm, NULL, rows, ftol, ftol, 0);
      expect_close("LayerNormalization InvStdDev", cpu_direct_out(d, 2), ri, NULL, rows, ftol, ftol,
                   0);
    }
    cpu_direct_free(d);
    free(x), free(sc), free(b), free(ref), free(rm), free(ri);
  }
}
END_TEST

/* float32 LayerNormalization over long rows, as transformers have them (BERT's 128 x 256,
 * 4096 wide, a width with a tail past the last vector), with rows whose mean is far from zero
 * next to their spread (mean 50, spread 0.01) and rows of one value: against float64, with
 * Mean and InvStdDev, on 1 and 3 threads, Scale and B given at run time or constant. */
START_TEST(test_layernorm_long_rows) {
  rng r = {777};
  static const int64_t shapes[][2] = {{128, 256}, {2, 4096}, {5, 1029}, {3, 8}, {4, 7}};
  for (int it = 0; it < 10; it++) {
    const int64_t *xd = shapes[it % 5];
    size_t rows = (size_t)xd[0], cols = (size_t)xd[1], xc = rows * cols;
    double *x = malloc(xc * sizeof *x), *sc = malloc(cols * sizeof *sc),
           *b = malloc(cols * sizeof *b);
    for (size_t row = 0; row < rows; row++)
      for (size_t j = 0; j < cols; j++) {
        double v = runi(&r);
        if (row % 3 == 1)
          v = 50.0 + 0.01 * v; /* far from zero, narrow */
        else if (row % 3 == 2 && it >= 5)
          v = 3.25; /* constant: the variance is 0, eps alone */
        x[row * cols + j] = (float)v;
      }
    for (size_t j = 0; j < cols; j++)
      sc[j] = (float)runi(&r), b[j] = (float)runi(&r);
    cpu_direct *d = cpu_direct_new("LayerNormalization", 17);
    int64_t cd[1] = {(int64_t)cols}, md[2] = {(int64_t)rows, 1};
    add_input(d, TSR_DTYPE_FLOAT32, 2, xd, x);
    /* Constant Scale and B (expanded once, at prepare) in half the cases. */
    add_input_c(d, TSR_DTYPE_FLOAT32, 1, cd, sc, it / 5 == 1);
    add_input_c(d, TSR_DTYPE_FLOAT32, 1, cd, b, it / 5 == 1);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, xd);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, md);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, md);
    RUN_OK(d, it % 2 ? 3 : 1);
    double *ref = malloc(xc * sizeof *ref), *rm = malloc(rows * sizeof *rm),
           *ri = malloc(rows * sizeof *ri);
    const double eps = (float)1e-5;
    for (size_t row = 0; row < rows; row++) {
      const double *xr = x + row * cols;
      double s = 0, q = 0;
      for (size_t j = 0; j < cols; j++)
        s += xr[j];
      double mu = s / (double)cols;
      for (size_t j = 0; j < cols; j++)
        q += (xr[j] - mu) * (xr[j] - mu);
      double inv = 1 / sqrt(q / (double)cols + eps);
      rm[row] = mu, ri[row] = inv;
      for (size_t j = 0; j < cols; j++)
        ref[row * cols + j] = (xr[j] - mu) * inv * sc[j] + b[j];
    }
    char what[96];
    snprintf(what, sizeof what, "LayerNormalization long rows %lld x %lld", (long long)rows,
             (long long)cols);
    expect_close(what, cpu_direct_out(d, 0), ref, NULL, xc, 8e-5, 2e-5, 0);
    expect_close("LayerNormalization long rows Mean", cpu_direct_out(d, 1), rm, NULL, rows, 1e-6,
                 1e-6, 0);
    expect_close("LayerNormalization long rows InvStdDev", cpu_direct_out(d, 2), ri, NULL, rows,
                 1e-6, 2e-5, 0);
    cpu_direct_free(d);
    free(x), free(sc), free(b), free(ref), free(rm), free(ri);
  }
}
END_TEST

/* LayerNormalization with the Add before it taken in (cpu_node.skip: X + in[3] normalised),
 * against float64 of the float32 sum, with the output in its own memory, exactly on X or on
 * the skip operand (normalised in place), or partly over either by some rows or floats either
 * way (computed apart, then copied): on 1 and 3 threads, rows with a tail past the last
 * vector and rows of mean 50 and spread 0.01. */
START_TEST(test_layernorm_skip) {
  rng r = {4242};
  static const int64_t shapes[][2] = {{128, 256}, {6, 67}, {9, 8}, {3, 1029}};
  for (int it = 0; it < 24; it++) {
    const int64_t *xd = shapes[it % 4];
    size_t rows = (size_t)xd[0], cols = (size_t)xd[1], xc = rows * cols;
    double *x = malloc(xc * sizeof *x), *sk = malloc(xc * sizeof *sk),
           *sc = malloc(cols * sizeof *sc), *b = malloc(cols * sizeof *b);
    for (size_t i = 0; i < xc; i++) {
      bool far = i / cols % 3 == 1;
      x[i] = (float)(far ? 50.0 + 0.01 * runi(&r) : runi(&r) * 2);
      sk[i] = (float)(far ? 0.005 * runi(&r) : runi(&r));
    }
    for (size_t j = 0; j < cols; j++)
      sc[j] = (float)runi(&r), b[j] = (float)runi(&r);
    cpu_direct *d = cpu_direct_new("LayerNormalization", 17);
    int64_t cd[1] = {(int64_t)cols};
    add_input(d, TSR_DTYPE_FLOAT32, 2, xd, x);
    add_input_c(d, TSR_DTYPE_FLOAT32, 1, cd, sc, it % 2 == 0);
    add_input_c(d, TSR_DTYPE_FLOAT32, 1, cd, b, it % 2 == 0);
    add_input(d, TSR_DTYPE_FLOAT32, 2, xd, sk);
    cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, xd);
    cpu_direct_skip(d);
    /* Where the output lies: 0 apart, 1 on X, 2 on the skip operand, 3 one row past X's
     * start, 4 two rows before the skip operand's, 5 three floats past X's start. */
    int place = it / 4 % 6;
    ptrdiff_t row = (ptrdiff_t)(cols * sizeof(float));
    static const char *places[] = {"apart",     "on X",          "on skip",
                                   "X + 1 row", "skip - 2 rows", "X + 3 floats"};
    if (place == 1 || place == 3 || place == 5)
      cpu_direct_alias(d, 0, 0, place == 1 ? 0 : place == 3 ? row : 3 * (ptrdiff_t)sizeof(float));
    else if (place == 2 || place == 4)
      cpu_direct_alias(d, 0, 3, place == 2 ? 0 : -2 * row);
    RUN_OK(d, it % 3 ? 3 : 1);
    double *ref = malloc(xc * sizeof *ref);
    const double eps = (float)1e-5;
    for (size_t rr = 0; rr < rows; rr++) {
      double v[1029], s = 0, q = 0;
      for (size_t j = 0; j < cols; j++)
        s += v[j] = (float)((float)x[rr * cols + j] + (float)sk[rr * cols + j]);
      double mu = s / (double)cols;
      for (size_t j = 0; j < cols; j++)
        q += (v[j] - mu) * (v[j] - mu);
      double inv = 1 / sqrt(q / (double)cols + eps);
      for (size_t j = 0; j < cols; j++)
        ref[rr * cols + j] = (v[j] - mu) * inv * sc[j] + b[j];
    }
    char what[96];
    snprintf(what, sizeof what, "LayerNormalization + skip %zu x %zu, output %s", rows, cols,
             places[place]);
    expect_close(what, cpu_direct_out(d, 0), ref, NULL, xc, 8e-5, 2e-5, 0);
    cpu_direct_free(d);
    free(x), free(sk), free(sc), free(b), free(ref);
  }
}
END_TEST

START_TEST(test_norm_onnx_cases) {
  float x[6] = {-1, 0, 1, 2, 3, 4}, s[2] = {1, 1.5f}, b[2] = {0, 1};
  int64_t xd[4] = {1, 2, 1, 3}, cd[1] = {2};
  cpu_direct *d = cpu_direct_new("InstanceNormalization", 6);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, x, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, cd, s, true);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, cd, b, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  RUN_OK(d, 1);
  static const double want[6] = {-1.2247356176376343, 0.0, 1.2247356176376343,
                                 -0.8371034860610962, 1.0, 2.8371033668518066};
  expect_close("instancenorm_example", cpu_direct_out(d, 0), want, NULL, 6, 1e-6, 1e-6, 0);
  cpu_direct_free(d);
}
END_TEST

START_TEST(test_norm_errors) {
  int64_t xd[4] = {2, 3, 4, 5}, cd[1] = {3}, bad[1] = {4};
  cpu_direct *d = cpu_direct_new("BatchNormalization", 15);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  for (int i = 0; i < 4; i++)
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, i == 2 ? bad : cd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  expect_fail(d, "input 3 is [4]");
  cpu_direct_free(d);

  d = cpu_direct_new("BatchNormalization", 9);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  for (int i = 0; i < 4; i++)
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, cd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, cd);
  expect_fail(d, "training");
  cpu_direct_free(d);

  d = cpu_direct_new("BatchNormalization", 15);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  for (int i = 0; i < 4; i++)
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, cd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 1, cd);
  expect_fail(d, "training_mode");
  cpu_direct_free(d);

  d = cpu_direct_new("LayerNormalization", 17);
  cpu_direct_attr_int(d, "axis", 4);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, cd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  expect_fail(d, "axis 4");
  cpu_direct_free(d);

  d = cpu_direct_new("LayerNormalization", 17);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, cd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  expect_fail(d, "does not broadcast");
  cpu_direct_free(d);

  int64_t sd2[2] = {3, 5};
  d = cpu_direct_new("LayerNormalization", 17);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, sd2, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  expect_fail(d, "does not broadcast");
  cpu_direct_free(d);

  d = cpu_direct_new("LRN", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  expect_fail(d, "size");
  cpu_direct_free(d);

  d = cpu_direct_new("InstanceNormalization", 6);
  cpu_direct_input(d, TSR_DTYPE_INT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_INT32, 1, cd, NULL, true);
  cpu_direct_input(d, TSR_DTYPE_INT32, 1, cd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_INT32, 4, xd);
  expect_fail(d, "int32");
  cpu_direct_free(d);

  /* run() without check(): parameters of the wrong length. */
  float *xb = calloc(120, sizeof(float)), pb[4] = {0}, *yb = calloc(120, sizeof(float));
  cpu_tensor in[5] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, xd, xb)};
  for (int i = 1; i < 5; i++)
    in[i] = mk_tensor(TSR_DTYPE_FLOAT32, 1, i == 4 ? bad : cd, pb);
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, xd, yb)};
  expect_run_fail("BatchNormalization", 15, 5, in, 1, out, "input 4");
  cpu_tensor in_in[3] = {in[0], in[1], mk_tensor(TSR_DTYPE_FLOAT32, 1, bad, pb)};
  expect_run_fail("InstanceNormalization", 6, 3, in_in, 1, out, "input 2 is [4]");
  cpu_tensor ln_in[2] = {in[0], mk_tensor(TSR_DTYPE_FLOAT32, 1, bad, pb)};
  expect_run_fail("LayerNormalization", 17, 2, ln_in, 1, out, "does not broadcast");
  free(xb), free(yb);
}
END_TEST

/* Empty batches produce nothing and read nothing. */
START_TEST(test_empty_tensors) {
  int64_t xd[4] = {0, 3, 5, 5}, wd[4] = {4, 3, 3, 3}, yd[4] = {0, 4, 3, 3}, k[2] = {2, 2};
  int64_t pd[4] = {0, 3, 4, 4}, cd[1] = {3};
  cpu_direct *d = cpu_direct_new("Conv", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, wd, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  RUN_OK(d, 2);
  cpu_direct_free(d);
  d = cpu_direct_new("MaxPool", 12);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, pd);
  RUN_OK(d, 2);
  cpu_direct_free(d);
  d = cpu_direct_new("BatchNormalization", 15);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  float par[3] = {1, 1, 1};
  for (int i = 0; i < 4; i++)
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, cd, par, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  RUN_OK(d, 2);
  cpu_direct_free(d);
  d = cpu_direct_new("LayerNormalization", 17);
  int64_t ld[1] = {5};
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 1, ld, NULL, true);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 4, xd);
  RUN_OK(d, 2);
  cpu_direct_free(d);
  int64_t ad[2] = {0, 4}, bd[2] = {4, 3}, od[2] = {0, 3};
  d = cpu_direct_new("Gemm", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, ad, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, bd, NULL, false);
  cpu_direct_output(d, TSR_DTYPE_FLOAT32, 2, od);
  RUN_OK(d, 2);
  cpu_direct_free(d);
}
END_TEST

static Suite *kernels_nn_suite(void) {
  Suite *s = suite_create("kernels_nn");
  TCase *g = tcase_create("gemm");
  tcase_set_timeout(g, 600);
  tcase_add_test(g, test_isa_switch);
  tcase_add_test(g, test_sgemm_random);
  tcase_add_test(g, test_sgemm_blocking_edges);
  tcase_add_test(g, test_sgemm_degenerate);
  tcase_add_test(g, test_sgemm_epilogue);
  tcase_add_test(g, test_act_special_values);
  tcase_add_test(g, test_gemm_activation);
  tcase_add_test(g, test_gemm_random);
  tcase_add_test(g, test_gemm_int_wrap);
  tcase_add_test(g, test_gemm_errors);
  tcase_add_test(g, test_matmul_random);
  tcase_add_test(g, test_matmul_errors);
  tcase_add_test(g, test_matmul_empty);
  suite_add_tcase(s, g);
  TCase *c = tcase_create("conv");
  tcase_set_timeout(c, 600);
  tcase_add_test(c, test_conv_random);
  tcase_add_test(c, test_conv_large);
  tcase_add_test(c, test_conv_activation);
  tcase_add_test(c, test_conv_pointwise_small);
  tcase_add_test(c, test_conv_winograd);
  tcase_add_test(c, test_conv_pointwise_residual);
  tcase_add_test(c, test_convtranspose_random);
  tcase_add_test(c, test_convtranspose_large);
  tcase_add_test(c, test_convtranspose_upsample);
  tcase_add_test(c, test_conv_onnx_cases);
  tcase_add_test(c, test_conv_errors);
  suite_add_tcase(s, c);
  TCase *p = tcase_create("pool");
  tcase_set_timeout(p, 600);
  tcase_add_test(p, test_pool_random);
  tcase_add_test(p, test_global_pool_random);
  tcase_add_test(p, test_pool_onnx_cases);
  tcase_add_test(p, test_pool_errors);
  suite_add_tcase(s, p);
  TCase *n = tcase_create("norm");
  tcase_set_timeout(n, 600);
  tcase_add_test(n, test_batchnorm_random);
  tcase_add_test(n, test_instancenorm_random);
  tcase_add_test(n, test_lrn_random);
  tcase_add_test(n, test_layernorm_random);
  tcase_add_test(n, test_layernorm_long_rows);
  tcase_add_test(n, test_layernorm_skip);
  tcase_add_test(n, test_norm_onnx_cases);
  tcase_add_test(n, test_norm_errors);
  tcase_add_test(n, test_empty_tensors);
  suite_add_tcase(s, n);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_nn_suite()) != 0; }
