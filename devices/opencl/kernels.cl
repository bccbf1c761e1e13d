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

/* Gather along an axis: y[o, j, k] = x[o, idx[j], k]; negative indices count from the end.
 * An index out of range gives zero and records `node` in err[0] (the kernels that index with
 * data do so: the plugin reads the flag after the run and fails it, naming the node). */
#define DEF_GATHER(T, S, I, IS)                                                                 \
  __kernel void gather_##S##_##IS(__global T *y, ulong yo, __global const T *x, ulong xo,       \
                                  __global const I *idx, ulong io, int outer, int axis_len,     \
                                  int n_idx, int inner, __global int *err, int node) {          \
    int i = get_global_id(0);                                                                   \
    if (i >= outer * n_idx * inner) return;                                                     \
    int k = i % inner, j = (i / inner) % n_idx, o = i / (inner * n_idx);                        \
    long v = (long)idx[io + j];                                                                 \
    if (v < 0) v += axis_len;                                                                   \
    if (v < 0 || v >= axis_len) {                                                               \
      err[0] = node;                                                                            \
      y[yo + i] = (T)0;                                                                         \
      return;                                                                                   \
    }                                                                                           \
    y[yo + i] = x[xo + ((long)o * axis_len + v) * inner + k];                                   \
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

/* Where element i of a GatherElements or ScatterElements lands in the data, its index being v
 * (negative counts from the end); -1 when v is out of range. p: [n, rank, axis, axis_len,
 * idx_dims[rank], x_strides[rank]]. */
static long el_offset(int i, long v, __global const int *p) {
  int rank = p[1], axis = p[2], alen = p[3];
  if (v < 0) v += alen;
  if (v < 0 || v >= alen) return -1;
  int rem = i;
  long off = 0;
  for (int d = rank - 1; d >= 0; d--) {
    int dim = p[4 + d];
    int k = rem % dim;
    rem /= dim;
    off += (long)(d == axis ? (int)v : k) * p[4 + rank + d];
  }
  return off;
}

/* Where index tuple t (k values of type I at idx) of a GatherND or ScatterND points in the
 * data, relative to its batch; -1 when a value is out of range. p: [n, slice, k,
 * tuples_per_batch, batch_stride, dims[k], strides[k]]. */
#define DEF_ND_OFFSET(I, IS)                                                                    \
  static long nd_offset_##IS(__global const I *idx, long t, __global const int *p) {            \
    int k = p[2];                                                                               \
    long off = 0;                                                                               \
    for (int j = 0; j < k; j++) {                                                               \
      long v = (long)idx[t * k + j];                                                            \
      if (v < 0) v += p[5 + j];                                                                 \
      if (v < 0 || v >= p[5 + j]) return -1;                                                    \
      off += v * p[5 + k + j];                                                                  \
    }                                                                                           \
    return off;                                                                                 \
  }
DEF_ND_OFFSET(long, i64)
DEF_ND_OFFSET(int, i32)

/* GatherElements: y has the indices' shape; along `axis` the coordinate is the index
 * (p as el_offset's). */
#define DEF_GATHER_EL(T, S, I, IS)                                                              \
  __kernel void gather_el_##S##_##IS(__global T *y, ulong yo, __global const T *x, ulong xo,    \
                                     __global const I *idx, ulong io, __global const int *p,    \
                                     __global int *err, int node) {                             \
    int i = get_global_id(0);                                                                   \
    if (i >= p[0]) return;                                                                      \
    long off = el_offset(i, (long)idx[io + i], p);                                              \
    if (off < 0) err[0] = node;                                                                 \
    y[yo + i] = off < 0 ? (T)0 : x[xo + off];                                                   \
  }

/* ScatterElements with reduction none: y (already a copy of the data) takes each update at
 * its index; one work item per update. p as gather_el's with the updates' dims. */
#define DEF_SCATTER_EL(T, S, I, IS)                                                             \
  __kernel void scatter_el_##S##_##IS(__global T *y, ulong yo, __global const T *u, ulong uo,   \
                                      __global const I *idx, ulong io, __global const int *p,   \
                                      __global int *err, int node) {                            \
    int i = get_global_id(0);                                                                   \
    if (i >= p[0]) return;                                                                      \
    long off = el_offset(i, (long)idx[io + i], p);                                              \
    if (off < 0)                                                                                \
      err[0] = node;                                                                            \
    else                                                                                        \
      y[yo + off] = u[uo + i];                                                                  \
  }

/* GatherND: each index tuple of k int64 values picks a slice of `slice` elements (p as
 * nd_offset's). */
#define DEF_GATHER_ND(T, S)                                                                     \
  __kernel void gather_nd_##S(__global T *y, ulong yo, __global const T *x, ulong xo,           \
                              __global const long *idx, ulong io, __global const int *p,        \
                              __global int *err, int node) {                                    \
    int i = get_global_id(0);                                                                   \
    int slice = p[1], tpb = p[3], bstride = p[4];                                               \
    if (i >= p[0]) return;                                                                      \
    int t = i / slice;                                                                          \
    long off = nd_offset_i64(idx + io, t, p);                                                   \
    if (off < 0) err[0] = node;                                                                 \
    y[yo + i] = off < 0 ? (T)0 : x[xo + (long)(t / tpb) * bstride + off + i % slice];           \
  }

/* ScatterND with reduction none: y (a copy of the data) takes each update slice. p as
 * gather_nd's (n counts update elements). */
