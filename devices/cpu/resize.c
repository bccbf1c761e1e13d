/* Resize (opset 10-17) and Upsample (opset 7-9).
 *
 * Every mode is separable: along each axis, output index o reads a few input indices ("taps")
 * with weights that depend only on o. The kernel precomputes per-axis tap tables (index,
 * weight, and whether tf_crop_and_resize put o outside the input) and then evaluates
 *     y[o_0, ..., o_r-1] = sum over tap combinations of  prod_a w_a  *  x[i_0, ..., i_r-1]
 * row by row: the outer axes' combinations are listed once per output row, the last axis is
 * the inner loop. Axes that are not resized collapse to one tap, so NCHW bilinear costs four
 * taps per output and any number of resized axes (N-D linear/cubic) works the same way.
 *
 * Coordinates follow the ONNX reference (onnx/backend/test/case/node/resize.py): the resized
 * length in the transforms is scale * input_length when scales are given (so the given scales,
 * not output/input, drive the mapping), the output length when sizes are given; neighbours
 * beyond the edges repeat the edge value; exclude_outside zeroes their weights and
 * renormalises. Opset <= 10 (Resize-10, Upsample) map with x / scale; nearest there takes
 * floor(x) when upsampling and ceil(x) when downsampling, as onnxruntime does.
 *
 * Nearest copies elements and works for every dtype. Linear and cubic compute in float for
 * float32 and in double for the other numeric dtypes; integer outputs are rounded to nearest
 * and saturated. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"

#define RESIZE_MAX_RANK 32

enum { MODE_NEAREST, MODE_LINEAR, MODE_CUBIC };
enum {
  CT_HALF_PIXEL,
  CT_PYTORCH_HALF_PIXEL,
  CT_ALIGN_CORNERS,
  CT_ASYMMETRIC,
  CT_TF_HALF_PIXEL_FOR_NN,
  CT_TF_CROP_AND_RESIZE
};
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_LEGACY };

typedef struct resize_params {
  int mode, ct, nm;
  double cubic_a;
  bool exclude_outside;
  double extrapolation;
} resize_params;

static int lookup(const char *s, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(s, names[i])) return i;
  return -1;
}

static const char *const mode_names[] = {"nearest", "linear", "cubic"};
static const char *const ct_names[] = {"half_pixel", "pytorch_half_pixel",   "align_corners",
                                       "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
static const char *const nm_names[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};

/* Reads the attributes for the node's op and opset; returns NULL or what is wrong. */
static const char *parse_params(const cpu_node *n, resize_params *p) {
  bool modern = !strcmp(n->op_type, "Resize") && n->opset >= 11;
  const char *mode = cpu_attr_string(n, "mode", "nearest");
  p->mode = lookup(mode, mode_names, modern ? 3 : 2);
  if (p->mode < 0 && !modern && !strcmp(mode, "bilinear")) p->mode = MODE_LINEAR;
  if (p->mode < 0) return "mode";
  p->cubic_a = -0.75;
  p->exclude_outside = false;
  p->extrapolation = 0.0;
  if (!modern) {
    p->ct = CT_ASYMMETRIC;
    p->nm = NM_LEGACY;
    return NULL;
  }
  p->ct = lookup(cpu_attr_string(n, "coordinate_transformation_mode", "half_pixel"), ct_names, 6);
  if (p->ct < 0) return "coordinate_transformation_mode";
  p->nm = lookup(cpu_attr_string(n, "nearest_mode", "round_prefer_floor"), nm_names, 4);
  if (p->nm < 0) return "nearest_mode";
  p->cubic_a = cpu_attr_float(n, "cubic_coeff_a", -0.75f);
  p->exclude_outside = cpu_attr_int(n, "exclude_outside", 0) != 0;
  p->extrapolation = cpu_attr_float(n, "extrapolation_value", 0.0f);
  return NULL;
}

static bool is_numeric(uint32_t dt) {
  return cpu_dtype_size(dt) != 0 && dt != TSR_DTYPE_STRING && dt != TSR_DTYPE_BOOL;
}

