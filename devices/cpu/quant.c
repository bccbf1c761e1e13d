/* Quantization: the conversions QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear, and
 * the integer kernels QLinearConv, ConvInteger, QLinearMatMul and MatMulInteger.
 *
 * Exactness comes first, and "exact" means what the ONNX backend tests and ONNX Runtime compute:
 *   - Rounding is to nearest, ties to even, done by adding and subtracting 1.5 * 2^23 (or 2^52
 *     for doubles) after clamping, which vectorises and needs no rounding-mode calls.
 *   - QuantizeLinear divides in float32 (x / scale, as numpy and ONNX Runtime do), clamps, rounds
 *     and adds the zero point. int32 inputs are divided in double, as numpy promotes them.
 *   - Integer products accumulate exactly in 32 bits (wrapping, as the spec allows only there);
 *     requantisation is y = saturate(round(float(acc + bias) * multiplier) + y_zero_point) with
 *     the multiplier x_scale * w_scale / y_scale computed in float32, as ONNX Runtime does.
 *   - DynamicQuantizeLinear follows the ONNX reference: scale and zero point are computed in
 *     double from the float32 extremes and the scale is rounded to float32 once.
 *
 * The integer GEMM works on int16 operands with the zero points already subtracted (values in
 * [-255, 255], so a pair of products always fits int32). Both operands are packed with k in
 * pairs: an A block holds QMR rows as [k/2][row][2] and a B panel holds QNR columns as
 * [k/2][column][2], zero-padded at the edges. The generic tile is plain C that the compiler
 * vectorises; on AVX2 machines a variant multiplies the pairs with vpmaddwd. Convolutions lower
 * each (image, group, column chunk) to im2col rows built in pairs over the chunk and interleaved
 * into B panels; padding contributes 0, as the zero point it stands for does. Constant weights
 * (and constant MatMul B operands) are packed once in prepare(); the executable's state is
 * read-only afterwards, so concurrent runs share it.
 *
 * Where the spec leaves a value open, the choice is fixed here: NaN quantises to the low end of
 * the range; DynamicQuantizeLinear skips NaN when it looks for the range and gives an all-zero
 * or empty input scale 1 and zero point 0 (as ONNX Runtime does) instead of dividing 0 by 0.
 *
 * NOTE: this file holds the whole family (it is over the usual size) because the registry lists
 * one file per family; the integer GEMM would be the part to split out first. */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/nn_util.h"

#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
#define Q_HAVE_AVX2 1
#include <immintrin.h>
#define Q_AVX2 __attribute__((target("avx2")))
#endif

/* Tile of the integer GEMM: QMR rows by QNR columns. */
enum { QMR = 4, QNR = 16 };

/* GCC vectorises at -O2 only loops whose trip count is a multiple of the vector length (its
 * "very cheap" cost model), so the hot elementwise loops run in blocks of Q_BLOCK with a fixed
 * inner count and finish the tail one by one; restrict spares them aliasing checks. */
#define Q_BLOCK 16

/* Bytes of B panels one convolution work item packs (im2col) before multiplying. */
#define Q_CHUNK_BYTES ((size_t)128 << 10)

/* ---- Small helpers --------------------------------------------------------------------- */

static bool q_is8(uint32_t dt) { return dt == TSR_DTYPE_UINT8 || dt == TSR_DTYPE_INT8; }

static void q_limits(uint32_t dt, int32_t *lo, int32_t *hi) {
  *lo = dt == TSR_DTYPE_INT8 ? -128 : 0;
  *hi = dt == TSR_DTYPE_INT8 ? 127 : 255;
}

/* Input k when the node lists it and it is present; NULL for an absent optional input. */
static const cpu_tensor *q_opt(const cpu_node *n, const cpu_tensor *in, uint32_t k) {
  return k < n->n_in && in[k].present ? &in[k] : NULL;
}

/* A per-tensor parameter: a scalar or a one-element vector (ONNX Runtime's reading). */
static bool q_scalarish(const cpu_tensor *t) {
  return t->rank == 0 || (t->rank == 1 && t->dims[0] == 1);
}

static bool q_same_shape(const cpu_tensor *a, const cpu_tensor *b) {
  if (a->rank != b->rank)
    return false;
  for (uint32_t i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i])
      return false;
  return true;
}

/* Element i of a zero point (int8, uint8 or int32); 0 when t is NULL. */
static int32_t q_zp(const cpu_tensor *t, size_t i) {
  if (!t)
    return 0;
  switch (t->dtype) {
  case TSR_DTYPE_INT8: return ((const int8_t *)t->data)[i];
  case TSR_DTYPE_UINT8: return ((const uint8_t *)t->data)[i];
  case TSR_DTYPE_INT32: return ((const int32_t *)t->data)[i];
  default: return 0;
  }
}

static float q_f32(const cpu_tensor *t, size_t i) { return ((const float *)t->data)[i]; }

/* Element i of an 8-bit tensor's data. */
static inline int32_t q_ld8(const void *p, bool is_signed, size_t i) {
  return is_signed ? (int32_t)((const int8_t *)p)[i] : (int32_t)((const uint8_t *)p)[i];
}

/* Round to nearest, ties to even, for |v| <= 2^22 (callers clamp first): adding 1.5 * 2^23
 * pushes the fraction out of the mantissa under the default rounding mode and subtracting it
 * back is exact. Unlike nearbyintf this vectorises at baseline x86-64. */
static inline float q_rne(float v) {
#if FLT_EVAL_METHOD == 0
  return (v + 12582912.0f) - 12582912.0f;
#else /* excess precision (x87) would round the sum elsewhere */
  return nearbyintf(v);
#endif
}

static inline double q_rne_d(double v) {
#if FLT_EVAL_METHOD == 0
  return (v + 6755399441055744.0) - 6755399441055744.0;
#else
  return nearbyint(v);
#endif
}

/* y = saturate(round(f) + zp) for a float already scaled; lo/hi are qmin - zp and qmax - zp.
 * NaN goes to lo (the comparisons are false), so the integer conversion is always defined. */
static inline int32_t q_saturate(float f, float lo, float hi, int32_t zp) {
  f = f > lo ? f : lo;
  f = f < hi ? f : hi;
  return (int32_t)q_rne(f) + zp;
}

/* The requantisation of ONNX Runtime (MlasRequantizeOutput): the int32 sum plus bias, in
 * float, times the float multiplier, clamped, rounded, shifted by the zero point. */
static inline uint8_t q_requant(int32_t acc, int32_t bias, float mult, float lo, float hi,
                                int32_t zp) {
  float f = (float)(int32_t)((uint32_t)acc + (uint32_t)bias) * mult; /* int32 sum, wrapping */
  return (uint8_t)q_saturate(f, lo, hi, zp);
}

/* ---- QuantizeLinear, DequantizeLinear ------------------------------------------------ */

/* x seen as [outer, D, inner]: D is the quantisation axis (1 for per-tensor). */
typedef struct q_axis {
  size_t D, inner;
} q_axis;

static tsr_plugin_reason q_axis_setup(const cpu_node *n, const cpu_tensor *x,
                                      const cpu_tensor *scale, const cpu_tensor *zp, q_axis *ax,
                                      char *msg, size_t size) {
  char s1[96], s2[96];
  nn_dims_str(s1, sizeof s1, scale->rank, scale->dims);
  nn_dims_str(s2, sizeof s2, x->rank, x->dims);
  if (scale->dtype != TSR_DTYPE_FLOAT32)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "scale is %s; float32 is implemented",
                      cpu_dtype_name(scale->dtype));
  ax->D = 1;
  ax->inner = x->count;
  bool per_tensor = q_scalarish(scale);
  if (!per_tensor) {
    if (scale->rank != 1)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_QUANTIZATION,
                        "scale %s: per-tensor (scalar) and per-axis (1-D) quantization are "
                        "implemented, not blocked",
                        s1);
    if (n->opset < 13)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_QUANTIZATION,
                        "scale %s is per-axis, which needs opset 13 (the node has opset %lld)", s1,
                        (long long)n->opset);
    int64_t r = (int64_t)x->rank, axis = cpu_attr_int(n, "axis", 1);
    if (axis < -r || axis >= r)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "axis %lld is out of range for input %s", (long long)axis, s2);
    if (axis < 0)
      axis += r;
    if (scale->dims[0] != x->dims[axis])
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "scale %s does not match input %s along axis %lld", s1, s2,
                        (long long)axis);
    ax->D = (size_t)x->dims[axis];
    ax->inner = nn_prod(x->dims, (size_t)axis + 1, x->rank);
  }
  if (zp) {
    bool ok = per_tensor ? q_scalarish(zp) : (zp->rank == 1 && zp->dims[0] == scale->dims[0]);
    if (!ok)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "zero point %s does not match scale %s",
                        nn_dims_str(s2, sizeof s2, zp->rank, zp->dims), s1);
  }
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason quant_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                     q_axis *ax, char *msg, size_t size) {
  if (n->n_in < 2 || n->n_out < 1 || !in[0].present || !in[1].present || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects inputs x, y_scale and output y");
  const cpu_tensor *x = &in[0], *zp = q_opt(n, in, 2), *y = &out[0];
  if (x->dtype != TSR_DTYPE_FLOAT32 && x->dtype != TSR_DTYPE_INT32)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "input x is %s; float32 and int32 are implemented", cpu_dtype_name(x->dtype));
  if (!q_is8(y->dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "output y is %s; uint8 and int8 are implemented", cpu_dtype_name(y->dtype));
  if (zp && zp->dtype != y->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "zero point is %s but y is %s",
                      cpu_dtype_name(zp->dtype), cpu_dtype_name(y->dtype));
  if (!zp && y->dtype != TSR_DTYPE_UINT8)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "y is %s without a zero point; the default is uint8",
                      cpu_dtype_name(y->dtype));
  if (!q_same_shape(x, y))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "y must have the shape of x");
  return q_axis_setup(n, x, &in[1], zp, ax, msg, size);
}

