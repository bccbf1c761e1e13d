/* Detection and sampling kernels: NonMaxSuppression, RoiAlign, GridSample and Unique.
 *
 * NonMaxSuppression and Unique have outputs whose sizes depend on the data. Shape inference
 * (core/shape_infer.c) counts them when the inputs are known and the node is then folded
 * through these kernels, so both sides must select and order exactly alike: the IoU test and
 * the candidate order of NonMaxSuppression, and the element order of Unique, are copies of the
 * ones there. A kernel still computes its own counts and fails when the output it was given
 * has another size, instead of writing past it.
 *
 * Each op validates in one function (<op>_valid) that check() calls on the static tensors and
 * run() on the tensors it is given, so that run() never trusts what check() saw.
 *
 * Arithmetic is in double except where matching shape inference needs float (the IoU test).
 * Floating-point tensors of any width are read and written through the helpers of cpu.h, with
 * float32 and float64 read directly. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"

#define LL(x) ((long long)(x))

/* ---- Shared helpers ------------------------------------------------------------------- */

static bool is_float_dtype(uint32_t dt) {
  return dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16 ||
         dt == TSR_DTYPE_BFLOAT16;
}

static bool is_index_dtype(uint32_t dt) { return dt == TSR_DTYPE_INT64 || dt == TSR_DTYPE_INT32; }

static inline double ld(const cpu_tensor *t, size_t i) {
  if (t->dtype == TSR_DTYPE_FLOAT32)
    return ((const float *)t->data)[i];
  if (t->dtype == TSR_DTYPE_FLOAT64)
    return ((const double *)t->data)[i];
  return cpu_read_f64(t, i);
}

static inline void st(cpu_tensor *t, size_t i, double v) {
  if (t->dtype == TSR_DTYPE_FLOAT32)
    ((float *)t->data)[i] = (float)v;
  else if (t->dtype == TSR_DTYPE_FLOAT64)
    ((double *)t->data)[i] = v;
  else
    cpu_write_f64(t, i, v);
}

static bool has(const cpu_tensor *t, uint32_t n, uint32_t i) { return i < n && t[i].present; }

/* "[2,3,4]" into buf. */
static const char *dims_str(char *buf, size_t size, const cpu_tensor *t) {
  size_t len = 0;
  buf[0] = '\0';
  len += (size_t)snprintf(buf, size, "[");
  for (uint32_t i = 0; i < t->rank && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "", LL(t->dims[i]));
  if (len < size)
    snprintf(buf + len, size - len, "]");
  return buf;
}

static bool dims_are(const cpu_tensor *t, uint32_t rank, const int64_t *dims) {
  if (t->rank != rank)
    return false;
  for (uint32_t i = 0; i < rank; i++)
    if (t->dims[i] != dims[i])
      return false;
  return true;
}

/* ---- NonMaxSuppression ---------------------------------------------------------------- */

typedef struct scored {
  float score;
  int64_t index;
} scored;

/* Highest score first; equal scores by index (as shape inference orders them). */
static int cmp_scored(const void *pa, const void *pb) {
  const scored *a = pa, *b = pb;
  if (a->score != b->score)
    return a->score > b->score ? -1 : 1;
  return a->index < b->index ? -1 : a->index > b->index;
}

/* onnxruntime's IoU test in float, the same as nms_suppress() in core/shape_infer.c. */
static bool nms_suppress(const float *b1, const float *b2, bool center, float threshold) {
  float x1a, x1b, y1a, y1b, x2a, x2b, y2a, y2b;
  if (!center) {
    y1a = fminf(b1[0], b1[2]), y1b = fmaxf(b1[0], b1[2]);
    x1a = fminf(b1[1], b1[3]), x1b = fmaxf(b1[1], b1[3]);
    y2a = fminf(b2[0], b2[2]), y2b = fmaxf(b2[0], b2[2]);
    x2a = fminf(b2[1], b2[3]), x2b = fmaxf(b2[1], b2[3]);
  } else {
    x1a = b1[0] - b1[2] / 2, x1b = b1[0] + b1[2] / 2;
    y1a = b1[1] - b1[3] / 2, y1b = b1[1] + b1[3] / 2;
    x2a = b2[0] - b2[2] / 2, x2b = b2[0] + b2[2] / 2;
    y2a = b2[1] - b2[3] / 2, y2b = b2[1] + b2[3] / 2;
  }
  float ixa = fmaxf(x1a, x2a), ixb = fminf(x1b, x2b), iya = fmaxf(y1a, y2a), iyb = fminf(y1b, y2b);
  if (ixb <= ixa || iyb <= iya)
    return false;
  float inter = (ixb - ixa) * (iyb - iya);
  float area1 = (x1b - x1a) * (y1b - y1a), area2 = (x2b - x2a) * (y2b - y2a);
  float uni = area1 + area2 - inter;
  if (inter <= 0 || area1 <= 0 || area2 <= 0 || uni <= 0)
    return false;
  return inter / uni > threshold;
}

