/* Pointwise (1x1, stride 1, unpadded, one group) convolution over the channel-blocked layout
 * NCHW8c (nchwc.h), float32, AVX2 + FMA: the sibling of the GEMM's 6x16 micro-kernel
 * (gemm_avx2.c) that reads its input in place.
 *
 * The register tile is six pixels by sixteen output channels, twelve accumulators. In NCHW8c
 * the eight channels of one pixel lie together, so the six pixels of a tile are six runs of
 * eight floats in each input block, and the tile's outputs are six whole vectors in each of
 * its two output blocks: the input is the GEMM's A as it lies (pixels the rows, channels the
 * depth), read with broadcasts, with no packing, and the output needs no transpose. The
 * weights are packed once (cpu_nchwc_pw_pack) as the GEMM's B, in panels of sixteen output
 * channels. */
#include "devices/cpu/nchwc.h"

#ifdef CPU_NCHWC_HAVE_AVX2

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "devices/cpu/vmath_avx2.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Output channels of one panel of the packed weights, pixels of a whole tile. */
enum { PW_NR = 16, PW_MR = 6 };

/* Input channels per block of the depth at most; a deeper layer keeps its partial sums in y
 * between blocks. Blocks bound the weights a unit reads again for every tile (C x 64 bytes a
 * panel) to what L2 holds. Smaller blocks, meant to keep a block of a panel in L1 across the
 * tiles, measured slower (one thread, alternating in one process, GFLOP/s): with 256 channels
 * 2048 -> 512 over 7x7 81 against 91 unblocked, 1024 -> 1024 over 7x7 96 against 107, 2048 ->
 * 16 93 against 100; with 1024, 2048 -> 512 over 14x14 81 against 90. Layers up to 576
 * channels tied. */
#define PW_KB 2048
/* Bytes of input (pixels x channels) in one chunk of pixels, which every unit of output
 * channels reads again from L2. 64 KiB to 256 KiB measured alike; 512 KiB lost 15% on
 * 16 -> 96 over 112x112 (103 -> 87 GFLOP/s), whose outputs then outgrew L2 before the chunk
 * was done. */
#define PW_CHUNK_BYTES (128 * 1024)
/* Pixels of a chunk at least, when the input is deep: every chunk reads all the weights. At
 * most: a shallow input's chunk stops growing there. */
#define PW_CHUNK_MIN 48
#define PW_CHUNK_MAX 1536
/* Work items per thread (image x chunk x group of units) when there are several threads;
 * below PW_SERIAL_FLOPS a layer stays on the calling thread (as cpu_sgemm_run decides), and
 * no item is cut below PW_ITEM_FLOPS (some five microseconds of work). */
#define PW_ITEMS_PER_THREAD 4
/* While a unit runs its tiles, they bring the next unit's weights (of the same block of the
 * depth) into L2, each tile a share of the lines, a few a block of its depth (pw_tile_body's
 * pf). In a model the weights come from memory on every run, and without this the first tile
 * of every unit waited for its panel: a shallow panel (C x 64 bytes, 12 KiB for 192 channels)
 * is too short a stream for the hardware prefetcher, and a deep one (73 KiB for 1152) takes
 * longer to arrive than the first tile takes to use it. Prefetching it all from the first tile
 * instead flooded that tile (MNASNet's 1152 -> 192 layers 5% slower on two threads), so it
 * was kept to panels of at most 512 channels. Spread over the tiles and done for every depth,
 * per-node minima of alternating processes, one thread: MNASNet's 1x1 layers 5.34 -> 5.22 ms
 * (two threads 2.84 -> 2.80), ResNet-50's 34.4 -> 33.8, EfficientNet-B0's 7.59 -> 7.45. */
#define PW_SERIAL_FLOPS 2e6
#define PW_ITEM_FLOPS 5e5

size_t cpu_nchwc_pw_packed_floats(size_t C, size_t M) {
  return (M + PW_NR - 1) / PW_NR * PW_NR * C;
}

/* Panel q holds, for each input channel c, W[16q .. 16q + 15][c]: C rows of sixteen floats,
 * one cache line each. Past M (M % 16 == 8) the rows are zero-padded. */
void cpu_nchwc_pw_pack(const float *w, size_t C, size_t M, float *dst) {
  size_t panels = (M + PW_NR - 1) / PW_NR;
  for (size_t q = 0; q < panels; q++)
    for (size_t c = 0; c < C; c++) {
      float *d = dst + (q * C + c) * PW_NR;
      for (size_t l = 0; l < PW_NR; l++) {
        size_t m = q * PW_NR + l;
        d[l] = m < M ? w[m * C + c] : 0.0f;
      }
    }
}

