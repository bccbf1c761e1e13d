/* Sessions: device selection, the per-shape plan cache, running plans (from many threads at
 * once), and the public views of plans and profiles. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scheduler/scheduler.h"

/* ---- Profiles ------------------------------------------------------------------------- */

typedef struct profile_item {
  char device[64];
  char *name;
  char *op_type;
  char *kernel; /* the plugin's note on the node, "" for devices and copies */
  uint64_t total_ns, calls;
} profile_item;

struct tsr_profile {
  pthread_mutex_t mu;
  profile_item *devices, *nodes;
  size_t n_devices, n_nodes, cap_devices, cap_nodes;
  uint64_t runs;
};

tsr_status tsr_profile_create(tsr_profile **out) {
  if (!out) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = calloc(1, sizeof **out);
  if (!*out) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory creating a profile");
  pthread_mutex_init(&(*out)->mu, NULL);
  return NULL;
}

static void free_items(profile_item *items, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(items[i].name);
    free(items[i].op_type);
    free(items[i].kernel);
  }
}

void tsr_profile_reset(tsr_profile *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  free_items(p->devices, p->n_devices);
  free_items(p->nodes, p->n_nodes);
  p->n_devices = p->n_nodes = 0;
  p->runs = 0;
  pthread_mutex_unlock(&p->mu);
}

void tsr_profile_destroy(tsr_profile *p) {
  if (!p) return;
  tsr_profile_reset(p);
  free(p->devices);
  free(p->nodes);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

/* Adds time to the item (device, name); items are few, so a linear search is fine. Called
 * with p->mu held. Allocation failures drop the sample rather than fail the run. */
static void profile_add(profile_item **items, size_t *n, size_t *cap, const char *device,
                        const char *name, const char *op_type, const char *kernel, uint64_t ns) {
  for (size_t i = 0; i < *n; i++) {
    profile_item *it = &(*items)[i];
    if (!strcmp(it->device, device) && !strcmp(it->name, name)) {
      it->total_ns += ns;
      it->calls++;
      return;
    }
  }
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    profile_item *ni = realloc(*items, ncap * sizeof *ni);
    if (!ni) return;
    *items = ni;
    *cap = ncap;
  }
  profile_item *it = &(*items)[*n];
  memset(it, 0, sizeof *it);
  snprintf(it->device, sizeof it->device, "%s", device);
  it->name = strdup(name);
  it->op_type = strdup(op_type);
  it->kernel = strdup(kernel);
  if (!it->name || !it->op_type || !it->kernel) {
    free(it->name);
    free(it->op_type);
    free(it->kernel);
    return;
  }
  it->total_ns = ns;
  it->calls = 1;
  (*n)++;
}

static tsr_status get_item(const profile_item *items, size_t n, size_t index,
                           tsr_profile_entry *out) {
  if (!out || index >= n)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "profile index %zu out of range", index);
  tsr_profile_entry e = {sizeof e,
                         items[index].device,
                         items[index].name,
                         items[index].op_type,
                         items[index].total_ns,
                         items[index].calls,
                         items[index].kernel};
  tsr__copy_info(out, &e, sizeof e);
  return NULL;
}

size_t tsr_profile_device_count(const tsr_profile *p) { return p ? p->n_devices : 0; }
size_t tsr_profile_node_count(const tsr_profile *p) { return p ? p->n_nodes : 0; }
uint64_t tsr_profile_run_count(const tsr_profile *p) { return p ? p->runs : 0; }
tsr_status tsr_profile_device(const tsr_profile *p, size_t i, tsr_profile_entry *out) {
  if (!p) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "profile is NULL");
  return get_item(p->devices, p->n_devices, i, out);
}
tsr_status tsr_profile_node(const tsr_profile *p, size_t i, tsr_profile_entry *out) {
  if (!p) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "profile is NULL");
  return get_item(p->nodes, p->n_nodes, i, out);
}

/* ---- Sessions ------------------------------------------------------------------------- */

static int device_rank(const tsr__device *d) {
  switch (d->props.kind) {
  case TSR_PLUGIN_DEVICE_GPU: return 0;
  case TSR_PLUGIN_DEVICE_NPU: return 1;
  case TSR_PLUGIN_DEVICE_OTHER: return 2;
  default: return 3;
  }
}

static bool parse_size(const char *s, uint64_t *out) {
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || v < 0) return false;
  double mul = 1;
  switch (toupper((unsigned char)*end)) {
  case 'K': mul = 1024.0; end++; break;
  case 'M': mul = 1024.0 * 1024; end++; break;
  case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
  default: break;
  }
  if (*end == 'B' || *end == 'b') end++;
  if (*end) return false;
  *out = (uint64_t)(v * mul);
  return true;
}

static bool token_matches(const tsr__device *d, const char *tok) {
  return !strcmp(tok, d->id) || !strcmp(tok, d->plugin_name);
}

