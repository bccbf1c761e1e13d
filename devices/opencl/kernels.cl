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

/* ---- Precision of the float32 kernels ---------------------------------------------------------
 *
 * The program is built in one of three variants (plugin.c chooses by the session's precisions):
 *   - default: float32 throughout.
 *   - -DOCL_FP16 (a device with cl_khr_fp16, the session allowing fp16): GEMM, convolution and
 *     the elementwise kernels round their float32 inputs to half and multiply (and, for the
 *     elementwise ops, add) in half; dot products accumulate in float; results are stored as
 *     float32 (elementwise results rounded to half first).
 *   - -DOCL_FP16_EMULATE (a test hook, TESSERA_OPENCL_FP16=emulate): the same roundings done in
 *     float on any device (exact: float holds a product or sum of two halves before rounding),
 *     so that the fp16 path can be checked where no device has cl_khr_fp16.
 * hreal is the arithmetic type; TO_H rounds a float to it; H_OP rounds the result of an
 * expression of hreals (a no-op when hreal is half, where the arithmetic itself rounds). */
#if defined(OCL_FP16)
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
typedef half hreal;
#define TO_H(x) ((half)(x))
#define H_OP(e) (e)
#define OCL_ANY_FP16 1
#elif defined(OCL_FP16_EMULATE)
typedef float hreal;
static float round_half(float x) {
  ushort bits;
  vstore_half(x, 0, (__private half *)&bits);
  return vload_half(0, (__private const half *)&bits);
}
#define TO_H(x) round_half(x)
#define H_OP(e) round_half(e)
#define OCL_ANY_FP16 1
#else
typedef float hreal;
#define TO_H(x) (x)
#define H_OP(e) (e)
#endif

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
/* The fp16 variants: Add, Sub, Mul, Div, Max, Min and PRelu in half; Pow in float on inputs
 * rounded to half, its result rounded to half. */
#ifdef OCL_ANY_FP16
static float bin_apply_h(int op, float af, float bf) {
  hreal a = TO_H(af), b = TO_H(bf);
  switch (op) {
  case BIN_ADD: return (float)H_OP(a + b);
  case BIN_SUB: return (float)H_OP(a - b);
  case BIN_MUL: return (float)H_OP(a * b);
  case BIN_DIV: return (float)H_OP(a / b);
  case BIN_MAX: return (float)((a >= b || isnan(a)) ? a : b);
  case BIN_MIN: return (float)((a <= b || isnan(a)) ? a : b);
  case BIN_PRELU: return (float)(a < 0 ? H_OP(a * b) : a);
  }
  return (float)TO_H(bin_apply(op, (float)a, (float)b));
}
#define BIN_APPLY bin_apply_h
#else
#define BIN_APPLY bin_apply
#endif

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
  y[yo + i] = BIN_APPLY(op, a[ao + ia], b[bo + ib]);
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
#define UN_SILU 38
#define UN_GELU 39
#define UN_GELU_TANH 40

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
  case UN_SILU: return x / (1.0f + exp(-x));
  case UN_GELU: return 0.5f * x * (1.0f + erf(x * 0.70710678118654752f));
  case UN_GELU_TANH:
    return 0.5f * x * (1.0f + tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  }
  return 0.0f;
}

__kernel void unary_f32(__global float *y, ulong yo, __global const float *x, ulong xo, int n,
                        int op, float al, float be) {
  int i = get_global_id(0);
  if (i >= n) return;
  /* fp16 variants: the input and the result rounded to half, computed in float. */
  y[yo + i] = (float)TO_H(un_apply(op, (float)TO_H(x[xo + i]), al, be));
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
  __local hreal ta[TS][TS + 1];
  __local hreal tb[TS][TS + 1];
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
    ta[lr][lc] = TO_H(va);
    tb[lr][lc] = TO_H(vb);
    barrier(CLK_LOCAL_MEM_FENCE);
#ifdef OCL_ANY_FP16
    for (int k = 0; k < TS; k++) acc += (float)H_OP(ta[lr][k] * tb[k][lc]);
#else
    for (int k = 0; k < TS; k++) acc = fma(ta[lr][k], tb[k][lc], acc);
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (row < M && col < N) {
    float v = alpha * acc;
    if (has_c) v += beta * c[co + row * p[6] + col * p[7]];
    y[yo + (long)bt * M * N + row * N + col] = v;
  }
}

/* ---- Convolution and pooling ------------------------------------------------------------ */

/* acc + x * w: in the fp16 variants the product is of halves, the sum in float. */
#ifdef OCL_ANY_FP16
#define MAC(x, w, acc) ((acc) + (float)H_OP(TO_H(x) * TO_H(w)))
#else
#define MAC(x, w, acc) fma((x), (w), (acc))
#endif

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
        acc = MAC(xp[(ic * H + ih) * W + iw], wp[(ic * KH + kh) * KW + kw], acc);
      }
    }
  }
  y[yo + i] = acc;
}

/* Depthwise 2-D convolution (group == C == OC): a 3-D launch of (ow, oh, n * C) in 16 x 4
 * work groups, so that neighbouring work items read overlapping input rows and the same nine
 * (KH * KW) weights, which GPUs then serve from cache. p as conv2d_f32's. */
__kernel void dwconv2d_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                           __global const float *w, ulong wo, __global const float *bias,
                           ulong bo, __global const int *p) {
  int C = p[1], H = p[2], W = p[3], OH = p[5], OW = p[6];
  int KH = p[7], KW = p[8], sh = p[9], sw = p[10], ph = p[11], pw = p[12], dh = p[13],
      dw = p[14];
  int ow = get_global_id(0), oh = get_global_id(1), nc = get_global_id(2);
  if (ow >= OW || oh >= OH) return;
  int c = nc % C;
  float acc = p[16] ? bias[bo + c] : 0.0f;
  __global const float *wp = w + wo + (long)c * KH * KW;
  __global const float *xp = x + xo + (long)nc * H * W;
  int ih0 = oh * sh - ph, iw0 = ow * sw - pw;
  for (int kh = 0; kh < KH; kh++) {
    int ih = ih0 + kh * dh;
    if (ih < 0 || ih >= H) continue;
    for (int kw = 0; kw < KW; kw++) {
      int iw = iw0 + kw * dw;
      if (iw < 0 || iw >= W) continue;
      acc = MAC(xp[ih * W + iw], wp[kh * KW + kw], acc);
    }
  }
  y[yo + ((long)nc * OH + oh) * OW + ow] = acc;
}

/* Max or average pooling over 2-D windows (1-D runs with H = 1); MaxPool's Indices when asked.
 * p: [N*C, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, is_max, count_include_pad,
 *     pad_h_end, pad_w_end] */
