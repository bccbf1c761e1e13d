/* Shape inference: per-op shapes and their opset differences, validation messages, folding
 * through the eval callback, and broadcasting checked against an independent reference on
 * random shapes. Graphs are built by hand with the core/graph.h API. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "core/shape_infer.h"
#include "tests/harness.h"

/* ---- Building graphs ------------------------------------------------------------------- */

static tsr__graph *mk(void) {
  tsr__graph *g = NULL;
  ck_assert_ok(tsr__graph_create(NULL, &g));
  return g;
}

static int32_t val(tsr__graph *g, const char *name) {
  int32_t v;
  ck_assert_ok(tsr__graph_intern_value(g, name, &v));
  return v;
}

/* Parses "a,,b" into value indices; an empty item is an absent optional (-1). */
static uint32_t parse_names(tsr__graph *g, const char *list, int32_t **out) {
  *out = NULL;
  if (!list || !*list)
    return 0;
  uint32_t n = 1;
  for (const char *p = list; *p; p++)
    n += *p == ',';
  int32_t *ids = tsr__alloc(g->alloc, n * sizeof *ids);
  ck_assert_ptr_nonnull(ids);
  const char *p = list;
  for (uint32_t i = 0; i < n; i++) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char name[128];
    ck_assert_uint_lt(len, sizeof name);
    memcpy(name, p, len);
    name[len] = '\0';
    ids[i] = len ? val(g, name) : -1;
    p = e ? e + 1 : p + len;
  }
  *out = ids;
  return n;
}

/* Adds a node named `name` (op_type when NULL); the pointer is valid until the next node. */
static tsr__node *node_named(tsr__graph *g, const char *name, const char *op, int64_t opset,
                             const char *ins, const char *outs) {
  int32_t *iv, *ov;
  uint32_t ni = parse_names(g, ins, &iv), no = parse_names(g, outs, &ov);
  tsr__node *n;
  ck_assert_ok(tsr__graph_add_node(g, &n, NULL));
  n->name = tsr__strdup(g->alloc, name ? name : op);
  n->op_type = tsr__strdup(g->alloc, op);
  n->domain = tsr__strdup(g->alloc, "");
  n->opset = opset;
  n->n_inputs = ni;
  n->inputs = iv;
  n->n_outputs = no;
  n->outputs = ov;
  return n;
}

static tsr__node *node(tsr__graph *g, const char *op, int64_t opset, const char *ins,
                       const char *outs) {
  return node_named(g, NULL, op, opset, ins, outs);
}

static tsr__attr *add_attr(tsr__graph *g, tsr__node *n, const char *name, int32_t type) {
  tsr__attr *a = tsr__realloc(g->alloc, n->attrs, (n->n_attrs + 1) * sizeof *a);
  ck_assert_ptr_nonnull(a);
  n->attrs = a;
  a = &n->attrs[n->n_attrs++];
  memset(a, 0, sizeof *a);
  a->name = tsr__strdup(g->alloc, name);
  a->type = type;
  return a;
}

static void attr_i(tsr__graph *g, tsr__node *n, const char *name, int64_t v) {
  add_attr(g, n, name, 2)->i = v;
}

static void attr_f(tsr__graph *g, tsr__node *n, const char *name, float v) {
  add_attr(g, n, name, 1)->f = v;
}

static void attr_s(tsr__graph *g, tsr__node *n, const char *name, const char *s) {
  tsr__attr *a = add_attr(g, n, name, 3);
  a->s = tsr__strdup(g->alloc, s);
  a->s_len = strlen(s);
}

static void attr_ints(tsr__graph *g, tsr__node *n, const char *name, size_t count,
                      const int64_t *v) {
  tsr__attr *a = add_attr(g, n, name, 7);
  a->ints = tsr__alloc(g->alloc, (count ? count : 1) * sizeof *v);
  if (count)
    memcpy(a->ints, v, count * sizeof *v);
  a->count = count;
}
#define ATTR_INTS(g, n, name, ...)                                                                 \
  attr_ints(g, n, name, sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t),                        \
            (int64_t[]){__VA_ARGS__})

static void attr_floats(tsr__graph *g, tsr__node *n, const char *name, size_t count,
                        const float *v) {
  tsr__attr *a = add_attr(g, n, name, 6);
  a->floats = tsr__alloc(g->alloc, (count ? count : 1) * sizeof *v);
  memcpy(a->floats, v, count * sizeof *v);
  a->count = count;
}

static tsr__tensor_data *tensor(tsr__graph *g, int32_t dtype, int32_t rank, const int64_t *dims,
                                const void *data) {
  tsr__tensor_data *t = tsr__calloc(g->alloc, 1, sizeof *t);
  size_t count = 1;
  for (int32_t i = 0; i < rank; i++)
    count *= (size_t)dims[i];
  t->dtype = dtype;
  t->rank = rank;
  t->dims = tsr__alloc(g->alloc, (rank ? (size_t)rank : 1) * sizeof *dims);
  if (rank)
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
  t->nbytes = count * tsr_dtype_size((tsr_dtype)dtype);
  if (t->nbytes && data) {
    t->data = tsr__alloc(g->alloc, t->nbytes);
    memcpy(t->data, data, t->nbytes);
  }
  return t;
}

static void attr_tensor(tsr__graph *g, tsr__node *n, const char *name, int32_t dtype, int32_t rank,
                        const int64_t *dims, const void *data) {
  add_attr(g, n, name, 4)->t = tensor(g, dtype, rank, dims, data);
}

/* An initializer: dims NULL with rank 1 means [count]. */
static void init(tsr__graph *g, const char *name, int32_t dtype, int32_t rank, const int64_t *dims,
                 size_t count, const void *data) {
  int64_t d1 = (int64_t)count;
  g->values[val(g, name)].init = tensor(g, dtype, rank, dims ? dims : &d1, data);
}
#define INIT_I64(g, name, ...)                                                                     \
  init(g, name, TSR_DTYPE_INT64, 1, NULL, sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t),      \
       (int64_t[]){__VA_ARGS__})
#define INIT_F32(g, name, ...)                                                                     \
  init(g, name, TSR_DTYPE_FLOAT32, 1, NULL, sizeof((float[]){__VA_ARGS__}) / sizeof(float),        \
       (float[]){__VA_ARGS__})
static void init_scalar_i64(tsr__graph *g, const char *name, int64_t v) {
  init(g, name, TSR_DTYPE_INT64, 0, NULL, 1, &v);
}
static void init_scalar_f32(tsr__graph *g, const char *name, float v) {
  init(g, name, TSR_DTYPE_FLOAT32, 0, NULL, 1, &v);
}

/* ---- Running inference ----------------------------------------------------------------- */

static int32_t dtype_of(const char *s) {
  static const struct {
    const char *name;
    int32_t dtype;
  } map[] = {{"f32", 1},  {"u8", 2},   {"i8", 3},   {"u16", 4},  {"i16", 5},
             {"i32", 6},  {"i64", 7},  {"str", 8},  {"bool", 9}, {"f16", 10},
             {"f64", 11}, {"u32", 12}, {"u64", 13}, {"bf16", 16}};
  for (size_t i = 0; i < sizeof map / sizeof *map; i++)
    if (strcmp(map[i].name, s) == 0)
      return map[i].dtype;
  ck_abort_msg("unknown dtype '%s'", s);
  return 0;
}

/* Infers g with inputs given as "x:f32[2,3] k:i64[]" (space separated). *out gets the vals. */
static tsr_status run_eval(tsr__graph *g, const char *inputs, tsr__eval_fn eval, void *ctx,
                           tsr__vshape **out) {
  tsr__vshape *v = calloc(g->n_values ? g->n_values : 1, sizeof *v);
  ck_assert_ptr_nonnull(v);
  for (uint32_t i = 0; i < g->n_values; i++)
    v[i].rank = -1;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", inputs ? inputs : "");
  for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    char *colon = strchr(tok, ':'), *br = strchr(tok, '[');
    ck_assert_msg(colon && br, "bad input spec '%s'", tok);
    *colon = '\0';
    *br = '\0';
    int64_t dims[16];
    int32_t rank = 0;
    for (char *p = br + 1; *p && *p != ']';) {
      dims[rank++] = strtoll(p, &p, 10);
      if (*p == ',')
        p++;
    }
    int32_t id = tsr__graph_find_value(g, tok);
    ck_assert_msg(id >= 0, "no value '%s'", tok);
    ck_assert_ok(tsr__vshape_set(g, &v[id], dtype_of(colon + 1), rank, dims));
  }
  *out = v;
  return tsr__infer_shapes(g, v, eval, ctx);
}

static tsr_status run(tsr__graph *g, const char *inputs, tsr__vshape **out) {
  return run_eval(g, inputs, NULL, NULL, out);
}

static void done(tsr__graph *g, tsr__vshape *v) {
  tsr__vshapes_clear(g, v);
  free(v);
  tsr__graph_destroy(g);
}

static const tsr__vshape *get(tsr__graph *g, tsr__vshape *v, const char *name) {
  int32_t id = tsr__graph_find_value(g, name);
  ck_assert_msg(id >= 0, "no value '%s'", name);
  return &v[id];
}

/* Asserts value `name` is "f32[2,3]" (dtype short name and dims). */
static void expect(tsr__graph *g, tsr__vshape *v, const char *name, const char *want) {
  static const char *const shorts[] = {"?",   "f32", "u8",  "i8",   "u16", "i16",
                                       "i32", "i64", "str", "bool", "f16", "f64",
                                       "u32", "u64", "?",   "?",    "bf16"};
  const tsr__vshape *s = get(g, v, name);
  ck_assert_msg(s->rank >= 0, "value '%s' was not inferred", name);
  char dims[256], got[300];
  tsr__format_dims(s->dims, (size_t)s->rank, dims, sizeof dims);
  snprintf(got, sizeof got, "%s%s", s->dtype >= 0 && s->dtype <= 16 ? shorts[s->dtype] : "?", dims);
  ck_assert_msg(strcmp(got, want) == 0, "value '%s': got %s, want %s", name, got, want);
}

/* Builds a one-node graph, runs it, and checks output "y". */
static void one(const char *op, int64_t opset, const char *ins, const char *inputs,
                const char *want) {
  tsr__graph *g = mk();
  node(g, op, opset, ins, "y");
  tsr__vshape *v;
  ck_assert_ok(run(g, inputs, &v));
  expect(g, v, "y", want);
  done(g, v);
}

/* Builds a one-node graph and expects an error with `code` mentioning `needle`. */
static void one_err(const char *op, int64_t opset, const char *ins, const char *inputs,
                    tsr_status_code code, const char *needle) {
  tsr__graph *g = mk();
  node(g, op, opset, ins, "y");
  tsr__vshape *v;
  tsr_test_expect_error(run(g, inputs, &v), code, needle);
  done(g, v);
}

static int64_t i64_at(const tsr__vshape *s, size_t i) {
  int64_t x;
  ck_assert_ptr_nonnull(s->data);
  memcpy(&x, (const char *)s->data + 8 * i, 8);
  return x;
}

/* ---- Elementwise and broadcasting ------------------------------------------------------ */

START_TEST(test_add_broadcast) {
  one("Add", 13, "a,b", "a:f32[2,1,3] b:f32[4,1]", "f32[2,4,3]");
  one("Mul", 7, "a,b", "a:f32[] b:f32[5]", "f32[5]");
  one("Sub", 14, "a,b", "a:i64[0,3] b:i64[1,3]", "i64[0,3]");
  one("Div", 13, "a,b", "a:f32[3,1] b:f32[1,0]", "f32[3,0]");
  one("Pow", 15, "a,b", "a:f32[2,3] b:i64[]", "f32[2,3]");
  tsr__graph *g = mk();
  tsr__node *n = node(g, "BitShift", 11, "a,b", "y");
  attr_s(g, n, "direction", "LEFT");
  tsr__vshape *v;
  ck_assert_ok(run(g, "a:u8[4] b:u8[1]", &v));
  expect(g, v, "y", "u8[4]");
  done(g, v);
  one_err("BitShift", 11, "a,b", "a:u8[4] b:u8[1]", TSR_STATUS_INVALID_MODEL,
          "attribute 'direction' is required");
}
END_TEST

