/* Unit suite of the recurrent kernels (devices/cpu/rnn.c: LSTM, GRU, RNN) and the misc family
 * (devices/cpu/misc.c: Einsum, Det, Shrink, MeanVarianceNormalization, ReverseSequence,
 * MaxUnpool). Kernels run through cpu_direct and are compared with naive float64 references
 * written here, independently of the kernels: random shapes, attributes and values from fixed
 * seeds, and error cases that must be refused or fail with a message. Random cases alternate
 * the AVX2 and generic code paths (TESSERA_CPU_GENERIC) and the thread count. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/threadpool.h"
#include "tests/cpu_direct.h"
#include "tests/harness.h"

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

/* Random values representable in dtype: floats in [-scale, scale) rounded through the dtype,
 * integers in [-ilim, ilim] (unsigned: [0, ilim]). */
static double *rand_vals(rng *r, uint32_t dt, size_t n, double scale, int64_t ilim) {
  double *v = malloc((n ? n : 1) * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    double u = runi(r) * scale;
    switch (dt) {
    case TSR_DTYPE_FLOAT32: v[i] = (float)u; break;
    case TSR_DTYPE_FLOAT16: v[i] = cpu_half_to_float(cpu_float_to_half((float)u)); break;
    case TSR_DTYPE_FLOAT64: v[i] = u; break;
    case TSR_DTYPE_UINT8:
    case TSR_DTYPE_UINT16:
    case TSR_DTYPE_UINT32:
    case TSR_DTYPE_UINT64: v[i] = (double)rint_in(r, 0, ilim); break;
    default: v[i] = (double)rint_in(r, -ilim, ilim); break;
    }
  }
  return v;
}

/* The values as raw elements of dtype (malloc'ed). */
static void *to_raw(uint32_t dt, const double *v, size_t n) {
  size_t es = cpu_dtype_size(dt);
  void *raw = calloc(n ? n : 1, es);
  cpu_tensor t = {.dtype = dt, .data = raw, .count = n};
  for (size_t i = 0; v && i < n; i++)
    cpu_write_f64(&t, i, v[i]);
  return raw;
}

static void add_input(cpu_direct *d, uint32_t dt, int rank, const int64_t *dims, const double *v) {
  void *raw = to_raw(dt, v, prod(dims, rank));
  cpu_direct_input(d, dt, (uint32_t)rank, dims, raw, false);
  free(raw);
}

static void add_i64_input(cpu_direct *d, uint32_t dt, int rank, const int64_t *dims,
                          const int64_t *v) {
  size_t n = prod(dims, rank);
  void *raw = calloc(n ? n : 1, cpu_dtype_size(dt));
  for (size_t i = 0; i < n; i++) {
    if (dt == TSR_DTYPE_INT64)
      ((int64_t *)raw)[i] = v[i];
    else
      ((int32_t *)raw)[i] = (int32_t)v[i];
  }
  cpu_direct_input(d, dt, (uint32_t)rank, dims, raw, false);
  free(raw);
}

/* Adds an output whose memory holds garbage (all bits set: NaN for floats), so that elements a
 * kernel forgets to write show up. */
static void add_output(cpu_direct *d, uint32_t dt, int rank, const int64_t *dims) {
  cpu_direct_output(d, dt, (uint32_t)rank, dims);
}

static void poison_outputs(cpu_direct *d, uint32_t n_out) {
  for (uint32_t k = 0; k < n_out; k++) {
    cpu_tensor *t = cpu_direct_out(d, k);
    if (t->present && t->data && t->nbytes)
      memset(t->data, 0xff, t->nbytes);
  }
}

/* Compares out with ref: |got - ref| <= atol + rtol * |ref|. */
static void expect_close(const char *what, const cpu_tensor *out, const double *ref, size_t n,
                         double atol, double rtol) {
  ck_assert_msg(out->count == n, "%s: %zu outputs, expected %zu", what, out->count, n);
  for (size_t i = 0; i < n; i++) {
    double got = cpu_read_f64(out, i);
    double tol = atol + rtol * fabs(ref[i]);
    if (!(fabs(got - ref[i]) <= tol) && !(isnan(got) && isnan(ref[i])))
      ck_abort_msg("%s: element %zu is %.9g, expected %.9g (tol %.3g)", what, i, got, ref[i], tol);
  }
}

/* Alternates the generic and the AVX2 paths and the thread count by iteration. */
static size_t vary_env(int it) {
  setenv("TESSERA_CPU_GENERIC", (it & 1) ? "1" : "0", 1);
  static const size_t threads[] = {1, 3, 2};
  return threads[(it / 2) % 3];
}

#define RUN_OK(d, threads)                                                                         \
  do {                                                                                             \
    char err_[512];                                                                                \
    int rc_ = cpu_direct_run((d), (threads), err_, sizeof err_);                                   \
    ck_assert_msg(rc_ == 0, "run failed (%d): %s", rc_, err_);                                     \
  } while (0)

/* Runs d and expects a refusal or failure whose message mentions needle. */
static void expect_fail(cpu_direct *d, const char *needle) {
  char err[512];
  int rc = cpu_direct_run(d, 1, err, sizeof err);
  ck_assert_msg(rc != 0, "expected a failure mentioning '%s'", needle);
  ck_assert_msg(strlen(err) > 0, "failure without a message");
  ck_assert_msg(strstr(err, needle) != NULL, "message '%s' does not mention '%s'", err, needle);
}

/* Expects check() to refuse with `reason`. */
static void expect_refuse(cpu_direct *d, tsr_plugin_reason reason, const char *needle) {
  char err[512];
  int rc = cpu_direct_run(d, 1, err, sizeof err);
  ck_assert_msg(rc == (int)reason, "expected reason %d, got %d (%s)", (int)reason, rc, err);
  ck_assert_msg(strstr(err, needle) != NULL, "message '%s' does not mention '%s'", err, needle);
}

/* ---- run() without check(): a host with wrong shapes ---------------------------------- */

/* A minimal attribute table served through tsr_plugin_graph_api, for calling run() directly. */
typedef struct fake_graph {
  const char *names[16];
  tsr_plugin_attr attrs[16];
  size_t n;
} fake_graph;

static int fake_node_attr(const tsr_plugin_graph *g, uint32_t node, const char *name,
                          tsr_plugin_attr *out) {
  (void)node;
  const fake_graph *f = (const fake_graph *)g;
  for (size_t i = 0; i < f->n; i++)
    if (!strcmp(f->names[i], name)) {
      *out = f->attrs[i];
      return 1;
    }
  return 0;
}

static const tsr_plugin_graph_api fake_api = {.struct_size = sizeof(tsr_plugin_graph_api),
                                              .abi_version = TSR_PLUGIN_ABI_VERSION,
                                              .node_attr = fake_node_attr};

static void fake_string(fake_graph *f, const char *name, const char *v) {
  f->names[f->n] = name;
  f->attrs[f->n] = (tsr_plugin_attr){.type = TSR_PLUGIN_ATTR_STRING, .s = v, .s_len = strlen(v)};
  f->n++;
}

static void fake_ints(fake_graph *f, const char *name, size_t n, const int64_t *v) {
  f->names[f->n] = name;
  f->attrs[f->n] = (tsr_plugin_attr){.type = TSR_PLUGIN_ATTR_INTS, .ints = v, .count = n};
  f->n++;
}

static void fake_int(fake_graph *f, const char *name, int64_t v) {
  f->names[f->n] = name;
  f->attrs[f->n] = (tsr_plugin_attr){.type = TSR_PLUGIN_ATTR_INT, .i = v};
  f->n++;
}

static void fake_float(fake_graph *f, const char *name, float v) {
  f->names[f->n] = name;
  f->attrs[f->n] = (tsr_plugin_attr){.type = TSR_PLUGIN_ATTR_FLOAT, .f = v};
  f->n++;
}

static void fake_floats(fake_graph *f, const char *name, size_t n, const float *v) {
  f->names[f->n] = name;
  f->attrs[f->n] = (tsr_plugin_attr){.type = TSR_PLUGIN_ATTR_FLOATS, .floats = v, .count = n};
  f->n++;
}

static void fake_strings(fake_graph *f, const char *name, size_t n, const char *const *v) {
  f->names[f->n] = name;
  f->attrs[f->n] = (tsr_plugin_attr){.type = TSR_PLUGIN_ATTR_STRINGS, .strings = v, .count = n};
  f->n++;
}

static cpu_tensor mk_tensor(uint32_t dt, uint32_t rank, const int64_t *dims, void *data) {
  cpu_tensor t = {.dtype = dt, .rank = rank, .dims = dims, .data = data, .present = true};
  t.count = prod(dims, (int)rank);
  t.nbytes = t.count * cpu_dtype_size(dt);
  return t;
}

