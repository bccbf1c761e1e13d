/* Unit suite for core/onnx_import.c. The models come from tests/gen_test_models.py (run with
 * /usr/bin/python3 into a temporary folder before the suite starts); hostile inputs (cut
 * short, random, mutated, deeply nested, failing allocations) are made here. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp */
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/npy.h"
#include "core/onnx_import.h"
#include "tests/harness.h"

static char g_models[512]; /* where the generator wrote the models */

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

/* ---- Helpers -------------------------------------------------------------------------- */

static void model_path(const char *rel, char *buf, size_t size) {
  snprintf(buf, size, "%s/%s", g_models, rel);
}

static void *read_model(const char *rel, size_t *size) {
  char path[1024];
  model_path(rel, path, sizeof path);
  void *data = tsr_test_read_file(path, size);
  ck_assert_msg(data != NULL, "cannot read %s", path);
  return data;
}

/* Imports models/<rel> with its folder as base_dir (or base_dir NULL when !with_base). */
static tsr_status import_file_with(const tsr_allocator *a, const char *rel, bool with_base,
                                   tsr__graph **out) {
  char path[1024], dir[1024];
  model_path(rel, path, sizeof path);
  snprintf(dir, sizeof dir, "%s", path);
  *strrchr(dir, '/') = '\0';
  size_t size;
  void *data = tsr_test_read_file(path, &size);
  ck_assert_msg(data != NULL, "cannot read %s", path);
  tsr_status st = tsr__onnx_import(a, data, size, with_base ? dir : NULL, out);
  free(data);
  return st;
}

static tsr__graph *import_ok(const char *rel) {
  tsr__graph *g = NULL;
  ck_assert_ok(import_file_with(NULL, rel, true, &g));
  ck_assert_ptr_nonnull(g);
  return g;
}

static void import_fails(const char *rel, tsr_status_code code, const char *needle) {
  tsr__graph *g = (tsr__graph *)1;
  tsr_status st = import_file_with(NULL, rel, true, &g);
  ck_assert_ptr_null(g);
  tsr_test_expect_error(st, code, needle);
}

static const tsr__value *value(const tsr__graph *g, const char *name) {
  int32_t i = tsr__graph_find_value(g, name);
  ck_assert_msg(i >= 0, "no value '%s'", name);
  return &g->values[i];
}

static const tsr__node *node_named(const tsr__graph *g, const char *name) {
  for (uint32_t i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0)
      return &g->nodes[i];
  ck_abort_msg("no node '%s'", name);
  return NULL;
}

/* ---- Well-formed models --------------------------------------------------------------- */

START_TEST(test_simple_model) {
  tsr__graph *g = import_ok("simple.onnx");
  ck_assert_int_eq(g->ir_version, 8);
  ck_assert_int_eq(tsr__graph_opset(g, ""), 13);
  ck_assert_str_eq(g->name, "simple");
  ck_assert_ptr_null(g->parent);
  /* W is an initializer, so the only input is X. */
  ck_assert_uint_eq(g->n_inputs, 1);
  const tsr__value *x = &g->values[g->inputs[0]];
  ck_assert_str_eq(x->name, "X");
  ck_assert_int_eq(x->dtype, TSR_DTYPE_FLOAT32);
  ck_assert_int_eq(x->rank, 2);
  ck_assert_int_eq(x->dims[0].value, -1);
  ck_assert_str_eq(x->dims[0].param, "N");
  ck_assert_int_eq(x->dims[1].value, 3);
  ck_assert_ptr_null(x->dims[1].param);
  ck_assert_uint_eq(g->n_outputs, 1);
  ck_assert_str_eq(g->values[g->outputs[0]].name, "Y");

  const tsr__value *w = value(g, "W");
  ck_assert_ptr_nonnull(w->init);
  ck_assert_int_eq(w->init->dtype, TSR_DTYPE_FLOAT32);
  ck_assert_int_eq(w->init->rank, 1);
  ck_assert_int_eq(w->init->dims[0], 3);
  ck_assert_uint_eq(w->init->nbytes, 12);
  const float *wd = w->init->data;
  ck_assert(wd[0] == 1 && wd[1] == 2 && wd[2] == 3);
  ck_assert_int_eq(w->rank, 1);
  ck_assert_int_eq(w->dims[0].value, 3);

  ck_assert_uint_eq(g->n_nodes, 2);
  ck_assert_str_eq(g->nodes[0].name, "add_0");
  ck_assert_str_eq(g->nodes[0].op_type, "Add");
  ck_assert_str_eq(g->nodes[0].domain, "");
  ck_assert_int_eq(g->nodes[0].opset, 13);
  ck_assert_str_eq(g->nodes[1].name, "Relu_1"); /* unnamed in the file */
  ck_assert_int_eq(g->nodes[1].opset, 13);
  const tsr__value *hidden = value(g, "hidden"); /* typed through value_info */
  ck_assert_int_eq(hidden->dtype, TSR_DTYPE_FLOAT32);
  ck_assert_int_eq(hidden->rank, 2);
  ck_assert_int_eq(hidden->producer, 0);
  ck_assert_int_eq(value(g, "Y")->producer, 1);
  tsr__graph_destroy(g);
}
END_TEST

