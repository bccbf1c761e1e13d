/* 3x3 stride-1 convolution by Winograd's F(2x2, 3x3) over the channel-blocked layout NCHW8c
 * (nchwc.h), float32, AVX2 + FMA: what conv_wino.c does for NCHW, for the 3x3 layers inside a
 * blocked chain.
 *
 * Each 2x2 block of outputs (a tile) is Y = A^T [ sum_c (G g G^T) . (B^T d B) ] A (conv_wino.c
 * says more, and why F(2x2, 3x3) and not a larger tile). The 16 products over the channels,
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

enum { WINO_T = 16 }; /* elements of a transformed tile */
/* The 1x1 kernel's packed weights (conv_nchwc_pw.c, cpu_nchwc_pw_pack): panel q holds, for
 * each input channel c, the 16 output channels 16q .. 16q + 15 (zero past M). */
enum { WINO_NR = 16 };
/* Floats of V and products one band may hold: 256 Ki floats, 1 MiB, the size of L2 on the
 * machines this was measured on (as conv_wino.c's bands). */
#define WINO_BAND_FLOATS ((size_t)1 << 18)
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

size_t cpu_nchwc_wino_packed_floats(const conv_plan *p) {
  return WINO_T * cpu_nchwc_pw_packed_floats(p->C, p->M);
}

/* U[xi] = G g G^T for every (m, c) by cpu_wino_kernel_transform (conv_util.h), as conv_wino.c
 * packs it, each of the 16 M x C matrices written
 * where cpu_nchwc_pw_pack would put it (the layout WINO_NR describes; rows past M zero),
 * without a row-major copy: a void packer has no way to report a failed allocation. The unit
 * suite checks that the result is cpu_nchwc_pw_pack's of the row-major matrices, bit for bit. */
void cpu_nchwc_wino_pack(const conv_plan *p, const float *w, float *dst) {
  size_t C = p->C, M = p->M, per = cpu_nchwc_pw_packed_floats(C, M);
  size_t mpad = (M + WINO_NR - 1) / WINO_NR * WINO_NR;
  for (size_t m = 0; m < mpad; m++)
    for (size_t c = 0; c < C; c++) {
      float *d = dst + (m / WINO_NR * C + c) * WINO_NR + m % WINO_NR;
      if (m >= M) {
        for (size_t xi = 0; xi < WINO_T; xi++)
          d[xi * per] = 0.0f;
        continue;
      }
      cpu_wino_kernel_transform(w + (m * C + c) * 9, d, per);
    }
}

/* ---- The transforms --------------------------------------------------------------------- */

typedef struct wino_job wino_job;
typedef void (*wino_out_fn)(const wino_job *j, const float *pm, __m256 bv, float *yb, int64_t ty);

