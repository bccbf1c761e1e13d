/* Unit suite for core/graph.c: the value index, node building, attribute lookup, opsets, and
 * tsr__graph_finalize (its errors, the topological sort, subgraphs reading outer values), also
 * with an allocator that fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "tests/harness.h"

/* ---- An allocator that fails the Nth allocation and counts live blocks ------------------ */

typedef struct fail_alloc {
  size_t fail_at; /* 1-based; 0 never fails */
  bool sticky;    /* fail every allocation from fail_at on */
  size_t count;
  long live;
} fail_alloc;

static bool fa_should_fail(fail_alloc *f) {
  f->count++;
  return f->fail_at && (f->sticky ? f->count >= f->fail_at : f->count == f->fail_at);
}

static void *fa_alloc(void *self, size_t size) {
  fail_alloc *f = self;
  if (fa_should_fail(f))
    return NULL;
  void *p = malloc(size);
  if (p)
    f->live++;
  return p;
}

static void *fa_realloc(void *self, void *p, size_t size) {
  fail_alloc *f = self;
  if (fa_should_fail(f))
    return NULL;
  void *q = realloc(p, size);
  if (q && !p)
    f->live++;
  return q;
}

static void fa_free(void *self, void *p) {
  fail_alloc *f = self;
  if (!p)
    return;
  f->live--;
  free(p);
}

/* ---- Building graphs by hand ---------------------------------------------------------- */

static int32_t val(tsr__graph *g, const char *name) {
  int32_t i;
  ck_assert_ok(tsr__graph_intern_value(g, name, &i));
  return i;
}

/* Splits "a,,b" into value indices (empty entries are absent optionals, -1). */
static tsr_status names_to_values(tsr__graph *g, const char *list, int32_t **out, uint32_t *n) {
  *out = NULL;
  *n = 0;
  if (!list || !*list)
    return NULL;
  uint32_t count = 1;
  for (const char *p = list; *p; p++)
    count += *p == ',';
  int32_t *idx = tsr__calloc(g->alloc, count, sizeof *idx);
  if (!idx)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "test: out of memory");
  *out = idx;
  *n = count;
  const char *p = list;
  for (uint32_t i = 0; i < count; i++) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)len, p);
    idx[i] = -1;
    if (len)
      TSR_RETURN_IF_ERROR(tsr__graph_intern_value(g, name, &idx[i]));
    p = e ? e + 1 : p + len;
  }
  return NULL;
}

/* Adds a node; name may be NULL. Returns an error instead of asserting so that the failing
 * allocator test can use it. */
static tsr_status try_add_node(tsr__graph *g, const char *name, const char *op, const char *ins,
                               const char *outs, uint32_t *out_index) {
  tsr__node *n;
  uint32_t index;
  TSR_RETURN_IF_ERROR(tsr__graph_add_node(g, &n, &index));
  if (out_index)
    *out_index = index;
  n->name = name ? tsr__strdup(g->alloc, name) : NULL;
  n->op_type = tsr__strdup(g->alloc, op);
  n->domain = tsr__strdup(g->alloc, "");
  if ((name && !n->name) || !n->op_type || !n->domain)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "test: out of memory");
  int32_t *in, *out;
  uint32_t nin, nout;
  tsr_status st = names_to_values(g, ins, &in, &nin);
  /* Look the node up again: interning values does not move nodes, but keep it obvious. */
  n = &g->nodes[index];
  n->inputs = in;
  n->n_inputs = nin;
  if (st)
    return st;
  st = names_to_values(g, outs, &out, &nout);
  n = &g->nodes[index];
  n->outputs = out;
  n->n_outputs = nout;
  return st;
}

static uint32_t add_node(tsr__graph *g, const char *name, const char *op, const char *ins,
                         const char *outs) {
  uint32_t index;
  ck_assert_ok(try_add_node(g, name, op, ins, outs, &index));
  return index;
}