START_TEST(test_constants_become_values) {
  tsr__graph *g = import_ok("constant.onnx");
  ck_assert_uint_eq(g->n_nodes, 1);
  ck_assert_str_eq(g->nodes[0].op_type, "Add");
  const tsr__value *c1 = value(g, "c1");
  ck_assert_ptr_nonnull(c1->init);
  ck_assert_int_eq(c1->init->rank, 2);
  ck_assert_int_eq(c1->rank, 2);
  ck_assert_int_eq(c1->producer, -1);
  ck_assert(((float *)c1->init->data)[3] == 4.0f);
  ck_assert_int_eq(g->nodes[0].inputs[1], tsr__graph_find_value(g, "c1"));

  const tsr__value *c2 = value(g, "c2");
  ck_assert_int_eq(c2->init->dtype, TSR_DTYPE_FLOAT32);
  ck_assert_int_eq(c2->init->rank, 0);
  ck_assert_uint_eq(c2->init->nbytes, 4);
  ck_assert(*(float *)c2->init->data == 1.5f);

  const tsr__value *c3 = value(g, "c3");
  ck_assert_int_eq(c3->init->rank, 1);
  ck_assert_int_eq(c3->init->dims[0], 3);
  ck_assert(((float *)c3->init->data)[2] == 3.0f);

  const tsr__value *c4 = value(g, "c4");
  ck_assert_int_eq(c4->init->dtype, TSR_DTYPE_INT64);
  ck_assert_int_eq(c4->init->rank, 0);
  ck_assert_int_eq(*(int64_t *)c4->init->data, 7);

  const tsr__value *c5 = value(g, "c5");
  ck_assert_int_eq(c5->init->dtype, TSR_DTYPE_INT64);
  ck_assert_int_eq(c5->init->dims[0], 2);
  ck_assert_int_eq(((int64_t *)c5->init->data)[1], 5);
  tsr__graph_destroy(g);

  import_fails("constant_string.onnx", TSR_STATUS_UNSUPPORTED, "'value_string'");
}
END_TEST

