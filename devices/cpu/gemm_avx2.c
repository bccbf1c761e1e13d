/* AVX2/FMA variants of the GEMM building blocks. The file is compiled with the same flags as
 * the rest of the library; each function carries its own target attribute and is only called
 * after cpuid said AVX2 and FMA are there (ctx->isa == CPU_ISA_AVX2_FMA). */
#include "devices/cpu/gemm_util.h"
#include "devices/cpu/vmath_avx2.h"

#ifdef CPU_GEMM_HAVE_AVX2

#include <immintrin.h>
#include <string.h>

/* What the micro-kernel prefetches into L2 while it runs, besides B's next lines into L1:
 * PF_A the next row panel of an A packed ahead (the same depth kc, right after this one),
 * PF_B the next column panel of a B packed ahead (likewise). In a model the weights come from
 * DRAM on every run: they outgrow the caches, and this machine's L3 is shared with other
 * guests. Packed ahead (by prepare()), A (the weights of a Conv, streamed once per B panel) and
 * B (W^T of the transposed 1x1 product, the constant B of MatMul and Gemm) were then read at
 * the speed of DRAM in the first pass over them, with the FMA units waiting, instead of
 * arriving while the previous panel computes. An operand the GEMM packs itself is in L2
 * already: prefetching it only took load slots (sgemm 1024^3 about 5% slower); one given
 * packed is prefetched whoever packed it (gemm.c: the transposed product's X^T gains too).
 * Measured on Zen 4, one thread, per-node minima over alternating processes: forty 1x1 layers
 * 1152 -> 192 -> 1152 over 7x7 (transposed product, 72 MB of weights) 22.2 -> 19.0 ms,
 * 1024 -> 256 -> 1024 over 14x14 87.7 -> 81.4 ms; ResNet-50 81.8 -> 78.1 ms, BERT encoder
 * 11.3 -> 10.7 ms, MNASNet 9.12 -> 8.77 ms (24 processes each); with the operands in cache the
 * prefetches cost nothing measurable. A prefetch past the end of a buffer is harmless (it
 * never faults). */
enum { PF_B = 1, PF_A = 2 };
#define AVX2 __attribute__((target("avx2,fma")))

/* Writes one row of the tile: c = alpha * acc + beta * c, or alpha * acc when beta == 0. */
#define STORE_ROW(row, lo, hi)                                                                     \
  do {                                                                                             \
    float *cr = c + (row)*ldc;                                                                     \
    if (beta == 0.0f) {                                                                            \
      _mm256_storeu_ps(cr, _mm256_mul_ps(va, lo));                                                 \
      _mm256_storeu_ps(cr + 8, _mm256_mul_ps(va, hi));                                             \
    } else {                                                                                       \
      _mm256_storeu_ps(cr, _mm256_fmadd_ps(va, lo, _mm256_mul_ps(vb, _mm256_loadu_ps(cr))));       \
      _mm256_storeu_ps(cr + 8,                                                                     \
                       _mm256_fmadd_ps(va, hi, _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8))));       \
    }                                                                                              \
  } while (0)

/* Stores the mr x nr corner of a tile that a micro-kernel spilled to t through the epilogue:
 * alpha, beta * C, the biases, then the activation. Kept out of line (noinline) so that the
 * register allocation of the micro-kernel's loop stays what it is without an epilogue: inlined, the
 * epilogue's constants pushed accumulators out to the stack. One spill per tile costs little
 * next to kc steps of twelve FMAs. */
AVX2 __attribute__((noinline)) static void store_tile(const float (*t)[CPU_SGEMM_NR], float *c,
                                                      size_t ldc, size_t mr, size_t nr, float alpha,
                                                      float beta, const cpu_sgemm_tile_ep *ep) {
  /* A full tile is finished in registers, in three passes over its twelve vectors: the sums
   * with the biases, then the activation in one loop of a constant kind, then the stores. A
   * smooth activation (sigmoid, silu, gelu) is a chain of some twenty dependent operations;
   * finished row by row, two vectors at a time, the core overlapped fewer of them
   * (EfficientNet-B0: 14.60 -> 14.16 ms, one thread), and through a buffer (u) with a separate
   * activation loop and a copy out, a 6x16 SiLU tile took 40% longer still. An edge tile
   * (nr < 16 columns) is finished in u, so it too is activated in vectors, and only its nr
   * columns are copied out. */
  const cpu_act_kind k = ep->act.kind;
  bool smooth = cpu_act_is_smooth(k);
  _Alignas(32) float u[CPU_SGEMM_MR][CPU_SGEMM_NR];
  if (nr == CPU_SGEMM_NR) {
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    __m256 cb0 = _mm256_setzero_ps(), cb1 = _mm256_setzero_ps();
    if (ep->col_bias) {
      cb0 = _mm256_loadu_ps(ep->col_bias);
      cb1 = _mm256_loadu_ps(ep->col_bias + 8);
    }
    __m256 v[2 * CPU_SGEMM_MR];
    for (size_t i = 0; i < mr; i++) {
      float *cr = c + i * ldc;
      __m256 v0, v1;
      if (beta == 0.0f) {
        v0 = _mm256_mul_ps(va, _mm256_load_ps(t[i]));
        v1 = _mm256_mul_ps(va, _mm256_load_ps(t[i] + 8));
      } else {
        v0 = _mm256_fmadd_ps(va, _mm256_load_ps(t[i]), _mm256_mul_ps(vb, _mm256_loadu_ps(cr)));
        v1 = _mm256_fmadd_ps(va, _mm256_load_ps(t[i] + 8),
                             _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8)));
      }
      if (ep->row_bias) {
        __m256 rb = _mm256_set1_ps(ep->row_bias[i]);
        v0 = _mm256_add_ps(v0, rb);
        v1 = _mm256_add_ps(v1, rb);
      }
      if (ep->col_bias) {
        v0 = _mm256_add_ps(v0, cb0);
        v1 = _mm256_add_ps(v1, cb1);
      }
      if (ep->addend) {
        const float *ar = ep->addend + i * ep->ld_addend;
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ar));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ar + 8));
      }
      v[2 * i] = v0;
      v[2 * i + 1] = v1;
    }
