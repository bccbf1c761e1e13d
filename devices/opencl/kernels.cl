/* The OpenCL C kernels of the Tessera OpenCL plugin, built once per device as one program
 * (OpenCL C 1.2). The build embeds this file in the plugin as a string (embed_cl.py).
 *
 * Conventions shared with ops.c:
 *   - Every tensor argument is a (buffer, element offset) pair, so that the host's arena
 *     offsets need no sub-buffers (whose origin would have to honour
 *     CL_DEVICE_MEM_BASE_ADDR_ALIGN).
 *   - Shapes and strides travel in a small int buffer `p` built at compile time; its layout
 *     for each kernel is written beside the kernel.
 *   - Indices are 32-bit: ops.c refuses tensors of 2^31 elements or more.
 *   - Every kernel checks its global id against the element count, so the host may round the
 *     global size up to a multiple of the work-group size. */

#define MAXR 8

/* ---- Elementwise ------------------------------------------------------------------------ */

/* Binary op codes: keep in step with OCL_BIN_* in ocl.h. */
#define BIN_ADD 0
#define BIN_SUB 1
#define BIN_MUL 2
#define BIN_DIV 3
#define BIN_POW 4
#define BIN_MAX 5
#define BIN_MIN 6
#define BIN_PRELU 7

static float bin_apply(int op, float a, float b) {
  switch (op) {
  case BIN_ADD: return a + b;
  case BIN_SUB: return a - b;
  case BIN_MUL: return a * b;
  case BIN_DIV: return a / b;
  case BIN_POW: return pow(a, b);
  case BIN_MAX: return (a >= b || isnan(a)) ? a : b;
  case BIN_MIN: return (a <= b || isnan(a)) ? a : b;
  case BIN_PRELU: return a < 0.0f ? a * b : a;
  }
  return 0.0f;
}

/* p: [n, rank, out_dims[rank], a_strides[rank], b_strides[rank]]; a stride of 0 broadcasts. */
__kernel void binary_f32(__global float *y, ulong yo, __global const float *a, ulong ao,
                         __global const float *b, ulong bo, __global const int *p, int op) {
  int i = get_global_id(0);
  int n = p[0], rank = p[1];
  if (i >= n) return;
  int rem = i, ia = 0, ib = 0;
  for (int d = rank - 1; d >= 0; d--) {
    int dim = p[2 + d];
    int k = rem % dim;
    rem /= dim;
    ia += k * p[2 + rank + d];
    ib += k * p[2 + 2 * rank + d];
  }
  y[yo + i] = bin_apply(op, a[ao + ia], b[bo + ib]);
}

/* Unary op codes: keep in step with OCL_UN_* in ocl.h. */
#define UN_RELU 0
#define UN_SIGMOID 1
#define UN_TANH 2
#define UN_EXP 3
#define UN_LOG 4
#define UN_SQRT 5
#define UN_ABS 6
#define UN_NEG 7
#define UN_LEAKY 8
#define UN_HARDSIGMOID 9
#define UN_HARDSWISH 10
#define UN_ERF 11
#define UN_ELU 12
#define UN_SELU 13
#define UN_SOFTPLUS 14
#define UN_SOFTSIGN 15
#define UN_RECIPROCAL 16
#define UN_FLOOR 17
#define UN_CEIL 18
#define UN_ROUND 19
#define UN_SIN 20
#define UN_COS 21
#define UN_SIGN 22
#define UN_THRESHOLDED 23
#define UN_CELU 24
#define UN_SCALE 25
#define UN_COPY 26
#define UN_CLIP 27
#define UN_TAN 28
#define UN_ASIN 29
#define UN_ACOS 30
#define UN_ATAN 31
#define UN_SINH 32
#define UN_COSH 33
#define UN_ASINH 34
#define UN_ACOSH 35
#define UN_ATANH 36
#define UN_SHRINK 37