static tsr_status choose_devices(tsr_session *s, const char *list) {
  tsr_runtime *rt = s->runtime;
  s->devices = tsr__calloc(s->alloc, rt->n_devices + 1, sizeof *s->devices);
  s->budgets = tsr__calloc(s->alloc, rt->n_devices + 1, sizeof *s->budgets);
  if (!s->devices || !s->budgets)
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory creating a session");
  if (!list || !*list || !strcmp(list, "auto") || !strcmp(list, "all")) {
    /* Best first: GPUs, then NPUs, then other accelerators, the CPU last; runtime order
     * breaks ties. */
    for (int rank = 0; rank <= 3; rank++)
      for (uint32_t i = 0; i < rt->n_devices; i++)
        if (device_rank(&rt->devices[i]) == rank) s->devices[s->n_devices++] = i;
    return NULL;
  }
  char *copy = tsr__strdup(s->alloc, list);
  if (!copy) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory");
  tsr_status st = NULL;
  char *save = NULL;
  for (char *tok = strtok_r(copy, ", ", &save); tok && !st; tok = strtok_r(NULL, ", ", &save)) {
    bool found = false;
    for (uint32_t i = 0; i < rt->n_devices; i++) {
      if (!token_matches(&rt->devices[i], tok)) continue;
      found = true;
      bool dup = false;
      for (uint32_t j = 0; j < s->n_devices; j++) dup |= s->devices[j] == i;
      if (!dup) s->devices[s->n_devices++] = i;
    }
    if (!found) {
      char known[512] = "";
      for (uint32_t i = 0; i < rt->n_devices; i++) {
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", rt->devices[i].id);
      }
      st = tsr__status_make(TSR_STATUS_NOT_FOUND,
                            "device '%s' is not available (devices: %s)", tok, known);
    }
  }
  tsr__free(s->alloc, copy);
  if (st) return st;
  if (!s->strict) {
    /* The CPU is the fallback that always works. */
    bool has_cpu = false;
    for (uint32_t j = 0; j < s->n_devices; j++) has_cpu |= s->devices[j] == 0;
    if (!has_cpu) s->devices[s->n_devices++] = 0;
  }
  return NULL;
}

static tsr_status parse_budgets(tsr_session *s, const char *spec) {
  if (!spec || !*spec) return NULL;
  char *copy = tsr__strdup(s->alloc, spec);
  if (!copy) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory");
  tsr_status st = NULL;
  char *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok && !st; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    uint64_t bytes = 0;
    if (!eq || !parse_size(eq + 1, &bytes)) {
      st = tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                            "memory budget '%s' is not of the form DEVICE=SIZE (e.g. cpu=512M)", tok);
      break;
    }
    *eq = '\0';
    bool found = false;
    for (uint32_t j = 0; j < s->n_devices; j++)
      if (token_matches(&s->runtime->devices[s->devices[j]], tok)) {
        s->budgets[j] = bytes;
        found = true;
      }
    if (!found)
      st = tsr__status_make(TSR_STATUS_NOT_FOUND,
                            "memory budget names device '%s', which the session does not use", tok);
  }
  tsr__free(s->alloc, copy);
  return st;
}

/* Default shapes for planning ahead: the model's, with symbolic dimensions set to 1. */
static bool model_shapes_static(const tsr_model *m) {
  for (uint32_t i = 0; i < m->graph->n_inputs; i++) {
    const tsr_value_info *in = &m->input_info[i];
    if (in->rank < 0 || in->dtype == TSR_DTYPE_UNDEFINED) return false;
    for (int64_t d = 0; d < in->rank; d++)
      if (in->dims[d] < 0) return false;
  }
  return true;
}

static tsr_status find_input(const tsr__graph *g, const char *name, uint32_t *out);

/* Plans for the model's input shapes, with each symbolic dimension set to 1, except the inputs
 * named in `names`, which take the given shapes. */
static tsr_status plan_for_shapes(tsr_session *s, size_t n_given, const char *const *names,
                                  const size_t *given_ranks, const int64_t *const *given_dims,
                                  tsr__plan **out) {
  const tsr__graph *g = s->model->graph;
  uint32_t n = g->n_inputs;
  int32_t *dtypes = calloc(n + 1, sizeof *dtypes);
  size_t *ranks = calloc(n + 1, sizeof *ranks);
  int64_t **dims = calloc(n + 1, sizeof *dims);
  tsr_status st = NULL;
  if (!dtypes || !ranks || !dims) st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory");
  for (size_t k = 0; !st && k < n_given; k++) {
    uint32_t idx;
    st = find_input(g, names[k] ? names[k] : "(null)", &idx);
  }
  for (uint32_t i = 0; i < n && !st; i++) {
    const tsr_value_info *in = &s->model->input_info[i];
    const int64_t *given = NULL;
    size_t rank = in->rank < 0 ? 0 : (size_t)in->rank;
    for (size_t k = 0; k < n_given; k++)
      if (names[k] && !strcmp(names[k], in->name)) {
        rank = given_ranks[k];
        given = given_dims[k];
      }
    if (!given && in->rank < 0) {
      st = tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                            "input '%s' has no shape in the model; give its shape", in->name);
      break;
    }
    dtypes[i] = in->dtype;
    ranks[i] = rank;
    dims[i] = calloc(rank + 1, sizeof(int64_t));
    if (!dims[i]) {
      st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory");
      break;
    }
    for (size_t d = 0; d < rank; d++)
      dims[i][d] = given ? given[d] : (in->dims[d] < 0 ? 1 : in->dims[d]);
  }
  if (!st) st = tsr__session_get_plan(s, dtypes, ranks, (const int64_t *const *)dims, NULL, out);
  for (uint32_t i = 0; dims && i < n; i++) free(dims[i]);
  free(dims);
  free(ranks);
  free(dtypes);
  return st;
}

