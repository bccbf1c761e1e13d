/* Lowering of the data-movement ops beyond ops.c's Transpose/Slice/Concat/Gather: Split,
 * DepthToSpace, SpaceToDepth, Expand (strided views of the input), Tile, Trilu, EyeLike,
 * GatherElements, GatherND, ScatterElements (and the old Scatter), ScatterND and Pad. They move
 * elements of any fixed-size dtype (1, 2, 4 or 8 bytes), except the scatter reductions, which
 * are float32. */
#include "ops_util.h"

static int64_t strides_of(const tsr_plugin_value *v, int64_t *st) {
  int64_t s = 1;
  for (int d = (int)v->rank - 1; d >= 0; d--) {
    st[d] = s;
    s *= v->dims[d];
  }
  return s;
}

/* Split: each output is the slab of the input at the running offset along the axis; the
 * sizes are the outputs' (as the split attribute or input gave them to shape inference). */
static int lower_split(ocl_lower *L) {
  int32_t x = in_idx(L, 0);
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x);
  if (vx.rank == 0 || vx.rank > 16)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank 0 or above 16");
  int64_t axis = norm_axis(attr_int(L, "axis", 0), vx.rank, false);
  if (axis < 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
  int64_t total = 0;
  for (uint32_t k = 0; k < n_out(L); k++) {
    int32_t y = out_idx(L, k);
    if (y < 0)
      return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent output");
    tsr_plugin_value vy = vinfo(L, y);
    if (vy.dtype != vx.dtype || vy.rank != vx.rank)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output %u differs in dtype or rank", k);
    for (uint32_t d = 0; d < vx.rank; d++)
      if (d != axis && vy.dims[d] != vx.dims[d])
        return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output %u differs off the axis", k);
    total += vy.dims[axis];
  }
  if (total != vx.dims[axis])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "outputs do not add up to the input");
  if (!L->exe)
    return 0;
  int64_t st[16];
  strides_of(&vx, st);
  int64_t at = 0;
  for (uint32_t k = 0; k < n_out(L); k++) {
    tsr_plugin_value vy = vinfo(L, out_idx(L, k));
    TRY(ocl__emit_strided(L, x, out_idx(L, k), es, vy.rank, vy.dims, st, at * st[axis]));
    at += vy.dims[axis];
  }
  return 0;
}

/* DepthToSpace (DCR or CRD) and SpaceToDepth as one strided read of a 6-D view. */
static int lower_depth_space(ocl_lower *L, bool to_space) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vx.rank != 4)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input rank %u, expected 4", vx.rank);
  int64_t b = attr_int(L, "blocksize", 0);
  int64_t N = vx.dims[0], C = vx.dims[1], H = vx.dims[2], W = vx.dims[3];
  const char *mode = to_space ? attr_str(L, "mode", "DCR") : "DCR";
  bool crd = !strcmp(mode, "CRD");
  if (!crd && strcmp(mode, "DCR") != 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "mode '%s' not supported", mode);
  if (b < 1 || (to_space ? C % (b * b) : H % b || W % b))
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "blocksize does not divide the input");
  if (count_of(&vy) != count_of(&vx))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output size differs from the input's");
  if (!L->exe)
    return 0;
  int64_t dims[6], st[6];
  if (to_space) {
    /* Output [N, C', H, b, W, b]; DCR reads x as [N, b, b, C', H, W], CRD as [N, C', b, b, H, W].
     */
    int64_t Cp = C / (b * b), hw = H * W;
    int64_t d6[6] = {N, Cp, H, b, W, b};
    memcpy(dims, d6, sizeof d6);
    st[0] = C * hw;
    st[2] = W;
    st[4] = 1;
    if (crd) {
      st[1] = b * b * hw; /* c' */
      st[3] = b * hw;     /* bh */
      st[5] = hw;         /* bw */
    } else {
      st[1] = hw;
      st[3] = b * Cp * hw;
      st[5] = Cp * hw;
    }
  } else {
    /* Output [N, b, b, C, H/b, W/b] read from x viewed as [N, C, H/b, b, W/b, b]. */
    int64_t Hb = H / b, Wb = W / b;
    int64_t d6[6] = {N, b, b, C, Hb, Wb};
    memcpy(dims, d6, sizeof d6);
    st[0] = C * H * W;
    st[1] = W;     /* bh */
    st[2] = 1;     /* bw */
    st[3] = H * W; /* c */
    st[4] = b * W; /* h' */
    st[5] = b;     /* w' */
  }
  return ocl__emit_strided(L, x, y, es, 6, dims, st, 0);
}

