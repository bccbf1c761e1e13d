/* Tessera device-plugin ABI. This header stands alone: a plugin includes it and nothing else
 * from Tessera. The contract is written out as numbered requirements in docs/PLUGINS.md.
 *
 * ABI changelog (versions are negotiated by min/max, never compared for equality):
 *   1  First version: device properties, per-node capability with reasons, buffers, compile a
 *      partition once and execute it many times, errors through the host.
 *   2  node_note: an executable says how it runs each node (its kernel, layout, what it fused).
 *
 * Evolution rules: every table starts with struct_size and abi_version; members are only ever
 * appended; a reader checks struct_size >= offsetof(member) + sizeof(member) and that a function
 * pointer is non-NULL before it calls anything added after version 1.
 *
 * Entry point: a plugin exports exactly one symbol,
 *     const tsr_plugin_table *tsr_plugin_query(uint32_t host_max_abi_version);
 * It returns a table whose abi_version is <= host_max_abi_version, or NULL when it cannot serve
 * a host that old. The table is static and lives as long as the library is loaded.
 */
#ifndef TESSERA_PLUGIN_H
#define TESSERA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TSR_PLUGIN_ABI_VERSION 2u
#define TSR_PLUGIN_QUERY_SYMBOL "tsr_plugin_query"

#if defined(_WIN32)
#define TSR_PLUGIN_EXPORT __declspec(dllexport)
#else
#define TSR_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* Same values and guard as in tessera.h. */
#ifndef TSR_DTYPE_ENUM_DEFINED
#define TSR_DTYPE_ENUM_DEFINED
typedef enum tsr_dtype {
  TSR_DTYPE_UNDEFINED = 0,
  TSR_DTYPE_FLOAT32 = 1,
  TSR_DTYPE_UINT8 = 2,
  TSR_DTYPE_INT8 = 3,
  TSR_DTYPE_UINT16 = 4,
  TSR_DTYPE_INT16 = 5,
  TSR_DTYPE_INT32 = 6,
  TSR_DTYPE_INT64 = 7,
  TSR_DTYPE_STRING = 8,
  TSR_DTYPE_BOOL = 9,
  TSR_DTYPE_FLOAT16 = 10,
  TSR_DTYPE_FLOAT64 = 11,
  TSR_DTYPE_UINT32 = 12,
  TSR_DTYPE_UINT64 = 13,
  TSR_DTYPE_BFLOAT16 = 16
} tsr_dtype;
#endif

/* Results of plugin calls. Expected outcomes are codes; details go through host->set_error. */
typedef enum tsr_plugin_result {
  TSR_PLUGIN_OK = 0,
  TSR_PLUGIN_ERROR_INVALID = 1,     /* bad arguments or a malformed node */
  TSR_PLUGIN_ERROR_UNSUPPORTED = 2,
  TSR_PLUGIN_ERROR_OUT_OF_MEMORY = 3,
  TSR_PLUGIN_ERROR_DEVICE = 4,      /* the driver or hardware failed */
  TSR_PLUGIN_ERROR_INTERNAL = 5
} tsr_plugin_result;

/* Why a device refuses a node; the same numbers as tsr_reason in tessera.h. */
typedef enum tsr_plugin_reason {
  TSR_PLUGIN_REASON_NONE = 0,
  TSR_PLUGIN_REASON_OP = 1,
  TSR_PLUGIN_REASON_DTYPE = 2,
  TSR_PLUGIN_REASON_SHAPE = 3,
  TSR_PLUGIN_REASON_QUANTIZATION = 4,
  TSR_PLUGIN_REASON_TOO_SMALL = 5,
  TSR_PLUGIN_REASON_ATTRIBUTE = 6,
  TSR_PLUGIN_REASON_PRECISION = 7,
  TSR_PLUGIN_REASON_OTHER = 9
} tsr_plugin_reason;

typedef enum tsr_plugin_device_kind {
  TSR_PLUGIN_DEVICE_CPU = 1,
  TSR_PLUGIN_DEVICE_GPU = 2,
  TSR_PLUGIN_DEVICE_NPU = 3,
  TSR_PLUGIN_DEVICE_OTHER = 4
} tsr_plugin_device_kind;

enum {
  TSR_PLUGIN_DEVICE_FP16 = 1u << 0,
  TSR_PLUGIN_DEVICE_INT8 = 1u << 1,
  TSR_PLUGIN_DEVICE_ASYNC = 1u << 2,
  TSR_PLUGIN_DEVICE_HOST_VISIBLE = 1u << 3, /* host_pointer() works on its buffers */
  TSR_PLUGIN_DEVICE_SIMULATED = 1u << 4     /* not real hardware; say so to users */
};

typedef struct tsr_plugin_device_props {
  uint32_t struct_size;
  uint32_t kind;          /* tsr_plugin_device_kind */
  uint32_t flags;         /* TSR_PLUGIN_DEVICE_* */
  uint32_t compute_units;
  uint64_t memory_bytes;
  char name[128];
  char vendor[64];
  char driver[64];
  char features[128];     /* space-separated */
} tsr_plugin_device_props;

