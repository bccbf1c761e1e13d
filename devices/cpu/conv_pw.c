/* Pointwise (1x1) convolution over a small plane, computed transposed, float32: the path
 * conv.c takes when cpu_conv_pwt_wanted says so, with W^T packed by its prepare(). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/conv_util.h"
#include "devices/cpu/vmath_avx2.h"

#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define CONV_HAVE_AVX2 1
#endif

/* ---- float32: pointwise convolution over a small plane, computed transposed ------------- */

/* A 1x1 convolution is the product W[M x K] X[K x P] over the P output positions of an image.
 * The register tile is MR = 6 rows by NR = 16 columns, so with the positions as columns a 7x7
 * plane (P = 49) computes 64 of them and a quarter of the multiply-adds are thrown away.
 * Computed transposed, Y^T[P x M] = X^T[P x K] W^T[K x M], the positions are rows (49 computes
 * 54) and the output channels columns (usually a multiple of 16). X^T is the input as it lies,
 * read transposed and packed as the GEMM's A; W^T is packed once, by prepare(), as its B. Y^T
 * goes through a scratch tile of a few dozen channels, small enough to stay in L1 or L2, that
 * a transpose stores into the output with the bias, a fused residual and the activation. A
 * strided 1x1 layer (ResNet's downsampling) packs X^T from the positions it reads. */

/* Whether the transposed product can run p: a 1x1 Conv without padding and groups, any
 * stride. */
bool cpu_conv_pwt_applies(const conv_plan *p) {
  if (p->transpose || p->G != 1 || p->kk != 1 || p->out_sp == 0 || p->C == 0)
    return false;
  for (int i = 0; i < NN_SP; i++)
    if (p->w.pb[i] || p->w.pe[i])
      return false;
  return true;
}

static size_t pwt_round(size_t v, size_t to) { return (v + to - 1) / to * to; }

/* Whether it pays, by a count of the elements of register tiles either way, each worth K
 * multiply-adds. The plain path pads the positions to NR and the channels to MR; the
 * transposed one pads the positions to MR and the channels to NR, and its transposes (of the
 * input and the output) cost about as much as 9/K elements per output. One position stays
 * with the plain path's matrix-vector product, and planes over PWT_MAX_PLANE positions with
 * the plain path too: X^T, then a large A, streams from L2 for every panel of channels. (The
 * plain path once read a shallow input's panels in place and gave a single last position to
 * a matrix-vector product; it packs every panel now, see conv.c.) Measured on Zen
 * 4 with the AVX2 kernels, 1x1 layers of ResNet-50, MobileNetV2 and EfficientNet-B0, and of
 * 512 channels on planes from 2x2 to 12x12: where this picks the transposed product it wins
 * 4-60%; elsewhere it ties or loses up to 15% (few input channels on 7x7, 8x8 planes).
 * The counts assume the 6x16 tile of the AVX2 kernels; another tile would need them measured
 * again. Over planes of more than PWT_MAX_NARROW_PLANE positions the count misses the packing
 * of X^T (P x K floats read across K rows): with more input channels than output ones (the
 * projections of inverted-residual blocks) the plain path is faster there whatever the count
 * says. Measured in one process per layer, best of four, one thread, 14x14: 480 -> 80 0.159
 * plain against 0.185 transposed, 672 -> 112 0.307 / 0.349, 240 -> 80 0.081 / 0.107, 576 -> 96
 * 0.223 / 0.257, 384 -> 64 0.110 / 0.144, 1024 -> 256 1.01 / 1.01; the other way round the
 * transposed product keeps winning or ties (80 -> 480 0.206 / 0.159, 112 -> 672 0.333 / 0.312,
 * 96 -> 576 0.240 / 0.234); on 7x7 it wins both ways (1152 -> 192 0.266 / 0.245, 2048 -> 512
 * 1.29 / 1.03; 960 -> 160 ties). */
#define PWT_MAX_PLANE 256
#define PWT_MAX_NARROW_PLANE 64

bool cpu_conv_pwt_wanted(const conv_plan *p) {
  size_t P = p->out_sp, M = p->M, K = p->C, m6 = pwt_round(M, CPU_SGEMM_MR);
  if (P < 2 || P > PWT_MAX_PLANE || (P > PWT_MAX_NARROW_PLANE && K > M))
    return false;
  double plain = (double)pwt_round(P, CPU_SGEMM_NR) * (double)m6;
  double trans = (double)pwt_round(P, CPU_SGEMM_MR) * (double)pwt_round(M, CPU_SGEMM_NR) +
                 9.0 * (double)P * (double)M / (double)K;
  return trans < 0.97 * plain;
}