#define DEF_SCATTER_ND(T, S)                                                                    \
  __kernel void scatter_nd_##S(__global T *y, ulong yo, __global const T *u, ulong uo,          \
                               __global const long *idx, ulong io, __global const int *p,       \
                               __global int *err, int node) {                                   \
    int i = get_global_id(0);                                                                   \
    int slice = p[1];                                                                           \
    if (i >= p[0]) return;                                                                      \
    long off = nd_offset_i64(idx + io, i / slice, p);                                           \
    if (off < 0)                                                                                \
      err[0] = node;                                                                            \
    else                                                                                        \
      y[yo + off + i % slice] = u[uo + i];                                                      \
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
                                     __global const int *p, int red, int nd, __global int *err, \
                                     int node) {                                                \
    if (get_global_id(0) != 0) return;                                                          \
    int n = p[0];                                                                               \
    for (int i = 0; i < n; i++) {                                                               \
      long off = nd ? nd_offset_##IS(idx + io, i / p[1], p)                                     \
                    : el_offset(i, (long)idx[io + i], p);                                       \
      if (off < 0) {                                                                            \
        err[0] = node;                                                                          \
        continue;                                                                               \
      }                                                                                         \
      if (nd) off += i % p[1];                                                                  \
      y[yo + off] = scatter_combine(red, y[yo + off], u[uo + i]);                               \
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

/* ---- Recurrent layers (LSTM, GRU, RNN) ---------------------------------------------------
 *
 * ops_rnn.c describes the launches. Every kernel takes the same int block p (ops_rnn.c's RP_*):
 * [kind (0 RNN, 1 GRU, 2 LSTM), dirs, seq, batch, input, hidden, layout1, reverse, has_clip,
 *  clip bits, input_forget, linear_before_reset, has_b, has_p, has_y, has_h0, has_c0, has_lens,
 *  lens_is_int64, has_yh, has_yc, then per direction and function: kind, alpha bits, beta bits,
 *  then whether W and R are transposed].
 * The state buffers h, c and rh are [dirs, batch, hidden] whatever the layout. */

#define RNN_GRU 1
#define RNN_LSTM 2

/* Activation codes: the order of ops_rnn.c's rnn_acts. */
static float rnn_act(__global const int *p, int d, int k, float x) {
  __global const int *a = p + 21 + (d * 3 + k) * 3;
  float al = as_float(a[1]), be = as_float(a[2]);
  switch (a[0]) {
  case 0: return x > 0.0f ? x : 0.0f;
  case 1: return tanh(x);
  case 2: return x >= 0.0f ? 1.0f / (1.0f + exp(-x)) : exp(x) / (1.0f + exp(x));
  case 3: return al * x + be;
  case 4: return x >= 0.0f ? x : al * x;
  case 5: return x > al ? x : 0.0f;
  case 6: return al * tanh(be * x);
  case 7: return fmin(fmax(al * x + be, 0.0f), 1.0f);
  case 8: return x >= 0.0f ? x : al * expm1(x);
  case 9: return x / (1.0f + fabs(x));
  case 10: return x > 0.0f ? x + log1p(exp(-x)) : log1p(exp(x));
  }
  return x;
}

static float rnn_clip(__global const int *p, float x) {
  if (!p[8]) return x;
  float c = as_float(p[9]);
  return fmin(fmax(x, -c), c);
}

/* sum of a[k] * b[k * stride]: b is a row of W or R in the layout ops_rnn.c chose (stride 1
 * row-major, or gates * hidden when transposed). */
static float rnn_dot(__global const float *a, __global const float *b, int n, int stride) {
  float acc = 0.0f;
  for (int k = 0; k < n; k++) acc = fma(a[k], b[(long)k * stride], acc);
  return acc;
}

/* Offset of (direction d, batch b) in initial_h, initial_c, Y_h and Y_c. */
static int rnn_state_off(__global const int *p, int d, int b) {
  return (p[6] ? b * p[1] + d : d * p[3] + b) * p[5];
}

/* W or R copied into the layout ops_rnn.c chose, when they are not constants (constants are
 * laid out once, on the host): dst[m][c][r] = src[m][r][c] for `mats` matrices of rows x cols
 * when transpose, else a plain copy. */
__kernel void rnn_transpose(__global float *dst, __global const float *src, ulong so, int mats,
                            int rows, int cols, int transpose) {
  int i = get_global_id(0);
  if (i >= mats * rows * cols) return;
  if (!transpose) {
    dst[i] = src[so + i];
    return;
  }
  int r = i % rows, c = (i / rows) % cols, m = i / (rows * cols);
  dst[i] = src[so + ((long)m * rows + r) * cols + c];
}

/* Element (row, k) of direction d's W or R, in the layout p[39] chose: row-major
 * [dirs, rows, n] (p[39] = 0) or transposed [dirs, n, rows]. */
#define RNN_ROW(base, d, row, rows, n, p)                                                      \
  ((base) + (long)(d) * (rows) * (n) + (long)(row) * ((p)[39] ? 1 : (n)))
#define RNN_KS(rows, p) ((p)[39] ? (rows) : 1)

/* Initial state and the sequence lengths (int32, clamped to [0, seq]); a work item per
 * (direction, batch entry, hidden unit). */
__kernel void rnn_init_f32(__global float *h, __global float *c, __global int *lens,
                           __global const float *h0, ulong h0o, __global const float *c0,
                           ulong c0o, __global const int *lin, ulong lo,
                           __global const int *p) {
  int dirs = p[1], seq = p[2], B = p[3], H = p[5];
  int i = get_global_id(0);
  if (i >= dirs * B * H) return;
  int j = i % H, b = (i / H) % B, d = i / (H * B);
  int so = rnn_state_off(p, d, b) + j;
  h[i] = p[15] ? h0[h0o + so] : 0.0f;
  if (p[0] == RNN_LSTM) c[i] = p[16] ? c0[c0o + so] : 0.0f;
  if (i < B) {
    int len = seq;
    if (p[17] && p[18]) {
      long v = ((__global const long *)(lin))[lo + i];
      len = v < 0 ? 0 : v > seq ? seq : (int)v;
    } else if (p[17]) {
      int v = lin[lo + i];
      len = v < 0 ? 0 : v > seq ? seq : v;
    }
    lens[i] = len;
  }
}

/* The input projection of every step: xw[d][t][b][row] = X[t][b] . W[d][row] + Wb[d][row]
 * + Rb[d][row], except GRU's Rbh with linear_before_reset, which rnn_step_f32 adds inside
 * r (.) (H Rh^T + Rbh). wt is W in the layout p[39] chose (RNN_ROW). */
__kernel void rnn_xw_f32(__global float *xw, __global const float *x, ulong xo,
                         __global const float *wt, __global const float *bias, ulong bo,
                         __global const int *p) {
  int dirs = p[1], seq = p[2], B = p[3], I = p[4], H = p[5];
  int G = p[0] == RNN_LSTM ? 4 : p[0] == RNN_GRU ? 3 : 1, GH = G * H;
  int i = get_global_id(0);
  if (i >= dirs * seq * B * GH) return;
  int row = i % GH, b = (i / GH) % B, t = (i / (GH * B)) % seq, d = i / (GH * B * seq);
  int xr = p[6] ? b * seq + t : t * B + b;
  float acc = rnn_dot(x + xo + (long)xr * I, RNN_ROW(wt, d, row, GH, I, p), I, RNN_KS(GH, p));
  if (p[12]) {
    __global const float *wb = bias + bo + (long)d * 2 * GH;
    acc += wb[row];
    if (!(p[0] == RNN_GRU && p[11] && row >= 2 * H)) acc += wb[GH + row];
  }
  xw[i] = acc;
}

/* GRU without linear_before_reset, before rnn_step_f32 of step s: rh = r (.) H_prev. rt is R
 * in the layout p[39] chose (RNN_ROW). */
__kernel void gru_reset_f32(__global const float *xw, __global const float *rt,
                            __global const int *lens, __global const float *hin,
                            __global float *rh, __global const int *p, int s) {
  int dirs = p[1], seq = p[2], B = p[3], H = p[5], GH = 3 * H;
  int i = get_global_id(0);
  if (i >= dirs * B * H) return;
  int k = i % H, b = (i / H) % B, d = i / (H * B);
  int t = (d == 1 || p[7]) ? seq - 1 - s : s;
  if (t >= lens[b]) return;
  __global const float *hp = hin + (long)(d * B + b) * H;
  __global const float *xr = xw + ((long)(d * seq + t) * B + b) * GH;
  float g = xr[H + k] + rnn_dot(hp, RNN_ROW(rt, d, H + k, GH, H, p), H, RNN_KS(GH, p));
  rh[i] = rnn_act(p, d, 0, rnn_clip(p, g)) * hp[k];
}

/* Step s of every direction: a work item per (direction, batch entry, hidden unit) computes
 * all the gates of its unit from hin (one pass over it) and writes hout (and c, in place),
 * and Y. An entry past its length keeps its state and has Y = 0. rt as gru_reset_f32's. */
__kernel void rnn_step_f32(__global const float *xw, __global const float *rt,
                           __global const float *bias, ulong bo, __global const float *pp,
                           ulong po, __global const int *lens, __global const float *hin,
                           __global float *hout, __global float *c, __global const float *rh,
                           __global float *y, ulong yo, __global const int *p, int s) {
  int kind = p[0], dirs = p[1], seq = p[2], B = p[3], H = p[5];
  int G = kind == RNN_LSTM ? 4 : kind == RNN_GRU ? 3 : 1, GH = G * H;
  int i = get_global_id(0);
  if (i >= dirs * B * H) return;
  int j = i % H, b = (i / H) % B, d = i / (H * B);
  int t = (d == 1 || p[7]) ? seq - 1 - s : s;
  __global const float *hp = hin + (long)(d * B + b) * H;
  long yi = p[6] ? (((long)b * seq + t) * dirs + d) * H + j : (((long)t * dirs + d) * B + b) * H + j;
  if (t >= lens[b]) {
    hout[i] = hp[j];
    if (p[14]) y[yo + yi] = 0.0f;
    return;
  }
  __global const float *xr = xw + ((long)(d * seq + t) * B + b) * GH;
  /* rd: row j of direction d's R; gate g's row is g * gs further, element k is k * ks on. */
  __global const float *rd = RNN_ROW(rt, d, j, GH, H, p);
  long gs = (long)H * (p[39] ? 1 : H), ks = RNN_KS(GH, p);
  float hn;
  if (kind == RNN_LSTM) {
    float gi = 0.0f, go = 0.0f, gf = 0.0f, gc = 0.0f;
    for (int k = 0; k < H; k++) {
      float h = hp[k];
      __global const float *rk = rd + k * ks;
      gi = fma(h, rk[0], gi);
      go = fma(h, rk[gs], go);
      gf = fma(h, rk[2 * gs], gf);
      gc = fma(h, rk[3 * gs], gc);
    }
    gi += xr[j];
    go += xr[H + j];
    gf += xr[2 * H + j];
    gc += xr[3 * H + j];
    float cp = c[i];
    __global const float *pd = pp + po + (long)d * 3 * H;
    if (p[13]) {
      gi += pd[j] * cp;
      gf += pd[2 * H + j] * cp;
    }
    gi = rnn_act(p, d, 0, rnn_clip(p, gi));
    gf = p[10] ? 1.0f - gi : rnn_act(p, d, 0, rnn_clip(p, gf));
    gc = rnn_act(p, d, 1, rnn_clip(p, gc));
    float cn = gf * cp + gi * gc;
    c[i] = cn;
    if (p[13]) go += pd[H + j] * cn;
    go = rnn_act(p, d, 0, rnn_clip(p, go));
    hn = go * rnn_act(p, d, 2, cn);
  } else if (kind == RNN_GRU) {
    float hc;
    if (p[11]) {
      float gz = 0.0f, gr = 0.0f, rec = 0.0f;
      for (int k = 0; k < H; k++) {
        float h = hp[k];
        __global const float *rk = rd + k * ks;
        gz = fma(h, rk[0], gz);
        gr = fma(h, rk[gs], gr);
        rec = fma(h, rk[2 * gs], rec);
      }
      float z = rnn_act(p, d, 0, rnn_clip(p, xr[j] + gz));
      float rg = rnn_act(p, d, 0, rnn_clip(p, xr[H + j] + gr));
      if (p[12]) rec += bias[bo + (long)d * 2 * GH + GH + 2 * H + j];
      hc = rnn_act(p, d, 1, rnn_clip(p, xr[2 * H + j] + rg * rec));
      hn = (1.0f - z) * hc + z * hp[j];
    } else {
      __global const float *rr = rh + (long)(d * B + b) * H;
      float gz = 0.0f, rec = 0.0f;
      for (int k = 0; k < H; k++) {
        __global const float *rk = rd + k * ks;
        gz = fma(hp[k], rk[0], gz);
        rec = fma(rr[k], rk[2 * gs], rec);
      }
      float z = rnn_act(p, d, 0, rnn_clip(p, xr[j] + gz));
      hc = rnn_act(p, d, 1, rnn_clip(p, xr[2 * H + j] + rec));
      hn = (1.0f - z) * hc + z * hp[j];
    }
  } else {
    hn = rnn_act(p, d, 0, rnn_clip(p, xr[j] + rnn_dot(hp, rd, H, (int)ks)));
  }
  hout[i] = hn;
  if (p[14]) y[yo + yi] = hn;
}

/* Y_h and Y_c from the final state; 0 for an entry of length 0. */
__kernel void rnn_final_f32(__global float *yh, ulong yho, __global float *yc, ulong yco,
                            __global const float *h, __global const float *c,
                            __global const int *lens, __global const int *p) {
  int dirs = p[1], B = p[3], H = p[5];
  int i = get_global_id(0);
  if (i >= dirs * B * H) return;
  int j = i % H, b = (i / H) % B, d = i / (H * B);
  int so = rnn_state_off(p, d, b) + j;
  bool ran = lens[b] > 0;
  if (p[19]) yh[yho + so] = ran ? h[i] : 0.0f;
  if (p[20]) yc[yco + so] = ran ? c[i] : 0.0f;
}

/* ---- MeanVarianceNormalization, ReverseSequence, MaxUnpool, Einsum (ops_misc.c) ---------- */

/* Offset of element `i` of an odometer over n (dim, stride) pairs q[0..2n), innermost last. */
static long odo_offset(__global const int *q, int n, int i) {
  long off = 0;
  for (int d = n - 1; d >= 0; d--) {
    int dim = q[2 * d];
    off += (long)(i % dim) * q[2 * d + 1];
    i /= dim;
  }
  return off;
}

/* MVN: one work item per group. p: [groups, members, n_keep, n_red, keep (dim, stride)...,
 * red (dim, stride)...]. As the ONNX function body: (x - mean) / (sqrt(variance) + 1e-9). */
__kernel void mvn_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                      __global const int *p) {
  int g = get_global_id(0);
  int groups = p[0], members = p[1], nk = p[2], nr = p[3];
  if (g >= groups) return;
  __global const int *rq = p + 4 + 2 * nk;
  long base = odo_offset(p + 4, nk, g);
  float s = 0.0f;
  for (int m = 0; m < members; m++) s += x[xo + base + odo_offset(rq, nr, m)];
  float mean = s / (float)members, q = 0.0f;
  for (int m = 0; m < members; m++) {
    float d = x[xo + base + odo_offset(rq, nr, m)] - mean;
    q += d * d;
  }
  float inv = 1.0f / (sqrt(q / (float)members) + 1e-9f);
  for (int m = 0; m < members; m++) {
    long o = base + odo_offset(rq, nr, m);
    y[yo + o] = (x[xo + o] - mean) * inv;
  }
}

/* A length read from an int32 or (is64) int64 tensor, clamped to [0, hi]. */
static int clamped_len(__global const int *l, ulong lo, int i, int is64, int hi) {
  long v = is64 ? ((__global const long *)l)[lo + i] : (long)l[lo + i];
  return v < 0 ? 0 : v > hi ? hi : (int)v;
}

/* ReverseSequence over axes 0 and 1. p: [n, d0, d1, inner, batch_axis, lens_is_int64]. */
#define DEF_REVSEQ(T, S)                                                                        \
  __kernel void revseq_##S(__global T *y, ulong yo, __global const T *x, ulong xo,              \
                           __global const int *l, ulong lo, __global const int *p) {            \
    int i = get_global_id(0);                                                                   \
    int n = p[0], d0 = p[1], d1 = p[2], inner = p[3], ba = p[4];                                \
    if (i >= n) return;                                                                         \
    int k = i % inner, i1 = (i / inner) % d1, i0 = i / (inner * d1);                            \
    int b = ba == 0 ? i0 : i1, t = ba == 0 ? i1 : i0;                                           \
    int len = clamped_len(l, lo, b, p[5], ba == 0 ? d1 : d0);                                   \
    int st = t < len ? len - 1 - t : t;                                                         \
    int s0 = ba == 0 ? i0 : st, s1 = ba == 0 ? st : i1;                                         \
    y[yo + i] = x[xo + ((long)s0 * d1 + s1) * inner + k];                                       \
  }

