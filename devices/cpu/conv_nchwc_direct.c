/* Direct dense convolution over the channel-blocked layout NCHW8c (nchwc.h), float32, AVX2 +
 * FMA: any kernel size, stride and padding, one group, C and M multiples of eight. It serves
 * the layers that neither the pointwise kernel (1x1) nor Winograd (3x3 stride 1, wide enough
 * to pay for its transforms) take: ResNet-50's 3x3 stride-2 layers, narrow 3x3 stride-1 ones
 * (16 -> 16 over 56x56), 5x5, 7x7, 1x3.
 *
 * The register tile is NP <= 6 output pixels of one output row by 16 output channels (two
 * output blocks), twelve accumulators. Each step takes one input block cb, one tap (ky, kx) and
 * one input channel ic of the block: two weight vectors (the tap's weights to the 16 outputs)
 * and a broadcast of the input under each pixel (column (ox0 + t) * sw - pl + kx, lane ic of
 * the pixel's eight), twelve FMAs for two loads and six broadcasts. In NCHW8c the eight
 * channels of a pixel lie together, so the input needs no packing, and a tile's outputs are
 * whole vectors of its output blocks. The weights are packed so that a tile streams them in
 * the order it takes them: unit u of 16 outputs as [u][cb][ky][kx][ic][16]. When M % 16 == 8
 * the last unit is 24 wide (the last whole panel and the eight left over, [cb][ky][kx][ic][24])
 * and takes tiles of up to 4 pixels by three output blocks (three weight vectors and four
 * broadcasts for twelve FMAs), as the pointwise kernel does; M = 8 alone takes 6 pixels by one
 * block. Against 12 pixels by a last block of eight (one weight vector, twelve broadcasts: the
 * broadcasts bound it), 40 -> 40 3x3 over 56x56 went from 104 to 112 GFLOP/s and 64 -> 24 over
 * 28x28 from 99 to 114.
 *
 * The ic steps and the pixels are unrolled at compile time (without forced unrolling gcc kept
 * the accumulators in memory, as in conv_nchwc_group.c); the loops over cb, ky and kx stay
 * loops. Column strides 1 and 2 are compile-time constants, so that a broadcast is one load
 * at a constant displacement; other strides are a run-time value. A tile of six accumulators
 * or fewer (three pixels by 16 outputs) sends the odd channels to a second set, so that twelve
 * chains of FMAs stay in flight: 512 -> 512 3x3 s2 14 -> 7, whose rows are tiles of 4 and 3
 * pixels, went from 87 to 93 GFLOP/s.
 *
 * Edges: a row's pixels are split into tiles of nearly equal size (56 -> 6 x 6 + 4 x 5, 7 ->
 * 4 + 3). A tile whose windows all lie inside the input row reads it in place; a tile with a
 * pixel whose window crosses the left or right edge computes, for each kx, the address of each
 * pixel's input column, or of eight zeros when the column lies in the padding (a compare and a
 * conditional move a pixel, against 16 FMAs): the same register tile with no copy of the input.
 * Sending every tile that way cost 0-5% (128 -> 128 s2 56 -> 28: 109 -> 104 GFLOP/s), so the
 * edge tiles are not worth anything cleverer. Rows whose window crosses the top or bottom take
 * only the kernel rows inside.
 *
 * Bias is the accumulators' start; relu and clip are a clamp in registers
 * (cpu_act_clamp_bounds); the other activations go over each finished output row of a block,
 * still in L1.
 *
 * Depth: a unit's weights are C * kh * kw * 64 bytes (295 KB at C = 512, 3x3), read again by
 * every tile of a band of rows. A deep layer's weights (9.4 MB for 512 -> 512 3x3) do not stay
 * in L2 from one run to the next, and a unit's first tile, touching them first, waited on L3
 * or memory: 512 -> 512 s2 14 -> 7 ran at 62 GFLOP/s. Each tile now prefetches into L2 its
 * share of the next unit's weights (or of the next block of the depth), and the layer runs at
 * 87. The input channels are taken in blocks of DR_KB (partial sums in y between blocks: the
 * first starts from the bias, the last applies the activation), each over all the tiles of
 * the band before the next: 2048 -> 512 3x3 over 7x7 ran at 81 GFLOP/s with blocks of 128
 * against 61 without; blocks of 32 or 64 (whose weights would stay in L1 across the tiles)
 * measured no better than 128 on any layer here.
 *
 * Bands: a unit re-reads a band's input rows from L2, and every band streams all the weights
 * again; bands reading up to DR_BAND_BYTES of input (one band for any ResNet layer past the
 * first stage) measured best: against 256 KiB, 512 -> 512 s2 14 -> 7 went from 94 to 100
 * GFLOP/s and 2048 -> 512 over 7x7 from 84 to 104; against 64 KiB, 80 -> 100 and 50 -> 104.
 *
 * Threads take items (image, band, group of units): groups of units first, then shorter bands,
 * until each thread has DR_ITEMS_PER_THREAD items (512 -> 512 over 7x7 on one image: eight
 * groups of four units for two threads).
 *
 * One thread of an AMD EPYC (Zen 4, 32 KiB L1d, 1 MiB L2; the machine shared with other work,
 * best of 30 runs, the best of three quiet tries; busy, up to 25% less), relu, GFLOP/s (one
 * core's peak is some 118): ResNet-50's 3x3 stride 2, 128 -> 128 56 -> 28 112, 256 -> 256
 * 28 -> 14 111, 512 -> 512 14 -> 7 105; 3x3 stride 1, 16 -> 16 over 56x56 113, 16 -> 32 over
 * 28x28 114, 512 -> 512 over 7x7 107; 64 -> 64 5x5 over 28x28 118, 7x7 120. */
