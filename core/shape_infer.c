/* Shape inference on concrete shapes, and constant folding.
 *
 * Every operator has a rule (infer_<op>), found by binary search in `rules`, a table sorted by
 * op_type. A rule reads the dtypes and dims of its node's inputs (and their data where ONNX
 * makes an output shape depend on it), checks what ONNX requires of them, and sets every present
 * output. The driver (infer_node) resolves the node's opset, checks its arity, runs the rule and
 * then folds the node through the eval callback when all its inputs are known.
 *
 * Semantics are those of ai.onnx at the opset version the node imports. Later opsets than 17
 * get the newest rule known here; the opset-18 changes that affect shapes (axes inputs of Reduce*
 * and Pad, Split's num_outputs, Resize's axes and aspect-ratio policy) are implemented because
 * they are small.
 *
 * Opsets 1 to 6: a rule whose `oldest` field says so also serves them. Most ops only lost the
 * legacy `consumed_inputs` attribute at opset 6 or 7, which changes nothing here. Where the older
 * version differs (Caffe2-style broadcasting with `broadcast`/`axis`, `is_test` training modes,
 * Reshape's shape attribute, Split's split input, Pad's `paddings`, Concat's default axis), the
 * rule implements the old form when it is small, and otherwise refuses the node with the same
 * "operator ... is not supported" message as an opset it does not cover at all. Rules with
 * `oldest` 7 cover opset 7 on: ops introduced at 7 or later, and Upsample, whose first version
 * differs. Cast and Tile start at 6 (Cast-1 names its target type by string, Tile-1 takes
 * tiles and axis inputs).
 *
 * Status codes:
 * - INVALID_ARGUMENT: shapes or data that do not fit together. Shapes come mostly from the
 *   caller's input dims, so this is what a wrong input shape produces.
 * - INVALID_MODEL: wrong whatever the shapes are: a missing input, a malformed attribute, dtypes
 *   that ONNX requires to agree and do not.
 * - UNSUPPORTED: an operator, opset or domain not known here, and output shapes that depend on
 *   data only known at run time.
 * Every message starts with "node '<name>' (<op_type>): ".
 *
 * Besides what the header says, inference sets vshape.nbytes of every value it infers to the
 * value's byte size (count * dtype size), whether or not its data is known. */
#include "core/shape_infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera/plugin.h" /* attribute type numbers */

/* Folded outputs larger than this stay unknown; the node then runs with the graph. */
#define FOLD_MAX_BYTES ((size_t)16 << 20)

#define LL(x) ((long long)(x))

/* Known data of zero bytes. Initializers without elements have data == NULL, but data != NULL
 * is how every consumer of tsr__vshape tells a constant, so known empty values point here. */
static const int64_t empty_data[1];

/* ---- Context --------------------------------------------------------------------------- */

/* A graph being inferred and the graphs that enclose it, for subgraphs that read outer values
 * by name. */
typedef struct scope {
  const tsr__graph *g;
  tsr__vshape *vals;
  const struct scope *up;
} scope;

/* What a rule sees: the node, the values, and scratch memory freed after the node. */
typedef struct ictx {
  const tsr__graph *g;
  tsr__vshape *vals;
  const scope *sc; /* g and vals, and the enclosing graphs */
  const tsr__node *n;
  uint32_t index;
  int64_t opset;
  tsr__eval_fn eval;
  void *eval_ctx;
  tsr_status attr_error; /* the first malformed attribute a rule met */
  void **scratch;
  size_t n_scratch, cap_scratch;
} ictx;

typedef tsr_status (*infer_fn)(ictx *c);

enum {
  /* Never evaluated at plan time: random generators, and DequantizeLinear, which stays in the
   * graph (as onnxruntime keeps it) so that int8 devices can still fuse it with its consumer
   * instead of receiving float weights. */
  F_NOFOLD = 1u << 0,
  F_SELF = 1u << 1,   /* the rule sets the output data itself (Shape, Size, Constant) */
  F_CONTROL = 1u << 2 /* subgraphs: not handed to eval */
};

#define VAR 255 /* arity without an upper bound */

typedef struct op_rule {
  const char *op_type;
  infer_fn infer;
  uint8_t min_inputs; /* the first min_inputs inputs are required at every opset */
  uint8_t max_inputs;
  uint8_t max_outputs;
  uint8_t flags;
  uint8_t oldest; /* the oldest opset the rule implements (see the top comment) */
} op_rule;

static tsr_status infer_graph(const tsr__graph *g, tsr__vshape *vals, tsr__eval_fn eval,
                              void *eval_ctx, const scope *outer);

/* ---- Errors ---------------------------------------------------------------------------- */

static tsr_status failv(const ictx *c, tsr_status_code code, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  return tsr__status_make(code, "node '%s' (%s): %s", c->n->name ? c->n->name : "?",
                          c->n->op_type ? c->n->op_type : "?", msg);
}

#define DEFINE_FAIL(fn, code)                                                                      \
  __attribute__((format(printf, 2, 3))) static tsr_status fn(const ictx *c, const char *fmt,       \
                                                             ...) {                                \
    va_list ap;                                                                                    \
    va_start(ap, fmt);                                                                             \
    tsr_status s = failv(c, code, fmt, ap);                                                        \
    va_end(ap);                                                                                    \
    return s;                                                                                      \
  }
DEFINE_FAIL(bad, TSR_STATUS_INVALID_ARGUMENT)
DEFINE_FAIL(bad_model, TSR_STATUS_INVALID_MODEL)
DEFINE_FAIL(unsupported, TSR_STATUS_UNSUPPORTED)
DEFINE_FAIL(internal, TSR_STATUS_INTERNAL)

/* Refuses a node of opset 1..6 whose older semantics differ from opset 7 in a way that is not
 * implemented, with the message the driver gives an opset it does not cover. */
__attribute__((format(printf, 2, 3))) static tsr_status old_opset(const ictx *c, const char *fmt,
                                                                  ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return unsupported(c, "operator %s (domain '%s', opset %lld) is not supported: %s", c->n->op_type,
                     c->n->domain ? c->n->domain : "", LL(c->opset), why);
}

static tsr_status oom(const ictx *c) {
  return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY,
                          "node '%s' (%s): out of memory during shape inference", c->n->name,
                          c->n->op_type);
}

/* ---- Scratch memory -------------------------------------------------------------------- */

static void *tmp(ictx *c, size_t size) {
  if (c->n_scratch == c->cap_scratch) {
    size_t cap = c->cap_scratch ? c->cap_scratch * 2 : 16;
    void **p = c->scratch ? tsr__realloc(c->g->alloc, c->scratch, cap * sizeof *p)
                          : tsr__alloc(c->g->alloc, cap * sizeof *p);
    if (!p)
      return NULL;
    c->scratch = p;
    c->cap_scratch = cap;
  }
  void *m = tsr__alloc(c->g->alloc, size);
  if (m)
    c->scratch[c->n_scratch++] = m;
  return m;
}

static int64_t *tmp_dims(ictx *c, size_t n) {
  size_t bytes;
  if (!tsr__mul_size(n, sizeof(int64_t), &bytes))
    return NULL;
  return tmp(c, bytes);
}

static void tmp_release(ictx *c) {
  for (size_t i = 0; i < c->n_scratch; i++)
    tsr__free(c->g->alloc, c->scratch[i]);
  c->n_scratch = 0;
}

/* Declares `var`, n int64s of scratch memory, and returns OUT_OF_MEMORY when there are none. */
#define TMP_DIMS(var, n)                                                                           \
  int64_t *var = tmp_dims(c, (size_t)(n));                                                         \
  if (!var) {                                                                                      \
    return oom(c);                                                                                 \
  }                                                                                                \
  (void)0

/* ---- Inputs, outputs, dims ------------------------------------------------------------- */

static int32_t in_id(const ictx *c, uint32_t i) {
  return i < c->n->n_inputs ? c->n->inputs[i] : -1;
}
static int32_t out_id(const ictx *c, uint32_t k) {
  return k < c->n->n_outputs ? c->n->outputs[k] : -1;
}
/* Input i, or NULL when it is absent. */
static const tsr__vshape *in(const ictx *c, uint32_t i) {
  int32_t v = in_id(c, i);
  return v < 0 ? NULL : &c->vals[v];
}
static const char *in_name(const ictx *c, uint32_t i) {
  int32_t v = in_id(c, i);
  return v < 0 ? "(absent)" : c->g->values[v].name;
}
static const char *out_name(const ictx *c, uint32_t k) {
  int32_t v = out_id(c, k);
  return v < 0 ? "(absent)" : c->g->values[v].name;
}

static const char *dt(int32_t dtype) { return tsr_dtype_name((tsr_dtype)dtype); }

static bool is_float(int32_t t) {
  return t == TSR_DTYPE_FLOAT32 || t == TSR_DTYPE_FLOAT64 || t == TSR_DTYPE_FLOAT16 ||
         t == TSR_DTYPE_BFLOAT16;
}

static size_t count_of(const tsr__vshape *v) {
  size_t n = 0;
  if (v->rank >= 0)
    tsr__shape_count(v->dims, (size_t)v->rank, &n);
  return n;
}

/* "[2,3,4]" in scratch memory, for messages. */
static const char *dstr(ictx *c, const int64_t *dims, int64_t rank) {
  size_t size = (size_t)(rank > 0 ? rank : 0) * 21 + 3;
  char *buf = tmp(c, size);
  if (!buf)
    return "[?]";
  return tsr__format_dims(dims, (size_t)(rank > 0 ? rank : 0), buf, size);
}
static const char *vstr(ictx *c, const tsr__vshape *v) { return dstr(c, v->dims, v->rank); }

static bool mul64(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static bool add64(int64_t a, int64_t b, int64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* Product of dims[from, to); false on overflow. */
static bool dims_product(const int64_t *dims, int64_t from, int64_t to, int64_t *out) {
  int64_t p = 1;
  for (int64_t i = from; i < to; i++)
    if (!mul64(p, dims[i], &p))
      return false;
  *out = p;
  return true;
}

/* Copies x's dims into d (x may be a scalar, with dims == NULL). */
static void copy_dims(int64_t *d, const tsr__vshape *x) {
  if (x->rank > 0)
    memcpy(d, x->dims, (size_t)x->rank * sizeof *d);
}

static bool dims_equal(const int64_t *a, int64_t ra, const int64_t *b, int64_t rb) {
  if (ra != rb)
    return false;
  for (int64_t i = 0; i < ra; i++)
    if (a[i] != b[i])
      return false;
  return true;
}

/* Frees what inference put in one entry and leaves it unset. */
static void reset_value(const tsr__graph *g, tsr__vshape *v) {
  tsr__free(g->alloc, v->dims);
  if (v->owns_data)
    tsr__free(g->alloc, (void *)v->data);
  memset(v, 0, sizeof *v);
  v->rank = -1;
}

/* Sets output k (nothing when it is absent): dtype, dims and byte size. */
static tsr_status set_out(ictx *c, uint32_t k, int32_t dtype, int64_t rank, const int64_t *dims) {
  int32_t v = out_id(c, k);
  if (v < 0)
    return NULL;
  for (int64_t i = 0; i < rank; i++)
    if (dims[i] < 0)
      return internal(c, "output %u '%s' got a negative dimension %s", k, out_name(c, k),
                      dstr(c, dims, rank));
  size_t count, bytes;
  if (rank > INT32_MAX || !tsr__shape_count(dims, (size_t)rank, &count) ||
      !tsr__mul_size(count, tsr_dtype_size((tsr_dtype)dtype), &bytes))
    return bad(c, "output %u '%s' would have shape %s, whose size overflows", k, out_name(c, k),
               dstr(c, dims, rank));
  tsr_status st = tsr__vshape_set(c->g, &c->vals[v], dtype, (int32_t)rank, dims);
  if (st)
    return tsr__status_wrap(st, "node '%s' (%s)", c->n->name, c->n->op_type);
  c->vals[v].nbytes = bytes;
  return NULL;
}

static tsr_status same_as(ictx *c, uint32_t k, uint32_t i) {
  const tsr__vshape *x = in(c, i);
  return set_out(c, k, x->dtype, x->rank, x->dims);
}

/* Gives output k a copy of `bytes` bytes of data, owned by vals. */
static tsr_status set_out_data(ictx *c, uint32_t k, const void *src, size_t bytes) {
  int32_t v = out_id(c, k);
  if (v < 0)
    return NULL;
  void *d = tsr__alloc(c->g->alloc, bytes);
  if (!d)
    return oom(c);
  if (bytes)
    memcpy(d, src, bytes);
  tsr__vshape *o = &c->vals[v];
  if (o->owns_data)
    tsr__free(c->g->alloc, (void *)o->data);
  o->data = d;
  o->nbytes = bytes;
  o->owns_data = true;
  o->is_weight = false;
  return NULL;
}

/* ---- Checks ---------------------------------------------------------------------------- */

static tsr_status norm_axis(ictx *c, int64_t axis, int64_t rank, const char *what, int64_t *out) {
  *out = 0;
  if (axis < -rank || axis >= rank)
    return bad(c, "%s %lld is out of range for rank %lld (expected %lld..%lld)", what, LL(axis),
               LL(rank), LL(-rank), LL(rank - 1));
  *out = axis < 0 ? axis + rank : axis;
  return NULL;
}

static tsr_status want_rank(ictx *c, uint32_t i, int64_t min, int64_t max) {
  const tsr__vshape *v = in(c, i);
  if (!v || (v->rank >= min && v->rank <= max))
    return NULL;
  if (min == max)
    return bad(c, "input %u '%s' %s must have rank %lld, got %d", i, in_name(c, i), vstr(c, v),
               LL(min), v->rank);
  if (max == INT32_MAX)
    return bad(c, "input %u '%s' %s must have rank >= %lld, got %d", i, in_name(c, i), vstr(c, v),
               LL(min), v->rank);
  return bad(c, "input %u '%s' %s must have rank %lld..%lld, got %d", i, in_name(c, i), vstr(c, v),
             LL(min), LL(max), v->rank);
}
#define ANY_RANK INT32_MAX

static tsr_status want_dtype(ictx *c, uint32_t i, int32_t dtype) {
  const tsr__vshape *v = in(c, i);
  if (!v || v->dtype == dtype)
    return NULL;
  return bad_model(c, "input %u '%s' must be %s, got %s", i, in_name(c, i), dt(dtype),
                   dt(v->dtype));
}

static tsr_status want_float(ictx *c, uint32_t i) {
  const tsr__vshape *v = in(c, i);
  if (!v || is_float(v->dtype))
    return NULL;
  return bad_model(c, "input %u '%s' must be a floating-point tensor, got %s", i, in_name(c, i),
                   dt(v->dtype));
}

static tsr_status want_index_dtype(ictx *c, uint32_t i) {
  const tsr__vshape *v = in(c, i);
  if (!v || v->dtype == TSR_DTYPE_INT64 || v->dtype == TSR_DTYPE_INT32)
    return NULL;
  return bad_model(c, "input %u '%s' must be int32 or int64, got %s", i, in_name(c, i),
                   dt(v->dtype));
}

/* Inputs i and j (when present) have the same dtype, as ONNX requires of most ops. */
static tsr_status want_same_dtype(ictx *c, uint32_t i, uint32_t j) {
  const tsr__vshape *a = in(c, i), *b = in(c, j);
  if (!a || !b || a->dtype == b->dtype)
    return NULL;
  return bad_model(c, "inputs '%s' (%s) and '%s' (%s) must have the same dtype", in_name(c, i),
                   dt(a->dtype), in_name(c, j), dt(b->dtype));
}

/* Input i (when present) has exactly one element: a scalar in ONNX's lenient sense. */
static tsr_status want_scalar(ictx *c, uint32_t i) {
  const tsr__vshape *v = in(c, i);
  if (!v || count_of(v) == 1)
    return NULL;
  return bad(c, "input %u '%s' must be a scalar (one element), got shape %s", i, in_name(c, i),
             vstr(c, v));
}

/* Input i (when present) has shape [n]. */
static tsr_status want_vector(ictx *c, uint32_t i, int64_t n, const char *what) {
  const tsr__vshape *v = in(c, i);
  if (!v || (v->rank == 1 && v->dims[0] == n))
    return NULL;
  return bad(c, "input %u '%s' must have shape [%lld] (%s), got %s", i, in_name(c, i), LL(n), what,
             vstr(c, v));
}

/* ---- Attributes ------------------------------------------------------------------------ */

static const char *attr_type_name(int32_t t) {
  static const char *const names[] = {"undefined", "float",  "int",  "string", "tensor",
                                      "graph",     "floats", "ints", "strings"};
  return t >= 0 && t <= 8 ? names[t] : "unknown";
}

/* The attribute when present with the right type; a wrong type is recorded as the node's
 * error (reported after the rule) and reads as absent. */
static const tsr__attr *attr(ictx *c, const char *name, int32_t type) {
  const tsr__attr *a = tsr__node_attr(c->n, name);
  if (!a)
    return NULL;
  if (a->type != type) {
    if (!c->attr_error)
      c->attr_error = bad_model(c, "attribute '%s' is of type %s, expected %s", name,
                                attr_type_name(a->type), attr_type_name(type));
    return NULL;
  }
  return a;
}

static int64_t aint(ictx *c, const char *name, int64_t dflt) {
  const tsr__attr *a = attr(c, name, TSR_PLUGIN_ATTR_INT);
  return a ? a->i : dflt;
}
static const char *astr(ictx *c, const char *name, const char *dflt) {
  const tsr__attr *a = attr(c, name, TSR_PLUGIN_ATTR_STRING);
  return a && a->s ? a->s : dflt;
}
static bool has_attr(ictx *c, const char *name) { return tsr__node_attr(c->n, name) != NULL; }
/* False when absent. */
static bool aints(ictx *c, const char *name, const int64_t **v, size_t *count) {
  const tsr__attr *a = attr(c, name, TSR_PLUGIN_ATTR_INTS);
  *v = a ? a->ints : NULL;
  *count = a ? a->count : 0;
  return a != NULL;
}
static bool afloats(ictx *c, const char *name, const float **v, size_t *count) {
  const tsr__attr *a = attr(c, name, TSR_PLUGIN_ATTR_FLOATS);
  *v = a ? a->floats : NULL;
  *count = a ? a->count : 0;
  return a != NULL;
}

static tsr_status missing_attr(ictx *c, const char *name) {
  return bad_model(c, "attribute '%s' is required", name);
}

/* An INTS attribute of exactly n entries, each >= min, into out; dflt fills an absent one. */
static tsr_status ints_attr_n(ictx *c, const char *name, size_t n, int64_t dflt, int64_t min,
                              int64_t *out) {
  const int64_t *v;
  size_t count;
  if (!aints(c, name, &v, &count)) {
    for (size_t i = 0; i < n; i++)
      out[i] = dflt;
    return NULL;
  }
  if (count != n)
    return bad(c, "attribute '%s' has %zu values, expected %zu", name, count, n);
  for (size_t i = 0; i < n; i++) {
    if (v[i] < min)
      return bad_model(c, "attribute '%s'[%zu] is %lld; it must be >= %lld", name, i, LL(v[i]),
                       LL(min));
    out[i] = v[i];
  }
  return NULL;
}

/* ---- Reading input data ---------------------------------------------------------------- */

static tsr_status need_data(ictx *c, uint32_t i) {
  return tsr__status_mark(
      unsupported(c, "output shape depends on input %u '%s', which is only known at run time", i,
                  in_name(c, i)),
      TSR__STATUS_NEEDS_INPUT_VALUES);
}

/* The elements of input i, an int32 or int64 tensor that an output shape depends on, as int64s
 * in scratch memory. UNSUPPORTED when its data is only known at run time. */
static tsr_status in_ints(ictx *c, uint32_t i, int64_t **out, size_t *count) {
  *out = NULL;
  *count = 0;
  const tsr__vshape *v = in(c, i);
  TSR_RETURN_IF_ERROR(want_index_dtype(c, i));
  if (!v->data)
    return need_data(c, i);
  size_t n = count_of(v);
  TMP_DIMS(o, n ? n : 1);
  const unsigned char *p = v->data;
  for (size_t k = 0; k < n; k++) {
    if (v->dtype == TSR_DTYPE_INT64) {
      memcpy(&o[k], p + 8 * k, 8);
    } else {
      int32_t t;
      memcpy(&t, p + 4 * k, 4);
      o[k] = t;
    }
  }
  *out = o;
  *count = n;
  return NULL;
}

static double half_to_double(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
  return (h & 0x8000) ? -v : v;
}

/* Element i of numeric data of any dtype, as a double. */
static double read_num(const void *data, int32_t dtype, size_t i) {
  const unsigned char *p = data;
#define RD(T, size)                                                                                \
  do {                                                                                             \
    T t;                                                                                           \
    memcpy(&t, p + (size)*i, size);                                                                \
    return (double)t;                                                                              \
  } while (0)
  switch (dtype) {
  case TSR_DTYPE_FLOAT32: RD(float, 4);
  case TSR_DTYPE_FLOAT64: RD(double, 8);
  case TSR_DTYPE_INT8: RD(int8_t, 1);
  case TSR_DTYPE_UINT8: RD(uint8_t, 1);
  case TSR_DTYPE_BOOL: RD(uint8_t, 1);
  case TSR_DTYPE_INT16: RD(int16_t, 2);
  case TSR_DTYPE_UINT16: RD(uint16_t, 2);
  case TSR_DTYPE_INT32: RD(int32_t, 4);
  case TSR_DTYPE_UINT32: RD(uint32_t, 4);
  case TSR_DTYPE_INT64: RD(int64_t, 8);
  case TSR_DTYPE_UINT64: RD(uint64_t, 8);
  case TSR_DTYPE_FLOAT16: {
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return half_to_double(h);
  }
  case TSR_DTYPE_BFLOAT16: {
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
  }
  default: return 0;
  }
#undef RD
}

/* The elements of numeric input i as doubles in scratch memory (UNSUPPORTED when unknown). */
static tsr_status in_nums(ictx *c, uint32_t i, double **out, size_t *count) {
  *out = NULL;
  *count = 0;
  const tsr__vshape *v = in(c, i);
  if (tsr_dtype_size((tsr_dtype)v->dtype) == 0)
    return bad_model(c, "input %u '%s' must be numeric, got %s", i, in_name(c, i), dt(v->dtype));
  if (!v->data)
    return need_data(c, i);
  size_t n = count_of(v), bytes;
  if (!tsr__mul_size(n ? n : 1, sizeof(double), &bytes))
    return oom(c);
  double *o = tmp(c, bytes);
  if (!o)
    return oom(c);
  for (size_t k = 0; k < n; k++)
    o[k] = read_num(v->data, v->dtype, k);
  *out = o;
  *count = n;
  return NULL;
}

/* True when element i is not zero (for floats: not +-0; NaN counts as non-zero). */
static bool elem_nonzero(const void *data, int32_t dtype, size_t i) {
  const unsigned char *p = data;
  size_t size = tsr_dtype_size((tsr_dtype)dtype);
  uint64_t bits = 0;
  memcpy(&bits, p + size * i, size); /* little-endian hosts */
  switch (dtype) {
  case TSR_DTYPE_FLOAT16:
  case TSR_DTYPE_BFLOAT16: return (bits & 0x7fffu) != 0;
  case TSR_DTYPE_FLOAT32: return (bits & 0x7fffffffu) != 0;
  case TSR_DTYPE_FLOAT64: return (bits & 0x7fffffffffffffffull) != 0;
  default: return bits != 0;
  }
}

/* ---- Broadcasting ---------------------------------------------------------------------- */

/* Numpy broadcasting of a (ra dims) and b (rb dims) into out (max(ra, rb) dims). */
static bool broadcast2(const int64_t *a, int64_t ra, const int64_t *b, int64_t rb, int64_t *out) {
  int64_t r = ra > rb ? ra : rb;
  for (int64_t i = 0; i < r; i++) {
    int64_t da = i < r - ra ? 1 : a[i - (r - ra)];
    int64_t db = i < r - rb ? 1 : b[i - (r - rb)];
    if (da == db || db == 1)
      out[i] = da;
    else if (da == 1)
      out[i] = db;
    else
      return false;
  }
  return true;
}

/* Broadcasts the present inputs among [first, first + count) into scratch dims. */
static tsr_status broadcast_inputs(ictx *c, uint32_t first, uint32_t count, int64_t *out_rank,
                                   int64_t **out_dims) {
  *out_rank = 0;
  *out_dims = NULL;
  int64_t r = 0;
  for (uint32_t i = first; i < first + count; i++)
    if (in(c, i) && in(c, i)->rank > r)
      r = in(c, i)->rank;
  TMP_DIMS(acc, r ? r : 1);
  int64_t acc_rank = 0;
  int64_t seen = 0;
  uint32_t first_seen = first;
  for (int64_t k = 0; k < r; k++)
    acc[k] = 1;
  for (uint32_t i = first; i < first + count; i++) {
    const tsr__vshape *x = in(c, i);
    if (!x)
      continue;
    for (int64_t j = 0; j < x->rank; j++) {
      int64_t pos = r - x->rank + j, d = x->dims[j], a = acc[pos];
      if (a == d || d == 1)
        continue;
      if (a == 1) {
        acc[pos] = d;
        continue;
      }
      const char *prev = dstr(c, acc + (r - acc_rank), acc_rank);
      if (seen == 1)
        return bad(c, "inputs '%s' %s and '%s' %s do not broadcast", in_name(c, first_seen), prev,
                   in_name(c, i), vstr(c, x));
      return bad(c, "input '%s' %s does not broadcast with %s, the shape of the inputs before it",
                 in_name(c, i), vstr(c, x), prev);
    }
    if (x->rank > acc_rank)
      acc_rank = x->rank;
    if (seen++ == 0)
      first_seen = i;
  }
  *out_rank = r;
  *out_dims = acc;
  return NULL;
}

static tsr_status broadcast_out(ictx *c, uint32_t first, uint32_t count, int32_t dtype) {
  int64_t r;
  int64_t *d;
  TSR_RETURN_IF_ERROR(broadcast_inputs(c, first, count, &r, &d));
  return set_out(c, 0, dtype, r, d);
}

/* Input i broadcasts one way to target (rank tr): ONNX's unidirectional broadcasting. */
static tsr_status want_unidirectional(ictx *c, uint32_t i, const int64_t *target, int64_t tr,
                                      const char *what) {
  const tsr__vshape *v = in(c, i);
  if (!v)
    return NULL;
  bool ok = v->rank <= tr;
  for (int64_t j = 0; ok && j < v->rank; j++) {
    int64_t d = v->dims[j], t = target[tr - v->rank + j];
    ok = d == t || d == 1;
  }
  if (ok)
    return NULL;
  return bad(c, "input %u '%s' %s does not broadcast to %s %s", i, in_name(c, i), vstr(c, v), what,
             dstr(c, target, tr));
}

/* ---- Elementwise ----------------------------------------------------------------------- */

/* Unary ops, activations, and everything else whose output is its first input's type. */
static tsr_status infer_same(ictx *c) { return same_as(c, 0, 0); }

static tsr_status infer_not(ictx *c) {
  TSR_RETURN_IF_ERROR(want_dtype(c, 0, TSR_DTYPE_BOOL));
  return same_as(c, 0, 0);
}

static tsr_status infer_isnan(ictx *c) {
  TSR_RETURN_IF_ERROR(want_float(c, 0));
  const tsr__vshape *x = in(c, 0);
  return set_out(c, 0, TSR_DTYPE_BOOL, x->rank, x->dims);
}

/* Binary ops before opset 7 broadcast the Caffe2 way: with broadcast = 0 (the default) A and B
 * have the same shape; with broadcast = 1, B's dims match a run of A's dims that starts at
 * `axis`, by default A's trailing dims (dims of 1 in B also pass). The output is A's shape. The
 * trailing case is numpy broadcasting as well, so such nodes run with the opset-7 rule and
 * kernels; B aligned anywhere else would need B reshaped first and is refused. */
static tsr_status legacy_broadcast(ictx *c) {
  if (c->opset >= 7)
    return NULL;
  const tsr__vshape *a = in(c, 0), *b = in(c, 1);
  if (aint(c, "broadcast", 0) == 0) {
    if (!dims_equal(a->dims, a->rank, b->dims, b->rank))
      return bad(c,
                 "inputs '%s' %s and '%s' %s differ in shape; before opset 7 that needs "
                 "broadcast = 1",
                 in_name(c, 0), vstr(c, a), in_name(c, 1), vstr(c, b));
    return NULL;
  }
  if (count_of(b) == 1 && b->rank <= a->rank)
    return NULL;
  if (b->rank > a->rank)
    return bad(c, "input '%s' %s has more dims than '%s' %s (broadcast = 1 before opset 7)",
               in_name(c, 1), vstr(c, b), in_name(c, 0), vstr(c, a));
  int64_t start = a->rank - b->rank;
  if (has_attr(c, "axis")) {
    int64_t axis = aint(c, "axis", 0);
    if (axis < 0)
      axis += a->rank;
    if (axis < 0 || axis > start)
      return bad(c, "attribute 'axis' %lld cannot align '%s' %s within '%s' %s", LL(axis),
                 in_name(c, 1), vstr(c, b), in_name(c, 0), vstr(c, a));
    if (axis != start)
      return old_opset(c,
                       "broadcasting '%s' %s from axis %lld of '%s' %s (broadcast = 1) is not "
                       "implemented; only B aligned with A's trailing dims is",
                       in_name(c, 1), vstr(c, b), LL(axis), in_name(c, 0), vstr(c, a));
  }
  for (int64_t k = 0; k < b->rank; k++)
    if (b->dims[k] != a->dims[start + k] && b->dims[k] != 1)
      return bad(c, "input '%s' %s does not match the trailing dims of '%s' %s (broadcast = 1)",
                 in_name(c, 1), vstr(c, b), in_name(c, 0), vstr(c, a));
  return NULL;
}

/* Add, Sub, Mul, Div, Bitwise*: one dtype in and out, multidirectional broadcasting. */
static tsr_status infer_arith(ictx *c) {
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  TSR_RETURN_IF_ERROR(legacy_broadcast(c));
  return broadcast_out(c, 0, 2, in(c, 0)->dtype);
}

static tsr_status infer_mod(ictx *c) {
  if (is_float(in(c, 0)->dtype) && aint(c, "fmod", 0) != 1)
    return bad_model(c, "attribute 'fmod' must be 1 for floating-point inputs (%s)",
                     dt(in(c, 0)->dtype));
  return infer_arith(c);
}

static tsr_status infer_bitshift(ictx *c) {
  const char *dir = astr(c, "direction", NULL);
  if (!dir)
    return missing_attr(c, "direction");
  if (strcmp(dir, "LEFT") != 0 && strcmp(dir, "RIGHT") != 0)
    return bad_model(c, "attribute 'direction' is '%s', expected LEFT or RIGHT", dir);
  return infer_arith(c);
}

/* Pow's exponent may have another type from opset 12 on. */
static tsr_status infer_pow(ictx *c) {
  if (c->opset < 12)
    TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  TSR_RETURN_IF_ERROR(legacy_broadcast(c));
  return broadcast_out(c, 0, 2, in(c, 0)->dtype);
}

/* Equal, Less, Greater, ...: bool results. */
static tsr_status infer_compare(ictx *c) {
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  TSR_RETURN_IF_ERROR(legacy_broadcast(c));
  return broadcast_out(c, 0, 2, TSR_DTYPE_BOOL);
}

/* And, Or, Xor: bool in, bool out. */
static tsr_status infer_logic(ictx *c) {
  TSR_RETURN_IF_ERROR(want_dtype(c, 0, TSR_DTYPE_BOOL));
  TSR_RETURN_IF_ERROR(want_dtype(c, 1, TSR_DTYPE_BOOL));
  TSR_RETURN_IF_ERROR(legacy_broadcast(c));
  return broadcast_out(c, 0, 2, TSR_DTYPE_BOOL);
}

/* Sum, Mean, Max, Min: any number of inputs; broadcasting from opset 8, equal shapes before. */
static tsr_status infer_variadic(ictx *c) {
  uint32_t n = c->n->n_inputs;
  for (uint32_t i = 1; i < n; i++)
    TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, i));
  if (c->opset < 8) {
    const tsr__vshape *x = in(c, 0);
    for (uint32_t i = 1; i < n; i++) {
      const tsr__vshape *y = in(c, i);
      if (y && !dims_equal(x->dims, x->rank, y->dims, y->rank))
        return bad(c, "inputs '%s' %s and '%s' %s differ in shape; broadcasting needs opset 8",
                   in_name(c, 0), vstr(c, x), in_name(c, i), vstr(c, y));
    }
  }
  return broadcast_out(c, 0, n, in(c, 0)->dtype);
}

