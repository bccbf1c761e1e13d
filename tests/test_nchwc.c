/* Unit suite of the CPU plugin's channel-blocked layout (devices/cpu/nchwc.h and plugin.c's
 * assign_layouts): random chains of the layers that run blocked (an image stem, depthwise and
 * 1x1 Convs with their fused activations, residual Adds and squeeze-and-excitation scales,
 * elementwise ops, GlobalAveragePool) mixed with layers that do not (3x3 Convs, MaxPool), with
 * intermediate values as graph outputs now and then, so that layouts meet at every kind of
 * border, and chains open again after a value that must lie NCHW. Each model runs through the
 * public API with the blocked layout (the default on AVX2) and with TESSERA_CPU_NCHWC=0, on 1 and 3
 * threads, and every output is compared with a float64 evaluation of the same graph written here.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/model_builder.h"

static tsr_runtime *rt;

static void setup(void) { ck_assert_ok(tsr_runtime_create(NULL, &rt)); }
static void teardown(void) {
  tsr_runtime_destroy(rt);
  unsetenv("TESSERA_CPU_NCHWC");
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnext(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int64_t rint_in(int64_t lo, int64_t hi) {
  return lo + (int64_t)(rnext() % (uint64_t)(hi - lo + 1));
}

/* Uniform in [-1, 1). */
static float runi(void) { return (float)((double)(rnext() >> 11) / 4503599627370496.0 - 1.0); }

/* ---- The graph and its float64 reference, built side by side ----------------------------- */

enum { MAX_VALS = 96, MAX_OUTS = 4 };

typedef struct val {
  char name[16];
  int64_t dims[4];
  double *data;
} val;

typedef struct net {
  mb_model *m;
  val v[MAX_VALS];
  int nv;
  int outs[MAX_OUTS];
  int nouts;
  int counter;
} net;

static size_t vcount(const val *v) {
  return (size_t)(v->dims[0] * v->dims[1] * v->dims[2] * v->dims[3]);
}

static int new_val(net *n, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  ck_assert_int_lt(n->nv, MAX_VALS);
  val *v = &n->v[n->nv];
  snprintf(v->name, sizeof v->name, "v%d", n->nv);
  v->dims[0] = d0, v->dims[1] = d1, v->dims[2] = d2, v->dims[3] = d3;
  v->data = calloc(vcount(v), sizeof *v->data);
  return n->nv++;
}

static void free_net(net *n) {
  for (int i = 0; i < n->nv; i++)
    free(n->v[i].data);
}

static const char *uniq(net *n, const char *what) {
  static char buf[32];
  snprintf(buf, sizeof buf, "%s%d", what, n->counter++);
  return buf;
}

/* Conv x -> new value: M output channels, square kernel k, stride s, pads p, group g, dilation
 * d. */