#include "devices/cpu/nchwc.h"

#ifdef CPU_NCHWC_HAVE_AVX2

#include <immintrin.h>
#include <stdint.h>

#include "devices/cpu/vmath_avx2.h"

#define DR_AVX2 __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))
/* -O2 does not peel these small constant loops by itself; unpeeled, the accumulators would
 * live in memory. Loops with a run-time count stay loops. */
#define DR_UNROLL _Pragma("GCC unroll 16")

/* Pixels of a tile at most. */
enum { DR_NP = 6 };
/* Input channels per block of the depth (a multiple of eight). */
#define DR_KB 128
/* Bytes of input a band of output rows reads at most (when it can be kept so). */
#define DR_BAND_BYTES (1024 * 1024)
/* Below this, a layer stays on the calling thread; no item is cut below DR_ITEM_FLOPS (some
 * five microseconds of work). */
#define DR_SERIAL_FLOPS 2e6
#define DR_ITEM_FLOPS 5e5
#define DR_ITEMS_PER_THREAD 4

bool cpu_nchwc_direct_applies(const conv_plan *p) {
  const nn_window *w = &p->w;
  if (p->transpose || w->nsp != 2 || p->G != 1 || p->C == 0 || p->M == 0 || p->C % CPU_NCHWC != 0 ||
      p->M % CPU_NCHWC != 0 || p->cg != p->C || p->mg != p->M)
    return false;
  if (w->in[0] != 1 || w->out[0] != 1 || w->k[0] != 1 || w->s[0] != 1 || w->pb[0] != 0 ||
      w->pe[0] != 0)
    return false;
  if (w->k[1] < 1 || w->k[2] < 1 || w->s[1] < 1 || w->s[2] < 1)
    return false;
  return w->d[0] == 1 && w->d[1] == 1 && w->d[2] == 1;
}

size_t cpu_nchwc_direct_packed_floats(const conv_plan *p) { return p->M * p->C * p->kk; }

/* Units of output channels: 16 each, but when M % 16 == 8 the last is 24 wide (the last whole
 * panel and the eight left over), or 8 when M is 8. */
static size_t dr_units(size_t M) { return M < 16 ? 1 : M / 16; }
static size_t dr_unit_width(size_t M, size_t u) {
  return M < 16 ? M : u + 1 == M / 16 ? 16 + M % 16 : 16;
}

/* Unit u (outputs 16u .. 16u + width - 1) starts at u * 16 * C * kk floats (a multiple of 128,
 * so every vector is 32-byte aligned) and holds, for each input block cb, kernel row ky, column
 * kx and channel ic of the block, the weights to its outputs:
 * dst[u][cb][ky][kx][ic][o] = w[16u + o][8cb + ic][ky][kx]. */