static tsr_status infer_prelu(ictx *c) {
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  const tsr__vshape *x = in(c, 0);
  /* Before opset 7 the slope is one value or one per element; other shapes had no numpy
   * meaning (Caffe2 read a [C] slope per channel) and are refused. */
  const tsr__vshape *s = in(c, 1);
  if (c->opset < 7 && count_of(s) != 1 && !dims_equal(s->dims, s->rank, x->dims, x->rank))
    return old_opset(c,
                     "slope '%s' %s for input '%s' %s: before opset 7 only a single slope or "
                     "one per element is implemented",
                     in_name(c, 1), vstr(c, s), in_name(c, 0), vstr(c, x));
  TSR_RETURN_IF_ERROR(want_unidirectional(c, 1, x->dims, x->rank, "input"));
  return same_as(c, 0, 0);
}

static tsr_status infer_where(ictx *c) {
  TSR_RETURN_IF_ERROR(want_dtype(c, 0, TSR_DTYPE_BOOL));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 1, 2));
  return broadcast_out(c, 0, 3, in(c, 1)->dtype);
}

static tsr_status infer_clip(ictx *c) {
  if (c->opset < 11 && c->n->n_inputs > 1)
    return bad_model(c, "has %u inputs; before opset 11 min and max are attributes",
                     c->n->n_inputs);
  for (uint32_t i = 1; i < 3; i++) {
    TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, i));
    TSR_RETURN_IF_ERROR(want_scalar(c, i));
  }
  return same_as(c, 0, 0);
}

static tsr_status infer_dropout(ictx *c) {
  if (c->opset < 7 && aint(c, "is_test", 0) == 0)
    return old_opset(c, "training mode (is_test = 0, the default before opset 7) draws random "
                        "masks and is not implemented; is_test = 1 is");
  if (c->opset < 12 && c->n->n_inputs > 1)
    return bad_model(c, "has %u inputs; before opset 12 ratio is an attribute", c->n->n_inputs);
  TSR_RETURN_IF_ERROR(want_scalar(c, 1));
  TSR_RETURN_IF_ERROR(want_scalar(c, 2));
  TSR_RETURN_IF_ERROR(same_as(c, 0, 0));
  /* The mask is of the input's type before opset 10, bool since. */
  const tsr__vshape *x = in(c, 0);
  return set_out(c, 1, c->opset < 10 ? x->dtype : TSR_DTYPE_BOOL, x->rank, x->dims);
}

static bool dtype_known(int64_t t) {
  return t == TSR_DTYPE_STRING || (t > 0 && t < 64 && tsr_dtype_size((tsr_dtype)t) != 0);
}

static tsr_status infer_cast(ictx *c) {
  const tsr__attr *to = attr(c, "to", TSR_PLUGIN_ATTR_INT);
  if (!to)
    return missing_attr(c, "to");
  if (!dtype_known(to->i))
    return unsupported(c, "cast to dtype %lld is not supported", LL(to->i));
  const tsr__vshape *x = in(c, 0);
  return set_out(c, 0, (int32_t)to->i, x->rank, x->dims);
}

static tsr_status infer_castlike(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  return set_out(c, 0, in(c, 1)->dtype, x->rank, x->dims);
}

/* Softmax, LogSoftmax, Hardmax: the axis default moved from 1 to -1 in opset 13. */
static tsr_status infer_softmax(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t axis;
  TSR_RETURN_IF_ERROR(
      norm_axis(c, aint(c, "axis", c->opset < 13 ? 1 : -1), x->rank, "axis", &axis));
  return same_as(c, 0, 0);
}

static tsr_status infer_lp_normalization(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t axis;
  TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", -1), x->rank, "axis", &axis));
  return same_as(c, 0, 0);
}

static tsr_status infer_cumsum(ictx *c) {
  TSR_RETURN_IF_ERROR(want_index_dtype(c, 1));
  TSR_RETURN_IF_ERROR(want_scalar(c, 1));
  if (in(c, 1)->data) {
    int64_t *axis, a;
    size_t n;
    TSR_RETURN_IF_ERROR(in_ints(c, 1, &axis, &n));
    TSR_RETURN_IF_ERROR(norm_axis(c, axis[0], in(c, 0)->rank, "axis", &a));
  }
  return same_as(c, 0, 0);
}

static tsr_status infer_trilu(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 2, ANY_RANK));
  TSR_RETURN_IF_ERROR(want_dtype(c, 1, TSR_DTYPE_INT64));
  TSR_RETURN_IF_ERROR(want_scalar(c, 1));
  return same_as(c, 0, 0);
}

static tsr_status infer_eyelike(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 2, 2));
  const tsr__vshape *x = in(c, 0);
  int64_t dtype = aint(c, "dtype", x->dtype);
  if (!dtype_known(dtype))
    return bad_model(c, "attribute 'dtype' %lld is not a dtype", LL(dtype));
  return set_out(c, 0, (int32_t)dtype, 2, x->dims);
}

/* ---- Random generators (never folded) -------------------------------------------------- */

static tsr_status infer_random(ictx *c) {
  const int64_t *shape;
  size_t n;
  if (!aints(c, "shape", &shape, &n))
    return missing_attr(c, "shape");
  for (size_t i = 0; i < n; i++)
    if (shape[i] < 0)
      return bad_model(c, "attribute 'shape'[%zu] is %lld", i, LL(shape[i]));
  int64_t dtype = aint(c, "dtype", TSR_DTYPE_FLOAT32);
  if (!dtype_known(dtype))
    return bad_model(c, "attribute 'dtype' %lld is not a dtype", LL(dtype));
  return set_out(c, 0, (int32_t)dtype, (int64_t)n, shape);
}

static tsr_status infer_random_like(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t dtype = aint(c, "dtype", x->dtype);
  if (!dtype_known(dtype))
    return bad_model(c, "attribute 'dtype' %lld is not a dtype", LL(dtype));
  return set_out(c, 0, (int32_t)dtype, x->rank, x->dims);
}

static tsr_status infer_multinomial(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 2, 2));
  int64_t samples = aint(c, "sample_size", 1);
  if (samples < 0)
    return bad_model(c, "attribute 'sample_size' is %lld", LL(samples));
  int64_t dtype = aint(c, "dtype", TSR_DTYPE_INT32);
  if (dtype != TSR_DTYPE_INT32 && dtype != TSR_DTYPE_INT64)
    return bad_model(c, "attribute 'dtype' must be int32 or int64, got %lld", LL(dtype));
  int64_t d[2] = {in(c, 0)->dims[0], samples};
  return set_out(c, 0, (int32_t)dtype, 2, d);
}

/* ---- Normalization --------------------------------------------------------------------- */

static tsr_status infer_batchnorm(ictx *c) {
  if (c->opset < 7) {
    /* is_test = 1 with output Y alone is what opset 7 computes with one output. */
    if (aint(c, "is_test", 0) == 0)
      return old_opset(c, "training mode (is_test = 0, the default before opset 7) is not "
                          "implemented; is_test = 1 is");
    for (uint32_t k = 1; k < c->n->n_outputs; k++)
      if (out_id(c, k) >= 0)
        return old_opset(c,
                         "with is_test = 1 only output Y is implemented; output %u '%s' is "
                         "requested",
                         k, out_name(c, k));
  }
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 2, ANY_RANK));
  const tsr__vshape *x = in(c, 0);
  int64_t ch = x->dims[1];
  /* Before opset 9, spatial = 0 gives per-activation statistics shaped like x[1:]. */
  if (c->opset >= 9 || aint(c, "spatial", 1) != 0) {
    static const char *const roles[] = {"", "scale", "bias", "mean", "variance"};
    for (uint32_t i = 1; i < 5; i++)
      TSR_RETURN_IF_ERROR(want_vector(c, i, ch, roles[i]));
  }
  if (c->opset < 15)
    for (uint32_t i = 1; i < 5; i++)
      TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, i));
  uint32_t max_out = c->opset >= 14 ? 3 : 5;
  if (c->n->n_outputs > max_out)
    return bad_model(c, "has %u outputs; at opset %lld BatchNormalization has at most %u",
                     c->n->n_outputs, LL(c->opset), max_out);
  TSR_RETURN_IF_ERROR(same_as(c, 0, 0));
  /* Running and saved statistics are shaped like the mean input. */
  for (uint32_t k = 1; k < c->n->n_outputs; k++)
    TSR_RETURN_IF_ERROR(same_as(c, k, 3));
  return NULL;
}

static tsr_status infer_instancenorm(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 3, ANY_RANK));
  int64_t ch = in(c, 0)->dims[1];
  TSR_RETURN_IF_ERROR(want_vector(c, 1, ch, "scale per channel"));
  TSR_RETURN_IF_ERROR(want_vector(c, 2, ch, "bias per channel"));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  return same_as(c, 0, 0);
}

static tsr_status infer_layernorm(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t axis;
  TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", -1), x->rank, "axis", &axis));
  TSR_RETURN_IF_ERROR(
      want_unidirectional(c, 1, x->dims + axis, x->rank - axis, "the normalized shape"));
  TSR_RETURN_IF_ERROR(
      want_unidirectional(c, 2, x->dims + axis, x->rank - axis, "the normalized shape"));
  TSR_RETURN_IF_ERROR(same_as(c, 0, 0));
  /* Mean and InvStdDev keep the leading dims and have ones from `axis` on. */
  TMP_DIMS(d, x->rank ? x->rank : 1);
  for (int64_t i = 0; i < x->rank; i++)
    d[i] = i < axis ? x->dims[i] : 1;
  int64_t stash = aint(c, "stash_type", TSR_DTYPE_FLOAT32);
  if (!dtype_known(stash))
    return bad_model(c, "attribute 'stash_type' %lld is not a dtype", LL(stash));
  TSR_RETURN_IF_ERROR(set_out(c, 1, (int32_t)stash, x->rank, d));
  return set_out(c, 2, (int32_t)stash, x->rank, d);
}

static tsr_status infer_groupnorm(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 3, ANY_RANK));
  const tsr__attr *g = attr(c, "num_groups", TSR_PLUGIN_ATTR_INT);
  if (!g)
    return missing_attr(c, "num_groups");
  int64_t ch = in(c, 0)->dims[1];
  if (g->i < 1 || ch % g->i != 0)
    return bad(c, "input '%s' has %lld channels, which do not split into %lld groups",
               in_name(c, 0), LL(ch), LL(g->i));
  return same_as(c, 0, 0);
}

static tsr_status infer_lrn(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 3, ANY_RANK));
  const tsr__attr *size = attr(c, "size", TSR_PLUGIN_ATTR_INT);
  if (!size)
    return missing_attr(c, "size");
  if (size->i < 1)
    return bad_model(c, "attribute 'size' is %lld", LL(size->i));
  return same_as(c, 0, 0);
}

/* ---- Reductions ------------------------------------------------------------------------ */

/* Reduces dims of x over `axes` (normalised, duplicates refused) into scratch dims. */
static tsr_status reduce_dims(ictx *c, const tsr__vshape *x, const int64_t *axes, size_t n_axes,
                              bool keepdims, int64_t *out_rank, int64_t **out_dims) {
  *out_rank = 0;
  *out_dims = NULL;
  TMP_DIMS(d, x->rank ? x->rank : 1);
  unsigned char *mark = tmp(c, (size_t)x->rank + 1);
  if (!mark)
    return oom(c);
  memset(mark, 0, (size_t)x->rank + 1);
  for (size_t i = 0; i < n_axes; i++) {
    int64_t a;
    TSR_RETURN_IF_ERROR(norm_axis(c, axes[i], x->rank, "axis", &a));
    if (mark[a])
      return bad(c, "axis %lld is listed twice", LL(axes[i]));
    mark[a] = 1;
  }
  int64_t r = 0;
  for (int64_t i = 0; i < x->rank; i++) {
    if (!mark[i] && n_axes)
      d[r++] = x->dims[i];
    else if (keepdims)
      d[r++] = 1;
  }
  *out_rank = r;
  *out_dims = d;
  return NULL;
}

static tsr_status infer_reduce(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  /* Axes became an input in opset 13 for ReduceSum and in opset 18 for the others. */
  bool axes_input = strcmp(c->n->op_type, "ReduceSum") == 0 ? c->opset >= 13 : c->opset >= 18;
  bool keepdims = aint(c, "keepdims", 1) != 0;
  const int64_t *axes = NULL;
  size_t n_axes = 0;
  bool noop = false;
  if (axes_input) {
    noop = aint(c, "noop_with_empty_axes", 0) != 0;
    if (in(c, 1) && count_of(in(c, 1)) > 0) {
      int64_t *a;
      TSR_RETURN_IF_ERROR(in_ints(c, 1, &a, &n_axes));
      axes = a;
    }
  } else {
    if (c->n->n_inputs > 1)
      return bad_model(c, "has %u inputs; at opset %lld the axes are an attribute", c->n->n_inputs,
                       LL(c->opset));
    aints(c, "axes", &axes, &n_axes);
  }
  if (n_axes == 0 && noop)
    return same_as(c, 0, 0);
  int64_t r;
  int64_t *d;
  TSR_RETURN_IF_ERROR(reduce_dims(c, x, axes, n_axes, keepdims, &r, &d));
  return set_out(c, 0, x->dtype, r, d);
}

static tsr_status infer_argmax(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t axis = aint(c, "axis", 0);
  int64_t r;
  int64_t *d;
  TSR_RETURN_IF_ERROR(reduce_dims(c, x, &axis, 1, aint(c, "keepdims", 1) != 0, &r, &d));
  return set_out(c, 0, TSR_DTYPE_INT64, r, d);
}

/* ---- Convolution and pooling windows --------------------------------------------------- */

typedef struct window {
  size_t n;                              /* spatial dims */
  int64_t *kernel, *strides, *dilations; /* n each */
  int64_t *pads;                         /* 2n: begins, then ends */
  const char *auto_pad;
  bool ceil_mode;
} window;

static bool is_same_pad(const char *p) {
  return strcmp(p, "SAME_UPPER") == 0 || strcmp(p, "SAME_LOWER") == 0;
}

