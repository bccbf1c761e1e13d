/* Fake device plugins for the plugin-ABI tests (tests/test_plugin_abi.c), written against
 * plugin.h alone, as a vendor would. One source, built several times with a -D flag that
 * picks a variant:
 *
 *   FAKE_GOOD          a working plugin: one device of kind OTHER that runs Relu on float32,
 *                      with host-visible buffers (host_pointer) and device-to-device copy; it
 *                      answers ABI version 1, and its node_note slot (a version 2 member, which
 *                      a host must not call on a version 1 table) aborts
 *   FAKE_NEWER         built for a newer host: its table is larger than the current one, with
 *                      extra trailing members, it answers min(host, 3) as its ABI version, and
 *                      its node_note names each node ("fake kernel 0", ...)
 *   FAKE_QUERY_NULL    its query returns NULL (it cannot serve a v1 host)
 *   FAKE_INIT_FAILS    init() fails with a message
 *   FAKE_NO_EXECUTE    its table lacks a required slot (execute == NULL)
 *   FAKE_NO_QUERY      it does not export tsr_plugin_query
 *   FAKE_SMALL_TABLE   its struct_size is smaller than a v1 table
 *   FAKE_NO_OPTIONAL   host_pointer and copy are NULL, so the host must stage through
 *                      read/write; otherwise like FAKE_GOOD
 *   FAKE_TOO_NEW       answers an ABI version newer than the host asked for
 *
 * FAKE_NAME is the plugin's name (each variant has its own, so that several load together).
 *
 * Besides the query, the module exports fake_plugin_counters() so that the test can see what
 * the host called; a real plugin exports only tsr_plugin_query. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/plugin.h"

#ifndef FAKE_NAME
#define FAKE_NAME "fake"
#endif

/* What the host did, for the test to check (see fake_plugin_counters). */
typedef struct fake_counters {
  long inits, shutdowns;
  long allocs, frees, live_buffers;
  long writes, reads, host_pointers, copies;
  long compiles, releases, executes;
} fake_counters;

static struct {
  atomic_long inits, shutdowns, allocs, frees, live_buffers, writes, reads, host_pointers, copies,
      compiles, releases, executes;
} counters;

TSR_PLUGIN_EXPORT void fake_plugin_counters(fake_counters *out) {
  out->inits = atomic_load(&counters.inits);
  out->shutdowns = atomic_load(&counters.shutdowns);
  out->allocs = atomic_load(&counters.allocs);
  out->frees = atomic_load(&counters.frees);
  out->live_buffers = atomic_load(&counters.live_buffers);
  out->writes = atomic_load(&counters.writes);
  out->reads = atomic_load(&counters.reads);
  out->host_pointers = atomic_load(&counters.host_pointers);
  out->copies = atomic_load(&counters.copies);
  out->compiles = atomic_load(&counters.compiles);
  out->releases = atomic_load(&counters.releases);
  out->executes = atomic_load(&counters.executes);
}

typedef struct fake_state {
  const tsr_plugin_host *host;
  tsr_plugin_device_props props;
} fake_state;

/* A buffer: its size, then the bytes. The handle the host sees is the struct pointer, so the
 * host cannot confuse it with the memory itself (host_pointer returns the bytes). */
typedef struct fake_buffer {
  uint64_t size;
  unsigned char *bytes;
} fake_buffer;

/* One Relu of a compiled partition: local value indices and the element count. */
typedef struct fake_step {
  uint32_t in, out;
  uint64_t count;
  const float *const_in; /* non-NULL when the input is a constant */
} fake_step;

typedef struct fake_exe {
  uint32_t n_steps;
  fake_step *steps;
} fake_exe;

static void fail(const fake_state *st, tsr_plugin_error *err, const char *msg) {
  if (st && st->host && st->host->set_error)
    st->host->set_error(err, msg);
}