/* Tile: the output shape says the repeats. */
static int lower_tile(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vx.rank != vy.rank || vx.rank > 16)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output rank differs or above 16");
  for (uint32_t d = 0; d < vx.rank; d++)
    if (vx.dims[d] == 0 ? vy.dims[d] != 0 : vy.dims[d] % vx.dims[d])
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output dim %u is not a multiple of the input's",
                    d);
  if (!L->exe)
    return 0;
  int32_t p[2 + 32];
  p[0] = (int32_t)count_of(&vy);
  p[1] = (int32_t)vy.rank;
  for (uint32_t d = 0; d < vy.rank; d++) {
    p[2 + d] = (int32_t)vy.dims[d];
    p[2 + vy.rank + d] = (int32_t)vx.dims[d];
  }
  char name[32];
  snprintf(name, sizeof name, "tile_%s", move_suffix(es));
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_params(L, s, p, 2 + 2 * (size_t)vy.rank));
  ocl__launch_1d(s, (uint64_t)p[0]);
  return 0;
}

/* Trilu: k is an optional int64 scalar, read on the device (it need not be a constant). */
static int lower_trilu(ocl_lower *L) {
  int32_t x = in_idx(L, 0), k = in_idx(L, 1), y = out_idx(L, 0);
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vk = vinfo(L, k);
  if (vx.rank < 2)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input rank below 2");
  if (k >= 0 && (vk.dtype != TSR_DTYPE_INT64 || count_of(&vk) != 1))
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "k must be an int64 scalar");
  if (!L->exe)
    return 0;
  char name[32];
  snprintf(name, sizeof name, "trilu_%s", move_suffix(es));
  int64_t n = count_of(&vx);
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_value(L, s, k, 8));
  TRY(ocl__arg_int(L, s, (int32_t)n));
  TRY(ocl__arg_int(L, s, (int32_t)vx.dims[vx.rank - 2]));
  TRY(ocl__arg_int(L, s, (int32_t)vx.dims[vx.rank - 1]));
  TRY(ocl__arg_int(L, s, attr_int(L, "upper", 1) != 0));
  TRY(ocl__arg_int(L, s, k >= 0));
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

/* EyeLike: the input gives only the shape (rank 2); the output dtype is the dtype attribute's
 * or the input's. */
static int lower_eyelike(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vx.rank != 2 || vy.rank != 2)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank must be 2");
  uint32_t dt = vy.dtype;
  if (dt != TSR_DTYPE_BOOL)
    TRY(numeric_dtype_ok(L, dt));
  if (!L->exe)
    return 0;
  /* The bit pattern of 1 in the output dtype. */
  uint64_t one = dt == TSR_DTYPE_FLOAT32   ? 0x3f800000u
                 : dt == TSR_DTYPE_FLOAT64 ? 0x3ff0000000000000ull
                 : dt == TSR_DTYPE_FLOAT16 ? 0x3c00u
                                           : 1u;
  uint32_t es = dtype_size(dt);
  char name[32];
  snprintf(name, sizeof name, "eye_%s", move_suffix(es));
  int64_t n = count_of(&vy);
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_int(L, s, (int32_t)n));
  TRY(ocl__arg_int(L, s, (int32_t)vy.dims[1]));
  TRY(ocl__arg_int(L, s, (int32_t)attr_int(L, "k", 0)));
  TRY(ocl__arg_ulong(L, s, one));
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

/* The scatter reduction: 0 none, 1 add, 2 mul, 3 max, 4 min; -1 unknown. */
static int scatter_reduction(ocl_lower *L) {
  const char *r = attr_str(L, "reduction", "none");
  static const char *const names[] = {"none", "add", "mul", "max", "min"};
  for (int i = 0; i < 5; i++)
    if (!strcmp(r, names[i]))
      return i;
  return -1;
}

