/* 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3), float32: the path conv.c
 * takes when cpu_conv_wino_wanted says so, with the transformed weights packed by its
 * prepare().
 *
 * Each 2x2 block of outputs (a tile) is Y = A^T [ sum_c (G g G^T) . (B^T d B) ] A, where d is
 * the 4x4 patch of one input channel under the tile, g that channel's 3x3 kernel and . the
 * product element by element. The sum over channels of 16 products is 16 matrix products
 * U[xi] (M x C) V[xi] (C x tiles), one per element xi of the 4x4 transformed tile: 16 * C
 * multiply-adds per tile and output channel where the direct convolution needs 4 * 9 * C, so
 * 2.25 times fewer. The transforms add O(C + M) work per tile, and the transformed input and
 * products are four times the size of the input and output: the image is taken a band of tile
 * rows at a time, sized to stay in L2. With B^T, G and A^T of +-1 and 1/2 only, the rounding
 * error stays close to the direct sum's: the tests hold both to the same bound against float64
 * (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016, give the
 * matrices; the larger F(4x4, 3x3) saves more but loses about an order of magnitude in
 * accuracy: the blocked kernel, conv_nchwc_wino.c, takes it over large planes, where it pays
 * most, and stays within the same bound of the float64 sum).
 *
 * The matrix products run on the packed GEMM (cpu_sgemm_run) with U packed once, reading the
 * transformed input in place; the transforms take eight tiles of a tile row at a time. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/conv_util.h"
#include "devices/cpu/vmath_avx2.h"

#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define WINO_HAVE_AVX2 1
#define WINO_AVX2 __attribute__((target("avx2,fma")))
#endif

enum { WINO_T = 16 };    /* elements of a transformed tile */
enum { WINO_SLOTS = 32 }; /* bands in flight at once, one per thread */

/* Floats of transformed input and products that one band may hold: 256 Ki floats, 1 MiB, the
 * size of L2 on the machines this was measured on. */
#define WINO_BAND_FLOATS ((size_t)1 << 18)

bool cpu_conv_wino_applies(const conv_plan *p) {
  const nn_window *w = &p->w;
  return !p->transpose && p->G == 1 && p->C > 0 && p->M > 0 && w->in[0] == 1 && w->k[0] == 1 &&
         w->pb[0] == 0 && w->pe[0] == 0 && w->k[1] == 3 && w->k[2] == 3 && w->s[1] == 1 &&
         w->s[2] == 1 && w->d[1] == 1 && w->d[2] == 1 && w->out[1] > 0 && w->out[2] > 0;
}

/* Where it pays: enough channels in and out that the matrix products outweigh the transforms,
 * and planes wide enough that a tile row fills most of the transforms' eight lanes. The
 * products per tile grow as C M, the transforms as C + M (input and output), so the rule is
 * on C M / (C + M), at least 12. Measured by bench/conv_layers.py (Zen 4, AVX2 kernels; direct
 * -> Winograd, one thread, then two): 56x56x64 2.35 -> 1.30 ms, 14x14x256 2.48 -> 1.38, 7x7x512
 * 2.77 -> 2.00 and 1.46 -> 1.16, 16 -> 64 over 55x55 0.59 -> 0.48 and 0.33 -> 0.25, 13x13 64 ->
 * 256 0.57 -> 0.41; the narrow ones (best of 6 rounds): 96 -> 24 over 56x56 (PP-OCR's head,
 * 19.2) 1.43 -> 0.84 and 0.89 -> 0.52, over 28x28 0.37 -> 0.24, 64 -> 16 (12.8) 0.72 -> 0.50
 * and 0.48 -> 0.32, 24 -> 24 (12) 0.36 -> 0.27 and 0.24 -> 0.22, 16 -> 48 (12) 0.47 -> 0.35
 * and 0.31 -> 0.24; but 32 -> 16 (10.7) 0.36 -> 0.27 and 0.22 -> 0.25, 16 -> 16 (8) 0.19 ->
 * 0.19 and 0.15 -> 0.18 (the transforms weigh as much as the products saved, and split over
 * threads in steps too short), and 4x4x512 1.49 -> 1.98 (four tiles, past which all 16 MB of U
 * stream). */