static bool is_float_dt(uint32_t dt) {
  return dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16 ||
         dt == TSR_DTYPE_BFLOAT16;
}

static tsr_plugin_reason check_resize(const cpu_node *n, char *msg, size_t size) {
  if (n->n_in < 1 || !n->in[0].present || n->n_out < 1)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "needs an input and an output");
  const cpu_tensor *x = &n->in[0];
  resize_params p;
  const char *bad = parse_params(n, &p);
  if (bad) return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "unsupported %s", bad);
  if (cpu_dtype_size(x->dtype) == 0 || (p.mode != MODE_NEAREST && !is_numeric(x->dtype)))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s", cpu_dtype_name(x->dtype));
  if (n->out[0].dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output dtype differs from input");
  if (x->rank > RESIZE_MAX_RANK)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "rank %u", x->rank);
  if (!strcmp(n->op_type, "Upsample") && n->opset < 9) {
    if (!cpu_has_attr(n, "scales"))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "attribute scales is missing");
    return TSR_PLUGIN_REASON_NONE;
  }
  bool modern = !strcmp(n->op_type, "Resize") && n->opset >= 11;
  uint32_t k_scales = modern ? 2 : 1;
  for (uint32_t k = 1; k < n->n_in; k++) {
    const cpu_tensor *t = &n->in[k];
    if (!t->present) continue;
    bool want_float = k <= k_scales; /* roi and scales are floats, sizes int64 */
    if (want_float ? !is_float_dt(t->dtype) : t->dtype != TSR_DTYPE_INT64)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "input %u has dtype %s", k,
                        cpu_dtype_name(t->dtype));
  }
  if (!modern && (n->n_in < 2 || !n->in[1].present))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_OTHER, "scales input is missing");
  return TSR_PLUGIN_REASON_NONE;
}

/* ---- Tap tables --------------------------------------------------------------------------- */

typedef struct axis_taps {
  int n;              /* taps per output index: 1, 2 or 4 */
  int64_t *off;       /* [out_len * n] input offsets in elements (index * stride) */
  double *w;          /* [out_len * n] */
  float *wf;          /* the same weights in float */
  uint8_t *outside;   /* [out_len] 1 where tf_crop_and_resize extrapolates */
} axis_taps;

static void cubic_coeffs(double r, double a, double *c) {
  double s = 1 - r;
  c[0] = ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a;
  c[1] = ((a + 2) * r - (a + 3)) * r * r + 1;
  c[2] = ((a + 2) * s - (a + 3)) * s * s + 1;
  c[3] = ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a;
}

/* The input coordinate of output index x along one axis. */
static double source_coord(const resize_params *p, int64_t x, double scale, double len_out,
                           int64_t in_len, double roi0, double roi1) {
  double xd = (double)x, in1 = (double)(in_len - 1);
  switch (p->ct) {
  case CT_PYTORCH_HALF_PIXEL: return len_out > 1 ? (xd + 0.5) / scale - 0.5 : 0.0;
  case CT_ALIGN_CORNERS: return len_out == 1 ? 0.0 : xd * in1 / (len_out - 1);
  case CT_ASYMMETRIC: return xd / scale;
  case CT_TF_HALF_PIXEL_FOR_NN: return (xd + 0.5) / scale;
  case CT_TF_CROP_AND_RESIZE:
    if (len_out == 1) return (roi1 - roi0) * in1 / 2 + roi0 * in1;
    return xd * (roi1 - roi0) * in1 / (len_out - 1) + roi0 * in1;
  default: return (xd + 0.5) / scale - 0.5;
  }
}