#define ACT_PASS(expr)                                                                             \
  for (size_t q = 0; q < 2 * mr; q++)                                                              \
  v[q] = expr
    switch (k) {
    case CPU_ACT_SIGMOID: ACT_PASS(cpu_act8_smooth_kind(CPU_ACT_SIGMOID, v[q])); break;
    case CPU_ACT_SILU: ACT_PASS(cpu_act8_smooth_kind(CPU_ACT_SILU, v[q])); break;
    case CPU_ACT_GELU: ACT_PASS(cpu_act8_smooth_kind(CPU_ACT_GELU, v[q])); break;
    case CPU_ACT_GELU_TANH: ACT_PASS(cpu_act8_smooth_kind(CPU_ACT_GELU_TANH, v[q])); break;
    default: ACT_PASS(cpu_act8(&ep->act, v[q])); break;
    }
#undef ACT_PASS
    for (size_t i = 0; i < mr; i++) {
      _mm256_storeu_ps(c + i * ldc, v[2 * i]);
      _mm256_storeu_ps(c + i * ldc + 8, v[2 * i + 1]);
    }
    return;
  }
  for (size_t i = 0; i < mr; i++) {
    const float *cr = c + i * ldc;
    float rb = ep->row_bias ? ep->row_bias[i] : 0.0f;
    for (size_t j = 0; j < CPU_SGEMM_NR; j++) {
      float v = j >= nr ? 0.0f : beta == 0.0f ? alpha * t[i][j] : alpha * t[i][j] + beta * cr[j];
      if (ep->row_bias)
        v += rb;
      if (ep->col_bias && j < nr)
        v += ep->col_bias[j];
      if (ep->addend && j < nr)
        v += ep->addend[i * ep->ld_addend + j];
      u[i][j] = v;
    }
  }
  if (smooth) {
    cpu_act_apply_row_avx2(&ep->act, &u[0][0], mr * CPU_SGEMM_NR);
  } else if (k != CPU_ACT_NONE) {
    for (size_t i = 0; i < mr; i++) {
      _mm256_store_ps(u[i], cpu_act8(&ep->act, _mm256_load_ps(u[i])));
      _mm256_store_ps(u[i] + 8, cpu_act8(&ep->act, _mm256_load_ps(u[i] + 8)));
    }
  }
  for (size_t i = 0; i < mr; i++)
    memcpy(c + i * ldc, u[i], nr * sizeof **u);
}

/* The prefetches of one unrolled group of four steps of k at a (A) and b (B): B's lines four
 * groups ahead into L1 when l1 (a packed panel), and the next panels of the operands packed
 * ahead (pf) into L2. */
AVX2 static inline __attribute__((always_inline)) void prefetch_step(const float *a, const float *b,
                                                                     size_t kc, int pf, bool l1) {
  if (l1)
    _mm_prefetch((const char *)(b + 4 * CPU_SGEMM_NR * 4), _MM_HINT_T0);
  if (pf & PF_B) {
    const char *nb = (const char *)(b + kc * CPU_SGEMM_NR);
    _mm_prefetch(nb, _MM_HINT_T1);
    _mm_prefetch(nb + 64, _MM_HINT_T1);
    _mm_prefetch(nb + 128, _MM_HINT_T1);
    _mm_prefetch(nb + 192, _MM_HINT_T1);
  }
  if (pf & PF_A) {
    const char *na = (const char *)(a + kc * CPU_SGEMM_MR);
    _mm_prefetch(na, _MM_HINT_T1);
    _mm_prefetch(na + 64, _MM_HINT_T1);
  }
}

/* Whether a tile's epilogue is the clamp that the kernels finish in registers (alpha 1, beta 0
 * or 1, at most a row bias, a column bias and an addend, then none, relu or clip), with its
 * bounds in lo, hi;
 * relu and none are clip to [0, inf) and (-inf, inf), with max_ps/min_ps as cpu_act8 uses
 * them, so the results are the same bit for bit. */