static tsr_status try_set_list(tsr__graph *g, const char *list, bool inputs) {
  int32_t *idx;
  uint32_t n;
  tsr_status st = names_to_values(g, list, &idx, &n);
  if (inputs) {
    tsr__free(g->alloc, g->inputs);
    g->inputs = idx;
    g->n_inputs = n;
  } else {
    tsr__free(g->alloc, g->outputs);
    g->outputs = idx;
    g->n_outputs = n;
  }
  return st;
}

static void set_inputs(tsr__graph *g, const char *list) { ck_assert_ok(try_set_list(g, list, 1)); }
static void set_outputs(tsr__graph *g, const char *list) { ck_assert_ok(try_set_list(g, list, 0)); }

/* Makes `name` a float32 scalar initializer. */
static tsr_status try_set_init(tsr__graph *g, const char *name, float x) {
  int32_t v;
  TSR_RETURN_IF_ERROR(tsr__graph_intern_value(g, name, &v));
  tsr__tensor_data *t = tsr__calloc(g->alloc, 1, sizeof *t);
  if (!t)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "test: out of memory");
  g->values[v].init = t;
  t->dtype = TSR_DTYPE_FLOAT32;
  t->nbytes = sizeof x;
  t->data = tsr__alloc(g->alloc, sizeof x);
  if (!t->data)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "test: out of memory");
  memcpy(t->data, &x, sizeof x);
  return NULL;
}

static void set_init(tsr__graph *g, const char *name) { ck_assert_ok(try_set_init(g, name, 1)); }

/* Gives node `node` a GRAPH attribute holding a new subgraph, returned. */
static tsr__graph *add_subgraph(tsr__graph *g, uint32_t node, const char *attr_name) {
  tsr__node *n = &g->nodes[node];
  tsr__attr *attrs = tsr__realloc(g->alloc, n->attrs, (n->n_attrs + 1) * sizeof *attrs);
  ck_assert_ptr_nonnull(attrs);
  n->attrs = attrs;
  tsr__attr *at = &attrs[n->n_attrs++];
  memset(at, 0, sizeof *at);
  at->name = tsr__strdup(g->alloc, attr_name);
  at->type = 5; /* GRAPH */
  ck_assert_ok(tsr__graph_create(g->alloc, &at->g));
  at->g->parent = g;
  return at->g;
}

static tsr__graph *new_graph(void) {
  tsr__graph *g;
  ck_assert_ok(tsr__graph_create(NULL, &g));
  return g;
}

static const char *node_name(const tsr__graph *g, uint32_t i) { return g->nodes[i].name; }

/* ---- Values and nodes ----------------------------------------------------------------- */

START_TEST(test_intern_and_find) {
  tsr__graph *g = new_graph();
  ck_assert_int_eq(tsr__graph_find_value(g, "x"), -1);
  int32_t a = val(g, "a"), b = val(g, "b");
  ck_assert_int_eq(a, 0);
  ck_assert_int_eq(b, 1);
  ck_assert_int_eq(val(g, "a"), 0);
  ck_assert_int_eq(g->n_values, 2);
  ck_assert_int_eq(g->values[0].producer, -1);
  ck_assert_int_eq(g->values[0].rank, -1);
  ck_assert_int_eq(g->values[0].dtype, TSR_DTYPE_UNDEFINED);
  ck_assert_int_eq(tsr__graph_find_value(g, "b"), 1);
  ck_assert_int_eq(tsr__graph_find_value(g, "c"), -1);
  ck_assert_int_eq(tsr__graph_find_value(g, NULL), -1);
  ck_assert_int_eq(tsr__graph_find_value(NULL, "a"), -1);
  tsr__graph_destroy(g);
  tsr__graph_destroy(NULL);
}
END_TEST

/* Big graphs use the hash index; every name must still be found, and quickly. */
START_TEST(test_find_many) {
  tsr__graph *g = new_graph();
  enum { N = 100000 };
  char name[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "v%d", i);
    ck_assert_int_eq(val(g, name), i);
  }
  ck_assert_ptr_nonnull(g->value_index);
  ck_assert_uint_eq(g->n_indexed, N);
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "v%d", i);
    ck_assert_int_eq(tsr__graph_find_value(g, name), i);
  }
  ck_assert_int_eq(tsr__graph_find_value(g, "v100000"), -1);
  ck_assert_int_eq(tsr__graph_find_value(g, ""), -1);
  tsr__graph_destroy(g);
}
END_TEST