START_TEST(test_broadcast_error_names_node) {
  tsr__graph *g = mk();
  node_named(g, "add_1", "Add", 13, "a,b", "y");
  tsr__vshape *v;
  tsr_test_expect_error(run(g, "a:f32[2,3] b:f32[4]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "node 'add_1' (Add): inputs 'a' [2,3] and 'b' [4] do not broadcast");
  done(g, v);
}
END_TEST

START_TEST(test_dtype_mismatch) {
  one_err("Add", 13, "a,b", "a:f32[2] b:i64[2]", TSR_STATUS_INVALID_MODEL,
          "inputs 'a' (float32) and 'b' (int64) must have the same dtype");
  one_err("Pow", 7, "a,b", "a:f32[2] b:i64[2]", TSR_STATUS_INVALID_MODEL, "same dtype");
  one_err("And", 7, "a,b", "a:f32[2] b:bool[2]", TSR_STATUS_INVALID_MODEL, "must be bool");
  one_err("Mod", 13, "a,b", "a:f32[2] b:f32[2]", TSR_STATUS_INVALID_MODEL, "fmod");
}
END_TEST

START_TEST(test_compare_logic_bool) {
  one("Equal", 13, "a,b", "a:i64[3,1] b:i64[4]", "bool[3,4]");
  one("Less", 9, "a,b", "a:f32[2] b:f32[]", "bool[2]");
  one("GreaterOrEqual", 16, "a,b", "a:f32[2] b:f32[2]", "bool[2]");
  one("Xor", 7, "a,b", "a:bool[2,2] b:bool[2]", "bool[2,2]");
  one("Not", 1 + 6, "a", "a:bool[3]", "bool[3]");
  one("IsNaN", 13, "a", "a:f16[3]", "bool[3]");
  one_err("Not", 7, "a", "a:f32[3]", TSR_STATUS_INVALID_MODEL, "must be bool");
}
END_TEST

START_TEST(test_variadic) {
  one("Sum", 13, "a,b,c", "a:f32[3,1,1] b:f32[4,1] c:f32[5]", "f32[3,4,5]");
  one("Max", 8, "a", "a:f32[3]", "f32[3]");
  one("Mean", 7, "a,b", "a:f32[3] b:f32[3]", "f32[3]");
  /* Opset 7 (Max-6, Mean-6, ...) does not broadcast. */
  one_err("Mean", 7, "a,b", "a:f32[3] b:f32[1]", TSR_STATUS_INVALID_ARGUMENT, "opset 8");
  one_err("Min", 13, "a,b,c", "a:f32[3] b:f32[1] c:f32[2]", TSR_STATUS_INVALID_ARGUMENT,
          "input 'c' [2] does not broadcast with [3]");
}
END_TEST

START_TEST(test_where_prelu) {
  one("Where", 16, "c,a,b", "c:bool[2,1,1] a:f32[3,1] b:f32[4]", "f32[2,3,4]");
  one_err("Where", 16, "c,a,b", "c:f32[1] a:f32[1] b:f32[1]", TSR_STATUS_INVALID_MODEL,
          "must be bool");
  one("PRelu", 9, "x,s", "x:f32[1,3,4,4] s:f32[3,1,1]", "f32[1,3,4,4]");
  one_err("PRelu", 9, "x,s", "x:f32[1,3,4,4] s:f32[3]", TSR_STATUS_INVALID_ARGUMENT,
          "does not broadcast to input");
}
END_TEST

/* Broadcasting of random shapes against a reference that decides compatibility dim by dim
 * after padding both shapes to one rank. */
static bool ref_broadcast(const int64_t *a, int ra, const int64_t *b, int rb, int64_t *out,
                          int *ro) {
  int r = ra > rb ? ra : rb;
  int64_t pa[8], pb[8];
  for (int i = 0; i < r; i++) {
    pa[i] = i < r - ra ? 1 : a[i - (r - ra)];
    pb[i] = i < r - rb ? 1 : b[i - (r - rb)];
  }
  for (int i = 0; i < r; i++) {
    if (pa[i] != pb[i] && pa[i] != 1 && pb[i] != 1)
      return false;
    out[i] = pa[i] == 1 ? pb[i] : pa[i];
  }
  *ro = r;
  return true;
}

START_TEST(test_broadcast_random) {
  srand(1234);
  int ok_count = 0, err_count = 0;
  for (int iter = 0; iter < 400; iter++) {
    int64_t a[8], b[8], want[8];
    int ra = rand() % 5, rb = rand() % 5, rw = 0;
    for (int i = 0; i < ra; i++)
      a[i] = rand() % 4;
    for (int i = 0; i < rb; i++)
      b[i] = rand() % 4;
    /* Bias towards compatible shapes: copy or set to 1 where they would meet. */
    for (int i = 0; i < ra && i < rb; i++) {
      int k = rand() % 3;
      if (k == 0)
        b[rb - 1 - i] = a[ra - 1 - i];
      else if (k == 1)
        b[rb - 1 - i] = 1;
    }
    char spec[256], sa[64], sb[64];
    tsr__format_dims(a, (size_t)ra, sa, sizeof sa);
    tsr__format_dims(b, (size_t)rb, sb, sizeof sb);
    snprintf(spec, sizeof spec, "a:f32%s b:f32%s", sa, sb);
    bool ok = ref_broadcast(a, ra, b, rb, want, &rw);
    tsr__graph *g = mk();
    node(g, iter % 2 ? "Add" : "Greater", 13, "a,b", "y");
    tsr__vshape *v;
    tsr_status st = run(g, spec, &v);
    if (ok) {
      ck_assert_msg(st == NULL, "%s: %s", spec, tsr_status_message(st));
      const tsr__vshape *y = get(g, v, "y");
      ck_assert_int_eq(y->rank, rw);
      for (int i = 0; i < rw; i++)
        ck_assert_int_eq(y->dims[i], want[i]);
      ok_count++;
    } else {
      ck_assert_msg(st != NULL, "%s broadcast, the reference says it does not", spec);
      ck_assert_int_eq(tsr_status_code_of(st), TSR_STATUS_INVALID_ARGUMENT);
      tsr_status_free(st);
      err_count++;
    }
    done(g, v);
  }
  ck_assert_int_gt(ok_count, 100);
  ck_assert_int_gt(err_count, 20);
}
END_TEST

/* Three-way Where against the reference applied twice. */
START_TEST(test_broadcast_random_where) {
  srand(99);
  for (int iter = 0; iter < 200; iter++) {
    int64_t s[3][8], tmp[8], want[8];
    int r[3], rt, rw;
    for (int k = 0; k < 3; k++) {
      r[k] = rand() % 4;
      for (int i = 0; i < r[k]; i++)
        s[k][i] = rand() % 2 ? 1 : 1 + rand() % 3;
    }
    bool ok = ref_broadcast(s[0], r[0], s[1], r[1], tmp, &rt) &&
              ref_broadcast(tmp, rt, s[2], r[2], want, &rw);
    char spec[256], d[3][64];
    for (int k = 0; k < 3; k++)
      tsr__format_dims(s[k], (size_t)r[k], d[k], sizeof d[k]);
    snprintf(spec, sizeof spec, "c:bool%s x:i32%s y:i32%s", d[0], d[1], d[2]);
    tsr__graph *g = mk();
    node(g, "Where", 16, "c,x,y", "y_out");
    tsr__vshape *v;
    tsr_status st = run(g, spec, &v);
    if (ok) {
      ck_assert_msg(st == NULL, "%s: %s", spec, tsr_status_message(st));
      const tsr__vshape *y = get(g, v, "y_out");
      ck_assert_int_eq(y->rank, rw);
      for (int i = 0; i < rw; i++)
        ck_assert_int_eq(y->dims[i], want[i]);
    } else {
      ck_assert_msg(st != NULL, "%s should not broadcast", spec);
      tsr_status_free(st);
    }
    done(g, v);
  }
}
END_TEST

START_TEST(test_unary_and_activations) {
  static const char *const ops[] = {"Abs",        "Neg",
                                    "Exp",        "Log",
                                    "Sqrt",       "Reciprocal",
                                    "Floor",      "Ceil",
                                    "Round",      "Sign",
                                    "Sin",        "Cos",
                                    "Tan",        "Asin",
                                    "Acos",       "Atan",
                                    "Sinh",       "Cosh",
                                    "Asinh",      "Acosh",
                                    "Atanh",      "Erf",
                                    "Relu",       "Sigmoid",
                                    "Tanh",       "HardSigmoid",
                                    "HardSwish",  "LeakyRelu",
                                    "Elu",        "Selu",
                                    "Celu",       "Softplus",
                                    "Softsign",   "ThresholdedRelu",
                                    "Mish",       "Gelu",
                                    "Identity",   "Softmax",
                                    "LogSoftmax", "Hardmax",
                                    "Shrink"};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    one(ops[i], 17, "x", "x:f32[2,0,5]", "f32[2,0,5]");
  one("Softmax", 11, "x", "x:f32[2,3]", "f32[2,3]");
  one_err("Softmax", 11, "x", "x:f32[4]", TSR_STATUS_INVALID_ARGUMENT,
          "axis 1 is out of range for rank 1");
  one("Softmax", 13, "x", "x:f32[4]", "f32[4]");
}
END_TEST

START_TEST(test_clip_dropout_cast) {
  one("Clip", 6 + 1, "x", "x:f32[3,4]", "f32[3,4]");
  one("Clip", 11, "x,lo,hi", "x:f32[3,4] lo:f32[] hi:f32[]", "f32[3,4]");
  one("Clip", 13, "x,,hi", "x:i32[3] hi:i32[]", "i32[3]");
  one_err("Clip", 11, "x,lo", "x:f32[3] lo:f32[2]", TSR_STATUS_INVALID_ARGUMENT, "scalar");
  one_err("Clip", 7, "x,lo", "x:f32[3] lo:f32[]", TSR_STATUS_INVALID_MODEL, "opset 11");

  tsr__graph *g = mk();
  node(g, "Dropout", 7, "x", "y,m");
  node(g, "Dropout", 10, "x", "y2,m2");
  node(g, "Dropout", 13, "x,r", "y3,m3");
  tsr__node *n = node(g, "Cast", 13, "x", "c");
  attr_i(g, n, "to", TSR_DTYPE_FLOAT16);
  node(g, "CastLike", 15, "x,like", "cl");
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[2,2] r:f32[] like:i64[1]", &v));
  expect(g, v, "y", "f32[2,2]");
  expect(g, v, "m", "f32[2,2]"); /* the mask's type was T before opset 10 */
  expect(g, v, "m2", "bool[2,2]");
  expect(g, v, "m3", "bool[2,2]");
  expect(g, v, "c", "f16[2,2]");
  expect(g, v, "cl", "i64[2,2]");
  done(g, v);
}
END_TEST

/* ---- Matrix products ------------------------------------------------------------------- */

START_TEST(test_matmul) {
  one("MatMul", 13, "a,b", "a:f32[2,3] b:f32[3,4]", "f32[2,4]");
  one("MatMul", 13, "a,b", "a:f32[3] b:f32[3]", "f32[]");
  one("MatMul", 13, "a,b", "a:f32[3] b:f32[5,3,4]", "f32[5,4]");
  one("MatMul", 13, "a,b", "a:f32[5,2,3] b:f32[3]", "f32[5,2]");
  one("MatMul", 13, "a,b", "a:f32[7,1,2,3] b:f32[5,3,4]", "f32[7,5,2,4]");
  one("MatMul", 13, "a,b", "a:f32[0,2,3] b:f32[3,0]", "f32[0,2,0]");
  one_err("MatMul", 13, "a,b", "a:f32[2,3] b:f32[4,5]", TSR_STATUS_INVALID_ARGUMENT,
          "inner dimensions 3 and 4 differ");
  one_err("MatMul", 13, "a,b", "a:f32[2,2,3] b:f32[3,3,4]", TSR_STATUS_INVALID_ARGUMENT,
          "batch dimensions do not broadcast");
  one_err("MatMul", 13, "a,b", "a:f32[] b:f32[3]", TSR_STATUS_INVALID_ARGUMENT, "rank >= 1");
  one("MatMulInteger", 10, "a,b", "a:u8[2,3] b:i8[3,4]", "i32[2,4]");
  one("MatMulInteger", 10, "a,b,az", "a:u8[2,3] b:u8[3] az:u8[]", "i32[2]");
  one("QLinearMatMul", 10, "a,as,az,b,bs,bz,ys,yz",
      "a:u8[2,3] as:f32[] az:u8[] b:i8[3,4] bs:f32[] bz:i8[] ys:f32[] yz:i8[]", "i8[2,4]");
}
END_TEST

START_TEST(test_gemm) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "Gemm", 13, "a,b,c", "y");
  attr_i(g, n, "transA", 1);
  n = node(g, "Gemm", 13, "a2,b2", "y2");
  attr_i(g, n, "transB", 1);
  node(g, "Gemm", 9, "a2,b,c", "y3");
  tsr__vshape *v;
  ck_assert_ok(run(g, "a:f32[3,2] b:f32[3,4] c:f32[4] a2:f32[2,3] b2:f32[5,3]", &v));
  expect(g, v, "y", "f32[2,4]");
  expect(g, v, "y2", "f32[2,5]");
  expect(g, v, "y3", "f32[2,4]");
  done(g, v);
  one_err("Gemm", 9, "a,b", "a:f32[2,3] b:f32[3,4]", TSR_STATUS_INVALID_MODEL, "before opset 11");
  one_err("Gemm", 13, "a,b,c", "a:f32[2,3] b:f32[3,4] c:f32[3,1]", TSR_STATUS_INVALID_ARGUMENT,
          "does not broadcast to the product [2,4]");
  one_err("Gemm", 13, "a,b", "a:f32[2,3,1] b:f32[3,4]", TSR_STATUS_INVALID_ARGUMENT, "rank 2");
}
END_TEST

START_TEST(test_einsum) {
  struct {
    const char *eq, *inputs, *want;
  } cases[] = {
      {"ij,jk->ik", "a:f32[2,3] b:f32[3,4]", "f32[2,4]"},
      {"ij,jk", "a:f32[2,3] b:f32[3,4]", "f32[2,4]"},
      {"ij->ji", "a:f32[2,3]", "f32[3,2]"},
      {"ii->i", "a:f32[3,3]", "f32[3]"},
      {"ii", "a:f32[3,3]", "f32[]"},
      {"bij,bjk->bik", "a:f32[5,2,3] b:f32[5,3,4]", "f32[5,2,4]"},
      {"...ij,...jk->...ik", "a:f32[7,5,2,3] b:f32[5,3,4]", "f32[7,5,2,4]"},
      {"...ij,...jk", "a:f32[7,5,2,3] b:f32[1,3,4]", "f32[7,5,2,4]"},
      {"i,j->ij", "a:f32[2] b:f32[3]", "f32[2,3]"},
      {"ba , ca", "a:f32[2,4] b:f32[3,4]", "f32[2,3]"},
      {"Ab,bc", "a:f32[2,3] b:f32[3,4]", "f32[2,4]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    tsr__graph *g = mk();
    bool two = strstr(cases[i].eq, ",") != NULL;
    tsr__node *n = node(g, "Einsum", 12, two ? "a,b" : "a", "y");
    attr_s(g, n, "equation", cases[i].eq);
    tsr__vshape *v;
    tsr_status st = run(g, cases[i].inputs, &v);
    ck_assert_msg(st == NULL, "%s: %s", cases[i].eq, tsr_status_message(st));
    expect(g, v, "y", cases[i].want);
    done(g, v);
  }
  tsr__graph *g = mk();
  tsr__node *n = node(g, "Einsum", 12, "a,b", "y");
  attr_s(g, n, "equation", "ij,jk->ik");
  tsr__vshape *v;
  tsr_test_expect_error(run(g, "a:f32[2,3] b:f32[4,4]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "label 'j'");
  done(g, v);
  g = mk();
  n = node(g, "Einsum", 12, "a", "y");
  attr_s(g, n, "equation", "ijk->ij");
  tsr_test_expect_error(run(g, "a:f32[2,3]", &v), TSR_STATUS_INVALID_ARGUMENT, "does not fit");
  done(g, v);
}
END_TEST

/* ---- Convolution and pooling ----------------------------------------------------------- */

START_TEST(test_conv) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "Conv", 11, "x,w,b", "same_pad");
  ATTR_INTS(g, n, "pads", 1, 1, 1, 1);
  n = node(g, "Conv", 11, "x,w", "stride2");
  ATTR_INTS(g, n, "pads", 1, 1, 1, 1);
  ATTR_INTS(g, n, "strides", 2, 2);
  n = node(g, "Conv", 11, "x,w", "dilated");
  ATTR_INTS(g, n, "dilations", 2, 2);
  n = node(g, "Conv", 11, "x,w", "asym");
  ATTR_INTS(g, n, "pads", 0, 1, 2, 0);
  ATTR_INTS(g, n, "kernel_shape", 3, 3);
  n = node(g, "Conv", 11, "x33,w", "upper");
  attr_s(g, n, "auto_pad", "SAME_UPPER");
  ATTR_INTS(g, n, "strides", 2, 2);
  n = node(g, "Conv", 11, "x33,w", "lower");
  attr_s(g, n, "auto_pad", "SAME_LOWER");
  ATTR_INTS(g, n, "strides", 3, 3);
  n = node(g, "Conv", 11, "x33,w", "valid");
  attr_s(g, n, "auto_pad", "VALID");
  ATTR_INTS(g, n, "strides", 2, 2);
  n = node(g, "Conv", 11, "xg,wg", "grouped");
  attr_i(g, n, "group", 2);
  node(g, "Conv", 11, "x1d,w1d", "conv1d");
  node(g, "Conv", 11, "x3d,w3d", "conv3d");
  node(g, "Conv", 11, "x0,w", "empty_batch");
  tsr__vshape *v;
  ck_assert_ok(run(g,
                   "x:f32[1,3,32,32] w:f32[8,3,3,3] b:f32[8] x33:f32[1,3,33,33] "
                   "xg:f32[1,4,10,10] wg:f32[6,2,3,3] x1d:f32[2,4,10] w1d:f32[5,4,3] "
                   "x3d:f32[1,2,5,6,7] w3d:f32[4,2,1,2,3] x0:f32[0,3,8,8]",
                   &v));
  expect(g, v, "same_pad", "f32[1,8,32,32]");
  expect(g, v, "stride2", "f32[1,8,16,16]");
  expect(g, v, "dilated", "f32[1,8,28,28]");
  expect(g, v, "asym", "f32[1,8,32,31]");
  expect(g, v, "upper", "f32[1,8,17,17]");
  expect(g, v, "lower", "f32[1,8,11,11]");
  expect(g, v, "valid", "f32[1,8,16,16]");
  expect(g, v, "grouped", "f32[1,6,8,8]");
  expect(g, v, "conv1d", "f32[2,5,8]");
  expect(g, v, "conv3d", "f32[1,4,5,5,5]");
  expect(g, v, "empty_batch", "f32[0,8,6,6]");
  done(g, v);

  one_err("Conv", 11, "x,w", "x:f32[1,3,8,8] w:f32[8,4,3,3]", TSR_STATUS_INVALID_ARGUMENT,
          "input 'x' [1,3,8,8] has 3 channels, but weights 'w' [8,4,3,3] with group 1 need 4");
  one_err("Conv", 11, "x,w", "x:f32[1,1,2,2] w:f32[1,1,3,3]", TSR_STATUS_INVALID_ARGUMENT,
          "larger than the padded input");
  one_err("Conv", 11, "x,w,b", "x:f32[1,1,4,4] w:f32[2,1,3,3] b:f32[3]",
          TSR_STATUS_INVALID_ARGUMENT, "input 2 'b' must have shape [2]");
  one_err("Conv", 11, "x,w", "x:f32[1,1,4,4] w:f32[2,1,3]", TSR_STATUS_INVALID_ARGUMENT,
          "must have rank 4");
  one("ConvInteger", 10, "x,w", "x:u8[1,3,8,8] w:u8[4,3,3,3]", "i32[1,4,6,6]");
  one("QLinearConv", 10, "x,xs,xz,w,ws,wz,ys,yz,b",
      "x:u8[1,3,8,8] xs:f32[] xz:u8[] w:i8[4,3,3,3] ws:f32[4] wz:i8[4] ys:f32[] yz:u8[] b:i32[4]",
      "u8[1,4,6,6]");
}
END_TEST

START_TEST(test_conv_transpose) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "ConvTranspose", 11, "x,w", "plain");
  ATTR_INTS(g, n, "strides", 2, 2);
  n = node(g, "ConvTranspose", 11, "x,w", "outpad");
  ATTR_INTS(g, n, "strides", 2, 2);
  ATTR_INTS(g, n, "output_padding", 1, 0);
  n = node(g, "ConvTranspose", 11, "x,w", "pads");
  ATTR_INTS(g, n, "strides", 2, 2);
  ATTR_INTS(g, n, "pads", 1, 1, 1, 1);
  n = node(g, "ConvTranspose", 11, "x,w", "dilated");
  ATTR_INTS(g, n, "dilations", 2, 2);
  n = node(g, "ConvTranspose", 11, "x,w", "same");
  ATTR_INTS(g, n, "strides", 2, 2);
  attr_s(g, n, "auto_pad", "SAME_UPPER");
  n = node(g, "ConvTranspose", 11, "x,w", "valid");
  ATTR_INTS(g, n, "strides", 2, 2);
  ATTR_INTS(g, n, "pads", 3, 3, 3, 3); /* ignored with VALID */
  attr_s(g, n, "auto_pad", "VALID");
  n = node(g, "ConvTranspose", 11, "x,w", "explicit");
  ATTR_INTS(g, n, "strides", 2, 2);
  ATTR_INTS(g, n, "output_shape", 10, 10);
  n = node(g, "ConvTranspose", 11, "x,wg,bg", "grouped");
  attr_i(g, n, "group", 2);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[1,4,5,5] w:f32[4,2,3,3] wg:f32[4,3,3,3] bg:f32[6]", &v));
  expect(g, v, "plain", "f32[1,2,11,11]");
  expect(g, v, "outpad", "f32[1,2,12,11]");
  expect(g, v, "pads", "f32[1,2,9,9]");
  expect(g, v, "dilated", "f32[1,2,9,9]");
  expect(g, v, "same", "f32[1,2,10,10]");
  expect(g, v, "valid", "f32[1,2,11,11]");
  expect(g, v, "explicit", "f32[1,2,10,10]");
  expect(g, v, "grouped", "f32[1,6,7,7]");
  done(g, v);
  one_err("ConvTranspose", 11, "x,w", "x:f32[1,4,5,5] w:f32[3,2,3,3]", TSR_STATUS_INVALID_ARGUMENT,
          "has 4 channels, but weights 'w' [3,2,3,3] expect 3");
}
END_TEST

