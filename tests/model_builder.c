#include "tests/model_builder.h"

#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#define MAX_ITEMS 256

struct mb_model {
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  Onnx__OperatorSetIdProto opset;
  Onnx__OperatorSetIdProto *opsets[1];
  Onnx__NodeProto *nodes[MAX_ITEMS];
  Onnx__ValueInfoProto *inputs[MAX_ITEMS], *outputs[MAX_ITEMS];
  Onnx__TensorProto *inits[MAX_ITEMS];
  void *owned[8 * MAX_ITEMS];
  size_t n_owned;
  mb_model *children[16]; /* subgraph builders whose graphs attributes point at */
  size_t n_children;
};

static void *own(mb_model *m, void *p) {
  if (!p || m->n_owned == sizeof m->owned / sizeof m->owned[0]) abort();
  m->owned[m->n_owned++] = p;
  return p;
}
static void *zalloc(mb_model *m, size_t size) { return own(m, calloc(1, size ? size : 1)); }
static char *sdup(mb_model *m, const char *s) { return own(m, strdup(s)); }

mb_model *mb_new(int64_t opset) {
  mb_model *m = calloc(1, sizeof *m);
  onnx__model_proto__init(&m->model);
  onnx__graph_proto__init(&m->graph);
  onnx__operator_set_id_proto__init(&m->opset);
  m->opset.domain = sdup(m, "");
  m->opset.has_version = 1;
  m->opset.version = opset;
  m->opsets[0] = &m->opset;
  m->model.has_ir_version = 1;
  m->model.ir_version = 8;
  m->model.n_opset_import = 1;
  m->model.opset_import = m->opsets;
  m->model.graph = &m->graph;
  m->graph.name = sdup(m, "test");
  m->graph.node = m->nodes;
  m->graph.input = m->inputs;
  m->graph.output = m->outputs;
  m->graph.initializer = m->inits;
  return m;
}

static Onnx__ValueInfoProto *value_info(mb_model *m, const char *name, int32_t dtype, size_t rank,
                                        const int64_t *dims) {
  Onnx__ValueInfoProto *vi = zalloc(m, sizeof *vi);
  onnx__value_info_proto__init(vi);
  vi->name = sdup(m, name);
  Onnx__TypeProto *tp = zalloc(m, sizeof *tp);
  onnx__type_proto__init(tp);
  Onnx__TypeProto__Tensor *tt = zalloc(m, sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1;
  tt->elem_type = dtype;
  if (dims) {
    Onnx__TensorShapeProto *sh = zalloc(m, sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = rank;
    sh->dim = zalloc(m, (rank + 1) * sizeof *sh->dim);
    for (size_t i = 0; i < rank; i++) {
      Onnx__TensorShapeProto__Dimension *d = zalloc(m, sizeof *d);
      onnx__tensor_shape_proto__dimension__init(d);
      if (dims[i] < 0) {
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        d->dim_param = sdup(m, "N");
      } else {
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d->dim_value = dims[i];
      }
      sh->dim[i] = d;
    }
    tt->shape = sh;
  }
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  vi->type = tp;
  return vi;
}

void mb_input(mb_model *m, const char *name, int32_t dtype, size_t rank, const int64_t *dims) {
  m->inputs[m->graph.n_input++] = value_info(m, name, dtype, rank, dims ? dims : (int64_t[]){0});
}

void mb_output(mb_model *m, const char *name, int32_t dtype) {
  m->outputs[m->graph.n_output++] = value_info(m, name, dtype, 0, NULL);
}

static void add_init(mb_model *m, const char *name, int32_t dtype, size_t rank,
                     const int64_t *dims, const void *data, size_t esize) {
  Onnx__TensorProto *t = zalloc(m, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = sdup(m, name);
  t->has_data_type = 1;
  t->data_type = dtype;
  t->n_dims = rank;
  t->dims = zalloc(m, (rank + 1) * sizeof(int64_t));
  size_t count = 1;
  for (size_t i = 0; i < rank; i++) {
    t->dims[i] = dims[i];
    count *= (size_t)dims[i];
  }
  t->has_raw_data = 1;
  t->raw_data.len = count * esize;
  t->raw_data.data = zalloc(m, count * esize);
  memcpy(t->raw_data.data, data, count * esize);
  m->inits[m->graph.n_initializer++] = t;
}

void mb_init_f32(mb_model *m, const char *name, size_t rank, const int64_t *dims,
                 const float *data) {
  add_init(m, name, 1, rank, dims, data, 4);
}

void mb_init_i64(mb_model *m, const char *name, size_t rank, const int64_t *dims,
                 const int64_t *data) {
  add_init(m, name, 7, rank, dims, data, 8);
}

static size_t split(mb_model *m, const char *list, char ***out) {
  size_t n = 0;
  char **items = zalloc(m, 64 * sizeof *items);
  if (*list) {
    char *copy = sdup(m, list), *p = copy;
    for (;;) {
      char *comma = strchr(p, ',');
      if (comma) *comma = '\0';
      items[n++] = p;
      if (!comma) break;
      p = comma + 1;
    }
  }
  *out = items;
  return n;
}

void mb_node(mb_model *m, const char *op, const char *name, const char *inputs,
             const char *outputs) {
  Onnx__NodeProto *n = zalloc(m, sizeof *n);
  onnx__node_proto__init(n);
  n->op_type = sdup(m, op);
  n->name = sdup(m, name);
  n->domain = sdup(m, "");
  n->n_input = split(m, inputs, &n->input);
  n->n_output = split(m, outputs, &n->output);
  n->attribute = zalloc(m, 32 * sizeof *n->attribute);
  m->nodes[m->graph.n_node++] = n;
}

static Onnx__AttributeProto *new_attr(mb_model *m, const char *name,
                                      Onnx__AttributeProto__AttributeType type) {
  Onnx__NodeProto *n = m->nodes[m->graph.n_node - 1];
  Onnx__AttributeProto *a = zalloc(m, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = sdup(m, name);
  a->has_type = 1;
  a->type = type;
  n->attribute[n->n_attribute++] = a;
  return a;
}

void mb_attr_int(mb_model *m, const char *name, int64_t v) {
  Onnx__AttributeProto *a = new_attr(m, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = 1;
  a->i = v;
}

void mb_attr_float(mb_model *m, const char *name, float v) {
  Onnx__AttributeProto *a = new_attr(m, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = 1;
  a->f = v;
}

void mb_attr_ints(mb_model *m, const char *name, size_t n, const int64_t *v) {
  Onnx__AttributeProto *a = new_attr(m, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = n;
  a->ints = zalloc(m, (n + 1) * sizeof(int64_t));
  memcpy(a->ints, v, n * sizeof(int64_t));
}

void mb_attr_graph(mb_model *m, const char *name, mb_model *body) {
  if (m->n_children == sizeof m->children / sizeof m->children[0]) abort();
  Onnx__AttributeProto *a = new_attr(m, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
  a->g = &body->graph;
  m->children[m->n_children++] = body;
}

void *mb_serialize(mb_model *m, size_t *size) {
  *size = onnx__model_proto__get_packed_size(&m->model);
  void *buf = malloc(*size ? *size : 1);
  onnx__model_proto__pack(&m->model, buf);
  return buf;
}

void mb_free(mb_model *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n_children; i++) mb_free(m->children[i]);
  for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
  free(m);
}
