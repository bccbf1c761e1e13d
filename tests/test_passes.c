/* Unit suite for core/passes.c: each rewrite (BatchNormalization into Conv/ConvTranspose,
 * Identity and Dropout removal, MatMul + Add into Gemm) and each case that must be left
 * alone. Every model runs twice on the same random input, once as optimised and once with
 * TESSERA_NO_PASSES=1, and the results must agree; node counts show what was rewritten. The
 * graph-level cases check the IR directly (producers, freed initializers), and loading is
 * repeated with every allocation failing in turn. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/onnx_import.h"
#include "core/passes.h"
#include "tests/harness.h"
#include "tests/model_builder.h"

static tsr_runtime *rt;

static void setup(void) { ck_assert_ok(tsr_runtime_create(NULL, &rt)); }
static void teardown(void) {
  tsr_runtime_destroy(rt);
  unsetenv("TESSERA_NO_PASSES");
}

/* ---- Deterministic data ----------------------------------------------------------------- */

static uint32_t seed = 12345;

static float frand(float lo, float hi) {
  seed = seed * 1664525u + 1013904223u;
  return lo + (hi - lo) * (float)(seed >> 8) / (float)(1u << 24);
}

static float *rand_buf(size_t n, float lo, float hi) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  for (size_t i = 0; i < n; i++)
    p[i] = frand(lo, hi);
  return p;
}

static size_t prod(size_t rank, const int64_t *dims) {
  size_t n = 1;
  for (size_t i = 0; i < rank; i++)
    n *= (size_t)dims[i];
  return n;
}

static void init_rand(mb_model *m, const char *name, size_t rank, const int64_t *dims, float lo,
                      float hi) {
  float *d = rand_buf(prod(rank, dims), lo, hi);
  mb_init_f32(m, name, rank, dims, d);
  free(d);
}

/* ---- Loading with and without the passes, running, comparing ---------------------------- */

typedef struct bytes {
  void *data;
  size_t size;
} bytes;

static bytes finish(mb_model *m) {
  bytes b;
  b.data = mb_serialize(m, &b.size);
  mb_free(m);
  return b;
}

static tsr_model *load(bytes b, bool passes) {
  setenv("TESSERA_NO_PASSES", passes ? "0" : "1", 1);
  tsr_model *model = NULL;
  ck_assert_ok(tsr_model_load_memory(rt, b.data, b.size, NULL, &model));
  unsetenv("TESSERA_NO_PASSES");
  return model;
}

/* Runs `model` on one float32 input "x" and returns every graph output. */
static void run(tsr_model *model, const tsr_tensor *x, size_t n_out, tsr_tensor **outs) {
  tsr_session_options so = {sizeof so};
  so.threads = 2;
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  const char *names[] = {"x"};
  ck_assert_ok(tsr_session_run(s, NULL, 1, names, &x, n_out, NULL, outs));
  tsr_session_destroy(s);
}

static void expect_close(const tsr_tensor *got, const tsr_tensor *want, const char *what) {
  ck_assert_int_eq(tsr_tensor_dtype(got), tsr_tensor_dtype(want));
  ck_assert_uint_eq(tsr_tensor_rank(got), tsr_tensor_rank(want));
  for (size_t d = 0; d < tsr_tensor_rank(got); d++)
    ck_assert_int_eq(tsr_tensor_dims(got)[d], tsr_tensor_dims(want)[d]);
  size_t n = tsr_tensor_element_count(got);
  ck_assert_uint_eq(n, tsr_tensor_element_count(want));
  ck_assert_int_eq(tsr_tensor_dtype(got), TSR_DTYPE_FLOAT32);
  const float *a = tsr_tensor_data((tsr_tensor *)got), *b = tsr_tensor_data((tsr_tensor *)want);
  for (size_t i = 0; i < n; i++) {
    double tol = 1e-5 * fabs((double)b[i]) + 1e-5;
    ck_assert_msg(fabs((double)a[i] - (double)b[i]) <= tol,
                  "%s: element %zu is %.9g with passes, %.9g without", what, i, a[i], b[i]);
  }
}

/* Loads the model both ways, runs both on the same random x and compares every output.
 * Returns the node counts with and without the passes. */
static void compare(bytes b, size_t rank, const int64_t *dims, size_t n_out, const char *what,
                    size_t *nodes_with, size_t *nodes_without) {
  tsr_model *opt = load(b, true), *ref = load(b, false);
  ck_assert_uint_eq(tsr_model_output_count(opt), n_out);
  ck_assert_uint_eq(tsr_model_output_count(ref), n_out);
  /* The interface is the same: output names in order. */
  for (size_t i = 0; i < n_out; i++) {
    tsr_value_info a = {sizeof a}, r = {sizeof r};
    ck_assert_ok(tsr_model_output_info(opt, i, &a));
    ck_assert_ok(tsr_model_output_info(ref, i, &r));
    ck_assert_str_eq(a.name, r.name);
  }
  float *xd = rand_buf(prod(rank, dims), -2.0f, 2.0f);
  tsr_tensor *x = NULL;
  ck_assert_ok(tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, rank, dims, xd,
                                      prod(rank, dims) * sizeof(float), &x));
  free(xd);
  tsr_tensor *o1[4] = {0}, *o2[4] = {0};
  ck_assert_uint_le(n_out, 4);
  run(opt, x, n_out, o1);
  run(ref, x, n_out, o2);
  for (size_t i = 0; i < n_out; i++) {
    expect_close(o1[i], o2[i], what);
    tsr_tensor_destroy(o1[i]);
    tsr_tensor_destroy(o2[i]);
  }
  tsr_tensor_destroy(x);
  *nodes_with = tsr_model_node_count(opt);
  *nodes_without = tsr_model_node_count(ref);
  tsr_model_destroy(opt);
  tsr_model_destroy(ref);
}

/* Imports without the passes and returns the IR, for checks on the graph itself. */
static tsr__graph *import(bytes b) {
  tsr__graph *g = NULL;
  ck_assert_ok(tsr__onnx_import(NULL, b.data, b.size, NULL, &g));
  return g;
}

/* Every node output names its node as producer, and nothing else claims a producer. */
static void check_producers(const tsr__graph *g) {
  for (uint32_t v = 0; v < g->n_values; v++) {
    int32_t p = g->values[v].producer;
    if (p < 0)
      continue;
    ck_assert_int_lt(p, (int32_t)g->n_nodes);
    bool found = false;
    for (uint32_t k = 0; k < g->nodes[p].n_outputs; k++)
      found = found || g->nodes[p].outputs[k] == (int32_t)v;
    ck_assert_msg(found, "value '%s' claims node %d as producer", g->values[v].name, p);
  }
  for (uint32_t i = 0; i < g->n_nodes; i++)
    for (uint32_t k = 0; k < g->nodes[i].n_outputs; k++)
      if (g->nodes[i].outputs[k] >= 0)
        ck_assert_int_eq(g->values[g->nodes[i].outputs[k]].producer, (int32_t)i);
}

/* Imports without the passes, applies all of them (their counts into st, or not) and checks
 * the producers they left. */
static tsr__graph *import_passed(bytes b, tsr__pass_stats *st) {
  tsr__graph *g = import(b);
  ck_assert_ok(tsr__passes_apply(g, TSR__PASS_ALL, st));
  check_producers(g);
  return g;
}

static bool has_op(const tsr__graph *g, const char *op) {
  for (uint32_t i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].op_type, op) == 0)
      return true;
  return false;
}

static const tsr__tensor_data *init_of(const tsr__graph *g, const char *name) {
  int32_t v = tsr__graph_find_value(g, name);
  return v >= 0 ? g->values[v].init : NULL;
}

/* ---- BatchNormalization into Conv ------------------------------------------------------- */

typedef struct conv_case {
  int64_t opset;
  bool transpose, bias;
  int64_t c_in, c_out, group;
  bool bn_is_output; /* the BN's result is the graph output, else a Relu follows */
} conv_case;

/* x[2, c_in, 6, 5] -> Conv/ConvTranspose (3x3) -> c -> BatchNormalization -> bn [-> Relu]. */
static bytes conv_bn_model(const conv_case *k) {
  mb_model *m = mb_new(k->opset);
  int64_t xd[] = {2, k->c_in, 6, 5};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  int64_t wd[4] = {k->c_out, k->c_in / k->group, 3, 3};
  if (k->transpose) {
    wd[0] = k->c_in;
    wd[1] = k->c_out / k->group;
  }
  int64_t cd[] = {k->c_out};
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  if (k->bias)
    init_rand(m, "b", 1, cd, -0.5f, 0.5f);
  init_rand(m, "gamma", 1, cd, 0.5f, 1.5f);
  init_rand(m, "beta", 1, cd, -0.5f, 0.5f);
  init_rand(m, "mean", 1, cd, -0.3f, 0.3f);
  init_rand(m, "var", 1, cd, 0.2f, 2.0f);
  mb_node(m, k->transpose ? "ConvTranspose" : "Conv", "conv", k->bias ? "x,w,b" : "x,w", "c");
  mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  if (k->transpose)
    mb_attr_ints(m, "strides", 2, (int64_t[]){2, 2});
  if (k->group != 1)
    mb_attr_int(m, "group", k->group);
  mb_node(m, "BatchNormalization", "bn", "c,gamma,beta,mean,var", "bn");
  mb_attr_float(m, "epsilon", 1e-3f);
  if (k->bn_is_output) {
    mb_output(m, "bn", TSR_DTYPE_FLOAT32);
  } else {
    mb_node(m, "Relu", "relu", "bn", "y");
    mb_output(m, "y", TSR_DTYPE_FLOAT32);
  }
  return finish(m);
}

static void check_conv_bn(const conv_case *k, const char *what) {
  bytes b = conv_bn_model(k);
  size_t with, without;
  int64_t xd[] = {2, k->c_in, 6, 5};
  compare(b, 4, xd, 1, what, &with, &without);
  /* A Relu after a Conv (not a ConvTranspose) is fused as well. */
  bool relu_fused = !k->bn_is_output && !k->transpose;
  ck_assert_msg(with + 1 + relu_fused == without, "%s: %zu nodes with passes, %zu without", what,
                with, without);
  /* In the IR: the Conv writes the BN's output name and the BN's parameters are gone. */
  tsr__pass_stats st;
  tsr__graph *g = import_passed(b, &st);
  ck_assert_uint_eq(st.batchnorms_folded, 1);
  ck_assert_uint_eq(st.activations_fused, relu_fused);
  ck_assert(!has_op(g, "BatchNormalization"));
  int32_t bn = tsr__graph_find_value(g, relu_fused ? "y" : "bn");
  ck_assert_int_ge(g->values[bn].producer, 0);
  const tsr__node *conv = &g->nodes[g->values[bn].producer];
  ck_assert_str_eq(conv->op_type, k->transpose ? "ConvTranspose" : "Conv");
  ck_assert_uint_eq(conv->n_inputs, 3);
  ck_assert_ptr_nonnull(g->values[conv->inputs[2]].init);
  ck_assert_ptr_null(init_of(g, "gamma"));
  ck_assert_ptr_null(init_of(g, "var"));
  ck_assert_uint_eq(st.initializers_freed, 4);
  tsr__graph_destroy(g);
  free(b.data);
}

START_TEST(conv_bn_with_bias) {
  conv_case k = {13, false, true, 4, 6, 1, false};
  check_conv_bn(&k, "Conv+BN with bias");
}
END_TEST

START_TEST(conv_bn_without_bias) {
  conv_case k = {13, false, false, 4, 6, 1, true};
  check_conv_bn(&k, "Conv+BN without bias, BN output is the graph output");
}
END_TEST

START_TEST(conv_bn_groups_and_depthwise) {
  conv_case grouped = {13, false, true, 4, 6, 2, false};
  check_conv_bn(&grouped, "grouped Conv+BN");
  conv_case depthwise = {11, false, false, 5, 5, 5, false};
  check_conv_bn(&depthwise, "depthwise Conv+BN");
  conv_case opset15 = {15, false, true, 3, 4, 1, true};
  check_conv_bn(&opset15, "Conv+BN at opset 15");
}
END_TEST

START_TEST(conv_transpose_bn) {
  conv_case plain = {13, true, true, 4, 6, 1, false};
  check_conv_bn(&plain, "ConvTranspose+BN");
  conv_case grouped = {13, true, false, 4, 6, 2, true};
  check_conv_bn(&grouped, "grouped ConvTranspose+BN without bias");
}
END_TEST

