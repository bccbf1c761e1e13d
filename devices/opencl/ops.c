/* What each ONNX operator lowers to on OpenCL: the checks that decide supports() and the
 * kernel launches that compile() records. One function per op family decides both (with
 * L->exe == NULL it only checks), so that what supports() accepts is what compile() builds.
 *
 * This file has the float32 compute ops (elementwise with broadcasting, GEMM, convolution and
 * pooling, normalisation, softmax, reductions, resize), the data movement of Transpose, Slice,
 * Concat and Gather, and the dispatch. Elementwise ops and reductions of other dtypes, casts
 * and the like are in ops_typed.c; the other movement and indexing ops in ops_movement.c;
 * ConvTranspose, InstanceNormalization and LRN in ops_nn.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_util.h"

/* ---- Elementwise ----------------------------------------------------------------------- */

enum {
  UN_RELU, UN_SIGMOID, UN_TANH, UN_EXP, UN_LOG, UN_SQRT, UN_ABS, UN_NEG, UN_LEAKY,
  UN_HARDSIGMOID, UN_HARDSWISH, UN_ERF, UN_ELU, UN_SELU, UN_SOFTPLUS, UN_SOFTSIGN,
  UN_RECIPROCAL, UN_FLOOR, UN_CEIL, UN_ROUND, UN_SIN, UN_COS, UN_SIGN, UN_THRESHOLDED, UN_CELU,
  UN_SCALE, UN_COPY, UN_CLIP, UN_TAN, UN_ASIN, UN_ACOS, UN_ATAN, UN_SINH, UN_COSH, UN_ASINH,
  UN_ACOSH, UN_ATANH, UN_SHRINK, UN_SILU, UN_GELU, UN_GELU_TANH /* numbered as in kernels.cl */
};

static int emit_unary(ocl_lower *L, int32_t x, int32_t y, int64_t n, int op, float al, float be) {
  STEP(s, "unary_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_int(L, s, (int32_t)n));
  TRY(ocl__arg_int(L, s, op));
  TRY(ocl__arg_float(L, s, al));
  TRY(ocl__arg_float(L, s, be));
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

int32_t *ocl__bcast_params(ocl_lower *L, const int32_t *ins, uint32_t n_ins, int32_t y,
                           size_t *count) {
  tsr_plugin_value vy = vinfo(L, y);
  uint32_t r = vy.rank;
  *count = 2 + (1 + (size_t)n_ins) * r;
  int32_t *p = calloc(*count + 1, sizeof *p);
  if (!p) return NULL;
  p[0] = (int32_t)count_of(&vy);
  p[1] = (int32_t)r;
  for (uint32_t d = 0; d < r; d++) p[2 + d] = (int32_t)vy.dims[d];
  for (uint32_t side = 0; side < n_ins; side++) {
    tsr_plugin_value v = vinfo(L, ins[side]);
    int64_t stride = 1;
    for (int d = (int)r - 1; d >= 0; d--) {
      int k = d - (int)(r - v.rank);
      int64_t dim = k >= 0 ? v.dims[k] : 1;
      p[2 + r * (1 + side) + d] = dim == 1 && vy.dims[d] != 1 ? 0 : (int32_t)stride;
      if (k >= 0) stride *= dim;
    }
  }
  return p;
}

/* y = op(a, b) with numpy broadcasting of a and b to y's shape. float32 arithmetic runs in
 * binary_f32 (which the fp16 program computes in half); everything else in the typed ebin_*
 * kernels, comparisons and logic writing bool. */
static int emit_binary(ocl_lower *L, int32_t a, int32_t b, int32_t y, int op) {
  tsr_plugin_value va = vinfo(L, a), vy = vinfo(L, y);
  int32_t ins[2] = {a, b};
  size_t np;
  int32_t *p = ocl__bcast_params(L, ins, 2, y, &np);
  if (!p) return refuse(L, OCL_LOWER_DEVICE_ERROR, "out of host memory");
  bool plain = va.dtype == TSR_DTYPE_FLOAT32 && op <= BIN_PRELU;
  char name[32];
  snprintf(name, sizeof name, "%s_%s", plain ? "binary" : "ebin",
           plain ? "f32" : num_suffix(va.dtype));
  uint32_t ein = dtype_size(va.dtype);
  ocl_step *s = ocl__step_kernel(L, name);
  int rc = s ? 0 : OCL_LOWER_DEVICE_ERROR;
  if (!rc) rc = ocl__arg_value(L, s, y, dtype_size(vy.dtype));
  if (!rc) rc = ocl__arg_value(L, s, a, ein);
  if (!rc) rc = ocl__arg_value(L, s, b, ein);
  if (!rc) rc = ocl__arg_params(L, s, p, np);
  if (!rc) rc = ocl__arg_int(L, s, op);
  if (!rc) ocl__launch_1d(s, (uint64_t)p[0]);
  free(p);
  return rc;
}

int ocl__broadcastable(ocl_lower *L, int32_t a, int32_t y) {
  tsr_plugin_value va = vinfo(L, a), vy = vinfo(L, y);
  if (va.rank > vy.rank)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input rank %u above output rank %u", va.rank,
                  vy.rank);
  for (uint32_t k = 0; k < va.rank; k++) {
    int64_t d = va.dims[k], o = vy.dims[k + vy.rank - va.rank];
    if (d != o && d != 1)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input shape does not broadcast to the output");
  }
  return 0;
}

/* Which dtypes each binary op takes (the inputs share one; Pow's may differ, see
 * ocl__lower_pow_mixed), as the CPU plugin has them. */
static int binary_dtype_ok(ocl_lower *L, int op, uint32_t dt) {
  bool is_bool = dt == TSR_DTYPE_BOOL, is_uint = dt == TSR_DTYPE_UINT8 ||
      dt == TSR_DTYPE_UINT16 || dt == TSR_DTYPE_UINT32 || dt == TSR_DTYPE_UINT64;
  if (op == BIN_AND || op == BIN_OR || op == BIN_XOR)
    return is_bool ? 0 : refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported (bool only)",
                                dtype_name(dt));
  if (op == BIN_SHL || op == BIN_SHR)
    return is_uint ? 0 : refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported (unsigned "
                                "integers only)", dtype_name(dt));
  if (is_bool && op == BIN_EQ) return 0;
  return numeric_dtype_ok(L, dt);
}

static int lower_binary(ocl_lower *L, int op) {
  if (L->api->node_opset(L->g, L->node) < 7)
    return refuse(L, TSR_PLUGIN_REASON_OP, "opset below 7 (legacy broadcast) not supported");
  if (n_in(L) != 2 || in_idx(L, 0) < 0 || in_idx(L, 1) < 0 || out_idx(L, 0) < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "expected two inputs and an output");
  int32_t y = out_idx(L, 0);
  tsr_plugin_value va = vinfo(L, in_idx(L, 0)), vb = vinfo(L, in_idx(L, 1)), vy = vinfo(L, y);
  if (op == BIN_MOD) {
    int64_t f = attr_int(L, "fmod", 0);
    if (f != 0 && f != 1) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "fmod must be 0 or 1");
    if (f) op = BIN_FMOD;
  } else if (op == BIN_SHL) {
    const char *dir = attr_str(L, "direction", "");
    if (!strcmp(dir, "RIGHT")) op = BIN_SHR;
    else if (strcmp(dir, "LEFT") != 0)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "direction must be LEFT or RIGHT");
  }
  TRY(ocl__broadcastable(L, in_idx(L, 0), y));
  TRY(ocl__broadcastable(L, in_idx(L, 1), y));
  if (op == BIN_POW && va.dtype != vb.dtype) return ocl__lower_pow_mixed(L);
  if (va.dtype != vb.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "input dtypes %s and %s differ",
                  dtype_name(va.dtype), dtype_name(vb.dtype));
  TRY(binary_dtype_ok(L, op, va.dtype));
  uint32_t want = op >= BIN_EQ ? TSR_DTYPE_BOOL : va.dtype;
  if (vy.dtype != want)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype %s, expected %s",
                  dtype_name(vy.dtype), dtype_name(want));
  if (!L->exe) return 0;
  return emit_binary(L, in_idx(L, 0), in_idx(L, 1), y, op);
}

