/* Lowering of the ops that run on dtypes other than float32 (or that produce bool or int64):
 * Pow of mixed dtypes, Not, IsNaN, IsInf, integer Clip, Where, Cast and CastLike, ArgMax,
 * ArgMin, TopK, OneHot, CumSum, QuantizeLinear and DequantizeLinear. The kernels are the typed
 * families at the end of kernels.cl; their dtype rules follow the CPU plugin's
 * (devices/cpu/elementwise.c, shape_ops.c, reduce.c, quant.c). */
#include "ops_util.h"

/* Pow with a base of float32, float64, int32 or int64 and an exponent of another numeric
 * dtype; the output has the base's dtype. */
int ocl__lower_pow_mixed(ocl_lower *L) {
  int32_t a = in_idx(L, 0), e = in_idx(L, 1), y = out_idx(L, 0);
  tsr_plugin_value va = vinfo(L, a), ve = vinfo(L, e), vy = vinfo(L, y);
  if (va.dtype != TSR_DTYPE_FLOAT32 && va.dtype != TSR_DTYPE_FLOAT64 &&
      va.dtype != TSR_DTYPE_INT32 && va.dtype != TSR_DTYPE_INT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE,
                  "Pow base of dtype %s with a %s exponent not "
                  "supported",
                  dtype_name(va.dtype), dtype_name(ve.dtype));
  TRY(numeric_dtype_ok(L, va.dtype));
  TRY(numeric_dtype_ok(L, ve.dtype));
  if (vy.dtype != va.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype %s, expected %s", dtype_name(vy.dtype),
                  dtype_name(va.dtype));
  if (!L->exe)
    return 0;
  int32_t ins[2] = {a, e};
  size_t np;
  int32_t *p = ocl__bcast_params(L, ins, 2, y, &np);
  if (!p)
    return refuse(L, OCL_LOWER_DEVICE_ERROR, "out of host memory");
  char name[32];
  snprintf(name, sizeof name, "pow_%s", num_suffix(va.dtype));
  ocl_step *s = ocl__step_kernel(L, name);
  int rc = s ? 0 : OCL_LOWER_DEVICE_ERROR;
  if (!rc)
    rc = ocl__arg_value(L, s, y, dtype_size(vy.dtype));
  if (!rc)
    rc = ocl__arg_value(L, s, a, dtype_size(va.dtype));
  if (!rc)
    rc = ocl__arg_value(L, s, e, dtype_size(ve.dtype));
  if (!rc)
    rc = ocl__arg_params(L, s, p, np);
  if (!rc)
    rc = ocl__arg_int(L, s, (int32_t)ve.dtype);
  if (!rc)
    rc = ocl__arg_int(L, s, is_float_dtype(ve.dtype));
  if (!rc)
    ocl__launch_1d(s, (uint64_t)p[0]);
  free(p);
  return rc;
}

/* One input, one output of the same shape; checks their dtypes. */
static int unary_io(ocl_lower *L, uint32_t in_dt, uint32_t out_dt, int32_t *x, int32_t *y) {
  *x = in_idx(L, 0);
  *y = out_idx(L, 0);
  if (*x < 0 || *y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, *x), vy = vinfo(L, *y);
  if (vx.dtype != in_dt || vy.dtype != out_dt)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtypes %s -> %s not supported", dtype_name(vx.dtype),
                  dtype_name(vy.dtype));
  if (count_of(&vx) != count_of(&vy))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output size differs from the input's");
  return 0;
}

static int lower_not(ocl_lower *L) {
  int32_t x, y;
  TRY(unary_io(L, TSR_DTYPE_BOOL, TSR_DTYPE_BOOL, &x, &y));
  if (!L->exe)
    return 0;
  tsr_plugin_value vy = vinfo(L, y);
  STEP(s, "not_b8");
  TRY(ocl__arg_value(L, s, y, 1));
  TRY(ocl__arg_value(L, s, x, 1));
  TRY(ocl__arg_int(L, s, (int32_t)count_of(&vy)));
  ocl__launch_1d(s, (uint64_t)count_of(&vy));
  return 0;
}