static inline bool clamp_epilogue(float alpha, float beta, const cpu_sgemm_tile_ep *ep, float *lo,
                                  float *hi) {
  *lo = -__builtin_inff(), *hi = __builtin_inff();
  if (alpha != 1.0f || (beta != 0.0f && beta != 1.0f))
    return false;
  return !ep || cpu_act_clamp_bounds(&ep->act, lo, hi);
}

/* Finishes row `row` of a tile from its registers lo, hi with the clamp epilogue: adds C when
 * beta is 1, the row bias rb, the column bias cb and the addend ad (lda apart), clamps to
 * [flo, fhi] and stores the
 * row whole when `full`, else its nr columns through the masks m0, m1 (maskload reads none
 * of the rest). Uses c, ldc, beta and nr from the kernel. */
#define EP_CLAMP_ROW(row, lo, hi, full)                                                            \
  do {                                                                                             \
    __m256 v0 = lo, v1 = hi;                                                                       \
    float *cr = c + (row)*ldc;                                                                     \
    if (beta != 0.0f) {                                                                            \
      v0 = _mm256_add_ps(v0, (full) ? _mm256_loadu_ps(cr) : _mm256_maskload_ps(cr, m0));           \
      v1 = _mm256_add_ps(v1, (full) ? _mm256_loadu_ps(cr + 8) : _mm256_maskload_ps(cr + 8, m1));   \
    }                                                                                              \
    if (rb) {                                                                                      \
      __m256 vr = _mm256_broadcast_ss(rb + (row));                                                 \
      v0 = _mm256_add_ps(v0, vr);                                                                  \
      v1 = _mm256_add_ps(v1, vr);                                                                  \
    }                                                                                              \
    if (cb) {                                                                                      \
      v0 = _mm256_add_ps(v0, (full) ? _mm256_loadu_ps(cb) : _mm256_maskload_ps(cb, m0));           \
      v1 = _mm256_add_ps(v1, (full) ? _mm256_loadu_ps(cb + 8) : _mm256_maskload_ps(cb + 8, m1));   \
    }                                                                                              \
    if (ad) {                                                                                      \
      const float *ar = ad + (row)*lda;                                                            \
      v0 = _mm256_add_ps(v0, (full) ? _mm256_loadu_ps(ar) : _mm256_maskload_ps(ar, m0));           \
      v1 = _mm256_add_ps(v1, (full) ? _mm256_loadu_ps(ar + 8) : _mm256_maskload_ps(ar + 8, m1));   \
    }                                                                                              \
    __m256 vlo = _mm256_broadcast_ss(&flo), vhi = _mm256_broadcast_ss(&fhi);                       \
    v0 = _mm256_min_ps(vhi, _mm256_max_ps(vlo, v0));                                               \
    v1 = _mm256_min_ps(vhi, _mm256_max_ps(vlo, v1));                                               \
    if (full) {                                                                                    \
      _mm256_storeu_ps(cr, v0);                                                                    \
      _mm256_storeu_ps(cr + 8, v1);                                                                \
    } else {                                                                                       \
      _mm256_maskstore_ps(cr, m0, v0);                                                             \
      if (nr > 8)                                                                                  \
        _mm256_maskstore_ps(cr + 8, m1, v1);                                                       \
    }                                                                                              \
  } while (0)

/* The 6x16 tile lives in twelve ymm registers; each step of k loads two vectors of B and
 * broadcasts six scalars of A, which keeps both FMA ports busy with 12 independent chains.
 * The micro-kernel, once for packed B panels (offs == NULL: row p at bp + p * NR, aligned) and
 * once for B read in place (row p at bp + offs[p], unaligned), each specialisation inlined into
 * its entry point below; pf (PF_A, PF_B), a constant in each, says what to prefetch. */
AVX2 static inline __attribute__((always_inline)) void
ukernel_body(size_t kc, const float *ap, const float *bp, const ptrdiff_t *offs, float *c,
             size_t ldc, size_t mr, size_t nr, float alpha, float beta, const cpu_sgemm_tile_ep *ep,
             int pf) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  const float *a = ap, *b = bp;

/* One broadcast register at a time: with twelve accumulators and two vectors of B, a second one
 * would take the sixteenth register and leave the allocator none to spare, and gcc then spilled
 * accumulators inside the loop. */
