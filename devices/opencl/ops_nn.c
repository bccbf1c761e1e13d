/* Lowering of the float32 neural-network ops added beside ops.c's Conv and normalisations:
 * ConvTranspose (1-D, 2-D and 3-D), InstanceNormalization, LRN, GridSample, and
 * BatchNormalization in training mode. */
#include "ops_util.h"

/* ConvTranspose 1-D, 2-D and 3-D (groups, strides, dilations, pads, output_padding,
 * output_shape, auto_pad), padding derived as the CPU plugin derives it (devices/cpu/conv.c). */
static int lower_conv_transpose(ocl_lower *L) {
  TRY(require_f32(L));
  if (has_attr(L, "tessera.activation"))
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "fused activation not implemented");
  int32_t x = in_idx(L, 0), wv = in_idx(L, 1), b = in_idx(L, 2), y = out_idx(L, 0);
  tsr_plugin_value vx = vinfo(L, x), vw = vinfo(L, wv), vb = vinfo(L, b), vy = vinfo(L, y);
  if (vx.rank < 3 || vx.rank > 5)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "only 1-D, 2-D and 3-D transposed convolutions");
  if (vw.rank != vx.rank || vy.rank != vx.rank)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "W and Y must have X's rank");
  int64_t group = attr_int(L, "group", 1), C = vx.dims[1];
  if (group < 1 || C % group || vw.dims[0] != C)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "W does not fit X with the groups");
  int64_t M = vw.dims[1] * group;
  if (vy.dims[0] != vx.dims[0] || vy.dims[1] != M)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "Y has the wrong batch or channels");
  if (b >= 0 && count_of(&vb) != M)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "bias size differs from the output channels");
  uint32_t sp = vx.rank - 2;
  const int64_t *st, *pads, *dil, *opad, *os;
  size_t ns = attr_ints(L, "strides", &st), np = attr_ints(L, "pads", &pads),
         nd = attr_ints(L, "dilations", &dil), nop = attr_ints(L, "output_padding", &opad),
         nos = attr_ints(L, "output_shape", &os);
  if ((ns && ns != sp) || (np && np != 2 * sp) || (nd && nd != sp) || (nop && nop != sp) ||
      (nos && nos != sp && nos != sp + 2))
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "an attribute has the wrong length");
  const char *ap = attr_str(L, "auto_pad", "NOTSET");
  bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
  if (!same && strcmp(ap, "VALID") != 0 && strcmp(ap, "NOTSET") != 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "auto_pad '%s' not supported", ap);
  int32_t g[3][6]; /* per axis (D, H, W; leading ones padded): in, out, k, s, d, pad begin */
  for (uint32_t i = 0; i < 3; i++) {
    bool real = i >= 3 - sp;
    uint32_t j = real ? i - (3 - sp) : 0;
    int64_t in = real ? vx.dims[2 + j] : 1, out = real ? vy.dims[2 + j] : 1;
    int64_t k = real ? vw.dims[2 + j] : 1, s = real && ns ? st[j] : 1, d = real && nd ? dil[j] : 1;
    int64_t opd = real && nop ? opad[j] : 0, pb = real && np ? pads[j] : 0,
            pe = real && np ? pads[j + sp] : 0;
    if (k < 1 || s < 1 || d < 1 || pb < 0 || pe < 0 || opd < 0)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "invalid kernel, stride, pad or dilation");
    int64_t ek = (k - 1) * d + 1, full = s * (in - 1) + opd + ek, total = -1;
    if (real && nos) {
      int64_t want = os[nos - sp + j];
      total = full - want > 0 ? full - want : 0;
    } else if (real && same) {
      total = ek - s > 0 ? ek - s : 0;
    } else if (!strcmp(ap, "VALID")) {
      pb = pe = 0;
    }
    if (total >= 0) {
      int64_t small = total / 2, big = total - small;
      bool upper = !strcmp(ap, "SAME_UPPER");
      pb = upper ? small : big;
      pe = upper ? big : small;
    }
    int64_t expect = real && nos ? os[nos - sp + j] : full - pb - pe;
    if (expect != out)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output spatial size %lld, expected %lld",
                    (long long)out, (long long)expect);
    int32_t v[6] = {(int32_t)in, (int32_t)out, (int32_t)k, (int32_t)s, (int32_t)d, (int32_t)pb};
    memcpy(g[i], v, sizeof v);
  }
  if (!L->exe)
    return 0;
  if (sp == 3) {
    int32_t q[23] = {(int32_t)vx.dims[0],
                     (int32_t)C,
                     g[0][0],
                     g[1][0],
                     g[2][0],
                     (int32_t)M,
                     g[0][1],
                     g[1][1],
                     g[2][1],
                     g[0][2],
                     g[1][2],
                     g[2][2],
                     g[0][3],
                     g[1][3],
                     g[2][3],
                     g[0][5],
                     g[1][5],
                     g[2][5],
                     g[0][4],
                     g[1][4],
                     g[2][4],
                     (int32_t)group,
                     b >= 0};
    STEP(s3, "convt3d_f32");
    TRY(ocl__arg_value(L, s3, y, 4));
    TRY(ocl__arg_value(L, s3, x, 4));
    TRY(ocl__arg_value(L, s3, wv, 4));
    TRY(ocl__arg_value(L, s3, b, 4));
    TRY(ocl__arg_params(L, s3, q, 23));
    ocl__launch_1d(s3, (uint64_t)count_of(&vy));
    return 0;
  }
  int32_t p[17] = {(int32_t)vx.dims[0],
                   (int32_t)C,
                   g[1][0],
                   g[2][0],
                   (int32_t)M,
                   g[1][1],
                   g[2][1],
                   g[1][2],
                   g[2][2],
                   g[1][3],
                   g[2][3],
                   g[1][5],
                   g[2][5],
                   g[1][4],
                   g[2][4],
                   (int32_t)group,
                   b >= 0};
  STEP(s, "convt2d_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_value(L, s, wv, 4));
  TRY(ocl__arg_value(L, s, b, 4));
  TRY(ocl__arg_params(L, s, p, 17));
  ocl__launch_1d(s, (uint64_t)count_of(&vy));
  return 0;
}

