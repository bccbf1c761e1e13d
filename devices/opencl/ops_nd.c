/* Windowed ops beyond ops.c's 1-D/2-D float32 kernels: MaxPool, AveragePool and LpPool on 1
 * to 3 spatial axes for float32, float64 and float16 (MaxPool also int8 and uint8),
 * GlobalLpPool, 3-D Conv, and the integer convolutions ConvInteger and QLinearConv.
 * ops.c keeps its own kernels for 1-D and 2-D float32 and hands the rest here. The spatial
 * axes are padded to three with leading axes of size 1, so one kernel serves every rank. */
#include <math.h>

#include "ops_util.h"

/* Per spatial axis (3, leading ones padded): input, output, kernel, stride, pad begin, pad end,
 * dilation. */
typedef struct nd_window {
  int32_t in[3], out[3], k[3], s[3], pb[3], pe[3], d[3];
} nd_window;

/* The window of an op on x producing y with the given kernel dims (sp of them), from the
 * strides, pads, dilations and auto_pad attributes. */
static int nd_geometry(ocl_lower *L, const tsr_plugin_value *x, const tsr_plugin_value *y,
                       const int64_t *kernel, nd_window *w) {
  uint32_t sp = x->rank - 2, lead = 3 - sp;
  const int64_t *strides, *pads, *dil;
  size_t ns = attr_ints(L, "strides", &strides), np = attr_ints(L, "pads", &pads),
         nd = attr_ints(L, "dilations", &dil);
  if ((ns && ns != sp) || (np && np != 2 * sp) || (nd && nd != sp))
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "strides, pads or dilations of the wrong length");
  const char *ap = attr_str(L, "auto_pad", "NOTSET");
  bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
  if (!same && strcmp(ap, "VALID") != 0 && strcmp(ap, "NOTSET") != 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "auto_pad '%s' not supported", ap);
  for (uint32_t i = 0; i < 3; i++) {
    bool real = i >= lead;
    uint32_t j = real ? i - lead : 0;
    int64_t in = real ? x->dims[2 + j] : 1, out = real ? y->dims[2 + j] : 1;
    int64_t k = real ? kernel[j] : 1, s = real && ns ? strides[j] : 1, d = real && nd ? dil[j] : 1;
    int64_t pb = real && np ? pads[j] : 0, pe = real && np ? pads[j + sp] : 0;
    if (k < 1 || s < 1 || d < 1 || pb < 0 || pe < 0 || k > MAX_ELEMS || s > MAX_ELEMS ||
        d > MAX_ELEMS || pb > MAX_ELEMS || pe > MAX_ELEMS)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "invalid kernel, stride, pad or dilation");
    if (same) {
      int64_t total = (out - 1) * s + (k - 1) * d + 1 - in;
      if (total < 0)
        total = 0;
      pb = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
      pe = total - pb;
    } else if (!strcmp(ap, "VALID")) {
      pb = pe = 0;
    }
    w->in[i] = (int32_t)in, w->out[i] = (int32_t)out, w->k[i] = (int32_t)k;
    w->s[i] = (int32_t)s, w->d[i] = (int32_t)d, w->pb[i] = (int32_t)pb, w->pe[i] = (int32_t)pe;
  }
  return 0;
}

static bool pool_dtype_ok(uint32_t dt, bool is_max) {
  if (dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16)
    return true;
  return is_max && (dt == TSR_DTYPE_INT8 || dt == TSR_DTYPE_UINT8);
}

/* MaxPool, AveragePool and LpPool on 1 to 3 spatial axes, any supported dtype; mode 0
 * average, 1 max, 2 Lp (LpPool has no dilations or ceil_mode before opset 18, which the CPU
 * plugin does not run either). Global forms (GlobalLpPool) take the whole input as the window. */
