/* Helpers shared by the element-wise and reduction kernels (elementwise.c, reduce.c): dtype
 * conversion of whole runs, axis normalisation, and float32 approximations of exp, tanh, erf,
 * sigmoid and GELU that the compiler can vectorise (libm's expf, tanhf and erff are calls, which
 * stop vectorisation). gemm_util.h also uses the approximations for the activations it fuses
 * into Conv and Gemm (devices/cpu/vmath_avx2.h has their AVX2 twins), so that a fused and an
 * unfused graph compute the same function.
 *
 * Nothing here is part of cpu.h: it is private to the CPU plugin's kernels. */
#ifndef TSR_CPU_ELEMENTWISE_UTIL_H
#define TSR_CPU_ELEMENTWISE_UTIL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "devices/cpu/cpu.h"

/* Converts n elements of dtype `from` at src into dtype `to` at dst (the buffers must not
 * overlap unless from == to). Any numeric dtype (bool included) converts to any other: integers
 * keep their exact value through int64/uint64 and wrap when narrowed; floats convert to integers
 * by truncation toward zero, saturating at the target's range, with NaN giving 0. Defined in
 * elementwise.c. */
void cpu_ew_convert(uint32_t from, const void *src, uint32_t to, void *dst, size_t n);

/* True for float16, float32, float64 (the float types these kernels compute). */
static inline bool cpu_ew_is_float(uint32_t dt) {
  return dt == TSR_DTYPE_FLOAT32 || dt == TSR_DTYPE_FLOAT64 || dt == TSR_DTYPE_FLOAT16;
}

static inline bool cpu_ew_is_signed_int(uint32_t dt) {
  return dt == TSR_DTYPE_INT8 || dt == TSR_DTYPE_INT16 || dt == TSR_DTYPE_INT32 ||
         dt == TSR_DTYPE_INT64;
}

static inline bool cpu_ew_is_unsigned_int(uint32_t dt) {
  return dt == TSR_DTYPE_UINT8 || dt == TSR_DTYPE_UINT16 || dt == TSR_DTYPE_UINT32 ||
         dt == TSR_DTYPE_UINT64;
}

/* Numeric in the ONNX sense: floats and integers, not bool. */
static inline bool cpu_ew_is_numeric(uint32_t dt) {
  return cpu_ew_is_float(dt) || cpu_ew_is_signed_int(dt) || cpu_ew_is_unsigned_int(dt);
}

/* Normalises an ONNX axis in [-rank, rank) to [0, rank); returns false when out of range. */
static inline bool cpu_ew_axis(int64_t axis, uint32_t rank, uint32_t *out) {
  if (axis < 0)
    axis += (int64_t)rank;
  if (axis < 0 || axis >= (int64_t)rank)
    return false;
  *out = (uint32_t)axis;
  return true;
}

static inline bool cpu_ew_same_shape(uint32_t rank_a, const int64_t *a, uint32_t rank_b,
                                     const int64_t *b) {
  if (rank_a != rank_b)
    return false;
  for (uint32_t i = 0; i < rank_a; i++)
    if (a[i] != b[i])
      return false;
  return true;
}

static inline float cpu_ew_bits_to_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* exp(x) for float32 within 2 ulp over the normal range (Cephes' polynomial), written without
 * calls or branches so loops over it vectorise. Below x = -87.33 (results under about
 * 1.2e-38) it gives 0, as cpu_exp8 does: there the scaled polynomial would be subnormal (see
 * cpu_exp8); NaN stays NaN; large x gives +inf. */
static inline float cpu_ew_expf(float x) {
  const float hi = 88.7228394f, lo = -87.33f;
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  xc = x != x ? 0.0f : xc; /* NaN would make the int conversion below undefined */
  /* n = round(x / ln2) by the 1.5 * 2^23 trick: exact for |x / ln2| < 2^22. */
  const float shifter = 12582912.0f;
  float t = xc * 1.44269504088896341f + shifter;
  float n = t - shifter;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  /* Scale by 2^n in two halves so that n = 128 (x near hi) does not overflow the exponent. */
  int32_t ni = (int32_t)n;
  int32_t n1 = ni >> 1, n2 = ni - n1;
  float s1 = cpu_ew_bits_to_float((uint32_t)(n1 + 127) << 23);
  float s2 = cpu_ew_bits_to_float((uint32_t)(n2 + 127) << 23);
  float y = p * s1 * s2;
  y = x > hi ? INFINITY : y;
  y = x < lo ? 0.0f : y;
  return x != x ? x : y;
}

/* tanh(x) for float32 within a few ulp: Eigen's rational approximation on [-7.9, 7.9] (where
 * tanh rounds to +-1 in float outside), exact for tiny x and +-1 outside. Branch-free as
 * cpu_ew_expf. */
static inline float cpu_ew_tanhf(float x) {
  const float clampv = 7.90531110763549805f;
  float xc = x > clampv ? clampv : x;
  xc = xc < -clampv ? -clampv : xc;
  float x2 = xc * xc;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * xc;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  float y = p / q;
  /* Exactly +-1 beyond the clamp (the quotient can be an ulp short), as libm's tanhf. */
  y = x >= clampv ? 1.0f : y;
  y = x <= -clampv ? -1.0f : y;
  float ax = x < 0 ? -x : x;
  return ax < 0.0004f ? x : y;
}

/* erf(x) for float32 within 5e-7 absolute (a few ulp): Eigen's rational approximation on
 * [-4, 4], outside which erf rounds to +-1 in float. Odd, branch-free; NaN stays NaN. */
static inline float cpu_ew_erff(float x) {
  float xc = x > 4.0f ? 4.0f : x;
  xc = xc < -4.0f ? -4.0f : xc;
  float x2 = xc * xc;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  p = p * xc;
  float q = -1.45660718464996e-05f;
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return p / q;
}

/* 1 / (1 + exp(-x)): 0 for x below about -88, 1 above about 17, NaN for NaN. */
static inline float cpu_ew_sigmoidf(float x) { return 1.0f / (1.0f + cpu_ew_expf(-x)); }

/* GELU, exact form: x / 2 * (1 + erf(x / sqrt 2)), as torch exports it (Div by 1.4142135,
 * Erf, Add 1, Mul by x, Mul by 0.5). */
static inline float cpu_ew_geluf(float x) {
  return 0.5f * x * (1.0f + cpu_ew_erff(x * 0.707106781186547524f));
}

/* GELU, tanh approximation: x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))). */
static inline float cpu_ew_gelu_tanhf(float x) {
  float u = 0.797884560802865355f * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.0f + cpu_ew_tanhf(u));
}

#endif
