/* Internals of the packed single-precision GEMM shared by gemm.c (driver, packing, generic
 * micro-kernel) and gemm_avx2.c (the AVX2/FMA variants). Nothing outside those files and the
 * other neural-network kernels (conv.c) should need this header. */
#ifndef TSR_CPU_GEMM_UTIL_H
#define TSR_CPU_GEMM_UTIL_H

#include <stddef.h>

#include "devices/cpu/cpu.h"

/* Register tile of the micro-kernels: MR rows of A by NR columns of B. Packed A stores each
 * MR-row micro-panel as kc columns of MR floats; packed B stores each NR-column micro-panel as
 * kc rows of NR floats, zero-padded at the edges. Both variants use the same layout so that the
 * packing code is shared. */
enum { CPU_SGEMM_MR = 6, CPU_SGEMM_NR = 16 };

/* One register tile: C[mr x nr] = alpha * (Ap * Bp) + beta * C, where Ap/Bp are packed
 * micro-panels of depth kc (64-byte aligned) and mr <= MR, nr <= NR. beta == 0 never reads C. */
typedef void (*cpu_sgemm_ukernel_fn)(size_t kc, const float *ap, const float *bp, float *c,
                                     size_t ldc, size_t mr, size_t nr, float alpha, float beta);

#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
#define CPU_GEMM_HAVE_AVX2 1
/* The AVX2/FMA versions; call them only when ctx->isa == CPU_ISA_AVX2_FMA. */
void cpu_sgemm_ukernel_avx2(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,
                            size_t mr, size_t nr, float alpha, float beta);
/* y[i] += a * x[i] for i < n. */
void cpu_saxpy_avx2(size_t n, float a, const float *x, float *y);
/* Returns sum x[i] * y[i] for i < n. */
float cpu_sdot_avx2(size_t n, const float *x, const float *y);
#endif

/* y[i] += a * x[i], dispatched on ctx->isa; used by the gemv paths and depthwise convolution. */
static inline void cpu_saxpy(const cpu_ctx *ctx, size_t n, float a, const float *x, float *y) {
#ifdef CPU_GEMM_HAVE_AVX2
  if (ctx && ctx->isa == CPU_ISA_AVX2_FMA) {
    cpu_saxpy_avx2(n, a, x, y);
    return;
  }
#else
  (void)ctx;
#endif
  for (size_t i = 0; i < n; i++)
    y[i] += a * x[i];
}

/* Dot product, dispatched on ctx->isa. Four partial sums keep the generic loop pipelined. */
static inline float cpu_sdot(const cpu_ctx *ctx, size_t n, const float *x, const float *y) {
#ifdef CPU_GEMM_HAVE_AVX2
  if (ctx && ctx->isa == CPU_ISA_AVX2_FMA)
    return cpu_sdot_avx2(n, x, y);
#else
  (void)ctx;
#endif
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i] * y[i];
    s1 += x[i + 1] * y[i + 1];
    s2 += x[i + 2] * y[i + 2];
    s3 += x[i + 3] * y[i + 3];
  }
  for (; i < n; i++)
    s0 += x[i] * y[i];
  return (s0 + s1) + (s2 + s3);
}

#endif