/* ---- The graph a plugin sees ------------------------------------------------------------
 * The host shows a partition (or, for capability queries, the whole graph) through accessor
 * functions on an opaque handle. Node and value indices are local to that graph. All shapes are
 * concrete when a plugin sees them. Strings and arrays stay valid as long as the graph does:
 * for an executable, until release_executable(). */

typedef struct tsr_plugin_graph tsr_plugin_graph;

/* Attribute types; the numbers match ONNX AttributeProto.AttributeType. */
typedef enum tsr_plugin_attr_type {
  TSR_PLUGIN_ATTR_UNDEFINED = 0,
  TSR_PLUGIN_ATTR_FLOAT = 1,
  TSR_PLUGIN_ATTR_INT = 2,
  TSR_PLUGIN_ATTR_STRING = 3,
  TSR_PLUGIN_ATTR_TENSOR = 4,
  TSR_PLUGIN_ATTR_GRAPH = 5,
  TSR_PLUGIN_ATTR_FLOATS = 6,
  TSR_PLUGIN_ATTR_INTS = 7,
  TSR_PLUGIN_ATTR_STRINGS = 8
} tsr_plugin_attr_type;

typedef struct tsr_plugin_attr {
  uint32_t type;                 /* tsr_plugin_attr_type */
  float f;
  int64_t i;
  const char *s;                 /* STRING: bytes, s_len long, also NUL-terminated */
  size_t s_len;
  const float *floats;           /* FLOATS */
  const int64_t *ints;           /* INTS */
  const char *const *strings;    /* STRINGS */
  size_t count;                  /* element count of FLOATS, INTS, STRINGS */
  /* TENSOR: */
  uint32_t t_dtype;
  uint32_t t_rank;
  const int64_t *t_dims;
  const void *t_data;            /* dense little-endian row-major */
  /* GRAPH: a subgraph; plugins in ABI v1 may refuse nodes that carry one */
  const tsr_plugin_graph *graph;
} tsr_plugin_attr;

typedef struct tsr_plugin_value {
  const char *name;
  uint32_t dtype;                /* tsr_dtype */
  uint32_t rank;
  const int64_t *dims;           /* rank entries, all >= 0 */
  uint64_t byte_size;
  const void *const_data;        /* non-NULL for weights and constants: host memory the plugin
                                    may read (or upload) at compile time and keep pointing at
                                    until the executable is released */
} tsr_plugin_value;

typedef struct tsr_plugin_graph_api {
  uint32_t struct_size;
  uint32_t abi_version;
  uint32_t (*node_count)(const tsr_plugin_graph *g);
  const char *(*node_op_type)(const tsr_plugin_graph *g, uint32_t node);
  const char *(*node_domain)(const tsr_plugin_graph *g, uint32_t node); /* "" for ai.onnx */
  const char *(*node_name)(const tsr_plugin_graph *g, uint32_t node);
  int64_t (*node_opset)(const tsr_plugin_graph *g, uint32_t node); /* of the node's domain */
  uint32_t (*node_input_count)(const tsr_plugin_graph *g, uint32_t node);
  int32_t (*node_input)(const tsr_plugin_graph *g, uint32_t node, uint32_t k); /* -1: absent */
  uint32_t (*node_output_count)(const tsr_plugin_graph *g, uint32_t node);
  int32_t (*node_output)(const tsr_plugin_graph *g, uint32_t node, uint32_t k); /* -1: absent */
  /* Fills *out and returns 1 when the node has the attribute, else returns 0. */
  int (*node_attr)(const tsr_plugin_graph *g, uint32_t node, const char *name,
                   tsr_plugin_attr *out);
  uint32_t (*value_count)(const tsr_plugin_graph *g);
  void (*value_info)(const tsr_plugin_graph *g, uint32_t value, tsr_plugin_value *out);
  /* The values a partition reads from outside (not constants) and those it hands on. */
  uint32_t (*input_count)(const tsr_plugin_graph *g);
  uint32_t (*input)(const tsr_plugin_graph *g, uint32_t k);
  uint32_t (*output_count)(const tsr_plugin_graph *g);
  uint32_t (*output)(const tsr_plugin_graph *g, uint32_t k);
} tsr_plugin_graph_api;

/* ---- What the host gives a plugin -------------------------------------------------------- */

typedef struct tsr_plugin_error tsr_plugin_error; /* opaque, owned by the host */

enum { TSR_PLUGIN_LOG_ERROR = 1, TSR_PLUGIN_LOG_WARNING = 2, TSR_PLUGIN_LOG_INFO = 3 };