/* MaxUnpool's destination of index v (a flat position in the implied shape), or -1 when it
 * falls outside. p: [n_x, rank, implied[rank], out[rank], same]. */
static int unpool_dest(__global const int *p, long v) {
  int rank = p[1];
  long total = 1;
  for (int a = 0; a < rank; a++) total *= p[2 + a];
  if (v < 0 || v >= total) return -1;
  if (p[2 + 2 * rank]) return (int)v;
  long pos = 0, mul = 1;
  for (int a = rank - 1; a >= 0; a--) {
    int c = (int)(v % p[2 + a]);
    v /= p[2 + a];
    if (c >= p[2 + rank + a]) return -1;
    pos += c * mul;
    mul *= p[2 + rank + a];
  }
  return (int)pos;
}

__kernel void unpool_claim(__global const long *ind, ulong io, __global int *win,
                           __global const int *p) {
  int i = get_global_id(0);
  if (i >= p[0]) return;
  int d = unpool_dest(p, ind[io + i]);
  if (d >= 0) atomic_max(&win[d], i);
}

#define DEF_UNPOOL(T, S)                                                                        \
  __kernel void unpool_zero_##S(__global T *y, ulong yo, __global int *win, int n) {            \
    int i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                         \
    y[yo + i] = (T)0;                                                                           \
    win[i] = -1;                                                                                \
  }                                                                                             \
  __kernel void unpool_write_##S(__global T *y, ulong yo, __global const T *x, ulong xo,        \
                                 __global const long *ind, ulong io, __global const int *win,   \
                                 __global const int *p) {                                       \
    int i = get_global_id(0);                                                                   \
    if (i >= p[0]) return;                                                                      \
    int d = unpool_dest(p, ind[io + i]);                                                        \
    if (d >= 0 && win[d] == i) y[yo + d] = x[xo + i];                                           \
  }