static int convd(net *n, int x, int64_t M, int64_t k, int64_t s, int64_t p, int64_t g, bool bias,
                 int64_t d) {
  const val *X = &n->v[x];
  int64_t N = X->dims[0], C = X->dims[1], H = X->dims[2], W = X->dims[3];
  int64_t ek = (k - 1) * d + 1, cg = C / g, mg = M / g;
  int64_t OH = (H + 2 * p - ek) / s + 1, OW = (W + 2 * p - ek) / s + 1;
  int y = new_val(n, N, M, OH, OW);
  X = &n->v[x];
  size_t nw = (size_t)(M * cg * k * k);
  float *w = malloc(nw * sizeof *w), b[1024];
  double scale = 1.5 / sqrt((double)(cg * k * k));
  for (size_t i = 0; i < nw; i++)
    w[i] = (float)(runi() * scale);
  for (int64_t m = 0; m < M; m++)
    b[m] = bias ? 0.2f * runi() : 0.0f;
  char wn[32], bn[32], in[80];
  snprintf(wn, sizeof wn, "%s", uniq(n, "w"));
  snprintf(bn, sizeof bn, "%s", uniq(n, "b"));
  mb_init_f32(n->m, wn, 4, (int64_t[]){M, cg, k, k}, w);
  if (bias)
    mb_init_f32(n->m, bn, 1, (int64_t[]){M}, b);
  snprintf(in, sizeof in, "%s,%s%s%s", X->name, wn, bias ? "," : "", bias ? bn : "");
  mb_node(n->m, "Conv", uniq(n, "conv"), in, n->v[y].name);
  mb_attr_ints(n->m, "kernel_shape", 2, (int64_t[]){k, k});
  mb_attr_ints(n->m, "strides", 2, (int64_t[]){s, s});
  mb_attr_ints(n->m, "pads", 4, (int64_t[]){p, p, p, p});
  mb_attr_int(n->m, "group", g);
  mb_attr_ints(n->m, "dilations", 2, (int64_t[]){d, d});
  double *yd = n->v[y].data;
  for (int64_t b0 = 0; b0 < N; b0++)
    for (int64_t m = 0; m < M; m++)
      for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
          double acc = b[m];
          int64_t grp = m / mg;
          for (int64_t c = 0; c < cg; c++)
            for (int64_t ky = 0; ky < k; ky++)
              for (int64_t kx = 0; kx < k; kx++) {
                int64_t iy = oy * s - p + ky * d, ix = ox * s - p + kx * d;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                  continue;
                acc += (double)w[((m * cg + c) * k + ky) * k + kx] *
                       X->data[((b0 * C + grp * cg + c) * H + iy) * W + ix];
              }
          yd[((b0 * M + m) * OH + oy) * OW + ox] = acc;
        }
  free(w);
  return y;
}

static int conv(net *n, int x, int64_t M, int64_t k, int64_t s, int64_t p, int64_t g, bool bias) {
  return convd(n, x, M, k, s, p, g, bias, 1);
}

typedef enum act { A_RELU, A_CLIP, A_SIGMOID, A_HARDSWISH, A_SILU, A_TANH, N_ACT } act;

static double act_ref(act a, double x) {
  switch (a) {
  case A_RELU: return x < 0 ? 0 : x;
  case A_CLIP: return x < 0 ? 0 : x > 6 ? 6 : x;
  case A_SIGMOID: return 1 / (1 + exp(-x));
  case A_HARDSWISH: {
    double t = x / 6 + 0.5;
    return x * (t < 0 ? 0 : t > 1 ? 1 : t);
  }
  case A_SILU: return x / (1 + exp(-x));
  default: return tanh(x);
  }
}

/* An activation as the exporters write it, which the passes fuse into the Conv before it (or
 * not, after anything else). */
static int activation(net *n, int x, act a) {
  const val *X = &n->v[x];
  int y = new_val(n, X->dims[0], X->dims[1], X->dims[2], X->dims[3]);
  X = &n->v[x];
  const char *xn = X->name, *yn = n->v[y].name;
  switch (a) {
  case A_RELU: mb_node(n->m, "Relu", uniq(n, "relu"), xn, yn); break;
  case A_CLIP: {
    char lo[32], hi[32], in[96];
    snprintf(lo, sizeof lo, "%s", uniq(n, "lo"));
    snprintf(hi, sizeof hi, "%s", uniq(n, "hi"));
    mb_init_f32(n->m, lo, 0, NULL, (float[]){0.0f});
    mb_init_f32(n->m, hi, 0, NULL, (float[]){6.0f});
    snprintf(in, sizeof in, "%s,%s,%s", xn, lo, hi);
    mb_node(n->m, "Clip", uniq(n, "clip"), in, yn);
    break;
  }
  case A_SIGMOID: mb_node(n->m, "Sigmoid", uniq(n, "sig"), xn, yn); break;
  case A_HARDSWISH: mb_node(n->m, "HardSwish", uniq(n, "hsw"), xn, yn); break;
  case A_SILU: {
    char s[32], in[64];
    snprintf(s, sizeof s, "%s", uniq(n, "s"));
    mb_node(n->m, "Sigmoid", uniq(n, "sig"), xn, s);
    snprintf(in, sizeof in, "%s,%s", xn, s);
    mb_node(n->m, "Mul", uniq(n, "mul"), in, yn);
    break;
  }
  default: mb_node(n->m, "Tanh", uniq(n, "tanh"), xn, yn); break;
  }
  for (size_t i = 0; i < vcount(X); i++)
    n->v[y].data[i] = act_ref(a, X->data[i]);
  return y;
}