static tsr_plugin_reason nms_valid(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   char *msg, size_t size) {
  char s1[96], s2[96];
  if (!has(in, n->n_in, 0) || !has(in, n->n_in, 1) || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "expects inputs boxes and scores and an output");
  const cpu_tensor *boxes = &in[0], *scores = &in[1];
  if (boxes->dtype != TSR_DTYPE_FLOAT32 || scores->dtype != TSR_DTYPE_FLOAT32)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "boxes and scores must be float32, got %s and %s",
                      cpu_dtype_name(boxes->dtype), cpu_dtype_name(scores->dtype));
  if (boxes->rank != 3 || scores->rank != 3 || boxes->dims[2] != 4 ||
      scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
    return cpu_refuse(
        msg, size, TSR_PLUGIN_REASON_SHAPE,
        "boxes %s and scores %s must be [batch, boxes, 4] and [batch, classes, boxes]",
        dims_str(s1, sizeof s1, boxes), dims_str(s2, sizeof s2, scores));
  if (has(in, n->n_in, 2) && (!is_index_dtype(in[2].dtype) || in[2].count != 1))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "max_output_boxes_per_class must be one int64 value, got %s %s",
                      cpu_dtype_name(in[2].dtype), dims_str(s1, sizeof s1, &in[2]));
  for (uint32_t i = 3; i < 5; i++)
    if (has(in, n->n_in, i) && (!is_float_dtype(in[i].dtype) || in[i].count != 1))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "%s must be one float value, got %s %s",
                        i == 3 ? "iou_threshold" : "score_threshold", cpu_dtype_name(in[i].dtype),
                        dims_str(s1, sizeof s1, &in[i]));
  if (out[0].dtype != TSR_DTYPE_INT64 || out[0].rank != 2 || out[0].dims[1] != 3)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "the output must be int64 [selected, 3], got %s %s",
                      cpu_dtype_name(out[0].dtype), dims_str(s1, sizeof s1, &out[0]));
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason nms_check(const cpu_node *n, char *msg, size_t size) {
  return nms_valid(n, n->in, n->out, msg, size);
}