/* ---- The register tile ------------------------------------------------------------------ */

/* The shapes of a tile. FULL: R <= 6 pixels by a panel, two output blocks. When M % 16 == 8,
 * the last panel is half zeros and its second output block does not exist: 24, R <= 4 pixels
 * by the last whole panel and that half one (three weight vectors and four broadcasts for
 * twelve FMAs; against six pixels by the half panel alone, 96 -> 24 over 56x56 went from 99
 * to 113 GFLOP/s); SPLIT, R <= 6 pixels by the half panel when it is alone (M = 8), the even
 * steps and the odd ones going to separate accumulators so that twelve chains of FMAs stay in
 * flight. Twelve pixels by the half panel instead measured 20% slower than SPLIT: with a
 * broadcast per FMA, the broadcasts (two a cycle on Zen 4) bound it. */
enum { PW_FULL, PW_SPLIT, PW_24 };

/* One tile of R pixels (R and shape constants in each specialisation) over nblk input
 * blocks: x is the tile's first pixel in the first block (blocks xs floats apart), w the rows
 * of those channels in the panel (aligned; for 24, w2 those of the half panel), y the tile's
 * first pixel in the first output block (the next ys floats on). The accumulators start from
 * y (from_y: a later block of the depth) or else from bias (the panel's 16 or 24 floats, or
 * NULL) plus res (laid out like y, or NULL); they end clamped to [bounds[0], bounds[1]] when
 * bounds is not NULL. Full tiles of one or two pixels split the steps too (c2x, c3x hold the
 * odd ones), for eight chains instead of four. pf_n lines of the next unit's weights from pf
 * on go to L2 meanwhile, spread over the blocks (pf NULL when pf_n is 0).
 *
 * One broadcast register at a time, as in gemm_avx2.c: twelve accumulators, two weight
 * vectors and the broadcast take fifteen registers (24: three and sixteen; gcc keeps them all
 * in registers). */
