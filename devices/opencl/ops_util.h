/* Helpers shared by the OpenCL plugin's lowering files (ops.c, ops_typed.c, ops_movement.c,
 * ops_nn.c): reading a node through the graph view, refusing with a reason, dtypes. All static
 * inline; nothing here is seen outside the plugin. */
#ifndef TESSERA_OPENCL_OPS_UTIL_H
#define TESSERA_OPENCL_OPS_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

#define MAX_ELEMS 0x7fffffffLL /* kernels index with 32-bit ints */

static inline int refuse(ocl_lower *L, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int refuse(ocl_lower *L, int reason, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(L->msg, L->msg_size, fmt, ap);
  va_end(ap);
  return reason;
}

static inline const char *dtype_name(uint32_t dt) {
  switch (dt) {
  case TSR_DTYPE_FLOAT32: return "float32";
  case TSR_DTYPE_UINT8: return "uint8";
  case TSR_DTYPE_INT8: return "int8";
  case TSR_DTYPE_UINT16: return "uint16";
  case TSR_DTYPE_INT16: return "int16";
  case TSR_DTYPE_INT32: return "int32";
  case TSR_DTYPE_INT64: return "int64";
  case TSR_DTYPE_STRING: return "string";
  case TSR_DTYPE_BOOL: return "bool";
  case TSR_DTYPE_FLOAT16: return "float16";
  case TSR_DTYPE_FLOAT64: return "float64";
  case TSR_DTYPE_UINT32: return "uint32";
  case TSR_DTYPE_UINT64: return "uint64";
  case TSR_DTYPE_BFLOAT16: return "bfloat16";
  default: return "undefined";
  }
}

static inline uint32_t dtype_size(uint32_t dt) {
  switch (dt) {
  case TSR_DTYPE_UINT8:
  case TSR_DTYPE_INT8:
  case TSR_DTYPE_BOOL: return 1;
  case TSR_DTYPE_UINT16:
  case TSR_DTYPE_INT16:
  case TSR_DTYPE_FLOAT16:
  case TSR_DTYPE_BFLOAT16: return 2;
  case TSR_DTYPE_FLOAT32:
  case TSR_DTYPE_INT32:
  case TSR_DTYPE_UINT32: return 4;
  case TSR_DTYPE_INT64:
  case TSR_DTYPE_UINT64:
  case TSR_DTYPE_FLOAT64: return 8;
  default: return 0;
  }
}

/* ---- Reading the node ------------------------------------------------------------------ */

static inline uint32_t n_in(ocl_lower *L) { return L->api->node_input_count(L->g, L->node); }
static inline uint32_t n_out(ocl_lower *L) { return L->api->node_output_count(L->g, L->node); }
static inline int32_t in_idx(ocl_lower *L, uint32_t k) {
  return k < n_in(L) ? L->api->node_input(L->g, L->node, k) : -1;
}
static inline int32_t out_idx(ocl_lower *L, uint32_t k) {
  return k < n_out(L) ? L->api->node_output(L->g, L->node, k) : -1;
}
static inline tsr_plugin_value vinfo(ocl_lower *L, int32_t v) {
  tsr_plugin_value out;
  memset(&out, 0, sizeof out);
  if (v >= 0)
    L->api->value_info(L->g, (uint32_t)v, &out);
  return out;
}
static inline int64_t count_of(const tsr_plugin_value *v) {
  int64_t n = 1;
  for (uint32_t i = 0; i < v->rank; i++)
    n *= v->dims[i];
  return n;
}
static inline int64_t prod(const int64_t *d, uint32_t from, uint32_t to) {
  int64_t n = 1;
  for (uint32_t i = from; i < to; i++)
    n *= d[i];
  return n;
}

static inline int64_t attr_int(ocl_lower *L, const char *name, int64_t def) {
  tsr_plugin_attr a;
  if (L->api->node_attr(L->g, L->node, name, &a) && a.type == TSR_PLUGIN_ATTR_INT)
    return a.i;
  return def;
}
static inline float attr_float(ocl_lower *L, const char *name, float def) {
  tsr_plugin_attr a;
  if (L->api->node_attr(L->g, L->node, name, &a) && a.type == TSR_PLUGIN_ATTR_FLOAT)
    return a.f;
  return def;
}
static inline const char *attr_str(ocl_lower *L, const char *name, const char *def) {
  tsr_plugin_attr a;
  if (L->api->node_attr(L->g, L->node, name, &a) && a.type == TSR_PLUGIN_ATTR_STRING)
    return a.s;
  return def;
}
/* INTS attribute: returns its count (0 when absent) and the array through *out. */
static inline size_t attr_ints(ocl_lower *L, const char *name, const int64_t **out) {
  tsr_plugin_attr a;
  *out = NULL;
  if (L->api->node_attr(L->g, L->node, name, &a) && a.type == TSR_PLUGIN_ATTR_INTS) {
    *out = a.ints;
    return a.count;
  }
  return 0;
}
static inline bool has_attr(ocl_lower *L, const char *name) {
  tsr_plugin_attr a;
  return L->api->node_attr(L->g, L->node, name, &a) != 0;
}

/* Reads a constant integer tensor (int32 or int64) into out; false when not constant. */
static inline bool const_ints(ocl_lower *L, int32_t v, int64_t *out, size_t cap, size_t *count) {
  tsr_plugin_value x = vinfo(L, v);
  if (v < 0 || !x.const_data)
    return false;
  int64_t n = count_of(&x);
  if (n < 0 || (size_t)n > cap)
    return false;
  for (int64_t i = 0; i < n; i++) {
    if (x.dtype == TSR_DTYPE_INT64)
      out[i] = ((const int64_t *)x.const_data)[i];
    else if (x.dtype == TSR_DTYPE_INT32)
      out[i] = ((const int32_t *)x.const_data)[i];
    else
      return false;
  }
  *count = (size_t)n;
  return true;
}

static inline int require_f32(ocl_lower *L) {
  for (uint32_t side = 0; side < 2; side++)
    for (uint32_t k = 0; k < (side ? n_out(L) : n_in(L)); k++) {
      int32_t v = side ? out_idx(L, k) : in_idx(L, k);
      if (v < 0)
        continue;
      tsr_plugin_value x = vinfo(L, v);
      if (x.dtype != TSR_DTYPE_FLOAT32)
        return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported (%s %u)",
                      dtype_name(x.dtype), side ? "output" : "input", k);
    }
  return 0;
}

