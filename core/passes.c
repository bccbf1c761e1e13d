/* Graph optimisation passes run once at model load; see passes.h for what each one does.
 *
 * Every pass works on the outer graph in place and keeps two tables current as it goes: how
 * many node inputs read each value, and which values are pinned (a graph output, or read by
 * name from a subgraph, so that they can be neither renamed nor removed). Removed nodes are
 * only marked; they are freed and the node array is compacted at the end, and
 * tsr__graph_finalize then recomputes producers and the topological order. Until then
 * values[].producer is kept right by hand, because later rewrites consult it.
 *
 * A rewrite commits only once everything it needs is allocated, so an out-of-memory error
 * leaves the graph consistent (and the model load fails with it). */
#include "core/passes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PIN_OUTPUT = 1, PIN_SUBGRAPH = 2 };

typedef struct pass_ctx {
  tsr__graph *g;
  const tsr_allocator *a;
  uint32_t *uses;  /* per value: node inputs of g that read it, counting repeats */
  uint8_t *pinned; /* per value: PIN_* bits */
  uint32_t cap;    /* entries in uses and pinned; at least g->n_values */
  uint8_t *dead;   /* per node: removed, freed by compact() */
  bool rewired;    /* nodes changed: the graph needs finalizing again */
  tsr__pass_stats stats;
} pass_ctx;

static tsr_status oom(void) {
  return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory optimising the graph");
}

/* ---- Bookkeeping -------------------------------------------------------------------- */

/* Grows uses/pinned after values were added; new entries are zero. */
static tsr_status grow_tables(pass_ctx *c) {
  if (c->g->n_values <= c->cap)
    return NULL;
  uint32_t cap = c->cap * 2 > c->g->n_values ? c->cap * 2 : c->g->n_values;
  uint32_t *uses = tsr__realloc(c->a, c->uses, (size_t)cap * sizeof *uses);
  if (!uses)
    return oom();
  c->uses = uses;
  uint8_t *pinned = tsr__realloc(c->a, c->pinned, cap);
  if (!pinned)
    return oom();
  c->pinned = pinned;
  memset(c->uses + c->cap, 0, (size_t)(cap - c->cap) * sizeof *uses);
  memset(c->pinned + c->cap, 0, cap - c->cap);
  c->cap = cap;
  return NULL;
}

/* Pins every value of the outer graph whose name a subgraph (at any depth) reads from an
 * enclosing scope. Conservative: a name that an intermediate subgraph defines itself is
 * pinned too, which only forgoes a rewrite. */
static void pin_subgraph_reads(pass_ctx *c, const tsr__graph *s) {
  for (uint32_t v = 0; v < s->n_values; v++) {
    if (!s->values[v].outer || !s->values[v].name)
      continue;
    int32_t idx = tsr__graph_find_value(c->g, s->values[v].name);
    if (idx >= 0)
      c->pinned[idx] |= PIN_SUBGRAPH;
  }
  for (uint32_t i = 0; i < s->n_nodes; i++)
    for (uint32_t k = 0; k < s->nodes[i].n_attrs; k++)
      if (s->nodes[i].attrs[k].g)
        pin_subgraph_reads(c, s->nodes[i].attrs[k].g);
}

static void count_uses(pass_ctx *c) {
  const tsr__graph *g = c->g;
  memset(c->uses, 0, (size_t)c->cap * sizeof *c->uses);
  for (uint32_t i = 0; i < g->n_nodes; i++) {
    if (c->dead && c->dead[i])
      continue;
    for (uint32_t k = 0; k < g->nodes[i].n_inputs; k++)
      if (g->nodes[i].inputs[k] >= 0)
        c->uses[g->nodes[i].inputs[k]]++;
  }
}

static tsr_status ctx_init(pass_ctx *c, tsr__graph *g) {
  memset(c, 0, sizeof *c);
  c->g = g;
  c->a = g->alloc;
  c->cap = g->n_values ? g->n_values : 1;
  c->uses = tsr__calloc(c->a, c->cap, sizeof *c->uses);
  c->pinned = tsr__calloc(c->a, c->cap, 1);
  c->dead = tsr__calloc(c->a, g->n_nodes ? g->n_nodes : 1, 1);
  if (!c->uses || !c->pinned || !c->dead)
    return oom();
  count_uses(c);
  for (uint32_t k = 0; k < g->n_outputs; k++)
    c->pinned[g->outputs[k]] |= PIN_OUTPUT;
  for (uint32_t i = 0; i < g->n_nodes; i++)
    for (uint32_t k = 0; k < g->nodes[i].n_attrs; k++)
      if (g->nodes[i].attrs[k].g)
        pin_subgraph_reads(c, g->nodes[i].attrs[k].g);
  return NULL;
}

static void ctx_free(pass_ctx *c) {
  tsr__free(c->a, c->uses);
  tsr__free(c->a, c->pinned);
  tsr__free(c->a, c->dead);
}

/* Marks node i removed: its inputs lose a reader and its outputs their producer. */
static void kill_node(pass_ctx *c, uint32_t i) {
  tsr__node *n = &c->g->nodes[i];
  c->dead[i] = 1;
  c->rewired = true;
  for (uint32_t k = 0; k < n->n_inputs; k++)
    if (n->inputs[k] >= 0)
      c->uses[n->inputs[k]]--;
  for (uint32_t k = 0; k < n->n_outputs; k++)
    if (n->outputs[k] >= 0 && c->g->values[n->outputs[k]].producer == (int32_t)i)
      c->g->values[n->outputs[k]].producer = -1;
}

/* Makes every live node that reads `from` read `to` instead: a scan of every node. */
static void replace_reads(pass_ctx *c, int32_t from, int32_t to) {
  tsr__graph *g = c->g;
  for (uint32_t i = 0; i < g->n_nodes; i++) {
    if (c->dead[i])
      continue;
    for (uint32_t k = 0; k < g->nodes[i].n_inputs; k++)
      if (g->nodes[i].inputs[k] == from)
        g->nodes[i].inputs[k] = to;
  }
  c->uses[to] += c->uses[from];
  c->uses[from] = 0;
}

/* Makes node p write `to` where it wrote `from`. */
static void move_output(pass_ctx *c, uint32_t p, int32_t from, int32_t to) {
  tsr__node *n = &c->g->nodes[p];
  for (uint32_t k = 0; k < n->n_outputs; k++)
    if (n->outputs[k] == from)
      n->outputs[k] = to;
  c->g->values[from].producer = -1;
  c->g->values[to].producer = (int32_t)p;
}

/* Grows node i's input list to at least n entries, the new ones absent (-1). */
static tsr_status reserve_inputs(pass_ctx *c, uint32_t i, uint32_t n) {
  tsr__node *nd = &c->g->nodes[i];
  if (nd->n_inputs >= n)
    return NULL;
  int32_t *in = tsr__realloc(c->a, nd->inputs, (size_t)n * sizeof *in);
  if (!in)
    return oom();
  for (uint32_t j = nd->n_inputs; j < n; j++)
    in[j] = -1;
  nd->inputs = in;
  nd->n_inputs = n;
  return NULL;
}

/* Sets input k (< n_inputs, see reserve_inputs) of node i to v. */
static void set_input(pass_ctx *c, uint32_t i, uint32_t k, int32_t v) {
  tsr__node *n = &c->g->nodes[i];
  if (n->inputs[k] >= 0)
    c->uses[n->inputs[k]]--;
  n->inputs[k] = v;
  if (v >= 0)
    c->uses[v]++;
  c->rewired = true;
}

static bool is_op(const tsr__node *n, const char *op) {
  return n->op_type && strcmp(n->op_type, op) == 0 && (!n->domain || !*n->domain);
}

/* The value's float32 initializer when its data is all there; NULL otherwise. */
static const tsr__tensor_data *const_f32(const pass_ctx *c, int32_t v) {
  if (v < 0)
    return NULL;
  const tsr__tensor_data *t = c->g->values[v].init;
  size_t count, bytes;
  if (!t || t->dtype != TSR_DTYPE_FLOAT32 || t->rank < 0 ||
      !tsr__shape_count(t->dims, (size_t)t->rank, &count) ||
      !tsr__mul_size(count, sizeof(float), &bytes) || t->nbytes != bytes || (bytes && !t->data))
    return NULL;
  return t;
}

static bool is_vector(const tsr__tensor_data *t, int64_t n) {
  return t && t->rank == 1 && t->dims[0] == n;
}

/* True when a single node input reads v and nothing outside the nodes can see it. */
static bool private_value(const pass_ctx *c, int32_t v) { return c->uses[v] == 1 && !c->pinned[v]; }

/* Adds a float32 initializer named after `base` (made unique) holding `data`, which it takes
 * over on success. */
