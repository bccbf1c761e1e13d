/* Internals of the packed single-precision GEMM shared by gemm.c (driver, packing, generic
 * micro-kernel) and gemm_avx2.c (the AVX2/FMA variants). Nothing outside those files and the
 * other neural-network kernels (conv.c) should need this header. */
#ifndef TSR_CPU_GEMM_UTIL_H
#define TSR_CPU_GEMM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "devices/cpu/cpu.h"
#include "devices/cpu/elementwise_util.h"

/* Register tile of the micro-kernels: MR rows of A by NR columns of B. Packed A stores each
 * MR-row micro-panel as kc columns of MR floats; packed B stores each NR-column micro-panel as
 * kc rows of NR floats, zero-padded at the edges. Both variants use the same layout so that the
 * packing code is shared. */
enum { CPU_SGEMM_MR = 6, CPU_SGEMM_NR = 16 };

/* ---- Epilogue: bias and activation applied as results are stored ----------------------- */

/* Activations that a GEMM (and so Conv and Gemm) can apply to its results on the way out.
 * Each matches the CPU plugin's own elementwise op bit for bit on a given input, NaN
 * included (elementwise.c): relu is x < 0 ? 0 : x, clip is (x < lo ? lo : x) > hi ? hi : ..,
 * leakyrelu x < 0 ? alpha * x : x, hardsigmoid clamp01(alpha * x + beta), hardswish
 * x * clamp01(x / 6 + 0.5). The smooth ones (sigmoid, silu = x * sigmoid(x), gelu and its tanh
 * form) use the float32 approximations of elementwise_util.h that the Sigmoid, Erf and Tanh
 * kernels use, so they match the unfused graph within a few ulp rather than bit for bit. */
typedef enum cpu_act_kind {
  CPU_ACT_NONE = 0,
  CPU_ACT_RELU = 1,
  CPU_ACT_CLIP = 2,        /* p0 = min, p1 = max */
  CPU_ACT_LEAKYRELU = 3,   /* p0 = alpha */
  CPU_ACT_HARDSIGMOID = 4, /* p0 = alpha, p1 = beta */
  CPU_ACT_HARDSWISH = 5,
  CPU_ACT_SIGMOID = 6,
  CPU_ACT_SILU = 7,      /* x * sigmoid(x) */
  CPU_ACT_GELU = 8,      /* x / 2 * (1 + erf(x / sqrt 2)) */
  CPU_ACT_GELU_TANH = 9, /* x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) */
} cpu_act_kind;

typedef struct cpu_act {
  cpu_act_kind kind;
  float p0, p1;
} cpu_act;

static inline float cpu_act_clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* Whether k is one of the smooth activations (sigmoid, silu, gelu, gelu_tanh): a polynomial per
 * element, which kernels apply in a pass over finished rows (cpu_act_apply_row) rather than in
 * their tiles' registers. */
static inline bool cpu_act_is_smooth(cpu_act_kind k) {
  return k == CPU_ACT_SIGMOID || k == CPU_ACT_SILU || k == CPU_ACT_GELU || k == CPU_ACT_GELU_TANH;
}

static inline float cpu_act_apply(const cpu_act *a, float x) {
  switch (a->kind) {
  case CPU_ACT_RELU: return x < 0 ? 0 : x;
  case CPU_ACT_CLIP: {
    float t = x < a->p0 ? a->p0 : x;
    return t > a->p1 ? a->p1 : t;
  }
  case CPU_ACT_LEAKYRELU: return x < 0 ? a->p0 * x : x;
  case CPU_ACT_HARDSIGMOID: return cpu_act_clamp01(a->p0 * x + a->p1);
  case CPU_ACT_HARDSWISH: return x * cpu_act_clamp01(x * (float)(1.0 / 6.0) + 0.5f);
  case CPU_ACT_SIGMOID: return cpu_ew_sigmoidf(x);
  case CPU_ACT_SILU: return x * cpu_ew_sigmoidf(x);
  case CPU_ACT_GELU: return cpu_ew_geluf(x);
  case CPU_ACT_GELU_TANH: return cpu_ew_gelu_tanhf(x);
  default: return x;
  }
}