/* InstanceNormalization: per (n, c) over the spatial elements, scale and bias per channel. */
static int lower_instnorm(ocl_lower *L) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), sc = in_idx(L, 1), b = in_idx(L, 2), y = out_idx(L, 0);
  tsr_plugin_value vx = vinfo(L, x), vs = vinfo(L, sc), vb = vinfo(L, b);
  if (vx.rank < 3)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input rank below 3");
  int64_t C = vx.dims[1];
  if (sc < 0 || b < 0 || count_of(&vs) != C || count_of(&vb) != C)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "scale and B must have C elements");
  if (!L->exe)
    return 0;
  int64_t nc = vx.dims[0] * C;
  STEP(s, "instnorm_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_value(L, s, sc, 4));
  TRY(ocl__arg_value(L, s, b, 4));
  TRY(ocl__arg_int(L, s, (int32_t)nc));
  TRY(ocl__arg_int(L, s, (int32_t)C));
  TRY(ocl__arg_int(L, s, (int32_t)prod(vx.dims, 2, vx.rank)));
  TRY(ocl__arg_float(L, s, attr_float(L, "epsilon", 1e-5f)));
  ocl__launch_1d(s, (uint64_t)nc);
  return 0;
}

/* LRN across channels (axis 1) of an input of rank 3 or more. */
static int lower_lrn(ocl_lower *L) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), y = out_idx(L, 0);
  tsr_plugin_value vx = vinfo(L, x);
  if (vx.rank < 3)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input rank below 3");
  int64_t size = attr_int(L, "size", 0);
  if (size < 1)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "size must be positive");
  if (!L->exe)
    return 0;
  int64_t n = count_of(&vx);
  STEP(s, "lrn_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_int(L, s, (int32_t)n));
  TRY(ocl__arg_int(L, s, (int32_t)vx.dims[1]));
  TRY(ocl__arg_int(L, s, (int32_t)prod(vx.dims, 2, vx.rank)));
  TRY(ocl__arg_int(L, s, (int32_t)size));
  TRY(ocl__arg_float(L, s, attr_float(L, "alpha", 1e-4f)));
  TRY(ocl__arg_float(L, s, attr_float(L, "beta", 0.75f)));
  TRY(ocl__arg_float(L, s, attr_float(L, "bias", 1.0f)));
  ocl__launch_1d(s, (uint64_t)n);
  return 0;
}

/* GridSample (opset 16): bilinear, nearest or bicubic; zeros, border or reflection padding;
 * align_corners. */