bool cpu_conv_wino_wanted(const conv_plan *p) {
  const char *force = getenv("TESSERA_CPU_WINOGRAD");
  if (force && *force)
    return *force == '1';
  bool channels = p->C * p->M >= 12 * (p->C + p->M);
  return channels && p->w.out[2] >= 7 && p->w.out[1] >= 4;
}

size_t cpu_conv_wino_packed_floats(const conv_plan *p) {
  return WINO_T * cpu_sgemm_packed_a_floats(p->M, p->C);
}

/* U[xi] = G g G^T for every (m, c) (cpu_wino_kernel_transform), each of the
 * 16 matrices M x C written straight into the GEMM's packed-A layout (gemm_util.h: KC blocks,
 * MR-row panels, MR floats per column), rows past M zero. Six rows at a time, so that each
 * matrix is written in order; in float, whose rounding here (halves and sums of three) stays
 * within the tests' bound. Through a row-major copy and cpu_sgemm_pack_a, in double, this took
 * ResNet-50's session creation from 290-350 ms to 340-430. Returns 0. */
int cpu_conv_wino_pack(const conv_plan *p, const float *w, float *dst) {
  size_t M = p->M, C = p->C, per = cpu_sgemm_packed_a_floats(M, C);
  size_t kc = cpu_sgemm_kc(C), mpad = (M + CPU_SGEMM_MR - 1) / CPU_SGEMM_MR * CPU_SGEMM_MR;
  for (size_t r = 0; r < mpad; r += CPU_SGEMM_MR)
    for (size_t pc = 0; pc < C; pc += kc) {
      size_t kt = C - pc < kc ? C - pc : kc;
      /* The panel of rows [r, r + MR) in the KC block at pc (see panel_offset in gemm.c). */
      float *panel = dst + pc * mpad + r * kt;
      for (size_t c = pc; c < pc + kt; c++)
        for (size_t i = 0; i < CPU_SGEMM_MR; i++) {
          size_t at = (c - pc) * CPU_SGEMM_MR + i;
          if (r + i >= M) {
            for (size_t xi = 0; xi < WINO_T; xi++)
              panel[xi * per + at] = 0.0f;
            continue;
          }
          cpu_wino_kernel_transform(w + ((r + i) * C + c) * 9, panel + at, per);
        }
    }
  return 0;
}

/* ---- One run ------------------------------------------------------------------------- */

typedef struct wino_job {
  cpu_ctx *ctx;
  const conv_plan *p;
  const float *x; /* one image */
  const float *u; /* packed U, cpu_conv_wino_packed_floats */
  const float *b, *res;
  float *y;
  size_t oh, ow, th, tw; /* output size, tiles down and across */
  size_t hp, wp;         /* padded input plane: rows, pitch */
  float *xp;             /* the zero-padded input, C planes of hp x wp */
  size_t ld, vs, ms;     /* row pitch; floats from one of the 16 matrices to the next */
  const ptrdiff_t *offs; /* row c of V[xi] at c * ld */
  size_t band, n_bands;  /* tile rows per band */
  /* Scratch for the bands in flight, WINO_SLOTS at most: V[16][C][ld] and the products
   * [16][M][ld] of each, and which are taken (bits). */
  float *v[WINO_SLOTS], *mo[WINO_SLOTS];
  atomic_uint busy;
  size_t ty0; /* one band at a time: its first tile row */
  atomic_int failed;
} wino_job;

/* One band: tile rows [ty0, ty0 + rows), with its scratch. */
typedef struct wino_band {
  size_t ty0, rows;
  float *v, *mo;
} wino_band;