struct wino_job {
  const float *x, *wp, *bias;
  float *y;
  size_t C, M;
  size_t per;                     /* floats of one packed U[xi] */
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
  wino_out_fn out_row;            /* the output transform of one tile row, by activation */
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

/* A tile whose patch crosses the input's edge: rows[i] is patch row i's input row (NULL
 * outside), ix0 the input column of patch column 0; zeros outside. */
WINO_AVX2 static void wino_in_tile_edge(const float *const rows[4], int64_t ix0, int64_t iw,
                                        float *v, size_t vs) {
  __m256 d[WINO_T];
  WINO_UNROLL
  for (int i = 0; i < 4; i++) {
    WINO_UNROLL
    for (int k = 0; k < 4; k++) {
      int64_t ix = ix0 + k;
      d[4 * i + k] = rows[i] && ix >= 0 && ix < iw ? _mm256_loadu_ps(rows[i] + ix * CPU_NCHWC)
                                                   : _mm256_setzero_ps();
    }
  }
  wino_in_store(d, v, vs);
}

/* Tile row ty of one channel block: xb is the block's plane of the image, v where the row's
 * first tile goes in V[0] (tile tx eight floats a tile on, element xi j->vs floats on). */
WINO_AVX2 static void wino_in_row(const wino_job *j, const float *xb, int64_t ty, float *v) {
  const int64_t iw = j->iw, tw = j->tw, pl = j->pl, iy0 = 2 * ty - j->pt;
  const size_t vs = j->vs;
  const float *rows[4];
  bool inside = true;
  for (int i = 0; i < 4; i++) {
    int64_t iy = iy0 + i;
    rows[i] = iy >= 0 && iy < j->ih ? xb + iy * iw * CPU_NCHWC : NULL;
    inside = inside && rows[i];
  }
  /* Tiles [txa, txb) load their patch directly (valid_range keeps txa <= txb). */
  const int64_t txa = inside ? j->txa : tw, txb = inside ? j->txb : tw;
  for (int64_t tx = 0; tx < txa; tx++)
    wino_in_tile_edge(rows, 2 * tx - pl, iw, v + tx * CPU_NCHWC, vs);
  for (int64_t tx = txa; tx < txb; tx++) {
    const int64_t at = (2 * tx - pl) * CPU_NCHWC;
    __m256 d[WINO_T];
    WINO_UNROLL
    for (int i = 0; i < 4; i++) {
      WINO_UNROLL
      for (int k = 0; k < 4; k++)
        d[4 * i + k] = _mm256_loadu_ps(rows[i] + at + k * CPU_NCHWC);
    }
    wino_in_store(d, v + tx * CPU_NCHWC, vs);
  }
  for (int64_t tx = txb; tx < tw; tx++)
    wino_in_tile_edge(rows, 2 * tx - pl, iw, v + tx * CPU_NCHWC, vs);
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

#define WINO_OUT_FN(name, kind)                                                                    \
  WINO_AVX2 static void name(const wino_job *j, const float *pm, __m256 bv, float *yb,             \
                             int64_t ty) {                                                         \
    wino_out_row_k(j, pm, bv, yb, ty, kind);                                                       \
  }
WINO_OUT_FN(wino_out_plain, CPU_ACT_NONE)
WINO_OUT_FN(wino_out_clip, CPU_ACT_CLIP)
WINO_OUT_FN(wino_out_leaky, CPU_ACT_LEAKYRELU)
WINO_OUT_FN(wino_out_hsig, CPU_ACT_HARDSIGMOID)
WINO_OUT_FN(wino_out_hswish, CPU_ACT_HARDSWISH)
#undef WINO_OUT_FN

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
  float *pr = v + WINO_T * j->vs;
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
        wino_in_row(j, xn + cb * isz, ty, v + cb * xs + (size_t)(ty - ty0) * rowf);
    for (size_t xi = 0; xi < WINO_T; xi++)
      cpu_nchwc_pw_product(v + xi * j->vs, xs, C, m1 - m0, nt, j->wp + xi * j->per + m0 * C,
                           pr + xi * j->ps + m0 / CPU_NCHWC * xs, xs, false);
    for (size_t mb = m0 / CPU_NCHWC; mb < m1 / CPU_NCHWC; mb++) {
      __m256 bv = j->bias ? _mm256_loadu_ps(j->bias + mb * CPU_NCHWC) : _mm256_setzero_ps();
      float *yb = yn + mb * osz;
      for (int64_t ty = ty0; ty < ty1; ty++) {
        j->out_row(j, pr + mb * xs + (size_t)(ty - ty0) * rowf, bv, yb, ty);
        if (j->smooth) {
          int64_t rows = 2 * ty + 1 < j->oh ? 2 : 1;
          cpu_act_apply_row_avx2(&j->act, yb + 2 * ty * j->ow * CPU_NCHWC,
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

int cpu_nchwc_wino(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wp,
                   const float *bias, float *y) {
  if (ctx->isa != CPU_ISA_AVX2_FMA)
    return cpu_fail(ctx, "the NCHW8c Winograd convolution needs AVX2 and FMA");
  if (!cpu_nchwc_wino_applies(p))
    return cpu_fail(ctx, "the NCHW8c Winograd convolution does not apply to this Conv (it takes "
                         "3x3, stride 1, dilation 1, one group, channels a multiple of 8)");
  const nn_window *w = &p->w;
  if (p->N == 0 || w->out[1] <= 0 || w->out[2] <= 0)
    return 0;
  wino_job j = {.x = x, .wp = wp, .bias = bias, .y = y, .C = p->C, .M = p->M};
  j.per = cpu_nchwc_pw_packed_floats(p->C, p->M);
  j.ih = w->in[1], j.iw = w->in[2], j.oh = w->out[1], j.ow = w->out[2];
  j.pt = w->pb[1], j.pl = w->pb[2];
  j.th = (j.oh + 1) / 2, j.tw = (j.ow + 1) / 2;
  /* Tile columns whose patch (input columns 2 tx - pl .. + 3) lies inside the input. */
  valid_range(j.tw, 2, -j.pl, j.iw - 3, &j.txa, &j.txb);

  /* Bands of tile rows whose V and P fit WINO_BAND_FLOATS, at least one row; with several
   * threads, more bands until each thread has a few items, or one a tile row. */
  size_t per_row, chan;
  bool big = __builtin_add_overflow(p->C, p->M, &chan) ||
             !nn_mul_size((size_t)WINO_T * (size_t)j.tw, chan, &per_row);
  if (big)
    return cpu_fail(ctx, "the NCHW8c Winograd convolution's tile rows are too large");
  int64_t rows = (int64_t)(WINO_BAND_FLOATS / per_row);
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
        __builtin_add_overflow(j.vs, j.ps, &vp) || !nn_mul_size(WINO_T, vp, &all);
  if (big)
    return cpu_fail(ctx, "the NCHW8c Winograd convolution's buffers are too large");
  j.scratch = all;

  /* The activation in registers as the output transform stores (relu and clip as a clamp,
   * cpu_act_clamp_bounds), or the smooth ones over the finished rows. */
  j.act = p->act;
  j.p0 = p->act.p0, j.p1 = p->act.p1;
  j.smooth = cpu_act_is_smooth(p->act.kind);
  switch (p->act.kind) {
  case CPU_ACT_RELU:
  case CPU_ACT_CLIP:
    cpu_act_clamp_bounds(&p->act, &j.p0, &j.p1);
    j.out_row = wino_out_clip;
    break;
  case CPU_ACT_LEAKYRELU: j.out_row = wino_out_leaky; break;
  case CPU_ACT_HARDSIGMOID: j.out_row = wino_out_hsig; break;
  case CPU_ACT_HARDSWISH: j.out_row = wino_out_hswish; break;
  default: j.out_row = wino_out_plain; break;
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