void cpu_nchwc_direct_pack(const conv_plan *p, const float *w, float *dst) {
  size_t C = p->C, M = p->M, kk = p->kk;
  for (size_t u = 0; u < dr_units(M); u++) {
    size_t m0 = 16 * u, width = dr_unit_width(M, u);
    float *d = dst + m0 * C * kk;
    for (size_t cb = 0; cb < C / CPU_NCHWC; cb++)
      for (size_t t = 0; t < kk; t++)
        for (size_t ic = 0; ic < CPU_NCHWC; ic++, d += width)
          for (size_t o = 0; o < width; o++)
            d[o] = w[((m0 + o) * C + cb * CPU_NCHWC + ic) * kk + t];
  }
}

/* What the tiles of one output row, one unit and one block of the depth read and write. */
typedef struct dr_row {
  const float *x; /* the block's first input block, first kernel row inside the input, column 0 */
  size_t xcs;     /* floats between input blocks: IH * IW * 8 */
  size_t xrs;     /* floats between input rows: IW * 8 */
  int64_t ncb;    /* input blocks of the block of the depth */
  int64_t nky;    /* kernel rows inside the input */
  int64_t kw, sw, pl, iw;
  const float *w;       /* the unit's weights of the first input block, from kernel row ky0 */
  size_t wcs;           /* floats between the weights of two input blocks: kh * kw * 8 * width */
  const float *bias;    /* the unit's biases (start of the first block of the depth), or NULL */
  bool from_y;          /* a later block of the depth: start from y */
  bool clamp;           /* the last block of the depth under relu or clip */
  float lo, hi;         /* the clamp's bounds */
  float *y;             /* the unit's first output block, this row, pixel 0 */
  size_t ybs;           /* floats between output blocks: OH * OW * 8 */
  uintptr_t pf, pf_end; /* the next weights to prefetch into L2 (addresses, so that a run past
                           the end stays arithmetic on integers), and their end */
  int64_t pf_n;         /* cache lines to prefetch per input block */
} dr_row;

/* One tile: NB output blocks (1, 2 or 3) by NP pixels from column ox0. S: the column stride when
 * it is a compile-time 1 or 2, else 0 (then r->sw). EDGE: some pixel's window crosses the left
 * or right edge of the input, so each column read is checked, and one outside reads zeros. */