/* Output channels per GEMM call of the transposed product: each call's Y^T (P x cw floats) is
 * stored into the output right after it is computed, while it is still in L1 or L2. */
static size_t conv_pwt_cols(size_t P) { return P <= 64 ? 64 : (P <= 256 ? 32 : 16); }

/* With several threads the channels are cut into this many ranges per thread, of the same
 * size within one panel, that the threads take as they come. One: each range re-reads all of
 * X^T and makes GEMM calls of its own, and four ranges a thread (channel ranges of one or two
 * panels) cost more than their balance saved (two threads, summed per-node minima: MNASNet
 * 4.99 -> 4.85 ms, MobileNetV2 4.89 -> 4.80, ResNet-50 41.3 -> 40.9). */
#define PWT_ITEMS_PER_THREAD 1
/* A last panel of A with at most this many positions goes through pwt_rows_avx2 (measured:
 * with one or two, 5-10% faster than a whole tile; with three, 40% slower). */
#define PWT_ROW_TAIL 2
/* Below this many flops an image stays on one thread (as cpu_sgemm_run decides). */
#define PWT_SERIAL_FLOPS 2e6

typedef struct pwt_job {
  const cpu_ctx *ctx;
  const conv_plan *p;
  const float *x;        /* one image */
  const float *scale;    /* its input channels' scale (C floats), or NULL */
  const size_t *off;     /* where each output position reads a channel (strided layers), or NULL */
  float *ap;             /* X^T packed as the GEMM's A (P rows, K deep) */
  const float *wt;       /* W^T packed as its B (K x M) */
  size_t kc, mpad, npad; /* the packed layout: KC block depth, padded rows and columns */
  /* Work items: col_items ranges of the channels' NR-panels times row_items ranges of the
   * positions' MR-panels. */
  size_t panels, col_items, row_items, cw;
  const float *b;
  const float *res; /* one image's fused residual (cpu_node.residual), laid out like y, or NULL */
  float *y;         /* one image's output, M planes of P */
  bool avx2;
  atomic_int failed;
} pwt_job;

#ifdef CONV_HAVE_AVX2
/* One whole panel of X^T: the six positions from s in each of kt channels in_sp apart, scaled
 * by scale[q] (or not), as four and two floats a channel (a float at a time, with its multiply,
 * the packing took a sixth of a 1152 -> 192 layer over 7x7). */
__attribute__((target("avx2,fma"))) static void pwt_pack_panel_avx2(const float *s, size_t in_sp,
                                                                    size_t kt, const float *scale,
                                                                    float *d) {
  for (size_t q = 0; q < kt; q++, s += in_sp, d += CPU_SGEMM_MR) {
    __m128 lo = _mm_loadu_ps(s);
    __m128 hi = _mm_castpd_ps(_mm_load_sd((const double *)(s + 4)));
    if (scale) {
      __m128 f = _mm_broadcast_ss(scale + q);
      lo = _mm_mul_ps(lo, f);
      hi = _mm_mul_ps(hi, f);
    }
    _mm_storeu_ps(d, lo);
    _mm_store_sd((double *)(d + 4), _mm_castps_pd(hi));
  }
}
#endif

/* Packs X^T as the GEMM's A, in the layout of gemm_util.h: KC block by KC block, MR-row
 * micro-panels of kt columns, MR floats each, zero past the last position. Row i of X^T is
 * output position i, which reads the input at off[i] in every channel (off is NULL for a
 * stride-1 layer, whose positions are the input's). Items [t0, t1) are (block, panel) pairs.
 * cpu_sgemm_pack_a would do the same for a stride-1 layer, slower: its loop over the rows of a
 * panel does not know that they are six. */
