/* 3x3 stride-1 convolution by Winograd's F(2x2, 3x3) or F(4x4, 3x3) over the channel-blocked
 * layout NCHW8c (nchwc.h), float32, AVX2 + FMA: what conv_wino.c does for NCHW, for the 3x3
 * layers inside a blocked chain.
 *
 * Each 2x2 block of outputs (a tile) is Y = A^T [ sum_c (G g G^T) . (B^T d B) ] A (conv_wino.c
 * says more). Over large planes the tiles are 4x4 instead, from 6x6 patches, with 36 products
 * (their matrices, cost and accuracy below, where the transforms are; cpu_nchwc_wino_tile
 * chooses, and the weights are packed for the tile chosen). Below, for 2x2 tiles: the 16
 * products over the channels,
 * one per element xi of the 4x4 transformed tile, are P[xi] = U[xi] V[xi], U[xi] M x C and
 * V[xi] C x tiles. In NCHW8c the eight channels of one input pixel are one vector, so the
 * transforms run eight channels at a time with no gathers: the 16 vectors of a patch in, 16 out.
 * And if V[xi] is stored blocked, [C/8][tiles][8], its tiles are exactly the pixels of the
 * blocked 1x1 kernel's input (conv_nchwc_pw.c): each product is cpu_nchwc_pw_product over the
 * tiles, its output blocked [M/8][tiles][8] in turn, whose 16 vectors of a tile the output
 * transform reads back. Nothing is transposed or packed per run; U is packed once as 16 1x1
 * layers' weights.
 *
 * An image is taken a band of tile rows at a time, so that the band's V and products (16 * (C +
 * M) floats a tile) stay in L2 between the transforms and the products. Threads take items of
 * (image, band), each with buffers of its own; with few images the bands shrink (never below
 * one tile row) until every thread has a few. Each band reads all of U (16 * C * M floats):
 * few tiles over many channels (7x7 over 512) are bound by that stream, as in conv_wino.c.
 *
 * Tiles whose 4x4 patch crosses the input's edge (padding, and the last tile of an odd side)
 * take zeros there through a slower loader; the interior ones load the patch directly. Outputs
 * of a last tile that fall outside the output are computed and dropped. The bias and the
 * piecewise-linear activations are applied in registers as the output transform stores; the
 * smooth ones (sigmoid, silu, gelu, gelu_tanh) over each finished pair of output rows, in L1.
 *
 * Measured on one Zen 4 core (EPYC), best of runs alternating in one process with relu and a
 * bias, conv_wino.c over NCHW against this over NCHW8c (the layout changes that the NCHW one
 * would need inside a blocked chain not counted): 64 -> 64 over 56x56 1.37 -> 1.06 ms, 128 ->
 * 128 over 28x28 1.30 -> 1.02, 256 -> 256 over 14x14 1.33 -> 1.01, 16 -> 64 over 55x55 0.47 ->
 * 0.31, 64 -> 256 over 13x13 0.37 -> 0.25; 512 -> 512 over 7x7 1.7-1.9 both ways (16 tiles,
 * 32 flops for each float of U's 16 MB read from memory: some 75 GFLOP/s). The products take some
 * 85% of the time (the 1x1 kernel's tiles at about 110 GFLOP/s), the transforms the rest; the
 * smooth activations add 6-9%. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "devices/cpu/nchwc.h"

#ifdef CPU_NCHWC_HAVE_AVX2

#include <immintrin.h>

#include "devices/cpu/vmath_avx2.h"

#define WINO_AVX2 __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))
/* -O2 does not peel these small constant loops by itself; unpeeled, the 16 vectors of a tile
 * would live in memory. */
#define WINO_UNROLL _Pragma("GCC unroll 16")

enum { WINO_T = 16 };  /* elements of a transformed tile, F(2x2, 3x3) */
enum { WINO4_T = 36 }; /* and F(4x4, 3x3) */
/* The 1x1 kernel's packed weights (conv_nchwc_pw.c, cpu_nchwc_pw_pack): panel q holds, for
 * each input channel c, the 16 output channels 16q .. 16q + 15 (zero past M). */
enum { WINO_NR = 16 };
/* Floats of V and products one band may hold: 256 Ki floats, 1 MiB, the size of L2 on the
 * machines this was measured on (as conv_wino.c's bands). */
#define WINO_BAND_FLOATS ((size_t)1 << 18)
/* For 4x4 tiles three quarters of that: the pitches that keep the 36 matrices apart in L1
 * pad them more (some 10-15% over 56x56 and 28x28), which took a band of the full size past
 * L2. */
#define WINO4_BAND_FLOATS ((size_t)3 << 16)
/* Items per thread that the bands are cut to when there are several threads. */
enum { WINO_ITEMS_PER_THREAD = 4 };