START_TEST(test_every_attribute_type) {
  tsr__graph *g = import_ok("attrs.onnx");
  ck_assert_uint_eq(g->n_nodes, 1);
  const tsr__node *n = &g->nodes[0];
  ck_assert_str_eq(n->name, "all_attrs");
  ck_assert_str_eq(n->domain, "com.tessera.test");
  ck_assert_int_eq(n->opset, -1); /* the model does not import that domain */
  ck_assert_uint_eq(n->n_attrs, 8);

  const tsr__attr *a = tsr__node_attr(n, "f");
  ck_assert_int_eq(a->type, 1);
  ck_assert_float_eq(a->f, 0.25f);
  ck_assert_int_eq(tsr__node_attr_int(n, "i", 0), -42);
  a = tsr__node_attr(n, "s");
  ck_assert_int_eq(a->type, 3);
  ck_assert_uint_eq(a->s_len, 5);
  ck_assert_str_eq(a->s, "hello");
  a = tsr__node_attr(n, "t");
  ck_assert_int_eq(a->type, 4);
  ck_assert_int_eq(a->t->dtype, TSR_DTYPE_INT64);
  ck_assert_int_eq(a->t->dims[0], 3);
  ck_assert_int_eq(((int64_t *)a->t->data)[2], 9);
  a = tsr__node_attr(n, "floats");
  ck_assert_int_eq(a->type, 6);
  ck_assert_uint_eq(a->count, 2);
  ck_assert(a->floats[0] == 1.5f && a->floats[1] == -2.0f);
  a = tsr__node_attr(n, "ints");
  ck_assert_int_eq(a->type, 7);
  ck_assert_uint_eq(a->count, 3);
  ck_assert_int_eq(a->ints[2], 3);
  a = tsr__node_attr(n, "strings");
  ck_assert_int_eq(a->type, 8);
  ck_assert_uint_eq(a->count, 2);
  ck_assert_str_eq(a->strings[0], "a");
  ck_assert_str_eq(a->strings[1], "bc");
  a = tsr__node_attr(n, "g");
  ck_assert_int_eq(a->type, 5);
  ck_assert_ptr_nonnull(a->g);
  ck_assert_ptr_eq(a->g->parent, g);
  ck_assert_str_eq(a->g->name, "body");
  ck_assert_uint_eq(a->g->n_nodes, 1);
  ck_assert_str_eq(a->g->nodes[0].op_type, "Identity");
  ck_assert_int_eq(a->g->nodes[0].opset, 13);
  ck_assert_uint_eq(a->g->n_inputs, 1);
  ck_assert_str_eq(a->g->values[a->g->inputs[0]].name, "si");
  ck_assert_str_eq(a->g->values[a->g->outputs[0]].name, "so");
  tsr__graph_destroy(g);

  import_fails("attr_tensors.onnx", TSR_STATUS_UNSUPPORTED,
               "node 'foo' (Foo): attribute 'ts' has type TENSORS");
}
END_TEST

START_TEST(test_if_reads_outer_value) {
  tsr__graph *g = import_ok("if_outer.onnx");
  ck_assert_uint_eq(g->n_nodes, 2);
  ck_assert_str_eq(g->nodes[0].name, "relu"); /* sorted before the If that reads its output */
  ck_assert_str_eq(g->nodes[1].name, "the_if");
  const tsr__graph *then_g = tsr__node_attr(&g->nodes[1], "then_branch")->g;
  const tsr__graph *else_g = tsr__node_attr(&g->nodes[1], "else_branch")->g;
  ck_assert_ptr_eq(then_g->parent, g);
  ck_assert_int_eq(value(then_g, "xx")->outer, 1);
  ck_assert_int_eq(value(else_g, "xx")->outer, 1);
  ck_assert_int_eq(value(then_g, "t_out")->outer, 0);
  ck_assert_int_eq(value(then_g, "t_out")->producer, 0);
  ck_assert_uint_eq(then_g->n_inputs, 0);
  ck_assert_int_eq(value(g, "Y")->producer, 1);
  tsr__graph_destroy(g);

  g = import_ok("nested_if.onnx");
  ck_assert_str_eq(g->nodes[0].name, "relu");
  const tsr__graph *mid = tsr__node_attr(node_named(g, "outer_if"), "then_branch")->g;
  const tsr__graph *inner = tsr__node_attr(node_named(mid, "inner_if"), "then_branch")->g;
  ck_assert_ptr_eq(inner->parent, mid);
  ck_assert_int_eq(value(inner, "xx")->outer, 1);
  /* The middle branch lists the name too, as one its subtree reads from outside. */
  ck_assert_int_eq(value(mid, "xx")->outer, 1);
  ck_assert_int_eq(value(mid, "xx")->producer, -1);
  tsr__graph_destroy(g);

  import_fails("if_missing.onnx", TSR_STATUS_INVALID_MODEL,
               "node 'bad_if' (If): subgraph 'then_branch': node 'Identity_0' (Identity): "
               "input 0 'nowhere' is not produced");
}
END_TEST