/* Reads strides, dilations, pads, auto_pad and ceil_mode for a kernel of n spatial dims. */
static tsr_status read_window(ictx *c, size_t n, const int64_t *kernel, window *w) {
  w->n = n;
  w->kernel = tmp_dims(c, n ? n : 1);
  w->strides = tmp_dims(c, n ? n : 1);
  w->dilations = tmp_dims(c, n ? n : 1);
  w->pads = tmp_dims(c, n ? 2 * n : 1);
  if (!w->kernel || !w->strides || !w->dilations || !w->pads)
    return oom(c);
  for (size_t i = 0; i < n; i++) {
    if (kernel[i] < 1)
      return bad(c, "kernel dim %zu is %lld; it must be >= 1", i, LL(kernel[i]));
    w->kernel[i] = kernel[i];
  }
  TSR_RETURN_IF_ERROR(ints_attr_n(c, "strides", n, 1, 1, w->strides));
  TSR_RETURN_IF_ERROR(ints_attr_n(c, "dilations", n, 1, 1, w->dilations));
  TSR_RETURN_IF_ERROR(ints_attr_n(c, "pads", 2 * n, 0, 0, w->pads));
  w->auto_pad = astr(c, "auto_pad", "NOTSET");
  if (!*w->auto_pad)
    w->auto_pad = "NOTSET";
  if (strcmp(w->auto_pad, "NOTSET") != 0 && strcmp(w->auto_pad, "VALID") != 0 &&
      !is_same_pad(w->auto_pad))
    return bad_model(c,
                     "attribute 'auto_pad' is '%s', expected NOTSET, SAME_UPPER, SAME_LOWER "
                     "or VALID",
                     w->auto_pad);
  w->ceil_mode = aint(c, "ceil_mode", 0) != 0;
  return NULL;
}

/* The output size along spatial axis i of a convolution or pooling window over `in`. */
static tsr_status window_out(ictx *c, const window *w, size_t i, int64_t in, int64_t *out) {
  int64_t s = w->strides[i], dk;
  if (!mul64(w->kernel[i] - 1, w->dilations[i], &dk) || !add64(dk, 1, &dk))
    return bad(c, "spatial axis %zu: the dilated kernel size overflows", i);
  if (is_same_pad(w->auto_pad)) {
    *out = in / s + (in % s != 0);
    return NULL;
  }
  int64_t pb = 0, pe = 0, span;
  if (strcmp(w->auto_pad, "NOTSET") == 0) {
    pb = w->pads[i];
    pe = w->pads[i + w->n];
  }
  if (!add64(in, pb, &span) || !add64(span, pe, &span))
    return bad(c, "spatial axis %zu: the padded input size overflows", i);
  if (span < dk)
    return bad(c,
               "spatial axis %zu: the kernel (%lld with dilation) is larger than the padded "
               "input (%lld)",
               i, LL(dk), LL(span));
  int64_t q = span - dk, o = q / s + 1;
  if (w->ceil_mode) {
    if (q % s)
      o++;
    /* A last window that would start in the end padding is dropped (as PyTorch and recent
     * onnxruntime do). */
    if ((o - 1) * s >= in + pb)
      o--;
  }
  *out = o;
  return NULL;
}

/* Conv, ConvInteger and QLinearConv: x and w are the inputs at ix and iw, the bias at ib. */
static tsr_status conv_core(ictx *c, uint32_t ix, uint32_t iw, uint32_t ib, int32_t dtype) {
  TSR_RETURN_IF_ERROR(want_rank(c, ix, 3, ANY_RANK));
  const tsr__vshape *x = in(c, ix), *w = in(c, iw);
  TSR_RETURN_IF_ERROR(want_rank(c, iw, x->rank, x->rank));
  int64_t group = aint(c, "group", 1), need;
  if (group < 1)
    return bad_model(c, "attribute 'group' is %lld", LL(group));
  if (!mul64(w->dims[1], group, &need))
    return bad_model(c, "attribute 'group' is too large");
  if (need != x->dims[1])
    return bad(c, "input '%s' %s has %lld channels, but weights '%s' %s with group %lld need %lld",
               in_name(c, ix), vstr(c, x), LL(x->dims[1]), in_name(c, iw), vstr(c, w), LL(group),
               LL(need));
  if (w->dims[0] % group != 0)
    return bad(c, "weights '%s' %s: %lld output channels do not split into %lld groups",
               in_name(c, iw), vstr(c, w), LL(w->dims[0]), LL(group));
  size_t n = (size_t)x->rank - 2;
  const int64_t *ks;
  size_t nk;
  if (aints(c, "kernel_shape", &ks, &nk) &&
      (nk != n || !dims_equal(ks, (int64_t)nk, w->dims + 2, (int64_t)n)))
    return bad(c, "attribute 'kernel_shape' %s does not match weights '%s' %s",
               dstr(c, ks, (int64_t)nk), in_name(c, iw), vstr(c, w));
  window win;
  TSR_RETURN_IF_ERROR(read_window(c, n, w->dims + 2, &win));
  win.ceil_mode = false;
  TMP_DIMS(d, x->rank);
  d[0] = x->dims[0];
  d[1] = w->dims[0];
  for (size_t i = 0; i < n; i++)
    TSR_RETURN_IF_ERROR(window_out(c, &win, i, x->dims[2 + i], &d[2 + i]));
  TSR_RETURN_IF_ERROR(want_vector(c, ib, w->dims[0], "one bias per output channel"));
  return set_out(c, 0, dtype, x->rank, d);
}

static tsr_status infer_conv(ictx *c) {
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  return conv_core(c, 0, 1, 2, in(c, 0)->dtype);
}

static tsr_status infer_conv_integer(ictx *c) {
  return conv_core(c, 0, 1, UINT32_MAX, TSR_DTYPE_INT32);
}

static tsr_status infer_qlinear_conv(ictx *c) {
  TSR_RETURN_IF_ERROR(
      want_vector(c, 8, in(c, 3)->rank > 0 ? in(c, 3)->dims[0] : 0, "one bias per output channel"));
  TSR_RETURN_IF_ERROR(want_dtype(c, 8, TSR_DTYPE_INT32));
  return conv_core(c, 0, 3, UINT32_MAX, in(c, 7)->dtype);
}

static tsr_status infer_conv_transpose(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 3, ANY_RANK));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  const tsr__vshape *x = in(c, 0), *w = in(c, 1);
  TSR_RETURN_IF_ERROR(want_rank(c, 1, x->rank, x->rank));
  int64_t group = aint(c, "group", 1), out_c;
  if (group < 1)
    return bad_model(c, "attribute 'group' is %lld", LL(group));
  if (w->dims[0] != x->dims[1])
    return bad(c, "input '%s' %s has %lld channels, but weights '%s' %s expect %lld", in_name(c, 0),
               vstr(c, x), LL(x->dims[1]), in_name(c, 1), vstr(c, w), LL(w->dims[0]));
  if (!mul64(w->dims[1], group, &out_c))
    return bad(c, "output channel count overflows");
  size_t n = (size_t)x->rank - 2;
  const int64_t *ks;
  size_t nk;
  if (aints(c, "kernel_shape", &ks, &nk) &&
      (nk != n || !dims_equal(ks, (int64_t)nk, w->dims + 2, (int64_t)n)))
    return bad(c, "attribute 'kernel_shape' %s does not match weights '%s' %s",
               dstr(c, ks, (int64_t)nk), in_name(c, 1), vstr(c, w));
  window win;
  TSR_RETURN_IF_ERROR(read_window(c, n, w->dims + 2, &win));
  TMP_DIMS(opad, n ? n : 1);
  TSR_RETURN_IF_ERROR(ints_attr_n(c, "output_padding", n, 0, 0, opad));
  TMP_DIMS(d, x->rank);
  d[0] = x->dims[0];
  d[1] = out_c;
  const int64_t *os;
  size_t nos;
  if (aints(c, "output_shape", &os, &nos)) {
    /* Given as the spatial dims, or (as some exporters write it) as the whole shape. */
    if (nos != n && nos != n + 2)
      return bad_model(c, "attribute 'output_shape' has %zu values, expected %zu", nos, n);
    for (size_t i = 0; i < n; i++) {
      d[2 + i] = os[nos - n + i];
      if (d[2 + i] < 0)
        return bad_model(c, "attribute 'output_shape' has a negative dim");
    }
    return set_out(c, 0, x->dtype, x->rank, d);
  }
  for (size_t i = 0; i < n; i++) {
    int64_t in_d = x->dims[2 + i], s = win.strides[i], o, dk;
    bool ok = true;
    if (is_same_pad(win.auto_pad)) {
      ok = mul64(in_d, s, &o);
    } else {
      int64_t pb = 0, pe = 0;
      if (strcmp(win.auto_pad, "NOTSET") == 0) {
        pb = win.pads[i];
        pe = win.pads[i + n];
      }
      ok = mul64(in_d - 1, s, &o) && mul64(win.kernel[i] - 1, win.dilations[i], &dk) &&
           add64(o, dk + 1, &o) && add64(o, opad[i], &o) && add64(o, -pb, &o) && add64(o, -pe, &o);
    }
    if (!ok)
      return bad(c, "spatial axis %zu: the output size overflows", i);
    if (o < 0)
      return bad(c, "spatial axis %zu: input size %lld gives a negative output size %lld", i,
                 LL(in_d), LL(o));
    d[2 + i] = o;
  }
  return set_out(c, 0, x->dtype, x->rank, d);
}

/* MaxPool, AveragePool, LpPool. */
static tsr_status infer_pool(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 3, ANY_RANK));
  const tsr__vshape *x = in(c, 0);
  size_t n = (size_t)x->rank - 2, nk;
  const int64_t *ks;
  if (!aints(c, "kernel_shape", &ks, &nk))
    return missing_attr(c, "kernel_shape");
  if (nk != n)
    return bad(c,
               "attribute 'kernel_shape' has %zu values, but input '%s' %s has %zu spatial "
               "dims",
               nk, in_name(c, 0), vstr(c, x), n);
  window win;
  TSR_RETURN_IF_ERROR(read_window(c, n, ks, &win));
  TMP_DIMS(d, x->rank);
  d[0] = x->dims[0];
  d[1] = x->dims[1];
  for (size_t i = 0; i < n; i++)
    TSR_RETURN_IF_ERROR(window_out(c, &win, i, x->dims[2 + i], &d[2 + i]));
  TSR_RETURN_IF_ERROR(set_out(c, 0, x->dtype, x->rank, d));
  return set_out(c, 1, TSR_DTYPE_INT64, x->rank, d); /* MaxPool's Indices */
}

static tsr_status infer_global_pool(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 3, ANY_RANK));
  const tsr__vshape *x = in(c, 0);
  TMP_DIMS(d, x->rank);
  for (int64_t i = 0; i < x->rank; i++)
    d[i] = i < 2 ? x->dims[i] : 1;
  return set_out(c, 0, x->dtype, x->rank, d);
}

static tsr_status infer_max_unpool(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 3, ANY_RANK));
  const tsr__vshape *x = in(c, 0);
  TSR_RETURN_IF_ERROR(want_dtype(c, 1, TSR_DTYPE_INT64));
  if (in(c, 2)) {
    int64_t *shape;
    size_t n;
    TSR_RETURN_IF_ERROR(in_ints(c, 2, &shape, &n));
    if ((int64_t)n != x->rank)
      return bad(c, "input 2 '%s' has %zu values, but input '%s' has rank %d", in_name(c, 2), n,
                 in_name(c, 0), x->rank);
    for (size_t i = 0; i < n; i++)
      if (shape[i] < 0)
        return bad(c, "input 2 '%s' has a negative dim", in_name(c, 2));
    return set_out(c, 0, x->dtype, x->rank, shape);
  }
  size_t n = (size_t)x->rank - 2, nk;
  const int64_t *ks;
  if (!aints(c, "kernel_shape", &ks, &nk))
    return missing_attr(c, "kernel_shape");
  if (nk != n)
    return bad(c, "attribute 'kernel_shape' has %zu values, expected %zu", nk, n);
  window win;
  TSR_RETURN_IF_ERROR(read_window(c, n, ks, &win));
  TMP_DIMS(d, x->rank);
  d[0] = x->dims[0];
  d[1] = x->dims[1];
  for (size_t i = 0; i < n; i++) {
    int64_t o;
    if (!mul64(x->dims[2 + i] - 1, win.strides[i], &o) || !add64(o, ks[i], &o))
      return bad(c, "spatial axis %zu: the output size overflows", i);
    o -= win.pads[i] + win.pads[i + n];
    if (o < 0)
      return bad(c, "spatial axis %zu: the output size is negative (%lld)", i, LL(o));
    d[2 + i] = o;
  }
  return set_out(c, 0, x->dtype, x->rank, d);
}

/* A STRING attribute that must be one of `allowed` (n of them); dflt when absent. */
static tsr_status want_choice(ictx *c, const char *name, const char *dflt,
                              const char *const *allowed, size_t n) {
  const char *v = astr(c, name, dflt);
  for (size_t i = 0; i < n; i++)
    if (strcmp(v, allowed[i]) == 0)
      return NULL;
  char list[256] = "";
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(list);
    snprintf(list + len, sizeof list - len, "%s%s", i ? (i + 1 < n ? ", " : " or ") : "",
             allowed[i]);
  }
  return bad_model(c, "attribute '%s' is '%s', expected %s", name, v, list);
}

static tsr_status infer_roi_align(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 4, 4));
  TSR_RETURN_IF_ERROR(want_rank(c, 1, 2, 2));
  TSR_RETURN_IF_ERROR(want_rank(c, 2, 1, 1));
  TSR_RETURN_IF_ERROR(want_float(c, 0));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  TSR_RETURN_IF_ERROR(want_index_dtype(c, 2));
  static const char *const modes[] = {"avg", "max"};
  static const char *const transforms[] = {"half_pixel", "output_half_pixel"};
  TSR_RETURN_IF_ERROR(want_choice(c, "mode", "avg", modes, 2));
  if (c->opset >= 16)
    TSR_RETURN_IF_ERROR(
        want_choice(c, "coordinate_transformation_mode", "half_pixel", transforms, 2));
  if (aint(c, "sampling_ratio", 0) < 0)
    return bad_model(c, "attribute 'sampling_ratio' is %lld; it must be >= 0",
                     LL(aint(c, "sampling_ratio", 0)));
  const tsr__vshape *x = in(c, 0), *rois = in(c, 1);
  if (rois->dims[1] != 4)
    return bad(c, "input 1 '%s' %s must have shape [num_rois, 4]", in_name(c, 1), vstr(c, rois));
  TSR_RETURN_IF_ERROR(want_vector(c, 2, rois->dims[0], "one batch index per roi"));
  int64_t d[4] = {rois->dims[0], x->dims[1], aint(c, "output_height", 1),
                  aint(c, "output_width", 1)};
  if (d[2] < 0 || d[3] < 0)
    return bad_model(c, "output_height and output_width must be >= 0");
  return set_out(c, 0, x->dtype, 4, d);
}

/* ---- Matrix products ------------------------------------------------------------------- */

/* Numpy matmul of inputs ia and ib: 1-D operands are promoted and the added dim removed,
 * batch dims broadcast. */
static tsr_status matmul_shape(ictx *c, uint32_t ia, uint32_t ib, int32_t dtype) {
  const tsr__vshape *a = in(c, ia), *b = in(c, ib);
  if (a->rank < 1 || b->rank < 1)
    return bad(c, "inputs '%s' %s and '%s' %s: matrix products need rank >= 1", in_name(c, ia),
               vstr(c, a), in_name(c, ib), vstr(c, b));
  int64_t ka = a->dims[a->rank - 1], kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
  if (ka != kb)
    return bad(c, "inputs '%s' %s and '%s' %s: inner dimensions %lld and %lld differ",
               in_name(c, ia), vstr(c, a), in_name(c, ib), vstr(c, b), LL(ka), LL(kb));
  int64_t ba = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0;
  int64_t br = ba > bb ? ba : bb;
  TMP_DIMS(d, br + 2);
  if (!broadcast2(a->dims, ba, b->dims, bb, d))
    return bad(c, "inputs '%s' %s and '%s' %s: batch dimensions do not broadcast", in_name(c, ia),
               vstr(c, a), in_name(c, ib), vstr(c, b));
  int64_t r = br;
  if (a->rank > 1)
    d[r++] = a->dims[a->rank - 2];
  if (b->rank > 1)
    d[r++] = b->dims[b->rank - 1];
  return set_out(c, 0, dtype, r, d);
}

static tsr_status infer_matmul(ictx *c) {
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  return matmul_shape(c, 0, 1, in(c, 0)->dtype);
}

static tsr_status want_8bit(ictx *c, uint32_t i) {
  const tsr__vshape *v = in(c, i);
  if (!v || v->dtype == TSR_DTYPE_INT8 || v->dtype == TSR_DTYPE_UINT8)
    return NULL;
  return bad_model(c, "input %u '%s' must be int8 or uint8, got %s", i, in_name(c, i),
                   dt(v->dtype));
}

static tsr_status infer_matmul_integer(ictx *c) {
  TSR_RETURN_IF_ERROR(want_8bit(c, 0));
  TSR_RETURN_IF_ERROR(want_8bit(c, 1));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 1, 3));
  return matmul_shape(c, 0, 1, TSR_DTYPE_INT32);
}

static tsr_status infer_qlinear_matmul(ictx *c) {
  TSR_RETURN_IF_ERROR(want_8bit(c, 0));
  TSR_RETURN_IF_ERROR(want_8bit(c, 3));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 3, 5));
  return matmul_shape(c, 0, 3, in(c, 7)->dtype);
}

static tsr_status infer_gemm(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 2, 2));
  TSR_RETURN_IF_ERROR(want_rank(c, 1, 2, 2));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  if (c->opset < 11 && !in(c, 2))
    return bad_model(c, "input 2 'C' is required before opset 11");
  const tsr__vshape *a = in(c, 0), *b = in(c, 1);
  bool ta = aint(c, "transA", 0) != 0, tb = aint(c, "transB", 0) != 0;
  int64_t m = a->dims[ta ? 1 : 0], ka = a->dims[ta ? 0 : 1];
  int64_t kb = b->dims[tb ? 1 : 0], n = b->dims[tb ? 0 : 1];
  if (ka != kb)
    return bad(c, "inputs '%s' %s%s and '%s' %s%s: inner dimensions %lld and %lld differ",
               in_name(c, 0), vstr(c, a), ta ? " (transposed)" : "", in_name(c, 1), vstr(c, b),
               tb ? " (transposed)" : "", LL(ka), LL(kb));
  int64_t d[2] = {m, n};
  const tsr__vshape *cv = in(c, 2);
  if (c->opset < 7 && cv && aint(c, "broadcast", 0) == 0 && !dims_equal(cv->dims, cv->rank, d, 2))
    return bad(c, "input 2 '%s' %s must be %s: before opset 7 C broadcasts only with broadcast = 1",
               in_name(c, 2), vstr(c, cv), dstr(c, d, 2));
  TSR_RETURN_IF_ERROR(want_unidirectional(c, 2, d, 2, "the product"));
  return set_out(c, 0, a->dtype, 2, d);
}

static tsr_status infer_einsum(ictx *c);

/* ---- Quantization ---------------------------------------------------------------------- */

/* Scale and zero point of (De)QuantizeLinear: a scalar, or a vector along `axis`. */
static tsr_status check_quant_params(ictx *c, const tsr__vshape *x, uint32_t is, uint32_t iz) {
  const tsr__vshape *s = in(c, is), *z = in(c, iz);
  if (s->rank == 1 && s->dims[0] != 1) {
    int64_t axis;
    TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", 1), x->rank, "axis", &axis));
    if (s->dims[0] != x->dims[axis])
      return bad(c, "scale '%s' %s does not match input '%s' %s along axis %lld", in_name(c, is),
                 vstr(c, s), in_name(c, 0), vstr(c, x), LL(axis));
  } else if (s->rank > 1 && s->rank != x->rank) {
    return bad(c, "scale '%s' %s must be a scalar, a vector or (blocked) of the input's rank",
               in_name(c, is), vstr(c, s));
  }
  if (z && !dims_equal(s->dims, s->rank, z->dims, z->rank))
    return bad(c, "scale '%s' %s and zero point '%s' %s differ in shape", in_name(c, is),
               vstr(c, s), in_name(c, iz), vstr(c, z));
  return NULL;
}

static tsr_status infer_quantize(ictx *c) {
  const tsr__vshape *x = in(c, 0), *z = in(c, 2);
  TSR_RETURN_IF_ERROR(check_quant_params(c, x, 1, 2));
  int32_t dtype = z ? z->dtype : (int32_t)aint(c, "output_dtype", 0);
  if (!dtype)
    dtype = TSR_DTYPE_UINT8;
  return set_out(c, 0, dtype, x->rank, x->dims);
}

static tsr_status infer_dequantize(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  TSR_RETURN_IF_ERROR(check_quant_params(c, x, 1, 2));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  /* float32 before opset 19, the scale's type since (float32 there anyway). */
  return set_out(c, 0, in(c, 1)->dtype, x->rank, x->dims);
}

static tsr_status infer_dynamic_quantize(ictx *c) {
  TSR_RETURN_IF_ERROR(want_dtype(c, 0, TSR_DTYPE_FLOAT32));
  const tsr__vshape *x = in(c, 0);
  TSR_RETURN_IF_ERROR(set_out(c, 0, TSR_DTYPE_UINT8, x->rank, x->dims));
  TSR_RETURN_IF_ERROR(set_out(c, 1, TSR_DTYPE_FLOAT32, 0, NULL));
  return set_out(c, 2, TSR_DTYPE_UINT8, 0, NULL);
}

/* ---- Recurrent ------------------------------------------------------------------------- */

/* RNN, GRU, LSTM: X [seq, batch, input] ([batch, seq, input] with layout 1), W [dirs,
 * gates * hidden, input], R [dirs, gates * hidden, hidden]. */
static tsr_status infer_rnn(ictx *c) {
  int64_t gates = c->n->op_type[0] == 'L' ? 4 : c->n->op_type[0] == 'G' ? 3 : 1;
  for (uint32_t i = 0; i < 3; i++)
    TSR_RETURN_IF_ERROR(want_rank(c, i, 3, 3));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 1));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  const tsr__vshape *x = in(c, 0), *w = in(c, 1), *r = in(c, 2);
  int64_t layout = c->opset >= 14 ? aint(c, "layout", 0) : 0;
  if (layout != 0 && layout != 1)
    return bad_model(c, "attribute 'layout' is %lld", LL(layout));
  int64_t seq = x->dims[layout ? 1 : 0], batch = x->dims[layout ? 0 : 1];
  const char *dir = astr(c, "direction", "forward");
  int64_t dirs = strcmp(dir, "bidirectional") == 0 ? 2 : 1;
  if (dirs == 1 && strcmp(dir, "forward") != 0 && strcmp(dir, "reverse") != 0)
    return bad_model(c, "attribute 'direction' is '%s'", dir);
  int64_t hidden = aint(c, "hidden_size", -1);
  if (hidden < 0)
    hidden = r->dims[2];
  int64_t gh;
  if (!mul64(gates, hidden, &gh))
    return bad_model(c, "attribute 'hidden_size' is too large");
  if (w->dims[0] != dirs || w->dims[1] != gh || w->dims[2] != x->dims[2])
    return bad(c,
               "weights '%s' %s do not match [%lld,%lld,%lld] (directions, %lld gates x "
               "hidden %lld, input size)",
               in_name(c, 1), vstr(c, w), LL(dirs), LL(gh), LL(x->dims[2]), LL(gates), LL(hidden));
  if (r->dims[0] != dirs || r->dims[1] != gh || r->dims[2] != hidden)
    return bad(c, "recurrence weights '%s' %s do not match [%lld,%lld,%lld]", in_name(c, 2),
               vstr(c, r), LL(dirs), LL(gh), LL(hidden));
  int64_t y[4], yh[3];
  if (layout == 0) {
    y[0] = seq, y[1] = dirs, y[2] = batch, y[3] = hidden;
    yh[0] = dirs, yh[1] = batch, yh[2] = hidden;
  } else {
    y[0] = batch, y[1] = seq, y[2] = dirs, y[3] = hidden;
    yh[0] = batch, yh[1] = dirs, yh[2] = hidden;
  }
  TSR_RETURN_IF_ERROR(set_out(c, 0, x->dtype, 4, y));
  TSR_RETURN_IF_ERROR(set_out(c, 1, x->dtype, 3, yh));
  return set_out(c, 2, x->dtype, 3, yh); /* LSTM's Y_c */
}