static float un_apply(int op, float x, float al, float be) {
  switch (op) {
  case UN_RELU: return x > 0.0f ? x : 0.0f;
  case UN_SIGMOID: return 1.0f / (1.0f + exp(-x));
  case UN_TANH: return tanh(x);
  case UN_EXP: return exp(x);
  case UN_LOG: return log(x);
  case UN_SQRT: return sqrt(x);
  case UN_ABS: return fabs(x);
  case UN_NEG: return -x;
  case UN_LEAKY: return x >= 0.0f ? x : al * x;
  case UN_HARDSIGMOID: return fmax(0.0f, fmin(1.0f, al * x + be));
  case UN_HARDSWISH: return x * fmax(0.0f, fmin(1.0f, x / 6.0f + 0.5f));
  case UN_ERF: return erf(x);
  case UN_ELU: return x >= 0.0f ? x : al * (exp(x) - 1.0f);
  case UN_SELU: return x > 0.0f ? be * x : be * (al * exp(x) - al);
  case UN_SOFTPLUS: return x > 20.0f ? x : log1p(exp(x));
  case UN_SOFTSIGN: return x / (1.0f + fabs(x));
  case UN_RECIPROCAL: return 1.0f / x;
  case UN_FLOOR: return floor(x);
  case UN_CEIL: return ceil(x);
  case UN_ROUND: return rint(x);
  case UN_SIN: return sin(x);
  case UN_COS: return cos(x);
  case UN_SIGN: return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x;
  case UN_THRESHOLDED: return x > al ? x : 0.0f;
  case UN_CELU: return fmax(0.0f, x) + fmin(0.0f, al * (exp(x / al) - 1.0f));
  case UN_SCALE: return x * al;
  case UN_COPY: return x;
  case UN_CLIP: return fmin(fmax(x, al), be);
  case UN_TAN: return tan(x);
  case UN_ASIN: return asin(x);
  case UN_ACOS: return acos(x);
  case UN_ATAN: return atan(x);
  case UN_SINH: return sinh(x);
  case UN_COSH: return cosh(x);
  case UN_ASINH: return asinh(x);
  case UN_ACOSH: return acosh(x);
  case UN_ATANH: return atanh(x);
  case UN_SHRINK: return x < -al ? x + be : x > al ? x - be : 0.0f; /* al lambd, be bias */
  }
  return 0.0f;
}

__kernel void unary_f32(__global float *y, ulong yo, __global const float *x, ulong xo, int n,
                        int op, float al, float be) {
  int i = get_global_id(0);
  if (i >= n) return;
  y[yo + i] = un_apply(op, x[xo + i], al, be);
}

/* Clip whose bounds are tensors (opset 11+); has_lo/has_hi say which bounds are present. */
__kernel void clip_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                       __global const float *lo, ulong loo, __global const float *hi, ulong hio,
                       int n, int has_lo, int has_hi) {
  int i = get_global_id(0);
  if (i >= n) return;
  float v = x[xo + i];
  if (has_lo) v = fmax(v, lo[loo]);
  if (has_hi) v = fmin(v, hi[hio]);
  y[yo + i] = v;
}

/* ---- GEMM ------------------------------------------------------------------------------- */

#define TS 16

/* Y[b] = alpha * op(A[b]) x op(B[b]) + beta * C, tiled through local memory.
 * p: [M, N, K, transA, transB, has_c, c_row_stride, c_col_stride, batches,
 *     a_off[batches], b_off[batches]] (element offsets of each batch's matrices).
 * Global size: (roundup(N, TS), roundup(M, TS), batches); local size (TS, TS, 1). */
__kernel void gemm_f32(__global float *y, ulong yo, __global const float *a, ulong ao,
                       __global const float *b, ulong bo, __global const float *c, ulong co,
                       __global const int *p, float alpha, float beta) {
  __local float ta[TS][TS + 1];
  __local float tb[TS][TS + 1];
  int M = p[0], N = p[1], K = p[2], transA = p[3], transB = p[4], has_c = p[5];
  int batches = p[8];
  int col = get_global_id(0), row = get_global_id(1), bt = get_global_id(2);
  int lc = get_local_id(0), lr = get_local_id(1);
  __global const float *A = a + ao + p[9 + bt];
  __global const float *B = b + bo + p[9 + batches + bt];
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += TS) {
    int ka = k0 + lc, kb = k0 + lr;
    /* ta[lr][lc] = A[row][k0 + lc]; tb[lr][lc] = B[k0 + lr][col] */
    float va = 0.0f, vb = 0.0f;
    if (row < M && ka < K) va = transA ? A[ka * M + row] : A[row * K + ka];
    if (col < N && kb < K) vb = transB ? B[col * K + kb] : B[kb * N + col];
    ta[lr][lc] = va;
    tb[lr][lc] = vb;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = 0; k < TS; k++) acc = fma(ta[lr][k], tb[k][lc], acc);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (row < M && col < N) {
    float v = alpha * acc;
    if (has_c) v += beta * c[co + row * p[6] + col * p[7]];
    y[yo + (long)bt * M * N + row * N + col] = v;
  }
}