/* Fills the n taps of one output position from its input coordinate x. */
static int position_taps(const resize_params *p, double x, int64_t in_len, double scale,
                         int64_t *idx, double *w) {
  /* The standard transforms keep x within [-1, in_len]; clamping further out changes no tap
   * weight that matters and keeps the integer arithmetic in range (also for NaN). */
  double lo = -4.0, hi = (double)in_len + 3.0;
  if (!(x >= lo)) x = lo;
  if (x > hi) x = hi;
  double fl = floor(x);
  int64_t xi;
  double ratio;
  /* As in the reference, an integral x sits at the right end of the interval [x-1, x]. */
  if (x == fl) {
    xi = (int64_t)fl - 1;
    ratio = 1.0;
  } else {
    xi = (int64_t)fl;
    ratio = x - fl;
  }
  int n;
  if (p->mode == MODE_NEAREST) {
    int64_t pick;
    if (ratio == 1.0) {
      pick = xi + 1;
    } else {
      switch (p->nm) {
      case NM_ROUND_PREFER_CEIL: pick = ratio < 0.5 ? xi : xi + 1; break;
      case NM_FLOOR: pick = xi; break;
      case NM_CEIL: pick = xi + 1; break;
      case NM_LEGACY: pick = scale < 1 ? xi + 1 : xi; break;
      default: pick = ratio <= 0.5 ? xi : xi + 1; break;
      }
    }
    idx[0] = pick;
    w[0] = 1.0;
    n = 1;
  } else if (p->mode == MODE_LINEAR) {
    idx[0] = xi;
    idx[1] = xi + 1;
    w[0] = 1 - ratio;
    w[1] = ratio;
    n = 2;
  } else {
    for (int t = 0; t < 4; t++) idx[t] = xi - 1 + t;
    cubic_coeffs(ratio, p->cubic_a, w);
    n = 4;
  }
  if (p->exclude_outside && n > 1) {
    double sum = 0;
    for (int t = 0; t < n; t++) {
      if (idx[t] < 0 || idx[t] >= in_len) w[t] = 0;
      sum += w[t];
    }
    if (sum != 0)
      for (int t = 0; t < n; t++) w[t] /= sum;
  }
  for (int t = 0; t < n; t++) idx[t] = idx[t] < 0 ? 0 : idx[t] >= in_len ? in_len - 1 : idx[t];
  return n;
}

/* Builds the table of one axis. Returns false when out of memory. */
static bool build_axis(const resize_params *p, axis_taps *ax, int64_t in_len, int64_t out_len,
                       double scale, double len_out, double roi0, double roi1, int64_t stride) {
  int n = p->mode == MODE_NEAREST ? 1 : p->mode == MODE_LINEAR ? 2 : 4;
  size_t cnt = (size_t)out_len * (size_t)n;
  ax->off = malloc((cnt ? cnt : 1) * sizeof *ax->off);
  ax->w = malloc((cnt ? cnt : 1) * sizeof *ax->w);
  ax->wf = malloc((cnt ? cnt : 1) * sizeof *ax->wf);
  ax->outside = calloc(out_len ? (size_t)out_len : 1, 1);
  if (!ax->off || !ax->w || !ax->wf || !ax->outside) return false;
  bool single = true; /* every position has one non-zero weight: collapse to one tap */
  for (int64_t o = 0; o < out_len; o++) {
    double x = source_coord(p, o, scale, len_out, in_len, roi0, roi1);
    if (p->ct == CT_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(in_len - 1)))
      ax->outside[o] = 1;
    int64_t *idx = &ax->off[(size_t)o * (size_t)n];
    double *w = &ax->w[(size_t)o * (size_t)n];
    position_taps(p, x, in_len, scale, idx, w);
    int nz = 0;
    for (int t = 0; t < n; t++) nz += w[t] != 0;
    if (nz != 1) single = false;
  }
  if (single && n > 1) {
    for (int64_t o = 0; o < out_len; o++) {
      size_t b = (size_t)o * (size_t)n;
      int t = 0;
      while (ax->w[b + (size_t)t] == 0) t++;
      ax->off[o] = ax->off[b + (size_t)t];
      ax->w[o] = ax->w[b + (size_t)t];
    }
    n = 1;
  }
  ax->n = n;
  for (size_t i = 0; i < (size_t)out_len * (size_t)n; i++) {
    ax->off[i] *= stride;
    ax->wf[i] = (float)ax->w[i];
  }
  return true;
}

