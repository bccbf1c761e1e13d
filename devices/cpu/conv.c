/* Conv and ConvTranspose, 1-D to 3-D, with groups, strides, dilations, pads and auto_pad.
 *
 * float32 runs on the packed GEMM (cpu_sgemm_run) with the weights packed once, in prepare(): a
 * 1x1 stride-1 unpadded convolution is a GEMM over the input as it lies (over a small plane,
 * computed transposed: conv_pw.c, with W^T packed instead); in the general case
 * the GEMM reads its B panels straight from the input through the window (an implicit im2col,
 * conv_pack_b), one GEMM per (batch, group); convolutions with one input channel per group
 * (depthwise, with any channel multiplier) run the direct kernels of conv_dw.c instead, since
 * their im2col GEMM would have a depth of only kh*kw. ConvTranspose is the
 * adjoint: a GEMM with the weights transposed produces columns that col2im scatters into the
 * output. float64 runs direct loops in double precision; float16 is staged through float32. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/gemm_util.h"
#include "devices/cpu/vmath_avx2.h"
#include "devices/cpu/nn_util.h"
#include "devices/cpu/conv_util.h"
#include "devices/cpu/nchwc.h"

/* Scratch budget of one col2im tile (ConvTranspose), in floats (4 MiB). */
#define COL_TILE_FLOATS ((size_t)1 << 20)

static tsr_plugin_reason conv_transpose_window(const cpu_node *n, conv_plan *p, const int64_t *y_sp,
                                               char *msg, size_t size) {
  nn_window *w = &p->w;
  int nsp = w->nsp, off = NN_SP - nsp;
  int64_t op[2 * NN_SP] = {0}, os[NN_SP] = {0};
  tsr_plugin_reason r;
  if ((r = nn_read_sp_attr(n, "output_padding", nsp, (size_t)nsp, 0, op, msg, size)))
    return r;
  const int64_t *osv;
  size_t os_n = cpu_attr_ints(n, "output_shape", &osv);
  if (osv) {
    /* Either the spatial dims or the whole shape (N, C first). */
    if (os_n != (size_t)nsp && os_n != (size_t)nsp + 2)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "attribute output_shape has %zu values, expected %d", os_n, nsp);
    for (int i = 0; i < nsp; i++) {
      os[off + i] = osv[os_n - (size_t)nsp + (size_t)i];
      if (os[off + i] < 0 || os[off + i] > NN_ATTR_LIMIT)
        return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "output_shape[%d] is %lld", i,
                          (long long)os[off + i]);
    }
  }
  for (int i = off; i < NN_SP; i++) {
    int64_t ek = (w->k[i] - 1) * w->d[i] + 1;
    int64_t full = w->s[i] * (w->in[i] - 1) + op[i] + ek;
    int64_t total = -1;
    if (osv) {
      /* Padding is derived from the requested size; a size above the full output leaves the
       * tail to the bias alone (total clamps at 0), as onnxruntime does. */
      total = full - os[i];
      if (total < 0)
        total = 0;
    } else if (w->auto_pad == NN_PAD_SAME_UPPER || w->auto_pad == NN_PAD_SAME_LOWER) {
      total = ek - w->s[i] > 0 ? ek - w->s[i] : 0; /* ONNX shape inference: out = in * stride */
    } else if (w->auto_pad == NN_PAD_VALID) {
      w->pb[i] = w->pe[i] = 0;
    }
    if (total >= 0) {
      int64_t small = total / 2, big = total - small;
      bool upper = w->auto_pad == NN_PAD_SAME_UPPER;
      w->pb[i] = upper ? small : big;
      w->pe[i] = upper ? big : small;
    }
    int64_t out = osv ? os[i] : full - w->pb[i] - w->pe[i];
    if (out < 0 || (w->in[i] == 0 && !osv))
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "output spatial dim %d would be %lld",
                        i - off, (long long)out);
    if (y_sp[i - off] != out)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "output spatial dim %d is %lld, expected %lld", i - off,
                        (long long)y_sp[i - off], (long long)out);
    w->out[i] = out;
  }
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason conv_setup(const cpu_node *n, const cpu_tensor *in, const cpu_tensor *out,
                                    bool transpose, conv_plan *p, char *msg, size_t size) {
  char s1[96], s2[96];
  memset(p, 0, sizeof *p);
  p->transpose = transpose;
  if (n->n_in < 2 || n->n_out < 1 || !in[0].present || !in[1].present || !out[0].present)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "expects inputs X and W");
  const cpu_tensor *x = &in[0], *wt = &in[1], *y = &out[0];
  uint32_t dt = x->dtype;
  if (dt != TSR_DTYPE_FLOAT32 && dt != TSR_DTYPE_FLOAT64 && dt != TSR_DTYPE_FLOAT16)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported",
                      cpu_dtype_name(dt));
  p->has_bias = n->n_in > 2 && in[2].present;
  if (wt->dtype != dt || y->dtype != dt || (p->has_bias && in[2].dtype != dt))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_DTYPE, "X, W, B and Y must all be %s",
                      cpu_dtype_name(dt));
  if (x->rank < 3 || x->rank > 5)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "X has rank %u; 1-D, 2-D and 3-D convolutions (rank 3..5) are implemented",
                      x->rank);
  nn_dims_str(s1, sizeof s1, x->rank, x->dims);
  nn_dims_str(s2, sizeof s2, wt->rank, wt->dims);
  if (wt->rank != x->rank || y->rank != x->rank)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "X %s, W %s and Y must share a rank", s1,
                      s2);
  int64_t group = cpu_attr_int(n, "group", 1);
  if (group < 1 || group > NN_ATTR_LIMIT)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "group is %lld", (long long)group);
  int64_t N = x->dims[0], C = x->dims[1], M;
  if (!transpose) {
    M = wt->dims[0];
    if (wt->dims[1] * group != C || M % group != 0)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "W %s does not fit X %s with group %lld", s2, s1, (long long)group);
  } else {
    M = wt->dims[1] * group;
    if (wt->dims[0] != C || C % group != 0)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                        "W %s does not fit X %s with group %lld", s2, s1, (long long)group);
  }
  if (y->dims[0] != N || y->dims[1] != M)
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE,
                      "Y %s should have batch %lld and %lld channels",
                      nn_dims_str(s1, sizeof s1, y->rank, y->dims), (long long)N, (long long)M);
  if (p->has_bias && (in[2].rank != 1 || in[2].dims[0] != M))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_SHAPE, "B %s should be [%lld]",
                      nn_dims_str(s1, sizeof s1, in[2].rank, in[2].dims), (long long)M);
  tsr_plugin_reason r = cpu_act_from_node(n, &p->act, msg, size);
  if (r)
    return r;
  if (p->act.kind != CPU_ACT_NONE && (transpose || dt == TSR_DTYPE_FLOAT64))
    return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                      "tessera.activation is implemented for float32 and float16 Conv only");
  int nsp = (int)x->rank - 2;
  r = nn_window_attrs(n, nsp, x->dims + 2, wt->dims + 2, true, &p->w, msg, size);
  if (r)
    return r;
  if (!transpose) {
    if ((r = nn_window_forward(&p->w, false, msg, size)))
      return r;
    if ((r = nn_window_match_out(&p->w, y->dims + 2, false, msg, size)))
      return r;
  } else {
    if ((r = conv_transpose_window(n, p, y->dims + 2, msg, size)))
      return r;
  }
  p->N = (size_t)N;
  p->C = (size_t)C;
  p->M = (size_t)M;
  p->G = (size_t)group;
  p->cg = (size_t)C / p->G;
  p->mg = (size_t)M / p->G;
  p->kk = nn_prod(p->w.k, 0, NN_SP);
  p->in_sp = nn_prod(p->w.in, 0, NN_SP);
  p->out_sp = nn_prod(p->w.out, 0, NN_SP);
  return TSR_PLUGIN_REASON_NONE;
}

static tsr_plugin_reason conv_check(const cpu_node *n, char *msg, size_t size) {
  conv_plan p;
  return conv_setup(n, n->in, n->out, false, &p, msg, size);
}

static tsr_plugin_reason convt_check(const cpu_node *n, char *msg, size_t size) {
  conv_plan p;
  return conv_setup(n, n->in, n->out, true, &p, msg, size);
}

/* ---- float32: GEMM over the input read through the window ----------------------------- */

/* Conv is the GEMM Y[mg x out_sp] = W[mg x cg*kk] * X', where column o of X' holds the window
 * of output position o (im2col). X' is never built: the GEMM asks for one micro-panel of it at a
 * time (kc rows of NR columns) and conv_pack_b reads those straight from the input, so the
 * input is read once per panel from cache instead of written out as kk copies and read back. */
typedef struct conv_src {
  const conv_plan *p;
  const float *x;     /* the group's first input channel of one image */
  const float *scale; /* a pointwise layer's input channel scale (cpu_node.in_scale), or NULL */
} conv_src;

/* B of a pointwise layer whose input channels are scaled (a fused squeeze-and-excitation
 * Mul): rows p0 .. p0 + kc of the input, each times its channel's scale, as the panel is
 * packed, so that neither a scaled copy of the input nor scaled weights are made. */
static void conv_pack_b_scaled(const void *arg, size_t p0, size_t kc, size_t col0, size_t cols,
                               float *dst) {
  const conv_src *s = arg;
  cpu_sgemm_pack_b_rows(s->x, s->p->in_sp, s->scale, p0, kc, col0, cols, dst);
}

#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define CONV_HAVE_AVX2 1

/* d[j] = s[2 j] for j in [0, n): eight at a time, sixteen loads deinterleaved. */
__attribute__((target("avx2,fma"))) static inline void conv_even_avx2(float *d, const float *s,
                                                                      size_t n) {
  for (size_t j = 0; j < n; j += 8) {
    __m256 a = _mm256_loadu_ps(s + 2 * j), b = _mm256_loadu_ps(s + 2 * j + 8);
    /* shuffle_ps works within 128-bit lanes: a0 a2 b0 b2 | a4 a6 b4 b6; then the 64-bit
     * quarters in the order 0 2 1 3. */
    __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    _mm256_storeu_ps(d + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e),
                                                                   _MM_SHUFFLE(3, 1, 2, 0))));
  }
}
#endif

/* A run of output positions of one micro-panel that lie on one output row. */
typedef struct conv_run_seg {
  int64_t oz, oy, ox, len;
  size_t at; /* column within the panel */
} conv_run_seg;