/* Two Convs share one weight: the folded Conv gets a new weight, the other keeps the old. */
START_TEST(conv_bn_shared_weight) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {1, 3, 5, 5}, wd[] = {3, 3, 3, 3}, cd[] = {3};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  init_rand(m, "b", 1, cd, -0.5f, 0.5f);
  init_rand(m, "gamma", 1, cd, 0.5f, 1.5f);
  init_rand(m, "beta", 1, cd, -0.5f, 0.5f);
  init_rand(m, "mean", 1, cd, -0.3f, 0.3f);
  init_rand(m, "var", 1, cd, 0.2f, 2.0f);
  mb_node(m, "Conv", "conv1", "x,w,b", "c1");
  mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  mb_node(m, "BatchNormalization", "bn", "c1,gamma,beta,mean,var", "n1");
  mb_node(m, "Conv", "conv2", "n1,w,b", "y");
  mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  bytes b = finish(m);
  size_t with, without;
  compare(b, 4, xd, 1, "shared weight", &with, &without);
  ck_assert_uint_eq(with, 2);
  ck_assert_uint_eq(without, 3);
  tsr__graph *g = import_passed(b, NULL);
  int32_t w = tsr__graph_find_value(g, "w"), bv = tsr__graph_find_value(g, "b");
  ck_assert_ptr_nonnull(g->values[w].init);
  ck_assert_ptr_nonnull(g->values[bv].init);
  const tsr__node *c1 = &g->nodes[g->values[tsr__graph_find_value(g, "n1")].producer];
  const tsr__node *c2 = &g->nodes[g->values[tsr__graph_find_value(g, "y")].producer];
  ck_assert_str_eq(c1->name, "conv1");
  ck_assert_int_ne(c1->inputs[1], w);
  ck_assert_int_ne(c1->inputs[2], bv);
  ck_assert_int_eq(c2->inputs[1], w);
  ck_assert_int_eq(c2->inputs[2], bv);
  tsr__graph_destroy(g);
  free(b.data);
}
END_TEST

/* Conv -> c (also a graph output) -> BN: folding would change the output c. */
START_TEST(bn_input_is_graph_output) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {2, 3, 6, 5}, wd[] = {4, 3, 3, 3}, cd[] = {4};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  init_rand(m, "gamma", 1, cd, 0.5f, 1.5f);
  init_rand(m, "beta", 1, cd, -0.5f, 0.5f);
  init_rand(m, "mean", 1, cd, -0.3f, 0.3f);
  init_rand(m, "var", 1, cd, 0.2f, 2.0f);
  mb_node(m, "Conv", "conv", "x,w", "c");
  mb_node(m, "BatchNormalization", "bn", "c,gamma,beta,mean,var", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  mb_output(m, "c", TSR_DTYPE_FLOAT32);
  bytes b = finish(m);
  size_t with, without;
  compare(b, 4, xd, 2, "BN input is a graph output", &with, &without);
  ck_assert_uint_eq(with, 2);
  ck_assert_uint_eq(without, 2);
  free(b.data);
}
END_TEST

/* Conv -> c -> {BN, Relu}: the Relu needs c unscaled. And a BN whose scale is computed by a
 * node rather than given as an initializer. Both stay. */
START_TEST(conv_with_two_readers_or_no_constants) {
  int64_t xd[] = {2, 3, 6, 5}, wd[] = {4, 3, 3, 3}, cd[] = {4};
  mb_model *m = mb_new(15);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  init_rand(m, "gamma", 1, cd, 0.5f, 1.5f);
  init_rand(m, "beta", 1, cd, -0.5f, 0.5f);
  init_rand(m, "mean", 1, cd, -0.3f, 0.3f);
  init_rand(m, "var", 1, cd, 0.2f, 2.0f);
  mb_node(m, "Conv", "conv", "x,w", "c");
  mb_node(m, "BatchNormalization", "bn", "c,gamma,beta,mean,var", "y1");
  mb_node(m, "Relu", "relu", "c", "y2");
  mb_output(m, "y1", TSR_DTYPE_FLOAT32);
  mb_output(m, "y2", TSR_DTYPE_FLOAT32);
  bytes b = finish(m);
  size_t with, without;
  compare(b, 4, xd, 2, "Conv with two readers", &with, &without);
  ck_assert_uint_eq(with, 3);
  ck_assert_uint_eq(without, 3);
  free(b.data);

  /* The BN's scale is computed (Abs of a constant is folded only at plan time). */
  m = mb_new(15);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  init_rand(m, "g0", 1, cd, -1.5f, 1.5f);
  init_rand(m, "beta", 1, cd, -0.5f, 0.5f);
  init_rand(m, "mean", 1, cd, -0.3f, 0.3f);
  init_rand(m, "var", 1, cd, 0.2f, 2.0f);
  mb_node(m, "Abs", "abs", "g0", "gamma");
  mb_node(m, "Conv", "conv", "x,w", "c");
  mb_node(m, "BatchNormalization", "bn", "c,gamma,beta,mean,var", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  b = finish(m);
  compare(b, 4, xd, 1, "BN with a computed scale", &with, &without);
  ck_assert_uint_eq(with, 3);
  ck_assert_uint_eq(without, 3);
  free(b.data);
}
END_TEST

/* ---- Identity and Dropout ---------------------------------------------------------------- */

/* x -> Identity -> a -> Identity -> b -> Relu -> c -> Identity -> d -> Identity -> y (output),
 * plus x -> Identity -> y2 (output; kept: both ends are graph interface), and an Identity of
 * a weight. Five of the seven nodes go. */
START_TEST(identity_chains) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {3, 4}, wd[] = {4};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, xd);
  init_rand(m, "w", 1, wd, -1.0f, 1.0f);
  mb_node(m, "Identity", "i1", "x", "a");
  mb_node(m, "Identity", "i2", "a", "b");
  mb_node(m, "Identity", "iw", "w", "wi");
  mb_node(m, "Add", "add", "b,wi", "c");
  mb_node(m, "Identity", "i3", "c", "d");
  mb_node(m, "Identity", "i4", "d", "y");
  mb_node(m, "Identity", "i5", "x", "y2");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  mb_output(m, "y2", TSR_DTYPE_FLOAT32);
  bytes b = finish(m);
  size_t with, without;
  compare(b, 2, xd, 2, "Identity chains", &with, &without);
  ck_assert_uint_eq(without, 7);
  ck_assert_uint_eq(with, 2);
  tsr__pass_stats st;
  tsr__graph *g = import_passed(b, &st);
  ck_assert_uint_eq(st.identities_removed, 5);
  const tsr__node *add = &g->nodes[g->values[tsr__graph_find_value(g, "y")].producer];
  ck_assert_str_eq(add->op_type, "Add");
  ck_assert_int_eq(add->inputs[0], tsr__graph_find_value(g, "x"));
  ck_assert_int_eq(add->inputs[1], tsr__graph_find_value(g, "w"));
  ck_assert_str_eq(g->nodes[g->values[tsr__graph_find_value(g, "y2")].producer].name, "i5");
  tsr__graph_destroy(g);
  free(b.data);
}
END_TEST

/* Relu -> r -> Identity -> y1 (output) and r -> Identity -> y2 (output): the first moves
 * onto the Relu, the second must stay (its input is then an output itself). */
START_TEST(identity_between_outputs) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {2, 5};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, xd);
  mb_node(m, "Relu", "relu", "x", "r");
  mb_node(m, "Identity", "i1", "r", "y1");
  mb_node(m, "Identity", "i2", "r", "y2");
  mb_output(m, "y1", TSR_DTYPE_FLOAT32);
  mb_output(m, "y2", TSR_DTYPE_FLOAT32);
  bytes b = finish(m);
  size_t with, without;
  compare(b, 2, xd, 2, "Identity between outputs", &with, &without);
  ck_assert_uint_eq(without, 3);
  ck_assert_uint_eq(with, 2);
  free(b.data);

  /* r -> Identity -> z goes first (its readers are redirected to r), then r -> Identity ->
   * y1 (output) renames r to y1: the Neg that read z must end up reading y1. */
  m = mb_new(13);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, xd);
  mb_node(m, "Relu", "relu", "x", "r");
  mb_node(m, "Identity", "iz", "r", "z");
  mb_node(m, "Identity", "i1", "r", "y1");
  mb_node(m, "Neg", "neg", "z", "y2");
  mb_output(m, "y1", TSR_DTYPE_FLOAT32);
  mb_output(m, "y2", TSR_DTYPE_FLOAT32);
  b = finish(m);
  compare(b, 2, xd, 2, "Identity aliases then renamed", &with, &without);
  ck_assert_uint_eq(without, 4);
  ck_assert_uint_eq(with, 2);
  tsr__graph *g = import_passed(b, NULL);
  const tsr__node *neg = &g->nodes[g->values[tsr__graph_find_value(g, "y2")].producer];
  ck_assert_int_eq(neg->inputs[0], tsr__graph_find_value(g, "y1"));
  ck_assert_str_eq(g->nodes[g->values[tsr__graph_find_value(g, "y1")].producer].name, "relu");
  tsr__graph_destroy(g);
  free(b.data);
}
END_TEST

/* Dropout in inference: removed when the mask is unread; kept when the mask is an output. */
START_TEST(dropout_unused_mask) {
  static const int64_t opsets[] = {7, 10, 13};
  for (size_t i = 0; i < sizeof opsets / sizeof opsets[0]; i++) {
    mb_model *m = mb_new(opsets[i]);
    int64_t xd[] = {3, 4}, one[] = {1};
    mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, xd);
    mb_node(m, "Relu", "relu", "x", "r");
    if (opsets[i] >= 12) {
      mb_init_f32(m, "ratio", 0, one, (float[]){0.25f});
      mb_node(m, "Dropout", "drop", "r,ratio", "d,mask");
    } else {
      mb_node(m, "Dropout", "drop", "r", "d,mask");
      mb_attr_float(m, "ratio", 0.25f);
    }
    mb_node(m, "Neg", "neg", "d", "y");
    mb_node(m, "Dropout", "drop_out", "x", "y2"); /* graph input to output: kept */
    mb_output(m, "y", TSR_DTYPE_FLOAT32);
    mb_output(m, "y2", TSR_DTYPE_FLOAT32);
    bytes b = finish(m);
    size_t with, without;
    char what[64];
    snprintf(what, sizeof what, "Dropout at opset %lld", (long long)opsets[i]);
    compare(b, 2, xd, 2, what, &with, &without);
    ck_assert_uint_eq(without, 4);
    ck_assert_uint_eq(with, 3);
    free(b.data);
  }
  /* The mask is read: the Dropout stays. */
  mb_model *m = mb_new(13);
  int64_t xd[] = {3, 4};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, xd);
  mb_node(m, "Relu", "relu", "x", "r");
  mb_node(m, "Dropout", "drop", "r", "d,mask");
  mb_node(m, "Neg", "neg", "d", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  mb_output(m, "mask", TSR_DTYPE_BOOL);
  bytes b = finish(m);
  tsr_model *opt = load(b, true);
  ck_assert_uint_eq(tsr_model_node_count(opt), 3);
  tsr_model_destroy(opt);
  free(b.data);
}
END_TEST