/* Max, Min, Sum and Mean take one or more inputs; they fold pairwise into the output. */
static int lower_variadic(ocl_lower *L, int op, bool mean) {
  if (L->api->node_opset(L->g, L->node) < 8)
    return refuse(L, TSR_PLUGIN_REASON_OP, "opset below 8 (no broadcasting) not supported");
  uint32_t n = n_in(L);
  int32_t y = out_idx(L, 0);
  if (n == 0 || y < 0) return refuse(L, TSR_PLUGIN_REASON_OTHER, "no inputs or no output");
  tsr_plugin_value vy = vinfo(L, y);
  if (mean) TRY(require_f32(L));
  TRY(numeric_dtype_ok(L, vy.dtype));
  for (uint32_t k = 0; k < n; k++) {
    if (in_idx(L, k) < 0) return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input");
    tsr_plugin_value vk = vinfo(L, in_idx(L, k));
    if (vk.dtype != vy.dtype)
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "input %u of dtype %s, output %s", k,
                    dtype_name(vk.dtype), dtype_name(vy.dtype));
    TRY(ocl__broadcastable(L, in_idx(L, k), y));
  }
  if (!L->exe) return 0;
  if (n == 1) {
    TRY(emit_binary(L, in_idx(L, 0), in_idx(L, 0), y, BIN_MAX));
  } else {
    TRY(emit_binary(L, in_idx(L, 0), in_idx(L, 1), y, op));
    for (uint32_t k = 2; k < n; k++) TRY(emit_binary(L, y, in_idx(L, k), y, op));
  }
  if (mean) TRY(emit_unary(L, y, y, count_of(&vy), UN_SCALE, 1.0f / (float)n, 0.0f));
  return 0;
}

typedef struct unary_def {
  const char *op;
  int code;
  const char *alpha_name;
  float alpha;
  const char *beta_name;
  float beta;
} unary_def;

static const unary_def unary_defs[] = {
    {"Relu", UN_RELU, NULL, 0, NULL, 0},
    {"Sigmoid", UN_SIGMOID, NULL, 0, NULL, 0},
    {"Tanh", UN_TANH, NULL, 0, NULL, 0},
    {"Exp", UN_EXP, NULL, 0, NULL, 0},
    {"Log", UN_LOG, NULL, 0, NULL, 0},
    {"Sqrt", UN_SQRT, NULL, 0, NULL, 0},
    {"Abs", UN_ABS, NULL, 0, NULL, 0},
    {"Neg", UN_NEG, NULL, 0, NULL, 0},
    {"LeakyRelu", UN_LEAKY, "alpha", 0.01f, NULL, 0},
    {"HardSigmoid", UN_HARDSIGMOID, "alpha", 0.2f, "beta", 0.5f},
    {"HardSwish", UN_HARDSWISH, NULL, 0, NULL, 0},
    {"Erf", UN_ERF, NULL, 0, NULL, 0},
    {"Elu", UN_ELU, "alpha", 1.0f, NULL, 0},
    {"Selu", UN_SELU, "alpha", 1.67326319217681884765625f, "gamma", 1.05070102214813232421875f},
    {"Softplus", UN_SOFTPLUS, NULL, 0, NULL, 0},
    {"Softsign", UN_SOFTSIGN, NULL, 0, NULL, 0},
    {"Reciprocal", UN_RECIPROCAL, NULL, 0, NULL, 0},
    {"Floor", UN_FLOOR, NULL, 0, NULL, 0},
    {"Ceil", UN_CEIL, NULL, 0, NULL, 0},
    {"Round", UN_ROUND, NULL, 0, NULL, 0},
    {"Sin", UN_SIN, NULL, 0, NULL, 0},
    {"Cos", UN_COS, NULL, 0, NULL, 0},
    {"Sign", UN_SIGN, NULL, 0, NULL, 0},
    {"ThresholdedRelu", UN_THRESHOLDED, "alpha", 1.0f, NULL, 0},
    {"Celu", UN_CELU, "alpha", 1.0f, NULL, 0},
    {"Tan", UN_TAN, NULL, 0, NULL, 0},
    {"Asin", UN_ASIN, NULL, 0, NULL, 0},
    {"Acos", UN_ACOS, NULL, 0, NULL, 0},
    {"Atan", UN_ATAN, NULL, 0, NULL, 0},
    {"Sinh", UN_SINH, NULL, 0, NULL, 0},
    {"Cosh", UN_COSH, NULL, 0, NULL, 0},
    {"Asinh", UN_ASINH, NULL, 0, NULL, 0},
    {"Acosh", UN_ACOSH, NULL, 0, NULL, 0},
    {"Atanh", UN_ATANH, NULL, 0, NULL, 0},
    {"Shrink", UN_SHRINK, "lambd", 0.5f, "bias", 0.0f},
};

static int lower_unary(ocl_lower *L, const unary_def *d) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0) return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input");
  if (!L->exe) return 0;
  float al = d->alpha_name ? attr_float(L, d->alpha_name, d->alpha) : 0.0f;
  float be = d->beta_name ? attr_float(L, d->beta_name, d->beta) : 0.0f;
  tsr_plugin_value vy = vinfo(L, y);
  return emit_unary(L, x, y, count_of(&vy), d->code, al, be);
}

/* Gelu (opset 20, and what the passes write for GELU spelled out in primitive ops). */
static int lower_gelu(ocl_lower *L) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0) return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input");
  const char *approx = attr_str(L, "approximate", "none");
  int code = !strcmp(approx, "none") ? UN_GELU : !strcmp(approx, "tanh") ? UN_GELU_TANH : -1;
  if (code < 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "approximate '%s' is not 'none' or 'tanh'",
                  approx);
  if (!L->exe) return 0;
  tsr_plugin_value vy = vinfo(L, y);
  return emit_unary(L, x, y, count_of(&vy), code, 0.0f, 0.0f);
}

