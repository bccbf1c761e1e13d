/* The stem of an image CNN: a Conv over an NCHW input of a few channels (an RGB image) whose
 * output lies blocked, NCHW8c, for the layers after it (nchwc.h).
 *
 * Its im2col GEMM would be shallow (C*kh*kw = 27 for a 3x3 stem over RGB) and would write and
 * read a matrix nine times the input for each output, so it runs as a direct convolution. The
 * register tile is NP output pixels of one output row by 16 output channels, two vectors of
 * eight: for each tap (c, ky, kx) the tile loads the tap's two weight vectors and broadcasts
 * the input value under each pixel, 12 FMAs for 2 + 6 loads with NP = 6 (12 accumulators, two
 * weights and a broadcast in the 16 ymm registers). Zen 4 issues two FMAs and more than two
 * loads a cycle, so the FMAs bound it: the 7x7 ResNet stem runs at some 110 GFLOP/s on one
 * core, the 3x3 ones at 95-100. The last eight channels when M % 16 == 8 take a tile of 12
 * pixels by eight channels (one weight vector, 12 broadcasts) rather than a 16-channel tile
 * with half its weights zero. The kernel loop stays rolled over kx: unrolled for kw = 3, GCC
 * spilled accumulators and 3 -> 32 3x3 s2 took 0.39 ms instead of 0.23.
 *
 * Padding: a task copies the input rows a band of output rows reads into a scratch buffer,
 * each row between its left and right padding as zeros, so the tiles read every column without
 * a bounds check; rows outside the input are not copied, an output row runs only over the
 * kernel rows that lie inside. Channel c of input row iy is buffer row iy * C + c, so the rows
 * an output row reads are equally spaced and its taps one run of the packed weights. The copy
 * costs 7% of 3 -> 32 3x3 s2 p1 over 224x224 (2% of the 7x7 stem), most of it the input's
 * reads; tiles reading the input in place (borders aside) measured 3% faster, not worth a
 * second path for the borders. Prefetching the next band's rows gained nothing.
 *
 * Threads take items of (image, band of output rows). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/nchwc.h"
#include "devices/cpu/vmath_avx2.h"

#ifdef CPU_NCHWC_HAVE_AVX2
#include <immintrin.h>

#define STEM_AVX2 __attribute__((target("avx2,fma")))
#define ALWAYS_INLINE inline __attribute__((always_inline))
/* -O2 does not peel these small constant loops by itself; unpeeled, the accumulators would
 * live in memory. Loops with a run-time count stay loops. */
#define STEM_UNROLL _Pragma("GCC unroll 16")

/* Input channels past which the stem does not apply: its tiles broadcast every input value
 * again for each panel of 16 output channels and read whole rows of every channel per output
 * row, made for shallow inputs; deeper ones go to the GEMM. */
enum { STEM_MAX_C = 16 };
/* Pixels of the tile of 16 channels and of the tile of 8. */
enum { STEM_NP2 = 6, STEM_NP1 = 12 };
/* Target size of a band's buffer in floats (32 KiB). Bands overlap by kh - sh input rows,
 * copied for each; from 8 to 64 KiB the 224x224 stems ran within 2% of each other, the larger
 * sizes ahead. */
enum { STEM_BUF_FLOATS = 8192 };

bool cpu_nchwc_stem_applies(const conv_plan *p) {
  const nn_window *w = &p->w;
  if (p->transpose || w->nsp != 2 || p->G != 1 || p->C < 1 || p->C > STEM_MAX_C ||
      p->M % CPU_NCHWC != 0 || p->cg != p->C || p->mg != p->M)
    return false;
  if (w->in[0] != 1 || w->out[0] != 1 || w->k[0] != 1 || w->s[0] != 1 || w->pb[0] != 0 ||
      w->pe[0] != 0)
    return false;
  return w->d[0] == 1 && w->d[1] == 1 && w->d[2] == 1;
}

size_t cpu_nchwc_stem_packed_floats(const conv_plan *p) { return p->M * p->C * p->kk; }