__kernel void pool2d_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                         __global const int *p, __global long *ind, ulong io, int want_ind,
                         int col_major) {
  int NC = p[0], H = p[1], W = p[2], OH = p[3], OW = p[4], KH = p[5], KW = p[6];
  int sh = p[7], sw = p[8], ph = p[9], pw = p[10], dh = p[11], dw = p[12], is_max = p[13];
  int include_pad = p[14], phe = p[15], pwe = p[16];
  int i = get_global_id(0);
  if (i >= NC * OH * OW) return;
  int ow = i % OW, oh = (i / OW) % OH, nc = i / (OW * OH);
  __global const float *xp = x + xo + (long)nc * H * W;
  int hs = oh * sh - ph, ws = ow * sw - pw;
  float acc = is_max ? -INFINITY : 0.0f;
  int count = 0, best = 0;
  for (int kh = 0; kh < KH; kh++) {
    int ih = hs + kh * dh;
    if (ih < 0 || ih >= H) continue;
    for (int kw = 0; kw < KW; kw++) {
      int iw = ws + kw * dw;
      if (iw < 0 || iw >= W) continue;
      float v = xp[ih * W + iw];
      if (!is_max) {
        acc += v;
      } else if (count == 0 || v > acc) { /* the first maximum, as the CPU plugin keeps */
        acc = v;
        best = ih * W + iw;
      }
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
  /* MaxPool's Indices: the flat index into the whole input, the spatial part row-major or, with
   * storage_order 1, column-major. */
  if (want_ind)
    ind[io + i] = (long)nc * H * W + (col_major ? (best % W) * H + best / W : best);
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
#define RED_OFFSET()                                                                            \
  int q = r, off = base;                                                                        \
  for (int d = nr - 1; d >= 0; d--) {                                                           \
    off += (q % rd[d]) * rs[d];                                                                 \
    q /= rd[d];                                                                                 \
  }
#define RED_HEAD()                                                                              \
  int i = get_global_id(0);                                                                     \
  if (i >= p[0]) return;                                                                        \
  int nk = p[1];                                                                                \
  __global const int *kd = p + 2, *ks = p + 2 + nk;                                             \
  int nr = p[2 + 2 * nk];                                                                       \
  __global const int *rd = p + 3 + 2 * nk, *rs = p + 3 + 2 * nk + nr;                           \
  int R = p[3 + 2 * nk + 2 * nr];                                                               \
  int rem = i, base = 0;                                                                        \
  for (int d = nk - 1; d >= 0; d--) {                                                           \
    base += (rem % kd[d]) * ks[d];                                                              \
    rem /= kd[d];                                                                               \
  }

/* Floating-point reductions in every mode, for float and (where the device has it) double. */
#define DEF_REDUCE_F(S, T)                                                                      \
  __kernel void reduce_##S(__global T *y, ulong yo, __global const T *x, ulong xo,              \
                           __global const int *p, int mode) {                                   \
    RED_HEAD()                                                                                  \
    T m = -INFINITY;                                                                            \
    if (mode == RED_LOGSUMEXP) {                                                                \
      for (int r = 0; r < R; r++) {                                                             \
        RED_OFFSET()                                                                            \
        m = fmax(m, x[xo + off]);                                                               \
      }                                                                                         \
      if (isinf(m)) m = (T)0;                                                                   \
    }                                                                                           \
    T acc = mode == RED_MAX    ? (T)-INFINITY                                                   \
            : mode == RED_MIN  ? (T)INFINITY                                                    \
            : mode == RED_PROD ? (T)1                                                           \
                               : (T)0;                                                          \
    for (int r = 0; r < R; r++) {                                                               \
      RED_OFFSET()                                                                              \
      T v = x[xo + off];                                                                        \
      switch (mode) {                                                                           \
      case RED_MAX: acc = fmax(acc, v); break;                                                  \
      case RED_MIN: acc = fmin(acc, v); break;                                                  \
      case RED_PROD: acc *= v; break;                                                           \
      case RED_SUMSQ:                                                                           \
      case RED_L2: acc += v * v; break;                                                         \
      case RED_L1: acc += fabs(v); break;                                                       \
      case RED_LOGSUMEXP: acc += exp(v - m); break;                                             \
      default: acc += v; break;                                                                 \
      }                                                                                         \
    }                                                                                           \
    if (mode == RED_MEAN) acc = R ? acc / (T)R : (T)NAN;                                        \
    else if (mode == RED_L2) acc = sqrt(acc);                                                   \
    else if (mode == RED_LOGSUM) acc = log(acc);                                                \
    else if (mode == RED_LOGSUMEXP) acc = log(acc) + m;                                         \
    y[yo + i] = acc;                                                                            \
  }
DEF_REDUCE_F(f32, float)

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

/* ==== Typed kernels: every numeric dtype ===================================================
 *
 * Suffixes name the storage type: f32 float, f64 double (only where the device has
 * cl_khr_fp64; ops.c refuses float64 elsewhere), f16 half (stored as half, computed in float
 * through vload_half/vstore_half, which OpenCL 1.2 has without cl_khr_fp16), i8..u64 the
 * integers, and bool is u8. LD and ST read and write one element of a storage type. */

#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#define OCL_HAVE_F64 1
#endif

#define LD_P(p, i) ((p)[i])
#define ST_P(p, i, v) ((p)[i] = (v))
#define LD_H(p, i) vload_half((i), (p))
#define ST_H(p, i, v) vstore_half((v), (i), (p))

/* More binary op codes (ops.c's BIN_*): from BIN_EQ on, the output is bool. */
#define BIN_MOD 8
#define BIN_FMOD 9
#define BIN_SHL 10
#define BIN_SHR 11
#define BIN_EQ 12
#define BIN_LT 13
#define BIN_GT 14
#define BIN_LE 15
#define BIN_GE 16
#define BIN_AND 17
#define BIN_OR 18
#define BIN_XOR 19

/* Exact integer power, wrapping on overflow; a negative exponent truncates 1 / base^-e. */
static long ipow_l(long base, long e) {
  if (e < 0) return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
  ulong r = 1, b = (ulong)base, k = (ulong)e;
  while (k) {
    if (k & 1) r *= b;
    b *= b;
    k >>= 1;
  }
  return (long)r;
}

/* Arithmetic of signed (S) and unsigned (U) integers, as numpy computes it: wrap-around, x / 0
 * and x % 0 give 0, Mod takes the divisor's sign, Fmod the dividend's. */
#define INT_DIV_S(T, a, b) ((b) == 0 ? (T)0 : (b) == -1 ? (T)(0UL - (ulong)(a)) : (T)((a) / (b)))
#define INT_DIV_U(T, a, b) ((b) == 0 ? (T)0 : (T)((a) / (b)))
#define INT_MOD_S(T, a, b) ((b) == 0 || (b) == -1 ? (T)0 : pymod_##T((a), (b)))
#define INT_MOD_U(T, a, b) ((b) == 0 ? (T)0 : (T)((a) % (b)))
#define INT_FMOD_S(T, a, b) ((b) == 0 || (b) == -1 ? (T)0 : (T)((a) % (b)))
#define INT_FMOD_U(T, a, b) INT_MOD_U(T, a, b)
#define INT_PRELU_S(T, a, b) ((a) < 0 ? (T)((ulong)(a) * (ulong)(b)) : (a))
#define INT_PRELU_U(T, a, b) (a)

#define DEF_PYMOD(T)                                                                            \
  static T pymod_##T(T a, T b) {                                                                \
    T r = (T)(a % b);                                                                           \
    return (r != 0 && ((r < 0) != (b < 0))) ? (T)(r + b) : r;                                   \
  }
DEF_PYMOD(char)
DEF_PYMOD(short)
DEF_PYMOD(int)
DEF_PYMOD(long)

#define DEF_EBIN_INT(S, T, K)                                                                   \
  static T ebin_apply_##S(int op, T a, T b) {                                                   \
    switch (op) {                                                                               \
    case BIN_ADD: return (T)((ulong)a + (ulong)b);                                              \
    case BIN_SUB: return (T)((ulong)a - (ulong)b);                                              \
    case BIN_MUL: return (T)((ulong)a * (ulong)b);                                              \
    case BIN_DIV: return INT_DIV_##K(T, a, b);                                                  \
    case BIN_MOD: return INT_MOD_##K(T, a, b);                                                  \
    case BIN_FMOD: return INT_FMOD_##K(T, a, b);                                                \
    case BIN_POW: return (T)ipow_l((long)a, (long)b);                                           \
    case BIN_MAX: return a > b ? a : b;                                                         \
    case BIN_MIN: return a < b ? a : b;                                                         \
    case BIN_PRELU: return INT_PRELU_##K(T, a, b);                                              \
    case BIN_SHL: return (ulong)b >= 8 * sizeof(T) ? (T)0 : (T)((ulong)a << (ulong)b);          \
    case BIN_SHR: return (ulong)b >= 8 * sizeof(T) ? (T)0 : (T)((ulong)a >> (ulong)b);          \
    }                                                                                           \
    return (T)0;                                                                                \
  }