static int lower_clip(ocl_lower *L) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0) return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input");
  int64_t opset = L->api->node_opset(L->g, L->node);
  int32_t lo = opset >= 11 ? in_idx(L, 1) : -1, hi = opset >= 11 ? in_idx(L, 2) : -1;
  for (int k = 0; k < 2; k++) {
    tsr_plugin_value b = vinfo(L, k ? hi : lo);
    if ((k ? hi : lo) >= 0 && count_of(&b) != 1)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "Clip bounds must be scalars");
  }
  if (!L->exe) return 0;
  tsr_plugin_value vy = vinfo(L, y), vlo = vinfo(L, lo), vhi = vinfo(L, hi);
  int64_t n = count_of(&vy);
  if (opset < 11 || ((lo < 0 || vlo.const_data) && (hi < 0 || vhi.const_data))) {
    float fl = opset < 11 ? attr_float(L, "min", -INFINITY)
                          : lo >= 0 ? *(const float *)vlo.const_data : -INFINITY;
    float fh = opset < 11 ? attr_float(L, "max", INFINITY)
                          : hi >= 0 ? *(const float *)vhi.const_data : INFINITY;
    return emit_unary(L, x, y, n, UN_CLIP, fl, fh);
  }
  STEP(s, "clip_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_value(L, s, lo, 4));
  TRY(ocl__arg_value(L, s, hi, 4));
  TRY(ocl__arg_int(L, s, (int32_t)n));
  TRY(ocl__arg_int(L, s, lo >= 0));
  TRY(ocl__arg_int(L, s, hi >= 0));
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

/* Reshape, Flatten, Squeeze, Unsqueeze, Identity and inference Dropout: a byte copy. */
static int lower_copy(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0 || y < 0) return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  const char *op = L->api->node_op_type(L->g, L->node);
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vx.byte_size != vy.byte_size)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output size differs from the input's");
  if (!strcmp(op, "Dropout")) {
    int32_t t = in_idx(L, 2);
    tsr_plugin_value vt = vinfo(L, t);
    if (t >= 0 && (!vt.const_data || vt.dtype != TSR_DTYPE_BOOL ||
                   *(const uint8_t *)vt.const_data != 0))
      return refuse(L, TSR_PLUGIN_REASON_OTHER, "Dropout in training mode not supported");
    /* The mask of inference is all true (bool; all ones in T before opset 10: float32 only). */
    int32_t mk = out_idx(L, 1);
    tsr_plugin_value vm = vinfo(L, mk);
    if (mk >= 0 && vm.dtype != TSR_DTYPE_BOOL && vm.dtype != TSR_DTYPE_FLOAT32)
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "mask of dtype %s not supported",
                    dtype_name(vm.dtype));
    if (mk >= 0 && count_of(&vm) != count_of(&vx))
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "mask shape differs from the input's");
    if (mk >= 0 && L->exe) {
      float one = 1.0f;
      uint32_t bits;
      memcpy(&bits, &one, sizeof bits);
      bool is_bool = vm.dtype == TSR_DTYPE_BOOL;
      STEP(s, is_bool ? "fill_u8" : "fill_u32");
      TRY(ocl__arg_value(L, s, mk, is_bool ? 1 : 4));
      TRY(ocl__arg_int(L, s, (int32_t)count_of(&vm)));
      TRY(ocl__arg_ulong(L, s, is_bool ? 1 : bits));
      ocl__launch_1d(s, (uint64_t)count_of(&vm));
    }
  }
  if (!L->exe) return 0;
  return ocl__step_copy(L, x, y, vy.byte_size) ? 0 : OCL_LOWER_DEVICE_ERROR;
}

/* ---- MatMul and Gemm ------------------------------------------------------------------- */

#define GEMM_TS 16

static int emit_gemm(ocl_lower *L, int32_t a, int32_t b, int32_t c, int32_t y, int32_t M,
                     int32_t N, int32_t K, int tA, int tB, int32_t crs, int32_t ccs,
                     const int32_t *a_off, const int32_t *b_off, int32_t batches, float alpha,
                     float beta) {
  size_t np = 9 + 2 * (size_t)batches;
  int32_t *p = calloc(np, sizeof *p);
  if (!p) return refuse(L, OCL_LOWER_DEVICE_ERROR, "out of host memory");
  int32_t head[9] = {M, N, K, tA, tB, c >= 0, crs, ccs, batches};
  memcpy(p, head, sizeof head);
  memcpy(p + 9, a_off, (size_t)batches * sizeof *p);
  memcpy(p + 9 + batches, b_off, (size_t)batches * sizeof *p);
  ocl_step *s = ocl__step_kernel(L, "gemm_f32");
  int rc = s ? 0 : OCL_LOWER_DEVICE_ERROR;
  if (!rc) rc = ocl__arg_value(L, s, y, 4);
  if (!rc) rc = ocl__arg_value(L, s, a, 4);
  if (!rc) rc = ocl__arg_value(L, s, b, 4);
  if (!rc) rc = ocl__arg_value(L, s, c, 4);
  if (!rc) rc = ocl__arg_params(L, s, p, np);
  if (!rc) rc = ocl__arg_float(L, s, alpha);
  if (!rc) rc = ocl__arg_float(L, s, beta);
  free(p);
  if (rc) return rc;
  s->dims = 3;
  s->global[0] = ((size_t)N + GEMM_TS - 1) / GEMM_TS * GEMM_TS;
  s->global[1] = ((size_t)M + GEMM_TS - 1) / GEMM_TS * GEMM_TS;
  s->global[2] = (size_t)batches;
  s->local[0] = GEMM_TS;
  s->local[1] = GEMM_TS;
  s->local[2] = 1;
  if (M == 0 || N == 0) s->global[0] = 0;
  return 0;
}

static int gemm_device_ok(ocl_lower *L) {
  if (L->dev->max_work_group < GEMM_TS * GEMM_TS)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "device work groups below %d items",
                  GEMM_TS * GEMM_TS);
  return 0;
}

int ocl__emit_gemm(ocl_lower *L, int32_t a, int32_t b, int32_t y, int32_t M, int32_t N,
                   int32_t K, int tA, int tB, const int32_t *a_off, const int32_t *b_off,
                   int32_t batches) {
  TRY(gemm_device_ok(L));
  return emit_gemm(L, a, b, -1, y, M, N, K, tA, tB, 0, 0, a_off, b_off, batches, 1.0f, 0.0f);
}

static int lower_matmul(ocl_lower *L) {
  TRY(require_f32(L));
  TRY(gemm_device_ok(L));
  int32_t a = in_idx(L, 0), b = in_idx(L, 1), y = out_idx(L, 0);
  tsr_plugin_value va = vinfo(L, a), vb = vinfo(L, b), vy = vinfo(L, y);
  if (va.rank < 1 || vb.rank < 1) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "scalar operand");
  int64_t M = va.rank >= 2 ? va.dims[va.rank - 2] : 1, K = va.dims[va.rank - 1];
  int64_t K2 = vb.rank >= 2 ? vb.dims[vb.rank - 2] : vb.dims[0];
  int64_t N = vb.rank >= 2 ? vb.dims[vb.rank - 1] : 1;
  if (K != K2) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "inner dimensions differ");
  /* Batch dimensions: those of the output before its matrix dimensions. */
  uint32_t ra = va.rank > 2 ? va.rank - 2 : 0, rb = vb.rank > 2 ? vb.rank - 2 : 0;
  uint32_t rbat = ra > rb ? ra : rb;
  int64_t batches = 1;
  int64_t bd[16];
  if (rbat > 16) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank above 18");
  for (uint32_t d = 0; d < rbat; d++) {
    int64_t da = d + ra >= rbat ? va.dims[d + ra - rbat] : 1;
    int64_t db = d + rb >= rbat ? vb.dims[d + rb - rbat] : 1;
    if (da != db && da != 1 && db != 1)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "batch dimensions do not broadcast");
    bd[d] = da > db ? da : db;
    if (da == 0 || db == 0) bd[d] = 0;
    batches *= bd[d];
  }
  if (batches * 2 + 9 > 1 << 24)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "too many batches");
  if (count_of(&vy) != batches * M * N)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "unexpected output shape");
  if (!L->exe || batches == 0) return 0;
  int32_t *off = calloc(2 * (size_t)batches, sizeof *off);
  if (!off) return refuse(L, OCL_LOWER_DEVICE_ERROR, "out of host memory");
  for (int64_t bt = 0; bt < batches; bt++) {
    int64_t rem = bt, oa = 0, ob = 0, sa = M * K, sb = K * N;
    for (int d = (int)rbat - 1; d >= 0; d--) {
      int64_t k = rem % bd[d];
      rem /= bd[d];
      int ka = d - (int)(rbat - ra), kb = d - (int)(rbat - rb);
      if (ka >= 0) {
        if (va.dims[ka] != 1) oa += k * sa;
        sa *= va.dims[ka];
      }
      if (kb >= 0) {
        if (vb.dims[kb] != 1) ob += k * sb;
        sb *= vb.dims[kb];
      }
    }
    off[bt] = (int32_t)oa;
    off[batches + bt] = (int32_t)ob;
  }
  int rc = emit_gemm(L, a, b, -1, y, (int32_t)M, (int32_t)N, (int32_t)K, 0, 0, 0, 0, off,
                     off + batches, (int32_t)batches, 1.0f, 0.0f);
  free(off);
  return rc;
}