/* conv_pack_b's body; avx2 is a constant in each of its two instances (below). */
static inline __attribute__((always_inline)) void
conv_pack_b_body(const void *arg, size_t p0, size_t kc, size_t col0, size_t cols, float *dst,
                 bool avx2) {
  const conv_src *s = arg;
  const conv_plan *p = s->p;
  const nn_window *w = &p->w;
  conv_run_seg seg[CPU_SGEMM_NR];
  size_t nseg = 0;
  {
    int64_t ow = w->out[2], oh = w->out[1];
    int64_t pos = (int64_t)col0, end = (int64_t)(col0 + cols);
    int64_t oz = pos / (oh * ow), oy = (pos / ow) % oh, ox = pos % ow;
    while (pos < end) {
      int64_t len = ow - ox < end - pos ? ow - ox : end - pos;
      seg[nseg++] = (conv_run_seg){oz, oy, ox, len, (size_t)(pos - (int64_t)col0)};
      pos += len;
      ox = 0;
      if (++oy == oh) {
        oy = 0;
        oz++;
      }
    }
  }
  int64_t k0 = w->k[0], k1 = w->k[1], k2 = w->k[2], s0 = w->s[0], s1 = w->s[1], s2 = w->s[2];
  int64_t in0 = w->in[0], in1 = w->in[1], in2 = w->in[2], d2 = w->d[2];
  size_t c = p0 / p->kk, kidx = p0 % p->kk;
  int64_t kz = (int64_t)(kidx / (size_t)(k1 * k2)), ky = (int64_t)(kidx / (size_t)k2) % k1;
  int64_t kx = (int64_t)kidx % k2;
  /* Rows come in runs that share a channel and a kernel row (kz, ky) and differ only in kx:
   * they read the same input row, so its bounds are checked once per run. */
  for (size_t r = 0; r < kc;) {
    size_t nkx = (size_t)(k2 - kx) < kc - r ? (size_t)(k2 - kx) : kc - r;
    float *d0 = dst + r * CPU_SGEMM_NR;
    const float *xc = s->x + c * p->in_sp;
    int64_t offz = kz * w->d[0] - w->pb[0], offy = ky * w->d[1] - w->pb[1];
    if (cols < CPU_SGEMM_NR)
      for (size_t t = 0; t < nkx; t++)
        memset(d0 + t * CPU_SGEMM_NR + cols, 0, (CPU_SGEMM_NR - cols) * sizeof *d0);
    for (size_t i = 0; i < nseg; i++) {
      const conv_run_seg *g = &seg[i];
      float *dd = d0 + g->at;
      size_t len = (size_t)g->len;
      int64_t iz = g->oz * s0 + offz, iy = g->oy * s1 + offy;
      if (iz < 0 || iz >= in0 || iy < 0 || iy >= in1) {
        for (size_t t = 0; t < nkx; t++)
          memset(dd + t * CPU_SGEMM_NR, 0, len * sizeof *dd);
        continue;
      }
      const float *xr = xc + (iz * in1 + iy) * in2;
      int64_t bx = g->ox * s2 - w->pb[2] + kx * d2; /* input column of the run's first row */
      int64_t span = ((int64_t)len - 1) * s2;
      for (size_t t = 0; t < nkx; t++, dd += CPU_SGEMM_NR, bx += d2) {
        if (bx >= 0 && bx + span < in2) {
          if (s2 == 1 && len == CPU_SGEMM_NR)
            memcpy(dd, xr + bx, CPU_SGEMM_NR * sizeof *dd); /* inlined: constant size */
          else if (s2 == 1)
            for (size_t j = 0; j < len; j++)
              dd[j] = xr[bx + (int64_t)j];
#ifdef CONV_HAVE_AVX2
          else if (s2 == 2 && len == CPU_SGEMM_NR && avx2 && bx + 2 * CPU_SGEMM_NR <= in2)
            conv_even_avx2(dd, xr + bx, CPU_SGEMM_NR); /* reads one float past the last */
#endif
          else
            for (size_t j = 0; j < len; j++)
              dd[j] = xr[bx + (int64_t)j * s2];
          continue;
        }
        /* At the left or right edge: columns j in [lo, hi) are inside the input. */
        int64_t lo = bx >= 0 ? 0 : s2 == 1 ? -bx : (-bx + s2 - 1) / s2;
        int64_t hi = in2 - bx <= 0 ? 0 : s2 == 1 ? in2 - bx : (in2 - bx + s2 - 1) / s2;
        if (lo > (int64_t)len)
          lo = (int64_t)len;
        if (hi > (int64_t)len)
          hi = (int64_t)len;
        if (hi < lo)
          hi = lo;
        for (int64_t j = 0; j < lo; j++)
          dd[j] = 0.0f;
        for (int64_t j = lo; j < hi; j++)
          dd[j] = xr[bx + j * s2];
        for (int64_t j = hi; j < (int64_t)len; j++)
          dd[j] = 0.0f;
      }
    }
    /* The next run: kernel position first, then channel. */
    r += nkx;
    kx += (int64_t)nkx;
    if (kx == k2) {
      kx = 0;
      if (++ky == k1) {
        ky = 0;
        if (++kz == k0) {
          kz = 0;
          c++;
        }
      }
    }
  }
}

static void conv_pack_b(const void *arg, size_t p0, size_t kc, size_t col0, size_t cols,
                        float *dst) {
  conv_pack_b_body(arg, p0, kc, col0, cols, dst, false);
}

#ifdef CONV_HAVE_AVX2
/* The same compiled for AVX2, so that conv_even_avx2 is inlined into it (it is called for every
 * row of every panel: in the profile of a 3 -> 32 stem over 224x224 the packing went from 34%
 * to 30% of the samples, against 43% in the micro-kernel). */
__attribute__((target("avx2,fma"))) static void conv_pack_b_avx2(const void *arg, size_t p0,
                                                                 size_t kc, size_t col0,
                                                                 size_t cols, float *dst) {
  conv_pack_b_body(arg, p0, kc, col0, cols, dst, true);
}
#endif

/* ---- float32: ConvTranspose through col2im --------------------------------------------- */

typedef struct col2im_job {
  const conv_plan *p;
  const float *col; /* mg*kk rows of tc floats, over input positions [col0, col0+tc) */
  float *y;         /* the group's first output channel of one image */
  size_t col0, tc;
  /* Where every output takes exactly one column value (convt_disjoint): stored with the
   * group's bias (or none) added, instead of added onto a zeroed output. */
  bool assign;
  const float *bias;
} col2im_job;

/* Whether every output of ConvTranspose p takes exactly one product per input channel: the
 * kernel's taps as far apart as the stride, no padding and no output padding (an upsampling
 * as PP-OCR's detector and U-Nets write it, 2x2 by 2). col2im then stores instead of adding,
 * and the output needs no zeroing beforehand and no bias pass after. A 1x1 kernel is the
 * pointwise case, which takes no columns. */
static bool convt_disjoint(const conv_plan *p) {
  if (!p->transpose || p->kk <= 1)
    return false;
  const nn_window *w = &p->w;
  for (int i = 0; i < NN_SP; i++)
    if (w->d[i] != 1 || w->k[i] != w->s[i] || w->pb[i] || w->pe[i] ||
        w->out[i] != w->in[i] * w->s[i])
      return false;
  return true;
}

/* Scatters the columns of output channels [m0, m1) into y; a channel's rows are contiguous,
 * so threads that split channels never write the same element. */
static void col2im_task(void *arg, size_t m0, size_t m1) {
  const col2im_job *j = arg;
  const nn_window *w = &j->p->w;
  size_t kk = j->p->kk;
  for (size_t m = m0; m < m1; m++) {
    float *ym = j->y + m * j->p->out_sp;
    const float bv = j->assign && j->bias ? j->bias[m] : 0.0f; /* stored with each value */
    for (size_t kidx = 0; kidx < kk; kidx++) {
      int64_t kz = (int64_t)(kidx / (size_t)(w->k[1] * w->k[2]));
      int64_t ky = (int64_t)(kidx / (size_t)w->k[2]) % w->k[1], kx = (int64_t)kidx % w->k[2];
      int64_t offz = kz * w->d[0] - w->pb[0], offy = ky * w->d[1] - w->pb[1];
      int64_t offx = kx * w->d[2] - w->pb[2];
      const float *src = j->col + (m * kk + kidx) * j->tc;
      size_t pos = j->col0, end = j->col0 + j->tc;
      int64_t plane = w->in[1] * w->in[2];
      int64_t iz = (int64_t)pos / plane, iy = ((int64_t)pos / w->in[2]) % w->in[1];
      int64_t ix = (int64_t)pos % w->in[2];
      while (pos < end) {
        int64_t len = w->in[2] - ix;
        if ((size_t)len > end - pos)
          len = (int64_t)(end - pos);
        int64_t oz = iz * w->s[0] + offz, oy = iy * w->s[1] + offy;
        if (oz >= 0 && oz < w->out[0] && oy >= 0 && oy < w->out[1]) {
          float *yrow = ym + (oz * w->out[1] + oy) * w->out[2];
          int64_t lo, hi;
          valid_range(ix + len, w->s[2], offx, w->out[2], &lo, &hi);
          if (lo < ix)
            lo = ix;
          const float *s = src - ix;
          if (j->assign) {
            for (int64_t i = lo; i < hi; i++)
              yrow[i * w->s[2] + offx] = s[i] + bv;
          } else {
            for (int64_t i = lo; i < hi; i++)
              yrow[i * w->s[2] + offx] += s[i];
          }
        }
        src += len;
        pos += (size_t)len;
        ix = 0;
        if (++iy == w->in[1]) {
          iy = 0;
          iz++;
        }
      }
    }
  }
}

/* Columns per tile so that rows * tc floats stay within the scratch budget. */
static size_t col_tile(size_t rows, size_t total) {
  size_t tc = COL_TILE_FLOATS / (rows ? rows : 1);
  if (tc >= total)
    return total;
  tc = tc / CPU_SGEMM_NR * CPU_SGEMM_NR;
  return tc < CPU_SGEMM_NR ? (total < CPU_SGEMM_NR ? total : CPU_SGEMM_NR) : tc;
}

/* ---- float32: convolution over a zero-padded, phase-split copy of the input -------------- */

/* Once the input is padded, each row of the implicit im2col matrix is a shifted view of it. With
 * stride 1, output (oy, ox) of channel c and tap (ky, kx) reads padded row oy + ky*dy, column
 * ox + kx*dx; numbering the output positions with the padded row pitch, q = oy * pitch + ox,
 * makes row (c, ky, kx) of that matrix the contiguous run xp + off(c, ky, kx) + q, so the GEMM
 * reads B in place (no panel is packed) and a panel's taps share a few input lines instead of
 * kc * 64 bytes of packed copy. A stride s splits the padded input into s*s phases (row
 * i*s + ry, column j*s + rx of the padded plane goes to phase (ry, rx) at (i, j)); tap (ky, kx)
 * then reads phase ((ky*dy) % s, (kx*dx) % s) at (oy + ky*dy / s, ox + kx*dx / s), again a
 * shift of q. Only the phases some tap reads are made. The columns with ox >= ow are computed and
 * dropped: pitch - ow of every pitch (2 of 58 for a 3x3 layer on 56x56). */
typedef struct implicit_job {
  const conv_plan *p;
  const float *x;  /* the group's input channels */
  float *xp;       /* the padded phases: s*s planes of hq rows of pitch floats per channel */
  const float *yp; /* the GEMM's output, mg rows of nq floats */
  float *y;        /* the group's output channels */
  size_t sy, sx;   /* strides */
  /* The phases some tap reads (a 1x1 stride-2 window reads only phase (0, 0)): ny row phases
   * ry_of[0 .. ny) and nx column phases rx_of[0 .. nx), stored in that order. */
  size_t ny, nx, ry_of[2], rx_of[2];
  size_t hq, pitch, plane; /* one phase plane */
  size_t nq;
  bool avx2;
  /* A fused residual (cpu_node.residual), the group's channels like y: added as the output is
   * copied out of yp, with the activation after it (the GEMM's epilogue then applies only the
   * bias). */
  const float *res;
  cpu_act act;
  cpu_isa isa;
} implicit_job;


