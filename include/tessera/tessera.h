/* Tessera host API: the stable C ABI that applications embed.
 *
 * Conventions (see docs/API.md for the long form):
 * - Every fallible call returns a tsr_status. NULL means success; any other value is an error
 *   object the caller owns and must release with tsr_status_free().
 * - out_ parameters are cleared on entry, so they are NULL/0 when a call fails.
 * - Options and info structs start with `struct_size`; set it to sizeof(the struct) you compiled
 *   against. The library reads only the members that fit in that size, so structs grow at the end.
 * - Enum values are explicit and only ever appended; a retired number is never reused.
 * - Threading: runtimes, models and sessions may be used from several threads at once where a
 *   function says so; tensors are not synchronised.
 */
#ifndef TESSERA_TESSERA_H
#define TESSERA_TESSERA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TSR_API __declspec(dllimport)
#elif defined(TSR_BUILDING_LIBRARY)
#define TSR_API __attribute__((visibility("default")))
#else
#define TSR_API
#endif

#define TSR_VERSION_MAJOR 0
#define TSR_VERSION_MINOR 1
#define TSR_VERSION_PATCH 0

/* ---- Status ---------------------------------------------------------------------------- */

typedef enum tsr_status_code {
  TSR_STATUS_OK = 0,
  TSR_STATUS_INVALID_ARGUMENT = 1, /* the caller passed something wrong (name, shape, dtype) */
  TSR_STATUS_INVALID_MODEL = 2,    /* the model file is malformed or inconsistent */
  TSR_STATUS_UNSUPPORTED = 3,      /* valid, but no device can do it */
  TSR_STATUS_OUT_OF_MEMORY = 4,    /* an allocation failed or a budget was exceeded */
  TSR_STATUS_IO = 5,               /* a file could not be read or written */
  TSR_STATUS_DEVICE = 6,           /* a device or plugin reported a failure */
  TSR_STATUS_NOT_FOUND = 7,        /* a named thing (input, plugin, file) does not exist */
  TSR_STATUS_INTERNAL = 8          /* a bug in Tessera; please report it */
} tsr_status_code;

typedef struct tsr_status_s *tsr_status;

/* The code of a status; TSR_STATUS_OK for NULL. */
TSR_API tsr_status_code tsr_status_code_of(tsr_status status);
/* The message of a status; "OK" for NULL. Valid until the status is freed. */
TSR_API const char *tsr_status_message(tsr_status status);
/* A static name for a code, such as "INVALID_MODEL". */
TSR_API const char *tsr_status_code_name(tsr_status_code code);
/* Releases a status; NULL is accepted. */
TSR_API void tsr_status_free(tsr_status status);

/* ---- Data types ------------------------------------------------------------------------ */

/* Values match ONNX TensorProto.DataType so that files map onto them directly. The same enum is
 * defined in plugin.h under the same guard, so the two headers can be included together. */
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

/* "float32", "int64", ...; "undefined" for unknown values. */
TSR_API const char *tsr_dtype_name(tsr_dtype dtype);
/* Bytes per element; 0 for types Tessera cannot store. */
TSR_API size_t tsr_dtype_size(tsr_dtype dtype);

/* ---- Allocator ------------------------------------------------------------------------- */

/* Host memory for everything the library allocates on the host. All three functions are
 * called from any thread. A NULL allocator in the runtime options means malloc/realloc/free. */
typedef struct tsr_allocator {
  void *self;
  void *(*alloc)(void *self, size_t size);
  void *(*realloc)(void *self, void *ptr, size_t size);
  void (*free)(void *self, void *ptr);
} tsr_allocator;

/* ---- Runtime --------------------------------------------------------------------------- */

typedef struct tsr_runtime tsr_runtime;

typedef struct tsr_runtime_options {
  size_t struct_size;
  const tsr_allocator *allocator; /* NULL: the C library; copied, must outlive the runtime */
  int discover_plugins;           /* non-zero: load plugins beside the library and from
                                     TESSERA_PLUGIN_PATH (a ':'-separated list of folders) */
  int log_level;                  /* 0 quiet, 1 errors, 2 warnings, 3 info (to stderr) */
} tsr_runtime_options;