tsr_status tsr_session_create(tsr_runtime *rt, const tsr_model *model,
                              const tsr_session_options *options, tsr_session **out) {
  if (!out) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (!rt || !model)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "runtime and model are required");
  tsr_session_options opts = {sizeof opts, NULL, 0, 0, NULL, TSR_PRECISION_FP32};
  if (options) {
    size_t n = options->struct_size < sizeof opts ? options->struct_size : sizeof opts;
    memcpy(&opts, options, n);
  }
  if (opts.threads < 0)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "threads must be >= 0, got %d",
                            opts.threads);
  tsr_session *s = tsr__calloc(&rt->alloc, 1, sizeof *s);
  if (!s) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory creating a session");
  s->runtime = rt;
  s->model = model;
  s->graph = model->graph;
  s->n_bound = model->graph->n_inputs;
  s->bound = model->graph->inputs;
  s->alloc = &rt->alloc;
  s->strict = opts.strict;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  s->threads = opts.threads > 0 ? (uint32_t)opts.threads : (uint32_t)(cores > 0 ? cores : 1);
  s->precisions = opts.precisions ? opts.precisions : TSR_PRECISION_FP32;
  pthread_mutex_init(&s->mu, NULL);
  tsr_status st = choose_devices(s, opts.devices);
  if (!st) st = parse_budgets(s, opts.memory_budgets);
  if (!st && model_shapes_static(model)) {
    tsr__plan *p = NULL;
    st = plan_for_shapes(s, 0, NULL, NULL, NULL, &p);
    /* Shapes that depend on input values are planned at the first run, when they are known. */
    if (st && s->keys_values) {
      tsr_status_free(st);
      st = NULL;
    }
  }
  if (st) {
    tsr_session_destroy(s);
    return st;
  }
  *out = s;
  return NULL;
}

void tsr_session_destroy(tsr_session *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_plans; i++) tsr__plan_destroy(s->plans[i]);
  tsr__free(s->alloc, s->plans);
  tsr__free(s->alloc, s->devices);
  tsr__free(s->alloc, s->budgets);
  if (s->owns_bound) {
    tsr__free(s->alloc, s->bound);
    tsr__free(s->alloc, (void *)s->bound_const);
  }
  pthread_mutex_destroy(&s->mu);
  tsr__free(s->alloc, s);
}

/* Inputs this small may decide shapes (a Reshape's target, Resize scales); when a model's
 * shapes depend on input values, their values join the plan key. */
#define VALUE_KEY_MAX_ELEMENTS 64

static bool value_keyed(const tsr_tensor *t) {
  return t && t->count <= VALUE_KEY_MAX_ELEMENTS;
}

static size_t key_length(const tsr_session *s, const size_t *ranks,
                         const tsr_tensor *const *data) {
  size_t n = 0;
  for (uint32_t i = 0; i < s->n_bound; i++) {
    n += 3 + ranks[i];
    if (data && value_keyed(data[i])) n += (data[i]->nbytes + 7) / 8;
  }
  return n;
}

static void make_key(const tsr_session *s, const int32_t *dtypes, const size_t *ranks,
                     const int64_t *const *dims, const tsr_tensor *const *data, int64_t *key) {
  size_t k = 0;
  for (uint32_t i = 0; i < s->n_bound; i++) {
    key[k++] = dtypes[i];
    key[k++] = (int64_t)ranks[i];
    for (size_t d = 0; d < ranks[i]; d++) key[k++] = dims[i][d];
    bool keyed = data && value_keyed(data[i]);
    key[k++] = keyed;
    if (keyed) {
      memcpy(&key[k], data[i]->data, data[i]->nbytes);
      k += (data[i]->nbytes + 7) / 8;
    }
  }
}

/* Shape inference marks a status when a shape depends on values known only at run time; the
 * session then plans with the small inputs' values. */
static bool depends_on_values(tsr_status st) {
  return tsr__status_marked(st, TSR__STATUS_NEEDS_INPUT_VALUES);
}

static tsr_status get_plan_keyed(tsr_session *s, const int32_t *dtypes, const size_t *ranks,
                                 const int64_t *const *dims, const tsr_tensor *const *data,
                                 tsr__plan **out);

tsr_status tsr__session_get_plan(tsr_session *s, const int32_t *dtypes, const size_t *ranks,
                                 const int64_t *const *dims, const tsr_tensor *const *data,
                                 tsr__plan **out) {
  pthread_mutex_lock(&s->mu);
  bool keys_values = s->keys_values;
  pthread_mutex_unlock(&s->mu);
  if (!keys_values) {
    tsr_status st = get_plan_keyed(s, dtypes, ranks, dims, NULL, out);
    if (!depends_on_values(st)) return st;
    pthread_mutex_lock(&s->mu);
    s->keys_values = true;
    pthread_mutex_unlock(&s->mu);
    if (!data) return st;
    tsr_status_free(st);
  }
  if (!data)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                            "the model's shapes depend on input values; plan it with the inputs "
                            "of a run");
  return get_plan_keyed(s, dtypes, ranks, dims, data, out);
}