/* a + b, or a * b with b of [N, C, 1, 1] broadcast over the plane. */
static int binary(net *n, const char *op, int a, int b) {
  const val *A = &n->v[a];
  int y = new_val(n, A->dims[0], A->dims[1], A->dims[2], A->dims[3]);
  A = &n->v[a];
  const val *B = &n->v[b];
  char in[64];
  snprintf(in, sizeof in, "%s,%s", A->name, B->name);
  mb_node(n->m, op, uniq(n, op), in, n->v[y].name);
  size_t sp = (size_t)(A->dims[2] * A->dims[3]);
  bool bc = B->dims[2] * B->dims[3] == 1 && sp > 1;
  for (size_t i = 0; i < vcount(A); i++) {
    double bv = bc ? B->data[i / sp] : B->data[i];
    n->v[y].data[i] = strcmp(op, "Add") == 0 ? A->data[i] + bv : A->data[i] * bv;
  }
  return y;
}

/* Concat of a and b along the channels. */
static int concat(net *n, int a, int b) {
  const val *A = &n->v[a], *B = &n->v[b];
  int64_t N = A->dims[0], Ca = A->dims[1], Cb = B->dims[1], HW = A->dims[2] * A->dims[3];
  int y = new_val(n, N, Ca + Cb, A->dims[2], A->dims[3]);
  A = &n->v[a], B = &n->v[b];
  char in[40];
  snprintf(in, sizeof in, "%s,%s", A->name, B->name);
  mb_node(n->m, "Concat", uniq(n, "cat"), in, n->v[y].name);
  mb_attr_int(n->m, "axis", 1);
  for (int64_t i = 0; i < N; i++) {
    memcpy(n->v[y].data + i * (Ca + Cb) * HW, A->data + i * Ca * HW, Ca * HW * sizeof(double));
    memcpy(n->v[y].data + (i * (Ca + Cb) + Ca) * HW, B->data + i * Cb * HW,
           Cb * HW * sizeof(double));
  }
  return y;
}

static int gap(net *n, int x) {
  const val *X = &n->v[x];
  int y = new_val(n, X->dims[0], X->dims[1], 1, 1);
  X = &n->v[x];
  mb_node(n->m, "GlobalAveragePool", uniq(n, "gap"), X->name, n->v[y].name);
  size_t sp = (size_t)(X->dims[2] * X->dims[3]);
  for (size_t pl = 0; pl < (size_t)(X->dims[0] * X->dims[1]); pl++) {
    double s = 0;
    for (size_t i = 0; i < sp; i++)
      s += X->data[pl * sp + i];
    n->v[y].data[pl] = s / (double)sp;
  }
  return y;
}

/* MaxPool 3x3 / 2 with pads p on every side (taps outside the input are left out). */
static int maxpool(net *n, int x, int64_t p) {
  const val *X = &n->v[x];
  int64_t H = X->dims[2], W = X->dims[3], OH = (H + 2 * p - 3) / 2 + 1,
          OW = (W + 2 * p - 3) / 2 + 1;
  int y = new_val(n, X->dims[0], X->dims[1], OH, OW);
  X = &n->v[x];
  mb_node(n->m, "MaxPool", uniq(n, "pool"), X->name, n->v[y].name);
  mb_attr_ints(n->m, "kernel_shape", 2, (int64_t[]){3, 3});
  mb_attr_ints(n->m, "strides", 2, (int64_t[]){2, 2});
  mb_attr_ints(n->m, "pads", 4, (int64_t[]){p, p, p, p});
  for (size_t pl = 0; pl < (size_t)(X->dims[0] * X->dims[1]); pl++)
    for (int64_t oy = 0; oy < OH; oy++)
      for (int64_t ox = 0; ox < OW; ox++) {
        double m = -INFINITY;
        for (int64_t ky = 0; ky < 3; ky++)
          for (int64_t kx = 0; kx < 3; kx++) {
            int64_t iy = oy * 2 - p + ky, ix = ox * 2 - p + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W)
              continue;
            double v = X->data[(pl * H + iy) * W + ix];
            m = v > m ? v : m;
          }
        n->v[y].data[(pl * OH + oy) * OW + ox] = m;
      }
  return y;
}