/* A value that a subgraph reads by name is neither renamed nor removed. */
START_TEST(identity_read_by_subgraph_stays) {
  tsr__graph *g = NULL;
  ck_assert_ok(tsr__graph_create(NULL, &g));
  const char *spec[][4] = {{"ident", "Identity", "x", "a"}, {"the_if", "If", "cond", "y"}};
  for (int i = 0; i < 2; i++) {
    tsr__node *n;
    ck_assert_ok(tsr__graph_add_node(g, &n, NULL));
    n->name = tsr__strdup(g->alloc, spec[i][0]);
    n->op_type = tsr__strdup(g->alloc, spec[i][1]);
    n->domain = tsr__strdup(g->alloc, "");
    n->opset = 13;
    n->inputs = tsr__calloc(g->alloc, 1, sizeof *n->inputs);
    n->outputs = tsr__calloc(g->alloc, 1, sizeof *n->outputs);
    n->n_inputs = n->n_outputs = 1;
    int32_t in, out;
    ck_assert_ok(tsr__graph_intern_value(g, spec[i][2], &in));
    ck_assert_ok(tsr__graph_intern_value(g, spec[i][3], &out));
    g->nodes[i].inputs[0] = in;
    g->nodes[i].outputs[0] = out;
  }
  g->inputs = tsr__calloc(g->alloc, 2, sizeof *g->inputs);
  g->inputs[0] = tsr__graph_find_value(g, "x");
  g->inputs[1] = tsr__graph_find_value(g, "cond");
  g->n_inputs = 2;
  g->outputs = tsr__calloc(g->alloc, 1, sizeof *g->outputs);
  g->outputs[0] = tsr__graph_find_value(g, "y");
  g->n_outputs = 1;
  /* then_branch: Neg(a) -> o, reading "a" from the outer graph. */
  tsr__graph *sub = NULL;
  ck_assert_ok(tsr__graph_create(NULL, &sub));
  tsr__node *neg;
  ck_assert_ok(tsr__graph_add_node(sub, &neg, NULL));
  neg->name = tsr__strdup(sub->alloc, "neg");
  neg->op_type = tsr__strdup(sub->alloc, "Neg");
  neg->domain = tsr__strdup(sub->alloc, "");
  neg->inputs = tsr__calloc(sub->alloc, 1, sizeof *neg->inputs);
  neg->outputs = tsr__calloc(sub->alloc, 1, sizeof *neg->outputs);
  neg->n_inputs = neg->n_outputs = 1;
  int32_t a, o;
  ck_assert_ok(tsr__graph_intern_value(sub, "a", &a));
  ck_assert_ok(tsr__graph_intern_value(sub, "o", &o));
  sub->nodes[0].inputs[0] = a;
  sub->nodes[0].outputs[0] = o;
  sub->outputs = tsr__calloc(sub->alloc, 1, sizeof *sub->outputs);
  sub->outputs[0] = o;
  sub->n_outputs = 1;
  tsr__node *ifn = &g->nodes[1];
  ifn->attrs = tsr__calloc(g->alloc, 1, sizeof *ifn->attrs);
  ifn->n_attrs = 1;
  ifn->attrs[0].name = tsr__strdup(g->alloc, "then_branch");
  ifn->attrs[0].type = 5; /* GRAPH */
  ifn->attrs[0].g = sub;
  ck_assert_ok(tsr__graph_finalize(g));
  tsr__pass_stats st;
  ck_assert_ok(tsr__passes_apply(g, TSR__PASS_ALL, &st));
  ck_assert_uint_eq(st.identities_removed, 0);
  ck_assert_uint_eq(g->n_nodes, 2);
  check_producers(g);
  tsr__graph_destroy(g);
}
END_TEST

/* ---- MatMul + Add into Gemm -------------------------------------------------------------- */

static bytes matmul_add_model(size_t rank, const int64_t *xd, bool bias_first, bool flatten,
                              size_t bias_rank) {
  mb_model *m = mb_new(13);
  int64_t k = xd[rank - 1], bd[] = {8, 5};
  if (flatten)
    k = (int64_t)prod(rank - 1, xd + 1);
  bd[0] = k;
  mb_input(m, "x", TSR_DTYPE_FLOAT32, rank, xd);
  init_rand(m, "w", 2, bd, -1.0f, 1.0f);
  int64_t cd[] = {1, 5};
  init_rand(m, "bias", bias_rank, bias_rank == 2 ? cd : cd + 1, -1.0f, 1.0f);
  if (flatten)
    mb_node(m, "Flatten", "flat", "x", "f");
  mb_node(m, "MatMul", "mm", flatten ? "f,w" : "x,w", "h");
  mb_node(m, "Add", "add", bias_first ? "bias,h" : "h,bias", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return finish(m);
}

START_TEST(matmul_add_becomes_gemm) {
  int64_t xd[] = {3, 8};
  for (int order = 0; order < 2; order++) {
    for (size_t bias_rank = 1; bias_rank <= 2; bias_rank++) {
      bytes b = matmul_add_model(2, xd, order, false, bias_rank);
      size_t with, without;
      compare(b, 2, xd, 1, "MatMul+Add", &with, &without);
      ck_assert_uint_eq(without, 2);
      ck_assert_uint_eq(with, 1);
      tsr__pass_stats st;
      tsr__graph *g = import_passed(b, &st);
      ck_assert_uint_eq(st.gemms_fused, 1);
      ck_assert_str_eq(g->nodes[0].op_type, "Gemm");
      ck_assert_str_eq(g->values[g->nodes[0].outputs[0]].name, "y");
      tsr__graph_destroy(g);
      free(b.data);
    }
  }
  /* After a Flatten, A is a matrix whatever the input's rank. */
  int64_t x4[] = {2, 2, 2, 2};
  bytes b = matmul_add_model(4, x4, false, true, 1);
  size_t with, without;
  compare(b, 4, x4, 1, "Flatten+MatMul+Add", &with, &without);
  ck_assert_uint_eq(without, 3);
  ck_assert_uint_eq(with, 2);
  free(b.data);
}
END_TEST

/* A of rank 3 (batched MatMul) is not a Gemm. */
START_TEST(batched_matmul_stays) {
  int64_t xd[] = {2, 3, 8};
  bytes b = matmul_add_model(3, xd, false, false, 1);
  size_t with, without;
  compare(b, 3, xd, 1, "batched MatMul+Add", &with, &without);
  ck_assert_uint_eq(with, 2);
  ck_assert_uint_eq(without, 2);
  free(b.data);
}
END_TEST

/* ---- Activations into Conv and Gemm ------------------------------------------------------ */

/* The node that writes value `name` after the passes, with its fused activation checked. */
static void expect_fused(bytes b, const char *out, const char *op, const char *act, size_t n_params,
                         const float *params) {
  tsr__pass_stats st;
  tsr__graph *g = import_passed(b, &st);
  int32_t v = tsr__graph_find_value(g, out);
  ck_assert_int_ge(v, 0);
  ck_assert_int_ge(g->values[v].producer, 0);
  const tsr__node *n = &g->nodes[g->values[v].producer];
  ck_assert_str_eq(n->op_type, op);
  if (!act) {
    ck_assert_uint_eq(st.activations_fused, 0);
    ck_assert_ptr_null(tsr__node_attr(n, "tessera.activation"));
  } else {
    ck_assert_uint_eq(st.activations_fused, 1);
    ck_assert_str_eq(tsr__node_attr_string(n, "tessera.activation", ""), act);
    const tsr__attr *p = tsr__node_attr(n, "tessera.activation_params");
    if (!n_params) {
      ck_assert_ptr_null(p);
    } else {
      ck_assert_ptr_nonnull(p);
      ck_assert_int_eq(p->type, 6);
      ck_assert_uint_eq(p->count, n_params);
      for (size_t i = 0; i < n_params; i++)
        ck_assert_float_eq(p->floats[i], params[i]);
    }
  }
  tsr__graph_destroy(g);
}

typedef struct act_case {
  const char *op; /* the activation node */
  int64_t opset;
  const char *inputs; /* beyond "c": ",lo,hi" for Clip */
  const char *act;    /* expected tessera.activation */
  size_t n_params;
  float params[2];
} act_case;

/* x[2, c_in, 9, 7] -> Conv (kernel k, group) -> c -> activation -> y, with constant bounds
 * lo = -0.25 and hi = 0.5 for Clip. */
static bytes conv_act_model(const act_case *a, int64_t c_in, int64_t c_out, int64_t group,
                            int64_t k, bool bias) {
  mb_model *m = mb_new(a->opset);
  int64_t xd[] = {2, c_in, 9, 7}, wd[] = {c_out, c_in / group, k, k}, cd[] = {c_out};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  if (bias)
    init_rand(m, "b", 1, cd, -0.5f, 0.5f);
  mb_init_f32(m, "lo", 0, NULL, (float[]){-0.25f});
  mb_init_f32(m, "hi", 0, NULL, (float[]){0.5f});
  mb_node(m, "Conv", "conv", bias ? "x,w,b" : "x,w", "c");
  if (k > 1)
    mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  if (group != 1)
    mb_attr_int(m, "group", group);
  char in[64];
  snprintf(in, sizeof in, "c%s", a->inputs);
  mb_node(m, a->op, "act", in, "y");
  if (strcmp(a->op, "Clip") == 0 && a->opset < 11) {
    mb_attr_float(m, "min", a->params[0]);
    mb_attr_float(m, "max", a->params[1]);
  } else if (strcmp(a->op, "LeakyRelu") == 0) {
    mb_attr_float(m, "alpha", a->params[0]);
  } else if (strcmp(a->op, "HardSigmoid") == 0) {
    mb_attr_float(m, "alpha", a->params[0]);
    mb_attr_float(m, "beta", a->params[1]);
  }
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return finish(m);
}

static const act_case act_cases[] = {
    {"Relu", 13, "", "relu", 0, {0}},
    {"Clip", 13, ",lo,hi", "clip", 2, {-0.25f, 0.5f}},
    {"Clip", 13, ",,hi", "clip", 2, {-INFINITY, 0.5f}},
    {"Clip", 10, "", "clip", 2, {0.0f, 6.0f}},
    {"LeakyRelu", 13, "", "leakyrelu", 1, {0.1f}},
    {"HardSigmoid", 13, "", "hardsigmoid", 2, {0.3f, 0.4f}},
    {"HardSwish", 14, "", "hardswish", 0, {0}},
};

/* Every activation after the three float32 Conv paths: im2col (3x3), pointwise (1x1 GEMM)
 * and depthwise (direct), with and without a bias. */
START_TEST(conv_activation_fused) {
  int64_t shapes[][4] = {{3, 20, 1, 3}, {8, 13, 1, 1}, {6, 6, 6, 3}}; /* c_in, c_out, group, k */
  for (size_t i = 0; i < sizeof act_cases / sizeof act_cases[0]; i++) {
    const act_case *a = &act_cases[i];
    for (size_t s = 0; s < 3; s++) {
      for (int bias = 0; bias < 2; bias++) {
        char what[128];
        snprintf(what, sizeof what, "Conv (%s, shape %zu, bias %d) + %s opset %lld", a->inputs, s,
                 bias, a->op, (long long)a->opset);
        bytes b = conv_act_model(a, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], bias);
        size_t with, without;
        int64_t xd[] = {2, shapes[s][0], 9, 7};
        compare(b, 4, xd, 1, what, &with, &without);
        ck_assert_msg(with == 1 && without == 2, "%s: %zu nodes with passes, %zu without", what,
                      with, without);
        expect_fused(b, "y", "Conv", a->act, a->n_params, a->params);
        free(b.data);
      }
    }
  }
}
END_TEST

/* x[5, 40] -> Gemm (B constant, transB, 1-D bias) -> Relu; and MatMul + Add + Clip, which
 * becomes one Gemm with the clip fused. */
START_TEST(gemm_activation_fused) {
  int64_t xd[] = {5, 40}, wd[] = {24, 40}, bd[] = {24}, w2d[] = {40, 24};
  mb_model *m = mb_new(13);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, xd);
  init_rand(m, "w", 2, wd, -0.5f, 0.5f);
  init_rand(m, "bias", 1, bd, -0.5f, 0.5f);
  mb_node(m, "Gemm", "fc", "x,w,bias", "h");
  mb_attr_int(m, "transB", 1);
  mb_attr_float(m, "beta", 0.5f);
  mb_node(m, "Relu", "relu", "h", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  bytes b = finish(m);
  size_t with, without;
  compare(b, 2, xd, 1, "Gemm+Relu", &with, &without);
  ck_assert_uint_eq(with, 1);
  ck_assert_uint_eq(without, 2);
  expect_fused(b, "y", "Gemm", "relu", 0, NULL);
  free(b.data);

  m = mb_new(13);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, xd);
  init_rand(m, "w", 2, w2d, -0.5f, 0.5f);
  init_rand(m, "bias", 1, bd, -0.5f, 0.5f);
  mb_init_f32(m, "lo", 0, NULL, (float[]){-0.5f});
  mb_init_f32(m, "hi", 0, NULL, (float[]){0.75f});
  mb_node(m, "MatMul", "mm", "x,w", "h");
  mb_node(m, "Add", "add", "h,bias", "a");
  mb_node(m, "Clip", "clip", "a,lo,hi", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  b = finish(m);
  compare(b, 2, xd, 1, "MatMul+Add+Clip", &with, &without);
  ck_assert_uint_eq(with, 1);
  ck_assert_uint_eq(without, 3);
  expect_fused(b, "y", "Gemm", "clip", 2, (float[]){-0.5f, 0.75f});
  free(b.data);
}
END_TEST

/* ---- Smooth activations: Sigmoid, SiLU, GELU ------------------------------------------- */

/* x[2, c_in, 9, 7] -> Conv (kernel k, group) -> c -> Sigmoid -> s [-> Mul(c, s) -> y]: SiLU
 * when `silu`, the Mul's inputs swapped when `swap`. */
