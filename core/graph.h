/* The graph IR: what an ONNX model becomes once loaded. Values (tensors by name) and nodes
 * that read and write them by index. A graph owns everything it points at; subgraphs (If, Loop,
 * Scan bodies) are graphs held by attributes, with `parent` set, and may read values of outer
 * graphs by name. */
#ifndef TSR_CORE_GRAPH_H
#define TSR_CORE_GRAPH_H

#include <stdint.h>

#include "core/common.h"

typedef struct tsr__graph tsr__graph;

/* A dense host tensor held by the IR (initializers, Constant values, TENSOR attributes). */
typedef struct tsr__tensor_data {
  int32_t dtype;   /* tsr_dtype */
  int32_t rank;
  int64_t *dims;
  void *data;      /* little-endian row-major; NULL when nbytes == 0 */
  size_t nbytes;
} tsr__tensor_data;

typedef struct tsr__attr {
  char *name;
  int32_t type;    /* tsr_plugin_attr_type numbers (ONNX AttributeType) */
  float f;
  int64_t i;
  char *s;         /* STRING, NUL-terminated, s_len bytes */
  size_t s_len;
  float *floats;
  int64_t *ints;
  char **strings;
  size_t count;    /* length of floats / ints / strings */
  tsr__tensor_data *t;
  tsr__graph *g;
} tsr__attr;

typedef struct tsr__dim {
  int64_t value;   /* >= 0 when known, -1 when symbolic or unknown */
  char *param;     /* symbolic name, or NULL */
} tsr__dim;

typedef struct tsr__value {
  char *name;
  int32_t dtype;          /* TSR_DTYPE_UNDEFINED when the model does not say */
  int32_t rank;           /* -1 when unknown */
  tsr__dim *dims;         /* rank entries */
  tsr__tensor_data *init; /* initializer or Constant data; NULL for activations */
  int32_t producer;       /* index of the node that writes it, or -1 */
  int32_t outer;          /* subgraphs: 1 when the value comes from an enclosing graph */
} tsr__value;

typedef struct tsr__node {
  char *name;             /* never NULL: "<op_type>_<index>" when the model gives none */
  char *op_type;
  char *domain;           /* "" for the default ONNX domain */
  int64_t opset;          /* version of `domain` the model imports */
  uint32_t n_inputs;
  int32_t *inputs;        /* value indices; -1 for an absent optional input */
  uint32_t n_outputs;
  int32_t *outputs;       /* value indices; -1 for an absent optional output */
  uint32_t n_attrs;
  tsr__attr *attrs;
} tsr__node;

typedef struct tsr__opset {
  char *domain;
  int64_t version;
} tsr__opset;

struct tsr__graph {
  const tsr_allocator *alloc;
  char *name;
  tsr__value *values;
  uint32_t n_values, cap_values;
  tsr__node *nodes;       /* in topological order once tsr__graph_finalize() has run */
  uint32_t n_nodes, cap_nodes;
  int32_t *inputs;        /* graph inputs that are not initializers */
  uint32_t n_inputs;
  int32_t *outputs;
  uint32_t n_outputs;
  tsr__opset *opsets;
  uint32_t n_opsets;
  int64_t ir_version;
  const tsr__graph *parent;
  /* Name index over values[0 .. n_indexed), kept by tsr__graph_intern_value once the graph
   * has more than a few values: open addressing, linear probing, slots hold index + 1 (0 is
   * empty). Values appended without interning are found by a linear scan of the tail. */
  uint32_t *value_index;
  uint32_t value_index_cap; /* a power of two, or 0 while there is no index */
  uint32_t n_indexed;
};

/* Creates an empty graph. */
tsr_status tsr__graph_create(const tsr_allocator *alloc, tsr__graph **out);
void tsr__graph_destroy(tsr__graph *g);

/* Finds a value by name in g only; -1 when absent. Linear in small graphs, hashed in large. */
int32_t tsr__graph_find_value(const tsr__graph *g, const char *name);
/* Finds or adds a value by name; *out_index gets its index. */
tsr_status tsr__graph_intern_value(tsr__graph *g, const char *name, int32_t *out_index);
/* Appends a node (zeroed) and returns a pointer to it; valid until the next add. */
tsr_status tsr__graph_add_node(tsr__graph *g, tsr__node **out, uint32_t *out_index);

/* Attribute lookup on a node; NULL when absent. */
const tsr__attr *tsr__node_attr(const tsr__node *n, const char *name);
int64_t tsr__node_attr_int(const tsr__node *n, const char *name, int64_t dflt);
float tsr__node_attr_float(const tsr__node *n, const char *name, float dflt);
const char *tsr__node_attr_string(const tsr__node *n, const char *name, const char *dflt);

/* Checks structure and sorts nodes topologically: every input is produced once, by an earlier
 * node, an initializer, a graph input or (subgraphs) an outer scope; no cycles; every output
 * is produced. Fills value.producer. Errors name the node and the value. */
tsr_status tsr__graph_finalize(tsr__graph *g);

/* The opset version the graph imports for a domain ("" or "ai.onnx" are the same), or -1. */
int64_t tsr__graph_opset(const tsr__graph *g, const char *domain);

/* Releases a tensor_data allocated with g->alloc. */
void tsr__tensor_data_free(const tsr_allocator *a, tsr__tensor_data *t);

#endif
