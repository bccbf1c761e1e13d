/* The CPU plugin's internal interface: how kernels see nodes and tensors, how they are
 * registered, and the helpers they share (attributes, errors, the thread pool).
 *
 * A kernel file (conv.c, gemm.c, ...) defines one cpu_op_list, cpu_ops_<family>, listed in
 * registry.c. The host has already inferred every output's shape and dtype and allocated its
 * memory before run() is called; kernels still validate what they rely on and fail with a
 * message instead of reading or writing out of bounds. */
#ifndef TSR_CPU_CPU_H
#define TSR_CPU_CPU_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tessera/plugin.h"

typedef struct cpu_tensor {
  uint32_t dtype;          /* tsr_dtype */
  uint32_t rank;
  const int64_t *dims;     /* rank entries */
  void *data;              /* NULL only when count == 0 (or an absent optional input) */
  size_t count;            /* element count */
  size_t nbytes;
  bool present;            /* false for an absent optional input/output */
  bool is_const;           /* data is a weight or constant, known at compile time */
} cpu_tensor;

/* An activation node that the plugin took into the node before it (fuse_nodes). */
typedef enum cpu_fused_act {
  CPU_FUSED_NONE = 0,
  CPU_FUSED_RELU,
  CPU_FUSED_GELU,      /* Gelu, approximate = "none" */
  CPU_FUSED_GELU_TANH, /* Gelu, approximate = "tanh" */
} cpu_fused_act;

/* A node as a kernel sees it. At prepare()/check() time `in`/`out` carry dtypes and shapes
 * (and data only for constants); at run() time the tensors passed to run() carry the data. */
typedef struct cpu_node {
  const tsr_plugin_graph *g;
  const tsr_plugin_graph_api *api;
  uint32_t index;
  const char *name;
  const char *op_type;
  int64_t opset;
  uint32_t n_in, n_out;
  const cpu_tensor *in;
  const cpu_tensor *out;
  /* Nodes the plugin took into this one (plugin.c, fuse_nodes); out[0] is then the output of
   * the last node taken in. A Conv with `in_scale` reads in[0] scaled per image and channel by
   * in[4] (N x C floats): the Mul of a squeeze-and-excitation block that fed it. A Conv with
   * `residual` adds in[3], the other operand of the Add that read its output, of the output's
   * shape and dtype; a MatMul with `col_bias` adds in[2], a constant vector of N floats, to
   * every row; either then applies fused_act. A LayerNormalization with `skip` normalises
   * in[0] + in[3] (float32, of one shape): the Add that fed it, as a transformer's residual
   * connection does. */
  bool in_scale, residual, col_bias, skip;
  cpu_fused_act fused_act;
  /* The node reads and writes the channel-blocked layout (nchwc.h), as plugin.c
   * (assign_layouts) laid out its values: in[0] (and a residual in[3]) and out[0] for a
   * CPU_NCHWC_BLOCKED node, out[0] for a CPU_NCHWC_STEM one, in[0] for a CPU_NCHWC_SINK one;
   * but with nchwc_out_plain, a BLOCKED or STEM node computes blocked and writes out[0] as
   * NCHW (its output is read by a node that cannot take it blocked, or leaves the partition),
   * and with nchwc_in_plain, an OPENS node reads in[0] as NCHW and converts it before it
   * computes blocked. prepare() sees nchwc set when it packs weights. */
  bool nchwc, nchwc_out_plain, nchwc_in_plain;
} cpu_node;

typedef struct cpu_pool cpu_pool;

/* Instruction-set levels, chosen once when the plugin starts (cpuid), or forced to GENERIC by
 * the environment variable TESSERA_CPU_GENERIC=1. */
typedef enum cpu_isa { CPU_ISA_GENERIC = 0, CPU_ISA_AVX2_FMA = 1 } cpu_isa;

/* The best ISA level this machine and build support, honouring TESSERA_CPU_GENERIC. */
cpu_isa cpu_detect_isa(void);
/* Whether the CPU converts half floats in hardware (F16C). */
bool cpu_has_f16c(void);

/* Scratch memory kept from one run to the next (cpu_scratch_take). */
typedef struct cpu_scratch cpu_scratch;

/* Per-call context: the error buffer, the threads the kernel may use and the executable's
 * scratch slot. */
typedef struct cpu_ctx {
  cpu_pool *pool;          /* NULL means run on the calling thread */
  cpu_isa isa;
  char *err;               /* message buffer for cpu_fail() */
  size_t err_size;
  cpu_scratch *_Atomic *scratch; /* NULL: every take allocates */
} cpu_ctx;