/* Panels of 16 output channels: for each tap, in the order (ky, c, kx), the 16 channels'
 * weights; a last panel of eight channels (M % 16 == 8) holds eight per tap. Kernel rows
 * outer, so that the taps of the kernel rows [ky0, ky1) an output row reads lie together, in
 * the order of the buffer's rows (stem_fill). Panel P starts at P * 16 * C * kk, a multiple of
 * 16 floats, so every tap's vectors are 32-byte aligned. */
void cpu_nchwc_stem_pack(const conv_plan *p, const float *w, float *dst) {
  size_t C = p->C, kh = (size_t)p->w.k[1], kw = (size_t)p->w.k[2], taps = C * p->kk;
  for (size_t m0 = 0; m0 < p->M; m0 += 16) {
    size_t nb = p->M - m0 >= 16 ? 16 : p->M - m0;
    float *d = dst + m0 * taps;
    for (size_t ky = 0; ky < kh; ky++)
      for (size_t c = 0; c < C; c++)
        for (size_t kx = 0; kx < kw; kx++, d += nb)
          for (size_t j = 0; j < nb; j++)
            d[j] = w[(((m0 + j) * C + c) * kh + ky) * kw + kx];
  }
}

/* What the tiles of one output row and one panel read and write. */
typedef struct stem_row {
  const float *x; /* the buffer row of channel 0 and the first kernel row inside the input, at
                     the column of output pixel 0 */
  size_t ld;      /* floats between buffer rows: channel c of input row iy is row iy * C + c
                     (from the band's first), so the rows an output row reads are nrows rows
                     ld apart */
  const float *w; /* the panel's taps from kernel row ky0 on */
  int64_t nrows;  /* C times the kernel rows inside the input */
  int64_t kw, sw;
  const float *bias; /* the panel's biases, or NULL */
  float *y;          /* the first block's output row, pixel 0 */
  size_t ybs;        /* floats between two blocks of the output: OH * OW * 8 */
  cpu_act act;
} stem_row;

/* The smooth activations (cpu_act_is_smooth) go over each finished output row
 * (cpu_act_apply_row_avx2, in L1) instead of the tile's registers: beside the 12 accumulators
 * their constants spill, and inlined into every tile they slow the others too. 3 -> 32 3x3 s2
 * on 224x224, one Zen 4 core: silu 0.405 -> 0.364 ms, clip 0.228 -> 0.221 ms. The
 * piecewise-linear ones on the tile's n vectors, the switch outside the loops; relu and clip
 * are min(hi, max(lo, v)) (cpu_act_clamp_bounds). */
STEM_AVX2 static ALWAYS_INLINE void stem_act(const cpu_act *a, __m256 *v, int n) {
  float p0 = a->p0, p1 = a->p1;
  cpu_act_kind k = a->kind;
  if (k == CPU_ACT_NONE)
    return;
  if (cpu_act_clamp_bounds(a, &p0, &p1))
    k = CPU_ACT_CLIP;
  switch (k) {
#define STEM_ACT_CASE(K)                                                                           \
  case K:                                                                                          \
    STEM_UNROLL                                                                                    \
    for (int i = 0; i < n; i++)                                                                    \
      v[i] = cpu_act8_kind(K, p0, p1, v[i]);                                                       \
    return;
    STEM_ACT_CASE(CPU_ACT_CLIP)
    STEM_ACT_CASE(CPU_ACT_LEAKYRELU)
    STEM_ACT_CASE(CPU_ACT_HARDSIGMOID)
    STEM_ACT_CASE(CPU_ACT_HARDSWISH)
#undef STEM_ACT_CASE
  default: return; /* the smooth ones */
  }
}

/* The activation and the store of a tile of NB blocks by np pixels at column ox, acc[b * NPM +
 * i] holding block b of pixel i. */
STEM_AVX2 static ALWAYS_INLINE void stem_store_k(const stem_row *r, __m256 *acc, int64_t ox, int NB,
                                                 int NPM, int np) {
  stem_act(&r->act, acc, NB * NPM);
  float *y = r->y + ox * 8;
  STEM_UNROLL
  for (int b = 0; b < NB; b++) {
    STEM_UNROLL
    for (int i = 0; i < np; i++)
      _mm256_storeu_ps(y + (size_t)b * r->ybs + (size_t)i * 8, acc[b * NPM + i]);
  }
}