static tsr_status add_const_f32(pass_ctx *c, const char *base, const char *suffix, int32_t rank,
                                const int64_t *dims, float *data, size_t nbytes, int32_t *out) {
  *out = -1;
  const tsr_allocator *a = c->a;
  size_t len = strlen(base) + strlen(suffix) + 24;
  char *name = tsr__alloc(a, len);
  tsr__tensor_data *t = tsr__calloc(a, 1, sizeof *t);
  int64_t *tdims = tsr__calloc(a, rank ? (size_t)rank : 1, sizeof *tdims);
  tsr__dim *vdims = tsr__calloc(a, rank ? (size_t)rank : 1, sizeof *vdims);
  tsr_status st = NULL;
  if (!name || !t || !tdims || !vdims) {
    st = oom();
    goto fail;
  }
  snprintf(name, len, "%s%s", base, suffix);
  for (unsigned n = 1; tsr__graph_find_value(c->g, name) >= 0; n++)
    snprintf(name, len, "%s%s_%u", base, suffix, n);
  int32_t idx;
  if ((st = tsr__graph_intern_value(c->g, name, &idx)) || (st = grow_tables(c)))
    goto fail;
  for (int32_t d = 0; d < rank; d++) {
    tdims[d] = dims[d];
    vdims[d].value = dims[d];
  }
  t->dtype = TSR_DTYPE_FLOAT32;
  t->rank = rank;
  t->dims = tdims;
  t->data = data;
  t->nbytes = nbytes;
  tsr__value *v = &c->g->values[idx];
  v->dtype = TSR_DTYPE_FLOAT32;
  v->rank = rank;
  v->dims = vdims;
  v->init = t;
  tsr__free(a, name);
  *out = idx;
  return NULL;
fail:
  /* An interned value without data is harmless: nothing reads it. */
  tsr__free(a, name);
  tsr__free(a, t);
  tsr__free(a, tdims);
  tsr__free(a, vdims);
  return st;
}

/* New float32 data for input k of node i, which reads `old`: a weight that only this node
 * reads is overwritten in place (*out = old), anything else gets a new initializer (*out is
 * its index) so that its other readers keep their data. prepare_weight() allocates and may
 * fail; commit_weight() cannot. Both take over `data` once prepare_weight succeeds. */
static tsr_status prepare_weight(pass_ctx *c, uint32_t i, int32_t old, const char *suffix,
                                 int32_t rank, const int64_t *dims, float *data, size_t nbytes,
                                 int32_t *out) {
  if (old >= 0 && private_value(c, old)) {
    *out = old;
    return NULL;
  }
  return add_const_f32(c, c->g->nodes[i].name, suffix, rank, dims, data, nbytes, out);
}

static void commit_weight(pass_ctx *c, uint32_t i, uint32_t k, int32_t v, float *data) {
  if (v == c->g->nodes[i].inputs[k]) {
    tsr__tensor_data *t = c->g->values[v].init;
    tsr__free(c->a, t->data);
    t->data = data;
  } else {
    set_input(c, i, k, v);
  }
}

/* ---- BatchNormalization into Conv / ConvTranspose ---------------------------------------- */

/* True when BatchNormalization node n computes Y = (X - mean) / sqrt(var + eps) * scale + B
 * with one output (the inference form this pass folds). */
static bool bn_is_inference(const tsr__node *n) {
  /* Opsets below 7 (is_test, consumed_inputs) are not supported by the runtime; leave them
   * to fail as they would without the pass. */
  if (n->opset < 7 || n->n_inputs != 5 || n->n_outputs < 1 || n->outputs[0] < 0)
    return false;
  for (uint32_t k = 0; k < 5; k++)
    if (n->inputs[k] < 0)
      return false;
  for (uint32_t k = 1; k < n->n_outputs; k++)
    if (n->outputs[k] >= 0)
      return false;
  if (n->opset < 9 && tsr__node_attr_int(n, "spatial", 1) == 0)
    return false;
  if (n->opset >= 14 && tsr__node_attr_int(n, "training_mode", 0) != 0)
    return false;
  return true;
}

static tsr_status fold_batchnorm(pass_ctx *c, uint32_t bi) {
  tsr__graph *g = c->g;
  const tsr__node *bn = &g->nodes[bi];
  if (!is_op(bn, "BatchNormalization") || !bn_is_inference(bn))
    return NULL;
  int32_t x = bn->inputs[0], y = bn->outputs[0];
  int32_t p = g->values[x].producer;
  if (p < 0 || c->dead[p] || !private_value(c, x))
    return NULL;
  const tsr__node *conv = &g->nodes[p];
  bool transpose = is_op(conv, "ConvTranspose");
  if ((!transpose && !is_op(conv, "Conv")) || conv->n_outputs != 1 || conv->outputs[0] != x ||
      conv->n_inputs < 2 || conv->n_inputs > 3)
    return NULL;
  int32_t wv = conv->inputs[1], bv = conv->n_inputs > 2 ? conv->inputs[2] : -1;
  const tsr__tensor_data *w = const_f32(c, wv);
  if (!w || w->rank < 3)
    return NULL;
  int64_t group = tsr__node_attr_int(conv, "group", 1), m, mg = 0, cg = 0;
  if (group < 1)
    return NULL;
  if (!transpose) {
    m = w->dims[0];
  } else {
    /* W is [C, M / group, k...]: input channel ci feeds outputs of group ci / (C / group). */
    if (w->dims[0] % group != 0 || w->dims[1] > INT64_MAX / group)
      return NULL;
    mg = w->dims[1];
    cg = w->dims[0] / group;
    m = mg * group;
  }
  if (m <= 0)
    return NULL;
  const tsr__tensor_data *cb = bv >= 0 ? const_f32(c, bv) : NULL;
  if (bv >= 0 && !is_vector(cb, m))
    return NULL;
  const tsr__tensor_data *prm[4];
  for (int k = 0; k < 4; k++) {
    prm[k] = const_f32(c, bn->inputs[k + 1]);
    if (!is_vector(prm[k], m))
      return NULL;
  }
  const float *gamma = prm[0]->data, *beta = prm[1]->data, *mean = prm[2]->data,
              *var = prm[3]->data;
  double eps = tsr__node_attr_float(bn, "epsilon", 1e-5f);

  size_t count = w->nbytes / sizeof(float);
  if (count == 0)
    return NULL;
  size_t per = count / (size_t)w->dims[0]; /* dims[0] > 0 since count > 0 */
  double *scale = tsr__calloc(c->a, (size_t)m, sizeof *scale);
  float *nw = tsr__alloc(c->a, w->nbytes);
  float *nb = tsr__alloc(c->a, (size_t)m * sizeof *nb);
  if (!scale || !nw || !nb) {
    tsr__free(c->a, scale);
    tsr__free(c->a, nw);
    tsr__free(c->a, nb);
    return oom();
  }
  /* Folding must not turn a finite result into inf or NaN (or the reverse): any channel
   * whose factors are not finite keeps the graph as it is. */
  bool finite = true;
  for (int64_t o = 0; o < m && finite; o++) {
    scale[o] = (double)gamma[o] / sqrt((double)var[o] + eps);
    double b = ((cb ? (double)((const float *)cb->data)[o] : 0.0) - mean[o]) * scale[o] + beta[o];
    nb[o] = (float)b;
    finite = isfinite(scale[o]) && isfinite(nb[o]);
  }
  const float *wd = w->data;
  for (size_t e = 0; e < count && finite; e++) {
    size_t o;
    if (!transpose) {
      o = e / per;
    } else {
      size_t ci = e / per, j = (e / (per / (size_t)mg)) % (size_t)mg;
      o = ci / (size_t)cg * (size_t)mg + j;
    }
    nw[e] = (float)((double)wd[e] * scale[o]);
    finite = isfinite(nw[e]) || !isfinite(wd[e]);
  }
  tsr__free(c->a, scale);
  if (!finite) {
    tsr__free(c->a, nw);
    tsr__free(c->a, nb);
    return NULL;
  }

  /* Everything that can fail first: room for a bias input, new initializers. */
  int64_t bdims[1] = {m};
  int32_t nwv = -1, nbv = -1;
  tsr_status st = reserve_inputs(c, (uint32_t)p, 3);
  if (!st)
    st = prepare_weight(c, (uint32_t)p, wv, ".bn_weight", w->rank, w->dims, nw, w->nbytes, &nwv);
  if (st) {
    tsr__free(c->a, nw);
    tsr__free(c->a, nb);
    return st;
  }
  st = prepare_weight(c, (uint32_t)p, bv, ".bn_bias", 1, bdims, nb, (size_t)m * sizeof *nb, &nbv);
  if (st) {
    tsr__free(c->a, nb);
    if (nwv == wv)
      tsr__free(c->a, nw); /* not yet taken; a new weight value owns nw already */
    return st;
  }
  /* Commit. The BN's readers and the graph outputs keep the name y; the Conv now writes it.
   * prepare_weight may have added values: pointers into g->values are stale from here. */
  commit_weight(c, (uint32_t)p, 1, nwv, nw);
  commit_weight(c, (uint32_t)p, 2, nbv, nb);
  kill_node(c, bi);
  move_output(c, (uint32_t)p, x, y);
  c->stats.batchnorms_folded++;
  return NULL;
}

/* ---- Mul / Add by a constant into Conv ------------------------------------------------ */

static int32_t producer_op(const pass_ctx *c, int32_t v, const char *op);

/* The per-output-channel factors of constant t broadcast against a Conv output of rank `rank`
 * with m channels: a scalar (one element, rank at most the output's) or a vector along the
 * channel axis ([m], [m,1,...] or [1,m,1,...] aligned at the right as numpy broadcasts, every
 * other dim 1). Sets *per_channel; false when t is neither, so the output shape could change. */