/* Floats compute in C (float for f32 and f16, double for f64). */
#define DEF_EBIN_FLT(S, C)                                                                      \
  static C ebin_apply_##S(int op, C a, C b) {                                                   \
    switch (op) {                                                                               \
    case BIN_ADD: return a + b;                                                                 \
    case BIN_SUB: return a - b;                                                                 \
    case BIN_MUL: return a * b;                                                                 \
    case BIN_DIV: return a / b;                                                                 \
    case BIN_MOD: {                                                                             \
      C r = fmod(a, b);                                                                         \
      return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;                                      \
    }                                                                                           \
    case BIN_FMOD: return fmod(a, b);                                                           \
    case BIN_POW: return pow(a, b);                                                             \
    case BIN_MAX: return (a > b || isnan(a)) ? a : b;                                           \
    case BIN_MIN: return (a < b || isnan(a)) ? a : b;                                           \
    case BIN_PRELU: return a < 0 ? a * b : a;                                                   \
    }                                                                                           \
    return (C)0;                                                                                \
  }

#define DEF_ECMP(S, C)                                                                          \
  static uchar ecmp_##S(int op, C a, C b) {                                                     \
    switch (op) {                                                                               \
    case BIN_EQ: return a == b;                                                                 \
    case BIN_LT: return a < b;                                                                  \
    case BIN_GT: return a > b;                                                                  \
    case BIN_LE: return a <= b;                                                                 \
    case BIN_GE: return a >= b;                                                                 \
    case BIN_AND: return (a != 0) & (b != 0);                                                   \
    case BIN_OR: return (a != 0) | (b != 0);                                                    \
    case BIN_XOR: return (a != 0) ^ (b != 0);                                                   \
    }                                                                                           \
    return 0;                                                                                   \
  }

/* y = a op b with numpy broadcasting; p as binary_f32's. Comparisons and logic write bool. */
#define DEF_EBIN(S, T, C, LD, ST)                                                               \
  DEF_ECMP(S, C)                                                                                \
  __kernel void ebin_##S(__global T *y, ulong yo, __global const T *a, ulong ao,                \
                         __global const T *b, ulong bo, __global const int *p, int op) {        \
    int i = get_global_id(0);                                                                   \
    int n = p[0], rank = p[1];                                                                  \
    if (i >= n) return;                                                                         \
    int rem = i, ia = 0, ib = 0;                                                                \
    for (int d = rank - 1; d >= 0; d--) {                                                       \
      int dim = p[2 + d];                                                                       \
      int k = rem % dim;                                                                        \
      rem /= dim;                                                                               \
      ia += k * p[2 + rank + d];                                                                \
      ib += k * p[2 + 2 * rank + d];                                                            \
    }                                                                                           \
    C va = LD(a, ao + ia), vb = LD(b, bo + ib);                                                 \
    if (op >= BIN_EQ) {                                                                         \
      ((__global uchar *)y)[yo + i] = ecmp_##S(op, va, vb);                                     \
      return;                                                                                   \
    }                                                                                           \
    ST(y, yo + i, ebin_apply_##S(op, va, vb));                                                  \
  }

#define FOR_INTS(X)                                                                             \
  X(i8, char, S) X(u8, uchar, U) X(i16, short, S) X(u16, ushort, U) X(i32, int, S)              \
  X(u32, uint, U) X(i64, long, S) X(u64, ulong, U)

#define DEF_EBIN_I(S, T, K) DEF_EBIN_INT(S, T, K) DEF_EBIN(S, T, T, LD_P, ST_P)
FOR_INTS(DEF_EBIN_I)
DEF_EBIN_FLT(f32, float)
DEF_EBIN(f32, float, float, LD_P, ST_P)
DEF_EBIN_FLT(f16, float)
DEF_EBIN(f16, half, float, LD_H, ST_H)
#ifdef OCL_HAVE_F64
DEF_EBIN_FLT(f64, double)
DEF_EBIN(f64, double, double, LD_P, ST_P)
#endif

/* Pow with a base of storage T and an exponent of any numeric dtype (code `edt`, ops.c's
 * TSR_DTYPE_*), broadcast as ebin. A float base computes in float (double for an integer
 * exponent of float32, where the device has doubles); an integer base with an integer
 * exponent is exact; an integer base with a float exponent truncates the float power. */
#ifdef OCL_HAVE_F64
#define WIDE double
#else
#define WIDE float
#endif
static WIDE load_wide(__global const uchar *e, ulong i, int edt) {
  switch (edt) {
  case 1: return (WIDE)((__global const float *)e)[i];
  case 2: return (WIDE)((__global const uchar *)e)[i];
  case 3: return (WIDE)((__global const char *)e)[i];
  case 4: return (WIDE)((__global const ushort *)e)[i];
  case 5: return (WIDE)((__global const short *)e)[i];
  case 6: return (WIDE)((__global const int *)e)[i];
  case 7: return (WIDE)((__global const long *)e)[i];
  case 10: return (WIDE)vload_half(i, (__global const half *)e);
#ifdef OCL_HAVE_F64
  case 11: return ((__global const double *)e)[i];
#endif
  case 12: return (WIDE)((__global const uint *)e)[i];
  case 13: return (WIDE)((__global const ulong *)e)[i];
  }
  return (WIDE)0;
}
static long load_long(__global const uchar *e, ulong i, int edt) {
  switch (edt) {
  case 2: return ((__global const uchar *)e)[i];
  case 3: return ((__global const char *)e)[i];
  case 4: return ((__global const ushort *)e)[i];
  case 5: return ((__global const short *)e)[i];
  case 6: return ((__global const int *)e)[i];
  case 7: return ((__global const long *)e)[i];
  case 12: return ((__global const uint *)e)[i];
  case 13: return (long)((__global const ulong *)e)[i];
  }
  return 0;
}

#define DEF_POW(S, T, LD, ST, IS_FLOAT)                                                         \
  __kernel void pow_##S(__global T *y, ulong yo, __global const T *a, ulong ao,                 \
                        __global const uchar *e, ulong eo, __global const int *p, int edt,      \
                        int e_float) {                                                          \
    int i = get_global_id(0);                                                                   \
    int n = p[0], rank = p[1];                                                                  \
    if (i >= n) return;                                                                         \
    int rem = i, ia = 0, ib = 0;                                                                \
    for (int d = rank - 1; d >= 0; d--) {                                                       \
      int dim = p[2 + d];                                                                       \
      int k = rem % dim;                                                                        \
      rem /= dim;                                                                               \
      ia += k * p[2 + rank + d];                                                                \
      ib += k * p[2 + 2 * rank + d];                                                            \
    }                                                                                           \
    if (IS_FLOAT) {                                                                             \
      ST(y, yo + i, (T)pow((WIDE)LD(a, ao + ia), load_wide(e, eo + ib, edt)));                  \
    } else if (e_float) {                                                                       \
      WIDE r = pow((WIDE)LD(a, ao + ia), load_wide(e, eo + ib, edt));                           \
      ST(y, yo + i, (T)convert_long_sat(r));                                                    \
    } else {                                                                                    \
      ST(y, yo + i, (T)ipow_l((long)LD(a, ao + ia), load_long(e, eo + ib, edt)));               \
    }                                                                                           \
  }
