/* Shape inference on concrete shapes. Given the actual shapes of a graph's inputs, it computes
 * the dtype and shape of every value, node by node in topological order, and folds constants:
 * a node whose inputs are all known data (initializers, Constants, Shape of a known shape, or
 * earlier folded values) is evaluated at plan time through the `eval` callback, so shape
 * computations such as Shape -> Gather -> Concat -> Reshape become constants before
 * partitioning. Ops whose output shape depends on data that is only known at run time fail with
 * a clear TSR_STATUS_UNSUPPORTED error naming the node. */
#ifndef TSR_CORE_SHAPE_INFER_H
#define TSR_CORE_SHAPE_INFER_H

#include "core/graph.h"

typedef struct tsr__vshape {
  int32_t dtype;     /* tsr_dtype; UNDEFINED until inferred */
  int32_t rank;      /* -1 until inferred */
  int64_t *dims;     /* rank entries, allocated with the graph's allocator (owned) */
  const void *data;  /* constant data when known, else NULL */
  size_t nbytes;
  bool owns_data;    /* data was allocated during inference (folded) and is freed with it */
  bool is_weight;    /* data is an initializer of the model */
} tsr__vshape;

/* Evaluates node `node` of g, whose inputs all have data in vals, writing data (allocated with
 * g->alloc, owns_data = true) to its outputs' vals; output dtypes and dims are already set. */
typedef tsr_status (*tsr__eval_fn)(void *ctx, const tsr__graph *g, uint32_t node,
                                   tsr__vshape *vals);
/* NOTE: an eval that cannot evaluate a node (an op or dtype it lacks) answers
 * TSR_STATUS_UNSUPPORTED: the node is then left unfolded and runs with the graph; any other
 * error fails inference. Before the call each output's nbytes holds its byte size, and
 * inference sets nbytes of every value it infers whether or not its data is known. Only nodes
 * whose outputs total at most 16 MiB are offered; random generators and DequantizeLinear never
 * are. g may be a subgraph (an If branch).
 * Control-flow nodes (If, Loop, Scan) whose inputs, and every value their subgraphs read from
 * g, are known are offered too, but with their outputs unset: eval then sets each output's
 * dtype and dims (tsr__vshape_set) as well as its data, since they may depend on the values. */

/* vals has g->n_values entries. On entry, graph inputs must have dtype, rank and dims set and
 * everything else zeroed (rank -1). Initializers are filled in by this function. On success
 * every value produced by a node is set. On error vals may be partly filled; release with
 * tsr__vshapes_clear. eval may be NULL: then nothing is folded except Shape/Size/Constant,
 * which need no kernel. */
tsr_status tsr__infer_shapes(const tsr__graph *g, tsr__vshape *vals, tsr__eval_fn eval,
                             void *eval_ctx);

/* Frees what inference allocated in vals (dims and folded data), leaving entries zeroed. */
void tsr__vshapes_clear(const tsr__graph *g, tsr__vshape *vals);

/* Sets a value's dtype and dims (copying dims); used by inference and by callers setting the
 * graph inputs. */
tsr_status tsr__vshape_set(const tsr__graph *g, tsr__vshape *v, int32_t dtype, int32_t rank,
                           const int64_t *dims);

/* Scan's layout: which node inputs are state values and scan inputs, and its axes and
 * directions per scan input and output, as written (axes not yet normalized). */
#define TSR__SCAN_MAX 64
typedef struct tsr__scan_info {
  uint32_t first; /* 1 at opset 8 (sequence_lens comes first), else 0 */
  uint32_t n_state, n_scan_in, n_scan_out;
  int64_t in_dir[TSR__SCAN_MAX], in_axis[TSR__SCAN_MAX];
  int64_t out_dir[TSR__SCAN_MAX], out_axis[TSR__SCAN_MAX];
} tsr__scan_info;

/* Checks a Scan node against its body and reads its attributes; errors name the node. */
tsr_status tsr__scan_layout(const tsr__node *n, int64_t opset, const tsr__graph *body,
                            tsr__scan_info *out);

/* True when an op is known to shape inference (domain "" or "ai.onnx"). */
bool tsr__shape_op_known(const char *domain, const char *op_type);

#endif
