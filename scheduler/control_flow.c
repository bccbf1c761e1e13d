/* Control flow: If, Loop and Scan, run by the host between partitions.
 *
 * Each subgraph (a branch, a body) gets a session of its own, made when the enclosing plan is
 * built. Its run binds the subgraph's formal inputs and then every value it reads from
 * enclosing graphs by name (graph.c gives each subgraph an entry for every such name its
 * subtree reads); values that are constants of the enclosing plan are constants of its plans
 * too. The subgraph session plans per distinct input shapes like any session, so a Loop whose
 * carried values keep their shapes plans its body once. The enclosing plan knows the node's
 * output shapes from shape inference; a run that produces others fails naming the node. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/scheduler.h"

bool tsr__cf_is_control(const tsr__node *n) {
  const char *d = n->domain ? n->domain : "";
  if (*d && strcmp(d, "ai.onnx") != 0)
    return false;
  return !strcmp(n->op_type, "If") || !strcmp(n->op_type, "Loop") || !strcmp(n->op_type, "Scan");
}

static void push_unique(int32_t *list, uint32_t *n, int32_t v) {
  for (uint32_t i = 0; i < *n; i++)
    if (list[i] == v)
      return;
  list[(*n)++] = v;
}

tsr_status tsr__cf_node_reads(const tsr__graph *g, uint32_t node, int32_t **out, uint32_t *n) {
  const tsr__node *nd = &g->nodes[node];
  size_t cap = nd->n_inputs;
  for (uint32_t k = 0; k < nd->n_attrs; k++)
    if (nd->attrs[k].g)
      cap += nd->attrs[k].g->n_values;
  int32_t *list = tsr__calloc(g->alloc, cap + 1, sizeof *list);
  if (!list)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory while planning");
  uint32_t count = 0;
  for (uint32_t i = 0; i < nd->n_inputs; i++)
    if (nd->inputs[i] >= 0)
      push_unique(list, &count, nd->inputs[i]);
  for (uint32_t k = 0; k < nd->n_attrs; k++) {
    const tsr__graph *s = nd->attrs[k].g;
    for (uint32_t v = 0; s && v < s->n_values; v++) {
      if (!s->values[v].outer || !s->values[v].name)
        continue;
      int32_t idx = tsr__graph_find_value(g, s->values[v].name);
      if (idx >= 0)
        push_unique(list, &count, idx);
    }
  }
  *out = list;
  *n = count;
  return NULL;
}

/* ---- Subgraph sessions -------------------------------------------------------------------- */

typedef struct cf_sub {
  const char *attr; /* "then_branch", "else_branch", "body" */
  const tsr__graph *g;
  tsr_session *session;
  int32_t *outer_src; /* per outer value of g, in value order: its index in the node's graph */
  uint32_t n_outer;
} cf_sub;

struct tsr__cf_state {
  cf_sub *subs;
  uint32_t n_subs;
};

static void cf_state_free(const tsr_allocator *a, struct tsr__cf_state *cs) {
  if (!cs)
    return;
  for (uint32_t i = 0; i < cs->n_subs; i++) {
    tsr_session_destroy(cs->subs[i].session);
    tsr__free(a, cs->subs[i].outer_src);
  }
  tsr__free(a, cs->subs);
  tsr__free(a, cs);
}

/* One session per subgraph attribute of node `node` of g; vals (the enclosing plan's) say
 * which values are constants. */
static tsr_status cf_state_make(tsr_session *s, const tsr__graph *g, uint32_t node,
                                const tsr__vshape *vals, struct tsr__cf_state **out) {
  const tsr_allocator *a = s->alloc;
  const tsr__node *nd = &g->nodes[node];
  *out = NULL;
  struct tsr__cf_state *cs = tsr__calloc(a, 1, sizeof *cs);
  if (cs)
    cs->subs = tsr__calloc(a, nd->n_attrs + 1, sizeof *cs->subs);
  if (!cs || !cs->subs) {
    tsr__free(a, cs);
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory while planning");
  }
  tsr_status st = NULL;
  for (uint32_t k = 0; k < nd->n_attrs && !st; k++) {
    const tsr__graph *sg = nd->attrs[k].g;
    if (!sg)
      continue;
    cf_sub *sb = &cs->subs[cs->n_subs++];
    sb->attr = nd->attrs[k].name;
    sb->g = sg;
    sb->outer_src = tsr__calloc(a, sg->n_values + 1, sizeof *sb->outer_src);
    const void **cdata = tsr__calloc(a, sg->n_values + 1, sizeof *cdata);
    if (!sb->outer_src || !cdata) {
      tsr__free(a, (void *)cdata);
      st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory while planning");
      break;
    }
    for (uint32_t v = 0; v < sg->n_values && !st; v++) {
      if (!sg->values[v].outer || !sg->values[v].name)
        continue;
      int32_t idx = tsr__graph_find_value(g, sg->values[v].name);
      if (idx < 0)
        st = tsr__status_make(TSR_STATUS_INVALID_MODEL,
                              "node '%s' (%s): %s reads '%s', which the enclosing graph lacks",
                              nd->name, nd->op_type, sb->attr, sg->values[v].name);
      cdata[sb->n_outer] = idx >= 0 ? vals[idx].data : NULL;
      sb->outer_src[sb->n_outer++] = idx;
    }
    if (!st)
      st = tsr__session_create_sub(s, sg, cdata, &sb->session);
    tsr__free(a, (void *)cdata);
  }
  if (st) {
    cf_state_free(a, cs);
    return st;
  }
  *out = cs;
  return NULL;
}