bool cpu_nchwc_wino_applies(const conv_plan *p) {
  const nn_window *w = &p->w;
  if (p->transpose || w->nsp != 2 || p->G != 1 || p->C == 0 || p->M == 0 || p->C % CPU_NCHWC != 0 ||
      p->M % CPU_NCHWC != 0 || p->cg != p->C || p->mg != p->M)
    return false;
  if (w->in[0] != 1 || w->out[0] != 1 || w->k[0] != 1 || w->s[0] != 1 || w->pb[0] != 0 ||
      w->pe[0] != 0 || w->d[0] != 1)
    return false;
  return w->k[1] == 3 && w->k[2] == 3 && w->s[1] == 1 && w->s[2] == 1 && w->d[1] == 1 &&
         w->d[2] == 1 && w->pb[1] >= 0 && w->pb[2] >= 0;
}

/* 4x4 tiles over output planes of 24x24 and more, 2x2 tiles below. Single layers in the
 * blocked layout (`bench/conv_layers.py --only blocked_3x3_56,...`, best of 6 rounds, tile 2
 * -> 4, one thread then two, Zen 4): 64 -> 64 over 56x56 1.05 -> 0.71 ms and 0.62 -> 0.40,
 * 128 -> 128 over 28x28 1.01 -> 0.66 and 0.62 -> 0.49, SqueezeNet's 16 -> 64 over 55x55 0.35
 * -> 0.21 and 32 -> 128 over 27x27 0.28 -> 0.17; but 256 -> 256 over 14x14 1.02 -> 1.02 (16
 * tiles a plane, 30% of their outputs past the edge) and 512 -> 512 over 7x7 2.06 -> 2.22.
 * Inside ResNet-50 (`tessera bench --profile`, TESSERA_CPU_WINOGRAD_TILE=2 and 4 alternating,
 * noisy spells, so as ranges) the 56x56 and 28x28 layers gained as much (the six 7.2-8.3 ->
 * 5.4-6.7 ms summed over runs, 3.8-5.5 -> 2.7-3.3 at two threads), while the 14x14 ones lost,
 * the more when neighbours loaded the machine (5 layers 6.4-8.2 -> 5.7-12.3): their U, 9.4 MB
 * against 4.2, streams from memory on every run. */
int cpu_nchwc_wino_tile(const conv_plan *p) {
  const char *force = getenv("TESSERA_CPU_WINOGRAD_TILE");
  if (force && (*force == '2' || *force == '4') && force[1] == '\0')
    return *force - '0';
  return p->w.out[1] >= 24 && p->w.out[2] >= 24 ? 4 : 2;
}

static size_t wino_elements(int tile) { return tile == 4 ? WINO4_T : WINO_T; }

size_t cpu_nchwc_wino_packed_floats(const conv_plan *p, int tile) {
  return wino_elements(tile) * cpu_nchwc_pw_packed_floats(p->C, p->M);
}

/* U = G g G^T of F(4x4, 3x3) for the 3x3 kernel g (row-major), element xi (of 36) at
 * u[xi * stride]: in double, then rounded once, since G's sixths and twenty-fourths are not
 * exact in float. */
