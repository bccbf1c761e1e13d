/* Planning: shapes for the given inputs, constant folding, placement by device preference,
 * partitions, copies at device edges, memory from tensor lifetimes, and compilation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/scheduler.h"

#define ARENA_ALIGN 64

/* ---- Constant folding through the built-in CPU plugin ---------------------------------- */

tsr_status tsr__fold_eval(void *ctx, const tsr__graph *g, uint32_t node, tsr__vshape *vals) {
  tsr_session *s = ctx;
  const tsr__plugin *cpu = s->runtime->plugins[0];
  const tsr__node *nd = &g->nodes[node];
  if (tsr__cf_is_control(nd)) return tsr__cf_fold(s, g, node, vals);
  tsr_plugin_graph *view = NULL;
  TSR_RETURN_IF_ERROR(tsr__view_create(g, vals, &node, 1, NULL, &view));
  tsr_plugin_error err = {{0}};
  void *exe = NULL;
  tsr_plugin_compile_options co = {sizeof co, 1, TSR_PRECISION_FP32};
  tsr_plugin_binding *b = tsr__calloc(g->alloc, view->n_values, sizeof *b);
  tsr_status st = b ? NULL : tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory folding");
  if (!st) {
    tsr_plugin_result r = cpu->table->compile(cpu->state, 0, view, &co, &exe, &err);
    st = tsr__plugin_status(r, &err, "node '%s' (%s): folding constants", nd->name, nd->op_type);
  }
  for (uint32_t k = 0; !st && k < nd->n_outputs; k++) {
    int32_t v = nd->outputs[k];
    if (v < 0) continue;
    size_t count = 0;
    tsr__shape_count(vals[v].dims, (size_t)vals[v].rank, &count);
    size_t nbytes = count * tsr_dtype_size((tsr_dtype)vals[v].dtype);
    b[view->local_of[v]].buffer = tsr__calloc(g->alloc, 1, nbytes ? nbytes : 1);
    if (!b[view->local_of[v]].buffer)
      st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory folding constants");
  }
  if (!st) {
    tsr_plugin_result r = cpu->table->execute(cpu->state, exe, b, view->n_values, NULL, &err);
    st = tsr__plugin_status(r, &err, "folding constants");
  }
  if (exe) cpu->table->release_executable(cpu->state, exe);
  for (uint32_t k = 0; b && k < nd->n_outputs; k++) {
    int32_t v = nd->outputs[k];
    if (v < 0) continue;
    void *data = b[view->local_of[v]].buffer;
    if (st) {
      tsr__free(g->alloc, data);
      continue;
    }
    size_t count = 0;
    tsr__shape_count(vals[v].dims, (size_t)vals[v].rank, &count);
    vals[v].data = data;
    vals[v].nbytes = count * tsr_dtype_size((tsr_dtype)vals[v].dtype);
    vals[v].owns_data = true;
  }
  tsr__free(g->alloc, b);
  tsr__view_destroy(g, view);
  return st;
}

/* ---- Plan building ------------------------------------------------------------------- */