/* The same out of line, for the short tiles at the end of a row: inlined into each of them,
 * the activations would multiply the code by the number of tile sizes for a few percent of the
 * pixels. */
STEM_AVX2 static __attribute__((noinline)) void
stem_store_any(const stem_row *r, __m256 *acc, int64_t ox, int nb, int npm, int np) {
  stem_act(&r->act, acc, nb * npm);
  float *y = r->y + ox * 8;
  for (int b = 0; b < nb; b++)
    for (int i = 0; i < np; i++)
      _mm256_storeu_ps(y + (size_t)b * r->ybs + (size_t)i * 8, acc[b * npm + i]);
}

/* One tile: NB blocks of eight channels (1 or 2) by NP pixels from column ox. S is the column
 * stride when it is a compile-time 1 or 2, else 0 (then r->sw). FULL: the row's main tile,
 * stored inline. */
STEM_AVX2 static ALWAYS_INLINE void stem_tile(const stem_row *r, int64_t ox, int NB, int NP, int S,
                                              bool full) {
  int64_t sw = S ? S : r->sw;
  __m256 acc[STEM_NP1 > 2 * STEM_NP2 ? STEM_NP1 : 2 * STEM_NP2];
  STEM_UNROLL
  for (int b = 0; b < NB; b++) {
    __m256 bv = r->bias ? _mm256_loadu_ps(r->bias + b * 8) : _mm256_setzero_ps();
    STEM_UNROLL
    for (int i = 0; i < NP; i++)
      acc[b * NP + i] = bv;
  }
  const float *xr = r->x + ox * sw, *wt = r->w;
  int64_t kw = r->kw;
  for (int64_t row = 0; row < r->nrows; row++, xr += r->ld) {
    for (int64_t kx = 0; kx < kw; kx++, wt += 8 * NB) {
      __m256 w0 = _mm256_loadu_ps(wt);
      __m256 w1 = NB == 2 ? _mm256_loadu_ps(wt + 8) : w0;
      STEM_UNROLL
      for (int i = 0; i < NP; i++) {
        __m256 v = _mm256_broadcast_ss(xr + i * sw + kx);
        acc[i] = _mm256_fmadd_ps(v, w0, acc[i]);
        if (NB == 2)
          acc[NP + i] = _mm256_fmadd_ps(v, w1, acc[NP + i]);
      }
    }
  }
  if (full)
    stem_store_k(r, acc, ox, NB, NP, NP);
  else
    stem_store_any(r, acc, ox, NB, NP, NP);
}

/* A whole output row of one panel: main tiles, then one short tile of the remaining pixels.
 * A local copy of the row: the output stores could alias it otherwise (-fno-strict-aliasing),
 * and its fields would be reloaded after each. */
STEM_AVX2 static ALWAYS_INLINE void stem_row_k(const stem_row *row, int64_t ow, int NB, int S) {
  const int NPM = NB == 2 ? STEM_NP2 : STEM_NP1;
  stem_row rl = *row;
  const stem_row *r = &rl;
  int64_t ox = 0;
  for (; ox + NPM <= ow; ox += NPM)
    stem_tile(r, ox, NB, NPM, S, true);
  /* ow - ox < NPM: the cases from NPM on never run, and the condition keeps their tile size a
   * valid constant. */
  switch (ow - ox) {
#define STEM_TAIL(n)                                                                               \
  case n:                                                                                          \
    if (n < NPM)                                                                                   \
      stem_tile(r, ox, NB, n < NPM ? n : 1, S, false);                                             \
    return;
    STEM_TAIL(1)
    STEM_TAIL(2)
    STEM_TAIL(3)
    STEM_TAIL(4)
    STEM_TAIL(5)
    STEM_TAIL(6)
    STEM_TAIL(7)
    STEM_TAIL(8)
    STEM_TAIL(9)
    STEM_TAIL(10)
    STEM_TAIL(11)
#undef STEM_TAIL
  default: return;
  }
}