/* Initializers of every dtype, once as raw_data and once in the typed fields. */
START_TEST(test_initializer_dtypes) {
  static const float f32[6] = {-2.5f, -1, 0, 1, 2.25f, 3e38f};
  static const double f64[6] = {-2.5, -1, 0, 1, 2.25, 1e300};
  static const uint16_t f16[6] = {0xC100, 0xBC00, 0, 0x3C00, 0x4080, 0x7BFF};
  static const uint16_t bf16[6] = {0xC020, 0xBF80, 0, 0x3F80, 0x4010, 0x4040};
  static const int8_t i8[6] = {-128, -1, 0, 1, 2, 127};
  static const uint8_t u8[6] = {0, 1, 2, 128, 254, 255};
  static const int16_t i16[6] = {-32768, -1, 0, 1, 2, 32767};
  static const uint16_t u16[6] = {0, 1, 2, 32768, 65534, 65535};
  static const int32_t i32[6] = {INT32_MIN, -1, 0, 1, 2, INT32_MAX};
  static const uint32_t u32[6] = {0, 1, 2, 2147483648u, 4294967294u, 4294967295u};
  static const int64_t i64[6] = {INT64_MIN, -1, 0, 1, 2, INT64_MAX};
  static const uint64_t u64[6] = {0, 1, 2, 1ull << 63, UINT64_MAX - 1, UINT64_MAX};
  static const uint8_t b[6] = {1, 0, 1, 1, 0, 0};
  static const struct {
    const char *name;
    int32_t dtype;
    const void *data;
    size_t nbytes;
  } cases[] = {
      {"t_float32", TSR_DTYPE_FLOAT32, f32, sizeof f32},
      {"t_float64", TSR_DTYPE_FLOAT64, f64, sizeof f64},
      {"t_float16", TSR_DTYPE_FLOAT16, f16, sizeof f16},
      {"t_bfloat16", TSR_DTYPE_BFLOAT16, bf16, sizeof bf16},
      {"t_int8", TSR_DTYPE_INT8, i8, sizeof i8},
      {"t_uint8", TSR_DTYPE_UINT8, u8, sizeof u8},
      {"t_int16", TSR_DTYPE_INT16, i16, sizeof i16},
      {"t_uint16", TSR_DTYPE_UINT16, u16, sizeof u16},
      {"t_int32", TSR_DTYPE_INT32, i32, sizeof i32},
      {"t_uint32", TSR_DTYPE_UINT32, u32, sizeof u32},
      {"t_int64", TSR_DTYPE_INT64, i64, sizeof i64},
      {"t_uint64", TSR_DTYPE_UINT64, u64, sizeof u64},
      {"t_bool", TSR_DTYPE_BOOL, b, sizeof b},
  };
  const char *files[] = {"dtypes_raw.onnx", "dtypes_typed.onnx"};
  for (int f = 0; f < 2; f++) {
    tsr__graph *g = import_ok(files[f]);
    ck_assert_uint_eq(g->n_inputs, 0);
    ck_assert_uint_eq(g->n_outputs, 13);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      const tsr__value *v = value(g, cases[i].name);
      ck_assert_msg(v->init != NULL, "%s: %s has no data", files[f], cases[i].name);
      ck_assert_int_eq(v->init->dtype, cases[i].dtype);
      ck_assert_int_eq(v->init->rank, 2);
      ck_assert_int_eq(v->init->dims[0], 2);
      ck_assert_int_eq(v->init->dims[1], 3);
      ck_assert_uint_eq(v->init->nbytes, cases[i].nbytes);
      ck_assert_msg(memcmp(v->init->data, cases[i].data, cases[i].nbytes) == 0,
                    "%s: %s has the wrong bytes", files[f], cases[i].name);
      ck_assert_int_eq(v->dtype, cases[i].dtype);
    }
    tsr__graph_destroy(g);
  }
}
END_TEST