/* GatherElements (scatter false) and ScatterElements / Scatter (scatter true). For the scatter,
 * the output starts as a copy of the data and the updates are written at their indices;
 * duplicate indices with reduction none leave one of them (ONNX leaves it undefined), with a
 * reduction they combine in order on one work item. */
static int lower_elements(ocl_lower *L, bool scatter) {
  int32_t x = in_idx(L, 0), idx = in_idx(L, 1), u = in_idx(L, 2), y = out_idx(L, 0);
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vi = vinfo(L, idx), vu = vinfo(L, u), vy = vinfo(L, y);
  if (vi.dtype != TSR_DTYPE_INT64 && vi.dtype != TSR_DTYPE_INT32)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "indices of dtype %s", dtype_name(vi.dtype));
  if (vx.rank == 0 || vx.rank > 16 || vi.rank != vx.rank)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "indices must have the data's rank (1..16)");
  int64_t axis = norm_axis(attr_int(L, "axis", 0), vx.rank, false);
  if (axis < 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis out of range");
  int red = 0;
  if (scatter) {
    if (u < 0 || vu.dtype != vx.dtype || count_of(&vu) != count_of(&vi))
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "updates must match the indices");
    red = scatter_reduction(L);
    if (red < 0)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "unknown reduction");
    if (red && vx.dtype != TSR_DTYPE_FLOAT32)
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "reduction on dtype %s not supported",
                    dtype_name(vx.dtype));
    if (vy.byte_size != vx.byte_size)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output differs from the data");
  } else if (count_of(&vy) != count_of(&vi)) {
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output differs from the indices");
  }
  if (!L->exe)
    return 0;
  int32_t p[4 + 32];
  int64_t st[16];
  strides_of(&vx, st);
  p[0] = (int32_t)count_of(&vi);
  p[1] = (int32_t)vx.rank;
  p[2] = (int32_t)axis;
  p[3] = (int32_t)vx.dims[axis];
  for (uint32_t d = 0; d < vx.rank; d++) {
    p[4 + d] = (int32_t)vi.dims[d];
    p[4 + vx.rank + d] = (int32_t)st[d];
  }
  const char *is = vi.dtype == TSR_DTYPE_INT64 ? "i64" : "i32";
  uint32_t ies = vi.dtype == TSR_DTYPE_INT64 ? 8 : 4;
  char name[40];
  if (scatter) {
    if (!ocl__step_copy(L, x, y, vy.byte_size))
      return OCL_LOWER_DEVICE_ERROR;
    if (red)
      snprintf(name, sizeof name, "scatter_red_f32_%s", is);
    else
      snprintf(name, sizeof name, "scatter_el_%s_%s", move_suffix(es), is);
  } else {
    snprintf(name, sizeof name, "gather_el_%s_%s", move_suffix(es), is);
  }
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, scatter ? u : x, es));
  TRY(ocl__arg_value(L, s, idx, ies));
  TRY(ocl__arg_params(L, s, p, 4 + 2 * (size_t)vx.rank));
  if (red) {
    TRY(ocl__arg_int(L, s, red));
    TRY(ocl__arg_int(L, s, 0));
  }
  TRY(ocl__arg_check(L, s));
  ocl__launch_1d(s, red ? 1 : (uint64_t)p[0]);
  return 0;
}