/* ---- Reshaping ------------------------------------------------------------------------- */

static tsr_status infer_reshape(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  const int64_t *shape;
  size_t n;
  if (c->opset < 5) {
    /* Reshape-1: the shape is an attribute. */
    if (c->n->n_inputs > 1)
      return bad_model(c, "has %u inputs; before opset 5 the shape is an attribute",
                       c->n->n_inputs);
    if (!aints(c, "shape", &shape, &n))
      return missing_attr(c, "shape");
  } else {
    if (!in(c, 1))
      return bad_model(c, "input 1 'shape' is required from opset 5");
    int64_t *s;
    TSR_RETURN_IF_ERROR(want_rank(c, 1, 1, 1));
    TSR_RETURN_IF_ERROR(in_ints(c, 1, &s, &n));
    shape = s;
  }
  bool allowzero = c->opset >= 14 && aint(c, "allowzero", 0) != 0;
  TMP_DIMS(d, n ? n : 1);
  int64_t known = 1, infer_at = -1, total;
  if (!dims_product(x->dims, 0, x->rank, &total))
    return bad(c, "input size overflows");
  for (size_t i = 0; i < n; i++) {
    int64_t s = shape[i];
    if (s == 0 && !allowzero) {
      if ((int64_t)i >= x->rank)
        return bad(c,
                   "shape '%s' %s: entry %zu is 0 (copy the input dim), but input '%s' %s "
                   "has rank %d",
                   in_name(c, 1), dstr(c, shape, (int64_t)n), i, in_name(c, 0), vstr(c, x),
                   x->rank);
      s = x->dims[i];
    } else if (s == -1) {
      if (infer_at >= 0)
        return bad(c, "shape '%s' %s has more than one -1", in_name(c, 1),
                   dstr(c, shape, (int64_t)n));
      infer_at = (int64_t)i;
      d[i] = 1;
      continue;
    } else if (s < 0) {
      return bad(c, "shape '%s' %s has a negative entry %lld", in_name(c, 1),
                 dstr(c, shape, (int64_t)n), LL(s));
    }
    d[i] = s;
    if (!mul64(known, s, &known))
      return bad(c, "shape '%s' overflows", in_name(c, 1));
  }
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0)
      return bad(c,
                 "cannot reshape input '%s' %s (%lld elements) to %s: the -1 cannot be "
                 "inferred",
                 in_name(c, 0), vstr(c, x), LL(total), dstr(c, shape, (int64_t)n));
    d[infer_at] = total / known;
  } else if (known != total) {
    return bad(c, "cannot reshape input '%s' %s (%lld elements) to %s (%lld elements)",
               in_name(c, 0), vstr(c, x), LL(total), dstr(c, d, (int64_t)n), LL(known));
  }
  return set_out(c, 0, x->dtype, (int64_t)n, d);
}

static tsr_status infer_flatten(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t axis = aint(c, "axis", 1), lo = c->opset >= 11 ? -(int64_t)x->rank : 0;
  if (axis < lo || axis > x->rank)
    return bad(c, "axis %lld is out of range for input '%s' %s (expected %lld..%d)", LL(axis),
               in_name(c, 0), vstr(c, x), LL(lo), x->rank);
  if (axis < 0)
    axis += x->rank;
  int64_t d[2];
  if (!dims_product(x->dims, 0, axis, &d[0]) || !dims_product(x->dims, axis, x->rank, &d[1]))
    return bad(c, "input size overflows");
  return set_out(c, 0, x->dtype, 2, d);
}

static tsr_status infer_transpose(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t r = x->rank;
  TMP_DIMS(d, r ? r : 1);
  const int64_t *perm;
  size_t n;
  if (!aints(c, "perm", &perm, &n)) {
    for (int64_t i = 0; i < r; i++)
      d[i] = x->dims[r - 1 - i];
    return set_out(c, 0, x->dtype, r, d);
  }
  if ((int64_t)n != r)
    return bad(c, "attribute 'perm' %s has %zu entries, but input '%s' %s has rank %lld",
               dstr(c, perm, (int64_t)n), n, in_name(c, 0), vstr(c, x), LL(r));
  unsigned char *seen = tmp(c, (size_t)r + 1);
  if (!seen)
    return oom(c);
  memset(seen, 0, (size_t)r + 1);
  for (int64_t i = 0; i < r; i++) {
    if (perm[i] < 0 || perm[i] >= r || seen[perm[i]])
      return bad(c, "attribute 'perm' %s is not a permutation of 0..%lld",
                 dstr(c, perm, (int64_t)n), LL(r - 1));
    seen[perm[i]] = 1;
    d[i] = x->dims[perm[i]];
  }
  return set_out(c, 0, x->dtype, r, d);
}

static tsr_status infer_concat(ictx *c) {
  const tsr__attr *ax = attr(c, "axis", TSR_PLUGIN_ATTR_INT);
  /* The axis is required from opset 4; Concat-1 defaults it to 1. */
  const tsr__attr dflt = {.type = TSR_PLUGIN_ATTR_INT, .i = 1};
  if (!ax && c->opset < 4 && !has_attr(c, "axis"))
    ax = &dflt;
  if (!ax)
    return missing_attr(c, "axis");
  uint32_t first = UINT32_MAX;
  for (uint32_t i = 0; i < c->n->n_inputs && first == UINT32_MAX; i++)
    if (in(c, i))
      first = i;
  const tsr__vshape *x = in(c, first);
  int64_t axis;
  TSR_RETURN_IF_ERROR(norm_axis(c, ax->i, x->rank, "axis", &axis));
  TMP_DIMS(d, x->rank);
  copy_dims(d, x);
  d[axis] = 0;
  for (uint32_t i = first; i < c->n->n_inputs; i++) {
    const tsr__vshape *y = in(c, i);
    if (!y)
      continue;
    TSR_RETURN_IF_ERROR(want_same_dtype(c, first, i));
    bool ok = y->rank == x->rank;
    for (int64_t k = 0; ok && k < x->rank; k++)
      ok = k == axis || y->dims[k] == x->dims[k];
    if (!ok)
      return bad(c, "inputs '%s' %s and '%s' %s differ in shape outside axis %lld",
                 in_name(c, first), vstr(c, x), in_name(c, i), vstr(c, y), LL(axis));
    if (!add64(d[axis], y->dims[axis], &d[axis]))
      return bad(c, "output size overflows");
  }
  return set_out(c, 0, x->dtype, x->rank, d);
}

static tsr_status infer_split(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t axis;
  TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", 0), x->rank, "axis", &axis));
  uint32_t n = c->n->n_outputs;
  int64_t dim = x->dims[axis];
  const int64_t *split = NULL;
  size_t ns = 0;
  if (c->opset < 2 && in(c, 1)) {
    /* Split-1 may take the lengths as an input of the data's type. */
    double *v;
    TSR_RETURN_IF_ERROR(in_nums(c, 1, &v, &ns));
    TMP_DIMS(s, ns ? ns : 1);
    for (size_t i = 0; i < ns; i++) {
      if (!(v[i] >= 0 && v[i] <= (double)INT64_MAX / 2))
        return bad(c, "input 1 '%s' has an invalid length %g", in_name(c, 1), v[i]);
      s[i] = (int64_t)v[i];
    }
    split = s;
  } else if (c->opset < 13) {
    if (c->opset >= 2 && c->n->n_inputs > 1)
      return bad_model(c, "has %u inputs; before opset 13 'split' is an attribute", c->n->n_inputs);
    aints(c, "split", &split, &ns);
  } else if (in(c, 1)) {
    int64_t *s;
    TSR_RETURN_IF_ERROR(in_ints(c, 1, &s, &ns));
    split = s;
  }
  TMP_DIMS(d, x->rank);
  copy_dims(d, x);
  if (split) {
    if (ns != n)
      return bad(c, "split %s has %zu entries, but the node has %u outputs",
                 dstr(c, split, (int64_t)ns), ns, n);
    int64_t sum = 0;
    for (size_t i = 0; i < ns; i++)
      if (split[i] < 0 || !add64(sum, split[i], &sum))
        return bad(c, "split %s has a negative entry", dstr(c, split, (int64_t)ns));
    if (sum != dim)
      return bad(c, "split %s adds up to %lld, but input '%s' %s has %lld along axis %lld",
                 dstr(c, split, (int64_t)ns), LL(sum), in_name(c, 0), vstr(c, x), LL(dim),
                 LL(axis));
    for (uint32_t k = 0; k < n; k++) {
      d[axis] = split[k];
      TSR_RETURN_IF_ERROR(set_out(c, k, x->dtype, x->rank, d));
    }
    return NULL;
  }
  int64_t parts = c->opset >= 18 ? aint(c, "num_outputs", 0) : 0;
  if (parts && parts != (int64_t)n)
    return bad_model(c, "attribute 'num_outputs' is %lld, but the node has %u outputs", LL(parts),
                     n);
  /* Equal parts; from opset 18 (num_outputs) the last one may be smaller. */
  int64_t chunk = dim / n;
  if (dim % n != 0) {
    if (!parts)
      return bad(c, "input '%s' %s: %lld along axis %lld does not split into %u equal parts",
                 in_name(c, 0), vstr(c, x), LL(dim), LL(axis), n);
    chunk = dim / n + 1;
    if (chunk * (n - 1) > dim)
      return bad(c, "input '%s' %s: %lld along axis %lld cannot be split into %u parts of %lld",
                 in_name(c, 0), vstr(c, x), LL(dim), LL(axis), n, LL(chunk));
  }
  for (uint32_t k = 0; k < n; k++) {
    d[axis] = k + 1 < n ? chunk : dim - chunk * (n - 1);
    TSR_RETURN_IF_ERROR(set_out(c, k, x->dtype, x->rank, d));
  }
  return NULL;
}

/* The number of elements Slice takes from a dim of size `dim`. */
static int64_t slice_len(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (dim == 0)
    return 0;
  if (start < 0)
    start += dim;
  if (end < 0)
    end += dim;
  if (step > 0) {
    start = start < 0 ? 0 : start > dim ? dim : start;
    end = end < 0 ? 0 : end > dim ? dim : end;
    return end <= start ? 0 : (int64_t)((uint64_t)(end - start - 1) / (uint64_t)step + 1);
  }
  start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
  end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
  uint64_t ustep = (uint64_t)(-(step + 1)) + 1; /* -step without overflow at INT64_MIN */
  return start <= end ? 0 : (int64_t)((uint64_t)(start - end - 1) / ustep + 1);
}

static tsr_status infer_slice(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  const int64_t *starts, *ends, *axes = NULL, *steps = NULL;
  size_t ns, ne, na = 0, nst = 0;
  if (c->opset < 10) {
    if (c->n->n_inputs > 1)
      return bad_model(c, "has %u inputs; before opset 10 starts and ends are attributes",
                       c->n->n_inputs);
    if (!aints(c, "starts", &starts, &ns))
      return missing_attr(c, "starts");
    if (!aints(c, "ends", &ends, &ne))
      return missing_attr(c, "ends");
    if (aints(c, "axes", &axes, &na) && na != ns)
      return bad(c, "attribute 'axes' has %zu entries, 'starts' %zu", na, ns);
  } else {
    if (!in(c, 1) || !in(c, 2))
      return bad_model(c, "inputs 'starts' and 'ends' are required");
    int64_t *s, *e, *a = NULL, *st = NULL;
    TSR_RETURN_IF_ERROR(in_ints(c, 1, &s, &ns));
    TSR_RETURN_IF_ERROR(in_ints(c, 2, &e, &ne));
    if (in(c, 3))
      TSR_RETURN_IF_ERROR(in_ints(c, 3, &a, &na));
    if (in(c, 4))
      TSR_RETURN_IF_ERROR(in_ints(c, 4, &st, &nst));
    starts = s, ends = e, axes = a, steps = st;
    if (axes && na != ns)
      return bad(c, "input 3 '%s' has %zu entries, 'starts' %zu", in_name(c, 3), na, ns);
    if (steps && nst != ns)
      return bad(c, "input 4 '%s' has %zu entries, 'starts' %zu", in_name(c, 4), nst, ns);
  }
  if (ne != ns)
    return bad(c, "starts has %zu entries but ends has %zu", ns, ne);
  if (!axes && (int64_t)ns > x->rank)
    return bad(c, "%zu starts for input '%s' %s of rank %d", ns, in_name(c, 0), vstr(c, x),
               x->rank);
  TMP_DIMS(d, x->rank ? x->rank : 1);
  copy_dims(d, x);
  unsigned char *seen = tmp(c, (size_t)x->rank + 1);
  if (!seen)
    return oom(c);
  memset(seen, 0, (size_t)x->rank + 1);
  for (size_t i = 0; i < ns; i++) {
    int64_t a = (int64_t)i, step = steps ? steps[i] : 1;
    if (axes)
      TSR_RETURN_IF_ERROR(norm_axis(c, axes[i], x->rank, "axis", &a));
    if (seen[a])
      return bad(c, "axis %lld is sliced twice", LL(a));
    seen[a] = 1;
    if (step == 0)
      return bad(c, "step %zu is 0", i);
    d[a] = slice_len(x->dims[a], starts[i], ends[i], step);
  }
  return set_out(c, 0, x->dtype, x->rank, d);
}

static tsr_status infer_squeeze(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  const int64_t *axes = NULL;
  size_t n = 0;
  if (c->opset < 13) {
    if (c->n->n_inputs > 1)
      return bad_model(c, "has %u inputs; before opset 13 the axes are an attribute",
                       c->n->n_inputs);
    aints(c, "axes", &axes, &n);
  } else if (in(c, 1)) {
    int64_t *a;
    TSR_RETURN_IF_ERROR(in_ints(c, 1, &a, &n));
    axes = a;
  }
  unsigned char *drop = tmp(c, (size_t)x->rank + 1);
  TMP_DIMS(d, x->rank ? x->rank : 1);
  if (!drop)
    return oom(c);
  memset(drop, 0, (size_t)x->rank + 1);
  for (size_t i = 0; i < n; i++) {
    int64_t a;
    TSR_RETURN_IF_ERROR(norm_axis(c, axes[i], x->rank, "axis", &a));
    if (x->dims[a] != 1)
      return bad(c, "cannot squeeze axis %lld of input '%s' %s: its size is %lld, not 1",
                 LL(axes[i]), in_name(c, 0), vstr(c, x), LL(x->dims[a]));
    drop[a] = 1;
  }
  int64_t r = 0;
  for (int64_t i = 0; i < x->rank; i++)
    if (!(n ? drop[i] : x->dims[i] == 1))
      d[r++] = x->dims[i];
  return set_out(c, 0, x->dtype, r, d);
}

static tsr_status infer_unsqueeze(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  const int64_t *axes = NULL;
  size_t n = 0;
  if (c->opset < 13) {
    if (c->n->n_inputs > 1)
      return bad_model(c, "has %u inputs; before opset 13 the axes are an attribute",
                       c->n->n_inputs);
    if (!aints(c, "axes", &axes, &n))
      return missing_attr(c, "axes");
  } else {
    if (!in(c, 1))
      return bad_model(c, "input 1 'axes' is required from opset 13");
    int64_t *a;
    TSR_RETURN_IF_ERROR(in_ints(c, 1, &a, &n));
    axes = a;
  }
  int64_t r = x->rank + (int64_t)n;
  unsigned char *add = tmp(c, (size_t)r + 1);
  TMP_DIMS(d, r ? r : 1);
  if (!add)
    return oom(c);
  memset(add, 0, (size_t)r + 1);
  for (size_t i = 0; i < n; i++) {
    int64_t a;
    TSR_RETURN_IF_ERROR(norm_axis(c, axes[i], r, "axis", &a));
    if (add[a])
      return bad(c, "axis %lld is listed twice", LL(axes[i]));
    add[a] = 1;
  }
  for (int64_t i = 0, j = 0; i < r; i++)
    d[i] = add[i] ? 1 : x->dims[j++];
  return set_out(c, 0, x->dtype, r, d);
}

static tsr_status infer_expand(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t *shape;
  size_t n;
  TSR_RETURN_IF_ERROR(want_rank(c, 1, 1, 1));
  TSR_RETURN_IF_ERROR(in_ints(c, 1, &shape, &n));
  for (size_t i = 0; i < n; i++)
    if (shape[i] < 0)
      return bad(c, "shape '%s' %s has a negative entry", in_name(c, 1),
                 dstr(c, shape, (int64_t)n));
  int64_t r = x->rank > (int64_t)n ? x->rank : (int64_t)n;
  TMP_DIMS(d, r ? r : 1);
  if (!broadcast2(x->dims, x->rank, shape, (int64_t)n, d))
    return bad(c, "input '%s' %s does not broadcast with shape %s", in_name(c, 0), vstr(c, x),
               dstr(c, shape, (int64_t)n));
  return set_out(c, 0, x->dtype, r, d);
}

static tsr_status infer_tile(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t *reps;
  size_t n;
  TSR_RETURN_IF_ERROR(want_rank(c, 1, 1, 1));
  TSR_RETURN_IF_ERROR(in_ints(c, 1, &reps, &n));
  if ((int64_t)n != x->rank)
    return bad(c, "repeats '%s' has %zu entries, but input '%s' %s has rank %d", in_name(c, 1), n,
               in_name(c, 0), vstr(c, x), x->rank);
  TMP_DIMS(d, n ? n : 1);
  for (size_t i = 0; i < n; i++) {
    if (reps[i] < 0)
      return bad(c, "repeats '%s'[%zu] is negative", in_name(c, 1), i);
    if (!mul64(x->dims[i], reps[i], &d[i]))
      return bad(c, "output dim %zu (%lld x %lld) overflows", i, LL(x->dims[i]), LL(reps[i]));
  }
  return set_out(c, 0, x->dtype, (int64_t)n, d);
}

static tsr_status infer_pad(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  const int64_t *pads;
  int64_t *axes = NULL;
  size_t np, na = 0;
  if (c->opset < 11) {
    if (c->n->n_inputs > 1)
      return bad_model(c, "has %u inputs; before opset 11 the pads are an attribute",
                       c->n->n_inputs);
    /* Pad-1 names them `paddings`. */
    if (!aints(c, "pads", &pads, &np) && !(c->opset < 2 && aints(c, "paddings", &pads, &np)))
      return missing_attr(c, c->opset < 2 ? "paddings" : "pads");
  } else {
    if (!in(c, 1))
      return bad_model(c, "input 1 'pads' is required from opset 11");
    TSR_RETURN_IF_ERROR(want_rank(c, 1, 1, 1));
    int64_t *p;
    TSR_RETURN_IF_ERROR(in_ints(c, 1, &p, &np));
    pads = p;
    TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
    TSR_RETURN_IF_ERROR(want_scalar(c, 2));
    if (in(c, 3))
      TSR_RETURN_IF_ERROR(in_ints(c, 3, &axes, &na));
  }
  const char *mode = astr(c, "mode", "constant");
  if (strcmp(mode, "constant") != 0 && strcmp(mode, "reflect") != 0 && strcmp(mode, "edge") != 0 &&
      strcmp(mode, "wrap") != 0)
    return bad_model(c, "attribute 'mode' is '%s'", mode);
  size_t n = axes ? na : (size_t)x->rank;
  if (np != 2 * n)
    return bad(c, "pads %s has %zu entries; input '%s' %s needs %zu", dstr(c, pads, (int64_t)np),
               np, in_name(c, 0), vstr(c, x), 2 * n);
  TMP_DIMS(d, x->rank ? x->rank : 1);
  copy_dims(d, x);
  for (size_t i = 0; i < n; i++) {
    int64_t a = (int64_t)i, o;
    if (axes)
      TSR_RETURN_IF_ERROR(norm_axis(c, axes[i], x->rank, "axis", &a));
    if (!add64(d[a], pads[i], &o) || !add64(o, pads[i + n], &o))
      return bad(c, "pads %s overflow", dstr(c, pads, (int64_t)np));
    if (o < 0)
      return bad(c, "pads %s make axis %lld of input '%s' %s negative (%lld)",
                 dstr(c, pads, (int64_t)np), LL(a), in_name(c, 0), vstr(c, x), LL(o));
    d[a] = o;
  }
  return set_out(c, 0, x->dtype, x->rank, d);
}

static tsr_status infer_depth_to_space(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 4, 4));
  const tsr__vshape *x = in(c, 0);
  const tsr__attr *b = attr(c, "blocksize", TSR_PLUGIN_ATTR_INT);
  if (!b)
    return missing_attr(c, "blocksize");
  int64_t bs = b->i, bb;
  if (bs < 1 || !mul64(bs, bs, &bb))
    return bad_model(c, "attribute 'blocksize' is %lld", LL(bs));
  int64_t d[4] = {x->dims[0], 0, 0, 0};
  if (strcmp(c->n->op_type, "DepthToSpace") == 0) {
    if (x->dims[1] % bb != 0)
      return bad(c, "input '%s' %s: %lld channels are not a multiple of blocksize^2 = %lld",
                 in_name(c, 0), vstr(c, x), LL(x->dims[1]), LL(bb));
    d[1] = x->dims[1] / bb;
    if (!mul64(x->dims[2], bs, &d[2]) || !mul64(x->dims[3], bs, &d[3]))
      return bad(c, "output size overflows");
  } else {
    if (x->dims[2] % bs != 0 || x->dims[3] % bs != 0)
      return bad(c, "input '%s' %s: height and width must be multiples of blocksize %lld",
                 in_name(c, 0), vstr(c, x), LL(bs));
    if (!mul64(x->dims[1], bb, &d[1]))
      return bad(c, "output size overflows");
    d[2] = x->dims[2] / bs;
    d[3] = x->dims[3] / bs;
  }
  return set_out(c, 0, x->dtype, 4, d);
}

static tsr_status infer_det(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 2, ANY_RANK));
  const tsr__vshape *x = in(c, 0);
  if (x->dims[x->rank - 1] != x->dims[x->rank - 2])
    return bad(c, "input '%s' %s: the matrices are not square", in_name(c, 0), vstr(c, x));
  return set_out(c, 0, x->dtype, x->rank - 2, x->dims);
}

static tsr_status infer_reverse_sequence(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 2, ANY_RANK));
  const tsr__vshape *x = in(c, 0);
  int64_t batch_axis = aint(c, "batch_axis", 1), time_axis = aint(c, "time_axis", 0);
  if ((batch_axis != 0 && batch_axis != 1) || (time_axis != 0 && time_axis != 1) ||
      batch_axis == time_axis)
    return bad_model(c, "attributes 'batch_axis' and 'time_axis' must be 0 and 1");
  TSR_RETURN_IF_ERROR(want_vector(c, 1, x->dims[batch_axis], "one length per batch entry"));
  return same_as(c, 0, 0);
}

/* ---- Indexing -------------------------------------------------------------------------- */