static tsr_status get_plan_keyed(tsr_session *s, const int32_t *dtypes, const size_t *ranks,
                                 const int64_t *const *dims, const tsr_tensor *const *data,
                                 tsr__plan **out) {
  *out = NULL;
  size_t len = key_length(s, ranks, data);
  int64_t *key = tsr__calloc(s->alloc, len + 1, sizeof *key);
  if (!key) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory");
  make_key(s, dtypes, ranks, dims, data, key);
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->n_plans; i++) {
    tsr__plan *p = s->plans[i];
    if (p->key_len == len && !memcmp(p->key, key, len * sizeof *key)) {
      pthread_mutex_unlock(&s->mu);
      tsr__free(s->alloc, key);
      *out = p;
      return NULL;
    }
  }
  /* Planning happens under the lock: concurrent first runs of a new shape wait for one plan
   * instead of each building their own. */
  tsr__plan *p = NULL;
  const tsr_tensor **keyed = NULL;
  if (data) {
    keyed = calloc(s->n_bound + 1, sizeof *keyed);
    if (!keyed) {
      pthread_mutex_unlock(&s->mu);
      tsr__free(s->alloc, key);
      return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    for (uint32_t i = 0; i < s->n_bound; i++)
      keyed[i] = value_keyed(data[i]) ? data[i] : NULL;
  }
  tsr_status st = tsr__plan_build(s, dtypes, ranks, dims, keyed, &p);
  free(keyed);
  if (!st) {
    tsr__plan **np = tsr__realloc(s->alloc, s->plans, (s->n_plans + 1) * sizeof *np);
    if (!np) {
      st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory caching a plan");
      tsr__plan_destroy(p);
    } else {
      s->plans = np;
      s->plans[s->n_plans++] = p;
      p->key = key;
      p->key_len = len;
      key = NULL;
      *out = p;
    }
  }
  pthread_mutex_unlock(&s->mu);
  tsr__free(s->alloc, key);
  return st;
}

/* ---- Running -------------------------------------------------------------------------- */

void tsr__run_ctx_destroy(tsr__plan *p, tsr__run_ctx *c) {
  if (!c) return;
  tsr_session *s = p->session;
  for (uint32_t d = 0; c->arenas && d < s->n_devices; d++)
    if (c->arenas[d]) {
      const tsr__device *dev = &s->runtime->devices[s->devices[d]];
      dev->plugin->table->free(dev->plugin->state, dev->local_index, c->arenas[d]);
    }
  tsr__free(s->alloc, c->arenas);
  tsr__free(s->alloc, c);
}

static tsr_status run_ctx_acquire(tsr__plan *p, tsr__run_ctx **out) {
  tsr_session *s = p->session;
  pthread_mutex_lock(&s->mu);
  tsr__run_ctx *c = p->free_ctx;
  if (c) p->free_ctx = c->next;
  pthread_mutex_unlock(&s->mu);
  if (c) {
    *out = c;
    return NULL;
  }
  c = tsr__calloc(s->alloc, 1, sizeof *c);
  if (c) c->arenas = tsr__calloc(s->alloc, s->n_devices + 1, sizeof *c->arenas);
  if (!c || !c->arenas) {
    tsr__free(s->alloc, c);
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory starting a run");
  }
  for (uint32_t d = 0; d < s->n_devices; d++) {
    if (!p->arena_size[d]) continue;
    const tsr__device *dev = &s->runtime->devices[s->devices[d]];
    tsr_plugin_error err = {{0}};
    tsr_plugin_result r = dev->plugin->table->alloc(dev->plugin->state, dev->local_index,
                                                    p->arena_size[d], &c->arenas[d], &err);
    if (r != TSR_PLUGIN_OK) {
      tsr_status st = tsr__plugin_status(r, &err, "allocating the %llu-byte arena on device %s",
                                         (unsigned long long)p->arena_size[d], dev->id);
      tsr__run_ctx_destroy(p, c);
      return st;
    }
  }
  *out = c;
  return NULL;
}

static void run_ctx_release(tsr__plan *p, tsr__run_ctx *c) {
  pthread_mutex_lock(&p->session->mu);
  c->next = p->free_ctx;
  p->free_ctx = c;
  pthread_mutex_unlock(&p->session->mu);
}

static const tsr__device *plan_device(const tsr__plan *p, uint32_t d) {
  return &p->session->runtime->devices[p->session->devices[d]];
}

static tsr_status write_instance(const tsr__plan *p, tsr__run_ctx *c, const tsr__instance *in,
                                 const void *src) {
  const tsr__device *dev = plan_device(p, in->device);
  tsr_plugin_error err = {{0}};
  tsr_plugin_result r = dev->plugin->table->write(dev->plugin->state, dev->local_index,
                                                  c->arenas[in->device], in->offset, src,
                                                  in->size, &err);
  return tsr__plugin_status(r, &err, "copying '%s' to device %s",
                            p->session->graph->values[in->value].name, dev->id);
}