static cf_sub *cf_find(struct tsr__cf_state *cs, const char *attr) {
  for (uint32_t i = 0; i < cs->n_subs; i++)
    if (cs->subs[i].attr && !strcmp(cs->subs[i].attr, attr))
      return &cs->subs[i];
  return NULL;
}

/* ---- Tensors ------------------------------------------------------------------------------- */

/* A tensor that borrows its dims and data (never destroyed). */
static tsr_tensor view_of(const tsr_allocator *a, int32_t dtype, int32_t rank, int64_t *dims,
                          const void *data) {
  tsr_tensor t = {a, (tsr_dtype)dtype, (size_t)(rank > 0 ? rank : 0), dims, 0, 0, (void *)data};
  size_t count = 0;
  tsr__shape_count(dims, t.rank, &count);
  t.count = count;
  t.nbytes = count * tsr_dtype_size(t.dtype);
  return t;
}

static bool same_shape(const tsr_tensor *t, int32_t dtype, int32_t rank, const int64_t *dims) {
  if ((int32_t)t->dtype != dtype || (int64_t)t->rank != rank)
    return false;
  for (int32_t i = 0; i < rank; i++)
    if (t->dims[i] != dims[i])
      return false;
  return true;
}

/* Bytes before, at and after `axis`: t is [outer, len, inner] around it. */
static void split_at(const tsr_tensor *t, size_t axis, size_t *outer, size_t *inner) {
  *outer = 1;
  *inner = tsr_dtype_size(t->dtype);
  for (size_t i = 0; i < t->rank; i++) {
    if (i < axis)
      *outer *= (size_t)t->dims[i];
    if (i > axis)
      *inner *= (size_t)t->dims[i];
  }
}

/* The slice of t at `index` along `axis`, without that axis. */
static tsr_status take(const tsr_tensor *t, size_t axis, int64_t index, tsr_tensor **out) {
  int64_t dims[64];
  if (t->rank > 64)
    return tsr__status_make(TSR_STATUS_UNSUPPORTED, "tensors of rank %zu cannot be scanned",
                            t->rank);
  size_t r = 0;
  for (size_t i = 0; i < t->rank; i++)
    if (i != axis)
      dims[r++] = t->dims[i];
  TSR_RETURN_IF_ERROR(tsr__tensor_new(t->alloc, t->dtype, r, dims, out));
  size_t outer, inner, len = (size_t)t->dims[axis];
  split_at(t, axis, &outer, &inner);
  for (size_t o = 0; o < outer; o++)
    memcpy((char *)(*out)->data + o * inner,
           (const char *)t->data + (o * len + (size_t)index) * inner, inner);
  return NULL;
}

/* Writes part (t without `axis`) into t at `index` along `axis`. */
static void put(tsr_tensor *t, size_t axis, int64_t index, const tsr_tensor *part) {
  size_t outer, inner, len = (size_t)t->dims[axis];
  split_at(t, axis, &outer, &inner);
  for (size_t o = 0; o < outer; o++)
    memcpy((char *)t->data + (o * len + (size_t)index) * inner,
           (const char *)part->data + o * inner, inner);
}

static tsr_status copy_tensor(const tsr_tensor *t, tsr_tensor **out) {
  TSR_RETURN_IF_ERROR(tsr__tensor_new(t->alloc, t->dtype, t->rank, t->dims, out));
  if (t->nbytes)
    memcpy((*out)->data, t->data, t->nbytes);
  return NULL;
}

/* ---- Running one node ---------------------------------------------------------------------- */

/* What a node's run sees: the values it reads (views, by value index of g), and the output
 * shapes the enclosing plan expects (NULL at plan time, when there are none yet). */
typedef struct cf_run {
  tsr_session *s;
  const tsr__graph *g;
  const tsr__node *nd;
  struct tsr__cf_state *cs;
  const int32_t *reads;
  uint32_t n_reads;
  const tsr_tensor *const *read_t;
  const tsr__vshape *expect; /* per value of g, or NULL */
} cf_run;

