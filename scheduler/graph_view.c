/* Graph views: how plugins see a partition (or the whole graph) through plugin.h accessors,
 * with concrete shapes and constant data, without seeing the core structures. */
#include <string.h>

#include "scheduler/scheduler.h"

static const tsr__node *view_node(const tsr_plugin_graph *v, uint32_t node) {
  return &v->g->nodes[v->nodes[node]];
}

static uint32_t api_node_count(const tsr_plugin_graph *v) { return v->n_nodes; }
static const char *api_node_op_type(const tsr_plugin_graph *v, uint32_t n) {
  return view_node(v, n)->op_type;
}
static const char *api_node_domain(const tsr_plugin_graph *v, uint32_t n) {
  const char *d = view_node(v, n)->domain;
  return (d && strcmp(d, "ai.onnx") != 0) ? d : "";
}
static const char *api_node_name(const tsr_plugin_graph *v, uint32_t n) {
  return view_node(v, n)->name;
}
static int64_t api_node_opset(const tsr_plugin_graph *v, uint32_t n) {
  return view_node(v, n)->opset;
}
static uint32_t api_node_input_count(const tsr_plugin_graph *v, uint32_t n) {
  return view_node(v, n)->n_inputs;
}
static int32_t api_node_input(const tsr_plugin_graph *v, uint32_t n, uint32_t k) {
  const tsr__node *nd = view_node(v, n);
  if (k >= nd->n_inputs || nd->inputs[k] < 0) return -1;
  return v->local_of[nd->inputs[k]];
}
static uint32_t api_node_output_count(const tsr_plugin_graph *v, uint32_t n) {
  return view_node(v, n)->n_outputs;
}
static int32_t api_node_output(const tsr_plugin_graph *v, uint32_t n, uint32_t k) {
  const tsr__node *nd = view_node(v, n);
  if (k >= nd->n_outputs || nd->outputs[k] < 0) return -1;
  return v->local_of[nd->outputs[k]];
}

static int api_node_attr(const tsr_plugin_graph *v, uint32_t n, const char *name,
                         tsr_plugin_attr *out) {
  const tsr__attr *a = tsr__node_attr(view_node(v, n), name);
  memset(out, 0, sizeof *out);
  if (!a) return 0;
  out->type = (uint32_t)a->type;
  out->f = a->f;
  out->i = a->i;
  out->s = a->s;
  out->s_len = a->s_len;
  out->floats = a->floats;
  out->ints = a->ints;
  out->strings = (const char *const *)a->strings;
  out->count = a->count;
  if (a->t) {
    out->t_dtype = (uint32_t)a->t->dtype;
    out->t_rank = (uint32_t)a->t->rank;
    out->t_dims = a->t->dims;
    out->t_data = a->t->data;
  }
  /* Subgraphs are not shown to plugins in ABI v1: graph stays NULL and a plugin that needs
   * one refuses the node. */
  return 1;
}

static uint32_t api_value_count(const tsr_plugin_graph *v) { return v->n_values; }

static void api_value_info(const tsr_plugin_graph *v, uint32_t value, tsr_plugin_value *out) {
  memset(out, 0, sizeof *out);
  if (value >= v->n_values) return;
  uint32_t gv = v->values[value];
  const tsr__vshape *s = &v->vals[gv];
  out->name = v->g->values[gv].name;
  out->dtype = (uint32_t)s->dtype;
  out->rank = s->rank > 0 ? (uint32_t)s->rank : 0;
  out->dims = s->dims;
  size_t count = 0;
  tsr__shape_count(s->dims, out->rank, &count);
  out->byte_size = (uint64_t)count * tsr_dtype_size((tsr_dtype)s->dtype);
  out->const_data = s->data;
}

static uint32_t api_input_count(const tsr_plugin_graph *v) { return v->n_inputs; }
static uint32_t api_input(const tsr_plugin_graph *v, uint32_t k) { return v->inputs[k]; }
static uint32_t api_output_count(const tsr_plugin_graph *v) { return v->n_outputs; }
static uint32_t api_output(const tsr_plugin_graph *v, uint32_t k) { return v->outputs[k]; }