static tsr_status read_instance(const tsr__plan *p, tsr__run_ctx *c, const tsr__instance *in,
                                void *dst) {
  const tsr__device *dev = plan_device(p, in->device);
  tsr_plugin_error err = {{0}};
  tsr_plugin_result r = dev->plugin->table->read(dev->plugin->state, dev->local_index,
                                                 c->arenas[in->device], in->offset, dst,
                                                 in->size, &err);
  return tsr__plugin_status(r, &err, "copying '%s' from device %s",
                            p->session->graph->values[in->value].name, dev->id);
}

/* Moves a value between devices: straight memcpy when both sides are host-visible, else
 * through a host staging buffer. */
static tsr_status copy_instance(const tsr__plan *p, tsr__run_ctx *c, const tsr__instance *src,
                                const tsr__instance *dst) {
  const tsr__device *ds = plan_device(p, src->device), *dd = plan_device(p, dst->device);
  void *hs = ds->plugin->table->host_pointer
                 ? ds->plugin->table->host_pointer(ds->plugin->state, ds->local_index,
                                                   c->arenas[src->device])
                 : NULL;
  if (hs) return write_instance(p, c, dst, (char *)hs + src->offset);
  void *hd = dd->plugin->table->host_pointer
                 ? dd->plugin->table->host_pointer(dd->plugin->state, dd->local_index,
                                                   c->arenas[dst->device])
                 : NULL;
  if (hd) return read_instance(p, c, src, (char *)hd + dst->offset);
  void *tmp = malloc(src->size ? src->size : 1);
  if (!tmp) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory staging a copy");
  tsr_status st = read_instance(p, c, src, tmp);
  if (!st) st = write_instance(p, c, dst, tmp);
  free(tmp);
  return st;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct node_timer {
  tsr_profile *profile;
  const tsr__plan *plan;
  const tsr__partition *part;
  const tsr__device *device;
} node_timer;

static void on_node_time(void *ctx, uint32_t node, uint64_t ns) {
  node_timer *t = ctx;
  if (node >= t->part->n_nodes) return;
  const tsr__node *nd = &t->plan->session->graph->nodes[t->part->nodes[node]];
  const char *note = tsr__plugin_node_note(t->device->plugin, t->part->executable, node);
  pthread_mutex_lock(&t->profile->mu);
  profile_add(&t->profile->nodes, &t->profile->n_nodes, &t->profile->cap_nodes, t->device->id,
              nd->name, nd->op_type, note, ns);
  pthread_mutex_unlock(&t->profile->mu);
}

static tsr_status execute_plan(tsr__plan *p, tsr__run_ctx *c, const tsr_tensor *const *inputs,
                               tsr_profile *profile) {
  tsr_session *s = p->session;
  uint32_t nd = s->n_devices;
  for (uint32_t i = 0; i < s->n_bound; i++)
    for (uint32_t d = 0; d < nd; d++) {
      int32_t inst = p->input_instance_first[(size_t)i * nd + d];
      if (inst >= 0 && inputs[i])
        TSR_RETURN_IF_ERROR(write_instance(p, c, &p->instances[inst], inputs[i]->data));
    }
  tsr_plugin_binding *b = NULL;
  size_t b_cap = 0;
  tsr_status st = NULL;
  for (uint32_t pi = 0; pi < p->n_parts && !st; pi++) {
    const tsr__partition *pt = &p->parts[pi];
    const tsr__device *dev = plan_device(p, pt->device);
    uint64_t t0 = profile ? now_ns() : 0;
    for (uint32_t k = 0; k < pt->n_copies_in && !st; k++)
      st = copy_instance(p, c, &p->instances[pt->copies_in[k].from_instance],
                         &p->instances[pt->copies_in[k].to_instance]);
    if (st) break;
    uint64_t t1 = profile ? now_ns() : 0;
    if (pt->host_node >= 0) {
      st = tsr__cf_execute(p, c, pt);
      if (profile) {
        const tsr__node *hn = &s->graph->nodes[pt->host_node];
        pthread_mutex_lock(&profile->mu);
        profile_add(&profile->nodes, &profile->n_nodes, &profile->cap_nodes, "host", hn->name,
                    hn->op_type, "", now_ns() - t1);
        pthread_mutex_unlock(&profile->mu);
      }
      continue;
    }
    if (pt->view->n_values > b_cap) {
      tsr_plugin_binding *nb = realloc(b, pt->view->n_values * sizeof *nb);
      if (!nb) {
        st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory running a partition");
        break;
      }
      b = nb;
      b_cap = pt->view->n_values;
    }
    for (uint32_t l = 0; l < pt->view->n_values; l++) {
      int32_t inst = pt->binding_instance[l];
      b[l].buffer = inst >= 0 ? c->arenas[p->instances[inst].device] : NULL;
      b[l].offset = inst >= 0 ? p->instances[inst].offset : 0;
    }
    node_timer timer = {profile, p, pt, dev};
    tsr_plugin_exec_options eo = {sizeof eo, profile ? on_node_time : NULL, &timer};
    tsr_plugin_error err = {{0}};
    tsr_plugin_result r = dev->plugin->table->execute(dev->plugin->state, pt->executable, b,
                                                      pt->view->n_values, &eo, &err);
    st = tsr__plugin_status(r, &err, "running partition %u on device %s", pi, dev->id);
    if (profile) {
      uint64_t t2 = now_ns();
      pthread_mutex_lock(&profile->mu);
      profile_add(&profile->devices, &profile->n_devices, &profile->cap_devices, dev->id, dev->id,
                  "", "", t2 - t1);
      if (pt->n_copies_in) {
        char label[96];
        snprintf(label, sizeof label, "copies to %s", dev->id);
        profile_add(&profile->nodes, &profile->n_nodes, &profile->cap_nodes, dev->id, label, "Copy",
                    "", t1 - t0);
      }
      pthread_mutex_unlock(&profile->mu);
    }
  }
  free(b);
  return st;
}

static tsr_status find_input(const tsr__graph *g, const char *name, uint32_t *out) {
  for (uint32_t i = 0; i < g->n_inputs; i++)
    if (!strcmp(g->values[g->inputs[i]].name, name)) {
      *out = i;
      return NULL;
    }
  char known[512] = "";
  for (uint32_t i = 0; i < g->n_inputs; i++) {
    size_t len = strlen(known);
    snprintf(known + len, sizeof known - len, "%s'%s'", i ? ", " : "", g->values[g->inputs[i]].name);
  }
  return tsr__status_make(TSR_STATUS_NOT_FOUND, "the model has no input '%s' (its inputs: %s)",
                          name, known[0] ? known : "none");
}

/* Checks the given tensors against the model's declared inputs and orders them. */
static tsr_status bind_inputs(const tsr_session *s, size_t n, const char *const *names,
                              const tsr_tensor *const *tensors, const tsr_tensor **ordered) {
  const tsr__graph *g = s->model->graph;
  for (size_t i = 0; i < n; i++) {
    if (!names || !names[i] || !tensors || !tensors[i])
      return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "input %zu has no name or tensor", i);
    uint32_t k;
    TSR_RETURN_IF_ERROR(find_input(g, names[i], &k));
    if (ordered[k])
      return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "input '%s' is given twice", names[i]);
    const tsr_value_info *info = &s->model->input_info[k];
    const tsr_tensor *t = tensors[i];
    if (info->dtype != TSR_DTYPE_UNDEFINED && t->dtype != info->dtype)
      return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                              "input '%s' has dtype %s, the model expects %s", names[i],
                              tsr_dtype_name(t->dtype), tsr_dtype_name(info->dtype));
    char got[256], want[256];
    if (info->rank >= 0 && (int64_t)t->rank != info->rank)
      return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                              "input '%s' has shape %s (rank %zu), the model expects rank %lld %s",
                              names[i], tsr__format_dims(t->dims, t->rank, got, sizeof got),
                              t->rank, (long long)info->rank,
                              tsr__format_dims(info->dims, (size_t)info->rank, want, sizeof want));
    for (int64_t d = 0; info->rank > 0 && d < info->rank; d++)
      if (info->dims[d] >= 0 && info->dims[d] != t->dims[d])
        return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                                "input '%s' has shape %s, the model expects %s (dimension %lld "
                                "must be %lld; -1 marks a free dimension)",
                                names[i], tsr__format_dims(t->dims, t->rank, got, sizeof got),
                                tsr__format_dims(info->dims, (size_t)info->rank, want, sizeof want),
                                (long long)d, (long long)info->dims[d]);
    ordered[k] = t;
  }
  for (uint32_t k = 0; k < g->n_inputs; k++)
    if (!ordered[k])
      return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "input '%s' is missing",
                              g->values[g->inputs[k]].name);
  return NULL;
}