STEM_AVX2 static void stem_row_s1(const stem_row *r, int64_t ow, int nb) {
  if (nb == 2)
    stem_row_k(r, ow, 2, 1);
  else
    stem_row_k(r, ow, 1, 1);
}
STEM_AVX2 static void stem_row_s2(const stem_row *r, int64_t ow, int nb) {
  if (nb == 2)
    stem_row_k(r, ow, 2, 2);
  else
    stem_row_k(r, ow, 1, 2);
}
STEM_AVX2 static void stem_row_sn(const stem_row *r, int64_t ow, int nb) {
  if (nb == 2)
    stem_row_k(r, ow, 2, 0);
  else
    stem_row_k(r, ow, 1, 0);
}

typedef struct stem_job {
  const conv_plan *p;
  const float *x, *wp, *bias;
  float *y;
  int64_t band, nbands; /* output rows of the largest band, bands per image */
  int64_t brows;        /* input rows a band reads: (band - 1) * sh + kh */
  int64_t cols;         /* columns the tiles read: (OW - 1) * sw + kw */
  size_t ld;            /* floats per buffer row: cols rounded up to 16 */
  size_t bufn;          /* floats of a task's buffer: C * brows * ld */
  void (*row)(const stem_row *r, int64_t ow, int nb);
  atomic_bool failed;
} stem_job;

/* Input rows [a, b) of image n into the buffer: buffer row (iy - a) * C + c holds channel c
 * of input row iy, its column j input column j - pw. The columns of the padding are zero from
 * the start and never written. The rows are short (224 floats for an ImageNet stem) and many:
 * a call of memcpy for each took 7% of a 3 -> 32 3x3 stem. */
STEM_AVX2 static void stem_fill(const stem_job *j, float *buf, size_t n, int64_t a, int64_t b) {
  const conv_plan *p = j->p;
  const nn_window *w = &p->w;
  int64_t iw = w->in[2], pw = w->pb[2];
  int64_t left = pw < j->cols ? pw : j->cols;
  int64_t copy = j->cols - left < iw ? j->cols - left : iw;
  for (size_t c = 0; c < p->C; c++) {
    const float *src = j->x + ((n * p->C + c) * (size_t)w->in[1] + (size_t)a) * (size_t)iw;
    float *d = buf + c * j->ld + left;
    for (int64_t iy = a; iy < b; iy++, src += iw, d += p->C * j->ld) {
      int64_t i = 0;
      for (; i + 8 <= copy; i += 8)
        _mm256_storeu_ps(d + i, _mm256_loadu_ps(src + i));
      for (; i < copy; i++)
        d[i] = src[i];
    }
  }
}

STEM_AVX2 static void stem_task(void *arg, size_t begin, size_t end) {
  stem_job *j = arg;
  const conv_plan *p = j->p;
  const nn_window *w = &p->w;
  int64_t ih = w->in[1], oh = w->out[1], ow = w->out[2];
  int64_t kh = w->k[1], sh = w->s[1], ph = w->pb[1];
  float *buf = nn_alloc_aligned(j->bufn, sizeof(float));
  if (!buf) {
    atomic_store(&j->failed, true);
    return;
  }
  memset(buf, 0, j->bufn * sizeof *buf);
  size_t taps = p->C * p->kk, blocks = p->M / 8;
  bool smooth = cpu_act_is_smooth(p->act.kind);
  stem_row r = {
      .ld = j->ld, .kw = w->k[2], .sw = w->s[2], .ybs = (size_t)(oh * ow) * 8, .act = p->act};
  for (size_t it = begin; it < end; it++) {
    size_t n = it / (size_t)j->nbands;
    int64_t bi = (int64_t)(it % (size_t)j->nbands);
    int64_t oy0 = bi * oh / j->nbands, oy1 = (bi + 1) * oh / j->nbands;
    /* Input rows the band reads, clipped to the input. */
    int64_t a = oy0 * sh - ph, b = (oy1 - 1) * sh - ph + kh;
    a = a < 0 ? 0 : a;
    b = b > ih ? ih : b;
    if (a < b)
      stem_fill(j, buf, n, a, b);
    for (int64_t oy = oy0; oy < oy1; oy++) {
      int64_t top = oy * sh - ph; /* input row of kernel row 0 */
      int64_t ky0 = top < 0 ? -top : 0, ky1 = ih - top < kh ? ih - top : kh;
      int64_t nky = ky1 > ky0 ? ky1 - ky0 : 0;
      r.nrows = nky * (int64_t)p->C;
      r.x = nky ? buf + (size_t)(top + ky0 - a) * p->C * j->ld : buf;
      for (size_t m0 = 0; m0 < p->M; m0 += 16) {
        size_t nb = p->M - m0 >= 16 ? 2 : 1;
        r.w = j->wp + m0 * taps + (size_t)ky0 * p->C * (size_t)w->k[2] * 8 * nb;
        r.bias = j->bias ? j->bias + m0 : NULL;
        r.y = j->y + ((n * blocks + m0 / 8) * (size_t)oh + (size_t)oy) * (size_t)ow * 8;
        j->row(&r, ow, (int)nb);
        if (smooth)
          for (size_t blk = 0; blk < nb; blk++)
            cpu_act_apply_row_avx2(&p->act, r.y + blk * r.ybs, (size_t)ow * 8);
      }
    }
  }
  free(buf);
}