static tsr_status infer_gather(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 1, ANY_RANK));
  TSR_RETURN_IF_ERROR(want_index_dtype(c, 1));
  const tsr__vshape *x = in(c, 0), *idx = in(c, 1);
  int64_t axis;
  TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", 0), x->rank, "axis", &axis));
  int64_t r = x->rank - 1 + idx->rank;
  TMP_DIMS(d, r ? r : 1);
  int64_t k = 0;
  for (int64_t i = 0; i < axis; i++)
    d[k++] = x->dims[i];
  for (int64_t i = 0; i < idx->rank; i++)
    d[k++] = idx->dims[i];
  for (int64_t i = axis + 1; i < x->rank; i++)
    d[k++] = x->dims[i];
  if (idx->data) {
    /* Known indices (shape computations) are checked here, with a message naming them. */
    int64_t *v;
    size_t n;
    TSR_RETURN_IF_ERROR(in_ints(c, 1, &v, &n));
    int64_t s = x->dims[axis];
    for (size_t i = 0; i < n; i++)
      if (v[i] < -s || v[i] >= s)
        return bad(c,
                   "index %lld (entry %zu of '%s') is out of range for axis %lld of size "
                   "%lld",
                   LL(v[i]), i, in_name(c, 1), LL(axis), LL(s));
  }
  return set_out(c, 0, x->dtype, r, d);
}

static tsr_status infer_gather_elements(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 1, ANY_RANK));
  TSR_RETURN_IF_ERROR(want_index_dtype(c, 1));
  const tsr__vshape *x = in(c, 0), *idx = in(c, 1);
  TSR_RETURN_IF_ERROR(want_rank(c, 1, x->rank, x->rank));
  int64_t axis;
  TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", 0), x->rank, "axis", &axis));
  return set_out(c, 0, x->dtype, idx->rank, idx->dims);
}

static tsr_status infer_gather_nd(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 1, ANY_RANK));
  TSR_RETURN_IF_ERROR(want_rank(c, 1, 1, ANY_RANK));
  TSR_RETURN_IF_ERROR(want_dtype(c, 1, TSR_DTYPE_INT64));
  const tsr__vshape *x = in(c, 0), *idx = in(c, 1);
  int64_t b = c->opset >= 12 ? aint(c, "batch_dims", 0) : 0, r = x->rank, q = idx->rank;
  if (b < 0 || b >= r || b >= q)
    return bad(c, "batch_dims %lld must be below the ranks of '%s' %s and '%s' %s", LL(b),
               in_name(c, 0), vstr(c, x), in_name(c, 1), vstr(c, idx));
  int64_t last = idx->dims[q - 1];
  if (last < 1 || last > r - b)
    return bad(c, "indices '%s' %s: the last dim %lld must be in 1..%lld", in_name(c, 1),
               vstr(c, idx), LL(last), LL(r - b));
  for (int64_t i = 0; i < b; i++)
    if (x->dims[i] != idx->dims[i])
      return bad(c, "batch dim %lld differs: '%s' %s and '%s' %s", LL(i), in_name(c, 0), vstr(c, x),
                 in_name(c, 1), vstr(c, idx));
  int64_t out_r = q - 1 + r - b - last;
  TMP_DIMS(d, out_r ? out_r : 1);
  int64_t k = 0;
  for (int64_t i = 0; i < q - 1; i++)
    d[k++] = idx->dims[i];
  for (int64_t i = b + last; i < r; i++)
    d[k++] = x->dims[i];
  return set_out(c, 0, x->dtype, out_r, d);
}

static tsr_status infer_scatter_elements(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 1, ANY_RANK));
  TSR_RETURN_IF_ERROR(want_index_dtype(c, 1));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  const tsr__vshape *x = in(c, 0), *idx = in(c, 1), *up = in(c, 2);
  TSR_RETURN_IF_ERROR(want_rank(c, 1, x->rank, x->rank));
  if (!dims_equal(idx->dims, idx->rank, up->dims, up->rank))
    return bad(c, "indices '%s' %s and updates '%s' %s differ in shape", in_name(c, 1),
               vstr(c, idx), in_name(c, 2), vstr(c, up));
  int64_t axis;
  TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", 0), x->rank, "axis", &axis));
  return same_as(c, 0, 0);
}

static tsr_status infer_scatter_nd(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 1, ANY_RANK));
  TSR_RETURN_IF_ERROR(want_rank(c, 1, 1, ANY_RANK));
  TSR_RETURN_IF_ERROR(want_dtype(c, 1, TSR_DTYPE_INT64));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  const tsr__vshape *x = in(c, 0), *idx = in(c, 1), *up = in(c, 2);
  int64_t q = idx->rank, k = idx->dims[q - 1];
  if (k > x->rank)
    return bad(c, "indices '%s' %s: the last dim %lld exceeds the rank of '%s' %s", in_name(c, 1),
               vstr(c, idx), LL(k), in_name(c, 0), vstr(c, x));
  int64_t ur = q - 1 + x->rank - k;
  TMP_DIMS(want, ur ? ur : 1);
  int64_t j = 0;
  for (int64_t i = 0; i < q - 1; i++)
    want[j++] = idx->dims[i];
  for (int64_t i = k; i < x->rank; i++)
    want[j++] = x->dims[i];
  if (!dims_equal(up->dims, up->rank, want, ur))
    return bad(c, "updates '%s' %s must have shape %s", in_name(c, 2), vstr(c, up),
               dstr(c, want, ur));
  return same_as(c, 0, 0);
}

static tsr_status infer_onehot(ictx *c) {
  const tsr__vshape *idx = in(c, 0), *vals = in(c, 2);
  TSR_RETURN_IF_ERROR(want_scalar(c, 1));
  if (count_of(vals) != 2)
    return bad(c, "values '%s' %s must have two elements (off, on)", in_name(c, 2), vstr(c, vals));
  double *depth;
  size_t n;
  TSR_RETURN_IF_ERROR(in_nums(c, 1, &depth, &n));
  if (!(depth[0] >= 0 && depth[0] < 9.2e18))
    return bad(c, "depth '%s' is %g", in_name(c, 1), depth[0]);
  int64_t r = idx->rank + 1, axis;
  TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", -1), r, "axis", &axis));
  TMP_DIMS(d, r);
  for (int64_t i = 0, j = 0; i < r; i++)
    d[i] = i == axis ? (int64_t)depth[0] : idx->dims[j++];
  return set_out(c, 0, vals->dtype, r, d);
}

static tsr_status infer_topk(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t axis, k;
  TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", -1), x->rank, "axis", &axis));
  if (c->opset < 10) {
    const tsr__attr *ka = attr(c, "k", TSR_PLUGIN_ATTR_INT);
    if (!ka)
      return missing_attr(c, "k");
    k = ka->i;
  } else {
    if (!in(c, 1))
      return bad_model(c, "input 1 'K' is required from opset 10");
    int64_t *kv;
    size_t n;
    TSR_RETURN_IF_ERROR(want_scalar(c, 1));
    TSR_RETURN_IF_ERROR(in_ints(c, 1, &kv, &n));
    k = kv[0];
  }
  if (k < 0 || k > x->dims[axis])
    return bad(c, "k = %lld is out of range for axis %lld of input '%s' %s", LL(k), LL(axis),
               in_name(c, 0), vstr(c, x));
  TMP_DIMS(d, x->rank);
  copy_dims(d, x);
  d[axis] = k;
  TSR_RETURN_IF_ERROR(set_out(c, 0, x->dtype, x->rank, d));
  return set_out(c, 1, TSR_DTYPE_INT64, x->rank, d);
}

/* ---- Data-dependent shapes ------------------------------------------------------------- */

static tsr_status infer_nonzero(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  if (!x->data)
    return need_data(c, 0);
  if (tsr_dtype_size((tsr_dtype)x->dtype) == 0)
    return bad_model(c, "input '%s' must be numeric or bool, got %s", in_name(c, 0), dt(x->dtype));
  size_t n = count_of(x);
  int64_t nz = 0;
  for (size_t i = 0; i < n; i++)
    nz += elem_nonzero(x->data, x->dtype, i);
  /* A scalar counts as one dim, as numpy and onnxruntime do. */
  int64_t d[2] = {x->rank ? x->rank : 1, nz};
  return set_out(c, 0, TSR_DTYPE_INT64, 2, d);
}

static tsr_status infer_compress(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  TSR_RETURN_IF_ERROR(want_rank(c, 1, 1, 1));
  TSR_RETURN_IF_ERROR(want_dtype(c, 1, TSR_DTYPE_BOOL));
  const tsr__vshape *cond = in(c, 1);
  if (!cond->data)
    return need_data(c, 1);
  bool has_axis = has_attr(c, "axis");
  int64_t axis = 0, limit;
  if (has_axis) {
    TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", 0), x->rank, "axis", &axis));
    limit = x->dims[axis];
  } else {
    limit = (int64_t)count_of(x);
  }
  size_t n = count_of(cond);
  if ((int64_t)n > limit)
    return bad(c, "condition '%s' has %zu entries, more than the %lld it selects from",
               in_name(c, 1), n, LL(limit));
  int64_t kept = 0;
  for (size_t i = 0; i < n; i++)
    kept += ((const uint8_t *)cond->data)[i] != 0;
  if (!has_axis)
    return set_out(c, 0, x->dtype, 1, &kept);
  TMP_DIMS(d, x->rank);
  copy_dims(d, x);
  d[axis] = kept;
  return set_out(c, 0, x->dtype, x->rank, d);
}

typedef struct scored {
  float score;
  int64_t index;
} scored;

/* Highest score first; equal scores by index, as onnxruntime orders them. */
static int cmp_scored(const void *pa, const void *pb) {
  const scored *a = pa, *b = pb;
  if (a->score != b->score)
    return a->score > b->score ? -1 : 1;
  return a->index < b->index ? -1 : a->index > b->index;
}

/* onnxruntime's IoU test, in float as it computes it. */
static bool nms_suppress(const float *b1, const float *b2, bool center, float threshold) {
  float x1a, x1b, y1a, y1b, x2a, x2b, y2a, y2b;
  if (!center) {
    y1a = fminf(b1[0], b1[2]), y1b = fmaxf(b1[0], b1[2]);
    x1a = fminf(b1[1], b1[3]), x1b = fmaxf(b1[1], b1[3]);
    y2a = fminf(b2[0], b2[2]), y2b = fmaxf(b2[0], b2[2]);
    x2a = fminf(b2[1], b2[3]), x2b = fmaxf(b2[1], b2[3]);
  } else {
    x1a = b1[0] - b1[2] / 2, x1b = b1[0] + b1[2] / 2;
    y1a = b1[1] - b1[3] / 2, y1b = b1[1] + b1[3] / 2;
    x2a = b2[0] - b2[2] / 2, x2b = b2[0] + b2[2] / 2;
    y2a = b2[1] - b2[3] / 2, y2b = b2[1] + b2[3] / 2;
  }
  float ixa = fmaxf(x1a, x2a), ixb = fminf(x1b, x2b), iya = fmaxf(y1a, y2a), iyb = fminf(y1b, y2b);
  if (ixb <= ixa || iyb <= iya)
    return false;
  float inter = (ixb - ixa) * (iyb - iya);
  float area1 = (x1b - x1a) * (y1b - y1a), area2 = (x2b - x2a) * (y2b - y2a);
  float uni = area1 + area2 - inter;
  if (inter <= 0 || area1 <= 0 || area2 <= 0 || uni <= 0)
    return false;
  return inter / uni > threshold;
}

/* NonMaxSuppression's output count depends on every input value: it is counted here when all
 * of them are known, so that the node can be folded; otherwise it is UNSUPPORTED. */
static tsr_status infer_nms(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 3, 3));
  TSR_RETURN_IF_ERROR(want_rank(c, 1, 3, 3));
  const tsr__vshape *boxes = in(c, 0), *scores = in(c, 1);
  int64_t nb = boxes->dims[0], nbox = boxes->dims[1], ncls = scores->dims[1];
  if (boxes->dims[2] != 4 || scores->dims[0] != nb || scores->dims[2] != nbox)
    return bad(c,
               "boxes '%s' %s and scores '%s' %s must be [batch, boxes, 4] and [batch, "
               "classes, boxes]",
               in_name(c, 0), vstr(c, boxes), in_name(c, 1), vstr(c, scores));
  for (uint32_t i = 2; i < 5; i++)
    TSR_RETURN_IF_ERROR(want_scalar(c, i));
  for (uint32_t i = 0; i < c->n->n_inputs; i++)
    if (in(c, i) && !in(c, i)->data)
      return tsr__status_mark(unsupported(c,
                                          "the number of boxes kept depends on the values of "
                                          "input %u '%s', which are only known at run time",
                                          i, in_name(c, i)),
                              TSR__STATUS_NEEDS_INPUT_VALUES);
  double *bx, *sc, *v;
  size_t n;
  TSR_RETURN_IF_ERROR(in_nums(c, 0, &bx, &n));
  TSR_RETURN_IF_ERROR(in_nums(c, 1, &sc, &n));
  int64_t max_out = 0;
  float iou = 0, score_min = 0;
  bool has_min = in(c, 4) != NULL, center = aint(c, "center_point_box", 0) != 0;
  if (in(c, 2)) {
    int64_t *m;
    TSR_RETURN_IF_ERROR(in_ints(c, 2, &m, &n));
    max_out = m[0];
  }
  if (in(c, 3)) {
    TSR_RETURN_IF_ERROR(in_nums(c, 3, &v, &n));
    iou = (float)v[0];
  }
  if (has_min) {
    TSR_RETURN_IF_ERROR(in_nums(c, 4, &v, &n));
    score_min = (float)v[0];
  }
  size_t nboxes = (size_t)nbox;
  scored *cand = tmp(c, (nboxes ? nboxes : 1) * sizeof *cand);
  int64_t *kept = tmp_dims(c, nboxes ? nboxes : 1);
  float *fb = tmp(c, (nboxes ? nboxes : 1) * 4 * sizeof *fb);
  if (!cand || !kept || !fb)
    return oom(c);
  int64_t total = 0;
  for (int64_t b = 0; b < nb; b++) {
    for (size_t i = 0; i < nboxes * 4; i++)
      fb[i] = (float)bx[(size_t)b * nboxes * 4 + i];
    for (int64_t k = 0; k < ncls; k++) {
      size_t nc = 0, nk = 0;
      const double *s = sc + ((size_t)b * (size_t)ncls + (size_t)k) * nboxes;
      /* NaN scores are never selected (they have no place in the order); the CPU kernel
       * (devices/cpu/detect.c) selects exactly as this loop does, so that counts agree. */
      for (size_t i = 0; i < nboxes; i++) {
        float sv = (float)s[i];
        if (sv == sv && (!has_min || sv > score_min))
          cand[nc++] = (scored){sv, (int64_t)i};
      }
      qsort(cand, nc, sizeof *cand, cmp_scored);
      for (size_t i = 0; i < nc && (int64_t)nk < max_out; i++) {
        bool keep = true;
        for (size_t j = 0; j < nk && keep; j++)
          keep = !nms_suppress(fb + 4 * cand[i].index, fb + 4 * kept[j], center, iou);
        if (keep)
          kept[nk++] = cand[i].index;
      }
      total += (int64_t)nk;
    }
  }
  int64_t d[2] = {total, 3};
  return set_out(c, 0, TSR_DTYPE_INT64, 2, d);
}

/* ---- Sampling, Unique and signal processing --------------------------------------------- */

static tsr_status infer_grid_sample(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 4, 4));
  TSR_RETURN_IF_ERROR(want_rank(c, 1, 4, 4));
  TSR_RETURN_IF_ERROR(want_float(c, 1));
  const tsr__vshape *x = in(c, 0), *grid = in(c, 1);
  if (tsr_dtype_size((tsr_dtype)x->dtype) == 0)
    return bad_model(c, "input 0 '%s' must be numeric, got %s", in_name(c, 0), dt(x->dtype));
  if (grid->dims[0] != x->dims[0] || grid->dims[3] != 2)
    return bad(c, "grid '%s' %s must be [N, H_out, W_out, 2] with N = %lld, as input '%s' %s",
               in_name(c, 1), vstr(c, grid), LL(x->dims[0]), in_name(c, 0), vstr(c, x));
  static const char *const modes[] = {"bilinear", "nearest", "bicubic"};
  static const char *const pads[] = {"zeros", "border", "reflection"};
  TSR_RETURN_IF_ERROR(want_choice(c, "mode", "bilinear", modes, 3));
  TSR_RETURN_IF_ERROR(want_choice(c, "padding_mode", "zeros", pads, 3));
  int64_t d[4] = {x->dims[0], x->dims[1], grid->dims[1], grid->dims[2]};
  return set_out(c, 0, x->dtype, 4, d);
}

/* Orders elements i and j of numeric data: exactly for integers, by value for floats, where
 * -0 equals +0 and NaN equals NaN and follows every number (as numpy.unique orders them). The
 * Unique kernel (devices/cpu/detect.c) orders the same way, so that counts agree. */
static int cmp_elem(const void *data, int32_t dtype, size_t i, size_t j) {
  if (dtype == TSR_DTYPE_INT64 || dtype == TSR_DTYPE_UINT64) {
    uint64_t a, b;
    memcpy(&a, (const char *)data + 8 * i, 8);
    memcpy(&b, (const char *)data + 8 * j, 8);
    if (dtype == TSR_DTYPE_INT64)
      return (int64_t)a < (int64_t)b ? -1 : (int64_t)a > (int64_t)b;
    return a < b ? -1 : a > b;
  }
  double a = read_num(data, dtype, i), b = read_num(data, dtype, j);
  if (a != a || b != b)
    return (a != a) - (b != b);
  return a < b ? -1 : a > b;
}

/* The slices of Unique: `n` slices along an axis, each made of outer x inner elements. */
typedef struct uslices {
  const void *data;
  int32_t dtype;
  size_t outer, n, inner;
} uslices;

/* Lexicographic order of slices a and b, in the row-major order of their elements. */
static int cmp_slices(const uslices *s, size_t a, size_t b) {
  for (size_t o = 0; o < s->outer; o++)
    for (size_t k = 0; k < s->inner; k++) {
      size_t base = o * s->n * s->inner + k;
      int r = cmp_elem(s->data, s->dtype, base + a * s->inner, base + b * s->inner);
      if (r)
        return r;
    }
  return 0;
}

/* The number of distinct slices: a stable bottom-up merge sort of their indices (no global
 * state, so concurrent inferences are safe), then a count of the runs. */
static tsr_status count_unique(ictx *c, const uslices *s, int64_t *out) {
  size_t n = s->n, bytes;
  if (!tsr__mul_size(n, 2 * sizeof(size_t), &bytes))
    return oom(c);
  size_t *a = tmp(c, bytes);
  if (!a)
    return oom(c);
  size_t *b = a + n;
  for (size_t i = 0; i < n; i++)
    a[i] = i;
  for (size_t w = 1; w < n; w *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * w) {
      size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi)
        b[k++] = cmp_slices(s, a[j], a[i]) < 0 ? a[j++] : a[i++];
      while (i < mid)
        b[k++] = a[i++];
      while (j < hi)
        b[k++] = a[j++];
    }
    size_t *t = a;
    a = b;
    b = t;
  }
  int64_t u = n ? 1 : 0;
  for (size_t i = 1; i < n; i++)
    u += cmp_slices(s, a[i - 1], a[i]) != 0;
  *out = u;
  return NULL;
}

/* Unique's output sizes are the number of distinct values (or slices): known when the input's
 * data is, and then the node is folded; otherwise only at run time. */
static tsr_status infer_unique(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  if (tsr_dtype_size((tsr_dtype)x->dtype) == 0)
    return unsupported(c, "input 0 '%s' of dtype %s is not supported", in_name(c, 0), dt(x->dtype));
  bool has_axis = has_attr(c, "axis");
  int64_t axis = 0;
  uslices s = {x->data, x->dtype, 1, count_of(x), 1};
  if (has_axis) {
    TSR_RETURN_IF_ERROR(norm_axis(c, aint(c, "axis", 0), x->rank, "axis", &axis));
    int64_t outer, inner;
    if (!dims_product(x->dims, 0, axis, &outer) ||
        !dims_product(x->dims, axis + 1, x->rank, &inner))
      return bad(c, "input size overflows");
    s.outer = (size_t)outer;
    s.n = (size_t)x->dims[axis];
    s.inner = (size_t)inner;
  }
  int64_t u;
  if (s.n == 0)
    u = 0;
  else if (s.outer == 0 || s.inner == 0)
    u = 1; /* every slice is empty, so all are equal */
  else if (!x->data)
    return need_data(c, 0);
  else
    TSR_RETURN_IF_ERROR(count_unique(c, &s, &u));
  TMP_DIMS(d, x->rank ? x->rank : 1);
  copy_dims(d, x);
  d[axis] = u;
  TSR_RETURN_IF_ERROR(set_out(c, 0, x->dtype, has_axis ? x->rank : 1, has_axis ? d : &u));
  int64_t n = (int64_t)s.n;
  TSR_RETURN_IF_ERROR(set_out(c, 1, TSR_DTYPE_INT64, 1, &u));
  TSR_RETURN_IF_ERROR(set_out(c, 2, TSR_DTYPE_INT64, 1, &n));
  return set_out(c, 3, TSR_DTYPE_INT64, 1, &u);
}

/* The last dim of a signal: 1 for real values, 2 for complex (real, imaginary) pairs. */
static tsr_status want_signal(ictx *c, uint32_t i) {
  const tsr__vshape *x = in(c, i);
  int64_t last = x->dims[x->rank - 1];
  if (last != 1 && last != 2)
    return bad(c, "input %u '%s' %s must end in 1 (real) or 2 (complex) values", i, in_name(c, i),
               vstr(c, x));
  return NULL;
}

/* One int32/int64 scalar input whose value an output shape depends on. */
static tsr_status in_scalar_int(ictx *c, uint32_t i, int64_t *out) {
  *out = 0;
  TSR_RETURN_IF_ERROR(want_index_dtype(c, i));
  TSR_RETURN_IF_ERROR(want_scalar(c, i));
  int64_t *v;
  size_t n;
  TSR_RETURN_IF_ERROR(in_ints(c, i, &v, &n));
  *out = v[0];
  return NULL;
}

static tsr_status infer_dft(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 3, ANY_RANK));
  TSR_RETURN_IF_ERROR(want_float(c, 0));
  TSR_RETURN_IF_ERROR(want_signal(c, 0));
  const tsr__vshape *x = in(c, 0);
  int64_t r = x->rank, axis = aint(c, "axis", 1), a = axis < 0 ? axis + r : axis;
  if (a < 1 || a > r - 2)
    return bad(c, "attribute 'axis' %lld must name a signal dim of input '%s' %s (1..%lld)",
               LL(axis), in_name(c, 0), vstr(c, x), LL(r - 2));
  bool onesided = aint(c, "onesided", 0) != 0;
  if (onesided && x->dims[r - 1] == 2)
    return bad_model(c, "onesided output needs a real input; input '%s' %s is complex",
                     in_name(c, 0), vstr(c, x));
  int64_t len = x->dims[a];
  if (in(c, 1))
    TSR_RETURN_IF_ERROR(in_scalar_int(c, 1, &len));
  if (len < 1)
    return bad(c, "the DFT length is %lld; it must be >= 1", LL(len));
  TMP_DIMS(d, r);
  copy_dims(d, x);
  d[a] = onesided ? len / 2 + 1 : len;
  d[r - 1] = 2;
  return set_out(c, 0, x->dtype, r, d);
}