static bool conv_affine_shape(const tsr__tensor_data *t, int32_t rank, int64_t m,
                              bool *per_channel) {
  if (!t || t->rank > rank)
    return false;
  size_t count = t->nbytes / sizeof(float);
  if (count == 1) {
    *per_channel = false;
    return true;
  }
  /* The channel axis is output dim 1, constant dim 1 - (rank - t->rank). */
  int32_t ch = 1 - (rank - t->rank);
  if (ch < 0 || count != (size_t)m)
    return false;
  for (int32_t d = 0; d < t->rank; d++)
    if (t->dims[d] != (d == ch ? m : 1))
      return false;
  *per_channel = true;
  return true;
}

/* Conv or ConvTranspose (constant float32 weights, nothing fused into it yet) whose output
 * alone feeds Mul(y, s) or Add(y, b) with a constant scalar or per-channel s / b, in either
 * order: the factor is folded into the weight and bias (in double) and the Mul or Add goes, as
 * PP-LCNet's "learnable affine blocks" after each convolution want, and as PP-OCR's detector
 * writes its ConvTranspose bias (an Add of a [1, C, 1, 1] constant, a BatchNormalization
 * after it, which then folds too). */
static tsr_status fold_conv_affine(pass_ctx *c, uint32_t ni) {
  tsr__graph *g = c->g;
  const tsr__node *nd = &g->nodes[ni];
  bool mul = is_op(nd, "Mul");
  /* Opsets below 7 broadcast by the legacy "broadcast" and "axis" attributes: left alone. */
  if ((!mul && !is_op(nd, "Add")) || nd->opset < 7 || nd->n_inputs != 2 || nd->n_outputs != 1 ||
      nd->outputs[0] < 0)
    return NULL;
  int32_t x = -1, kv = -1, p = -1;
  for (int side = 0; side < 2 && p < 0; side++) {
    x = nd->inputs[side];
    kv = nd->inputs[1 - side];
    if (x >= 0 && kv >= 0 && x != kv && private_value(c, x) && const_f32(c, kv)) {
      p = producer_op(c, x, "Conv");
      p = p >= 0 ? p : producer_op(c, x, "ConvTranspose");
    }
  }
  if (p < 0)
    return NULL;
  const tsr__node *conv = &g->nodes[p];
  bool transpose = is_op(conv, "ConvTranspose");
  if (conv->n_inputs < 2 || conv->n_inputs > 3 || tsr__node_attr(conv, "tessera.activation") ||
      tsr__node_attr(conv, "tessera.activation_params"))
    return NULL;
  int32_t wv = conv->inputs[1], bv = conv->n_inputs > 2 ? conv->inputs[2] : -1;
  const tsr__tensor_data *w = const_f32(c, wv);
  if (!w || w->rank < 3 || w->dims[0] <= 0 || w->dims[1] <= 0)
    return NULL;
  /* Output channels: W's first dim, or for ConvTranspose ([C, M / group, k...]) its second
   * times the groups, input channel ci feeding the outputs of group ci / (C / group). */
  int64_t group = transpose ? tsr__node_attr_int(conv, "group", 1) : 1;
  if (group < 1 || w->dims[0] % group != 0 || w->dims[1] > INT64_MAX / group)
    return NULL;
  int64_t m = transpose ? w->dims[1] * group : w->dims[0];
  int64_t mg = w->dims[1], cg = w->dims[0] / group;
  const tsr__tensor_data *cb = bv >= 0 ? const_f32(c, bv) : NULL;
  if (bv >= 0 && !is_vector(cb, m))
    return NULL;
  const tsr__tensor_data *k = const_f32(c, kv);
  bool per_channel;
  if (!conv_affine_shape(k, w->rank, m, &per_channel))
    return NULL;
  const float *kd = k->data;
  size_t count = w->nbytes / sizeof(float), per = count / (size_t)m;
  size_t taps = count / (size_t)(w->dims[0] * w->dims[1]); /* ConvTranspose: per (ci, j) */
  float *nw = mul ? tsr__alloc(c->a, w->nbytes) : NULL;
  float *nb = tsr__alloc(c->a, (size_t)m * sizeof *nb);
  if ((mul && !nw) || !nb) {
    tsr__free(c->a, nw);
    tsr__free(c->a, nb);
    return oom();
  }
  /* As for BatchNormalization: no finite result may turn into inf or NaN. */
  bool finite = true;
  for (int64_t o = 0; o < m && finite; o++) {
    double f = kd[per_channel ? o : 0];
    double b0 = cb ? (double)((const float *)cb->data)[o] : 0.0;
    nb[o] = (float)(mul ? b0 * f : b0 + f);
    finite = isfinite(f) && isfinite(nb[o]);
    /* Output o's weights: W[o] of a Conv; W[ci][o % mg] for the cg input channels ci of its
     * group of a ConvTranspose. */
    for (size_t e = 0; mul && e < per && finite; e++) {
      size_t at =
          !transpose ? (size_t)o * per + e
                     : (((size_t)(o / mg * cg) + e / taps) * (size_t)mg + (size_t)(o % mg)) * taps +
                           e % taps;
      float wo = ((const float *)w->data)[at];
      nw[at] = (float)((double)wo * f);
      finite = isfinite(nw[at]) || !isfinite(wo);
    }
  }
  if (!finite) {
    tsr__free(c->a, nw);
    tsr__free(c->a, nb);
    return NULL;
  }
  int64_t bdims[1] = {m};
  int32_t nwv = wv, nbv = -1;
  tsr_status st = reserve_inputs(c, (uint32_t)p, 3);
  if (!st && mul)
    st =
        prepare_weight(c, (uint32_t)p, wv, ".scaled_weight", w->rank, w->dims, nw, w->nbytes, &nwv);
  if (st) {
    tsr__free(c->a, nw);
    tsr__free(c->a, nb);
    return st;
  }
  st = prepare_weight(c, (uint32_t)p, bv, ".affine_bias", 1, bdims, nb, (size_t)m * sizeof *nb,
                      &nbv);
  if (st) {
    tsr__free(c->a, nb);
    if (mul && nwv == wv)
      tsr__free(c->a, nw);
    return st;
  }
  /* prepare_weight may have added values: pointers into g->values are stale from here. */
  if (mul)
    commit_weight(c, (uint32_t)p, 1, nwv, nw);
  commit_weight(c, (uint32_t)p, 2, nbv, nb);
  int32_t y = g->nodes[ni].outputs[0];
  kill_node(c, ni);
  move_output(c, (uint32_t)p, x, y);
  c->stats.affines_folded++;
  return NULL;
}

/* True when Conv node n reads no padding: pads absent or all zero, auto_pad NOTSET or VALID. */
static bool conv_unpadded(const tsr__node *n) {
  const char *ap = tsr__node_attr_string(n, "auto_pad", "NOTSET");
  if (strcmp(ap, "NOTSET") != 0 && strcmp(ap, "VALID") != 0)
    return false;
  const tsr__attr *pads = tsr__node_attr(n, "pads");
  if (!pads)
    return true;
  if (pads->type != 7) /* INTS */
    return false;
  for (size_t i = 0; i < pads->count; i++)
    if (pads->ints[i] != 0)
      return false;
  return true;
}

/* The constant operand and the other input of a two-input node `op` whose result v alone
 * reads; -1 when it is not that. */
static int32_t const_operand_of(const pass_ctx *c, int32_t v, const char *op, int32_t *other) {
  int32_t p = producer_op(c, v, op);
  if (p < 0 || !private_value(c, v) || c->g->nodes[p].n_inputs != 2 || c->g->nodes[p].opset < 7)
    return -1;
  for (int side = 0; side < 2; side++) {
    int32_t k = c->g->nodes[p].inputs[1 - side], x = c->g->nodes[p].inputs[side];
    if (x >= 0 && k >= 0 && x != k && const_f32(c, k)) {
      *other = x;
      return p;
    }
  }
  return -1;
}

/* Conv (constant float32 weights, no padding) reading Mul(x, s), Add(x, t) or
 * Add(Mul(x, s), t) with constant scalar or per-input-channel s and t: since no padded zero
 * enters a sum, Conv(s x + t) = Conv'(x) with W' = W s and b' = b + sum W t per output channel
 * (in double), and the Mul and Add go. PP-LCNet puts such an affine block after every
 * hard-swish, before its 1x1 convolutions. */
