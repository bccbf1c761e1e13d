/* What conv.c, conv_dw.c and conv_pw.c share: the plan of one Conv or ConvTranspose node, read
 * from its attributes and shapes by conv.c, and the entry points of the direct depthwise kernels
 * and of the transposed pointwise product. */
#ifndef TSR_CPU_CONV_UTIL_H
#define TSR_CPU_CONV_UTIL_H

#include "devices/cpu/cpu.h"
#include "devices/cpu/gemm_util.h"
#include "devices/cpu/nn_util.h"

typedef struct conv_plan {
  bool transpose;
  nn_window w;
  size_t N, C, M, G; /* batch, input channels, output channels, groups */
  size_t cg, mg;     /* channels per group: input, output */
  size_t kk;         /* kernel elements: k0*k1*k2 */
  size_t in_sp, out_sp;
  bool has_bias;
  cpu_act act; /* Conv only: fused by core/passes.c ("tessera.activation") */
} conv_plan;

/* Where output position (oz, oy, ox) of an unpadded 1x1 Conv reads its input, within one
 * channel plane (a strided layer reads one position in s*s). */
static inline size_t conv_pw_source(const nn_window *w, int64_t oz, int64_t oy, int64_t ox) {
  return (size_t)(((oz * w->s[0]) * w->in[1] + oy * w->s[1]) * w->in[2] + ox * w->s[2]);
}

/* The output index range [lo, hi) within [0, len) for which pos = o * s + off lies in
 * [0, limit). */
static inline void valid_range(int64_t len, int64_t s, int64_t off, int64_t limit, int64_t *lo,
                               int64_t *hi) {
  int64_t a = nn_ceildiv(-off, s), b = nn_ceildiv(limit - off, s);
  *lo = a < 0 ? 0 : (a > len ? len : a);
  *hi = b < *lo ? *lo : (b > len ? len : b);
}

/* Whether cpu_conv_depthwise runs p: a Conv (not ConvTranspose) with one input channel per
 * group and more than one group. */
static inline bool cpu_conv_depthwise_applies(const conv_plan *p) {
  return !p->transpose && p->cg == 1 && p->G > 1;
}

/* float32 depthwise (and channel-multiplier) Conv of p over x into y, with the bias b (or NULL)
 * and p's fused activation, on ctx's threads; `packed` is what cpu_conv_dw_pack made of w and
 * b at compile time, or NULL. Defined in conv_dw.c. */
void cpu_conv_depthwise(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *w,
                        const float *b, const float *packed, float *y);
/* The weights w and bias b (or NULL) of a depthwise p packed for the eight-channel AVX2 path:
 * per group of eight channels, its kh*kw taps in eight lanes, then its eight biases, zero in
 * the lanes past the last channel (prepare() packs constant ones, cpu_conv_depthwise the
 * others in each run). NULL when p is no multiplier-1 2-D depthwise window of two or more taps
 * a side, or memory ran out; free() it. */
float *cpu_conv_dw_pack(const conv_plan *p, const float *w, const float *b);

/* The transposed product for a 1x1 Conv over a small plane (conv_pw.c). Whether it can run p
 * (1x1, no padding, one group, any stride); whether its cost model prefers it to the plain
 * GEMM for p's plane; and the product itself over every image, with W^T packed in wt
 * (cpu_sgemm_pack_b of the K x M transposed weights), the input channels scaled by scale (N x C
 * floats, a fused squeeze-and-excitation scale, or NULL) as they are packed, the bias b and a
 * residual res (like y, or NULL; it may be y itself) added and p's activation applied: 0, or -1
 * when memory ran out. It reads x only to pack it, before it writes any of an image's output. */
bool cpu_conv_pwt_applies(const conv_plan *p);
bool cpu_conv_pwt_wanted(const conv_plan *p);
int cpu_conv_pwt(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *wt, const float *b,
                 const float *scale, const float *res, float *y);

/* 3x3 stride-1 convolution by Winograd's F(2x2, 3x3) (conv_wino.c). Whether it can run p (2-D,
 * 3x3, stride and dilation 1, one group, any padding); whether it pays for p (or
 * TESSERA_CPU_WINOGRAD=0/1 says); the floats of p's transformed weights and their packing
 * (prepare(); 0, or -1 when memory ran out); and the convolution over every image with the
 * bias b, a residual res (like y, or NULL; it may be y itself) and p's activation: 0, or -1 when
 * memory ran out. */
bool cpu_conv_wino_applies(const conv_plan *p);
bool cpu_conv_wino_wanted(const conv_plan *p);
size_t cpu_conv_wino_packed_floats(const conv_plan *p);
int cpu_conv_wino_pack(const conv_plan *p, const float *w, float *dst);
int cpu_conv_wino(cpu_ctx *ctx, const conv_plan *p, const float *x, const float *u,
                  const float *b, const float *res, float *y);

/* U = G g G^T of one 3x3 kernel g (row-major), G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 * in float (halves and sums of three): element 4a + b of U at u[(4a + b) * stride]. Both
 * Winograd packers (conv_wino.c, conv_nchwc_wino.c) write their layouts through it. */
static inline void cpu_wino_kernel_transform(const float *g, float *u, size_t stride) {
  float t[4][3]; /* G g */
  for (int k = 0; k < 3; k++) {
    float g0 = g[k], g1 = g[3 + k], g2 = g[6 + k];
    t[0][k] = g0;
    t[1][k] = 0.5f * (g0 + g1 + g2);
    t[2][k] = 0.5f * (g0 - g1 + g2);
    t[3][k] = g2;
  }
  for (int a = 0; a < 4; a++) { /* (G g) G^T: elements 4a .. 4a + 3 */
    float r0 = t[a][0], r1 = t[a][1], r2 = t[a][2];
    float *ua = u + (size_t)(4 * a) * stride;
    ua[0] = r0;
    ua[stride] = 0.5f * (r0 + r1 + r2);
    ua[2 * stride] = 0.5f * (r0 - r1 + r2);
    ua[3 * stride] = r2;
  }
}

#endif