/* Calls an op's run() directly, without check(); it must validate and fail with a message. */
static void expect_run_fail(const char *op_type, int64_t opset, const fake_graph *attrs,
                            uint32_t n_in, const cpu_tensor *in, uint32_t n_out, cpu_tensor *out,
                            const char *needle) {
  const cpu_op *op = cpu_find_op("", op_type, opset);
  ck_assert_ptr_nonnull(op);
  cpu_node node = {.g = (const tsr_plugin_graph *)attrs,
                   .api = attrs ? &fake_api : NULL,
                   .name = "direct",
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

/* ---- A node runner with STRINGS attributes ------------------------------------------------
 * cpu_direct serves no STRINGS attribute (the recurrent ops' activations), so the recurrent
 * tests build their node here: attributes through fake_graph, tensors owned by the tnode, and
 * check(), then run() on a pool, as cpu_direct_run does. */

typedef struct tnode {
  fake_graph g;
  uint32_t n_in, n_out;
  cpu_tensor in[8], out[8];
  int64_t in_dims[8][8], out_dims[8][8];
} tnode;

static cpu_tensor tn_fill(int64_t *store, uint32_t dt, int rank, const int64_t *dims) {
  for (int i = 0; i < rank; i++)
    store[i] = dims[i];
  cpu_tensor t = mk_tensor(dt, (uint32_t)rank, store, NULL);
  t.data = calloc(1, t.nbytes ? t.nbytes : 1);
  return t;
}

static void tn_input_raw(tnode *t, uint32_t dt, int rank, const int64_t *dims, const void *raw) {
  uint32_t k = t->n_in++;
  t->in[k] = tn_fill(t->in_dims[k], dt, rank, dims);
  if (raw && t->in[k].nbytes)
    memcpy(t->in[k].data, raw, t->in[k].nbytes);
}

static void tn_input(tnode *t, uint32_t dt, int rank, const int64_t *dims, const double *v) {
  void *raw = to_raw(dt, v, prod(dims, rank));
  tn_input_raw(t, dt, rank, dims, raw);
  free(raw);
}

static void tn_input_ints(tnode *t, uint32_t dt, int rank, const int64_t *dims, const int64_t *v) {
  uint32_t k = t->n_in++;
  t->in[k] = tn_fill(t->in_dims[k], dt, rank, dims);
  for (size_t i = 0; i < t->in[k].count; i++) {
    if (dt == TSR_DTYPE_INT64)
      ((int64_t *)t->in[k].data)[i] = v[i];
    else
      ((int32_t *)t->in[k].data)[i] = (int32_t)v[i];
  }
}

static void tn_absent_input(tnode *t) { memset(&t->in[t->n_in++], 0, sizeof(cpu_tensor)); }

/* Outputs hold garbage (NaN for floats), so elements a kernel forgets to write show up. */
static void tn_output(tnode *t, uint32_t dt, int rank, const int64_t *dims) {
  uint32_t k = t->n_out++;
  t->out[k] = tn_fill(t->out_dims[k], dt, rank, dims);
  memset(t->out[k].data, 0xff, t->out[k].nbytes);
}

static void tn_absent_output(tnode *t) { memset(&t->out[t->n_out++], 0, sizeof(cpu_tensor)); }

static void tn_free(tnode *t) {
  for (uint32_t i = 0; i < t->n_in; i++)
    free(t->in[i].data);
  for (uint32_t i = 0; i < t->n_out; i++)
    free(t->out[i].data);
}

/* Returns 0, a positive reason when check() refused, or -1 when run() failed. */
static int tn_run(tnode *t, const char *op_type, int64_t opset, size_t threads, char *err,
                  size_t err_size) {
  err[0] = '\0';
  const cpu_op *op = cpu_find_op("", op_type, opset);
  ck_assert_ptr_nonnull(op);
  cpu_tensor in_static[8], out_static[8];
  for (uint32_t i = 0; i < t->n_in; i++) {
    in_static[i] = t->in[i];
    in_static[i].data = NULL;
  }
  for (uint32_t i = 0; i < t->n_out; i++) {
    out_static[i] = t->out[i];
    out_static[i].data = NULL;
  }
  cpu_node node = {.g = (const tsr_plugin_graph *)&t->g,
                   .api = &fake_api,
                   .name = "tnode",
                   .op_type = op_type,
                   .opset = opset,
                   .n_in = t->n_in,
                   .n_out = t->n_out,
                   .in = in_static,
                   .out = out_static};
  if (op->check) {
    tsr_plugin_reason r = op->check(&node, err, err_size);
    if (r != TSR_PLUGIN_REASON_NONE)
      return (int)r;
  }
  cpu_pool *pool = cpu_pool_create(threads);
  cpu_ctx ctx = {.pool = pool, .isa = cpu_detect_isa(), .err = err, .err_size = err_size};
  int rc = op->run(&ctx, &node, NULL, t->in, t->out);
  cpu_pool_destroy(pool);
  return rc == 0 ? 0 : -1;
}

#define TN_RUN_OK(t, op, opset, threads)                                                           \
  do {                                                                                             \
    char err_[512];                                                                                \
    int rc_ = tn_run((t), (op), (opset), (threads), err_, sizeof err_);                            \
    ck_assert_msg(rc_ == 0, "%s failed (%d): %s", (op), rc_, err_);                                \
  } while (0)

static void tn_expect(tnode *t, const char *op, int64_t opset, int want, const char *needle) {
  char err[512];
  int rc = tn_run(t, op, opset, 1, err, sizeof err);
  ck_assert_msg(want ? rc == want : rc != 0, "%s: expected %d, got %d (%s)", op, want, rc, err);
  ck_assert_msg(strstr(err, needle) != NULL, "message '%s' does not mention '%s'", err, needle);
}

/* ---- Recurrent layers: the reference ---------------------------------------------------- */

enum { K_RNN = 0, K_GRU = 1, K_LSTM = 2 };

typedef struct ref_act {
  const char *name;
  double alpha, beta;
} ref_act;

/* The activations with the defaults the kernel documents (those of the ONNX operators). */
static const struct {
  const char *name;
  int uses; /* 0 none, 1 alpha, 2 alpha and beta */
  double alpha, beta;
} act_defs[] = {
    {"Relu", 0, 0, 0},         {"Tanh", 0, 0, 0},
    {"Sigmoid", 0, 0, 0},      {"Affine", 2, 1, 0},
    {"LeakyRelu", 1, 0.01, 0}, {"ThresholdedRelu", 1, 1, 0},
    {"ScaledTanh", 2, 1, 1},   {"HardSigmoid", 2, 0.2, 0.5},
    {"Elu", 1, 1, 0},          {"Softsign", 0, 0, 0},
    {"Softplus", 0, 0, 0},
};

static int act_def(const char *name) {
  for (size_t i = 0; i < sizeof act_defs / sizeof act_defs[0]; i++)
    if (!strcmp(act_defs[i].name, name))
      return (int)i;
  return -1;
}

static double ref_apply(const ref_act *a, double x) {
  const char *n = a->name;
  double al = a->alpha, be = a->beta;
  if (!strcmp(n, "Relu"))
    return x > 0 ? x : 0;
  if (!strcmp(n, "Tanh"))
    return tanh(x);
  if (!strcmp(n, "Sigmoid"))
    return 1.0 / (1.0 + exp(-x));
  if (!strcmp(n, "Affine"))
    return al * x + be;
  if (!strcmp(n, "LeakyRelu"))
    return x >= 0 ? x : al * x;
  if (!strcmp(n, "ThresholdedRelu"))
    return x > al ? x : 0;
  if (!strcmp(n, "ScaledTanh"))
    return al * tanh(be * x);
  if (!strcmp(n, "HardSigmoid"))
    return fmin(fmax(al * x + be, 0), 1);
  if (!strcmp(n, "Elu"))
    return x >= 0 ? x : al * (exp(x) - 1);
  if (!strcmp(n, "Softsign"))
    return x / (1 + fabs(x));
  if (!strcmp(n, "Softplus"))
    return log(1 + exp(x));
  return NAN;
}

typedef struct rnn_case {
  int kind, opset;
  int seq, batch, input, hidden, dirs;
  int direction; /* 0 forward, 1 reverse, 2 bidirectional */
  int layout;
  bool has_b, has_lens, has_h0, has_c0, has_p;
  bool want_y, want_yh, want_yc;
  int n_names; /* 0: attribute absent */
  const char *names[6];
  int n_alpha, n_beta;
  float alphas[6], betas[6];
  bool has_clip;
  float clip;
  int input_forget, lbr;
  uint32_t dtype;
} rnn_case;

static int gates_of(int kind) { return kind == K_LSTM ? 4 : kind == K_GRU ? 3 : 1; }
static int nact_of(int kind) { return kind == K_LSTM ? 3 : kind == K_GRU ? 2 : 1; }

/* The activations of direction d after defaults, duplication and alpha/beta consumption. */
static void resolve_acts(const rnn_case *c, ref_act acts[2][3]) {
  static const char *const dflt[3][3] = {
      {"Tanh", NULL, NULL}, {"Sigmoid", "Tanh", NULL}, {"Sigmoid", "Tanh", "Tanh"}};
  int na = nact_of(c->kind), listed = c->n_names ? c->n_names : na, ia = 0, ib = 0;
  for (int k = 0; k < listed; k++) {
    const char *name = c->n_names ? c->names[k] : dflt[c->kind][k];
    int def = act_def(name);
    ref_act a = {name, act_defs[def].alpha, act_defs[def].beta};
    if (act_defs[def].uses >= 1 && ia < c->n_alpha)
      a.alpha = c->alphas[ia++];
    if (act_defs[def].uses >= 2 && ib < c->n_beta)
      a.beta = c->betas[ib++];
    acts[k / na][k % na] = a;
  }
  if (listed == na)
    for (int k = 0; k < na; k++)
      acts[1][k] = acts[0][k];
}

static double clipv(const rnn_case *c, double v) {
  return c->has_clip ? fmin(fmax(v, -c->clip), c->clip) : v;
}

/* One direction of one batch entry at a time, straight from the ONNX equations. */
static void ref_rnn(const rnn_case *c, const double *X, const double *W, const double *R,
                    const double *B, const int64_t *lens, const double *H0, const double *C0,
                    const double *P, double *Y, double *YH, double *YC) {
  int S = c->seq, N = c->batch, I = c->input, H = c->hidden, D = c->dirs, G = gates_of(c->kind);
  ref_act acts[2][3];
  resolve_acts(c, acts);
  double *h = malloc(H * sizeof *h), *cs = malloc(H * sizeof *cs), *hn = malloc(H * sizeof *hn);
  double *cn = malloc(H * sizeof *cn), *xw = malloc(G * H * sizeof *xw);
  double *rh = malloc(G * H * sizeof *rh), *tmp = malloc(H * sizeof *tmp);
  for (int d = 0; d < D; d++) {
    bool back = c->direction == 1 || d == 1;
    const double *Wd = W + (size_t)d * G * H * I, *Rd = R + (size_t)d * G * H * H;
    const double *Wb = B ? B + (size_t)d * 2 * G * H : NULL, *Rb = Wb ? Wb + G * H : NULL;
    const double *Pd = P ? P + (size_t)d * 3 * H : NULL;
    const ref_act *f = &acts[d][0], *g = &acts[d][1], *hh = &acts[d][2];
    for (int b = 0; b < N; b++) {
      int len = lens ? (int)lens[b] : S;
      size_t so = c->layout ? ((size_t)b * D + d) * H : ((size_t)d * N + b) * H;
      for (int j = 0; j < H; j++) {
        h[j] = H0 ? H0[so + j] : 0;
        cs[j] = C0 ? C0[so + j] : 0;
      }
      for (int s = 0; s < len; s++) {
        int t = back ? len - 1 - s : s;
        const double *x = X + (c->layout ? (size_t)b * S + t : (size_t)t * N + b) * I;
        for (int q = 0; q < G * H; q++) {
          double a = Wb ? Wb[q] : 0, e = Rb ? Rb[q] : 0;
          for (int i = 0; i < I; i++)
            a += x[i] * Wd[(size_t)q * I + i];
          for (int k = 0; k < H; k++)
            e += h[k] * Rd[(size_t)q * H + k];
          xw[q] = a; /* W x + Wb */
          rh[q] = e; /* R h + Rb */
        }
        if (c->kind == K_RNN) {
          for (int j = 0; j < H; j++)
            hn[j] = ref_apply(f, clipv(c, xw[j] + rh[j]));
        } else if (c->kind == K_GRU) {
          for (int j = 0; j < H; j++) {
            double z = ref_apply(f, clipv(c, xw[j] + rh[j]));
            double r = ref_apply(f, clipv(c, xw[H + j] + rh[H + j]));
            tmp[j] = r;
            (void)z;
          }
          for (int j = 0; j < H; j++) {
            double z = ref_apply(f, clipv(c, xw[j] + rh[j]));
            double cand;
            if (c->lbr) {
              cand = xw[2 * H + j] + tmp[j] * rh[2 * H + j];
            } else {
              double e = Rb ? Rb[2 * H + j] : 0;
              for (int k = 0; k < H; k++)
                e += tmp[k] * h[k] * Rd[(size_t)(2 * H + j) * H + k];
              cand = xw[2 * H + j] + e;
            }
            cand = ref_apply(g, clipv(c, cand));
            hn[j] = (1 - z) * cand + z * h[j];
          }
        } else {
          for (int j = 0; j < H; j++) {
            double pi = Pd ? Pd[j] : 0, po = Pd ? Pd[H + j] : 0, pf = Pd ? Pd[2 * H + j] : 0;
            double ig = ref_apply(f, clipv(c, xw[j] + rh[j] + pi * cs[j]));
            double fg = c->input_forget
                            ? 1 - ig
                            : ref_apply(f, clipv(c, xw[2 * H + j] + rh[2 * H + j] + pf * cs[j]));
            double cg = ref_apply(g, clipv(c, xw[3 * H + j] + rh[3 * H + j]));
            cn[j] = fg * cs[j] + ig * cg;
            double og = ref_apply(f, clipv(c, xw[H + j] + rh[H + j] + po * cn[j]));
            hn[j] = og * ref_apply(hh, cn[j]);
          }
          memcpy(cs, cn, H * sizeof *cs);
        }
        memcpy(h, hn, H * sizeof *h);
        size_t yo =
            c->layout ? (((size_t)b * S + t) * D + d) * H : (((size_t)t * D + d) * N + b) * H;
        for (int j = 0; j < H; j++)
          Y[yo + j] = h[j];
      }
      for (int t = len; t < S; t++) {
        size_t yo =
            c->layout ? (((size_t)b * S + t) * D + d) * H : (((size_t)t * D + d) * N + b) * H;
        for (int j = 0; j < H; j++)
          Y[yo + j] = 0;
      }
      for (int j = 0; j < H; j++) {
        YH[so + j] = len ? h[j] : 0;
        YC[so + j] = len ? cs[j] : 0;
      }
    }
  }
  free(h), free(cs), free(hn), free(cn), free(xw), free(rh), free(tmp);
}

static const char *const op_names[3] = {"RNN", "GRU", "LSTM"};

/* Builds the node for case c, runs it, and compares every requested output. */
static void rnn_run_case(rng *r, const rnn_case *c, size_t threads, const char *tag) {
  int S = c->seq, N = c->batch, I = c->input, H = c->hidden, D = c->dirs, G = gates_of(c->kind);
  uint32_t dt = c->dtype;
  int64_t xd[3] = {S, N, I}, wd[3] = {D, G * H, I}, rd[3] = {D, G * H, H}, bd[2] = {D, 2 * G * H};
  int64_t ld[1] = {N}, sd[3] = {D, N, H}, pd[2] = {D, 3 * H}, yd[4] = {S, D, N, H};
  if (c->layout) {
    xd[0] = N, xd[1] = S;
    sd[0] = N, sd[1] = D;
    yd[0] = N, yd[1] = S, yd[2] = D;
  }
  double *X = rand_vals(r, dt, prod(xd, 3), 1.0, 0);
  double *W = rand_vals(r, dt, prod(wd, 3), 0.6, 0);
  double *R = rand_vals(r, dt, prod(rd, 3), 0.6, 0);
  double *B = c->has_b ? rand_vals(r, dt, prod(bd, 2), 0.5, 0) : NULL;
  double *H0 = c->has_h0 ? rand_vals(r, dt, prod(sd, 3), 1.0, 0) : NULL;
  double *C0 = c->has_c0 ? rand_vals(r, dt, prod(sd, 3), 1.0, 0) : NULL;
  double *P = c->has_p ? rand_vals(r, dt, prod(pd, 2), 0.5, 0) : NULL;
  int64_t *lens = NULL;
  if (c->has_lens) {
    lens = malloc((N ? N : 1) * sizeof *lens);
    for (int b = 0; b < N; b++)
      lens[b] = rint_in(r, 0, S);
    if (N > 0 && rint_in(r, 0, 1))
      lens[0] = S;
  }
  tnode t = {0};
  fake_graph *g = &t.g;
  if (c->has_clip)
    fake_float(g, "clip", c->clip);
  static const char *const dirs[3] = {"forward", "reverse", "bidirectional"};
  if (c->direction || rint_in(r, 0, 1))
    fake_string(g, "direction", dirs[c->direction]);
  if (rint_in(r, 0, 3))
    fake_int(g, "hidden_size", H);
  if (c->opset >= 14 && (c->layout || rint_in(r, 0, 1)))
    fake_int(g, "layout", c->layout);
  if (c->kind == K_LSTM && (c->input_forget || rint_in(r, 0, 1)))
    fake_int(g, "input_forget", c->input_forget);
  if (c->kind == K_GRU && (c->lbr || rint_in(r, 0, 1)))
    fake_int(g, "linear_before_reset", c->lbr);
  if (c->n_alpha)
    fake_floats(g, "activation_alpha", (size_t)c->n_alpha, c->alphas);
  if (c->n_beta)
    fake_floats(g, "activation_beta", (size_t)c->n_beta, c->betas);
  if (c->n_names)
    fake_strings(g, "activations", (size_t)c->n_names, c->names);
  tn_input(&t, dt, 3, xd, X);
  tn_input(&t, dt, 3, wd, W);
  tn_input(&t, dt, 3, rd, R);
  int n_in = c->kind == K_LSTM ? 8 : 6;
  /* Trailing absent inputs are sometimes left out altogether. */
  int last = 2;
  if (B)
    last = 3;
  if (lens)
    last = 4;
  if (H0)
    last = 5;
  if (C0)
    last = 6;
  if (P)
    last = 7;
  if (rint_in(r, 0, 1))
    last = n_in - 1;
  for (int k = 3; k <= last; k++) {
    if (k == 3 && B)
      tn_input(&t, dt, 2, bd, B);
    else if (k == 4 && lens)
      tn_input_ints(&t, rint_in(r, 0, 1) ? TSR_DTYPE_INT32 : TSR_DTYPE_INT64, 1, ld, lens);
    else if (k == 5 && H0)
      tn_input(&t, dt, 3, sd, H0);
    else if (k == 6 && C0)
      tn_input(&t, dt, 3, sd, C0);
    else if (k == 7 && P)
      tn_input(&t, dt, 2, pd, P);
    else
      tn_absent_input(&t);
  }
  int n_out = c->kind == K_LSTM ? 3 : 2;
  if (c->want_y)
    tn_output(&t, dt, 4, yd);
  else
    tn_absent_output(&t);
  if (c->want_yh)
    tn_output(&t, dt, 3, sd);
  else
    tn_absent_output(&t);
  if (n_out == 3) {
    if (c->want_yc)
      tn_output(&t, dt, 3, sd);
    else
      tn_absent_output(&t);
  }
  TN_RUN_OK(&t, op_names[c->kind], c->opset, threads);

  size_t ny = prod(yd, 4), ns = prod(sd, 3);
  double *Y = malloc((ny + 1) * sizeof *Y), *YH = malloc((ns + 1) * sizeof *YH);
  double *YC = malloc((ns + 1) * sizeof *YC);
  ref_rnn(c, X, W, R, B, lens, H0, C0, P, Y, YH, YC);
  double atol = dt == TSR_DTYPE_FLOAT16 ? 4e-3 : 2e-5, rtol = dt == TSR_DTYPE_FLOAT16 ? 4e-3 : 2e-5;
  atol *= 1 + S / 4.0;
  char what[256];
  if (c->want_y) {
    snprintf(what, sizeof what, "%s Y", tag);
    expect_close(what, &t.out[0], Y, ny, atol, rtol);
  }
  if (c->want_yh) {
    snprintf(what, sizeof what, "%s Y_h", tag);
    expect_close(what, &t.out[1], YH, ns, atol, rtol);
  }
  if (n_out == 3 && c->want_yc) {
    snprintf(what, sizeof what, "%s Y_c", tag);
    expect_close(what, &t.out[2], YC, ns, atol, rtol);
  }
  tn_free(&t);
  free(X), free(W), free(R), free(B), free(H0), free(C0), free(P), free(lens);
  free(Y), free(YH), free(YC);
}

/* Activations safe for random comparisons: continuous, so float32 rounding cannot flip a
 * branch into a large difference. ThresholdedRelu is tested on fixed values below. */
static const char *const smooth_acts[] = {"Relu",      "Tanh",       "Sigmoid",     "Affine",
                                          "LeakyRelu", "ScaledTanh", "HardSigmoid", "Elu",
                                          "Softsign",  "Softplus"};

static void random_case(rng *r, rnn_case *c, int kind, bool big) {
  memset(c, 0, sizeof *c);
  c->kind = kind;
  c->direction = (int)rint_in(r, 0, 2);
  c->dirs = c->direction == 2 ? 2 : 1;
  c->layout = (int)rint_in(r, 0, 2) == 0;
  c->opset = c->layout || rint_in(r, 0, 1) ? 14 : 7;
  c->seq = big ? (int)rint_in(r, 3, 7) : (int)rint_in(r, 1, 5);
  c->batch = big ? (int)rint_in(r, 5, 17) : (int)rint_in(r, 1, 4);
  c->input = big ? (int)rint_in(r, 20, 70) : (int)rint_in(r, 1, 5);
  c->hidden = big ? (int)rint_in(r, 20, 48) : (int)rint_in(r, 1, 6);
  c->has_b = rint_in(r, 0, 2) > 0;
  c->has_lens = rint_in(r, 0, 2) == 0;
  c->has_h0 = rint_in(r, 0, 1);
  c->has_c0 = kind == K_LSTM && rint_in(r, 0, 1);
  c->has_p = kind == K_LSTM && rint_in(r, 0, 1);
  c->want_y = rint_in(r, 0, 3) > 0;
  c->want_yh = !c->want_y || rint_in(r, 0, 1);
  c->want_yc = kind == K_LSTM && rint_in(r, 0, 1);
  c->input_forget = kind == K_LSTM && rint_in(r, 0, 3) == 0;
  c->lbr = kind == K_GRU && rint_in(r, 0, 1);
  if (rint_in(r, 0, 2) == 0) {
    c->has_clip = true;
    c->clip = (float)(0.3 + 2.0 * (runi(r) + 1.0));
  }
  int na = nact_of(kind);
  if (rint_in(r, 0, 1)) {
    c->n_names = c->dirs == 2 && rint_in(r, 0, 1) ? 2 * na : na;
    for (int k = 0; k < c->n_names; k++) {
      c->names[k] =
          smooth_acts[rint_in(r, 0, (int64_t)(sizeof smooth_acts / sizeof *smooth_acts) - 1)];
      /* Keep gates bounded in most cases: unbounded activations on gates make sums grow. */
      if (k % na == 0 && kind != K_RNN && rint_in(r, 0, 1))
        c->names[k] = "Sigmoid";
    }
    c->n_alpha = (int)rint_in(r, 0, 6);
    c->n_beta = (int)rint_in(r, 0, 6);
    for (int k = 0; k < 6; k++) {
      c->alphas[k] = (float)(0.2 + 0.8 * (runi(r) + 1.0) / 2.0);
      c->betas[k] = (float)(runi(r) * 0.5);
    }
  }
  c->dtype = rint_in(r, 0, 5) == 0 ? TSR_DTYPE_FLOAT16 : TSR_DTYPE_FLOAT32;
}

START_TEST(test_rnn_random) {
  rng r = {0x5eed1234u};
  for (int it = 0; it < 360; it++) {
    size_t threads = vary_env(it);
    rnn_case c;
    random_case(&r, &c, it % 3, false);
    char tag[128];
    snprintf(tag, sizeof tag, "%s #%d (dir %d layout %d seq %d batch %d in %d hid %d)",
             op_names[c.kind], it, c.direction, c.layout, c.seq, c.batch, c.input, c.hidden);
    rnn_run_case(&r, &c, threads, tag);
  }
}
END_TEST

/* Sizes that take cpu_sgemm's blocked paths, with threads. */
START_TEST(test_rnn_large) {
  rng r = {0xb16b00b5u};
  for (int it = 0; it < 24; it++) {
    size_t threads = vary_env(it);
    rnn_case c;
    random_case(&r, &c, it % 3, true);
    c.dtype = TSR_DTYPE_FLOAT32;
    char tag[128];
    snprintf(tag, sizeof tag, "large %s #%d", op_names[c.kind], it);
    rnn_run_case(&r, &c, threads, tag);
  }
}
END_TEST

/* Every activation on fixed values: an RNN with W = 1, R = 0 and no bias outputs f(x). */
START_TEST(test_rnn_activations) {
  static const float xs[6] = {-2.5f, -0.75f, -0.1f, 0.3f, 1.6f, 3.0f};
  for (size_t a = 0; a < sizeof act_defs / sizeof act_defs[0]; a++) {
    for (int custom = 0; custom < 2; custom++) {
      int64_t xd[3] = {6, 1, 1}, wd[3] = {1, 1, 1}, yd[4] = {6, 1, 1, 1}, hd[3] = {1, 1, 1};
      float one = 1.0f, zero = 0.0f, alpha = 0.7f, beta = -0.3f;
      const char *name = act_defs[a].name;
      /* Names are case-insensitive; the custom pass uses lower case. */
      char lower[32];
      size_t k = 0;
      for (; name[k] && k + 1 < sizeof lower; k++)
        lower[k] = custom && name[k] >= 'A' && name[k] <= 'Z' ? (char)(name[k] + 32) : name[k];
      lower[k] = '\0';
      const char *names[1] = {lower};
      tnode t = {0};
      if (custom) {
        fake_floats(&t.g, "activation_alpha", 1, &alpha);
        fake_floats(&t.g, "activation_beta", 1, &beta);
      }
      fake_strings(&t.g, "activations", 1, names);
      tn_input_raw(&t, TSR_DTYPE_FLOAT32, 3, xd, xs);
      tn_input_raw(&t, TSR_DTYPE_FLOAT32, 3, wd, &one);
      tn_input_raw(&t, TSR_DTYPE_FLOAT32, 3, wd, &zero);
      tn_output(&t, TSR_DTYPE_FLOAT32, 4, yd);
      tn_output(&t, TSR_DTYPE_FLOAT32, 3, hd);
      TN_RUN_OK(&t, "RNN", 14, 1);
      ref_act ra = {name, act_defs[a].alpha, act_defs[a].beta};
      if (custom && act_defs[a].uses >= 1)
        ra.alpha = alpha;
      if (custom && act_defs[a].uses >= 2)
        ra.beta = beta;
      double ref[6];
      for (int i = 0; i < 6; i++)
        ref[i] = ref_apply(&ra, xs[i]);
      char what[64];
      snprintf(what, sizeof what, "activation %s%s", name, custom ? " (alpha/beta)" : "");
      expect_close(what, &t.out[0], ref, 6, 1e-6, 1e-6);
      expect_close(what, &t.out[1], &ref[5], 1, 1e-6, 1e-6);
      tn_free(&t);
    }
  }
}
END_TEST

/* A fixed case from the ONNX backend tests (test_lstm_defaults' generator): W = R = 0.1,
 * X = [[1,2],[3,4],[5,6]]. */
START_TEST(test_lstm_onnx_defaults) {
  float x[6] = {1, 2, 3, 4, 5, 6}, w[24], rr[36];
  for (int i = 0; i < 24; i++)
    w[i] = 0.1f;
  for (int i = 0; i < 36; i++)
    rr[i] = 0.1f;
  int64_t xd[3] = {1, 3, 2}, wd[3] = {1, 12, 2}, rd[3] = {1, 12, 3}, hd[3] = {1, 3, 3};
  tnode t = {0};
  fake_int(&t.g, "hidden_size", 3);
  tn_input_raw(&t, TSR_DTYPE_FLOAT32, 3, xd, x);
  tn_input_raw(&t, TSR_DTYPE_FLOAT32, 3, wd, w);
  tn_input_raw(&t, TSR_DTYPE_FLOAT32, 3, rd, rr);
  tn_absent_output(&t);
  tn_output(&t, TSR_DTYPE_FLOAT32, 3, hd);
  TN_RUN_OK(&t, "LSTM", 14, 1);
  /* One step from a zero state: every gate sees s = 0.1 * (x0 + x1). */
  double ref[9];
  for (int b = 0; b < 3; b++) {
    double s = 0.1 * (x[2 * b] + x[2 * b + 1]);
    double g = 1 / (1 + exp(-s)), c = g * tanh(s);
    for (int j = 0; j < 3; j++)
      ref[b * 3 + j] = g * tanh(c);
  }
  expect_close("lstm defaults", &t.out[1], ref, 9, 1e-6, 1e-5);
  tn_free(&t);
}
END_TEST

/* A node with X [2,3,4], hidden 5 and the given gates, for the error cases. */
static void err_node(tnode *t, int gates, uint32_t dt, const int64_t *wdims) {
  int64_t xd[3] = {2, 3, 4}, wd[3] = {1, 5 * gates, 4}, rd[3] = {1, 5 * gates, 5};
  int64_t yd[4] = {2, 1, 3, 5};
  tn_input(t, dt, 3, xd, NULL);
  tn_input(t, dt, 3, wdims ? wdims : wd, NULL);
  tn_input(t, dt, 3, rd, NULL);
  tn_output(t, dt, 4, yd);
}

START_TEST(test_rnn_errors) {
  /* float64 is refused, not computed in float32. */
  tnode t = {0};
  err_node(&t, 4, TSR_DTYPE_FLOAT64, NULL);
  tn_expect(&t, "LSTM", 14, TSR_PLUGIN_REASON_DTYPE, "float64");
  tn_free(&t);

  /* Attribute refusals. */
  const char *acts2[2] = {"Sigmoid", "Tanh"}, *acts3[3] = {"Sigmoid", "Tanh", "Swish"};
  for (int i = 0; i < 8; i++) {
    memset(&t, 0, sizeof t);
    const char *needle = "";
    switch (i) {
    case 0: fake_string(&t.g, "direction", "sideways"), needle = "direction 'sideways'"; break;
    case 1: fake_int(&t.g, "layout", 2), needle = "layout 2"; break;
    case 2: fake_float(&t.g, "clip", -1.0f), needle = "clip -1"; break;
    case 3: fake_int(&t.g, "input_forget", 3), needle = "input_forget 3"; break;
    case 4: fake_int(&t.g, "hidden_size", 6), needle = "hidden_size 6"; break;
    case 5: fake_strings(&t.g, "activations", 2, acts2), needle = "2 names, expected 3"; break;
    case 6: fake_strings(&t.g, "activations", 3, acts3), needle = "'Swish'"; break;
    case 7: fake_int(&t.g, "activations", 1), needle = "not a list of strings"; break;
    }
    err_node(&t, 4, TSR_DTYPE_FLOAT32, NULL);
    tn_expect(&t, "LSTM", 14, i == 4 ? TSR_PLUGIN_REASON_SHAPE : TSR_PLUGIN_REASON_ATTRIBUTE,
              needle);
    tn_free(&t);
  }
  /* Shapes: W with the wrong input size; a wrong Y_h; a P of the wrong size. */
  int64_t wbad[3] = {1, 20, 3};
  memset(&t, 0, sizeof t);
  err_node(&t, 4, TSR_DTYPE_FLOAT32, wbad);
  tn_expect(&t, "LSTM", 14, TSR_PLUGIN_REASON_SHAPE, "W is [1,20,3], expected [1,20,4]");
  tn_free(&t);
  int64_t bad_h[3] = {1, 2, 5};
  memset(&t, 0, sizeof t);
  err_node(&t, 3, TSR_DTYPE_FLOAT32, NULL);
  tn_output(&t, TSR_DTYPE_FLOAT32, 3, bad_h);
  tn_expect(&t, "GRU", 14, TSR_PLUGIN_REASON_SHAPE, "Y_h is [1,2,5]");
  tn_free(&t);
  int64_t pbad[2] = {1, 12};
  memset(&t, 0, sizeof t);
  err_node(&t, 4, TSR_DTYPE_FLOAT32, NULL);
  for (int k = 3; k < 7; k++)
    tn_absent_input(&t);
  tn_input(&t, TSR_DTYPE_FLOAT32, 2, pbad, NULL);
  tn_expect(&t, "LSTM", 14, TSR_PLUGIN_REASON_SHAPE, "P is [1,12], expected [1,15]");
  tn_free(&t);
  /* sequence_lens of the wrong dtype, and past the sequence at run time. */
  int64_t ld[1] = {3}, lens[3] = {1, 3, 2};
  memset(&t, 0, sizeof t);
  err_node(&t, 1, TSR_DTYPE_FLOAT32, NULL);
  tn_absent_input(&t);
  tn_input(&t, TSR_DTYPE_FLOAT32, 1, ld, NULL);
  tn_expect(&t, "RNN", 14, TSR_PLUGIN_REASON_DTYPE, "sequence_lens is float32");
  tn_free(&t);
  memset(&t, 0, sizeof t);
  err_node(&t, 1, TSR_DTYPE_FLOAT32, NULL);
  tn_absent_input(&t);
  tn_input_ints(&t, TSR_DTYPE_INT32, 1, ld, lens);
  tn_expect(&t, "RNN", 14, -1, "sequence_lens[1] = 3 is outside [0, 2]");
  tn_free(&t);
  /* Too many outputs for RNN. */
  int64_t hd[3] = {1, 3, 5};
  memset(&t, 0, sizeof t);
  err_node(&t, 1, TSR_DTYPE_FLOAT32, NULL);
  tn_output(&t, TSR_DTYPE_FLOAT32, 3, hd);
  tn_output(&t, TSR_DTYPE_FLOAT32, 3, hd);
  tn_expect(&t, "RNN", 14, TSR_PLUGIN_REASON_SHAPE, "3 outputs");
  tn_free(&t);

  /* run() without check(): Y too small for the sequence; R not matching W's gates. */
  int64_t xd[3] = {2, 3, 4}, rw[3] = {1, 5, 4}, rr[3] = {1, 5, 5}, gr[3] = {1, 15, 5};
  int64_t ysmall[4] = {1, 1, 3, 5}, yd[4] = {2, 1, 3, 5};
  float *xb = calloc(64, sizeof(float)), *wb = calloc(128, sizeof(float));
  float *rb = calloc(128, sizeof(float)), *yb = calloc(64, sizeof(float));
  cpu_tensor in[3] = {mk_tensor(TSR_DTYPE_FLOAT32, 3, xd, xb),
                      mk_tensor(TSR_DTYPE_FLOAT32, 3, rw, wb),
                      mk_tensor(TSR_DTYPE_FLOAT32, 3, rr, rb)};
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, ysmall, yb)};
  expect_run_fail("RNN", 14, NULL, 3, in, 1, out, "Y is [1,1,3,5]");
  cpu_tensor in2[3] = {in[0], in[1], mk_tensor(TSR_DTYPE_FLOAT32, 3, gr, rb)};
  cpu_tensor out2[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, yd, yb)};
  expect_run_fail("RNN", 14, NULL, 3, in2, 1, out2, "R is [1,15,5], expected [1,5,5]");
  free(xb), free(wb), free(rb), free(yb);
}
END_TEST