START_TEST(test_pool) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "MaxPool", 12, "x", "mp,idx");
  ATTR_INTS(g, n, "kernel_shape", 2, 2);
  ATTR_INTS(g, n, "strides", 2, 2);
  n = node(g, "MaxPool", 12, "x5", "floor");
  ATTR_INTS(g, n, "kernel_shape", 2, 2);
  ATTR_INTS(g, n, "strides", 2, 2);
  n = node(g, "MaxPool", 12, "x5", "ceil");
  ATTR_INTS(g, n, "kernel_shape", 2, 2);
  ATTR_INTS(g, n, "strides", 2, 2);
  attr_i(g, n, "ceil_mode", 1);
  /* ceil_mode drops a last window that would start in the end padding. */
  n = node(g, "MaxPool", 12, "x5", "ceil_dropped");
  ATTR_INTS(g, n, "kernel_shape", 2, 2);
  ATTR_INTS(g, n, "strides", 3, 3);
  ATTR_INTS(g, n, "pads", 0, 0, 1, 1);
  attr_i(g, n, "ceil_mode", 1);
  n = node(g, "MaxPool", 12, "x", "dilated");
  ATTR_INTS(g, n, "kernel_shape", 3, 3);
  ATTR_INTS(g, n, "dilations", 2, 2);
  n = node(g, "MaxPool", 12, "x7", "same");
  ATTR_INTS(g, n, "kernel_shape", 3, 3);
  ATTR_INTS(g, n, "strides", 2, 2);
  attr_s(g, n, "auto_pad", "SAME_UPPER");
  n = node(g, "AveragePool", 11, "x1d", "avg1d");
  ATTR_INTS(g, n, "kernel_shape", 3);
  ATTR_INTS(g, n, "pads", 1, 1);
  n = node(g, "AveragePool", 7, "x7", "avg_valid");
  ATTR_INTS(g, n, "kernel_shape", 3, 3);
  attr_s(g, n, "auto_pad", "VALID");
  ATTR_INTS(g, n, "strides", 2, 2);
  n = node(g, "LpPool", 11, "x", "lp");
  ATTR_INTS(g, n, "kernel_shape", 4, 4);
  node(g, "GlobalAveragePool", 1 + 6, "x", "gap");
  node(g, "GlobalMaxPool", 7, "x1d", "gmp");
  node(g, "GlobalLpPool", 7, "x", "glp");
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[1,3,32,32] x5:f32[1,1,5,5] x7:f32[2,3,7,7] x1d:f32[2,3,10]", &v));
  expect(g, v, "mp", "f32[1,3,16,16]");
  expect(g, v, "idx", "i64[1,3,16,16]");
  expect(g, v, "floor", "f32[1,1,2,2]");
  expect(g, v, "ceil", "f32[1,1,3,3]");
  expect(g, v, "ceil_dropped", "f32[1,1,2,2]");
  expect(g, v, "dilated", "f32[1,3,28,28]");
  expect(g, v, "same", "f32[2,3,4,4]");
  expect(g, v, "avg1d", "f32[2,3,10]");
  expect(g, v, "avg_valid", "f32[2,3,3,3]");
  expect(g, v, "lp", "f32[1,3,29,29]");
  expect(g, v, "gap", "f32[1,3,1,1]");
  expect(g, v, "gmp", "f32[2,3,1]");
  expect(g, v, "glp", "f32[1,3,1,1]");
  done(g, v);

  g = mk();
  n = node(g, "MaxPool", 12, "x", "y");
  ATTR_INTS(g, n, "kernel_shape", 2);
  tsr_test_expect_error(run(g, "x:f32[1,3,8,8]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "'kernel_shape' has 1 values");
  done(g, v);
  g = mk();
  node(g, "MaxPool", 12, "x", "y");
  tsr_test_expect_error(run(g, "x:f32[1,3,8,8]", &v), TSR_STATUS_INVALID_MODEL,
                        "attribute 'kernel_shape' is required");
  done(g, v);
  g = mk();
  n = node(g, "MaxPool", 12, "x", "y");
  ATTR_INTS(g, n, "kernel_shape", 2, 2);
  attr_s(g, n, "auto_pad", "BOGUS");
  tsr_test_expect_error(run(g, "x:f32[1,3,8,8]", &v), TSR_STATUS_INVALID_MODEL, "BOGUS");
  done(g, v);
  g = mk();
  n = node(g, "MaxPool", 12, "x", "y");
  attr_i(g, n, "kernel_shape", 2); /* INT where INTS is expected */
  tsr_test_expect_error(run(g, "x:f32[1,3,8,8]", &v), TSR_STATUS_INVALID_MODEL,
                        "attribute 'kernel_shape' is of type int, expected ints");
  done(g, v);
}
END_TEST

/* ---- Normalization, reductions --------------------------------------------------------- */

START_TEST(test_norms) {
  tsr__graph *g = mk();
  node(g, "BatchNormalization", 9, "x,s,b,m,var", "bn");
  node(g, "BatchNormalization", 7, "x,s,b,m,var", "bn7,mean7,var7,sm7,sv7");
  node(g, "BatchNormalization", 15, "x,s,b,m,var", "bn15,rm15,rv15");
  node(g, "InstanceNormalization", 6 + 1, "x,s,b", "in");
  tsr__node *n = node(g, "LayerNormalization", 17, "x,ls,lb", "ln,lmean,linv");
  attr_i(g, n, "axis", -2);
  n = node(g, "LRN", 13, "x", "lrn");
  attr_i(g, n, "size", 3);
  tsr__vshape *v;
  ck_assert_ok(
      run(g, "x:f32[2,3,4,5] s:f32[3] b:f32[3] m:f32[3] var:f32[3] ls:f32[4,5] lb:f32[5]", &v));
  expect(g, v, "bn", "f32[2,3,4,5]");
  expect(g, v, "bn7", "f32[2,3,4,5]");
  expect(g, v, "sv7", "f32[3]");
  expect(g, v, "rv15", "f32[3]");
  expect(g, v, "in", "f32[2,3,4,5]");
  expect(g, v, "ln", "f32[2,3,4,5]");
  expect(g, v, "lmean", "f32[2,3,1,1]");
  expect(g, v, "linv", "f32[2,3,1,1]");
  expect(g, v, "lrn", "f32[2,3,4,5]");
  done(g, v);
  one_err("BatchNormalization", 9, "x,s,b,m,var",
          "x:f32[2,3,4] s:f32[4] b:f32[3] m:f32[3] var:f32[3]", TSR_STATUS_INVALID_ARGUMENT,
          "input 1 's' must have shape [3] (scale), got [4]");
  g = mk();
  node(g, "BatchNormalization", 14, "x,s,b,m,var", "a,b1,c,d");
  tsr_test_expect_error(run(g, "x:f32[2,3] s:f32[3] b:f32[3] m:f32[3] var:f32[3]", &v),
                        TSR_STATUS_INVALID_MODEL, "at most 3");
  done(g, v);
}
END_TEST

START_TEST(test_reduce) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "ReduceSum", 11, "x", "sum11");
  ATTR_INTS(g, n, "axes", 1);
  n = node(g, "ReduceSum", 13, "x,ax1", "sum13");
  attr_i(g, n, "keepdims", 0);
  node(g, "ReduceSum", 13, "x", "sum_all");
  n = node(g, "ReduceSum", 13, "x", "sum_noop");
  attr_i(g, n, "noop_with_empty_axes", 1);
  n = node(g, "ReduceSum", 13, "x,empty", "sum_noop_empty");
  attr_i(g, n, "noop_with_empty_axes", 1);
  n = node(g, "ReduceMean", 13, "x", "mean");
  ATTR_INTS(g, n, "axes", -1, 0);
  attr_i(g, n, "keepdims", 0);
  node(g, "ReduceMax", 18, "x,ax1", "max18");
  n = node(g, "ReduceLogSumExp", 17, "x", "lse");
  attr_i(g, n, "keepdims", 0);
  n = node(g, "ArgMax", 13, "x", "am");
  attr_i(g, n, "axis", 1);
  attr_i(g, n, "keepdims", 0);
  n = node(g, "ArgMin", 12, "x", "amin");
  attr_i(g, n, "axis", -1);
  attr_i(g, n, "select_last_index", 1);
  INIT_I64(g, "ax1", 1);
  init(g, "empty", TSR_DTYPE_INT64, 1, NULL, 0, NULL);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[2,3,4]", &v));
  expect(g, v, "sum11", "f32[2,1,4]");
  expect(g, v, "sum13", "f32[2,4]");
  expect(g, v, "sum_all", "f32[1,1,1]");
  expect(g, v, "sum_noop", "f32[2,3,4]");
  expect(g, v, "sum_noop_empty", "f32[2,3,4]");
  expect(g, v, "mean", "f32[3]");
  expect(g, v, "max18", "f32[2,1,4]");
  expect(g, v, "lse", "f32[]");
  expect(g, v, "am", "i64[2,4]");
  expect(g, v, "amin", "i64[2,3,1]");
  done(g, v);

  g = mk();
  n = node(g, "ReduceProd", 13, "x", "y");
  ATTR_INTS(g, n, "axes", 1, -2);
  tsr_test_expect_error(run(g, "x:f32[2,3,4]", &v), TSR_STATUS_INVALID_ARGUMENT, "listed twice");
  done(g, v);
  one_err("ReduceSum", 13, "x,a", "x:f32[2,3] a:i64[1]", TSR_STATUS_UNSUPPORTED,
          "depends on input 1 'a', which is only known at run time");
  one_err("ReduceMean", 13, "x,a", "x:f32[2,3] a:i64[1]", TSR_STATUS_INVALID_MODEL,
          "axes are an attribute");
}
END_TEST

/* ---- Reshaping ------------------------------------------------------------------------- */