/* GatherND (with batch_dims) and ScatterND: int64 index tuples of length k select slices. */
static int lower_nd(ocl_lower *L, bool scatter) {
  int32_t x = in_idx(L, 0), idx = in_idx(L, 1), u = in_idx(L, 2), y = out_idx(L, 0);
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vi = vinfo(L, idx), vu = vinfo(L, u), vy = vinfo(L, y);
  if (vi.dtype != TSR_DTYPE_INT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "indices of dtype %s", dtype_name(vi.dtype));
  if (vi.rank < 1 || vx.rank < 1 || vx.rank > 16)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "data and indices need rank 1 or more");
  int64_t b = scatter ? 0 : attr_int(L, "batch_dims", 0);
  int64_t k = vi.dims[vi.rank - 1];
  if (b < 0 || b >= vi.rank || b >= vx.rank || k < 1 || b + k > vx.rank)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "batch_dims or index length do not fit the data");
  int red = 0;
  if (scatter) {
    red = scatter_reduction(L);
    if (red < 0)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "unknown reduction");
    if (red && vx.dtype != TSR_DTYPE_FLOAT32)
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "reduction on dtype %s not supported",
                    dtype_name(vx.dtype));
    if (u < 0 || vu.dtype != vx.dtype || vy.byte_size != vx.byte_size)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "updates or output do not fit the data");
  }
  int64_t slice = prod(vx.dims, (uint32_t)(b + k), vx.rank);
  int64_t tuples = count_of(&vi) / k;
  int64_t n = tuples * slice;
  if (count_of(scatter ? &vu : &vy) != n)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "%s size differs from the index tuples' slices",
                  scatter ? "updates" : "output");
  if (!L->exe)
    return 0;
  int64_t st[16];
  strides_of(&vx, st);
  int64_t batches = prod(vx.dims, 0, (uint32_t)b);
  int32_t p[5 + 32];
  p[0] = (int32_t)n;
  p[1] = (int32_t)slice;
  p[2] = (int32_t)k;
  p[3] = (int32_t)(batches ? tuples / batches : 1);
  if (p[3] == 0)
    p[3] = 1;
  p[4] = (int32_t)(b ? st[b - 1] : 0);
  for (int64_t j = 0; j < k; j++) {
    p[5 + j] = (int32_t)vx.dims[b + j];
    p[5 + k + j] = (int32_t)st[b + j];
  }
  char name[40];
  if (scatter) {
    if (!ocl__step_copy(L, x, y, vy.byte_size))
      return OCL_LOWER_DEVICE_ERROR;
    if (red)
      snprintf(name, sizeof name, "scatter_red_f32_i64");
    else
      snprintf(name, sizeof name, "scatter_nd_%s", move_suffix(es));
  } else {
    snprintf(name, sizeof name, "gather_nd_%s", move_suffix(es));
  }
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, scatter ? u : x, es));
  TRY(ocl__arg_value(L, s, idx, 8));
  TRY(ocl__arg_params(L, s, p, 5 + 2 * (size_t)k));
  if (red) {
    TRY(ocl__arg_int(L, s, red));
    TRY(ocl__arg_int(L, s, 1));
  }
  TRY(ocl__arg_check(L, s));
  ocl__launch_1d(s, red ? 1 : (uint64_t)n);
  return 0;
}

/* Pad: constant, reflect (without repeating the edge, folding as numpy does when the pad is
 * wider than the axis) and edge, as the CPU plugin (devices/cpu/shape_ops.c); negative pads
 * crop. The pads must be constants; the constant value may be a run-time tensor. */