static tsr_status fold_affine_into_conv(pass_ctx *c, uint32_t ci) {
  tsr__graph *g = c->g;
  const tsr__node *conv = &g->nodes[ci];
  if (!is_op(conv, "Conv") || conv->n_inputs < 2 || conv->n_inputs > 3 || conv->n_outputs != 1 ||
      !conv_unpadded(conv))
    return NULL;
  int32_t wv = conv->inputs[1], bv = conv->n_inputs > 2 ? conv->inputs[2] : -1;
  const tsr__tensor_data *w = const_f32(c, wv);
  int64_t group = tsr__node_attr_int(conv, "group", 1);
  if (!w || w->rank < 3 || w->dims[0] <= 0 || w->dims[1] <= 0 || group < 1 ||
      w->dims[0] % group != 0 || w->dims[1] > INT64_MAX / group)
    return NULL;
  int64_t m = w->dims[0], cg = w->dims[1], ch = cg * group;
  const tsr__tensor_data *cb = bv >= 0 ? const_f32(c, bv) : NULL;
  if (bv >= 0 && !is_vector(cb, m))
    return NULL;
  int32_t x = conv->inputs[0], t_v = -1, s_v = -1, kill[2] = {-1, -1};
  int32_t ai = const_operand_of(c, x, "Add", &x);
  if (ai >= 0) {
    t_v = g->nodes[ai].inputs[0] == x ? g->nodes[ai].inputs[1] : g->nodes[ai].inputs[0];
    kill[0] = ai;
  }
  int32_t mi = const_operand_of(c, x, "Mul", &x);
  if (mi >= 0) {
    s_v = g->nodes[mi].inputs[0] == x ? g->nodes[mi].inputs[1] : g->nodes[mi].inputs[0];
    kill[1] = mi;
  }
  const tsr__tensor_data *t = t_v >= 0 ? const_f32(c, t_v) : NULL;
  const tsr__tensor_data *s = s_v >= 0 ? const_f32(c, s_v) : NULL;
  bool t_pc = false, s_pc = false;
  if (t && !conv_affine_shape(t, w->rank, ch, &t_pc))
    return NULL; /* an Add that broadcasts otherwise; a Mul before it cannot fold alone */
  if (s && !conv_affine_shape(s, w->rank, ch, &s_pc)) {
    s = NULL;
    kill[1] = -1;
    x = g->nodes[mi].outputs[0];
  }
  if (!t && !s)
    return NULL;
  const float *wd = w->data, *sd = s ? s->data : NULL, *td = t ? t->data : NULL;
  size_t count = w->nbytes / sizeof(float), per = count / (size_t)m, ks = per / (size_t)cg;
  float *nw = s ? tsr__alloc(c->a, w->nbytes) : NULL;
  float *nb = tsr__alloc(c->a, (size_t)m * sizeof *nb);
  if ((s && !nw) || !nb) {
    tsr__free(c->a, nw);
    tsr__free(c->a, nb);
    return oom();
  }
  bool finite = true;
  int64_t mg = m / group;
  for (int64_t o = 0; o < m && finite; o++) {
    double acc = cb ? (double)((const float *)cb->data)[o] : 0.0;
    for (size_t e = 0; e < per && finite; e++) {
      size_t in_ch = (size_t)(o / mg * cg) + e / ks;
      double wo = wd[(size_t)o * per + e];
      double sf = s ? sd[s_pc ? in_ch : 0] : 1.0;
      if (s) {
        nw[(size_t)o * per + e] = (float)(wo * sf);
        finite = isfinite(sf) && (isfinite(nw[(size_t)o * per + e]) || !isfinite(wo));
      }
      if (t)
        acc += wo * td[t_pc ? in_ch : 0];
    }
    nb[o] = (float)acc;
    finite = finite && isfinite(nb[o]);
  }
  if (!finite) {
    tsr__free(c->a, nw);
    tsr__free(c->a, nb);
    return NULL;
  }
  int64_t bdims[1] = {m};
  int32_t nwv = wv, nbv = -1;
  tsr_status st = reserve_inputs(c, ci, 3);
  if (!st && s)
    st = prepare_weight(c, ci, wv, ".scaled_weight", w->rank, w->dims, nw, w->nbytes, &nwv);
  if (st) {
    tsr__free(c->a, nw);
    tsr__free(c->a, nb);
    return st;
  }
  st = prepare_weight(c, ci, bv, ".affine_bias", 1, bdims, nb, (size_t)m * sizeof *nb, &nbv);
  if (st) {
    tsr__free(c->a, nb);
    if (s && nwv == wv)
      tsr__free(c->a, nw);
    return st;
  }
  if (s)
    commit_weight(c, ci, 1, nwv, nw);
  commit_weight(c, ci, 2, nbv, nb);
  set_input(c, ci, 0, x);
  for (int k = 0; k < 2; k++)
    if (kill[k] >= 0) {
      kill_node(c, (uint32_t)kill[k]);
      c->stats.affines_folded++;
    }
  return NULL;
}

/* ---- Identity and inference Dropout ---------------------------------------------------- */

/* True when every byte of the first element of a constant is zero (false, 0, 0.0). */
static bool const_is_zero(const tsr__tensor_data *t) {
  size_t es = t ? tsr_dtype_size((tsr_dtype)t->dtype) : 0;
  if (!es || t->nbytes < es || !t->data)
    return false;
  for (size_t i = 0; i < es; i++)
    if (((const uint8_t *)t->data)[i])
      return false;
  return true;
}

/* True when Dropout node n only copies its input: inference mode, no mask anyone reads. */
static bool dropout_is_identity(const pass_ctx *c, const tsr__node *n) {
  /* Before opset 7 training (is_test = 0) was the default; the runtime refuses those. */
  if (n->opset < 7 || n->n_inputs < 1 || n->n_outputs < 1 || n->n_outputs > 2)
    return false;
  if (n->opset < 12) {
    if (n->n_inputs > 1)
      return false;
  } else if (n->n_inputs > 3) {
    return false;
  } else if (n->n_inputs == 3 && n->inputs[2] >= 0 &&
             !const_is_zero(c->g->values[n->inputs[2]].init)) {
    return false; /* training_mode true, or not known until run time */
  }
  if (n->n_outputs == 2 && n->outputs[1] >= 0) {
    int32_t mask = n->outputs[1];
    if (c->uses[mask] || c->pinned[mask])
      return false;
  }
  return true;
}

/* Removes node i when it is a pass-through. Readers of its output that come later in the
 * sweep are redirected lazily through `alias` (value -> value it now stands for, -1 for
 * none) rather than by scanning every node, so that the sweep stays linear; uses[] counts
 * them on the new value at once. */
static void remove_passthrough(pass_ctx *c, uint32_t i, int32_t *alias) {
  tsr__graph *g = c->g;
  const tsr__node *n = &g->nodes[i];
  bool identity = is_op(n, "Identity");
  if (identity ? n->n_inputs != 1 || n->n_outputs != 1
               : !is_op(n, "Dropout") || !dropout_is_identity(c, n))
    return;
  int32_t x = n->inputs[0], y = n->outputs[0];
  if (x < 0 || y < 0 || x == y || (c->pinned[y] & PIN_SUBGRAPH))
    return;
  if (!(c->pinned[y] & PIN_OUTPUT)) {
    /* Readers of y read x; all of them come later in topological order. */
    kill_node(c, i);
    alias[y] = x;
    c->uses[x] += c->uses[y];
    c->uses[y] = 0;
  } else {
    /* y is a graph output and keeps its name: x's producer writes y instead, and x's
     * readers read y. A graph input, initializer or other output x keeps the node. Rare
     * enough (once per graph output at most) for a scan of every node. */
    int32_t p = g->values[x].producer;
    if (p < 0 || c->dead[p] || c->pinned[x])
      return;
    kill_node(c, i);
    move_output(c, (uint32_t)p, x, y);
    replace_reads(c, x, y);
    alias[x] = y; /* later readers still holding an alias of x */
  }
  c->stats.identities_removed++;
}

/* One sweep in topological order: each node's inputs are resolved through the aliases of
 * pass-throughs removed before it, then the node itself may go. */
static tsr_status remove_passthroughs(pass_ctx *c) {
  tsr__graph *g = c->g;
  int32_t *alias = tsr__alloc(c->a, (size_t)c->cap * sizeof *alias);
  if (!alias)
    return oom();
  for (uint32_t v = 0; v < c->cap; v++)
    alias[v] = -1;
  for (uint32_t i = 0; i < g->n_nodes; i++) {
    if (c->dead[i])
      continue;
    tsr__node *n = &g->nodes[i];
    for (uint32_t k = 0; k < n->n_inputs; k++)
      while (n->inputs[k] >= 0 && alias[n->inputs[k]] >= 0)
        n->inputs[k] = alias[n->inputs[k]];
    remove_passthrough(c, i, alias);
  }
  tsr__free(c->a, alias);
  return NULL;
}

/* ---- MatMul + Add into Gemm ------------------------------------------------------------ */

/* True when v is certainly a matrix before any shape is known: a graph input declared with
 * rank 2 (the session enforces declared ranks), or the output of Flatten or Gemm. */
static bool is_matrix(const pass_ctx *c, int32_t v) {
  const tsr__value *val = &c->g->values[v];
  if (val->producer < 0)
    return !val->init && val->rank == 2;
  const tsr__node *p = &c->g->nodes[val->producer];
  return (is_op(p, "Flatten") || is_op(p, "Gemm")) && p->outputs[0] == v;
}