/* A value appended without interning (as code that copies value tables may do) is still
 * found, and the next intern re-indexes it. */
START_TEST(test_find_unindexed_tail) {
  tsr__graph *g = new_graph();
  char name[32];
  for (int i = 0; i < 20; i++) {
    snprintf(name, sizeof name, "v%d", i);
    val(g, name);
  }
  ck_assert_uint_lt(g->n_values, g->cap_values);
  tsr__value *v = &g->values[g->n_values];
  memset(v, 0, sizeof *v);
  v->name = tsr__strdup(g->alloc, "direct");
  v->rank = -1;
  v->producer = -1;
  g->n_values++;
  ck_assert_int_eq(tsr__graph_find_value(g, "direct"), 20);
  ck_assert_int_eq(val(g, "after"), 21);
  ck_assert_uint_eq(g->n_indexed, 22);
  ck_assert_int_eq(tsr__graph_find_value(g, "direct"), 20);
  ck_assert_int_eq(val(g, "direct"), 20);
  tsr__graph_destroy(g);
}
END_TEST

START_TEST(test_add_node_and_attrs) {
  tsr__graph *g = new_graph();
  uint32_t idx = add_node(g, "n", "Conv", "x,w,", "y");
  ck_assert_uint_eq(idx, 0);
  tsr__node *n = &g->nodes[0];
  ck_assert_uint_eq(n->n_inputs, 3);
  ck_assert_int_eq(n->inputs[2], -1);
  ck_assert_int_eq(n->opset, -1);
  n->attrs = tsr__calloc(g->alloc, 4, sizeof *n->attrs);
  n->n_attrs = 4;
  n->attrs[0] = (tsr__attr){.name = tsr__strdup(g->alloc, "group"), .type = 2, .i = 4};
  n->attrs[1] = (tsr__attr){.name = tsr__strdup(g->alloc, "alpha"), .type = 1, .f = 0.5f};
  n->attrs[2] = (tsr__attr){.name = tsr__strdup(g->alloc, "auto_pad"),
                            .type = 3,
                            .s = tsr__strdup(g->alloc, "SAME_UPPER"),
                            .s_len = 10};
  n->attrs[3] = (tsr__attr){.name = tsr__strdup(g->alloc, "pads"),
                            .type = 7,
                            .count = 2,
                            .ints = tsr__calloc(g->alloc, 2, sizeof(int64_t))};
  ck_assert_ptr_eq(tsr__node_attr(n, "pads"), &n->attrs[3]);
  ck_assert_ptr_null(tsr__node_attr(n, "nope"));
  ck_assert_int_eq(tsr__node_attr_int(n, "group", 1), 4);
  ck_assert_int_eq(tsr__node_attr_int(n, "alpha", 9), 9); /* wrong type: the default */
  ck_assert_int_eq(tsr__node_attr_int(n, "missing", -3), -3);
  ck_assert_float_eq(tsr__node_attr_float(n, "alpha", 1.0f), 0.5f);
  ck_assert_float_eq(tsr__node_attr_float(n, "group", 2.0f), 2.0f);
  ck_assert_str_eq(tsr__node_attr_string(n, "auto_pad", "NOTSET"), "SAME_UPPER");
  ck_assert_str_eq(tsr__node_attr_string(n, "missing", "NOTSET"), "NOTSET");
  ck_assert_ptr_null(tsr__node_attr_string(n, "group", NULL));
  tsr__graph_destroy(g);
}
END_TEST