/* Zero-length sequences and empty batches. */
START_TEST(test_rnn_empty) {
  int64_t xd[3] = {0, 2, 3}, wd[3] = {1, 16, 3}, rd[3] = {1, 16, 4}, yd[4] = {0, 1, 2, 4};
  int64_t hd[3] = {1, 2, 4};
  tnode t = {0};
  tn_input(&t, TSR_DTYPE_FLOAT32, 3, xd, NULL);
  tn_input(&t, TSR_DTYPE_FLOAT32, 3, wd, NULL);
  tn_input(&t, TSR_DTYPE_FLOAT32, 3, rd, NULL);
  tn_output(&t, TSR_DTYPE_FLOAT32, 4, yd);
  tn_output(&t, TSR_DTYPE_FLOAT32, 3, hd);
  tn_output(&t, TSR_DTYPE_FLOAT32, 3, hd);
  TN_RUN_OK(&t, "LSTM", 14, 2);
  double zeros[8] = {0};
  expect_close("empty Y_h", &t.out[1], zeros, 8, 0, 0);
  expect_close("empty Y_c", &t.out[2], zeros, 8, 0, 0);
  tn_free(&t);
  int64_t xb[3] = {3, 0, 3}, yb[4] = {3, 1, 0, 4}, hb[3] = {1, 0, 4}, gw[3] = {1, 12, 3};
  int64_t gr[3] = {1, 12, 4};
  memset(&t, 0, sizeof t);
  tn_input(&t, TSR_DTYPE_FLOAT32, 3, xb, NULL);
  tn_input(&t, TSR_DTYPE_FLOAT32, 3, gw, NULL);
  tn_input(&t, TSR_DTYPE_FLOAT32, 3, gr, NULL);
  tn_output(&t, TSR_DTYPE_FLOAT32, 4, yb);
  tn_output(&t, TSR_DTYPE_FLOAT32, 3, hb);
  TN_RUN_OK(&t, "GRU", 14, 2);
  tn_free(&t);
  /* Input size 0: only the recurrence and the biases act. */
  int64_t x0[3] = {2, 1, 0}, w0[3] = {1, 3, 0}, r0[3] = {1, 3, 3}, y0[4] = {2, 1, 1, 3};
  int64_t h0[3] = {1, 1, 3};
  memset(&t, 0, sizeof t);
  tn_input(&t, TSR_DTYPE_FLOAT32, 3, x0, NULL);
  tn_input(&t, TSR_DTYPE_FLOAT32, 3, w0, NULL);
  tn_input(&t, TSR_DTYPE_FLOAT32, 3, r0, NULL);
  tn_output(&t, TSR_DTYPE_FLOAT32, 4, y0);
  tn_output(&t, TSR_DTYPE_FLOAT32, 3, h0);
  TN_RUN_OK(&t, "RNN", 14, 1);
  expect_close("input size 0", &t.out[0], zeros, 6, 0, 0);
  tn_free(&t);
}
END_TEST