static bytes conv_silu_model(int64_t c_in, int64_t c_out, int64_t group, int64_t k, bool silu,
                             bool swap) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {2, c_in, 9, 7}, wd[] = {c_out, c_in / group, k, k}, cd[] = {c_out};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  init_rand(m, "b", 1, cd, -0.5f, 0.5f);
  mb_node(m, "Conv", "conv", "x,w,b", "c");
  if (k > 1)
    mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  if (group != 1)
    mb_attr_int(m, "group", group);
  mb_node(m, "Sigmoid", "sig", "c", silu ? "s" : "y");
  if (silu)
    mb_node(m, "Mul", "mul", swap ? "s,c" : "c,s", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return finish(m);
}

/* Sigmoid and SiLU are fused into the GEMM-based Conv paths (3x3 im2col, 1x1) and into
 * depthwise Conv, whose kernels apply them in vectors on plane borders too. */
START_TEST(conv_sigmoid_silu_fused) {
  int64_t shapes[][4] = {{3, 20, 1, 3}, {8, 37, 1, 1}, {6, 6, 6, 3}}; /* c_in, c_out, group, k */
  for (size_t sh = 0; sh < 3; sh++) {
    for (int kind = 0; kind < 3; kind++) { /* sigmoid, silu, silu with the Mul swapped */
      char what[96];
      snprintf(what, sizeof what, "Conv shape %zu + %s", sh,
               kind == 0   ? "Sigmoid"
               : kind == 1 ? "SiLU"
                           : "SiLU (swapped)");
      bytes b = conv_silu_model(shapes[sh][0], shapes[sh][1], shapes[sh][2], shapes[sh][3],
                                kind > 0, kind == 2);
      size_t with, without;
      int64_t xd[] = {2, shapes[sh][0], 9, 7};
      compare(b, 4, xd, 1, what, &with, &without);
      ck_assert_uint_eq(without, kind ? 3 : 2);
      ck_assert_msg(with == 1, "%s: %zu nodes with passes", what, with);
      expect_fused(b, "y", "Conv", kind ? "silu" : "sigmoid", 0, NULL);
      free(b.data);
    }
  }
}
END_TEST

/* SiLU stays written out when the Sigmoid's result or the Conv's is read elsewhere. */
START_TEST(silu_not_fused) {
  for (int variant = 0; variant < 2; variant++) {
    mb_model *m = mb_new(13);
    int64_t xd[] = {1, 4, 5, 5}, wd[] = {6, 4, 1, 1};
    mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
    init_rand(m, "w", 4, wd, -0.5f, 0.5f);
    mb_node(m, "Conv", "conv", "x,w", "c");
    mb_node(m, "Sigmoid", "sig", "c", "s");
    mb_node(m, "Mul", "mul", "c,s", "y");
    mb_output(m, "y", TSR_DTYPE_FLOAT32);
    mb_output(m, variant ? "c" : "s", TSR_DTYPE_FLOAT32);
    bytes b = finish(m);
    size_t with, without;
    compare(b, 4, xd, 2, "SiLU with a second reader", &with, &without);
    ck_assert_uint_eq(with, 3);
    ck_assert_uint_eq(without, 3);
    free(b.data);
  }
}
END_TEST

/* How the GELU of gelu_model is written out. */
typedef enum gelu_form {
  GELU_TORCH,      /* (x * (erf + 1)) * 0.5, x / sqrt 2 by Div: torch's export */
  GELU_HALF_FIRST, /* (x * 0.5) * (1 + erf), x * (1 / sqrt 2) by Mul */
  GELU_HALF_INNER, /* x * ((1 + erf) * 0.5) */
  GELU_WRONG_HALF, /* 0.4 instead of 0.5: not GELU */
  GELU_ERF_OUTPUT, /* the Erf's result is also a graph output */
} gelu_form;

/* x[rank dims] -> MatMul (constant [16, 24]) -> Add bias -> h -> GELU written out -> y. */
static bytes gelu_model(size_t rank, const int64_t *xd, gelu_form form) {
  mb_model *m = mb_new(13);
  mb_input(m, "x", TSR_DTYPE_FLOAT32, rank, xd);
  int64_t wd[] = {16, 24}, bd[] = {24};
  init_rand(m, "w", 2, wd, -0.5f, 0.5f);
  init_rand(m, "bias", 1, bd, -0.5f, 0.5f);
  mb_init_f32(m, "sqrt2", 0, NULL, (float[]){1.4142135f});
  mb_init_f32(m, "rsqrt2", 0, NULL, (float[]){0.70710678f});
  mb_init_f32(m, "one", 0, NULL, (float[]){1.0f});
  mb_init_f32(m, "half", 0, NULL, (float[]){form == GELU_WRONG_HALF ? 0.4f : 0.5f});
  mb_node(m, "MatMul", "mm", "x,w", "p");
  mb_node(m, "Add", "add", "bias,p", "h");
  if (form == GELU_HALF_FIRST)
    mb_node(m, "Mul", "scale", "h,rsqrt2", "u");
  else
    mb_node(m, "Div", "scale", "h,sqrt2", "u");
  mb_node(m, "Erf", "erf", "u", "e");
  mb_node(m, "Add", "plus", form == GELU_HALF_FIRST ? "one,e" : "e,one", "e1");
  switch (form) {
  case GELU_HALF_FIRST:
    mb_node(m, "Mul", "m1", "h,half", "t");
    mb_node(m, "Mul", "m2", "t,e1", "y");
    break;
  case GELU_HALF_INNER:
    mb_node(m, "Mul", "m1", "e1,half", "t");
    mb_node(m, "Mul", "m2", "h,t", "y");
    break;
  default: {
    mb_node(m, "Mul", "m1", "h,e1", "t");
    mb_node(m, "Mul", "m2", "t,half", "y");
  }
  }
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  if (form == GELU_ERF_OUTPUT)
    mb_output(m, "e", TSR_DTYPE_FLOAT32);
  return finish(m);
}

/* GELU after a batched MatMul + Add becomes one Gelu node; after a MatMul + Add that becomes a
 * Gemm (x a matrix) it is fused into the Gemm. Forms that are not GELU, or whose intermediate
 * results are read elsewhere, stay. */
START_TEST(gelu_written_out) {
  int64_t x3[] = {2, 5, 16}, x2[] = {7, 16};
  for (int form = GELU_TORCH; form <= GELU_ERF_OUTPUT; form++) {
    bool fused = form != GELU_WRONG_HALF && form != GELU_ERF_OUTPUT;
    size_t n_out = form == GELU_ERF_OUTPUT ? 2 : 1;
    char what[64];
    snprintf(what, sizeof what, "batched MatMul + GELU form %d", form);
    bytes b = gelu_model(3, x3, (gelu_form)form);
    size_t with, without;
    compare(b, 3, x3, n_out, what, &with, &without);
    ck_assert_uint_eq(without, 7);
    ck_assert_msg(with == (fused ? 3 : 7), "%s: %zu nodes with passes", what, with);
    tsr__pass_stats st;
    tsr__graph *g = import_passed(b, &st);
    ck_assert_uint_eq(st.gelus_fused, fused);
    if (fused) {
      const tsr__node *n = &g->nodes[g->values[tsr__graph_find_value(g, "y")].producer];
      ck_assert_str_eq(n->op_type, "Gelu");
      ck_assert_int_eq(n->opset, 20);
      ck_assert_uint_eq(n->n_inputs, 1);
      ck_assert_int_eq(n->inputs[0], tsr__graph_find_value(g, "h"));
    }
    tsr__graph_destroy(g);
    free(b.data);

    snprintf(what, sizeof what, "MatMul (matrix) + GELU form %d", form);
    b = gelu_model(2, x2, (gelu_form)form);
    compare(b, 2, x2, n_out, what, &with, &without);
    ck_assert_msg(with == (fused ? 1 : 6), "%s: %zu nodes with passes", what, with); /* Gemm */
    if (fused)
      expect_fused(b, "y", "Gemm", "gelu", 0, NULL);
    free(b.data);
  }
}
END_TEST

/* x[2, 5, 16] -> MatMul + Add bias -> h -> GELU's tanh form written out as torch exports
 * gelu(approximate="tanh") (cube as h * (h * h)) or as Hugging Face's gelu_new (Pow 3, the
 * 0.5 first) -> y. */
static bytes gelu_tanh_model(bool hf, bool cube_output) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {2, 5, 16}, wd[] = {16, 24}, bd[] = {24};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 3, xd);
  init_rand(m, "w", 2, wd, -0.5f, 0.5f);
  init_rand(m, "bias", 1, bd, -0.5f, 0.5f);
  mb_init_f32(m, "c", 0, NULL, (float[]){0.7978845608f});
  mb_init_f32(m, "k", 0, NULL, (float[]){0.044715f});
  mb_init_f32(m, "three", 0, NULL, (float[]){3.0f});
  mb_init_f32(m, "one", 0, NULL, (float[]){1.0f});
  mb_init_f32(m, "half", 0, NULL, (float[]){0.5f});
  mb_node(m, "MatMul", "mm", "x,w", "p");
  mb_node(m, "Add", "add", "bias,p", "h");
  if (hf) {
    mb_node(m, "Mul", "h_half", "h,half", "t");
    mb_node(m, "Pow", "cube", "h,three", "h3");
  } else {
    mb_node(m, "Mul", "sq", "h,h", "h2");
    mb_node(m, "Mul", "cube", "h,h2", "h3");
  }
  mb_node(m, "Mul", "kh3", hf ? "h3,k" : "k,h3", "kh3");
  mb_node(m, "Add", "inner", "h,kh3", "w1");
  mb_node(m, "Mul", "scale", hf ? "w1,c" : "c,w1", "u");
  mb_node(m, "Tanh", "tanh", "u", "e");
  mb_node(m, "Add", "plus", hf ? "e,one" : "one,e", "e1");
  if (hf) {
    mb_node(m, "Mul", "out", "t,e1", "y");
  } else {
    mb_node(m, "Mul", "m1", "h,e1", "t");
    mb_node(m, "Mul", "out", "half,t", "y");
  }
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  if (cube_output)
    mb_output(m, "h3", TSR_DTYPE_FLOAT32);
  return finish(m);
}

START_TEST(gelu_tanh_written_out) {
  int64_t xd[] = {2, 5, 16};
  for (int variant = 0; variant < 3; variant++) {
    bool hf = variant == 1, cube_output = variant == 2;
    bytes b = gelu_tanh_model(hf, cube_output);
    size_t with, without;
    char what[64];
    snprintf(what, sizeof what, "GELU tanh form, variant %d", variant);
    compare(b, 3, xd, cube_output ? 2 : 1, what, &with, &without);
    ck_assert_uint_eq(without, (hf ? 10 : 11));
    ck_assert_msg(with == (cube_output ? without : 3), "%s: %zu nodes with passes", what, with);
    if (!cube_output) {
      tsr__pass_stats st;
      tsr__graph *g = import_passed(b, &st);
      ck_assert_uint_eq(st.gelus_fused, 1);
      const tsr__node *n = &g->nodes[g->values[tsr__graph_find_value(g, "y")].producer];
      ck_assert_str_eq(n->op_type, "Gelu");
      ck_assert_str_eq(tsr__node_attr_string(n, "approximate", ""), "tanh");
      tsr__graph_destroy(g);
    }
    free(b.data);
  }
}
END_TEST

/* How the LayerNormalization of layernorm_model is written out. */
typedef struct ln_case {
  int64_t opset; /* 18: ReduceMean takes its axes as an input */
  bool square_by_mul, beta;
  int64_t axis;  /* of both ReduceMeans */
  bool d_output; /* X - mean is also a graph output */
  bool fused;    /* expected */
} ln_case;