static void free_axes(axis_taps *axes, size_t r) {
  for (size_t a = 0; a < r; a++) {
    free(axes[a].off);
    free(axes[a].w);
    free(axes[a].wf);
    free(axes[a].outside);
  }
}

/* ---- Evaluation --------------------------------------------------------------------------- */

typedef struct resize_job {
  size_t rank;
  const int64_t *out_dims;
  const axis_taps *axes;
  size_t combos;          /* product of the outer axes' tap counts */
  size_t in_last;         /* input length of the last axis */
  bool crop;              /* tf_crop_and_resize: check for extrapolation */
  const void *src;        /* float, double, or raw elements (nearest) */
  void *dst;              /* float, double, or raw elements (nearest) */
  size_t es;              /* nearest: element size */
  const uint8_t *extrap;  /* nearest: the extrapolation value as an element */
  float extrap_f;
  double extrap_d;
  atomic_int failed;
} resize_job;

/* Decodes row index `row` into the outer output indices. */
static void decode_row(const resize_job *j, size_t row, int64_t *idx) {
  for (size_t k = j->rank - 1; k-- > 0;) {
    idx[k] = (int64_t)(row % (size_t)j->out_dims[k]);
    row /= (size_t)j->out_dims[k];
  }
}

static void next_row(const resize_job *j, int64_t *idx) {
  for (size_t k = j->rank - 1; k-- > 0;) {
    if (++idx[k] < j->out_dims[k]) return;
    idx[k] = 0;
  }
}

/* Lists (offset, weight) of every tap combination of the outer axes for one row; returns
 * false when some outer axis extrapolates. */
static bool row_combos(const resize_job *j, const int64_t *idx, int64_t *coff, double *cw) {
  size_t c = 1;
  coff[0] = 0;
  cw[0] = 1.0;
  for (size_t a = 0; a + 1 < j->rank; a++) {
    const axis_taps *ax = &j->axes[a];
    if (ax->outside[idx[a]]) return false;
    size_t b = (size_t)idx[a] * (size_t)ax->n;
    if (ax->n == 1) {
      for (size_t i = 0; i < c; i++) {
        coff[i] += ax->off[b];
        cw[i] *= ax->w[b];
      }
      continue;
    }
    /* Expand in place from the back so that nothing is overwritten before it is read. */
    for (size_t i = c; i-- > 0;)
      for (int t = ax->n; t-- > 0;) {
        coff[i * (size_t)ax->n + (size_t)t] = coff[i] + ax->off[b + (size_t)t];
        cw[i * (size_t)ax->n + (size_t)t] = cw[i] * ax->w[b + (size_t)t];
      }
    c *= (size_t)ax->n;
  }
  return true;
}

/* Output element o of one row: the last axis' taps over every outer combination. NN is the
 * tap count as a constant so that the compiler unrolls the inner loop. */
#define EVAL_ROW(T, WFIELD, EXTRAP, NN)                                                          \
  for (size_t o = 0; o < inner; o++) {                                                           \
    if (crop && last->outside[o]) {                                                              \
      dst[o] = EXTRAP;                                                                           \
      continue;                                                                                  \
    }                                                                                            \
    const int64_t *lo = &last->off[o * NN];                                                      \
    const T *lw = &last->WFIELD[o * NN];                                                         \
    T acc = 0;                                                                                   \
    for (size_t c = 0; c < nc; c++) {                                                            \
      const T *s = bases[c];                                                                     \
      T part = 0;                                                                                \
      for (int t = 0; t < NN; t++) part += lw[t] * s[lo[t]];                                     \
      acc += ws[c] * part;                                                                       \
    }                                                                                            \
    dst[o] = acc;                                                                                \
  }

/* When several outer combinations feed a row and the input row is not much longer than the
 * output row, it is cheaper to blend the input rows first (a contiguous, vectorisable loop)
 * and then interpolate the last axis once. */