/* IsNaN (is_inf false) and IsInf with detect_negative / detect_positive. */
static int lower_fclass(ocl_lower *L, bool is_inf) {
  int32_t x = in_idx(L, 0);
  tsr_plugin_value vx = vinfo(L, x);
  if (!is_float_dtype(vx.dtype))
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported", dtype_name(vx.dtype));
  TRY(numeric_dtype_ok(L, vx.dtype));
  int32_t y;
  TRY(unary_io(L, vx.dtype, TSR_DTYPE_BOOL, &x, &y));
  if (!L->exe)
    return 0;
  int flags = (attr_int(L, "detect_negative", 1) != 0) | (attr_int(L, "detect_positive", 1) != 0)
                                                             << 1;
  char name[32];
  snprintf(name, sizeof name, "fclass_%s", num_suffix(vx.dtype));
  int64_t n = count_of(&vx);
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, 1));
  TRY(ocl__arg_value(L, s, x, dtype_size(vx.dtype)));
  TRY(ocl__arg_int(L, s, (int32_t)n));
  TRY(ocl__arg_int(L, s, is_inf));
  TRY(ocl__arg_int(L, s, flags));
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

/* Clip on integers (opset 12+): the bounds are optional scalar tensors of the input's dtype. */
static int lower_clip_int(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y;
  tsr_plugin_value vx = vinfo(L, x);
  TRY(unary_io(L, vx.dtype, vx.dtype, &x, &y));
  int32_t b[2] = {in_idx(L, 1), in_idx(L, 2)};
  for (int k = 0; k < 2; k++) {
    tsr_plugin_value vb = vinfo(L, b[k]);
    if (b[k] >= 0 && (count_of(&vb) != 1 || vb.dtype != vx.dtype))
      return refuse(L, TSR_PLUGIN_REASON_SHAPE,
                    "Clip bounds must be scalars of the input's "
                    "dtype");
  }
  if (!L->exe)
    return 0;
  uint32_t es = dtype_size(vx.dtype);
  int64_t n = count_of(&vx);
  char name[32];
  snprintf(name, sizeof name, "clip_%s", num_suffix(vx.dtype));
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_value(L, s, b[0], es));
  TRY(ocl__arg_value(L, s, b[1], es));
  TRY(ocl__arg_int(L, s, (int32_t)n));
  TRY(ocl__arg_int(L, s, b[0] >= 0));
  TRY(ocl__arg_int(L, s, b[1] >= 0));
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

/* Where(condition, X, Y): any element size, three-way broadcasting. */
static int lower_where(ocl_lower *L) {
  int32_t c = in_idx(L, 0), a = in_idx(L, 1), b = in_idx(L, 2), y = out_idx(L, 0);
  if (c < 0 || a < 0 || b < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "expected three inputs and an output");
  tsr_plugin_value vc = vinfo(L, c), va = vinfo(L, a), vb = vinfo(L, b), vy = vinfo(L, y);
  if (vc.dtype != TSR_DTYPE_BOOL)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "condition of dtype %s", dtype_name(vc.dtype));
  uint32_t es;
  TRY(movement_dtype(L, a, &es));
  if (vb.dtype != va.dtype || vy.dtype != va.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "X, Y and the output differ in dtype");
  TRY(ocl__broadcastable(L, c, y));
  TRY(ocl__broadcastable(L, a, y));
  TRY(ocl__broadcastable(L, b, y));
  if (!L->exe)
    return 0;
  int32_t ins[3] = {c, a, b};
  size_t np;
  int32_t *p = ocl__bcast_params(L, ins, 3, y, &np);
  if (!p)
    return refuse(L, OCL_LOWER_DEVICE_ERROR, "out of host memory");
  char name[32];
  snprintf(name, sizeof name, "where_%s", move_suffix(es));
  ocl_step *s = ocl__step_kernel(L, name);
  int rc = s ? 0 : OCL_LOWER_DEVICE_ERROR;
  if (!rc)
    rc = ocl__arg_value(L, s, y, es);
  if (!rc)
    rc = ocl__arg_value(L, s, c, 1);
  if (!rc)
    rc = ocl__arg_value(L, s, a, es);
  if (!rc)
    rc = ocl__arg_value(L, s, b, es);
  if (!rc)
    rc = ocl__arg_params(L, s, p, np);
  if (!rc)
    ocl__launch_1d(s, (uint64_t)count_of(&vy));
  free(p);
  return rc;
}