static void pwt_pack_task(void *arg, size_t t0, size_t t1) {
  const pwt_job *j = arg;
  size_t P = j->p->out_sp, K = j->p->C, in_sp = j->p->in_sp;
  size_t n_panels = j->mpad / CPU_SGEMM_MR;
  for (size_t t = t0; t < t1; t++) {
    size_t pc = t / n_panels * j->kc, r0 = t % n_panels * CPU_SGEMM_MR;
    size_t kt = K - pc < j->kc ? K - pc : j->kc;
    size_t rows = P - r0 < CPU_SGEMM_MR ? P - r0 : CPU_SGEMM_MR;
    float *d = j->ap + pc * j->mpad + r0 * kt;
    const float *s = j->x + pc * in_sp, *scale = j->scale ? j->scale + pc : NULL;
    if (!j->off && rows == CPU_SGEMM_MR) { /* a whole panel: no branch per float */
#ifdef CONV_HAVE_AVX2
      if (j->avx2) {
        pwt_pack_panel_avx2(s + r0, in_sp, kt, scale, d);
        continue;
      }
#endif
      for (size_t q = 0; q < kt; q++) {
        const float *sc = s + q * in_sp + r0;
        float f = scale ? scale[q] : 1.0f, *dq = d + q * CPU_SGEMM_MR; /* x * 1 is x */
        for (size_t i = 0; i < CPU_SGEMM_MR; i++)
          dq[i] = sc[i] * f;
      }
      continue;
    }
    for (size_t q = 0; q < kt; q++) {
      const float *sc = s + q * in_sp;
      float f = scale ? scale[q] : 1.0f;
      size_t i = 0;
      for (; i < rows; i++)
        d[q * CPU_SGEMM_MR + i] = sc[j->off ? j->off[r0 + i] : r0 + i] * f;
      for (; i < CPU_SGEMM_MR; i++)
        d[q * CPU_SGEMM_MR + i] = 0.0f;
    }
  }
}

/* The activations that are not smooth (relu, clip, leakyrelu, hardsigmoid, hardswish) are
 * applied as Y^T is stored, the smooth ones (sigmoid, silu, gelu) afterwards, to whole rows,
 * by cpu_act_apply_row: both with the functions of the GEMM's epilogue, so that a sum comes out
 * as the epilogue would make it. */
#ifdef CONV_HAVE_AVX2
/* d[r * ldd + c] = act(s[c * lds + r] + bias[r] + res[r * ldd + c]) for an 8x8 block (bias and
 * res may be NULL; res may be d). */
__attribute__((target("avx2,fma"))) static void pwt_t8x8_avx2(const float *s, size_t lds, float *d,
                                                              size_t ldd, const float *bias,
                                                              const float *res, const cpu_act *a) {
  __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + lds), r2 = _mm256_loadu_ps(s + 2 * lds),
         r3 = _mm256_loadu_ps(s + 3 * lds), r4 = _mm256_loadu_ps(s + 4 * lds),
         r5 = _mm256_loadu_ps(s + 5 * lds), r6 = _mm256_loadu_ps(s + 6 * lds),
         r7 = _mm256_loadu_ps(s + 7 * lds);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
         t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
         t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
         t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
         u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
         u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
         u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)),
         u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)),
         u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2)),
         u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)),
         u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 v[8] = {_mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                 _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                 _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                 _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
  for (int r = 0; r < 8; r++) {
    __m256 x = bias ? _mm256_add_ps(v[r], _mm256_broadcast_ss(bias + r)) : v[r];
    if (res)
      x = _mm256_add_ps(x, _mm256_loadu_ps(res + r * ldd));
    _mm256_storeu_ps(d + r * ldd, cpu_act8(a, x));
  }
}

/* The last t <= 2 positions of X^T (rows r0 .. r0 + t of A, a partial last panel) times the
 * NR-column panel of W^T at column col, over the whole depth, into c[0 .. nr) of t rows ldc
 * apart. A 6x16 tile would spend six rows' work on them; this spends about one per row: two
 * steps of k in flight hide the FMA latency, and each loads its two vectors of B once for both
 * rows. Its sums run in another order than the tile's, so these positions may differ from
 * what the GEMM would give by rounding. */