static const tsr_tensor *cf_value(const cf_run *x, int32_t v) {
  for (uint32_t i = 0; v >= 0 && i < x->n_reads; i++)
    if (x->reads[i] == v)
      return x->read_t[i];
  return NULL;
}

static const tsr_tensor *cf_input(const cf_run *x, uint32_t i) {
  return i < x->nd->n_inputs ? cf_value(x, x->nd->inputs[i]) : NULL;
}

__attribute__((format(printf, 3, 4))) static tsr_status
cf_fail(const cf_run *x, tsr_status_code code, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return tsr__status_make(code, "node '%s' (%s): %s", x->nd->name, x->nd->op_type, msg);
}

/* Runs subgraph sb once: formal inputs, then its outer values; outs gets every output. */
static tsr_status run_sub(const cf_run *x, const cf_sub *sb, const tsr_tensor *const *formal,
                          tsr_tensor **outs) {
  uint32_t n = sb->g->n_inputs + sb->n_outer;
  const tsr_tensor **bound = calloc(n + 1, sizeof *bound);
  if (!bound)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory running a subgraph");
  for (uint32_t i = 0; i < sb->g->n_inputs; i++)
    bound[i] = formal[i];
  tsr_status st = NULL;
  for (uint32_t j = 0; j < sb->n_outer && !st; j++) {
    bound[sb->g->n_inputs + j] = cf_value(x, sb->outer_src[j]);
    if (!bound[sb->g->n_inputs + j])
      st = cf_fail(x, TSR_STATUS_INTERNAL, "%s reads '%s', which was not bound", sb->attr,
                   x->g->values[sb->outer_src[j]].name);
  }
  if (!st)
    st = tsr__session_run_bound(sb->session, bound, outs);
  free(bound);
  if (st)
    return tsr__status_wrap(st, "node '%s' (%s): in %s", x->nd->name, x->nd->op_type, sb->attr);
  return NULL;
}

static bool first_bool(const tsr_tensor *t) {
  return t->count >= 1 && ((const uint8_t *)t->data)[0] != 0;
}

static tsr_status run_if(const cf_run *x, tsr_tensor **outs) {
  const tsr_tensor *cond = cf_input(x, 0);
  if (!cond || cond->dtype != TSR_DTYPE_BOOL || cond->count != 1)
    return cf_fail(x, TSR_STATUS_INVALID_ARGUMENT, "the condition must be one bool");
  const char *attr = first_bool(cond) ? "then_branch" : "else_branch";
  const cf_sub *sb = cf_find(x->cs, attr);
  if (!sb)
    return cf_fail(x, TSR_STATUS_INVALID_MODEL, "attribute '%s' is required", attr);
  if (sb->g->n_inputs != 0)
    return cf_fail(x, TSR_STATUS_INVALID_MODEL, "%s has %u inputs; If branches take none", attr,
                   sb->g->n_inputs);
  if (sb->g->n_outputs != x->nd->n_outputs)
    return cf_fail(x, TSR_STATUS_INVALID_MODEL, "%s has %u outputs, but the node has %u", attr,
                   sb->g->n_outputs, x->nd->n_outputs);
  return run_sub(x, sb, NULL, outs);
}

/* Stacks per-iteration slices into [n, slice shape...]; n == 0 takes the expected shape. */
static tsr_status stack(const cf_run *x, uint32_t out_k, tsr_tensor **parts, int64_t n,
                        tsr_tensor **out) {
  *out = NULL;
  int32_t v = x->nd->outputs[out_k];
  if (n == 0) {
    if (!x->expect || v < 0)
      return cf_fail(x, TSR_STATUS_UNSUPPORTED,
                     "output %u has no iterations to take its shape from", out_k);
    const tsr__vshape *e = &x->expect[v];
    return tsr__tensor_new(x->s->alloc, (tsr_dtype)e->dtype, (size_t)e->rank, e->dims, out);
  }
  const tsr_tensor *p0 = parts[0];
  int64_t dims[65];
  if (p0->rank > 63)
    return cf_fail(x, TSR_STATUS_UNSUPPORTED, "scan output rank %zu", p0->rank);
  dims[0] = n;
  for (size_t i = 0; i < p0->rank; i++)
    dims[i + 1] = p0->dims[i];
  for (int64_t i = 1; i < n; i++)
    if (!same_shape(parts[i], p0->dtype, (int32_t)p0->rank, p0->dims)) {
      char a[256], b[256];
      return cf_fail(x, TSR_STATUS_UNSUPPORTED,
                     "scan output %u is %s in iteration %lld but %s in iteration 0", out_k,
                     tsr__format_dims(parts[i]->dims, parts[i]->rank, a, sizeof a), (long long)i,
                     tsr__format_dims(p0->dims, p0->rank, b, sizeof b));
    }
  TSR_RETURN_IF_ERROR(tsr__tensor_new(x->s->alloc, p0->dtype, p0->rank + 1, dims, out));
  for (int64_t i = 0; i < n; i++)
    if (p0->nbytes)
      memcpy((char *)(*out)->data + (size_t)i * p0->nbytes, parts[i]->data, p0->nbytes);
  return NULL;
}