/* ---- Einsum ------------------------------------------------------------------------------- */

/* The reference: walks the whole index space of an explicit equation (letters only) and adds
 * each product into its output element. A dim of 1 broadcasts against a larger size. */
static void ref_einsum(const char *eq, int nops, const int *ranks, int64_t dims[][8], double **vals,
                       const int64_t *out_dims, int out_rank, double *out) {
  int64_t size[128];
  for (int i = 0; i < 128; i++)
    size[i] = -1;
  const char *terms[8];
  int tlen[8];
  const char *p = eq;
  for (int t = 0; t < nops; t++) {
    terms[t] = p;
    tlen[t] = (int)strcspn(p, ",-");
    for (int a = 0; a < tlen[t]; a++) {
      int ch = (unsigned char)p[a];
      if (size[ch] < 0 || size[ch] == 1)
        size[ch] = dims[t][a];
    }
    p += tlen[t] + 1;
  }
  const char *rhs = strstr(eq, "->") + 2;
  char labels[64];
  int nl = 0;
  for (int ch = 0; ch < 128; ch++)
    if (size[ch] >= 0)
      labels[nl++] = (char)ch;
  size_t on = prod(out_dims, out_rank), total = 1;
  for (size_t i = 0; i < on; i++)
    out[i] = 0;
  for (int l = 0; l < nl; l++)
    total *= (size_t)size[(int)labels[l]];
  int64_t coord[128] = {0};
  for (size_t e = 0; e < total; e++) {
    size_t rem = e;
    for (int l = nl - 1; l >= 0; l--) {
      coord[(int)labels[l]] = (int64_t)(rem % (size_t)size[(int)labels[l]]);
      rem /= (size_t)size[(int)labels[l]];
    }
    double v = 1;
    for (int t = 0; t < nops; t++) {
      size_t off = 0;
      for (int a = 0; a < ranks[t]; a++) {
        int ch = (unsigned char)terms[t][a];
        off = off * (size_t)dims[t][a] + (dims[t][a] == 1 ? 0 : (size_t)coord[ch]);
      }
      v *= vals[t][off];
    }
    size_t oo = 0;
    for (int a = 0; a < out_rank; a++)
      oo = oo * (size_t)out_dims[a] + (size_t)coord[(int)rhs[a]];
    out[oo] += v;
  }
}