static int lower_gemm_body(ocl_lower *L) {
  TRY(require_f32(L));
  TRY(gemm_device_ok(L));
  if (L->api->node_opset(L->g, L->node) < 7)
    return refuse(L, TSR_PLUGIN_REASON_OP, "opset below 7 not supported");
  int32_t a = in_idx(L, 0), b = in_idx(L, 1), c = in_idx(L, 2), y = out_idx(L, 0);
  tsr_plugin_value va = vinfo(L, a), vb = vinfo(L, b), vc = vinfo(L, c);
  if (va.rank != 2 || vb.rank != 2)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "Gemm needs 2-D A and B");
  int tA = attr_int(L, "transA", 0) != 0, tB = attr_int(L, "transB", 0) != 0;
  int64_t M = tA ? va.dims[1] : va.dims[0], K = tA ? va.dims[0] : va.dims[1];
  int64_t N = tB ? vb.dims[0] : vb.dims[1], K2 = tB ? vb.dims[1] : vb.dims[0];
  if (K != K2) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "inner dimensions differ");
  int32_t crs = 0, ccs = 0;
  if (c >= 0) {
    if (vc.rank > 2) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "C of rank above 2");
    int64_t rows = vc.rank == 2 ? vc.dims[0] : 1, cols = vc.rank >= 1 ? vc.dims[vc.rank - 1] : 1;
    if ((rows != 1 && rows != M) || (cols != 1 && cols != N))
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "C does not broadcast to [M, N]");
    crs = rows == 1 ? 0 : (int32_t)cols;
    ccs = cols == 1 ? 0 : 1;
  }
  if (!L->exe) return 0;
  int32_t zero = 0;
  return emit_gemm(L, a, b, c, y, (int32_t)M, (int32_t)N, (int32_t)K, tA, tB, crs, ccs, &zero,
                   &zero, 1, attr_float(L, "alpha", 1.0f), attr_float(L, "beta", 1.0f));
}

/* ---- Convolution and pooling ----------------------------------------------------------- */

/* Spatial geometry of a 1-D or 2-D window op, as 2-D (H = 1 for 1-D). */
typedef struct window {
  int32_t H, W, OH, OW, KH, KW, sh, sw, ph, pw, phe, pwe, dh, dw;
} window;

static int window_geometry(ocl_lower *L, const tsr_plugin_value *x, const tsr_plugin_value *y,
                           const int64_t *kernel, window *w) {
  uint32_t sp = x->rank - 2;
  const int64_t *strides, *pads, *dil;
  size_t ns = attr_ints(L, "strides", &strides), np = attr_ints(L, "pads", &pads),
         nd = attr_ints(L, "dilations", &dil);
  if ((ns && ns != sp) || (np && np != 2 * sp) || (nd && nd != sp))
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "strides, pads or dilations of the wrong length");
  int64_t in[2], out[2], k[2], s[2], pb[2], pe[2], d[2];
  for (uint32_t i = 0; i < 2; i++) {
    bool real = sp == 2 || i == 1;
    uint32_t j = sp == 2 ? i : 0;
    in[i] = real ? x->dims[2 + j] : 1;
    out[i] = real ? y->dims[2 + j] : 1;
    k[i] = real ? kernel[j] : 1;
    s[i] = real && ns ? strides[j] : 1;
    d[i] = real && nd ? dil[j] : 1;
    pb[i] = real && np ? pads[j] : 0;
    pe[i] = real && np ? pads[j + sp] : 0;
    if (k[i] < 1 || s[i] < 1 || d[i] < 1 || pb[i] < 0 || pe[i] < 0)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "invalid kernel, stride, pad or dilation");
  }
  const char *ap = attr_str(L, "auto_pad", "NOTSET");
  if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
    for (int i = 0; i < 2; i++) {
      int64_t total = (out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in[i];
      if (total < 0) total = 0;
      pb[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
      pe[i] = total - pb[i];
    }
  } else if (!strcmp(ap, "VALID")) {
    pb[0] = pb[1] = pe[0] = pe[1] = 0;
  } else if (strcmp(ap, "NOTSET") != 0) {
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "auto_pad '%s' not supported", ap);
  }
  *w = (window){(int32_t)in[0], (int32_t)in[1], (int32_t)out[0], (int32_t)out[1],
                (int32_t)k[0],  (int32_t)k[1],  (int32_t)s[0],   (int32_t)s[1],
                (int32_t)pb[0], (int32_t)pb[1], (int32_t)pe[0],  (int32_t)pe[1],
                (int32_t)d[0],  (int32_t)d[1]};
  return 0;
}

static int lower_conv_body(ocl_lower *L) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), wv = in_idx(L, 1), b = in_idx(L, 2), y = out_idx(L, 0);
  tsr_plugin_value vx = vinfo(L, x), vw = vinfo(L, wv), vb = vinfo(L, b), vy = vinfo(L, y);
  if (vx.rank == 5) return ocl__lower_conv3d(L);
  if (vx.rank != 3 && vx.rank != 4)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "only 1-D, 2-D and 3-D convolutions");
  if (vw.rank != vx.rank || vy.rank != vx.rank)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "weight rank differs from the input's");
  int64_t group = attr_int(L, "group", 1);
  int64_t C = vx.dims[1], OC = vw.dims[0];
  if (group < 1 || C % group || OC % group || vw.dims[1] * group != C || vy.dims[1] != OC)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "channels do not match the groups");
  if (b >= 0 && count_of(&vb) != OC)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "bias size differs from the output channels");
  const int64_t *ks;
  size_t nks = attr_ints(L, "kernel_shape", &ks);
  for (uint32_t i = 0; i < nks && i + 2 < vw.rank; i++)
    if (ks[i] != vw.dims[2 + i])
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "kernel_shape differs from the weights");
  window w;
  TRY(window_geometry(L, &vx, &vy, vw.dims + 2, &w));
  if (!L->exe) return 0;
  /* A pointwise convolution (1x1, stride 1, no padding, one group) is a GEMM per image:
   * Y[n] (OC x HW) = W (OC x C) x X[n] (C x HW) + bias per row; the tiled kernel does it much
   * faster than the direct one. */
  if (w.KH == 1 && w.KW == 1 && w.sh == 1 && w.sw == 1 && w.ph == 0 && w.pw == 0 &&
      w.phe == 0 && w.pwe == 0 && group == 1 && w.OH == w.H && w.OW == w.W &&
      L->dev->max_work_group >= GEMM_TS * GEMM_TS && vx.dims[0] <= 4096) {
    int64_t hw = (int64_t)w.H * w.W, nb = vx.dims[0];
    int32_t *off = calloc(2 * (size_t)nb + 1, sizeof *off);
    if (!off) return refuse(L, OCL_LOWER_DEVICE_ERROR, "out of host memory");
    for (int64_t i = 0; i < nb; i++) off[nb + i] = (int32_t)(i * C * hw);
    int rc = emit_gemm(L, wv, x, b, y, (int32_t)OC, (int32_t)hw, (int32_t)C, 0, 0, 1, 0, off,
                       off + nb, (int32_t)nb, 1.0f, 1.0f);
    free(off);
    return rc;
  }
  int32_t p[17] = {(int32_t)vx.dims[0], (int32_t)C, w.H, w.W, (int32_t)OC, w.OH, w.OW, w.KH,
                   w.KW, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, (int32_t)group, b >= 0};
  /* Depthwise: 16 x 4 work groups over (ow, oh), one plane per n * C (see kernels.cl). */
  bool dw = group == C && OC == C && L->dev->max_work_group >= 64;
  STEP(s, dw ? "dwconv2d_f32" : "conv2d_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_value(L, s, wv, 4));
  TRY(ocl__arg_value(L, s, b, 4));
  TRY(ocl__arg_params(L, s, p, 17));
  if (dw) {
    s->dims = 3;
    s->global[0] = ((size_t)w.OW + 15) / 16 * 16;
    s->global[1] = ((size_t)w.OH + 3) / 4 * 4;
    s->global[2] = (size_t)(vx.dims[0] * C);
    s->local[0] = 16;
    s->local[1] = 4;
    s->local[2] = 1;
    if (w.OW == 0 || w.OH == 0) s->global[0] = 0;
  } else {
    ocl__launch_1d(s, (uint64_t)count_of(&vy));
  }
  return 0;
}