static tsr_status run_loop(const cf_run *x, tsr_tensor **outs) {
  const cf_sub *sb = cf_find(x->cs, "body");
  const tsr__node *nd = x->nd;
  if (!sb || nd->n_inputs < 2)
    return cf_fail(x, TSR_STATUS_INVALID_MODEL, "needs a body and inputs M and cond");
  uint32_t n_car = nd->n_inputs - 2, n_scan = nd->n_outputs - n_car;
  if (sb->g->n_inputs != 2 + n_car || sb->g->n_outputs != 1 + n_car + n_scan)
    return cf_fail(x, TSR_STATUS_INVALID_MODEL,
                   "body has %u inputs and %u outputs, expected %u and %u", sb->g->n_inputs,
                   sb->g->n_outputs, 2 + n_car, 1 + n_car + n_scan);
  const tsr_tensor *mt = cf_input(x, 0), *ct = cf_input(x, 1);
  int64_t m = INT64_MAX;
  if (mt) {
    if (mt->dtype != TSR_DTYPE_INT64 || mt->count != 1)
      return cf_fail(x, TSR_STATUS_INVALID_ARGUMENT, "trip count M must be one int64");
    m = ((const int64_t *)mt->data)[0];
    if (m < 0)
      return cf_fail(x, TSR_STATUS_INVALID_ARGUMENT,
                     "trip count M '%s' is %lld; it must not be negative",
                     x->g->values[nd->inputs[0]].name, (long long)m);
  }
  if (ct && (ct->dtype != TSR_DTYPE_BOOL || ct->count != 1))
    return cf_fail(x, TSR_STATUS_INVALID_ARGUMENT, "condition must be one bool");
  bool cond = ct ? first_bool(ct) : true;

  const tsr_allocator *a = x->s->alloc;
  uint32_t n_body = 1 + n_car + n_scan;
  const tsr_tensor **formal = calloc(2 + n_car, sizeof *formal);
  tsr_tensor **owned = calloc(n_car + 1, sizeof *owned);
  tsr_tensor **bouts = calloc(n_body, sizeof *bouts);
  tsr_tensor ***parts = calloc(n_scan + 1, sizeof *parts);
  size_t cap = 0;
  int64_t iter = 0;
  tsr_status st = NULL;
  if (!formal || !owned || !bouts || !parts)
    st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory running a Loop");
  for (uint32_t k = 0; k < n_car && !st; k++) {
    formal[2 + k] = cf_input(x, 2 + k);
    if (!formal[2 + k])
      st = cf_fail(x, TSR_STATUS_INVALID_MODEL, "loop-carried input %u is absent", k);
  }
  uint8_t cond_byte = 0;
  tsr_tensor iter_t = view_of(a, TSR_DTYPE_INT64, 0, NULL, &iter);
  tsr_tensor cond_t = view_of(a, TSR_DTYPE_BOOL, 0, NULL, &cond_byte);
  if (formal) {
    formal[0] = &iter_t;
    formal[1] = &cond_t;
  }
  for (; !st && iter < m && cond; iter++) {
    cond_byte = 1;
    st = run_sub(x, sb, formal, bouts);
    if (st)
      break;
    if (bouts[0]->dtype != TSR_DTYPE_BOOL || bouts[0]->count != 1)
      st = cf_fail(x, TSR_STATUS_INVALID_MODEL, "body output 0 (the condition) must be one bool");
    else
      cond = first_bool(bouts[0]); /* honoured even without a cond input, as ONNX Runtime does */
    tsr_tensor_destroy(bouts[0]);
    bouts[0] = NULL;
    for (uint32_t k = 0; k < n_car; k++) {
      if (!st && bouts[1 + k]->dtype != formal[2 + k]->dtype)
        st = cf_fail(x, TSR_STATUS_INVALID_MODEL,
                     "loop-carried value %u is %s, but the body returns %s for it", k,
                     tsr_dtype_name(formal[2 + k]->dtype), tsr_dtype_name(bouts[1 + k]->dtype));
      tsr_tensor_destroy(owned[k]);
      owned[k] = bouts[1 + k];
      bouts[1 + k] = NULL;
      formal[2 + k] = owned[k];
    }
    if ((size_t)iter >= cap && n_scan) {
      size_t ncap = cap ? cap * 2 : 16;
      for (uint32_t k = 0; k < n_scan && !st; k++) {
        tsr_tensor **np = realloc(parts[k], ncap * sizeof *np);
        if (!np)
          st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory running a Loop");
        else
          parts[k] = np;
      }
      if (!st)
        cap = ncap;
    }
    for (uint32_t k = 0; k < n_scan; k++) {
      if (st) {
        tsr_tensor_destroy(bouts[1 + n_car + k]);
      } else {
        parts[k][iter] = bouts[1 + n_car + k];
      }
      bouts[1 + n_car + k] = NULL;
    }
    if (st)
      break;
  }
  int64_t n_iter = iter;
  for (uint32_t k = 0; k < n_car && !st; k++) {
    if (owned[k]) {
      outs[k] = owned[k];
      owned[k] = NULL;
    } else {
      st = copy_tensor(formal[2 + k], &outs[k]);
    }
  }
  for (uint32_t k = 0; k < n_scan && !st; k++)
    st = stack(x, n_car + k, parts[k], n_iter, &outs[n_car + k]);
  for (uint32_t k = 0; parts && k < n_scan; k++) {
    for (int64_t i = 0; parts[k] && i < n_iter && (size_t)i < cap; i++)
      tsr_tensor_destroy(parts[k][i]);
    free(parts[k]);
  }
  for (uint32_t k = 0; owned && k < n_car; k++)
    tsr_tensor_destroy(owned[k]);
  free(parts);
  free(owned);
  free(bouts);
  free(formal);
  return st;
}