START_TEST(test_external_data) {
  tsr__graph *g = import_ok("ext/model.onnx");
  const tsr__value *w = value(g, "W");
  ck_assert_ptr_nonnull(w->init);
  ck_assert_uint_eq(w->init->nbytes, 16);
  const float *d = w->init->data;
  ck_assert(d[0] == 0.5f && d[1] == 1.5f && d[2] == 2.5f && d[3] == 3.5f);
  ck_assert_uint_eq(g->n_inputs, 1);
  tsr__graph_destroy(g);

  /* No base directory: loading from memory cannot reach the file. */
  tsr__graph *none = (tsr__graph *)1;
  tsr_test_expect_error(import_file_with(NULL, "ext/model.onnx", false, &none),
                        TSR_STATUS_INVALID_MODEL, "no base directory");
  ck_assert_ptr_null(none);

  import_fails("ext/short.onnx", TSR_STATUS_INVALID_MODEL, "past the end");
  import_fails("ext/missing.onnx", TSR_STATUS_NOT_FOUND, "nothere.bin");
}
END_TEST

START_TEST(test_external_data_escapes) {
  import_fails("ext_dotdot/model.onnx", TSR_STATUS_INVALID_MODEL,
               "location '../outside.bin' escapes the model directory");
  import_fails("ext_abs/model.onnx", TSR_STATUS_INVALID_MODEL,
               "location '/etc/passwd' escapes the model directory");
  import_fails("ext_symlink/model.onnx", TSR_STATUS_INVALID_MODEL,
               "location 'link.bin' escapes the model directory");
}
END_TEST

/* ---- Models that are wrong ------------------------------------------------------------ */

/* Records the largest single request; never fails. */
typedef struct max_alloc {
  size_t max;
} max_alloc;

static void *ma_alloc(void *self, size_t size) {
  max_alloc *m = self;
  if (size > m->max)
    m->max = size;
  return malloc(size);
}

static void *ma_realloc(void *self, void *p, size_t size) {
  max_alloc *m = self;
  if (size > m->max)
    m->max = size;
  return realloc(p, size);
}

static void ma_free(void *self, void *p) { free(p); }

/* Dims are only a claim: the bytes behind them are checked before anything is allocated, so a
 * tiny file cannot make the importer ask for terabytes. */
START_TEST(test_huge_dims_without_data) {
  const char *files[] = {"huge_dims_typed.onnx", "huge_dims_raw.onnx"};
  const char *needles[] = {"tensor 'W' has 0 values in float_data",
                           "tensor 'W': raw_data has 8 bytes, but float32 [1099511627776] needs "
                           "4398046511104"};
  for (int i = 0; i < 2; i++) {
    max_alloc m = {0};
    tsr_allocator a = {&m, ma_alloc, ma_realloc, ma_free};
    tsr__graph *g = NULL;
    tsr_test_expect_error(import_file_with(&a, files[i], true, &g), TSR_STATUS_INVALID_MODEL,
                          needles[i]);
    ck_assert_uint_lt(m.max, 1u << 20);
  }
}
END_TEST

START_TEST(test_bad_models) {
  import_fails("string_init.onnx", TSR_STATUS_UNSUPPORTED, "tensor 'names' holds strings");
  import_fails("sparse_init.onnx", TSR_STATUS_UNSUPPORTED, "sparse initializer 'sp'");
  import_fails("bad_raw_len.onnx", TSR_STATUS_INVALID_MODEL,
               "tensor 'W': raw_data has 10 bytes, but float32 [3] needs 12");
  import_fails("bad_typed_len.onnx", TSR_STATUS_INVALID_MODEL,
               "tensor 'W' has 2 values in int64_data");
  import_fails("missing_input.onnx", TSR_STATUS_INVALID_MODEL,
               "node 'conv_3' (Conv): input 1 'w' is not produced by any node, initializer or "
               "graph input");
  import_fails("cycle.onnx", TSR_STATUS_INVALID_MODEL, "cycle");
  import_fails("dup_producer.onnx", TSR_STATUS_INVALID_MODEL,
               "node 'two' (Neg): output 0 'Y' is already produced by node 'one' (Relu)");
  import_fails("output_missing.onnx", TSR_STATUS_INVALID_MODEL, "graph output 0 'Z'");
  import_fails("no_graph.onnx", TSR_STATUS_INVALID_MODEL, "no graph");
}
END_TEST