DEF_POW(f32, float, LD_P, ST_P, 1)
DEF_POW(i32, int, LD_P, ST_P, 0)
DEF_POW(i64, long, LD_P, ST_P, 0)
#ifdef OCL_HAVE_F64
DEF_POW(f64, double, LD_P, ST_P, 1)
#endif

/* Where(c, x, y) by element size. p: [n, rank, out_dims, c_strides, x_strides, y_strides]. */
#define DEF_WHERE(T, S)                                                                         \
  __kernel void where_##S(__global T *y, ulong yo, __global const uchar *c, ulong co,           \
                          __global const T *a, ulong ao, __global const T *b, ulong bo,         \
                          __global const int *p) {                                              \
    int i = get_global_id(0);                                                                   \
    int n = p[0], rank = p[1];                                                                  \
    if (i >= n) return;                                                                         \
    int rem = i, ic = 0, ia = 0, ib = 0;                                                        \
    for (int d = rank - 1; d >= 0; d--) {                                                       \
      int dim = p[2 + d];                                                                       \
      int k = rem % dim;                                                                        \
      rem /= dim;                                                                               \
      ic += k * p[2 + rank + d];                                                                \
      ia += k * p[2 + 2 * rank + d];                                                            \
      ib += k * p[2 + 3 * rank + d];                                                            \
    }                                                                                           \
    y[yo + i] = c[co + ic] ? a[ao + ia] : b[bo + ib];                                           \
  }
DEF_WHERE(uchar, u8)
DEF_WHERE(ushort, u16)
DEF_WHERE(uint, u32)
DEF_WHERE(ulong, u64)

__kernel void not_b8(__global uchar *y, ulong yo, __global const uchar *x, ulong xo, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  y[yo + i] = !x[xo + i];
}

/* IsNaN (mode 0) and IsInf (mode 1, with flags: 1 negative, 2 positive infinities). */
#define DEF_FCLASS(S, T, C, LD)                                                                 \
  __kernel void fclass_##S(__global uchar *y, ulong yo, __global const T *x, ulong xo, int n,   \
                           int mode, int flags) {                                               \
    int i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                         \
    C v = LD(x, xo + i);                                                                        \
    y[yo + i] = mode == 0 ? isnan(v) != 0                                                       \
                          : isinf(v) && (v < 0 ? (flags & 1) != 0 : (flags & 2) != 0);          \
  }
DEF_FCLASS(f32, float, float, LD_P)
DEF_FCLASS(f16, half, float, LD_H)
#ifdef OCL_HAVE_F64
DEF_FCLASS(f64, double, double, LD_P)
#endif

/* Clip on integers, the bounds as tensors (absent: the type's range). */
#define DEF_CLIP_I(S, T, K)                                                                     \
  __kernel void clip_##S(__global T *y, ulong yo, __global const T *x, ulong xo,                \
                         __global const T *lo, ulong loo, __global const T *hi, ulong hio,      \
                         int n, int has_lo, int has_hi) {                                       \
    int i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                         \
    T v = x[xo + i];                                                                            \
    if (has_lo && v < lo[loo]) v = lo[loo];                                                     \
    if (has_hi && v > hi[hio]) v = hi[hio];                                                     \
    y[yo + i] = v;                                                                              \
  }
FOR_INTS(DEF_CLIP_I)

/* ---- Cast ---------------------------------------------------------------------------------- */

/* Writes v (of compute type C, kind K: F float, S signed, U unsigned) as dtype `to`. Floats
 * convert to integers saturating (NaN to 0) through 64 bits, then wrap to the narrow type, as
 * the CPU plugin does. */