static tsr_plugin_reason dequant_setup(const cpu_node *n, const cpu_tensor *in,
                                       const cpu_tensor *out, q_axis *ax, char *msg, size_t size) {
  if (n->n_in < 2 || n->n_out < 1 || !in[0].present || !in[1].present || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects inputs x, x_scale and output y");
  const cpu_tensor *x = &in[0], *zp = q_opt(n, in, 2), *y = &out[0];
  if (!q_is8(x->dtype) && x->dtype != TSR_DTYPE_INT32)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "input x is %s; uint8, int8 and int32 are implemented",
                      cpu_dtype_name(x->dtype));
  if (zp && zp->dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "zero point is %s but x is %s",
                      cpu_dtype_name(zp->dtype), cpu_dtype_name(x->dtype));
  if (y->dtype != TSR_DTYPE_FLOAT32)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output y is %s; float32 is implemented",
                      cpu_dtype_name(y->dtype));
  if (!q_same_shape(x, y))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "y must have the shape of x");
  return q_axis_setup(n, x, &in[1], zp, ax, msg, size);
}

static tsr_plugin_reason quant_check(const cpu_node *n, char *msg, size_t size) {
  q_axis ax;
  return quant_setup(n, n->in, n->out, &ax, msg, size);
}

static tsr_plugin_reason dequant_check(const cpu_node *n, char *msg, size_t size) {
  q_axis ax;
  return dequant_setup(n, n->in, n->out, &ax, msg, size);
}

/* y = saturate(round(x / s) + zp) into the bytes of an 8-bit dtype with range [qlo, qhi]. */
static void q_quantize_f32(const float *restrict x, uint8_t *restrict y, size_t n, float s,
                           int32_t zp, int32_t qlo, int32_t qhi) {
  float lo = (float)(qlo - zp), hi = (float)(qhi - zp);
  size_t i = 0;
  for (; i + Q_BLOCK <= n; i += Q_BLOCK)
    for (size_t v = 0; v < Q_BLOCK; v++)
      y[i + v] = (uint8_t)q_saturate(x[i + v] / s, lo, hi, zp);
  for (; i < n; i++)
    y[i] = (uint8_t)q_saturate(x[i] / s, lo, hi, zp);
}

/* y = (x - zp) * s in float32, for each source dtype. */
static void q_dequantize_u8(const uint8_t *restrict x, float *restrict y, size_t n, float s,
                            int32_t zp) {
  size_t i = 0;
  for (; i + Q_BLOCK <= n; i += Q_BLOCK)
    for (size_t v = 0; v < Q_BLOCK; v++)
      y[i + v] = (float)((int32_t)x[i + v] - zp) * s;
  for (; i < n; i++)
    y[i] = (float)((int32_t)x[i] - zp) * s;
}

static void q_dequantize_i8(const int8_t *restrict x, float *restrict y, size_t n, float s,
                            int32_t zp) {
  size_t i = 0;
  for (; i + Q_BLOCK <= n; i += Q_BLOCK)
    for (size_t v = 0; v < Q_BLOCK; v++)
      y[i + v] = (float)((int32_t)x[i + v] - zp) * s;
  for (; i < n; i++)
    y[i] = (float)((int32_t)x[i] - zp) * s;
}

/* int32 values minus an int32 zero point may leave int32; the difference is taken in 64 bits. */
static void q_dequantize_i32(const int32_t *restrict x, float *restrict y, size_t n, float s,
                             int32_t zp) {
  for (size_t i = 0; i < n; i++)
    y[i] = (float)((int64_t)x[i] - zp) * s;
}

/* The same for int32 inputs, in double as numpy computes int32 / float32. */
static void q_quantize_i32(const int32_t *x, uint8_t *y, size_t n, float s, int32_t zp, int32_t qlo,
                           int32_t qhi) {
  double lo = qlo - zp, hi = qhi - zp, ds = s;
  for (size_t i = 0; i < n; i++) {
    double v = (double)x[i] / ds;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    y[i] = (uint8_t)((int32_t)q_rne_d(v) + zp);
  }
}

typedef struct q_elem_job {
  const q_axis *ax;
  const cpu_tensor *x, *scale, *zp;
  cpu_tensor *y;
  bool dequant;
  int32_t qlo, qhi;
} q_elem_job;

/* Elements [begin, end) in runs that share one scale and zero point. */
static void q_elem_task(void *arg, size_t begin, size_t end) {
  const q_elem_job *j = arg;
  size_t pos = begin;
  while (pos < end) {
    size_t row = pos / j->ax->inner, stop = (row + 1) * j->ax->inner;
    if (stop > end)
      stop = end;
    size_t d = row % j->ax->D, len = stop - pos;
    float s = q_f32(j->scale, j->scale->count == 1 ? 0 : d);
    int32_t zp = q_zp(j->zp, j->zp && j->zp->count == 1 ? 0 : d);
    if (j->dequant) {
      float *y = (float *)j->y->data + pos;
      if (j->x->dtype == TSR_DTYPE_UINT8)
        q_dequantize_u8((const uint8_t *)j->x->data + pos, y, len, s, zp);
      else if (j->x->dtype == TSR_DTYPE_INT8)
        q_dequantize_i8((const int8_t *)j->x->data + pos, y, len, s, zp);
      else
        q_dequantize_i32((const int32_t *)j->x->data + pos, y, len, s, zp);
    } else {
      uint8_t *y = (uint8_t *)j->y->data + pos;
      if (j->x->dtype == TSR_DTYPE_FLOAT32)
        q_quantize_f32((const float *)j->x->data + pos, y, len, s, zp, j->qlo, j->qhi);
      else
        q_quantize_i32((const int32_t *)j->x->data + pos, y, len, s, zp, j->qlo, j->qhi);
    }
    pos = stop;
  }
}

static int q_elem_run(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *in, cpu_tensor *out,
                      bool dequant) {
  char msg[256];
  q_axis ax;
  tsr_plugin_reason r = dequant ? dequant_setup(n, in, out, &ax, msg, sizeof msg)
                                : quant_setup(n, in, out, &ax, msg, sizeof msg);
  if (r)
    return cpu_fail(ctx, "%s", msg);
  if (in[0].count == 0)
    return 0;
  q_elem_job j = {.ax = &ax,
                  .x = &in[0],
                  .scale = &in[1],
                  .zp = q_opt(n, in, 2),
                  .y = &out[0],
                  .dequant = dequant};
  q_limits(out[0].dtype, &j.qlo, &j.qhi);
  cpu_parallel_for(ctx, in[0].count, (size_t)1 << 14, q_elem_task, &j);
  return 0;
}

static int quant_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                     cpu_tensor *out) {
  return q_elem_run(ctx, n, in, out, false);
}

static int dequant_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                       cpu_tensor *out) {
  return q_elem_run(ctx, n, in, out, true);
}

/* ---- DynamicQuantizeLinear ------------------------------------------------------------ */

static tsr_plugin_reason dynq_check_io(const cpu_node *n, const cpu_tensor *in,
                                       const cpu_tensor *out, char *msg, size_t size) {
  if (n->n_in < 1 || !in[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects input x");
  if (in[0].dtype != TSR_DTYPE_FLOAT32)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "input x is %s; float32 is implemented",
                      cpu_dtype_name(in[0].dtype));
  static const uint32_t want[3] = {TSR_DTYPE_UINT8, TSR_DTYPE_FLOAT32, TSR_DTYPE_UINT8};
  static const char *const names[3] = {"y", "y_scale", "y_zero_point"};
  for (uint32_t k = 0; k < 3 && k < n->n_out; k++) {
    if (!out[k].present)
      continue;
    if (out[k].dtype != want[k])
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output %s is %s, expected %s",
                        names[k], cpu_dtype_name(out[k].dtype), cpu_dtype_name(want[k]));
    if (k == 0 ? !q_same_shape(&out[0], &in[0]) : out[k].count != 1)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output %s has the wrong shape",
                        names[k]);
  }
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason dynq_check(const cpu_node *n, char *msg, size_t size) {
  return dynq_check_io(n, n->in, n->out, msg, size);
}