static void output(net *n, int v) {
  for (int k = 0; k < n->nouts; k++)
    if (n->outs[k] == v)
      return;
  if (n->nouts < MAX_OUTS) {
    n->outs[n->nouts++] = v;
    mb_output(n->m, n->v[v].name, TSR_DTYPE_FLOAT32);
  }
}

/* ---- Random MobileNet-like chains ----------------------------------------------------- */

static int64_t rand_channels(void) { return 8 * rint_in(1, 6); }

/* One block on x (channels C): returns the new current value. */
static int block(net *n, int x) {
  int64_t C = n->v[x].dims[1], H = n->v[x].dims[2], W = n->v[x].dims[3];
  act a = (act)rint_in(0, N_ACT - 1);
  switch (rint_in(0, 11)) {
  case 0: /* depthwise, 3x3 or 5x5, stride 1 or 2 (while the plane is big enough), now
             and then dilated */
  case 1: {
    int64_t k = rint_in(0, 1) ? 3 : 5, s = H >= 8 && W >= 8 && rint_in(0, 2) == 0 ? 2 : 1;
    int64_t d = H >= 12 && W >= 12 && rint_in(0, 5) == 0 ? 2 : 1;
    int y = convd(n, x, C, k, s, k / 2 * d, C, rint_in(0, 3) != 0, d);
    return rint_in(0, 3) ? activation(n, y, a) : y;
  }
  case 2: /* pointwise, with or without an activation */
  case 3: {
    int y = conv(n, x, rand_channels(), 1, 1, 0, 1, rint_in(0, 3) != 0);
    return rint_in(0, 2) ? activation(n, y, a) : y;
  }
  case 4: { /* inverted residual: pointwise C -> C, Add, perhaps a Relu */
    int y = binary(n, "Add", conv(n, x, C, 1, 1, 0, 1, true), x);
    return rint_in(0, 1) ? activation(n, y, A_RELU) : y;
  }
  case 5: { /* squeeze-and-excitation, then the projection that takes the scale in */
    int64_t r = rint_in(2, C);
    int s = gap(n, x);
    s = activation(n, conv(n, s, r, 1, 1, 0, 1, true), A_RELU);
    s = activation(n, conv(n, s, C, 1, 1, 0, 1, true), A_SIGMOID);
    return conv(n, binary(n, "Mul", x, s), rand_channels(), 1, 1, 0, 1, true);
  }
  case 6: /* an elementwise op of the plane's own shape */
    return rint_in(0, 1) ? activation(n, x, A_TANH) : binary(n, "Add", x, x);
  case 7: /* a layer that writes NCHW: a 3x3 Conv, or MaxPool, which reads blocked too */
    if (H >= 5 && W >= 5 && rint_in(0, 1))
      return maxpool(n, x, rint_in(0, 1));
    return conv(n, x, rand_channels(), 3, 1, 1, 1, true);
  case 8: { /* grouped, eight channels a group (RegNet's), 3x3 or 5x5, stride 1 to 3, padded
               or not */
    int64_t k = rint_in(0, 3) ? 3 : 5, s = H >= 12 && W >= 12 ? rint_in(1, 3) : 1;
    int64_t p = rint_in(0, 3) ? k / 2 : rint_in(0, k / 2);
    if (H + 2 * p < k || W + 2 * p < k)
      p = k / 2;
    int y = conv(n, x, C, k, s, p, C / 8, rint_in(0, 3) != 0);
    return rint_in(0, 3) ? activation(n, y, a) : y;
  }
  case 9: { /* RegNet's block: 1x1, grouped 3x3 (strided), 1x1 plus the projection of x, a
               strided 1x1 (or x itself when nothing changes), then Relu */
    int64_t M = rand_channels(), s = H >= 8 && W >= 8 && rint_in(0, 1) ? 2 : 1;
    int y = activation(n, conv(n, x, M, 1, 1, 0, 1, true), A_RELU);
    y = activation(n, conv(n, y, M, 3, s, 1, M / 8, true), A_RELU);
    y = conv(n, y, M, 1, 1, 0, 1, true);
    int r = s == 1 && M == C ? x : conv(n, x, M, 1, s, 0, 1, rint_in(0, 1) != 0);
    return activation(n, binary(n, "Add", y, r), A_RELU);
  }
  case 10: { /* SqueezeNet's fire module: a squeeze, then 1x1 and 3x3 expands concatenated */
    int s = activation(n, conv(n, x, rand_channels(), 1, 1, 0, 1, true), A_RELU);
    int e1 = activation(n, conv(n, s, rand_channels(), 1, 1, 0, 1, true), A_RELU);
    int e3 = activation(n, conv(n, s, rand_channels(), 3, 1, 1, 1, true), A_RELU);
    return rint_in(0, 1) ? concat(n, e1, e3) : concat(n, e3, x);
  }
  default: /* an intermediate value read by the host too */ output(n, x); return x;
  }
}