static ushort f32_to_bf16(float f) {
  uint x = as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (ushort)((x >> 16) | 0x40);
  x += 0x7fffu + ((x >> 16) & 1u);
  return (ushort)(x >> 16);
}
#define HALF_ARG_F(v) (v)
#define HALF_ARG_S(v) ((float)(v))
#define HALF_ARG_U(v) ((float)(v))
#define TO_LONG_F(v) convert_long_sat(v)
#define TO_ULONG_F(v) ((v) >= 0 ? convert_ulong_sat(v) : (ulong)convert_long_sat(v))
#define TO_LONG_S(v) ((long)(v))
#define TO_ULONG_S(v) ((ulong)(v))
#define TO_LONG_U(v) ((long)(v))
#define TO_ULONG_U(v) ((ulong)(v))
#ifdef OCL_HAVE_F64
#define CAST_F64_CASE(v) case 11: ((__global double *)y)[i] = (double)(v); break;
#else
#define CAST_F64_CASE(v)
#endif
#define CAST_STORE(y, i, to, v, K)                                                              \
  switch (to) {                                                                                 \
  case 1: ((__global float *)y)[i] = (float)(v); break;                                         \
  case 2: ((__global uchar *)y)[i] = (uchar)TO_ULONG_##K(v); break;                             \
  case 3: ((__global char *)y)[i] = (char)TO_LONG_##K(v); break;                                \
  case 4: ((__global ushort *)y)[i] = (ushort)TO_ULONG_##K(v); break;                           \
  case 5: ((__global short *)y)[i] = (short)TO_LONG_##K(v); break;                              \
  case 6: ((__global int *)y)[i] = (int)TO_LONG_##K(v); break;                                  \
  case 7: ((__global long *)y)[i] = TO_LONG_##K(v); break;                                      \
  case 9: ((__global uchar *)y)[i] = (v) != 0; break;                                           \
  case 10: vstore_half(HALF_ARG_##K(v), i, (__global half *)y); break;                        \
  CAST_F64_CASE(v)                                                                              \
  case 12: ((__global uint *)y)[i] = (uint)TO_ULONG_##K(v); break;                              \
  case 13: ((__global ulong *)y)[i] = TO_ULONG_##K(v); break;                                   \
  case 16: ((__global ushort *)y)[i] = f32_to_bf16((float)(v)); break;                          \
  }

/* y (dtype `to`, element offset yo) = x (storage T) converted. */
#define DEF_CAST(S, T, C, LD, K)                                                                \
  __kernel void cast_##S(__global uchar *y, ulong yo, __global const T *x, ulong xo, int n,     \
                         int to) {                                                              \
    int i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                         \
    C v = LD(x, xo + i);                                                                        \
    ulong o = yo + i;                                                                           \
    CAST_STORE(y, o, to, v, K)                                                                  \
  }
#define LD_BF(p, i) as_float((uint)(p)[i] << 16)
#define DEF_CAST_I(S, T, K) DEF_CAST(S, T, T, LD_P, K)
FOR_INTS(DEF_CAST_I)
DEF_CAST(f32, float, float, LD_P, F)
DEF_CAST(f16, half, float, LD_H, F)
DEF_CAST(bf16, ushort, float, LD_BF, F)
#ifdef OCL_HAVE_F64
DEF_CAST(f64, double, double, LD_P, F)
#endif

/* ---- Reductions of other dtypes, ArgMax/ArgMin, CumSum ------------------------------------ */

/* Integer reductions: the modes that stay integers (sum, max, min, prod, sum of squares, L1),
 * wrapping as numpy does. */
#define DEF_REDUCE_I(S, T, K)                                                                   \
  __kernel void reduce_##S(__global T *y, ulong yo, __global const T *x, ulong xo,              \
                           __global const int *p, int mode) {                                   \
    RED_HEAD()                                                                                  \
    T acc = mode == RED_PROD ? (T)1 : (T)0;                                                     \
    for (int r = 0; r < R; r++) {                                                               \
      RED_OFFSET()                                                                              \
      T v = x[xo + off];                                                                        \
      if (r == 0 && (mode == RED_MAX || mode == RED_MIN)) acc = v;                              \
      switch (mode) {                                                                           \
      case RED_MAX: acc = v > acc ? v : acc; break;                                             \
      case RED_MIN: acc = v < acc ? v : acc; break;                                             \
      case RED_PROD: acc = (T)((ulong)acc * (ulong)v); break;                                   \
      case RED_SUMSQ: acc = (T)((ulong)acc + (ulong)v * (ulong)v); break;                       \
      case RED_L1: acc = (T)((ulong)acc + (ulong)(v < 0 ? (T)(0UL - (ulong)v) : v)); break;     \
      default: acc = (T)((ulong)acc + (ulong)v); break;                                         \
      }                                                                                         \
    }                                                                                           \
    y[yo + i] = acc;                                                                            \
  }
FOR_INTS(DEF_REDUCE_I)

#ifdef OCL_HAVE_F64
DEF_REDUCE_F(f64, double)
#endif

/* ArgMax (is_max 1) or ArgMin along an axis of length len, elements `inner` apart; int64
 * output. Ties keep the first index (the last with select_last). Floats follow numpy: a NaN
 * wins (the first one, or the last with select_last). */
#define DEF_ARG(S, T, LD, ISNAN)                                                                \
  __kernel void arg_##S(__global long *y, ulong yo, __global const T *x, ulong xo, int outer,   \
                        int len, int inner, int is_max, int last) {                             \
    int i = get_global_id(0);                                                                   \
    if (i >= outer * inner) return;                                                             \
    int o = i / inner, in = i % inner;                                                          \
    long base = xo + (long)o * len * inner + in;                                                \
    T best = LD(x, base);                                                                       \
    int arg = 0;                                                                                \
    bool bnan = ISNAN(best);                                                                    \
    for (int k = 1; k < len; k++) {                                                             \
      T v = LD(x, base + (long)k * inner);                                                      \
      bool take;                                                                                \
      if (ISNAN(v)) take = last || !bnan;                                                       \
      else if (bnan) take = false;                                                              \
      else take = is_max ? (last ? v >= best : v > best) : (last ? v <= best : v < best);       \
      if (take) {                                                                               \
        best = v;                                                                               \
        arg = k;                                                                                \
        bnan = ISNAN(v);                                                                        \
      }                                                                                         \
    }                                                                                           \
    y[yo + i] = arg;                                                                            \
  }
#define NOT_NAN(v) false
#define IS_NAN(v) isnan(v)
#define DEF_ARG_I(S, T, K) DEF_ARG(S, T, LD_P, NOT_NAN)
FOR_INTS(DEF_ARG_I)
DEF_ARG(f32, float, LD_P, IS_NAN)
#ifdef OCL_HAVE_F64
DEF_ARG(f64, double, LD_P, IS_NAN)
#endif

/* CumSum along the axis that the scalar tensor `ax` (int32 or int64) holds, read here since it
 * need not be a constant: one work item per (outer, inner) line. p: [rank, dims[rank]]. */
#define DEF_CUMSUM(S, T, ADD)                                                                   \
  __kernel void cumsum_##S(__global T *y, ulong yo, __global const T *x, ulong xo,              \
                           __global const uchar *ax, ulong axo, int ax64,                       \
                           __global const int *p, int exclusive, int reverse) {                 \
    int i = get_global_id(0);                                                                   \
    int rank = p[0];                                                                            \
    long a = ax64 ? ((__global const long *)ax)[axo] : ((__global const int *)ax)[axo];         \
    if (a < 0) a += rank;                                                                       \
    if (a < 0 || a >= rank) return;                                                             \
    int outer = 1, inner = 1, len = p[1 + a];                                                   \
    for (int d = 0; d < rank; d++) {                                                            \
      if (d < a) outer *= p[1 + d];                                                             \
      if (d > a) inner *= p[1 + d];                                                             \
    }                                                                                           \
    if (i >= outer * inner) return;                                                             \
    int o = i / inner, in = i % inner;                                                          \
    long base = (long)o * len * inner + in;                                                     \
    T acc = (T)0;                                                                               \
    for (int j = 0; j < len; j++) {                                                             \
      int k = reverse ? len - 1 - j : j;                                                        \
      T v = x[xo + base + (long)k * inner];                                                     \
      if (!exclusive) acc = ADD(T, acc, v);                                                     \
      y[yo + base + (long)k * inner] = acc;                                                     \
      if (exclusive) acc = ADD(T, acc, v);                                                      \
    }                                                                                           \
  }