#define STEP(off_a, off_b)                                                                         \
  do {                                                                                             \
    const float *br_ = offs ? b + offs[(off_b) / CPU_SGEMM_NR] : b + (off_b);                      \
    __m256 b0 = offs ? _mm256_loadu_ps(br_) : _mm256_load_ps(br_);                                 \
    __m256 b1 = offs ? _mm256_loadu_ps(br_ + 8) : _mm256_load_ps(br_ + 8);                         \
    __m256 av = _mm256_broadcast_ss(a + (off_a) + 0);                                              \
    c00 = _mm256_fmadd_ps(av, b0, c00);                                                            \
    c01 = _mm256_fmadd_ps(av, b1, c01);                                                            \
    av = _mm256_broadcast_ss(a + (off_a) + 1);                                                     \
    c10 = _mm256_fmadd_ps(av, b0, c10);                                                            \
    c11 = _mm256_fmadd_ps(av, b1, c11);                                                            \
    av = _mm256_broadcast_ss(a + (off_a) + 2);                                                     \
    c20 = _mm256_fmadd_ps(av, b0, c20);                                                            \
    c21 = _mm256_fmadd_ps(av, b1, c21);                                                            \
    av = _mm256_broadcast_ss(a + (off_a) + 3);                                                     \
    c30 = _mm256_fmadd_ps(av, b0, c30);                                                            \
    c31 = _mm256_fmadd_ps(av, b1, c31);                                                            \
    av = _mm256_broadcast_ss(a + (off_a) + 4);                                                     \
    c40 = _mm256_fmadd_ps(av, b0, c40);                                                            \
    c41 = _mm256_fmadd_ps(av, b1, c41);                                                            \
    av = _mm256_broadcast_ss(a + (off_a) + 5);                                                     \
    c50 = _mm256_fmadd_ps(av, b0, c50);                                                            \
    c51 = _mm256_fmadd_ps(av, b1, c51);                                                            \
  } while (0)

  size_t p = 0;
  if (nr <= CPU_SGEMM_NR / 2) {
    /* A tile of at most eight columns (the last of a 14x14 plane's 196 positions take 4):
     * half the multiply-adds, one vector of B a step. Steps k and k + 1 go to the two halves'
     * accumulators (cX0 and cX1), so that twelve chains keep both FMA units busy, and are
     * summed at the end. */
#define STEP8(row)                                                                                 \
  do {                                                                                             \
    c##row##0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + (row)), x0, c##row##0);                    \
    c##row##1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + CPU_SGEMM_MR + (row)), x1, c##row##1);     \
  } while (0)
    for (; p + 2 <= kc; p += 2) {
      __m256 x0 = offs ? _mm256_loadu_ps(b + offs[0]) : _mm256_load_ps(b);
      __m256 x1 = offs ? _mm256_loadu_ps(b + offs[1]) : _mm256_load_ps(b + CPU_SGEMM_NR);
      STEP8(0);
      STEP8(1);
      STEP8(2);
      STEP8(3);
      STEP8(4);
      STEP8(5);
      a += 2 * CPU_SGEMM_MR;
      if (offs)
        offs += 2;
      else
        b += 2 * CPU_SGEMM_NR;
    }
#undef STEP8
    if (p < kc) {
      __m256 x0 = offs ? _mm256_loadu_ps(b + offs[0]) : _mm256_load_ps(b);
      c00 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0), x0, c00);
      c10 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1), x0, c10);
      c20 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2), x0, c20);
      c30 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3), x0, c30);
      c40 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4), x0, c40);
      c50 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5), x0, c50);
    }
    c00 = _mm256_add_ps(c00, c01), c10 = _mm256_add_ps(c10, c11);
    c20 = _mm256_add_ps(c20, c21), c30 = _mm256_add_ps(c30, c31);
    c40 = _mm256_add_ps(c40, c41), c50 = _mm256_add_ps(c50, c51);
    c01 = c11 = c21 = c31 = c41 = c51 = _mm256_setzero_ps();
    p = kc;
  }
  for (; p + 4 <= kc; p += 4) {
    prefetch_step(a, b, kc, pf, !offs);
    STEP(0, 0);
    STEP(CPU_SGEMM_MR, CPU_SGEMM_NR);
    STEP(2 * CPU_SGEMM_MR, 2 * CPU_SGEMM_NR);
    STEP(3 * CPU_SGEMM_MR, 3 * CPU_SGEMM_NR);
    a += 4 * CPU_SGEMM_MR;
    if (offs)
      offs += 4;
    else
      b += 4 * CPU_SGEMM_NR;
  }
  for (; p < kc; p++) {
    STEP(0, 0);
    a += CPU_SGEMM_MR;
    if (offs)
      offs += 1;
    else
      b += CPU_SGEMM_NR;
  }
