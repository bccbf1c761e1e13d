/* What the kernel suites of the blocked layout share: a xorshift generator for random shapes and
 * data, and the float64 references of the activations a kernel applies (cpu_act). Test-only. */
#ifndef TSR_TESTS_KERNEL_REF_H
#define TSR_TESTS_KERNEL_REF_H

#include <math.h>
#include <stdint.h>

#include "devices/cpu/gemm_util.h"

typedef struct rng {
  uint64_t s;
} rng;

static inline uint64_t rnext(rng *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return r->s;
}

/* Uniform in [lo, hi]. */
static inline int64_t rint_in(rng *r, int64_t lo, int64_t hi) {
  return lo + (int64_t)(rnext(r) % (uint64_t)(hi - lo + 1));
}

/* Uniform in [-1, 1), representable as float. */
static inline float runi(rng *r) {
  return (float)((double)(rnext(r) >> 11) / 4503599627370496.0 - 1.0);
}

static inline double ref_clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* cpu_act_apply in float64, the smooth ones exact. */
static inline double ref_act(const cpu_act *a, double x) {
  switch (a->kind) {
  case CPU_ACT_RELU: return x < 0 ? 0 : x;
  case CPU_ACT_CLIP: return x < a->p0 ? a->p0 : (x > a->p1 ? a->p1 : x);
  case CPU_ACT_LEAKYRELU: return x < 0 ? a->p0 * x : x;
  case CPU_ACT_HARDSIGMOID: return ref_clamp01(a->p0 * x + a->p1);
  case CPU_ACT_HARDSWISH: return x * ref_clamp01(x / 6 + 0.5);
  case CPU_ACT_SIGMOID: return 1 / (1 + exp(-x));
  case CPU_ACT_SILU: return x / (1 + exp(-x));
  case CPU_ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  case CPU_ACT_GELU_TANH:
    return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  default: return x;
  }
}

static inline const char *ref_act_name(cpu_act_kind k) {
  static const char *names[] = {"none",      "relu",    "clip", "leakyrelu", "hardsigmoid",
                                "hardswish", "sigmoid", "silu", "gelu",      "gelu_tanh"};
  return (size_t)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

#endif