/* Tessera's passes fuse a following activation into Conv and Gemm and say so with the
 * attributes "tessera.activation" and "tessera.activation_params" (PLUGINS.md P-22). Here the
 * fused node runs as the op followed by the activation in place on its output; an activation
 * this plugin does not know is refused. */
static int lower_fused(ocl_lower *L, int (*body)(ocl_lower *)) {
  const char *act = attr_str(L, "tessera.activation", NULL);
  float prm[2] = {0, 0};
  tsr_plugin_attr pa;
  size_t n_prm = 0;
  if (L->api->node_attr(L->g, L->node, "tessera.activation_params", &pa) &&
      pa.type == TSR_PLUGIN_ATTR_FLOATS) {
    n_prm = pa.count;
    for (size_t i = 0; i < n_prm && i < 2; i++) prm[i] = pa.floats[i];
  }
  int code = -1;
  float al = 0, be = 0;
  if (!act) {
    code = -1;
  } else if (!strcmp(act, "relu") && n_prm == 0) {
    code = UN_RELU;
  } else if (!strcmp(act, "hardswish") && n_prm == 0) {
    code = UN_HARDSWISH;
  } else if (!strcmp(act, "leakyrelu") && n_prm == 1) {
    code = UN_LEAKY;
    al = prm[0];
  } else if (!strcmp(act, "hardsigmoid") && n_prm == 2) {
    code = UN_HARDSIGMOID;
    al = prm[0];
    be = prm[1];
  } else if (!strcmp(act, "sigmoid") && n_prm == 0) {
    code = UN_SIGMOID;
  } else if (!strcmp(act, "silu") && n_prm == 0) {
    code = UN_SILU;
  } else if (!strcmp(act, "gelu") && n_prm == 0) {
    code = UN_GELU;
  } else if (!strcmp(act, "gelu_tanh") && n_prm == 0) {
    code = UN_GELU_TANH;
  } else if (!strcmp(act, "clip") && n_prm == 2) {
    code = UN_CLIP;
    al = prm[0];
    be = prm[1];
  } else {
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "fused activation not implemented");
  }
  int rc = body(L);
  if (rc || !L->exe || code < 0) return rc;
  int32_t y = out_idx(L, 0);
  tsr_plugin_value vy = vinfo(L, y);
  return emit_unary(L, y, y, count_of(&vy), code, al, be);
}

static int lower_pool(ocl_lower *L, bool is_max) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0), ind = is_max ? out_idx(L, 1) : -1;
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y), vi = vinfo(L, ind);
  if (x < 0 || y < 0) return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  /* 3-D windows and dtypes other than float32 go to ops_nd.c's kernel. */
  if (vx.rank == 5 || vx.dtype != TSR_DTYPE_FLOAT32) return ocl__lower_pool_nd(L, is_max);
  if (vx.dtype != TSR_DTYPE_FLOAT32 || vy.dtype != TSR_DTYPE_FLOAT32)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported", dtype_name(vx.dtype));
  if (ind >= 0 && vi.dtype != TSR_DTYPE_INT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "Indices of dtype %s", dtype_name(vi.dtype));
  int64_t so = attr_int(L, "storage_order", 0);
  if (so != 0 && so != 1) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "storage_order %lld",
                                        (long long)so);
  if (vx.rank != 3 && vx.rank != 4)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "only 1-D and 2-D pooling");
  const int64_t *ks;
  size_t nks = attr_ints(L, "kernel_shape", &ks);
  if (nks != vx.rank - 2) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "bad kernel_shape");
  if (!is_max && has_attr(L, "dilations")) {
    const int64_t *dl;
    size_t nd = attr_ints(L, "dilations", &dl);
    for (size_t i = 0; i < nd; i++)
      if (dl[i] != 1)
        return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "AveragePool dilations not supported");
  }
  window w;
  TRY(window_geometry(L, &vx, &vy, ks, &w));
  if (!L->exe) return 0;
  int32_t p[17] = {(int32_t)(vx.dims[0] * vx.dims[1]), w.H, w.W, w.OH, w.OW, w.KH, w.KW, w.sh,
                   w.sw, w.ph, w.pw, w.dh, w.dw, is_max,
                   (int32_t)attr_int(L, "count_include_pad", 0), w.phe, w.pwe};
  STEP(s, "pool2d_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_params(L, s, p, 17));
  TRY(ocl__arg_value(L, s, ind, 8));
  TRY(ocl__arg_int(L, s, ind >= 0));
  TRY(ocl__arg_int(L, s, so == 1));
  ocl__launch_1d(s, (uint64_t)count_of(&vy));
  return 0;
}

static int lower_global_pool(ocl_lower *L, bool is_max) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  tsr_plugin_value vx = vinfo(L, x);
  if (vx.rank < 3) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input rank below 3");
  if (!L->exe) return 0;
  int64_t nc = vx.dims[0] * vx.dims[1];
  STEP(s, "global_pool_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_int(L, s, (int32_t)nc));
  TRY(ocl__arg_int(L, s, (int32_t)prod(vx.dims, 2, vx.rank)));
  TRY(ocl__arg_int(L, s, is_max));
  ocl__launch_1d(s, (uint64_t)nc);
  return 0;
}

/* ---- Normalisation and softmax --------------------------------------------------------- */

static int lower_batchnorm(ocl_lower *L) {
  TRY(require_f32(L));
  if (L->api->node_opset(L->g, L->node) < 7)
    return refuse(L, TSR_PLUGIN_REASON_OP, "opset below 7 not supported");
  if (attr_int(L, "training_mode", 0) != 0 && L->api->node_opset(L->g, L->node) >= 14)
    return ocl__lower_batchnorm_training(L);
  for (uint32_t k = 1; k < n_out(L); k++)
    if (out_idx(L, k) >= 0)
      return refuse(L, TSR_PLUGIN_REASON_OTHER, "running_mean/running_var outputs need "
                    "training_mode=1 (opset 14+)");
  if (attr_int(L, "spatial", 1) != 1)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "spatial=0 not supported");
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  tsr_plugin_value vx = vinfo(L, x);
  if (vx.rank < 2) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input rank below 2");
  int64_t C = vx.dims[1];
  for (uint32_t k = 1; k < 5; k++) {
    tsr_plugin_value v = vinfo(L, in_idx(L, k));
    if (in_idx(L, k) < 0 || count_of(&v) != C)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input %u does not have C elements", k);
  }
  if (!L->exe) return 0;
  int64_t n = count_of(&vx);
  STEP(s, "batchnorm_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  for (uint32_t k = 1; k < 5; k++) TRY(ocl__arg_value(L, s, in_idx(L, k), 4));
  TRY(ocl__arg_int(L, s, (int32_t)n));
  TRY(ocl__arg_int(L, s, (int32_t)C));
  TRY(ocl__arg_int(L, s, (int32_t)prod(vx.dims, 2, vx.rank)));
  TRY(ocl__arg_float(L, s, attr_float(L, "epsilon", 1e-5f)));
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

/* Softmax, LogSoftmax and Hardmax (mode 0, 1, 2). Before opset 13 the input is coerced to
 * 2-D at `axis` (default 1); from 13 the op runs along one axis (default -1). */
static int lower_softmax(ocl_lower *L, int mode) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  tsr_plugin_value vx = vinfo(L, x);
  bool legacy = L->api->node_opset(L->g, L->node) < 13;
  if (vx.rank == 0) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "scalar input");
  int64_t axis = norm_axis(attr_int(L, "axis", legacy ? 1 : -1), vx.rank, false);
  if (axis < 0) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
  int64_t outer = prod(vx.dims, 0, (uint32_t)axis);
  int64_t len = legacy ? prod(vx.dims, (uint32_t)axis, vx.rank) : vx.dims[axis];
  int64_t inner = legacy ? 1 : prod(vx.dims, (uint32_t)axis + 1, vx.rank);
  if (!L->exe) return 0;
  STEP(s, "softmax_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_int(L, s, (int32_t)outer));
  TRY(ocl__arg_int(L, s, (int32_t)len));
  TRY(ocl__arg_int(L, s, (int32_t)inner));
  TRY(ocl__arg_int(L, s, mode));
  ocl__launch_1d(s, (uint64_t)(outer * inner));
  return 0;
}