#undef STEP

  /* A full tile with the common epilogue (C itself when beta is 1, a row or column bias and
   * perhaps a residual, then none, relu or clip, as Conv, Gemm and MatMul + Add use it; the
   * sums in the order store_tile makes them) is finished in registers: for short depths (1x1
   * convolutions over few channels) the spill and store_tile cost as much as the products,
   * and a column bias through them cost 4-8% of BERT's products (128 x 256 x 1024).
   * This kernel writes out the test and the bounds of clamp_epilogue (here and for the edge
   * tiles below) and keeps its own loop for a spilled tile without an epilogue: through the
   * helpers, gcc allocated the registers of its loop otherwise (an accumulator spilled in
   * every step) and sgemm 1024^3 ran 5% slower. */
  if (mr == CPU_SGEMM_MR && nr == CPU_SGEMM_NR && ep && alpha == 1.0f &&
      (beta == 0.0f || beta == 1.0f) &&
      (ep->act.kind == CPU_ACT_NONE || ep->act.kind == CPU_ACT_RELU ||
       ep->act.kind == CPU_ACT_CLIP)) {
    const float *rb = ep->row_bias, *ad = ep->addend;
    const bool cb = ep->col_bias != NULL;
    const __m256 cb0 = cb ? _mm256_loadu_ps(ep->col_bias) : _mm256_setzero_ps();
    const __m256 cb1 = cb ? _mm256_loadu_ps(ep->col_bias + 8) : _mm256_setzero_ps();
    size_t lda = ep->ld_addend;
    float flo = ep->act.kind == CPU_ACT_CLIP   ? ep->act.p0
                : ep->act.kind == CPU_ACT_RELU ? 0.0f
                                               : -__builtin_inff();
    float fhi = ep->act.kind == CPU_ACT_CLIP ? ep->act.p1 : __builtin_inff();
#define EP_ROW(row, lo, hi)                                                                        \
  do {                                                                                             \
    __m256 v0 = lo, v1 = hi;                                                                       \
    if (beta != 0.0f) {                                                                            \
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(c + (row)*ldc));                                      \
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(c + (row)*ldc + 8));                                  \
    }                                                                                              \
    if (rb) {                                                                                      \
      __m256 vr = _mm256_broadcast_ss(rb + (row));                                                 \
      v0 = _mm256_add_ps(v0, vr);                                                                  \
      v1 = _mm256_add_ps(v1, vr);                                                                  \
    }                                                                                              \
    if (cb) {                                                                                      \
      v0 = _mm256_add_ps(v0, cb0);                                                                 \
      v1 = _mm256_add_ps(v1, cb1);                                                                 \
    }                                                                                              \
    if (ad) {                                                                                      \
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ad + (row)*lda));                                     \
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ad + (row)*lda + 8));                                 \
    }                                                                                              \
    __m256 vlo = _mm256_broadcast_ss(&flo), vhi = _mm256_broadcast_ss(&fhi);                       \
    v0 = _mm256_min_ps(vhi, _mm256_max_ps(vlo, v0));                                               \
    v1 = _mm256_min_ps(vhi, _mm256_max_ps(vlo, v1));                                               \
    _mm256_storeu_ps(c + (row)*ldc, v0);                                                           \
    _mm256_storeu_ps(c + (row)*ldc + 8, v1);                                                       \
  } while (0)
    EP_ROW(0, c00, c01);
    EP_ROW(1, c10, c11);
    EP_ROW(2, c20, c21);
    EP_ROW(3, c30, c31);
    EP_ROW(4, c40, c41);
    EP_ROW(5, c50, c51);
#undef EP_ROW
    return;
  }
  /* An edge tile (fewer rows or columns) with that epilogue or none, alpha 1 and beta 0 or 1:
   * finished in registers too, reading and writing only its mr x nr corner through masked
   * loads and stores, instead of the spill and the element loops below (which made a stem
   * written through the GEMM's window, one narrow tile per image row, 15% slower). It repeats
   * the block above rather than sharing it: merged into one block with the masks chosen at run
   * time, gcc spilled accumulators in the loop and a 3x3 layer over 64 channels at 56x56 took
   * 5.4 ms instead of 2.4. The condition's inner parentheses are load-bearing with gcc 12:
   * written without them, it allocated the k loop's registers otherwise (alpha kept in a
   * general register, a broadcast moved across the pointer increment) and the 1024^3 product
   * ran 5-7% slower (bench/sgemm_bench, the two builds alternating). */
  if ((mr < CPU_SGEMM_MR || nr < CPU_SGEMM_NR) && alpha == 1.0f && (beta == 0.0f || beta == 1.0f) &&
      (!ep || ((ep->act.kind == CPU_ACT_NONE || ep->act.kind == CPU_ACT_RELU ||
                ep->act.kind == CPU_ACT_CLIP)))) {
    static const int32_t lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)(lanes + 8 - (nr < 8 ? nr : 8)));
    const __m256i m1 = _mm256_loadu_si256((const __m256i *)(lanes + 8 - (nr > 8 ? nr - 8 : 0)));
    const float *rb = ep ? ep->row_bias : NULL, *ad = ep ? ep->addend : NULL;
    const float *cb = ep ? ep->col_bias : NULL;
    size_t lda = ep ? ep->ld_addend : 0;
    cpu_act_kind k = ep ? ep->act.kind : CPU_ACT_NONE;
    float flo = k == CPU_ACT_CLIP ? ep->act.p0 : k == CPU_ACT_RELU ? 0.0f : -__builtin_inff();
    float fhi = k == CPU_ACT_CLIP ? ep->act.p1 : __builtin_inff();
#define EP_EDGE(row, lo, hi)                                                                       \
  if ((row) < mr)                                                                                  \
    EP_CLAMP_ROW(row, lo, hi, false);
    EP_EDGE(0, c00, c01)
    EP_EDGE(1, c10, c11)
    EP_EDGE(2, c20, c21)
    EP_EDGE(3, c30, c31)
    EP_EDGE(4, c40, c41)
    EP_EDGE(5, c50, c51)