START_TEST(test_opsets) {
  tsr__graph *g = new_graph();
  g->opsets = tsr__calloc(g->alloc, 2, sizeof *g->opsets);
  g->n_opsets = 2;
  g->opsets[0] = (tsr__opset){tsr__strdup(g->alloc, ""), 13};
  g->opsets[1] = (tsr__opset){tsr__strdup(g->alloc, "com.microsoft"), 1};
  ck_assert_int_eq(tsr__graph_opset(g, ""), 13);
  ck_assert_int_eq(tsr__graph_opset(g, "ai.onnx"), 13);
  ck_assert_int_eq(tsr__graph_opset(g, NULL), 13);
  ck_assert_int_eq(tsr__graph_opset(g, "com.microsoft"), 1);
  ck_assert_int_eq(tsr__graph_opset(g, "com.other"), -1);
  uint32_t n = add_node(g, "if", "If", "c", "y");
  tsr__graph *sub = add_subgraph(g, n, "then_branch");
  ck_assert_int_eq(tsr__graph_opset(sub, "ai.onnx"), 13); /* from the parent */
  tsr__graph_destroy(g);
}
END_TEST

/* ---- Finalize: errors ----------------------------------------------------------------- */

START_TEST(test_missing_input) {
  tsr__graph *g = new_graph();
  add_node(g, "conv_3", "Conv", "x,w", "y");
  set_inputs(g, "x");
  set_outputs(g, "y");
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL,
                        "node 'conv_3' (Conv): input 1 'w' is not produced by any node, "
                        "initializer or graph input");
  set_init(g, "w");
  ck_assert_ok(tsr__graph_finalize(g));
  tsr__graph_destroy(g);
}
END_TEST

START_TEST(test_unnamed_node_label) {
  tsr__graph *g = new_graph();
  add_node(g, "a", "Relu", "x", "y");
  add_node(g, NULL, "Sigmoid", "y,nope", "z");
  set_inputs(g, "x");
  set_outputs(g, "z");
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL,
                        "node 'Sigmoid_1' (Sigmoid): input 1 'nope'");
  tsr__graph_destroy(g);
}
END_TEST

START_TEST(test_duplicate_producer) {
  tsr__graph *g = new_graph();
  add_node(g, "one", "Relu", "x", "y");
  add_node(g, "two", "Neg", "x", "y");
  set_inputs(g, "x");
  set_outputs(g, "y");
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL,
                        "node 'two' (Neg): output 0 'y' is already produced by node 'one' "
                        "(Relu)");
  tsr__graph_destroy(g);

  /* Twice by one node. */
  g = new_graph();
  add_node(g, "split", "Split", "x", "y,y");
  set_inputs(g, "x");
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL,
                        "output 1 'y' is already produced by node 'split'");
  tsr__graph_destroy(g);
}
END_TEST

START_TEST(test_output_over_constant_or_input) {
  tsr__graph *g = new_graph();
  set_init(g, "w");
  add_node(g, "n", "Relu", "x", "w");
  set_inputs(g, "x");
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL,
                        "node 'n' (Relu): output 0 'w' is also an initializer");
  tsr__graph_destroy(g);

  g = new_graph();
  add_node(g, "n", "Relu", "x", "x");
  set_inputs(g, "x");
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL,
                        "output 0 'x' is also a graph input");
  tsr__graph_destroy(g);
}
END_TEST

START_TEST(test_cycle) {
  tsr__graph *g = new_graph();
  add_node(g, "ok", "Relu", "x", "x2");
  add_node(g, "first", "Add", "x2,b", "a");
  add_node(g, "second", "Mul", "a", "b");
  set_inputs(g, "x");
  set_outputs(g, "a");
  tsr_status st = tsr__graph_finalize(g);
  ck_assert_ptr_nonnull(st);
  ck_assert_int_eq(tsr_status_code_of(st), TSR_STATUS_INVALID_MODEL);
  const char *m = tsr_status_message(st);
  ck_assert_msg(strstr(m, "cycle") && strstr(m, "'first' (Add)") && strstr(m, "'second' (Mul)") &&
                    strstr(m, "'a'") && strstr(m, "'b'") && !strstr(m, "'ok'"),
                "unexpected message: %s", m);
  tsr_status_free(st);
  tsr__graph_destroy(g);

  g = new_graph();
  add_node(g, "self", "Add", "x,y", "y");
  set_inputs(g, "x");
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL,
                        "cycle: node 'self' (Add) reads 'y' from node 'self' (Add)");
  tsr__graph_destroy(g);
}
END_TEST