/* Cast and CastLike between the numeric dtypes, bool and bfloat16 (not strings). */
static int lower_cast(ocl_lower *L, bool like) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  for (int k = 0; k < 2; k++) {
    uint32_t dt = k ? vy.dtype : vx.dtype;
    if (dt != TSR_DTYPE_BOOL && dt != TSR_DTYPE_BFLOAT16)
      TRY(numeric_dtype_ok(L, dt));
  }
  uint32_t want = like ? vinfo(L, in_idx(L, 1)).dtype : (uint32_t)attr_int(L, "to", vy.dtype);
  if (like && in_idx(L, 1) < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent target_type");
  if (want != vy.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype %s, target %s", dtype_name(vy.dtype),
                  dtype_name(want));
  if (count_of(&vx) != count_of(&vy))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output size differs from the input's");
  if (!L->exe)
    return 0;
  if (vx.dtype == vy.dtype)
    return ocl__step_copy(L, x, y, vy.byte_size) ? 0 : OCL_LOWER_DEVICE_ERROR;
  int64_t n = count_of(&vx);
  char name[32];
  snprintf(name, sizeof name, "cast_%s", num_suffix(vx.dtype));
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, dtype_size(vy.dtype)));
  TRY(ocl__arg_value(L, s, x, dtype_size(vx.dtype)));
  TRY(ocl__arg_int(L, s, (int32_t)n));
  TRY(ocl__arg_int(L, s, (int32_t)vy.dtype));
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

/* ArgMax and ArgMin (int64 output): axis, keepdims (the output shape says it) and, from opset
 * 12, select_last_index. */
static int lower_arg(ocl_lower *L, bool is_max) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vx.dtype == TSR_DTYPE_FLOAT16)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype float16 not supported");
  TRY(numeric_dtype_ok(L, vx.dtype));
  if (vy.dtype != TSR_DTYPE_INT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype %s", dtype_name(vy.dtype));
  if (vx.rank == 0)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "scalar input");
  int64_t axis = norm_axis(attr_int(L, "axis", 0), vx.rank, false);
  if (axis < 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
  if (vx.dims[axis] == 0 && count_of(&vy) > 0)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "reducing an empty axis");
  if (!L->exe)
    return 0;
  int64_t outer = prod(vx.dims, 0, (uint32_t)axis),
          inner = prod(vx.dims, (uint32_t)axis + 1, vx.rank);
  bool last = L->api->node_opset(L->g, L->node) >= 12 && attr_int(L, "select_last_index", 0);
  char name[32];
  snprintf(name, sizeof name, "arg_%s", num_suffix(vx.dtype));
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, 8));
  TRY(ocl__arg_value(L, s, x, dtype_size(vx.dtype)));
  TRY(ocl__arg_int(L, s, (int32_t)outer));
  TRY(ocl__arg_int(L, s, (int32_t)vx.dims[axis]));
  TRY(ocl__arg_int(L, s, (int32_t)inner));
  TRY(ocl__arg_int(L, s, is_max));
  TRY(ocl__arg_int(L, s, last));
  ocl__launch_1d(s, (uint64_t)(outer * inner));
  return 0;
}

/* CumSum with exclusive and reverse; the axis (a scalar int32 or int64 tensor, constant or
 * not) is read by the kernel. */