typedef struct ein_case {
  const char *eq;     /* given to the kernel */
  const char *ref_eq; /* explicit, letters only, for the reference */
  int nops;
  int ranks[4];
  int64_t dims[4][8];
} ein_case;

static void einsum_run_case(rng *r, const ein_case *c, uint32_t dt, size_t threads) {
  double *vals[4];
  int64_t dims[4][8];
  memcpy(dims, c->dims, sizeof dims);
  cpu_direct *d = cpu_direct_new("Einsum", 12);
  cpu_direct_attr_string(d, "equation", c->eq);
  for (int t = 0; t < c->nops; t++) {
    vals[t] = rand_vals(r, dt, prod(dims[t], c->ranks[t]), 1.0, 4);
    add_input(d, dt, c->ranks[t], dims[t], vals[t]);
  }
  /* Output dims from the reference equation's right side. */
  const char *rhs = strstr(c->ref_eq, "->") + 2;
  int out_rank = (int)strlen(rhs);
  int64_t od[16];
  for (int a = 0; a < out_rank; a++) {
    od[a] = -1;
    const char *p = c->ref_eq;
    for (int t = 0; t < c->nops; t++) {
      size_t tl = strcspn(p, ",-");
      for (size_t k = 0; k < tl; k++)
        if (p[k] == rhs[a] && (od[a] < 0 || od[a] == 1))
          od[a] = dims[t][k];
      p += tl + 1;
    }
  }
  add_output(d, dt, out_rank, od);
  poison_outputs(d, 1);
  RUN_OK(d, threads);
  size_t on = prod(od, out_rank);
  double *ref = malloc((on + 1) * sizeof *ref);
  ref_einsum(c->ref_eq, c->nops, c->ranks, dims, vals, od, out_rank, ref);
  char what[160];
  snprintf(what, sizeof what, "einsum '%s' %s", c->eq, cpu_dtype_name(dt));
  double tol = dt == TSR_DTYPE_FLOAT64 ? 1e-12 : dt == TSR_DTYPE_FLOAT16 ? 2e-2 : 1e-4;
  if (dt != TSR_DTYPE_FLOAT32 && dt != TSR_DTYPE_FLOAT64 && dt != TSR_DTYPE_FLOAT16)
    tol = 0;
  expect_close(what, cpu_direct_out(d, 0), ref, on, tol, tol);
  cpu_direct_free(d);
  for (int t = 0; t < c->nops; t++)
    free(vals[t]);
  free(ref);
}

static const ein_case ein_cases[] = {
    {"ij,jk->ik", "ij,jk->ik", 2, {2, 2}, {{3, 4}, {4, 5}}},
    {"ij,kj->ik", "ij,kj->ik", 2, {2, 2}, {{3, 4}, {5, 4}}},
    {"ji,jk->ik", "ji,jk->ik", 2, {2, 2}, {{4, 3}, {4, 5}}},
    {"ji,kj->ik", "ji,kj->ik", 2, {2, 2}, {{4, 3}, {5, 4}}},
    {"bij,bjk->bik", "bij,bjk->bik", 2, {3, 3}, {{2, 3, 4}, {2, 4, 5}}},
    {"bij, bjk -> bki", "bij,bjk->bki", 2, {3, 3}, {{2, 3, 4}, {2, 4, 5}}},
    {"ij,jk", "ij,jk->ik", 2, {2, 2}, {{3, 4}, {4, 5}}},
    {"i,i", "i,i->", 2, {1, 1}, {{7}, {7}}},
    {"i,j->ij", "i,j->ij", 2, {1, 1}, {{3}, {4}}},
    {"i,j", "i,j->ij", 2, {1, 1}, {{3}, {4}}},
    {"ii->i", "ii->i", 1, {2}, {{4, 4}}},
    {"ii", "ii->", 1, {2}, {{5, 5}}},
    {"...ii->...i", "xii->xi", 1, {3}, {{3, 4, 4}}},
    {"ij->ji", "ij->ji", 1, {2}, {{3, 4}}},
    {"ij->i", "ij->i", 1, {2}, {{3, 4}}},
    {"ij->", "ij->", 1, {2}, {{3, 4}}},
    {"ij", "ij->ij", 1, {2}, {{3, 4}}},
    {"ji", "ji->ij", 1, {2}, {{3, 4}}},
    {"...ij,...jk->...ik", "xyij,yjk->xyik", 2, {4, 3}, {{2, 1, 3, 4}, {5, 4, 2}}},
    {"...ij,...jk", "xyij,yjk->xyik", 2, {4, 3}, {{2, 5, 3, 4}, {5, 4, 2}}},
    {"i...,i...->...", "ixy,ixy->xy", 2, {3, 3}, {{3, 2, 4}, {3, 2, 4}}},
    {"abc,cd,de->abe", "abc,cd,de->abe", 3, {3, 2, 2}, {{2, 3, 4}, {4, 5}, {5, 2}}},
    {"ij,jk->ik", "ij,jk->ik", 2, {2, 2}, {{3, 1}, {4, 5}}},
    {"ij,jk->i", "ij,jk->i", 2, {2, 2}, {{3, 4}, {4, 5}}},
    {"ijk,jk->ik", "ijk,jk->ik", 2, {3, 2}, {{2, 3, 4}, {3, 4}}},
    {"Ab,bA->A", "Ab,bA->A", 2, {2, 2}, {{3, 4}, {4, 3}}},
    {"bA,Ab", "bA,Ab->", 2, {2, 2}, {{3, 4}, {4, 3}}},
    {"iij,jk->ik", "iij,jk->ik", 2, {3, 2}, {{3, 3, 4}, {4, 2}}},
    {"ij,ij->ij", "ij,ij->ij", 2, {2, 2}, {{3, 4}, {3, 4}}},
    {"bhqd,bhkd->bhqk", "bhqd,bhkd->bhqk", 2, {4, 4}, {{2, 3, 5, 8}, {2, 3, 6, 8}}},
    {"bhqk,bhkd->bqhd", "bhqk,bhkd->bqhd", 2, {4, 4}, {{2, 3, 5, 6}, {2, 3, 6, 8}}},
    {"ij,jk->ik", "ij,jk->ik", 2, {2, 2}, {{70, 90}, {90, 80}}},
    {"bik,bkj->bij", "bik,bkj->bij", 2, {3, 3}, {{3, 40, 50}, {3, 50, 30}}},
    {"bik,bkj->bij", "bik,bkj->bij", 2, {3, 3}, {{64, 4, 5}, {64, 5, 3}}},
    {"ij,jk->ik", "ij,jk->ik", 2, {2, 2}, {{0, 4}, {4, 5}}},
    {"ij,jk->ik", "ij,jk->ik", 2, {2, 2}, {{3, 0}, {0, 5}}},
    {"ij->i", "ij->i", 1, {2}, {{3, 0}}},
    {"...,...->...", "xy,xy->xy", 2, {2, 2}, {{2, 3}, {2, 3}}},
    {"i,,i", "i,,i->", 3, {1, 0, 1}, {{4}, {0}, {4}}},
};