START_TEST(test_graph_output_missing) {
  tsr__graph *g = new_graph();
  add_node(g, "n", "Relu", "x", "y");
  set_inputs(g, "x");
  set_outputs(g, "y,z");
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL,
                        "graph output 1 'z' is not produced");
  tsr__graph_destroy(g);

  /* Outputs may be inputs or initializers directly. */
  g = new_graph();
  set_init(g, "w");
  set_inputs(g, "x");
  set_outputs(g, "x,w");
  ck_assert_ok(tsr__graph_finalize(g));
  tsr__graph_destroy(g);
}
END_TEST

START_TEST(test_bad_indices) {
  tsr__graph *g = new_graph();
  add_node(g, "n", "Relu", "x", "y");
  set_inputs(g, "x");
  g->nodes[0].inputs[0] = 99;
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL,
                        "node 'n' (Relu): input 0 refers to value 99");
  g->nodes[0].inputs[0] = 0;
  g->inputs[0] = 42;
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL, "graph input 0");
  tsr__graph_destroy(g);
  tsr_test_expect_error(tsr__graph_finalize(NULL), TSR_STATUS_INVALID_ARGUMENT, NULL);
}
END_TEST

/* ---- Finalize: sorting ---------------------------------------------------------------- */

START_TEST(test_sort_reversed_chain) {
  tsr__graph *g = new_graph();
  add_node(g, "n3", "Relu", "c", "d");
  add_node(g, "n2", "Relu", "b", "c");
  add_node(g, "n1", "Relu", "a", "b");
  set_inputs(g, "a");
  set_outputs(g, "d");
  ck_assert_ok(tsr__graph_finalize(g));
  ck_assert_str_eq(node_name(g, 0), "n1");
  ck_assert_str_eq(node_name(g, 1), "n2");
  ck_assert_str_eq(node_name(g, 2), "n3");
  ck_assert_int_eq(g->values[tsr__graph_find_value(g, "b")].producer, 0);
  ck_assert_int_eq(g->values[tsr__graph_find_value(g, "c")].producer, 1);
  ck_assert_int_eq(g->values[tsr__graph_find_value(g, "d")].producer, 2);
  ck_assert_int_eq(g->values[tsr__graph_find_value(g, "a")].producer, -1);
  /* Finalizing again changes nothing. */
  ck_assert_ok(tsr__graph_finalize(g));
  ck_assert_str_eq(node_name(g, 0), "n1");
  ck_assert_int_eq(g->values[tsr__graph_find_value(g, "d")].producer, 2);
  tsr__graph_destroy(g);
}
END_TEST

/* Kahn's algorithm with the lowest ready index first: sorted graphs keep their order and
 * unsorted ones move as little as needed. */
START_TEST(test_sort_stable) {
  tsr__graph *g = new_graph();
  add_node(g, "A", "Relu", "x", "a");
  add_node(g, "B", "Relu", "a", "b");
  add_node(g, "C", "Relu", "a", "c");
  add_node(g, "D", "Add", "b,c", "d");
  add_node(g, "E", "Relu", "x", "e");
  set_inputs(g, "x");
  set_outputs(g, "d,e");
  ck_assert_ok(tsr__graph_finalize(g));
  const char *want1[] = {"A", "B", "C", "D", "E"};
  for (int i = 0; i < 5; i++)
    ck_assert_str_eq(node_name(g, i), want1[i]);
  tsr__graph_destroy(g);

  g = new_graph();
  add_node(g, "A", "Relu", "x", "a");
  add_node(g, "C", "Relu", "b", "c");
  add_node(g, "B", "Relu", "a", "b");
  add_node(g, "D", "Relu", "x", "d");
  set_inputs(g, "x");
  set_outputs(g, "c,d");
  ck_assert_ok(tsr__graph_finalize(g));
  const char *want2[] = {"A", "B", "C", "D"};
  for (int i = 0; i < 4; i++)
    ck_assert_str_eq(node_name(g, i), want2[i]);
  tsr__graph_destroy(g);
}
END_TEST