/* The padded copy: input row iy at padded row iy + pb, column ix at ix + pl; zeros around. */
static void pad_task(void *arg, size_t c0, size_t c1) {
  const wino_job *j = arg;
  const nn_window *w = &j->p->w;
  size_t ih = (size_t)w->in[1], iw = (size_t)w->in[2], pt = (size_t)w->pb[1],
         pl = (size_t)w->pb[2];
  /* hp >= oh + 2 = ih + pads and wp >= ow + 2 likewise: every input row and column fits. */
  size_t rows = ih, cols = iw;
  for (size_t c = c0; c < c1; c++) {
    float *d = j->xp + c * j->hp * j->wp;
    const float *s = j->x + c * ih * iw;
    memset(d, 0, pt * j->wp * sizeof *d);
    for (size_t r = 0; r < rows; r++) {
      float *dr = d + (pt + r) * j->wp;
      memset(dr, 0, pl * sizeof *dr);
      memcpy(dr + pl, s + r * iw, cols * sizeof *dr);
      memset(dr + pl + cols, 0, (j->wp - pl - cols) * sizeof *dr);
    }
    memset(d + (pt + rows) * j->wp, 0, (j->hp - pt - rows) * j->wp * sizeof *d);
  }
}

/* V = B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], for the tiles of one tile row of
 * channel c: tile tx at column p0 + tx of V's rows. */
static void in_row_generic(const wino_job *j, float *vb, size_t c, size_t ty, size_t p0) {
  const float *base = j->xp + (c * j->hp + 2 * ty) * j->wp;
  size_t ld = j->ld;
  for (size_t tx = 0; tx < j->tw; tx++) {
    float d[4][4], t[4][4];
    for (int i = 0; i < 4; i++)
      for (int k = 0; k < 4; k++)
        d[i][k] = base[(size_t)i * j->wp + 2 * tx + (size_t)k];
    for (int i = 0; i < 4; i++) { /* d B, by rows */
      t[i][0] = d[i][0] - d[i][2];
      t[i][1] = d[i][1] + d[i][2];
      t[i][2] = d[i][2] - d[i][1];
      t[i][3] = d[i][1] - d[i][3];
    }
    for (int k = 0; k < 4; k++) { /* B^T (d B), by columns */
      float v[4] = {t[0][k] - t[2][k], t[1][k] + t[2][k], t[2][k] - t[1][k], t[1][k] - t[3][k]};
      for (int i = 0; i < 4; i++)
        vb[(size_t)(4 * i + k) * j->vs + c * ld + p0 + tx] = v[i];
    }
  }
}