static int lower_cumsum(ocl_lower *L) {
  int32_t x = in_idx(L, 0), ax = in_idx(L, 1), y = out_idx(L, 0);
  if (x < 0 || ax < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), va = vinfo(L, ax), vy = vinfo(L, y);
  uint32_t dt = vx.dtype;
  if (dt != TSR_DTYPE_FLOAT32 && dt != TSR_DTYPE_FLOAT64 && dt != TSR_DTYPE_INT32 &&
      dt != TSR_DTYPE_INT64 && dt != TSR_DTYPE_UINT32 && dt != TSR_DTYPE_UINT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported", dtype_name(dt));
  TRY(numeric_dtype_ok(L, dt));
  if (vy.dtype != dt)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype differs");
  if ((va.dtype != TSR_DTYPE_INT32 && va.dtype != TSR_DTYPE_INT64) || count_of(&va) != 1)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "axis must be an int32 or int64 scalar");
  if (vx.rank == 0 || vx.rank > 16)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank 0 or above 16");
  int64_t axv = 0;
  size_t na = 0;
  if (const_ints(L, ax, &axv, 1, &na) && norm_axis(axv, vx.rank, false) < 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
  if (!L->exe)
    return 0;
  int32_t p[17];
  p[0] = (int32_t)vx.rank;
  for (uint32_t d = 0; d < vx.rank; d++)
    p[1 + d] = (int32_t)vx.dims[d];
  bool ax64 = va.dtype == TSR_DTYPE_INT64;
  char name[32];
  snprintf(name, sizeof name, "cumsum_%s", num_suffix(dt));
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, dtype_size(dt)));
  TRY(ocl__arg_value(L, s, x, dtype_size(dt)));
  TRY(ocl__arg_value(L, s, ax, ax64 ? 8 : 4));
  TRY(ocl__arg_int(L, s, ax64));
  TRY(ocl__arg_params(L, s, p, 1 + (size_t)vx.rank));
  TRY(ocl__arg_int(L, s, attr_int(L, "exclusive", 0) != 0));
  TRY(ocl__arg_int(L, s, attr_int(L, "reverse", 0) != 0));
  ocl__launch_1d(s, (uint64_t)count_of(&vx));
  return 0;
}

/* QuantizeLinear (float32 to uint8 or int8) and DequantizeLinear (uint8, int8 or int32 to
 * float32), per tensor or, from opset 13, per axis; float32 scales. */
static int lower_quant(ocl_lower *L, bool dequant) {
  int32_t x = in_idx(L, 0), sc = in_idx(L, 1), zp = in_idx(L, 2), y = out_idx(L, 0);
  if (x < 0 || sc < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vs = vinfo(L, sc), vz = vinfo(L, zp), vy = vinfo(L, y);
  uint32_t q = dequant ? vx.dtype : vy.dtype; /* the quantized side */
  bool q8 = q == TSR_DTYPE_UINT8 || q == TSR_DTYPE_INT8;
  if (dequant ? !(q8 || q == TSR_DTYPE_INT32) || vy.dtype != TSR_DTYPE_FLOAT32
              : !q8 || vx.dtype != TSR_DTYPE_FLOAT32)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtypes %s -> %s not supported", dtype_name(vx.dtype),
                  dtype_name(vy.dtype));
  if (vs.dtype != TSR_DTYPE_FLOAT32)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "scale of dtype %s", dtype_name(vs.dtype));
  if (zp >= 0 && vz.dtype != q)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "zero point of dtype %s", dtype_name(vz.dtype));
  if (zp < 0 && !dequant && q != TSR_DTYPE_UINT8)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "int8 output without a zero point");
  if (count_of(&vx) != count_of(&vy))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output size differs from the input's");
  int64_t D = 1, inner = count_of(&vx);
  if (count_of(&vs) != 1) {
    int64_t axis = norm_axis(attr_int(L, "axis", 1), vx.rank, false);
    if (vs.rank != 1 || L->api->node_opset(L->g, L->node) < 13 || axis < 0 ||
        vs.dims[0] != vx.dims[axis])
      return refuse(L, TSR_PLUGIN_REASON_QUANTIZATION, "scale must be per tensor or per axis");
    D = vx.dims[axis];
    inner = prod(vx.dims, (uint32_t)axis + 1, vx.rank);
  }
  if (zp >= 0 && count_of(&vz) != D)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "zero point does not match the scale");
  if (!L->exe)
    return 0;
  int64_t n = count_of(&vx);
  uint32_t qs = dtype_size(q);
  char name[32];
  snprintf(name, sizeof name, "%s_%s", dequant ? "dequantize" : "quantize", num_suffix(q));
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, dequant ? 4 : qs));
  TRY(ocl__arg_value(L, s, x, dequant ? qs : 4));
  TRY(ocl__arg_value(L, s, sc, 4));
  TRY(ocl__arg_value(L, s, zp, qs));
  TRY(ocl__arg_int(L, s, (int32_t)n));
  TRY(ocl__arg_int(L, s, (int32_t)D));
  TRY(ocl__arg_int(L, s, (int32_t)(inner ? inner : 1)));
  TRY(ocl__arg_int(L, s, zp >= 0));
  if (!dequant) {
    TRY(ocl__arg_int(L, s, q == TSR_DTYPE_UINT8 ? 0 : -128));
    TRY(ocl__arg_int(L, s, q == TSR_DTYPE_UINT8 ? 255 : 127));
  }
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