/* ---- Convolution and pooling ------------------------------------------------------------ */

/* Direct 2-D convolution (1-D runs with H = 1), one output element per work item.
 * p: [N, C, H, W, OC, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, group, has_bias] */
__kernel void conv2d_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                         __global const float *w, ulong wo, __global const float *bias, ulong bo,
                         __global const int *p) {
  int N = p[0], C = p[1], H = p[2], W = p[3], OC = p[4], OH = p[5], OW = p[6];
  int KH = p[7], KW = p[8], sh = p[9], sw = p[10], ph = p[11], pw = p[12], dh = p[13],
      dw = p[14], group = p[15];
  int i = get_global_id(0);
  if (i >= N * OC * OH * OW) return;
  int ow = i % OW, oh = (i / OW) % OH, oc = (i / (OW * OH)) % OC, n = i / (OW * OH * OC);
  int cg = C / group, ocg = OC / group, g = oc / ocg;
  float acc = p[16] ? bias[bo + oc] : 0.0f;
  __global const float *wp = w + wo + (long)oc * cg * KH * KW;
  __global const float *xp = x + xo + ((long)n * C + (long)g * cg) * H * W;
  int ih0 = oh * sh - ph, iw0 = ow * sw - pw;
  for (int ic = 0; ic < cg; ic++) {
    for (int kh = 0; kh < KH; kh++) {
      int ih = ih0 + kh * dh;
      if (ih < 0 || ih >= H) continue;
      for (int kw = 0; kw < KW; kw++) {
        int iw = iw0 + kw * dw;
        if (iw < 0 || iw >= W) continue;
        acc = fma(xp[(ic * H + ih) * W + iw], wp[(ic * KH + kh) * KW + kw], acc);
      }
    }
  }
  y[yo + i] = acc;
}

/* Max or average pooling over 2-D windows (1-D runs with H = 1).
 * p: [N*C, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, is_max, count_include_pad,
 *     pad_h_end, pad_w_end] */
__kernel void pool2d_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                         __global const int *p) {
  int NC = p[0], H = p[1], W = p[2], OH = p[3], OW = p[4], KH = p[5], KW = p[6];
  int sh = p[7], sw = p[8], ph = p[9], pw = p[10], dh = p[11], dw = p[12], is_max = p[13];
  int include_pad = p[14], phe = p[15], pwe = p[16];
  int i = get_global_id(0);
  if (i >= NC * OH * OW) return;
  int ow = i % OW, oh = (i / OW) % OH, nc = i / (OW * OH);
  __global const float *xp = x + xo + (long)nc * H * W;
  int hs = oh * sh - ph, ws = ow * sw - pw;
  float acc = is_max ? -INFINITY : 0.0f;
  int count = 0;
  for (int kh = 0; kh < KH; kh++) {
    int ih = hs + kh * dh;
    if (ih < 0 || ih >= H) continue;
    for (int kw = 0; kw < KW; kw++) {
      int iw = ws + kw * dw;
      if (iw < 0 || iw >= W) continue;
      float v = xp[ih * W + iw];
      acc = is_max ? fmax(acc, v) : acc + v;
      count++;
    }
  }
  if (!is_max) {
    if (include_pad) {
      /* The window clipped to the padded input, as ONNX counts it. */
      int he = min(hs + (KH - 1) * dh + 1, H + phe), we = min(ws + (KW - 1) * dw + 1, W + pwe);
      count = ((he - hs + dh - 1) / dh) * ((we - ws + dw - 1) / dw);
    }
    acc = count ? acc / (float)count : 0.0f;
  }
  y[yo + i] = acc;
}

