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
#include "devices/cpu/gemm_util.h"
#include "devices/cpu/nchwc.h"
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
  /* Fusion (fuse_nodes): the nodes a node took in are absorbed and do not run. A node that took
   * in the Add (and activation) after it is deferred: it runs not at its own place but at that
   * of the last node it took in, whose run_fused names it (-1 elsewhere). A Mul taken into the
   * Conv after it, and an Add taken into the LayerNormalization after it, are only absorbed:
   * absorbed_by names the node that took them in (-1 for a node that runs). */
  bool deferred;
  int32_t run_fused;
  int32_t absorbed_by;
  char note[128];      /* how the node runs (node_note), built once prepared */
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
  cpu_scratch *_Atomic scratch; /* cpu_scratch_take's slot for this executable's kernels */
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
  cpu_scratch_free(&exe->scratch);
  free(exe);
}

/* ---- Node fusion ---------------------------------------------------------------------- */

/* How many of the partition's nodes read value v; the last of them in *reader. */
static uint32_t value_readers(const cpu_exe *exe, int32_t v, uint32_t *reader) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < exe->n_nodes; i++)
    for (uint32_t k = 0; k < exe->nodes[i].node.n_in; k++)
      if (exe->nodes[i].in_idx[k] == v) {
        n++;
        *reader = i;
      }
  return n;
}

/* Whether value v leaves the partition (the host or another device reads it). */
static bool value_leaves(const cpu_exe *exe, int32_t v) {
  uint32_t n = exe->api->output_count(exe->g);
  for (uint32_t k = 0; k < n; k++)
    if ((int32_t)exe->api->output(exe->g, k) == v)
      return true;
  return false;
}

static bool same_f32_shape(const cpu_tensor *a, const cpu_tensor *b) {
  if (a->dtype != TSR_DTYPE_FLOAT32 || b->dtype != TSR_DTYPE_FLOAT32 || a->rank != b->rank)
    return false;
  for (uint32_t d = 0; d < a->rank; d++)
    if (a->dims[d] != b->dims[d])
      return false;
  return true;
}

/* The node of the partition that alone reads v, when v stays inside and that node is `op`
 * (ai.onnx) with one output; -1 otherwise. */
static int32_t sole_reader(const cpu_exe *exe, int32_t v, const char *op) {
  uint32_t r = 0;
  if (v < 0 || value_readers(exe, v, &r) != 1 || value_leaves(exe, v))
    return -1;
  const cpu_exe_node *en = &exe->nodes[r];
  if (en->deferred || en->absorbed_by >= 0 || strcmp(en->node.op_type, op) != 0 ||
      *exe->api->node_domain(exe->g, en->node.index) || en->node.n_out != 1 || en->out_idx[0] < 0)
    return -1;
  return (int32_t)r;
}

/* The activation node k, when the fused node may take it in (Relu always; Gelu for a MatMul,
 * as exact or tanh form); CPU_FUSED_NONE otherwise. */
static cpu_fused_act fusable_act(const cpu_exe *exe, int32_t k, bool gelu) {
  if (k < 0)
    return CPU_FUSED_NONE;
  const cpu_node *n = &exe->nodes[k].node;
  if (n->n_in != 1)
    return CPU_FUSED_NONE;
  if (strcmp(n->op_type, "Relu") == 0)
    return CPU_FUSED_RELU;
  if (gelu && strcmp(n->op_type, "Gelu") == 0) {
    const char *approx = cpu_attr_string(n, "approximate", "none");
    return strcmp(approx, "none") == 0   ? CPU_FUSED_GELU
           : strcmp(approx, "tanh") == 0 ? CPU_FUSED_GELU_TANH
                                         : CPU_FUSED_NONE;
  }
  return CPU_FUSED_NONE;
}

/* Whether t is a constant float32 vector of n values laid along the last axis (dims [.., n]
 * with every other dim 1) with no more axes than `rank`. */
static bool const_row_vector(const cpu_tensor *t, uint32_t rank, int64_t n) {
  return t->is_const && t->dtype == TSR_DTYPE_FLOAT32 && t->rank >= 1 && t->rank <= rank &&
         t->dims[t->rank - 1] == n && t->count == (size_t)n;
}

