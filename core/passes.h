/* Graph optimisation passes: rewrites of an imported, finalized graph that keep its results
 * (up to float rounding) and its interface (input and output names, dtypes, shapes) intact.
 * They run once when a model is loaded, before any session shares the graph:
 *
 *   - BatchNormalization (inference form) right after a Conv or ConvTranspose with constant
 *     float32 weights is folded into the convolution's weight and bias;
 *   - Mul or Add of a constant scalar or per-channel vector that alone reads the output of a
 *     Conv with constant float32 weights (and nothing fused into it) is folded into the
 *     Conv's weight and bias (in double; skipped when a folded value would not be finite),
 *     and Mul(x, s), Add(x, t) or Add(Mul(x, s), t) with constant scalar or per-input-channel
 *     s and t that alone feeds a Conv without padding is folded into that Conv the same way;
 *   - HardSwish written out, x * Clip(x + 3, 0, 6) / 6 (Div by 6 or Mul by 1 / 6) or
 *     x * HardSigmoid(x) with alpha 1 / 6 and beta 0.5, becomes one HardSwish node (the
 *     opset 14 operator, whatever opset the model imports);
 *   - Identity nodes and inference-mode Dropout are removed and their readers rewired;
 *   - MatMul of a matrix by a constant matrix followed by Add of a constant bias becomes Gemm;
 *   - GELU written out, x * (E + 1) * 0.5 with the three factors in any order, becomes one
 *     Gelu node (the opset 20 operator, whatever opset the model imports): approximate
 *     "none" for E = Erf(x / sqrt 2) (x / sqrt 2 as a Div or a Mul), "tanh" for
 *     E = Tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)) (x^3 as Pow or x * (x * x));
 *   - LayerNormalization over the last axis written out (ReduceMean, Sub, Pow 2 or Mul,
 *     ReduceMean, Add eps, Sqrt, Div, Mul gamma, optionally Add beta, with constant float32
 *     vectors gamma and beta) becomes one LayerNormalization node (the opset 17 operator,
 *     axis -1, the model's epsilon);
 *   - Relu, Clip (constant bounds), LeakyRelu, HardSigmoid, HardSwish, Sigmoid, Gelu, or SiLU
 *     written out as Mul(x, Sigmoid(x)), that alone reads the output of a Conv or Gemm with
 *     constant float32 weights is fused into it: the activation nodes go, and the Conv/Gemm
 *     carries the internal attributes "tessera.activation" (STRING: relu, clip, leakyrelu,
 *     hardsigmoid, hardswish, sigmoid, silu, gelu, gelu_tanh) and
 *     "tessera.activation_params" (FLOATS: clip min, max; leakyrelu alpha; hardsigmoid alpha,
 *     beta) and writes the activation's output. Such attributes change the node's meaning:
 *     a device that does not implement them must refuse the node (docs/PLUGINS.md);
 *   - initializers nothing reads any more are freed.
 *
 * Subgraphs (If, Loop, Scan bodies) are left as they are; a value of the outer graph that a
 * subgraph reads by name is never renamed or removed. */
#ifndef TSR_CORE_PASSES_H
#define TSR_CORE_PASSES_H

#include <stdint.h>

#include "core/graph.h"

/* Which passes to run; values are fixed and only appended. */
typedef enum tsr__pass {
  TSR__PASS_FOLD_BATCHNORM = 1u << 0,
  TSR__PASS_REMOVE_IDENTITY = 1u << 1,  /* Identity and inference Dropout */
  TSR__PASS_FUSE_GEMM = 1u << 2,        /* MatMul + Add -> Gemm */
  TSR__PASS_DROP_UNUSED = 1u << 3,      /* free initializers no node or output reads */
  TSR__PASS_FUSE_ACTIVATION = 1u << 4,  /* Conv/Gemm + Relu, Clip, ... -> tessera.activation */
  TSR__PASS_FUSE_GELU = 1u << 5,        /* x * (Erf(x / sqrt 2) + 1) * 0.5, tanh form -> Gelu */
  TSR__PASS_FUSE_LAYERNORM = 1u << 6,   /* ReduceMean, Sub, Pow, ... -> LayerNormalization */
  TSR__PASS_FOLD_CONV_AFFINE = 1u << 7, /* Conv -> Mul / Add by a constant -> Conv */
  TSR__PASS_FUSE_HARDSWISH = 1u << 8,   /* x * Clip(x + 3, 0, 6) / 6, x * HardSigmoid(x) */
  TSR__PASS_ALL = 0x1ffu,
} tsr__pass;

/* What a run of the passes changed; for tests and diagnostics. */
typedef struct tsr__pass_stats {
  uint32_t batchnorms_folded;
  uint32_t identities_removed; /* Identity and Dropout nodes */
  uint32_t gemms_fused;
  uint32_t initializers_freed;
  uint32_t activations_fused; /* SiLU (Sigmoid and Mul) counts once */
  uint32_t gelus_fused;
  uint32_t layernorms_fused;
  uint32_t affines_folded; /* Mul or Add nodes folded into a Conv */
  uint32_t hardswishes_fused;
} tsr__pass_stats;

/* Runs the passes selected in `passes` (tsr__pass bits) on g, a graph that
 * tsr__graph_finalize has accepted, and finalizes it again when anything changed. out_stats
 * may be NULL. On error (out of memory) g may be partly rewritten but stays consistent and
 * must still be destroyed by the caller; the model load that called this then fails. */
tsr_status tsr__passes_apply(tsr__graph *g, uint32_t passes, tsr__pass_stats *out_stats);

/* The model loader's entry point: every pass, unless the environment variable
 * TESSERA_NO_PASSES is set to anything other than "" or "0" (for comparing results and
 * timings with the graph as imported). */
tsr_status tsr__passes_run(tsr__graph *g);

#endif