/* Global average (is_max = 0) or max pooling: one work item per (n, c). */
__kernel void global_pool_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                              int nc, int spatial, int is_max) {
  int i = get_global_id(0);
  if (i >= nc) return;
  __global const float *xp = x + xo + (long)i * spatial;
  float acc = is_max ? -INFINITY : 0.0f;
  for (int k = 0; k < spatial; k++) acc = is_max ? fmax(acc, xp[k]) : acc + xp[k];
  y[yo + i] = is_max ? acc : acc / (float)spatial;
}

/* ---- Normalisation ---------------------------------------------------------------------- */

/* Inference BatchNormalization over axis 1: n elements, C channels, inner = product of the
 * dimensions after the channel axis. */
__kernel void batchnorm_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                            __global const float *scale, ulong so, __global const float *bias,
                            ulong bo, __global const float *mean, ulong mo,
                            __global const float *var, ulong vo, int n, int C, int inner,
                            float eps) {
  int i = get_global_id(0);
  if (i >= n) return;
  int c = (i / inner) % C;
  float inv = rsqrt(var[vo + c] + eps);
  y[yo + i] = (x[xo + i] - mean[mo + c]) * inv * scale[so + c] + bias[bo + c];
}

/* Softmax (mode 0), LogSoftmax (1) or Hardmax (2) along an axis of length len, elements of
 * one softmax `inner` apart; one work item per (outer, inner) pair. */
__kernel void softmax_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                          int outer, int len, int inner, int mode) {
  int i = get_global_id(0);
  if (i >= outer * inner) return;
  int o = i / inner, in = i % inner;
  long base = (long)o * len * inner + in;
  __global const float *xp = x + xo + base;
  __global float *yp = y + yo + base;
  float m = -INFINITY;
  int arg = 0;
  for (int k = 0; k < len; k++) {
    float v = xp[(long)k * inner];
    if (v > m) {
      m = v;
      arg = k;
    }
  }
  if (mode == 2) {
    for (int k = 0; k < len; k++) yp[(long)k * inner] = k == arg ? 1.0f : 0.0f;
    return;
  }
  float s = 0.0f;
  for (int k = 0; k < len; k++) s += exp(xp[(long)k * inner] - m);
  if (mode == 1) {
    float ls = log(s);
    for (int k = 0; k < len; k++) yp[(long)k * inner] = xp[(long)k * inner] - m - ls;
  } else {
    float inv = 1.0f / s;
    for (int k = 0; k < len; k++) yp[(long)k * inner] = exp(xp[(long)k * inner] - m) * inv;
  }
}

/* LayerNormalization over the trailing `len` elements of each of `rows` rows; scale and bias
 * have len elements (bias optional); mean and inverse standard deviation go out when asked. */
__kernel void layernorm_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                            __global const float *scale, ulong so, __global const float *bias,
                            ulong bo, __global float *mean_out, ulong mno,
                            __global float *istd_out, ulong iso, int rows, int len, float eps,
                            int flags) {
  int r = get_global_id(0);
  if (r >= rows) return;
  __global const float *xp = x + xo + (long)r * len;
  __global float *yp = y + yo + (long)r * len;
  float mean = 0.0f;
  for (int k = 0; k < len; k++) mean += xp[k];
  mean /= (float)len;
  float var = 0.0f;
  for (int k = 0; k < len; k++) {
    float d = xp[k] - mean;
    var += d * d;
  }
  var /= (float)len;
  float inv = rsqrt(var + eps);
  for (int k = 0; k < len; k++) {
    float v = (xp[k] - mean) * inv * scale[so + k];
    if (flags & 1) v += bias[bo + k];
    yp[k] = v;
  }
  if (flags & 2) mean_out[mno + r] = mean;
  if (flags & 4) istd_out[iso + r] = inv;
}

/* ---- Reductions ------------------------------------------------------------------------- */

#define RED_SUM 0
#define RED_MEAN 1
#define RED_MAX 2
#define RED_MIN 3
#define RED_PROD 4
#define RED_SUMSQ 5
#define RED_L1 6
#define RED_L2 7
#define RED_LOGSUM 8
#define RED_LOGSUMEXP 9