static tsr_status run_scan(const cf_run *x, tsr_tensor **outs) {
  const cf_sub *sb = cf_find(x->cs, "body");
  const tsr__node *nd = x->nd;
  if (!sb)
    return cf_fail(x, TSR_STATUS_INVALID_MODEL, "attribute 'body' is required");
  int64_t opset = nd->opset > 0 ? nd->opset : tsr__graph_opset(x->g, nd->domain);
  tsr__scan_info si;
  TSR_RETURN_IF_ERROR(tsr__scan_layout(nd, opset, sb->g, &si));
  bool batched = opset < 9;
  uint32_t n_in = si.n_state + si.n_scan_in, n_out = nd->n_outputs;
  const tsr_tensor *lens = batched ? cf_input(x, 0) : NULL;
  const tsr_allocator *a = x->s->alloc;
  int64_t batch = 1;
  for (uint32_t i = 0; i < n_in; i++) {
    const tsr_tensor *t = cf_input(x, si.first + i);
    if (!t)
      return cf_fail(x, TSR_STATUS_INVALID_MODEL, "input %u is absent", si.first + i);
    if (batched && (t->rank < 1 + (i >= si.n_state)))
      return cf_fail(x, TSR_STATUS_INVALID_ARGUMENT, "input %u lacks its batch axis", si.first + i);
    if (batched)
      batch = t->dims[0];
  }
  const tsr_tensor **formal = calloc(2 * n_in + 1, sizeof *formal);
  tsr_tensor **state = calloc(n_in + 1, sizeof *state); /* per batch: owned state values */
  tsr_tensor **in_b = calloc(n_in + 1, sizeof *in_b);   /* per batch: owned slices of inputs */
  tsr_tensor **bouts = calloc(n_out + 1, sizeof *bouts);
  tsr_tensor **slices = calloc(n_in + 1, sizeof *slices);
  tsr_tensor **scan_out = calloc(n_out + 1, sizeof *scan_out); /* per batch, scan outputs */
  size_t *axis = calloc(n_in + n_out + 1, sizeof *axis);
  tsr_status st = NULL;
  if (!formal || !state || !in_b || !bouts || !slices || !scan_out || !axis)
    st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory running a Scan");
  for (int64_t b = 0; b < batch && !st; b++) {
    /* This batch's inputs: whole tensors at opset 9 and later, their b-th slice at opset 8. */
    const tsr_tensor **src = formal + n_in; /* the second half of formal */
    int64_t len = -1;
    for (uint32_t i = 0; i < n_in && !st; i++) {
      const tsr_tensor *t = cf_input(x, si.first + i);
      if (batched) {
        st = take(t, 0, b, &in_b[i]);
        t = in_b[i];
      }
      if (st)
        break;
      src[i] = t;
      if (i < si.n_state)
        continue;
      int64_t ax = batched ? 0 : si.in_axis[i - si.n_state];
      if (ax < 0)
        ax += (int64_t)t->rank;
      if (ax < 0 || ax >= (int64_t)t->rank) {
        st = cf_fail(x, TSR_STATUS_INVALID_ARGUMENT,
                     "scan input axis %lld is out of range for rank %zu", (long long)ax, t->rank);
        break;
      }
      axis[i] = (size_t)ax;
      len = t->dims[ax];
    }
    if (st)
      break;
    int64_t steps = len;
    if (lens) {
      if (lens->dtype != TSR_DTYPE_INT64 || (int64_t)lens->count != batch) {
        st = cf_fail(x, TSR_STATUS_INVALID_ARGUMENT, "sequence_lens must be %lld int64 values",
                     (long long)batch);
        break;
      }
      steps = ((const int64_t *)lens->data)[b];
      if (steps < 0 || steps > len) {
        st = cf_fail(x, TSR_STATUS_INVALID_ARGUMENT,
                     "sequence_lens[%lld] is %lld; it must be in 0..%lld", (long long)b,
                     (long long)steps, (long long)len);
        break;
      }
    }
    for (uint32_t k = 0; k < si.n_state; k++)
      formal[k] = src[k];
    for (int64_t t = 0; t < steps && !st; t++) {
      for (uint32_t j = 0; j < si.n_scan_in && !st; j++) {
        uint32_t i = si.n_state + j;
        int64_t at = si.in_dir[j] ? steps - 1 - t : t;
        tsr_tensor_destroy(slices[i]);
        slices[i] = NULL;
        st = take(src[i], axis[i], at, &slices[i]);
        formal[i] = slices[i];
      }
      if (!st)
        st = run_sub(x, sb, formal, bouts);
      if (st)
        break;
      for (uint32_t k = 0; k < si.n_state; k++) {
        tsr_tensor_destroy(state[k]);
        state[k] = bouts[k];
        bouts[k] = NULL;
        formal[k] = state[k];
      }
      for (uint32_t k = 0; k < si.n_scan_out && !st; k++) {
        tsr_tensor *y = bouts[si.n_state + k];
        tsr_tensor **acc = &scan_out[si.n_state + k];
        size_t oax = 0;
        if (!batched) {
          int64_t ax = si.out_axis[k];
          if (ax < 0)
            ax += (int64_t)y->rank + 1;
          if (ax < 0 || ax > (int64_t)y->rank) {
            st = cf_fail(x, TSR_STATUS_INVALID_ARGUMENT,
                         "scan output axis %lld is out of range for rank %zu",
                         (long long)si.out_axis[k], y->rank + 1);
            break;
          }
          oax = (size_t)ax;
        }
        axis[n_in + si.n_state + k] = oax;
        if (!*acc) {
          int64_t dims[65];
          if (y->rank > 63) {
            st = cf_fail(x, TSR_STATUS_UNSUPPORTED, "scan output rank %zu", y->rank);
            break;
          }
          for (size_t q = 0, r = 0; q <= y->rank; q++)
            dims[q] = q == oax ? len : y->dims[r++];
          st = tsr__tensor_new(a, y->dtype, y->rank + 1, dims, acc);
          if (st)
            break;
        }
        bool fits = (*acc)->dtype == y->dtype && (*acc)->rank == y->rank + 1;
        for (size_t q = 0, r = 0; fits && q <= y->rank; q++)
          if (q != oax)
            fits = (*acc)->dims[q] == y->dims[r++];
        if (!fits) {
          st = cf_fail(x, TSR_STATUS_UNSUPPORTED, "scan output %u changes shape between iterations",
                       k);
          break;
        }
        put(*acc, oax, si.out_dir[k] ? steps - 1 - t : t, y);
      }
      for (uint32_t k = 0; k < n_out; k++) {
        tsr_tensor_destroy(bouts[k]);
        bouts[k] = NULL;
      }
    }
    if (st)
      break;
    /* This batch's results into the outputs: states that never changed are the inputs. */
    for (uint32_t k = 0; k < n_out && !st; k++) {
      const tsr_tensor *r = k < si.n_state ? (state[k] ? state[k] : src[k]) : scan_out[k];
      if (!r) {
        /* No steps: the scan output's shape comes from the plan. */
        if (!x->expect || nd->outputs[k] < 0) {
          st = cf_fail(x, TSR_STATUS_UNSUPPORTED,
                       "output %u has no iterations to take its shape from", k);
          break;
        }
        const tsr__vshape *e = &x->expect[nd->outputs[k]];
        if (!outs[k])
          st = tsr__tensor_new(a, (tsr_dtype)e->dtype, (size_t)e->rank, e->dims, &outs[k]);
        continue;
      }
      if (!batched) {
        st = copy_tensor(r, &outs[k]);
        continue;
      }
      if (!outs[k]) {
        int64_t dims[65];
        if (r->rank > 63) {
          st = cf_fail(x, TSR_STATUS_UNSUPPORTED, "output rank %zu", r->rank);
          break;
        }
        dims[0] = batch;
        for (size_t q = 0; q < r->rank; q++)
          dims[q + 1] = r->dims[q];
        st = tsr__tensor_new(a, r->dtype, r->rank + 1, dims, &outs[k]);
        if (st)
          break;
      }
      if (!same_shape(r, outs[k]->dtype, (int32_t)outs[k]->rank - 1, outs[k]->dims + 1)) {
        st = cf_fail(x, TSR_STATUS_UNSUPPORTED, "output %u differs in shape between batches", k);
        break;
      }
      put(outs[k], 0, b, r);
    }
    for (uint32_t i = 0; i < n_in; i++) {
      tsr_tensor_destroy(in_b[i]);
      tsr_tensor_destroy(slices[i]);
      tsr_tensor_destroy(state[i]);
      in_b[i] = slices[i] = state[i] = NULL;
    }
    for (uint32_t k = 0; k < n_out; k++) {
      tsr_tensor_destroy(scan_out[k]);
      scan_out[k] = NULL;
    }
  }
  /* An empty batch (opset 8) made no outputs: their shapes come from the plan. */
  for (uint32_t k = 0; !st && k < n_out; k++) {
    if (outs[k])
      continue;
    if (!x->expect || nd->outputs[k] < 0)
      st = cf_fail(x, TSR_STATUS_UNSUPPORTED, "output %u has no batch to take its shape from", k);
    else
      st = tsr__tensor_new(a, (tsr_dtype)x->expect[nd->outputs[k]].dtype,
                           (size_t)x->expect[nd->outputs[k]].rank, x->expect[nd->outputs[k]].dims,
                           &outs[k]);
  }
  for (uint32_t i = 0; in_b && i < n_in; i++) {
    tsr_tensor_destroy(in_b[i]);
    tsr_tensor_destroy(slices[i]);
    tsr_tensor_destroy(state[i]);
  }
  for (uint32_t k = 0; bouts && k < n_out; k++) {
    tsr_tensor_destroy(bouts[k]);
    tsr_tensor_destroy(scan_out[k]);
  }
  free(formal);
  free(state);
  free(in_b);
  free(bouts);
  free(slices);
  free(scan_out);
  free(axis);
  return st;
}