enum { DYNQ_MAX_BLOCKS = 256 };

typedef struct dynq_job {
  const float *x;
  size_t n, block;
  float mins[DYNQ_MAX_BLOCKS], maxs[DYNQ_MAX_BLOCKS];
} dynq_job;

/* Extremes of each block, starting from 0 since the range must hold 0 anyway. NaN is skipped
 * (the comparisons are false); written this way, with Q_BLOCK lanes, the loop becomes vector
 * min/max instructions. */
static void dynq_minmax_task(void *arg, size_t begin, size_t end) {
  dynq_job *j = arg;
  for (size_t b = begin; b < end; b++) {
    size_t i = b * j->block, i1 = i + j->block < j->n ? i + j->block : j->n;
    float mn[Q_BLOCK] = {0}, mx[Q_BLOCK] = {0};
    for (; i + Q_BLOCK <= i1; i += Q_BLOCK)
      for (size_t v = 0; v < Q_BLOCK; v++) {
        float x = j->x[i + v];
        mn[v] = x < mn[v] ? x : mn[v];
        mx[v] = x > mx[v] ? x : mx[v];
      }
    for (size_t v = 0; i < i1; i++, v++) {
      float x = j->x[i];
      mn[v] = x < mn[v] ? x : mn[v];
      mx[v] = x > mx[v] ? x : mx[v];
    }
    for (size_t v = 1; v < Q_BLOCK; v++) {
      mn[0] = mn[v] < mn[0] ? mn[v] : mn[0];
      mx[0] = mx[v] > mx[0] ? mx[v] : mx[0];
    }
    j->mins[b] = mn[0];
    j->maxs[b] = mx[0];
  }
}

typedef struct dynq_quant_job {
  const float *x;
  uint8_t *y;
  float scale;
  int32_t zp;
} dynq_quant_job;

static void dynq_quant_task(void *arg, size_t begin, size_t end) {
  const dynq_quant_job *j = arg;
  q_quantize_f32(j->x + begin, j->y + begin, end - begin, j->scale, j->zp, 0, 255);
}

static int dynq_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                    cpu_tensor *out) {
  char msg[256];
  if (dynq_check_io(n, in, out, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  size_t count = in[0].count;
  dynq_job *mm = malloc(sizeof *mm);
  if (!mm)
    return cpu_fail(ctx, "out of memory");
  mm->x = in[0].data;
  mm->n = count;
  mm->block = (size_t)1 << 15;
  if (count > mm->block * DYNQ_MAX_BLOCKS)
    mm->block = (count + DYNQ_MAX_BLOCKS - 1) / DYNQ_MAX_BLOCKS;
  size_t blocks = (count + mm->block - 1) / mm->block;
  cpu_parallel_for(ctx, blocks, 1, dynq_minmax_task, mm);
  float mn = 0.0f, mx = 0.0f;
  for (size_t b = 0; b < blocks; b++) {
    mn = mm->mins[b] < mn ? mm->mins[b] : mn;
    mx = mm->maxs[b] > mx ? mm->maxs[b] : mx;
  }
  free(mm);
  /* As the ONNX reference computes it: (max - min) / 255 in double, rounded to float32 once;
   * zero point round((0 - min) / scale) in double, clamped to [0, 255]. An all-zero (or empty)
   * input would divide 0 by 0; it gets scale 1 and zero point 0, as ONNX Runtime gives it. */
  double dmin = mn, dmax = mx;
  float scale = dmax == dmin ? 1.0f : (float)((dmax - dmin) / 255.0);
  double z = (0.0 - dmin) / (double)scale;
  z = z > 0.0 ? z : 0.0; /* NaN (a scale that underflowed to 0) goes to 0 */
  z = z < 255.0 ? z : 255.0;
  int32_t zp = (int32_t)q_rne_d(z);
  if (n->n_out > 1 && out[1].present)
    *(float *)out[1].data = scale;
  if (n->n_out > 2 && out[2].present)
    *(uint8_t *)out[2].data = (uint8_t)zp;
  if (n->n_out > 0 && out[0].present && count) {
    dynq_quant_job qj = {.x = in[0].data, .y = out[0].data, .scale = scale, .zp = zp};
    cpu_parallel_for(ctx, count, (size_t)1 << 14, dynq_quant_task, &qj);
  }
  return 0;
}

/* ---- The integer GEMM tile --------------------------------------------------------------- */

/* out[QMR][QNR] = A block (kp pairs of k, QMR rows) times B panel (kp pairs, QNR columns). */
typedef void (*q_tile_fn)(size_t kp, const int16_t *ap, const int16_t *bp, int32_t *out);

/* Sums wrap in uint32 so that an overlong accumulation (which the spec lets wrap) is defined.
 * The compiler vectorises the 16-column loop (SSE2 at baseline x86-64); the AVX2 variant below
 * is the fast path. */
static void q_tile_generic(size_t kp, const int16_t *restrict ap, const int16_t *restrict bp,
                           int32_t *restrict out) {
  for (int r = 0; r < QMR; r++) {
    uint32_t acc[QNR] = {0};
    for (size_t p = 0; p < kp; p++) {
      const int16_t *b = bp + p * 2 * QNR;
      int32_t a0 = ap[p * 2 * QMR + 2 * r], a1 = ap[p * 2 * QMR + 2 * r + 1];
      for (int j = 0; j < QNR; j++)
        acc[j] += (uint32_t)(a0 * b[2 * j] + a1 * b[2 * j + 1]);
    }
    for (int j = 0; j < QNR; j++)
      out[r * QNR + j] = (int32_t)acc[j];
  }
}

#ifdef Q_HAVE_AVX2
/* vpmaddwd multiplies the int16 pairs and adds each pair into one int32: 16 products per
 * instruction. Eight accumulators (4 rows by 2 halves of 8 columns) hide its latency. */
Q_AVX2 static void q_tile_avx2(size_t kp, const int16_t *ap, const int16_t *bp, int32_t *out) {
  __m256i c00 = _mm256_setzero_si256(), c01 = _mm256_setzero_si256();
  __m256i c10 = _mm256_setzero_si256(), c11 = _mm256_setzero_si256();
  __m256i c20 = _mm256_setzero_si256(), c21 = _mm256_setzero_si256();
  __m256i c30 = _mm256_setzero_si256(), c31 = _mm256_setzero_si256();
  for (size_t p = 0; p < kp; p++) {
    const int16_t *a = ap + p * 2 * QMR, *b = bp + p * 2 * QNR;
    __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
    __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
    int32_t w0, w1, w2, w3;
    memcpy(&w0, a, 4);
    memcpy(&w1, a + 2, 4);
    memcpy(&w2, a + 4, 4);
    memcpy(&w3, a + 6, 4);
    __m256i a0 = _mm256_set1_epi32(w0), a1 = _mm256_set1_epi32(w1);
    __m256i a2 = _mm256_set1_epi32(w2), a3 = _mm256_set1_epi32(w3);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(a0, b0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(a0, b1));
    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(a1, b0));
    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(a1, b1));
    c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(a2, b0));
    c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(a2, b1));
    c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(a3, b0));
    c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(a3, b1));
  }
  __m256i *o = (__m256i *)out;
  _mm256_storeu_si256(o + 0, c00);
  _mm256_storeu_si256(o + 1, c01);
  _mm256_storeu_si256(o + 2, c10);
  _mm256_storeu_si256(o + 3, c11);
  _mm256_storeu_si256(o + 4, c20);
  _mm256_storeu_si256(o + 5, c21);
  _mm256_storeu_si256(o + 6, c30);
  _mm256_storeu_si256(o + 7, c31);
}
#endif

static q_tile_fn q_pick_tile(const cpu_ctx *ctx) {
#ifdef Q_HAVE_AVX2
  if (ctx && ctx->isa == CPU_ISA_AVX2_FMA)
    return q_tile_avx2;
#endif
  return q_tile_generic;
}

/* int16 elements of one packed A block and of one B panel at depth kp (pairs). */
static size_t q_ablock(size_t kp) { return kp * 2 * QMR; }
static size_t q_bpanel(size_t kp) { return kp * 2 * QNR; }

/* State of the integer kernels: operands packed in prepare(). */
typedef struct q_state {
  int16_t *packed;
} q_state;

static void q_release(void *state) {
  q_state *s = state;
  if (!s)
    return;
  free(s->packed);
  free(s);
}

/* ---- QLinearConv and ConvInteger --------------------------------------------------------- */

typedef struct qconv_plan {
  bool qlinear;
  nn_window w;
  size_t N, C, M, G, cg, mg; /* batch, channels in/out, groups, channels per group in/out */
  size_t kk, K, kp, nrb;     /* kernel elements, depth C/G*kk, pairs, row blocks per group */
  size_t in_sp, out_sp;
  const cpu_tensor *x, *w_t, *xzp, *wzp, *xs, *ws, *ys, *yzp, *bias;
} qconv_plan;