/* Gives fused node c room for the inputs the fusions add (slots up to 4), absent until set. */
static bool grow_inputs(cpu_exe_node *c) {
  enum { SLOTS = 5 };
  if (c->node.n_in >= SLOTS)
    return true;
  cpu_tensor *in_static = realloc(c->in_static, (SLOTS + 1) * sizeof *in_static);
  if (!in_static)
    return false;
  c->in_static = in_static;
  c->node.in = in_static;
  int32_t *in_idx = realloc(c->in_idx, (SLOTS + 1) * sizeof *in_idx);
  if (!in_idx)
    return false;
  c->in_idx = in_idx;
  for (uint32_t m = c->node.n_in; m <= SLOTS; m++) {
    memset(&c->in_static[m], 0, sizeof c->in_static[m]);
    c->in_idx[m] = -1;
  }
  c->node.n_in = SLOTS;
  return true;
}

/* Mul -> Conv: a Mul of a [N, C, H, W] tensor by a [N, C, 1, 1] one (squeeze-and-excitation's
 * scale) whose product only the Conv right after it reads: the Conv scales its weights per
 * image instead (cpu_node.in_scale), and the product is never written. */
static bool fuse_scales(cpu_exe *exe) {
  for (uint32_t i = 0; i + 1 < exe->n_nodes; i++) {
    cpu_exe_node *mul = &exe->nodes[i];
    if (mul->deferred || mul->absorbed_by >= 0 || strcmp(mul->node.op_type, "Mul") != 0 ||
        *exe->api->node_domain(exe->g, mul->node.index) || mul->node.n_in != 2 ||
        mul->node.n_out != 1 || mul->out_idx[0] < 0)
      continue;
    int32_t j = sole_reader(exe, mul->out_idx[0], "Conv");
    if (j != (int32_t)i + 1)
      continue;
    cpu_exe_node *c = &exe->nodes[j];
    if (c->node.n_in > 3 || c->in_idx[0] != mul->out_idx[0] || c->in_idx[1] == mul->out_idx[0] ||
        (c->node.n_in > 2 && c->in_idx[2] == mul->out_idx[0]) || !cpu_conv_scale_ok(&c->node))
      continue;
    const cpu_tensor *xin = &c->in_static[0];
    int side = -1;
    for (int k = 0; k < 2 && side < 0; k++) {
      const cpu_tensor *x = &mul->in_static[k], *sc = &mul->in_static[1 - k];
      if (mul->in_idx[k] < 0 || mul->in_idx[1 - k] < 0 || !same_f32_shape(x, xin) ||
          sc->dtype != TSR_DTYPE_FLOAT32 || sc->rank != x->rank || x->rank < 3 ||
          sc->dims[0] != x->dims[0] || sc->dims[1] != x->dims[1])
        continue;
      bool ones = true;
      for (uint32_t d = 2; d < sc->rank; d++)
        ones = ones && sc->dims[d] == 1;
      if (ones)
        side = k;
    }
    if (side < 0 || !same_f32_shape(&mul->out_static[0], xin))
      continue;
    if (!grow_inputs(c))
      return false;
    c->in_static[0] = mul->in_static[side];
    c->in_idx[0] = mul->in_idx[side];
    c->in_static[4] = mul->in_static[1 - side];
    c->in_idx[4] = mul->in_idx[1 - side];
    c->node.in_scale = true;
    mul->absorbed_by = (int32_t)(c - exe->nodes);
  }
  return true;
}

/* Add -> LayerNormalization: an Add of two float32 values of one shape whose sum only the
 * LayerNormalization right after it reads (a transformer's residual connection, the Add of
 * SkipLayerNormalization): the LayerNormalization adds them row by row as it normalises
 * (cpu_node.skip), and the sum is never written. */
