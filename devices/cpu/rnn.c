/* The recurrent layers LSTM, GRU and RNN (opsets 7 to 17: directions forward, reverse and
 * bidirectional; optional B, sequence_lens, initial_h, initial_c and P; activations with
 * alpha/beta; clip; input_forget; linear_before_reset; layout 0 and 1 from opset 14; the
 * optional outputs Y, Y_h and Y_c).
 *
 * One kernel serves the three ops. Per direction, the input projection of every time step is a
 * single GEMM, X[seq*batch, input] * W^T, since it does not depend on the state; each step then
 * costs one recurrent GEMM, H[batch, hidden] * R^T (two for GRU without linear_before_reset,
 * whose candidate gate multiplies R by r (.) H), and elementwise gate math.
 *
 * Everything is computed in float32 through cpu_sgemm; float16 tensors are staged through
 * float32 copies. float64 is refused rather than silently computed in float32.
 *
 * Choices where the ONNX specification is silent, documented here once:
 * - activation_alpha/activation_beta are consumed in the order of the activations list, one
 *   value by each function that takes one (as onnxruntime does); a function whose value is
 *   not listed takes the default of the ONNX operator of the same name (LeakyRelu 0.01,
 *   ThresholdedRelu 1, HardSigmoid 0.2/0.5, Elu 1, Affine 1/0, ScaledTanh 1/1).
 * - A bidirectional node may list the activations of one direction only; the other direction
 *   uses the same ones.
 * - Activation names match case-insensitively; ThresholdedRelu passes x when x > alpha.
 * - A batch entry whose sequence length is 0 has no last state: its rows of Y_h and Y_c are 0.
 *   Y is 0 at every step past an entry's length.
 * - input_forget couples the forget gate to the input gate: f = 1 - i. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/nn_util.h"

typedef enum rnn_kind { KIND_RNN = 0, KIND_GRU = 1, KIND_LSTM = 2 } rnn_kind;

typedef enum act_kind {
  ACT_RELU,
  ACT_TANH,
  ACT_SIGMOID,
  ACT_AFFINE,
  ACT_LEAKYRELU,
  ACT_THRESHOLDEDRELU,
  ACT_SCALEDTANH,
  ACT_HARDSIGMOID,
  ACT_ELU,
  ACT_SOFTSIGN,
  ACT_SOFTPLUS
} act_kind;

typedef struct act_info {
  const char *name;
  act_kind kind;
  bool uses_alpha, uses_beta;
  float alpha, beta; /* defaults */
} act_info;

static const act_info act_table[] = {
    {"Relu", ACT_RELU, false, false, 0.0f, 0.0f},
    {"Tanh", ACT_TANH, false, false, 0.0f, 0.0f},
    {"Sigmoid", ACT_SIGMOID, false, false, 0.0f, 0.0f},
    {"Affine", ACT_AFFINE, true, true, 1.0f, 0.0f},
    {"LeakyRelu", ACT_LEAKYRELU, true, false, 0.01f, 0.0f},
    {"ThresholdedRelu", ACT_THRESHOLDEDRELU, true, false, 1.0f, 0.0f},
    {"ScaledTanh", ACT_SCALEDTANH, true, true, 1.0f, 1.0f},
    {"HardSigmoid", ACT_HARDSIGMOID, true, true, 0.2f, 0.5f},
    {"Elu", ACT_ELU, true, false, 1.0f, 0.0f},
    {"Softsign", ACT_SOFTSIGN, false, false, 0.0f, 0.0f},
    {"Softplus", ACT_SOFTPLUS, false, false, 0.0f, 0.0f},
};

typedef struct rnn_act {
  act_kind kind;
  float alpha, beta;
} rnn_act;

/* Everything run() needs, derived from the node's attributes and tensor shapes. */
typedef struct rnn_plan {
  rnn_kind kind;
  size_t gates; /* 1 (RNN), 3 (GRU: z r h), 4 (LSTM: i o f c) */
  size_t n_act; /* activations per direction */
  size_t seq, batch, input, hidden, dirs;
  bool layout1; /* X [batch, seq, input]; states [batch, dirs, hidden] */
  bool reverse; /* direction "reverse": the only direction runs backwards */
  bool has_clip;
  float clip;
  bool input_forget, linear_before_reset;
  rnn_act act[2][3];
  /* Inputs by position; NULL when absent. */
  const cpu_tensor *x, *w, *r, *b, *lens, *h0, *c0, *p;
  /* Outputs; NULL when absent. */
  const cpu_tensor *y, *yh, *yc;
} rnn_plan;