/* x[2, 5, 24] -> LayerNormalization over the last axis, written out as torch exports it. */
static bytes layernorm_model(const ln_case *k) {
  mb_model *m = mb_new(k->opset);
  int64_t xd[] = {2, 5, 24}, cd[] = {24};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 3, xd);
  init_rand(m, "gamma", 1, cd, 0.5f, 1.5f);
  init_rand(m, "beta", 1, cd, -0.5f, 0.5f);
  mb_init_f32(m, "two", 0, NULL, (float[]){2.0f});
  mb_init_f32(m, "eps", 0, NULL, (float[]){1e-5f});
  mb_init_i64(m, "axes", 1, (int64_t[]){1}, (int64_t[]){k->axis});
  bool in = k->opset >= 18;
  mb_node(m, "ReduceMean", "mean", in ? "x,axes" : "x", "mu");
  if (!in)
    mb_attr_ints(m, "axes", 1, (int64_t[]){k->axis});
  mb_node(m, "Sub", "sub", "x,mu", "d");
  if (k->square_by_mul)
    mb_node(m, "Mul", "sq", "d,d", "d2");
  else
    mb_node(m, "Pow", "sq", "d,two", "d2");
  mb_node(m, "ReduceMean", "var", in ? "d2,axes" : "d2", "v");
  if (!in)
    mb_attr_ints(m, "axes", 1, (int64_t[]){k->axis});
  mb_node(m, "Add", "addeps", "v,eps", "ve");
  mb_node(m, "Sqrt", "sqrt", "ve", "sd");
  mb_node(m, "Div", "div", "d,sd", "n");
  mb_node(m, "Mul", "scale", k->beta ? "n,gamma" : "gamma,n", k->beta ? "s" : "y");
  if (k->beta)
    mb_node(m, "Add", "shift", "s,beta", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  if (k->d_output)
    mb_output(m, "d", TSR_DTYPE_FLOAT32);
  return finish(m);
}

START_TEST(layernorm_written_out) {
  static const ln_case cases[] = {
      {13, false, true, -1, false, true},  {13, true, true, -1, false, true},
      {13, false, false, -1, false, true}, {13, false, true, 2, false, true},
      {18, false, true, -1, false, true},  {13, false, true, 1, false, false},
      {13, false, true, -1, true, false},
  };
  int64_t xd[] = {2, 5, 24};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const ln_case *k = &cases[i];
    char what[64];
    snprintf(what, sizeof what, "LayerNormalization written out, case %zu", i);
    bytes b = layernorm_model(k);
    size_t nodes = 8 + k->beta;
    /* The CPU runs ReduceMean up to opset 17: the opset 18 form is checked in the IR only. */
    if (k->opset < 18) {
      size_t with, without;
      compare(b, 3, xd, k->d_output ? 2 : 1, what, &with, &without);
      ck_assert_uint_eq(without, nodes);
      ck_assert_msg(with == (k->fused ? 1 : nodes), "%s: %zu nodes with passes", what, with);
    }
    tsr__pass_stats st;
    tsr__graph *g = import_passed(b, &st);
    ck_assert_uint_eq(st.layernorms_fused, k->fused);
    if (k->fused) {
      ck_assert_uint_eq(g->n_nodes, 1);
      const tsr__node *n = &g->nodes[0];
      ck_assert_str_eq(n->op_type, "LayerNormalization");
      ck_assert_int_eq(n->opset, 17);
      ck_assert_uint_eq(n->n_inputs, k->beta ? 3 : 2);
      ck_assert_int_eq(n->inputs[0], tsr__graph_find_value(g, "x"));
      ck_assert_int_eq(n->inputs[1], tsr__graph_find_value(g, "gamma"));
      ck_assert_int_eq(tsr__node_attr_int(n, "axis", 0), -1);
      ck_assert_float_eq(tsr__node_attr_float(n, "epsilon", 0), 1e-5f);
      ck_assert_int_eq(n->outputs[0], tsr__graph_find_value(g, "y"));
    }
    tsr__graph_destroy(g);
    free(b.data);
  }
}
END_TEST

/* Cases that must stay apart: the Conv output has a second reader, or is a graph output; a
 * Clip bound is computed by a node; the weights are not constant. */
START_TEST(activation_not_fused) {
  int64_t xd[] = {2, 3, 6, 5}, wd[] = {4, 3, 3, 3}, cd[] = {4};
  size_t with, without;
  for (int variant = 0; variant < 4; variant++) {
    mb_model *m = mb_new(13);
    mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
    init_rand(m, "w", 4, wd, -0.5f, 0.5f);
    init_rand(m, "b", 1, cd, -0.5f, 0.5f);
    mb_init_f32(m, "hi0", 0, NULL, (float[]){-0.5f});
    size_t n_out = 1, nodes = 2;
    if (variant == 3) {
      /* The weight is computed (Neg of a constant, folded only at plan time). */
      mb_node(m, "Neg", "neg", "w", "wn");
      mb_node(m, "Conv", "conv", "x,wn,b", "c");
      nodes = 3;
    } else {
      mb_node(m, "Conv", "conv", "x,w,b", "c");
    }
    mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
    if (variant == 0) { /* two readers */
      mb_node(m, "Relu", "relu", "c", "r");
      mb_node(m, "Add", "add", "r,c", "y");
      nodes = 3;
    } else if (variant == 1) { /* c is a graph output too */
      mb_node(m, "Relu", "relu", "c", "y");
      mb_output(m, "c", TSR_DTYPE_FLOAT32);
      n_out = 2;
    } else if (variant == 2) { /* the bound is computed */
      mb_node(m, "Neg", "neg", "hi0", "hi");
      mb_node(m, "Clip", "clip", "c,,hi", "y");
      nodes = 3;
    } else {
      mb_node(m, "Relu", "relu", "c", "y");
    }
    mb_output(m, "y", TSR_DTYPE_FLOAT32);
    bytes b = finish(m);
    char what[64];
    snprintf(what, sizeof what, "not fused, variant %d", variant);
    compare(b, 4, xd, n_out, what, &with, &without);
    ck_assert_msg(with == nodes && without == nodes, "%s: %zu nodes with passes, %zu without", what,
                  with, without);
    expect_fused(b, "c", "Conv", NULL, 0, NULL);
    free(b.data);
  }
}
END_TEST

/* ---- Whole-graph behaviour --------------------------------------------------------------- */

/* TESSERA_NO_PASSES=1 leaves the graph as imported; "0" or empty does not disable. */
START_TEST(environment_switch) {
  conv_case k = {13, false, true, 3, 4, 1, false};
  bytes b = conv_bn_model(&k);
  tsr_model *model = NULL;
  setenv("TESSERA_NO_PASSES", "1", 1);
  ck_assert_ok(tsr_model_load_memory(rt, b.data, b.size, NULL, &model));
  ck_assert_uint_eq(tsr_model_node_count(model), 3);
  tsr_model_destroy(model);
  setenv("TESSERA_NO_PASSES", "", 1);
  ck_assert_ok(tsr_model_load_memory(rt, b.data, b.size, NULL, &model));
  ck_assert_uint_eq(tsr_model_node_count(model), 1); /* BN folded, Relu fused */
  tsr_model_destroy(model);
  unsetenv("TESSERA_NO_PASSES");
  ck_assert_ok(tsr_model_load_memory(rt, b.data, b.size, NULL, &model));
  ck_assert_uint_eq(tsr_model_node_count(model), 1);
  tsr_model_destroy(model);
  free(b.data);
}
END_TEST

/* ---- The CPU plugin's residual fusion: Conv -> Add -> (Relu) ------------------------- */

/* A residual block on x[N, 8, H, W] (N = 1 or 2): r (the residual) comes first, then t = Relu(x) and the
 * Conv over it, then Add(conv, r) and perhaps a Relu. `kind` picks the Conv's path and where
 * r comes from:
 *   0: 1x1 (pointwise GEMM), r = Sigmoid(x)
 *   1: 3x3 padded (input read in place through a padded copy), r = Sigmoid(x), Add(r, conv)
 *   2: 3x3 stride 2, r = AveragePool(x) 2x2 stride 2
 *   3: 3x3 stride 2 with 136 output channels (packed panels), r = 1x1 Conv(pool) to 136
 *   4: 3x3, r = t, the Conv's own input (the output may then be planned onto it)
 *   5: 1x1 whose Add comes after another node (not fused; still right)
 *   6: 3x3 with a Neg between the Add and the Relu (the Add fused, not the Relu)
 *   7: 3x3 on x[2, 40, 4, 32]: rows of whole register tiles, stored in place by the GEMM, and
 *      a depth of 360 (two KC blocks), r = Sigmoid(x)
 *   8: as 7 with r = t
 * `relu` adds the Relu after the Add. */
static void residual_dims(int kind, int64_t n, int64_t xd[4]) {
  bool wide = kind >= 7;
  xd[0] = n, xd[1] = wide ? 40 : 8, xd[2] = wide ? 4 : 8, xd[3] = wide ? 32 : 6;
}

static bytes residual_model(int kind, bool relu, int64_t n) {
  mb_model *m = mb_new(13);
  int64_t xd[4];
  residual_dims(kind, n, xd);
  int64_t ci = xd[1], co = kind == 3 ? 136 : ci, k = kind == 0 || kind == 5 ? 1 : 3;
  int64_t wd[] = {co, ci, k, k}, bd[] = {co}, w2d[] = {co, ci, 1, 1};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.3f, 0.3f);
  init_rand(m, "b", 1, bd, -0.5f, 0.5f);
  bool s2 = kind == 2 || kind == 3;
  if (s2) {
    mb_node(m, "AveragePool", "pool", "x", kind == 3 ? "p" : "r");
    mb_attr_ints(m, "kernel_shape", 2, (int64_t[]){2, 2});
    mb_attr_ints(m, "strides", 2, (int64_t[]){2, 2});
    if (kind == 3) {
      init_rand(m, "w2", 4, w2d, -0.3f, 0.3f);
      mb_node(m, "Conv", "down", "p,w2", "r");
    }
  } else if (kind != 4 && kind != 8) {
    mb_node(m, "Sigmoid", "sig", "x", "r");
  }
  mb_node(m, "Relu", "pre", "x", "t");
  mb_node(m, "Conv", "conv", "t,w,b", "c");
  if (k == 3)
    mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  if (s2)
    mb_attr_ints(m, "strides", 2, (int64_t[]){2, 2});
  const char *res = kind == 4 || kind == 8 ? "t" : "r";
  if (kind == 5)
    mb_node(m, "Neg", "between", "x", "n");
  char in[16];
  snprintf(in, sizeof in, kind == 1 ? "%s,c" : "c,%s", res);
  mb_node(m, "Add", "add", in, relu || kind == 6 ? "s" : "y");
  if (kind == 6) {
    mb_node(m, "Neg", "neg", "s", "s2");
    mb_node(m, "Relu", "post", "s2", "y");
  } else if (relu) {
    mb_node(m, "Relu", "post", "s", "y");
  }
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  if (kind == 5)
    mb_output(m, "n", TSR_DTYPE_FLOAT32);
  return finish(m);
}

/* Runs b on x with the CPU plugin's fusions on or off (TESSERA_NO_PASSES at session
 * creation); returns output "y" and, through op_ns, the profiled time of the (last) node of
 * type op. */
static tsr_tensor *run_fused(bytes b, const tsr_tensor *x, bool fuse, const char *op,
                             uint64_t *op_ns, size_t *op_noted_fused) {
  tsr_model *model = load(b, true);
  tsr_session_options so = {sizeof so};
  so.threads = 2;
  tsr_session *s = NULL;
  setenv("TESSERA_NO_PASSES", fuse ? "0" : "1", 1);
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  unsetenv("TESSERA_NO_PASSES");
  /* The plan's notes: how many nodes of type op the CPU says it took into another. */
  tsr_plan *plan = NULL;
  ck_assert_ok(tsr_session_plan(s, 0, NULL, NULL, NULL, &plan));
  *op_noted_fused = 0;
  for (size_t i = 0; i < tsr_plan_node_count(plan); i++) {
    tsr_plan_node_info ni = {sizeof ni};
    ck_assert_ok(tsr_plan_get_node(plan, i, &ni));
    if (strcmp(ni.op_type, op) == 0 && strncmp(ni.kernel, "fused into '", 12) == 0)
      (*op_noted_fused)++;
  }
  tsr_plan_destroy(plan);
  tsr_profile *prof = NULL;
  ck_assert_ok(tsr_profile_create(&prof));
  tsr_run_options ro = {sizeof ro};
  ro.profile = prof;
  const char *names[] = {"x"}, *outs[] = {"y"};
  tsr_tensor *y = NULL;
  ck_assert_ok(tsr_session_run(s, &ro, 1, names, &x, 1, outs, &y));
  *op_ns = UINT64_MAX;
  for (size_t i = 0; i < tsr_profile_node_count(prof); i++) {
    tsr_profile_entry e = {sizeof e};
    ck_assert_ok(tsr_profile_node(prof, i, &e));
    if (strcmp(e.op_type, op) == 0)
      *op_ns = e.total_ns;
  }
  tsr_profile_destroy(prof);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
  return y;
}