static int lower_gridsample(ocl_lower *L) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), g = in_idx(L, 1), y = out_idx(L, 0);
  if (x < 0 || g < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vg = vinfo(L, g), vy = vinfo(L, y);
  if (vx.rank != 4 || vg.rank != 4 || vy.rank != 4 || vg.dims[0] != vx.dims[0] || vg.dims[3] != 2 ||
      vy.dims[0] != vx.dims[0] || vy.dims[1] != vx.dims[1] || vy.dims[2] != vg.dims[1] ||
      vy.dims[3] != vg.dims[2])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE,
                  "X, grid and Y must be [N,C,H,W], [N,Ho,Wo,2] and [N,C,Ho,Wo]");
  static const char *const modes[] = {"bilinear", "nearest", "bicubic"};
  static const char *const pads[] = {"zeros", "border", "reflection"};
  const char *ms = attr_str(L, "mode", "bilinear"), *ps = attr_str(L, "padding_mode", "zeros");
  int mode = -1, pad = -1;
  for (int i = 0; i < 3; i++) {
    if (!strcmp(ms, modes[i]))
      mode = i;
    if (!strcmp(ps, pads[i]))
      pad = i;
  }
  if (mode < 0 || pad < 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "mode '%s' or padding_mode '%s' not supported",
                  ms, ps);
  if (!L->exe)
    return 0;
  int32_t p[9] = {(int32_t)vx.dims[0],
                  (int32_t)vx.dims[1],
                  (int32_t)vx.dims[2],
                  (int32_t)vx.dims[3],
                  (int32_t)vg.dims[1],
                  (int32_t)vg.dims[2],
                  mode,
                  pad,
                  attr_int(L, "align_corners", 0) != 0};
  STEP(s, "gridsample_f32");
  TRY(ocl__arg_value(L, s, y, 4));
  TRY(ocl__arg_value(L, s, x, 4));
  TRY(ocl__arg_value(L, s, g, 4));
  TRY(ocl__arg_params(L, s, p, 9));
  ocl__launch_1d(s, (uint64_t)(vx.dims[0] * vg.dims[1] * vg.dims[2]));
  return 0;
}

/* BatchNormalization in training mode (opset 14+, float32): per channel, the mean and the
 * biased variance over N and the spatial dims normalise the output; running_mean and
 * running_var are input * momentum + batch statistic * (1 - momentum), as the CPU plugin
 * (devices/cpu/norm.c) computes them. Two launches: statistics (one work item per channel,
 * into a scratch buffer, and the running outputs), then the normalisation. */
int ocl__lower_batchnorm_training(ocl_lower *L) {
  TRY(require_f32(L));
  int32_t x = in_idx(L, 0), y = out_idx(L, 0), rm = out_idx(L, 1), rv = out_idx(L, 2);
  if (x < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  if (n_out(L) > 3)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "more than three outputs");
  tsr_plugin_value vx = vinfo(L, x);
  if (vx.rank < 2)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input rank below 2");
  int64_t C = vx.dims[1];
  for (uint32_t k = 1; k < 5; k++) {
    tsr_plugin_value v = vinfo(L, in_idx(L, k));
    if (in_idx(L, k) < 0 || count_of(&v) != C)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input %u does not have C elements", k);
  }
  for (int32_t o = 1; o < 3; o++) {
    tsr_plugin_value v = vinfo(L, out_idx(L, (uint32_t)o));
    if (out_idx(L, (uint32_t)o) >= 0 && count_of(&v) != C)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "output %d does not have C elements", o);
  }
  if (!L->exe)
    return 0;
  cl_mem stats = ocl__buffer(L, (uint64_t)(C > 0 ? 2 * C : 1) * sizeof(float), NULL);
  if (!stats)
    return OCL_LOWER_DEVICE_ERROR;
  float momentum = attr_float(L, "momentum", 0.9f);
  int32_t mb;
  memcpy(&mb, &momentum, sizeof mb);
  /* p: [N, C, spatial, has running_mean, has running_var, momentum bits] */
  int32_t p[6] = {
      (int32_t)vx.dims[0], (int32_t)C, (int32_t)prod(vx.dims, 2, vx.rank), rm >= 0, rv >= 0, mb};
  STEP(s0, "bn_train_stats_f32");
  TRY(ocl__arg_value(L, s0, x, 4));
  TRY(ocl__arg_mem(L, s0, stats));
  TRY(ocl__arg_value(L, s0, in_idx(L, 3), 4));
  TRY(ocl__arg_value(L, s0, in_idx(L, 4), 4));
  TRY(ocl__arg_value(L, s0, rm, 4));
  TRY(ocl__arg_value(L, s0, rv, 4));
  TRY(ocl__arg_params(L, s0, p, 6));
  ocl__launch_1d(s0, (uint64_t)C);
  STEP(s1, "bn_train_apply_f32");
  TRY(ocl__arg_value(L, s1, y, 4));
  TRY(ocl__arg_value(L, s1, x, 4));
  TRY(ocl__arg_value(L, s1, in_idx(L, 1), 4));
  TRY(ocl__arg_value(L, s1, in_idx(L, 2), 4));
  TRY(ocl__arg_mem(L, s1, stats));
  TRY(ocl__arg_params(L, s1, p, 6));
  TRY(ocl__arg_float(L, s1, attr_float(L, "epsilon", 1e-5f)));
  ocl__launch_1d(s1, (uint64_t)count_of(&vx));
  return 0;
}

int ocl__lower_nn(ocl_lower *L, const char *op) {
  if (!strcmp(op, "ConvTranspose"))
    return lower_conv_transpose(L);
  if (!strcmp(op, "InstanceNormalization"))
    return lower_instnorm(L);
  if (!strcmp(op, "LRN"))
    return lower_lrn(L);
  if (!strcmp(op, "GridSample"))
    return lower_gridsample(L);
  return OCL_LOWER_NOT_MINE;
}
