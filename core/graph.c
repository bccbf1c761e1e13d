/* The graph IR: building (values by name, nodes), teardown, attribute lookup, and
 * tsr__graph_finalize, which checks the structure and sorts nodes topologically.
 *
 * Values are found by name through an open-addressing index once a graph has more than a few
 * of them, so that importing a model with tens of thousands of values stays linear. */
#include "core/graph.h"

#include <stdio.h>
#include <string.h>

/* Below this many values a linear scan is as fast as hashing and needs no memory. */
#define INDEX_MIN_VALUES 16u
/* Subgraphs nested deeper than this are refused rather than risking the stack. The ONNX
 * importer refuses such files earlier; this guards graphs built by hand. */
#define MAX_SUBGRAPH_DEPTH 256

/* ---- Creation and teardown ------------------------------------------------------------ */

tsr_status tsr__graph_create(const tsr_allocator *alloc, tsr__graph **out) {
  if (!out)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "graph_create: out is NULL");
  *out = NULL;
  if (!alloc)
    alloc = tsr__default_allocator();
  tsr__graph *g = tsr__calloc(alloc, 1, sizeof *g);
  if (!g)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory creating a graph");
  g->alloc = alloc;
  *out = g;
  return NULL;
}

void tsr__tensor_data_free(const tsr_allocator *a, tsr__tensor_data *t) {
  if (!t)
    return;
  tsr__free(a, t->dims);
  tsr__free(a, t->data);
  tsr__free(a, t);
}

/* Frees everything an attribute points at, whatever its type says, so that a half-built
 * attribute (the importer failed midway) is released too. */
static void attr_clear(const tsr_allocator *a, tsr__attr *at) {
  tsr__free(a, at->name);
  tsr__free(a, at->s);
  tsr__free(a, at->floats);
  tsr__free(a, at->ints);
  if (at->strings) {
    for (size_t i = 0; i < at->count; i++)
      tsr__free(a, at->strings[i]);
    tsr__free(a, at->strings);
  }
  tsr__tensor_data_free(a, at->t);
  tsr__graph_destroy(at->g);
  memset(at, 0, sizeof *at);
}

static void node_clear(const tsr_allocator *a, tsr__node *n) {
  tsr__free(a, n->name);
  tsr__free(a, n->op_type);
  tsr__free(a, n->domain);
  tsr__free(a, n->inputs);
  tsr__free(a, n->outputs);
  if (n->attrs) {
    for (uint32_t i = 0; i < n->n_attrs; i++)
      attr_clear(a, &n->attrs[i]);
    tsr__free(a, n->attrs);
  }
  memset(n, 0, sizeof *n);
}

static void value_clear(const tsr_allocator *a, tsr__value *v) {
  tsr__free(a, v->name);
  if (v->dims) {
    for (int32_t i = 0; i < v->rank; i++)
      tsr__free(a, v->dims[i].param);
    tsr__free(a, v->dims);
  }
  tsr__tensor_data_free(a, v->init);
  memset(v, 0, sizeof *v);
}

void tsr__graph_destroy(tsr__graph *g) {
  if (!g)
    return;
  const tsr_allocator *a = g->alloc;
  for (uint32_t i = 0; i < g->n_values; i++)
    value_clear(a, &g->values[i]);
  for (uint32_t i = 0; i < g->n_nodes; i++)
    node_clear(a, &g->nodes[i]);
  for (uint32_t i = 0; i < g->n_opsets; i++)
    tsr__free(a, g->opsets[i].domain);
  tsr__free(a, g->values);
  tsr__free(a, g->nodes);
  tsr__free(a, g->inputs);
  tsr__free(a, g->outputs);
  tsr__free(a, g->opsets);
  tsr__free(a, g->value_index);
  tsr__free(a, g->name);
  tsr__free(a, g);
}

/* ---- Values by name ------------------------------------------------------------------- */