DEF_REVSEQ(uchar, u8)
DEF_REVSEQ(ushort, u16)
DEF_REVSEQ(uint, u32)
DEF_REVSEQ(ulong, u64)
DEF_UNPOOL(uchar, u8)
DEF_UNPOOL(ushort, u16)
DEF_UNPOOL(uint, u32)
DEF_UNPOOL(ulong, u64)

/* Einsum of one or two operands (b is unused with one). p: [nops, n_out, n_red, out_count,
 * red_count, (size, stride_a, stride_b) per output index, then per summed index]. Integers
 * wrap (ACC is ulong), as the CPU plugin's do. */
#define DEF_EINSUM(S, T, ACC)                                                                   \
  __kernel void einsum_##S(__global T *y, ulong yo, __global const T *a, ulong ao,              \
                           __global const T *b, ulong bo, __global const int *p) {              \
    int i = get_global_id(0);                                                                   \
    int nops = p[0], no = p[1], nr = p[2], rc = p[4];                                           \
    if (i >= p[3]) return;                                                                      \
    __global const int *q = p + 5;                                                              \
    long oa = 0, ob = 0;                                                                        \
    int rem = i;                                                                                \
    for (int d = no - 1; d >= 0; d--) {                                                         \
      int c = rem % q[3 * d];                                                                   \
      rem /= q[3 * d];                                                                          \
      oa += (long)c * q[3 * d + 1];                                                             \
      ob += (long)c * q[3 * d + 2];                                                             \
    }                                                                                           \
    q += 3 * no;                                                                                \
    int inner = nr ? q[3 * (nr - 1)] : 1;                                                       \
    int sa = nr ? q[3 * (nr - 1) + 1] : 0, sb = nr ? q[3 * (nr - 1) + 2] : 0;                   \
    ACC acc = 0;                                                                                \
    for (int r = 0; inner && r < rc; r += inner) {                                              \
      long ia = oa, ib = ob;                                                                    \
      int rr = r / inner;                                                                       \
      for (int d = nr - 2; d >= 0; d--) {                                                       \
        int c = rr % q[3 * d];                                                                  \
        rr /= q[3 * d];                                                                         \
        ia += (long)c * q[3 * d + 1];                                                           \
        ib += (long)c * q[3 * d + 2];                                                           \
      }                                                                                         \
      for (int k = 0; k < inner; k++)                                                           \
        acc += nops > 1 ? (ACC)a[ao + ia + (long)k * sa] * (ACC)b[bo + ib + (long)k * sb]       \
                        : (ACC)a[ao + ia + (long)k * sa];                                       \
    }                                                                                           \
    y[yo + i] = (T)acc;                                                                         \
  }

DEF_EINSUM(f32, float, float)
DEF_EINSUM(i32, int, ulong)
DEF_EINSUM(i64, long, ulong)
#ifdef OCL_HAVE_F64
DEF_EINSUM(f64, double, double)
#endif

/* ---- N-D pooling and 3-D convolution (ops_nd.c) -------------------------------------------
 * The spatial axes are padded to three (leading axes of size 1). */

/* How many of the k taps start + t * d (t in [0, k)) fall in [lo, hi). */
static int nd_taps(int start, int k, int d, int lo, int hi) {
  int a = lo - start, b = hi - start;
  int t0 = a <= 0 ? 0 : (a + d - 1) / d, t1 = b <= 0 ? 0 : (b + d - 1) / d;
  t0 = min(t0, k);
  t1 = min(t1, k);
  return t1 > t0 ? t1 - t0 : 0;
}

/* MaxPool (mode 1), AveragePool (mode 0) or LpPool (mode 2, exponent P), one output element per
 * work item. A window with no tap in the input gives 0 (as the CPU plugin). Indices as
 * pool2d_f32's, column-major meaning the first spatial axis fastest. p: [N*C, in[3], out[3],
 * k[3], s[3], pb[3], pe[3], d[3], mode, count_include_pad, P bits]. LP_TERM and LP_ROOT are
 * LpPool's |v|^P and s^(1/P) (plain for P = 1 and 2, as the CPU plugin). */
#define LP_TERM(v, P) ((P) == 2 ? fabs(v) * fabs(v) : (P) == 1 ? fabs(v) : pow(fabs(v), (P)))
#define LP_ROOT(s, P) ((P) == 2 ? sqrt(s) : (P) == 1 ? (s) : pow((s), 1 / (P)))
#define LP_NONE(v, P) (v)
#define DEF_POOLND(S, T, ACC, LD, ST, LPT, LPR)                                                 \
  __kernel void poolnd_##S(__global T *y, ulong yo, __global const T *x, ulong xo,              \
                           __global const int *p, __global long *ind, ulong io, int want_ind,   \
                           int col_major) {                                                     \
    int NC = p[0], I0 = p[1], I1 = p[2], I2 = p[3], O0 = p[4], O1 = p[5], O2 = p[6];            \
    int mode = p[22];                                                                           \
    ACC P = (ACC)as_float(p[24]);                                                               \
    int i = get_global_id(0);                                                                   \
    if (i >= NC * O0 * O1 * O2) return;                                                         \
    int o2 = i % O2, o1 = (i / O2) % O1, o0 = (i / (O2 * O1)) % O0, nc = i / (O2 * O1 * O0);    \
    long base = (long)nc * I0 * I1 * I2;                                                        \
    int z0 = o0 * p[10] - p[13], y0 = o1 * p[11] - p[14], x0 = o2 * p[12] - p[15];              \
    ACC acc = 0;                                                                                \
    int count = 0, best = -1;                                                                   \
    for (int k0 = 0; k0 < p[7]; k0++) {                                                         \
      int iz = z0 + k0 * p[19];                                                                 \
      if (iz < 0 || iz >= I0) continue;                                                         \
      for (int k1 = 0; k1 < p[8]; k1++) {                                                       \
        int iy = y0 + k1 * p[20];                                                               \
        if (iy < 0 || iy >= I1) continue;                                                       \
        for (int k2 = 0; k2 < p[9]; k2++) {                                                     \
          int ix = x0 + k2 * p[21];                                                             \
          if (ix < 0 || ix >= I2) continue;                                                     \
          int at = (iz * I1 + iy) * I2 + ix;                                                    \
          ACC v = (ACC)LD(x, xo + base + at);                                                   \
          if (mode == 0) {                                                                      \
            acc += v;                                                                           \
          } else if (mode == 2) {                                                               \
            acc += LPT(v, P);                                                                   \
          } else if (best < 0 || v > acc) {                                                     \
            acc = v;                                                                            \
            best = at;                                                                          \
          }                                                                                     \
          count++;                                                                              \
        }                                                                                       \
      }                                                                                         \
    }                                                                                           \
    if (mode == 0) {                                                                            \
      if (p[23])                                                                                \
        count = nd_taps(z0, p[7], p[19], -p[13], I0 + p[16]) *                                  \
                nd_taps(y0, p[8], p[20], -p[14], I1 + p[17]) *                                  \
                nd_taps(x0, p[9], p[21], -p[15], I2 + p[18]);                                   \
      acc = count ? acc / (ACC)count : (ACC)0;                                                  \
    } else if (mode == 2) {                                                                     \
      acc = LPR(acc, P);                                                                        \
    }                                                                                           \
    ST(y, yo + i, acc);                                                                         \
    if (want_ind) {                                                                             \
      int at = best < 0 ? 0 : best;                                                             \
      if (col_major) {                                                                          \
        int ix = at % I2, iy = (at / I2) % I1, iz = at / (I2 * I1);                             \
        at = iz + I0 * (iy + I1 * ix);                                                          \
      }                                                                                         \
      ind[io + i] = base + at;                                                                  \
    }                                                                                           \
  }