static void wino4_kernel_transform(const float *g, float *u, size_t stride) {
  static const double G[6][3] = {{1.0 / 4, 0, 0},
                                 {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                 {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                 {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                 {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                 {0, 0, 1}};
  double t[6][3]; /* G g */
  for (int a = 0; a < 6; a++)
    for (int k = 0; k < 3; k++)
      t[a][k] = G[a][0] * g[k] + G[a][1] * g[3 + k] + G[a][2] * g[6 + k];
  for (int a = 0; a < 6; a++) /* (G g) G^T */
    for (int b = 0; b < 6; b++)
      u[(size_t)(6 * a + b) * stride] =
          (float)(t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2]);
}

/* U[xi] = G g G^T for every (m, c), by cpu_wino_kernel_transform (conv_util.h, as conv_wino.c
 * packs it) for 2x2 tiles, by wino4_kernel_transform for 4x4, each of the 16 or 36 M x C
 * matrices written where cpu_nchwc_pw_pack would put it (the layout WINO_NR describes; rows
 * past M zero), without a row-major copy: a void packer has no way to report a failed
 * allocation. The unit suite checks that the result is cpu_nchwc_pw_pack's of the row-major
 * matrices. */
void cpu_nchwc_wino_pack(const conv_plan *p, int tile, const float *w, float *dst) {
  size_t C = p->C, M = p->M, per = cpu_nchwc_pw_packed_floats(C, M), nt = wino_elements(tile);
  size_t mpad = (M + WINO_NR - 1) / WINO_NR * WINO_NR;
  for (size_t m = 0; m < mpad; m++)
    for (size_t c = 0; c < C; c++) {
      float *d = dst + (m / WINO_NR * C + c) * WINO_NR + m % WINO_NR;
      if (m >= M) {
        for (size_t xi = 0; xi < nt; xi++)
          d[xi * per] = 0.0f;
      } else if (tile == 4) {
        wino4_kernel_transform(w + (m * C + c) * 9, d, per);
      } else {
        cpu_wino_kernel_transform(w + (m * C + c) * 9, d, per);
      }
    }
}

/* ---- The transforms --------------------------------------------------------------------- */

typedef struct wino_job wino_job;
typedef void (*wino_in_fn)(const wino_job *j, const float *xb, int64_t ty, float *v);
typedef void (*wino_out_fn)(const wino_job *j, const float *pm, __m256 bv, float *yb, int64_t ty);

struct wino_job {
  const float *x, *wp, *bias;
  float *y;
  size_t C, M;
  size_t per;                     /* floats of one packed U[xi] */
  int64_t tile;                   /* outputs along a tile's side, 2 or 4 */
  int64_t ih, iw, oh, ow, pt, pl; /* input and output planes, top and left padding */
  int64_t th, tw;                 /* tile rows and columns */
  int64_t nbands;                 /* bands of tile rows per image */
  size_t ngroups;                 /* groups of output channels per band */
  int64_t txa, txb;               /* tile columns whose patch lies inside the input rows */
  size_t xs;                      /* floats between channel blocks of V and of P */
  size_t vs, ps;                  /* floats between the 16 matrices of V, of P */
  size_t scratch;                 /* floats of one task's V and P */
  cpu_act act;                    /* p->act */
  float p0, p1;                   /* the in-register activation's parameters (out_row) */
  bool smooth;                    /* the activation goes over finished rows */
  wino_in_fn in_row;              /* the input transform of one tile row, by tile */
  wino_out_fn out_row;            /* the output transform of one tile row, by tile and activation */
  atomic_bool failed;
};

/* V = B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], of the patch d (row i, column
 * k at d[4i + k]), element xi stored at v + xi * vs (aligned). */
WINO_AVX2 static ALWAYS_INLINE void wino_in_store(const __m256 d[WINO_T], float *v, size_t vs) {
  __m256 e[WINO_T]; /* B^T d: combinations of rows */
  WINO_UNROLL
  for (int k = 0; k < 4; k++) {
    e[k] = _mm256_sub_ps(d[k], d[8 + k]);
    e[4 + k] = _mm256_add_ps(d[4 + k], d[8 + k]);
    e[8 + k] = _mm256_sub_ps(d[8 + k], d[4 + k]);
    e[12 + k] = _mm256_sub_ps(d[4 + k], d[12 + k]);
  }
  WINO_UNROLL
  for (int r = 0; r < 4; r++) { /* (B^T d) B: combinations of columns */
    const __m256 *er = e + 4 * r;
    float *o = v + (size_t)(4 * r) * vs;
    _mm256_store_ps(o, _mm256_sub_ps(er[0], er[2]));
    _mm256_store_ps(o + vs, _mm256_add_ps(er[1], er[2]));
    _mm256_store_ps(o + 2 * vs, _mm256_sub_ps(er[2], er[1]));
    _mm256_store_ps(o + 3 * vs, _mm256_sub_ps(er[1], er[3]));
  }
}

/* Y = A^T P A, A^T = [1 1 1 0; 0 1 -1 -1], plus the bias bv and the activation KIND (with the
 * job's p0 and p1; CPU_ACT_NONE for none or a smooth one, applied to the finished rows), for
 * tile row ty of one output block: pm is the row's first tile in P[0] (element xi j->ps
 * floats on), yb the block's plane of the image. The outputs that lie inside it are stored.
 * The job's fields are read into locals first: with -fno-strict-aliasing the output stores
 * could otherwise change them, and they would be reloaded after each. */
WINO_AVX2 static ALWAYS_INLINE void wino_out_row_k(const wino_job *j, const float *pm, __m256 bv,
                                                   float *yb, int64_t ty, const cpu_act_kind kind) {
  const int64_t ow = j->ow, tw = j->tw, oy = 2 * ty;
  const bool two = oy + 1 < j->oh;
  const size_t ps = j->ps;
  const float a0 = j->p0, a1 = j->p1;
  float *y0 = yb + oy * ow * CPU_NCHWC, *y1 = y0 + ow * CPU_NCHWC;
  for (int64_t tx = 0; tx < tw; tx++) {
    const float *pt = pm + tx * CPU_NCHWC;
    __m256 s[2][4];
    WINO_UNROLL
    for (int k = 0; k < 4; k++) { /* A^T P: combinations of rows */
      __m256 e0 = _mm256_load_ps(pt + (size_t)k * ps);
      __m256 e1 = _mm256_load_ps(pt + (size_t)(4 + k) * ps);
      __m256 e2 = _mm256_load_ps(pt + (size_t)(8 + k) * ps);
      __m256 e3 = _mm256_load_ps(pt + (size_t)(12 + k) * ps);
      s[0][k] = _mm256_add_ps(_mm256_add_ps(e0, e1), e2);
      s[1][k] = _mm256_sub_ps(_mm256_sub_ps(e1, e2), e3);
    }
    __m256 o[4]; /* (A^T P) A + bias: output (r, c) of the tile at o[2r + c] */
    WINO_UNROLL
    for (int r = 0; r < 2; r++) {
      o[2 * r] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[r][0], s[r][1]), s[r][2]), bv);
      o[2 * r + 1] = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[r][1], s[r][2]), s[r][3]), bv);
    }
    if (kind != CPU_ACT_NONE) {
      WINO_UNROLL
      for (int i = 0; i < 4; i++)
        o[i] = cpu_act8_kind(kind, a0, a1, o[i]);
    }
    float *a = y0 + 2 * tx * CPU_NCHWC, *b = y1 + 2 * tx * CPU_NCHWC;
    _mm256_storeu_ps(a, o[0]);
    if (two)
      _mm256_storeu_ps(b, o[2]);
    if (2 * tx + 1 < ow) {
      _mm256_storeu_ps(a + CPU_NCHWC, o[1]);
      if (two)
        _mm256_storeu_ps(b + CPU_NCHWC, o[3]);
    }
  }
}