DR_AVX2 static ALWAYS_INLINE void dr_tile_body(const dr_row *row, int64_t ox0, const int NB,
                                               const int NP, const int S, const bool EDGE) {
  static const float zeros[8] __attribute__((aligned(32))) = {0};
  const dr_row rl = *row; /* the stores could alias it otherwise (-fno-strict-aliasing) */
  const dr_row *r = &rl;
  const int64_t sw = S ? S : r->sw;
  const int W = 8 * NB; /* floats of weights a step */
  /* Six accumulators or fewer leave the FMA units waiting on their chains (two units, four
   * cycles each): the odd channels then go to a second set. */
  const bool SPLIT = NB * NP <= 6;
  __m256 acc[12];
  float *y = r->y + ox0 * 8;
  if (r->from_y) {
    DR_UNROLL
    for (int b = 0; b < NB; b++) {
      DR_UNROLL
      for (int t = 0; t < NP; t++)
        acc[b * NP + t] = _mm256_loadu_ps(y + (size_t)b * r->ybs + (size_t)t * 8);
    }
  } else {
    DR_UNROLL
    for (int b = 0; b < NB; b++) {
      __m256 bv = r->bias ? _mm256_loadu_ps(r->bias + b * 8) : _mm256_setzero_ps();
      DR_UNROLL
      for (int t = 0; t < NP; t++)
        acc[b * NP + t] = bv;
    }
  }
  if (SPLIT) {
    DR_UNROLL
    for (int i = 0; i < NB * NP; i++)
      acc[NB * NP + i] = _mm256_setzero_ps();
  }
  const int64_t col0 = ox0 * sw - r->pl, kw = r->kw, nky = r->nky;
  const float *xc = r->x, *wc = r->w;
  uintptr_t pf = r->pf;
  for (int64_t cb = 0; cb < r->ncb; cb++, xc += r->xcs, wc += r->wcs) {
    for (int64_t l = 0; l < r->pf_n; l++, pf += 64)
      if (pf < r->pf_end)
        _mm_prefetch((const char *)pf, _MM_HINT_T1);
    const float *xr = xc, *wk = wc;
    for (int64_t ky = 0; ky < nky; ky++, xr += r->xrs) {
      for (int64_t kx = 0; kx < kw; kx++, wk += 8 * W) {
        const float *src[DR_NP];
        if (EDGE) {
          DR_UNROLL
          for (int t = 0; t < NP; t++) {
            int64_t ix = col0 + t * sw + kx;
            src[t] = (uint64_t)ix < (uint64_t)r->iw ? xr + ix * 8 : zeros;
          }
        } else {
          const float *xp = xr + (col0 + kx) * 8;
          DR_UNROLL
          for (int t = 0; t < NP; t++)
            src[t] = xp + t * sw * 8;
        }
        DR_UNROLL
        for (int ic = 0; ic < 8; ic++) {
          __m256 w0 = _mm256_load_ps(wk + ic * W);
          __m256 w1 = NB >= 2 ? _mm256_load_ps(wk + ic * W + 8) : w0;
          __m256 w2 = NB == 3 ? _mm256_load_ps(wk + ic * W + 16) : w0;
          __m256 *a = SPLIT && (ic & 1) ? acc + NB * NP : acc;
          DR_UNROLL
          for (int t = 0; t < NP; t++) {
            __m256 v = _mm256_broadcast_ss(src[t] + ic);
            a[t] = _mm256_fmadd_ps(v, w0, a[t]);
            if (NB >= 2)
              a[NP + t] = _mm256_fmadd_ps(v, w1, a[NP + t]);
            if (NB == 3)
              a[2 * NP + t] = _mm256_fmadd_ps(v, w2, a[2 * NP + t]);
          }
        }
      }
    }
  }
  if (SPLIT) {
    DR_UNROLL
    for (int i = 0; i < NB * NP; i++)
      acc[i] = _mm256_add_ps(acc[i], acc[NB * NP + i]);
  }
  /* max_ps(lo, v) is lo > v ? lo : v and min_ps(hi, .) likewise: cpu_act_apply's relu and
   * clip, NaN and -0 included. */
  if (r->clamp) {
    const __m256 lo = _mm256_set1_ps(r->lo), hi = _mm256_set1_ps(r->hi);
    DR_UNROLL
    for (int i = 0; i < NB * NP; i++)
      acc[i] = _mm256_min_ps(hi, _mm256_max_ps(lo, acc[i]));
  }
  DR_UNROLL
  for (int b = 0; b < NB; b++) {
    DR_UNROLL
    for (int t = 0; t < NP; t++)
      _mm256_storeu_ps(y + (size_t)b * r->ybs + (size_t)t * 8, acc[b * NP + t]);
  }
}

typedef void (*dr_tile_fn)(const dr_row *r, int64_t ox0);

#define DR_FN(nb, np, s, e, name)                                                                  \
  DR_AVX2 static void name(const dr_row *r, int64_t ox0) { dr_tile_body(r, ox0, nb, np, s, e); }