/* FNV-1a: short names, few collisions, no state. */
static uint32_t hash_name(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

static void index_insert(uint32_t *slots, uint32_t cap, const char *name, uint32_t index) {
  uint32_t mask = cap - 1;
  uint32_t i = hash_name(name) & mask;
  while (slots[i])
    i = (i + 1) & mask;
  slots[i] = index + 1;
}

/* Rebuilds the index over all current values with at least `cap` slots. */
static tsr_status index_rebuild(tsr__graph *g, uint32_t cap) {
  uint32_t *slots = tsr__calloc(g->alloc, cap, sizeof *slots);
  if (!slots)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory indexing %u values",
                            g->n_values);
  for (uint32_t i = 0; i < g->n_values; i++)
    if (g->values[i].name)
      index_insert(slots, cap, g->values[i].name, i);
  tsr__free(g->alloc, g->value_index);
  g->value_index = slots;
  g->value_index_cap = cap;
  g->n_indexed = g->n_values;
  return NULL;
}

int32_t tsr__graph_find_value(const tsr__graph *g, const char *name) {
  if (!g || !name)
    return -1;
  uint32_t start = 0;
  if (g->value_index && g->value_index_cap && g->n_indexed <= g->n_values) {
    uint32_t mask = g->value_index_cap - 1;
    uint32_t i = hash_name(name) & mask;
    for (uint32_t slot; (slot = g->value_index[i]) != 0; i = (i + 1) & mask) {
      const char *vn = g->values[slot - 1].name;
      if (vn && strcmp(vn, name) == 0)
        return (int32_t)(slot - 1);
    }
    start = g->n_indexed;
  }
  for (uint32_t i = start; i < g->n_values; i++)
    if (g->values[i].name && strcmp(g->values[i].name, name) == 0)
      return (int32_t)i;
  return -1;
}

tsr_status tsr__graph_intern_value(tsr__graph *g, const char *name, int32_t *out_index) {
  if (out_index)
    *out_index = -1;
  if (!g || !name || !out_index)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "graph_intern_value: NULL argument");
  int32_t found = tsr__graph_find_value(g, name);
  if (found >= 0) {
    *out_index = found;
    return NULL;
  }
  /* Capacities stay below 2^30 so that doubling and index sizes never overflow uint32_t. */
  if (g->n_values >= (1u << 29))
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "graph has too many values (%u)",
                            g->n_values);
  if (g->n_values == g->cap_values) {
    uint32_t cap = g->cap_values ? g->cap_values * 2 : 16;
    size_t bytes;
    if (!tsr__mul_size(cap, sizeof(tsr__value), &bytes))
      return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "value table too large");
    tsr__value *nv = tsr__realloc(g->alloc, g->values, bytes);
    if (!nv)
      return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory adding a value");
    g->values = nv;
    g->cap_values = cap;
  }
  uint32_t need = g->n_values + 1;
  if (need >= INDEX_MIN_VALUES && (g->n_indexed != g->n_values || g->value_index_cap < 2 * need)) {
    uint32_t cap = g->value_index_cap ? g->value_index_cap : 64;
    while (cap < 2 * need)
      cap *= 2;
    TSR_RETURN_IF_ERROR(index_rebuild(g, cap));
  }
  char *copy = tsr__strdup(g->alloc, name);
  if (!copy)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory adding a value");
  tsr__value *v = &g->values[g->n_values];
  memset(v, 0, sizeof *v);
  v->name = copy;
  v->dtype = TSR_DTYPE_UNDEFINED;
  v->rank = -1;
  v->producer = -1;
  if (g->value_index) {
    index_insert(g->value_index, g->value_index_cap, copy, g->n_values);
    g->n_indexed = g->n_values + 1;
  }
  *out_index = (int32_t)g->n_values;
  g->n_values++;
  return NULL;
}

tsr_status tsr__graph_add_node(tsr__graph *g, tsr__node **out, uint32_t *out_index) {
  if (out)
    *out = NULL;
  if (out_index)
    *out_index = 0;
  if (!g || !out)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "graph_add_node: NULL argument");
  if (g->n_nodes >= (1u << 29))
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "graph has too many nodes (%u)", g->n_nodes);
  if (g->n_nodes == g->cap_nodes) {
    uint32_t cap = g->cap_nodes ? g->cap_nodes * 2 : 16;
    size_t bytes;
    if (!tsr__mul_size(cap, sizeof(tsr__node), &bytes))
      return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "node table too large");
    tsr__node *nn = tsr__realloc(g->alloc, g->nodes, bytes);
    if (!nn)
      return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory adding a node");
    g->nodes = nn;
    g->cap_nodes = cap;
  }
  tsr__node *n = &g->nodes[g->n_nodes];
  memset(n, 0, sizeof *n);
  n->opset = -1;
  *out = n;
  if (out_index)
    *out_index = g->n_nodes;
  g->n_nodes++;
  return NULL;
}