/* Checks a scale or zero point that must be per-tensor. */
static tsr_plugin_reason q_want_scalar(const cpu_tensor *t, const char *name, char *msg,
                                       size_t size) {
  char s1[96];
  if (t && !q_scalarish(t))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_QUANTIZATION,
                      "%s %s must be a scalar (per-tensor)", name,
                      nn_dims_str(s1, sizeof s1, t->rank, t->dims));
  return TSR_PLUGIN_REASON_NONE;
}

/* Checks a weight scale or zero point: per-tensor or one per output channel. */
static tsr_plugin_reason q_want_per_channel(const cpu_tensor *t, const char *name, size_t M,
                                            char *msg, size_t size) {
  char s1[96];
  if (!t || q_scalarish(t))
    return TSR_PLUGIN_REASON_NONE;
  if (t->rank != 1)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_QUANTIZATION,
                      "%s %s must be a scalar or a vector (per output channel)", name,
                      nn_dims_str(s1, sizeof s1, t->rank, t->dims));
  if ((size_t)t->dims[0] != M)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "%s %s should have one value per output channel (%zu)", name,
                      nn_dims_str(s1, sizeof s1, t->rank, t->dims), M);
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason q_want_dtype(const cpu_tensor *t, const char *name, uint32_t dt, char *msg,
                                      size_t size) {
  if (t && t->dtype != dt)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "%s is %s, expected %s", name,
                      cpu_dtype_name(t->dtype), cpu_dtype_name(dt));
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason qconv_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                     bool ql, qconv_plan *p, char *msg, size_t size) {
  char s1[96], s2[96];
  tsr_plugin_reason r;
  memset(p, 0, sizeof *p);
  p->qlinear = ql;
  uint32_t iw = ql ? 3 : 1;
  if (n->n_out < 1 || !out[0].present || !q_opt(n, in, 0) || !q_opt(n, in, iw) ||
      (ql && (!q_opt(n, in, 1) || !q_opt(n, in, 4) || !q_opt(n, in, 6))))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      ql ? "expects inputs x, x_scale, w, w_scale and y_scale"
                         : "expects inputs x and w");
  p->x = &in[0];
  p->w_t = &in[iw];
  p->xzp = q_opt(n, in, 2);
  p->wzp = q_opt(n, in, ql ? 5 : 3);
  if (ql) {
    p->xs = &in[1];
    p->ws = &in[4];
    p->ys = &in[6];
    p->yzp = q_opt(n, in, 7);
    p->bias = q_opt(n, in, 8);
  }
  const cpu_tensor *x = p->x, *wt = p->w_t, *y = &out[0];
  if (!q_is8(x->dtype) || !q_is8(wt->dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "x is %s and w is %s; uint8 and int8 are implemented",
                      cpu_dtype_name(x->dtype), cpu_dtype_name(wt->dtype));
  if ((r = q_want_dtype(p->xzp, "x_zero_point", x->dtype, msg, size)) ||
      (r = q_want_dtype(p->wzp, "w_zero_point", wt->dtype, msg, size)))
    return r;
  if (ql) {
    if ((r = q_want_dtype(p->xs, "x_scale", TSR_DTYPE_FLOAT32, msg, size)) ||
        (r = q_want_dtype(p->ws, "w_scale", TSR_DTYPE_FLOAT32, msg, size)) ||
        (r = q_want_dtype(p->ys, "y_scale", TSR_DTYPE_FLOAT32, msg, size)) ||
        (r = q_want_dtype(p->bias, "B", TSR_DTYPE_INT32, msg, size)))
      return r;
    if (!q_is8(y->dtype))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                        "y is %s; uint8 and int8 are implemented", cpu_dtype_name(y->dtype));
    if ((r = q_want_dtype(p->yzp, "y_zero_point", y->dtype, msg, size)))
      return r;
    if (!p->yzp && y->dtype != TSR_DTYPE_UINT8)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                        "y is %s without a zero point; the default is uint8",
                        cpu_dtype_name(y->dtype));
  } else if (y->dtype != TSR_DTYPE_INT32) {
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "y is %s, expected int32",
                      cpu_dtype_name(y->dtype));
  }
  if (x->rank < 3 || x->rank > 5)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "x has rank %u; 1-D, 2-D and 3-D convolutions (rank 3..5) are implemented",
                      x->rank);
  nn_dims_str(s1, sizeof s1, x->rank, x->dims);
  nn_dims_str(s2, sizeof s2, wt->rank, wt->dims);
  if (wt->rank != x->rank || y->rank != x->rank)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "x %s, w %s and y must share a rank", s1,
                      s2);
  int64_t group = cpu_attr_int(n, "group", 1);
  if (group < 1 || group > NN_ATTR_LIMIT)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "group is %lld", (long long)group);
  int64_t N = x->dims[0], C = x->dims[1], M = wt->dims[0];
  if (C % group != 0 || wt->dims[1] != C / group || M % group != 0)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "w %s does not fit x %s with group %lld",
                      s2, s1, (long long)group);
  if (y->dims[0] != N || y->dims[1] != M)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "y %s should have batch %lld and %lld channels",
                      nn_dims_str(s1, sizeof s1, y->rank, y->dims), (long long)N, (long long)M);
  if ((r = q_want_scalar(p->xzp, "x_zero_point", msg, size)) ||
      (r = q_want_scalar(p->xs, "x_scale", msg, size)) ||
      (r = q_want_scalar(p->ys, "y_scale", msg, size)) ||
      (r = q_want_scalar(p->yzp, "y_zero_point", msg, size)) ||
      (r = q_want_per_channel(p->ws, "w_scale", (size_t)M, msg, size)) ||
      (r = q_want_per_channel(p->wzp, "w_zero_point", (size_t)M, msg, size)))
    return r;
  if (p->bias && (p->bias->rank != 1 || p->bias->dims[0] != M))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "B %s should be [%lld]",
                      nn_dims_str(s1, sizeof s1, p->bias->rank, p->bias->dims), (long long)M);
  int nsp = (int)x->rank - 2;
  if ((r = nn_window_attrs(n, nsp, x->dims + 2, wt->dims + 2, true, &p->w, msg, size)) ||
      (r = nn_window_forward(&p->w, false, msg, size)) ||
      (r = nn_window_match_out(&p->w, y->dims + 2, false, msg, size)))
    return r;
  p->N = (size_t)N;
  p->C = (size_t)C;
  p->M = (size_t)M;
  p->G = (size_t)group;
  p->cg = p->C / p->G;
  p->mg = p->M / p->G;
  p->kk = nn_prod(p->w.k, 0, NN_SP);
  p->K = p->cg * p->kk;
  p->kp = (p->K + 1) / 2;
  p->nrb = (p->mg + QMR - 1) / QMR;
  p->in_sp = nn_prod(p->w.in, 0, NN_SP);
  p->out_sp = nn_prod(p->w.out, 0, NN_SP);
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason qlconv_check(const cpu_node *n, char *msg, size_t size) {
  qconv_plan p;
  return qconv_setup(n, n->in, n->out, true, &p, msg, size);
}

static tsr_plugin_reason convint_check(const cpu_node *n, char *msg, size_t size) {
  qconv_plan p;
  return qconv_setup(n, n->in, n->out, false, &p, msg, size);
}

/* int16 elements of the packed weights: G groups of nrb blocks. */
static size_t qconv_wsize(const qconv_plan *p) { return p->G * p->nrb * q_ablock(p->kp); }

/* Packs the weights (minus their zero points) into A blocks of QMR output channels. */
static void qconv_pack_w(const qconv_plan *p, const void *w, const cpu_tensor *wzp, int16_t *dst) {
  bool sw = p->w_t->dtype == TSR_DTYPE_INT8;
  size_t K = p->K, K2 = 2 * p->kp;
  for (size_t g = 0; g < p->G; g++)
    for (size_t rb = 0; rb < p->nrb; rb++) {
      int16_t *blk = dst + (g * p->nrb + rb) * q_ablock(p->kp);
      for (size_t r = 0; r < QMR; r++) {
        size_t mi = rb * QMR + r, m = g * p->mg + mi;
        bool live = mi < p->mg;
        int32_t zp = live ? q_zp(wzp, wzp && wzp->count > 1 ? m : 0) : 0;
        for (size_t k = 0; k < K2; k++) {
          int32_t v = live && k < K ? q_ld8(w, sw, m * K + k) - zp : 0;
          blk[(k / 2) * 2 * QMR + r * 2 + (k & 1)] = (int16_t)v;
        }
      }
    }
}

static int qconv_prepare_common(const cpu_node *n, void **out_state, bool ql, char *msg,
                                size_t size) {
  *out_state = NULL;
  qconv_plan p;
  if (qconv_setup(n, n->in, n->out, ql, &p, msg, size))
    return -1;
  if (!p.w_t->is_const || !p.w_t->data || (p.wzp && (!p.wzp->is_const || !p.wzp->data)))
    return 0; /* packed at run time */
  q_state *s = calloc(1, sizeof *s);
  if (s)
    s->packed = nn_alloc_aligned(qconv_wsize(&p), sizeof(int16_t));
  if (!s || !s->packed) {
    q_release(s);
    snprintf(msg, size, "out of memory packing the weights");
    return -1;
  }
  qconv_pack_w(&p, p.w_t->data, p.wzp, s->packed);
  *out_state = s;
  return 0;
}