/* One row of a column phase of stride 2: d[j] = s[2 j + s0] for j in [0, pitch), zero where
 * 2 j + s0 falls outside [0, iw). */
static void implicit_phase_row_s2(float *d, const float *s, size_t pitch, int64_t s0, int64_t iw,
                                  bool avx2) {
  size_t j = 0;
  for (; j < pitch && 2 * (int64_t)j + s0 < 0; j++)
    d[j] = 0.0f;
#ifdef CONV_HAVE_AVX2
  if (avx2) {
    /* Whole vectors while the sixteen floats they load lie inside the row. */
    int64_t room = iw - (2 * (int64_t)j + s0); /* floats from the first one read */
    size_t n = room >= 16 ? (size_t)((room - 16) / 16 + 1) * 8 : 0;
    n = n < pitch - j ? n / 8 * 8 : (pitch - j) / 8 * 8;
    conv_even_avx2(d + j, s + 2 * (int64_t)j + s0, n);
    j += n;
  }
#else
  (void)avx2;
#endif
  for (; j < pitch; j++) {
    int64_t ix = 2 * (int64_t)j + s0;
    d[j] = ix < iw ? s[ix] : 0.0f;
  }
}

/* Fills the phases of channels [c0, c1). */
static void implicit_pad_task(void *arg, size_t c0, size_t c1) {
  const implicit_job *j = arg;
  const nn_window *w = &j->p->w;
  int64_t ih = w->in[1], iw = w->in[2], top = w->pb[1], left = w->pb[2];
  for (size_t c = c0; c < c1; c++) {
    const float *s = j->x + c * j->p->in_sp;
    for (size_t py = 0; py < j->ny; py++)
      for (size_t px = 0; px < j->nx; px++) {
        size_t ry = j->ry_of[py], rx = j->rx_of[px];
        float *d = j->xp + ((c * j->ny + py) * j->nx + px) * j->plane;
        for (size_t i = 0; i < j->hq; i++) {
          float *dr = d + i * j->pitch;
          int64_t iy = (int64_t)(i * j->sy + ry) - top;
          if (iy < 0 || iy >= ih) {
            memset(dr, 0, j->pitch * sizeof *dr);
            continue;
          }
          const float *sr = s + iy * iw;
          if (j->sx == 1) {
            size_t l = (size_t)left < j->pitch ? (size_t)left : j->pitch;
            size_t n = (size_t)iw < j->pitch - l ? (size_t)iw : j->pitch - l;
            memset(dr, 0, l * sizeof *dr);
            memcpy(dr + l, sr, n * sizeof *dr);
            memset(dr + l + n, 0, (j->pitch - l - n) * sizeof *dr);
          } else {
            implicit_phase_row_s2(dr, sr, j->pitch, (int64_t)rx - left, iw, j->avx2);
          }
        }
      }
  }
}

static void implicit_unpad_task(void *arg, size_t m0, size_t m1) {
  const implicit_job *j = arg;
  size_t ow = (size_t)j->p->w.out[2], oh = (size_t)j->p->w.out[1];
  for (size_t m = m0; m < m1; m++)
    for (size_t oy = 0; oy < oh; oy++) {
      float *yr = j->y + m * j->p->out_sp + oy * ow;
      const float *src = j->yp + m * j->nq + oy * j->pitch;
      if (!j->res) {
        memcpy(yr, src, ow * sizeof *yr);
        continue;
      }
      /* Element by element, so that a residual in the output's own memory reads each value
       * before it is overwritten. */
      const float *rr = j->res + m * j->p->out_sp + oy * ow;
      for (size_t x = 0; x < ow; x++)
        yr[x] = src[x] + rr[x];
      cpu_act_apply_row(j->isa, &j->act, yr, ow);
    }
}

/* A network's first layer over an image (at most four channels), 3x3 or smaller, stride 2,
 * into 32 or more channels: its panels, packed straight from the image (two columns a vector
 * apart deinterleaved in AVX2, conv_even_avx2), cost less than a phase-split copy of the
 * image that the GEMM reads in place, which in a model comes from and goes to memory the rest
 * of the network has evicted. In the models, one thread: MobileNetV2's stem 0.64 -> 0.44 ms,
 * MNASNet's 0.67 -> 0.49, RegNetY's 0.56 -> 0.53, SqueezeNet's 0.96 -> 0.94; ShuffleNet's
 * (24 channels: fewer register tiles share each panel, 0.33 in place, 0.37 packed) and
 * ResNet's 7x7 (2.67 in place, 2.87 packed, its taps sharing more) stay with the copy. */
static bool conv_is_rgb_stem(const conv_plan *p) {
  return p->cg <= 4 && p->kk <= 9 && p->mg >= 32 && p->w.s[1] == 2 && p->w.s[2] == 2;
}

/* Whether the padded-input path applies: 1-D or 2-D, stride 1 or 2 (a larger stride would
 * copy s*s phases of which few taps read), not a stride-1 pointwise Conv (that one reads its
 * input as it lies). With stride 2 and many output channels a kxk layer packs its panels
 * instead: the packing is shared by mg/6 register tiles, and the phase split's padded width
 * adds columns (measured on ResNet-50's 3x3 stride-2 layers with 256 channels: 86 GFLOP/s
 * packed, 78 in place; with 128, in the model, 2.71 ms packed, 2.95 in place; with 32 or 64
 * channels, and 1x1 ones, in place is 8-15% faster). */
static bool conv_implicit_applies(const conv_plan *p) {
  const nn_window *w = &p->w;
  bool s1 = w->s[1] == 1 && w->s[2] == 1;
  return !p->transpose && w->in[0] == 1 && w->k[0] == 1 && w->pb[0] == 0 && w->pe[0] == 0 &&
         w->s[1] <= 2 && w->s[2] <= 2 && !(p->kk == 1 && s1) &&
         (s1 || p->kk == 1 || p->mg <= 64) && !conv_is_rgb_stem(p) && p->out_sp > 0;
}

/* One (image, group); 0, or -1 when memory ran out. */
static int conv_implicit(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *a,
                         const float *a_packed, const cpu_sgemm_epilogue *ep, const float *res,
                         float *y) {
  const nn_window *w = &p->w;
  size_t K = p->cg * p->kk;
  implicit_job ij = {.p = p,
                     .x = x,
                     .y = y,
                     .sy = (size_t)w->s[1],
                     .sx = (size_t)w->s[2],
                     .avx2 = ctx->isa == CPU_ISA_AVX2_FMA,
                     .res = res,
                     .act = ep->act,
                     .isa = ctx->isa};
  cpu_sgemm_epilogue ep_full = *ep, ep_bias = *ep;
  ep_bias.act.kind = CPU_ACT_NONE;
  ep_bias.addend = NULL;
  if (res)
    ep = &ep_bias;
  size_t hp = (size_t)(w->in[1] + w->pb[1] + w->pe[1]),
         wp = (size_t)(w->in[2] + w->pb[2] + w->pe[2]);
  ij.hq = (hp + ij.sy - 1) / ij.sy;
  ij.pitch = (wp + ij.sx - 1) / ij.sx;
  ij.plane = ij.hq * ij.pitch;
  ij.nq = ((size_t)w->out[1] * ij.pitch + CPU_SGEMM_NR - 1) / CPU_SGEMM_NR * CPU_SGEMM_NR;
  /* Phase index of each residue, SIZE_MAX where no tap reads it. */
  size_t py_of[2] = {SIZE_MAX, SIZE_MAX}, px_of[2] = {SIZE_MAX, SIZE_MAX};
  for (int64_t ky = 0; ky < w->k[1]; ky++) {
    size_t r = (size_t)(ky * w->d[1]) % ij.sy;
    if (py_of[r] == SIZE_MAX)
      py_of[r] = 0;
  }
  for (int64_t kx = 0; kx < w->k[2]; kx++) {
    size_t r = (size_t)(kx * w->d[2]) % ij.sx;
    if (px_of[r] == SIZE_MAX)
      px_of[r] = 0;
  }
  for (size_t r = 0; r < ij.sy; r++)
    if (py_of[r] != SIZE_MAX) {
      py_of[r] = ij.ny;
      ij.ry_of[ij.ny++] = r;
    }
  for (size_t r = 0; r < ij.sx; r++)
    if (px_of[r] != SIZE_MAX) {
      px_of[r] = ij.nx;
      ij.rx_of[ij.nx++] = r;
    }
  size_t planes = p->cg * ij.ny * ij.nx;
  ptrdiff_t *offs = malloc(K * sizeof *offs);
  size_t last = 0; /* the largest offset: every row read runs nq floats from its offset */
  if (offs)
    for (size_t c = 0, r = 0; c < p->cg; c++)
      for (int64_t ky = 0; ky < w->k[1]; ky++)
        for (int64_t kx = 0; kx < w->k[2]; kx++) {
          size_t ty = (size_t)(ky * w->d[1]), tx = (size_t)(kx * w->d[2]);
          size_t ph = (c * ij.ny + py_of[ty % ij.sy]) * ij.nx + px_of[tx % ij.sx];
          size_t o = ph * ij.plane + ty / ij.sy * ij.pitch + tx / ij.sx;
          offs[r++] = (ptrdiff_t)o;
          last = o > last ? o : last;
        }
  /* When whole register tiles cover the output rows (ow a multiple of 16, as the stem of a
   * 224x224 image makes: 112), the GEMM stores through a window straight into the output,
   * tiles stopping at each row's end, with the residual and activation in its epilogue: no yp,
   * no copy out (the 112x112 stem: 0.383 -> 0.357 ms). So does a depth of one KC block (a
   * stem's 27) whose rows take no more tiles than the padded ones, the narrower tile at each
   * row's end stored through masks (SqueezeNet's unpadded stem, 111 columns: 0.74 -> 0.69 ms).
   * Otherwise the tiles run across the padded rows (2 wasted columns of 58 instead of 8 of 64
   * at 56x56) into yp: over several KC blocks the narrow tiles cost more than the copy out
   * (3x3 over 256 channels at 14x14: 2.57 ms through yp, 2.77 through the window). */
  size_t oh = (size_t)w->out[1], ow = (size_t)w->out[2];
  bool window = ow % CPU_SGEMM_NR == 0 ||
                (cpu_sgemm_kc(K) >= K &&
                 oh * ((ow + CPU_SGEMM_NR - 1) / CPU_SGEMM_NR) <= ij.nq / CPU_SGEMM_NR);
  /* B is read NR columns at a time from a tile's first one, up to NR - 1 past nq. */
  size_t span = last + ij.nq + CPU_SGEMM_NR;
  size_t xp_floats = span > planes * ij.plane ? span : planes * ij.plane;
  /* The padded copy and the padded output in one block of the executable's scratch, kept from
   * run to run: allocated in each run, a block this big came as fresh pages from the system
   * (a page fault every 4 KiB). */
  size_t xp_room = (xp_floats + 15) / 16 * 16, yp_floats = window ? 0 : p->mg * ij.nq, bytes;
  bool fresh, big = __builtin_add_overflow(xp_room, yp_floats, &bytes) ||
                    __builtin_mul_overflow(bytes, sizeof(float), &bytes);
  float *xp = big ? NULL : cpu_scratch_take(ctx, bytes, &fresh);
  float *yp = window || !xp ? NULL : xp + xp_room;
  if (!offs || !xp) {
    free(offs);
    cpu_scratch_give(ctx, xp);
    return -1;
  }
  ij.xp = xp;
  ij.yp = yp;
  cpu_parallel_for(ctx, p->cg, nn_grain(ij.plane * ij.ny * ij.nx, 1 << 15), implicit_pad_task, &ij);
  memset(xp + planes * ij.plane, 0, (xp_floats - planes * ij.plane) * sizeof *xp);
  if (window) {
    /* A residual in the output's own memory is C's starting value (beta 1): an addend there
     * would be overwritten by the partial sums of the first KC block. */
    cpu_sgemm_epilogue ep_res = ep_full;
    ep_res.addend = res == y ? NULL : res;
    ep_res.ld_addend = p->out_sp;
    cpu_sgemm_args gw = {.m = p->mg,
                         .n = oh * ij.pitch,
                         .k = K,
                         .alpha = 1.0f,
                         .a = a,
                         .lda = K,
                         .a_packed = a_packed,
                         .b_rows = xp,
                         .b_offs = offs,
                         .c = y,
                         .ldc = p->out_sp,
                         .c_pitch = ij.pitch,
                         .c_width = ow,
                         .beta = res && res == y ? 1.0f : 0.0f,
                         .ep = &ep_res};
    int rc = cpu_sgemm_run(ctx, &gw);
    free(offs);
    cpu_scratch_give(ctx, xp);
    return rc;
  }
  cpu_sgemm_args ga = {.m = p->mg,
                       .n = ij.nq,
                       .k = K,
                       .alpha = 1.0f,
                       .a = a,
                       .lda = K,
                       .a_packed = a_packed,
                       .b_rows = xp,
                       .b_offs = offs,
                       .c = yp,
                       .ldc = ij.nq,
                       .ep = ep};
  int rc = cpu_sgemm_run(ctx, &ga);
  if (rc == 0)
    cpu_parallel_for(ctx, p->mg, nn_grain(p->out_sp, 1 << 15), implicit_unpad_task, &ij);
  free(offs);
  cpu_scratch_give(ctx, xp);
  return rc;
}