const tsr_plugin_graph_api tsr__graph_api = {
    .struct_size = sizeof(tsr_plugin_graph_api),
    .abi_version = TSR_PLUGIN_ABI_VERSION,
    .node_count = api_node_count,
    .node_op_type = api_node_op_type,
    .node_domain = api_node_domain,
    .node_name = api_node_name,
    .node_opset = api_node_opset,
    .node_input_count = api_node_input_count,
    .node_input = api_node_input,
    .node_output_count = api_node_output_count,
    .node_output = api_node_output,
    .node_attr = api_node_attr,
    .value_count = api_value_count,
    .value_info = api_value_info,
    .input_count = api_input_count,
    .input = api_input,
    .output_count = api_output_count,
    .output = api_output,
};

void tsr__view_destroy(const tsr__graph *g, tsr_plugin_graph *v) {
  if (!v) return;
  const tsr_allocator *a = g->alloc;
  tsr__free(a, v->nodes);
  tsr__free(a, v->values);
  tsr__free(a, v->local_of);
  tsr__free(a, v->inputs);
  tsr__free(a, v->outputs);
  tsr__free(a, v);
}

tsr_status tsr__view_create(const tsr__graph *g, const tsr__vshape *vals, const uint32_t *nodes,
                            uint32_t n_nodes, const uint8_t *used_outside,
                            tsr_plugin_graph **out) {
  *out = NULL;
  const tsr_allocator *a = g->alloc;
  tsr_plugin_graph *v = tsr__calloc(a, 1, sizeof *v);
  if (!v) goto oom;
  v->g = g;
  v->vals = vals;
  v->n_nodes = n_nodes;
  v->nodes = tsr__calloc(a, n_nodes ? n_nodes : 1, sizeof *v->nodes);
  v->local_of = tsr__calloc(a, g->n_values ? g->n_values : 1, sizeof *v->local_of);
  v->values = tsr__calloc(a, g->n_values ? g->n_values : 1, sizeof *v->values);
  uint8_t *produced = tsr__calloc(a, g->n_values ? g->n_values : 1, 1);
  if (!v->nodes || !v->local_of || !v->values || !produced) {
    tsr__free(a, produced);
    goto oom;
  }
  if (n_nodes) memcpy(v->nodes, nodes, n_nodes * sizeof *nodes);
  for (uint32_t i = 0; i < g->n_values; i++) v->local_of[i] = -1;

  /* Local values in order of first appearance. */
  for (uint32_t i = 0; i < n_nodes; i++) {
    const tsr__node *nd = &g->nodes[nodes[i]];
    for (uint32_t k = 0; k < nd->n_inputs + nd->n_outputs; k++) {
      int32_t gv = k < nd->n_inputs ? nd->inputs[k] : nd->outputs[k - nd->n_inputs];
      if (gv < 0) continue;
      if (k >= nd->n_inputs) produced[gv] = 1;
      if (v->local_of[gv] < 0) {
        v->local_of[gv] = (int32_t)v->n_values;
        v->values[v->n_values++] = (uint32_t)gv;
      }
    }
  }
  v->inputs = tsr__calloc(a, v->n_values ? v->n_values : 1, sizeof *v->inputs);
  v->outputs = tsr__calloc(a, v->n_values ? v->n_values : 1, sizeof *v->outputs);
  if (!v->inputs || !v->outputs) {
    tsr__free(a, produced);
    goto oom;
  }
  for (uint32_t l = 0; l < v->n_values; l++) {
    uint32_t gv = v->values[l];
    if (!produced[gv]) {
      if (!vals[gv].data) v->inputs[v->n_inputs++] = l;
    } else if (!used_outside || used_outside[gv]) {
      v->outputs[v->n_outputs++] = l;
    }
  }
  tsr__free(a, produced);
  *out = v;
  return NULL;
oom:
  tsr__view_destroy(g, v);
  return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory building a graph view");
}
