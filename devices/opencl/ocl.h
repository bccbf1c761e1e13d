/* Internal declarations of the OpenCL plugin, shared by plugin.c (the table: devices, buffers,
 * the program and its cache, execution) and ops.c (what each ONNX op lowers to). Nothing here
 * is seen by the host; the plugin's only export is tsr_plugin_query. */
#ifndef TESSERA_OPENCL_OCL_H
#define TESSERA_OPENCL_OCL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/plugin.h"

/* The program variants (kernels.cl, "Precision of the float32 kernels"): float32, half
 * arithmetic (-DOCL_FP16, on devices with cl_khr_fp16) and its float emulation
 * (-DOCL_FP16_EMULATE, a test hook). */
typedef enum ocl_variant {
  OCL_VARIANT_FP32,
  OCL_VARIANT_FP16,
  OCL_VARIANT_FP16_EMULATE
} ocl_variant;
#define OCL_N_VARIANTS 3

/* One OpenCL device. Its context, read/write queue and program are created on first use
 * (under `lock`), so that a runtime that never runs anything here pays only for enumeration. */
typedef struct ocl_device {
  cl_platform_id platform;
  cl_device_id id;
  tsr_plugin_device_props props;
  size_t max_work_group;
  bool fp64; /* cl_khr_fp64: the typed kernels include float64 */
  bool fp16; /* cl_khr_fp16: the fp16 program variant can be built */
  bool exact_div; /* CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT: programs ask for IEEE division */
  uint64_t live_bytes; /* bytes in live buffers (atomic), for TESSERA_OPENCL_MEMORY_LIMIT */
  pthread_mutex_t lock; /* guards ctx, queue, program, broken and every use of a queue */
  cl_context ctx;
  cl_command_queue queue; /* for write/read on the buffers of ctx; executables have their own */
  cl_program programs[OCL_N_VARIANTS]; /* per ocl_variant, built on first use */
  /* A call on ctx failed in a way that may mean the device was lost or reset (see
   * note_failure in plugin.c): the next compile or allocation drops ctx, queue and programs
   * and creates new ones. Buffers and executables hold references to the context they were
   * made in, so dropping the device's own is safe while they live. */
  bool broken;
} ocl_device;

typedef struct ocl_state {
  const tsr_plugin_host *host;
  uint32_t n_devices;
  ocl_device *devices;
} ocl_state;

/* A buffer handle as the host sees it. A zero-byte buffer still holds a small cl_mem so that
 * every handle is a real allocation. */
typedef struct ocl_buffer {
  cl_mem mem;
  uint64_t size;
  cl_context ctx;         /* the context mem belongs to (a reference) */
  cl_command_queue queue; /* that context's device queue, for write/read (a reference) */
} ocl_buffer;

/* A kernel argument. VALUE args are a value of the partition, passed as two kernel arguments
 * (the cl_mem and an element offset) and resolved at execute time unless the value is a
 * constant; the rest are fixed at compile time. */
typedef enum ocl_arg_kind {
  OCL_ARG_VALUE,
  OCL_ARG_MEM,
  OCL_ARG_INT,
  OCL_ARG_FLOAT,
  OCL_ARG_ULONG
} ocl_arg_kind;

typedef struct ocl_arg {
  ocl_arg_kind kind;
  cl_uint index;  /* the kernel argument's index (a VALUE takes index and index + 1) */
  int32_t value;  /* VALUE: local value index, or -1 for an absent optional tensor */
  uint32_t esize; /* VALUE: element size in bytes, to turn byte offsets into element offsets */
} ocl_arg;

#define OCL_MAX_ARGS 12

/* One launch (or one buffer copy, when kernel is NULL) of a compiled partition. */
typedef struct ocl_step {
  uint32_t node;
  cl_kernel kernel;
  uint32_t n_args;
  ocl_arg args[OCL_MAX_ARGS];
  cl_uint dims;
  size_t global[3];
  size_t local[3]; /* local[0] == 0: the driver chooses */
  /* Copy steps: bytes from value copy_src to value copy_dst. */
  int32_t copy_src, copy_dst;
  uint64_t copy_bytes;
} ocl_step;