typedef struct conv_job {
  cpu_ctx *ctx;
  const conv_plan *p;
  const float *x, *w;
  const float *wp; /* Conv: the weights packed by conv_prepare (wp_group floats per group), or
                      NULL to pack them in each run */
  size_t wp_group;
  const float *b;     /* Conv: the bias, added by the GEMM's epilogue with the activation;
                         ConvTranspose where disjoint: by col2im as it stores, else NULL */
  const float *scale; /* a pointwise Conv's input channel scale, N x C floats, or NULL */
  float *y;
  /* A fused residual like y (cpu_node.residual), or NULL; res_in_place: it is y's own memory,
   * and the GEMMs accumulate onto it (beta = 1). */
  const float *res;
  bool res_in_place;
  bool inner_parallel; /* one item at a time, with the threads inside each GEMM */
  bool disjoint;       /* ConvTranspose where convt_disjoint: col2im stores instead of adding */
  atomic_int failed;
} conv_job;

static bool conv_is_pointwise(const conv_plan *p) {
  for (int i = 0; i < NN_SP; i++)
    if (p->w.k[i] != 1 || p->w.s[i] != 1 || p->w.pb[i] || p->w.pe[i])
      return false;
  return true;
}

/* Conv for items (image, group) in [begin, end). */
static void conv_items(void *arg, size_t begin, size_t end) {
  conv_job *j = arg;
  const conv_plan *p = j->p;
  cpu_ctx ctx = *j->ctx;
  if (!j->inner_parallel)
    ctx.pool = NULL;
  size_t K = p->cg * p->kk;
  bool pointwise = conv_is_pointwise(p), implicit = conv_implicit_applies(p);
  for (size_t it = begin; it < end; it++) {
    size_t n = it / p->G, g = it % p->G;
    conv_src src = {.p = p,
                    .x = j->x + (n * p->C + g * p->cg) * p->in_sp,
                    .scale = j->scale ? j->scale + n * p->C + g * p->cg : NULL};
    cpu_sgemm_epilogue ep = {.row_bias = j->b ? j->b + g * p->mg : NULL, .act = p->act};
    cpu_sgemm_args ga = {.m = p->mg,
                         .n = p->out_sp,
                         .k = K,
                         .alpha = 1.0f,
                         .a = j->w + g * p->mg * K,
                         .lda = K,
                         .a_packed = j->wp ? j->wp + g * j->wp_group : NULL,
                         .c = j->y + (n * p->M + g * p->mg) * p->out_sp,
                         .ldc = p->out_sp,
                         .ep = &ep};
    const float *res = j->res ? j->res + (n * p->M + g * p->mg) * p->out_sp : NULL;
    if (implicit) {
      if (conv_implicit(&ctx, p, src.x, ga.a, ga.a_packed, &ep, res, ga.c) != 0) {
        atomic_store(&j->failed, 1);
        return;
      }
      continue;
    }
    if (res && j->res_in_place) {
      ga.beta = 1.0f;
    } else if (res) {
      ep.addend = res;
      ep.ld_addend = p->out_sp;
    }
    /* A 1x1 stride-1 unpadded convolution reads the input as the matrix it already is, its
     * panels packed as they are used (scaled, under a fused squeeze-excitation). Read in place
     * instead, through a row offset per channel, as it was with up to 128 channels, the layers
     * ran 5-20% slower in the models, though as fast or faster alone: ResNet-50's 64 -> 256 over
     * 56x56 with its residual 1.45 -> 1.16 ms, 128 -> 512 over 28x28 1.24 -> 1.04,
     * MobileNetV2's 16 -> 96 over 112x112 0.62 -> 0.54, 32 -> 16 0.38 -> 0.33 (one thread,
     * per-node minima over alternating processes). A panel's rows, one line from each of
     * K channel planes, come from memory the rest of the model has long since left; packed,
     * the M/6 register tiles that share the panel read it from one contiguous block. */
    if (pointwise && src.scale) {
      ga.pack_b = conv_pack_b_scaled;
      ga.pack_b_arg = &src;
    } else if (pointwise) {
      ga.b = src.x;
      ga.ldb = p->in_sp;
    } else {
      ga.pack_b = conv_pack_b;
#ifdef CONV_HAVE_AVX2
      if (ctx.isa == CPU_ISA_AVX2_FMA)
        ga.pack_b = conv_pack_b_avx2;
#endif
      ga.pack_b_arg = &src;
    }
    if (cpu_sgemm_run(&ctx, &ga) != 0) {
      atomic_store(&j->failed, 1);
      return;
    }
  }
}

/* ConvTranspose for items (image, group) in [begin, end); y is already zero. */
static void convt_items(void *arg, size_t begin, size_t end) {
  conv_job *j = arg;
  const conv_plan *p = j->p;
  cpu_ctx ctx = *j->ctx;
  if (!j->inner_parallel)
    ctx.pool = NULL;
  size_t rows = p->mg * p->kk;
  bool pointwise = conv_is_pointwise(p) && p->in_sp == p->out_sp;
  size_t tc = col_tile(rows, p->in_sp);
  float *col = pointwise ? NULL : nn_alloc_aligned(rows * tc, sizeof(float));
  if (!pointwise && !col) {
    atomic_store(&j->failed, 1);
    return;
  }
  for (size_t it = begin; it < end; it++) {
    size_t n = it / p->G, g = it % p->G;
    const float *xg = j->x + (n * p->C + g * p->cg) * p->in_sp;
    const float *wg = j->w + g * p->cg * rows; /* cg x (mg*kk), used transposed */
    float *yg = j->y + (n * p->M + g * p->mg) * p->out_sp;
    if (pointwise) {
      cpu_sgemm(&ctx, true, false, p->mg, p->in_sp, p->cg, 1.0f, wg, rows, xg, p->in_sp, 0.0f, yg,
                p->out_sp);
      continue;
    }
    for (size_t col0 = 0; col0 < p->in_sp; col0 += tc) {
      size_t w_cols = p->in_sp - col0 < tc ? p->in_sp - col0 : tc;
      cpu_sgemm(&ctx, true, false, rows, w_cols, p->cg, 1.0f, wg, rows, xg + col0, p->in_sp, 0.0f,
                col, w_cols);
      col2im_job cj = {.p = p,
                       .col = col,
                       .y = yg,
                       .col0 = col0,
                       .tc = w_cols,
                       .assign = j->disjoint,
                       .bias = j->b ? j->b + g * p->mg : NULL};
      cpu_parallel_for(&ctx, p->mg, nn_grain(p->kk * w_cols, 1 << 15), col2im_task, &cj);
    }
  }
  free(col);
}

typedef struct bias_job {
  const conv_plan *p;
  const float *b;
  float *y;
} bias_job;

static void bias_task(void *arg, size_t begin, size_t end) {
  const bias_job *j = arg;
  for (size_t plane = begin; plane < end; plane++) {
    float bv = j->b[plane % j->p->M];
    float *yp = j->y + plane * j->p->out_sp;
    for (size_t i = 0; i < j->p->out_sp; i++)
      yp[i] += bv;
  }
}

/* The kernels of a Conv over the channel-blocked layout (nchwc.h), as conv_nchwc_kernel_of
 * chooses among them. */
typedef enum conv_nchwc_kernel {
  NCHWC_K_NONE = 0,
  NCHWC_K_PW,     /* cpu_nchwc_pointwise, strided over a subsampled copy */
  NCHWC_K_DW,     /* cpu_conv_depthwise_nchwc, with the interleaved path's packing */
  NCHWC_K_GROUP,  /* cpu_nchwc_group */
  NCHWC_K_WINO,   /* cpu_nchwc_wino */
  NCHWC_K_DIRECT, /* cpu_nchwc_direct */
  NCHWC_K_STEM,   /* cpu_nchwc_stem, from a plain input */
} conv_nchwc_kernel;

/* Conv's state from prepare(): the float32 weights of each group packed for the GEMM, or, for a
 * pointwise layer over a small plane, W^T packed for the transposed product instead. */
typedef struct conv_state {
  float *wp;
  size_t wp_group; /* floats per group */
  float *wt;       /* W^T as cpu_conv_pwt's B operand, or NULL */
  size_t wt_sp;    /* the output plane prepare() chose the transposed product for */
  float *wu;       /* the Winograd-transformed weights of cpu_conv_wino, or NULL */
  float *wdw;      /* a depthwise Conv's weights and bias by eight channels (cpu_conv_dw_pack) */
  float *wn;       /* a blocked Conv's weights, packed for its kernel nk (nchwc.h) */
  conv_nchwc_kernel nk;
  int wino_tile; /* the tile side wn was packed for when nk is NCHWC_K_WINO (2 or 4) */
} conv_state;