/* Runs the model in b on x with the blocked layout on or off and `threads` threads, and compares
 * every output with the reference. */
static void run_and_compare(const net *n, const void *b, size_t size, const float *x, bool nchwc,
                            int threads, int seed) {
  setenv("TESSERA_CPU_NCHWC", nchwc ? "1" : "0", 1);
  tsr_model *model = NULL;
  ck_assert_ok(tsr_model_load_memory(rt, b, size, NULL, &model));
  tsr_session_options so = {sizeof so};
  so.threads = threads;
  tsr_session *s = NULL;
  ck_assert_ok(tsr_session_create(rt, model, &so, &s));
  tsr_tensor *xt = NULL;
  ck_assert_ok(tsr_tensor_create(rt, TSR_DTYPE_FLOAT32, 4, n->v[0].dims, &xt));
  memcpy(tsr_tensor_data(xt), x, vcount(&n->v[0]) * sizeof *x);
  const char *names[] = {"x"};
  const tsr_tensor *ins[] = {xt};
  tsr_tensor *outs[MAX_OUTS] = {0};
  ck_assert_ok(tsr_session_run(s, NULL, 1, names, ins, (size_t)n->nouts, NULL, outs));
  for (int k = 0; k < n->nouts; k++) {
    const val *v = &n->v[n->outs[k]];
    ck_assert_uint_eq(tsr_tensor_element_count(outs[k]), vcount(v));
    const float *got = tsr_tensor_data(outs[k]);
    for (size_t i = 0; i < vcount(v); i++) {
      double want = v->data[i], tol = 2e-4 * (1 + fabs(want));
      ck_assert_msg(fabs((double)got[i] - want) <= tol,
                    "case %d (blocked %d, %d threads): output %s [%lld %lld %lld %lld] element "
                    "%zu is %.8g, float64 says %.8g",
                    seed, nchwc, threads, v->name, (long long)v->dims[0], (long long)v->dims[1],
                    (long long)v->dims[2], (long long)v->dims[3], i, got[i], want);
    }
    tsr_tensor_destroy(outs[k]);
  }
  tsr_tensor_destroy(xt);
  tsr_session_destroy(s);
  tsr_model_destroy(model);
}