AVX2 static ALWAYS_INLINE void pw_tile_body(const float *x, size_t xs, size_t nblk, const float *w,
                                            float *y, size_t ys, const float *bias,
                                            const float *res, bool from_y, const float *bounds,
                                            const float *w2, const float *pf, size_t pf_n,
                                            const int R, const int shape) {
  const bool one_vec = shape == PW_SPLIT; /* one weight vector a step */
  const __m256 zero = _mm256_setzero_ps();
  __m256 c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero;
  __m256 c30 = zero, c31 = zero, c40 = zero, c41 = zero, c50 = zero, c51 = zero;
  if (from_y) {
#define PW_INIT(i, a0, a1)                                                                         \
  if (R > (i)) {                                                                                   \
    a0 = _mm256_loadu_ps(y + (i)*8);                                                               \
    if (shape != PW_SPLIT)                                                                         \
      a1 = _mm256_loadu_ps(y + ys + (i)*8);                                                        \
  }
    PW_INIT(0, c00, c01)
    PW_INIT(1, c10, c11)
    PW_INIT(2, c20, c21)
    PW_INIT(3, c30, c31)
    if (shape == PW_24) {
      c40 = _mm256_loadu_ps(y + 2 * ys);
      if (R > 1)
        c41 = _mm256_loadu_ps(y + 2 * ys + 8);
      if (R > 2)
        c50 = _mm256_loadu_ps(y + 2 * ys + 16);
      if (R > 3)
        c51 = _mm256_loadu_ps(y + 2 * ys + 24);
    } else {
      PW_INIT(4, c40, c41)
      PW_INIT(5, c50, c51)
    }
#undef PW_INIT
  } else if (bias || res) {
    const __m256 b0 = bias ? _mm256_loadu_ps(bias) : zero;
    const __m256 b1 = !bias ? zero : one_vec ? b0 : _mm256_loadu_ps(bias + 8);
    const __m256 b2 = shape == PW_24 && bias ? _mm256_loadu_ps(bias + 16) : zero;
#define PW_INIT(i, a0, a1)                                                                         \
  if (R > (i)) {                                                                                   \
    a0 = res ? _mm256_add_ps(b0, _mm256_loadu_ps(res + (i)*8)) : b0;                               \
    if (shape != PW_SPLIT)                                                                         \
      a1 = res ? _mm256_add_ps(b1, _mm256_loadu_ps(res + ys + (i)*8)) : b1;                        \
  }
    PW_INIT(0, c00, c01)
    PW_INIT(1, c10, c11)
    PW_INIT(2, c20, c21)
    PW_INIT(3, c30, c31)
    if (shape == PW_24) {
      const float *r2 = res ? res + 2 * ys : NULL;
      c40 = res ? _mm256_add_ps(b2, _mm256_loadu_ps(r2)) : b2;
      if (R > 1)
        c41 = res ? _mm256_add_ps(b2, _mm256_loadu_ps(r2 + 8)) : b2;
      if (R > 2)
        c50 = res ? _mm256_add_ps(b2, _mm256_loadu_ps(r2 + 16)) : b2;
      if (R > 3)
        c51 = res ? _mm256_add_ps(b2, _mm256_loadu_ps(r2 + 24)) : b2;
    } else {
      PW_INIT(4, c40, c41)
      PW_INIT(5, c50, c51)
    }
#undef PW_INIT
  }

  /* Step j of a block: input channel 8b + j, row j of the block's weights. */
#define PW_ROW(i, j, a0, a1, a2)                                                                   \
  if (R > (i)) {                                                                                   \
    __m256 av = _mm256_broadcast_ss(x + (i)*8 + (j));                                              \
    if (shape == PW_FULL) {                                                                        \
      a0 = _mm256_fmadd_ps(av, w0, a0);                                                            \
      a1 = _mm256_fmadd_ps(av, w1, a1);                                                            \
    } else if (shape == PW_24) {                                                                   \
      a0 = _mm256_fmadd_ps(av, w0, a0);                                                            \
      a1 = _mm256_fmadd_ps(av, w1, a1);                                                            \
      a2 = _mm256_fmadd_ps(av, _mm256_load_ps(w2 + (j)*PW_NR), a2);                                \
    } else if ((j)&1) {                                                                            \
      a1 = _mm256_fmadd_ps(av, w0, a1);                                                            \
    } else {                                                                                       \
      a0 = _mm256_fmadd_ps(av, w0, a0);                                                            \
    }                                                                                              \
  }
#define PW_STEP(j)                                                                                 \
  do {                                                                                             \
    const __m256 w0 = _mm256_load_ps(w + (j)*PW_NR);                                               \
    const __m256 w1 = one_vec ? w0 : _mm256_load_ps(w + (j)*PW_NR + 8);                            \
    if (shape == PW_FULL && R <= 2 && ((j)&1)) {                                                   \
      PW_ROW(0, j, c20, c21, c20)                                                                  \
      PW_ROW(1, j, c30, c31, c30)                                                                  \
    } else if (shape == PW_24) {                                                                   \
      PW_ROW(0, j, c00, c01, c40)                                                                  \
      PW_ROW(1, j, c10, c11, c41)                                                                  \
      PW_ROW(2, j, c20, c21, c50)                                                                  \
      PW_ROW(3, j, c30, c31, c51)                                                                  \
    } else {                                                                                       \
      PW_ROW(0, j, c00, c01, c00)                                                                  \
      PW_ROW(1, j, c10, c11, c10)                                                                  \
      PW_ROW(2, j, c20, c21, c20)                                                                  \
      PW_ROW(3, j, c30, c31, c30)                                                                  \
      PW_ROW(4, j, c40, c41, c40)                                                                  \
      PW_ROW(5, j, c50, c51, c50)                                                                  \
    }                                                                                              \
  } while (0)
  /* pf_n lines of the next unit's weights from pf on, per_blk of them a block. */
  const size_t per_blk = nblk ? (pf_n + nblk - 1) / nblk : 0;
  for (size_t b = 0; b < nblk; b++) {
    for (size_t l = 0; l < per_blk && pf_n; l++, pf_n--, pf += PW_NR)
      _mm_prefetch((const char *)pf, _MM_HINT_T1);
    PW_STEP(0);
    PW_STEP(1);
    PW_STEP(2);
    PW_STEP(3);
    PW_STEP(4);
    PW_STEP(5);
    PW_STEP(6);
    PW_STEP(7);
    x += xs;
    w += CPU_NCHWC * PW_NR;
    if (shape == PW_24)
      w2 += CPU_NCHWC * PW_NR;
  }
#undef PW_STEP
#undef PW_ROW

  if (shape == PW_SPLIT) {
    c00 = _mm256_add_ps(c00, c01), c10 = _mm256_add_ps(c10, c11);
    c20 = _mm256_add_ps(c20, c21), c30 = _mm256_add_ps(c30, c31);
    c40 = _mm256_add_ps(c40, c41), c50 = _mm256_add_ps(c50, c51);
  } else if (shape == PW_FULL && R <= 2) {
    c00 = _mm256_add_ps(c00, c20), c01 = _mm256_add_ps(c01, c21);
    c10 = _mm256_add_ps(c10, c30), c11 = _mm256_add_ps(c11, c31);
  }
  /* max_ps(lo, v) is lo > v ? lo : v and min_ps(hi, .) likewise: cpu_act_apply's relu and
   * clip, NaN and -0 included. */
  if (bounds) {
    const __m256 lo = _mm256_broadcast_ss(bounds), hi = _mm256_broadcast_ss(bounds + 1);
#define PW_CLAMP(i, a0, a1)                                                                        \
  if (R > (i)) {                                                                                   \
    a0 = _mm256_min_ps(hi, _mm256_max_ps(lo, a0));                                                 \
    if (shape != PW_SPLIT)                                                                         \
      a1 = _mm256_min_ps(hi, _mm256_max_ps(lo, a1));                                               \
  }
    PW_CLAMP(0, c00, c01)
    PW_CLAMP(1, c10, c11)
    PW_CLAMP(2, c20, c21)
    PW_CLAMP(3, c30, c31)
    if (shape == PW_24) {
      c40 = _mm256_min_ps(hi, _mm256_max_ps(lo, c40));
      c41 = _mm256_min_ps(hi, _mm256_max_ps(lo, c41));
      c50 = _mm256_min_ps(hi, _mm256_max_ps(lo, c50));
      c51 = _mm256_min_ps(hi, _mm256_max_ps(lo, c51));
    } else {
      PW_CLAMP(4, c40, c41)
      PW_CLAMP(5, c50, c51)
    }
#undef PW_CLAMP
  }
#define PW_STORE(i, a0, a1)                                                                        \
  if (R > (i)) {                                                                                   \
    _mm256_storeu_ps(y + (i)*8, a0);                                                               \
    if (shape != PW_SPLIT)                                                                         \
      _mm256_storeu_ps(y + ys + (i)*8, a1);                                                        \
  }
  PW_STORE(0, c00, c01)
  PW_STORE(1, c10, c11)
  PW_STORE(2, c20, c21)
  PW_STORE(3, c30, c31)
  if (shape == PW_24) {
    _mm256_storeu_ps(y + 2 * ys, c40);
    if (R > 1)
      _mm256_storeu_ps(y + 2 * ys + 8, c41);
    if (R > 2)
      _mm256_storeu_ps(y + 2 * ys + 16, c50);
    if (R > 3)
      _mm256_storeu_ps(y + 2 * ys + 24, c51);
  } else {
    PW_STORE(4, c40, c41)
    PW_STORE(5, c50, c51)
  }
#undef PW_STORE
}