static int qlconv_prepare(const cpu_node *n, void **out_state, char *msg, size_t size) {
  return qconv_prepare_common(n, out_state, true, msg, size);
}

static int convint_prepare(const cpu_node *n, void **out_state, char *msg, size_t size) {
  return qconv_prepare_common(n, out_state, false, msg, size);
}

/* A run of consecutive output positions along one output row. */
typedef struct q_run {
  size_t j0, len;     /* columns of the chunk */
  int64_t bz, by, bx; /* input coordinates of the first position's window, at kernel (0,0,0) */
} q_run;

/* r[u] = x[off + u * s] - zp for u < n: one run of an im2col row. The unit-stride loop runs
 * in blocks of 16 so that the compiler vectorises it. */
static inline void q_copy_run(int16_t *restrict r, const void *x, bool sx, size_t off, int64_t s,
                              int64_t n, int32_t zp) {
  int64_t u = 0;
  if (sx) {
    const int8_t *restrict xp = (const int8_t *)x + off;
    if (s == 1)
      for (; u + Q_BLOCK <= n; u += Q_BLOCK)
        for (int v = 0; v < Q_BLOCK; v++)
          r[u + v] = (int16_t)(xp[u + v] - zp);
    for (; u < n; u++)
      r[u] = (int16_t)(xp[u * s] - zp);
  } else {
    const uint8_t *restrict xp = (const uint8_t *)x + off;
    if (s == 1)
      for (; u + Q_BLOCK <= n; u += Q_BLOCK)
        for (int v = 0; v < Q_BLOCK; v++)
          r[u + v] = (int16_t)(xp[u + v] - zp);
    for (; u < n; u++)
      r[u] = (int16_t)(xp[u * s] - zp);
  }
}

/* dst[2c] = a[c], dst[2c + 1] = b[c]: two im2col rows into one k-pair of a B panel. */
static inline void q_interleave(int16_t *restrict dst, const int16_t *restrict a,
                                const int16_t *restrict b) {
  for (int c = 0; c < QNR; c++) {
    dst[2 * c] = a[c];
    dst[2 * c + 1] = b[c];
  }
}

/* Requantises n <= QNR sums of one output row. */
static inline void q_requant_row(uint8_t *restrict y, const int32_t *restrict acc, size_t n,
                                 int32_t bias, float mult, float lo, float hi, int32_t zp) {
  if (n == QNR) /* the fixed trip count vectorises */
    for (size_t c = 0; c < QNR; c++)
      y[c] = q_requant(acc[c], bias, mult, lo, hi, zp);
  else
    for (size_t c = 0; c < n; c++)
      y[c] = q_requant(acc[c], bias, mult, lo, hi, zp);
}

/* Where row k of the im2col matrix reads: its channel and kernel offset, advanced row by row
 * (kx fastest) so that no division is needed. */
typedef struct q_krow {
  size_t c;
  int64_t kz, ky, kx;
} q_krow;

static void q_krow_next(const nn_window *w, q_krow *k) {
  if (++k->kx < w->k[2])
    return;
  k->kx = 0;
  if (++k->ky < w->k[1])
    return;
  k->ky = 0;
  if (++k->kz < w->k[0])
    return;
  k->kz = 0;
  k->c++;
}

/* Fills one im2col row over the chunk's runs: x - x_zero_point, 0 in the padding. */
static void qconv_fill_row(const qconv_plan *p, const void *x, bool sx, int32_t xzp, size_t chan0,
                           const q_krow *k, const q_run *runs, size_t nruns, int16_t *r) {
  const nn_window *w = &p->w;
  int64_t s = w->s[2];
  size_t xoff = (chan0 + k->c) * p->in_sp;
  for (size_t ri = 0; ri < nruns; ri++) {
    const q_run *ru = &runs[ri];
    int64_t iz = ru->bz + k->kz * w->d[0], iy = ru->by + k->ky * w->d[1];
    int64_t ix0 = ru->bx + k->kx * w->d[2], len = (int64_t)ru->len, lo = 0, hi = len;
    int16_t *dst = r + ru->j0;
    if (iz < 0 || iz >= w->in[0] || iy < 0 || iy >= w->in[1]) {
      lo = hi = 0;
    } else if (ix0 < 0 || ix0 + (len - 1) * s >= w->in[2]) {
      /* At a border: the valid u have 0 <= ix0 + u * s < in[2]. */
      lo = ix0 >= 0 ? 0 : (-ix0 + s - 1) / s;
      hi = ix0 >= w->in[2] ? 0 : (w->in[2] - ix0 + s - 1) / s;
      if (lo > len)
        lo = len;
      if (hi > len)
        hi = len;
      if (hi < lo)
        hi = lo;
    }
    for (int64_t u = 0; u < lo; u++)
      dst[u] = 0;
    if (hi > lo) {
      int64_t at = (iz * w->in[1] + iy) * w->in[2] + ix0 + lo * s; /* >= 0 */
      q_copy_run(dst + lo, x, sx, xoff + (size_t)at, s, hi - lo, xzp);
    }
    for (int64_t u = hi; u < len; u++)
      dst[u] = 0;
  }
}

/* Scratch of one convolution worker: the chunk's B panels, two im2col rows and the runs. */
typedef struct qconv_scratch {
  int16_t *panels, *r0, *r1;
  q_run *runs;
} qconv_scratch;

/* im2col of positions [pos0, pos0 + npos) of image n, group g: rows are built in pairs over the
 * whole chunk (long runs along output rows) and interleaved into the B panels' [k/2][col][2]
 * layout. Columns past npos stay 0. */
static void qconv_im2col(const qconv_plan *p, const void *x, int32_t xzp, size_t n, size_t g,
                         size_t pos0, size_t npos, qconv_scratch *sc) {
  const nn_window *w = &p->w;
  bool sx = p->x->dtype == TSR_DTYPE_INT8;
  size_t np = (npos + QNR - 1) / QNR, psz = q_bpanel(p->kp), chan0 = n * p->C + g * p->cg;
  size_t nruns = 0;
  for (size_t j = 0; j < npos;) {
    size_t pos = pos0 + j;
    int64_t ox = (int64_t)(pos % (size_t)w->out[2]);
    int64_t oy = (int64_t)((pos / (size_t)w->out[2]) % (size_t)w->out[1]);
    int64_t oz = (int64_t)(pos / (size_t)(w->out[2] * w->out[1]));
    size_t len = (size_t)(w->out[2] - ox);
    if (len > npos - j)
      len = npos - j;
    sc->runs[nruns++] =
        (q_run){j, len, oz * w->s[0] - w->pb[0], oy * w->s[1] - w->pb[1], ox * w->s[2] - w->pb[2]};
    j += len;
  }
  memset(sc->r0 + npos, 0, (np * QNR - npos) * sizeof *sc->r0);
  memset(sc->r1 + npos, 0, (np * QNR - npos) * sizeof *sc->r1);
  q_krow kr = {0, 0, 0, 0};
  for (size_t q = 0; q < p->kp; q++) {
    qconv_fill_row(p, x, sx, xzp, chan0, &kr, sc->runs, nruns, sc->r0);
    q_krow_next(w, &kr);
    if (2 * q + 1 < p->K) {
      qconv_fill_row(p, x, sx, xzp, chan0, &kr, sc->runs, nruns, sc->r1);
      q_krow_next(w, &kr);
    } else {
      memset(sc->r1, 0, np * QNR * sizeof *sc->r1);
    }
    for (size_t t = 0; t < np; t++)
      q_interleave(sc->panels + t * psz + q * 2 * QNR, sc->r0 + t * QNR, sc->r1 + t * QNR);
  }
}

typedef struct qconv_job {
  const qconv_plan *p;
  q_tile_fn tile;
  const void *x;
  const int16_t *wp;
  void *y;
  const float *mult;   /* QLinearConv: per output channel */
  const int32_t *bias; /* NULL when absent */
  int32_t xzp, yzp;
  float lo, hi;
  size_t pc, nchunks; /* positions per chunk, chunks per (image, group) */
  atomic_int failed;
} qconv_job;