#ifdef WINO_HAVE_AVX2
/* Eight stride-2 columns from 16 floats: (s[0], s[2], .., s[14]) and (s[1], .., s[15]). */
WINO_AVX2 static inline void deinterleave(const float *s, __m256 *even, __m256 *odd) {
  __m256 a = _mm256_loadu_ps(s), b = _mm256_loadu_ps(s + 8);
  *even = _mm256_castpd_ps(_mm256_permute4x64_pd(
      _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
  *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(
      _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* in_row_generic eight tiles at a time. The last group of a row may run past the row's tiles:
 * it reads the padded plane's spare columns and writes V's columns of the next tile row (or
 * the band's spare ones), which the next row's groups then overwrite. */
WINO_AVX2 static void in_row_avx2(const wino_job *j, float *vb, size_t c, size_t ty, size_t p0) {
  const float *base = j->xp + (c * j->hp + 2 * ty) * j->wp;
  size_t ld = j->ld, xs = j->vs;
  float *vc = vb + c * ld + p0;
  for (size_t tx = 0; tx < j->tw; tx += 8) {
    __m256 t[4][4];
    for (int i = 0; i < 4; i++) {
      const float *r = base + (size_t)i * j->wp + 2 * tx;
      __m256 d0, d1, d2, d3;
      deinterleave(r, &d0, &d1);
      deinterleave(r + 2, &d2, &d3);
      t[i][0] = _mm256_sub_ps(d0, d2);
      t[i][1] = _mm256_add_ps(d1, d2);
      t[i][2] = _mm256_sub_ps(d2, d1);
      t[i][3] = _mm256_sub_ps(d1, d3);
    }
    float *o = vc + tx;
    for (int k = 0; k < 4; k++) {
      _mm256_storeu_ps(o + (size_t)k * xs, _mm256_sub_ps(t[0][k], t[2][k]));
      _mm256_storeu_ps(o + (size_t)(4 + k) * xs, _mm256_add_ps(t[1][k], t[2][k]));
      _mm256_storeu_ps(o + (size_t)(8 + k) * xs, _mm256_sub_ps(t[2][k], t[1][k]));
      _mm256_storeu_ps(o + (size_t)(12 + k) * xs, _mm256_sub_ps(t[1][k], t[3][k]));
    }
  }
}
#endif

/* Channels [c0, c1) of band bd into its V. */
static void band_in(const wino_job *j, const wino_band *bd, size_t c0, size_t c1) {
  for (size_t c = c0; c < c1; c++)
    for (size_t r = 0; r < bd->rows; r++) {
#ifdef WINO_HAVE_AVX2
      if (j->ctx->isa == CPU_ISA_AVX2_FMA) {
        in_row_avx2(j, bd->v, c, bd->ty0 + r, r * j->tw);
        continue;
      }
#endif
      in_row_generic(j, bd->v, c, bd->ty0 + r, r * j->tw);
    }
}

/* Products [x0, x1) of band bd, one GEMM each, on the calling thread; 0, or -1 when memory
 * ran out. */
static int band_gemm(const wino_job *j, const wino_band *bd, size_t x0, size_t x1) {
  cpu_ctx ctx = *j->ctx;
  ctx.pool = NULL;
  size_t M = j->p->M, C = j->p->C, per = cpu_sgemm_packed_a_floats(M, C);
  for (size_t xi = x0; xi < x1; xi++) {
    cpu_sgemm_args ga = {.m = M,
                         .n = bd->rows * j->tw,
                         .k = C,
                         .alpha = 1.0f,
                         .a_packed = j->u + xi * per,
                         .b_rows = bd->v + xi * j->vs,
                         .b_offs = j->offs,
                         .c = bd->mo + xi * j->ms,
                         .ldc = j->ld};
    if (cpu_sgemm_run(&ctx, &ga) != 0)
      return -1;
  }
  return 0;
}

/* Y = A^T m A, A^T = [1 1 1 0; 0 1 -1 -1], for the tiles of one tile row of output channel m,
 * into two rows of out (pitch wo): out[r][2 tx + k] is Y[r][k] of tile tx, with the bias. */
static void out_row_generic(const wino_job *j, const float *mob, size_t m, size_t p0, float bias,
                            float *out, size_t wo) {
  const float *mp = mob + m * j->ld + p0;
  for (size_t tx = 0; tx < j->tw; tx++) {
    float e[4][4], s[2][4];
    for (int i = 0; i < 4; i++)
      for (int k = 0; k < 4; k++)
        e[i][k] = mp[(size_t)(4 * i + k) * j->ms + tx];
    for (int k = 0; k < 4; k++) {
      s[0][k] = e[0][k] + e[1][k] + e[2][k];
      s[1][k] = e[1][k] - e[2][k] - e[3][k];
    }
    for (int r = 0; r < 2; r++) {
      out[(size_t)r * wo + 2 * tx] = s[r][0] + s[r][1] + s[r][2] + bias;
      out[(size_t)r * wo + 2 * tx + 1] = s[r][1] - s[r][2] - s[r][3] + bias;
    }
  }
}

#ifdef WINO_HAVE_AVX2
/* out_row_generic eight tiles at a time, 16 columns of each row; out has room for whole
 * groups. The results are clamped to [lo, hi] as they are stored (relu and clip as
 * cpu_act_apply_row_avx2 makes them; -inf and inf for none). */
WINO_AVX2 static void out_row_avx2(const wino_job *j, const float *mob, size_t m, size_t p0,
                                   float bias, float lo, float hi, float *out, size_t wo) {
  size_t ld = j->ld, xs = j->ms;
  const float *mp = mob + m * ld + p0;
  __m256 bv = _mm256_set1_ps(bias), lov = _mm256_set1_ps(lo), hiv = _mm256_set1_ps(hi);
  for (size_t tx = 0; tx < j->tw; tx += 8) {
    __m256 s[2][4];
    for (int k = 0; k < 4; k++) {
      __m256 e0 = _mm256_loadu_ps(mp + (size_t)k * xs + tx),
             e1 = _mm256_loadu_ps(mp + (size_t)(4 + k) * xs + tx),
             e2 = _mm256_loadu_ps(mp + (size_t)(8 + k) * xs + tx),
             e3 = _mm256_loadu_ps(mp + (size_t)(12 + k) * xs + tx);
      s[0][k] = _mm256_add_ps(_mm256_add_ps(e0, e1), e2);
      s[1][k] = _mm256_sub_ps(_mm256_sub_ps(e1, e2), e3);
    }
    for (int r = 0; r < 2; r++) {
      __m256 y0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[r][0], s[r][1]), s[r][2]), bv);
      __m256 y1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[r][1], s[r][2]), s[r][3]), bv);
      y0 = _mm256_min_ps(hiv, _mm256_max_ps(lov, y0));
      y1 = _mm256_min_ps(hiv, _mm256_max_ps(lov, y1));
      __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
      float *o = out + (size_t)r * wo + 2 * tx;
      _mm256_storeu_ps(o, _mm256_permute2f128_ps(lo, hi, 0x20));
      _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
  }
}

