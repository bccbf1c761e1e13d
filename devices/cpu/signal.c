/* Signal processing: DFT and STFT (opset 17), the Hann, Hamming and Blackman windows, and
 * MelWeightMatrix.
 *
 * Transforms run in double on complex lines of any length: radix-2 for powers of two, a direct
 * sum over an exact twiddle table for short lines, and Bluestein's chirp-z algorithm (three
 * power-of-two transforms) for the other lengths, so no length costs O(n^2) beyond 128. The
 * inverse is the forward transform of the conjugate, conjugated and scaled by 1/n. A plan (the
 * twiddles and chirp) is made once per run and shared by the threads; each thread has its own
 * scratch lines.
 *
 * Output sizes depend on scalar inputs (dft_length, frame_step, frame_length, a window's size,
 * num_mel_bins); the kernels read them, compute the shape themselves, and fail when the output
 * they were given differs. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"

#define LL(x) ((long long)(x))

static const double kPi = 3.14159265358979323846;

/* ---- Shared helpers ------------------------------------------------------------------- */

static bool is_float_dtype(uint32_t dt) {
  return dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16 ||
         dt == TSR_DTYPE_BFLOAT16;
}

static bool is_index_dtype(uint32_t dt) { return dt == TSR_DTYPE_INT64 || dt == TSR_DTYPE_INT32; }

/* Any numeric dtype but bool: what output_datatype may name. */
static bool is_numeric_out(uint32_t dt) { return dt != TSR_DTYPE_BOOL && cpu_dtype_size(dt) != 0; }

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

static const char *dims_str(char *buf, size_t size, const cpu_tensor *t) {
  size_t len = (size_t)snprintf(buf, size, "[");
  for (uint32_t i = 0; i < t->rank && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "", LL(t->dims[i]));
  if (len < size)
    snprintf(buf + len, size - len, "]");
  return buf;
}

/* Fails unless output t has exactly dims. */
static int want_dims(cpu_ctx *ctx, const cpu_tensor *t, uint32_t rank, const int64_t *dims) {
  bool ok = t->rank == rank;
  for (uint32_t i = 0; ok && i < rank; i++)
    ok = t->dims[i] == dims[i];
  if (ok)
    return 0;
  char got[128], want[128];
  cpu_tensor w = {.rank = rank, .dims = dims};
  return cpu_fail(ctx, "the output is %s, but the inputs make it %s", dims_str(got, sizeof got, t),
                  dims_str(want, sizeof want, &w));
}

/* A scalar int32/int64 input (one element); false when t is not one. */
static bool int_scalar(const cpu_tensor *t) { return is_index_dtype(t->dtype) && t->count == 1; }

/* ---- Transforms ----------------------------------------------------------------------- */

typedef enum fft_kind { FFT_DIRECT, FFT_RADIX2, FFT_BLUESTEIN } fft_kind;

typedef struct fft_plan {
  size_t n;
  fft_kind kind;
  size_t m;              /* the power-of-two size transformed (n, or Bluestein's padded size) */
  double *tw_re, *tw_im; /* DIRECT: n twiddles; otherwise m / 2 twiddles of size m */
  double *ch_re, *ch_im; /* BLUESTEIN: the chirp exp(-i pi k^2 / n), n entries */
  double *bf_re, *bf_im; /* BLUESTEIN: the transformed filter, m entries */
} fft_plan;

#define FFT_DIRECT_MAX 128

static bool is_pow2(size_t n) { return n && !(n & (n - 1)); }