static int pool_nd(ocl_lower *L, int mode, bool global) {
  bool is_max = mode == 1;
  int32_t x = in_idx(L, 0), y = out_idx(L, 0), ind = is_max ? out_idx(L, 1) : -1;
  if (x < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y), vi = vinfo(L, ind);
  if (!pool_dtype_ok(vx.dtype, is_max) || vy.dtype != vx.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported", dtype_name(vx.dtype));
  TRY(numeric_dtype_ok(L, vx.dtype));
  if (ind >= 0 && vi.dtype != TSR_DTYPE_INT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "Indices of dtype %s", dtype_name(vi.dtype));
  int64_t so = attr_int(L, "storage_order", 0);
  if (so != 0 && so != 1)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "storage_order %lld", (long long)so);
  if (vx.rank < 3 || vx.rank > 5)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "only 1-D, 2-D and 3-D pooling");
  if (vy.rank != vx.rank || vy.dims[0] != vx.dims[0] || vy.dims[1] != vx.dims[1])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "Y must keep X's rank, batch and channels");
  const int64_t *ks = vx.dims + 2;
  size_t nks = global ? vx.rank - 2 : attr_ints(L, "kernel_shape", &ks);
  if (nks != vx.rank - 2)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "bad kernel_shape");
  float lp = 2.0f;
  if (mode == 2) {
    tsr_plugin_attr a;
    if (L->api->node_attr(L->g, L->node, "p", &a))
      lp = a.type == TSR_PLUGIN_ATTR_INT ? (float)a.i : a.type == TSR_PLUGIN_ATTR_FLOAT ? a.f : 0;
    if (!(lp > 0.0f) || !isfinite(lp))
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "p must be positive");
    if (vx.dtype != TSR_DTYPE_FLOAT32 && vx.dtype != TSR_DTYPE_FLOAT64 &&
        vx.dtype != TSR_DTYPE_FLOAT16)
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported", dtype_name(vx.dtype));
    if (L->api->node_opset(L->g, L->node) >= 18)
      return refuse(L, TSR_PLUGIN_REASON_OP,
                    "LpPool opset 18 (dilations, ceil_mode) not "
                    "supported");
  }
  if (global)
    for (uint32_t d = 2; d < vy.rank; d++)
      if (vy.dims[d] != 1)
        return refuse(L, TSR_PLUGIN_REASON_SHAPE, "spatial output dims not 1");
  if (!is_max && has_attr(L, "dilations")) {
    const int64_t *dl;
    size_t nd = attr_ints(L, "dilations", &dl);
    for (size_t i = 0; i < nd; i++)
      if (dl[i] != 1)
        return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "AveragePool dilations not supported");
  }
  nd_window w;
  if (global) {
    for (uint32_t i = 0; i < 3; i++) {
      bool real = i >= 3 - (vx.rank - 2);
      int32_t in = real ? (int32_t)vx.dims[2 + i - (3 - (vx.rank - 2))] : 1;
      w.in[i] = w.k[i] = in, w.out[i] = w.s[i] = w.d[i] = 1, w.pb[i] = w.pe[i] = 0;
    }
  } else {
    TRY(nd_geometry(L, &vx, &vy, ks, &w));
  }
  if (!L->exe)
    return 0;
  int32_t p[25];
  p[0] = (int32_t)(vx.dims[0] * vx.dims[1]);
  for (int i = 0; i < 3; i++) {
    p[1 + i] = w.in[i], p[4 + i] = w.out[i], p[7 + i] = w.k[i], p[10 + i] = w.s[i];
    p[13 + i] = w.pb[i], p[16 + i] = w.pe[i], p[19 + i] = w.d[i];
  }
  p[22] = mode;
  p[23] = mode == 0 && attr_int(L, "count_include_pad", 0) != 0;
  memcpy(&p[24], &lp, sizeof lp);
  char name[32];
  snprintf(name, sizeof name, "poolnd_%s", num_suffix(vx.dtype));
  uint32_t es = dtype_size(vx.dtype);
  STEP(s, name);
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_params(L, s, p, 25));
  TRY(ocl__arg_value(L, s, ind, 8));
  TRY(ocl__arg_int(L, s, ind >= 0));
  TRY(ocl__arg_int(L, s, so == 1));
  ocl__launch_1d(s, (uint64_t)count_of(&vy));
  return 0;
}

int ocl__lower_pool_nd(ocl_lower *L, bool is_max) { return pool_nd(L, is_max ? 1 : 0, false); }

/* LpPool and GlobalLpPool. */
int ocl__lower_lp_pool(ocl_lower *L, bool global) { return pool_nd(L, 2, global); }

/* 3-D Conv, float32, direct: one output element per work item (groups, strides, pads,
 * dilations, auto_pad). */