#endif

/* Output channels [m0, m1) of band bd: two output rows per tile row, through a scratch pair
 * of rows, then the residual and the activation as each row is stored. Without a residual,
 * relu and clip are applied by out_row_avx2 as it fills the scratch rows (as a pass over each
 * row they cost SqueezeNet's 3x3 layers 4% more, a third of it in the scalar tail). 0, or -1
 * when memory ran out. */
static int band_out(const wino_job *j, const wino_band *bd, size_t m0, size_t m1) {
  const conv_plan *p = j->p;
  size_t wo = 2 * ((j->tw + 7) / 8 * 8);
  float *t = malloc(2 * wo * sizeof *t);
  if (!t)
    return -1;
  bool avx2 = false;
#ifdef WINO_HAVE_AVX2
  avx2 = j->ctx->isa == CPU_ISA_AVX2_FMA;
#endif
  float lo = -INFINITY, hi = INFINITY; /* out_row_avx2's clamp: none unless it applies */
  bool clamp = avx2 && !j->res && cpu_act_clamp_bounds(&p->act, &lo, &hi);
  for (size_t m = m0; m < m1; m++) {
    float bias = j->b ? j->b[m] : 0.0f;
    for (size_t r = 0; r < bd->rows; r++) {
      size_t ty = bd->ty0 + r;
#ifdef WINO_HAVE_AVX2
      if (avx2)
        out_row_avx2(j, bd->mo, m, r * j->tw, bias, lo, hi, t, wo);
#endif
      if (!avx2)
        out_row_generic(j, bd->mo, m, r * j->tw, bias, t, wo);
      for (size_t k = 0; k < 2 && 2 * ty + k < j->oh; k++) {
        size_t at = (m * j->oh + 2 * ty + k) * j->ow;
        float *yr = j->y + at;
        const float *rr = j->res ? j->res + at : NULL, *tr = t + k * wo;
        /* Element by element, so that a residual in y's own memory is read before it is
         * overwritten; the activation then over the row in L1 (vectors where the ISA allows). */
        if (rr)
          for (size_t i = 0; i < j->ow; i++)
            yr[i] = tr[i] + rr[i];
        else
          memcpy(yr, tr, j->ow * sizeof *yr);
        if (!clamp)
          cpu_act_apply_row(j->ctx->isa, &p->act, yr, j->ow);
      }
    }
  }
  free(t);
  return 0;
}