/* The data input and output of a movement op: any dtype of 1, 2, 4 or 8 bytes. */
static inline int movement_dtype(ocl_lower *L, int32_t v, uint32_t *esize) {
  tsr_plugin_value x = vinfo(L, v);
  *esize = dtype_size(x.dtype);
  if (*esize == 0 || x.dtype == TSR_DTYPE_STRING)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported", dtype_name(x.dtype));
  return 0;
}

static inline const char *move_suffix(uint32_t esize) {
  return esize == 1 ? "u8" : esize == 2 ? "u16" : esize == 4 ? "u32" : "u64";
}

/* Normalises an axis into [0, rank) (or [0, rank] with allow_end); -1 when out of range. */
static inline int64_t norm_axis(int64_t axis, int64_t rank, bool allow_end) {
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis > rank || (!allow_end && axis == rank))
    return -1;
  return axis;
}

#define TRY(x)                                                                                     \
  do {                                                                                             \
    int r_ = (x);                                                                                  \
    if (r_)                                                                                        \
      return r_;                                                                                   \
  } while (0)
#define STEP(s, name)                                                                              \
  ocl_step *s = ocl__step_kernel(L, name);                                                         \
  if (!s)                                                                                          \
  return OCL_LOWER_DEVICE_ERROR

/* The kernel suffix of a dtype's storage (kernels.cl's typed kernels); bool is u8. */
static inline const char *num_suffix(uint32_t dt) {
  switch (dt) {
  case TSR_DTYPE_FLOAT32: return "f32";
  case TSR_DTYPE_FLOAT64: return "f64";
  case TSR_DTYPE_FLOAT16: return "f16";
  case TSR_DTYPE_BFLOAT16: return "bf16";
  case TSR_DTYPE_INT8: return "i8";
  case TSR_DTYPE_UINT8:
  case TSR_DTYPE_BOOL: return "u8";
  case TSR_DTYPE_INT16: return "i16";
  case TSR_DTYPE_UINT16: return "u16";
  case TSR_DTYPE_INT32: return "i32";
  case TSR_DTYPE_UINT32: return "u32";
  case TSR_DTYPE_INT64: return "i64";
  case TSR_DTYPE_UINT64: return "u64";
  default: return "none";
  }
}