/* Runs b on a random x of `dims` with the plugin's fusions and without, compares output "y",
 * and checks that the node of type op was taken into another (no time of its own) exactly
 * when `fused`. The fused run has TESSERA_CPU_WINOGRAD set to `winograd` (3x3 convolutions
 * by Winograd's transform when "1", as their cost decides when ""), the unfused one the
 * direct convolution. */
static void check_fused_wino(bytes b, size_t rank, const int64_t *dims, const char *op,
                             bool fused, const char *winograd, const char *what) {
  float *xv = rand_buf(prod(rank, dims), -2.0f, 2.0f);
  tsr_tensor *x = NULL;
  ck_assert_ok(tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, rank, dims, xv,
                                      prod(rank, dims) * sizeof(float), &x));
  free(xv);
  uint64_t fused_ns, plain_ns;
  size_t fused_notes, plain_notes;
  setenv("TESSERA_CPU_WINOGRAD", winograd, 1);
  tsr_tensor *got = run_fused(b, x, true, op, &fused_ns, &fused_notes);
  setenv("TESSERA_CPU_WINOGRAD", "0", 1);
  tsr_tensor *want = run_fused(b, x, false, op, &plain_ns, &plain_notes);
  unsetenv("TESSERA_CPU_WINOGRAD");
  expect_close(got, want, what);
  ck_assert_msg(plain_ns > 0 && plain_ns != UINT64_MAX, "%s: %s not timed unfused", what, op);
  ck_assert_msg(plain_notes == 0, "%s: unfused, a %s is noted as fused", what, op);
  if (fused)
    ck_assert_msg(fused_ns == 0 && fused_notes > 0,
                  "%s: the %s was not fused (%llu ns, %zu noted fused)", what, op,
                  (unsigned long long)fused_ns, fused_notes);
  else
    ck_assert_msg(fused_ns > 0 && fused_notes == 0, "%s: the %s was fused", what, op);
  tsr_tensor_destroy(got);
  tsr_tensor_destroy(want);
  tsr_tensor_destroy(x);
}

static void check_fused(bytes b, size_t rank, const int64_t *dims, const char *op, bool fused,
                        const char *what) {
  check_fused_wino(b, rank, dims, op, fused, "", what);
}

/* ---- The CPU plugin's Add -> LayerNormalization fusion ----------------------------------- */

/* x[2, 5, C] (C = 64, or 67 with kind 1): t = Relu(x), r = Sigmoid(x), then an Add feeding a
 * LayerNormalization over the last axis with constant Scale and B. `kind` picks the Add:
 *   0: Add(t, r)                       fused
 *   1: Add(r, t), C = 67, no B         fused
 *   2: Add(t, t)                       fused
 *   3: Add(t, r), its sum a graph output too          not fused
 *   4: Add(t, r), a Neg between it and the norm       not fused
 *   5: Add(t, r) broadcast over a [C] constant r      not fused */
static int64_t skip_norm_cols(int kind) { return kind == 1 ? 67 : 64; }

static bytes skip_norm_model(int kind) {
  mb_model *m = mb_new(17);
  int64_t c = skip_norm_cols(kind), xd[] = {2, 5, c}, cd[] = {c};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 3, xd);
  init_rand(m, "scale", 1, cd, 0.5f, 1.5f);
  if (kind != 1)
    init_rand(m, "bias", 1, cd, -0.5f, 0.5f);
  if (kind == 5)
    init_rand(m, "r", 1, cd, -1.0f, 1.0f);
  else
    mb_node(m, "Sigmoid", "sig", "x", "r");
  mb_node(m, "Relu", "pre", "x", "t");
  mb_node(m, "Add", "add", kind == 1 ? "r,t" : kind == 2 ? "t,t" : "t,r", "s");
  if (kind == 4)
    mb_node(m, "Neg", "between", "s", "s2");
  char in[32];
  snprintf(in, sizeof in, "%s,scale%s", kind == 4 ? "s2" : "s", kind == 1 ? "" : ",bias");
  mb_node(m, "LayerNormalization", "norm", in, "y");
  mb_attr_int(m, "axis", -1);
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  if (kind == 3)
    mb_output(m, "s", TSR_DTYPE_FLOAT32);
  return finish(m);
}

START_TEST(skip_norm_fused) {
  for (int kind = 0; kind < 6; kind++) {
    char what[64];
    snprintf(what, sizeof what, "Add -> LayerNormalization kind %d", kind);
    bytes b = skip_norm_model(kind);
    int64_t xd[] = {2, 5, skip_norm_cols(kind)};
    check_fused(b, 3, xd, "Add", kind <= 2, what);
    free(b.data);
  }
}
END_TEST

START_TEST(residual_add_fused) {
  for (int kind = 0; kind < 18; kind++)
    for (int relu = 0; relu < 2; relu++) {
      /* One image too: the padded and Winograd paths copy it before writing any output, so
       * that an output the plan puts on the input is written in place. */
      int64_t n = kind < 9 ? 2 : 1;
      char what[96];
      snprintf(what, sizeof what, "residual block kind %d, relu %d, batch %lld", kind % 9, relu,
               (long long)n);
      bytes b = residual_model(kind % 9, relu, n);
      int64_t xd[4];
      residual_dims(kind % 9, n, xd);
      /* kind 5: an Add that does not follow its Conv stays. The 3x3 ones also by
       * Winograd's transform, the residual and the Relu in its output transform. */
      check_fused(b, 4, xd, "Add", kind % 9 != 5, what);
      check_fused_wino(b, 4, xd, "Add", kind % 9 != 5, "1", what);
      free(b.data);
    }
}
END_TEST

/* Winograd's scratch (cpu_scratch_take) kept from run to run: x[1, 32, 20, 24] -> 3x3 Conv to
 * 48 -> Relu -> 3x3 Conv to 64 over a wider padding (a larger block than the first's, so that
 * the first Conv of the next run reuses what the second left), three runs of one session on
 * new inputs, each against a session of direct convolutions; on one and two threads. Both
 * layouts: NCHW (conv_wino.c's padded copies), and blocked, where the first Conv opens the
 * chain from the graph input, converting it into the scratch block, and the second writes its
 * blocked result there before converting it to the NCHW output; with 2x2 tiles (the 4x4 ones'
 * larger rounding, some 3e-7 of the products' magnitudes, is the unit suite's to bound). */
START_TEST(winograd_scratch_reused) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {1, 32, 20, 24}, w1[] = {48, 32, 3, 3}, w2[] = {64, 48, 3, 3};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w1", 4, w1, -0.2f, 0.2f);
  init_rand(m, "w2", 4, w2, -0.2f, 0.2f);
  mb_node(m, "Conv", "c1", "x,w1", "a");
  mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  mb_node(m, "Relu", "r", "a", "b");
  mb_node(m, "Conv", "c2", "b,w2", "y");
  mb_attr_ints(m, "pads", 4, (int64_t[]){3, 2, 3, 2});
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  bytes b = finish(m);
  for (int config = 0; config < 4; config++) {
    int threads = 1 + config % 2;
    bool blocked = config >= 2;
    tsr_session *s[2] = {NULL, NULL};
    tsr_model *model[2];
    setenv("TESSERA_CPU_NCHWC", blocked ? "1" : "0", 1);
    setenv("TESSERA_CPU_WINOGRAD_TILE", "2", 1);
    for (int k = 0; k < 2; k++) {
      model[k] = load(b, true);
      tsr_session_options so = {sizeof so};
      so.threads = (uint32_t)threads;
      setenv("TESSERA_CPU_WINOGRAD", k ? "0" : "1", 1);
      ck_assert_ok(tsr_session_create(rt, model[k], &so, &s[k]));
    }
    unsetenv("TESSERA_CPU_WINOGRAD");
    unsetenv("TESSERA_CPU_WINOGRAD_TILE");
    unsetenv("TESSERA_CPU_NCHWC");
    for (int run = 0; run < 3; run++) {
      float *xv = rand_buf(32 * 20 * 24, -2.0f, 2.0f);
      tsr_tensor *x = NULL, *y[2];
      ck_assert_ok(tsr_tensor_create_copy(rt, TSR_DTYPE_FLOAT32, 4, xd, xv,
                                          32 * 20 * 24 * sizeof(float), &x));
      free(xv);
      const char *names[] = {"x"}, *outs[] = {"y"};
      const tsr_tensor *ins[] = {x};
      for (int k = 0; k < 2; k++)
        ck_assert_ok(tsr_session_run(s[k], NULL, 1, names, ins, 1, outs, &y[k]));
      char what[64];
      snprintf(what, sizeof what, "Winograd run %d on %d threads, %s", run, threads,
               blocked ? "blocked" : "NCHW");
      expect_close(y[0], y[1], what);
      tsr_tensor_destroy(y[0]);
      tsr_tensor_destroy(y[1]);
      tsr_tensor_destroy(x);
    }
    for (int k = 0; k < 2; k++) {
      tsr_session_destroy(s[k]);
      tsr_model_destroy(model[k]);
    }
  }
  free(b.data);
}
END_TEST

/* A squeeze-and-excitation block's end on x[N, 16, 7, 9]: s = Sigmoid(GlobalAveragePool(x))
 * (a [N, 16, 1, 1] scale), Mul(x, s), then a Conv over the product. `kind`:
 *   0: 1x1 Conv, Mul(x, s)
 *   1: 3x3 padded Conv, Mul(s, x)
 *   2: 1x1 Conv whose output goes on through a residual Add(conv, x) and a Relu
 *   3: a scale of shape [1, 16, 1, 1] from the first image only with N = 2 (not fused)
 *   4: a Relu between the Mul and the Conv (not fused)
 *   5: 1x1 Conv to 80 channels, Mul(x, s)
 *   6, 7, 8: kinds 0, 2 and 5 again, computed by the transposed 1x1 product
 *      (TESSERA_CPU_PWT=1), which scales the input as it packs it
 *   9: 3x3 padded Conv to 4 channels, Mul(x, s)
 * The 1x1 Convs scale their input as they pack it; kind 1 scales a copy of the input (its
 * 16 x 3 x 3 weights per input channel outnumber the 63 positions), kind 9 the weights. */
static bytes se_model(int kind, int64_t n) {
  if (kind >= 6 && kind <= 8)
    kind = kind == 6 ? 0 : kind == 7 ? 2 : 5;
  mb_model *m = mb_new(13);
  int64_t xd[] = {n, 16, 7, 9}, k = kind == 1 || kind == 9 ? 3 : 1;
  int64_t co = kind == 5 ? 80 : kind == 9 ? 4 : 16, wd[] = {co, 16, k, k}, bd[] = {co};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.3f, 0.3f);
  init_rand(m, "b", 1, bd, -0.5f, 0.5f);
  mb_node(m, "GlobalAveragePool", "gap", "x", "g");
  if (kind == 3) {
    mb_init_i64(m, "s0", 1, (int64_t[]){1}, (int64_t[]){0});
    mb_init_i64(m, "s1", 1, (int64_t[]){1}, (int64_t[]){1});
    mb_node(m, "Slice", "first", "g,s0,s1,s0", "g1");
    mb_node(m, "Sigmoid", "sig", "g1", "s");
  } else {
    mb_node(m, "Sigmoid", "sig", "g", "s");
  }
  mb_node(m, "Mul", "scale", kind == 1 ? "s,x" : "x,s", kind == 4 ? "q" : "p");
  if (kind == 4)
    mb_node(m, "Relu", "between", "q", "p");
  mb_node(m, "Conv", "conv", "p,w,b", kind == 2 ? "c" : "y");
  if (k == 3)
    mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  if (kind == 2) {
    mb_node(m, "Add", "add", "c,x", "a");
    mb_node(m, "Relu", "post", "a", "y");
  }
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return finish(m);
}

START_TEST(se_scale_fused) {
  for (int kind = 0; kind < 10; kind++)
    for (int64_t n = 1; n <= 2; n++) {
      char what[96];
      snprintf(what, sizeof what, "squeeze-excitation kind %d, batch %lld", kind, (long long)n);
      bytes b = se_model(kind, n);
      int64_t xd[] = {n, 16, 7, 9};
      /* Both sides of the comparison take the transposed product for kinds 6 to 8; the
       * unfused one scales in its own Mul. */
      if (kind >= 6)
        setenv("TESSERA_CPU_PWT", "1", 1);
      check_fused(b, 4, xd, "Mul", kind < 3 || kind >= 5 || (kind == 3 && n == 1), what);
      unsetenv("TESSERA_CPU_PWT");
      free(b.data);
    }
}
END_TEST