START_TEST(test_bad_bytes) {
  tsr__graph *g = (tsr__graph *)1;
  tsr_test_expect_error(tsr__onnx_import(NULL, "", 0, NULL, &g), TSR_STATUS_INVALID_MODEL,
                        "no graph");
  ck_assert_ptr_null(g);
  tsr_test_expect_error(tsr__onnx_import(NULL, NULL, 0, NULL, &g), TSR_STATUS_INVALID_MODEL,
                        "no graph");
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x01};
  tsr_test_expect_error(tsr__onnx_import(NULL, junk, sizeof junk, NULL, &g),
                        TSR_STATUS_INVALID_MODEL, "not a valid ONNX model (protobuf parse failed)");
  /* Field 7 (graph) claims 100 bytes, 2 follow. */
  static const uint8_t short_len[] = {0x3a, 100, 0x0a, 0x00};
  tsr_test_expect_error(tsr__onnx_import(NULL, short_len, sizeof short_len, NULL, &g),
                        TSR_STATUS_INVALID_MODEL, "protobuf parse failed");
  tsr_test_expect_error(tsr__onnx_import(NULL, junk, sizeof junk, NULL, NULL),
                        TSR_STATUS_INVALID_ARGUMENT, NULL);
}
END_TEST

/* Appends a varint / a length-delimited field to a growing buffer. */
typedef struct buf {
  uint8_t *p;
  size_t n, cap;
} buf;

static void put(buf *b, const void *data, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    ck_assert_ptr_nonnull(b->p);
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
}

static void put_varint(buf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  put(b, tmp, n);
}

/* Returns a new buffer holding field `field` (wire type 2) wrapping `inner`. */
static buf wrap(unsigned field, const buf *inner) {
  buf b = {0};
  put_varint(&b, (uint64_t)field << 3 | 2);
  put_varint(&b, inner->n);
  if (inner->n)
    put(&b, inner->p, inner->n);
  return b;
}

/* A model of subgraphs nested `levels` deep: Graph{node{attribute{g{Graph ...}}}}. */
static buf nested_model(int levels) {
  buf cur = {0};
  for (int i = 0; i < levels; i++) {
    buf attr = wrap(6, &cur);   /* AttributeProto.g */
    buf node = wrap(5, &attr);  /* NodeProto.attribute */
    buf graph = wrap(1, &node); /* GraphProto.node */
    free(cur.p);
    free(attr.p);
    free(node.p);
    cur = graph;
  }
  buf model = wrap(7, &cur); /* ModelProto.graph */
  free(cur.p);
  return model;
}

/* protobuf-c recurses without a limit; the importer must refuse such nesting first. */
START_TEST(test_deep_nesting) {
  buf m = nested_model(1000);
  tsr__graph *g = NULL;
  tsr_test_expect_error(tsr__onnx_import(NULL, m.p, m.n, NULL, &g), TSR_STATUS_INVALID_MODEL,
                        "nested more than");
  ck_assert_ptr_null(g);
  free(m.p);
  /* Within the limit the nesting is decoded, and fails for the right reason. */
  m = nested_model(10);
  tsr_test_expect_error(tsr__onnx_import(NULL, m.p, m.n, NULL, &g), TSR_STATUS_INVALID_MODEL,
                        "has no op_type");
  free(m.p);
}
END_TEST

/* ---- Hostile bytes -------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng_state >> 33);
}

static int fuzz_iterations(int dflt) {
  const char *e = getenv("TSR_FUZZ_ITERATIONS");
  return e && atoi(e) > 0 ? atoi(e) : dflt;
}

/* Imports bytes that may or may not be a model: success or an error, never a crash. */
static void import_any(const void *data, size_t size, const char *base_dir) {
  tsr__graph *g = NULL;
  tsr_status st = tsr__onnx_import(NULL, data, size, base_dir, &g);
  if (st) {
    ck_assert_ptr_null(g);
    ck_assert_int_ne(tsr_status_code_of(st), TSR_STATUS_INTERNAL);
    tsr_status_free(st);
  } else {
    ck_assert_ptr_nonnull(g);
    tsr__graph_destroy(g);
  }
}