/* How a node can take part in the blocked layout (cpu_node.nchwc). */
typedef enum cpu_nchwc_role {
  CPU_NCHWC_NONE = 0,
  CPU_NCHWC_BLOCKED,     /* in[0] and a residual in[3] blocked, out[0] blocked or converted to
                            plain (Conv but stems, MaxPool) */
  CPU_NCHWC_STEM,        /* in[0] plain NCHW, out[0] blocked (an image's first Conv) */
  CPU_NCHWC_SINK,        /* in[0] either way, out[0] plain NCHW (global averages) */
  CPU_NCHWC_FREE,        /* every operand either way, all alike (elementwise ops of one shape,
                            Concat of channels) */
  CPU_NCHWC_OPENS,       /* as BLOCKED, or from a plain in[0], which the node converts first,
                            where out[0] stays blocked: a Conv that opens a chain */
  CPU_NCHWC_OPENS_ALONE, /* as OPENS, and from a plain in[0] even where out[0] is converted
                            back (a Conv whose blocked kernel gains more than the two
                            conversions cost: Winograd) */
} cpu_nchwc_role;

typedef struct cpu_op {
  const char *op_type;
  const char *domain;      /* "" for ai.onnx */
  int64_t min_opset, max_opset; /* the versions this entry implements, inclusive */
  /* Optional: compile-time check of dtypes, shapes and attributes. Returns
   * TSR_PLUGIN_REASON_NONE when supported, else a reason with a short message in msg. */
  tsr_plugin_reason (*check)(const cpu_node *n, char *msg, size_t msg_size);
  /* Optional: builds per-node state once (packed weights, parsed attributes). Returns 0, or
   * -1 with a message in msg. */
  int (*prepare)(const cpu_node *n, void **out_state, char *msg, size_t msg_size);
  /* Runs the node. Returns 0, or -1 after cpu_fail(). */
  int (*run)(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in, cpu_tensor *out);
  void (*release)(void *state);
  /* Optional: the node's role in the blocked layout on this isa (plugin.c, assign_layouts),
   * from its shapes and attributes at compile time, with what fusion gave it; NULL or
   * CPU_NCHWC_NONE when it has none. */
  cpu_nchwc_role (*nchwc_role)(const cpu_node *n, cpu_isa isa);
  /* Optional: after prepare(), a few words on the kernel the node will run with `state` on
   * this isa ("winograd F(2x2,3x3)"), for the plugin's node note (plugin.c adds the layout and
   * what fusion gave the node); buf may be left empty. */
  void (*note)(const cpu_node *n, const void *state, cpu_isa isa, char *buf, size_t size);
} cpu_op;

typedef struct cpu_op_list {
  const cpu_op *ops;
  size_t count;
} cpu_op_list;

/* The families, each defined by its file. */
extern const cpu_op_list cpu_ops_conv;        /* conv.c: Conv, ConvTranspose */
extern const cpu_op_list cpu_ops_gemm;        /* gemm.c: Gemm, MatMul */
extern const cpu_op_list cpu_ops_pool;        /* pool.c: MaxPool, AveragePool, Global*, LpPool */
extern const cpu_op_list cpu_ops_norm;        /* norm.c: BatchNormalization, LayerNormalization,
                                                 InstanceNormalization, LRN */
extern const cpu_op_list cpu_ops_elementwise; /* elementwise.c: arithmetic, comparison, logic,
                                                 unary math, activations */
extern const cpu_op_list cpu_ops_reduce;      /* reduce.c: Reduce*, ArgMax/ArgMin, Softmax,
                                                 LogSoftmax, Hardmax */
extern const cpu_op_list cpu_ops_shape;       /* shape_ops.c: Reshape, Transpose, Concat, ... */
extern const cpu_op_list cpu_ops_resize;      /* resize.c: Resize, Upsample */
extern const cpu_op_list cpu_ops_quant;       /* quant.c: QuantizeLinear, DequantizeLinear,
                                                 DynamicQuantizeLinear, QLinearConv,
                                                 QLinearMatMul, MatMulInteger, ConvInteger */
extern const cpu_op_list cpu_ops_rnn;         /* rnn.c: LSTM, GRU, RNN */
extern const cpu_op_list cpu_ops_misc;        /* misc.c: Einsum, Det, Shrink,
                                                 MeanVarianceNormalization, ReverseSequence,
                                                 MaxUnpool */
extern const cpu_op_list cpu_ops_detect;      /* detect.c: NonMaxSuppression, RoiAlign,
                                                 GridSample, Unique */
extern const cpu_op_list cpu_ops_signal;      /* signal.c: DFT, STFT, window functions,
                                                 MelWeightMatrix */

/* Finds the entry for an op at an opset version; NULL when none. */
const cpu_op *cpu_find_op(const char *domain, const char *op_type, int64_t opset);

/* ---- Helpers for kernels -------------------------------------------------------------- */

/* Formats a message into ctx->err and returns -1. */
int cpu_fail(cpu_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* snprintf into a check()/prepare() message buffer; returns `reason` so a check can say
 * `return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s", ...)`. */
tsr_plugin_reason cpu_refuse(char *msg, size_t size, tsr_plugin_reason reason, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));