typedef void (*pw_tile_fn)(const float *x, size_t xs, size_t nblk, const float *w, float *y,
                           size_t ys, const float *bias, const float *res, bool from_y,
                           const float *bounds, const float *w2, const float *pf, size_t pf_n);

#define PW_TILE_FN(name, r, shape)                                                                 \
  AVX2 static void name(const float *x, size_t xs, size_t nblk, const float *w, float *y,          \
                        size_t ys, const float *bias, const float *res, bool from_y,               \
                        const float *bounds, const float *w2, const float *pf, size_t pf_n) {      \
    pw_tile_body(x, xs, nblk, w, y, ys, bias, res, from_y, bounds, w2, pf, pf_n, r, shape);        \
  }
PW_TILE_FN(pw_tile_1, 1, PW_FULL)
PW_TILE_FN(pw_tile_2, 2, PW_FULL)
PW_TILE_FN(pw_tile_3, 3, PW_FULL)
PW_TILE_FN(pw_tile_4, 4, PW_FULL)
PW_TILE_FN(pw_tile_5, 5, PW_FULL)
PW_TILE_FN(pw_tile_6, 6, PW_FULL)
PW_TILE_FN(pw_tile_1h, 1, PW_SPLIT)
PW_TILE_FN(pw_tile_2h, 2, PW_SPLIT)
PW_TILE_FN(pw_tile_3h, 3, PW_SPLIT)
PW_TILE_FN(pw_tile_4h, 4, PW_SPLIT)
PW_TILE_FN(pw_tile_5h, 5, PW_SPLIT)
PW_TILE_FN(pw_tile_6h, 6, PW_SPLIT)
PW_TILE_FN(pw_tile_1t, 1, PW_24)
PW_TILE_FN(pw_tile_2t, 2, PW_24)
PW_TILE_FN(pw_tile_3t, 3, PW_24)
PW_TILE_FN(pw_tile_4t, 4, PW_24)
#undef PW_TILE_FN

