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
#include <immintrin.h>

/* Transposes the 8x8 matrix whose rows are r[0..7]: eight pixels of a blocked plane into eight
 * channel rows and back. */
__attribute__((target("avx2,fma"))) static inline __attribute__((always_inline)) void
cpu_tr8x8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

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

/* The product alone, on the calling thread: y[m / 8][p][m % 8] = sum over c of W[m][c] *
 * x[c / 8][p][c % 8] for the np pixels p, M outputs and C > 0 inputs, with x's blocks xs floats
 * apart and y's ys floats apart (a pixel is eight floats; both multiples of eight floats);
 * added onto y when accumulate. wp as cpu_nchwc_pw_pack made it; wp_next NULL, or the packed
 * weights of the product the caller runs next, which this one starts bringing into L2. For
 * kernels that hold blocked operands of their own. */
void cpu_nchwc_pw_product(const float *x, size_t xs, size_t C, size_t M, size_t np, const float *wp,
                          float *y, size_t ys, bool accumulate, const float *wp_next);

/* ---- Depthwise (conv_dw.c: read in place, or dilated through the interleaved path) ------ */

/* Whether cpu_conv_depthwise_nchwc runs p: a 2-D depthwise Conv of multiplier 1, C % 8 == 0,
 * that the interleaved eight-channel path also takes (windows of two or more taps a side). */
bool cpu_conv_dw_nchwc_applies(const conv_plan *p);
/* p over blocked x into blocked y, with the taps and bias that cpu_conv_dw_pack packed and p's
 * activation, on ctx's threads. Returns 0, or -1 with ctx's message when ctx's ISA is not AVX2
 * or the kernel does not apply to p (cpu_conv_dw_nchwc_applies). */
int cpu_conv_depthwise_nchwc(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *packed,
                             float *y);

/* ---- Conversion (conv_dw.c) ----------------------------------------------------------- */

/* y (NCHW) = x (blocked) for `blocks` blocks of eight channels (N * C / 8) of hw pixels each:
 * where a blocked chain ends in a Conv whose output a node that cannot read it takes. */
void cpu_nchwc_to_nchw(cpu_ctx *ctx, const float *x, size_t blocks, size_t hw, float *y);
/* y (blocked) = x (NCHW), the same blocks: where a Conv opens a chain from a plain input. */
void cpu_nchw_to_nchwc(cpu_ctx *ctx, const float *x, size_t blocks, size_t hw, float *y);

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

/* ---- Grouped, eight channels a group (conv_nchwc_group.c) ------------------------------ */

/* Whether cpu_nchwc_group runs p: a 2-D Conv with eight input and eight output channels a
 * group (so that group g is block g), two groups or more, dilation 1, any kernel size, stride
 * and padding. */
bool cpu_nchwc_group_applies(const conv_plan *p);
size_t cpu_nchwc_group_packed_floats(const conv_plan *p);
/* Packs w ([M, 8, kh, kw]) for cpu_nchwc_group into dst, 32-byte aligned. */
void cpu_nchwc_group_pack(const conv_plan *p, const float *w, float *dst);
/* y (blocked [N, M/8, OH, OW, 8]) = act(conv(x) + bias) with x blocked [N, C/8, IH, IW, 8];
 * bias may be NULL; the activation is p->act. Runs on ctx's threads. Returns 0, or -1 after
 * cpu_fail(). */
int cpu_nchwc_group(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wp,
                    const float *bias, float *y);

/* ---- 3x3 by Winograd's F(2x2, 3x3) or F(4x4, 3x3) (conv_nchwc_wino.c) ------------------ */

/* Whether cpu_nchwc_wino runs p: a 2-D 3x3 Conv, stride and dilation 1, one group, C and M
 * multiples of eight, any padding. */
bool cpu_nchwc_wino_applies(const conv_plan *p);
/* The side of the output tiles p is best run with, 2 or 4 (TESSERA_CPU_WINOGRAD_TILE=2 or 4
 * forces one). The weights are packed for one tile and run with the same. */
int cpu_nchwc_wino_tile(const conv_plan *p);
size_t cpu_nchwc_wino_packed_floats(const conv_plan *p, int tile);
/* Packs w ([M, C, 3, 3]) into dst (64-byte aligned, cpu_nchwc_wino_packed_floats(p, tile)
 * floats): the 16 (tile 2) or 36 (tile 4) transformed matrices U[xi] = (G g G^T)[xi], M x C
 * each, one after another, each as cpu_nchwc_pw_pack packs a 1x1 layer's weights. */
void cpu_nchwc_wino_pack(const conv_plan *p, int tile, const float *w, float *dst);
/* y (blocked [N, M/8, OH, OW, 8]) = act(conv(x) + bias) with x blocked [N, C/8, IH, IW, 8],
 * by tiles of tile x tile outputs (2 or 4, as wp was packed); bias may be NULL; the activation
 * is p->act. Runs on ctx's threads. Returns 0, or -1 after cpu_fail() (out of memory, a tile
 * of another size). x and y do not overlap. */
int cpu_nchwc_wino(cpu_ctx *ctx, const conv_plan *p, int tile, const float *x, const float *wp,
                   const float *bias, float *y);

/* ---- Direct dense convolution (conv_nchwc_direct.c) ------------------------------------- */

/* Whether cpu_nchwc_direct runs p: a 2-D Conv, one group, C and M multiples of eight, dilation
 * 1, any kernel size, stride and padding. */
bool cpu_nchwc_direct_applies(const conv_plan *p);
size_t cpu_nchwc_direct_packed_floats(const conv_plan *p);
/* Packs w ([M, C, kh, kw]) for cpu_nchwc_direct into dst, 64-byte aligned. */
void cpu_nchwc_direct_pack(const conv_plan *p, const float *w, float *dst);
/* y (blocked [N, M/8, OH, OW, 8]) = act(conv(x) + bias) with x blocked [N, C/8, IH, IW, 8];
 * bias may be NULL; the activation is p->act. Runs on ctx's threads. Returns 0, or -1 after
 * cpu_fail(). x and y do not overlap. */
int cpu_nchwc_direct(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wp,
                     const float *bias, float *y);
#endif

#endif