bool cpu_has_attr(const cpu_node *n, const char *name);
int64_t cpu_attr_int(const cpu_node *n, const char *name, int64_t dflt);
float cpu_attr_float(const cpu_node *n, const char *name, float dflt);
/* Returns dflt when absent; the string lives as long as the graph. */
const char *cpu_attr_string(const cpu_node *n, const char *name, const char *dflt);
/* Returns the element count and sets *out, or returns 0 and sets *out = NULL when absent. */
size_t cpu_attr_ints(const cpu_node *n, const char *name, const int64_t **out);
size_t cpu_attr_floats(const cpu_node *n, const char *name, const float **out);
/* A TENSOR attribute; false when absent. */
bool cpu_attr_tensor(const cpu_node *n, const char *name, tsr_plugin_attr *out);

/* Bytes per element of a dtype; 0 when not storable. */
size_t cpu_dtype_size(uint32_t dtype);
const char *cpu_dtype_name(uint32_t dtype);

/* Reads element i of an integer tensor (int8..uint64, bool) as int64; used for indices,
 * shapes and axes inputs. */
int64_t cpu_read_int(const cpu_tensor *t, size_t i);
/* Reads/writes element i of any numeric tensor as double (float16 included). */
double cpu_read_f64(const cpu_tensor *t, size_t i);
void cpu_write_f64(cpu_tensor *t, size_t i, double v);

/* IEEE half <-> float. */
float cpu_half_to_float(uint16_t h);
uint16_t cpu_float_to_half(float f);

/* Splits [0, n) into chunks and calls fn(arg, begin, end) on the pool's threads and the
 * caller's; returns when all are done. `grain` is the smallest chunk worth a thread; a grain of
 * one says the items are coarse already and of about equal work (cpu_pool_chunk in
 * threadpool.h cuts the chunks). Each thread starts on its own contiguous range of the
 * chunks, the caller on the first (threadpool.c), so kernels that order their items alike
 * keep each thread on the part of the data it wrote last. When the pool is busy with another
 * run, everything runs on the calling thread. */
void cpu_parallel_for(cpu_ctx *ctx, size_t n, size_t grain,
                      void (*fn)(void *arg, size_t begin, size_t end), void *arg);
/* The number of threads parallel_for may use (>= 1). */
size_t cpu_thread_count(const cpu_ctx *ctx);

/* For kernels that cut each of N images into `per` items of equal work: the least count from
 * per up to most that makes N * count a multiple of the threads, so that their shares come out
 * even (a 112-row stem in 23 bands went twelve to eleven on two threads); per where none does. */
size_t cpu_even_items(size_t per, size_t N, size_t threads, size_t most);

/* A kernel's large scratch memory (padded inputs, transformed tiles), kept in ctx's slot from
 * one run to the next and shared by the nodes of an executable in turn, instead of allocated
 * and freed in every run: freed, blocks of a megabyte or more go back to the system under
 * glibc's thresholds now and then, and each run then pays a page fault every 4 KiB (a
 * Winograd layer on two threads: 384 faults, 0.8 of 1.3 ms). Returns 64-byte aligned memory
 * of at least `bytes`, or NULL when memory ran out; *fresh says whether it was just allocated
 * (its contents undefined) rather than reused (what a kernel left there). Give it back with
 * cpu_scratch_give, on the same ctx, after the kernel's last use; runs at once on one
 * executable (or kernels on several threads of one run) each get their own block, of which
 * the slot keeps the largest given. */
void *cpu_scratch_take(cpu_ctx *ctx, size_t bytes, bool *fresh);
void cpu_scratch_give(cpu_ctx *ctx, void *p);
/* Frees what a slot holds (the executable's release). */
void cpu_scratch_free(cpu_scratch *_Atomic *slot);

/* Single-precision GEMM used by Gemm, MatMul and Conv:
 *   C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C
 * with row-major A (lda), B (ldb), C (ldc); trans_a/trans_b select op(). beta == 0 ignores C's
 * old contents. Runs on ctx's threads and ISA. Defined in gemm.c. */
void cpu_sgemm(cpu_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
               float alpha, const float *a, size_t lda, const float *b, size_t ldb, float beta,
               float *c, size_t ldc);

/* Whether Conv node n (as described at compile time) can take in a residual Add, and a Relu
 * after it (cpu_node.residual): float32, without an activation of its own, not depthwise.
 * Defined in conv.c. */
bool cpu_conv_residual_ok(const cpu_node *n);
/* Whether Conv node n can take in the Mul before it that scales its input per image and
 * channel (cpu_node.in_scale): float32, constant weights, one group, not depthwise. conv.c. */
bool cpu_conv_scale_ok(const cpu_node *n);
/* Whether MatMul node n can take in the Add of a bias vector, and a Relu or Gelu after it
 * (cpu_node.col_bias): float32 with a constant 2-D B. Defined in gemm.c. */
bool cpu_matmul_bias_ok(const cpu_node *n);

#endif