/* TopK (any k; largest or smallest; the output always sorted, as on the CPU): one work item
 * per input element counts the elements of its row that come before it in the order (NaN
 * above every number, equal values by lower index) and, when that rank is below k, writes
 * itself there. O(n) per element, so rows longer than TOPK_MAX_ROW are left to the CPU. */
enum { TOPK_MAX_ROW = 1 << 16 };

static int lower_topk(ocl_lower *L) {
  int32_t x = in_idx(L, 0), yv = out_idx(L, 0), yi = out_idx(L, 1);
  if (x < 0 || yv < 0 || yi < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "expects X and the Values and Indices outputs");
  tsr_plugin_value vx = vinfo(L, x), vv = vinfo(L, yv), vi = vinfo(L, yi);
  uint32_t dt = vx.dtype;
  if (dt != TSR_DTYPE_FLOAT32 && dt != TSR_DTYPE_FLOAT64 && dt != TSR_DTYPE_INT32 &&
      dt != TSR_DTYPE_INT64 && dt != TSR_DTYPE_UINT8 && dt != TSR_DTYPE_INT8)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported", dtype_name(dt));
  TRY(numeric_dtype_ok(L, dt));
  if (vv.dtype != dt || vi.dtype != TSR_DTYPE_INT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "outputs must be X's dtype and int64");
  if (vx.rank == 0)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "scalar input");
  int64_t axis = norm_axis(attr_int(L, "axis", -1), vx.rank, false);
  if (axis < 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
  if (vv.rank != vx.rank || vi.rank != vx.rank)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "outputs must have X's rank");
  int64_t k = vv.dims[axis];
  for (uint32_t d = 0; d < vx.rank; d++)
    if ((d != axis && vv.dims[d] != vx.dims[d]) || vi.dims[d] != vv.dims[d])
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "outputs differ from X off the axis");
  if (k > vx.dims[axis])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "k above the axis size");
  if (vx.dims[axis] > TOPK_MAX_ROW)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "TopK over more than %d elements per row",
                  TOPK_MAX_ROW);
  if (!L->exe)
    return 0;
  bool largest = L->api->node_opset(L->g, L->node) < 11 || attr_int(L, "largest", 1) != 0;
  int32_t p[5] = {(int32_t)count_of(&vx), (int32_t)vx.dims[axis],
                  (int32_t)prod(vx.dims, (uint32_t)axis + 1, vx.rank), (int32_t)k, largest};
  char name[32];
  snprintf(name, sizeof name, "topk_%s", num_suffix(dt));
  uint32_t es = dtype_size(dt);
  STEP(s, name);
  TRY(ocl__arg_value(L, s, yv, es));
  TRY(ocl__arg_value(L, s, yi, 8));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_params(L, s, p, 5));
  ocl__launch_1d(s, (uint64_t)p[0]);
  return 0;
}