static void qconv_task(void *arg, size_t begin, size_t end) {
  qconv_job *j = arg;
  const qconv_plan *p = j->p;
  size_t psz = q_bpanel(p->kp), npmax = (j->pc + QNR - 1) / QNR;
  qconv_scratch sc = {.panels = nn_alloc_aligned(npmax * psz, sizeof(int16_t)),
                      .r0 = nn_alloc_aligned(2 * npmax * QNR, sizeof(int16_t)),
                      .runs = malloc((j->pc + 1) * sizeof(q_run))};
  if (!sc.panels || !sc.r0 || !sc.runs) {
    atomic_store(&j->failed, 1);
    free(sc.panels);
    free(sc.r0);
    free(sc.runs);
    return;
  }
  sc.r1 = sc.r0 + npmax * QNR;
  int32_t acc[QMR * QNR];
  for (size_t it = begin; it < end; it++) {
    size_t n = it / (p->G * j->nchunks), g = (it / j->nchunks) % p->G, ch = it % j->nchunks;
    size_t pos0 = ch * j->pc, npos = p->out_sp - pos0 < j->pc ? p->out_sp - pos0 : j->pc;
    size_t np = (npos + QNR - 1) / QNR;
    qconv_im2col(p, j->x, j->xzp, n, g, pos0, npos, &sc);
    for (size_t rb = 0; rb < p->nrb; rb++) {
      const int16_t *wblk = j->wp + (g * p->nrb + rb) * q_ablock(p->kp);
      size_t mr = p->mg - rb * QMR < QMR ? p->mg - rb * QMR : QMR;
      for (size_t t = 0; t < np; t++) {
        size_t nr = npos - t * QNR < QNR ? npos - t * QNR : QNR;
        j->tile(p->kp, wblk, sc.panels + t * psz, acc);
        for (size_t r = 0; r < mr; r++) {
          size_t m = g * p->mg + rb * QMR + r;
          size_t yo = (n * p->M + m) * p->out_sp + pos0 + t * QNR;
          const int32_t *ar = acc + r * QNR;
          if (!p->qlinear) {
            memcpy((int32_t *)j->y + yo, ar, nr * sizeof *ar);
          } else {
            q_requant_row((uint8_t *)j->y + yo, ar, nr, j->bias ? j->bias[m] : 0, j->mult[m], j->lo,
                          j->hi, j->yzp);
          }
        }
      }
    }
  }
  free(sc.panels);
  free(sc.r0);
  free(sc.runs);
}

static int qconv_run_common(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                            cpu_tensor *out, bool ql) {
  char msg[256];
  qconv_plan p;
  if (qconv_setup(n, in, out, ql, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (out[0].count == 0)
    return 0;
  const q_state *st = state;
  int16_t *owned = NULL;
  float *mult = NULL;
  if (!st || !st->packed) {
    owned = nn_alloc_aligned(qconv_wsize(&p), sizeof(int16_t));
    if (!owned)
      return cpu_fail(ctx, "out of memory packing the weights");
    qconv_pack_w(&p, p.w_t->data, p.wzp, owned);
  }
  qconv_job j = {.p = &p,
                 .tile = q_pick_tile(ctx),
                 .x = p.x->data,
                 .wp = owned ? owned : st->packed,
                 .y = out[0].data,
                 .bias = p.bias ? p.bias->data : NULL,
                 .xzp = q_zp(p.xzp, 0)};
  if (ql) {
    mult = malloc(p.M * sizeof *mult);
    if (!mult) {
      free(owned);
      return cpu_fail(ctx, "out of memory");
    }
    /* ONNX Runtime's order: x_scale * w_scale, then / y_scale, in float32. */
    float xs = q_f32(p.xs, 0), ys = q_f32(p.ys, 0);
    for (size_t m = 0; m < p.M; m++) {
      float v = xs * q_f32(p.ws, p.ws->count > 1 ? m : 0);
      mult[m] = v / ys;
    }
    int32_t qlo, qhi;
    q_limits(out[0].dtype, &qlo, &qhi);
    j.yzp = q_zp(p.yzp, 0);
    j.lo = (float)(qlo - j.yzp);
    j.hi = (float)(qhi - j.yzp);
    j.mult = mult;
  }
  /* Positions per work item: the item's panels fit Q_CHUNK_BYTES, and there are enough items
   * to keep every thread busy. */
  size_t per_pos = 2 * p.kp * sizeof(int16_t), pc = Q_CHUNK_BYTES / (per_pos ? per_pos : 1);
  pc = pc / QNR * QNR;
  if (pc < QNR)
    pc = QNR;
  size_t want_items = 4 * cpu_thread_count(ctx), images = p.N * p.G;
  if (images < want_items) {
    size_t per = (want_items + images - 1) / images;
    size_t cap = ((p.out_sp + per - 1) / per + QNR - 1) / QNR * QNR;
    if (cap < pc)
      pc = cap < QNR ? QNR : cap;
  }
  if (pc > p.out_sp)
    pc = p.out_sp;
  j.pc = pc;
  j.nchunks = (p.out_sp + pc - 1) / pc;
  size_t items = p.N * p.G * j.nchunks;
  size_t work = p.mg * p.K * pc + 1;
  cpu_parallel_for(ctx, items, nn_grain(work, (size_t)1 << 16), qconv_task, &j);
  free(owned);
  free(mult);
  if (atomic_load(&j.failed))
    return cpu_fail(ctx, "out of memory for im2col panels");
  return 0;
}

static int qlconv_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  return qconv_run_common(ctx, n, state, in, out, true);
}

static int convint_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                       cpu_tensor *out) {
  return qconv_run_common(ctx, n, state, in, out, false);
}

/* ---- QLinearMatMul and MatMulInteger ----------------------------------------------------- */

enum { QMM_MAX_BATCH_RANK = 16, QMM_CHUNK_PANELS = 16 };

/* How a scale or zero point is indexed: per tensor, per row of A / column of B, and possibly
 * per batch of its operand ([..., M, 1] for A, [..., 1, N] for B). */
typedef struct qmm_param {
  const cpu_tensor *t; /* NULL: absent (zero point 0) */
  bool per_vec;        /* one value per row (A) or column (B) */
  size_t vlen;         /* values per parameter batch */
  int pr;              /* batch rank of the parameter (that of its operand, or 0) */
  int64_t pdims[QMM_MAX_BATCH_RANK];
} qmm_param;

typedef struct qmm_plan {
  bool qlinear;
  size_t m, n, k, kp, batches, npan;
  int obr, abr, bbr;
  int64_t odims[QMM_MAX_BATCH_RANK], adims[QMM_MAX_BATCH_RANK], bdims[QMM_MAX_BATCH_RANK];
  size_t b_nb; /* B's own batch count */
  const cpu_tensor *a, *b, *ys, *yzp;
  qmm_param azp, bzp, as, bs;
} qmm_plan;

/* The linear index, within dims (rank r, right-aligned to odims, 1 = broadcast), of the
 * element that index i of odims (rank obr) reads. */
static size_t q_bcast_index(size_t i, int obr, const int64_t *odims, int r, const int64_t *dims) {
  size_t idx = 0, stride = 1;
  for (int d = obr - 1, e = r - 1; d >= 0; d--, e--) {
    size_t od = (size_t)odims[d], c = i % od;
    i /= od;
    if (e >= 0) {
      if (dims[e] != 1)
        idx += c * stride;
      stride *= (size_t)dims[e];
    }
  }
  return idx;
}

/* Offset into the parameter's values for operand batch ob and row/column v. */
static size_t qmm_param_at(const qmm_param *q, int obr, const int64_t *odims, size_t ob, size_t v) {
  size_t pb = q->pr ? q_bcast_index(ob, obr, odims, q->pr, q->pdims) : 0;
  return pb * q->vlen + (q->per_vec ? v : 0);
}

static tsr_plugin_reason qmm_param_setup(const char *name, const cpu_tensor *t,
                                         const cpu_tensor *op, bool rows, size_t len, qmm_param *q,
                                         char *msg, size_t size) {
  char s1[96], s2[96];
  memset(q, 0, sizeof *q);
  q->t = t;
  q->vlen = 1;
  if (!t || q_scalarish(t))
    return TSR_PLUGIN_REASON_NONE;
  int r = (int)op->rank;
  if (t->rank == 1 && r >= 2 && (size_t)t->dims[0] == len) {
    q->per_vec = true;
    q->vlen = len;
    return TSR_PLUGIN_REASON_NONE;
  }
  if ((int)t->rank == r && r >= 2) {
    int64_t vec = rows ? t->dims[r - 2] : t->dims[r - 1];
    int64_t one = rows ? t->dims[r - 1] : t->dims[r - 2];
    bool ok = one == 1 && ((size_t)vec == len || vec == 1);
    for (int d = 0; ok && d < r - 2; d++)
      ok = t->dims[d] == op->dims[d] || t->dims[d] == 1;
    if (ok) {
      q->per_vec = vec != 1;
      q->vlen = (size_t)vec;
      q->pr = r - 2;
      for (int d = 0; d < r - 2; d++)
        q->pdims[d] = t->dims[d];
      return TSR_PLUGIN_REASON_NONE;
    }
  }
  return cpu_refuse(msg, size, TSR_PLUGIN_REASON_QUANTIZATION,
                    "%s %s must be a scalar, a vector of %zu (per %s) or of shape [..., %s] for "
                    "input %s",
                    name, nn_dims_str(s1, sizeof s1, t->rank, t->dims), len,
                    rows ? "row" : "column", rows ? "M, 1" : "1, N",
                    nn_dims_str(s2, sizeof s2, op->rank, op->dims));
}