/* ---- F(4x4, 3x3) --------------------------------------------------------------------------
 * The same over 4x4 tiles of outputs, from 6x6 patches with 36 products: 36 / 16 = 2.25
 * multiply-adds per output and channel pair, against 16 / 4 = 4 for F(2x2, 3x3), and against 9
 * directly (Lavin and Gray's matrices, interpolation points 0, -1, 1, -2, 2 and infinity):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
 *          0 4 0 -5 0 1],
 *   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
 * Their larger entries cost accuracy: with C channels of inputs and weights uniform in
 * [-1, 1], the error against a float64 direct sum measured some 3e-7 of the sum of the
 * products' magnitudes (C 64 to 512), against some 5e-8 for F(2x2, 3x3) and the direct sum's
 * few 1e-8; the unit suite holds both tiles to 1.5e-5 of it. */

/* The six combinations of B^T applied to d0 .. d5 (one column or row of a patch). */
WINO_AVX2 static ALWAYS_INLINE void wino4_bt(__m256 d0, __m256 d1, __m256 d2, __m256 d3, __m256 d4,
                                             __m256 d5, __m256 t[6]) {
  const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f);
  const __m256 five = _mm256_set1_ps(5.0f);
  t[0] = _mm256_fmadd_ps(four, d0, _mm256_fnmadd_ps(five, d2, d4));
  t[1] = _mm256_fnmadd_ps(four, _mm256_add_ps(d1, d2), _mm256_add_ps(d3, d4));
  t[2] = _mm256_fmadd_ps(four, _mm256_sub_ps(d1, d2), _mm256_sub_ps(d4, d3));
  __m256 f = _mm256_sub_ps(d4, d2), g = _mm256_sub_ps(d1, d3);
  t[3] = _mm256_fnmadd_ps(two, g, f);
  t[4] = _mm256_fmadd_ps(two, g, f);
  t[5] = _mm256_fmadd_ps(four, d1, _mm256_fnmadd_ps(five, d3, d5));
}

/* V = B^T d B of the 6x6 patch d (row i, column k at d[6i + k]), element xi at v + xi * vs. */
WINO_AVX2 static ALWAYS_INLINE void wino4_in_store(const __m256 d[WINO4_T], float *v, size_t vs) {
  __m256 e[WINO4_T]; /* B^T d: combinations of rows, element (i, k) at e[6i + k] */
  WINO_UNROLL
  for (int k = 0; k < 6; k++) {
    __m256 t[6];
    wino4_bt(d[k], d[6 + k], d[12 + k], d[18 + k], d[24 + k], d[30 + k], t);
    WINO_UNROLL
    for (int i = 0; i < 6; i++)
      e[6 * i + k] = t[i];
  }
  WINO_UNROLL
  for (int r = 0; r < 6; r++) { /* (B^T d) B: combinations of columns */
    const __m256 *er = e + 6 * r;
    __m256 t[6];
    wino4_bt(er[0], er[1], er[2], er[3], er[4], er[5], t);
    float *o = v + (size_t)(6 * r) * vs;
    WINO_UNROLL
    for (int b = 0; b < 6; b++)
      _mm256_store_ps(o + (size_t)b * vs, t[b]);
  }
}

/* The four combinations of A^T applied to p0 .. p5. */
WINO_AVX2 static ALWAYS_INLINE void wino4_at(__m256 p0, __m256 p1, __m256 p2, __m256 p3, __m256 p4,
                                             __m256 p5, __m256 s[4]) {
  __m256 a = _mm256_add_ps(p1, p2), b = _mm256_sub_ps(p1, p2);
  __m256 c = _mm256_add_ps(p3, p4), d = _mm256_sub_ps(p3, p4);
  s[0] = _mm256_add_ps(_mm256_add_ps(p0, a), c);
  s[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d, b);
  s[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), c, a);
  s[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d, b), p5);
}