/* ---- Attributes and opsets ------------------------------------------------------------ */

const tsr__attr *tsr__node_attr(const tsr__node *n, const char *name) {
  if (!n || !name)
    return NULL;
  for (uint32_t i = 0; i < n->n_attrs; i++)
    if (n->attrs[i].name && strcmp(n->attrs[i].name, name) == 0)
      return &n->attrs[i];
  return NULL;
}

int64_t tsr__node_attr_int(const tsr__node *n, const char *name, int64_t dflt) {
  const tsr__attr *a = tsr__node_attr(n, name);
  return a && a->type == 2 /* INT */ ? a->i : dflt;
}

float tsr__node_attr_float(const tsr__node *n, const char *name, float dflt) {
  const tsr__attr *a = tsr__node_attr(n, name);
  return a && a->type == 1 /* FLOAT */ ? a->f : dflt;
}

const char *tsr__node_attr_string(const tsr__node *n, const char *name, const char *dflt) {
  const tsr__attr *a = tsr__node_attr(n, name);
  return a && a->type == 3 /* STRING */ && a->s ? a->s : dflt;
}

static bool domain_is_onnx(const char *d) { return !d || !*d || strcmp(d, "ai.onnx") == 0; }

int64_t tsr__graph_opset(const tsr__graph *g, const char *domain) {
  /* Subgraphs normally carry no opsets of their own; they use the model's. */
  for (const tsr__graph *p = g; p; p = p->parent) {
    for (uint32_t i = 0; i < p->n_opsets; i++) {
      const char *d = p->opsets[i].domain;
      if (domain_is_onnx(domain) ? domain_is_onnx(d) : (d && strcmp(d, domain) == 0))
        return p->opsets[i].version;
    }
  }
  return -1;
}

/* ---- Finalize: checks and topological sort -------------------------------------------- */

/* A dependency: node `dst` reads value `value`, which node `src` writes. */
typedef struct edge {
  uint32_t src, dst;
  int32_t value;
} edge;

typedef struct edge_list {
  const tsr_allocator *a;
  edge *e;
  size_t n, cap;
} edge_list;

static bool edge_push(edge_list *l, uint32_t src, uint32_t dst, int32_t value) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64, bytes;
    if (!tsr__mul_size(cap, sizeof(edge), &bytes))
      return false;
    edge *ne = tsr__realloc(l->a, l->e, bytes);
    if (!ne)
      return false;
    l->e = ne;
    l->cap = cap;
  }
  l->e[l->n++] = (edge){src, dst, value};
  return true;
}

/* A node's name for messages: its own, or "<op_type>_<index>" when the model gave none. */
static const char *node_label(const tsr__node *n, uint32_t index, char *buf, size_t size) {
  if (n->name && *n->name)
    return n->name;
  snprintf(buf, size, "%s_%u", n->op_type ? n->op_type : "node", index);
  return buf;
}

static const char *op_of(const tsr__node *n) { return n->op_type ? n->op_type : "?"; }

static bool is_graph_input(const tsr__graph *g, int32_t v) {
  for (uint32_t i = 0; i < g->n_inputs; i++)
    if (g->inputs[i] == v)
      return true;
  return false;
}

/* True when g itself gives value `idx` a definition (not counting outer scopes). Valid for
 * graphs whose producers have been computed, which finalize does before descending. */
static bool defined_here(const tsr__graph *g, int32_t idx) {
  const tsr__value *v = &g->values[idx];
  return v->producer >= 0 || v->init != NULL || is_graph_input(g, idx);
}