START_TEST(test_reshape) {
  tsr__graph *g = mk();
  node(g, "Reshape", 13, "x,s1", "r1");
  node(g, "Reshape", 13, "x,s2", "r2");
  node(g, "Reshape", 13, "x,s3", "r3");
  node(g, "Reshape", 5 + 2, "x,s4", "r4");
  tsr__node *n = node(g, "Reshape", 14, "e,s5", "r5");
  attr_i(g, n, "allowzero", 1);
  node(g, "Reshape", 14, "e,s6", "r6");
  INIT_I64(g, "s1", 0, -1);
  INIT_I64(g, "s2", -1);
  INIT_I64(g, "s3", 4, 0, 2);
  init(g, "s4", TSR_DTYPE_INT32, 1, NULL, 3, (int32_t[]){2, -1, 2});
  INIT_I64(g, "s5", 4, 0);
  INIT_I64(g, "s6", -1, 2);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[2,3,4] e:f32[0,4]", &v));
  expect(g, v, "r1", "f32[2,12]");
  expect(g, v, "r2", "f32[24]");
  expect(g, v, "r3", "f32[4,3,2]");
  expect(g, v, "r4", "f32[2,6,2]");
  expect(g, v, "r5", "f32[4,0]");
  expect(g, v, "r6", "f32[0,2]");
  /* The initializer entries are filled in and borrowed. */
  const tsr__vshape *s1 = get(g, v, "s1");
  ck_assert(s1->is_weight && !s1->owns_data);
  ck_assert_int_eq(i64_at(s1, 1), -1);
  done(g, v);

  struct {
    const char *shape, *needle;
  } errs[] = {
      {"-1,-1", "more than one -1"},
      {"5,5", "cannot reshape input 'x' [2,3,4] (24 elements) to [5,5] (25 elements)"},
      {"5,-1", "the -1 cannot be inferred"},
      {"0,0,0,0", "entry 3 is 0 (copy the input dim), but input 'x' [2,3,4] has rank 3"},
      {"-2,12", "negative entry -2"},
  };
  for (size_t i = 0; i < sizeof errs / sizeof *errs; i++) {
    g = mk();
    node_named(g, "reshape_7", "Reshape", 13, "x,s", "y");
    int64_t d[4];
    size_t k = 0;
    for (const char *p = errs[i].shape; *p;) {
      d[k++] = strtoll(p, (char **)&p, 10);
      if (*p == ',')
        p++;
    }
    init(g, "s", TSR_DTYPE_INT64, 1, NULL, k, d);
    tsr_status st = run(g, "x:f32[2,3,4]", &v);
    ck_assert_msg(st && strstr(tsr_status_message(st), "node 'reshape_7' (Reshape)"), "%s",
                  tsr_status_message(st));
    tsr_test_expect_error(st, TSR_STATUS_INVALID_ARGUMENT, errs[i].needle);
    done(g, v);
  }
  g = mk();
  node_named(g, "r", "Reshape", 13, "x,shape", "y");
  tsr_test_expect_error(run(g, "x:f32[2,3] shape:i64[2]", &v), TSR_STATUS_UNSUPPORTED,
                        "node 'r' (Reshape): output shape depends on input 1 'shape', which is "
                        "only known at run time");
  done(g, v);
  g = mk();
  n = node(g, "Reshape", 14, "e,s", "y");
  attr_i(g, n, "allowzero", 1);
  INIT_I64(g, "s", -1, 0);
  tsr_test_expect_error(run(g, "e:f32[2,0]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "cannot be inferred");
  done(g, v);
}
END_TEST

START_TEST(test_flatten_transpose_concat) {
  tsr__graph *g = mk();
  node(g, "Flatten", 13, "x", "f1");
  tsr__node *n = node(g, "Flatten", 13, "x", "f0");
  attr_i(g, n, "axis", 0);
  n = node(g, "Flatten", 13, "x", "fneg");
  attr_i(g, n, "axis", -1);
  n = node(g, "Flatten", 13, "x", "f3");
  attr_i(g, n, "axis", 3);
  node(g, "Transpose", 13, "x", "t_rev");
  n = node(g, "Transpose", 13, "x", "t_perm");
  ATTR_INTS(g, n, "perm", 1, 2, 0);
  n = node(g, "Concat", 13, "x,x2", "cat");
  attr_i(g, n, "axis", -1);
  n = node(g, "Concat", 4 + 3, "x,x0", "cat0");
  attr_i(g, n, "axis", 0);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[2,3,4] x2:f32[2,3,5] x0:f32[0,3,4]", &v));
  expect(g, v, "f1", "f32[2,12]");
  expect(g, v, "f0", "f32[1,24]");
  expect(g, v, "fneg", "f32[6,4]");
  expect(g, v, "f3", "f32[24,1]");
  expect(g, v, "t_rev", "f32[4,3,2]");
  expect(g, v, "t_perm", "f32[3,4,2]");
  expect(g, v, "cat", "f32[2,3,9]");
  expect(g, v, "cat0", "f32[2,3,4]");
  done(g, v);

  g = mk();
  n = node(g, "Flatten", 9, "x", "y");
  attr_i(g, n, "axis", -1);
  tsr_test_expect_error(run(g, "x:f32[2,3]", &v), TSR_STATUS_INVALID_ARGUMENT, "out of range");
  done(g, v);
  g = mk();
  n = node(g, "Transpose", 13, "x", "y");
  ATTR_INTS(g, n, "perm", 0, 0, 1);
  tsr_test_expect_error(run(g, "x:f32[2,3,4]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "not a permutation");
  done(g, v);
  g = mk();
  n = node(g, "Concat", 13, "a,b", "y");
  attr_i(g, n, "axis", 0);
  tsr_test_expect_error(run(g, "a:f32[2,3] b:f32[2,4]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "inputs 'a' [2,3] and 'b' [2,4] differ in shape outside axis 0");
  done(g, v);
  g = mk();
  node(g, "Concat", 13, "a,b", "y");
  tsr_test_expect_error(run(g, "a:f32[2,3] b:f32[2,4]", &v), TSR_STATUS_INVALID_MODEL,
                        "attribute 'axis' is required");
  done(g, v);
}
END_TEST

START_TEST(test_split) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "Split", 11, "x", "a,b");
  attr_i(g, n, "axis", 1);
  ATTR_INTS(g, n, "split", 2, 3);
  n = node(g, "Split", 13, "x,sp", "c,d");
  attr_i(g, n, "axis", -1);
  node(g, "Split", 13, "y", "e,f,h");
  n = node(g, "Split", 18, "x", "i,j");
  attr_i(g, n, "axis", 1);
  attr_i(g, n, "num_outputs", 2);
  node(g, "Split", 2 + 5, "y", "k,,m");
  INIT_I64(g, "sp", 1, 4);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[4,5] y:f32[6,4]", &v));
  expect(g, v, "a", "f32[4,2]");
  expect(g, v, "b", "f32[4,3]");
  expect(g, v, "c", "f32[4,1]");
  expect(g, v, "d", "f32[4,4]");
  expect(g, v, "e", "f32[2,4]");
  expect(g, v, "h", "f32[2,4]");
  expect(g, v, "i", "f32[4,3]");
  expect(g, v, "j", "f32[4,2]");
  expect(g, v, "m", "f32[2,4]");
  done(g, v);

  g = mk();
  n = node(g, "Split", 13, "x", "a,b");
  attr_i(g, n, "axis", 1);
  tsr_test_expect_error(run(g, "x:f32[4,5]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "does not split into 2 equal parts");
  done(g, v);
  g = mk();
  n = node(g, "Split", 11, "x", "a,b");
  ATTR_INTS(g, n, "split", 1, 2);
  tsr_test_expect_error(run(g, "x:f32[4,5]", &v), TSR_STATUS_INVALID_ARGUMENT, "adds up to 3");
  done(g, v);
  g = mk();
  node(g, "Split", 13, "x,s", "a,b");
  tsr_test_expect_error(run(g, "x:f32[4,5] s:i64[2]", &v), TSR_STATUS_UNSUPPORTED,
                        "only known at run time");
  done(g, v);
}
END_TEST

START_TEST(test_slice) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "Slice", 9, "x", "s9");
  ATTR_INTS(g, n, "starts", 2);
  ATTR_INTS(g, n, "ends", -2);
  ATTR_INTS(g, n, "axes", 1);
  n = node(g, "Slice", 1 + 6, "x", "s7_noaxes");
  ATTR_INTS(g, n, "starts", 1, 0);
  ATTR_INTS(g, n, "ends", 1000, 5);
  node(g, "Slice", 13, "v,m1,min,a0,neg1", "rev");
  node(g, "Slice", 13, "v,zero,max,a0,three", "every3");
  node(g, "Slice", 13, "v,eight,one,a0,neg2", "down2");
  node(g, "Slice", 13, "v,hundred,twohundred", "clamped_empty");
  node(g, "Slice", 13, "v,neg100,three", "clamped_start");
  node(g, "Slice", 13, "v,hundred,neg100,,neg1", "rev_clamped");
  node(g, "Slice", 10, "x,zero,neg1,aneg", "lastaxis");
  node(g, "Slice", 13, "v,zero,max,a0,min", "minstep");
  node(g, "Slice", 13, "z,zero,max,a0,neg1", "empty_dim");
  INIT_I64(g, "m1", -1);
  INIT_I64(g, "min", INT64_MIN);
  INIT_I64(g, "max", INT64_MAX);
  INIT_I64(g, "a0", 0);
  INIT_I64(g, "aneg", -1);
  INIT_I64(g, "neg1", -1);
  INIT_I64(g, "neg2", -2);
  INIT_I64(g, "zero", 0);
  INIT_I64(g, "one", 1);
  INIT_I64(g, "three", 3);
  INIT_I64(g, "eight", 8);
  INIT_I64(g, "hundred", 100);
  INIT_I64(g, "twohundred", 200);
  INIT_I64(g, "neg100", -100);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[10,20] v:f32[10] z:f32[0]", &v));
  expect(g, v, "s9", "f32[10,16]");
  expect(g, v, "s7_noaxes", "f32[9,5]");
  expect(g, v, "rev", "f32[10]");
  expect(g, v, "every3", "f32[4]");
  expect(g, v, "down2", "f32[4]");
  expect(g, v, "clamped_empty", "f32[0]");
  expect(g, v, "clamped_start", "f32[3]");
  expect(g, v, "rev_clamped", "f32[10]");
  expect(g, v, "lastaxis", "f32[10,19]");
  expect(g, v, "minstep", "f32[0]");
  expect(g, v, "empty_dim", "f32[0]");
  done(g, v);

  g = mk();
  node(g, "Slice", 13, "v,zero,one,a0,zero", "y");
  INIT_I64(g, "zero", 0);
  INIT_I64(g, "one", 1);
  INIT_I64(g, "a0", 0);
  tsr_test_expect_error(run(g, "v:f32[10]", &v), TSR_STATUS_INVALID_ARGUMENT, "step 0 is 0");
  done(g, v);
  g = mk();
  node(g, "Slice", 13, "v,zero,one,a2", "y");
  INIT_I64(g, "zero", 0);
  INIT_I64(g, "one", 1);
  INIT_I64(g, "a2", 2);
  tsr_test_expect_error(run(g, "v:f32[10,3]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "axis 2 is out of range for rank 2");
  done(g, v);
}
END_TEST

START_TEST(test_squeeze_unsqueeze) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "Squeeze", 11, "x", "sq11");
  ATTR_INTS(g, n, "axes", 0, -2);
  node(g, "Squeeze", 11, "x", "sq_all");
  node(g, "Squeeze", 13, "x,axm2", "sq13");
  n = node(g, "Unsqueeze", 11, "y", "un11");
  ATTR_INTS(g, n, "axes", 0, 3);
  node(g, "Unsqueeze", 13, "y,axm1", "un13");
  node(g, "Unsqueeze", 13, "s,ax0", "un_scalar");
  INIT_I64(g, "axm2", -2);
  INIT_I64(g, "axm1", -1);
  INIT_I64(g, "ax0", 0);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[1,3,1,4] y:f32[3,4] s:i64[]", &v));
  expect(g, v, "sq11", "f32[3,4]");
  expect(g, v, "sq_all", "f32[3,4]");
  expect(g, v, "sq13", "f32[1,3,4]");
  expect(g, v, "un11", "f32[1,3,4,1]");
  expect(g, v, "un13", "f32[3,4,1]");
  expect(g, v, "un_scalar", "i64[1]");
  done(g, v);

  g = mk();
  n = node(g, "Squeeze", 11, "x", "y");
  ATTR_INTS(g, n, "axes", 1);
  tsr_test_expect_error(run(g, "x:f32[1,3]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "cannot squeeze axis 1 of input 'x' [1,3]: its size is 3");
  done(g, v);
  g = mk();
  n = node(g, "Unsqueeze", 11, "x", "y");
  ATTR_INTS(g, n, "axes", 1, -2);
  tsr_test_expect_error(run(g, "x:f32[3]", &v), TSR_STATUS_INVALID_ARGUMENT, "listed twice");
  done(g, v);
  g = mk();
  node(g, "Unsqueeze", 13, "x,a", "y");
  tsr_test_expect_error(run(g, "x:f32[3] a:i64[1]", &v), TSR_STATUS_UNSUPPORTED, "input 1 'a'");
  done(g, v);
  g = mk();
  node(g, "Unsqueeze", 11, "x", "y");
  tsr_test_expect_error(run(g, "x:f32[3]", &v), TSR_STATUS_INVALID_MODEL,
                        "attribute 'axes' is required");
  done(g, v);
}
END_TEST

START_TEST(test_pad_tile_expand) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "Pad", 7, "x", "p7");
  ATTR_INTS(g, n, "pads", 0, 1, 0, 2);
  node(g, "Pad", 13, "x,p1", "p13");
  node(g, "Pad", 13, "x,pneg,cv", "pcrop");
  node(g, "Pad", 18, "x,p23,,axes1", "p18");
  node(g, "Tile", 13, "x,reps", "tile");
  node(g, "Expand", 13, "x,shape", "expand");
  node(g, "Expand", 13, "x,shape1", "expand1");
  INIT_I64(g, "p1", 1, 1, 1, 1);
  INIT_I64(g, "pneg", -1, 0, 0, 0);
  INIT_I64(g, "p23", 2, 3);
  INIT_I64(g, "axes1", 1);
  INIT_I64(g, "reps", 2, 0);
  INIT_I64(g, "shape", 2, 1, 4);
  INIT_I64(g, "shape1", 1);
  init_scalar_f32(g, "cv", 0.5f);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[3,4]", &v));
  expect(g, v, "p7", "f32[3,7]");
  expect(g, v, "p13", "f32[5,6]");
  expect(g, v, "pcrop", "f32[2,4]");
  expect(g, v, "p18", "f32[3,9]");
  expect(g, v, "tile", "f32[6,0]");
  expect(g, v, "expand", "f32[2,3,4]");
  expect(g, v, "expand1", "f32[3,4]");
  done(g, v);

  g = mk();
  node(g, "Pad", 13, "x,p", "y");
  INIT_I64(g, "p", 0, -5, 0, 0);
  tsr_test_expect_error(run(g, "x:f32[3,4]", &v), TSR_STATUS_INVALID_ARGUMENT, "negative (-1)");
  done(g, v);
  g = mk();
  node(g, "Pad", 13, "x,p", "y");
  INIT_I64(g, "p", 0, 0);
  tsr_test_expect_error(run(g, "x:f32[3,4]", &v), TSR_STATUS_INVALID_ARGUMENT, "needs 4");
  done(g, v);
  g = mk();
  node(g, "Expand", 13, "x,s", "y");
  INIT_I64(g, "s", 2, 3);
  tsr_test_expect_error(run(g, "x:f32[3,4]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "does not broadcast with shape [2,3]");
  done(g, v);
  /* Dims whose product overflows are refused, not wrapped. */
  g = mk();
  node(g, "Tile", 13, "x,r", "y");
  INIT_I64(g, "r", INT64_C(1) << 40, INT64_C(1) << 40);
  tsr_test_expect_error(run(g, "x:f32[4,4]", &v), TSR_STATUS_INVALID_ARGUMENT, "overflows");
  done(g, v);
  g = mk();
  node(g, "Tile", 13, "x,r", "y");
  INIT_I64(g, "r", INT64_MAX, 2);
  tsr_test_expect_error(run(g, "x:f32[4,4]", &v), TSR_STATUS_INVALID_ARGUMENT, "overflows");
  done(g, v);
}
END_TEST

/* ---- Indexing -------------------------------------------------------------------------- */

START_TEST(test_gather_scatter) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "Gather", 13, "x,idx", "g0");
  attr_i(g, n, "axis", 1);
  node(g, "Gather", 13, "x,k", "gscalar");
  n = node(g, "GatherElements", 13, "x,ie", "ge");
  attr_i(g, n, "axis", -1);
  node(g, "GatherND", 13, "x,ind", "gnd");
  n = node(g, "GatherND", 13, "x,indb", "gndb");
  attr_i(g, n, "batch_dims", 1);
  node(g, "ScatterElements", 16, "x,ie,upd", "se");
  node(g, "Scatter", 9, "x,ie,upd", "sc");
  node(g, "ScatterND", 16, "x,snd,sup", "snd_out");
  init_scalar_i64(g, "k", -2);
  tsr__vshape *v;
  ck_assert_ok(run(g,
                   "x:f32[2,3,4] idx:i64[5,6] ie:i32[2,3,1] ind:i64[7,2] indb:i64[2,1] "
                   "upd:f32[2,3,1] snd:i64[5,1] sup:f32[5,3,4]",
                   &v));
  expect(g, v, "g0", "f32[2,5,6,4]");
  expect(g, v, "gscalar", "f32[3,4]");
  expect(g, v, "ge", "f32[2,3,1]");
  expect(g, v, "gnd", "f32[7,4]");
  expect(g, v, "gndb", "f32[2,4]");
  expect(g, v, "se", "f32[2,3,4]");
  expect(g, v, "sc", "f32[2,3,4]");
  expect(g, v, "snd_out", "f32[2,3,4]");
  done(g, v);

  g = mk();
  node(g, "Gather", 13, "x,k", "y");
  init_scalar_i64(g, "k", 2);
  tsr_test_expect_error(run(g, "x:f32[2,3]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "index 2 (entry 0 of 'k') is out of range for axis 0 of size 2");
  done(g, v);
  one_err("Gather", 13, "x,i", "x:f32[2,3] i:f32[1]", TSR_STATUS_INVALID_MODEL,
          "must be int32 or int64");
  one_err("GatherND", 13, "x,i", "x:f32[2,3] i:i64[4,3]", TSR_STATUS_INVALID_ARGUMENT,
          "the last dim 3 must be in 1..2");
  one_err("ScatterND", 16, "x,i,u", "x:f32[2,3] i:i64[4,1] u:f32[4,2]", TSR_STATUS_INVALID_ARGUMENT,
          "must have shape [4,3]");
}
END_TEST

/* ---- Data-dependent shapes and generators ---------------------------------------------- */

START_TEST(test_data_ops) {
  tsr__graph *g = mk();
  node(g, "Range", 11, "i0,i10,i3", "range_i");
  node(g, "Range", 11, "f0,f1,fstep", "range_f");
  node(g, "Range", 11, "i10,i0,im3", "range_down");
  node(g, "Range", 11, "i0,i0,i3", "range_empty");
  node(g, "ConstantOfShape", 9, "shape", "cos_default");
  tsr__node *n = node(g, "ConstantOfShape", 9, "shape", "cos_i32");
  attr_tensor(g, n, "value", TSR_DTYPE_INT32, 1, (int64_t[]){1}, (int32_t[]){7});
  node(g, "ConstantOfShape", 9, "empty", "cos_scalar");
  node(g, "OneHot", 11, "ids,depth,onoff", "onehot");
  n = node(g, "OneHot", 11, "ids,depth,onoff", "onehot0");
  attr_i(g, n, "axis", 0);
  node(g, "NonZero", 13, "nz", "nonzero");
  node(g, "NonZero", 13, "nzf", "nonzero_f");
  n = node(g, "Compress", 11, "data,cond", "comp_axis");
  attr_i(g, n, "axis", 1);
  node(g, "Compress", 11, "data,cond", "comp_flat");
  n = node(g, "TopK", 1 + 6, "data", "tv,ti");
  attr_i(g, n, "k", 2);
  n = node(g, "TopK", 11, "data,k1", "tv11,ti11");
  attr_i(g, n, "axis", 0);
  init_scalar_i64(g, "i0", 0);
  init_scalar_i64(g, "i10", 10);
  init_scalar_i64(g, "i3", 3);
  init_scalar_i64(g, "im3", -3);
  init_scalar_f32(g, "f0", 0.0f);
  init_scalar_f32(g, "f1", 1.0f);
  init_scalar_f32(g, "fstep", 0.3f);
  INIT_I64(g, "shape", 2, 0, 3);
  init(g, "empty", TSR_DTYPE_INT64, 1, NULL, 0, NULL);
  init_scalar_f32(g, "depth", 10.0f);
  INIT_F32(g, "onoff", 0.0f, 1.0f);
  init(g, "nz", TSR_DTYPE_INT32, 2, (int64_t[]){2, 3}, 6, (int32_t[]){1, 0, 0, 0, 5, -1});
  INIT_F32(g, "nzf", 0.0f, -0.0f, 1.5f, 0.0f);
  init(g, "cond", TSR_DTYPE_BOOL, 1, NULL, 2, (uint8_t[]){0, 1});
  INIT_I64(g, "k1", 1);
  tsr__vshape *v;
  ck_assert_ok(run(g, "ids:i64[4,5] data:f32[3,4]", &v));
  expect(g, v, "range_i", "i64[4]");
  expect(g, v, "range_f", "f32[4]");
  expect(g, v, "range_down", "i64[4]");
  expect(g, v, "range_empty", "i64[0]");
  expect(g, v, "cos_default", "f32[2,0,3]");
  expect(g, v, "cos_i32", "i32[2,0,3]");
  expect(g, v, "cos_scalar", "f32[]");
  expect(g, v, "onehot", "f32[4,5,10]");
  expect(g, v, "onehot0", "f32[10,4,5]");
  expect(g, v, "nonzero", "i64[2,3]");
  expect(g, v, "nonzero_f", "i64[1,1]");
  expect(g, v, "comp_axis", "f32[3,1]");
  expect(g, v, "comp_flat", "f32[1]");
  expect(g, v, "tv", "f32[3,2]");
  expect(g, v, "ti", "i64[3,2]");
  expect(g, v, "tv11", "f32[1,4]");
  done(g, v);

  one_err("NonZero", 13, "x", "x:f32[3]", TSR_STATUS_UNSUPPORTED,
          "depends on input 0 'x', which is only known at run time");
  one_err("Range", 11, "a,b,c", "a:i64[] b:i64[] c:i64[]", TSR_STATUS_UNSUPPORTED, "input 0 'a'");
  g = mk();
  node(g, "Range", 11, "a,b,c", "y");
  init_scalar_i64(g, "a", 0);
  init_scalar_i64(g, "b", 5);
  init_scalar_i64(g, "c", 0);
  tsr_test_expect_error(run(g, "", &v), TSR_STATUS_INVALID_ARGUMENT, "delta 'c' is 0");
  done(g, v);
  g = mk();
  node(g, "TopK", 11, "x,k", "a,b");
  INIT_I64(g, "k", 5);
  tsr_test_expect_error(run(g, "x:f32[3,4]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "k = 5 is out of range");
  done(g, v);
}
END_TEST

START_TEST(test_nms) {
  tsr__graph *g = mk();
  node(g, "NonMaxSuppression", 11, "boxes,scores,maxout,iou,thr", "sel");
  /* Two overlapping boxes and one apart, one class: the overlap drops one. */
  init(g, "boxes", TSR_DTYPE_FLOAT32, 3, (int64_t[]){1, 3, 4}, 12,
       (float[]){0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, 10, 1, 11});
  init(g, "scores", TSR_DTYPE_FLOAT32, 3, (int64_t[]){1, 1, 3}, 3, (float[]){0.9f, 0.8f, 0.7f});
  INIT_I64(g, "maxout", 3);
  INIT_F32(g, "iou", 0.5f);
  INIT_F32(g, "thr", 0.0f);
  tsr__vshape *v;
  ck_assert_ok(run(g, "", &v));
  expect(g, v, "sel", "i64[2,3]");
  done(g, v);
  one_err("NonMaxSuppression", 11, "b,s", "b:f32[1,3,4] s:f32[1,1,3]", TSR_STATUS_UNSUPPORTED,
          "only known at run time");
}
END_TEST

START_TEST(test_shape_size_folded) {
  tsr__graph *g = mk();
  node(g, "Shape", 13, "x", "s");
  tsr__node *n = node(g, "Shape", 15, "x", "s15");
  attr_i(g, n, "start", 1);
  attr_i(g, n, "end", -1);
  n = node(g, "Shape", 15, "x", "s15e");
  attr_i(g, n, "start", 5);
  node(g, "Size", 13, "x", "n");
  node(g, "Shape", 13, "sc", "s_scalar");
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[2,3,4] sc:f32[]", &v));
  expect(g, v, "s", "i64[3]");
  expect(g, v, "s15", "i64[1]");
  expect(g, v, "s15e", "i64[0]");
  expect(g, v, "n", "i64[]");
  expect(g, v, "s_scalar", "i64[0]");
  const tsr__vshape *s = get(g, v, "s");
  ck_assert(s->owns_data);
  ck_assert_int_eq(s->nbytes, 24);
  ck_assert_int_eq(i64_at(s, 0), 2);
  ck_assert_int_eq(i64_at(s, 2), 4);
  ck_assert_int_eq(i64_at(get(g, v, "s15"), 0), 3);
  ck_assert_int_eq(i64_at(get(g, v, "n"), 0), 24);
  ck_assert_ptr_nonnull(get(g, v, "s_scalar")->data);
  done(g, v);
}
END_TEST

START_TEST(test_constant) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "Constant", 13, "", "t");
  attr_tensor(g, n, "value", TSR_DTYPE_FLOAT32, 2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
  n = node(g, "Constant", 13, "", "f");
  attr_f(g, n, "value_float", 2.5f);
  n = node(g, "Constant", 13, "", "is");
  ATTR_INTS(g, n, "value_ints", 4, -1);
  n = node(g, "Constant", 13, "", "i");
  attr_i(g, n, "value_int", 9);
  n = node(g, "Constant", 13, "", "fs");
  attr_floats(g, n, "value_floats", 3, (float[]){1, 2, 3});
  node(g, "Reshape", 13, "x,is", "r");
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[2,6]", &v));
  expect(g, v, "t", "f32[2,2]");
  expect(g, v, "f", "f32[]");
  expect(g, v, "is", "i64[2]");
  expect(g, v, "i", "i64[]");
  expect(g, v, "fs", "f32[3]");
  expect(g, v, "r", "f32[4,3]");
  ck_assert_ptr_nonnull(get(g, v, "t")->data);
  float f;
  memcpy(&f, get(g, v, "f")->data, 4);
  ck_assert(f == 2.5f);
  done(g, v);
}
END_TEST

/* ---- Folding --------------------------------------------------------------------------- */

/* A fake eval that implements Gather (axis 0), Unsqueeze and Concat for int64 data and
 * records which nodes it was asked to evaluate. Other ops answer UNSUPPORTED, or `fail_with`
 * when set. */
typedef struct fake_eval {
  char calls[512];
  int n_calls;
  tsr_status_code fail_with;
} fake_eval;

static tsr_status set_data(const tsr__graph *g, tsr__vshape *o, const int64_t *src, size_t n) {
  void *d = tsr__alloc(g->alloc, n * 8);
  if (!d)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "fake eval: out of memory");
  if (n)
    memcpy(d, src, n * 8);
  o->data = d;
  o->nbytes = n * 8;
  o->owns_data = true;
  return NULL;
}

static tsr_status fake_eval_fn(void *ctx, const tsr__graph *g, uint32_t node, tsr__vshape *vals) {
  fake_eval *f = ctx;
  const tsr__node *n = &g->nodes[node];
  f->n_calls++;
  strncat(f->calls, n->op_type, sizeof f->calls - strlen(f->calls) - 2);
  strncat(f->calls, " ", sizeof f->calls - strlen(f->calls) - 1);
  for (uint32_t i = 0; i < n->n_inputs; i++)
    ck_assert_msg(n->inputs[i] < 0 || vals[n->inputs[i]].data, "eval got an unknown input");
  tsr__vshape *o = &vals[n->outputs[0]];
  ck_assert_int_ge(o->rank, 0); /* dims are set before eval */
  if (strcmp(n->op_type, "ConstantOfShape") == 0) {
    size_t count = 1;
    for (int32_t i = 0; i < o->rank; i++)
      count *= (size_t)o->dims[i];
    o->data = tsr__calloc(g->alloc, count ? count : 1, 4);
    if (!o->data)
      return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "fake eval: out of memory");
    o->nbytes = count * 4;
    o->owns_data = true;
    return NULL;
  }
  if (f->fail_with)
    return tsr__status_make(f->fail_with, "fake eval refuses %s", n->op_type);
  const tsr__vshape *a = &vals[n->inputs[0]];
  if (a->dtype != TSR_DTYPE_INT64)
    return tsr__status_make(TSR_STATUS_UNSUPPORTED, "fake eval: int64 only");
  const int64_t *ad = a->data;
  size_t an = a->nbytes / 8;
  if (strcmp(n->op_type, "Gather") == 0) {
    const tsr__vshape *idx = &vals[n->inputs[1]];
    size_t k = idx->nbytes / 8;
    int64_t out[16];
    for (size_t i = 0; i < k; i++) {
      int64_t j = ((const int64_t *)idx->data)[i];
      out[i] = ad[j < 0 ? j + (int64_t)an : j];
    }
    return set_data(g, o, out, k);
  }
  if (strcmp(n->op_type, "Unsqueeze") == 0)
    return set_data(g, o, ad, an);
  if (strcmp(n->op_type, "Concat") == 0) {
    int64_t out[16];
    size_t k = 0;
    for (uint32_t i = 0; i < n->n_inputs; i++) {
      const tsr__vshape *x = &vals[n->inputs[i]];
      memcpy(out + k, x->data, x->nbytes);
      k += x->nbytes / 8;
    }
    return set_data(g, o, out, k);
  }
  return tsr__status_make(TSR_STATUS_UNSUPPORTED, "fake eval: no %s", n->op_type);
}

/* x -> Shape -> Gather(0) -> Unsqueeze -> Concat(-1) -> Reshape(x): the usual flatten. */
static tsr__graph *shape_chain(void) {
  tsr__graph *g = mk();
  node(g, "Shape", 13, "x", "s");
  node(g, "Gather", 13, "s,zero", "batch");
  node(g, "Unsqueeze", 13, "batch,axes0", "batch1");
  tsr__node *n = node(g, "Concat", 13, "batch1,minus1", "newshape");
  attr_i(g, n, "axis", 0);
  node_named(g, "flatten", "Reshape", 13, "x,newshape", "y");
  init_scalar_i64(g, "zero", 0);
  INIT_I64(g, "axes0", 0);
  INIT_I64(g, "minus1", -1);
  return g;
}

START_TEST(test_fold_shape_chain) {
  tsr__graph *g = shape_chain();
  fake_eval f = {{0}, 0, 0};
  tsr__vshape *v;
  ck_assert_ok(run_eval(g, "x:f32[2,3,4]", fake_eval_fn, &f, &v));
  ck_assert_str_eq(f.calls, "Gather Unsqueeze Concat ");
  expect(g, v, "batch", "i64[]");
  expect(g, v, "newshape", "i64[2]");
  ck_assert_int_eq(i64_at(get(g, v, "newshape"), 0), 2);
  ck_assert(get(g, v, "newshape")->owns_data);
  expect(g, v, "y", "f32[2,12]");
  ck_assert_ptr_null(get(g, v, "y")->data); /* x is not known: Reshape is not folded */
  done(g, v);

  /* Without eval only Shape is folded, and Reshape cannot know its shape. */
  g = shape_chain();
  tsr_test_expect_error(run(g, "x:f32[2,3,4]", &v), TSR_STATUS_UNSUPPORTED,
                        "node 'flatten' (Reshape): output shape depends on input 1 'newshape', "
                        "which is only known at run time");
  done(g, v);

  /* An eval that cannot do an op leaves it unfolded; one that fails for real is an error. */
  g = shape_chain();
  f = (fake_eval){{0}, 0, TSR_STATUS_UNSUPPORTED};
  tsr_test_expect_error(run_eval(g, "x:f32[2,3,4]", fake_eval_fn, &f, &v), TSR_STATUS_UNSUPPORTED,
                        "node 'flatten' (Reshape)");
  ck_assert_int_eq(f.n_calls, 1);
  done(g, v);
  g = shape_chain();
  f = (fake_eval){{0}, 0, TSR_STATUS_INVALID_ARGUMENT};
  tsr_test_expect_error(run_eval(g, "x:f32[2,3,4]", fake_eval_fn, &f, &v),
                        TSR_STATUS_INVALID_ARGUMENT, "node 'Gather' (Gather): while folding");
  done(g, v);
}
END_TEST

START_TEST(test_fold_limits) {
  tsr__graph *g = mk();
  node(g, "ConstantOfShape", 9, "small", "a");
  node(g, "ConstantOfShape", 9, "big", "b");
  node(g, "RandomNormalLike", 1 + 6, "a", "c");
  node(g, "DequantizeLinear", 13, "wq,ws", "dq");
  init(g, "wq", TSR_DTYPE_INT8, 1, NULL, 4, (int8_t[]){1, 2, 3, 4});
  init_scalar_f32(g, "ws", 0.5f);
  INIT_I64(g, "small", 10);
  INIT_I64(g, "big", 5, 1000, 1000); /* 20 MB of float32 */
  fake_eval f = {{0}, 0, 0};
  tsr__vshape *v;
  ck_assert_ok(run_eval(g, "", fake_eval_fn, &f, &v));
  ck_assert_str_eq(f.calls, "ConstantOfShape ");
  ck_assert_ptr_nonnull(get(g, v, "a")->data);
  expect(g, v, "b", "f32[5,1000,1000]");
  ck_assert_ptr_null(get(g, v, "b")->data);
  ck_assert_int_eq(get(g, v, "b")->nbytes, 20000000);
  expect(g, v, "c", "f32[10]");
  ck_assert_ptr_null(get(g, v, "c")->data); /* random: never folded */
  expect(g, v, "dq", "f32[4]");
  ck_assert_ptr_null(get(g, v, "dq")->data); /* kept for int8 devices */
  done(g, v);
}
END_TEST

/* ---- Control flow ---------------------------------------------------------------------- */

static void set_list(tsr__graph *g, int32_t **list, uint32_t *n, const char *names) {
  *n = parse_names(g, names, list);
}

/* A branch graph: out = op(in) where `in` is a value of the enclosing graph. */
static tsr__graph *branch(const char *op, const char *in, const char *out) {
  tsr__graph *b = mk();
  node(b, op, 13, in, out);
  set_list(b, &b->outputs, &b->n_outputs, out);
  return b;
}

static tsr__graph *if_graph(const char *then_op, const char *then_in, const char *else_op,
                            const char *else_in) {
  tsr__graph *g = mk();
  tsr__node *n = node_named(g, "if_1", "If", 13, "cond", "y");
  add_attr(g, n, "then_branch", 5)->g = branch(then_op, then_in, "t_out");
  n = &g->nodes[0];
  add_attr(g, n, "else_branch", 5)->g = branch(else_op, else_in, "e_out");
  val(g, "x");
  val(g, "z");
  set_list(g, &g->inputs, &g->n_inputs, "cond,x,z");
  set_list(g, &g->outputs, &g->n_outputs, "y");
  ck_assert_ok(tsr__graph_finalize(g));
  return g;
}

START_TEST(test_if) {
  tsr__vshape *v;
  /* Unknown condition, branches agree. */
  tsr__graph *g = if_graph("Relu", "x", "Neg", "x");
  ck_assert_ok(run(g, "cond:bool[] x:f32[2,3] z:f32[5]", &v));
  expect(g, v, "y", "f32[2,3]");
  done(g, v);
  /* Unknown condition, branches disagree. */
  g = if_graph("Relu", "x", "Neg", "z");
  tsr_test_expect_error(run(g, "cond:bool[] x:f32[2,3] z:f32[5]", &v), TSR_STATUS_UNSUPPORTED,
                        "node 'if_1' (If): output 0 'y' has shape [2,3] in then_branch and [5] "
                        "in else_branch");
  done(g, v);
  /* A known condition picks its branch. */
  g = if_graph("Relu", "x", "Neg", "z");
  g->values[val(g, "cond")].init = tensor(g, TSR_DTYPE_BOOL, 0, NULL, (uint8_t[]){0});
  g->n_inputs = 2;
  g->inputs[0] = val(g, "x");
  g->inputs[1] = val(g, "z");
  ck_assert_ok(run(g, "x:f32[2,3] z:f32[5]", &v));
  expect(g, v, "y", "f32[5]");
  done(g, v);
  /* A branch that fails with these shapes is left to run time (it may never be taken): the
   * other branch gives the outputs. */
  g = if_graph("Relu", "x", "Unknownop", "x");
  ck_assert_ok(run(g, "cond:bool[] x:f32[2,3] z:f32[5]", &v));
  expect(g, v, "y", "f32[2,3]");
  done(g, v);
  /* When neither can be inferred, the error says so; knowing the condition would help. */
  g = if_graph("Unknownop", "x", "Unknownop", "x");
  tsr_status st = run(g, "cond:bool[] x:f32[2,3] z:f32[5]", &v);
  ck_assert(tsr__status_marked(st, TSR__STATUS_NEEDS_INPUT_VALUES));
  tsr_test_expect_error(st, TSR_STATUS_UNSUPPORTED,
                        "node 'if_1' (If): neither branch can be inferred while condition 'cond' "
                        "is unknown; in then_branch");
  done(g, v);
  /* Branches of different dtypes are a broken model whatever the condition. */
  g = if_graph("Relu", "x", "Shape", "x");
  tsr_test_expect_error(run(g, "cond:bool[] x:f32[2,3] z:f32[5]", &v), TSR_STATUS_INVALID_MODEL,
                        "node 'if_1' (If): output 0 'y' is float32 in then_branch but int64 in "
                        "else_branch");
  done(g, v);
  /* Errors inside a taken branch name the branch and the inner node. */
  g = if_graph("Unknownop", "x", "Neg", "x");
  g->values[val(g, "cond")].init = tensor(g, TSR_DTYPE_BOOL, 0, NULL, (uint8_t[]){1});
  g->n_inputs = 2;
  g->inputs[0] = val(g, "x");
  g->inputs[1] = val(g, "z");
  tsr_test_expect_error(run(g, "x:f32[2,3] z:f32[5]", &v), TSR_STATUS_UNSUPPORTED,
                        "node 'if_1' (If): in then_branch: node 'Unknownop' (Unknownop): "
                        "operator Unknownop (domain '', opset 13) is not supported");
  done(g, v);
}
END_TEST

START_TEST(test_if_declared_types) {
  tsr__graph *g = if_graph("Relu", "x", "Unknownop", "x");
  /* The else branch declares its output fully: it is used. */
  tsr__graph *e = g->nodes[0].attrs[1].g;
  tsr__value *ev = &e->values[e->outputs[0]];
  ev->dtype = TSR_DTYPE_FLOAT32;
  ev->rank = 2;
  ev->dims = tsr__calloc(e->alloc, 2, sizeof *ev->dims);
  ev->dims[0].value = 2;
  ev->dims[1].value = 3;
  tsr__vshape *v;
  ck_assert_ok(run(g, "cond:bool[] x:f32[2,3] z:f32[5]", &v));
  expect(g, v, "y", "f32[2,3]");
  done(g, v);
}
END_TEST

/* A Loop: out = in + 1 per iteration, its condition passed through, and the running value
 * as a scan output. M is an initializer when m >= 0, else the graph input "m". */
static tsr__graph *loop_graph(int64_t m, int n_body_outputs) {
  tsr__graph *g = mk();
  tsr__node *n = node_named(g, "loop_1", "Loop", 13, "m,c,x", "y,ys");
  tsr__graph *b = mk();
  node(b, "Identity", 13, "c_in", "c_out");
  node(b, "Add", 13, "x_in,one", "x_out");
  node(b, "Identity", 13, "x_out", "scan");
  init_scalar_f32(b, "one", 1.0f);
  val(b, "i");
  set_list(b, &b->inputs, &b->n_inputs, "i,c_in,x_in");
  set_list(b, &b->outputs, &b->n_outputs, n_body_outputs == 3 ? "c_out,x_out,scan" : "c_out,x_out");
  n = &g->nodes[0];
  add_attr(g, n, "body", 5)->g = b;
  if (m >= 0) {
    init_scalar_i64(g, "m", m);
    set_list(g, &g->inputs, &g->n_inputs, "c,x");
  } else {
    set_list(g, &g->inputs, &g->n_inputs, "m,c,x");
  }
  set_list(g, &g->outputs, &g->n_outputs, "y,ys");
  ck_assert_ok(tsr__graph_finalize(g));
  return g;
}

START_TEST(test_loop) {
  tsr__vshape *v;
  /* A known trip count and a condition that stays true: the scan output has M slices. */
  tsr__graph *g = loop_graph(4, 3);
  g->values[val(g, "c")].init = tensor(g, TSR_DTYPE_BOOL, 0, NULL, (uint8_t[]){1});
  g->n_inputs = 1;
  g->inputs[0] = val(g, "x");
  ck_assert_ok(run(g, "x:f32[2,3]", &v));
  expect(g, v, "y", "f32[2,3]");
  expect(g, v, "ys", "f32[4,2,3]");
  done(g, v);
  /* The trip count known only at run time: the scan output's shape asks for input values. */
  g = loop_graph(-1, 3);
  tsr_status st = run(g, "m:i64[] c:bool[] x:f32[2]", &v);
  ck_assert(tsr__status_marked(st, TSR__STATUS_NEEDS_INPUT_VALUES));
  tsr_test_expect_error(st, TSR_STATUS_UNSUPPORTED,
                        "node 'loop_1' (Loop): scan output 0 'ys' stacks one slice per "
                        "iteration, and the number of iterations is only known at run time");
  done(g, v);
  /* Bad models: a body with the wrong number of outputs, a negative trip count. */
  g = loop_graph(2, 2);
  tsr_test_expect_error(run(g, "c:bool[] x:f32[2]", &v), TSR_STATUS_INVALID_MODEL,
                        "node 'loop_1' (Loop): body has 2 outputs, expected 3 (condition, 1 "
                        "loop-carried values and 1 scan outputs)");
  done(g, v);
  g = loop_graph(-5, 3);
  g->values[val(g, "m")].init = tensor(g, TSR_DTYPE_INT64, 0, NULL, (int64_t[]){-5});
  g->n_inputs = 2;
  g->inputs[0] = val(g, "c");
  g->inputs[1] = val(g, "x");
  tsr_test_expect_error(run(g, "c:bool[] x:f32[2]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "node 'loop_1' (Loop): trip count M 'm' is -5; it must not be negative");
  done(g, v);
  one_err("Loop", 13, "m,c", "m:i64[] c:bool[]", TSR_STATUS_INVALID_MODEL,
          "node 'Loop' (Loop): attribute 'body' is required");
}
END_TEST

START_TEST(test_scan) {
  /* Opset 9+: a running sum over axis 1 of x, scanned in reverse, its outputs stacked on axis 0. */
  tsr__graph *g = mk();
  tsr__node *n = node_named(g, "scan_1", "Scan", 11, "s0,x", "s,ys");
  tsr__graph *b = mk();
  node(b, "Add", 13, "s_in,x_in", "s_out");
  node(b, "Identity", 13, "s_out", "y_out");
  val(b, "s_in");
  val(b, "x_in");
  set_list(b, &b->inputs, &b->n_inputs, "s_in,x_in");
  set_list(b, &b->outputs, &b->n_outputs, "s_out,y_out");
  n = &g->nodes[0];
  add_attr(g, n, "body", 5)->g = b;
  attr_i(g, n, "num_scan_inputs", 1);
  attr_ints(g, n, "scan_input_axes", 1, (int64_t[]){1});
  attr_ints(g, n, "scan_input_directions", 1, (int64_t[]){1});
  attr_ints(g, n, "scan_output_axes", 1, (int64_t[]){-1});
  set_list(g, &g->inputs, &g->n_inputs, "s0,x");
  set_list(g, &g->outputs, &g->n_outputs, "s,ys");
  ck_assert_ok(tsr__graph_finalize(g));
  tsr__vshape *v;
  ck_assert_ok(run(g, "s0:f32[2] x:f32[2,5]", &v));
  expect(g, v, "s", "f32[2]");
  expect(g, v, "ys", "f32[2,5]");
  tsr__vshapes_clear(g, v);
  free(v);
  tsr_test_expect_error(run(g, "s0:f32[1] x:f32[2,5]", &v), TSR_STATUS_INVALID_MODEL,
                        "node 'scan_1' (Scan): state value 0 's0' is float32 [1], but the body "
                        "returns float32 [2]");
  done(g, v);
  one_err("Scan", 11, "x", "x:f32[2]", TSR_STATUS_INVALID_MODEL,
          "node 'Scan' (Scan): attribute 'body' is required");
}
END_TEST

/* ---- Recurrent, quantization, misc ----------------------------------------------------- */

START_TEST(test_rnn) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "LSTM", 7, "x,w,r", "y,yh,yc");
  attr_i(g, n, "hidden_size", 5);
  n = node(g, "GRU", 14, "xb,wg2,rg2", "gy,gyh");
  attr_i(g, n, "hidden_size", 5);
  attr_s(g, n, "direction", "bidirectional");
  attr_i(g, n, "layout", 1);
  node(g, "RNN", 14, "x,wr,rr,,,", ",ryh");
  tsr__vshape *v;
  ck_assert_ok(run(g,
                   "x:f32[7,2,3] w:f32[1,20,3] r:f32[1,20,5] xb:f32[2,7,3] wg2:f32[2,15,3] "
                   "rg2:f32[2,15,5] wr:f32[1,4,3] rr:f32[1,4,4]",
                   &v));
  expect(g, v, "y", "f32[7,1,2,5]");
  expect(g, v, "yh", "f32[1,2,5]");
  expect(g, v, "yc", "f32[1,2,5]");
  expect(g, v, "gy", "f32[2,7,2,5]");
  expect(g, v, "gyh", "f32[2,2,5]");
  expect(g, v, "ryh", "f32[1,2,4]");
  done(g, v);
  one_err("LSTM", 7, "x,w,r", "x:f32[7,2,3] w:f32[1,16,3] r:f32[1,20,5]",
          TSR_STATUS_INVALID_ARGUMENT, "weights 'w' [1,16,3] do not match [1,20,3]");
}
END_TEST

START_TEST(test_quantization) {
  tsr__graph *g = mk();
  node(g, "QuantizeLinear", 13, "x,s,zp", "q");
  node(g, "QuantizeLinear", 10, "x,s", "q_default");
  node(g, "QuantizeLinear", 13, "x,sc,zc", "q_axis");
  node(g, "DequantizeLinear", 13, "q,s,zp", "dq");
  node(g, "DynamicQuantizeLinear", 11, "x", "dy,dys,dyz");
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[2,3,4] s:f32[] zp:i8[] sc:f32[3] zc:u8[3]", &v));
  expect(g, v, "q", "i8[2,3,4]");
  expect(g, v, "q_default", "u8[2,3,4]");
  expect(g, v, "q_axis", "u8[2,3,4]");
  expect(g, v, "dq", "f32[2,3,4]");
  expect(g, v, "dy", "u8[2,3,4]");
  expect(g, v, "dys", "f32[]");
  expect(g, v, "dyz", "u8[]");
  done(g, v);
  one_err("QuantizeLinear", 13, "x,s", "x:f32[2,3] s:f32[2]", TSR_STATUS_INVALID_ARGUMENT,
          "along axis 1");
}
END_TEST

START_TEST(test_misc_ops) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "DepthToSpace", 13, "x", "d2s");
  attr_i(g, n, "blocksize", 2);
  n = node(g, "SpaceToDepth", 13, "x", "s2d");
  attr_i(g, n, "blocksize", 2);
  node(g, "Trilu", 14, "m,k", "tri");
  node(g, "EyeLike", 9, "m2", "eye");
  n = node(g, "EyeLike", 9, "m2", "eye_i");
  attr_i(g, n, "dtype", TSR_DTYPE_INT32);
  node(g, "Det", 11, "sq", "det");
  node(g, "CumSum", 14, "x,ax", "cs");
  n = node(g, "Resize", 10, "x,scales", "rs10");
  node(g, "Resize", 11, "x,roi,empty_f,sizes", "rs11");
  node(g, "Resize", 13, "x,,scales2", "rs13");
  node(g, "Resize", 13, "x3,,scales53", "rs_float");
  n = node(g, "Resize", 18, "x,,,sizes2", "rs18");
  ATTR_INTS(g, n, "axes", 2, 3);
  attr_s(g, n, "keep_aspect_ratio_policy", "not_larger");
  n = node(g, "Upsample", 7, "x", "up7");
  attr_floats(g, n, "scales", 4, (float[]){1, 1, 2, 3});
  node(g, "Upsample", 9, "x,scales", "up9");
  n = node(g, "RoiAlign", 16, "x,rois,bi", "roi");
  attr_i(g, n, "output_height", 7);
  attr_i(g, n, "output_width", 7);
  node(g, "ReverseSequence", 10, "m,lens", "revseq");
  n = node(g, "GroupNormalization", 18, "x,gs,gb", "gn");
  attr_i(g, n, "num_groups", 2);
  n = node(g, "MaxUnpool", 11, "x,idx", "unpool");
  ATTR_INTS(g, n, "kernel_shape", 2, 2);
  ATTR_INTS(g, n, "strides", 2, 2);
  n = node(g, "RandomNormal", 1 + 6, "", "rnd");
  ATTR_INTS(g, n, "shape", 2, 3);
  attr_i(g, n, "dtype", TSR_DTYPE_FLOAT64);
  n = node(g, "Multinomial", 7, "m2", "mn");
  attr_i(g, n, "sample_size", 5);
  init_scalar_i64(g, "k", 1);
  init_scalar_i64(g, "ax", -1);
  INIT_F32(g, "scales", 1, 1, 2, 2);
  init(g, "empty_f", TSR_DTYPE_FLOAT32, 1, NULL, 0, NULL);
  init(g, "roi", TSR_DTYPE_FLOAT32, 1, NULL, 0, NULL);
  INIT_I64(g, "sizes", 1, 8, 3, 5);
  INIT_F32(g, "scales2", 1, 1, 1.5f, 0.5f);
  INIT_F32(g, "scales53", 1, 1, 1.6666666f, 1);
  INIT_I64(g, "sizes2", 10, 20);
  tsr__vshape *v;
  ck_assert_ok(run(g,
                   "x:f32[1,8,4,4] m:f32[3,5] m2:f32[4,6] sq:f32[2,3,3] x3:f32[1,1,3,3] "
                   "rois:f32[5,4] bi:i64[5] lens:i64[5] gs:f32[8] gb:f32[8] idx:i64[1,8,4,4]",
                   &v));
  expect(g, v, "d2s", "f32[1,2,8,8]");
  expect(g, v, "s2d", "f32[1,32,2,2]");
  expect(g, v, "tri", "f32[3,5]");
  expect(g, v, "eye", "f32[4,6]");
  expect(g, v, "eye_i", "i32[4,6]");
  expect(g, v, "det", "f32[2]");
  expect(g, v, "cs", "f32[1,8,4,4]");
  expect(g, v, "rs10", "f32[1,8,8,8]");
  expect(g, v, "rs11", "f32[1,8,3,5]");
  expect(g, v, "rs13", "f32[1,8,6,2]");
  expect(g, v, "rs_float", "f32[1,1,5,3]");
  expect(g, v, "rs18", "f32[1,8,10,10]");
  expect(g, v, "up7", "f32[1,8,8,12]");
  expect(g, v, "up9", "f32[1,8,8,8]");
  expect(g, v, "roi", "f32[5,8,7,7]");
  expect(g, v, "revseq", "f32[3,5]");
  expect(g, v, "gn", "f32[1,8,4,4]");
  expect(g, v, "unpool", "f32[1,8,8,8]");
  expect(g, v, "rnd", "f64[2,3]");
  expect(g, v, "mn", "i32[4,5]");
  done(g, v);
  one_err("DepthToSpace", 13, "x", "x:f32[1,3,2,2]", TSR_STATUS_INVALID_MODEL,
          "attribute 'blocksize' is required");
  one_err("Det", 11, "x", "x:f32[2,3]", TSR_STATUS_INVALID_ARGUMENT, "not square");
  one_err("Resize", 13, "x,,s", "x:f32[1,1,2,2] s:f32[4]", TSR_STATUS_UNSUPPORTED, "input 2 's'");
}
END_TEST

/* ---- Driver behaviour ------------------------------------------------------------------ */

START_TEST(test_unknown_ops_and_opsets) {
  one_err("Foo", 13, "x", "x:f32[1]", TSR_STATUS_UNSUPPORTED,
          "node 'Foo' (Foo): operator Foo (domain '', opset 13) is not supported");
  /* Acos appears in opset 7; Upsample-1 differs from Upsample-7 and is not implemented. */
  one_err("Acos", 6, "x", "x:f32[1]", TSR_STATUS_UNSUPPORTED, "opsets 7 and later");
  one_err("Upsample", 6, "x", "x:f32[1,1,2,2]", TSR_STATUS_UNSUPPORTED, "opsets 7 and later");
  tsr__graph *g = mk();
  tsr__node *n = node_named(g, "ms_gelu", "FastGelu", 1, "x", "y");
  tsr__free(g->alloc, n->domain);
  n->domain = tsr__strdup(g->alloc, "com.microsoft");
  tsr__vshape *v;
  tsr_test_expect_error(run(g, "x:f32[1]", &v), TSR_STATUS_UNSUPPORTED,
                        "operator FastGelu (domain 'com.microsoft', opset 1) is not supported");
  done(g, v);
  /* A node without its own opset uses the graph's import; "ai.onnx" is the default domain. */
  g = mk();
  n = node(g, "Softmax", -1, "x", "y");
  tsr__free(g->alloc, n->domain);
  n->domain = tsr__strdup(g->alloc, "ai.onnx");
  g->opsets = tsr__calloc(g->alloc, 1, sizeof *g->opsets);
  g->opsets[0].domain = tsr__strdup(g->alloc, "");
  g->opsets[0].version = 11;
  g->n_opsets = 1;
  tsr_test_expect_error(run(g, "x:f32[4]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "axis 1 is out of range"); /* the opset-11 default axis */
  done(g, v);
  g = mk();
  node(g, "Relu", -1, "x", "y");
  tsr_test_expect_error(run(g, "x:f32[4]", &v), TSR_STATUS_INVALID_MODEL, "imports no opset");
  done(g, v);

  ck_assert(tsr__shape_op_known("", "Conv"));
  ck_assert(tsr__shape_op_known(NULL, "Reshape"));
  ck_assert(tsr__shape_op_known("ai.onnx", "Xor"));
  ck_assert(!tsr__shape_op_known("com.microsoft", "Conv"));
  ck_assert(!tsr__shape_op_known("", "Foo"));
  ck_assert(!tsr__shape_op_known("", NULL));
}
END_TEST

START_TEST(test_op_table_complete) {
  /* Every op this module claims; a misplaced table entry would hide some of them. */
  static const char *const ops[] = {"Abs",
                                    "Acos",
                                    "Acosh",
                                    "Add",
                                    "And",
                                    "ArgMax",
                                    "ArgMin",
                                    "Asin",
                                    "Asinh",
                                    "Atan",
                                    "Atanh",
                                    "AveragePool",
                                    "BatchNormalization",
                                    "Bernoulli",
                                    "BitShift",
                                    "BitwiseAnd",
                                    "BitwiseNot",
                                    "BitwiseOr",
                                    "BitwiseXor",
                                    "BlackmanWindow",
                                    "Cast",
                                    "CastLike",
                                    "Ceil",
                                    "Celu",
                                    "Clip",
                                    "Compress",
                                    "Concat",
                                    "Constant",
                                    "ConstantOfShape",
                                    "Conv",
                                    "ConvInteger",
                                    "ConvTranspose",
                                    "Cos",
                                    "Cosh",
                                    "CumSum",
                                    "DepthToSpace",
                                    "DequantizeLinear",
                                    "DFT",
                                    "Det",
                                    "Div",
                                    "Dropout",
                                    "DynamicQuantizeLinear",
                                    "Einsum",
                                    "Elu",
                                    "Equal",
                                    "Erf",
                                    "Exp",
                                    "Expand",
                                    "EyeLike",
                                    "Flatten",
                                    "Floor",
                                    "GRU",
                                    "Gather",
                                    "GatherElements",
                                    "GatherND",
                                    "Gelu",
                                    "GridSample",
                                    "Gemm",
                                    "GlobalAveragePool",
                                    "GlobalLpPool",
                                    "GlobalMaxPool",
                                    "Greater",
                                    "GreaterOrEqual",
                                    "GroupNormalization",
                                    "HardSigmoid",
                                    "HardSwish",
                                    "HammingWindow",
                                    "HannWindow",
                                    "Hardmax",
                                    "Identity",
                                    "If",
                                    "InstanceNormalization",
                                    "IsInf",
                                    "IsNaN",
                                    "LRN",
                                    "LSTM",
                                    "LayerNormalization",
                                    "LeakyRelu",
                                    "Less",
                                    "LessOrEqual",
                                    "Log",
                                    "LogSoftmax",
                                    "Loop",
                                    "LpNormalization",
                                    "LpPool",
                                    "MatMul",
                                    "MatMulInteger",
                                    "Max",
                                    "MaxPool",
                                    "MaxUnpool",
                                    "MelWeightMatrix",
                                    "Mean",
                                    "MeanVarianceNormalization",
                                    "Min",
                                    "Mish",
                                    "Mod",
                                    "Mul",
                                    "Multinomial",
                                    "Neg",
                                    "NonMaxSuppression",
                                    "NonZero",
                                    "Not",
                                    "OneHot",
                                    "Or",
                                    "PRelu",
                                    "Pad",
                                    "Pow",
                                    "QLinearConv",
                                    "QLinearMatMul",
                                    "QuantizeLinear",
                                    "RNN",
                                    "RandomNormal",
                                    "RandomNormalLike",
                                    "RandomUniform",
                                    "RandomUniformLike",
                                    "Range",
                                    "Reciprocal",
                                    "ReduceL1",
                                    "ReduceL2",
                                    "ReduceLogSum",
                                    "ReduceLogSumExp",
                                    "ReduceMax",
                                    "ReduceMean",
                                    "ReduceMin",
                                    "ReduceProd",
                                    "ReduceSum",
                                    "ReduceSumSquare",
                                    "Relu",
                                    "Reshape",
                                    "Resize",
                                    "ReverseSequence",
                                    "RoiAlign",
                                    "Round",
                                    "STFT",
                                    "Scan",
                                    "Scatter",
                                    "ScatterElements",
                                    "ScatterND",
                                    "Selu",
                                    "Shape",
                                    "Shrink",
                                    "Sigmoid",
                                    "Sign",
                                    "Sin",
                                    "Sinh",
                                    "Size",
                                    "Slice",
                                    "Softmax",
                                    "Softplus",
                                    "Softsign",
                                    "SpaceToDepth",
                                    "Split",
                                    "Sqrt",
                                    "Squeeze",
                                    "Sub",
                                    "Sum",
                                    "Tan",
                                    "Tanh",
                                    "ThresholdedRelu",
                                    "Tile",
                                    "TopK",
                                    "Transpose",
                                    "Trilu",
                                    "Unique",
                                    "Unsqueeze",
                                    "Upsample",
                                    "Where",
                                    "Xor"};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    ck_assert_msg(tsr__shape_op_known("", ops[i]), "%s is not known", ops[i]);
}
END_TEST

START_TEST(test_inputs_and_arity) {
  tsr__graph *g = mk();
  node(g, "Relu", 13, "x", "y");
  set_list(g, &g->inputs, &g->n_inputs, "x");
  tsr__vshape *v;
  tsr_test_expect_error(run(g, "", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "graph input 'x' has no dtype and shape");
  done(g, v);
  g = mk();
  node(g, "Relu", 13, "x", "y");
  tsr_test_expect_error(run(g, "", &v), TSR_STATUS_INVALID_MODEL, "input 0 'x' has no known type");
  done(g, v);
  one_err("Add", 13, "a,b,c", "a:f32[1] b:f32[1] c:f32[1]", TSR_STATUS_INVALID_MODEL,
          "Add takes at most 2");
  one_err("Add", 13, "a,", "a:f32[1]", TSR_STATUS_INVALID_MODEL, "input 1 is required");
  one_err("Gemm", 13, "a", "a:f32[1,1]", TSR_STATUS_INVALID_MODEL, "needs at least 2");
  /* The caller's shapes must be concrete. */
  g = mk();
  node(g, "Relu", 13, "x", "y");
  tsr__vshape *vals = calloc(g->n_values, sizeof *vals);
  tsr_test_expect_error(tsr__vshape_set(g, &vals[0], TSR_DTYPE_FLOAT32, 2, (int64_t[]){2, -1}),
                        TSR_STATUS_INVALID_ARGUMENT, "concrete");
  tsr_test_expect_error(
      tsr__vshape_set(g, &vals[0], TSR_DTYPE_FLOAT32, 2, (int64_t[]){INT64_MAX, 4}),
      TSR_STATUS_INVALID_ARGUMENT, "too large");
  done(g, vals);
}
END_TEST

/* Inference twice over the same vals (a replanned session) frees what the first pass set. */
START_TEST(test_rerun_and_clear) {
  tsr__graph *g = shape_chain();
  fake_eval f = {{0}, 0, 0};
  tsr__vshape *v;
  ck_assert_ok(run_eval(g, "x:f32[2,3,4]", fake_eval_fn, &f, &v));
  ck_assert_ok(tsr__vshape_set(g, &v[val(g, "x")], TSR_DTYPE_FLOAT32, 2, (int64_t[]){5, 7}));
  ck_assert_ok(tsr__infer_shapes(g, v, fake_eval_fn, &f));
  expect(g, v, "y", "f32[5,7]");
  tsr__vshapes_clear(g, v);
  for (uint32_t i = 0; i < g->n_values; i++) {
    ck_assert_int_eq(v[i].rank, -1);
    ck_assert_ptr_null(v[i].dims);
    ck_assert_ptr_null(v[i].data);
  }
  done(g, v);
}
END_TEST

/* An allocator that fails its Nth allocation (and every one after) once armed. */
typedef struct failing_alloc {
  tsr_allocator a;
  long countdown; /* < 0: disarmed */
} failing_alloc;

static bool fa_fail(failing_alloc *f) {
  if (f->countdown < 0)
    return false;
  return f->countdown-- == 0 || f->countdown < 0;
}
static void *fa_alloc(void *self, size_t size) { return fa_fail(self) ? NULL : malloc(size); }
static void *fa_realloc(void *self, void *p, size_t size) {
  return fa_fail(self) ? NULL : realloc(p, size);
}
static void fa_free(void *self, void *p) { free(p); }

/* Every allocation inference makes may fail: the result is OUT_OF_MEMORY, never a crash or a
 * leak (this suite runs under valgrind and AddressSanitizer). */
START_TEST(test_allocation_failures) {
  failing_alloc fa = {{NULL, fa_alloc, fa_realloc, fa_free}, -1};
  fa.a.self = &fa;
  tsr__graph *g = NULL;
  ck_assert_ok(tsr__graph_create(&fa.a, &g));
  node(g, "Shape", 13, "x", "s");
  node(g, "Gather", 13, "s,zero", "batch");
  node(g, "Unsqueeze", 13, "batch,axes0", "batch1");
  tsr__node *n = node(g, "Concat", 13, "batch1,minus1", "newshape");
  attr_i(g, n, "axis", 0);
  node(g, "Reshape", 13, "x,newshape", "r");
  n = node(g, "Conv", 11, "x4,w", "conv");
  ATTR_INTS(g, n, "pads", 1, 1, 1, 1);
  n = node(g, "Einsum", 12, "r,r", "e");
  attr_s(g, n, "equation", "ij,kj->ik");
  node(g, "Add", 13, "e,x", "sum"); /* [2,2] + [2,3,4]: fails after everything else */
  init_scalar_i64(g, "zero", 0);
  INIT_I64(g, "axes0", 0);
  INIT_I64(g, "minus1", -1);
  tsr__vshape *v = calloc(g->n_values, sizeof *v);
  int oom = 0;
  for (long fail_at = 0;; fail_at++) {
    fa.countdown = -1;
    for (uint32_t i = 0; i < g->n_values; i++)
      v[i].rank = -1;
    ck_assert_ok(tsr__vshape_set(g, &v[val(g, "x")], TSR_DTYPE_FLOAT32, 3, (int64_t[]){2, 3, 4}));
    ck_assert_ok(
        tsr__vshape_set(g, &v[val(g, "x4")], TSR_DTYPE_FLOAT32, 4, (int64_t[]){1, 3, 8, 8}));
    ck_assert_ok(
        tsr__vshape_set(g, &v[val(g, "w")], TSR_DTYPE_FLOAT32, 4, (int64_t[]){4, 3, 3, 3}));
    fake_eval f = {{0}, 0, 0};
    fa.countdown = fail_at;
    tsr_status st = tsr__infer_shapes(g, v, fake_eval_fn, &f);
    bool injected = fa.countdown < 0;
    fa.countdown = -1;
    tsr_status_code code = tsr_status_code_of(st);
    /* The last node's error, when reached (its message may lack a shape it had no memory
     * to format), or running out of memory. */
    bool last_error = code == TSR_STATUS_INVALID_ARGUMENT &&
                      strstr(tsr_status_message(st), "node 'Add' (Add)") != NULL;
    ck_assert_msg(last_error || (injected && code == TSR_STATUS_OUT_OF_MEMORY), "fail_at %ld: %s",
                  fail_at, tsr_status_message(st));
    tsr_status_free(st);
    tsr__vshapes_clear(g, v);
    if (!injected)
      break;
    oom += code == TSR_STATUS_OUT_OF_MEMORY;
  }
  ck_assert_int_gt(oom, 20);
  free(v);
  tsr__graph_destroy(g);
}
END_TEST

/* ---- Opsets 1 to 6 ---------------------------------------------------------------------- */

/* Ops whose versions 1..6 differ from opset 7 only by the legacy consumed_inputs attribute. */
START_TEST(test_old_opsets_same_rule) {
  one("Selu", 6, "x", "x:f32[2,3]", "f32[2,3]");
  one("Elu", 1, "x", "x:f32[2,3]", "f32[2,3]");
  one("HardSigmoid", 6, "x", "x:f32[4]", "f32[4]");
  one("Relu", 1, "x", "x:f32[4]", "f32[4]");
  one("Not", 1, "x", "x:bool[4]", "bool[4]");
  one("Softsign", 1, "x", "x:f32[4]", "f32[4]");
  one("Softplus", 1, "x", "x:f32[4]", "f32[4]");
  one("Sum", 6, "a,b", "a:f32[3] b:f32[3]", "f32[3]");
  one("Clip", 6, "x", "x:f32[3]", "f32[3]");
  one("InstanceNormalization", 6, "x,s,b", "x:f32[1,2,3,4] s:f32[2] b:f32[2]", "f32[1,2,3,4]");
  one("GlobalMaxPool", 1, "x", "x:f32[1,2,3,4]", "f32[1,2,1,1]");
  one("GlobalAveragePool", 1, "x", "x:f32[1,2,3,4]", "f32[1,2,1,1]");
  one("MatMul", 1, "a,b", "a:f32[2,3] b:f32[3,4]", "f32[2,4]");
  one_err("Cast", 5, "x", "x:f32[2]", TSR_STATUS_UNSUPPORTED,
          "operator Cast (domain '', opset 5) is not supported: shape inference covers Cast from "
          "opset 6 on");
  one_err("Tile", 5, "x,t,a", "x:f32[2] t:i64[] a:i64[]", TSR_STATUS_UNSUPPORTED,
          "covers Tile from opset 6 on");
  tsr__graph *g = mk();
  tsr__node *n = node(g, "MaxPool", 1, "x", "y");
  ATTR_INTS(g, n, "kernel_shape", 2, 2);
  n = node(g, "Conv", 1, "x,w", "c");
  n = node(g, "Gemm", 6, "a,b,cc", "gm");
  attr_i(g, n, "broadcast", 1);
  n = node(g, "Gemm", 6, "a,b,full", "gm2");
  n = node(g, "Cast", 6, "a", "cast");
  attr_i(g, n, "to", TSR_DTYPE_INT64);
  tsr__vshape *v;
  ck_assert_ok(
      run(g, "x:f32[1,2,4,4] w:f32[3,2,3,3] a:f32[2,3] b:f32[3,5] cc:f32[5] full:f32[2,5]", &v));
  expect(g, v, "y", "f32[1,2,3,3]");
  expect(g, v, "c", "f32[1,3,2,2]");
  expect(g, v, "gm", "f32[2,5]");
  expect(g, v, "gm2", "f32[2,5]");
  expect(g, v, "cast", "i64[2,3]");
  done(g, v);
  g = mk();
  node(g, "Gemm", 6, "a,b,cc", "gm");
  tsr_test_expect_error(run(g, "a:f32[2,3] b:f32[3,5] cc:f32[5]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "before opset 7 C broadcasts only with broadcast = 1");
  done(g, v);
}
END_TEST

/* Caffe2-style broadcasting before opset 7: the trailing form runs, an axis elsewhere does not. */
START_TEST(test_old_opsets_broadcast) {
  one("Add", 6, "a,b", "a:f32[2,3] b:f32[2,3]", "f32[2,3]");
  one_err("Add", 6, "a,b", "a:f32[2,3] b:f32[3]", TSR_STATUS_INVALID_ARGUMENT,
          "before opset 7 that needs broadcast = 1");
  static const struct {
    const char *op, *b;
    int64_t axis; /* -100: none */
    tsr_status_code code;
    const char *want;
  } cases[] = {
      {"Add", "b:f32[4,5]", -100, TSR_STATUS_OK, "f32[2,3,4,5]"},
      {"Mul", "b:f32[]", 1, TSR_STATUS_OK, "f32[2,3,4,5]"},
      {"Sub", "b:f32[1,5]", 2, TSR_STATUS_OK, "f32[2,3,4,5]"},
      {"Div", "b:f32[5]", -1, TSR_STATUS_OK, "f32[2,3,4,5]"},
      {"Pow", "b:f32[3,4]", 1, TSR_STATUS_UNSUPPORTED, "from axis 1 of 'a' [2,3,4,5]"},
      {"Add", "b:f32[3]", 1, TSR_STATUS_UNSUPPORTED, "is not implemented"},
      {"Add", "b:f32[4]", -100, TSR_STATUS_INVALID_ARGUMENT, "does not match the trailing dims"},
      {"Add", "b:f32[3,4,5]", 3, TSR_STATUS_INVALID_ARGUMENT, "cannot align"},
      {"Add", "b:f32[1,2,3,4,5]", -100, TSR_STATUS_INVALID_ARGUMENT, "has more dims"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    tsr__graph *g = mk();
    tsr__node *n = node(g, cases[i].op, 6, "a,b", "y");
    attr_i(g, n, "broadcast", 1);
    if (cases[i].axis != -100)
      attr_i(g, n, "axis", cases[i].axis);
    char inputs[128];
    snprintf(inputs, sizeof inputs, "a:f32[2,3,4,5] %s", cases[i].b);
    tsr__vshape *v;
    tsr_status st = run(g, inputs, &v);
    if (cases[i].code == TSR_STATUS_OK) {
      ck_assert_ok(st);
      expect(g, v, "y", cases[i].want);
    } else {
      tsr_test_expect_error(st, cases[i].code, cases[i].want);
    }
    done(g, v);
  }
  /* Comparisons and logic keep their bool outputs. */
  tsr__graph *g = mk();
  tsr__node *n = node(g, "Equal", 1, "a,b", "eq");
  attr_i(g, n, "broadcast", 1);
  n = node(g, "And", 1, "p,q", "and");
  attr_i(g, n, "broadcast", 1);
  node(g, "Less", 1, "a,a", "lt");
  tsr__vshape *v;
  ck_assert_ok(run(g, "a:i64[2,3] b:i64[3] p:bool[2,2] q:bool[1]", &v));
  expect(g, v, "eq", "bool[2,3]");
  expect(g, v, "and", "bool[2,2]");
  expect(g, v, "lt", "bool[2,3]");
  done(g, v);
  /* PRelu-6: one slope, or one per element; a per-channel slope is not numpy broadcasting. */
  one("PRelu", 6, "x,s", "x:f32[1,3,2,2] s:f32[1]", "f32[1,3,2,2]");
  one("PRelu", 6, "x,s", "x:f32[1,3] s:f32[1,3]", "f32[1,3]");
  one_err("PRelu", 6, "x,s", "x:f32[1,3,2,2] s:f32[3]", TSR_STATUS_UNSUPPORTED,
          "only a single slope or one per element");
}
END_TEST

/* is_test modes, and the old forms of Reshape, Split, Pad and Concat. */
START_TEST(test_old_opsets_forms) {
  tsr__graph *g = mk();
  tsr__node *n = node(g, "BatchNormalization", 6, "x,s,b,m,var", "bn");
  attr_i(g, n, "is_test", 1);
  n = node(g, "Dropout", 6, "x", "do,mask");
  attr_i(g, n, "is_test", 1);
  n = node(g, "Reshape", 4, "x", "rs");
  ATTR_INTS(g, n, "shape", 2, -1);
  n = node(g, "Concat", 3, "x,x", "cc");
  n = node(g, "Split", 1, "x,parts", "s1,s2");
  attr_i(g, n, "axis", 1);
  init(g, "parts", TSR_DTYPE_FLOAT32, 1, NULL, 2, (float[]){1, 2});
  n = node(g, "Split", 2, "x", "t1,t2");
  attr_i(g, n, "axis", 2);
  n = node(g, "Pad", 1, "x", "p1");
  ATTR_INTS(g, n, "paddings", 0, 0, 1, 1, 0, 0, 1, 1);
  n = node(g, "Pad", 2, "x", "p2");
  ATTR_INTS(g, n, "pads", 0, 1, 0, 0, 0, 1, 0, 0);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[1,3,2,2] s:f32[3] b:f32[3] m:f32[3] var:f32[3]", &v));
  expect(g, v, "bn", "f32[1,3,2,2]");
  expect(g, v, "do", "f32[1,3,2,2]");
  expect(g, v, "mask", "f32[1,3,2,2]"); /* of the input's type before opset 10 */
  expect(g, v, "rs", "f32[2,6]");
  expect(g, v, "cc", "f32[1,6,2,2]"); /* Concat-1's default axis is 1 */
  expect(g, v, "s1", "f32[1,1,2,2]");
  expect(g, v, "s2", "f32[1,2,2,2]");
  expect(g, v, "t1", "f32[1,3,1,2]");
  expect(g, v, "p1", "f32[1,3,4,4]");
  expect(g, v, "p2", "f32[1,5,2,2]");
  done(g, v);

  g = mk();
  node(g, "BatchNormalization", 6, "x,s,b,m,var", "bn");
  ck_assert_ptr_nonnull(g);
  tsr_test_expect_error(run(g, "x:f32[1,3] s:f32[3] b:f32[3] m:f32[3] var:f32[3]", &v),
                        TSR_STATUS_UNSUPPORTED,
                        "operator BatchNormalization (domain '', opset 6) is not supported: "
                        "training mode (is_test = 0");
  done(g, v);
  g = mk();
  n = node(g, "BatchNormalization", 6, "x,s,b,m,var", "bn,rm,rv");
  attr_i(g, n, "is_test", 1);
  tsr_test_expect_error(run(g, "x:f32[1,3] s:f32[3] b:f32[3] m:f32[3] var:f32[3]", &v),
                        TSR_STATUS_UNSUPPORTED, "only output Y is implemented");
  done(g, v);
  one_err("Dropout", 6, "x", "x:f32[2]", TSR_STATUS_UNSUPPORTED, "draws random masks");
  one_err("Concat", 4, "a,b", "a:f32[2] b:f32[2]", TSR_STATUS_INVALID_MODEL,
          "attribute 'axis' is required");
  one_err("Reshape", 4, "x,s", "x:f32[2] s:i64[1]", TSR_STATUS_INVALID_MODEL,
          "before opset 5 the shape is an attribute");
  one_err("Reshape", 13, "x", "x:f32[2]", TSR_STATUS_INVALID_MODEL,
          "input 1 'shape' is required from opset 5");
  one_err("Split", 2, "x,s", "x:f32[2] s:i64[1]", TSR_STATUS_INVALID_MODEL,
          "before opset 13 'split' is an attribute");
  one_err("Split", 1, "x,s", "x:f32[2] s:f32[1]", TSR_STATUS_UNSUPPORTED, "only known at run time");
  one_err("Pad", 1, "x", "x:f32[2]", TSR_STATUS_INVALID_MODEL, "attribute 'paddings' is required");
}
END_TEST

/* ---- Sampling, Unique and signal processing --------------------------------------------- */

START_TEST(test_grid_sample) {
  one("GridSample", 16, "x,g", "x:f32[2,3,5,6] g:f32[2,7,8,2]", "f32[2,3,7,8]");
  one("GridSample", 16, "x,g", "x:f64[1,1,0,6] g:f32[1,0,8,2]", "f64[1,1,0,8]");
  one_err("GridSample", 16, "x,g", "x:f32[2,3,5,6] g:f32[1,7,8,2]", TSR_STATUS_INVALID_ARGUMENT,
          "grid 'g' [1,7,8,2] must be [N, H_out, W_out, 2] with N = 2");
  one_err("GridSample", 16, "x,g", "x:f32[2,3,5,6] g:f32[2,7,8,3]", TSR_STATUS_INVALID_ARGUMENT,
          "must be [N, H_out, W_out, 2]");
  one_err("GridSample", 16, "x,g", "x:f32[2,3,5] g:f32[2,7,8,2]", TSR_STATUS_INVALID_ARGUMENT,
          "must have rank 4");
  one_err("GridSample", 16, "x,g", "x:f32[2,3,5,6] g:i64[2,7,8,2]", TSR_STATUS_INVALID_MODEL,
          "floating-point");
  tsr__graph *g = mk();
  tsr__node *n = node(g, "GridSample", 16, "x,g", "y");
  attr_s(g, n, "mode", "cubic");
  tsr__vshape *v;
  tsr_test_expect_error(run(g, "x:f32[1,1,2,2] g:f32[1,1,1,2]", &v), TSR_STATUS_INVALID_MODEL,
                        "attribute 'mode' is 'cubic', expected bilinear, nearest or bicubic");
  done(g, v);
  g = mk();
  n = node(g, "GridSample", 16, "x,g", "y");
  attr_s(g, n, "padding_mode", "wrap");
  tsr_test_expect_error(run(g, "x:f32[1,1,2,2] g:f32[1,1,1,2]", &v), TSR_STATUS_INVALID_MODEL,
                        "'padding_mode' is 'wrap'");
  done(g, v);
}
END_TEST

START_TEST(test_unique) {
  /* Without data the sizes are unknown: the session plans again with the input's values. */
  one_err("Unique", 11, "x", "x:f32[6]", TSR_STATUS_UNSUPPORTED,
          "node 'Unique' (Unique): output shape depends on input 0 'x', which is only known at "
          "run time");
  tsr__graph *g = mk();
  node(g, "Unique", 11, "x", "y,idx,inv,cnt");
  init(g, "x", TSR_DTYPE_FLOAT32, 1, NULL, 6, (float[]){2, 1, 1, 3, 4, 3});
  tsr__node *n = node(g, "Unique", 11, "m", "ym,im,vm,cm");
  attr_i(g, n, "axis", 1);
  init(g, "m", TSR_DTYPE_INT64, 3, (int64_t[]){2, 4, 2}, 16,
       (int64_t[]){1, 1, 0, 1, 2, 1, 0, 1, 1, 1, 0, 1, 2, 1, 0, 1});
  n = node(g, "Unique", 11, "m", "ym0");
  attr_i(g, n, "axis", -3);
  /* int64 values that differ beyond double precision stay distinct */
  node(g, "Unique", 11, "big", "yb");
  init(g, "big", TSR_DTYPE_INT64, 1, NULL, 3, (int64_t[]){INT64_MAX, INT64_MAX - 1, INT64_MAX});
  /* NaN equals NaN, -0 equals +0 */
  node(g, "Unique", 11, "nan", "yn");
  init(g, "nan", TSR_DTYPE_FLOAT32, 1, NULL, 5, (float[]){NAN, 0.0f, -0.0f, NAN, 1.0f});
  tsr__vshape *v;
  ck_assert_ok(run(g, "", &v));
  expect(g, v, "y", "f32[4]");
  expect(g, v, "idx", "i64[4]");
  expect(g, v, "inv", "i64[6]");
  expect(g, v, "cnt", "i64[4]");
  expect(g, v, "ym", "i64[2,3,2]");
  expect(g, v, "im", "i64[3]");
  expect(g, v, "vm", "i64[4]");
  expect(g, v, "ym0", "i64[1,4,2]");
  expect(g, v, "yb", "i64[2]");
  expect(g, v, "yn", "f32[3]");
  done(g, v);
  /* Empty inputs need no data: nothing is unique, or every empty slice is the same. */
  one("Unique", 11, "x", "x:f32[0,3]", "f32[0]");
  g = mk();
  n = node(g, "Unique", 11, "x", "y,i,inv");
  attr_i(g, n, "axis", 0);
  ck_assert_ok(run(g, "x:f32[3,0]", &v));
  expect(g, v, "y", "f32[1,0]");
  expect(g, v, "inv", "i64[3]");
  done(g, v);
  g = mk();
  n = node(g, "Unique", 11, "x", "y");
  attr_i(g, n, "axis", 2);
  tsr_test_expect_error(run(g, "x:f32[3,0]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "axis 2 is out of range for rank 2");
  done(g, v);
}
END_TEST

START_TEST(test_roi_align_rules) {
  one("RoiAlign", 16, "x,r,b", "x:f32[2,3,8,8] r:f32[5,4] b:i64[5]", "f32[5,3,1,1]");
  one_err("RoiAlign", 16, "x,r,b", "x:f32[2,3,8,8] r:f32[5,4] b:f32[5]", TSR_STATUS_INVALID_MODEL,
          "must be int32 or int64");
  one_err("RoiAlign", 16, "x,r,b", "x:f32[2,3,8,8] r:f64[5,4] b:i64[5]", TSR_STATUS_INVALID_MODEL,
          "same dtype");
  one_err("RoiAlign", 16, "x,r,b", "x:f32[2,3,8,8] r:f32[5,4] b:i64[4]",
          TSR_STATUS_INVALID_ARGUMENT, "one batch index per roi");
  static const char *const bad_attrs[][3] = {
      {"mode", "min", "attribute 'mode' is 'min', expected avg or max"},
      {"coordinate_transformation_mode", "asymmetric", "expected half_pixel or output_half_pixel"},
  };
  for (size_t i = 0; i < 2; i++) {
    tsr__graph *g = mk();
    tsr__node *n = node(g, "RoiAlign", 16, "x,r,b", "y");
    attr_s(g, n, bad_attrs[i][0], bad_attrs[i][1]);
    tsr__vshape *v;
    tsr_test_expect_error(run(g, "x:f32[2,3,8,8] r:f32[5,4] b:i64[5]", &v),
                          TSR_STATUS_INVALID_MODEL, bad_attrs[i][2]);
    done(g, v);
  }
  /* Opset 10 has no coordinate_transformation_mode to check. */
  tsr__graph *g = mk();
  tsr__node *n = node(g, "RoiAlign", 10, "x,r,b", "y");
  attr_s(g, n, "coordinate_transformation_mode", "asymmetric");
  attr_i(g, n, "output_height", 2);
  attr_i(g, n, "output_width", 3);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[2,3,8,8] r:f32[5,4] b:i64[5]", &v));
  expect(g, v, "y", "f32[5,3,2,3]");
  done(g, v);
}
END_TEST

START_TEST(test_nms_edge_values) {
  tsr__graph *g = mk();
  /* A NaN score is never selected; an enormous max_output_boxes_per_class is just a bound. */
  node(g, "NonMaxSuppression", 11, "boxes,scores,maxout", "sel");
  init(g, "boxes", TSR_DTYPE_FLOAT32, 3, (int64_t[]){1, 3, 4}, 12,
       (float[]){0, 0, 1, 1, 0, 5, 1, 6, 0, 10, 1, 11});
  init(g, "scores", TSR_DTYPE_FLOAT32, 3, (int64_t[]){1, 1, 3}, 3, (float[]){0.9f, NAN, 0.7f});
  INIT_I64(g, "maxout", INT64_MAX);
  tsr__vshape *v;
  ck_assert_ok(run(g, "", &v));
  expect(g, v, "sel", "i64[2,3]");
  done(g, v);
}
END_TEST

START_TEST(test_dft_stft) {
  one("DFT", 17, "x", "x:f32[1,10,10,1]", "f32[1,10,10,2]");
  one("DFT", 17, "x", "x:f64[2,5,3,2]", "f64[2,5,3,2]");
  tsr__graph *g = mk();
  tsr__node *n = node(g, "DFT", 17, "x", "one");
  attr_i(g, n, "onesided", 1);
  n = node(g, "DFT", 17, "x,len", "pad");
  attr_i(g, n, "axis", 2);
  init_scalar_i64(g, "len", 16);
  n = node(g, "DFT", 17, "x", "neg");
  attr_i(g, n, "axis", -2);
  attr_i(g, n, "onesided", 1);
  attr_i(g, n, "inverse", 1);
  tsr__vshape *v;
  ck_assert_ok(run(g, "x:f32[1,10,7,1]", &v));
  expect(g, v, "one", "f32[1,6,7,2]");
  expect(g, v, "pad", "f32[1,10,16,2]");
  expect(g, v, "neg", "f32[1,10,4,2]");
  done(g, v);
  one_err("DFT", 17, "x,len", "x:f32[1,10,1] len:i64[]", TSR_STATUS_UNSUPPORTED,
          "depends on input 1 'len', which is only known at run time");
  g = mk();
  n = node(g, "DFT", 17, "x", "y");
  attr_i(g, n, "onesided", 1);
  tsr_test_expect_error(run(g, "x:f32[1,10,2]", &v), TSR_STATUS_INVALID_MODEL,
                        "onesided output needs a real input");
  done(g, v);
  g = mk();
  n = node(g, "DFT", 17, "x", "y");
  attr_i(g, n, "axis", 0);
  tsr_test_expect_error(run(g, "x:f32[1,10,1]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "attribute 'axis' 0 must name a signal dim");
  done(g, v);
  one_err("DFT", 17, "x", "x:f32[1,10,3]", TSR_STATUS_INVALID_ARGUMENT,
          "must end in 1 (real) or 2 (complex) values");
  one_err("DFT", 17, "x", "x:i32[1,10,1]", TSR_STATUS_INVALID_MODEL, "floating-point");
  one_err("DFT", 17, "x", "x:f32[10,1]", TSR_STATUS_INVALID_ARGUMENT, "rank >= 3");
  one_err("DFT", 17, "x", "x:f32[1,0,1]", TSR_STATUS_INVALID_ARGUMENT, "the DFT length is 0");

  /* STFT: frames = (length - frame_length) / step + 1, bins = frame_length / 2 + 1. */
  g = mk();
  node(g, "STFT", 17, "sig,step,,flen", "a");
  n = node(g, "STFT", 17, "sig,step,win", "b");
  attr_i(g, n, "onesided", 0);
  node(g, "STFT", 17, "sig,step,win,flen", "c");
  init_scalar_i64(g, "step", 8);
  init(g, "flen", TSR_DTYPE_INT32, 0, NULL, 1, (int32_t[]){16});
  ck_assert_ok(run(g, "sig:f32[2,128,1] win:f32[16]", &v));
  expect(g, v, "a", "f32[2,15,9,2]");
  expect(g, v, "b", "f32[2,15,16,2]");
  expect(g, v, "c", "f32[2,15,9,2]");
  done(g, v);
  one_err("STFT", 17, "sig,step", "sig:f32[1,128,1] step:i64[]", TSR_STATUS_INVALID_MODEL,
          "needs a window (input 2) or a frame_length (input 3)");
  one_err("STFT", 17, "sig,step,win", "sig:f32[1,128,1] step:i64[] win:f32[16]",
          TSR_STATUS_UNSUPPORTED, "input 1 'step', which is only known at run time");
  one_err("STFT", 17, "sig,step,win", "sig:f32[1,128,2] step:i64[] win:f32[16]",
          TSR_STATUS_INVALID_MODEL, "needs a real signal");
  static const struct {
    int64_t step, len;
    const char *want;
  } bad_cases[] = {{0, 16, "frame_step is 0"},
                   {4, 200, "the frame length 200 must be 1..128"},
                   {4, 8, "does not have frame_length 8 values"}};
  for (size_t i = 0; i < 3; i++) {
    g = mk();
    node(g, "STFT", 17, "sig,step,win,flen", "y");
    init_scalar_i64(g, "step", bad_cases[i].step);
    init_scalar_i64(g, "flen", bad_cases[i].len);
    tsr_test_expect_error(
        run(g, i == 1 ? "sig:f32[1,128,1] win:f32[200]" : "sig:f32[1,128,1] win:f32[16]", &v),
        TSR_STATUS_INVALID_ARGUMENT, bad_cases[i].want);
    done(g, v);
  }
}
END_TEST

START_TEST(test_windows_mel) {
  tsr__graph *g = mk();
  node(g, "HannWindow", 17, "n", "hann");
  tsr__node *n = node(g, "HammingWindow", 17, "n", "hamming");
  attr_i(g, n, "output_datatype", TSR_DTYPE_FLOAT64);
  n = node(g, "BlackmanWindow", 17, "n", "blackman");
  attr_i(g, n, "periodic", 0);
  attr_i(g, n, "output_datatype", TSR_DTYPE_INT32);
  init(g, "n", TSR_DTYPE_INT32, 0, NULL, 1, (int32_t[]){10});
  node(g, "MelWeightMatrix", 17, "bins,dftlen,rate,lo,hi", "mel");
  init(g, "bins", TSR_DTYPE_INT32, 0, NULL, 1, (int32_t[]){8});
  init_scalar_i64(g, "dftlen", 16);
  tsr__vshape *v;
  ck_assert_ok(run(g, "rate:i32[] lo:f32[] hi:f32[]", &v));
  expect(g, v, "hann", "f32[10]");
  expect(g, v, "hamming", "f64[10]");
  expect(g, v, "blackman", "i32[10]");
  expect(g, v, "mel", "f32[9,8]");
  done(g, v);
  one_err("HannWindow", 17, "n", "n:i64[]", TSR_STATUS_UNSUPPORTED,
          "node 'HannWindow' (HannWindow): output shape depends on input 0 'n', which is only "
          "known at run time");
  one_err("HannWindow", 17, "n", "n:f32[]", TSR_STATUS_INVALID_MODEL, "must be int32 or int64");
  one_err("HannWindow", 17, "n", "n:i64[2]", TSR_STATUS_INVALID_ARGUMENT, "must be a scalar");
  g = mk();
  n = node(g, "HannWindow", 17, "n", "y");
  attr_i(g, n, "output_datatype", TSR_DTYPE_BOOL);
  init_scalar_i64(g, "n", 4);
  tsr_test_expect_error(run(g, "", &v), TSR_STATUS_INVALID_MODEL,
                        "attribute 'output_datatype' 9 is not a numeric dtype");
  done(g, v);
  g = mk();
  node(g, "HannWindow", 17, "n", "y");
  init_scalar_i64(g, "n", -1);
  tsr_test_expect_error(run(g, "", &v), TSR_STATUS_INVALID_ARGUMENT, "a window of -1 values");
  done(g, v);
  one_err("MelWeightMatrix", 17, "a,b,c,d,e", "a:i64[] b:i64[] c:i64[] d:f32[] e:f32[]",
          TSR_STATUS_UNSUPPORTED, "input 0 'a', which is only known at run time");
  one_err("MelWeightMatrix", 17, "a,b,c,d,e", "a:i64[] b:i64[] c:f32[] d:f32[] e:f32[]",
          TSR_STATUS_INVALID_MODEL, "input 2 'c' must be int32 or int64");
  g = mk();
  node(g, "MelWeightMatrix", 17, "bins,dftlen,rate,lo,hi", "mel");
  init_scalar_i64(g, "bins", 4);
  init_scalar_i64(g, "dftlen", 0);
  tsr_test_expect_error(run(g, "rate:i32[] lo:f32[] hi:f32[]", &v), TSR_STATUS_INVALID_ARGUMENT,
                        "dft_length is 0");
  done(g, v);
}
END_TEST

static Suite *shape_infer_suite(void) {
  Suite *s = suite_create("shape_infer");
  TCase *tc = tcase_create("elementwise");
  tcase_add_test(tc, test_add_broadcast);
  tcase_add_test(tc, test_broadcast_error_names_node);
  tcase_add_test(tc, test_dtype_mismatch);
  tcase_add_test(tc, test_compare_logic_bool);
  tcase_add_test(tc, test_variadic);
  tcase_add_test(tc, test_where_prelu);
  tcase_add_test(tc, test_broadcast_random);
  tcase_add_test(tc, test_broadcast_random_where);
  tcase_add_test(tc, test_unary_and_activations);
  tcase_add_test(tc, test_clip_dropout_cast);
  suite_add_tcase(s, tc);
  tc = tcase_create("compute");
  tcase_add_test(tc, test_matmul);
  tcase_add_test(tc, test_gemm);
  tcase_add_test(tc, test_einsum);
  tcase_add_test(tc, test_conv);
  tcase_add_test(tc, test_conv_transpose);
  tcase_add_test(tc, test_pool);
  tcase_add_test(tc, test_norms);
  tcase_add_test(tc, test_reduce);
  tcase_add_test(tc, test_rnn);
  tcase_add_test(tc, test_quantization);
  suite_add_tcase(s, tc);
  tc = tcase_create("shapes");
  tcase_add_test(tc, test_reshape);
  tcase_add_test(tc, test_flatten_transpose_concat);
  tcase_add_test(tc, test_split);
  tcase_add_test(tc, test_slice);
  tcase_add_test(tc, test_squeeze_unsqueeze);
  tcase_add_test(tc, test_pad_tile_expand);
  tcase_add_test(tc, test_gather_scatter);
  tcase_add_test(tc, test_data_ops);
  tcase_add_test(tc, test_nms);
  tcase_add_test(tc, test_misc_ops);
  suite_add_tcase(s, tc);
  tc = tcase_create("old_opsets");
  tcase_add_test(tc, test_old_opsets_same_rule);
  tcase_add_test(tc, test_old_opsets_broadcast);
  tcase_add_test(tc, test_old_opsets_forms);
  suite_add_tcase(s, tc);
  tc = tcase_create("detect_signal");
  tcase_add_test(tc, test_grid_sample);
  tcase_add_test(tc, test_unique);
  tcase_add_test(tc, test_roi_align_rules);
  tcase_add_test(tc, test_nms_edge_values);
  tcase_add_test(tc, test_dft_stft);
  tcase_add_test(tc, test_windows_mel);
  suite_add_tcase(s, tc);
  tc = tcase_create("driver");
  tcase_add_test(tc, test_shape_size_folded);
  tcase_add_test(tc, test_constant);
  tcase_add_test(tc, test_fold_shape_chain);
  tcase_add_test(tc, test_fold_limits);
  tcase_add_test(tc, test_if);
  tcase_add_test(tc, test_if_declared_types);
  tcase_add_test(tc, test_loop);
  tcase_add_test(tc, test_scan);
  tcase_add_test(tc, test_unknown_ops_and_opsets);
  tcase_add_test(tc, test_op_table_complete);
  tcase_add_test(tc, test_inputs_and_arity);
  tcase_add_test(tc, test_rerun_and_clear);
  tcase_add_test(tc, test_allocation_failures);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tsr_test_run_suite(shape_infer_suite()) != 0; }