static uint64_t align_up(uint64_t x) { return (x + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

static bool value_is_const(const tsr__plan *p, int32_t v) { return p->vals[v].data != NULL; }

static uint64_t value_bytes(const tsr__plan *p, uint32_t v) {
  size_t count = 0;
  tsr__shape_count(p->vals[v].dims, (size_t)(p->vals[v].rank > 0 ? p->vals[v].rank : 0), &count);
  return (uint64_t)count * tsr_dtype_size((tsr_dtype)p->vals[v].dtype);
}

void tsr__plan_destroy(tsr__plan *p) {
  if (!p) return;
  tsr_session *s = p->session;
  const tsr__graph *g = s->graph;
  const tsr_allocator *a = s->alloc;
  while (p->free_ctx) {
    tsr__run_ctx *c = p->free_ctx;
    p->free_ctx = c->next;
    tsr__run_ctx_destroy(p, c);
  }
  for (uint32_t i = 0; i < p->n_parts; i++) {
    tsr__partition *pt = &p->parts[i];
    if (pt->executable) {
      const tsr__device *d = &s->runtime->devices[s->devices[pt->device]];
      d->plugin->table->release_executable(d->plugin->state, pt->executable);
    }
    if (pt->host_node >= 0) tsr__cf_release(p, pt);
    if (pt->view) tsr__view_destroy(g, pt->view);
    tsr__free(g->alloc, pt->reads); /* tsr__cf_node_reads allocates with the graph's */
    tsr__free(a, pt->out_instance);
    tsr__free(a, pt->nodes);
    tsr__free(a, pt->binding_instance);
    tsr__free(a, pt->copies_in);
  }
  tsr__free(a, p->parts);
  if (p->vals) {
    tsr__vshapes_clear(g, p->vals);
    tsr__free(a, p->vals);
  }
  tsr__free(a, p->place);
  tsr__free(a, p->instances);
  tsr__free(a, p->input_instance_first);
  tsr__free(a, p->arena_size);
  tsr__free(a, p->output_instance);
  tsr__free(a, p->key);
  tsr__free(a, p);
}

#define OOM() tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory while planning")

/* Asks each session device, in preference order, about every node that still runs. */
static tsr_status place_nodes(tsr__plan *p, const uint32_t *active, uint32_t n_active) {
  tsr_session *s = p->session;
  const tsr__graph *g = s->graph;
  /* Control-flow nodes run on the host; their values live on the CPU when the session has it. */
  int32_t host_dev = 0;
  for (uint32_t d = 0; d < s->n_devices; d++)
    if (s->devices[d] == 0) {
      host_dev = (int32_t)d;
      break;
    }
  tsr_plugin_graph *view = NULL;
  TSR_RETURN_IF_ERROR(tsr__view_create(g, p->vals, active, n_active, NULL, &view));
  tsr_status st = NULL;
  for (uint32_t i = 0; i < n_active && !st; i++) {
    tsr__node_place *pl = &p->place[active[i]];
    const tsr__node *nd = &g->nodes[active[i]];
    pl->device = -1;
    pl->refused_by = -1;
    pl->cost_us = -1;
    char first_refusal[512] = "";
    if (tsr__cf_is_control(nd)) {
      pl->device = host_dev;
      continue;
    }
    for (uint32_t d = 0; d < s->n_devices; d++) {
      const tsr__device *dev = &s->runtime->devices[s->devices[d]];
      tsr_plugin_support sup = {sizeof sup, 0, 0, -1.0, ""};
      tsr_plugin_result r =
          dev->plugin->table->supports(dev->plugin->state, dev->local_index, view, i, &sup);
      if (r != TSR_PLUGIN_OK) {
        sup.supported = 0;
        sup.reason = TSR_PLUGIN_REASON_OTHER;
        snprintf(sup.message, sizeof sup.message, "capability query failed (code %d)", (int)r);
      }
      sup.message[sizeof sup.message - 1] = '\0';
      if (sup.supported) {
        pl->device = (int32_t)d;
        pl->cost_us = sup.cost_us;
        break;
      }
      if (pl->refused_by < 0) {
        pl->refused_by = (int32_t)d;
        pl->reason = (tsr_reason)sup.reason;
        snprintf(pl->reason_text, sizeof pl->reason_text, "%s", sup.message);
      }
      size_t len = strlen(first_refusal);
      snprintf(first_refusal + len, sizeof first_refusal - len, "%s%s: %s (%s)", len ? "; " : "",
               dev->id, sup.message[0] ? sup.message : "refused",
               tsr_reason_name((tsr_reason)sup.reason));
    }
    if (pl->device < 0)
      st = tsr__status_make(TSR_STATUS_UNSUPPORTED,
                            "node '%s' (%s): no device in the session can run it: %s%s", nd->name,
                            nd->op_type, first_refusal,
                            s->strict ? " (strict mode: no CPU fallback)" : "");
  }
  tsr__view_destroy(g, view);
  return st;
}

/* Greedy by size: biggest tensors first, each at the lowest offset that does not overlap a
 * placed tensor whose lifetime intersects its own. */
static tsr_status assign_offsets(tsr__plan *p, uint32_t device, uint64_t *out_size) {
  const tsr_allocator *a = p->session->alloc;
  uint32_t n = 0;
  uint32_t *idx = tsr__calloc(a, p->n_instances + 1, sizeof *idx);
  uint32_t *placed = tsr__calloc(a, p->n_instances + 1, sizeof *placed);
  if (!idx || !placed) {
    tsr__free(a, idx);
    tsr__free(a, placed);
    return OOM();
  }
  for (uint32_t i = 0; i < p->n_instances; i++)
    if (p->instances[i].device == device) idx[n++] = i;
  /* Insertion sort by size descending; stable for equal sizes. */
  for (uint32_t i = 1; i < n; i++)
    for (uint32_t j = i; j > 0 && p->instances[idx[j]].size > p->instances[idx[j - 1]].size;
         j--) {
      uint32_t t = idx[j];
      idx[j] = idx[j - 1];
      idx[j - 1] = t;
    }
  uint64_t total = 0;
  uint32_t n_placed = 0;
  for (uint32_t i = 0; i < n; i++) {
    tsr__instance *in = &p->instances[idx[i]];
    uint64_t size = align_up(in->size ? in->size : 1);
    uint64_t offset = 0;
    /* Try candidate offsets: 0 and the end of every conflicting placed tensor. */
    for (bool moved = true; moved;) {
      moved = false;
      for (uint32_t j = 0; j < n_placed; j++) {
        const tsr__instance *o = &p->instances[placed[j]];
        if (o->last < in->first || in->last < o->first) continue;
        uint64_t osize = align_up(o->size ? o->size : 1);
        if (offset < o->offset + osize && o->offset < offset + size) {
          offset = o->offset + osize;
          moved = true;
        }
      }
    }
    in->offset = offset;
    if (offset + size > total) total = offset + size;
    placed[n_placed++] = idx[i];
  }
  tsr__free(a, idx);
  tsr__free(a, placed);
  *out_size = total;
  return NULL;
}

static tsr_status add_instance(tsr__plan *p, int32_t *inst_of, uint32_t v, uint32_t dev,
                               uint32_t first, uint32_t *cap) {
  uint32_t nd = p->session->n_devices;
  int32_t *slot = &inst_of[(size_t)v * nd + dev];
  if (*slot >= 0) {
    tsr__instance *in = &p->instances[*slot];
    if (first < in->first) in->first = first;
    return NULL;
  }
  if (p->n_instances == *cap) {
    uint32_t ncap = *cap ? *cap * 2 : 64;
    tsr__instance *ni = tsr__realloc(p->session->alloc, p->instances, ncap * sizeof *ni);
    if (!ni) return OOM();
    p->instances = ni;
    *cap = ncap;
  }
  tsr__instance *in = &p->instances[p->n_instances];
  memset(in, 0, sizeof *in);
  in->value = v;
  in->device = dev;
  in->size = value_bytes(p, v);
  in->first = first;
  in->last = first;
  *slot = (int32_t)p->n_instances++;
  return NULL;
}

static void extend(tsr__plan *p, int32_t *inst_of, uint32_t v, uint32_t dev, uint32_t pos) {
  int32_t i = inst_of[(size_t)v * p->session->n_devices + dev];
  if (i >= 0 && p->instances[i].last < pos) p->instances[i].last = pos;
}

/* Whether a Transpose over a value of shape v moves only axes of size 1 (the others keep
 * their order), so that its output has its input's bytes: [S, 1, H] to [1, S, H]. */
static bool transpose_keeps_bytes(const tsr__node *nd, const tsr__vshape *v) {
  const tsr__attr *perm = tsr__node_attr(nd, "perm");
  if (v->rank < 0 || (perm && (!perm->ints || perm->count != (size_t)v->rank))) return false;
  int64_t last = -1;
  for (int32_t i = 0; i < v->rank; i++) {
    int64_t axis = perm ? perm->ints[i] : v->rank - 1 - i;
    if (axis < 0 || axis >= v->rank) return false;
    if (v->dims[axis] == 1) continue;
    if (axis <= last) return false;
    last = axis;
  }
  return true;
}

/* The instance a node's output 0 may share with its input 0, or -1. Reshape, Flatten,
 * Squeeze, Unsqueeze and a Transpose that moves only axes of size 1 write their input's bytes
 * unchanged, and values are never written after they are made, so on the built-in CPU (whose
 * kernels leave a copy onto itself alone) the output can simply be the input's instance, kept
 * alive for both: no copy, and no second buffer. Only when the input was made on this device
 * (its instance exists already) and has the output's size. Other devices copy: their copy
 * kernels need distinct buffers. */
static int32_t alias_of(const tsr__plan *p, const int32_t *inst_of, uint32_t node, uint32_t dev) {
  const tsr_session *s = p->session;
  const tsr__graph *g = s->graph;
  const tsr__node *nd = &g->nodes[node];
  if (s->devices[dev] != 0 || nd->domain[0] != '\0' || nd->n_inputs < 1 || nd->n_outputs < 1)
    return -1;
  int32_t in = nd->inputs[0], out = nd->outputs[0];
  if (in < 0 || out < 0 || value_is_const(p, in) || value_is_const(p, out)) return -1;
  if (strcmp(nd->op_type, "Reshape") != 0 && strcmp(nd->op_type, "Flatten") != 0 &&
      strcmp(nd->op_type, "Squeeze") != 0 && strcmp(nd->op_type, "Unsqueeze") != 0 &&
      !(strcmp(nd->op_type, "Transpose") == 0 && transpose_keeps_bytes(nd, &p->vals[in])))
    return -1;
  int32_t prod = g->values[in].producer;
  if (prod < 0 || p->place[prod].device != (int32_t)dev) return -1;
  if (p->vals[in].dtype != p->vals[out].dtype) return -1;
  int32_t i = inst_of[(size_t)in * s->n_devices + dev];
  if (i < 0 || p->instances[i].size != value_bytes(p, (uint32_t)out)) return -1;
  return i;
}

/* A host partition: bindings for what its node reads and writes, the copies it needs from other
 * devices, and its subgraph sessions. */
static tsr_status plan_host_partition(tsr__plan *p, uint32_t pi, const int32_t *inst_of,
                                      uint32_t start) {
  tsr_session *s = p->session;
  const tsr__graph *g = s->graph;
  const tsr_allocator *a = s->alloc;
  uint32_t n_dev = s->n_devices;
  tsr__partition *pt = &p->parts[pi];
  const tsr__node *nd = &g->nodes[pt->host_node];
  uint32_t dev = pt->device;
  pt->binding_instance = tsr__calloc(a, pt->n_reads + 1, sizeof(int32_t));
  pt->copies_in = tsr__calloc(a, pt->n_reads + 1, sizeof *pt->copies_in);
  pt->out_instance = tsr__calloc(a, nd->n_outputs + 1, sizeof(int32_t));
  if (!pt->binding_instance || !pt->copies_in || !pt->out_instance) return OOM();
  for (uint32_t k = 0; k < pt->n_reads; k++) {
    int32_t v = pt->reads[k];
    pt->binding_instance[k] = value_is_const(p, v) ? -1 : inst_of[(size_t)v * n_dev + dev];
    if (value_is_const(p, v)) continue;
    int32_t prod = g->values[v].producer;
    if (prod < 0 || p->place[prod].device == (int32_t)dev) continue;
    int32_t src = inst_of[(size_t)v * n_dev + (uint32_t)p->place[prod].device];
    int32_t dst = inst_of[(size_t)v * n_dev + dev];
    if (p->instances[dst].first != start + 1) continue;
    pt->copies_in[pt->n_copies_in++] = (tsr__copy){(uint32_t)v, (uint32_t)src, (uint32_t)dst};
    pt->bytes_in += p->instances[dst].size;
    p->parts[p->place[prod].partition].bytes_out += p->instances[dst].size;
  }
  for (uint32_t k = 0; k < nd->n_outputs; k++) {
    int32_t v = nd->outputs[k];
    pt->out_instance[k] = v >= 0 && !value_is_const(p, v) ? inst_of[(size_t)v * n_dev + dev] : -1;
  }
  return tsr__cf_prepare(p, pt);
}

tsr_status tsr__plan_build(tsr_session *s, const int32_t *dtypes, const size_t *ranks,
                           const int64_t *const *dims, const tsr_tensor *const *input_data,
                           tsr__plan **out) {
  *out = NULL;
  const tsr__graph *g = s->graph;
  const tsr_allocator *a = s->alloc;
  tsr__plan *p = tsr__calloc(a, 1, sizeof *p);
  if (!p) return OOM();
  p->session = s;
  tsr_status st = NULL;
  uint32_t *active = NULL, *part_start = NULL;
  int32_t *inst_of = NULL;
  uint8_t *used_outside = NULL;
  uint32_t n_active = 0, n_dev = s->n_devices;

  p->vals = tsr__calloc(a, g->n_values + 1, sizeof *p->vals);
  p->place = tsr__calloc(a, g->n_nodes + 1, sizeof *p->place);
  active = tsr__calloc(a, g->n_nodes + 1, sizeof *active);
  if (!p->vals || !p->place || !active) {
    st = OOM();
    goto done;
  }
  for (uint32_t v = 0; v < g->n_values; v++) p->vals[v].rank = -1;
  for (uint32_t i = 0; i < s->n_bound && !st; i++) {
    tsr__vshape *v = &p->vals[s->bound[i]];
    st = tsr__vshape_set(g, v, dtypes[i], (int32_t)ranks[i], dims[i]);
    const tsr_tensor *t = input_data ? input_data[i] : NULL;
    if (!st && s->bound_const && s->bound_const[i]) {
      /* Data of the enclosing plan, which outlives this one. */
      v->data = s->bound_const[i];
      v->nbytes = value_bytes(p, s->bound[i]);
      v->is_weight = true;
    } else if (!st && t) {
      void *copy = tsr__alloc(a, t->nbytes ? t->nbytes : 1);
      if (!copy) {
        st = OOM();
        break;
      }
      if (t->nbytes) memcpy(copy, t->data, t->nbytes);
      v->data = copy;
      v->nbytes = t->nbytes;
      v->owns_data = true;
    }
  }
  if (!st) st = tsr__infer_shapes(g, p->vals, tsr__fold_eval, s);
  if (st) goto done;

  /* Nodes whose outputs all became constants were folded and do not run. */
  for (uint32_t n = 0; n < g->n_nodes; n++) {
    const tsr__node *nd = &g->nodes[n];
    bool folded = true;
    for (uint32_t k = 0; k < nd->n_outputs; k++)
      if (nd->outputs[k] >= 0 && !value_is_const(p, nd->outputs[k])) folded = false;
    p->place[n].device = -1;
    p->place[n].partition = -1;
    p->place[n].refused_by = -1;
    p->place[n].cost_us = -1;
    if (!folded) active[n_active++] = n;
  }
  st = place_nodes(p, active, n_active);
  if (st) goto done;

  /* Partitions: maximal runs of consecutive nodes (in topological order) on one device. A run
   * in a topological order can never depend on a later run, so the partition graph is
   * acyclic by construction. */
  part_start = tsr__calloc(a, n_active + 2, sizeof *part_start);
  p->parts = tsr__calloc(a, n_active + 1, sizeof *p->parts);
  if (!part_start || !p->parts) {
    st = OOM();
    goto done;
  }
  for (uint32_t i = 0; i < n_active; i++) {
    const tsr__node_place *pl = &p->place[active[i]];
    bool host = tsr__cf_is_control(&g->nodes[active[i]]);
    if (i == 0 || pl->device != p->place[active[i - 1]].device || host ||
        tsr__cf_is_control(&g->nodes[active[i - 1]])) {
      part_start[p->n_parts] = i;
      p->parts[p->n_parts].device = (uint32_t)pl->device;
      p->parts[p->n_parts].host_node = host ? (int32_t)active[i] : -1;
      p->n_parts++;
    }
    p->place[active[i]].partition = (int32_t)p->n_parts - 1;
    p->place[active[i]].local = i - part_start[p->n_parts - 1];
  }
  part_start[p->n_parts] = n_active;

  /* Values read outside the partition that made them (or graph outputs) are partition
   * outputs; the planner needs them for views and copies. */
  used_outside = tsr__calloc(a, g->n_values + 1, 1);
  inst_of = tsr__calloc(a, (size_t)g->n_values * n_dev + 1, sizeof *inst_of);
  if (!used_outside || !inst_of) {
    st = OOM();
    goto done;
  }
  for (size_t i = 0; i < (size_t)g->n_values * n_dev; i++) inst_of[i] = -1;
  for (uint32_t o = 0; o < g->n_outputs; o++) used_outside[g->outputs[o]] = 1;
  /* What each host node reads, its subgraphs' reads of this graph included. */
  for (uint32_t pi = 0; pi < p->n_parts && !st; pi++)
    if (p->parts[pi].host_node >= 0)
      st = tsr__cf_node_reads(g, (uint32_t)p->parts[pi].host_node, &p->parts[pi].reads,
                              &p->parts[pi].n_reads);
  if (st) goto done;

  /* Instances and lifetimes. Positions: node i of the active order runs at step i + 1; step 0
   * is writing the inputs, step n_active + 1 reading the outputs. */
  uint32_t cap = 0, end = n_active + 1;
  for (uint32_t i = 0; i < n_active && !st; i++) {
    uint32_t n = active[i];
    const tsr__node *nd = &g->nodes[n];
    uint32_t dev = (uint32_t)p->place[n].device, part = (uint32_t)p->place[n].partition;
    int32_t alias = alias_of(p, inst_of, n, dev);
    for (uint32_t k = 0; k < nd->n_outputs && !st; k++) {
      if (nd->outputs[k] < 0 || value_is_const(p, nd->outputs[k])) continue;
      if (k == 0 && alias >= 0) {
        inst_of[(size_t)nd->outputs[0] * n_dev + dev] = alias;
        extend(p, inst_of, (uint32_t)nd->outputs[0], dev, i + 1);
        continue;
      }
      st = add_instance(p, inst_of, (uint32_t)nd->outputs[k], dev, i + 1, &cap);
    }
    const int32_t *reads = nd->inputs;
    uint32_t n_reads = nd->n_inputs;
    if (p->parts[part].host_node >= 0) {
      reads = p->parts[part].reads;
      n_reads = p->parts[part].n_reads;
    }
    for (uint32_t k = 0; k < n_reads && !st; k++) {
      int32_t v = reads[k];
      if (v < 0 || value_is_const(p, v)) continue;
      int32_t prod = g->values[v].producer;
      if (prod >= 0 && (uint32_t)p->place[prod].partition != part) used_outside[v] = 1;
      if (prod >= 0 && p->place[prod].device == (int32_t)dev) {
        extend(p, inst_of, (uint32_t)v, dev, i + 1);
        continue;
      }
      /* A graph input, or a value made on another device: it needs its own instance here,
       * alive from the start of this partition (or the start of the run for inputs). */
      uint32_t first = prod >= 0 ? part_start[part] + 1 : 0;
      st = add_instance(p, inst_of, (uint32_t)v, dev, first, &cap);
      if (!st) extend(p, inst_of, (uint32_t)v, dev, i + 1);
      if (!st && prod >= 0) {
        /* The source must stay alive until the copy. */
        extend(p, inst_of, (uint32_t)v, (uint32_t)p->place[prod].device, part_start[part] + 1);
      }
    }
  }
  if (st) goto done;
  p->output_instance = tsr__calloc(a, g->n_outputs + 1, sizeof *p->output_instance);
  if (!p->output_instance) {
    st = OOM();
    goto done;
  }
  for (uint32_t o = 0; o < g->n_outputs; o++) {
    int32_t v = g->outputs[o];
    p->output_instance[o] = -1;
    if (value_is_const(p, v)) continue;
    int32_t prod = g->values[v].producer;
    if (prod < 0) continue; /* a graph input handed straight back: copied from the input */
    uint32_t dev = (uint32_t)p->place[prod].device;
    extend(p, inst_of, (uint32_t)v, dev, end);
    p->output_instance[o] = inst_of[(size_t)v * n_dev + dev];
  }

  /* Arenas and budgets. */
  p->arena_size = tsr__calloc(a, n_dev + 1, sizeof *p->arena_size);
  if (!p->arena_size) {
    st = OOM();
    goto done;
  }
  for (uint32_t d = 0; d < n_dev && !st; d++) {
    st = assign_offsets(p, d, &p->arena_size[d]);
    if (!st && s->budgets[d] && p->arena_size[d] > s->budgets[d])
      st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY,
                            "device %s: the plan needs %llu bytes of activation memory, over "
                            "its budget of %llu bytes",
                            s->runtime->devices[s->devices[d]].id,
                            (unsigned long long)p->arena_size[d], (unsigned long long)s->budgets[d]);
  }
  if (st) goto done;

  /* Views, bindings, copies and compilation, partition by partition. */
  for (uint32_t pi = 0; pi < p->n_parts && !st; pi++) {
    tsr__partition *pt = &p->parts[pi];
    uint32_t dev = pt->device;
    pt->n_nodes = part_start[pi + 1] - part_start[pi];
    pt->nodes = tsr__calloc(a, pt->n_nodes, sizeof *pt->nodes);
    if (!pt->nodes) {
      st = OOM();
      break;
    }
    memcpy(pt->nodes, active + part_start[pi], pt->n_nodes * sizeof *pt->nodes);
    if (pt->host_node >= 0) {
      st = plan_host_partition(p, pi, inst_of, part_start[pi]);
      continue;
    }
    st = tsr__view_create(g, p->vals, pt->nodes, pt->n_nodes, used_outside, &pt->view);
    if (st) break;
    pt->binding_instance = tsr__calloc(a, pt->view->n_values + 1, sizeof(int32_t));
    pt->copies_in = tsr__calloc(a, pt->view->n_inputs + 1, sizeof *pt->copies_in);
    if (!pt->binding_instance || !pt->copies_in) {
      st = OOM();
      break;
    }
    for (uint32_t l = 0; l < pt->view->n_values; l++) {
      uint32_t v = pt->view->values[l];
      pt->binding_instance[l] = value_is_const(p, (int32_t)v) ? -1 : inst_of[(size_t)v * n_dev + dev];
    }
    for (uint32_t k = 0; k < pt->view->n_inputs; k++) {
      uint32_t v = pt->view->values[pt->view->inputs[k]];
      int32_t prod = g->values[v].producer;
      if (prod < 0 || p->place[prod].device == (int32_t)dev) continue;
      int32_t src = inst_of[(size_t)v * n_dev + (uint32_t)p->place[prod].device];
      int32_t dst = inst_of[(size_t)v * n_dev + dev];
      /* Copy once per device: only the first partition on this device that reads it. */
      if (p->instances[dst].first != part_start[pi] + 1) continue;
      pt->copies_in[pt->n_copies_in++] = (tsr__copy){v, (uint32_t)src, (uint32_t)dst};
      pt->bytes_in += p->instances[dst].size;
      p->parts[p->place[prod].partition].bytes_out += p->instances[dst].size;
    }
    const tsr__device *d = &s->runtime->devices[s->devices[dev]];
    tsr_plugin_compile_options co = {sizeof co, s->threads, s->precisions};
    tsr_plugin_error err = {{0}};
    tsr_plugin_result r =
        d->plugin->table->compile(d->plugin->state, d->local_index, pt->view, &co,
                                  &pt->executable, &err);
    st = tsr__plugin_status(r, &err, "compiling partition %u for device %s", pi, d->id);
  }
  if (st) goto done;

  /* Graph inputs consumed by a device: each instance is written from the caller's tensor. */
  p->input_instance_first = tsr__calloc(a, (size_t)s->n_bound * n_dev + 1, sizeof(int32_t));
  if (!p->input_instance_first) {
    st = OOM();
    goto done;
  }
  for (uint32_t i = 0; i < s->n_bound; i++)
    for (uint32_t d = 0; d < n_dev; d++)
      p->input_instance_first[(size_t)i * n_dev + d] = inst_of[(size_t)s->bound[i] * n_dev + d];

done:
  tsr__free(a, active);
  tsr__free(a, part_start);
  tsr__free(a, inst_of);
  tsr__free(a, used_outside);
  if (st) {
    tsr__plan_destroy(p);
    return st;
  }
  *out = p;
  return NULL;
}
