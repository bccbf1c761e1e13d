/* Lowering of the recurrent layers LSTM, GRU and RNN (opsets 7 to 17: forward, reverse and
 * bidirectional; optional B, sequence_lens, initial_h, initial_c and P; every activation the
 * CPU plugin knows, with alpha/beta; clip; input_forget; linear_before_reset; layout 0 and 1
 * from opset 14; the optional outputs Y, Y_h and Y_c), float32 only.
 *
 * The launches, all on buffers the executable owns (ocl__buffer):
 *   1. rnn_init_f32: the state h (and c) from initial_h/initial_c or zeros, and the sequence
 *      lengths as int32 clamped to [0, seq];
 *   2. rnn_xw_f32: the input projection of every step and direction at once,
 *      XW = X W^T + Wb (+ Rb where the equations allow), since it does not depend on the state;
 *      W and R are read from copies laid out for the device (transposed on GPUs so that
 *      neighbouring gate rows are neighbouring addresses; made once on the host when
 *      constant, else by rnn_transpose launches on every run);
 *   3. per time step, rnn_step_f32 (one work item per direction, batch entry and hidden unit,
 *      computing every gate of that unit), preceded for GRU without linear_before_reset by
 *      gru_reset_f32, which computes r (.) H for the whole row that the candidate gate needs;
 *      the hidden state alternates between two buffers, since each unit reads all of the
 *      previous state;
 *   4. rnn_final_f32: Y_h and Y_c.
 * The choices where ONNX is silent follow devices/cpu/rnn.c (the reference): alpha/beta are
 * consumed in the order of the activations list; a bidirectional node listing one direction's
 * activations uses them for both; names match case-insensitively; an entry of length 0 has
 * Y_h and Y_c of 0; Y is 0 past an entry's length; input_forget makes f = 1 - i. A
 * sequence_lens value outside [0, seq], which the CPU reports as an error, is clamped here
 * (kernels cannot fail). */
#include <ctype.h>
#include <stdlib.h>

#include "ops_util.h"

enum { RNN_KIND_RNN = 0, RNN_KIND_GRU = 1, RNN_KIND_LSTM = 2 };

/* Activation codes, shared with kernels.cl (RNN_ACT_*). */
static const struct {
  const char *name;
  bool uses_alpha, uses_beta;
  float alpha, beta; /* defaults */
} rnn_acts[] = {
    {"Relu", false, false, 0.0f, 0.0f},      {"Tanh", false, false, 0.0f, 0.0f},
    {"Sigmoid", false, false, 0.0f, 0.0f},   {"Affine", true, true, 1.0f, 0.0f},
    {"LeakyRelu", true, false, 0.01f, 0.0f}, {"ThresholdedRelu", true, false, 1.0f, 0.0f},
    {"ScaledTanh", true, true, 1.0f, 1.0f},  {"HardSigmoid", true, true, 0.2f, 0.5f},
    {"Elu", true, false, 1.0f, 0.0f},        {"Softsign", false, false, 0.0f, 0.0f},
    {"Softplus", false, false, 0.0f, 0.0f},
};

static int find_act(const char *name) {
  for (int i = 0; i < (int)(sizeof rnn_acts / sizeof rnn_acts[0]); i++) {
    const char *a = name, *b = rnn_acts[i].name;
    while (*a && *b && tolower((unsigned char)*a) == tolower((unsigned char)*b))
      a++, b++;
    if (!*a && !*b)
      return i;
  }
  return -1;
}

static int32_t float_bits(float f) {
  int32_t i;
  memcpy(&i, &f, sizeof i);
  return i;
}

/* The parameter block of every RNN kernel (kernels.cl, "Recurrent layers"). */
enum {
  RP_KIND,
  RP_DIRS,
  RP_SEQ,
  RP_BATCH,
  RP_INPUT,
  RP_HIDDEN,
  RP_LAYOUT1,
  RP_REVERSE,
  RP_HAS_CLIP,
  RP_CLIP,
  RP_INPUT_FORGET,
  RP_LBR,
  RP_HAS_B,
  RP_HAS_P,
  RP_HAS_Y,
  RP_HAS_H0,
  RP_HAS_C0,
  RP_HAS_LENS,
  RP_LENS64,
  RP_HAS_YH,
  RP_HAS_YC,
  RP_ACT,                      /* [2 directions][3 functions][kind, alpha bits, beta bits] */
  RP_TRANSPOSED = RP_ACT + 18, /* W and R laid out [dirs, input or hidden, gates * hidden] */
  RP_COUNT
};