static int lower_layernorm(ocl_lower *L) {
  TRY(require_f32(L));
  if (attr_int(L, "stash_type", 1) != 1)
    return refuse(L, TSR_PLUGIN_REASON_PRECISION, "stash_type other than float32");
  int32_t x = in_idx(L, 0), sc = in_idx(L, 1), b = in_idx(L, 2);
  tsr_plugin_value vx = vinfo(L, x), vs = vinfo(L, sc), vb = vinfo(L, b);
  int64_t axis = norm_axis(attr_int(L, "axis", -1), vx.rank, false);
  if (axis < 0) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
  int64_t rows = prod(vx.dims, 0, (uint32_t)axis), len = prod(vx.dims, (uint32_t)axis, vx.rank);
  if (sc < 0 || count_of(&vs) != len || (b >= 0 && count_of(&vb) != len))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE,
                  "Scale and B must have the normalised shape (no broadcasting)");
  if (!L->exe) return 0;
  int32_t mo = out_idx(L, 1), io = out_idx(L, 2);
  int flags = (b >= 0) | (mo >= 0) << 1 | (io >= 0) << 2;
  STEP(s, "layernorm_f32");
  TRY(ocl__arg_value(L, s, out_idx(L, 0), 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_value(L, s, sc, 4));
  TRY(ocl__arg_value(L, s, b, 4));
  TRY(ocl__arg_value(L, s, mo, 4));
  TRY(ocl__arg_value(L, s, io, 4));
  TRY(ocl__arg_int(L, s, (int32_t)rows));
  TRY(ocl__arg_int(L, s, (int32_t)len));
  TRY(ocl__arg_float(L, s, attr_float(L, "epsilon", 1e-5f)));
  TRY(ocl__arg_int(L, s, flags));
  ocl__launch_1d(s, (uint64_t)rows);
  return 0;
}

/* ---- Reductions ------------------------------------------------------------------------ */

/* Reductions run on float32 and float64 in every mode, and on integers in the modes whose
 * result stays an integer (sum, max, min, prod, sum of squares, L1), wrapping as numpy. */
static int lower_reduce(ocl_lower *L, int mode) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0 || y < 0) return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vx.dtype == TSR_DTYPE_FLOAT16)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype float16 not supported");
  TRY(numeric_dtype_ok(L, vx.dtype));
  if (vy.dtype != vx.dtype) return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype differs");
  /* Integer modes: SUM 0, MAX 2, MIN 3, PROD 4, SUMSQ 5, L1 6 (kernels.cl's RED_*). */
  if (is_int_dtype(vx.dtype) && !(mode == 0 || (mode >= 2 && mode <= 6)))
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported for this reduction",
                  dtype_name(vx.dtype));
  if (vx.rank > 16) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank above 16");
  int64_t axes[16];
  size_t na = 0;
  int32_t ai = in_idx(L, 1);
  bool keep = attr_int(L, "keepdims", 1) != 0;
  if (ai >= 0 && !const_ints(L, ai, axes, 16, &na)) {
    /* Axes computed at run time: with keepdims, the output shape (rank unchanged, 1 where
     * reduced) says which axes reduce. Reducing every dimension of 1 gives the same result,
     * since each element still meets the reduction's function once. With
     * noop_with_empty_axes, the axes tensor's length (known now) says whether to reduce. */
    tsr_plugin_value va = vinfo(L, ai);
    if (!keep || vy.rank != vx.rank)
      return refuse(L, TSR_PLUGIN_REASON_OTHER, "axes must be a constant (or keepdims=1)");
    if (attr_int(L, "noop_with_empty_axes", 0) && count_of(&va) == 0) {
      if (!L->exe) return 0;
      return ocl__step_copy(L, x, y, vy.byte_size) ? 0 : OCL_LOWER_DEVICE_ERROR;
    }
    for (uint32_t d = 0; d < vx.rank; d++)
      if (vy.dims[d] == 1) axes[na++] = d;
  } else if (ai < 0) {
    const int64_t *a;
    na = attr_ints(L, "axes", &a);
    if (na > 16) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "too many axes");
    for (size_t i = 0; i < na; i++) axes[i] = a[i];
  }
  bool reduced[16] = {false};
  if (na == 0) {
    if (attr_int(L, "noop_with_empty_axes", 0)) {
      if (!L->exe) return 0;
      return ocl__step_copy(L, x, y, vy.byte_size) ? 0 : OCL_LOWER_DEVICE_ERROR;
    }
    for (uint32_t d = 0; d < vx.rank; d++) reduced[d] = true;
  }
  for (size_t i = 0; i < na; i++) {
    int64_t a = norm_axis(axes[i], vx.rank, false);
    if (a < 0) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
    reduced[a] = true;
  }
  if (!L->exe) return 0;
  int32_t p[2 + 16 * 4 + 3];
  int32_t kd[16], ksd[16], rd[16], rsd[16];
  int nk = 0, nr = 0;
  int64_t stride = 1, R = 1;
  int64_t strides[16];
  for (int d = (int)vx.rank - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= vx.dims[d];
  }
  for (uint32_t d = 0; d < vx.rank; d++) {
    if (reduced[d]) {
      rd[nr] = (int32_t)vx.dims[d];
      rsd[nr++] = (int32_t)strides[d];
      R *= vx.dims[d];
    } else {
      kd[nk] = (int32_t)vx.dims[d];
      ksd[nk++] = (int32_t)strides[d];
    }
  }
  int q = 0;
  p[q++] = (int32_t)count_of(&vy);
  p[q++] = nk;
  for (int i = 0; i < nk; i++) p[q++] = kd[i];
  for (int i = 0; i < nk; i++) p[q++] = ksd[i];
  p[q++] = nr;
  for (int i = 0; i < nr; i++) p[q++] = rd[i];
  for (int i = 0; i < nr; i++) p[q++] = rsd[i];
  p[q++] = (int32_t)R;
  char name[32];
  snprintf(name, sizeof name, "reduce_%s", num_suffix(vx.dtype));
  uint32_t es = dtype_size(vx.dtype);
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_params(L, s, p, (size_t)q));
  TRY(ocl__arg_int(L, s, mode));
  ocl__launch_1d(s, (uint64_t)count_of(&vy));
  return 0;
}

/* ---- Data movement --------------------------------------------------------------------- */

/* y[i] = x[base + sum(index_d * strides_d)] over y's dims (Transpose and Slice). */
int ocl__emit_strided(ocl_lower *L, int32_t x, int32_t y, uint32_t es, uint32_t rank,
                        const int64_t *dims, const int64_t *strides, int64_t base) {
  int32_t p[3 + 2 * 16];
  int64_t n = prod(dims, 0, rank);
  p[0] = (int32_t)n;
  p[1] = (int32_t)rank;
  p[2] = (int32_t)base;
  for (uint32_t d = 0; d < rank; d++) {
    p[3 + d] = (int32_t)dims[d];
    p[3 + rank + d] = (int32_t)strides[d];
  }
  char name[32];
  snprintf(name, sizeof name, "strided_%s", move_suffix(es));
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_params(L, s, p, 3 + 2 * (size_t)rank));
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