static tsr_plugin_reason qmm_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   bool ql, qmm_plan *p, char *msg, size_t size) {
  char s1[96], s2[96], s3[96], s4[96];
  tsr_plugin_reason r;
  memset(p, 0, sizeof *p);
  p->qlinear = ql;
  uint32_t ib = ql ? 3 : 1;
  if (n->n_out < 1 || !out[0].present || !q_opt(n, in, 0) || !q_opt(n, in, ib) ||
      (ql && (!q_opt(n, in, 1) || !q_opt(n, in, 4) || !q_opt(n, in, 6))))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      ql ? "expects inputs a, a_scale, b, b_scale and y_scale"
                         : "expects inputs A and B");
  const cpu_tensor *a = &in[0], *b = &in[ib], *y = &out[0];
  const cpu_tensor *azp = q_opt(n, in, 2), *bzp = q_opt(n, in, ql ? 5 : 3);
  p->a = a;
  p->b = b;
  if (!q_is8(a->dtype) || !q_is8(b->dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "A is %s and B is %s; uint8 and int8 are implemented",
                      cpu_dtype_name(a->dtype), cpu_dtype_name(b->dtype));
  if ((r = q_want_dtype(azp, "a_zero_point", a->dtype, msg, size)) ||
      (r = q_want_dtype(bzp, "b_zero_point", b->dtype, msg, size)))
    return r;
  if (ql) {
    p->ys = &in[6];
    p->yzp = q_opt(n, in, 7);
    if ((r = q_want_dtype(&in[1], "a_scale", TSR_DTYPE_FLOAT32, msg, size)) ||
        (r = q_want_dtype(&in[4], "b_scale", TSR_DTYPE_FLOAT32, msg, size)) ||
        (r = q_want_dtype(p->ys, "y_scale", TSR_DTYPE_FLOAT32, msg, size)))
      return r;
    if (!q_is8(y->dtype))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                        "y is %s; uint8 and int8 are implemented", cpu_dtype_name(y->dtype));
    if ((r = q_want_dtype(p->yzp, "y_zero_point", y->dtype, msg, size)))
      return r;
    if (!p->yzp && y->dtype != TSR_DTYPE_UINT8)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                        "y is %s without a zero point; the default is uint8",
                        cpu_dtype_name(y->dtype));
    if ((r = q_want_scalar(p->ys, "y_scale", msg, size)) ||
        (r = q_want_scalar(p->yzp, "y_zero_point", msg, size)))
      return r;
  } else if (y->dtype != TSR_DTYPE_INT32) {
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "Y is %s, expected int32",
                      cpu_dtype_name(y->dtype));
  }
  if (a->rank < 1 || b->rank < 1)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "matrix product of a scalar");
  int ar = (int)a->rank, br = (int)b->rank;
  int64_t m = ar >= 2 ? a->dims[ar - 2] : 1, k = a->dims[ar - 1];
  int64_t kb = br >= 2 ? b->dims[br - 2] : b->dims[0], nn = br >= 2 ? b->dims[br - 1] : 1;
  nn_dims_str(s1, sizeof s1, a->rank, a->dims);
  nn_dims_str(s2, sizeof s2, b->rank, b->dims);
  if (k != kb)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "inner dims differ: A %s, B %s", s1, s2);
  int abr = ar > 2 ? ar - 2 : 0, bbr = br > 2 ? br - 2 : 0, obr = abr > bbr ? abr : bbr;
  if (obr > QMM_MAX_BATCH_RANK)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "batch rank %d above %d", obr,
                      QMM_MAX_BATCH_RANK);
  int64_t want[QMM_MAX_BATCH_RANK + 2];
  int wr = 0;
  p->batches = 1;
  p->b_nb = 1;
  for (int d = 0; d < obr; d++) {
    int ai = d - (obr - abr), bi = d - (obr - bbr);
    int64_t ad = ai >= 0 ? a->dims[ai] : 1, bd = bi >= 0 ? b->dims[bi] : 1;
    if (ad != bd && ad != 1 && bd != 1)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "batch dims of A %s and B %s do not broadcast", s1, s2);
    p->odims[d] = ad == 1 ? bd : ad;
    p->batches *= (size_t)p->odims[d];
    want[wr++] = p->odims[d];
  }
  for (int d = 0; d < abr; d++)
    p->adims[d] = a->dims[d];
  for (int d = 0; d < bbr; d++) {
    p->bdims[d] = b->dims[d];
    p->b_nb *= (size_t)b->dims[d];
  }
  if (ar >= 2)
    want[wr++] = m;
  if (br >= 2)
    want[wr++] = nn;
  bool same = (int)y->rank == wr;
  for (int d = 0; same && d < wr; d++)
    same = y->dims[d] == want[d];
  if (!same)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "output is %s, expected %s for A %s, B %s",
                      nn_dims_str(s3, sizeof s3, y->rank, y->dims),
                      nn_dims_str(s4, sizeof s4, (uint32_t)wr, want), s1, s2);
  p->obr = obr;
  p->abr = abr;
  p->bbr = bbr;
  p->m = (size_t)m;
  p->n = (size_t)nn;
  p->k = (size_t)k;
  p->kp = (p->k + 1) / 2;
  p->npan = (p->n + QNR - 1) / QNR;
  if ((r = qmm_param_setup("a_zero_point", azp, a, true, p->m, &p->azp, msg, size)) ||
      (r = qmm_param_setup("b_zero_point", bzp, b, false, p->n, &p->bzp, msg, size)))
    return r;
  if (ql && ((r = qmm_param_setup("a_scale", &in[1], a, true, p->m, &p->as, msg, size)) ||
             (r = qmm_param_setup("b_scale", &in[4], b, false, p->n, &p->bs, msg, size))))
    return r;
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason qlmm_check(const cpu_node *n, char *msg, size_t size) {
  qmm_plan p;
  return qmm_setup(n, n->in, n->out, true, &p, msg, size);
}

static tsr_plugin_reason mmint_check(const cpu_node *n, char *msg, size_t size) {
  qmm_plan p;
  return qmm_setup(n, n->in, n->out, false, &p, msg, size);
}

/* int16 elements of all of B packed: b_nb batches of npan panels. */
static size_t qmm_bsize(const qmm_plan *p) { return p->b_nb * p->npan * q_bpanel(p->kp); }

/* Packs panels [t0, t1) of the flattened (B batch, panel) list, minus the column zero points. */
/* Row k of B (columns [col0, col0 + QNR) of one batch, all present) minus zero points. */
static inline void q_brow(int16_t *restrict r, const void *b, bool sb, size_t off,
                          const int32_t *restrict zp) {
  if (sb) {
    const int8_t *restrict bp = (const int8_t *)b + off;
    for (int c = 0; c < QNR; c++)
      r[c] = (int16_t)(bp[c] - zp[c]);
  } else {
    const uint8_t *restrict bp = (const uint8_t *)b + off;
    for (int c = 0; c < QNR; c++)
      r[c] = (int16_t)(bp[c] - zp[c]);
  }
}

static void qmm_pack_b(const qmm_plan *p, const void *b, const cpu_tensor *bzp, size_t t0,
                       size_t t1, int16_t *dst) {
  bool sb = p->b->dtype == TSR_DTYPE_INT8;
  for (size_t it = t0; it < t1; it++) {
    size_t bb = it / p->npan, t = it % p->npan, col0 = t * QNR;
    size_t nr = p->n - col0 < QNR ? p->n - col0 : QNR;
    int16_t *pan = dst + it * q_bpanel(p->kp);
    int32_t zp[QNR] = {0};
    if (bzp)
      for (size_t c = 0; c < nr; c++)
        zp[c] = q_zp(bzp, qmm_param_at(&p->bzp, p->bbr, p->bdims, bb, col0 + c));
    int16_t r0[QNR] = {0}, r1[QNR] = {0};
    for (size_t q = 0; q < p->kp; q++) {
      for (size_t h = 0; h < 2; h++) {
        size_t k = 2 * q + h;
        int16_t *r = h ? r1 : r0;
        size_t off = (bb * p->k + k) * p->n + col0;
        if (k >= p->k)
          memset(r, 0, QNR * sizeof *r);
        else if (nr == QNR)
          q_brow(r, b, sb, off, zp);
        else
          for (size_t c = 0; c < nr; c++)
            r[c] = (int16_t)(q_ld8(b, sb, off + c) - zp[c]);
      }
      q_interleave(pan + q * 2 * QNR, r0, r1);
    }
  }
}

typedef struct qmm_pack_job {
  const qmm_plan *p;
  const void *b;
  const cpu_tensor *bzp;
  int16_t *dst;
} qmm_pack_job;

static void qmm_pack_task(void *arg, size_t begin, size_t end) {
  const qmm_pack_job *j = arg;
  qmm_pack_b(j->p, j->b, j->bzp, begin, end, j->dst);
}

