/* Lowering of the integer products MatMulInteger and QLinearMatMul (uint8/int8 operands; the
 * integer convolutions ConvInteger and QLinearConv are in ops_nd.c, beside Conv), with
 * the arithmetic of devices/cpu/quant.c: exact int32 sums of (a - a_zero_point) *
 * (b - b_zero_point), and for QLinearMatMul ONNX Runtime's requantisation,
 * y = saturate(round_even(float(sum) * (a_scale * b_scale / y_scale)) + y_zero_point), the
 * multiplier in float32. Zero points and scales may be scalars or, for A, one per row ([M])
 * and, for B, one per column ([N]); the batched forms the CPU plugin also takes are refused.
 * One work item per output element (a direct kernel, no tiling). */
#include "ops_util.h"

static bool is8(uint32_t dt) { return dt == TSR_DTYPE_UINT8 || dt == TSR_DTYPE_INT8; }

/* A quantisation parameter: absent (-1), scalar (0) or a vector of len (1); -2 to refuse. */
static int qparam_kind(ocl_lower *L, int32_t v, const tsr_plugin_value *op, int64_t len) {
  if (v < 0)
    return -1;
  tsr_plugin_value q = vinfo(L, v);
  if (count_of(&q) == 1)
    return 0;
  if (q.rank == 1 && q.dims[0] == len && op->rank >= 2)
    return 1;
  return -2;
}

/* p layout (kernels.cl, "Integer products"). */
enum {
  QP_M,
  QP_N,
  QP_K,
  QP_BATCHES,
  QP_OBR,
  QP_SA,
  QP_SB,
  QP_SY,
  QP_QLINEAR,
  QP_AZP,
  QP_BZP,
  QP_AS,
  QP_BS,
  QP_YZP,
  QP_DIMS /* odims[obr], adims[obr], bdims[obr] (batch dims right-aligned, 1 = broadcast) */
};