START_TEST(test_truncated_models) {
  const char *files[] = {"attrs.onnx", "if_outer.onnx", "constant.onnx", "dtypes_typed.onnx"};
  char dir[1024];
  model_path("", dir, sizeof dir);
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    size_t size;
    uint8_t *data = read_model(files[f], &size);
    for (size_t n = 0; n < size; n++) {
      /* A fresh copy of exactly n bytes, so that ASan sees any read past the end. */
      uint8_t *cut = malloc(n ? n : 1);
      memcpy(cut, data, n);
      import_any(cut, n, dir);
      free(cut);
    }
    tsr__graph *g = NULL;
    ck_assert_ok(tsr__onnx_import(NULL, data, size, dir, &g));
    tsr__graph_destroy(g);
    free(data);
  }
}
END_TEST

START_TEST(test_random_bytes) {
  int iters = fuzz_iterations(2000);
  for (int i = 0; i < iters; i++) {
    size_t n = rng() % 300;
    uint8_t *data = malloc(n ? n : 1);
    for (size_t k = 0; k < n; k++)
      data[k] = (uint8_t)rng();
    /* Make some of them start like a model with a graph, to get past the first field. */
    if (n > 2 && (i & 1)) {
      data[0] = 0x3a;
      data[1] = (uint8_t)((n - 2) & 0x7f);
    }
    import_any(data, n, NULL);
    free(data);
  }
}
END_TEST

/* Valid models with a few bytes changed reach far deeper than random bytes do. */
START_TEST(test_mutated_models) {
  const char *files[] = {"attrs.onnx",  "if_outer.onnx", "nested_if.onnx",
                         "simple.onnx", "constant.onnx", "dtypes_typed.onnx"};
  char dir[1024];
  model_path("", dir, sizeof dir);
  int iters = fuzz_iterations(2000);
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    size_t size;
    uint8_t *data = read_model(files[f], &size);
    uint8_t *copy = malloc(size);
    for (int i = 0; i < iters; i++) {
      memcpy(copy, data, size);
      int changes = 1 + (int)(rng() % 4);
      for (int c = 0; c < changes; c++) {
        size_t at = rng() % size;
        switch (rng() % 3) {
        case 0: copy[at] = (uint8_t)rng(); break;
        case 1: copy[at] ^= (uint8_t)(1u << (rng() % 8)); break;
        default: copy[at] = (uint8_t)(copy[at] + 1); break;
        }
      }
      import_any(copy, size, dir);
    }
    free(copy);
    free(data);
  }
}
END_TEST

/* Every allocation the importer makes may fail: each must give a clean error and free all. */
START_TEST(test_alloc_failures) {
  const char *files[] = {"attrs.onnx",  "if_outer.onnx",  "nested_if.onnx",   "constant.onnx",
                         "simple.onnx", "ext/model.onnx", "dtypes_typed.onnx"};
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    for (int sticky = 0; sticky < 2; sticky++) {
      size_t n;
      for (n = 1;; n++) {
        fail_alloc fa = {n, sticky, 0, 0};
        tsr_allocator a = {&fa, fa_alloc, fa_realloc, fa_free};
        tsr__graph *g = NULL;
        tsr_status st = import_file_with(&a, files[f], true, &g);
        if (!st) {
          ck_assert_ptr_nonnull(g);
          tsr__graph_destroy(g);
          ck_assert_msg(fa.live == 0, "%s: %ld blocks leaked after success", files[f], fa.live);
          break;
        }
        tsr_status_code code = tsr_status_code_of(st);
        ck_assert_msg(code == TSR_STATUS_OUT_OF_MEMORY || code == TSR_STATUS_INVALID_MODEL,
                      "%s, allocation %zu failing: %s", files[f], n, tsr_status_message(st));
        tsr_status_free(st);
        ck_assert_ptr_null(g);
        ck_assert_msg(fa.live == 0, "%s, allocation %zu failing: %ld blocks leaked", files[f], n,
                      fa.live);
        ck_assert_uint_lt(n, 100000);
      }
      ck_assert_uint_gt(n, 5);
    }
  }
}
END_TEST

/* ---- TensorProto files ---------------------------------------------------------------- */