#define ADD_F(T, a, b) ((a) + (b))
#define ADD_I(T, a, b) (T)((ulong)(a) + (ulong)(b))
DEF_CUMSUM(f32, float, ADD_F)
DEF_CUMSUM(i32, int, ADD_I)
DEF_CUMSUM(i64, long, ADD_I)
DEF_CUMSUM(u32, uint, ADD_I)
DEF_CUMSUM(u64, ulong, ADD_I)
#ifdef OCL_HAVE_F64
DEF_CUMSUM(f64, double, ADD_F)
#endif

/* ---- More data movement, by element size ------------------------------------------------- */

/* Trilu on the last two axes (rows x cols): keeps col - row >= k (upper) or <= k (lower),
 * zeroes the rest. k comes from an int64 tensor when has_k. */
#define DEF_TRILU(T, S)                                                                         \
  __kernel void trilu_##S(__global T *y, ulong yo, __global const T *x, ulong xo,               \
                          __global const long *kp, ulong ko, int n, int rows, int cols,         \
                          int upper, int has_k) {                                               \
    int i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                         \
    long k = has_k ? kp[ko] : 0;                                                                \
    long c = i % cols, r = (i / cols) % rows;                                                   \
    bool keep = upper ? c - r >= k : c - r <= k;                                                \
    y[yo + i] = keep ? x[xo + i] : (T)0;                                                        \
  }

/* Tile: y[o] = x[o_d mod in_d per dim]. p: [n, rank, out_dims, in_dims]. */
#define DEF_TILE(T, S)                                                                          \
  __kernel void tile_##S(__global T *y, ulong yo, __global const T *x, ulong xo,                \
                         __global const int *p) {                                               \
    int i = get_global_id(0);                                                                   \
    int n = p[0], rank = p[1];                                                                  \
    if (i >= n) return;                                                                         \
    int rem = i, off = 0, stride = 1;                                                           \
    for (int d = rank - 1; d >= 0; d--) {                                                       \
      int od = p[2 + d], id = p[2 + rank + d];                                                  \
      off += ((rem % od) % id) * stride;                                                        \
      rem /= od;                                                                                \
      stride *= id;                                                                             \
    }                                                                                           \
    y[yo + i] = x[xo + off];                                                                    \
  }

/* GatherElements: y has the indices' shape; along `axis` the coordinate is the index.
 * p: [n, rank, axis, axis_len, idx_dims[rank], x_strides[rank]]. */
#define DEF_GATHER_EL(T, S, I, IS)                                                              \
  __kernel void gather_el_##S##_##IS(__global T *y, ulong yo, __global const T *x, ulong xo,    \
                                     __global const I *idx, ulong io, __global const int *p) {  \
    int i = get_global_id(0);                                                                   \
    int n = p[0], rank = p[1], axis = p[2], alen = p[3];                                        \
    if (i >= n) return;                                                                         \
    long v = (long)idx[io + i];                                                                 \
    if (v < 0) v += alen;                                                                       \
    if (v < 0 || v >= alen) {                                                                   \
      y[yo + i] = (T)0;                                                                         \
      return;                                                                                   \
    }                                                                                           \
    int rem = i;                                                                                \
    long off = 0;                                                                               \
    for (int d = rank - 1; d >= 0; d--) {                                                       \
      int dim = p[4 + d];                                                                       \
      int k = rem % dim;                                                                        \
      rem /= dim;                                                                               \
      off += (long)(d == axis ? (int)v : k) * p[4 + rank + d];                                  \
    }                                                                                           \
    y[yo + i] = x[xo + off];                                                                    \
  }

/* ScatterElements with reduction none: y (already a copy of the data) takes each update at
 * its index; one work item per update. p as gather_el's with the updates' dims. */
#define DEF_SCATTER_EL(T, S, I, IS)                                                             \
  __kernel void scatter_el_##S##_##IS(__global T *y, ulong yo, __global const T *u, ulong uo,   \
                                      __global const I *idx, ulong io, __global const int *p) { \
    int i = get_global_id(0);                                                                   \
    int n = p[0], rank = p[1], axis = p[2], alen = p[3];                                        \
    if (i >= n) return;                                                                         \
    long v = (long)idx[io + i];                                                                 \
    if (v < 0) v += alen;                                                                       \
    if (v < 0 || v >= alen) return;                                                             \
    int rem = i;                                                                                \
    long off = 0;                                                                               \
    for (int d = rank - 1; d >= 0; d--) {                                                       \
      int dim = p[4 + d];                                                                       \
      int k = rem % dim;                                                                        \
      rem /= dim;                                                                               \
      off += (long)(d == axis ? (int)v : k) * p[4 + rank + d];                                  \
    }                                                                                           \
    y[yo + off] = u[uo + i];                                                                    \
  }

/* GatherND: each index tuple of k int64 values picks a slice of `slice` elements.
 * p: [n, slice, k, tuples_per_batch, batch_stride, dims[k], strides[k]]. */
#define DEF_GATHER_ND(T, S)                                                                     \
  __kernel void gather_nd_##S(__global T *y, ulong yo, __global const T *x, ulong xo,           \
                              __global const long *idx, ulong io, __global const int *p) {      \
    int i = get_global_id(0);                                                                   \
    int n = p[0], slice = p[1], k = p[2], tpb = p[3], bstride = p[4];                           \
    if (i >= n) return;                                                                         \
    int t = i / slice, s = i % slice;                                                           \
    long off = (long)(t / tpb) * bstride + s;                                                   \
    for (int j = 0; j < k; j++) {                                                               \
      long v = idx[io + (long)t * k + j];                                                       \
      if (v < 0) v += p[5 + j];                                                                 \
      if (v < 0 || v >= p[5 + j]) {                                                             \
        y[yo + i] = (T)0;                                                                       \
        return;                                                                                 \
      }                                                                                         \
      off += v * p[5 + k + j];                                                                  \
    }                                                                                           \
    y[yo + i] = x[xo + off];                                                                    \
  }

/* ScatterND with reduction none: y (a copy of the data) takes each update slice. p as
 * gather_nd's (n counts update elements). */
#define DEF_SCATTER_ND(T, S)                                                                    \
  __kernel void scatter_nd_##S(__global T *y, ulong yo, __global const T *u, ulong uo,          \
                               __global const long *idx, ulong io, __global const int *p) {     \
    int i = get_global_id(0);                                                                   \
    int n = p[0], slice = p[1], k = p[2];                                                       \
    if (i >= n) return;                                                                         \
    int t = i / slice, s = i % slice;                                                           \
    long off = s;                                                                               \
    for (int j = 0; j < k; j++) {                                                               \
      long v = idx[io + (long)t * k + j];                                                       \
      if (v < 0) v += p[5 + j];                                                                 \
      if (v < 0 || v >= p[5 + j]) return;                                                       \
      off += v * p[5 + k + j];                                                                  \
    }                                                                                           \
    y[yo + off] = u[uo + i];                                                                    \
  }

