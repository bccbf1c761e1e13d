/* The CPU plugin: the device that is always there. It is compiled into libtessera and served
 * through the same plugin table as a loaded plugin, so the host treats every device alike.
 * Buffers are plain host memory (the handle is the pointer), so the host can read and write
 * them without staging copies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/threadpool.h"

#define CPU_ALIGN 64

typedef struct cpu_state {
  const tsr_plugin_host *host;
  cpu_isa isa;
  tsr_plugin_device_props props;
} cpu_state;

typedef struct cpu_exe_node {
  const cpu_op *op;
  cpu_node node;
  void *state;
  cpu_tensor *in_static, *out_static;
  int32_t *in_idx, *out_idx; /* local value indices, -1 when absent */
} cpu_exe_node;

typedef struct cpu_exe {
  const tsr_plugin_graph *g;
  const tsr_plugin_graph_api *api;
  uint32_t n_nodes;
  cpu_exe_node *nodes;
  uint32_t n_values;
  tsr_plugin_value *values;
  uint32_t max_io;
  cpu_pool *pool;
} cpu_exe;

static void set_error(const cpu_state *st, tsr_plugin_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(const cpu_state *st, tsr_plugin_error *err, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  st->host->set_error(err, buf);
}

static void read_cpu_name(char *out, size_t size) {
  snprintf(out, size, "x86-64 CPU");
#if defined(__aarch64__)
  snprintf(out, size, "AArch64 CPU");
#endif
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) == 0) {
      char *colon = strchr(line, ':');
      if (colon) {
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(out, size, "%s", colon);
      }
      break;
    }
  }
  fclose(f);
}

static void describe_features(cpu_isa isa, char *out, size_t size) {
  out[0] = '\0';
#if defined(__x86_64__) || defined(__i386__)
  static const char *const names[] = {"sse4.2", "avx", "f16c", "fma", "avx2", "avx512f"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    bool has = false;
    switch (i) {
    case 0: has = __builtin_cpu_supports("sse4.2"); break;
    case 1: has = __builtin_cpu_supports("avx"); break;
    case 2: has = cpu_has_f16c(); break;
    case 3: has = __builtin_cpu_supports("fma"); break;
    case 4: has = __builtin_cpu_supports("avx2"); break;
    case 5: has = __builtin_cpu_supports("avx512f"); break;
    }
    if (has) {
      size_t len = strlen(out);
      snprintf(out + len, size - len, "%s%s", len ? " " : "", names[i]);
    }
  }
#endif
  size_t len = strlen(out);
  snprintf(out + len, size - len, "%skernels=%s", len ? " " : "",
           isa == CPU_ISA_AVX2_FMA ? "avx2-fma" : "generic");
}