/* wino_out_row_k for 4x4 tiles: Y = A^T P A + bias, activated by KIND, the outputs inside the
 * plane stored. */
WINO_AVX2 static ALWAYS_INLINE void wino4_out_row_k(const wino_job *j, const float *pm, __m256 bv,
                                                    float *yb, int64_t ty,
                                                    const cpu_act_kind kind) {
  const int64_t ow = j->ow, tw = j->tw, oy = 4 * ty;
  const int64_t nrows = j->oh - oy < 4 ? j->oh - oy : 4;
  const size_t ps = j->ps;
  const float a0 = j->p0, a1 = j->p1;
  float *y0 = yb + oy * ow * CPU_NCHWC;
  for (int64_t tx = 0; tx < tw; tx++) {
    const float *pt = pm + tx * CPU_NCHWC;
    __m256 s[4][6]; /* A^T P: row r, column k */
    WINO_UNROLL
    for (int k = 0; k < 6; k++) {
      __m256 t[4];
      wino4_at(_mm256_load_ps(pt + (size_t)k * ps), _mm256_load_ps(pt + (size_t)(6 + k) * ps),
               _mm256_load_ps(pt + (size_t)(12 + k) * ps),
               _mm256_load_ps(pt + (size_t)(18 + k) * ps),
               _mm256_load_ps(pt + (size_t)(24 + k) * ps),
               _mm256_load_ps(pt + (size_t)(30 + k) * ps), t);
      WINO_UNROLL
      for (int r = 0; r < 4; r++)
        s[r][k] = t[r];
    }
    const int64_t ncols = ow - 4 * tx < 4 ? ow - 4 * tx : 4;
    WINO_UNROLL
    for (int r = 0; r < 4; r++) {
      if (r >= nrows)
        break;
      __m256 o[4]; /* (A^T P) A: output (r, c) at o[c] */
      wino4_at(s[r][0], s[r][1], s[r][2], s[r][3], s[r][4], s[r][5], o);
      float *yr = y0 + (r * ow + 4 * tx) * CPU_NCHWC;
      WINO_UNROLL
      for (int c = 0; c < 4; c++) {
        o[c] = _mm256_add_ps(o[c], bv);
        if (kind != CPU_ACT_NONE)
          o[c] = cpu_act8_kind(kind, a0, a1, o[c]);
      }
      if (ncols == 4) {
        WINO_UNROLL
        for (int c = 0; c < 4; c++)
          _mm256_storeu_ps(yr + c * CPU_NCHWC, o[c]);
      } else {
        for (int c = 0; c < ncols; c++)
          _mm256_storeu_ps(yr + c * CPU_NCHWC, o[c]);
      }
    }
  }
}

/* ---- Either tile ------------------------------------------------------------------------ */

/* The patch d of a tile of t x t outputs ((t + 2) x (t + 2), row i and column k at
 * d[(t + 2) i + k]) into V by that tile's transform. */
WINO_AVX2 static ALWAYS_INLINE void wino_in_patch(const __m256 *d, float *v, size_t vs,
                                                  const int t) {
  if (t == 4)
    wino4_in_store(d, v, vs);
  else
    wino_in_store(d, v, vs);
}

/* A tile whose patch crosses the input's edge: rows[i] is patch row i's input row (NULL
 * outside), ix0 the input column of patch column 0; zeros outside. */
WINO_AVX2 static ALWAYS_INLINE void wino_in_tile_edge_k(const float *const *rows, int64_t ix0,
                                                        int64_t iw, float *v, size_t vs,
                                                        const int t) {
  const int np = t + 2;
  __m256 d[WINO4_T];
  WINO_UNROLL
  for (int i = 0; i < np; i++) {
    WINO_UNROLL
    for (int k = 0; k < np; k++) {
      int64_t ix = ix0 + k;
      d[np * i + k] = rows[i] && ix >= 0 && ix < iw ? _mm256_loadu_ps(rows[i] + ix * CPU_NCHWC)
                                                    : _mm256_setzero_ps();
    }
  }
  wino_in_patch(d, v, vs, t);
}

/* Out of line: the edge tiles are few, their loads many. */
WINO_AVX2 static void wino_in_tile_edge(const float *const *rows, int64_t ix0, int64_t iw, float *v,
                                        size_t vs) {
  wino_in_tile_edge_k(rows, ix0, iw, v, vs, 2);
}
WINO_AVX2 static void wino4_in_tile_edge(const float *const *rows, int64_t ix0, int64_t iw,
                                         float *v, size_t vs) {
  wino_in_tile_edge_k(rows, ix0, iw, v, vs, 4);
}

/* Tile row ty of one channel block, tiles of t x t outputs: xb is the block's plane of the
 * image, v where the row's first tile goes in V[0] (tile tx eight floats a tile on, element
 * xi j->vs floats on). A tile's patch is input rows t ty - pt .. + t + 1. */