static rnn_kind kind_of(const char *op_type) {
  return op_type[0] == 'L' ? KIND_LSTM : op_type[0] == 'G' ? KIND_GRU : KIND_RNN;
}

static bool same_name(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
      return false;
  return *a == *b;
}

static const act_info *find_act(const char *name) {
  for (size_t i = 0; i < sizeof act_table / sizeof act_table[0]; i++)
    if (same_name(name, act_table[i].name))
      return &act_table[i];
  return NULL;
}

static bool dims_are(const cpu_tensor *t, uint32_t rank, const int64_t *want) {
  if (t->rank != rank)
    return false;
  for (uint32_t i = 0; i < rank; i++)
    if (t->dims[i] != want[i])
      return false;
  return true;
}

static bool rnn_dtype_ok(uint32_t dt) { return dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT16; }

/* Reads the activations and their alpha/beta lists into p->act. */
static tsr_plugin_reason read_activations(const cpu_node *n, rnn_plan *p, char *msg, size_t size) {
  static const char *const defaults[3][3] = {
      {"Tanh", NULL, NULL}, {"Sigmoid", "Tanh", NULL}, {"Sigmoid", "Tanh", "Tanh"}};
  tsr_plugin_attr a;
  const char *const *names = NULL;
  size_t count = 0;
  if (n->api && n->g && n->api->node_attr(n->g, n->index, "activations", &a)) {
    if (a.type != TSR_PLUGIN_ATTR_STRINGS)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "attribute activations is not a list of strings");
    names = a.strings;
    count = a.count;
    if (count != p->n_act && count != p->n_act * p->dirs)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "attribute activations has %zu names, expected %zu", count,
                        p->n_act * p->dirs);
  }
  const float *alphas, *betas;
  size_t n_alpha = cpu_attr_floats(n, "activation_alpha", &alphas);
  size_t n_beta = cpu_attr_floats(n, "activation_beta", &betas);
  size_t ia = 0, ib = 0;
  size_t listed = names ? count : p->n_act;
  for (size_t k = 0; k < listed; k++) {
    const char *name = names ? names[k] : defaults[p->kind][k];
    const act_info *info = name ? find_act(name) : NULL;
    if (!info)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "activation '%s' is not known",
                        name ? name : "(null)");
    rnn_act act = {info->kind, info->alpha, info->beta};
    if (info->uses_alpha && ia < n_alpha)
      act.alpha = alphas[ia++];
    if (info->uses_beta && ib < n_beta)
      act.beta = betas[ib++];
    p->act[k / p->n_act][k % p->n_act] = act;
  }
  if (listed == p->n_act)
    for (size_t k = 0; k < p->n_act; k++)
      p->act[1][k] = p->act[0][k];
  return TSR_PLUGIN_REASON_NONE;
}

/* Validates the node (attributes, dtypes, shapes) against tensors `in`/`out` and fills p. Used
 * by check() with the static shapes and by run() with the tensors it is given. */