static inline bool is_float_dtype(uint32_t dt) {
  return dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16;
}
static inline bool is_int_dtype(uint32_t dt) {
  return dt == TSR_DTYPE_INT8 || dt == TSR_DTYPE_UINT8 || dt == TSR_DTYPE_INT16 ||
         dt == TSR_DTYPE_UINT16 || dt == TSR_DTYPE_INT32 || dt == TSR_DTYPE_UINT32 ||
         dt == TSR_DTYPE_INT64 || dt == TSR_DTYPE_UINT64;
}

/* Refuses unless dt is a number the typed kernels compute on: the integers, float32, float16
 * (stored as half, computed in float) and float64 where the device has cl_khr_fp64. */
static inline int numeric_dtype_ok(ocl_lower *L, uint32_t dt) {
  if (dt == TSR_DTYPE_FLOAT64 && !L->dev->fp64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE,
                  "dtype float64 not supported (the device has no "
                  "cl_khr_fp64)");
  if (!is_float_dtype(dt) && !is_int_dtype(dt))
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported", dtype_name(dt));
  return 0;
}

/* Binary op codes, shared with kernels.cl (BIN_*): from BIN_EQ on, the output is bool. */
enum {
  BIN_ADD,
  BIN_SUB,
  BIN_MUL,
  BIN_DIV,
  BIN_POW,
  BIN_MAX,
  BIN_MIN,
  BIN_PRELU,
  BIN_MOD,
  BIN_FMOD,
  BIN_SHL,
  BIN_SHR,
  BIN_EQ,
  BIN_LT,
  BIN_GT,
  BIN_LE,
  BIN_GE,
  BIN_AND,
  BIN_OR,
  BIN_XOR
};

/* The broadcast parameters of kernels.cl's binary kernels for inputs ins[0..n) and output y:
 * [n, rank, out_dims[rank], strides of each input[rank]]; NULL when out of host memory.
 * Free with free(). */
int32_t *ocl__bcast_params(ocl_lower *L, const int32_t *ins, uint32_t n_ins, int32_t y,
                           size_t *count);
/* Refuses unless input a broadcasts to output y (numpy rules). */
int ocl__broadcastable(ocl_lower *L, int32_t a, int32_t y);

/* Lowering in ops_typed.c, ops_movement.c, ops_nn.c, ops_rnn.c, ops_misc.c, ops_quant.c and
 * ops_signal.c: each returns OCL_LOWER_NOT_MINE when it does not know the op. */
#define OCL_LOWER_NOT_MINE (-2)
int ocl__lower_typed(ocl_lower *L, const char *op);
int ocl__lower_movement(ocl_lower *L, const char *op);
int ocl__lower_nn(ocl_lower *L, const char *op);
int ocl__lower_rnn(ocl_lower *L, const char *op);
int ocl__lower_misc(ocl_lower *L, const char *op);
int ocl__lower_quant(ocl_lower *L, const char *op);
int ocl__lower_signal(ocl_lower *L, const char *op);
/* ops_nd.c: pooling on 1 to 3 spatial axes and every pooling dtype, and 3-D Conv (the body:
 * ops.c applies a fused activation). */
int ocl__lower_pool_nd(ocl_lower *L, bool is_max);
int ocl__lower_conv3d(ocl_lower *L);
int ocl__lower_lp_pool(ocl_lower *L, bool global);
/* ops_nd.c: ConvInteger (ql false) and QLinearConv (ql true), for ops_quant.c. */
int ocl__lower_qconv(ocl_lower *L, bool ql);
/* ops_nn.c: BatchNormalization with training_mode=1 (opset 14+), for ops.c. */
int ocl__lower_batchnorm_training(ocl_lower *L);
/* Pow whose base and exponent dtypes differ (ops_typed.c). */
int ocl__lower_pow_mixed(ocl_lower *L);
/* ops.c's tiled float32 GEMM for Einsum: Y[i] (M x N, batches of M * N elements) = A[i] B[i],
 * A at element a_off[i] of a ([M, K], or [K, M] when tA), B at b_off[i] of b ([K, N], or
 * [N, K] when tB); refuses devices whose work groups are below 256 items. */
int ocl__emit_gemm(ocl_lower *L, int32_t a, int32_t b, int32_t y, int32_t M, int32_t N, int32_t K,
                   int tA, int tB, const int32_t *a_off, const int32_t *b_off, int32_t batches);
/* ops.c's strided copy, for movement ops that are a view of their input. */
int ocl__emit_strided(ocl_lower *L, int32_t x, int32_t y, uint32_t es, uint32_t rank,
                      const int64_t *dims, const int64_t *strides, int64_t base);

#endif /* TESSERA_OPENCL_OPS_UTIL_H */