static int nms_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                   cpu_tensor *out) {
  (void)state;
  char msg[256];
  if (nms_valid(n, in, out, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  const float *bx = in[0].data, *sc = in[1].data;
  size_t nb = (size_t)in[0].dims[0], nbox = (size_t)in[0].dims[1], ncls = (size_t)in[1].dims[1];
  int64_t max_out = has(in, n->n_in, 2) ? cpu_read_int(&in[2], 0) : 0;
  float iou = has(in, n->n_in, 3) ? (float)cpu_read_f64(&in[3], 0) : 0.0f;
  bool has_min = has(in, n->n_in, 4), center = cpu_attr_int(n, "center_point_box", 0) != 0;
  float score_min = has_min ? (float)cpu_read_f64(&in[4], 0) : 0.0f;
  /* Each class keeps at most min(boxes, max_out) of them. Rows go straight to the output while
   * it has room; the count is checked against its size at the end. */
  size_t per = max_out <= 0 ? 0 : (uint64_t)max_out < nbox ? (size_t)max_out : nbox;
  size_t rows = (size_t)out[0].dims[0], total = 0;
  int64_t *sel = out[0].data;
  scored *cand = malloc((nbox ? nbox : 1) * sizeof *cand);
  int64_t *kept = malloc((nbox ? nbox : 1) * sizeof *kept);
  if (!cand || !kept) {
    free(cand);
    free(kept);
    return cpu_fail(ctx, "out of memory");
  }
  for (size_t b = 0; b < nb && per; b++) {
    const float *fb = bx + b * nbox * 4;
    for (size_t k = 0; k < ncls; k++) {
      const float *s = sc + (b * ncls + k) * nbox;
      size_t nc = 0, nk = 0;
      /* NaN scores are never selected, as in shape inference. */
      for (size_t i = 0; i < nbox; i++)
        if (s[i] == s[i] && (!has_min || s[i] > score_min))
          cand[nc++] = (scored){s[i], (int64_t)i};
      qsort(cand, nc, sizeof *cand, cmp_scored);
      for (size_t i = 0; i < nc && nk < per; i++) {
        bool keep = true;
        for (size_t j = 0; j < nk && keep; j++)
          keep = !nms_suppress(fb + 4 * cand[i].index, fb + 4 * kept[j], center, iou);
        if (keep)
          kept[nk++] = cand[i].index;
      }
      for (size_t j = 0; j < nk; j++, total++) {
        if (total >= rows)
          continue;
        sel[3 * total] = (int64_t)b;
        sel[3 * total + 1] = (int64_t)k;
        sel[3 * total + 2] = kept[j];
      }
    }
  }
  free(cand);
  free(kept);
  if (total != rows)
    return cpu_fail(ctx, "%zu boxes are selected, but the output has room for %zu", total, rows);
  return 0;
}

/* ---- RoiAlign ------------------------------------------------------------------------- */

/* Adaptive grids (sampling_ratio 0) come from the ROI's size; a bin of more samples than this
 * means a nonsensical ROI and is refused rather than sampled for ever. */
#define ROI_MAX_SAMPLES ((int64_t)1 << 24)
#define ROI_MAX_RATIO 4096

typedef struct roi_plan {
  bool max_mode, half_pixel;
  int64_t ph, pw, ratio;
  double scale;
} roi_plan;

static tsr_plugin_reason roi_valid(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   roi_plan *p, char *msg, size_t size) {
  char s1[96], s2[96], s3[96];
  memset(p, 0, sizeof *p);
  if (!has(in, n->n_in, 0) || !has(in, n->n_in, 1) || !has(in, n->n_in, 2) || n->n_out < 1 ||
      !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "expects inputs X, rois, batch_indices and output Y");
  const cpu_tensor *x = &in[0], *rois = &in[1], *bi = &in[2], *y = &out[0];
  if (!is_float_dtype(x->dtype) || rois->dtype != x->dtype || y->dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "X, rois and Y must share a float dtype, got %s, %s, %s",
                      cpu_dtype_name(x->dtype), cpu_dtype_name(rois->dtype),
                      cpu_dtype_name(y->dtype));
  if (!is_index_dtype(bi->dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "batch_indices must be int64, got %s",
                      cpu_dtype_name(bi->dtype));
  if (x->rank != 4 || rois->rank != 2 || rois->dims[1] != 4 || bi->rank != 1 ||
      bi->dims[0] != rois->dims[0])
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "X %s, rois %s and batch_indices %s must be [N,C,H,W], [R,4] and [R]",
                      dims_str(s1, sizeof s1, x), dims_str(s2, sizeof s2, rois),
                      dims_str(s3, sizeof s3, bi));
  const char *mode = cpu_attr_string(n, "mode", "avg");
  if (strcmp(mode, "avg") != 0 && strcmp(mode, "max") != 0)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "mode '%s' (expected avg or max)",
                      mode);
  p->max_mode = strcmp(mode, "max") == 0;
  /* Opset 10 has no coordinate_transformation_mode and behaves as output_half_pixel. */
  const char *ctm = cpu_attr_string(n, "coordinate_transformation_mode",
                                    n->opset >= 16 ? "half_pixel" : "output_half_pixel");
  if (strcmp(ctm, "half_pixel") != 0 && strcmp(ctm, "output_half_pixel") != 0)
    return cpu_refuse(
        msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
        "coordinate_transformation_mode '%s' (expected half_pixel or output_half_pixel)", ctm);
  p->half_pixel = strcmp(ctm, "half_pixel") == 0;
  p->ph = cpu_attr_int(n, "output_height", 1);
  p->pw = cpu_attr_int(n, "output_width", 1);
  p->ratio = cpu_attr_int(n, "sampling_ratio", 0);
  p->scale = cpu_attr_float(n, "spatial_scale", 1.0f);
  if (p->ratio < 0 || p->ratio > ROI_MAX_RATIO)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "sampling_ratio %lld must be 0..%d",
                      LL(p->ratio), ROI_MAX_RATIO);
  int64_t want[4] = {rois->dims[0], x->dims[1], p->ph, p->pw};
  if (!dims_are(y, 4, want))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "Y %s must be [%lld,%lld,%lld,%lld]",
                      dims_str(s1, sizeof s1, y), LL(want[0]), LL(want[1]), LL(want[2]),
                      LL(want[3]));
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason roi_check(const cpu_node *n, char *msg, size_t size) {
  roi_plan p;
  return roi_valid(n, n->in, n->out, &p, msg, size);
}

/* One bilinear sample: four positions in the plane and their weights (all 0 outside). */
typedef struct roi_sample {
  size_t pos[4];
  double w[4];
} roi_sample;

/* The sample at (y, x) of an h x w plane, as onnxruntime computes it. */
static roi_sample roi_sample_at(double y, double x, int64_t h, int64_t w) {
  roi_sample s = {{0, 0, 0, 0}, {0, 0, 0, 0}};
  if (h <= 0 || w <= 0 || !(y >= -1.0 && y <= (double)h && x >= -1.0 && x <= (double)w))
    return s;
  if (y <= 0)
    y = 0;
  if (x <= 0)
    x = 0;
  int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1, x1;
  if (y0 >= h - 1) {
    y1 = y0 = h - 1;
    y = (double)y0;
  } else {
    y1 = y0 + 1;
  }
  if (x0 >= w - 1) {
    x1 = x0 = w - 1;
    x = (double)x0;
  } else {
    x1 = x0 + 1;
  }
  double ly = y - (double)y0, lx = x - (double)x0, hy = 1.0 - ly, hx = 1.0 - lx;
  s.pos[0] = (size_t)(y0 * w + x0);
  s.pos[1] = (size_t)(y0 * w + x1);
  s.pos[2] = (size_t)(y1 * w + x0);
  s.pos[3] = (size_t)(y1 * w + x1);
  s.w[0] = hy * hx;
  s.w[1] = hy * lx;
  s.w[2] = ly * hx;
  s.w[3] = ly * lx;
  return s;
}