/* Looks `name` up in `start` and its enclosing graphs. */
static bool defined_in_scope(const tsr__graph *start, const char *name) {
  for (const tsr__graph *p = start; p; p = p->parent) {
    int32_t idx = tsr__graph_find_value(p, name);
    if (idx >= 0 && defined_here(p, idx))
      return true;
  }
  return false;
}

static tsr_status oom(void) {
  return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory while checking the graph");
}

/* Adds edges to node `node` of g for every value that subgraph s (or a subgraph nested in
 * it) reads from g, so that the node runs after their producers. */
static tsr_status collect_outer_deps(const tsr__graph *g, uint32_t node, const tsr__graph *s,
                                     edge_list *edges) {
  for (uint32_t i = 0; i < s->n_values; i++) {
    const tsr__value *v = &s->values[i];
    if (!v->outer || !v->name)
      continue;
    bool inner = false;
    for (const tsr__graph *p = s->parent; p && p != g; p = p->parent) {
      int32_t idx = tsr__graph_find_value(p, v->name);
      if (idx >= 0 && defined_here(p, idx)) {
        inner = true;
        break;
      }
    }
    if (inner)
      continue;
    int32_t idx = tsr__graph_find_value(g, v->name);
    if (idx >= 0 && g->values[idx].producer >= 0 &&
        !edge_push(edges, (uint32_t)g->values[idx].producer, node, idx))
      return oom();
  }
  for (uint32_t i = 0; i < s->n_nodes; i++)
    for (uint32_t k = 0; k < s->nodes[i].n_attrs; k++) {
      const tsr__attr *at = &s->nodes[i].attrs[k];
      if (at->g)
        TSR_RETURN_IF_ERROR(collect_outer_deps(g, node, at->g, edges));
    }
  return NULL;
}

/* Min-heap of node indices: Kahn's algorithm picks the lowest ready index, so a graph that is
 * already sorted keeps its order and the result is deterministic. */
static void heap_push(uint32_t *h, uint32_t *n, uint32_t x) {
  uint32_t i = (*n)++;
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (h[parent] <= x)
      break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = x;
}

static uint32_t heap_pop(uint32_t *h, uint32_t *n) {
  uint32_t top = h[0], x = h[--(*n)], i = 0;
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= *n)
      break;
    if (c + 1 < *n && h[c + 1] < h[c])
      c++;
    if (x <= h[c])
      break;
    h[i] = h[c];
    i = c;
  }
  if (*n)
    h[i] = x;
  return top;
}

/* Builds the error for a cycle among the nodes Kahn's algorithm could not emit: walks from one
 * of them to a predecessor that is also stuck until a node repeats, and names that loop. */