START_TEST(test_sort_large) {
  enum { N = 20000 };
  tsr__graph *g = new_graph();
  char in[32], out[32], name[32];
  for (int i = N - 1; i >= 0; i--) {
    snprintf(in, sizeof in, "v%d", i);
    snprintf(out, sizeof out, "v%d", i + 1);
    snprintf(name, sizeof name, "n%d", i);
    add_node(g, name, "Relu", in, out);
  }
  set_inputs(g, "v0");
  snprintf(out, sizeof out, "v%d", N);
  set_outputs(g, out);
  ck_assert_ok(tsr__graph_finalize(g));
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "n%d", i);
    ck_assert_str_eq(node_name(g, i), name);
  }
  tsr__graph_destroy(g);
}
END_TEST

/* ---- Subgraphs ------------------------------------------------------------------------ */

/* The If comes first, but its branch reads "xx", which the Relu after it produces. */
START_TEST(test_subgraph_outer_value) {
  tsr__graph *g = new_graph();
  uint32_t ifn = add_node(g, "the_if", "If", "cond", "y");
  add_node(g, "relu", "Relu", "x", "xx");
  set_inputs(g, "x,cond");
  set_outputs(g, "y");
  tsr__graph *sub = add_subgraph(g, ifn, "then_branch");
  add_node(sub, "ident", "Identity", "xx", "o");
  set_outputs(sub, "o");
  tsr__graph *other = add_subgraph(g, ifn, "else_branch");
  set_outputs(other, "x"); /* a branch may hand an outer value straight out */
  ck_assert_ok(tsr__graph_finalize(g));
  ck_assert_str_eq(node_name(g, 0), "relu");
  ck_assert_str_eq(node_name(g, 1), "the_if");
  ck_assert_int_eq(g->values[tsr__graph_find_value(g, "y")].producer, 1);
  /* The subgraph pointer moved with its node. */
  ck_assert_ptr_eq(g->nodes[1].attrs[0].g, sub);
  ck_assert_ptr_eq(sub->parent, g);
  int32_t xx = tsr__graph_find_value(sub, "xx");
  ck_assert_int_ge(xx, 0);
  ck_assert_int_eq(sub->values[xx].outer, 1);
  ck_assert_int_eq(sub->values[tsr__graph_find_value(sub, "o")].outer, 0);
  ck_assert_int_eq(sub->values[tsr__graph_find_value(sub, "o")].producer, 0);
  ck_assert_int_eq(other->values[tsr__graph_find_value(other, "x")].outer, 1);
  tsr__graph_destroy(g);
}
END_TEST

/* Body inputs are the body's own; names two levels up are found; unknown names fail. */
START_TEST(test_subgraph_nested_and_missing) {
  tsr__graph *g = new_graph();
  uint32_t loop = add_node(g, "loop", "Loop", "m,cond", "out");
  add_node(g, "mk", "Relu", "x", "far");
  set_inputs(g, "x,m,cond");
  set_outputs(g, "out");
  tsr__graph *body = add_subgraph(g, loop, "body");
  set_inputs(body, "iter,c_in");
  uint32_t inner_if = add_node(body, "inner_if", "If", "c_in", "b_out");
  set_outputs(body, "c_in,b_out");
  tsr__graph *inner = add_subgraph(body, inner_if, "then_branch");
  add_node(inner, "use", "Add", "far,iter", "i_out");
  set_outputs(inner, "i_out");
  ck_assert_ok(tsr__graph_finalize(g));
  ck_assert_str_eq(node_name(g, 0), "mk"); /* "far" is read two levels down */
  ck_assert_int_eq(inner->values[tsr__graph_find_value(inner, "far")].outer, 1);
  ck_assert_int_eq(inner->values[tsr__graph_find_value(inner, "iter")].outer, 1);
  ck_assert_int_eq(body->values[tsr__graph_find_value(body, "iter")].outer, 0);

  add_node(inner, "bad", "Relu", "nowhere", "z");
  tsr_status st = tsr__graph_finalize(g);
  ck_assert_ptr_nonnull(st);
  const char *m = tsr_status_message(st);
  ck_assert_int_eq(tsr_status_code_of(st), TSR_STATUS_INVALID_MODEL);
  ck_assert_msg(strstr(m, "node 'loop' (Loop): subgraph 'body'") &&
                    strstr(m, "node 'inner_if' (If): subgraph 'then_branch'") &&
                    strstr(m, "node 'bad' (Relu): input 0 'nowhere' is not produced"),
                "unexpected message: %s", m);
  tsr_status_free(st);
  tsr__graph_destroy(g);
}
END_TEST