typedef struct roi_job {
  const roi_plan *p;
  const cpu_tensor *x, *rois, *bi;
  cpu_tensor *y;
  atomic_int failed;          /* the first task that fails sets it and fills in the reason */
  int64_t bad_roi, bad_batch; /* bad_batch: -1 too many samples, -2 out of memory */
} roi_job;

static void roi_failed(roi_job *j, size_t roi, int64_t batch) {
  if (atomic_exchange(&j->failed, 1) == 0) {
    j->bad_roi = (int64_t)roi;
    j->bad_batch = batch;
  }
}

/* ROIs [begin, end): each bin's samples are computed once and applied to every channel. */
static void roi_task(void *arg, size_t begin, size_t end) {
  roi_job *j = arg;
  const roi_plan *p = j->p;
  int64_t nbatch = j->x->dims[0], ch = j->x->dims[1], h = j->x->dims[2], w = j->x->dims[3];
  size_t plane = (size_t)(h * w), bins = (size_t)(p->ph * p->pw);
  double *acc = malloc((size_t)(ch ? ch : 1) * sizeof *acc);
  if (!acc) {
    roi_failed(j, begin, -2);
    return;
  }
  for (size_t r = begin; r < end && !atomic_load(&j->failed); r++) {
    int64_t b = cpu_read_int(j->bi, r);
    if (b < 0 || b >= nbatch) {
      roi_failed(j, r, b);
      break;
    }
    double off = p->half_pixel ? 0.5 : 0.0;
    double x0 = ld(j->rois, 4 * r) * p->scale - off, y0 = ld(j->rois, 4 * r + 1) * p->scale - off;
    double rw = ld(j->rois, 4 * r + 2) * p->scale - off - x0;
    double rh = ld(j->rois, 4 * r + 3) * p->scale - off - y0;
    if (!p->half_pixel) { /* malformed ROIs are forced to 1x1 */
      rw = fmax(rw, 1.0);
      rh = fmax(rh, 1.0);
    }
    double bh = rh / (double)p->ph, bw = rw / (double)p->pw;
    double gh = p->ratio > 0 ? (double)p->ratio : ceil(bh);
    double gw = p->ratio > 0 ? (double)p->ratio : ceil(bw);
    /* Grids below 1 (and NaN) sample nothing and give 0, as onnxruntime's loops do. */
    int64_t ny = gh >= 1 ? (gh <= (double)ROI_MAX_SAMPLES ? (int64_t)gh : ROI_MAX_SAMPLES + 1) : 0;
    int64_t nx = gw >= 1 ? (gw <= (double)ROI_MAX_SAMPLES ? (int64_t)gw : ROI_MAX_SAMPLES + 1) : 0;
    if (ny && nx && ny > ROI_MAX_SAMPLES / nx) {
      roi_failed(j, r, -1);
      break;
    }
    double count = ny * nx > 1 ? (double)(ny * nx) : 1.0;
    for (size_t bin = 0; bin < bins; bin++) {
      int64_t py = (int64_t)bin / p->pw, px = (int64_t)bin % p->pw;
      for (int64_t c = 0; c < ch; c++)
        acc[c] = 0.0;
      for (int64_t iy = 0; iy < ny; iy++) {
        double yy = y0 + (double)py * bh + ((double)iy + 0.5) * bh / (double)ny;
        for (int64_t ix = 0; ix < nx; ix++) {
          double xx = x0 + (double)px * bw + ((double)ix + 0.5) * bw / (double)nx;
          roi_sample s = roi_sample_at(yy, xx, h, w);
          bool first = iy == 0 && ix == 0;
          for (int64_t c = 0; c < ch; c++) {
            size_t xb = ((size_t)b * (size_t)ch + (size_t)c) * plane;
            double v[4];
            for (int t = 0; t < 4; t++)
              v[t] = s.w[t] != 0.0 ? s.w[t] * ld(j->x, xb + s.pos[t]) : 0.0;
            if (p->max_mode) {
              /* onnxruntime's max mode: the largest weighted corner of each sample. */
              double m = fmax(fmax(fmax(v[0], v[1]), v[2]), v[3]);
              acc[c] = first ? m : fmax(acc[c], m);
            } else {
              acc[c] += v[0] + v[1] + v[2] + v[3];
            }
          }
        }
      }
      for (int64_t c = 0; c < ch; c++)
        st(j->y, (r * (size_t)ch + (size_t)c) * bins + bin, p->max_mode ? acc[c] : acc[c] / count);
    }
  }
  free(acc);
}