/* OneHot: indices int32, int64 or float32 (truncated), values [off, on] of any dtype; an
 * index outside [-depth, depth) leaves its row all off. depth is the output's axis. */
static int lower_one_hot(ocl_lower *L) {
  int32_t ind = in_idx(L, 0), vals = in_idx(L, 2), y = out_idx(L, 0);
  if (ind < 0 || in_idx(L, 1) < 0 || vals < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "expects indices, depth, values and an output");
  tsr_plugin_value vi = vinfo(L, ind), vv = vinfo(L, vals), vy = vinfo(L, y);
  if (vi.dtype != TSR_DTYPE_INT32 && vi.dtype != TSR_DTYPE_INT64 && vi.dtype != TSR_DTYPE_FLOAT32)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "indices of dtype %s", dtype_name(vi.dtype));
  uint32_t es;
  TRY(movement_dtype(L, vals, &es));
  if (vy.dtype != vv.dtype || count_of(&vv) != 2)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "values must be [off, on] of the output's dtype");
  if (vy.rank != vi.rank + 1)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "bad output rank");
  int64_t axis = norm_axis(attr_int(L, "axis", -1), vy.rank, false);
  if (axis < 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
  for (uint32_t d = 0, e = 0; d < vy.rank; d++)
    if (d != axis && vy.dims[d] != vi.dims[e++])
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output differs from the indices off the axis");
  if (!L->exe)
    return 0;
  int32_t kind = vi.dtype == TSR_DTYPE_INT32 ? 0 : vi.dtype == TSR_DTYPE_INT64 ? 1 : 2;
  int32_t p[4] = {(int32_t)count_of(&vy), (int32_t)vy.dims[axis],
                  (int32_t)prod(vi.dims, (uint32_t)axis, vi.rank), kind};
  char name[32];
  snprintf(name, sizeof name, "one_hot_%s", move_suffix(es));
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, ind, dtype_size(vi.dtype)));
  TRY(ocl__arg_value(L, s, vals, es));
  TRY(ocl__arg_params(L, s, p, 4));
  ocl__launch_1d(s, (uint64_t)p[0]);
  return 0;
}

int ocl__lower_typed(ocl_lower *L, const char *op) {
  if (!strcmp(op, "Not"))
    return lower_not(L);
  if (!strcmp(op, "IsNaN"))
    return lower_fclass(L, false);
  if (!strcmp(op, "IsInf"))
    return lower_fclass(L, true);
  if (!strcmp(op, "Where"))
    return lower_where(L);
  if (!strcmp(op, "Cast"))
    return lower_cast(L, false);
  if (!strcmp(op, "CastLike"))
    return lower_cast(L, true);
  if (!strcmp(op, "ArgMax"))
    return lower_arg(L, true);
  if (!strcmp(op, "ArgMin"))
    return lower_arg(L, false);
  if (!strcmp(op, "QuantizeLinear"))
    return lower_quant(L, false);
  if (!strcmp(op, "DequantizeLinear"))
    return lower_quant(L, true);
  if (!strcmp(op, "CumSum"))
    return lower_cumsum(L);
  if (!strcmp(op, "TopK"))
    return lower_topk(L);
  if (!strcmp(op, "OneHot"))
    return lower_one_hot(L);
  if (!strcmp(op, "Clip") && is_int_dtype(vinfo(L, in_idx(L, 0)).dtype)) {
    if (L->api->node_opset(L->g, L->node) < 12)
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "integer Clip needs opset 12");
    return lower_clip_int(L);
  }
  return OCL_LOWER_NOT_MINE;
}