/* Creates a runtime with the built-in CPU device and, when asked, the discovered plugins.
 * A plugin that fails to load or initialise is skipped and recorded (see plugin_failure).
 * NULL options mean defaults with discovery on. The caller owns *out. */
TSR_API tsr_status tsr_runtime_create(const tsr_runtime_options *options, tsr_runtime **out);
/* Destroys a runtime; every model and session made from it must be destroyed first. */
TSR_API void tsr_runtime_destroy(tsr_runtime *runtime);
/* Loads one plugin shared library by path. Not thread-safe against other runtime calls. */
TSR_API tsr_status tsr_runtime_load_plugin(tsr_runtime *runtime, const char *path);

typedef enum tsr_device_kind {
  TSR_DEVICE_KIND_CPU = 1,
  TSR_DEVICE_KIND_GPU = 2,
  TSR_DEVICE_KIND_NPU = 3,
  TSR_DEVICE_KIND_OTHER = 4
} tsr_device_kind;

enum {
  TSR_DEVICE_FLAG_FP16 = 1u << 0,
  TSR_DEVICE_FLAG_INT8 = 1u << 1,
  TSR_DEVICE_FLAG_ASYNC = 1u << 2,
  TSR_DEVICE_FLAG_HOST_VISIBLE = 1u << 3,
  TSR_DEVICE_FLAG_SIMULATED = 1u << 4
};

typedef struct tsr_device_info {
  size_t struct_size;
  const char *id;       /* unique short name used in device lists: "cpu", "opencl:0", ... */
  const char *plugin;   /* the plugin's name */
  const char *name;     /* the device's own name */
  const char *vendor;
  const char *driver;
  const char *features; /* space-separated, e.g. "avx2 fma" */
  tsr_device_kind kind;
  uint32_t flags;       /* TSR_DEVICE_FLAG_* */
  uint64_t memory_bytes;
  uint32_t compute_units;
} tsr_device_info;

/* The number of devices over all loaded plugins; the CPU is always device 0. */
TSR_API size_t tsr_runtime_device_count(const tsr_runtime *runtime);
/* Fills *out; strings stay valid for the runtime's lifetime. */
TSR_API tsr_status tsr_runtime_device_info(const tsr_runtime *runtime, size_t index,
                                           tsr_device_info *out);
/* Plugins that were found but skipped, each with a path and a reason. */
TSR_API size_t tsr_runtime_plugin_failure_count(const tsr_runtime *runtime);
TSR_API tsr_status tsr_runtime_plugin_failure(const tsr_runtime *runtime, size_t index,
                                              const char **out_path, const char **out_reason);

/* ---- Tensors --------------------------------------------------------------------------- */

typedef struct tsr_tensor tsr_tensor;

/* Creates a dense row-major host tensor, zero-filled. A rank-0 tensor is a scalar. The caller
 * owns *out. dims may be NULL when rank is 0. */
TSR_API tsr_status tsr_tensor_create(tsr_runtime *runtime, tsr_dtype dtype, size_t rank,
                                     const int64_t *dims, tsr_tensor **out);
/* As tsr_tensor_create, then copies byte_size bytes from data (which must equal the size). */
TSR_API tsr_status tsr_tensor_create_copy(tsr_runtime *runtime, tsr_dtype dtype, size_t rank,
                                          const int64_t *dims, const void *data,
                                          size_t byte_size, tsr_tensor **out);
TSR_API void tsr_tensor_destroy(tsr_tensor *tensor);
TSR_API tsr_dtype tsr_tensor_dtype(const tsr_tensor *tensor);
TSR_API size_t tsr_tensor_rank(const tsr_tensor *tensor);
/* The dims array, rank entries long; valid for the tensor's lifetime. */
TSR_API const int64_t *tsr_tensor_dims(const tsr_tensor *tensor);
TSR_API size_t tsr_tensor_element_count(const tsr_tensor *tensor);
TSR_API size_t tsr_tensor_byte_size(const tsr_tensor *tensor);
/* The tensor's host memory, writable by the owner. */
TSR_API void *tsr_tensor_data(tsr_tensor *tensor);

/* Reads a tensor from a .npy file or an ONNX TensorProto (.pb) file, chosen by content. */
TSR_API tsr_status tsr_tensor_load_file(tsr_runtime *runtime, const char *path, tsr_tensor **out);
/* Writes a tensor as a .npy file (format 1.0, little-endian, C order). */
TSR_API tsr_status tsr_tensor_save_npy(const tsr_tensor *tensor, const char *path);