/* In-place iterative radix-2 transform of m points with the plan's twiddles. */
static void fft_radix2(const fft_plan *p, double *re, double *im) {
  size_t m = p->m;
  for (size_t i = 1, j = 0; i < m; i++) {
    size_t bit = m >> 1;
    for (; j & bit; bit >>= 1)
      j ^= bit;
    j ^= bit;
    if (i < j) {
      double t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  for (size_t len = 2; len <= m; len <<= 1) {
    size_t half = len / 2, step = m / len;
    for (size_t i = 0; i < m; i += len)
      for (size_t k = 0; k < half; k++) {
        double wr = p->tw_re[k * step], wi = p->tw_im[k * step];
        size_t a = i + k, b = a + half;
        double xr = re[b] * wr - im[b] * wi, xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
  }
}

static void fft_plan_free(fft_plan *p) {
  free(p->tw_re);
  free(p->tw_im);
  free(p->ch_re);
  free(p->ch_im);
  free(p->bf_re);
  free(p->bf_im);
  memset(p, 0, sizeof *p);
}

/* Doubles of scratch that fft_forward needs. */
static size_t fft_scratch(const fft_plan *p) { return p->kind == FFT_RADIX2 ? 0 : 2 * p->m; }

/* Makes the plan for n points (n >= 1); -1 when memory runs out. */
static int fft_plan_init(fft_plan *p, size_t n) {
  memset(p, 0, sizeof *p);
  p->n = n;
  if (is_pow2(n)) {
    p->kind = FFT_RADIX2;
    p->m = n;
  } else if (n <= FFT_DIRECT_MAX) {
    p->kind = FFT_DIRECT;
    p->m = n;
  } else {
    p->kind = FFT_BLUESTEIN;
    if (n > (SIZE_MAX >> 3) / sizeof(double))
      return -1;
    p->m = 1;
    while (p->m < 2 * n - 1)
      p->m <<= 1;
  }
  size_t ntw = p->kind == FFT_DIRECT ? n : (p->m / 2 ? p->m / 2 : 1);
  p->tw_re = malloc(ntw * sizeof(double));
  p->tw_im = malloc(ntw * sizeof(double));
  if (!p->tw_re || !p->tw_im)
    goto oom;
  size_t size = p->kind == FFT_DIRECT ? n : p->m;
  for (size_t k = 0; k < ntw; k++) {
    double a = -2.0 * kPi * (double)k / (double)size;
    p->tw_re[k] = cos(a);
    p->tw_im[k] = sin(a);
  }
  if (p->kind != FFT_BLUESTEIN)
    return 0;
  p->ch_re = malloc(n * sizeof(double));
  p->ch_im = malloc(n * sizeof(double));
  p->bf_re = calloc(p->m, sizeof(double));
  p->bf_im = calloc(p->m, sizeof(double));
  if (!p->ch_re || !p->ch_im || !p->bf_re || !p->bf_im)
    goto oom;
  /* k^2 mod 2n, kept exact by adding 2k - 1 at each step. */
  size_t q = 0, two_n = 2 * n;
  for (size_t k = 0; k < n; k++) {
    if (k)
      q = (q + 2 * k - 1) % two_n;
    double a = -kPi * (double)q / (double)n;
    p->ch_re[k] = cos(a);
    p->ch_im[k] = sin(a);
  }
  /* The filter: conj(chirp) at k and at m - k. */
  for (size_t k = 0; k < n; k++) {
    p->bf_re[k] = p->ch_re[k];
    p->bf_im[k] = -p->ch_im[k];
    if (k) {
      p->bf_re[p->m - k] = p->ch_re[k];
      p->bf_im[p->m - k] = -p->ch_im[k];
    }
  }
  fft_radix2(p, p->bf_re, p->bf_im);
  return 0;
oom:
  fft_plan_free(p);
  return -1;
}

/* The forward DFT of n complex points, in place; scratch holds fft_scratch(p) doubles. */
static void fft_forward(const fft_plan *p, double *re, double *im, double *scratch) {
  size_t n = p->n;
  if (p->kind == FFT_RADIX2) {
    fft_radix2(p, re, im);
    return;
  }
  double *sr = scratch, *si = scratch + p->m;
  if (p->kind == FFT_DIRECT) {
    for (size_t k = 0; k < n; k++) {
      double ar = 0.0, ai = 0.0;
      size_t t = 0; /* j * k mod n */
      for (size_t j = 0; j < n; j++) {
        ar += re[j] * p->tw_re[t] - im[j] * p->tw_im[t];
        ai += re[j] * p->tw_im[t] + im[j] * p->tw_re[t];
        t += k;
        if (t >= n)
          t -= n;
      }
      sr[k] = ar;
      si[k] = ai;
    }
    memcpy(re, sr, n * sizeof *re);
    memcpy(im, si, n * sizeof *im);
    return;
  }
  /* Bluestein: X = chirp * (filter conv (x * chirp)), the convolution through m-point FFTs;
   * the inverse FFT is the forward one of the conjugate. */
  size_t m = p->m;
  for (size_t k = 0; k < n; k++) {
    sr[k] = re[k] * p->ch_re[k] - im[k] * p->ch_im[k];
    si[k] = re[k] * p->ch_im[k] + im[k] * p->ch_re[k];
  }
  for (size_t k = n; k < m; k++)
    sr[k] = si[k] = 0.0;
  fft_radix2(p, sr, si);
  for (size_t k = 0; k < m; k++) {
    double r = sr[k] * p->bf_re[k] - si[k] * p->bf_im[k];
    double i = sr[k] * p->bf_im[k] + si[k] * p->bf_re[k];
    sr[k] = r;
    si[k] = -i;
  }
  fft_radix2(p, sr, si);
  double inv = 1.0 / (double)m;
  for (size_t k = 0; k < n; k++) {
    double cr = sr[k] * inv, ci = -si[k] * inv;
    re[k] = cr * p->ch_re[k] - ci * p->ch_im[k];
    im[k] = cr * p->ch_im[k] + ci * p->ch_re[k];
  }
}

/* The transform, forward or inverse (scaled by 1/n). */
static void fft_line(const fft_plan *p, bool inverse, double *re, double *im, double *scratch) {
  if (inverse)
    for (size_t k = 0; k < p->n; k++)
      im[k] = -im[k];
  fft_forward(p, re, im, scratch);
  if (inverse) {
    double s = 1.0 / (double)p->n;
    for (size_t k = 0; k < p->n; k++) {
      re[k] *= s;
      im[k] = -im[k] * s;
    }
  }
}

/* Per-thread lines: re, im (n each) and the plan's scratch. */
static double *fft_lines_alloc(const fft_plan *p) {
  size_t n = 2 * p->n + fft_scratch(p);
  return malloc(n * sizeof(double));
}

/* ---- DFT ------------------------------------------------------------------------------ */

typedef struct dft_plan {
  int64_t axis;
  bool onesided, inverse;
} dft_plan;

static tsr_plugin_reason dft_valid(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   dft_plan *p, char *msg, size_t size) {
  char s1[96];
  if (!has(in, n->n_in, 0) || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects an input and an output");
  const cpu_tensor *x = &in[0];
  if (!is_float_dtype(x->dtype) || out[0].dtype != x->dtype)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "input %s and output %s must share a float dtype", cpu_dtype_name(x->dtype),
                      cpu_dtype_name(out[0].dtype));
  int64_t r = (int64_t)x->rank;
  if (r < 3 || r > 16 || (x->dims[r - 1] != 1 && x->dims[r - 1] != 2))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "input %s must be [batch, signal dims..., 1 or 2] (rank up to 16)",
                      dims_str(s1, sizeof s1, x));
  int64_t axis = cpu_attr_int(n, "axis", 1);
  p->axis = axis < 0 ? axis + r : axis;
  if (p->axis < 1 || p->axis > r - 2)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "axis %lld must name a signal dim of input %s", LL(axis),
                      dims_str(s1, sizeof s1, x));
  p->onesided = cpu_attr_int(n, "onesided", 0) != 0;
  p->inverse = cpu_attr_int(n, "inverse", 0) != 0;
  if (p->onesided && x->dims[r - 1] == 2)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "onesided output needs a real input");
  if (has(in, n->n_in, 1) && !int_scalar(&in[1]))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "dft_length must be one int32 or int64 value");
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason dft_check(const cpu_node *n, char *msg, size_t size) {
  dft_plan p;
  return dft_valid(n, n->in, n->out, &p, msg, size);
}