/* By pixels - 1: FULL and SPLIT ([width == 8]), and 24. */
static const pw_tile_fn pw_tiles[2][PW_MR] = {
    {pw_tile_1, pw_tile_2, pw_tile_3, pw_tile_4, pw_tile_5, pw_tile_6},
    {pw_tile_1h, pw_tile_2h, pw_tile_3h, pw_tile_4h, pw_tile_5h, pw_tile_6h}};
static const pw_tile_fn pw_tiles24[4] = {pw_tile_1t, pw_tile_2t, pw_tile_3t, pw_tile_4t};

/* ---- The driver ------------------------------------------------------------------------- */

/* M output channels as units of the packed panels: panels of 16, but when M % 16 == 8 the last
 * unit is 24 wide (the last whole panel and the half one) or, for M = 8, 8. And C input
 * channels in blocks of the depth of equal size, a multiple of eight, at most PW_KB. */
static void pw_shape(size_t C, size_t M, size_t *units, size_t *last_width, size_t *kb) {
  size_t panels = (M + PW_NR - 1) / PW_NR;
  bool half = M % PW_NR != 0;
  *units = half && panels > 1 ? panels - 1 : panels;
  *last_width = !half ? PW_NR : panels > 1 ? PW_NR + CPU_NCHWC : CPU_NCHWC;
  size_t nkb = (C + PW_KB - 1) / PW_KB;
  *kb = nkb ? (C / CPU_NCHWC + nkb - 1) / nkb * CPU_NCHWC : CPU_NCHWC;
}

/* Unit q's rows of the input channels [c0, c0 + kc) in weights wp packed for C inputs in
 * units as pw_shape cuts them, and in *lines their cache lines, for the tiles of the unit
 * before to bring into L2: a line a channel, and for a last unit of 24 its half panel's too
 * when the block is the whole depth (the two panels' rows then lie together). */
static const float *pw_unit_rows(const float *wp, size_t C, size_t units, size_t last_width,
                                 size_t q, size_t c0, size_t kc, size_t *lines) {
  *lines = kc == C && q + 1 == units && last_width == 24 ? 2 * kc : kc;
  return wp + (q * C + c0) * PW_NR;
}

typedef struct pw_job {
  size_t C, M, HW;
  const float *x, *wp, *bias, *scale, *res;
  float *y;
  cpu_act act;
  const float *bounds; /* relu and clip: [lo, hi] of the clamp the tiles apply; else NULL */
  float lohi[2];
  size_t units, last_width;     /* units of output channels (pw_shape) */
  size_t kb;                    /* input channels per block of the depth */
  size_t chunk, chunks, groups; /* most pixels of a chunk, chunks per image, groups of units */
  bool scale_x;                 /* under a scale: scale a copy of the input, not the weights */
  atomic_int failed;
} pw_job;

/* The first pixel of chunk k of an image of HW pixels cut into n (k = n: HW): k / n of the
 * way, down to a multiple of twelve, so that only the last chunk ends in a partial tile of six
 * (whole panels) or four (a unit of 24), and the chunks differ by at most twelve pixels (cut
 * into chunks of one rounded size, 784 pixels went 10 x 72 + 64, eleven items that two threads
 * share six to five). The caller keeps HW / n at 24 or more, so that no chunk is empty. */
static size_t pw_chunk_start(size_t HW, size_t n, size_t k) {
  return k >= n ? HW : k * HW / n / 12 * 12;
}

/* The tiles of one unit (panel q, width 8, 16 or 24 channels) over np pixels and one block
 * of the depth (nblk input blocks): xc is the first pixel in the first block (blocks xs floats
 * apart), yq and rq the first pixel in the unit's first output block (blocks ys floats
 * apart); the rest as pw_tile_body describes them. The pf_lines lines from pf on (the next
 * unit's weights) are shared out over the tiles, so that none of them waits on many. */