static int lower_qmatmul(ocl_lower *L, bool ql) {
  uint32_t ib = ql ? 3 : 1;
  int32_t a = in_idx(L, 0), b = in_idx(L, ib), y = out_idx(L, 0);
  int32_t azp = in_idx(L, 2), bzp = in_idx(L, ql ? 5 : 3);
  int32_t as = ql ? in_idx(L, 1) : -1, bs = ql ? in_idx(L, 4) : -1, ys = ql ? in_idx(L, 6) : -1,
          yzp = ql ? in_idx(L, 7) : -1;
  if (a < 0 || b < 0 || y < 0 || (ql && (as < 0 || bs < 0 || ys < 0)))
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value va = vinfo(L, a), vb = vinfo(L, b), vy = vinfo(L, y);
  if (!is8(va.dtype) || !is8(vb.dtype))
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "A is %s and B is %s; uint8 and int8 are supported",
                  dtype_name(va.dtype), dtype_name(vb.dtype));
  const int32_t zps[3] = {azp, bzp, yzp};
  const uint32_t zdt[3] = {va.dtype, vb.dtype, vy.dtype};
  for (int k = 0; k < 3; k++)
    if (zps[k] >= 0 && vinfo(L, zps[k]).dtype != zdt[k])
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "a zero point's dtype differs from its operand's");
  if (ql) {
    const int32_t sc[3] = {as, bs, ys};
    for (int k = 0; k < 3; k++)
      if (vinfo(L, sc[k]).dtype != TSR_DTYPE_FLOAT32)
        return refuse(L, TSR_PLUGIN_REASON_DTYPE, "scales must be float32");
    if (!is8(vy.dtype) || (yzp < 0 && vy.dtype != TSR_DTYPE_UINT8))
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "y of dtype %s", dtype_name(vy.dtype));
  } else if (vy.dtype != TSR_DTYPE_INT32) {
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "Y of dtype %s, expected int32",
                  dtype_name(vy.dtype));
  }
  if (va.rank < 1 || vb.rank < 1)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "scalar operand");
  int ar = (int)va.rank, br = (int)vb.rank;
  int64_t M = ar >= 2 ? va.dims[ar - 2] : 1, K = va.dims[ar - 1];
  int64_t K2 = br >= 2 ? vb.dims[br - 2] : vb.dims[0], N = br >= 2 ? vb.dims[br - 1] : 1;
  if (K != K2)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "inner dimensions differ");
  int abr = ar > 2 ? ar - 2 : 0, bbr = br > 2 ? br - 2 : 0, obr = abr > bbr ? abr : bbr;
  if (obr > 12)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "batch rank above 12");
  int32_t p[QP_DIMS + 3 * 12];
  memset(p, 0, sizeof p);
  int64_t batches = 1, want[16];
  int wr = 0;
  for (int d = 0; d < obr; d++) {
    int ai = d - (obr - abr), bi = d - (obr - bbr);
    int64_t ad = ai >= 0 ? va.dims[ai] : 1, bd = bi >= 0 ? vb.dims[bi] : 1;
    if (ad != bd && ad != 1 && bd != 1)
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "batch dimensions do not broadcast");
    want[wr++] = ad == 1 ? bd : ad;
    batches *= want[d];
    p[QP_DIMS + d] = (int32_t)want[d];
    p[QP_DIMS + obr + d] = (int32_t)ad;
    p[QP_DIMS + 2 * obr + d] = (int32_t)bd;
  }
  if (ar >= 2)
    want[wr++] = M;
  if (br >= 2)
    want[wr++] = N;
  bool same = (int)vy.rank == wr;
  for (int d = 0; same && d < wr; d++)
    same = vy.dims[d] == want[d];
  if (!same)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "unexpected output shape");
  int ka = qparam_kind(L, azp, &va, M), kb = qparam_kind(L, bzp, &vb, N);
  int ksa = qparam_kind(L, as, &va, M), ksb = qparam_kind(L, bs, &vb, N);
  if (ka == -2 || kb == -2 || ksa == -2 || ksb == -2)
    return refuse(L, TSR_PLUGIN_REASON_QUANTIZATION,
                  "zero points and scales must be scalars, per row of A or per column of B");
  tsr_plugin_value vys = vinfo(L, ys), vyz = vinfo(L, yzp);
  if ((ys >= 0 && count_of(&vys) != 1) || (yzp >= 0 && count_of(&vyz) != 1))
    return refuse(L, TSR_PLUGIN_REASON_QUANTIZATION, "y_scale and y_zero_point must be scalars");
  if (!L->exe)
    return 0;
  p[QP_M] = (int32_t)M, p[QP_N] = (int32_t)N, p[QP_K] = (int32_t)K;
  p[QP_BATCHES] = (int32_t)batches, p[QP_OBR] = obr;
  p[QP_SA] = va.dtype == TSR_DTYPE_INT8, p[QP_SB] = vb.dtype == TSR_DTYPE_INT8;
  p[QP_SY] = vy.dtype == TSR_DTYPE_INT8, p[QP_QLINEAR] = ql;
  p[QP_AZP] = ka, p[QP_BZP] = kb, p[QP_AS] = ksa, p[QP_BS] = ksb, p[QP_YZP] = yzp >= 0;
  STEP(s, "qmatmul");
  TRY(ocl__arg_value(L, s, y, ql ? 1 : 4));
  TRY(ocl__arg_value(L, s, a, 1));
  TRY(ocl__arg_value(L, s, b, 1));
  TRY(ocl__arg_value(L, s, azp, 1));
  TRY(ocl__arg_value(L, s, bzp, 1));
  TRY(ocl__arg_value(L, s, as, 4));
  TRY(ocl__arg_value(L, s, bs, 4));
  TRY(ocl__arg_value(L, s, ys, 4));
  TRY(ocl__arg_value(L, s, yzp, 1));
  TRY(ocl__arg_params(L, s, p, QP_DIMS + 3 * (size_t)obr));
  ocl__launch_1d(s, (uint64_t)(batches * M * N));
  return 0;
}

int ocl__lower_quant(ocl_lower *L, const char *op) {
  if (!strcmp(op, "MatMulInteger"))
    return lower_qmatmul(L, false);
  if (!strcmp(op, "QLinearMatMul"))
    return lower_qmatmul(L, true);
  if (!strcmp(op, "ConvInteger"))
    return ocl__lower_qconv(L, false);
  if (!strcmp(op, "QLinearConv"))
    return ocl__lower_qconv(L, true);
  return OCL_LOWER_NOT_MINE;
}