#undef EP_EDGE
    return;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  if (mr == CPU_SGEMM_MR && nr == CPU_SGEMM_NR && !ep) {
    STORE_ROW(0, c00, c01);
    STORE_ROW(1, c10, c11);
    STORE_ROW(2, c20, c21);
    STORE_ROW(3, c30, c31);
    STORE_ROW(4, c40, c41);
    STORE_ROW(5, c50, c51);
    return;
  }
  /* An edge tile, or an epilogue: spill the registers, then write only the mr x nr corner. */
  _Alignas(32) float t[CPU_SGEMM_MR][CPU_SGEMM_NR];
  _mm256_store_ps(t[0], c00), _mm256_store_ps(t[0] + 8, c01);
  _mm256_store_ps(t[1], c10), _mm256_store_ps(t[1] + 8, c11);
  _mm256_store_ps(t[2], c20), _mm256_store_ps(t[2] + 8, c21);
  _mm256_store_ps(t[3], c30), _mm256_store_ps(t[3] + 8, c31);
  _mm256_store_ps(t[4], c40), _mm256_store_ps(t[4] + 8, c41);
  _mm256_store_ps(t[5], c50), _mm256_store_ps(t[5] + 8, c51);
  if (ep) {
    store_tile((const float(*)[CPU_SGEMM_NR])t, c, ldc, mr, nr, alpha, beta, ep);
    return;
  }
  for (size_t i = 0; i < mr; i++) {
    float *cr = c + i * ldc;
    if (beta == 0.0f)
      for (size_t j = 0; j < nr; j++)
        cr[j] = alpha * t[i][j];
    else
      for (size_t j = 0; j < nr; j++)
        cr[j] = alpha * t[i][j] + beta * cr[j];
  }
}

/* A tile of at most four rows (r, a constant in each specialisation), which the 6x16 kernel
 * would compute with two to five rows of zeros and store through masks: the last row panel
 * of every M that six does not divide (16 = 6 + 6 + 4, 64, 112, 160, ...) and of a 14x14
 * plane's positions in the transposed 1x1 product. A is the same MR-wide panel; only its
 * first r scalars a step are read. With one or two rows, steps k and k + 1 go to separate
 * accumulators (d*), so that at least four chains of FMAs are in flight. */
AVX2 static inline __attribute__((always_inline)) void
short_body(size_t kc, const float *ap, const float *bp, float *c, size_t ldc, size_t nr,
           float alpha, float beta, const cpu_sgemm_tile_ep *ep, const int r, int pf) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  const float *a = ap, *b = bp;
  const bool split = r <= 2; /* odd steps into c2x/c3x, summed at the end */
#define SSTEP(o, set)                                                                              \
  do {                                                                                             \
    __m256 b0 = _mm256_load_ps(b + (o)*CPU_SGEMM_NR);                                              \
    __m256 b1 = _mm256_load_ps(b + (o)*CPU_SGEMM_NR + 8);                                          \
    __m256 av = _mm256_broadcast_ss(a + (o)*CPU_SGEMM_MR);                                         \
    if (set) {                                                                                     \
      c20 = _mm256_fmadd_ps(av, b0, c20), c21 = _mm256_fmadd_ps(av, b1, c21);                      \
    } else {                                                                                       \
      c00 = _mm256_fmadd_ps(av, b0, c00), c01 = _mm256_fmadd_ps(av, b1, c01);                      \
    }                                                                                              \
    if (r > 1) {                                                                                   \
      av = _mm256_broadcast_ss(a + (o)*CPU_SGEMM_MR + 1);                                          \
      if (set) {                                                                                   \
        c30 = _mm256_fmadd_ps(av, b0, c30), c31 = _mm256_fmadd_ps(av, b1, c31);                    \
      } else {                                                                                     \
        c10 = _mm256_fmadd_ps(av, b0, c10), c11 = _mm256_fmadd_ps(av, b1, c11);                    \
      }                                                                                            \
    }                                                                                              \
    if (r > 2) {                                                                                   \
      av = _mm256_broadcast_ss(a + (o)*CPU_SGEMM_MR + 2);                                          \
      c20 = _mm256_fmadd_ps(av, b0, c20), c21 = _mm256_fmadd_ps(av, b1, c21);                      \
    }                                                                                              \
    if (r > 3) {                                                                                   \
      av = _mm256_broadcast_ss(a + (o)*CPU_SGEMM_MR + 3);                                          \
      c30 = _mm256_fmadd_ps(av, b0, c30), c31 = _mm256_fmadd_ps(av, b1, c31);                      \
    }                                                                                              \
  } while (0)
  size_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    prefetch_step(a, b, kc, pf, true);
    SSTEP(0, 0);
    SSTEP(1, split);
    SSTEP(2, 0);
    SSTEP(3, split);
    a += 4 * CPU_SGEMM_MR;
    b += 4 * CPU_SGEMM_NR;
  }
  for (; p < kc; p++) {
    SSTEP(0, 0);
    a += CPU_SGEMM_MR;
    b += CPU_SGEMM_NR;
  }
