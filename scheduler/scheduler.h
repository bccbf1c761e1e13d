/* The runtime's internals: loaded plugins and their devices, the graph views plugins see,
 * plans (placement, partitions, memory) and their execution. */
#ifndef TSR_SCHEDULER_SCHEDULER_H
#define TSR_SCHEDULER_SCHEDULER_H

#include <pthread.h>

#include "core/graph.h"
#include "core/shape_infer.h"
#include "tessera/plugin.h"

/* ---- Runtime, plugins, devices ------------------------------------------------------- */

typedef struct tsr__plugin {
  const tsr_plugin_table *table;
  void *state;
  void *dl_handle;        /* NULL for the built-in CPU plugin */
  char *path;
} tsr__plugin;

typedef struct tsr__device {
  tsr__plugin *plugin;
  uint32_t local_index;   /* the plugin's own device number */
  tsr_plugin_device_props props;
  char id[64];            /* "cpu", "opencl:0" */
  char plugin_name[32];
} tsr__device;

typedef struct tsr__plugin_failure {
  char *path;
  char *reason;
} tsr__plugin_failure;

struct tsr_runtime {
  tsr_allocator alloc;
  int log_level;
  tsr__plugin **plugins;
  size_t n_plugins;
  tsr__device *devices;
  size_t n_devices;
  tsr__plugin_failure *failures;
  size_t n_failures;
};

/* Host services handed to every plugin. */
extern const tsr_plugin_host tsr__plugin_host;
/* The built-in CPU plugin's query function (devices/cpu/plugin.c). */
const tsr_plugin_table *tsr__cpu_plugin_query(uint32_t host_max_abi_version);

/* A host-side error slot a plugin writes through tsr__plugin_host.set_error. */
struct tsr_plugin_error {
  char message[1024];
};
/* Turns a plugin result and its error slot into a status ("<what>: <message>"). */
tsr_status tsr__plugin_status(tsr_plugin_result r, const tsr_plugin_error *err, const char *fmt,
                              ...) __attribute__((format(printf, 3, 4)));

/* The plugin's note on how `executable` runs node `node` of its partition (node_note, ABI
 * version 2), or "" when the plugin is older, gives none, or there is no executable. */
const char *tsr__plugin_node_note(const tsr__plugin *p, void *executable, uint32_t node);

/* Registers a plugin from its table (used for the built-in CPU and for loaded libraries).
 * A table that fails negotiation or init is recorded as a failure, not returned as an error;
 * only running out of memory is an error. */
tsr_status tsr__runtime_add_plugin(tsr_runtime *rt, const tsr_plugin_table *table,
                                   void *dl_handle, const char *path);

/* ---- Models and tensors ------------------------------------------------------------- */

struct tsr_model {
  tsr_runtime *runtime;
  tsr__graph *graph;
  /* Public views of the graph inputs and outputs. */
  tsr_value_info *input_info, *output_info;
};

struct tsr_tensor {
  const tsr_allocator *alloc;
  tsr_dtype dtype;
  size_t rank;
  int64_t *dims;
  size_t count;
  size_t nbytes;
  void *data;
};

tsr_status tsr__tensor_new(const tsr_allocator *alloc, tsr_dtype dtype, size_t rank,
                           const int64_t *dims, tsr_tensor **out);

/* ---- Graph views ---------------------------------------------------------------------- */

/* A view of some nodes of a graph with concrete shapes, as plugins see it. */
struct tsr_plugin_graph {
  const tsr__graph *g;
  const tsr__vshape *vals;     /* per graph value */
  uint32_t n_nodes;
  uint32_t *nodes;             /* graph node indices, in execution order */
  uint32_t n_values;
  uint32_t *values;            /* local value index -> graph value index */
  int32_t *local_of;           /* graph value index -> local index, or -1 */
  uint32_t n_inputs, n_outputs;
  uint32_t *inputs, *outputs;  /* local value indices */
};

extern const tsr_plugin_graph_api tsr__graph_api;

/* Builds a view over `nodes` (graph node indices). Inputs are the non-constant values read
 * but not produced inside; outputs are the values produced inside that are read outside or
 * are graph outputs (`used_outside[v]` non-zero; NULL means every produced value). */