/* EyeLike: ones (the bit pattern `one` of the output dtype) where col - row == k. */
#define DEF_EYE(T, S)                                                                           \
  __kernel void eye_##S(__global T *y, ulong yo, int n, int cols, int k, ulong one) {           \
    int i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                         \
    y[yo + i] = (i % cols) - (i / cols) == k ? (T)one : (T)0;                                   \
  }

#define DEF_MOVE2(T, S)                                                                         \
  DEF_EYE(T, S)                                                                                 \
  DEF_TRILU(T, S)                                                                               \
  DEF_TILE(T, S)                                                                                \
  DEF_GATHER_EL(T, S, long, i64)                                                                \
  DEF_GATHER_EL(T, S, int, i32)                                                                 \
  DEF_SCATTER_EL(T, S, long, i64)                                                               \
  DEF_SCATTER_EL(T, S, int, i32)                                                                \
  DEF_GATHER_ND(T, S)                                                                           \
  DEF_SCATTER_ND(T, S)

DEF_MOVE2(uchar, u8)
DEF_MOVE2(ushort, u16)
DEF_MOVE2(uint, u32)
DEF_MOVE2(ulong, u64)

/* Scatter with a reduction (add 1, mul 2, max 3, min 4) on float32: one work item walks every
 * update in order, so duplicate indices combine deterministically. `nd` selects ScatterND's
 * indexing (p as scatter_nd's) over ScatterElements' (p as scatter_el's). */
static float scatter_combine(int red, float a, float b) {
  switch (red) {
  case 1: return a + b;
  case 2: return a * b;
  case 3: return fmax(a, b);
  case 4: return fmin(a, b);
  }
  return b;
}
#define DEF_SCATTER_RED(I, IS)                                                                  \
  __kernel void scatter_red_f32_##IS(__global float *y, ulong yo, __global const float *u,      \
                                     ulong uo, __global const I *idx, ulong io,                 \
                                     __global const int *p, int red, int nd) {                  \
    if (get_global_id(0) != 0) return;                                                          \
    int n = p[0];                                                                               \
    for (int i = 0; i < n; i++) {                                                               \
      long off = 0;                                                                             \
      bool ok = true;                                                                           \
      if (nd) {                                                                                 \
        int slice = p[1], k = p[2];                                                             \
        int t = i / slice;                                                                      \
        off = i % slice;                                                                        \
        for (int j = 0; j < k && ok; j++) {                                                     \
          long v = (long)idx[io + (long)t * k + j];                                             \
          if (v < 0) v += p[5 + j];                                                             \
          ok = v >= 0 && v < p[5 + j];                                                          \
          off += v * p[5 + k + j];                                                              \
        }                                                                                       \
      } else {                                                                                  \
        int rank = p[1], axis = p[2], alen = p[3];                                              \
        long v = (long)idx[io + i];                                                             \
        if (v < 0) v += alen;                                                                   \
        ok = v >= 0 && v < alen;                                                                \
        int rem = i;                                                                            \
        for (int d = rank - 1; d >= 0; d--) {                                                   \
          int dim = p[4 + d];                                                                   \
          int k = rem % dim;                                                                    \
          rem /= dim;                                                                           \
          off += (long)(d == axis ? (int)v : k) * p[4 + rank + d];                              \
        }                                                                                       \
      }                                                                                         \
      if (ok) y[yo + off] = scatter_combine(red, y[yo + off], u[uo + i]);                       \
    }                                                                                           \
  }
DEF_SCATTER_RED(long, i64)
DEF_SCATTER_RED(int, i32)

/* ---- More neural-network ops (float32) ----------------------------------------------------- */

/* InstanceNormalization: one work item per (n, c) over `spatial` elements. */
__kernel void instnorm_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                           __global const float *scale, ulong so, __global const float *bias,
                           ulong bo, int nc, int C, int spatial, float eps) {
  int i = get_global_id(0);
  if (i >= nc) return;
  int c = i % C;
  __global const float *xp = x + xo + (long)i * spatial;
  __global float *yp = y + yo + (long)i * spatial;
  float mean = 0.0f;
  for (int k = 0; k < spatial; k++) mean += xp[k];
  mean /= (float)spatial;
  float var = 0.0f;
  for (int k = 0; k < spatial; k++) {
    float d = xp[k] - mean;
    var += d * d;
  }
  var /= (float)spatial;
  float a = rsqrt(var + eps) * scale[so + c], b = bias[bo + c];
  for (int k = 0; k < spatial; k++) yp[k] = (xp[k] - mean) * a + b;
}

/* LRN across channels: y = x / (bias + alpha / size * sum of squares in the window)^beta, the
 * window [c - (size - 1) / 2, c + size / 2]. */
__kernel void lrn_f32(__global float *y, ulong yo, __global const float *x, ulong xo, int n,
                      int C, int spatial, int size, float alpha, float beta, float bias) {
  int i = get_global_id(0);
  if (i >= n) return;
  int s = i % spatial, c = (i / spatial) % C, b = i / (spatial * C);
  int lo = max(0, c - (size - 1) / 2), hi = min(C - 1, c + size / 2);
  float sum = 0.0f;
  for (int k = lo; k <= hi; k++) {
    float v = x[xo + ((long)b * C + k) * spatial + s];
    sum += v * v;
  }
  y[yo + i] = x[xo + i] / pow(bias + alpha / (float)size * sum, beta);
}

/* ConvTranspose 2-D (1-D runs with H = 1), one output element per work item: the sum over the
 * input positions whose stride-spread kernel window covers it.
 * p: [N, C, H, W, M, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, group, has_bias]; W is
 * [C, M / group, KH, KW]. */
__kernel void convt2d_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                          __global const float *w, ulong wo, __global const float *bias,
                          ulong bo, __global const int *p) {
  int N = p[0], C = p[1], H = p[2], W = p[3], M = p[4], OH = p[5], OW = p[6];
  int KH = p[7], KW = p[8], sh = p[9], sw = p[10], ph = p[11], pw = p[12], dh = p[13],
      dw = p[14], group = p[15];
  int i = get_global_id(0);
  if (i >= N * M * OH * OW) return;
  int ow = i % OW, oh = (i / OW) % OH, m = (i / (OW * OH)) % M, n = i / (OW * OH * M);
  int cg = C / group, mg = M / group, g = m / mg, mi = m % mg;
  float acc = p[16] ? bias[bo + m] : 0.0f;
  for (int kh = 0; kh < KH; kh++) {
    int th = oh + ph - kh * dh;
    if (th < 0 || th % sh) continue;
    int ih = th / sh;
    if (ih >= H) continue;
    for (int kw = 0; kw < KW; kw++) {
      int tw = ow + pw - kw * dw;
      if (tw < 0 || tw % sw) continue;
      int iw = tw / sw;
      if (iw >= W) continue;
      for (int ci = 0; ci < cg; ci++) {
        int c = g * cg + ci;
        acc = fma(x[xo + (((long)n * C + c) * H + ih) * W + iw],
                  w[wo + (((long)c * mg + mi) * KH + kh) * KW + kw], acc);
      }
    }
  }
  y[yo + i] = acc;
}