WINO_AVX2 static ALWAYS_INLINE void wino_in_row_k(const wino_job *j, const float *xb, int64_t ty,
                                                  float *v, const int t) {
  const int np = t + 2;
  const int64_t iw = j->iw, tw = j->tw, pl = j->pl, iy0 = t * ty - j->pt;
  const size_t vs = j->vs;
  const float *rows[6];
  bool inside = true;
  for (int i = 0; i < np; i++) {
    int64_t iy = iy0 + i;
    rows[i] = iy >= 0 && iy < j->ih ? xb + iy * iw * CPU_NCHWC : NULL;
    inside = inside && rows[i];
  }
  /* Tiles [txa, txb) load their patch directly (valid_range keeps txa <= txb). */
  const int64_t txa = inside ? j->txa : tw, txb = inside ? j->txb : tw;
  void (*const edge)(const float *const *, int64_t, int64_t, float *, size_t) =
      t == 4 ? wino4_in_tile_edge : wino_in_tile_edge;
  for (int64_t tx = 0; tx < txa; tx++)
    edge(rows, t * tx - pl, iw, v + tx * CPU_NCHWC, vs);
  for (int64_t tx = txa; tx < txb; tx++) {
    const int64_t at = (t * tx - pl) * CPU_NCHWC;
    __m256 d[WINO4_T];
    WINO_UNROLL
    for (int i = 0; i < np; i++) {
      WINO_UNROLL
      for (int k = 0; k < np; k++)
        d[np * i + k] = _mm256_loadu_ps(rows[i] + at + k * CPU_NCHWC);
    }
    wino_in_patch(d, v + tx * CPU_NCHWC, vs, t);
  }
  for (int64_t tx = txb; tx < tw; tx++)
    edge(rows, t * tx - pl, iw, v + tx * CPU_NCHWC, vs);
}

WINO_AVX2 static void wino_in_row(const wino_job *j, const float *xb, int64_t ty, float *v) {
  wino_in_row_k(j, xb, ty, v, 2);
}
WINO_AVX2 static void wino4_in_row(const wino_job *j, const float *xb, int64_t ty, float *v) {
  wino_in_row_k(j, xb, ty, v, 4);
}