static int lower_transpose(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vx.rank > 16) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank above 16");
  const int64_t *perm;
  size_t np = attr_ints(L, "perm", &perm);
  int64_t pm[16];
  bool seen[16] = {false};
  for (uint32_t d = 0; d < vx.rank; d++) {
    pm[d] = np ? perm[d] : (int64_t)(vx.rank - 1 - d);
    if (np && np != vx.rank) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "bad perm");
    pm[d] = norm_axis(pm[d], vx.rank, false);
    if (pm[d] < 0 || seen[pm[d]]) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "bad perm");
    seen[pm[d]] = true;
  }
  if (!L->exe) return 0;
  int64_t in_strides[16], st[16], stride = 1;
  for (int d = (int)vx.rank - 1; d >= 0; d--) {
    in_strides[d] = stride;
    stride *= vx.dims[d];
  }
  for (uint32_t d = 0; d < vx.rank; d++) st[d] = in_strides[pm[d]];
  return ocl__emit_strided(L, x, y, es, vy.rank, vy.dims, st, 0);
}

static int lower_slice(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vx.rank > 16) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank above 16");
  int64_t starts[16], axes[16], steps[16];
  size_t ns = 0, na = 0, nst = 0;
  if (L->api->node_opset(L->g, L->node) < 10) {
    const int64_t *a;
    ns = attr_ints(L, "starts", &a);
    if (ns > 16) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "too many starts");
    memcpy(starts, a, ns * sizeof *a);
    na = attr_ints(L, "axes", &a);
    if (na > 16) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "too many axes");
    if (na) memcpy(axes, a, na * sizeof *a);
  } else {
    if (!const_ints(L, in_idx(L, 1), starts, 16, &ns) ||
        (in_idx(L, 3) >= 0 && !const_ints(L, in_idx(L, 3), axes, 16, &na)) ||
        (in_idx(L, 4) >= 0 && !const_ints(L, in_idx(L, 4), steps, 16, &nst)))
      return refuse(L, TSR_PLUGIN_REASON_OTHER, "starts, axes and steps must be constants");
  }
  if ((na && na != ns) || (nst && nst != ns))
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "starts, axes and steps differ in length");
  int64_t st[16], stp[16];
  for (uint32_t d = 0; d < vx.rank; d++) {
    st[d] = 0;
    stp[d] = 1;
  }
  for (size_t i = 0; i < ns; i++) {
    int64_t a = norm_axis(na ? axes[i] : (int64_t)i, vx.rank, false);
    if (a < 0) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
    int64_t step = nst ? steps[i] : 1, dim = vx.dims[a], s = starts[i];
    if (step == 0) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "step 0");
    if (s < 0) s += dim;
    if (step > 0) s = s < 0 ? 0 : s > dim ? dim : s;
    else s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
    st[a] = s;
    stp[a] = step;
  }
  if (!L->exe) return 0;
  int64_t strides[16], base = 0, stride = 1;
  for (int d = (int)vx.rank - 1; d >= 0; d--) {
    base += st[d] * stride;
    strides[d] = stride * stp[d];
    stride *= vx.dims[d];
  }
  return ocl__emit_strided(L, x, y, es, vy.rank, vy.dims, strides, base);
}

static int lower_concat(ocl_lower *L) {
  int32_t y = out_idx(L, 0);
  uint32_t es;
  TRY(movement_dtype(L, y, &es));
  tsr_plugin_value vy = vinfo(L, y);
  int64_t axis = norm_axis(attr_int(L, "axis", 0), vy.rank, false);
  if (axis < 0) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
  if (!L->exe) return 0;
  int64_t outer = prod(vy.dims, 0, (uint32_t)axis), inner = prod(vy.dims, (uint32_t)axis + 1, vy.rank);
  int64_t at = 0;
  char name[32];
  snprintf(name, sizeof name, "concat_%s", move_suffix(es));
  for (uint32_t k = 0; k < n_in(L); k++) {
    int32_t x = in_idx(L, k);
    if (x < 0) continue;
    tsr_plugin_value vx = vinfo(L, x);
    int64_t len = vx.rank ? vx.dims[axis] : 1;
    STEP(s, name);
    TRY(ocl__arg_value(L, s, y, es));
    TRY(ocl__arg_value(L, s, x, es));
    TRY(ocl__arg_int(L, s, (int32_t)outer));
    TRY(ocl__arg_int(L, s, (int32_t)(len * inner)));
    TRY(ocl__arg_int(L, s, (int32_t)(vy.dims[axis] * inner)));
    TRY(ocl__arg_int(L, s, (int32_t)(at * inner)));
    ocl__launch_1d(s, (uint64_t)(outer * len * inner));
    at += len;
  }
  return 0;
}

static int lower_gather(ocl_lower *L) {
  int32_t x = in_idx(L, 0), idx = in_idx(L, 1), y = out_idx(L, 0);
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vi = vinfo(L, idx);
  if (vi.dtype != TSR_DTYPE_INT64 && vi.dtype != TSR_DTYPE_INT32)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "indices of dtype %s", dtype_name(vi.dtype));
  if (vx.rank == 0) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "scalar data");
  int64_t axis = norm_axis(attr_int(L, "axis", 0), vx.rank, false);
  if (axis < 0) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
  if (!L->exe) return 0;
  int64_t outer = prod(vx.dims, 0, (uint32_t)axis), inner = prod(vx.dims, (uint32_t)axis + 1, vx.rank);
  int64_t ni = count_of(&vi);
  char name[32];
  snprintf(name, sizeof name, "gather_%s_%s", move_suffix(es),
           vi.dtype == TSR_DTYPE_INT64 ? "i64" : "i32");
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_value(L, s, idx, vi.dtype == TSR_DTYPE_INT64 ? 8 : 4));
  TRY(ocl__arg_int(L, s, (int32_t)outer));
  TRY(ocl__arg_int(L, s, (int32_t)vx.dims[axis]));
  TRY(ocl__arg_int(L, s, (int32_t)ni));
  TRY(ocl__arg_int(L, s, (int32_t)inner));
  TRY(ocl__arg_check(L, s));
  ocl__launch_1d(s, (uint64_t)(outer * ni * inner));
  return 0;
}

/* ---- Resize and Upsample --------------------------------------------------------------- */