typedef struct dft_job {
  const fft_plan *fp;
  const cpu_tensor *x;
  cpu_tensor *y;
  bool inverse;
  size_t inner, comps, n_sig, n_out; /* n_out: bins written per line */
  atomic_int failed;
} dft_job;

/* Lines [begin, end) of outer * inner. */
static void dft_task(void *arg, size_t begin, size_t end) {
  dft_job *j = arg;
  const fft_plan *fp = j->fp;
  double *buf = fft_lines_alloc(fp);
  if (!buf) {
    atomic_store(&j->failed, 1);
    return;
  }
  double *re = buf, *im = buf + fp->n, *scratch = buf + 2 * fp->n;
  size_t take = j->n_sig < fp->n ? j->n_sig : fp->n;
  for (size_t line = begin; line < end; line++) {
    size_t o = line / j->inner, i = line % j->inner;
    for (size_t k = 0; k < take; k++) {
      size_t at = ((o * j->n_sig + k) * j->inner + i) * j->comps;
      re[k] = ld(j->x, at);
      im[k] = j->comps == 2 ? ld(j->x, at + 1) : 0.0;
    }
    for (size_t k = take; k < fp->n; k++)
      re[k] = im[k] = 0.0;
    fft_line(fp, j->inverse, re, im, scratch);
    for (size_t k = 0; k < j->n_out; k++) {
      size_t at = ((o * j->n_out + k) * j->inner + i) * 2;
      st(j->y, at, re[k]);
      st(j->y, at + 1, im[k]);
    }
  }
  free(buf);
}