int ocl__lower_conv3d(ocl_lower *L) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), wv = in_idx(L, 1), b = in_idx(L, 2), y = out_idx(L, 0);
  tsr_plugin_value vx = vinfo(L, x), vw = vinfo(L, wv), vb = vinfo(L, b), vy = vinfo(L, y);
  if (vx.rank != 5 || vw.rank != 5 || vy.rank != 5)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "X, W and Y must have rank 5");
  int64_t group = attr_int(L, "group", 1), C = vx.dims[1], OC = vw.dims[0];
  if (group < 1 || C % group || OC % group || vw.dims[1] * group != C || vy.dims[1] != OC ||
      vy.dims[0] != vx.dims[0])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "channels do not match the groups");
  if (b >= 0 && count_of(&vb) != OC)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "bias size differs from the output channels");
  const int64_t *ks;
  size_t nks = attr_ints(L, "kernel_shape", &ks);
  for (uint32_t i = 0; i < nks && i < 3; i++)
    if (ks[i] != vw.dims[2 + i])
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "kernel_shape differs from the weights");
  nd_window w;
  TRY(nd_geometry(L, &vx, &vy, vw.dims + 2, &w));
  if (!L->exe)
    return 0;
  int32_t p[23];
  p[0] = (int32_t)vx.dims[0], p[1] = (int32_t)C, p[5] = (int32_t)OC;
  for (int i = 0; i < 3; i++) {
    p[2 + i] = w.in[i], p[6 + i] = w.out[i], p[9 + i] = w.k[i], p[12 + i] = w.s[i];
    p[15 + i] = w.pb[i], p[18 + i] = w.d[i];
  }
  p[21] = (int32_t)group;
  p[22] = b >= 0;
  STEP(s, "conv3d_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_value(L, s, wv, 4));
  TRY(ocl__arg_value(L, s, b, 4));
  TRY(ocl__arg_params(L, s, p, 23));
  ocl__launch_1d(s, (uint64_t)count_of(&vy));
  return 0;
}

/* ConvInteger (int32 y) and QLinearConv (8-bit y) on 1 to 3 spatial axes, uint8/int8, with the
 * CPU plugin's arithmetic (devices/cpu/quant.c): exact int32 sums of (x - x_zero_point) *
 * (w - w_zero_point), padding contributing 0; QLinearConv adds the int32 bias (wrapping) and
 * requantises as ONNX Runtime does (multiplier x_scale * w_scale / y_scale in float32, round
 * to even, saturate). x's parameters and y's are scalars; w's scalars or one per output
 * channel. Direct: one output element per work item. */
static bool is8(uint32_t dt) { return dt == TSR_DTYPE_UINT8 || dt == TSR_DTYPE_INT8; }