/* x[2, 3, 5, 16] -> MatMul (constant [16, 24]) -> Add of a bias -> (Relu). `bias`: 0 a
 * constant [24] added second, 1 a constant [1, 24] added first, 2 a [24] computed from x (not
 * fused). */
static bytes matmul_bias_model(int bias, bool relu) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {2, 3, 5, 16}, wd[] = {16, 24}, bd[] = {24}, bd2[] = {1, 24};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 2, wd, -0.5f, 0.5f);
  if (bias == 2) {
    init_rand(m, "w2", 2, wd, -0.5f, 0.5f);
    mb_node(m, "ReduceMean", "mean", "x", "xm");
    mb_attr_ints(m, "axes", 3, (int64_t[]){0, 1, 2});
    mb_attr_int(m, "keepdims", 0);
    mb_node(m, "MatMul", "bmm", "xm,w2", "bias");
  } else {
    init_rand(m, "bias", bias == 1 ? 2 : 1, bias == 1 ? bd2 : bd, -0.5f, 0.5f);
  }
  mb_node(m, "MatMul", "mm", "x,w", "p");
  mb_node(m, "Add", "add", bias == 1 ? "bias,p" : "p,bias", relu ? "h" : "y");
  if (relu)
    mb_node(m, "Relu", "post", "h", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return finish(m);
}

START_TEST(matmul_bias_fused) {
  for (int c = 0; c < 7; c++) {
    char what[96];
    snprintf(what, sizeof what, "MatMul + bias case %d", c);
    bytes b;
    int64_t x4[] = {2, 3, 5, 16}, x3[] = {2, 5, 16};
    const int64_t *xd = x4;
    size_t rank = 4;
    if (c == 6) { /* GELU written out after the Add: a Gelu node that the MatMul takes in */
      b = gelu_model(3, x3, GELU_TORCH);
      xd = x3;
      rank = 3;
    } else {
      b = matmul_bias_model(c / 2, c % 2);
    }
    /* c 4, 5: a computed bias stays an Add. */
    check_fused(b, rank, xd, "Add", c / 2 != 2, what);
    free(b.data);
  }
}
END_TEST

/* ---- Mul / Add by a constant into Conv, HardSwish written out --------------------------- */

/* x[1, 4, 6, 5] -> Conv 3x3 (6 channels) -> Mul(s) -> Add(b) -> HardSwish written out
 * (Add 3, Clip 0 6, Mul x, Div 6), as PP-LCNet's learnable affine blocks and hard-swish are
 * exported. `scale_dims` / `shift_dims` shape the two constants; `swap` puts them first. */
static bytes conv_affine_model(bool bias, bool swap, size_t scale_rank, const int64_t *scale_dims,
                               size_t shift_rank, const int64_t *shift_dims, bool conv_is_output) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {1, 4, 6, 5}, wd[] = {6, 4, 3, 3}, cd[] = {6};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  if (bias)
    init_rand(m, "b", 1, cd, -0.5f, 0.5f);
  init_rand(m, "s", scale_rank, scale_dims, 0.5f, 1.5f);
  init_rand(m, "t", shift_rank, shift_dims, -0.5f, 0.5f);
  mb_init_f32(m, "three", 0, NULL, (float[]){3.0f});
  mb_init_f32(m, "zero", 0, NULL, (float[]){0.0f});
  mb_init_f32(m, "six", 0, NULL, (float[]){6.0f});
  mb_node(m, "Conv", "conv", bias ? "x,w,b" : "x,w", "c");
  mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  mb_node(m, "Mul", "scale", swap ? "s,c" : "c,s", "cs");
  mb_node(m, "Add", "shift", swap ? "t,cs" : "cs,t", "a");
  mb_node(m, "Add", "hs_add", swap ? "three,a" : "a,three", "a3");
  mb_node(m, "Clip", "hs_clip", "a3,zero,six", "r6");
  mb_node(m, "Mul", "hs_mul", swap ? "r6,a" : "a,r6", "p");
  mb_node(m, "Div", "hs_div", "p,six", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  if (conv_is_output)
    mb_output(m, "c", TSR_DTYPE_FLOAT32);
  return finish(m);
}

START_TEST(conv_affine_and_hardswish_fused) {
  int64_t xd[] = {1, 4, 6, 5};
  const int64_t one[] = {1}, ch4[] = {1, 6, 1, 1}, ch3[] = {6, 1, 1};
  for (int k = 0; k < 4; k++) {
    bool bias = k & 1, swap = k & 2;
    bytes b =
        conv_affine_model(bias, swap, swap ? 0 : 1, one, k == 1 ? 3 : 4, k == 1 ? ch3 : ch4, false);
    size_t with, without;
    compare(b, 4, xd, 1, "conv affine hardswish", &with, &without);
    ck_assert_uint_eq(without, 7);
    ck_assert_uint_eq(with, 1); /* Conv with hardswish fused */
    tsr__pass_stats st;
    tsr__graph *g = import_passed(b, &st);
    ck_assert_uint_eq(st.affines_folded, 2);
    ck_assert_uint_eq(st.hardswishes_fused, 1);
    ck_assert_uint_eq(st.activations_fused, 1);
    tsr__graph_destroy(g);
    free(b.data);
  }
}
END_TEST

/* ConvTranspose, as PP-OCR's detector writes its upsampling: x[1, 4, 5, 6] -> ConvTranspose
 * (2x2, stride 2; two groups when `grouped`) -> Mul by a per-channel [1, 6, 1, 1] scale ->
 * Add of a per-channel bias -> BatchNormalization -> Relu. The Mul and Add fold into the
 * weights and bias, then the BatchNormalization (a second sweep), leaving the ConvTranspose and
 * the Relu; against the unfolded graph on random inputs. */
START_TEST(conv_transpose_affine_folded) {
  for (int grouped = 0; grouped < 2; grouped++) {
    mb_model *m = mb_new(13);
    int64_t xd[] = {1, 4, 5, 6}, wd[] = {4, grouped ? 3 : 6, 2, 2}, cd[] = {6}, c4[] = {1, 6, 1, 1};
    mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
    init_rand(m, "w", 4, wd, -0.5f, 0.5f);
    init_rand(m, "s", 4, c4, 0.5f, 1.5f);
    init_rand(m, "t", 4, c4, -0.5f, 0.5f);
    init_rand(m, "gamma", 1, cd, 0.5f, 1.5f);
    init_rand(m, "beta", 1, cd, -0.5f, 0.5f);
    init_rand(m, "mean", 1, cd, -0.3f, 0.3f);
    init_rand(m, "var", 1, cd, 0.2f, 2.0f);
    mb_node(m, "ConvTranspose", "up", "x,w", "u");
    mb_attr_ints(m, "strides", 2, (int64_t[]){2, 2});
    mb_attr_int(m, "group", grouped ? 2 : 1);
    mb_node(m, "Mul", "scale", "u,s", "us");
    mb_node(m, "Add", "shift", "t,us", "ut");
    mb_node(m, "BatchNormalization", "bn", "ut,gamma,beta,mean,var", "n");
    mb_node(m, "Relu", "relu", "n", "y");
    mb_output(m, "y", TSR_DTYPE_FLOAT32);
    bytes b = finish(m);
    size_t with, without;
    compare(b, 4, xd, 1, grouped ? "grouped ConvTranspose affine" : "ConvTranspose affine", &with,
            &without);
    ck_assert_uint_eq(without, 5);
    ck_assert_uint_eq(with, 2);
    tsr__pass_stats st;
    tsr__graph *g = import_passed(b, &st);
    ck_assert_uint_eq(st.affines_folded, 2);
    tsr__graph_destroy(g);
    free(b.data);
  }
}
END_TEST

/* What must stay: the Conv's output read elsewhere; constants that broadcast along another
 * axis or add a dim; a Conv with its activation fused already. */
START_TEST(conv_affine_not_folded) {
  int64_t xd[] = {1, 4, 6, 5};
  const int64_t one[] = {1}, five1[] = {1, 1, 1, 1, 1}, along_w[] = {5}, six1[] = {6, 1};
  struct {
    size_t scale_rank, shift_rank;
    const int64_t *scale, *shift;
    bool conv_is_output;
    size_t folded;
  } cases[] = {
      {1, 1, one, one, true, 0},      /* the Conv's output is a graph output */
      {5, 1, five1, one, false, 0},   /* a scalar of rank 5 makes the result rank 5 */
      {1, 1, along_w, one, false, 0}, /* per column, not per channel */
      {1, 2, one, six1, false, 1},    /* [6, 1] lies along H: only the Mul folds */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bytes b = conv_affine_model(true, false, cases[i].scale_rank, cases[i].scale,
                                cases[i].shift_rank, cases[i].shift, cases[i].conv_is_output);
    tsr__pass_stats st;
    tsr__graph *g = import_passed(b, &st);
    ck_assert_msg(st.affines_folded == cases[i].folded, "case %zu: %u folded", i,
                  st.affines_folded);
    tsr__graph_destroy(g);
    size_t with, without;
    compare(b, 4, xd, cases[i].conv_is_output ? 2 : 1, "conv affine kept", &with, &without);
    free(b.data);
  }
  /* Relu fused first (a Conv -> Relu -> Mul): the Mul must not fold past the Relu. */
  mb_model *m = mb_new(13);
  int64_t wd[] = {6, 4, 3, 3};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  mb_init_f32(m, "s", 0, NULL, (float[]){-2.0f});
  mb_node(m, "Conv", "conv", "x,w", "c");
  mb_node(m, "Relu", "relu", "c", "r");
  mb_node(m, "Mul", "scale", "r,s", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  bytes b = finish(m);
  size_t with, without;
  compare(b, 4, xd, 1, "relu then mul", &with, &without);
  ck_assert_uint_eq(with, 2);
  free(b.data);
}
END_TEST

/* x[1, 4, 6, 5] -> Mul(s) -> Add(t) -> Conv (6 channels, `group`, kernel kh x kh, `pad`) -> y:
 * the affine block folds into an unpadded Conv's weight and bias, and stays before a padded
 * one (the padding would read zeros where s * 0 + t is due). */
static bytes affine_conv_model(bool per_channel, int64_t group, int64_t kh, bool pad,
                               bool only_add) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {1, 4, 6, 5}, wd[] = {6, 4 / group, kh, kh}, cd[] = {6}, pc[] = {1, 4, 1, 1};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  init_rand(m, "b", 1, cd, -0.5f, 0.5f);
  init_rand(m, "s", per_channel ? 4 : 0, pc, 0.5f, 1.5f);
  init_rand(m, "t", per_channel ? 3 : 0, pc + 1, -0.5f, 0.5f);
  if (!only_add)
    mb_node(m, "Mul", "scale", "s,x", "xs");
  mb_node(m, "Add", "shift", only_add ? "x,t" : "xs,t", "a");
  mb_node(m, "Conv", "conv", "a,w,b", "y");
  if (group != 1)
    mb_attr_int(m, "group", group);
  if (pad)
    mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  return finish(m);
}

START_TEST(affine_folded_into_next_conv) {
  int64_t xd[] = {1, 4, 6, 5};
  for (int k = 0; k < 8; k++) {
    bool per_channel = k & 1, pad = k == 6;
    int64_t group = k & 2 ? 2 : 1, kh = k & 4 ? 3 : 1;
    bytes b = affine_conv_model(per_channel, group, kh, pad, k == 7);
    size_t with, without;
    compare(b, 4, xd, 1, "affine into conv", &with, &without);
    size_t nodes = k == 7 ? 2 : 3;
    ck_assert_uint_eq(without, nodes);
    ck_assert_msg(with == (pad ? nodes : 1), "case %d: %zu nodes", k, with);
    free(b.data);
  }
}
END_TEST

/* x * HardSigmoid(x) with alpha 1/6, beta 0.5 and x * Clip(x + 3, 0, 6) * (1/6) on a graph
 * input become HardSwish; other constants, or an intermediate read twice, keep the nodes. */
