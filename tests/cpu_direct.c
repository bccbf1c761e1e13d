#include "tests/cpu_direct.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/threadpool.h"

#define MAX_ITEMS 16
#define MAX_RANK 16

typedef struct direct_attr {
  char name[64];
  tsr_plugin_attr a;
  void *owned;
} direct_attr;

struct cpu_direct {
  char op_type[64];
  int64_t opset;
  direct_attr attrs[MAX_ITEMS];
  size_t n_attrs;
  cpu_tensor in[MAX_ITEMS], out[MAX_ITEMS];
  int64_t in_dims[MAX_ITEMS][MAX_RANK], out_dims[MAX_ITEMS][MAX_RANK];
  uint32_t n_in, n_out;
  bool skip;
  bool alias;
  uint32_t alias_out, alias_in;
  ptrdiff_t alias_off;
};

static int g_node_attr(const tsr_plugin_graph *g, uint32_t node, const char *name,
                       tsr_plugin_attr *out) {
  const cpu_direct *d = (const cpu_direct *)g;
  for (size_t i = 0; i < d->n_attrs; i++)
    if (!strcmp(d->attrs[i].name, name)) {
      *out = d->attrs[i].a;
      return 1;
    }
  return 0;
}

static const tsr_plugin_graph_api direct_api = {
    .struct_size = sizeof(tsr_plugin_graph_api),
    .abi_version = TSR_PLUGIN_ABI_VERSION,
    .node_attr = g_node_attr,
};

cpu_direct *cpu_direct_new(const char *op_type, int64_t opset) {
  cpu_direct *d = calloc(1, sizeof *d);
  snprintf(d->op_type, sizeof d->op_type, "%s", op_type);
  d->opset = opset;
  return d;
}

void cpu_direct_free(cpu_direct *d) {
  if (!d) return;
  for (size_t i = 0; i < d->n_attrs; i++) free(d->attrs[i].owned);
  for (uint32_t i = 0; i < d->n_in; i++) free(d->in[i].data);
  for (uint32_t i = 0; i < d->n_out; i++) free(d->out[i].data);
  free(d);
}

static tsr_plugin_attr *new_attr(cpu_direct *d, const char *name, uint32_t type) {
  direct_attr *a = &d->attrs[d->n_attrs++];
  snprintf(a->name, sizeof a->name, "%s", name);
  a->a.type = type;
  return &a->a;
}

void cpu_direct_attr_int(cpu_direct *d, const char *name, int64_t v) {
  new_attr(d, name, TSR_PLUGIN_ATTR_INT)->i = v;
}
void cpu_direct_attr_float(cpu_direct *d, const char *name, float v) {
  new_attr(d, name, TSR_PLUGIN_ATTR_FLOAT)->f = v;
}
void cpu_direct_attr_string(cpu_direct *d, const char *name, const char *v) {
  tsr_plugin_attr *a = new_attr(d, name, TSR_PLUGIN_ATTR_STRING);
  char *s = strdup(v);
  d->attrs[d->n_attrs - 1].owned = s;
  a->s = s;
  a->s_len = strlen(s);
}
void cpu_direct_attr_ints(cpu_direct *d, const char *name, size_t n, const int64_t *v) {
  tsr_plugin_attr *a = new_attr(d, name, TSR_PLUGIN_ATTR_INTS);
  int64_t *c = malloc((n ? n : 1) * sizeof *c);
  if (n) memcpy(c, v, n * sizeof *c);
  d->attrs[d->n_attrs - 1].owned = c;
  a->ints = c;
  a->count = n;
}
void cpu_direct_attr_floats(cpu_direct *d, const char *name, size_t n, const float *v) {
  tsr_plugin_attr *a = new_attr(d, name, TSR_PLUGIN_ATTR_FLOATS);
  float *c = malloc((n ? n : 1) * sizeof *c);
  if (n) memcpy(c, v, n * sizeof *c);
  d->attrs[d->n_attrs - 1].owned = c;
  a->floats = c;
  a->count = n;
}

static void fill(cpu_tensor *t, int64_t *dims_store, uint32_t dtype, uint32_t rank,
                 const int64_t *dims) {
  if (rank > MAX_RANK) {
    /* A test-harness limit, not a library one: say so loudly rather than overflow. */
    fprintf(stderr, "cpu_direct: rank %u is over the harness limit of %d\n", rank, MAX_RANK);
    abort();
  }
  t->dtype = dtype;
  t->rank = rank;
  size_t count = 1;
  for (uint32_t i = 0; i < rank; i++) {
    dims_store[i] = dims[i];
    count *= (size_t)dims[i];
  }
  t->dims = dims_store;
  t->count = count;
  t->nbytes = count * cpu_dtype_size(dtype);
  t->present = true;
  t->data = calloc(1, t->nbytes ? t->nbytes : 1);
}