/* The bounds [lo, hi] of none, relu and clip as one clamp, min(hi, max(lo, v)), the form the
 * vector kernels give them (cpu_act_apply's results, NaN and -0 included); false, and the
 * bounds untouched, for any other activation. */
static inline bool cpu_act_clamp_bounds(const cpu_act *a, float *lo, float *hi) {
  switch (a->kind) {
  case CPU_ACT_NONE: *lo = -__builtin_inff(), *hi = __builtin_inff(); return true;
  case CPU_ACT_RELU: *lo = 0.0f, *hi = __builtin_inff(); return true;
  case CPU_ACT_CLIP: *lo = a->p0, *hi = a->p1; return true;
  default: return false;
  }
}

/* Reads the activation that core/passes.c fused into node n ("tessera.activation", a STRING,
 * with its parameters in "tessera.activation_params", FLOATS). Absent means CPU_ACT_NONE.
 * Returns TSR_PLUGIN_REASON_ATTRIBUTE with a message for a name or parameter count it does
 * not know, so that a node whose meaning it cannot honour is refused, never run wrong. */
static inline tsr_plugin_reason cpu_act_from_node(const cpu_node *n, cpu_act *out, char *msg,
                                                  size_t size) {
  static const struct {
    const char *name;
    cpu_act_kind kind;
    size_t params;
  } known[] = {{"relu", CPU_ACT_RELU, 0},           {"clip", CPU_ACT_CLIP, 2},
               {"leakyrelu", CPU_ACT_LEAKYRELU, 1}, {"hardsigmoid", CPU_ACT_HARDSIGMOID, 2},
               {"hardswish", CPU_ACT_HARDSWISH, 0}, {"sigmoid", CPU_ACT_SIGMOID, 0},
               {"silu", CPU_ACT_SILU, 0},           {"gelu", CPU_ACT_GELU, 0},
               {"gelu_tanh", CPU_ACT_GELU_TANH, 0}};
  out->kind = CPU_ACT_NONE;
  out->p0 = out->p1 = 0.0f;
  const char *name = cpu_attr_string(n, "tessera.activation", NULL);
  if (!name)
    return TSR_PLUGIN_REASON_NONE;
  const float *prm;
  size_t np = cpu_attr_floats(n, "tessera.activation_params", &prm);
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    if (strcmp(name, known[i].name) != 0)
      continue;
    if (np != known[i].params)
      return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE,
                        "tessera.activation %s takes %zu parameters, got %zu", name,
                        known[i].params, np);
    out->kind = known[i].kind;
    if (np > 0)
      out->p0 = prm[0];
    if (np > 1)
      out->p1 = prm[1];
    return TSR_PLUGIN_REASON_NONE;
  }
  return cpu_refuse(msg, size, TSR_PLUGIN_REASON_ATTRIBUTE, "tessera.activation '%s' unknown",
                    name);
}

/* The activation an output fusion (plugin.c, fuse_nodes) gave a node, as a kind. */
static inline cpu_act_kind cpu_fused_act_kind(cpu_fused_act f) {
  return f == CPU_FUSED_RELU        ? CPU_ACT_RELU
         : f == CPU_FUSED_GELU      ? CPU_ACT_GELU
         : f == CPU_FUSED_GELU_TANH ? CPU_ACT_GELU_TANH
                                    : CPU_ACT_NONE;
}

/* An activation kind by the ONNX operators it stands for, for people ("" for none). */
static inline const char *cpu_act_name(cpu_act_kind k) {
  static const char *const names[] = {"",
                                      "Relu",
                                      "Clip",
                                      "LeakyRelu",
                                      "HardSigmoid",
                                      "HardSwish",
                                      "Sigmoid",
                                      "SiLU (Sigmoid, Mul)",
                                      "Gelu",
                                      "Gelu (tanh)"};
  return (size_t)k < sizeof names / sizeof names[0] ? names[k] : "";
}