/* GridSample (opset 16) on [N, C, H, W] with a [N, HO, WO, 2] grid: one work item per output
 * pixel, looping over channels. mode 0 bilinear, 1 nearest, 2 bicubic; pad 0 zeros, 1 border,
 * 2 reflection. The coordinate rules follow PyTorch's grid_sampler, as the CPU plugin's
 * (devices/cpu/detect.c), in float rather than double. */
static float gs_unnormalize(float g, int size, int align) {
  return align ? (g + 1.0f) / 2.0f * (float)(size - 1) : ((g + 1.0f) * (float)size - 1.0f) / 2.0f;
}
static float gs_reflect(float x, float twice_low, float twice_high) {
  if (twice_low == twice_high) return 0.0f;
  float lo = twice_low / 2.0f, span = (twice_high - twice_low) / 2.0f;
  x = fabs(x - lo);
  float extra = fmod(x, span), flips = floor(x / span);
  return fmod(flips, 2.0f) == 0.0f ? extra + lo : span - extra + lo;
}
static float gs_pad_coord(float x, int size, int pad, int align) {
  if (pad == 1) return fmin(fmax(x, 0.0f), (float)(size - 1));
  if (pad == 2) {
    x = align ? gs_reflect(x, 0.0f, 2.0f * (float)(size - 1))
              : gs_reflect(x, -1.0f, 2.0f * (float)size - 1.0f);
    return fmin(fmax(x, 0.0f), (float)(size - 1));
  }
  return x;
}
static bool gs_index(float x, int size, int *out) {
  if (!(x >= 0.0f && x < (float)size)) return false;
  *out = (int)x;
  return true;
}
static float gs_cubic1(float x, float a) { return ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f; }
static float gs_cubic2(float x, float a) {
  return ((a * x - 5.0f * a) * x + 8.0f * a) * x - 4.0f * a;
}
static void gs_coeffs(float t, float *c) {
  c[0] = gs_cubic2(t + 1.0f, -0.75f);
  c[1] = gs_cubic1(t, -0.75f);
  c[2] = gs_cubic1(1.0f - t, -0.75f);
  c[3] = gs_cubic2(2.0f - t, -0.75f);
}

__kernel void gridsample_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                             __global const float *grid, ulong go, __global const int *p) {
  int N = p[0], C = p[1], H = p[2], W = p[3], HO = p[4], WO = p[5];
  int mode = p[6], pad = p[7], align = p[8];
  int i = get_global_id(0);
  if (i >= N * HO * WO) return;
  int ox = i % WO, oy = (i / WO) % HO, b = i / (WO * HO);
  float fx = gs_unnormalize(grid[go + 2 * (long)i], W, align);
  float fy = gs_unnormalize(grid[go + 2 * (long)i + 1], H, align);
  int pos[16];
  float wt[16];
  int nt = 0, ix, iy;
  if (H > 0 && W > 0) {
    if (mode == 2) {
      float x0 = floor(fx), y0 = floor(fy), cx[4], cy[4];
      gs_coeffs(fx - x0, cx);
      gs_coeffs(fy - y0, cy);
      for (int a = 0; a < 4; a++) {
        if (!gs_index(gs_pad_coord(y0 - 1.0f + (float)a, H, pad, align), H, &iy)) continue;
        for (int c = 0; c < 4; c++)
          if (gs_index(gs_pad_coord(x0 - 1.0f + (float)c, W, pad, align), W, &ix)) {
            pos[nt] = iy * W + ix;
            wt[nt++] = cy[a] * cx[c];
          }
      }
    } else {
      fx = gs_pad_coord(fx, W, pad, align);
      fy = gs_pad_coord(fy, H, pad, align);
      if (mode == 1) {
        if (gs_index(rint(fx), W, &ix) && gs_index(rint(fy), H, &iy)) {
          pos[nt] = iy * W + ix;
          wt[nt++] = 1.0f;
        }
      } else {
        float x0 = floor(fx), y0 = floor(fy), wx = fx - x0, wy = fy - y0;
        for (int a = 0; a < 2; a++) {
          if (!gs_index(y0 + (float)a, H, &iy)) continue;
          for (int c = 0; c < 2; c++)
            if (gs_index(x0 + (float)c, W, &ix)) {
              pos[nt] = iy * W + ix;
              wt[nt++] = (a ? wy : 1.0f - wy) * (c ? wx : 1.0f - wx);
            }
        }
      }
    }
  }
  for (int c = 0; c < C; c++) {
    __global const float *xp = x + xo + ((long)b * C + c) * H * W;
    float acc = 0.0f;
    for (int k = 0; k < nt; k++) acc += wt[k] * xp[pos[k]];
    y[yo + (((long)b * C + c) * HO + oy) * WO + ox] = acc;
  }
}

/* QuantizeLinear from float32 to an 8-bit T: y = saturate(round(x / scale) + zero point), the
 * division in float, clamping before rounding to nearest even, NaN to the low end of the range,
 * as the CPU plugin (devices/cpu/quant.c). Scale and zero point are per tensor (D = 1) or per
 * index d of the axis in x seen as [outer, D, inner]. */
#define DEF_QUANT(T, S)                                                                         \
  __kernel void quantize_##S(__global T *y, ulong yo, __global const float *x, ulong xo,        \
                             __global const float *scale, ulong so, __global const T *zp,       \
                             ulong zo, int n, int D, int inner, int has_zp, int qlo, int qhi) { \
    int i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                         \
    int d = (i / inner) % D;                                                                    \
    int z = has_zp ? (int)zp[zo + d] : 0;                                                       \
    float lo = (float)(qlo - z), hi = (float)(qhi - z);                                         \
    float v = x[xo + i] / scale[so + d];                                                        \
    v = isnan(v) ? lo : fmin(fmax(v, lo), hi);                                                  \
    y[yo + i] = (T)((int)rint(v) + z);                                                          \
  }
DEF_QUANT(uchar, u8)
DEF_QUANT(char, i8)

/* DequantizeLinear to float32: y = (x - zero point) * scale, the difference in 64 bits. */
#define DEF_DEQUANT(T, S)                                                                       \
  __kernel void dequantize_##S(__global float *y, ulong yo, __global const T *x, ulong xo,      \
                               __global const float *scale, ulong so, __global const T *zp,     \
                               ulong zo, int n, int D, int inner, int has_zp) {                 \
    int i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                         \
    int d = (i / inner) % D;                                                                    \
    long z = has_zp ? (long)zp[zo + d] : 0;                                                     \
    y[yo + i] = (float)((long)x[xo + i] - z) * scale[so + d];                                   \
  }
DEF_DEQUANT(uchar, u8)
DEF_DEQUANT(char, i8)
DEF_DEQUANT(int, i32)