static tsr_status cycle_error(const tsr__graph *g, const edge_list *edges, const uint8_t *done) {
  const tsr_allocator *a = g->alloc;
  uint32_t n = g->n_nodes;
  uint32_t *roff = tsr__calloc(a, (size_t)n + 1, sizeof *roff);
  uint32_t *redge = tsr__calloc(a, edges->n ? edges->n : 1, sizeof *redge);
  uint32_t *seen_at = tsr__calloc(a, n, sizeof *seen_at); /* step + 1, 0 = unseen */
  uint32_t *path = tsr__calloc(a, (size_t)n + 1, sizeof *path);
  int32_t *path_val = tsr__calloc(a, (size_t)n + 1, sizeof *path_val);
  tsr_status st = NULL;
  if (!roff || !redge || !seen_at || !path || !path_val) {
    st = oom();
    goto done;
  }
  /* Edges into each node (reverse CSR). */
  for (size_t i = 0; i < edges->n; i++)
    roff[edges->e[i].dst + 1]++;
  for (uint32_t i = 0; i < n; i++)
    roff[i + 1] += roff[i];
  {
    uint32_t *fill = seen_at; /* reused as a cursor, cleared below */
    for (size_t i = 0; i < edges->n; i++)
      redge[roff[edges->e[i].dst] + fill[edges->e[i].dst]++] = (uint32_t)i;
    memset(seen_at, 0, (size_t)n * sizeof *seen_at);
  }
  uint32_t cur = 0;
  while (cur < n && done[cur])
    cur++;
  uint32_t steps = 0;
  while (cur < n && !seen_at[cur]) {
    seen_at[cur] = steps + 1;
    path[steps] = cur;
    uint32_t next = n;
    for (uint32_t k = roff[cur]; k < roff[cur + 1]; k++) {
      const edge *e = &edges->e[redge[k]];
      if (!done[e->src]) {
        next = e->src;
        path_val[steps] = e->value;
        break;
      }
    }
    steps++;
    cur = next;
  }
  if (cur >= n) {
    st = tsr__status_make(TSR_STATUS_INTERNAL, "graph sort stalled without a cycle");
    goto done;
  }
  /* path[first..steps) is the loop: path[j] reads path_val[j] from path[j + 1]. */
  char msg[1024];
  size_t pos = 0;
  uint32_t first = seen_at[cur] - 1;
  char lb[64];
  const tsr__node *nd = &g->nodes[path[first]];
  pos += (size_t)snprintf(msg, sizeof msg, "graph has a cycle: node '%s' (%s)",
                          node_label(nd, path[first], lb, sizeof lb), op_of(nd));
  for (uint32_t j = first; j < steps && pos < sizeof msg; j++) {
    if (j - first >= 8) {
      pos += (size_t)snprintf(msg + pos, sizeof msg - pos, ", ...");
      break;
    }
    uint32_t from = (j + 1 < steps) ? path[j + 1] : path[first];
    nd = &g->nodes[from];
    pos += (size_t)snprintf(msg + pos, sizeof msg - pos, "%s reads '%s' from node '%s' (%s)",
                            j == first ? "" : ", which",
                            g->values[path_val[j]].name ? g->values[path_val[j]].name : "?",
                            node_label(nd, from, lb, sizeof lb), op_of(nd));
  }
  st = tsr__status_make(TSR_STATUS_INVALID_MODEL, "%s", msg);
done:
  tsr__free(a, roff);
  tsr__free(a, redge);
  tsr__free(a, seen_at);
  tsr__free(a, path);
  tsr__free(a, path_val);
  return st;
}

/* Orders nodes by Kahn's algorithm over `edges` and permutes g->nodes accordingly. */
static tsr_status sort_nodes(tsr__graph *g, const edge_list *edges) {
  const tsr_allocator *a = g->alloc;
  uint32_t n = g->n_nodes;
  if (n == 0)
    return NULL;
  uint32_t *off = tsr__calloc(a, (size_t)n + 1, sizeof *off);
  uint32_t *adj = tsr__calloc(a, edges->n ? edges->n : 1, sizeof *adj);
  uint32_t *indeg = tsr__calloc(a, n, sizeof *indeg);
  uint32_t *heap = tsr__calloc(a, n, sizeof *heap);
  uint32_t *order = tsr__calloc(a, n, sizeof *order);
  uint8_t *done = tsr__calloc(a, n, 1);
  tsr_status st = NULL;
  if (!off || !adj || !indeg || !heap || !order || !done) {
    st = oom();
    goto out;
  }
  for (size_t i = 0; i < edges->n; i++) {
    off[edges->e[i].src + 1]++;
    indeg[edges->e[i].dst]++;
  }
  for (uint32_t i = 0; i < n; i++)
    off[i + 1] += off[i];
  {
    uint32_t *fill = order; /* reused as a cursor, overwritten by the sort below */
    for (size_t i = 0; i < edges->n; i++)
      adj[off[edges->e[i].src] + fill[edges->e[i].src]++] = edges->e[i].dst;
  }
  uint32_t hn = 0, emitted = 0;
  for (uint32_t i = 0; i < n; i++)
    if (indeg[i] == 0)
      heap_push(heap, &hn, i);
  while (hn) {
    uint32_t u = heap_pop(heap, &hn);
    order[emitted++] = u;
    done[u] = 1;
    for (uint32_t k = off[u]; k < off[u + 1]; k++)
      if (--indeg[adj[k]] == 0)
        heap_push(heap, &hn, adj[k]);
  }
  if (emitted < n) {
    st = cycle_error(g, edges, done);
    goto out;
  }
  bool identity = true;
  for (uint32_t i = 0; i < n && identity; i++)
    identity = order[i] == i;
  if (!identity) {
    tsr__node *tmp = tsr__calloc(a, n, sizeof *tmp);
    if (!tmp) {
      st = oom();
      goto out;
    }
    for (uint32_t i = 0; i < n; i++)
      tmp[i] = g->nodes[order[i]];
    memcpy(g->nodes, tmp, (size_t)n * sizeof *tmp);
    tsr__free(a, tmp);
    for (uint32_t i = 0; i < g->n_values; i++)
      g->values[i].producer = -1;
    for (uint32_t i = 0; i < n; i++)
      for (uint32_t k = 0; k < g->nodes[i].n_outputs; k++)
        if (g->nodes[i].outputs[k] >= 0)
          g->values[g->nodes[i].outputs[k]].producer = (int32_t)i;
  }
out:
  tsr__free(a, off);
  tsr__free(a, adj);
  tsr__free(a, indeg);
  tsr__free(a, heap);
  tsr__free(a, order);
  tsr__free(a, done);
  return st;
}