typedef struct tsr_plugin_host {
  uint32_t struct_size;
  uint32_t abi_version;
  const tsr_plugin_graph_api *graph;
  /* Records the message of a failing call; err may be NULL (then it is dropped). The plugin
   * returns its error code as well. Safe from any thread. */
  void (*set_error)(tsr_plugin_error *err, const char *message);
  void (*log)(int level, const char *message);
  /* Host memory for the plugin's own bookkeeping; thread-safe. */
  void *(*alloc)(size_t size);
  void (*free)(void *ptr);
} tsr_plugin_host;

/* What a plugin answers for one node. */
typedef struct tsr_plugin_support {
  uint32_t struct_size;
  uint32_t supported;        /* 1 yes, 0 no */
  uint32_t reason;           /* tsr_plugin_reason when not supported */
  double cost_us;            /* estimated time, or < 0 when unknown */
  char message[160];         /* short reason for people, e.g. "dtype int16 not supported" */
} tsr_plugin_support;

typedef struct tsr_plugin_compile_options {
  uint32_t struct_size;
  uint32_t threads;          /* worker threads the session allows (CPU-like devices) */
  uint32_t precisions;       /* TSR_PRECISION_* bits from tessera.h: 1 fp32, 2 fp16, 4 int8 */
} tsr_plugin_compile_options;

/* Where one value of the partition lives at execute time: a buffer from alloc() and a byte
 * offset into it. Constants have buffer == NULL. */
typedef struct tsr_plugin_binding {
  void *buffer;
  uint64_t offset;
} tsr_plugin_binding;

typedef struct tsr_plugin_exec_options {
  uint32_t struct_size;
  /* When non-NULL, the plugin reports each node's time after it finishes. */
  void (*node_time)(void *ctx, uint32_t node, uint64_t ns);
  void *node_time_ctx;
} tsr_plugin_exec_options;

/* ---- The table a plugin returns ---------------------------------------------------------- */

typedef struct tsr_plugin_table {
  uint32_t struct_size;
  uint32_t abi_version;
  const char *name;          /* short lower-case name: "cpu", "opencl" */

  /* Initialises the plugin; *out_state is passed to every later call. A failure here skips
   * the plugin; the host records the message. */
  tsr_plugin_result (*init)(const tsr_plugin_host *host, void **out_state,
                            tsr_plugin_error *err);
  void (*shutdown)(void *state);

  uint32_t (*device_count)(void *state);
  tsr_plugin_result (*device_props)(void *state, uint32_t device, tsr_plugin_device_props *out);

  /* Says whether the device can run node `node` of `g` as given (dtypes and shapes included). */
  tsr_plugin_result (*supports)(void *state, uint32_t device, const tsr_plugin_graph *g,
                                uint32_t node, tsr_plugin_support *out);

  /* Device memory. A size of 0 must succeed (with any non-NULL handle). */
  tsr_plugin_result (*alloc)(void *state, uint32_t device, uint64_t size, void **out_buffer,
                             tsr_plugin_error *err);
  void (*free)(void *state, uint32_t device, void *buffer);
  tsr_plugin_result (*write)(void *state, uint32_t device, void *buffer, uint64_t offset,
                             const void *src, uint64_t size, tsr_plugin_error *err);
  tsr_plugin_result (*read)(void *state, uint32_t device, const void *buffer, uint64_t offset,
                            void *dst, uint64_t size, tsr_plugin_error *err);
  /* Optional (may be NULL, or return NULL): a host pointer to the buffer's memory, for devices
   * flagged HOST_VISIBLE; lets the host skip staging copies. */
  void *(*host_pointer)(void *state, uint32_t device, void *buffer);

  /* Compiles a partition for a device once; executes it many times. execute() may be called
   * from several threads at once on one executable, each with its own bindings. */
  tsr_plugin_result (*compile)(void *state, uint32_t device, const tsr_plugin_graph *g,
                               const tsr_plugin_compile_options *options, void **out_executable,
                               tsr_plugin_error *err);
  tsr_plugin_result (*execute)(void *state, void *executable, const tsr_plugin_binding *bindings,
                               uint32_t binding_count, const tsr_plugin_exec_options *options,
                               tsr_plugin_error *err);
  void (*release_executable)(void *state, void *executable);

  /* Optional (may be NULL): copy between two buffers of this plugin's devices. */
  tsr_plugin_result (*copy)(void *state, uint32_t src_device, const void *src, uint64_t src_offset,
                            uint32_t dst_device, void *dst, uint64_t dst_offset, uint64_t size,
                            tsr_plugin_error *err);

  /* ---- ABI version 2 ---- */

  /* Optional (may be NULL, or return NULL or ""): a short note, for people, on how `executable`
   * runs node `node` of its partition: the kernel it chose, the data layout, what it took in
   * from neighbouring nodes ("winograd F(2x2,3x3), NCHW8c, +Relu"), or, for a node that another
   * absorbed, which. The string lives as long as the executable. The host shows it in plans
   * and profiles; it never parses it. */
  const char *(*node_note)(void *state, void *executable, uint32_t node);
} tsr_plugin_table;

typedef const tsr_plugin_table *(*tsr_plugin_query_fn)(uint32_t host_max_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_PLUGIN_H */