/* The band at j->ty0 with slot 0's scratch, each step split over the threads. */
static wino_band one_band(const wino_job *j) {
  wino_band bd = {.ty0 = j->ty0, .v = j->v[0], .mo = j->mo[0]};
  bd.rows = j->th - j->ty0 < j->band ? j->th - j->ty0 : j->band;
  return bd;
}

static void in_task(void *arg, size_t c0, size_t c1) {
  wino_job *j = arg;
  wino_band bd = one_band(j);
  band_in(j, &bd, c0, c1);
}

static void gemm_task(void *arg, size_t x0, size_t x1) {
  wino_job *j = arg;
  wino_band bd = one_band(j);
  if (band_gemm(j, &bd, x0, x1) != 0)
    atomic_store(&j->failed, 1);
}

static void out_task(void *arg, size_t m0, size_t m1) {
  wino_job *j = arg;
  wino_band bd = one_band(j);
  if (band_out(j, &bd, m0, m1) != 0)
    atomic_store(&j->failed, 1);
}

/* Whole bands [b0, b1), each on one thread with a free slot's scratch. */
static void bands_task(void *arg, size_t b0, size_t b1) {
  wino_job *j = arg;
  unsigned taken = atomic_load(&j->busy), s;
  do { /* the lowest free slot: there are as many as threads */
    s = (unsigned)__builtin_ctz(~taken);
  } while (!atomic_compare_exchange_weak(&j->busy, &taken, taken | 1u << s));
  for (size_t bi = b0; bi < b1; bi++) {
    wino_band bd = {.ty0 = bi * j->band, .v = j->v[s], .mo = j->mo[s]};
    bd.rows = j->th - bd.ty0 < j->band ? j->th - bd.ty0 : j->band;
    band_in(j, &bd, 0, j->p->C);
    if (band_gemm(j, &bd, 0, WINO_T) != 0 || band_out(j, &bd, 0, j->p->M) != 0)
      atomic_store(&j->failed, 1);
  }
  atomic_fetch_and(&j->busy, ~(1u << s));
}