static int qmm_prepare_common(const cpu_node *n, void **out_state, bool ql, char *msg,
                              size_t size) {
  *out_state = NULL;
  qmm_plan p;
  if (qmm_setup(n, n->in, n->out, ql, &p, msg, size))
    return -1;
  const cpu_tensor *bzp = p.bzp.t;
  if (!p.b->is_const || !p.b->data || (bzp && (!bzp->is_const || !bzp->data)) || qmm_bsize(&p) == 0)
    return 0;
  q_state *s = calloc(1, sizeof *s);
  if (s)
    s->packed = nn_alloc_aligned(qmm_bsize(&p), sizeof(int16_t));
  if (!s || !s->packed) {
    q_release(s);
    snprintf(msg, size, "out of memory packing B");
    return -1;
  }
  qmm_pack_b(&p, p.b->data, bzp, 0, p.b_nb * p.npan, s->packed);
  *out_state = s;
  return 0;
}

static int qlmm_prepare(const cpu_node *n, void **out_state, char *msg, size_t size) {
  return qmm_prepare_common(n, out_state, true, msg, size);
}

static int mmint_prepare(const cpu_node *n, void **out_state, char *msg, size_t size) {
  return qmm_prepare_common(n, out_state, false, msg, size);
}

/* Requantises n <= QNR sums of one output row with per-column multipliers, formed in ONNX
 * Runtime's order: a_scale * b_scale, then / y_scale, in float32. */
static void q_requant_cols(uint8_t *restrict y, const int32_t *restrict acc, size_t n, float as,
                           const float *restrict bs, float ys, float lo, float hi, int32_t zp) {
  float mult[QNR];
  for (int c = 0; c < QNR; c++) {
    float v = as * bs[c];
    mult[c] = v / ys;
  }
  if (n == QNR)
    for (size_t c = 0; c < QNR; c++)
      y[c] = q_requant(acc[c], 0, mult[c], lo, hi, zp);
  else
    for (size_t c = 0; c < n; c++)
      y[c] = q_requant(acc[c], 0, mult[c], lo, hi, zp);
}

typedef struct qmm_job {
  const qmm_plan *p;
  q_tile_fn tile;
  const void *a;
  const int16_t *bp;
  void *y;
  size_t nrb, ncc;
  float ys, lo, hi;
  int32_t yzp;
  atomic_int failed;
} qmm_job;

/* Items are (output batch, block of QMR rows, chunk of QMM_CHUNK_PANELS panels). */
static void qmm_task(void *arg, size_t begin, size_t end) {
  qmm_job *j = arg;
  const qmm_plan *p = j->p;
  bool sa = p->a->dtype == TSR_DTYPE_INT8;
  int16_t *ap = nn_alloc_aligned(q_ablock(p->kp), sizeof(int16_t));
  if (!ap) {
    atomic_store(&j->failed, 1);
    return;
  }
  int32_t acc[QMR * QNR];
  size_t packed_key = SIZE_MAX, K2 = 2 * p->kp, psz = q_bpanel(p->kp);
  for (size_t it = begin; it < end; it++) {
    size_t bt = it / (j->nrb * j->ncc), rb = (it / j->ncc) % j->nrb, cc = it % j->ncc;
    size_t ab = q_bcast_index(bt, p->obr, p->odims, p->abr, p->adims);
    size_t bb = q_bcast_index(bt, p->obr, p->odims, p->bbr, p->bdims);
    size_t row0 = rb * QMR, mr = p->m - row0 < QMR ? p->m - row0 : QMR;
    float as[QMR] = {0};
    if (packed_key != it / j->ncc) { /* the A block of (batch, rows) */
      packed_key = it / j->ncc;
      for (size_t r = 0; r < QMR; r++) {
        bool live = r < mr;
        int32_t zp = live && p->azp.t
                         ? q_zp(p->azp.t, qmm_param_at(&p->azp, p->abr, p->adims, ab, row0 + r))
                         : 0;
        for (size_t k = 0; k < K2; k++) {
          int32_t v =
              live && k < p->k ? q_ld8(j->a, sa, (ab * p->m + row0 + r) * p->k + k) - zp : 0;
          ap[(k / 2) * 2 * QMR + 2 * r + (k & 1)] = (int16_t)v;
        }
      }
    }
    if (p->qlinear)
      for (size_t r = 0; r < mr; r++)
        as[r] = q_f32(p->as.t, qmm_param_at(&p->as, p->abr, p->adims, ab, row0 + r));
    size_t t0 = cc * QMM_CHUNK_PANELS, t1 = t0 + QMM_CHUNK_PANELS;
    if (t1 > p->npan)
      t1 = p->npan;
    for (size_t t = t0; t < t1; t++) {
      size_t col0 = t * QNR, nr = p->n - col0 < QNR ? p->n - col0 : QNR;
      j->tile(p->kp, ap, j->bp + (bb * p->npan + t) * psz, acc);
      float bsc[QNR] = {0};
      if (p->qlinear)
        for (size_t c = 0; c < nr; c++)
          bsc[c] = q_f32(p->bs.t, qmm_param_at(&p->bs, p->bbr, p->bdims, bb, col0 + c));
      for (size_t r = 0; r < mr; r++) {
        size_t yo = (bt * p->m + row0 + r) * p->n + col0;
        const int32_t *ar = acc + r * QNR;
        if (!p->qlinear) {
          memcpy((int32_t *)j->y + yo, ar, nr * sizeof *ar);
          continue;
        }
        q_requant_cols((uint8_t *)j->y + yo, ar, nr, as[r], bsc, j->ys, j->lo, j->hi, j->yzp);
      }
    }
  }
  free(ap);
}

static int qmm_run_common(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                          cpu_tensor *out, bool ql) {
  char msg[256];
  qmm_plan p;
  if (qmm_setup(n, in, out, ql, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (out[0].count == 0)
    return 0;
  const q_state *st = state;
  int16_t *owned = NULL;
  if (!st || !st->packed) {
    owned = nn_alloc_aligned(qmm_bsize(&p), sizeof(int16_t));
    if (!owned)
      return cpu_fail(ctx, "out of memory packing B");
    qmm_pack_job pj = {.p = &p, .b = p.b->data, .bzp = p.bzp.t, .dst = owned};
    cpu_parallel_for(ctx, p.b_nb * p.npan, nn_grain(q_bpanel(p.kp), (size_t)1 << 15), qmm_pack_task,
                     &pj);
  }
  qmm_job j = {.p = &p,
               .tile = q_pick_tile(ctx),
               .a = p.a->data,
               .bp = owned ? owned : st->packed,
               .y = out[0].data,
               .nrb = (p.m + QMR - 1) / QMR,
               .ncc = (p.npan + QMM_CHUNK_PANELS - 1) / QMM_CHUNK_PANELS};
  if (ql) {
    int32_t qlo, qhi;
    q_limits(out[0].dtype, &qlo, &qhi);
    j.ys = q_f32(p.ys, 0);
    j.yzp = q_zp(p.yzp, 0);
    j.lo = (float)(qlo - j.yzp);
    j.hi = (float)(qhi - j.yzp);
  }
  size_t items = p.batches * j.nrb * j.ncc;
  size_t work = QMR * p.k * QMM_CHUNK_PANELS * QNR + 1;
  cpu_parallel_for(ctx, items, nn_grain(work, (size_t)1 << 16), qmm_task, &j);
  free(owned);
  if (atomic_load(&j.failed))
    return cpu_fail(ctx, "out of memory");
  return 0;
}

static int qlmm_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                    cpu_tensor *out) {
  return qmm_run_common(ctx, n, state, in, out, true);
}

static int mmint_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                     cpu_tensor *out) {
  return qmm_run_common(ctx, n, state, in, out, false);
}

/* Opsets 10 to 17, as for the other CPU families. QuantizeLinear and DequantizeLinear have
 * versions 10 and 13 (per-axis) in this range, the others one version each; the next changes
 * are at opset 19 (Q/DQ: float16, float8, blocked) and 21 (QLinearMatMul), so version 13's
 * code would serve opset 18 unchanged. */
static const cpu_op quant_ops[] = {
    {"QuantizeLinear", "", 10, 17, quant_check, NULL, quant_run, NULL},
    {"DequantizeLinear", "", 10, 17, dequant_check, NULL, dequant_run, NULL},
    {"DynamicQuantizeLinear", "", 11, 17, dynq_check, NULL, dynq_run, NULL},
    {"QLinearConv", "", 10, 17, qlconv_check, qlconv_prepare, qlconv_run, q_release},
    {"ConvInteger", "", 10, 17, convint_check, convint_prepare, convint_run, q_release},
    {"QLinearMatMul", "", 10, 17, qlmm_check, qlmm_prepare, qlmm_run, q_release},
    {"MatMulInteger", "", 10, 17, mmint_check, mmint_prepare, mmint_run, q_release},
};

const cpu_op_list cpu_ops_quant = {quant_ops, sizeof quant_ops / sizeof quant_ops[0]};