/* Whether the transposed pointwise product runs p: prepare() packed W^T for it (for the plane
 * it was planned for, or another where it pays too). */
static bool conv_pwt_ready(const conv_plan *p, const conv_state *st) {
  return st && st->wt && cpu_conv_pwt_applies(p) &&
         (p->out_sp == st->wt_sp || cpu_conv_pwt_wanted(p));
}

static int conv_f32_ex(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *w,
                       const conv_state *st, const float *b, const float *scale,
                       const float *res, float *y);

/* A 1x1 Conv with a stride (and no padding: ResNet's downsampling projections) reads one input
 * position in s*s. Those positions, copied into a compact plane of the output's shape, make it
 * a stride-1 pointwise Conv, which conv_f32_ex then runs over the copy as any other, B's
 * panels packed. The padded-input path reads B in place, which costs more with many channels
 * (ResNet-50's 256 -> 512 from 56x56 to 28x28, in the model: 3.04 -> 2.31 ms; ONNX Runtime
 * 1.86) and was as fast with few (RegNetY's 32 -> 48 from 112x112: 0.18 ms either way), so
 * layers of up to STRIDED_PW_MIN_C input channels stay with it. */
#define STRIDED_PW_MIN_C 128
static bool conv_is_strided_pointwise(const conv_plan *p) {
  if (p->transpose || p->kk != 1 || p->cg <= STRIDED_PW_MIN_C || conv_is_pointwise(p))
    return false;
  for (int i = 0; i < NN_SP; i++)
    if (p->w.pb[i] || p->w.pe[i])
      return false;
  return true;
}

typedef struct subsample_job {
  const conv_plan *p;
  const float *x;
  float *xs;
} subsample_job;

/* Channels [c0, c1) over all images: xs[c][i] = x[c][off(i)]. */
static void subsample_task(void *arg, size_t c0, size_t c1) {
  const subsample_job *j = arg;
  const nn_window *w = &j->p->w;
  for (size_t c = c0; c < c1; c++) {
    const float *src = j->x + c * j->p->in_sp;
    float *d = j->xs + c * j->p->out_sp;
    for (int64_t oz = 0; oz < w->out[0]; oz++)
      for (int64_t oy = 0; oy < w->out[1]; oy++) {
        const float *r = src + conv_pw_source(w, oz, oy, 0);
        for (int64_t ox = 0; ox < w->out[2]; ox++)
          *d++ = r[ox * w->s[2]];
      }
  }
}

static int conv_strided_pointwise(cpu_ctx *ctx, const conv_plan *p, const float *x,
                                  const float *w, const conv_state *st, const float *b,
                                  const float *scale, const float *res, float *y) {
  float *xs = nn_alloc_aligned(p->N * p->C * p->out_sp, sizeof(float));
  if (!xs)
    return cpu_fail(ctx, "out of memory for the subsampled input of a strided 1x1 Conv");
  subsample_job j = {.p = p, .x = x, .xs = xs};
  cpu_parallel_for(ctx, p->N * p->C, nn_grain(p->out_sp, 1 << 15), subsample_task, &j);
  conv_plan q = *p;
  for (int i = 0; i < NN_SP; i++) {
    q.w.in[i] = q.w.out[i];
    q.w.s[i] = 1;
  }
  q.in_sp = q.out_sp;
  int rc = conv_f32_ex(ctx, &q, xs, w, st, b, scale, res, y);
  free(xs);
  return rc;
}

/* p over x into y, with p's bias and activation and a fused residual res; scale (N x C floats,
 * or NULL) scales the input channels of a pointwise p (conv_is_pointwise) as B is packed. */
static int conv_f32_ex(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *w,
                       const conv_state *st, const float *b, const float *scale,
                       const float *res, float *y) {
  size_t planes = p->N * p->M;
  /* res, a fused residual (conv_run_fused), is y's own memory or apart from it: in y's, the
   * GEMMs accumulate onto it. */
  if (cpu_conv_depthwise_applies(p)) {
    cpu_conv_depthwise(ctx, p, x, w, b, st ? st->wdw : NULL, y);
    return 0;
  }
  if (st && st->wu && cpu_conv_wino_applies(p))
    return cpu_conv_wino(ctx, p, x, st->wu, b, res, y) == 0 ? 0 : cpu_fail(ctx, "out of memory");
  if (conv_pwt_ready(p, st))
    return cpu_conv_pwt(ctx, p, x, st->wt, b, scale, res, y) == 0 ? 0
                                                                 : cpu_fail(ctx, "out of memory");
  if (conv_is_strided_pointwise(p))
    return conv_strided_pointwise(ctx, p, x, w, st, b, scale, res, y);
  bool disjoint = convt_disjoint(p);
  if (p->transpose && !disjoint)
    memset(y, 0, planes * p->out_sp * sizeof *y);
  size_t items = p->N * p->G;
  double flops = 2.0 * (double)p->mg * (double)p->cg * (double)p->kk *
                 (double)(p->transpose ? p->in_sp : p->out_sp);
  size_t threads = cpu_thread_count(ctx);
  /* Conv adds its bias in the GEMM's epilogue; ConvTranspose as col2im stores where each
   * output takes one product, else in a pass after the scatter. */
  conv_job j = {.ctx = ctx,
                .p = p,
                .x = x,
                .w = w,
                .b = p->transpose && !disjoint ? NULL : b,
                .scale = scale,
                .y = y,
                .res = res,
                .res_in_place = res == y,
                .disjoint = disjoint};
  if (st && st->wp) {
    j.wp = st->wp;
    j.wp_group = st->wp_group;
  }
  atomic_init(&j.failed, 0);
  void (*fn)(void *, size_t, size_t) = p->transpose ? convt_items : conv_items;
  if (threads > 1 && items >= 2 && (items >= 2 * threads || flops < 4e6)) {
    cpu_parallel_for(ctx, items, nn_grain((size_t)flops / 2 + 1, 1 << 16), fn, &j);
  } else {
    j.inner_parallel = true;
    fn(&j, 0, items);
  }
  if (atomic_load(&j.failed))
    return cpu_fail(ctx, "out of memory for packing buffers");
  if (b && p->transpose && !disjoint) {
    bias_job bj = {.p = p, .b = b, .y = y};
    cpu_parallel_for(ctx, planes, nn_grain(p->out_sp, 1 << 15), bias_task, &bj);
  }
  return 0;
}

static int conv_f32(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *w,
                    const conv_state *st, const float *b, const float *res, float *y) {
  return conv_f32_ex(ctx, p, x, w, st, b, NULL, res, y);
}

/* ---- float64: direct loops ------------------------------------------------------------ */

typedef struct f64_job {
  const conv_plan *p;
  const double *x, *w, *b;
  double *y;
} f64_job;

static void conv_f64_task(void *arg, size_t begin, size_t end) {
  const f64_job *j = arg;
  const conv_plan *p = j->p;
  const nn_window *w = &p->w;
  for (size_t plane = begin; plane < end; plane++) {
    size_t n = plane / p->M, m = plane % p->M, g = m / p->mg;
    double *yp = j->y + plane * p->out_sp;
    for (int64_t oz = 0; oz < w->out[0]; oz++)
      for (int64_t oy = 0; oy < w->out[1]; oy++)
        for (int64_t ox = 0; ox < w->out[2]; ox++) {
          double s = j->b ? j->b[m] : 0.0;
          for (size_t c = 0; c < p->cg; c++) {
            const double *xc = j->x + (n * p->C + g * p->cg + c) * p->in_sp;
            const double *wc = j->w + (m * p->cg + c) * p->kk;
            for (int64_t kz = 0; kz < w->k[0]; kz++) {
              int64_t iz = oz * w->s[0] - w->pb[0] + kz * w->d[0];
              if (iz < 0 || iz >= w->in[0])
                continue;
              for (int64_t ky = 0; ky < w->k[1]; ky++) {
                int64_t iy = oy * w->s[1] - w->pb[1] + ky * w->d[1];
                if (iy < 0 || iy >= w->in[1])
                  continue;
                for (int64_t kx = 0; kx < w->k[2]; kx++) {
                  int64_t ix = ox * w->s[2] - w->pb[2] + kx * w->d[2];
                  if (ix < 0 || ix >= w->in[2])
                    continue;
                  s += xc[(iz * w->in[1] + iy) * w->in[2] + ix] *
                       wc[(kz * w->k[1] + ky) * w->k[2] + kx];
                }
              }
            }
          }
          yp[(oz * w->out[1] + oy) * w->out[2] + ox] = s;
        }
  }
}

/* Each task owns whole output planes, so the scatter never races. */
static void convt_f64_task(void *arg, size_t begin, size_t end) {
  const f64_job *j = arg;
  const conv_plan *p = j->p;
  const nn_window *w = &p->w;
  for (size_t plane = begin; plane < end; plane++) {
    size_t n = plane / p->M, m = plane % p->M, g = m / p->mg, ml = m % p->mg;
    double *yp = j->y + plane * p->out_sp;
    for (size_t i = 0; i < p->out_sp; i++)
      yp[i] = j->b ? j->b[m] : 0.0;
    for (size_t c = 0; c < p->cg; c++) {
      const double *xc = j->x + (n * p->C + g * p->cg + c) * p->in_sp;
      const double *wc = j->w + ((g * p->cg + c) * p->mg + ml) * p->kk;
      for (int64_t iz = 0; iz < w->in[0]; iz++)
        for (int64_t iy = 0; iy < w->in[1]; iy++)
          for (int64_t ix = 0; ix < w->in[2]; ix++) {
            double xv = xc[(iz * w->in[1] + iy) * w->in[2] + ix];
            for (int64_t kz = 0; kz < w->k[0]; kz++) {
              int64_t oz = iz * w->s[0] - w->pb[0] + kz * w->d[0];
              if (oz < 0 || oz >= w->out[0])
                continue;
              for (int64_t ky = 0; ky < w->k[1]; ky++) {
                int64_t oy = iy * w->s[1] - w->pb[1] + ky * w->d[1];
                if (oy < 0 || oy >= w->out[1])
                  continue;
                for (int64_t kx = 0; kx < w->k[2]; kx++) {
                  int64_t ox = ix * w->s[2] - w->pb[2] + kx * w->d[2];
                  if (ox < 0 || ox >= w->out[2])
                    continue;
                  yp[(oz * w->out[1] + oy) * w->out[2] + ox] +=
                      xv * wc[(kz * w->k[1] + ky) * w->k[2] + kx];
                }
              }
            }
          }
    }
  }
}

/* ---- Entry points --------------------------------------------------------------------- */