static void random_case(int seed) {
  rng_state = 0x9e3779b97f4a7c15u ^ ((uint64_t)seed * 0x2545f4914f6cdd1du);
  net n = {0};
  n.m = mb_new(17);
  int64_t N = rint_in(1, 2), C0 = rint_in(1, 4), H = rint_in(9, 40), W = rint_in(9, 80);
  int x = new_val(&n, N, C0, H, W);
  snprintf(n.v[x].name, sizeof n.v[x].name, "x");
  mb_input(n.m, "x", TSR_DTYPE_FLOAT32, 4, n.v[x].dims);
  size_t nx = vcount(&n.v[x]);
  float *xf = malloc(nx * sizeof *xf);
  for (size_t i = 0; i < nx; i++)
    n.v[x].data[i] = xf[i] = runi();
  /* An image stem, stride 1 or 2, then a chain of blocks (rows of up to 80 pixels: depthwise
   * layers read wide planes in place and narrow ones through a padded copy). */
  int cur = conv(&n, x, rand_channels(), 3, rint_in(1, 2), rint_in(0, 1), 1, true);
  if (rint_in(0, 3))
    cur = activation(&n, cur, (act)rint_in(0, N_ACT - 1));
  for (int64_t k = rint_in(3, 10); k > 0; k--)
    cur = block(&n, cur);
  if (rint_in(0, 2))
    output(&n, gap(&n, cur));
  if (n.nouts == 0 || rint_in(0, 2) == 0)
    output(&n, cur);
  size_t size = 0;
  void *b = mb_serialize(n.m, &size);
  mb_free(n.m);
  for (int nchwc = 1; nchwc >= 0; nchwc--)
    for (int threads = 1; threads <= 3; threads += 2)
      run_and_compare(&n, b, size, xf, nchwc, threads, seed);
  free(b);
  free(xf);
  free_net(&n);
}

START_TEST(random_chains) {
  for (int seed = 0; seed < 60; seed++)
    random_case(seed);
}
END_TEST

/* The graph input x, [N, 3, H, W] of random values, also returned as floats in *xf (the
 * caller frees them). */
static int image_input(net *n, int64_t N, int64_t H, int64_t W, float **xf) {
  int x = new_val(n, N, 3, H, W);
  snprintf(n->v[x].name, sizeof n->v[x].name, "x");
  mb_input(n->m, "x", TSR_DTYPE_FLOAT32, 4, n->v[x].dims);
  *xf = malloc(vcount(&n->v[x]) * sizeof **xf);
  for (size_t i = 0; i < vcount(&n->v[x]); i++)
    n->v[x].data[i] = (*xf)[i] = runi();
  return x;
}

/* Serializes n's model (and frees its builder), runs it on xf blocked on 1 and 3 threads and
 * NCHW on 1 against the reference, and returns the model's bytes (*size of them), which the
 * caller frees. */
static void *finish_and_compare(net *n, const float *xf, int seed, size_t *size) {
  void *b = mb_serialize(n->m, size);
  mb_free(n->m);
  run_and_compare(n, b, *size, xf, true, 1, seed);
  run_and_compare(n, b, *size, xf, true, 3, seed);
  run_and_compare(n, b, *size, xf, false, 1, seed);
  return b;
}

/* A MobileNetV2 block as torchvision writes it, at the sizes where the kernels change paths:
 * 1x1 layers over planes of 7x7 (fewer pixels than a row of tiles) and 13x17. */