static tsr_status infer_stft(ictx *c) {
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 3, 3));
  TSR_RETURN_IF_ERROR(want_float(c, 0));
  TSR_RETURN_IF_ERROR(want_signal(c, 0));
  TSR_RETURN_IF_ERROR(want_rank(c, 2, 1, 1));
  TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, 2));
  const tsr__vshape *x = in(c, 0), *w = in(c, 2);
  bool onesided = aint(c, "onesided", 1) != 0;
  if (onesided && x->dims[2] == 2)
    return bad_model(c,
                     "onesided output (the default) needs a real signal; input '%s' %s is "
                     "complex",
                     in_name(c, 0), vstr(c, x));
  if (!w && !in(c, 3))
    return bad_model(c, "needs a window (input 2) or a frame_length (input 3)");
  int64_t step, len;
  TSR_RETURN_IF_ERROR(in_scalar_int(c, 1, &step));
  if (in(c, 3)) {
    TSR_RETURN_IF_ERROR(in_scalar_int(c, 3, &len));
    if (w && w->dims[0] != len)
      return bad(c, "window '%s' %s does not have frame_length %lld values", in_name(c, 2),
                 vstr(c, w), LL(len));
  } else {
    len = w->dims[0];
  }
  if (step < 1)
    return bad(c, "frame_step is %lld; it must be >= 1", LL(step));
  if (len < 1 || len > x->dims[1])
    return bad(c, "the frame length %lld must be 1..%lld, the length of signal '%s' %s", LL(len),
               LL(x->dims[1]), in_name(c, 0), vstr(c, x));
  int64_t d[4] = {x->dims[0], (x->dims[1] - len) / step + 1, onesided ? len / 2 + 1 : len, 2};
  return set_out(c, 0, x->dtype, 4, d);
}

/* output_datatype of the window functions and MelWeightMatrix: any numeric dtype but bool. */
static tsr_status out_datatype(ictx *c, int32_t *out) {
  int64_t t = aint(c, "output_datatype", TSR_DTYPE_FLOAT32);
  *out = (int32_t)t;
  if (t == TSR_DTYPE_BOOL || t == TSR_DTYPE_STRING || !dtype_known(t))
    return bad_model(c, "attribute 'output_datatype' %lld is not a numeric dtype", LL(t));
  return NULL;
}

/* HannWindow, HammingWindow, BlackmanWindow: [size], where size is the input's value. */
static tsr_status infer_window(ictx *c) {
  int32_t dtype;
  TSR_RETURN_IF_ERROR(out_datatype(c, &dtype));
  int64_t size;
  TSR_RETURN_IF_ERROR(in_scalar_int(c, 0, &size));
  if (size < 0)
    return bad(c, "input 0 '%s' asks for a window of %lld values", in_name(c, 0), LL(size));
  return set_out(c, 0, dtype, 1, &size);
}

static tsr_status infer_mel_weight_matrix(ictx *c) {
  int32_t dtype;
  TSR_RETURN_IF_ERROR(out_datatype(c, &dtype));
  for (uint32_t i = 2; i < 5; i++) {
    TSR_RETURN_IF_ERROR(i == 2 ? want_index_dtype(c, i) : want_float(c, i));
    TSR_RETURN_IF_ERROR(want_scalar(c, i));
  }
  int64_t bins, len;
  TSR_RETURN_IF_ERROR(in_scalar_int(c, 0, &bins));
  TSR_RETURN_IF_ERROR(in_scalar_int(c, 1, &len));
  if (bins < 0)
    return bad(c, "num_mel_bins is %lld; it must be >= 0", LL(bins));
  if (len < 1)
    return bad(c, "dft_length is %lld; it must be >= 1", LL(len));
  int64_t d[2] = {len / 2 + 1, bins};
  return set_out(c, 0, dtype, 2, d);
}

/* ---- Shapes as data, constants, generators --------------------------------------------- */

static tsr_status infer_shape(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t r = x->rank, start = 0, end = r;
  if (c->opset >= 15) {
    start = aint(c, "start", 0);
    end = aint(c, "end", r);
  }
  if (start < 0)
    start += r;
  if (end < 0)
    end += r;
  start = start < 0 ? 0 : start > r ? r : start;
  end = end < 0 ? 0 : end > r ? r : end;
  int64_t n = end > start ? end - start : 0;
  TSR_RETURN_IF_ERROR(set_out(c, 0, TSR_DTYPE_INT64, 1, &n));
  /* A scalar has no dims array: nothing to copy (and no pointer arithmetic on NULL). */
  return set_out_data(c, 0, n ? x->dims + start : NULL, (size_t)n * sizeof(int64_t));
}

static tsr_status infer_size(ictx *c) {
  int64_t n;
  const tsr__vshape *x = in(c, 0);
  if (!dims_product(x->dims, 0, x->rank, &n))
    return bad(c, "input size overflows");
  TSR_RETURN_IF_ERROR(set_out(c, 0, TSR_DTYPE_INT64, 0, NULL));
  return set_out_data(c, 0, &n, sizeof n);
}

static tsr_status infer_constant(ictx *c) {
  static const char *const kinds[] = {"value",         "value_float", "value_floats",
                                      "value_int",     "value_ints",  "value_string",
                                      "value_strings", "sparse_value"};
  const tsr__attr *a = NULL;
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
    const tsr__attr *t = tsr__node_attr(c->n, kinds[i]);
    if (t && a)
      return bad_model(c, "has both '%s' and '%s'", a->name, t->name);
    if (t)
      a = t;
  }
  if (!a)
    return bad_model(c, "has none of the value attributes");
  int64_t count = (int64_t)a->count;
  if (strcmp(a->name, "value") == 0) {
    const tsr__tensor_data *t = a->t;
    if (a->type != TSR_PLUGIN_ATTR_TENSOR || !t)
      return bad_model(c, "attribute 'value' is not a tensor");
    TSR_RETURN_IF_ERROR(set_out(c, 0, t->dtype, t->rank, t->dims));
    int32_t v = out_id(c, 0);
    if (v < 0)
      return NULL;
    tsr__vshape *o = &c->vals[v];
    if (t->dtype != TSR_DTYPE_STRING && o->nbytes != t->nbytes)
      return bad_model(c, "attribute 'value' has %zu bytes of data, but its shape needs %zu",
                       t->nbytes, o->nbytes);
    /* The data lives with the model, like an initializer's. */
    if (t->dtype != TSR_DTYPE_STRING) {
      o->data = t->data ? t->data : (const void *)empty_data;
      o->is_weight = true;
    }
    return NULL;
  }
  if (strcmp(a->name, "value_float") == 0 && a->type == TSR_PLUGIN_ATTR_FLOAT) {
    TSR_RETURN_IF_ERROR(set_out(c, 0, TSR_DTYPE_FLOAT32, 0, NULL));
    return set_out_data(c, 0, &a->f, sizeof a->f);
  }
  if (strcmp(a->name, "value_floats") == 0 && a->type == TSR_PLUGIN_ATTR_FLOATS) {
    TSR_RETURN_IF_ERROR(set_out(c, 0, TSR_DTYPE_FLOAT32, 1, &count));
    return set_out_data(c, 0, a->floats, a->count * sizeof(float));
  }
  if (strcmp(a->name, "value_int") == 0 && a->type == TSR_PLUGIN_ATTR_INT) {
    TSR_RETURN_IF_ERROR(set_out(c, 0, TSR_DTYPE_INT64, 0, NULL));
    return set_out_data(c, 0, &a->i, sizeof a->i);
  }
  if (strcmp(a->name, "value_ints") == 0 && a->type == TSR_PLUGIN_ATTR_INTS) {
    TSR_RETURN_IF_ERROR(set_out(c, 0, TSR_DTYPE_INT64, 1, &count));
    return set_out_data(c, 0, a->ints, a->count * sizeof(int64_t));
  }
  /* Strings: the shape is known; string data is not represented in vshapes. */
  if (strcmp(a->name, "value_string") == 0)
    return set_out(c, 0, TSR_DTYPE_STRING, 0, NULL);
  if (strcmp(a->name, "value_strings") == 0)
    return set_out(c, 0, TSR_DTYPE_STRING, 1, &count);
  if (strcmp(a->name, "sparse_value") == 0)
    return unsupported(c, "sparse constants are not supported");
  return bad_model(c, "attribute '%s' is of type %s", a->name, attr_type_name(a->type));
}

static tsr_status infer_constant_of_shape(ictx *c) {
  int64_t *shape;
  size_t n;
  TSR_RETURN_IF_ERROR(want_dtype(c, 0, TSR_DTYPE_INT64));
  TSR_RETURN_IF_ERROR(want_rank(c, 0, 1, 1));
  TSR_RETURN_IF_ERROR(in_ints(c, 0, &shape, &n));
  for (size_t i = 0; i < n; i++)
    if (shape[i] < 0)
      return bad(c, "shape '%s' %s has a negative entry", in_name(c, 0),
                 dstr(c, shape, (int64_t)n));
  int32_t dtype = TSR_DTYPE_FLOAT32;
  const tsr__attr *v = attr(c, "value", TSR_PLUGIN_ATTR_TENSOR);
  if (v && v->t) {
    size_t count = 0;
    if (!tsr__shape_count(v->t->dims, (size_t)(v->t->rank > 0 ? v->t->rank : 0), &count) ||
        count != 1)
      return bad_model(c, "attribute 'value' must hold one element");
    dtype = v->t->dtype;
  }
  return set_out(c, 0, dtype, (int64_t)n, shape);
}

static tsr_status infer_range(ictx *c) {
  const tsr__vshape *s = in(c, 0);
  for (uint32_t i = 0; i < 3; i++) {
    TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, i));
    TSR_RETURN_IF_ERROR(want_scalar(c, i));
  }
  for (uint32_t i = 0; i < 3; i++)
    if (!in(c, i)->data)
      return need_data(c, i);
  int64_t n;
  if (is_float(s->dtype)) {
    double v[3];
    for (uint32_t i = 0; i < 3; i++)
      v[i] = read_num(in(c, i)->data, in(c, i)->dtype, 0);
    if (v[2] == 0)
      return bad(c, "delta '%s' is 0", in_name(c, 2));
    /* float32 subtracts in float, as onnxruntime does. */
    double diff = s->dtype == TSR_DTYPE_FLOAT32 ? (double)((float)v[1] - (float)v[0]) : v[1] - v[0];
    double q = ceil(diff / v[2]);
    if (!(q < 9.2e18))
      return bad(c, "the range has too many elements (%g)", q);
    n = q > 0 ? (int64_t)q : 0;
  } else {
    int64_t *v[3];
    size_t cnt;
    for (uint32_t i = 0; i < 3; i++)
      TSR_RETURN_IF_ERROR(in_ints(c, i, &v[i], &cnt));
    int64_t start = v[0][0], limit = v[1][0], delta = v[2][0], diff;
    if (delta == 0)
      return bad(c, "delta '%s' is 0", in_name(c, 2));
    if (__builtin_sub_overflow(limit, start, &diff))
      return bad(c, "the range %lld..%lld is too large", LL(start), LL(limit));
    if (delta > 0)
      n = diff <= 0 ? 0 : (diff - 1) / delta + 1;
    else
      n = diff >= 0 ? 0 : (diff + 1) / delta + 1;
  }
  return set_out(c, 0, s->dtype, 1, &n);
}

/* ---- Resize and Upsample --------------------------------------------------------------- */

static tsr_status infer_resize(ictx *c) {
  const tsr__vshape *x = in(c, 0);
  int64_t r = x->rank;
  bool upsample = strcmp(c->n->op_type, "Upsample") == 0;
  /* Opset 18 lets scales and sizes name the axes they apply to. */
  TMP_DIMS(axes, r ? r : 1);
  size_t n_axes = (size_t)r;
  for (int64_t i = 0; i < r; i++)
    axes[i] = i;
  const int64_t *ax;
  if (!upsample && c->opset >= 18 && aints(c, "axes", &ax, &n_axes)) {
    unsigned char *seen = tmp(c, (size_t)r + 1);
    if (!seen)
      return oom(c);
    memset(seen, 0, (size_t)r + 1);
    if (n_axes > (size_t)r)
      return bad(c, "attribute 'axes' has %zu entries, more than rank %lld", n_axes, LL(r));
    for (size_t i = 0; i < n_axes; i++) {
      TSR_RETURN_IF_ERROR(norm_axis(c, ax[i], r, "axis", &axes[i]));
      if (seen[axes[i]])
        return bad(c, "axis %lld is listed twice", LL(ax[i]));
      seen[axes[i]] = 1;
    }
  }
  double *scales = NULL;
  int64_t *sizes = NULL;
  size_t n = 0;
  uint32_t src;
  if (upsample && c->opset < 9) {
    const float *f;
    if (!afloats(c, "scales", &f, &n))
      return missing_attr(c, "scales");
    scales = tmp(c, (n ? n : 1) * sizeof *scales);
    if (!scales)
      return oom(c);
    for (size_t i = 0; i < n; i++)
      scales[i] = f[i];
    src = UINT32_MAX;
  } else if (upsample || c->opset < 11) {
    if (!in(c, 1))
      return bad_model(c, "input 1 'scales' is required");
    src = 1;
    TSR_RETURN_IF_ERROR(in_nums(c, 1, &scales, &n));
  } else {
    const tsr__vshape *sv = in(c, 2), *zv = in(c, 3);
    bool have_sizes = zv && count_of(zv) > 0, have_scales = sv && count_of(sv) > 0;
    if (have_sizes && have_scales)
      return bad_model(c, "inputs 'scales' and 'sizes' are both given; only one may be");
    if (have_sizes) {
      src = 3;
      TSR_RETURN_IF_ERROR(want_dtype(c, 3, TSR_DTYPE_INT64));
      TSR_RETURN_IF_ERROR(in_ints(c, 3, &sizes, &n));
    } else if (have_scales) {
      src = 2;
      TSR_RETURN_IF_ERROR(in_nums(c, 2, &scales, &n));
    } else {
      return bad_model(c, "one of the inputs 'scales' and 'sizes' must have elements");
    }
  }
  if (n != n_axes)
    return bad(c, "%s %s has %zu entries, but input '%s' %s needs %zu", scales ? "scales" : "sizes",
               src == UINT32_MAX ? "(attribute)" : in_name(c, src), n, in_name(c, 0), vstr(c, x),
               n_axes);
  TMP_DIMS(d, r ? r : 1);
  copy_dims(d, x);
  if (scales) {
    for (size_t i = 0; i < n; i++) {
      /* floor(dim * scale) in float, as onnx's own shape inference and onnxruntime compute it
       * (so that 3 * 1.6666666f gives 5, not 4). */
      float scale = (float)scales[i], o = floorf((float)d[axes[i]] * scale);
      if (!(scale > 0))
        return bad(c, "scale %zu is %g; scales must be > 0", i, scales[i]);
      if (upsample && scale < 1)
        return bad(c, "Upsample scale %zu is %g; it must be >= 1", i, scales[i]);
      if (!(o < 9.2e18f))
        return bad(c, "output dim %lld overflows", LL(axes[i]));
      d[axes[i]] = (int64_t)o;
    }
    return set_out(c, 0, x->dtype, r, d);
  }
  for (size_t i = 0; i < n; i++)
    if (sizes[i] < 0)
      return bad(c, "sizes %s has a negative entry", dstr(c, sizes, (int64_t)n));
  const char *policy = c->opset >= 18 ? astr(c, "keep_aspect_ratio_policy", "stretch") : "stretch";
  bool larger = strcmp(policy, "not_smaller") == 0;
  if (strcmp(policy, "stretch") == 0) {
    for (size_t i = 0; i < n; i++)
      d[axes[i]] = sizes[i];
  } else if (larger || strcmp(policy, "not_larger") == 0) {
    /* One scale for all the axes, the smallest (not_larger) or largest (not_smaller). */
    double scale = larger ? 0 : INFINITY;
    for (size_t i = 0; i < n; i++) {
      if (d[axes[i]] == 0)
        return bad(c, "cannot keep the aspect ratio of a zero-size axis");
      double s = (double)sizes[i] / (double)d[axes[i]];
      scale = larger ? fmax(scale, s) : fmin(scale, s);
    }
    for (size_t i = 0; i < n; i++)
      d[axes[i]] = (int64_t)floor(scale * (double)d[axes[i]] + 0.5);
  } else {
    return bad_model(c, "attribute 'keep_aspect_ratio_policy' is '%s'", policy);
  }
  return set_out(c, 0, x->dtype, r, d);
}

/* ---- Einsum ---------------------------------------------------------------------------- */

/* Merges size d into a label's size (-1: not seen yet); 1 broadcasts, as numpy allows. */
static bool merge_dim(int64_t *have, int64_t d) {
  if (*have < 0 || *have == 1)
    *have = d;
  else if (d != 1 && d != *have)
    return false;
  return true;
}

static bool is_label(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }

static tsr_status infer_einsum(ictx *c) {
  const char *eq = astr(c, "equation", NULL);
  if (!eq)
    return missing_attr(c, "equation");
  size_t len = strlen(eq), k = 0;
  char *e = tmp(c, len + 1);
  if (!e)
    return oom(c);
  for (size_t i = 0; i < len; i++)
    if (eq[i] != ' ')
      e[k++] = eq[i];
  e[k] = '\0';
  char *rhs = strstr(e, "->");
  if (rhs) {
    *rhs = '\0';
    rhs += 2;
  }
  uint32_t ni = c->n->n_inputs;
  int64_t max_r = 0;
  for (uint32_t i = 0; i < ni; i++) {
    if (!in(c, i))
      return bad_model(c, "input %u is absent", i);
    TSR_RETURN_IF_ERROR(want_same_dtype(c, 0, i));
    if (in(c, i)->rank > max_r)
      max_r = in(c, i)->rank;
  }
  int64_t label_dim[128];
  int label_count[128] = {0};
  for (int i = 0; i < 128; i++)
    label_dim[i] = -1;
  /* The dims the ellipses stand for, broadcast together, right-aligned in max_r slots. */
  TMP_DIMS(ell, max_r ? max_r : 1);
  for (int64_t i = 0; i < max_r; i++)
    ell[i] = 1;
  int64_t ell_r = 0;
  bool any_ell = false;
  uint32_t t = 0;
  for (const char *p = e;; t++) {
    const char *end = strchr(p, ',');
    size_t tl = end ? (size_t)(end - p) : strlen(p);
    if (t >= ni)
      return bad_model(c, "equation '%s' has more operands than the node's %u inputs", eq, ni);
    const tsr__vshape *x = in(c, t);
    int64_t letters = 0, ells = 0;
    for (size_t j = 0; j < tl; j++) {
      if (is_label(p[j])) {
        letters++;
      } else if (p[j] == '.' && j + 2 < tl && p[j + 1] == '.' && p[j + 2] == '.') {
        ells++;
        j += 2;
      } else {
        return bad_model(c, "equation '%s': unexpected '%c' in operand %u", eq, p[j], t);
      }
    }
    int64_t er = x->rank - letters;
    if (ells > 1 || er < 0 || (ells == 0 && er != 0))
      return bad(c, "equation '%s': operand %u '%.*s' does not fit input '%s' %s", eq, t, (int)tl,
                 p, in_name(c, t), vstr(c, x));
    int64_t pos = 0;
    for (size_t j = 0; j < tl; j++) {
      if (p[j] == '.') {
        for (int64_t q = 0; q < er; q++)
          if (!merge_dim(&ell[max_r - er + q], x->dims[pos + q]))
            return bad(c, "equation '%s': the dims under '...' do not broadcast (input '%s' %s)",
                       eq, in_name(c, t), vstr(c, x));
        pos += er;
        if (er > ell_r)
          ell_r = er;
        any_ell = true;
        j += 2;
        continue;
      }
      unsigned char ch = (unsigned char)p[j];
      if (!merge_dim(&label_dim[ch], x->dims[pos]))
        return bad(c,
                   "equation '%s': label '%c' has size %lld in input '%s' %s but %lld "
                   "elsewhere",
                   eq, ch, LL(x->dims[pos]), in_name(c, t), vstr(c, x), LL(label_dim[ch]));
      label_count[ch]++;
      pos++;
    }
    if (!end)
      break;
    p = end + 1;
  }
  if (t + 1 != ni)
    return bad_model(c, "equation '%s' has %u operands, but the node has %u inputs", eq, t + 1, ni);
  TMP_DIMS(d, ell_r + 128);
  int64_t r = 0;
  if (rhs) {
    bool seen[128] = {false}, ell_out = false;
    for (const char *p = rhs; *p; p++) {
      if (p[0] == '.' && p[1] == '.' && p[2] == '.' && !ell_out) {
        for (int64_t q = 0; q < ell_r; q++)
          d[r++] = ell[max_r - ell_r + q];
        ell_out = true;
        p += 2;
        continue;
      }
      unsigned char ch = (unsigned char)*p;
      if (!is_label(*p) || seen[ch] || label_count[ch] == 0)
        return bad_model(c,
                         "equation '%s': output label '%c' is invalid, repeated or not in "
                         "any operand",
                         eq, *p);
      seen[ch] = true;
      d[r++] = label_dim[ch];
    }
    if (ell_r > 0 && !ell_out)
      return bad(c, "equation '%s': the output must keep the dims under '...'", eq);
  } else {
    /* Implicit output: the ellipsis dims, then the labels used once, in ASCII order (numpy's
     * order, which the ONNX reference uses). */
    if (any_ell)
      for (int64_t q = 0; q < ell_r; q++)
        d[r++] = ell[max_r - ell_r + q];
    for (int ch = 0; ch < 128; ch++)
      if (label_count[ch] == 1)
        d[r++] = label_dim[ch];
  }
  return set_out(c, 0, in(c, 0)->dtype, r, d);
}

/* ---- Control flow ---------------------------------------------------------------------- */

/* Infers subgraph `sub` inside this node's scope; *out gets its vals. The first n_given formal
 * inputs of sub take the given types and shapes (Loop and Scan bodies); an If branch has none. */
static tsr_status infer_subgraph_with(ictx *c, const tsr__graph *sub, uint32_t n_given,
                                      const tsr__vshape *given, tsr__vshape **out) {
  *out = NULL;
  tsr__vshape *sv = tsr__calloc(sub->alloc, sub->n_values ? sub->n_values : 1, sizeof *sv);
  if (!sv)
    return oom(c);
  for (uint32_t i = 0; i < sub->n_values; i++)
    sv[i].rank = -1;
  tsr_status st = NULL;
  for (uint32_t i = 0; i < n_given && i < sub->n_inputs && !st; i++) {
    int32_t v = sub->inputs[i];
    if (v >= 0 && (uint32_t)v < sub->n_values)
      st = tsr__vshape_set(sub, &sv[v], given[i].dtype, given[i].rank, given[i].dims);
  }
  if (!st)
    st = infer_graph(sub, sv, c->eval, c->eval_ctx, c->sc);
  for (uint32_t k = 0; k < sub->n_outputs && !st; k++) {
    int32_t v = sub->outputs[k];
    if (v < 0 || (uint32_t)v >= sub->n_values || sv[v].dtype == TSR_DTYPE_UNDEFINED)
      st = bad_model(c, "subgraph output %u is not produced", k);
  }
  if (st) {
    tsr__vshapes_clear(sub, sv);
    tsr__free(sub->alloc, sv);
    return st;
  }
  *out = sv;
  return NULL;
}

static tsr_status infer_subgraph(ictx *c, const tsr__graph *sub, tsr__vshape **out) {
  return infer_subgraph_with(c, sub, 0, NULL, out);
}

static void free_subgraph_vals(const tsr__graph *sub, tsr__vshape *sv) {
  if (!sv)
    return;
  tsr__vshapes_clear(sub, sv);
  tsr__free(sub->alloc, sv);
}