__attribute__((target("avx2,fma"))) static void
pwt_rows_avx2(const pwt_job *j, size_t r0, size_t t, size_t col, size_t nr, float *c, size_t ldc) {
  size_t K = j->p->C, rp = r0 / CPU_SGEMM_MR * CPU_SGEMM_MR, i = r0 % CPU_SGEMM_MR;
  __m256 s[8];
  for (int q = 0; q < 8; q++)
    s[q] = _mm256_setzero_ps();
  for (size_t pc = 0; pc < K; pc += j->kc) {
    size_t kt = K - pc < j->kc ? K - pc : j->kc, k = 0;
    const float *a = j->ap + pc * j->mpad + rp * kt + i;
    const float *b = j->wt + pc * j->npad + col * kt;
    if (t == 1) {
      for (; k + 2 <= kt; k += 2) { /* s[0..3]: steps k and k + 1 */
        const float *br = b + k * CPU_SGEMM_NR;
        __m256 a0 = _mm256_broadcast_ss(a + k * CPU_SGEMM_MR),
               a1 = _mm256_broadcast_ss(a + (k + 1) * CPU_SGEMM_MR);
        s[0] = _mm256_fmadd_ps(a0, _mm256_load_ps(br), s[0]);
        s[1] = _mm256_fmadd_ps(a0, _mm256_load_ps(br + 8), s[1]);
        s[2] = _mm256_fmadd_ps(a1, _mm256_load_ps(br + 16), s[2]);
        s[3] = _mm256_fmadd_ps(a1, _mm256_load_ps(br + 24), s[3]);
      }
    } else {
      for (; k + 2 <= kt; k += 2) { /* row 0 in s[0..3], row 1 in s[4..7] */
        const float *br = b + k * CPU_SGEMM_NR, *ar = a + k * CPU_SGEMM_MR;
        __m256 b0 = _mm256_load_ps(br), b1 = _mm256_load_ps(br + 8), b2 = _mm256_load_ps(br + 16),
               b3 = _mm256_load_ps(br + 24);
        __m256 a0 = _mm256_broadcast_ss(ar), a1 = _mm256_broadcast_ss(ar + CPU_SGEMM_MR);
        s[0] = _mm256_fmadd_ps(a0, b0, s[0]);
        s[1] = _mm256_fmadd_ps(a0, b1, s[1]);
        s[2] = _mm256_fmadd_ps(a1, b2, s[2]);
        s[3] = _mm256_fmadd_ps(a1, b3, s[3]);
        a0 = _mm256_broadcast_ss(ar + 1), a1 = _mm256_broadcast_ss(ar + CPU_SGEMM_MR + 1);
        s[4] = _mm256_fmadd_ps(a0, b0, s[4]);
        s[5] = _mm256_fmadd_ps(a0, b1, s[5]);
        s[6] = _mm256_fmadd_ps(a1, b2, s[6]);
        s[7] = _mm256_fmadd_ps(a1, b3, s[7]);
      }
    }
    for (; k < kt; k++) {
      __m256 b0 = _mm256_load_ps(b + k * CPU_SGEMM_NR),
             b1 = _mm256_load_ps(b + k * CPU_SGEMM_NR + 8);
      __m256 a0 = _mm256_broadcast_ss(a + k * CPU_SGEMM_MR);
      s[0] = _mm256_fmadd_ps(a0, b0, s[0]);
      s[1] = _mm256_fmadd_ps(a0, b1, s[1]);
      if (t == 2) {
        a0 = _mm256_broadcast_ss(a + k * CPU_SGEMM_MR + 1);
        s[4] = _mm256_fmadd_ps(a0, b0, s[4]);
        s[5] = _mm256_fmadd_ps(a0, b1, s[5]);
      }
    }
  }
  for (size_t r = 0; r < t; r++) {
    _Alignas(32) float v[CPU_SGEMM_NR];
    _mm256_store_ps(v, _mm256_add_ps(s[4 * r], s[4 * r + 2]));
    _mm256_store_ps(v + 8, _mm256_add_ps(s[4 * r + 1], s[4 * r + 3]));
    memcpy(c + r * ldc, v, nr * sizeof *c);
  }
}
#endif

/* One output: act(sum + bias + residual), in the order of the GEMM's epilogue. */
static inline float pwt_out(const cpu_act *a, float sum, const float *bias, const float *res,
                            size_t c, size_t i) {
  float v = sum + (bias ? bias[c] : 0.0f);
  return cpu_act_apply(a, res ? v + res[i] : v);
}

/* Stores Y^T for positions [r0, r0 + rows) (rows of w floats, in ct) into output channels
 * [m0, m0 + w) with their bias, the residual and the activation. */