/* ---- Models ---------------------------------------------------------------------------- */

typedef struct tsr_model tsr_model;

/* Loads an ONNX model. External-data files are looked up relative to the model's folder and may
 * not escape it. The model is immutable and may be shared by sessions on any thread. */
TSR_API tsr_status tsr_model_load_file(tsr_runtime *runtime, const char *path, tsr_model **out);
/* Loads from memory; base_dir (may be NULL) is where external data lives. */
TSR_API tsr_status tsr_model_load_memory(tsr_runtime *runtime, const void *data, size_t size,
                                         const char *base_dir, tsr_model **out);
TSR_API void tsr_model_destroy(tsr_model *model);

typedef struct tsr_value_info {
  size_t struct_size;
  const char *name;
  tsr_dtype dtype;
  int64_t rank;             /* -1 when the model does not say */
  const int64_t *dims;      /* rank entries; -1 marks a symbolic or unknown dimension */
  const char *const *dim_names; /* rank entries; the symbolic name, or NULL */
} tsr_value_info;

TSR_API size_t tsr_model_input_count(const tsr_model *model);
TSR_API size_t tsr_model_output_count(const tsr_model *model);
/* Info for graph input/output `index`; strings live as long as the model. */
TSR_API tsr_status tsr_model_input_info(const tsr_model *model, size_t index, tsr_value_info *out);
TSR_API tsr_status tsr_model_output_info(const tsr_model *model, size_t index,
                                         tsr_value_info *out);
TSR_API size_t tsr_model_node_count(const tsr_model *model);

/* ---- Sessions -------------------------------------------------------------------------- */

typedef struct tsr_session tsr_session;

enum {
  TSR_PRECISION_FP32 = 1u << 0,
  TSR_PRECISION_FP16 = 1u << 1,
  TSR_PRECISION_INT8 = 1u << 2
};

typedef struct tsr_session_options {
  size_t struct_size;
  const char *devices;       /* "auto" or NULL: every device, best first; else a comma list of
                                device ids or plugin names in preference order, e.g. "opencl,cpu" */
  int strict;                /* non-zero: fail when a node cannot run on the listed devices,
                                instead of falling back to the CPU */
  int threads;               /* worker threads for CPU kernels; 0 = one per core */
  const char *memory_budgets; /* NULL, or "cpu=512M,opencl:0=1G": activation arena limits */
  uint32_t precisions;       /* TSR_PRECISION_* allowed; 0 = fp32 only */
} tsr_session_options;

/* Compiles a model for a set of devices. The session keeps a reference to the model, which must
 * outlive it. NULL options mean defaults. The caller owns *out. */
TSR_API tsr_status tsr_session_create(tsr_runtime *runtime, const tsr_model *model,
                                      const tsr_session_options *options, tsr_session **out);
TSR_API void tsr_session_destroy(tsr_session *session);

typedef struct tsr_profile tsr_profile;

typedef struct tsr_run_options {
  size_t struct_size;
  tsr_profile *profile; /* NULL, or a profile that this run fills with timings */
} tsr_run_options;

/* Runs the session. Inputs are named; every graph input must be given. outputs[i] receives a new
 * tensor for output_names[i] (or, when output_names is NULL, for the model's i-th output, and
 * n_outputs may be at most the model's output count); the caller owns them.
 * Thread-safe: several threads may run one session at once. */
TSR_API tsr_status tsr_session_run(tsr_session *session, const tsr_run_options *options,
                                   size_t n_inputs, const char *const *input_names,
                                   const tsr_tensor *const *inputs, size_t n_outputs,
                                   const char *const *output_names, tsr_tensor **outputs);

/* ---- Plans: where each node runs and why ----------------------------------------------- */

typedef struct tsr_plan tsr_plan;