AVX2 static void pw_unit_tiles(size_t width, const float *xc, size_t xs, size_t nblk,
                               const float *w, const float *w2, float *yq, size_t ys,
                               const float *bias, const float *rq, bool from_y, const float *bounds,
                               const float *pf, size_t pf_lines, size_t np) {
  /* The fewest tiles that cover np pixels, of sizes that differ by one at most (the first
   * `extra` tiles one pixel more): 49 pixels are 4 x 6 + 5 x 5 rather than 8 x 6 + 1, whose
   * last tile of one pixel runs four chains of FMAs at 1.5 loads a multiply-add. One thread,
   * the least of 16 alternating runs: 512 -> 2048 over 7x7 1.00 -> 0.97 ms, 2048 -> 512
   * 0.96 -> 0.92; 1152 -> 192 and 192 -> 1152 over 7x7 alike. */
  size_t p = 0;
  if (np == 0)
    return;
#define PW_TILES(tr, fns)                                                                          \
  {                                                                                                \
    size_t tiles = (np + (tr)-1) / (tr), base = np / tiles, extra = np % tiles;                    \
    for (size_t t = 0; t < tiles; t++) {                                                           \
      size_t r = base + (t < extra), o = p * CPU_NCHWC;                                            \
      size_t l0 = pf_lines * t / tiles, l1 = pf_lines * (t + 1) / tiles;                           \
      (fns)[r - 1](xc + o, xs, nblk, w, yq + o, ys, bias, rq ? rq + o : NULL, from_y, bounds, w2,  \
                   pf ? pf + l0 * PW_NR : NULL, l1 - l0);                                          \
      p += r;                                                                                      \
    }                                                                                              \
  }
  if (width == 24)
    PW_TILES(4, pw_tiles24)
  else
    PW_TILES(PW_MR, pw_tiles[width == 8])
#undef PW_TILES
}

/* Items [i0, i1), each (image, chunk of pixels, group of units): unit by unit, every tile of
 * the chunk over the whole depth (or block of it by block). The chunk's input stays in L2 for
 * the units, and a unit's weights (C x 64 or 128 bytes) in L2 for the tiles.
 *
 * Under a scale, either the chunk's input is first copied scaled (scale_x: one multiply an
 * input float, against M multiply-adds each) or a unit's weights are (one multiply a weight,
 * against as many multiply-adds as the chunk has pixels): whichever copies less, the input
 * when the group has more output channels than the chunk pixels. Measured on one thread
 * (GFLOP/s), copying the weights cost 7-10% over 7x7 (960 -> 160: 99 against 109 copying the
 * input) and copying the input as much over large planes with few outputs (144 -> 24 over
 * 56x56: 96 against 111); so chosen, a scale costs at most about 3%. The copy is the task's
 * own. */