static void pwt_store(const pwt_job *j, const float *ct, size_t r0, size_t rows, size_t w,
                      size_t m0) {
  const conv_plan *p = j->p;
  size_t P = p->out_sp;
  const cpu_act *a = &p->act;
  const float *bias = j->b ? j->b + m0 : NULL;
  const float *res = j->res ? j->res + m0 * P + r0 : NULL;
  float *d = j->y + m0 * P + r0;
  size_t c0 = 0;
#ifdef CONV_HAVE_AVX2
  if (j->avx2) {
    bool smooth = cpu_act_is_smooth(a->kind);
    cpu_act piece = smooth ? (cpu_act){CPU_ACT_NONE, 0, 0} : *a;
    for (; c0 + 8 <= w; c0 += 8) {
      size_t r = 0;
      for (; r + 8 <= rows; r += 8)
        pwt_t8x8_avx2(ct + r * w + c0, w, d + c0 * P + r, P, bias ? bias + c0 : NULL,
                      res ? res + c0 * P + r : NULL, &piece);
      for (; r < rows; r++)
        for (size_t c = c0; c < c0 + 8; c++)
          d[c * P + r] = pwt_out(&piece, ct[r * w + c], bias, res, c, c * P + r);
    }
    for (size_t c = c0; c < w; c++)
      for (size_t r = 0; r < rows; r++)
        d[c * P + r] = pwt_out(&piece, ct[r * w + c], bias, res, c, c * P + r);
    if (smooth && rows == P) /* the w planes lie one after the other */
      cpu_act_apply_row(CPU_ISA_AVX2_FMA, a, d, w * P);
    else if (smooth)
      for (size_t c = 0; c < w; c++)
        cpu_act_apply_row(CPU_ISA_AVX2_FMA, a, d + c * P, rows);
    return;
  }
#endif
  for (size_t c = c0; c < w; c++)
    for (size_t r = 0; r < rows; r++)
      d[c * P + r] = pwt_out(a, ct[r * w + c], bias, res, c, c * P + r);
}

/* Items [i0, i1): each a range of output channels times a range of positions, computed cw
 * channels at a time. The packed operands are whole matrices in the layout of gemm_util.h: KC
 * block by KC block, so that within one block any run of A's row panels or B's column panels
 * is itself a packed operand of depth kt. The GEMM runs one block at a time, the later ones
 * adding to the tile (beta = 1). */
static void pwt_items_task(void *arg, size_t i0, size_t i1) {
  pwt_job *j = arg;
  const conv_plan *p = j->p;
  size_t P = p->out_sp, M = p->M, K = p->C, row_panels = j->mpad / CPU_SGEMM_MR;
  cpu_ctx ctx = *j->ctx;
  ctx.pool = NULL; /* the threads share out items */
  float *ct = nn_alloc_aligned(P * j->cw, sizeof(float));
  if (!ct) {
    atomic_store(&j->failed, 1);
    return;
  }
  for (size_t it = i0; it < i1; it++) {
    size_t ic = it / j->row_items, ir = it % j->row_items;
    size_t r0 = row_panels * ir / j->row_items * CPU_SGEMM_MR;
    size_t r1 = row_panels * (ir + 1) / j->row_items * CPU_SGEMM_MR;
    size_t m_end = j->panels * (ic + 1) / j->col_items * CPU_SGEMM_NR;
    if (r1 > P)
      r1 = P;
    if (m_end > M)
      m_end = M;
    /* A last panel of one or two positions (7x7: 49 = 8 * 6 + 1) goes row by row. */
    size_t tail = r1 == P && j->avx2 ? P % CPU_SGEMM_MR : 0;
    if (tail > PWT_ROW_TAIL)
      tail = 0;
    for (size_t m0 = j->panels * ic / j->col_items * CPU_SGEMM_NR; m0 < m_end; m0 += j->cw) {
      size_t w = m_end - m0 < j->cw ? m_end - m0 : j->cw;
      for (size_t pc = 0; pc < K; pc += j->kc) {
        size_t kt = K - pc < j->kc ? K - pc : j->kc;
        cpu_sgemm_args ga = {.m = r1 - tail - r0,
                             .n = w,
                             .k = kt,
                             .alpha = 1.0f,
                             .beta = pc == 0 ? 0.0f : 1.0f,
                             .a_packed = j->ap + pc * j->mpad + r0 * kt,
                             .b_packed = j->wt + pc * j->npad + m0 * kt,
                             .c = ct,
                             .ldc = w};
        if (cpu_sgemm_run(&ctx, &ga) != 0) {
          atomic_store(&j->failed, 1);
          free(ct);
          return;
        }
      }
#ifdef CONV_HAVE_AVX2
      /* After the GEMM, which has brought these panels of W^T into cache. */
      for (size_t c = 0; tail && c < w; c += CPU_SGEMM_NR)
        pwt_rows_avx2(j, r1 - tail, tail, m0 + c, w - c < CPU_SGEMM_NR ? w - c : CPU_SGEMM_NR,
                      ct + (r1 - tail - r0) * w + c, w);
#endif
      /* No epilogue in the GEMM: a column bias would send every tile through the
       * micro-kernel's slower store; the bias and activation come with the transpose. */
      pwt_store(j, ct, r0, r1 - r0, w, m0);
    }
  }
  free(ct);
}