static int dft_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                   cpu_tensor *out) {
  (void)state;
  char msg[256];
  dft_plan p;
  if (dft_valid(n, in, out, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  const cpu_tensor *x = &in[0];
  uint32_t r = x->rank;
  int64_t len = x->dims[p.axis];
  if (has(in, n->n_in, 1))
    len = cpu_read_int(&in[1], 0);
  if (len < 1)
    return cpu_fail(ctx, "the DFT length is %lld; it must be >= 1", LL(len));
  int64_t bins = p.onesided ? len / 2 + 1 : len;
  int64_t want[16];
  for (uint32_t i = 0; i < r; i++)
    want[i] = x->dims[i];
  want[p.axis] = bins;
  want[r - 1] = 2;
  if (want_dims(ctx, &out[0], r, want))
    return -1;
  if (out[0].count == 0)
    return 0;
  if ((uint64_t)len > SIZE_MAX / 64)
    return cpu_fail(ctx, "the DFT length %lld is too large", LL(len));
  fft_plan fp;
  if (fft_plan_init(&fp, (size_t)len))
    return cpu_fail(ctx, "out of memory");
  dft_job j = {.fp = &fp,
               .x = x,
               .y = &out[0],
               .inverse = p.inverse,
               .inner = 1,
               .comps = (size_t)x->dims[r - 1],
               .n_sig = (size_t)x->dims[p.axis],
               .n_out = (size_t)bins};
  atomic_init(&j.failed, 0);
  size_t outer = 1;
  for (int64_t i = 0; i < p.axis; i++)
    outer *= (size_t)x->dims[i];
  for (uint32_t i = (uint32_t)p.axis + 1; i + 1 < r; i++)
    j.inner *= (size_t)x->dims[i];
  size_t lines = outer * j.inner, cost = (size_t)len * 8 + 1;
  cpu_parallel_for(ctx, lines, cost > (1 << 15) ? 1 : (1 << 15) / cost, dft_task, &j);
  fft_plan_free(&fp);
  return atomic_load(&j.failed) ? cpu_fail(ctx, "out of memory") : 0;
}

/* ---- STFT ----------------------------------------------------------------------------- */

static tsr_plugin_reason stft_valid(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                    char *msg, size_t size) {
  char s1[96];
  if (!has(in, n->n_in, 0) || !has(in, n->n_in, 1) || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "expects a signal, a frame_step and an output");
  const cpu_tensor *x = &in[0];
  if (!is_float_dtype(x->dtype) || out[0].dtype != x->dtype ||
      (has(in, n->n_in, 2) && in[2].dtype != x->dtype))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "signal, window and output must share a float dtype");
  if (x->rank != 3 || (x->dims[2] != 1 && x->dims[2] != 2))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "signal %s must be [batch, length, 1 or 2]", dims_str(s1, sizeof s1, x));
  if (!int_scalar(&in[1]) || (has(in, n->n_in, 3) && !int_scalar(&in[3])))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "frame_step and frame_length must be one int32 or int64 value each");
  if (has(in, n->n_in, 2) && in[2].rank != 1)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "the window %s must be 1-D",
                      dims_str(s1, sizeof s1, &in[2]));
  if (!has(in, n->n_in, 2) && !has(in, n->n_in, 3))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "needs a window or a frame_length");
  if (cpu_attr_int(n, "onesided", 1) != 0 && x->dims[2] == 2)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "onesided output (the default) needs a real signal");
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason stft_check(const cpu_node *n, char *msg, size_t size) {
  return stft_valid(n, n->in, n->out, msg, size);
}