START_TEST(fixed_blocks) {
  for (int seed = 1000; seed < 1006; seed++) {
    rng_state = 0x51ed270b27b2c4a1u ^ (uint64_t)seed;
    net n = {0};
    n.m = mb_new(17);
    int64_t H = seed % 2 ? 14 : 26, W = seed % 2 ? 14 : 34;
    float *xf;
    int x = image_input(&n, 1, H, W, &xf);
    int s = activation(&n, conv(&n, x, 32, 3, 2, 1, 1, true), A_CLIP);
    int e = activation(&n, conv(&n, s, 96, 1, 1, 0, 1, true), A_CLIP);
    int d = activation(&n, conv(&n, e, 96, 3, 1, 1, 96, true), A_CLIP);
    int p = conv(&n, d, 32, 1, 1, 0, 1, true);
    int r = binary(&n, "Add", p, s);
    int q = activation(&n, conv(&n, r, 40, 1, 1, 0, 1, true), A_SILU);
    output(&n, gap(&n, q));
    size_t size = 0;
    void *b = finish_and_compare(&n, xf, seed, &size);
    free(b);
    free(xf);
    free_net(&n);
  }
}
END_TEST

/* Where a value is read both by a Conv and by something that needs NCHW (here the host: a graph
 * output), it lies NCHW, and the Conv opens a blocked chain from it, converting it first: a
 * depthwise layer whose 1x1 and pool follow, and a 3x3 Convolution by Winograd, which runs
 * blocked even with no chain after it (its output is an output too). The plan's notes say
 * which nodes read NCHW; the outputs match the float64 evaluation, blocked or not, on 1 and 3
 * threads. */
START_TEST(chains_open_at_shared_values) {
  for (int seed = 2000; seed < 2004; seed++) {
    rng_state = 0x2545f4914f6cdd1du ^ (uint64_t)seed;
    net n = {0};
    n.m = mb_new(17);
    float *xf;
    int x = image_input(&n, 1 + seed % 2, 20 + seed % 3, 24, &xf);
    int s = activation(&n, conv(&n, x, 16, 3, 1, 1, 1, true), A_RELU);
    output(&n, s);
    int d = activation(&n, conv(&n, s, 16, 3, 1, 1, 16, true), A_RELU);
    output(&n, gap(&n, conv(&n, d, 24, 1, 1, 0, 1, true)));
    output(&n, conv(&n, s, 48, 3, 1, 1, 1, true)); /* 16 * 48 / (16 + 48) = 12: Winograd */
    size_t size = 0;
    void *b = finish_and_compare(&n, xf, seed, &size);

    setenv("TESSERA_CPU_NCHWC", "1", 1);
    tsr_model *model = NULL;
    ck_assert_ok(tsr_model_load_memory(rt, b, size, NULL, &model));
    tsr_session *ss = NULL;
    ck_assert_ok(tsr_session_create(rt, model, NULL, &ss));
    tsr_plan *plan = NULL;
    ck_assert_ok(tsr_session_plan(ss, 0, NULL, NULL, NULL, &plan));
    bool blocked = false, dw_opens = false, wino_alone = false;
    for (size_t i = 0; i < tsr_plan_node_count(plan); i++) {
      tsr_plan_node_info ni = {sizeof ni};
      ck_assert_ok(tsr_plan_get_node(plan, i, &ni));
      blocked = blocked || (strstr(ni.kernel, "stem") && strstr(ni.kernel, "NCHW8c"));
      dw_opens =
          dw_opens || (strstr(ni.kernel, "depthwise") && strstr(ni.kernel, "NCHW8c, reads NCHW") &&
                       !strstr(ni.kernel, "writes"));
      wino_alone = wino_alone ||
                   (strstr(ni.kernel, "winograd") && strstr(ni.kernel, "reads and writes NCHW"));
    }
    if (blocked) { /* an AVX2 machine: the blocked layout is on */
      ck_assert_msg(dw_opens, "case %d: the depthwise Conv does not open a chain", seed);
      ck_assert_msg(wino_alone, "case %d: the Winograd Conv does not run blocked", seed);
    }
    tsr_plan_destroy(plan);
    tsr_session_destroy(ss);
    tsr_model_destroy(model);
    free(b);
    free(xf);
    free_net(&n);
  }
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("nchwc");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, random_chains);
  tcase_add_test(tc, fixed_blocks);
  tcase_add_test(tc, chains_open_at_shared_values);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tsr_test_run_suite(suite()) != 0; }