/* Reads the activations into p[RP_ACT..]; 0 or a refusal. */
static int read_acts(ocl_lower *L, int kind, int dirs, int32_t *p) {
  static const char *const defaults[3][3] = {
      {"Tanh", NULL, NULL}, {"Sigmoid", "Tanh", NULL}, {"Sigmoid", "Tanh", "Tanh"}};
  int n_act = kind == RNN_KIND_LSTM ? 3 : kind == RNN_KIND_GRU ? 2 : 1;
  tsr_plugin_attr a;
  const char *const *names = NULL;
  size_t count = 0;
  if (L->api->node_attr(L->g, L->node, "activations", &a)) {
    if (a.type != TSR_PLUGIN_ATTR_STRINGS)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "activations is not a list of strings");
    names = a.strings;
    count = a.count;
    if (count != (size_t)n_act && count != (size_t)(n_act * dirs))
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "activations has %zu names, expected %d", count,
                    n_act * dirs);
  }
  const float *alphas = NULL, *betas = NULL;
  size_t n_alpha = 0, n_beta = 0, ia = 0, ib = 0;
  if (L->api->node_attr(L->g, L->node, "activation_alpha", &a) && a.type == TSR_PLUGIN_ATTR_FLOATS)
    alphas = a.floats, n_alpha = a.count;
  if (L->api->node_attr(L->g, L->node, "activation_beta", &a) && a.type == TSR_PLUGIN_ATTR_FLOATS)
    betas = a.floats, n_beta = a.count;
  size_t listed = names ? count : (size_t)n_act;
  for (size_t k = 0; k < listed; k++) {
    const char *name = names ? names[k] : defaults[kind][k];
    int f = name ? find_act(name) : -1;
    if (f < 0)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "activation '%s' not supported",
                    name ? name : "(null)");
    float al = rnn_acts[f].alpha, be = rnn_acts[f].beta;
    if (rnn_acts[f].uses_alpha && ia < n_alpha)
      al = alphas[ia++];
    if (rnn_acts[f].uses_beta && ib < n_beta)
      be = betas[ib++];
    int32_t *q = p + RP_ACT + ((k / n_act) * 3 + k % n_act) * 3;
    q[0] = f;
    q[1] = float_bits(al);
    q[2] = float_bits(be);
  }
  if (listed == (size_t)n_act)
    memcpy(p + RP_ACT + 9, p + RP_ACT, 9 * sizeof *p);
  return 0;
}

static bool dims_are(const tsr_plugin_value *v, uint32_t rank, const int64_t *want) {
  if (v->rank != rank)
    return false;
  for (uint32_t i = 0; i < rank; i++)
    if (v->dims[i] != want[i])
      return false;
  return true;
}

/* A buffer holding weight v ([mats, rows, cols]), transposed to [mats, cols, rows] when
 * `transpose`: built on the host when v is a constant, else by a launch before the others on
 * every run. */
static int laid_out(ocl_lower *L, int32_t v, int32_t mats, int32_t rows, int32_t cols,
                    bool transpose, cl_mem *out) {
  tsr_plugin_value vv = vinfo(L, v);
  uint64_t n = (uint64_t)mats * (uint64_t)rows * (uint64_t)cols;
  if (vv.const_data) {
    float *t = malloc((n ? n : 1) * sizeof *t);
    if (!t)
      return refuse(L, OCL_LOWER_DEVICE_ERROR, "out of host memory");
    const float *src = vv.const_data;
    for (int64_t m = 0; m < mats; m++)
      for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
          t[transpose ? (m * cols + c) * rows + r : (m * rows + r) * cols + c] =
              src[(m * rows + r) * cols + c];
    *out = ocl__buffer(L, n * sizeof(float), t);
    free(t);
    return *out ? 0 : OCL_LOWER_DEVICE_ERROR;
  }
  *out = ocl__buffer(L, n * sizeof(float), NULL);
  if (!*out)
    return OCL_LOWER_DEVICE_ERROR;
  STEP(s, "rnn_transpose");
  TRY(ocl__arg_mem(L, s, *out));
  TRY(ocl__arg_value(L, s, v, 4));
  TRY(ocl__arg_int(L, s, mats));
  TRY(ocl__arg_int(L, s, rows));
  TRY(ocl__arg_int(L, s, cols));
  TRY(ocl__arg_int(L, s, transpose));
  ocl__launch_1d(s, n);
  return 0;
}