START_TEST(test_einsum_cases) {
  rng r = {0xe1e1e1u};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_INT32,
                                 TSR_DTYPE_INT64, TSR_DTYPE_FLOAT16};
  int it = 0;
  for (size_t i = 0; i < sizeof ein_cases / sizeof ein_cases[0]; i++)
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
      const ein_case *c = &ein_cases[i];
      /* float16 only on small cases: its sums would need looser bounds. */
      if (dts[k] == TSR_DTYPE_FLOAT16 && c->dims[0][0] > 10)
        continue;
      einsum_run_case(&r, c, dts[k], vary_env(it++));
    }
}
END_TEST

/* Random batched contractions with random label orders, which exercise the GEMM mapping's
 * transposed, packed and scattered layouts. */
START_TEST(test_einsum_random) {
  rng r = {0xabcdef01u};
  for (int it = 0; it < 150; it++) {
    /* Up to 2 labels of each role: batch b, m, n, k; plus a label summed in A alone. */
    const char *roles[5] = {"bc", "mp", "nq", "kl", "s"};
    int cnt[5] = {(int)rint_in(&r, 0, 2), (int)rint_in(&r, 0, 2), (int)rint_in(&r, 0, 2),
                  (int)rint_in(&r, 0, 2), rint_in(&r, 0, 4) == 0};
    char a[16], b[16], o[16];
    int na = 0, nb = 0, no = 0;
    int64_t size[128] = {0};
    for (int g = 0; g < 5; g++)
      for (int k = 0; k < cnt[g]; k++) {
        char ch = roles[g][k];
        size[(int)ch] = rint_in(&r, 1, 5);
        if (g == 0 || g == 1 || g == 3 || g == 4)
          a[na++] = ch;
        if (g == 0 || g == 2 || g == 3)
          b[nb++] = ch;
        if (g <= 2)
          o[no++] = ch;
      }
    /* Shuffle each term. */
    char *terms[3] = {a, b, o};
    int lens[3] = {na, nb, no};
    for (int t = 0; t < 3; t++)
      for (int i = lens[t] - 1; i > 0; i--) {
        int j = (int)rint_in(&r, 0, i);
        char tmp = terms[t][i];
        terms[t][i] = terms[t][j];
        terms[t][j] = tmp;
      }
    a[na] = b[nb] = o[no] = '\0';
    ein_case c = {.nops = 2, .ranks = {na, nb}};
    char eq[64];
    snprintf(eq, sizeof eq, "%s,%s->%s", a, b, o);
    c.eq = eq;
    c.ref_eq = eq;
    for (int i = 0; i < na; i++)
      c.dims[0][i] = size[(int)a[i]];
    for (int i = 0; i < nb; i++)
      c.dims[1][i] = size[(int)b[i]];
    einsum_run_case(&r, &c, it % 4 == 3 ? TSR_DTYPE_FLOAT64 : TSR_DTYPE_FLOAT32, vary_env(it));
  }
}
END_TEST

START_TEST(test_einsum_errors) {
  int64_t a[2] = {3, 4}, b[2] = {5, 6}, o[2] = {3, 6};
  struct {
    const char *eq;
    const char *needle;
  } bad[] = {
      {"ij,jk->ik", "label 'j' has size 5"}, {"ij,jk,kl->il", "more operands"},
      {"ij->ik", "has 1 operands"},          {"i$,jk->ik", "unexpected '$'"},
      {"ijk,jk->ik", "does not fit"},        {"ij,kl->iz", "output label 'z'"},
      {"ij,kl->ii", "output label 'i'"},     {"ij,kl->i->k", "two '->'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cpu_direct *d = cpu_direct_new("Einsum", 12);
    cpu_direct_attr_string(d, "equation", bad[i].eq);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, a, NULL, false);
    cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, b, NULL, false);
    add_output(d, TSR_DTYPE_FLOAT32, 2, o);
    expect_fail(d, bad[i].needle);
    cpu_direct_free(d);
  }
  int64_t x3[3] = {2, 3, 4}, o2[2] = {2, 3};
  cpu_direct *d = cpu_direct_new("Einsum", 12);
  cpu_direct_attr_string(d, "equation", "...ij->...i");
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, x3, NULL, false);
  add_output(d, TSR_DTYPE_FLOAT32, 2, o2);
  RUN_OK(d, 1);
  cpu_direct_free(d);
  d = cpu_direct_new("Einsum", 12);
  cpu_direct_attr_string(d, "equation", "...ij->i");
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, x3, NULL, false);
  add_output(d, TSR_DTYPE_FLOAT32, 1, o2);
  expect_fail(d, "keep the dims under '...'");
  cpu_direct_free(d);
  d = cpu_direct_new("Einsum", 12);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, a, NULL, false);
  add_output(d, TSR_DTYPE_FLOAT32, 2, a);
  expect_refuse(d, TSR_PLUGIN_REASON_ATTRIBUTE, "equation is missing");
  cpu_direct_free(d);
  d = cpu_direct_new("Einsum", 12);
  cpu_direct_attr_string(d, "equation", "ij->ji");
  cpu_direct_input(d, TSR_DTYPE_BOOL, 2, a, NULL, false);
  add_output(d, TSR_DTYPE_BOOL, 2, a);
  expect_refuse(d, TSR_PLUGIN_REASON_DTYPE, "bool");
  cpu_direct_free(d);
  /* Broadcasting dims under '...' that do not match. */
  int64_t e1[3] = {2, 3, 4}, e2[3] = {3, 4, 5};
  d = cpu_direct_new("Einsum", 12);
  cpu_direct_attr_string(d, "equation", "...ij,...jk->...ik");
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, e1, NULL, false);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, e2, NULL, false);
  add_output(d, TSR_DTYPE_FLOAT32, 3, e1);
  expect_fail(d, "the dims under '...' do not broadcast");
  cpu_direct_free(d);

  /* run() without check(): an output of the wrong shape. */
  float fa[12] = {0}, fb[30] = {0}, fy[20] = {0};
  int64_t b2[2] = {4, 6}, ybad[2] = {3, 5};
  fake_graph g = {0};
  fake_string(&g, "equation", "ij,jk->ik");
  cpu_tensor in[2] = {mk_tensor(TSR_DTYPE_FLOAT32, 2, a, fa),
                      mk_tensor(TSR_DTYPE_FLOAT32, 2, b2, fb)};
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 2, ybad, fy)};
  expect_run_fail("Einsum", 12, &g, 2, in, 1, out, "output is [3,5]");
}
END_TEST

/* ---- Det ---------------------------------------------------------------------------------- */

/* Laplace expansion along the first row. */
static double ref_det(const double *m, int n) {
  if (n == 0)
    return 1;
  if (n == 1)
    return m[0];
  double *minor = malloc((size_t)(n - 1) * (n - 1) * sizeof *minor), s = 0;
  for (int c = 0; c < n; c++) {
    for (int i = 1; i < n; i++)
      for (int j = 0, k = 0; j < n; j++)
        if (j != c)
          minor[(i - 1) * (n - 1) + k++] = m[i * n + j];
    s += (c % 2 ? -1 : 1) * m[c] * ref_det(minor, n - 1);
  }
  free(minor);
  return s;
}

START_TEST(test_det_random) {
  rng r = {0xdede7u};
  for (int it = 0; it < 80; it++) {
    size_t threads = vary_env(it);
    uint32_t dt = it % 4 == 1   ? TSR_DTYPE_FLOAT64
                  : it % 4 == 3 ? TSR_DTYPE_FLOAT16
                                : TSR_DTYPE_FLOAT32;
    int nb = (int)rint_in(&r, 0, 2), n = (int)rint_in(&r, 0, 6);
    int64_t xd[4], od[2];
    for (int i = 0; i < nb; i++)
      xd[i] = od[i] = rint_in(&r, 1, 4);
    xd[nb] = xd[nb + 1] = n;
    size_t batch = prod(od, nb), per = (size_t)n * n;
    double *v = rand_vals(&r, dt, batch * per, 2.0, 0);
    /* Some singular matrices: a repeated row. */
    if (n >= 2 && it % 5 == 0)
      for (size_t b = 0; b < batch; b++)
        memcpy(&v[b * per + n], &v[b * per], n * sizeof *v);
    cpu_direct *d = cpu_direct_new("Det", 11);
    add_input(d, dt, nb + 2, xd, v);
    add_output(d, dt, nb, od);
    poison_outputs(d, 1);
    RUN_OK(d, threads);
    double *ref = malloc((batch + 1) * sizeof *ref);
    for (size_t b = 0; b < batch; b++)
      ref[b] = ref_det(&v[b * per], n);
    double tol = dt == TSR_DTYPE_FLOAT64 ? 1e-11 : dt == TSR_DTYPE_FLOAT16 ? 2e-2 : 2e-5;
    expect_close("det", cpu_direct_out(d, 0), ref, batch, tol * (1 << n), tol);
    cpu_direct_free(d);
    free(v), free(ref);
  }
}
END_TEST

/* The ONNX backend case test_det_2d: [[1,2],[3,4]] -> -2. */
START_TEST(test_det_errors) {
  float m[4] = {1, 2, 3, 4};
  int64_t md[2] = {2, 2};
  cpu_direct *d = cpu_direct_new("Det", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, md, m, false);
  add_output(d, TSR_DTYPE_FLOAT32, 0, NULL);
  RUN_OK(d, 1);
  double want = -2;
  expect_close("det 2d", cpu_direct_out(d, 0), &want, 1, 1e-6, 0);
  cpu_direct_free(d);
  int64_t ns[2] = {2, 3}, od[1] = {2};
  d = cpu_direct_new("Det", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, ns, NULL, false);
  add_output(d, TSR_DTYPE_FLOAT32, 0, NULL);
  expect_refuse(d, TSR_PLUGIN_REASON_SHAPE, "square");
  cpu_direct_free(d);
  d = cpu_direct_new("Det", 11);
  cpu_direct_input(d, TSR_DTYPE_INT32, 2, md, NULL, false);
  add_output(d, TSR_DTYPE_INT32, 0, NULL);
  expect_refuse(d, TSR_PLUGIN_REASON_DTYPE, "int32");
  cpu_direct_free(d);
  /* run() without check(): an output larger than the batch. */
  float y[2];
  cpu_tensor in[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 2, md, m)};
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 1, od, y)};
  expect_run_fail("Det", 11, NULL, 1, in, 1, out, "output is [2]");
}
END_TEST