/* The output transforms by activation, each for both tiles ([0]: 2x2, [1]: 4x4). */
#define WINO_OUT_FNS(name, kind)                                                                   \
  WINO_AVX2 static void name##_2(const wino_job *j, const float *pm, __m256 bv, float *yb,         \
                                 int64_t ty) {                                                     \
    wino_out_row_k(j, pm, bv, yb, ty, kind);                                                       \
  }                                                                                                \
  WINO_AVX2 static void name##_4(const wino_job *j, const float *pm, __m256 bv, float *yb,         \
                                 int64_t ty) {                                                     \
    wino4_out_row_k(j, pm, bv, yb, ty, kind);                                                      \
  }                                                                                                \
  static const wino_out_fn name[2] = {name##_2, name##_4};
WINO_OUT_FNS(wino_out_plain, CPU_ACT_NONE)
WINO_OUT_FNS(wino_out_relu, CPU_ACT_RELU)
WINO_OUT_FNS(wino_out_clip, CPU_ACT_CLIP)
WINO_OUT_FNS(wino_out_leaky, CPU_ACT_LEAKYRELU)
WINO_OUT_FNS(wino_out_hsig, CPU_ACT_HARDSIGMOID)
WINO_OUT_FNS(wino_out_hswish, CPU_ACT_HARDSWISH)
#undef WINO_OUT_FNS

/* ---- The driver ------------------------------------------------------------------------- */

/* Items [begin, end), each (image, band of tile rows, group of output channels): the band's
 * input transform into V, the group's 16 products into P, its output transform; V and P the
 * task's own. */
WINO_AVX2 static void wino_task(void *arg, size_t begin, size_t end) {
  wino_job *j = arg;
  float *v = nn_alloc_aligned(j->scratch, sizeof(float));
  if (!v) {
    atomic_store(&j->failed, true);
    return;
  }
  const size_t nxi = wino_elements((int)j->tile); /* elements of a transformed tile */
  float *pr = v + nxi * j->vs;
  const size_t C = j->C, M = j->M, xs = j->xs;
  const size_t isz = (size_t)(j->ih * j->iw) * CPU_NCHWC, osz = (size_t)(j->oh * j->ow) * CPU_NCHWC;
  const size_t rowf = (size_t)j->tw * CPU_NCHWC; /* floats of one tile row in V and P */
  for (size_t it = begin; it < end; it++) {
    size_t g = it % j->ngroups, nb = it / j->ngroups;
    size_t n = nb / (size_t)j->nbands;
    int64_t bi = (int64_t)(nb % (size_t)j->nbands);
    /* The group's output channels: whole panels of 16, the last group up to M. */
    size_t units = M / WINO_NR;
    size_t m0 = units * g / j->ngroups * WINO_NR;
    size_t m1 = g + 1 == j->ngroups ? M : units * (g + 1) / j->ngroups * WINO_NR;
    int64_t ty0 = bi * j->th / j->nbands, ty1 = (bi + 1) * j->th / j->nbands;
    size_t nt = (size_t)((ty1 - ty0) * j->tw);
    const float *xn = j->x + n * C / CPU_NCHWC * isz;
    float *yn = j->y + n * M / CPU_NCHWC * osz;
    for (size_t cb = 0; cb < C / CPU_NCHWC; cb++)
      for (int64_t ty = ty0; ty < ty1; ty++)
        j->in_row(j, xn + cb * isz, ty, v + cb * xs + (size_t)(ty - ty0) * rowf);
    for (size_t xi = 0; xi < nxi; xi++)
      cpu_nchwc_pw_product(v + xi * j->vs, xs, C, m1 - m0, nt, j->wp + xi * j->per + m0 * C,
                           pr + xi * j->ps + m0 / CPU_NCHWC * xs, xs, false,
                           xi + 1 < nxi ? j->wp + (xi + 1) * j->per + m0 * C : NULL);
    for (size_t mb = m0 / CPU_NCHWC; mb < m1 / CPU_NCHWC; mb++) {
      __m256 bv = j->bias ? _mm256_loadu_ps(j->bias + mb * CPU_NCHWC) : _mm256_setzero_ps();
      float *yb = yn + mb * osz;
      for (int64_t ty = ty0; ty < ty1; ty++) {
        j->out_row(j, pr + mb * xs + (size_t)(ty - ty0) * rowf, bv, yb, ty);
        if (j->smooth) {
          int64_t oy = j->tile * ty, rows = j->oh - oy < j->tile ? j->oh - oy : j->tile;
          cpu_act_apply_row_avx2(&j->act, yb + oy * j->ow * CPU_NCHWC,
                                 (size_t)(rows * j->ow) * CPU_NCHWC);
        }
      }
    }
  }
  free(v);
}

/* A pitch of at least n floats (n a multiple of eight) that is a whole, odd number of cache
 * lines: the channel blocks of V and P, which a tile of the products reads one after another,
 * then fall in different sets of L1 rather than a few (a plane of 64 tiles is 2 KiB). SIZE_MAX
 * on overflow. */
static size_t wino_block_pitch(size_t n) {
  if (n > SIZE_MAX - 32)
    return SIZE_MAX;
  size_t lines = (n + 15) / 16;
  return (lines | 1) * 16;
}

/* A pitch of at least n floats between two of the 16 matrices, which the transforms read and
 * write at once: a multiple of 4 KiB would put all 16 streams in one set of L1, so 4 KiB
 * multiples plus two cache lines (as conv_wino.c). SIZE_MAX on overflow. */
static size_t wino_matrix_pitch(size_t n) {
  if (n > SIZE_MAX - 2048)
    return SIZE_MAX;
  return (n + 1023) / 1024 * 1024 + 32;
}

int cpu_nchwc_wino(cpu_ctx *ctx, const conv_plan *p, int tile, const float *x, const float *wp,
                   const float *bias, float *y) {
  if (ctx->isa != CPU_ISA_AVX2_FMA)
    return cpu_fail(ctx, "the NCHW8c Winograd convolution needs AVX2 and FMA");
  if (!cpu_nchwc_wino_applies(p))
    return cpu_fail(ctx, "the NCHW8c Winograd convolution does not apply to this Conv (it takes "
                         "3x3, stride 1, dilation 1, one group, channels a multiple of 8)");
  if (tile != 2 && tile != 4)
    return cpu_fail(ctx, "the NCHW8c Winograd convolution has no %dx%d tiles", tile, tile);
  const nn_window *w = &p->w;
  if (p->N == 0 || w->out[1] <= 0 || w->out[2] <= 0)
    return 0;
  wino_job j = {.x = x, .wp = wp, .bias = bias, .y = y, .C = p->C, .M = p->M};
  j.per = cpu_nchwc_pw_packed_floats(p->C, p->M);
  j.tile = tile;
  const int t4 = tile == 4; /* index of the tile's functions */
  j.in_row = t4 ? wino4_in_row : wino_in_row;
  j.ih = w->in[1], j.iw = w->in[2], j.oh = w->out[1], j.ow = w->out[2];
  j.pt = w->pb[1], j.pl = w->pb[2];
  j.th = (j.oh + tile - 1) / tile, j.tw = (j.ow + tile - 1) / tile;
  /* Tile columns whose patch (input columns tile tx - pl .. + tile + 1) lies inside the
   * input. */
  valid_range(j.tw, tile, -j.pl, j.iw - tile - 1, &j.txa, &j.txb);

  /* Bands of tile rows whose V and P fit WINO_BAND_FLOATS, at least one row; with several
   * threads, more bands until each thread has a few items, or one a tile row. */
  size_t per_row, chan;
  bool big = __builtin_add_overflow(p->C, p->M, &chan) ||
             !nn_mul_size(wino_elements(tile) * (size_t)j.tw, chan, &per_row);
  if (big)
    return cpu_fail(ctx, "the NCHW8c Winograd convolution's tile rows are too large");
  size_t band_floats = tile == 4 ? WINO4_BAND_FLOATS : WINO_BAND_FLOATS;
  int64_t rows = (int64_t)(band_floats / per_row);
  rows = rows < 1 ? 1 : rows > j.th ? j.th : rows;
  j.nbands = (j.th + rows - 1) / rows;
  size_t threads = cpu_thread_count(ctx), want = WINO_ITEMS_PER_THREAD * threads;
  j.ngroups = 1;
  if (threads > 1 && p->N * (size_t)j.nbands < want) {
    /* Every band reads all of U, 16 C M floats, and transforms its own tiles, 16 C floats
     * each: where U outweighs an image's tiles four times (few tiles over many channels:
     * 512 -> 512 over 7x7, 256 -> 256 over 14x14) the threads split the output channels and
     * read U once between them, each transforming the band; elsewhere they split the rows. */
    size_t per_image = (want + p->N * (size_t)j.nbands - 1) / (p->N * (size_t)j.nbands);
    size_t units = p->M / WINO_NR;
    if (p->M > 4 * (size_t)(j.th * j.tw) && units > 1) {
      j.ngroups = per_image < units ? per_image : units;
      j.ngroups = cpu_even_items(j.ngroups, p->N * (size_t)j.nbands, threads, units);
    } else {
      per_image = (want + p->N - 1) / p->N;
      j.nbands = (int64_t)per_image < j.th ? (int64_t)per_image : j.th;
    }
  }
  if (j.ngroups == 1)
    j.nbands = (int64_t)cpu_even_items((size_t)j.nbands, p->N, threads, (size_t)j.th);
  /* The rows spread evenly, band b tile rows [b th / nbands, (b + 1) th / nbands), so that
   * the items are alike: 28 tile rows on two threads in 7 bands of 4 would leave one thread 4
   * bands and the other 3 (64 -> 64 over 56x56: 0.76 ms, against 0.59 in 8 bands of 3 or 4). */
  int64_t band = (j.th + j.nbands - 1) / j.nbands; /* rows of the largest */

  /* A task's V ([16][C/8][tiles][8]) and P ([16][M/8][tiles][8]). */
  size_t tiles = (size_t)band * (size_t)j.tw, vm, pm, vp, all;
  big = !nn_mul_size(tiles, CPU_NCHWC, &j.xs) || (j.xs = wino_block_pitch(j.xs)) == SIZE_MAX ||
        !nn_mul_size(p->C / CPU_NCHWC, j.xs, &vm) || !nn_mul_size(p->M / CPU_NCHWC, j.xs, &pm) ||
        (j.vs = wino_matrix_pitch(vm)) == SIZE_MAX || (j.ps = wino_matrix_pitch(pm)) == SIZE_MAX ||
        __builtin_add_overflow(j.vs, j.ps, &vp) || !nn_mul_size(wino_elements(tile), vp, &all);
  if (big)
    return cpu_fail(ctx, "the NCHW8c Winograd convolution's buffers are too large");
  j.scratch = all;

  /* The activation in registers as the output transform stores (relu as a max, clip as a
   * clamp, cpu_act_clamp_bounds), or the smooth ones over the finished rows. */
  j.act = p->act;
  j.p0 = p->act.p0, j.p1 = p->act.p1;
  j.smooth = cpu_act_is_smooth(p->act.kind);
  switch (p->act.kind) {
  case CPU_ACT_RELU: j.out_row = wino_out_relu[t4]; break;
  case CPU_ACT_CLIP:
    cpu_act_clamp_bounds(&p->act, &j.p0, &j.p1);
    j.out_row = wino_out_clip[t4];
    break;
  case CPU_ACT_LEAKYRELU: j.out_row = wino_out_leaky[t4]; break;
  case CPU_ACT_HARDSIGMOID: j.out_row = wino_out_hsig[t4]; break;
  case CPU_ACT_HARDSWISH: j.out_row = wino_out_hswish[t4]; break;
  default: j.out_row = wino_out_plain[t4]; break;
  }
  atomic_init(&j.failed, false);
  cpu_parallel_for(ctx, p->N * (size_t)j.nbands * j.ngroups, 1, wino_task, &j);
  if (atomic_load(&j.failed))
    return cpu_fail(ctx, "out of memory for the NCHW8c Winograd convolution's %zu-float buffers",
                    j.scratch);
  return 0;
}

#else
/* ISO C forbids an empty translation unit. */
typedef int cpu_conv_nchwc_wino_unused;
#endif