int ocl__lower_qconv(ocl_lower *L, bool ql) {
  uint32_t iw = ql ? 3 : 1;
  int32_t x = in_idx(L, 0), w = in_idx(L, iw), y = out_idx(L, 0), xzp = in_idx(L, 2),
          wzp = in_idx(L, ql ? 5 : 3);
  int32_t xs = ql ? in_idx(L, 1) : -1, ws = ql ? in_idx(L, 4) : -1, ys = ql ? in_idx(L, 6) : -1,
          yzp = ql ? in_idx(L, 7) : -1, bias = ql ? in_idx(L, 8) : -1;
  if (x < 0 || w < 0 || y < 0 || (ql && (xs < 0 || ws < 0 || ys < 0)))
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vw = vinfo(L, w), vy = vinfo(L, y);
  if (!is8(vx.dtype) || !is8(vw.dtype))
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "x is %s and w is %s; uint8 and int8 are supported",
                  dtype_name(vx.dtype), dtype_name(vw.dtype));
  if ((xzp >= 0 && vinfo(L, xzp).dtype != vx.dtype) ||
      (wzp >= 0 && vinfo(L, wzp).dtype != vw.dtype) ||
      (yzp >= 0 && vinfo(L, yzp).dtype != vy.dtype))
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "a zero point's dtype differs from its tensor's");
  if (ql) {
    if (vinfo(L, xs).dtype != TSR_DTYPE_FLOAT32 || vinfo(L, ws).dtype != TSR_DTYPE_FLOAT32 ||
        vinfo(L, ys).dtype != TSR_DTYPE_FLOAT32 ||
        (bias >= 0 && vinfo(L, bias).dtype != TSR_DTYPE_INT32))
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "scales must be float32 and B int32");
    if (!is8(vy.dtype) || (yzp < 0 && vy.dtype != TSR_DTYPE_UINT8))
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "y of dtype %s", dtype_name(vy.dtype));
  } else if (vy.dtype != TSR_DTYPE_INT32) {
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "y of dtype %s, expected int32",
                  dtype_name(vy.dtype));
  }
  if (vx.rank < 3 || vx.rank > 5 || vw.rank != vx.rank || vy.rank != vx.rank)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "only 1-D, 2-D and 3-D convolutions");
  int64_t group = attr_int(L, "group", 1), C = vx.dims[1], M = vw.dims[0];
  if (group < 1 || C % group || M % group || vw.dims[1] * group != C || vy.dims[1] != M ||
      vy.dims[0] != vx.dims[0])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "channels do not match the groups");
  const int32_t scalars[4] = {xzp, xs, ys, yzp}, per_m[2] = {wzp, ws};
  for (int k = 0; k < 4; k++) {
    tsr_plugin_value v = vinfo(L, scalars[k]);
    if (scalars[k] >= 0 && count_of(&v) != 1)
      return refuse(L, TSR_PLUGIN_REASON_QUANTIZATION, "x and y parameters must be scalars");
  }
  bool vec[2] = {false, false};
  for (int k = 0; k < 2; k++) {
    tsr_plugin_value v = vinfo(L, per_m[k]);
    if (per_m[k] < 0 || count_of(&v) == 1)
      continue;
    if (v.rank != 1 || v.dims[0] != M)
      return refuse(L, TSR_PLUGIN_REASON_QUANTIZATION,
                    "w parameters must be scalars or one per output channel");
    vec[k] = true;
  }
  tsr_plugin_value vb = vinfo(L, bias);
  if (bias >= 0 && (vb.rank != 1 || vb.dims[0] != M))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "B must have one value per output channel");
  const int64_t *ks;
  size_t nks = attr_ints(L, "kernel_shape", &ks);
  for (uint32_t i = 0; i < nks && i + 2 < vw.rank; i++)
    if (ks[i] != vw.dims[2 + i])
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "kernel_shape differs from the weights");
  nd_window wd;
  TRY(nd_geometry(L, &vx, &vy, vw.dims + 2, &wd));
  if (!L->exe)
    return 0;
  /* p: [N, C, in[3], M, out[3], k[3], s[3], pb[3], d[3], group, sx, sw, sy, qlinear, wzp kind
   * (-1 absent, 0 scalar, 1 per channel), has_xzp, has_bias, ws per channel, has_yzp] */
  int32_t p[31];
  p[0] = (int32_t)vx.dims[0], p[1] = (int32_t)C, p[5] = (int32_t)M;
  for (int i = 0; i < 3; i++) {
    p[2 + i] = wd.in[i], p[6 + i] = wd.out[i], p[9 + i] = wd.k[i], p[12 + i] = wd.s[i];
    p[15 + i] = wd.pb[i], p[18 + i] = wd.d[i];
  }
  p[21] = (int32_t)group;
  p[22] = vx.dtype == TSR_DTYPE_INT8, p[23] = vw.dtype == TSR_DTYPE_INT8;
  p[24] = vy.dtype == TSR_DTYPE_INT8, p[25] = ql;
  p[26] = wzp < 0 ? -1 : vec[0], p[27] = xzp >= 0, p[28] = bias >= 0, p[29] = vec[1];
  p[30] = yzp >= 0;
  STEP(s, "qconv");
  TRY(ocl__arg_value(L, s, y, ql ? 1 : 4));
  TRY(ocl__arg_value(L, s, x, 1));
  TRY(ocl__arg_value(L, s, w, 1));
  TRY(ocl__arg_value(L, s, xzp, 1));
  TRY(ocl__arg_value(L, s, wzp, 1));
  TRY(ocl__arg_value(L, s, xs, 4));
  TRY(ocl__arg_value(L, s, ws, 4));
  TRY(ocl__arg_value(L, s, ys, 4));
  TRY(ocl__arg_value(L, s, yzp, 1));
  TRY(ocl__arg_value(L, s, bias, 4));
  TRY(ocl__arg_params(L, s, p, 31));
  ocl__launch_1d(s, (uint64_t)count_of(&vy));
  return 0;
}