static tsr_status fuse_gemm(pass_ctx *c, uint32_t ai) {
  tsr__graph *g = c->g;
  const tsr__node *add = &g->nodes[ai];
  /* Gemm (with unidirectional broadcast of C) starts at opset 7. */
  if (!is_op(add, "Add") || add->opset < 7 || add->n_inputs != 2 || add->n_outputs != 1 ||
      add->outputs[0] < 0 || add->n_attrs)
    return NULL;
  for (int side = 0; side < 2; side++) {
    int32_t mv = add->inputs[side], cv = add->inputs[1 - side];
    if (mv < 0 || cv < 0 || mv == cv)
      continue;
    int32_t p = g->values[mv].producer;
    if (p < 0 || c->dead[p] || !private_value(c, mv))
      continue;
    const tsr__node *mm = &g->nodes[p];
    if (!is_op(mm, "MatMul") || mm->n_inputs != 2 || mm->n_outputs != 1 || mm->n_attrs ||
        mm->inputs[0] < 0 || mm->inputs[1] < 0 || !is_matrix(c, mm->inputs[0]))
      continue;
    const tsr__tensor_data *b = const_f32(c, mm->inputs[1]), *bias = const_f32(c, cv);
    if (!b || b->rank != 2 || !bias || bias->rank > 2)
      continue;
    /* C must broadcast to [M, N] without growing it: [], [1], [N], [1, 1] or [1, N]. */
    int64_t n = b->dims[1], last = bias->rank ? bias->dims[bias->rank - 1] : 1;
    if ((last != 1 && last != n) || (bias->rank == 2 && bias->dims[0] != 1))
      continue;
    char *op = tsr__strdup(c->a, "Gemm");
    tsr_status st = op ? reserve_inputs(c, (uint32_t)p, 3) : oom();
    if (st) {
      tsr__free(c->a, op);
      return st;
    }
    int32_t y = add->outputs[0];
    set_input(c, (uint32_t)p, 2, cv);
    kill_node(c, ai);
    tsr__node *gm = &g->nodes[p];
    tsr__free(c->a, gm->op_type);
    gm->op_type = op;
    move_output(c, (uint32_t)p, mv, y);
    c->stats.gemms_fused++;
    return NULL;
  }
  return NULL;
}

/* ---- Activation into Conv / Gemm -------------------------------------------------------- */

/* The scalar of a constant float32 bound of Clip (opset 11+): false when it is not one. */
static bool const_scalar_f32(const pass_ctx *c, int32_t v, float *out) {
  const tsr__tensor_data *t = const_f32(c, v);
  if (!t || t->nbytes != sizeof(float))
    return false;
  memcpy(out, t->data, sizeof *out);
  return true;
}

/* Reads activation node n as a name and parameters the CPU kernels know (see passes.h);
 * false when it is not one this pass fuses. */
static bool activation_of(const pass_ctx *c, const tsr__node *n, const char **name, float *prm,
                          uint32_t *n_prm) {
  *n_prm = 0;
  if (n->n_inputs < 1 || n->n_outputs != 1 || n->inputs[0] < 0 || n->outputs[0] < 0)
    return false;
  if (is_op(n, "Relu")) {
    *name = "relu";
    return n->n_inputs == 1;
  }
  if (is_op(n, "LeakyRelu")) {
    *name = "leakyrelu";
    prm[(*n_prm)++] = tsr__node_attr_float(n, "alpha", 0.01f);
    return n->n_inputs == 1;
  }
  if (is_op(n, "HardSigmoid")) {
    *name = "hardsigmoid";
    prm[(*n_prm)++] = tsr__node_attr_float(n, "alpha", 0.2f);
    prm[(*n_prm)++] = tsr__node_attr_float(n, "beta", 0.5f);
    return n->n_inputs == 1;
  }
  if (is_op(n, "HardSwish")) {
    *name = "hardswish";
    return n->n_inputs == 1;
  }
  if (is_op(n, "Sigmoid")) {
    *name = "sigmoid";
    return n->n_inputs == 1;
  }
  if (is_op(n, "Gelu")) {
    /* A model's own (opset 20), or one fuse_gelu wrote. */
    const char *approx = tsr__node_attr_string(n, "approximate", "none");
    *name = strcmp(approx, "tanh") == 0 ? "gelu_tanh" : "gelu";
    return n->n_inputs == 1 && (strcmp(approx, "tanh") == 0 || strcmp(approx, "none") == 0);
  }
  if (is_op(n, "Clip")) {
    /* Absent bounds are infinite, as the CPU plugin's Clip treats them. */
    *name = "clip";
    float lo = -INFINITY, hi = INFINITY;
    if (n->opset < 11) {
      if (n->n_inputs != 1)
        return false;
      if (tsr__node_attr(n, "min"))
        lo = tsr__node_attr_float(n, "min", 0);
      if (tsr__node_attr(n, "max"))
        hi = tsr__node_attr_float(n, "max", 0);
    } else {
      if (n->n_inputs > 3)
        return false;
      if (n->n_inputs > 1 && n->inputs[1] >= 0 && !const_scalar_f32(c, n->inputs[1], &lo))
        return false;
      if (n->n_inputs > 2 && n->inputs[2] >= 0 && !const_scalar_f32(c, n->inputs[2], &hi))
        return false;
    }
    prm[(*n_prm)++] = lo;
    prm[(*n_prm)++] = hi;
    return true;
  }
  return false;
}

/* The live node that writes v when it is op `op` with one output; -1 otherwise. */
static int32_t producer_op(const pass_ctx *c, int32_t v, const char *op) {
  if (v < 0)
    return -1;
  int32_t p = c->g->values[v].producer;
  if (p < 0 || c->dead[p] || !is_op(&c->g->nodes[p], op) || c->g->nodes[p].n_outputs != 1 ||
      c->g->nodes[p].outputs[0] != v)
    return -1;
  return p;
}

/* When node mi is SiLU written out, Mul(x, Sigmoid(x)) in either order with the Sigmoid's
 * output read by the Mul alone, returns the Sigmoid's index and sets *x; else -1. */
static int32_t silu_of(const pass_ctx *c, uint32_t mi, int32_t *x) {
  const tsr__node *m = &c->g->nodes[mi];
  if (!is_op(m, "Mul") || m->n_inputs != 2 || m->n_outputs != 1 || m->outputs[0] < 0)
    return -1;
  for (int side = 0; side < 2; side++) {
    int32_t sv = m->inputs[side], xv = m->inputs[1 - side];
    int32_t si = producer_op(c, sv, "Sigmoid");
    if (si < 0 || xv < 0 || !private_value(c, sv) || c->g->nodes[si].n_inputs != 1 ||
        c->g->nodes[si].inputs[0] != xv)
      continue;
    *x = xv;
    return si;
  }
  return -1;
}

static tsr_status fuse_activation(pass_ctx *c, uint32_t ai) {
  tsr__graph *g = c->g;
  const tsr__node *act = &g->nodes[ai];
  const char *name = NULL;
  float prm[2];
  uint32_t n_prm = 0;
  int32_t x, sig = silu_of(c, ai, &x);
  if (sig >= 0) {
    /* x feeds the Sigmoid and the Mul, and nothing else. */
    name = "silu";
    if (c->uses[x] != 2 || c->pinned[x])
      return NULL;
  } else {
    if (!activation_of(c, act, &name, prm, &n_prm))
      return NULL;
    x = act->inputs[0];
    if (!private_value(c, x))
      return NULL;
  }
  int32_t y = act->outputs[0];
  int32_t p = g->values[x].producer;
  if (x == y || p < 0 || c->dead[p])
    return NULL;
  const tsr__node *op = &g->nodes[p];
  /* Constant float32 weights make the dtype float32, which the kernels' epilogue covers. */
  bool conv = is_op(op, "Conv");
  if ((!conv && !is_op(op, "Gemm")) || op->n_outputs != 1 || op->outputs[0] != x ||
      op->n_inputs < 2 || !const_f32(c, op->inputs[1]) ||
      tsr__node_attr(op, "tessera.activation") || tsr__node_attr(op, "tessera.activation_params"))
    return NULL;

  /* Everything that can fail first: the two attributes. */
  const tsr_allocator *a = c->a;
  char *n_act = tsr__strdup(a, "tessera.activation"), *s_act = tsr__strdup(a, name);
  char *n_prm_name = n_prm ? tsr__strdup(a, "tessera.activation_params") : NULL;
  float *floats = n_prm ? tsr__alloc(a, n_prm * sizeof *floats) : NULL;
  uint32_t add = n_prm ? 2 : 1;
  tsr__attr *attrs = NULL;
  if (n_act && s_act && (!n_prm || (n_prm_name && floats)))
    attrs = tsr__realloc(a, g->nodes[p].attrs, (size_t)(op->n_attrs + add) * sizeof *attrs);
  if (!attrs) {
    tsr__free(a, n_act);
    tsr__free(a, s_act);
    tsr__free(a, n_prm_name);
    tsr__free(a, floats);
    return oom();
  }
  tsr__node *nd = &g->nodes[p];
  nd->attrs = attrs;
  tsr__attr *at = &attrs[nd->n_attrs];
  memset(at, 0, add * sizeof *at);
  at[0].name = n_act;
  at[0].type = 3; /* STRING */
  at[0].s = s_act;
  at[0].s_len = strlen(s_act);
  if (n_prm) {
    memcpy(floats, prm, n_prm * sizeof *floats);
    at[1].name = n_prm_name;
    at[1].type = 6; /* FLOATS */
    at[1].floats = floats;
    at[1].count = n_prm;
  }
  nd->n_attrs += add;
  /* The activation's readers and the graph outputs keep the name y; the Conv now writes it. */
  kill_node(c, ai);
  if (sig >= 0)
    kill_node(c, (uint32_t)sig);
  move_output(c, (uint32_t)p, x, y);
  c->stats.activations_fused++;
  return NULL;
}