#define LD_HF(p, i) vload_half((i), (p))
#define ST_HF(p, i, v) vstore_half((v), (i), (p))
DEF_POOLND(f32, float, float, LD_P, ST_P, LP_TERM, LP_ROOT)
DEF_POOLND(f16, half, float, LD_HF, ST_HF, LP_TERM, LP_ROOT)
DEF_POOLND(i8, char, int, LD_P, ST_P, LP_NONE, LP_NONE)
DEF_POOLND(u8, uchar, int, LD_P, ST_P, LP_NONE, LP_NONE)
#ifdef OCL_HAVE_F64
DEF_POOLND(f64, double, double, LD_P, ST_P, LP_TERM, LP_ROOT)
#endif

/* Direct 3-D convolution, one output element per work item.
 * p: [N, C, in[3], OC, out[3], k[3], s[3], pb[3], d[3], group, has_bias]. */
__kernel void conv3d_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                         __global const float *w, ulong wo, __global const float *bias, ulong bo,
                         __global const int *p) {
  int N = p[0], C = p[1], I0 = p[2], I1 = p[3], I2 = p[4], OC = p[5];
  int O0 = p[6], O1 = p[7], O2 = p[8], K0 = p[9], K1 = p[10], K2 = p[11], group = p[21];
  int i = get_global_id(0);
  if (i >= N * OC * O0 * O1 * O2) return;
  int o2 = i % O2, o1 = (i / O2) % O1, o0 = (i / (O2 * O1)) % O0;
  int oc = (i / (O2 * O1 * O0)) % OC, n = i / (O2 * O1 * O0 * OC);
  int cg = C / group, g = oc / (OC / group);
  float acc = p[22] ? bias[bo + oc] : 0.0f;
  int z0 = o0 * p[12] - p[15], y0 = o1 * p[13] - p[16], x0 = o2 * p[14] - p[17];
  __global const float *wp = w + wo + (long)oc * cg * K0 * K1 * K2;
  __global const float *xp = x + xo + ((long)n * C + (long)g * cg) * I0 * I1 * I2;
  for (int ic = 0; ic < cg; ic++)
    for (int k0 = 0; k0 < K0; k0++) {
      int iz = z0 + k0 * p[18];
      if (iz < 0 || iz >= I0) continue;
      for (int k1 = 0; k1 < K1; k1++) {
        int iy = y0 + k1 * p[19];
        if (iy < 0 || iy >= I1) continue;
        for (int k2 = 0; k2 < K2; k2++) {
          int ix = x0 + k2 * p[20];
          if (ix < 0 || ix >= I2) continue;
          acc = MAC(xp[(((long)ic * I0 + iz) * I1 + iy) * I2 + ix],
                    wp[((ic * K0 + k0) * K1 + k1) * K2 + k2], acc);
        }
      }
    }
  y[yo + i] = acc;
}

/* ConvTranspose 3-D, as convt2d_f32 with a depth axis (ops_nn.c).
 * p: [N, C, in[3], M, out[3], k[3], s[3], pb[3], d[3], group, has_bias]; W is
 * [C, M / group, K0, K1, K2]. */
__kernel void convt3d_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                          __global const float *w, ulong wo, __global const float *bias,
                          ulong bo, __global const int *p) {
  int N = p[0], C = p[1], I0 = p[2], I1 = p[3], I2 = p[4], M = p[5];
  int O0 = p[6], O1 = p[7], O2 = p[8], K0 = p[9], K1 = p[10], K2 = p[11], group = p[21];
  int i = get_global_id(0);
  if (i >= N * M * O0 * O1 * O2) return;
  int o2 = i % O2, o1 = (i / O2) % O1, o0 = (i / (O2 * O1)) % O0;
  int m = (i / (O2 * O1 * O0)) % M, n = i / (O2 * O1 * O0 * M);
  int cg = C / group, mg = M / group, g = m / mg, mi = m % mg;
  float acc = p[22] ? bias[bo + m] : 0.0f;
  for (int k0 = 0; k0 < K0; k0++) {
    int t0 = o0 + p[15] - k0 * p[18];
    if (t0 < 0 || t0 % p[12]) continue;
    int i0 = t0 / p[12];
    if (i0 >= I0) continue;
    for (int k1 = 0; k1 < K1; k1++) {
      int t1 = o1 + p[16] - k1 * p[19];
      if (t1 < 0 || t1 % p[13]) continue;
      int i1 = t1 / p[13];
      if (i1 >= I1) continue;
      for (int k2 = 0; k2 < K2; k2++) {
        int t2 = o2 + p[17] - k2 * p[20];
        if (t2 < 0 || t2 % p[14]) continue;
        int i2 = t2 / p[14];
        if (i2 >= I2) continue;
        for (int ci = 0; ci < cg; ci++) {
          int c = g * cg + ci;
          acc = fma(x[xo + ((((long)n * C + c) * I0 + i0) * I1 + i1) * I2 + i2],
                    w[wo + ((((long)c * mg + mi) * K0 + k0) * K1 + k1) * K2 + k2], acc);
        }
      }
    }
  }
  y[yo + i] = acc;
}

/* ---- DynamicQuantizeLinear, Det, RoiAlign (ops_misc.c) ------------------------------------ */

/* Partial extremes of x, starting from 0 (the range must hold 0); NaN is skipped. part gets
 * (min, max) per work item. */
__kernel void dynq_minmax(__global const float *x, ulong xo, __global float *part, int n,
                          int parts) {
  int g = get_global_id(0);
  if (g >= parts) return;
  float mn = 0.0f, mx = 0.0f;
  for (int i = g; i < n; i += parts) {
    float v = x[xo + i];
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  part[2 * g] = mn;
  part[2 * g + 1] = mx;
}

#ifdef OCL_HAVE_F64
/* One work item: the scale ((max - min) / 255 in double, rounded to float once; 1 for an
 * all-zero input) and zero point (round((0 - min) / scale), clamped to [0, 255]), written to
 * the outputs and after the partials for dynq_quantize. */
__kernel void dynq_params(__global float *part, int parts, __global float *ys, ulong yso,
                          __global uchar *yz, ulong yzo, int has_ys, int has_yz) {
  if (get_global_id(0) != 0) return;
  float mn = 0.0f, mx = 0.0f;
  for (int g = 0; g < parts; g++) {
    mn = part[2 * g] < mn ? part[2 * g] : mn;
    mx = part[2 * g + 1] > mx ? part[2 * g + 1] : mx;
  }
  double dmin = mn, dmax = mx;
  float scale = dmax == dmin ? 1.0f : (float)((dmax - dmin) / 255.0);
  double z = (0.0 - dmin) / (double)scale;
  z = z > 0.0 ? z : 0.0;
  z = z < 255.0 ? z : 255.0;
  int zp = (int)rint(z);
  part[2 * parts] = scale;
  part[2 * parts + 1] = (float)zp;
  if (has_ys) ys[yso] = scale;
  if (has_yz) yz[yzo] = (uchar)zp;
}
#endif

/* y = saturate(round(x / scale) + zero point), as quantize_u8. */
__kernel void dynq_quantize(__global uchar *y, ulong yo, __global const float *x, ulong xo,
                            __global const float *part, int parts, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  float s = part[2 * parts];
  int z = (int)part[2 * parts + 1];
  float lo = (float)(0 - z), hi = (float)(255 - z);
  float v = x[xo + i] / s;
  v = isnan(v) ? lo : fmin(fmax(v, lo), hi);
  y[yo + i] = (uchar)((int)rint(v) + z);
}

/* Det: LU with partial pivoting on a copy in a (C, n * n per matrix); the determinant is the
 * product of the pivots, negated per row swap; 0 for an exactly singular matrix. */
#define DEF_DET(S, T, C)                                                                        \
  __kernel void det_##S(__global T *y, ulong yo, __global const T *x, ulong xo,                 \
                        __global C *a, int batch, int n) {                                      \
    int m = get_global_id(0);                                                                   \
    if (m >= batch) return;                                                                     \
    long nn = (long)n * n;                                                                      \
    a += m * nn;                                                                                \
    for (long i = 0; i < nn; i++) a[i] = (C)x[xo + m * nn + i];                                 \
    C det = 1;                                                                                  \
    for (int c = 0; c < n; c++) {                                                               \
      int piv = c;                                                                              \
      C best = fabs(a[(long)c * n + c]);                                                        \
      for (int r = c + 1; r < n; r++)                                                           \
        if (fabs(a[(long)r * n + c]) > best) {                                                  \
          best = fabs(a[(long)r * n + c]);                                                      \
          piv = r;                                                                              \
        }                                                                                       \
      if (best == 0) {                                                                          \
        det = 0;                                                                                \
        break;                                                                                  \
      }                                                                                         \
      if (piv != c) {                                                                           \
        for (int q = 0; q < n; q++) {                                                           \
          C t = a[(long)c * n + q];                                                             \
          a[(long)c * n + q] = a[(long)piv * n + q];                                            \
          a[(long)piv * n + q] = t;                                                             \
        }                                                                                       \
        det = -det;                                                                             \
      }                                                                                         \
      C d = a[(long)c * n + c];                                                                 \
      det *= d;                                                                                 \
      for (int r = c + 1; r < n; r++) {                                                         \
        C f = a[(long)r * n + c] / d;                                                           \
        if (f == 0) continue;                                                                   \
        for (int q = c + 1; q < n; q++) a[(long)r * n + q] -= f * a[(long)c * n + q];           \
      }                                                                                         \
    }                                                                                           \
    y[yo + m] = (T)det;                                                                         \
  }

