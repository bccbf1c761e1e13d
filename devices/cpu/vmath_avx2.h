/* Eight-lane AVX2/FMA versions of the float32 approximations in elementwise_util.h (exp, erf,
 * tanh, sigmoid, GELU), for kernels that hold their results in registers: the epilogues of the
 * GEMM micro-kernel (gemm_avx2.c) and of depthwise convolution (conv.c) apply the smooth fused
 * activations (sigmoid, silu, gelu, gelu_tanh) through cpu_act8_smooth(); cpu_act_apply_row()
 * applies any fused activation to a finished row, vectorised where the ISA allows; the AVX2
 * kernels of Exp, Sigmoid, Tanh, Erf and Gelu (elementwise.c) are loops over these.
 *
 * Each follows its scalar twin step for step (same polynomial, same clamps, same NaN handling);
 * with FMA contraction the results may differ from the scalar ones in the last bit or two.
 * Call only when ctx->isa == CPU_ISA_AVX2_FMA. */
#ifndef TSR_CPU_VMATH_AVX2_H
#define TSR_CPU_VMATH_AVX2_H

#include "devices/cpu/gemm_util.h"

#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define CPU_VMATH_HAVE_AVX2 1

#include <immintrin.h>

#define CPU_VMATH_AVX2 __attribute__((target("avx2,fma")))

/* The eight lanes of v summed (halves, then pairs, then the last two), and their maximum. */
CPU_VMATH_AVX2 static inline float cpu_hsum8(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* The eight lanes of v summed in double (a sum of float vectors added into a double total). */
CPU_VMATH_AVX2 static inline double cpu_hsum8_f64(__m256 v) {
  __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                            _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

CPU_VMATH_AVX2 static inline float cpu_hmax8(__m256 v) {
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

/* cpu_ew_expf on eight lanes; 0 below lo. lo sits a little above -126 ln 2, where the
 * reduced argument of the lowest scale, 2^-126, is still positive: at -126 ln 2 itself (the
 * clamp of every lane below it) the polynomial came out just under 1 and the product a
 * subnormal, which costs this CPU a microcode assist on every such lane (Softmax over widely
 * spread scores 2.3x slower). Results between the two, about 1.2e-38, become 0. */
CPU_VMATH_AVX2 static inline __m256 cpu_exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.7228394f), lo = _mm256_set1_ps(-87.33f);
  /* max_ps(a, b) is a > b ? a : b: a NaN x becomes lo here and is put back at the end. */
  __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 r2 = _mm256_mul_ps(r, r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
  /* 2^n in two halves, so that n = 128 does not overflow the exponent. */
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* cpu_ew_erff on eight lanes. */
CPU_VMATH_AVX2 static inline __m256 cpu_erf8(__m256 x) {
  /* x second: a NaN x passes through both clamps. */
  __m256 xc = _mm256_min_ps(_mm256_set1_ps(4.0f), _mm256_max_ps(_mm256_set1_ps(-4.0f), x));
  __m256 x2 = _mm256_mul_ps(xc, xc);
  __m256 p = _mm256_set1_ps(-2.72614225801306e-10f);
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.77068142495902e-08f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.10102402082508e-06f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-5.69250639462346e-05f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-7.34990630326855e-04f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.95459980854025e-03f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.60960333262415e-02f));
  p = _mm256_mul_ps(p, xc);
  __m256 q = _mm256_set1_ps(-1.45660718464996e-05f);
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-2.13374055278905e-04f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.68282697438203e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-7.37332916720468e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.42647390514189e-02f));
  return _mm256_div_ps(p, q);
}

/* cpu_ew_tanhf on eight lanes. */
CPU_VMATH_AVX2 static inline __m256 cpu_tanh8(__m256 x) {
  const __m256 c = _mm256_set1_ps(7.90531110763549805f);
  __m256 xc = _mm256_min_ps(c, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), c), x));
  __m256 x2 = _mm256_mul_ps(xc, xc);
  __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.00018790482477e-13f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-8.60467152213735e-11f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(5.12229709037114e-08f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.48572235717979e-05f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(6.37261928875436e-04f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(4.89352455891786e-03f));
  p = _mm256_mul_ps(p, xc);
  __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.18534705686654e-04f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(2.26843463243900e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(4.89352518554385e-03f));
  __m256 y = _mm256_div_ps(p, q);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(1.0f), _mm256_cmp_ps(x, c, _CMP_GE_OQ));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(-1.0f),
                       _mm256_cmp_ps(x, _mm256_sub_ps(_mm256_setzero_ps(), c), _CMP_LE_OQ));
  __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(ax, _mm256_set1_ps(0.0004f), _CMP_LT_OQ));
}