static int lower_pad(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vy.dtype != vx.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype differs");
  if (vx.rank > 16)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank above 16");
  const char *ms = attr_str(L, "mode", "constant");
  int mode = !strcmp(ms, "constant")  ? 0
             : !strcmp(ms, "reflect") ? 1
             : !strcmp(ms, "edge")    ? 2
                                      : -1;
  if (mode < 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "mode '%s' not supported", ms);
  int64_t pads[32];
  size_t np = 0;
  int32_t cv = -1;
  uint64_t fill = 0;
  if (L->api->node_opset(L->g, L->node) >= 11) {
    if (in_idx(L, 3) >= 0)
      return refuse(L, TSR_PLUGIN_REASON_OTHER, "the axes input (opset 18) not supported");
    if (!const_ints(L, in_idx(L, 1), pads, 32, &np))
      return refuse(L, TSR_PLUGIN_REASON_OTHER, "pads must be a constant");
    cv = in_idx(L, 2);
    if (cv >= 0) {
      tsr_plugin_value vc = vinfo(L, cv);
      if (vc.dtype != vx.dtype)
        return refuse(L, TSR_PLUGIN_REASON_DTYPE, "constant_value dtype differs");
      if (count_of(&vc) == 0)
        cv = -1;
    }
  } else {
    const int64_t *a;
    np = attr_ints(L, "pads", &a);
    if (!np)
      np = attr_ints(L, "paddings", &a);
    if (!np || np > 32)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "attribute pads is missing");
    memcpy(pads, a, np * sizeof *pads);
    float v = attr_float(L, "value", 0.0f);
    if (vx.dtype == TSR_DTYPE_FLOAT32) {
      memcpy(&fill, &v, sizeof v);
    } else if (vx.dtype == TSR_DTYPE_FLOAT64) {
      double dv = v;
      memcpy(&fill, &dv, sizeof dv);
    } else if (is_int_dtype(vx.dtype) || vx.dtype == TSR_DTYPE_BOOL) {
      fill = vx.dtype == TSR_DTYPE_BOOL ? v != 0.0f : (uint64_t)(int64_t)v;
    } else if (v != 0.0f) {
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "a nonzero value for dtype %s",
                    dtype_name(vx.dtype));
    }
  }
  if (np != 2 * (size_t)vx.rank)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "pads has %zu entries for rank %u", np, vx.rank);
  if (vy.rank != vx.rank)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output rank differs");
  for (uint32_t d = 0; d < vx.rank; d++) {
    if (vx.dims[d] + pads[d] + pads[d + vx.rank] != vy.dims[d])
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output dim %u differs from the padded input", d);
    if (mode && vx.dims[d] == 0 && vy.dims[d] > 0)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "mode %s cannot pad an empty axis", ms);
    if (pads[d] < -MAX_ELEMS || pads[d] > MAX_ELEMS)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "pads out of range");
  }
  if (!L->exe)
    return 0;
  /* p: [n, rank, mode, has_cv, out_dims[rank], in_dims[rank], pads_before[rank]] */
  int32_t p[4 + 3 * 16];
  uint32_t r = vx.rank;
  p[0] = (int32_t)count_of(&vy), p[1] = (int32_t)r, p[2] = mode, p[3] = cv >= 0;
  for (uint32_t d = 0; d < r; d++) {
    p[4 + d] = (int32_t)vy.dims[d];
    p[4 + r + d] = (int32_t)vx.dims[d];
    p[4 + 2 * r + d] = (int32_t)pads[d];
  }
  char name[32];
  snprintf(name, sizeof name, "pad_%s", move_suffix(es));
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_value(L, s, cv, es));
  TRY(ocl__arg_params(L, s, p, 4 + 3 * (size_t)r));
  TRY(ocl__arg_ulong(L, s, fill));
  ocl__launch_1d(s, (uint64_t)p[0]);
  return 0;
}

/* Expand: the input broadcast (numpy rules) to the output's shape, a strided read with stride
 * 0 on the broadcast axes. */
static int lower_expand(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  if (x < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  uint32_t es;
  TRY(movement_dtype(L, x, &es));
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  if (vy.dtype != vx.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype differs");
  if (vy.rank > 16)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "rank above 16");
  TRY(ocl__broadcastable(L, x, y));
  if (!L->exe)
    return 0;
  int64_t xs[16], st[16];
  strides_of(&vx, xs);
  uint32_t lead = vy.rank - vx.rank;
  for (uint32_t d = 0; d < vy.rank; d++)
    st[d] = d < lead || vx.dims[d - lead] == 1 ? 0 : xs[d - lead];
  return ocl__emit_strided(L, x, y, es, vy.rank, vy.dims, st, 0);
}

int ocl__lower_movement(ocl_lower *L, const char *op) {
  if (!strcmp(op, "Split"))
    return lower_split(L);
  if (!strcmp(op, "DepthToSpace"))
    return lower_depth_space(L, true);
  if (!strcmp(op, "SpaceToDepth"))
    return lower_depth_space(L, false);
  if (!strcmp(op, "Tile"))
    return lower_tile(L);
  if (!strcmp(op, "Trilu"))
    return lower_trilu(L);
  if (!strcmp(op, "EyeLike"))
    return lower_eyelike(L);
  if (!strcmp(op, "GatherElements"))
    return lower_elements(L, false);
  if (!strcmp(op, "ScatterElements") || !strcmp(op, "Scatter"))
    return lower_elements(L, true);
  if (!strcmp(op, "GatherND"))
    return lower_nd(L, false);
  if (!strcmp(op, "ScatterND"))
    return lower_nd(L, true);
  if (!strcmp(op, "Pad"))
    return lower_pad(L);
  if (!strcmp(op, "Expand"))
    return lower_expand(L);
  return OCL_LOWER_NOT_MINE;
}