DEF_DET(f32, float, float)
#ifdef OCL_HAVE_F64
DEF_DET(f32d, float, double)
DEF_DET(f64, double, double)
#endif

/* RoiAlign, one output element (roi, channel, bin) per work item, as onnxruntime samples.
 * p: [R, N, C, H, W, output_height, output_width, sampling_ratio, max_mode, half_pixel,
 *     spatial_scale bits]. */
__kernel void roialign_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                           __global const float *rois, ulong ro, __global const int *bi,
                           ulong bio, int bi64, __global const int *p) {
  int R = p[0], N = p[1], C = p[2], H = p[3], W = p[4], PH = p[5], PW = p[6], ratio = p[7];
  int i = get_global_id(0);
  if (i >= R * C * PH * PW) return;
  int px = i % PW, py = (i / PW) % PH, c = (i / (PW * PH)) % C, r = i / (PW * PH * C);
  long b = bi64 ? ((__global const long *)bi)[bio + r] : (long)bi[bio + r];
  if (b < 0 || b >= N) {
    y[yo + i] = 0.0f;
    return;
  }
  float scale = as_float(p[10]), off = p[9] ? 0.5f : 0.0f;
  __global const float *rr = rois + ro + 4 * (long)r;
  float x0 = rr[0] * scale - off, y0 = rr[1] * scale - off;
  float rw = rr[2] * scale - off - x0, rh = rr[3] * scale - off - y0;
  if (!p[9]) {
    rw = fmax(rw, 1.0f);
    rh = fmax(rh, 1.0f);
  }
  float bh = rh / (float)PH, bw = rw / (float)PW;
  float gh = ratio > 0 ? (float)ratio : ceil(bh), gw = ratio > 0 ? (float)ratio : ceil(bw);
  int ny = gh >= 1.0f ? (int)fmin(gh, 4096.0f) : 0, nx = gw >= 1.0f ? (int)fmin(gw, 4096.0f) : 0;
  float count = ny * nx > 1 ? (float)(ny * nx) : 1.0f;
  __global const float *xp = x + xo + (b * C + c) * (long)H * W;
  float acc = 0.0f;
  for (int iy = 0; iy < ny; iy++) {
    float yy = y0 + (float)py * bh + ((float)iy + 0.5f) * bh / (float)ny;
    for (int ix = 0; ix < nx; ix++) {
      float xx = x0 + (float)px * bw + ((float)ix + 0.5f) * bw / (float)nx;
      float v0 = 0.0f, v1 = 0.0f, v2 = 0.0f, v3 = 0.0f;
      if (H > 0 && W > 0 && yy >= -1.0f && yy <= (float)H && xx >= -1.0f && xx <= (float)W) {
        float sy = yy <= 0.0f ? 0.0f : yy, sx = xx <= 0.0f ? 0.0f : xx;
        int ya = (int)sy, xa = (int)sx, yb, xb;
        if (ya >= H - 1) {
          yb = ya = H - 1;
          sy = (float)ya;
        } else {
          yb = ya + 1;
        }
        if (xa >= W - 1) {
          xb = xa = W - 1;
          sx = (float)xa;
        } else {
          xb = xa + 1;
        }
        float ly = sy - (float)ya, lx = sx - (float)xa, hy = 1.0f - ly, hx = 1.0f - lx;
        float w0 = hy * hx, w1 = hy * lx, w2 = ly * hx, w3 = ly * lx;
        v0 = w0 != 0.0f ? w0 * xp[ya * W + xa] : 0.0f;
        v1 = w1 != 0.0f ? w1 * xp[ya * W + xb] : 0.0f;
        v2 = w2 != 0.0f ? w2 * xp[yb * W + xa] : 0.0f;
        v3 = w3 != 0.0f ? w3 * xp[yb * W + xb] : 0.0f;
      }
      if (p[8]) {
        float m = fmax(fmax(fmax(v0, v1), v2), v3);
        acc = iy == 0 && ix == 0 ? m : fmax(acc, m);
      } else {
        acc += v0 + v1 + v2 + v3;
      }
    }
  }
  y[yo + i] = p[8] ? acc : acc / count;
}

/* ---- Pad (ops_movement.c) ------------------------------------------------------------------
 * mode 0 constant (the value from cv when has_cv, else the bit pattern `fill`), 1 reflect
 * (without repeating the edge, folding as often as needed), 2 edge.
 * p: [n, rank, mode, has_cv, out_dims[rank], in_dims[rank], pads_before[rank]]. */
static long pad_source(int o, int before, int d, int mode) {
  long i = (long)o - before;
  if (i >= 0 && i < d) return i;
  if (mode == 0) return -1;
  if (mode == 2 || d == 1) return i < 0 ? 0 : d - 1;
  long period = 2 * (long)(d - 1);
  i %= period;
  if (i < 0) i += period;
  return i < d ? i : period - i;
}

#define DEF_PAD(T, S)                                                                           \
  __kernel void pad_##S(__global T *y, ulong yo, __global const T *x, ulong xo,                 \
                        __global const T *cv, ulong co, __global const int *p, ulong fill) {    \
    int i = get_global_id(0);                                                                   \
    int n = p[0], rank = p[1], mode = p[2];                                                     \
    if (i >= n) return;                                                                         \
    int rem = i;                                                                                \
    long off = 0, stride = 1;                                                                   \
    for (int d = rank - 1; d >= 0; d--) {                                                       \
      int od = p[4 + d], id = p[4 + rank + d];                                                  \
      long src = pad_source(rem % od, p[4 + 2 * rank + d], id, mode);                           \
      rem /= od;                                                                                \
      if (src < 0) {                                                                            \
        y[yo + i] = p[3] ? cv[co] : (T)fill;                                                    \
        return;                                                                                 \
      }                                                                                         \
      off += src * stride;                                                                      \
      stride *= id;                                                                             \
    }                                                                                           \
    y[yo + i] = x[xo + off];                                                                    \
  }

DEF_PAD(uchar, u8)
DEF_PAD(ushort, u16)
DEF_PAD(uint, u32)
DEF_PAD(ulong, u64)