static tsr_status collect_outputs(tsr__plan *p, tsr__run_ctx *c, const tsr_tensor *const *inputs,
                                  size_t n_outputs, const char *const *names, tsr_tensor **outputs) {
  tsr_session *s = p->session;
  const tsr__graph *g = s->graph;
  for (size_t i = 0; i < n_outputs; i++) {
    uint32_t o = (uint32_t)i;
    if (names) {
      bool found = false;
      for (uint32_t k = 0; k < g->n_outputs && !found; k++)
        if (names[i] && !strcmp(g->values[g->outputs[k]].name, names[i])) {
          o = k;
          found = true;
        }
      if (!found)
        return tsr__status_make(TSR_STATUS_NOT_FOUND, "the model has no output '%s'",
                                names[i] ? names[i] : "(null)");
    } else if (i >= g->n_outputs) {
      return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                              "%zu outputs asked for, the model has %u", n_outputs, g->n_outputs);
    }
    int32_t v = g->outputs[o];
    const tsr__vshape *vs = &p->vals[v];
    tsr_tensor *t = NULL;
    TSR_RETURN_IF_ERROR(tsr__tensor_new(s->alloc, (tsr_dtype)vs->dtype, (size_t)vs->rank,
                                        vs->dims, &t));
    outputs[i] = t;
    int32_t inst = p->output_instance[o];
    if (inst >= 0) {
      TSR_RETURN_IF_ERROR(read_instance(p, c, &p->instances[inst], t->data));
    } else if (vs->data) {
      memcpy(t->data, vs->data, t->nbytes);
    } else {
      for (uint32_t k = 0; k < s->n_bound; k++)
        if (s->bound[k] == v && inputs[k]) memcpy(t->data, inputs[k]->data, t->nbytes);
    }
  }
  return NULL;
}