/* One output element per work item. p: [n_out, nk, kept_dims[nk], kept_strides[nk], nr,
 * red_dims[nr], red_strides[nr], R] with strides in input elements. */
__kernel void reduce_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                         __global const int *p, int mode) {
  int i = get_global_id(0);
  if (i >= p[0]) return;
  int nk = p[1];
  __global const int *kd = p + 2, *ks = p + 2 + nk;
  int nr = p[2 + 2 * nk];
  __global const int *rd = p + 3 + 2 * nk, *rs = p + 3 + 2 * nk + nr;
  int R = p[3 + 2 * nk + 2 * nr];
  int rem = i, base = 0;
  for (int d = nk - 1; d >= 0; d--) {
    base += (rem % kd[d]) * ks[d];
    rem /= kd[d];
  }
  float m = -INFINITY;
  if (mode == RED_LOGSUMEXP) {
    for (int r = 0; r < R; r++) {
      int q = r, off = base;
      for (int d = nr - 1; d >= 0; d--) {
        off += (q % rd[d]) * rs[d];
        q /= rd[d];
      }
      m = fmax(m, x[xo + off]);
    }
    if (isinf(m)) m = 0.0f;
  }
  float acc = mode == RED_MAX ? -INFINITY : mode == RED_MIN ? INFINITY : mode == RED_PROD ? 1.0f : 0.0f;
  for (int r = 0; r < R; r++) {
    int q = r, off = base;
    for (int d = nr - 1; d >= 0; d--) {
      off += (q % rd[d]) * rs[d];
      q /= rd[d];
    }
    float v = x[xo + off];
    switch (mode) {
    case RED_MAX: acc = fmax(acc, v); break;
    case RED_MIN: acc = fmin(acc, v); break;
    case RED_PROD: acc *= v; break;
    case RED_SUMSQ:
    case RED_L2: acc += v * v; break;
    case RED_L1: acc += fabs(v); break;
    case RED_LOGSUMEXP: acc += exp(v - m); break;
    default: acc += v; break;
    }
  }
  if (mode == RED_MEAN) acc = R ? acc / (float)R : NAN;
  else if (mode == RED_L2) acc = sqrt(acc);
  else if (mode == RED_LOGSUM) acc = log(acc);
  else if (mode == RED_LOGSUMEXP) acc = log(acc) + m;
  y[yo + i] = acc;
}

/* ---- Resize ----------------------------------------------------------------------------- */

/* Nearest or bilinear resize of the last two axes of an [NC, H, W] view.
 * p: [NC, H, W, OH, OW, linear, coord_mode, nearest_mode]; sh, sw: output/input scales.
 * coord_mode: 0 half_pixel, 1 asymmetric, 2 align_corners, 3 pytorch_half_pixel,
 *             4 tf_half_pixel_for_nearest.
 * nearest_mode: 0 round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil. */
static float resize_coord(int o, float scale, int in_len, int out_len, int mode) {
  switch (mode) {
  case 0: return ((float)o + 0.5f) / scale - 0.5f;
  case 1: return (float)o / scale;
  case 2: return out_len > 1 ? (float)o * (float)(in_len - 1) / (float)(out_len - 1) : 0.0f;
  case 3: return out_len > 1 ? ((float)o + 0.5f) / scale - 0.5f : 0.0f;
  case 4: return ((float)o + 0.5f) / scale;
  }
  return 0.0f;
}

static int resize_nearest(float c, int in_len, int mode) {
  int r;
  switch (mode) {
  case 0: r = (c == floor(c) + 0.5f) ? (int)floor(c) : (int)round(c); break;
  case 1: r = (c == floor(c) + 0.5f) ? (int)ceil(c) : (int)round(c); break;
  case 2: r = (int)floor(c); break;
  default: r = (int)ceil(c); break;
  }
  return clamp(r, 0, in_len - 1);
}