typedef struct stft_job {
  const fft_plan *fp;
  const cpu_tensor *x, *win;
  cpu_tensor *y;
  size_t frames, step, bins;
  atomic_int failed;
} stft_job;

/* Frames [begin, end) of batch * frames. */
static void stft_task(void *arg, size_t begin, size_t end) {
  stft_job *j = arg;
  const fft_plan *fp = j->fp;
  double *buf = fft_lines_alloc(fp);
  if (!buf) {
    atomic_store(&j->failed, 1);
    return;
  }
  double *re = buf, *im = buf + fp->n, *scratch = buf + 2 * fp->n;
  size_t len = (size_t)j->x->dims[1], comps = (size_t)j->x->dims[2];
  for (size_t item = begin; item < end; item++) {
    size_t b = item / j->frames, f = item % j->frames;
    for (size_t k = 0; k < fp->n; k++) {
      size_t at = (b * len + f * j->step + k) * comps;
      double w = j->win ? ld(j->win, k) : 1.0;
      re[k] = ld(j->x, at) * w;
      im[k] = comps == 2 ? ld(j->x, at + 1) * w : 0.0;
    }
    fft_line(fp, false, re, im, scratch);
    for (size_t k = 0; k < j->bins; k++) {
      size_t at = (item * j->bins + k) * 2;
      st(j->y, at, re[k]);
      st(j->y, at + 1, im[k]);
    }
  }
  free(buf);
}