/* A subgraph that reads its own node's output is a cycle. */
START_TEST(test_subgraph_cycle) {
  tsr__graph *g = new_graph();
  uint32_t ifn = add_node(g, "the_if", "If", "cond", "y");
  set_inputs(g, "cond");
  set_outputs(g, "y");
  tsr__graph *sub = add_subgraph(g, ifn, "then_branch");
  add_node(sub, "ident", "Identity", "y", "o");
  set_outputs(sub, "o");
  tsr_test_expect_error(tsr__graph_finalize(g), TSR_STATUS_INVALID_MODEL,
                        "cycle: node 'the_if' (If) reads 'y' from node 'the_if' (If)");
  tsr__graph_destroy(g);
}
END_TEST

/* ---- Allocation failures -------------------------------------------------------------- */

static tsr_status build_and_finalize(const tsr_allocator *a) {
  tsr__graph *g;
  TSR_RETURN_IF_ERROR(tsr__graph_create(a, &g));
  tsr_status st = NULL;
  char in[16], out[16];
  /* Enough values to build the hash index, unsorted so the sort permutes. */
  for (int i = 30; i >= 0 && !st; i--) {
    snprintf(in, sizeof in, "v%d", i);
    snprintf(out, sizeof out, "v%d", i + 1);
    st = try_add_node(g, NULL, "Relu", in, out, NULL);
  }
  if (!st)
    st = try_set_init(g, "w", 2);
  if (!st)
    st = try_add_node(g, "mul", "Mul", "v31,w", "y", NULL);
  if (!st)
    st = try_set_list(g, "v0", true);
  if (!st)
    st = try_set_list(g, "y", false);
  if (!st)
    st = tsr__graph_finalize(g);
  tsr__graph_destroy(g);
  return st;
}

START_TEST(test_alloc_failures) {
  for (int sticky = 0; sticky < 2; sticky++) {
    size_t n;
    for (n = 1;; n++) {
      fail_alloc f = {n, sticky, 0, 0};
      tsr_allocator a = {&f, fa_alloc, fa_realloc, fa_free};
      tsr_status st = build_and_finalize(&a);
      ck_assert_msg(f.live == 0, "fail at %zu: %ld blocks leaked", n, f.live);
      if (!st)
        break;
      ck_assert_msg(tsr_status_code_of(st) == TSR_STATUS_OUT_OF_MEMORY,
                    "fail at %zu: unexpected %s", n, tsr_status_message(st));
      tsr_status_free(st);
      ck_assert_uint_lt(n, 100000);
    }
    ck_assert_uint_gt(n, 10);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("graph");
  TCase *tc = tcase_create("values");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_intern_and_find);
  tcase_add_test(tc, test_find_many);
  tcase_add_test(tc, test_find_unindexed_tail);
  tcase_add_test(tc, test_add_node_and_attrs);
  tcase_add_test(tc, test_opsets);
  suite_add_tcase(s, tc);

  tc = tcase_create("finalize");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_missing_input);
  tcase_add_test(tc, test_unnamed_node_label);
  tcase_add_test(tc, test_duplicate_producer);
  tcase_add_test(tc, test_output_over_constant_or_input);
  tcase_add_test(tc, test_cycle);
  tcase_add_test(tc, test_graph_output_missing);
  tcase_add_test(tc, test_bad_indices);
  tcase_add_test(tc, test_sort_reversed_chain);
  tcase_add_test(tc, test_sort_stable);
  tcase_add_test(tc, test_sort_large);
  tcase_add_test(tc, test_subgraph_outer_value);
  tcase_add_test(tc, test_subgraph_nested_and_missing);
  tcase_add_test(tc, test_subgraph_cycle);
  tcase_add_test(tc, test_alloc_failures);
  suite_add_tcase(s, tc);
  return tsr_test_run_suite(s) != 0;
}