int cpu_nchwc_stem(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wp,
                   const float *bias, float *y) {
  if (ctx->isa != CPU_ISA_AVX2_FMA)
    return cpu_fail(ctx, "the NCHW8c stem convolution needs AVX2 and FMA");
  if (!cpu_nchwc_stem_applies(p))
    return cpu_fail(ctx, "the NCHW8c stem convolution does not apply to this Conv");
  const nn_window *w = &p->w;
  int64_t oh = w->out[1], ow = w->out[2], kh = w->k[1], sh = w->s[1];
  if (p->N == 0 || p->M == 0 || oh <= 0 || ow <= 0)
    return 0;
  stem_job j = {.p = p, .x = x, .wp = wp, .bias = bias, .y = y};
  j.cols = (ow - 1) * w->s[2] + w->k[2];
  j.ld = ((size_t)j.cols + 15) / 16 * 16;
  /* Output rows per band: as many as keep the buffer within STEM_BUF_FLOATS, at least one,
   * and few enough that every thread gets a few bands. */
  size_t per_row;
  if (!nn_mul_size(p->C, j.ld, &per_row))
    return cpu_fail(ctx, "the NCHW8c stem convolution's rows are too large");
  int64_t band = 1;
  while (band < oh && (size_t)(band * sh + kh) <= STEM_BUF_FLOATS / per_row)
    band++;
  size_t want = 4 * cpu_thread_count(ctx);
  if (p->N * (size_t)oh >= want && p->N * (size_t)((oh + band - 1) / band) < want) {
    int64_t per_image = (int64_t)((want + p->N - 1) / p->N);
    band = (oh + per_image - 1) / per_image;
  }
  /* Bands as many as the threads share evenly (112 rows in bands of 5 made 23, which two
   * threads took twelve to eleven), the rows spread over them. */
  size_t nbands = (size_t)((oh + band - 1) / band);
  j.nbands = (int64_t)cpu_even_items(nbands, p->N, cpu_thread_count(ctx), (size_t)oh);
  j.band = band = (oh + j.nbands - 1) / j.nbands; /* rows of the largest */
  j.brows = (band - 1) * sh + kh;
  if (!nn_mul_size((size_t)j.brows, per_row, &j.bufn))
    return cpu_fail(ctx, "the NCHW8c stem convolution's rows are too large");
  j.row = w->s[2] == 1 ? stem_row_s1 : w->s[2] == 2 ? stem_row_s2 : stem_row_sn;
  atomic_init(&j.failed, false);
  cpu_parallel_for(ctx, p->N * (size_t)j.nbands, 1, stem_task, &j);
  if (atomic_load(&j.failed))
    return cpu_fail(ctx, "out of memory for the NCHW8c stem convolution's %zu-float buffer",
                    j.bufn);
  return 0;
}
#endif