#undef SSTEP
  if (split) {
    c00 = _mm256_add_ps(c00, c20), c01 = _mm256_add_ps(c01, c21);
    c10 = _mm256_add_ps(c10, c30), c11 = _mm256_add_ps(c11, c31);
  }
  float flo, fhi;
  if (clamp_epilogue(alpha, beta, ep, &flo, &fhi)) {
    static const int32_t lanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)(lanes + 8 - (nr < 8 ? nr : 8)));
    const __m256i m1 = _mm256_loadu_si256((const __m256i *)(lanes + 8 - (nr > 8 ? nr - 8 : 0)));
    const float *rb = ep ? ep->row_bias : NULL, *ad = ep ? ep->addend : NULL;
    const float *cb = ep ? ep->col_bias : NULL;
    size_t lda = ep ? ep->ld_addend : 0;
    const bool full = nr == CPU_SGEMM_NR;
#define SROW(row, lo, hi)                                                                          \
  if ((row) < r)                                                                                   \
    EP_CLAMP_ROW(row, lo, hi, full);
    SROW(0, c00, c01)
    SROW(1, c10, c11)
    SROW(2, c20, c21)
    SROW(3, c30, c31)
#undef SROW
    return;
  }
  /* Any other epilogue (or alpha * AB + beta * C alone, as an epilogue of nothing): spilled,
   * through store_tile as the 6x16 kernel's. */
  static const cpu_sgemm_tile_ep plain = {.act = {CPU_ACT_NONE, 0.0f, 0.0f}};
  _Alignas(32) float t[CPU_SGEMM_MR][CPU_SGEMM_NR];
  _mm256_store_ps(t[0], c00), _mm256_store_ps(t[0] + 8, c01);
  _mm256_store_ps(t[1], c10), _mm256_store_ps(t[1] + 8, c11);
  _mm256_store_ps(t[2], c20), _mm256_store_ps(t[2] + 8, c21);
  _mm256_store_ps(t[3], c30), _mm256_store_ps(t[3] + 8, c31);
  store_tile((const float(*)[CPU_SGEMM_NR])t, c, ldc, (size_t)r, nr, alpha, beta, ep ? ep : &plain);
}

/* The entry points, one per prefetch choice (cpu_sgemm_ukernel_avx2 picks). */
#define UKERNEL_ENTRY(name, pf)                                                                    \
  AVX2 static void name(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,         \
                        size_t mr, size_t nr, float alpha, float beta,                             \
                        const cpu_sgemm_tile_ep *ep) {                                             \
    ukernel_body(kc, ap, bp, NULL, c, ldc, mr, nr, alpha, beta, ep, pf);                           \
  }
#define UKERNEL_OFFS_ENTRY(name, pf)                                                               \
  AVX2 static void name(size_t kc, const float *ap, const float *b, const ptrdiff_t *offs,         \
                        float *c, size_t ldc, size_t mr, size_t nr, float alpha, float beta,       \
                        const cpu_sgemm_tile_ep *ep) {                                             \
    ukernel_body(kc, ap, b, offs, c, ldc, mr, nr, alpha, beta, ep, pf);                            \
  }
#define UKERNEL_SHORT_ENTRY(name, pf)                                                              \
  AVX2 static void name(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,         \
                        size_t mr, size_t nr, float alpha, float beta,                             \
                        const cpu_sgemm_tile_ep *ep) {                                             \
    switch (mr) {                                                                                  \
    case 1: short_body(kc, ap, bp, c, ldc, nr, alpha, beta, ep, 1, pf); break;                     \
    case 2: short_body(kc, ap, bp, c, ldc, nr, alpha, beta, ep, 2, pf); break;                     \
    case 3: short_body(kc, ap, bp, c, ldc, nr, alpha, beta, ep, 3, pf); break;                     \
    default: short_body(kc, ap, bp, c, ldc, nr, alpha, beta, ep, 4, pf); break;                    \
    }                                                                                              \
  }
UKERNEL_SHORT_ENTRY(ukernel_short_pf0, 0)
UKERNEL_SHORT_ENTRY(ukernel_short_pfa, PF_A)
UKERNEL_SHORT_ENTRY(ukernel_short_pfb, PF_B)
UKERNEL_SHORT_ENTRY(ukernel_short_pfab, PF_A | PF_B)
#undef UKERNEL_SHORT_ENTRY
UKERNEL_ENTRY(ukernel_pf0, 0)
UKERNEL_ENTRY(ukernel_pfa, PF_A)
UKERNEL_ENTRY(ukernel_pfb, PF_B)
UKERNEL_ENTRY(ukernel_pfab, PF_A | PF_B)
UKERNEL_OFFS_ENTRY(ukernel_offs_pf0, 0)
UKERNEL_OFFS_ENTRY(ukernel_offs_pfa, PF_A)
#undef UKERNEL_ENTRY
#undef UKERNEL_OFFS_ENTRY

cpu_sgemm_ukernel_fn cpu_sgemm_ukernel_avx2(bool a_ahead, bool b_ahead) {
  static const cpu_sgemm_ukernel_fn fns[4] = {ukernel_pf0, ukernel_pfa, ukernel_pfb, ukernel_pfab};
  return fns[(a_ahead ? 1 : 0) | (b_ahead ? 2 : 0)];
}

cpu_sgemm_ukernel_fn cpu_sgemm_ukernel_short_avx2(bool a_ahead, bool b_ahead) {
  static const cpu_sgemm_ukernel_fn fns[4] = {ukernel_short_pf0, ukernel_short_pfa,
                                              ukernel_short_pfb, ukernel_short_pfab};
  return fns[(a_ahead ? 1 : 0) | (b_ahead ? 2 : 0)];
}