tsr_status tsr_session_run(tsr_session *s, const tsr_run_options *options, size_t n_inputs,
                           const char *const *input_names, const tsr_tensor *const *inputs,
                           size_t n_outputs, const char *const *output_names,
                           tsr_tensor **outputs) {
  if (!s) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "session is NULL");
  if (n_outputs && !outputs) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "outputs is NULL");
  for (size_t i = 0; i < n_outputs; i++) outputs[i] = NULL;
  tsr_profile *profile = NULL;
  if (options && options->struct_size >= offsetof(tsr_run_options, profile) + sizeof(void *))
    profile = options->profile;
  const tsr__graph *g = s->model->graph;
  const tsr_tensor **ordered = calloc(g->n_inputs + 1, sizeof *ordered);
  int32_t *dtypes = calloc(g->n_inputs + 1, sizeof *dtypes);
  size_t *ranks = calloc(g->n_inputs + 1, sizeof *ranks);
  const int64_t **dims = calloc(g->n_inputs + 1, sizeof *dims);
  tsr_status st = NULL;
  if (!ordered || !dtypes || !ranks || !dims)
    st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory starting a run");
  if (!st) st = bind_inputs(s, n_inputs, input_names, inputs, ordered);
  tsr__plan *p = NULL;
  if (!st) {
    for (uint32_t k = 0; k < g->n_inputs; k++) {
      dtypes[k] = ordered[k]->dtype;
      ranks[k] = ordered[k]->rank;
      dims[k] = ordered[k]->dims;
    }
    st = tsr__session_get_plan(s, dtypes, ranks, dims, ordered, &p);
  }
  tsr__run_ctx *c = NULL;
  if (!st) st = run_ctx_acquire(p, &c);
  if (!st) st = execute_plan(p, c, ordered, profile);
  if (!st) st = collect_outputs(p, c, ordered, n_outputs, output_names, outputs);
  if (c) run_ctx_release(p, c);
  if (!st && profile) {
    pthread_mutex_lock(&profile->mu);
    profile->runs++;
    pthread_mutex_unlock(&profile->mu);
  }
  if (st)
    for (size_t i = 0; i < n_outputs; i++) {
      tsr_tensor_destroy(outputs[i]);
      outputs[i] = NULL;
    }
  free(ordered);
  free(dtypes);
  free(ranks);
  free(dims);
  return st;
}

/* ---- Subgraph sessions ---------------------------------------------------------------- */

tsr_status tsr__session_create_sub(const tsr_session *parent, const tsr__graph *sub,
                                   const void *const *outer_const, tsr_session **out) {
  *out = NULL;
  const tsr_allocator *a = parent->alloc;
  tsr_session *s = tsr__calloc(a, 1, sizeof *s);
  if (!s) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory creating a session");
  s->runtime = parent->runtime;
  s->model = parent->model;
  s->alloc = a;
  s->strict = parent->strict;
  s->threads = parent->threads;
  s->precisions = parent->precisions;
  s->graph = sub;
  s->owns_bound = true;
  pthread_mutex_init(&s->mu, NULL);
  uint32_t n_outer = 0;
  for (uint32_t v = 0; v < sub->n_values; v++) n_outer += sub->values[v].outer && sub->values[v].name;
  s->n_devices = parent->n_devices;
  s->devices = tsr__calloc(a, s->n_devices + 1, sizeof *s->devices);
  s->budgets = tsr__calloc(a, s->n_devices + 1, sizeof *s->budgets);
  s->bound = tsr__calloc(a, sub->n_inputs + n_outer + 1, sizeof *s->bound);
  s->bound_const = tsr__calloc(a, sub->n_inputs + n_outer + 1, sizeof *s->bound_const);
  if (!s->devices || !s->budgets || !s->bound || !s->bound_const) {
    tsr_session_destroy(s);
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory creating a session");
  }
  memcpy(s->devices, parent->devices, s->n_devices * sizeof *s->devices);
  memcpy(s->budgets, parent->budgets, s->n_devices * sizeof *s->budgets);
  for (uint32_t i = 0; i < sub->n_inputs; i++) s->bound[s->n_bound++] = sub->inputs[i];
  uint32_t j = 0;
  for (uint32_t v = 0; v < sub->n_values; v++) {
    if (!sub->values[v].outer || !sub->values[v].name) continue;
    s->bound_const[s->n_bound] = outer_const ? outer_const[j] : NULL;
    s->bound[s->n_bound++] = (int32_t)v;
    j++;
  }
  *out = s;
  return NULL;
}