int cpu_conv_wino(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *u,
                  const float *b, const float *res, float *y) {
  const nn_window *w = &p->w;
  size_t C = p->C, M = p->M;
  wino_job j = {.ctx = ctx, .p = p, .u = u, .b = b};
  j.oh = (size_t)w->out[1], j.ow = (size_t)w->out[2];
  j.th = (j.oh + 1) / 2, j.tw = (j.ow + 1) / 2;
  size_t tw8 = (j.tw + 7) / 8 * 8;
  j.hp = 2 * j.th + 2;
  j.wp = 2 * tw8 + 8; /* the eight-tile groups read up to 2 * tw8 + 1 */
  /* Bands of tile rows whose V and products fit WINO_BAND_FLOATS (at least one row). */
  size_t per_row = WINO_T * (C + M) * j.tw;
  j.band = WINO_BAND_FLOATS / (per_row ? per_row : 1);
  j.band = j.band < 1 ? 1 : (j.band > j.th ? j.th : j.band);
  j.n_bands = (j.th + j.band - 1) / j.band;
  /* With several bands a thread, each thread takes whole bands with scratch of its own, which
   * saves three forks a band (112x112 over 32 channels on two threads: 1.31 -> 1.07 ms);
   * otherwise one band at a time, each step split over the threads, so that the transformed
   * weights are read once a band. */
  size_t threads = cpu_thread_count(ctx);
  bool whole_bands = threads > 1 && threads <= WINO_SLOTS && j.n_bands >= 2 * threads;
  size_t slots = whole_bands ? threads : 1;
  /* A group of eight may write seven columns past a band's tiles; the GEMM reads whole
   * panels of 16. */
  j.ld = (j.band * j.tw + 7 + CPU_SGEMM_NR - 1) / CPU_SGEMM_NR * CPU_SGEMM_NR;
  /* The transforms touch the 16 matrices at once, 16 streams: a distance between them that is
   * a multiple of 4 KiB would put them all in one set of L1 (28x28 over 64 channels took 0.79
   * ms instead of 0.44). Rounded to 4 KiB plus two cache lines instead. */
  j.vs = (C * j.ld + 1023) / 1024 * 1024 + 32;
  j.ms = (M * j.ld + 1023) / 1024 * 1024 + 32;
  /* One block from the executable's scratch: the padded input, then V and the products of
   * each slot, each a whole number of cache lines. */
  size_t xpf, slot, all, bytes;
  bool fresh = false, big = __builtin_mul_overflow(C, j.hp * j.wp, &xpf) || xpf > SIZE_MAX - 15;
  xpf = (xpf + 15) / 16 * 16;
  big = big || __builtin_mul_overflow((size_t)WINO_T, j.vs + j.ms, &slot) ||
        __builtin_mul_overflow(slots, slot, &all) || all > SIZE_MAX - xpf ||
        __builtin_mul_overflow(xpf + all, sizeof(float), &bytes);
  float *block = big ? NULL : cpu_scratch_take(ctx, bytes, &fresh);
  ptrdiff_t *offs = malloc(C * sizeof *offs);
  int rc = block && offs ? 0 : -1;
  if (rc == 0) {
    j.xp = block;
    for (size_t s = 0; s < slots; s++) {
      j.v[s] = block + xpf + s * slot;
      j.mo[s] = j.v[s] + WINO_T * j.vs;
    }
    /* Columns past a band's tiles are read (V by the GEMM, the products by the output
     * transform's last group of a row) but their results never stored: zeros keep fresh
     * memory from holding whatever slows arithmetic down (what a run leaves there is finite
     * results of this and other layers). */
    if (fresh)
      memset(block + xpf, 0, slots * slot * sizeof(float));
  }
  if (rc == 0) {
    for (size_t c = 0; c < C; c++)
      offs[c] = (ptrdiff_t)(c * j.ld);
    j.offs = offs;
  }
  atomic_init(&j.failed, 0);
  atomic_init(&j.busy, 0);
  for (size_t n = 0; n < p->N && rc == 0; n++) {
    j.x = x + n * C * p->in_sp;
    j.y = y + n * M * p->out_sp;
    j.res = res ? res + n * M * p->out_sp : NULL;
    cpu_parallel_for(ctx, C, nn_grain(j.hp * j.wp, 1 << 15), pad_task, &j);
    if (whole_bands) {
      cpu_parallel_for(ctx, j.n_bands, 1, bands_task, &j);
    } else {
      for (j.ty0 = 0; j.ty0 < j.th && !atomic_load(&j.failed); j.ty0 += j.band) {
        size_t rows = j.th - j.ty0 < j.band ? j.th - j.ty0 : j.band;
        cpu_parallel_for(ctx, C, nn_grain(WINO_T * 4 * rows * tw8, 1 << 14), in_task, &j);
        cpu_parallel_for(ctx, WINO_T, threads > 1 ? 1 : WINO_T, gemm_task, &j);
        cpu_parallel_for(ctx, M, nn_grain(WINO_T * 2 * rows * tw8, 1 << 14), out_task, &j);
      }
    }
    if (atomic_load(&j.failed))
      rc = -1;
  }
  cpu_scratch_give(ctx, block);
  free(offs);
  return rc;
}