tsr_status tsr__view_create(const tsr__graph *g, const tsr__vshape *vals, const uint32_t *nodes,
                            uint32_t n_nodes, const uint8_t *used_outside,
                            tsr_plugin_graph **out);
void tsr__view_destroy(const tsr__graph *g, tsr_plugin_graph *view);

/* ---- Plans ---------------------------------------------------------------------------- */

/* Where one value lives on one device while a plan runs. */
typedef struct tsr__instance {
  uint32_t value;      /* graph value index */
  uint32_t device;     /* index into the plan's devices */
  uint64_t offset, size;
  uint32_t first, last; /* lifetime in execution steps */
} tsr__instance;

typedef struct tsr__copy {
  uint32_t value;
  uint32_t from_instance, to_instance;
} tsr__copy;

typedef struct tsr__partition {
  uint32_t device;           /* index into the plan's devices */
  uint32_t *nodes;           /* graph node indices */
  uint32_t n_nodes;
  tsr_plugin_graph *view;
  void *executable;
  int32_t *binding_instance; /* per local value: instance index, or -1 for constants */
  tsr__copy *copies_in;      /* done before the partition runs */
  uint32_t n_copies_in;
  uint64_t bytes_in, bytes_out;
  /* A control-flow node (If, Loop, Scan) that the host runs between partitions, or -1. Such a
   * partition has no view or executable: `reads` lists the values the node and its subgraphs
   * read (inputs, then values of this graph read by name), binding_instance is per read, and
   * `cf` holds its subgraph sessions (scheduler/control_flow.c). */
  int32_t host_node;
  int32_t *reads;
  uint32_t n_reads;
  int32_t *out_instance;     /* host partitions: per node output, instance index or -1 */
  struct tsr__cf_state *cf;
} tsr__partition;

typedef struct tsr__node_place {
  int32_t device;            /* index into the plan's devices; -1 when folded */
  int32_t partition;
  uint32_t local;            /* its position in the partition's nodes */
  tsr_reason reason;         /* why the first device in order refused it */
  char reason_text[160];
  int32_t refused_by;        /* plan device index, or -1 */
  double cost_us;
} tsr__node_place;

/* The memory one run needs: an arena per plan device. Runs in flight each hold their own;
 * idle ones wait on the plan's free list. */
typedef struct tsr__run_ctx tsr__run_ctx;
struct tsr__run_ctx {
  tsr__run_ctx *next;
  void **arenas;             /* per plan device; NULL when its arena size is 0 */
};

typedef struct tsr__plan {
  struct tsr_session *session;
  int64_t *key;              /* concatenated input dims the plan was made for */
  size_t key_len;
  tsr__vshape *vals;
  tsr__node_place *place;    /* per graph node */
  tsr__partition *parts;
  uint32_t n_parts;
  tsr__instance *instances;
  uint32_t n_instances;
  int32_t *input_instance_first; /* per bound value and device: instance index, or -1 */
  uint64_t *arena_size;      /* per plan device */
  /* Graph outputs: where to read each one from. */
  int32_t *output_instance;  /* per graph output: instance index, or -1 when constant data */
  /* Run contexts (arenas) free for reuse, guarded by the session's mutex. */
  tsr__run_ctx *free_ctx;
} tsr__plan;

struct tsr_session {
  tsr_runtime *runtime;
  const tsr_model *model;
  const tsr_allocator *alloc;
  uint32_t *devices;         /* runtime device indices in preference order */
  uint32_t n_devices;
  uint64_t *budgets;         /* per session device; 0 = none */
  int strict;
  uint32_t threads;
  uint32_t precisions;
  pthread_mutex_t mu;
  tsr__plan **plans;         /* cached per input shape */
  size_t n_plans;
  bool keys_values;          /* shapes depend on input values: small inputs join plan keys */
  /* The graph the session runs: the model's, or for the session of a control-flow node's
   * subgraph (made by its enclosing plan) that subgraph. A run binds `bound` values: the
   * graph inputs, then for a subgraph the values it reads from enclosing graphs (outer values,
   * in value order); those whose data is fixed for the session's life (constants of the
   * enclosing plan) have it in bound_const. */
  const tsr__graph *graph;
  uint32_t n_bound;
  int32_t *bound;
  const void **bound_const;  /* per bound value, or NULL; only subgraph sessions have it */
  bool owns_bound;
};