static int stft_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                    cpu_tensor *out) {
  (void)state;
  char msg[256];
  if (stft_valid(n, in, out, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  const cpu_tensor *x = &in[0], *win = has(in, n->n_in, 2) ? &in[2] : NULL;
  int64_t step = cpu_read_int(&in[1], 0);
  int64_t len = has(in, n->n_in, 3) ? cpu_read_int(&in[3], 0) : win->dims[0];
  if (win && win->dims[0] != len)
    return cpu_fail(ctx, "the window has %lld values, but frame_length is %lld", LL(win->dims[0]),
                    LL(len));
  if (step < 1)
    return cpu_fail(ctx, "frame_step is %lld; it must be >= 1", LL(step));
  if (len < 1 || len > x->dims[1])
    return cpu_fail(ctx, "the frame length %lld must be 1..%lld, the signal's length", LL(len),
                    LL(x->dims[1]));
  bool onesided = cpu_attr_int(n, "onesided", 1) != 0;
  int64_t frames = (x->dims[1] - len) / step + 1, bins = onesided ? len / 2 + 1 : len;
  int64_t want[4] = {x->dims[0], frames, bins, 2};
  if (want_dims(ctx, &out[0], 4, want))
    return -1;
  if (out[0].count == 0)
    return 0;
  fft_plan fp;
  if (fft_plan_init(&fp, (size_t)len))
    return cpu_fail(ctx, "out of memory");
  stft_job j = {.fp = &fp,
                .x = x,
                .win = win,
                .y = &out[0],
                .frames = (size_t)frames,
                .step = (size_t)step,
                .bins = (size_t)bins};
  atomic_init(&j.failed, 0);
  size_t items = (size_t)x->dims[0] * (size_t)frames, cost = (size_t)len * 8 + 1;
  cpu_parallel_for(ctx, items, cost > (1 << 15) ? 1 : (1 << 15) / cost, stft_task, &j);
  fft_plan_free(&fp);
  return atomic_load(&j.failed) ? cpu_fail(ctx, "out of memory") : 0;
}

/* ---- Windows -------------------------------------------------------------------------- */

typedef enum win_kind { WIN_HANN, WIN_HAMMING, WIN_BLACKMAN } win_kind;

static tsr_plugin_reason win_valid(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   char *msg, size_t size) {
  if (!has(in, n->n_in, 0) || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects a size input and an output");
  if (!int_scalar(&in[0]))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "size must be one int32 or int64 value");
  if (!is_numeric_out(out[0].dtype) || out[0].rank != 1)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "the output must be a 1-D numeric tensor");
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason win_check(const cpu_node *n, char *msg, size_t size) {
  return win_valid(n, n->in, n->out, msg, size);
}

/* The generalised cosine window a0 - a1 cos(x) + a2 cos(2x), x = 2 pi k / N, with N = size for
 * periodic windows and size - 1 for symmetric ones (a symmetric window of one value is 1). */
static int win_run(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *in, cpu_tensor *out,
                   win_kind kind) {
  char msg[160];
  if (win_valid(n, in, out, msg, sizeof msg) != TSR_PLUGIN_REASON_NONE)
    return cpu_fail(ctx, "%s", msg);
  int64_t size = cpu_read_int(&in[0], 0);
  if (size < 0)
    return cpu_fail(ctx, "size is %lld; it must be >= 0", LL(size));
  if (want_dims(ctx, &out[0], 1, &size))
    return -1;
  double a0 = 0.5, a1 = 0.5, a2 = 0.0;
  if (kind == WIN_HAMMING) {
    a0 = 25.0 / 46.0;
    a1 = 21.0 / 46.0;
  } else if (kind == WIN_BLACKMAN) {
    a0 = 0.42;
    a1 = 0.5;
    a2 = 0.08;
  }
  int64_t period = cpu_attr_int(n, "periodic", 1) != 0 ? size : size - 1;
  for (int64_t k = 0; k < size; k++) {
    double v = 1.0;
    if (period > 0) {
      double x = 2.0 * kPi * (double)k / (double)period;
      v = a0 - a1 * cos(x) + a2 * cos(2.0 * x);
    }
    st(&out[0], (size_t)k, v);
  }
  return 0;
}

static int hann_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                    cpu_tensor *out) {
  (void)state;
  return win_run(ctx, n, in, out, WIN_HANN);
}
static int hamming_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                       cpu_tensor *out) {
  (void)state;
  return win_run(ctx, n, in, out, WIN_HAMMING);
}
static int blackman_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                        cpu_tensor *out) {
  (void)state;
  return win_run(ctx, n, in, out, WIN_BLACKMAN);
}

/* ---- MelWeightMatrix ------------------------------------------------------------------ */

static tsr_plugin_reason mel_valid(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                   char *msg, size_t size) {
  if (n->n_in < 5 || n->n_out < 1 || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects 5 inputs and an output");
  for (uint32_t i = 0; i < 5; i++) {
    if (!in[i].present || in[i].count != 1)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "input %u must be one value", i);
    if (i < 3 ? !is_index_dtype(in[i].dtype) : !is_float_dtype(in[i].dtype))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "input %u must be %s, got %s", i,
                        i < 3 ? "int32 or int64" : "a float", cpu_dtype_name(in[i].dtype));
  }
  if (!is_numeric_out(out[0].dtype) || out[0].rank != 2)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE,
                      "the output must be a 2-D numeric tensor");
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason mel_check(const cpu_node *n, char *msg, size_t size) {
  return mel_valid(n, n->in, n->out, msg, size);
}