/* cpu_ew_sigmoidf on eight lanes. */
CPU_VMATH_AVX2 static inline __m256 cpu_sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, cpu_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* exp(-x) in few and shallow operations, for the fused logistic activations of Conv and Gemm
 * below as 1 + exp(-x) (the Sigmoid operator keeps cpu_sigmoid8), since applied to every
 * output of a layer they bound its epilogue, and for Softmax's exponentials (reduce.c). x is
 * clamped to [-87, 87] so that 2^n stays a normal scale (no split, no blends; min/max are ordered
 * so that a NaN passes through); n = round(-x / ln 2) by the 1.5 * 2^23 trick, whose low bits,
 * shifted into the exponent field, scale the polynomial by an integer add; one step of the
 * reduction by ln 2 (its rounding adds n * 1.9e-9 to r: exp(-x) over [0, 87] is within 4.0e-7
 * relative, rounding included, the most near the clamp, where a logistic is 0 or 1 to within it
 * anyway). exp(r) on |r| <= ln(2) / 2 is 1 + r + r^2 (a0 + a1 r + a2 r^2 + a3 r^3) with
 * coefficients fitted for the least maximum relative error (1.1e-7 against float64, not counting
 * float32 rounding), evaluated from r' = -r. The degree is two below cpu_exp8's Taylor-like
 * polynomial: the multiply-adds, not the division, bound these activations on two FMA pipes. On one
 * Zen 4 core, against the degree-7 polynomial and x * (1 / d): SiLU 0.41 -> 0.32 ns an element in
 * L1 (3.4e-7 and 3.9e-7 relative error at most over [-100, 100]); a 16 -> 96 pointwise Conv with
 * SiLU over 112x112 0.89 -> 0.74 ms; EfficientNet-B0's summed per-node minima 12.2 -> 11.3 ms. */
CPU_VMATH_AVX2 static inline __m256 cpu_exp_neg8_fitted(__m256 x) {
  const __m256 magic = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23 */
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 xc = _mm256_min_ps(_mm256_set1_ps(87.0f), _mm256_max_ps(_mm256_set1_ps(-87.0f), x));
  __m256 t = _mm256_fnmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), magic);
  __m256 n = _mm256_sub_ps(t, magic);
  __m256 rn = _mm256_fmadd_ps(n, _mm256_set1_ps(0.693147180559945f), xc); /* -r */
  __m256 r2 = _mm256_mul_ps(rn, rn);
  __m256 q1 =
      _mm256_fnmadd_ps(_mm256_set1_ps(8.3125252277e-3f), rn, _mm256_set1_ps(4.1890114546e-2f));
  __m256 q0 =
      _mm256_fnmadd_ps(_mm256_set1_ps(1.6667114198e-1f), rn, _mm256_set1_ps(4.9999231100e-1f));
  __m256 e = _mm256_add_ps(_mm256_fmsub_ps(_mm256_fmadd_ps(q1, r2, q0), r2, rn), one);
  /* t's bits are those of 1.5 * 2^23 plus n: shifted by 23, n lands in the exponent field. */
  return _mm256_castsi256_ps(
      _mm256_add_epi32(_mm256_castps_si256(e), _mm256_slli_epi32(_mm256_castps_si256(t), 23)));
}

CPU_VMATH_AVX2 static inline __m256 cpu_one_plus_exp_neg8(__m256 x) {
  return _mm256_add_ps(_mm256_set1_ps(1.0f), cpu_exp_neg8_fitted(x));
}

/* The fused sigmoid, within a few ulp of cpu_sigmoid8; 0 below the clamp, as cpu_ew_sigmoidf
 * gives there. */
CPU_VMATH_AVX2 static inline __m256 cpu_sigmoid8_fused(__m256 x) {
  __m256 y = _mm256_div_ps(_mm256_set1_ps(1.0f), cpu_one_plus_exp_neg8(x));
  return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ), y);
}

/* The fused SiLU, x / (1 + exp(-x)) with one division and no multiply. Below the clamp the
 * denominator is made infinite, so that the result is x * 0 there as x * sigmoid(x) makes it
 * (-0, and NaN for -inf). */
CPU_VMATH_AVX2 static inline __m256 cpu_silu8_fused(__m256 x) {
  __m256 below = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
  __m256 d = cpu_one_plus_exp_neg8(x);
  d = _mm256_max_ps(d, _mm256_and_ps(below, _mm256_set1_ps(__builtin_inff())));
  return _mm256_div_ps(x, d);
}

/* cpu_ew_geluf on eight lanes. */
CPU_VMATH_AVX2 static inline __m256 cpu_gelu8(__m256 x) {
  __m256 e = cpu_erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.707106781186547524f)));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
                       _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* cpu_ew_gelu_tanhf on eight lanes. */
CPU_VMATH_AVX2 static inline __m256 cpu_gelu_tanh8(__m256 x) {
  __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.797884560802865355f),
                           _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
                       _mm256_add_ps(_mm256_set1_ps(1.0f), cpu_tanh8(u)));
}

/* The smooth activations (any other kind: x) on one vector, by kind. */
CPU_VMATH_AVX2 static inline __m256 cpu_act8_smooth_kind(cpu_act_kind k, __m256 v) {
  switch (k) {
  case CPU_ACT_SIGMOID: return cpu_sigmoid8_fused(v);
  case CPU_ACT_SILU: return cpu_silu8_fused(v);
  case CPU_ACT_GELU: return cpu_gelu8(v);
  case CPU_ACT_GELU_TANH: return cpu_gelu_tanh8(v);
  default: return v;
  }
}