/* ---- Shrink, MeanVarianceNormalization, ReverseSequence ------------------------------------ */

START_TEST(test_shrink_random) {
  rng r = {0x5471u};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_FLOAT64, TSR_DTYPE_FLOAT16,
                                 TSR_DTYPE_INT32, TSR_DTYPE_INT8};
  for (int it = 0; it < 40; it++) {
    size_t threads = vary_env(it);
    uint32_t dt = dts[it % 5];
    int64_t xd[3] = {rint_in(&r, 0, 5), rint_in(&r, 1, 50), rint_in(&r, 1, 400)};
    size_t n = prod(xd, 3);
    bool is_int = dt == TSR_DTYPE_INT32 || dt == TSR_DTYPE_INT8;
    double *v = rand_vals(&r, dt, n, 3.0, 20);
    float lambd = (float)(is_int ? rint_in(&r, 0, 5) + 0.5 : (runi(&r) + 1.0));
    float bias = (float)(is_int ? rint_in(&r, -3, 3) : runi(&r));
    bool dflt = it % 7 == 0;
    cpu_direct *d = cpu_direct_new("Shrink", 9);
    if (!dflt) {
      cpu_direct_attr_float(d, "lambd", lambd);
      cpu_direct_attr_float(d, "bias", bias);
    } else {
      lambd = 0.5f, bias = 0.0f;
    }
    add_input(d, dt, 3, xd, v);
    add_output(d, dt, 3, xd);
    poison_outputs(d, 1);
    RUN_OK(d, threads);
    double *ref = malloc((n + 1) * sizeof *ref);
    for (size_t i = 0; i < n; i++) {
      double x = v[i];
      double y = x < -lambd ? x + bias : x > lambd ? x - bias : 0;
      if (dt == TSR_DTYPE_FLOAT16)
        y = cpu_half_to_float(cpu_float_to_half((float)y));
      if (dt == TSR_DTYPE_FLOAT32)
        y = (float)((float)x < -lambd  ? (float)x + bias
                    : (float)x > lambd ? (float)x - bias
                                       : 0.0f);
      ref[i] = y;
    }
    expect_close("shrink", cpu_direct_out(d, 0), ref, n, 0, 0);
    cpu_direct_free(d);
    free(v), free(ref);
  }
  int64_t xd[1] = {4};
  cpu_direct *d = cpu_direct_new("Shrink", 9);
  cpu_direct_input(d, TSR_DTYPE_BOOL, 1, xd, NULL, false);
  add_output(d, TSR_DTYPE_BOOL, 1, xd);
  expect_refuse(d, TSR_PLUGIN_REASON_DTYPE, "bool");
  cpu_direct_free(d);
  float x[4] = {0}, y[5];
  int64_t yd[1] = {5};
  cpu_tensor in[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 1, xd, x)};
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 1, yd, y)};
  expect_run_fail("Shrink", 9, NULL, 1, in, 1, out, "output [5] differs");
}
END_TEST

START_TEST(test_mvn_random) {
  rng r = {0x3171u};
  for (int it = 0; it < 60; it++) {
    size_t threads = vary_env(it);
    uint32_t dt = it % 3 == 1 ? TSR_DTYPE_FLOAT64 : TSR_DTYPE_FLOAT32;
    int rank = it % 4 == 0 ? 4 : (int)rint_in(&r, 1, 5);
    int64_t xd[5];
    for (int i = 0; i < rank; i++)
      xd[i] = rint_in(&r, 1, 6);
    bool mask[5] = {false};
    int64_t axes[5];
    int na = 0;
    bool dflt = rank == 4 && it % 8 == 0;
    if (dflt) {
      mask[0] = mask[2] = mask[3] = true;
    } else {
      for (int i = 0; i < rank; i++)
        if (rint_in(&r, 0, 1)) {
          mask[i] = true;
          axes[na++] = rint_in(&r, 0, 1) ? i : i - rank;
        }
    }
    size_t n = prod(xd, rank);
    double *v = rand_vals(&r, dt, n, 3.0, 0);
    for (size_t i = 0; i < n; i++)
      v[i] += 5.0; /* a mean far from 0 */
    if (dt == TSR_DTYPE_FLOAT32)
      for (size_t i = 0; i < n; i++)
        v[i] = (float)v[i];
    cpu_direct *d = cpu_direct_new("MeanVarianceNormalization", 13);
    if (!dflt)
      cpu_direct_attr_ints(d, "axes", (size_t)na, axes);
    add_input(d, dt, rank, xd, v);
    add_output(d, dt, rank, xd);
    poison_outputs(d, 1);
    RUN_OK(d, threads);
    /* Reference: for each element, mean and variance over the elements agreeing with it on the
     * kept axes. */
    double *ref = malloc(n * sizeof *ref);
    int64_t ci[5], cj[5];
    for (size_t i = 0; i < n; i++) {
      size_t rem = i;
      for (int a = rank - 1; a >= 0; a--)
        ci[a] = (int64_t)(rem % (size_t)xd[a]), rem /= (size_t)xd[a];
      double s = 0, q = 0;
      size_t m = 0;
      for (int pass = 0; pass < 2; pass++)
        for (size_t j = 0; j < n; j++) {
          size_t rj = j;
          bool same = true;
          for (int a = rank - 1; a >= 0; a--)
            cj[a] = (int64_t)(rj % (size_t)xd[a]), rj /= (size_t)xd[a];
          for (int a = 0; a < rank; a++)
            same = same && (mask[a] || cj[a] == ci[a]);
          if (!same)
            continue;
          if (pass == 0)
            s += v[j], m++;
          else
            q += (v[j] - s / m) * (v[j] - s / m);
        }
      ref[i] = (v[i] - s / m) / (sqrt(q / m) + 1e-9);
    }
    expect_close("mvn", cpu_direct_out(d, 0), ref, n, dt == TSR_DTYPE_FLOAT64 ? 1e-9 : 2e-5, 1e-5);
    cpu_direct_free(d);
    free(v), free(ref);
  }
  int64_t xd3[3] = {2, 3, 4}, axes_bad[2] = {0, 0}, axes_out[1] = {3};
  cpu_direct *d = cpu_direct_new("MeanVarianceNormalization", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, xd3, NULL, false);
  add_output(d, TSR_DTYPE_FLOAT32, 3, xd3);
  expect_refuse(d, TSR_PLUGIN_REASON_ATTRIBUTE, "default axes");
  cpu_direct_free(d);
  d = cpu_direct_new("MeanVarianceNormalization", 13);
  cpu_direct_attr_ints(d, "axes", 2, axes_bad);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, xd3, NULL, false);
  add_output(d, TSR_DTYPE_FLOAT32, 3, xd3);
  expect_refuse(d, TSR_PLUGIN_REASON_ATTRIBUTE, "repeated");
  cpu_direct_free(d);
  d = cpu_direct_new("MeanVarianceNormalization", 13);
  cpu_direct_attr_ints(d, "axes", 1, axes_out);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 3, xd3, NULL, false);
  add_output(d, TSR_DTYPE_FLOAT32, 3, xd3);
  expect_refuse(d, TSR_PLUGIN_REASON_ATTRIBUTE, "axis 3");
  cpu_direct_free(d);
  d = cpu_direct_new("MeanVarianceNormalization", 13);
  cpu_direct_input(d, TSR_DTYPE_INT32, 3, xd3, NULL, false);
  add_output(d, TSR_DTYPE_INT32, 3, xd3);
  expect_refuse(d, TSR_PLUGIN_REASON_DTYPE, "int32");
  cpu_direct_free(d);
  /* A constant group normalises to 0, not NaN. */
  int64_t cd[4] = {1, 2, 2, 2};
  float cv[8] = {3, 3, 3, 3, 1, 2, 3, 4};
  d = cpu_direct_new("MeanVarianceNormalization", 13);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, cd, cv, false);
  add_output(d, TSR_DTYPE_FLOAT32, 4, cd);
  RUN_OK(d, 1);
  ck_assert(cpu_read_f64(cpu_direct_out(d, 0), 0) == 0.0);
  cpu_direct_free(d);
  /* run() without check(). */
  float x[24] = {0}, y[24];
  int64_t yd[3] = {2, 4, 3};
  cpu_tensor in[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 3, xd3, x)};
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 3, yd, y)};
  expect_run_fail("MeanVarianceNormalization", 13, NULL, 1, in, 1, out, "differs");
}
END_TEST

START_TEST(test_reversesequence_random) {
  rng r = {0x4e7u};
  static const uint32_t dts[] = {TSR_DTYPE_FLOAT32, TSR_DTYPE_INT64, TSR_DTYPE_UINT8,
                                 TSR_DTYPE_FLOAT16, TSR_DTYPE_BOOL};
  for (int it = 0; it < 50; it++) {
    uint32_t dt = dts[it % 5];
    int rank = (int)rint_in(&r, 2, 4), ba = (int)rint_in(&r, 0, 1), ta = 1 - ba;
    int64_t xd[4];
    for (int i = 0; i < rank; i++)
      xd[i] = rint_in(&r, i < 2 ? 0 : 1, 5);
    size_t n = prod(xd, rank), inner = prod(xd + 2, rank - 2);
    double *v = rand_vals(&r, dt, n, 1.0, dt == TSR_DTYPE_BOOL ? 1 : 100);
    if (dt == TSR_DTYPE_BOOL)
      for (size_t i = 0; i < n; i++)
        v[i] = fabs(v[i]);
    int64_t nb = xd[ba], nt = xd[ta], lens[8];
    for (int64_t b = 0; b < nb; b++)
      lens[b] = rint_in(&r, 0, nt);
    cpu_direct *d = cpu_direct_new("ReverseSequence", 10);
    if (ba != 1 || rint_in(&r, 0, 1)) {
      cpu_direct_attr_int(d, "batch_axis", ba);
      cpu_direct_attr_int(d, "time_axis", ta);
    }
    add_input(d, dt, rank, xd, v);
    add_i64_input(d, TSR_DTYPE_INT64, 1, &xd[ba], lens);
    add_output(d, dt, rank, xd);
    poison_outputs(d, 1);
    RUN_OK(d, 1);
    double *ref = malloc((n + 1) * sizeof *ref);
    for (int64_t i0 = 0; i0 < xd[0]; i0++)
      for (int64_t i1 = 0; i1 < xd[1]; i1++) {
        int64_t b = ba == 0 ? i0 : i1, t = ta == 0 ? i0 : i1;
        int64_t st = t < lens[b] ? lens[b] - 1 - t : t;
        int64_t s0 = ta == 0 ? st : i0, s1 = ta == 0 ? i1 : st;
        for (size_t e = 0; e < inner; e++)
          ref[(i0 * xd[1] + i1) * inner + e] = v[(s0 * xd[1] + s1) * inner + e];
      }
    expect_close("reversesequence", cpu_direct_out(d, 0), ref, n, 0, 0);
    cpu_direct_free(d);
    free(v), free(ref);
  }
  int64_t xd[2] = {3, 2}, ld[1] = {2}, lens[2] = {1, 4}, lens3[3] = {1, 1, 1};
  cpu_direct *d = cpu_direct_new("ReverseSequence", 10);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, xd, NULL, false);
  add_i64_input(d, TSR_DTYPE_INT64, 1, ld, lens);
  add_output(d, TSR_DTYPE_FLOAT32, 2, xd);
  expect_fail(d, "sequence_lens[1] = 4");
  cpu_direct_free(d);
  d = cpu_direct_new("ReverseSequence", 10);
  cpu_direct_attr_int(d, "batch_axis", 0);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, xd, NULL, false);
  add_i64_input(d, TSR_DTYPE_INT64, 1, ld, lens);
  add_output(d, TSR_DTYPE_FLOAT32, 2, xd);
  expect_refuse(d, TSR_PLUGIN_REASON_ATTRIBUTE, "batch_axis 0 and time_axis 0");
  cpu_direct_free(d);
  d = cpu_direct_new("ReverseSequence", 10);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 2, xd, NULL, false);
  add_i64_input(d, TSR_DTYPE_INT64, 1, xd, lens3);
  add_output(d, TSR_DTYPE_FLOAT32, 2, xd);
  expect_refuse(d, TSR_PLUGIN_REASON_SHAPE, "sequence_lens is [3]");
  cpu_direct_free(d);
  /* run() without check(): sequence_lens shorter than the batch. */
  float x[6] = {0}, y[6];
  int64_t l1[1] = {1}, lv[1] = {1};
  cpu_tensor in[2] = {mk_tensor(TSR_DTYPE_FLOAT32, 2, xd, x),
                      mk_tensor(TSR_DTYPE_INT64, 1, l1, lv)};
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 2, xd, y)};
  expect_run_fail("ReverseSequence", 10, NULL, 2, in, 1, out, "sequence_lens is [1]");
}
END_TEST