static bool fuse_skip_norms(cpu_exe *exe) {
  for (uint32_t i = 0; i + 1 < exe->n_nodes; i++) {
    cpu_exe_node *a = &exe->nodes[i];
    if (a->deferred || a->absorbed_by >= 0 || strcmp(a->node.op_type, "Add") != 0 ||
        *exe->api->node_domain(exe->g, a->node.index) || a->node.n_in != 2 || a->node.n_out != 1 ||
        a->out_idx[0] < 0 || a->in_idx[0] < 0 || a->in_idx[1] < 0 ||
        !same_f32_shape(&a->in_static[0], &a->out_static[0]) ||
        !same_f32_shape(&a->in_static[1], &a->out_static[0]))
      continue;
    int32_t j = sole_reader(exe, a->out_idx[0], "LayerNormalization");
    if (j != (int32_t)i + 1)
      continue;
    cpu_exe_node *ln = &exe->nodes[j];
    if (ln->node.n_in < 2 || ln->node.n_in > 3 || ln->in_idx[0] != a->out_idx[0] ||
        ln->in_idx[1] == a->out_idx[0] || (ln->node.n_in > 2 && ln->in_idx[2] == a->out_idx[0]))
      continue;
    if (!grow_inputs(ln))
      return false;
    ln->in_static[0] = a->in_static[0];
    ln->in_idx[0] = a->in_idx[0];
    ln->in_static[3] = a->in_static[1];
    ln->in_idx[3] = a->in_idx[1];
    ln->node.skip = true;
    a->absorbed_by = (int32_t)(ln - exe->nodes);
  }
  return true;
}

/* Conv -> Add -> (Relu) and MatMul -> Add -> (Relu | Gelu): when a Conv's output is read only
 * by an Add whose other operand has the same shape (no broadcast), the Conv adds that operand
 * in its GEMM's epilogue and writes the Add's output (or the activation's, applying it too):
 * ResNet's and MobileNetV2's residual connections then cost no pass of their own over memory.
 * A MatMul with a constant B followed by the Add of a constant bias vector (a transformer's
 * linear layers, which exporters write as MatMul + Add when the input has three axes) adds the
 * bias as the GEMM's column bias. Done here rather than as a graph pass because only now are
 * the shapes known.
 *
 * The host planned memory for the nodes as they were, so a fused node must not read or write
 * anything the plan lets another node use meanwhile: the nodes fused must follow one another
 * (the Add right after the Conv or MatMul, the activation right after the Add), so that nothing
 * runs between them. The fused node runs at the place of the last; there its output may share
 * memory with its input or the residual, whose lives ended in the plan's eyes, which the
 * kernels check at run time. Returns false when memory ran out. */
static bool fuse_nodes(cpu_exe *exe) {
  if (!fuse_scales(exe))
    return false;
  for (uint32_t i = 0; i + 1 < exe->n_nodes; i++) {
    cpu_exe_node *c = &exe->nodes[i];
    if (c->deferred || c->absorbed_by >= 0 || *exe->api->node_domain(exe->g, c->node.index) ||
        c->node.n_out != 1 || c->out_idx[0] < 0)
      continue;
    bool conv = strcmp(c->node.op_type, "Conv") == 0 &&
                (c->node.n_in <= 3 || c->node.in_scale) && !c->node.residual &&
                cpu_conv_residual_ok(&c->node);
    bool matmul = !conv && strcmp(c->node.op_type, "MatMul") == 0 && c->node.n_in == 2 &&
                  cpu_matmul_bias_ok(&c->node);
    if (!conv && !matmul)
      continue;
    int32_t j = sole_reader(exe, c->out_idx[0], "Add");
    if (j != (int32_t)i + 1)
      continue;
    cpu_exe_node *a = &exe->nodes[j];
    if (a->node.n_in != 2)
      continue;
    uint32_t other = a->in_idx[0] == c->out_idx[0] ? 1 : 0;
    int32_t r = a->in_idx[other];
    const cpu_tensor *out = &c->out_static[0], *rt = &a->in_static[other];
    if (r < 0 || r == c->out_idx[0] || !same_f32_shape(&a->out_static[0], out))
      continue;
    if (conv ? !same_f32_shape(rt, out)
             : out->rank < 1 || !const_row_vector(rt, out->rank, out->dims[out->rank - 1]))
      continue;
    int32_t k = sole_reader(exe, a->out_idx[0], "Relu");
    if (k < 0 && matmul)
      k = sole_reader(exe, a->out_idx[0], "Gelu");
    cpu_fused_act act = k == j + 1 ? fusable_act(exe, k, matmul) : CPU_FUSED_NONE;
    cpu_exe_node *last = act != CPU_FUSED_NONE ? &exe->nodes[k] : a;
    uint32_t slot = conv ? 3 : 2; /* where the taken-in operand goes */
    if (!grow_inputs(c))
      return false;
    c->in_static[slot] = *rt;
    c->in_idx[slot] = r;
    c->out_static[0] = last->out_static[0];
    c->out_idx[0] = last->out_idx[0];
    c->node.residual = conv;
    c->node.col_bias = matmul;
    c->node.fused_act = act;
    c->deferred = true;
    a->absorbed_by = last->absorbed_by = (int32_t)i;
    last->run_fused = (int32_t)i;
  }
  return fuse_skip_norms(exe);
}