START_TEST(test_parse_tensor) {
  size_t size;
  void *data = read_model("tensor_raw.pb", &size);
  tsr__tensor_data *t = NULL;
  char *name = NULL;
  ck_assert_ok(tsr__onnx_parse_tensor(NULL, data, size, &t, &name));
  ck_assert_str_eq(name, "input_0");
  ck_assert_int_eq(t->dtype, TSR_DTYPE_FLOAT32);
  ck_assert_int_eq(t->rank, 2);
  ck_assert_uint_eq(t->nbytes, 16);
  ck_assert(((float *)t->data)[3] == 4.0f);
  tsr__tensor_data_free(tsr__default_allocator(), t);
  free(name);
  free(data);

  data = read_model("tensor_typed.pb", &size);
  ck_assert_ok(tsr__onnx_parse_tensor(NULL, data, size, &t, NULL));
  ck_assert_int_eq(t->dtype, TSR_DTYPE_INT64);
  ck_assert_int_eq(t->dims[0], 3);
  ck_assert_int_eq(((int64_t *)t->data)[1], -6);
  tsr__tensor_data_free(NULL, t);

  /* Every allocation may fail. */
  for (size_t n = 1;; n++) {
    fail_alloc fa = {n, false, 0, 0};
    tsr_allocator a = {&fa, fa_alloc, fa_realloc, fa_free};
    tsr_status st = tsr__onnx_parse_tensor(&a, data, size, &t, &name);
    if (!st) {
      tsr__tensor_data_free(&a, t);
      tsr__free(&a, name);
      ck_assert_int_eq(fa.live, 0);
      break;
    }
    ck_assert_int_eq(tsr_status_code_of(st), TSR_STATUS_OUT_OF_MEMORY);
    tsr_status_free(st);
    ck_assert_ptr_null(t);
    ck_assert_ptr_null(name);
    ck_assert_int_eq(fa.live, 0);
  }
  /* Every prefix: an error or a tensor, never a crash. */
  for (size_t n = 0; n < size; n++) {
    uint8_t *cut = malloc(n ? n : 1);
    memcpy(cut, data, n);
    tsr_status st = tsr__onnx_parse_tensor(NULL, cut, n, &t, &name);
    if (st) {
      tsr_status_free(st);
    } else {
      tsr__tensor_data_free(NULL, t);
      free(name);
    }
    free(cut);
  }
  free(data);

  static const uint8_t junk[] = {0x0f, 0x01};
  tsr_test_expect_error(tsr__onnx_parse_tensor(NULL, junk, sizeof junk, &t, &name),
                        TSR_STATUS_INVALID_MODEL, "not a valid ONNX tensor");
  ck_assert_ptr_null(t);
  /* An empty message has no data type. */
  tsr_test_expect_error(tsr__onnx_parse_tensor(NULL, "", 0, &t, &name), TSR_STATUS_INVALID_MODEL,
                        "has no data type");
}
END_TEST

/* ---- Suite ---------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(g_models, sizeof g_models, "%s/tessera-onnx-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_models)) {
    perror("mkdtemp");
    return 1;
  }
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/gen_test_models.py' '%s'", tsr_test_srcdir(),
           g_models);
  if (system(cmd) != 0) {
    fprintf(stderr, "test_onnx: '%s' failed (needs /usr/bin/python3 with onnx and numpy)\n", cmd);
    nftw(g_models, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 1;
  }

  Suite *s = suite_create("onnx");
  TCase *tc = tcase_create("models");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_simple_model);
  tcase_add_test(tc, test_constants_become_values);
  tcase_add_test(tc, test_every_attribute_type);
  tcase_add_test(tc, test_if_reads_outer_value);
  tcase_add_test(tc, test_initializer_dtypes);
  tcase_add_test(tc, test_external_data);
  tcase_add_test(tc, test_external_data_escapes);
  tcase_add_test(tc, test_bad_models);
  tcase_add_test(tc, test_huge_dims_without_data);
  tcase_add_test(tc, test_bad_bytes);
  tcase_add_test(tc, test_deep_nesting);
  tcase_add_test(tc, test_parse_tensor);
  suite_add_tcase(s, tc);

  tc = tcase_create("hostile");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_truncated_models);
  tcase_add_test(tc, test_random_bytes);
  tcase_add_test(tc, test_mutated_models);
  tcase_add_test(tc, test_alloc_failures);
  suite_add_tcase(s, tc);

  int failed = tsr_test_run_suite(s);
  nftw(g_models, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return failed != 0;
}