/* ---- MaxUnpool ---------------------------------------------------------------------------- */

START_TEST(test_maxunpool_random) {
  rng r = {0x0a9001u};
  for (int it = 0; it < 60; it++) {
    int nsp = (int)rint_in(&r, 1, 3), rank = nsp + 2;
    int64_t xd[5], yd[5], big[5], ks[3], st[3], pads[6];
    xd[0] = yd[0] = big[0] = rint_in(&r, 1, 2);
    xd[1] = yd[1] = big[1] = rint_in(&r, 1, 3);
    bool with_pads = rint_in(&r, 0, 1), with_shape = it % 3 == 0;
    for (int i = 0; i < nsp; i++) {
      xd[2 + i] = rint_in(&r, 1, 4);
      ks[i] = rint_in(&r, 1, 3);
      st[i] = rint_in(&r, 1, 3);
      pads[i] = with_pads ? rint_in(&r, 0, ks[i] - 1) : 0;
      pads[nsp + i] = with_pads ? rint_in(&r, 0, ks[i] - 1) : 0;
      yd[2 + i] = (xd[2 + i] - 1) * st[i] + ks[i] - pads[i] - pads[nsp + i];
      if (yd[2 + i] < 1)
        yd[2 + i] = 1, pads[i] = pads[nsp + i] = 0, yd[2 + i] = (xd[2 + i] - 1) * st[i] + ks[i];
      big[2 + i] = yd[2 + i] + (with_shape ? rint_in(&r, 0, 2) : 0);
    }
    size_t nx = prod(xd, rank), ny = prod(yd, rank), nbig = prod(big, rank);
    if (nx > ny)
      continue; /* not enough distinct positions */
    double *v = rand_vals(&r, TSR_DTYPE_FLOAT32, nx, 1.0, 0);
    /* Distinct random positions in the implied output. */
    int64_t *perm = malloc(ny * sizeof *perm), *idx = malloc(nx * sizeof *idx);
    for (size_t i = 0; i < ny; i++)
      perm[i] = (int64_t)i;
    for (size_t i = 0; i < nx; i++) {
      size_t j = i + (size_t)rint_in(&r, 0, (int64_t)(ny - i - 1));
      int64_t t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
      idx[i] = perm[i];
    }
    cpu_direct *d = cpu_direct_new("MaxUnpool", 11);
    cpu_direct_attr_ints(d, "kernel_shape", (size_t)nsp, ks);
    cpu_direct_attr_ints(d, "strides", (size_t)nsp, st);
    if (with_pads)
      cpu_direct_attr_ints(d, "pads", 2 * (size_t)nsp, pads);
    add_input(d, TSR_DTYPE_FLOAT32, rank, xd, v);
    add_i64_input(d, TSR_DTYPE_INT64, rank, xd, idx);
    int64_t sd[1] = {rank};
    if (with_shape)
      add_i64_input(d, TSR_DTYPE_INT64, 1, sd, big);
    const int64_t *od = with_shape ? big : yd;
    add_output(d, TSR_DTYPE_FLOAT32, rank, od);
    poison_outputs(d, 1);
    RUN_OK(d, 1);
    double *ref = calloc(nbig + 1, sizeof *ref);
    for (size_t i = 0; i < nx; i++) {
      /* Same coordinates, in the output's shape. */
      int64_t c[5];
      size_t rem = (size_t)idx[i], pos = 0;
      for (int a = rank - 1; a >= 0; a--)
        c[a] = (int64_t)(rem % (size_t)yd[a]), rem /= (size_t)yd[a];
      for (int a = 0; a < rank; a++)
        pos = pos * (size_t)od[a] + (size_t)c[a];
      ref[pos] = v[i];
    }
    expect_close("maxunpool", cpu_direct_out(d, 0), ref, with_shape ? nbig : ny, 0, 0);
    cpu_direct_free(d);
    free(v), free(perm), free(idx), free(ref);
  }
}
END_TEST

/* The ONNX backend case test_maxunpool_export_with_output_shape. */
START_TEST(test_maxunpool_onnx_and_errors) {
  float x[4] = {5, 6, 7, 8};
  int64_t xd[4] = {1, 1, 2, 2}, idx[4] = {5, 7, 13, 15}, sd[1] = {4}, shape[4] = {1, 1, 5, 5};
  int64_t k[2] = {2, 2};
  cpu_direct *d = cpu_direct_new("MaxUnpool", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_attr_ints(d, "strides", 2, k);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, x, false);
  add_i64_input(d, TSR_DTYPE_INT64, 4, xd, idx);
  add_i64_input(d, TSR_DTYPE_INT64, 1, sd, shape);
  add_output(d, TSR_DTYPE_FLOAT32, 4, shape);
  RUN_OK(d, 1);
  double want[25] = {0};
  want[6] = 5, want[8] = 6, want[16] = 7, want[18] = 8;
  expect_close("maxunpool onnx", cpu_direct_out(d, 0), want, 25, 0, 0);
  cpu_direct_free(d);

  int64_t yd[4] = {1, 1, 4, 4}, bad_idx[4] = {5, 7, 13, 16};
  d = cpu_direct_new("MaxUnpool", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_attr_ints(d, "strides", 2, k);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, x, false);
  add_i64_input(d, TSR_DTYPE_INT64, 4, xd, bad_idx);
  add_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_fail(d, "I[3] = 16");
  cpu_direct_free(d);
  /* An output_shape smaller than the implied one, with an index that falls outside. */
  int64_t small[4] = {1, 1, 4, 3};
  d = cpu_direct_new("MaxUnpool", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_attr_ints(d, "strides", 2, k);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, x, false);
  add_i64_input(d, TSR_DTYPE_INT64, 4, xd, idx);
  add_i64_input(d, TSR_DTYPE_INT64, 1, sd, small);
  add_output(d, TSR_DTYPE_FLOAT32, 4, small);
  expect_fail(d, "falls outside");
  cpu_direct_free(d);
  d = cpu_direct_new("MaxUnpool", 11);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, x, false);
  add_i64_input(d, TSR_DTYPE_INT64, 4, xd, idx);
  add_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_refuse(d, TSR_PLUGIN_REASON_ATTRIBUTE, "kernel_shape");
  cpu_direct_free(d);
  d = cpu_direct_new("MaxUnpool", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, x, false);
  add_i64_input(d, TSR_DTYPE_INT32, 4, xd, idx);
  add_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_refuse(d, TSR_PLUGIN_REASON_DTYPE, "int32");
  cpu_direct_free(d);
  d = cpu_direct_new("MaxUnpool", 11);
  cpu_direct_attr_ints(d, "kernel_shape", 2, k);
  cpu_direct_input(d, TSR_DTYPE_FLOAT32, 4, xd, x, false);
  add_i64_input(d, TSR_DTYPE_INT64, 4, xd, idx);
  add_output(d, TSR_DTYPE_FLOAT32, 4, yd);
  expect_refuse(d, TSR_PLUGIN_REASON_SHAPE, "expected [1,1,3,3]");
  cpu_direct_free(d);
  /* run() without check(): the output does not match output_shape. */
  float y[16];
  fake_graph g = {0};
  fake_ints(&g, "kernel_shape", 2, k);
  fake_ints(&g, "strides", 2, k);
  cpu_tensor in[3] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, xd, x),
                      mk_tensor(TSR_DTYPE_INT64, 4, xd, idx),
                      mk_tensor(TSR_DTYPE_INT64, 1, sd, shape)};
  cpu_tensor out[1] = {mk_tensor(TSR_DTYPE_FLOAT32, 4, yd, y)};
  expect_run_fail("MaxUnpool", 11, &g, 3, in, 1, out, "output_shape");
}
END_TEST

static Suite *kernels_rnn_suite(void) {
  Suite *s = suite_create("kernels_rnn");
  TCase *t = tcase_create("rnn");
  tcase_set_timeout(t, 600);
  tcase_add_test(t, test_rnn_random);
  tcase_add_test(t, test_rnn_large);
  tcase_add_test(t, test_rnn_activations);
  tcase_add_test(t, test_lstm_onnx_defaults);
  tcase_add_test(t, test_rnn_errors);
  tcase_add_test(t, test_rnn_empty);
  suite_add_tcase(s, t);
  TCase *e = tcase_create("einsum");
  tcase_set_timeout(e, 600);
  tcase_add_test(e, test_einsum_cases);
  tcase_add_test(e, test_einsum_random);
  tcase_add_test(e, test_einsum_errors);
  suite_add_tcase(s, e);
  TCase *m = tcase_create("misc");
  tcase_set_timeout(m, 600);
  tcase_add_test(m, test_det_random);
  tcase_add_test(m, test_det_errors);
  tcase_add_test(m, test_shrink_random);
  tcase_add_test(m, test_mvn_random);
  tcase_add_test(m, test_reversesequence_random);
  tcase_add_test(m, test_maxunpool_random);
  tcase_add_test(m, test_maxunpool_onnx_and_errors);
  suite_add_tcase(s, m);
  return s;
}

int main(void) { return tsr_test_run_suite(kernels_rnn_suite()) != 0; }