START_TEST(hardswish_written_out) {
  int64_t xd[] = {2, 3, 7};
  for (int k = 0; k < 6; k++) {
    mb_model *m = mb_new(13);
    mb_input(m, "x", TSR_DTYPE_FLOAT32, 3, xd);
    mb_init_f32(m, "three", 0, NULL, (float[]){3.0f});
    mb_init_f32(m, "zero", 0, NULL, (float[]){0.0f});
    mb_init_f32(m, "six", 0, NULL, (float[]){k == 3 ? 5.0f : 6.0f});
    mb_init_f32(m, "sixth", 0, NULL, (float[]){1.0f / 6.0f});
    bool fuses = k < 3;
    if (k == 0 || k == 4) {
      mb_node(m, "HardSigmoid", "hsig", "x", "h");
      mb_attr_float(m, "alpha", k == 4 ? 0.2f : 1.0f / 6.0f);
      mb_node(m, "Mul", "mul", "h,x", "y");
    } else {
      mb_node(m, "Add", "add", "x,three", "a3");
      mb_node(m, "Clip", "clip", "a3,zero,six", "r6");
      mb_node(m, "Mul", "mul", "x,r6", "p");
      if (k == 2)
        mb_node(m, "Div", "div", "p,six", "y");
      else
        mb_node(m, "Mul", "div", "sixth,p", "y");
    }
    mb_output(m, "y", TSR_DTYPE_FLOAT32);
    if (k == 5)
      mb_output(m, "r6", TSR_DTYPE_FLOAT32); /* read outside the pattern */
    bytes b = finish(m);
    size_t with, without;
    compare(b, 3, xd, k == 5 ? 2 : 1, "hardswish", &with, &without);
    ck_assert_msg(fuses ? with == 1 : with == without, "case %d: %zu nodes, %zu without", k, with,
                  without);
    free(b.data);
  }
}
END_TEST

/* Initializers nothing reads are freed; ones a graph output names stay. Selected passes run
 * alone. */
START_TEST(unused_initializers_and_selection) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {2, 3}, d[] = {3};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 2, xd);
  init_rand(m, "unused", 1, d, 0, 1);
  init_rand(m, "shown", 1, d, 0, 1);
  init_rand(m, "w", 1, d, 0, 1);
  mb_node(m, "Identity", "id", "x", "a");
  mb_node(m, "Mul", "mul", "a,w", "y");
  mb_output(m, "y", TSR_DTYPE_FLOAT32);
  mb_output(m, "shown", TSR_DTYPE_FLOAT32);
  bytes b = finish(m);
  tsr__graph *g = import(b);
  tsr__pass_stats st;
  ck_assert_ok(tsr__passes_apply(g, TSR__PASS_DROP_UNUSED, &st));
  ck_assert_uint_eq(st.initializers_freed, 1);
  ck_assert_uint_eq(st.identities_removed, 0);
  ck_assert_uint_eq(g->n_nodes, 2);
  ck_assert_ptr_null(init_of(g, "unused"));
  ck_assert_ptr_nonnull(init_of(g, "shown"));
  ck_assert_ptr_nonnull(init_of(g, "w"));
  ck_assert_ok(tsr__passes_apply(g, TSR__PASS_REMOVE_IDENTITY, &st));
  ck_assert_uint_eq(st.identities_removed, 1);
  ck_assert_uint_eq(g->n_nodes, 1);
  check_producers(g);
  tsr__graph_destroy(g);
  tsr_test_expect_error(tsr__passes_apply(NULL, TSR__PASS_ALL, NULL), TSR_STATUS_INVALID_ARGUMENT,
                        "NULL");
  free(b.data);
}
END_TEST

/* The model of a small CNN with every rewrite, loaded with the Nth allocation failing for
 * every N until it loads: each failure is a clean out-of-memory error (leaks show under
 * valgrind and LeakSanitizer), and the model that finally loads gives the right results. */
typedef struct failing {
  long calls, fail_at;
} failing;

static void *f_alloc(void *self, size_t size) {
  failing *f = self;
  return ++f->calls >= f->fail_at ? NULL : malloc(size);
}
static void *f_realloc(void *self, void *p, size_t size) {
  failing *f = self;
  return ++f->calls >= f->fail_at ? NULL : realloc(p, size);
}
static void f_free(void *self, void *p) { free(p); }

static bytes every_rewrite_model(void) {
  mb_model *m = mb_new(13);
  int64_t xd[] = {1, 2, 4, 4}, wd[] = {3, 2, 3, 3}, cd[] = {3}, fd[] = {48, 4}, bd[] = {4};
  mb_input(m, "x", TSR_DTYPE_FLOAT32, 4, xd);
  init_rand(m, "w", 4, wd, -0.5f, 0.5f);
  init_rand(m, "gamma", 1, cd, 0.5f, 1.5f);
  init_rand(m, "beta", 1, cd, -0.5f, 0.5f);
  init_rand(m, "mean", 1, cd, -0.3f, 0.3f);
  init_rand(m, "var", 1, cd, 0.2f, 2.0f);
  init_rand(m, "fw", 2, fd, -0.5f, 0.5f);
  init_rand(m, "fb", 1, bd, -0.5f, 0.5f);
  mb_node(m, "Identity", "id", "x", "xi");
  mb_node(m, "Conv", "conv", "xi,w", "c");
  mb_attr_ints(m, "pads", 4, (int64_t[]){1, 1, 1, 1});
  mb_node(m, "BatchNormalization", "bn", "c,gamma,beta,mean,var", "n");
  mb_node(m, "Relu", "relu", "n", "r");
  mb_node(m, "Dropout", "drop", "r", "dr");
  mb_node(m, "Flatten", "flat", "dr", "f");
  mb_node(m, "MatMul", "fc", "f,fw", "h");
  mb_node(m, "Add", "fc_bias", "h,fb", "y");
  /* GELU written out (into the Gemm), then LayerNormalization written out. */
  init_rand(m, "ln_gamma", 1, bd, 0.5f, 1.5f);
  init_rand(m, "ln_beta", 1, bd, -0.5f, 0.5f);
  mb_init_f32(m, "sqrt2", 0, NULL, (float[]){1.4142135f});
  mb_init_f32(m, "one", 0, NULL, (float[]){1.0f});
  mb_init_f32(m, "half", 0, NULL, (float[]){0.5f});
  mb_init_f32(m, "two", 0, NULL, (float[]){2.0f});
  mb_init_f32(m, "eps", 0, NULL, (float[]){1e-5f});
  mb_node(m, "Div", "g_div", "y,sqrt2", "g_u");
  mb_node(m, "Erf", "g_erf", "g_u", "g_e");
  mb_node(m, "Add", "g_plus", "g_e,one", "g_e1");
  mb_node(m, "Mul", "g_m1", "y,g_e1", "g_t");
  mb_node(m, "Mul", "g_m2", "g_t,half", "gl");
  mb_node(m, "ReduceMean", "ln_mean", "gl", "ln_mu");
  mb_attr_ints(m, "axes", 1, (int64_t[]){-1});
  mb_node(m, "Sub", "ln_sub", "gl,ln_mu", "ln_d");
  mb_node(m, "Pow", "ln_sq", "ln_d,two", "ln_d2");
  mb_node(m, "ReduceMean", "ln_var", "ln_d2", "ln_v");
  mb_attr_ints(m, "axes", 1, (int64_t[]){-1});
  mb_node(m, "Add", "ln_addeps", "ln_v,eps", "ln_ve");
  mb_node(m, "Sqrt", "ln_sqrt", "ln_ve", "ln_sd");
  mb_node(m, "Div", "ln_div", "ln_d,ln_sd", "ln_n");
  mb_node(m, "Mul", "ln_scale", "ln_n,ln_gamma", "ln_s");
  mb_node(m, "Add", "ln_shift", "ln_s,ln_beta", "out");
  mb_output(m, "out", TSR_DTYPE_FLOAT32);
  return finish(m);
}

START_TEST(every_rewrite_and_failing_allocations) {
  bytes b = every_rewrite_model();
  size_t with, without;
  int64_t xd[] = {1, 2, 4, 4};
  compare(b, 4, xd, 1, "every rewrite", &with, &without);
  ck_assert_uint_eq(without, 22);
  /* Conv (with the Relu), Flatten, Gemm (with the GELU), LayerNormalization */
  ck_assert_uint_eq(with, 4);
  bool loaded = false;
  long failures = 0;
  for (long n = 1; n < 20000 && !loaded; n++) {
    failing f = {0, n};
    tsr_allocator a = {&f, f_alloc, f_realloc, f_free};
    tsr_runtime_options ro = {sizeof ro, &a, 0, 0};
    tsr_runtime *r = NULL;
    tsr_model *model = NULL;
    tsr_status st = tsr_runtime_create(&ro, &r);
    if (!st)
      st = tsr_model_load_memory(r, b.data, b.size, NULL, &model);
    if (st) {
      tsr_status_code code = tsr_status_code_of(st);
      ck_assert_msg(code == TSR_STATUS_OUT_OF_MEMORY || code == TSR_STATUS_INVALID_MODEL,
                    "allocation %ld failing gave %s: %s", n, tsr_status_code_name(code),
                    tsr_status_message(st));
      tsr_status_free(st);
      failures++;
    } else {
      loaded = true;
      ck_assert_uint_eq(tsr_model_node_count(model), 4);
    }
    tsr_model_destroy(model);
    tsr_runtime_destroy(r);
  }
  ck_assert(loaded);
  ck_assert_int_gt(failures, 10);
  free(b.data);
}
END_TEST

/* The passes on an imported graph with a failing allocator, directly: every failure leaves a
 * graph that finalizes and frees cleanly. */
static void fail_cleanly(bytes b, uint32_t nodes_after) {
  bool done = false;
  for (long n = 1; n < 5000 && !done; n++) {
    tsr__graph *g = import(b);
    failing f = {0, n};
    tsr_allocator a = {&f, f_alloc, f_realloc, f_free};
    const tsr_allocator *orig = g->alloc;
    /* Both allocators are malloc underneath, so blocks may move between them. */
    g->alloc = &a;
    tsr_status st = tsr__passes_apply(g, TSR__PASS_ALL, NULL);
    g->alloc = orig;
    if (st) {
      ck_assert_int_eq(tsr_status_code_of(st), TSR_STATUS_OUT_OF_MEMORY);
      tsr_status_free(st);
      ck_assert_ok(tsr__graph_finalize(g));
      check_producers(g);
    } else {
      done = true;
      ck_assert_uint_eq(g->n_nodes, nodes_after);
    }
    tsr__graph_destroy(g);
  }
  ck_assert(done);
  free(b.data);
}

START_TEST(passes_fail_cleanly) {
  fail_cleanly(every_rewrite_model(), 4);
  /* The tanh form of GELU: a Gelu with a STRING attribute. */
  fail_cleanly(gelu_tanh_model(false, false), 3);
}
END_TEST

int main(void) {
  Suite *s = suite_create("passes");
  TCase *tc = tcase_create("passes");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, conv_bn_with_bias);
  tcase_add_test(tc, conv_bn_without_bias);
  tcase_add_test(tc, conv_bn_groups_and_depthwise);
  tcase_add_test(tc, conv_transpose_bn);
  tcase_add_test(tc, conv_bn_shared_weight);
  tcase_add_test(tc, bn_input_is_graph_output);
  tcase_add_test(tc, conv_with_two_readers_or_no_constants);
  tcase_add_test(tc, identity_chains);
  tcase_add_test(tc, identity_between_outputs);
  tcase_add_test(tc, dropout_unused_mask);
  tcase_add_test(tc, identity_read_by_subgraph_stays);
  tcase_add_test(tc, matmul_add_becomes_gemm);
  tcase_add_test(tc, batched_matmul_stays);
  tcase_add_test(tc, conv_activation_fused);
  tcase_add_test(tc, gemm_activation_fused);
  tcase_add_test(tc, activation_not_fused);
  tcase_add_test(tc, conv_sigmoid_silu_fused);
  tcase_add_test(tc, silu_not_fused);
  tcase_add_test(tc, gelu_written_out);
  tcase_add_test(tc, gelu_tanh_written_out);
  tcase_add_test(tc, layernorm_written_out);
  tcase_add_test(tc, conv_affine_and_hardswish_fused);
  tcase_add_test(tc, conv_transpose_affine_folded);
  tcase_add_test(tc, conv_affine_not_folded);
  tcase_add_test(tc, affine_folded_into_next_conv);
  tcase_add_test(tc, hardswish_written_out);
  tcase_add_test(tc, environment_switch);
  tcase_add_test(tc, residual_add_fused);
  tcase_add_test(tc, skip_norm_fused);
  tcase_add_test(tc, winograd_scratch_reused);
  tcase_add_test(tc, matmul_bias_fused);
  tcase_add_test(tc, se_scale_fused);
  tcase_add_test(tc, unused_initializers_and_selection);
  tcase_add_test(tc, every_rewrite_and_failing_allocations);
  tcase_add_test(tc, passes_fail_cleanly);
  suite_add_tcase(s, tc);
  return tsr_test_run_suite(s) != 0;
}