bool cpu_conv_scale_ok(const cpu_node *n) {
  char msg[256];
  conv_plan p;
  if (strcmp(n->op_type, "Conv") != 0 ||
      conv_setup(n, n->in, n->out, false, &p, msg, sizeof msg) != TSR_PLUGIN_REASON_NONE)
    return false;
  return n->in[0].dtype == TSR_DTYPE_FLOAT32 && n->in[1].is_const && n->in[1].data && p.G == 1 &&
         !cpu_conv_depthwise_applies(&p) && p.mg > 0 && p.C > 0;
}

bool cpu_conv_residual_ok(const cpu_node *n) {
  char msg[256];
  conv_plan p;
  if (strcmp(n->op_type, "Conv") != 0 ||
      conv_setup(n, n->in, n->out, false, &p, msg, sizeof msg) != TSR_PLUGIN_REASON_NONE)
    return false;
  /* The activation a Conv already has comes before the Add, so only a Conv without one. */
  return n->in[0].dtype == TSR_DTYPE_FLOAT32 && p.act.kind == CPU_ACT_NONE &&
         !cpu_conv_depthwise_applies(&p) && p.mg > 0;
}

/* A Conv whose input channels are scaled per image first (cpu_node.in_scale: the Mul of a
 * squeeze-and-excitation block, scale[n * C + c]). A pointwise one mostly scales its input as
 * it packs it (conv_run_fused says where). Otherwise, where the plane is larger than the
 * weights per input channel (M x kh x kw), the scale goes into the weights instead,
 * W[m][c][..] * scale[c], packed afresh for each image, so that the scaled input is never
 * written (conv_f32_scaled); elsewhere the input is scaled into a copy that the convolution
 * with the weights packed by prepare() then reads (conv_scale_input): EfficientNet-B0's 1152
 * -> 192 projections on 7x7 took 0.49 ms each through the weights, 0.30 through the input
 * (now 0.23, scaled as X^T is packed). */
typedef struct scale_job {
  const float *x, *scale;
  float *xs;
  size_t sp;
} scale_job;

static void scale_task(void *arg, size_t begin, size_t end) {
  const scale_job *j = arg;
  for (size_t pl = begin; pl < end; pl++) {
    const float *xp = j->x + pl * j->sp;
    float *d = j->xs + pl * j->sp, s = j->scale[pl];
    for (size_t i = 0; i < j->sp; i++)
      d[i] = xp[i] * s;
  }
}

static float *conv_scale_input(cpu_ctx *ctx, const conv_plan *p, const float *x,
                               const float *scale) {
  float *xs = nn_alloc_aligned(p->N * p->C * p->in_sp, sizeof(float));
  if (xs) {
    scale_job j = {.x = x, .scale = scale, .xs = xs, .sp = p->in_sp};
    cpu_parallel_for(ctx, p->N * p->C, nn_grain(p->in_sp, 1 << 15), scale_task, &j);
  }
  return xs;
}

static int conv_f32_scaled(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *w,
                           const float *b, const float *scale, const float *res, float *y) {
  size_t K = p->cg * p->kk, per = cpu_sgemm_packed_a_floats(p->mg, K);
  float *ws = malloc(p->mg * K * sizeof *ws);
  float *wp = nn_alloc_aligned(per, sizeof(float));
  int rc = 0;
  if (!ws || !wp) {
    rc = cpu_fail(ctx, "out of memory for scaled weights");
  } else {
    conv_plan one = *p;
    one.N = 1;
    conv_state st = {.wp = wp, .wp_group = per};
    for (size_t n = 0; n < p->N && rc == 0; n++) {
      const float *sc = scale + n * p->C;
      for (size_t m = 0; m < p->mg; m++)
        for (size_t c = 0; c < p->C; c++)
          for (size_t t = 0; t < p->kk; t++)
            ws[(m * p->C + c) * p->kk + t] = w[(m * p->C + c) * p->kk + t] * sc[c];
      cpu_sgemm_pack_a(false, ws, K, p->mg, K, wp);
      rc = conv_f32(ctx, &one, x + n * p->C * p->in_sp, ws, &st, b,
                    res ? res + n * p->M * p->out_sp : NULL, y + n * p->M * p->out_sp);
    }
  }
  free(ws), free(wp);
  return rc;
}

/* Whether conv_f32 reads p's input only through a copy that it finishes before it writes any
 * output (the zero-padded input of the implicit GEMM and of Winograd's transform, the packed
 * X^T of the transposed 1x1 product, a strided 1x1 layer's subsampled input), so that the
 * output may lie on the input. One image and one group only: with more, the first one's output
 * is written before the next one's input is copied. */
static bool conv_reads_copy(const conv_plan *p, const conv_state *st) {
  if (p->N != 1 || p->G != 1 || p->transpose || cpu_conv_depthwise_applies(p))
    return false;
  if (st && st->wu && cpu_conv_wino_applies(p))
    return true;
  if (conv_pwt_ready(p, st) || conv_is_strided_pointwise(p))
    return true;
  return conv_implicit_applies(p);
}

/* What fuse_nodes gave a Conv, checked again at run time (cpu_conv_residual_ok and
 * cpu_conv_scale_ok said yes at compile time): the residual (or NULL), the input scale (or
 * NULL), and a Relu taken in, as p's activation. 0, or -1 after cpu_fail(). */
static int conv_fused_operands(cpu_ctx *ctx, const cpu_node *n, const cpu_tensor *in,
                               const cpu_tensor *out, conv_plan *p, const float **res,
                               const float **scale) {
  *res = *scale = NULL;
  if (in[0].dtype != TSR_DTYPE_FLOAT32)
    return cpu_fail(ctx, "fused Conv over %s", cpu_dtype_name(in[0].dtype));
  if (n->residual) {
    if (n->n_in < 4 || !in[3].present || in[3].dtype != TSR_DTYPE_FLOAT32 ||
        in[3].count != out[0].count)
      return cpu_fail(ctx, "fused residual of %zu values for an output of %zu", in[3].count,
                      out[0].count);
    *res = in[3].data;
  }
  if (n->fused_act == CPU_FUSED_RELU)
    p->act.kind = CPU_ACT_RELU;
  else if (n->fused_act != CPU_FUSED_NONE)
    return cpu_fail(ctx, "fused activation %d not implemented for Conv", (int)n->fused_act);
  if (n->in_scale) {
    if (n->n_in < 5 || !in[4].present || in[4].dtype != TSR_DTYPE_FLOAT32 ||
        in[4].count != p->N * p->C || p->G != 1 || !in[1].data)
      return cpu_fail(ctx, "fused input scale of %zu values for %zu x %zu channels", in[4].count,
                      p->N, p->C);
    *scale = in[4].data;
  }
  return 0;
}

/* Conv with what the plugin took into it (fuse_nodes in plugin.c): a scale of its input
 * channels before it, a residual Add and perhaps a Relu after it. The fused node runs where
 * the plan expected the last node's output, after the Conv's input (and the scale) had died in
 * the plan's eyes: the output may lie on them, and is then computed apart and copied. */
static int conv_run_fused(cpu_ctx *ctx, const cpu_node *n, const conv_state *st,
                          const cpu_tensor *in, cpu_tensor *out, conv_plan *p) {
  const float *b = p->has_bias ? in[2].data : NULL, *res, *scale_in;
  if (conv_fused_operands(ctx, n, in, out, p, &res, &scale_in) != 0)
    return -1;
  float *scale = NULL;
  if (scale_in) {
    if (!(scale = malloc(in[4].count * sizeof *scale)))
      return cpu_fail(ctx, "out of memory");
    memcpy(scale, in[4].data, in[4].count * sizeof *scale);
  }
  /* The transposed pointwise product scales its input as it packs X^T. The plain one scales
   * B's panels as it packs them where the plane is small next to the weights (a multiply on
   * each of C x H x W inputs against a pass over M x C weights that costs some six times as
   * much an element: EfficientNet-B0's 480 -> 80 on 14x14 0.206 -> 0.177 ms, while its
   * 144 -> 24 on 56x56 took 0.259 through the weights, 0.343 through the panels). Any other
   * Conv scales the input into a copy first where that costs less than scaling the weights. */
  bool pwt = conv_pwt_ready(p, st), pw = conv_is_pointwise(p) && 6 * p->M > p->in_sp;
  float *xs = NULL;
  if (scale && !pwt && !pw && st && p->M * p->kk > p->in_sp) {
    if (!(xs = conv_scale_input(ctx, p, in[0].data, scale))) {
      free(scale);
      return cpu_fail(ctx, "out of memory for the scaled input of a fused Conv");
    }
  }
  /* The output on the input (unless the convolution reads a copy of it, scaled or padded):
   * computed apart (ResNet-50's 1x1 stride-2 projection over 56x56, whose output the plan puts
   * on its input: 3.7 ms with the copy out, 3.1 without). A residual on the output but not
   * exactly in its place (the kernels accumulate onto one that is): copied first. */
  const char *x0 = in[0].data, *y0 = out[0].data, *r0 = (const char *)res;
  size_t bytes = out[0].nbytes;
  float *y = out[0].data, *tmp = NULL, *res_copy = NULL;
  bool y_on_x = !xs && !conv_reads_copy(p, st) && nn_bytes_overlap(y0, bytes, x0, in[0].nbytes);
  bool res_apart = res && r0 != y0 && nn_bytes_overlap(r0, bytes, y0, bytes);
  if ((y_on_x && !(tmp = malloc(bytes))) || (res_apart && !(res_copy = malloc(bytes)))) {
    free(tmp), free(scale), free(xs);
    return cpu_fail(ctx, "out of memory for the output of a fused Conv");
  }
  if (tmp)
    y = tmp;
  if (res_copy)
    res = memcpy(res_copy, res, bytes);
  int rc;
  if (xs)
    rc = conv_f32(ctx, p, xs, in[1].data, st, b, res, y);
  else if (scale && !pwt && !pw)
    rc = conv_f32_scaled(ctx, p, in[0].data, in[1].data, b, scale, res, y);
  else /* no scale, or one that conv_f32_ex applies as it packs */
    rc = conv_f32_ex(ctx, p, in[0].data, in[1].data, st, b, scale, res, y);
  if (rc == 0 && tmp)
    memcpy(out[0].data, tmp, bytes);
  free(tmp), free(res_copy), free(scale), free(xs);
  return rc;
}

/* ---- The channel-blocked layout (nchwc.h) ---------------------------------------------- */

#ifdef CPU_NCHWC_HAVE_AVX2
/* Whether the blocked 1x1 kernel runs p (a blocked Conv that is not is a depthwise, grouped or
 * stem one): 2-D, unpadded, any stride (a strided layer, ResNet's and RegNet's downsampling,
 * reads a subsampled copy of its input). */
static bool conv_nchwc_pointwise(const conv_plan *p) {
  const nn_window *w = &p->w;
  if (p->transpose || p->G != 1 || p->C % CPU_NCHWC != 0 || p->M % CPU_NCHWC != 0 || w->nsp != 2 ||
      w->in[0] != 1 || w->s[0] != 1)
    return false;
  for (int i = 0; i < NN_SP; i++)
    if (w->k[i] != 1 || w->pb[i] || w->pe[i])
      return false;
  return true;
}

/* Whether a blocked 1x1 p reads every other (or every s-th) pixel: its input is subsampled
 * first. */