/* What cpu_sgemm_ex does to each result before storing it:
 *   C[i][j] = act(alpha * sum + beta * C[i][j] + row_bias[i] + col_bias[j]
 *                 + addend[i * ld_addend + j])
 * row_bias has m entries (Conv: one per output channel), col_bias n entries (Gemm's 1-D C),
 * addend is an m x n matrix (Conv: the residual that core/passes.c fused into it); any may be
 * NULL. addend must not overlap C. */
typedef struct cpu_sgemm_epilogue {
  const float *row_bias;
  const float *col_bias;
  const float *addend;
  size_t ld_addend;
  cpu_act act;
} cpu_sgemm_epilogue;

/* cpu_sgemm with an epilogue (NULL: none, exactly cpu_sgemm). The bias and the activation
 * are applied once, when the last KC block of a tile is stored, so they cost no pass of
 * their own over C. Defined in gemm.c. */
void cpu_sgemm_ex(cpu_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                  float alpha, const float *a, size_t lda, const float *b, size_t ldb, float beta,
                  float *c, size_t ldc, const cpu_sgemm_epilogue *ep);

/* ---- Packed operands and the general entry point --------------------------------------- */

/* Operands packed ahead of time, once, in the layout the micro-kernels read: the depth k is cut
 * into KC blocks of cpu_sgemm_kc(k) (the last may be shorter); block by block, packed A holds
 * its MR-row micro-panels (rows padded to a multiple of MR with zeros) and packed B its
 * NR-column micro-panels (columns padded to a multiple of NR). Conv packs its weights (A) and
 * Gemm/MatMul a constant B this way in prepare(), so a run packs only the activations. */
size_t cpu_sgemm_kc(size_t k);
/* Floats in a packed op(A) of m x k / op(B) of k x n. */
size_t cpu_sgemm_packed_a_floats(size_t m, size_t k);
size_t cpu_sgemm_packed_b_floats(size_t k, size_t n);
/* Packs op(A) (m x k; A row-major with lda, transposed when ta) into dst, which holds
 * cpu_sgemm_packed_a_floats(m, k) floats and is 64-byte aligned. */
void cpu_sgemm_pack_a(bool ta, const float *a, size_t lda, size_t m, size_t k, float *dst);
/* Packs op(B) (k x n) into dst of cpu_sgemm_packed_b_floats(k, n) floats, 64-byte aligned. */
void cpu_sgemm_pack_b(bool tb, const float *b, size_t ldb, size_t k, size_t n, float *dst);

/* Rows [p0, p0 + kc) x columns [col0, col0 + cols) of a row-major B (ldb apart) as one
 * micro-panel of kc rows of NR floats, zero past cols; row p times row_scale[p] unless
 * row_scale is NULL (a pointwise Conv's input under a fused squeeze-and-excitation scale). */
void cpu_sgemm_pack_b_rows(const float *b, size_t ldb, const float *row_scale, size_t p0,
                           size_t kc, size_t col0, size_t cols, float *dst);

/* A source of B that is not a plain matrix (Conv: the input image, read through the window):
 * writes op(B)[p0 .. p0+kc) x [col0 .. col0+cols) as one micro-panel, kc rows of NR floats,
 * zero past cols. Called from several threads at once, each with its own dst. */
typedef void (*cpu_sgemm_pack_b_fn)(const void *arg, size_t p0, size_t kc, size_t col0, size_t cols,
                                    float *dst);

/* C[m x n] = ep(alpha * op(A) op(B) + beta * C). A is given plain (a, lda, ta) or packed
 * (a_packed; then a may be NULL); B plain (b, ldb, tb), packed (b_packed) or through pack_b.
 * Small and vector shapes take direct loops when both plain operands are there. */