/* Every element set to the bit pattern `bits` (Dropout's all-true mask). */
#define DEF_FILL(T, S)                                                                          \
  __kernel void fill_##S(__global T *y, ulong yo, int n, ulong bits) {                          \
    int i = get_global_id(0);                                                                   \
    if (i < n) y[yo + i] = (T)bits;                                                             \
  }
DEF_FILL(uchar, u8)
DEF_FILL(uint, u32)

/* ---- Integer products (ops_quant.c) ---------------------------------------------------------
 * MatMulInteger (int32 y) and QLinearMatMul (8-bit y), one output element per work item; the
 * 8-bit tensors are read as uchar and sign-extended where signed. A parameter kind is -1
 * absent, 0 scalar, 1 per row of A / per column of B.
 * p: [M, N, K, batches, obr, sa, sb, sy, qlinear, azp, bzp, as, bs, has_yzp,
 *     odims[obr], adims[obr], bdims[obr]]. */
static int q8(__global const uchar *p, long i, int is_signed) {
  return is_signed ? (int)(char)p[i] : (int)p[i];
}

/* Index of output batch bt in an operand whose batch dims (right-aligned, 1 broadcasts) are
 * dims[obr]. */
static long q_batch(int bt, int obr, __global const int *odims, __global const int *dims) {
  long idx = 0, stride = 1;
  for (int d = obr - 1; d >= 0; d--) {
    int c = bt % odims[d];
    bt /= odims[d];
    if (dims[d] != 1) idx += c * stride;
    stride *= dims[d];
  }
  return idx;
}

__kernel void qmatmul(__global uchar *y, ulong yo, __global const uchar *a, ulong ao,
                      __global const uchar *b, ulong bo, __global const uchar *azp, ulong azo,
                      __global const uchar *bzp, ulong bzo, __global const float *as, ulong aso,
                      __global const float *bs, ulong bso, __global const float *ys, ulong yso,
                      __global const uchar *yzp, ulong yzo, __global const int *p) {
  int M = p[0], N = p[1], K = p[2], obr = p[4];
  int i = get_global_id(0);
  if (i >= p[3] * M * N) return;
  int c = i % N, r = (i / N) % M, bt = i / (N * M);
  long ab = q_batch(bt, obr, p + 14, p + 14 + obr);
  long bb = q_batch(bt, obr, p + 14, p + 14 + 2 * obr);
  int za = p[9] < 0 ? 0 : q8(azp, azo + (p[9] ? r : 0), p[5]);
  int zb = p[10] < 0 ? 0 : q8(bzp, bzo + (p[10] ? c : 0), p[6]);
  __global const uchar *ar = a + ao + (ab * M + r) * K;
  __global const uchar *bc = b + bo + bb * K * N + c;
  uint acc = 0;
  for (int k = 0; k < K; k++)
    acc += (uint)((q8(ar, k, p[5]) - za) * (q8(bc, (long)k * N, p[6]) - zb));
  if (!p[8]) {
    ((__global int *)y)[yo + i] = (int)acc;
    return;
  }
  float mult = as[aso + (p[11] ? r : 0)] * bs[bso + (p[12] ? c : 0)];
  mult = mult / ys[yso];
  int zy = p[13] ? q8(yzp, yzo, p[7]) : 0;
  float lo = (float)((p[7] ? -128 : 0) - zy), hi = (float)((p[7] ? 127 : 255) - zy);
  float f = (float)(int)acc * mult;
  f = f > lo ? f : lo;
  f = f < hi ? f : hi;
  y[yo + i] = (uchar)((int)rint(f) + zy);
}

/* ConvInteger and QLinearConv (ops_nd.c), one output element per work item; p as ops_nd.c
 * writes it: [N, C, in[3], M, out[3], k[3], s[3], pb[3], d[3], group, sx, sw, sy, qlinear,
 * wzp kind, has_xzp, has_bias, ws per channel, has_yzp]. */
__kernel void qconv(__global uchar *y, ulong yo, __global const uchar *x, ulong xo,
                    __global const uchar *w, ulong wo, __global const uchar *xzp, ulong xzo,
                    __global const uchar *wzp, ulong wzo, __global const float *xs, ulong xso,
                    __global const float *ws, ulong wso, __global const float *ys, ulong yso,
                    __global const uchar *yzp, ulong yzo, __global const int *bias, ulong bo,
                    __global const int *p) {
  int N = p[0], C = p[1], I0 = p[2], I1 = p[3], I2 = p[4], M = p[5];
  int O0 = p[6], O1 = p[7], O2 = p[8], K0 = p[9], K1 = p[10], K2 = p[11], group = p[21];
  int i = get_global_id(0);
  if (i >= N * M * O0 * O1 * O2) return;
  int o2 = i % O2, o1 = (i / O2) % O1, o0 = (i / (O2 * O1)) % O0;
  int m = (i / (O2 * O1 * O0)) % M, n = i / (O2 * O1 * O0 * M);
  int cg = C / group, g = m / (M / group);
  int zx = p[27] ? q8(xzp, xzo, p[22]) : 0;
  int zw = p[26] < 0 ? 0 : q8(wzp, wzo + (p[26] ? m : 0), p[23]);
  int z0 = o0 * p[12] - p[15], y0 = o1 * p[13] - p[16], x0 = o2 * p[14] - p[17];
  __global const uchar *wp = w + wo + (long)m * cg * K0 * K1 * K2;
  __global const uchar *xp = x + xo + ((long)n * C + (long)g * cg) * I0 * I1 * I2;
  uint acc = 0;
  for (int ic = 0; ic < cg; ic++)
    for (int k0 = 0; k0 < K0; k0++) {
      int iz = z0 + k0 * p[18];
      if (iz < 0 || iz >= I0) continue;
      for (int k1 = 0; k1 < K1; k1++) {
        int iy = y0 + k1 * p[19];
        if (iy < 0 || iy >= I1) continue;
        for (int k2 = 0; k2 < K2; k2++) {
          int ix = x0 + k2 * p[20];
          if (ix < 0 || ix >= I2) continue;
          int xv = q8(xp, (((long)ic * I0 + iz) * I1 + iy) * I2 + ix, p[22]) - zx;
          int wv = q8(wp, ((ic * K0 + k0) * K1 + k1) * K2 + k2, p[23]) - zw;
          acc += (uint)(xv * wv);
        }
      }
    }
  if (!p[25]) {
    ((__global int *)y)[yo + i] = (int)acc;
    return;
  }
  if (p[28]) acc += (uint)bias[bo + m];
  float mult = xs[xso] * ws[wso + (p[29] ? m : 0)];
  mult = mult / ys[yso];
  int zy = p[30] ? q8(yzp, yzo, p[24]) : 0;
  float lo = (float)((p[24] ? -128 : 0) - zy), hi = (float)((p[24] ? 127 : 255) - zy);
  float f = (float)(int)acc * mult;
  f = f > lo ? f : lo;
  f = f < hi ? f : hi;
  y[yo + i] = (uchar)((int)rint(f) + zy);
}

/* ---- DFT and STFT (ops_signal.c) -----------------------------------------------------------
 * One output bin per work item, a direct sum; the twiddle angle 2 pi (k n mod N) / N in C. */