AVX2 static void pw_task(void *arg, size_t i0, size_t i1) {
  pw_job *j = arg;
  const size_t C = j->C, M = j->M, HW = j->HW, ys = HW * CPU_NCHWC;
  float *buf = NULL;
  if (j->scale &&
      !(buf = nn_alloc_aligned(j->scale_x ? j->chunk * C : 2 * j->kb * PW_NR, sizeof(float)))) {
    atomic_store(&j->failed, 1);
    return;
  }
  for (size_t it = i0; it < i1; it++) {
    size_t g = it % j->groups, k = it / j->groups % j->chunks, n = it / j->groups / j->chunks;
    size_t p0 = pw_chunk_start(HW, j->chunks, k), np = pw_chunk_start(HW, j->chunks, k + 1) - p0;
    size_t u0 = j->units * g / j->groups, u1 = j->units * (g + 1) / j->groups;
    const float *xn = j->x + n * C * HW + p0 * CPU_NCHWC;
    const float *sn = j->scale ? j->scale + n * C : NULL;
    const float *rn = j->res ? j->res + n * M * HW + p0 * CPU_NCHWC : NULL;
    float *yn = j->y + n * M * HW + p0 * CPU_NCHWC;
    size_t xs = ys;
    if (sn && j->scale_x) {
      /* The chunk's pixels of each block, now np apart. */
      for (size_t cb = 0; cb < C / CPU_NCHWC; cb++) {
        const __m256 f = _mm256_loadu_ps(sn + cb * CPU_NCHWC);
        const float *src = xn + cb * ys;
        float *d = buf + cb * np * CPU_NCHWC;
        for (size_t p = 0; p < np * CPU_NCHWC; p += CPU_NCHWC)
          _mm256_store_ps(d + p, _mm256_mul_ps(f, _mm256_loadu_ps(src + p)));
      }
      xn = buf;
      xs = np * CPU_NCHWC;
      sn = NULL;
    }
    for (size_t q = u0; q < u1; q++) {
      const size_t width = q + 1 == j->units ? j->last_width : PW_NR;
      /* The unit this task does next: the group's next, or the next item's first. */
      size_t q_next = q + 1 < u1 ? q + 1 : SIZE_MAX;
      if (q + 1 == u1 && it + 1 < i1)
        q_next = j->units * ((it + 1) % j->groups) / j->groups;
      float *yq = yn + 2 * q * ys;
      for (size_t c0 = 0; c0 < C; c0 += j->kb) {
        size_t kc = C - c0 < j->kb ? C - c0 : j->kb;
        const float *w = j->wp + (q * C + c0) * PW_NR;
        const float *w2 = width == 24 ? w + C * PW_NR : NULL;
        if (sn) {
          float *d = buf;
          for (const float *src = w; src; src = src == w ? w2 : NULL, d += kc * PW_NR)
            for (size_t c = 0; c < kc; c++) {
              __m256 f = _mm256_broadcast_ss(sn + c0 + c);
              _mm256_store_ps(d + c * PW_NR, _mm256_mul_ps(f, _mm256_load_ps(src + c * PW_NR)));
              _mm256_store_ps(d + c * PW_NR + 8,
                              _mm256_mul_ps(f, _mm256_load_ps(src + c * PW_NR + 8)));
            }
          w = buf;
          w2 = w2 ? buf + kc * PW_NR : NULL;
        }
        const bool first = c0 == 0;
        size_t pf_lines = 0;
        const float *pf = q_next < j->units ? pw_unit_rows(j->wp, C, j->units, j->last_width,
                                                           q_next, c0, kc, &pf_lines)
                                            : NULL;
        pw_unit_tiles(width, xn + c0 / CPU_NCHWC * xs, xs, kc / CPU_NCHWC, w, w2, yq, ys,
                      first && j->bias ? j->bias + q * PW_NR : NULL,
                      first && rn ? rn + 2 * q * ys : NULL, !first, c0 + kc == C ? j->bounds : NULL,
                      pf, pf_lines, np);
      }
      if (j->act.kind != CPU_ACT_NONE && !j->bounds)
        for (size_t ob = 0; ob < width / CPU_NCHWC; ob++)
          cpu_act_apply_row_avx2(&j->act, yq + ob * ys, np * CPU_NCHWC);
    }
  }
  free(buf);
}

/* The product alone over np pixels on the calling thread, for kernels that hold blocked
 * operands of their own (the blocked Winograd's transformed tiles): units and blocks of the
 * depth as pw_task takes them, no bias, no activation. wp_next, when not NULL, is the weights
 * of the product the caller runs next (same C and M), whose first unit the last one brings
 * into L2. The Winograd products read a layer's transformed weights from memory once each
 * (16 x 512 x 512 floats, 16 MiB, for ResNet-50's last 3x3 layers): prefetching made them
 * 20% faster (per-node minima, one thread: F(2x2) layers 11.1 -> 8.7 ms, F(4x4) 4.5 -> 4.3;
 * two threads F(2x2) 6.5 -> 5.6, F(4x4) within the noise). */
AVX2 void cpu_nchwc_pw_product(const float *x, size_t xs, size_t C, size_t M, size_t np,
                               const float *wp, float *y, size_t ys, bool accumulate,
                               const float *wp_next) {
  if (C == 0 || M == 0 || np == 0)
    return;
  size_t units, last_width, kb;
  pw_shape(C, M, &units, &last_width, &kb);
  for (size_t q = 0; q < units; q++) {
    const size_t width = q + 1 == units ? last_width : PW_NR;
    float *yq = y + 2 * q * ys;
    for (size_t c0 = 0; c0 < C; c0 += kb) {
      size_t kc = C - c0 < kb ? C - c0 : kb;
      const float *w = wp + (q * C + c0) * PW_NR;
      const float *w2 = width == 24 ? w + C * PW_NR : NULL;
      /* The next unit's weights into L2 meanwhile, as pw_task brings them; the last unit
       * brings the first of the next product's. */
      size_t pf_lines = 0;
      const float *pf =
          q + 1 < units ? pw_unit_rows(wp, C, units, last_width, q + 1, c0, kc, &pf_lines)
          : wp_next     ? pw_unit_rows(wp_next, C, units, last_width, 0, c0, kc, &pf_lines)
                        : NULL;
      pw_unit_tiles(width, x + c0 / CPU_NCHWC * xs, xs, kc / CPU_NCHWC, w, w2, yq, ys, NULL, NULL,
                    accumulate || c0 > 0, NULL, pf, pf_lines, np);
    }
  }
}