typedef struct ocl_exe {
  ocl_state *st;
  ocl_device *dev;
  const tsr_plugin_graph *g;
  pthread_mutex_t lock; /* execute() holds it: kernel arguments and the queue are shared */
  ocl_variant variant;  /* which program the kernels come from */
  cl_context ctx;       /* the device's context when compiled (a reference) */
  cl_program program;   /* dev->programs[variant] when compiled (a reference) */
  cl_command_queue queue;
  uint32_t n_nodes;
  uint32_t n_values;
  tsr_plugin_value *values;
  cl_mem *consts; /* per value: the uploaded constant, or NULL */
  cl_mem dummy;   /* bound where an optional tensor is absent */
  /* One int that kernels indexing with data set to their node's index + 1 when an index is out
   * of range (ocl__arg_check); execute() clears it before a run and reads it after. NULL when
   * no kernel of the partition checks. */
  cl_mem errbuf;
  ocl_step *steps;
  uint32_t n_steps, cap_steps;
  cl_mem *owned; /* parameter buffers */
  uint32_t n_owned, cap_owned;
  char (*notes)[128]; /* per node: how it runs (node_note), built at the end of compile() */
} ocl_exe;

/* Lowering context for one node: used by supports() with exe == NULL (check only) and by
 * compile() with an executable to append steps to. The same code decides both, so that a
 * node accepted by supports() is one that compile() can lower (P-13). */
typedef struct ocl_lower {
  ocl_state *st;
  ocl_device *dev;
  const tsr_plugin_graph *g;
  const tsr_plugin_graph_api *api;
  uint32_t node;
  ocl_exe *exe;
  char *msg;
  size_t msg_size;
} ocl_lower;

/* What lowering returns: 0 when the node is (or would be) lowered, a tsr_plugin_reason > 0
 * when the node is refused (message in msg), or OCL_LOWER_DEVICE_ERROR when an OpenCL call
 * failed while compiling (message in msg). */
#define OCL_LOWER_DEVICE_ERROR (-1)
int ocl__lower_node(ocl_lower *L);

/* Helpers from plugin.c for ops.c. */
const char *ocl__error_name(cl_int code);
ocl_step *ocl__step_kernel(ocl_lower *L, const char *kernel_name);
ocl_step *ocl__step_copy(ocl_lower *L, int32_t src, int32_t dst, uint64_t bytes);
int ocl__arg_value(ocl_lower *L, ocl_step *s, int32_t value, uint32_t esize);
int ocl__arg_params(ocl_lower *L, ocl_step *s, const int32_t *p, size_t count);
int ocl__arg_int(ocl_lower *L, ocl_step *s, int32_t v);
/* Binds the executable's error flag (made on first use) and this node's index + 1, the last two
 * arguments of a kernel that indexes with data (gathers, scatters): it stores the node there
 * for an index out of range, and execute() then fails the run naming the node. */
int ocl__arg_check(ocl_lower *L, ocl_step *s);
int ocl__arg_float(ocl_lower *L, ocl_step *s, float v);
int ocl__arg_ulong(ocl_lower *L, ocl_step *s, uint64_t v);
/* A buffer the executable owns, initialised from init when non-NULL; NULL on failure (message
 * in L->msg). ocl__arg_mem binds such a buffer as a fixed argument. */
cl_mem ocl__buffer(ocl_lower *L, uint64_t bytes, const void *init);
int ocl__arg_mem(ocl_lower *L, ocl_step *s, cl_mem m);
/* 1-D launch over n work items (a step with n == 0 is dropped at execute time). */
void ocl__launch_1d(ocl_step *s, uint64_t n);

#endif /* TESSERA_OPENCL_OCL_H */