/* Tiles of 8 and 16 outputs by 1..6 pixels and of 24 by 1..4, for stride s (0: any). */
#define DR_FNS(s, e, sfx)                                                                          \
  DR_FN(1, 1, s, e, dr_t1_1##sfx)                                                                  \
  DR_FN(1, 2, s, e, dr_t1_2##sfx)                                                                  \
  DR_FN(1, 3, s, e, dr_t1_3##sfx)                                                                  \
  DR_FN(1, 4, s, e, dr_t1_4##sfx)                                                                  \
  DR_FN(1, 5, s, e, dr_t1_5##sfx)                                                                  \
  DR_FN(1, 6, s, e, dr_t1_6##sfx)                                                                  \
  DR_FN(2, 1, s, e, dr_t2_1##sfx)                                                                  \
  DR_FN(2, 2, s, e, dr_t2_2##sfx)                                                                  \
  DR_FN(2, 3, s, e, dr_t2_3##sfx)                                                                  \
  DR_FN(2, 4, s, e, dr_t2_4##sfx)                                                                  \
  DR_FN(2, 5, s, e, dr_t2_5##sfx)                                                                  \
  DR_FN(2, 6, s, e, dr_t2_6##sfx)                                                                  \
  DR_FN(3, 1, s, e, dr_t3_1##sfx)                                                                  \
  DR_FN(3, 2, s, e, dr_t3_2##sfx)                                                                  \
  DR_FN(3, 3, s, e, dr_t3_3##sfx)                                                                  \
  DR_FN(3, 4, s, e, dr_t3_4##sfx)
DR_FNS(1, false, _s1)
DR_FNS(2, false, _s2)
DR_FNS(0, false, _sn)
/* Edge tiles are a few a row: the run-time stride serves them all. */
DR_FNS(0, true, _edge)
#undef DR_FNS
#undef DR_FN

#define DR_ROW(nb, sfx, t5, t6)                                                                    \
  { dr_t##nb##_1##sfx, dr_t##nb##_2##sfx, dr_t##nb##_3##sfx, dr_t##nb##_4##sfx, t5, t6 }
#define DR_TABLE(sfx)                                                                              \
  {                                                                                                \
    DR_ROW(1, sfx, dr_t1_5##sfx, dr_t1_6##sfx), DR_ROW(2, sfx, dr_t2_5##sfx, dr_t2_6##sfx),        \
        DR_ROW(3, sfx, NULL, NULL)                                                                 \
  }
/* [stride 1, 2, other, edge][output blocks - 1][pixels - 1]. */
static const dr_tile_fn dr_tiles[4][3][DR_NP] = {DR_TABLE(_s1), DR_TABLE(_s2), DR_TABLE(_sn),
                                                 DR_TABLE(_edge)};
#undef DR_TABLE
#undef DR_ROW
/* Pixels of a tile at most, by output blocks - 1: twelve accumulators. */
static const int64_t dr_most[3] = {DR_NP, DR_NP, 4};

typedef struct dr_job {
  const conv_plan *p;
  const float *x, *wp, *bias;
  float *y;
  bool clamp;     /* the activation is relu or clip: a clamp in the tiles' registers */
  bool row_act;   /* another activation than none: over each finished output row */
  float lo, hi;   /* the clamp's bounds */
  size_t units;   /* units of output channels (dr_units) */
  size_t kb;      /* input blocks per block of the depth */
  int64_t xa, xb; /* output columns whose windows lie inside the input row: [xa, xb) */
  size_t nbands;  /* bands per image */
  size_t groups;  /* groups of units */
  const dr_tile_fn (*tiles)[DR_NP]; /* by output blocks - 1: the interior tiles of the stride */
} dr_job;

/* One output row's tiles for one unit (nb output blocks) and one block of the depth: tiles of
 * nearly equal size, the edge ones checked column by column. */
DR_AVX2 static void dr_row_tiles(const dr_job *j, dr_row *r, int nb) {
  const int64_t ow = j->p->w.out[2], most = dr_most[nb - 1];
  const int64_t ntiles = (ow + most - 1) / most, base = ow / ntiles, extra = ow % ntiles;
  const dr_tile_fn *in = j->tiles[nb - 1], *edge = dr_tiles[3][nb - 1];
  int64_t ox = 0;
  for (int64_t t = 0; t < ntiles; t++) {
    int64_t np = base + (t < extra);
    bool inside = ox >= j->xa && ox + np <= j->xb;
    (inside ? in : edge)[np - 1](r, ox);
    r->pf += (uintptr_t)(r->pf_n * r->ncb * 64);
    ox += np;
  }
}

/* Items (image, band of output rows, group of units): unit by unit, block of the depth by
 * block, every row of the band. */
DR_AVX2 static void dr_task(void *arg, size_t begin, size_t end) {
  const dr_job *j = arg;
  const conv_plan *p = j->p;
  const nn_window *w = &p->w;
  const int64_t ih = w->in[1], iw = w->in[2], oh = w->out[1], ow = w->out[2];
  const int64_t kh = w->k[1], kw = w->k[2], sh = w->s[1], pt = w->pb[1];
  const size_t CB = p->C / CPU_NCHWC, MB = p->M / CPU_NCHWC, kk = p->kk;
  const size_t xcs = (size_t)(ih * iw) * 8, ybs = (size_t)(oh * ow) * 8;
  dr_row r = {.xcs = xcs,
              .xrs = (size_t)iw * 8,
              .kw = kw,
              .sw = w->s[2],
              .pl = w->pb[2],
              .iw = iw,
              .lo = j->lo,
              .hi = j->hi,
              .ybs = ybs};
  for (size_t it = begin; it < end; it++) {
    size_t g = it % j->groups, band = it / j->groups % j->nbands, n = it / j->groups / j->nbands;
    int64_t oy0 = oh * (int64_t)band / (int64_t)j->nbands;
    int64_t oy1 = oh * (int64_t)(band + 1) / (int64_t)j->nbands;
    size_t u0 = j->units * g / j->groups, u1 = j->units * (g + 1) / j->groups;
    for (size_t u = u0; u < u1; u++) {
      const size_t width = dr_unit_width(p->M, u);
      const int nb = (int)(width / 8);
      const float *wu = j->wp + u * 16 * p->C * kk;
      float *yu = j->y + (n * MB + 2 * u) * ybs;
      const size_t most = (size_t)dr_most[nb - 1];
      const size_t tiles = (size_t)(oy1 - oy0) * (((size_t)ow + most - 1) / most);
      r.wcs = kk * 8 * width;
      for (size_t cb0 = 0; cb0 < CB; cb0 += j->kb) {
        const size_t ncb = CB - cb0 < j->kb ? CB - cb0 : j->kb;
        const bool first = cb0 == 0, last = cb0 + ncb == CB;
        r.ncb = (int64_t)ncb;
        r.bias = first && j->bias ? j->bias + 16 * u : NULL;
        r.from_y = !first;
        r.clamp = last && j->clamp;
        /* The weights of the next block of the depth or the next unit, prefetched into L2 a
         * share a tile: touched first by a tile of their own, they would come from L3 or
         * memory at the pace of the FMAs. */
        const float *next = NULL;
        size_t next_floats = 0;
        if (!last) {
          next = wu + (cb0 + ncb) * r.wcs;
          next_floats = (CB - cb0 - ncb < j->kb ? CB - cb0 - ncb : j->kb) * r.wcs;
        } else if (u + 1 < u1) {
          next = wu + 16 * p->C * kk;
          next_floats = (CB < j->kb ? CB : j->kb) * kk * 8 * dr_unit_width(p->M, u + 1);
        }
        size_t lines = next_floats / 16, share = (lines + tiles - 1) / tiles;
        r.pf = (uintptr_t)next;
        r.pf_end = r.pf + next_floats * sizeof(float);
        r.pf_n = (int64_t)((share + ncb - 1) / ncb);
        for (int64_t oy = oy0; oy < oy1; oy++) {
          int64_t top = oy * sh - pt; /* input row of kernel row 0 */
          int64_t ky0 = top < 0 ? -top : 0, ky1 = ih - top < kh ? ih - top : kh;
          r.nky = ky1 > ky0 ? ky1 - ky0 : 0;
          r.x = j->x + (n * CB + cb0) * xcs + (r.nky ? (size_t)(top + ky0) * (size_t)iw * 8 : 0);
          r.w = wu + cb0 * r.wcs + (r.nky ? (size_t)(ky0 * kw) * 8 * width : 0);
          r.y = yu + (size_t)(oy * ow) * 8;
          dr_row_tiles(j, &r, nb);
          if (last && j->row_act)
            for (int b = 0; b < nb; b++)
              cpu_act_apply_row_avx2(&p->act, r.y + (size_t)b * ybs, (size_t)ow * 8);
        }
      }
    }
  }
}

int cpu_nchwc_direct(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wp,
                     const float *bias, float *y) {
  if (ctx->isa != CPU_ISA_AVX2_FMA)
    return cpu_fail(ctx, "the NCHW8c direct convolution needs AVX2 and FMA");
  if (!cpu_nchwc_direct_applies(p))
    return cpu_fail(ctx, "the NCHW8c direct convolution does not apply to this Conv (2-D, one "
                         "group, channels multiples of 8, dilation 1)");
  const nn_window *w = &p->w;
  const int64_t ih = w->in[1], iw = w->in[2], oh = w->out[1], ow = w->out[2];
  const int64_t kh = w->k[1], kw = w->k[2], sh = w->s[1], sw = w->s[2];
  if (p->N == 0 || oh <= 0 || ow <= 0)
    return 0;
  /* The sizes the kernel indexes: the input, the output and the packed weights. */
  size_t t;
  if (ih < 0 || iw < 0 || p->kk != (size_t)(kh * kw) || !nn_mul_size((size_t)ih, (size_t)iw, &t) ||
      !nn_mul_size(t, p->C, &t) || !nn_mul_size(t, p->N, &t) ||
      !nn_mul_size((size_t)oh, (size_t)ow, &t) || !nn_mul_size(t, p->M, &t) ||
      !nn_mul_size(t, p->N, &t) || !nn_mul_size(p->M, p->C, &t) || !nn_mul_size(t, p->kk, &t))
    return cpu_fail(ctx, "the NCHW8c direct convolution's tensors are too large");

  dr_job j = {.p = p, .x = x, .wp = wp, .bias = bias, .y = y};
  j.clamp = p->act.kind != CPU_ACT_NONE && cpu_act_clamp_bounds(&p->act, &j.lo, &j.hi);
  j.row_act = p->act.kind != CPU_ACT_NONE && !j.clamp;
  j.units = dr_units(p->M);
  size_t CB = p->C / CPU_NCHWC;
  size_t nkb = (p->C + DR_KB - 1) / DR_KB;
  j.kb = (CB + nkb - 1) / nkb; /* blocks of the depth of equal size */
  valid_range(ow, sw, -w->pb[2], iw - kw + 1, &j.xa, &j.xb);
  int si = sw == 1 ? 0 : sw == 2 ? 1 : 2;
  j.tiles = dr_tiles[si];

  /* Bands: as many output rows as keep their input rows within DR_BAND_BYTES, at least one;
   * of nearly equal size (dr_task). */
  double row_bytes = (double)p->C * (double)iw * sizeof(float);
  int64_t fit = (int64_t)((double)DR_BAND_BYTES / row_bytes);
  int64_t band = fit >= kh ? (fit - kh) / sh + 1 : 1;
  band = band < 1 ? 1 : band > oh ? oh : band;
  size_t nbands = (size_t)((oh + band - 1) / band);
  size_t groups = 1;
  /* Threads: each a few items, none below DR_ITEM_FLOPS; groups of units first (they share
   * the band's input in L2), then shorter bands. */
  size_t threads = cpu_thread_count(ctx);
  double flops =
      2.0 * (double)p->N * (double)(oh * ow) * (double)p->M * (double)p->C * (double)p->kk;
  if (threads > 1 && flops >= DR_SERIAL_FLOPS) {
    size_t want = threads * DR_ITEMS_PER_THREAD;
    size_t most = (size_t)(flops / DR_ITEM_FLOPS);
    want = want < most ? want : most ? most : 1;
    if (p->N * nbands < want) {
      groups = (want + p->N * nbands - 1) / (p->N * nbands);
      groups = groups < j.units ? groups : j.units;
    }
    if (p->N * nbands * groups < want) {
      size_t per_image = (want + p->N * groups - 1) / (p->N * groups);
      nbands = per_image < (size_t)oh ? per_image : (size_t)oh;
    }
    /* A count of items the threads share evenly: more groups, or else more bands. */
    size_t more = cpu_even_items(groups, p->N * nbands, threads, j.units);
    if (more != groups)
      groups = more;
    else
      nbands = cpu_even_items(nbands, p->N * groups, threads, (size_t)oh);
  }
  j.nbands = nbands;
  j.groups = groups;
  size_t items = p->N * j.nbands * j.groups;
  cpu_parallel_for(ctx, items, 1, dr_task, &j);
  return 0;
}

#else
/* ISO C forbids an empty translation unit. */
typedef int cpu_conv_nchwc_direct_unused;
#endif