cpu_sgemm_ukernel_offs_fn cpu_sgemm_ukernel_offs_avx2(bool a_ahead) {
  return a_ahead ? ukernel_offs_pfa : ukernel_offs_pf0;
}

/* Eight depths of the panel at a time: the six rows' eight floats are transposed in registers
 * into the six-float groups of the packed layout, as 64-bit pairs of rows (0-1, 2-3, 4-5) that
 * three shuffles per output vector put in place. A float at a time (a strided store each) it
 * took 14.7 us for 128 x 256, 10% of the product 128 x 256 x 256 that followed it. */
_Static_assert(CPU_SGEMM_MR == 6, "cpu_sgemm_pack_a6_avx2 packs panels of six rows");
AVX2 void cpu_sgemm_pack_a6_avx2(const float *a, size_t lda, size_t kc, float *dst) {
  const float *r0 = a, *r1 = a + lda, *r2 = a + 2 * lda, *r3 = a + 3 * lda, *r4 = a + 4 * lda,
              *r5 = a + 5 * lda;
  size_t p = 0;
  for (; p + 8 <= kc; p += 8, dst += 48) {
    __m256 x0 = _mm256_loadu_ps(r0 + p), x1 = _mm256_loadu_ps(r1 + p);
    __m256 x2 = _mm256_loadu_ps(r2 + p), x3 = _mm256_loadu_ps(r3 + p);
    __m256 x4 = _mm256_loadu_ps(r4 + p), x5 = _mm256_loadu_ps(r5 + p);
    /* Pairs of rows as doubles: a01 holds rows 0-1 at depths 0 1 | 4 5, b01 at 2 3 | 6 7. */
    __m256d a01 = _mm256_castps_pd(_mm256_unpacklo_ps(x0, x1));
    __m256d b01 = _mm256_castps_pd(_mm256_unpackhi_ps(x0, x1));
    __m256d a23 = _mm256_castps_pd(_mm256_unpacklo_ps(x2, x3));
    __m256d b23 = _mm256_castps_pd(_mm256_unpackhi_ps(x2, x3));
    __m256d a45 = _mm256_castps_pd(_mm256_unpacklo_ps(x4, x5));
    __m256d b45 = _mm256_castps_pd(_mm256_unpackhi_ps(x4, x5));
    /* Depth d's group is (01, 23, 45) at d; the 24 pairs of the eight depths in order. */
    __m256d u = _mm256_unpacklo_pd(a01, a23);     /* 01@0 23@0 | 01@4 23@4 */
    __m256d v = _mm256_shuffle_pd(a45, a01, 0xA); /* 45@0 01@1 | 45@4 01@5 */
    __m256d w = _mm256_unpackhi_pd(a23, a45);     /* 23@1 45@1 | 23@5 45@5 */
    __m256d x = _mm256_unpacklo_pd(b01, b23);     /* 01@2 23@2 | 01@6 23@6 */
    __m256d y = _mm256_shuffle_pd(b45, b01, 0xA); /* 45@2 01@3 | 45@6 01@7 */
    __m256d z = _mm256_unpackhi_pd(b23, b45);     /* 23@3 45@3 | 23@7 45@7 */
    _mm256_storeu_pd((double *)dst, _mm256_permute2f128_pd(u, v, 0x20));
    _mm256_storeu_pd((double *)(dst + 8), _mm256_permute2f128_pd(w, x, 0x20));
    _mm256_storeu_pd((double *)(dst + 16), _mm256_permute2f128_pd(y, z, 0x20));
    _mm256_storeu_pd((double *)(dst + 24), _mm256_permute2f128_pd(u, v, 0x31));
    _mm256_storeu_pd((double *)(dst + 32), _mm256_permute2f128_pd(w, x, 0x31));
    _mm256_storeu_pd((double *)(dst + 40), _mm256_permute2f128_pd(y, z, 0x31));
  }
  for (; p < kc; p++, dst += 6) {
    dst[0] = r0[p], dst[1] = r1[p], dst[2] = r2[p];
    dst[3] = r3[p], dst[4] = r4[p], dst[5] = r5[p];
  }
}

AVX2 void cpu_saxpy_avx2(size_t n, float a, const float *x, float *y) {
  const __m256 va = _mm256_set1_ps(a);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 y0 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
    __m256 y1 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8));
    __m256 y2 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16));
    __m256 y3 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24));
    _mm256_storeu_ps(y + i, y0);
    _mm256_storeu_ps(y + i + 8, y1);
    _mm256_storeu_ps(y + i + 16, y2);
    _mm256_storeu_ps(y + i + 24, y3);
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++)
    y[i] += a * x[i];
}

AVX2 float cpu_sdot_avx2(size_t n, const float *x, const float *y) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
  float r = cpu_hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; i++)
    r += x[i] * y[i];
  return r;
}

#else
/* ISO C forbids an empty translation unit. */
typedef int cpu_gemm_avx2_unused;
#endif