static bool conv_nchwc_strided(const conv_plan *p) { return p->w.s[1] != 1 || p->w.s[2] != 1; }

/* The pixels of blocked x that a strided 1x1 p reads, blocked, into xs ([N, C/8, OH, OW, 8]),
 * rows of a block at a time over ctx's threads (serial, ResNet-50's 256-channel projection
 * over 56x56 spent a fifth of its time in this copy on two threads); the job is the NCHW
 * subsample's. */
static void conv_nchwc_subsample_rows(void *arg, size_t begin, size_t end) {
  const subsample_job *j = arg;
  const nn_window *w = &j->p->w;
  size_t ih = (size_t)w->in[1], iw = (size_t)w->in[2], oh = (size_t)w->out[1];
  size_t ow = (size_t)w->out[2], sy = (size_t)w->s[1], sx = (size_t)w->s[2];
  for (size_t r = begin; r < end; r++) {
    size_t b = r / oh, oy = r % oh;
    const float *src = j->x + ((b * ih + oy * sy) * iw) * 8;
    float *dst = j->xs + r * ow * 8;
    for (size_t ox = 0; ox < ow; ox++)
      memcpy(dst + ox * 8, src + ox * sx * 8, 8 * sizeof *dst);
  }
}

static void conv_nchwc_subsample(cpu_ctx *ctx, const conv_plan *p, const float *x, float *xs) {
  subsample_job j = {.p = p, .x = x, .xs = xs};
  size_t rows = p->N * p->C / CPU_NCHWC * (size_t)p->w.out[1];
  cpu_parallel_for(ctx, rows, nn_grain((size_t)p->w.out[2] * 8, 1 << 14), conv_nchwc_subsample_rows,
                   &j);
}
#endif

#ifdef CPU_NCHWC_HAVE_AVX2
/* The blocked kernel for p, the first that takes it; conv_nchwc_role, prepare() and the run
 * all ask here, so that they agree. */
static conv_nchwc_kernel conv_nchwc_kernel_of(const conv_plan *p) {
  if (conv_nchwc_pointwise(p))
    return NCHWC_K_PW;
  if (cpu_conv_dw_nchwc_applies(p))
    return NCHWC_K_DW;
  if (cpu_nchwc_group_applies(p))
    return NCHWC_K_GROUP;
  /* 3x3 by Winograd where the NCHW path would take it, else directly. */
  if (cpu_nchwc_wino_applies(p) && cpu_conv_wino_wanted(p))
    return NCHWC_K_WINO;
  if (cpu_nchwc_direct_applies(p))
    return NCHWC_K_DIRECT;
  /* An image's stem (the kernel takes up to 16 channels; measured on images, where it beats
   * the implicit GEMM, not against Winograd on a 3x3 layer of 16 channels). */
  if (p->C <= 4 && p->kk > 1 && cpu_nchwc_stem_applies(p))
    return NCHWC_K_STEM;
  return NCHWC_K_NONE;
}
#endif

/* Conv's role in the blocked layout (cpu_op.nchwc_role), with what fusion gave it: the 1x1
 * kernel takes a fused residual, input scale and Relu, the others none. */
static cpu_nchwc_role conv_nchwc_role(const cpu_node *n, cpu_isa isa) {
#ifdef CPU_NCHWC_HAVE_AVX2
  char msg[256];
  conv_plan p;
  if (isa != CPU_ISA_AVX2_FMA || n->n_in < 2 || n->in[0].dtype != TSR_DTYPE_FLOAT32 ||
      n->in[0].rank != 4 || !n->in[1].is_const || !n->in[1].data ||
      conv_setup(n, n->in, n->out, false, &p, msg, sizeof msg) || p.out_sp == 0 || p.N == 0)
    return CPU_NCHWC_NONE;
  if (p.has_bias && (!n->in[2].is_const || !n->in[2].data))
    return CPU_NCHWC_NONE;
  conv_nchwc_kernel k = conv_nchwc_kernel_of(&p);
  bool fused = n->residual || n->in_scale || n->fused_act != CPU_FUSED_NONE;
  if (fused &&
      (k != NCHWC_K_PW || (n->fused_act != CPU_FUSED_NONE && n->fused_act != CPU_FUSED_RELU)))
    return CPU_NCHWC_NONE;
  /* Any blocked kernel may open a chain from a plain input, converting it (conv_run_nchwc):
   * the NCHW paths pack or transpose their input too. Winograd even alone: over 56x56, 96 -> 24
   * took 0.84 ms by the NCHW path's 2x2 tiles and 0.40 blocked with 4x4 ones
   * (bench/conv_layers.py), against some 0.1 for the conversions. A fused residual has to
   * lie blocked already, so such a node only continues a chain. */
  if (k == NCHWC_K_NONE)
    return CPU_NCHWC_NONE;
  if (k == NCHWC_K_STEM)
    return CPU_NCHWC_STEM;
  if (fused)
    return CPU_NCHWC_BLOCKED;
  return k == NCHWC_K_WINO ? CPU_NCHWC_OPENS_ALONE : CPU_NCHWC_OPENS;
#else
  (void)n, (void)isa;
  return CPU_NCHWC_NONE;
#endif
}

#ifdef CPU_NCHWC_HAVE_AVX2
/* The blocked kernel a run takes: the one prepare() packed for (a depthwise layer's packing is
 * the interleaved path's, and may have been left to the run). */
static conv_nchwc_kernel conv_nchwc_kernel_taken(const conv_plan *p, const conv_state *st) {
  return cpu_conv_depthwise_applies(p) ? NCHWC_K_DW : st ? st->nk : NCHWC_K_NONE;
}

/* A Conv over blocked tensors, with what it took in. Like conv_run_fused, a fused node may find
 * its output on its input or near its residual in the plan: it then computes apart. */
static int conv_run_nchwc(cpu_ctx *ctx, const cpu_node *n, const conv_state *st,
                          const cpu_tensor *in, cpu_tensor *out, conv_plan *p) {
  const float *b = p->has_bias ? in[2].data : NULL;
  if (in[0].dtype != TSR_DTYPE_FLOAT32)
    return cpu_fail(ctx, "blocked Conv over %s", cpu_dtype_name(in[0].dtype));
  conv_nchwc_kernel k = conv_nchwc_kernel_taken(p, st);
  if (k == NCHWC_K_NONE || (k != NCHWC_K_DW && !st->wn))
    return cpu_fail(ctx, "blocked Conv without packed weights");
  bool pw = k == NCHWC_K_PW, sub = pw && conv_nchwc_strided(p);
  const float *res = NULL, *scale = NULL;
  if (pw && conv_fused_operands(ctx, n, in, out, p, &res, &scale) != 0)
    return -1;
  /* The blocked result goes apart when the output is wanted plain (converted after), or when
   * the plan put a fused node's output on its input or scale, into the executable's scratch
   * block (kept from run to run: an output-sized malloc per run came as fresh pages); a
   * residual on the output but not exactly in its place is copied first (the kernel
   * accumulates onto one that is). */
  const char *x0 = in[0].data, *y0 = out[0].data, *r0 = (const char *)res;
  const char *s0 = (const char *)scale;
  size_t bytes = out[0].nbytes;
  /* A node that opens a chain from a plain input reads a blocked copy of it, made into the
   * scratch block first (after the output when that is apart), and so never its own output. */
  bool in_plain = n->nchwc_in_plain;
  size_t in_bytes = in_plain ? (in[0].nbytes + 63) / 64 * 64 : 0;
  bool y_on_x = !in_plain && k != NCHWC_K_DW && k != NCHWC_K_STEM &&
                nn_bytes_overlap(y0, bytes, x0, in[0].nbytes);
  bool y_on_s = scale && nn_bytes_overlap(y0, bytes, s0, in[4].nbytes);
  bool res_apart = res && r0 != y0 && nn_bytes_overlap(r0, bytes, y0, bytes);
  float *y = out[0].data, *tmp = NULL, *res_copy = NULL, *own = NULL;
  bool fresh;
  /* A strided layer's subsampled input goes into the same scratch block, after the output
   * (when that is apart too). */
  bool apart = n->nchwc_out_plain || y_on_x || y_on_s;
  size_t sub_bytes = sub ? p->N * p->C * p->out_sp * sizeof(float) : 0;
  size_t off = apart ? (bytes + 63) / 64 * 64 : 0;
  char *blk = NULL;
  if (((apart || sub || in_plain) &&
       !(blk = cpu_scratch_take(ctx, off + in_bytes + sub_bytes, &fresh))) ||
      (res_apart && !(res_copy = malloc(bytes)))) {
    cpu_scratch_give(ctx, blk);
    return cpu_fail(ctx, "out of memory for a blocked Conv's scratch (%zu bytes)",
                    off + in_bytes + sub_bytes);
  }
  tmp = apart ? (float *)blk : NULL;
  const float *xin = in[0].data; /* the blocked input */
  if (in_plain) {
    float *xc = (float *)(blk + off);
    cpu_nchw_to_nchwc(ctx, xin, p->N * p->C / CPU_NCHWC, p->in_sp, xc);
    xin = xc;
  }
  const float *x = xin;
  if (sub) {
    float *xs = (float *)(blk + off + in_bytes);
    conv_nchwc_subsample(ctx, p, x, xs);
    x = xs;
  }
  if (tmp) {
    y = tmp;
    if (res == (const float *)y0) /* the residual in the output's place: accumulated onto */
      res = memcpy(tmp, res, bytes);
  }
  if (res_copy)
    res = memcpy(res_copy, res, bytes);
  int rc = 0;
  switch (k) {
  case NCHWC_K_DW: {
    const float *packed = st && st->wdw ? st->wdw : (own = cpu_conv_dw_pack(p, in[1].data, b));
    if (packed)
      rc = cpu_conv_depthwise_nchwc(ctx, p, xin, packed, y);
    else
      rc = cpu_fail(ctx, "out of memory packing depthwise weights");
    break;
  }
  case NCHWC_K_PW:
    rc =
        cpu_nchwc_pointwise(ctx, p->N, p->C, p->M, p->out_sp, x, st->wn, b, scale, res, &p->act, y);
    break;
  case NCHWC_K_GROUP: rc = cpu_nchwc_group(ctx, p, xin, st->wn, b, y); break;
  case NCHWC_K_WINO: rc = cpu_nchwc_wino(ctx, p, st->wino_tile, xin, st->wn, b, y); break;
  case NCHWC_K_DIRECT: rc = cpu_nchwc_direct(ctx, p, xin, st->wn, b, y); break;
  default: rc = cpu_nchwc_stem(ctx, p, in[0].data, st->wn, b, y); break;
  }
  if (rc == 0 && tmp) {
    if (n->nchwc_out_plain)
      cpu_nchwc_to_nchw(ctx, tmp, p->N * p->M / CPU_NCHWC, p->out_sp, out[0].data);
    else
      memcpy(out[0].data, tmp, bytes);
  }
  cpu_scratch_give(ctx, blk);
  free(res_copy), free(own);
  return rc;
}
#endif