/* Triangular filters between mel-spaced points, as the ONNX reference computes them: the mel
 * points in float, their spectrogram bins floor((dft_length + 1) * hz / sample_rate) in double.
 * Bins past the spectrogram's last row are left out. */
static int mel_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                   cpu_tensor *out) {
  (void)state;
  char msg[160];
  if (mel_valid(n, in, out, msg, sizeof msg) != TSR_PLUGIN_REASON_NONE)
    return cpu_fail(ctx, "%s", msg);
  int64_t bins = cpu_read_int(&in[0], 0), len = cpu_read_int(&in[1], 0);
  int64_t rate = cpu_read_int(&in[2], 0);
  double lo = cpu_read_f64(&in[3], 0), hi = cpu_read_f64(&in[4], 0);
  if (bins < 0 || len < 1 || rate < 1)
    return cpu_fail(ctx,
                    "num_mel_bins %lld, dft_length %lld and sample_rate %lld must be >= 0, "
                    ">= 1 and >= 1",
                    LL(bins), LL(len), LL(rate));
  if (!(lo >= 0.0 && hi >= lo && isfinite(hi)))
    return cpu_fail(ctx, "the edges %g Hz and %g Hz must satisfy 0 <= lower <= upper", lo, hi);
  int64_t rows = len / 2 + 1, want[2] = {rows, bins};
  if (want_dims(ctx, &out[0], 2, want))
    return -1;
  for (size_t i = 0; i < out[0].count; i++)
    st(&out[0], i, 0.0);
  if (bins == 0)
    return 0;
  int64_t *points = malloc((size_t)(bins + 2) * sizeof *points);
  if (!points)
    return cpu_fail(ctx, "out of memory");
  float lo_mel = 2595.0f * log10f(1.0f + (float)lo / 700.0f);
  float hi_mel = 2595.0f * log10f(1.0f + (float)hi / 700.0f);
  float step = (hi_mel - lo_mel) / (float)(bins + 2);
  /* Indices past every row are clamped: they only shape triangles outside the matrix. */
  double cap = (double)rows + 1.0;
  for (int64_t i = 0; i < bins + 2; i++) {
    double hz = 700.0 * (pow(10.0, ((double)i * step + lo_mel) / 2595.0) - 1.0);
    double idx = floor((double)(len + 1) * hz / (double)rate);
    points[i] = (int64_t)(idx < 0 ? 0 : idx > cap ? cap : idx);
  }
  for (int64_t m = 0; m < bins; m++) {
    int64_t left = points[m], center = points[m + 1], right = points[m + 2];
    if (center == left) {
      if (center < rows)
        st(&out[0], (size_t)(center * bins + m), 1.0);
    } else {
      for (int64_t k = left; k <= center && k < rows; k++)
        st(&out[0], (size_t)(k * bins + m), (double)(k - left) / (double)(center - left));
    }
    if (right > center)
      for (int64_t k = center; k < right && k < rows; k++)
        st(&out[0], (size_t)(k * bins + m), (double)(right - k) / (double)(right - center));
  }
  free(points);
  return 0;
}

static const cpu_op signal_ops[] = {
    {"DFT", "", 17, 17, dft_check, NULL, dft_run, NULL},
    {"STFT", "", 17, 17, stft_check, NULL, stft_run, NULL},
    {"HannWindow", "", 17, 17, win_check, NULL, hann_run, NULL},
    {"HammingWindow", "", 17, 17, win_check, NULL, hamming_run, NULL},
    {"BlackmanWindow", "", 17, 17, win_check, NULL, blackman_run, NULL},
    {"MelWeightMatrix", "", 17, 17, mel_check, NULL, mel_run, NULL},
};

const cpu_op_list cpu_ops_signal = {signal_ops, sizeof signal_ops / sizeof signal_ops[0]};
