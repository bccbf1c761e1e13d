/* The channel-blocked layout NCHW8c and the kernels that read and write it.
 *
 * A float32 tensor of shape [N, C, H, W] with C a multiple of eight may lie, inside a CPU
 * partition, as [N, C/8, H, W, 8]: element (n, c, h, w) at
 *   (((n * (C / 8) + c / 8) * H + h) * W + w) * 8 + c % 8.
 * It takes the same bytes as NCHW, so the host's memory plan holds either way. Eight channels
 * of one pixel are one AVX2 vector: a depthwise layer needs no transposes, and a pointwise one
 * reads its input in place as the GEMM's A (pixels are rows, channels the depth), with no
 * packing. plugin.c (assign_layouts) decides which values of a partition lie so; only values
 * that the partition alone produces and reads, never its outputs. A [N, C, 1, 1] tensor lies
 * the same either way.
 *
 * The kernels here run on AVX2 + FMA only (CPU_NCHWC_HAVE_AVX2); the generic ISA keeps NCHW. */
#ifndef TSR_CPU_NCHWC_H
#define TSR_CPU_NCHWC_H

#include "devices/cpu/conv_util.h"

#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define CPU_NCHWC_HAVE_AVX2 1
#endif

enum { CPU_NCHWC = 8 };

#ifdef CPU_NCHWC_HAVE_AVX2
/* ---- Pointwise: 1x1, stride 1, no padding, one group (conv_nchwc_pw.c) ------------------ */

/* Floats of the packed weights of a 1x1 Conv with C input and M output channels (both
 * multiples of eight). */
size_t cpu_nchwc_pw_packed_floats(size_t C, size_t M);
/* Packs w (M x C row-major: the Conv's [M, C, 1, 1] weights) into dst, 64-byte aligned, of
 * cpu_nchwc_pw_packed_floats(C, M) floats. */
void cpu_nchwc_pw_pack(const float *w, size_t C, size_t M, float *dst);
/* y = act(sum over c of W[m][c] * scale[n][c] * x[n][c] + bias[m] + res) over N images of HW
 * pixels; x is blocked [N, C/8, HW, 8], y and res [N, M/8, HW, 8]. wp is what
 * cpu_nchwc_pw_pack made of W. bias (M floats), scale (N x C floats: a fused
 * squeeze-and-excitation scale of the input channels) and res may be NULL; res is either y
 * itself (accumulate onto it) or apart from y; x never overlaps y. Runs on ctx's threads.
 * Returns 0, or -1 after cpu_fail() when scratch memory ran out. */
int cpu_nchwc_pointwise(cpu_ctx *ctx, size_t N, size_t C, size_t M, size_t HW, const float *x,
                        const float *wp, const float *bias, const float *scale, const float *res,
                        const cpu_act *act, float *y);

/* ---- Depthwise (conv_dw.c, the interleaved path without its transposes) ---------------- */

/* Whether cpu_conv_depthwise_nchwc runs p: a 2-D depthwise Conv of multiplier 1, C % 8 == 0,
 * that the interleaved eight-channel path takes (windows of two or more taps a side). */
bool cpu_conv_dw_nchwc_applies(const conv_plan *p);
/* p over blocked x into blocked y, with the taps and bias that cpu_conv_dw_pack packed and p's
 * activation, on ctx's threads. */
void cpu_conv_depthwise_nchwc(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *packed,
                              float *y);

/* ---- Global average (pool.c) ------------------------------------------------------------ */

/* y[b * 8 + l] = the mean of lane l over the hw pixels of block b of x, for blocks blocks:
 * GlobalAveragePool, and ReduceMean over H and W, of a blocked tensor (their output lies the
 * same either way). Sums in double, as the NCHW kernel does. */
void cpu_nchwc_global_mean(cpu_ctx *ctx, const float *x, size_t blocks, size_t hw, float *y);

/* ---- Stem: from an NCHW input to a blocked output (conv_nchwc_stem.c) ------------------- */

/* Whether cpu_nchwc_stem runs p: a 2-D Conv (p->w.nsp == 2), one group, M % 8 == 0, dilation
 * 1, any kernel size, stride and padding, over an NCHW input with few channels (an image). */
bool cpu_nchwc_stem_applies(const conv_plan *p);
size_t cpu_nchwc_stem_packed_floats(const conv_plan *p);
/* Packs w ([M, C, kh, kw]) for the stem kernel into dst, 64-byte aligned. */
void cpu_nchwc_stem_pack(const conv_plan *p, const float *w, float *dst);
/* y (blocked [N, M/8, OH, OW, 8]) = act(conv(x) + bias) with x NCHW [N, C, IH, IW]; bias may
 * be NULL; the activation is p->act. Runs on ctx's threads. Returns 0, or -1 after cpu_fail(). */
int cpu_nchwc_stem(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wp,
                   const float *bias, float *y);
#endif

#endif