static int conv_run_common(cpu_ctx *ctx, const cpu_node *n, const conv_state *st,
                           const cpu_tensor *in, cpu_tensor *out, bool transpose) {
  char msg[256];
  conv_plan p;
  if (conv_setup(n, in, out, transpose, &p, msg, sizeof msg))
    return cpu_fail(ctx, "%s", msg);
  if (out[0].count == 0)
    return 0;
  const cpu_tensor *b = p.has_bias ? &in[2] : NULL;
#ifdef CPU_NCHWC_HAVE_AVX2
  if (n->nchwc)
    return conv_run_nchwc(ctx, n, st, in, out, &p);
#endif
  if (n->residual || n->in_scale || n->fused_act != CPU_FUSED_NONE)
    return conv_run_fused(ctx, n, st, in, out, &p);
  switch (in[0].dtype) {
  case TSR_DTYPE_FLOAT32:
    return conv_f32(ctx, &p, in[0].data, in[1].data, st, b ? b->data : NULL, NULL, out[0].data);
  case TSR_DTYPE_FLOAT64: {
    f64_job j = {
        .p = &p, .x = in[0].data, .w = in[1].data, .b = b ? b->data : NULL, .y = out[0].data};
    size_t per = (transpose ? p.in_sp : p.out_sp) * p.cg * p.kk;
    cpu_parallel_for(ctx, p.N * p.M, nn_grain(per, 1 << 15),
                     transpose ? convt_f64_task : conv_f64_task, &j);
    return 0;
  }
  default: { /* float16 */
    float *x = nn_f32_copy(&in[0]), *w = nn_f32_copy(&in[1]), *bf = b ? nn_f32_copy(b) : NULL;
    float *y = malloc(out[0].count * sizeof *y);
    int rc = -1;
    if (x && w && y && (!b || bf)) {
      rc = conv_f32(ctx, &p, x, w, NULL, bf, NULL, y);
      if (rc == 0)
        nn_f32_store(&out[0], y);
    } else {
      rc = cpu_fail(ctx, "out of memory");
    }
    free(x), free(w), free(bf), free(y);
    return rc;
  }
  }
}

/* Packs constant float32 weights once for the GEMM paths (every Conv but the depthwise ones),
 * one packed A per group, or for a pointwise layer that cpu_conv_pwt will run, W^T as a packed B
 * instead. The graph keeps its own copy of the weights (the plugin ABI hands constant data to
 * compile() read-only and keeps it), so a packed layer costs its weights' size once more; the
 * packed copy pads the output channels of a group to a multiple of six (sixteen for W^T). */
static int conv_prepare(const cpu_node *n, void **out_state, char *msg, size_t size) {
  *out_state = NULL;
  conv_plan p;
  if (conv_setup(n, n->in, n->out, false, &p, msg, size) != TSR_PLUGIN_REASON_NONE)
    return 0; /* check() has refused it already; run() reports the same */
  const cpu_tensor *w = &n->in[1];
  if (w->dtype != TSR_DTYPE_FLOAT32 || !w->is_const || !w->data || p.mg == 0)
    return 0;
#ifdef CPU_NCHWC_HAVE_AVX2
  conv_nchwc_kernel k = n->nchwc ? conv_nchwc_kernel_of(&p) : NCHWC_K_NONE;
  if (n->nchwc && k != NCHWC_K_DW) {
    /* The blocked kernel's weights (plugin.c chose the layout, having asked conv_nchwc_role);
     * a blocked depthwise layer packs as the interleaved path does, below. */
    size_t nf = 0;
    int tile = k == NCHWC_K_WINO ? cpu_nchwc_wino_tile(&p) : 0;
    switch (k) {
    case NCHWC_K_PW: nf = cpu_nchwc_pw_packed_floats(p.C, p.M); break;
    case NCHWC_K_GROUP: nf = cpu_nchwc_group_packed_floats(&p); break;
    case NCHWC_K_WINO: nf = cpu_nchwc_wino_packed_floats(&p, tile); break;
    case NCHWC_K_DIRECT: nf = cpu_nchwc_direct_packed_floats(&p); break;
    case NCHWC_K_STEM: nf = cpu_nchwc_stem_packed_floats(&p); break;
    default: snprintf(msg, size, "no blocked kernel takes this Conv"); return -1;
    }
    conv_state *st = calloc(1, sizeof *st);
    if (!st || !(st->wn = nn_alloc_aligned(nf, sizeof(float)))) {
      free(st);
      snprintf(msg, size, "out of memory packing the weights (%zu floats)", nf);
      return -1;
    }
    switch (k) {
    case NCHWC_K_PW: cpu_nchwc_pw_pack(w->data, p.C, p.M, st->wn); break;
    case NCHWC_K_GROUP: cpu_nchwc_group_pack(&p, w->data, st->wn); break;
    case NCHWC_K_WINO: cpu_nchwc_wino_pack(&p, tile, w->data, st->wn); break;
    case NCHWC_K_DIRECT: cpu_nchwc_direct_pack(&p, w->data, st->wn); break;
    default: cpu_nchwc_stem_pack(&p, w->data, st->wn); break;
    }
    st->nk = k;
    st->wino_tile = tile;
    *out_state = st;
    return 0;
  }
#endif
  if (cpu_conv_depthwise_applies(&p)) {
    /* The eight-channel path's taps and bias, when both are constants (cpu_conv_depthwise
     * packs them in the run otherwise). */
    const cpu_tensor *b = p.has_bias ? &n->in[2] : NULL;
    if (b && (b->dtype != TSR_DTYPE_FLOAT32 || !b->is_const || !b->data))
      return 0;
    float *wdw = cpu_conv_dw_pack(&p, w->data, b ? b->data : NULL);
    if (!wdw)
      return 0; /* not that path, or no memory: the run packs them */
    conv_state *st = calloc(1, sizeof *st);
    if (!st) {
      free(wdw);
      snprintf(msg, size, "out of memory packing depthwise weights");
      return -1;
    }
    st->wdw = wdw;
    *out_state = st;
    return 0;
  }
  size_t K = p.cg * p.kk, per = cpu_sgemm_packed_a_floats(p.mg, K);
  const float *wd = w->data;
  /* TESSERA_CPU_PWT=0 or 1 turns the transposed product off, or on wherever it applies, for
   * tests and measurements; by default its cost decides. */
  const char *force = getenv("TESSERA_CPU_PWT");
  if (cpu_conv_pwt_applies(&p) && (force && *force ? *force == '1' : cpu_conv_pwt_wanted(&p))) {
    /* Only W^T: should a run see another plane, the plain path packs W as it goes. */
    size_t nt = cpu_sgemm_packed_b_floats(K, p.M);
    conv_state *st = calloc(1, sizeof *st);
    if (!st || !(st->wt = nn_alloc_aligned(nt, sizeof(float)))) {
      free(st);
      snprintf(msg, size, "out of memory packing the weights (%zu floats)", nt);
      return -1;
    }
    st->wt_sp = p.out_sp;
    cpu_sgemm_pack_b(true, wd, K, K, p.M, st->wt);
    *out_state = st;
    return 0;
  }
  if (cpu_conv_wino_applies(&p) && cpu_conv_wino_wanted(&p)) {
    size_t nu = cpu_conv_wino_packed_floats(&p);
    conv_state *st = calloc(1, sizeof *st);
    if (!st || !(st->wu = nn_alloc_aligned(nu, sizeof(float))) ||
        cpu_conv_wino_pack(&p, wd, st->wu) != 0) {
      if (st)
        free(st->wu);
      free(st);
      snprintf(msg, size, "out of memory transforming the weights (%zu floats)", nu);
      return -1;
    }
    *out_state = st;
    return 0;
  }
  conv_state *st = calloc(1, sizeof *st);
  if (!st || !(st->wp = nn_alloc_aligned(per * p.G, sizeof(float)))) {
    free(st);
    snprintf(msg, size, "out of memory packing the weights (%zu floats)", per * p.G);
    return -1;
  }
  st->wp_group = per;
  for (size_t g = 0; g < p.G; g++)
    cpu_sgemm_pack_a(false, wd + g * p.mg * K, K, p.mg, K, st->wp + g * per);
  *out_state = st;
  return 0;
}

static void conv_release(void *state) {
  conv_state *st = state;
  if (st)
    free(st->wp), free(st->wt), free(st->wu), free(st->wdw), free(st->wn);
  free(st);
}

static int conv_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                    cpu_tensor *out) {
  return conv_run_common(ctx, n, state, in, out, false);
}

static int convt_run(cpu_ctx *ctx, const cpu_node *n, void *state, const cpu_tensor *in,
                     cpu_tensor *out) {
  return conv_run_common(ctx, n, NULL, in, out, true);
}

/* The kernel a run will take, as prepare() left the state: the blocked one
 * (conv_nchwc_kernel_taken), or conv_f32_ex's choice in its order (a run over another plane
 * than planned may still choose otherwise). */
static void conv_note(const cpu_node *n, const void *state, cpu_isa isa, char *buf, size_t size) {
  const conv_state *st = state;
  conv_plan p;
  char msg[160];
  buf[0] = '\0';
  if (conv_setup(n, n->in, n->out, false, &p, msg, sizeof msg) != TSR_PLUGIN_REASON_NONE)
    return;
  const char *k = NULL;
#ifdef CPU_NCHWC_HAVE_AVX2
  if (n->nchwc) {
    switch (conv_nchwc_kernel_taken(&p, st)) {
    case NCHWC_K_PW: k = conv_nchwc_strided(&p) ? "1x1 over a subsampled copy" : "1x1"; break;
    case NCHWC_K_DW: k = "depthwise"; break;
    case NCHWC_K_GROUP: k = "grouped"; break;
    case NCHWC_K_WINO:
      k = st->wino_tile == 4 ? "winograd F(4x4,3x3)" : "winograd F(2x2,3x3)";
      break;
    case NCHWC_K_DIRECT: k = "direct"; break;
    case NCHWC_K_STEM: k = "stem, from NCHW"; break;
    default: break;
    }
  }
#endif
  if (!k)
    k = cpu_conv_depthwise_applies(&p)              ? "depthwise"
        : st && st->wu && cpu_conv_wino_applies(&p) ? "winograd F(2x2,3x3)"
        : conv_pwt_ready(&p, st)                    ? "1x1 as a transposed GEMM"
        : conv_is_strided_pointwise(&p)             ? "1x1 over a subsampled copy"
        : conv_is_pointwise(&p)                     ? "1x1 as a GEMM"
        : conv_implicit_applies(&p)                 ? "implicit GEMM"
                                                    : "im2col + GEMM";
  snprintf(buf, size, "%s (%s)", k, isa == CPU_ISA_AVX2_FMA ? "AVX2" : "generic C");
}

static const cpu_op conv_ops[] = {
    {"Conv", "", 1, 17, conv_check, conv_prepare, conv_run, conv_release, conv_nchwc_role,
     conv_note},
    {"ConvTranspose", "", 1, 17, convt_check, NULL, convt_run, NULL},
};

const cpu_op_list cpu_ops_conv = {conv_ops, sizeof conv_ops / sizeof conv_ops[0]};