static int lower_rnn(ocl_lower *L, int kind) {
  int64_t opset = L->api->node_opset(L->g, L->node);
  if (opset < 7)
    return refuse(L, TSR_PLUGIN_REASON_OP, "opset %lld below 7 not supported", (long long)opset);
  uint32_t max_in = kind == RNN_KIND_LSTM ? 8 : 6, max_out = kind == RNN_KIND_LSTM ? 3 : 2;
  if (n_in(L) > max_in || n_out(L) > max_out)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "too many inputs or outputs");
  int32_t x = in_idx(L, 0), w = in_idx(L, 1), r = in_idx(L, 2), b = in_idx(L, 3),
          lens = in_idx(L, 4), h0 = in_idx(L, 5), c0 = kind == RNN_KIND_LSTM ? in_idx(L, 6) : -1,
          pp = kind == RNN_KIND_LSTM ? in_idx(L, 7) : -1;
  int32_t y = out_idx(L, 0), yh = out_idx(L, 1), yc = kind == RNN_KIND_LSTM ? out_idx(L, 2) : -1;
  if (x < 0 || w < 0 || r < 0)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "expects inputs X, W and R");
  const int32_t floats[] = {x, w, r, b, h0, c0, pp, y, yh, yc};
  static const char *const float_names[] = {"X",         "W", "R", "B",   "initial_h",
                                            "initial_c", "P", "Y", "Y_h", "Y_c"};
  for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
    if (floats[i] < 0)
      continue;
    tsr_plugin_value v = vinfo(L, floats[i]);
    if (v.dtype != TSR_DTYPE_FLOAT32)
      return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported (%s; float32 only)",
                    dtype_name(v.dtype), float_names[i]);
  }
  tsr_plugin_value vx = vinfo(L, x), vw = vinfo(L, w), vr = vinfo(L, r), vl = vinfo(L, lens);
  if (lens >= 0 && vl.dtype != TSR_DTYPE_INT32 && vl.dtype != TSR_DTYPE_INT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "sequence_lens of dtype %s", dtype_name(vl.dtype));

  int32_t p[RP_COUNT];
  memset(p, 0, sizeof p);
  p[RP_KIND] = kind;
  const char *dir = attr_str(L, "direction", "forward");
  int dirs = 1;
  if (!strcmp(dir, "bidirectional"))
    dirs = 2;
  else if (!strcmp(dir, "reverse"))
    p[RP_REVERSE] = 1;
  else if (strcmp(dir, "forward") != 0)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "direction '%s' not supported", dir);
  int64_t layout = opset >= 14 ? attr_int(L, "layout", 0) : 0;
  if (layout != 0 && layout != 1)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "layout %lld is not 0 or 1", (long long)layout);
  if (has_attr(L, "clip")) {
    float clip = attr_float(L, "clip", 0.0f);
    if (!(clip > 0.0f))
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "clip is not positive");
    p[RP_HAS_CLIP] = 1;
    p[RP_CLIP] = float_bits(clip);
  }
  if (kind == RNN_KIND_LSTM) {
    int64_t f = attr_int(L, "input_forget", 0);
    if (f != 0 && f != 1)
      return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "input_forget not 0 or 1");
    p[RP_INPUT_FORGET] = (int32_t)f;
  }
  if (kind == RNN_KIND_GRU)
    p[RP_LBR] = attr_int(L, "linear_before_reset", 0) != 0;
  TRY(read_acts(L, kind, dirs, p));

  if (vx.rank != 3 || vw.rank != 3 || vr.rank != 3)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "X, W and R must have rank 3");
  int64_t seq = vx.dims[layout ? 1 : 0], batch = vx.dims[layout ? 0 : 1], input = vx.dims[2],
          hidden = vr.dims[2];
  if (has_attr(L, "hidden_size") && attr_int(L, "hidden_size", 0) != hidden)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "hidden_size does not match R");
  int64_t G = kind == RNN_KIND_LSTM ? 4 : kind == RNN_KIND_GRU ? 3 : 1, GH = G * hidden;
  if (hidden < 1 || GH * (input > hidden ? input : hidden) * dirs > MAX_ELEMS ||
      dirs * seq * batch * GH > MAX_ELEMS)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "sizes out of range for 32-bit indexing");
  const int64_t wd[3] = {dirs, GH, input}, rd[3] = {dirs, GH, hidden}, bd[2] = {dirs, 2 * GH},
                pd[2] = {dirs, 3 * hidden};
  int64_t sd[3] = {dirs, batch, hidden}, yd[4] = {seq, dirs, batch, hidden};
  if (layout) {
    sd[0] = batch, sd[1] = dirs;
    yd[0] = batch, yd[1] = seq, yd[2] = dirs;
  }
  tsr_plugin_value vv;
  if (!dims_are(&vw, 3, wd) || !dims_are(&vr, 3, rd))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "W or R does not match the direction and sizes");
  if (b >= 0 && (vv = vinfo(L, b), !dims_are(&vv, 2, bd)))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "B is not [%d, %lld]", dirs, (long long)(2 * GH));
  if (lens >= 0 && !dims_are(&vl, 1, &batch))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "sequence_lens is not [%lld]", (long long)batch);
  if (pp >= 0 && (vv = vinfo(L, pp), !dims_are(&vv, 2, pd)))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "P is not [%d, %lld]", dirs, (long long)(3 * hidden));
  const int32_t states[] = {h0, c0, yh, yc};
  for (int i = 0; i < 4; i++)
    if (states[i] >= 0 && (vv = vinfo(L, states[i]), !dims_are(&vv, 3, sd)))
      return refuse(L, TSR_PLUGIN_REASON_SHAPE, "a state tensor has the wrong shape");
  if (y >= 0 && (vv = vinfo(L, y), !dims_are(&vv, 4, yd)))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "Y has the wrong shape");
  if (!L->exe)
    return 0;

  p[RP_DIRS] = dirs;
  p[RP_SEQ] = (int32_t)seq;
  p[RP_BATCH] = (int32_t)batch;
  p[RP_INPUT] = (int32_t)input;
  p[RP_HIDDEN] = (int32_t)hidden;
  p[RP_LAYOUT1] = (int32_t)layout;
  p[RP_HAS_B] = b >= 0;
  p[RP_HAS_P] = pp >= 0;
  p[RP_HAS_Y] = y >= 0;
  p[RP_HAS_H0] = h0 >= 0;
  p[RP_HAS_C0] = c0 >= 0;
  p[RP_HAS_LENS] = lens >= 0;
  p[RP_LENS64] = lens >= 0 && vl.dtype == TSR_DTYPE_INT64;
  p[RP_HAS_YH] = yh >= 0;
  p[RP_HAS_YC] = yc >= 0;
  if (y < 0 && yh < 0 && yc < 0)
    return 0; /* nothing to compute */

  uint64_t state = (uint64_t)(dirs * batch * hidden) * sizeof(float);
  bool gru_split = kind == RNN_KIND_GRU && !p[RP_LBR];
  /* The gate rows of W and R: on GPUs transposed, so that the work items of neighbouring
   * rows read neighbouring addresses (coalesced); on CPU devices (PoCL runs each work item's
   * loop on its own) row-major, so that each work item streams one row. */
  bool transpose = L->dev->props.kind != TSR_PLUGIN_DEVICE_CPU;
  p[RP_TRANSPOSED] = transpose;
  cl_mem pm = ocl__buffer(L, sizeof p, p);
  cl_mem hs[2] = {ocl__buffer(L, state, NULL), ocl__buffer(L, state, NULL)};
  cl_mem cs = ocl__buffer(L, kind == RNN_KIND_LSTM ? state : 4, NULL);
  cl_mem rh = ocl__buffer(L, gru_split ? state : 4, NULL);
  cl_mem ls = ocl__buffer(L, (uint64_t)(batch ? batch : 1) * sizeof(int32_t), NULL);
  cl_mem xw = ocl__buffer(L, (uint64_t)(dirs * seq * batch * GH) * sizeof(float), NULL);
  if (!pm || !hs[0] || !hs[1] || !cs || !rh || !ls || !xw)
    return OCL_LOWER_DEVICE_ERROR;
  cl_mem wt, rt;
  TRY(laid_out(L, w, (int32_t)dirs, (int32_t)GH, (int32_t)input, transpose, &wt));
  TRY(laid_out(L, r, (int32_t)dirs, (int32_t)GH, (int32_t)hidden, transpose, &rt));
  uint64_t units = (uint64_t)(dirs * batch * hidden);

  STEP(si, "rnn_init_f32");
  TRY(ocl__arg_mem(L, si, hs[0]));
  TRY(ocl__arg_mem(L, si, cs));
  TRY(ocl__arg_mem(L, si, ls));
  TRY(ocl__arg_value(L, si, h0, 4));
  TRY(ocl__arg_value(L, si, c0, 4));
  TRY(ocl__arg_value(L, si, lens, lens >= 0 ? dtype_size(vl.dtype) : 4));
  TRY(ocl__arg_mem(L, si, pm));
  ocl__launch_1d(si, units);

  STEP(sx, "rnn_xw_f32");
  TRY(ocl__arg_mem(L, sx, xw));
  TRY(ocl__arg_value(L, sx, x, 4));
  TRY(ocl__arg_mem(L, sx, wt));
  TRY(ocl__arg_value(L, sx, b, 4));
  TRY(ocl__arg_mem(L, sx, pm));
  ocl__launch_1d(sx, (uint64_t)(dirs * seq * batch * GH));

  for (int64_t s = 0; s < seq; s++) {
    cl_mem hin = hs[s % 2], hout = hs[(s + 1) % 2];
    if (gru_split) {
      STEP(sr, "gru_reset_f32");
      TRY(ocl__arg_mem(L, sr, xw));
      TRY(ocl__arg_mem(L, sr, rt));
      TRY(ocl__arg_mem(L, sr, ls));
      TRY(ocl__arg_mem(L, sr, hin));
      TRY(ocl__arg_mem(L, sr, rh));
      TRY(ocl__arg_mem(L, sr, pm));
      TRY(ocl__arg_int(L, sr, (int32_t)s));
      ocl__launch_1d(sr, units);
    }
    STEP(st, "rnn_step_f32");
    TRY(ocl__arg_mem(L, st, xw));
    TRY(ocl__arg_mem(L, st, rt));
    TRY(ocl__arg_value(L, st, b, 4));
    TRY(ocl__arg_value(L, st, pp, 4));
    TRY(ocl__arg_mem(L, st, ls));
    TRY(ocl__arg_mem(L, st, hin));
    TRY(ocl__arg_mem(L, st, hout));
    TRY(ocl__arg_mem(L, st, cs));
    TRY(ocl__arg_mem(L, st, rh));
    TRY(ocl__arg_value(L, st, y, 4));
    TRY(ocl__arg_mem(L, st, pm));
    TRY(ocl__arg_int(L, st, (int32_t)s));
    ocl__launch_1d(st, units);
  }

  if (yh >= 0 || yc >= 0) {
    STEP(sf, "rnn_final_f32");
    TRY(ocl__arg_value(L, sf, yh, 4));
    TRY(ocl__arg_value(L, sf, yc, 4));
    TRY(ocl__arg_mem(L, sf, hs[seq % 2]));
    TRY(ocl__arg_mem(L, sf, cs));
    TRY(ocl__arg_mem(L, sf, ls));
    TRY(ocl__arg_mem(L, sf, pm));
    ocl__launch_1d(sf, units);
  }
  return 0;
}

int ocl__lower_rnn(ocl_lower *L, const char *op) {
  if (!strcmp(op, "LSTM"))
    return lower_rnn(L, RNN_KIND_LSTM);
  if (!strcmp(op, "GRU"))
    return lower_rnn(L, RNN_KIND_GRU);
  if (!strcmp(op, "RNN"))
    return lower_rnn(L, RNN_KIND_RNN);
  return OCL_LOWER_NOT_MINE;
}