#define DEF_SIGNAL(S, T, C)                                                                     \
  /* p: [outer, inner, n_sig, comps, len, bins, inverse]; y [outer, bins, inner, 2]. */         \
  __kernel void dft_##S(__global T *y, ulong yo, __global const T *x, ulong xo,                 \
                        __global const int *p) {                                                \
    int outer = p[0], inner = p[1], nsig = p[2], comps = p[3], N = p[4], bins = p[5];           \
    int i = get_global_id(0);                                                                   \
    if (i >= outer * bins * inner) return;                                                      \
    int in = i % inner, k = (i / inner) % bins, o = i / (inner * bins);                         \
    int take = min(nsig, N);                                                                    \
    C sign = p[6] ? (C)1 : (C)-1, re = 0, im = 0;                                               \
    for (int n = 0; n < take; n++) {                                                            \
      long at = (((long)o * nsig + n) * inner + in) * comps;                                    \
      C xr = (C)x[xo + at], xi = comps == 2 ? (C)x[xo + at + 1] : (C)0;                         \
      C ang = sign * (C)2 * (C)M_PI * (C)(((long)k * n) % N) / (C)N;                            \
      C c, s = sincos(ang, &c);                                                                 \
      re += xr * c - xi * s;                                                                    \
      im += xr * s + xi * c;                                                                    \
    }                                                                                           \
    if (p[6]) {                                                                                 \
      re /= (C)N;                                                                               \
      im /= (C)N;                                                                               \
    }                                                                                           \
    y[yo + 2 * (long)i] = (T)re;                                                                \
    y[yo + 2 * (long)i + 1] = (T)im;                                                            \
  }                                                                                             \
  /* p: [batch, frames, bins, length, comps, step, frame_length, has_window];                   \
   * y [batch, frames, bins, 2]. */                                                             \
  __kernel void stft_##S(__global T *y, ulong yo, __global const T *x, ulong xo,                \
                         __global const T *w, ulong wo, __global const int *p) {                \
    int frames = p[1], bins = p[2], L = p[3], comps = p[4], step = p[5], N = p[6];              \
    int i = get_global_id(0);                                                                   \
    if (i >= p[0] * frames * bins) return;                                                      \
    int k = i % bins, f = (i / bins) % frames, b = i / (bins * frames);                         \
    C re = 0, im = 0;                                                                           \
    for (int n = 0; n < N; n++) {                                                               \
      long at = ((long)b * L + (long)f * step + n) * comps;                                     \
      C wv = p[7] ? (C)w[wo + n] : (C)1;                                                        \
      C xr = (C)x[xo + at] * wv, xi = comps == 2 ? (C)x[xo + at + 1] * wv : (C)0;               \
      C ang = (C)-2 * (C)M_PI * (C)(((long)k * n) % N) / (C)N;                                  \
      C c, s = sincos(ang, &c);                                                                 \
      re += xr * c - xi * s;                                                                    \
      im += xr * s + xi * c;                                                                    \
    }                                                                                           \
    y[yo + 2 * (long)i] = (T)re;                                                                \
    y[yo + 2 * (long)i + 1] = (T)im;                                                            \
  }

DEF_SIGNAL(f32, float, float)
#ifdef OCL_HAVE_F64
DEF_SIGNAL(f32d, float, double)
DEF_SIGNAL(f64, double, double)
#endif

/* BatchNormalization in training mode (ops_nn.c). p: [N, C, spatial, has_running_mean,
 * has_running_var, momentum bits]; stats holds the batch mean [C] then the biased variance [C]. */
__kernel void bn_train_stats_f32(__global const float *x, ulong xo, __global float *stats,
                                 __global const float *mean, ulong mo,
                                 __global const float *var, ulong vo, __global float *rm,
                                 ulong rmo, __global float *rv, ulong rvo,
                                 __global const int *p) {
  int N = p[0], C = p[1], sp = p[2];
  int c = get_global_id(0);
  if (c >= C) return;
  float s = 0.0f;
  for (int n = 0; n < N; n++) {
    __global const float *xp = x + xo + ((long)n * C + c) * sp;
    for (int k = 0; k < sp; k++) s += xp[k];
  }
  float cnt = (float)N * (float)sp, mu = cnt > 0.0f ? s / cnt : 0.0f, q = 0.0f;
  for (int n = 0; n < N; n++) {
    __global const float *xp = x + xo + ((long)n * C + c) * sp;
    for (int k = 0; k < sp; k++) q += (xp[k] - mu) * (xp[k] - mu);
  }
  float v = cnt > 0.0f ? q / cnt : 0.0f, m = as_float(p[5]);
  stats[c] = mu;
  stats[C + c] = v;
  if (p[3]) rm[rmo + c] = mean[mo + c] * m + mu * (1.0f - m);
  if (p[4]) rv[rvo + c] = var[vo + c] * m + v * (1.0f - m);
}

__kernel void bn_train_apply_f32(__global float *y, ulong yo, __global const float *x, ulong xo,
                                 __global const float *scale, ulong so,
                                 __global const float *bias, ulong bo,
                                 __global const float *stats, __global const int *p,
                                 float eps) {
  int N = p[0], C = p[1], sp = p[2];
  int i = get_global_id(0);
  if (i >= N * C * sp) return;
  int c = (i / sp) % C;
  float a = scale[so + c] / sqrt(stats[C + c] + eps);
  y[yo + i] = (x[xo + i] - stats[c]) * a + bias[bo + c];
}

/* ---- TopK and OneHot (ops_typed.c) --------------------------------------------------------
 * TopK: p [n, dim, inner, k, largest]; one work item per element of X. BEFORE(a, b) is a
 * strict order on values (NaN above every number for floats); ties go to the lower index. */
#define TOPK_GT_F(a, b) ((isnan(a) && !isnan(b)) || (a) > (b))
#define TOPK_GT_I(a, b) ((a) > (b))
#define DEF_TOPK(S, T, GT)                                                                      \
  __kernel void topk_##S(__global T *yv, ulong yvo, __global long *yi, ulong yio,               \
                         __global const T *x, ulong xo, __global const int *p) {                \
    int i = get_global_id(0);                                                                   \
    int dim = p[1], inner = p[2], k = p[3], largest = p[4];                                     \
    if (i >= p[0]) return;                                                                      \
    int in = i % inner, d = (i / inner) % dim, outer = i / (inner * dim);                       \
    __global const T *row = x + xo + (long)outer * dim * inner + in;                            \
    T v = row[(long)d * inner];                                                                 \
    int rank = 0;                                                                               \
    for (int m = 0; m < dim && rank < k; m++) {                                                 \
      T u = row[(long)m * inner];                                                               \
      bool before = largest ? GT(u, v) : GT(v, u);                                              \
      bool tie = !GT(u, v) && !GT(v, u);                                                        \
      rank += before || (tie && m < d);                                                         \
    }                                                                                           \
    if (rank >= k) return;                                                                      \
    long o = ((long)outer * k + rank) * inner + in;                                             \
    yv[yvo + o] = v;                                                                            \
    yi[yio + o] = d;                                                                            \
  }
DEF_TOPK(f32, float, TOPK_GT_F)
DEF_TOPK(i32, int, TOPK_GT_I)
DEF_TOPK(i64, long, TOPK_GT_I)
DEF_TOPK(u8, uchar, TOPK_GT_I)
DEF_TOPK(i8, char, TOPK_GT_I)
#ifdef OCL_HAVE_F64
DEF_TOPK(f64, double, TOPK_GT_F)
#endif

/* OneHot: p [n, depth, inner (the indices' elements from the axis on), index kind (0 int32,
 * 1 int64, 2 float32)]; vals holds [off, on]. */
#define DEF_ONE_HOT(T, S)                                                                       \
  __kernel void one_hot_##S(__global T *y, ulong yo, __global const int *ind, ulong io,         \
                            __global const T *vals, ulong vo, __global const int *p) {          \
    int i = get_global_id(0);                                                                   \
    int depth = p[1], inner = p[2];                                                             \
    if (i >= p[0]) return;                                                                      \
    int rest = i % inner, pos = (i / inner) % depth, outer = i / (inner * depth);               \
    long j = (long)outer * inner + rest, v;                                                     \
    if (p[3] == 0) {                                                                            \
      v = ind[io + j];                                                                          \
    } else if (p[3] == 1) {                                                                     \
      v = ((__global const long *)ind)[io + j];                                                 \
    } else {                                                                                    \
      float f = as_float(ind[io + j]);                                                          \
      v = (f > -2147483648.0f && f < 2147483648.0f) ? (long)f : -((long)depth + 1);             \
    }                                                                                           \
    if (v < 0) v += depth;                                                                      \
    y[yo + i] = vals[vo + (v == pos ? 1 : 0)];                                                  \
  }
DEF_ONE_HOT(uchar, u8)
DEF_ONE_HOT(ushort, u16)
DEF_ONE_HOT(uint, u32)
DEF_ONE_HOT(ulong, u64)