static int lower_resize(ocl_lower *L, bool upsample) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vx.dtype != TSR_DTYPE_FLOAT32 || vy.dtype != TSR_DTYPE_FLOAT32)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported", dtype_name(vx.dtype));
  if (vx.rank < 2) return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input rank below 2");
  for (uint32_t d = 0; d + 2 < vx.rank; d++)
    if (vx.dims[d] != vy.dims[d])
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "only the last two axes may be resized");
  int64_t opset = L->api->node_opset(L->g, L->node);
  const char *mode = attr_str(L, "mode", "nearest");
  bool linear = !strcmp(mode, "linear") || !strcmp(mode, "bilinear");
  if (!linear && strcmp(mode, "nearest") != 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "mode '%s' not supported", mode);
  if (attr_int(L, "antialias", 0) != 0 || has_attr(L, "axes") ||
      strcmp(attr_str(L, "keep_aspect_ratio_policy", "stretch"), "stretch") != 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "antialias, axes and aspect policies not supported");
  bool legacy = upsample || opset < 11;
  const char *cm = legacy ? "asymmetric" : attr_str(L, "coordinate_transformation_mode", "half_pixel");
  static const char *const cms[] = {"half_pixel", "asymmetric", "align_corners",
                                    "pytorch_half_pixel", "tf_half_pixel_for_nearest"};
  int cmi = -1;
  for (int i = 0; i < 5; i++)
    if (!strcmp(cm, cms[i])) cmi = i;
  if (cmi < 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "coordinate_transformation_mode '%s' not "
                  "supported", cm);
  const char *nm = legacy ? "floor" : attr_str(L, "nearest_mode", "round_prefer_floor");
  static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  int nmi = -1;
  for (int i = 0; i < 4; i++)
    if (!strcmp(nm, nms[i])) nmi = i;
  if (nmi < 0) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "nearest_mode '%s' not supported", nm);
  /* Scales of the last two axes: from the scales input or attribute when given, else the
   * ratio of output to input sizes. */
  float scale[2];
  int32_t sv = upsample ? (opset >= 9 ? in_idx(L, 1) : -1) : opset >= 11 ? in_idx(L, 2) : in_idx(L, 1);
  tsr_plugin_value vs = vinfo(L, sv);
  const float *sd = NULL;
  tsr_plugin_attr sa;
  if (upsample && opset < 9 && L->api->node_attr(L->g, L->node, "scales", &sa) &&
      sa.type == TSR_PLUGIN_ATTR_FLOATS && sa.count == vx.rank)
    sd = sa.floats;
  if (sv >= 0 && count_of(&vs) > 0) {
    if (!vs.const_data || vs.dtype != TSR_DTYPE_FLOAT32 || count_of(&vs) != vx.rank)
      return refuse(L, TSR_PLUGIN_REASON_OTHER, "scales must be a constant of one per axis");
    sd = vs.const_data;
  }
  for (int i = 0; i < 2; i++) {
    uint32_t d = vx.rank - 2 + (uint32_t)i;
    scale[i] = sd ? sd[d] : vx.dims[d] ? (float)vy.dims[d] / (float)vx.dims[d] : 1.0f;
    if (!(scale[i] > 0)) return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "scale not positive");
  }
  if (!L->exe) return 0;
  int32_t H = vx.rank >= 2 ? (int32_t)vx.dims[vx.rank - 2] : 1, W = (int32_t)vx.dims[vx.rank - 1];
  int32_t p[8] = {(int32_t)prod(vx.dims, 0, vx.rank - 2), H, W,
                  (int32_t)vy.dims[vy.rank - 2], (int32_t)vy.dims[vy.rank - 1], linear, cmi, nmi};
  STEP(s, "resize_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_params(L, s, p, 8));
  TRY(ocl__arg_float(L, s, scale[0]));
  TRY(ocl__arg_float(L, s, scale[1]));
  ocl__launch_1d(s, (uint64_t)count_of(&vy));
  return 0;
}

/* ---- Dispatch -------------------------------------------------------------------------- */

int ocl__lower_node(ocl_lower *L) {
  const char *op = L->api->node_op_type(L->g, L->node);
  const char *domain = L->api->node_domain(L->g, L->node);
  if (domain && *domain && strcmp(domain, "ai.onnx") != 0)
    return refuse(L, TSR_PLUGIN_REASON_OP, "op %s.%s not implemented on OpenCL", domain, op);
  /* Kernels index with 32-bit ints. */
  for (uint32_t side = 0; side < 2; side++)
    for (uint32_t k = 0; k < (side ? n_out(L) : n_in(L)); k++) {
      int32_t v = side ? out_idx(L, k) : in_idx(L, k);
      if (v < 0) continue;
      tsr_plugin_value x = vinfo(L, v);
      if (count_of(&x) > MAX_ELEMS)
        return refuse(L, TSR_PLUGIN_REASON_SHAPE, "tensor '%s' has 2^31 elements or more", x.name);
    }
  int r = ocl__lower_typed(L, op);
  if (r != OCL_LOWER_NOT_MINE) return r;
  r = ocl__lower_movement(L, op);
  if (r != OCL_LOWER_NOT_MINE) return r;
  r = ocl__lower_nn(L, op);
  if (r != OCL_LOWER_NOT_MINE) return r;
  r = ocl__lower_rnn(L, op);
  if (r != OCL_LOWER_NOT_MINE) return r;
  r = ocl__lower_misc(L, op);
  if (r != OCL_LOWER_NOT_MINE) return r;
  r = ocl__lower_quant(L, op);
  if (r != OCL_LOWER_NOT_MINE) return r;
  r = ocl__lower_signal(L, op);
  if (r != OCL_LOWER_NOT_MINE) return r;
  static const struct { const char *op; int code; } binaries[] = {
      {"Add", BIN_ADD}, {"Sub", BIN_SUB}, {"Mul", BIN_MUL}, {"Div", BIN_DIV},
      {"Pow", BIN_POW}, {"PRelu", BIN_PRELU}, {"Mod", BIN_MOD}, {"BitShift", BIN_SHL},
      {"Equal", BIN_EQ}, {"Less", BIN_LT}, {"Greater", BIN_GT}, {"LessOrEqual", BIN_LE},
      {"GreaterOrEqual", BIN_GE}, {"And", BIN_AND}, {"Or", BIN_OR}, {"Xor", BIN_XOR}};
  for (size_t i = 0; i < sizeof binaries / sizeof binaries[0]; i++)
    if (!strcmp(op, binaries[i].op)) return lower_binary(L, binaries[i].code);
  if (!strcmp(op, "Max")) return lower_variadic(L, BIN_MAX, false);
  if (!strcmp(op, "Min")) return lower_variadic(L, BIN_MIN, false);
  if (!strcmp(op, "Sum")) return lower_variadic(L, BIN_ADD, false);
  if (!strcmp(op, "Mean")) return lower_variadic(L, BIN_ADD, true);
  for (size_t i = 0; i < sizeof unary_defs / sizeof unary_defs[0]; i++)
    if (!strcmp(op, unary_defs[i].op)) return lower_unary(L, &unary_defs[i]);
  if (!strcmp(op, "Clip")) return lower_clip(L);
  if (!strcmp(op, "Gelu")) return lower_gelu(L);
  if (!strcmp(op, "Reshape") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") ||
      !strcmp(op, "Unsqueeze") || !strcmp(op, "Identity") || !strcmp(op, "Dropout"))
    return lower_copy(L);
  if (!strcmp(op, "MatMul")) return lower_matmul(L);
  if (!strcmp(op, "Gemm")) return lower_fused(L, lower_gemm_body);
  if (!strcmp(op, "Conv")) return lower_fused(L, lower_conv_body);
  if (!strcmp(op, "MaxPool")) return lower_pool(L, true);
  if (!strcmp(op, "AveragePool")) return lower_pool(L, false);
  if (!strcmp(op, "GlobalAveragePool")) return lower_global_pool(L, false);
  if (!strcmp(op, "GlobalMaxPool")) return lower_global_pool(L, true);
  if (!strcmp(op, "LpPool")) return ocl__lower_lp_pool(L, false);
  if (!strcmp(op, "GlobalLpPool")) return ocl__lower_lp_pool(L, true);
  if (!strcmp(op, "BatchNormalization")) return lower_batchnorm(L);
  if (!strcmp(op, "Softmax")) return lower_softmax(L, 0);
  if (!strcmp(op, "LogSoftmax")) return lower_softmax(L, 1);
  if (!strcmp(op, "Hardmax")) return lower_softmax(L, 2);
  if (!strcmp(op, "LayerNormalization")) return lower_layernorm(L);
  static const char *const reduces[] = {"ReduceSum",  "ReduceMean",      "ReduceMax",
                                        "ReduceMin",  "ReduceProd",      "ReduceSumSquare",
                                        "ReduceL1",   "ReduceL2",        "ReduceLogSum",
                                        "ReduceLogSumExp"};
  for (int i = 0; i < 10; i++)
    if (!strcmp(op, reduces[i])) return lower_reduce(L, i);
  if (!strcmp(op, "Transpose")) return lower_transpose(L);
  if (!strcmp(op, "Slice")) return lower_slice(L);
  if (!strcmp(op, "Concat")) return lower_concat(L);
  if (!strcmp(op, "Gather")) return lower_gather(L);
  if (!strcmp(op, "Resize")) return lower_resize(L, false);
  if (!strcmp(op, "Upsample")) return lower_resize(L, true);
  return refuse(L, TSR_PLUGIN_REASON_OP, "op %s not implemented on OpenCL", op);
}