static tsr_plugin_reason rnn_setup(const cpu_node *n, const cpu_tensor *in, uint32_t n_in,
                                   const cpu_tensor *out, uint32_t n_out, rnn_plan *p, char *msg,
                                   size_t size) {
  char s1[96];
  memset(p, 0, sizeof *p);
  p->kind = kind_of(n->op_type);
  p->gates = p->kind == KIND_LSTM ? 4 : p->kind == KIND_GRU ? 3 : 1;
  p->n_act = p->kind == KIND_LSTM ? 3 : p->kind == KIND_GRU ? 2 : 1;
  uint32_t max_in = p->kind == KIND_LSTM ? 8 : 6, max_out = p->kind == KIND_LSTM ? 3 : 2;
  if (n_in < 3 || !in[0].present || !in[1].present || !in[2].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects inputs X, W and R");
  if (n_in > max_in)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "has %u inputs, at most %u allowed", n_in,
                      max_in);
  if (n_out > max_out)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "has %u outputs, at most %u allowed",
                      n_out, max_out);
  p->x = &in[0];
  p->w = &in[1];
  p->r = &in[2];
  if (n_in > 3 && in[3].present)
    p->b = &in[3];
  if (n_in > 4 && in[4].present)
    p->lens = &in[4];
  if (n_in > 5 && in[5].present)
    p->h0 = &in[5];
  if (n_in > 6 && in[6].present)
    p->c0 = &in[6];
  if (n_in > 7 && in[7].present)
    p->p = &in[7];
  if (n_out > 0 && out[0].present)
    p->y = &out[0];
  if (n_out > 1 && out[1].present)
    p->yh = &out[1];
  if (n_out > 2 && out[2].present)
    p->yc = &out[2];

  /* Attributes. */
  const char *dir = cpu_attr_string(n, "direction", "forward");
  if (!strcmp(dir, "bidirectional")) {
    p->dirs = 2;
  } else if (!strcmp(dir, "forward") || !strcmp(dir, "reverse")) {
    p->dirs = 1;
    p->reverse = dir[0] == 'r';
  } else {
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "direction '%s' is not known", dir);
  }
  int64_t layout = n->opset >= 14 ? cpu_attr_int(n, "layout", 0) : 0;
  if (layout != 0 && layout != 1)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "layout %lld is not 0 or 1",
                      (long long)layout);
  p->layout1 = layout == 1;
  p->has_clip = cpu_has_attr(n, "clip");
  p->clip = cpu_attr_float(n, "clip", 0.0f);
  if (p->has_clip && !(p->clip > 0.0f))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "clip %g is not positive",
                      (double)p->clip);
  if (p->kind == KIND_LSTM) {
    int64_t v = cpu_attr_int(n, "input_forget", 0);
    if (v != 0 && v != 1)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "input_forget %lld is not 0 or 1",
                        (long long)v);
    p->input_forget = v == 1;
  }
  if (p->kind == KIND_GRU)
    p->linear_before_reset = cpu_attr_int(n, "linear_before_reset", 0) != 0;
  tsr_plugin_reason r = read_activations(n, p, msg, size);
  if (r)
    return r;

  /* Dtypes. */
  uint32_t dt = p->x->dtype;
  if (!rnn_dtype_ok(dt))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "dtype %s not supported (float32 and float16 are)", cpu_dtype_name(dt));
  const cpu_tensor *same_dt[] = {p->w, p->r, p->b, p->h0, p->c0, p->p, p->y, p->yh, p->yc};
  static const char *const same_dt_names[] = {"W", "R", "B",   "initial_h", "initial_c",
                                              "P", "Y", "Y_h", "Y_c"};
  for (size_t i = 0; i < sizeof same_dt / sizeof same_dt[0]; i++)
    if (same_dt[i] && same_dt[i]->dtype != dt)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "%s is %s but X is %s",
                        same_dt_names[i], cpu_dtype_name(same_dt[i]->dtype), cpu_dtype_name(dt));
  if (p->lens && p->lens->dtype != TSR_DTYPE_INT32 && p->lens->dtype != TSR_DTYPE_INT64)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "sequence_lens is %s, not int32",
                      cpu_dtype_name(p->lens->dtype));

  /* Shapes. */
  if (p->x->rank != 3 || p->w->rank != 3 || p->r->rank != 3)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "X, W and R must have rank 3 (ranks %u, %u, %u)", p->x->rank, p->w->rank,
                      p->r->rank);
  int64_t seq = p->x->dims[p->layout1 ? 1 : 0], batch = p->x->dims[p->layout1 ? 0 : 1];
  int64_t input = p->x->dims[2], hidden = p->r->dims[2];
  if (cpu_has_attr(n, "hidden_size")) {
    int64_t hs = cpu_attr_int(n, "hidden_size", 0);
    if (hs != hidden)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "hidden_size %lld does not match R %s",
                        (long long)hs, nn_dims_str(s1, sizeof s1, p->r->rank, p->r->dims));
  }
  int64_t dirs = (int64_t)p->dirs, gh = (int64_t)p->gates * hidden;
  /* Limits that keep every product below 2^62: each factor under 2^31 and the scratch sizes
   * checked below. */
  const int64_t lim = (int64_t)1 << 31;
  if (seq < 0 || batch < 0 || input < 0 || hidden < 1 || seq > lim || batch > lim || input > lim ||
      hidden > lim / 4)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "sizes seq %lld, batch %lld, input %lld, hidden %lld are out of range",
                      (long long)seq, (long long)batch, (long long)input, (long long)hidden);
  const int64_t wd[3] = {dirs, gh, input}, rd[3] = {dirs, gh, hidden};
  if (!dims_are(p->w, 3, wd))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "W is %s, expected [%lld,%lld,%lld]",
                      nn_dims_str(s1, sizeof s1, p->w->rank, p->w->dims), (long long)dirs,
                      (long long)gh, (long long)input);
  if (!dims_are(p->r, 3, rd))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "R is %s, expected [%lld,%lld,%lld]",
                      nn_dims_str(s1, sizeof s1, p->r->rank, p->r->dims), (long long)dirs,
                      (long long)gh, (long long)hidden);
  const int64_t bd[2] = {dirs, 2 * gh};
  if (p->b && !dims_are(p->b, 2, bd))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "B is %s, expected [%lld,%lld]",
                      nn_dims_str(s1, sizeof s1, p->b->rank, p->b->dims), (long long)dirs,
                      (long long)(2 * gh));
  if (p->lens && !dims_are(p->lens, 1, &batch))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "sequence_lens is %s, expected [%lld]",
                      nn_dims_str(s1, sizeof s1, p->lens->rank, p->lens->dims), (long long)batch);
  int64_t sd[3] = {dirs, batch, hidden};
  if (p->layout1)
    sd[0] = batch, sd[1] = dirs;
  const cpu_tensor *states[] = {p->h0, p->c0, p->yh, p->yc};
  static const char *const state_names[] = {"initial_h", "initial_c", "Y_h", "Y_c"};
  for (size_t i = 0; i < 4; i++)
    if (states[i] && !dims_are(states[i], 3, sd))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "%s is %s, expected [%lld,%lld,%lld]",
                        state_names[i],
                        nn_dims_str(s1, sizeof s1, states[i]->rank, states[i]->dims),
                        (long long)sd[0], (long long)sd[1], (long long)sd[2]);
  const int64_t pd[2] = {dirs, 3 * hidden};
  if (p->p && !dims_are(p->p, 2, pd))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "P is %s, expected [%lld,%lld]",
                      nn_dims_str(s1, sizeof s1, p->p->rank, p->p->dims), (long long)dirs,
                      (long long)(3 * hidden));
  int64_t yd[4] = {seq, dirs, batch, hidden};
  if (p->layout1)
    yd[0] = batch, yd[1] = seq, yd[2] = dirs;
  if (p->y && !dims_are(p->y, 4, yd))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "Y is %s, expected [%lld,%lld,%lld,%lld]",
                      nn_dims_str(s1, sizeof s1, p->y->rank, p->y->dims), (long long)yd[0],
                      (long long)yd[1], (long long)yd[2], (long long)yd[3]);
  /* The largest scratch buffer is seq * batch * gates * hidden floats. */
  double big = (double)seq * (double)batch * (double)gh;
  if (big > (double)((int64_t)1 << 40) || (double)batch * (double)gh > (double)((int64_t)1 << 40))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "seq %lld x batch %lld x %lld gate rows is too large", (long long)seq,
                      (long long)batch, (long long)gh);
  p->seq = (size_t)seq;
  p->batch = (size_t)batch;
  p->input = (size_t)input;
  p->hidden = (size_t)hidden;
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason rnn_check(const cpu_node *n, char *msg, size_t size) {
  rnn_plan p;
  return rnn_setup(n, n->in, n->n_in, n->out, n->n_out, &p, msg, size);
}