/* Chunks are a multiple of twelve pixels, so that only the last chunk of an image ends in a
 * partial tile of six (whole panels) or four (a unit of 24). */
static size_t pw_round12(size_t v) { return (v + 11) / 12 * 12; }

int cpu_nchwc_pointwise(cpu_ctx *ctx, size_t N, size_t C, size_t M, size_t HW, const float *x,
                        const float *wp, const float *bias, const float *scale, const float *res,
                        const cpu_act *act, float *y) {
  if (N == 0 || M == 0 || HW == 0)
    return 0;
  pw_job j = {.C = C,
              .M = M,
              .HW = HW,
              .x = x,
              .wp = wp,
              .bias = bias,
              .scale = scale,
              .res = res,
              .y = y,
              .act = *act};
  pw_shape(C, M, &j.units, &j.last_width, &j.kb);
  if (act->kind == CPU_ACT_RELU || act->kind == CPU_ACT_CLIP) {
    cpu_act_clamp_bounds(act, &j.lohi[0], &j.lohi[1]);
    j.bounds = j.lohi;
  }
  /* Chunks of pixels: what fits PW_CHUNK_BYTES, or with several threads fewer pixels, until
   * each thread has a few items; of nearly equal size (pw_chunk_start). */
  size_t chunk = PW_CHUNK_BYTES / (C ? C * sizeof(float) : 1);
  chunk = chunk < PW_CHUNK_MIN ? PW_CHUNK_MIN : chunk > PW_CHUNK_MAX ? PW_CHUNK_MAX : chunk;
  size_t threads = cpu_thread_count(ctx), want = threads * PW_ITEMS_PER_THREAD;
  double flops = 2.0 * (double)N * (double)HW * (double)C * (double)M;
  if (flops < PW_SERIAL_FLOPS)
    threads = 1;
  if (threads > 1) {
    size_t per_image = (want + N - 1) / N, even = pw_round12((HW + per_image - 1) / per_image);
    if (even < chunk)
      chunk = even < PW_CHUNK_MIN ? PW_CHUNK_MIN : even;
  }
  /* The nearest count, so that a chunk is not halved for a few pixels over; with several
   * threads, and chunks enough for them, a count the threads share evenly (784 pixels in 7
   * chunks, 6 of 120 and one of 64, made two threads' shares 4 to 3; in 8 of 96-108 even). */
  size_t chunks = (HW + chunk / 2) / chunk;
  if (chunks == 0)
    chunks = 1;
  if (threads > 1 && N * chunks >= threads)
    chunks = cpu_even_items(chunks, N, threads, HW / 24);
  j.chunks = chunks;
  j.chunk = 0;
  for (size_t k = 0; k < chunks; k++) {
    size_t np = pw_chunk_start(HW, chunks, k + 1) - pw_chunk_start(HW, chunks, k);
    j.chunk = np > j.chunk ? np : j.chunk;
  }
  /* Then the units in groups, for planes too small for chunks enough (7x7, 14x14): each
   * group reads the chunk's input again. A plane of one chunk (7x7) takes a group per unit:
   * in groups of one and two units, as many as the threads want, the threads' shares
   * differed by a unit (12 units in 8 groups), and MNASNet's 1152 -> 192 layers took 15%
   * longer on two threads (0.137 against 0.118 ms). Otherwise as many groups as make the
   * items a multiple of the threads, where the units allow. */
  j.groups = 1;
  if (threads > 1 && N * j.chunks < want) {
    size_t most = (size_t)(flops / (double)(N * j.chunks) / PW_ITEM_FLOPS);
    j.groups = (want + N * j.chunks - 1) / (N * j.chunks);
    j.groups = j.groups < most ? j.groups : most ? most : 1;
    j.groups = cpu_even_items(j.groups, N * j.chunks, threads, j.units < most ? j.units : most);
    if (j.chunks == 1)
      j.groups = j.units;
    j.groups = j.groups < j.units ? j.groups : j.units;
  }
  j.scale_x = j.chunk < j.units / j.groups * PW_NR;
  size_t items = N * j.chunks * j.groups;
  atomic_init(&j.failed, 0);
  cpu_parallel_for(ctx, items, threads > 1 ? 1 : items, pw_task, &j);
  if (atomic_load(&j.failed))
    return cpu_fail(ctx, "out of memory for the scaled copy of a pointwise Conv's %s",
                    j.scale_x ? "input" : "weights");
  return 0;
}

#else
/* ISO C forbids an empty translation unit. */
typedef int cpu_conv_nchwc_pw_unused;
#endif