static int roi_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                   cpu_tensor *out) {
  (void)state;
  char msg[256];
  roi_plan p;
  if (roi_valid(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  roi_job j = {.p = &p, .x = &in[0], .rois = &in[1], .bi = &in[2], .y = &out[0]};
  atomic_init(&j.failed, 0);
  size_t nrois = (size_t)in[1].dims[0];
  size_t work = (size_t)(in[0].dims[1] * p.ph * p.pw) + 1;
  cpu_parallel_for(ctx, nrois, work > (1 << 14) ? 1 : (1 << 14) / work, roi_task, &j);
  if (atomic_load(&j.failed)) {
    if (j.bad_batch == -1)
      return cpu_fail(ctx, "roi %lld needs more than %lld samples per bin", LL(j.bad_roi),
                      LL(ROI_MAX_SAMPLES));
    if (j.bad_batch == -2)
      return cpu_fail(ctx, "out of memory");
    return cpu_fail(ctx, "batch_indices[%lld] = %lld is out of range for X with %lld images",
                    LL(j.bad_roi), LL(j.bad_batch), LL(in[0].dims[0]));
  }
  return 0;
}

/* ---- GridSample ----------------------------------------------------------------------- */

typedef enum gs_mode { GS_BILINEAR, GS_NEAREST, GS_BICUBIC } gs_mode;
typedef enum gs_pad { GS_ZEROS, GS_BORDER, GS_REFLECTION } gs_pad;

typedef struct gs_plan {
  gs_mode mode;
  gs_pad pad;
  bool align;
} gs_plan;

static tsr_plugin_reason gs_valid(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                  gs_plan *p, char *msg, size_t size) {
  char s1[96], s2[96], s3[96];
  memset(p, 0, sizeof *p);
  if (!has(in, n->n_in, 0) || !has(in, n->n_in, 1) || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects inputs X and grid and output Y");
  const cpu_tensor *x = &in[0], *g = &in[1], *y = &out[0];
  if (!is_float_dtype(x->dtype) || !is_float_dtype(g->dtype) || y->dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "X %s, grid %s and Y %s: float dtypes expected", cpu_dtype_name(x->dtype),
                      cpu_dtype_name(g->dtype), cpu_dtype_name(y->dtype));
  int64_t want[4] = {x->rank == 4 ? x->dims[0] : 0, x->rank == 4 ? x->dims[1] : 0,
                     g->rank == 4 ? g->dims[1] : 0, g->rank == 4 ? g->dims[2] : 0};
  if (x->rank != 4 || g->rank != 4 || g->dims[0] != x->dims[0] || g->dims[3] != 2 ||
      !dims_are(y, 4, want))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "X %s, grid %s and Y %s must be [N,C,H,W], [N,Ho,Wo,2] and [N,C,Ho,Wo]",
                      dims_str(s1, sizeof s1, x), dims_str(s2, sizeof s2, g),
                      dims_str(s3, sizeof s3, y));
  const char *mode = cpu_attr_string(n, "mode", "bilinear");
  if (!strcmp(mode, "bilinear"))
    p->mode = GS_BILINEAR;
  else if (!strcmp(mode, "nearest"))
    p->mode = GS_NEAREST;
  else if (!strcmp(mode, "bicubic"))
    p->mode = GS_BICUBIC;
  else
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "mode '%s' (expected bilinear, nearest or bicubic)", mode);
  const char *pad = cpu_attr_string(n, "padding_mode", "zeros");
  if (!strcmp(pad, "zeros"))
    p->pad = GS_ZEROS;
  else if (!strcmp(pad, "border"))
    p->pad = GS_BORDER;
  else if (!strcmp(pad, "reflection"))
    p->pad = GS_REFLECTION;
  else
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "padding_mode '%s' (expected zeros, border or reflection)", pad);
  p->align = cpu_attr_int(n, "align_corners", 0) != 0;
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason gs_check(const cpu_node *n, char *msg, size_t size) {
  gs_plan p;
  return gs_valid(n, n->in, n->out, &p, msg, size);
}

/* Grid value g in [-1, 1] to a pixel coordinate along an axis of `size` pixels (PyTorch's
 * grid_sampler_unnormalize). */
static double gs_unnormalize(double g, int64_t size, bool align) {
  return align ? (g + 1.0) / 2.0 * (double)(size - 1) : ((g + 1.0) * (double)size - 1.0) / 2.0;
}

/* Reflects x into [twice_low / 2, twice_high / 2] (PyTorch's reflect_coordinates). */
static double gs_reflect(double x, double twice_low, double twice_high) {
  if (twice_low == twice_high)
    return 0.0;
  double lo = twice_low / 2.0, span = (twice_high - twice_low) / 2.0;
  x = fabs(x - lo);
  double extra = fmod(x, span), flips = floor(x / span);
  return fmod(flips, 2.0) == 0.0 ? extra + lo : span - extra + lo;
}

/* Applies the padding mode to a coordinate (PyTorch's compute_coordinates). */
static double gs_pad_coord(double x, int64_t size, const gs_plan *p) {
  if (p->pad == GS_BORDER)
    return fmin(fmax(x, 0.0), (double)(size - 1));
  if (p->pad == GS_REFLECTION) {
    x = p->align ? gs_reflect(x, 0.0, 2.0 * (double)(size - 1))
                 : gs_reflect(x, -1.0, 2.0 * (double)size - 1.0);
    return fmin(fmax(x, 0.0), (double)(size - 1));
  }
  return x;
}

/* An integral coordinate as an index when it lies in [0, size); NaN and far values do not. */
static bool gs_index(double x, int64_t size, int64_t *out) {
  if (!(x >= 0.0 && x < (double)size))
    return false;
  *out = (int64_t)x;
  return true;
}

static double cubic1(double x, double a) { return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0; }
static double cubic2(double x, double a) { return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a; }

static void cubic_coeffs(double t, double c[4]) {
  const double a = -0.75;
  c[0] = cubic2(t + 1.0, a);
  c[1] = cubic1(t, a);
  c[2] = cubic1(1.0 - t, a);
  c[3] = cubic2(2.0 - t, a);
}

/* Up to 16 taps of one output pixel: offsets into a plane and weights. */
typedef struct gs_taps {
  size_t n;
  size_t pos[16];
  double w[16];
} gs_taps;

static void gs_add(gs_taps *t, int64_t iy, int64_t ix, int64_t w, double weight) {
  t->pos[t->n] = (size_t)(iy * w + ix);
  t->w[t->n] = weight;
  t->n++;
}

static gs_taps gs_taps_at(const gs_plan *p, double gx, double gy, int64_t h, int64_t w) {
  gs_taps t;
  t.n = 0;
  if (h <= 0 || w <= 0)
    return t;
  double x = gs_unnormalize(gx, w, p->align), y = gs_unnormalize(gy, h, p->align);
  if (p->mode == GS_BICUBIC) {
    /* Taps around the unpadded point; the padding applies to each tap. */
    double fx = floor(x), fy = floor(y), cx[4], cy[4];
    cubic_coeffs(x - fx, cx);
    cubic_coeffs(y - fy, cy);
    for (int i = 0; i < 4; i++) {
      int64_t iy;
      if (!gs_index(gs_pad_coord(fy - 1.0 + i, h, p), h, &iy))
        continue;
      for (int j = 0; j < 4; j++) {
        int64_t ix;
        if (gs_index(gs_pad_coord(fx - 1.0 + j, w, p), w, &ix))
          gs_add(&t, iy, ix, w, cy[i] * cx[j]);
      }
    }
    return t;
  }
  x = gs_pad_coord(x, w, p);
  y = gs_pad_coord(y, h, p);
  if (p->mode == GS_NEAREST) {
    int64_t ix, iy;
    if (gs_index(nearbyint(x), w, &ix) && gs_index(nearbyint(y), h, &iy))
      gs_add(&t, iy, ix, w, 1.0);
    return t;
  }
  double x0 = floor(x), y0 = floor(y), wx = x - x0, wy = y - y0;
  for (int i = 0; i < 2; i++) {
    int64_t iy;
    if (!gs_index(y0 + i, h, &iy))
      continue;
    for (int j = 0; j < 2; j++) {
      int64_t ix;
      if (gs_index(x0 + j, w, &ix))
        gs_add(&t, iy, ix, w, (i ? wy : 1.0 - wy) * (j ? wx : 1.0 - wx));
    }
  }
  return t;
}

typedef struct gs_job {
  const gs_plan *p;
  const cpu_tensor *x, *grid;
  cpu_tensor *y;
} gs_job;

/* Rows [begin, end) of N * H_out output rows. */
static void gs_task(void *arg, size_t begin, size_t end) {
  const gs_job *j = arg;
  int64_t ch = j->x->dims[1], h = j->x->dims[2], w = j->x->dims[3];
  int64_t ho = j->grid->dims[1], wo = j->grid->dims[2];
  size_t plane = (size_t)(h * w), oplane = (size_t)(ho * wo);
  for (size_t row = begin; row < end; row++) {
    size_t b = row / (size_t)ho, oy = row % (size_t)ho;
    for (size_t ox = 0; ox < (size_t)wo; ox++) {
      size_t gi = ((b * (size_t)ho + oy) * (size_t)wo + ox) * 2;
      gs_taps t = gs_taps_at(j->p, ld(j->grid, gi), ld(j->grid, gi + 1), h, w);
      for (int64_t c = 0; c < ch; c++) {
        size_t xb = (b * (size_t)ch + (size_t)c) * plane;
        double acc = 0.0;
        for (size_t k = 0; k < t.n; k++)
          acc += t.w[k] * ld(j->x, xb + t.pos[k]);
        st(j->y, (b * (size_t)ch + (size_t)c) * oplane + oy * (size_t)wo + ox, acc);
      }
    }
  }
}

static int gs_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                  cpu_tensor *out) {
  (void)state;
  char msg[256];
  gs_plan p;
  if (gs_valid(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  gs_job j = {&p, &in[0], &in[1], &out[0]};
  size_t rows = (size_t)(in[1].dims[0] * in[1].dims[1]);
  size_t per_row = (size_t)(in[1].dims[2] * (in[0].dims[1] + 1)) + 1;
  cpu_parallel_for(ctx, rows, per_row > (1 << 14) ? 1 : (1 << 14) / per_row, gs_task, &j);
  return 0;
}

/* ---- Unique --------------------------------------------------------------------------- */

/* Orders elements i and j: integers exactly, floats by value with -0 equal to +0, NaN equal to
 * NaN and after every number; the same order as cmp_elem() in core/shape_infer.c. */
static int u_cmp_elem(const cpu_tensor *x, size_t i, size_t j) {
  if (x->dtype == TSR_DTYPE_INT64) {
    int64_t a = ((const int64_t *)x->data)[i], b = ((const int64_t *)x->data)[j];
    return a < b ? -1 : a > b;
  }
  if (x->dtype == TSR_DTYPE_UINT64) {
    uint64_t a = ((const uint64_t *)x->data)[i], b = ((const uint64_t *)x->data)[j];
    return a < b ? -1 : a > b;
  }
  double a = ld(x, i), b = ld(x, j);
  if (a != a || b != b)
    return (a != a) - (b != b);
  return a < b ? -1 : a > b;
}

typedef struct u_slices {
  const cpu_tensor *x;
  size_t outer, n, inner;
} u_slices;

/* Slices a and b compared lexicographically in row-major element order (numpy.unique). */
static int u_cmp(const u_slices *s, size_t a, size_t b) {
  for (size_t o = 0; o < s->outer; o++)
    for (size_t k = 0; k < s->inner; k++) {
      size_t base = o * s->n * s->inner + k;
      int r = u_cmp_elem(s->x, base + a * s->inner, base + b * s->inner);
      if (r)
        return r;
    }
  return 0;
}

/* Stable bottom-up merge sort of slice indices; returns the buffer that holds the result. */
static size_t *u_sort(const u_slices *s, size_t *a, size_t *b) {
  size_t n = s->n;
  for (size_t i = 0; i < n; i++)
    a[i] = i;
  for (size_t w = 1; w < n; w *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * w) {
      size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi)
        b[k++] = u_cmp(s, a[j], a[i]) < 0 ? a[j++] : a[i++];
      while (i < mid)
        b[k++] = a[i++];
      while (j < hi)
        b[k++] = a[j++];
    }
    size_t *t = a;
    a = b;
    b = t;
  }
  return a;
}