/* ---- Channel-blocked layout ---------------------------------------------------------- */

/* Whether a node of role r reads in[0] (and a residual in[3]) blocked when it runs blocked. */
static bool role_reads_blocked(cpu_nchwc_role r) {
  return r == CPU_NCHWC_BLOCKED || r == CPU_NCHWC_OPENS || r == CPU_NCHWC_OPENS_ALONE;
}

/* The operands of node en that its role lays out (cpu_nchwc_role): for BLOCKED (and OPENS)
 * and FREE those that share its output's layout, for SINK the one it may read blocked. */
static bool layout_slot(const cpu_exe_node *en, cpu_nchwc_role role, uint32_t k) {
  if (role_reads_blocked(role))
    return k == 0 || (k == 3 && en->node.residual);
  switch (role) {
  case CPU_NCHWC_SINK: return k == 0;
  case CPU_NCHWC_FREE: return !(en->in_static[k].is_const && en->in_static[k].count == 1);
  default: return false;
  }
}

/* Which values of the partition lie blocked (nchwc.h), from the roles the kernels give their
 * nodes (cpu_op.nchwc_role). A value may when it is a float32 [N, C, H, W] with C a multiple
 * of eight and more than one pixel, written by a node of the partition with a role and read
 * only by nodes that can read it blocked, and no partition output. Those conditions are
 * settled together, a value dropping back to NCHW wherever a node cannot take it, until
 * nothing changes: a stem always runs blocked; a BLOCKED Conv (or MaxPool) runs blocked when
 * its input (and residual) are, whatever its output; a FREE elementwise op passes the layout
 * through only when all its operands and its output have it; a SINK reads either. A stem or
 * Conv whose output stays NCHW (a reader cannot take it, or it leaves the partition) computes
 * blocked and converts (cpu_node.nchwc_out_plain). Chains start at stems, and at OPENS Convs
 * (most Convs with no residual) whose input lies NCHW but whose output stays blocked: they
 * convert their input first (cpu_node.nchwc_in_plain), as where a backbone's stage output also
 * feeds a detector's neck, which reads NCHW; an OPENS_ALONE Conv (Winograd) runs blocked from
 * and to NCHW even with no chain after it.
 * The nodes that run blocked are marked (cpu_node.nchwc), before any node is prepared, so
 * that their weights are packed once, for their kernels. Returns false when memory ran out
 * (msg says). */