#define DEFINE_INTERP(NAME, T, WFIELD, EXTRAP)                                                   \
  static void NAME(void *arg, size_t begin, size_t end) {                                        \
    resize_job *j = arg;                                                                         \
    const axis_taps *last = &j->axes[j->rank - 1];                                              \
    size_t inner = (size_t)j->out_dims[j->rank - 1], in_last = j->in_last;                      \
    int n = last->n;                                                                             \
    bool crop = j->crop;                                                                         \
    bool blend = j->combos > 1 && in_last <= 2 * (size_t)n * inner;                              \
    int64_t *coff = malloc(j->combos * sizeof *coff);                                            \
    double *cw = malloc(j->combos * sizeof *cw);                                                 \
    T *ws = malloc(j->combos * sizeof *ws);                                                      \
    const T **bases = malloc(j->combos * sizeof *bases);                                         \
    T *tmp = blend ? malloc(in_last * sizeof *tmp) : NULL;                                       \
    if (!coff || !cw || !ws || !bases || (blend && !tmp)) {                                      \
      atomic_store(&j->failed, 1);                                                               \
      free(coff);                                                                                \
      free(cw);                                                                                  \
      free(ws);                                                                                  \
      free(bases);                                                                               \
      free(tmp);                                                                                 \
      return;                                                                                    \
    }                                                                                            \
    int64_t idx[RESIZE_MAX_RANK];                                                                \
    decode_row(j, begin, idx);                                                                   \
    const T *src = j->src;                                                                       \
    for (size_t row = begin; row < end; row++, next_row(j, idx)) {                               \
      T *dst = (T *)j->dst + row * inner;                                                        \
      if (!row_combos(j, idx, coff, cw)) {                                                       \
        for (size_t o = 0; o < inner; o++) dst[o] = EXTRAP;                                      \
        continue;                                                                                \
      }                                                                                          \
      size_t nc = j->combos;                                                                     \
      if (blend) {                                                                               \
        const T *s0 = src + coff[0];                                                             \
        T w0 = (T)cw[0];                                                                         \
        for (size_t i = 0; i < in_last; i++) tmp[i] = w0 * s0[i];                                \
        for (size_t c = 1; c < nc; c++) {                                                        \
          const T *s = src + coff[c];                                                            \
          T w = (T)cw[c];                                                                        \
          for (size_t i = 0; i < in_last; i++) tmp[i] += w * s[i];                               \
        }                                                                                        \
        nc = 1;                                                                                  \
        bases[0] = tmp;                                                                          \
        ws[0] = 1;                                                                               \
      } else {                                                                                   \
        for (size_t c = 0; c < nc; c++) {                                                        \
          bases[c] = src + coff[c];                                                              \
          ws[c] = (T)cw[c];                                                                      \
        }                                                                                        \
      }                                                                                          \
      if (n == 1) {                                                                              \
        EVAL_ROW(T, WFIELD, EXTRAP, 1)                                                           \
      } else if (n == 2) {                                                                       \
        EVAL_ROW(T, WFIELD, EXTRAP, 2)                                                           \
      } else {                                                                                   \
        EVAL_ROW(T, WFIELD, EXTRAP, 4)                                                           \
      }                                                                                          \
    }                                                                                            \
    free(coff);                                                                                  \
    free(cw);                                                                                    \
    free(ws);                                                                                    \
    free(bases);                                                                                 \
    free(tmp);                                                                                   \
  }

DEFINE_INTERP(interp_f32, float, wf, j->extrap_f)
DEFINE_INTERP(interp_f64, double, w, j->extrap_d)

/* Nearest: every axis has one tap of weight 1, so this is a gather of whole elements. */
#define NEAREST_LOOP(SZ)                                                                         \
  for (size_t o = 0; o < inner; o++) {                                                           \
    const uint8_t *s = crop && (outside || last->outside[o]) ? j->extrap                        \
                                                             : row_src + last->off[o] * (SZ);    \
    memcpy(dst + o * (SZ), s, (SZ));                                                             \
  }                                                                                              \
  break;