/* ---- Control flow (scheduler/control_flow.c) ------------------------------------------ */

/* True for the nodes the host runs itself: If, Loop and Scan of the ONNX domain. */
bool tsr__cf_is_control(const tsr__node *n);
/* The values node `node` of g reads, deduplicated: its present inputs, then the values of g
 * that its subgraphs (at any depth) read by name. *out is allocated with g->alloc. */
tsr_status tsr__cf_node_reads(const tsr__graph *g, uint32_t node, int32_t **out, uint32_t *n);
/* Makes the subgraph sessions of a host partition; tsr__cf_release frees them. */
tsr_status tsr__cf_prepare(tsr__plan *p, tsr__partition *pt);
void tsr__cf_release(tsr__plan *p, tsr__partition *pt);
/* Runs a host partition's node: reads its values from c's arenas, writes its outputs there. */
tsr_status tsr__cf_execute(tsr__plan *p, tsr__run_ctx *c, const tsr__partition *pt);
/* Runs a control-flow node at plan time (all it reads is known): the eval of shape inference
 * for If, Loop and Scan (see the NOTE in core/shape_infer.h). */
tsr_status tsr__cf_fold(tsr_session *s, const tsr__graph *g, uint32_t node, tsr__vshape *vals);

/* A session for subgraph `sub` of a node of parent's graph, sharing parent's runtime, devices
 * and options. outer_const[j] (may be NULL) is the fixed data of sub's j-th outer value, or
 * NULL. Destroy with tsr_session_destroy. */
tsr_status tsr__session_create_sub(const tsr_session *parent, const tsr__graph *sub,
                                   const void *const *outer_const, tsr_session **out);
/* One run over bound values (ordered as s->bound; NULL for those in bound_const), producing
 * every graph output as a new tensor in outputs[0 .. g->n_outputs). */
tsr_status tsr__session_run_bound(tsr_session *s, const tsr_tensor *const *bound,
                                  tsr_tensor **outputs);
/* Moves one instance's bytes between host memory and its device arena. */
tsr_status tsr__plan_write_instance(const tsr__plan *p, tsr__run_ctx *c, const tsr__instance *in,
                                    const void *src);
tsr_status tsr__plan_read_instance(const tsr__plan *p, tsr__run_ctx *c, const tsr__instance *in,
                                   void *dst);
/* The host address of an instance when its device's memory is host-visible, else NULL. */
void *tsr__plan_host_address(const tsr__plan *p, tsr__run_ctx *c, const tsr__instance *in);

/* Builds (or finds in the cache) the plan for these input shapes; *out stays owned by the
 * session. Takes the session mutex. */
/* `data` (may be NULL) holds the caller's input tensors: when the model's shapes depend on the
 * values of small inputs (a Reshape whose shape is a graph input), plans are keyed by those
 * values too and the values become constants of the plan. */
tsr_status tsr__session_get_plan(tsr_session *s, const int32_t *dtypes, const size_t *ranks,
                                 const int64_t *const *dims, const tsr_tensor *const *data,
                                 tsr__plan **out);
/* input_data[i] non-NULL makes graph input i a constant of the plan (copied). */
tsr_status tsr__plan_build(tsr_session *s, const int32_t *dtypes, const size_t *ranks,
                           const int64_t *const *dims, const tsr_tensor *const *input_data,
                           tsr__plan **out);
void tsr__plan_destroy(tsr__plan *p);
void tsr__run_ctx_destroy(tsr__plan *p, tsr__run_ctx *c);

/* Constant folding through the built-in CPU plugin: evaluates one node at plan time. */
tsr_status tsr__fold_eval(void *ctx, const tsr__graph *g, uint32_t node, tsr__vshape *vals);

#endif