static tsr_plugin_result fake_init(const tsr_plugin_host *host, void **out_state,
                                   tsr_plugin_error *err) {
  *out_state = NULL;
  atomic_fetch_add(&counters.inits, 1);
#ifdef FAKE_INIT_FAILS
  host->set_error(err, "the fake accelerator is not plugged in");
  return TSR_PLUGIN_ERROR_DEVICE;
#else
  if (!host || host->struct_size < sizeof(tsr_plugin_host) || !host->graph) {
    if (host && host->set_error)
      host->set_error(err, "host table too small");
    return TSR_PLUGIN_ERROR_INVALID;
  }
  fake_state *st = calloc(1, sizeof *st);
  if (!st)
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  st->host = host;
  st->props.struct_size = sizeof st->props;
  st->props.kind = TSR_PLUGIN_DEVICE_OTHER;
#ifdef FAKE_NO_OPTIONAL
  st->props.flags = TSR_PLUGIN_DEVICE_SIMULATED;
#else
  st->props.flags = TSR_PLUGIN_DEVICE_SIMULATED | TSR_PLUGIN_DEVICE_HOST_VISIBLE;
#endif
  st->props.compute_units = 1;
  st->props.memory_bytes = 1u << 20;
  snprintf(st->props.name, sizeof st->props.name, "Fake accelerator (%s)", FAKE_NAME);
  snprintf(st->props.vendor, sizeof st->props.vendor, "Tessera tests");
  snprintf(st->props.driver, sizeof st->props.driver, "fake 1.0");
  snprintf(st->props.features, sizeof st->props.features, "relu-only");
  *out_state = st;
  return TSR_PLUGIN_OK;
#endif
}

static void fake_shutdown(void *state) {
  atomic_fetch_add(&counters.shutdowns, 1);
  free(state);
}

static uint32_t fake_device_count(void *state) { return 1; }

static tsr_plugin_result fake_device_props(void *state, uint32_t device,
                                           tsr_plugin_device_props *out) {
  if (device != 0)
    return TSR_PLUGIN_ERROR_INVALID;
  /* Copy no more than the host's struct holds; the host set struct_size. */
  const fake_state *st = state;
  uint32_t n =
      out->struct_size && out->struct_size < sizeof *out ? out->struct_size : (uint32_t)sizeof *out;
  memcpy(out, &st->props, n);
  out->struct_size = n;
  return TSR_PLUGIN_OK;
}

static tsr_plugin_result fake_supports(void *state, uint32_t device, const tsr_plugin_graph *g,
                                       uint32_t node, tsr_plugin_support *out) {
  const fake_state *st = state;
  const tsr_plugin_graph_api *api = st->host->graph;
  const char *op = api->node_op_type(g, node);
  const char *domain = api->node_domain(g, node);
  out->supported = 0;
  out->cost_us = -1.0;
  out->message[0] = '\0';
  if ((domain && *domain) || strcmp(op, "Relu") != 0) {
    out->reason = TSR_PLUGIN_REASON_OP;
    snprintf(out->message, sizeof out->message, "the fake device runs only Relu, not %s", op);
    return TSR_PLUGIN_OK;
  }
  if (api->node_input_count(g, node) != 1 || api->node_output_count(g, node) != 1 ||
      api->node_input(g, node, 0) < 0 || api->node_output(g, node, 0) < 0) {
    out->reason = TSR_PLUGIN_REASON_OTHER;
    snprintf(out->message, sizeof out->message, "Relu needs one input and one output");
    return TSR_PLUGIN_OK;
  }
  tsr_plugin_value in, o;
  api->value_info(g, (uint32_t)api->node_input(g, node, 0), &in);
  api->value_info(g, (uint32_t)api->node_output(g, node, 0), &o);
  if (in.dtype != TSR_DTYPE_FLOAT32 || o.dtype != TSR_DTYPE_FLOAT32) {
    out->reason = TSR_PLUGIN_REASON_DTYPE;
    snprintf(out->message, sizeof out->message, "the fake device runs float32 only (dtype %u)",
             in.dtype);
    return TSR_PLUGIN_OK;
  }
  out->supported = 1;
  out->reason = TSR_PLUGIN_REASON_NONE;
  out->cost_us = (double)in.byte_size / 4096.0;
  return TSR_PLUGIN_OK;
}