static void nearest_rows(void *arg, size_t begin, size_t end) {
  resize_job *j = arg;
  const axis_taps *last = &j->axes[j->rank - 1];
  size_t inner = (size_t)j->out_dims[j->rank - 1], es = j->es;
  bool crop = j->crop;
  int64_t idx[RESIZE_MAX_RANK];
  decode_row(j, begin, idx);
  const uint8_t *src = j->src;
  /* An upsampling repeats each source row: the row before, when it came from the same source
   * row, is copied whole instead of gathered again (PP-OCR's neck, 96 channels 28x28 ->
   * 56x56 by 2: 0.34 -> 0.14-0.18 ms; its 24-channel ones by 2, 4 and 8: 0.09 -> 0.02-0.05). */
  const uint8_t *prev = NULL;
  int64_t prev_base = -1;
  bool prev_outside = false;
  for (size_t row = begin; row < end; row++, next_row(j, idx)) {
    uint8_t *dst = (uint8_t *)j->dst + row * inner * es;
    int64_t base = 0;
    bool outside = false;
    for (size_t a = 0; a + 1 < j->rank; a++) {
      outside |= j->axes[a].outside[idx[a]] != 0;
      base += j->axes[a].off[idx[a]];
    }
    if (prev && base == prev_base && outside == prev_outside) {
      memcpy(dst, prev, inner * es);
      prev = dst;
      continue;
    }
    prev = dst, prev_base = base, prev_outside = outside;
    const uint8_t *row_src = src + base * (int64_t)es;
    switch (es) {
    case 1: NEAREST_LOOP(1)
    case 2: NEAREST_LOOP(2)
    case 4: NEAREST_LOOP(4)
    default: NEAREST_LOOP(8)
    }
  }
}

/* ---- Parameters from the inputs ----------------------------------------------------------- */

/* Writes v to element i of an integer or float tensor, rounding and saturating integers. */
static void store_rounded(cpu_tensor *t, size_t i, double v) {
  if (!is_float_dt(t->dtype)) {
    double lo, hi;
    switch (t->dtype) {
    case TSR_DTYPE_INT8: lo = -128, hi = 127; break;
    case TSR_DTYPE_UINT8: lo = 0, hi = 255; break;
    case TSR_DTYPE_INT16: lo = -32768, hi = 32767; break;
    case TSR_DTYPE_UINT16: lo = 0, hi = 65535; break;
    case TSR_DTYPE_INT32: lo = -2147483648.0, hi = 2147483647.0; break;
    case TSR_DTYPE_UINT32: lo = 0, hi = 4294967295.0; break;
    case TSR_DTYPE_UINT64: lo = 0, hi = 18446744073709549568.0; break;
    default: lo = -9223372036854775808.0, hi = 9223372036854774784.0; break;
    }
    v = v != v ? 0 : round(v);
    v = v < lo ? lo : v > hi ? hi : v;
  }
  cpu_write_f64(t, i, v);
}