static tsr_status finalize_graph(tsr__graph *g, int depth);

/* Everything finalize checks for one graph, with the temporaries it needs in one place so that
 * every error path frees them. */
static tsr_status finalize_body(tsr__graph *g, int depth, uint8_t *is_input, edge_list *edges) {
  char lb[64];
  const uint32_t nv = g->n_values;
  for (uint32_t i = 0; i < nv; i++) {
    g->values[i].producer = -1;
    g->values[i].outer = 0;
  }
  for (uint32_t i = 0; i < g->n_inputs; i++) {
    int32_t v = g->inputs[i];
    if (v < 0 || (uint32_t)v >= nv)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                              "graph input %u refers to value %d, "
                              "but the graph has %u values",
                              i, v, nv);
    if (is_input[v])
      return tsr__status_make(TSR_STATUS_INVALID_MODEL, "graph input '%s' is listed twice",
                              g->values[v].name);
    is_input[v] = 1;
  }

  /* Producers, in model order: each value written at most once, never over a constant. */
  for (uint32_t i = 0; i < g->n_nodes; i++) {
    const tsr__node *n = &g->nodes[i];
    for (uint32_t k = 0; k < n->n_outputs; k++) {
      int32_t v = n->outputs[k];
      if (v < 0)
        continue;
      if ((uint32_t)v >= nv)
        return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                                "node '%s' (%s): output %u refers to value %d, but the graph "
                                "has %u values",
                                node_label(n, i, lb, sizeof lb), op_of(n), k, v, nv);
      tsr__value *val = &g->values[v];
      if (val->producer >= 0) {
        char lb2[64];
        const tsr__node *p = &g->nodes[val->producer];
        return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                                "node '%s' (%s): output %u '%s' is already produced by node "
                                "'%s' (%s)",
                                node_label(n, i, lb, sizeof lb), op_of(n), k, val->name,
                                node_label(p, (uint32_t)val->producer, lb2, sizeof lb2), op_of(p));
      }
      if (val->init)
        return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                                "node '%s' (%s): output %u '%s' is also an initializer or "
                                "Constant",
                                node_label(n, i, lb, sizeof lb), op_of(n), k, val->name);
      if (is_input[v])
        return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                                "node '%s' (%s): output %u '%s' is also a graph input",
                                node_label(n, i, lb, sizeof lb), op_of(n), k, val->name);
      val->producer = (int32_t)i;
    }
  }

  /* Subgraphs see this graph's producers through their parent pointer. */
  for (uint32_t i = 0; i < g->n_nodes; i++) {
    tsr__node *n = &g->nodes[i];
    for (uint32_t k = 0; k < n->n_attrs; k++) {
      tsr__attr *at = &n->attrs[k];
      if (!at->g)
        continue;
      at->g->parent = g;
      tsr_status st = finalize_graph(at->g, depth + 1);
      if (st)
        return tsr__status_wrap(st, "node '%s' (%s): subgraph '%s'",
                                node_label(n, i, lb, sizeof lb), op_of(n),
                                at->name ? at->name : "?");
    }
  }

  /* A name that a nested subgraph reads from further out gets an entry here too, marked outer:
   * then each subgraph lists every value its subtree takes from enclosing scopes, which is
   * what a control-flow node hands its subgraph when it runs (scheduler/control_flow.c). */
  for (uint32_t i = 0; g->parent && i < g->n_nodes; i++) {
    for (uint32_t k = 0; k < g->nodes[i].n_attrs; k++) {
      const tsr__graph *s = g->nodes[i].attrs[k].g;
      for (uint32_t v = 0; s && v < s->n_values; v++) {
        const char *name = s->values[v].name;
        if (!s->values[v].outer || !name)
          continue;
        int32_t idx = tsr__graph_find_value(g, name);
        if (idx >= 0 && defined_here(g, idx))
          continue;
        if (!defined_in_scope(g->parent, name))
          continue;
        if (idx < 0)
          TSR_RETURN_IF_ERROR(tsr__graph_intern_value(g, name, &idx));
        g->values[idx].outer = 1;
      }
    }
  }

  /* Every input has a definition; those made by nodes become edges. */
  for (uint32_t i = 0; i < g->n_nodes; i++) {
    const tsr__node *n = &g->nodes[i];
    for (uint32_t k = 0; k < n->n_inputs; k++) {
      int32_t v = n->inputs[k];
      if (v < 0)
        continue;
      if ((uint32_t)v >= nv)
        return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                                "node '%s' (%s): input %u refers to value %d, but the graph has "
                                "%u values",
                                node_label(n, i, lb, sizeof lb), op_of(n), k, v, nv);
      tsr__value *val = &g->values[v];
      if (val->producer >= 0) {
        if (!edge_push(edges, (uint32_t)val->producer, i, v))
          return oom();
      } else if (val->init || is_input[v]) {
        /* a constant or a graph input */
      } else if (g->parent && defined_in_scope(g->parent, val->name)) {
        val->outer = 1;
      } else {
        return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                                "node '%s' (%s): input %u '%s' is not produced by any node, "
                                "initializer or graph input%s",
                                node_label(n, i, lb, sizeof lb), op_of(n), k, val->name,
                                g->parent ? " of this subgraph or an enclosing graph" : "");
      }
    }
  }
  for (uint32_t i = 0; i < g->n_nodes; i++)
    for (uint32_t k = 0; k < g->nodes[i].n_attrs; k++)
      if (g->nodes[i].attrs[k].g)
        TSR_RETURN_IF_ERROR(collect_outer_deps(g, i, g->nodes[i].attrs[k].g, edges));

  for (uint32_t k = 0; k < g->n_outputs; k++) {
    int32_t v = g->outputs[k];
    if (v < 0 || (uint32_t)v >= nv)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                              "graph output %u refers to value %d, "
                              "but the graph has %u values",
                              k, v, nv);
    tsr__value *val = &g->values[v];
    if (val->producer >= 0 || val->init || is_input[v])
      continue;
    if (g->parent && defined_in_scope(g->parent, val->name)) {
      val->outer = 1;
      continue;
    }
    return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                            "graph output %u '%s' is not produced by any node, initializer or "
                            "graph input",
                            k, val->name);
  }
  return sort_nodes(g, edges);
}

static tsr_status finalize_graph(tsr__graph *g, int depth) {
  if (depth > MAX_SUBGRAPH_DEPTH)
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "subgraphs are nested more than %d deep",
                            MAX_SUBGRAPH_DEPTH);
  uint8_t *is_input = tsr__calloc(g->alloc, g->n_values ? g->n_values : 1, 1);
  if (!is_input)
    return oom();
  edge_list edges = {g->alloc, NULL, 0, 0};
  tsr_status st = finalize_body(g, depth, is_input, &edges);
  tsr__free(g->alloc, edges.e);
  tsr__free(g->alloc, is_input);
  return st;
}

/* Finalizes g and, first, every subgraph its nodes hold: a subgraph resolves outer names
 * through its parents' producers, so call this on the outermost graph. */
tsr_status tsr__graph_finalize(tsr__graph *g) {
  if (!g)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "graph_finalize: graph is NULL");
  return finalize_graph(g, 0);
}