static tsr_plugin_result fake_alloc(void *state, uint32_t device, uint64_t size, void **out_buffer,
                                    tsr_plugin_error *err) {
  *out_buffer = NULL;
  fake_buffer *b = calloc(1, sizeof *b);
  if (b)
    b->bytes = calloc(1, size ? (size_t)size : 1);
  if (!b || !b->bytes) {
    free(b);
    fail(state, err, "fake device: out of memory");
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  b->size = size;
  *out_buffer = b;
  atomic_fetch_add(&counters.allocs, 1);
  atomic_fetch_add(&counters.live_buffers, 1);
  return TSR_PLUGIN_OK;
}

static void fake_free(void *state, uint32_t device, void *buffer) {
  fake_buffer *b = buffer;
  if (!b)
    return;
  free(b->bytes);
  free(b);
  atomic_fetch_add(&counters.frees, 1);
  atomic_fetch_sub(&counters.live_buffers, 1);
}

static bool in_range(const fake_buffer *b, uint64_t offset, uint64_t size) {
  return b && offset <= b->size && size <= b->size - offset;
}

static tsr_plugin_result fake_write(void *state, uint32_t device, void *buffer, uint64_t offset,
                                    const void *src, uint64_t size, tsr_plugin_error *err) {
  fake_buffer *b = buffer;
  atomic_fetch_add(&counters.writes, 1);
  if (!in_range(b, offset, size)) {
    fail(state, err, "fake device: write out of the buffer's range");
    return TSR_PLUGIN_ERROR_INVALID;
  }
  if (size)
    memcpy(b->bytes + offset, src, (size_t)size);
  return TSR_PLUGIN_OK;
}

static tsr_plugin_result fake_read(void *state, uint32_t device, const void *buffer,
                                   uint64_t offset, void *dst, uint64_t size,
                                   tsr_plugin_error *err) {
  const fake_buffer *b = buffer;
  atomic_fetch_add(&counters.reads, 1);
  if (!in_range(b, offset, size)) {
    fail(state, err, "fake device: read out of the buffer's range");
    return TSR_PLUGIN_ERROR_INVALID;
  }
  if (size)
    memcpy(dst, b->bytes + offset, (size_t)size);
  return TSR_PLUGIN_OK;
}

#ifndef FAKE_NO_OPTIONAL
static void *fake_host_pointer(void *state, uint32_t device, void *buffer) {
  atomic_fetch_add(&counters.host_pointers, 1);
  return buffer ? ((fake_buffer *)buffer)->bytes : NULL;
}

static tsr_plugin_result fake_copy(void *state, uint32_t src_device, const void *src,
                                   uint64_t src_offset, uint32_t dst_device, void *dst,
                                   uint64_t dst_offset, uint64_t size, tsr_plugin_error *err) {
  const fake_buffer *s = src;
  fake_buffer *d = dst;
  atomic_fetch_add(&counters.copies, 1);
  if (!in_range(s, src_offset, size) || !in_range(d, dst_offset, size)) {
    fail(state, err, "fake device: copy out of range");
    return TSR_PLUGIN_ERROR_INVALID;
  }
  if (size)
    memmove(d->bytes + dst_offset, s->bytes + src_offset, (size_t)size);
  return TSR_PLUGIN_OK;
}
#endif

static tsr_plugin_result fake_compile(void *state, uint32_t device, const tsr_plugin_graph *g,
                                      const tsr_plugin_compile_options *options,
                                      void **out_executable, tsr_plugin_error *err) {
  const fake_state *st = state;
  const tsr_plugin_graph_api *api = st->host->graph;
  *out_executable = NULL;
  uint32_t n = api->node_count(g);
  fake_exe *exe = calloc(1, sizeof *exe);
  if (exe)
    exe->steps = calloc(n ? n : 1, sizeof *exe->steps);
  if (!exe || !exe->steps) {
    if (exe)
      free(exe);
    fail(st, err, "fake device: out of memory compiling");
    return TSR_PLUGIN_ERROR_OUT_OF_MEMORY;
  }
  for (uint32_t i = 0; i < n; i++) {
    tsr_plugin_support sup = {sizeof sup};
    fake_supports(state, device, g, i, &sup);
    if (!sup.supported) {
      char msg[256];
      snprintf(msg, sizeof msg, "fake device: node '%s' was not accepted: %s", api->node_name(g, i),
               sup.message);
      fail(st, err, msg);
      free(exe->steps);
      free(exe);
      return TSR_PLUGIN_ERROR_UNSUPPORTED;
    }
    fake_step *s = &exe->steps[exe->n_steps++];
    s->in = (uint32_t)api->node_input(g, i, 0);
    s->out = (uint32_t)api->node_output(g, i, 0);
    tsr_plugin_value v;
    api->value_info(g, s->in, &v);
    s->count = v.byte_size / sizeof(float);
    s->const_in = v.const_data;
  }
  atomic_fetch_add(&counters.compiles, 1);
  *out_executable = exe;
  return TSR_PLUGIN_OK;
}

#ifndef FAKE_NO_EXECUTE
static float *bound(const tsr_plugin_binding *b, uint32_t count, uint32_t value,
                    uint64_t elements) {
  if (value >= count || !b[value].buffer)
    return NULL;
  fake_buffer *buf = b[value].buffer;
  if (!in_range(buf, b[value].offset, elements * sizeof(float)))
    return NULL;
  return (float *)(buf->bytes + b[value].offset);
}

static tsr_plugin_result fake_execute(void *state, void *executable,
                                      const tsr_plugin_binding *bindings, uint32_t binding_count,
                                      const tsr_plugin_exec_options *options,
                                      tsr_plugin_error *err) {
  const fake_exe *exe = executable;
  atomic_fetch_add(&counters.executes, 1);
  for (uint32_t i = 0; i < exe->n_steps; i++) {
    const fake_step *s = &exe->steps[i];
    const float *x = s->const_in ? s->const_in : bound(bindings, binding_count, s->in, s->count);
    float *y = bound(bindings, binding_count, s->out, s->count);
    if (!x || !y) {
      fail(state, err, "fake device: a binding is missing or too small");
      return TSR_PLUGIN_ERROR_INVALID;
    }
    for (uint64_t k = 0; k < s->count; k++)
      y[k] = x[k] > 0.0f ? x[k] : 0.0f;
    if (options && options->struct_size >= sizeof *options && options->node_time)
      options->node_time(options->node_time_ctx, i, 1000);
  }
  return TSR_PLUGIN_OK;
}
#endif

static void fake_release(void *state, void *executable) {
  fake_exe *exe = executable;
  if (!exe)
    return;
  atomic_fetch_add(&counters.releases, 1);
  free(exe->steps);
  free(exe);
}

#define FAKE_TABLE_MEMBERS                                                                         \
  .name = FAKE_NAME, .init = fake_init, .shutdown = fake_shutdown,                                 \
  .device_count = fake_device_count, .device_props = fake_device_props, .supports = fake_supports, \
  .alloc = fake_alloc, .free = fake_free, .write = fake_write, .read = fake_read,                  \
  .compile = fake_compile, .release_executable = fake_release

#if defined(FAKE_NO_OPTIONAL)
#define FAKE_OPTIONAL .host_pointer = NULL, .copy = NULL
#else
#define FAKE_OPTIONAL .host_pointer = fake_host_pointer, .copy = fake_copy
#endif

#if defined(FAKE_NO_EXECUTE)
#define FAKE_EXECUTE .execute = NULL
#else
#define FAKE_EXECUTE .execute = fake_execute
#endif

#if defined(FAKE_NEWER)
/* What a plugin compiled against a future plugin.h (version 3) looks like to this host: the
 * current table followed by members the host does not know. */
typedef struct fake_table_v3 {
  tsr_plugin_table v2;
  tsr_plugin_result (*future_fence)(void *state, uint32_t device);
  uint64_t future_flags;
  char future_padding[64];
} fake_table_v3;

static tsr_plugin_result fake_future_fence(void *state, uint32_t device) { return TSR_PLUGIN_OK; }

static const char *fake_node_note(void *state, void *executable, uint32_t node) {
  static const char *const notes[] = {"fake kernel 0", "fake kernel 1", "fake kernel 2"};
  return node < 3 ? notes[node] : NULL;
}

#define FAKE_TABLE_V3(version)                                                                     \
  {                                                                                                \
    .v2 = {.struct_size = sizeof(fake_table_v3),                                                   \
           .abi_version = (version),                                                               \
           FAKE_TABLE_MEMBERS,                                                                     \
           FAKE_OPTIONAL,                                                                          \
           FAKE_EXECUTE,                                                                           \
           .node_note = fake_node_note},                                                           \
    .future_fence = fake_future_fence, .future_flags = 0xffffffffffffffffull                       \
  }
static const fake_table_v3 table_v3 = FAKE_TABLE_V3(3);
/* The same members answered to an older host: abi_version says the host's, the size stays
 * larger. */
static const fake_table_v3 table_v3_as_v2 = FAKE_TABLE_V3(2);
static const fake_table_v3 table_v3_as_v1 = FAKE_TABLE_V3(1);
#else
#if !defined(FAKE_SMALL_TABLE)
/* A version 1 table answers no node_note; a host that called it anyway would end here. */
static const char *fake_node_note_v1(void *state, void *executable, uint32_t node) { abort(); }
#endif
static const tsr_plugin_table table = {
#if defined(FAKE_SMALL_TABLE)
    /* A table cut short before compile, as an old or broken plugin might ship it. */
    .struct_size = (uint32_t)offsetof(tsr_plugin_table, compile),
#else
    .struct_size = sizeof(tsr_plugin_table),
#endif
#if defined(FAKE_TOO_NEW)
    .abi_version = TSR_PLUGIN_ABI_VERSION + 1,
#else
    .abi_version = 1,
#endif
    FAKE_TABLE_MEMBERS,
    FAKE_OPTIONAL,
    FAKE_EXECUTE,
#if !defined(FAKE_SMALL_TABLE)
    .node_note = fake_node_note_v1,
#endif
};
#endif

#if defined(FAKE_NO_QUERY)
/* A misspelt entry point: the host must not find it. */
TSR_PLUGIN_EXPORT const tsr_plugin_table *tsr_plugin_query_v1(uint32_t host_max_abi_version) {
  return host_max_abi_version >= 1 ? &table : NULL;
}
#else
TSR_PLUGIN_EXPORT const tsr_plugin_table *tsr_plugin_query(uint32_t host_max_abi_version) {
#if defined(FAKE_QUERY_NULL)
  (void)table;
  return NULL;
#elif defined(FAKE_NEWER)
  /* Negotiation by min/max: the highest version both sides know. */
  if (host_max_abi_version >= 3)
    return &table_v3.v2;
  if (host_max_abi_version >= 2)
    return &table_v3_as_v2.v2;
  if (host_max_abi_version >= 1)
    return &table_v3_as_v1.v2;
  return NULL;
#else
  return host_max_abi_version >= 1 ? &table : NULL;
#endif
}
#endif