/* True when every value that the node's subgraphs read from this graph has known data. */
static bool outer_reads_known(ictx *c) {
  for (uint32_t k = 0; k < c->n->n_attrs; k++) {
    const tsr__graph *s = c->n->attrs[k].g;
    for (uint32_t v = 0; s && v < s->n_values; v++) {
      if (!s->values[v].outer || !s->values[v].name)
        continue;
      int32_t i = tsr__graph_find_value(c->g, s->values[v].name);
      if (i < 0 || !c->vals[i].data)
        return false;
    }
  }
  return true;
}

/* A control-flow node whose inputs and outer reads are all known runs at plan time through
 * eval, which sets its outputs' types, shapes and data (see the NOTE in shape_infer.h).
 * *done says whether it did; an eval that cannot (UNSUPPORTED) leaves it to inference. */
static tsr_status fold_control(ictx *c, bool *done) {
  *done = false;
  if (!c->eval)
    return NULL;
  for (uint32_t i = 0; i < c->n->n_inputs; i++)
    if (in(c, i) && !in(c, i)->data)
      return NULL;
  if (!outer_reads_known(c))
    return NULL;
  tsr_status st = c->eval(c->eval_ctx, c->g, c->index, c->vals);
  for (uint32_t k = 0; k < c->n->n_outputs && !st; k++) {
    int32_t v = out_id(c, k);
    if (v < 0)
      continue;
    tsr__vshape *o = &c->vals[v];
    if (o->dtype == TSR_DTYPE_UNDEFINED || o->rank < 0)
      st =
          internal(c, "running the node at plan time left output %u '%s' unset", k, out_name(c, k));
    else if (!o->data && count_of(o) == 0)
      o->data = empty_data;
  }
  if (st) {
    for (uint32_t k = 0; k < c->n->n_outputs; k++)
      if (out_id(c, k) >= 0)
        reset_value(c->g, &c->vals[out_id(c, k)]);
    if (tsr_status_code_of(st) == TSR_STATUS_UNSUPPORTED) {
      tsr_status_free(st);
      return NULL;
    }
    return st;
  }
  *done = true;
  return NULL;
}

/* The shape a branch declares for output k, when complete; NULL otherwise. */
static bool declared_output(ictx *c, const tsr__graph *sub, uint32_t k, tsr__vshape *out) {
  const tsr__value *v = &sub->values[sub->outputs[k]];
  if (v->dtype == TSR_DTYPE_UNDEFINED || v->rank < 0)
    return false;
  int64_t *d = tmp_dims(c, v->rank ? (size_t)v->rank : 1);
  if (!d)
    return false;
  for (int32_t i = 0; i < v->rank; i++) {
    if (v->dims[i].value < 0)
      return false;
    d[i] = v->dims[i].value;
  }
  memset(out, 0, sizeof *out);
  out->dtype = v->dtype;
  out->rank = v->rank;
  out->dims = d;
  return true;
}

static const tsr__graph *graph_attr(ictx *c, const char *name) {
  const tsr__attr *a = attr(c, name, TSR_PLUGIN_ATTR_GRAPH);
  return a ? a->g : NULL;
}

static tsr_status infer_if(ictx *c) {
  static const char *const names[2] = {"then_branch", "else_branch"};
  const tsr__graph *br[2];
  for (int b = 0; b < 2; b++) {
    br[b] = graph_attr(c, names[b]);
    if (!br[b])
      return missing_attr(c, names[b]);
    if (br[b]->n_outputs != c->n->n_outputs)
      return bad_model(c, "%s has %u outputs, but the node has %u", names[b], br[b]->n_outputs,
                       c->n->n_outputs);
    if (br[b]->n_inputs != 0)
      return bad_model(c, "%s has %u inputs; If branches take none", names[b], br[b]->n_inputs);
  }
  TSR_RETURN_IF_ERROR(want_dtype(c, 0, TSR_DTYPE_BOOL));
  TSR_RETURN_IF_ERROR(want_scalar(c, 0));
  const tsr__vshape *cond = in(c, 0);
  if (cond->data) {
    /* A known condition: the node is the branch it takes, and the other is never looked at. */
    int b = ((const uint8_t *)cond->data)[0] ? 0 : 1;
    tsr__vshape *sv;
    tsr_status st = infer_subgraph(c, br[b], &sv);
    if (st)
      return tsr__status_wrap(st, "node '%s' (If): in %s", c->n->name, names[b]);
    for (uint32_t k = 0; k < c->n->n_outputs && !st; k++) {
      const tsr__vshape *o = &sv[br[b]->outputs[k]];
      st = set_out(c, k, o->dtype, o->rank, o->dims);
      int32_t v = out_id(c, k);
      if (st || v < 0 || !o->data)
        continue;
      if (o->owns_data) {
        st = set_out_data(c, k, o->data, o->nbytes);
      } else {
        /* Model data or an outer value's: both outlive these vals. */
        c->vals[v].data = o->data;
        c->vals[v].is_weight = o->is_weight;
      }
    }
    free_subgraph_vals(br[b], sv);
    return st;
  }
  /* A condition known only at run time: both branches must agree. A branch that cannot be
   * inferred with these shapes (often one never taken, such as a rank check's failure path)
   * is left to run time: the other branch, or the types the branch declares, give the
   * outputs, and the branch fails only if it is ever taken. */
  tsr__vshape *sv[2] = {NULL, NULL};
  tsr_status why[2] = {NULL, NULL}, st = NULL;
  for (int b = 0; b < 2; b++)
    why[b] = infer_subgraph(c, br[b], &sv[b]);
  if (why[0] && why[1]) {
    /* Knowing the condition would leave one branch out: it may come from input values. */
    st = tsr__status_mark(tsr__status_wrap(why[0],
                                           "node '%s' (If): neither branch can be inferred "
                                           "while condition '%s' is unknown; in %s",
                                           c->n->name, in_name(c, 0), names[0]),
                          TSR__STATUS_NEEDS_INPUT_VALUES);
    why[0] = NULL;
  }
  for (uint32_t k = 0; k < c->n->n_outputs && !st; k++) {
    tsr__vshape got[2];
    bool have[2] = {false, false};
    for (int b = 0; b < 2; b++) {
      if (sv[b]) {
        got[b] = sv[b][br[b]->outputs[k]];
        have[b] = true;
      } else {
        have[b] = declared_output(c, br[b], k, &got[b]);
      }
    }
    if (!have[0] || !have[1]) {
      int b = have[0] ? 0 : 1;
      st = set_out(c, k, got[b].dtype, got[b].rank, got[b].dims);
      continue;
    }
    if (got[0].dtype != got[1].dtype)
      st = bad_model(c, "output %u '%s' is %s in then_branch but %s in else_branch", k,
                     out_name(c, k), dt(got[0].dtype), dt(got[1].dtype));
    else if (!dims_equal(got[0].dims, got[0].rank, got[1].dims, got[1].rank))
      st = tsr__status_mark(
          unsupported(c,
                      "output %u '%s' has shape %s in then_branch and %s in else_branch, "
                      "so it depends on condition '%s', which is only known at run time",
                      k, out_name(c, k), vstr(c, &got[0]), vstr(c, &got[1]), in_name(c, 0)),
          TSR__STATUS_NEEDS_INPUT_VALUES);
    else
      st = set_out(c, k, got[0].dtype, got[0].rank, got[0].dims);
  }
  for (int b = 0; b < 2; b++) {
    free_subgraph_vals(br[b], sv[b]);
    tsr_status_free(why[b]);
  }
  return st;
}

/* The body's condition output stays true when it is known true, or is the condition input
 * passed through (directly or by an Identity) and the first condition is true. The body's
 * condition counts even when the node has no condition input (the first is then true), as
 * ONNX Runtime runs it. */
static bool loop_cond_stays_true(const tsr__graph *body, const tsr__vshape *bv, bool first) {
  int32_t v = body->outputs[0];
  if (v < 0)
    return false;
  if (bv[v].data)
    return ((const uint8_t *)bv[v].data)[0] != 0;
  int32_t cin = body->n_inputs > 1 ? body->inputs[1] : -1;
  for (int hops = 0; hops < 8 && v >= 0 && v != cin; hops++) {
    int32_t p = body->values[v].producer;
    if (p < 0 || strcmp(body->nodes[p].op_type, "Identity") != 0 || body->nodes[p].n_inputs < 1)
      return false;
    v = body->nodes[p].inputs[0];
  }
  return v >= 0 && v == cin && first;
}

static tsr_status infer_loop(ictx *c) {
  const tsr__graph *body = graph_attr(c, "body");
  if (!body)
    return missing_attr(c, "body");
  if (c->n->n_inputs < 2)
    return bad_model(c, "has %u inputs; Loop takes M, cond and the loop-carried values",
                     c->n->n_inputs);
  uint32_t n_carried = c->n->n_inputs - 2;
  if (body->n_inputs != n_carried + 2)
    return bad_model(c,
                     "body has %u inputs, expected %u (iteration number, condition and %u "
                     "loop-carried values)",
                     body->n_inputs, n_carried + 2, n_carried);
  if (c->n->n_outputs < n_carried)
    return bad_model(c, "has %u outputs, fewer than its %u loop-carried values", c->n->n_outputs,
                     n_carried);
  uint32_t n_scan = c->n->n_outputs - n_carried;
  if (body->n_outputs != 1 + n_carried + n_scan)
    return bad_model(c,
                     "body has %u outputs, expected %u (condition, %u loop-carried values and %u "
                     "scan outputs)",
                     body->n_outputs, 1 + n_carried + n_scan, n_carried, n_scan);
  const tsr__vshape *m = in(c, 0), *cond = in(c, 1);
  if (m) {
    TSR_RETURN_IF_ERROR(want_dtype(c, 0, TSR_DTYPE_INT64));
    TSR_RETURN_IF_ERROR(want_scalar(c, 0));
    if (m->data && ((const int64_t *)m->data)[0] < 0)
      return bad(c, "trip count M '%s' is %lld; it must not be negative", in_name(c, 0),
                 LL(((const int64_t *)m->data)[0]));
  }
  if (cond) {
    TSR_RETURN_IF_ERROR(want_dtype(c, 1, TSR_DTYPE_BOOL));
    TSR_RETURN_IF_ERROR(want_scalar(c, 1));
  }
  bool done;
  TSR_RETURN_IF_ERROR(fold_control(c, &done));
  if (done)
    return NULL;

  /* The body with the first iteration's types; loop-carried values must keep their type and
   * shape from one iteration to the next for the outputs to be known before the run. */
  tsr__vshape *given = tmp(c, (n_carried + 2) * sizeof *given);
  if (!given)
    return oom(c);
  memset(given, 0, (n_carried + 2) * sizeof *given);
  given[0].dtype = TSR_DTYPE_INT64;
  given[1].dtype = TSR_DTYPE_BOOL;
  for (uint32_t k = 0; k < n_carried; k++) {
    const tsr__vshape *x = in(c, 2 + k);
    if (!x)
      return bad_model(c, "loop-carried input %u is absent", k);
    given[2 + k] = *x;
  }
  tsr__vshape *bv = NULL;
  tsr_status st = infer_subgraph_with(c, body, n_carried + 2, given, &bv);
  if (st)
    return tsr__status_wrap(st, "node '%s' (Loop): in body", c->n->name);
  const tsr__vshape *bc = &bv[body->outputs[0]];
  if (bc->dtype != TSR_DTYPE_BOOL || count_of(bc) != 1)
    st = bad_model(c, "body output 0 (the condition) must be one bool, got %s %s", dt(bc->dtype),
                   vstr(c, bc));
  for (uint32_t k = 0; k < n_carried && !st; k++) {
    const tsr__vshape *x = in(c, 2 + k), *y = &bv[body->outputs[1 + k]];
    if (x->dtype != y->dtype)
      st = bad_model(c, "loop-carried value %u '%s' is %s, but the body returns %s for it", k,
                     in_name(c, 2 + k), dt(x->dtype), dt(y->dtype));
    else if (!dims_equal(x->dims, x->rank, y->dims, y->rank))
      st = unsupported(c,
                       "loop-carried value %u '%s' changes shape from %s to %s in one "
                       "iteration; loops whose values change shape are not supported",
                       k, in_name(c, 2 + k), vstr(c, x), vstr(c, y));
    else
      st = set_out(c, k, x->dtype, x->rank, x->dims);
  }
  /* Scan outputs stack one slice per iteration: their shape needs the iteration count. */
  int64_t iters = -1;
  bool first_known = !cond || cond->data;
  bool first = !cond || (cond->data && ((const uint8_t *)cond->data)[0]);
  if (first_known && !first)
    iters = 0;
  else if (m && m->data && first_known && loop_cond_stays_true(body, bv, first))
    iters = ((const int64_t *)m->data)[0];
  for (uint32_t k = 0; k < n_scan && !st; k++) {
    const tsr__vshape *y = &bv[body->outputs[1 + n_carried + k]];
    if (iters < 0) {
      st = tsr__status_mark(
          unsupported(c,
                      "scan output %u '%s' stacks one slice per iteration, and the number of "
                      "iterations is only known at run time",
                      k, out_name(c, n_carried + k)),
          TSR__STATUS_NEEDS_INPUT_VALUES);
      break;
    }
    int64_t *d = tmp_dims(c, (size_t)y->rank + 1);
    if (!d) {
      st = oom(c);
      break;
    }
    d[0] = iters;
    copy_dims(d + 1, y);
    st = set_out(c, n_carried + k, y->dtype, y->rank + 1, d);
  }
  free_subgraph_vals(body, bv);
  return st;
}

/* Scan's layout, shared by inference and execution: see tsr__scan_layout in shape_infer.h. */
tsr_status tsr__scan_layout(const tsr__node *n, int64_t opset, const tsr__graph *body,
                            tsr__scan_info *out) {
  memset(out, 0, sizeof *out);
  char err[256] = "";
  int64_t m = tsr__node_attr_int(n, "num_scan_inputs", -1);
  uint32_t first = opset < 9 ? 1 : 0;
  if (m < 1)
    snprintf(err, sizeof err, "attribute 'num_scan_inputs' is %lld; it must be >= 1", LL(m));
  else if (n->n_inputs < first + (uint64_t)m)
    snprintf(err, sizeof err, "has %u inputs, fewer than num_scan_inputs %lld", n->n_inputs, LL(m));
  if (!err[0]) {
    out->first = first;
    out->n_scan_in = (uint32_t)m;
    out->n_state = n->n_inputs - first - (uint32_t)m;
    if (n->n_outputs < out->n_state)
      snprintf(err, sizeof err, "has %u outputs, fewer than its %u state values", n->n_outputs,
               out->n_state);
  }
  if (!err[0]) {
    out->n_scan_out = n->n_outputs - out->n_state;
    if (body->n_inputs != out->n_state + out->n_scan_in)
      snprintf(err, sizeof err,
               "body has %u inputs, expected %u (%u state values and %u scan "
               "inputs)",
               body->n_inputs, out->n_state + out->n_scan_in, out->n_state, out->n_scan_in);
    else if (body->n_outputs != n->n_outputs)
      snprintf(err, sizeof err,
               "body has %u outputs, expected %u (%u state values and %u scan "
               "outputs)",
               body->n_outputs, n->n_outputs, out->n_state, out->n_scan_out);
  }
  const char *names[4] = {opset < 9 ? "directions" : "scan_input_directions", "scan_input_axes",
                          "scan_output_directions", "scan_output_axes"};
  int64_t *dst[4] = {out->in_dir, out->in_axis, out->out_dir, out->out_axis};
  uint32_t want[4] = {out->n_scan_in, out->n_scan_in, out->n_scan_out, out->n_scan_out};
  for (int a = 0; a < 4 && !err[0]; a++) {
    if (want[a] > TSR__SCAN_MAX) {
      snprintf(err, sizeof err, "has %u scan inputs or outputs; at most %d are supported", want[a],
               TSR__SCAN_MAX);
      break;
    }
    const tsr__attr *at = tsr__node_attr(n, names[a]);
    if (at && (opset < 9 && a > 0)) {
      snprintf(err, sizeof err, "attribute '%s' needs opset 9", names[a]);
      break;
    }
    if (at && at->count != want[a]) {
      snprintf(err, sizeof err, "attribute '%s' has %zu values, expected %u", names[a], at->count,
               want[a]);
      break;
    }
    for (uint32_t i = 0; i < want[a]; i++) {
      dst[a][i] = at && at->ints ? at->ints[i] : 0;
      if ((a == 0 || a == 2) && dst[a][i] != 0 && dst[a][i] != 1)
        snprintf(err, sizeof err, "attribute '%s'[%u] is %lld; it must be 0 or 1", names[a], i,
                 LL(dst[a][i]));
    }
  }
  if (err[0])
    return tsr__status_make(TSR_STATUS_INVALID_MODEL, "node '%s' (Scan): %s", n->name, err);
  return NULL;
}

static tsr_status infer_scan(ictx *c) {
  const tsr__graph *body = graph_attr(c, "body");
  if (!body)
    return missing_attr(c, "body");
  tsr__scan_info si;
  TSR_RETURN_IF_ERROR(tsr__scan_layout(c->n, c->opset, body, &si));
  bool batched = c->opset < 9;
  if (batched && in(c, 0)) {
    TSR_RETURN_IF_ERROR(want_dtype(c, 0, TSR_DTYPE_INT64));
  }
  /* Batch (opset 8) and sequence length, checked across the inputs. */
  int64_t batch = -1, len = -1;
  uint32_t n_in = si.n_state + si.n_scan_in;
  tsr__vshape *given = tmp(c, (n_in ? n_in : 1) * sizeof *given);
  if (!given)
    return oom(c);
  for (uint32_t i = 0; i < n_in; i++) {
    uint32_t idx = si.first + i;
    const tsr__vshape *x = in(c, idx);
    if (!x)
      return bad_model(c, "input %u is required but absent", idx);
    bool is_scan = i >= si.n_state;
    int64_t axis = 0, skip = batched ? 1 : 0;
    if (is_scan) {
      int64_t a = batched ? 1 : si.in_axis[i - si.n_state];
      TSR_RETURN_IF_ERROR(norm_axis(c, a, x->rank, "scan input axis", &axis));
      if (batched && x->rank < 2)
        return bad(c, "scan input %u '%s' %s needs a batch and a sequence axis", i - si.n_state,
                   in_name(c, idx), vstr(c, x));
      if (len >= 0 && x->dims[axis] != len)
        return bad(c,
                   "scan input %u '%s' %s has %lld steps along axis %lld; an earlier one has "
                   "%lld",
                   i - si.n_state, in_name(c, idx), vstr(c, x), LL(x->dims[axis]), LL(axis),
                   LL(len));
      len = x->dims[axis];
    }
    if (batched) {
      if (x->rank < 1)
        return bad(c, "input %u '%s' needs a batch axis", idx, in_name(c, idx));
      if (batch >= 0 && x->dims[0] != batch)
        return bad(c, "input %u '%s' %s has batch %lld; an earlier input has %lld", idx,
                   in_name(c, idx), vstr(c, x), LL(x->dims[0]), LL(batch));
      batch = x->dims[0];
    }
    /* The body sees the input without its batch axis and, for scan inputs, without the
     * scanned axis. */
    int64_t *d = tmp_dims(c, (size_t)x->rank + 1);
    if (!d)
      return oom(c);
    int64_t r = 0;
    for (int64_t k = skip; k < x->rank; k++)
      if (!is_scan || k != axis)
        d[r++] = x->dims[k];
    given[i] = (tsr__vshape){.dtype = x->dtype, .rank = (int32_t)r, .dims = d};
  }
  if (batched && in(c, 0)) {
    const tsr__vshape *sl = in(c, 0);
    if (!(sl->rank == 1 && sl->dims[0] == batch))
      return bad(c, "sequence_lens '%s' %s must have shape [%lld]", in_name(c, 0), vstr(c, sl),
                 LL(batch));
  }
  bool done;
  TSR_RETURN_IF_ERROR(fold_control(c, &done));
  if (done)
    return NULL;
  tsr__vshape *bv = NULL;
  tsr_status st = infer_subgraph_with(c, body, n_in, given, &bv);
  if (st)
    return tsr__status_wrap(st, "node '%s' (Scan): in body", c->n->name);
  for (uint32_t k = 0; k < c->n->n_outputs && !st; k++) {
    const tsr__vshape *y = &bv[body->outputs[k]];
    int64_t *d = tmp_dims(c, (size_t)y->rank + 2);
    if (!d) {
      st = oom(c);
      break;
    }
    int64_t r = 0;
    if (batched)
      d[r++] = batch;
    if (k < si.n_state) {
      if (y->dtype != given[k].dtype ||
          !dims_equal(y->dims, y->rank, given[k].dims, given[k].rank)) {
        st = bad_model(c, "state value %u '%s' is %s %s, but the body returns %s %s", k,
                       in_name(c, si.first + k), dt(given[k].dtype), vstr(c, &given[k]),
                       dt(y->dtype), vstr(c, y));
        break;
      }
      copy_dims(d + r, y);
      r += y->rank;
    } else {
      int64_t axis = 0;
      if (!batched) {
        st = norm_axis(c, si.out_axis[k - si.n_state], y->rank + 1, "scan output axis", &axis);
        if (st)
          break;
      }
      for (int64_t q = 0; q <= y->rank; q++)
        d[r++] = q == axis ? len : y->dims[q < axis ? q : q - 1];
    }
    st = set_out(c, k, y->dtype, r, d);
  }
  free_subgraph_vals(body, bv);
  return st;
}

/* ---- The rules, sorted by op_type (strcmp order) for binary search --------------------- */