static int run_resize(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                      cpu_tensor *out) {
  if (n->n_in < 1 || !in[0].present || n->n_out < 1 || !out[0].present)
    return cpu_fail(ctx, "needs an input and an output");
  const cpu_tensor *x = &in[0];
  cpu_tensor *y = &out[0];
  resize_params p;
  const char *bad = parse_params(n, &p);
  if (bad) return cpu_fail(ctx, "unsupported %s", bad);
  if (y->dtype != x->dtype)
    return cpu_fail(ctx, "the output has dtype %s but the input has %s",
                    cpu_dtype_name(y->dtype), cpu_dtype_name(x->dtype));
  size_t es = cpu_dtype_size(x->dtype), r = x->rank;
  if (es == 0 || (p.mode != MODE_NEAREST && !is_numeric(x->dtype)))
    return cpu_fail(ctx, "dtype %s is not supported", cpu_dtype_name(x->dtype));
  if (r > RESIZE_MAX_RANK) return cpu_fail(ctx, "rank %zu is above %d", r, RESIZE_MAX_RANK);
  if (y->rank != r)
    return cpu_fail(ctx, "the output has rank %u but the input has rank %zu", y->rank, r);

  /* Where the scales or sizes come from, by op and opset. */
  bool modern = !strcmp(n->op_type, "Resize") && n->opset >= 11;
  double scales[RESIZE_MAX_RANK], roi[2 * RESIZE_MAX_RANK];
  bool use_sizes = false;
  const cpu_tensor *sc = NULL, *sz = NULL, *roi_t = NULL;
  if (!strcmp(n->op_type, "Upsample") && n->opset < 9) {
    const float *a;
    size_t cnt = cpu_attr_floats(n, "scales", &a);
    if (!a) return cpu_fail(ctx, "attribute scales is missing");
    if (cnt != r) return cpu_fail(ctx, "scales has %zu entries for rank %zu", cnt, r);
    for (size_t i = 0; i < r; i++) scales[i] = a[i];
  } else {
    if (modern) {
      roi_t = n->n_in > 1 && in[1].present ? &in[1] : NULL;
      sc = n->n_in > 2 && in[2].present && in[2].count > 0 ? &in[2] : NULL;
      sz = n->n_in > 3 && in[3].present && in[3].count > 0 ? &in[3] : NULL;
      if (sc && sz) return cpu_fail(ctx, "scales and sizes are both given; use one");
      if (!sc && !sz) return cpu_fail(ctx, "neither scales nor sizes is given");
    } else {
      sc = n->n_in > 1 && in[1].present ? &in[1] : NULL;
      if (!sc) return cpu_fail(ctx, "input 1 (scales) is missing");
    }
    if (sz) {
      if (sz->dtype != TSR_DTYPE_INT64) return cpu_fail(ctx, "sizes must be int64");
      if (sz->count != r) return cpu_fail(ctx, "sizes has %zu entries for rank %zu", sz->count, r);
      use_sizes = true;
    } else {
      if (!is_float_dt(sc->dtype)) return cpu_fail(ctx, "scales must be floats");
      if (sc->count != r)
        return cpu_fail(ctx, "scales has %zu entries for rank %zu", sc->count, r);
      for (size_t i = 0; i < r; i++) scales[i] = cpu_read_f64(sc, i);
    }
  }
  for (size_t i = 0; i < 2 * r; i++) roi[i] = i < r ? 0.0 : 1.0;
  if (p.ct == CT_TF_CROP_AND_RESIZE) {
    if (!roi_t || roi_t->count != 2 * r || !is_float_dt(roi_t->dtype))
      return cpu_fail(ctx, "tf_crop_and_resize needs a float roi of %zu entries", 2 * r);
    for (size_t i = 0; i < 2 * r; i++) roi[i] = cpu_read_f64(roi_t, i);
  }

  /* Validate the given output shape against the scales or sizes. */
  double len_out[RESIZE_MAX_RANK];
  for (size_t a = 0; a < r; a++) {
    int64_t il = x->dims[a], ol = y->dims[a];
    if (use_sizes) {
      int64_t want = ((const int64_t *)sz->data)[a];
      if (want != ol)
        return cpu_fail(ctx, "sizes[%zu] is %lld but the output dimension is %lld", a,
                        (long long)want, (long long)ol);
      scales[a] = il > 0 ? (double)ol / (double)il : 1.0;
      len_out[a] = (double)ol;
    } else {
      double s = scales[a];
      if (!(s > 0) || !isfinite(s))
        return cpu_fail(ctx, "scale %g on axis %zu must be positive and finite", s, a);
      /* floor(in * scale) in whatever precision the host used: allow one step either way;
       * tf_crop_and_resize may also scale the roi's extent. */
      double want = (double)il * s, crop = want * (roi[a + r] - roi[a]);
      bool ok = fabs((double)ol - want) <= 1.0 + 1e-6 * want;
      if (p.ct == CT_TF_CROP_AND_RESIZE)
        ok = ok || fabs((double)ol - crop) <= 1.0 + 1e-6 * fabs(crop);
      if (!ok)
        return cpu_fail(ctx, "output dimension %zu is %lld but scale %g of %lld gives %g", a,
                        (long long)ol, s, (long long)il, floor(want));
      len_out[a] = want;
    }
    if (il == 0 && ol > 0)
      return cpu_fail(ctx, "axis %zu is empty and cannot be resized to %lld", a, (long long)ol);
  }
  if (y->count == 0) return 0;
  if (r == 0) {
    memcpy(y->data, x->data, es);
    return 0;
  }

  axis_taps axes[RESIZE_MAX_RANK];
  memset(axes, 0, sizeof axes);
  int64_t strides[RESIZE_MAX_RANK];
  int64_t s = 1;
  for (size_t a = r; a-- > 0;) {
    strides[a] = s;
    s *= x->dims[a];
  }
  int rc = -1;
  void *xbuf = NULL, *ybuf = NULL;
  size_t combos = 1;
  for (size_t a = 0; a < r; a++) {
    if (!build_axis(&p, &axes[a], x->dims[a], y->dims[a], scales[a], len_out[a], roi[a],
                    roi[a + r], strides[a])) {
      cpu_fail(ctx, "out of memory");
      goto done;
    }
    if (a + 1 < r) combos *= (size_t)axes[a].n;
    if (combos > ((size_t)1 << 20)) {
      cpu_fail(ctx, "too many resized axes (%zu tap combinations per row)", combos);
      goto done;
    }
  }
  resize_job j = {.rank = r,
                  .out_dims = y->dims,
                  .axes = axes,
                  .combos = combos,
                  .in_last = (size_t)x->dims[r - 1],
                  .crop = p.ct == CT_TF_CROP_AND_RESIZE,
                  .es = es,
                  .extrap_f = (float)p.extrapolation,
                  .extrap_d = p.extrapolation};
  atomic_init(&j.failed, 0);
  size_t inner = (size_t)y->dims[r - 1], rows = y->count / inner;
  uint8_t extrap[8] = {0};
  if (p.mode == MODE_NEAREST) {
    cpu_tensor t = {.dtype = y->dtype, .data = extrap, .count = 1};
    store_rounded(&t, 0, p.extrapolation);
    j.src = x->data;
    j.dst = y->data;
    j.extrap = extrap;
    size_t grain = inner * es >= 32768 ? 1 : 32768 / (inner * es);
    cpu_parallel_for(ctx, rows, grain, nearest_rows, &j);
    rc = 0;
    goto done;
  }
  size_t work = inner * combos * (size_t)axes[r - 1].n;
  size_t grain = work >= 16384 ? 1 : 16384 / work;
  if (x->dtype == TSR_DTYPE_FLOAT32) {
    j.src = x->data;
    j.dst = y->data;
    cpu_parallel_for(ctx, rows, grain, interp_f32, &j);
  } else {
    xbuf = malloc(x->count * sizeof(double));
    ybuf = malloc(y->count * sizeof(double));
    if (!xbuf || !ybuf) {
      cpu_fail(ctx, "out of memory");
      goto done;
    }
    for (size_t i = 0; i < x->count; i++) ((double *)xbuf)[i] = cpu_read_f64(x, i);
    j.src = xbuf;
    j.dst = ybuf;
    cpu_parallel_for(ctx, rows, grain, interp_f64, &j);
    if (!atomic_load(&j.failed))
      for (size_t i = 0; i < y->count; i++) store_rounded(y, i, ((double *)ybuf)[i]);
  }
  if (atomic_load(&j.failed)) {
    cpu_fail(ctx, "out of memory");
    goto done;
  }
  rc = 0;
done:
  free(xbuf);
  free(ybuf);
  free_axes(axes, r);
  return rc;
}

static const cpu_op resize_ops[] = {
    {"Resize", "", 10, 17, check_resize, NULL, run_resize, NULL},
    {"Upsample", "", 7, 9, check_resize, NULL, run_resize, NULL},
};

const cpu_op_list cpu_ops_resize = {resize_ops, sizeof resize_ops / sizeof resize_ops[0]};