/* Runs the node; outs (n_outputs, zeroed) gets new tensors, all of them on success. */
static tsr_status run_node(cf_run *x, tsr_tensor **outs) {
  tsr_status st;
  if (!strcmp(x->nd->op_type, "If"))
    st = run_if(x, outs);
  else if (!strcmp(x->nd->op_type, "Loop"))
    st = run_loop(x, outs);
  else
    st = run_scan(x, outs);
  if (st)
    for (uint32_t k = 0; k < x->nd->n_outputs; k++) {
      tsr_tensor_destroy(outs[k]);
      outs[k] = NULL;
    }
  return st;
}

/* ---- In a plan ------------------------------------------------------------------------------ */

tsr_status tsr__cf_prepare(tsr__plan *p, tsr__partition *pt) {
  return cf_state_make(p->session, p->session->graph, (uint32_t)pt->host_node, p->vals, &pt->cf);
}

void tsr__cf_release(tsr__plan *p, tsr__partition *pt) {
  cf_state_free(p->session->alloc, pt->cf);
  pt->cf = NULL;
}

tsr_status tsr__cf_execute(tsr__plan *p, tsr__run_ctx *c, const tsr__partition *pt) {
  tsr_session *s = p->session;
  const tsr__graph *g = s->graph;
  const tsr__node *nd = &g->nodes[pt->host_node];
  tsr_tensor *views = calloc(pt->n_reads + 1, sizeof *views);
  const tsr_tensor **read_t = calloc(pt->n_reads + 1, sizeof *read_t);
  void **staged = calloc(pt->n_reads + 1, sizeof *staged);
  tsr_tensor **outs = calloc(nd->n_outputs + 1, sizeof *outs);
  tsr_status st = NULL;
  if (!views || !read_t || !staged || !outs)
    st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory running node '%s'", nd->name);
  /* The values the node reads, in place when the device's memory is host-visible. */
  for (uint32_t k = 0; k < pt->n_reads && !st; k++) {
    int32_t v = pt->reads[k];
    const tsr__vshape *vs = &p->vals[v];
    const void *data = vs->data;
    int32_t inst = pt->binding_instance[k];
    if (!data && inst >= 0) {
      const tsr__instance *in = &p->instances[inst];
      data = in->size ? tsr__plan_host_address(p, c, in) : (const void *)views;
      if (!data) {
        staged[k] = malloc(in->size ? in->size : 1);
        if (!staged[k]) {
          st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory running node '%s'",
                                nd->name);
          break;
        }
        st = tsr__plan_read_instance(p, c, in, staged[k]);
        data = staged[k];
      }
    }
    if (!data && !st)
      st = tsr__status_make(TSR_STATUS_INTERNAL, "node '%s' (%s): value '%s' has no data", nd->name,
                            nd->op_type, g->values[v].name);
    views[k] = view_of(s->alloc, vs->dtype, vs->rank, vs->dims, data);
    read_t[k] = &views[k];
  }
  if (!st) {
    cf_run x = {s, g, nd, pt->cf, pt->reads, pt->n_reads, read_t, p->vals};
    st = run_node(&x, outs);
  }
  for (uint32_t k = 0; !st && k < nd->n_outputs; k++) {
    int32_t v = nd->outputs[k];
    if (v < 0)
      continue;
    const tsr__vshape *e = &p->vals[v];
    if (!same_shape(outs[k], e->dtype, e->rank, e->dims)) {
      char got[256], want[256];
      st = tsr__status_make(
          TSR_STATUS_UNSUPPORTED,
          "node '%s' (%s): output %u '%s' is %s %s in this run, but the plan for these input "
          "shapes expected %s %s (outputs whose shape depends on run-time values are not "
          "supported)",
          nd->name, nd->op_type, k, g->values[v].name, tsr_dtype_name(outs[k]->dtype),
          tsr__format_dims(outs[k]->dims, outs[k]->rank, got, sizeof got),
          tsr_dtype_name((tsr_dtype)e->dtype),
          tsr__format_dims(e->dims, (size_t)(e->rank > 0 ? e->rank : 0), want, sizeof want));
      break;
    }
    if (pt->out_instance[k] >= 0 && outs[k]->nbytes)
      st = tsr__plan_write_instance(p, c, &p->instances[pt->out_instance[k]], outs[k]->data);
  }
  for (uint32_t k = 0; outs && k < nd->n_outputs; k++)
    tsr_tensor_destroy(outs[k]);
  for (uint32_t k = 0; staged && k < pt->n_reads; k++)
    free(staged[k]);
  free(staged);
  free(outs);
  free(read_t);
  free(views);
  return st;
}