static const op_rule rules[] = {
    {"Abs", infer_same, 1, 1, 1, 0, 1},
    {"Acos", infer_same, 1, 1, 1, 0, 7},
    {"Acosh", infer_same, 1, 1, 1, 0, 7},
    {"Add", infer_arith, 2, 2, 1, 0, 1},
    {"And", infer_logic, 2, 2, 1, 0, 1},
    {"ArgMax", infer_argmax, 1, 1, 1, 0, 1},
    {"ArgMin", infer_argmax, 1, 1, 1, 0, 1},
    {"Asin", infer_same, 1, 1, 1, 0, 7},
    {"Asinh", infer_same, 1, 1, 1, 0, 7},
    {"Atan", infer_same, 1, 1, 1, 0, 7},
    {"Atanh", infer_same, 1, 1, 1, 0, 7},
    {"AveragePool", infer_pool, 1, 1, 1, 0, 1},
    {"BatchNormalization", infer_batchnorm, 5, 5, 5, 0, 1},
    {"Bernoulli", infer_random_like, 1, 1, 1, F_NOFOLD, 7},
    {"BitShift", infer_bitshift, 2, 2, 1, 0, 7},
    {"BitwiseAnd", infer_arith, 2, 2, 1, 0, 7},
    {"BitwiseNot", infer_same, 1, 1, 1, 0, 7},
    {"BitwiseOr", infer_arith, 2, 2, 1, 0, 7},
    {"BitwiseXor", infer_arith, 2, 2, 1, 0, 7},
    {"BlackmanWindow", infer_window, 1, 1, 1, 0, 7},
    {"Cast", infer_cast, 1, 1, 1, 0, 6},
    {"CastLike", infer_castlike, 2, 2, 1, 0, 7},
    {"Ceil", infer_same, 1, 1, 1, 0, 1},
    {"Celu", infer_same, 1, 1, 1, 0, 7},
    {"Clip", infer_clip, 1, 3, 1, 0, 1},
    {"Compress", infer_compress, 2, 2, 1, 0, 7},
    {"Concat", infer_concat, 1, VAR, 1, 0, 1},
    {"Constant", infer_constant, 0, 0, 1, F_SELF, 1},
    {"ConstantOfShape", infer_constant_of_shape, 1, 1, 1, 0, 7},
    {"Conv", infer_conv, 2, 3, 1, 0, 1},
    {"ConvInteger", infer_conv_integer, 2, 4, 1, 0, 7},
    {"ConvTranspose", infer_conv_transpose, 2, 3, 1, 0, 1},
    {"Cos", infer_same, 1, 1, 1, 0, 7},
    {"Cosh", infer_same, 1, 1, 1, 0, 7},
    {"CumSum", infer_cumsum, 2, 2, 1, 0, 7},
    {"DFT", infer_dft, 1, 2, 1, 0, 7},
    {"DepthToSpace", infer_depth_to_space, 1, 1, 1, 0, 1},
    {"DequantizeLinear", infer_dequantize, 2, 3, 1, F_NOFOLD, 7},
    {"Det", infer_det, 1, 1, 1, 0, 7},
    {"Div", infer_arith, 2, 2, 1, 0, 1},
    {"Dropout", infer_dropout, 1, 3, 2, 0, 1},
    {"DynamicQuantizeLinear", infer_dynamic_quantize, 1, 1, 3, 0, 7},
    {"Einsum", infer_einsum, 1, VAR, 1, 0, 7},
    {"Elu", infer_same, 1, 1, 1, 0, 1},
    {"Equal", infer_compare, 2, 2, 1, 0, 1},
    {"Erf", infer_same, 1, 1, 1, 0, 7},
    {"Exp", infer_same, 1, 1, 1, 0, 1},
    {"Expand", infer_expand, 2, 2, 1, 0, 7},
    {"EyeLike", infer_eyelike, 1, 1, 1, 0, 7},
    {"Flatten", infer_flatten, 1, 1, 1, 0, 1},
    {"Floor", infer_same, 1, 1, 1, 0, 1},
    {"GRU", infer_rnn, 3, 6, 2, 0, 1},
    {"Gather", infer_gather, 2, 2, 1, 0, 1},
    {"GatherElements", infer_gather_elements, 2, 2, 1, 0, 7},
    {"GatherND", infer_gather_nd, 2, 2, 1, 0, 7},
    {"Gelu", infer_same, 1, 1, 1, 0, 7},
    {"Gemm", infer_gemm, 2, 3, 1, 0, 1},
    {"GlobalAveragePool", infer_global_pool, 1, 1, 1, 0, 1},
    {"GlobalLpPool", infer_global_pool, 1, 1, 1, 0, 1},
    {"GlobalMaxPool", infer_global_pool, 1, 1, 1, 0, 1},
    {"Greater", infer_compare, 2, 2, 1, 0, 1},
    {"GreaterOrEqual", infer_compare, 2, 2, 1, 0, 7},
    {"GridSample", infer_grid_sample, 2, 2, 1, 0, 7},
    {"GroupNormalization", infer_groupnorm, 3, 3, 1, 0, 7},
    {"HammingWindow", infer_window, 1, 1, 1, 0, 7},
    {"HannWindow", infer_window, 1, 1, 1, 0, 7},
    {"HardSigmoid", infer_same, 1, 1, 1, 0, 1},
    {"HardSwish", infer_same, 1, 1, 1, 0, 7},
    {"Hardmax", infer_softmax, 1, 1, 1, 0, 1},
    {"Identity", infer_same, 1, 1, 1, 0, 1},
    {"If", infer_if, 1, 1, VAR, F_CONTROL, 1},
    {"InstanceNormalization", infer_instancenorm, 3, 3, 1, 0, 1},
    {"IsInf", infer_isnan, 1, 1, 1, 0, 7},
    {"IsNaN", infer_isnan, 1, 1, 1, 0, 7},
    {"LRN", infer_lrn, 1, 1, 1, 0, 1},
    {"LSTM", infer_rnn, 3, 8, 3, 0, 1},
    {"LayerNormalization", infer_layernorm, 2, 3, 3, 0, 7},
    {"LeakyRelu", infer_same, 1, 1, 1, 0, 1},
    {"Less", infer_compare, 2, 2, 1, 0, 1},
    {"LessOrEqual", infer_compare, 2, 2, 1, 0, 7},
    {"Log", infer_same, 1, 1, 1, 0, 1},
    {"LogSoftmax", infer_softmax, 1, 1, 1, 0, 1},
    {"Loop", infer_loop, 0, VAR, VAR, F_CONTROL, 1},
    {"LpNormalization", infer_lp_normalization, 1, 1, 1, 0, 1},
    {"LpPool", infer_pool, 1, 1, 1, 0, 1},
    {"MatMul", infer_matmul, 2, 2, 1, 0, 1},
    {"MatMulInteger", infer_matmul_integer, 2, 4, 1, 0, 7},
    {"Max", infer_variadic, 1, VAR, 1, 0, 1},
    {"MaxPool", infer_pool, 1, 1, 2, 0, 1},
    {"MaxUnpool", infer_max_unpool, 2, 3, 1, 0, 7},
    {"Mean", infer_variadic, 1, VAR, 1, 0, 1},
    {"MeanVarianceNormalization", infer_same, 1, 1, 1, 0, 7},
    {"MelWeightMatrix", infer_mel_weight_matrix, 5, 5, 1, 0, 7},
    {"Min", infer_variadic, 1, VAR, 1, 0, 1},
    {"Mish", infer_same, 1, 1, 1, 0, 7},
    {"Mod", infer_mod, 2, 2, 1, 0, 7},
    {"Mul", infer_arith, 2, 2, 1, 0, 1},
    {"Multinomial", infer_multinomial, 1, 1, 1, F_NOFOLD, 7},
    {"Neg", infer_same, 1, 1, 1, 0, 1},
    {"NonMaxSuppression", infer_nms, 2, 5, 1, 0, 7},
    {"NonZero", infer_nonzero, 1, 1, 1, 0, 7},
    {"Not", infer_not, 1, 1, 1, 0, 1},
    {"OneHot", infer_onehot, 3, 3, 1, 0, 7},
    {"Or", infer_logic, 2, 2, 1, 0, 1},
    {"PRelu", infer_prelu, 2, 2, 1, 0, 1},
    {"Pad", infer_pad, 1, 4, 1, 0, 1},
    {"Pow", infer_pow, 2, 2, 1, 0, 1},
    {"QLinearConv", infer_qlinear_conv, 8, 9, 1, 0, 7},
    {"QLinearMatMul", infer_qlinear_matmul, 8, 8, 1, 0, 7},
    {"QuantizeLinear", infer_quantize, 2, 3, 1, 0, 7},
    {"RNN", infer_rnn, 3, 6, 2, 0, 1},
    {"RandomNormal", infer_random, 0, 0, 1, F_NOFOLD, 1},
    {"RandomNormalLike", infer_random_like, 1, 1, 1, F_NOFOLD, 1},
    {"RandomUniform", infer_random, 0, 0, 1, F_NOFOLD, 1},
    {"RandomUniformLike", infer_random_like, 1, 1, 1, F_NOFOLD, 1},
    {"Range", infer_range, 3, 3, 1, 0, 7},
    {"Reciprocal", infer_same, 1, 1, 1, 0, 1},
    {"ReduceL1", infer_reduce, 1, 2, 1, 0, 1},
    {"ReduceL2", infer_reduce, 1, 2, 1, 0, 1},
    {"ReduceLogSum", infer_reduce, 1, 2, 1, 0, 1},
    {"ReduceLogSumExp", infer_reduce, 1, 2, 1, 0, 1},
    {"ReduceMax", infer_reduce, 1, 2, 1, 0, 1},
    {"ReduceMean", infer_reduce, 1, 2, 1, 0, 1},
    {"ReduceMin", infer_reduce, 1, 2, 1, 0, 1},
    {"ReduceProd", infer_reduce, 1, 2, 1, 0, 1},
    {"ReduceSum", infer_reduce, 1, 2, 1, 0, 1},
    {"ReduceSumSquare", infer_reduce, 1, 2, 1, 0, 1},
    {"Relu", infer_same, 1, 1, 1, 0, 1},
    {"Reshape", infer_reshape, 1, 2, 1, 0, 1},
    {"Resize", infer_resize, 1, 4, 1, 0, 7},
    {"ReverseSequence", infer_reverse_sequence, 2, 2, 1, 0, 7},
    {"RoiAlign", infer_roi_align, 3, 3, 1, 0, 7},
    {"Round", infer_same, 1, 1, 1, 0, 7},
    {"STFT", infer_stft, 2, 4, 1, 0, 7},
    {"Scan", infer_scan, 0, VAR, VAR, F_CONTROL, 8},
    {"Scatter", infer_scatter_elements, 3, 3, 1, 0, 7},
    {"ScatterElements", infer_scatter_elements, 3, 3, 1, 0, 7},
    {"ScatterND", infer_scatter_nd, 3, 3, 1, 0, 7},
    {"Selu", infer_same, 1, 1, 1, 0, 1},
    {"Shape", infer_shape, 1, 1, 1, F_SELF, 1},
    {"Shrink", infer_same, 1, 1, 1, 0, 7},
    {"Sigmoid", infer_same, 1, 1, 1, 0, 1},
    {"Sign", infer_same, 1, 1, 1, 0, 7},
    {"Sin", infer_same, 1, 1, 1, 0, 7},
    {"Sinh", infer_same, 1, 1, 1, 0, 7},
    {"Size", infer_size, 1, 1, 1, F_SELF, 1},
    {"Slice", infer_slice, 1, 5, 1, 0, 1},
    {"Softmax", infer_softmax, 1, 1, 1, 0, 1},
    {"Softplus", infer_same, 1, 1, 1, 0, 1},
    {"Softsign", infer_same, 1, 1, 1, 0, 1},
    {"SpaceToDepth", infer_depth_to_space, 1, 1, 1, 0, 1},
    {"Split", infer_split, 1, 2, VAR, 0, 1},
    {"Sqrt", infer_same, 1, 1, 1, 0, 1},
    {"Squeeze", infer_squeeze, 1, 2, 1, 0, 1},
    {"Sub", infer_arith, 2, 2, 1, 0, 1},
    {"Sum", infer_variadic, 1, VAR, 1, 0, 1},
    {"Tan", infer_same, 1, 1, 1, 0, 7},
    {"Tanh", infer_same, 1, 1, 1, 0, 1},
    {"ThresholdedRelu", infer_same, 1, 1, 1, 0, 7},
    {"Tile", infer_tile, 2, 2, 1, 0, 6},
    {"TopK", infer_topk, 1, 2, 2, 0, 1},
    {"Transpose", infer_transpose, 1, 1, 1, 0, 1},
    {"Trilu", infer_trilu, 1, 2, 1, 0, 7},
    {"Unique", infer_unique, 1, 1, 4, 0, 7},
    {"Unsqueeze", infer_unsqueeze, 1, 2, 1, 0, 1},
    {"Upsample", infer_resize, 1, 2, 1, 0, 7},
    {"Where", infer_where, 3, 3, 1, 0, 7},
    {"Xor", infer_logic, 2, 2, 1, 0, 1},
};

static int cmp_rule(const void *key, const void *elem) {
  return strcmp((const char *)key, ((const op_rule *)elem)->op_type);
}

static const op_rule *find_rule(const char *op_type) {
  if (!op_type)
    return NULL;
  return bsearch(op_type, rules, sizeof rules / sizeof *rules, sizeof *rules, cmp_rule);
}

static bool domain_is_onnx(const char *d) { return !d || !*d || strcmp(d, "ai.onnx") == 0; }

bool tsr__shape_op_known(const char *domain, const char *op_type) {
  return domain_is_onnx(domain) && find_rule(op_type) != NULL;
}

/* ---- Values ---------------------------------------------------------------------------- */

tsr_status tsr__vshape_set(const tsr__graph *g, tsr__vshape *v, int32_t dtype, int32_t rank,
                           const int64_t *dims) {
  if (rank < 0)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "a shape needs a rank >= 0, got %d", rank);
  size_t count, bytes = 0;
  for (int32_t i = 0; i < rank; i++)
    if (dims[i] < 0)
      return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                              "dim %d is %lld; shapes must be concrete (>= 0)", i, LL(dims[i]));
  if (!tsr__shape_count(dims, (size_t)rank, &count) ||
      !tsr__mul_size(count, tsr_dtype_size((tsr_dtype)dtype), &bytes)) {
    char buf[256];
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "shape %s of %s is too large",
                            tsr__format_dims(dims, (size_t)rank, buf, sizeof buf), dt(dtype));
  }
  int64_t *nd = NULL;
  if (rank > 0) {
    nd = tsr__alloc(g->alloc, (size_t)rank * sizeof *nd);
    if (!nd)
      return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory setting a shape");
    memcpy(nd, dims, (size_t)rank * sizeof *nd);
  }
  tsr__free(g->alloc, v->dims);
  v->dims = nd;
  v->dtype = dtype;
  v->rank = rank;
  v->nbytes = bytes;
  return NULL;
}

void tsr__vshapes_clear(const tsr__graph *g, tsr__vshape *vals) {
  if (!g || !vals)
    return;
  for (uint32_t i = 0; i < g->n_values; i++)
    reset_value(g, &vals[i]);
}

/* Fills value v of a subgraph from the enclosing graph that defines it, by name. The data is
 * borrowed: the enclosing vals outlive these. */
static tsr_status resolve_outer(const tsr__graph *g, tsr__vshape *vals, uint32_t v,
                                const scope *outer, bool *found) {
  *found = false;
  const char *name = g->values[v].name;
  for (const scope *s = outer; s && name; s = s->up) {
    int32_t i = tsr__graph_find_value(s->g, name);
    if (i < 0 || s->vals[i].dtype == TSR_DTYPE_UNDEFINED)
      continue;
    const tsr__vshape *src = &s->vals[i];
    TSR_RETURN_IF_ERROR(tsr__vshape_set(g, &vals[v], src->dtype, src->rank, src->dims));
    vals[v].data = src->data;
    vals[v].is_weight = src->is_weight;
    *found = true;
    return NULL;
  }
  return NULL;
}

/* ---- The driver ------------------------------------------------------------------------ */

/* Hands the node to eval when every present input is known and the outputs are small enough.
 * An eval that answers UNSUPPORTED leaves the outputs unknown; they are then computed when the
 * graph runs. */
static tsr_status fold(ictx *c, const op_rule *rule) {
  const tsr__node *n = c->n;
  if (!c->eval || (rule->flags & (F_NOFOLD | F_SELF | F_CONTROL)))
    return NULL;
  bool any = false;
  for (uint32_t i = 0; i < n->n_inputs; i++) {
    const tsr__vshape *v = in(c, i);
    if (!v)
      continue;
    if (!v->data)
      return NULL;
    any = true;
  }
  if (!any)
    return NULL;
  size_t total = 0;
  for (uint32_t k = 0; k < n->n_outputs; k++) {
    int32_t v = out_id(c, k);
    if (v < 0)
      continue;
    const tsr__vshape *o = &c->vals[v];
    if (o->data)
      return NULL; /* a rule that knew better */
    if (tsr_dtype_size((tsr_dtype)o->dtype) == 0)
      return NULL;
    if (!tsr__add_size(total, o->nbytes, &total) || total > FOLD_MAX_BYTES)
      return NULL;
  }
  tsr_status st = c->eval(c->eval_ctx, c->g, c->index, c->vals);
  for (uint32_t k = 0; k < n->n_outputs; k++) {
    int32_t v = out_id(c, k);
    if (v < 0)
      continue;
    tsr__vshape *o = &c->vals[v];
    size_t want = count_of(o) * tsr_dtype_size((tsr_dtype)o->dtype);
    if (!st && o->data && o->nbytes != want)
      st = internal(c, "folding produced %zu bytes for output %u '%s' %s, expected %zu", o->nbytes,
                    k, out_name(c, k), vstr(c, o), want);
    if (st) {
      if (o->owns_data)
        tsr__free(c->g->alloc, (void *)o->data);
      o->data = NULL;
      o->owns_data = false;
      o->nbytes = want;
    } else if (!o->data && want == 0) {
      o->data = empty_data; /* folded to nothing: still known */
    }
  }
  if (st && tsr_status_code_of(st) == TSR_STATUS_UNSUPPORTED) {
    tsr_status_free(st);
    return NULL;
  }
  if (st) {
    /* eval's messages usually name the node already; say so only when they do not. */
    char prefix[256];
    snprintf(prefix, sizeof prefix, "node '%s' (", n->name);
    if (strncmp(tsr_status_message(st), prefix, strlen(prefix)) != 0)
      return tsr__status_wrap(st, "node '%s' (%s): while folding", n->name, n->op_type);
  }
  return st;
}

static tsr_status infer_node(ictx *c) {
  const tsr__node *n = c->n;
  const tsr__graph *g = c->g;
  const char *domain = n->domain ? n->domain : "";
  c->opset = n->opset > 0 ? n->opset : tsr__graph_opset(g, domain);
  if (!domain_is_onnx(domain))
    return unsupported(c, "operator %s (domain '%s', opset %lld) is not supported", n->op_type,
                       domain, LL(c->opset));
  if (c->opset <= 0)
    return bad_model(c, "the model imports no opset for domain '%s'", domain);
  const op_rule *rule = find_rule(n->op_type);
  if (!rule)
    return unsupported(c, "operator %s (domain '%s', opset %lld) is not supported", n->op_type,
                       domain, LL(c->opset));
  int64_t oldest = rule->oldest;
  if (c->opset < oldest && oldest == 7)
    return unsupported(c,
                       "operator %s (domain '%s', opset %lld) is not supported: shape "
                       "inference covers opsets 7 and later",
                       n->op_type, domain, LL(c->opset));
  if (c->opset < oldest)
    return unsupported(c,
                       "operator %s (domain '%s', opset %lld) is not supported: shape "
                       "inference covers %s from opset %lld on; older versions differ",
                       n->op_type, domain, LL(c->opset), n->op_type, LL(oldest));

  /* Arity, and every present input already inferred. */
  if (rule->max_inputs != VAR && n->n_inputs > rule->max_inputs)
    return bad_model(c, "has %u inputs; %s takes at most %u", n->n_inputs, n->op_type,
                     rule->max_inputs);
  if (rule->max_outputs != VAR && n->n_outputs > rule->max_outputs)
    return bad_model(c, "has %u outputs; %s has at most %u", n->n_outputs, n->op_type,
                     rule->max_outputs);
  if (n->n_outputs == 0)
    return bad_model(c, "has no outputs");
  for (uint32_t i = 0; i < n->n_inputs; i++) {
    int32_t v = n->inputs[i];
    if (v < 0) {
      if (i < rule->min_inputs)
        return bad_model(c, "input %u is required but absent", i);
      continue;
    }
    if ((uint32_t)v >= g->n_values)
      return bad_model(c, "input %u refers to value %d of %u", i, v, g->n_values);
    if (c->vals[v].dtype == TSR_DTYPE_UNDEFINED && c->sc->up) {
      bool found;
      TSR_RETURN_IF_ERROR(resolve_outer(g, c->vals, (uint32_t)v, c->sc->up, &found));
    }
    if (c->vals[v].dtype == TSR_DTYPE_UNDEFINED || c->vals[v].rank < 0)
      return bad_model(c,
                       "input %u '%s' has no known type: it is not a graph input with a "
                       "shape, an initializer, or the output of an earlier node",
                       i, g->values[v].name);
  }
  if (n->n_inputs < rule->min_inputs)
    return bad_model(c, "has %u inputs; %s needs at least %u", n->n_inputs, n->op_type,
                     rule->min_inputs);
  for (uint32_t k = 0; k < n->n_outputs; k++) {
    int32_t v = n->outputs[k];
    if (v >= 0 && (uint32_t)v >= g->n_values)
      return bad_model(c, "output %u refers to value %d of %u", k, v, g->n_values);
    if (v >= 0)
      reset_value(g, &c->vals[v]);
  }

  tsr_status st = rule->infer(c);
  if (c->attr_error) {
    tsr_status_free(st);
    st = c->attr_error;
    c->attr_error = NULL;
  }
  if (!st) {
    for (uint32_t k = 0; k < n->n_outputs && !st; k++) {
      int32_t v = n->outputs[k];
      if (v >= 0 && c->vals[v].dtype == TSR_DTYPE_UNDEFINED)
        st = bad_model(c, "output %u '%s' is not produced at opset %lld", k, g->values[v].name,
                       LL(c->opset));
    }
  }
  if (!st)
    st = fold(c, rule);
  return st;
}

static tsr_status infer_graph(const tsr__graph *g, tsr__vshape *vals, tsr__eval_fn eval,
                              void *eval_ctx, const scope *outer) {
  scope here = {g, vals, outer};
  for (uint32_t v = 0; v < g->n_values; v++) {
    const tsr__tensor_data *t = g->values[v].init;
    if (!t)
      continue;
    reset_value(g, &vals[v]);
    tsr_status st = tsr__vshape_set(g, &vals[v], t->dtype, t->rank, t->dims);
    if (st)
      return tsr__status_wrap(st, "initializer '%s'", g->values[v].name);
    if (t->dtype != TSR_DTYPE_STRING && vals[v].nbytes != t->nbytes)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                              "initializer '%s' has %zu bytes of data, but its shape %s of %s "
                              "needs %zu",
                              g->values[v].name, t->nbytes,
                              tsr__format_dims(t->dims, (size_t)t->rank, (char[256]){0}, 256),
                              dt(t->dtype), vals[v].nbytes);
    if (t->dtype != TSR_DTYPE_STRING)
      vals[v].data = t->data ? t->data : (const void *)empty_data;
    vals[v].is_weight = true;
  }
  for (uint32_t v = 0; v < g->n_values && outer; v++) {
    if (!g->values[v].outer || vals[v].dtype != TSR_DTYPE_UNDEFINED)
      continue;
    bool found;
    TSR_RETURN_IF_ERROR(resolve_outer(g, vals, v, outer, &found));
    if (!found)
      return tsr__status_make(TSR_STATUS_INVALID_MODEL,
                              "value '%s' comes from an enclosing graph, which has no shape for "
                              "it",
                              g->values[v].name);
  }
  for (uint32_t i = 0; i < g->n_inputs; i++) {
    int32_t v = g->inputs[i];
    if (v < 0 || (uint32_t)v >= g->n_values)
      continue;
    const tsr__vshape *s = &vals[v];
    if (s->dtype == TSR_DTYPE_UNDEFINED || s->rank < 0)
      return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                              "graph input '%s' has no dtype and shape", g->values[v].name);
    for (int32_t k = 0; k < s->rank; k++)
      if (s->dims[k] < 0)
        return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT,
                                "graph input '%s': dim %d is %lld; shape inference needs "
                                "concrete dims",
                                g->values[v].name, k, LL(s->dims[k]));
  }

  ictx c = {.g = g, .vals = vals, .sc = &here, .eval = eval, .eval_ctx = eval_ctx};
  tsr_status st = NULL;
  for (uint32_t i = 0; i < g->n_nodes && !st; i++) {
    c.n = &g->nodes[i];
    c.index = i;
    st = infer_node(&c);
    tmp_release(&c);
  }
  tsr__free(g->alloc, c.scratch);
  return st;
}

tsr_status tsr__infer_shapes(const tsr__graph *g, tsr__vshape *vals, tsr__eval_fn eval,
                             void *eval_ctx) {
  if (!g || (!vals && g->n_values))
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "infer_shapes: NULL graph or values");
  return infer_graph(g, vals, eval, eval_ctx, NULL);
}