typedef struct u_group {
  size_t first, count, id;
} u_group;

static int cmp_group_first(const void *pa, const void *pb) {
  const u_group *a = pa, *b = pb;
  return a->first < b->first ? -1 : a->first > b->first;
}

static tsr_plugin_reason u_valid(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                 int64_t *axis, char *msg, size_t size) {
  *axis = -1;
  if (!has(in, n->n_in, 0) || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects input X and output Y");
  const cpu_tensor *x = &in[0];
  if (cpu_dtype_size(x->dtype) == 0)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s is not supported",
                      cpu_dtype_name(x->dtype));
  if (out[0].dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "Y is %s, X is %s",
                      cpu_dtype_name(out[0].dtype), cpu_dtype_name(x->dtype));
  for (uint32_t k = 1; k < n->n_out && k < 4; k++)
    if (out[k].present && (out[k].dtype != TSR_DTYPE_INT64 || out[k].rank != 1))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "output %u must be a 1-D int64 tensor",
                        k);
  if (cpu_has_attr(n, "axis")) {
    int64_t a = cpu_attr_int(n, "axis", 0), r = (int64_t)x->rank;
    if (a < -r || a >= r)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "axis %lld is out of range for rank %lld", LL(a), LL(r));
    *axis = a < 0 ? a + r : a;
  }
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason u_check(const cpu_node *n, char *msg, size_t size) {
  int64_t axis;
  return u_valid(n, n->in, n->out, &axis, msg, size);
}