/* ---- Activations ------------------------------------------------------------------------ */

static float sigmoidf(float x) {
  if (x >= 0.0f)
    return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

/* Applies a to v[0..n) in place; the switch sits outside the loops. */
static void act_apply(const rnn_act *a, float *v, size_t n) {
  float al = a->alpha, be = a->beta;
  switch (a->kind) {
  case ACT_RELU:
    for (size_t i = 0; i < n; i++)
      v[i] = v[i] > 0.0f ? v[i] : 0.0f;
    break;
  case ACT_TANH:
    for (size_t i = 0; i < n; i++)
      v[i] = tanhf(v[i]);
    break;
  case ACT_SIGMOID:
    for (size_t i = 0; i < n; i++)
      v[i] = sigmoidf(v[i]);
    break;
  case ACT_AFFINE:
    for (size_t i = 0; i < n; i++)
      v[i] = al * v[i] + be;
    break;
  case ACT_LEAKYRELU:
    for (size_t i = 0; i < n; i++)
      v[i] = v[i] >= 0.0f ? v[i] : al * v[i];
    break;
  case ACT_THRESHOLDEDRELU:
    for (size_t i = 0; i < n; i++)
      v[i] = v[i] > al ? v[i] : 0.0f;
    break;
  case ACT_SCALEDTANH:
    for (size_t i = 0; i < n; i++)
      v[i] = al * tanhf(be * v[i]);
    break;
  case ACT_HARDSIGMOID:
    for (size_t i = 0; i < n; i++)
      v[i] = fminf(fmaxf(al * v[i] + be, 0.0f), 1.0f);
    break;
  case ACT_ELU:
    for (size_t i = 0; i < n; i++)
      v[i] = v[i] >= 0.0f ? v[i] : al * expm1f(v[i]);
    break;
  case ACT_SOFTSIGN:
    for (size_t i = 0; i < n; i++)
      v[i] = v[i] / (1.0f + fabsf(v[i]));
    break;
  case ACT_SOFTPLUS:
    for (size_t i = 0; i < n; i++)
      v[i] = v[i] > 0.0f ? v[i] + log1pf(expf(-v[i])) : log1pf(expf(v[i]));
    break;
  }
}

static void clip_apply(const rnn_plan *p, float *v, size_t n) {
  if (!p->has_clip)
    return;
  float c = p->clip;
  for (size_t i = 0; i < n; i++)
    v[i] = fminf(fmaxf(v[i], -c), c);
}

/* ---- The recurrence ------------------------------------------------------------------- */

/* Scratch for one run; every pointer is freed by work_free(). */
typedef struct rnn_work {
  float *x, *w, *r, *b, *h0, *c0, *pp; /* float32 views of the inputs (maybe owned) */
  float *y, *yh, *yc;                  /* float32 views of the outputs (maybe owned) */
  float *owned[10];                    /* 7 inputs and 3 outputs at most */
  size_t n_owned;
  float *xw;    /* [seq*batch, gates*hidden]: the input projection of one direction */
  float *rec;   /* [batch, gates*hidden]: the recurrent projection of one step */
  float *h, *c; /* [batch, hidden]: the state */
  float *rh;    /* GRU without linear_before_reset: r (.) H, then its projection */
  float *rh_out;
  float *bias; /* [gates*hidden]: Wb + Rb summed where the equations allow it */
  size_t *lens;
} rnn_work;

static void work_free(rnn_work *w) {
  for (size_t i = 0; i < w->n_owned; i++)
    free(w->owned[i]);
  free(w->xw);
  free(w->rec);
  free(w->h);
  free(w->c);
  free(w->rh);
  free(w->rh_out);
  free(w->bias);
  free(w->lens);
}

/* A float32 view of an input; a copy when its dtype differs. False on out-of-memory. */
static bool f32_in(rnn_work *w, const cpu_tensor *t, float **out) {
  static float empty[1];
  *out = NULL;
  if (!t)
    return true;
  if (t->count == 0) {
    *out = empty; /* never read: every loop over it is empty */
    return true;
  }
  if (t->dtype == TSR_DTYPE_FLOAT32) {
    *out = t->data;
    return true;
  }
  float *c = nn_f32_copy(t);
  if (!c)
    return false;
  w->owned[w->n_owned++] = c;
  *out = c;
  return true;
}

/* A float32 buffer for an output: the output itself when float32, else scratch stored later. */
static bool f32_out(rnn_work *w, const cpu_tensor *t, float **out) {
  *out = NULL;
  if (!t)
    return true;
  if (t->dtype == TSR_DTYPE_FLOAT32) {
    *out = t->data;
    return true;
  }
  float *c = malloc((t->count ? t->count : 1) * sizeof *c);
  if (!c)
    return false;
  w->owned[w->n_owned++] = c;
  *out = c;
  return true;
}

static size_t x_row(const rnn_plan *p, size_t t, size_t b) {
  return p->layout1 ? b * p->seq + t : t * p->batch + b;
}

/* Offset of (direction d, batch b) in initial_h, initial_c, Y_h and Y_c. */
static size_t state_off(const rnn_plan *p, size_t d, size_t b) {
  return (p->layout1 ? b * p->dirs + d : d * p->batch + b) * p->hidden;
}

static size_t y_off(const rnn_plan *p, size_t t, size_t d, size_t b) {
  if (p->layout1)
    return ((b * p->seq + t) * p->dirs + d) * p->hidden;
  return ((t * p->dirs + d) * p->batch + b) * p->hidden;
}

/* Gate math of one LSTM row. g: [4H] pre-activations without bias and peepholes (gate order
 * i, o, f, c); updates h and c in place. */
static void lstm_row(const rnn_plan *p, const rnn_act *act, float *g, const float *bias,
                     const float *peep, float *h, float *c) {
  size_t H = p->hidden;
  float *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H;
  if (bias)
    for (size_t j = 0; j < 4 * H; j++)
      g[j] += bias[j];
  if (peep)
    for (size_t j = 0; j < H; j++) {
      gi[j] += peep[j] * c[j];
      gf[j] += peep[2 * H + j] * c[j];
    }
  clip_apply(p, gi, H);
  act_apply(&act[0], gi, H);
  if (p->input_forget) {
    for (size_t j = 0; j < H; j++)
      gf[j] = 1.0f - gi[j];
  } else {
    clip_apply(p, gf, H);
    act_apply(&act[0], gf, H);
  }
  clip_apply(p, gc, H);
  act_apply(&act[1], gc, H);
  for (size_t j = 0; j < H; j++)
    c[j] = gf[j] * c[j] + gi[j] * gc[j];
  if (peep)
    for (size_t j = 0; j < H; j++)
      go[j] += peep[H + j] * c[j];
  clip_apply(p, go, H);
  act_apply(&act[0], go, H);
  /* h(C) goes through gc, which is free now. */
  memcpy(gc, c, H * sizeof *gc);
  act_apply(&act[2], gc, H);
  for (size_t j = 0; j < H; j++)
    h[j] = go[j] * gc[j];
}

/* Runs direction d with the scratch in w; allocates nothing. */
static void run_direction(cpu_ctx *ctx, const rnn_plan *p, rnn_work *w, size_t d) {
  size_t H = p->hidden, B = p->batch, G = p->gates, GH = G * H, I = p->input;
  const rnn_act *act = p->act[d];
  bool backward = d == 1 || p->reverse;
  const float *W = w->w + d * GH * I, *R = w->r + d * GH * H;
  const float *peep = w->pp ? w->pp + d * 3 * H : NULL;
  bool lbr = p->kind == KIND_GRU && p->linear_before_reset;
  bool gru_split = p->kind == KIND_GRU && !lbr;

  /* Input projection of every step at once. */
  cpu_sgemm(ctx, false, true, p->seq * B, GH, I, 1.0f, w->x, I, W, I, 0.0f, w->xw, GH);

  /* Biases: Wb + Rb, except GRU's Rbh with linear_before_reset, which is applied inside
   * r (.) (H Rh^T + Rbh) and kept at bias[GH..GH+H). */
  const float *bias = NULL;
  if (w->b) {
    const float *wb = w->b + d * 2 * GH, *rb = wb + GH;
    for (size_t j = 0; j < GH; j++)
      w->bias[j] = wb[j] + (lbr && j >= 2 * H ? 0.0f : rb[j]);
    if (lbr)
      memcpy(w->bias + GH, rb + 2 * H, H * sizeof(float));
    bias = w->bias;
  }

  /* Initial state. */
  for (size_t b = 0; b < B; b++) {
    float *h = w->h + b * H, *c = w->c ? w->c + b * H : NULL;
    if (w->h0)
      memcpy(h, w->h0 + state_off(p, d, b), H * sizeof *h);
    else
      memset(h, 0, H * sizeof *h);
    if (c) {
      if (w->c0)
        memcpy(c, w->c0 + state_off(p, d, b), H * sizeof *c);
      else
        memset(c, 0, H * sizeof *c);
    }
  }

  for (size_t s = 0; s < p->seq; s++) {
    size_t t = backward ? p->seq - 1 - s : s;
    /* The recurrent projection; GRU without linear_before_reset projects z and r only, its
     * candidate waits for r. */
    size_t rows = gru_split ? 2 * H : GH;
    cpu_sgemm(ctx, false, true, B, rows, H, 1.0f, w->h, H, R, H, 0.0f, w->rec, GH);
    for (size_t b = 0; b < B; b++) {
      if (t >= w->lens[b]) {
        /* An ended sequence keeps its state; its row of r (.) H only feeds an unused row. */
        if (gru_split)
          memset(w->rh + b * H, 0, H * sizeof(float));
        continue;
      }
      float *g = w->rec + b * GH, *h = w->h + b * H;
      const float *xw = w->xw + x_row(p, t, b) * GH;
      if (p->kind == KIND_LSTM) {
        for (size_t j = 0; j < GH; j++)
          g[j] += xw[j];
        lstm_row(p, act, g, bias, peep, h, w->c + b * H);
      } else if (p->kind == KIND_RNN) {
        for (size_t j = 0; j < H; j++)
          g[j] += xw[j] + (bias ? bias[j] : 0.0f);
        clip_apply(p, g, H);
        act_apply(&act[0], g, H);
        memcpy(h, g, H * sizeof *h);
      } else {
        /* z and r. */
        for (size_t j = 0; j < 2 * H; j++)
          g[j] += xw[j] + (bias ? bias[j] : 0.0f);
        clip_apply(p, g, 2 * H);
        act_apply(&act[0], g, 2 * H);
        if (gru_split) {
          float *rh = w->rh + b * H;
          for (size_t j = 0; j < H; j++)
            rh[j] = g[H + j] * h[j];
        } else {
          float *gh = g + 2 * H;
          for (size_t j = 0; j < H; j++)
            gh[j] = xw[2 * H + j] + (bias ? bias[2 * H + j] : 0.0f) +
                    g[H + j] * (gh[j] + (bias ? bias[GH + j] : 0.0f));
        }
      }
    }
    if (p->kind == KIND_GRU) {
      if (gru_split) {
        cpu_sgemm(ctx, false, true, B, H, H, 1.0f, w->rh, H, R + 2 * H * H, H, 0.0f, w->rh_out, H);
      }
      for (size_t b = 0; b < B; b++) {
        if (t >= w->lens[b])
          continue;
        float *g = w->rec + b * GH, *h = w->h + b * H, *gh = g + 2 * H;
        if (gru_split) {
          const float *xw = w->xw + x_row(p, t, b) * GH, *ro = w->rh_out + b * H;
          for (size_t j = 0; j < H; j++)
            gh[j] = xw[2 * H + j] + (bias ? bias[2 * H + j] : 0.0f) + ro[j];
        }
        clip_apply(p, gh, H);
        act_apply(&act[1], gh, H);
        for (size_t j = 0; j < H; j++)
          h[j] = (1.0f - g[j]) * gh[j] + g[j] * h[j];
      }
    }
    if (w->y)
      for (size_t b = 0; b < B; b++) {
        float *dst = w->y + y_off(p, t, d, b);
        if (t < w->lens[b])
          memcpy(dst, w->h + b * H, H * sizeof *dst);
        else
          memset(dst, 0, H * sizeof *dst);
      }
  }

  for (size_t b = 0; b < B; b++) {
    bool ran = w->lens[b] > 0;
    if (w->yh) {
      float *dst = w->yh + state_off(p, d, b);
      if (ran)
        memcpy(dst, w->h + b * H, H * sizeof *dst);
      else
        memset(dst, 0, H * sizeof *dst);
    }
    if (w->yc) {
      float *dst = w->yc + state_off(p, d, b);
      if (ran)
        memcpy(dst, w->c + b * H, H * sizeof *dst);
      else
        memset(dst, 0, H * sizeof *dst);
    }
  }
}

static void *alloc_f32(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }

static int rnn_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                   cpu_tensor *out) {
  (void)state;
  char msg[256];
  rnn_plan p;
  if (rnn_setup(n, in, n->n_in, out, n->n_out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (!p.y && !p.yh && !p.yc)
    return 0;
  for (uint32_t i = 0; i < n->n_in; i++)
    if (in[i].present && in[i].count && !in[i].data)
      return cpu_fail(ctx, "input %u has no data", i);
  for (uint32_t i = 0; i < n->n_out; i++)
    if (out[i].present && out[i].count && !out[i].data)
      return cpu_fail(ctx, "output %u has no memory", i);
  rnn_work w;
  memset(&w, 0, sizeof w);
  size_t H = p.hidden, B = p.batch, GH = p.gates * H;

  w.lens = malloc((B ? B : 1) * sizeof *w.lens);
  if (!w.lens)
    return cpu_fail(ctx, "out of memory");
  for (size_t b = 0; b < B; b++) {
    int64_t len = p.lens ? cpu_read_int(p.lens, b) : (int64_t)p.seq;
    if (len < 0 || len > (int64_t)p.seq) {
      work_free(&w);
      return cpu_fail(ctx, "sequence_lens[%zu] = %lld is outside [0, %zu]", b, (long long)len,
                      p.seq);
    }
    w.lens[b] = (size_t)len;
  }
  bool ok = f32_in(&w, p.x, &w.x) && f32_in(&w, p.w, &w.w) && f32_in(&w, p.r, &w.r) &&
            f32_in(&w, p.b, &w.b) && f32_in(&w, p.h0, &w.h0) && f32_in(&w, p.c0, &w.c0) &&
            f32_in(&w, p.p, &w.pp) && f32_out(&w, p.y, &w.y) && f32_out(&w, p.yh, &w.yh) &&
            f32_out(&w, p.yc, &w.yc);
  w.xw = alloc_f32(p.seq * B * GH);
  w.rec = alloc_f32(B * GH);
  w.h = alloc_f32(B * H);
  w.bias = alloc_f32(GH + H);
  ok = ok && w.xw && w.rec && w.h && w.bias;
  if (p.kind == KIND_LSTM)
    ok = ok && (w.c = alloc_f32(B * H)) != NULL;
  if (p.kind == KIND_GRU && !p.linear_before_reset)
    ok = ok && (w.rh = alloc_f32(B * H)) != NULL && (w.rh_out = alloc_f32(B * H)) != NULL;
  if (!ok) {
    work_free(&w);
    return cpu_fail(ctx, "out of memory for %zu steps x %zu batch x %zu gate rows", p.seq, B, GH);
  }
  for (size_t d = 0; d < p.dirs; d++)
    run_direction(ctx, &p, &w, d);
  if (p.y && p.y->dtype != TSR_DTYPE_FLOAT32)
    nn_f32_store(&out[0], w.y);
  if (p.yh && p.yh->dtype != TSR_DTYPE_FLOAT32)
    nn_f32_store(&out[1], w.yh);
  if (p.yc && p.yc->dtype != TSR_DTYPE_FLOAT32)
    nn_f32_store(&out[2], w.yc);
  work_free(&w);
  return 0;
}

static const cpu_op rnn_ops[] = {
    {"LSTM", "", 7, 17, rnn_check, NULL, rnn_run, NULL},
    {"GRU", "", 7, 17, rnn_check, NULL, rnn_run, NULL},
    {"RNN", "", 7, 17, rnn_check, NULL, rnn_run, NULL},
};

const cpu_op_list cpu_ops_rnn = {rnn_ops, sizeof rnn_ops / sizeof rnn_ops[0]};