/* ---- Patterns written out as primitive ops into one node --------------------------------- */

static void node_free(const tsr_allocator *a, tsr__node *n);

/* The scalar of a float32 constant with one element (any rank); false otherwise. */
static bool const_one_f32(const pass_ctx *c, int32_t v, double *out) {
  float f;
  if (!const_scalar_f32(c, v, &f))
    return false;
  *out = f;
  return true;
}

/* True when v is a float32 constant scalar within a float's rounding of `want`. */
static bool const_near(const pass_ctx *c, int32_t v, double want) {
  double f;
  return const_one_f32(c, v, &f) && fabs(f - want) <= 1e-6 * fabs(want);
}

/* When node n has two inputs and one of them is v, sets *other to the other one and returns
 * v's side (0 or 1); -1 otherwise. */
static int other_input(const tsr__node *n, int32_t v, int32_t *other) {
  if (n->n_inputs != 2)
    return -1;
  for (int side = 0; side < 2; side++)
    if (n->inputs[side] == v) {
      *other = n->inputs[1 - side];
      return side;
    }
  return -1;
}

/* An attribute to give a rewritten node. */
typedef struct new_attr {
  const char *name;
  int32_t type; /* 1 FLOAT, 2 INT, 3 STRING */
  float f;
  int64_t i;
  const char *s;
} new_attr;

/* Turns node i into `op` (default domain, at `opset`) reading `inputs` with `attrs`; it keeps
 * its name and its first output (any others go). Everything is allocated before anything
 * changes, so an error leaves node i as it was. */
static tsr_status rewrite_node(pass_ctx *c, uint32_t i, const char *op, int64_t opset,
                               const int32_t *inputs, uint32_t n_in, const new_attr *attrs,
                               uint32_t n_attrs) {
  const tsr_allocator *a = c->a;
  char *op_s = tsr__strdup(a, op);
  int32_t *in = tsr__alloc(a, (size_t)(n_in ? n_in : 1) * sizeof *in);
  tsr__attr *at = n_attrs ? tsr__calloc(a, n_attrs, sizeof *at) : NULL;
  bool ok = op_s && in && (!n_attrs || at);
  for (uint32_t k = 0; ok && k < n_attrs; k++) {
    at[k].name = tsr__strdup(a, attrs[k].name);
    at[k].type = attrs[k].type;
    at[k].f = attrs[k].f;
    at[k].i = attrs[k].i;
    ok = at[k].name != NULL;
    if (ok && attrs[k].s) {
      at[k].s = tsr__strdup(a, attrs[k].s);
      at[k].s_len = strlen(attrs[k].s);
      ok = at[k].s != NULL;
    }
  }
  if (!ok) {
    for (uint32_t k = 0; at && k < n_attrs; k++) {
      tsr__free(a, at[k].name);
      tsr__free(a, at[k].s);
    }
    tsr__free(a, at);
    tsr__free(a, in);
    tsr__free(a, op_s);
    return oom();
  }
  tsr__node *n = &c->g->nodes[i];
  for (uint32_t k = 0; k < n->n_inputs; k++)
    if (n->inputs[k] >= 0)
      c->uses[n->inputs[k]]--;
  for (uint32_t k = 0; k < n_in; k++) {
    in[k] = inputs[k];
    if (in[k] >= 0)
      c->uses[in[k]]++;
  }
  for (uint32_t k = 1; k < n->n_outputs; k++)
    if (n->outputs[k] >= 0 && c->g->values[n->outputs[k]].producer == (int32_t)i)
      c->g->values[n->outputs[k]].producer = -1;
  n->n_outputs = n->n_outputs ? 1 : 0;
  tsr__node old = *n;
  old.inputs = NULL; /* the rest of what it owned is freed below */
  old.n_inputs = 0;
  old.name = NULL;
  old.outputs = NULL;
  old.n_outputs = 0;
  old.domain = NULL;
  tsr__free(a, n->inputs);
  n->inputs = in;
  n->n_inputs = n_in;
  n->op_type = op_s;
  n->opset = opset;
  n->attrs = at;
  n->n_attrs = n_attrs;
  node_free(a, &old);
  c->rewired = true;
  return NULL;
}

/* The value c * v or v * c (a Mul node, its result read once) for a constant c near `want`:
 * returns the Mul's index and sets *v; -1 otherwise. */
static int32_t scaled_by(const pass_ctx *c, int32_t value, double want, int32_t *v) {
  int32_t q = producer_op(c, value, "Mul");
  if (q < 0 || !private_value(c, value) || c->g->nodes[q].n_inputs != 2)
    return -1;
  for (int side = 0; side < 2; side++)
    if (const_near(c, c->g->nodes[q].inputs[1 - side], want)) {
      *v = c->g->nodes[q].inputs[side];
      return *v >= 0 ? q : -1;
    }
  return -1;
}

/* The tanh form's argument, sqrt(2 / pi) * (x + 0.044715 * x^3) (products in either order,
 * x^3 as Pow(x, 3) or x * (x * x)), as the value u that Tanh reads: fills kill[] with its
 * nodes and returns their count (0 when it is not that). */
static uint32_t gelu_tanh_argument(const pass_ctx *c, int32_t u, int32_t x, int32_t kill[5]) {
  const tsr__graph *g = c->g;
  int32_t w, k, p3, other;
  int32_t ci = scaled_by(c, u, 0.797884560802865355, &w);
  int32_t wi = ci >= 0 ? producer_op(c, w, "Add") : -1;
  if (wi < 0 || !private_value(c, w) || other_input(&g->nodes[wi], x, &other) < 0)
    return 0;
  k = other;
  int32_t ki = scaled_by(c, k, 0.044715, &p3);
  if (ki < 0 || !private_value(c, p3))
    return 0;
  kill[0] = ci;
  kill[1] = wi;
  kill[2] = ki;
  int32_t pi = producer_op(c, p3, "Pow");
  if (pi >= 0) {
    const tsr__node *pw = &g->nodes[pi];
    if (pw->n_inputs != 2 || pw->inputs[0] != x || !const_near(c, pw->inputs[1], 3.0))
      return 0;
    kill[3] = pi;
    return 4;
  }
  /* x * (x * x), as torch exports gelu(approximate="tanh"). */
  int32_t mi = producer_op(c, p3, "Mul"), sq;
  if (mi < 0 || other_input(&g->nodes[mi], x, &sq) < 0)
    return 0;
  int32_t si = producer_op(c, sq, "Mul");
  if (si < 0 || !private_value(c, sq) || g->nodes[si].n_inputs != 2 ||
      g->nodes[si].inputs[0] != x || g->nodes[si].inputs[1] != x)
    return 0;
  kill[3] = mi;
  kill[4] = si;
  return 5;
}

/* GELU written out, y = x * (E + 1) * 0.5 with the three factors multiplied in any order by
 * two Muls, in its exact form as torch exports it, E = Erf(x / sqrt 2) (x / sqrt 2 may be
 * x * (1 / sqrt 2)), or in the tanh form, E = Tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)). The
 * last Mul becomes Gelu (opset 20; approximate "none" or "tanh"), which the activation pass
 * may then fuse into a Conv or Gemm before it. Every intermediate value must be read by the
 * pattern alone. */
static tsr_status fuse_gelu(pass_ctx *c, uint32_t mi) {
  tsr__graph *g = c->g;
  const tsr__node *m = &g->nodes[mi];
  if (!is_op(m, "Mul") || m->n_inputs != 2 || m->n_outputs != 1 || m->outputs[0] < 0)
    return NULL;
  /* The three factors: the final Mul's inputs, one of them expanded through an inner Mul. */
  int32_t f[3] = {-1, -1, -1}, inner = -1;
  for (int side = 0; side < 2 && inner < 0; side++) {
    int32_t v = m->inputs[side], q = producer_op(c, v, "Mul");
    if (q < 0 || !private_value(c, v) || g->nodes[q].n_inputs != 2)
      continue;
    inner = q;
    f[0] = g->nodes[q].inputs[0];
    f[1] = g->nodes[q].inputs[1];
    f[2] = m->inputs[1 - side];
  }
  if (inner < 0)
    return NULL;
  /* Which factor is 0.5, which is Add(Erf(..), 1), which is x (x may be an Add's output
   * too: a MatMul's bias). */
  int half = -1, plus = -1;
  int32_t ai = -1, ei = -1, ev = -1;
  for (int k = 0; k < 3; k++) {
    if (f[k] < 0)
      return NULL;
    if (half < 0 && const_near(c, f[k], 0.5)) {
      half = k;
      continue;
    }
    int32_t q = producer_op(c, f[k], "Add");
    if (plus >= 0 || q < 0 || g->nodes[q].n_inputs != 2 || !private_value(c, f[k]))
      continue;
    for (int side = 0; side < 2 && ei < 0; side++) {
      int32_t v = g->nodes[q].inputs[side];
      if (!const_near(c, g->nodes[q].inputs[1 - side], 1.0))
        continue;
      if ((ei = producer_op(c, v, "Erf")) < 0)
        ei = producer_op(c, v, "Tanh");
      if (ei >= 0) {
        ev = v;
        ai = q;
        plus = k;
      }
    }
  }
  if (half < 0 || plus < 0 || !private_value(c, ev) || g->nodes[ei].n_inputs != 1)
    return NULL;
  int32_t x = f[3 - half - plus];
  int32_t u = g->nodes[ei].inputs[0];
  if (x < 0 || u < 0 || !private_value(c, u))
    return NULL;
  if (is_op(&g->nodes[ei], "Tanh")) {
    int32_t arg[5];
    uint32_t n_arg = gelu_tanh_argument(c, u, x, arg);
    if (!n_arg)
      return NULL;
    const int32_t ins[1] = {x};
    const new_attr approx[1] = {{"approximate", 3, 0, 0, "tanh"}};
    TSR_RETURN_IF_ERROR(rewrite_node(c, mi, "Gelu", 20, ins, 1, approx, 1));
    kill_node(c, (uint32_t)inner);
    kill_node(c, (uint32_t)ai);
    kill_node(c, (uint32_t)ei);
    for (uint32_t k = 0; k < n_arg; k++)
      kill_node(c, (uint32_t)arg[k]);
    c->stats.gelus_fused++;
    return NULL;
  }
  int32_t di = producer_op(c, u, "Div");
  int32_t other = -1;
  if (di >= 0) {
    if (g->nodes[di].n_inputs != 2 || g->nodes[di].inputs[0] != x ||
        !const_near(c, g->nodes[di].inputs[1], 1.41421356237309505))
      return NULL;
  } else if ((di = producer_op(c, u, "Mul")) >= 0) {
    if (other_input(&g->nodes[di], x, &other) < 0 || !const_near(c, other, 0.707106781186547524))
      return NULL;
  } else {
    return NULL;
  }
  /* x is read here twice (the scaling and the product) and by nothing else in the pattern;
   * readers outside it keep reading x, which stays. */
  const int32_t ins[1] = {x};
  TSR_RETURN_IF_ERROR(rewrite_node(c, mi, "Gelu", 20, ins, 1, NULL, 0));
  kill_node(c, (uint32_t)inner);
  kill_node(c, (uint32_t)ai);
  kill_node(c, (uint32_t)ei);
  kill_node(c, (uint32_t)di);
  c->stats.gelus_fused++;
  return NULL;
}