/* Checks that output k (when present) is [len]. */
static int u_want(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *out, uint32_t k, size_t len) {
  if (k >= n->n_out || !out[k].present)
    return 0;
  if (out[k].rank == 1 && (uint64_t)out[k].dims[0] == len)
    return 0;
  char s[96];
  return cpu_fail(ctx, "output %u is %s, but %zu values are unique", k,
                  dims_str(s, sizeof s, &out[k]), len);
}

static int u_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                 cpu_tensor *out) {
  (void)state;
  char msg[256];
  int64_t axis;
  if (u_valid(n, in, out, &axis, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  const cpu_tensor *x = &in[0];
  u_slices s = {x, 1, x->count, 1};
  if (axis >= 0) {
    s.n = (size_t)x->dims[axis];
    for (int64_t i = 0; i < axis; i++)
      s.outer *= (size_t)x->dims[i];
    for (uint32_t i = (uint32_t)axis + 1; i < x->rank; i++)
      s.inner *= (size_t)x->dims[i];
  }
  size_t n_sl = s.n;
  size_t *a = malloc((n_sl ? n_sl : 1) * 2 * sizeof *a);
  size_t *rank_of = malloc((n_sl ? n_sl : 1) * sizeof *rank_of);
  u_group *groups = malloc((n_sl ? n_sl : 1) * sizeof *groups);
  size_t *order = malloc((n_sl ? n_sl : 1) * sizeof *order);
  int rc = 0;
  if (!a || !rank_of || !groups || !order) {
    rc = cpu_fail(ctx, "out of memory");
    goto done;
  }
  size_t *sorted = u_sort(&s, a, a + n_sl);
  /* Runs of equal slices; the stable sort puts each run's first occurrence first. */
  size_t u = 0;
  for (size_t i = 0; i < n_sl; i++) {
    if (i == 0 || u_cmp(&s, sorted[i - 1], sorted[i]) != 0) {
      groups[u] = (u_group){sorted[i], 0, u};
      u++;
    }
    groups[u - 1].count++;
    rank_of[sorted[i]] = u - 1;
  }
  if (cpu_attr_int(n, "sorted", 1) == 0) {
    /* Order of first occurrence: sort the groups by it and renumber. */
    qsort(groups, u, sizeof *groups, cmp_group_first);
    for (size_t g = 0; g < u; g++)
      order[groups[g].id] = g;
    for (size_t i = 0; i < n_sl; i++)
      rank_of[i] = order[rank_of[i]];
  }
  /* Y: X with the axis (or the flattened elements) reduced to the unique slices. */
  const cpu_tensor *y = &out[0];
  bool shape_ok;
  if (axis < 0) {
    shape_ok = y->rank == 1 && (uint64_t)y->dims[0] == u;
  } else {
    shape_ok = y->rank == x->rank;
    for (uint32_t i = 0; shape_ok && i < x->rank; i++)
      shape_ok = (int64_t)i == axis ? (uint64_t)y->dims[i] == u : y->dims[i] == x->dims[i];
  }
  if (!shape_ok) {
    char s1[96];
    rc = cpu_fail(ctx, "output Y is %s, but %zu slices are unique", dims_str(s1, sizeof s1, y), u);
    goto done;
  }
  if (u_want(ctx, n, out, 1, u) || u_want(ctx, n, out, 2, n_sl) || u_want(ctx, n, out, 3, u)) {
    rc = -1;
    goto done;
  }
  size_t es = cpu_dtype_size(x->dtype), row = s.inner * es;
  for (size_t o = 0; o < s.outer && row; o++)
    for (size_t g = 0; g < u; g++)
      memcpy((char *)out[0].data + (o * u + g) * row,
             (const char *)x->data + (o * s.n + groups[g].first) * row, row);
  for (size_t g = 0; g < u; g++) {
    if (n->n_out > 1 && out[1].present)
      ((int64_t *)out[1].data)[g] = (int64_t)groups[g].first;
    if (n->n_out > 3 && out[3].present)
      ((int64_t *)out[3].data)[g] = (int64_t)groups[g].count;
  }
  if (n->n_out > 2 && out[2].present)
    for (size_t i = 0; i < n_sl; i++)
      ((int64_t *)out[2].data)[i] = (int64_t)rank_of[i];
done:
  free(a);
  free(rank_of);
  free(groups);
  free(order);
  return rc;
}

static const cpu_op detect_ops[] = {
    {"NonMaxSuppression", "", 10, 17, nms_check, NULL, nms_run, NULL},
    {"RoiAlign", "", 10, 17, roi_check, NULL, roi_run, NULL},
    {"GridSample", "", 16, 17, gs_check, NULL, gs_run, NULL},
    {"Unique", "", 11, 17, u_check, NULL, u_run, NULL},
};

const cpu_op_list cpu_ops_detect = {detect_ops, sizeof detect_ops / sizeof detect_ops[0]};