static tsr_plugin_result cpu_init(const tsr_plugin_host *host, void **out_state,
                                  tsr_plugin_error *err) {
  *out_state = NULL;
  cpu_state *st = calloc(1, sizeof *st);
  if (!st) {
    host->set_error(err, "out of memory initialising the CPU plugin");
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  st->host = host;
  st->isa = cpu_detect_isa();
  tsr_plugin_device_props *p = &st->props;
  p->struct_size = sizeof *p;
  p->kind = TSR_PLUGIN_DEVICE_CPU;
  p->flags = TSR_PLUGIN_DEVICE_HOST_VISIBLE;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  p->compute_units = cores > 0 ? (uint32_t)cores : 1;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  p->memory_bytes = (pages > 0 && page > 0) ? (uint64_t)pages * (uint64_t)page : 0;
  read_cpu_name(p->name, sizeof p->name);
  snprintf(p->vendor, sizeof p->vendor, "%s",
#if defined(__x86_64__) || defined(__i386__)
           __builtin_cpu_is("intel") ? "Intel" : __builtin_cpu_is("amd") ? "AMD" : "unknown"
#else
           "unknown"
#endif
  );
  snprintf(p->driver, sizeof p->driver, "tessera-cpu %s",
           st->isa == CPU_ISA_AVX2_FMA ? "avx2-fma" : "generic");
  describe_features(st->isa, p->features, sizeof p->features);
  *out_state = st;
  return TSR_PLUGIN_OK;
}

static void cpu_shutdown(void *state) { free(state); }

static uint32_t cpu_device_count(void *state) { return 1; }

static tsr_plugin_result cpu_device_props(void *state, uint32_t device,
                                          tsr_plugin_device_props *out) {
  if (device != 0) return TSR_PLUGIN_ERROR_INVALID;
  *out = ((cpu_state *)state)->props;
  return TSR_PLUGIN_OK;
}

/* Fills a static tensor description of a value (shape, dtype, constant data). */
static void static_tensor(const tsr_plugin_graph *g, const tsr_plugin_graph_api *api,
                          int32_t value, cpu_tensor *t) {
  memset(t, 0, sizeof *t);
  if (value < 0) return;
  tsr_plugin_value v;
  api->value_info(g, (uint32_t)value, &v);
  t->dtype = v.dtype;
  t->rank = v.rank;
  t->dims = v.dims;
  size_t count = 1;
  for (uint32_t i = 0; i < v.rank; i++) count *= (size_t)v.dims[i];
  t->count = count;
  t->nbytes = (size_t)v.byte_size;
  t->data = (void *)v.const_data;
  t->is_const = v.const_data != NULL;
  t->present = true;
}

/* Prepares the node description and static tensors of one node; arrays allocated here. */
static bool describe_node(const tsr_plugin_graph *g, const tsr_plugin_graph_api *api,
                          uint32_t node, cpu_exe_node *en) {
  uint32_t n_in = api->node_input_count(g, node), n_out = api->node_output_count(g, node);
  en->in_static = calloc(n_in + 1, sizeof(cpu_tensor));
  en->out_static = calloc(n_out + 1, sizeof(cpu_tensor));
  en->in_idx = calloc(n_in + 1, sizeof(int32_t));
  en->out_idx = calloc(n_out + 1, sizeof(int32_t));
  if (!en->in_static || !en->out_static || !en->in_idx || !en->out_idx) return false;
  for (uint32_t k = 0; k < n_in; k++) {
    en->in_idx[k] = api->node_input(g, node, k);
    static_tensor(g, api, en->in_idx[k], &en->in_static[k]);
  }
  for (uint32_t k = 0; k < n_out; k++) {
    en->out_idx[k] = api->node_output(g, node, k);
    static_tensor(g, api, en->out_idx[k], &en->out_static[k]);
  }
  en->node = (cpu_node){.g = g,
                        .api = api,
                        .index = node,
                        .name = api->node_name(g, node),
                        .op_type = api->node_op_type(g, node),
                        .opset = api->node_opset(g, node),
                        .n_in = n_in,
                        .n_out = n_out,
                        .in = en->in_static,
                        .out = en->out_static};
  return true;
}

static void free_node_desc(cpu_exe_node *en) {
  free(en->in_static);
  free(en->out_static);
  free(en->in_idx);
  free(en->out_idx);
}

static tsr_plugin_result cpu_supports(void *state, uint32_t device, const tsr_plugin_graph *g,
                                      uint32_t node, tsr_plugin_support *out) {
  cpu_state *st = state;
  const tsr_plugin_graph_api *api = st->host->graph;
  out->supported = 0;
  out->reason = TSR_PLUGIN_REASON_NONE;
  out->cost_us = -1.0;
  out->message[0] = '\0';
  const char *op_type = api->node_op_type(g, node);
  int64_t opset = api->node_opset(g, node);
  const cpu_op *op = cpu_find_op(api->node_domain(g, node), op_type, opset);
  if (!op) {
    out->reason = TSR_PLUGIN_REASON_OP;
    snprintf(out->message, sizeof out->message, "no CPU kernel for %s%s%s at opset %lld",
             api->node_domain(g, node), *api->node_domain(g, node) ? "." : "", op_type,
             (long long)opset);
    return TSR_PLUGIN_OK;
  }
  cpu_exe_node en = {0};
  if (!describe_node(g, api, node, &en)) {
    free_node_desc(&en);
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  tsr_plugin_reason r = TSR_PLUGIN_REASON_NONE;
  if (op->check) r = op->check(&en.node, out->message, sizeof out->message);
  free_node_desc(&en);
  out->supported = r == TSR_PLUGIN_REASON_NONE;
  out->reason = r;
  return TSR_PLUGIN_OK;
}

static tsr_plugin_result cpu_alloc(void *state, uint32_t device, uint64_t size, void **out,
                                   tsr_plugin_error *err) {
  size_t bytes = (size_t)((size + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN);
  if (bytes == 0) bytes = CPU_ALIGN;
  void *p = aligned_alloc(CPU_ALIGN, bytes);
  if (!p) {
    set_error(state, err, "cannot allocate %llu bytes of host memory", (unsigned long long)size);
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  *out = p;
  return TSR_PLUGIN_OK;
}

static void cpu_free(void *state, uint32_t device, void *buffer) { free(buffer); }

static tsr_plugin_result cpu_write(void *state, uint32_t device, void *buffer, uint64_t offset,
                                   const void *src, uint64_t size, tsr_plugin_error *err) {
  if (size) memcpy((char *)buffer + offset, src, (size_t)size);
  return TSR_PLUGIN_OK;
}

static tsr_plugin_result cpu_read(void *state, uint32_t device, const void *buffer,
                                  uint64_t offset, void *dst, uint64_t size,
                                  tsr_plugin_error *err) {
  if (size) memcpy(dst, (const char *)buffer + offset, (size_t)size);
  return TSR_PLUGIN_OK;
}

static void *cpu_host_pointer(void *state, uint32_t device, void *buffer) { return buffer; }

static void cpu_release(void *state, void *executable) {
  cpu_exe *exe = executable;
  if (!exe) return;
  for (uint32_t i = 0; i < exe->n_nodes; i++) {
    cpu_exe_node *en = &exe->nodes[i];
    if (en->op && en->op->release && en->state) en->op->release(en->state);
    free_node_desc(en);
  }
  free(exe->nodes);
  free(exe->values);
  cpu_pool_destroy(exe->pool);
  free(exe);
}

static tsr_plugin_result cpu_compile(void *state, uint32_t device, const tsr_plugin_graph *g,
                                     const tsr_plugin_compile_options *options, void **out,
                                     tsr_plugin_error *err) {
  cpu_state *st = state;
  const tsr_plugin_graph_api *api = st->host->graph;
  *out = NULL;
  cpu_exe *exe = calloc(1, sizeof *exe);
  if (!exe) goto oom;
  exe->g = g;
  exe->api = api;
  exe->n_values = api->value_count(g);
  exe->values = calloc(exe->n_values + 1, sizeof *exe->values);
  exe->n_nodes = api->node_count(g);
  exe->nodes = calloc(exe->n_nodes + 1, sizeof *exe->nodes);
  if (!exe->values || !exe->nodes) goto oom;
  for (uint32_t v = 0; v < exe->n_values; v++) api->value_info(g, v, &exe->values[v]);
  for (uint32_t i = 0; i < exe->n_nodes; i++) {
    cpu_exe_node *en = &exe->nodes[i];
    if (!describe_node(g, api, i, en)) goto oom;
    const char *name = en->node.name, *op_type = en->node.op_type;
    en->op = cpu_find_op(api->node_domain(g, i), op_type, en->node.opset);
    if (!en->op) {
      set_error(st, err, "node '%s' (%s): no CPU kernel at opset %lld", name, op_type,
                (long long)en->node.opset);
      cpu_release(st, exe);
      return TSR_PLUGIN_ERROR_UNSUPPORTED;
    }
    char msg[512] = "";
    if (en->op->check && en->op->check(&en->node, msg, sizeof msg) != TSR_PLUGIN_REASON_NONE) {
      set_error(st, err, "node '%s' (%s): %s", name, op_type, msg);
      cpu_release(st, exe);
      return TSR_PLUGIN_ERROR_UNSUPPORTED;
    }
    if (en->op->prepare && en->op->prepare(&en->node, &en->state, msg, sizeof msg) != 0) {
      set_error(st, err, "node '%s' (%s): %s", name, op_type, msg);
      cpu_release(st, exe);
      return TSR_PLUGIN_ERROR_INVALID;
    }
    uint32_t io = en->node.n_in > en->node.n_out ? en->node.n_in : en->node.n_out;
    if (io > exe->max_io) exe->max_io = io;
  }
  uint32_t threads = options && options->threads ? options->threads : 1;
  exe->pool = cpu_pool_create(threads);
  *out = exe;
  return TSR_PLUGIN_OK;
oom:
  cpu_release(st, exe);
  set_error(st, err, "out of memory compiling a CPU partition");
  return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static tsr_plugin_result cpu_execute(void *state, void *executable,
                                     const tsr_plugin_binding *bindings, uint32_t binding_count,
                                     const tsr_plugin_exec_options *options,
                                     tsr_plugin_error *err) {
  cpu_state *st = state;
  cpu_exe *exe = executable;
  if (binding_count < exe->n_values) {
    set_error(st, err, "CPU execute: %u bindings given for %u values", binding_count,
              exe->n_values);
    return TSR_PLUGIN_ERROR_INVALID;
  }
  /* Tensor arrays for one node at a time; separate per call so runs can overlap. */
  cpu_tensor *in = calloc(2 * (size_t)exe->max_io + 2, sizeof *in);
  if (!in) {
    set_error(st, err, "out of memory running a CPU partition");
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  cpu_tensor *outs = in + exe->max_io + 1;
  char msg[768];
  cpu_ctx ctx = {.pool = exe->pool, .isa = st->isa, .err = msg, .err_size = sizeof msg};
  bool timed = options && options->struct_size >= sizeof(tsr_plugin_exec_options) &&
               options->node_time;
  tsr_plugin_result result = TSR_PLUGIN_OK;
  for (uint32_t i = 0; i < exe->n_nodes; i++) {
    cpu_exe_node *en = &exe->nodes[i];
    for (int side = 0; side < 2; side++) {
      uint32_t n = side ? en->node.n_out : en->node.n_in;
      const int32_t *idx = side ? en->out_idx : en->in_idx;
      const cpu_tensor *st_t = side ? en->out_static : en->in_static;
      cpu_tensor *dst = side ? outs : in;
      for (uint32_t k = 0; k < n; k++) {
        dst[k] = st_t[k];
        if (idx[k] < 0 || dst[k].is_const) continue;
        const tsr_plugin_binding *b = &bindings[idx[k]];
        dst[k].data = b->buffer ? (char *)b->buffer + b->offset : NULL;
        if (!dst[k].data && dst[k].nbytes) {
          set_error(st, err, "node '%s' (%s): value '%s' has no buffer bound", en->node.name,
                    en->node.op_type, exe->values[idx[k]].name);
          free(in);
          return TSR_PLUGIN_ERROR_INVALID;
        }
      }
    }
    msg[0] = '\0';
    uint64_t t0 = timed ? now_ns() : 0;
    if (en->op->run(&ctx, &en->node, en->state, in, outs) != 0) {
      set_error(st, err, "node '%s' (%s): %s", en->node.name, en->node.op_type,
                msg[0] ? msg : "kernel failed");
      result = TSR_PLUGIN_ERROR_INVALID;
      break;
    }
    if (timed) options->node_time(options->node_time_ctx, i, now_ns() - t0);
  }
  free(in);
  return result;
}

static const tsr_plugin_table cpu_table = {
    .struct_size = sizeof(tsr_plugin_table),
    .abi_version = TSR_PLUGIN_ABI_VERSION,
    .name = "cpu",
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .device_count = cpu_device_count,
    .device_props = cpu_device_props,
    .supports = cpu_supports,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .write = cpu_write,
    .read = cpu_read,
    .host_pointer = cpu_host_pointer,
    .compile = cpu_compile,
    .execute = cpu_execute,
    .release_executable = cpu_release,
    .copy = NULL,
};

const tsr_plugin_table *tsr__cpu_plugin_query(uint32_t host_max_abi_version) {
  return host_max_abi_version >= 1 ? &cpu_table : NULL;
}