/* ---- At plan time --------------------------------------------------------------------------- */

tsr_status tsr__cf_fold(tsr_session *s, const tsr__graph *g, uint32_t node, tsr__vshape *vals) {
  const tsr__node *nd = &g->nodes[node];
  int32_t *reads = NULL;
  uint32_t n_reads = 0;
  TSR_RETURN_IF_ERROR(tsr__cf_node_reads(g, node, &reads, &n_reads));
  tsr_tensor *views = calloc(n_reads + 1, sizeof *views);
  const tsr_tensor **read_t = calloc(n_reads + 1, sizeof *read_t);
  tsr_tensor **outs = calloc(nd->n_outputs + 1, sizeof *outs);
  struct tsr__cf_state *cs = NULL;
  tsr_status st = NULL;
  if (!views || !read_t || !outs)
    st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory folding node '%s'", nd->name);
  for (uint32_t k = 0; k < n_reads && !st; k++) {
    const tsr__vshape *vs = &vals[reads[k]];
    if (!vs->data)
      st = tsr__status_make(TSR_STATUS_UNSUPPORTED, "node '%s': '%s' is not known", nd->name,
                            g->values[reads[k]].name);
    views[k] = view_of(s->alloc, vs->dtype, vs->rank, vs->dims, vs->data);
    read_t[k] = &views[k];
  }
  if (!st)
    st = cf_state_make(s, g, node, vals, &cs);
  if (!st) {
    cf_run x = {s, g, nd, cs, reads, n_reads, read_t, NULL};
    st = run_node(&x, outs);
  }
  for (uint32_t k = 0; !st && k < nd->n_outputs; k++) {
    int32_t v = nd->outputs[k];
    if (v < 0)
      continue;
    tsr__vshape *o = &vals[v];
    st = tsr__vshape_set(g, o, (int32_t)outs[k]->dtype, (int32_t)outs[k]->rank, outs[k]->dims);
    if (st)
      break;
    void *data = tsr__alloc(g->alloc, outs[k]->nbytes ? outs[k]->nbytes : 1);
    if (!data) {
      st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory folding node '%s'", nd->name);
      break;
    }
    if (outs[k]->nbytes)
      memcpy(data, outs[k]->data, outs[k]->nbytes);
    o->data = data;
    o->nbytes = outs[k]->nbytes;
    o->owns_data = true;
  }
  cf_state_free(s->alloc, cs);
  for (uint32_t k = 0; outs && k < nd->n_outputs; k++)
    tsr_tensor_destroy(outs[k]);
  free(outs);
  free(read_t);
  free(views);
  tsr__free(g->alloc, reads);
  return st;
}