typedef struct cpu_sgemm_args {
  bool ta, tb;
  size_t m, n, k;
  float alpha, beta;
  const float *a;
  size_t lda;
  const float *a_packed;
  const float *b;
  size_t ldb;
  const float *b_packed;
  cpu_sgemm_pack_b_fn pack_b;
  const void *pack_b_arg;
  /* B read in place, unpacked: row p of op(B) starts at b_rows + b_offs[p] and runs along the
   * columns with unit stride (Conv over a zero-padded input, where the rows of its implicit
   * im2col matrix are shifted views of the input). The caller keeps round_up(n, NR) columns
   * of every row readable. */
  const float *b_rows;
  const ptrdiff_t *b_offs;
  float *c;
  size_t ldc;
  /* A window on the columns (0: none), with B read in place only: column q of op(B) belongs to
   * row q / c_pitch of an image whose rows hold c_width columns; those with q % c_pitch <
   * c_width are stored at (q / c_pitch) * c_width + q % c_pitch of their row of C, the others
   * are neither computed nor stored (register tiles stop at the end of each image row). Conv
   * over a padded input computes c_pitch columns per output row of which c_width are the
   * output's, and so can write its output in place when the rows are whole tiles wide. The
   * epilogue's addend is laid out like C; a col_bias is indexed by q. */
  size_t c_pitch, c_width;
  const cpu_sgemm_epilogue *ep;
} cpu_sgemm_args;

/* Runs on ctx's threads and ISA. Returns 0, or -1 when scratch memory for packing A could not
 * be had (C is then untouched). */
int cpu_sgemm_run(cpu_ctx *ctx, const cpu_sgemm_args *args);

/* The epilogue of one register tile: the biases already offset to the tile's first row and
 * column. The micro-kernels receive NULL for every KC block but the last. */
typedef struct cpu_sgemm_tile_ep {
  const float *row_bias; /* mr entries, or NULL */
  const float *col_bias; /* nr entries, or NULL */
  const float *addend;   /* mr rows of nr floats, ld_addend apart, or NULL */
  size_t ld_addend;
  cpu_act act;
} cpu_sgemm_tile_ep;

/* One register tile: C[mr x nr] = alpha * (Ap * Bp) + beta * C, where Ap/Bp are packed
 * micro-panels of depth kc (64-byte aligned) and mr <= MR, nr <= NR. beta == 0 never reads C.
 * With ep, the tile's biases and activation are applied before the store. */
typedef void (*cpu_sgemm_ukernel_fn)(size_t kc, const float *ap, const float *bp, float *c,
                                     size_t ldc, size_t mr, size_t nr, float alpha, float beta,
                                     const cpu_sgemm_tile_ep *ep);
/* The same with B read in place: row p of the panel at b + offs[p], NR floats. */
typedef void (*cpu_sgemm_ukernel_offs_fn)(size_t kc, const float *ap, const float *b,
                                          const ptrdiff_t *offs, float *c, size_t ldc, size_t mr,
                                          size_t nr, float alpha, float beta,
                                          const cpu_sgemm_tile_ep *ep);

/* Rows of a tile at most that the short micro-kernel takes (a build without it has none: the
 * driver's uk_short stays NULL). */
#define CPU_SGEMM_SHORT_MR 4

#if defined(TSR_CPU_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
#define CPU_GEMM_HAVE_AVX2 1
/* The AVX2/FMA versions; call them only when ctx->isa == CPU_ISA_AVX2_FMA. The micro-kernel
 * comes in variants for operands given packed (cpu_sgemm_args.a_packed, b_packed), whose next
 * panels it prefetches: packed ahead, in a model they come from memory (a_ahead, b_ahead). */
cpu_sgemm_ukernel_fn cpu_sgemm_ukernel_avx2(bool a_ahead, bool b_ahead);
/* The same for tiles of at most CPU_SGEMM_SHORT_MR rows (packed B). */
cpu_sgemm_ukernel_fn cpu_sgemm_ukernel_short_avx2(bool a_ahead, bool b_ahead);
/* The micro-kernel for B read in place: row p of the panel at b + offs[p] (see b_rows). */
cpu_sgemm_ukernel_offs_fn cpu_sgemm_ukernel_offs_avx2(bool a_ahead);
/* One whole MR-row panel of a row-major A (rows lda apart), kc deep, into dst in the packed
 * layout: dst[p * MR + i] = a[i * lda + p]. */
void cpu_sgemm_pack_a6_avx2(const float *a, size_t lda, size_t kc, float *dst);
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