void cpu_direct_input(cpu_direct *d, uint32_t dtype, uint32_t rank, const int64_t *dims,
                      const void *data, bool is_const) {
  uint32_t k = d->n_in++;
  fill(&d->in[k], d->in_dims[k], dtype, rank, dims);
  if (data && d->in[k].nbytes) memcpy(d->in[k].data, data, d->in[k].nbytes);
  d->in[k].is_const = is_const;
}

void cpu_direct_input_absent(cpu_direct *d) { memset(&d->in[d->n_in++], 0, sizeof(cpu_tensor)); }

void cpu_direct_output(cpu_direct *d, uint32_t dtype, uint32_t rank, const int64_t *dims) {
  uint32_t k = d->n_out++;
  fill(&d->out[k], d->out_dims[k], dtype, rank, dims);
}

cpu_tensor *cpu_direct_out(cpu_direct *d, uint32_t k) { return &d->out[k]; }

void cpu_direct_skip(cpu_direct *d) { d->skip = true; }

void cpu_direct_alias(cpu_direct *d, uint32_t k, uint32_t j, ptrdiff_t offset_bytes) {
  d->alias = true, d->alias_out = k, d->alias_in = j, d->alias_off = offset_bytes;
}

int cpu_direct_run(cpu_direct *d, size_t threads, char *err, size_t err_size) {
  if (err && err_size) err[0] = '\0';
  const cpu_op *op = cpu_find_op("", d->op_type, d->opset);
  if (!op) {
    snprintf(err, err_size, "no CPU kernel for %s opset %lld", d->op_type, (long long)d->opset);
    return -1;
  }
  /* At compile time only constants carry data, as in a real session. */
  cpu_tensor in_static[MAX_ITEMS], out_static[MAX_ITEMS];
  for (uint32_t i = 0; i < d->n_in; i++) {
    in_static[i] = d->in[i];
    if (!d->in[i].is_const) in_static[i].data = NULL;
  }
  for (uint32_t i = 0; i < d->n_out; i++) {
    out_static[i] = d->out[i];
    out_static[i].data = NULL;
  }
  cpu_node node = {.g = (const tsr_plugin_graph *)d,
                   .api = &direct_api,
                   .index = 0,
                   .name = "direct",
                   .op_type = d->op_type,
                   .opset = d->opset,
                   .n_in = d->n_in,
                   .n_out = d->n_out,
                   .in = in_static,
                   .out = out_static,
                   .skip = d->skip};
  if (op->check) {
    tsr_plugin_reason r = op->check(&node, err, err_size);
    if (r != TSR_PLUGIN_REASON_NONE) return (int)r;
  }
  void *state = NULL;
  if (op->prepare && op->prepare(&node, &state, err, err_size) != 0) return -1;
  cpu_pool *pool = cpu_pool_create(threads);
  cpu_ctx ctx = {.pool = pool, .isa = cpu_detect_isa(), .err = err, .err_size = err_size};
  /* An aliased output: one block holding input j's bytes and the output's, offset apart. */
  cpu_tensor in_run[MAX_ITEMS], out_run[MAX_ITEMS];
  memcpy(in_run, d->in, sizeof in_run);
  memcpy(out_run, d->out, sizeof out_run);
  char *block = NULL;
  if (d->alias) {
    cpu_tensor *ti = &in_run[d->alias_in], *to = &out_run[d->alias_out];
    size_t lead = d->alias_off < 0 ? (size_t)-d->alias_off : 0;
    size_t at = (size_t)((ptrdiff_t)lead + d->alias_off); /* the output's start */
    size_t end_in = lead + ti->nbytes, end_out = at + to->nbytes;
    size_t size = end_in > end_out ? end_in : end_out;
    block = calloc(1, size ? size : 1);
    if (!block)
      abort();
    memcpy(block + lead, ti->data, ti->nbytes);
    ti->data = block + lead;
    to->data = block + at;
  }
  int rc = op->run(&ctx, &node, state, in_run, out_run);
  if (block) {
    memcpy(d->out[d->alias_out].data, out_run[d->alias_out].data, d->out[d->alias_out].nbytes);
    free(block);
  }
  if (op->release) op->release(state);
  cpu_pool_destroy(pool);
  return rc == 0 ? 0 : -1;
}