static bool assign_layouts(cpu_exe *exe, cpu_isa isa, char *msg, size_t size) {
  const char *env = getenv("TESSERA_CPU_NCHWC");
  if (isa != CPU_ISA_AVX2_FMA || (env && strcmp(env, "0") == 0))
    return true;
  uint32_t nv = exe->n_values, nn = exe->n_nodes;
  int32_t *prod = malloc((nv + 1) * sizeof *prod);
  uint8_t *blk = calloc(nv + 1, 1);
  cpu_nchwc_role *role = calloc(nn + 1, sizeof *role);
  if (!prod || !blk || !role) {
    free(prod), free(blk), free(role);
    snprintf(msg, size, "out of memory laying out a CPU partition");
    return false;
  }
  for (uint32_t v = 0; v < nv; v++)
    prod[v] = -1;
  bool any = false;
  for (uint32_t i = 0; i < nn; i++) {
    cpu_exe_node *en = &exe->nodes[i];
    if (en->absorbed_by >= 0)
      continue;
    const cpu_node *n = &en->node;
    role[i] = en->op->nchwc_role ? en->op->nchwc_role(n, isa) : CPU_NCHWC_NONE;
    if (role[i] == CPU_NCHWC_NONE || n->n_out != 1 || en->out_idx[0] < 0)
      continue;
    prod[en->out_idx[0]] = (int32_t)i;
    any = any || role_reads_blocked(role[i]) || role[i] == CPU_NCHWC_STEM;
  }
  for (uint32_t v = 0; any && v < nv; v++) {
    if (prod[v] < 0 || role[prod[v]] == CPU_NCHWC_SINK)
      continue;
    const cpu_tensor *t = &exe->nodes[prod[v]].out_static[0];
    blk[v] = t->dtype == TSR_DTYPE_FLOAT32 && t->rank == 4 && t->dims[1] % CPU_NCHWC == 0 &&
             t->dims[2] * t->dims[3] > 1 && t->count > 0 && !value_leaves(exe, (int32_t)v);
  }
  for (bool changed = any; changed;) {
    changed = false;
    for (uint32_t i = 0; i < nn; i++) {
      const cpu_exe_node *en = &exe->nodes[i];
      if (en->absorbed_by >= 0)
        continue;
      cpu_nchwc_role r = role[i];
      /* Whether the node can run blocked with its operands as they stand: a Conv whose inputs
       * are blocked writes its output either way, an elementwise op needs both sides so. */
      bool ok = r == CPU_NCHWC_STEM || r == CPU_NCHWC_SINK;
      bool opens = r == CPU_NCHWC_OPENS || r == CPU_NCHWC_OPENS_ALONE;
      if (role_reads_blocked(r) || r == CPU_NCHWC_FREE) {
        ok = r != CPU_NCHWC_FREE || (en->out_idx[0] >= 0 && blk[en->out_idx[0]]);
        for (uint32_t k = 0; k < en->node.n_in && ok; k++)
          if (en->in_idx[k] >= 0 && layout_slot(en, r, k) && !(opens && k == 0))
            ok = blk[en->in_idx[k]];
      }
      for (uint32_t k = 0; k < en->node.n_in; k++) {
        int32_t v = en->in_idx[k];
        if (v >= 0 && blk[v] && !(ok && layout_slot(en, r, k))) {
          blk[v] = 0;
          changed = true;
        }
      }
      if (!ok && en->node.n_out >= 1 && en->out_idx[0] >= 0 && blk[en->out_idx[0]]) {
        blk[en->out_idx[0]] = 0;
        changed = true;
      }
    }
  }
  for (uint32_t i = 0; i < nn; i++) {
    cpu_exe_node *en = &exe->nodes[i];
    cpu_nchwc_role r = role[i];
    if (en->absorbed_by >= 0 || r == CPU_NCHWC_NONE || r == CPU_NCHWC_FREE)
      continue;
    int32_t v = r == CPU_NCHWC_STEM ? en->out_idx[0] : en->in_idx[0];
    if (v < 0)
      continue;
    bool out_blk = en->out_idx[0] >= 0 && blk[en->out_idx[0]];
    bool in_plain = r != CPU_NCHWC_STEM && !blk[v];
    /* From a plain input: an OPENS Conv where a chain follows, an OPENS_ALONE one always. */
    if (in_plain && !(r == CPU_NCHWC_OPENS && out_blk) && r != CPU_NCHWC_OPENS_ALONE)
      continue;
    /* A stem runs blocked whatever its output (its kernel and a conversion cost less than
     * the NCHW path's packing); so does a Conv at the end of a blocked chain. */
    en->node.nchwc = true;
    en->node.nchwc_in_plain = in_plain;
    en->node.nchwc_out_plain = r != CPU_NCHWC_SINK && !out_blk;
  }
  free(prod), free(blk), free(role);
  return true;
}

/* ---- Node notes ------------------------------------------------------------------------ */

/* Appends ", what" (or just what, first) to the note being built. */
static void note_add(char *buf, size_t size, const char *what) {
  size_t len = strlen(buf);
  if (*what && len + 1 < size)
    snprintf(buf + len, size - len, "%s%s", len ? ", " : "", what);
}

/* How node i runs, for node_note: the kernel its op names (cpu_op.note), the blocked layout,
 * and what it took in, from the graph passes ("tessera.activation") and from fuse_nodes; or,
 * for a node another took in, which. */