tsr_status tsr__session_run_bound(tsr_session *s, const tsr_tensor *const *bound,
                                  tsr_tensor **outputs) {
  const tsr__graph *g = s->graph;
  uint32_t n = s->n_bound;
  int32_t *dtypes = calloc(n + 1, sizeof *dtypes);
  size_t *ranks = calloc(n + 1, sizeof *ranks);
  const int64_t **dims = calloc(n + 1, sizeof *dims);
  tsr_status st = NULL;
  if (!dtypes || !ranks || !dims)
    st = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory starting a run");
  for (uint32_t k = 0; k < n && !st; k++) {
    dtypes[k] = bound[k]->dtype;
    ranks[k] = bound[k]->rank;
    dims[k] = bound[k]->dims;
  }
  tsr__plan *p = NULL;
  if (!st) st = tsr__session_get_plan(s, dtypes, ranks, dims, bound, &p);
  tsr__run_ctx *c = NULL;
  if (!st) st = run_ctx_acquire(p, &c);
  if (!st) st = execute_plan(p, c, bound, NULL);
  if (!st) st = collect_outputs(p, c, bound, g->n_outputs, NULL, outputs);
  if (c) run_ctx_release(p, c);
  if (st)
    for (uint32_t k = 0; k < g->n_outputs; k++) {
      tsr_tensor_destroy(outputs[k]);
      outputs[k] = NULL;
    }
  free(dtypes);
  free(ranks);
  free(dims);
  return st;
}

tsr_status tsr__plan_write_instance(const tsr__plan *p, tsr__run_ctx *c, const tsr__instance *in,
                                    const void *src) {
  return write_instance(p, c, in, src);
}

tsr_status tsr__plan_read_instance(const tsr__plan *p, tsr__run_ctx *c, const tsr__instance *in,
                                   void *dst) {
  return read_instance(p, c, in, dst);
}

void *tsr__plan_host_address(const tsr__plan *p, tsr__run_ctx *c, const tsr__instance *in) {
  const tsr__device *d = plan_device(p, in->device);
  if (!d->plugin->table->host_pointer || !c->arenas[in->device]) return NULL;
  char *h = d->plugin->table->host_pointer(d->plugin->state, d->local_index, c->arenas[in->device]);
  return h ? h + in->offset : NULL;
}

/* ---- Plans, publicly -------------------------------------------------------------------- */

struct tsr_plan {
  tsr__plan *p; /* owned by the session's cache */
};

tsr_status tsr_session_plan(tsr_session *s, size_t n_inputs, const char *const *input_names,
                            const size_t *in_ranks, const int64_t *const *shapes, tsr_plan **out) {
  if (!out) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (!s) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "session is NULL");
  tsr__plan *p = NULL;
  tsr_status st = plan_for_shapes(s, n_inputs, input_names, in_ranks, shapes, &p);
  if (st) return st;
  *out = calloc(1, sizeof **out);
  if (!*out) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory");
  (*out)->p = p;
  return NULL;
}

void tsr_plan_destroy(tsr_plan *plan) { free(plan); }

size_t tsr_plan_node_count(const tsr_plan *plan) {
  return plan ? plan->p->session->model->graph->n_nodes : 0;
}

tsr_status tsr_plan_get_node(const tsr_plan *plan, size_t index, tsr_plan_node_info *out) {
  if (!plan || !out || index >= tsr_plan_node_count(plan))
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "plan node index %zu out of range", index);
  const tsr__plan *p = plan->p;
  const tsr__node *nd = &p->session->model->graph->nodes[index];
  const tsr__node_place *pl = &p->place[index];
  tsr_plan_node_info info = {sizeof info};
  info.name = nd->name;
  info.op_type = nd->op_type;
  info.device = pl->device >= 0 ? plan_device(p, (uint32_t)pl->device)->id : "folded";
  info.partition = pl->partition >= 0 ? (size_t)pl->partition : SIZE_MAX;
  info.reason = pl->refused_by >= 0 ? pl->reason : TSR_REASON_NONE;
  info.reason_text = pl->refused_by >= 0 ? pl->reason_text : "";
  info.refused_by = pl->refused_by >= 0 ? plan_device(p, (uint32_t)pl->refused_by)->id : "";
  info.estimated_cost_us = pl->cost_us;
  info.kernel = "";
  if (pl->partition >= 0) {
    const tsr__partition *pt = &p->parts[pl->partition];
    info.kernel =
        tsr__plugin_node_note(plan_device(p, pt->device)->plugin, pt->executable, pl->local);
  }
  tsr__copy_info(out, &info, sizeof info);
  return NULL;
}

size_t tsr_plan_partition_count(const tsr_plan *plan) { return plan ? plan->p->n_parts : 0; }

tsr_status tsr_plan_get_partition(const tsr_plan *plan, size_t index,
                                  tsr_plan_partition_info *out) {
  if (!plan || !out || index >= plan->p->n_parts)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "partition index %zu out of range", index);
  const tsr__plan *p = plan->p;
  const tsr__partition *pt = &p->parts[index];
  tsr_plan_partition_info info = {sizeof info};
  info.device = plan_device(p, pt->device)->id;
  info.node_count = pt->n_nodes;
  info.bytes_in = pt->bytes_in;
  info.bytes_out = pt->bytes_out;
  info.arena_bytes = p->arena_size[pt->device];
  tsr__copy_info(out, &info, sizeof info);
  return NULL;
}

uint64_t tsr_plan_arena_bytes(const tsr_plan *plan) {
  if (!plan) return 0;
  uint64_t total = 0;
  for (uint32_t d = 0; d < plan->p->session->n_devices; d++) total += plan->p->arena_size[d];
  return total;
}