/* Runs p over every image with W^T packed in wt (cpu_sgemm_pack_b, K x M), adding res (like y,
 * or NULL; it may be y itself); 0, or -1 when memory ran out. */
int cpu_conv_pwt(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wt, const float *b,
                 const float *scale, const float *res, float *y) {
  size_t P = p->out_sp, M = p->M, K = p->C;
  bool strided = p->in_sp != P;
  float *ap = nn_alloc_aligned(cpu_sgemm_packed_a_floats(P, K), sizeof(float));
  size_t *off = strided ? malloc(P * sizeof *off) : NULL;
  if (!ap || (strided && !off)) {
    free(ap), free(off);
    return -1;
  }
  if (strided) {
    const nn_window *w = &p->w;
    size_t i = 0;
    for (int64_t oz = 0; oz < w->out[0]; oz++)
      for (int64_t oy = 0; oy < w->out[1]; oy++)
        for (int64_t ox = 0; ox < w->out[2]; ox++)
          off[i++] = (size_t)(((oz * w->s[0]) * w->in[1] + oy * w->s[1]) * w->in[2] + ox * w->s[2]);
  }
  cpu_ctx serial = *ctx;
  serial.pool = NULL;
  size_t threads = cpu_thread_count(ctx);
  if (2.0 * (double)P * (double)M * (double)K < PWT_SERIAL_FLOPS)
    threads = 1;
  pwt_job j = {.ctx = ctx,
               .p = p,
               .off = off,
               .ap = ap,
               .wt = wt,
               .kc = cpu_sgemm_kc(K),
               .mpad = cpu_sgemm_packed_a_floats(P, 1),
               .npad = cpu_sgemm_packed_b_floats(1, M),
               .panels = (M + CPU_SGEMM_NR - 1) / CPU_SGEMM_NR,
               .cw = conv_pwt_cols(P),
               .b = b,
               .avx2 = ctx->isa == CPU_ISA_AVX2_FMA};
  /* Channels are split first, since each range of positions packs nothing but reads all of
   * W^T again; positions too when there are few channels. */
  size_t target = threads == 1 ? 1 : threads * PWT_ITEMS_PER_THREAD;
  size_t row_panels = j.mpad / CPU_SGEMM_MR;
  j.col_items = target < j.panels ? target : j.panels;
  j.row_items = (target + j.col_items - 1) / j.col_items;
  if (j.row_items > row_panels)
    j.row_items = row_panels;
  atomic_init(&j.failed, 0);
  cpu_ctx *run_ctx = threads > 1 ? ctx : &serial;
  size_t pack_items = j.mpad / CPU_SGEMM_MR * ((K + j.kc - 1) / j.kc);
  for (size_t n = 0; n < p->N && !atomic_load(&j.failed); n++) {
    j.x = x + n * K * p->in_sp;
    j.scale = scale ? scale + n * K : NULL;
    j.y = y + n * M * P;
    j.res = res ? res + n * M * P : NULL;
    cpu_parallel_for(run_ctx, pack_items, nn_grain(CPU_SGEMM_MR * j.kc, 1 << 14), pwt_pack_task,
                     &j);
    cpu_parallel_for(run_ctx, j.col_items * j.row_items, 1, pwt_items_task, &j);
  }
  free(ap), free(off);
  return atomic_load(&j.failed) ? -1 : 0;
}