/* HardSwish written out, as PaddlePaddle exports it, x * Clip(x + 3, 0, 6) / 6 (the Div may
 * be a Mul by 1 / 6; products and sums in either order), or as x * HardSigmoid(x) with
 * alpha 1 / 6 and beta 0.5: the last node becomes HardSwish (opset 14), which the activation
 * pass may then fuse into a Conv before it. Every intermediate value must be read by the
 * pattern alone. */
static tsr_status fuse_hardswish(pass_ctx *c, uint32_t li) {
  tsr__graph *g = c->g;
  const tsr__node *last = &g->nodes[li];
  if (last->n_inputs != 2 || last->n_outputs != 1 || last->outputs[0] < 0)
    return NULL;
  int32_t kill[3], n_kill = 0, x = -1;
  if (is_op(last, "Mul")) {
    /* x * HardSigmoid(x), either order. */
    for (int side = 0; side < 2 && x < 0; side++) {
      int32_t hv = last->inputs[side], hi = producer_op(c, hv, "HardSigmoid");
      if (hi < 0 || !private_value(c, hv) || g->nodes[hi].n_inputs != 1 ||
          g->nodes[hi].inputs[0] != last->inputs[1 - side])
        continue;
      double alpha = tsr__node_attr_float(&g->nodes[hi], "alpha", 0.2f);
      double beta = tsr__node_attr_float(&g->nodes[hi], "beta", 0.5f);
      if (fabs(alpha - 1.0 / 6.0) > 1e-6 || fabs(beta - 0.5) > 1e-6)
        continue;
      x = last->inputs[1 - side];
      kill[n_kill++] = hi;
    }
  }
  if (x < 0) {
    /* (x * Clip(x + 3, 0, 6)) / 6 or * (1 / 6). */
    int32_t pv = -1;
    if (is_op(last, "Div")) {
      if (const_near(c, last->inputs[1], 6.0))
        pv = last->inputs[0];
    } else if (is_op(last, "Mul")) {
      for (int side = 0; side < 2 && pv < 0; side++)
        if (const_near(c, last->inputs[1 - side], 1.0 / 6.0))
          pv = last->inputs[side];
    }
    int32_t mi = pv >= 0 && private_value(c, pv) ? producer_op(c, pv, "Mul") : -1;
    if (mi < 0 || g->nodes[mi].n_inputs != 2)
      return NULL;
    for (int side = 0; side < 2 && x < 0; side++) {
      int32_t cv = g->nodes[mi].inputs[side], xv = g->nodes[mi].inputs[1 - side];
      int32_t ci = producer_op(c, cv, "Clip");
      const char *name;
      float prm[2];
      uint32_t n_prm;
      if (ci < 0 || xv < 0 || !private_value(c, cv) ||
          !activation_of(c, &g->nodes[ci], &name, prm, &n_prm) || prm[0] != 0.0f || prm[1] != 6.0f)
        continue;
      int32_t av = g->nodes[ci].inputs[0], ai = producer_op(c, av, "Add"), other;
      if (ai < 0 || !private_value(c, av) || other_input(&g->nodes[ai], xv, &other) < 0 ||
          !const_near(c, other, 3.0))
        continue;
      x = xv;
      kill[n_kill++] = mi;
      kill[n_kill++] = ci;
      kill[n_kill++] = ai;
    }
  }
  if (x < 0)
    return NULL;
  const int32_t ins[1] = {x};
  TSR_RETURN_IF_ERROR(rewrite_node(c, li, "HardSwish", 14, ins, 1, NULL, 0));
  for (int32_t k = 0; k < n_kill; k++)
    kill_node(c, (uint32_t)kill[k]);
  c->stats.hardswishes_fused++;
  return NULL;
}

/* True when ReduceMean node r averages over one axis, keeping it, and sets *axis: the axes
 * are an attribute before opset 18, a constant input from it. */
static bool reduce_one_axis(const pass_ctx *c, const tsr__node *r, int64_t *out_axis) {
  if (r->n_outputs != 1 || r->n_inputs < 1 || r->inputs[0] < 0 ||
      tsr__node_attr_int(r, "keepdims", 1) != 1)
    return false;
  int64_t axis;
  if (r->opset < 18) {
    const tsr__attr *ax = tsr__node_attr(r, "axes");
    if (r->n_inputs != 1 || !ax || ax->count != 1 || !ax->ints)
      return false;
    axis = ax->ints[0];
  } else {
    if (r->n_inputs != 2 || r->inputs[1] < 0 || tsr__node_attr_int(r, "noop_with_empty_axes", 0))
      return false;
    const tsr__tensor_data *t = c->g->values[r->inputs[1]].init;
    if (!t || t->dtype != TSR_DTYPE_INT64 || t->nbytes != sizeof axis || !t->data)
      return false;
    memcpy(&axis, t->data, sizeof axis);
  }
  *out_axis = axis;
  return true;
}

/* True when `axis` is X's last: -1, or rank - 1 when the model declares X's rank. */
static bool is_last_axis(const pass_ctx *c, int32_t x, int64_t axis) {
  int32_t rank = c->g->values[x].rank;
  return axis == -1 || (rank > 0 && axis == rank - 1);
}

/* LayerNormalization over the last axis written out, as torch exports nn.LayerNorm before
 * opset 17:
 *   mu = ReduceMean(X), d = X - mu, var = ReduceMean(d ^ 2) (Pow 2 or d * d),
 *   y = d / Sqrt(var + eps) * gamma [+ beta]
 * with gamma and beta constant float32 vectors. The last node becomes LayerNormalization
 * (opset 17, axis -1, the model's epsilon); its kernel computes the statistics in double. */