typedef enum tsr_reason {
  TSR_REASON_NONE = 0,       /* accepted */
  TSR_REASON_OP = 1,         /* the operator (or its opset version) is not implemented */
  TSR_REASON_DTYPE = 2,      /* a data type is not supported */
  TSR_REASON_SHAPE = 3,      /* a shape or rank is not supported */
  TSR_REASON_QUANTIZATION = 4,
  TSR_REASON_TOO_SMALL = 5,  /* cheaper elsewhere */
  TSR_REASON_ATTRIBUTE = 6,  /* an attribute value is not supported */
  TSR_REASON_PRECISION = 7,  /* needs a precision the session does not allow */
  TSR_REASON_NOT_LISTED = 8, /* the device is not in the session's list */
  TSR_REASON_OTHER = 9
} tsr_reason;

/* A static name for a reason, such as "dtype". */
TSR_API const char *tsr_reason_name(tsr_reason reason);

/* The plan for the given input shapes. Inputs not named use the model's shapes, with each
 * symbolic dimension set to 1; an input whose rank the model does not give must be named.
 * shapes[i] has ranks[i] entries. The plan refers to the session's cache: destroy it before
 * the session. The caller owns *out. */
TSR_API tsr_status tsr_session_plan(tsr_session *session, size_t n_inputs,
                                    const char *const *input_names, const size_t *ranks,
                                    const int64_t *const *shapes, tsr_plan **out);
TSR_API void tsr_plan_destroy(tsr_plan *plan);

typedef struct tsr_plan_node_info {
  size_t struct_size;
  const char *name;
  const char *op_type;
  const char *device;     /* device id it runs on; "folded" when computed at plan time */
  size_t partition;       /* index into the partitions; SIZE_MAX when folded */
  tsr_reason reason;      /* why the preferred device refused it (NONE if it took it) */
  const char *reason_text; /* that device's words, or "" */
  const char *refused_by;  /* the device that refused it, or "" */
  double estimated_cost_us; /* the device's estimate, or < 0 when it gave none */
  const char *kernel;       /* how the device runs it (its plugin's note: kernel, layout,
                               fusion), or "" when the plugin gives none */
} tsr_plan_node_info;

typedef struct tsr_plan_partition_info {
  size_t struct_size;
  const char *device;
  size_t node_count;
  uint64_t bytes_in;      /* bytes copied onto the device before it runs */
  uint64_t bytes_out;     /* bytes copied off the device after it runs */
  uint64_t arena_bytes;   /* activation memory planned for it on its device */
} tsr_plan_partition_info;

TSR_API size_t tsr_plan_node_count(const tsr_plan *plan);
TSR_API tsr_status tsr_plan_get_node(const tsr_plan *plan, size_t index, tsr_plan_node_info *out);
TSR_API size_t tsr_plan_partition_count(const tsr_plan *plan);
TSR_API tsr_status tsr_plan_get_partition(const tsr_plan *plan, size_t index,
                                           tsr_plan_partition_info *out);
/* Activation arena bytes planned per device, summed; weights are not counted. */
TSR_API uint64_t tsr_plan_arena_bytes(const tsr_plan *plan);

/* ---- Profiles: measured time per partition and per node -------------------------------- */

TSR_API tsr_status tsr_profile_create(tsr_profile **out);
TSR_API void tsr_profile_destroy(tsr_profile *profile);
/* Clears the recorded runs. */
TSR_API void tsr_profile_reset(tsr_profile *profile);

typedef struct tsr_profile_entry {
  size_t struct_size;
  const char *device;   /* device id */
  const char *name;     /* node name, or partition label "partition 2" */
  const char *op_type;  /* op type, or "" for a partition or a transfer; "Copy" for a transfer */
  uint64_t total_ns;    /* summed over recorded runs */
  uint64_t calls;
  const char *kernel; /* per-node entries: how the device ran the node (as
                         tsr_plan_node_info.kernel); "" otherwise */
} tsr_profile_entry;

/* Device totals: one entry per device with its summed execution time and copies. */
TSR_API size_t tsr_profile_device_count(const tsr_profile *profile);
TSR_API tsr_status tsr_profile_device(const tsr_profile *profile, size_t index,
                                      tsr_profile_entry *out);
/* Per-node entries, as reported by plugins that time their nodes. */
TSR_API size_t tsr_profile_node_count(const tsr_profile *profile);
TSR_API tsr_status tsr_profile_node(const tsr_profile *profile, size_t index,
                                    tsr_profile_entry *out);
TSR_API uint64_t tsr_profile_run_count(const tsr_profile *profile);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_TESSERA_H */