__kernel void resize_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                         __global const int *p, float sh, float sw) {
  int NC = p[0], H = p[1], W = p[2], OH = p[3], OW = p[4], linear = p[5], cm = p[6], nm = p[7];
  int i = get_global_id(0);
  if (i >= NC * OH * OW) return;
  int ow = i % OW, oh = (i / OW) % OH, nc = i / (OW * OH);
  __global const float *xp = x + xo + (long)nc * H * W;
  float ch = resize_coord(oh, sh, H, OH, cm), cw = resize_coord(ow, sw, W, OW, cm);
  if (!linear) {
    y[yo + i] = xp[resize_nearest(ch, H, nm) * W + resize_nearest(cw, W, nm)];
    return;
  }
  ch = clamp(ch, 0.0f, (float)(H - 1));
  cw = clamp(cw, 0.0f, (float)(W - 1));
  int h0 = (int)floor(ch), w0 = (int)floor(cw);
  int h1 = min(h0 + 1, H - 1), w1 = min(w0 + 1, W - 1);
  float fh = ch - (float)h0, fw = cw - (float)w0;
  float top = xp[h0 * W + w0] * (1.0f - fw) + xp[h0 * W + w1] * fw;
  float bot = xp[h1 * W + w0] * (1.0f - fw) + xp[h1 * W + w1] * fw;
  y[yo + i] = top * (1.0f - fh) + bot * fh;
}

/* ---- Data movement, for any element size (T is uchar, ushort, uint or ulong) -------------- */

/* Transpose and Slice: y[i] = x[base + sum(index_d * stride_d)] over the output's dimensions.
 * p: [n, rank, base, out_dims[rank], in_strides[rank]] (strides may be negative for Slice). */
#define DEF_STRIDED(T, S)                                                                       \
  __kernel void strided_##S(__global T *y, ulong yo, __global const T *x, ulong xo,             \
                            __global const int *p) {                                            \
    int i = get_global_id(0);                                                                   \
    int n = p[0], rank = p[1];                                                                  \
    if (i >= n) return;                                                                         \
    int rem = i, off = p[2];                                                                    \
    for (int d = rank - 1; d >= 0; d--) {                                                       \
      int dim = p[3 + d];                                                                       \
      off += (rem % dim) * p[3 + rank + d];                                                     \
      rem /= dim;                                                                               \
    }                                                                                           \
    y[yo + i] = x[xo + off];                                                                    \
  }

/* Concat: copies one input of `outer` blocks of `chunk` elements into an output whose blocks
 * are `out_chunk` long, starting at element `at` of each block. */
#define DEF_CONCAT(T, S)                                                                        \
  __kernel void concat_##S(__global T *y, ulong yo, __global const T *x, ulong xo, int outer,   \
                           int chunk, int out_chunk, int at) {                                  \
    int i = get_global_id(0);                                                                   \
    if (i >= outer * chunk) return;                                                             \
    int o = i / chunk, k = i % chunk;                                                           \
    y[yo + (long)o * out_chunk + at + k] = x[xo + i];                                           \
  }

/* Gather along an axis: y[o, j, k] = x[o, idx[j], k]; negative indices count from the end,
 * and an index out of range gives zero (ops.c cannot see indices that are not constants). */
#define DEF_GATHER(T, S, I, IS)                                                                 \
  __kernel void gather_##S##_##IS(__global T *y, ulong yo, __global const T *x, ulong xo,       \
                                  __global const I *idx, ulong io, int outer, int axis_len,     \
                                  int n_idx, int inner) {                                       \
    int i = get_global_id(0);                                                                   \
    if (i >= outer * n_idx * inner) return;                                                     \
    int k = i % inner, j = (i / inner) % n_idx, o = i / (inner * n_idx);                        \
    long v = (long)idx[io + j];                                                                 \
    if (v < 0) v += axis_len;                                                                   \
    y[yo + i] = (v >= 0 && v < axis_len) ? x[xo + ((long)o * axis_len + v) * inner + k] : (T)0; \
  }

#define DEF_MOVE(T, S)                                                                          \
  DEF_STRIDED(T, S)                                                                             \
  DEF_CONCAT(T, S)                                                                              \
  DEF_GATHER(T, S, long, i64)                                                                   \
  DEF_GATHER(T, S, int, i32)

DEF_MOVE(uchar, u8)
DEF_MOVE(ushort, u16)
DEF_MOVE(uint, u32)
DEF_MOVE(ulong, u64)