static tsr_status fuse_layernorm(pass_ctx *c, uint32_t li) {
  tsr__graph *g = c->g;
  const tsr__node *last = &g->nodes[li];
  if (last->n_inputs != 2 || last->n_outputs != 1 || last->outputs[0] < 0)
    return NULL;
  int32_t beta = -1, mv = -1;
  if (is_op(last, "Add")) {
    for (int side = 0; side < 2 && beta < 0; side++) {
      const tsr__tensor_data *b = const_f32(c, last->inputs[side]);
      if (b && b->rank == 1 && producer_op(c, last->inputs[1 - side], "Mul") >= 0) {
        beta = last->inputs[side];
        mv = last->inputs[1 - side];
      }
    }
    if (beta < 0 || !private_value(c, mv))
      return NULL;
  } else if (is_op(last, "Mul")) {
    mv = last->outputs[0];
  } else {
    return NULL;
  }
  int32_t mi = beta >= 0 ? producer_op(c, mv, "Mul") : (int32_t)li;
  const tsr__node *mul = &g->nodes[mi];
  int32_t gamma = -1, nv = -1;
  if (mul->n_inputs != 2)
    return NULL;
  for (int side = 0; side < 2 && gamma < 0; side++) {
    const tsr__tensor_data *w = const_f32(c, mul->inputs[side]);
    if (w && w->rank == 1 && producer_op(c, mul->inputs[1 - side], "Div") >= 0) {
      gamma = mul->inputs[side];
      nv = mul->inputs[1 - side];
    }
  }
  if (gamma < 0 || !private_value(c, nv))
    return NULL;
  if (beta >= 0 && g->values[beta].init->dims[0] != g->values[gamma].init->dims[0])
    return NULL;
  int32_t dvi = producer_op(c, nv, "Div");
  if (g->nodes[dvi].n_inputs != 2)
    return NULL;
  int32_t d = g->nodes[dvi].inputs[0], sd = g->nodes[dvi].inputs[1];
  int32_t sqi = producer_op(c, sd, "Sqrt");
  if (d < 0 || sqi < 0 || !private_value(c, sd) || g->nodes[sqi].n_inputs != 1)
    return NULL;
  int32_t ve = g->nodes[sqi].inputs[0], aei = producer_op(c, ve, "Add");
  if (aei < 0 || !private_value(c, ve))
    return NULL;
  int32_t var = -1;
  double eps = 0;
  for (int side = 0; side < 2 && var < 0; side++)
    if (g->nodes[aei].n_inputs == 2 && const_one_f32(c, g->nodes[aei].inputs[side], &eps))
      var = g->nodes[aei].inputs[1 - side];
  int32_t rvi = producer_op(c, var, "ReduceMean");
  int64_t axis_var, axis_mean;
  if (var < 0 || rvi < 0 || !private_value(c, var) ||
      !reduce_one_axis(c, &g->nodes[rvi], &axis_var) || !(eps >= 0))
    return NULL;
  int32_t sq = g->nodes[rvi].inputs[0], pi = producer_op(c, sq, "Pow");
  uint32_t d_reads = 2; /* the square and the Div */
  if (pi >= 0) {
    if (g->nodes[pi].n_inputs != 2 || g->nodes[pi].inputs[0] != d ||
        !const_near(c, g->nodes[pi].inputs[1], 2.0))
      return NULL;
  } else if ((pi = producer_op(c, sq, "Mul")) >= 0) {
    if (g->nodes[pi].n_inputs != 2 || g->nodes[pi].inputs[0] != d || g->nodes[pi].inputs[1] != d)
      return NULL;
    d_reads = 3;
  } else {
    return NULL;
  }
  int32_t si = producer_op(c, d, "Sub");
  if (si < 0 || !private_value(c, sq) || c->uses[d] != d_reads || c->pinned[d] ||
      g->nodes[si].n_inputs != 2 || g->nodes[rvi].inputs[0] < 0)
    return NULL;
  int32_t x = g->nodes[si].inputs[0], mu = g->nodes[si].inputs[1];
  int32_t rmi = producer_op(c, mu, "ReduceMean");
  if (x < 0 || rmi < 0 || !private_value(c, mu) || g->nodes[rmi].inputs[0] != x ||
      !reduce_one_axis(c, &g->nodes[rmi], &axis_mean) || !is_last_axis(c, x, axis_mean) ||
      !is_last_axis(c, x, axis_var))
    return NULL;
  const int32_t ins[3] = {x, gamma, beta};
  const new_attr attrs[2] = {{"axis", 2, 0, -1, NULL}, {"epsilon", 1, (float)eps, 0, NULL}};
  TSR_RETURN_IF_ERROR(
      rewrite_node(c, li, "LayerNormalization", 17, ins, beta >= 0 ? 3 : 2, attrs, 2));
  if (mi != (int32_t)li)
    kill_node(c, (uint32_t)mi);
  kill_node(c, (uint32_t)dvi);
  kill_node(c, (uint32_t)sqi);
  kill_node(c, (uint32_t)aei);
  kill_node(c, (uint32_t)rvi);
  kill_node(c, (uint32_t)pi);
  kill_node(c, (uint32_t)si);
  kill_node(c, (uint32_t)rmi);
  c->stats.layernorms_fused++;
  return NULL;
}

/* ---- Teardown of removed nodes --------------------------------------------------------- */

/* Frees what a node owns. Mirrors node_clear() in graph.c, which is private to it. */
static void node_free(const tsr_allocator *a, tsr__node *n) {
  for (uint32_t i = 0; n->attrs && i < n->n_attrs; i++) {
    tsr__attr *at = &n->attrs[i];
    tsr__free(a, at->name);
    tsr__free(a, at->s);
    tsr__free(a, at->floats);
    tsr__free(a, at->ints);
    for (size_t k = 0; at->strings && k < at->count; k++)
      tsr__free(a, at->strings[k]);
    tsr__free(a, at->strings);
    tsr__tensor_data_free(a, at->t);
    tsr__graph_destroy(at->g);
  }
  tsr__free(a, n->attrs);
  tsr__free(a, n->name);
  tsr__free(a, n->op_type);
  tsr__free(a, n->domain);
  tsr__free(a, n->inputs);
  tsr__free(a, n->outputs);
  memset(n, 0, sizeof *n);
}

static void compact(pass_ctx *c) {
  tsr__graph *g = c->g;
  uint32_t kept = 0;
  for (uint32_t i = 0; i < g->n_nodes; i++) {
    if (c->dead[i]) {
      node_free(c->a, &g->nodes[i]);
      continue;
    }
    if (kept != i)
      g->nodes[kept] = g->nodes[i];
    c->dead[kept] = 0;
    kept++;
  }
  g->n_nodes = kept;
}

/* ---- Entry points ---------------------------------------------------------------------- */

/* The node-local rewrites, in the order they run; each sweeps the nodes once (they are in
 * topological order), backwards where marked. */
typedef tsr_status (*node_pass)(pass_ctx *c, uint32_t i);
static const struct {
  uint32_t bit;
  node_pass fn;
  bool backwards;
} node_passes[] = {
    {TSR__PASS_FOLD_BATCHNORM, fold_batchnorm, false},
    /* After BatchNormalization, so that Conv -> BatchNormalization -> Mul -> Add folds whole. */
    {TSR__PASS_FOLD_CONV_AFFINE, fold_conv_affine, false},
    {TSR__PASS_FOLD_CONV_AFFINE, fold_affine_into_conv, false},
    /* Again, for a BatchNormalization that an Add of a bias stood before (ConvTranspose ->
     * Add -> BatchNormalization). */
    {TSR__PASS_FOLD_BATCHNORM, fold_batchnorm, false},
    {TSR__PASS_FUSE_HARDSWISH, fuse_hardswish, false},
    {TSR__PASS_FUSE_GEMM, fuse_gemm, false},
    {TSR__PASS_FUSE_GELU, fuse_gelu, false},
    /* Backwards, so that a pattern is seen from its last node first: the Add of beta before
     * the Mul of gamma, which would otherwise end a shorter match. */
    {TSR__PASS_FUSE_LAYERNORM, fuse_layernorm, true},
    /* Last, so that Conv -> BatchNormalization -> Relu, MatMul -> Add -> Relu and a Gemm
     * followed by GELU fuse whole. */
    {TSR__PASS_FUSE_ACTIVATION, fuse_activation, false},
};

static tsr_status apply(pass_ctx *c, uint32_t passes) {
  const uint32_t n = c->g->n_nodes;
  /* Pass-throughs first, so that Conv -> Identity -> BatchNormalization folds too. */
  if (passes & TSR__PASS_REMOVE_IDENTITY)
    TSR_RETURN_IF_ERROR(remove_passthroughs(c));
  for (size_t k = 0; k < sizeof node_passes / sizeof node_passes[0]; k++) {
    if (!(passes & node_passes[k].bit))
      continue;
    for (uint32_t j = 0; j < n; j++) {
      uint32_t i = node_passes[k].backwards ? n - 1 - j : j;
      if (!c->dead[i])
        TSR_RETURN_IF_ERROR(node_passes[k].fn(c, i));
    }
  }
  return NULL;
}

/* Frees initializers that no node, graph output or subgraph reads. */
static void drop_unused(pass_ctx *c) {
  count_uses(c);
  for (uint32_t v = 0; v < c->g->n_values; v++) {
    tsr__value *val = &c->g->values[v];
    if (!val->init || c->uses[v] || c->pinned[v])
      continue;
    tsr__tensor_data_free(c->a, val->init);
    val->init = NULL;
    c->stats.initializers_freed++;
  }
}

tsr_status tsr__passes_apply(tsr__graph *g, uint32_t passes, tsr__pass_stats *out_stats) {
  if (out_stats)
    memset(out_stats, 0, sizeof *out_stats);
  if (!g)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "passes_apply: graph is NULL");
  pass_ctx c;
  tsr_status st = ctx_init(&c, g);
  if (st) {
    ctx_free(&c);
    return st;
  }
  st = apply(&c, passes);
  /* Even after an error, removed nodes go and the graph is finalized, so that it stays
   * consistent for the caller to destroy. */
  compact(&c);
  if (!st && (passes & TSR__PASS_DROP_UNUSED))
    drop_unused(&c);
  if (c.rewired) {
    tsr_status fst = tsr__graph_finalize(g);
    if (fst && !st)
      st = tsr__status_wrap(fst, "after optimising the graph");
    else
      tsr_status_free(fst);
  }
  if (out_stats)
    *out_stats = c.stats;
  ctx_free(&c);
  return st;
}

tsr_status tsr__passes_run(tsr__graph *g) {
  const char *off = getenv("TESSERA_NO_PASSES");
  if (off && *off && strcmp(off, "0") != 0)
    return NULL;
  return tsr__passes_apply(g, TSR__PASS_ALL, NULL);
}