static void build_note(cpu_exe *exe, uint32_t i, cpu_isa isa) {
  cpu_exe_node *en = &exe->nodes[i];
  char *b = en->note, part[96];
  const size_t size = sizeof en->note;
  b[0] = '\0';
  if (en->absorbed_by >= 0) {
    int32_t by = en->absorbed_by;
    snprintf(b, size, "fused into '%s'",
             (uint32_t)by < exe->n_nodes ? exe->nodes[by].node.name : "?");
    return;
  }
  if (en->op->note) {
    part[0] = '\0';
    en->op->note(&en->node, en->state, isa, part, sizeof part);
    note_add(b, size, part);
  }
  if (en->node.nchwc)
    note_add(
        b, size,
        en->node.nchwc_in_plain
            ? (en->node.nchwc_out_plain ? "NCHW8c, reads and writes NCHW" : "NCHW8c, reads NCHW")
            : (en->node.nchwc_out_plain ? "NCHW8c, writes NCHW" : "NCHW8c"));
  if (en->node.in_scale)
    note_add(b, size, "+Mul (scale)");
  if (en->node.skip)
    note_add(b, size, "+Add (skip)");
  if (en->node.residual || en->node.col_bias)
    note_add(b, size, en->node.residual ? "+Add (residual)" : "+Add (bias)");
  /* The activations taken in: by core/passes.c ("tessera.activation") and by fuse_nodes. */
  cpu_act act;
  cpu_act_kind kinds[2] = {CPU_ACT_NONE, cpu_fused_act_kind(en->node.fused_act)};
  if (cpu_act_from_node(&en->node, &act, part, sizeof part) == TSR_PLUGIN_REASON_NONE)
    kinds[0] = act.kind;
  for (int k = 0; k < 2; k++)
    if (kinds[k] != CPU_ACT_NONE) {
      snprintf(part, sizeof part, "+%s", cpu_act_name(kinds[k]));
      note_add(b, size, part);
    }
}

static const char *cpu_node_note(void *state, void *executable, uint32_t node) {
  const cpu_exe *exe = executable;
  return exe && node < exe->n_nodes ? exe->nodes[node].note : NULL;
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
    uint32_t io = en->node.n_in > en->node.n_out ? en->node.n_in : en->node.n_out;
    if (io > exe->max_io) exe->max_io = io;
    en->run_fused = -1;
    en->absorbed_by = -1;
  }
  /* TESSERA_NO_PASSES turns this off with the graph passes, for comparing results. */
  const char *no_passes = getenv("TESSERA_NO_PASSES");
  if (!(no_passes && *no_passes && strcmp(no_passes, "0") != 0) && !fuse_nodes(exe)) goto oom;
  char lmsg[512] = "";
  if (!assign_layouts(exe, st->isa, lmsg, sizeof lmsg)) {
    set_error(st, err, "%s", lmsg);
    cpu_release(st, exe);
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  /* Weights are packed once the layout is known, for the kernel that will run (packing for
   * NCHW first and again for the blocked layout took ResNet-50's session creation from 190 to
   * 300 ms). */
  for (uint32_t i = 0; i < exe->n_nodes; i++) {
    cpu_exe_node *en = &exe->nodes[i];
    char msg[512] = "";
    if (en->op->prepare && en->op->prepare(&en->node, &en->state, msg, sizeof msg) != 0) {
      set_error(st, err, "node '%s' (%s): %s", en->node.name, en->node.op_type, msg);
      cpu_release(st, exe);
      return TSR_PLUGIN_ERROR_INVALID;
    }
  }
  for (uint32_t i = 0; i < exe->n_nodes; i++) {
    if (exe->nodes[i].node.n_in > exe->max_io) exe->max_io = exe->nodes[i].node.n_in;
    build_note(exe, i, st->isa);
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
  cpu_ctx ctx = {
      .pool = exe->pool, .isa = st->isa, .err = msg, .err_size = sizeof msg, .scratch = &exe->scratch};
  bool timed = options && options->struct_size >= sizeof(tsr_plugin_exec_options) &&
               options->node_time;
  tsr_plugin_result result = TSR_PLUGIN_OK;
  for (uint32_t s = 0; s < exe->n_nodes; s++) {
    /* A fused Conv runs at the place of the last node it took in (fuse_nodes); its time is
     * reported as its own, the nodes it took in as taking none. */
    const cpu_exe_node *at = &exe->nodes[s];
    if (at->deferred) continue;
    if (at->absorbed_by >= 0 && at->run_fused < 0) {
      if (timed) options->node_time(options->node_time_ctx, s, 0);
      continue;
    }
    uint32_t i = at->run_fused >= 0 ? (uint32_t)at->run_fused : s;
    cpu_exe_node *en = &exe->nodes[i];
    if (timed && i != s) options->node_time(options->node_time_ctx, s, 0);
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
    .node_note = cpu_node_note,
};

const tsr_plugin_table *tsr__cpu_plugin_query(uint32_t host_max_abi_version) {
  return host_max_abi_version >= 1 ? &cpu_table : NULL;
}