/* The smooth activations of cpu_act_apply (sigmoid, silu, gelu, gelu_tanh) on eight lanes;
 * any other kind returns x unchanged (the callers handle the piecewise-linear ones inline). */
CPU_VMATH_AVX2 static inline __m256 cpu_act8_smooth(const cpu_act *a, __m256 x) {
  return cpu_act8_smooth_kind(a->kind, x);
}

/* cpu_act_apply on eight lanes, kind k with cpu_act's parameters p0 and p1: the piecewise-linear
 * kinds with the same comparisons, so that NaN and -0 come out as cpu_act_apply makes them
 * (max_ps(a, b) is a > b ? a : b, min_ps(a, b) a < b ? a : b), the smooth ones as
 * cpu_act8_smooth_kind. Every kernel that activates vectors goes through this: given a
 * constant k (a loop specialised by kind) the switch folds away. */
CPU_VMATH_AVX2 static inline __attribute__((always_inline)) __m256
cpu_act8_kind(cpu_act_kind k, float p0, float p1, __m256 x) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  switch (k) {
  case CPU_ACT_RELU: return _mm256_max_ps(zero, x); /* x < 0 ? 0 : x */
  case CPU_ACT_CLIP: return _mm256_min_ps(_mm256_set1_ps(p1), _mm256_max_ps(_mm256_set1_ps(p0), x));
  case CPU_ACT_LEAKYRELU:
    return _mm256_blendv_ps(x, _mm256_mul_ps(_mm256_set1_ps(p0), x),
                            _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
  case CPU_ACT_HARDSIGMOID: {
    __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(p0), x), _mm256_set1_ps(p1));
    return _mm256_min_ps(one, _mm256_max_ps(zero, v));
  }
  case CPU_ACT_HARDSWISH: {
    __m256 v =
        _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps((float)(1.0 / 6.0))), _mm256_set1_ps(0.5f));
    return _mm256_mul_ps(x, _mm256_min_ps(one, _mm256_max_ps(zero, v)));
  }
  default: return cpu_act8_smooth_kind(k, x);
  }
}

/* cpu_act8_kind with a's kind and parameters. */
CPU_VMATH_AVX2 static inline __attribute__((always_inline)) __m256 cpu_act8(const cpu_act *a,
                                                                            __m256 x) {
  return cpu_act8_kind(a->kind, a->p0, a->p1, x);
}

/* cpu_act_apply_row for AVX2. The switch is outside the loops, so each loop is a run of
 * independent vectors that the core overlaps: one smooth activation alone is a chain of some
 * twenty dependent operations. The last n % 8 floats go through one vector in a small buffer
 * too (a scalar smooth one costs a call to expf or erff each; the piecewise-linear ones come
 * out the same either way). */
CPU_VMATH_AVX2 static inline void cpu_act_apply_row_avx2(const cpu_act *a, float *y, size_t n) {
  const float p0 = a->p0, p1 = a->p1;
  size_t i = 0;
  switch (a->kind) {
#define CPU_ACT_ROW(k)                                                                             \
  case k:                                                                                          \
    for (; i + 8 <= n; i += 8)                                                                     \
      _mm256_storeu_ps(y + i, cpu_act8_kind(k, p0, p1, _mm256_loadu_ps(y + i)));                   \
    break;
    CPU_ACT_ROW(CPU_ACT_RELU)
    CPU_ACT_ROW(CPU_ACT_CLIP)
    CPU_ACT_ROW(CPU_ACT_LEAKYRELU)
    CPU_ACT_ROW(CPU_ACT_HARDSIGMOID)
    CPU_ACT_ROW(CPU_ACT_HARDSWISH)
    CPU_ACT_ROW(CPU_ACT_SIGMOID)
    CPU_ACT_ROW(CPU_ACT_SILU)
    CPU_ACT_ROW(CPU_ACT_GELU)
    CPU_ACT_ROW(CPU_ACT_GELU_TANH)
#undef CPU_ACT_ROW
  default: return; /* none */
  }
  if (i < n) {
    float t[8] = {0};
    for (size_t j = 0; j < n - i; j++)
      t[j] = y[i + j];
    _mm256_storeu_ps(t, cpu_act8(a, _mm256_loadu_ps(t)));
    for (size_t j = 0; j < n - i; j++)
      y[i + j] = t[j];
  }
}

#endif

/* Applies activation a to n floats in place: eight lanes at a time when isa is AVX2+FMA, else
 * one at a time. For kernels that compute outputs point by point (the borders of depthwise
 * convolution) and can apply the activation to a finished row instead: the smooth activations
 * cost a polynomial per element, about eight times less per element in vectors. */
static inline void cpu_act_apply_row(cpu_isa isa, const cpu_act *a, float *y, size_t n) {
  if (a->kind == CPU_ACT_NONE)
    return;
#ifdef CPU_VMATH_HAVE_AVX2
  if (isa == CPU_ISA_AVX2_FMA) {
    cpu_act_apply_row_avx2(a, y, n);
    return;
  }
#else
  (void)isa;
#endif
  for (size_t i = 0; i < n; i++)
    y[i] = cpu_act_apply(a, y[i]);
}

#endif
